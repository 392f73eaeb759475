//! Hashed passphrases (`SCORING_PASSPHRASE_HASH`): parsing the stored hashes once at
//! start-up, verifying a presented passphrase against them, and making a new hash
//! (`runtime-shim hash-passphrase`).
//!
//! Formats, all verified by maintained RustCrypto / Keats crates (no hand-written
//! cryptography; this module only parses and dispatches):
//! - PHC strings of PBKDF2 (`$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`,
//!   `$pbkdf2-sha512$...`), as the `pbkdf2` crate writes them: `pbkdf2` + `password-hash`,
//!   whose comparison is constant-time.
//! - passlib's PBKDF2 strings (`$pbkdf2-sha256$29000$<salt>$<hash>`, "adapted" base64
//!   with `.` for `+`), what Python tooling writes: the same `pbkdf2` function, compared
//!   with `subtle`.
//! - bcrypt (`$2b$`, also `$2a$`/`$2y$`) for hashes made elsewhere: the `bcrypt` crate,
//!   without its silent truncation at 72 bytes (a longer passphrase never matches a
//!   bcrypt hash rather than matching on its first 72 bytes).
//!
//! Messages name the hash by its position, never by its text.

use base64::Engine;
use pbkdf2::password_hash::{PasswordHasher, PasswordVerifier};
use pbkdf2::phc::PasswordHash;
use pbkdf2::{Algorithm, Params, Pbkdf2};
use subtle::ConstantTimeEq;

/// One stored hash.
#[derive(Clone)]
pub enum StoredHash {
    /// A PHC string of PBKDF2-SHA256 or -SHA512.
    Phc(Box<PasswordHash>),
    /// A passlib `pbkdf2_sha256` / `pbkdf2_sha512` string.
    Passlib {
        sha512: bool,
        rounds: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// A bcrypt string.
    Bcrypt(String),
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hash itself.
        f.write_str(match self {
            StoredHash::Phc(_) => "StoredHash::Phc(..)",
            StoredHash::Passlib { .. } => "StoredHash::Passlib(..)",
            StoredHash::Bcrypt(_) => "StoredHash::Bcrypt(..)",
        })
    }
}

/// The fewest PBKDF2 rounds accepted in a stored hash (the `pbkdf2` crate's own minimum).
pub const MIN_ROUNDS: u32 = Params::MIN_ROUNDS;

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    let std = s.replace('.', "+");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(std.trim_end_matches('='))
        .ok()
}

/// Parses the whitespace-separated hashes of `SCORING_PASSPHRASE_HASH`. The error says
/// which one (by position) and what was expected, never its text.
pub fn parse_hashes(text: &str) -> Result<Vec<StoredHash>, String> {
    let hashes: Vec<&str> = text.split_whitespace().collect();
    if hashes.is_empty() {
        return Err("is set but holds no hash".into());
    }
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            parse_one(h).map_err(|why| {
                format!(
                    "hash {} of {}: {why}; expected a PHC string of PBKDF2 \
                     ($pbkdf2-sha256$i=ROUNDS,l=32$SALT$HASH or $pbkdf2-sha512$..., as \
                     `runtime-shim hash-passphrase` prints), a passlib pbkdf2_sha256/sha512 \
                     string ($pbkdf2-sha256$ROUNDS$SALT$HASH) or a bcrypt hash ($2b$...)",
                    i + 1,
                    hashes.len()
                )
            })
        })
        .collect()
}

