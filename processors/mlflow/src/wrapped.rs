//! The `h2o3_mojo` model type of an MLflow model: the H2O-3 MOJO that `h2o_mlflow_flavor`
//! saved beside its `MLmodel` (flavor `h2o_mojo_pojo`), validated and described by the
//! native H2O-3 runtime's own loader (through the `h2o3/mojo` processor's library), so
//! that the directory is the one that processor writes for the bare MOJO (payload
//! `model.mojo`, schemas, capabilities, MOJO metadata), with the MLflow facts added under
//! `metadata.mlflow`. The native runtime then serves it with no Python and no JVM.

use std::path::Path;

use artifact_core::{read_source, DirSink, ModelDescription, ReadOptions};
use serde_json::{json, Value};

use crate::analyze::{Analysis, H2O_FLAVOR};
use crate::error::MlflowError;

/// The description of the MOJO at `mojo` (the model-relative file `rel`, shown to the
/// user as `shown`) as the `h2o3/mojo` processor gives it, carrying the MLflow model's
/// own source and facts.
pub fn describe(
    analysis: Analysis,
    source: &Path,
    mojo: &Path,
    shown: &str,
    read: &ReadOptions,
) -> Result<ModelDescription, MlflowError> {
    let refused = |e: h2o3_mojo::MojoError| MlflowError::WrappedMojo {
        path: source.to_path_buf(),
        file: shown.to_string(),
        source: Box::new(e.shown_as(Path::new(shown))),
    };
    let loaded = h2o3_mojo::H2oScorer::open(mojo, read).map_err(refused)?;
    let mut d = h2o3_mojo::describe(&loaded.listing, &loaded.mojo, &loaded.scorer);
    let outer = analysis.description;
    let mut mlflow = outer.metadata;
    mlflow.insert(
        "wrapped_mojo".into(),
        json!({
            "flavor": H2O_FLAVOR,
            "file": shown,
            "size": loaded.listing.source.size,
            "sha256": loaded.listing.source.sha256,
        }),
    );
    mlflow.insert("model_id".into(), json!(outer.id));
    d.metadata.insert("mlflow".into(), Value::Object(mlflow));
    d.artifact_type = outer.artifact_type;
    d.source = outer.source;
    Ok(d)
}

/// For `inspect`, which keeps no binary file in memory: reads the one file `full` (the
/// source-relative name of the MOJO) out of the source again into a scratch folder,
/// through the core's reader, and describes it.
pub fn describe_from_source(
    analysis: Analysis,
    source: &Path,
    full: &str,
    read: &ReadOptions,
) -> Result<ModelDescription, MlflowError> {
    let scratch = tempfile::tempdir()
        .map_err(|e| MlflowError::io("create scratch directory", std::env::temp_dir(), e))?;
    let mut sink = DirSink::new(scratch.path(), |n: &str| (n == full).then(|| n.to_string()));
    read_source(source, read, &mut sink)?;
    describe(analysis, source, &scratch.path().join(full), full, read)
}
