//! The `MLmodel` file of MLflow 1.x, 2.x and 3.x: what the processor needs from it, read
//! from the YAML value without dropping anything (the whole document goes to the
//! manifest, unknown keys included).
//!
//! Version differences handled here: the pyfunc `env` is a string (`conda.yaml`) before
//! MLflow 2.0 and a map `{conda, virtualenv}` from 2.0 on; `signature.params` exists from
//! 2.6; 3.x adds sibling keys (`is_signature_from_type_hint`, `model_id`, `prompts`, ...).

use serde_json::{Map, Value};

use crate::yaml::{kind, scalar};

/// Name of the pyfunc flavor.
pub const PYFUNC: &str = "python_function";

/// The parsed `MLmodel`.
#[derive(Debug, Clone)]
pub struct MlModel {
    /// The whole document as read.
    pub raw: Map<String, Value>,
    /// Flavor name → its configuration map.
    pub flavors: Map<String, Value>,
    pub mlflow_version: Option<String>,
    pub model_uuid: Option<String>,
    pub utc_time_created: Option<String>,
    pub run_id: Option<String>,
    pub artifact_path: Option<String>,
    pub model_id: Option<String>,
    pub pyfunc: Option<Pyfunc>,
    /// `signature` map (`inputs`, `outputs`, `params`); `None` when absent or null.
    pub signature: Option<Map<String, Value>>,
    /// `saved_input_example_info` map, when present.
    pub input_example: Option<Map<String, Value>>,
}

/// The `python_function` flavor.
#[derive(Debug, Clone)]
pub struct Pyfunc {
    pub loader_module: String,
    pub python_version: Option<String>,
    pub env: Option<Env>,
}

/// The pyfunc `env` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Env {
    /// MLflow < 2.0: the path of a conda environment file.
    Conda(String),
    /// MLflow ≥ 2.0: `{conda: conda.yaml, virtualenv: python_env.yaml}`.
    Map {
        conda: Option<String>,
        virtualenv: Option<String>,
    },
}

impl Env {
    pub fn conda(&self) -> Option<&str> {
        match self {
            Env::Conda(c) => Some(c),
            Env::Map { conda, .. } => conda.as_deref(),
        }
    }

    pub fn virtualenv(&self) -> Option<&str> {
        match self {
            Env::Conda(_) => None,
            Env::Map { virtualenv, .. } => virtualenv.as_deref(),
        }
    }
}

/// A structural problem: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub key: String,
    pub detail: String,
}

fn key_err(key: impl Into<String>, detail: impl Into<String>) -> KeyError {
    KeyError {
        key: key.into(),
        detail: detail.into(),
    }
}

fn opt_string(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Option<String>, KeyError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => scalar(v).map_err(|d| key_err(format!("{prefix}{key}"), d)),
    }
}

impl MlModel {
    /// Reads the structure from the YAML value of `MLmodel`.
    pub fn from_value(v: Value) -> Result<MlModel, KeyError> {
        let raw = match v {
            Value::Object(m) => m,
            Value::Null => return Err(key_err("(document)", "the file is empty")),
            other => {
                return Err(key_err(
                    "(document)",
                    format!(
                        "the top level must be a map of keys, found {}",
                        kind(&other)
                    ),
                ))
            }
        };
        let flavors = match raw.get("flavors") {
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(key_err(
                    "flavors",
                    format!(
                        "expected a map of flavor name to configuration, found {}",
                        kind(other)
                    ),
                ))
            }
            None => {
                return Err(key_err(
                    "flavors",
                    "missing: every MLmodel has a flavors map",
                ))
            }
        };
        for (name, conf) in &flavors {
            if !conf.is_object() {
                return Err(key_err(
                    format!("flavors.{name}"),
                    format!("expected a map of flavor settings, found {}", kind(conf)),
                ));
            }
        }
        let pyfunc = match flavors.get(PYFUNC) {
            Some(Value::Object(p)) => Some(Pyfunc::from_map(p)?),
            _ => None,
        };
        let signature = match raw.get("signature") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                return Err(key_err(
                    "signature",
                    format!(
                        "expected a map with inputs and outputs, found {}",
                        kind(other)
                    ),
                ))
            }
        };
        let input_example = match raw.get("saved_input_example_info") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                return Err(key_err(
                    "saved_input_example_info",
                    format!("expected a map, found {}", kind(other)),
                ))
            }
        };
        Ok(MlModel {
            mlflow_version: opt_string(&raw, "mlflow_version", "")?,
            model_uuid: opt_string(&raw, "model_uuid", "")?,
            utc_time_created: opt_string(&raw, "utc_time_created", "")?,
            run_id: opt_string(&raw, "run_id", "")?,
            artifact_path: opt_string(&raw, "artifact_path", "")?,
            model_id: opt_string(&raw, "model_id", "")?,
            flavors,
            pyfunc,
            signature,
            input_example,
            raw,
        })
    }

    /// Flavor names, sorted.
    pub fn flavor_names(&self) -> Vec<String> {
        self.flavors.keys().cloned().collect()
    }

    /// A flavor's configuration map.
    pub fn flavor(&self, name: &str) -> Option<&Map<String, Value>> {
        self.flavors.get(name).and_then(Value::as_object)
    }
}

