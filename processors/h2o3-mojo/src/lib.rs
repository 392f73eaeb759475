//! The `h2o3/mojo` processor: validates an H2O-3 MOJO (a zip or an unpacked folder) and
//! writes it as `model.mojo` with its schema into a normalized model directory.
//!
//! The MOJO reader ([`mojo`], [`ini`], [`domains`]) is also used by the runtime shim to
//! load the payload it scores.

pub mod domains;
pub mod ini;
pub mod mojo;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use artifact_core::{
    read_source, Classify, Context, ErrorClass, Listing, MemorySink, ModelDescription, Processor,
    ReadOptions, SourceKind, Staging,
};
use serde_json::json;

pub use mojo::{Mojo, MojoFiles, MojoProblem, ProblemKind};

/// Artifact type this processor reads.
pub const ARTIFACT_TYPE: &str = "h2o3/mojo";
/// Model type it produces.
pub const MODEL_TYPE: &str = "h2o3_mojo";
/// File name of the payload in the model directory.
pub const PAYLOAD: &str = "model.mojo";

/// Errors of the H2O-3 MOJO processor.
#[derive(Debug, thiserror::Error)]
pub enum MojoError {
    #[error(transparent)]
    Core(#[from] artifact_core::Error),
    #[error("{path}: not an H2O-3 MOJO: {detail}")]
    NotAMojo { path: PathBuf, detail: String },
    #[error("{path}: {file}: {detail}")]
    Invalid {
        path: PathBuf,
        file: String,
        detail: String,
    },
    #[error("{path}: {file}: unsupported: {detail}")]
    Unsupported {
        path: PathBuf,
        file: String,
        detail: String,
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
    fn from_problem(path: &Path, p: MojoProblem) -> Self {
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

/// Reads a MOJO zip or folder through the core's safe reader, keeping in memory the
/// files `keep` selects (always at least the metadata files), and validates it.
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

fn describe(path: &Path, listing: &Listing, mojo: &Mojo) -> Result<ModelDescription, MojoError> {
    let output_schema = mojo
        .output_schema()
        .map_err(|p| MojoError::from_problem(path, p))?;
    let mut metadata = mojo.metadata();
    metadata.insert("entries".into(), json!(listing.files.len()));
    let id = mojo
        .ini
        .get("uuid")
        .map(|s| s.to_string())
        .unwrap_or_else(|| listing.source.sha256[..16].to_string());
    Ok(ModelDescription {
        id,
        artifact_type: ARTIFACT_TYPE.into(),
        model_type: MODEL_TYPE.into(),
        source: listing.source.clone(),
        payload: PAYLOAD.into(),
        schema_known: true,
        input_schema: mojo.input_schema(),
        output_schema,
        capabilities: vec!["SCORE".into()],
        metadata,
    })
}

/// The H2O-3 MOJO processor.
pub struct H2o3MojoProcessor;

/// This processor has no flags of its own.
#[derive(Debug, Clone, clap::Args)]
pub struct NoArgs {}

impl Processor for H2o3MojoProcessor {
    const NAME: &'static str = "h2o3-mojo-processor";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ARTIFACT_TYPE: &'static str = ARTIFACT_TYPE;
    const ABOUT: &'static str =
        "Validates an H2O-3 MOJO (zip or folder) and writes a normalized model directory (model type h2o3_mojo).";
    type Args = NoArgs;
    type Error = MojoError;

    fn inspect(source: &Path, ctx: &Context<NoArgs>) -> Result<ModelDescription, MojoError> {
        let (listing, _, mojo) = read_mojo(source, &ctx.read, false)?;
        describe(source, &listing, &mojo)
    }

    fn process(
        source: &Path,
        staging: &mut Staging,
        ctx: &Context<NoArgs>,
    ) -> Result<ModelDescription, MojoError> {
        let (listing, _, mojo) = read_mojo(source, &ctx.read, false)?;
        let d = describe(source, &listing, &mojo)?;
        match listing.source.kind {
            SourceKind::Zip => {
                let rec = staging.copy_file(PAYLOAD, source)?;
                if rec.sha256 != listing.source.sha256 {
                    return Err(artifact_core::Error::Io {
                        op: "copy",
                        path: source.to_path_buf(),
                        source: std::io::Error::other("the source changed while it was processed"),
                    }
                    .into());
                }
            }
            _ => {
                // An unpacked MOJO folder becomes a zip, as MojoModel.load expects a file.
                let bytes = artifact_core::zipwrite::zip_directory(source, &listing.files)?;
                staging.write_file(PAYLOAD, &mut Cursor::new(bytes))?;
            }
        }
        tracing::info!(algo = %mojo.algo(), category = %mojo.category(), inputs = d.input_schema.len(), outputs = d.output_schema.len(), "validated MOJO");
        Ok(d)
    }
}
