//! The endpoint security on its own: settings, the `Authorization` header, each method
//! and their mix, the caches, and tokens of every kind an attacker may try.

use super::*;
use jsonwebtoken::Algorithm;
use serde_json::json;
use testkit::tokens::{self, Keys};

fn args() -> AuthArgs {
    AuthArgs {
        oidc_issuer: None,
        oidc_audience: Vec::new(),
        oidc_jwks_file: None,
        oidc_ca_file: None,
        oidc_allow_http: false,
        oidc_jwks_min_refresh_secs: 30.0,
        oidc_leeway_secs: 30,
    }
}

/// Variables of a case: (name, value).
type Vars<'a> = Vec<(&'a str, &'a str)>;

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
    }
    h
}

fn bearer_of(token: &str) -> HeaderMap {
    headers(&[format!("Bearer {token}").as_bytes()])
}

fn settings(vars: &[(&str, &str)], a: &AuthArgs) -> Result<AuthSettings, AuthConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    AuthSettings::from_parts(a, |n| vars.get(n).map(Into::into))
}

fn hash(p: &str) -> String {
    passphrase::hash_passphrase(
        p.as_bytes(),
        passphrase::HashAlgorithm::Pbkdf2Sha256,
        Some(1000),
    )
    .unwrap()
}

#[test]
fn the_bearer_credential_is_read_strictly() {
    let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL + 1));
    let max = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL));
    type Want<'a> = Result<&'a [u8], AuthRefusal>;
    let cases: &[(&str, Vec<&[u8]>, Want)] = &[
        ("none", vec![], Err(AuthRefusal::Missing)),
        ("bearer", vec![b"Bearer abc"], Ok(b"abc")),
        ("case", vec![b"bEaReR abc"], Ok(b"abc")),
        ("spaces", vec![b"Bearer    a b c"], Ok(b"a b c")),
        (
            "utf-8",
            vec!["Bearer pässwörd".as_bytes()],
            Ok("pässwörd".as_bytes()),
        ),
        (
            "basic",
            vec![b"Basic dXNlcjpwYXNz"],
            Err(AuthRefusal::Malformed),
        ),
        (
            "no credential",
            vec![b"Bearer "],
            Err(AuthRefusal::Malformed),
        ),
        (
            "only spaces",
            vec![b"Bearer    "],
            Err(AuthRefusal::Malformed),
        ),
        ("scheme only", vec![b"Bearer"], Err(AuthRefusal::Malformed)),
        ("no space", vec![b"Bearerabc"], Err(AuthRefusal::Malformed)),
        (
            "two headers",
            vec![b"Bearer a", b"Bearer a"],
            Err(AuthRefusal::Malformed),
        ),
        (
            "too long",
            vec![long.as_bytes()],
            Err(AuthRefusal::Malformed),
        ),
        (
            "at the limit",
            vec![max.as_bytes()],
            Ok(&max.as_bytes()[7..]),
        ),
    ];
    for (name, values, want) in cases {
        assert_eq!(bearer(&headers(values)), *want, "{name}");
    }
}

#[test]
fn settings_refuse_what_would_silently_weaken_security() {
    let with_oidc = |f: &dyn Fn(&mut AuthArgs)| {
        let mut a = args();
        f(&mut a);
        a
    };
    let cases: Vec<(&str, Vars, AuthArgs, Option<&str>)> = vec![
        ("nothing: open", vec![], args(), None),
        (
            "empty passphrase",
            vec![("SCORING_PASSPHRASE", "")],
            args(),
            Some("SCORING_PASSPHRASE is set but empty"),
        ),
        (
            "empty hash",
            vec![("SCORING_PASSPHRASE_HASH", "")],
            args(),
            Some("SCORING_PASSPHRASE_HASH is set but empty"),
        ),
        (
            "audience alone",
            vec![],
            with_oidc(&|a| a.oidc_audience = vec!["x".into()]),
            Some("OIDC_AUDIENCE is set but OIDC_ISSUER is not"),
        ),
        (
            "jwks file alone",
            vec![],
            with_oidc(&|a| a.oidc_jwks_file = Some("/x".into())),
            Some("OIDC_JWKS_FILE is set but OIDC_ISSUER is not"),
        ),
        (
            "huge leeway",
            vec![],
            with_oidc(&|a| {
                a.oidc_issuer = Some("https://x".into());
                a.oidc_leeway_secs = 3600
            }),
            Some("OIDC_LEEWAY_SECS must be at most 300"),
        ),
    ];
    for (name, vars, a, want) in cases {
        match (settings(&vars, &a), want) {
            (Ok(s), None) => assert!(s.is_open(), "{name}"),
            (Err(e), Some(w)) => assert!(e.to_string().starts_with(w), "{name}: {e}"),
            (r, w) => panic!("{name}: got {r:?}, want {w:?}"),
        }
    }
    // The secrets never show in Debug.
    let s = settings(&[("SCORING_PASSPHRASE", "hunter2-secret")], &args()).unwrap();
    assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
}

