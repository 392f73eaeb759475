//! From the files of a model to its description: `MLmodel`, signature and schema, file
//! references, ONNX external data, environment, registry metadata and pickle risk, and
//! the payload plan of the chosen model type. Shared by `inspect` and `process`, so both
//! accept and refuse exactly the same models and describe them identically.

use std::collections::BTreeMap;
use std::path::Path;

use artifact_core::{Column, ModelDescription, SourceInfo};
use serde_json::{json, Map, Value};

use crate::error::MlflowError;
use crate::layout::{ModelFiles, MLMODEL};
use crate::mlmodel::{MlModel, PYFUNC};
use crate::onnx::graph::OnnxModel;
use crate::onnx::schema as onnx_columns;
use crate::reader::{ModelReader, Text, MAX_TEXT_BYTES};
use crate::signature::{self, Side, SigColumn};
use crate::{MlflowArgs, ModelType};

/// Folder name of the pyfunc payload in the target.
pub const PYFUNC_PAYLOAD: &str = "model";
/// File name of the ONNX payload in the target.
pub const ONNX_PAYLOAD: &str = "model.onnx";
/// File name of the H2O-3 MOJO payload in the target (as the `h2o3/mojo` processor
/// writes it).
pub const MOJO_PAYLOAD: &str = "model.mojo";
/// The flavor `h2o_mlflow_flavor` saves H2O-3 models with.
pub const H2O_FLAVOR: &str = "h2o_mojo_pojo";

/// Flavor keys whose value is a path relative to the model folder.
const PATH_KEYS: &[&str] = &[
    "data",
    "model_path",
    "pickled_model",
    "model_data",
    "saved_model_dir",
    "code",
    "python_model",
    "model_code_path",
];

/// Where the payload files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The whole model folder becomes `model/`.
    Folder,
    /// These files (model-relative path → target-relative path) and nothing else.
    Files(Vec<(String, String)>),
}

/// Everything a run needs to know about a model.
pub struct Analysis {
    pub description: ModelDescription,
    pub plan: Plan,
    /// For the `h2o3_mojo` model type: the model-relative path of the wrapped MOJO, whose
    /// own loader gives the schema (see `crate::wrapped`).
    pub wrapped_mojo: Option<String>,
}

struct Ctx<'a> {
    path: &'a Path,
    root: &'a str,
    files: &'a ModelFiles,
    reader: &'a dyn ModelReader,
}

