//! The MLflow model signature: its JSON schema strings and their mapping to MLOps columns.
//!
//! MLflow writes `signature.inputs`/`outputs`/`params` as JSON text inside the YAML. A
//! schema is a list of column specs (`{"type": "double", "name": "x"}`, composite types
//! `array`/`object`/`map`/`any`) or tensor specs (`{"type": "tensor", "tensor-spec":
//! {"dtype": "float32", "shape": [-1, 4]}}`), never mixed, all named or all unnamed.
//!
//! Mapping (docs/model-directory.md, `python/mlflow`): column types map one to one;
//! a tensor maps only when it holds one value per row (shape `[-1]` or `[-1, 1]`, any
//! trailing 1s) and its dtype has a lossless MLOps type. Everything else is "unmapped":
//! the caller refuses it or, with a flag, leaves it out of the schema. Unnamed columns
//! get positional names: a single unnamed output is `prediction`, several are
//! `output_0`, `output_1`, ...; unnamed inputs are `input_0`, `input_1`, ...

use artifact_core::ColumnType;
use serde_json::Value;

/// Which side of the signature a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Input => "input",
            Side::Output => "output",
        }
    }
}

/// One column of a signature after naming and mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct SigColumn {
    pub name: String,
    /// Whether the name came from the signature (false: positional name given here).
    pub named: bool,
    /// Short MLflow type, e.g. `double`, `array<string>`, `tensor float32 [-1, 4]`.
    pub mlflow_type: String,
    /// The MLOps type, or why there is none.
    pub mapped: Result<ColumnType, String>,
    /// The spec as MLflow wrote it.
    pub spec: Value,
}

/// Parses one schema JSON string into its column list. `Err` is a one-line reason.
pub fn parse_schema(text: &str, side: Side) -> Result<Vec<SigColumn>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let specs = match v {
        Value::Array(a) => a,
        other => {
            return Err(format!(
                "expected a JSON list of column or tensor specs, found {}",
                json_kind(&other)
            ))
        }
    };
    if specs.is_empty() {
        return Err("the schema lists no columns".into());
    }
    let mut out = Vec::with_capacity(specs.len());
    let mut tensors = 0usize;
    let mut named = 0usize;
    for (i, spec) in specs.iter().enumerate() {
        let obj = spec
            .as_object()
            .ok_or_else(|| format!("entry {i}: expected an object, found {}", json_kind(spec)))?;
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("entry {i}: no \"type\" string"))?;
        let name = match obj.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::String(_)) => return Err(format!("entry {i}: empty \"name\"")),
            Some(other) => {
                return Err(format!(
                    "entry {i}: \"name\" must be a string, found {}",
                    json_kind(other)
                ))
            }
        };
        if name.is_some() {
            named += 1;
        }
        let (mlflow_type, mapped) = if ty == "tensor" {
            tensors += 1;
            let ts = obj
                .get("tensor-spec")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    format!("entry {i}: a tensor spec needs a \"tensor-spec\" object")
                })?;
            let dtype = ts
                .get("dtype")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("entry {i}: \"tensor-spec\" needs a \"dtype\" string"))?;
            let shape = ts
                .get("shape")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("entry {i}: \"tensor-spec\" needs a \"shape\" list"))?
                .iter()
                .map(|d| d.as_i64().filter(|&d| d >= -1))
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| {
                    format!("entry {i}: \"shape\" must list integers (-1 for a variable size)")
                })?;
            (
                format!("tensor {dtype} {}", shape_text(&shape)),
                map_tensor(dtype, &shape),
            )
        } else {
            (composite_text(obj, ty), map_column(ty))
        };
        out.push(SigColumn {
            name: name.unwrap_or_default(),
            named: obj.get("name").is_some_and(|n| !n.is_null()),
            mlflow_type,
            mapped,
            spec: spec.clone(),
        });
    }
    if tensors != 0 && tensors != out.len() {
        return Err(
            "mixes column specs and tensor specs (MLflow allows one kind per schema)".into(),
        );
    }
    if named != 0 && named != out.len() {
        return Err(
            "mixes named and unnamed entries (MLflow requires all or none to be named)".into(),
        );
    }
    if named == 0 {
        let n = out.len();
        for (i, c) in out.iter_mut().enumerate() {
            c.name = match side {
                Side::Output if n == 1 => "prediction".into(),
                Side::Output => format!("output_{i}"),
                Side::Input => format!("input_{i}"),
            };
        }
    } else {
        let mut seen = std::collections::BTreeSet::new();
        for c in &out {
            if !seen.insert(c.name.as_str()) {
                return Err(format!("column name {:?} appears twice", c.name));
            }
        }
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    crate::yaml::kind(v)
}

