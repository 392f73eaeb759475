//! The `mlflow_pyfunc` backend end to end with the real MLflow scoring server: the
//! testdata models, processed here with the mlflow processor library, served by the shim
//! with `mlflow models serve` from the venv that `MLFLOW_VENV` names
//! (`.ci/setup-mlflow-venv.sh` builds it), must score as the reference predictions saved
//! beside them (which came from MLflow's own server). Without `MLFLOW_VENV` the tests say
//! they are skipped; with a venv that lacks `bin/mlflow` they fail.
//!
//! Starting the server takes seconds, so the models start in parallel (each shim and
//! each child on its own free loopback port), at most [`MAX_STARTING`] at a time across
//! the tests of this binary ([`start_mlflow`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artifact_core::{Context, ReadOptions};
use serde_json::{json, Value};

use super::{
    alive, assert_matches_predictions, batch, child_pids, edit_manifest, read_csv, rows_of,
    run_to_exit, signal, strings, wait_ready, Server,
};

const NAME: &str = "MLflow scoring server";

/// MLflow servers starting at once across the tests of this binary. A start imports
/// mlflow and the model's flavor (seconds of CPU each); nine at once on a 2-core machine
/// take minutes each and miss the start-up deadline, two at once keep the cores busy.
const MAX_STARTING: usize = 2;
static STARTING: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// [`Server::start`] (which waits for `/readyz`) for a shim in front of an MLflow server,
/// once fewer than [`MAX_STARTING`] others are starting.
fn start_mlflow(dir: &Path, env: &[(&str, &str)]) -> Server {
    let (count, turn) = &STARTING;
    {
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= MAX_STARTING {
            n = turn.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
    }
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            let (count, turn) = &STARTING;
            *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            turn.notify_one();
        }
    }
    let _slot = Slot;
    Server::start(dir, env)
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/mlflow")
}

/// The venv of `MLFLOW_VENV`; `None` (and a "skipped" line) when it is not set.
pub(super) fn venv() -> Option<PathBuf> {
    let Some(v) = std::env::var_os("MLFLOW_VENV").filter(|v| !v.is_empty()) else {
        eprintln!("skipped: MLFLOW_VENV not set (.ci/setup-mlflow-venv.sh prints one)");
        return None;
    };
    let v = PathBuf::from(v);
    for tool in ["bin/mlflow", "bin/uvicorn", "bin/python"] {
        assert!(
            v.join(tool).is_file(),
            "MLFLOW_VENV={} has no {tool}",
            v.display()
        );
    }
    Some(v)
}

fn serve_command(venv: &Path) -> String {
    format!(
        "'{}' models serve -m {{model}} --env-manager local -h {{host}} -p {{port}}",
        venv.join("bin/mlflow").display()
    )
}

/// Processes `testdata/mlflow/<name>` into `parent/<name>` with the real processor code.
fn process(name: &str, parent: &Path) -> PathBuf {
    process_with(name, parent, mlflow_model::MlflowArgs::default())
}

fn process_with(name: &str, parent: &Path, args: mlflow_model::MlflowArgs) -> PathBuf {
    let target = parent.join(name);
    let ctx = Context {
        read: ReadOptions::default(),
        args,
    };
    artifact_core::cli::process::<mlflow_model::MlflowProcessor>(
        &testdata().join(name),
        &target,
        false,
        &ctx,
    )
    .unwrap_or_else(|e| panic!("{name}: processing failed: {e}"));
    target
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `<name>.request.json` (split orient) as a ScoreRequest of string cells, with the
/// fields in reverse order (the shim maps them by name).
fn request(name: &str) -> Value {
    let split = read_json(testdata().join(format!("{name}.request.json")));
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut fields = strings(&split["columns"]);
    fields.reverse();
    let rows: Vec<Vec<String>> = split["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().rev().map(text).collect())
        .collect();
    json!({"fields": fields, "rows": rows})
}

/// The reference predictions as one list of values per row, in output order.
fn reference(name: &str, outputs: &[String]) -> Vec<Vec<Value>> {
    let p = read_json(testdata().join(format!("{name}.predictions.json")));
    p.as_array()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::Object(rec) if rec.len() == 1 && outputs.len() == 1 => {
                vec![rec.values().next().unwrap().clone()]
            }
            Value::Object(rec) => outputs.iter().map(|o| rec[o].clone()).collect(),
            scalar => vec![scalar.clone()],
        })
        .collect()
}

