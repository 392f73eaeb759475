//! Native scoring of H2O-3 MOJOs: the predictions h2o-genmodel's `PredictCsv` writes,
//! computed in Rust without a JVM.
//!
//! The crate is the one H2O-3 MOJO library of the project: [`read_mojo`] reads a MOJO
//! through the core's safe reader and validates its structure ([`mojo`], [`ini`],
//! [`domains`]); [`H2oScorer::load`] then decodes every parameter once (trees into flat node arrays, GLM
//! coefficients, network weights, the XGBoost booster, ...) and refuses with
//! [`MojoError::NotScorable`] whatever it cannot score exactly as genmodel does.
//! [`H2oScorer::score`] turns one row of request cells into the output cells; the scorer
//! is `Send + Sync` and allocates only small per-row buffers.
//!
//! Every supported algorithm mirrors genmodel's Java (h2o-genmodel 3.46) step by step: the
//! same operations in the same order, `f32` where genmodel uses `float`, Java's
//! `Math.max`/`Math.min` and `java.util.Random` where they matter. `tests/reference.rs`
//! checks each against genmodel's own output on `testdata/h2o3`, on the conformance
//! MOJOs (h2o 3.10–3.36) and on extra variants made by `tests/reference/*.py`.
//!
//! | algo | categories | what is covered |
//! |---|---|---|
//! | `gbm` | Binomial, Multinomial, Regression | all genmodel distributions (bernoulli, quasibinomial, modified_huber, multinomial, gaussian, poisson, gamma, tweedie, laplace, quantile, huber, ...) with their `link_function` (or the default link of old MOJOs), `init_f`, offset column, `balance_classes`; tree formats of `mojo_version` 1.00, 1.10 and 1.20+; categorical encodings AUTO/Enum, OneHotExplicit, Binary, Eigen, LabelEncoder, SortByResponse, EnumLimited (original columns in) |
//! | `drf` | Binomial (incl. `binomial_double_trees`), Multinomial, Regression | as GBM |
//! | `glm` | Binomial, Multinomial, Regression | links identity, logit, log, inverse, tweedie (link power); `use_all_factor_levels`, mean imputation, offset (not for multinomial, as in genmodel) |
//! | `glm` | Ordinal | family `ordinal` (proportional odds: cumulative logits, offset added to each) |
//! | `gam` | Binomial, Multinomial, Ordinal, Regression | every spline type h2o 3.46 writes: cubic (`bs=0`), thin plate over one or more columns (`bs=1`), monotone I-spline (`bs=2`), M-spline (`bs=3`), several GAM columns; the client sends the original predictors and the splines are computed from them as genmodel's row converter does (its 3.46 slips included, see the `gam` module); mean imputation; links as GLM. Refused: an offset column, thin plate with `standardize`, and the layouts genmodel 3.46 throws on |
//! | `coxph` | CoxPH | `lp` with genmodel's per-stratum centring; `stratify_by` (the stratum columns are inputs), ties efron and breslow, offset column, start/stop columns (not inputs), interaction pairs computed from their source columns |
//! | `deeplearning` | Binomial, Multinomial, Regression, AutoEncoder | Tanh, Rectifier, ExpRectifier and their dropout variants; genmodel's 8-way dot product; categorical encodings AUTO/OneHotInternal, Binary, Eigen, LabelEncoder, SortByResponse (original columns in) |
//! | `xgboost` | Binomial, Multinomial, Regression | legacy binary booster (`gbtree`, `dart`), objectives binary/reg logistic, multi:softprob, reg linear/squarederror, gamma, tweedie, count:poisson; H2O's one-hot layout, `sparse`, offset; trained with OneHotExplicit, Binary, LabelEncoder, SortByResponse or EnumLimited: the encoded columns in, as genmodel takes them |
//! | `stackedensemble` | Binomial, Multinomial, Regression | any supported base models and metalearner, `metalearner_transform` NONE/Logit |
//! | `isolationforest` | AnomalyDetection | incl. `output_anomaly_flag` |
//! | `extendedisolationforest` | AnomalyDetection | |
//! | `kmeans` | Clustering | with and without standardization |
//! | `pca` | DimReduction | |
//! | `glrm` | DimReduction (the X factor) | losses Quadratic/Categorical, regularizers None/Quadratic/L2/L1; genmodel seeds row *n* with `seed + n`, and so does this scorer (a row's result depends on how many rows the loaded model scored before) |
//! | `word2vec` | WordEmbedding | the vector of the input word |
//! | `rulefit` | Binomial, Multinomial, Regression | model types `rules`, `linear`, `rules_and_linear`: the rules evaluated on the original columns, fed with them into the GLM sub-model (see the `rulefit` module) |
//! | `isotonicregression` | Regression | interpolation between the thresholds; out-of-range inputs clipped as genmodel clips them whatever `out_of_bounds` says |
//! | `upliftdrf` | BinomialUplift | `uplift_predict, p_y1_with_treatment, p_y1_without_treatment`; the input is the features (never the treatment or response column) |
//! | `targetencoder` | TargetEncoder | the encoded columns `predictTargetEncoding` gives (names from the MOJO: `color_te`, `color_versicolor_te`, `color:size_te`), blending as stored, interactions, missing and unseen levels; MOJOs without column mappings (h2o 3.26–3.32) too |
//!
//! Categorical encodings ([`encoding`]): a GBM, DRF (or other shared-tree) model trained
//! with `OneHotExplicit`, `Binary`, `Eigen`, `LabelEncoder` or `EnumLimited`, and a Deep
//! Learning model with `Binary`, `Eigen` or `LabelEncoder`, takes the ORIGINAL columns
//! (`_orig_names`, typed by `_orig_domain_values_*`) and encodes each cell as genmodel's
//! encoders do, unseen and missing levels included; the facts are in
//! [`H2oScorer::metadata`] (`categorical_encoding`). `SortByResponse` MOJOs carry their
//! own domains and need nothing. XGBoost, k-means and extended isolation forest MOJOs
//! record no original columns: genmodel takes their encoded columns, and so does this
//! scorer. Weights and fold columns are never inputs; the offset column is.
//!
//! Refused at load, with the reason: every other algorithm and category, GBM `custom`
//! distributions, encodings genmodel cannot load or has no encoder for (Deep Learning
//! `EnumLimited`, written as `_genmodel_encoding = null`), MOJOs with preprocessors,
//! Maxout networks, `gblinear` and JSON/UBJSON XGBoost boosters, the GLRM losses and
//! regularizers not listed, and the GAM layouts genmodel 3.46 throws on.
//!
//! Prediction contributions (SHAP values, `PredictCsv --predictContributions`) are
//! computed for the models genmodel computes them for: GBM, DRF and XGBoost, binomial and
//! regression ([`H2oScorer::contributions`], the `shap` module says how); for an encoded
//! model they are over its encoded features, named as genmodel names them (`color.blue`,
//! `color:0`, `color.Eigen`, ...: `CONTRIBUTION_TRANSFORMED`). Genmodel's wrapper refuses
//! them for every other algorithm (GLM, GAM, CoxPH, RuleFit, isotonic regression, Uplift
//! DRF, Target Encoder, Word2Vec, ...), and the scorer says why. They are
//! checked bit for bit against genmodel's `float`s on the testdata, variant and
//! conformance tree models (`tests/reference/contributions/`). Genmodel's `PredictCsv`
//! itself cannot compute DRF contributions (it does not load the variable importances
//! they need); its `EasyPredictModelWrapper` on a MOJO loaded with its metadata can, and
//! that is what the DRF references come from.
//!
//! `examples/score_csv.rs` streams a CSV file through the scorer one row at a time;
//! `bench/score.sh` measures it and `runtime-shim score` against genmodel's `PredictCsv`.
//!
//! Input cells follow `PredictCsv`: `None`, `""`, `"NA"`, `"N/A"` and `"-"` are missing;
//! numbers are parsed like `Double.parseDouble`; an unknown categorical level is missing.
//! Output cells: class labels as the response domain spells them; numbers as Rust's
//! shortest round-trip `Display` of the `f64` genmodel computes (`0.25`, `3`, `NaN`,
//! `inf`). Where genmodel writes `NA`, or cannot score a row at all (a GLM trained with
//! `missing_values_handling = Skip` given a missing categorical), the cells are `NaN`.

