//! Scoring backends, chosen by the manifest's model type.
//!
//! The shim does everything that is the same for every model (start-up checks, request
//! checks, response assembly, HTTP); a backend only turns checked rows into output cells.
//! The interface is asynchronous and object-safe so that backends which proxy to a child
//! process (an `mlflow models serve` for `mlflow_pyfunc`, an external DAI MOJO scorer for
//! `dai_mojo_pipeline`) fit beside the in-process ones: they await their child in
//! [`Backend::score`] and report its health in [`Backend::ready`].

pub mod h2o3;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use artifact_core::Manifest;

use crate::api::{ApiError, Frame};

/// A boxed, sendable future (what an object-safe async method returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A loaded model that scores.
pub trait Backend: Send + Sync {
    /// A short description for logs, e.g. `native H2O-3 gbm Binomial`.
    fn describe(&self) -> String;

    /// Names of the output columns, in the order of the rows [`Backend::score`] returns.
    fn output_names(&self) -> &[String];

    /// MLOps `CapabilityType` names this backend serves for this model, in the order the
    /// reference scorer lists them.
    fn capabilities(&self) -> Vec<String>;

    /// Whether the backend can score now (a proxy backend checks its child).
    fn ready(&self) -> BoxFuture<'_, bool>;

    /// Scores every row of `frame`: one output row per input row, in order, each with one
    /// cell per [`Backend::output_names`]. A cell the model cannot read is a 400.
    fn score(&self, frame: Arc<Frame>) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>>;
}

/// Loads a backend from a verified model directory; the error is a human message.
pub type LoadFn = fn(dir: &Path, manifest: &Manifest) -> Result<Box<dyn Backend>, String>;

/// A backend this build has, and the model type it serves.
#[derive(Debug, Clone, Copy)]
pub struct BackendKind {
    pub model_type: &'static str,
    pub load: LoadFn,
}

/// Every backend compiled into this build.
pub const BACKENDS: &[BackendKind] = &[BackendKind {
    model_type: h2o3::MODEL_TYPE,
    load: h2o3::load,
}];

/// Which runtime serves each model type of the contract, for the message that refuses a
/// directory this runtime does not serve.
pub const RUNTIMES: &[(&str, &str)] = &[
    (
        "h2o3_mojo",
        "an H2O-3 MOJO runtime (this runtime-shim with h2o3_mojo in MODEL_TYPES)",
    ),
    (
        "dai_mojo_pipeline",
        "a Driverless AI MOJO pipeline runtime (a MOJO2 scorer)",
    ),
    (
        "mlflow_pyfunc",
        "an MLflow pyfunc runtime (Python with mlflow and the model's requirements)",
    ),
];

/// The sentence naming the runtime a model type needs.
pub fn runtime_needed(model_type: &str) -> String {
    match RUNTIMES.iter().find(|(t, _)| *t == model_type) {
        Some((_, r)) => format!("model type {model_type} needs {r}"),
        None => format!(
            "{model_type:?} is not a model type of the contract (docs/model-directory.md); was the directory written by a processor of this project?"
        ),
    }
}
