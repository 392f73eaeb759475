//! Categorical encodings genmodel applies to a request row before scoring, and the
//! columns that are in a MOJO's `[columns]` without being inputs.
//!
//! A model trained with `categorical_encoding` `OneHotExplicit`, `Binary`, `Eigen`,
//! `LabelEncoder` or `EnumLimited` was trained on an encoded frame: its `[columns]` are the
//! encoded features (`color.blue`, `color:0`, `color.Eigen`, `color.top_10_levels`, ...).
//! GBM, DRF, isolation forest and uplift DRF MOJOs (`mojo_version` ≥ 1.40) and Deep Learning
//! MOJOs (≥ 1.10) record it (`_genmodel_encoding`, `_orig_names`, `_orig_domain_values_*`,
//! `_orig_projection_array`), and genmodel's `EasyPredictModelWrapper` then takes the
//! ORIGINAL columns and encodes each cell itself (`CategoricalEncoding`'s column mapper and
//! `*Encoder`). This module does the same, decoding everything at load so a row costs one
//! hash lookup per categorical cell:
//!
//! | scheme | features of a categorical column | level `i` | unseen level | missing cell |
//! |---|---|---|---|---|
//! | `OneHotExplicit` | `levels + 1` indicators (numeric columns first, then the categoricals) | 1 in slot `i`, 0 elsewhere | 1 in the last (NA) slot | all NaN |
//! | `Binary` | `1 + floor(log2(levels))` bits (same order) | bits of `i + 1`, least significant first | every bit 0 | all NaN |
//! | `Eigen` | one, in place | `(float) projection[i]` | NaN | NaN |
//! | `LabelEncoder` | one, in place | the level's value if Java's `Integer.parseInt` reads it, else `i` | NaN | NaN |
//! | `EnumLimited` | one, in place, over the model's reduced domain | its index there; levels left out of the top ones map to `other` | NaN | NaN |
//!
//! A missing cell is left out of genmodel's row and so stays NaN, while an unseen level is
//! "encoded as NA" (PredictCsv's `setConvertUnknownCategoricalLevelsToNa(true)`), which
//! for one-hot and binary is a value. `EnumLimited` also looks a level up as
//! `<column>.top_<level>_levels`, as genmodel does. `SortByResponse` needs nothing: its
//! MOJOs carry `AUTO` and their own domains.
//!
//! One deliberate difference: genmodel 3.46's one-hot and binary column mappers place
//! every name of `_orig_names` but the response as a predictor, weights, offset and fold
//! columns included. A model with such a column then has its categoricals shifted and
//! genmodel throws `ArrayIndexOutOfBoundsException` on every row that sets the last one.
//! The encoded frame H2O trained on has the predictors first and those columns after the
//! features, and that is the layout used here: the scores are H2O's own (`h2o.predict`),
//! and genmodel's on a MOJO whose `_orig_names` lists only predictors and response
//! (`testdata/h2o3/generate.py`, model `gbm_onehot_weights_offset`).
//!
//! Other algorithms (XGBoost, k-means, extended isolation forest, ...) write no original
//! columns: genmodel takes their encoded columns as they are, and so does the scorer; the
//! training encoding is still recorded in the metadata.
//!
//! Weights and fold columns (and any other column between the features and the response)
//! are never inputs: genmodel's row converter skips every column past the features, and
//! `PredictCsv` reads only the offset column apart.

use artifact_core::ColumnType;
use serde_json::{json, Map, Value};

use crate::input::{InputColumn, Kind, LevelMap, Slot};
use crate::keys::{unsupported, Keys, LoadResult};
use crate::shap::ContributionKind;

/// `hex.genmodel.CategoricalEncoding` values that encode a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    OneHotExplicit,
    Binary,
    Eigen,
    LabelEncoder,
    EnumLimited,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::OneHotExplicit => "OneHotExplicit",
            Scheme::Binary => "Binary",
            Scheme::Eigen => "Eigen",
            Scheme::LabelEncoder => "LabelEncoder",
            Scheme::EnumLimited => "EnumLimited",
        }
    }

    fn unseen(self) -> &'static str {
        match self {
            Scheme::OneHotExplicit => {
                "the column's NA indicator (its last feature) is 1, the others 0"
            }
            Scheme::Binary => "every bit is 0 (the code of NA)",
            _ => "the feature is missing (NaN)",
        }
    }
}

