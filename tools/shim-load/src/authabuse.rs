//! `auth-abuse`: seeded attacks on the endpoint security of a shim configured with known
//! credentials (`--passphrase`, the test issuer's keys of `testdata/auth`): every case
//! that does not carry a valid credential must be refused (401; 400 or 431 for a header
//! the HTTP layer itself refuses; 429 when hashed-passphrase checks are saturated) and
//! never let in (2xx) nor answered 5xx. A share of the cases carries a valid credential
//! and must get 200, so that a shim refusing everything fails too.
//!
//! Categories (each case breaks one thing): wrong, near-miss (truncated, extended, case
//! changed) and hash-as-passphrase passphrases; tokens signed by another key (known and
//! unknown `kid`), expired, not yet valid, for another audience or issuer, without
//! `exp`, `alg: none`, HMAC "signed" with the issuer's public key, tampered payloads or
//! signatures, truncated tokens; malformed `Authorization` headers (other schemes, two
//! headers, control and non-ASCII bytes, no credential) and huge ones (16 KiB to 1 MiB);
//! no header at all. Case `i` depends only on the seed and `i`; tokens come from pools
//! of [`POOL`] per kind signed at the start (also from the seed), so the client signs a
//! few hundred tokens, not thousands.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde::Serialize;
use serde_json::{json, Value};
use testkit::tokens::{self, Keys};

use crate::error::Result;
use crate::http::{self, Response};
use crate::rng::Rng;

/// Settings of an auth-abuse run.
#[derive(Debug, Clone)]
pub struct AuthAbuseConfig {
    pub addr: SocketAddr,
    pub requests: u64,
    pub seed: u64,
    pub concurrency: usize,
    /// The shim's valid passphrases (plain or hashed there).
    pub passphrases: Vec<String>,
    /// Text the shim stores (its hashes): presented as credentials, they must fail.
    pub stored: Vec<String>,
    /// The issuer and audience the shim accepts tokens of (`None`: no OIDC cases are
    /// expected to pass, and the valid ones are left out).
    pub issuer: Option<String>,
    pub audience: String,
    /// A `/model/score` body the shim scores.
    pub score_body: Vec<u8>,
    pub timeout: Duration,
}

/// What one category got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub cases: u64,
    pub outcomes: BTreeMap<String, u64>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct AuthAbuseReport {
    pub seed: u64,
    pub cases: u64,
    pub seconds: f64,
    pub categories: BTreeMap<String, Stats>,
    /// Cases without a valid credential answered 2xx.
    pub let_in: u64,
    /// Answers 500 and over.
    pub server_errors: u64,
    /// Cases with a valid credential not answered 200.
    pub valid_refused: u64,
    pub violation_count: u64,
    /// The first violations.
    pub violations: Vec<String>,
    pub ok: bool,
}

impl AuthAbuseReport {
    pub fn text(&self) -> String {
        let mut s = format!(
            "auth-abuse: {} cases (seed {}) in {:.1} s\n{:<24} {:>6}  outcomes\n",
            self.cases, self.seed, self.seconds, "category", "cases"
        );
        for (name, c) in &self.categories {
            let o: Vec<String> = c
                .outcomes
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            s.push_str(&format!("{name:<24} {:>6}  {}\n", c.cases, o.join(", ")));
        }
        s.push_str(&format!(
            "let in without a valid credential: {}; 5xx: {}; valid credentials refused: {}\n",
            self.let_in, self.server_errors, self.valid_refused
        ));
        for v in &self.violations {
            s.push_str(&format!("  {v}\n"));
        }
        s.push_str(if self.ok {
            "result: ok\n"
        } else {
            "result: FAILED\n"
        });
        s
    }
}

/// One request and what it may get.
struct Case {
    category: &'static str,
    bytes: Vec<u8>,
    /// A valid credential: must be 200.
    valid: bool,
    /// Allowed statuses for an invalid one (never 2xx or 5xx).
    allowed: &'static [u16],
}

const REFUSED: &[u16] = &[401, 429];
/// A header the HTTP layer may refuse before the endpoint security sees it.
const BAD_HEADER: &[u16] = &[400, 401, 429, 431];

