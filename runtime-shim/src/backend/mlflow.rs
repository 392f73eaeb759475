//! The `mlflow_pyfunc` backend: MLflow's own scoring server (`mlflow models serve
//! --env-manager local`) as a supervised child ([`super::proxy`]), and the translation
//! between the MLOps scoring API and MLflow's `/invocations` (FORMATS.md §5.13).
//!
//! Only MLflow can load a pyfunc model (pickles, custom Python classes), so the shim runs
//! the real server on the payload folder with the Python environment the image provides,
//! and keeps the API, the request checks and the response assembly of every runtime. A
//! request's string cells are turned into JSON values by the manifest's input schema
//! (numbers for Int32/Int64/Float32/Float64, booleans, strings for String and Time64,
//! `null` for a missing cell) and sent as one `dataframe_split`. The reply's predictions
//! become one `score` row per input row with the output schema's columns: a list of
//! values (one output), a list of lists, a list of records (a DataFrame) or an object of
//! columns (a dict of tensors), wrapped in `{"predictions": ...}` (MLflow 2+) or bare
//! (MLflow 1.x, which also takes the split orient without the wrapper). A model whose
//! signature is made of tensors is fed and read as tensors instead
//! ([`super::mlflow_tensor`]: `{"inputs": ...}`, `[-1, k]` tensors as `k` columns).
//!
//! Before the server starts, the Python version the model was saved with
//! (`metadata.python_version`) is compared with the runtime's: a different major.minor is
//! a warning, or a refusal with `MLFLOW_REQUIRE_PYTHON_MATCH`; then its requirements
//! (`metadata.requirements`) are checked against the runtime's Python
//! ([`super::requirements`]): each unmet one is a warning, or a refusal with
//! `MLFLOW_REQUIRE_REQUIREMENTS_MATCH`, or installed into `MLFLOW_INSTALL_DIR` with
//! `MLFLOW_INSTALL_REQUIREMENTS`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use artifact_core::{ColumnType, Manifest};
use axum::http::StatusCode;
use serde_json::{Map, Number, Value};

use super::command::CommandTemplate;
use super::mlflow_tensor::{self, TensorLayout};
use super::proxy::{Proxy, ProxySpec};
use super::{Backend, BackendConfig, BoxFuture};
use crate::api::{ApiError, Frame};

/// The model type this backend serves.
pub const MODEL_TYPE: &str = "mlflow_pyfunc";
/// The default `MLFLOW_SERVE_COMMAND`: `mlflow` from `PATH`.
pub const DEFAULT_SERVE_COMMAND: &str =
    "mlflow models serve -m {model} --env-manager local -h {host} -p {port}";
const NAME: &str = "MLflow scoring server";
const SETTING: &str = "MLFLOW_SERVE_COMMAND";

/// What `/invocations` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// MLflow 2 and later: `{"dataframe_split": {...}}`, reply `{"predictions": ...}`.
    Wrapped,
    /// MLflow 1.x (no `/version` route): the split orient as the body, with
    /// `format=pandas-split`; the reply is the bare predictions.
    Bare,
}

/// A model served by a child `mlflow models serve`.
pub struct MlflowBackend {
    proxy: Arc<Proxy>,
    columns: Vec<String>,
    types: Vec<ColumnType>,
    outputs: Vec<String>,
    protocol: Protocol,
    server_version: String,
    loader: String,
    tensors: TensorLayout,
}

/// Checks `MLFLOW_SERVE_COMMAND` before anything starts.
pub fn check(cfg: &BackendConfig) -> Result<(), String> {
    template(cfg).map(|_| ())
}

fn template(cfg: &BackendConfig) -> Result<CommandTemplate, String> {
    let t =
        CommandTemplate::parse(&cfg.mlflow_serve_command).map_err(|e| format!("{SETTING}: {e}"))?;
    for p in ["port", "model"] {
        if !t.uses(p) {
            return Err(format!(
                "{SETTING} {:?} has no {{{p}}}: the shim chooses the port and passes the model folder (default: {DEFAULT_SERVE_COMMAND:?})",
                cfg.mlflow_serve_command
            ));
        }
    }
    Ok(t)
}

