//! The MLOps column types and the `{name, type}` columns of input and output schemas.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A column type as H2O MLOps stores it in experiment metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Boolean,
    Time64,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
}

impl ColumnType {
    pub const ALL: [ColumnType; 7] = [
        ColumnType::Boolean,
        ColumnType::Time64,
        ColumnType::Float32,
        ColumnType::Float64,
        ColumnType::Int32,
        ColumnType::Int64,
        ColumnType::String,
    ];

    /// The metadata name (`Float64`).
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Boolean => "Boolean",
            ColumnType::Time64 => "Time64",
            ColumnType::Float32 => "Float32",
            ColumnType::Float64 => "Float64",
            ColumnType::Int32 => "Int32",
            ColumnType::Int64 => "Int64",
            ColumnType::String => "String",
        }
    }

    /// The scoring API `DataType` name (`Bool`, `Str`, ...).
    pub fn api_name(self) -> &'static str {
        match self {
            ColumnType::Boolean => "Bool",
            ColumnType::String => "Str",
            other => other.as_str(),
        }
    }

    /// Parses a metadata name, case-insensitively.
    pub fn parse(s: &str) -> Option<ColumnType> {
        ColumnType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s) || t.api_name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}
