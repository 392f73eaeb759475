//! The half that both proxy backends share: a supervised child process that serves HTTP
//! on a loopback port, and the client that talks to it.
//!
//! `mlflow_pyfunc` and `dai_mojo_pipeline` are scored by programs this build cannot link
//! (Python's MLflow scoring server; the licensed MOJO2 runtime behind an external scorer).
//! The shim starts such a program as a child listening on `127.0.0.1:<free port>`, waits
//! until its health route answers, and sends it every scoring call. The child is watched:
//! when it exits (or stops answering its health route for a minute), `/readyz` says not
//! ready, the exit is logged with its status, and the child is started again after a delay
//! that doubles from 0.5 s to 30 s (back to 0.5 s once a child has served for 30 s). The
//! child runs in its own process group, so that stopping it also stops what it started
//! (uvicorn under `mlflow models serve`): SIGTERM to the group, SIGKILL after a grace
//! period. Its standard output and error are logged line by line (target `child`), with
//! secret values (a licence key) replaced, and the last lines are quoted when it fails to
//! start.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::command::{display_argv, CommandTemplate};
use crate::api::ApiError;

/// First delay before a restart; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Longest delay between restarts; a child that served this long resets the delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a running child's health route is checked.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(10);
/// Consecutive failed checks after which a running child is killed and restarted.
const WATCHDOG_FAILURES: u32 = 6;
/// Lines of the child's output quoted when it fails to start.
const TAIL_LINES: usize = 20;
/// Largest reply read from a child.
const MAX_REPLY_BYTES: usize = 1 << 30;
/// How long a failed request watches a child whose server refused the connection before
/// it says "did not answer" rather than "being restarted".
const DYING_GRACE: Duration = Duration::from_millis(1500);

/// Process groups of the children alive now, so that an abnormal exit of the shim still
/// stops them ([`kill_all`]).
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Set when the shim is exiting: starts in progress give up.
static EXITING: AtomicBool = AtomicBool::new(false);

/// What child to run and how to talk to it.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// The child's name in logs and messages (`MLflow scoring server`).
    pub name: &'static str,
    /// The setting the command came from, for messages (`MLFLOW_SERVE_COMMAND`).
    pub setting: &'static str,
    pub command: CommandTemplate,
    /// Placeholder values; `{host}` and `{port}` are added for each start.
    pub vars: Vec<(&'static str, String)>,
    /// Route that answers 2xx once the child can score (`/ping`, `/model/id`).
    pub health_path: String,
    /// How long a start may take until the health route answers.
    pub start_timeout: Duration,
    /// How long the child gets to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Values never written to the log: replaced in the child's output lines.
    pub secrets: Vec<String>,
    /// Variables set in the child's environment besides what it inherits.
    pub env: Vec<(&'static str, std::ffi::OsString)>,
}

/// Where a healthy child listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub pid: u32,
}

/// A child that answered its health route.
struct Running {
    child: Child,
    pid: u32,
    upstream: Upstream,
    healthy_at: Instant,
}

/// A supervised child and the HTTP client to it.
pub struct Proxy {
    spec: ProxySpec,
    client: Client<HttpConnector, Body>,
    /// The healthy child's address, `None` while it is down or restarting.
    up: watch::Sender<Option<Upstream>>,
    stop: watch::Sender<bool>,
    monitor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("name", &self.spec.name)
            .field("upstream", &*self.up.borrow())
            .finish()
    }
}

