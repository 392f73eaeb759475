//! GBM and DRF: a forest of compressed trees plus the per-algorithm step that turns the
//! summed leaf values into predictions (genmodel's `GbmMojoModel` and `DrfMojoModel`).
//!
//! Trees are grouped as genmodel groups them: `n_trees` groups of `n_trees_per_class`
//! trees, tree `(group g, class c)` stored in `trees/t{c:02}_{g:03}.bin`. A missing file
//! is an empty tree and is skipped, as genmodel skips it.

use crate::java::{jmax, jmin};
use crate::keys::{unsupported, Keys, LoadError, LoadResult};
use crate::model::{Common, Model};
use crate::shap::{ContributionKind, Contributions, Finish};
use crate::tree::{Tree, TreeVersion};

/// The decoded trees of a shared-tree model.
#[derive(Debug)]
pub(crate) struct Forest {
    pub groups: usize,
    pub per_group: usize,
    /// Index `class * groups + group`.
    pub trees: Vec<Option<Tree>>,
    pub version: TreeVersion,
    pub cat_len: Vec<i32>,
}

impl Forest {
    pub(crate) fn read(keys: &Keys, common: &Common) -> LoadResult<Forest> {
        let groups = keys.req_usize("n_trees")?;
        let per_group = match keys.opt_i64("n_trees_per_class")? {
            Some(v) if v >= 0 => v as usize,
            Some(v) => return keys.invalid(format!("n_trees_per_class = {v}")),
            None => {
                let double = keys.bool_or("binomial_double_trees", false)?;
                if common.n_classes == 2 && !double {
                    1
                } else {
                    common.n_classes
                }
            }
        };
        let slots = if common.n_classes == 1 {
            1
        } else {
            common.n_classes
        };
        if per_group > slots {
            return keys.invalid(format!(
                "n_trees_per_class = {per_group} but the model has {} classes",
                common.n_classes
            ));
        }
        // `n_trees` is checked against the tree files before anything is sized by it: a
        // group past the last one with a file would only be trees genmodel skips, so a
        // claim beyond the files is a lie (a MOJO claiming 2^31 trees with 15 files).
        let last_group = keys
            .files_under("trees/t")
            .filter_map(|n| {
                let stem = n.strip_prefix("trees/t")?.strip_suffix(".bin")?;
                let (_, group) = stem.split_once('_')?;
                group.parse::<usize>().ok()
            })
            .max();
        if let Some(last) = last_group {
            if last + 1 < groups {
                return keys.invalid(format!(
                    "n_trees = {groups} but the last tree file is for tree {last} \
                     (trees/tCC_{last:03}.bin): the trees after it are missing"
                ));
            }
        }
        let version = TreeVersion::of(common.mojo_version);
        let count = groups
            .checked_mul(per_group)
            .filter(|&n| n <= 10_000_000)
            .ok_or_else(|| LoadError::Invalid {
                file: keys.ini_name(),
                detail: format!(
                    "n_trees = {groups} × n_trees_per_class = {per_group} is too many trees"
                ),
            })?;
        let mut trees: Vec<Option<Tree>> = Vec::with_capacity(count);
        for class in 0..per_group {
            for group in 0..groups {
                let name = format!("trees/t{class:02}_{group:03}.bin");
                let tree = match keys.blob(&name) {
                    None => None,
                    Some(bytes) => Some(
                        Tree::decode(bytes, version, common.n_features, &common.cat_len).map_err(
                            |e| LoadError::Invalid {
                                file: format!("{}{name}", keys.mojo.prefix),
                                detail: e.0,
                            },
                        )?,
                    ),
                };
                trees.push(tree);
            }
        }
        if trees.iter().all(Option::is_none) && count > 0 {
            return keys.invalid("none of the tree files trees/tCC_GGG.bin is present");
        }
        Ok(Forest {
            groups,
            per_group,
            trees,
            version,
            cat_len: common.cat_len.clone(),
        })
    }