impl Pyfunc {
    fn from_map(p: &Map<String, Value>) -> Result<Pyfunc, KeyError> {
        let prefix = "flavors.python_function.";
        let loader_module = opt_string(p, "loader_module", prefix)?.ok_or_else(|| {
            key_err(
                "flavors.python_function.loader_module",
                "missing: the pyfunc flavor must name the module that loads the model (e.g. mlflow.sklearn)",
            )
        })?;
        let env = match p.get("env") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Env::Conda(s.clone())),
            Some(Value::Object(m)) => {
                for k in m.keys() {
                    if k != "conda" && k != "virtualenv" {
                        tracing::warn!(key = %k, "flavors.python_function.env has an unknown key; kept in the manifest, not checked");
                    }
                }
                Some(Env::Map {
                    conda: opt_string(m, "conda", "flavors.python_function.env.")?,
                    virtualenv: opt_string(m, "virtualenv", "flavors.python_function.env.")?,
                })
            }
            Some(other) => {
                return Err(key_err(
                    "flavors.python_function.env",
                    format!(
                        "expected a file name (MLflow 1.x) or a map {{conda, virtualenv}} (MLflow 2.0 and later), found {}",
                        kind(other)
                    ),
                ))
            }
        };
        Ok(Pyfunc {
            loader_module,
            python_version: opt_string(p, "python_version", prefix)?,
            env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MlModel, KeyError> {
        MlModel::from_value(crate::yaml::parse(text.as_bytes()).expect("yaml"))
    }

    #[test]
    fn env_shapes() {
        let cases: &[(&str, &str, Option<Env>)] = &[
            (
                "1.x string",
                "flavors:\n  python_function: {loader_module: mlflow.sklearn, env: conda.yaml}\n",
                Some(Env::Conda("conda.yaml".into())),
            ),
            (
                "2.x map",
                "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    env: {conda: conda.yaml, virtualenv: python_env.yaml}\n",
                Some(Env::Map {
                    conda: Some("conda.yaml".into()),
                    virtualenv: Some("python_env.yaml".into()),
                }),
            ),
            (
                "absent",
                "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n",
                None,
            ),
        ];
        for (label, text, want) in cases {
            let m = parse(text).unwrap_or_else(|e| panic!("case {label}: {e:?}"));
            assert_eq!(m.pyfunc.expect("pyfunc").env, *want, "case {label}");
        }
    }

    #[test]
    fn structure_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("list at top", "- a\n- b\n", "(document)"),
            ("empty", "", "(document)"),
            ("no flavors", "mlflow_version: 2.9.2\n", "flavors"),
            ("flavors list", "flavors: [a]\n", "flavors"),
            (
                "flavor not map",
                "flavors: {sklearn: 3}\n",
                "flavors.sklearn",
            ),
            (
                "env list",
                "flavors:\n  python_function: {loader_module: m, env: [a]}\n",
                "flavors.python_function.env",
            ),
            (
                "no loader",
                "flavors:\n  python_function: {python_version: 3.8.10}\n",
                "flavors.python_function.loader_module",
            ),
            (
                "signature string",
                "flavors: {}\nsignature: x\n",
                "signature",
            ),
            (
                "uuid map",
                "flavors: {}\nmodel_uuid: {a: b}\n",
                "model_uuid",
            ),
        ];
        for (label, text, key) in cases {
            let err = parse(text).expect_err(label);
            assert_eq!(err.key, *key, "case {label}: {err:?}");
        }
    }

    #[test]
    fn unknown_keys_are_kept() {
        let m =
            parse("flavors: {}\nfuture_key: {nested: [1, 2]}\nmlflow_version: 4.0.0\n").unwrap();
        assert_eq!(m.raw["future_key"]["nested"][1], 2);
        assert_eq!(m.mlflow_version.as_deref(), Some("4.0.0"));
    }
}