impl Proxy {
    /// Starts the child, waits until its health route answers (or fails with a message
    /// naming the command, its exit status and its last output lines), then watches it.
    pub async fn start(spec: ProxySpec) -> Result<Arc<Proxy>, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let proxy = Arc::new(Proxy {
            spec,
            client,
            up: watch::Sender::new(None),
            stop: watch::Sender::new(false),
            monitor: Mutex::new(None),
        });
        let running = proxy.launch().await?;
        proxy.up.send_replace(Some(running.upstream.clone()));
        // Subscribed before the task runs, so that a shutdown right now is not missed.
        let stop = proxy.stop.subscribe();
        let task = tokio::spawn(Arc::clone(&proxy).watch(running, stop));
        *proxy.monitor.lock().expect("monitor lock") = Some(task);
        Ok(proxy)
    }

    /// The child's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The healthy child, or a 503 saying that it is being restarted.
    pub fn upstream(&self) -> Result<Upstream, ApiError> {
        self.up.borrow().clone().ok_or_else(|| self.not_running())
    }

    /// The 503 while the child is down.
    fn not_running(&self) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the {} is not running (it is being restarted); retry when /readyz answers Ready",
                self.spec.name
            ),
        )
    }

    /// Whether a child is up and its health route answers now.
    pub async fn ready(&self) -> bool {
        let up = self.up.borrow().clone();
        match up {
            Some(u) => {
                self.probe(&u.base, Duration::from_secs(2)).await
                    && self.up.borrow().as_ref() == Some(&u)
            }
            None => false,
        }
    }

    /// Stops the child (SIGTERM to its group, SIGKILL after the grace period) and the
    /// watching; no restart follows.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = self.monitor.lock().expect("monitor lock").take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// `GET base+path` with a time limit: the status and body.
    pub async fn get(
        &self,
        up: &Upstream,
        path: &str,
        limit: Duration,
    ) -> Result<(StatusCode, Bytes), String> {
        let req = Request::get(format!("{}{path}", up.base))
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(limit, self.send(req))
            .await
            .map_err(|_| format!("no answer within {} s", limit.as_secs_f64()))?
    }

    /// `POST base+path` with `body`: the status and body of the reply. A child that
    /// cannot be reached is a 503: "not running" when its process group is gone or going
    /// (it died and the watcher has not reaped it yet: a killed server's workers can take
    /// a moment to follow it, so the group is watched for up to [`DYING_GRACE`]), else
    /// "did not answer" with the cause.
    pub async fn post(
        &self,
        up: &Upstream,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let req = Request::post(format!("{}{path}", up.base))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .map_err(|e| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        match self.send(req).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                if self.dying(up).await {
                    return Err(self.not_running());
                }
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Failed scoring request due to: the {} (pid {}) did not answer: {e}",
                        self.spec.name, up.pid
                    ),
                ))
            }
        }
    }

    /// Whether the child behind `up`, which just failed a request, is dead or dying: its
    /// process group is gone, or the watcher has already taken it down, within
    /// [`DYING_GRACE`].
    async fn dying(&self, up: &Upstream) -> bool {
        let deadline = tokio::time::Instant::now() + DYING_GRACE;
        loop {
            if !group_alive(up.pid) || self.up.borrow().as_ref() != Some(up) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn send(&self, req: Request<Body>) -> Result<(StatusCode, Bytes), String> {
        let resp = self.client.request(req).await.map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            msg
        })?;
        let status = resp.status();
        let body = axum::body::to_bytes(Body::new(resp.into_body()), MAX_REPLY_BYTES)
            .await
            .map_err(|e| format!("reading the reply: {e}"))?;
        Ok((status, body))
    }

    async fn probe(&self, base: &str, limit: Duration) -> bool {
        let up = Upstream {
            base: base.to_string(),
            pid: 0,
        };
        matches!(self.get(&up, &self.spec.health_path, limit).await, Ok((s, _)) if s.is_success())
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || EXITING.load(Ordering::SeqCst)
    }

    /// Starts one child on a free port and waits for its health route.
    async fn launch(&self) -> Result<Running, String> {
        let spec = &self.spec;
        let port = free_port().map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
        let port_s = port.to_string();
        let mut vars: Vec<(&str, &str)> = vec![("host", "127.0.0.1"), ("port", &port_s)];
        vars.extend(spec.vars.iter().map(|(k, v)| (*k, v.as_str())));
        let argv = spec.command.render(&vars);
        let shown = display_argv(&argv);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        if let Some(path) = child_path(Path::new(&argv[0])) {
            cmd.env("PATH", path);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start the {} `{shown}` ({}): {e}",
                spec.name, spec.setting
            )
        })?;
        let pid = child.id().unwrap_or(0);
        register(pid);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(self.forward(out, pid, Arc::clone(&tail)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(self.forward(err, pid, Arc::clone(&tail)));
        }
        tracing::info!(pid, port, command = %shown, "starting the {}", spec.name);
        let start = Instant::now();
        let upstream = Upstream {
            base: format!("http://127.0.0.1:{port}"),
            pid,
        };
        let mut delay = Duration::from_millis(50);
        let failure = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    break format!(
                        "the {} `{shown}` ({}) exited with {status} before it answered GET {}",
                        spec.name, spec.setting, spec.health_path
                    );
                }
                Ok(None) => {}
                Err(e) => break format!("cannot watch the {} (pid {pid}): {e}", spec.name),
            }
            if self.stopping() {
                break format!(
                    "the shim is stopping; the {} start was abandoned",
                    spec.name
                );
            }
            if self.probe(&upstream.base, Duration::from_secs(1)).await {
                tracing::info!(
                    pid,
                    port,
                    seconds = start.elapsed().as_secs_f64(),
                    "the {} answers GET {}",
                    spec.name,
                    spec.health_path
                );
                return Ok(Running {
                    child,
                    pid,
                    upstream,
                    healthy_at: Instant::now(),
                });
            }
            if start.elapsed() >= spec.start_timeout {
                break format!(
                    "the {} `{shown}` ({}) did not answer GET {} within {} s (CHILD_START_TIMEOUT_SECS); it was stopped",
                    spec.name,
                    spec.setting,
                    spec.health_path,
                    spec.start_timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        };
        stop_group(&mut child, pid, spec.stop_grace, spec.name).await;
        // The pipes close once the group is gone; give the readers a moment to drain.
        for r in readers {
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        }
        let lines: Vec<String> = tail.lock().expect("tail lock").iter().cloned().collect();
        Err(if lines.is_empty() {
            format!("{failure}; it wrote nothing")
        } else {
            format!("{failure}; its last output:\n    {}", lines.join("\n    "))
        })
    }

    /// Logs each line of a child's stream and keeps the last ones.
    fn forward<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        stream: R,
        pid: u32,
        tail: Arc<Mutex<VecDeque<String>>>,
    ) -> JoinHandle<()> {
        let name = self.spec.name;
        let secrets = self.spec.secrets.clone();
        tokio::spawn(async move {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let mut line = String::from_utf8_lossy(&buf).trim_end().to_string();
                for s in &secrets {
                    if !s.is_empty() {
                        line = line.replace(s.as_str(), "[redacted]");
                    }
                }
                tracing::info!(target: "child", child = name, pid, "{line}");
                let mut t = tail.lock().expect("tail lock");
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        })
    }

    /// Watches a healthy child; restarts it whenever it goes away, until [`Proxy::shutdown`].
    async fn watch(self: Arc<Self>, mut run: Running, mut stop: watch::Receiver<bool>) {
        let name = self.spec.name;
        let mut backoff = BACKOFF_INITIAL;
        loop {
            let mut failures = 0;
            let mut tick = tokio::time::interval(WATCHDOG_PERIOD);
            tick.reset();
            let why = loop {
                tokio::select! {
                    status = run.child.wait() => break match status {
                        Ok(s) => format!("exited with {s}"),
                        Err(e) => format!("cannot be waited for: {e}"),
                    },
                    _ = stop.changed() => {
                        self.up.send_replace(None);
                        tracing::info!(pid = run.pid, "stopping the {name}");
                        stop_group(&mut run.child, run.pid, self.spec.stop_grace, name).await;
                        tracing::info!(pid = run.pid, "the {name} stopped");
                        return;
                    }
                    _ = tick.tick() => {
                        if self.probe(&run.upstream.base, Duration::from_secs(5)).await {
                            failures = 0;
                        } else {
                            failures += 1;
                            tracing::warn!(pid = run.pid, failures, "the {name} did not answer GET {}", self.spec.health_path);
                            if failures >= WATCHDOG_FAILURES {
                                break format!("stopped answering GET {} for {} checks {} s apart; killed it",
                                    self.spec.health_path, failures, WATCHDOG_PERIOD.as_secs());
                            }
                        }
                    }
                }
            };
            self.up.send_replace(None);
            if run.healthy_at.elapsed() >= BACKOFF_MAX {
                backoff = BACKOFF_INITIAL;
            }
            tracing::error!(
                pid = run.pid,
                restart_in_seconds = backoff.as_secs_f64(),
                "the {name} {why}; not ready until it is restarted"
            );
            // Whatever is left of its group (a grandchild) goes too.
            stop_group(&mut run.child, run.pid, self.spec.stop_grace, name).await;
            run = loop {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                match self.launch().await {
                    Ok(r) => break r,
                    Err(e) if self.stopping() => {
                        tracing::info!("{e}");
                        return;
                    }
                    Err(e) => tracing::error!(
                        restart_in_seconds = backoff.as_secs_f64(),
                        "restarting the {name} failed: {e}"
                    ),
                }
            };
            crate::metrics::global().child_restarted();
            tracing::info!(pid = run.pid, "the {name} is back; ready");
            self.up.send_replace(Some(run.upstream.clone()));
        }
    }
}