impl Ctx<'_> {
    /// The name of a model file as it appears in the source.
    fn shown(&self, rel: &str) -> String {
        if self.root.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.root)
        }
    }

    /// A text file of the model; `None` when it is absent (or, for `inspect`, not kept).
    fn text(&self, rel: &str, what: &'static str) -> Result<Option<String>, MlflowError> {
        if !self.files.is_file(rel) {
            return Ok(None);
        }
        match self.reader.text(rel)? {
            Text::Data(d) => String::from_utf8(d)
                .map(Some)
                .map_err(|e| MlflowError::Invalid {
                    path: self.path.to_path_buf(),
                    file: self.shown(rel),
                    key: "(file)".into(),
                    detail: format!(
                        "not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                }),
            Text::TooLarge(size) => Err(MlflowError::TooLarge {
                path: self.path.to_path_buf(),
                file: self.shown(rel),
                what,
                size,
                limit: MAX_TEXT_BYTES,
            }),
            Text::NotKept => {
                tracing::warn!(file = %self.shown(rel), "not read by inspect (memory budget); process reads it");
                Ok(None)
            }
        }
    }

    fn yaml(&self, rel: &str, what: &'static str) -> Result<Option<Value>, MlflowError> {
        let Some(text) = self.text(rel, what)? else {
            return Ok(None);
        };
        crate::yaml::parse(text.as_bytes())
            .map(Some)
            .map_err(|detail| MlflowError::Yaml {
                path: self.path.to_path_buf(),
                file: self.shown(rel),
                detail,
            })
    }

    fn invalid(&self, rel: &str, key: impl Into<String>, detail: impl Into<String>) -> MlflowError {
        MlflowError::Invalid {
            path: self.path.to_path_buf(),
            file: self.shown(rel),
            key: key.into(),
            detail: detail.into(),
        }
    }

    /// Checks that a referenced path is safe and present; returns it normalized.
    fn reference(&self, key: &str, reference: &str) -> Result<String, MlflowError> {
        let norm = artifact_core::names::normalize_entry_name(
            reference,
            &artifact_core::Limits::default(),
        )
        .map_err(|reason| MlflowError::UnsafeReference {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reference: reference.to_string(),
            reason,
        })?;
        if self.files.is_file(&norm) || self.files.is_dir(&norm) {
            return Ok(norm);
        }
        let lower = norm.to_lowercase();
        let hint = self
            .files
            .files
            .keys()
            .chain(self.files.dirs.iter())
            .find(|p| p.to_lowercase() == lower)
            .map(|p| format!("the model has {p:?}; names are case-sensitive"));
        Err(MlflowError::MissingReference {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reference: reference.to_string(),
            hint,
        })
    }
}

/// Reads and checks the model under `root` and describes it for `args.model_type`.
pub fn analyze(
    path: &Path,
    source: &SourceInfo,
    root: &str,
    files: &ModelFiles,
    reader: &dyn ModelReader,
    args: &MlflowArgs,
) -> Result<Analysis, MlflowError> {
    let cx = Ctx {
        path,
        root,
        files,
        reader,
    };

    // MLmodel
    let doc = cx
        .yaml(MLMODEL, "MLmodel file")?
        .ok_or_else(|| cx.invalid(MLMODEL, "(file)", "not read"))?;
    let m = MlModel::from_value(doc).map_err(|e| cx.invalid(MLMODEL, e.key, e.detail))?;

    // Signature JSON strings, parsed before anything is judged on them.
    let sig = match &m.signature {
        None => None,
        Some(s) => Some(parse_signature(&cx, s)?),
    };

    // Model type availability.
    let flavor_list = m.flavor_names().join(", ");
    let onnx_data = match m.flavor("onnx") {
        Some(conf) => match conf.get("data") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(cx.invalid(
                    MLMODEL,
                    "flavors.onnx.data",
                    format!(
                        "expected the name of the .onnx file, found {}",
                        crate::yaml::kind(other)
                    ),
                ))
            }
            None => {
                return Err(cx.invalid(
                    MLMODEL,
                    "flavors.onnx.data",
                    "missing: the onnx flavor must name its .onnx file",
                ))
            }
        },
        None => None,
    };
    let h2o_mojo = h2o_mojo_file(&m);
    match args.model_type {
        ModelType::H2o3Mojo => {
            if let Err(why) = &h2o_mojo {
                return Err(MlflowError::ModelTypeUnavailable {
                    path: path.to_path_buf(),
                    model_type: args.model_type.name().into(),
                    detail: format!(
                        "{why} (flavors: {}); the h2o3_mojo model type needs an H2O-3 MOJO saved with h2o_mlflow_flavor (`h2o_mlflow_flavor.save_model(model, path, model_type=\"MOJO\")`)",
                        if flavor_list.is_empty() { "none" } else { &flavor_list },
                    ),
                });
            }
        }
        ModelType::MlflowPyfunc if m.pyfunc.is_none() => {
            return Err(MlflowError::ModelTypeUnavailable {
                path: path.to_path_buf(),
                model_type: args.model_type.name().into(),
                detail: format!(
                    "MLmodel has no python_function flavor (flavors: {}){}",
                    if flavor_list.is_empty() { "none" } else { &flavor_list },
                    if onnx_data.is_some() {
                        "; it has an onnx flavor: pass --model-type onnx"
                    } else {
                        "; only pyfunc models can be served as mlflow_pyfunc"
                    }
                ),
            })
        }
        ModelType::Onnx if onnx_data.is_none() => {
            return Err(MlflowError::ModelTypeUnavailable {
                path: path.to_path_buf(),
                model_type: args.model_type.name().into(),
                detail: format!(
                    "MLmodel has no onnx flavor (flavors: {}); the onnx model type needs a model saved with mlflow.onnx",
                    if flavor_list.is_empty() { "none" } else { &flavor_list },
                ),
            })
        }
        _ => {}
    }

    // Every file the MLmodel names.
    check_references(&cx, &m)?;

    // ONNX model file, its external data and its graph's interface.
    let mut onnx_external = Vec::new();
    let mut onnx_model = None;
    if let Some(data) = &onnx_data {
        let rel = cx.reference("flavors.onnx.data", data)?;
        if !files.is_file(&rel) {
            return Err(MlflowError::Onnx {
                path: path.to_path_buf(),
                file: cx.shown(&rel),
                detail: "flavors.onnx.data names a folder, expected the .onnx file".into(),
            });
        }
        if crate::reader::is_onnx(&rel) {
            let (model, external) = onnx_scan(&cx, &rel)?;
            onnx_external = external;
            onnx_model = Some((rel.clone(), model));
        } else if args.model_type == ModelType::Onnx {
            return Err(MlflowError::Onnx {
                path: path.to_path_buf(),
                file: cx.shown(&rel),
                detail: "flavors.onnx.data does not name a .onnx file".into(),
            });
        }
    }

    // Schema. A wrapped MOJO is described by its own loader, later; the signature stays
    // in `metadata.mlmodel`.
    let mut metadata = Map::new();
    let (schema_known, input_schema, output_schema) = match (args.model_type, &onnx_model) {
        (ModelType::H2o3Mojo, _) => (true, Vec::new(), Vec::new()),
        (ModelType::Onnx, Some((rel, model))) => {
            onnx_schema(&cx, rel, model, sig.as_ref(), args, &mut metadata)?
        }
        _ => schema(&cx, sig.as_ref(), args, &mut metadata)?,
    };
    if let Some(params) = sig.as_ref().and_then(|s| s.params.clone()) {
        metadata.insert("signature_params".into(), params);
    }

    // Environment.
    let env = read_env(&cx, &m)?;
    let python_version = m
        .pyfunc
        .as_ref()
        .and_then(|p| p.python_version.clone())
        .or_else(|| env.python_version.clone());

    // Registry metadata.
    if let Some(meta) = cx.yaml("registered_model_meta", "registered_model_meta file")? {
        let obj = meta.as_object().ok_or_else(|| {
            cx.invalid(
                "registered_model_meta",
                "(document)",
                format!(
                    "expected a map {{model_name, model_version}}, found {}",
                    crate::yaml::kind(&meta)
                ),
            )
        })?;
        for (key, out) in [
            ("model_name", "source_model_name"),
            ("model_version", "source_model_version"),
        ] {
            if let Some(v) = obj.get(key) {
                if let Some(s) = crate::yaml::scalar(v)
                    .map_err(|d| cx.invalid("registered_model_meta", key, d))?
                {
                    metadata.insert(out.into(), Value::String(s));
                }
            }
        }
    }

    // Payload plan.
    let mut wrapped_mojo = None;
    let (payload, plan) = match args.model_type {
        ModelType::MlflowPyfunc => (PYFUNC_PAYLOAD.to_string(), Plan::Folder),
        ModelType::H2o3Mojo => {
            let file = h2o_mojo.as_ref().expect("checked above");
            let rel = cx.reference(&format!("flavors.{H2O_FLAVOR}.model_file"), file)?;
            if !files.is_file(&rel) {
                return Err(cx.invalid(
                    MLMODEL,
                    format!("flavors.{H2O_FLAVOR}.model_file"),
                    format!("{rel:?} is a folder; expected the MOJO zip"),
                ));
            }
            wrapped_mojo = Some(rel.clone());
            (
                MOJO_PAYLOAD.to_string(),
                Plan::Files(vec![(rel, MOJO_PAYLOAD.to_string())]),
            )
        }
        ModelType::Onnx => {
            let rel = cx.reference(
                "flavors.onnx.data",
                onnx_data.as_deref().expect("checked above"),
            )?;
            let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let mut moves = vec![(rel.clone(), ONNX_PAYLOAD.to_string())];
            for loc in &onnx_external {
                let src = if dir.is_empty() {
                    loc.clone()
                } else {
                    format!("{dir}/{loc}")
                };
                moves.push((src, loc.clone()));
            }
            (ONNX_PAYLOAD.to_string(), Plan::Files(moves))
        }
    };

    // Pickle risk of what the runtime will load.
    let code = crate::risk::code_files(&m, files);
    let risk = match &plan {
        Plan::Folder => crate::risk::summary(&code, |p| Some(format!("{PYFUNC_PAYLOAD}/{p}"))),
        Plan::Files(moves) => crate::risk::summary(&code, |p| {
            moves.iter().find(|(s, _)| s == p).map(|(_, d)| d.clone())
        }),
    };
    metadata.insert("pickle_risk".into(), risk);

    // Metadata.
    metadata.insert("flavors".into(), json!(m.flavor_names()));
    if let Some(p) = &m.pyfunc {
        metadata.insert("loader_module".into(), json!(p.loader_module));
        metadata.insert(
            "mlflow/flavors/python_function/loader_module".into(),
            json!(p.loader_module),
        );
    }
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            metadata.insert(k.into(), json!(v));
        }
    };
    put("python_version", &python_version);
    put("mlflow_version", &m.mlflow_version);
    put("model_uuid", &m.model_uuid);
    put("utc_time_created", &m.utc_time_created);
    put("run_id", &m.run_id);
    put("artifact_path", &m.artifact_path);
    put("model_id", &m.model_id);
    put("requirements_file", &env.requirements_file);
    metadata.insert("requirements".into(), json!(env.requirements));
    if let Some(v) = &env.python_env {
        metadata.insert("python_env".into(), v.clone());
    }
    if let Some(v) = &env.conda_env {
        metadata.insert("conda_env".into(), v.clone());
    }
    for (k, v) in flavor_versions(&m) {
        metadata.entry(k).or_insert(Value::String(v));
    }
    // Input examples travel with the pyfunc folder only; paths relative to the model directory.
    if let (Some(info), Plan::Folder) = (&m.input_example, &plan) {
        for (key, out) in [
            ("artifact_path", "input_example_file"),
            ("serving_input_path", "serving_input_example_file"),
        ] {
            if let Some(p) = info.get(key).and_then(Value::as_str) {
                let p = cx.reference(&format!("saved_input_example_info.{key}"), p)?;
                metadata.insert(out.into(), json!(format!("{PYFUNC_PAYLOAD}/{p}")));
            }
        }
    }
    if !onnx_external.is_empty() {
        metadata.insert("onnx_external_data".into(), json!(onnx_external));
    }
    if !root.is_empty() {
        metadata.insert("source_model_folder".into(), json!(root));
    }
    metadata.insert("model_files_bytes".into(), json!(files.total_size()));
    metadata.insert("mlmodel".into(), Value::Object(m.raw.clone()));

    let id = m
        .model_uuid
        .clone()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| source.sha256.chars().take(32).collect());

    Ok(Analysis {
        description: ModelDescription {
            id,
            artifact_type: crate::ARTIFACT_TYPE.into(),
            model_type: args.model_type.name().into(),
            source: source.clone(),
            payload,
            schema_known,
            input_schema,
            output_schema,
            capabilities: vec!["SCORE".into()],
            metadata,
        },
        plan,
        wrapped_mojo,
    })
}