mod blob;
mod cells;
mod classes;
mod coxph;
mod deeplearning;
pub mod domains;
mod encoding;
mod ensemble;
mod fraction;
mod gam;
mod glm;
mod glrm;
pub mod ini;
mod input;
mod isofor;
mod isotonic;
mod java;
mod keys;
mod kmeans;
mod model;
pub mod mojo;
mod pca;
mod read;
mod rulefit;
mod shap;
mod sharedtree;
mod targetencoder;
#[cfg(test)]
mod test_support;
mod tree;
mod uplift;
mod word2vec;
mod xgboost;

use std::path::Path;

use artifact_core::{Column, Listing, ReadOptions};
use serde_json::{Map, Value};

use input::{InputColumn, Kind, Levels, Slot};
use keys::{unsupported, Keys, LoadError, LoadResult};
use model::Model;

/// A scoring thread's feature row and prediction buffer, reused row after row by
/// [`H2oScorer::score_into`] (sized per call: one thread may score several models).
#[derive(Default)]
struct Scratch {
    raw: Vec<f64>,
    preds: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}
pub use mojo::{Mojo, MojoFiles, MojoProblem, ProblemKind};
pub use read::{read_mojo, MojoError};
pub use shap::ContributionKind;

/// A request cell that cannot be read as the number its column needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}: {value:?} is not a number")]
pub struct CellError {
    pub column: String,
    pub value: String,
}

