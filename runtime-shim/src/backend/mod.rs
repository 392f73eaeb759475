//! Scoring backends, chosen by the manifest's model type.
//!
//! The shim does everything that is the same for every model (start-up checks, request
//! checks, response assembly, HTTP); a backend only turns checked rows into output cells.
//! The interface is asynchronous and object-safe so that backends which proxy to a child
//! process ([`mlflow`]: an `mlflow models serve` for `mlflow_pyfunc`; [`dai`]: an external
//! MOJO2 scorer for `dai_mojo_pipeline`; both on [`proxy`]) fit beside the in-process ones
//! ([`h2o3`]; [`onnx`], ONNX Runtime loaded from a shared library): they await their child in [`Backend::score`], report its health in
//! [`Backend::ready`] and stop it in [`Backend::shutdown`].

pub mod command;
pub mod dai;
pub mod h2o3;
pub mod mlflow;
pub mod mlflow_tensor;
pub mod onnx;
pub mod proxy;
pub mod requirements;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use artifact_core::Manifest;

use crate::api::{ApiError, Frame, ShapleyType};

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

    /// The Shapley values this backend computes for this model: their type and feature
    /// names (`ContributionsResponse.features`), or why there are none (the 501 of
    /// `/model/contribution`). Default: none.
    fn contributions_support(&self) -> Result<(ShapleyType, &[String]), String> {
        Err(format!(
            "Shapley contributions are not computed by the {} backend",
            self.describe()
        ))
    }

    /// The Shapley values of every row of `frame`, in order, one cell per feature of
    /// [`Backend::contributions_support`]. Only called when that is `Ok`; errors carry
    /// `/model/contribution`'s prefixes.
    fn contributions(
        &self,
        frame: Arc<Frame>,
    ) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        let _ = frame;
        Box::pin(std::future::ready(Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "Unsupported operation due to: this backend computes no Shapley contributions",
        ))))
    }

    /// Whether [`Backend::score_row`] scores (the backend scores in process); a caller
    /// with many rows sends them to any other backend (a proxy) in chunks through
    /// [`Backend::score`].
    fn in_process(&self) -> bool {
        false
    }

    /// Scores one row on the calling thread, for a backend that scores in process: `row`
    /// holds the cells by model input index, `row_number` names the row in messages.
    /// `None` when not [`Backend::in_process`].
    fn score_row(
        &self,
        row: &[Option<&str>],
        row_number: usize,
    ) -> Option<Result<Vec<String>, ApiError>> {
        let _ = (row, row_number);
        None
    }

    /// [`Backend::score_row`] into `out` (one cell per output), for callers that score
    /// row after row: a backend that can reuse `out`'s cells overrides it and allocates
    /// nothing per row. `None` when not [`Backend::in_process`].
    fn score_row_into(
        &self,
        row: &[Option<&str>],
        row_number: usize,
        out: &mut Vec<String>,
    ) -> Option<Result<(), ApiError>> {
        Some(self.score_row(row, row_number)?.map(|cells| *out = cells))
    }

    /// [`Backend::score_row_into`]'s cells appended to `out` as the JSON strings of a
    /// response row, comma-separated, byte for byte what `serde_json` writes for them.
    /// A backend that can write its cells straight as JSON overrides it (H2O-3: no
    /// `String` per cell, no escape check per cell). `None` when not
    /// [`Backend::in_process`].
    fn score_row_json(
        &self,
        row: &[Option<&str>],
        row_number: usize,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), ApiError>> {
        let mut cells = Vec::new();
        if let Err(e) = self.score_row_into(row, row_number, &mut cells)? {
            return Some(Err(e));
        }
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::api::write_json_str(out, c);
        }
        Some(Ok(()))
    }

    /// Stops what the backend started (a child process); the shim calls it once, on the
    /// way out. In-process backends have nothing to stop.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// The settings of the backends (flags and variables of `cli`).
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// `MLFLOW_SERVE_COMMAND`: the MLflow scoring server's command line, with `{model}`,
    /// `{host}` and `{port}`.
    pub mlflow_serve_command: String,
    /// `MLFLOW_PYTHON`: the interpreter whose version is compared with the model's.
    pub mlflow_python: Option<PathBuf>,
    /// `MLFLOW_REQUIRE_PYTHON_MATCH`: refuse (rather than warn about) a different Python
    /// major.minor.
    pub mlflow_require_python_match: bool,
    /// `MLFLOW_REQUIRE_REQUIREMENTS_MATCH`: refuse (rather than warn about) a model whose
    /// requirements the runtime's Python does not satisfy.
    pub mlflow_require_requirements_match: bool,
    /// `MLFLOW_INSTALL_REQUIREMENTS`: install the unmet requirements at start into
    /// [`BackendConfig::mlflow_install_dir`].
    pub mlflow_install_requirements: bool,
    /// `MLFLOW_INSTALL_DIR`: the writable folder of `MLFLOW_INSTALL_REQUIREMENTS`.
    pub mlflow_install_dir: PathBuf,
    /// `DAI_SCORER_COMMAND`: the external MOJO2 scorer's command line, with `{pipeline}`,
    /// `{model_dir}`, `{host}` and `{port}`.
    pub dai_scorer_command: Option<String>,
    /// `DAI_SCORER_HEALTH_PATH`: the scorer's route that answers 2xx once it can score.
    pub dai_scorer_health_path: String,
    /// `DAI_REQUIRE_LICENSE`: stop at start-up (exit code 9) when no Driverless AI licence
    /// was provided, rather than let the scorer find one by itself.
    pub dai_require_license: bool,
    /// `CHILD_START_TIMEOUT_SECS`: how long a child may take to answer its health route.
    pub child_start_timeout: Duration,
    /// `CHILD_STOP_GRACE_SECS`: how long a child gets after SIGTERM before SIGKILL.
    pub child_stop_grace: Duration,
    /// `ORT_DYLIB_PATH`: ONNX Runtime's shared library (`None`: `libonnxruntime.so` from
    /// the loader's search path).
    pub onnx_runtime_lib: Option<PathBuf>,
    /// `ONNX_INTRA_OP_THREADS`: threads of each ONNX Runtime session (0: its default,
    /// one per physical core).
    pub onnx_intra_op_threads: usize,
    /// `ONNX_SESSIONS`: ONNX Runtime sessions, each scoring one request at a time.
    pub onnx_sessions: usize,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            mlflow_serve_command: mlflow::DEFAULT_SERVE_COMMAND.to_string(),
            mlflow_python: None,
            mlflow_require_python_match: false,
            mlflow_require_requirements_match: false,
            mlflow_install_requirements: false,
            mlflow_install_dir: std::env::temp_dir().join("mlflow-requirements"),
            dai_scorer_command: None,
            dai_scorer_health_path: "/model/id".to_string(),
            dai_require_license: false,
            child_start_timeout: Duration::from_secs(300),
            child_stop_grace: Duration::from_secs(5),
            onnx_runtime_lib: None,
            onnx_intra_op_threads: 0,
            onnx_sessions: 1,
        }
    }
}

