//! OIDC bearer tokens: the issuer's signing keys (from `OIDC_JWKS_FILE`, or from the
//! `jwks_uri` of the issuer's discovery document) and the verification of a token
//! against them.
//!
//! Rules (RFC 7519, RFC 8725 "JWT best current practices", OIDC Discovery §4):
//! - Only asymmetric algorithms: RS256/384/512, PS256/384/512, ES256/384, EdDSA. `none`
//!   does not parse as an algorithm, HMAC (`HS*`) is refused before any key is looked
//!   at, and a JWKS `oct` (secret) key is never loaded, so a token "signed" with a public
//!   key as an HMAC secret cannot verify.
//! - A key verifies only the algorithms its type allows (an RSA key of at least 2048
//!   bits: RS*/PS*; EC P-256: ES256; P-384: ES384; Ed25519: EdDSA), narrowed to its
//!   `alg` when the JWK names one; keys whose `use` is not `sig` are skipped.
//! - `exp` is required, `nbf` checked when present, `iss` must equal `OIDC_ISSUER` and
//!   `aud` hold one of `OIDC_AUDIENCE`, with a small leeway for clock skew.
//! - A token whose `kid` is unknown makes the keys be fetched again (keys rotate), at most
//!   once per `OIDC_JWKS_MIN_REFRESH_SECS` whatever the traffic, one fetch at a time;
//!   the keys are also fetched every [`PERIODIC_REFRESH`] so that a removed key stops
//!   verifying. A failed fetch keeps the keys there are.
//! - Discovery: `<issuer>/.well-known/openid-configuration` must name the same `issuer`;
//!   both it and `jwks_uri` must be `https` (plain `http` only for a loopback host or
//!   with `OIDC_ALLOW_HTTP`); redirects are not followed; TLS roots are Mozilla's
//!   (bundled, so a `FROM scratch` image verifies) or `OIDC_CA_FILE`'s.
//!
//! Signatures are verified by `jsonwebtoken` with its pure-Rust RustCrypto backend
//! (`rsa` 0.10 (constant-time), `p256`, `p384`, `ed25519-dalek`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::metrics::AuthRefusal;

/// Algorithms a token may be signed with.
pub const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const RSA_ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
/// The keys are fetched again this often (keys removed by the issuer stop verifying).
pub const PERIODIC_REFRESH: Duration = Duration::from_secs(15 * 60);
/// Longest wait for the issuer (each of the two requests of a discovery).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or key set read.
const MAX_DOCUMENT: u64 = 1 << 20;
/// Smallest RSA modulus accepted.
const MIN_RSA_BITS: usize = 2048;

/// The OIDC settings (flags and variables of `cli`).
#[derive(Debug, Clone, Default)]
pub struct OidcSettings {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub allow_http: bool,
    pub min_refresh: Duration,
    pub leeway: Duration,
}

/// One usable signing key.
struct Key {
    key: DecodingKey,
    algs: Vec<Algorithm>,
}

/// The issuer's usable keys.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    all: Vec<Arc<Key>>,
    /// Fingerprint of the key material, to tell whether a fetch changed anything.
    fingerprint: Vec<String>,
}