/// The MOJO file an `h2o_mojo_pojo` flavor names (`model_file`, with `model_type: MOJO`),
/// or why the model has none (only an error for the `h2o3_mojo` model type).
fn h2o_mojo_file(m: &MlModel) -> Result<String, String> {
    let conf = m
        .flavor(H2O_FLAVOR)
        .ok_or_else(|| format!("MLmodel has no {H2O_FLAVOR} flavor"))?;
    let string = |k: &str| -> Result<Option<String>, String> {
        conf.get(k)
            .map_or(Ok(None), crate::yaml::scalar)
            .map_err(|d| format!("flavors.{H2O_FLAVOR}.{k}: {d}"))
    };
    match string("model_type")?.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("MOJO") => {}
        Some(t) if t.eq_ignore_ascii_case("POJO") => {
            return Err(format!(
                "the {H2O_FLAVOR} flavor holds a POJO (model_type: {t}), Java source that only a JVM can run; save the model with model_type=\"MOJO\""
            ))
        }
        other => {
            return Err(format!(
                "flavors.{H2O_FLAVOR}.model_type: expected MOJO or POJO, found {other:?}"
            ))
        }
    }
    string("model_file")?.ok_or_else(|| {
        format!("flavors.{H2O_FLAVOR}.model_file is missing: the flavor must name its MOJO file")
    })
}

