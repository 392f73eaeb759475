//! `abuse`: sends the malformed requests of [`crate::cases`] and checks every answer.
//!
//! A case passes when its answer's status is one the case allows (never a 5xx, except the
//! API's own 501 for the two routes this build does not implement), and when a missing
//! answer (a closed or reset connection) only happens for a stream the client broke on
//! purpose. Every `check_every` cases the server must still be ready and score a valid
//! request; at the end it must still be alive. Everything seen is counted by category,
//! so the report says exactly which statuses each kind of abuse got.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::cases::{Action, Case, Category, Expect, Gen};
use crate::error::{Error, Result};
use crate::http::{self, Conn, Response};
use crate::model::Target;

/// Settings of an abuse run.
#[derive(Debug, Clone)]
pub struct AbuseConfig {
    pub addr: SocketAddr,
    /// Cases in all (each is one request, or a few for a pipelined case).
    pub requests: u64,
    pub seed: u64,
    /// Connections sending the ordinary cases at once.
    pub concurrency: usize,
    /// Cases with a body over `body_limit` (and large ones under it).
    pub huge: u64,
    /// Slow clients, run alongside the rest, at most `slow_concurrency` at once.
    pub slow: u64,
    pub slow_concurrency: usize,
    /// The server's body limit (its MAX_BODY_BYTES).
    pub body_limit: usize,
    /// The longer of the server's HEADER_TIMEOUT_SECS and REQUEST_TIMEOUT_SECS, when
    /// known: stalls then outlast it and must be answered 408.
    pub server_timeout: Option<Duration>,
    /// A readiness and scoring check after every this many cases.
    pub check_every: u64,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// The whole run stops (and fails) after this long.
    pub max_duration: Duration,
    /// The server's process id, checked to be alive at the end.
    pub pid: Option<u32>,
}

/// What one category of cases got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CategoryStats {
    pub cases: u64,
    /// Cases by variant.
    pub kinds: BTreeMap<String, u64>,
    /// Answers by status, and answers that did not come (`closed without answer`, ...).
    pub outcomes: BTreeMap<String, u64>,
}

/// A case whose answer was not one it allows.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub case: u64,
    pub category: String,
    pub kind: String,
    pub got: String,
    pub expected: String,
}

/// The result of an abuse run.
#[derive(Debug, Clone, Serialize)]
pub struct AbuseReport {
    pub seed: u64,
    pub cases: u64,
    pub seconds: f64,
    pub categories: BTreeMap<String, CategoryStats>,
    /// Every answer of the run by status.
    pub statuses: BTreeMap<String, u64>,
    /// Requests retried once on a fresh connection because a kept-alive one was found
    /// closed before any answer byte.
    pub keepalive_retries: u64,
    /// The case before each such retry on that connection (`category/kind`): the server
    /// closed the connection after answering it, without saying `connection: close`.
    pub keepalive_retries_after: BTreeMap<String, u64>,
    pub health_checks: u64,
    pub health_failures: Vec<String>,
    pub violation_count: u64,
    /// The first violations (all are counted).
    pub violations: Vec<Violation>,
    pub server_alive: Option<bool>,
    pub ok: bool,
}

const LISTED_VIOLATIONS: usize = 50;

/// How one expected answer went.
#[derive(Debug)]
enum Outcome {
    Answer(Response),
    /// The connection was closed before any byte of the answer.
    Closed,
    Reset,
    /// A stalled client waited out its stall without an answer and closed.
    GaveUp,
    Failed(Error),
}

impl Outcome {
    fn from(r: Result<Response>) -> Outcome {
        match r {
            Ok(resp) => Outcome::Answer(resp),
            Err(Error::Closed { received: 0 }) => Outcome::Closed,
            Err(Error::Reset) => Outcome::Reset,
            Err(e) => Outcome::Failed(e),
        }
    }

    fn key(&self) -> String {
        match self {
            Outcome::Answer(r) => r.status.to_string(),
            Outcome::Closed => "closed without answer".into(),
            Outcome::Reset => "reset without answer".into(),
            Outcome::GaveUp => "no answer during the stall".into(),
            Outcome::Failed(Error::Timeout(_)) => "no answer in time".into(),
            Outcome::Failed(Error::Closed { .. }) => "closed mid-answer".into(),
            Outcome::Failed(Error::Malformed(_)) => "malformed answer".into(),
            Outcome::Failed(Error::Connect { .. }) => "connect failed".into(),
            Outcome::Failed(e) => format!("error: {e}"),
        }
    }

