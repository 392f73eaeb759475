//! Runs the real `runtime-shim` binary on model directories processed here from the
//! testdata MOJOs (through the h2o3-mojo processor library), calls every endpoint over
//! HTTP on 127.0.0.1, and compares the scores with H2O's own predictions saved beside
//! each MOJO. Also: the batch command, the start-up refusals and their exit codes, and
//! malformed requests. The proxy backends have their own modules: [`dai`] (an external
//! scorer that is this shim serving an H2O-3 model) and [`mlflow`] (the real MLflow
//! scoring server, when `MLFLOW_VENV` names a venv); the native `onnx` backend has
//! [`onnx`] (ONNX Runtime from that venv's onnxruntime wheel); the Open Inference Protocol
//! v2 routes have [`v2`] (with tritonclient and KServe's client when `V2_CLIENTS_VENV`
//! names their venv).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use artifact_core::{Context, ReadOptions};
use serde_json::{json, Value};
use testkit::{signal, wait_for, Listening};

#[path = "cli/auth.rs"]
mod auth;
#[path = "cli/dai.rs"]
mod dai;
#[path = "cli/mlflow.rs"]
mod mlflow;
#[path = "cli/onnx.rs"]
mod onnx;
#[path = "cli/scoring_client.rs"]
mod scoring_client;
#[path = "cli/v2.rs"]
mod v2;

const BIN: &str = env!("CARGO_BIN_EXE_runtime-shim");

/// `bin/python` of the venv the environment variable `var` names (made by
/// `.ci/<setup>`), or `None` with a "skipped" line when it is not set; a venv without a
/// python is a failure.
fn venv_python(var: &str, setup: &str) -> Option<PathBuf> {
    let Some(venv) = std::env::var_os(var) else {
        eprintln!("skipped: {var} not set (export {var}=\"$(.ci/{setup})\")");
        return None;
    };
    let py = Path::new(&venv).join("bin/python");
    assert!(
        py.is_file(),
        "{var}={} has no bin/python; build it with .ci/{setup}",
        Path::new(&venv).display()
    );
    Some(py)
}
const STARTUP: Duration = Duration::from_secs(180);

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/h2o3")
}

/// Processes the MOJO `source` into `parent/<name>` with the real processor code.
fn process_mojo(source: &Path, name: &str, parent: &Path) -> PathBuf {
    let target = parent.join(name);
    let ctx = Context {
        read: ReadOptions::default(),
        args: h2o3_mojo::NoArgs {},
    };
    artifact_core::cli::process::<h2o3_mojo::H2o3MojoProcessor>(source, &target, false, &ctx)
        .unwrap_or_else(|e| panic!("{name}: processing failed: {e}"));
    target
}

/// Processes `testdata/h2o3/<name>.zip` into `parent/<name>`.
fn process(name: &str, parent: &Path) -> PathBuf {
    process_mojo(&testdata().join(format!("{name}.zip")), name, parent)
}

/// A model directory processed from `testdata/h2o3/<name>.zip` whose payload is then
/// swapped for `payload` with the manifest's size and sha256 updated: what a directory
/// written by another tool (or an older processor) that the processor itself would refuse
/// looks like to the runtime.
fn directory_with_payload(name: &str, payload: &Path, parent: &Path) -> PathBuf {
    let dir = process(name, parent);
    let mut manifest = artifact_core::Manifest::read(&dir).unwrap();
    std::fs::copy(payload, dir.join(&manifest.payload)).unwrap();
    let (size, sha256) = artifact_core::fsutil::hash_file(&dir.join(&manifest.payload)).unwrap();
    let rec = manifest
        .files
        .iter_mut()
        .find(|f| f.path == manifest.payload)
        .unwrap();
    rec.size = size;
    rec.sha256 = sha256;
    manifest.write_atomic(&dir).unwrap();
    dir
}

/// Every model of testdata (from `expected.json`), with its `algo` and `category`.
fn testdata_models() -> Vec<(String, String, String)> {
    let exp: Value =
        serde_json::from_slice(&std::fs::read(testdata().join("expected.json")).unwrap()).unwrap();
    let models: Vec<(String, String, String)> = exp["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap().to_string();
            (s("name"), s("algo"), s("category"))
        })
        .collect();
    assert!(models.len() >= 24, "testdata has {} models", models.len());
    models
}

/// A CSV file as (header, rows), read as `runtime-shim score` reads it (a blank line is a
/// row).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = runtime_shim::csv_input::reader(file);
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Asserts that `got` equals H2O's predictions in `<name>.predictions.csv`: the same
/// header and labels, numbers within 1e-12 relative.
fn assert_matches_reference(name: &str, how: &str, header: &[String], rows: &[Vec<String>]) {
    let classifier = testdata_models().iter().any(|(n, _, cat)| {
        n == name && matches!(cat.as_str(), "Binomial" | "Multinomial" | "Ordinal")
    });
    let want = testdata().join(format!("{name}.predictions.csv"));
    assert_matches_predictions(&want, classifier, name, how, header, rows);
}

/// Asserts that `got` equals the predictions in the CSV file `want` (genmodel's), as
/// [`assert_matches_reference`] does; `classifier`: the first column is a label.
fn assert_matches_predictions(
    want: &Path,
    classifier: bool,
    name: &str,
    how: &str,
    header: &[String],
    rows: &[Vec<String>],
) {
    let (want_header, want_rows) = read_csv(want);
    assert_eq!(header, want_header, "{name} ({how}): output names");
    assert_eq!(rows.len(), want_rows.len(), "{name} ({how}): row count");
    for (r, (got, want)) in rows.iter().zip(&want_rows).enumerate() {
        assert_eq!(got.len(), want.len(), "{name} ({how}) row {r}: width");
        for (c, (g, w)) in got.iter().zip(want).enumerate() {
            // A classifier's first column is the label, and so is any cell H2O did not
            // write as a number; genmodel's
            // `NA` is the scorer's `NaN`; every other cell is a number.
            let label = c == 0 && classifier;
            let Some(wv) = w.parse::<f64>().ok().filter(|_| !label) else {
                if w == "NA" {
                    assert!(
                        g == "NaN" || g == "NA",
                        "{name} ({how}) row {r} col {c}: got {g}, H2O says NA"
                    );
                } else {
                    assert_eq!(g, w, "{name} ({how}) row {r} col {c}: label");
                }
                continue;
            };
            let gv: f64 = g.parse().unwrap_or_else(|_| {
                panic!("{name} ({how}) row {r} col {c}: {g:?} is not a number (want {w})")
            });
            assert!(
                gv == wv || (gv - wv).abs() <= 1e-12 * wv.abs(),
                "{name} ({how}) row {r} col {c}: got {g}, H2O says {w}"
            );
        }
    }
}