/// Checks the Python version, starts the scoring server on `dir/<payload>` and waits for
/// its `/ping`.
pub fn load(
    dir: &Path,
    manifest: &Manifest,
    cfg: &BackendConfig,
) -> Result<Box<dyn Backend>, String> {
    if !manifest.schema_known
        || manifest.input_schema.is_empty()
        || manifest.output_schema.is_empty()
    {
        return Err("the manifest has no complete input and output schema (schema_known is false): requests are translated by the model's signature, so the model needs one (mlflow.models.infer_signature, mlflow.models.set_signature) and processing without --allow-no-signature/--allow-unmapped-types".into());
    }
    let command = template(cfg)?;
    let mlmodel = dir.join(&manifest.payload).join("MLmodel");
    let tensors = std::fs::read(&mlmodel)
        .map_err(|e| e.to_string())
        .and_then(|text| mlflow_tensor::layout(&text, manifest))
        .map_err(|e| format!("{}: {e}", mlmodel.display()))?;
    check_python(manifest, &command, cfg)?;
    let installed = check_requirements(manifest, &runtime_python(cfg, &command), cfg)?;
    let model = std::path::absolute(dir.join(&manifest.payload))
        .map_err(|e| format!("{}: {e}", dir.join(&manifest.payload).display()))?;
    let spec = ProxySpec {
        name: NAME,
        setting: SETTING,
        command,
        vars: vec![("model", model.to_string_lossy().into_owned())],
        health_path: "/ping".into(),
        start_timeout: cfg.child_start_timeout,
        stop_grace: cfg.child_stop_grace,
        secrets: Vec::new(),
        env: installed
            .map(|dir| vec![("PYTHONPATH", super::requirements::python_path(&dir))])
            .unwrap_or_default(),
    };
    let handle = tokio::runtime::Handle::current();
    let (proxy, version) = handle.block_on(async {
        let proxy = Proxy::start(spec).await?;
        let up = proxy.upstream().map_err(|e| e.detail)?;
        // `/version` exists from MLflow 2.0 on.
        let version = match proxy.get(&up, "/version", Duration::from_secs(10)).await {
            Ok((s, body)) if s.is_success() => {
                Some(String::from_utf8_lossy(&body).trim().to_string())
            }
            _ => None,
        };
        Ok::<_, String>((proxy, version))
    })?;
    let (protocol, server_version) = match version {
        Some(v) => (Protocol::Wrapped, v),
        None => (Protocol::Bare, "1.x".to_string()),
    };
    let model_version = manifest
        .metadata
        .get("mlflow_version")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    tracing::info!(
        server_mlflow = %server_version,
        model_mlflow = %model_version,
        tensor_inputs = tensors.inputs.is_some(),
        tensor_outputs = tensors.outputs.is_some(),
        "MLflow scoring server ready"
    );
    Ok(Box::new(MlflowBackend {
        proxy,
        columns: manifest
            .input_schema
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        types: manifest.input_schema.iter().map(|c| c.ty).collect(),
        outputs: manifest
            .output_schema
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        protocol,
        server_version,
        loader: manifest
            .metadata
            .get("loader_module")
            .and_then(Value::as_str)
            .unwrap_or("pyfunc")
            .to_string(),
        tensors,
    }))
}

/// The interpreter the scoring server runs on: `MLFLOW_PYTHON`, else the `python` beside
/// the command (a venv's `bin/`), else `python3` from `PATH`.
fn runtime_python(cfg: &BackendConfig, command: &CommandTemplate) -> PathBuf {
    if let Some(p) = &cfg.mlflow_python {
        return p.clone();
    }
    let program = Path::new(command.program());
    let dir = if program.components().count() > 1 {
        program.parent().map(Path::to_path_buf)
    } else {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).find(|d| d.join(program).is_file()))
    };
    match dir.map(|d| d.join("python")).filter(|p| p.is_file()) {
        Some(p) => p,
        None => PathBuf::from("python3"),
    }
}

/// `major.minor` of a version string (`3.11.7` → (3, 11)).
fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    let major = it.next()?.trim().parse().ok()?;
    let minor = it
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

