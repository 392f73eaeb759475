//! Request cells to genmodel's raw row, as `PredictCsv` feeds `EasyPredictModelWrapper`.
//!
//! The cells `""`, `"NA"`, `"N/A"` and `"-"` are missing in every column (PredictCsv
//! leaves them out of the row, so they become NaN). A numeric cell is trimmed and parsed
//! like `Double.parseDouble`; anything else is a [`CellError`]. A categorical cell is
//! looked up in the column's domain, then as `"<column>.<cell>"` (genmodel's
//! `EnumEncoder`); an unknown level becomes NaN, as PredictCsv's
//! `setConvertUnknownCategoricalLevelsToNa(true)` makes it. The offset column's value is
//! returned apart; columns past the model's features that are not the offset (weights,
//! fold) are not inputs at all. An original column of a categorically encoded model
//! ([`crate::encoding`]) fills its encoded features.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use artifact_core::ColumnType;

use crate::encoding::Encoder;
use crate::java::parse_double;
use crate::mojo::Mojo;
use crate::CellError;

/// A level's index in its domain, looked up for every categorical cell of every row.
///
/// Hashed with [`LevelHasher`] rather than the standard library's SipHash, which was 3%
/// of the batch command's instructions on `gbm_onehot_binomial` (cachegrind): the keys
/// are the model's own levels,
/// fixed at load, so a request's cell can only be looked up, never fill the table with
/// colliding keys (what SipHash's random keys protect against).
pub(crate) type LevelMap = HashMap<String, u32, BuildHasherDefault<LevelHasher>>;

/// A multiply-rotate hash of 8 bytes at a time (the Firefox/rustc "Fx" scheme).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LevelHasher(u64);

impl LevelHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for LevelHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The last bytes, little-endian, gathered in a register. (Copied into an
            // 8-byte array and read back as one word, the wide load could not take its
            // bytes from the pending byte stores and waited for them: the multiply
            // after it was a quarter of a one-hot encoder's time under `perf`.)
            let last = rest
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.add(last ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The level index of each domain value, and of the values that carry a `<column>.`
/// prefix under their unprefixed name (looked up second, as genmodel does).
#[derive(Debug, Clone, Default)]
pub(crate) struct Levels {
    exact: LevelMap,
    prefixed: LevelMap,
}

impl Levels {
    pub(crate) fn new(column: &str, domain: &[String]) -> Levels {
        let mut exact = LevelMap::with_capacity_and_hasher(domain.len(), Default::default());
        let mut prefixed = LevelMap::default();
        let prefix = format!("{column}.");
        for (i, level) in domain.iter().enumerate() {
            exact.insert(level.clone(), i as u32);
            if let Some(rest) = level.strip_prefix(&prefix) {
                prefixed.insert(rest.to_string(), i as u32);
            }
        }
        Levels { exact, prefixed }
    }

    /// Exact lookup only (no `<column>.` fallback), for a Word2Vec vocabulary.
    pub(crate) fn exact(domain: &[String]) -> Levels {
        Levels {
            exact: domain
                .iter()
                .enumerate()
                .map(|(i, w)| (w.clone(), i as u32))
                .collect(),
            prefixed: LevelMap::default(),
        }
    }

    pub(crate) fn index(&self, cell: &str) -> Option<u32> {
        self.exact
            .get(cell)
            .or_else(|| self.prefixed.get(cell))
            .copied()
    }
}

/// How one input cell is read.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Numeric,
    Categorical(Levels),
    /// An original categorical column genmodel encodes into the model's features from
    /// the slot on (a categorical encoding, see [`crate::encoding`]). A missing cell
    /// leaves them NaN.
    Encoded(Box<Encoder>),
}

/// Where an input cell goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Raw row position.
    Feature(usize),
    /// The model's offset column.
    Offset,
}

/// One column a client sends: its name and schema type, how its cell is read and where
/// it goes.
#[derive(Debug, Clone)]
pub(crate) struct InputColumn {
    pub name: String,
    pub ty: ColumnType,
    pub kind: Kind,
    pub slot: Slot,
}

/// The first `n` columns of a model's `[columns]` as the inputs a client sends: what
/// genmodel's row API reads (it fills the raw row below `n_features`, so a treatment,
/// response or other column past the features is never read).
pub(crate) fn features(mojo: &Mojo, n: usize) -> Vec<InputColumn> {
    mojo.input_schema()
        .into_iter()
        .take(n)
        .enumerate()
        .map(|(i, col)| InputColumn {
            kind: match &mojo.domains[i] {
                Some(d) => Kind::Categorical(Levels::new(&col.name, d)),
                None => Kind::Numeric,
            },
            slot: Slot::Feature(i),
            name: col.name,
            ty: col.ty,
        })
        .collect()
}

/// Whether PredictCsv treats a cell as missing.
pub(crate) fn is_missing(cell: Option<&str>) -> bool {
    // Byte patterns: string patterns compare through `memcmp` (a call per cell of the
    // same length, e.g. every 3-byte number against "N/A").
    matches!(
        cell.map(str::as_bytes),
        None | Some([] | [b'N', b'A'] | [b'N', b'/', b'A'] | [b'-'])
    )
}

/// Parses a numeric cell; missing cells are NaN.
pub(crate) fn numeric(column: &str, cell: Option<&str>) -> Result<f64, CellError> {
    match cell {
        c if is_missing(c) => Ok(f64::NAN),
        Some(s) => parse_double(s).ok_or_else(|| CellError {
            column: column.to_string(),
            value: s.to_string(),
        }),
        None => Ok(f64::NAN),
    }
}

