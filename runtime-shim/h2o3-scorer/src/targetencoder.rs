//! Target Encoder (`TargetEncoderMojoModel`, category `TargetEncoder`): the encoded
//! columns of a row, as genmodel's `EasyPredictModelWrapper.predictTargetEncoding` gives
//! them. This is what `/model/score` returns for such a model: one `Float64` column per
//! encoded value (the original columns are not echoed back, whatever
//! `keep_original_categorical_columns` says; a client keeps its own row).
//!
//! The MOJO's `feature_engineering/target_encoding/` holds
//! - `encoding_map.ini`: per encoded column (`[name]`), one line per level index,
//!   `level = numerator denominator` (and `target_class` for a multinomial response);
//!   the last level index is the NA level;
//! - `input_encoding_columns_map.ini`: which input columns each encoding reads (several
//!   for an interaction, with the interaction's `[to_domain]` codes), in output order;
//! - `input_output_columns_map.ini`: the output names of each encoding (`color_te`, or
//!   one per class but the first, `color_versicolor_te`, for a multinomial response);
//! - `te_column_name_to_missing_values_presence.ini`: whether training saw NAs in the
//!   column (then a missing or unseen level gets the NA level's encoding, otherwise the
//!   prior).
//!
//! A level's value is its posterior mean `numerator / denominator`, blended with the
//! prior mean (`with_blending`, `inflection_point`, `smoothing` as the MOJO stores them)
//! by `λ = 1 / (1 + exp((inflection_point - n) / smoothing))`. The training-time `noise`
//! is not in the MOJO and is never applied. The prior is summed over the levels in the
//! order genmodel's `HashMap` iterates them, so that it is the same double.
//!
//! MOJOs written by h2o 3.26–3.32 have no column-mapping files; genmodel then encodes
//! every column of the encoding map, in its `HashMap`'s key order, named `<col>_te`
//! (`<col>_<k>_te` per class), and so does this module.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::java::{binary_search_i64, java_lines, parse_double};
use crate::keys::{unsupported, Keys, LoadError, LoadResult};
use crate::model::{Common, Model};

const DIR: &str = "feature_engineering/target_encoding/";
const ENCODING_MAP: &str = "encoding_map.ini";
const HAS_NAS: &str = "te_column_name_to_missing_values_presence.ini";
const INPUT_ENCODING: &str = "input_encoding_columns_map.ini";
const INPUT_OUTPUT: &str = "input_output_columns_map.ini";

/// Genmodel's `NO_TARGET_CLASS`: the key of a binomial or regression encoding.
const NO_TARGET_CLASS: i32 = -1;

/// `String.trim()`: Java trims every char up to the space.
fn jtrim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Whitespace of the regex `\s`.
fn regex_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// `line.split("\\s*=\\s*", 2)`: the key and value of a `key = value` line, `None` without
/// an `=`.
fn split_kv(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once('=')?;
    Some((
        k.trim_end_matches(regex_space),
        v.trim_start_matches(regex_space),
    ))
}

/// `Integer.parseInt` (ASCII digits, optional sign).
fn parse_int(s: &str) -> Option<i32> {
    s.parse().ok()
}

/// `String.hashCode`: over the UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The iteration order of a `java.util.HashMap` (default capacity) after putting keys
/// with these `hashCode`s in this order: indices into `hashes`, a repeated key (same
/// `same` class) kept at its first put. `None` when a bucket would hold nine keys, where
/// Java turns it into a tree bin (not emulated).
fn java_hashmap_order<K: PartialEq>(keys: &[K], hash: impl Fn(&K) -> i32) -> Option<Vec<usize>> {
    let spread = |h: i32| h ^ ((h as u32) >> 16) as i32;
    let mut distinct: Vec<usize> = Vec::new();
    let mut cap: usize = 16;
    for (i, k) in keys.iter().enumerate() {
        if distinct.iter().any(|&d| keys[d] == *k) {
            continue;
        }
        let bucket = spread(hash(k)) as u32 as usize & (cap - 1);
        let in_bucket = distinct
            .iter()
            .filter(|&&d| spread(hash(&keys[d])) as u32 as usize & (cap - 1) == bucket)
            .count();
        if in_bucket >= 8 {
            return None;
        }
        distinct.push(i);
        if distinct.len() > cap * 3 / 4 {
            cap *= 2;
        }
    }
    let mut order = distinct;
    order.sort_by_key(|&d| spread(hash(&keys[d])) as u32 as usize & (cap - 1));
    Some(order)
}

