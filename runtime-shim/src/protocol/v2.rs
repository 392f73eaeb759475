//! The Open Inference Protocol v2 (KServe's "V2" / Triton's HTTP/REST API) beside the
//! MLOps API, through the same backend: what a KServe `InferenceService` with
//! `protocolVersion: v2`, `tritonclient.http` or KServe's `InferenceRESTClient` calls.
//!
//! The model is one model named `MODEL_NAME` (default: the model id) with one version,
//! `MODEL_VERSION` (default `1`). Its tensors are its MLOps columns: one 1-D input tensor
//! per input column (its name and datatype), one 1-D output tensor per output column. A
//! request sends either every input column by name (shape `[n]` or `[n, 1]`, the
//! column's datatype, in any order) or one 2-D tensor `[n, k]` of every column in schema
//! order (any name; the datatype every column shares, or BYTES: the MLOps API's text
//! cells). The rows go through the very checks and backend call of `POST /model/score`
//! ([`crate::api::RequestRules`]), so both protocols answer a row alike.
//!
//! Triton's binary tensor data extension is supported both ways (tritonclient uses it by
//! default): `Inference-Header-Content-Length` splits the body into the JSON and the
//! inputs' bytes (`binary_data_size` each, in input order); outputs come back binary when
//! asked (`binary_data` per output, else `binary_data_output` for all).
//!
//! Errors are `{"error": "..."}` ([`error_shape`] rewrites every error of a `/v2` path,
//! including those of the shared layers: endpoint security, body limits, deadlines):
//! 400 for a request the model cannot take, 404 for another model or version, 413 over
//! `MAX_BODY_BYTES`, 415 for a compressed body, 503 before the model is loaded or past
//! the deadline. `/v2`, `/v2/health/live` and `/v2/health/ready` are open (probes);
//! `/v2/models/...` sits in the protected route group of `server.rs`.

mod tensors;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::{json_bytes, json_response, ApiError, Cell, ErrorDetail, ScoreRequest};
use crate::metrics::RowsScored;
use crate::model::LoadedModel;
use crate::server::AppState;

pub use tensors::Datatype;
use tensors::{cells_from_binary, cells_from_json, element_count, OutData};

/// The header of the binary tensor data extension: the length of the JSON part.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The extensions this server reports at `GET /v2`.
pub const EXTENSIONS: &[&str] = &["binary_tensor_data"];

type St = State<Arc<AppState>>;

/// The model as the protocol sees it, derived once when it is loaded.
#[derive(Debug)]
pub struct V2Model {
    pub name: String,
    pub version: String,
    inputs: Vec<(String, Datatype)>,
    index: HashMap<String, usize>,
    /// The datatype every input shares (a 2-D tensor may have it), if they share one.
    common: Option<Datatype>,
    /// The backend's outputs, in its order.
    outputs: Vec<(String, Datatype)>,
    metadata_json: Bytes,
}

/// `$metadata_tensor`.
#[derive(Debug, Serialize)]
struct TensorMeta<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: [i64; 1],
}

impl V2Model {
    /// The protocol's view of `model`: named `name` (else the model id), of version
    /// `version`. Output types come from the manifest's output schema (an output the
    /// schema does not list is text: BYTES).
    pub fn new(model: &LoadedModel, name: Option<&str>, version: &str) -> V2Model {
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or(&model.id)
            .to_string();
        let inputs: Vec<(String, Datatype)> = model
            .manifest
            .input_schema
            .iter()
            .map(|c| (c.name.clone(), Datatype::of(c.ty)))
            .collect();
        let index = inputs
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        let common = inputs
            .first()
            .map(|(_, d)| *d)
            .filter(|d| inputs.iter().all(|(_, e)| e == d));
        let outputs: Vec<(String, Datatype)> = model
            .backend
            .output_names()
            .iter()
            .map(|n| {
                let dt = model
                    .manifest
                    .output_schema
                    .iter()
                    .find(|c| &c.name == n)
                    .map_or(Datatype::Bytes, |c| Datatype::of(c.ty));
                (n.clone(), dt)
            })
            .collect();
        let platform = match model.manifest.model_type.as_str() {
            "onnx" => "onnx_onnxv1",
            other => other,
        };
        fn meta(cols: &[(String, Datatype)]) -> Vec<TensorMeta<'_>> {
            cols.iter()
                .map(|(n, d)| TensorMeta {
                    name: n,
                    datatype: d.as_str(),
                    shape: [-1],
                })
                .collect()
        }
        let metadata = serde_json::json!({
            "name": name,
            "versions": [version],
            "platform": platform,
            "inputs": meta(&inputs),
            "outputs": meta(&outputs),
        });
        V2Model {
            metadata_json: Bytes::from(
                serde_json::to_vec(&metadata).expect("JSON values serialize"),
            ),
            name,
            version: version.to_string(),
            inputs,
            index,
            common,
            outputs,
        }
    }

    /// Checks the path's model name and version.
    fn check_path(&self, p: &HashMap<String, String>) -> Result<(), ApiError> {
        let name = p.get("name").map_or("", String::as_str);
        if name != self.name {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no model named {name:?} here; this server serves one model, {:?}",
                    self.name
                ),
            ));
        }
        if let Some(v) = p.get("version") {
            if *v != self.version {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "model {:?} has no version {v:?}; its one version is {:?}",
                        self.name, self.version
                    ),
                ));
            }
        }
        Ok(())
    }

    fn input_names(&self) -> String {
        let names: Vec<&str> = self.inputs.iter().map(|(n, _)| n.as_str()).collect();
        format!("{names:?}")
    }
}

