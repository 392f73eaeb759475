//! `load`: closed-loop load on keep-alive connections. Each connection sends the same
//! scoring request (`/model/score`, or with `--protocol v2` the same rows as one 1-D
//! tensor per input to `/v2/models/{name}/infer`, or with `--body`/`--path` a given body
//! to a given path, e.g. MLflow's `/invocations`) back to back (the next one as soon as the answer is read), so
//! the figures are the server's: latency from the first byte written to the last byte of
//! the answer read, requests per second over the measured window (the warm-up is not
//! counted). The run is bounded by its duration and by a number of requests, and stops
//! by itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::http::{self, Conn};
use crate::model::{self, Target};
use crate::stats::{self, Latency};

/// Settings of a load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    pub rows: usize,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Rows from this CSV (header = fields) instead of the model's sample row.
    pub csv: Option<PathBuf>,
    /// Longest wait for one answer; a slower one counts as an error.
    pub timeout: Duration,
    /// Every this many answers a connection parses the body and checks the row count.
    pub check_every: u64,
    /// At most this many measured requests (then the run ends early).
    pub max_requests: u64,
    /// `Authorization: Bearer <this>` on every request.
    pub bearer: Option<String>,
    /// Which API the requests use.
    pub protocol: Protocol,
    /// Send this body as it is instead of building one (any API, e.g. MLflow's
    /// `dataframe_split` to `/invocations`); `rows` is then the rows it holds, which the
    /// answers are checked for.
    pub body: Option<PathBuf>,
    /// Post to this path instead of the protocol's (`/model/score`, the v2 infer route).
    pub path: Option<String>,
    /// The requests' `Content-Type`.
    pub content_type: String,
}

/// The API a load run scores through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// `POST /model/score` (the H2O MLOps scoring API).
    Mlops,
    /// `POST /v2/models/{name}/infer` (the Open Inference Protocol v2, JSON tensors; the
    /// model's name is its id, `/model/id`).
    V2,
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub rows: usize,
    pub connections: usize,
    pub request_bytes: usize,
    pub seconds: f64,
    pub requests: u64,
    /// Requests answered during the warm-up (not in the figures): with `requests`, what
    /// the server did over the whole run, e.g. to divide its CPU time by.
    pub warmup_requests: u64,
    pub requests_per_second: f64,
    pub latency: Latency,
    pub errors: u64,
    /// Errors by kind (`status 400`, `closed`, `timeout`, `wrong answer`, ...).
    pub error_kinds: BTreeMap<String, u64>,
}

impl LoadReport {
    pub const HEADER: &'static str =
        "rows  conns  seconds  requests     req/s    p50 ms   p90 ms   p99 ms  p99.9 ms   max ms  errors";

    pub fn row(&self) -> String {
        let ms = |us: f64| us / 1000.0;
        format!(
            "{:>4}  {:>5}  {:>7.1}  {:>8}  {:>8.0}  {:>8.3} {:>8.3} {:>8.3}  {:>8.3} {:>8.3}  {:>6}",
            self.rows,
            self.connections,
            self.seconds,
            self.requests,
            self.requests_per_second,
            ms(self.latency.p50_us),
            ms(self.latency.p90_us),
            ms(self.latency.p99_us),
            ms(self.latency.p999_us),
            ms(self.latency.max_us),
            self.errors
        )
    }
}

#[derive(Default)]
struct ConnResult {
    samples: Vec<u64>,
    warmup_requests: u64,
    errors: BTreeMap<String, u64>,
}

impl ConnResult {
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }
}

/// The request body of the run: the `--body` file, else `rows` rows from the CSV
/// (cycled) or the sample row.
pub async fn body(cfg: &LoadConfig) -> Result<Vec<u8>> {
    if cfg.rows == 0 {
        return Err(Error::Usage("--rows must be at least 1".into()));
    }
    if let Some(p) = &cfg.body {
        return std::fs::read(p)
            .map_err(|e| Error::Usage(format!("--body {}: cannot be read: {e}", p.display())));
    }
    let (fields, rows) = match &cfg.csv {
        Some(path) => {
            let (fields, rows) = model::read_csv(path)?;
            (fields, model::cycle_rows(&rows, cfg.rows))
        }
        None => {
            let t = Target::fetch(cfg.addr).await?;
            (t.fields.clone(), vec![t.sample.clone(); cfg.rows])
        }
    };
    match cfg.protocol {
        Protocol::Mlops => Ok(model::score_body(&fields, &rows)),
        Protocol::V2 => {
            let t = Target::fetch(cfg.addr).await?;
            model::v2_body(&t.fields, &t.types, &fields, &rows)
        }
    }
}

