//! Generalized Linear Models (`GlmMojoModel`, `GlmMultinomialMojoModel`,
//! `GlmOrdinalMojoModel`).
//!
//! The row is `[cats..., nums...]` (GLM MOJOs list categorical columns first). Mean
//! imputation fills missing values with `cat_modes`/`num_means`; then each categorical
//! level selects one coefficient (`cat_offsets[i] + level`, level 0 dropped unless
//! `use_all_factor_levels`), numeric columns multiply theirs, and the intercept is last.
//! A multinomial model has one such block of `P` coefficients per class. An ordinal model
//! has the same blocks, of which the first `K - 1` give the cumulative logits
//! `P(y <= c)` (the blocks share their slopes and differ in the intercept); the class
//! probabilities are the differences of consecutive logistic CDFs.

use crate::java::{jmax, jmin};
use crate::keys::{unsupported, Keys, LoadResult};
use crate::model::{Common, Model};

/// GLM and GAM link functions (`GenModel.GLM_*Inv`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GlmLink {
    Identity,
    Logit,
    Log,
    Inverse,
    Tweedie(f64),
}

impl GlmLink {
    /// The link named `name` (`LinkFunctionType`); the ordinal links are refused.
    pub(crate) fn read(keys: &Keys, name: &str) -> LoadResult<GlmLink> {
        Ok(match name {
            "identity" => GlmLink::Identity,
            "logit" => GlmLink::Logit,
            "log" => GlmLink::Log,
            "inverse" => GlmLink::Inverse,
            "tweedie" => GlmLink::Tweedie(keys.f64_or("tweedie_link_power", 0.0)?),
            other => return unsupported(format!("{} link {other:?}", keys.mojo.algo())),
        })
    }

    pub(crate) fn inv(self, x: f64) -> f64 {
        match self {
            GlmLink::Identity => x,
            GlmLink::Logit => 1.0 / ((-x).exp() + 1.0),
            GlmLink::Log => x.exp(),
            GlmLink::Inverse => {
                let xx = if x < 0.0 {
                    jmin(-1e-5, x)
                } else {
                    jmax(1e-5, x)
                };
                1.0 / xx
            }
            GlmLink::Tweedie(p) => {
                if p == 0.0 {
                    jmax(2e-16, x.exp())
                } else {
                    x.powf(1.0 / p)
                }
            }
        }
    }
}

/// Checks that `cat_offsets` holds `cats + 1` ascending, non-negative offsets (genmodel
/// indexes with them unchecked).
pub(crate) fn check_cat_offsets(keys: &Keys, cat_offsets: &[i64], cats: usize) -> LoadResult<()> {
    if cat_offsets.len() != cats + 1
        || cat_offsets.windows(2).any(|w| w[0] > w[1])
        || cat_offsets.first().is_some_and(|&o| o < 0)
    {
        return keys.invalid(format!(
            "cat_offsets {cat_offsets:?} is not {} ascending offsets",
            cats + 1
        ));
    }
    Ok(())
}

/// The coefficient layout shared by both GLM flavours.
#[derive(Debug)]
struct Layout {
    use_all_levels: bool,
    cats: usize,
    nums: usize,
    cat_offsets: Vec<usize>,
    cat_modes: Vec<f64>,
    num_means: Vec<f64>,
    mean_imputation: bool,
    beta: Vec<f64>,
}

impl Layout {
    fn read(keys: &Keys, n_features: usize) -> LoadResult<Layout> {
        let cats = keys.req_usize("cats")?;
        let nums = keys.req_usize("nums")?;
        let cat_offsets = keys.opt_i64_array("cat_offsets")?.unwrap_or_default();
        let cat_modes = keys.opt_i64_array("cat_modes")?.unwrap_or_default();
        let num_means = keys.opt_f64_array("num_means")?.unwrap_or_default();
        let mean_imputation = keys.bool_or("mean_imputation", false)?;
        let beta = keys.req_f64_array("beta")?;
        if cats + nums != n_features {
            return keys.invalid(format!(
                "cats = {cats} + nums = {nums} but the model has {n_features} features"
            ));
        }
        check_cat_offsets(keys, &cat_offsets, cats)?;
        if mean_imputation && (cat_modes.len() != cats || num_means.len() != nums) {
            return keys.invalid(format!(
                "mean imputation needs {cats} cat_modes and {nums} num_means, found {} and {}",
                cat_modes.len(),
                num_means.len()
            ));
        }
        Ok(Layout {
            use_all_levels: keys.bool_or("use_all_factor_levels", false)?,
            cats,
            nums,
            cat_offsets: cat_offsets.iter().map(|&o| o as usize).collect(),
            cat_modes: cat_modes.iter().map(|&m| m as f64).collect(),
            num_means,
            mean_imputation,
            beta,
        })
    }

