//! `shim-load`: the runtime shim under heavy and bad traffic, from the project's own
//! client (no external load tool needed).
//!
//! - [`load`]: keep-alive connections sending `/model/score` back to back; requests per
//!   second and latency percentiles.
//! - [`abuse`]: seeded malformed requests ([`cases`]) whose answers must all be the
//!   allowed 4xx, with the server still ready and scoring throughout.
//! - [`authabuse`]: seeded attacks on the endpoint security (wrong and forged
//!   credentials, malformed and huge `Authorization` headers): none let in, no 5xx.
//!
//! Both speak HTTP/1.1 over raw TCP ([`http`]) to a loopback address only.

pub mod abuse;
pub mod authabuse;
pub mod cases;
pub mod cli;
pub mod error;
pub mod http;
pub mod load;
pub mod model;
pub mod rng;
pub mod stats;

pub use error::Error;
