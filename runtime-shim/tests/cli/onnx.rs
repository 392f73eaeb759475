//! The `onnx` backend end to end: the ONNX models of `testdata/onnx` (an skl2onnx
//! regressor, a classifier with ZipMap, a pipeline with a scaler and a one-hot encoder
//! over string inputs, a network written with onnx.helper), processed here with the
//! mlflow processor library (`--model-type onnx`), served and batch-scored by the real
//! shim on ONNX Runtime, must give onnxruntime's own Python outputs saved beside them bit
//! for bit (each float cell parses to the same float32 or float64): `<name>.expected.csv`
//! for all rows at once (a request of all rows, the batch command), and
//! `<name>.expected_one_by_one.csv` for requests of one row (ONNX Runtime's kernels may
//! round differently for another batch size, and the shim runs a request as one batch).
//!
//! ONNX Runtime's library comes from the onnxruntime wheel of the venv that
//! `MLFLOW_VENV` names (`.ci/setup-mlflow-venv.sh` builds it): without the variable the
//! tests that score say they are skipped; with a venv that lacks the library they fail.
//! The refusals that need no library (a missing or wrong library, a runtime that does not
//! serve `onnx`) always run.

use std::path::{Path, PathBuf};

use artifact_core::{Context, ReadOptions};
use serde_json::{json, Value};

use super::{batch, edit_manifest, read_csv, rows_of, run_to_exit, strings, Server};

const MODELS: &[&str] = &["regressor", "classifier_zipmap", "pipeline", "mlp"];

pub(super) fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/onnx")
}

/// `libonnxruntime.so.*` of the onnxruntime wheel in the venv of `MLFLOW_VENV`; `None`
/// (and a "skipped" line) when the variable is not set.
pub(super) fn ort_library() -> Option<PathBuf> {
    let venv = super::mlflow::venv()?;
    let found = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_dir(e.path().join("site-packages/onnxruntime/capi")).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so.1"))
        });
    Some(found.unwrap_or_else(|| {
        panic!(
            "MLFLOW_VENV={} has no lib/python*/site-packages/onnxruntime/capi/libonnxruntime.so.1.*",
            venv.display()
        )
    }))
}

