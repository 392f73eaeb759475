//! MLflow tensor signatures on the `mlflow_pyfunc` backend: rows of MLOps columns packed
//! into the tensors MLflow's scoring server takes, and its tensor answer unpacked into
//! columns.
//!
//! A signature side made of tensor specs maps to columns by the processor's rule
//! (`mlflow_model::signature`: `[-1]`/`[-1, 1]` one column, `[-1, k]` the `k` columns
//! `<tensor>_0` ... or `input_0` ... / `output_0` ... for the unnamed tensor). The layout
//! is derived here again, with the same code, from the `MLmodel` of the verified payload
//! and must name exactly the manifest's columns, so a request's cells always reach the
//! positions the processor described.
//!
//! Requests: `{"inputs": [[row], ...]}` for the unnamed tensor, `{"inputs": {"name":
//! [[row], ...], ...}}` for named ones (MLflow's columnar tensor request), or the row form
//! `{"instances": [...]}` when `metadata.tensor_signature.request_format` says so. A row
//! is nested by the tensor's shape (`[-1]` a value, `[-1, 1]` `[v]`, `[-1, k]` `k` values).
//! Answers with a tensor wider than one column (`[[p0, p1], ...]`, `{"name": [[...],
//! ...]}`, or records holding a tensor row) are flattened into the output columns before
//! the backend's ordinary reading of predictions.

use artifact_core::{ColumnType, Manifest};
use mlflow_model::signature::{read_mlmodel_signature, tensor_columns, TensorColumns};
use serde_json::{Map, Value};

/// The MLflow request key tensors travel under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// `{"inputs": ...}`: one list of rows per tensor (columnar).
    Inputs,
    /// `{"instances": ...}`: one entry per row.
    Instances,
}

/// The tensor layout of a model's signature, each side `None` when made of column specs.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorLayout {
    pub inputs: Option<Vec<TensorColumns>>,
    pub outputs: Option<Vec<TensorColumns>>,
    pub format: RequestFormat,
}

fn names(cols: &[artifact_core::Column]) -> Vec<String> {
    cols.iter().map(|c| c.name.clone()).collect()
}

fn flat(t: &[TensorColumns]) -> Vec<String> {
    t.iter().flat_map(|t| t.columns.iter().cloned()).collect()
}

/// The layout of the signature in `mlmodel` (the payload's `MLmodel`), checked against
/// the manifest's columns and `metadata.tensor_signature.request_format`.
pub fn layout(mlmodel: &[u8], manifest: &Manifest) -> Result<TensorLayout, String> {
    let (inputs, outputs) = read_mlmodel_signature(mlmodel).map_err(|e| format!("MLmodel: {e}"))?;
    let inputs = inputs.as_deref().and_then(tensor_columns);
    let outputs = outputs.as_deref().and_then(tensor_columns);
    for (side, t, cols) in [
        ("input", &inputs, &manifest.input_schema),
        ("output", &outputs, &manifest.output_schema),
    ] {
        if let Some(t) = t {
            let want = flat(t);
            if want != names(cols) {
                return Err(format!(
                    "the manifest's {side} columns {:?} are not the columns of the MLmodel's {side} tensors {want:?}; process the model again",
                    names(cols)
                ));
            }
        }
    }
    let format = match manifest
        .metadata
        .get("tensor_signature")
        .and_then(|t| t.get("request_format"))
    {
        None => RequestFormat::Inputs,
        Some(Value::String(s)) if s == "inputs" => RequestFormat::Inputs,
        Some(Value::String(s)) if s == "instances" => RequestFormat::Instances,
        Some(other) => {
            return Err(format!(
                "metadata.tensor_signature.request_format is {other}; expected \"inputs\" or \"instances\""
            ))
        }
    };
    Ok(TensorLayout {
        inputs,
        outputs,
        format,
    })
}

