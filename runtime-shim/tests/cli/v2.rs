//! The Open Inference Protocol v2 of the real shim (`/v2/...`).
//!
//! With real clients: tritonclient's HTTP client and the KServe SDK's REST client run by
//! `tests/v2-clients/check_v2.py` in the venv named by `V2_CLIENTS_VENV` (made by
//! `.ci/setup-v2-clients-venv.sh`) score H2O-3 MOJOs of testdata and, when `MLFLOW_VENV`
//! gives ONNX Runtime, ONNX models of `testdata/onnx` processed with `--model-type onnx`,
//! and every output must equal the MLOps API's answer for the same rows; health and
//! metadata as the spec says; a passphrase applies to the model routes. Without
//! `V2_CLIENTS_VENV` those tests say they are skipped; with it set, a broken venv fails
//! them.
//!
//! Without any venv: the health and metadata routes' answers and status codes, the
//! malformed requests (wrong datatype, shape, missing input, BYTES that are not UTF-8,
//! huge shapes, bad binary header lengths, ...) each with its 4xx and an `{"error"}`
//! body while the shim keeps serving, the shared limits and deadlines in the protocol's
//! shape, the endpoint security on `/v2/models/*`, and the metrics of the infer route.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::auth::hash_of;
use super::{process, testdata, Reply, Server};

/// The venv's python, or `None` (skipped) when `V2_CLIENTS_VENV` is unset.
fn python() -> Option<PathBuf> {
    super::venv_python("V2_CLIENTS_VENV", "setup-v2-clients-venv.sh")
}

/// Runs the client checks with `args`; panics with their output (and the shims' logs) on
/// failure.
fn check(py: &Path, args: &[String], servers: &[&Server]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v2-clients/check_v2.py");
    let out = Command::new(py)
        .arg(&script)
        .args(args)
        .output()
        .expect("the venv's python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let logs: Vec<String> = servers.iter().map(|s| s.log()).collect();
    assert!(
        out.status.success() && text.contains("v2 client checks passed"),
        "{args:?}:\n{text}\nshim logs:\n{}",
        logs.join("\n----\n")
    );
    eprintln!("{text}");
}

fn case(server: &Server, name: &str, csv: &Path) -> Vec<String> {
    vec![
        "--case".into(),
        server.base.clone(),
        name.into(),
        csv.to_str().unwrap().into(),
    ]
}

/// tritonclient and KServe's client score H2O-3 MOJOs of several kinds (binomial,
/// multinomial, ordinal, regression, clustering with an INT32 output, an autoencoder, a
/// stacked ensemble, a one-column model) and ONNX models (FP32 tensors; a 2-D tensor is
/// the graph's own input) like the MLOps API, by `MODEL_NAME` or by the model id.
#[test]
fn v2_clients_score_like_the_mlops_api() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mojos = [
        "gbm_binomial",
        "gbm_multinomial",
        "glm_ordinal",
        "drf_regression",
        "kmeans",
        "deeplearning_autoencoder",
        "stacked_ensemble_binomial",
        "isotonic_regression",
    ];
    let mut servers = Vec::new();
    let mut args = Vec::new();
    for (i, m) in mojos.iter().enumerate() {
        let dir = process(m, tmp.path());
        // Every other model by its id (no MODEL_NAME).
        let server = if i % 2 == 0 {
            Server::start(&dir, &[("MODEL_NAME", m)])
        } else {
            Server::start(&dir, &[])
        };
        let name = if i % 2 == 0 {
            m.to_string()
        } else {
            server.get("/model/id").body
        };
        args.extend(case(
            &server,
            &name,
            &testdata().join(format!("{m}.input.csv")),
        ));
        servers.push(server);
    }
    if let Some(lib) = super::onnx::ort_library() {
        for m in ["regressor", "pipeline"] {
            let dir = super::onnx::process(m, tmp.path());
            let server = Server::start(
                &dir,
                &[
                    ("ORT_DYLIB_PATH", lib.to_str().unwrap()),
                    ("MODEL_NAME", &format!("onnx-{m}")),
                ],
            );
            let csv = super::onnx::testdata().join(format!("{m}.input.csv"));
            args.extend(case(&server, &format!("onnx-{m}"), &csv));
            servers.push(server);
        }
    }
    check(&py, &args, &servers.iter().collect::<Vec<_>>());
    for s in servers {
        let (status, log) = s.stop();
        assert!(status.success(), "{log}");
        assert!(log.contains("path=/v2/models/"), "{log}");
    }
}

