//! The `dai_mojo_pipeline` backend: an external MOJO2 scorer as a supervised child
//! ([`super::proxy`]), spoken to with the MLOps scoring API itself.
//!
//! Driverless AI's MOJO2 runtime is proprietary and licence-gated (FORMATS.md §4.10), so
//! this build cannot score a pipeline. A deployer who has the runtime configures the
//! scorer to start (`DAI_SCORER_COMMAND`, e.g. H2O's open-source local REST scorer with
//! the licensed `mojo2-runtime.jar`); the shim starts it on a loopback port with the
//! pipeline's path, waits for its health route, and forwards the checked rows to its
//! `/model/score`. The licence variables (`DRIVERLESS_AI_LICENSE_FILE`,
//! `DRIVERLESS_AI_LICENSE_KEY`) reach the child through the environment it inherits;
//! only their names are logged, and the key's value is replaced in the child's output.
//! The scorer's `/model/schema`, when it has one, must name the manifest's inputs and
//! outputs, so that a scorer started on the wrong pipeline is refused at start-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use artifact_core::Manifest;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::command::CommandTemplate;
use super::proxy::{Proxy, ProxySpec};
use super::{Backend, BackendConfig, BoxFuture};
use crate::api::{ApiError, Frame};

/// The model type this backend serves.
pub const MODEL_TYPE: &str = "dai_mojo_pipeline";
/// The variables that tell the MOJO2 runtime where its licence is.
pub const LICENCE_VARS: [&str; 2] = ["DRIVERLESS_AI_LICENSE_FILE", "DRIVERLESS_AI_LICENSE_KEY"];
const NAME: &str = "DAI MOJO2 scorer";
const SETTING: &str = "DAI_SCORER_COMMAND";

/// Said when no scorer is configured.
pub const NO_SCORER: &str = "a Driverless AI MOJO pipeline needs the proprietary MOJO2 runtime, which this build does not contain: install a scorer that serves the MLOps scoring API with it (for example H2O's local REST scorer from h2oai/mlops-dai-runtimes with the licensed mojo2-runtime.jar and Java), give its command line in DAI_SCORER_COMMAND / --dai-scorer-command with {pipeline} and {port} placeholders (e.g. \"java -Dmojo.path={pipeline} -Dserver.address={host} -Dserver.port={port} -jar /opt/scorer/local-rest-scorer.jar\"), and mount the licence as DRIVERLESS_AI_LICENSE_FILE or DRIVERLESS_AI_LICENSE_KEY";

/// How to provide a licence, said when none was found.
pub const HOW_TO_LICENSE: &str = "provide it at deploy time, never in the image: mount the licence file (e.g. from a Kubernetes Secret) at /license/license.sig, or mount it elsewhere and set DRIVERLESS_AI_LICENSE_FILE to its path, or set DRIVERLESS_AI_LICENSE_KEY to the key itself (from a Secret)";

/// The files the MOJO2 runtime reads a licence from when neither variable is set:
/// `/license/license.sig`, then `~/.driverlessai/license.sig`.
pub fn licence_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("/license/license.sig")];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        paths.push(Path::new(&home).join(".driverlessai/license.sig"));
    }
    paths
}

/// Where the licence the scorer will use comes from, in the MOJO2 runtime's order:
/// `DRIVERLESS_AI_LICENSE_KEY`, `DRIVERLESS_AI_LICENSE_FILE` (it must be readable), then
/// the first readable file of `paths`. The error says what was looked at and how to
/// provide a licence; the key's value is never part of either.
pub fn find_licence(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
    paths: &[PathBuf],
) -> Result<String, String> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if set("DRIVERLESS_AI_LICENSE_KEY").is_some() {
        return Ok("DRIVERLESS_AI_LICENSE_KEY".into());
    }
    if let Some(file) = set("DRIVERLESS_AI_LICENSE_FILE") {
        let file = PathBuf::from(file);
        return match std::fs::File::open(&file).and_then(|f| f.metadata()) {
            Ok(m) if m.is_file() => Ok(format!("DRIVERLESS_AI_LICENSE_FILE ({})", file.display())),
            Ok(_) => Err(format!(
                "DRIVERLESS_AI_LICENSE_FILE={} is not a file; {HOW_TO_LICENSE}",
                file.display()
            )),
            Err(e) => Err(format!(
                "DRIVERLESS_AI_LICENSE_FILE={} cannot be read ({e}); {HOW_TO_LICENSE}",
                file.display()
            )),
        };
    }
    for p in paths {
        if std::fs::File::open(p).is_ok_and(|f| f.metadata().is_ok_and(|m| m.is_file())) {
            return Ok(p.display().to_string());
        }
    }
    let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "the MOJO2 runtime refuses to load a pipeline without one, and none was found (DRIVERLESS_AI_LICENSE_KEY and DRIVERLESS_AI_LICENSE_FILE are not set, no {}): {HOW_TO_LICENSE}",
        looked.join(", no ")
    ))
}

