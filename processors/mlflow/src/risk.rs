//! Which payload files execute code when a runtime loads them.
//!
//! MLflow flavors serialize many models with pickle, cloudpickle, joblib or `torch.save`;
//! loading such a file runs whatever code it names (CVE-2024-37052 … 37060). The
//! processor never loads them; it flags them in the manifest so that a deployer can
//! decide. The flavor settings decide first (`serialization_format`, `python_model`,
//! statsmodels and fastai `data`), then file extensions catch the rest.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::layout::ModelFiles;
use crate::mlmodel::{MlModel, PYFUNC};

/// Format of a file by its name, when the name says it is a pickle of some kind.
fn format_by_name(path: &str) -> Option<&'static str> {
    let base = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = base.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "pkl" | "pickle" => Some("pickle"),
        "cloudpickle" => Some("cloudpickle"),
        "joblib" => Some("joblib"),
        "pt" | "pth" => Some("torch pickle"),
        "statsmodels" | "fastai" | "pmdarima" => Some("pickle"),
        _ if base == "pytorch_model.bin" => Some("torch pickle"),
        _ => None,
    }
}

/// Pickle-like formats named by `serialization_format`.
fn is_code_format(f: &str) -> bool {
    matches!(f, "pickle" | "cloudpickle" | "joblib")
}

/// Files of the model (relative to the model root) that run code when loaded, with their format.
pub fn code_files(m: &MlModel, files: &ModelFiles) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for f in files.files.keys() {
        if let Some(fmt) = format_by_name(f) {
            out.insert(f.clone(), fmt.to_string());
        }
    }
    let s = |conf: &serde_json::Map<String, Value>, k: &str| {
        conf.get(k).and_then(Value::as_str).map(str::to_string)
    };
    for (name, conf) in &m.flavors {
        let Some(conf) = conf.as_object() else {
            continue;
        };
        let serialization = s(conf, "serialization_format");
        let mut mark = |path: Option<String>, fmt: &str| {
            if let Some(p) = path {
                let p = artifact_core::names::normalize_entry_name(
                    &p,
                    &artifact_core::Limits::default(),
                )
                .unwrap_or(p);
                if files.is_file(&p) {
                    out.insert(p, fmt.to_string());
                }
            }
        };
        match name.as_str() {
            "sklearn" | "lightgbm" | "catboost" => {
                let path = s(conf, "pickled_model").or_else(|| s(conf, "data"));
                match serialization.as_deref() {
                    Some(f) if is_code_format(f) => mark(path, f),
                    Some(_) => {
                        // skops and native formats: not a pickle, whatever the name.
                        if let Some(p) = path {
                            out.remove(&p);
                        }
                    }
                    None if name == "sklearn" => mark(path, "pickle"),
                    None => {}
                }
            }
            "statsmodels" | "fastai" => mark(s(conf, "data"), "pickle"),
            PYFUNC => mark(s(conf, "python_model"), "cloudpickle"),
            _ => {}
        }
    }
    out
}

/// The manifest's `pickle_risk` for payload files, `prefix` being where the model sits in
/// the target (`model/` for the pyfunc folder).
pub fn summary(code: &BTreeMap<String, String>, include: impl Fn(&str) -> Option<String>) -> Value {
    let files: Vec<Value> = code
        .iter()
        .filter_map(|(p, f)| include(p).map(|dest| json!({"path": dest, "format": f})))
        .collect();
    json!({
        "executes_code_on_load": !files.is_empty(),
        "files": files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("model.pkl", Some("pickle")),
            ("data/model.pth", Some("torch pickle")),
            ("x/custom_objects.cloudpickle", Some("cloudpickle")),
            ("m.joblib", Some("joblib")),
            ("model.statsmodels", Some("pickle")),
            ("model.ubj", None),
            ("model.onnx", None),
            ("weights.bin", None),
            ("model.skops", None),
        ];
        for (name, want) in cases {
            assert_eq!(format_by_name(name), *want, "case {name}");
        }
    }
}