/// The `level = values` lines of one `encoding_map.ini` section, parsed.
type LevelLines = Vec<(i32, Vec<f64>)>;

/// One column's `EncodingMap`.
#[derive(Debug)]
struct Encodings {
    /// `(numerator, denominator)` by `(level, target class)`.
    num_den: HashMap<(i32, i32), [f64; 2]>,
    /// Distinct levels: the NA level is the last, `levels - 1`.
    levels: usize,
    /// Prior mean by target class; `None` where genmodel throws computing it (a level
    /// without that class).
    priors: HashMap<i32, Option<f64>>,
}

impl Encodings {
    /// Parses a section's `level = components` lines (`EncodingMap.add`).
    fn parse(
        lines: &LevelLines,
        n_classes: usize,
        invalid: &dyn Fn(String) -> LoadError,
    ) -> LoadResult<Encodings> {
        let mut num_den = HashMap::new();
        let mut level_keys: Vec<i32> = Vec::with_capacity(lines.len());
        for (level, components) in lines {
            level_keys.push(*level);
            if n_classes <= 2 {
                let [num, den, ..] = components[..] else {
                    return Err(invalid(format!(
                        "level {level} has {} values, not a numerator and a denominator",
                        components.len()
                    )));
                };
                num_den.insert((*level, NO_TARGET_CLASS), [num, den]);
            } else {
                // (int) of the last component; Arrays.copyOf(components, 2) pads with 0.
                let class = components[components.len() - 1] as i32;
                let den = components.get(1).copied().unwrap_or(0.0);
                num_den.insert((*level, class), [components[0], den]);
            }
        }
        let order = java_hashmap_order(&level_keys, |&l| l).ok_or_else(|| {
            invalid(
                "has more level indices in one hash bucket than genmodel keeps in a list".into(),
            )
        })?;
        let levels = order.len();
        let classes: Vec<i32> = if n_classes > 2 {
            (1..n_classes as i32).collect()
        } else {
            vec![NO_TARGET_CLASS]
        };
        let priors = classes
            .into_iter()
            .map(|class| {
                // EncodingMap.doComputePriorMean, over the HashMap's values in its order.
                let mut num = 0.0;
                let mut den = 0.0;
                for &i in &order {
                    match num_den.get(&(level_keys[i], class)) {
                        Some([n, d]) => {
                            num += n;
                            den += d;
                        }
                        None => return (class, None),
                    }
                }
                (class, Some(num / den))
            })
            .collect();
        Ok(Encodings {
            num_den,
            levels,
            priors,
        })
    }
}

/// Where one encoding reads its level.
#[derive(Debug)]
enum Source {
    /// One categorical column (raw row index).
    Column(usize),
    /// An interaction: the columns with their domain sizes, and the sorted interaction
    /// codes (`[to_domain]`) whose position is the encoded level.
    Interaction {
        columns: Vec<(usize, i64)>,
        codes: Vec<i64>,
    },
}

#[derive(Debug)]
struct Encoder {
    source: Source,
    /// Index into [`TargetEncoder::maps`].
    map: usize,
    /// `te_column_name_to_missing_values_presence`; `None` where genmodel has no entry
    /// (and throws on a missing level).
    has_nas: Option<bool>,
}

#[derive(Debug)]
pub(crate) struct TargetEncoder {
    n_classes: usize,
    blending: Option<(f64, f64)>,
    maps: Vec<Encodings>,
    encoders: Vec<Encoder>,
    outputs: Vec<String>,
    metadata: Map<String, Value>,
}

