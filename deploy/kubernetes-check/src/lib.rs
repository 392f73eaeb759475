//! Checks that the deployment files agree with what the workspace builds.
//!
//! `images/images.txt` lists the images `make images` builds; each one has a
//! `images/<image>.Dockerfile` (and a stage of `images/Dockerfile.multistage`) that declares
//! its user, entrypoint, environment contract, labels and port; the Kubernetes example in
//! `deploy/kubernetes/` runs those images. Nothing ties these files together at build
//! time, so this crate reads all of them and reports every disagreement as a finding: an
//! image name that is not built, a tag that is not the workspace version, an environment
//! variable the image does not document, a port or probe that does not reach the server,
//! a runtime that does not read the directory its processor wrote, a container that may
//! run as root or write its root filesystem, a scoring secret given as a literal value or
//! a hash the runtime cannot read, metrics nobody scrapes. The KServe manifests
//! (`deploy/kserve/`) get the same image and environment checks, and [`kserve`] checks
//! KServe's custom resources structurally (storage containers, serving runtimes,
//! InferenceServices) against the images and the catalog. Its one test target (`tests/manifests.rs`)
//! runs the checks on the real files and on broken copies of them.

pub mod dockerfile;
mod error;
pub mod images;
pub mod kserve;
pub mod kube;
pub mod security;

use std::path::PathBuf;

pub use error::CheckError;

/// The repository root (this crate lives at `deploy/kubernetes-check`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}
