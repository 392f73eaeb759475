//! The protobuf generation: `mojo/pipeline.pb`, a `mojo.spec.Pipeline` message (DAI
//! 1.7 and later) whose schema is not public.
//!
//! Only the fields this processor needs are read, with the numbers observed by decoding
//! real pipelines (FORMATS.md §4.5); every other field is skipped as opaque, so newer
//! pipelines with fields unknown here still pass. Every length is checked by [`crate::wire`].
//!
//! | field | read as |
//! |---|---|
//! | 1 | varint: MOJO format major version |
//! | 2, 3 | string: uuid, experiment id |
//! | 4 | `{1: seconds, 2: nanos}`: creation time |
//! | 5 | repeated string: missing-value markers |
//! | 6, 7 | `Frame {repeated Column = 1}`: inputs, outputs; `Column {1: name, oneof type: 2..8}` |
//! | 9 | repeated Transformation; an op whose field 1 names a `…/pipeline.pb` runs a nested pipeline |
//! | 13 | string: DAI version |
//! | 14 | Frame: transformed features (Shapley on transformed features) |
//! | 16 | repeated: transformed → original Shapley mapping |
//! | 17 | target info; regression pipelines reference their prediction-interval tables (`mojo/…`) here |

use std::collections::BTreeSet;
use std::path::Path;

use artifact_core::ColumnType;

use crate::error::DaiError;
use crate::pipeline::{
    parent, resolve, DaiColumn, Generation, Pipeline, PipelineFiles, MAX_NESTING, ROOT_PB,
};
use crate::wire::{Field, Msg, Value, WireError};

/// Column type oneof: field number → (DAI type name, MLOps type).
const TYPE_TAGS: [(u32, &str, ColumnType); 7] = [
    (2, "Bool", ColumnType::Boolean),
    (3, "Int32", ColumnType::Int32),
    (4, "Int64", ColumnType::Int64),
    (5, "Float32", ColumnType::Float32),
    (6, "Float64", ColumnType::Float64),
    (7, "Str", ColumnType::String),
    (8, "Time64", ColumnType::Time64),
];
/// Nesting followed inside the opaque field 17 when looking for table references.
const MAX_OPAQUE_DEPTH: usize = 8;

struct Ctx<'p> {
    path: &'p Path,
    entry: String,
}