#[test]
fn bad_configurations_name_their_variable() {
    let jwks_missing = {
        let mut a = args();
        a.oidc_issuer = Some(tokens::ISSUER.into());
        a.oidc_audience = vec![tokens::AUDIENCE.into()];
        a.oidc_jwks_file = Some("/nonexistent/jwks.json".into());
        a
    };
    let no_audience = {
        let mut a = args();
        a.oidc_issuer = Some(tokens::ISSUER.into());
        a
    };
    let http_issuer = {
        let mut a = args();
        a.oidc_issuer = Some("http://idp.example.com/realms/x".into());
        a.oidc_audience = vec!["x".into()];
        a
    };
    let unreachable = {
        let mut a = args();
        // A loopback port nobody listens on.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        a.oidc_issuer = Some(format!("http://{}/realms/x", free.local_addr().unwrap()));
        a.oidc_audience = vec!["x".into()];
        a
    };
    let cases: Vec<(&str, Vars, AuthArgs, &str, &str)> = vec![
        (
            "bad hash",
            vec![("SCORING_PASSPHRASE_HASH", "$pbkdf2-sha256$nonsense")],
            args(),
            "SCORING_PASSPHRASE_HASH",
            "hash 1 of 1",
        ),
        (
            "unreadable JWKS",
            vec![],
            jwks_missing,
            "OIDC_JWKS_FILE",
            "cannot read the key set /nonexistent/jwks.json",
        ),
        (
            "no audience",
            vec![],
            no_audience,
            "OIDC_AUDIENCE",
            "is required",
        ),
        (
            "http issuer",
            vec![],
            http_issuer,
            "OIDC_ISSUER",
            "plain http",
        ),
        (
            "issuer unreachable",
            vec![],
            unreachable,
            "OIDC_ISSUER",
            "openid-configuration",
        ),
    ];
    for (name, vars, a, var, want) in cases {
        let e = settings(&vars, &a)
            .and_then(|s| Auth::new(&s).map(|_| ()))
            .unwrap_err();
        assert_eq!(e.variable, var, "{name}: {e}");
        assert!(e.to_string().contains(want), "{name}: {e}");
        assert!(
            !e.to_string().contains("nonsense"),
            "{name}: quotes the hash: {e}"
        );
    }
}

