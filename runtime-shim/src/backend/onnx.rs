//! The `onnx` backend: ONNX models scored natively in process by ONNX Runtime, with no
//! Python.
//!
//! ONNX Runtime is loaded at start-up from a shared library (`ORT_DYLIB_PATH`, the `ort`
//! crate's convention; the onnxruntime wheel's `onnxruntime/capi/libonnxruntime.so.1.*`
//! is one), through the `ort` crate's `load-dynamic` mode, so nothing is downloaded at
//! build time and one binary works with any ONNX Runtime from the API version `ort` needs
//! on. A library that is missing, cannot be loaded (a static musl build cannot load any)
//! or is too old stops the start with exit code 2 and says what to install.
//!
//! The columns come from the graph by the rule the processor wrote the schema with
//! (`mlflow_model::onnx::schema`): the backend reads the graph of `model.onnx`, maps it,
//! and refuses a directory whose manifest says otherwise, or whose graph ONNX Runtime
//! sees differently. Sessions are created once, at load (`ONNX_SESSIONS` of them, each
//! with `ONNX_INTRA_OP_THREADS` threads); a request takes a free one. Every request, REST
//! or batch, goes through [`OnnxBackend::score`]: cells are parsed into one tensor per
//! graph input (a malformed cell is a 400 naming the row and column), the session runs
//! once for all rows (once per row for a graph whose batch size is fixed to 1), and each
//! output becomes cells: numbers spelled as Rust's `Display` spells them (the shortest
//! decimal that reads back as the same float32/float64), labels as text, a `ZipMap`'s
//! maps by class label.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use artifact_core::Manifest;
use axum::http::StatusCode;
use mlflow_model::onnx::graph::{read_model, Elem, Labels};
use mlflow_model::onnx::schema::{map_model, Batch, InputTensor, Mapping, OutputKind};
use mlflow_model::signature::Side;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

use super::{Backend, BackendConfig, BoxFuture};
use crate::api::{ApiError, Frame};

/// The model type this backend serves.
pub const MODEL_TYPE: &str = "onnx";
/// The library loaded when `ORT_DYLIB_PATH` is not set (found by the dynamic loader).
pub const DEFAULT_LIBRARY: &str = "libonnxruntime.so";
/// Requests with more cells than this are scored on the blocking pool.
const INLINE_MAX_CELLS: usize = 4096;

/// The ONNX Runtime environment: one per process, made when the library is loaded.
static ENVIRONMENT: OnceLock<Result<(ort::environment::Environment, String), String>> =
    OnceLock::new();

/// Loads ONNX Runtime (once per process) and returns its environment and version.
fn environment(
    cfg: &BackendConfig,
) -> Result<&'static (ort::environment::Environment, String), String> {
    ENVIRONMENT
        .get_or_init(|| init(cfg.onnx_runtime_lib.as_deref()))
        .as_ref()
        .map_err(Clone::clone)
}

fn init(lib: Option<&Path>) -> Result<(ort::environment::Environment, String), String> {
    let (path, how) = match lib {
        // ort resolves a relative path against the executable's folder: make it the
        // working directory's, as a user means it.
        Some(p) if p.is_relative() => (
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf()),
            "ORT_DYLIB_PATH",
        ),
        Some(p) => (p.to_path_buf(), "ORT_DYLIB_PATH"),
        None => (
            PathBuf::from(DEFAULT_LIBRARY),
            "the default (ORT_DYLIB_PATH is not set)",
        ),
    };
    let hint = "set ORT_DYLIB_PATH (or --onnx-runtime-lib) to ONNX Runtime's shared library, version 1.17 or later, for example onnxruntime/capi/libonnxruntime.so.1.32.0 of the onnxruntime wheel (pip install onnxruntime)";
    let musl = if cfg!(target_env = "musl") {
        "; this runtime-shim is a static (musl) build, which cannot load shared libraries: use a glibc build, such as the onnx-native-runtime image"
    } else {
        ""
    };
    if lib.is_some() && !path.exists() {
        return Err(format!(
            "ONNX Runtime library {} ({how}) does not exist; {hint}",
            path.display()
        ));
    }
    let builder = ort::init_from(&path).map_err(|e| {
        format!(
            "cannot load ONNX Runtime from {} ({how}): {e}{musl}; {hint}",
            path.display()
        )
    })?;
    let env = builder
        .with_name("runtime-shim")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("ONNX Runtime from {}: {e}", path.display()))?;
    let version =
        ort::util::probe(&path).map_or_else(|| "1.?".to_string(), |minor| format!("1.{minor}"));
    tracing::info!(library = %path.display(), version = %version, "ONNX Runtime loaded");
    Ok((env, version))
}