struct Gen {
    cfg: AuthAbuseConfig,
    keys: Keys,
    /// Tokens by kind (10: valid, 12..=21: the bad kinds), signed once at the start: a
    /// case picks one (signing thousands of RSA tokens would make the client the
    /// bottleneck). The shim verifies each one it is sent.
    pools: BTreeMap<usize, Vec<(&'static str, String)>>,
}

/// Tokens signed per kind.
const POOL: usize = 48;

impl Gen {
    fn new(cfg: AuthAbuseConfig) -> Gen {
        let mut g = Gen {
            cfg,
            keys: Keys::load(),
            pools: BTreeMap::new(),
        };
        if g.cfg.issuer.is_some() {
            for kind in std::iter::once(10).chain(12..=21) {
                let mut rng = Rng::for_case(g.cfg.seed ^ 0xA5A5_0000, kind as u64);
                let pool = (0..POOL)
                    .map(|_| match kind {
                        10 => ("valid-token", g.good_token(&mut rng)),
                        _ => g.bad_token(kind, &mut rng),
                    })
                    .collect();
                g.pools.insert(kind, pool);
            }
        }
        g
    }

    fn pooled(&self, kind: usize, rng: &mut Rng) -> (&'static str, String) {
        let pool = &self.pools[&kind];
        pool[rng.below(pool.len())].clone()
    }

    fn claims(&self, rng: &mut Rng) -> Value {
        let mut c = tokens::claims(rng.range(1800, 7200) as i64);
        if let Some(i) = &self.cfg.issuer {
            c["iss"] = json!(i);
        }
        c["aud"] = json!(self.cfg.audience);
        c["sub"] = json!(format!("client-{}", rng.below(1000)));
        c
    }

    fn good_token(&self, rng: &mut Rng) -> String {
        let c = self.claims(rng);
        match rng.below(4) {
            0 => tokens::token(&self.keys.rsa, &c),
            1 => tokens::sign(&self.keys.rsa, Algorithm::PS256, Some("rsa-1"), &c),
            2 => tokens::token(&self.keys.ec, &c),
            _ => tokens::token(&self.keys.ed, &c),
        }
    }

    fn request(&self, rng: &mut Rng, auth: &[Vec<u8>]) -> Vec<u8> {
        let (method, path, body): (&str, &str, &[u8]) = match rng.below(5) {
            0 => ("GET", "/model/id", b""),
            1 => ("GET", "/model/schema", b""),
            2 => ("GET", "/model/capabilities", b""),
            _ => ("POST", "/model/score", &self.cfg.score_body),
        };
        let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
            .into_bytes();
        for a in auth {
            r.extend_from_slice(b"Authorization: ");
            r.extend_from_slice(a);
            r.extend_from_slice(b"\r\n");
        }
        if method == "POST" {
            r.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body);
        r
    }

    fn bearer(c: &str) -> Vec<u8> {
        format!("Bearer {c}").into_bytes()
    }

    fn case(&self, index: u64) -> Case {
        let mut rng = Rng::for_case(self.cfg.seed, index);
        let (category, auth, valid, allowed) = self.draw(&mut rng);
        Case {
            category,
            bytes: self.request(&mut rng, &auth),
            valid,
            allowed,
        }
    }

