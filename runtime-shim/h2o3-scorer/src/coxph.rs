//! Cox proportional hazards models (`CoxPHMojoModel`): the linear predictor `lp`.
//!
//! The raw row is the MOJO's `[columns]`: the stratum columns (`stratify_by`), the
//! categorical and numeric features (interaction columns among them), then columns the
//! scorer never reads (`__strata`, the start and stop columns). A client sends the stratum
//! columns, the features other than interaction columns, and the offset column; genmodel
//! computes the interaction columns from their two source columns (`evaluateInteractions`:
//! the product of two numbers, the index of the combined level `a_b` of two factors, or a
//! number gated by a level with one coefficient per level).
//!
//! `lp = Σ categorical coefficients + Σ numeric coefficient × value − lpBase(stratum) +
//! offset`, where `lpBase = coef · x̄` with the stratum's training means (`x_mean_cat`,
//! `x_mean_num`): genmodel centres the predictor per stratum. There is no imputation: a
//! missing number, or a missing level under the dropped-first-level coding, makes `lp` NaN
//! (PredictCsv's `NA`). Where genmodel throws (a missing level with
//! `use_all_factor_levels`, a stratum combination not seen in training, whose lookup gives
//! `null`), the row has no prediction (NaN). A stratum cell counts as `(int)` of its level
//! index, so a missing or unknown level is level 0, as in genmodel.
//!
//! The same arithmetic in the same order as genmodel, so `lp` is bit for bit genmodel's.
//! Per-row state (genmodel's `enumOffset` array) lives in the row's tail
//! ([`Built::n_features`] is the model's features plus the numeric columns).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use artifact_core::ColumnType;

use crate::blob::Numbers;
use crate::glm::check_cat_offsets;
use crate::input::{InputColumn, Kind, Levels, Slot};
use crate::keys::{unsupported, Keys, LoadResult};
use crate::model::{Common, Model};
use crate::{Built, Render};

/// How an interaction column is computed (`CoxPHMojoModel.InteractionTypes`).
#[derive(Debug)]
enum PairKind {
    /// Two factors: the index of `"<level1>_<level2>"` in the target's domain (the first,
    /// as `List.indexOf`), by level pair; absent pairs are -1.
    EnumEnum {
        levels1: usize,
        levels2: usize,
        combined: HashMap<(u32, u32), f64>,
    },
    /// Two numbers: their product.
    NumNum,
    /// A factor and a number: the number where the level has a coefficient, else 0.
    EnumNum { factor: usize, number: usize },
}

#[derive(Debug)]
struct Pair {
    first: usize,
    second: usize,
    target: usize,
    kind: PairKind,
}

#[derive(Debug)]
pub(crate) struct CoxPh {
    n_features: usize,
    coef: Vec<f64>,
    strata_len: usize,
    /// Stratum key (`(int)` of each value) to its index into `lp_base`.
    strata: HashMap<Vec<i32>, usize>,
    lp_base: Vec<f64>,
    cats: usize,
    cat_offsets: Vec<i64>,
    use_all_levels: bool,
    /// `num_numerical_columns`; `None` in MOJOs written before it (genmodel's `_nums == -1`:
    /// every coefficient after the categorical ones belongs to the next column).
    nums: Option<usize>,
    num_offsets: Vec<i64>,
    /// `Some` when the MOJO has `interaction_targets`.
    pairs: Option<Vec<Pair>>,
    /// The row index of the offset column when it is also one of the features lp reads
    /// (h2o counts it among the numeric columns, past the last coefficient): genmodel
    /// reads the one cell as both.
    offset_feature: Option<usize>,
}

/// Keys longer than this are built on the heap (never seen: it is the number of
/// `stratify_by` columns).
const STACK_STRATA: usize = 16;