/// How an encoded level is written.
#[derive(Debug, Clone)]
enum How {
    /// `hot + 1` indicators; `hot` (the number of distinct levels) is the NA slot.
    OneHot { hot: usize },
    /// `bits` bits of the code `index + 1`; NA is code 0.
    Binary { bits: usize },
    /// One feature: `values[index]`; NA is NaN.
    Value(Vec<f64>),
}

/// The encoder of one original categorical column.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    levels: LevelMap,
    how: How,
}

impl Encoder {
    /// Writes the features of a present cell from `raw[at]` on: genmodel's
    /// `encodeCatValue`, or `encodeNA` for a level it does not know.
    pub(crate) fn write(&self, cell: &str, raw: &mut [f64], at: usize) {
        let index = self.levels.get(cell).map(|&i| i as usize);
        match &self.how {
            How::OneHot { hot } => {
                let on = index.unwrap_or(*hot);
                for (k, slot) in raw[at..=at + hot].iter_mut().enumerate() {
                    *slot = if k == on { 1.0 } else { 0.0 };
                }
            }
            How::Binary { bits } => {
                let mut code = index.map_or(0, |i| i as u64 + 1);
                for slot in &mut raw[at..at + bits] {
                    *slot = (code & 1) as f64;
                    code >>= 1;
                }
            }
            How::Value(values) => raw[at] = index.map_or(f64::NAN, |i| values[i]),
        }
    }
}

/// What the encoding adds to a loaded model: the original columns a client sends, and the
/// facts for the manifest.
pub(crate) struct Encoded {
    pub inputs: Vec<InputColumn>,
    pub metadata: Value,
}

/// The algorithms whose genmodel reader reads `_genmodel_encoding`, and from which
/// `mojo_version` on (`SharedTreeMojoReader`, `DeeplearningMojoReader`).
fn reads_encoding(algo: &str) -> Option<f64> {
    match algo {
        "gbm" | "drf" | "isolationforest" | "upliftdrf" => Some(1.40),
        "deeplearning" => Some(1.10),
        _ => None,
    }
}

/// The encoding genmodel applies to the model's rows: `None` for AUTO (the row is the
/// model's `[columns]`).
fn scheme(keys: &Keys, algo: &str) -> LoadResult<Option<Scheme>> {
    let Some(since) = reads_encoding(algo) else {
        return Ok(None);
    };
    if keys.mojo_version()? < since {
        return Ok(None);
    }
    let value = match keys.raw("_genmodel_encoding") {
        None => {
            return keys.invalid(format!(
                "key `_genmodel_encoding` is missing (genmodel reads it from mojo_version {since:.2} on)"
            ))
        }
        Some("null") => {
            return unsupported(
                "`_genmodel_encoding = null`: h2o wrote no encoding genmodel knows (Deep Learning \
                 exports EnumLimited this way) and genmodel cannot load the MOJO",
            )
        }
        Some(v) => v,
    };
    let deep = algo == "deeplearning";
    Ok(match value {
        "AUTO" | "SortByResponse" => None,
        "Enum" if !deep => None,
        "OneHotInternal" if deep => None,
        "OneHotExplicit" if !deep => Some(Scheme::OneHotExplicit),
        "EnumLimited" if !deep => Some(Scheme::EnumLimited),
        "Binary" => Some(Scheme::Binary),
        "Eigen" => Some(Scheme::Eigen),
        "LabelEncoder" => Some(Scheme::LabelEncoder),
        other => {
            return unsupported(format!(
                "categorical encoding {other:?}: genmodel's {algo} reader has no encoder for it \
                 and cannot score the MOJO"
            ))
        }
    })
}

/// A text file of `n` strings, read as genmodel's `readStringArray`: lines split at `\n`,
/// `\r` or `\r\n`, each unescaped (`\n`, `\r`, `\\`; a backslash before anything else
/// is dropped) and then trimmed like Java's `String.trim`.
fn string_array(keys: &Keys, file: &str, n: usize) -> LoadResult<Vec<String>> {
    let Some(bytes) = keys.blob(file) else {
        return keys.invalid(format!(
            "{file} is missing (the model lists {n} entries in it)"
        ));
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return keys.invalid(format!("{file} is not UTF-8"));
    };
    let mut lines: Vec<&str> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        lines.push(&rest[..end]);
        rest = &rest[end..];
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix(['\n', '\r']))
            .unwrap_or(rest);
    }
    if lines.len() != n {
        return keys.invalid(format!(
            "{file} has {} lines, the model expects {n}",
            lines.len()
        ));
    }
    Ok(lines
        .into_iter()
        .map(|l| java_trim(&unescape(l)).to_string())
        .collect())
}

