//! Stacked Ensembles (`StackedEnsembleMojoModel`): base models scored on the ensemble's
//! row, their predictions fed to the metalearner.
//!
//! Each base model (`base_model<i>`, a sub-MOJO under `models/`) sees the ensemble's raw
//! row remapped to its own feature order by column name, exactly as genmodel's
//! `createMapping`/`remapRow` do (level indices are passed through unchanged). The
//! metalearner's row is: the class-1 probability of each base model (binomial), every
//! class probability (multinomial, base-major), or the prediction (regression),
//! optionally logit-transformed (`metalearner_transform = Logit`).

use crate::java::jmax;
use crate::keys::{unsupported, Keys, LoadResult};
use crate::model::{Common, Model};
use crate::{build, Render};

#[derive(Debug)]
struct Base {
    model: Box<dyn Model>,
    /// Ensemble row index of each of the base model's features.
    mapping: Vec<usize>,
}

#[derive(Debug)]
pub(crate) struct StackedEnsemble {
    n_classes: usize,
    /// `None` where `base_model<i>` is null (genmodel skips it, leaving zeros).
    bases: Vec<Option<Base>>,
    metalearner: Box<dyn Model>,
    logit: bool,
    preds_len: usize,
}

fn logit(x: f64) -> f64 {
    let y = x / (1.0 - x);
    if y == 0.0 {
        -19.0
    } else {
        jmax(-19.0, y.ln())
    }
}

impl StackedEnsemble {
    pub(crate) fn read(keys: &Keys, preds_len: usize) -> LoadResult<StackedEnsemble> {
        let common = Common::read(keys)?;
        let mojo = keys.mojo;
        let sub = |key: &str| {
            mojo.submodels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, m)| m)
        };
        let n = keys.usize_or("base_models_num", 0)?;
        let logit = match keys.raw("metalearner_transform") {
            None | Some("NONE") => false,
            Some("Logit") => true,
            Some(other) => return unsupported(format!("metalearner transform {other:?}")),
        };
        let mut bases = Vec::with_capacity(n.min(1 << 16));
        for i in 0..n {
            let key = match keys.raw(&format!("base_model{i}")) {
                None | Some("null") => {
                    bases.push(None);
                    continue;
                }
                Some(k) => k,
            };
            let Some(m) = sub(key) else {
                return keys.invalid(format!("base model {key:?} is not one of the sub-models"));
            };
            let built = build(m, keys.files, false)?;
            let mut mapping = Vec::with_capacity(built.n_features);
            for name in &m.ini.columns[..built.n_features] {
                match mojo.ini.columns[..common.n_features]
                    .iter()
                    .position(|c| c == name)
                {
                    Some(at) => mapping.push(at),
                    None => {
                        return keys.invalid(format!(
                            "base model {key:?} needs column {name:?}, which is not an input of the ensemble"
                        ))
                    }
                }
            }
            let fits = match (&built.render, common.n_classes) {
                (Render::Classes(d), k) if k >= 2 => d.len() == k,
                (Render::Values(_), 1) => true,
                _ => false,
            };
            if !fits {
                return keys.invalid(format!(
                    "base model {key:?} ({} / {}) does not predict what a {}-class ensemble needs",
                    m.algo(),
                    m.category(),
                    common.n_classes
                ));
            }
            bases.push(Some(Base {
                model: built.model,
                mapping,
            }));
        }
        let meta_key = keys.req_str("metalearner")?;
        let Some(meta) = sub(meta_key) else {
            return keys.invalid(format!(
                "metalearner {meta_key:?} is not one of the sub-models"
            ));
        };
        let meta_built = build(meta, keys.files, false)?;
        let width = if common.n_classes > 2 {
            n * common.n_classes
        } else {
            n
        };
        if meta_built.n_features != width || meta_built.preds_len > preds_len {
            return keys.invalid(format!(
                "the metalearner takes {} features and gives {} values; the ensemble makes {width} and needs {preds_len}",
                meta_built.n_features, meta_built.preds_len
            ));
        }
        Ok(StackedEnsemble {
            n_classes: common.n_classes,
            bases,
            metalearner: meta_built.model,
            logit,
            preds_len,
        })
    }
}

impl Model for StackedEnsemble {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let k = self.n_classes;
        let per = if k > 2 { k } else { 1 };
        let mut base_preds = vec![0.0; self.bases.len() * per];
        let mut tmp = vec![0.0; self.preds_len];
        let mut sub_row = Vec::new();
        for (b, base) in self.bases.iter().enumerate() {
            let Some(base) = base else { continue };
            sub_row.clear();
            sub_row.extend(base.mapping.iter().map(|&i| row[i]));
            if !base.model.score0(&mut sub_row, 0.0, &mut tmp) {
                return false;
            }
            if k > 2 {
                base_preds[b * k..(b + 1) * k].copy_from_slice(&tmp[1..=k]);
            } else if k == 2 {
                base_preds[b] = tmp[2];
            } else {
                base_preds[b] = tmp[0];
            }
        }
        if self.logit && k >= 2 {
            for v in &mut base_preds {
                *v = logit(crate::java::jmin(0.999999999, jmax(*v, 1e-9)));
            }
        }
        self.metalearner.score0(&mut base_preds, 0.0, preds)
    }
}
