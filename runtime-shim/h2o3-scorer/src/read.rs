//! Reading a MOJO source (a zip, or an unpacked folder) through the core's safe reader,
//! and the crate's error type.
//!
//! Every byte comes through `artifact_core::read_source`, with its name rules and limits;
//! the processor and the runtime shim both start here, so they see the same files and
//! give the same messages.

use std::path::{Path, PathBuf};

use artifact_core::{
    read_source, Classify, ErrorClass, Listing, MemorySink, ReadOptions, SourceKind,
};

use crate::mojo::{Mojo, MojoFiles, MojoProblem, ProblemKind};

/// Why a MOJO cannot be read, validated or scored.
#[derive(Debug, thiserror::Error)]
pub enum MojoError {
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    /// The source is not a MOJO at all.
    #[error("{path}: not an H2O-3 MOJO: {detail}")]
    NotAMojo { path: PathBuf, detail: String },
    /// A file inside the MOJO is malformed, or disagrees with `model.ini`.
    #[error("{path}: {file}: {detail}")]
    Invalid {
        path: PathBuf,
        file: String,
        detail: String,
    },
    /// A well-formed MOJO that h2o-genmodel itself would not read (unknown algorithm,
    /// category without outputs).
    #[error("{path}: {file}: unsupported: {detail}")]
    Unsupported {
        path: PathBuf,
        file: String,
        detail: String,
    },
    /// A well-formed MOJO of a kind the native scorer does not score (never mis-scored
    /// instead).
    #[error("{path}: {algo} / {category}: not supported by the native scorer: {reason}")]
    NotScorable {
        path: PathBuf,
        algo: String,
        category: String,
        reason: String,
    },
}

impl Classify for MojoError {
    fn class(&self) -> ErrorClass {
        match self {
            MojoError::Core(e) => e.class(),
            _ => ErrorClass::Artifact,
        }
    }
}

impl MojoError {
    /// The same error naming the MOJO `shown` instead of the path it was read from (for a
    /// MOJO read from a scratch copy, named as the user knows it). The core's own errors
    /// keep their path.
    pub fn shown_as(self, shown: &Path) -> Self {
        let p = shown.to_path_buf();
        match self {
            MojoError::Core(e) => MojoError::Core(e),
            MojoError::NotAMojo { detail, .. } => MojoError::NotAMojo { path: p, detail },
            MojoError::Invalid { file, detail, .. } => MojoError::Invalid {
                path: p,
                file,
                detail,
            },
            MojoError::Unsupported { file, detail, .. } => MojoError::Unsupported {
                path: p,
                file,
                detail,
            },
            MojoError::NotScorable {
                algo,
                category,
                reason,
                ..
            } => MojoError::NotScorable {
                path: p,
                algo,
                category,
                reason,
            },
        }
    }

    pub(crate) fn from_problem(path: &Path, p: MojoProblem) -> Self {
        match p.kind {
            ProblemKind::Invalid => MojoError::Invalid {
                path: path.to_path_buf(),
                file: p.file,
                detail: p.detail,
            },
            ProblemKind::Unsupported => MojoError::Unsupported {
                path: path.to_path_buf(),
                file: p.file,
                detail: p.detail,
            },
        }
    }
}

/// Reads a MOJO zip or folder through the core's safe reader, keeping in memory every
/// file (`keep_all`) or only the metadata files, and validates its structure
/// ([`Mojo::load`]).
pub fn read_mojo(
    path: &Path,
    read: &ReadOptions,
    keep_all: bool,
) -> Result<(Listing, MojoFiles, Mojo), MojoError> {
    let kind = artifact_core::source::detect(path)?;
    if matches!(kind, SourceKind::Tar | SourceKind::TarGz) {
        return Err(MojoError::NotAMojo {
            path: path.to_path_buf(),
            detail: "it is a tar archive; a MOJO is a zip (or an unpacked folder)".into(),
        });
    }
    let mut sink = MemorySink::new(|n: &str| keep_all || MojoFiles::is_metadata_file(n));
    let listing = read_source(path, read, &mut sink)?;
    let files = MojoFiles {
        names: listing.files.iter().map(|f| f.path.clone()).collect(),
        contents: sink.files,
    };
    if !files.names.contains("model.ini") {
        let found: Vec<&str> = files.names.iter().take(5).map(|s| s.as_str()).collect();
        let nested = files.names.iter().find(|n| n.ends_with("/model.ini"));
        return Err(MojoError::NotAMojo {
            path: path.to_path_buf(),
            detail: match nested {
                Some(n) => format!("no model.ini at its root (found {n:?}: a MOJO must not be wrapped in a folder)"),
                None => format!("no model.ini (found {})", found.join(", ")),
            },
        });
    }
    let mojo = Mojo::load(&files, "", 0).map_err(|p| MojoError::from_problem(path, p))?;
    Ok((listing, files, mojo))
}
