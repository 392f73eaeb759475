//! A streaming reader of the parts of an ONNX `ModelProto` this project needs, without an
//! ONNX library and without holding the model in memory.
//!
//! Two things are read in one pass over the protobuf wire format: the external data files
//! the model names (`TensorProto.external_data` `location`, in the graph's initializers,
//! node attributes, subgraphs, functions and training info), and the interface of the
//! main graph: its inputs (less those that are initializers), its outputs with their
//! types and shapes, and, per top-level node, its operator, inputs, outputs and class
//! labels (`classlabels_int64s`/`classlabels_strings` of `ZipMap` and the `ai.onnx.ml`
//! classifiers), which name a classifier's probability columns. Everything else (weights,
//! raw tensor bytes, other attributes, docs) is skipped as it streams by.
//!
//! Attribute values are kept only when the attribute's `name` comes before them, as every
//! protobuf writer emits fields in field-number order; a reordered attribute reads as
//! having no labels, the same way for the processor and the runtime that share this code.

use std::collections::BTreeSet;
use std::io::{self, Read};

/// Refuse messages nested deeper than this (subgraphs of subgraphs, sequence types ...).
const MAX_DEPTH: u32 = 64;
/// Longest string (a name, a label, an external-data entry) read into memory.
const MAX_STRING_BYTES: u64 = 4096;
/// Memory for the strings kept in all (names of nodes' inputs and outputs, labels, ...),
/// counting 32 bytes of overhead per string.
const MAX_KEPT_BYTES: u64 = 64 << 20;

/// The attributes that hold a classifier's class labels.
const LABELS_INT64: &str = "classlabels_int64s";
const LABELS_STRING: &str = "classlabels_strings";

/// An ONNX tensor element type (`TensorProto.DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    Float,
    Uint8,
    Int8,
    Uint16,
    Int16,
    Int32,
    Int64,
    String,
    Bool,
    Float16,
    Double,
    Uint32,
    Uint64,
    /// Any other code (complex, bfloat16, float8, 4-bit types, undefined).
    Other(u64),
}

impl Elem {
    pub fn from_code(code: u64) -> Elem {
        match code {
            1 => Elem::Float,
            2 => Elem::Uint8,
            3 => Elem::Int8,
            4 => Elem::Uint16,
            5 => Elem::Int16,
            6 => Elem::Int32,
            7 => Elem::Int64,
            8 => Elem::String,
            9 => Elem::Bool,
            10 => Elem::Float16,
            11 => Elem::Double,
            12 => Elem::Uint32,
            13 => Elem::Uint64,
            other => Elem::Other(other),
        }
    }

    /// The ONNX name (`tensor(float)` is written `float`).
    pub fn name(self) -> String {
        match self {
            Elem::Float => "float".into(),
            Elem::Uint8 => "uint8".into(),
            Elem::Int8 => "int8".into(),
            Elem::Uint16 => "uint16".into(),
            Elem::Int16 => "int16".into(),
            Elem::Int32 => "int32".into(),
            Elem::Int64 => "int64".into(),
            Elem::String => "string".into(),
            Elem::Bool => "bool".into(),
            Elem::Float16 => "float16".into(),
            Elem::Double => "double".into(),
            Elem::Uint32 => "uint32".into(),
            Elem::Uint64 => "uint64".into(),
            Elem::Other(c) => format!("element type {c}"),
        }
    }
}

/// One dimension of a tensor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    /// A named variable size (`N`, `batch_size`).
    Param(String),
    /// Neither a value nor a name: a variable size.
    Unknown,
}

impl Dim {
    pub fn fixed(&self) -> Option<i64> {
        match self {
            Dim::Fixed(v) => Some(*v),
            _ => None,
        }
    }
}

/// The type of a graph input or output (`TypeProto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `shape` is `None` when the graph gives none (any rank).
    Tensor {
        elem: Elem,
        shape: Option<Vec<Dim>>,
    },
    Sequence(Box<Type>),
    Map {
        key: Elem,
        value: Box<Type>,
    },
    Optional(Box<Type>),
    /// A sparse tensor, or no type at all.
    Unsupported(&'static str),
}