/// With a hashed passphrase: both clients score with it; without it (or with another)
/// the model routes answer 401 while the health routes answer.
#[test]
fn v2_clients_with_a_passphrase() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let pass = "v2 client passphrase 51ac";
    let server = Server::start(
        &dir,
        &[
            ("SCORING_PASSPHRASE_HASH", &hash_of(pass)),
            ("MODEL_NAME", "gbm"),
        ],
    );
    let mut args = case(&server, "gbm", &testdata().join("gbm_binomial.input.csv"));
    args.extend(["--bearer".into(), pass.into(), "--refused".into()]);
    check(&py, &args, &[&server]);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains(pass), "the passphrase in the log:\n{log}");
}

/// `POST path` with `headers` and a raw `body`.
fn send(server: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = server.agent.post(format!("{}{path}", server.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Server::reply(req.send(body)).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// `POST path` with `headers` and a raw `body`: (status, content type,
/// `Inference-Header-Content-Length`, the body's bytes).
fn send_raw(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Option<usize>, Vec<u8>) {
    let mut req = server.agent.post(format!("{}{path}", server.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req
        .send(body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ct = header("content-type").unwrap_or_default();
    let len = header("inference-header-content-length").map(|v| v.parse().unwrap());
    let bytes = r.body_mut().read_to_vec().unwrap();
    (r.status().as_u16(), ct, len, bytes)
}

/// The JSON of `head` followed by `binary`, with its `Inference-Header-Content-Length`.
fn binary_body(head: &Value, binary: &[u8]) -> (Vec<u8>, String) {
    let mut body = serde_json::to_vec(head).unwrap();
    let n = body.len();
    body.extend_from_slice(binary);
    (body, n.to_string())
}

fn le(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// BYTES elements in the binary extension: a 4-byte length, then the bytes.
fn bytes_elems(v: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in v {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    }
    out
}

fn input(name: &str, dt: &str, shape: Value, data: Value) -> Value {
    json!({"name": name, "datatype": dt, "shape": shape, "data": data})
}

/// A good request of gbm_binomial, two rows, by name.
fn good() -> Value {
    json!({"id": "r1", "inputs": [
        input("x1", "FP64", json!([2]), json!([-0.624, 1.0])),
        input("x2", "FP64", json!([2]), json!([3.409, 1.0])),
        input("x3", "FP64", json!([2, 1]), json!([[2.0], [1.0]])),
        input("color", "BYTES", json!([2]), json!(["blue", null])),
    ]})
}

/// The health, metadata and infer answers as the spec says (status codes, bodies), the
/// same scores as `/model/score`, versions and other names, the metrics of the route.
#[test]
fn v2_routes_answer_as_the_spec_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(&dir, &[("MODEL_NAME", "gbm"), ("MODEL_VERSION", "7")]);
    let get_cases: &[(&str, &str, u16, Value)] = &[
        (
            "server metadata",
            "/v2",
            200,
            json!({"name": "runtime-shim", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"]}),
        ),
        ("live", "/v2/health/live", 200, json!({"live": true})),
        ("ready", "/v2/health/ready", 200, json!({"ready": true})),
        (
            "model ready",
            "/v2/models/gbm/ready",
            200,
            json!({"name": "gbm", "ready": true}),
        ),
        (
            "model ready by version",
            "/v2/models/gbm/versions/7/ready",
            200,
            json!({"name": "gbm", "ready": true}),
        ),
        (
            "metadata",
            "/v2/models/gbm",
            200,
            json!({
            "name": "gbm", "versions": ["7"], "platform": "h2o3_mojo",
            "inputs": [
                {"name": "x1", "datatype": "FP64", "shape": [-1]},
                {"name": "x2", "datatype": "FP64", "shape": [-1]},
                {"name": "x3", "datatype": "FP64", "shape": [-1]},
                {"name": "color", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "predict", "datatype": "BYTES", "shape": [-1]},
                {"name": "no", "datatype": "FP64", "shape": [-1]},
                {"name": "yes", "datatype": "FP64", "shape": [-1]}]}),
        ),
        (
            "another model",
            "/v2/models/other",
            404,
            json!({"error": "no model named \"other\" here; this server serves one model, \"gbm\""}),
        ),
        (
            "another model ready",
            "/v2/models/other/ready",
            404,
            json!({"error": "no model named \"other\" here; this server serves one model, \"gbm\""}),
        ),
        (
            "another version",
            "/v2/models/gbm/versions/1",
            404,
            json!({"error": "model \"gbm\" has no version \"1\"; its one version is \"7\""}),
        ),
        (
            "unknown v2 route",
            "/v2/models",
            404,
            json!({"error": "Not Found"}),
        ),
        (
            "GET infer",
            "/v2/models/gbm/infer",
            405,
            json!({"error": "Method Not Allowed"}),
        ),
    ];
    for (name, path, status, want) in get_cases {
        let r = server.get(path);
        assert_eq!(r.status, *status, "{name}: {}", r.body);
        assert_eq!(r.content_type, "application/json", "{name}");
        assert_eq!(r.json(), *want, "{name}");
    }

    // The same rows through both protocols.
    let mlops = server
        .post(
            "/model/score",
            r#"{"fields":["x1","x2","x3","color"],"rows":[["-0.624","3.409","2.0","blue"],["1","1","1",null]]}"#,
        )
        .json();
    for path in ["/v2/models/gbm/infer", "/v2/models/gbm/versions/7/infer"] {
        let r = server.post(path, &good().to_string());
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v = r.json();
        assert_eq!(v["model_name"], "gbm");
        assert_eq!(v["model_version"], "7");
        assert_eq!(v["id"], "r1");
        let outs = v["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), 3);
        for (j, o) in outs.iter().enumerate() {
            assert_eq!(o["name"], mlops["fields"][j]);
            assert_eq!(o["shape"], json!([2]));
            for r in 0..2 {
                let want = mlops["score"][r][j].as_str().unwrap();
                match o["datatype"].as_str().unwrap() {
                    "BYTES" => assert_eq!(o["data"][r], want),
                    "FP64" => {
                        assert_eq!(o["data"][r].as_f64().unwrap(), want.parse::<f64>().unwrap())
                    }
                    other => panic!("{other}"),
                }
            }
        }
    }
    // Binary inputs and outputs, one output requested in JSON: the same numbers.
    let head = json!({"inputs": [
        {"name": "x1", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}},
        {"name": "x2", "datatype": "FP64", "shape": [2], "data": [3.409, 1.0]},
        {"name": "x3", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}},
        {"name": "color", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 12}}],
        "outputs": [{"name": "yes", "parameters": {"binary_data": true}}, {"name": "predict"}]});
    let mut raw = le(&[-0.624, 1.0]);
    raw.extend(le(&[2.0, 1.0]));
    raw.extend(bytes_elems(&[b"blue", b""]));
    let (body, n) = binary_body(&head, &raw);
    let (status, ct, json_len, bytes) = send_raw(
        &server,
        "/v2/models/gbm/infer",
        &[("inference-header-content-length", &n)],
        &body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, "application/octet-stream");
    let json_len = json_len.expect("Inference-Header-Content-Length");
    let v: Value = serde_json::from_slice(&bytes[..json_len]).unwrap();
    assert_eq!(v["outputs"][0]["name"], "yes");
    assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 16);
    assert_eq!(v["outputs"][1]["data"], json!(["no", "yes"]));
    assert_eq!(bytes.len(), json_len + 16);
    let yes = mlops["score"][0][2]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert_eq!(
        bytes[json_len..json_len + 8],
        yes.to_le_bytes(),
        "row 0 of yes"
    );

    let metrics = server.get("/metrics").body;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "runtime_shim_requests_total{route=\"/v2/models/{name}/infer\",status=\"200\"}",
            )
        })
        .unwrap_or_else(|| panic!("no infer count in\n{metrics}"));
    assert!(line.ends_with(" 2"), "{line}");
    assert!(
        metrics.contains("route=\"/v2/models/{name}/versions/{version}/infer\""),
        "{metrics}"
    );
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

/// Every malformed request gets its 4xx with `{"error": ...}` naming what to fix, and
/// the shim keeps serving (a good request after each scores).
#[test]
fn malformed_v2_requests_get_4xx_and_the_shim_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(&dir, &[("MODEL_NAME", "gbm"), ("MAX_BODY_BYTES", "64K")]);
    let with = |replace: usize, inp: Value| {
        let mut v = good();
        v["inputs"][replace] = inp;
        v
    };
    let x1 = |dt: &str, shape: Value, data: Value| with(0, input("x1", dt, shape, data));
    let json_cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "wrong datatype",
            x1("FP32", json!([2]), json!([1.0, 2.0])),
            400,
            "input \"x1\" has datatype \"FP32\"; the model's input \"x1\" is FP64",
        ),
        (
            "unknown datatype",
            x1("UINT8", json!([2]), json!([1, 2])),
            400,
            "has datatype \"UINT8\"",
        ),
        (
            "string data in FP64",
            x1("FP64", json!([2]), json!(["1", "2"])),
            400,
            "element 0 (\"1\") is not a number",
        ),
        (
            "shape and data disagree",
            x1("FP64", json!([3]), json!([1.0, 2.0, 3.0])),
            400,
            "input \"x2\" has 2 rows but input \"x1\" has 3",
        ),
        (
            "fewer elements than the shape",
            x1("FP64", json!([2]), json!([1.0])),
            400,
            "\"data\" holds 1 elements but the shape says 2",
        ),
        (
            "3-D input",
            x1("FP64", json!([2, 1, 1]), json!([1.0, 2.0])),
            400,
            "has shape [2, 1, 1]",
        ),
        (
            "huge shape",
            x1("FP64", json!([4611686018427387904i64]), json!([1.0])),
            400,
            "\"data\" holds 1 elements but the shape says 4611686018427387904",
        ),
        (
            "negative shape",
            x1("FP64", json!([-2]), json!([1.0, 2.0])),
            400,
            "has shape [-2]",
        ),
        (
            "huge 2-D shape",
            json!({"inputs": [input("t", "BYTES", json!([9223372036854775807i64, 4]), json!([]))]}),
            400,
            "more elements than this machine can address",
        ),
        (
            "huge 2-D rows",
            json!({"inputs": [input("t", "BYTES", json!([4611686018427387903i64, 4]), json!(["1", "2", "3", "red"]))]}),
            400,
            "\"data\" holds 4 elements but the shape says",
        ),
        (
            "2-D of the wrong width",
            json!({"inputs": [input("t", "BYTES", json!([1, 3]), json!([["1", "2", "3"]]))]}),
            400,
            "a 2-D tensor has one column per model input in schema order, 4",
        ),
        (
            "2-D FP64 of mixed inputs",
            json!({"inputs": [input("t", "FP64", json!([1, 4]), json!([1, 2, 3, 4]))]}),
            400,
            "use BYTES",
        ),
        (
            "missing input",
            {
                let mut v = good();
                v["inputs"].as_array_mut().unwrap().remove(3);
                v
            },
            400,
            "missing input(s) [\"color\"]",
        ),
        (
            "unknown input",
            {
                let mut v = good();
                v["inputs"].as_array_mut().unwrap().push(input(
                    "x9",
                    "FP64",
                    json!([2]),
                    json!([1, 2]),
                ));
                v
            },
            400,
            "input \"x9\" is not one of the model's inputs",
        ),
        (
            "duplicate input",
            with(3, input("x1", "FP64", json!([2]), json!([1.0, 2.0]))),
            400,
            "input \"x1\" is given more than once",
        ),
        (
            "no data",
            x1("FP64", json!([2]), Value::Null),
            400,
            "has no \"data\"",
        ),
        (
            "no inputs",
            json!({"inputs": []}),
            400,
            "the request has no inputs",
        ),
        (
            "zero rows",
            json!({"inputs": [input("t", "BYTES", json!([0, 4]), json!([]))]}),
            400,
            "no rows",
        ),
        (
            "no inputs member",
            json!({"outputs": []}),
            400,
            "the request is not an inference request: missing field `inputs`",
        ),
        (
            "unknown output",
            {
                let mut v = good();
                v["outputs"] = json!([{"name": "maybe"}]);
                v
            },
            400,
            "requested output \"maybe\" is not one of the model's outputs",
        ),
        (
            "classification",
            {
                let mut v = good();
                v["outputs"] = json!([{"name": "yes", "parameters": {"classification": 2}}]);
                v
            },
            400,
            "classification extension is not supported",
        ),
        (
            "binary_data not a boolean",
            {
                let mut v = good();
                v["parameters"] = json!({"binary_data_output": "yes"});
                v
            },
            400,
            "parameter \"binary_data_output\" must be true or false",
        ),
        (
            "shared memory",
            {
                let mut v = good();
                v["inputs"][0]["parameters"] = json!({"shared_memory_region": "r"});
                v
            },
            400,
            "shared-memory extension",
        ),
        (
            "a sequence",
            {
                let mut v = good();
                v["parameters"] = json!({"sequence_id": 3});
                v
            },
            400,
            "serves no sequences",
        ),
        (
            "a cell the backend cannot read",
            json!({"inputs": [input("t", "BYTES", json!([1, 4]), json!(["1", "two", "3", "red"]))]}),
            400,
            "column \"x2\": \"two\" is not a number",
        ),
    ];
    let check_ok = |after: &str| {
        let ok = server.post("/v2/models/gbm/infer", &good().to_string());
        assert_eq!(
            ok.status, 200,
            "after {after}, the shim still scores: {}",
            ok.body
        );
    };
    let assert_error = |name: &str, r: &Reply, status: u16, needle: &str| {
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert_eq!(r.content_type, "application/json", "{name}");
        let v = r.json();
        let e = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error: {v}"));
        assert!(e.contains(needle), "{name}: {e:?} lacks {needle:?}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{name}: only error: {v}");
    };
    for (name, body, status, needle) in &json_cases {
        let r = server.post("/v2/models/gbm/infer", &body.to_string());
        assert_error(name, &r, *status, needle);
        check_ok(name);
    }

    // Raw bodies, binary data and headers.
    let fp64_head = |size: i64| {
        json!({"inputs": [
            {"name": "x1", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": size}},
            input("x2", "FP64", json!([1]), json!([1.0])),
            input("x3", "FP64", json!([1]), json!([1.0])),
            {"name": "color", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}}]})
    };
    let with_bytes = |x1: &[u8], color: &[u8]| {
        let mut raw = x1.to_vec();
        raw.extend_from_slice(color);
        raw
    };
    let not_utf8 = bytes_elems(&[b"\xffb"]);
    let blue = bytes_elems(&[b"bl"]);
    let (b_not_utf8, n_not_utf8) = binary_body(&fp64_head(8), &with_bytes(&le(&[1.0]), &not_utf8));
    let (b_ok, n_ok) = binary_body(&fp64_head(8), &with_bytes(&le(&[1.0]), &blue));
    let (b_short, n_short) = binary_body(&fp64_head(8), &le(&[1.0]));
    let (b_size, n_size) = binary_body(&fp64_head(4), &with_bytes(&[0; 4], &blue));
    let (b_extra, n_extra) = binary_body(&fp64_head(8), &with_bytes(&le(&[1.0, 2.0]), &blue));
    let (b_huge, n_huge) = binary_body(&fp64_head(i64::MAX), &with_bytes(&le(&[1.0]), &blue));
    let over = n_ok.parse::<usize>().unwrap() + 1000;
    let gzip = good().to_string();
    let big = json!({"inputs": [input("t", "BYTES", json!([3000, 4]), json!(vec![json!(["1.0", "2.0", "3.0", "blue"]); 3000]))]}).to_string();
    /// (name, headers, body, status, what the error says)
    type RawCase<'a> = (&'a str, Vec<(&'a str, String)>, &'a [u8], u16, &'a str);
    let raw_cases: Vec<RawCase> = vec![
        (
            "binary BYTES not UTF-8",
            vec![("inference-header-content-length", n_not_utf8)],
            &b_not_utf8,
            400,
            "element 0 is not UTF-8 text",
        ),
        (
            "header length past the body",
            vec![("inference-header-content-length", over.to_string())],
            &b_ok,
            400,
            "Inference-Header-Content-Length is",
        ),
        (
            "header length not a number",
            vec![("inference-header-content-length", "12x".into())],
            &b_ok,
            400,
            "Inference-Header-Content-Length must be a byte count",
        ),
        (
            "header length negative",
            vec![("inference-header-content-length", "-5".into())],
            &b_ok,
            400,
            "Inference-Header-Content-Length must be a byte count",
        ),
        (
            "header length cutting the JSON",
            vec![("inference-header-content-length", "10".into())],
            &b_ok,
            400,
            "the request is not valid JSON",
        ),
        (
            "no header length with binary",
            vec![],
            &b_ok,
            400,
            "the request is not valid JSON",
        ),
        (
            "binary shorter than its sizes",
            vec![("inference-header-content-length", n_short)],
            &b_short,
            400,
            "binary_data_size is 6 but only 0 bytes",
        ),
        (
            "binary_data_size not the shape's",
            vec![("inference-header-content-length", n_size)],
            &b_size,
            400,
            "binary_data_size is 4 bytes but 1 FP64 elements take 8",
        ),
        (
            "bytes no input claims",
            vec![("inference-header-content-length", n_extra)],
            &b_extra,
            400,
            "no input's binary_data_size claims",
        ),
        (
            "huge binary_data_size",
            vec![("inference-header-content-length", n_huge)],
            &b_huge,
            400,
            "binary_data_size is 9223372036854775807 but only",
        ),
        (
            "compressed body",
            vec![("content-encoding", "gzip".into())],
            gzip.as_bytes(),
            415,
            "Content-Encoding \"gzip\" is not supported",
        ),
        (
            "body over MAX_BODY_BYTES",
            vec![],
            big.as_bytes(),
            413,
            "larger than the limit (MAX_BODY_BYTES)",
        ),
        (
            "not JSON",
            vec![],
            b"{\"inputs\": [",
            400,
            "the request is not valid JSON",
        ),
        (
            "another model",
            vec![],
            gzip.as_bytes(),
            404,
            "no model named",
        ),
    ];
    for (name, headers, body, status, needle) in &raw_cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = if *name == "another model" {
            "/v2/models/other/infer"
        } else {
            "/v2/models/gbm/infer"
        };
        let r = send(&server, path, &h, body);
        assert_error(name, &r, *status, needle);
        check_ok(name);
    }
    // The good binary request itself scores.
    let r = send(
        &server,
        "/v2/models/gbm/infer",
        &[("inference-header-content-length", &n_ok)],
        &b_ok,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// The shared deadline answers a slow v2 request 503 in the protocol's shape.
#[test]
fn a_v2_request_over_the_timeout_gets_503() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let server = Server::start(
        &dir,
        &[("REQUEST_TIMEOUT_SECS", "0.15"), ("MODEL_NAME", "gbm")],
    );
    let n = 100_000;
    let req = json!({"inputs": [input("t", "BYTES", json!([n, 4]), json!(vec![json!(["1.5", "2.0", "3.0", "blue"]); n]))]});
    let r = server.post("/v2/models/gbm/infer", &req.to_string());
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("the request took longer than 0.15 s"),
        "{}",
        r.body
    );
    assert_eq!(server.get("/v2/health/live").status, 200);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

/// With a passphrase, `/v2/models/*` needs it (401 `{"error"}` with `WWW-Authenticate`
/// before the body is read), `/v2` and the health routes do not.
#[test]
fn the_endpoint_security_covers_v2_models() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let pass = "v2-passphrase-77d0";
    let server = Server::start(&dir, &[("SCORING_PASSPHRASE", pass), ("MODEL_NAME", "gbm")]);
    let body = good().to_string();
    /// (name, path, body to POST (else GET), credential, status)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, u16);
    let cases: &[Case] = &[
        (
            "infer, no credential",
            "/v2/models/gbm/infer",
            Some(&body),
            None,
            401,
        ),
        (
            "infer, wrong credential",
            "/v2/models/gbm/infer",
            Some(&body),
            Some("nope"),
            401,
        ),
        (
            "infer of another model, no credential",
            "/v2/models/x/infer",
            Some(&body),
            None,
            401,
        ),
        (
            "infer by version, no credential",
            "/v2/models/gbm/versions/1/infer",
            Some(&body),
            None,
            401,
        ),
        ("metadata, no credential", "/v2/models/gbm", None, None, 401),
        (
            "model ready, no credential",
            "/v2/models/gbm/ready",
            None,
            None,
            401,
        ),
        (
            "infer",
            "/v2/models/gbm/infer",
            Some(&body),
            Some(pass),
            200,
        ),
        ("metadata", "/v2/models/gbm", None, Some(pass), 200),
        ("server metadata, open", "/v2", None, None, 200),
        ("live, open", "/v2/health/live", None, None, 200),
        ("ready, open", "/v2/health/ready", None, None, 200),
    ];
    for (name, path, body, cred, status) in cases {
        let method = if body.is_some() { "POST" } else { "GET" };
        let r = server.call(method, path, *body, *cred);
        assert_eq!(r.status, *status, "{name}: {}", r.body);
        if *status == 401 {
            assert_eq!(
                r.json(),
                json!({"error": runtime_shim::auth::REFUSED}),
                "{name}"
            );
            assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{name}");
        }
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains(pass), "{log}");
}

