//! What a processor is to the shared command line: a format reader that can describe a
//! source (`inspect`) and fill a staging directory (`process`). Everything else (args,
//! logging, staging, manifest, publish, exit codes) is done once, in [`crate::cli`].

use std::path::Path;

use serde::Serialize;

use crate::error::Classify;
use crate::publish::Staging;
use crate::schema::Column;
use crate::source::{ReadOptions, SourceInfo};

/// What a processor learned about an artifact; with the file list it becomes the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDescription {
    pub id: String,
    pub artifact_type: String,
    pub model_type: String,
    pub source: SourceInfo,
    pub payload: String,
    pub schema_known: bool,
    pub input_schema: Vec<Column>,
    pub output_schema: Vec<Column>,
    pub capabilities: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Options every processor gets, plus its own arguments.
#[derive(Debug, Clone)]
pub struct Context<A> {
    pub read: ReadOptions,
    pub args: A,
}

/// One artifact format.
pub trait Processor {
    /// Binary name, e.g. `h2o3-mojo-processor`.
    const NAME: &'static str;
    /// Version written to the manifest.
    const VERSION: &'static str;
    /// Storage artifact type, e.g. `h2o3/mojo`.
    const ARTIFACT_TYPE: &'static str;
    /// One-line description for `--help`.
    const ABOUT: &'static str;

    /// Format-specific flags.
    type Args: clap::Args + Clone + std::fmt::Debug;
    /// The processor's error enum.
    type Error: std::error::Error + Classify + From<crate::Error> + Send + Sync + 'static;

    /// Reads and validates `source` without writing anything.
    fn inspect(source: &Path, ctx: &Context<Self::Args>) -> Result<ModelDescription, Self::Error>;

    /// Reads and validates `source` and writes the payload into `staging`.
    fn process(
        source: &Path,
        staging: &mut Staging,
        ctx: &Context<Self::Args>,
    ) -> Result<ModelDescription, Self::Error>;
}

impl ModelDescription {
    /// A human summary: type, algorithm-ish metadata and both schemas.
    pub fn render_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "artifact type: {}", self.artifact_type);
        let _ = writeln!(s, "model type:    {}", self.model_type);
        let _ = writeln!(s, "id:            {}", self.id);
        let _ = writeln!(
            s,
            "source:        {} ({:?}, {} bytes, sha256 {})",
            self.source.file_name, self.source.kind, self.source.size, self.source.sha256
        );
        let _ = writeln!(s, "payload:       {}", self.payload);
        if !self.capabilities.is_empty() {
            let _ = writeln!(s, "capabilities:  {}", self.capabilities.join(", "));
        }
        for key in crate::cli::SUMMARY_KEYS {
            if let Some(v) = self.metadata.get(*key) {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = writeln!(s, "{:<14} {}", format!("{key}:"), v);
            }
        }
        if !self.schema_known {
            let _ = writeln!(s, "schema:        unknown (accepted by flag)");
        }
        for (title, cols) in [
            ("inputs", &self.input_schema),
            ("outputs", &self.output_schema),
        ] {
            let _ = writeln!(s, "{title} ({}):", cols.len());
            for c in cols.iter() {
                let _ = writeln!(s, "  {:<8} {}", c.ty.as_str(), c.name);
            }
        }
        s
    }
}