fn check_python(
    manifest: &Manifest,
    command: &CommandTemplate,
    cfg: &BackendConfig,
) -> Result<(), String> {
    let Some(recorded) = manifest
        .metadata
        .get("python_version")
        .and_then(Value::as_str)
    else {
        tracing::info!("the model records no Python version; not compared");
        return Ok(());
    };
    let python = runtime_python(cfg, command);
    let found = std::process::Command::new(&python)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .stdin(std::process::Stdio::null())
        .output();
    let runtime = match found {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => {
            return python_problem(
                cfg,
                format!(
                    "cannot tell the runtime's Python version: `{} -c ...` exited with {} (set MLFLOW_PYTHON)",
                    python.display(),
                    o.status
                ),
            )
        }
        Err(e) => {
            return python_problem(
                cfg,
                format!(
                    "cannot tell the runtime's Python version: `{}`: {e} (set MLFLOW_PYTHON)",
                    python.display()
                ),
            )
        }
    };
    match (major_minor(recorded), major_minor(&runtime)) {
        (Some(m), Some(r)) if m == r => {
            tracing::info!(model = recorded, runtime = %runtime, python = %python.display(), "Python versions agree");
            Ok(())
        }
        _ => python_problem(
            cfg,
            format!(
                "the model was saved with Python {recorded} and the runtime's Python ({}) is {runtime}: a different major.minor may fail to load its pickles or score differently",
                python.display()
            ),
        ),
    }
}

fn python_problem(cfg: &BackendConfig, msg: String) -> Result<(), String> {
    if cfg.mlflow_require_python_match {
        Err(format!(
            "{msg}; refused because MLFLOW_REQUIRE_PYTHON_MATCH is set"
        ))
    } else {
        tracing::warn!("{msg} (MLFLOW_REQUIRE_PYTHON_MATCH=true refuses to start)");
        Ok(())
    }
}

/// Applies the requirements policy: `Ok(Some(dir))` when unmet requirements were
/// installed into `dir` (to put first on the server's `PYTHONPATH`).
fn check_requirements(
    manifest: &Manifest,
    python: &Path,
    cfg: &BackendConfig,
) -> Result<super::requirements::Installed, String> {
    use super::requirements;
    let lines: Vec<String> = manifest
        .metadata
        .get("requirements")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        tracing::info!("the model records no requirements; not compared");
        return Ok(None);
    }
    let found = match requirements::check(python, &lines, None) {
        Ok(f) => f,
        Err(e) if cfg.mlflow_require_requirements_match => {
            return Err(format!(
                "{e}; refused because MLFLOW_REQUIRE_REQUIREMENTS_MATCH is set"
            ))
        }
        Err(e) => {
            tracing::warn!("{e}");
            return Ok(None);
        }
    };
    for u in found.iter().filter(|u| !u.is_unmet()) {
        tracing::info!(requirement = %u.requirement, "not compared: {}", u.detail);
    }
    let unmet: Vec<_> = found.into_iter().filter(|u| u.is_unmet()).collect();
    if unmet.is_empty() {
        tracing::info!(
            requirements = lines.len(),
            python = %python.display(),
            "the runtime's Python satisfies the model's requirements"
        );
        return Ok(None);
    }
    let list = |u: &[requirements::Unmet]| {
        u.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if cfg.mlflow_install_requirements {
        let dir = &cfg.mlflow_install_dir;
        let wanted: Vec<String> = unmet.iter().map(|u| u.requirement.clone()).collect();
        tracing::info!(dir = %dir.display(), requirements = %wanted.join(" "), "installing the requirements the runtime's Python does not satisfy (MLFLOW_INSTALL_REQUIREMENTS)");
        let start = std::time::Instant::now();
        requirements::install(python, dir, &wanted, cfg.child_start_timeout)
            .map_err(|e| format!("MLFLOW_INSTALL_REQUIREMENTS: {e}"))?;
        let left: Vec<_> = requirements::check(python, &lines, Some(dir))?
            .into_iter()
            .filter(requirements::Unmet::is_unmet)
            .collect();
        if !left.is_empty() {
            return Err(format!(
                "MLFLOW_INSTALL_REQUIREMENTS: after installing into {}, still unmet: {}",
                dir.display(),
                list(&left)
            ));
        }
        tracing::info!(seconds = start.elapsed().as_secs_f64(), dir = %dir.display(), "installed the model's unmet requirements");
        return Ok(Some(dir.clone()));
    }
    let msg = format!(
        "the runtime's Python ({}) does not satisfy {} of the model's requirements: {}",
        python.display(),
        unmet.len(),
        list(&unmet)
    );
    if cfg.mlflow_require_requirements_match {
        Err(format!(
            "{msg}; refused because MLFLOW_REQUIRE_REQUIREMENTS_MATCH is set (MLFLOW_INSTALL_REQUIREMENTS=true installs them at start)"
        ))
    } else {
        tracing::warn!("{msg}; the model may fail to load or score differently (MLFLOW_REQUIRE_REQUIREMENTS_MATCH=true refuses to start, MLFLOW_INSTALL_REQUIREMENTS=true installs them)");
        Ok(None)
    }
}

