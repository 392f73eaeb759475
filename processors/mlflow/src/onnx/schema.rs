//! From an ONNX graph's interface to MLOps columns: the rule the `onnx` model type's
//! schema is written with (`mlflow-processor --model-type onnx`) and that the runtime's
//! `onnx` backend scores through, so that the two cannot disagree.
//!
//! Inputs (each graph input that is not an initializer):
//! - a tensor of shape `[batch]` or `[batch, 1]` is one column named as the tensor;
//! - `[batch, k]` (k > 1, fixed) is k columns `<tensor>_0` ... `<tensor>_<k-1>`
//!   ([`positional_columns`], the same naming as MLflow tensor signatures);
//! - `batch` is a variable size, or 1 (the runtime then feeds the rows one at a time);
//! - the element type gives the column type ([`column_type`]); `string` inputs are
//!   `String` columns.
//!
//! Outputs, the same, and:
//! - a `[batch, k]` tensor whose producer (through `Identity`, `Cast`, `Normalizer` or
//!   `Softmax`) is a classifier with `k` class labels becomes one column per class, named
//!   by the label (a classifier's probabilities);
//! - a sequence of maps (a `ZipMap`'s output: one `{label: probability}` per row) becomes
//!   one column per class label of the `ZipMap`, in its order.
//!
//! Anything else (images, higher ranks, unknown widths, `uint64`, `float16`, maps without
//! labels) is *unmapped*: the processor refuses it, or leaves it out with a flag.

use std::collections::BTreeSet;

use artifact_core::{Column, ColumnType};
use serde_json::Value;

use super::graph::{Dim, Elem, Labels, OnnxModel, Type, ValueInfo};
use crate::signature::{Side, SigColumn};

/// Operators a classifier's probabilities may pass through on their way to an output
/// and still be one value per class in the classifier's label order.
const LABEL_PRESERVING: &[&str] = &["Identity", "Cast", "Normalizer", "Softmax"];
/// How many nodes are walked back from an output looking for class labels.
const MAX_LABEL_HOPS: usize = 16;
/// The most columns one tensor maps to.
pub const MAX_WIDTH: i64 = 65_536;

/// The column names of a tensor that holds `width` values per row, `width > 1`:
/// `<tensor>_<i>` for i from 0, with `input`/`output` standing for a missing tensor name.
/// MLflow tensor signatures and ONNX graphs are both named by this one rule.
pub fn positional_columns(tensor: Option<&str>, side: Side, width: usize) -> Vec<String> {
    let prefix = match tensor {
        Some(n) if !n.is_empty() => n,
        _ => side.as_str(),
    };
    (0..width).map(|i| format!("{prefix}_{i}")).collect()
}

/// The MLOps column type of an ONNX element type, when one holds every value.
pub fn column_type(elem: Elem) -> Result<ColumnType, String> {
    Ok(match elem {
        Elem::Float => ColumnType::Float32,
        Elem::Double => ColumnType::Float64,
        Elem::Int8 | Elem::Int16 | Elem::Int32 | Elem::Uint8 | Elem::Uint16 => ColumnType::Int32,
        Elem::Int64 | Elem::Uint32 => ColumnType::Int64,
        Elem::Bool => ColumnType::Boolean,
        Elem::String => ColumnType::String,
        other => {
            return Err(format!(
                "ONNX element type {} has no MLOps column type this runtime scores",
                other.name()
            ))
        }
    })
}

/// How rows reach a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// The first dimension is variable: all rows in one tensor.
    Variable,
    /// The first dimension is fixed to 1: one row per run.
    One,
}

/// A graph input and the columns that feed it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    pub name: String,
    pub elem: Elem,
    /// 1 (`[batch]`) or 2 (`[batch, width]`).
    pub rank: usize,
    pub width: usize,
    pub batch: Batch,
    /// `width` columns, in tensor order.
    pub columns: Vec<Column>,
}

