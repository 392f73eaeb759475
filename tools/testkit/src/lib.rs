//! Test support shared by the integration tests that run the real runtime shim
//! (`runtime-shim/tests`, `tools/shim-load/tests`), so that starting it, reading its log
//! and stopping it are written once; edited copies of real MOJOs ([`mojo`]) for the
//! processor, scorer and shim tests; and the test OIDC tokens of the endpoint security
//! tests ([`tokens`]); a real S3 server and a faulty proxy in front of it ([`s3`]).

pub mod mojo;
pub mod s3;
pub mod tokens;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A server process whose standard error is collected, started with [`Listening::spawn`].
/// Dropping it sends SIGTERM (so that a shim stops its own children), then SIGKILL if it
/// has not exited within 15 s.
#[derive(Debug)]
pub struct Listening {
    pub child: Child,
    /// The address of its `listening on ADDR` log line.
    pub addr: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Listening {
    /// Spawns `cmd` (its standard output discarded, its standard error collected) and
    /// waits up to `limit` for the log line `listening on ADDR`; panics with the log if
    /// none comes.
    pub fn spawn(mut cmd: Command, limit: Duration) -> Listening {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        match rx.recv_timeout(limit) {
            Ok(addr) => Listening {
                child,
                addr,
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no 'listening on' line; log:\n{}", log.lock().unwrap());
            }
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns the exit status and
    /// the whole log. Panics if it does not exit in time.
    pub fn stop(mut self, limit: Duration) -> (ExitStatus, String) {
        signal(self.child.id(), "-TERM");
        let status = wait_for(&mut self.child, limit).expect("exits after SIGTERM");
        if let Some(h) = self.reader.take() {
            h.join().unwrap();
        }
        (status, self.log())
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "-TERM");
            if wait_for(&mut self.child, Duration::from_secs(15)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// Sends `signal` (`-TERM`, `-KILL`, ...) to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {pid}");
}

/// The exit status of `child` once it has exited, or `None` after `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}
