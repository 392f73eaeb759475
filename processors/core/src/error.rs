//! The core's error type and the exit-code classes every binary maps errors to.
//!
//! Errors carry the path, the archive entry and what was expected, so the
//! message alone tells a user what to fix.

use std::path::PathBuf;

/// What kind of failure an error is; each class has its own process exit code.
///
/// | class    | exit code | meaning                                                |
/// |----------|-----------|--------------------------------------------------------|
/// | Usage    | 2         | bad arguments or configuration (missing source, non-empty target) |
/// | Artifact | 3         | the artifact is invalid, unsafe, over a limit or unsupported |
/// | Io       | 4         | the environment failed: I/O error, full disk, read-only target |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Usage,
    Artifact,
    Io,
}

impl ErrorClass {
    /// The documented process exit code of this class.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Usage => 2,
            ErrorClass::Artifact => 3,
            ErrorClass::Io => 4,
        }
    }
}

/// Implemented by every library error enum so that the shared `main` can map it to an exit code.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

/// Errors of the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("source {path} does not exist")]
    SourceMissing { path: PathBuf },
    #[error("source {path} is not a zip, tar, tar.gz or directory: {detail}")]
    UnsupportedSource { path: PathBuf, detail: String },
    #[error("{path}: invalid archive: {detail}")]
    BadArchive { path: PathBuf, detail: String },
    #[error("{path}: entry {entry:?}: {detail}")]
    BadEntry {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{path}: entry {entry:?} is unsafe: {reason}")]
    UnsafeEntry {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{path}: {what} limit exceeded{at}: {actual} > {limit} (raise it with {flag})", at = entry.as_ref().map(|e| format!(" at entry {e:?}")).unwrap_or_default())]
    LimitExceeded {
        path: PathBuf,
        entry: Option<String>,
        what: &'static str,
        limit: u64,
        actual: u64,
        flag: &'static str,
    },
    #[error(
        "target {path} is not empty (holds {first:?}); pass --overwrite to replace its content"
    )]
    TargetNotEmpty { path: PathBuf, first: String },
    #[error("target {path} is not a directory")]
    TargetNotDirectory { path: PathBuf },
    #[error("{path}: no model.json: this directory is not a processed model")]
    NoManifest { path: PathBuf },
    #[error("{path}: model.json is invalid: {detail}")]
    BadManifest { path: PathBuf, detail: String },
    #[error(
        "{path}: contract version {found} is not supported (this build reads version {expected})"
    )]
    ContractVersion {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
    #[error("{path}: verification failed for {file:?}: {detail}")]
    VerifyFailed {
        path: PathBuf,
        file: String,
        detail: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("catalog drift: {0}")]
    Catalog(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } | Error::Catalog(_) => ErrorClass::Io,
            Error::TargetNotEmpty { .. } | Error::TargetNotDirectory { .. } | Error::Usage(_) => {
                ErrorClass::Usage
            }
            Error::SourceMissing { .. } => ErrorClass::Usage,
            _ => ErrorClass::Artifact,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