/// Every cell equals the reference exactly: numbers as the same f64, labels as text.
fn assert_reference(name: &str, how: &str, got: &[Vec<String>], want: &[Vec<Value>]) {
    assert_eq!(got.len(), want.len(), "{name} ({how}): rows");
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{name} ({how}) row {r}: width");
        for (c, (gc, wc)) in g.iter().zip(w).enumerate() {
            match wc {
                Value::Number(n) => {
                    let gv: f64 = gc.parse().unwrap_or_else(|_| {
                        panic!("{name} ({how}) row {r} col {c}: {gc:?} is not a number")
                    });
                    assert_eq!(gv, n.as_f64().unwrap(), "{name} ({how}) row {r} col {c}");
                    if n.is_i64() {
                        assert_eq!(gc, &n.to_string(), "{name} ({how}) row {r} col {c}");
                    }
                }
                Value::String(s) => assert_eq!(gc, s, "{name} ({how}) row {r} col {c}"),
                other => panic!("{name}: reference cell {other}"),
            }
        }
    }
}

fn manifest(dir: &Path) -> Value {
    read_json(dir.join("model.json"))
}

fn names(cols: &Value) -> Vec<String> {
    cols.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// Seconds from the child's start to its first `/ping`, from the shim's log.
fn child_start_seconds(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains(&format!("the {NAME} answers GET /ping")))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("seconds="))
                .and_then(|s| s.parse().ok())
        })
        .collect()
}

/// Serves one model and checks every route against the manifest and the reference.
fn serve_and_check(name: &str, venv: &Path, tmp: &Path) -> String {
    let dir = process(name, tmp);
    let m = manifest(&dir);
    let outputs = names(&m["output_schema"]);
    let cmd = serve_command(venv);
    let started = Instant::now();
    let server = start_mlflow(&dir, &[("MLFLOW_SERVE_COMMAND", &cmd)]);
    let ready = started.elapsed();

    let schema = server.get("/model/schema").json();
    assert_eq!(schema["id"], m["id"], "{name}");
    assert_eq!(
        schema["schema"]["inputFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        names(&m["input_schema"]),
        "{name}"
    );
    assert_eq!(
        strings(&server.get("/model/sample_request").json()["fields"]),
        names(&m["input_schema"]),
        "{name}"
    );
    assert_eq!(server.get("/model/capabilities").json(), json!(["SCORE"]));

    let r = server.post("/model/score", &request(name).to_string());
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    let v = r.json();
    assert_eq!(strings(&v["fields"]), outputs, "{name}");
    assert_eq!(v["id"], m["id"], "{name}");
    let want = reference(name, &outputs);
    assert_reference(name, "HTTP", &rows_of(&v["score"]), &want);
    // The Open Inference Protocol goes through the same MLflow server.
    super::v2::assert_v2_scores_like_mlops(&server, &request(name), &format!("{name} over v2"));

    // One row, with the first input copied in front.
    let mut one = request(name);
    let first = one["rows"][3].clone();
    one["rows"] = json!([first]);
    let copied = m["input_schema"][0]["name"].as_str().unwrap().to_string();
    one["includeFieldsInOutput"] = json!([copied]);
    let r = server.post("/model/score", &one.to_string());
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    let v = r.json();
    assert_eq!(strings(&v["fields"])[0], copied, "{name}");
    let row = &rows_of(&v["score"])[0];
    assert_reference(name, "one row", &[row[1..].to_vec()], &want[3..4]);

    // A cell the input type cannot hold is refused by the shim; the server keeps serving.
    let mut bad = request(name);
    let col = strings(&bad["fields"])
        .iter()
        .position(|f| *f == copied)
        .unwrap();
    bad["rows"][1][col] = json!("not-a-number");
    let r = server.post("/model/score", &bad.to_string());
    assert_eq!(r.status, 400, "{name}: {}", r.body);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with(&format!(
            "Invalid scoring request due to: row 1 (zero-indexed): column {copied:?}: \"not-a-number\" is not a"
        )),
        "{name}: {detail}"
    );

    // A missing cell goes to MLflow as null: sklearn's integer column refuses it (MLflow's
    // 400, passed on), the custom model computes NaN (Python writes `NaN`, not JSON).
    let mut missing = request(name);
    missing["rows"][0][col] = Value::Null;
    missing["rows"] = json!([missing["rows"][0]]);
    let r = server.post("/model/score", &missing.to_string());
    match name {
        "sklearn_pipeline" => {
            assert_eq!(r.status, 400, "{name}: {}", r.body);
            let d = r.json()["detail"].as_str().unwrap().to_string();
            assert!(
                d.starts_with(
                    "Invalid scoring request due to: the MLflow model refused the rows: "
                ) && d.contains("age"),
                "{name}: {d}"
            );
        }
        "custom_pyfunc" => {
            assert_eq!(r.status, 200, "{name}: {}", r.body);
            assert_eq!(rows_of(&r.json()["score"]), [["NaN"]], "{name}");
        }
        _ => assert_eq!(r.status, 200, "{name}: {}", r.body),
    }

    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{name}: {log}");
    assert!(
        log.contains(&format!("the {NAME} stopped")),
        "{name}: {log}"
    );
    let pid = child_pids(&log, NAME)[0];
    assert!(
        !alive(pid),
        "{name}: the scoring server {pid} outlived the shim"
    );
    format!(
        "{name}: shim ready after {:.1} s, child /ping after {:?} s",
        ready.as_secs_f64(),
        child_start_seconds(&log)
    )
}

