//! Ingestion: what a platform must know about an upload before a deployment.
//!
//! [`detect`] decides an upload's artifact type from its content (never its name alone)
//! by letting each processor's own `inspect` confirm it, so there is no second parser;
//! it also finds an H2O-3 MOJO or DAI pipeline wrapped in an MLflow model.
//! [`experiment_metadata`] turns the processor's description into the typed key/value
//! map H2O MLOps stores, and [`compositions`] lists, from the catalog, the
//! (processor, model type, runtime) tuples that can deploy it.

use std::path::{Path, PathBuf};

use artifact_core::catalog::{catalog, Composition};
use artifact_core::{
    read_source, Classify, Context, DirSink, DiscardSink, ErrorClass, ModelDescription, Processor,
    ReadOptions,
};
use clap::{Args, FromArgMatches};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The processors this tool dispatches to, by artifact type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    H2o3Mojo,
    DaiMojoPipeline,
    Mlflow,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::H2o3Mojo, Kind::DaiMojoPipeline, Kind::Mlflow];

    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::H2o3Mojo => h2o3_mojo::H2o3MojoProcessor::ARTIFACT_TYPE,
            Kind::DaiMojoPipeline => dai_mojo::DaiMojoProcessor::ARTIFACT_TYPE,
            Kind::Mlflow => mlflow_model::MlflowProcessor::ARTIFACT_TYPE,
        }
    }

    pub fn processor(self) -> &'static str {
        match self {
            Kind::H2o3Mojo => h2o3_mojo::H2o3MojoProcessor::NAME,
            Kind::DaiMojoPipeline => dai_mojo::DaiMojoProcessor::NAME,
            Kind::Mlflow => mlflow_model::MlflowProcessor::NAME,
        }
    }

    /// What detection looks for, in words.
    fn looked_for(self) -> &'static str {
        match self {
            Kind::H2o3Mojo => "model.ini at the root of a zip or folder (H2O-3 MOJO)",
            Kind::DaiMojoPipeline => "mojo/pipeline.toml or mojo/pipeline.pb in a pipeline.mojo, bare or in a mojo.zip or mojo-pipeline/ folder (Driverless AI MOJO pipeline)",
            Kind::Mlflow => "an MLmodel file at the root or in one top-level folder (MLflow model)",
        }
    }

    /// Whether a file name in the upload suggests this kind (only an order hint:
    /// the processor's inspect decides).
    fn hinted_by(self, name: &str) -> bool {
        let base = name.rsplit('/').next().unwrap_or(name);
        let depth = name.matches('/').count();
        match self {
            Kind::H2o3Mojo => name == "model.ini",
            Kind::DaiMojoPipeline => {
                name.starts_with("mojo/pipeline.") || (base.ends_with(".mojo") && depth <= 1)
            }
            Kind::Mlflow => base == "MLmodel" && depth <= 1,
        }
    }
}

/// Errors of ingestion.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: not a model artifact: looked for {looked_for}; {found}")]
    NotAModel {
        path: PathBuf,
        looked_for: String,
        found: String,
    },
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    #[error("{processor}: {source}")]
    Processor {
        processor: &'static str,
        class: ErrorClass,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("bad processor arguments for {processor}: {detail}")]
    Args {
        processor: &'static str,
        detail: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl Classify for IngestError {
    fn class(&self) -> ErrorClass {
        match self {
            IngestError::NotAModel { .. } => ErrorClass::Artifact,
            IngestError::Core(e) => e.class(),
            IngestError::Processor { class, .. } => *class,
            IngestError::Args { .. } | IngestError::Usage(_) => ErrorClass::Usage,
        }
    }
}

/// What an upload is.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub artifact_type: String,
    pub processor: String,
    /// Why: which files were found and which processor accepted them.
    pub evidence: String,
    /// An H2O-3 MOJO or DAI pipeline inside an MLflow model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wraps: Option<Wrapped>,
    pub description: ModelDescription,
    /// Why the processor would refuse it with its default policy (e.g. an MLflow model
    /// without a signature): it is still this artifact type.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub kind: Option<Kind>,
}

