//! The real `runtime-shim` binary under bad and heavy traffic from the real `shim-load`
//! binary: a testdata MOJO is processed here with the h2o3-mojo processor library, the
//! shim serves it on 127.0.0.1 (PORT=0), `shim-load abuse` sends 10 000 malformed
//! requests (every answer an allowed 4xx, no 5xx, the shim ready and scoring throughout
//! and alive at the end), and `shim-load load` runs briefly without a single error.
//! Speed is not asserted here (see bench/load.sh).
//!
//! `runtime-shim` is another package's binary, which Cargo does not build for this test,
//! so the test builds it itself (`cargo build -p runtime-shim`, same profile and target
//! directory as this test; a no-op when `cargo test --workspace` has just built it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use artifact_core::{Context, ReadOptions};
use serde_json::Value;
use testkit::Listening;

const LOAD: &str = env!("CARGO_BIN_EXE_shim-load");
const STARTUP: Duration = Duration::from_secs(60);
/// The shim's body limit in these tests (huge bodies are 10–50 MB, over it).
const BODY_LIMIT: &str = "8M";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `runtime-shim` binary of this test's profile, built once per test process.
fn shim_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // <target>/<profile>/deps/traffic-<hash>
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable under <target>/<profile>/deps");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile directory name");
        let target_dir = profile_dir.parent().expect("target directory");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "runtime-shim",
            "--bin",
            "runtime-shim",
        ])
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("run cargo build -p runtime-shim");
        let bin = profile_dir.join("runtime-shim");
        assert!(
            status.success() && bin.is_file(),
            "could not build {} (cargo build -p runtime-shim: {status}); build it with \
             `cargo build -p runtime-shim` into the same target directory",
            bin.display()
        );
        bin
    })
}

/// Processes `testdata/h2o3/<name>.zip` into `parent/<name>` with the real processor code.
fn process(name: &str, parent: &Path) -> PathBuf {
    let target = parent.join(name);
    let ctx = Context {
        read: ReadOptions::default(),
        args: h2o3_mojo::NoArgs {},
    };
    let source = workspace().join(format!("testdata/h2o3/{name}.zip"));
    artifact_core::cli::process::<h2o3_mojo::H2o3MojoProcessor>(&source, &target, false, &ctx)
        .unwrap_or_else(|e| panic!("{name}: processing failed: {e}"));
    target
}

/// A running shim; SIGTERM (then SIGKILL) when dropped.
struct Shim {
    process: Listening,
}

impl Shim {
    fn start(model: &Path, env: &[(&str, &str)]) -> Shim {
        Self::start_with(model, env)
    }

    /// [`Shim::start`] for a shim with endpoint security (`/readyz` stays open).
    fn start_open(model: &Path, env: &[(&str, &str)]) -> Shim {
        Self::start_with(model, env)
    }

    fn start_with(model: &Path, env: &[(&str, &str)]) -> Shim {
        let mut cmd = Command::new(shim_binary());
        // Every variable the shim reads, so that the caller's environment cannot leak in.
        for v in runtime_shim::cli::environment() {
            cmd.env_remove(v);
        }
        cmd.env("MODEL_PATH", model)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RUST_LOG", "info,access=off")
            .envs(env.iter().copied());
        let shim = Shim {
            process: Listening::spawn(cmd, STARTUP),
        };
        let deadline = Instant::now() + STARTUP;
        while shim.get("/readyz").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "not ready in time; log:\n{}",
                shim.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        shim
    }

    fn url(&self) -> String {
        format!("http://{}", self.process.addr)
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// `GET path` with a plain socket: (status, body), `None` if the server did not answer.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(&self.process.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.get(9..12)?.parse().ok()?;
        Some((
            status,
            out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        ))
    }

    fn alive(&mut self) -> bool {
        self.process.alive()
    }
}

/// A CSV's header and rows (no quoting in the testdata inputs).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let split = |l: &str| l.split(',').map(str::to_owned).collect::<Vec<_>>();
    let header = split(lines.next().unwrap());
    (header, lines.map(split).collect())
}