/// The rows of the MLOps `request` (`{"fields", "rows"}`, cells as text or JSON scalars)
/// scored through `/v2/models/{id}/infer` as one 2-D BYTES tensor of the model's inputs
/// in schema order, must give exactly `/model/score`'s answer for them: the same outputs
/// in the same order, labels as the same text, numbers parsing to the same FP64 or FP32
/// value. The proxy backends' tests call it (a backend sees the same rows either way).
pub(super) fn assert_v2_scores_like_mlops(server: &Server, request: &Value, how: &str) {
    let id = server.get("/model/id").body;
    let meta = server.get(&format!("/v2/models/{id}")).json();
    let fields: Vec<&str> = request["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let inputs: Vec<&str> = meta["inputs"]
        .as_array()
        .unwrap_or_else(|| panic!("{how}: metadata {meta}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let rows = request["rows"].as_array().unwrap();
    let grid: Vec<Value> = rows
        .iter()
        .map(|row| {
            let cells: Vec<Value> = inputs
                .iter()
                .map(|name| {
                    let p = fields.iter().position(|f| f == name).unwrap();
                    match &row[p] {
                        Value::Null => Value::Null,
                        Value::String(s) => json!(s),
                        other => json!(other.to_string()),
                    }
                })
                .collect();
            json!(cells)
        })
        .collect();
    let body = json!({"inputs": [{"name": "rows", "datatype": "BYTES",
        "shape": [rows.len(), inputs.len()], "data": grid}]});
    let v2 = server.post(&format!("/v2/models/{id}/infer"), &body.to_string());
    assert_eq!(v2.status, 200, "{how}: {}", v2.body);
    let v2 = v2.json();
    let mlops = server.post("/model/score", &request.to_string());
    assert_eq!(mlops.status, 200, "{how}: {}", mlops.body);
    let mlops = mlops.json();
    let outs = v2["outputs"].as_array().unwrap();
    assert_eq!(
        outs.iter().map(|o| o["name"].clone()).collect::<Vec<_>>(),
        mlops["fields"].as_array().unwrap().clone(),
        "{how}: output names"
    );
    for (j, o) in outs.iter().enumerate() {
        assert_eq!(o["shape"], json!([rows.len()]), "{how}");
        for (r, row) in mlops["score"].as_array().unwrap().iter().enumerate() {
            let want = row[j].as_str().unwrap();
            let got = &o["data"][r];
            let at = format!("{how}: row {r} output {}", o["name"]);
            match o["datatype"].as_str().unwrap() {
                "BYTES" => assert_eq!(got.as_str(), Some(want), "{at}"),
                "FP64" => match want.parse::<f64>().unwrap() {
                    w if w.is_nan() => assert!(got.is_null(), "{at}: {got}"),
                    w => assert_eq!(got.as_f64(), Some(w), "{at}"),
                },
                "FP32" => match want.parse::<f32>().unwrap() {
                    w if w.is_nan() => assert!(got.is_null(), "{at}: {got}"),
                    w => assert_eq!(got.as_f64().map(|g| g as f32), Some(w), "{at}"),
                },
                _ => assert_eq!(got.to_string(), want.to_lowercase(), "{at}"),
            }
        }
    }
}