/// The path the run posts to: `--path`, else `/model/score`, or the v2 infer route of the
/// model (named by its id).
async fn path(cfg: &LoadConfig) -> Result<String> {
    if let Some(p) = &cfg.path {
        return check_path(p).map(str::to_owned);
    }
    match cfg.protocol {
        Protocol::Mlops => Ok("/model/score".into()),
        Protocol::V2 => {
            let r = http::get(cfg.addr, "/model/id", cfg.timeout).await?;
            if r.status != 200 {
                return Err(Error::Server {
                    request: "GET /model/id".into(),
                    detail: format!("status {}: {}", r.status, r.text()),
                });
            }
            Ok(format!("/v2/models/{}/infer", r.text().trim()))
        }
    }
}

/// `path` when it is an origin-form request target (`/` then printable ASCII without
/// blanks), so that it cannot break the request line.
fn check_path(path: &str) -> Result<&str> {
    if path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(path)
    } else {
        Err(Error::Usage(format!(
            "--path {path:?} must start with / and hold no blank or control character"
        )))
    }
}

/// `None` when `answer` is a `ScoreResponse`, a v2 inference response or an MLflow
/// `/invocations` reply (`{"predictions": ...}`, or MLflow 1.x's bare list: a list of
/// predictions, or an object of columns) with `rows` rows, else what is wrong.
fn check_answer(answer: &[u8], rows: usize) -> Option<String> {
    use serde_json::Value;
    let v = match serde_json::from_slice::<Value>(answer) {
        Ok(v) => v,
        Err(e) => return Some(format!("answer is not JSON: {e}")),
    };
    let counted = |what: &str, n: usize| {
        (n != rows).then(|| format!("{n} {what} rows for {rows} request rows"))
    };
    if let Some(s) = v["score"].as_array() {
        return counted("score", s.len());
    }
    if let Some(n) = v["outputs"][0]["shape"][0].as_u64() {
        return counted("output", usize::try_from(n).unwrap_or(usize::MAX));
    }
    let predictions = match &v {
        Value::Object(m) => m.get("predictions"),
        bare @ Value::Array(_) => Some(bare),
        _ => None,
    };
    match predictions {
        Some(Value::Array(p)) => counted("prediction", p.len()),
        Some(Value::Object(cols)) => cols.iter().find_map(|(name, c)| match c {
            Value::Array(c) => counted(&format!("prediction column {name:?}"), c.len()),
            _ => Some(format!("the prediction column {name:?} is not a list")),
        }),
        Some(_) => Some("the predictions are neither a list nor columns".into()),
        None => Some("no score, outputs or predictions in the answer".into()),
    }
}

/// Runs the load and returns its figures. Fails before starting when the request is not
/// answered 200 with the right number of rows.
pub async fn run(cfg: &LoadConfig) -> Result<LoadReport> {
    if cfg.connections == 0 {
        return Err(Error::Usage("--connections must be at least 1".into()));
    }
    let body = body(cfg).await?;
    let auth = cfg.bearer.as_ref().map(|b| format!("Bearer {b}"));
    let mut headers = vec![("Content-Type", cfg.content_type.as_str())];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let path = path(cfg).await?;
    let req: Arc<[u8]> = http::request("POST", &path, &headers, &body).into();
    let probe = http::once(cfg.addr, &req, cfg.timeout).await?;
    if probe.status != 200 {
        return Err(Error::Server {
            request: format!("POST {path}"),
            detail: format!("status {}: {}", probe.status, probe.text()),
        });
    }
    if let Some(wrong) = check_answer(&probe.body, cfg.rows) {
        return Err(Error::Server {
            request: format!("POST {path}"),
            detail: wrong,
        });
    }

    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let stop = measure_from + cfg.duration;
    let started = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(cfg.connections);
    for _ in 0..cfg.connections {
        let (req, started) = (Arc::clone(&req), Arc::clone(&started));
        let cfg = cfg.clone();
        tasks.push(tokio::spawn(async move {
            connection(&cfg, &req, measure_from, stop, &started).await
        }));
    }
    let mut samples = Vec::new();
    let mut error_kinds = BTreeMap::new();
    let mut warmup_requests = 0;
    for t in tasks {
        let r = t.await.map_err(|e| Error::Io {
            op: "join a connection task",
            source: std::io::Error::other(e),
        })?;
        samples.extend(r.samples);
        warmup_requests += r.warmup_requests;
        for (k, n) in r.errors {
            *error_kinds.entry(k).or_default() += n;
        }
    }
    let seconds = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let requests = samples.len() as u64;
    Ok(LoadReport {
        rows: cfg.rows,
        connections: cfg.connections,
        request_bytes: req.len(),
        seconds,
        requests,
        warmup_requests,
        requests_per_second: requests as f64 / seconds.max(1e-9),
        latency: stats::summarize(&mut samples),
        errors: error_kinds.values().sum(),
        error_kinds,
    })
}