/// `StringEscapeUtils.unescapeNewlines`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut slash = false;
    for c in s.chars() {
        if slash {
            out.push(match c {
                'n' => '\n',
                'r' => '\r',
                other => other,
            });
            slash = false;
        } else if c == '\\' {
            slash = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Java's `String.trim`: strips the characters `<= ' '` at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Java's `Integer.parseInt` for the level strings it can read; `Err` for a level made of
/// digits Java reads but this does not (non-ASCII decimal digits).
fn java_parse_int(s: &str) -> Result<Option<i32>, ()> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() {
        return Ok(None);
    }
    if digits.chars().all(|c| c.is_ascii_digit()) {
        return Ok(s.parse::<i32>().ok());
    }
    if digits.chars().all(char::is_numeric) {
        return Err(());
    }
    Ok(None)
}

/// Bits of a binary-encoded column of `levels` levels: `1 + MathUtils.log2(levels)`
/// (floor; codes run from 0 for NA to `levels`).
fn binary_bits(levels: usize) -> usize {
    1 + (usize::BITS - 1 - levels.max(1).leading_zeros()) as usize
}

/// The original columns of the model, as genmodel reads them.
struct Originals {
    names: Vec<String>,
    domains: Vec<Option<Vec<String>>>,
}

fn originals(keys: &Keys) -> LoadResult<Originals> {
    let names = match keys.usize_or("_n_orig_names", 0)? {
        0 => {
            return keys.invalid(
                "the model has a categorical encoding but no original columns (_n_orig_names)",
            )
        }
        n => string_array(keys, "_orig_names", n)?,
    };
    let n_domains = keys.req_usize("_n_orig_domain_values")?;
    if n_domains < names.len() {
        return keys.invalid(format!(
            "_n_orig_domain_values = {n_domains} is less than the {} original columns",
            names.len()
        ));
    }
    let mut domains = Vec::with_capacity(names.len());
    for i in 0..names.len() {
        let m = keys.req_usize(&format!("_m_orig_domain_values_{i}"))?;
        domains.push(match m {
            0 => None,
            m => Some(string_array(keys, &format!("_orig_domain_values_{i}"), m)?),
        });
    }
    Ok(Originals { names, domains })
}

/// The columns of `[columns]` between the features and the response (weights, offset,
/// fold, ...): scoring reads none of them but the offset.
pub(crate) fn special_columns<'a>(keys: &Keys<'a>, n_features: usize) -> &'a [String] {
    let mojo = keys.mojo;
    let end = mojo.n_inputs();
    &mojo.ini.columns[n_features.min(end)..end]
}

