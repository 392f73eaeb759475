//! Generalized Low Rank Models (`GlrmMojoModel`): the X factor of a row, solved for by
//! genmodel's iterative proximal gradient method.
//!
//! For each row genmodel draws a Gaussian start for `x` from `java.util.Random(seed + n)`,
//! where `n` counts the rows the loaded model has scored so far, then takes up to 100
//! steps, each trying ten step sizes (`0.5^1 .. 0.5^10`, scaled down when the objective
//! exceeds 10) and keeping the best, until the relative improvement falls below 1e-10.
//! The objective is the per-column loss of `x · Y` against the standardized row plus
//! `gammaX` times the X regularizer. This module reproduces all of it, including the
//! row counter, so a fresh scorer fed rows in the same order as `PredictCsv` gives the
//! same numbers; the counter makes a row's result depend on how many rows the scorer
//! has seen, exactly as in genmodel.
//!
//! Supported: losses `Quadratic` (numeric) and `Categorical`, regularizers `None`,
//! `Quadratic`, `L2` and `L1`; other losses and regularizers are refused.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::java::{jmax, jmin, JavaRandom};
use crate::keys::{unsupported, Keys, LoadError, LoadResult};
use crate::model::{Common, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Quadratic,
    Categorical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Regularizer {
    None,
    Quadratic,
    L2,
    L1,
}

impl Regularizer {
    fn regularize(self, u: &[f64]) -> f64 {
        match self {
            Regularizer::None => 0.0,
            Regularizer::Quadratic => u.iter().fold(0.0, |s, &x| s + x * x),
            Regularizer::L2 => u.iter().fold(0.0, |s, &x| s + x * x).sqrt(),
            Regularizer::L1 => u.iter().fold(0.0, |s, &x| s + x.abs()),
        }
    }

    /// `rproxgrad(u, alpha)`; `None` means "u itself".
    fn rproxgrad(self, u: &[f64], alpha: f64) -> Option<Vec<f64>> {
        if self == Regularizer::None || alpha == 0.0 {
            return None;
        }
        Some(match self {
            Regularizer::Quadratic => {
                let f = 1.0 / (1.0 + 2.0 * alpha);
                u.iter().map(|&x| x * f).collect()
            }
            Regularizer::L2 => {
                let norm = u.iter().fold(0.0, |s, &x| s + x * x).sqrt();
                let f = 1.0 - alpha / norm;
                if f < 0.0 {
                    vec![0.0; u.len()]
                } else {
                    u.iter().map(|&x| x * f).collect()
                }
            }
            Regularizer::L1 => u
                .iter()
                .map(|&x| jmax(x - alpha, 0.0) + jmin(x + alpha, 0.0))
                .collect(),
            Regularizer::None => return None,
        })
    }
}

/// `java.util.Random.nextGaussian`, with its cached second value.
struct Gaussian {
    rng: JavaRandom,
    next: Option<f64>,
}

impl Gaussian {
    fn next(&mut self) -> f64 {
        if let Some(v) = self.next.take() {
            return v;
        }
        loop {
            let v1 = 2.0 * self.rng.next_double() - 1.0;
            let v2 = 2.0 * self.rng.next_double() - 1.0;
            let s = v1 * v1 + v2 * v2;
            if s < 1.0 && s != 0.0 {
                let m = (-2.0 * s.ln() / s).sqrt();
                self.next = Some(v2 * m);
                return v1 * m;
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Glrm {
    ncol_a: usize,
    ncol_x: usize,
    ncats: usize,
    num_levels: Vec<usize>,
    permutation: Vec<usize>,
    regx: Regularizer,
    gammax: f64,
    norm_sub: Vec<f64>,
    norm_mul: Vec<f64>,
    /// `nrowY` (= `ncolX`) rows of `ncolY`.
    archetypes: Vec<Vec<f64>>,
    seed: i64,
    rows_scored: AtomicU64,
    alphas: [f64; 10],
}

const ITERATIONS: usize = 100;
const ACCURACY_EPS: f64 = 1e-10;

impl Glrm {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Glrm> {
        let common = Common::read(keys)?;
        let ncol_a = keys.req_usize("ncolA")?;
        let ncol_y = keys.req_usize("ncolY")?;
        let nrow_y = keys.req_usize("nrowY")?;
        let ncol_x = keys.req_usize("ncolX")?;
        let regx = match keys.req_str("regularizationX")? {
            "None" => Regularizer::None,
            "Quadratic" => Regularizer::Quadratic,
            "L2" => Regularizer::L2,
            "L1" => Regularizer::L1,
            other => return unsupported(format!("GLRM regularizer {other:?}")),
        };
        let gammax = keys.req_f64("gammaX")?;
        let ncats = keys.req_usize("num_categories")?;
        let nnums = keys.req_usize("num_numeric")?;
        let norm_sub = keys.opt_f64_array("norm_sub")?.unwrap_or_default();
        let norm_mul = keys.opt_f64_array("norm_mul")?.unwrap_or_default();
        let permutation = keys.opt_i64_array("cols_permutation")?.unwrap_or_default();
        let num_levels = keys
            .opt_i64_array("num_levels_per_category")?
            .unwrap_or_default();
        // Without these keys genmodel seeds from the clock: not reproducible.
        if keys.raw("reverse_transform").is_none() || keys.raw("transposed").is_none() {
            return unsupported("a GLRM MOJO without reverse_transform/transposed (genmodel seeds it from the clock)");
        }
        let seed = keys.opt_i64("seed")?.unwrap_or(0);
        let file = format!("{}losses", keys.mojo.prefix);
        let text = keys.blob("losses").ok_or_else(|| LoadError::Invalid {
            file: file.clone(),
            detail: "is missing".into(),
        })?;
        let mut losses = Vec::new();
        for line in String::from_utf8_lossy(text).lines() {
            match line.trim() {
                "Quadratic" => losses.push(Loss::Quadratic),
                "Categorical" => losses.push(Loss::Categorical),
                "" => {}
                other => return unsupported(format!("GLRM loss {other:?}")),
            }
        }
        let n = common.n_features;
        let levels_sum: i64 = num_levels.iter().take(ncats).sum();
        let valid = ncats + nnums == ncol_a
            && nrow_y == ncol_x
            && losses.len() >= ncol_a
            && permutation.len() >= ncol_a
            && permutation[..ncol_a]
                .iter()
                .all(|&p| p >= 0 && (p as usize) < n)
            && num_levels.len() >= ncats
            && num_levels[..ncats].iter().all(|&l| l > 0)
            && losses[..ncats].iter().all(|&l| l == Loss::Categorical)
            && losses[ncats..ncol_a].iter().all(|&l| l == Loss::Quadratic)
            && norm_sub.len() >= nnums
            && norm_mul.len() >= nnums
            && levels_sum as usize + nnums <= ncol_y;
        if !valid {
            return keys.invalid(format!(
                "ncolA = {ncol_a}, ncolX = {ncol_x}, nrowY = {nrow_y}, ncolY = {ncol_y}, {ncats} categorical and {nnums} numeric columns, cols_permutation, num_levels_per_category, losses and norm_sub/norm_mul do not fit together"
            ));
        }
        let afile = format!("{}archetypes", keys.mojo.prefix);
        let blob = keys.blob("archetypes").ok_or_else(|| LoadError::Invalid {
            file: afile.clone(),
            detail: "is missing".into(),
        })?;
        if nrow_y
            .checked_mul(ncol_y)
            .and_then(|v| v.checked_mul(8))
            .is_none_or(|need| blob.len() < need)
        {
            return Err(LoadError::Invalid {
                file: afile,
                detail: format!(
                    "has {} bytes, fewer than {nrow_y} × {ncol_y} doubles",
                    blob.len()
                ),
            });
        }
        let mut values = blob
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().unwrap_or_default()));
        let archetypes = (0..nrow_y)
            .map(|_| {
                (0..ncol_y)
                    .map(|_| values.next().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        let mut alphas = [0.0; 10];
        let mut a = 1.0;
        for slot in &mut alphas {
            a *= 0.5;
            *slot = a;
        }
        Ok(Glrm {
            ncol_a,
            ncol_x,
            ncats,
            num_levels: num_levels[..ncats].iter().map(|&l| l as usize).collect(),
            permutation: permutation[..ncol_a].iter().map(|&p| p as usize).collect(),
            regx,
            gammax,
            norm_sub,
            norm_mul,
            archetypes,
            seed,
            rows_scored: AtomicU64::new(0),
            alphas,
        })
    }

    pub(crate) fn ncol_x(&self) -> usize {
        self.ncol_x
    }

    /// `x · Y_j` for the levels of a categorical column starting at `offset`.
    fn xy_levels(&self, x: &[f64], offset: usize, n_levels: usize) -> Vec<f64> {
        let mut xy = vec![0.0; n_levels];
        for (level, v) in xy.iter_mut().enumerate() {
            for (k, &xk) in x.iter().enumerate() {
                *v += xk * self.archetypes[k][level + offset];
            }
        }
        xy
    }

    fn xy_num(&self, x: &[f64], col: usize) -> f64 {
        let mut xy = 0.0;
        for (k, &xk) in x.iter().enumerate() {
            xy += xk * self.archetypes[k][col];
        }
        xy
    }

    fn objective(&self, x: &[f64], a: &[f64]) -> f64 {
        let mut res = 0.0;
        let mut offset = 0;
        for (j, &aj) in a[..self.ncats].iter().enumerate() {
            if aj.is_nan() {
                continue; // genmodel does not advance the offset past a missing column
            }
            let n = self.num_levels[j];
            let xy = self.xy_levels(x, offset, n);
            let t = aj as usize;
            let mut sum = 0.0;
            for &u in &xy {
                sum += jmax(1.0 + u, 0.0);
            }
            sum += jmax(1.0 - xy[t], 0.0) - jmax(1.0 + xy[t], 0.0);
            res += sum;
            offset += n;
        }
        for (js, &aj) in a[self.ncats..].iter().enumerate() {
            if aj.is_nan() {
                continue;
            }
            let xy = self.xy_num(x, js + offset);
            let d = xy - (aj - self.norm_sub[js]) * self.norm_mul[js];
            res += d * d;
        }
        res + self.gammax * self.regx.regularize(x)
    }

    fn gradient(&self, x: &[f64], a: &[f64]) -> Vec<f64> {
        let mut grad = vec![0.0; self.ncol_x];
        let mut offset = 0;
        for (j, &aj) in a[..self.ncats].iter().enumerate() {
            if aj.is_nan() {
                continue;
            }
            let n = self.num_levels[j];
            let xy = self.xy_levels(x, offset, n);
            let t = aj as usize;
            let mut g: Vec<f64> = xy
                .iter()
                .map(|&u| if 1.0 + u > 0.0 { 1.0 } else { 0.0 })
                .collect();
            g[t] = if 1.0 - xy[t] > 0.0 { -1.0 } else { 0.0 };
            for (k, gk) in grad.iter_mut().enumerate() {
                for (c, &gc) in g.iter().enumerate() {
                    *gk += gc * self.archetypes[k][c + offset];
                }
            }
            offset += n;
        }
        for (js, &aj) in a[self.ncats..].iter().enumerate() {
            if aj.is_nan() {
                continue;
            }
            let xy = self.xy_num(x, js + offset);
            let g = 2.0 * (xy - (aj - self.norm_sub[js]) * self.norm_mul[js]);
            for (k, gk) in grad.iter_mut().enumerate() {
                *gk += g * self.archetypes[k][js + offset];
            }
        }
        grad
    }

    /// `applyBestAlpha`: the best of ten step sizes; updates `x` if it improves.
    fn apply_best_alpha(
        &self,
        u: &mut [f64],
        x: &mut [f64],
        grad: &[f64],
        a: &[f64],
        old: f64,
    ) -> f64 {
        let mut best = vec![0.0; x.len()];
        let mut min = f64::MAX;
        if old == 0.0 {
            return 0.0;
        }
        let coef = if old > 10.0 { 1.0 / old } else { 1.0 };
        for &factor in &self.alphas {
            let alpha = factor * coef;
            for k in 0..self.ncol_x {
                u[k] = x[k] - alpha * grad[k];
            }
            let prox = self.regx.rproxgrad(u, alpha * self.gammax);
            let xnew: &[f64] = prox.as_deref().unwrap_or(u);
            let obj = self.objective(xnew, a);
            if min > obj {
                best.copy_from_slice(xnew);
                min = obj;
            }
            if obj == 0.0 {
                break;
            }
        }
        if min < old {
            x.copy_from_slice(&best);
        }
        min
    }
}

impl Model for Glrm {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let n = self.rows_scored.fetch_add(1, Ordering::SeqCst);
        let seed = self.seed.wrapping_add(n as i64);
        let mut a = vec![0.0; self.ncol_a];
        for (j, v) in a.iter_mut().enumerate() {
            let d = row[self.permutation[j]];
            *v = if j < self.ncats && d >= self.num_levels[j] as f64 {
                f64::NAN
            } else {
                d
            };
        }
        let mut gauss = Gaussian {
            rng: JavaRandom::new(seed),
            next: None,
        };
        let mut x: Vec<f64> = (0..self.ncol_x).map(|_| gauss.next()).collect();
        let mut u = vec![0.0; self.ncol_x];
        let mut old = self.objective(&x, &a);
        let mut done = false;
        let mut iters = 0;
        while !done && iters < ITERATIONS {
            iters += 1;
            let grad = self.gradient(&x, &a);
            let obj = self.apply_best_alpha(&mut u, &mut x, &grad, &a, old);
            let improvement = 1.0 - obj / old;
            if improvement < 0.0 || improvement < ACCURACY_EPS {
                done = true;
            }
            old = obj;
        }
        preds[..self.ncol_x].copy_from_slice(&x);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_matches_the_jdk() {
        // new java.util.Random(1234): nextGaussian() twice.
        let mut g = Gaussian {
            rng: JavaRandom::new(1234),
            next: None,
        };
        assert_eq!(g.next(), 0.14115907833078006);
        assert_eq!(g.next(), 0.4346588858045114);
    }
}
