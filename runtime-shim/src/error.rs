//! Start-up and batch errors of the shim and their exit codes.
//!
//! The shim refines the core's three exit classes: a deployer (or a person reading a pod's
//! last state) tells from the code alone whether the configuration, the model directory,
//! the choice of runtime, the backend or the environment failed. Errors met while serving
//! are not here: they are HTTP answers ([`crate::api::ApiError`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use artifact_core::{Classify, ErrorClass};

/// Exit codes, as printed by `--help` and documented in `runtime-shim/README.md`.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  clean shutdown (SIGTERM or SIGINT), or the batch command scored every row
  2  usage or configuration error (bad flags, no MODEL_PATH, a model path that does not exist, an unknown type in MODEL_TYPES, a missing input file, no or a bad DAI_SCORER_COMMAND/MLFLOW_SERVE_COMMAND for the model's type)
  3  the model directory is invalid (no model.json, unreadable manifest, unsupported contract version, or a file that fails verify)
  4  I/O or environment error (port in use, unreadable or unwritable file)
  5  the model type is not served by this runtime (MODEL_TYPES)
  6  the backend could not load the model (e.g. an unsupported algorithm, a scoring child that fails to start, a Python mismatch refused)
  7  batch command: the input CSV is invalid or a row was refused by the request checks
  8  the endpoint security is misconfigured (SCORING_PASSPHRASE, SCORING_PASSPHRASE_HASH, OIDC_*: an empty value, an unparsable hash, an unreadable key set, an issuer that cannot be reached at start-up); the message names the variable
  9  dai_mojo_pipeline with DAI_REQUIRE_LICENSE: no Driverless AI licence was provided (DRIVERLESS_AI_LICENSE_KEY, a readable DRIVERLESS_AI_LICENSE_FILE, /license/license.sig or ~/.driverlessai/license.sig); the message says how to provide one";

/// Errors that stop the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    #[error("{0}")]
    Usage(String),
    #[error("model path {path} does not exist")]
    ModelPathMissing { path: PathBuf },
    #[error("--model-types/MODEL_TYPES names {given:?}, which this build has no backend for (it has: {available})")]
    UnknownModelType { given: String, available: String },
    #[error("{path}: model type {model_type:?} is not served by this runtime (it serves: {served}); {needs}")]
    ModelTypeNotServed {
        path: PathBuf,
        model_type: String,
        served: String,
        needs: String,
    },
    #[error("the {model_type} backend cannot start: {detail}")]
    BackendConfig { model_type: String, detail: String },
    #[error("{path}: the {model_type} backend could not load {payload}: {detail}")]
    BackendLoad {
        path: PathBuf,
        model_type: String,
        payload: String,
        detail: String,
    },
    // The I/O error is part of the message, not a `source`, so that the report does not
    // print it twice.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("{op} {path}: {error}")]
    Io {
        op: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: invalid input CSV: {detail}")]
    BadInput { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Rejected { path: PathBuf, detail: String },
    #[error("endpoint security: {0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error("{path}: no Driverless AI licence: {detail}")]
    NoLicence { path: PathBuf, detail: String },
}

impl ShimError {
    /// The documented process exit code (see [`EXIT_CODES_HELP`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ShimError::Core(e) => e.class().exit_code(),
            ShimError::Usage(_)
            | ShimError::ModelPathMissing { .. }
            | ShimError::UnknownModelType { .. }
            | ShimError::BackendConfig { .. } => 2,
            ShimError::Bind { .. } | ShimError::Io { .. } => 4,
            ShimError::ModelTypeNotServed { .. } => 5,
            ShimError::BackendLoad { .. } => 6,
            ShimError::BadInput { .. } | ShimError::Rejected { .. } => 7,
            ShimError::Auth(_) => 8,
            ShimError::NoLicence { .. } => 9,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        ShimError::Io {
            op,
            path: path.into(),
            error,
        }
    }
}

impl Classify for ShimError {
    fn class(&self) -> ErrorClass {
        match self.exit_code() {
            2 => ErrorClass::Usage,
            4 => ErrorClass::Io,
            _ => ErrorClass::Artifact,
        }
    }
}