/// The parsed signature strings.
struct Signature {
    inputs: Option<Vec<SigColumn>>,
    outputs: Option<Vec<SigColumn>>,
    params: Option<Value>,
}

fn sig_string<'v>(
    cx: &Ctx,
    s: &'v Map<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, MlflowError> {
    match s.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => Ok(Some(t)),
        Some(other) => Err(MlflowError::SignatureJson {
            path: cx.path.to_path_buf(),
            file: cx.shown(MLMODEL),
            key: format!("signature.{key}"),
            detail: format!(
                "expected JSON text (MLflow writes the schema as a JSON string), found {}",
                crate::yaml::kind(other)
            ),
        }),
    }
}

fn parse_signature(cx: &Ctx, s: &Map<String, Value>) -> Result<Signature, MlflowError> {
    let err = |key: &str, detail: String| MlflowError::SignatureJson {
        path: cx.path.to_path_buf(),
        file: cx.shown(MLMODEL),
        key: format!("signature.{key}"),
        detail,
    };
    let mut sides = Vec::new();
    for (key, side) in [("inputs", Side::Input), ("outputs", Side::Output)] {
        sides.push(match sig_string(cx, s, key)? {
            None => None,
            Some(t) => Some(signature::parse_schema(t, side).map_err(|d| err(key, d))?),
        });
    }
    let params = match sig_string(cx, s, "params")? {
        None => None,
        Some(t) => Some(signature::parse_params(t).map_err(|d| err("params", d))?),
    };
    let outputs = sides.pop().expect("two sides");
    let inputs = sides.pop().expect("two sides");
    Ok(Signature {
        inputs,
        outputs,
        params,
    })
}