/// The inputs and metadata of a model whose genmodel reader applies a categorical encoding;
/// `None` when it applies none.
pub(crate) fn read(keys: &Keys, algo: &str, n_features: usize) -> LoadResult<Option<Encoded>> {
    let Some(scheme) = scheme(keys, algo)? else {
        return Ok(None);
    };
    let mojo = keys.mojo;
    let orig = originals(keys)?;
    let special = special_columns(keys, n_features);
    // `GenModel.getOrigNumCols`: every original column but a trailing response.
    let response = mojo.response_column();
    let n_orig = match (orig.names.last(), response) {
        (Some(last), Some(r)) if last == r => orig.names.len() - 1,
        _ => orig.names.len(),
    };
    let predictors: Vec<usize> = (0..n_orig)
        .filter(|&i| !special.contains(&orig.names[i]))
        .collect();
    let projection = match scheme {
        Scheme::Eigen => keys.req_f64_array("_orig_projection_array")?,
        _ => Vec::new(),
    };

    // Where each predictor's features start, and how many there are.
    let mut at = vec![0usize; orig.names.len()];
    let mut width = vec![1usize; orig.names.len()];
    match scheme {
        Scheme::OneHotExplicit | Scheme::Binary => {
            // The encoded frame's order: the numeric predictors, then the categorical ones.
            let numeric = predictors.iter().filter(|&&i| orig.domains[i].is_none());
            let categorical = predictors.iter().filter(|&&i| orig.domains[i].is_some());
            let mut pos = 0;
            for &i in numeric.chain(categorical) {
                at[i] = pos;
                width[i] = match &orig.domains[i] {
                    None => 1,
                    Some(d) if scheme == Scheme::OneHotExplicit => d.len() + 1,
                    Some(d) => binary_bits(d.len()),
                };
                pos += width[i];
            }
            if pos != n_features {
                return keys.invalid(format!(
                    "the {} encoding of the original columns makes {pos} features, but \
                     n_features = {n_features}",
                    scheme.name()
                ));
            }
        }
        _ => {
            for &i in &predictors {
                at[i] = i;
            }
            if predictors.iter().any(|&i| i >= n_features) || predictors.len() != n_features {
                return keys.invalid(format!(
                    "{} original predictors for {n_features} features: the {} encoding maps \
                     them one to one",
                    predictors.len(),
                    scheme.name()
                ));
            }
        }
    }

    let mut inputs = Vec::with_capacity(predictors.len() + 1);
    let mut columns = Vec::with_capacity(predictors.len());
    let mut projected = 0usize;
    for i in 0..n_orig {
        let Some(domain) = &orig.domains[i] else {
            continue;
        };
        // Eigen's projections are consumed by every categorical original column but the
        // response, in order (EigenEncoderDomainMapConstructor).
        let start = projected;
        projected += domain.len();
        if !predictors.contains(&i) {
            continue;
        }
        let (encoder, codes) = encoder(keys, scheme, &orig, i, domain, &projection, start)?;
        let name = match scheme {
            // LabelEncoder maps the model's own names (EnumEncoderColumnMapper).
            Scheme::LabelEncoder => mojo.ini.columns[at[i]].clone(),
            _ => orig.names[i].clone(),
        };
        let mut col = json!({
            "name": name,
            "levels": domain,
            "features": mojo.ini.columns[at[i]..at[i] + width[i]],
        });
        if let Some(codes) = codes {
            col["codes"] = json!(codes);
        }
        columns.push((i, col));
        inputs.push((
            i,
            InputColumn {
                name,
                ty: ColumnType::String,
                kind: Kind::Encoded(Box::new(encoder)),
                slot: Slot::Feature(at[i]),
            },
        ));
    }
    // A numeric original column keeps its name through every encoding: its type is the
    // one the model's own schema gives it (`Time64` for a time column, ...).
    let raw_schema = mojo.input_schema();
    let numeric_type = |name: &str| {
        raw_schema
            .iter()
            .find(|c| c.name == name)
            .map_or(ColumnType::Float64, |c| c.ty)
    };
    for &i in &predictors {
        if orig.domains[i].is_none() {
            let name = match scheme {
                Scheme::LabelEncoder => mojo.ini.columns[at[i]].clone(),
                _ => orig.names[i].clone(),
            };
            columns.push((
                i,
                json!({"name": name, "features": [mojo.ini.columns[at[i]]]}),
            ));
            inputs.push((
                i,
                InputColumn {
                    ty: numeric_type(&name),
                    name,
                    kind: Kind::Numeric,
                    slot: Slot::Feature(at[i]),
                },
            ));
        }
    }
    inputs.sort_by_key(|(i, _)| *i);
    columns.sort_by_key(|(i, _)| *i);
    let mut inputs: Vec<InputColumn> = inputs.into_iter().map(|(_, c)| c).collect();
    if let Some(off) = keys
        .raw("offset_column")
        .filter(|v| *v != "null" && !v.is_empty())
    {
        inputs.push(InputColumn {
            name: off.to_string(),
            ty: ColumnType::Float64,
            kind: Kind::Numeric,
            slot: Slot::Offset,
        });
    }
    let mut metadata = json!({
        "scheme": scheme.name(),
        "applied_by": "scorer",
        "columns": columns.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        "unseen_level": scheme.unseen(),
        "missing_cell": "every feature of the column is missing (NaN): genmodel leaves the cell out of the row",
    });
    if !special.is_empty() && matches!(scheme, Scheme::OneHotExplicit | Scheme::Binary) {
        metadata["genmodel_differs"] = json!(format!(
            "genmodel 3.46 counts {special:?} among the predictors of a {} encoding and cannot \
             score the model (ArrayIndexOutOfBoundsException); the features are laid out as H2O \
             trained and scores them",
            scheme.name()
        ));
    }
    Ok(Some(Encoded { inputs, metadata }))
}

