//! What this processor learns from a `pipeline.mojo`, whichever generation wrote it: the
//! shared result type, the DAI type names and their MLOps column types, `dai_build.info`,
//! and the reading of the zip's descriptors into that result.
//!
//! The generations themselves are parsed in [`crate::toml_gen`] and [`crate::proto_gen`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use artifact_core::ColumnType;

use crate::error::DaiError;

/// Root descriptor of the TOML generation.
pub const ROOT_TOML: &str = "mojo/pipeline.toml";
/// Root descriptor of the protobuf generation.
pub const ROOT_PB: &str = "mojo/pipeline.pb";
/// Build information written by DAI.
pub const BUILD_INFO: &str = "mojo/dai_build.info";
/// Signature and watermark.
pub const SIGNATURE: &str = "mojo/pipeline.sig";
pub const WATERMARK: &str = "mojo/pipeline.wm";
/// Deepest chain of nested pipelines that is followed.
pub const MAX_NESTING: usize = 8;

/// The files of a `pipeline.mojo` that the reader needs in memory.
pub fn keep_in_memory(name: &str) -> bool {
    name == BUILD_INFO
        || name == WATERMARK
        || (name.starts_with("mojo/")
            && (name.ends_with("/pipeline.toml") || name.ends_with("/pipeline.pb")))
}

/// The generation of a pipeline, from its root descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    Toml,
    Protobuf,
}

impl Generation {
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::Toml => "toml",
            Generation::Protobuf => "protobuf",
        }
    }

    pub fn root(self) -> &'static str {
        match self {
            Generation::Toml => ROOT_TOML,
            Generation::Protobuf => ROOT_PB,
        }
    }
}

/// One input or output column: its name, its type as DAI names it, and the MLOps type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaiColumn {
    pub name: String,
    pub dai_type: String,
    pub ty: ColumnType,
}

/// Maps a DAI type name (TOML `float64`, or the Java/REST `Float64`, `Str`, ...) to the
/// MLOps column type.
pub fn map_type(dai_type: &str) -> Option<ColumnType> {
    Some(match dai_type.to_ascii_lowercase().as_str() {
        "bool" => ColumnType::Boolean,
        "int32" => ColumnType::Int32,
        "int64" => ColumnType::Int64,
        "float32" => ColumnType::Float32,
        "float64" => ColumnType::Float64,
        "str" => ColumnType::String,
        "time64" => ColumnType::Time64,
        _ => return None,
    })
}

/// What a root descriptor says.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub generation: Generation,
    pub mojo_version: Option<String>,
    pub uuid: Option<String>,
    pub experiment_id: Option<String>,
    /// ISO-8601: TOML's local date-time as written, protobuf's timestamp in UTC.
    pub time_created: Option<String>,
    pub missing_values: Option<Vec<String>>,
    pub inputs: Vec<DaiColumn>,
    pub outputs: Vec<DaiColumn>,
    /// The DAI version the descriptor records (protobuf field 13).
    pub dai_version: Option<String>,
    /// Columns of the transformed-feature frame (protobuf field 14).
    pub transformed_features: usize,
    /// Entries of the transformed-to-original Shapley mapping (protobuf field 16).
    pub original_contributions: usize,
    /// Zip entries of the prediction-interval tables (protobuf field 17).
    pub interval_tables: Vec<String>,
    /// Nested descriptors, checked to exist, in the order they were met.
    pub nested: Vec<String>,
}

impl Pipeline {
    pub fn new(generation: Generation) -> Self {
        Pipeline {
            generation,
            mojo_version: None,
            uuid: None,
            experiment_id: None,
            time_created: None,
            missing_values: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            dai_version: None,
            transformed_features: 0,
            original_contributions: 0,
            interval_tables: Vec::new(),
            nested: Vec::new(),
        }
    }

    /// True when the outputs hold `t`, `t.lower` and `t.upper` for some `t`.
    pub fn has_interval_outputs(&self) -> bool {
        let names: BTreeSet<&str> = self.outputs.iter().map(|c| c.name.as_str()).collect();
        names.iter().any(|n| {
            n.strip_suffix(".lower")
                .is_some_and(|t| names.contains(t) && names.contains(format!("{t}.upper").as_str()))
        })
    }

    /// MLOps capability names, in the order of the `CapabilityType` enum.
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps = vec!["SCORE".to_string()];
        if !self.interval_tables.is_empty() || self.has_interval_outputs() {
            caps.push("SCORE_PREDICTION_INTERVAL".into());
        }
        if self.original_contributions > 0 {
            caps.push("CONTRIBUTION_ORIGINAL".into());
        }
        if self.transformed_features > 0 {
            caps.push("CONTRIBUTION_TRANSFORMED".into());
        }
        caps
    }
}

/// The content of a `pipeline.mojo` as the reader sees it.
#[derive(Debug, Clone, Default)]
pub struct PipelineFiles {
    /// Every file name in the zip.
    pub names: BTreeSet<String>,
    /// The files [`keep_in_memory`] selected.
    pub contents: BTreeMap<String, Vec<u8>>,
}