/// One row of a tensor (its cells in column order) nested by the per-row dimensions.
fn nest(cells: &[Value], dims: &[i64]) -> Value {
    match dims.split_first() {
        None => cells.first().cloned().unwrap_or(Value::Null),
        Some((&d, rest)) => {
            let chunk = (cells.len() / usize::try_from(d).unwrap_or(1).max(1)).max(1);
            Value::Array(cells.chunks(chunk).map(|c| nest(c, rest)).collect())
        }
    }
}

/// The values of a tensor row, nested or not, in order.
fn leaves(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
        other => out.push(other.clone()),
    }
}

/// The request body for `rows` rows; `cell(r, i)` is the JSON value of input column `i`
/// of row `r` (typed by `types`).
pub fn request<E>(
    tensors: &[TensorColumns],
    format: RequestFormat,
    rows: usize,
    mut cell: impl FnMut(usize, usize, ColumnType) -> Result<Value, E>,
    types: &[ColumnType],
) -> Result<Value, E> {
    // Per tensor: (first column, its per-row dimensions).
    let mut spans = Vec::with_capacity(tensors.len());
    let mut at = 0;
    for t in tensors {
        spans.push((at, t.columns.len(), t.spec.shape.get(1..).unwrap_or(&[])));
        at += t.columns.len();
    }
    let mut per_tensor: Vec<Vec<Value>> = vec![Vec::with_capacity(rows); tensors.len()];
    for r in 0..rows {
        for (j, (start, width, dims)) in spans.iter().enumerate() {
            let cells = (*start..start + width)
                .map(|i| cell(r, i, types[i]))
                .collect::<Result<Vec<_>, E>>()?;
            per_tensor[j].push(nest(&cells, dims));
        }
    }
    let unnamed = tensors.len() == 1 && tensors[0].tensor.is_none();
    let name = |j: usize| tensors[j].tensor.clone().unwrap_or_default();
    let body = match (format, unnamed) {
        (RequestFormat::Inputs, true) => ("inputs", Value::Array(per_tensor.remove(0))),
        (RequestFormat::Instances, true) => ("instances", Value::Array(per_tensor.remove(0))),
        (RequestFormat::Inputs, false) => (
            "inputs",
            Value::Object(
                per_tensor
                    .into_iter()
                    .enumerate()
                    .map(|(j, rows)| (name(j), Value::Array(rows)))
                    .collect(),
            ),
        ),
        (RequestFormat::Instances, false) => {
            let mut cols: Vec<std::vec::IntoIter<Value>> =
                per_tensor.into_iter().map(Vec::into_iter).collect();
            let rows = (0..rows)
                .map(|_| {
                    Value::Object(
                        cols.iter_mut()
                            .enumerate()
                            .map(|(j, c)| (name(j), c.next().unwrap_or(Value::Null)))
                            .collect(),
                    )
                })
                .collect();
            ("instances", Value::Array(rows))
        }
    };
    let mut m = Map::new();
    m.insert(body.0.into(), body.1);
    Ok(Value::Object(m))
}

/// Whether the answer needs flattening: some output tensor fills several columns.
pub fn wide(tensors: &[TensorColumns]) -> bool {
    tensors.iter().any(|t| t.columns.len() > 1)
}