/// How the prediction array becomes output cells.
#[derive(Debug)]
pub(crate) enum Render {
    /// `preds[0]` is the class index into the domain, `preds[1..]` the probabilities.
    Classes(Vec<String>),
    /// The first `n` values of `preds`.
    Values(usize),
}

/// A loaded MOJO, ready to score rows from many threads.
#[derive(Debug)]
pub struct H2oScorer {
    algo: String,
    category: String,
    input_schema: Vec<Column>,
    output_schema: Vec<Column>,
    input_names: Vec<String>,
    output_names: Vec<String>,
    inputs: Vec<InputColumn>,
    n_features: usize,
    preds_len: usize,
    model: Box<dyn Model>,
    render: Render,
    /// The class labels as JSON strings (quoted, escaped), for [`H2oScorer::score_json_into`].
    labels_json: Vec<Vec<u8>>,
    /// Contribution names and kind, or why the model has no contributions.
    contrib: Result<(Vec<String>, ContributionKind), String>,
    /// Scoring facts for the manifest's metadata ([`H2oScorer::metadata`]).
    metadata: Map<String, Value>,
}

/// A MOJO source read, validated and loaded for scoring ([`H2oScorer::open`]).
#[derive(Debug)]
pub struct Loaded {
    /// Every file of the source, with sizes and sha256, and the source's own hash.
    pub listing: Listing,
    /// The validated structure (`model.ini`, domains, sub-models).
    pub mojo: Mojo,
    pub scorer: H2oScorer,
}

impl H2oScorer {
    /// Loads a MOJO zip (the model directory's payload `model.mojo`). A MOJO that is not
    /// valid, or of a kind the scorer does not score, is refused ([`MojoError::Invalid`],
    /// [`MojoError::NotScorable`], ...) with a message naming the file and what is wrong
    /// (never mis-scored).
    pub fn load(path: &Path) -> Result<H2oScorer, MojoError> {
        Ok(Self::open(path, &ReadOptions::default())?.scorer)
    }

    /// Reads a MOJO source (zip or unpacked folder) under the given limits and loads it:
    /// the one judgement of validity, shared by the processor (which publishes only what
    /// this accepts) and the runtime.
    pub fn open(path: &Path, read: &ReadOptions) -> Result<Loaded, MojoError> {
        let (listing, files, mojo) = read_mojo(path, read, true)?;
        let scorer = Self::from_files(path, &files, &mojo)?;
        Ok(Loaded {
            listing,
            mojo,
            scorer,
        })
    }