/// The settings check, before the port is bound: ONNX Runtime must load.
pub fn check(cfg: &BackendConfig) -> Result<(), String> {
    environment(cfg).map(|_| ())
}

/// A loaded ONNX model.
pub struct OnnxBackend {
    inner: Arc<Inner>,
    outputs: Vec<String>,
    description: String,
}

struct Inner {
    mapping: Mapping,
    /// Free sessions; `permits` counts them.
    sessions: Mutex<Vec<Session>>,
    permits: tokio::sync::Semaphore,
}

/// Loads `dir/<payload>`: checks the graph against the manifest, then creates the
/// sessions.
pub fn load(
    dir: &Path,
    manifest: &Manifest,
    cfg: &BackendConfig,
) -> Result<Box<dyn Backend>, String> {
    let (env, version) = environment(cfg)?;
    let path = dir.join(&manifest.payload);
    let file = std::fs::File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let model = read_model(&mut std::io::BufReader::with_capacity(1 << 16, file))
        .map_err(|e| format!("not a readable ONNX model: {e}"))?;
    let mapping = map_model(&model);
    if let Some(u) = mapping.unmapped.iter().find(|u| u.side == Side::Input) {
        return Err(format!(
            "graph input {:?} ({}) cannot be fed from columns: {}",
            u.name, u.onnx_type, u.reason
        ));
    }
    let columns = |c: Vec<artifact_core::Column>| {
        c.into_iter()
            .map(|c| format!("{} {}", c.name, c.ty.as_str()))
            .collect::<Vec<_>>()
    };
    let declared = |c: &[artifact_core::Column]| {
        c.iter()
            .map(|c| format!("{} {}", c.name, c.ty.as_str()))
            .collect::<Vec<_>>()
    };
    for (what, graph, manifest_cols) in [
        (
            "inputs",
            columns(mapping.input_columns()),
            declared(&manifest.input_schema),
        ),
        (
            "outputs",
            columns(mapping.output_columns()),
            declared(&manifest.output_schema),
        ),
    ] {
        if graph != manifest_cols {
            return Err(format!(
                "the graph's {what} map to columns [{}], but the manifest's schema lists [{}]: was the directory written by another version of the processor?",
                graph.join(", "),
                manifest_cols.join(", ")
            ));
        }
    }
    let sessions_wanted = cfg.onnx_sessions.max(1);
    let mut sessions = Vec::with_capacity(sessions_wanted);
    for _ in 0..sessions_wanted {
        let s = new_session(env, &path, cfg.onnx_intra_op_threads)?;
        agree(&s, &mapping)?;
        sessions.push(s);
    }
    let description = format!(
        "native ONNX Runtime {version} ({}; {} session(s), {} intra-op thread(s) each)",
        if model.producer.is_empty() {
            "unknown producer".to_string()
        } else {
            model.producer.clone()
        },
        sessions_wanted,
        if cfg.onnx_intra_op_threads == 0 {
            "default".to_string()
        } else {
            cfg.onnx_intra_op_threads.to_string()
        }
    );
    Ok(Box::new(OnnxBackend {
        outputs: mapping
            .output_columns()
            .into_iter()
            .map(|c| c.name)
            .collect(),
        inner: Arc::new(Inner {
            mapping,
            permits: tokio::sync::Semaphore::new(sessions.len()),
            sessions: Mutex::new(sessions),
        }),
        description,
    }))
}

fn new_session(
    env: &ort::environment::Environment,
    path: &Path,
    intra_op_threads: usize,
) -> Result<Session, String> {
    let err = |e: ort::Error<ort::session::builder::SessionBuilder>| {
        format!("ONNX Runtime cannot load {}: {e}", path.display())
    };
    let mut b = Session::builder(env)
        .map_err(|e| format!("ONNX Runtime session: {e}"))?
        .with_log_level(ort::logging::LogLevel::Warning)
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?;
    if intra_op_threads > 0 {
        b = b.with_intra_threads(intra_op_threads).map_err(err)?;
    }
    b.commit_from_file(path)
        .map_err(|e| format!("ONNX Runtime cannot load {}: {e}", path.display()))
}