/// Loads a backend from a verified model directory; the error is a human message.
pub type LoadFn =
    fn(dir: &Path, manifest: &Manifest, cfg: &BackendConfig) -> Result<Box<dyn Backend>, String>;

/// Checks a backend's settings before the port is bound; the error is a human message.
pub type CheckFn = fn(cfg: &BackendConfig) -> Result<(), String>;

/// A backend this build has, and the model type it serves.
#[derive(Debug, Clone, Copy)]
pub struct BackendKind {
    pub model_type: &'static str,
    pub check: CheckFn,
    pub load: LoadFn,
}

fn no_settings(_: &BackendConfig) -> Result<(), String> {
    Ok(())
}

/// Every backend compiled into this build.
pub const BACKENDS: &[BackendKind] = &[
    BackendKind {
        model_type: h2o3::MODEL_TYPE,
        check: no_settings,
        load: h2o3::load,
    },
    BackendKind {
        model_type: mlflow::MODEL_TYPE,
        check: mlflow::check,
        load: mlflow::load,
    },
    BackendKind {
        model_type: dai::MODEL_TYPE,
        check: dai::check,
        load: dai::load,
    },
    BackendKind {
        model_type: onnx::MODEL_TYPE,
        check: onnx::check,
        load: onnx::load,
    },
];

/// Which runtime serves each model type of the contract, for the message that refuses a
/// directory this runtime does not serve.
pub const RUNTIMES: &[(&str, &str)] = &[
    (
        "h2o3_mojo",
        "an H2O-3 MOJO runtime (this runtime-shim with h2o3_mojo in MODEL_TYPES)",
    ),
    (
        "dai_mojo_pipeline",
        "a Driverless AI MOJO pipeline runtime (this runtime-shim with dai_mojo_pipeline in MODEL_TYPES and an external MOJO2 scorer in DAI_SCORER_COMMAND)",
    ),
    (
        "mlflow_pyfunc",
        "an MLflow pyfunc runtime (this runtime-shim with mlflow_pyfunc in MODEL_TYPES, and Python with mlflow and the model's requirements for MLFLOW_SERVE_COMMAND)",
    ),
    (
        "onnx",
        "an ONNX runtime (this runtime-shim, a glibc build, with onnx in MODEL_TYPES and ONNX Runtime's libonnxruntime.so in ORT_DYLIB_PATH: the onnx-native-runtime image)",
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

#[cfg(test)]
mod catalog_tests {
    /// The model types this binary has backends for are the ones catalog.json says the
    /// runtimes run by `runtime-shim` serve.
    #[test]
    fn backends_match_the_catalog() {
        let mut ours: Vec<&str> = super::BACKENDS.iter().map(|b| b.model_type).collect();
        ours.sort();
        let catalog = artifact_core::catalog::catalog().served_by_binary("runtime-shim");
        assert_eq!(ours, catalog, "runtime-shim backends vs catalog.json");
    }
}