impl CoxPh {
    pub(crate) fn read(keys: &Keys) -> LoadResult<CoxPh> {
        let common = Common::read(keys)?;
        let nf = common.n_features;
        let coef = keys.req_f64_array("coef")?;
        let count = keys.req_usize("strata_count")?;
        let mut strata = HashMap::with_capacity(count.min(1 << 16));
        let mut strata_len = 0;
        for i in 0..count {
            let s = keys.req_f64_array(&format!("strata_{i}"))?;
            if i == 0 {
                strata_len = s.len();
            }
            // Java's (int) cast, as the Strata key's hashCode and equals use it.
            strata.insert(s.iter().map(|&v| v as i32).collect::<Vec<i32>>(), i);
        }
        let cats = keys.req_usize("cats")?;
        let cat_offsets = keys.opt_i64_array("cat_offsets")?.unwrap_or_default();
        check_cat_offsets(keys, &cat_offsets, cats)?;
        if cat_offsets[cats] > coef.len() as i64 {
            return keys.invalid(format!(
                "cat_offsets {cat_offsets:?} point past the {} coefficients",
                coef.len()
            ));
        }
        let use_all_levels = match keys.raw("use_all_factor_levels") {
            Some(_) => keys.bool_or("use_all_factor_levels", false)?,
            None => return keys.invalid("key `use_all_factor_levels` is missing"),
        };
        let nums = match keys.opt_i64("num_numerical_columns")? {
            None | Some(-1) => None,
            Some(n) if n >= 0 => Some(n as usize),
            Some(n) => return keys.invalid(format!("num_numerical_columns = {n}")),
        };
        let num_offsets = keys.opt_i64_array("num_offsets")?.unwrap_or_default();
        // The columns lp reads: strata, then categorical, then numeric features.
        let read_numbers = match nums {
            Some(n) => {
                if num_offsets.len() < n || num_offsets[..n].iter().any(|&o| o < 0) {
                    return keys.invalid(format!(
                        "num_offsets {num_offsets:?} does not give {n} numeric columns their coefficients"
                    ));
                }
                n
            }
            None => (coef.len() as i64 - cat_offsets[cats]).max(0) as usize,
        };
        if strata_len + cats + read_numbers > nf {
            return keys.invalid(format!(
                "{strata_len} stratum, {cats} categorical and {read_numbers} numeric columns do not fit {nf} features"
            ));
        }
        let lp_base = lp_base(keys, &coef, strata.len())?;
        let pairs = match keys.opt_i64_array("interaction_targets")? {
            None => None,
            Some(targets) => Some(read_pairs(keys, &targets, cats, nums, nf)?),
        };
        Ok(CoxPh {
            n_features: nf,
            coef,
            strata_len,
            strata,
            lp_base,
            cats,
            cat_offsets,
            use_all_levels,
            nums,
            num_offsets,
            pairs,
            offset_feature: None,
        })
    }

    fn read_numbers(&self) -> usize {
        self.nums.unwrap_or_else(|| {
            (self.coef.len() as i64 - self.cat_offsets[self.cats]).max(0) as usize
        })
    }

    /// Genmodel's `forOneCategory`: the coefficient of the level, 0 without one; `Err`
    /// where it throws (a level that is not a whole number, e.g. missing).
    fn one_category(&self, row: &[f64], category: usize, lowest: i32) -> Result<f64, ()> {
        let v = row[category + self.strata_len];
        let value = (v as i32).wrapping_sub(lowest);
        if f64::from(value) != v - f64::from(lowest) {
            return Err(());
        }
        let x = i64::from(value) + self.cat_offsets[category];
        if value >= 0 && x < self.cat_offsets[category + 1] {
            Ok(self.coef[x as usize])
        } else {
            Ok(0.0)
        }
    }

    fn categories(&self, row: &[f64]) -> Result<f64, ()> {
        let mut result = 0.0;
        if self.use_all_levels {
            for category in 0..self.cats {
                result += self.one_category(row, category, 0)?;
            }
            return Ok(result);
        }
        for category in 0..self.cats {
            let v = row[category + self.strata_len];
            if v.is_nan() {
                result = f64::NAN;
            } else if v >= 0.0 {
                // genmodel compares the feature index with the interaction columns' row
                // indices here; so does this.
                let is_target = self
                    .pairs
                    .as_ref()
                    .is_some_and(|p| p.iter().any(|p| p.target == category));
                result += self.one_category(row, category, if is_target { 0 } else { 1 })?;
            }
        }
        Ok(result)
    }

