//! What the clients need to know about the served model, read from the server itself
//! (`/model/schema`, `/model/sample_request`, `/model/capabilities`) so that the tool
//! works with any model: the input fields, which of them are numeric, a valid row, and
//! whether it has Shapley values. Also the request bodies
//! built from them, or from the rows of a CSV file.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http;

const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The input side of the served model.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub fields: Vec<String>,
    /// `dataType` of each input (`Float64`, `Str`, ...).
    pub types: Vec<String>,
    /// The server's own sample row (valid by definition).
    pub sample: Vec<String>,
    /// `/model/capabilities` names a `CONTRIBUTION_*`: `/model/contribution` scores.
    pub contributions: bool,
    /// The Shapley type of that capability (`ORIGINAL`, `TRANSFORMED`), which
    /// `/model/score` also accepts.
    pub shapley: Option<String>,
}

impl Target {
    /// Reads the schema and the sample request of the server at `addr`.
    pub async fn fetch(addr: SocketAddr) -> Result<Target> {
        let schema = get_json(addr, "/model/schema").await?;
        let sample = get_json(addr, "/model/sample_request").await?;
        let capabilities = get_json(addr, "/model/capabilities").await?;
        let shapley = capabilities.as_array().and_then(|a| {
            a.iter()
                .find_map(|c| c.as_str().and_then(|c| c.strip_prefix("CONTRIBUTION_")))
                .map(str::to_owned)
        });
        let contributions = shapley.is_some();
        let bad = |what: &str| Error::Server {
            request: "GET /model/schema".into(),
            detail: format!("no {what} in the answer"),
        };
        let inputs = schema["schema"]["inputFields"]
            .as_array()
            .ok_or_else(|| bad("schema.inputFields"))?;
        let mut fields = Vec::new();
        let mut types = Vec::new();
        for f in inputs {
            fields.push(f["name"].as_str().ok_or_else(|| bad("name"))?.to_string());
            types.push(
                f["dataType"]
                    .as_str()
                    .ok_or_else(|| bad("dataType"))?
                    .to_string(),
            );
        }
        let sample_fields = strings(&sample["fields"]);
        let row = sample["rows"][0].clone();
        let row = strings(&row);
        if sample_fields != fields || row.len() != fields.len() {
            return Err(Error::Server {
                request: "GET /model/sample_request".into(),
                detail: format!(
                    "fields {sample_fields:?} and row {row:?} do not match the schema's {fields:?}"
                ),
            });
        }
        if fields.is_empty() {
            return Err(bad("input field"));
        }
        Ok(Target {
            addr,
            fields,
            types,
            sample: row,
            contributions,
            shapley,
        })
    }

    pub fn is_numeric(&self, i: usize) -> bool {
        matches!(
            self.types[i].as_str(),
            "Int32" | "Int64" | "Float32" | "Float64"
        )
    }

    /// A `/model/score` body with `rows`, the sample row repeated.
    pub fn sample_body(&self, rows: usize) -> Vec<u8> {
        score_body(&self.fields, &vec![self.sample.clone(); rows])
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn get_json(addr: SocketAddr, path: &str) -> Result<Value> {
    let r = http::get(addr, path, SETUP_TIMEOUT).await?;
    if r.status != 200 {
        return Err(Error::Server {
            request: format!("GET {path}"),
            detail: format!("status {}: {}", r.status, r.text()),
        });
    }
    serde_json::from_slice(&r.body).map_err(|e| Error::Server {
        request: format!("GET {path}"),
        detail: format!("not JSON: {e}"),
    })
}

/// `{"fields": fields, "rows": rows}`.
pub fn score_body(fields: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "fields": fields, "rows": rows })).expect("strings serialize")
}

/// An Open Inference Protocol v2 inference request of `rows` (cells under `fields`): one
/// 1-D JSON tensor per model input (`inputs`, of MLOps `types`), numbers as numbers (an
/// empty or unreadable numeric cell as `null`, a missing value), text as strings.
pub fn v2_body(
    inputs: &[String],
    types: &[String],
    fields: &[String],
    rows: &[Vec<String>],
) -> Result<Vec<u8>> {
    let mut tensors = Vec::with_capacity(inputs.len());
    for (name, ty) in inputs.iter().zip(types) {
        let p = fields.iter().position(|f| f == name).ok_or_else(|| {
            Error::Usage(format!(
                "the rows have no field {name:?}, an input of the model"
            ))
        })?;
        let cells = rows.iter().map(|r| r[p].as_str());
        let (datatype, data): (&str, Vec<Value>) = match ty.as_str() {
            "Float64" | "Float32" => (
                if ty == "Float64" { "FP64" } else { "FP32" },
                cells
                    .map(|c| c.parse::<f64>().map_or(Value::Null, |f| json!(f)))
                    .collect(),
            ),
            "Int32" | "Int64" => (
                if ty == "Int64" { "INT64" } else { "INT32" },
                cells
                    .map(|c| c.parse::<i64>().map_or(Value::Null, |i| json!(i)))
                    .collect(),
            ),
            "Bool" => (
                "BOOL",
                cells
                    .map(|c| json!(c.eq_ignore_ascii_case("true")))
                    .collect(),
            ),
            _ => ("BYTES", cells.map(|c| json!(c)).collect()),
        };
        tensors
            .push(json!({"name": name, "datatype": datatype, "shape": [rows.len()], "data": data}));
    }
    Ok(serde_json::to_vec(&json!({ "inputs": tensors })).expect("JSON values serialize"))
}

/// A CSV file's header and rows (cells as text; an empty cell stays empty).
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let err = |detail: String| Error::Csv {
        path: path.to_path_buf(),
        detail,
    };
    let mut r = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        rows.push(rec.iter().map(str::to_owned).collect());
    }
    if header.is_empty() || rows.is_empty() {
        return Err(err("expected a header row and at least one data row".into()));
    }
    Ok((header, rows))
}

/// `n` rows taken from `rows` in order, starting again from the first when they run out.
pub fn cycle_rows(rows: &[Vec<String>], n: usize) -> Vec<Vec<String>> {
    rows.iter().cycle().take(n).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_row_cycling() {
        let rows = vec![vec!["1".to_string()], vec!["2".to_string()]];
        let cases = [
            ("fewer", 1, vec!["1"]),
            ("same", 2, vec!["1", "2"]),
            ("more", 5, vec!["1", "2", "1", "2", "1"]),
        ];
        for (name, n, want) in cases {
            let got: Vec<String> = cycle_rows(&rows, n)
                .into_iter()
                .map(|r| r[0].clone())
                .collect();
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            String::from_utf8(score_body(&["a".into()], &rows)).unwrap(),
            r#"{"fields":["a"],"rows":[["1"],["2"]]}"#
        );
    }

    #[test]
    fn csv_needs_a_header_and_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("ok", "a,b\n1,\n", Some(2usize)),
            ("header only", "a,b\n", None),
            ("ragged", "a,b\n1,2,3\n", None),
        ];
        for (name, text, want) in cases {
            let p = dir.path().join(format!("{}.csv", name.replace(' ', "_")));
            std::fs::write(&p, text).unwrap();
            match (read_csv(&p), want) {
                (Ok((h, rows)), Some(w)) => {
                    assert_eq!(h.len(), w, "{name}");
                    assert_eq!(rows[0][1], "", "{name}: empty cell kept");
                }
                (Err(e), None) => {
                    assert!(e.to_string().contains(&*p.to_string_lossy()), "{name}: {e}")
                }
                (r, w) => panic!("{name}: got {r:?}, want {w:?}"),
            }
        }
    }
}
