//! The contract between the row encoder and the per-algorithm scorers, and the model
//! facts every algorithm reads the same way.
//!
//! Each algorithm implements [`Model::score0`] exactly like genmodel's `score0`: it gets
//! the encoded row (`n_features` doubles in `[columns]` order, categoricals as level
//! indices, missing as NaN) and fills genmodel's `preds` array. Keeping that shape lets a
//! stacked ensemble call its members like genmodel does, and keeps each scorer a
//! line-by-line match of the Java it mirrors.

use crate::classes::{correct_probabilities, get_prediction};
use crate::keys::{Keys, LoadResult};

/// One algorithm's scorer.
pub(crate) trait Model: Send + Sync + std::fmt::Debug {
    /// Genmodel's `score0(row, offset, preds)`. `row` may be changed (GLM imputes in
    /// place). Returns `false` when genmodel cannot score the row (it throws), in which
    /// case the caller reports no prediction.
    fn score0(&self, row: &mut [f64], offset: f64, preds: &mut [f64]) -> bool;

    /// Genmodel's prediction contributions of the encoded row (see [`crate::shap`]), for
    /// the models that have them; `None` otherwise and where genmodel throws.
    fn contributions(&self, _row: &[f64]) -> Option<Vec<f32>> {
        None
    }
}

/// Model facts that `ModelMojoReader.readAll` reads for every algorithm.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub n_features: usize,
    pub n_classes: usize,
    pub default_threshold: f64,
    pub balance_classes: bool,
    pub prior: Option<Vec<f64>>,
    pub model_distrib: Option<Vec<f64>>,
    pub mojo_version: f64,
    /// Domain size of each feature, `-1` for numeric features.
    pub cat_len: Vec<i32>,
}

impl Common {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Common> {
        let mojo = keys.mojo;
        let n_features = keys.usize_or("n_features", mojo.n_inputs())?;
        if n_features > mojo.ini.columns.len() {
            return keys.invalid(format!(
                "n_features = {n_features} but [columns] lists {} names",
                mojo.ini.columns.len()
            ));
        }
        let cat_len = mojo.domains[..n_features]
            .iter()
            .map(|d| d.as_ref().map_or(-1, |d| d.len() as i32))
            .collect();
        Ok(Common {
            n_features,
            n_classes: keys.usize_or("n_classes", 1)?,
            default_threshold: keys.f64_or("default_threshold", 0.5)?,
            balance_classes: keys.bool_or("balance_classes", false)?,
            prior: keys.opt_f64_array("prior_class_distrib")?,
            model_distrib: keys.opt_f64_array("model_class_distrib")?,
            mojo_version: keys.mojo_version()?,
            cat_len,
        })
    }

    /// The tail shared by tree classifiers: prior correction when classes were balanced,
    /// then the label into `preds[0]`.
    pub(crate) fn finish_classes(&self, row: &[f64], preds: &mut [f64]) {
        if self.balance_classes {
            if let (Some(p), Some(m)) = (&self.prior, &self.model_distrib) {
                correct_probabilities(preds, p, m);
            }
        }
        preds[0] = get_prediction(preds, self.prior.as_deref(), row, self.default_threshold) as f64;
    }
}