    /// Loads an already read and validated MOJO; `path` is for messages.
    pub fn from_files(path: &Path, files: &MojoFiles, mojo: &Mojo) -> Result<H2oScorer, MojoError> {
        let algo = mojo.algo();
        let category = mojo.category().to_string();
        let wrap = |e: LoadError| match e {
            LoadError::Unsupported(reason) => MojoError::NotScorable {
                path: path.to_path_buf(),
                algo: algo.clone(),
                category: category.clone(),
                reason,
            },
            LoadError::Invalid { file, detail } => MojoError::Invalid {
                path: path.to_path_buf(),
                file,
                detail,
            },
        };
        let built = build(mojo, files, true).map_err(wrap)?;
        let output_schema = match built.outputs {
            Some(outputs) => outputs,
            None => mojo
                .output_schema()
                .map_err(|p| MojoError::from_problem(path, p))?,
        };
        let output_names: Vec<String> = output_schema.iter().map(|c| c.name.clone()).collect();
        let keys = Keys::new(mojo, files);
        let n_features = built.n_features;
        let offset_column = keys
            .raw("offset_column")
            .filter(|v| *v != "null" && !v.is_empty());
        let inputs: Vec<InputColumn> = match built.inputs {
            Some(inputs) => inputs,
            None => mojo
                .input_schema()
                .into_iter()
                .enumerate()
                .map(|(i, col)| {
                    // The features, then (past them) only the offset column.
                    let (kind, slot) = if i >= n_features {
                        (Kind::Numeric, Slot::Offset)
                    } else {
                        let kind = match (&built.text_domain, &mojo.domains[i]) {
                            (Some(words), _) => Kind::Categorical(Levels::exact(words)),
                            (None, Some(d)) => Kind::Categorical(Levels::new(&col.name, d)),
                            (None, None) => Kind::Numeric,
                        };
                        (kind, Slot::Feature(i))
                    };
                    InputColumn {
                        name: col.name,
                        ty: col.ty,
                        kind,
                        slot,
                    }
                })
                .collect(),
        };
        let input_schema: Vec<Column> = inputs
            .iter()
            .map(|c| Column::new(c.name.clone(), c.ty))
            .collect();
        if let Some(off) = offset_column {
            if !inputs.iter().any(|c| c.slot == Slot::Offset) {
                return Err(wrap(LoadError::Invalid {
                    file: keys.ini_name(),
                    detail: format!("offset column {off:?} is not one of the model's columns"),
                }));
            }
        }
        let render = built.render;
        let contrib = built.contributions;
        if let Err(reason) = &contrib {
            tracing::debug!(%algo, %category, %reason, "no prediction contributions");
        }
        let expected = match &render {
            Render::Classes(d) => d.len() + 1,
            Render::Values(n) => *n,
        };
        if expected != output_names.len() {
            return Err(wrap(LoadError::Invalid {
                file: keys.ini_name(),
                detail: format!(
                    "the model produces {expected} outputs but its output schema names {}",
                    output_names.len()
                ),
            }));
        }
        tracing::debug!(%algo, %category, inputs = inputs.len(), outputs = output_names.len(), "loaded MOJO for native scoring");
        let labels_json = match &render {
            Render::Classes(d) => d
                .iter()
                .map(|l| serde_json::to_vec(l).expect("a string serializes"))
                .collect(),
            Render::Values(_) => Vec::new(),
        };
        Ok(H2oScorer {
            labels_json,
            input_names: inputs.iter().map(|c| c.name.clone()).collect(),
            algo,
            category,
            input_schema,
            output_schema,
            output_names,
            inputs,
            n_features,
            preds_len: built.preds_len,
            model: built.model,
            render,
            contrib,
            metadata: built.metadata,
        })
    }

    /// The input schema as genmodel's row API takes it: the columns a client sends, in
    /// the order [`H2oScorer::score`] reads its cells.
    pub fn input_schema(&self) -> &[Column] {
        &self.input_schema
    }

    /// The output schema, named as genmodel's `PredictCsv` writes its header.
    pub fn output_schema(&self) -> &[Column] {
        &self.output_schema
    }

    /// Scoring facts worth recording beside the schema (categorical encoding, GAM columns,
    /// `[columns]` that are not inputs such as weights and fold, ...), as the processor
    /// writes them under `metadata.scoring`; empty when the model is scored from its
    /// `[columns]` as they are.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The MLOps capabilities the runtime serves for this model: `SCORE`, then the
    /// contribution type when the scorer computes contributions.
    pub fn capabilities(&self) -> Vec<String> {
        let mut c = vec!["SCORE".to_string()];
        match self.contribution_kind() {
            Some(ContributionKind::Original) => c.push("CONTRIBUTION_ORIGINAL".into()),
            Some(ContributionKind::Transformed) => c.push("CONTRIBUTION_TRANSFORMED".into()),
            None => {}
        }
        c
    }

    /// Input column names in the order of the manifest's input schema.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// Output column names, equal to the manifest's output schema names.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Scores one row; `row[i]` is the raw cell of input `i` (`None` = missing).
    ///
    /// Numeric inputs accept numbers and the missing spellings of the module docs; any
    /// other text is a [`CellError`]. Categorical inputs map an unknown level to missing.
    /// Cells past the end of `row` count as missing and extra cells are ignored.
    pub fn score(&self, row: &[Option<&str>]) -> Result<Vec<String>, CellError> {
        let mut out = Vec::new();
        self.score_into(row, &mut out)?;
        Ok(out)
    }