/// One request cell as the JSON value MLflow's schema enforcement expects.
fn json_cell(ty: ColumnType, cell: Option<&str>) -> Result<Value, String> {
    let Some(s) = cell else {
        return Ok(Value::Null);
    };
    let t = s.trim();
    match ty {
        ColumnType::Int32 | ColumnType::Int64 => {
            let v = match t.parse::<i64>() {
                Ok(v) => v,
                Err(_) => match t.parse::<f64>() {
                    Ok(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => f as i64,
                    _ => return Err(format!("{s:?} is not an integer")),
                },
            };
            if ty == ColumnType::Int32 && i32::try_from(v).is_err() {
                return Err(format!("{s:?} is out of the Int32 range"));
            }
            Ok(Value::from(v))
        }
        ColumnType::Float32 | ColumnType::Float64 => match t.parse::<f64>() {
            // JSON has no NaN or infinity: they travel as missing.
            Ok(f) => Ok(Number::from_f64(f).map_or(Value::Null, Value::Number)),
            Err(_) => Err(format!("{s:?} is not a number")),
        },
        ColumnType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{s:?} is not a boolean (true or false)")),
        },
        ColumnType::String | ColumnType::Time64 => Ok(Value::String(s.to_string())),
    }
}

impl MlflowBackend {
    /// The `/invocations` body and content type for `frame`.
    fn request(&self, frame: &Frame) -> Result<(Vec<u8>, &'static str), ApiError> {
        if let Some(t) = &self.tensors.inputs {
            let body = mlflow_tensor::request(
                t,
                self.tensors.format,
                frame.len(),
                |r, i, ty| {
                    json_cell(ty, frame.cell(r, i)).map_err(|e| {
                        ApiError::invalid(format!(
                            "row {} (zero-indexed): column {:?}: {e}",
                            frame.row_number(r),
                            self.columns[i]
                        ))
                    })
                },
                &self.types,
            )?;
            // MLflow 1.x reads a tensor request from plain JSON too.
            return Ok((
                serde_json::to_vec(&body).expect("JSON values serialize"),
                "application/json",
            ));
        }
        let mut data = Vec::with_capacity(frame.len());
        for r in 0..frame.len() {
            let mut row = Vec::with_capacity(self.types.len());
            for (i, ty) in self.types.iter().enumerate() {
                row.push(json_cell(*ty, frame.cell(r, i)).map_err(|e| {
                    ApiError::invalid(format!(
                        "row {} (zero-indexed): column {:?}: {e}",
                        frame.row_number(r),
                        self.columns[i]
                    ))
                })?);
            }
            data.push(Value::Array(row));
        }
        let mut split = Map::new();
        split.insert("columns".into(), Value::from(self.columns.clone()));
        split.insert("data".into(), Value::Array(data));
        let (body, ct) = match self.protocol {
            Protocol::Wrapped => {
                let mut m = Map::new();
                m.insert("dataframe_split".into(), Value::Object(split));
                (Value::Object(m), "application/json")
            }
            Protocol::Bare => (
                Value::Object(split),
                "application/json; format=pandas-split",
            ),
        };
        Ok((
            serde_json::to_vec(&body).expect("JSON values serialize"),
            ct,
        ))
    }
}