/// The ONNX Runtime element type of a graph element type.
fn ort_elem(e: Elem) -> Option<TensorElementType> {
    Some(match e {
        Elem::Float => TensorElementType::Float32,
        Elem::Double => TensorElementType::Float64,
        Elem::Int8 => TensorElementType::Int8,
        Elem::Int16 => TensorElementType::Int16,
        Elem::Int32 => TensorElementType::Int32,
        Elem::Int64 => TensorElementType::Int64,
        Elem::Uint8 => TensorElementType::Uint8,
        Elem::Uint16 => TensorElementType::Uint16,
        Elem::Uint32 => TensorElementType::Uint32,
        Elem::Uint64 => TensorElementType::Uint64,
        Elem::Bool => TensorElementType::Bool,
        Elem::String => TensorElementType::String,
        Elem::Float16 => TensorElementType::Float16,
        Elem::Other(_) => return None,
    })
}

/// Checks that ONNX Runtime sees the graph as this backend read it: the same inputs, and
/// every mapped output, with the same element types.
fn agree(s: &Session, mapping: &Mapping) -> Result<(), String> {
    let mut ort_inputs: Vec<&str> = s.inputs().iter().map(|i| i.name()).collect();
    let mut ours: Vec<&str> = mapping.inputs.iter().map(|t| t.name.as_str()).collect();
    ort_inputs.sort_unstable();
    ours.sort_unstable();
    if ort_inputs != ours {
        return Err(format!(
            "ONNX Runtime lists the inputs {ort_inputs:?}, the graph {ours:?}"
        ));
    }
    for t in &mapping.inputs {
        let outlet = s
            .inputs()
            .iter()
            .find(|i| i.name() == t.name)
            .expect("same names");
        if outlet.dtype().tensor_type() != ort_elem(t.elem) {
            return Err(format!(
                "ONNX Runtime sees input {:?} as {:?}, the graph as {}",
                t.name,
                outlet.dtype(),
                t.elem.name()
            ));
        }
    }
    for t in &mapping.outputs {
        let outlet = s
            .outputs()
            .iter()
            .find(|o| o.name() == t.name)
            .ok_or_else(|| format!("ONNX Runtime has no output {:?}", t.name))?;
        let fits = match (&t.kind, outlet.dtype()) {
            (OutputKind::Tensor { elem, .. }, ValueType::Tensor { ty, .. }) => {
                ort_elem(*elem) == Some(*ty)
            }
            (OutputKind::ZipMap { .. }, ValueType::Sequence(inner)) => inner.is_map(),
            _ => false,
        };
        if !fits {
            return Err(format!(
                "ONNX Runtime sees output {:?} as {:?}, which does not fit its columns",
                t.name,
                outlet.dtype()
            ));
        }
    }
    Ok(())
}

impl Inner {
    /// Parses the cells of `frame` into one tensor per graph input (rows `rows`).
    fn feeds(
        &self,
        frame: &Frame,
        rows: std::ops::Range<usize>,
    ) -> Result<Vec<(String, DynValue)>, ApiError> {
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.mapping.inputs.len());
        for t in &self.mapping.inputs {
            out.push((t.name.clone(), tensor(t, frame, rows.clone(), offset)?));
            offset += t.width;
        }
        Ok(out)
    }

    /// Scores every row of `frame` with one free session.
    fn score_blocking(&self, frame: &Frame) -> Result<Vec<Vec<String>>, ApiError> {
        let mut session = self
            .sessions
            .lock()
            .expect("session pool")
            .pop()
            .expect("a permit means a free session");
        let result = self.score_with(&mut session, frame);
        self.sessions.lock().expect("session pool").push(session);
        result
    }

    fn score_with(&self, s: &mut Session, frame: &Frame) -> Result<Vec<Vec<String>>, ApiError> {
        let n = frame.len();
        let one_at_a_time = self.mapping.inputs.iter().any(|t| t.batch == Batch::One)
            || self.mapping.outputs.iter().any(|t| t.batch == Batch::One);
        let chunks: Vec<std::ops::Range<usize>> = if one_at_a_time {
            (0..n).map(|r| r..r + 1).collect()
        } else {
            std::iter::once(0..n).collect()
        };
        let mut rows = Vec::with_capacity(n);
        for range in chunks {
            let feeds = self.feeds(frame, range.clone())?;
            let inputs: Vec<(String, SessionInputValue)> = feeds
                .into_iter()
                .map(|(name, v)| (name, SessionInputValue::from(v)))
                .collect();
            let outputs = s.run(inputs).map_err(|e| {
                ApiError::failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "ONNX Runtime failed on rows {}..{}: {e}",
                        range.start, range.end
                    ),
                )
            })?;
            let mut cells: Vec<Vec<String>> = (0..range.len())
                .map(|_| Vec::with_capacity(self.mapping.output_columns().len()))
                .collect();
            for t in &self.mapping.outputs {
                let v = outputs.get(&t.name).ok_or_else(|| {
                    ApiError::failed(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("ONNX Runtime returned no output {:?}", t.name),
                    )
                })?;
                output_cells(&t.name, &t.kind, v, &mut cells)?;
            }
            rows.extend(cells);
        }
        Ok(rows)
    }
}

