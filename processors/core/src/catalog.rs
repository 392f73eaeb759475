//! The composition catalog (`catalog.json` at the repository root), compiled in.
//!
//! It is the one machine-readable description of what can be deployed: artifact types,
//! processors (and the model types each produces), model types, runtimes (and the model
//! types each serves). Binaries take their names from it, and tests fail when a
//! processor, the shim, an image or the Kubernetes example drifts from it.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The catalog as written in the repository.
pub const CATALOG_JSON: &str = include_str!("../../../catalog.json");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub catalog_version: u32,
    #[serde(default)]
    pub description: String,
    pub artifact_types: Vec<ArtifactTypeEntry>,
    pub model_types: Vec<ModelTypeEntry>,
    pub processors: Vec<ProcessorEntry>,
    pub runtimes: Vec<RuntimeEntry>,
}

/// A storage artifact type and its deployable name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactTypeEntry {
    pub name: String,
    pub deployable_name: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelTypeEntry {
    pub name: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorEntry {
    /// Binary name.
    pub name: String,
    pub display_name: String,
    pub artifact_type: String,
    pub model_types: Vec<String>,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeEntry {
    pub name: String,
    pub display_name: String,
    /// Binary the runtime image runs.
    pub binary: String,
    pub model_types: Vec<String>,
    /// The image built by `make images` (images/images.txt), with the binary as its
    /// entrypoint.
    pub image: String,
}

/// One way to deploy an artifact: the tuple a deployment request names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Composition {
    pub artifact_type: String,
    pub deployable_artifact_type: String,
    pub artifact_processor: String,
    pub processor_image: String,
    pub model_type: String,
    pub runtime: String,
    pub runtime_image: String,
}

/// The compiled-in catalog.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let c: Catalog = serde_json::from_str(CATALOG_JSON).expect("catalog.json is valid");
        c.check().expect("catalog.json is consistent");
        c
    })
}

impl Catalog {
    /// Every reference names an entry that exists, and names are unique.
    pub fn check(&self) -> Result<(), String> {
        let has_model = |m: &str| self.model_types.iter().any(|t| t.name == m);
        let has_artifact = |a: &str| self.artifact_types.iter().any(|t| t.name == a);
        let mut names = std::collections::HashSet::new();
        for p in &self.processors {
            if !names.insert(&p.name) {
                return Err(format!("duplicate name {:?}", p.name));
            }
            if !has_artifact(&p.artifact_type) {
                return Err(format!(
                    "processor {}: unknown artifact type {:?}",
                    p.name, p.artifact_type
                ));
            }
            if let Some(m) = p.model_types.iter().find(|m| !has_model(m)) {
                return Err(format!("processor {}: unknown model type {m:?}", p.name));
            }
        }
        for r in &self.runtimes {
            if !names.insert(&r.name) {
                return Err(format!("duplicate name {:?}", r.name));
            }
            if let Some(m) = r.model_types.iter().find(|m| !has_model(m)) {
                return Err(format!("runtime {}: unknown model type {m:?}", r.name));
            }
        }
        Ok(())
    }

    pub fn processor(&self, name: &str) -> Option<&ProcessorEntry> {
        self.processors.iter().find(|p| p.name == name)
    }

    pub fn artifact_type(&self, name: &str) -> Option<&ArtifactTypeEntry> {
        self.artifact_types.iter().find(|a| a.name == name)
    }

    /// Model types the runtimes run by `binary` serve.
    pub fn served_by_binary(&self, binary: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .runtimes
            .iter()
            .filter(|r| r.binary == binary)
            .flat_map(|r| r.model_types.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Runtimes that serve a model type.
    pub fn runtimes_for(&self, model_type: &str) -> Vec<&RuntimeEntry> {
        self.runtimes
            .iter()
            .filter(|r| r.model_types.iter().any(|m| m == model_type))
            .collect()
    }

    /// Every composition for an artifact type (all of them when `None`).
    pub fn compositions(&self, artifact_type: Option<&str>) -> Vec<Composition> {
        let mut out = Vec::new();
        for p in &self.processors {
            if artifact_type.is_some_and(|a| a != p.artifact_type) {
                continue;
            }
            let deployable = self
                .artifact_type(&p.artifact_type)
                .map(|a| a.deployable_name.clone())
                .unwrap_or_default();
            for m in &p.model_types {
                for r in self.runtimes_for(m) {
                    out.push(Composition {
                        artifact_type: p.artifact_type.clone(),
                        deployable_artifact_type: deployable.clone(),
                        artifact_processor: p.name.clone(),
                        processor_image: p.image.clone(),
                        model_type: m.clone(),
                        runtime: r.name.clone(),
                        runtime_image: r.image.clone(),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        let c = catalog();
        assert_eq!(c.catalog_version, 1);
        assert!(!c.compositions(Some("h2o3/mojo")).is_empty());
        let mut broken = c.clone();
        broken.processors[0].model_types.push("nope".into());
        assert!(broken.check().is_err());
    }
}