fn parse_one(h: &str) -> Result<StoredHash, String> {
    if h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$") {
        return h
            .parse::<bcrypt::HashParts>()
            .map(|_| StoredHash::Bcrypt(h.to_string()))
            .map_err(|_| "not a valid bcrypt hash".to_string());
    }
    let sha512 = if h.starts_with("$pbkdf2-sha256$") {
        false
    } else if h.starts_with("$pbkdf2-sha512$") {
        true
    } else {
        return Err("unknown hash scheme".into());
    };
    let parts: Vec<&str> = h.split('$').collect();
    // ["", scheme, rounds-or-params, salt, hash]
    if parts.len() == 5 && !parts[2].is_empty() && parts[2].bytes().all(|b| b.is_ascii_digit()) {
        let rounds: u32 = parts[2]
            .parse()
            .map_err(|_| "the rounds are not a number".to_string())?;
        if rounds < MIN_ROUNDS {
            return Err(format!("fewer than {MIN_ROUNDS} rounds"));
        }
        let salt = ab64_decode(parts[3]).ok_or("the salt is not passlib base64")?;
        let hash = ab64_decode(parts[4]).ok_or("the hash is not passlib base64")?;
        if salt.len() < 8 || hash.len() < 16 {
            return Err("the salt or the hash is too short".into());
        }
        return Ok(StoredHash::Passlib {
            sha512,
            rounds,
            salt,
            hash,
        });
    }
    let parsed = PasswordHash::new(h).map_err(|_| "not a valid PHC string".to_string())?;
    // The parameters must be ones the crate verifies (rounds >= its minimum, an output
    // length it supports), else every check would fail at request time.
    Params::try_from(&parsed).map_err(|_| {
        format!("its parameters are not usable (at least i={MIN_ROUNDS} rounds, l=10..64)")
    })?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("the salt or the hash is missing".into());
    }
    Ok(StoredHash::Phc(Box::new(parsed)))
}

impl StoredHash {
    /// Whether `passphrase` matches (a full PBKDF2 or bcrypt run: call off the async
    /// workers).
    pub fn verify(&self, passphrase: &[u8]) -> bool {
        match self {
            StoredHash::Phc(h) => Pbkdf2::default().verify_password(passphrase, h).is_ok(),
            StoredHash::Passlib {
                sha512,
                rounds,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                if *sha512 {
                    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(passphrase, salt, *rounds, &mut out);
                } else {
                    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, salt, *rounds, &mut out);
                }
                bool::from(out.ct_eq(hash))
            }
            StoredHash::Bcrypt(h) => bcrypt::non_truncating_verify(passphrase, h).unwrap_or(false),
        }
    }
}

/// The PBKDF2 variants `hash-passphrase` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashAlgorithm {
    /// PBKDF2-HMAC-SHA256 (default 600 000 rounds, OWASP's current figure).
    Pbkdf2Sha256,
    /// PBKDF2-HMAC-SHA512 (default 210 000 rounds).
    Pbkdf2Sha512,
}

impl HashAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            HashAlgorithm::Pbkdf2Sha256 => Algorithm::Pbkdf2Sha256,
            HashAlgorithm::Pbkdf2Sha512 => Algorithm::Pbkdf2Sha512,
        }
    }

    /// The recommended rounds of this variant (the `pbkdf2` crate's current figures).
    pub fn recommended_rounds(self) -> u32 {
        Params::recommended_for(self.algorithm()).rounds()
    }
}

