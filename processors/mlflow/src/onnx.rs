//! The external data files an ONNX model refers to.
//!
//! Large ONNX models keep tensor data in separate files named by `TensorProto.external_data`
//! (`location` relative to the model file). The `onnx` model type ships the `.onnx` file and
//! exactly those files, so they must be known without loading the model. This is a
//! streaming walk of the protobuf wire format that descends only into the messages that
//! can hold tensors (graph initializers, node attributes, subgraphs, functions, training
//! info) and skips everything else, raw tensor bytes included, without buffering them.

use std::collections::BTreeSet;
use std::io::{self, Read};

/// Refuse messages nested deeper than this (subgraphs of subgraphs ...).
const MAX_DEPTH: u32 = 64;
/// Longest external-data key or value read into memory.
const MAX_ENTRY_BYTES: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Model,
    Graph,
    Node,
    Attribute,
    Function,
    TrainingInfo,
    Tensor,
    SparseTensor,
}

impl Msg {
    /// The sub-message a length-delimited field holds, if it is one worth descending into.
    fn child(self, field: u64) -> Option<Msg> {
        use Msg::*;
        match (self, field) {
            (Model, 7) => Some(Graph),
            (Model, 20) => Some(TrainingInfo),
            (Model, 25) => Some(Function),
            (TrainingInfo, 1 | 2) => Some(Graph),
            (Graph, 1) => Some(Node),
            (Graph, 5) => Some(Tensor),
            (Graph, 15) => Some(SparseTensor),
            (Function, 7) => Some(Node),
            (Node, 5) => Some(Attribute),
            (Attribute, 5 | 10) => Some(Tensor),
            (Attribute, 6 | 11) => Some(Graph),
            (Attribute, 22 | 23) => Some(SparseTensor),
            (SparseTensor, 1 | 2) => Some(Tensor),
            _ => None,
        }
    }
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
        if n > MAX_ENTRY_BYTES {
            return Err(format!("an external-data entry is {n} bytes long"));
        }
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

/// Reads a whole `.onnx` stream and returns the external data locations it names, sorted.
/// `Err` is a one-line reason (the file is not a well-formed ONNX protobuf).
pub fn external_locations(r: &mut dyn Read) -> Result<Vec<String>, String> {
    let mut w = Wire { r, pos: 0 };
    let mut out = BTreeSet::new();
    scan(&mut w, Msg::Model, None, 0, &mut out)?;
    Ok(out.into_iter().collect())
}

fn scan(
    w: &mut Wire,
    msg: Msg,
    end: Option<u64>,
    depth: u32,
    out: &mut BTreeSet<String>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("messages nested more than {MAX_DEPTH} deep"));
    }
    let mut location: Option<String> = None;
    let mut external = false;
    loop {
        if let Some(end) = end {
            if w.pos == end {
                break;
            }
            if w.pos > end {
                return Err(format!(
                    "a field crosses the end of its message at byte {}",
                    w.pos
                ));
            }
        }
        let Some(key) = w.varint()? else {
            if end.is_some() {
                return Err("truncated: the file ends inside a message".into());
            }
            break;
        };
        let field = key >> 3;
        match key & 7 {
            0 => {
                let v = w.varint()?.ok_or("truncated varint")?;
                if msg == Msg::Tensor && field == 14 {
                    external = v == 1;
                }
            }
            1 => w.skip(8)?,
            5 => w.skip(4)?,
            2 => {
                let len = w.varint()?.ok_or("truncated length")?;
                let field_end = w.pos.checked_add(len).ok_or("length overflows")?;
                if let Some(end) = end {
                    if field_end > end {
                        return Err(format!(
                            "a field of {len} bytes crosses the end of its message at byte {}",
                            w.pos
                        ));
                    }
                }
                if msg == Msg::Tensor && field == 13 {
                    if let Some(loc) = entry_location(w, field_end)? {
                        location = Some(loc);
                    }
                } else if let Some(child) = msg.child(field) {
                    scan(w, child, Some(field_end), depth + 1, out)?;
                } else {
                    w.skip(len)?;
                }
            }
            t => {
                return Err(format!(
                    "unsupported protobuf wire type {t} at byte {}: not an ONNX model",
                    w.pos
                ))
            }
        }
    }
    if msg == Msg::Tensor && external {
        match location {
            Some(l) => {
                out.insert(l);
            }
            None => return Err("a tensor stored externally has no \"location\"".into()),
        }
    }
    Ok(())
}

