//! Test OIDC tokens: signed with the throwaway keys of `testdata/auth` (see its README),
//! with the JWKS document of the issuer's public keys, so that the endpoint security
//! tests (runtime-shim unit and integration tests, `shim-load auth-abuse`) use real
//! signatures made by the same library a real issuer's tokens are checked with.

use std::path::PathBuf;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The issuer of the test tokens.
pub const ISSUER: &str = "https://idp.test.invalid/realms/scoring";
/// The audience the shim under test is configured with.
pub const AUDIENCE: &str = "model-scoring";

/// `testdata/auth` of the workspace.
pub fn key_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/auth")
}

fn read(name: &str) -> Vec<u8> {
    let p = key_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A signing key of the tests.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {:?})", self.kid, self.alg)
    }
}

/// The test keys.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The issuer's RSA key (`rsa-1`): RS256/384/512 and PS256/384/512.
    pub rsa: SigningKey,
    /// The issuer's EC P-256 key (`ec-1`).
    pub ec: SigningKey,
    /// The issuer's Ed25519 key (`ed-1`).
    pub ed: SigningKey,
    /// An RSA key the issuer does not list.
    pub other: SigningKey,
    /// The issuer's RSA public key as PEM text (what an attacker who knows the issuer's
    /// public key would use as an HMAC secret).
    pub rsa_public_pem: Vec<u8>,
}

impl Keys {
    /// Reads the keys of `testdata/auth`.
    pub fn load() -> Keys {
        let key = |kid, alg, k: jsonwebtoken::errors::Result<EncodingKey>| SigningKey {
            kid,
            alg,
            key: k.unwrap_or_else(|e| panic!("test key {kid}: {e}")),
        };
        Keys {
            rsa: key(
                "rsa-1",
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(&read("rsa.pem")),
            ),
            ec: key(
                "ec-1",
                Algorithm::ES256,
                EncodingKey::from_ec_pem(&read("ec-p256.pem")),
            ),
            ed: key(
                "ed-1",
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&read("ed25519.pem")),
            ),
            other: key(
                "rsa-1",
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(&read("other-rsa.pem")),
            ),
            rsa_public_pem: read("rsa.pub.pem"),
        }
    }

    /// The issuer's JWKS: the public halves of `rsa` (any RSA algorithm), `ec` and
    /// `ed`, each with its `kid` and `use: sig`, plus an encryption key (as Keycloak
    /// lists one) that must be skipped.
    pub fn jwks(&self) -> String {
        let mut keys = Vec::new();
        for k in [&self.rsa, &self.ec, &self.ed] {
            let mut jwk = Jwk::from_encoding_key(&k.key, k.alg).expect("public JWK");
            jwk.common.key_id = Some(k.kid.to_string());
            jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
            if k.alg == Algorithm::RS256 {
                // Any RSA algorithm (RS*, PS*) with this key.
                jwk.common.key_algorithm = None;
            }
            keys.push(jwk);
        }
        let mut set = serde_json::to_value(JwkSet { keys }).expect("JWKS serializes");
        let mut enc = serde_json::to_value(
            Jwk::from_encoding_key(&self.other.key, Algorithm::RS256).unwrap(),
        )
        .unwrap();
        enc["kid"] = json!("enc-1");
        enc["use"] = json!("enc");
        enc["alg"] = json!("RSA-OAEP");
        set["keys"].as_array_mut().unwrap().push(enc);
        set.to_string()
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Claims valid now for the test issuer and audience, expiring in `ttl` seconds.
pub fn claims(ttl: i64) -> Value {
    let t = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "scoring-client",
        "iat": t,
        "nbf": t - 5,
        "exp": t + ttl,
    })
}

/// `claims` signed by `key` with `alg` (one `key` allows), with `key`'s `kid`
/// (`kid: None` leaves it out).
pub fn sign(key: &SigningKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &key.key).expect("sign a test token")
}

/// `claims` signed the standard way by `key` (its algorithm and `kid`).
pub fn token(key: &SigningKey, claims: &Value) -> String {
    sign(key, key.alg, Some(key.kid), claims)
}

/// `claims` "signed" with HMAC-`alg` using `secret` (e.g. the issuer's public key), with
/// `kid`.
pub fn hmac(alg: Algorithm, secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_secret(secret).expect("HMAC key");
    jsonwebtoken::encode(&h, claims, &key).expect("HMAC token")
}

/// URL-safe base64 without padding.
pub fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        if c.len() > 1 {
            out.push(T[(n >> 6) as usize & 63] as char);
        }
        if c.len() > 2 {
            out.push(T[n as usize & 63] as char);
        }
    }
    out
}

/// A token with `header` (any JSON, e.g. `{"alg": "none"}`), `claims` and `signature`
/// (raw bytes) assembled by hand.
pub fn raw(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}
