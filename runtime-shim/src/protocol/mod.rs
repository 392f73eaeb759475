//! Wire protocols served beside the H2O MLOps scoring API, each through the same loaded
//! model, backend, limits, metrics and endpoint security as `/model/*`: a protocol only
//! turns its requests into the rows a backend scores ([`crate::api::Frame`]) and the
//! backend's output cells into its answers.
//!
//! - [`v2`]: the Open Inference Protocol v2 (KServe / Triton HTTP/REST), with Triton's
//!   binary tensor data extension.

pub mod v2;