/// The encoder of original column `i` (domain `domain`); for one-feature schemes also the
/// value each level is written as.
fn encoder(
    keys: &Keys,
    scheme: Scheme,
    orig: &Originals,
    i: usize,
    domain: &[String],
    projection: &[f64],
    start: usize,
) -> LoadResult<(Encoder, Option<Vec<f64>>)> {
    // HashMap.put in domain order: a repeated level keeps its last index.
    let index = |d: &[String]| -> LevelMap {
        d.iter()
            .enumerate()
            .map(|(j, l)| (l.clone(), j as u32))
            .collect()
    };
    let name = &orig.names[i];
    Ok(match scheme {
        Scheme::OneHotExplicit => {
            let levels = index(domain);
            let hot = levels.len();
            (
                Encoder {
                    levels,
                    how: How::OneHot { hot },
                },
                None,
            )
        }
        Scheme::Binary => {
            let bits = binary_bits(domain.len());
            (
                Encoder {
                    levels: index(domain),
                    how: How::Binary { bits },
                },
                None,
            )
        }
        Scheme::Eigen => {
            let Some(p) = projection.get(start..start + domain.len()) else {
                return keys.invalid(format!(
                    "_orig_projection_array has {} values, too few for the levels of {name:?}",
                    projection.len()
                ));
            };
            let values: Vec<f64> = p.iter().map(|&v| f64::from(v as f32)).collect();
            (
                Encoder {
                    levels: index(domain),
                    how: How::Value(values.clone()),
                },
                Some(values),
            )
        }
        Scheme::LabelEncoder => {
            let levels = index(domain);
            let mut values = vec![f64::NAN; domain.len()];
            for (level, &j) in &levels {
                values[j as usize] = match java_parse_int(level) {
                    Ok(Some(v)) => f64::from(v),
                    Ok(None) => f64::from(j),
                    Err(()) => {
                        return unsupported(format!(
                            "LabelEncoder level {level:?} of {name:?}: Java reads its digits as \
                             a number, which this scorer does not mirror"
                        ))
                    }
                };
            }
            (
                Encoder {
                    levels,
                    how: How::Value(values.clone()),
                },
                Some(values),
            )
        }
        Scheme::EnumLimited => {
            // EnumLimitedEncoder: the model's (reduced) domain, every other original level
            // mapped to "other" when there is one, "other" itself removed.
            let Some(reduced) = keys.mojo.domains.get(i).and_then(|d| d.as_ref()) else {
                return keys.invalid(format!(
                    "EnumLimited column {name:?} has no domain among the model's columns"
                ));
            };
            let mut levels = index(reduced);
            if let Some(&other) = levels.get("other") {
                for level in domain {
                    levels.entry(level.clone()).or_insert(other);
                }
                levels.remove("other");
            }
            // genmodel looks an unknown level up again as `<name>.top_<level>_levels`.
            let prefix = format!("{name}.top_");
            let fallback: Vec<(String, u32)> = levels
                .iter()
                .filter_map(|(k, &v)| {
                    let level = k.strip_prefix(&prefix)?.strip_suffix("_levels")?;
                    Some((level.to_string(), v))
                })
                .collect();
            for (level, v) in fallback {
                levels.entry(level).or_insert(v);
            }
            let n = reduced.len();
            let codes: Vec<f64> = domain
                .iter()
                .map(|l| levels.get(l).map_or(f64::NAN, |&v| f64::from(v)))
                .collect();
            (
                Encoder {
                    levels,
                    how: How::Value((0..n).map(|v| v as f64).collect()),
                },
                Some(codes),
            )
        }
    })
}

/// Contributions of an encoded model are over its encoded features (genmodel's
/// `features()`): "transformed" unless they are the input columns themselves.
pub(crate) fn contribution_kind(
    names: &[String],
    inputs: &[InputColumn],
    kind: ContributionKind,
) -> ContributionKind {
    let features = &names[..names.len().saturating_sub(1)];
    let same = features.len() == inputs.iter().filter(|c| c.slot != Slot::Offset).count()
        && features
            .iter()
            .zip(inputs.iter().filter(|c| c.slot != Slot::Offset))
            .all(|(f, c)| *f == c.name);
    if same {
        kind
    } else {
        ContributionKind::Transformed
    }
}