/// Picks a port that is free on 127.0.0.1 now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The child's `PATH`: the command's own folder first (an MLflow venv's `bin/`, where
/// `mlflow models serve` looks for `uvicorn`), then the shim's `PATH`.
fn child_path(program: &Path) -> Option<OsString> {
    let dir: PathBuf = if program.components().count() > 1 {
        program.parent()?.to_path_buf()
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(program))
            .find(|p| p.is_file())?
            .parent()?
            .to_path_buf()
    };
    let mut dirs = vec![dir];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).ok()
}

fn register(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        LIVE.lock().expect("live lock").push(p);
    }
}

fn unregister(pid: u32) {
    LIVE.lock()
        .expect("live lock")
        .retain(|&p| u32::try_from(p).ok() != Some(pid));
}

fn signal_group(pid: u32, sig: Signal) -> bool {
    match i32::try_from(pid).ok().and_then(Pid::from_raw) {
        Some(p) => kill_process_group(p, sig).is_ok(),
        None => false,
    }
}

/// Whether a process of the group still runs. Zombies do not count: a grandchild whose
/// parent died is reparented to PID 1, which may be this shim, and nobody reaps it here.
fn group_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    if test_kill_process_group(p).is_err() {
        return false;
    }
    match running_in_group(pid) {
        Some(n) => n > 0,
        // No /proc: trust the signal test.
        None => true,
    }
}