/// A running shim, its stderr collected by a thread.
struct Server {
    process: Listening,
    base: String,
    agent: ureq::Agent,
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
    /// `WWW-Authenticate`, when answered.
    www_authenticate: Option<String>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn shim(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    for v in runtime_shim::cli::environment() {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c
}

impl Server {
    /// Starts the shim as a deployer does (no arguments, only variables) on a free port
    /// of 127.0.0.1 and waits until `/readyz` says Ready.
    fn start(model: &Path, env: &[(&str, &str)]) -> Server {
        let mut vars = vec![
            ("MODEL_PATH", model.to_str().unwrap()),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
        ];
        vars.extend_from_slice(env);
        let process = Listening::spawn(shim(&[], &vars), STARTUP);
        let addr = process.addr.clone();
        assert!(addr.starts_with("127.0.0.1:"), "bound to {addr}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let server = Server {
            process,
            base: format!("http://{addr}"),
            agent,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(r) = server.try_get("/readyz") {
                if r.status == 200 {
                    assert_eq!(r.body, "Ready");
                    break;
                }
                assert_eq!((r.status, r.body.as_str()), (500, "Not ready"));
            }
            assert!(
                Instant::now() < deadline,
                "not ready in time; log:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn reply(
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ureq::Error> {
        let mut r = r?;
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let www_authenticate = header("www-authenticate");
        Ok(Reply {
            status: r.status().as_u16(),
            content_type,
            www_authenticate,
            body: r.body_mut().read_to_string()?,
        })
    }

    fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        Self::reply(self.agent.get(format!("{}{path}", self.base)).call())
    }

    fn get(&self, path: &str) -> Reply {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        Self::reply(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .send(body),
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// `method path` with `body` (a JSON POST when given) and `Authorization: Bearer
    /// <credential>` when given.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        credential: Option<&str>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let auth = credential.map(|c| format!("Bearer {c}"));
        let r = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.call()
            }
            (_, body) => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("content-type", "application/json");
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                req.send(body.unwrap_or(""))
            }
        };
        Self::reply(r).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Sends SIGTERM and returns the exit status and the whole log.
    fn stop(self) -> (ExitStatus, String) {
        self.process.stop(STARTUP)
    }
}

/// The pids of the children the shim started under `name` (its `starting the <name>`
/// log lines), in order.
fn child_pids(log: &str, name: &str) -> Vec<u32> {
    log.lines()
        .filter(|l| l.contains(&format!("starting the {name} ")))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("pid="))
                .and_then(|p| p.parse().ok())
        })
        .collect()
}

/// Whether a process with this pid exists (and is not a zombie of ours).
fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Polls `/readyz` until it answers `status`; returns how long that took.
fn wait_ready(server: &Server, status: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(r) = server.try_get("/readyz") {
            if r.status == status {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < limit,
            "/readyz did not answer {status} within {limit:?}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the shim expecting it to stop by itself; returns (exit code, stderr).
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut child = shim(args, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = wait_for(&mut child, STARTUP);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = reader.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("did not exit; log:\n{log}"));
    (status.code().expect("exit code, not a signal"), log)
}

/// The rows of `<name>.input.csv` as a ScoreRequest.
fn request_for(name: &str) -> Value {
    let (fields, rows) = read_csv(&testdata().join(format!("{name}.input.csv")));
    json!({ "fields": fields, "rows": rows })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn rows_of(v: &Value) -> Vec<Vec<String>> {
    v.as_array().unwrap().iter().map(strings).collect()
}

#[test]
fn every_testdata_model_scores_as_h2o_over_http_and_in_batch() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, algo, _) in testdata_models() {
        let dir = process(&name, tmp.path());
        let server = Server::start(&dir, &[]);
        let r = server.post("/model/score", &request_for(&name).to_string());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        let (http_fields, http_rows) = (strings(&v["fields"]), rows_of(&v["score"]));
        assert_matches_reference(&name, "HTTP", &http_fields, &http_rows);

        // One row at a time gives the same cells as the whole batch (but for GLRM, whose
        // genmodel seeds each row's solve with the number of rows scored before it).
        let req = request_for(&name);
        let step = if algo == "glrm" { usize::MAX } else { 7 };
        for (i, row) in req["rows"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .step_by(step)
            .skip(usize::from(algo == "glrm"))
        {
            let one = json!({ "fields": req["fields"], "rows": [row] });
            let r = server.post("/model/score", &one.to_string());
            assert_eq!(r.status, 200, "{name} row {i}: {}", r.body);
            assert_eq!(
                rows_of(&r.json()["score"])[0],
                http_rows[i],
                "{name} row {i}"
            );
        }
        let (status, log) = server.stop();
        assert!(status.success(), "{name}: {status:?}\n{log}");

        let out = tmp.path().join(format!("{name}.out.csv"));
        let input = testdata().join(format!("{name}.input.csv"));
        let (code, log, _) = batch(&dir, &input, Some(&out), &[]);
        assert_eq!(code, 0, "{name}: batch: {log}");
        let (batch_fields, batch_rows) = read_csv(&out);
        assert_matches_reference(&name, "batch", &batch_fields, &batch_rows);
        assert_eq!(
            (batch_fields, batch_rows),
            (http_fields, http_rows),
            "{name}: batch and HTTP differ"
        );
    }
}

/// Asserts that `got` equals genmodel's `<name>.predictions.csv` cell by cell: the same
/// header and row count, numbers within 1e-12 relative (genmodel's `NA` is `NaN`), any
/// other cell (a label) identical.
fn assert_same_as_genmodel(name: &str, how: &str, header: &[String], rows: &[Vec<String>]) {
    let (want_header, want_rows) = read_csv(&testdata().join(format!("{name}.predictions.csv")));
    assert_eq!(header, want_header, "{name} ({how}): output names");
    assert_eq!(rows.len(), want_rows.len(), "{name} ({how}): row count");
    for (r, (got, want)) in rows.iter().zip(&want_rows).enumerate() {
        assert_eq!(got.len(), want.len(), "{name} ({how}) row {r}: width");
        for (c, (g, w)) in got.iter().zip(want).enumerate() {
            let same = match (g.parse::<f64>(), w.parse::<f64>()) {
                (Ok(gv), Ok(wv)) => gv == wv || (gv - wv).abs() <= 1e-12 * wv.abs(),
                (Ok(gv), Err(_)) => gv.is_nan() && w == "NA",
                _ => g == w,
            };
            assert!(
                same,
                "{name} ({how}) row {r} col {c}: got {g}, genmodel {w}"
            );
        }
    }
}

#[test]
fn rulefit_isotonic_uplift_target_encoder_and_word2vec_score_as_genmodel_over_http_and_in_batch() {
    let exp: Value =
        serde_json::from_slice(&std::fs::read(testdata().join("expected.json")).unwrap()).unwrap();
    let mut names: Vec<String> = exp["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            matches!(
                m["algo"].as_str(),
                Some("rulefit" | "isotonicregression" | "upliftdrf" | "targetencoder")
            )
        })
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.len() >= 17,
        "testdata has {} of these models",
        names.len()
    );
    names.push("word2vec_blank_lines".into());
    let tmp = tempfile::tempdir().unwrap();
    for name in names {
        let dir = process(&name, tmp.path());
        let server = Server::start(&dir, &[]);
        let req = request_for(&name);
        let r = server.post("/model/score", &req.to_string());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        let (http_fields, http_rows) = (strings(&v["fields"]), rows_of(&v["score"]));
        assert_same_as_genmodel(&name, "HTTP", &http_fields, &http_rows);
        let (status, log) = server.stop();
        assert!(status.success(), "{name}: {status:?}\n{log}");

        let out = tmp.path().join(format!("{name}.out.csv"));
        let input = testdata().join(format!("{name}.input.csv"));
        let (code, log, _) = batch(&dir, &input, Some(&out), &[]);
        assert_eq!(code, 0, "{name}: batch: {log}");
        let (batch_fields, batch_rows) = read_csv(&out);
        assert_same_as_genmodel(&name, "batch", &batch_fields, &batch_rows);
        assert_eq!(
            (batch_fields, batch_rows),
            (http_fields, http_rows),
            "{name}: batch and HTTP differ"
        );
    }
}