fn auth_with(vars: &[(&str, &str)], a: &AuthArgs) -> Arc<Auth> {
    Auth::new(&settings(vars, a).unwrap()).unwrap().unwrap()
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn passphrases_plain_and_hashed_any_accepts_and_hashes_run_once() {
    let h1 = hash("first passphrase");
    let h2 = hash("second passphrase");
    let a = auth_with(
        &[
            ("SCORING_PASSPHRASE", "plain secret words"),
            ("SCORING_PASSPHRASE_HASH", &format!("{h1}\n{h2}")),
        ],
        &args(),
    );
    assert!(!format!("{a:?}").contains("plain secret words"));
    run(async {
        for (name, cred, ok) in [
            ("plain", "plain secret words", true),
            ("first hash", "first passphrase", true),
            ("second hash", "second passphrase", true),
            ("wrong", "third passphrase", false),
            ("prefix", "plain secret word", false),
            ("longer", "plain secret words!", false),
            ("a hash itself", h1.as_str(), false),
        ] {
            let got = a.check(&bearer_of(cred)).await;
            assert_eq!(got.is_ok(), ok, "{name}: {got:?}");
        }
        let runs = a.hash_runs();
        // Remembered: no new PBKDF2 run for a credential seen before, right or wrong.
        for _ in 0..20 {
            assert!(a.check(&bearer_of("first passphrase")).await.is_ok());
            assert!(a.check(&bearer_of("third passphrase")).await.is_err());
            assert!(a.check(&bearer_of("plain secret words")).await.is_ok());
        }
        assert_eq!(a.hash_runs(), runs, "cached credentials ran PBKDF2 again");
        assert!(a.check(&HeaderMap::new()).await == Err(AuthRefusal::Missing));
    });
}

fn oidc_args(jwks: &std::path::Path) -> AuthArgs {
    let mut a = args();
    a.oidc_issuer = Some(tokens::ISSUER.into());
    a.oidc_audience = vec!["other-client".into(), tokens::AUDIENCE.into()];
    a.oidc_jwks_file = Some(jwks.to_path_buf());
    a.oidc_jwks_min_refresh_secs = 0.0;
    a
}

/// Every way a token may be forged or be wrong is refused; the issuer's real tokens of
/// every allowed algorithm pass.
#[test]
fn oidc_tokens_of_the_issuer_pass_and_forgeries_do_not() {
    let keys = Keys::load();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, keys.jwks()).unwrap();
    let a = auth_with(&[], &oidc_args(&jwks));
    let c = tokens::claims(300);
    let with = |k: &str, v: serde_json::Value| {
        let mut c = c.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = c.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let good = tokens::token(&keys.rsa, &c);
    let mut cases: Vec<(String, String, Result<(), AuthRefusal>)> = Vec::new();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        cases.push((
            format!("{alg:?}"),
            tokens::sign(&keys.rsa, alg, Some("rsa-1"), &c),
            Ok(()),
        ));
    }
    let t = tokens::now();
    let ok = Ok(());
    let rejected = Err(AuthRefusal::Rejected);
    cases.extend([
        ("ES256".into(), tokens::token(&keys.ec, &c), ok),
        ("EdDSA".into(), tokens::token(&keys.ed, &c), ok),
        (
            "no kid, the only EC key".into(),
            tokens::sign(&keys.ec, Algorithm::ES256, None, &c),
            ok,
        ),
        (
            "audience in a list".into(),
            tokens::token(&keys.rsa, &with("aud", json!(["x", tokens::AUDIENCE]))),
            ok,
        ),
        (
            "second audience".into(),
            tokens::token(&keys.rsa, &with("aud", json!("other-client"))),
            ok,
        ),
        (
            "expired within the leeway".into(),
            tokens::token(&keys.rsa, &with("exp", json!(t - 10))),
            ok,
        ),
        (
            "expired".into(),
            tokens::token(&keys.rsa, &with("exp", json!(t - 120))),
            Err(AuthRefusal::Expired),
        ),
        (
            "not yet valid".into(),
            tokens::token(&keys.rsa, &with("nbf", json!(t + 600))),
            rejected,
        ),
        (
            "wrong audience".into(),
            tokens::token(&keys.rsa, &with("aud", json!("someone-else"))),
            rejected,
        ),
        (
            "no audience".into(),
            tokens::token(&keys.rsa, &without("aud")),
            rejected,
        ),
        (
            "wrong issuer".into(),
            tokens::token(&keys.rsa, &with("iss", json!("https://evil.invalid/"))),
            rejected,
        ),
        (
            "no issuer".into(),
            tokens::token(&keys.rsa, &without("iss")),
            rejected,
        ),
        (
            "no exp".into(),
            tokens::token(&keys.rsa, &without("exp")),
            rejected,
        ),
        (
            "other key, same kid".into(),
            tokens::token(&keys.other, &c),
            rejected,
        ),
        (
            "other key, unknown kid".into(),
            tokens::sign(&keys.other, Algorithm::RS256, Some("rsa-2"), &c),
            Err(AuthRefusal::UnknownKey),
        ),
        (
            "RSA kid, EC alg".into(),
            tokens::sign(&keys.ec, Algorithm::ES256, Some("rsa-1"), &c),
            rejected,
        ),
        (
            "HMAC with the public key".into(),
            tokens::hmac(Algorithm::HS256, &keys.rsa_public_pem, Some("rsa-1"), &c),
            rejected,
        ),
        (
            "HMAC, no kid".into(),
            tokens::hmac(Algorithm::HS512, &keys.rsa_public_pem, None, &c),
            rejected,
        ),
        (
            "alg none".into(),
            tokens::raw(&json!({"alg": "none", "kid": "rsa-1"}), &c, b""),
            rejected,
        ),
        (
            "alg None".into(),
            tokens::raw(&json!({"alg": "None"}), &c, b""),
            rejected,
        ),
        (
            "truncated".into(),
            good[..good.len() - 10].to_string(),
            rejected,
        ),
        (
            "signature of another token".into(),
            {
                let other = tokens::token(&keys.rsa, &with("sub", json!("admin")));
                let sig = good.rsplit('.').next().unwrap();
                format!("{}.{sig}", other.rsplit_once('.').unwrap().0)
            },
            rejected,
        ),
        (
            "garbage header".into(),
            "eyJub3QiOiJqc29uIg.e30.c2ln".into(),
            rejected,
        ),
    ]);
    run(async {
        for (name, token, want) in &cases {
            assert_eq!(a.check(&bearer_of(token)).await, *want, "{name}");
            // A second time (cached or not), the same answer.
            assert_eq!(a.check(&bearer_of(token)).await, *want, "{name}, again");
        }
    });
}

