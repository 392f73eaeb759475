//! Endpoint security: who may call the protected routes (every `/model/*` route, every
//! `/v2/models/*` route of the Open Inference Protocol, and `/metrics` on the API port),
//! as an axum layer
//! ([`protect`]) applied to a whole route group, never code in a handler.
//!
//! A request carries one credential, `Authorization: Bearer <credential>`, the way H2O's
//! clients send it. Any mix of these may be configured at once (so credentials rotate
//! without downtime), and a request is let in when any one accepts it:
//! - `SCORING_PASSPHRASE`: one plain passphrase, compared in constant time (as keyed
//!   digests of equal length, so its length does not leak either);
//! - `SCORING_PASSPHRASE_HASH`: hashes ([`passphrase`]: PBKDF2 PHC strings, passlib's
//!   PBKDF2, bcrypt), whitespace-separated;
//! - `OIDC_ISSUER` + `OIDC_AUDIENCE` (+ `OIDC_JWKS_FILE` or discovery): signed tokens
//!   ([`oidc`]).
//!
//! With none set, every route is open and the start-up log says so once, at `warn`.
//!
//! Invariants:
//! - The check runs before the request body is read (an unauthenticated client cannot
//!   make the shim buffer a body), and every refusal is the same 401 with
//!   `WWW-Authenticate: Bearer` and one message (`detail`; on `/v2` paths the
//!   protocol's `error`) that never says what was wrong (a
//!   missing header, a wrong passphrase and an expired token look alike), except 429
//!   when too many hashed-passphrase checks already wait (said before any check).
//! - No credential, hash or token is ever logged, put in an error or a panic message:
//!   they live in types whose `Debug` is redacted; configuration errors name the
//!   variable and, for hashes, the position.
//! - A hashed passphrase costs one PBKDF2 (or bcrypt) run per distinct credential, not
//!   per request: a verified credential is remembered by its keyed digest (HMAC-SHA256
//!   under a random per-process key, so the cache holds nothing an attacker can use);
//!   a refused one too, so a client retrying an old passphrase does not burn CPU. The
//!   runs happen on the blocking pool, at most one per CPU at once and [`MAX_WAITING`]
//!   waiting. Tokens are remembered until their `exp` (plus the leeway) and forgotten
//!   when the issuer's keys change. The caches are copy-on-write maps behind `ArcSwap`:
//!   a request reads them without a lock; only a new credential writes.
//!
//! Crates (all maintained, no hand-written cryptography; `cargo tree -p runtime-shim`):
//! `pbkdf2` + `password-hash` (RustCrypto) and `bcrypt` (Keats) for hashes, `subtle` for
//! constant-time comparison, `hmac` + `sha2` for the digests, `jsonwebtoken` (Keats) with
//! its `rust_crypto` backend for tokens: pure Rust (`rsa` 0.10, whose constant-time
//! arithmetic closes RUSTSEC-2023-0071; the shim only verifies anyway), chosen over
//! `jwt-simple` for its JWK/JWKS types, which the issuer's key set is read with. The one
//! C/assembly crypto crate is `ring`, under `rustls`, used only for the HTTPS fetch of an
//! issuer's keys (`ureq`): no pure-Rust TLS provider is production-ready.

pub mod oidc;
pub mod passphrase;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use clap::Args;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::metrics::{self, AuthRefusal};
use oidc::{Oidc, OidcSettings};
use passphrase::StoredHash;

/// The one `detail` of every 401.
pub const REFUSED: &str =
    "Unauthorized: send a valid passphrase or token as `Authorization: Bearer <credential>`";
/// Longest credential looked at (a large OIDC token is 2-8 KB).
pub const MAX_CREDENTIAL: usize = 16 * 1024;
/// Hashed-passphrase checks that may wait for a CPU; more are answered 429.
pub const MAX_WAITING: usize = 64;
/// Distinct verified (or refused) credentials remembered.
pub const CACHE_SIZE: usize = 4096;

/// The variables of the endpoint security that hold secrets, read from the environment
/// only (never flags, which `ps` shows), so that "set but empty" is an error rather than
/// silently open.
pub const SECRET_VARIABLES: [&str; 2] = ["SCORING_PASSPHRASE", "SCORING_PASSPHRASE_HASH"];

