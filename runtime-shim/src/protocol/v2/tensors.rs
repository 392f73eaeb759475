//! Tensors of the Open Inference Protocol v2 and the cells of the MLOps API: input tensors
//! (JSON `data`, or the binary tensor data extension's bytes) become the text cells a
//! backend reads, and a backend's output cells become typed output tensors.
//!
//! A cell's text is the one the MLOps API would carry for the same value: integers in
//! decimal, floats in their shortest round-trip form at the tensor's own width (so an FP32
//! element reaches an ONNX `float` input as the very same float), booleans `true`/`false`,
//! BYTES as their UTF-8 text. A JSON `null` element is a missing cell (the MLOps API's
//! `null`); binary NaN is `NaN`, which every backend reads as missing or NaN as it would in
//! the MLOps API.
//!
//! Nothing is ever allocated from a declared shape or size: an element count is checked
//! against the elements (or bytes) actually present first, with overflow-checked
//! arithmetic.

use std::fmt;

use artifact_core::ColumnType;
use serde::Serialize;
use serde_json::Value;

/// The tensor datatypes of the protocol this shim reads and writes (one per MLOps column
/// type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    Int32,
    Int64,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    /// The datatype of an MLOps column type: `Time64` and `String` are BYTES (text).
    pub fn of(ty: ColumnType) -> Datatype {
        match ty {
            ColumnType::Boolean => Datatype::Bool,
            ColumnType::Int32 => Datatype::Int32,
            ColumnType::Int64 => Datatype::Int64,
            ColumnType::Float32 => Datatype::Fp32,
            ColumnType::Float64 => Datatype::Fp64,
            ColumnType::String | ColumnType::Time64 => Datatype::Bytes,
        }
    }

    /// The protocol's name (`FP64`).
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    /// Parses a protocol name; `None` for a datatype this shim does not read (UINT8, FP16,
    /// ...), which no MLOps column type maps to.
    pub fn parse(s: &str) -> Option<Datatype> {
        Some(match s {
            "BOOL" => Datatype::Bool,
            "INT32" => Datatype::Int32,
            "INT64" => Datatype::Int64,
            "FP32" => Datatype::Fp32,
            "FP64" => Datatype::Fp64,
            "BYTES" => Datatype::Bytes,
            _ => return None,
        })
    }

    /// Bytes per element in the binary extension (`None`: BYTES, length-prefixed).
    fn width(self) -> Option<usize> {
        match self {
            Datatype::Bool => Some(1),
            Datatype::Int32 | Datatype::Fp32 => Some(4),
            Datatype::Int64 | Datatype::Fp64 => Some(8),
            Datatype::Bytes => None,
        }
    }
}

impl fmt::Display for Datatype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The number of elements of `shape`, or why it has none (a negative or overflowing
/// dimension).
pub fn element_count(shape: &[i64]) -> Result<usize, String> {
    let mut n: usize = 1;
    for d in shape {
        let d = usize::try_from(*d).map_err(|_| {
            format!("shape {shape:?} has a negative dimension (a request's dimensions are sizes)")
        })?;
        n = n.checked_mul(d).ok_or_else(|| {
            format!("shape {shape:?} has more elements than this machine can address")
        })?;
    }
    Ok(n)
}

/// The text of a float cell: shortest round-trip digits; non-finite values as Java and
/// Rust both read them (`NaN`, `Infinity`, `-Infinity`).
fn float_cell<F: Into<f64> + fmt::Display + Copy>(v: F) -> String {
    let w: f64 = v.into();
    if w.is_nan() {
        "NaN".to_string()
    } else if w.is_infinite() {
        if w > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        v.to_string()
    }
}

/// The JSON `data` of an input, flattened (row-major; nested arrays as the spec allows),
/// as cells of `dt`. `count` is the element count of the declared shape.
pub fn cells_from_json(
    data: &Value,
    dt: Datatype,
    count: usize,
) -> Result<Vec<Option<String>>, String> {
    let Value::Array(_) = data else {
        return Err("\"data\" must be a JSON array of the tensor's elements".into());
    };
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    if flat.len() != count {
        return Err(format!(
            "\"data\" holds {} elements but the shape says {count}",
            flat.len()
        ));
    }
    flat.into_iter()
        .enumerate()
        .map(|(i, v)| json_cell(v, dt).map_err(|why| format!("element {i} ({v}) {why}")))
        .collect()
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn json_cell(v: &Value, dt: Datatype) -> Result<Option<String>, &'static str> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(match dt {
        Datatype::Bool => match v {
            Value::Bool(b) => b.to_string(),
            _ => return Err("is not a BOOL (true or false)"),
        },
        Datatype::Int32 => match v.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => i.to_string(),
            Some(_) => return Err("is out of the INT32 range"),
            None => return Err("is not an integer"),
        },
        Datatype::Int64 => match v.as_i64() {
            Some(i) => i.to_string(),
            None => return Err("is not an integer in the INT64 range"),
        },
        Datatype::Fp32 => match v.as_f64() {
            Some(f) if f.is_finite() && f.abs() <= f64::from(f32::MAX) => float_cell(f as f32),
            Some(_) => return Err("is out of the FP32 range"),
            None => return Err("is not a number"),
        },
        Datatype::Fp64 => match v.as_f64() {
            Some(f) => float_cell(f),
            None => return Err("is not a number"),
        },
        Datatype::Bytes => match v {
            Value::String(s) => s.clone(),
            _ => return Err("is not a string (BYTES elements are JSON strings)"),
        },
    }))
}