/// The routes behind the endpoint security (the protected group of `server.rs`).
pub fn protected_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer))
}

/// The open routes: server metadata and the health probes.
pub fn open_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
}

fn is_v2(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// The layer that gives every error answered on a `/v2` path the protocol's shape,
/// `{"error": "<message>"}`, whichever layer answered it (same status and headers).
pub async fn error_shape(req: Request, next: Next) -> Response {
    let v2 = is_v2(req.uri().path());
    let resp = next.run(req).await;
    if !v2 {
        return resp;
    }
    let Some(ErrorDetail(detail)) = resp.extensions().get::<ErrorDetail>().cloned() else {
        return resp;
    };
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
    }
    let (mut parts, _) = resp.into_parts();
    let body = serde_json::to_vec(&Error { error: &detail }).expect("JSON values serialize");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// `GET /v2`: the server metadata.
async fn server_metadata() -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "name": "runtime-shim",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": EXTENSIONS,
        }),
    )
}

/// `GET /v2/health/live`: the process answers (as `/healthz`).
async fn live() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({ "live": true }))
}

/// Whether the model is loaded and its backend can score.
async fn model_is_ready(st: &AppState) -> bool {
    match st.loaded() {
        Some(m) => m.backend.ready().await,
        None => false,
    }
}

/// `GET /v2/health/ready`: 200 once the model is loaded and its backend can score, else
/// 503 (as KServe's server; any non-200 is "not ready" to probes and clients).
async fn ready(State(st): St) -> Response {
    let ready = model_is_ready(&st).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &serde_json::json!({ "ready": ready }))
}

/// `GET /v2/models/{name}[/versions/{v}]`: the model metadata.
async fn model_metadata(
    State(st): St,
    Path(p): Path<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (_, v2) = st.v2()?;
    v2.check_path(&p)?;
    Ok(json_bytes(StatusCode::OK, v2.metadata_json.clone()))
}

/// `GET /v2/models/{name}[/versions/{v}]/ready`: 200 when ready, 503 when its backend
/// cannot score now, 404 for another model.
async fn model_ready(
    State(st): St,
    Path(p): Path<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (m, v2) = st.v2()?;
    v2.check_path(&p)?;
    let ready = m.backend.ready().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(
        status,
        &serde_json::json!({ "name": v2.name, "ready": ready }),
    ))
}

/// `$inference_request`. Members the shim does not use (`model_name`, which KServe's
/// client sends) are ignored.
#[derive(Debug, Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Option<Vec<RequestOutput>>,
}

#[derive(Debug, Deserialize)]
struct RequestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RequestOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// `$inference_response`.
#[derive(Debug, Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<ResponseOutput<'a>>,
}

#[derive(Debug, Serialize)]
struct ResponseOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: [usize; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a OutData>,
}

#[derive(Debug, Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

/// A boolean parameter (`None` when absent); anything but a JSON boolean is a 400.
fn bool_param(
    params: Option<&Map<String, Value>>,
    key: &str,
    of: &str,
) -> Result<Option<bool>, ApiError> {
    match params.and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(format!(
            "{of}: parameter {key:?} must be true or false, not {v}"
        ))),
    }
}