/// A `[from]`/`[to]`/`[to_domain]` mapping file as `parseColumnsMapping` reads it.
type Mapping = (Vec<String>, Vec<String>, Option<Vec<String>>);

fn parse_mapping(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    let mut from: Option<Vec<String>> = None;
    let mut to: Option<Vec<String>> = None;
    let mut domain: Option<Vec<String>> = None;
    for line in java_lines(text).into_iter().map(jtrim) {
        match line {
            "[from]" => {
                if let (Some(f), Some(t)) = (from.take(), to.take()) {
                    out.push((f, t, domain.take()));
                }
                from = Some(Vec::new());
                domain = None;
            }
            "[to]" => to = Some(Vec::new()),
            "[to_domain]" => domain = Some(Vec::new()),
            other => {
                let target = if let Some(d) = domain.as_mut() {
                    d
                } else if let Some(t) = to.as_mut() {
                    t
                } else if let Some(f) = from.as_mut() {
                    f
                } else {
                    continue; // genmodel would throw on the null list; nothing to map
                };
                target.push(other.to_string());
            }
        }
    }
    if let (Some(f), Some(t)) = (from, to) {
        out.push((f, t, domain));
    }
    out
}

impl TargetEncoder {
    pub(crate) fn read(keys: &Keys) -> LoadResult<TargetEncoder> {
        let common = Common::read(keys)?;
        let mojo = keys.mojo;
        let file = |n: &str| format!("{}{DIR}{n}", mojo.prefix);
        let text = |n: &str| -> LoadResult<Option<&str>> {
            match keys.blob(&format!("{DIR}{n}")) {
                None => Ok(None),
                Some(b) => std::str::from_utf8(b)
                    .map(Some)
                    .map_err(|_| LoadError::Invalid {
                        file: file(n),
                        detail: "is not UTF-8 text".into(),
                    }),
            }
        };
        let n_classes = common.n_classes;
        let blending = match keys.raw("with_blending") {
            Some("true") => Some((
                keys.req_f64("inflection_point")?,
                keys.req_f64("smoothing")?,
            )),
            Some("false") => None,
            None => return keys.invalid("key `with_blending` is missing"),
            Some(v) => {
                return keys.invalid(format!("`with_blending` = {v:?} is not true or false"))
            }
        };

        // encoding_map.ini (parseEncodingMap)
        let map_invalid = |detail: String| LoadError::Invalid {
            file: file(ENCODING_MAP),
            detail,
        };
        let Some(map_text) = text(ENCODING_MAP)? else {
            return Err(map_invalid(
                "is missing (genmodel refuses to encode without it)".into(),
            ));
        };
        let mut sections: Vec<(String, LevelLines)> = Vec::new();
        for (n, line) in java_lines(map_text).into_iter().map(jtrim).enumerate() {
            // `\[(.*?)\]` found anywhere in the line starts a section.
            let section = line
                .find('[')
                .and_then(|a| line[a + 1..].find(']').map(|b| &line[a + 1..a + 1 + b]));
            if let Some(name) = section {
                sections.push((name.to_string(), Vec::new()));
                continue;
            }
            let Some((_, lines)) = sections.last_mut() else {
                continue; // before the first section: genmodel drops it
            };
            let bad = || map_invalid(format!("line {}: {line:?} is not `level = values`", n + 1));
            let (k, v) = split_kv(line).ok_or_else(bad)?;
            let level = parse_int(k).ok_or_else(bad)?;
            let values = v
                .split(' ')
                .map(parse_double)
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(bad)?;
            lines.push((level, values));
        }
        if sections.is_empty() {
            return Err(map_invalid("has no [column] section".into()));
        }
        // The HashMap<String, EncodingMap>: a repeated section replaces the earlier one.
        let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
        let mut maps = Vec::new();
        let mut map_names: Vec<String> = Vec::new();
        for (i, (name, lines)) in sections.iter().enumerate() {
            if names[i + 1..].contains(&name.as_str()) {
                continue;
            }
            let invalid = |d: String| map_invalid(format!("[{name}]: {d}"));
            maps.push(Encodings::parse(lines, n_classes, &invalid)?);
            map_names.push(name.clone());
        }

        // te_column_name_to_missing_values_presence.ini
        let mut has_nas: HashMap<String, bool> = HashMap::new();
        if let Some(t) = text(HAS_NAS)? {
            for (n, line) in java_lines(t).into_iter().map(jtrim).enumerate() {
                let flag = split_kv(line).and_then(|(k, v)| Some((k, parse_int(v)?)));
                let Some((k, v)) = flag else {
                    return Err(LoadError::Invalid {
                        file: file(HAS_NAS),
                        detail: format!("line {}: {line:?} is not `column = 0|1`", n + 1),
                    });
                };
                has_nas.insert(k.to_string(), v == 1);
            }
        }

        let per_class = if n_classes > 1 { n_classes - 1 } else { 1 };
        let inenc = text(INPUT_ENCODING)?.map(parse_mapping).unwrap_or_default();
        let inout = text(INPUT_OUTPUT)?.map(parse_mapping).unwrap_or_default();
        let legacy = inenc.is_empty() && inout.is_empty();
        let (inenc, inout): (Vec<Mapping>, Vec<Mapping>) = if legacy {
            // TargetEncoderMojoModel.init: every encoded column, in the HashMap's order.
            let order =
                java_hashmap_order(&map_names, |n| java_string_hash(n)).ok_or_else(|| {
                    map_invalid(
                        "has more columns in one hash bucket than genmodel keeps in a list".into(),
                    )
                })?;
            order
                .into_iter()
                .map(|i| {
                    let col = map_names[i].clone();
                    let out = if per_class > 1 {
                        (1..=per_class).map(|k| format!("{col}_{k}_te")).collect()
                    } else {
                        vec![format!("{col}_te")]
                    };
                    (
                        (vec![col.clone()], vec![col.clone()], None),
                        (vec![col], out, None),
                    )
                })
                .unzip()
        } else {
            (inenc, inout)
        };

        // Output names: the `to` names of input_output_columns_map, which must line up
        // with the values score0 writes (one block per input_encoding mapping).
        let mapping_invalid = |detail: String| LoadError::Invalid {
            file: file(INPUT_OUTPUT),
            detail,
        };
        if inout.len() != inenc.len() || inenc.len() != maps.len() {
            return Err(mapping_invalid(format!(
                "names {} encodings and {INPUT_ENCODING} {}, for {} encoded columns in {ENCODING_MAP}",
                inout.len(),
                inenc.len(),
                maps.len()
            )));
        }
        let mut outputs = Vec::new();
        for ((from_e, _, _), (from_o, to, _)) in inenc.iter().zip(&inout) {
            if from_e != from_o || to.len() != per_class {
                return Err(mapping_invalid(format!(
                    "maps {from_o:?} to {to:?}, but {INPUT_ENCODING} encodes {from_e:?} into {per_class} value(s)"
                )));
            }
            outputs.extend(to.iter().cloned());
        }

        // Column indices (name2Idx over every column: a repeated name is its last place).
        let columns = &mojo.ini.columns;
        let column_index = |name: &str| -> LoadResult<usize> {
            match columns.iter().rposition(|c| c == name) {
                Some(i) if i < common.n_features => Ok(i),
                Some(i) => Err(LoadError::Invalid {
                    file: file(INPUT_ENCODING),
                    detail: format!(
                        "encodes column {name:?}, which is column {i}, past the {} features",
                        common.n_features
                    ),
                }),
                None => Err(LoadError::Invalid {
                    file: file(INPUT_ENCODING),
                    detail: format!(
                        "encodes column {name:?}, which is not one of the model's columns"
                    ),
                }),
            }
        };
        let mut encoders = Vec::with_capacity(inenc.len());
        let mut described = Vec::with_capacity(inenc.len());
        for ((from, to, domain), (_, out, _)) in inenc.iter().zip(&inout) {
            let Some(te_column) = to.first() else {
                return Err(LoadError::Invalid {
                    file: file(INPUT_ENCODING),
                    detail: format!("the mapping of {from:?} has no [to] column"),
                });
            };
            let Some(map) = map_names.iter().position(|n| n == te_column) else {
                return Err(map_invalid(format!("has no [{te_column}] section")));
            };
            let source = match from.as_slice() {
                [one] => Source::Column(column_index(one)?),
                many => {
                    let mut cols = Vec::with_capacity(many.len());
                    for name in many {
                        let i = column_index(name)?;
                        let Some(d) = &mojo.domains[i] else {
                            return Err(LoadError::Invalid {
                                file: file(INPUT_ENCODING),
                                detail: format!(
                                    "interaction {te_column:?} reads {name:?}, which has no domain"
                                ),
                            });
                        };
                        cols.push((i, d.len() as i64));
                    }
                    // ColumnsToSingleMapping: the codes as longs, or none at all.
                    let codes = domain
                        .as_ref()
                        .and_then(|d| d.iter().map(|s| s.parse::<i64>().ok()).collect());
                    let Some(codes) = codes else {
                        return Err(LoadError::Invalid {
                            file: file(INPUT_ENCODING),
                            detail: format!(
                                "interaction {te_column:?} has no numeric [to_domain] (genmodel needs one)"
                            ),
                        });
                    };
                    Source::Interaction {
                        columns: cols,
                        codes,
                    }
                }
            };
            described.push(json!({"from": from, "to": out, "encoding": te_column}));
            encoders.push(Encoder {
                source,
                map,
                has_nas: has_nas.get(te_column).copied(),
            });
        }
        if encoders.is_empty() {
            return unsupported("a Target Encoder that encodes no column");
        }

        let mut metadata = Map::new();
        metadata.insert(
            "target_encoding".into(),
            json!({
                "outputs": "the encoded columns only (the MOJO's transform; the original columns are not repeated)",
                "blending": blending.is_some(),
                "inflection_point": blending.map(|b| b.0),
                "smoothing": blending.map(|b| b.1),
                "noise": "none (applied by the H2O cluster to training frames only; the MOJO has no noise)",
                "keep_original_categorical_columns": keys.raw("keep_original_categorical_columns"),
                "column_mappings": if legacy { "none in the MOJO: every column of the encoding map, in genmodel's order" } else { "from the MOJO" },
                "encodings": described,
                "unseen_and_missing_levels": "the NA level's encoding where training saw NAs in the column, else the prior mean",
            }),
        );
        Ok(TargetEncoder {
            n_classes,
            blending,
            maps,
            encoders,
            outputs,
            metadata,
        })
    }