/// MLflow flags under which a model without a (mappable) signature is still read, so
/// that it is recognised as an MLflow model and the refusal becomes a warning.
const MLFLOW_LENIENT: &[&str] = &["--allow-no-signature", "--allow-unmapped-types"];

/// An artifact found inside another (MLflow models wrapping a MOJO or a pipeline).
#[derive(Debug, Clone, Serialize)]
pub struct Wrapped {
    pub artifact_type: String,
    /// Path of the inner artifact inside the upload.
    pub path: String,
    /// The MLflow flavor that refers to it, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    pub input_schema: Vec<artifact_core::Column>,
    pub output_schema: Vec<artifact_core::Column>,
}

fn parse_args<P: Processor>(extra: &[String]) -> Result<P::Args, IngestError> {
    let cmd = P::Args::augment_args(clap::Command::new(P::NAME).no_binary_name(true));
    let m = cmd
        .try_get_matches_from(extra)
        .map_err(|e| IngestError::Args {
            processor: P::NAME,
            detail: e.to_string(),
        })?;
    P::Args::from_arg_matches(&m).map_err(|e| IngestError::Args {
        processor: P::NAME,
        detail: e.to_string(),
    })
}

fn processor_error<P: Processor>(e: P::Error) -> IngestError {
    IngestError::Processor {
        processor: P::NAME,
        class: e.class(),
        source: Box::new(e),
    }
}

fn inspect_as<P: Processor>(
    path: &Path,
    read: &ReadOptions,
    extra: &[String],
) -> Result<ModelDescription, IngestError> {
    let ctx = Context {
        read: read.clone(),
        args: parse_args::<P>(extra)?,
    };
    P::inspect(path, &ctx).map_err(processor_error::<P>)
}

/// Runs the processor of `kind` in inspect mode.
pub fn inspect(
    kind: Kind,
    path: &Path,
    read: &ReadOptions,
    extra: &[String],
) -> Result<ModelDescription, IngestError> {
    match kind {
        Kind::H2o3Mojo => inspect_as::<h2o3_mojo::H2o3MojoProcessor>(path, read, extra),
        Kind::DaiMojoPipeline => inspect_as::<dai_mojo::DaiMojoProcessor>(path, read, extra),
        Kind::Mlflow => inspect_as::<mlflow_model::MlflowProcessor>(path, read, extra),
    }
}

fn process_as<P: Processor>(
    source: &Path,
    target: &Path,
    overwrite: bool,
    read: &ReadOptions,
    extra: &[String],
) -> Result<artifact_core::Manifest, IngestError> {
    let ctx = Context {
        read: read.clone(),
        args: parse_args::<P>(extra)?,
    };
    artifact_core::cli::process::<P>(source, target, overwrite, &ctx).map_err(processor_error::<P>)
}

/// Processes `source` with the processor of `kind` (what the per-type binaries do).
pub fn process(
    kind: Kind,
    source: &Path,
    target: &Path,
    overwrite: bool,
    read: &ReadOptions,
    extra: &[String],
) -> Result<artifact_core::Manifest, IngestError> {
    match kind {
        Kind::H2o3Mojo => {
            process_as::<h2o3_mojo::H2o3MojoProcessor>(source, target, overwrite, read, extra)
        }
        Kind::DaiMojoPipeline => {
            process_as::<dai_mojo::DaiMojoProcessor>(source, target, overwrite, read, extra)
        }
        Kind::Mlflow => {
            process_as::<mlflow_model::MlflowProcessor>(source, target, overwrite, read, extra)
        }
    }
}