/// Parameters of extensions this server does not have: a request that relies on them
/// is refused rather than answered as if they were not there.
fn refuse_unsupported(params: Option<&Map<String, Value>>, of: &str) -> Result<(), ApiError> {
    let Some(p) = params else { return Ok(()) };
    for key in [
        "shared_memory_region",
        "shared_memory_byte_size",
        "shared_memory_offset",
    ] {
        if p.contains_key(key) {
            return Err(bad(format!(
                "{of}: the shared-memory extension ({key}) is not supported; send the tensor in the body"
            )));
        }
    }
    if p.get("classification")
        .is_some_and(|v| v.as_u64() != Some(0))
    {
        return Err(bad(format!(
            "{of}: the classification extension is not supported; request the output's tensor"
        )));
    }
    if p.get("sequence_id").is_some_and(|v| {
        !matches!(v, Value::Number(n) if n.as_u64() == Some(0)) && v.as_str() != Some("")
    }) {
        return Err(bad(format!(
            "{of}: sequence_id: this model is stateless and serves no sequences"
        )));
    }
    Ok(())
}

/// The input's tensor `[rows, ...]` as cells, from its JSON data or its binary bytes.
fn input_cells(
    input: &RequestInput,
    raw: Option<&[u8]>,
    dt: Datatype,
    count: usize,
) -> Result<Vec<Option<String>>, ApiError> {
    let of = |e: String| bad(format!("input {:?} ({dt}): {e}", input.name));
    match (raw, &input.data) {
        (Some(raw), None) => cells_from_binary(raw, dt, count).map_err(of),
        (None, Some(data)) => cells_from_json(data, dt, count).map_err(of),
        (Some(_), Some(_)) => Err(of(
            "has both \"data\" and binary_data_size; send one of them".into(),
        )),
        (None, None) => Err(of(
            "has no \"data\" (nor binary_data_size with Inference-Header-Content-Length)".into(),
        )),
    }
}