/// What a graph output holds.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    /// `[batch]` or `[batch, width]`; `labelled` when the columns are named by class
    /// labels.
    Tensor {
        elem: Elem,
        width: usize,
        labelled: bool,
    },
    /// A sequence (one per row) of `{label: value}` maps: a `ZipMap`.
    ZipMap {
        key: Elem,
        value: Elem,
        labels: Labels,
    },
}

/// A graph output and the columns it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub kind: OutputKind,
    pub batch: Batch,
    pub columns: Vec<Column>,
}

/// A graph input or output that has no column mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub side: Side,
    pub name: String,
    /// The ONNX type, e.g. `tensor(float)[N, 3, 224, 224]`.
    pub onnx_type: String,
    pub reason: String,
}

/// The columns of a graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    pub inputs: Vec<InputTensor>,
    pub outputs: Vec<OutputTensor>,
    pub unmapped: Vec<Unmapped>,
}

impl Mapping {
    pub fn input_columns(&self) -> Vec<Column> {
        self.inputs.iter().flat_map(|t| t.columns.clone()).collect()
    }

    pub fn output_columns(&self) -> Vec<Column> {
        self.outputs
            .iter()
            .flat_map(|t| t.columns.clone())
            .collect()
    }
}

/// Maps the interface of `m` to columns.
pub fn map_model(m: &OnnxModel) -> Mapping {
    let mut out = Mapping::default();
    let unmapped = |side: Side, vi: &ValueInfo, reason: String| Unmapped {
        side,
        name: vi.name.clone(),
        onnx_type: vi.ty.text(),
        reason,
    };
    for (j, vi) in m.inputs.iter().enumerate() {
        match map_input(vi, j) {
            Ok(t) => out.inputs.push(t),
            Err(r) => out.unmapped.push(unmapped(Side::Input, vi, r)),
        }
    }
    for (j, vi) in m.outputs.iter().enumerate() {
        match map_output(m, vi, j) {
            Ok(t) => out.outputs.push(t),
            Err(r) => out.unmapped.push(unmapped(Side::Output, vi, r)),
        }
    }
    // Label columns that collide with another output column take the tensor's name as a
    // prefix; anything still named twice cannot be told apart.
    let names: Vec<String> = out.output_columns().into_iter().map(|c| c.name).collect();
    for t in &mut out.outputs {
        let labelled = match &t.kind {
            OutputKind::ZipMap { .. } => true,
            OutputKind::Tensor { labelled, .. } => *labelled,
        };
        if labelled
            && t.columns
                .iter()
                .any(|c| names.iter().filter(|n| **n == c.name).count() > 1)
        {
            for c in &mut t.columns {
                c.name = format!("{}_{}", t.name, c.name);
            }
        }
    }
    for (side, cols) in [
        (Side::Input, out.input_columns()),
        (Side::Output, out.output_columns()),
    ] {
        let mut seen = BTreeSet::new();
        for c in cols {
            if !seen.insert(c.name.clone()) {
                out.unmapped.push(Unmapped {
                    side,
                    name: c.name.clone(),
                    onnx_type: String::new(),
                    reason: format!(
                        "two {} columns are named {:?}; rename a tensor of the graph",
                        side.as_str(),
                        c.name
                    ),
                });
            }
        }
    }
    out
}

/// The name a tensor's columns derive from (`input_<j>` for a tensor without a name).
fn tensor_name(vi: &ValueInfo, side: Side, j: usize) -> Option<String> {
    (!vi.name.is_empty())
        .then(|| vi.name.clone())
        .or_else(|| Some(format!("{}_{j}", side.as_str())))
}

