//! The unit tests' models: a testdata MOJO processed by the real H2O-3 processor into a
//! temporary directory, then loaded as the server loads it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use artifact_core::{Context, ReadOptions};

use crate::backend::BackendConfig;
use crate::model::LoadedModel;

/// `testdata/h2o3/<name>.zip` processed into `parent/m`; the model directory.
pub(crate) fn processed(parent: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../testdata/h2o3/{name}.zip"));
    let dir = parent.join("m");
    let ctx = Context {
        read: ReadOptions::default(),
        args: h2o3_mojo::NoArgs {},
    };
    artifact_core::cli::process::<h2o3_mojo::H2o3MojoProcessor>(&src, &dir, false, &ctx).unwrap();
    dir
}

/// [`processed`], loaded with the default backend settings.
pub(crate) fn loaded(parent: &Path, name: &str) -> Arc<LoadedModel> {
    let dir = processed(parent, name);
    let served = crate::model::served_backends(&[]).unwrap();
    Arc::new(crate::model::load(&dir, &served, None, &BackendConfig::default()).unwrap())
}
