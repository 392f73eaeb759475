//! A minimal reader of the protobuf wire format.
//!
//! `mojo/pipeline.pb` is a `mojo.spec.Pipeline` message whose `.proto` is not public, so
//! no generated code can read it. This module reads the wire format only: it yields
//! `(field number, value)` pairs, skips what the caller does not ask for (including
//! groups, with bounded nesting), and checks every length against the bytes left, so a
//! truncated or corrupt message gives an error naming the byte offset instead of a panic.

use std::fmt;

/// Deepest nesting of groups skipped inside one message.
const MAX_GROUP_DEPTH: usize = 32;
/// A varint is at most 10 bytes long.
const MAX_VARINT_LEN: usize = 10;

/// What went wrong, and at which byte of the outermost message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Absolute offset in the outermost message.
    pub at: usize,
    pub truncated: bool,
    pub detail: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.truncated {
            write!(f, "truncated protobuf at byte {}: {}", self.at, self.detail)
        } else {
            write!(f, "invalid protobuf at byte {}: {}", self.at, self.detail)
        }
    }
}

impl std::error::Error for WireError {}

/// The value of one field, as the wire format carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// A length-delimited value: a string, bytes, a sub-message or a packed array.
    Bytes(Msg<'a>),
    /// A (deprecated) group; its content was skipped.
    Group,
}

impl Value<'_> {
    /// The name of the wire type, for messages.
    pub fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "fixed64",
            Value::Fixed32(_) => "fixed32",
            Value::Bytes(_) => "length-delimited",
            Value::Group => "group",
        }
    }
}

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// Absolute offset of the field's key.
    pub at: usize,
}

/// A slice of the outermost message, with its absolute offset (for error positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg<'a> {
    pub bytes: &'a [u8],
    pub base: usize,
}

impl<'a> Msg<'a> {
    /// The outermost message.
    pub fn new(bytes: &'a [u8]) -> Self {
        Msg { bytes, base: 0 }
    }

    /// Iterates over the fields; stops at the first error.
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            msg: *self,
            pos: 0,
            failed: false,
        }
    }

    /// Reads every field, failing on the first malformed one.
    pub fn collect(&self) -> Result<Vec<Field<'a>>, WireError> {
        self.fields().collect()
    }

    /// The bytes as UTF-8 text.
    pub fn as_str(&self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes).map_err(|e| WireError {
            at: self.base + e.valid_up_to(),
            truncated: false,
            detail: "string is not valid UTF-8".into(),
        })
    }

    /// True when the bytes parse completely as a message (a heuristic for opaque data).
    pub fn is_message(&self) -> bool {
        !self.bytes.is_empty() && self.fields().all(|f| f.is_ok())
    }
}