    /// The trees as TreeSHAP walks them, in genmodel's graph order (groups, then the
    /// classes of a group), with the covers of their `_aux.bin` files.
    fn shap_trees(&self, keys: &Keys) -> Result<Vec<crate::shap::Tree>, String> {
        if self.version != TreeVersion::V2 {
            return Err(
                "contributions need the tree format of mojo_version 1.20 or later (genmodel \
                 reads older level sets and missing aux files wrongly)"
                    .into(),
            );
        }
        let mut out = Vec::with_capacity(self.trees.len());
        for group in 0..self.groups {
            for class in 0..self.per_group {
                let name = format!("trees/t{class:02}_{group:03}");
                let Some(tree) = &self.trees[class * self.groups + group] else {
                    return Err(format!("{name}.bin is missing"));
                };
                let Some(aux) = keys.blob(&format!("{name}_aux.bin")) else {
                    return Err(format!("{name}_aux.bin (the node weights) is missing"));
                };
                out.push(
                    tree.shap(aux, &self.cat_len)
                        .map_err(|e| format!("{name}_aux.bin: {e}"))?,
                );
            }
        }
        Ok(out)
    }

    /// `scoreAllTrees`: the sum of each class's trees into `preds[k]` (`k` = class, plus
    /// one for classifiers whose `preds[0]` is the label).
    pub(crate) fn score_all(&self, row: &[f64], n_classes: usize, preds: &mut [f64]) {
        preds.fill(0.0);
        let off = usize::from(n_classes != 1);
        for class in 0..self.per_group {
            let k = off + class;
            for t in self.trees[class * self.groups..(class + 1) * self.groups]
                .iter()
                .flatten()
            {
                preds[k] += t.score(row, &self.cat_len, self.version);
            }
        }
    }
}

/// `hex.genmodel.utils.DistributionFamily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Auto,
    Bernoulli,
    Quasibinomial,
    ModifiedHuber,
    Multinomial,
    Ordinal,
    Gaussian,
    Poisson,
    Gamma,
    Tweedie,
    Huber,
    Laplace,
    Quantile,
    Fractionalbinomial,
    Negativebinomial,
}

impl Family {
    fn parse(s: &str) -> Option<Family> {
        Some(match s {
            "AUTO" => Family::Auto,
            "bernoulli" => Family::Bernoulli,
            "quasibinomial" => Family::Quasibinomial,
            "modified_huber" => Family::ModifiedHuber,
            "multinomial" => Family::Multinomial,
            "ordinal" => Family::Ordinal,
            "gaussian" => Family::Gaussian,
            "poisson" => Family::Poisson,
            "gamma" => Family::Gamma,
            "tweedie" => Family::Tweedie,
            "huber" => Family::Huber,
            "laplace" => Family::Laplace,
            "quantile" => Family::Quantile,
            "fractionalbinomial" => Family::Fractionalbinomial,
            "negativebinomial" => Family::Negativebinomial,
            _ => return None,
        })
    }

    /// `ModelMojoReader.defaultLinkFunction`, for MOJOs written before `link_function`.
    fn default_link(self) -> Link {
        match self {
            Family::Bernoulli
            | Family::Fractionalbinomial
            | Family::Quasibinomial
            | Family::ModifiedHuber
            | Family::Ordinal => Link::Logit,
            Family::Multinomial | Family::Poisson | Family::Gamma | Family::Tweedie => Link::Log,
            _ => Link::Identity,
        }
    }
}

/// `hex.genmodel.utils.LinkFunctionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Log,
    Logit,
    Identity,
    Ologit,
    Ologlog,
    Oprobit,
    Inverse,
    Tweedie,
}

impl Link {
    fn parse(s: &str) -> Option<Link> {
        Some(match s {
            "log" => Link::Log,
            "logit" => Link::Logit,
            "identity" => Link::Identity,
            "ologit" => Link::Ologit,
            "ologlog" => Link::Ologlog,
            "oprobit" => Link::Oprobit,
            "inverse" => Link::Inverse,
            "tweedie" => Link::Tweedie,
            _ => return None,
        })
    }
}

/// `GbmMojoModel.exp`: `Math.exp` capped at 1e19.
fn gexp(x: f64) -> f64 {
    jmin(1e19, x.exp())
}

/// `GbmMojoModel.linkInv`.
fn gbm_link_inv(link: Link, x: f64) -> f64 {
    match link {
        Link::Log => gexp(x),
        Link::Logit | Link::Ologit => 1.0 / (1.0 + gexp(-x)),
        Link::Ologlog => 1.0 - gexp(-gexp(x)),
        Link::Oprobit => 0.0,
        Link::Inverse => {
            let xx = if x < 0.0 {
                jmin(-1e-5, x)
            } else {
                jmax(-1e-5, x)
            };
            1.0 / xx
        }
        Link::Identity | Link::Tweedie => x,
    }
}

