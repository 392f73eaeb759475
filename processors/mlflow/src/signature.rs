//! The MLflow model signature: its JSON schema strings and their mapping to MLOps columns.
//!
//! MLflow writes `signature.inputs`/`outputs`/`params` as JSON text inside the YAML. A
//! schema is a list of column specs (`{"type": "double", "name": "x"}`, composite types
//! `array`/`object`/`map`/`any`) or tensor specs (`{"type": "tensor", "tensor-spec":
//! {"dtype": "float32", "shape": [-1, 4]}}`), never mixed, all named or all unnamed.
//!
//! Mapping (docs/model-directory.md, `python/mlflow`): column types map one to one;
//! a tensor maps when its dtype has a lossless MLOps type and it holds one value per row
//! (shape `[-1]` or `[-1, 1]`, any trailing 1s: one column) or a fixed number `k` of
//! them (shape `[-1, k]`: `k` positional columns named by
//! [`crate::onnx::schema::positional_columns`], the rule ONNX graphs are named by too:
//! `<tensor>_0` ... `<tensor>_<k-1>`, or `input_0` ... / `output_0` ... for the unnamed
//! tensor). Everything else (higher ranks, an unknown width) is "unmapped": the caller
//! refuses it or, with a flag, leaves it out of the schema. Unnamed columns get
//! positional names: a single unnamed output is `prediction`, several are `output_0`,
//! `output_1`, ...; unnamed inputs are `input_0`, `input_1`, ...
//!
//! A signature side made of tensors is fed and read as tensors ([`tensor_columns`]): the
//! runtime packs a request's columns into MLflow's tensor request (`{"inputs": ...}`) and
//! unpacks the answer into the columns, both by the layout derived here.

use artifact_core::ColumnType;
use serde_json::{json, Value};

use crate::onnx::schema::{positional_columns, MAX_WIDTH};

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

/// One entry (column or tensor spec) of a signature after naming and mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct SigColumn {
    pub name: String,
    /// Whether the name came from the signature (false: positional name given here).
    pub named: bool,
    /// Short MLflow type, e.g. `double`, `array<string>`, `tensor float32 [-1, 4]`.
    pub mlflow_type: String,
    /// The MLOps type of its columns, or why there is none.
    pub mapped: Result<ColumnType, String>,
    /// The MLOps columns it maps to, in order: `[name]`, or the `k` positional columns of
    /// a `[-1, k]` tensor. Empty when unmapped.
    pub columns: Vec<String>,
    /// The dtype and shape, when it is a tensor spec.
    pub tensor: Option<TensorSpec>,
    /// The spec as MLflow wrote it.
    pub spec: Value,
}

/// An MLflow tensor spec: numpy dtype name and shape (-1 for a variable size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub dtype: String,
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// Values per row (the product of the dimensions after the first), when every one of
    /// them is fixed.
    pub fn width(&self) -> Option<usize> {
        self.shape
            .get(1..)
            .unwrap_or(&[])
            .iter()
            .try_fold(1usize, |w, &d| {
                usize::try_from(d).ok().filter(|&d| d >= 1)?.checked_mul(w)
            })
    }
}

/// A tensor of a signature side and the MLOps columns it feeds or fills, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorColumns {
    /// The tensor's name; `None` for the unnamed tensor (MLflow allows one per side).
    pub tensor: Option<String>,
    pub spec: TensorSpec,
    pub columns: Vec<String>,
}

impl TensorColumns {
    /// The description in `metadata.tensor_signature` of `model.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "tensor": self.tensor,
            "dtype": self.spec.dtype,
            "shape": self.spec.shape,
            "columns": self.columns,
        })
    }
}

/// The request key MLflow's scoring server takes tensors under (`{"inputs": ...}`, the
/// columnar form MLflow recommends; `instances` is the row form).
pub const TENSOR_REQUEST_FORMAT: &str = "inputs";