/// Decides what `path` is. `extra` are processor flags (e.g. `--allow-no-signature`),
/// passed to the processor that accepts them.
pub fn detect(path: &Path, read: &ReadOptions, extra: &[String]) -> Result<Detection, IngestError> {
    let looked_for = Kind::ALL
        .iter()
        .map(|k| k.looked_for())
        .collect::<Vec<_>>()
        .join(", or ");
    let not_a_model = |found: String| IngestError::NotAModel {
        path: path.to_path_buf(),
        looked_for: looked_for.clone(),
        found,
    };
    // An unreadable or unknown container is not a model; an unsafe one is reported as such.
    let listing = match read_source(
        path,
        &ReadOptions {
            skip_noise: true,
            ..read.clone()
        },
        &mut DiscardSink,
    ) {
        Ok(l) => l,
        Err(e @ artifact_core::Error::UnsupportedSource { .. }) => {
            return Err(not_a_model(format!("found: {e}")))
        }
        Err(artifact_core::Error::BadArchive { detail, .. })
            if detail.contains("holds no files") =>
        {
            return Err(not_a_model("found: an empty archive or folder".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let names: Vec<&str> = listing.files.iter().map(|f| f.path.as_str()).collect();
    let hinted: Vec<Kind> = [Kind::Mlflow, Kind::H2o3Mojo, Kind::DaiMojoPipeline]
        .into_iter()
        .filter(|k| names.iter().any(|n| k.hinted_by(n)))
        .collect();
    let mut findings = Vec::new();
    for kind in &hinted {
        let mut warnings = Vec::new();
        let mut attempt = inspect(*kind, path, read, extra);
        if *kind == Kind::Mlflow && extra.is_empty() {
            if let Err(e) = &attempt {
                let lenient: Vec<String> = MLFLOW_LENIENT.iter().map(|s| s.to_string()).collect();
                if let Ok(d) = inspect(*kind, path, read, &lenient) {
                    warnings.push(format!(
                        "{} refuses it by default: {} (accepted with {})",
                        kind.processor(),
                        chain(e),
                        MLFLOW_LENIENT.join(" ")
                    ));
                    attempt = Ok(d);
                }
            }
        }
        match attempt {
            Ok(description) => {
                let evidence = format!(
                    "{} accepted it ({} files; found {})",
                    kind.processor(),
                    listing.files.len(),
                    names
                        .iter()
                        .filter(|n| kind.hinted_by(n))
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let wraps = if *kind == Kind::Mlflow {
                    find_wrapped(path, &description, &names, read)?
                } else {
                    None
                };
                return Ok(Detection {
                    artifact_type: kind.artifact_type().into(),
                    processor: kind.processor().into(),
                    evidence,
                    wraps,
                    description,
                    warnings,
                    kind: Some(*kind),
                });
            }
            Err(e @ IngestError::Args { .. }) => return Err(e),
            Err(e) => findings.push(format!("{}: {}", kind.artifact_type(), chain(&e))),
        }
    }
    if findings.is_empty() {
        let sample: Vec<&str> = names.iter().take(5).cloned().collect();
        Err(not_a_model(format!(
            "found none of these ({} files: {}{})",
            names.len(),
            sample.join(", "),
            if names.len() > sample.len() {
                ", ..."
            } else {
                ""
            }
        )))
    } else {
        Err(not_a_model(format!(
            "found candidates, but: {}",
            findings.join("; ")
        )))
    }
}

/// The whole chain of an error on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Most files an MLflow model may hold that are checked for a wrapped artifact.
const MAX_WRAPPED_CANDIDATES: usize = 4;

/// Looks inside an MLflow model for an H2O-3 MOJO or a DAI pipeline: the file the
/// `h2o_mojo_pojo` flavor names, and any `.mojo`/`.zip` file, confirmed by content.
fn find_wrapped(
    path: &Path,
    d: &ModelDescription,
    names: &[&str],
    read: &ReadOptions,
) -> Result<Option<Wrapped>, IngestError> {
    let flavors = d.metadata.get("mlmodel").and_then(|m| m.get("flavors"));
    let h2o_file = flavors
        .and_then(|f| f.get("h2o_mojo_pojo"))
        .and_then(|f| f.get("model_file"))
        .and_then(|v| v.as_str());
    let mut candidates: Vec<(String, Option<String>)> = Vec::new();
    for n in names {
        let base = n.rsplit('/').next().unwrap_or(n);
        if Some(base) == h2o_file {
            candidates.insert(0, (n.to_string(), Some("h2o_mojo_pojo".into())));
        } else if base.ends_with(".mojo") || base.ends_with(".zip") {
            candidates.push((n.to_string(), None));
        }
    }
    candidates.truncate(MAX_WRAPPED_CANDIDATES);
    if candidates.is_empty() {
        return Ok(None);
    }
    let scratch = tempfile::tempdir().map_err(|e| artifact_core::Error::Io {
        op: "create scratch directory",
        path: std::env::temp_dir(),
        source: e,
    })?;
    let wanted: Vec<String> = candidates.iter().map(|(n, _)| n.clone()).collect();
    let mut sink = DirSink::new(scratch.path(), |n: &str| {
        wanted.iter().any(|w| w == n).then(|| n.to_string())
    });
    read_source(
        path,
        &ReadOptions {
            skip_noise: true,
            ..read.clone()
        },
        &mut sink,
    )?;
    for (name, flavor) in candidates {
        let inner = scratch.path().join(&name);
        for kind in [Kind::H2o3Mojo, Kind::DaiMojoPipeline] {
            if let Ok(inner_d) = inspect(kind, &inner, read, &[]) {
                return Ok(Some(Wrapped {
                    artifact_type: kind.artifact_type().into(),
                    path: name,
                    flavor,
                    input_schema: inner_d.input_schema,
                    output_schema: inner_d.output_schema,
                }));
            }
        }
    }
    Ok(None)
}

fn string_value(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => Some(json!({ "string_value": s })),
        Value::Null => None,
        other => Some(json!({ "string_value": other.to_string() })),
    }
}

/// The experiment metadata H2O MLOps stores for this artifact (FORMATS.md §1.6): keys
/// to typed values, from the processor's own description.
pub fn experiment_metadata(d: &ModelDescription) -> Map<String, Value> {
    let mut m = Map::new();
    let meta = &d.metadata;
    let get = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    m.insert(
        "input_schema".into(),
        json!({ "json_value": d.input_schema }),
    );
    m.insert(
        "output_schema".into(),
        json!({ "json_value": d.output_schema }),
    );
    m.insert("model_type".into(), json!({ "string_value": d.model_type }));
    m.insert(
        "source".into(),
        json!({ "string_value": d.source.file_name }),
    );
    let (tool, version, mut params) = match d.artifact_type.as_str() {
        "h2o3/mojo" => (
            "H2O-3",
            get("h2o_version"),
            get("model_parameters")
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
        "dai/mojo_pipeline" => ("Driverless AI", get("dai_version"), Map::new()),
        _ => ("MLflow", get("mlflow_version"), Map::new()),
    };
    m.insert("tool".into(), json!({ "string_value": tool }));
    if let Some(v) = string_value(&version) {
        m.insert("tool_version".into(), v.clone());
        if d.artifact_type == "dai/mojo_pipeline" {
            m.insert("dai/tool_version".into(), v);
        }
    }
    if let Some(r) = meta.get("response_column").and_then(|v| v.as_str()) {
        params.insert("target_column".into(), json!(r));
    }
    if let Some(p) = meta.get("signature_params").filter(|v| !v.is_null()) {
        params.insert("signature_params".into(), p.clone());
    }
    if !params.is_empty() {
        m.insert("model_parameters".into(), json!({ "json_value": params }));
    }
    for key in [
        "source_model_name",
        "source_model_version",
        "mlflow/flavors/python_function/loader_module",
    ] {
        if let Some(v) = meta.get(key).and_then(string_value) {
            m.insert(key.into(), v);
        }
    }
    m
}

/// The compositions that can deploy an artifact: for its type, the processor's model
/// types that this artifact can actually give (its description's model type; for
/// MLflow also `onnx` when it has that flavor, and `h2o3_mojo` when it wraps a MOJO the
/// native loader accepts), each with the runtimes serving it.
pub fn compositions(detection: &Detection) -> Vec<Composition> {
    let flavors: Vec<String> = detection
        .description
        .metadata
        .get("flavors")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // An H2O-3 MOJO saved with h2o_mlflow_flavor, which the native loader accepted.
    let native_mojo = detection.wraps.as_ref().is_some_and(|w| {
        w.artifact_type == "h2o3/mojo" && w.flavor.as_deref() == Some("h2o_mojo_pojo")
    });
    catalog()
        .compositions(Some(&detection.artifact_type))
        .into_iter()
        .filter(|c| {
            c.model_type == detection.description.model_type
                || (c.model_type == "onnx" && flavors.iter().any(|f| f == "onnx"))
                || (c.model_type == "h2o3_mojo" && native_mojo)
        })
        .collect()
}