impl KeySet {
    /// The key for a token's `kid` and `alg`: by `kid`, or without one the only key
    /// that can verify `alg`.
    fn pick(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Arc<Key>> {
        match kid {
            Some(k) => self.by_kid.get(k),
            None => {
                let mut fit = self.all.iter().filter(|k| k.algs.contains(&alg));
                match (fit.next(), fit.next()) {
                    (Some(k), None) => Some(k),
                    _ => None,
                }
            }
        }
    }
}

/// Where the keys come from.
enum Source {
    File(PathBuf),
    Discovery { issuer: String, agent: ureq::Agent },
}

/// A configured issuer: its keys and the rules tokens are checked with.
pub struct Oidc {
    source: Source,
    allow_http: bool,
    keys: ArcSwap<KeySet>,
    /// Bumped whenever the key set changes: cached tokens of an older set are checked again.
    generation: AtomicU64,
    validations: HashMap<Algorithm, Validation>,
    leeway: u64,
    min_refresh: Duration,
    /// The last fetch attempt; held during a fetch, so fetches happen one at a time.
    last_fetch: tokio::sync::Mutex<Instant>,
    pub issuer: String,
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// A configuration error: the variable it concerns and why.
pub type ConfigError = (&'static str, String);

impl Oidc {
    /// Checks the settings and fetches the keys once (blocking: called before serving).
    pub fn new(s: &OidcSettings) -> Result<Oidc, ConfigError> {
        if s.audiences.is_empty() {
            return Err((
                "OIDC_AUDIENCE",
                "is required with OIDC_ISSUER (the audience, e.g. the client id, that tokens for this deployment carry in `aud`)".into(),
            ));
        }
        let issuer = s.issuer.trim().to_string();
        check_url(&issuer, s.allow_http).map_err(|e| ("OIDC_ISSUER", e))?;
        let source = match &s.jwks_file {
            Some(p) => Source::File(p.clone()),
            None => Source::Discovery {
                issuer: issuer.clone(),
                agent: agent(s.ca_file.as_ref())?,
            },
        };
        let leeway = s.leeway.as_secs();
        let validations = ALLOWED
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.leeway = leeway;
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                v.set_issuer(&[&issuer]);
                v.set_audience(&s.audiences);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                (*alg, v)
            })
            .collect();
        let oidc = Oidc {
            source,
            allow_http: s.allow_http,
            keys: ArcSwap::from_pointee(KeySet::default()),
            generation: AtomicU64::new(0),
            validations,
            leeway,
            min_refresh: s.min_refresh,
            last_fetch: tokio::sync::Mutex::new(Instant::now()),
            issuer,
            audiences: s.audiences.clone(),
        };
        let keys = oidc.fetch().map_err(|e| {
            let var = match oidc.source {
                Source::File(_) => "OIDC_JWKS_FILE",
                Source::Discovery { .. } => "OIDC_ISSUER",
            };
            (var, e)
        })?;
        oidc.keys.store(Arc::new(keys));
        Ok(oidc)
    }

    /// Where the keys come from, for the start-up log.
    pub fn describe_source(&self) -> String {
        match &self.source {
            Source::File(p) => format!("keys from {}", p.display()),
            Source::Discovery { .. } => "keys from the issuer's discovery document".into(),
        }
    }

    /// The number of usable keys now.
    pub fn key_count(&self) -> usize {
        self.keys.load().all.len()
    }

    /// The allowed leeway in seconds.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Changes whenever the key set does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the keys from their source (blocking I/O).
    fn fetch(&self) -> Result<KeySet, String> {
        let text = match &self.source {
            Source::File(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the key set {}: {e}", p.display()))?,
            Source::Discovery { issuer, agent } => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let doc: serde_json::Value = serde_json::from_str(&get(agent, &url)?)
                    .map_err(|e| format!("the discovery document {url} is not JSON: {e}"))?;
                if doc["issuer"].as_str() != Some(issuer.as_str()) {
                    return Err(format!(
                        "the discovery document {url} names issuer {}, not {issuer:?}",
                        doc["issuer"]
                    ));
                }
                let jwks = doc["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| format!("the discovery document {url} has no jwks_uri"))?;
                check_url(jwks, self.allow_http).map_err(|e| format!("jwks_uri: {e}"))?;
                get(agent, jwks)?
            }
        };
        parse_jwks(&text)
    }

    /// Fetches the keys again unless a fetch was tried less than `min_refresh` ago
    /// (`force`: the periodic refresh). Returns whether the key set changed.
    pub async fn refresh(self: &Arc<Self>, force: bool) -> bool {
        let mut last = self.last_fetch.lock().await;
        if !force && last.elapsed() < self.min_refresh {
            return false;
        }
        *last = Instant::now();
        let me = Arc::clone(self);
        let fetched = tokio::task::spawn_blocking(move || me.fetch())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match fetched {
            Ok(keys) if !keys.all.is_empty() => {
                let changed = keys.fingerprint != self.keys.load().fingerprint;
                if changed {
                    tracing::info!(
                        keys = keys.all.len(),
                        "OIDC signing keys changed; tokens are checked against the new set"
                    );
                    self.keys.store(Arc::new(keys));
                    self.generation.fetch_add(1, Ordering::AcqRel);
                }
                changed
            }
            Ok(_) => {
                tracing::warn!("the issuer lists no usable signing key; keeping the previous keys");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "OIDC signing keys could not be fetched; keeping the previous keys");
                false
            }
        }
    }

