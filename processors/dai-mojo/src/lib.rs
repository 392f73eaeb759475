//! The `dai/mojo_pipeline` processor: validates a Driverless AI MOJO2 pipeline (a bare
//! `pipeline.mojo`, a `mojo.zip` holding a `mojo-pipeline/` folder, or such a folder)
//! and writes `pipeline.mojo`, byte for byte, with its schema into a normalized model
//! directory.
//!
//! [`layout`] reads the source shapes through the core's safe reader, [`pipeline`]
//! turns the descriptors into a [`Pipeline`], which [`toml_gen`] and [`proto_gen`]
//! parse for each generation; [`wire`] is the protobuf wire-format reader the latter
//! needs because the pipeline's `.proto` is not public.

pub mod error;
pub mod layout;
pub mod pipeline;
pub mod proto_gen;
pub mod toml_gen;
pub mod wire;

use std::path::Path;

use artifact_core::{Column, Context, ModelDescription, Processor, Staging};
use serde_json::{json, Map, Value};

pub use error::DaiError;
pub use layout::{Layout, SourceRead};
pub use pipeline::{DaiColumn, Generation, Pipeline, PipelineFiles};

/// Artifact type this processor reads.
pub const ARTIFACT_TYPE: &str = "dai/mojo_pipeline";
/// Model type it produces.
pub const MODEL_TYPE: &str = "dai_mojo_pipeline";

/// What the processor learned: the source as read and the pipeline it holds.
#[derive(Debug)]
pub struct Analysis {
    pub read: SourceRead,
    pub pipeline: Pipeline,
}

/// Reads and validates `source`; package files (`pipeline.mojo`, `example.csv`) are
/// written to `out_dir`, which must be an empty folder.
pub fn analyze(
    source: &Path,
    opts: &artifact_core::ReadOptions,
    out_dir: &Path,
) -> Result<Analysis, DaiError> {
    let read = layout::read(source, opts, out_dir)?;
    let pipeline = pipeline::read_pipeline(&read.pipeline_display, &read.files)?;
    if !read.licences_dropped.is_empty() {
        tracing::warn!(
            files = ?read.licences_dropped,
            "licence files found in the source are not copied: a licence is a secret that the runtime reads from its own mount (DRIVERLESS_AI_LICENSE_FILE or DRIVERLESS_AI_LICENSE_KEY)"
        );
    }
    tracing::info!(
        layout = read.layout.as_str(),
        generation = pipeline.generation.as_str(),
        inputs = pipeline.inputs.len(),
        outputs = pipeline.outputs.len(),
        nested = pipeline.nested.len(),
        entries = read.inner.files.len(),
        "pipeline read"
    );
    Ok(Analysis { read, pipeline })
}

fn non_empty(s: Option<&String>) -> Option<&String> {
    s.filter(|s| !s.is_empty())
}

impl Analysis {
    /// The format metadata of the manifest.
    pub fn metadata(&self) -> Map<String, Value> {
        let (r, p) = (&self.read, &self.pipeline);
        let mut m = Map::new();
        m.insert("generation".into(), json!(p.generation.as_str()));
        m.insert("source_layout".into(), json!(r.layout.as_str()));
        if let Layout::Package { member } = &r.layout {
            m.insert("package_pipeline".into(), json!(member));
            m.insert("package_files_skipped".into(), json!(r.skipped));
        }
        let opt = |m: &mut Map<String, Value>, k: &str, v: Option<&String>| {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        };
        opt(&mut m, "uuid", p.uuid.as_ref());
        opt(&mut m, "experiment_id", p.experiment_id.as_ref());
        opt(&mut m, "time_created", p.time_created.as_ref());
        opt(&mut m, "mojo_version", p.mojo_version.as_ref());
        if let Some(mv) = &p.missing_values {
            m.insert("missing_values".into(), json!(mv));
        }

        let inner_info = r
            .files
            .contents
            .get(pipeline::BUILD_INFO)
            .map(|b| pipeline::parse_build_info(b));
        let package_info = r
            .package_build_info
            .as_ref()
            .map(|(name, b)| (name.clone(), pipeline::parse_build_info(b)));
        let infos: Vec<(String, &std::collections::BTreeMap<String, String>)> = inner_info
            .as_ref()
            .map(|i| (pipeline::BUILD_INFO.to_string(), i))
            .into_iter()
            .chain(package_info.as_ref().map(|(n, i)| (n.clone(), i)))
            .collect();
        let from_info = |key: &str| {
            infos
                .iter()
                .find_map(|(n, i)| non_empty(i.get(key)).map(|v| (n.clone(), v.clone())))
        };
        let version = match (
            non_empty(inner_info.as_ref().and_then(|i| i.get("version"))),
            non_empty(p.dai_version.as_ref()),
        ) {
            (Some(v), _) => Some((pipeline::BUILD_INFO.to_string(), v.clone())),
            (None, Some(v)) => Some((p.generation.root().to_string(), v.clone())),
            (None, None) => from_info("version"),
        };
        match version {
            Some((from, v)) => {
                m.insert("dai_version".into(), json!(v));
                m.insert("dai_version_source".into(), json!(from));
            }
            None => tracing::warn!(
                "no DAI version: neither mojo/dai_build.info, the descriptor nor a package dai_build.info records one"
            ),
        }
        if let Some((_, v)) = from_info("base_version") {
            m.insert("dai_base_version".into(), json!(v));
        }
        if let Some((_, v)) = from_info("mojo2_runtime_version") {
            m.insert("mojo2_runtime_version".into(), json!(v));
        }
        m.insert(
            "input_dai_types".into(),
            json!(p.inputs.iter().map(|c| &c.dai_type).collect::<Vec<_>>()),
        );
        m.insert(
            "output_dai_types".into(),
            json!(p.outputs.iter().map(|c| &c.dai_type).collect::<Vec<_>>()),
        );
        let names = &r.files.names;
        m.insert(
            "has_signature".into(),
            json!(names.contains(pipeline::SIGNATURE)),
        );
        m.insert(
            "has_watermark".into(),
            json!(names.contains(pipeline::WATERMARK)),
        );
        m.insert("licence_files_dropped".into(), json!(r.licences_dropped));
        m.insert("entries".into(), json!(r.inner.files.len()));
        m.insert("nested_pipelines".into(), json!(p.nested.len()));
        m
    }