/// Fills `raw` (already NaN) from the request cells and returns the offset (0 without
/// an offset column). Cells beyond `row` are missing; extra cells are ignored.
pub(crate) fn encode(
    columns: &[InputColumn],
    row: &[Option<&str>],
    raw: &mut [f64],
) -> Result<f64, CellError> {
    let mut offset = 0.0;
    for (i, col) in columns.iter().enumerate() {
        let cell = row.get(i).copied().flatten();
        match col.slot {
            Slot::Offset => offset = numeric(&col.name, cell)?,
            Slot::Feature(at) => {
                raw[at] = match &col.kind {
                    Kind::Numeric => numeric(&col.name, cell)?,
                    Kind::Categorical(levels) => match cell {
                        c if is_missing(c) => f64::NAN,
                        Some(s) => levels.index(s).map_or(f64::NAN, f64::from),
                        None => f64::NAN,
                    },
                    Kind::Encoded(encoder) => {
                        if let Some(s) = cell.filter(|&s| !is_missing(Some(s))) {
                            encoder.write(s, raw, at);
                        }
                        continue;
                    }
                };
            }
        }
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail of a key is the little-endian word of its bytes padded with zeros, as
    /// the array copy made it: every length up to three words, low and high bytes.
    #[test]
    fn level_hashes_read_the_tail_as_a_padded_word() {
        let reference = |bytes: &[u8]| {
            let mut h = LevelHasher::default();
            let mut chunks = bytes.chunks_exact(8);
            for c in &mut chunks {
                h.add(u64::from_le_bytes(c.try_into().unwrap()));
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut last = [0u8; 8];
                last[..rest.len()].copy_from_slice(rest);
                h.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
            }
            h.finish()
        };
        for len in 0..=24 {
            for fill in [0u8, 1, 0x7f, 0x80, 0xff] {
                let bytes: Vec<u8> = (0..len)
                    .map(|i| fill.wrapping_add((i as u8).wrapping_mul(37)))
                    .collect();
                let mut h = LevelHasher::default();
                h.write(&bytes);
                assert_eq!(h.finish(), reference(&bytes), "length {len}, fill {fill}");
            }
        }
    }

    #[test]
    fn missing_cells_are_exactly_predictcsvs() {
        let missing = [None, Some(""), Some("NA"), Some("N/A"), Some("-")];
        let present = [
            "na", "N", "N/", "NA ", " NA", "N/AB", "--", "-1", "0", "NaN", "N\\A", "A/N",
        ];
        for cell in missing {
            assert!(is_missing(cell), "{cell:?}");
        }
        for cell in present {
            assert!(!is_missing(Some(cell)), "{cell:?}");
        }
    }

    fn columns() -> Vec<InputColumn> {
        let domain: Vec<String> = ["blue", "red", "color.green"].map(String::from).to_vec();
        vec![
            InputColumn {
                name: "x".into(),
                ty: ColumnType::Float64,
                kind: Kind::Numeric,
                slot: Slot::Feature(0),
            },
            InputColumn {
                name: "color".into(),
                ty: ColumnType::String,
                kind: Kind::Categorical(Levels::new("color", &domain)),
                slot: Slot::Feature(1),
            },
            InputColumn {
                name: "off".into(),
                ty: ColumnType::Float64,
                kind: Kind::Numeric,
                slot: Slot::Offset,
            },
        ]
    }

    #[test]
    fn cells_to_raw_row() {
        type Case<'a> = (&'a str, Vec<Option<&'a str>>, [f64; 2], f64);
        let cases: Vec<Case> = vec![
            (
                "plain",
                vec![Some("1.5"), Some("red"), Some("2"), Some("junk")],
                [1.5, 1.0],
                2.0,
            ),
            (
                "prefixed level",
                vec![Some(" 3 "), Some("green"), None, None],
                [3.0, 2.0],
                f64::NAN,
            ),
            (
                "exact prefixed level",
                vec![Some("NaN"), Some("color.green")],
                [f64::NAN, 2.0],
                f64::NAN,
            ),
            (
                "unknown level",
                vec![Some("NA"), Some("purple")],
                [f64::NAN, f64::NAN],
                f64::NAN,
            ),
            (
                "missing tokens",
                vec![Some("-"), Some("N/A"), Some("")],
                [f64::NAN, f64::NAN],
                f64::NAN,
            ),
            ("short row", vec![], [f64::NAN, f64::NAN], f64::NAN),
        ];
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        for (name, row, want, want_off) in cases {
            let mut raw = [f64::NAN; 2];
            let off = encode(&columns(), &row, &mut raw).unwrap();
            assert!(
                same(raw[0], want[0]) && same(raw[1], want[1]),
                "{name}: {raw:?}"
            );
            assert!(same(off, want_off), "{name}: offset {off}");
        }
    }

    #[test]
    fn bad_numbers_name_the_column() {
        let cases = [
            (vec![Some("abc"), None], "x", "abc"),
            (vec![None, None, Some("1,5")], "off", "1,5"),
        ];
        for (row, column, value) in cases {
            let mut raw = [f64::NAN; 2];
            let e = encode(&columns(), &row, &mut raw).unwrap_err();
            assert_eq!((e.column.as_str(), e.value.as_str()), (column, value));
        }
    }
}
