//! Endpoint security and metrics of the real binary: passphrases (plain and hashed with
//! `runtime-shim hash-passphrase`), OIDC tokens from a key file and from a discovery
//! document served here, the refusals and their form, the start-up refusals (exit 8),
//! and `/metrics` on the API port (protected) or on `METRICS_PORT` (open).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use testkit::tokens::{self, Keys};

use super::{process, request_for, run_to_exit, Server, BIN};

/// `runtime-shim hash-passphrase [args]` with `stdin`: (exit code, stdout, stderr).
fn hash_passphrase(stdin: &[u8], args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("hash-passphrase")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A PHC hash of `p` made by the binary (1000 rounds: the tests' own speed).
pub fn hash_of(p: &str) -> String {
    let (code, out, err) = hash_passphrase(format!("{p}\n").as_bytes(), &["--iterations", "1000"]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

#[test]
fn hash_passphrase_prints_a_salted_pbkdf2_phc_string() {
    let (code, out, err) = hash_passphrase(b"correct horse battery staple\n", &[]);
    assert_eq!(code, 0, "{err}");
    let h = out.trim();
    assert!(h.starts_with("$pbkdf2-sha256$i=600000,l=32$"), "{h}");
    assert_eq!(out.lines().count(), 1);
    assert!(!err.contains("correct horse"), "{err}");
    let (_, again, _) = hash_passphrase(b"correct horse battery staple\n", &[]);
    assert_ne!(again.trim(), h, "a new salt each time");
    let (code, out, _) = hash_passphrase(b"x\r\n", &["--algorithm", "pbkdf2-sha512"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("$pbkdf2-sha512$i=210000,l=32$"), "{out}");
    for (name, stdin, args, want) in [
        ("empty", &b""[..], &[][..], "holds no passphrase"),
        ("only a newline", b"\n", &[], "holds no passphrase"),
        (
            "too few rounds",
            b"x",
            &["--iterations", "10"],
            "at least 1000",
        ),
    ] {
        let (code, _, err) = hash_passphrase(stdin, args);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// Plain and hashed passphrases at once: every `/model/*` route (and `/metrics`) needs
/// one; `/readyz` and `/healthz` do not; every refusal is the same 401; a body is not
/// read before the check; nothing secret reaches the log.
#[test]
fn passphrases_protect_every_model_route() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let plain = "plain-passphrase-4f1c";
    let hashed = "hashed passphrase 9b2e";
    let rotated = "rotated passphrase 77aa";
    let hashes = format!("{}\n{}", hash_of(hashed), hash_of(rotated));
    let server = Server::start(
        &dir,
        &[
            ("SCORING_PASSPHRASE", plain),
            ("SCORING_PASSPHRASE_HASH", &hashes),
            ("MAX_BODY_BYTES", "1M"),
        ],
    );
    let req = request_for("gbm_binomial").to_string();
    let routes: &[(&str, &str, Option<&str>, u16)] = &[
        ("GET", "/model/id", None, 200),
        ("GET", "/model/schema", None, 200),
        ("GET", "/model/sample_request", None, 200),
        ("GET", "/model/capabilities", None, 200),
        ("POST", "/model/score", Some(&req), 200),
        (
            "POST",
            "/model/contribution",
            Some(
                r#"{"requestShapleyValueType":"ORIGINAL","fields":["x1","x2","x3","color"],"rows":[["1","2","3","red"]]}"#,
            ),
            200,
        ),
        ("POST", "/model/media-score", Some("{}"), 501),
        ("GET", "/metrics", None, 200),
    ];
    for (method, path, body, ok) in routes {
        for (name, cred, want) in [
            ("plain", Some(plain), *ok),
            ("hashed", Some(hashed), *ok),
            ("rotated hash", Some(rotated), *ok),
            ("none", None, 401),
            ("wrong", Some("wrong passphrase"), 401),
            ("truncated", Some(&plain[..plain.len() - 1]), 401),
            (
                "a hash as the passphrase",
                Some(hashes.lines().next().unwrap()),
                401,
            ),
        ] {
            let r = server.call(method, path, *body, cred);
            assert_eq!(r.status, want, "{method} {path} ({name}): {}", r.body);
            if want == 401 {
                assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{path}");
                assert_eq!(
                    r.json(),
                    json!({"detail": "Unauthorized: send a valid passphrase or token as `Authorization: Bearer <credential>`"}),
                    "{path} ({name})"
                );
            }
        }
        if *method == "POST" {
            // A body over MAX_BODY_BYTES announced, one byte sent, no credential: the
            // answer is 401 at once (not 413, not a wait for the body).
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
                2 << 20
            );
            let mut s =
                std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
            assert!(
                answer.to_ascii_lowercase().contains("connection: close"),
                "{answer}"
            );
        }
    }
    for path in ["/readyz", "/healthz"] {
        assert_eq!(server.call("GET", path, None, None).status, 200, "{path}");
    }
    assert_eq!(
        server
            .call("GET", "/model/nothing", None, Some(plain))
            .status,
        404
    );

    // The scores are those of an open shim.
    let r = server.call("POST", "/model/score", Some(&req), Some(hashed));
    let rows = request_for("gbm_binomial")["rows"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(r.json()["score"].as_array().unwrap().len(), rows);

    let metrics = server.call("GET", "/metrics", None, Some(plain)).body;
    for want in [
        r#"runtime_shim_requests_total{route="/model/score",status="200"}"#,
        r#"runtime_shim_requests_total{route="/model/score",status="401"}"#,
        r#"runtime_shim_auth_refused_total{reason="missing"}"#,
        r#"runtime_shim_rows_scored_total{route="/model/score"}"#,
        "runtime_shim_model_load_seconds",
        "runtime_shim_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(want), "{want} not in:\n{metrics}");
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(
            "endpoint security: /model/* (and /v2/models/*) needs one of a plain passphrase"
        ),
        "{log}"
    );
    for secret in [plain, hashed, rotated, &plain[..plain.len() - 1]] {
        assert!(!log.contains(secret), "the log holds a credential:\n{log}");
    }
    for h in hashes.lines() {
        let salt = h.split('$').nth(3).unwrap();
        assert!(!log.contains(salt), "the log holds a hash:\n{log}");
    }
}

/// Without any method the shim serves everyone and says so once, loudly.
#[test]
fn open_endpoints_are_announced_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(&dir, &[]);
    assert_eq!(server.call("GET", "/model/id", None, None).status, 200);
    assert_eq!(server.call("GET", "/metrics", None, None).status, 200);
    let (_, log) = server.stop();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ENDPOINT SECURITY IS OFF"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
}

/// A configuration that cannot protect as asked stops the start with exit 8 and a
/// message naming the variable, never the secret.
#[test]
fn bad_security_configuration_exits_8_naming_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let model = dir.to_str().unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/realms/x", l.local_addr().unwrap())
    };
    let bad_jwks = tmp.path().join("bad.json");
    std::fs::write(&bad_jwks, r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).unwrap();
    let bad_jwks = bad_jwks.to_str().unwrap();
    type Vars<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Vars, &str)> = vec![
        (
            "empty passphrase",
            vec![("SCORING_PASSPHRASE", "")],
            "SCORING_PASSPHRASE is set but empty",
        ),
        (
            "unparsable hash",
            vec![("SCORING_PASSPHRASE_HASH", "sekrit-not-a-hash")],
            "SCORING_PASSPHRASE_HASH hash 1 of 1: unknown hash scheme",
        ),
        (
            "audience without issuer",
            vec![("OIDC_AUDIENCE", "x")],
            "OIDC_AUDIENCE is set but OIDC_ISSUER is not",
        ),
        (
            "issuer without audience",
            vec![("OIDC_ISSUER", tokens::ISSUER)],
            "OIDC_AUDIENCE is required",
        ),
        (
            "unreadable JWKS",
            vec![
                ("OIDC_ISSUER", tokens::ISSUER),
                ("OIDC_AUDIENCE", "x"),
                ("OIDC_JWKS_FILE", "/nonexistent/jwks.json"),
            ],
            "OIDC_JWKS_FILE cannot read the key set",
        ),
        (
            "only HMAC keys",
            vec![
                ("OIDC_ISSUER", tokens::ISSUER),
                ("OIDC_AUDIENCE", "x"),
                ("OIDC_JWKS_FILE", bad_jwks),
            ],
            "none is a usable signing key",
        ),
        (
            "issuer unreachable",
            vec![("OIDC_ISSUER", &closed), ("OIDC_AUDIENCE", "x")],
            "OIDC_ISSUER GET http://127.0.0.1",
        ),
        (
            "plain http issuer",
            vec![
                ("OIDC_ISSUER", "http://idp.example.com/realms/x"),
                ("OIDC_AUDIENCE", "x"),
            ],
            "OIDC_ISSUER \"http://idp.example.com/realms/x\" is plain http",
        ),
    ];
    for (name, vars, want) in cases {
        let mut env = vec![("MODEL_PATH", model), ("PORT", "0"), ("HOST", "127.0.0.1")];
        env.extend(vars);
        let (code, log) = run_to_exit(&[], &env);
        assert_eq!(code, 8, "{name}: {log}");
        assert!(log.contains(want), "{name}: {log}");
        assert!(!log.contains("sekrit"), "{name}: {log}");
        assert!(
            !log.contains("listening on"),
            "{name}: bound before refusing: {log}"
        );
    }
}

/// A tiny HTTP issuer on 127.0.0.1: `/.well-known/openid-configuration` and `/jwks`,
/// whose key set the test changes, counting the key-set requests.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<String>>,
    jwks_requests: Arc<AtomicUsize>,
}

impl Issuer {
    fn start(jwks: String) -> Issuer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/realms/scoring", l.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(jwks));
        let count = Arc::new(AtomicUsize::new(0));
        let (j, c, u) = (Arc::clone(&jwks), Arc::clone(&count), url.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut line = String::new();
                let mut r = BufReader::new(s.try_clone().unwrap());
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers.
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if path.ends_with("/.well-known/openid-configuration") {
                    (
                        200,
                        json!({"issuer": u, "jwks_uri": format!("{u}/jwks")}).to_string(),
                    )
                } else if path.ends_with("/jwks") {
                    c.fetch_add(1, Ordering::SeqCst);
                    (200, j.lock().unwrap().clone())
                } else {
                    (404, "{}".to_string())
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut rest = Vec::new();
                let _ = s.set_read_timeout(Some(Duration::from_millis(10)));
                let _ = s.read_to_end(&mut rest);
            }
        });
        Issuer {
            url,
            jwks,
            jwks_requests: count,
        }
    }
}