#[test]
fn batch_gives_one_output_row_per_input_line() {
    // A blank line is a row: in a one-column file its cell is missing (genmodel gives a
    // Word2Vec NA vector for it); a wider file's blank line is refused like any short row
    // (batch_command_refusals). Nothing is skipped.
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("word2vec_blank_lines", tmp.path());
    let known = "cat";
    let cases: &[(&str, &str, &[bool])] = &[
        (
            "blank lines",
            "words\ncat\n\ncat\n\n",
            &[true, false, true, false],
        ),
        ("CRLF", "words\r\ncat\r\n\r\ncat\r\n", &[true, false, true]),
        ("CR", "words\rcat\r\rcat", &[true, false, true]),
        ("quoted empty cell", "words\n\"\"\ncat\n", &[false, true]),
        ("no final newline", "words\n\ncat", &[false, true]),
        ("blank lines before the header", "\n\nwords\ncat\n", &[true]),
    ];
    for (case, text, known_rows) in cases {
        let input = tmp.path().join("words.csv");
        std::fs::write(&input, text.replace("cat", known)).unwrap();
        let (code, log, out) = batch(&dir, &input, None, &[]);
        assert_eq!(code, 0, "{case}: {log}");
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "C1,C2,C3", "{case}");
        assert_eq!(lines.len() - 1, known_rows.len(), "{case}: rows in {out:?}");
        for (line, &is_known) in lines[1..].iter().zip(*known_rows) {
            assert_eq!(line.contains("NaN"), !is_known, "{case}: {line}");
        }
    }
    // The testdata file: 12 words, two of them blank lines, scored as genmodel scores them.
    let input = testdata().join("word2vec_blank_lines.input.csv");
    let (code, log, out) = batch(&dir, &input, None, &[]);
    assert_eq!(code, 0, "{log}");
    let out_path = tmp.path().join("w2v.out.csv");
    std::fs::write(&out_path, &out).unwrap();
    let (header, rows) = read_csv(&out_path);
    assert_eq!(rows.len(), 12);
    assert_same_as_genmodel("word2vec_blank_lines", "batch", &header, &rows);
}

#[test]
fn every_endpoint_answers_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    let server = Server::start(&dir, &[("MODEL_ID", "deployment-42")]);

    let r = server.get("/model/id");
    assert_eq!((r.status, r.body.as_str()), (200, "deployment-42"));
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );

    let r = server.get("/model/schema");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(
        r.json(),
        json!({"id": "deployment-42", "schema": {
            "inputFields": [
                {"name": "x1", "dataType": "Float64"}, {"name": "x2", "dataType": "Float64"},
                {"name": "x3", "dataType": "Float64"}, {"name": "color", "dataType": "Str"}],
            "outputFields": [
                {"name": "predict", "dataType": "Str"}, {"name": "no", "dataType": "Float64"},
                {"name": "yes", "dataType": "Float64"}]}})
    );

    let r = server.get("/model/sample_request");
    assert_eq!(r.status, 200);
    let sample = r.json();
    assert_eq!(
        sample,
        json!({"fields": ["x1", "x2", "x3", "color"], "rows": [["0", "0", "0", "text"]]})
    );
    let r = server.post("/model/score", &sample.to_string());
    assert_eq!(r.status, 200, "the sample request scores: {}", r.body);

    let r = server.get("/model/capabilities");
    assert_eq!(
        (r.status, r.json()),
        (200, json!(["SCORE", "CONTRIBUTION_ORIGINAL"]))
    );
    assert_eq!(server.get("/readyz").body, "Ready");
    let r = server.get("/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));

    // Score with the optional members.
    let cases: &[(&str, Value, Option<Vec<&str>>, usize)] = &[
        ("plain", json!({}), Some(vec!["predict", "no", "yes"]), 0),
        (
            "copied fields keep input order",
            json!({"includeFieldsInOutput": ["color", "x1"]}),
            Some(vec!["x1", "color", "predict", "no", "yes"]),
            2,
        ),
        (
            "generated id",
            json!({"includeFieldsInOutput": ["row_id"], "idField": "row_id"}),
            Some(vec!["row_id", "predict", "no", "yes"]),
            1,
        ),
        (
            "no field names",
            json!({"noFieldNamesInOutput": true, "includeFieldsInOutput": ["x2"]}),
            None,
            1,
        ),
        (
            "extra fields are ignored; NONE shapley and intervals are accepted",
            json!({"requestShapleyValueType": "NONE", "requestPredictionIntervals": true}),
            Some(vec!["predict", "no", "yes"]),
            0,
        ),
    ];
    let base = json!({
        "fields": ["unused", "x1", "x2", "x3", "color"],
        "rows": [["u", "-0.624", "3.409", "2.0", "blue"], ["u", "", "1.834", "4.0", "blue"]],
    });
    for (name, extra, fields, copied) in cases {
        let mut req = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        let r = server.post("/model/score", &req.to_string());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        assert_eq!(v["id"], "deployment-42", "{name}");
        match fields {
            Some(f) => assert_eq!(strings(&v["fields"]), *f, "{name}"),
            None => assert!(v.get("fields").is_none(), "{name}: {v}"),
        }
        let rows = rows_of(&v["score"]);
        assert_eq!(rows.len(), 2, "{name}");
        // H2O: row 1 of gbm_binomial.input.csv, then row 0.
        let k = *copied;
        assert_eq!(rows[0][k], "no", "{name}");
        assert_eq!(rows[0][k + 1], "0.5859945019468265", "{name}");
        assert_eq!(rows[1][k + 2], "0.4382316295645673", "{name}");
    }
    let r = server.post(
        "/model/score",
        &json!({"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "1", "1", "red"], ["2", "2", "2", "red"]],
                "includeFieldsInOutput": ["id"], "idField": "id"})
        .to_string(),
    );
    let ids: Vec<String> = rows_of(&r.json()["score"])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "one UUID per row");
    assert!(
        ids.iter()
            .all(|i| i.len() == 36 && i.matches('-').count() == 4),
        "{ids:?}"
    );

    let r = server.post("/model/contribution", "{}");
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"detail": "Invalid shapley contribution request due to: List of input fields cannot be empty"})
        )
    );
    let r = server.post("/model/media-score", "{}");
    assert_eq!(
        (r.status, r.json()),
        (
            501,
            json!({"detail": "score media files is not implemented"})
        )
    );

    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM:\n{log}");
    assert!(log.contains("received SIGTERM: shutting down"), "{log}");
    // One access-log line per request (the readiness polls included).
    for path in [
        "/model/id",
        "/model/schema",
        "/model/sample_request",
        "/model/capabilities",
        "/healthz",
        "/model/contribution",
    ] {
        let n = log
            .lines()
            .filter(|l| l.contains(&format!("path={path} ")) && l.contains("method="))
            .count();
        assert_eq!(n, 1, "{path}: {n} access lines in\n{log}");
    }
    let scores = log
        .lines()
        .filter(|l| l.contains("path=/model/score status=200"))
        .count();
    assert_eq!(scores, 7, "{log}");

    // Without MODEL_ID, the id is the manifest's.
    let server = Server::start(&dir, &[]);
    let id = manifest["id"].as_str().unwrap();
    assert_eq!(server.get("/model/id").body, id);
    assert_eq!(server.get("/model/schema").json()["id"], id);
    let r = server.post("/model/score", &request_for("gbm_binomial").to_string());
    assert_eq!(r.json()["id"], id);
}

