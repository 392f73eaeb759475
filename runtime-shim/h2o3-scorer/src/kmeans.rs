//! K-means (`KMeansMojoModel`): the index of the nearest center.
//!
//! With `standardize`, numeric values are imputed with `standardize_means`, centred and
//! scaled by `standardize_mults`, and missing levels imputed with `standardize_modes`
//! (genmodel's `Kmeans_preprocessData`). The distance is genmodel's `KMeans_distance`:
//! squared differences for numeric columns, 1 per mismatching level, missing values
//! skipped and the sum scaled up by `columns / non-missing columns`.

use crate::keys::{Keys, LoadResult};
use crate::model::{Common, Model};

#[derive(Debug)]
struct Standardize {
    means: Vec<f64>,
    mults: Vec<f64>,
    modes: Vec<i64>,
}

#[derive(Debug)]
pub(crate) struct KMeans {
    standardize: Option<Standardize>,
    centers: Vec<Vec<f64>>,
    categorical: Vec<bool>,
}

impl KMeans {
    pub(crate) fn read(keys: &Keys) -> LoadResult<KMeans> {
        let common = Common::read(keys)?;
        let n = common.n_features;
        let standardize = if keys.bool_or("standardize", false)? {
            let s = Standardize {
                means: keys.req_f64_array("standardize_means")?,
                mults: keys.req_f64_array("standardize_mults")?,
                modes: keys.opt_i64_array("standardize_modes")?.unwrap_or_default(),
            };
            if s.means.len() != n || s.mults.len() != n || s.modes.len() != n {
                return keys.invalid(format!(
                    "standardize_means/mults/modes must have {n} entries"
                ));
            }
            Some(s)
        } else {
            None
        };
        let k = keys.req_usize("center_num")?;
        let mut centers = Vec::with_capacity(k.min(1 << 16));
        for i in 0..k {
            let c = keys.req_f64_array(&format!("center_{i}"))?;
            if c.len() > n {
                return keys.invalid(format!(
                    "center_{i} has {} values for {n} features",
                    c.len()
                ));
            }
            centers.push(c);
        }
        Ok(KMeans {
            standardize,
            centers,
            categorical: common.cat_len.iter().map(|&l| l >= 0).collect(),
        })
    }

    fn distance(&self, center: &[f64], point: &[f64]) -> f64 {
        let mut dist = 0.0;
        let mut pts = point.len() as i64;
        for (i, &c) in center.iter().enumerate() {
            let d = point[i];
            if d.is_nan() {
                pts -= 1;
            } else if self.categorical[i] {
                if d != c {
                    dist += 1.0;
                }
            } else {
                let delta = d - c;
                dist += delta * delta;
            }
        }
        if 0 < pts && pts < point.len() as i64 {
            dist *= point.len() as f64 / pts as f64;
        }
        dist
    }
}

impl Model for KMeans {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        if let Some(s) = &self.standardize {
            for (i, x) in row.iter_mut().enumerate() {
                if s.modes[i] == -1 {
                    if x.is_nan() {
                        *x = s.means[i];
                    }
                    *x = (*x - s.means[i]) * s.mults[i];
                } else if x.is_nan() {
                    *x = s.modes[i] as f64;
                }
            }
        }
        let mut best = -1i64;
        let mut min = f64::MAX;
        for (i, c) in self.centers.iter().enumerate() {
            let d = self.distance(c, row);
            if d < min {
                best = i as i64;
                min = d;
            }
        }
        preds[0] = best as f64;
        true
    }
}