    /// `None` when the outcome is allowed by `statuses` / `expect`.
    fn violation(&self, statuses: &[u16], expect: &Expect) -> Option<String> {
        match self {
            Outcome::Answer(r) if statuses.contains(&r.status) => None,
            Outcome::Answer(r) if r.status >= 500 => Some(format!(
                "server error {}: {}",
                r.status,
                truncate(&r.text(), 200)
            )),
            Outcome::Answer(r) => {
                Some(format!("status {}: {}", r.status, truncate(&r.text(), 200)))
            }
            Outcome::Closed | Outcome::Reset | Outcome::GaveUp if expect.no_answer => None,
            other => Some(other.key()),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Default)]
struct Agg {
    categories: BTreeMap<String, CategoryStats>,
    statuses: BTreeMap<String, u64>,
    keepalive_retries: u64,
    keepalive_retries_after: BTreeMap<String, u64>,
    violation_count: u64,
    violations: Vec<Violation>,
}

impl Agg {
    fn record(&mut self, index: u64, case: &Case, outcomes: &[(Outcome, Vec<u16>)], retried: bool) {
        let cat = self
            .categories
            .entry(case.category.name().to_string())
            .or_default();
        cat.cases += 1;
        *cat.kinds.entry(case.kind.to_string()).or_default() += 1;
        self.keepalive_retries += u64::from(retried);
        for (o, allowed) in outcomes {
            let key = o.key();
            *cat.outcomes.entry(key.clone()).or_default() += 1;
            if let Outcome::Answer(_) = o {
                *self.statuses.entry(key).or_default() += 1;
            }
            if let Some(got) = o.violation(allowed, &case.expect) {
                self.violation_count += 1;
                if self.violations.len() < LISTED_VIOLATIONS {
                    self.violations.push(Violation {
                        case: index,
                        category: case.category.name().to_string(),
                        kind: case.kind.to_string(),
                        got,
                        expected: format!(
                            "{:?}{}",
                            allowed,
                            if case.expect.no_answer {
                                " or no answer"
                            } else {
                                ""
                            }
                        ),
                    });
                }
            }
        }
    }
}

/// Pieces of a streamed body.
const PIECE: usize = 64 * 1024;

/// Runs one case. `conn` is the worker's kept-alive connection: used for the cases that
/// leave the stream intact, dropped after the others.
async fn run_case(
    case: &Case,
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    timeout: Duration,
) -> (Vec<(Outcome, Vec<u16>)>, bool) {
    let keep = keeps_connection(case.category);
    let (outcomes, retried) = match &case.action {
        Action::Send { bytes, head } => {
            if !keep {
                // A stream this case breaks gets a connection of its own.
                *conn = None;
            }
            let reused = conn.is_some();
            let mut r = send_on(conn, addr, bytes, *head, timeout).await;
            let mut retried = false;
            if reused && matches!(r, Err(Error::Closed { received: 0 }) | Err(Error::Reset)) {
                // A kept-alive connection found closed: one retry on a fresh one.
                *conn = None;
                retried = true;
                r = send_on(conn, addr, bytes, *head, timeout).await;
            }
            if let Ok(resp) = &r {
                if resp.close {
                    *conn = None;
                }
            } else {
                *conn = None;
            }
            (
                vec![(Outcome::from(r), case.expect.statuses.clone())],
                retried,
            )
        }
        Action::Pipelined { bytes, answers } => {
            *conn = None;
            let mut out = Vec::new();
            match Conn::connect(addr).await {
                Ok(mut c) => {
                    let sent = c.send(bytes).await;
                    for allowed in answers {
                        let r = match &sent {
                            Ok(()) => c.recv(false, timeout).await,
                            Err(_) => Err(Error::Reset),
                        };
                        out.push((Outcome::from(r), allowed.clone()));
                    }
                }
                Err(e) => out.push((Outcome::Failed(e), answers[0].clone())),
            }
            (out, false)
        }
        Action::HalfClose { bytes } => {
            *conn = None;
            let r = async {
                let mut c = Conn::connect(addr).await?;
                c.send(bytes).await?;
                c.stream
                    .shutdown()
                    .await
                    .map_err(|e| Error::io("shut the write side", e))?;
                c.recv(false, timeout).await
            }
            .await;
            (
                vec![(Outcome::from(r), case.expect.statuses.clone())],
                false,
            )
        }
        Action::Stream {
            head,
            prefix,
            len,
            chunked,
        } => {
            *conn = None;
            let r = match Conn::connect(addr).await {
                Ok(mut c) => stream(&mut c, head, prefix, *len, *chunked, timeout).await,
                Err(e) => Err(e),
            };
            (
                vec![(Outcome::from(r), case.expect.statuses.clone())],
                false,
            )
        }
        Action::Slow {
            bytes,
            piece,
            delay,
            stall_at,
            stall,
        } => {
            *conn = None;
            let o = match Conn::connect(addr).await {
                Ok(mut c) => slow(&mut c, bytes, *piece, *delay, *stall_at, *stall, timeout).await,
                Err(e) => Outcome::Failed(e),
            };
            (vec![(o, case.expect.statuses.clone())], false)
        }
    };
    if !keep {
        *conn = None;
    }
    (outcomes, retried)
}

/// Categories whose requests leave the connection usable (a complete, well-framed
/// request): the connection is kept for the next case unless the server closes it.
fn keeps_connection(c: Category) -> bool {
    !matches!(
        c,
        Category::InvalidUtf8
            | Category::LyingLength
            | Category::Framing
            | Category::HugeBody
            | Category::Slow
    )
}

async fn send_on(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    bytes: &[u8],
    head: bool,
    timeout: Duration,
) -> Result<Response> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(Conn::connect(addr).await?),
    };
    match c.send(bytes).await {
        Ok(()) => c.recv(head, timeout).await,
        // The server may answer and close before it has read everything (a header over
        // its limit): its answer can still be in the socket.
        Err(e) => match c.recv(head, Duration::from_secs(1)).await {
            Ok(resp) => Ok(resp),
            Err(_) => Err(e),
        },
    }
}

