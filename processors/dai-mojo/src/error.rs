//! The processor's one error type. Every variant names the source (for a `pipeline.mojo`
//! inside a `mojo.zip`, as `outer!inner`), the entry, and what was expected, and maps to
//! an exit-code class.

use std::path::PathBuf;

use artifact_core::{Classify, ErrorClass};

use crate::wire::WireError;

/// Errors of the DAI MOJO pipeline processor.
#[derive(Debug, thiserror::Error)]
pub enum DaiError {
    /// Safe reading, limits, staging or publishing failed (see the core).
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    /// The source is none of the three accepted shapes.
    #[error("{path}: not a Driverless AI MOJO pipeline: {detail}")]
    NotAPipeline { path: PathBuf, detail: String },
    /// The source is ambiguous (several pipelines, or a pipeline and a package at once).
    #[error("{path}: ambiguous source: {detail}")]
    Ambiguous { path: PathBuf, detail: String },
    /// `pipeline.mojo` has no root descriptor.
    #[error(
        "{path}: no mojo/pipeline.pb or mojo/pipeline.toml: this zip is not a MOJO2 pipeline (found {found})"
    )]
    NoDescriptor { path: PathBuf, found: String },
    /// A protobuf descriptor is malformed at the wire level.
    #[error("{path}: {entry}: {wire}")]
    Protobuf {
        path: PathBuf,
        entry: String,
        wire: WireError,
    },
    /// A TOML descriptor does not parse.
    #[error("{path}: {entry}: not valid TOML: {detail}")]
    Toml {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    /// A descriptor parses but lacks or misstates what a pipeline must have.
    #[error("{path}: {entry}: {detail}")]
    Invalid {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    /// A column type this processor cannot map to an MLOps column type.
    #[error("{path}: {entry}: column {column:?} has the unsupported type {dai_type} (expected one of bool, int32, int64, float32, float64, str, time64)")]
    UnknownType {
        path: PathBuf,
        entry: String,
        column: String,
        dai_type: String,
    },
    /// The root refers to a nested pipeline (or a table) that the zip does not hold.
    #[error("{path}: {entry} refers to the {what} {missing:?}, which is not in the pipeline")]
    MissingReference {
        path: PathBuf,
        entry: String,
        what: &'static str,
        missing: String,
    },
    /// A licence inside `pipeline.mojo` would be copied with the payload.
    #[error("{path}: holds the licence file {entry:?}; pipeline.mojo is copied byte for byte, so the licence would be copied too: remove it (the runtime reads its licence from its own mount)")]
    LicenceInPipeline { path: PathBuf, entry: String },
    /// The scratch directory of `inspect` could not be created.
    #[error("cannot create a scratch directory for inspect in {dir}: {source}")]
    Scratch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for DaiError {
    fn class(&self) -> ErrorClass {
        match self {
            DaiError::Core(e) => e.class(),
            DaiError::Scratch { .. } => ErrorClass::Io,
            _ => ErrorClass::Artifact,
        }
    }
}