/// The training encoding of a model whose MOJO leaves the row as it is (XGBoost, k-means,
/// extended isolation forest; SortByResponse everywhere), from `modelDetails.json`.
pub(crate) fn training_only(keys: &Keys) -> Option<Value> {
    let params = keys.mojo.model_parameters()?;
    let scheme = params.get("categorical_encoding")?.as_str()?;
    let (applied_by, note) = match scheme {
        "OneHotExplicit" | "Binary" | "Eigen" | "LabelEncoder" | "EnumLimited" => (
            "client",
            "the MOJO records no original columns: genmodel reads the encoded columns, and so \
             does this scorer",
        ),
        "SortByResponse" => (
            "model",
            "the levels are the model's own domains; nothing to encode",
        ),
        _ => return None,
    };
    let mut v = json!({"scheme": scheme, "applied_by": applied_by, "note": note});
    if applied_by == "client" {
        let original = keys
            .mojo
            .details
            .as_ref()
            .and_then(|d| d.get("output"))
            .and_then(|o| o.get("original_names"))
            .and_then(Value::as_array)
            .map(|names| {
                let response = keys.mojo.response_column();
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|n| Some(*n) != response)
                    .map(|n| json!(n))
                    .collect::<Vec<_>>()
            });
        if let Some(original) = original {
            v["original_columns"] = Value::Array(original);
        }
    }
    Some(v)
}

/// Records the columns that are in `[columns]` but not inputs (weights, fold, ...).
pub(crate) fn note_special(keys: &Keys, n_features: usize, metadata: &mut Map<String, Value>) {
    let offset = keys.raw("offset_column");
    let unused: Vec<&String> = special_columns(keys, n_features)
        .iter()
        .filter(|c| Some(c.as_str()) != offset)
        .collect();
    if !unused.is_empty() {
        metadata.insert("columns_not_inputs".into(), json!(unused));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_reading_rules() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain", "abc", "abc"),
            ("escaped newline", "a\\nb", "a\nb"),
            ("escaped return", "a\\rb", "a\rb"),
            ("escaped backslash", "a\\\\b", "a\\b"),
            ("unknown escape drops the backslash", "a\\tb", "atb"),
            ("trailing backslash dropped", "ab\\", "ab"),
        ];
        for (label, s, want) in cases {
            assert_eq!(unescape(s), *want, "{label}");
        }
        assert_eq!(java_trim("\u{1} a b\t "), "a b");
        assert_eq!(
            java_trim("\u{a0}x"),
            "\u{a0}x",
            "NBSP is not trimmed by Java"
        );
    }

    #[test]
    fn parse_int_like_java() {
        let cases: &[(&str, Result<Option<i32>, ()>)] = &[
            ("13", Ok(Some(13))),
            ("+7", Ok(Some(7))),
            ("-007", Ok(Some(-7))),
            ("2147483647", Ok(Some(i32::MAX))),
            ("2147483648", Ok(None)),
            ("-2147483648", Ok(Some(i32::MIN))),
            ("", Ok(None)),
            ("+", Ok(None)),
            ("1.0", Ok(None)),
            (" 1", Ok(None)),
            ("a1", Ok(None)),
            ("\u{663}", Err(())),
        ];
        for (s, want) in cases {
            assert_eq!(java_parse_int(s), *want, "{s:?}");
        }
    }

    #[test]
    fn encoders_write_like_genmodel() {
        let levels: LevelMap = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, l)| (l.to_string(), i as u32))
            .collect();
        let nan = f64::NAN;
        type Case<'a> = (&'a str, How, &'a str, Vec<f64>);
        let cases: Vec<Case> = vec![
            (
                "one-hot level",
                How::OneHot { hot: 5 },
                "c",
                vec![0., 0., 1., 0., 0., 0.],
            ),
            (
                "one-hot unseen",
                How::OneHot { hot: 5 },
                "z",
                vec![0., 0., 0., 0., 0., 1.],
            ),
            (
                "binary level e (code 5)",
                How::Binary { bits: 3 },
                "e",
                vec![1., 0., 1., nan, nan, nan],
            ),
            (
                "binary level a (code 1)",
                How::Binary { bits: 3 },
                "a",
                vec![1., 0., 0., nan, nan, nan],
            ),
            (
                "binary unseen",
                How::Binary { bits: 3 },
                "z",
                vec![0., 0., 0., nan, nan, nan],
            ),
            (
                "value",
                How::Value(vec![9., 8., 7., 6., 5.]),
                "b",
                vec![8., nan, nan, nan, nan, nan],
            ),
            (
                "value unseen",
                How::Value(vec![9., 8., 7., 6., 5.]),
                "z",
                vec![nan; 6],
            ),
        ];
        for (label, how, cell, want) in cases {
            let e = Encoder {
                levels: levels.clone(),
                how,
            };
            let mut raw = [nan; 7];
            e.write(cell, &mut raw, 1);
            assert!(raw[0].is_nan(), "{label}: wrote before its slot");
            let same = raw[1..]
                .iter()
                .zip(&want)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{label}: {raw:?}");
        }
    }
}