    /// The case's category, its `Authorization` values, whether it is valid, and the
    /// statuses an invalid one may get.
    fn draw(&self, rng: &mut Rng) -> (&'static str, Vec<Vec<u8>>, bool, &'static [u16]) {
        let oidc = self.cfg.issuer.is_some();
        let pick = rng.below(if oidc { 22 } else { 12 });
        let pass = self.cfg.passphrases[rng.below(self.cfg.passphrases.len())].clone();
        let word = |rng: &mut Rng, lo, hi| -> String {
            (0..rng.range(lo, hi))
                .map(|_| (b'!' + rng.below(94) as u8) as char)
                .collect()
        };
        let bearer = Self::bearer;
        match pick {
            0 => ("valid-passphrase", vec![bearer(&pass)], true, &[]),
            1 => {
                let w = word(rng, 1, 64);
                let w = if self.cfg.passphrases.contains(&w) {
                    format!("{w}x")
                } else {
                    w
                };
                ("wrong-passphrase", vec![bearer(&w)], false, REFUSED)
            }
            2 => {
                let near = match rng.below(4) {
                    0 if pass.len() > 1 => pass[..rng.range(1, pass.len() - 1)].to_string(),
                    1 => format!("{pass}{}", word(rng, 1, 3)),
                    2 => pass.to_uppercase(),
                    _ => format!("x{pass}"),
                };
                let near = if self.cfg.passphrases.contains(&near) {
                    format!("{near}x")
                } else {
                    near
                };
                ("near-passphrase", vec![bearer(&near)], false, REFUSED)
            }
            3 if !self.cfg.stored.is_empty() => {
                let h = self.cfg.stored[rng.below(self.cfg.stored.len())].clone();
                ("hash-as-passphrase", vec![bearer(&h)], false, REFUSED)
            }
            3 | 4 => ("no-header", vec![], false, REFUSED),
            5 => {
                let v: Vec<u8> = match rng.below(8) {
                    0 => format!("Basic {}", tokens::b64(pass.as_bytes())).into_bytes(),
                    1 => b"Bearer".to_vec(),
                    2 => b"Bearer    ".to_vec(),
                    3 => pass.clone().into_bytes(),
                    4 => format!("Token {pass}").into_bytes(),
                    5 => format!("Bearer\t{pass}").into_bytes(),
                    6 => format!("Bearer {pass}\x01").into_bytes(),
                    _ => {
                        let mut v = b"Bearer ".to_vec();
                        v.extend(pass.bytes());
                        v.extend([0xff, 0xfe]);
                        v
                    }
                };
                ("malformed-header", vec![v], false, BAD_HEADER)
            }
            6 => (
                "two-headers",
                vec![bearer(&pass), bearer(&pass)],
                false,
                BAD_HEADER,
            ),
            7 => {
                let n = [16 * 1024 + 1, 64 * 1024, 300 * 1024, 1 << 20][rng.below(4)];
                let mut v = bearer(&pass);
                v.extend(std::iter::repeat_n(b'a', n));
                ("huge-header", vec![v], false, BAD_HEADER)
            }
            8 => {
                let raw = word(rng, 100, 2000);
                ("random-bytes", vec![bearer(&raw)], false, REFUSED)
            }
            9 => {
                let part = |rng: &mut Rng| word(rng, 5, 40).replace('.', "x");
                let t = format!("{}.{}.{}", part(rng), part(rng), part(rng));
                ("jwt-shaped-garbage", vec![bearer(&t)], false, REFUSED)
            }
            10 | 11 if !oidc => ("valid-passphrase", vec![bearer(&pass)], true, &[]),
            10 | 11 => {
                let (cat, t) = self.pooled(10, rng);
                (cat, vec![bearer(&t)], true, &[])
            }
            _ => {
                let (cat, token) = self.pooled(pick, rng);
                (cat, vec![bearer(&token)], false, REFUSED)
            }
        }
    }

    /// A token the shim must refuse, of kind `pick` (12..=21).
    fn bad_token(&self, pick: usize, rng: &mut Rng) -> (&'static str, String) {
        let mut cl = self.claims(rng);
        let t = tokens::now();
        match pick {
            12 => (
                "other-key",
                match rng.below(2) {
                    0 => tokens::token(&self.keys.other, &cl),
                    _ => tokens::sign(&self.keys.other, Algorithm::RS256, Some("attacker-1"), &cl),
                },
            ),
            13 => {
                cl["exp"] = json!(t - rng.range(120, 86_400) as i64);
                ("expired", self.good_token_with(rng, &cl))
            }
            14 => {
                cl["nbf"] = json!(t + rng.range(120, 86_400) as i64);
                ("not-yet-valid", self.good_token_with(rng, &cl))
            }
            15 => {
                let aud = format!("{}-x", self.cfg.audience);
                cl["aud"] = json!([json!("other-app"), json!(aud)][rng.below(2)]);
                ("wrong-audience", self.good_token_with(rng, &cl))
            }
            16 => {
                let trailing = format!("{}/", self.cfg.issuer.as_deref().unwrap_or(""));
                cl["iss"] = json!(
                    [
                        json!("https://evil.invalid/realms/scoring"),
                        json!(trailing)
                    ][rng.below(2)]
                );
                ("wrong-issuer", self.good_token_with(rng, &cl))
            }
            17 => {
                let alg = ["none", "None", "NONE", "nOnE"][rng.below(4)];
                let sig: &[u8] = if rng.chance(0.5) { b"" } else { b"sig" };
                (
                    "alg-none",
                    tokens::raw(&json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"}), &cl, sig),
                )
            }
            18 => {
                let alg = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][rng.below(3)];
                let kid = ["rsa-1", "ec-1"][rng.below(2)];
                let secret = if rng.chance(0.5) {
                    self.keys.rsa_public_pem.clone()
                } else {
                    self.keys.jwks().into_bytes()
                };
                (
                    "hmac-public-key",
                    tokens::hmac(alg, &secret, Some(kid), &cl),
                )
            }
            19 => {
                // A real token with its claims changed, its signature kept.
                let good = self.good_token_with(rng, &cl);
                let mut forged = cl.clone();
                forged["sub"] = json!("admin");
                forged["exp"] = json!(t + 10 * 365 * 86_400);
                let (head, _) = good.split_once('.').expect("three parts");
                let sig = good.rsplit('.').next().expect("three parts");
                let body = tokens::b64(forged.to_string().as_bytes());
                ("tampered", format!("{head}.{body}.{sig}"))
            }
            20 => {
                let good = self.good_token_with(rng, &cl);
                let cut = rng.range(1, good.len() - 1);
                ("truncated-token", good[..cut].to_string())
            }
            _ => {
                let claim = ["exp", "aud", "iss"][rng.below(3)];
                cl.as_object_mut().expect("claims").remove(claim);
                ("missing-claim", self.good_token_with(rng, &cl))
            }
        }
    }