    /// [`H2oScorer::score`] into `out`, reusing its cells: `out` ends up with one cell per
    /// output, and a caller that passes the same `out` row after row allocates nothing
    /// once the cells have grown to their size (the feature and prediction buffers are
    /// kept per thread). On an error `out` is unspecified.
    pub fn score_into(&self, row: &[Option<&str>], out: &mut Vec<String>) -> Result<(), CellError> {
        let n = self.output_names.len();
        out.truncate(n);
        out.resize_with(n, String::new);
        for cell in out.iter_mut() {
            cell.clear();
        }
        self.predict(row, |preds| {
            let Some(preds) = preds else {
                for cell in out.iter_mut() {
                    cell.push_str("NaN");
                }
                return;
            };
            match &self.render {
                Render::Classes(domain) => {
                    out[0].push_str(
                        domain
                            .get(preds[0] as i32 as usize)
                            .map_or("NaN", String::as_str),
                    );
                    for (cell, &p) in out[1..].iter_mut().zip(&preds[1..=domain.len()]) {
                        cells::push_f64(p, cell);
                    }
                }
                Render::Values(k) => {
                    for (cell, &p) in out.iter_mut().zip(&preds[..*k]) {
                        cells::push_f64(p, cell);
                    }
                }
            }
        })
    }

    /// [`H2oScorer::score_into`]'s cells appended to `out` as JSON strings, comma-separated
    /// (`"yes","0.25","0.75"`): byte for byte what `serde_json` writes for those cells,
    /// without a `String` per cell or an escape check per cell (labels are escaped once,
    /// at load; numbers need none). On an error `out` is unspecified.
    pub fn score_json_into(
        &self,
        row: &[Option<&str>],
        out: &mut Vec<u8>,
    ) -> Result<(), CellError> {
        let n = self.output_names.len();
        self.predict(row, |preds| {
            let Some(preds) = preds else {
                for i in 0..n {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"\"NaN\"");
                }
                return;
            };
            // A number's text goes straight into `out`, between its quotes.
            let number = |p: f64, out: &mut Vec<u8>| {
                out.push(b'"');
                cells::push_f64(p, out);
                out.push(b'"');
            };
            match &self.render {
                Render::Classes(domain) => {
                    match self.labels_json.get(preds[0] as i32 as usize) {
                        Some(label) => out.extend_from_slice(label),
                        None => out.extend_from_slice(b"\"NaN\""),
                    }
                    for &p in &preds[1..=domain.len()] {
                        out.push(b',');
                        number(p, out);
                    }
                }
                Render::Values(k) => {
                    for (i, &p) in preds[..*k].iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        number(p, out);
                    }
                }
            }
        })
    }

    /// Encodes `row` and scores it, then calls `render` with the predictions (`None`:
    /// the model gave no prediction, every output is `NaN`).
    fn predict(
        &self,
        row: &[Option<&str>],
        render: impl FnOnce(Option<&[f64]>),
    ) -> Result<(), CellError> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch { raw, preds } = &mut *scratch;
            raw.clear();
            raw.resize(self.n_features, f64::NAN);
            let offset = input::encode(&self.inputs, row, raw)?;
            preds.clear();
            preds.resize(self.preds_len, 0.0);
            if self.model.score0(raw, offset, preds) {
                render(Some(preds));
            } else {
                render(None);
            }
            Ok(())
        })
    }

    /// Names of the prediction contributions ([`H2oScorer::contributions`]), genmodel's
    /// `getContributionNames`: one per feature, then `BiasTerm`. `None` when genmodel
    /// offers no contributions for the model ([`H2oScorer::contributions_unavailable`]
    /// says why).
    pub fn contribution_names(&self) -> Option<&[String]> {
        self.contrib
            .as_ref()
            .ok()
            .map(|(names, _)| names.as_slice())
    }

    /// Whether the contributions are over the input columns or over XGBoost's one-hot
    /// slots; `None` without contributions.
    pub fn contribution_kind(&self) -> Option<ContributionKind> {
        self.contrib.as_ref().ok().map(|(_, kind)| *kind)
    }

    /// Why the model has no contributions (genmodel refuses multinomial models, offers
    /// them only for GBM, DRF and XGBoost, ...); `None` when it has them.
    pub fn contributions_unavailable(&self) -> Option<&str> {
        self.contrib.as_ref().err().map(String::as_str)
    }

    /// The prediction contributions (SHAP values) of one row, as genmodel's
    /// `predictContributions` computes them (see the `shap` module): one cell per
    /// [`H2oScorer::contribution_names`] entry, each the shortest decimal that reads back
    /// as genmodel's `float`; they add up to the prediction in link space (log-odds for
    /// binomial GBM and XGBoost). `row` is read as by [`H2oScorer::score`]; the offset
    /// column is ignored, as genmodel ignores it. `None` when the model has no
    /// contributions. Where genmodel would throw on the row, every cell is `NaN`.
    pub fn contributions(&self, row: &[Option<&str>]) -> Option<Result<Vec<String>, CellError>> {
        let (names, _) = self.contrib.as_ref().ok()?;
        let mut raw = vec![f64::NAN; self.n_features];
        if let Err(e) = input::encode(&self.inputs, row, &mut raw) {
            return Some(Err(e));
        }
        Some(Ok(match self.model.contributions(&raw) {
            Some(values) => values.iter().map(|&v| cells::f32_cell(v)).collect(),
            None => vec!["NaN".to_string(); names.len()],
        }))
    }

    /// Algorithm short name and category, for logs.
    pub fn describe(&self) -> (String, String) {
        (self.algo.clone(), self.category.clone())
    }
}

