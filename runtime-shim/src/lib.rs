//! The runtime shim: the entrypoint of a runtime container.
//!
//! It loads the normalized model directory that a processor wrote (`MODEL_PATH`, contract in
//! `docs/model-directory.md`), checks it before it trusts it ([`model`]: `verify`, contract
//! version, model type), picks a scoring [`backend`] by model type, and serves the H2O MLOps
//! scoring REST API ([`server`], on the accept loop of [`connections`]) and, beside it, the
//! Open Inference Protocol v2 ([`protocol::v2`]). The request rules and the response shape live in [`api`]
//! so that the REST server and the batch command ([`batch`]) answer the same way.

pub mod access_log;
pub mod api;
pub mod auth;
pub mod backend;
pub mod batch;
pub mod cli;
pub mod connections;
pub mod csv_input;
pub mod csv_output;
pub mod error;
pub mod log_writer;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod rest_score;
pub mod score_lane;
pub mod server;
pub mod workers;

#[cfg(test)]
mod test_models;

pub use api::ApiError;
pub use error::ShimError;