/// The non-secret settings of the endpoint security (flags and variables).
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// OIDC: the issuer whose tokens are accepted (its discovery document lives under
    /// ISSUER/.well-known/openid-configuration); needs --oidc-audience.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// OIDC: accepted audiences (the `aud` a token must hold one of), comma-separated.
    #[arg(long, env = "OIDC_AUDIENCE", value_delimiter = ',')]
    pub oidc_audience: Vec<String>,
    /// OIDC: read the issuer's signing keys (a JWKS document) from this file instead of
    /// the discovery document; read again when a token names an unknown key.
    #[arg(long, env = "OIDC_JWKS_FILE")]
    pub oidc_jwks_file: Option<PathBuf>,
    /// OIDC: trust these PEM CA certificates (instead of Mozilla's roots) for the HTTPS
    /// fetch of the discovery document and keys.
    #[arg(long, env = "OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,
    /// OIDC: allow a plain-http issuer or key URL that is not on a loopback address.
    #[arg(long, env = "OIDC_ALLOW_HTTP")]
    pub oidc_allow_http: bool,
    /// OIDC: a token with an unknown key fetches the keys again at most this often.
    #[arg(long, env = "OIDC_JWKS_MIN_REFRESH_SECS", default_value_t = 30.0)]
    pub oidc_jwks_min_refresh_secs: f64,
    /// OIDC: clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long, env = "OIDC_LEEWAY_SECS", default_value_t = 30)]
    pub oidc_leeway_secs: u64,
}

/// A secret read from the environment; its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Everything the endpoint security is configured with.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `SCORING_PASSPHRASE`.
    pub passphrase: Option<Secret>,
    /// `SCORING_PASSPHRASE_HASH`.
    pub hashes: Option<Secret>,
    pub oidc: Option<OidcSettings>,
}

/// A configuration the shim refuses to start with (exit code 8): the variable and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{variable} {detail}")]
pub struct AuthConfigError {
    pub variable: &'static str,
    pub detail: String,
}

fn config_error(variable: &'static str, detail: impl Into<String>) -> AuthConfigError {
    AuthConfigError {
        variable,
        detail: detail.into(),
    }
}

impl AuthSettings {
    /// From the flags and the secret variables of the environment.
    pub fn from_env(args: &AuthArgs) -> Result<AuthSettings, AuthConfigError> {
        Self::from_parts(args, |name| std::env::var_os(name))
    }

    /// From the flags and `var` (the environment, or a test's table).
    pub fn from_parts(
        args: &AuthArgs,
        var: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<AuthSettings, AuthConfigError> {
        use std::os::unix::ffi::OsStringExt;
        let secret = |name: &'static str| -> Result<Option<Secret>, AuthConfigError> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.is_empty() => Err(config_error(
                    name,
                    "is set but empty; unset it, or give it a value",
                )),
                Some(v) => Ok(Some(Secret(v.into_vec()))),
            }
        };
        let passphrase = secret("SCORING_PASSPHRASE")?;
        let hashes = secret("SCORING_PASSPHRASE_HASH")?;
        let issuer = args.oidc_issuer.as_deref().map(str::trim).unwrap_or("");
        let audiences: Vec<String> = args
            .oidc_audience
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        let oidc = if issuer.is_empty() {
            for (set, var) in [
                (!audiences.is_empty(), "OIDC_AUDIENCE"),
                (args.oidc_jwks_file.is_some(), "OIDC_JWKS_FILE"),
                (args.oidc_ca_file.is_some(), "OIDC_CA_FILE"),
            ] {
                if set {
                    return Err(config_error(
                        var,
                        "is set but OIDC_ISSUER is not (tokens are only checked against an issuer)",
                    ));
                }
            }
            None
        } else {
            let min_refresh = Duration::try_from_secs_f64(args.oidc_jwks_min_refresh_secs)
                .map_err(|_| {
                    config_error(
                        "OIDC_JWKS_MIN_REFRESH_SECS",
                        "must be a number of seconds (0 or more)",
                    )
                })?;
            if args.oidc_leeway_secs > 300 {
                return Err(config_error(
                    "OIDC_LEEWAY_SECS",
                    "must be at most 300 (a clock skew, not a grace period)",
                ));
            }
            Some(OidcSettings {
                issuer: issuer.to_string(),
                audiences,
                jwks_file: args.oidc_jwks_file.clone(),
                ca_file: args.oidc_ca_file.clone(),
                allow_http: args.oidc_allow_http,
                min_refresh,
                leeway: Duration::from_secs(args.oidc_leeway_secs),
            })
        };
        Ok(AuthSettings {
            passphrase,
            hashes,
            oidc,
        })
    }

    /// No method configured: the endpoints are open.
    pub fn is_open(&self) -> bool {
        self.passphrase.is_none() && self.hashes.is_none() && self.oidc.is_none()
    }
}

/// What a remembered credential was accepted as.
#[derive(Debug, Clone, Copy)]
enum Accepted {
    /// A passphrase: for the life of the process (the configuration does not change).
    Passphrase,
    /// A token until `until` (its `exp` plus the leeway), while the keys are of
    /// `generation`.
    Token { until: u64, generation: u64 },
}

