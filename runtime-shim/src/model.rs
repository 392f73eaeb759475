//! Start-up: from `MODEL_PATH` to a model that serves.
//!
//! The directory is trusted only after the contract's checks, cheapest first: it exists,
//! its `model.json` parses with the supported contract version, its model type is one this
//! runtime serves, and `verify` finds every file with its recorded size and sha256 and
//! nothing else. Only then does the backend load the payload. Everything the read-only
//! endpoints return is serialized here, once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use artifact_core::Manifest;
use axum::body::Bytes;

use crate::api::{ModelInfo, RequestRules, SampleRequest};
use crate::backend::{runtime_needed, Backend, BackendConfig, BackendKind, BACKENDS};
use crate::error::ShimError;

/// A verified, loaded model and its precomputed answers.
pub struct LoadedModel {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// `MODEL_ID` if set, else the manifest's id.
    pub id: String,
    /// Shared with the batch command's scoring threads.
    pub backend: Arc<dyn Backend>,
    pub rules: RequestRules,
    pub schema_json: Bytes,
    pub sample_request_json: Bytes,
    pub capabilities_json: Bytes,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("dir", &self.dir)
            .field("id", &self.id)
            .field("model_type", &self.manifest.model_type)
            .field("backend", &self.backend.describe())
            .finish()
    }
}

/// The backends for `requested` model types; none (or only empty names) means every
/// backend of this build.
pub fn served_backends(requested: &[String]) -> Result<Vec<BackendKind>, ShimError> {
    let named: Vec<&str> = requested
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if named.is_empty() {
        return Ok(BACKENDS.to_vec());
    }
    named
        .into_iter()
        .map(|t| {
            BACKENDS
                .iter()
                .find(|b| b.model_type == t)
                .copied()
                .ok_or_else(|| ShimError::UnknownModelType {
                    given: t.to_string(),
                    available: available(),
                })
        })
        .collect()
}

fn available() -> String {
    BACKENDS
        .iter()
        .map(|b| b.model_type)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cheap start-up checks, done before the port is bound: `dir` exists, its
/// `model.json` parses with the supported contract version, its model type is served,
/// and that backend's settings are usable (a proxy backend's command). Returns the
/// backend that will load it.
pub fn precheck(
    dir: &Path,
    served: &[BackendKind],
    cfg: &BackendConfig,
) -> Result<BackendKind, ShimError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Err(ShimError::ModelPathMissing {
            path: dir.to_path_buf(),
        });
    }
    let manifest = Manifest::read(dir)?;
    let kind = served
        .iter()
        .find(|b| b.model_type == manifest.model_type)
        .copied()
        .ok_or_else(|| ShimError::ModelTypeNotServed {
            path: dir.to_path_buf(),
            model_type: manifest.model_type.clone(),
            served: served
                .iter()
                .map(|b| b.model_type)
                .collect::<Vec<_>>()
                .join(", "),
            needs: runtime_needed(&manifest.model_type),
        })?;
    (kind.check)(cfg).map_err(|detail| ShimError::BackendConfig {
        model_type: manifest.model_type.clone(),
        detail,
    })?;
    if kind.model_type == crate::backend::dai::MODEL_TYPE && cfg.dai_require_license {
        let found = crate::backend::dai::find_licence(
            |v| std::env::var_os(v),
            &crate::backend::dai::licence_paths(),
        )
        .map_err(|detail| ShimError::NoLicence {
            path: dir.to_path_buf(),
            detail,
        })?;
        tracing::info!(licence = %found, "a Driverless AI licence was provided");
    }
    Ok(kind)
}

/// Runs every start-up check on `dir` ([`precheck`], then `verify`) and loads its backend.
pub fn load(
    dir: &Path,
    served: &[BackendKind],
    model_id: Option<&str>,
    cfg: &BackendConfig,
) -> Result<LoadedModel, ShimError> {
    let start = Instant::now();
    let kind = precheck(dir, served, cfg)?;
    let manifest = artifact_core::verify(dir)?;
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    tracing::info!(
        dir = %dir.display(),
        files = manifest.files.len(),
        bytes,
        model_type = %manifest.model_type,
        "verified model directory"
    );
    let backend = (kind.load)(dir, &manifest, cfg).map_err(|detail| ShimError::BackendLoad {
        path: dir.to_path_buf(),
        model_type: manifest.model_type.clone(),
        payload: manifest.payload.clone(),
        detail,
    })?;
    let id = match model_id {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => manifest.id.clone(),
    };
    let capabilities = backend.capabilities();
    let model = LoadedModel {
        dir: dir.to_path_buf(),
        id: id.clone(),
        rules: RequestRules::new(&manifest.input_schema)
            .with_shapley(backend.contributions_support().ok().map(|(kind, _)| kind)),
        schema_json: json(&ModelInfo::new(&id, &manifest)),
        sample_request_json: json(&SampleRequest::new(&manifest.input_schema)),
        capabilities_json: json(&capabilities),
        backend: Arc::from(backend),
        manifest,
    };
    tracing::info!(
        id = %model.id,
        backend = %model.backend.describe(),
        inputs = model.manifest.input_schema.len(),
        outputs = model.backend.output_names().len(),
        seconds = start.elapsed().as_secs_f64(),
        "model loaded"
    );
    Ok(model)
}

/// Serializes a precomputed body.
fn json<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("API values serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_types_select_backends() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        type Want = Result<Vec<&'static str>, &'static str>;
        let cases: &[(&str, Vec<String>, Want)] = &[
            (
                "unset",
                v(&[]),
                Ok(vec![
                    "h2o3_mojo",
                    "mlflow_pyfunc",
                    "dai_mojo_pipeline",
                    "onnx",
                ]),
            ),
            (
                "empty variable",
                v(&[""]),
                Ok(vec![
                    "h2o3_mojo",
                    "mlflow_pyfunc",
                    "dai_mojo_pipeline",
                    "onnx",
                ]),
            ),
            (
                "a proxy type",
                v(&["mlflow_pyfunc"]),
                Ok(vec!["mlflow_pyfunc"]),
            ),
            (
                "named, with spaces",
                v(&[" h2o3_mojo "]),
                Ok(vec!["h2o3_mojo"]),
            ),
            ("no backend", v(&["h2o3_mojo", "pmml"]), Err("\"pmml\"")),
        ];
        for (name, given, want) in cases {
            match (served_backends(given), want) {
                (Ok(b), Ok(w)) => {
                    assert_eq!(
                        b.iter().map(|k| k.model_type).collect::<Vec<_>>(),
                        *w,
                        "{name}"
                    )
                }
                (Err(e), Err(w)) => {
                    assert_eq!(e.exit_code(), 2, "{name}");
                    assert!(e.to_string().contains(w), "{name}: {e}");
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
