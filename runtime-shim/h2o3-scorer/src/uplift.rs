//! Uplift DRF (`UpliftDrfMojoModel`, category `BinomialUplift`): two forests in one, the
//! probability of the positive response with and without the treatment.
//!
//! Each tree group holds two trees, `trees/t00_GGG.bin` (treatment) and
//! `trees/t01_GGG.bin` (control), stored and walked like DRF's. Genmodel sums each class's
//! trees into `preds[1]` and `preds[2]`, divides both by the number of groups and writes
//! their difference into `preds[0]`: the three outputs `uplift_predict,
//! p_y1_with_treatment, p_y1_without_treatment`, which is what the H2O cluster predicts.
//! The row is the features only: the treatment column follows them in `[columns]`, past
//! `n_features`, so genmodel's row API never reads it (nor the response).

use crate::keys::{unsupported, Keys, LoadResult};
use crate::model::{Common, Model};
use crate::sharedtree::Forest;

/// Why an uplift model has no contributions.
pub(crate) const NO_CONTRIBUTIONS: &str =
    "genmodel computes no contributions for Uplift DRF (UpliftDrfMojoModel has no contributions \
     predictor; PredictCsv and the wrapper refuse)";

#[derive(Debug)]
pub(crate) struct UpliftDrf {
    forest: Forest,
}

impl UpliftDrf {
    pub(crate) fn read(keys: &Keys) -> LoadResult<UpliftDrf> {
        let common = Common::read(keys)?;
        if common.n_classes != 2 {
            return unsupported(format!(
                "Uplift DRF with n_classes = {} (genmodel scores binomial uplift only)",
                common.n_classes
            ));
        }
        Ok(UpliftDrf {
            forest: Forest::read(keys, &common)?,
        })
    }
}

impl Model for UpliftDrf {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        // scoreAllTrees, then unifyPreds
        self.forest.score_all(row, 2, preds);
        let n = self.forest.groups as f64;
        preds[1] /= n;
        preds[2] /= n;
        preds[0] = preds[1] - preds[2];
        true
    }
}
