//! The Python environment an MLflow model records: its Python version and package
//! requirements, from `requirements.txt`, `python_env.yaml` (virtualenv, written from
//! MLflow 1.29 on) and `conda.yaml`, so that a runtime can build or pick a matching
//! environment without opening the model.

use serde_json::{Map, Value};

/// What the environment files say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvInfo {
    /// Requirement lines (comments and blank lines dropped).
    pub requirements: Vec<String>,
    /// The file the requirements were read from.
    pub requirements_file: Option<String>,
    /// Python version from `python_env.yaml` or the conda `python=` dependency.
    pub python_version: Option<String>,
    /// `python_env.yaml` as read.
    pub python_env: Option<Value>,
    /// `conda.yaml` as read.
    pub conda_env: Option<Value>,
}

/// Requirement lines of a requirements file.
pub fn requirement_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn string_list(v: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                crate::yaml::scalar(i)
                    .map_err(|d| format!("{key}: {d}"))?
                    .ok_or_else(|| format!("{key}: null entry"))
            })
            .collect(),
        Some(other) => Err(format!(
            "{key}: expected a list, found {}",
            crate::yaml::kind(other)
        )),
    }
}

/// `python_env.yaml`: `{python, build_dependencies, dependencies}`.
/// Returns (python version, dependency lines).
pub fn read_python_env(v: &Value) -> Result<(Option<String>, Vec<String>), String> {
    let m = v.as_object().ok_or_else(|| {
        format!(
            "expected a map with python and dependencies, found {}",
            crate::yaml::kind(v)
        )
    })?;
    let python = match m.get("python") {
        None => None,
        Some(p) => crate::yaml::scalar(p).map_err(|d| format!("python: {d}"))?,
    };
    string_list(m.get("build_dependencies"), "build_dependencies")?;
    let deps = string_list(m.get("dependencies"), "dependencies")?;
    Ok((python, deps))
}

/// `conda.yaml`: `{name, channels, dependencies: [python=3.x, pip, {pip: [...]}]}`.
/// Returns (python version, pip requirement lines).
pub fn read_conda(v: &Value) -> Result<(Option<String>, Vec<String>), String> {
    let m: &Map<String, Value> = v.as_object().ok_or_else(|| {
        format!(
            "expected a map with dependencies, found {}",
            crate::yaml::kind(v)
        )
    })?;
    let mut python = None;
    let mut pip = Vec::new();
    match m.get("dependencies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(deps)) => {
            for d in deps {
                match d {
                    Value::Object(sub) => {
                        pip.extend(string_list(sub.get("pip"), "dependencies.pip")?);
                    }
                    other => {
                        let Some(s) =
                            crate::yaml::scalar(other).map_err(|e| format!("dependencies: {e}"))?
                        else {
                            continue;
                        };
                        if let Some(ver) = s.strip_prefix("python") {
                            let ver = ver.trim_start_matches(['=', ' ']);
                            if !ver.is_empty()
                                && ver.chars().next().is_some_and(|c| c.is_ascii_digit())
                            {
                                python = Some(ver.to_string());
                            }
                        }
                    }
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "dependencies: expected a list, found {}",
                crate::yaml::kind(other)
            ))
        }
    }
    Ok((python, pip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda() {
        type Want<'a> = Result<(Option<&'a str>, &'a [&'a str]), &'a str>;
        let cases: &[(&str, &str, Want)] = &[
            (
                "mlflow 2.x",
                "name: mlflow-env\nchannels: [conda-forge]\ndependencies:\n- python=3.11.7\n- pip<=24.0\n- pip:\n  - mlflow==3.17.2\n  - scikit-learn==1.9.1\n",
                Ok((Some("3.11.7"), &["mlflow==3.17.2", "scikit-learn==1.9.1"])),
            ),
            (
                "mlflow 1.x",
                "name: mlflow-env\nchannels: [conda-forge]\ndependencies:\n- python=3.8.10\n- pip\n- pip:\n  - mlflow\n  - cloudpickle==2.2.0\n",
                Ok((Some("3.8.10"), &["mlflow", "cloudpickle==2.2.0"])),
            ),
            ("no deps", "name: x\n", Ok((None, &[]))),
            ("deps map", "dependencies: {a: b}\n", Err("expected a list")),
            ("not a map", "- a\n", Err("expected a map")),
        ];
        for (label, text, want) in cases {
            let v = crate::yaml::parse(text.as_bytes()).unwrap();
            let got = read_conda(&v);
            match (want, &got) {
                (Ok((py, pip)), Ok((gpy, gpip))) => {
                    assert_eq!(gpy.as_deref(), *py, "case {label}");
                    assert_eq!(gpip, pip, "case {label}");
                }
                (Err(w), Err(e)) => assert!(e.contains(w), "case {label}: {e}"),
                _ => panic!("case {label}: {got:?}"),
            }
        }
    }

    #[test]
    fn python_env() {
        let v = crate::yaml::parse(b"python: 3.11.7\nbuild_dependencies:\n- pip==24.0\ndependencies:\n- -r requirements.txt\n").unwrap();
        let (py, deps) = read_python_env(&v).unwrap();
        assert_eq!(py.as_deref(), Some("3.11.7"));
        assert_eq!(deps, vec!["-r requirements.txt"]);
        let bad = crate::yaml::parse(b"python: 3.11.7\ndependencies: x\n").unwrap();
        assert!(read_python_env(&bad).is_err());
    }

    #[test]
    fn lines() {
        assert_eq!(
            requirement_lines("mlflow==3.17.2\n\n# comment\n  numpy==2.4.6  \n"),
            vec!["mlflow==3.17.2", "numpy==2.4.6"]
        );
    }
}
