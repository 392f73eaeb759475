//! XGBoost (`XGBoostJavaMojoModel`): the booster in `boosterBytes`, scored the way
//! genmodel's Java predictor (`biz.k11i.xgboost`) scores it.
//!
//! `boosterBytes` is XGBoost's legacy binary model format (optionally prefixed `binf`):
//! the learner parameters (base score, feature and class counts, XGBoost version), the
//! objective and booster names as length-prefixed strings, then for `gbtree`/`dart` the
//! booster parameters, each tree (`[parent, left, right, split index | default-left bit]`
//! ints and an `f32` threshold or leaf value per node, then 16 bytes of statistics per
//! node), the group of each tree and, for `dart`, the tree weights. JSON and UBJSON
//! boosters and `gblinear` are refused.
//!
//! The input is H2O's one-hot layout (`cats`, `cat_offsets`, `nums`,
//! `use_all_factor_levels`, `sparse`): a categorical value lights one slot (or the last,
//! "missing", slot), numbers are cast to `f32`. All predictor arithmetic is `f32`, as in
//! Java: leaf values are summed from the base margin, then the objective's transform
//! (sigmoid, softmax, exp) is applied and the result widened to `f64`.

use crate::classes::get_prediction;
use crate::java::jmaxf;
use crate::keys::{unsupported, Keys, LoadError, LoadResult};
use crate::model::{Common, Model};
use crate::shap::{self, ContributionKind, Contributions, Finish};

#[derive(Debug, Clone, Copy)]
struct XNode {
    left: i32,
    right: i32,
    /// Feature index of a split.
    feature: u32,
    default_left: bool,
    /// Split threshold, or the leaf value.
    value: f32,
    /// The node's `sum_hess` statistic (its cover, TreeSHAP's weight).
    cover: f32,
}

#[derive(Debug)]
struct XTree {
    nodes: Vec<XNode>,
}