/// Gradient Boosting Machine (`GbmMojoModel`).
#[derive(Debug)]
pub(crate) struct Gbm {
    common: Common,
    forest: Forest,
    family: Family,
    link: Link,
    init_f: f64,
    /// The contributions predictor, when genmodel has one for the model.
    pub shap: Option<Contributions>,
}

impl Gbm {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Gbm> {
        let common = Common::read(keys)?;
        let dist = keys.req_str("distribution")?;
        let Some(family) = Family::parse(dist) else {
            return unsupported(format!("GBM distribution {dist:?}"));
        };
        let link = match keys.raw("link_function") {
            None | Some("null") => family.default_link(),
            Some(l) => match Link::parse(l) {
                Some(l) => l,
                None => return unsupported(format!("GBM link function {l:?}")),
            },
        };
        let category = keys.mojo.category();
        let fits = match family {
            Family::Bernoulli | Family::Quasibinomial | Family::ModifiedHuber => {
                category == "Binomial"
            }
            Family::Multinomial => matches!(category, "Binomial" | "Multinomial"),
            _ => category == "Regression",
        };
        if !fits {
            return unsupported(format!(
                "GBM distribution {dist:?} with category {category}"
            ));
        }
        let forest = Forest::read(keys, &common)?;
        let init_f = keys.req_f64("init_f")?;
        Ok(Gbm {
            common,
            forest,
            family,
            link,
            init_f,
            shap: None,
        })
    }
}

impl Model for Gbm {
    fn contributions(&self, row: &[f64]) -> Option<Vec<f32>> {
        self.shap.as_ref()?.compute(&|i| row[i])
    }

    fn score0(&self, row: &mut [f64], offset: f64, preds: &mut [f64]) -> bool {
        let c = &self.common;
        self.forest.score_all(row, c.n_classes, preds);
        match self.family {
            Family::Bernoulli | Family::Quasibinomial | Family::ModifiedHuber => {
                let f = preds[1] + self.init_f + offset;
                preds[2] = gbm_link_inv(self.link, f);
                preds[1] = 1.0 - preds[2];
            }
            Family::Multinomial => {
                if c.n_classes == 2 {
                    preds[1] += self.init_f + offset;
                    preds[2] = -preds[1];
                }
                gbm_rescale(preds);
            }
            _ => {
                let f = preds[0] + self.init_f + offset;
                preds[0] = gbm_link_inv(self.link, f);
                return true;
            }
        }
        c.finish_classes(row, preds);
        true
    }
}

/// `GenModel.GBM_rescale`: softmax of `preds[1..]` in place.
pub(crate) fn gbm_rescale(preds: &mut [f64]) {
    let mut max = f64::NEG_INFINITY;
    for &p in &preds[1..] {
        max = jmax(max, p);
    }
    let mut sum = 0.0;
    for p in &mut preds[1..] {
        *p = (*p - max).exp();
        sum += *p;
    }
    for p in &mut preds[1..] {
        *p /= sum;
    }
}

/// Contribution names of H2O tree models: the features, then `BiasTerm`.
fn feature_names(keys: &Keys, common: &Common) -> Vec<String> {
    keys.mojo.ini.columns[..common.n_features]
        .iter()
        .cloned()
        .chain(std::iter::once("BiasTerm".to_string()))
        .collect()
}

/// Genmodel's refusal of multinomial contributions.
pub(crate) const MULTINOMIAL: &str =
    "genmodel does not compute contributions for multinomial classification models";

impl Gbm {
    /// `SharedTreeMojoModelWithContributions.makeContributionsPredictor` for GBM: the raw
    /// TreeSHAP sums with `init_f` as the starting bias. `Err` says why there are none.
    pub(crate) fn contributions(&self, keys: &Keys) -> Result<Contributions, String> {
        if self.common.n_classes > 2 {
            return Err(MULTINOMIAL.into());
        }
        Ok(Contributions::new(
            feature_names(keys, &self.common),
            ContributionKind::Original,
            self.forest.shap_trees(keys)?,
            self.init_f as f32,
            Finish::Raw,
        ))
    }
}