/// Runs `shim-load` with `args` and `--json`; returns (exit code, stdout+stderr, report).
fn shim_load(args: &[&str], dir: &Path) -> (i32, String, Option<Value>) {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let json = dir.join(format!(
        "report-{}.json",
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let out = Command::new(LOAD)
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("shim-load runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read(&json)
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("JSON report"));
    (out.status.code().unwrap_or(-1), text, report)
}

fn outcomes(report: &Value, category: &str) -> Vec<String> {
    report["categories"][category]["outcomes"]
        .as_object()
        .unwrap_or_else(|| panic!("no category {category} in the report"))
        .keys()
        .cloned()
        .collect()
}

/// 10 000 malformed requests: only the allowed 4xx (and the API's 501 for media
/// scoring), the shim ready and scoring after every 500, alive at the end; then a short
/// load run on the same shim without errors.
#[test]
fn abuse_gets_only_4xx_and_the_shim_survives_then_serves_load() {
    let tmp = tempfile::tempdir().unwrap();
    let model = process("gbm_binomial", tmp.path());
    // Stalled clients are answered 408 once these pass; the stalls outlast them.
    let mut shim = Shim::start(
        &model,
        &[
            ("MAX_BODY_BYTES", BODY_LIMIT),
            ("HEADER_TIMEOUT_SECS", "3"),
            ("REQUEST_TIMEOUT_SECS", "3"),
        ],
    );
    let pid = shim.process.child.id().to_string();
    let url = shim.url();

    let (code, text, report) = shim_load(
        &[
            "abuse",
            "--server-timeout",
            "3s",
            "--url",
            &url,
            "--requests",
            "10000",
            "--seed",
            "7",
            "--body-limit",
            BODY_LIMIT,
            "--threads",
            "2",
            "--pid",
            &pid,
            "--max-duration",
            "300s",
            // A debug shim on a busy CI machine: generous, it only bounds a hang.
            "--timeout",
            "30s",
        ],
        tmp.path(),
    );
    let r = report.unwrap_or_else(|| panic!("no report; output:\n{text}"));
    assert_eq!(code, 0, "abuse failed:\n{text}\nshim log:\n{}", shim.log());
    assert_eq!(r["cases"], 10_000, "{text}");
    assert_eq!(r["violation_count"], 0, "{text}");
    assert_eq!(r["ok"], true, "{text}");
    assert_eq!(r["server_alive"], true, "{text}");
    assert_eq!(r["health_failures"].as_array().unwrap().len(), 0, "{text}");
    assert!(r["health_checks"].as_u64().unwrap() >= 20, "{text}");
    // No 5xx at all: gbm_binomial has Shapley values, so even /model/contribution
    // answers its malformed requests 400 (only /model/media-score would be 501, and
    // method-path cases that POST there expect it).
    for (status, n) in r["statuses"].as_object().unwrap() {
        let s: u16 = status.parse().unwrap();
        let media = r["categories"]["method-path"]["outcomes"]["501"].as_u64();
        assert!(
            s < 500 || (s == 501 && media == n.as_u64()),
            "status {s} seen:\n{text}"
        );
    }
    // Every category ran, and the body-level ones got exactly 400.
    let cats = r["categories"].as_object().unwrap();
    assert_eq!(cats.len(), 20, "categories: {:?}", cats.keys());
    let only_400 = [
        ("malformed JSON", "invalid-json"),
        ("random JSON values", "random-json"),
        ("unknown members only", "unknown-fields-only"),
        ("wrong member types", "wrong-types"),
        ("array and object cells", "container-cells"),
        ("missing fields or rows", "missing-parts"),
        ("rows too short or long", "row-shape"),
        ("text in numeric columns", "non-numeric"),
        ("duplicates, Shapley, include", "bad-options"),
        ("deep nesting", "deep-nesting"),
        ("lying lengths and broken chunking", "lying-length"),
        ("malformed bodies to /model/contribution", "contribution"),
    ];
    for (name, cat) in only_400 {
        assert_eq!(outcomes(&r, cat), ["400"], "{name}:\n{text}");
    }
    let huge = outcomes(&r, "huge-body");
    assert!(huge.contains(&"413".to_string()), "huge bodies: {huge:?}");
    let slow = &r["categories"]["slow"]["cases"];
    assert_eq!(slow, 16, "{text}");
    // Every stall (in the headers, in the body, before any byte) was answered 408, and
    // every dribbled request 200 or 400: none went unanswered.
    let slow = outcomes(&r, "slow");
    assert!(slow.contains(&"408".to_string()), "slow clients: {slow:?}");
    assert!(
        slow.iter()
            .all(|o| ["200", "400", "408"].contains(&o.as_str())),
        "slow clients: {slow:?}"
    );
    let kinds = r["categories"]["slow"]["kinds"].as_object().unwrap();
    assert!(kinds.contains_key("stall-in-headers"), "{kinds:?}");
    assert!(shim.alive(), "the shim exited; log:\n{}", shim.log());
    assert_eq!(shim.get("/readyz"), Some((200, "Ready".to_string())));

    // Load on the same shim: 1 row (the sample row), 100 rows (the testdata CSV).
    let csv = workspace().join("testdata/h2o3/gbm_binomial.input.csv");
    let csv = csv.to_str().unwrap();
    let runs: [(&str, &[&str], u64); 3] = [
        ("1 row", &["--rows", "1", "--duration", "2s"], 1),
        (
            "count-bounded",
            &["--rows", "3", "--duration", "60s", "--max-requests", "500"],
            3,
        ),
        (
            "100 rows from the CSV",
            &["--rows", "100", "--duration", "1s", "--csv", csv],
            100,
        ),
    ];
    for (name, extra, rows) in runs {
        let mut args = vec![
            "load",
            "--url",
            &url,
            "--connections",
            "8",
            "--warmup",
            "0s",
        ];
        args.extend_from_slice(extra);
        let (code, text, report) = shim_load(&args, tmp.path());
        let r = report.unwrap_or_else(|| panic!("{name}: no report; output:\n{text}"));
        assert_eq!(code, 0, "{name}:\n{text}");
        assert_eq!(r["errors"], 0, "{name}:\n{text}");
        assert_eq!(r["rows"], rows, "{name}");
        let n = r["requests"].as_u64().unwrap();
        assert!(n > 0, "{name}:\n{text}");
        if extra.contains(&"--max-requests") {
            assert_eq!(n, 500, "{name}: stops at the count, not the 60 s:\n{text}");
        }
        let l = &r["latency"];
        assert!(
            l["p50_us"].as_f64().unwrap() <= l["p99_us"].as_f64().unwrap()
                && l["p99_us"].as_f64().unwrap() <= l["max_us"].as_f64().unwrap(),
            "{name}: percentiles out of order: {l}"
        );
    }

    // A body file sent as it is to a given path (what bench/proxy.sh does to MLflow's
    // /invocations): the answers are checked for the rows the file holds, so a wrong
    // --rows or a wrong path stops the run before any load.
    let (fields, rows) = read_csv(Path::new(csv));
    let body = tmp.path().join("three-rows.json");
    std::fs::write(
        &body,
        serde_json::to_vec(&serde_json::json!({"fields": fields, "rows": &rows[..3]})).unwrap(),
    )
    .unwrap();
    let body = body.to_str().unwrap();
    let base = [
        "load",
        "--url",
        &url,
        "--connections",
        "4",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--body",
        body,
    ];
    let cases: [(&str, &[&str], i32, &str); 4] = [
        (
            "the file's rows to the given path",
            &["--rows", "3", "--path", "/model/score"],
            0,
            "",
        ),
        (
            "more rows claimed than the file holds",
            &["--rows", "4"],
            3,
            "3 score rows for 4 request rows",
        ),
        (
            "another path",
            &["--rows", "3", "--path", "/model/nope"],
            3,
            "POST /model/nope: status 404",
        ),
        (
            "a path that would break the request line",
            &["--rows", "3", "--path", "/model/score HTTP/1.0"],
            2,
            "must start with / and hold no blank",
        ),
    ];
    for (name, extra, want, msg) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let (code, text, report) = shim_load(&args, tmp.path());
        assert_eq!(code, want, "{name}:\n{text}");
        assert!(text.contains(msg), "{name}:\n{text}");
        if want == 0 {
            let r = report.unwrap_or_else(|| panic!("{name}: no report; output:\n{text}"));
            assert_eq!(r["errors"], 0, "{name}:\n{text}");
            assert_eq!(r["rows"], 3, "{name}");
            assert!(r["requests"].as_u64().unwrap() > 0, "{name}:\n{text}");
            let len = std::fs::metadata(body).unwrap().len();
            let head = format!(
                "POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
            );
            assert_eq!(
                r["request_bytes"].as_u64().unwrap(),
                head.len() as u64 + len,
                "{name}: the file is the body, as it is"
            );
        }
    }
    assert!(shim.alive(), "the shim exited; log:\n{}", shim.log());
}

/// The abuse client reports what it was not told to expect: told a body limit lower than
/// the shim's, its "over the limit" bodies that are under the real limit get 400 (a body
/// that is not JSON) instead of 413, which it must flag, with exit code 1.
#[test]
fn abuse_flags_answers_it_does_not_allow() {
    let tmp = tempfile::tempdir().unwrap();
    let model = process("gbm_binomial", tmp.path());
    let shim = Shim::start(&model, &[("MAX_BODY_BYTES", "16M")]);
    let (code, text, report) = shim_load(
        &[
            "abuse",
            "--url",
            &shim.url(),
            "--requests",
            "8",
            "--huge",
            "8",
            "--slow",
            "0",
            "--seed",
            "3",
            "--body-limit",
            "1M",
            "--timeout",
            "30s",
        ],
        tmp.path(),
    );
    let r = report.unwrap_or_else(|| panic!("no report; output:\n{text}"));
    assert_eq!(code, 1, "{text}");
    assert_eq!(r["ok"], false, "{text}");
    let v = r["violations"].as_array().unwrap();
    assert!(!v.is_empty(), "{text}");
    for v in v {
        assert_eq!(v["category"], "huge-body", "{v}");
        assert!(v["got"].as_str().unwrap().starts_with("status 400"), "{v}");
        assert_eq!(v["expected"], "[413] or no answer", "{v}");
    }
}

/// Refusals before any traffic: a non-loopback URL (usage, 2) and a port nobody listens
/// on (3), each with its reason.
#[test]
fn refuses_other_hosts_and_reports_an_unreachable_server() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let cases: [(&str, &[&str], i32, &str); 4] = [
        (
            "remote host",
            &["abuse", "--url", "http://10.1.2.3:8080"],
            2,
            "only loopback",
        ),
        (
            "not http",
            &["load", "--url", "https://127.0.0.1:1"],
            2,
            "expected http://",
        ),
        (
            "nobody listening",
            &["abuse", "--url", &closed],
            3,
            "connect to 127.0.0.1",
        ),
        (
            "nobody listening (load)",
            &["load", "--url", &closed],
            3,
            "connect to 127.0.0.1",
        ),
    ];
    for (name, args, want, msg) in cases {
        let out = Command::new(LOAD).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{name}: {err}");
        assert!(err.contains(msg), "{name}: {err}");
    }
}

