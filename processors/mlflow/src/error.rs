//! The processor's one error enum. Every variant names the source, the file inside the
//! model and the key or entry at fault, and says what was expected, so that a user can
//! fix the model from the message alone. [`Classify`] maps each variant to an exit code.

use std::path::PathBuf;

use artifact_core::{Classify, ErrorClass};

/// Errors of the MLflow processor.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// Source reading, limits, staging, publish: the core's own errors.
    #[error(transparent)]
    Core(#[from] artifact_core::Error),

    #[error("{path}: no MLmodel file: an MLflow model has MLmodel at the root of the source or inside exactly one top-level folder; the source holds {}", list(found, *total))]
    NoMlmodel {
        path: PathBuf,
        /// The first few files of the source.
        found: Vec<String>,
        total: usize,
    },

    #[error("{path}: {} MLflow models found ({}): the source must hold exactly one model (one MLmodel at the root or inside one top-level folder)", found.len(), found.join(", "))]
    SeveralMlmodels { path: PathBuf, found: Vec<String> },

    #[error("{path}: MLmodel found only at {}: it must be at the root of the source or inside exactly one top-level folder", found.join(", "))]
    MlmodelTooDeep { path: PathBuf, found: Vec<String> },

    #[error("{path}: the model folder is {root:?} (it holds MLmodel), but the source also holds files outside it: {}", list(outside, *total))]
    OutsideModel {
        path: PathBuf,
        root: String,
        outside: Vec<String>,
        total: usize,
    },

    #[error("{path}: {file}: YAML syntax error: {detail}")]
    Yaml {
        path: PathBuf,
        file: String,
        detail: String,
    },

    #[error("{path}: {file}: {key}: {detail}")]
    Invalid {
        path: PathBuf,
        file: String,
        key: String,
        detail: String,
    },

    #[error("{path}: {file}: {key} is not a valid MLflow schema: {detail}")]
    SignatureJson {
        path: PathBuf,
        file: String,
        key: String,
        detail: String,
    },

    #[error("{path}: {file} is {size} bytes, more than the {limit} bytes this processor reads for the {what}")]
    TooLarge {
        path: PathBuf,
        file: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },

    #[error("{path}: MLmodel {key} names {reference:?}, which is not in the model folder{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingReference {
        path: PathBuf,
        key: String,
        reference: String,
        hint: Option<String>,
    },

    #[error("{path}: MLmodel {key} names {reference:?}, which is not a safe relative path inside the model: {reason}")]
    UnsafeReference {
        path: PathBuf,
        key: String,
        reference: String,
        reason: String,
    },

    #[error("{path}: {detail}: H2O MLOps can only deploy models with a known input and output schema. Save the model with a signature, e.g. `signature = mlflow.models.infer_signature(X, model.predict(X))` then `mlflow.<flavor>.save_model(model, path, signature=signature)` (or add one to a saved model with `mlflow.models.set_signature`), or pass --allow-no-signature to accept it with an unknown schema")]
    NoSignature { path: PathBuf, detail: String },

    #[error("{path}: {} signature column(s) have no MLOps column type: {}; pass --allow-unmapped-types to leave them out of the schema (they are then listed in metadata.unmapped_columns and the schema is marked unknown)", columns.len(), columns.join("; "))]
    UnmappedColumns { path: PathBuf, columns: Vec<String> },

    #[error("{path}: {file}: {} ONNX graph input(s) or output(s) have no MLOps column mapping: {}; pass --allow-unmapped-types to leave them out of the schema (they are then listed in metadata.unmapped_columns and the schema is marked unknown)", columns.len(), columns.join("; "))]
    OnnxUnmapped {
        path: PathBuf,
        file: String,
        columns: Vec<String>,
    },

    #[error("{path}: {file}: the MLmodel signature does not describe this ONNX graph: {}; the onnx model type takes its schema from the graph, so fix the signature (or save the model without one)", disagreements.join("; "))]
    OnnxSignature {
        path: PathBuf,
        file: String,
        disagreements: Vec<String>,
    },

    #[error("{path}: {file}: {detail}")]
    Onnx {
        path: PathBuf,
        file: String,
        detail: String,
    },

    #[error("{path}: model type {model_type} is not available for this model: {detail}")]
    ModelTypeUnavailable {
        path: PathBuf,
        model_type: String,
        detail: String,
    },

    /// The MOJO an `h2o_mojo_pojo` flavor wraps is not one the native H2O-3 runtime
    /// serves (the loader's own message follows).
    #[error("{path}: {file}: the H2O-3 MOJO of the h2o_mojo_pojo flavor is refused")]
    WrappedMojo {
        path: PathBuf,
        file: String,
        #[source]
        source: Box<h2o3_mojo::MojoError>,
    },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `a, b, c` for up to the listed names, with "and N more" when `total` is larger.
fn list(names: &[String], total: usize) -> String {
    if names.is_empty() {
        return "no files".into();
    }
    let mut s = names.join(", ");
    if total > names.len() {
        s.push_str(&format!(" and {} more", total - names.len()));
    }
    s
}

impl MlflowError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MlflowError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl Classify for MlflowError {
    fn class(&self) -> ErrorClass {
        match self {
            MlflowError::Core(e) => e.class(),
            MlflowError::Io { .. } => ErrorClass::Io,
            MlflowError::WrappedMojo { source, .. } => source.class(),
            _ => ErrorClass::Artifact,
        }
    }
}