/// The tensors of a signature side, when it is made of tensor specs that all map to
/// columns; `None` for column specs (and for a side with an unmapped tensor).
pub fn tensor_columns(cols: &[SigColumn]) -> Option<Vec<TensorColumns>> {
    cols.iter()
        .map(|c| {
            let spec = c.tensor.clone()?;
            c.mapped.as_ref().ok()?;
            Some(TensorColumns {
                tensor: c.named.then(|| c.name.clone()),
                spec,
                columns: c.columns.clone(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .filter(|t| !t.is_empty())
}

/// The `inputs` and `outputs` of the `signature` of an `MLmodel` file (YAML text), each
/// parsed; `None` for a side (or a whole signature) the file does not have.
pub type Sides = (Option<Vec<SigColumn>>, Option<Vec<SigColumn>>);

/// Reads the signature of an `MLmodel` file. `Err` says what is wrong, with its key.
pub fn read_mlmodel_signature(mlmodel: &[u8]) -> Result<Sides, String> {
    let doc = crate::yaml::parse(mlmodel)?;
    let m =
        crate::mlmodel::MlModel::from_value(doc).map_err(|e| format!("{}: {}", e.key, e.detail))?;
    let Some(sig) = m.signature else {
        return Ok((None, None));
    };
    let side = |key: &str, side: Side| match sig.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => parse_schema(t, side)
            .map(Some)
            .map_err(|e| format!("signature.{key}: {e}")),
        Some(other) => Err(format!(
            "signature.{key}: expected JSON text, found {}",
            json_kind(other)
        )),
    };
    Ok((side("inputs", Side::Input)?, side("outputs", Side::Output)?))
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
        let (mlflow_type, mapped, tensor) = if ty == "tensor" {
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
                Some(TensorSpec {
                    dtype: dtype.to_string(),
                    shape,
                }),
            )
        } else {
            (composite_text(obj, ty), map_column(ty), None)
        };
        out.push(SigColumn {
            name: name.unwrap_or_default(),
            named: obj.get("name").is_some_and(|n| !n.is_null()),
            mlflow_type,
            mapped,
            columns: Vec::new(),
            tensor,
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
    if named == 0 && tensors > 1 {
        return Err(
            "lists several unnamed tensors (MLflow requires every tensor to be named when there are several)"
                .into(),
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
    // The columns of each entry; a tensor whose positional columns collide with another
    // entry's column has none (`x` [-1, 2] gives `x_0`, which a tensor `x_0` also names).
    let mut seen = std::collections::BTreeSet::new();
    for c in &mut out {
        let width = c.tensor.as_ref().and_then(TensorSpec::width).unwrap_or(1);
        if c.mapped.is_err() {
            continue;
        }
        let columns = if width == 1 {
            vec![c.name.clone()]
        } else {
            positional_columns(c.named.then_some(c.name.as_str()), side, width)
        };
        if let Some(dup) = columns.iter().find(|n| seen.contains(n.as_str())) {
            c.mapped = Err(format!(
                "its column {dup:?} is also the name of another {} column; rename a tensor",
                side.as_str()
            ));
            continue;
        }
        seen.extend(columns.iter().cloned());
        c.columns = columns;
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

/// A tensor spec → the MLOps type of its columns, when it is one value per row (`[-1]`,
/// `[-1, 1]`: one column) or a fixed number of them (`[-1, k]`: `k` columns) with a
/// mappable dtype.
pub fn map_tensor(dtype: &str, shape: &[i64]) -> Result<ColumnType, String> {
    let per_row = shape.get(1..).unwrap_or(&[]);
    let refused = |why: &str| {
        format!(
            "a tensor of shape {} is not one value per row (only [-1] or [-1, 1] map to a column); {why}",
            shape_text(shape)
        )
    };
    match per_row {
        _ if shape.is_empty() => {
            return Err(refused("a scalar (rank 0) has no rows"));
        }
        d if d.iter().all(|&d| d == 1) => {}
        [k] if *k > MAX_WIDTH => {
            return Err(format!(
                "a tensor of shape {}: {k} values per row, more than the {MAX_WIDTH} columns a tensor may map to",
                shape_text(shape)
            ))
        }
        [k] if *k > 1 => {}
        [-1] => {
            return Err(refused(
                "[-1, k] maps to k columns only when k is fixed, and here the number of values per row is variable",
            ))
        }
        [_] => return Err(refused("a second dimension of 0 holds no values")),
        _ => {
            return Err(refused(
                "a 2-D tensor [-1, k] with a fixed k maps to k columns, higher ranks to none",
            ))
        }
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
                "matrix tensor: positional columns",
                Side::Input,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]"#,
                Ok(&[
                    ("input_0", Some(Float32)),
                    ("input_1", Some(Float32)),
                    ("input_2", Some(Float32)),
                ]),
            ),
            (
                "predict_proba output",
                Side::Output,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]"#,
                Ok(&[("output_0", Some(Float64)), ("output_1", Some(Float64))]),
            ),
            (
                "named tensors, one wide",
                Side::Input,
                r#"[{"type": "tensor", "name": "x", "tensor-spec": {"dtype": "int32", "shape": [-1, 2]}}, {"type": "tensor", "name": "k", "tensor-spec": {"dtype": "str", "shape": [-1]}}]"#,
                Ok(&[
                    ("x_0", Some(Int32)),
                    ("x_1", Some(Int32)),
                    ("k", Some(String)),
                ]),
            ),
            (
                "unknown width",
                Side::Input,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, -1]}}]"#,
                Ok(&[("input_0", None)]),
            ),
            (
                "rank 3",
                Side::Output,
                r#"[{"type": "tensor", "name": "y", "tensor-spec": {"dtype": "float32", "shape": [-1, 2, 3]}}]"#,
                Ok(&[("y", None)]),
            ),
            (
                "positional columns colliding with a tensor",
                Side::Input,
                r#"[{"type": "tensor", "name": "x_1", "tensor-spec": {"dtype": "float32", "shape": [-1]}}, {"type": "tensor", "name": "x", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#,
                Ok(&[("x_1", Some(Float32)), ("x", None)]),
            ),
            (
                "several unnamed tensors",
                Side::Input,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}, {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1]}}]"#,
                Err("several unnamed tensors"),
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
                        .flat_map(|c| match &c.mapped {
                            Ok(ty) => c.columns.iter().map(|n| (n.as_str(), Some(*ty))).collect(),
                            Err(_) => vec![(c.name.as_str(), None)],
                        })
                        .collect();
                    assert_eq!(&g[..], *cols, "case {label}");
                }
                (Err(w), Err(e)) => assert!(e.contains(w), "case {label}: {e}"),
                _ => panic!("case {label}: got {got:?}"),
            }
        }
    }

    #[test]
    fn refused_tensors_say_why() {
        let cases: &[(&str, &str)] = &[
            ("[-1, 28, 28]", "a tensor of shape [-1, 28, 28] is not one value per row (only [-1] or [-1, 1] map to a column); a 2-D tensor [-1, k] with a fixed k maps to k columns, higher ranks to none"),
            ("[-1, -1]", "a tensor of shape [-1, -1] is not one value per row (only [-1] or [-1, 1] map to a column); [-1, k] maps to k columns only when k is fixed, and here the number of values per row is variable"),
            ("[-1, 0]", "a second dimension of 0 holds no values"),
            ("[]", "a scalar (rank 0) has no rows"),
            ("[-1, 70000]", "a tensor of shape [-1, 70000]: 70000 values per row, more than the 65536 columns a tensor may map to"),
        ];
        for (shape, want) in cases {
            let e = map_tensor("float32", &serde_json::from_str::<Vec<i64>>(shape).unwrap())
                .unwrap_err();
            assert!(e.contains(want), "{shape}: {e}");
        }
        assert_eq!(map_tensor("float64", &[-1, 1, 1]), Ok(ColumnType::Float64));
        assert_eq!(map_tensor("int64", &[-1, 5]), Ok(ColumnType::Int64));
    }

    #[test]
    fn tensor_layouts_of_a_side() {
        let cols = parse_schema(
            r#"[{"type": "tensor", "name": "features", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}, {"type": "tensor", "name": "k", "tensor-spec": {"dtype": "int64", "shape": [-1, 1]}}]"#,
            Side::Input,
        )
        .unwrap();
        let t = tensor_columns(&cols).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].tensor.as_deref(), Some("features"));
        assert_eq!(t[0].columns, ["features_0", "features_1", "features_2"]);
        assert_eq!(t[0].spec.width(), Some(3));
        assert_eq!(t[1].columns, ["k"]);
        assert_eq!(
            t[0].to_json(),
            json!({"tensor": "features", "dtype": "float32", "shape": [-1, 3], "columns": ["features_0", "features_1", "features_2"]})
        );
        let unnamed = parse_schema(
            r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]"#,
            Side::Output,
        )
        .unwrap();
        let t = tensor_columns(&unnamed).unwrap();
        assert_eq!(t[0].tensor, None);
        assert_eq!(t[0].columns, ["output_0", "output_1"]);
        let columns = parse_schema(r#"[{"type": "double", "name": "a"}]"#, Side::Input).unwrap();
        assert_eq!(tensor_columns(&columns), None, "column specs");
        let image = parse_schema(
            r#"[{"type": "tensor", "tensor-spec": {"dtype": "uint8", "shape": [-1, 8, 8]}}]"#,
            Side::Input,
        )
        .unwrap();
        assert_eq!(tensor_columns(&image), None, "unmapped");
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