    /// The output names, in the order [`Model::score0`] writes the values.
    pub(crate) fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// The encoding's facts for the manifest.
    pub(crate) fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// `computeEncodedValue`.
    fn value(&self, [num, den]: [f64; 2], prior: f64) -> f64 {
        let posterior = num / den;
        match self.blending {
            Some((inflection, smoothing)) => {
                let n = den as i64;
                let lambda = 1.0 / (1.0 + ((inflection - n as f64) / smoothing).exp());
                lambda * posterior + (1.0 - lambda) * prior
            }
            None => posterior,
        }
    }

    /// `encodeCategory` into `out`; `None` where genmodel throws (a level the map lacks).
    fn encode_level(&self, e: &Encodings, level: i32, out: &mut [f64]) -> Option<()> {
        if self.n_classes > 2 {
            for (i, o) in out.iter_mut().enumerate() {
                let class = i as i32 + 1;
                let nd = e.num_den.get(&(level, class))?;
                *o = self.value(*nd, e.priors.get(&class).copied().flatten()?);
            }
        } else {
            let nd = e.num_den.get(&(level, NO_TARGET_CLASS))?;
            out[0] = self.value(*nd, e.priors.get(&NO_TARGET_CLASS).copied().flatten()?);
        }
        Some(())
    }

