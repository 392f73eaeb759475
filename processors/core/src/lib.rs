//! Core of the artifact processors: the normalized model directory contract
//! (`docs/model-directory.md`) in code.
//!
//! It owns everything that must be done the same way for every format: safe reading of
//! untrusted sources ([`source`], [`names`], [`limits`]), staging and atomic publish
//! ([`publish`]), the manifest and `verify` ([`manifest`]), and the shared command line
//! and exit codes ([`cli`], [`error`]). Processors only know their format ([`processor`]).

pub mod catalog;
pub mod cli;
pub mod error;
pub mod fsutil;
pub mod limits;
pub mod manifest;
pub mod names;
pub mod processor;
pub mod publish;
pub mod schema;
pub mod source;
pub mod zipwrite;

pub use error::{Classify, Error, ErrorClass, Result};
pub use limits::Limits;
pub use manifest::{verify, Manifest, CONTRACT_VERSION, MANIFEST_NAME};
pub use processor::{Context, ModelDescription, Processor};
pub use publish::Staging;
pub use schema::{Column, ColumnType};
pub use source::{
    read_source, DirSink, DiscardSink, EntrySink, FileRecord, Listing, MemorySink, ReadOptions,
    SourceInfo, SourceKind,
};