/// One connection's loop until `stop`: a request is only started before `stop`, and
/// only while fewer than `max_requests` measured ones have been (`started` counts them).
async fn connection(
    cfg: &LoadConfig,
    req: &[u8],
    measure_from: Instant,
    stop: Instant,
    started: &AtomicU64,
) -> ConnResult {
    let mut out = ConnResult::default();
    let mut conn: Option<Conn> = None;
    let mut answered = 0u64;
    while Instant::now() < stop {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(cfg.addr).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    out.error("connect");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let t0 = Instant::now();
        if t0 >= measure_from && started.fetch_add(1, Ordering::Relaxed) >= cfg.max_requests {
            break;
        }
        let r = c.exchange(req, false, cfg.timeout).await;
        let elapsed = t0.elapsed();
        let counted = t0 >= measure_from;
        match r {
            Ok(resp) => {
                if resp.close {
                    conn = None;
                }
                if !counted {
                    out.warmup_requests += 1;
                    continue;
                }
                answered += 1;
                if resp.status != 200 {
                    out.error(format!("status {}", resp.status));
                } else if cfg.check_every > 0 && answered % cfg.check_every == 1 {
                    if let Some(wrong) = check_answer(&resp.body, cfg.rows) {
                        out.error(format!("wrong answer: {wrong}"));
                        continue;
                    }
                    out.samples.push(stats::nanos(elapsed));
                } else {
                    out.samples.push(stats::nanos(elapsed));
                }
            }
            Err(e) => {
                conn = None;
                if counted {
                    out.error(match e {
                        Error::Closed { .. } => "closed".to_string(),
                        Error::Reset => "reset".to_string(),
                        Error::Timeout(_) => "timeout".to_string(),
                        other => other.to_string(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_for_their_row_count() {
        let cases: &[(&str, &str, usize, Option<&str>)] = &[
            ("right", r#"{"id":"x","score":[["a"],["b"]]}"#, 2, None),
            (
                "too few",
                r#"{"id":"x","score":[["a"]]}"#,
                2,
                Some("1 score rows for 2"),
            ),
            ("no score", r#"{"detail":"x"}"#, 1, Some("no score")),
            ("mlflow list", r#"{"predictions":[1,0]}"#, 2, None),
            (
                "mlflow list too long",
                r#"{"predictions":[1,0,1]}"#,
                2,
                Some("3 prediction rows for 2"),
            ),
            (
                "mlflow records",
                r#"{"predictions":[{"p":0.5,"band":"low"}]}"#,
                1,
                None,
            ),
            (
                "mlflow columns",
                r#"{"predictions":{"a":[1,2],"b":[3,4]}}"#,
                2,
                None,
            ),
            (
                "mlflow short column",
                r#"{"predictions":{"a":[1,2],"b":[3]}}"#,
                2,
                Some("1 prediction column \"b\" rows for 2"),
            ),
            (
                "mlflow scalar column",
                r#"{"predictions":{"a":3}}"#,
                1,
                Some("column \"a\" is not a list"),
            ),
            ("mlflow 1.x bare list", "[1.5,2.5]", 2, None),
            (
                "mlflow 1.x bare list short",
                "[1.5]",
                2,
                Some("1 prediction rows"),
            ),
            ("a scalar", "3", 1, Some("no score")),
            (
                "mlflow scalar predictions",
                r#"{"predictions":3}"#,
                1,
                Some("neither a list nor columns"),
            ),
            (
                "v2 right",
                r#"{"outputs":[{"name":"a","shape":[2],"data":[1,2]}]}"#,
                2,
                None,
            ),
            (
                "v2 too few",
                r#"{"outputs":[{"name":"a","shape":[1],"data":[1]}]}"#,
                2,
                Some("1 output rows for 2"),
            ),
            ("not json", "<html>", 1, Some("not JSON")),
        ];
        for (name, body, rows, want) in cases {
            let got = check_answer(body.as_bytes(), *rows);
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(g.contains(w), "{name}: {g}"),
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn paths_must_be_origin_form() {
        let cases: &[(&str, &str, bool)] = &[
            ("mlflow", "/invocations", true),
            ("query", "/model/score?x=1", true),
            ("no slash", "invocations", false),
            ("empty", "", false),
            ("blank", "/a b", false),
            ("header injection", "/a\r\nX-Evil: 1", false),
            ("non-ASCII", "/é", false),
        ];
        for (name, path, ok) in cases {
            assert_eq!(check_path(path).is_ok(), *ok, "{name}");
        }
    }
}
