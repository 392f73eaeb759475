//! The `dai_mojo_pipeline` backend end to end, with a real external scorer: this shim
//! itself, serving the H2O-3 `gbm_binomial` MOJO, started by the front shim through
//! `DAI_SCORER_COMMAND` for a DAI model directory whose (synthetic) pipeline has the same
//! columns. A small wrapper script checks what a MOJO2 scorer needs from its command line
//! and environment (the pipeline path, the licence variables) before it execs the scorer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artifact_core::{Context, ReadOptions};
use serde_json::{json, Value};

use super::{
    alive, assert_matches_reference, child_pids, process, request_for, rows_of, run_to_exit,
    signal, strings, testdata, wait_ready, Server, BIN,
};

const NAME: &str = "DAI MOJO2 scorer";
const KEY: &str = "dai-test-licence-key-7f3a9c";

/// A TOML-generation `pipeline.mojo` with the columns of `gbm_binomial`.
fn pipeline(dir: &Path) -> PathBuf {
    const TOML: &str = r#"mojo_version = 2.0
uuid = 'e3c1b3a2-0000-4000-8000-000000000007'
time_created = 2024-05-01T00:00:00.000000
missing_values = ['', 'NA']

[columns]
features = [
  ['x1', 'float64'],
  ['x2', 'float64'],
  ['x3', 'float64'],
  ['color', 'str'],
]
outputs = [
  ['predict', 'str'],
  ['no', 'float64'],
  ['yes', 'float64'],
]
"#;
    let path = dir.join("pipeline.mojo");
    let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    w.add_directory("mojo/", zip::write::SimpleFileOptions::default())
        .unwrap();
    w.start_file(
        "mojo/pipeline.toml",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    w.write_all(TOML.as_bytes()).unwrap();
    w.finish().unwrap();
    path
}

/// The DAI model directory, processed with the real dai-mojo processor.
fn dai_dir(tmp: &Path) -> PathBuf {
    let src = pipeline(tmp);
    let target = tmp.join("dai");
    let ctx = Context {
        read: ReadOptions::default(),
        args: dai_mojo::DaiArgs {},
    };
    artifact_core::cli::process::<dai_mojo::DaiMojoProcessor>(&src, &target, false, &ctx)
        .unwrap_or_else(|e| panic!("processing the pipeline failed: {e}"));
    target
}

/// The wrapper a deployer would write around a MOJO2 scorer: it refuses to start
/// without the pipeline file or the licence, like the real one, prints the licence key
/// (which the front shim must not log), and execs the scorer (here the shim on `model`).
fn scorer_script(tmp: &Path, model: &Path) -> PathBuf {
    let script = tmp.join("scorer.sh");
    std::fs::write(
        &script,
        format!(
            r#"set -eu
test -f "$1" || {{ echo "Could not load mojo from file: $1" >&2; exit 11; }}
test -r "${{DRIVERLESS_AI_LICENSE_FILE:-}}" || {{ echo "License file not found" >&2; exit 12; }}
echo "licence key is ${{DRIVERLESS_AI_LICENSE_KEY:-none}}" >&2
exec '{BIN}' --model-path '{}' --host 127.0.0.1 --port "$2"
"#,
            model.display()
        ),
    )
    .unwrap();
    script
}

struct Setup {
    _tmp: tempfile::TempDir,
    dai: PathBuf,
    command: String,
    licence: PathBuf,
}

fn setup(scored_by: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dai = dai_dir(tmp.path());
    let h2o = process(scored_by, tmp.path());
    let script = scorer_script(tmp.path(), &h2o);
    let licence = tmp.path().join("license.sig");
    std::fs::write(&licence, b"licence").unwrap();
    Setup {
        command: format!("sh '{}' {{pipeline}} {{port}}", script.display()),
        _tmp: tmp,
        dai,
        licence,
    }
}

impl Setup {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DAI_SCORER_COMMAND", self.command.clone()),
            (
                "DRIVERLESS_AI_LICENSE_FILE",
                self.licence.to_str().unwrap().into(),
            ),
            ("DRIVERLESS_AI_LICENSE_KEY", KEY.into()),
        ]
    }
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_pipeline_is_scored_by_the_external_scorer_which_is_restarted_when_killed() {
    let s = setup("gbm_binomial");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(s.dai.join("model.json")).unwrap()).unwrap();
    let id = manifest["id"].as_str().unwrap();
    let env = s.env();
    let started = Instant::now();
    let server = Server::start(&s.dai, &borrowed(&env));
    let first_start = started.elapsed();

    // The read-only routes come from the DAI manifest, not from the scorer.
    assert_eq!(server.get("/model/id").body, id);
    let schema = server.get("/model/schema").json();
    assert_eq!(schema["id"], id);
    assert_eq!(
        schema["schema"]["outputFields"],
        json!([{"name": "predict", "dataType": "Str"}, {"name": "no", "dataType": "Float64"},
               {"name": "yes", "dataType": "Float64"}])
    );
    assert_eq!(server.get("/model/capabilities").json(), json!(["SCORE"]));
    assert_eq!(
        server.get("/model/sample_request").json(),
        json!({"fields": ["x1", "x2", "x3", "color"], "rows": [["0", "0", "0", "text"]]})
    );

    let score = |server: &Server, how: &str| {
        let r = server.post("/model/score", &request_for("gbm_binomial").to_string());
        assert_eq!(r.status, 200, "{how}: {}", r.body);
        let v = r.json();
        assert_eq!(v["id"], id, "{how}: the front shim's id");
        assert_matches_reference(
            "gbm_binomial",
            how,
            &strings(&v["fields"]),
            &rows_of(&v["score"]),
        );
    };
    score(&server, "through the DAI scorer");
    // The Open Inference Protocol goes through the same scorer.
    super::v2::assert_v2_scores_like_mlops(
        &server,
        &request_for("gbm_binomial"),
        "v2 through the DAI scorer",
    );

    // The front shim assembles the response: copied fields, in input order.
    let r = server.post(
        "/model/score",
        &json!({"fields": ["color", "x3", "x2", "x1"], "rows": [["blue", "2.0", "3.409", "-0.624"]],
                "includeFieldsInOutput": ["x1", "color"]})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (strings(&r.json()["fields"]), rows_of(&r.json()["score"])),
        (
            vec![
                "color".into(),
                "x1".into(),
                "predict".into(),
                "no".into(),
                "yes".into()
            ],
            vec![vec![
                "blue".into(),
                "-0.624".into(),
                "no".into(),
                "0.5859945019468265".into(),
                "0.4140054980531735".into()
            ]]
        )
    );
    // The scorer's own refusal comes back as a 400 with its detail, prefixed once.
    let r = server.post(
        "/model/score",
        r#"{"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "two", "3", "red"]]}"#,
    );
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"detail": "Invalid scoring request due to: row 0 (zero-indexed): column \"x2\": \"two\" is not a number"})
        )
    );

    // Killing the scorer: not ready at once, then restarted after the backoff.
    let pid = child_pids(&server.log(), NAME)[0];
    signal(pid, "-KILL");
    wait_ready(&server, 500, Duration::from_secs(5));
    let r = server.post("/model/score", &request_for("gbm_binomial").to_string());
    assert!(
        r.status == 503 || r.status == 200,
        "while restarting: {} {}",
        r.status,
        r.body
    );
    let recovery = wait_ready(&server, 200, Duration::from_secs(30));
    score(&server, "after a restart");
    let pids = child_pids(&server.log(), NAME);
    assert_eq!(pids.len(), 2, "{}", server.log());
    assert!(!alive(pid));
    // Killed again soon after: the delay has doubled.
    signal(pids[1], "-KILL");
    wait_ready(&server, 500, Duration::from_secs(5));
    wait_ready(&server, 200, Duration::from_secs(30));
    score(&server, "after a second restart");

    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    for needle in [
        &format!("the {NAME} exited with signal: 9 (SIGKILL); not ready until it is restarted pid={pid} restart_in_seconds=0.5"),
        &format!("the {NAME} exited with signal: 9 (SIGKILL); not ready until it is restarted pid={} restart_in_seconds=1", pids[1]),
        &format!("the {NAME} is back; ready"),
        "the DAI scorer inherits the licence variables licence=DRIVERLESS_AI_LICENSE_FILE,DRIVERLESS_AI_LICENSE_KEY",
        "licence key is [redacted]",
        &format!("stopping the {NAME}"),
        &format!("the {NAME} stopped"),
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    assert!(!log.contains(KEY), "the licence key was logged:\n{log}");
    let last = *child_pids(&log, NAME).last().unwrap();
    assert!(!alive(last), "the scorer {last} outlived the shim");
    eprintln!(
        "DAI scorer (shim on gbm_binomial): first start {first_start:?}, recovery after SIGKILL {recovery:?}"
    );
}

