//! A MOJO read into memory and validated as h2o-genmodel's reader would
//! (FORMATS.md §3.4, §3.11), recursively for stacked-ensemble sub-models, with the
//! input and output schemas derived from it (§3.9, §3.10).
//!
//! The processor and the runtime shim both load MOJOs through [`Mojo::load`].

use std::collections::{BTreeMap, BTreeSet};

use artifact_core::{Column, ColumnType};
use serde_json::{json, Map, Value};

use crate::domains::parse_domain;
use crate::ini::ModelIni;

/// The files of a MOJO that were kept in memory, and the names of all its files.
#[derive(Debug, Clone, Default)]
pub struct MojoFiles {
    pub contents: BTreeMap<String, Vec<u8>>,
    pub names: BTreeSet<String>,
}

impl MojoFiles {
    /// Whether a processor needs the content of a file (the rest is only listed).
    pub fn is_metadata_file(name: &str) -> bool {
        name.ends_with("model.ini")
            || name.contains("domains/")
            || name.ends_with("experimental/modelDetails.json")
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.contents.get(name).map(|v| v.as_slice())
    }

    pub fn text(&self, name: &str) -> Result<Option<&str>, MojoProblem> {
        match self.get(name) {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| MojoProblem::new(name, "is not UTF-8 text")),
        }
    }
}

/// A validation failure: the file inside the MOJO and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MojoProblem {
    pub file: String,
    pub detail: String,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The MOJO is malformed.
    Invalid,
    /// The MOJO is well formed but of a kind this project does not handle.
    Unsupported,
}

impl MojoProblem {
    pub fn new(file: impl Into<String>, detail: impl Into<String>) -> Self {
        MojoProblem {
            file: file.into(),
            detail: detail.into(),
            kind: ProblemKind::Invalid,
        }
    }

    pub fn unsupported(file: impl Into<String>, detail: impl Into<String>) -> Self {
        MojoProblem {
            kind: ProblemKind::Unsupported,
            ..MojoProblem::new(file, detail)
        }
    }
}

/// Stacked ensembles nest; deeper nesting than this is refused.
pub const MAX_NESTING: usize = 4;

/// Keys without which h2o-genmodel cannot read a MOJO (FORMATS.md §3.4 policy).
pub const REQUIRED_KEYS: &[&str] = &["algorithm", "n_columns", "category", "supervised"];

/// Algorithms that keep their trees in `trees/`.
const TREE_ALGOS: &[&str] = &[
    "gbm",
    "drf",
    "isolationforest",
    "extendedisolationforest",
    "upliftdrf",
];

/// `algorithm` values of h2o-genmodel's readers, with their short names.
const ALGORITHMS: &[(&str, &str)] = &[
    ("Distributed Random Forest", "drf"),
    ("Gradient Boosting Method", "gbm"),
    ("Gradient Boosting Machine", "gbm"),
    ("Generalized Low Rank Modeling", "glrm"),
    ("Generalized Low Rank Model", "glrm"),
    ("Generalized Linear Modeling", "glm"),
    ("Generalized Linear Model", "glm"),
    ("Generalized Additive Model", "gam"),
    ("Word2Vec", "word2vec"),
    ("Isolation Forest", "isolationforest"),
    ("Extended Isolation Forest", "extendedisolationforest"),
    ("K-means", "kmeans"),
    ("Deep Learning", "deeplearning"),
    ("deep learning", "deeplearning"),
    ("StackedEnsemble", "stackedensemble"),
    ("Stacked Ensemble", "stackedensemble"),
    ("XGBoost", "xgboost"),
    ("Principal Components Analysis", "pca"),
    ("Principal Component Analysis", "pca"),
    ("CoxPH", "coxph"),
    ("Cox Proportional Hazards", "coxph"),
    ("RuleFit", "rulefit"),
    ("Support Vector Machine (*Spark*)", "svm"),
    ("PSVM", "psvm"),
    ("Uplift Distributed Random Forest", "upliftdrf"),
    ("TargetEncoder", "targetencoder"),
    ("Isotonic Regression", "isotonicregression"),
];