impl XTree {
    /// `RegTree.getLeafValue` from the root over the row's feature values (see
    /// [`XGBoost::features`]); `None` if a malformed tree loops.
    #[inline]
    fn leaf(&self, fvalues: &[f32]) -> Option<f32> {
        let mut n = &self.nodes[0];
        for _ in 0..=self.nodes.len() {
            if n.left == -1 {
                return Some(n.value);
            }
            let v = fvalues[n.feature as usize];
            // NaN compares false: `default_left` decides for it alone.
            let left = (v < n.value) | (v.is_nan() & n.default_left);
            n = &self.nodes[if left { n.left } else { n.right } as usize];
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    /// `binary:logistic`, `reg:logistic`.
    Logistic,
    /// `multi:softprob`.
    Softprob,
    /// `reg:linear`, `reg:squarederror`.
    Identity,
    /// `reg:gamma`, `reg:tweedie`, `count:poisson`.
    Exp,
}

impl Objective {
    fn prob_to_margin(self, p: f32) -> f32 {
        match self {
            Objective::Logistic => (-(f64::from(1.0f32 / p - 1.0f32)).ln()) as f32,
            Objective::Exp => f64::from(p).ln() as f32,
            Objective::Softprob | Objective::Identity => p,
        }
    }

    fn transform(self, preds: &mut [f32]) {
        match self {
            Objective::Identity => {}
            Objective::Logistic => {
                for p in preds.iter_mut() {
                    *p = 1.0f32 / (1.0f32 + f64::from(-*p).exp() as f32);
                }
            }
            Objective::Exp => {
                // genmodel's regression transform only touches a single value.
                if let Some(p) = preds.first_mut() {
                    *p = f64::from(*p).exp() as f32;
                }
            }
            Objective::Softprob => {
                let mut max = preds[0];
                for &p in &preds[1..] {
                    max = jmaxf(p, max);
                }
                let mut sum = 0.0f64;
                for p in preds.iter_mut() {
                    *p = f64::from(*p - max).exp() as f32;
                    sum += f64::from(*p);
                }
                for p in preds.iter_mut() {
                    *p /= sum as f32;
                }
            }
        }
    }
}

/// A little-endian reader over the booster bytes.
struct Bytes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("truncated at byte {} (needed {n} more bytes)", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> Result<f32, String> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn unsigned(&mut self, what: &str) -> Result<u32, String> {
        let v = self.i32()?;
        u32::try_from(v).map_err(|_| format!("{what} = {v} is negative"))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.i64()?;
        if !(0..=i64::from(i32::MAX)).contains(&n) {
            return Err(format!("string of length {n}"));
        }
        let b = self.take(n as usize)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }
}

/// The parsed booster.
#[derive(Debug)]
struct Booster {
    objective: Objective,
    /// Base margin (already `probToMargin`-converted for XGBoost ≥ 1.0).
    base_score: f32,
    /// XGBoost 1.2 or older: the base score is added after the trees.
    add_base_after: bool,
    /// Trees of each output group, in file order.
    groups: Vec<Vec<usize>>,
    trees: Vec<XTree>,
    /// `dart` tree weights, indexed by position within the group (as the predictor does).
    dart_weights: Option<Vec<f32>>,
    /// `num_class` of the learner (0 for binary and regression objectives).
    num_class: i32,
}

fn parse_booster(b: &[u8], n_inputs: usize) -> Result<Result<Booster, String>, String> {
    let mut r = Bytes { b, pos: 0 };
    let first = r.take(4)?.to_vec();
    let next = r.take(4)?.to_vec();
    let le = |x: &[u8]| [x[0], x[1], x[2], x[3]];
    let (base_score, _num_feature) = if first == b"binf" {
        (f32::from_le_bytes(le(&next)), r.unsigned("num_feature")?)
    } else if first[0] == b'{' {
        return Ok(Err("the booster is in XGBoost's JSON/UBJSON format".into()));
    } else if first[..3] == [0x00, 0x05, 0x5f] {
        return Ok(Err("the booster was written by xgboost4j-spark".into()));
    } else {
        (
            f32::from_le_bytes(le(&first)),
            u32::from_le_bytes(le(&next)),
        )
    };
    let num_class = r.i32()?;
    let saved_with_pbuffer = r.i32()?;
    let _contain_eval_metrics = r.i32()?;
    let major = r.unsigned("major_version")?;
    let minor = r.unsigned("minor_version")?;
    r.take(27 * 4)?;
    let name_obj = r.string()?;
    let name_gbm = r.string()?;
    let objective = match name_obj.as_str() {
        "binary:logistic" | "reg:logistic" => Objective::Logistic,
        "multi:softprob" => Objective::Softprob,
        "reg:linear" | "reg:squarederror" => Objective::Identity,
        "reg:gamma" | "reg:tweedie" | "count:poisson" => Objective::Exp,
        other => return Ok(Err(format!("XGBoost objective {other:?}"))),
    };
    let dart = match name_gbm.as_str() {
        "gbtree" => false,
        "dart" => true,
        other => return Ok(Err(format!("XGBoost booster {other:?}"))),
    };
    // GBTree model parameters.
    let num_trees = r.i32()?;
    let _num_roots = r.i32()?;
    let _gb_num_feature = r.i32()?;
    r.i32()?;
    let num_pbuffer = r.i64()?;
    let gb_output_group = r.i32()?;
    let gb_leaf_vector = r.i32()?;
    r.take(31 * 4)?;
    r.i32()?;
    if num_trees < 0 || num_trees as usize > b.len() / 16 {
        return Err(format!("num_trees = {num_trees}"));
    }
    if gb_leaf_vector != 0 {
        return Ok(Err("trees with leaf vectors".into()));
    }
    let mut trees = Vec::with_capacity(num_trees as usize);
    for t in 0..num_trees {
        let _roots = r.i32()?;
        let num_nodes = r.i32()?;
        r.take(3 * 4)?; // deleted, max depth, features
        let leaf_vector = r.i32()?;
        r.take(31 * 4)?;
        if num_nodes <= 0 || num_nodes as usize > b.len() / 20 {
            return Err(format!("tree {t}: num_nodes = {num_nodes}"));
        }
        if leaf_vector != 0 {
            return Ok(Err("trees with leaf vectors".into()));
        }
        let n = num_nodes as usize;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let _parent = r.i32()?;
            let left = r.i32()?;
            let right = r.i32()?;
            let sindex = r.i32()? as u32;
            let value = r.f32()?;
            let node = XNode {
                left,
                right,
                feature: sindex & 0x7FFF_FFFF,
                default_left: sindex >> 31 != 0,
                value,
                cover: 0.0,
            };
            if left != -1 {
                let ok = |c: i32| c >= 0 && (c as usize) < n;
                if !ok(left) || !ok(right) {
                    return Err(format!("tree {t}: child index out of range"));
                }
                if node.feature as usize >= n_inputs {
                    return Err(format!(
                        "tree {t} splits on feature {} of {n_inputs}",
                        node.feature
                    ));
                }
            }
            nodes.push(node);
        }
        // Node statistics: loss_chg, sum_hess, base_weight, leaf_child_cnt.
        for node in &mut nodes {
            r.f32()?;
            node.cover = r.f32()?;
            r.f32()?;
            r.i32()?;
        }
        trees.push(XTree { nodes });
    }
    let tree_info: Vec<i32> = (0..num_trees).map(|_| r.i32()).collect::<Result<_, _>>()?;
    if num_pbuffer != 0 && saved_with_pbuffer != 0 {
        let size = i64::from(gb_output_group)
            .checked_mul(num_pbuffer)
            .and_then(|v| v.checked_mul(i64::from(gb_leaf_vector) + 1))
            .and_then(|v| v.checked_mul(8))
            .filter(|&v| v >= 0)
            .ok_or("prediction buffer size overflows")?;
        r.take(size as usize)?;
    }
    let dart_weights = if dart && num_trees != 0 {
        let n = r.i64()?;
        if n < 0 || n as usize > b.len() / 4 {
            return Err(format!("{n} dart weights"));
        }
        Some((0..n).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?)
    } else {
        None
    };
    let n_groups = if num_class == 0 { 1 } else { num_class };
    if n_groups < 0 || n_groups as usize > 1 << 16 {
        return Err(format!("num_class = {num_class}"));
    }
    let groups: Vec<Vec<usize>> = (0..n_groups)
        .map(|g| {
            (0..tree_info.len())
                .filter(|&j| tree_info[j] == g)
                .collect()
        })
        .collect();
    if let Some(w) = &dart_weights {
        if groups.iter().any(|g| g.len() > w.len()) {
            return Err("fewer dart weights than trees".into());
        }
    }
    let before_or_equal_12 = major < 1 || (major == 1 && minor <= 2);
    let base_score = if major >= 1 {
        objective.prob_to_margin(base_score)
    } else {
        base_score
    };
    Ok(Ok(Booster {
        objective,
        base_score,
        add_base_after: before_or_equal_12,
        groups,
        trees,
        dart_weights,
        num_class,
    }))
}

#[derive(Debug)]
pub(crate) struct XGBoost {
    common: Common,
    booster: Booster,
    cats: usize,
    nums: usize,
    cat_offsets: Vec<i32>,
    /// Categorical column of each one-hot slot.
    cat_map: Vec<usize>,
    use_all_levels: bool,
    sparse: bool,
    compatible10: bool,
    has_offset: bool,
    /// The contributions predictor, when genmodel has one for the model.
    pub shap: Option<Contributions>,
}

impl XGBoost {
    pub(crate) fn read(keys: &Keys) -> LoadResult<XGBoost> {
        let common = Common::read(keys)?;
        let booster_type = keys.req_str("booster")?;
        let cats = keys.req_usize("cats")?;
        let nums = keys.req_usize("nums")?;
        let cat_offsets: Vec<i32> = keys
            .opt_i64_array("cat_offsets")?
            .unwrap_or_default()
            .iter()
            .map(|&v| v as i32)
            .collect();
        if cats + nums != common.n_features
            || cat_offsets.len() != cats + 1
            || cat_offsets[0] < 0
            || cat_offsets.windows(2).any(|w| w[0] > w[1])
        {
            return keys.invalid(format!(
                "cats = {cats}, nums = {nums}, cat_offsets = {cat_offsets:?} do not describe {} features",
                common.n_features
            ));
        }
        let mut cat_map = Vec::with_capacity(cat_offsets[cats] as usize);
        for i in 0..cats {
            for _ in cat_offsets[i]..cat_offsets[i + 1] {
                cat_map.push(i);
            }
        }
        let bytes = keys
            .blob("boosterBytes")
            .ok_or_else(|| LoadError::Invalid {
                file: format!("{}boosterBytes", keys.mojo.prefix),
                detail: "is missing".into(),
            })?;
        let booster = match parse_booster(bytes, cat_map.len() + nums) {
            Ok(Ok(b)) => b,
            Ok(Err(reason)) => return unsupported(reason),
            Err(detail) => {
                return Err(LoadError::Invalid {
                    file: format!("{}boosterBytes", keys.mojo.prefix),
                    detail,
                })
            }
        };
        let k = common.n_classes;
        let outputs = booster.groups.len();
        let fits = match booster.objective {
            Objective::Softprob => k > 2 && outputs == k,
            Objective::Logistic => outputs == 1 && (k == 2 || k == 1),
            _ => outputs == 1 && k == 1,
        };
        if !fits {
            return unsupported(format!(
                "XGBoost objective {:?} with {outputs} output groups for {k} classes",
                booster.objective
            ));
        }
        Ok(XGBoost {
            compatible10: common.mojo_version == 1.0 && booster_type != "gbtree",
            has_offset: keys.bool_or("has_offset", false)?,
            use_all_levels: keys.bool_or("use_all_factor_levels", false)?,
            sparse: keys.bool_or("sparse", false)?,
            common,
            booster,
            cats,
            nums,
            cat_offsets,
            cat_map,
            shap: None,
        })
    }
}

thread_local! {
    /// The feature values of the row being scored ([`XGBoost::features`]) and its margin
    /// per output group, reused so that a row costs no allocation.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

impl XGBoost {
    /// The row in XGBoost's input layout (`OneHotEncoderFactory.fromArray` and
    /// `FVec.fvalue`): one value per one-hot slot (1 for the hot slot of each
    /// categorical column, else 0, or NaN for a sparse model), then the numeric columns
    /// as `f32` (0 is NaN for a sparse model). Written into `out`.
    fn features(&self, row: &[f64], out: &mut Vec<f32>) {
        let n_hot = self.cat_map.len();
        let not_hot = if self.sparse { f32::NAN } else { 0.0 };
        out.clear();
        out.resize(n_hot, not_hot);
        for (i, &v) in row[..self.cats].iter().enumerate() {
            // GenModel.setCats: the hot slot of the column.
            let (lo, hi) = (self.cat_offsets[i], self.cat_offsets[i + 1]);
            let mut slot = if v.is_nan() {
                hi - 1
            } else {
                let c = v as i32;
                if self.use_all_levels {
                    c.wrapping_add(lo)
                } else if c != 0 {
                    c.wrapping_sub(1).wrapping_add(lo)
                } else {
                    -1
                }
            };
            if slot >= hi {
                slot = hi - 1;
            }
            // A slot is hot when its own column's slot names it; 1.0-compatible models
            // (`compatible10`) count any column's slot.
            if let Ok(at) = usize::try_from(slot) {
                if at < n_hot && (self.compatible10 || self.cat_map[at] == i) {
                    out[at] = 1.0;
                }
            }
        }
        out.extend(row[self.cats..self.cats + self.nums].iter().map(|&d| {
            let f = d as f32;
            if self.sparse && f == 0.0 {
                f32::NAN
            } else {
                f
            }
        }));
    }

    /// `XGBoostJavaMojoModel.makeContributionsPredictor`: TreeSHAP over the trees of
    /// output group 0 (dart weights not applied), the base margin as the starting bias,
    /// one contribution per one-hot slot and numeric column. `Err` says why there are
    /// none.
    pub(crate) fn contributions(&self, keys: &Keys) -> Result<Contributions, String> {
        let b = &self.booster;
        if b.num_class > 2 || self.common.n_classes > 2 {
            return Err(crate::sharedtree::MULTINOMIAL.into());
        }
        // makeFeatureContributionNames: numeric columns by name, every level of a
        // categorical column as `<column>.<level>` and then `<column>.missing(NA)`.
        let mojo = keys.mojo;
        let mut names = Vec::with_capacity(self.cat_map.len() + self.nums + 1);
        for (i, col) in mojo.ini.columns[..self.common.n_features]
            .iter()
            .enumerate()
        {
            match &mojo.domains[i] {
                None => names.push(col.clone()),
                Some(levels) => {
                    names.extend(levels.iter().map(|l| format!("{col}.{l}")));
                    names.push(format!("{col}.missing(NA)"));
                }
            }
        }
        if names.len() != self.cat_map.len() + self.nums {
            return Err(format!(
                "genmodel names {} features but the booster reads {} (use_all_factor_levels = false)",
                names.len(),
                self.cat_map.len() + self.nums
            ));
        }
        names.push("BiasTerm".to_string());
        let mut trees = Vec::new();
        for &t in b.groups.first().map(Vec::as_slice).unwrap_or_default() {
            let nodes = b.trees[t]
                .nodes
                .iter()
                .map(|n| shap::Node {
                    left: if n.left == -1 {
                        shap::LEAF
                    } else {
                        n.left as u32
                    },
                    right: if n.left == -1 {
                        shap::LEAF
                    } else {
                        n.right as u32
                    },
                    feature: n.feature,
                    na_left: n.default_left,
                    split: shap::Split::Below(n.value),
                    domain: -1,
                    weight: n.cover,
                    value: n.value,
                })
                .collect();
            trees.push(shap::Tree::new(nodes, Vec::new()).map_err(|e| format!("tree {t}: {e}"))?);
        }
        Ok(Contributions::new(
            names,
            ContributionKind::Transformed,
            trees,
            b.base_score,
            Finish::Raw,
        ))
    }
}

impl Model for XGBoost {
    fn contributions(&self, row: &[f64]) -> Option<Vec<f32>> {
        let c = self.shap.as_ref()?;
        let mut fv = Vec::new();
        self.features(row, &mut fv);
        c.compute(&|i| f64::from(fv[i]))
    }

    fn score0(&self, row: &mut [f64], offset: f64, preds: &mut [f64]) -> bool {
        let b = &self.booster;
        let base = if self.has_offset {
            offset as f32
        } else {
            b.base_score
        };
        let start = if b.add_base_after { 0.0f32 } else { base };
        SCRATCH.with_borrow_mut(|(fv, out)| {
            self.features(row, fv);
            out.clear();
            out.resize(b.groups.len(), 0.0);
            for (g, group) in b.groups.iter().enumerate() {
                let mut psum = start;
                for (i, &t) in group.iter().enumerate() {
                    let Some(leaf) = b.trees[t].leaf(fv) else {
                        return false;
                    };
                    psum += match &b.dart_weights {
                        Some(w) => w[i] * leaf,
                        None => leaf,
                    };
                }
                out[g] += psum;
                if b.add_base_after {
                    out[g] += base;
                }
            }
            self.finish(out, row, preds);
            true
        })
    }
}

impl XGBoost {
    /// The predictions from the output groups' margins `out`.
    fn finish(&self, out: &mut [f32], row: &[f64], preds: &mut [f64]) {
        let b = &self.booster;
        b.objective.transform(out);
        let c = &self.common;
        match c.n_classes {
            k if k > 2 => {
                for (p, &o) in preds[1..].iter_mut().zip(out.iter()) {
                    *p = f64::from(o);
                }
                preds[0] =
                    get_prediction(preds, c.prior.as_deref(), row, c.default_threshold) as f64;
            }
            2 => {
                preds[1] = f64::from(1.0f32 - out[0]);
                preds[2] = f64::from(out[0]);
                preds[0] =
                    get_prediction(preds, c.prior.as_deref(), row, c.default_threshold) as f64;
            }
            _ => preds[0] = f64::from(out[0]),
        }
    }
}