#[test]
fn mlflow_models_score_as_the_reference_predictions() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let models = ["sklearn_pipeline", "xgboost", "lightgbm", "custom_pyfunc"];
    let started = Instant::now();
    let timings: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = models
            .iter()
            .map(|name| {
                let (venv, tmp) = (&venv, tmp.path());
                s.spawn(move || serve_and_check(name, venv, tmp))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    eprintln!(
        "MLflow models in parallel, {:.1} s in all:\n  {}",
        started.elapsed().as_secs_f64(),
        timings.join("\n  ")
    );
}

#[test]
fn a_killed_mlflow_server_is_restarted_and_a_python_mismatch_is_flagged() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let name = "xgboost";
    let dir = process(name, tmp.path());
    // As if the model had been saved with another Python (model.json is not verified).
    edit_manifest(&dir, |v| v["metadata"]["python_version"] = json!("3.8.13"));
    let cmd = serve_command(&venv);
    let mut env = vec![
        ("MODEL_PATH", dir.to_str().unwrap()),
        ("MLFLOW_SERVE_COMMAND", cmd.as_str()),
        ("PORT", "0"),
        ("HOST", "127.0.0.1"),
        ("MLFLOW_REQUIRE_PYTHON_MATCH", "true"),
    ];
    let (code, log) = run_to_exit(&[], &env);
    assert_eq!(code, 6, "{log}");
    let python = venv.join("bin/python");
    for needle in [
        "the mlflow_pyfunc backend could not load model: the model was saved with Python 3.8.13 and the runtime's Python",
        &format!("({}) is 3.", python.display()),
        "refused because MLFLOW_REQUIRE_PYTHON_MATCH is set",
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    assert!(
        child_pids(&log, NAME).is_empty(),
        "refused before the server starts: {log}"
    );

    env.pop();
    let server = start_mlflow(&dir, &[("MLFLOW_SERVE_COMMAND", &cmd)]);
    let outputs = vec!["prediction".to_string()];
    let want = reference(name, &outputs);
    let r = server.post("/model/score", &request(name).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_reference(name, "before the kill", &rows_of(&r.json()["score"]), &want);

    // SIGKILL the scoring server: /readyz fails at once, scoring says why, and the shim
    // starts a new server by itself.
    let pid = child_pids(&server.log(), NAME)[0];
    signal(pid, "-KILL");
    wait_ready(&server, 500, Duration::from_secs(5));
    let r = server.post("/model/score", &request(name).to_string());
    assert_eq!(r.status, 503, "{}", r.body);
    // Also in the moment before the shim reaps the child (the forward fails, and its
    // process group is gone).
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with("the MLflow scoring server is not running (it is being restarted)"),
        "{detail}"
    );
    let recovery = wait_ready(&server, 200, Duration::from_secs(120));
    let r = server.post("/model/score", &request(name).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_reference(
        name,
        "after the restart",
        &rows_of(&r.json()["score"]),
        &want,
    );

    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    for needle in [
        "the model was saved with Python 3.8.13 and the runtime's Python",
        "(MLFLOW_REQUIRE_PYTHON_MATCH=true refuses to start)",
        &format!("the {NAME} exited with signal: 9 (SIGKILL); not ready until it is restarted pid={pid} restart_in_seconds=0.5"),
        &format!("the {NAME} is back; ready"),
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    let pids = child_pids(&log, NAME);
    assert_eq!(pids.len(), 2, "{log}");
    for p in pids {
        assert!(!alive(p), "the scoring server {p} outlived the shim");
    }
    eprintln!(
        "{name}: recovery after SIGKILL {:.1} s; child /ping after {:?} s",
        recovery.as_secs_f64(),
        child_start_seconds(&log)
    );
}

#[test]
fn an_mlflow_server_that_cannot_start_stops_the_shim() {
    // Needs no venv: the command does not exist.
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("custom_pyfunc", tmp.path());
    let unknown = process_with(
        "no_signature",
        tmp.path(),
        mlflow_model::MlflowArgs {
            allow_no_signature: true,
            ..Default::default()
        },
    );
    let (got, log) = run_to_exit(
        &[],
        &[
            ("MODEL_PATH", unknown.to_str().unwrap()),
            (
                "MLFLOW_SERVE_COMMAND",
                "/nonexistent/mlflow models serve -m {model} -p {port}",
            ),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
        ],
    );
    assert_eq!(got, 6, "no schema: {log}");
    assert!(
        log.contains("the mlflow_pyfunc backend could not load model: the manifest has no complete input and output schema"),
        "no schema: {log}"
    );
    let cases: &[(&str, &str, i32, &[&str])] = &[
        ("no such command", "/nonexistent/bin/mlflow models serve -m {model} -p {port}", 6,
            &["the mlflow_pyfunc backend could not load model: cannot start the MLflow scoring server `/nonexistent/bin/mlflow models serve -m ",
              "(MLFLOW_SERVE_COMMAND): No such file or directory"]),
        ("exits at once", "sh -c 'echo uvicorn: not found >&2; exit 127' {model} {port}", 6,
            &["exited with exit status: 127 before it answered GET /ping; its last output:\n    uvicorn: not found"]),
    ];
    for (name, cmd, code, needles) in cases {
        let (got, log) = run_to_exit(
            &[],
            &[
                ("MODEL_PATH", dir.to_str().unwrap()),
                ("MLFLOW_SERVE_COMMAND", cmd),
                ("PORT", "0"),
                ("HOST", "127.0.0.1"),
            ],
        );
        assert_eq!(got, *code, "{name}: {log}");
        for n in *needles {
            assert!(log.contains(n), "{name}: {n:?} not in\n{log}");
        }
    }
}

/// An MLflow model wrapping an H2O-3 MOJO (`h2o_mlflow_flavor`), processed as
/// `h2o3_mojo`, is served by the native runtime (no Python, no JVM: this test needs no
/// venv) and scores as genmodel does, over HTTP and in batch.
#[test]
fn an_h2o_wrapped_model_processed_as_h2o3_mojo_scores_natively() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "h2o_mojo_wrapped";
    let dir = process_with(
        name,
        tmp.path(),
        mlflow_model::MlflowArgs {
            model_type: mlflow_model::ModelType::H2o3Mojo,
            ..Default::default()
        },
    );
    let manifest = read_json(dir.join("model.json"));
    assert_eq!(manifest["model_type"], "h2o3_mojo");
    let input = testdata().join(format!("{name}.input.csv"));
    let want = testdata().join(format!("{name}.predictions.csv"));
    let (fields, rows) = read_csv(&input);
    let server = Server::start(&dir, &[]);
    let r = server.post(
        "/model/score",
        &json!({ "fields": fields, "rows": rows }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_matches_predictions(
        &want,
        true,
        name,
        "HTTP",
        &strings(&v["fields"]),
        &rows_of(&v["score"]),
    );
    let log = server.stop().1;
    assert!(log.contains("native H2O-3 gbm Binomial"), "{log}");
    let out = tmp.path().join("out.csv");
    let (code, log, _) = batch(&dir, &input, Some(&out), &[]);
    assert_eq!(code, 0, "batch: {log}");
    let (header, rows) = read_csv(&out);
    assert_matches_predictions(&want, true, name, "batch", &header, &rows);
}

// ------------------------------------------------------------------ tensor signatures

/// A tensor model's `<name>.request.json` (a split-orient frame whose columns are the
/// tensor's positions, or MLflow's `{"inputs": ...}`) as rows of the manifest's input
/// columns, in order.
fn tensor_rows(name: &str, m: &Value) -> Vec<Vec<String>> {
    let req = read_json(testdata().join(format!("{name}.request.json")));
    let flat = |row: &Value| -> Vec<String> {
        fn leaves(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
                other => out.push(other.to_string()),
            }
        }
        let mut out = Vec::new();
        leaves(row, &mut out);
        out
    };
    let rows: Vec<Vec<String>> = match (&req["inputs"], &req["data"]) {
        (Value::Array(rows), _) | (Value::Null, Value::Array(rows)) => {
            rows.iter().map(flat).collect()
        }
        (Value::Object(tensors), _) => {
            let order = m["metadata"]["tensor_signature"]["inputs"]
                .as_array()
                .unwrap();
            let n = tensors.values().next().unwrap().as_array().unwrap().len();
            (0..n)
                .map(|r| {
                    order
                        .iter()
                        .flat_map(|t| flat(&tensors[t["tensor"].as_str().unwrap()][r]))
                        .collect()
                })
                .collect()
        }
        other => panic!("{name}: request {other:?}"),
    };
    for r in &rows {
        assert_eq!(
            r.len(),
            m["input_schema"].as_array().unwrap().len(),
            "{name}"
        );
    }
    rows
}

/// A tensor model's reference predictions as one list of values per row, in the order
/// of the output columns (a tensor's row flattened; a dict of tensors by tensor name).
fn tensor_reference(name: &str, m: &Value) -> Vec<Vec<Value>> {
    let p = read_json(testdata().join(format!("{name}.predictions.json")));
    let flat = |row: &Value| -> Vec<Value> {
        fn leaves(v: &Value, out: &mut Vec<Value>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
                other => out.push(other.clone()),
            }
        }
        let mut out = Vec::new();
        leaves(row, &mut out);
        out
    };
    let want: Vec<Vec<Value>> = match &p {
        Value::Array(rows) => rows.iter().map(flat).collect(),
        Value::Object(tensors) => {
            let order = m["metadata"]["tensor_signature"]["outputs"]
                .as_array()
                .unwrap();
            let n = tensors.values().next().unwrap().as_array().unwrap().len();
            (0..n)
                .map(|r| {
                    order
                        .iter()
                        .flat_map(|t| flat(&tensors[t["tensor"].as_str().unwrap()][r]))
                        .collect()
                })
                .collect()
        }
        other => panic!("{name}: predictions {other}"),
    };
    for r in &want {
        assert_eq!(
            r.len(),
            m["output_schema"].as_array().unwrap().len(),
            "{name}"
        );
    }
    want
}

/// Serves one tensor model (and scores it in batch when `batch_too`) and checks the
/// columns, the scores against the reference and a refused cell.
fn serve_tensor_model(
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    batch_too: bool,
    venv: &Path,
    tmp: &Path,
) -> String {
    let dir = process(name, tmp);
    let m = manifest(&dir);
    assert_eq!(m["schema_known"], true, "{name}");
    assert_eq!(names(&m["input_schema"]), inputs, "{name}");
    assert_eq!(names(&m["output_schema"]), outputs, "{name}");
    let rows = tensor_rows(name, &m);
    let want = tensor_reference(name, &m);
    let cmd = serve_command(venv);
    let started = Instant::now();
    let server = start_mlflow(&dir, &[("MLFLOW_SERVE_COMMAND", &cmd)]);
    let ready = started.elapsed();
    let schema = server.get("/model/schema").json();
    assert_eq!(
        schema["schema"]["inputFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        inputs,
        "{name}"
    );
    assert_eq!(
        strings(&server.get("/model/sample_request").json()["fields"]),
        inputs,
        "{name}"
    );
    // The fields in reverse order: the shim puts each back at its tensor position.
    let mut fields: Vec<&str> = inputs.to_vec();
    fields.reverse();
    let reversed: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().rev().cloned().collect())
        .collect();
    let r = server.post(
        "/model/score",
        &json!({"fields": fields, "rows": reversed}).to_string(),
    );
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    let v = r.json();
    assert_eq!(strings(&v["fields"]), outputs, "{name}");
    assert_reference(name, "HTTP", &rows_of(&v["score"]), &want);

    // A cell that is not a number is refused by the shim, naming its column.
    let mut bad = reversed.clone();
    bad[2][0] = "x".into();
    let r = server.post(
        "/model/score",
        &json!({"fields": fields, "rows": bad}).to_string(),
    );
    assert_eq!(r.status, 400, "{name}: {}", r.body);
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert_eq!(
        detail,
        format!(
            "Invalid scoring request due to: row 2 (zero-indexed): column {:?}: \"x\" is not a number",
            fields[0]
        ),
        "{name}"
    );
    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{name}: {log}");
    assert!(
        log.contains("tensor_inputs=true tensor_outputs=true"),
        "{name}: {log}"
    );

    if batch_too {
        // The batch command: the same rows from a CSV (header in tensor order).
        let input = tmp.join(format!("{name}.csv"));
        let mut text = inputs.join(",") + "\n";
        for r in &rows {
            text += &(r.join(",") + "\n");
        }
        std::fs::write(&input, text).unwrap();
        let out = tmp.join(format!("{name}.out.csv"));
        let (code, log, _) = batch(&dir, &input, Some(&out), &["--mlflow-serve-command", &cmd]);
        assert_eq!(code, 0, "{name} batch: {log}");
        let (header, got) = read_csv(&out);
        assert_eq!(header, outputs, "{name} batch");
        assert_reference(name, "batch", &got, &want);
    }
    format!("{name}: shim ready after {:.1} s", ready.as_secs_f64())
}

/// MLflow models whose signature is a 2-D tensor: processed by default into positional
/// columns, served through the real `mlflow models serve` with the rows packed into
/// MLflow's tensor request, and scored as the reference predictions over HTTP and in
/// batch: an ONNX regressor (named input `features` [-1, 3], output `variable` [-1, 2]),
/// a scikit-learn classifier with `predict_fn: predict_proba` (output [-1, 2]), and the
/// two [-1, 4]-input models that needed `--allow-unmapped-types` before.
#[test]
fn tensor_signature_models_score_as_the_reference_predictions() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], bool);
    let cases: &[Case] = &[
        (
            "onnx_tensor",
            &["features_0", "features_1", "features_2"],
            &["variable_0", "variable_1"],
            true,
        ),
        (
            "sklearn_proba",
            &["input_0", "input_1", "input_2"],
            &["output_0", "output_1"],
            true,
        ),
        (
            "tensor_signature",
            &["input_0", "input_1", "input_2", "input_3"],
            &["prediction"],
            false,
        ),
        (
            "onnx",
            &["input_0", "input_1", "input_2", "input_3"],
            &["variable"],
            false,
        ),
    ];
    let started = Instant::now();
    let timings: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, inputs, outputs, batch_too)| {
                let (venv, tmp) = (&venv, tmp.path());
                s.spawn(move || serve_tensor_model(name, inputs, outputs, *batch_too, venv, tmp))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    eprintln!(
        "MLflow tensor models in parallel, {:.1} s in all:\n  {}",
        started.elapsed().as_secs_f64(),
        timings.join("\n  ")
    );
}

