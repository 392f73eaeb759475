//! Deep Learning (`DeeplearningMojoModel`): a feed-forward network over the one-hot and
//! standardized input.
//!
//! The input layer is genmodel's `setInput`: one slot per categorical level plus a
//! missing-level slot (`cat_offsets`), then the numeric columns standardized with
//! `norm_sub`/`norm_mul`, missing numbers as 0. Each layer computes its pre-activations
//! exactly as genmodel's `NeuralNetwork.formNNInputs` does (weights stored as `f32`,
//! eight partial sums per neuron added in a fixed order, the remainder, then the bias),
//! so the rounding matches bit for bit. Hidden layers use the model's activation, the
//! output layer softmax (classifiers), linear (regression) or the hidden activation
//! (auto-encoders). Maxout networks are refused.

use crate::classes::{correct_probabilities, get_prediction};
use crate::keys::{unsupported, Keys, LoadResult};
use crate::model::{Common, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    Linear,
    Softmax,
    Tanh,
    Rectifier,
    ExpRectifier,
}

#[derive(Debug)]
struct Layer {
    activation: Activation,
    /// Output scaling `1 - dropout` of the `*WithDropout` activations, when below 1.
    dropout_scale: Option<f64>,
    weights: Vec<f32>,
    bias: Vec<f64>,
    n_in: usize,
    n_out: usize,
}

impl Layer {
    /// `formNNInputs` then the activation.
    fn forward(&self, input: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.n_out, 0.0);
        let cols = self.n_in;
        let extra = cols - cols % 8;
        let multiple = (cols / 8 * 8) as i64 - 1;
        for (row, o) in out.iter_mut().enumerate() {
            let w = &self.weights[row * cols..(row + 1) * cols];
            let mut p = [0.0f64; 8];
            let mut col = 0usize;
            while (col as i64) < multiple {
                for (k, acc) in p.iter_mut().enumerate() {
                    *acc += f64::from(w[col + k]) * input[col + k];
                }
                col += 8;
            }
            *o += p[0] + p[1] + p[2] + p[3];
            *o += p[4] + p[5] + p[6] + p[7];
            for c in extra..cols {
                *o += f64::from(w[c]) * input[c];
            }
            *o += self.bias[row];
        }
        match self.activation {
            Activation::Linear => {}
            Activation::Softmax => {
                let mut max = out[0];
                for &x in out.iter() {
                    max = if max < x { x } else { max };
                }
                let mut scaling = 0.0;
                for x in out.iter_mut() {
                    *x = (*x - max).exp();
                    scaling += *x;
                }
                for x in out.iter_mut() {
                    *x /= scaling;
                }
            }
            Activation::Tanh => {
                for x in out.iter_mut() {
                    *x = 1.0 - 2.0 / (1.0 + (2.0 * *x).exp());
                }
            }
            Activation::Rectifier => {
                for x in out.iter_mut() {
                    *x = 0.5 * (*x + x.abs());
                }
            }
            Activation::ExpRectifier => {
                for x in out.iter_mut() {
                    // `x >= 0 ? x : exp(x) - 1`; NaN takes the second branch (still NaN).
                    if *x < 0.0 || x.is_nan() {
                        *x = x.exp() - 1.0;
                    }
                }
            }
        }
        if let Some(m) = self.dropout_scale {
            for x in out.iter_mut() {
                *x *= m;
            }
        }
    }
}

/// Which `DistributionFamily` inverse link genmodel's Deep Learning applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DlLink {
    Logistic,
    Exp,
    Identity,
}

#[derive(Debug)]
enum Head {
    Classes,
    Regression {
        resp: Option<(f64, f64)>,
        link: DlLink,
    },
    AutoEncoder,
}

#[derive(Debug)]
pub(crate) struct DeepLearning {
    common: Common,
    cats: usize,
    nums: usize,
    cat_offsets: Vec<i64>,
    norm_mul: Vec<f64>,
    norm_sub: Vec<f64>,
    use_all_levels: bool,
    n_input: usize,
    layers: Vec<Layer>,
    head: Head,
}