type Digest = [u8; 32];

/// The configured endpoint security; shared by every request.
pub struct Auth {
    key: [u8; 32],
    plain: Option<Digest>,
    hashes: Arc<[StoredHash]>,
    oidc: Option<Arc<Oidc>>,
    accepted: ArcSwap<HashMap<Digest, Accepted>>,
    refused: ArcSwap<HashSet<Digest>>,
    /// One permit per CPU: hashed-passphrase checks running at once.
    hashing: tokio::sync::Semaphore,
    /// Hashed-passphrase checks waiting or running.
    waiting: AtomicUsize,
    /// Hashed-passphrase checks run (each a PBKDF2 or bcrypt run per stored hash).
    hash_runs: AtomicUsize,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Auth {
    /// Checks the settings (parses the hashes, fetches the issuer's keys: blocking).
    /// `Ok(None)` when nothing is configured.
    pub fn new(s: &AuthSettings) -> Result<Option<Arc<Auth>>, AuthConfigError> {
        if s.is_open() {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| {
            config_error(
                "SCORING_PASSPHRASE",
                format!("cannot be protected: no random key from the operating system: {e}"),
            )
        })?;
        let hashes = match &s.hashes {
            None => Vec::new(),
            Some(Secret(text)) => {
                let text = std::str::from_utf8(text)
                    .map_err(|_| config_error("SCORING_PASSPHRASE_HASH", "is not UTF-8 text"))?;
                passphrase::parse_hashes(text)
                    .map_err(|e| config_error("SCORING_PASSPHRASE_HASH", e))?
            }
        };
        let oidc = match &s.oidc {
            None => None,
            Some(o) => {
                Some(Arc::new(Oidc::new(o).map_err(|(variable, detail)| {
                    config_error(variable, detail)
                })?))
            }
        };
        let mut auth = Auth {
            key,
            plain: None,
            hashes: hashes.into(),
            oidc,
            accepted: ArcSwap::from_pointee(HashMap::new()),
            refused: ArcSwap::from_pointee(HashSet::new()),
            hashing: tokio::sync::Semaphore::new(crate::workers::process_cpus()),
            waiting: AtomicUsize::new(0),
            hash_runs: AtomicUsize::new(0),
        };
        if let Some(Secret(p)) = &s.passphrase {
            auth.plain = Some(auth.digest(p));
        }
        Ok(Some(Arc::new(auth)))
    }

    /// The methods configured, for the start-up log (no secret).
    pub fn describe(&self) -> String {
        let mut m = Vec::new();
        if self.plain.is_some() {
            m.push("a plain passphrase (SCORING_PASSPHRASE)".to_string());
        }
        if !self.hashes.is_empty() {
            m.push(format!(
                "{} hashed passphrase(s) (SCORING_PASSPHRASE_HASH)",
                self.hashes.len()
            ));
        }
        if let Some(o) = &self.oidc {
            m.push(format!(
                "OIDC tokens of {} for audience {} ({}, {} usable)",
                o.issuer,
                o.audiences.join(","),
                o.describe_source(),
                o.key_count()
            ));
        }
        m.join(", ")
    }

    /// Hashed-passphrase checks run so far (each one PBKDF2 or bcrypt run per stored hash).
    pub fn hash_runs(&self) -> usize {
        self.hash_runs.load(Ordering::Relaxed)
    }

    /// Starts what runs beside the server (the periodic fetch of an issuer's keys).
    pub fn spawn_background(&self) {
        if let Some(o) = &self.oidc {
            o.spawn_periodic_refresh();
        }
    }

    fn digest(&self, credential: &[u8]) -> Digest {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(credential);
        mac.finalize().into_bytes().into()
    }

    fn remember(&self, d: Digest, a: Accepted) {
        let now = unix_now();
        self.accepted.rcu(|m| {
            let mut m = HashMap::clone(m);
            if m.len() >= CACHE_SIZE {
                m.retain(|_, a| match a {
                    Accepted::Passphrase => true,
                    Accepted::Token { until, .. } => *until >= now,
                });
                if m.len() >= CACHE_SIZE {
                    m.clear();
                }
            }
            m.insert(d, a);
            m
        });
    }

    fn remember_refused(&self, d: Digest) {
        self.refused.rcu(|s| {
            let mut s = HashSet::clone(s);
            if s.len() >= CACHE_SIZE {
                s.clear();
            }
            s.insert(d);
            s
        });
    }

    /// Whether the request may pass; the refusal's reason otherwise.
    pub async fn check(&self, headers: &HeaderMap) -> Result<(), AuthRefusal> {
        let credential = bearer(headers)?;
        let d = self.digest(credential);
        if let Some(a) = self.accepted.load().get(&d) {
            match *a {
                Accepted::Passphrase => return Ok(()),
                Accepted::Token { until, generation } => {
                    let current = self.oidc.as_ref().map(|o| o.generation());
                    if until >= unix_now() && current == Some(generation) {
                        return Ok(());
                    }
                }
            }
        }
        if let Some(p) = &self.plain {
            if bool::from(p.ct_eq(&d)) {
                return Ok(());
            }
        }
        let mut why = AuthRefusal::Rejected;
        if let Some(o) = &self.oidc {
            if let Some(token) = jwt_shaped(credential) {
                let generation = o.generation();
                match o.verify(token).await {
                    Ok(exp) => {
                        // The generation of the keys the token verified with (a refresh
                        // during `verify` bumps it; then the next request checks again).
                        self.remember(
                            d,
                            Accepted::Token {
                                until: exp.saturating_add(o.leeway()),
                                generation,
                            },
                        );
                        return Ok(());
                    }
                    Err(e) => why = e,
                }
            }
        }
        if !self.hashes.is_empty() && !self.refused.load().contains(&d) {
            if self.verify_hashes(credential).await? {
                self.remember(d, Accepted::Passphrase);
                return Ok(());
            }
            self.remember_refused(d);
        }
        Err(why)
    }

    /// One PBKDF2/bcrypt check of `credential` against every stored hash, on the
    /// blocking pool, at most one per CPU at once; `Busy` when too many wait.
    async fn verify_hashes(&self, credential: &[u8]) -> Result<bool, AuthRefusal> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AuthRefusal::Busy);
        }
        let _waiting = Waiting(&self.waiting);
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AuthRefusal::Busy)?;
        self.hash_runs.fetch_add(1, Ordering::Relaxed);
        let hashes = Arc::clone(&self.hashes);
        let credential = Secret(credential.to_vec());
        tokio::task::spawn_blocking(move || hashes.iter().any(|h| h.verify(&credential.0)))
            .await
            .map_err(|_| AuthRefusal::Rejected)
    }
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The credential of the one `Authorization: Bearer <credential>` header.
fn bearer(headers: &HeaderMap) -> Result<&[u8], AuthRefusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let v = values.next().ok_or(AuthRefusal::Missing)?;
    if values.next().is_some() {
        return Err(AuthRefusal::Malformed);
    }
    let b = v.as_bytes();
    const SCHEME: &[u8] = b"bearer ";
    if b.len() <= SCHEME.len()
        || b.len() > SCHEME.len() + MAX_CREDENTIAL
        || !b[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
    {
        return Err(AuthRefusal::Malformed);
    }
    let start = b[SCHEME.len()..]
        .iter()
        .position(|c| *c != b' ')
        .ok_or(AuthRefusal::Malformed)?;
    Ok(&b[SCHEME.len() + start..])
}