/// Applies the schema policy: returns (schema_known, inputs, outputs).
fn schema(
    cx: &Ctx,
    sig: Option<&Signature>,
    args: &MlflowArgs,
    metadata: &mut Map<String, Value>,
) -> Result<(bool, Vec<Column>, Vec<Column>), MlflowError> {
    let missing = match sig {
        None => Some("MLmodel has no signature".to_string()),
        Some(s) => match (&s.inputs, &s.outputs) {
            (None, None) => Some("the MLmodel signature has neither inputs nor outputs".into()),
            (None, _) => Some("the MLmodel signature has no inputs".into()),
            (_, None) => Some("the MLmodel signature has no outputs".into()),
            _ => None,
        },
    };
    if let Some(detail) = &missing {
        if !args.allow_no_signature {
            return Err(MlflowError::NoSignature {
                path: cx.path.to_path_buf(),
                detail: detail.clone(),
            });
        }
        tracing::warn!(%detail, "--allow-no-signature: the schema is recorded as unknown");
        metadata.insert("schema_unknown_reason".into(), json!(detail));
    }
    let mut unmapped = Vec::new();
    let mut unmapped_meta = Vec::new();
    let mut sides = Vec::new();
    for (side, cols) in [
        (Side::Input, sig.and_then(|s| s.inputs.as_ref())),
        (Side::Output, sig.and_then(|s| s.outputs.as_ref())),
    ] {
        let mut out = Vec::new();
        for c in cols.into_iter().flatten() {
            match &c.mapped {
                Ok(ty) => out.extend(c.columns.iter().map(|n| Column::new(n.clone(), *ty))),
                Err(reason) => {
                    unmapped.push(format!(
                        "{} column {:?} ({}): {reason}",
                        side.as_str(),
                        c.name,
                        c.mlflow_type
                    ));
                    unmapped_meta.push(json!({
                        "side": side.as_str(),
                        "name": c.name,
                        "mlflow_type": c.mlflow_type,
                        "mlflow_spec": c.spec,
                        "reason": reason,
                    }));
                }
            }
        }
        sides.push(out);
    }
    if !unmapped.is_empty() {
        if !args.allow_unmapped_types {
            return Err(MlflowError::UnmappedColumns {
                path: cx.path.to_path_buf(),
                columns: unmapped,
            });
        }
        tracing::warn!(
            columns = unmapped.len(),
            "--allow-unmapped-types: columns left out of the schema"
        );
        metadata.insert("unmapped_columns".into(), Value::Array(unmapped_meta));
    }
    let outputs = sides.pop().expect("two sides");
    let inputs = sides.pop().expect("two sides");
    // Where the columns of a tensor signature come from: the tensors, their shapes and
    // dtypes, and the request MLflow takes them in.
    let mut tensors = Map::new();
    for (key, cols) in [
        ("inputs", sig.and_then(|s| s.inputs.as_deref())),
        ("outputs", sig.and_then(|s| s.outputs.as_deref())),
    ] {
        if let Some(t) = cols.and_then(signature::tensor_columns) {
            if key == "inputs" {
                tensors.insert(
                    "request_format".into(),
                    json!(signature::TENSOR_REQUEST_FORMAT),
                );
            }
            tensors.insert(
                key.into(),
                Value::Array(t.iter().map(signature::TensorColumns::to_json).collect()),
            );
        }
    }
    if !tensors.is_empty() {
        metadata.insert("tensor_signature".into(), Value::Object(tensors));
    }
    let known = missing.is_none() && unmapped.is_empty();
    metadata.insert(
        "schema_source".into(),
        json!(if sig.is_some() { "signature" } else { "none" }),
    );
    Ok((known, inputs, outputs))
}