impl DeepLearning {
    pub(crate) fn read(keys: &Keys) -> LoadResult<DeepLearning> {
        let common = Common::read(keys)?;
        let category = keys.mojo.category();
        let cats = keys.req_usize("cats")?;
        let nums = keys.req_usize("nums")?;
        let cat_offsets = keys.opt_i64_array("cat_offsets")?.unwrap_or_default();
        let norm_mul = keys.opt_f64_array("norm_mul")?.unwrap_or_default();
        let norm_sub = keys.opt_f64_array("norm_sub")?.unwrap_or_default();
        let units = keys
            .opt_i64_array("neural_network_sizes")?
            .unwrap_or_default();
        let dropout = keys
            .opt_f64_array("hidden_dropout_ratios")?
            .unwrap_or_default();
        let activation = keys.req_str("activation")?;
        let (hidden, with_dropout) = match activation {
            "Tanh" => (Activation::Tanh, false),
            "TanhWithDropout" => (Activation::Tanh, true),
            "Rectifier" => (Activation::Rectifier, false),
            "RectifierWithDropout" => (Activation::Rectifier, true),
            "ExpRectifier" => (Activation::ExpRectifier, false),
            "ExpRectifierWithDropout" => (Activation::ExpRectifier, true),
            other => return unsupported(format!("Deep Learning activation {other:?}")),
        };
        if cats + nums != common.n_features {
            return keys.invalid(format!(
                "cats = {cats} + nums = {nums} but the model has {} features",
                common.n_features
            ));
        }
        if cat_offsets.len() != cats + 1
            || cat_offsets.windows(2).any(|w| w[0] > w[1])
            || cat_offsets[0] < 0
        {
            return keys.invalid(format!(
                "cat_offsets {cat_offsets:?} is not {} ascending offsets",
                cats + 1
            ));
        }
        if !norm_mul.is_empty() && (norm_mul.len() < nums || norm_sub.len() < nums) {
            return keys.invalid("norm_mul/norm_sub are shorter than the numeric columns");
        }
        if units.len() < 2 || units.iter().any(|&u| u <= 0 || u > 1 << 24) {
            return keys.invalid(format!("neural_network_sizes {units:?}"));
        }
        let n_input = units[0] as usize;
        if n_input != cat_offsets[cats] as usize + nums {
            return keys.invalid(format!(
                "the input layer has {n_input} units, but cat_offsets and nums give {}",
                cat_offsets[cats] as usize + nums
            ));
        }
        let n_layers = units.len() - 1;
        if dropout.len() < n_layers {
            return keys.invalid(format!(
                "hidden_dropout_ratios has {} entries for {n_layers} layers",
                dropout.len()
            ));
        }
        let auto_encoder = category == "AutoEncoder";
        let classifier = matches!(category, "Binomial" | "Multinomial");
        let dist = keys.req_str("distribution")?;
        let link =
            match dist {
                "bernoulli" | "quasibinomial" | "ordinal" => DlLink::Logistic,
                "multinomial" | "poisson" | "gamma" | "tweedie" => DlLink::Exp,
                "modified_huber" => return unsupported(
                    "Deep Learning with distribution modified_huber (genmodel gives it no label)",
                ),
                _ => DlLink::Identity,
            };
        let head = if auto_encoder {
            if units[n_layers] != units[0] {
                return keys.invalid(format!(
                    "an auto-encoder's output layer has {} units, its input {}",
                    units[n_layers], units[0]
                ));
            }
            Head::AutoEncoder
        } else if classifier {
            if units[n_layers] as usize != common.n_classes {
                return keys.invalid(format!(
                    "the output layer has {} units for {} classes",
                    units[n_layers], common.n_classes
                ));
            }
            Head::Classes
        } else if category == "Regression" {
            let resp = match (
                keys.opt_f64_array("norm_resp_mul")?,
                keys.opt_f64_array("norm_resp_sub")?,
            ) {
                (Some(m), Some(s)) if !m.is_empty() && !s.is_empty() => Some((m[0], s[0])),
                (None, _) => None,
                _ => return keys.invalid("norm_resp_mul/norm_resp_sub are incomplete"),
            };
            Head::Regression { resp, link }
        } else {
            return unsupported(format!("Deep Learning models of category {category}"));
        };
        let mut layers = Vec::with_capacity(n_layers);
        for l in 0..n_layers {
            let (n_in, n_out) = (units[l] as usize, units[l + 1] as usize);
            let bias = keys
                .opt_f64_array(&format!("bias_layer{l}"))?
                .unwrap_or_default();
            let weights: Vec<f32> = keys
                .opt_f64_array(&format!("weight_layer{l}"))?
                .unwrap_or_default()
                .iter()
                .map(|&w| w as f32)
                .collect();
            if weights.len() != n_in * n_out || bias.len() != n_out {
                return keys.invalid(format!(
                    "layer {l}: {} weights and {} biases for {n_in} inputs and {n_out} outputs",
                    weights.len(),
                    bias.len()
                ));
            }
            let last = l + 1 == n_layers;
            let activation = if last && !auto_encoder {
                if classifier {
                    Activation::Softmax
                } else {
                    Activation::Linear
                }
            } else {
                hidden
            };
            let ratio = dropout[l];
            let dropout_scale =
                (activation == hidden && with_dropout && ratio > 0.0).then_some(1.0 - ratio);
            layers.push(Layer {
                activation,
                dropout_scale,
                weights,
                bias,
                n_in,
                n_out,
            });
        }
        Ok(DeepLearning {
            common,
            cats,
            nums,
            cat_offsets,
            norm_mul,
            norm_sub,
            use_all_levels: keys.bool_or("use_all_factor_levels", true)?,
            n_input,
            layers,
            head,
        })
    }