impl Type {
    /// Short text, e.g. `tensor(float)[N, 4]`, `seq(map(int64, tensor(float)))`.
    pub fn text(&self) -> String {
        match self {
            Type::Tensor { elem, shape } => {
                let dims = match shape {
                    None => "(no shape)".to_string(),
                    Some(d) => format!(
                        "[{}]",
                        d.iter()
                            .map(|d| match d {
                                Dim::Fixed(v) => v.to_string(),
                                Dim::Param(p) => p.clone(),
                                Dim::Unknown => "?".into(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!("tensor({}){dims}", elem.name())
            }
            Type::Sequence(t) => format!("seq({})", t.text()),
            Type::Map { key, value } => format!("map({}, {})", key.name(), value.text()),
            Type::Optional(t) => format!("optional({})", t.text()),
            Type::Unsupported(what) => what.to_string(),
        }
    }
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    pub name: String,
    pub ty: Type,
}

/// A classifier's class labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    Int64(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Int64(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels as text, in order.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Labels::Int64(v) => v.iter().map(i64::to_string).collect(),
            Labels::Strings(v) => v.clone(),
        }
    }
}

/// A node of the main graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub op_type: String,
    /// `""` for the default ONNX domain, `ai.onnx.ml` for the ML operators.
    pub domain: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub labels: Option<Labels>,
}

/// What this reader takes from a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnnxModel {
    pub ir_version: u64,
    pub producer: String,
    /// `(domain, version)` of each `opset_import`.
    pub opsets: Vec<(String, i64)>,
    /// The main graph's inputs that are not initializers (what a caller feeds).
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    pub nodes: Vec<Node>,
    /// External data locations, sorted, each once.
    pub external: Vec<String>,
}

impl OnnxModel {
    /// The node of the main graph that produces `value`.
    pub fn producer_of(&self, value: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == value))
    }
}