/// Reads the root descriptor (protobuf first, as the runtimes do), checks the pipeline's
/// references and returns what it says. `path` names the pipeline in errors.
pub fn read_pipeline(path: &Path, files: &PipelineFiles) -> Result<Pipeline, DaiError> {
    if let Some(lic) = files.names.iter().find(|n| is_licence(n)) {
        return Err(DaiError::LicenceInPipeline {
            path: path.to_path_buf(),
            entry: lic.clone(),
        });
    }
    let p = if let Some(pb) = files.contents.get(ROOT_PB) {
        crate::proto_gen::parse(path, pb, files)?
    } else if let Some(t) = files.contents.get(ROOT_TOML) {
        crate::toml_gen::parse(path, t, files)?
    } else {
        let found: Vec<&str> = files.names.iter().take(5).map(|s| s.as_str()).collect();
        return Err(DaiError::NoDescriptor {
            path: path.to_path_buf(),
            found: if found.is_empty() {
                "no files".into()
            } else {
                format!(
                    "{}{}",
                    found.join(", "),
                    if files.names.len() > 5 { ", ..." } else { "" }
                )
            },
        });
    };
    check_schema(path, &p)?;
    Ok(p)
}

fn check_schema(path: &Path, p: &Pipeline) -> Result<(), DaiError> {
    let invalid = |detail: String| DaiError::Invalid {
        path: path.to_path_buf(),
        entry: p.generation.root().into(),
        detail,
    };
    for (what, cols) in [("input features", &p.inputs), ("outputs", &p.outputs)] {
        if cols.is_empty() {
            return Err(invalid(format!("the pipeline declares no {what}")));
        }
        let mut seen = BTreeSet::new();
        for c in cols {
            if c.name.is_empty() {
                return Err(invalid(format!("one of the {what} has an empty name")));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(invalid(format!("the {what} name {:?} twice", c.name)));
            }
        }
    }
    Ok(())
}

/// True for licence files, which are secrets and never part of a model directory.
pub fn is_licence(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    matches!(base.as_str(), "license.sig" | "license.lic")
}

/// Resolves a reference to a zip entry: first as given, then below each of `bases`.
/// Unsafe references (absolute, `..`) are refused. `Ok(None)` means "not in the zip".
pub fn resolve(
    path: &Path,
    entry: &str,
    reference: &str,
    bases: &[&str],
    files: &PipelineFiles,
) -> Result<Option<String>, DaiError> {
    let limits = artifact_core::Limits::default();
    let norm = artifact_core::names::normalize_entry_name(reference, &limits).map_err(|r| {
        DaiError::Invalid {
            path: path.to_path_buf(),
            entry: entry.to_string(),
            detail: format!("refers to {reference:?}, an unsafe path: {r}"),
        }
    })?;
    if files.names.contains(&norm) {
        return Ok(Some(norm));
    }
    for base in bases {
        let cand = if base.is_empty() {
            norm.clone()
        } else {
            format!("{base}/{norm}")
        };
        if files.names.contains(&cand) {
            return Ok(Some(cand));
        }
    }
    Ok(None)
}

/// The directory part of an entry name (`mojo/a/pipeline.pb` → `mojo/a`).
pub fn parent(name: &str) -> &str {
    name.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// `dai_build.info`: `key="value"` lines.
pub fn parse_build_info(bytes: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || k.starts_with('#') {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(v);
        map.insert(k.to_string(), v.to_string());
    }
    map
}

/// A display path for an entry inside a source: `outer!member`.
pub fn inner_path(outer: &Path, member: &str) -> PathBuf {
    PathBuf::from(format!("{}!{member}", outer.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        let cases = [
            ("float64", Some(ColumnType::Float64)),
            ("Float64", Some(ColumnType::Float64)),
            ("float32", Some(ColumnType::Float32)),
            ("int32", Some(ColumnType::Int32)),
            ("int64", Some(ColumnType::Int64)),
            ("str", Some(ColumnType::String)),
            ("Str", Some(ColumnType::String)),
            ("bool", Some(ColumnType::Boolean)),
            ("time64", Some(ColumnType::Time64)),
            ("decimal", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(map_type(name), want, "case {name}");
        }
    }

    #[test]
    fn build_info() {
        let m = parse_build_info(
            b"suffix=\"\"\nversion=\"1.9.3\"\n# comment\nbad line\nmojo2_runtime_version = 2.6.0 \n",
        );
        assert_eq!(m.get("version").map(String::as_str), Some("1.9.3"));
        assert_eq!(m.get("suffix").map(String::as_str), Some(""));
        assert_eq!(
            m.get("mojo2_runtime_version").map(String::as_str),
            Some("2.6.0")
        );
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn licence_names() {
        for (name, want) in [
            ("license.sig", true),
            ("mojo-pipeline/license.sig", true),
            ("x/LICENSE.LIC", true),
            ("license.txt", false),
            ("mojo/pipeline.sig", false),
        ] {
            assert_eq!(is_licence(name), want, "case {name}");
        }
    }

    #[test]
    fn interval_outputs() {
        let col = |n: &str| DaiColumn {
            name: n.into(),
            dai_type: "Float64".into(),
            ty: ColumnType::Float64,
        };
        let mut p = Pipeline::new(Generation::Protobuf);
        p.outputs = vec![col("t"), col("t.lower"), col("t.upper")];
        assert!(p.has_interval_outputs());
        p.outputs = vec![col("t"), col("t.lower")];
        assert!(!p.has_interval_outputs());
        p.outputs = vec![col("class.lower"), col("class.upper")];
        assert!(!p.has_interval_outputs());
    }
}