    /// Verifies `token` now: its `exp` (seconds since the epoch) when it is valid.
    pub fn verify_now(&self, token: &str) -> Result<u64, AuthRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthRefusal::Rejected)?;
        if !ALLOWED.contains(&header.alg) {
            return Err(AuthRefusal::Rejected);
        }
        let keys = self.keys.load();
        let key = keys
            .pick(header.kid.as_deref(), header.alg)
            .ok_or(AuthRefusal::UnknownKey)?;
        if !key.algs.contains(&header.alg) {
            return Err(AuthRefusal::Rejected);
        }
        let v = &self.validations[&header.alg];
        match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, v) {
            Ok(data) => data.claims["exp"]
                .as_f64()
                .filter(|e| e.is_finite() && *e >= 0.0)
                .map(|e| e as u64)
                .ok_or(AuthRefusal::Rejected),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthRefusal::Expired,
                _ => AuthRefusal::Rejected,
            }),
        }
    }

    /// [`Oidc::verify_now`], fetching the keys again (rate limited) when the token's key
    /// is unknown.
    pub async fn verify(self: &Arc<Self>, token: &str) -> Result<u64, AuthRefusal> {
        match self.verify_now(token) {
            Err(AuthRefusal::UnknownKey) => {
                self.refresh(false).await;
                self.verify_now(token)
            }
            r => r,
        }
    }

    /// Fetches the keys every [`PERIODIC_REFRESH`] until the process ends.
    pub fn spawn_periodic_refresh(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PERIODIC_REFRESH).await;
                me.refresh(true).await;
            }
        });
    }
}

/// `https`, or `http` to a loopback host (or anywhere with `allow_http`).
fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let h = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback || allow_http {
                Ok(())
            } else {
                Err(format!(
                    "{url:?} is plain http: keys fetched over it could be replaced on the way; use https (set OIDC_ALLOW_HTTP=true only on a network you trust)"
                ))
            }
        }
        _ => Err(format!("{url:?} is not an http(s) URL")),
    }
}

/// The HTTP client of discovery: no redirects, a timeout, Mozilla's roots or the CA file.
fn agent(ca_file: Option<&PathBuf>) -> Result<ureq::Agent, ConfigError> {
    use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if let Some(p) = ca_file {
        let bad = |why: String| ("OIDC_CA_FILE", format!("{}: {why}", p.display()));
        let pem = std::fs::read(p).map_err(|e| bad(e.to_string()))?;
        let certs: Vec<_> = parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not a PEM bundle: {e}")))?;
        if certs.is_empty() {
            return Err(bad("holds no certificate".into()));
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into())
}

/// GET `url`: the body of a 200, else an error naming the URL and the status.
fn get(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    let mut r = agent
        .get(url)
        .header("accept", "application/json")
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    if r.status() != 200 {
        return Err(format!("GET {url}: status {}", r.status()));
    }
    r.body_mut()
        .with_config()
        .limit(MAX_DOCUMENT)
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))
}