impl Backend for OnnxBackend {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["SCORE".to_string()]
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        // Sessions are made at load; nothing can become unready after it.
        Box::pin(std::future::ready(true))
    }

    fn score(&self, frame: Arc<Frame>) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let permit = inner.permits.acquire().await.map_err(|e| {
                ApiError::failed(StatusCode::SERVICE_UNAVAILABLE, format!("no session: {e}"))
            })?;
            let result = if frame.len() * frame.width().max(1) <= INLINE_MAX_CELLS {
                inner.score_blocking(&frame)
            } else {
                let inner = Arc::clone(&inner);
                tokio::task::spawn_blocking(move || inner.score_blocking(&frame))
                    .await
                    .map_err(|e| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, e))?
            };
            drop(permit);
            result
        })
    }
}

// ------------------------------------------------------------------ cells to tensors

/// 400 for row `r` (frame index), column `col`.
fn bad_cell(frame: &Frame, r: usize, col: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!(
        "row {} (zero-indexed): column {col:?}: {what}",
        frame.row_number(r)
    ))
}

/// The cells of `t`'s columns (model inputs `offset..offset + width`) in `rows`, row
/// major, parsed by `parse` (`None`: missing).
fn values<T>(
    t: &InputTensor,
    frame: &Frame,
    rows: std::ops::Range<usize>,
    offset: usize,
    parse: impl Fn(Option<&str>) -> Result<T, String>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::with_capacity(rows.len() * t.width);
    for r in rows {
        for j in 0..t.width {
            let cell = frame.cell(r, offset + j);
            out.push(parse(cell).map_err(|e| bad_cell(frame, r, &t.columns[j].name, e))?);
        }
    }
    Ok(out)
}

fn shape(t: &InputTensor, n: usize) -> Vec<i64> {
    if t.rank == 1 {
        vec![n as i64]
    } else {
        vec![n as i64, t.width as i64]
    }
}

/// A number cell: `None` (missing) is NaN.
fn float<T: std::str::FromStr + From<f32>>(cell: Option<&str>) -> Result<T, String> {
    match cell {
        None => Ok(T::from(f32::NAN)),
        Some(s) => s
            .trim()
            .parse::<T>()
            .map_err(|_| format!("{s:?} is not a number")),
    }
}

/// An integer cell, in `min..=max`: `7`, or a number with no fraction (`7.0`, `7e0`).
fn integer(cell: Option<&str>, min: i128, max: i128, ty: &str) -> Result<i128, String> {
    let s = cell.ok_or_else(|| format!("a missing value, which an {ty} input cannot hold"))?;
    let t = s.trim();
    let v = match t.parse::<i128>() {
        Ok(v) => v,
        Err(_) => match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e38 => f as i128,
            _ => return Err(format!("{s:?} is not an integer")),
        },
    };
    if v < min || v > max {
        return Err(format!("{s:?} is outside the range of {ty}"));
    }
    Ok(v)
}

fn boolean(cell: Option<&str>) -> Result<bool, String> {
    let s = cell.ok_or("a missing value, which a bool input cannot hold")?;
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (true, false, 1 or 0)")),
    }
}

fn ort_err(e: ort::Error) -> ApiError {
    ApiError::failed(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("ONNX Runtime: {e}"),
    )
}

