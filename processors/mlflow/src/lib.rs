//! The `python/mlflow` artifact processor: reads an MLflow model (a folder, or a zip or tar
//! of it), validates it without loading or unpickling anything, and writes a normalized
//! model directory whose manifest carries the MLOps input and output schema derived from
//! the model signature.
//!
//! Model types: `mlflow_pyfunc` (the whole MLflow model folder as `model/`) and `onnx`
//! (the `.onnx` file of an onnx-flavor model as `model.onnx`, with its external data).
//! The contract is `docs/model-directory.md`; the format reference is FORMATS.md §5.

pub mod analyze;
pub mod env;
pub mod error;
pub mod layout;
pub mod mlmodel;
pub mod onnx;
pub mod reader;
pub mod risk;
pub mod signature;
pub mod wrapped;
pub mod yaml;

use std::path::Path;

use artifact_core::{
    read_source, Context, DirSink, FileRecord, ModelDescription, Processor, ReadOptions, Staging,
};

pub use error::MlflowError;

use analyze::{analyze, Plan, PYFUNC_PAYLOAD};
use layout::{find_model_root, ModelFiles};
use reader::{DiskReader, InspectSink, MemoryReader};

/// The storage artifact type this processor reads.
pub const ARTIFACT_TYPE: &str = "python/mlflow";
/// Folder of the staging directory the source is first written to.
pub const EXTRACT_DIR: &str = ".extract";

/// What the processor produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelType {
    /// The whole MLflow model folder, served with `mlflow.pyfunc.load_model`.
    #[value(name = "mlflow_pyfunc")]
    MlflowPyfunc,
    /// The `.onnx` file of an onnx-flavor model, for an ONNX runtime.
    #[value(name = "onnx")]
    Onnx,
    /// The H2O-3 MOJO of an `h2o_mojo_pojo`-flavor model (h2o_mlflow_flavor), for the
    /// native H2O-3 runtime: the same directory the `h2o3/mojo` processor writes.
    #[value(name = "h2o3_mojo")]
    H2o3Mojo,
}

impl ModelType {
    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            ModelType::MlflowPyfunc => "mlflow_pyfunc",
            ModelType::Onnx => "onnx",
            ModelType::H2o3Mojo => "h2o3_mojo",
        }
    }
}

/// Flags of the MLflow processor.
#[derive(Debug, Clone, clap::Args)]
pub struct MlflowArgs {
    /// Model type to produce: mlflow_pyfunc (the whole model folder), onnx (the .onnx file of an onnx-flavor model) or h2o3_mojo (the MOJO of an h2o_mojo_pojo-flavor model, validated and described by the native H2O-3 runtime's loader).
    #[arg(
        long,
        value_enum,
        env = "MLFLOW_MODEL_TYPE",
        default_value = "mlflow_pyfunc"
    )]
    pub model_type: ModelType,
    /// Accept a model without a signature (or with only inputs or outputs); its schema is recorded as unknown.
    #[arg(long, env = "MLFLOW_ALLOW_NO_SIGNATURE")]
    pub allow_no_signature: bool,
    /// Accept signature columns without an MLOps type (binary, array, object, map, any, tensors of rank 3 or more or of a variable width): they are left out of the schema, listed in metadata.unmapped_columns, and the schema is recorded as unknown.
    #[arg(long, env = "MLFLOW_ALLOW_UNMAPPED_TYPES")]
    pub allow_unmapped_types: bool,
}

impl Default for MlflowArgs {
    fn default() -> Self {
        MlflowArgs {
            model_type: ModelType::MlflowPyfunc,
            allow_no_signature: false,
            allow_unmapped_types: false,
        }
    }
}

/// The processor.
#[derive(Debug)]
pub struct MlflowProcessor;

/// MLflow archives often carry `__MACOSX/`, `.DS_Store` and `Thumbs.db`: pass over them.
fn read_options(ctx: &Context<MlflowArgs>) -> ReadOptions {
    ReadOptions {
        skip_noise: true,
        ..ctx.read.clone()
    }
}

