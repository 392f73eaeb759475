//! The `h2o3/mojo` processor: validates an H2O-3 MOJO (a zip or an unpacked folder) and
//! writes it as `model.mojo` with its schema into a normalized model directory.
//!
//! Validity is judged once, by the loader the runtime uses: the processor reads the MOJO
//! with `h2o3_scorer::H2oScorer::open` (every file, every tree, domain, sub-model and
//! encoding decoded), so a MOJO the native runtime would refuse is refused here, with the
//! same message, and the schemas it publishes are the ones the runtime scores by. The
//! MOJO reader itself ([`mojo`], [`ini`], [`domains`]) lives in `h2o3-scorer` and is
//! re-exported here for the other processors and tools.

use std::io::Cursor;
use std::path::Path;

use artifact_core::{Context, Listing, ModelDescription, Processor, SourceKind, Staging};
pub use h2o3_scorer::{
    domains, ini, mojo, read_mojo, H2oScorer, Mojo, MojoError, MojoFiles, MojoProblem, ProblemKind,
};
use serde_json::json;

/// Artifact type this processor reads.
pub const ARTIFACT_TYPE: &str = "h2o3/mojo";
/// Model type it produces.
pub const MODEL_TYPE: &str = "h2o3_mojo";
/// File name of the payload in the model directory.
pub const PAYLOAD: &str = "model.mojo";

/// The manifest description of a loaded MOJO: schemas and capabilities as the runtime
/// will serve them, the MOJO's facts as metadata.
pub fn describe(listing: &Listing, mojo: &Mojo, scorer: &H2oScorer) -> ModelDescription {
    let mut metadata = mojo.metadata();
    metadata.insert("entries".into(), json!(listing.files.len()));
    if !scorer.metadata().is_empty() {
        metadata.insert("scoring".into(), json!(scorer.metadata()));
    }
    let id = mojo
        .ini
        .get("uuid")
        .map(|s| s.to_string())
        .unwrap_or_else(|| listing.source.sha256[..16].to_string());
    ModelDescription {
        id,
        artifact_type: ARTIFACT_TYPE.into(),
        model_type: MODEL_TYPE.into(),
        source: listing.source.clone(),
        payload: PAYLOAD.into(),
        schema_known: true,
        input_schema: scorer.input_schema().to_vec(),
        output_schema: scorer.output_schema().to_vec(),
        capabilities: scorer.capabilities(),
        metadata,
    }
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
        "Validates an H2O-3 MOJO (zip or folder) with the native runtime's own loader and writes a normalized model directory (model type h2o3_mojo).";
    type Args = NoArgs;
    type Error = MojoError;

    fn inspect(source: &Path, ctx: &Context<NoArgs>) -> Result<ModelDescription, MojoError> {
        let loaded = H2oScorer::open(source, &ctx.read)?;
        Ok(describe(&loaded.listing, &loaded.mojo, &loaded.scorer))
    }

    fn process(
        source: &Path,
        staging: &mut Staging,
        ctx: &Context<NoArgs>,
    ) -> Result<ModelDescription, MojoError> {
        let loaded = H2oScorer::open(source, &ctx.read)?;
        let (listing, mojo) = (&loaded.listing, &loaded.mojo);
        let d = describe(listing, mojo, &loaded.scorer);
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
        tracing::info!(algo = %mojo.algo(), category = %mojo.category(), inputs = d.input_schema.len(), outputs = d.output_schema.len(), "validated MOJO with the native loader");
        Ok(d)
    }
}