/// The tensor of graph input `t` for `rows` of `frame`.
fn tensor(
    t: &InputTensor,
    frame: &Frame,
    rows: std::ops::Range<usize>,
    offset: usize,
) -> Result<DynValue, ApiError> {
    let shape = shape(t, rows.len());
    macro_rules! ints {
        ($ty:ty, $name:expr) => {{
            let v = values(t, frame, rows, offset, |c| {
                integer(c, <$ty>::MIN as i128, <$ty>::MAX as i128, $name).map(|v| v as $ty)
            })?;
            Tensor::from_array((shape, v)).map_err(ort_err)?.into_dyn()
        }};
    }
    Ok(match t.elem {
        Elem::Float => {
            let v = values(t, frame, rows, offset, float::<f32>)?;
            Tensor::from_array((shape, v)).map_err(ort_err)?.into_dyn()
        }
        Elem::Double => {
            let v = values(t, frame, rows, offset, float::<f64>)?;
            Tensor::from_array((shape, v)).map_err(ort_err)?.into_dyn()
        }
        Elem::Int8 => ints!(i8, "int8"),
        Elem::Int16 => ints!(i16, "int16"),
        Elem::Int32 => ints!(i32, "int32"),
        Elem::Int64 => ints!(i64, "int64"),
        Elem::Uint8 => ints!(u8, "uint8"),
        Elem::Uint16 => ints!(u16, "uint16"),
        Elem::Uint32 => ints!(u32, "uint32"),
        Elem::Bool => {
            let v = values(t, frame, rows, offset, boolean)?;
            Tensor::from_array((shape, v)).map_err(ort_err)?.into_dyn()
        }
        Elem::String => {
            // A missing string is the empty string.
            let v = values(t, frame, rows, offset, |c| {
                let s = c.unwrap_or("");
                if s.contains('\0') {
                    Err("a NUL character, which an ONNX string cannot hold".to_string())
                } else {
                    Ok(s.to_string())
                }
            })?;
            Tensor::from_string_array((shape, &v[..]))
                .map_err(ort_err)?
                .into_dyn()
        }
        other => {
            return Err(ApiError::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("input {:?} of type {} cannot be fed", t.name, other.name()),
            ))
        }
    })
}

// ------------------------------------------------------------------ outputs to cells

fn f32_cell(v: f32) -> String {
    format!("{v}")
}

fn f64_cell(v: f64) -> String {
    format!("{v}")
}

fn bad_output(name: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::failed(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("output {name:?}: {what}"),
    )
}