fn shape_text(shape: &[i64]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn composite_text(obj: &serde_json::Map<String, Value>, ty: &str) -> String {
    let inner = |v: Option<&Value>| -> String {
        v.and_then(Value::as_object)
            .and_then(|o| {
                o.get("type")
                    .and_then(Value::as_str)
                    .map(|t| composite_text(o, t))
            })
            .unwrap_or_else(|| "?".into())
    };
    match ty {
        "array" => format!("array<{}>", inner(obj.get("items"))),
        "map" => format!("map<{}>", inner(obj.get("values"))),
        other => other.to_string(),
    }
}

/// MLflow `DataType` of a column spec → MLOps column type.
pub fn map_column(ty: &str) -> Result<ColumnType, String> {
    Ok(match ty {
        "boolean" => ColumnType::Boolean,
        "integer" => ColumnType::Int32,
        "long" => ColumnType::Int64,
        "float" => ColumnType::Float32,
        "double" => ColumnType::Float64,
        "string" => ColumnType::String,
        "datetime" => ColumnType::Time64,
        "binary" => return Err("MLflow type binary (raw bytes) has no MLOps column type".into()),
        "array" | "object" | "map" | "any" | "sparkml_vector" => {
            return Err(format!(
                "MLflow type {ty} is a composite value, which has no MLOps column type"
            ))
        }
        other => return Err(format!("unknown MLflow column type {other:?}")),
    })
}

/// A tensor spec → MLOps column type, when it is one value per row with a mappable dtype.
pub fn map_tensor(dtype: &str, shape: &[i64]) -> Result<ColumnType, String> {
    let per_row = shape.get(1..).unwrap_or(&[]);
    if shape.is_empty() || per_row.iter().any(|&d| d != 1) {
        return Err(format!(
            "a tensor of shape {} is not one value per row (only [-1] or [-1, 1] map to a column)",
            shape_text(shape)
        ));
    }
    Ok(match dtype {
        "bool" => ColumnType::Boolean,
        "int8" | "int16" | "int32" | "uint8" | "uint16" => ColumnType::Int32,
        "int64" | "uint32" => ColumnType::Int64,
        "float16" | "float32" => ColumnType::Float32,
        "float64" => ColumnType::Float64,
        "str" => ColumnType::String,
        d if d.starts_with("datetime64") => ColumnType::Time64,
        other => {
            return Err(format!(
                "tensor dtype {other} has no lossless MLOps column type"
            ))
        }
    })
}

/// The parsed `params` schema (MLflow ≥ 2.6): a JSON list of `{name, type, default, shape}`.
pub fn parse_params(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let list = v.as_array().ok_or_else(|| {
        format!(
            "expected a JSON list of parameter specs, found {}",
            json_kind(&v)
        )
    })?;
    for (i, p) in list.iter().enumerate() {
        if !p.get("name").is_some_and(Value::is_string)
            || !p.get("type").is_some_and(Value::is_string)
        {
            return Err(format!(
                "entry {i}: a parameter spec needs \"name\" and \"type\" strings"
            ));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType::*;

    type Want<'a> = Result<&'a [(&'a str, Option<ColumnType>)], &'a str>;

    #[test]
    fn schemas() {
        let cases: &[(&str, Side, &str, Want)] = &[
            (
                "2.x columns",
                Side::Input,
                r#"[{"type": "long", "name": "age", "required": true}, {"type": "string", "name": "city", "required": true}]"#,
                Ok(&[("age", Some(Int64)), ("city", Some(String))]),
            ),
            (
                "1.x columns without required",
                Side::Input,
                r#"[{"name": "a", "type": "double"}, {"name": "b", "type": "boolean"}, {"name": "c", "type": "integer"}, {"name": "d", "type": "float"}, {"name": "e", "type": "datetime"}]"#,
                Ok(&[
                    ("a", Some(Float64)),
                    ("b", Some(Boolean)),
                    ("c", Some(Int32)),
                    ("d", Some(Float32)),
                    ("e", Some(Time64)),
                ]),
            ),
            (
                "single unnamed output",
                Side::Output,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]"#,
                Ok(&[("prediction", Some(Int64))]),
            ),
            (
                "unnamed column output",
                Side::Output,
                r#"[{"type": "double", "required": true}]"#,
                Ok(&[("prediction", Some(Float64))]),
            ),
            (
                "several unnamed outputs",
                Side::Output,
                r#"[{"type": "double"}, {"type": "string"}]"#,
                Ok(&[("output_0", Some(Float64)), ("output_1", Some(String))]),
            ),
            (
                "unnamed inputs",
                Side::Input,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#,
                Ok(&[("input_0", Some(Float32))]),
            ),
            (
                "matrix tensor",
                Side::Input,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]"#,
                Ok(&[("input_0", None)]),
            ),
            (
                "image tensor",
                Side::Input,
                r#"[{"type": "tensor", "name": "img", "tensor-spec": {"dtype": "uint8", "shape": [-1, 28, 28, 1]}}]"#,
                Ok(&[("img", None)]),
            ),
            (
                "widened dtypes",
                Side::Input,
                r#"[{"type": "tensor", "name": "a", "tensor-spec": {"dtype": "uint8", "shape": [-1]}}, {"type": "tensor", "name": "b", "tensor-spec": {"dtype": "float16", "shape": [-1]}}, {"type": "tensor", "name": "c", "tensor-spec": {"dtype": "datetime64[ns]", "shape": [-1]}}, {"type": "tensor", "name": "d", "tensor-spec": {"dtype": "uint64", "shape": [-1]}}, {"type": "tensor", "name": "e", "tensor-spec": {"dtype": "object", "shape": [-1]}}]"#,
                Ok(&[
                    ("a", Some(Int32)),
                    ("b", Some(Float32)),
                    ("c", Some(Time64)),
                    ("d", None),
                    ("e", None),
                ]),
            ),
            (
                "composite and binary",
                Side::Input,
                r#"[{"type": "binary", "name": "b"}, {"type": "array", "items": {"type": "string"}, "name": "tags"}, {"type": "object", "properties": {"a": {"type": "double"}}, "name": "o"}, {"type": "map", "values": {"type": "long"}, "name": "m"}, {"type": "any", "name": "x"}]"#,
                Ok(&[
                    ("b", None),
                    ("tags", None),
                    ("o", None),
                    ("m", None),
                    ("x", None),
                ]),
            ),
            ("not json", Side::Input, "[{\"type\": ", Err("EOF")),
            (
                "not a list",
                Side::Input,
                r#"{"type": "double"}"#,
                Err("JSON list"),
            ),
            ("empty", Side::Input, "[]", Err("no columns")),
            (
                "no type",
                Side::Input,
                r#"[{"name": "a"}]"#,
                Err("\"type\""),
            ),
            (
                "mixed kinds",
                Side::Input,
                r#"[{"type": "double", "name": "a"}, {"type": "tensor", "name": "b", "tensor-spec": {"dtype": "float32", "shape": [-1]}}]"#,
                Err("mixes column specs"),
            ),
            (
                "mixed naming",
                Side::Input,
                r#"[{"type": "double", "name": "a"}, {"type": "double"}]"#,
                Err("mixes named"),
            ),
            (
                "duplicate",
                Side::Input,
                r#"[{"type": "double", "name": "a"}, {"type": "long", "name": "a"}]"#,
                Err("appears twice"),
            ),
            (
                "bad shape",
                Side::Input,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": ["x"]}}]"#,
                Err("shape"),
            ),
        ];
        for (label, side, text, want) in cases {
            let got = parse_schema(text, *side);
            match (want, &got) {
                (Ok(cols), Ok(g)) => {
                    let g: Vec<(&str, Option<ColumnType>)> = g
                        .iter()
                        .map(|c| (c.name.as_str(), c.mapped.clone().ok()))
                        .collect();
                    assert_eq!(&g[..], *cols, "case {label}");
                }
                (Err(w), Err(e)) => assert!(e.contains(w), "case {label}: {e}"),
                _ => panic!("case {label}: got {got:?}"),
            }
        }
    }

    #[test]
    fn type_text() {
        let cols = parse_schema(
            r#"[{"type": "array", "items": {"type": "array", "items": {"type": "long"}}, "name": "a"}, {"type": "map", "values": {"type": "string"}, "name": "m"}]"#,
            Side::Input,
        )
        .unwrap();
        assert_eq!(cols[0].mlflow_type, "array<array<long>>");
        assert_eq!(cols[1].mlflow_type, "map<string>");
        let cols = parse_schema(
            r#"[{"type": "tensor", "name": "t", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}}]"#,
            Side::Input,
        )
        .unwrap();
        assert_eq!(cols[0].mlflow_type, "tensor float32 [-1, 28, 28]");
    }

    #[test]
    fn params() {
        assert!(parse_params(
            r#"[{"name": "threshold", "default": 0.5, "shape": null, "type": "double"}]"#
        )
        .is_ok());
        assert!(parse_params(r#"[{"default": 0.5}]"#).is_err());
        assert!(parse_params("nope").is_err());
    }
}