/// Streams a body of `len` bytes (`prefix`, then filler) while awaiting the answer; the
/// upload stops as soon as the answer is in.
async fn stream(
    c: &mut Conn,
    head: &[u8],
    prefix: &[u8],
    len: usize,
    chunked: bool,
    timeout: Duration,
) -> Result<Response> {
    let Conn { stream, buf } = c;
    let (mut rd, mut wr) = stream.split();
    let writer = async move {
        let filler = vec![b'a'; PIECE];
        wr.write_all(head).await?;
        let mut sent = 0usize;
        while sent < len {
            let piece: &[u8] = if sent == 0 {
                &prefix[..prefix.len().min(len)]
            } else {
                &filler[..PIECE.min(len - sent)]
            };
            if chunked {
                wr.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                wr.write_all(piece).await?;
                wr.write_all(b"\r\n").await?;
            } else {
                wr.write_all(piece).await?;
            }
            sent += piece.len();
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let reader = buf.recv(&mut rd, false);
    let both = async {
        tokio::pin!(writer);
        tokio::pin!(reader);
        let mut upload: Option<std::io::Result<()>> = None;
        loop {
            tokio::select! {
                r = &mut reader => {
                    return match (r, upload) {
                        // An upload cut by the server and then no answer: a reset.
                        (Err(Error::Closed { received: 0 }), Some(Err(_))) => Err(Error::Reset),
                        (r, _) => r,
                    };
                }
                w = &mut writer, if upload.is_none() => upload = Some(w),
            }
        }
    };
    match tokio::time::timeout(timeout, both).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    }
}

/// Dribbles `bytes`; with `stall_at`, stops there, waits `stall` for an answer and gives up.
async fn slow(
    c: &mut Conn,
    bytes: &[u8],
    piece: usize,
    delay: Duration,
    stall_at: Option<usize>,
    stall: Duration,
    timeout: Duration,
) -> Outcome {
    let upto = stall_at.unwrap_or(bytes.len()).min(bytes.len());
    for p in bytes[..upto].chunks(piece.max(1)) {
        if let Err(e) = c.send(p).await {
            return Outcome::from(Err(e));
        }
        tokio::time::sleep(delay).await;
    }
    if stall_at.is_none() {
        return Outcome::from(c.recv(false, timeout).await);
    }
    match c.recv(false, stall).await {
        Err(Error::Timeout(_)) => Outcome::GaveUp,
        r => Outcome::from(r),
    }
}

/// The server is ready and scores a valid request; `Err` says what is wrong.
async fn health(
    addr: SocketAddr,
    valid: &[u8],
    rows: usize,
    timeout: Duration,
) -> Result<(), String> {
    let ready = http::get(addr, "/readyz", timeout)
        .await
        .map_err(|e| format!("GET /readyz: {e}"))?;
    if ready.status != 200 || ready.body != b"Ready" {
        return Err(format!("GET /readyz: {} {}", ready.status, ready.text()));
    }
    let alive = http::get(addr, "/healthz", timeout)
        .await
        .map_err(|e| format!("GET /healthz: {e}"))?;
    if alive.status != 200 {
        return Err(format!("GET /healthz: {} {}", alive.status, alive.text()));
    }
    let scored = http::once(addr, &http::post_json("/model/score", valid), timeout)
        .await
        .map_err(|e| format!("POST /model/score: {e}"))?;
    let n = serde_json::from_slice::<serde_json::Value>(&scored.body)
        .ok()
        .and_then(|v| v["score"].as_array().map(Vec::len));
    if scored.status != 200 || n != Some(rows) {
        return Err(format!(
            "POST /model/score (valid, {rows} rows): {} {}",
            scored.status,
            truncate(&scored.text(), 200)
        ));
    }
    Ok(())
}

/// `true` while process `pid` exists and is not a zombie (Linux `/proc`).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        Err(_) => false,
    }
}