    /// `forOtherColumns` of MOJOs without `num_numerical_columns`.
    fn numbers_old(&self, row: &[f64]) -> f64 {
        let diff = self.cat_offsets[self.cats] - self.cats as i64;
        let mut result = 0.0;
        let mut i = self.cats as i64;
        while i + diff < self.coef.len() as i64 {
            result += self.coef[(diff + i) as usize] * row[i as usize + self.strata_len];
            i += 1;
        }
        result
    }

    /// `forOtherColumns(row, enumOffset)`; `enum_offsets` is `None` without interactions.
    fn numbers(&self, row: &[f64], nums: usize, enum_offsets: Option<&[f64]>) -> f64 {
        let n = self.coef.len() as i64;
        let mut result = 0.0;
        for i in 0..nums {
            let at = match enum_offsets.map(|e| e[i] as i64) {
                Some(e) if e >= 0 => e,
                _ => self.num_offsets[i],
            };
            if at >= n {
                break;
            }
            result += self.coef[at as usize] * row[i + self.cats + self.strata_len];
        }
        result
    }

    /// `evaluateInteractions`: fills the interaction columns of `row` (where missing) and
    /// the level-gated coefficient offsets. `false` where genmodel throws.
    fn interactions(&self, pairs: &[Pair], row: &mut [f64], enum_offsets: &mut [f64]) -> bool {
        enum_offsets.fill(-1.0);
        for p in pairs {
            if !row[p.target].is_nan() {
                continue;
            }
            match &p.kind {
                PairKind::EnumEnum {
                    levels1,
                    levels2,
                    combined,
                } => {
                    let (a, b) = (row[p.first] as i32, row[p.second] as i32);
                    if a < 0 || b < 0 || a as usize >= *levels1 || b as usize >= *levels2 {
                        return false; // genmodel: ArrayIndexOutOfBoundsException
                    }
                    row[p.target] = combined.get(&(a as u32, b as u32)).copied().unwrap_or(-1.0);
                }
                PairKind::NumNum => row[p.target] = row[p.first] * row[p.second],
                PairKind::EnumNum { factor, number } => {
                    let at = p.target - self.cats;
                    let level =
                        (row[*factor] as i32).wrapping_sub(if self.use_all_levels { 0 } else { 1 });
                    row[p.target] = if level < 0 { 0.0 } else { row[*number] };
                    enum_offsets[at] = (i64::from(level) + self.num_offsets[at]) as f64;
                }
            }
        }
        true
    }

    /// `forStrata`: the stratum's lpBase; `None` where genmodel throws (a combination it
    /// does not know).
    fn stratum_base(&self, row: &[f64]) -> Option<f64> {
        if self.strata.is_empty() {
            return Some(self.lp_base[0]);
        }
        let n = self.strata_len;
        let at = if n <= STACK_STRATA {
            let mut key = [0i32; STACK_STRATA];
            for (k, &v) in key.iter_mut().zip(&row[..n]) {
                *k = v as i32;
            }
            self.strata.get(&key[..n])
        } else {
            let key: Vec<i32> = row[..n].iter().map(|&v| v as i32).collect();
            self.strata.get(&key[..])
        };
        // An index past lpBase (duplicate stratum keys shrink it) throws in genmodel.
        at.and_then(|&i| self.lp_base.get(i).copied())
    }