/// The binary extension's bytes of an input (`raw`, exactly its `binary_data_size`) as
/// cells of `dt`; `count` is the element count of the declared shape.
pub fn cells_from_binary(
    raw: &[u8],
    dt: Datatype,
    count: usize,
) -> Result<Vec<Option<String>>, String> {
    if let Some(w) = dt.width() {
        let want = count.checked_mul(w).filter(|n| *n == raw.len());
        if want.is_none() {
            return Err(format!(
                "binary_data_size is {} bytes but {count} {dt} elements take {}",
                raw.len(),
                count
                    .checked_mul(w)
                    .map_or_else(|| "more".to_string(), |n| n.to_string())
            ));
        }
        return raw
            .chunks_exact(w)
            .enumerate()
            .map(|(i, b)| {
                fixed_cell(b, dt)
                    .map(Some)
                    .map_err(|why| format!("element {i} {why}"))
            })
            .collect();
    }
    // BYTES: each element a 4-byte little-endian length, then that many bytes of UTF-8.
    let mut cells = Vec::with_capacity(count.min(raw.len() / 4));
    let mut rest = raw;
    for i in 0..count {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(format!(
                "the binary data ends before element {i} of {count} (each BYTES element is a 4-byte length and its bytes)"
            ));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(format!(
                "element {i} says it has {len} bytes but only {} remain in binary_data_size",
                tail.len()
            ));
        }
        let (text, tail) = tail.split_at(len);
        let text = std::str::from_utf8(text).map_err(|e| {
            format!("element {i} is not UTF-8 text ({e}); BYTES inputs carry the column's text")
        })?;
        cells.push(Some(text.to_string()));
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes are left over after the {count} BYTES elements of the shape",
            rest.len()
        ));
    }
    Ok(cells)
}

fn fixed_cell(b: &[u8], dt: Datatype) -> Result<String, &'static str> {
    Ok(match dt {
        Datatype::Bool => match b[0] {
            0 => "false".to_string(),
            1 => "true".to_string(),
            _ => return Err("is not a BOOL byte (0 or 1)"),
        },
        Datatype::Int32 => i32::from_le_bytes(b.try_into().expect("4 bytes")).to_string(),
        Datatype::Int64 => i64::from_le_bytes(b.try_into().expect("8 bytes")).to_string(),
        Datatype::Fp32 => float_cell(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        Datatype::Fp64 => float_cell(f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        Datatype::Bytes => unreachable!("BYTES has no fixed width"),
    })
}

/// One output column as a typed tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OutData {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    /// NaN is written as JSON `null` (JSON has no NaN); the binary form keeps it.
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<String>),
}