/// The reference contributions of h2o-genmodel for `name`, computed on
/// `testdata/h2o3/<name>.input.csv`: beside it when `generate.py` wrote them there, else
/// in h2o3-scorer's `tests/reference/contributions`.
fn reference_contributions(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let beside = testdata().join(format!("{name}.contributions.csv"));
    read_csv(&if beside.exists() {
        beside
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("h2o3-scorer/tests/reference/contributions")
            .join(format!("{name}.contributions.csv"))
    })
}

/// `/model/contribution` of the tree models equals genmodel's contributions; the type,
/// the request checks and models without contributions get the reference's answers.
#[test]
fn contributions_over_http_equal_genmodel() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "gbm_binomial",
            "ORIGINAL",
            "CONTRIBUTION_ORIGINAL",
            "TRANSFORMED",
        ),
        (
            "drf_regression",
            "ORIGINAL",
            "CONTRIBUTION_ORIGINAL",
            "TRANSFORMED",
        ),
        (
            "xgboost_binomial",
            "TRANSFORMED",
            "CONTRIBUTION_TRANSFORMED",
            "ORIGINAL",
        ),
        (
            "gbm_onehot_binomial",
            "TRANSFORMED",
            "CONTRIBUTION_TRANSFORMED",
            "ORIGINAL",
        ),
    ];
    for (name, kind, capability, other) in cases {
        let dir = process(name, tmp.path());
        let server = Server::start(&dir, &[]);
        let r = server.get("/model/capabilities");
        assert_eq!(
            (r.status, r.json()),
            (200, json!(["SCORE", capability])),
            "{name}"
        );

        let mut req = request_for(name);
        req["requestShapleyValueType"] = json!(kind);
        let r = server.post("/model/contribution", &req.to_string());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.content_type, "application/json", "{name}");
        let v = r.json();
        let groups = v["contributionGroups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{name}: {v}");
        assert!(groups[0].get("output_group").is_none(), "{name}: {v}");
        let (want_features, want_rows) = reference_contributions(name);
        assert_eq!(strings(&v["features"]), want_features, "{name}: features");
        let got_rows = rows_of(&groups[0]["contributions"]);
        assert_eq!(got_rows.len(), want_rows.len(), "{name}: rows");
        for (r, (got, want)) in got_rows.iter().zip(&want_rows).enumerate() {
            assert_eq!(got.len(), want.len(), "{name} row {r}: width");
            for (c, (g, w)) in got.iter().zip(want).enumerate() {
                // The shim writes the shortest decimal of genmodel's `float`, the
                // reference that float widened to a double: widen the shim's too.
                let gv = f64::from(g.parse::<f32>().unwrap());
                let wv: f64 = w.parse().unwrap();
                assert!(
                    gv == wv || (gv - wv).abs() <= 1e-12 * wv.abs(),
                    "{name} row {r} col {c}: got {g}, genmodel {w}"
                );
            }
        }

        // A large request (blocking pool) gives the same rows.
        let rows: Vec<Value> = req["rows"]
            .as_array()
            .unwrap()
            .iter()
            .cycle()
            .take(300)
            .cloned()
            .collect();
        let big = json!({"fields": req["fields"], "rows": rows, "requestShapleyValueType": kind});
        let r = server.post("/model/contribution", &big.to_string());
        assert_eq!(r.status, 200, "{name} big: {}", r.body);
        let big_rows = rows_of(&r.json()["contributionGroups"][0]["contributions"]);
        assert_eq!(big_rows.len(), 300, "{name}");
        assert_eq!(
            big_rows[got_rows.len()],
            got_rows[0],
            "{name}: big request row"
        );

        let fields = req["fields"].clone();
        let row = req["rows"][0].clone();
        let x2 = strings(&fields).iter().position(|f| f == "x2").unwrap();
        let mut bad_row = row.clone();
        bad_row[x2] = json!("two");
        let errors: &[(&str, Value, &str)] = &[
            (
                "other type",
                json!({"fields": fields, "rows": [row], "requestShapleyValueType": other}),
                &format!(
                    "Requested Shapley type {other} not enabled for this scorer. Expected: {kind}"
                ),
            ),
            (
                "NONE",
                json!({"fields": fields, "rows": [row], "requestShapleyValueType": "NONE"}),
                "Only ORIGINAL or TRANSFORMED are accepted enums values of Shapley values",
            ),
            (
                "no type",
                json!({"fields": fields, "rows": [row]}),
                "Only ORIGINAL or TRANSFORMED are accepted enums values of Shapley values",
            ),
            (
                "no rows",
                json!({"fields": fields, "requestShapleyValueType": kind}),
                "List of input data rows cannot be empty",
            ),
            (
                "missing input",
                json!({"fields": ["x1"], "rows": [["1"]], "requestShapleyValueType": kind}),
                "Input fields don't contain all the Mojo fields",
            ),
            (
                "short row",
                json!({"fields": fields, "rows": [row, ["1"]], "requestShapleyValueType": kind}),
                "Not enough elements in row 1 (zero-indexed)",
            ),
            (
                "non-numeric",
                json!({"fields": fields, "rows": [row, bad_row], "requestShapleyValueType": kind}),
                "row 1 (zero-indexed): column \"x2\": \"two\" is not a number",
            ),
        ];
        for (case, body, detail) in errors {
            let r = server.post("/model/contribution", &body.to_string());
            assert_eq!(r.status, 400, "{name} {case}: {}", r.body);
            let got = r.json()["detail"].as_str().unwrap().to_string();
            let prefix = "Invalid shapley contribution request due to: ";
            assert!(got.starts_with(prefix), "{name} {case}: {got}");
            assert!(
                got[prefix.len()..].starts_with(detail),
                "{name} {case}: {got}"
            );
        }
        let (status, log) = server.stop();
        assert!(status.success(), "{name}: {log}");
    }

    // Models genmodel computes no contributions for: 501 with the reason, SCORE only.
    for (name, reason) in [
        ("gbm_multinomial", "multinomial"),
        ("glm_binomial", "GBM, DRF and XGBoost"),
        ("rulefit_binomial_rules_and_linear", "GBM, DRF and XGBoost"),
        ("isotonic_regression", "GBM, DRF and XGBoost"),
        ("uplift_drf", "Uplift DRF"),
        ("target_encoder_binomial", "GBM, DRF and XGBoost"),
    ] {
        let dir = process(name, tmp.path());
        let server = Server::start(&dir, &[]);
        assert_eq!(
            server.get("/model/capabilities").json(),
            json!(["SCORE"]),
            "{name}"
        );
        let mut req = request_for(name);
        req["requestShapleyValueType"] = json!("ORIGINAL");
        let r = server.post("/model/contribution", &req.to_string());
        assert_eq!(r.status, 501, "{name}: {}", r.body);
        let v = r.json();
        let detail = v["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("Unsupported operation due to: "),
            "{name}: {detail}"
        );
        assert!(detail.contains(reason), "{name}: {detail}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{name}: {v}");
    }
}

