//! The checker's one error type: a file that cannot be read or parsed. Disagreements
//! between files are not errors but findings (lists of messages), so that one run reports
//! all of them.

use std::path::PathBuf;

use artifact_core::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
}

impl CheckError {
    pub fn parse(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CheckError::Parse {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Classify for CheckError {
    fn class(&self) -> ErrorClass {
        match self {
            CheckError::Io { .. } => ErrorClass::Io,
            CheckError::Parse { .. } => ErrorClass::Artifact,
            CheckError::Core(e) => e.class(),
        }
    }
}

/// Reads a file to a string, naming it in the error.
pub(crate) fn read(path: &std::path::Path) -> Result<String, CheckError> {
    std::fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.to_owned(),
        source,
    })
}