/// Runs the abuse cases and returns the report (the run itself fails only when the
/// server cannot be used at the start).
pub async fn run(cfg: &AbuseConfig) -> Result<AbuseReport> {
    if cfg.concurrency == 0 || cfg.slow_concurrency == 0 || cfg.check_every == 0 {
        return Err(Error::Usage(
            "--concurrency, --slow-concurrency and --check-every must be at least 1".into(),
        ));
    }
    let target = Target::fetch(cfg.addr).await?;
    let valid_rows = 3;
    let valid = target.sample_body(valid_rows);
    health(cfg.addr, &valid, valid_rows, cfg.timeout)
        .await
        .map_err(|detail| Error::Server {
            request: "health check before the run".into(),
            detail,
        })?;
    let gen = Arc::new(Gen {
        target,
        body_limit: cfg.body_limit,
        server_timeout: cfg.server_timeout,
    });
    let agg = Arc::new(Mutex::new(Agg::default()));
    let start = Instant::now();
    let deadline = start + cfg.max_duration;
    let huge = cfg.huge.min(cfg.requests);
    let slow = cfg.slow.min(cfg.requests - huge);

    // Slow clients in the background, bounded.
    let sem = Arc::new(Semaphore::new(cfg.slow_concurrency));
    let mut slow_tasks = Vec::new();
    for i in huge..huge + slow {
        let (gen, agg, sem, cfg) = (
            Arc::clone(&gen),
            Arc::clone(&agg),
            Arc::clone(&sem),
            cfg.clone(),
        );
        slow_tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await;
            let case = gen.case(cfg.seed, i, huge, slow);
            let (outcomes, retried) = run_case(&case, &mut None, cfg.addr, cfg.timeout).await;
            agg.lock()
                .expect("stats")
                .record(i, &case, &outcomes, retried);
        }));
    }

    let order: Arc<Vec<u64>> = Arc::new((0..huge).chain(huge + slow..cfg.requests).collect());
    let mut health_checks = 0;
    let mut health_failures = Vec::new();
    let mut timed_out = false;
    let mut done = 0usize;
    while done < order.len() {
        let end = (done + cfg.check_every as usize).min(order.len());
        let next = Arc::new(AtomicUsize::new(done));
        let mut workers = Vec::new();
        for _ in 0..cfg.concurrency {
            let (gen, agg, next, order, cfg) = (
                Arc::clone(&gen),
                Arc::clone(&agg),
                Arc::clone(&next),
                Arc::clone(&order),
                cfg.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut conn = None;
                // The case the kept-alive connection last carried.
                let mut prev: Option<String> = None;
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= end || Instant::now() > deadline {
                        break;
                    }
                    let i = order[k];
                    let case = gen.case(cfg.seed, i, huge, slow);
                    let (outcomes, retried) =
                        run_case(&case, &mut conn, cfg.addr, cfg.timeout).await;
                    let mut a = agg.lock().expect("stats");
                    a.record(i, &case, &outcomes, retried);
                    if retried {
                        let p = prev.clone().unwrap_or_else(|| "?".into());
                        *a.keepalive_retries_after.entry(p).or_default() += 1;
                    }
                    prev = conn
                        .is_some()
                        .then(|| format!("{}/{}", case.category.name(), case.kind));
                }
            }));
        }
        for w in workers {
            w.await.map_err(|e| Error::Io {
                op: "join a worker",
                source: std::io::Error::other(e),
            })?;
        }
        done = end;
        health_checks += 1;
        if let Err(e) = health(cfg.addr, &valid, valid_rows, cfg.timeout).await {
            health_failures.push(format!("after {done} cases: {e}"));
        }
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
    }
    for t in slow_tasks {
        if timed_out {
            t.abort();
        }
        let _ = t.await;
    }
    health_checks += 1;
    if let Err(e) = health(cfg.addr, &valid, valid_rows, cfg.timeout).await {
        health_failures.push(format!("at the end: {e}"));
    }
    if timed_out {
        health_failures.push(format!(
            "the run did not finish within {:?}",
            cfg.max_duration
        ));
    }
    let server_alive = cfg.pid.map(process_alive);
    let agg = std::mem::take(&mut *agg.lock().expect("stats"));
    let ok = agg.violation_count == 0 && health_failures.is_empty() && server_alive != Some(false);
    Ok(AbuseReport {
        seed: cfg.seed,
        cases: agg.categories.values().map(|c| c.cases).sum(),
        seconds: start.elapsed().as_secs_f64(),
        categories: agg.categories,
        statuses: agg.statuses,
        keepalive_retries: agg.keepalive_retries,
        keepalive_retries_after: agg.keepalive_retries_after,
        health_checks,
        health_failures,
        violation_count: agg.violation_count,
        violations: agg.violations,
        server_alive,
        ok,
    })
}