impl Processor for MlflowProcessor {
    const NAME: &'static str = "mlflow-processor";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ARTIFACT_TYPE: &'static str = ARTIFACT_TYPE;
    const ABOUT: &'static str = "Validates an MLflow model (folder, zip or tar) and writes a normalized model directory with its MLOps schema.";

    type Args = MlflowArgs;
    type Error = MlflowError;

    fn inspect(source: &Path, ctx: &Context<MlflowArgs>) -> Result<ModelDescription, MlflowError> {
        let mut sink = InspectSink::default();
        let listing = read_source(source, &read_options(ctx), &mut sink)?;
        let root = find_model_root(source, &listing)?;
        let files = ModelFiles::new(&listing, &root);
        let reader = MemoryReader {
            sink,
            root: root.clone(),
        };
        let a = analyze(source, &listing.source, &root, &files, &reader, &ctx.args)?;
        match a.wrapped_mojo.clone() {
            Some(rel) => {
                let full = if root.is_empty() {
                    rel
                } else {
                    format!("{root}/{rel}")
                };
                wrapped::describe_from_source(a, source, &full, &read_options(ctx))
            }
            None => Ok(a.description),
        }
    }

    fn process(
        source: &Path,
        staging: &mut Staging,
        ctx: &Context<MlflowArgs>,
    ) -> Result<ModelDescription, MlflowError> {
        let extract = staging.dir().join(EXTRACT_DIR);
        let mut sink = DirSink::new(&extract, |name: &str| Some(name.to_string()));
        let listing = read_source(source, &read_options(ctx), &mut sink)?;
        let written = std::mem::take(&mut sink.written);
        drop(sink);
        let root = find_model_root(source, &listing)?;
        let files = ModelFiles::new(&listing, &root);
        let model_dir = if root.is_empty() {
            extract.clone()
        } else {
            extract.join(&root)
        };
        let reader = DiskReader {
            dir: model_dir.clone(),
        };
        let mut a = analyze(source, &listing.source, &root, &files, &reader, &ctx.args)?;
        let plan = a.plan.clone();
        let description = match a.wrapped_mojo.take() {
            Some(rel) => {
                let shown = if root.is_empty() {
                    rel.clone()
                } else {
                    format!("{root}/{rel}")
                };
                wrapped::describe(a, source, &model_dir.join(&rel), &shown, &ctx.read)?
            }
            None => a.description,
        };

        // Records of what was written, keyed by model-relative path.
        let prefix = if root.is_empty() {
            String::new()
        } else {
            format!("{root}/")
        };
        let records: std::collections::BTreeMap<String, FileRecord> = written
            .into_iter()
            .filter_map(|r| {
                let rel = r.path.strip_prefix(&prefix)?.to_string();
                Some((rel.clone(), FileRecord { path: rel, ..r }))
            })
            .collect();
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(|e| MlflowError::io("move into place", to, e))
        };
        match &plan {
            Plan::Folder => {
                rename(&model_dir, &staging.dir().join(PYFUNC_PAYLOAD))?;
                staging.record_under(PYFUNC_PAYLOAD, records.into_values());
            }
            Plan::Files(moves) => {
                for (from, to) in moves {
                    let dest = staging.dir().join(to);
                    if let Some(parent) = dest.parent() {
                        artifact_core::fsutil::create_dir_all(parent)?;
                    }
                    rename(&model_dir.join(from), &dest)?;
                    let rec = records.get(from).ok_or_else(|| {
                        MlflowError::io(
                            "find the record of",
                            model_dir.join(from),
                            std::io::Error::other("written but not recorded"),
                        )
                    })?;
                    staging.record(FileRecord {
                        path: to.clone(),
                        ..rec.clone()
                    });
                }
            }
        }
        if std::fs::symlink_metadata(&extract).is_ok() {
            std::fs::remove_dir_all(&extract)
                .map_err(|e| MlflowError::io("remove", &extract, e))?;
        }
        Ok(description)
    }
}