impl OutData {
    /// The cells a backend answered for one output column, typed as `dt`; the error names
    /// the cell that is not of that type.
    pub fn from_cells<'a>(
        dt: Datatype,
        cells: impl ExactSizeIterator<Item = &'a str>,
    ) -> Result<OutData, String> {
        fn typed<'a, T>(
            cells: impl ExactSizeIterator<Item = &'a str>,
            dt: Datatype,
            parse: impl Fn(&str) -> Option<T>,
        ) -> Result<Vec<T>, String> {
            cells
                .enumerate()
                .map(|(r, c)| {
                    parse(c.trim()).ok_or_else(|| format!("row {r}: {c:?} is not a {dt} value"))
                })
                .collect()
        }
        // An empty numeric cell is a missing value: NaN.
        let float = |s: &str| {
            if s.is_empty() {
                Some(f64::NAN)
            } else {
                s.parse::<f64>().ok()
            }
        };
        Ok(match dt {
            Datatype::Bool => OutData::Bool(typed(cells, dt, |s| {
                match s.to_ascii_lowercase().as_str() {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    _ => None,
                }
            })?),
            Datatype::Int32 => OutData::Int32(typed(cells, dt, |s| s.parse().ok())?),
            Datatype::Int64 => OutData::Int64(typed(cells, dt, |s| s.parse().ok())?),
            Datatype::Fp32 => OutData::Fp32(typed(cells, dt, |s| {
                if s.is_empty() {
                    Some(f32::NAN)
                } else {
                    s.parse::<f32>().ok()
                }
            })?),
            Datatype::Fp64 => OutData::Fp64(typed(cells, dt, float)?),
            Datatype::Bytes => OutData::Bytes(cells.map(str::to_owned).collect()),
        })
    }

    /// Appends the binary extension's form (little-endian; BYTES length-prefixed).
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        match self {
            OutData::Bool(v) => out.extend(v.iter().map(|b| u8::from(*b))),
            OutData::Int32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutData::Int64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutData::Fp32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutData::Fp64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutData::Bytes(v) => v.iter().for_each(|s| {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_elements_become_mlops_cells() {
        type Want = Result<Vec<Option<&'static str>>, &'static str>;
        let cases: Vec<(&str, Value, Datatype, usize, Want)> = vec![
            (
                "fp64 flat",
                json!([1.5, 2, null]),
                Datatype::Fp64,
                3,
                Ok(vec![Some("1.5"), Some("2"), None]),
            ),
            (
                "fp64 nested",
                json!([[0.1], [3e-7]]),
                Datatype::Fp64,
                2,
                Ok(vec![Some("0.1"), Some("0.0000003")]),
            ),
            (
                "fp32 keeps its own digits",
                json!([0.1, 16777217.0]),
                Datatype::Fp32,
                2,
                Ok(vec![Some("0.1"), Some("16777216")]),
            ),
            (
                "fp32 range",
                json!([1e300]),
                Datatype::Fp32,
                1,
                Err("out of the FP32 range"),
            ),
            (
                "int32",
                json!([-3, 7]),
                Datatype::Int32,
                2,
                Ok(vec![Some("-3"), Some("7")]),
            ),
            (
                "int32 range",
                json!([3000000000i64]),
                Datatype::Int32,
                1,
                Err("out of the INT32 range"),
            ),
            (
                "int64 not float",
                json!([1.5]),
                Datatype::Int64,
                1,
                Err("is not an integer"),
            ),
            (
                "bool",
                json!([true, false]),
                Datatype::Bool,
                2,
                Ok(vec![Some("true"), Some("false")]),
            ),
            (
                "bool not number",
                json!([1]),
                Datatype::Bool,
                1,
                Err("is not a BOOL"),
            ),
            (
                "bytes",
                json!(["red", ""]),
                Datatype::Bytes,
                2,
                Ok(vec![Some("red"), Some("")]),
            ),
            (
                "bytes not number",
                json!([3]),
                Datatype::Bytes,
                1,
                Err("is not a string"),
            ),
            (
                "string for fp64",
                json!(["1.5"]),
                Datatype::Fp64,
                1,
                Err("is not a number"),
            ),
            (
                "too few",
                json!([1.0]),
                Datatype::Fp64,
                2,
                Err("holds 1 elements but the shape says 2"),
            ),
            (
                "not an array",
                json!(1.0),
                Datatype::Fp64,
                1,
                Err("must be a JSON array"),
            ),
        ];
        for (name, data, dt, count, want) in cases {
            let got = cells_from_json(&data, dt, count);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(
                    g,
                    w.iter().map(|c| c.map(str::to_string)).collect::<Vec<_>>(),
                    "{name}"
                ),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    /// A JSON number parses to the nearest double (serde_json's `float_roundtrip`), so
    /// the cell is the very value the client sent.
    #[test]
    fn json_numbers_keep_every_bit() {
        for text in [
            "0.46967021928491315",
            "0.1",
            "5e-324",
            "1.7976931348623157e308",
        ] {
            let data: Value = serde_json::from_str(&format!("[{text}]")).unwrap();
            let cell = cells_from_json(&data, Datatype::Fp64, 1).unwrap()[0]
                .clone()
                .unwrap();
            assert_eq!(
                cell.parse::<f64>().unwrap().to_bits(),
                text.parse::<f64>().unwrap().to_bits(),
                "{text} became {cell}"
            );
        }
    }

    #[test]
    fn binary_elements_become_mlops_cells() {
        let le = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let bytes = |v: &[&[u8]]| {
            let mut out = Vec::new();
            for s in v {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s);
            }
            out
        };
        type Want = Result<Vec<&'static str>, &'static str>;
        let cases: Vec<(&str, Vec<u8>, Datatype, usize, Want)> = vec![
            (
                "fp64",
                le(&[1.5, f64::NAN, f64::NEG_INFINITY]),
                Datatype::Fp64,
                3,
                Ok(vec!["1.5", "NaN", "-Infinity"]),
            ),
            ("fp64 short", le(&[1.5]), Datatype::Fp64, 2, Err("take 16")),
            (
                "fp32",
                0.1f32.to_le_bytes().to_vec(),
                Datatype::Fp32,
                1,
                Ok(vec!["0.1"]),
            ),
            (
                "int64",
                (-9i64).to_le_bytes().to_vec(),
                Datatype::Int64,
                1,
                Ok(vec!["-9"]),
            ),
            (
                "int32",
                5i32.to_le_bytes().to_vec(),
                Datatype::Int32,
                1,
                Ok(vec!["5"]),
            ),
            (
                "bool",
                vec![1, 0],
                Datatype::Bool,
                2,
                Ok(vec!["true", "false"]),
            ),
            (
                "bool byte",
                vec![2],
                Datatype::Bool,
                1,
                Err("not a BOOL byte"),
            ),
            (
                "bytes",
                bytes(&[b"red", b""]),
                Datatype::Bytes,
                2,
                Ok(vec!["red", ""]),
            ),
            (
                "bytes not utf-8",
                bytes(&[b"\xff\xfe"]),
                Datatype::Bytes,
                1,
                Err("not UTF-8"),
            ),
            (
                "bytes length past end",
                vec![9, 0, 0, 0, b'a'],
                Datatype::Bytes,
                1,
                Err("says it has 9 bytes"),
            ),
            (
                "bytes huge length",
                vec![0xff, 0xff, 0xff, 0xff],
                Datatype::Bytes,
                1,
                Err("says it has 4294967295"),
            ),
            (
                "bytes missing element",
                bytes(&[b"a"]),
                Datatype::Bytes,
                2,
                Err("ends before element 1"),
            ),
            (
                "bytes left over",
                bytes(&[b"a", b"b"]),
                Datatype::Bytes,
                1,
                Err("left over"),
            ),
            (
                "huge count",
                vec![0; 8],
                Datatype::Fp64,
                usize::MAX,
                Err("take more"),
            ),
        ];
        for (name, raw, dt, count, want) in cases {
            match (cells_from_binary(&raw, dt, count), want) {
                (Ok(g), Ok(w)) => assert_eq!(
                    g,
                    w.iter().map(|c| Some(c.to_string())).collect::<Vec<_>>(),
                    "{name}"
                ),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn shapes_count_without_overflow() {
        assert_eq!(element_count(&[3, 4]), Ok(12));
        assert_eq!(element_count(&[]), Ok(1));
        assert!(element_count(&[-1]).unwrap_err().contains("negative"));
        assert!(element_count(&[i64::MAX, i64::MAX, 4])
            .unwrap_err()
            .contains("more elements"));
    }

    #[test]
    fn output_cells_become_typed_tensors() {
        let cells = ["0.25", "NaN", ""];
        match OutData::from_cells(Datatype::Fp32, cells.iter().copied()) {
            Ok(OutData::Fp32(v)) => {
                assert_eq!(v[0], 0.25);
                assert!(v[1].is_nan() && v[2].is_nan());
            }
            other => panic!("{other:?}"),
        }
        let d = OutData::from_cells(Datatype::Fp64, ["0.5", "1e-3"].into_iter()).unwrap();
        assert_eq!(d, OutData::Fp64(vec![0.5, 0.001]));
        let mut out = Vec::new();
        OutData::Bytes(vec!["ab".into()]).write_binary(&mut out);
        assert_eq!(out, [2, 0, 0, 0, b'a', b'b']);
        let e = OutData::from_cells(Datatype::Int64, ["x"].into_iter()).unwrap_err();
        assert!(e.contains("row 0: \"x\" is not a INT64"), "{e}");
        assert_eq!(
            serde_json::to_string(&OutData::Fp64(vec![f64::NAN, 1.0])).unwrap(),
            "[null,1.0]"
        );
    }
}