/// An error reply of the scoring server as an API error: its refusals of the rows
/// (schema enforcement) are the request's fault, 400; anything else is the server's.
fn server_error(status: StatusCode, body: &[u8]) -> ApiError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(2000)
                .collect()
        });
    match status.as_u16() {
        400 | 422 => ApiError::invalid(format!("the MLflow model refused the rows: {message}")),
        504 => ApiError::failed(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the {NAME} timed out: {message}"),
        ),
        _ => ApiError::failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the {NAME} answered {status}: {message}"),
        ),
    }
}

/// Python's `json` writes `NaN`, `Infinity` and `-Infinity`, which are not JSON: they
/// are turned into the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn strict_json(b: &[u8]) -> Cow<'_, [u8]> {
    if !b.iter().any(|&c| c == b'N' || c == b'I') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len() + 16);
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1]);
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        let rest = &b[i..];
        let token: Option<(&[u8], &[u8])> = if rest.starts_with(b"NaN") {
            Some((b"NaN", b"\"NaN\""))
        } else if rest.starts_with(b"-Infinity") {
            Some((b"-Infinity", b"\"-Infinity\""))
        } else if rest.starts_with(b"Infinity") {
            Some((b"Infinity", b"\"Infinity\""))
        } else {
            None
        };
        match token {
            Some((t, r)) => {
                out.extend_from_slice(r);
                i += t.len();
            }
            None => {
                if c == b'"' {
                    in_str = true;
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// A prediction value as a response cell.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.len() == 1 => cell_text(&a[0]),
        other => other.to_string(),
    }
}

/// The value of output `j` (named `name`) in a record: by name, else the only value of a
/// one-output model (a pandas Series without a name arrives as `{"0": ...}`), else the
/// positional key `"j"` (a DataFrame without column names).
fn from_record<'a>(
    rec: &'a Map<String, Value>,
    name: &str,
    j: usize,
    outputs: usize,
) -> Option<&'a Value> {
    rec.get(name)
        .or_else(|| {
            (outputs == 1 && rec.len() == 1)
                .then(|| rec.values().next())
                .flatten()
        })
        .or_else(|| rec.get(&j.to_string()))
}

/// The value of `predictions` in an MLflow 2+ reply; a bare (1.x) reply as it is.
fn unwrap_predictions(reply: Value) -> Value {
    match reply {
        Value::Object(mut m) if m.contains_key("predictions") => {
            m.remove("predictions").unwrap_or_default()
        }
        other => other,
    }
}

/// Turns the scoring server's reply into `rows` rows of `outputs.len()` cells.
fn predictions(reply: Value, outputs: &[String], rows: usize) -> Result<Vec<Vec<String>>, String> {
    let k = outputs.len();
    let p = unwrap_predictions(reply);
    let count = |n: usize| -> Result<(), String> {
        if n == rows {
            Ok(())
        } else {
            Err(format!("{n} predictions for {rows} rows"))
        }
    };
    match p {
        Value::Array(items) => {
            count(items.len())?;
            items
                .into_iter()
                .enumerate()
                .map(|(r, item)| match item {
                    Value::Object(rec) => outputs
                        .iter()
                        .enumerate()
                        .map(|(j, name)| {
                            from_record(&rec, name, j, k).map(cell_text).ok_or_else(|| {
                                format!(
                                    "prediction {r} has the keys {:?}, not the output {name:?}",
                                    rec.keys().collect::<Vec<_>>()
                                )
                            })
                        })
                        .collect(),
                    Value::Array(a) if a.len() == k => Ok(a.iter().map(cell_text).collect()),
                    Value::Array(a) if k == 1 => Ok(vec![Value::Array(a).to_string()]),
                    Value::Array(a) => Err(format!(
                        "prediction {r} has {} values for the {k} outputs {outputs:?}",
                        a.len()
                    )),
                    scalar if k == 1 => Ok(vec![cell_text(&scalar)]),
                    _ => Err(format!(
                        "prediction {r} is one value, but the output schema has the {k} columns {outputs:?}"
                    )),
                })
                .collect()
        }
        Value::Object(cols) => {
            let columns: Vec<&Vec<Value>> = outputs
                .iter()
                .enumerate()
                .map(|(j, name)| match from_record(&cols, name, j, k) {
                    Some(Value::Array(c)) => count(c.len()).map(|_| c),
                    Some(_) => Err(format!("the predictions' column {name:?} is not a list")),
                    None => Err(format!(
                        "the predictions have the columns {:?}, not the output {name:?}",
                        cols.keys().collect::<Vec<_>>()
                    )),
                })
                .collect::<Result<_, _>>()?;
            Ok((0..rows)
                .map(|r| columns.iter().map(|c| cell_text(&c[r])).collect())
                .collect())
        }
        scalar if rows == 1 && k == 1 => Ok(vec![vec![cell_text(&scalar)]]),
        other => Err(format!(
            "the predictions are {}, not a list or an object of columns",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                _ => "a string",
            }
        )),
    }
}