/// The row form of MLflow's tensor request (`instances`), chosen by
/// `metadata.tensor_signature.request_format`, scores the same.
#[test]
fn a_tensor_model_scores_the_same_with_instances() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let name = "onnx_tensor";
    let dir = process(name, tmp.path());
    assert_eq!(
        manifest(&dir)["metadata"]["tensor_signature"]["request_format"],
        "inputs"
    );
    edit_manifest(&dir, |v| {
        v["metadata"]["tensor_signature"]["request_format"] = json!("instances")
    });
    let m = manifest(&dir);
    let (rows, want) = (tensor_rows(name, &m), tensor_reference(name, &m));
    let server = start_mlflow(&dir, &[("MLFLOW_SERVE_COMMAND", &serve_command(&venv))]);
    let r = server.post(
        "/model/score",
        &json!({"fields": names(&m["input_schema"]), "rows": rows}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_reference(name, "instances", &rows_of(&r.json()["score"]), &want);
    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{log}");
}

/// The tensor layout is derived again from the payload's MLmodel and must name the
/// manifest's columns; a request format MLflow does not have is refused. Both before the
/// scoring server starts (no venv needed).
#[test]
fn a_manifest_that_disagrees_with_the_tensor_signature_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "renamed input column",
            |v| v["input_schema"][1]["name"] = json!("f1"),
            "the manifest's input columns [\"features_0\", \"f1\", \"features_2\"] are not the columns of the MLmodel's input tensors [\"features_0\", \"features_1\", \"features_2\"]; process the model again",
        ),
        (
            "an output column left out",
            |v| {
                v["output_schema"].as_array_mut().unwrap().pop();
            },
            "the manifest's output columns [\"variable_0\"] are not the columns of the MLmodel's output tensors [\"variable_0\", \"variable_1\"]",
        ),
        (
            "unknown request format",
            |v| v["metadata"]["tensor_signature"]["request_format"] = json!("rows"),
            "metadata.tensor_signature.request_format is \"rows\"; expected \"inputs\" or \"instances\"",
        ),
    ];
    for (i, (label, edit, needle)) in cases.iter().enumerate() {
        let parent = tmp.path().join(i.to_string());
        std::fs::create_dir(&parent).unwrap();
        let dir = process("onnx_tensor", &parent);
        edit_manifest(&dir, edit);
        let (code, log) = run_to_exit(
            &[],
            &[
                ("MODEL_PATH", dir.to_str().unwrap()),
                (
                    "MLFLOW_SERVE_COMMAND",
                    "/nonexistent/mlflow models serve -m {model} -p {port}",
                ),
                ("PORT", "0"),
                ("HOST", "127.0.0.1"),
            ],
        );
        assert_eq!(code, 6, "{label}: {log}");
        assert!(
            log.contains("the mlflow_pyfunc backend could not load model: ")
                && log.contains("MLmodel: ")
                && log.contains(needle),
            "{label}: {needle:?} not in\n{log}"
        );
        assert!(child_pids(&log, NAME).is_empty(), "{label}: {log}");
    }
}