/// `/model/score` with `requestShapleyValueType` (how H2O's scoring client asks for
/// contributions): the scores as without it, plus `featureShapleyContributions` equal to
/// the `/model/contribution` answer for the same rows; `includeFieldsInOutput`, `idField`
/// and `noFieldNamesInOutput` still shape the scores; the other type and a model without
/// Shapley values keep the reference's 400.
#[test]
fn score_with_shapley_values_carries_the_contribution_answer() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, kind, other) in [
        ("gbm_binomial", "ORIGINAL", "TRANSFORMED"),
        ("xgboost_binomial", "TRANSFORMED", "ORIGINAL"),
        ("drf_regression", "ORIGINAL", "TRANSFORMED"),
    ] {
        let dir = process(name, tmp.path());
        let server = Server::start(&dir, &[]);
        let plain = request_for(name);
        let mut contrib_req = plain.clone();
        contrib_req["requestShapleyValueType"] = json!(kind);
        let want = server.post("/model/contribution", &contrib_req.to_string());
        assert_eq!(want.status, 200, "{name}: {}", want.body);
        let scored = server.post("/model/score", &plain.to_string()).json();
        assert!(
            scored.get("featureShapleyContributions").is_none(),
            "{name}"
        );

        for none in [json!("NONE"), Value::Null] {
            let mut req = plain.clone();
            req["requestShapleyValueType"] = none;
            let r = server.post("/model/score", &req.to_string());
            assert_eq!(r.status, 200, "{name}: {}", r.body);
            assert_eq!(r.json(), scored, "{name}: NONE or null is a plain score");
        }

        let r = server.post("/model/score", &contrib_req.to_string());
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        assert_eq!(v["score"], scored["score"], "{name}: scores unchanged");
        assert_eq!(v["fields"], scored["fields"], "{name}");
        assert_eq!(
            v["featureShapleyContributions"],
            want.json(),
            "{name}: featureShapleyContributions is the /model/contribution answer"
        );

        // With the output options of the mini-batch client: an id column, copied, and a
        // generated id; or no field names.
        let fields = strings(&plain["fields"]);
        let mut with_id = json!({
            "fields": std::iter::once("row_id".to_string()).chain(fields.iter().cloned()).collect::<Vec<_>>(),
            "rows": rows_of(&plain["rows"]).into_iter().enumerate()
                .map(|(i, r)| std::iter::once(format!("id{i}")).chain(r).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            "includeFieldsInOutput": ["row_id", "uuid"],
            "idField": "uuid",
            "requestShapleyValueType": kind,
        });
        let r = server.post("/model/score", &with_id.to_string()).json();
        let out_fields = strings(&r["fields"]);
        assert_eq!(out_fields[..2], ["row_id", "uuid"], "{name}");
        assert_eq!(r["score"][3][0], "id3", "{name}");
        assert_eq!(
            r["featureShapleyContributions"],
            want.json(),
            "{name}: extra fields do not change the contributions"
        );
        with_id["noFieldNamesInOutput"] = json!(true);
        let r = server.post("/model/score", &with_id.to_string()).json();
        assert!(r.get("fields").is_none(), "{name}: {r}");
        assert_eq!(r["featureShapleyContributions"], want.json(), "{name}");

        // Over the inline limit (the blocking pool): the same rows.
        let rows: Vec<Value> = plain["rows"]
            .as_array()
            .unwrap()
            .iter()
            .cycle()
            .take(300)
            .cloned()
            .collect();
        let big = json!({"fields": plain["fields"], "rows": rows, "requestShapleyValueType": kind});
        let r = server.post("/model/score", &big.to_string()).json();
        let groups = &r["featureShapleyContributions"]["contributionGroups"];
        assert_eq!(rows_of(&groups[0]["contributions"]).len(), 300, "{name}");
        assert_eq!(
            groups[0]["contributions"][0],
            want.json()["contributionGroups"][0]["contributions"][0],
            "{name}"
        );

        let mut req = plain.clone();
        req["requestShapleyValueType"] = json!(other);
        let r = server.post("/model/score", &req.to_string());
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert_eq!(
            r.json()["detail"],
            format!("Invalid scoring request due to: Requested Shapley type {other} not enabled for this scorer. Expected: {kind}"),
            "{name}"
        );
        let (status, log) = server.stop();
        assert!(status.success(), "{name}: {log}");
    }

    // Models without Shapley values (genmodel computes none for multinomial models):
    // today's refusal, naming NONE.
    for name in ["gbm_multinomial", "glm_binomial"] {
        let dir = process(name, tmp.path());
        let server = Server::start(&dir, &[]);
        let mut req = request_for(name);
        req["requestShapleyValueType"] = json!("ORIGINAL");
        let r = server.post("/model/score", &req.to_string());
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert_eq!(
            r.json()["detail"],
            "Invalid scoring request due to: Requested Shapley type ORIGINAL not enabled for this scorer. Expected: NONE",
            "{name}"
        );
    }
}

#[test]
fn malformed_requests_get_their_status_and_detail_and_the_server_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(&dir, &[("MAX_BODY_BYTES", "64K")]);
    let good = request_for("gbm_binomial").to_string();
    let big = json!({"fields": ["x1", "x2", "x3", "color"], "rows": vec![vec!["1.0", "2.0", "3.0", "blue"]; 4000]}).to_string();
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("not JSON", "POST", "{\"fields\": [", 400, "Invalid scoring request due to: the body is not valid JSON"),
        ("not an object", "POST", "[1, 2]", 400, "Invalid scoring request due to: the body is not a ScoreRequest"),
        ("empty body", "POST", "", 400, "Invalid scoring request due to: Request cannot be empty"),
        ("missing fields", "POST", r#"{"rows": [["1", "2", "3", "red"]]}"#, 400,
            "Invalid scoring request due to: List of input fields cannot be empty"),
        ("missing rows", "POST", r#"{"fields": ["x1", "x2", "x3", "color"]}"#, 400,
            "Invalid scoring request due to: List of input data rows cannot be empty"),
        ("too few cells", "POST", r#"{"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "2", "3", "red"], ["1", "2", "3"]]}"#, 400,
            "Invalid scoring request due to: Not enough elements in row 1 (zero-indexed)"),
        ("too many cells", "POST", r#"{"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "2", "3", "red", "x"]]}"#, 400,
            "Invalid scoring request due to: Not enough elements in row 0 (zero-indexed)"),
        ("non-numeric string in a numeric column", "POST", r#"{"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "2", "3", "red"], ["1", "two", "3", "red"]]}"#, 400,
            "Invalid scoring request due to: row 1 (zero-indexed): column \"x2\": \"two\" is not a number"),
        ("an unknown field only", "POST", r#"{"fields": ["nope"], "rows": [["1"]]}"#, 400,
            "Invalid scoring request due to: Input fields don't contain all the Mojo fields, expected [x1, x2, x3, color] actual [nope]"),
        ("duplicate field", "POST", r#"{"fields": ["x1", "x2", "x3", "color", "x1"], "rows": [["1", "2", "3", "red", "1"]]}"#, 400,
            "Invalid scoring request due to: field \"x1\" appears more than once"),
        ("unknown field to copy", "POST", r#"{"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "2", "3", "red"]], "includeFieldsInOutput": ["zz"]}"#, 400,
            "Invalid scoring request due to: includeFieldsInOutput names \"zz\""),
        ("Shapley values of the other type", "POST", r#"{"fields": ["x1", "x2", "x3", "color"], "rows": [["1", "2", "3", "red"]], "requestShapleyValueType": "TRANSFORMED"}"#, 400,
            "Invalid scoring request due to: Requested Shapley type TRANSFORMED not enabled for this scorer. Expected: ORIGINAL"),
        ("body over MAX_BODY_BYTES", "POST", &big, 413, "Invalid scoring request due to: the body is larger than the limit"),
        ("GET on the score route", "GET", "", 405, "Method Not Allowed"),
        ("unknown route", "GET /model/nothing", "", 404, "Not Found"),
    ];
    for (name, method, body, status, detail) in cases {
        let r = match *method {
            "POST" => server.post("/model/score", body),
            "GET" => server.get("/model/score"),
            m => server.get(m.strip_prefix("GET ").unwrap()),
        };
        assert_eq!(r.status, *status, "{name}: {}", r.body);
        assert_eq!(r.content_type, "application/json", "{name}");
        let v = r.json();
        let got = v["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no string detail: {v}"));
        assert!(got.starts_with(detail), "{name}: detail {got:?}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{name}: only detail: {v}");
        let ok = server.post("/model/score", &good);
        assert_eq!(
            ok.status, 200,
            "after {name}, the server still scores: {}",
            ok.body
        );
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

