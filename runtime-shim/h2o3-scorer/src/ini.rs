//! A reader for `model.ini`, following h2o-genmodel's own rules (FORMATS.md §3.2).
//!
//! Generic INI crates misread this file (bare column names in `[columns]`, `:` and `=`
//! inside names), so it has a small reader of its own.

use std::collections::BTreeMap;

/// A `[domains]` line: column `col` is categorical with `levels` levels in `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRef {
    pub col: usize,
    pub levels: usize,
    pub file: String,
}

/// The parsed `model.ini`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelIni {
    /// `[info]` keys in file order, values raw.
    pub info: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub domains: Vec<DomainRef>,
}

/// Why `model.ini` could not be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    pub line: usize,
    pub detail: String,
}

impl std::fmt::Display for IniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.detail)
    }
}

/// Longest line accepted; a real `model.ini` line (a GLM beta array) stays far below.
pub const MAX_LINE_BYTES: usize = 64 << 20;

impl ModelIni {
    pub fn parse(text: &str) -> Result<ModelIni, IniError> {
        #[derive(PartialEq)]
        enum Section {
            None,
            Info,
            Columns,
            Domains,
            Other,
        }
        let mut ini = ModelIni::default();
        let mut section = Section::None;
        let mut n_columns: Option<usize> = None;
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let err = |detail: String| IniError {
                line: lineno,
                detail,
            };
            if raw.len() > MAX_LINE_BYTES {
                return Err(err(format!(
                    "line is {} bytes long, more than {MAX_LINE_BYTES}",
                    raw.len()
                )));
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') && section != Section::Columns
                || matches!(line, "[info]" | "[columns]" | "[domains]")
            {
                section = match line {
                    "[info]" => Section::Info,
                    "[columns]" => {
                        let n = ini.get("n_columns").ok_or_else(|| {
                            err("`n_columns` is missing from [info] before [columns]".into())
                        })?;
                        n_columns =
                            Some(n.parse().map_err(|_| {
                                err(format!("`n_columns` = {n:?} is not a number"))
                            })?);
                        Section::Columns
                    }
                    "[domains]" => Section::Domains,
                    _ => Section::Other,
                };
                continue;
            }
            match section {
                Section::Info => {
                    let Some(eq) = line.find('=') else {
                        return Err(err(format!(
                            "expected `key = value` in [info], found {line:?}"
                        )));
                    };
                    let key = line[..eq].trim_end().to_string();
                    let value = line[eq + 1..].trim_start().to_string();
                    if key.is_empty() {
                        return Err(err("empty key in [info]".into()));
                    }
                    ini.info.push((key, value));
                }
                Section::Columns => {
                    if Some(ini.columns.len()) == n_columns {
                        return Err(err(format!(
                            "[columns] has more lines than n_columns = {}",
                            n_columns.unwrap_or(0)
                        )));
                    }
                    ini.columns.push(line.to_string());
                }
                Section::Domains => {
                    let bad = || {
                        err(format!(
                            "expected `<column>: <levels> <file>` in [domains], found {line:?}"
                        ))
                    };
                    let (col, rest) = line.split_once(':').ok_or_else(bad)?;
                    let rest = rest.trim_start();
                    let (levels, file) = rest.split_once(' ').ok_or_else(bad)?;
                    let col: usize = col.trim().parse().map_err(|_| bad())?;
                    let levels: usize = levels.trim().parse().map_err(|_| bad())?;
                    ini.domains.push(DomainRef {
                        col,
                        levels,
                        file: file.trim().to_string(),
                    });
                }
                Section::None => {
                    return Err(err(format!("{line:?} before any section; expected [info]")))
                }
                Section::Other => {}
            }
        }
        // `n_columns` without a `[columns]` section (a misspelled header) is as wrong as
        // a section with too few names.
        let n_columns = n_columns.or_else(|| ini.get_usize("n_columns"));
        if let Some(n) = n_columns {
            if ini.columns.len() != n {
                return Err(IniError {
                    line: text.lines().count(),
                    detail: format!(
                        "n_columns = {n} but [columns] lists {} names",
                        ini.columns.len()
                    ),
                });
            }
        } else if ini.info.is_empty() {
            return Err(IniError {
                line: 1,
                detail: "no [info] section".into(),
            });
        }
        Ok(ini)
    }

    /// An `[info]` value (the first, if a key repeats).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.info
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn info_map(&self) -> BTreeMap<String, String> {
        self.info.iter().cloned().collect()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    pub fn get_usize(&self, key: &str) -> Option<usize> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(parse_java_double)
    }

    /// An array value in `Arrays.toString` form, `[a, b, c]` (`null` gives `None`).
    pub fn get_array(&self, key: &str) -> Option<Vec<String>> {
        parse_array(self.get(key)?)
    }

    pub fn get_f64_array(&self, key: &str) -> Option<Vec<f64>> {
        self.get_array(key)?
            .iter()
            .map(|s| parse_java_double(s))
            .collect()
    }
}

/// Parses `[a, b, c]`; `null` and non-arrays give `None`.
pub fn parse_array(v: &str) -> Option<Vec<String>> {
    let v = v.trim();
    let inner = v.strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(inner.split(',').map(|s| s.trim().to_string()).collect())
}

/// Parses a number as Java's `Double.toString`/`parseDouble` writes it (`NaN`, `Infinity`).
pub fn parse_java_double(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let text = "[info]\nh2o_version = 3.32.1.7\nalgorithm = Gradient Boosting Machine\nn_columns = 3\nweird = a = b\n\n[columns]\nAGE\n has space = : \nCAPSULE\n\n[domains]\n2: 2 d000.txt\n";
        let ini = ModelIni::parse(text).unwrap();
        assert_eq!(ini.get("weird"), Some("a = b"));
        assert_eq!(ini.columns, vec!["AGE", "has space = :", "CAPSULE"]);
        assert_eq!(
            ini.domains,
            vec![DomainRef {
                col: 2,
                levels: 2,
                file: "d000.txt".into()
            }]
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "columns before n_columns",
                "[info]\nalgorithm = x\n[columns]\na\n",
                "n_columns",
            ),
            (
                "too many columns",
                "[info]\nn_columns = 1\n[columns]\na\nb\n",
                "more lines than n_columns",
            ),
            (
                "too few columns",
                "[info]\nn_columns = 3\n[columns]\na\n",
                "lists 1 names",
            ),
            (
                "bad domain",
                "[info]\nn_columns = 1\n[columns]\na\n[domains]\nx y\n",
                "[domains]",
            ),
            ("no section", "key = value\n", "before any section"),
            (
                "no [columns] section",
                "[info]\nn_columns = 3\n[bolumns]\na\nb\ny\n",
                "n_columns = 3 but [columns] lists 0 names",
            ),
            ("info without =", "[info]\njunk\n", "key = value"),
        ];
        for (label, text, needle) in cases {
            let e = ModelIni::parse(text).expect_err(label);
            assert!(e.detail.contains(needle), "{label}: {e}");
        }
    }

    #[test]
    fn arrays() {
        assert_eq!(
            parse_array("[1, 2.5, NaN]").unwrap(),
            vec!["1", "2.5", "NaN"]
        );
        assert_eq!(parse_array("null"), None);
        assert!(parse_java_double("NaN").unwrap().is_nan());
    }
}