impl V2Model {
    /// The request's rows, one cell per model input in schema order.
    fn rows(&self, req: &InferRequest, binary: &[u8]) -> Result<Vec<Vec<Cell>>, ApiError> {
        if req.inputs.is_empty() {
            return Err(bad(format!(
                "the request has no inputs; the model's inputs are {}",
                self.input_names()
            )));
        }
        // The binary bytes, split by the inputs' binary_data_size in input order.
        let mut rest = binary;
        let mut raws = Vec::with_capacity(req.inputs.len());
        for input in &req.inputs {
            let of = format!("input {:?}", input.name);
            refuse_unsupported(input.parameters.as_ref(), &of)?;
            let size = match input
                .parameters
                .as_ref()
                .and_then(|p| p.get("binary_data_size"))
            {
                None => None,
                Some(v) => Some(
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            bad(format!(
                                "{of}: binary_data_size must be a byte count, not {v}"
                            ))
                        })?,
                ),
            };
            raws.push(match size {
                None => None,
                Some(n) if n <= rest.len() => {
                    let (raw, tail) = rest.split_at(n);
                    rest = tail;
                    Some(raw)
                }
                Some(n) => {
                    return Err(bad(format!(
                        "{of}: binary_data_size is {n} but only {} bytes of binary data are left after the JSON (whose length is the Inference-Header-Content-Length header)",
                        rest.len()
                    )))
                }
            });
        }
        if !rest.is_empty() {
            return Err(bad(format!(
                "{} bytes follow the JSON that no input's binary_data_size claims",
                rest.len()
            )));
        }

        let two_d = req.inputs.len() == 1 && !self.index.contains_key(&req.inputs[0].name);
        let rows = if two_d {
            self.rows_2d(&req.inputs[0], raws[0])?
        } else {
            self.rows_named(&req.inputs, &raws)?
        };
        if rows.is_empty() {
            return Err(bad(
                "the input tensors have no rows (their first dimension is 0)",
            ));
        }
        Ok(rows)
    }

    /// One 2-D tensor `[n, k]` of every input in schema order.
    fn rows_2d(
        &self,
        input: &RequestInput,
        raw: Option<&[u8]>,
    ) -> Result<Vec<Vec<Cell>>, ApiError> {
        let k = self.inputs.len();
        let of = format!("input {:?}", input.name);
        let [_, width] = input.shape[..] else {
            return Err(bad(format!(
                "{of} is not one of the model's inputs {}; a single tensor of all of them must be 2-D [rows, {k}], not {:?}",
                self.input_names(),
                input.shape
            )));
        };
        if width != k as i64 {
            return Err(bad(format!(
                "{of}: a 2-D tensor has one column per model input in schema order, {k} ({}), not {width}",
                self.input_names()
            )));
        }
        let dt = Datatype::parse(&input.datatype);
        let ok = match (dt, self.common) {
            (Some(Datatype::Bytes), _) => true,
            (Some(d), Some(c)) => d == c,
            _ => false,
        };
        let Some(dt) = dt.filter(|_| ok) else {
            return Err(bad(format!(
                "{of}: datatype {:?} does not fit a 2-D tensor of this model's inputs; use {}",
                input.datatype,
                match self.common {
                    Some(c) if c != Datatype::Bytes =>
                        format!("{c} (every input's) or BYTES (their text)"),
                    _ =>
                        "BYTES (each cell as the MLOps API's text), as the inputs' datatypes differ"
                            .to_string(),
                }
            )));
        };
        let count = element_count(&input.shape).map_err(|e| bad(format!("{of}: {e}")))?;
        let cells = input_cells(input, raw, dt, count)?;
        Ok(cells
            .chunks(k)
            .map(|row| row.iter().cloned().map(Cell).collect())
            .collect())
    }

    /// One 1-D tensor per input, by name.
    fn rows_named(
        &self,
        inputs: &[RequestInput],
        raws: &[Option<&[u8]>],
    ) -> Result<Vec<Vec<Cell>>, ApiError> {
        let mut columns: Vec<Option<Vec<Option<String>>>> = vec![None; self.inputs.len()];
        let mut rows: Option<(usize, &str)> = None;
        for (input, raw) in inputs.iter().zip(raws) {
            let of = format!("input {:?}", input.name);
            let Some(&i) = self.index.get(&input.name) else {
                return Err(bad(format!(
                    "{of} is not one of the model's inputs {} (send one 1-D tensor per input by name, or one 2-D tensor of all of them)",
                    self.input_names()
                )));
            };
            if columns[i].is_some() {
                return Err(bad(format!("{of} is given more than once")));
            }
            let want = self.inputs[i].1;
            match Datatype::parse(&input.datatype) {
                Some(d) if d == want => {}
                _ => {
                    return Err(bad(format!(
                        "{of} has datatype {:?}; the model's input {:?} is {want}",
                        input.datatype, input.name
                    )))
                }
            }
            let n = match input.shape[..] {
                [n] | [n, 1] if n >= 0 => n as usize,
                _ => {
                    return Err(bad(format!(
                        "{of} has shape {:?}; an input by name is 1-D [rows] (or [rows, 1])",
                        input.shape
                    )))
                }
            };
            match rows {
                Some((m, first)) if m != n => {
                    return Err(bad(format!(
                        "{of} has {n} rows but input {first:?} has {m}; every input has one element per row"
                    )))
                }
                _ => rows = Some((n, &input.name)),
            }
            columns[i] = Some(input_cells(input, *raw, want, n)?);
        }
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .zip(&columns)
            .filter(|(_, c)| c.is_none())
            .map(|((n, _), _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "missing input(s) {missing:?}; the model's inputs are {}",
                self.input_names()
            )));
        }
        let n = rows.map_or(0, |(n, _)| n);
        let mut columns: Vec<std::vec::IntoIter<Option<String>>> = columns
            .into_iter()
            .map(|c| c.expect("every input is there").into_iter())
            .collect();
        Ok((0..n)
            .map(|_| {
                columns
                    .iter_mut()
                    .map(|c| Cell(c.next().expect("n cells per input")))
                    .collect()
            })
            .collect())
    }

    /// The requested outputs (index into `outputs`, binary or not), checked.
    fn requested(&self, req: &InferRequest) -> Result<Vec<(usize, bool)>, ApiError> {
        let params = req.parameters.as_ref();
        refuse_unsupported(params, "the request")?;
        let all_binary = bool_param(params, "binary_data_output", "the request")?.unwrap_or(false);
        match req.outputs.as_deref() {
            None | Some([]) => Ok((0..self.outputs.len()).map(|i| (i, all_binary)).collect()),
            Some(list) => list
                .iter()
                .map(|o| {
                    let of = format!("requested output {:?}", o.name);
                    let i = self
                        .outputs
                        .iter()
                        .position(|(n, _)| *n == o.name)
                        .ok_or_else(|| {
                            let names: Vec<&str> =
                                self.outputs.iter().map(|(n, _)| n.as_str()).collect();
                            bad(format!("{of} is not one of the model's outputs {names:?}"))
                        })?;
                    refuse_unsupported(o.parameters.as_ref(), &of)?;
                    let binary = bool_param(o.parameters.as_ref(), "binary_data", &of)?
                        .unwrap_or(all_binary);
                    Ok((i, binary))
                })
                .collect(),
        }
    }
}