/// A PHC string of `passphrase` with a random 16-byte salt from the operating system.
pub fn hash_passphrase(
    passphrase: &[u8],
    algorithm: HashAlgorithm,
    rounds: Option<u32>,
) -> Result<String, String> {
    let rounds = rounds.unwrap_or_else(|| algorithm.recommended_rounds());
    let params = Params::new_with_output_len(rounds, Params::RECOMMENDED_OUTPUT_LENGTH)
        .map_err(|_| format!("--iterations must be at least {MIN_ROUNDS}"))?;
    let salt = pbkdf2::password_hash::try_generate_salt()
        .map_err(|e| format!("no random salt from the operating system: {e}"))?;
    let hasher = Pbkdf2::new(algorithm.algorithm(), params);
    hasher
        .hash_password_with_salt(passphrase, &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_hashes_verify_and_others_do_not() {
        for alg in [HashAlgorithm::Pbkdf2Sha256, HashAlgorithm::Pbkdf2Sha512] {
            let h = hash_passphrase(b"s3cret pass", alg, Some(1000)).unwrap();
            let prefix = match alg {
                HashAlgorithm::Pbkdf2Sha256 => "$pbkdf2-sha256$i=1000,l=32$",
                HashAlgorithm::Pbkdf2Sha512 => "$pbkdf2-sha512$i=1000,l=32$",
            };
            assert!(h.starts_with(prefix), "{h}");
            let parsed = parse_hashes(&h).unwrap();
            assert!(parsed[0].verify(b"s3cret pass"));
            for wrong in [&b"s3cret pas"[..], b"s3cret pass ", b"", b"S3cret pass"] {
                assert!(!parsed[0].verify(wrong), "{wrong:?}");
            }
            // A new salt each time.
            assert_ne!(h, hash_passphrase(b"s3cret pass", alg, Some(1000)).unwrap());
        }
        assert_eq!(
            HashAlgorithm::Pbkdf2Sha256.recommended_rounds(),
            600_000,
            "the default follows the crate's recommendation"
        );
        assert!(hash_passphrase(b"x", HashAlgorithm::Pbkdf2Sha256, Some(999)).is_err());
    }

    /// Hashes made by other tools: Python's passlib (`pbkdf2_sha256.using(rounds=1000)
    /// .hash("s3cret pass")`, sha512 likewise) and bcrypt (Python `bcrypt.hashpw` with
    /// 4 rounds).
    #[test]
    fn hashes_made_elsewhere_verify() {
        let cases = [
            (
                "passlib sha256",
                "$pbkdf2-sha256$1000$4Ny717oXwljrnbMWAiDkHA$jnyP8Nz28oX54rBcQ8jFqgDr/.7kooHhYgu.pubf50E",
            ),
            (
                "passlib sha512",
                "$pbkdf2-sha512$1000$SAnBGMP4v9c65xzjvHeuVQ$1LEYSfgYA86TY/GXJTL7m4xfEXclIU/c5L7YwUDkIyQwCCvetjdTAkh6EU1sAk2CLXREETLRpsy.q5Hj/XccSw",
            ),
            (
                "bcrypt 2b",
                "$2b$04$KGvif/v6TdqGev7snaCe2eETy4VTUS2bPKt7TsdlzUK5a8xxLPttW",
            ),
        ];
        for (name, h) in cases {
            let parsed = parse_hashes(h).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(parsed[0].verify(b"s3cret pass"), "{name}");
            assert!(!parsed[0].verify(b"s3cret pas"), "{name}");
        }
        // A bcrypt hash made by a truncating tool from a passphrase over 72 bytes is the
        // hash of its first 72 bytes: neither that prefix nor anything longer matches.
        let long = vec![b'a'; 80];
        let h = bcrypt::hash(&long, 4).unwrap();
        let parsed = parse_hashes(&h).unwrap();
        assert!(!parsed[0].verify(&long[..72]));
        assert!(!parsed[0].verify(&long));
        let h = bcrypt::hash(&long[..60], 4).unwrap();
        assert!(parse_hashes(&h).unwrap()[0].verify(&long[..60]));
    }

    #[test]
    fn bad_hashes_are_named_by_position_never_by_text() {
        let good = hash_passphrase(b"x", HashAlgorithm::Pbkdf2Sha256, Some(1000)).unwrap();
        let cases = [
            ("empty", "   ".to_string(), "holds no hash"),
            ("plain text", "hunter2hunter2".to_string(), "hash 1 of 1: unknown hash scheme"),
            (
                "second bad",
                format!("{good}\n{}", good.replace("i=1000,", "i=10,")),
                "hash 2 of 2: its parameters are not usable",
            ),
            ("md5 crypt", "$1$abc$def".to_string(), "unknown hash scheme"),
            ("truncated bcrypt", "$2b$04$KGvif/v6TdqGev7snaCe".to_string(), "not a valid bcrypt"),
            ("broken phc", "$pbkdf2-sha256$i=1000,l=32$!!$??".to_string(), "not a valid PHC"),
            (
                "few passlib rounds",
                "$pbkdf2-sha256$10$4Ny717oXwljrnbMWAiDkHA$jnyP8Nz28oX54rBcQ8jFqgDr/.7kooHhYgu.pubf50E".to_string(),
                "fewer than 1000 rounds",
            ),
        ];
        for (name, text, want) in cases {
            let e = parse_hashes(&text).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
            for word in text.split_whitespace() {
                if word.len() > 8 {
                    assert!(
                        !e.contains(word),
                        "{name}: the message quotes the hash: {e}"
                    );
                }
            }
        }
        let two = parse_hashes(&format!("  {good}\n\t{good} ")).unwrap();
        assert_eq!(two.len(), 2);
    }
}