/// Flattens a tensor answer (the value of `predictions`, or the bare MLflow 1.x reply)
/// into one entry per output column: an object of tensors becomes an object of columns,
/// a row that is a tensor row becomes its values, a record holding a tensor row gets its
/// columns. What it does not recognise is left for the ordinary reading to judge.
pub fn unpack(p: Value, tensors: &[TensorColumns]) -> Result<Value, String> {
    let total: usize = tensors.iter().map(|t| t.columns.len()).sum();
    match p {
        Value::Object(m) => {
            let mut out = Map::new();
            for t in tensors {
                let v = t
                    .tensor
                    .as_ref()
                    .and_then(|n| m.get(n))
                    .or_else(|| {
                        (tensors.len() == 1 && m.len() == 1)
                            .then(|| m.values().next())
                            .flatten()
                    })
                    .ok_or_else(|| {
                        format!(
                            "the predictions have the tensors {:?}, not the output tensor {}",
                            m.keys().collect::<Vec<_>>(),
                            t.tensor
                                .as_deref()
                                .map_or("of the signature".to_string(), |n| format!("{n:?}"))
                        )
                    })?;
                let rows = v.as_array().ok_or_else(|| {
                    format!(
                        "the output tensor {:?} is not a list of rows",
                        t.tensor.as_deref().unwrap_or("")
                    )
                })?;
                let mut cols: Vec<Vec<Value>> =
                    vec![Vec::with_capacity(rows.len()); t.columns.len()];
                for (r, row) in rows.iter().enumerate() {
                    let mut vals = Vec::with_capacity(t.columns.len());
                    leaves(row, &mut vals);
                    if vals.len() != t.columns.len() {
                        return Err(format!(
                            "row {r} of the output tensor {:?} has {} values; its shape {:?} has {} per row",
                            t.tensor.as_deref().unwrap_or(""),
                            vals.len(),
                            t.spec.shape,
                            t.columns.len()
                        ));
                    }
                    for (c, v) in cols.iter_mut().zip(vals) {
                        c.push(v);
                    }
                }
                for (name, c) in t.columns.iter().zip(cols) {
                    out.insert(name.clone(), Value::Array(c));
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(rows) => Ok(Value::Array(
            rows.into_iter()
                .map(|row| match row {
                    Value::Array(_) => {
                        let mut vals = Vec::with_capacity(total);
                        leaves(&row, &mut vals);
                        if vals.len() == total {
                            Value::Array(vals)
                        } else {
                            row
                        }
                    }
                    Value::Object(mut rec) => {
                        for t in tensors {
                            let Some(n) = t.tensor.as_ref() else { continue };
                            let Some(v) = rec.get(n).filter(|v| v.is_array()).cloned() else {
                                continue;
                            };
                            let mut vals = Vec::new();
                            leaves(&v, &mut vals);
                            if vals.len() == t.columns.len() && t.columns.len() > 1 {
                                rec.remove(n);
                                for (c, v) in t.columns.iter().zip(vals) {
                                    rec.insert(c.clone(), v);
                                }
                            }
                        }
                        Value::Object(rec)
                    }
                    scalar => scalar,
                })
                .collect(),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlflow_model::signature::{parse_schema, Side};
    use serde_json::json;

    fn side(text: &str, side: Side) -> Vec<TensorColumns> {
        tensor_columns(&parse_schema(text, side).unwrap()).unwrap()
    }

    const UNNAMED_3: &str =
        r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]"#;
    const NAMED: &str = r#"[{"type": "tensor", "name": "features", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}, {"type": "tensor", "name": "k", "tensor-spec": {"dtype": "int64", "shape": [-1]}}, {"type": "tensor", "name": "w", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#;

    fn rows_of<'a>(
        cells: &'a [&'a [f64]],
    ) -> impl FnMut(usize, usize, ColumnType) -> Result<Value, String> + 'a {
        move |r, i, _| Ok(json!(cells[r][i]))
    }

    #[test]
    fn rows_are_packed_by_tensor_and_shape() {
        let data: &[&[f64]] = &[&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]];
        let types = [ColumnType::Float64; 4];
        type Case<'a> = (&'a str, Vec<TensorColumns>, RequestFormat, Value);
        let cases: Vec<Case> = vec![
            (
                "unnamed [-1, 3], inputs",
                side(UNNAMED_3, Side::Input),
                RequestFormat::Inputs,
                json!({"inputs": [[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]}),
            ),
            (
                "unnamed [-1, 3], instances",
                side(UNNAMED_3, Side::Input),
                RequestFormat::Instances,
                json!({"instances": [[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]}),
            ),
            (
                "named [-1, 2], [-1], [-1, 1], inputs",
                side(NAMED, Side::Input),
                RequestFormat::Inputs,
                json!({"inputs": {"features": [[1.0, 2.0], [5.0, 6.0]], "k": [3.0, 7.0], "w": [[4.0], [8.0]]}}),
            ),
            (
                "named, instances",
                side(NAMED, Side::Input),
                RequestFormat::Instances,
                json!({"instances": [{"features": [1.0, 2.0], "k": 3.0, "w": [4.0]}, {"features": [5.0, 6.0], "k": 7.0, "w": [8.0]}]}),
            ),
            (
                "unnamed [-1, 1, 1]",
                side(
                    r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 1, 1]}}]"#,
                    Side::Input,
                ),
                RequestFormat::Inputs,
                json!({"inputs": [[[1.0]], [[5.0]]]}),
            ),
        ];
        for (name, t, format, want) in cases {
            let got = request(&t, format, 2, rows_of(data), &types).unwrap();
            assert_eq!(got, want, "{name}");
        }
        // A cell's error stops the packing.
        let e = request(
            &side(UNNAMED_3, Side::Input),
            RequestFormat::Inputs,
            2,
            |r, i, _| {
                if r == 1 && i == 2 {
                    Err(format!("cell {r} {i}"))
                } else {
                    Ok(Value::Null)
                }
            },
            &types,
        )
        .unwrap_err();
        assert_eq!(e, "cell 1 2");
    }

    #[test]
    fn tensor_answers_are_flattened_into_columns() {
        let proba = side(
            r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}]"#,
            Side::Output,
        );
        let onnx = side(
            r#"[{"type": "tensor", "name": "variable", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#,
            Side::Output,
        );
        let two = side(
            r#"[{"type": "tensor", "name": "label", "tensor-spec": {"dtype": "int64", "shape": [-1]}}, {"type": "tensor", "name": "scores", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]"#,
            Side::Output,
        );
        type Case<'a> = (&'a str, &'a [TensorColumns], Value, Result<Value, &'a str>);
        let cases: Vec<Case> = vec![
            (
                "list of rows stays",
                &proba,
                json!([[0.1, 0.9], [0.8, 0.2]]),
                Ok(json!([[0.1, 0.9], [0.8, 0.2]])),
            ),
            (
                "nested rows flattened",
                &proba,
                json!([[[0.1], [0.9]]]),
                Ok(json!([[0.1, 0.9]])),
            ),
            (
                "dict of tensors by name",
                &onnx,
                json!({"variable": [[1.5, -2.0], [0.5, 3.0]]}),
                Ok(json!({"variable_0": [1.5, 0.5], "variable_1": [-2.0, 3.0]})),
            ),
            (
                "the only tensor of an unnamed side",
                &proba,
                json!({"probabilities": [[0.1, 0.9]]}),
                Ok(json!({"output_0": [0.1], "output_1": [0.9]})),
            ),
            (
                "two tensors, one wide",
                &two,
                json!({"scores": [[0.25, 0.75]], "label": [1]}),
                Ok(json!({"label": [1], "scores_0": [0.25], "scores_1": [0.75]})),
            ),
            (
                "records holding a tensor row",
                &two,
                json!([{"label": 0, "scores": [0.6, 0.4]}]),
                Ok(json!([{"label": 0, "scores_0": 0.6, "scores_1": 0.4}])),
            ),
            (
                "missing tensor",
                &two,
                json!({"label": [1]}),
                Err("the predictions have the tensors [\"label\"], not the output tensor \"scores\""),
            ),
            (
                "wrong width",
                &onnx,
                json!({"variable": [[1.0, 2.0, 3.0]]}),
                Err("row 0 of the output tensor \"variable\" has 3 values; its shape [-1, 2] has 2 per row"),
            ),
            (
                "not rows",
                &onnx,
                json!({"variable": 3}),
                Err("the output tensor \"variable\" is not a list of rows"),
            ),
        ];
        for (name, t, reply, want) in cases {
            match (unpack(reply, t), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{name}"),
                (Err(e), Err(w)) => assert_eq!(e, w, "{name}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        assert!(wide(&proba) && wide(&two));
        assert!(!wide(&side(
            r#"[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]"#,
            Side::Output
        )));
    }
}