    fn impute(&self, data: &mut [f64]) {
        if !self.mean_imputation {
            return;
        }
        for (d, &m) in data[..self.cats].iter_mut().zip(&self.cat_modes) {
            if d.is_nan() {
                *d = m;
            }
        }
        for (d, &m) in data[self.cats..self.cats + self.nums]
            .iter_mut()
            .zip(&self.num_means)
        {
            if d.is_nan() {
                *d = m;
            }
        }
    }

    /// The coefficient index each categorical value selects within a class block
    /// (`None` = no coefficient). `Err` where genmodel throws "categorical value out of
    /// range" (a missing level without imputation, or a non-integer level).
    fn cat_index(&self, i: usize, v: f64) -> Result<Option<usize>, ()> {
        let shift = if self.use_all_levels {
            0.0
        } else if v == 0.0 {
            return Ok(None);
        } else {
            1.0
        };
        let ival = (v as i32).wrapping_sub(shift as i32);
        if f64::from(ival) != v - shift {
            return Err(());
        }
        let idx = i64::from(ival) + self.cat_offsets[i] as i64;
        if idx < self.cat_offsets[i + 1] as i64 && idx >= 0 {
            Ok(Some(idx as usize))
        } else {
            Ok(None)
        }
    }
}

/// Binomial and regression GLMs (`GlmMojoModel`).
#[derive(Debug)]
pub(crate) struct Glm {
    common: Common,
    layout: Layout,
    link: GlmLink,
    binomial: bool,
    /// End of genmodel's numeric loop (`beta.length - 1 - noff`, `noff` =
    /// `cat_offsets[cats] - cats`, which is negative when dropped levels leave a factor
    /// without coefficients).
    num_end: usize,
}

impl Glm {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Glm> {
        let common = Common::read(keys)?;
        let family = keys.req_str("family")?;
        let layout = Layout::read(keys, common.n_features)?;
        let link = GlmLink::read(keys, keys.req_str("link")?)?;
        let noff = layout.cat_offsets[layout.cats] as i64 - layout.cats as i64;
        let num_end = layout.beta.len() as i64 - 1 - noff;
        if layout.beta.is_empty()
            || layout.cat_offsets[layout.cats] >= layout.beta.len()
            || num_end > common.n_features as i64
        {
            return keys.invalid(format!(
                "beta has {} coefficients, which does not fit cat_offsets {:?} and {} features",
                layout.beta.len(),
                layout.cat_offsets,
                common.n_features
            ));
        }
        let binomial = matches!(family, "binomial" | "fractionalbinomial" | "quasibinomial");
        if binomial != (keys.mojo.category() == "Binomial") {
            return unsupported(format!(
                "GLM family {family:?} with category {}",
                keys.mojo.category()
            ));
        }
        Ok(Glm {
            num_end: num_end.max(0) as usize,
            binomial,
            common,
            layout,
            link,
        })
    }
}

impl Model for Glm {
    fn score0(&self, data: &mut [f64], offset: f64, preds: &mut [f64]) -> bool {
        let l = &self.layout;
        l.impute(data);
        let mut eta = 0.0;
        for (i, &v) in data[..l.cats].iter().enumerate() {
            match l.cat_index(i, v) {
                Ok(Some(idx)) => eta += l.beta[idx],
                Ok(None) => {}
                Err(()) => return false,
            }
        }
        let first = l.cat_offsets[l.cats];
        let n = self.num_end.saturating_sub(l.cats);
        for (b, v) in l.beta[first..first + n]
            .iter()
            .zip(&data[l.cats..l.cats + n])
        {
            eta += b * v;
        }
        eta += l.beta[l.beta.len() - 1];
        eta += offset;
        link_prediction(
            preds,
            self.link.inv(eta),
            self.binomial,
            self.common.default_threshold,
        );
        true
    }
}

/// The tail of genmodel's GLM and GAM `score0` for one linear predictor: the mean `mu`,
/// or for a binomial model the label (`mu >= threshold`) and the two probabilities.
pub(crate) fn link_prediction(preds: &mut [f64], mu: f64, binomial: bool, threshold: f64) {
    if binomial {
        preds[0] = if mu >= threshold { 1.0 } else { 0.0 };
        preds[1] = 1.0 - mu;
        preds[2] = mu;
    } else {
        preds[0] = mu;
    }
}

/// Multinomial GLMs (`GlmMultinomialMojoModel`); the offset is not used, as in genmodel.
#[derive(Debug)]
pub(crate) struct GlmMultinomial {
    common: Common,
    layout: Layout,
    p: usize,
    noff: usize,
}