#[test]
fn scorer_failures_stop_the_start_with_their_own_message_and_exit_code() {
    let s = setup("gbm_binomial");
    let other = setup("gbm_regression");
    type Case<'a> = (
        &'a str,
        Vec<(&'static str, String)>,
        &'a [&'a str],
        i32,
        &'a [&'a str],
    );
    let with = |cmd: &str, extra: &[(&'static str, &str)]| {
        let mut env = s.env();
        env[0].1 = cmd.to_string();
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    let cases: Vec<Case> = vec![
        ("the command does not exist", with("/nonexistent/dai-scorer --port {port}", &[]), &[], 6,
            &["the dai_mojo_pipeline backend could not load pipeline.mojo: cannot start the DAI MOJO2 scorer `/nonexistent/dai-scorer --port ",
              "(DAI_SCORER_COMMAND): No such file or directory"]),
        ("it exits at once", with("sh -c 'echo License file not found >&2; exit 3' {port}", &[]), &[], 6,
            &["the DAI MOJO2 scorer `sh -c 'echo License file not found >&2; exit 3' ",
              "(DAI_SCORER_COMMAND) exited with exit status: 3 before it answered GET /model/id; its last output:\n    License file not found"]),
        ("the licence is missing", {
            let mut env = s.env();
            env[1].1 = "/nonexistent/license.sig".into();
            env
        }, &[], 6, &["exited with exit status: 12 before it answered GET /model/id", "License file not found"]),
        ("it never answers", with("sh -c 'echo loading; sleep 30' {port}", &[("CHILD_START_TIMEOUT_SECS", "1")]), &[], 6,
            &["did not answer GET /model/id within 1 s (CHILD_START_TIMEOUT_SECS); it was stopped; its last output:\n    loading"]),
        ("a health route it does not have", {
            let mut env = s.env();
            env.push(("DAI_SCORER_HEALTH_PATH", "/nothing".into()));
            env.push(("CHILD_START_TIMEOUT_SECS", "2".into()));
            env
        }, &[], 6, &["did not answer GET /nothing within 2 s"]),
        ("it serves another model", other.env(), &[], 6,
            &["the DAI MOJO2 scorer serves another model: its /model/schema has the inputs",
              "\"predict\"], the manifest [\"x1\", \"x2\", \"x3\", \"color\"] and [\"predict\", \"no\", \"yes\"]"]),
    ];
    for (name, env, args, code, needles) in cases {
        let mut env = env;
        env.push(("MODEL_PATH", s.dai.to_str().unwrap().into()));
        env.push(("PORT", "0".into()));
        env.push(("HOST", "127.0.0.1".into()));
        let start = Instant::now();
        let (got, log) = run_to_exit(args, &borrowed(&env));
        assert_eq!(got, code, "{name}: exit code; log:\n{log}");
        for n in needles {
            assert!(log.contains(n), "{name}: {n:?} not in\n{log}");
        }
        assert!(!log.contains(KEY), "{name}: the licence key was logged");
        for pid in child_pids(&log, NAME) {
            assert!(!alive(pid), "{name}: the scorer {pid} is still running");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name}: took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn the_batch_command_writes_the_scorers_predictions() {
    let s = setup("gbm_binomial");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.csv");
    let input = testdata().join("gbm_binomial.input.csv");
    let mut env = s.env();
    env.push(("MODEL_PATH", s.dai.to_str().unwrap().into()));
    let (code, log) = run_to_exit(
        &[
            "score",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        &borrowed(&env),
    );
    assert_eq!(code, 0, "{log}");
    let (header, rows) = super::read_csv(&out);
    assert_matches_reference(
        "gbm_binomial",
        "batch through the DAI scorer",
        &header,
        &rows,
    );
    let pid = child_pids(&log, NAME)[0];
    assert!(!alive(pid), "the scorer {pid} outlived the batch command");
}

/// SIGTERM while the scorer is still starting: the shim kills it and exits at once (a
/// load still running on a stopped runtime would panic), in serve and batch mode.
#[test]
fn a_signal_while_the_scorer_starts_stops_both() {
    let s = setup("gbm_binomial");
    let input = super::testdata().join("gbm_binomial.input.csv");
    let runs: [(&str, Vec<&str>, i32, &str); 2] = [
        (
            "serve",
            vec![],
            0,
            "received SIGTERM while loading the model; exiting",
        ),
        (
            "batch",
            vec!["score", "--input", input.to_str().unwrap()],
            4,
            "gbm_binomial.input.csv: interrupted by SIGTERM",
        ),
    ];
    for (name, args, code, needle) in runs {
        let mut env = s.env();
        env[0].1 = "sh -c 'echo scorer loading; exec sleep 30' {port}".into();
        env.push(("MODEL_PATH", s.dai.to_str().unwrap().into()));
        env.push(("PORT", "0".into()));
        env.push(("HOST", "127.0.0.1".into()));
        let mut child = super::shim(&args, &borrowed(&env))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut log = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("scorer loading") {
                    let _ = tx.send(());
                }
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{name}: the scorer did not start"));
        signal(child.id(), "-TERM");
        let start = Instant::now();
        let status = super::wait_for(&mut child, Duration::from_secs(20));
        let log = reader.join().unwrap();
        let status = status.unwrap_or_else(|| panic!("{name}: still running; log:\n{log}"));
        assert_eq!(status.code(), Some(code), "{name}: {log}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name}: took {:?}",
            start.elapsed()
        );
        assert!(log.contains(needle), "{name}: {needle:?} not in\n{log}");
        assert!(!log.contains("panicked"), "{name}: {log}");
        let pid = child_pids(&log, NAME)[0];
        assert!(!alive(pid), "{name}: the scorer {pid} outlived the shim");
    }
}

/// With DAI_REQUIRE_LICENSE (the dai-mojo-runtime image sets it), a pipeline without a
/// licence stops the start with exit code 9 and the way to provide one, before the scorer
/// or the port; a licence file that cannot be read is named. With a key it starts.
#[test]
fn without_a_licence_the_start_stops_with_its_own_exit_code() {
    let s = setup("gbm_binomial");
    let home = s._tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let dai = s.dai.to_str().unwrap();
    let base = [
        ("MODEL_PATH", dai),
        ("DAI_SCORER_COMMAND", s.command.as_str()),
        ("DAI_REQUIRE_LICENSE", "true"),
        ("HOME", home.to_str().unwrap()),
        ("PORT", "0"),
        ("HOST", "127.0.0.1"),
    ];
    let missing = s._tmp.path().join("nowhere/license.sig");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "nothing provided",
            vec![],
            &[
                "no Driverless AI licence: the MOJO2 runtime refuses to load a pipeline without one, and none was found (DRIVERLESS_AI_LICENSE_KEY and DRIVERLESS_AI_LICENSE_FILE are not set, no /license/license.sig, no ",
                ".driverlessai/license.sig)",
                "mount the licence file (e.g. from a Kubernetes Secret) at /license/license.sig",
            ],
        ),
        (
            "unreadable file",
            vec![("DRIVERLESS_AI_LICENSE_FILE", missing.to_str().unwrap())],
            &["DRIVERLESS_AI_LICENSE_FILE=", "nowhere/license.sig cannot be read"],
        ),
    ];
    for (name, extra, needles) in cases {
        let mut env = base.to_vec();
        env.extend(extra);
        let (code, log) = run_to_exit(&[], &env);
        assert_eq!(code, 9, "{name}: {log}");
        for n in needles {
            assert!(log.contains(n), "{name}: {n:?} not in\n{log}");
        }
        assert!(
            !log.contains(&format!("starting the {NAME}")),
            "{name}: {log}"
        );
    }
    let mut env = base.to_vec();
    env.push(("DRIVERLESS_AI_LICENSE_FILE", s.licence.to_str().unwrap()));
    let env: Vec<(&str, &str)> = env
        .into_iter()
        .filter(|(k, _)| *k != "MODEL_PATH" && *k != "PORT" && *k != "HOST")
        .collect();
    let server = Server::start(&s.dai, &env);
    assert_eq!(server.get("/readyz").status, 200);
    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("a Driverless AI licence was provided"),
        "{log}"
    );
}