    /// The columns a client sends: the stratum columns and features lp reads, minus the
    /// interaction columns, then the offset column (where it is not one of them).
    fn inputs(&mut self, keys: &Keys) -> LoadResult<Vec<InputColumn>> {
        let mojo = keys.mojo;
        let offset = keys
            .raw("offset_column")
            .filter(|v| *v != "null" && !v.is_empty());
        let mut inputs = Vec::new();
        for i in 0..self.strata_len + self.cats + self.read_numbers() {
            if self.is_computed(i) {
                continue;
            }
            let name = &mojo.ini.columns[i];
            let (ty, kind) = match &mojo.domains[i] {
                Some(d) => (ColumnType::String, Kind::Categorical(Levels::new(name, d))),
                None => (ColumnType::Float64, Kind::Numeric),
            };
            let slot = if Some(name.as_str()) == offset && matches!(kind, Kind::Numeric) {
                self.offset_feature = Some(i);
                Slot::Offset
            } else {
                Slot::Feature(i)
            };
            inputs.push(InputColumn {
                name: name.clone(),
                ty,
                kind,
                slot,
            });
        }
        if let Some(off) = offset.filter(|_| self.offset_feature.is_none()) {
            if inputs.iter().any(|c| c.name == off) {
                return unsupported(format!(
                    "offset column {off:?} that is also a categorical feature"
                ));
            }
            inputs.push(InputColumn {
                name: off.to_string(),
                ty: ColumnType::Float64,
                kind: Kind::Numeric,
                slot: Slot::Offset,
            });
        }
        Ok(inputs)
    }

    fn is_computed(&self, i: usize) -> bool {
        self.nums.is_some()
            && self
                .pairs
                .as_ref()
                .is_some_and(|p| p.iter().any(|p| p.target == i))
    }

    fn metadata(&self, keys: &Keys) -> Map<String, Value> {
        let cols = &keys.mojo.ini.columns;
        let read = self.strata_len + self.cats + self.read_numbers();
        let computed: Vec<&String> = (0..read)
            .filter(|&i| self.is_computed(i))
            .map(|i| &cols[i])
            .collect();
        let mut m = Map::new();
        m.insert(
            "coxph".into(),
            json!({
                "stratify_by": &cols[..self.strata_len],
                "strata": self.strata.len(),
                "interaction_columns": computed,
                "unused_columns": &cols[read..self.n_features],
            }),
        );
        m
    }
}

/// genmodel's `computeLpBase`: per stratum (or once), the coefficients times the means.
fn lp_base(keys: &Keys, coef: &[f64], n_strata: usize) -> LoadResult<Vec<f64>> {
    let x_mean_cat = rectangle(keys, "x_mean_cat")?;
    let x_mean_num = rectangle(keys, "x_mean_num")?;
    let num_start = x_mean_cat.first().map_or(0, Vec::len);
    let size = n_strata.max(1);
    if x_mean_cat.len() < size
        || x_mean_num.len() < size
        || x_mean_cat[..size].iter().any(|r| r.len() > coef.len())
        || x_mean_num[..size]
            .iter()
            .any(|r| r.len() + num_start > coef.len())
    {
        return keys.invalid(format!(
            "x_mean_cat and x_mean_num do not give {size} strata means for {} coefficients",
            coef.len()
        ));
    }
    Ok((0..size)
        .map(|s| {
            let mut base = 0.0;
            for (x, c) in x_mean_cat[s].iter().zip(coef) {
                base += x * c;
            }
            for (x, c) in x_mean_num[s].iter().zip(&coef[num_start..]) {
                base += x * c;
            }
            base
        })
        .collect())
}

/// `readRectangularDoubleArray(title)`: `<title>_size1` × `<title>_size2` doubles.
fn rectangle(keys: &Keys, title: &str) -> LoadResult<Vec<Vec<f64>>> {
    let rows = keys.req_usize(&format!("{title}_size1"))?;
    let cols = keys.req_usize(&format!("{title}_size2"))?;
    Numbers::open(keys, title)?.matrix(rows, cols)
}