/// A token signed by a key the issuer starts listing later passes once the key set is
/// read again on the unknown `kid`; a removed key stops passing at the next refresh,
/// even for a token that was remembered.
#[test]
fn keys_are_read_again_on_an_unknown_kid_and_removed_keys_stop_passing() {
    let keys = Keys::load();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let set: serde_json::Value = serde_json::from_str(&keys.jwks()).unwrap();
    let only_rsa = json!({"keys": [set["keys"][0].clone()]});
    std::fs::write(&jwks, only_rsa.to_string()).unwrap();
    let a = auth_with(&[], &oidc_args(&jwks));
    let ec = tokens::token(&keys.ec, &tokens::claims(300));
    let rsa = tokens::token(&keys.rsa, &tokens::claims(300));
    run(async {
        assert_eq!(a.check(&bearer_of(&ec)).await, Err(AuthRefusal::UnknownKey));
        assert!(a.check(&bearer_of(&rsa)).await.is_ok());
        std::fs::write(&jwks, keys.jwks()).unwrap();
        assert_eq!(
            a.check(&bearer_of(&ec)).await,
            Ok(()),
            "read again on the unknown kid"
        );
        // The RSA key goes away: the remembered RSA token stops passing after a refresh.
        let without_rsa = json!({"keys": [set["keys"][1].clone(), set["keys"][2].clone()]});
        std::fs::write(&jwks, without_rsa.to_string()).unwrap();
        assert!(
            a.oidc.as_ref().unwrap().refresh(true).await,
            "key set changed"
        );
        assert_eq!(
            a.check(&bearer_of(&rsa)).await,
            Err(AuthRefusal::UnknownKey)
        );
        assert_eq!(a.check(&bearer_of(&ec)).await, Ok(()));
    });
}

/// With a refresh interval, unknown kids do not make the shim read the keys again and
/// again.
#[test]
fn unknown_kids_are_rate_limited() {
    let keys = Keys::load();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let set: serde_json::Value = serde_json::from_str(&keys.jwks()).unwrap();
    std::fs::write(&jwks, json!({"keys": [set["keys"][0].clone()]}).to_string()).unwrap();
    let mut args = oidc_args(&jwks);
    args.oidc_jwks_min_refresh_secs = 3600.0;
    let a = auth_with(&[], &args);
    let ec = tokens::token(&keys.ec, &tokens::claims(300));
    run(async {
        std::fs::write(&jwks, keys.jwks()).unwrap();
        // The keys were read at start-up, less than an hour ago: no new read.
        for _ in 0..5 {
            assert_eq!(a.check(&bearer_of(&ec)).await, Err(AuthRefusal::UnknownKey));
        }
    });
}

#[test]
fn oidc_and_passphrases_mix() {
    let keys = Keys::load();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, keys.jwks()).unwrap();
    let a = auth_with(
        &[("SCORING_PASSPHRASE_HASH", &hash("rotating passphrase"))],
        &oidc_args(&jwks),
    );
    let d = a.describe();
    assert!(
        d.contains("1 hashed passphrase") && d.contains("OIDC tokens of"),
        "{d}"
    );
    run(async {
        assert!(a.check(&bearer_of("rotating passphrase")).await.is_ok());
        assert!(a
            .check(&bearer_of(&tokens::token(&keys.ed, &tokens::claims(60))))
            .await
            .is_ok());
        assert!(a.check(&bearer_of("not it")).await.is_err());
    });
}

#[test]
fn refusals_say_nothing_about_why() {
    for why in AuthRefusal::ALL {
        let r = refusal(why, true);
        assert_eq!(r.headers()[header::CONNECTION], "close");
        if why == AuthRefusal::Busy {
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        } else {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why:?}");
            assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    assert!(refusal(AuthRefusal::Missing, false)
        .headers()
        .get(header::CONNECTION)
        .is_none());
}
