//! The TOML generation: `mojo/pipeline.toml` ("MOJO2 2.0", DAI 1.0.28 to 1.6).
//!
//! The root is parsed with a real TOML parser (`uuid`, `time_created`, `missing_values`,
//! `[columns] features/outputs`, `[[transforms]]`). Nested pipelines are called by
//! `[[transforms]] name = 'ExecPipe'` with `pwd` (a folder below `mojo/`) and `filename`;
//! each must exist. DAI writes nested descriptors that are not strict TOML (`[None]`
//! values), so they are only followed further when they parse.

use std::collections::BTreeSet;
use std::path::Path;

use toml::{Table, Value};

use crate::error::DaiError;
use crate::pipeline::{
    map_type, parent, resolve, DaiColumn, Generation, Pipeline, PipelineFiles, MAX_NESTING,
    ROOT_TOML,
};

fn invalid(path: &Path, entry: &str, detail: String) -> DaiError {
    DaiError::Invalid {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        detail,
    }
}

fn parse_table(path: &Path, entry: &str, bytes: &[u8]) -> Result<Table, DaiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DaiError::Toml {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        detail: format!("not UTF-8 at byte {}", e.valid_up_to()),
    })?;
    text.parse::<Table>().map_err(|e| DaiError::Toml {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        detail: e.to_string().trim_end().replace('\n', " | "),
    })
}

fn columns(path: &Path, table: &Table, key: &str) -> Result<Vec<DaiColumn>, DaiError> {
    let cols = table
        .get("columns")
        .ok_or_else(|| invalid(path, ROOT_TOML, "no [columns] table".into()))?
        .as_table()
        .ok_or_else(|| invalid(path, ROOT_TOML, "`columns` is not a table".into()))?;
    let list = cols
        .get(key)
        .ok_or_else(|| invalid(path, ROOT_TOML, format!("[columns] has no `{key}` list")))?
        .as_array()
        .ok_or_else(|| invalid(path, ROOT_TOML, format!("columns.{key} is not a list")))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let pair = item
            .as_array()
            .filter(|a| a.len() >= 2)
            .and_then(|a| Some((a[0].as_str()?, a[1].as_str()?)));
        let Some((name, dai_type)) = pair else {
            return Err(invalid(
                path,
                ROOT_TOML,
                format!(
                    "columns.{key}[{i}] is a {}, expected a ['name', 'type'] pair of strings",
                    item.type_str()
                ),
            ));
        };
        let ty = map_type(dai_type).ok_or_else(|| DaiError::UnknownType {
            path: path.to_path_buf(),
            entry: ROOT_TOML.into(),
            column: name.to_string(),
            dai_type: format!("{dai_type:?}"),
        })?;
        out.push(DaiColumn {
            name: name.to_string(),
            dai_type: dai_type.to_string(),
            ty,
        });
    }
    Ok(out)
}

/// The text of a scalar (a float keeps its `.0`: `mojo_version = 2.0` gives "2.0").
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Datetime(d) => Some(d.to_string()),
        Value::Float(f) => Some(format!("{f:?}")),
        Value::Integer(i) => Some(i.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Array(_) | Value::Table(_) => None,
    }
}

fn optional_string(path: &Path, table: &Table, key: &str) -> Result<Option<String>, DaiError> {
    match table.get(key) {
        None => Ok(None),
        Some(v) => scalar_text(v).map(Some).ok_or_else(|| {
            invalid(
                path,
                ROOT_TOML,
                format!("`{key}` is a {}, expected a string", v.type_str()),
            )
        }),
    }
}

/// `(pwd, filename)` of every `ExecPipe` transform of a descriptor.
fn exec_pipes(path: &Path, entry: &str, table: &Table) -> Result<Vec<String>, DaiError> {
    let Some(transforms) = table.get("transforms") else {
        return Ok(Vec::new());
    };
    let transforms = transforms
        .as_array()
        .ok_or_else(|| invalid(path, entry, "`transforms` is not a list of tables".into()))?;
    let mut refs = Vec::new();
    for (i, t) in transforms.iter().enumerate() {
        let Some(t) = t.as_table() else {
            return Err(invalid(
                path,
                entry,
                format!("transforms[{i}] is not a table"),
            ));
        };
        if t.get("name").and_then(Value::as_str) != Some("ExecPipe") {
            continue;
        }
        let field = |k: &str| {
            t.get(k).and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    path,
                    entry,
                    format!("transforms[{i}] (ExecPipe) has no string `{k}`"),
                )
            })
        };
        let (pwd, filename) = (field("pwd")?, field("filename")?);
        refs.push(format!("{}/{filename}", pwd.trim_end_matches('/')));
    }
    Ok(refs)
}

/// Reads the root `mojo/pipeline.toml` and checks its nested pipelines.
pub fn parse(path: &Path, bytes: &[u8], files: &PipelineFiles) -> Result<Pipeline, DaiError> {
    let table = parse_table(path, ROOT_TOML, bytes)?;
    let mut p = Pipeline::new(Generation::Toml);
    p.inputs = columns(path, &table, "features")?;
    p.outputs = columns(path, &table, "outputs")?;
    p.uuid = optional_string(path, &table, "uuid")?;
    p.time_created = optional_string(path, &table, "time_created")?;
    p.mojo_version = optional_string(path, &table, "mojo_version")?;
    if let Some(mv) = table.get("missing_values") {
        let list = mv
            .as_array()
            .ok_or_else(|| invalid(path, ROOT_TOML, "`missing_values` is not a list".into()))?;
        let mut values = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            values.push(scalar_text(v).ok_or_else(|| {
                invalid(
                    path,
                    ROOT_TOML,
                    format!(
                        "missing_values[{i}] is a {}, expected a string",
                        v.type_str()
                    ),
                )
            })?);
        }
        p.missing_values = Some(values);
    }
    let refs = exec_pipes(path, ROOT_TOML, &table)?;
    let mut seen = BTreeSet::new();
    check_nested(path, files, ROOT_TOML, refs, 1, &mut seen, &mut p.nested)?;
    Ok(p)
}

fn check_nested(
    path: &Path,
    files: &PipelineFiles,
    from: &str,
    refs: Vec<String>,
    depth: usize,
    seen: &mut BTreeSet<String>,
    found: &mut Vec<String>,
) -> Result<(), DaiError> {
    for r in refs {
        // `pwd` is relative to `mojo/`; a nested pipeline's own calls may also be
        // relative to its folder.
        let name = resolve(path, from, &format!("mojo/{r}"), &[parent(from)], files)?
            .or(resolve(path, from, &r, &[parent(from)], files)?)
            .ok_or_else(|| DaiError::MissingReference {
                path: path.to_path_buf(),
                entry: from.to_string(),
                what: "nested pipeline",
                missing: format!("mojo/{r}"),
            })?;
        if !seen.insert(name.clone()) {
            continue;
        }
        found.push(name.clone());
        let Some(bytes) = files.contents.get(&name) else {
            continue;
        };
        let Ok(table) = parse_table(path, &name, bytes) else {
            tracing::debug!(entry = %name, "nested descriptor is not strict TOML; its own calls are not followed");
            continue;
        };
        if depth >= MAX_NESTING {
            return Err(invalid(
                path,
                &name,
                format!("nested pipelines go deeper than {MAX_NESTING} levels"),
            ));
        }
        let inner = exec_pipes(path, &name, &table)?;
        check_nested(path, files, &name, inner, depth + 1, seen, found)?;
    }
    Ok(())
}