/// Splits the body at `Inference-Header-Content-Length` (JSON, then binary tensor data).
fn split_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    let Some(v) = headers.get(HEADER_LENGTH) else {
        return Ok((body, &[]));
    };
    let n = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            bad(format!(
                "Inference-Header-Content-Length must be a byte count, not {v:?}"
            ))
        })?;
    if n > body.len() {
        return Err(bad(format!(
            "Inference-Header-Content-Length is {n} but the body has only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(n))
}

/// `POST /v2/models/{name}[/versions/{v}]/infer`.
async fn infer(
    State(st): St,
    Path(p): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (m, v2) = st.v2()?;
    v2.check_path(&p)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        if !enc.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {enc:?} is not supported; send the request uncompressed"),
            ));
        }
    }
    let (json, binary) = split_body(&headers, &body)?;
    let req: InferRequest = serde_json::from_slice(json).map_err(|e| {
        bad(if e.is_syntax() || e.is_eof() {
            format!("the request is not valid JSON: {e}")
        } else {
            format!("the request is not an inference request: {e}")
        })
    })?;
    let wanted = v2.requested(&req)?;
    let rows = v2.rows(&req, binary)?;
    let n = rows.len();
    let fields: Vec<String> = v2.inputs.iter().map(|(n, _)| n.clone()).collect();
    let prepared = m.rules.prepare(Some(ScoreRequest {
        fields: Some(fields),
        rows: Some(rows),
        ..ScoreRequest::default()
    }))?;
    let scored = m.backend.score(Arc::clone(&prepared.frame)).await?;

    let mut tensors = Vec::with_capacity(wanted.len());
    for &(i, binary) in &wanted {
        let (name, dt) = &v2.outputs[i];
        let data = OutData::from_cells(*dt, scored.iter().map(|r| r[i].as_str())).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("output {name:?}: the backend answered {e}"),
            )
        })?;
        tensors.push((name.as_str(), *dt, data, binary));
    }
    let mut blob = Vec::new();
    let outputs = tensors
        .iter()
        .map(|(name, dt, data, binary)| {
            let parameters = binary.then(|| {
                let start = blob.len();
                data.write_binary(&mut blob);
                BinarySize {
                    binary_data_size: blob.len() - start,
                }
            });
            ResponseOutput {
                name,
                datatype: dt.as_str(),
                shape: [n],
                parameters,
                data: (!binary).then_some(data),
            }
        })
        .collect();
    let resp = InferResponse {
        model_name: &v2.name,
        model_version: &v2.version,
        id: req.id.as_deref(),
        outputs,
    };
    let mut r = if blob.is_empty() && !wanted.iter().any(|(_, b)| *b) {
        json_response(StatusCode::OK, &resp)
    } else {
        let mut out = serde_json::to_vec(&resp).expect("JSON values serialize");
        let json_len = out.len();
        out.extend_from_slice(&blob);
        let mut r = (StatusCode::OK, out).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r.headers_mut()
            .insert(HEADER_LENGTH, HeaderValue::from(json_len));
        r
    };
    r.extensions_mut().insert(RowsScored(n as u64));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_splits_at_the_header_length() {
        let mut h = HeaderMap::new();
        let body = b"{}abc";
        assert_eq!(split_body(&h, body).unwrap(), (&body[..], &b""[..]));
        h.insert(HEADER_LENGTH, HeaderValue::from_static("2"));
        assert_eq!(split_body(&h, body).unwrap(), (&b"{}"[..], &b"abc"[..]));
        for bad_len in ["6", "-1", "x", "18446744073709551616"] {
            h.insert(HEADER_LENGTH, HeaderValue::from_static(bad_len));
            let e = split_body(&h, body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad_len}");
            assert!(
                e.detail.contains("Inference-Header-Content-Length"),
                "{}",
                e.detail
            );
        }
    }

    #[test]
    fn unsupported_extensions_are_refused() {
        let p = |v: Value| v.as_object().cloned();
        let cases = [
            (serde_json::json!({"binary_data": true}), None),
            (serde_json::json!({"classification": 0}), None),
            (
                serde_json::json!({"sequence_id": 0, "priority": 1, "timeout": 5}),
                None,
            ),
            (
                serde_json::json!({"classification": 2}),
                Some("classification"),
            ),
            (
                serde_json::json!({"shared_memory_region": "r"}),
                Some("shared-memory"),
            ),
            (serde_json::json!({"sequence_id": 7}), Some("stateless")),
        ];
        for (params, want) in cases {
            match (refuse_unsupported(p(params.clone()).as_ref(), "x"), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.detail.contains(w), "{params}: {}", e.detail),
                (r, w) => panic!("{params}: {r:?}, want {w:?}"),
            }
        }
    }
}