/// OIDC through discovery: the issuer's tokens of each key type pass, forgeries do not,
/// a key added later is picked up on its unknown `kid`, and tokens with unknown kids do
/// not make the shim fetch the keys more than once per OIDC_JWKS_MIN_REFRESH_SECS.
#[test]
fn oidc_tokens_through_discovery() {
    let keys = Keys::load();
    let set: Value = serde_json::from_str(&keys.jwks()).unwrap();
    let only_rsa = json!({"keys": [set["keys"][0].clone()]}).to_string();
    let issuer = Issuer::start(only_rsa);
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(
        &dir,
        &[
            ("OIDC_ISSUER", &issuer.url),
            ("OIDC_AUDIENCE", tokens::AUDIENCE),
            ("OIDC_JWKS_MIN_REFRESH_SECS", "2"),
            ("METRICS_PORT", "0"),
        ],
    );
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        1,
        "fetched at start-up"
    );
    let claims = |iss: &str| {
        let mut c = tokens::claims(300);
        c["iss"] = json!(iss);
        c
    };
    let good = tokens::token(&keys.rsa, &claims(&issuer.url));
    let req = request_for("gbm_binomial").to_string();
    let r = server.call("POST", "/model/score", Some(&req), Some(&good));
    assert_eq!(r.status, 200, "{}", r.body);
    for (name, token) in [
        (
            "another issuer",
            tokens::token(&keys.rsa, &tokens::claims(300)),
        ),
        ("expired", {
            let mut c = claims(&issuer.url);
            c["exp"] = json!(tokens::now() - 3600);
            tokens::token(&keys.rsa, &c)
        }),
        (
            "other key",
            tokens::token(&keys.other, &claims(&issuer.url)),
        ),
        (
            "HMAC with the public key",
            tokens::hmac(
                jsonwebtoken::Algorithm::HS256,
                &keys.rsa_public_pem,
                Some("rsa-1"),
                &claims(&issuer.url),
            ),
        ),
        (
            "alg none",
            tokens::raw(&json!({"alg": "none"}), &claims(&issuer.url), b""),
        ),
    ] {
        let r = server.call("POST", "/model/score", Some(&req), Some(&token));
        assert_eq!(r.status, 401, "{name}: {}", r.body);
    }
    // The EC key is not listed yet: its tokens fail, at most one fetch per 2 s.
    let ec = tokens::token(&keys.ec, &claims(&issuer.url));
    for _ in 0..30 {
        assert_eq!(server.call("GET", "/model/id", None, Some(&ec)).status, 401);
    }
    let fetches = issuer.jwks_requests.load(Ordering::SeqCst);
    assert!(
        fetches <= 2,
        "{fetches} key set fetches for 30 unknown kids"
    );
    // The issuer rotates in the EC key: once the interval has passed, it is fetched.
    *issuer.jwks.lock().unwrap() = keys.jwks();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if server.call("GET", "/model/id", None, Some(&ec)).status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was never fetched"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ed = tokens::token(&keys.ed, &claims(&issuer.url));
    assert_eq!(server.call("GET", "/model/id", None, Some(&ed)).status, 200);

    // METRICS_PORT: /metrics there, open; not on the API port.
    assert_eq!(
        server.call("GET", "/metrics", None, Some(&good)).status,
        404
    );
    let log = server.log();
    let metrics_addr = log
        .lines()
        .find_map(|l| l.split("metrics on ").nth(1))
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address in:\n{log}"))
        .to_string();
    let text = ureq::get(format!("http://{metrics_addr}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let rows = request_for("gbm_binomial")["rows"]
        .as_array()
        .unwrap()
        .len();
    for want in [
        r#"runtime_shim_requests_total{route="/model/score",status="200"} 1"#.to_string(),
        r#"runtime_shim_requests_total{route="/model/score",status="401"} 5"#.to_string(),
        r#"runtime_shim_auth_refused_total{reason="unknown_key"}"#.to_string(),
        r#"runtime_shim_auth_refused_total{reason="expired"} 1"#.to_string(),
        format!(r#"runtime_shim_rows_scored_total{{route="/model/score"}} {rows}"#),
        "runtime_shim_child_restarts_total 0".to_string(),
    ] {
        assert!(text.contains(&want), "{want} not in:\n{text}");
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    for t in [&good, &ec, &ed] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token in the log:\n{log}");
    }
}

/// OIDC from a key file and a hashed passphrase at once: either lets a request in.
#[test]
fn oidc_from_a_key_file_mixes_with_passphrases() {
    let keys = Keys::load();
    let tmp = tempfile::tempdir().unwrap();
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, keys.jwks()).unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(
        &dir,
        &[
            ("OIDC_ISSUER", tokens::ISSUER),
            ("OIDC_AUDIENCE", tokens::AUDIENCE),
            ("OIDC_JWKS_FILE", jwks.to_str().unwrap()),
            ("SCORING_PASSPHRASE_HASH", &hash_of("file and hash")),
        ],
    );
    let ok = [
        tokens::token(&keys.rsa, &tokens::claims(60)),
        tokens::token(&keys.ec, &tokens::claims(60)),
        "file and hash".to_string(),
    ];
    for c in &ok {
        assert_eq!(
            server.call("GET", "/model/schema", None, Some(c)).status,
            200
        );
    }
    for c in [
        "file and has",
        &tokens::token(&keys.other, &tokens::claims(60)),
    ] {
        assert_eq!(
            server.call("GET", "/model/schema", None, Some(c)).status,
            401
        );
    }
}
