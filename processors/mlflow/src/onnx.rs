//! ONNX models: what the `onnx` model type needs to know about a `.onnx` file without
//! loading it in an ONNX runtime.
//!
//! - [`graph`] reads the file in one streaming pass: the external data files it names
//!   (large models keep tensor data in separate files named by
//!   `TensorProto.external_data`, `location` relative to the model file; the `onnx` model
//!   type ships the `.onnx` file and exactly those files), and the main graph's interface
//!   (inputs, outputs, types, shapes, class labels).
//! - [`schema`] maps that interface to MLOps columns, the one rule the processor (which
//!   writes the schema) and the runtime (which checks the directory against the graph and
//!   scores through it) share, and checks it against an MLflow signature.

pub mod graph;
pub mod schema;

use std::io::Read;

/// Reads a whole `.onnx` stream and returns the external data locations it names, sorted.
/// `Err` is a one-line reason (the file is not a well-formed ONNX protobuf).
pub fn external_locations(r: &mut dyn Read) -> Result<Vec<String>, String> {
    graph::read_model(r).map(|m| m.external)
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

    /// Hundreds of thousands of empty nodes (2 bytes each in the file) cannot make the
    /// reader keep more than its budget.
    #[test]
    fn kept_memory_is_bounded() {
        let mut g = Vec::new();
        for _ in 0..700_000 {
            len_field(1, &[], &mut g);
        }
        let mut m = Vec::new();
        len_field(7, &g, &mut m);
        let err = graph::read_model(&mut &m[..]).unwrap_err();
        assert!(
            err.contains("bytes of names, labels and nodes to keep"),
            "{err}"
        );
        // The same nodes in a function (not kept) are read through.
        let mut f = Vec::new();
        for _ in 0..700_000 {
            len_field(7, &[], &mut f);
        }
        let mut m = Vec::new();
        len_field(25, &f, &mut m);
        assert!(graph::read_model(&mut &m[..]).is_ok());
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