/// The batch dimension and the per-row width of a tensor shape: `[batch]` or
/// `[batch, width]`; `width` is `None` when variable.
fn rows_of(shape: &Option<Vec<Dim>>) -> Result<(Batch, usize, Option<usize>), String> {
    let Some(dims) = shape else {
        return Err("the graph gives no shape, so the values per row are unknown".into());
    };
    let batch = match dims.first() {
        None => return Err("a scalar (rank 0) is not one value per row".into()),
        Some(Dim::Fixed(1)) => Batch::One,
        Some(Dim::Fixed(n)) => {
            return Err(format!(
                "the first dimension is fixed to {n}; only a variable batch size or 1 can take any number of rows"
            ))
        }
        Some(_) => Batch::Variable,
    };
    match dims.len() {
        1 => Ok((batch, 1, Some(1))),
        2 => match &dims[1] {
            Dim::Fixed(k) if *k > MAX_WIDTH => Err(format!(
                "{k} values per row, more than the {MAX_WIDTH} columns a tensor may map to"
            )),
            Dim::Fixed(k) if *k >= 1 => Ok((batch, 2, Some(*k as usize))),
            Dim::Fixed(k) => Err(format!("a second dimension of {k}")),
            _ => Ok((batch, 2, None)),
        },
        n => Err(format!(
            "rank {n}: only [batch] and [batch, k] tensors map to columns"
        )),
    }
}

fn map_input(vi: &ValueInfo, j: usize) -> Result<InputTensor, String> {
    let Type::Tensor { elem, shape } = &vi.ty else {
        return Err(format!(
            "{} inputs cannot be fed from columns; only tensors can",
            vi.ty.text()
        ));
    };
    let ty = column_type(*elem)?;
    let (batch, rank, width) = rows_of(shape)?;
    let width = width.ok_or("the number of values per row is variable")?;
    let name = tensor_name(vi, Side::Input, j).expect("always named");
    let names = if width == 1 {
        vec![name.clone()]
    } else {
        positional_columns(Some(&name), Side::Input, width)
    };
    Ok(InputTensor {
        name: vi.name.clone(),
        elem: *elem,
        rank,
        width,
        batch,
        columns: names.into_iter().map(|n| Column::new(n, ty)).collect(),
    })
}

/// The class labels reaching output `name`: from its producer, or through
/// label-preserving operators from a classifier.
pub fn labels_for(m: &OnnxModel, name: &str) -> Option<Labels> {
    let mut current = name.to_string();
    for _ in 0..MAX_LABEL_HOPS {
        let node = m.producer_of(&current)?;
        if let Some(l) = &node.labels {
            return Some(l.clone());
        }
        if !LABEL_PRESERVING.contains(&node.op_type.as_str()) {
            return None;
        }
        current = node.inputs.first()?.clone();
    }
    None
}

fn map_output(m: &OnnxModel, vi: &ValueInfo, j: usize) -> Result<OutputTensor, String> {
    let name = tensor_name(vi, Side::Output, j).expect("always named");
    match &vi.ty {
        Type::Tensor { elem, shape } => {
            let ty = column_type(*elem)?;
            let (batch, _, width) = rows_of(shape)?;
            let labels = labels_for(m, &vi.name).filter(|l| !l.is_empty());
            let (width, names, labelled) =
                match (width, labels) {
                    (Some(1), _) => (1, vec![name], false),
                    (Some(w), Some(l)) if l.len() == w => (w, l.texts(), true),
                    (None, Some(l)) => (l.len(), l.texts(), true),
                    (Some(w), _) => (w, positional_columns(Some(&name), Side::Output, w), false),
                    (None, None) => return Err(
                        "the number of values per row is variable and no class labels name them"
                            .into(),
                    ),
                };
            Ok(OutputTensor {
                name: vi.name.clone(),
                kind: OutputKind::Tensor {
                    elem: *elem,
                    width,
                    labelled,
                },
                batch,
                columns: names.into_iter().map(|n| Column::new(n, ty)).collect(),
            })
        }
        Type::Sequence(inner) => {
            let Type::Map { key, value } = inner.as_ref() else {
                return Err("a sequence of anything but maps has no column mapping".into());
            };
            let value_elem = match value.as_ref() {
                Type::Tensor { elem, .. } => *elem,
                other => {
                    return Err(format!(
                        "map values of type {} have no column mapping",
                        other.text()
                    ))
                }
            };
            if !matches!(key, Elem::Int64 | Elem::String) {
                return Err(format!(
                    "map keys of type {} (a ZipMap's are int64 or string)",
                    key.name()
                ));
            }
            let ty = column_type(value_elem)?;
            let labels = labels_for(m, &vi.name)
                .filter(|l| !l.is_empty())
                .ok_or("a sequence of maps whose class labels the graph does not give (no ZipMap with classlabels)")?;
            let key_matches = matches!(
                (&labels, key),
                (Labels::Int64(_), Elem::Int64) | (Labels::Strings(_), Elem::String)
            );
            if !key_matches {
                return Err(format!(
                    "the map keys are {} but the class labels are not",
                    key.name()
                ));
            }
            Ok(OutputTensor {
                name: vi.name.clone(),
                batch: Batch::Variable,
                columns: labels
                    .texts()
                    .into_iter()
                    .map(|n| Column::new(n, ty))
                    .collect(),
                kind: OutputKind::ZipMap {
                    key: *key,
                    value: value_elem,
                    labels,
                },
            })
        }
        other => Err(format!("{} outputs have no column mapping", other.text())),
    }
}