/// Processes `testdata/onnx/<name>` as the `onnx` model type into `parent/<name>`.
pub(super) fn process(name: &str, parent: &Path) -> PathBuf {
    let target = parent.join(name);
    let ctx = Context {
        read: ReadOptions::default(),
        args: mlflow_model::MlflowArgs {
            model_type: mlflow_model::ModelType::Onnx,
            ..mlflow_model::MlflowArgs::default()
        },
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

/// The manifest's output column types, in order.
fn output_types(dir: &Path) -> Vec<String> {
    let m: Value = serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    m["output_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}

/// Every cell is onnxruntime's: a Float32 cell parses to the same float32 bits, a
/// Float64 cell to the same float64 bits (NaN to NaN), anything else is the same text.
fn assert_bit_identical(
    name: &str,
    reference: &str,
    how: &str,
    types: &[String],
    header: &[String],
    rows: &[Vec<String>],
) {
    let (want_header, want_rows) = read_csv(&testdata().join(format!("{name}.{reference}.csv")));
    assert_eq!(header, want_header, "{name} ({how}): output columns");
    assert_eq!(rows.len(), want_rows.len(), "{name} ({how}): rows");
    let mut floats = 0;
    for (r, (got, want)) in rows.iter().zip(&want_rows).enumerate() {
        assert_eq!(got.len(), want.len(), "{name} ({how}) row {r}: width");
        for (c, ((g, w), ty)) in got.iter().zip(want).zip(types).enumerate() {
            let at = format!("{name} ({how}) row {r} column {:?}", header[c]);
            match ty.as_str() {
                "Float32" | "Float64" => {
                    // Both parse to the output's own width: the same bits, or both NaN.
                    let bits = |s: &str| -> Option<(u64, bool)> {
                        if ty == "Float32" {
                            s.parse::<f32>()
                                .ok()
                                .map(|v| (u64::from(v.to_bits()), v.is_nan()))
                        } else {
                            s.parse::<f64>().ok().map(|v| (v.to_bits(), v.is_nan()))
                        }
                    };
                    let (gb, wb) = (bits(g), bits(w).expect("a reference number"));
                    let gb = gb.unwrap_or_else(|| panic!("{at}: {g:?} is not a number"));
                    assert!(gb == wb || (gb.1 && wb.1), "{at}: got {g}, onnxruntime {w}");
                    floats += 1;
                }
                _ => assert_eq!(g, w, "{at}"),
            }
        }
    }
    assert!(
        floats >= rows.len(),
        "{name}: {floats} float cells compared"
    );
}

#[test]
fn onnx_models_score_as_onnxruntime_over_rest_and_in_batch() {
    let Some(lib) = ort_library() else { return };
    let lib = lib.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (i, name) in MODELS.iter().enumerate() {
        let dir = process(name, tmp.path());
        let types = output_types(&dir);
        let (fields, rows) = read_csv(&testdata().join(format!("{name}.input.csv")));
        // Sessions and threads vary by model; the scores may not.
        let sessions = ["1", "2", "1", "3"][i];
        let threads = ["0", "1", "2", "1"][i];
        let server = Server::start(
            &dir,
            &[
                ("ORT_DYLIB_PATH", lib),
                ("ONNX_SESSIONS", sessions),
                ("ONNX_INTRA_OP_THREADS", threads),
            ],
        );
        let schema = server.get("/model/schema").json();
        let inputs: Vec<String> = schema["schema"]["inputFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(inputs, fields, "{name}: /model/schema inputs");
        assert_eq!(server.get("/model/capabilities").json(), json!(["SCORE"]));
        // Fields in reverse order, and an extra one: the shim maps them by name.
        let mut rev_fields = fields.clone();
        rev_fields.reverse();
        rev_fields.push("ignored".into());
        let rev_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.reverse();
                r.push("x".into());
                r
            })
            .collect();
        let r = server.post(
            "/model/score",
            &json!({"fields": rev_fields, "rows": rev_rows}).to_string(),
        );
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let v = r.json();
        assert_bit_identical(
            name,
            "expected",
            "REST",
            &types,
            &strings(&v["fields"]),
            &rows_of(&v["score"]),
        );
        // One row per request, as small requests come: onnxruntime's outputs for each
        // row run alone (its kernels may round differently for another batch size).
        let mut alone = Vec::new();
        for row in &rows {
            let r = server.post(
                "/model/score",
                &json!({"fields": fields, "rows": [row]}).to_string(),
            );
            assert_eq!(r.status, 200, "{name}: {}", r.body);
            alone.extend(rows_of(&r.json()["score"]));
        }
        let header = strings(&v["fields"]);
        assert_bit_identical(
            name,
            "expected_one_by_one",
            "REST, one row each",
            &types,
            &header,
            &alone,
        );
        let (status, log) = server.stop();
        assert!(status.success(), "{name}: {log}");
        assert!(log.contains("ONNX Runtime loaded"), "{name}: {log}");

        let out = tmp.path().join(format!("{name}.out.csv"));
        let (code, log, _) = batch(
            &dir,
            &testdata().join(format!("{name}.input.csv")),
            Some(&out),
            &["--onnx-runtime-lib", lib, "--onnx-sessions", sessions],
        );
        assert_eq!(code, 0, "{name} batch: {log}");
        let (header, got) = read_csv(&out);
        assert_bit_identical(name, "expected", "batch", &types, &header, &got);
    }
}

#[test]
fn onnx_requests_with_bad_cells_get_400_naming_row_and_column() {
    let Some(lib) = ort_library() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mlp = process("mlp", tmp.path());
    let pipeline = process("pipeline", tmp.path());
    let env = [("ORT_DYLIB_PATH", lib.to_str().unwrap())];
    let mlp_server = Server::start(&mlp, &env);
    let cases: &[(&str, Value, &str)] = &[
        (
            "not a number",
            json!({"fields": ["x_0", "x_1", "x_2", "k"], "rows": [["1", "2", "3", "0"], ["1", "two", "3", "0"]]}),
            "Invalid scoring request due to: row 1 (zero-indexed): column \"x_1\": \"two\" is not a number",
        ),
        (
            "missing int64",
            json!({"fields": ["x_0", "x_1", "x_2", "k"], "rows": [["1", "2", "3", null]]}),
            "row 0 (zero-indexed): column \"k\": a missing value, which an int64 input cannot hold",
        ),
        (
            "fraction in int64",
            json!({"fields": ["x_0", "x_1", "x_2", "k"], "rows": [["1", "2", "3", "1.5"]]}),
            "column \"k\": \"1.5\" is not an integer",
        ),
        (
            "a missing input column",
            json!({"fields": ["x_0", "x_1", "k"], "rows": [["1", "2", "3"]]}),
            "Input fields don't contain all the Mojo fields, expected [x_0, x_1, x_2, k]",
        ),
    ];
    for (label, body, detail) in cases {
        let r = mlp_server.post("/model/score", &body.to_string());
        assert_eq!(r.status, 400, "{label}: {}", r.body);
        assert!(
            r.json()["detail"].as_str().unwrap().contains(detail),
            "{label}: {}",
            r.body
        );
    }
    // A missing float is NaN, an integer-valued float text is an int64, and the server
    // still serves.
    let r = mlp_server.post(
        "/model/score",
        &json!({"fields": ["x_0", "x_1", "x_2", "k"], "rows": [["", "2", "3", "2.0"]], "includeFieldsInOutput": ["k"]}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        strings(&r.json()["fields"]),
        ["k", "scores_0", "scores_1", "total"]
    );
    assert_eq!(
        rows_of(&r.json()["score"])[0][..2],
        ["2.0".to_string(), "NaN".to_string()]
    );
    mlp_server.stop();

    // A string input takes any text; a missing one is "" (an unseen category here).
    let server = Server::start(&pipeline, &env);
    let r = server.post(
        "/model/score",
        &json!({"fields": ["age", "income", "city", "plan"], "rows": [["40", "50000", null, "pro"], ["40", "50000", "", "pro"]]}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = rows_of(&r.json()["score"]);
    assert_eq!(
        rows[0], rows[1],
        "null and \"\" are the same missing string"
    );
    server.stop();
}

#[test]
fn onnx_start_up_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("regressor", tmp.path());
    let model = dir.to_str().unwrap();
    let not_a_library = tmp.path().join("libonnxruntime.so.1.99.0");
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    // A library that answers ONNX Runtime's version call with 1.16.3, older than the API
    // version the shim needs (17): compiled here with the C compiler Rust builds use.
    let source = tmp.path().join("old.c");
    std::fs::write(
        &source,
        "typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;\n\
         static const void *get_api(unsigned v) { (void)v; return 0; }\n\
         static const char *version(void) { return \"1.16.3\"; }\n\
         static const OrtApiBase base = { get_api, version };\n\
         const OrtApiBase *OrtGetApiBase(void) { return &base; }\n",
    )
    .unwrap();
    let old_library = tmp.path().join("libonnxruntime.so.1.16.3");
    let cc = std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-o"])
        .arg(&old_library)
        .arg(&source)
        .status()
        .expect("a C compiler (cc, or CC) to build the stand-in of an old ONNX Runtime");
    assert!(cc.success(), "cc failed on {}", source.display());
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, i32, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "no such library",
            vec![("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.32.0".into())],
            2,
            vec![
                "the onnx backend cannot start: ONNX Runtime library /nonexistent/libonnxruntime.so.1.32.0 (ORT_DYLIB_PATH) does not exist",
                "libonnxruntime.so.1.32.0 of the onnxruntime wheel",
            ],
        ),
        (
            "not a library",
            vec![("ORT_DYLIB_PATH", not_a_library.to_str().unwrap().into())],
            2,
            vec!["cannot load ONNX Runtime from", "libonnxruntime.so.1.99.0 (ORT_DYLIB_PATH)"],
        ),
        (
            "a library older than 1.17",
            vec![("ORT_DYLIB_PATH", old_library.to_str().unwrap().into())],
            2,
            vec![
                "is not compatible with the ONNX Runtime binary found at",
                "expected version >= '1.17.x', but got '1.16.3'",
                "version 1.17 or later",
            ],
        ),
        (
            "a runtime that serves other types",
            vec![("MODEL_TYPES", "h2o3_mojo".into())],
            5,
            vec![
                "model type \"onnx\" is not served by this runtime (it serves: h2o3_mojo)",
                "onnx-native-runtime image",
            ],
        ),
    ];
    for (label, mut env, code, needles) in cases {
        env.push(("MODEL_PATH", model.into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, log) = run_to_exit(&[], &env);
        assert_eq!(got, code, "{label}: {log}");
        for n in needles {
            assert!(log.contains(n), "{label}: {n:?} not in {log}");
        }
    }

    // With the library: a manifest that does not match the graph stops the load.
    let Some(lib) = ort_library() else { return };
    edit_manifest(&dir, |m| {
        m["output_schema"][0]["name"] = json!("prediction");
    });
    let (got, log) = run_to_exit(
        &[],
        &[
            ("MODEL_PATH", model),
            ("ORT_DYLIB_PATH", lib.to_str().unwrap()),
        ],
    );
    assert_eq!(got, 6, "{log}");
    assert!(
        log.contains("the graph's outputs map to columns [variable Float32], but the manifest's schema lists [prediction Float32]"),
        "{log}"
    );
}