/// A pipeline scored by an external scorer.
pub struct DaiBackend {
    proxy: Arc<Proxy>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// Checks `DAI_SCORER_COMMAND` before anything starts: it is set, parses, and has
/// `{port}`.
pub fn check(cfg: &BackendConfig) -> Result<(), String> {
    template(cfg).map(|_| ())
}

fn template(cfg: &BackendConfig) -> Result<CommandTemplate, String> {
    let text = cfg
        .dai_scorer_command
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("no DAI scorer is configured: {NO_SCORER}"))?;
    let t = CommandTemplate::parse(text).map_err(|e| format!("{SETTING}: {e}"))?;
    if !t.uses("port") {
        return Err(format!(
            "{SETTING} {text:?} has no {{port}}: the shim chooses the port the scorer listens on"
        ));
    }
    Ok(t)
}

/// `inputFields`/`outputFields` names of a `/model/schema` reply.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaReply {
    schema: Fields,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    input_fields: Vec<Named>,
    output_fields: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// Starts the scorer on `dir/<payload>`, waits for its health route and checks its schema.
pub fn load(
    dir: &Path,
    manifest: &Manifest,
    cfg: &BackendConfig,
) -> Result<Box<dyn Backend>, String> {
    let command = template(cfg)?;
    let pipeline = std::path::absolute(dir.join(&manifest.payload))
        .map_err(|e| format!("{}: {e}", dir.join(&manifest.payload).display()))?;
    let set: Vec<&str> = LICENCE_VARS
        .iter()
        .copied()
        .filter(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
        .collect();
    if set.is_empty() {
        tracing::warn!("neither DRIVERLESS_AI_LICENSE_FILE nor DRIVERLESS_AI_LICENSE_KEY is set: the MOJO2 runtime refuses a pipeline without a licence unless the scorer finds one by itself");
    } else {
        tracing::info!(licence = %set.join(","), "the DAI scorer inherits the licence variables");
    }
    let secrets = std::env::var("DRIVERLESS_AI_LICENSE_KEY")
        .ok()
        .filter(|k| k.len() >= 4)
        .into_iter()
        .collect();
    let spec = ProxySpec {
        name: NAME,
        setting: SETTING,
        command,
        vars: vec![
            ("pipeline", pipeline.to_string_lossy().into_owned()),
            (
                "model_dir",
                pipeline
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .to_string_lossy()
                    .into_owned(),
            ),
        ],
        health_path: cfg.dai_scorer_health_path.clone(),
        start_timeout: cfg.child_start_timeout,
        stop_grace: cfg.child_stop_grace,
        secrets,
        env: Vec::new(),
    };
    let inputs: Vec<String> = manifest
        .input_schema
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let outputs: Vec<String> = manifest
        .output_schema
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let handle = tokio::runtime::Handle::current();
    let proxy = handle.block_on(async {
        let proxy = Proxy::start(spec).await?;
        if let Err(e) = check_schema(&proxy, &inputs, &outputs).await {
            proxy.shutdown().await;
            return Err(e);
        }
        Ok::<_, String>(proxy)
    })?;
    Ok(Box::new(DaiBackend {
        proxy,
        inputs,
        outputs,
    }))
}

/// The scorer's `/model/schema` must name the manifest's columns; a scorer without that
/// route (or with another body) is not checked.
async fn check_schema(proxy: &Proxy, inputs: &[String], outputs: &[String]) -> Result<(), String> {
    let up = proxy.upstream().map_err(|e| e.detail)?;
    let Ok((status, body)) = proxy
        .get(&up, "/model/schema", Duration::from_secs(30))
        .await
    else {
        return Ok(());
    };
    let reply = match serde_json::from_slice::<SchemaReply>(&body) {
        Ok(r) if status.is_success() => r,
        _ => {
            tracing::info!(%status, "the DAI scorer's /model/schema was not read; its columns are not compared");
            return Ok(());
        }
    };
    let names = |f: &[Named]| f.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    let (got_in, got_out) = (
        names(&reply.schema.input_fields),
        names(&reply.schema.output_fields),
    );
    if got_in != inputs || got_out != outputs {
        return Err(format!(
            "the {NAME} serves another model: its /model/schema has the inputs {got_in:?} and outputs {got_out:?}, the manifest {inputs:?} and {outputs:?}"
        ));
    }
    Ok(())
}

/// The scorer's `ScoreResponse`.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    fields: Option<Vec<String>>,
    score: Vec<Vec<Value>>,
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `detail` of an error reply (a string, or the MLOps spec's list of `{msg}`), else
/// the body's text.
fn detail_of(body: &[u8]) -> String {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    match v.as_ref().and_then(|v| v.get("detail")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.get("msg")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(2000)
            .collect(),
    }
}

fn scorer_error(status: StatusCode, body: &[u8]) -> ApiError {
    let detail = detail_of(body);
    match status.as_u16() {
        400 | 422 if detail.starts_with("Invalid scoring request due to: ") => {
            ApiError::new(StatusCode::BAD_REQUEST, detail)
        }
        400 | 422 => ApiError::invalid(detail),
        503 => ApiError::failed(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the {NAME} answered 503: {detail}"),
        ),
        _ => ApiError::failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the {NAME} answered {status}: {detail}"),
        ),
    }
}

/// Picks the manifest's outputs out of the scorer's reply, by name.
fn outputs_of(reply: Reply, outputs: &[String], rows: usize) -> Result<Vec<Vec<String>>, String> {
    if reply.score.len() != rows {
        return Err(format!("{} score rows for {rows} rows", reply.score.len()));
    }
    let positions: Vec<usize> = match &reply.fields {
        Some(f) => outputs
            .iter()
            .map(|o| {
                f.iter()
                    .position(|x| x == o)
                    .ok_or_else(|| format!("its fields {f:?} lack the output {o:?}"))
            })
            .collect::<Result<_, _>>()?,
        None => (0..outputs.len()).collect(),
    };
    reply
        .score
        .iter()
        .enumerate()
        .map(|(r, row)| {
            positions
                .iter()
                .map(|&p| {
                    row.get(p)
                        .map(cell_text)
                        .ok_or_else(|| format!("score row {r} has {} cells", row.len()))
                })
                .collect()
        })
        .collect()
}

impl Backend for DaiBackend {
    fn describe(&self) -> String {
        format!("{NAME} (external, {SETTING})")
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["SCORE".to_string()]
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.proxy.ready())
    }

    fn score(&self, frame: Arc<Frame>) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        Box::pin(async move {
            let rows: Vec<Vec<&str>> = (0..frame.len())
                .map(|r| {
                    (0..frame.width())
                        .map(|i| frame.cell(r, i).unwrap_or(""))
                        .collect()
                })
                .collect();
            let body = serde_json::to_vec(&json!({"fields": self.inputs, "rows": rows}))
                .expect("JSON values serialize");
            let up = self.proxy.upstream()?;
            let (status, reply) = self
                .proxy
                .post(&up, "/model/score", "application/json", body)
                .await?;
            if !status.is_success() {
                return Err(scorer_error(status, &reply));
            }
            let bad = |e: String| {
                ApiError::failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the {NAME}'s reply does not fit the output schema: {e}"),
                )
            };
            let reply: Reply = serde_json::from_slice(&reply)
                .map_err(|e| bad(format!("not a ScoreResponse: {e}")))?;
            outputs_of(reply, &self.outputs, frame.len()).map_err(bad)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.proxy.shutdown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_licence_is_found_where_the_runtime_looks_or_the_error_says_how_to_provide_one() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("license.sig");
        std::fs::write(&file, b"sig").unwrap();
        let file_s = file.to_str().unwrap().to_owned();
        let absent = tmp.path().join("absent.sig");
        let absent_s = absent.to_str().unwrap().to_owned();
        let dir_s = tmp.path().to_str().unwrap().to_owned();
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a str)>,
            Vec<PathBuf>,
            Result<&'a str, &'a str>,
        );
        let cases: Vec<Case> = vec![
            ("key", vec![("DRIVERLESS_AI_LICENSE_KEY", "k3y")], vec![], Ok("DRIVERLESS_AI_LICENSE_KEY")),
            (
                "file variable",
                vec![("DRIVERLESS_AI_LICENSE_FILE", &file_s)],
                vec![],
                Ok("DRIVERLESS_AI_LICENSE_FILE ("),
            ),
            (
                "file variable unreadable",
                vec![("DRIVERLESS_AI_LICENSE_FILE", &absent_s)],
                vec![file.clone()],
                Err("cannot be read"),
            ),
            (
                "file variable is a folder",
                vec![("DRIVERLESS_AI_LICENSE_FILE", &dir_s)],
                vec![],
                Err("is not a file"),
            ),
            ("empty key, mounted file", vec![("DRIVERLESS_AI_LICENSE_KEY", "")], vec![absent.clone(), file.clone()], Ok("license.sig")),
            (
                "nothing",
                vec![],
                vec![absent.clone()],
                Err("none was found (DRIVERLESS_AI_LICENSE_KEY and DRIVERLESS_AI_LICENSE_FILE are not set, no "),
            ),
        ];
        for (name, vars, paths, want) in cases {
            let got = find_licence(
                |v| {
                    vars.iter()
                        .find(|(k, _)| *k == v)
                        .map(|(_, x)| std::ffi::OsString::from(x))
                },
                &paths,
            );
            match (got, want) {
                (Ok(g), Ok(w)) => assert!(g.contains(w), "{name}: {g}"),
                (Err(g), Err(w)) => {
                    assert!(g.contains(w), "{name}: {g}");
                    assert!(g.contains("mount the licence file"), "{name}: {g}");
                    assert!(!g.contains("k3y"), "{name}: {g}");
                }
                (g, w) => panic!("{name}: got {g:?}, expected {w:?}"),
            }
        }
    }

    #[test]
    fn the_scorer_command_is_required_with_a_port() {
        let mut cfg = BackendConfig::default();
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "unset",
                None,
                Some("install a scorer that serves the MLOps scoring API"),
            ),
            ("blank", Some("  "), Some("no DAI scorer is configured")),
            ("no port", Some("java -jar s.jar"), Some("has no {port}")),
            (
                "bad quoting",
                Some("java '-jar"),
                Some("DAI_SCORER_COMMAND: unclosed '"),
            ),
            (
                "ok",
                Some("java -Dmojo.path={pipeline} -Dserver.port={port} -jar s.jar"),
                None,
            ),
        ];
        for (name, cmd, want) in cases {
            cfg.dai_scorer_command = cmd.map(str::to_owned);
            match (check(&cfg), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn replies_are_picked_by_output_name() {
        let outs = vec!["predict".to_string(), "yes".to_string()];
        let reply = |s: &str| serde_json::from_str::<Reply>(s).unwrap();
        type Want = Result<Vec<Vec<String>>, &'static str>;
        let cases: Vec<(&str, Reply, Want)> = vec![
            (
                "by name, extra fields ignored",
                reply(r#"{"fields":["no","yes","predict"],"score":[["0.1","0.9","yes"]]}"#),
                Ok(vec![vec!["yes".into(), "0.9".into()]]),
            ),
            (
                "positional without fields",
                reply(r#"{"score":[["a","0.5"]]}"#),
                Ok(vec![vec!["a".into(), "0.5".into()]]),
            ),
            (
                "numbers and nulls as text",
                reply(r#"{"fields":["predict","yes"],"score":[[1, null]]}"#),
                Ok(vec![vec!["1".into(), "".into()]]),
            ),
            (
                "missing output",
                reply(r#"{"fields":["predict"],"score":[["a"]]}"#),
                Err("lack the output \"yes\""),
            ),
            (
                "row count",
                reply(r#"{"fields":["predict","yes"],"score":[]}"#),
                Err("0 score rows for 1 rows"),
            ),
            (
                "short row",
                reply(r#"{"score":[["a"]]}"#),
                Err("score row 0 has 1 cells"),
            ),
        ];
        for (name, r, want) in cases {
            match (outputs_of(r, &outs, 1), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn scorer_errors_keep_their_detail() {
        let cases: &[(&str, u16, &str, u16, &str)] = &[
            ("reference prefix kept once", 400, r#"{"detail":"Invalid scoring request due to: row 1 bad"}"#, 400,
                "Invalid scoring request due to: row 1 bad"),
            ("MLOps list form", 422, r#"{"detail":[{"loc":["body"],"msg":"field required","type":"x"}]}"#, 400,
                "Invalid scoring request due to: field required"),
            ("server failure", 500, r#"{"detail":"License expired"}"#, 500,
                "Failed scoring request due to: the DAI MOJO2 scorer answered 500 Internal Server Error: License expired"),
            ("not JSON", 502, "Bad Gateway", 500, "answered 502 Bad Gateway: Bad Gateway"),
            ("unavailable", 503, r#"{"detail":"loading"}"#, 503, "answered 503: loading"),
        ];
        for (name, status, body, want_status, want) in cases {
            let e = scorer_error(StatusCode::from_u16(*status).unwrap(), body.as_bytes());
            assert_eq!(e.status.as_u16(), *want_status, "{name}");
            assert!(
                e.detail.matches("Invalid scoring request due to:").count() <= 1,
                "{name}"
            );
            assert!(e.detail.contains(want), "{name}: {}", e.detail);
        }
    }
}