/// Checks every path the MLmodel names.
fn check_references(cx: &Ctx, m: &MlModel) -> Result<(), MlflowError> {
    for (flavor, conf) in &m.flavors {
        let Some(conf) = conf.as_object() else {
            continue;
        };
        for key in PATH_KEYS {
            if let Some(Value::String(p)) = conf.get(*key) {
                cx.reference(&format!("flavors.{flavor}.{key}"), p)?;
            }
        }
        if let Some(Value::Object(arts)) = conf.get("artifacts") {
            for (name, a) in arts {
                // `uri` is where the artifact was on the saving machine; only `path` is relative.
                if let Some(Value::String(p)) = a.get("path") {
                    cx.reference(&format!("flavors.{flavor}.artifacts.{name}.path"), p)?;
                }
            }
        }
        if let Some(Value::Array(extra)) = conf.get("extra_files") {
            for (i, e) in extra.iter().enumerate() {
                if let Some(Value::String(p)) = e.get("path") {
                    cx.reference(&format!("flavors.{flavor}.extra_files[{i}].path"), p)?;
                }
            }
        }
        if let Some(Value::String(p)) = conf.get("requirements_file").and_then(|r| r.get("path")) {
            cx.reference(&format!("flavors.{flavor}.requirements_file.path"), p)?;
        }
    }
    if let Some(env) = m.pyfunc.as_ref().and_then(|p| p.env.as_ref()) {
        match env {
            crate::mlmodel::Env::Conda(c) => {
                cx.reference("flavors.python_function.env", c)?;
            }
            crate::mlmodel::Env::Map { conda, virtualenv } => {
                if let Some(c) = conda {
                    cx.reference("flavors.python_function.env.conda", c)?;
                }
                if let Some(v) = virtualenv {
                    cx.reference("flavors.python_function.env.virtualenv", v)?;
                }
            }
        }
    }
    if let Some(info) = &m.input_example {
        for key in ["artifact_path", "serving_input_path"] {
            if let Some(Value::String(p)) = info.get(key) {
                cx.reference(&format!("saved_input_example_info.{key}"), p)?;
            }
        }
    }
    Ok(())
}