    /// Size of the output (the reconstruction for an auto-encoder).
    pub(crate) fn n_outputs(&self) -> usize {
        match self.head {
            Head::AutoEncoder => self.n_input,
            Head::Classes => self.common.n_classes,
            Head::Regression { .. } => 1,
        }
    }

    /// Genmodel's `setInput` with missing numbers replaced by 0.
    fn set_input(&self, row: &[f64], to: &mut [f64]) {
        to.fill(0.0);
        for (i, &v) in row[..self.cats].iter().enumerate() {
            let (lo, hi) = (self.cat_offsets[i], self.cat_offsets[i + 1]);
            let mut slot = if v.is_nan() {
                hi - 1
            } else {
                let c = i64::from(v as i32);
                if self.use_all_levels {
                    c + lo
                } else if c != 0 {
                    c - 1 + lo
                } else {
                    -1
                }
            };
            if slot >= hi {
                slot = hi - 1;
            }
            if slot >= 0 {
                to[slot as usize] = 1.0;
            }
        }
        let base = self.cat_offsets[self.cats] as usize;
        for (i, &v) in row[self.cats..self.cats + self.nums].iter().enumerate() {
            let d = if self.norm_mul.is_empty() {
                v
            } else {
                (v - self.norm_sub[i]) * self.norm_mul[i]
            };
            to[base + i] = if d.is_nan() { 0.0 } else { d };
        }
    }
}

impl Model for DeepLearning {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        LAYERS.with_borrow_mut(|(input, out)| {
            input.clear();
            input.resize(self.n_input, 0.0);
            self.set_input(row, input);
            for layer in &self.layers {
                layer.forward(input, out);
                std::mem::swap(input, out);
            }
            self.finish(input, row, preds)
        })
    }
}

thread_local! {
    /// The activations of the row being scored (input, output of a layer), reused so
    /// that a row costs no allocation.
    static LAYERS: std::cell::RefCell<(Vec<f64>, Vec<f64>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

impl DeepLearning {
    /// The prediction from the last layer's output `out`.
    fn finish(&self, out: &[f64], row: &[f64], preds: &mut [f64]) -> bool {
        match &self.head {
            Head::AutoEncoder => {
                if self.norm_mul.is_empty() {
                    preds[..out.len()].copy_from_slice(out);
                } else {
                    let node = out.len() - self.nums;
                    preds[..node].copy_from_slice(&out[..node]);
                    for k in 0..self.nums {
                        preds[node + k] = out[node + k] / self.norm_mul[k] + self.norm_sub[k];
                    }
                }
            }
            Head::Classes => {
                for (p, &o) in preds[1..].iter_mut().zip(out) {
                    if o.is_nan() {
                        return false;
                    }
                    *p = o;
                }
                let c = &self.common;
                if c.balance_classes {
                    if let (Some(p), Some(m)) = (&c.prior, &c.model_distrib) {
                        correct_probabilities(preds, p, m);
                    }
                }
                preds[0] =
                    get_prediction(preds, c.prior.as_deref(), row, c.default_threshold) as f64;
            }
            Head::Regression { resp, link } => {
                let mut v = match resp {
                    Some((mul, sub)) => out[0] / mul + sub,
                    None => out[0],
                };
                v = match link {
                    DlLink::Logistic => 1.0 / (1.0 + crate::java::jmin(1e19, (-v).exp())),
                    DlLink::Exp => crate::java::jmin(1e19, v.exp()),
                    DlLink::Identity => v,
                };
                if v.is_nan() {
                    return false;
                }
                preds[0] = v;
            }
        }
        true
    }
}