/// The ONNX element type of a numpy dtype name as MLflow writes it in a tensor spec.
fn numpy_elem(dtype: &str) -> Option<Elem> {
    Some(match dtype {
        "float32" => Elem::Float,
        "float64" => Elem::Double,
        "float16" => Elem::Float16,
        "int8" => Elem::Int8,
        "int16" => Elem::Int16,
        "int32" => Elem::Int32,
        "int64" => Elem::Int64,
        "uint8" => Elem::Uint8,
        "uint16" => Elem::Uint16,
        "uint32" => Elem::Uint32,
        "uint64" => Elem::Uint64,
        "bool" => Elem::Bool,
        "str" | "object" => Elem::String,
        _ => return None,
    })
}

/// Rough kinds MLflow column types and ONNX element types are compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Bool,
}

fn elem_kind(e: Elem) -> Option<Kind> {
    match e {
        Elem::String => Some(Kind::Text),
        Elem::Bool => Some(Kind::Bool),
        Elem::Other(_) => None,
        _ => Some(Kind::Number),
    }
}

fn column_kind(mlflow_type: &str) -> Option<Kind> {
    match mlflow_type {
        "integer" | "long" | "float" | "double" => Some(Kind::Number),
        "string" => Some(Kind::Text),
        "boolean" => Some(Kind::Bool),
        _ => None,
    }
}

/// A tensor spec's dtype and shape, when `c` is one.
fn tensor_spec(c: &SigColumn) -> Option<(String, Vec<i64>)> {
    let ts = c.spec.get("tensor-spec")?;
    let dtype = ts.get("dtype")?.as_str()?.to_string();
    let shape = ts
        .get("shape")?
        .as_array()?
        .iter()
        .map(Value::as_i64)
        .collect::<Option<Vec<i64>>>()?;
    Some((dtype, shape))
}

/// Whether a tensor spec describes the graph value `vi`; `Err` says how it differs.
fn tensor_agrees(c: &SigColumn, vi: &ValueInfo) -> Result<(), String> {
    let (dtype, shape) = tensor_spec(c).ok_or("not a tensor spec")?;
    let Type::Tensor {
        elem,
        shape: graph_shape,
    } = &vi.ty
    else {
        return Err(format!("the graph's {:?} is {}", vi.name, vi.ty.text()));
    };
    if numpy_elem(&dtype) != Some(*elem) {
        return Err(format!(
            "dtype {dtype}, but the graph's {:?} is {}",
            vi.name,
            vi.ty.text()
        ));
    }
    if let Some(g) = graph_shape {
        let fits = g.len() == shape.len()
            && g.iter()
                .zip(&shape)
                .all(|(d, s)| *s == -1 || d.fixed().is_none_or(|v| v == *s));
        if !fits {
            return Err(format!(
                "shape {shape:?}, but the graph's {:?} is {}",
                vi.name,
                vi.ty.text()
            ));
        }
    }
    Ok(())
}