/// A request still running at REQUEST_TIMEOUT_SECS is answered 503 with a `detail`;
/// the server goes on serving. The body (15 MB) is read under its own deadline, in
/// milliseconds, so the 503 is the scoring's.
#[test]
fn a_request_over_the_timeout_gets_503() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(&dir, &[("REQUEST_TIMEOUT_SECS", "0.15")]);
    // 500 000 rows go to the blocking pool and take far longer than 150 ms to score: a
    // debug build took 0.15–0.16 s for 100 000 of them on a 2-CPU Xeon, whole request.
    let rows = vec![r#"["1.5","2.0","3.0","blue"]"#; 500_000].join(",");
    let big = format!(r#"{{"fields":["x1","x2","x3","color"],"rows":[{rows}]}}"#);
    let r = server.post("/model/score", &big);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("the request took longer than 0.15 s"),
        "{}",
        r.body
    );
    assert_eq!(server.get("/healthz").status, 200);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("path=/model/score status=503"), "{log}");
}

/// Sends `raw` on a fresh connection, keeps the connection open for writing, and
/// returns the whole answer the server sends before it closes the connection.
fn raw_exchange(base: &str, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap_or_else(|e| {
        panic!(
            "no complete answer: {e}; got {:?}",
            String::from_utf8_lossy(&out)
        )
    });
    String::from_utf8(out).unwrap()
}

/// A client that stalls in its request line or headers gets 408 once HEADER_TIMEOUT_SECS
/// passes (slowloris), one that stalls mid-body gets 408 (its fault, not the server's
/// 503) once the body deadline (REQUEST_TIMEOUT_SECS) passes; a declared `Content-Length` over
/// MAX_BODY_BYTES gets 413 at once, without `100 Continue` and without reading the body.
/// Each refusal closes its connection and the server goes on scoring.
#[test]
fn slow_and_oversized_bodies_are_refused_and_the_server_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(
        &dir,
        &[
            ("REQUEST_TIMEOUT_SECS", "1"),
            ("HEADER_TIMEOUT_SECS", "1"),
            ("MAX_BODY_BYTES", "64K"),
        ],
    );
    let good = request_for("gbm_binomial").to_string();
    let head = |path: &str, extra: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n{extra}\r\n")
    };
    let headers_late = "the request line and headers were not received within 1 s";
    let cases: &[(&str, String, u16, &str)] = &[
        ("nothing sent", String::new(), 408, headers_late),
        (
            "request line stalls",
            "POST /model/sco".to_string(),
            408,
            headers_late,
        ),
        (
            "headers stall",
            "POST /model/score HTTP/1.1\r\nHost: t\r\nContent-Le".to_string(),
            408,
            headers_late,
        ),
        (
            "body stalls after 10 of 100 bytes",
            head("/model/score", "Content-Length: 100\r\n") + r#"{"fields":"#,
            408,
            "the request body was not received within 1 s",
        ),
        (
            "contribution body stalls",
            head("/model/contribution", "Content-Length: 100\r\n") + "{",
            408,
            "the request body was not received within 1 s",
        ),
        (
            "Content-Length over the limit with Expect: 100-continue",
            head(
                "/model/score",
                "Content-Length: 1000000\r\nExpect: 100-continue\r\n",
            ),
            413,
            "Invalid scoring request due to: the body is larger than the limit",
        ),
        (
            "Content-Length over the limit, body never sent",
            head("/model/score", "Content-Length: 10000000000\r\n"),
            413,
            "Invalid scoring request due to: the body is larger than the limit",
        ),
        (
            "contribution Content-Length over the limit",
            head("/model/contribution", "Content-Length: 65537\r\n"),
            413,
            "Invalid shapley contribution request due to: the body is larger than the limit",
        ),
    ];
    for (name, raw, status, detail) in cases {
        let started = Instant::now();
        let out = raw_exchange(&server.base, raw.as_bytes());
        let took = started.elapsed();
        let first = out.lines().next().unwrap_or("");
        assert_eq!(
            first,
            format!(
                "HTTP/1.1 {status} {}",
                ureq::http::StatusCode::from_u16(*status)
                    .unwrap()
                    .canonical_reason()
                    .unwrap()
            ),
            "{name}: {out}"
        );
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}: {out}"));
        let got = v["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(got.starts_with(detail), "{name}: detail {got:?}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{name}: only detail: {v}");
        if *status == 413 {
            assert!(
                took < Duration::from_millis(900),
                "{name}: answered after {took:?}"
            );
        } else {
            assert!(
                took >= Duration::from_millis(900),
                "{name}: answered after {took:?}"
            );
        }
        let ok = server.post("/model/score", &good);
        assert_eq!(
            ok.status, 200,
            "after {name}, the server still scores: {}",
            ok.body
        );
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("path=/model/score status=408"), "{log}");
    assert!(log.contains("path=/model/score status=413"), "{log}");
    assert!(log.contains("path=- status=408"), "{log}");
}

/// Slowloris: more connections than MAX_CONNECTIONS, each sending part of a request line
/// and then nothing. The ones over the cap wait in the listen backlog; each is answered
/// 408 once HEADER_TIMEOUT_SECS has passed since it was accepted, and a real request
/// queued behind them is served once slots free up.
#[test]
fn stalled_connections_past_the_cap_get_408_and_a_queued_request_is_served() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(
        &dir,
        &[("HEADER_TIMEOUT_SECS", "1"), ("MAX_CONNECTIONS", "4")],
    );
    let addr = server.base.strip_prefix("http://").unwrap().to_string();
    let started = Instant::now();
    let stalled: Vec<std::net::TcpStream> = (0..10)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(b"POST /model/sco").unwrap();
            s
        })
        .collect();
    let good = request_for("gbm_binomial").to_string();
    let raw = format!(
        "POST /model/score HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{good}",
        good.len()
    );
    let out = raw_exchange(&server.base, raw.as_bytes());
    let waited = started.elapsed();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(
        waited >= Duration::from_millis(900),
        "served after {waited:?}, while the cap was held"
    );
    for (i, mut s) in stalled.into_iter().enumerate() {
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("stalled connection {i}: {e}; got {answer:?}"));
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout"),
            "stalled connection {i}: {answer:?}"
        );
        assert!(
            answer.ends_with(
                r#"{"detail":"the request line and headers were not received within 1 s (HEADER_TIMEOUT_SECS)"}"#
            ),
            "stalled connection {i}: {answer:?}"
        );
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("connection limit reached (MAX_CONNECTIONS)"),
        "{log}"
    );
    assert_eq!(log.matches("path=- status=408").count(), 10, "{log}");
}