    /// The description written to the manifest.
    pub fn describe(&self) -> ModelDescription {
        let p = &self.pipeline;
        let id = p.uuid.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| {
            tracing::warn!(
                "the pipeline has no uuid: using the sha256 of pipeline.mojo as the model id"
            );
            self.read.inner.source.sha256.clone()
        });
        let cols = |v: &[DaiColumn]| v.iter().map(|c| Column::new(&c.name, c.ty)).collect();
        ModelDescription {
            id,
            artifact_type: ARTIFACT_TYPE.into(),
            model_type: MODEL_TYPE.into(),
            source: self.read.outer.source.clone(),
            payload: layout::PIPELINE.into(),
            schema_known: true,
            input_schema: cols(&p.inputs),
            output_schema: cols(&p.outputs),
            capabilities: p.capabilities(),
            metadata: self.metadata(),
        }
    }
}

/// The DAI MOJO pipeline processor.
pub struct DaiMojoProcessor;

/// This processor has no flags of its own.
#[derive(Debug, Clone, clap::Args)]
pub struct DaiArgs {}

impl Processor for DaiMojoProcessor {
    const NAME: &'static str = "dai-mojo-processor";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ARTIFACT_TYPE: &'static str = ARTIFACT_TYPE;
    const ABOUT: &'static str = "Validates a Driverless AI MOJO2 pipeline (pipeline.mojo, mojo.zip or a mojo-pipeline folder) and writes it with its schema into a normalized model directory.";

    type Args = DaiArgs;
    type Error = DaiError;

    fn inspect(source: &Path, ctx: &Context<DaiArgs>) -> Result<ModelDescription, DaiError> {
        // A package's pipeline.mojo is read from a copy: keep it in a scratch folder
        // outside any target, removed on return.
        let scratch = tempfile::Builder::new()
            .prefix("dai-mojo-inspect-")
            .tempdir()
            .map_err(|e| DaiError::Scratch {
                dir: std::env::temp_dir(),
                source: e,
            })?;
        let a = analyze(source, &ctx.read, scratch.path())?;
        Ok(a.describe())
    }

    fn process(
        source: &Path,
        staging: &mut Staging,
        ctx: &Context<DaiArgs>,
    ) -> Result<ModelDescription, DaiError> {
        let a = analyze(source, &ctx.read, staging.dir())?;
        match a.read.layout {
            Layout::Bare => {
                let rec = staging.copy_file(layout::PIPELINE, source)?;
                if rec.sha256 != a.read.outer.source.sha256 {
                    return Err(artifact_core::Error::Io {
                        op: "copy",
                        path: source.to_path_buf(),
                        source: std::io::Error::other("the source changed while it was read"),
                    }
                    .into());
                }
            }
            Layout::Package { .. } => {
                for rec in &a.read.written {
                    staging.record(rec.clone());
                }
            }
        }
        Ok(a.describe())
    }
}