/// A wheel of the made-up distribution `toolkit-req-probe` 1.0 (pure Python), so that an
/// install at start can be shown with no package index (PIP_NO_INDEX, PIP_FIND_LINKS).
fn probe_wheel(dir: &Path) {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("toolkit_req_probe-1.0-py3-none-any.whl");
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let info = "toolkit_req_probe-1.0.dist-info";
    let files = [
        ("toolkit_req_probe/__init__.py".to_string(), "VALUE = 1\n".to_string()),
        (
            format!("{info}/METADATA"),
            "Metadata-Version: 2.1\nName: toolkit-req-probe\nVersion: 1.0\n".to_string(),
        ),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: runtime-shim tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_string(),
        ),
    ];
    let mut record = String::new();
    for (name, text) in &files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
        record.push_str(&format!("{name},,\n"));
    }
    record.push_str(&format!("{info}/RECORD,,\n"));
    w.start_file(
        format!("{info}/RECORD"),
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    w.write_all(record.as_bytes()).unwrap();
    w.finish().unwrap();
}

/// The requirements policy: a model asking for what the runtime's Python does not have
/// is served with a warning naming each unmet line (the default), refused before the
/// server starts with MLFLOW_REQUIRE_REQUIREMENTS_MATCH (exit code 6), and served after
/// pip installs the unmet lines into MLFLOW_INSTALL_DIR with MLFLOW_INSTALL_REQUIREMENTS
/// (here from a local wheel, without an index). Lines whose marker does not apply are
/// not compared.
#[test]
fn unmet_requirements_are_warned_about_refused_or_installed() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let name = "sklearn_pipeline";
    let dir = process(name, tmp.path());
    let add = |lines: &'static [&'static str]| {
        move |v: &mut Value| {
            let r = v["metadata"]["requirements"].as_array_mut().unwrap();
            r.extend(lines.iter().map(|l| json!(l)));
        }
    };
    edit_manifest(
        &dir,
        add(&[
            "toolkit-req-probe==1.0",
            "scikit-learn<1.0",
            "pywin32==306; sys_platform == 'win32'",
        ]),
    );
    let cmd = serve_command(&venv);
    let unmet = "does not satisfy 2 of the model's requirements: toolkit-req-probe==1.0 (not installed), scikit-learn<1.0 (installed: scikit-learn 1.";
    let (code, log) = run_to_exit(
        &[],
        &[
            ("MODEL_PATH", dir.to_str().unwrap()),
            ("MLFLOW_SERVE_COMMAND", &cmd),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
            ("MLFLOW_REQUIRE_REQUIREMENTS_MATCH", "true"),
        ],
    );
    assert_eq!(code, 6, "{log}");
    for needle in [
        unmet,
        "refused because MLFLOW_REQUIRE_REQUIREMENTS_MATCH is set",
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    assert!(
        child_pids(&log, NAME).is_empty(),
        "refused before the server starts: {log}"
    );

    let server = start_mlflow(&dir, &[("MLFLOW_SERVE_COMMAND", &cmd)]);
    let r = server.post("/model/score", &request(name).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, log) = server.stop();
    for needle in [
        unmet,
        "(MLFLOW_REQUIRE_REQUIREMENTS_MATCH=true refuses to start",
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    assert!(
        !log.contains("pywin32"),
        "a marker that does not apply: {log}"
    );

    // Only the probe unmet: installed from the local wheel, first on the server's path.
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let dir = process_with(name, &again, Default::default());
    edit_manifest(&dir, add(&["toolkit-req-probe==1.0"]));
    let wheels = tmp.path().join("wheels");
    probe_wheel(&wheels);
    let install = tmp.path().join("install");
    let server = start_mlflow(
        &dir,
        &[
            ("MLFLOW_SERVE_COMMAND", &cmd),
            ("MLFLOW_INSTALL_REQUIREMENTS", "true"),
            ("MLFLOW_INSTALL_DIR", install.to_str().unwrap()),
            ("PIP_NO_INDEX", "1"),
            ("PIP_FIND_LINKS", wheels.to_str().unwrap()),
        ],
    );
    let r = server.post("/model/score", &request(name).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let (status, log) = server.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        install.join("toolkit_req_probe/__init__.py").is_file(),
        "{log}"
    );
    for needle in [
        "installing the requirements the runtime's Python does not satisfy (MLFLOW_INSTALL_REQUIREMENTS)",
        "installed the model's unmet requirements",
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    assert!(!log.contains("does not satisfy 1 of"), "{log}");
}