    /// `encodeNA`.
    fn encode_missing(&self, enc: &Encoder, e: &Encodings, out: &mut [f64]) -> Option<()> {
        if enc.has_nas? {
            return self.encode_level(e, e.levels as i32 - 1, out);
        }
        if self.n_classes > 2 {
            for (i, o) in out.iter_mut().enumerate() {
                *o = e.priors.get(&(i as i32 + 1)).copied().flatten()?;
            }
        } else {
            out[0] = e.priors.get(&NO_TARGET_CLASS).copied().flatten()?;
        }
        Some(())
    }

    fn encode(&self, row: &[f64], preds: &mut [f64]) -> Option<()> {
        let per = if self.n_classes > 1 {
            self.n_classes - 1
        } else {
            1
        };
        for (k, enc) in self.encoders.iter().enumerate() {
            let level = match &enc.source {
                Source::Column(i) => row[*i],
                Source::Interaction { columns, codes } => {
                    // interactionValue
                    let mut interaction: i64 = 0;
                    let mut multiplier: i64 = 1;
                    for &(i, card) in columns {
                        let mut v = row[i];
                        if v.is_nan() || v >= card as f64 {
                            v = card as f64;
                        }
                        interaction = (interaction as f64 + multiplier as f64 * v) as i64;
                        multiplier = multiplier.wrapping_mul(card + 1);
                    }
                    match binary_search_i64(codes, interaction) {
                        p if p < 0 => f64::NAN,
                        p => p as f64,
                    }
                }
            };
            let e = &self.maps[enc.map];
            let out = &mut preds[k * per..(k + 1) * per];
            if level.is_nan() {
                self.encode_missing(enc, e, out)?;
            } else {
                self.encode_level(e, level as i32, out)?;
            }
        }
        Some(())
    }
}