impl AbuseReport {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut s = format!(
            "abuse: {} cases (seed {}) in {:.1} s\n{:<22} {:>6}  outcomes\n",
            self.cases, self.seed, self.seconds, "category", "cases"
        );
        for (name, c) in &self.categories {
            let outcomes: Vec<String> = c
                .outcomes
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            s.push_str(&format!(
                "{:<22} {:>6}  {}\n",
                name,
                c.cases,
                outcomes.join(", ")
            ));
        }
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        s.push_str(&format!("all answers by status: {}\n", statuses.join(", ")));
        s.push_str(&format!(
            "health checks: {} ({} failed); keep-alive retries: {}; server alive: {}\n",
            self.health_checks,
            self.health_failures.len(),
            self.keepalive_retries,
            match self.server_alive {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "not checked (no --pid)",
            }
        ));
        for (after, n) in &self.keepalive_retries_after {
            s.push_str(&format!("  retried after {after}: {n}\n"));
        }
        for f in &self.health_failures {
            s.push_str(&format!("  health: {f}\n"));
        }
        s.push_str(&format!("violations: {}\n", self.violation_count));
        for v in &self.violations {
            s.push_str(&format!(
                "  case {} {}/{}: got {}, expected {}\n",
                v.case, v.category, v.kind, v.got, v.expected
            ));
        }
        s.push_str(if self.ok {
            "result: ok\n"
        } else {
            "result: FAILED\n"
        });
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16) -> Outcome {
        Outcome::Answer(Response {
            status,
            interim: vec![],
            close: false,
            content_type: None,
            body: b"{}".to_vec(),
        })
    }

    #[test]
    fn outcomes_are_judged_by_the_cases_expectation() {
        let strict = Expect {
            statuses: vec![400],
            no_answer: false,
        };
        let lenient = Expect {
            statuses: vec![400],
            no_answer: true,
        };
        let cases: Vec<(&str, Outcome, &Expect, Option<&str>)> = vec![
            ("allowed status", resp(400), &strict, None),
            ("5xx", resp(503), &strict, Some("server error 503")),
            ("other 4xx", resp(404), &strict, Some("status 404")),
            (
                "closed, not allowed",
                Outcome::Closed,
                &strict,
                Some("closed without answer"),
            ),
            ("closed, allowed", Outcome::Closed, &lenient, None),
            ("reset, allowed", Outcome::Reset, &lenient, None),
            ("stall given up, allowed", Outcome::GaveUp, &lenient, None),
            (
                "hung",
                Outcome::Failed(Error::Timeout(Duration::from_secs(1))),
                &lenient,
                Some("no answer in time"),
            ),
            (
                "cut answer",
                Outcome::Failed(Error::Closed { received: 9 }),
                &lenient,
                Some("closed mid-answer"),
            ),
        ];
        for (name, o, e, want) in cases {
            match (o.violation(&e.statuses, e), want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(g.contains(w), "{name}: {g}"),
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn process_liveness_reads_proc() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