fn read_pairs(
    keys: &Keys,
    targets: &[i64],
    cats: usize,
    nums: Option<usize>,
    nf: usize,
) -> LoadResult<Vec<Pair>> {
    let mojo = keys.mojo;
    let first = keys.opt_i64_array("interactions_1")?;
    let second = keys.opt_i64_array("interactions_2")?;
    let (Some(first), Some(second)) = (first, second) else {
        return keys.invalid("interaction_targets without interactions_1 and interactions_2");
    };
    if first.len() < targets.len() || second.len() < targets.len() {
        return keys.invalid(format!(
            "{} interaction targets but {} and {} interaction columns",
            targets.len(),
            first.len(),
            second.len()
        ));
    }
    let index = |v: i64, what: &str| -> LoadResult<usize> {
        if v >= 0 && (v as usize) < nf {
            Ok(v as usize)
        } else {
            keys.invalid(format!("{what} {v} is not one of the {nf} features"))
        }
    };
    let mut pairs = Vec::with_capacity(targets.len());
    for (i, &t) in targets.iter().enumerate() {
        let target = index(t, "interaction target")?;
        let a = index(first[i], "interaction column")?;
        let b = index(second[i], "interaction column")?;
        let kind = match (&mojo.domains[a], &mojo.domains[b]) {
            (Some(da), Some(db)) => {
                let Some(dt) = &mojo.domains[target] else {
                    return keys.invalid(format!(
                        "interaction column {:?} of two factors has no domain",
                        mojo.ini.columns[target]
                    ));
                };
                // From the target's levels, so the table is never larger than its domain.
                let mut by_name: HashMap<&str, Vec<u32>> = HashMap::new();
                for (i, l) in db.iter().enumerate() {
                    by_name.entry(l.as_str()).or_default().push(i as u32);
                }
                let mut combined = HashMap::new();
                for (at, level) in dt.iter().enumerate() {
                    for (ia, la) in da.iter().enumerate() {
                        let rest = level.strip_prefix(la.as_str());
                        let Some(lb) = rest.and_then(|r| r.strip_prefix('_')) else {
                            continue;
                        };
                        for &ib in by_name.get(lb).into_iter().flatten() {
                            combined.entry((ia as u32, ib)).or_insert(at as f64);
                        }
                    }
                }
                PairKind::EnumEnum {
                    levels1: da.len(),
                    levels2: db.len(),
                    combined,
                }
            }
            (None, None) => PairKind::NumNum,
            (fa, _) => {
                if nums.is_some_and(|n| target < cats || target - cats >= n) {
                    return keys.invalid(format!(
                        "interaction column {:?} is not one of the numeric columns",
                        mojo.ini.columns[target]
                    ));
                }
                let (factor, number) = if fa.is_some() { (a, b) } else { (b, a) };
                PairKind::EnumNum { factor, number }
            }
        };
        pairs.push(Pair {
            first: a,
            second: b,
            target,
            kind,
        });
    }
    Ok(pairs)
}

impl Model for CoxPh {
    fn score0(&self, row: &mut [f64], offset: f64, preds: &mut [f64]) -> bool {
        let (row, tail) = row.split_at_mut(self.n_features);
        if let Some(at) = self.offset_feature {
            row[at] = offset;
        }
        let lp = match self.nums {
            None => {
                let Ok(c) = self.categories(row) else {
                    return false;
                };
                let o = self.numbers_old(row);
                let Some(s) = self.stratum_base(row) else {
                    return false;
                };
                c + o - s + offset
            }
            Some(nums) => {
                let enum_offsets = match &self.pairs {
                    Some(pairs) => {
                        let e = &mut tail[..nums];
                        if !self.interactions(pairs, row, e) {
                            return false;
                        }
                        Some(&*e)
                    }
                    None => None,
                };
                let Ok(c) = self.categories(row) else {
                    return false;
                };
                let o = self.numbers(row, nums, enum_offsets);
                let Some(s) = self.stratum_base(row) else {
                    return false;
                };
                c + o - s + offset
            }
        };
        preds[0] = lp;
        true
    }
}

/// Loads a CoxPH MOJO with the columns a client sends and its scoring facts.
pub(crate) fn build(keys: &Keys) -> LoadResult<Built> {
    if !keys.mojo.prefix.is_empty() {
        return unsupported("a CoxPH model inside another model");
    }
    let mut m = CoxPh::read(keys)?;
    let inputs = m.inputs(keys)?;
    let metadata = m.metadata(keys);
    Ok(Built {
        n_features: m.n_features + m.pairs.as_ref().map_or(0, |_| m.nums.unwrap_or(0)),
        preds_len: 1,
        render: Render::Values(1),
        text_domain: None,
        inputs: Some(inputs),
        outputs: None,
        metadata,
        contributions: Err(
            "genmodel computes contributions only for GBM, DRF and XGBoost models".to_string(),
        ),
        model: Box::new(m),
    })
}