/// Reads a `StringStringEntryProto`; returns its value when the key is `location`.
fn entry_location(w: &mut Wire, end: u64) -> Result<Option<String>, String> {
    let mut key = None;
    let mut value = None;
    while w.pos < end {
        let k = w.varint()?.ok_or("truncated entry")?;
        if k & 7 != 2 {
            return Err("malformed external-data entry".into());
        }
        let len = w.varint()?.ok_or("truncated entry")?;
        if w.pos + len > end {
            return Err("malformed external-data entry".into());
        }
        let b = w.bytes(len)?;
        let s = String::from_utf8(b).map_err(|_| "an external-data entry is not UTF-8")?;
        match k >> 3 {
            1 => key = Some(s),
            2 => value = Some(s),
            _ => {}
        }
    }
    if w.pos != end {
        return Err("malformed external-data entry".into());
    }
    Ok(if key.as_deref() == Some("location") {
        value
    } else {
        None
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    fn len_field(field: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    /// A TensorProto with raw data, or stored externally at `location`.
    pub fn tensor(name: &str, location: Option<&str>) -> Vec<u8> {
        let mut t = Vec::new();
        varint(1 << 3, &mut t); // dims
        varint(4, &mut t);
        varint(2 << 3, &mut t); // data_type FLOAT
        varint(1, &mut t);
        len_field(8, name.as_bytes(), &mut t);
        match location {
            None => len_field(9, &[0u8; 16], &mut t),
            Some(loc) => {
                let mut e = Vec::new();
                len_field(1, b"location", &mut e);
                len_field(2, loc.as_bytes(), &mut e);
                len_field(13, &e, &mut t);
                varint(14 << 3, &mut t);
                varint(1, &mut t);
            }
        }
        t
    }

    /// A ModelProto with the given initializers, one in a Constant node attribute.
    pub fn model(initializers: &[Vec<u8>], attr_tensor: Option<Vec<u8>>) -> Vec<u8> {
        let mut g = Vec::new();
        for t in initializers {
            len_field(5, t, &mut g);
        }
        if let Some(t) = attr_tensor {
            let mut a = Vec::new();
            len_field(1, b"value", &mut a);
            len_field(5, &t, &mut a);
            let mut n = Vec::new();
            len_field(4, b"Constant", &mut n);
            len_field(5, &a, &mut n);
            len_field(1, &n, &mut g);
        }
        len_field(2, b"graph", &mut g);
        let mut m = Vec::new();
        varint(1 << 3, &mut m); // ir_version
        varint(8, &mut m);
        len_field(2, b"skl2onnx", &mut m);
        len_field(7, &g, &mut m);
        let mut opset = Vec::new();
        varint(2 << 3, &mut opset);
        varint(17, &mut opset);
        len_field(8, &opset, &mut m);
        m
    }

    #[test]
    fn locations() {
        type Case<'a> = (&'a str, Vec<u8>, Result<&'a [&'a str], &'a str>);
        let cases: Vec<Case> = vec![
            ("inline", model(&[tensor("w", None)], None), Ok(&[])),
            (
                "external",
                model(&[tensor("w", Some("weights.bin")), tensor("b", None)], None),
                Ok(&["weights.bin"]),
            ),
            (
                "shared file and attribute tensor",
                model(
                    &[
                        tensor("w", Some("data/w.bin")),
                        tensor("v", Some("data/w.bin")),
                    ],
                    Some(tensor("c", Some("const.bin"))),
                ),
                Ok(&["const.bin", "data/w.bin"]),
            ),
            ("empty file", Vec::new(), Ok(&[])),
            (
                "truncated",
                model(&[tensor("w", None)], None)[..20].to_vec(),
                Err("truncated"),
            ),
            ("not protobuf", b"\x0f\x0f\x0f".to_vec(), Err("wire type")),
        ];
        for (label, bytes, want) in cases {
            let got = external_locations(&mut &bytes[..]);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "case {label}"),
                (Err(w), Err(e)) => assert!(e.contains(w), "case {label}: {e}"),
                _ => panic!("case {label}: {got:?}"),
            }
        }
    }
}