impl GlmMultinomial {
    pub(crate) fn read(keys: &Keys) -> LoadResult<GlmMultinomial> {
        let common = Common::read(keys)?;
        let layout = Layout::read(keys, common.n_features)?;
        let k = common.n_classes;
        if k == 0 || layout.beta.len() % k != 0 {
            return keys.invalid(format!(
                "beta has {} coefficients, not a multiple of {k} classes",
                layout.beta.len()
            ));
        }
        let p = layout.beta.len() / k;
        let noff = layout.cat_offsets[layout.cats];
        if p == 0 || noff + layout.nums > p - 1 || layout.cat_offsets[layout.cats] > p {
            return keys.invalid(format!(
                "{p} coefficients per class do not fit cat_offsets {:?} and {} numeric columns",
                layout.cat_offsets, layout.nums
            ));
        }
        Ok(GlmMultinomial {
            common,
            layout,
            p,
            noff,
        })
    }
}

impl Model for GlmMultinomial {
    fn score0(&self, data: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let l = &self.layout;
        let p = self.p;
        l.impute(data);
        preds[0] = 0.0;
        for c in 0..self.common.n_classes {
            preds[c + 1] = 0.0;
            if l.cats > 0 {
                for (i, &v) in data[..l.cats].iter().enumerate() {
                    match l.cat_index(i, v) {
                        Ok(Some(idx)) => preds[c + 1] += l.beta[idx + c * p],
                        Ok(None) => {}
                        Err(()) => return false,
                    }
                }
            }
            for i in 0..l.nums {
                preds[c + 1] += l.beta[self.noff + i + c * p] * data[i + l.cats];
            }
            preds[c + 1] += l.beta[(p - 1) + c * p];
        }
        softmax_label(preds);
        true
    }
}

/// The multinomial tail of genmodel's GLM and GAM scorers: the linear predictors in
/// `preds[1..]` become probabilities (softmax after subtracting the largest positive
/// one), and `preds[0]` the first most probable class (unchanged if none is above 0).
pub(crate) fn softmax_label(preds: &mut [f64]) {
    let mut max_row = 0.0;
    for &v in &preds[1..] {
        if v > max_row {
            max_row = v;
        }
    }
    let mut sum_exp = 0.0;
    for v in &mut preds[1..] {
        *v = (*v - max_row).exp();
        sum_exp += *v;
    }
    sum_exp = 1.0 / sum_exp;
    let mut max_p = 0.0;
    for c in 1..preds.len() {
        preds[c] *= sum_exp;
        if preds[c] > max_p {
            max_p = preds[c];
            preds[0] = (c - 1) as f64;
        }
    }
}

/// Ordinal GLMs (`GlmOrdinalMojoModel`): the proportional-odds model, laid out as a
/// multinomial one. Unlike the multinomial flavour it adds the offset to every cumulative
/// logit.
#[derive(Debug)]
pub(crate) struct GlmOrdinal(GlmMultinomial);

impl GlmOrdinal {
    pub(crate) fn read(keys: &Keys) -> LoadResult<GlmOrdinal> {
        let m = GlmMultinomial::read(keys)?;
        if m.common.n_classes < 2 {
            return keys.invalid(format!(
                "n_classes = {} for an ordinal model",
                m.common.n_classes
            ));
        }
        Ok(GlmOrdinal(m))
    }
}

impl Model for GlmOrdinal {
    fn score0(&self, data: &mut [f64], offset: f64, preds: &mut [f64]) -> bool {
        let m = &self.0;
        let l = &m.layout;
        let p = m.p;
        let last = m.common.n_classes - 1;
        l.impute(data);
        preds.fill(0.0);
        for c in 0..last {
            let mut eta = 0.0;
            for (i, &v) in data[..l.cats].iter().enumerate() {
                match l.cat_index(i, v) {
                    Ok(Some(idx)) => eta += l.beta[idx + c * p],
                    Ok(None) => {}
                    Err(()) => return false,
                }
            }
            for i in 0..l.nums {
                eta += l.beta[i + m.noff + c * p] * data[i + l.cats];
            }
            preds[c + 1] = eta + l.beta[p - 1 + c * p];
        }
        let mut previous = 0.0;
        for c in 0..last {
            let eta = preds[c + 1] + offset;
            let cdf = 1.0 / (1.0 + (-eta).exp());
            preds[c + 1] = cdf - previous;
            previous = cdf;
        }
        preds[last + 1] = 1.0 - previous;
        // genmodel: preds[0] = 0, then the first index of the largest value, minus one;
        // -1 (no probability above zero, e.g. NaN) makes its label lookup throw.
        preds[0] = 0.0;
        let mut best = 0;
        for i in 1..=last + 1 {
            if preds[i] > preds[best] {
                best = i;
            }
        }
        if best == 0 {
            return false;
        }
        preds[0] = (best - 1) as f64;
        true
    }
}
