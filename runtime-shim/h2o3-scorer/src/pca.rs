//! Principal Component Analysis (`PCAMojoModel`): the row projected on the first `k`
//! eigenvectors.
//!
//! Columns are visited through `permutation` (categoricals first); a categorical level
//! adds its eigenvector row (`catOffsets`, level 0 dropped unless
//! `use_all_factor_levels`; a missing or unseen level adds nothing), a numeric value adds
//! `(x - normSub) * normMul` times its row, so a missing number makes the component NaN.
//! The eigenvectors are the big-endian `f64` blob `eigenvectors_raw`
//! (`eigenvector_size` rows of `k`).

use crate::keys::{Keys, LoadError, LoadResult};
use crate::model::{Common, Model};

#[derive(Debug)]
pub(crate) struct Pca {
    k: usize,
    ncats: usize,
    nnums: usize,
    permutation: Vec<usize>,
    cat_offsets: Vec<usize>,
    norm_sub: Vec<f64>,
    norm_mul: Vec<f64>,
    use_all_levels: bool,
    /// `eigenvector_size` rows of `k`.
    eigen: Vec<Vec<f64>>,
}

impl Pca {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Pca> {
        let common = Common::read(keys)?;
        let k = keys.req_usize("k")?;
        let ncats = keys.req_usize("ncats")?;
        let nnums = keys.req_usize("nnums")?;
        let permutation = keys.opt_i64_array("permutation")?.unwrap_or_default();
        let cat_offsets = keys.opt_i64_array("catOffsets")?.unwrap_or_default();
        let (norm_sub, norm_mul) = if nnums == 0 {
            (Vec::new(), Vec::new())
        } else {
            (
                keys.req_f64_array("normSub")?,
                keys.req_f64_array("normMul")?,
            )
        };
        let size = keys.req_usize("eigenvector_size")?;
        let n = common.n_features;
        if ncats + nnums != n
            || permutation.len() != n
            || permutation.iter().any(|&p| p < 0 || p as usize >= n)
            || cat_offsets.len() != ncats + 1
            || cat_offsets.windows(2).any(|w| w[0] > w[1])
            || cat_offsets[0] < 0
            || norm_sub.len() < nnums
            || norm_mul.len() < nnums
            || cat_offsets[ncats] as usize + nnums > size
        {
            return keys.invalid(format!(
                "ncats = {ncats}, nnums = {nnums}, permutation, catOffsets {cat_offsets:?}, normSub/normMul and eigenvector_size = {size} do not describe {n} features"
            ));
        }
        let file = format!("{}eigenvectors_raw", keys.mojo.prefix);
        let blob = keys
            .blob("eigenvectors_raw")
            .ok_or_else(|| LoadError::Invalid {
                file: file.clone(),
                detail: "is missing".into(),
            })?;
        let need = size.checked_mul(k).and_then(|v| v.checked_mul(8));
        if need.is_none_or(|n| blob.len() < n) {
            return Err(LoadError::Invalid {
                file,
                detail: format!("has {} bytes, fewer than {size} × {k} doubles", blob.len()),
            });
        }
        let mut chunks = blob
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes(c.try_into().unwrap_or_default()));
        let eigen = (0..size)
            .map(|_| (0..k).map(|_| chunks.next().unwrap_or(f64::NAN)).collect())
            .collect();
        Ok(Pca {
            k,
            ncats,
            nnums,
            permutation: permutation.iter().map(|&p| p as usize).collect(),
            cat_offsets: cat_offsets.iter().map(|&o| o as usize).collect(),
            norm_sub,
            norm_mul,
            use_all_levels: keys.bool_or("use_all_factor_levels", false)?,
            eigen,
        })
    }

    pub(crate) fn k(&self) -> usize {
        self.k
    }
}

impl Model for Pca {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let num_start = self.cat_offsets[self.ncats];
        for (i, p) in preds.iter_mut().enumerate().take(self.k) {
            *p = 0.0;
            for j in 0..self.ncats {
                let tmp = row[self.permutation[j]];
                if tmp.is_nan() {
                    continue;
                }
                let last = self.cat_offsets[j + 1] as i64 - self.cat_offsets[j] as i64 - 1;
                let level = i64::from(tmp as i32) - i64::from(!self.use_all_levels);
                if level < 0 || level > last {
                    continue;
                }
                *p += self.eigen[self.cat_offsets[j] + level as usize][i];
            }
            for j in 0..self.nnums {
                *p += (row[self.permutation[self.ncats + j]] - self.norm_sub[j])
                    * self.norm_mul[j]
                    * self.eigen[num_start + j][i];
            }
        }
        true
    }
}