/// A validated MOJO (or sub-model).
#[derive(Debug, Clone)]
pub struct Mojo {
    /// Directory prefix inside the archive: `""` for the root, `models/GBM/x/` for a sub-model.
    pub prefix: String,
    pub ini: ModelIni,
    /// Levels per column; `None` for numeric columns.
    pub domains: Vec<Option<Vec<String>>>,
    /// `experimental/modelDetails.json`, when present and valid JSON.
    pub details: Option<Value>,
    /// Stacked-ensemble sub-models, keyed by `submodel_key_i`.
    pub submodels: Vec<(String, Mojo)>,
}

impl Mojo {
    /// Loads and validates the model rooted at `prefix`.
    pub fn load(files: &MojoFiles, prefix: &str, depth: usize) -> Result<Mojo, MojoProblem> {
        if depth > MAX_NESTING {
            return Err(MojoProblem::new(
                prefix,
                format!("sub-models are nested more than {MAX_NESTING} levels deep"),
            ));
        }
        let ini_name = format!("{prefix}model.ini");
        let text = files.text(&ini_name)?.ok_or_else(|| {
            if files.names.contains(&ini_name) {
                MojoProblem::new(&ini_name, "was not read")
            } else if depth > 0 {
                MojoProblem::new(
                    &ini_name,
                    "is missing, but the stacked ensemble lists this sub-model",
                )
            } else {
                MojoProblem::new(&ini_name, "is missing: this is not an H2O-3 MOJO")
            }
        })?;
        let ini = ModelIni::parse(text).map_err(|e| MojoProblem::new(&ini_name, e.to_string()))?;
        for key in REQUIRED_KEYS {
            if ini.get(key).is_none() {
                return Err(MojoProblem::new(
                    &ini_name,
                    format!("required key `{key}` is missing from [info]"),
                ));
            }
        }
        for key in ["n_features", "n_classes", "mojo_version", "h2o_version"] {
            if ini.get(key).is_none() {
                tracing::warn!(file = %ini_name, key, "optional [info] key is missing");
            }
        }
        let algorithm = ini.get("algorithm").unwrap_or_default();
        if algo_of(&ini).is_none() {
            return Err(MojoProblem::unsupported(
                &ini_name,
                format!("algorithm {algorithm:?} is not one h2o-genmodel can read"),
            ));
        }
        if ini.get_bool("supervised").is_none() {
            return Err(MojoProblem::new(
                &ini_name,
                format!(
                    "`supervised` = {:?} is not true or false",
                    ini.get("supervised")
                ),
            ));
        }
        if let Some(n) = ini.get_usize("n_domains") {
            if n != ini.domains.len() {
                return Err(MojoProblem::new(
                    &ini_name,
                    format!(
                        "n_domains = {n} but [domains] lists {} files",
                        ini.domains.len()
                    ),
                ));
            }
        }
        let escaped = ini.get_bool("escape_domain_values").unwrap_or(false);
        let mut domains = vec![None; ini.columns.len()];
        for d in &ini.domains {
            if d.col >= ini.columns.len() {
                continue; // genmodel ignores these
            }
            let name = format!("{prefix}domains/{}", d.file);
            let text = files.text(&name)?.ok_or_else(|| {
                MojoProblem::new(
                    &name,
                    format!("domain file of column {:?} is missing", ini.columns[d.col]),
                )
            })?;
            let levels = parse_domain(text, escaped);
            if levels.len() != d.levels {
                return Err(MojoProblem::new(
                    &name,
                    format!(
                        "has {} levels but model.ini declares {} for column {:?}",
                        levels.len(),
                        d.levels,
                        ini.columns[d.col]
                    ),
                ));
            }
            domains[d.col] = Some(levels);
        }
        let details_name = format!("{prefix}experimental/modelDetails.json");
        let details = match files.get(&details_name) {
            Some(b) => match serde_json::from_slice::<Value>(b) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(file = %details_name, error = %e, "modelDetails.json is not valid JSON; ignoring it");
                    None
                }
            },
            None => None,
        };
        let mut mojo = Mojo {
            prefix: prefix.to_string(),
            ini,
            domains,
            details,
            submodels: Vec::new(),
        };
        mojo.check_blobs(files)?;
        mojo.check_response()?;
        // Genmodel's MultiModelMojoReader: stacked ensembles and RuleFit (its GLM).
        if matches!(mojo.algo().as_str(), "stackedensemble" | "rulefit") {
            let n = mojo.ini.get_usize("submodel_count").ok_or_else(|| {
                MojoProblem::new(
                    &ini_name,
                    format!("{} MOJO without `submodel_count`", mojo.algo()),
                )
            })?;
            for i in 0..n {
                let dir = mojo
                    .ini
                    .get(&format!("submodel_dir_{i}"))
                    .ok_or_else(|| {
                        MojoProblem::new(&ini_name, format!("`submodel_dir_{i}` is missing"))
                    })?
                    .to_string();
                let key = mojo
                    .ini
                    .get(&format!("submodel_key_{i}"))
                    .unwrap_or(&dir)
                    .to_string();
                let dir = if dir.ends_with('/') {
                    dir
                } else {
                    format!("{dir}/")
                };
                let sub = Mojo::load(files, &format!("{prefix}{dir}"), depth + 1)?;
                mojo.submodels.push((key, sub));
            }
        }
        Ok(mojo)
    }

    fn check_blobs(&self, files: &MojoFiles) -> Result<(), MojoProblem> {
        let algo = self.algo();
        if TREE_ALGOS.contains(&algo.as_str()) {
            let trees = format!("{}trees/", self.prefix);
            let has_tree = files
                .names
                .iter()
                .any(|n| n.starts_with(&trees) && n.ends_with(".bin"));
            if !has_tree {
                return Err(MojoProblem::new(
                    trees.clone(),
                    format!("a {algo} MOJO needs tree files trees/t*.bin; there are none"),
                ));
            }
        }
        if algo == "xgboost" {
            let booster = format!("{}boosterBytes", self.prefix);
            if !files.names.contains(&booster) {
                return Err(MojoProblem::new(
                    booster,
                    "an XGBoost MOJO needs its booster; it is missing",
                ));
            }
        }
        Ok(())
    }

    fn check_response(&self) -> Result<(), MojoProblem> {
        let cat = self.category();
        if self.supervised() && matches!(cat, "Binomial" | "Multinomial" | "Ordinal") {
            let resp = self.ini.columns.len().checked_sub(1);
            let domain = resp.and_then(|i| self.domains[i].as_ref());
            let Some(domain) = domain else {
                return Err(MojoProblem::new(
                    format!("{}model.ini", self.prefix),
                    format!("a {cat} model needs a domain for its response column; there is none"),
                ));
            };
            if let Some(n) = self.ini.get_usize("n_classes") {
                if n != domain.len() {
                    return Err(MojoProblem::new(
                        format!("{}model.ini", self.prefix),
                        format!(
                            "n_classes = {n} but the response column has {} levels",
                            domain.len()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The short algorithm name (`algo`, or derived from `algorithm` for old writers).
    pub fn algo(&self) -> String {
        algo_of(&self.ini).unwrap_or_default()
    }

    pub fn category(&self) -> &str {
        self.ini.get("category").unwrap_or("Unknown")
    }

    pub fn supervised(&self) -> bool {
        self.ini.get_bool("supervised").unwrap_or(false)
    }

    /// Name of the response column, for supervised models.
    pub fn response_column(&self) -> Option<&str> {
        if self.supervised() {
            self.ini.columns.last().map(|s| s.as_str())
        } else {
            None
        }
    }

    pub fn response_domain(&self) -> Option<&[String]> {
        if self.supervised() {
            self.domains.last().and_then(|d| d.as_deref())
        } else {
            None
        }
    }

    /// Number of input columns: every column but the response.
    pub fn n_inputs(&self) -> usize {
        self.ini
            .columns
            .len()
            .saturating_sub(usize::from(self.supervised()))
    }

    /// Column types from `modelDetails.json` (`Numeric`, `Enum`, `Time`, ...), by name.
    fn detail_types(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(output) = self.details.as_ref().and_then(|d| d.get("output")) else {
            return out;
        };
        let (Some(names), Some(types)) = (
            output.get("names").and_then(|v| v.as_array()),
            output.get("column_types").and_then(|v| v.as_array()),
        ) else {
            return out;
        };
        for (n, t) in names.iter().zip(types) {
            if let (Some(n), Some(t)) = (n.as_str(), t.as_str()) {
                out.insert(n.to_string(), t.to_string());
            }
        }
        out
    }

    /// Number of features: `n_features` (every column but the response when absent),
    /// at most the columns before the response.
    pub fn n_features(&self) -> usize {
        let n = self.n_inputs();
        self.ini.get_usize("n_features").unwrap_or(n).min(n)
    }

    /// The raw input schema, as genmodel's row API reads `[columns]`: the `n_features`
    /// features in order, then the offset column when the model has one. The response and
    /// every other column after the features (weights, fold, ...) are left out: genmodel's
    /// row converter skips them and `PredictCsv` reads only the offset apart.
    pub fn input_schema(&self) -> Vec<Column> {
        let types = self.detail_types();
        let word_embedding = self.category() == "WordEmbedding";
        let n_features = self.n_features();
        let offset = self
            .ini
            .get("offset_column")
            .filter(|v| *v != "null" && !v.is_empty());
        (0..self.n_inputs())
            .filter(|&i| i < n_features || Some(self.ini.columns[i].as_str()) == offset)
            .map(|i| {
                let name = &self.ini.columns[i];
                let ty = if self.domains[i].is_some() || word_embedding {
                    ColumnType::String
                } else {
                    match types.get(name).map(|s| s.as_str()) {
                        Some("Time") => ColumnType::Time64,
                        Some("String" | "UUID") => ColumnType::String,
                        _ => ColumnType::Float64,
                    }
                };
                Column::new(name.clone(), ty)
            })
            .collect()
    }

    /// The output schema, named as h2o-genmodel names the prediction columns.
    pub fn output_schema(&self) -> Result<Vec<Column>, MojoProblem> {
        let f64col = |n: &str| Column::new(n, ColumnType::Float64);
        let ini_name = format!("{}model.ini", self.prefix);
        Ok(match self.category() {
            "Binomial" | "Multinomial" | "Ordinal" => {
                let domain = self.response_domain().ok_or_else(|| {
                    MojoProblem::new(&ini_name, "classifier without a response domain")
                })?;
                let mut cols = vec![Column::new("predict", ColumnType::String)];
                cols.extend(domain.iter().map(|l| f64col(&class_column_name(l))));
                cols
            }
            "Regression" | "HGLMRegression" => vec![f64col("predict")],
            "Clustering" => vec![Column::new("cluster", ColumnType::Int32)],
            "AnomalyDetection" => {
                if self.algo() == "extendedisolationforest" {
                    vec![f64col("anomaly_score"), f64col("mean_length")]
                } else if self.ini.get_bool("output_anomaly_flag") == Some(true) {
                    // IsolationForestMojoModel.getOutputNames with the anomaly flag.
                    vec![f64col("predict"), f64col("score"), f64col("mean_length")]
                } else {
                    vec![f64col("predict"), f64col("mean_length")]
                }
            }
            "AutoEncoder" => {
                let mut cols = Vec::new();
                for i in 0..self.n_inputs() {
                    let name = &self.ini.columns[i];
                    match &self.domains[i] {
                        Some(levels) => {
                            for l in levels {
                                cols.push(f64col(&format!("reconstr_{name}.{l}")));
                            }
                            cols.push(f64col(&format!("reconstr_{name}.missing(NA)")));
                        }
                        None => cols.push(f64col(&format!("reconstr_{name}"))),
                    }
                }
                cols
            }
            "DimReduction" => {
                let (key, prefix) = match self.algo().as_str() {
                    "pca" => ("k", "PC"),
                    "glrm" => ("ncolX", "Arch"),
                    other => {
                        return Err(MojoProblem::unsupported(
                            &ini_name,
                            format!("dimension reduction by {other:?} has no known output names"),
                        ))
                    }
                };
                let k = self
                    .ini
                    .get_usize(key)
                    .ok_or_else(|| MojoProblem::new(&ini_name, format!("`{key}` is missing")))?;
                (1..=k).map(|i| f64col(&format!("{prefix}{i}"))).collect()
            }
            "WordEmbedding" => {
                let k = self
                    .ini
                    .get_usize("vec_size")
                    .ok_or_else(|| MojoProblem::new(&ini_name, "`vec_size` is missing"))?;
                (1..=k).map(|i| f64col(&format!("C{i}"))).collect()
            }
            "CoxPH" => vec![f64col("lp")],
            "BinomialUplift" => vec![
                f64col("uplift_predict"),
                f64col("p_y1_with_treatment"),
                f64col("p_y1_without_treatment"),
            ],
            other => {
                return Err(MojoProblem::unsupported(
                    &ini_name,
                    format!("model category {other:?} has no scoring output this project knows"),
                ))
            }
        })
    }

    /// Format metadata for the manifest.
    pub fn metadata(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let ini = &self.ini;
        let s = |k: &str| {
            ini.get(k)
                .map(|v| Value::String(v.to_string()))
                .unwrap_or(Value::Null)
        };
        m.insert("algo".into(), json!(self.algo()));
        m.insert("algorithm".into(), s("algorithm"));
        m.insert("category".into(), s("category"));
        m.insert("h2o_version".into(), s("h2o_version"));
        m.insert("mojo_version".into(), s("mojo_version"));
        m.insert("uuid".into(), s("uuid"));
        m.insert("supervised".into(), json!(self.supervised()));
        m.insert("n_features".into(), json!(ini.get_usize("n_features")));
        m.insert("n_classes".into(), json!(ini.get_usize("n_classes")));
        m.insert("n_columns".into(), json!(ini.columns.len()));
        m.insert("response_column".into(), json!(self.response_column()));
        m.insert("response_domain".into(), json!(self.response_domain()));
        m.insert(
            "default_threshold".into(),
            json!(ini.get_f64("default_threshold").filter(|v| v.is_finite())),
        );
        m.insert(
            "offset_column".into(),
            json!(ini.get("offset_column").filter(|v| *v != "null")),
        );
        let domains: Map<String, Value> = self
            .ini
            .columns
            .iter()
            .zip(&self.domains)
            .filter_map(|(c, d)| d.as_ref().map(|d| (c.clone(), json!(d))))
            .collect();
        m.insert("domains".into(), Value::Object(domains));
        m.insert("model_details".into(), json!(self.details.is_some()));
        if let Some(params) = self.model_parameters() {
            m.insert("model_parameters".into(), Value::Object(params));
        }
        m.insert(
            "info".into(),
            Value::Object(
                ini.info
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        );
        if !self.submodels.is_empty() {
            let subs: Vec<Value> = self
                .submodels
                .iter()
                .map(|(key, sub)| {
                    json!({"key": key, "dir": sub.prefix, "algo": sub.algo(), "category": sub.category()})
                })
                .collect();
            m.insert("submodels".into(), Value::Array(subs));
        }
        m
    }
}

impl Mojo {
    /// Training parameters from `modelDetails.json` (`parameters[].actual_value`), with
    /// key objects (frames, columns) reduced to their names and nulls left out.
    pub fn model_parameters(&self) -> Option<Map<String, Value>> {
        let params = self.details.as_ref()?.get("parameters")?.as_array()?;
        let mut out = Map::new();
        for p in params {
            let (Some(name), Some(v)) = (
                p.get("name").and_then(|n| n.as_str()),
                p.get("actual_value"),
            ) else {
                continue;
            };
            let v = match v {
                Value::Null => continue,
                Value::Object(o) => match o.get("name").or_else(|| o.get("column_name")) {
                    Some(n) => n.clone(),
                    None => continue,
                },
                Value::Array(a) if a.iter().any(|x| x.is_object()) => continue,
                other => other.clone(),
            };
            out.insert(name.to_string(), v);
        }
        Some(out)
    }
}

/// H2O names a class-probability column after its label, with a `p` prefix when the
/// label parses as a Java int (`Model.makeScoringNames`).
pub fn class_column_name(label: &str) -> String {
    if label.parse::<i32>().is_ok() {
        format!("p{label}")
    } else {
        label.to_string()
    }
}

fn algo_of(ini: &ModelIni) -> Option<String> {
    let algorithm = ini.get("algorithm")?;
    if let Some(a) = ini.get("algo") {
        if !a.is_empty() {
            return Some(a.to_string());
        }
    }
    ALGORITHMS
        .iter()
        .find(|(name, _)| *name == algorithm)
        .map(|(_, short)| short.to_string())
}