impl Backend for MlflowBackend {
    fn describe(&self) -> String {
        format!(
            "MLflow pyfunc ({}) through `mlflow models serve` (MLflow {})",
            self.loader, self.server_version
        )
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["SCORE".to_string()]
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.proxy.ready())
    }

    fn score(&self, frame: Arc<Frame>) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        Box::pin(async move {
            let (body, content_type) = self.request(&frame)?;
            let up = self.proxy.upstream()?;
            let (status, reply) = self
                .proxy
                .post(&up, "/invocations", content_type, body)
                .await?;
            if !status.is_success() {
                return Err(server_error(status, &reply));
            }
            let bad = |e: String| {
                ApiError::failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the {NAME}'s reply does not fit the output schema: {e}"),
                )
            };
            let v: Value = serde_json::from_slice(&strict_json(&reply))
                .map_err(|e| bad(format!("not JSON: {e}")))?;
            let v = match &self.tensors.outputs {
                Some(t) if mlflow_tensor::wide(t) => {
                    mlflow_tensor::unpack(unwrap_predictions(v), t).map_err(bad)?
                }
                _ => v,
            };
            predictions(v, &self.outputs, frame.len()).map_err(bad)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.proxy.shutdown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn testdata(name: &str) -> Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/mlflow")
            .join(name);
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    }

    #[test]
    fn cells_become_json_values_by_input_type() {
        use ColumnType::*;
        type Want = Result<Value, &'static str>;
        let cases: &[(&str, ColumnType, Option<&str>, Want)] = &[
            ("long", Int64, Some("78"), Ok(json!(78))),
            ("long with blanks", Int64, Some(" -3 "), Ok(json!(-3))),
            (
                "long written as a whole float",
                Int64,
                Some("7.0"),
                Ok(json!(7)),
            ),
            (
                "long fraction",
                Int64,
                Some("7.5"),
                Err("\"7.5\" is not an integer"),
            ),
            (
                "long text",
                Int64,
                Some("x"),
                Err("\"x\" is not an integer"),
            ),
            (
                "int32 range",
                Int32,
                Some("3000000000"),
                Err("out of the Int32 range"),
            ),
            ("double", Float64, Some("51421.35"), Ok(json!(51421.35))),
            ("double exponent", Float64, Some("1e-3"), Ok(json!(0.001))),
            ("float", Float32, Some("0.5"), Ok(json!(0.5))),
            ("NaN is missing", Float64, Some("NaN"), Ok(Value::Null)),
            (
                "double text",
                Float64,
                Some("two"),
                Err("\"two\" is not a number"),
            ),
            ("bool", Boolean, Some("TRUE"), Ok(json!(true))),
            ("bool digit", Boolean, Some("0"), Ok(json!(false))),
            (
                "bool text",
                Boolean,
                Some("yes please"),
                Err("not a boolean"),
            ),
            (
                "string kept as is",
                String,
                Some(" berlin "),
                Ok(json!(" berlin ")),
            ),
            (
                "time as text",
                Time64,
                Some("2018-01-01"),
                Ok(json!("2018-01-01")),
            ),
            ("missing", Float64, None, Ok(Value::Null)),
            ("missing string", String, None, Ok(Value::Null)),
        ];
        for (name, ty, cell, want) in cases {
            match (json_cell(*ty, *cell), want) {
                (Ok(v), Ok(w)) => assert_eq!(&v, w, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn replies_of_every_shape_become_score_rows() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // The reference predictions MLflow's server returned for the testdata models.
        let multi = testdata("multi_output.predictions.json");
        let custom = testdata("custom_pyfunc.predictions.json");
        let stats = testdata("statsmodels.predictions.json");
        let onnx = testdata("onnx.predictions.json");
        let xgb = testdata("xgboost.predictions.json");
        type Want = Result<Vec<Vec<String>>, &'static str>;
        let cases: Vec<(&str, Value, Vec<String>, usize, Want)> = vec![
            (
                "2.x list of ints",
                json!({"predictions": [1, 0]}),
                s(&["prediction"]),
                2,
                Ok(vec![s(&["1"]), s(&["0"])]),
            ),
            (
                "1.x bare list",
                json!([1.5, -2.25]),
                s(&["prediction"]),
                2,
                Ok(vec![s(&["1.5"]), s(&["-2.25"])]),
            ),
            (
                "xgboost floats keep every digit",
                json!({"predictions": xgb.clone()}),
                s(&["prediction"]),
                10,
                Ok(xgb
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| vec![v.to_string()])
                    .collect()),
            ),
            (
                "multi-output records by name",
                json!({"predictions": multi.clone()}),
                s(&["probability", "band"]),
                10,
                Ok(multi
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        vec![
                            r["probability"].to_string(),
                            r["band"].as_str().unwrap().to_string(),
                        ]
                    })
                    .collect()),
            ),
            (
                "multi-output records, outputs in schema order",
                json!({"predictions": [{"band": "low", "probability": 0.1}]}),
                s(&["probability", "band"]),
                1,
                Ok(vec![s(&["0.1", "low"])]),
            ),
            (
                "named series",
                json!({"predictions": custom.clone()}),
                s(&["score"]),
                10,
                Ok(custom
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| vec![r["score"].to_string()])
                    .collect()),
            ),
            (
                "unnamed series is the only output",
                json!({"predictions": stats.clone()}),
                s(&["prediction"]),
                10,
                Ok(stats
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| vec![r["0"].to_string()])
                    .collect()),
            ),
            (
                "dict of tensors with [-1, 1] cells",
                json!({"predictions": onnx.clone()}),
                s(&["variable"]),
                10,
                Ok(onnx["variable"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| vec![c[0].to_string()])
                    .collect()),
            ),
            (
                "list of lists",
                json!({"predictions": [[0.25, "a"], [0.75, "b"]]}),
                s(&["p", "label"]),
                2,
                Ok(vec![s(&["0.25", "a"]), s(&["0.75", "b"])]),
            ),
            (
                "unnamed DataFrame columns by position",
                json!({"predictions": [{"0": 1, "1": true}]}),
                s(&["output_0", "output_1"]),
                1,
                Ok(vec![s(&["1", "true"])]),
            ),
            (
                "null and NaN cells",
                json!({"predictions": [null, "NaN"]}),
                s(&["prediction"]),
                2,
                Ok(vec![s(&[""]), s(&["NaN"])]),
            ),
            (
                "a scalar for one row",
                json!({"predictions": 3}),
                s(&["prediction"]),
                1,
                Ok(vec![s(&["3"])]),
            ),
            (
                "too few predictions",
                json!({"predictions": [1]}),
                s(&["prediction"]),
                2,
                Err("1 predictions for 2 rows"),
            ),
            (
                "missing output in records",
                json!({"predictions": [{"a": 1, "b": 2}]}),
                s(&["probability", "band"]),
                1,
                Err("not the output \"probability\""),
            ),
            (
                "scalar rows for two outputs",
                json!({"predictions": [1]}),
                s(&["a", "b"]),
                1,
                Err("is one value"),
            ),
            (
                "wrong width",
                json!({"predictions": [[1, 2, 3]]}),
                s(&["a", "b"]),
                1,
                Err("has 3 values for the 2 outputs"),
            ),
            (
                "missing column",
                json!({"predictions": {"x": [1]}}),
                s(&["a", "b"]),
                1,
                Err("not the output \"a\""),
            ),
            (
                "a string",
                json!({"predictions": "x"}),
                s(&["a"]),
                2,
                Err("not a list"),
            ),
        ];
        for (name, reply, outputs, rows, want) in cases {
            match (predictions(reply, &outputs, rows), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        // The cells are the reference numbers exactly.
        let rows =
            predictions(json!({"predictions": xgb.clone()}), &s(&["prediction"]), 10).unwrap();
        for (r, want) in rows.iter().zip(xgb.as_array().unwrap()) {
            assert_eq!(r[0].parse::<f64>().unwrap(), want.as_f64().unwrap());
        }
    }

    #[test]
    fn python_json_non_numbers_become_strings() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "plain",
                r#"{"predictions": [1, 2]}"#,
                r#"{"predictions": [1, 2]}"#,
            ),
            (
                "nan and infinities",
                r#"[NaN, Infinity, -Infinity, 1]"#,
                r#"["NaN", "Infinity", "-Infinity", 1]"#,
            ),
            (
                "inside strings untouched",
                r#"["NaN", "a\"NaN", "Infinity"]"#,
                r#"["NaN", "a\"NaN", "Infinity"]"#,
            ),
            ("record values", r#"[{"NaN": NaN}]"#, r#"[{"NaN": "NaN"}]"#),
        ];
        for (name, input, want) in cases {
            let got = strict_json(input.as_bytes());
            assert_eq!(std::str::from_utf8(&got).unwrap(), *want, "{name}");
            serde_json::from_slice::<Value>(&got).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn server_errors_map_to_api_errors() {
        let cases: &[(&str, u16, &str, u16, &str)] = &[
            ("schema enforcement", 400, r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "Model is missing inputs ['age']"}"#,
                400, "Invalid scoring request due to: the MLflow model refused the rows: Model is missing inputs ['age']"),
            ("internal", 500, r#"{"error_code": "INTERNAL_ERROR", "message": "boom"}"#,
                500, "Failed scoring request due to: the MLflow scoring server answered 500 Internal Server Error: boom"),
            ("timeout", 504, "Request processing time exceeded limit", 503, "timed out: Request processing time exceeded limit"),
            ("unsupported media type is ours", 415, "bad content type", 500, "answered 415"),
        ];
        for (name, status, body, want_status, want) in cases {
            let e = server_error(StatusCode::from_u16(*status).unwrap(), body.as_bytes());
            assert_eq!(e.status.as_u16(), *want_status, "{name}");
            assert!(e.detail.contains(want), "{name}: {}", e.detail);
        }
    }

    #[test]
    fn python_versions_compare_by_major_minor() {
        let cases: &[(&str, Option<(u32, u32)>)] = &[
            ("3.11.7", Some((3, 11))),
            ("3.8", Some((3, 8))),
            ("3.10.12+", Some((3, 10))),
            ("3.12rc1", Some((3, 12))),
            ("3", None),
            ("python", None),
        ];
        for (v, want) in cases {
            assert_eq!(major_minor(v), *want, "{v}");
        }
    }

    #[test]
    fn the_serve_command_needs_port_and_model() {
        let mut cfg = BackendConfig::default();
        assert!(check(&cfg).is_ok(), "the default command");
        for (name, cmd, want) in [
            ("no port", "mlflow models serve -m {model}", "has no {port}"),
            (
                "no model",
                "mlflow models serve -p {port}",
                "has no {model}",
            ),
            (
                "unclosed quote",
                "'mlflow",
                "MLFLOW_SERVE_COMMAND: unclosed '",
            ),
        ] {
            cfg.mlflow_serve_command = cmd.into();
            let e = check(&cfg).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