/// Iterator over the fields of a message.
pub struct Fields<'a> {
    msg: Msg<'a>,
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn err(&mut self, at: usize, truncated: bool, detail: impl Into<String>) -> WireError {
        self.failed = true;
        WireError {
            at: self.msg.base + at,
            truncated,
            detail: detail.into(),
        }
    }

    fn varint(&mut self, what: &str) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let Some(&b) = self.msg.bytes.get(self.pos) else {
                return Err(self.err(start, true, format!("{what} varint ends early")));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err(start, false, format!("{what} varint overflows 64 bits")));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err(
            start,
            false,
            format!("{what} varint is longer than 10 bytes"),
        ))
    }

    fn take(&mut self, n: u64, what: &str) -> Result<(usize, &'a [u8]), WireError> {
        let left = self.msg.bytes.len() - self.pos;
        if n > left as u64 {
            let at = self.pos;
            return Err(self.err(
                at,
                true,
                format!("{what} needs {n} bytes but only {left} are left"),
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok((start, &self.msg.bytes[start..self.pos]))
    }

    /// Reads a key: (field number, wire type).
    fn key(&mut self) -> Result<(u32, u8, usize), WireError> {
        let at = self.pos;
        let key = self.varint("field key")?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(self.err(at, false, format!("field number {number} is out of range")));
        }
        Ok((number as u32, (key & 7) as u8, at))
    }

    /// Skips the rest of a group opened by `number`, nested groups included.
    fn skip_group(&mut self, number: u32, depth: usize) -> Result<(), WireError> {
        if depth > MAX_GROUP_DEPTH {
            let at = self.pos;
            return Err(self.err(at, false, "groups are nested too deeply"));
        }
        loop {
            if self.pos >= self.msg.bytes.len() {
                let at = self.pos;
                return Err(self.err(at, true, format!("group {number} is not closed")));
            }
            let (n, wt, at) = self.key()?;
            match wt {
                0 => {
                    self.varint("value")?;
                }
                1 => {
                    self.take(8, "fixed64 value")?;
                }
                2 => {
                    let len = self.varint("length")?;
                    self.take(len, "length-delimited value")?;
                }
                3 => self.skip_group(n, depth + 1)?,
                4 if n == number => return Ok(()),
                4 => {
                    return Err(self.err(
                        at,
                        false,
                        format!("end of group {n} inside group {number}"),
                    ))
                }
                5 => {
                    self.take(4, "fixed32 value")?;
                }
                other => {
                    return Err(self.err(at, false, format!("unknown wire type {other}")));
                }
            }
        }
    }

    fn next_field(&mut self) -> Result<Field<'a>, WireError> {
        let (number, wt, at) = self.key()?;
        let value = match wt {
            0 => Value::Varint(self.varint("value")?),
            1 => {
                let (_, b) = self.take(8, "fixed64 value")?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            2 => {
                let len = self.varint("length")?;
                let (start, bytes) = self.take(len, &format!("field {number}"))?;
                Value::Bytes(Msg {
                    bytes,
                    base: self.msg.base + start,
                })
            }
            3 => {
                self.skip_group(number, 1)?;
                Value::Group
            }
            5 => {
                let (_, b) = self.take(4, "fixed32 value")?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            4 => return Err(self.err(at, false, format!("end of group {number} outside a group"))),
            other => return Err(self.err(at, false, format!("unknown wire type {other}"))),
        };
        Ok(Field {
            number,
            value,
            at: self.msg.base + at,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.msg.bytes.len() {
            return None;
        }
        Some(self.next_field())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(b: &[u8]) -> Result<Vec<(u32, String)>, String> {
        Msg::new(b)
            .collect()
            .map(|v| {
                v.into_iter()
                    .map(|f| {
                        let v = match f.value {
                            Value::Varint(x) => format!("v{x}"),
                            Value::Fixed64(x) => format!("d{x}"),
                            Value::Fixed32(x) => format!("f{x}"),
                            Value::Bytes(m) => format!("b{}", m.bytes.len()),
                            Value::Group => "g".into(),
                        };
                        (f.number, v)
                    })
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn cases() {
        type Case<'a> = (&'a str, &'a [u8], Result<&'a [(u32, &'a str)], &'a str>);
        let cases: &[Case] = &[
            ("empty", b"", Ok(&[])),
            ("varint", &[0x08, 0x96, 0x01], Ok(&[(1, "v150")])),
            ("string", &[0x12, 0x02, b'h', b'i'], Ok(&[(2, "b2")])),
            ("fixed32", &[0x1d, 1, 0, 0, 0], Ok(&[(3, "f1")])),
            ("fixed64", &[0x21, 2, 0, 0, 0, 0, 0, 0, 0], Ok(&[(4, "d2")])),
            (
                "group skipped",
                &[0x2b, 0x08, 0x01, 0x33, 0x34, 0x2c, 0x08, 0x07],
                Ok(&[(5, "g"), (1, "v7")]),
            ),
            (
                "truncated length",
                &[0x12, 0x05, b'a'],
                Err("truncated protobuf at byte 2: field 2 needs 5 bytes but only 1 are left"),
            ),
            (
                "truncated varint",
                &[0x08, 0x96],
                Err("truncated protobuf at byte 1: value varint ends early"),
            ),
            (
                "truncated fixed64",
                &[0x09, 1, 2],
                Err("truncated protobuf at byte 1: fixed64 value needs 8 bytes but only 2 are left"),
            ),
            (
                "open group",
                &[0x2b, 0x08, 0x01],
                Err("truncated protobuf at byte 3: group 5 is not closed"),
            ),
            (
                "stray end group",
                &[0x2c],
                Err("invalid protobuf at byte 0: end of group 5 outside a group"),
            ),
            (
                "wire type 7",
                &[0x0f],
                Err("invalid protobuf at byte 0: unknown wire type 7"),
            ),
            (
                "field zero",
                &[0x00, 0x01],
                Err("invalid protobuf at byte 0: field number 0 is out of range"),
            ),
            (
                "long varint",
                &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                Err("invalid protobuf at byte 1: value varint overflows 64 bits"),
            ),
            (
                "huge length",
                &[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                Err("truncated protobuf at byte 10: field 2 needs 9223372036854775807 bytes but only 0 are left"),
            ),
        ];
        for (label, bytes, want) in cases {
            let got = fields(bytes);
            let want = want
                .map(|v| {
                    v.iter()
                        .map(|(n, s)| (*n, s.to_string()))
                        .collect::<Vec<_>>()
                })
                .map_err(|s| s.to_string());
            assert_eq!(got, want, "case {label}");
        }
    }

    #[test]
    fn deep_groups_are_refused() {
        let mut b = vec![0x0b; 100];
        b.extend(vec![0x0c; 100]);
        let err = Msg::new(&b).collect().unwrap_err();
        assert!(err.detail.contains("nested too deeply"), "{err}");
    }

    #[test]
    fn nested_offsets_are_absolute() {
        // field 1 = message { field 2 = length 9 with only 1 byte }
        let b = [0x0a, 0x03, 0x12, 0x09, b'x'];
        let top = Msg::new(&b).collect().unwrap();
        let Value::Bytes(inner) = top[0].value else {
            panic!("not bytes")
        };
        let err = inner.collect().unwrap_err();
        assert_eq!(err.at, 4);
        assert!(err.truncated);
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        // A message with all wire types; every strict prefix must error or parse, never panic.
        let b = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0,
            0, 0x2b, 0x08, 0x01, 0x2c,
        ];
        assert!(Msg::new(&b).collect().is_ok());
        for n in 0..b.len() {
            let _ = Msg::new(&b[..n]).collect();
        }
    }
}