/// Rewrites `dir/model.json` with `edit` applied (model.json is not in `files`).
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let p = dir.join("model.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[test]
fn start_up_refusals_have_their_own_message_and_exit_code() {
    type Setup = fn(&Path) -> Vec<(&'static str, String)>;
    let cases: Vec<(&str, &str, Setup, i32, &[&str])> = vec![
        ("tampered payload byte", "gbm_binomial", |d| {
            let p = d.join("model.mojo");
            let mut b = std::fs::read(&p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x5a;
            std::fs::write(&p, b).unwrap();
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 3, &["verification failed for \"model.mojo\"", "sha256 is"]),
        ("payload grew", "gbm_binomial", |d| {
            use std::io::Write;
            std::fs::OpenOptions::new().append(true).open(d.join("model.mojo")).unwrap().write_all(b"x").unwrap();
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 3, &["verification failed for \"model.mojo\"", "size is"]),
        ("payload missing", "gbm_binomial", |d| {
            std::fs::remove_file(d.join("model.mojo")).unwrap();
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 3, &["verification failed for \"model.mojo\"", "missing"]),
        ("unlisted file", "gbm_binomial", |d| {
            std::fs::write(d.join("extra.bin"), b"x").unwrap();
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 3, &["\"extra.bin\"", "not listed in the manifest"]),
        ("missing model.json", "gbm_binomial", |d| {
            std::fs::remove_file(d.join("model.json")).unwrap();
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 3, &["no model.json: this directory is not a processed model"]),
        ("contract version 2", "gbm_binomial", |d| {
            edit_manifest(d, |v| v["contract_version"] = json!(2));
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 3, &["contract version 2 is not supported"]),
        ("wrong model type", "gbm_binomial", |d| {
            edit_manifest(d, |v| v["model_type"] = json!("dai_mojo_pipeline"));
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("MODEL_TYPES", "h2o3_mojo".into())]
        }, 5, &["model type \"dai_mojo_pipeline\" is not served by this runtime (it serves: h2o3_mojo)",
                "needs a Driverless AI MOJO pipeline runtime"]),
        ("no MODEL_PATH", "gbm_binomial", |_| vec![], 2, &["no model: pass --model-path DIR or set MODEL_PATH"]),
        ("MODEL_PATH does not exist", "gbm_binomial", |d| {
            vec![("MODEL_PATH", d.join("nowhere").to_str().unwrap().into())]
        }, 2, &["does not exist"]),
        ("a model type without backend in MODEL_TYPES", "gbm_binomial", |d| {
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("MODEL_TYPES", "h2o3_mojo,pmml".into())]
        }, 2, &["names \"pmml\", which this build has no backend for (it has: h2o3_mojo, mlflow_pyfunc, dai_mojo_pipeline, onnx)"]),
        ("a DAI pipeline without a scorer", "gbm_binomial", |d| {
            edit_manifest(d, |v| v["model_type"] = json!("dai_mojo_pipeline"));
            vec![("MODEL_PATH", d.to_str().unwrap().into())]
        }, 2, &["the dai_mojo_pipeline backend cannot start: no DAI scorer is configured",
                "install a scorer that serves the MLOps scoring API", "mojo2-runtime.jar",
                "DAI_SCORER_COMMAND", "DRIVERLESS_AI_LICENSE_FILE"]),
        ("a DAI scorer command without {port}", "gbm_binomial", |d| {
            edit_manifest(d, |v| v["model_type"] = json!("dai_mojo_pipeline"));
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("DAI_SCORER_COMMAND", "java -jar s.jar".into())]
        }, 2, &["DAI_SCORER_COMMAND \"java -jar s.jar\" has no {port}"]),
        ("an MLflow serve command without {port}", "gbm_binomial", |d| {
            edit_manifest(d, |v| v["model_type"] = json!("mlflow_pyfunc"));
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("MLFLOW_SERVE_COMMAND", "mlflow models serve -m {model}".into())]
        }, 2, &["the mlflow_pyfunc backend cannot start: MLFLOW_SERVE_COMMAND \"mlflow models serve -m {model}\" has no {port}"]),
        ("a zero header timeout", "gbm_binomial", |d| {
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("HEADER_TIMEOUT_SECS", "0".into())]
        }, 2, &["--header-timeout-secs must be a positive number of seconds, not 0"]),
        ("a negative idle timeout", "gbm_binomial", |d| {
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("IDLE_TIMEOUT_SECS", "-1".into())]
        }, 2, &["--idle-timeout-secs must be a positive number of seconds, not -1"]),
        ("no connections allowed", "gbm_binomial", |d| {
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("MAX_CONNECTIONS", "0".into())]
        }, 2, &["--max-connections must be at least 1"]),
        ("bad port", "gbm_binomial", |d| {
            vec![("MODEL_PATH", d.to_str().unwrap().into()), ("PORT", "http".into())]
        }, 2, &["invalid value 'http'"]),
    ];
    for (name, source, setup, code, needles) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = process(source, tmp.path());
        // Command::envs applies in order: the case's own PORT wins over the default.
        let mut env = vec![("PORT", "0".to_string()), ("HOST", "127.0.0.1".to_string())];
        env.extend(setup(&dir));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, log) = run_to_exit(&[], &env);
        assert_eq!(got, code, "{name}: exit code; log:\n{log}");
        for n in needles {
            assert!(log.contains(n), "{name}: {n:?} not in\n{log}");
        }
    }
}

/// A valid MOJO the native scorer refuses (a preprocessor) stops the start with exit 6;
/// the batch command refuses it the same way.
#[test]
fn a_model_the_backend_cannot_score_exits_with_the_backend_code() {
    let tmp = tempfile::tempdir().unwrap();
    let src = testkit::mojo::edited(
        &testdata().join("gbm_binomial.zip"),
        tmp.path(),
        &[("preprocessors_count", Some("1"))],
        &[],
    );
    let dir = directory_with_payload("gbm_binomial", &src, tmp.path());
    let needles = [
        "the h2o3_mojo backend could not load model.mojo",
        "gbm / Binomial: not supported by the native scorer",
        "preprocessors",
    ];
    let input = testdata().join("gbm_binomial.input.csv");
    let runs: [(&str, Vec<&str>); 2] = [
        ("serve", vec![]),
        ("batch", vec!["score", "--input", input.to_str().unwrap()]),
    ];
    for (name, args) in runs {
        let (code, log) = run_to_exit(
            &args,
            &[
                ("MODEL_PATH", dir.to_str().unwrap()),
                ("PORT", "0"),
                ("HOST", "127.0.0.1"),
            ],
        );
        assert_eq!(code, 6, "{name}: {log}");
        for n in needles {
            assert!(log.contains(n), "{name}: {n:?} not in\n{log}");
        }
    }
}

#[test]
fn a_port_in_use_exits_with_the_io_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, log) = run_to_exit(
        &[
            "--model-path",
            dir.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port,
        ],
        &[],
    );
    assert_eq!(code, 4, "{log}");
    assert!(
        log.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{log}"
    );
}