/// The number of variables with a non-zero relative importance
/// (`VariableImportances.numberOfUsedVariables`), from `output.variable_importances` of
/// `experimental/modelDetails.json`, read as genmodel's `ModelJsonReader` reads tables
/// (columns by their description, `data` column-major).
fn used_variables(keys: &Keys) -> Result<usize, String> {
    let missing = "genmodel computes DRF contributions only with the variable importances of \
                   experimental/modelDetails.json, which this MOJO lacks";
    let table = keys
        .mojo
        .details
        .as_ref()
        .and_then(|d| d.get("output"))
        .and_then(|o| o.get("variable_importances"))
        .filter(|t| !t.is_null())
        .ok_or(missing)?;
    let columns = table
        .get("columns")
        .and_then(|c| c.as_array())
        .ok_or(missing)?;
    let find = |name: &str| {
        columns
            .iter()
            .position(|c| c.get("description").and_then(|d| d.as_str()) == Some(name))
    };
    let (Some(col), Some(_)) = (find("Relative Importance"), find("Variable")) else {
        return Err(missing.into());
    };
    let values = table
        .get("data")
        .and_then(|d| d.get(col))
        .and_then(|c| c.as_array())
        .ok_or(missing)?;
    let mut used = 0;
    for v in values {
        match v.as_f64() {
            Some(x) if x != 0.0 => used += 1,
            Some(_) => {}
            None => return Err(format!("a relative importance {v} is not a number")),
        }
    }
    Ok(used)
}

/// Distributed Random Forest (`DrfMojoModel`).
#[derive(Debug)]
pub(crate) struct Drf {
    common: Common,
    forest: Forest,
    binomial_double_trees: bool,
    /// The contributions predictor, when genmodel has one for the model.
    pub shap: Option<Contributions>,
}

impl Drf {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Drf> {
        let common = Common::read(keys)?;
        let forest = Forest::read(keys, &common)?;
        Ok(Drf {
            binomial_double_trees: keys.bool_or("binomial_double_trees", false)?,
            common,
            forest,
            shap: None,
        })
    }
}

impl Drf {
    /// `DrfMojoModel.ContributionsPredictorDRF`: the TreeSHAP sums rescaled per tree
    /// count, and for binomial models turned from class 0 (what the trees predict) to
    /// class 1. `Err` says why there are none.
    pub(crate) fn contributions(&self, keys: &Keys) -> Result<Contributions, String> {
        if self.common.n_classes > 2 {
            return Err(MULTINOMIAL.into());
        }
        let trees = self.forest.shap_trees(keys)?;
        if self.binomial_double_trees {
            return Err(
                "genmodel does not compute contributions for DRF models with binomial_double_trees"
                    .into(),
            );
        }
        let used = used_variables(keys)?;
        let groups = self.forest.groups as i32;
        let finish = match keys.mojo.category() {
            "Regression" => Finish::Drf {
                ratio: 0.0,
                normalizer: groups as f32,
            },
            "Binomial" => Finish::Drf {
                ratio: 1.0f32 / (used as i32 + 1) as f32,
                normalizer: -groups as f32,
            },
            other => {
                return Err(format!(
                    "genmodel computes no DRF contributions for {other}"
                ))
            }
        };
        Ok(Contributions::new(
            feature_names(keys, &self.common),
            ContributionKind::Original,
            trees,
            0.0,
            finish,
        ))
    }
}

impl Model for Drf {
    fn contributions(&self, row: &[f64]) -> Option<Vec<f32>> {
        self.shap.as_ref()?.compute(&|i| row[i])
    }

    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let c = &self.common;
        let n = self.forest.groups as f64;
        self.forest.score_all(row, c.n_classes, preds);
        if c.n_classes == 1 {
            preds[0] /= n;
            return true;
        }
        if c.n_classes == 2 && !self.binomial_double_trees {
            preds[1] /= n;
            preds[2] = 1.0 - preds[1];
        } else {
            let sum: f64 = preds[1..=c.n_classes].iter().fold(0.0, |a, &b| a + b);
            if sum > 0.0 {
                for p in &mut preds[1..=c.n_classes] {
                    *p /= sum;
                }
            }
        }
        c.finish_classes(row, preds);
        true
    }
}