/// Processes of process group `pgid` that are not zombies, from `/proc/<pid>/stat`.
fn running_in_group(pgid: u32) -> Option<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, pgrp) = (f.next(), f.nth(1));
        if pgrp.and_then(|g| g.parse::<u32>().ok()) == Some(pgid) && state != Some("Z") {
            n += 1;
        }
    }
    Some(n)
}

/// Stops a child's process group: SIGTERM, then SIGKILL for what is left after `grace`.
/// Returns once the child itself is reaped.
async fn stop_group(child: &mut Child, pid: u32, grace: Duration, name: &str) {
    let deadline = Instant::now() + grace;
    if group_alive(pid) {
        signal_group(pid, Signal::TERM);
        let _ = tokio::time::timeout(grace, child.wait()).await;
        while group_alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if group_alive(pid) && signal_group(pid, Signal::KILL) {
            tracing::warn!(
                pid,
                grace_seconds = grace.as_secs_f64(),
                "the {name} did not stop within the grace period after SIGTERM; sent SIGKILL"
            );
        }
    }
    let _ = child.wait().await;
    unregister(pid);
}

/// Kills every child process group still alive (SIGKILL): for exits that did not stop
/// the children in order (a signal while the model loads, a failed start-up). Later
/// starts give up.
pub fn kill_all() {
    EXITING.store(true, Ordering::SeqCst);
    let live: Vec<i32> = std::mem::take(&mut *LIVE.lock().expect("live lock"));
    for p in live {
        if let Some(pid) = Pid::from_raw(p) {
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn child_path_puts_the_command_folder_first() {
        let p = child_path(Path::new("/opt/venv/bin/mlflow")).unwrap();
        let dirs: Vec<PathBuf> = std::env::split_paths(&p).collect();
        assert_eq!(dirs[0], Path::new("/opt/venv/bin"));
        let p = child_path(Path::new("sh")).expect("sh is on PATH");
        let first = std::env::split_paths(&p).next().unwrap();
        assert!(first.join("sh").is_file(), "{}", first.display());
        assert_eq!(child_path(Path::new("no-such-program-here")), None);
    }

    #[test]
    fn a_group_is_alive_until_its_last_running_member_exits() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(100));
        assert!(group_alive(pid));
        assert_eq!(running_in_group(pid), Some(2), "sh and its sleep");
        signal_group(pid, Signal::KILL);
        child.wait().unwrap();
        let start = Instant::now();
        while group_alive(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the group is still alive"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(running_in_group(pid), Some(0));
    }
}