    fn good_token_with(&self, rng: &mut Rng, claims: &Value) -> String {
        match rng.below(3) {
            0 => tokens::token(&self.keys.rsa, claims),
            1 => tokens::token(&self.keys.ec, claims),
            _ => tokens::token(&self.keys.ed, claims),
        }
    }
}

/// Runs the cases; the report says whether every answer was allowed.
pub async fn run(cfg: AuthAbuseConfig) -> Result<AuthAbuseReport> {
    if cfg.passphrases.is_empty() {
        return Err(crate::Error::Usage(
            "auth-abuse needs at least one --passphrase the shim accepts".into(),
        ));
    }
    let gen = Arc::new(Gen::new(cfg.clone()));
    let next = Arc::new(AtomicU64::new(0));
    // (categories, let in, 5xx, valid refused, first violations, all violations)
    type Agg = (BTreeMap<String, Stats>, u64, u64, u64, Vec<String>, u64);
    let agg: Arc<Mutex<Agg>> = Arc::default();
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..cfg.concurrency.max(1) {
        let (gen, next, agg) = (Arc::clone(&gen), Arc::clone(&next), Arc::clone(&agg));
        let (addr, timeout, total) = (cfg.addr, cfg.timeout, cfg.requests);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let case = gen.case(i);
                let got: std::result::Result<Response, crate::Error> =
                    http::once(addr, &case.bytes, timeout).await;
                let outcome = match &got {
                    Ok(r) => r.status.to_string(),
                    // A huge or broken header may be cut off by the server: no entry.
                    Err(crate::Error::Closed { .. } | crate::Error::Reset) => {
                        "closed without answer".to_string()
                    }
                    Err(e) => format!("error: {e}"),
                };
                let mut a = agg.lock().expect("stats");
                let st = a.0.entry(case.category.to_string()).or_default();
                st.cases += 1;
                *st.outcomes.entry(outcome.clone()).or_default() += 1;
                let status = got.as_ref().ok().map(|r| r.status);
                let violation = match (case.valid, status) {
                    (true, Some(200)) => None,
                    (true, _) => {
                        a.3 += 1;
                        Some(format!(
                            "case {i} {}: a valid credential got {outcome}",
                            case.category
                        ))
                    }
                    (false, Some(s)) if (200..300).contains(&s) => {
                        a.1 += 1;
                        Some(format!("case {i} {}: LET IN ({s})", case.category))
                    }
                    (false, Some(s)) if s >= 500 => {
                        a.2 += 1;
                        Some(format!("case {i} {}: server error {s}", case.category))
                    }
                    (false, Some(s)) if case.allowed.contains(&s) => None,
                    (false, None) if case.allowed == BAD_HEADER => None,
                    (false, _) => Some(format!(
                        "case {i} {}: got {outcome}, allowed {:?}",
                        case.category, case.allowed
                    )),
                };
                if let Some(v) = violation {
                    a.5 += 1;
                    if a.4.len() < 50 {
                        a.4.push(v);
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| crate::Error::Io {
            op: "join a worker",
            source: std::io::Error::other(e),
        })?;
    }
    let (categories, let_in, server_errors, valid_refused, violations, violation_count) =
        std::mem::take(&mut *agg.lock().expect("stats"));
    let ok = violation_count == 0 && let_in == 0 && server_errors == 0 && valid_refused == 0;
    Ok(AuthAbuseReport {
        seed: cfg.seed,
        cases: categories.values().map(|c| c.cases).sum(),
        seconds: start.elapsed().as_secs_f64(),
        categories,
        let_in,
        server_errors,
        valid_refused,
        violation_count,
        violations,
        ok,
    })
}