/// What [`build`] produces for a model.
pub(crate) struct Built {
    pub model: Box<dyn Model>,
    /// Length of the raw row the scorer fills and `Model::score0` gets: the model's
    /// features, then whatever else its `inputs` fill or its scorer uses as workspace (a
    /// GAM's predictors and spline buffers, CoxPH's interaction offsets).
    pub n_features: usize,
    pub preds_len: usize,
    pub render: Render,
    /// A domain that every input takes as text (a Word2Vec vocabulary).
    pub text_domain: Option<Vec<String>>,
    /// The columns a client sends, when they are not the model's `[columns]` (features in
    /// order, then the offset column): e.g. the original columns of a categorical
    /// encoding, or a GAM's predictors. `None` for the default.
    pub inputs: Option<Vec<InputColumn>>,
    /// Scoring facts for the manifest ([`H2oScorer::metadata`]).
    pub metadata: Map<String, Value>,
    /// Contribution names and kind, or why there are none.
    pub contributions: Result<(Vec<String>, ContributionKind), String>,
    /// The output schema, when the model's files name it rather than its category (a
    /// Target Encoder's encoded columns). `None`: [`Mojo::output_schema`].
    pub outputs: Option<Vec<Column>>,
}

/// Keeps a model's contributions predictor in `slot` and returns its names and kind.
/// `None`: not prepared (an ensemble member).
fn attach(
    built: Option<Result<shap::Contributions, String>>,
    slot: &mut Option<shap::Contributions>,
) -> Result<(Vec<String>, ContributionKind), String> {
    let c = built.ok_or("not prepared for an ensemble member")??;
    let info = (c.names.clone(), c.kind);
    *slot = Some(c);
    Ok(info)
}

fn classes(mojo: &Mojo) -> LoadResult<Vec<String>> {
    match mojo.response_domain() {
        Some(d) => Ok(d.to_vec()),
        None => unsupported("a classifier without a response domain"),
    }
}