/// Checks that an MLflow signature describes the graph `m` (mapped as `map`): every
/// signature input and output must be a graph input or output of the same type and a
/// compatible shape (tensor specs, by name or by position when unnamed) or a column of
/// the mapping of the same kind (column specs), and the signature's inputs must cover
/// every graph input. Returns each disagreement as a sentence.
pub fn check_signature(
    m: &OnnxModel,
    map: &Mapping,
    inputs: Option<&[SigColumn]>,
    outputs: Option<&[SigColumn]>,
) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (side, sig, graph, columns) in [
        (Side::Input, inputs, &m.inputs, map.input_columns()),
        (Side::Output, outputs, &m.outputs, map.output_columns()),
    ] {
        let Some(sig) = sig else { continue };
        let what = side.as_str();
        let is_tensor = sig.iter().all(|c| tensor_spec(c).is_some());
        if is_tensor {
            let mut covered = BTreeSet::new();
            for (i, c) in sig.iter().enumerate() {
                let vi = if c.named {
                    graph.iter().find(|v| v.name == c.name)
                } else {
                    graph.get(i)
                };
                let label = if c.named {
                    format!("signature {what} {:?}", c.name)
                } else {
                    format!("unnamed signature {what} {i}")
                };
                match vi {
                    None => errors.push(format!(
                        "{label} ({}) is not a graph {what} (the graph's: {})",
                        c.mlflow_type,
                        names(graph)
                    )),
                    Some(vi) => {
                        covered.insert(vi.name.clone());
                        if let Err(e) = tensor_agrees(c, vi) {
                            errors.push(format!("{label} is {}: {e}", c.mlflow_type));
                        }
                    }
                }
            }
            if side == Side::Input {
                for vi in graph.iter().filter(|v| !covered.contains(&v.name)) {
                    errors.push(format!(
                        "graph input {:?} ({}) is not in the signature",
                        vi.name,
                        vi.ty.text()
                    ));
                }
            }
            continue;
        }
        // Column specs: a single wide input tensor takes the signature's columns by
        // position; otherwise columns are matched by name.
        let single_wide = side == Side::Input
            && map.inputs.len() == 1
            && map.inputs[0].width > 1
            && map.inputs[0].width == sig.len();
        for (i, c) in sig.iter().enumerate() {
            let kind = column_kind(c.mlflow_type.as_str());
            let target = if single_wide {
                Some((columns[i].name.clone(), map.inputs[0].elem))
            } else {
                elem_of_column(map, side, &c.name)
            };
            match target {
                None => errors.push(format!(
                    "signature {what} column {:?} ({}) is not a column of the graph (its {what} columns: {})",
                    c.name,
                    c.mlflow_type,
                    columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                )),
                Some((col, elem)) => {
                    if kind.is_none() || kind != elem_kind(elem) {
                        errors.push(format!(
                            "signature {what} column {:?} is {}, but the graph's column {col:?} is {}",
                            c.name,
                            c.mlflow_type,
                            elem.name()
                        ));
                    }
                }
            }
        }
        if side == Side::Input && !single_wide {
            let named: BTreeSet<&str> = sig.iter().map(|c| c.name.as_str()).collect();
            for col in columns.iter().filter(|c| !named.contains(c.name.as_str())) {
                errors.push(format!(
                    "graph input column {:?} is not in the signature",
                    col.name
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn names(vis: &[ValueInfo]) -> String {
    vis.iter()
        .map(|v| format!("{:?}", v.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The element type behind the column (or tensor) `name` on `side`.
fn elem_of_column(map: &Mapping, side: Side, name: &str) -> Option<(String, Elem)> {
    match side {
        Side::Input => map.inputs.iter().find_map(|t| {
            (t.name == name || t.columns.iter().any(|c| c.name == name))
                .then(|| (name.to_string(), t.elem))
        }),
        Side::Output => map.outputs.iter().find_map(|t| {
            let elem = match &t.kind {
                OutputKind::Tensor { elem, .. } => *elem,
                OutputKind::ZipMap { value, .. } => *value,
            };
            (t.name == name || t.columns.iter().any(|c| c.name == name))
                .then(|| (name.to_string(), elem))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::parse_schema;
    use ColumnType::*;

    fn testdata(name: &str) -> OnnxModel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata")
            .join(name);
        let mut f = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        super::super::graph::read_model(&mut f).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn cols(c: &[Column]) -> Vec<(std::string::String, ColumnType)> {
        c.iter().map(|c| (c.name.clone(), c.ty)).collect()
    }

    fn want(c: &[(&str, ColumnType)]) -> Vec<(std::string::String, ColumnType)> {
        c.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    }

    #[test]
    fn testdata_graphs_map_to_columns() {
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, ColumnType)],
            &'a [(&'a str, ColumnType)],
        );
        let cases: &[Case] = &[
            (
                "onnx/regressor/model.onnx",
                &[
                    ("input_0", Float32),
                    ("input_1", Float32),
                    ("input_2", Float32),
                    ("input_3", Float32),
                ],
                &[("variable", Float32)],
            ),
            (
                "onnx/classifier_zipmap/model.onnx",
                &[
                    ("features_0", Float32),
                    ("features_1", Float32),
                    ("features_2", Float32),
                    ("features_3", Float32),
                ],
                &[
                    ("output_label", Int64),
                    ("0", Float32),
                    ("1", Float32),
                    ("2", Float32),
                ],
            ),
            (
                "onnx/pipeline/model.onnx",
                &[
                    ("age", Float32),
                    ("income", Float32),
                    ("city", String),
                    ("plan", String),
                ],
                &[("label", String), ("no", Float32), ("yes", Float32)],
            ),
            (
                "onnx/mlp/model.onnx",
                &[
                    ("x_0", Float32),
                    ("x_1", Float32),
                    ("x_2", Float32),
                    ("k", Int64),
                ],
                &[
                    ("scores_0", Float32),
                    ("scores_1", Float32),
                    ("total", Float64),
                ],
            ),
            (
                "mlflow/onnx/model.onnx",
                &[
                    ("input_0", Float32),
                    ("input_1", Float32),
                    ("input_2", Float32),
                    ("input_3", Float32),
                ],
                &[("variable", Float32)],
            ),
        ];
        for (file, inputs, outputs) in cases {
            let m = testdata(file);
            let map = map_model(&m);
            assert_eq!(map.unmapped, vec![], "{file}");
            assert_eq!(cols(&map.input_columns()), want(inputs), "{file}");
            assert_eq!(cols(&map.output_columns()), want(outputs), "{file}");
        }
        let m = testdata("onnx/classifier_zipmap/model.onnx");
        assert_eq!(m.producer, "skl2onnx 1.20.0");
        assert!(
            m.opsets.iter().any(|(d, _)| d == "ai.onnx.ml"),
            "{:?}",
            m.opsets
        );
        let map = map_model(&m);
        assert_eq!(
            map.outputs[1].kind,
            OutputKind::ZipMap {
                key: Elem::Int64,
                value: Elem::Float,
                labels: Labels::Int64(vec![0, 1, 2])
            }
        );
        assert_eq!(map.inputs[0].rank, 2);
        assert_eq!(map.inputs[0].batch, Batch::Variable);
        let mlp = map_model(&testdata("onnx/mlp/model.onnx"));
        assert_eq!((mlp.inputs[1].rank, mlp.inputs[1].width), (2, 1));
        assert_eq!(
            mlp.outputs[1].kind,
            OutputKind::Tensor {
                elem: Elem::Double,
                width: 1,
                labelled: false
            }
        );
    }

    fn tensor(name: &str, elem: Elem, dims: &[Dim]) -> ValueInfo {
        ValueInfo {
            name: name.into(),
            ty: Type::Tensor {
                elem,
                shape: Some(dims.to_vec()),
            },
        }
    }

    fn n() -> Dim {
        Dim::Param("N".into())
    }

    #[test]
    fn shapes_and_types_that_do_not_map() {
        use Dim::Fixed;
        let cases: Vec<(&str, ValueInfo, &str)> = vec![
            (
                "image",
                tensor("img", Elem::Float, &[n(), Fixed(3), Fixed(224), Fixed(224)]),
                "rank 4",
            ),
            ("scalar", tensor("s", Elem::Float, &[]), "rank 0"),
            (
                "fixed batch",
                tensor("x", Elem::Float, &[Fixed(8), Fixed(2)]),
                "fixed to 8",
            ),
            (
                "variable width",
                tensor("x", Elem::Float, &[n(), n()]),
                "variable",
            ),
            ("uint64", tensor("x", Elem::Uint64, &[n()]), "uint64"),
            ("float16", tensor("x", Elem::Float16, &[n()]), "float16"),
            (
                "no shape",
                ValueInfo {
                    name: "x".into(),
                    ty: Type::Tensor {
                        elem: Elem::Float,
                        shape: None,
                    },
                },
                "no shape",
            ),
            (
                "map input",
                ValueInfo {
                    name: "m".into(),
                    ty: Type::Map {
                        key: Elem::String,
                        value: Box::new(Type::Tensor {
                            elem: Elem::Float,
                            shape: None,
                        }),
                    },
                },
                "only tensors",
            ),
        ];
        for (label, vi, needle) in cases {
            let m = OnnxModel {
                inputs: vec![vi],
                ..OnnxModel::default()
            };
            let map = map_model(&m);
            assert!(map.inputs.is_empty(), "{label}");
            assert_eq!(map.unmapped.len(), 1, "{label}");
            assert!(
                map.unmapped[0].reason.contains(needle),
                "{label}: {:?}",
                map.unmapped[0]
            );
        }
        // Batch 1 maps (one row per run); a seq of maps without a ZipMap does not.
        let m = OnnxModel {
            inputs: vec![tensor("x", Elem::Double, &[Dim::Fixed(1), Dim::Fixed(2)])],
            outputs: vec![ValueInfo {
                name: "p".into(),
                ty: Type::Sequence(Box::new(Type::Map {
                    key: Elem::Int64,
                    value: Box::new(Type::Tensor {
                        elem: Elem::Float,
                        shape: None,
                    }),
                })),
            }],
            ..OnnxModel::default()
        };
        let map = map_model(&m);
        assert_eq!(map.inputs[0].batch, Batch::One);
        assert_eq!(
            cols(&map.input_columns()),
            want(&[("x_0", Float64), ("x_1", Float64)])
        );
        assert!(
            map.unmapped[0].reason.contains("no ZipMap"),
            "{:?}",
            map.unmapped
        );
    }

    #[test]
    fn labels_are_traced_and_collisions_prefixed() {
        use super::super::graph::Node;
        let node = |op: &str, i: &[&str], o: &[&str], labels: Option<Labels>| Node {
            op_type: op.into(),
            domain: std::string::String::new(),
            inputs: i.iter().map(|s| s.to_string()).collect(),
            outputs: o.iter().map(|s| s.to_string()).collect(),
            labels,
        };
        let m = OnnxModel {
            inputs: vec![tensor("x", Elem::Float, &[n(), Dim::Fixed(2)])],
            outputs: vec![
                tensor("label", Elem::String, &[n()]),
                tensor("probs", Elem::Float, &[n(), Dim::Fixed(2)]),
                tensor("raw", Elem::Float, &[n(), Dim::Fixed(2)]),
            ],
            nodes: vec![
                node(
                    "LinearClassifier",
                    &["x"],
                    &["label", "p0"],
                    Some(Labels::Strings(vec!["label".into(), "b".into()])),
                ),
                node("Cast", &["p0"], &["p1"], None),
                node("Normalizer", &["p1"], &["probs"], None),
                node("MatMul", &["p1", "w"], &["raw"], None),
            ],
            ..OnnxModel::default()
        };
        let map = map_model(&m);
        assert_eq!(
            cols(&map.output_columns()),
            want(&[
                ("label", String),
                ("probs_label", Float32),
                ("probs_b", Float32),
                ("raw_0", Float32),
                ("raw_1", Float32)
            ])
        );
    }

    #[test]
    fn positional_names() {
        assert_eq!(
            positional_columns(Some("x"), Side::Input, 2),
            ["x_0", "x_1"]
        );
        assert_eq!(
            positional_columns(None, Side::Input, 2),
            ["input_0", "input_1"]
        );
        assert_eq!(positional_columns(Some(""), Side::Output, 1), ["output_0"]);
    }

    #[test]
    fn signatures_are_checked_against_the_graph() {
        let pipeline = testdata("onnx/pipeline/model.onnx");
        let regressor = testdata("onnx/regressor/model.onnx");
        let sig = |t: &str, side| parse_schema(t, side).unwrap();
        type Case<'a> = (
            &'a str,
            &'a OnnxModel,
            &'a str,
            &'a str,
            Result<(), &'a str>,
        );
        let cases: &[Case] = &[
            (
                "unnamed tensor",
                &regressor,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]"#,
                r#"[{"name": "variable", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#,
                Ok(()),
            ),
            (
                "wrong dtype",
                &regressor,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]"#,
                r#"[{"name": "variable", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#,
                Err("unnamed signature input 0 is tensor float64 [-1, 4]: dtype float64, but the graph's \"input\" is tensor(float)[?, 4]"),
            ),
            (
                "wrong width",
                &regressor,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]"#,
                r#"[{"name": "variable", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#,
                Err("shape [-1, 3]"),
            ),
            (
                "unknown output",
                &regressor,
                r#"[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]"#,
                r#"[{"name": "score", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#,
                Err("signature output \"score\" (tensor float32 [-1, 1]) is not a graph output (the graph's: \"variable\")"),
            ),
            (
                "columns over one wide tensor",
                &regressor,
                r#"[{"type": "double", "name": "a"}, {"type": "double", "name": "b"}, {"type": "double", "name": "c"}, {"type": "long", "name": "d"}]"#,
                r#"[{"type": "double", "name": "variable"}]"#,
                Ok(()),
            ),
            (
                "named columns",
                &pipeline,
                r#"[{"type": "double", "name": "age"}, {"type": "double", "name": "income"}, {"type": "string", "name": "city"}, {"type": "string", "name": "plan"}]"#,
                r#"[{"type": "string", "name": "label"}, {"type": "double", "name": "yes"}]"#,
                Ok(()),
            ),
            (
                "a column of the wrong kind and one missing",
                &pipeline,
                r#"[{"type": "double", "name": "age"}, {"type": "double", "name": "income"}, {"type": "long", "name": "city"}]"#,
                r#"[{"type": "string", "name": "label"}]"#,
                Err("signature input column \"city\" is long, but the graph's column \"city\" is string; graph input column \"plan\" is not in the signature"),
            ),
            (
                "tensor input missing",
                &pipeline,
                r#"[{"name": "age", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]"#,
                r#"[{"name": "label", "type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}}]"#,
                Err("graph input \"income\" (tensor(float)[?, 1]) is not in the signature"),
            ),
        ];
        for (label, m, inputs, outputs, expect) in cases {
            let map = map_model(m);
            let (i, o) = (sig(inputs, Side::Input), sig(outputs, Side::Output));
            let got = check_signature(m, &map, Some(&i), Some(&o)).map_err(|e| e.join("; "));
            match (expect, got) {
                (Ok(()), Ok(())) => {}
                (Err(w), Err(e)) => assert!(e.contains(w), "{label}: {e}"),
                (w, g) => panic!("{label}: want {w:?}, got {g:?}"),
            }
        }
    }
}