/// Runs `runtime-shim score` on `input` with the model at `dir`, writing `out` (standard
/// output when `None`), with `extra` flags; returns the exit code, the log and the output.
fn batch(dir: &Path, input: &Path, out: Option<&Path>, extra: &[&str]) -> (i32, String, Vec<u8>) {
    let mut args = vec![
        "score",
        "--model-path",
        dir.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    if let Some(out) = out {
        args.extend(["--output", out.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    let o = shim(&args, &[]).output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code().unwrap_or(-1);
    let written = match out {
        Some(p) if code == 0 => std::fs::read(p).unwrap(),
        Some(_) => Vec::new(),
        None => o.stdout,
    };
    (code, log, written)
}

#[test]
fn batch_command_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let write_bytes = |name: &str, bytes: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases: Vec<(&str, PathBuf, i32, &str)> = vec![
        ("missing column", write("a.csv", "x1,x2,color\n1,2,red\n"), 7,
            "Input fields don't contain all the Mojo fields, expected [x1, x2, x3, color] actual [x1, x2, color]"),
        ("short row", write("b.csv", "x1,x2,x3,color\n1,2,3,red\n1,2\n"), 7, "Not enough elements in row 1 (zero-indexed)"),
        ("non-numeric", write("c.csv", "x1,x2,x3,color\n1,2,x,red\n"), 7, "column \"x3\": \"x\" is not a number"),
        ("no rows", write("d.csv", "x1,x2,x3,color\n"), 7, "List of input data rows cannot be empty"),
        ("a blank line (a row of one cell)", write("h.csv", "x1,x2,x3,color\n1,2,3,red\n\n1,2,3,red\n"), 7,
            "Not enough elements in row 1 (zero-indexed)"),
        ("input missing", tmp.path().join("none.csv"), 2, "does not exist"),
        ("a bad row after many good ones (streamed)", write("f.csv", &format!(
            "x1,x2,x3,color\n{}1,2,x,red\n", "1,2,3,red\n".repeat(5000))), 7,
            "Invalid scoring request due to: row 5000 (zero-indexed): column \"x3\": \"x\" is not a number"),
        ("a short row after many good ones", write("g.csv", &format!(
            "x1,x2,x3,color\n{}1,2\n", "1,2,3,red\n".repeat(3000))), 7,
            "Invalid scoring request due to: Not enough elements in row 3000 (zero-indexed)"),
        ("a bad row in a later piece", write("i.csv", &format!(
            "x1,x2,x3,color\n{}1,2,x,red\n{}", "1,2,3,red\n".repeat(30_000), "1,2,3,red\n".repeat(100))), 7,
            "Invalid scoring request due to: row 30000 (zero-indexed): column \"x3\": \"x\" is not a number"),
        ("invalid UTF-8 in a later piece", write_bytes("j.csv", &[
            "x1,x2,x3,color\r\n".as_bytes(), "1,2,3,red\r\n".repeat(20_000).as_bytes(),
            b"1,2,3,r\xffd\r\n", "1,2,3,red\r\n".repeat(100).as_bytes()].concat()), 7,
            "CSV parse error: record 20001 (line 20001, field: 3, byte: 220015): invalid utf-8"),
        ("invalid UTF-8 in the first row", write_bytes("k.csv", b"x1,x2\n1,\xff\n"), 7,
            "CSV parse error: record 1 (line 2, field: 1, byte: 6): invalid utf-8"),
    ];
    // Each with one scoring thread and with three (the bad rows of the first cases are
    // in the first piece of 64 KiB, the later ones in the fourth and fifth): the same
    // refusal, with the row's number (or line and byte) in the whole input.
    for ((name, input, code, needle), threads) in
        cases.iter().flat_map(|c| ["1", "3"].map(|t| (c, t)))
    {
        let out = tmp.path().join(format!("{name}.out.csv"));
        let (got, log, _) = batch(&dir, input, Some(&out), &["--threads", threads]);
        let name = format!("{name}, {threads} thread(s)");
        assert_eq!(got, *code, "{name}: {log}");
        assert!(log.contains(needle), "{name}: {needle:?} not in {log}");
        assert!(!out.exists(), "{name}: no output after a failure");
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{name}: temporary files left: {left:?}");
    }

    // --fsync writes the same bytes.
    let input = testdata().join("gbm_binomial.input.csv");
    let outs: Vec<Vec<u8>> = [&[][..], &["--fsync"][..]]
        .iter()
        .map(|extra| {
            let out = tmp.path().join("fsync.out.csv");
            let (code, log, written) = batch(&dir, &input, Some(&out), extra);
            assert_eq!(code, 0, "{extra:?}: {log}");
            written
        })
        .collect();
    assert_eq!(outs[0], outs[1]);

    // 10 000 rows (7 pieces, the last one partial) with copied fields: the same bytes
    // whatever the number of scoring threads, the testdata rows' predictions in order.
    let (header, rows) = read_csv(&input);
    let mut big = format!("k,{}\n", header.join(","));
    for i in 0..10_000 {
        big.push_str(&format!("r{i},{}\n", rows[i % rows.len()].join(",")));
    }
    let big = write("big.csv", &big);
    let outs: Vec<String> = ["1", "2", "5"]
        .iter()
        .map(|threads| {
            let out = tmp.path().join("big.out.csv");
            let extra = ["--include-fields", "k", "--threads", threads];
            let (code, log, written) = batch(&dir, &big, Some(&out), &extra);
            assert_eq!(code, 0, "{threads} threads: {log}");
            String::from_utf8(written).unwrap()
        })
        .collect();
    assert_eq!(outs[0], outs[1], "1 and 2 threads");
    assert_eq!(outs[0], outs[2], "1 and 5 threads");
    let lines: Vec<&str> = outs[0].lines().collect();
    assert_eq!(lines.len(), 10_001);
    let (code, log, small) = batch(&dir, &input, None, &[]);
    assert_eq!(code, 0, "{log}");
    let small = String::from_utf8(small).unwrap();
    let small: Vec<&str> = small.lines().skip(1).collect();
    for (i, line) in lines[1..].iter().enumerate() {
        let (k, rest) = line.split_once(',').unwrap();
        assert_eq!(k, format!("r{i}"), "row {i}");
        assert_eq!(rest, small[i % small.len()], "row {i}");
    }

    // Copied fields and an id field, to standard output.
    let input = write("e.csv", "k,x1,x2,x3,color\nA,-0.624,3.409,2.0,blue\n");
    let o = shim(
        &[
            "score",
            "--input",
            input.to_str().unwrap(),
            "--include-fields",
            "k,rid",
            "--id-field",
            "rid",
        ],
        &[("MODEL_PATH", dir.to_str().unwrap())],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("k,rid,predict,no,yes"));
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!((row[0], row[2], row[3]), ("A", "no", "0.5859945019468265"));
    assert_eq!(row[1].len(), 36);
}

#[test]
fn help_documents_the_exit_codes() {
    let o = shim(&["--help"], &[]).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "Exit codes:",
        "  3  the model directory is invalid",
        "  5  the model type is not served",
        "  6  the backend could not load",
        "[env: MODEL_PATH=]",
        "[env: PORT=]",
        "[env: MODEL_TYPES=]",
        "[env: MODEL_ID=]",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}