/// Reads a whole `.onnx` stream. `Err` is a one-line reason (not a well-formed ONNX model,
/// or past this reader's limits).
pub fn read_model(r: &mut dyn Read) -> Result<OnnxModel, String> {
    let mut rd = Reader {
        w: Wire { r, pos: 0 },
        kept: 0,
        external: BTreeSet::new(),
        initializers: BTreeSet::new(),
    };
    let mut m = OnnxModel::default();
    let mut graph_inputs = Vec::new();
    let mut producer_version = String::new();
    rd.message(None, 0, |rd, field, v| match (field, v) {
        (1, Val::Varint(x)) => {
            m.ir_version = x;
            Ok(true)
        }
        (2, Val::Len(len)) => {
            m.producer = rd.string(len)?;
            Ok(true)
        }
        (3, Val::Len(len)) => {
            producer_version = rd.string(len)?;
            Ok(true)
        }
        (7, Val::Len(len)) => {
            let end = rd.end_of(len)?;
            rd.graph(
                end,
                1,
                Some((&mut graph_inputs, &mut m.outputs, &mut m.nodes)),
            )?;
            Ok(true)
        }
        (8, Val::Len(len)) => {
            let end = rd.end_of(len)?;
            let (mut domain, mut version) = (String::new(), 0i64);
            rd.message(Some(end), 1, |rd, f, v| match (f, v) {
                (1, Val::Len(l)) => {
                    domain = rd.string(l)?;
                    Ok(true)
                }
                (2, Val::Varint(x)) => {
                    version = x as i64;
                    Ok(true)
                }
                _ => Ok(false),
            })?;
            m.opsets.push((domain, version));
            Ok(true)
        }
        (20, Val::Len(len)) => {
            // TrainingInfoProto: initialization (1) and algorithm (2) graphs.
            let end = rd.end_of(len)?;
            rd.message(Some(end), 1, |rd, f, v| match (f, v) {
                (1 | 2, Val::Len(l)) => {
                    let e = rd.end_of(l)?;
                    rd.graph(e, 2, None)?;
                    Ok(true)
                }
                _ => Ok(false),
            })?;
            Ok(true)
        }
        (25, Val::Len(len)) => {
            // FunctionProto: its nodes (7) may hold tensors.
            let end = rd.end_of(len)?;
            rd.message(Some(end), 1, |rd, f, v| match (f, v) {
                (7, Val::Len(l)) => {
                    let e = rd.end_of(l)?;
                    rd.node(e, 2, false)?;
                    Ok(true)
                }
                _ => Ok(false),
            })?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    if !producer_version.is_empty() {
        m.producer = format!("{} {producer_version}", m.producer)
            .trim()
            .to_string();
    }
    // Before IR version 4 initializers were listed among the inputs too: those are not
    // fed by a caller.
    m.inputs = graph_inputs
        .into_iter()
        .filter(|i: &ValueInfo| !rd.initializers.contains(&i.name))
        .collect();
    m.external = rd.external.into_iter().collect();
    Ok(m)
}

struct Wire<'r> {
    r: &'r mut dyn Read,
    pos: u64,
}

impl Wire<'_> {
    /// Reads one byte; `None` at the end of the stream.
    fn byte(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        loop {
            match self.r.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.pos += 1;
                    return Ok(Some(b[0]));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn varint(&mut self) -> Result<Option<u64>, String> {
        let mut v = 0u64;
        for i in 0..10 {
            match self.byte().map_err(|e| e.to_string())? {
                None if i == 0 => return Ok(None),
                None => return Err(format!("truncated varint at byte {}", self.pos)),
                Some(b) => {
                    v |= u64::from(b & 0x7f) << (7 * i);
                    if b & 0x80 == 0 {
                        return Ok(Some(v));
                    }
                }
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        let copied =
            io::copy(&mut (&mut self.r).take(n), &mut io::sink()).map_err(|e| e.to_string())?;
        self.pos += copied;
        if copied != n {
            return Err(format!(
                "truncated: a field runs past the end of the file at byte {}",
                self.pos
            ));
        }
        Ok(())
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|_| {
            format!(
                "truncated: a field runs past the end of the file at byte {}",
                self.pos
            )
        })?;
        self.pos += n;
        Ok(buf)
    }
}

/// A field's value as the callback of [`Reader::message`] sees it. A length-delimited
/// field not consumed by the callback (it returns `false`) is skipped.
#[derive(Clone, Copy)]
enum Val {
    Varint(u64),
    /// Length-delimited: the length; the bytes follow.
    Len(u64),
    /// A fixed-size field, already skipped.
    Fixed,
}

type Sinks<'a> = (
    &'a mut Vec<ValueInfo>,
    &'a mut Vec<ValueInfo>,
    &'a mut Vec<Node>,
);

struct Reader<'r> {
    w: Wire<'r>,
    kept: u64,
    external: BTreeSet<String>,
    /// Names of the main graph's initializers.
    initializers: BTreeSet<String>,
}

impl Reader<'_> {
    /// The end position of a length-delimited field starting here.
    fn end_of(&self, len: u64) -> Result<u64, String> {
        self.w
            .pos
            .checked_add(len)
            .ok_or_else(|| "length overflows".to_string())
    }

    /// A string field of `len` bytes, counted against the memory budget.
    fn string(&mut self, len: u64) -> Result<String, String> {
        if len > MAX_STRING_BYTES {
            return Err(format!(
                "a name or label of {len} bytes at byte {} (at most {MAX_STRING_BYTES})",
                self.w.pos
            ));
        }
        // Each kept string also costs its header and allocation: count those too, so
        // that millions of one-byte names stay within the budget.
        self.charge(len + 32)?;
        let b = self.w.bytes(len)?;
        String::from_utf8(b)
            .map_err(|_| format!("a string before byte {} is not UTF-8", self.w.pos))
    }

    /// Counts `bytes` of kept data against [`MAX_KEPT_BYTES`].
    fn charge(&mut self, bytes: u64) -> Result<(), String> {
        self.kept += bytes;
        if self.kept > MAX_KEPT_BYTES {
            return Err(format!(
                "more than {MAX_KEPT_BYTES} bytes of names, labels and nodes to keep"
            ));
        }
        Ok(())
    }

    /// Reads the fields of one message up to `end` (the end of the stream when `None`),
    /// handing each to `f`.
    fn message(
        &mut self,
        end: Option<u64>,
        depth: u32,
        mut f: impl FnMut(&mut Self, u64, Val) -> Result<bool, String>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("messages nested more than {MAX_DEPTH} deep"));
        }
        loop {
            if let Some(end) = end {
                if self.w.pos == end {
                    return Ok(());
                }
                if self.w.pos > end {
                    return Err(format!(
                        "a field crosses the end of its message at byte {}",
                        self.w.pos
                    ));
                }
            }
            let Some(key) = self.w.varint()? else {
                if end.is_some() {
                    return Err("truncated: the file ends inside a message".into());
                }
                return Ok(());
            };
            let field = key >> 3;
            match key & 7 {
                0 => {
                    let v = self.w.varint()?.ok_or("truncated varint")?;
                    f(self, field, Val::Varint(v))?;
                }
                1 => {
                    self.w.skip(8)?;
                    f(self, field, Val::Fixed)?;
                }
                5 => {
                    self.w.skip(4)?;
                    f(self, field, Val::Fixed)?;
                }
                2 => {
                    let len = self.w.varint()?.ok_or("truncated length")?;
                    let field_end = self.end_of(len)?;
                    if end.is_some_and(|e| field_end > e) {
                        return Err(format!(
                            "a field of {len} bytes crosses the end of its message at byte {}",
                            self.w.pos
                        ));
                    }
                    let start = self.w.pos;
                    if f(self, field, Val::Len(len))? {
                        if self.w.pos != field_end {
                            return Err(format!(
                                "a message of {len} bytes at byte {start} was read to byte {}",
                                self.w.pos
                            ));
                        }
                    } else {
                        self.w.skip(len)?;
                    }
                }
                t => {
                    return Err(format!(
                        "unsupported protobuf wire type {t} at byte {}: not an ONNX model",
                        self.w.pos
                    ))
                }
            }
        }
    }

    /// A `GraphProto`; `sinks` for the main graph only.
    fn graph(&mut self, end: u64, depth: u32, mut sinks: Option<Sinks<'_>>) -> Result<(), String> {
        let top = sinks.is_some();
        self.message(Some(end), depth, |rd, field, v| {
            let Val::Len(len) = v else { return Ok(false) };
            let e = rd.end_of(len)?;
            match field {
                1 => {
                    let node = rd.node(e, depth + 1, top)?;
                    if let (Some((_, _, nodes)), Some(n)) = (sinks.as_mut(), node) {
                        nodes.push(n);
                    }
                }
                5 => {
                    if let Some(name) = rd.tensor(e, depth + 1, top)? {
                        rd.initializers.insert(name);
                    }
                }
                15 => {
                    // SparseTensorProto: values (1) and indices (2) tensors; the values
                    // carry the name.
                    let mut name = None;
                    rd.message(Some(e), depth + 1, |rd, f, v| match (f, v) {
                        (1 | 2, Val::Len(l)) => {
                            let e2 = rd.end_of(l)?;
                            let n = rd.tensor(e2, depth + 2, top && f == 1)?;
                            if n.is_some() {
                                name = n;
                            }
                            Ok(true)
                        }
                        _ => Ok(false),
                    })?;
                    if let Some(n) = name {
                        rd.initializers.insert(n);
                    }
                }
                11 | 12 if top => {
                    let vi = rd.value_info(e, depth + 1)?;
                    if let Some((inputs, outputs, _)) = sinks.as_mut() {
                        if field == 11 {
                            inputs.push(vi);
                        } else {
                            outputs.push(vi);
                        }
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    /// A `NodeProto`; its interface is kept for a node of the main graph.
    fn node(&mut self, end: u64, depth: u32, keep: bool) -> Result<Option<Node>, String> {
        if keep {
            self.charge(std::mem::size_of::<Node>() as u64)?;
        }
        let mut n = Node {
            op_type: String::new(),
            domain: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            labels: None,
        };
        self.message(Some(end), depth, |rd, field, v| {
            let Val::Len(len) = v else { return Ok(false) };
            match field {
                1 | 2 | 4 | 7 if keep => {
                    let s = rd.string(len)?;
                    match field {
                        1 => n.inputs.push(s),
                        2 => n.outputs.push(s),
                        4 => n.op_type = s,
                        _ => n.domain = s,
                    }
                }
                5 => {
                    let e = rd.end_of(len)?;
                    if let Some(l) = rd.attribute(e, depth + 1, keep)? {
                        n.labels = Some(l);
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(keep.then_some(n))
    }

    /// An `AttributeProto`: tensors and graphs inside it are walked for external data;
    /// class labels are returned when `keep`.
    fn attribute(&mut self, end: u64, depth: u32, keep: bool) -> Result<Option<Labels>, String> {
        let mut name: Option<String> = None;
        let mut ints = Vec::new();
        let mut strings = Vec::new();
        self.message(Some(end), depth, |rd, field, v| {
            let wanted = |label: &str| keep && name.as_deref() == Some(label);
            match (field, v) {
                (1, Val::Len(len)) => name = Some(rd.string(len)?),
                (8, Val::Varint(x)) if wanted(LABELS_INT64) => {
                    rd.charge(8)?;
                    ints.push(x as i64)
                }
                (8, Val::Len(len)) if wanted(LABELS_INT64) => {
                    let e = rd.end_of(len)?;
                    while rd.w.pos < e {
                        rd.charge(8)?;
                        ints.push(rd.w.varint()?.ok_or("truncated packed ints")? as i64);
                    }
                }
                (9, Val::Len(len)) if wanted(LABELS_STRING) => strings.push(rd.string(len)?),
                (5, Val::Len(len)) => {
                    let e = rd.end_of(len)?;
                    rd.tensor(e, depth + 1, false)?;
                }
                (10, Val::Len(len)) => {
                    let e = rd.end_of(len)?;
                    rd.tensor(e, depth + 1, false)?;
                }
                (6 | 11, Val::Len(len)) => {
                    let e = rd.end_of(len)?;
                    rd.graph(e, depth + 1, None)?;
                }
                (22 | 23, Val::Len(len)) => {
                    let e = rd.end_of(len)?;
                    rd.message(Some(e), depth + 1, |rd, f, v| match (f, v) {
                        (1 | 2, Val::Len(l)) => {
                            let e2 = rd.end_of(l)?;
                            rd.tensor(e2, depth + 2, false)?;
                            Ok(true)
                        }
                        _ => Ok(false),
                    })?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(match name.as_deref() {
            Some(LABELS_INT64) if keep => Some(Labels::Int64(ints)),
            Some(LABELS_STRING) if keep => Some(Labels::Strings(strings)),
            _ => None,
        })
    }

    /// A `TensorProto`: records its external data location; returns its name when
    /// `want_name`.
    fn tensor(&mut self, end: u64, depth: u32, want_name: bool) -> Result<Option<String>, String> {
        let mut name = None;
        let mut location = None;
        let mut external = false;
        self.message(Some(end), depth, |rd, field, v| match (field, v) {
            (8, Val::Len(len)) if want_name => {
                name = Some(rd.string(len)?);
                Ok(true)
            }
            (13, Val::Len(len)) => {
                let e = rd.end_of(len)?;
                if let Some(l) = rd.entry_location(e, depth + 1)? {
                    location = Some(l);
                }
                Ok(true)
            }
            (14, Val::Varint(x)) => {
                external = x == 1;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        if external {
            match location {
                Some(l) => {
                    self.external.insert(l);
                }
                None => return Err("a tensor stored externally has no \"location\"".into()),
            }
        }
        Ok(name)
    }

    /// A `StringStringEntryProto`; its value when the key is `location`.
    fn entry_location(&mut self, end: u64, depth: u32) -> Result<Option<String>, String> {
        let mut key = None;
        let mut value = None;
        self.message(Some(end), depth, |rd, field, v| match (field, v) {
            (1 | 2, Val::Len(len)) => {
                let s = rd
                    .string(len)
                    .map_err(|e| format!("malformed external-data entry: {e}"))?;
                if field == 1 {
                    key = Some(s);
                } else {
                    value = Some(s);
                }
                Ok(true)
            }
            _ => Err("malformed external-data entry".into()),
        })?;
        Ok(if key.as_deref() == Some("location") {
            value
        } else {
            None
        })
    }

    /// A `ValueInfoProto`.
    fn value_info(&mut self, end: u64, depth: u32) -> Result<ValueInfo, String> {
        let mut vi = ValueInfo {
            name: String::new(),
            ty: Type::Unsupported("no type"),
        };
        self.message(Some(end), depth, |rd, field, v| match (field, v) {
            (1, Val::Len(len)) => {
                vi.name = rd.string(len)?;
                Ok(true)
            }
            (2, Val::Len(len)) => {
                let e = rd.end_of(len)?;
                vi.ty = rd.type_proto(e, depth + 1)?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(vi)
    }

    /// A `TypeProto`.
    fn type_proto(&mut self, end: u64, depth: u32) -> Result<Type, String> {
        let mut ty = Type::Unsupported("no type");
        self.message(Some(end), depth, |rd, field, v| {
            let Val::Len(len) = v else { return Ok(false) };
            let e = rd.end_of(len)?;
            ty = match field {
                1 => rd.tensor_type(e, depth + 1)?,
                4 => Type::Sequence(Box::new(rd.elem_type(e, depth + 1)?)),
                5 => {
                    let mut key = Elem::Other(0);
                    let mut value = Type::Unsupported("no type");
                    rd.message(Some(e), depth + 1, |rd, f, v| match (f, v) {
                        (1, Val::Varint(k)) => {
                            key = Elem::from_code(k);
                            Ok(true)
                        }
                        (2, Val::Len(l)) => {
                            let e2 = rd.end_of(l)?;
                            value = rd.type_proto(e2, depth + 2)?;
                            Ok(true)
                        }
                        _ => Ok(false),
                    })?;
                    Type::Map {
                        key,
                        value: Box::new(value),
                    }
                }
                9 => Type::Optional(Box::new(rd.elem_type(e, depth + 1)?)),
                8 => {
                    rd.w.skip(len)?;
                    Type::Unsupported("sparse tensor")
                }
                _ => return Ok(false),
            };
            Ok(true)
        })?;
        Ok(ty)
    }

    /// The element type (field 1, a `TypeProto`) of a `TypeProto.Sequence` or
    /// `TypeProto.Optional`.
    fn elem_type(&mut self, end: u64, depth: u32) -> Result<Type, String> {
        let mut elem = Type::Unsupported("no type");
        self.message(Some(end), depth, |rd, f, v| match (f, v) {
            (1, Val::Len(l)) => {
                let e = rd.end_of(l)?;
                elem = rd.type_proto(e, depth + 1)?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(elem)
    }

    /// A `TypeProto.Tensor`.
    fn tensor_type(&mut self, end: u64, depth: u32) -> Result<Type, String> {
        let mut elem = Elem::Other(0);
        let mut shape = None;
        self.message(Some(end), depth, |rd, field, v| match (field, v) {
            (1, Val::Varint(x)) => {
                elem = Elem::from_code(x);
                Ok(true)
            }
            (2, Val::Len(len)) => {
                let e = rd.end_of(len)?;
                let mut dims = Vec::new();
                rd.message(Some(e), depth + 1, |rd, f, v| match (f, v) {
                    (1, Val::Len(l)) => {
                        let e2 = rd.end_of(l)?;
                        let mut dim = Dim::Unknown;
                        rd.message(Some(e2), depth + 2, |rd, f, v| match (f, v) {
                            (1, Val::Varint(x)) => {
                                dim = Dim::Fixed(x as i64);
                                Ok(true)
                            }
                            (2, Val::Len(l)) => {
                                dim = Dim::Param(rd.string(l)?);
                                Ok(true)
                            }
                            _ => Ok(false),
                        })?;
                        dims.push(dim);
                        Ok(true)
                    }
                    _ => Ok(false),
                })?;
                shape = Some(dims);
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(Type::Tensor { elem, shape })
    }
}