/// Appends output `name`'s cells to each row of `cells`.
fn output_cells(
    name: &str,
    kind: &OutputKind,
    v: &DynValue,
    cells: &mut [Vec<String>],
) -> Result<(), ApiError> {
    let n = cells.len();
    match kind {
        OutputKind::Tensor { elem, width, .. } => {
            let width = *width;
            macro_rules! put {
                ($ty:ty, $fmt:expr) => {{
                    let (shape, data) = v
                        .try_extract_tensor::<$ty>()
                        .map_err(|e| bad_output(name, e))?;
                    if data.len() != n * width {
                        return Err(bad_output(
                            name,
                            format!("shape {shape:?} for {n} rows of {width} values"),
                        ));
                    }
                    for (row, chunk) in cells.iter_mut().zip(data.chunks_exact(width.max(1))) {
                        row.extend(chunk.iter().map($fmt));
                    }
                }};
            }
            match elem {
                Elem::Float => put!(f32, |x: &f32| f32_cell(*x)),
                Elem::Double => put!(f64, |x: &f64| f64_cell(*x)),
                Elem::Int8 => put!(i8, |x: &i8| x.to_string()),
                Elem::Int16 => put!(i16, |x: &i16| x.to_string()),
                Elem::Int32 => put!(i32, |x: &i32| x.to_string()),
                Elem::Int64 => put!(i64, |x: &i64| x.to_string()),
                Elem::Uint8 => put!(u8, |x: &u8| x.to_string()),
                Elem::Uint16 => put!(u16, |x: &u16| x.to_string()),
                Elem::Uint32 => put!(u32, |x: &u32| x.to_string()),
                Elem::Bool => put!(bool, |x: &bool| x.to_string()),
                Elem::String => {
                    let (shape, data) = v.try_extract_strings().map_err(|e| bad_output(name, e))?;
                    if data.len() != n * width {
                        return Err(bad_output(
                            name,
                            format!("shape {shape:?} for {n} rows of {width} values"),
                        ));
                    }
                    let mut it = data.into_iter();
                    for row in cells.iter_mut() {
                        row.extend(it.by_ref().take(width));
                    }
                }
                other => return Err(bad_output(name, format!("type {}", other.name()))),
            }
        }
        OutputKind::ZipMap { value, labels, .. } => {
            let maps = v
                .try_extract_sequence::<ort::value::DynMapValueType>()
                .map_err(|e| bad_output(name, e))?;
            if maps.len() != n {
                return Err(bad_output(
                    name,
                    format!("{} maps for {n} rows", maps.len()),
                ));
            }
            // One row's map, its values in class-label order.
            macro_rules! rows {
                ($k:ty, $v:ty, $keys:expr, $fmt:expr) => {
                    for (row, map) in cells.iter_mut().zip(&maps) {
                        let kv = map
                            .try_extract_key_values::<$k, $v>()
                            .map_err(|e| bad_output(name, e))?;
                        by_label(name, $keys, &kv, row, $fmt)?;
                    }
                };
            }
            match (labels, value) {
                (Labels::Int64(k), Elem::Float) => rows!(i64, f32, k, |x: &f32| f32_cell(*x)),
                (Labels::Strings(k), Elem::Float) => rows!(String, f32, k, |x: &f32| f32_cell(*x)),
                (Labels::Int64(k), Elem::Double) => rows!(i64, f64, k, |x: &f64| f64_cell(*x)),
                (Labels::Strings(k), Elem::Double) => rows!(String, f64, k, |x: &f64| f64_cell(*x)),
                (_, other) => {
                    return Err(bad_output(
                        name,
                        format!("map values of type {}", other.name()),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// One row's map values in class-label order.
fn by_label<K: PartialEq + std::fmt::Debug, V>(
    name: &str,
    labels: &[K],
    kv: &[(K, V)],
    row: &mut Vec<String>,
    fmt: impl Fn(&V) -> String,
) -> Result<(), ApiError> {
    for label in labels {
        let v = kv
            .iter()
            .find(|(k, _)| k == label)
            .ok_or_else(|| bad_output(name, format!("a map without the class {label:?}")))?;
        row.push(fmt(&v.1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse_by_input_type() {
        assert_eq!(float::<f32>(Some("0.1")), Ok(0.1f32));
        assert!(float::<f32>(None).unwrap().is_nan());
        assert!(float::<f64>(Some("NaN")).unwrap().is_nan());
        assert_eq!(float::<f64>(Some(" -2.5e3 ")), Ok(-2500.0));
        assert_eq!(float::<f32>(Some("x")), Err("\"x\" is not a number".into()));
        assert_eq!(integer(Some("7"), 0, 10, "uint8"), Ok(7));
        assert_eq!(integer(Some("7.0"), 0, 10, "uint8"), Ok(7));
        assert_eq!(
            integer(Some("-1"), 0, 10, "uint8"),
            Err("\"-1\" is outside the range of uint8".into())
        );
        assert_eq!(
            integer(Some("7.5"), 0, 10, "uint8"),
            Err("\"7.5\" is not an integer".into())
        );
        assert!(integer(None, 0, 10, "int64")
            .unwrap_err()
            .contains("missing"));
        assert_eq!(
            integer(
                Some("9223372036854775807"),
                i64::MIN as i128,
                i64::MAX as i128,
                "int64"
            ),
            Ok(i64::MAX as i128)
        );
        assert_eq!(boolean(Some("TRUE")), Ok(true));
        assert_eq!(boolean(Some("0")), Ok(false));
        assert!(boolean(Some("yes")).is_err());
    }

    #[test]
    fn numbers_are_the_shortest_decimal() {
        assert_eq!(f32_cell(0.1), "0.1");
        assert_eq!(f32_cell(0.17376947), "0.17376947");
        assert_eq!(f32_cell(1e-7), "0.0000001");
        assert_eq!(f32_cell(f32::NAN), "NaN");
        assert_eq!(f64_cell(7.215646266937256), "7.215646266937256");
        assert_eq!(f64_cell(f64::NEG_INFINITY), "-inf");
    }
}