/// Chooses and loads the scorer of a model (the root or a stacked-ensemble member);
/// `with_contributions` also prepares its contributions predictor.
pub(crate) fn build(mojo: &Mojo, files: &MojoFiles, with_contributions: bool) -> LoadResult<Built> {
    let keys = Keys::new(mojo, files);
    if keys.usize_or("preprocessors_count", 0)? > 0 {
        return unsupported("MOJOs with preprocessors (e.g. target encoding)");
    }
    let algo = mojo.algo();
    let category = mojo.category();
    match (algo.as_str(), category) {
        ("gam", "Binomial" | "Multinomial" | "Ordinal" | "Regression") => return gam::build(&keys),
        ("coxph", "CoxPH") => return coxph::build(&keys),
        _ => {}
    }
    let n_features = model::Common::read(&keys)?.n_features;
    let classifier = matches!(category, "Binomial" | "Multinomial" | "Ordinal");
    let mut text_domain = None;
    let mut inputs = None;
    let mut outputs = None;
    let mut metadata = Map::new();
    let mut contributions =
        Err("genmodel computes contributions only for GBM, DRF and XGBoost models".to_string());
    let (model, render): (Box<dyn Model>, Render) = match (algo.as_str(), category) {
        ("gbm", "Binomial" | "Multinomial" | "Regression") => {
            let render = if classifier {
                Render::Classes(classes(mojo)?)
            } else {
                Render::Values(1)
            };
            let mut m = sharedtree::Gbm::read(&keys)?;
            contributions = attach(
                with_contributions.then(|| m.contributions(&keys)),
                &mut m.shap,
            );
            (Box::new(m), render)
        }
        ("drf", "Binomial" | "Multinomial" | "Regression") => {
            let render = if classifier {
                Render::Classes(classes(mojo)?)
            } else {
                Render::Values(1)
            };
            let mut m = sharedtree::Drf::read(&keys)?;
            contributions = attach(
                with_contributions.then(|| m.contributions(&keys)),
                &mut m.shap,
            );
            (Box::new(m), render)
        }
        ("glm", "Binomial" | "Multinomial" | "Regression") => {
            let family = keys.req_str("family")?;
            match family {
                "multinomial" => (
                    Box::new(glm::GlmMultinomial::read(&keys)?),
                    Render::Classes(classes(mojo)?),
                ),
                "ordinal" => (
                    Box::new(glm::GlmOrdinal::read(&keys)?),
                    Render::Classes(classes(mojo)?),
                ),
                _ if category == "Binomial" => (
                    Box::new(glm::Glm::read(&keys)?),
                    Render::Classes(classes(mojo)?),
                ),
                _ => (Box::new(glm::Glm::read(&keys)?), Render::Values(1)),
            }
        }
        ("glm", "Ordinal") => match keys.req_str("family")? {
            "ordinal" => (
                Box::new(glm::GlmOrdinal::read(&keys)?),
                Render::Classes(classes(mojo)?),
            ),
            other => return unsupported(format!("GLM family {other:?} with category Ordinal")),
        },
        ("isolationforest", "AnomalyDetection") => {
            let m = isofor::IsolationForest::read(&keys)?;
            let n = m.n_outputs();
            (Box::new(m), Render::Values(n))
        }
        ("extendedisolationforest", "AnomalyDetection") => (
            Box::new(isofor::ExtendedIsolationForest::read(&keys)?),
            Render::Values(2),
        ),
        ("deeplearning", "Binomial" | "Multinomial" | "Regression" | "AutoEncoder") => {
            let m = deeplearning::DeepLearning::read(&keys)?;
            let render = if classifier {
                Render::Classes(classes(mojo)?)
            } else {
                Render::Values(m.n_outputs())
            };
            (Box::new(m), render)
        }
        ("stackedensemble", "Binomial" | "Multinomial" | "Regression") => {
            let (render, preds_len) = if classifier {
                let d = classes(mojo)?;
                let n = d.len() + 1;
                (Render::Classes(d), n)
            } else {
                (Render::Values(1), 1)
            };
            let m = ensemble::StackedEnsemble::read(&keys, preds_len)?;
            (Box::new(m), render)
        }
        ("xgboost", "Binomial" | "Multinomial" | "Regression") => {
            let render = if classifier {
                Render::Classes(classes(mojo)?)
            } else {
                Render::Values(1)
            };
            let mut m = xgboost::XGBoost::read(&keys)?;
            contributions = attach(
                with_contributions.then(|| m.contributions(&keys)),
                &mut m.shap,
            );
            (Box::new(m), render)
        }
        ("pca", "DimReduction") => {
            let m = pca::Pca::read(&keys)?;
            let k = m.k();
            (Box::new(m), Render::Values(k))
        }
        ("word2vec", "WordEmbedding") => {
            let m = word2vec::Word2Vec::read(&keys)?;
            let n = m.vec_size();
            text_domain = Some(m.vocabulary().to_vec());
            (Box::new(m), Render::Values(n))
        }
        ("glrm", "DimReduction") => {
            let m = glrm::Glrm::read(&keys)?;
            let n = m.ncol_x();
            (Box::new(m), Render::Values(n))
        }
        ("kmeans", "Clustering") => (Box::new(kmeans::KMeans::read(&keys)?), Render::Values(1)),
        ("rulefit", "Binomial" | "Multinomial" | "Regression") => {
            let render = if classifier {
                Render::Classes(classes(mojo)?)
            } else {
                Render::Values(1)
            };
            (Box::new(rulefit::RuleFit::read(&keys)?), render)
        }
        ("isotonicregression", "Regression") => (
            Box::new(isotonic::IsotonicRegression::read(&keys)?),
            Render::Values(1),
        ),
        ("upliftdrf", "BinomialUplift") => {
            inputs = Some(input::features(mojo, n_features));
            contributions = Err(uplift::NO_CONTRIBUTIONS.to_string());
            (Box::new(uplift::UpliftDrf::read(&keys)?), Render::Values(3))
        }
        ("targetencoder", "TargetEncoder") => {
            let m = targetencoder::TargetEncoder::read(&keys)?;
            inputs = Some(input::features(mojo, n_features));
            outputs = Some(
                m.outputs()
                    .iter()
                    .map(|n| Column::new(n.clone(), artifact_core::ColumnType::Float64))
                    .collect(),
            );
            metadata.extend(m.metadata().clone());
            let n = m.outputs().len();
            (Box::new(m), Render::Values(n))
        }
        (
            a @ ("gbm" | "drf" | "glm" | "isolationforest" | "extendedisolationforest" | "kmeans"),
            c,
        ) => return unsupported(format!("{a} models of category {c}")),
        (a, _) => return unsupported(format!("algorithm {a:?} is not implemented natively")),
    };
    let n_classes = model::Common::read(&keys)?.n_classes;
    match &render {
        Render::Classes(d) if d.len() != n_classes => {
            return keys.invalid(format!(
                "n_classes = {n_classes} but the response has {} levels",
                d.len()
            ))
        }
        Render::Values(_) if classifier || (n_classes != 1 && category == "Regression") => {
            return keys.invalid(format!("n_classes = {n_classes} for a {category} model"))
        }
        _ => {}
    }
    let preds_len = match &render {
        Render::Classes(d) => d.len() + 1,
        Render::Values(n) => (*n).max(1),
    };
    // Categorical encodings: the original columns when genmodel encodes the row itself.
    match encoding::read(&keys, &algo, n_features)? {
        Some(enc) => {
            if let Ok((names, kind)) = &mut contributions {
                *kind = encoding::contribution_kind(names, &enc.inputs, *kind);
            }
            metadata.insert("categorical_encoding".into(), enc.metadata);
            inputs = Some(enc.inputs);
        }
        None => {
            if let Some(training) = encoding::training_only(&keys) {
                metadata.insert("categorical_encoding".into(), training);
            }
        }
    }
    encoding::note_special(&keys, n_features, &mut metadata);
    Ok(Built {
        model,
        n_features,
        preds_len,
        render,
        text_domain,
        inputs,
        metadata,
        contributions,
        outputs,
    })
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::test_support::ns_per_call;

    /// ns per row of [`H2oScorer::score_json_into`] (cells to answer text, as the REST
    /// path calls it) over the rows of `testdata/h2o3/<model>.input.csv`, cycled as
    /// `bench/serve.sh` cycles them; `SCORE_MODELS` (comma-separated) picks the models:
    /// `cargo test -p h2o3-scorer --release --lib -- --ignored --nocapture time_score_json_into`.
    #[test]
    #[ignore = "timing, run in release by hand"]
    fn time_score_json_into() {
        let models = std::env::var("SCORE_MODELS").unwrap_or_else(|_| {
            "gbm_binomial,drf_multinomial,glm_binomial,xgboost_binomial,gbm_onehot_binomial".into()
        });
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/h2o3");
        for model in models.split(',') {
            let scorer = H2oScorer::load(&data.join(format!("{model}.zip"))).unwrap();
            let mut csv = csv::Reader::from_path(data.join(format!("{model}.input.csv"))).unwrap();
            let header = csv.headers().unwrap().clone();
            // The scorer's inputs in its order; a column the file lacks is missing.
            let order: Vec<Option<usize>> = scorer
                .input_names()
                .iter()
                .map(|n| header.iter().position(|h| h == n))
                .collect();
            let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
            let rows: Vec<Vec<Option<&str>>> = records
                .iter()
                .map(|r| order.iter().map(|i| i.and_then(|i| r.get(i))).collect())
                .collect();
            let n = 100_000;
            let mut out = Vec::with_capacity(1 << 20);
            let ns = ns_per_call(n, || {
                out.clear();
                for row in rows.iter().cycle().take(n) {
                    scorer.score_json_into(row, &mut out).unwrap();
                    if out.len() > 1 << 19 {
                        out.clear();
                    }
                }
            });
            println!("{model}: {ns:.1} ns per row");
        }
    }
}