/// `runtime-shim hash-passphrase --iterations 1000` of `p`.
fn hash_of(p: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(shim_binary())
        .args(["hash-passphrase", "--iterations", "1000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(p.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// 10 000 seeded attacks on a shim with a plain passphrase, a hashed one and OIDC at
/// once: not one let in, no 5xx, every valid credential among them let in, and no
/// credential, hash or token in the shim's log.
#[test]
fn auth_abuse_lets_nothing_in_and_leaks_nothing() {
    use testkit::tokens;
    let tmp = tempfile::tempdir().unwrap();
    let model = process("gbm_binomial", tmp.path());
    let plain = "plain-abuse-passphrase-31d9";
    let hashed = "hashed abuse passphrase 5e07";
    let hash = hash_of(hashed);
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, tokens::Keys::load().jwks()).unwrap();
    let shim = Shim::start_open(
        &model,
        &[
            ("SCORING_PASSPHRASE", plain),
            ("SCORING_PASSPHRASE_HASH", &hash),
            ("OIDC_ISSUER", tokens::ISSUER),
            ("OIDC_AUDIENCE", tokens::AUDIENCE),
            ("OIDC_JWKS_FILE", jwks.to_str().unwrap()),
            ("RUST_LOG", "debug,access=info"),
        ],
    );
    let csv = workspace().join("testdata/h2o3/gbm_binomial.input.csv");
    let (code, text, report) = shim_load(
        &[
            "auth-abuse",
            "--url",
            &shim.url(),
            "--requests",
            "10000",
            "--seed",
            "11",
            "--concurrency",
            "6",
            "--threads",
            "2",
            "--passphrase",
            plain,
            "--passphrase",
            hashed,
            "--stored",
            &hash,
            "--issuer",
            tokens::ISSUER,
            "--csv",
            csv.to_str().unwrap(),
            "--timeout",
            "30s",
        ],
        tmp.path(),
    );
    let r = report.unwrap_or_else(|| panic!("no report; output:\n{text}"));
    assert_eq!(code, 0, "{text}\nshim log:\n{}", shim.log());
    assert_eq!(r["cases"], 10_000, "{text}");
    assert_eq!(r["let_in"], 0, "{text}");
    assert_eq!(r["server_errors"], 0, "{text}");
    assert_eq!(r["valid_refused"], 0, "{text}");
    assert_eq!(r["violation_count"], 0, "{text}");
    let cats = r["categories"].as_object().unwrap();
    for c in [
        "valid-passphrase",
        "valid-token",
        "wrong-passphrase",
        "near-passphrase",
        "hash-as-passphrase",
        "no-header",
        "malformed-header",
        "two-headers",
        "huge-header",
        "random-bytes",
        "jwt-shaped-garbage",
        "other-key",
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "alg-none",
        "hmac-public-key",
        "tampered",
        "truncated-token",
        "missing-claim",
    ] {
        let n = cats
            .get(c)
            .unwrap_or_else(|| panic!("no {c} cases:\n{text}"))["cases"]
            .as_u64()
            .unwrap();
        assert!(n >= 100, "{c}: only {n} cases");
    }
    for (name, c) in cats {
        if name.starts_with("valid-") {
            assert_eq!(
                c["outcomes"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .collect::<Vec<_>>(),
                ["200"],
                "{name}"
            );
        } else {
            for o in c["outcomes"].as_object().unwrap().keys() {
                assert!(
                    ["401", "400", "431", "429", "closed without answer"].contains(&o.as_str()),
                    "{name}: {o}\n{text}"
                );
            }
        }
    }
    let log = shim.log();
    for secret in [plain, hashed, &hash, hash.split('$').nth(3).unwrap()] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
    assert!(!log.contains("eyJ"), "a token in the log");
    assert!(!log.contains("Bearer"), "a credential header in the log");
}