impl Model for TargetEncoder {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        self.encode(row, preds).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashmap_order_follows_java() {
        // new HashMap<Integer, ?>() iterates small non-negative keys in ascending order,
        // whatever the insertion order; 17 and 1 share a bucket of 16 (insertion order).
        assert_eq!(
            java_hashmap_order(&[3, 0, 2, 1], |&k| k),
            Some(vec![1, 3, 2, 0])
        );
        assert_eq!(java_hashmap_order(&[17, 1, 2], |&k| k), Some(vec![0, 1, 2]));
        // 13 keys: the table grows to 32, and 17 then sorts after 16.
        let keys: Vec<i32> = (0..13).map(|k| if k == 1 { 17 } else { k }).collect();
        let order = java_hashmap_order(&keys, |&k| k).unwrap();
        let sorted: Vec<i32> = order.iter().map(|&i| keys[i]).collect();
        assert_eq!(sorted.last(), Some(&17));
        // String keys: "b" (98) and "a" (97) iterate by bucket; "color" (94842723) and
        // "size" (3530753) share bucket 4, so they keep their insertion order.
        assert_eq!(java_string_hash("color"), 94842723);
        assert_eq!(java_string_hash("size"), 3530753);
        let names = ["b", "a", "size", "color"].map(String::from);
        assert_eq!(
            java_hashmap_order(&names, |n| java_string_hash(n)),
            Some(vec![1, 0, 2, 3])
        );
        // Nine keys in one bucket would be a tree bin.
        let same: Vec<i32> = (0..9).map(|k| k * 1024).collect();
        assert_eq!(java_hashmap_order(&same, |&k| k), None);
    }

    #[test]
    fn mapping_files_parse_like_genmodel() {
        let text = "[from]\ncolor\n[to]\ncolor\n[from]\ncolor\nsize\n[to]\ncolor:size\n[to_domain]\n0\n7\n";
        let m = parse_mapping(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], (vec!["color".into()], vec!["color".into()], None));
        assert_eq!(
            m[1],
            (
                vec!["color".into(), "size".into()],
                vec!["color:size".into()],
                Some(vec!["0".into(), "7".into()])
            )
        );
        assert_eq!(split_kv("a b = 1 2"), Some(("a b", "1 2")));
        assert_eq!(split_kv("no equals"), None);
        assert_eq!(parse_int("+3"), Some(3));
        assert_eq!(parse_int("3.0"), None);
    }
}