/// The credential as a token when it has a JWT's shape (three base64url parts).
fn jwt_shaped(c: &[u8]) -> Option<&str> {
    let ok = c
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && c.iter().filter(|b| **b == b'.').count() == 2;
    ok.then(|| std::str::from_utf8(c).ok()).flatten()
}

/// The answer to a refused request.
pub fn refusal(why: AuthRefusal, request_has_body: bool) -> Response {
    let mut r = match why {
        AuthRefusal::Busy => {
            let mut r = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many credentials are being checked at once; retry in a moment",
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        _ => {
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, REFUSED).into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    };
    if request_has_body {
        // Its body is not read: the connection cannot carry another request.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// The layer's function: lets the request through, or answers the refusal (counted in
/// the metrics, not logged: a flood of bad credentials must not flood the log).
async fn middleware(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    match admit(&auth, req.headers()).await {
        Ok(()) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// The check of [`middleware`] on a request's headers: `Ok` lets it through, `Err` is
/// the refusal to answer (also for `POST /model/score`, answered before the router:
/// [`crate::score_lane`]).
pub(crate) async fn admit(auth: &Auth, headers: &HeaderMap) -> Result<(), Response> {
    auth.check(headers).await.map_err(|why| {
        metrics::global().auth_refused(why);
        let has_body = headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
            || headers.contains_key(header::TRANSFER_ENCODING);
        refusal(why, has_body)
    })
}

/// `routes` behind the endpoint security (unchanged when `auth` is `None`: open). The
/// layer wraps only these routes, inside whatever `routes` already has, so apply it to a
/// group before merging it with open routes, and put the body limits inside it.
pub fn protect<S>(routes: Router<S>, auth: Option<&Arc<Auth>>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match auth {
        None => routes,
        Some(a) => routes.route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(a),
            middleware,
        )),
    }
}

#[cfg(test)]
mod tests;