/// The usable signing keys of a JWKS document; keys of other kinds or uses are skipped
/// (a Keycloak set also lists an encryption key). At least one must be usable.
fn parse_jwks(text: &str) -> Result<KeySet, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the key set is not JSON: {e}"))?;
    let keys = doc["keys"]
        .as_array()
        .ok_or("the key set has no `keys` array")?;
    let mut set = KeySet::default();
    for k in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        let Some(key) = usable(&jwk) else { continue };
        let key = Arc::new(key);
        set.fingerprint.push(k.to_string());
        if let Some(kid) = &jwk.common.key_id {
            set.by_kid.insert(kid.clone(), Arc::clone(&key));
        }
        set.all.push(key);
    }
    set.fingerprint.sort();
    if set.all.is_empty() {
        return Err(format!(
            "the key set lists {} keys and none is a usable signing key (RSA of at least {MIN_RSA_BITS} bits, EC P-256 or P-384, Ed25519; `use` sig)",
            keys.len()
        ));
    }
    Ok(set)
}

/// The key and the algorithms it may verify, or `None` when it is not a signing key of
/// an allowed kind.
fn usable(jwk: &Jwk) -> Option<Key> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return None,
    }
    let algs: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                p.n.trim_end_matches('='),
            )
            .ok()?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < MIN_RSA_BITS {
                return None;
            }
            RSA_ALGS.to_vec()
        }
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return None,
        },
        // Secret (HMAC) keys are never loaded, nor kinds this build does not know.
        _ => return None,
    };
    let algs = match jwk.common.key_algorithm {
        None => algs,
        Some(named) => {
            let a = key_alg(named)?;
            if !algs.contains(&a) {
                return None;
            }
            vec![a]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { key, algs })
}

fn key_alg(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_loopback_or_allowed() {
        let cases = [
            ("https", "https://idp.example.com/realms/x", false, true),
            (
                "http remote",
                "http://idp.example.com/realms/x",
                false,
                false,
            ),
            (
                "http remote, allowed",
                "http://keycloak:8080/realms/x",
                true,
                true,
            ),
            ("http loopback", "http://127.0.0.1:9/realms/x", false, true),
            ("http localhost", "http://localhost:9", false, true),
            ("http v6 loopback", "http://[::1]:9/x", false, true),
            ("ftp", "ftp://idp.example.com", true, false),
            ("not a url", "idp", true, false),
        ];
        for (name, url, allow, ok) in cases {
            assert_eq!(check_url(url, allow).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn only_signing_keys_of_allowed_kinds_are_loaded() {
        // A 2048-bit modulus (the value does not matter for loading), a 1024-bit one.
        let n2048 = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            [0xC5u8; 256],
        );
        let n1024 = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            [0xC5u8; 128],
        );
        let x =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
        let set = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": n2048, "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-any", "n": n2048, "e": "AQAB"},
            {"kty": "RSA", "kid": "small", "n": n1024, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": n2048, "e": "AQAB"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": x, "y": x},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": x},
            {"kty": "RSA", "kid": "mismatch", "alg": "ES256", "n": n2048, "e": "AQAB"},
            {"kty": "weird"}
        ]});
        let ks = parse_jwks(&set.to_string()).unwrap();
        let mut kids: Vec<&str> = ks.by_kid.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["ec", "ed", "rsa", "rsa-any"]);
        assert_eq!(ks.by_kid["rsa"].algs, [Algorithm::RS256]);
        assert_eq!(ks.by_kid["rsa-any"].algs, RSA_ALGS);
        assert_eq!(ks.by_kid["ec"].algs, [Algorithm::ES256]);
        assert!(
            ks.pick(None, Algorithm::EdDSA).is_some(),
            "the only EdDSA key"
        );
        assert!(
            ks.pick(None, Algorithm::RS256).is_none(),
            "two RSA keys: ambiguous"
        );
        let e = parse_jwks(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#)
            .err()
            .unwrap();
        assert!(e.contains("none is a usable signing key"), "{e}");
        assert!(parse_jwks("[]").is_err());
    }
}