impl Ctx<'_> {
    fn wire(&self, wire: WireError) -> DaiError {
        DaiError::Protobuf {
            path: self.path.to_path_buf(),
            entry: self.entry.clone(),
            wire,
        }
    }

    fn invalid(&self, detail: String) -> DaiError {
        DaiError::Invalid {
            path: self.path.to_path_buf(),
            entry: self.entry.clone(),
            detail,
        }
    }

    fn wrong_type(&self, f: &Field, what: &str, expected: &str) -> DaiError {
        self.invalid(format!(
            "field {} ({what}) at byte {} has wire type {}, expected {expected}",
            f.number,
            f.at,
            f.value.wire_name()
        ))
    }

    fn bytes<'a>(&self, f: &Field<'a>, what: &str) -> Result<Msg<'a>, DaiError> {
        match f.value {
            Value::Bytes(m) => Ok(m),
            _ => Err(self.wrong_type(f, what, "length-delimited")),
        }
    }

    fn string(&self, f: &Field, what: &str) -> Result<String, DaiError> {
        let m = self.bytes(f, what)?;
        m.as_str().map(str::to_string).map_err(|w| self.wire(w))
    }

    fn varint(&self, f: &Field, what: &str) -> Result<u64, DaiError> {
        match f.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong_type(f, what, "varint")),
        }
    }

    fn timestamp(&self, f: &Field) -> Result<String, DaiError> {
        let m = self.bytes(f, "creation time")?;
        let (mut secs, mut nanos) = (0i64, 0i64);
        for g in m.fields() {
            let g = g.map_err(|w| self.wire(w))?;
            match g.number {
                // int64 and int32 travel as two's-complement varints.
                1 => secs = self.varint(&g, "creation time seconds")? as i64,
                2 => nanos = self.varint(&g, "creation time nanos")? as i64,
                _ => {}
            }
        }
        format_timestamp(secs, nanos).ok_or_else(|| {
            self.invalid(format!(
                "creation time {secs} s + {nanos} ns is out of range"
            ))
        })
    }

    fn column(&self, m: Msg) -> Result<DaiColumn, DaiError> {
        let mut name = None;
        let mut ty = None;
        let mut other = Vec::new();
        for f in m.fields() {
            let f = f.map_err(|w| self.wire(w))?;
            if f.number == 1 {
                name = Some(self.string(&f, "column name")?);
            } else if let Some(t) = TYPE_TAGS.iter().find(|t| t.0 == f.number) {
                ty = Some(t);
            } else {
                other.push(f.number);
            }
        }
        let name = name.ok_or_else(|| {
            self.invalid(format!("a column at byte {} has no name (field 1)", m.base))
        })?;
        match ty {
            Some((_, dai, t)) => Ok(DaiColumn {
                name,
                dai_type: dai.to_string(),
                ty: *t,
            }),
            None if other.is_empty() => {
                Err(self.invalid(format!("column {name:?} has no type (fields 2 to 8)")))
            }
            None => Err(DaiError::UnknownType {
                path: self.path.to_path_buf(),
                entry: self.entry.clone(),
                column: name,
                dai_type: format!(
                    "with the unknown type tag {}",
                    other
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    fn frame(&self, f: &Field, what: &str, out: &mut Vec<DaiColumn>) -> Result<(), DaiError> {
        let m = self.bytes(f, what)?;
        for g in m.fields() {
            let g = g.map_err(|w| self.wire(w))?;
            if g.number == 1 {
                let c = self.bytes(&g, "column")?;
                out.push(self.column(c)?);
            }
        }
        Ok(())
    }

    fn count_columns(&self, f: &Field, what: &str) -> Result<usize, DaiError> {
        let m = self.bytes(f, what)?;
        let mut n = 0;
        for g in m.fields() {
            let g = g.map_err(|w| self.wire(w))?;
            if g.number == 1 {
                self.bytes(&g, "column")?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The nested pipelines a Transformation (field 9) runs: an op message (field 4 and
    /// above) whose field 1 is a path ending in `pipeline.pb`.
    fn nested_refs(&self, f: &Field, out: &mut Vec<String>) -> Result<(), DaiError> {
        let t = self.bytes(f, "transformation")?;
        for op in t.fields() {
            let op = op.map_err(|w| self.wire(w))?;
            let Value::Bytes(m) = op.value else {
                continue;
            };
            if op.number < 4 || !m.is_message() {
                continue;
            }
            for g in m.fields().flatten() {
                if let (1, Value::Bytes(s)) = (g.number, g.value) {
                    if let Ok(s) = s.as_str() {
                        if s.ends_with("pipeline.pb") {
                            out.push(s.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Zip entries (`mojo/…` strings) referenced anywhere inside an opaque message.
fn entry_refs(m: Msg, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_OPAQUE_DEPTH {
        return;
    }
    for f in m.fields() {
        let Ok(f) = f else { return };
        let Value::Bytes(sub) = f.value else { continue };
        let entry = sub
            .as_str()
            .ok()
            .filter(|s| s.starts_with("mojo/") && !s.chars().any(char::is_control));
        if let Some(s) = entry {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        } else if sub.is_message() {
            entry_refs(sub, depth + 1, out);
        }
    }
}

/// Reads the root `mojo/pipeline.pb` and checks what it refers to.
pub fn parse(path: &Path, bytes: &[u8], files: &PipelineFiles) -> Result<Pipeline, DaiError> {
    let ctx = Ctx {
        path,
        entry: ROOT_PB.into(),
    };
    let mut p = Pipeline::new(Generation::Protobuf);
    let mut missing = Vec::new();
    let mut nested = Vec::new();
    for f in Msg::new(bytes).fields() {
        let f = f.map_err(|w| ctx.wire(w))?;
        match f.number {
            1 => p.mojo_version = Some(ctx.varint(&f, "MOJO version")?.to_string()),
            2 => p.uuid = Some(ctx.string(&f, "uuid")?),
            3 => p.experiment_id = Some(ctx.string(&f, "experiment id")?),
            4 => p.time_created = Some(ctx.timestamp(&f)?),
            5 => missing.push(ctx.string(&f, "missing value")?),
            6 => ctx.frame(&f, "input features", &mut p.inputs)?,
            7 => ctx.frame(&f, "outputs", &mut p.outputs)?,
            9 => ctx.nested_refs(&f, &mut nested)?,
            13 => p.dai_version = Some(ctx.string(&f, "DAI version")?),
            14 => p.transformed_features += ctx.count_columns(&f, "transformed features")?,
            16 => {
                ctx.bytes(&f, "Shapley mapping")?;
                p.original_contributions += 1;
            }
            17 => entry_refs(ctx.bytes(&f, "target info")?, 0, &mut p.interval_tables),
            _ => {}
        }
    }
    p.missing_values = Some(missing);
    for table in &p.interval_tables {
        if !files.names.contains(table) {
            return Err(DaiError::MissingReference {
                path: path.to_path_buf(),
                entry: ROOT_PB.into(),
                what: "prediction-interval table",
                missing: table.clone(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    check_nested(path, files, ROOT_PB, nested, 1, &mut seen, &mut p.nested)?;
    Ok(p)
}

/// Checks that every nested pipeline exists, and follows the ones held in memory.
fn check_nested(
    path: &Path,
    files: &PipelineFiles,
    from: &str,
    refs: Vec<String>,
    depth: usize,
    seen: &mut BTreeSet<String>,
    found: &mut Vec<String>,
) -> Result<(), DaiError> {
    for r in refs {
        let name = resolve(path, from, &r, &["mojo", parent(from)], files)?.ok_or_else(|| {
            DaiError::MissingReference {
                path: path.to_path_buf(),
                entry: from.to_string(),
                what: "nested pipeline",
                missing: r.clone(),
            }
        })?;
        if !seen.insert(name.clone()) {
            continue;
        }
        found.push(name.clone());
        let Some(bytes) = files.contents.get(&name) else {
            continue;
        };
        if depth >= MAX_NESTING {
            return Err(DaiError::Invalid {
                path: path.to_path_buf(),
                entry: name,
                detail: format!("nested pipelines go deeper than {MAX_NESTING} levels"),
            });
        }
        let ctx = Ctx {
            path,
            entry: name.clone(),
        };
        let mut inner = Vec::new();
        for f in Msg::new(bytes).fields() {
            let f = f.map_err(|w| ctx.wire(w))?;
            if f.number == 9 {
                ctx.nested_refs(&f, &mut inner)?;
            }
        }
        check_nested(path, files, &name, inner, depth + 1, seen, found)?;
    }
    Ok(())
}

/// Formats a protobuf Timestamp as ISO-8601 UTC with 0, 3, 6 or 9 fractional digits
/// (the protobuf JSON mapping). `None` outside years 1 to 9999 or for bad nanos.
pub fn format_timestamp(secs: i64, nanos: i64) -> Option<String> {
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    if !(-62_135_596_800..=253_402_300_799).contains(&secs) {
        return None;
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let frac = if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let cases = [
            (0, 0, Some("1970-01-01T00:00:00Z")),
            (
                1_647_057_133,
                997_247_000,
                Some("2022-03-12T03:52:13.997247Z"),
            ),
            (
                1_564_621_509,
                468_393_000,
                Some("2019-08-01T01:05:09.468393Z"),
            ),
            (951_782_400, 5_000_000, Some("2000-02-29T00:00:00.005Z")),
            (-1, 1, Some("1969-12-31T23:59:59.000000001Z")),
            (-62_135_596_800, 0, Some("0001-01-01T00:00:00Z")),
            (253_402_300_799, 0, Some("9999-12-31T23:59:59Z")),
            (253_402_300_800, 0, None),
            (0, 1_000_000_000, None),
            (0, -1, None),
        ];
        for (s, n, want) in cases {
            assert_eq!(format_timestamp(s, n).as_deref(), want, "case {s} {n}");
        }
    }
}