/// The schema of the `onnx` model type: from the graph ([`crate::onnx::schema`]), checked
/// against the MLflow signature when there is one; returns (schema_known, inputs, outputs).
fn onnx_schema(
    cx: &Ctx,
    rel: &str,
    model: &OnnxModel,
    sig: Option<&Signature>,
    args: &MlflowArgs,
    metadata: &mut Map<String, Value>,
) -> Result<(bool, Vec<Column>, Vec<Column>), MlflowError> {
    let map = onnx_columns::map_model(model);
    if let Some(s) = sig {
        onnx_columns::check_signature(model, &map, s.inputs.as_deref(), s.outputs.as_deref())
            .map_err(|disagreements| MlflowError::OnnxSignature {
                path: cx.path.to_path_buf(),
                file: cx.shown(rel),
                disagreements,
            })?;
    }
    if !map.unmapped.is_empty() {
        if !args.allow_unmapped_types {
            return Err(MlflowError::OnnxUnmapped {
                path: cx.path.to_path_buf(),
                file: cx.shown(rel),
                columns: map
                    .unmapped
                    .iter()
                    .map(|u| {
                        format!(
                            "{} {:?} ({}): {}",
                            u.side.as_str(),
                            u.name,
                            u.onnx_type,
                            u.reason
                        )
                    })
                    .collect(),
            });
        }
        tracing::warn!(
            tensors = map.unmapped.len(),
            "--allow-unmapped-types: graph inputs or outputs left out of the schema"
        );
        metadata.insert(
            "unmapped_columns".into(),
            Value::Array(
                map.unmapped
                    .iter()
                    .map(|u| {
                        json!({
                            "side": u.side.as_str(),
                            "name": u.name,
                            "onnx_type": u.onnx_type,
                            "reason": u.reason,
                        })
                    })
                    .collect(),
            ),
        );
    }
    let tensors = |side: Vec<(String, String, Vec<Column>)>| {
        Value::Array(
            side.into_iter()
                .map(|(name, ty, cols)| {
                    json!({
                        "name": name,
                        "type": ty,
                        "columns": cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    };
    let type_of = |list: &[crate::onnx::graph::ValueInfo], name: &str| {
        list.iter()
            .find(|v| v.name == name)
            .map(|v| v.ty.text())
            .unwrap_or_default()
    };
    metadata.insert(
        "onnx_graph".into(),
        json!({
            "producer": model.producer,
            "ir_version": model.ir_version,
            "opsets": model.opsets.iter().map(|(d, v)| json!({"domain": d, "version": v})).collect::<Vec<_>>(),
            "inputs": tensors(map.inputs.iter().map(|t| (t.name.clone(), type_of(&model.inputs, &t.name), t.columns.clone())).collect()),
            "outputs": tensors(map.outputs.iter().map(|t| (t.name.clone(), type_of(&model.outputs, &t.name), t.columns.clone())).collect()),
        }),
    );
    metadata.insert("schema_source".into(), json!("onnx_graph"));
    metadata.insert("signature_checked".into(), json!(sig.is_some()));
    let (inputs, outputs) = (map.input_columns(), map.output_columns());
    let known = map.unmapped.is_empty() && !inputs.is_empty() && !outputs.is_empty();
    if inputs.is_empty() || outputs.is_empty() {
        metadata.insert(
            "schema_unknown_reason".into(),
            json!("the ONNX graph has no inputs or no outputs that map to columns"),
        );
    }
    Ok((known, inputs, outputs))
}

/// Scans the model's `.onnx` file: its graph, and its external data files, checked to be
/// inside the model.
fn onnx_scan(cx: &Ctx, rel: &str) -> Result<(OnnxModel, Vec<String>), MlflowError> {
    let onnx_err = |detail: String| MlflowError::Onnx {
        path: cx.path.to_path_buf(),
        file: cx.shown(rel),
        detail,
    };
    let model = cx
        .reader
        .onnx(rel)?
        .map_err(|d| onnx_err(format!("not a readable ONNX model: {d}")))?;
    let locations = model.external.clone();
    let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut out = Vec::new();
    for loc in locations {
        let norm =
            artifact_core::names::normalize_entry_name(&loc, &artifact_core::Limits::default())
                .map_err(|r| onnx_err(format!("external data location {loc:?} is unsafe: {r}")))?;
        let first = norm.split('/').next().unwrap_or("");
        if norm == ONNX_PAYLOAD
            || norm == artifact_core::MANIFEST_NAME
            || first == crate::EXTRACT_DIR
            || first.starts_with(".staging-")
            || first == ".model.json.tmp"
        {
            return Err(onnx_err(format!(
                "external data location {loc:?} collides with a name the model directory reserves"
            )));
        }
        let full = if dir.is_empty() {
            norm.clone()
        } else {
            format!("{dir}/{norm}")
        };
        if !cx.files.is_file(&full) {
            return Err(onnx_err(format!(
                "external data file {:?} named by the model is not in the model folder",
                cx.shown(&full)
            )));
        }
        out.push(norm);
    }
    Ok((model, out))
}

/// Requirements, Python version and environment files.
fn read_env(cx: &Ctx, m: &MlModel) -> Result<crate::env::EnvInfo, MlflowError> {
    let mut info = crate::env::EnvInfo::default();
    let env = m.pyfunc.as_ref().and_then(|p| p.env.as_ref());
    let norm = |p: &str| {
        artifact_core::names::normalize_entry_name(p, &artifact_core::Limits::default())
            .unwrap_or_else(|_| p.to_string())
    };
    let conda_file = env
        .and_then(|e| e.conda())
        .map(norm)
        .unwrap_or_else(|| "conda.yaml".into());
    let venv_file = env
        .and_then(|e| e.virtualenv())
        .map(norm)
        .unwrap_or_else(|| "python_env.yaml".into());

    let mut venv_deps = Vec::new();
    let mut venv_python = None;
    if let Some(v) = cx.yaml(&venv_file, "python_env.yaml file")? {
        let (py, deps) =
            crate::env::read_python_env(&v).map_err(|d| cx.invalid(&venv_file, "(document)", d))?;
        venv_python = py;
        venv_deps = deps;
        info.python_env = Some(v);
    }
    let mut conda_pip = Vec::new();
    let mut conda_python = None;
    if let Some(v) = cx.yaml(&conda_file, "conda.yaml file")? {
        let (py, pip) =
            crate::env::read_conda(&v).map_err(|d| cx.invalid(&conda_file, "(document)", d))?;
        conda_python = py;
        conda_pip = pip;
        info.conda_env = Some(v);
    }
    info.python_version = venv_python.or(conda_python);

    if let Some(text) = cx.text("requirements.txt", "requirements file")? {
        info.requirements = crate::env::requirement_lines(&text);
        info.requirements_file = Some("requirements.txt".into());
    } else if !venv_deps.is_empty() {
        let mut lines = Vec::new();
        for d in &venv_deps {
            if let Some(f) = d.strip_prefix("-r").map(str::trim) {
                if let Some(text) = cx.text(&norm(f), "requirements file")? {
                    lines.extend(crate::env::requirement_lines(&text));
                }
            } else {
                lines.push(d.clone());
            }
        }
        info.requirements = lines;
        info.requirements_file = Some(venv_file.clone());
    } else if info.conda_env.is_some() {
        info.requirements = conda_pip;
        info.requirements_file = Some(conda_file.clone());
    }
    Ok(info)
}

/// `<lib>_version` keys of the flavors (`sklearn_version`, `xgb_version`, ...), native
/// flavors first, then `python_function` (e.g. `cloudpickle_version`).
fn flavor_versions(m: &MlModel) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut names: Vec<&String> = m.flavors.keys().filter(|n| *n != PYFUNC).collect();
    names.extend(m.flavors.keys().filter(|n| *n == PYFUNC));
    for name in names {
        let Some(conf) = m.flavor(name) else { continue };
        for (k, v) in conf {
            if k.ends_with("_version") && k != "python_version" {
                if let Ok(Some(s)) = crate::yaml::scalar(v) {
                    out.entry(k.clone()).or_insert(s);
                }
            }
        }
    }
    out
}
