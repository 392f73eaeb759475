//! The accept loop and the HTTP/1 connections, in place of `axum::serve`.
//!
//! `axum::serve` gives hyper no timer, so it has no header-read timeout, no idle timeout
//! and no limit on connections: a client that opens connections and sends its request
//! line a byte at a time, or nothing at all (slowloris), holds each one forever. Here:
//! - at most `max_connections` are open at once; past that, new ones wait in the kernel's
//!   listen backlog (they are not accepted, so they cost the process nothing) until one
//!   closes;
//! - a request whose line and headers have not all arrived within `header_timeout` (from
//!   the connection's start, or from the first byte of a later request on a kept-alive
//!   one) is answered `408` (`{"detail": ...}`, `Connection: close`) and the connection
//!   closed;
//! - a kept-alive connection idle for `idle_timeout` after its last answer is closed
//!   without an answer (no request was started). It is separate from the header timeout
//!   so that it can stay longer than a load balancer's idle timeout: a balancer that
//!   reuses a connection the server has just closed fails the request it sent on it;
//! - every accepted socket gets `TCP_NODELAY`;
//! - [`run`] returns once it has been told to stop and every connection has finished: idle
//!   ones close at once, busy ones after their answer (hyper's graceful shutdown).
//!
//! The clocks are kept here rather than by hyper's `header_read_timeout`, which runs
//! from the end of one answer to the next head and so cannot tell a slow head from an
//! idle connection. Every change of a connection's phase (bytes read, a head complete,
//! an answer ready) happens while its task polls the hyper connection, so the task
//! re-arms one timer after each poll.
//!
//! The body deadline, the body limit and the handler deadline are the router's
//! (`server::access_log`), as they need the route's error messages.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower_service::Service;

use crate::workers::Workers;

/// What [`run`] serves: an axum `Router`, or a service in front of one.
pub trait App:
    Service<
        hyper::Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> App for S where
    S: Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The limits of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time a client has to send a request's line and headers.
    pub header_timeout: Duration,
    /// The longest a kept-alive connection may sit idle after an answer.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// How long the 408 answer may take to write, and how long the unread rest of the
/// client's bytes is drained afterwards (so that closing does not reset the connection
/// before the client has read the answer).
const ANSWER_TIME: Duration = Duration::from_secs(1);
/// At most this many bytes are drained after a 408.
const DRAIN_BYTES: usize = 64 << 10;
/// Pause after an accept error that is not the client's (EMFILE, ENFILE, ENOBUFS), so
/// that a process out of file descriptors does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one "connection limit reached" warning per this interval.
const SATURATION_WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and serves `app` on each, on one of `workers`'
/// threads, until `stop` becomes `true` (or its sender is dropped); then stops accepting,
/// asks every connection to finish and returns once all have. The caller bounds that wait.
pub async fn run<S: App>(
    listener: TcpListener,
    app: S,
    limits: ConnLimits,
    workers: Arc<Workers>,
    mut stop: watch::Receiver<bool>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    let builder = Arc::new(builder);
    let mut last_warning: Option<Instant> = None;
    loop {
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_warning.is_none_or(|t| t.elapsed() >= SATURATION_WARN_EVERY) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = max,
                        "connection limit reached (MAX_CONNECTIONS): new connections wait \
                         in the listen backlog until one closes"
                    );
                }
                tokio::select! {
                    p = Arc::clone(&slots).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stopped(&mut stop) => break,
                }
            }
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(error) => {
                    if !is_per_connection(&error) {
                        tracing::warn!(%error, "cannot accept a connection; retrying shortly");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        prepare(&stream);
        // Handed over as a plain socket: registered again on the thread that serves it.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(error) => {
                tracing::debug!(%error, "cannot hand a connection over to its thread");
                continue;
            }
        };
        let (app, builder, stop) = (app.clone(), Arc::clone(&builder), stop.clone());
        workers.spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => connection(stream, app, builder, limits, stop, permit).await,
                Err(error) => tracing::debug!(%error, "cannot register a connection"),
            }
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means all are closed.
    let _ = slots.acquire_many(max as u32).await;
}

/// Returns once `stop` is `true` or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, before any other await.
    let _ = stop.wait_for(|s| *s).await;
}

/// An accept error that concerns only the connection being accepted (it went away before
/// it was accepted); any other (out of file descriptors, of memory) is the process's.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Settings of every accepted socket: `TCP_NODELAY`, as a response is small and written
/// at once, and Nagle's algorithm would hold its last segment back until the client's
/// delayed ACK (up to 40 ms per request on a kept-alive connection).
pub(crate) fn prepare(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
    }
}

/// Where a connection is, for its clocks.
const FRESH: u8 = 0; // accepted, nothing read yet
const HEAD: u8 = 1; // a request's bytes are arriving, its head is not complete
const IN_REQUEST: u8 = 2; // a head is complete; the router's deadlines apply
const IDLE: u8 = 3; // answered, nothing read since

/// A connection's phase and when it began (microseconds after `base`), shared by its
/// transport, its service and its task (all on the task, so `Relaxed` is enough).
struct Activity {
    base: Instant,
    phase: AtomicU8,
    since: AtomicU64,
}

/// Why a connection was closed by its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            phase: AtomicU8::new(FRESH),
            since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Bytes arrived: a new request has started unless one is under way. A fresh
    /// connection's head clock keeps running from the accept.
    fn read_bytes(&self) {
        match self.phase.load(Relaxed) {
            FRESH => self.phase.store(HEAD, Relaxed),
            IDLE => {
                self.since.store(self.now(), Relaxed);
                self.phase.store(HEAD, Relaxed);
            }
            _ => {}
        }
    }

    fn head_complete(&self) {
        self.phase.store(IN_REQUEST, Relaxed);
    }

    fn answered(&self) {
        self.since.store(self.now(), Relaxed);
        self.phase.store(IDLE, Relaxed);
    }

    /// The current phase's deadline, if it has one.
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, Expired)> {
        let (limit, why) = match self.phase.load(Relaxed) {
            FRESH | HEAD => (limits.header_timeout, Expired::Header),
            IDLE => (limits.idle_timeout, Expired::Idle),
            _ => return None,
        };
        Some((self.phase_start() + limit, why))
    }

    /// When the current phase began.
    fn phase_start(&self) -> Instant {
        self.base + Duration::from_micros(self.since.load(Relaxed))
    }
}

/// How a connection ended.
enum Ended {
    Hyper(Result<(), hyper::Error>),
    Expired(Expired),
}

/// Serves one connection under its clocks; answers 408 when a head did not arrive in
/// time.
async fn connection<S: App>(
    stream: TcpStream,
    app: S,
    builder: Arc<http1::Builder>,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let (back, returned) = oneshot::channel();
    let io = TokioIo::new(Returning {
        stream: Some(stream),
        back: Some(back),
        activity: Arc::clone(&activity),
    });
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            activity.head_complete();
            let activity = Arc::clone(&activity);
            let mut app = app.clone();
            async move {
                let resp = app.call(req).await;
                activity.answered();
                resp
            }
        })
    };
    let mut conn = Box::pin(builder.serve_connection(io, service));
    let mut stop = Box::pin(async move {
        let mut stop = stop;
        stopped(&mut stop).await;
    });
    let mut draining = false;
    let mut timer = Box::pin(tokio::time::sleep_until(activity.base));
    let mut armed: Option<Instant> = None;
    let ended = std::future::poll_fn(|cx| {
        if !draining && stop.as_mut().poll(cx).is_ready() {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(r) = conn.as_mut().poll(cx) {
            return Poll::Ready(Ended::Hyper(r));
        }
        let Some((at, why)) = activity.deadline(&limits) else {
            return Poll::Pending;
        };
        if armed != Some(at) {
            timer.as_mut().reset(at);
            armed = Some(at);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ended::Expired(why)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    // Dropping the connection gives the socket back through `returned`.
    drop(conn);
    match ended {
        Ended::Hyper(Ok(())) | Ended::Expired(Expired::Idle) => {}
        Ended::Hyper(Err(error)) => tracing::debug!(%error, "connection closed on an error"),
        Ended::Expired(Expired::Header) => {
            if let Ok(stream) = returned.await {
                let head_start = activity.phase_start();
                answer_header_timeout(stream, limits.header_timeout, head_start).await;
            }
        }
    }
}

/// Writes the 408 on a connection whose request line and headers did not arrive in time,
/// logs it as a request, then closes the connection after draining what the client sent.
async fn answer_header_timeout(mut stream: TcpStream, header_timeout: Duration, start: Instant) {
    let body = serde_json::json!({
        "detail": format!(
            "the request line and headers were not received within {} s (HEADER_TIMEOUT_SECS)",
            header_timeout.as_secs_f64()
        )
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(ANSWER_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_BYTES {
            match stream.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        io::Result::Ok(())
    })
    .await;
    tracing::info!(
        target: "access",
        method = %"-",
        path = %"-",
        status = 408u16,
        bytes = body.len() as u64,
        micros = start.elapsed().as_micros() as u64,
        "request"
    );
}

/// The socket as hyper's transport: it tells the connection's [`Activity`] when bytes
/// arrive, and when hyper drops it, it is sent back through `back` instead of being
/// closed, so that a header timeout can still be answered.
struct Returning {
    stream: Option<TcpStream>,
    back: Option<oneshot::Sender<TcpStream>>,
    activity: Arc<Activity>,
}

impl Returning {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.stream
                .as_mut()
                .expect("the stream is only taken on drop"),
        )
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let (Some(stream), Some(back)) = (self.stream.take(), self.back.take()) {
            // No receiver (the connection task is gone): the socket just closes.
            let _ = back.send(stream);
        }
    }
}

impl AsyncRead for Returning {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = this.stream().poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read_bytes();
        }
        r
    }
}

impl AsyncWrite for Returning {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use std::io::{Read, Write};
    use std::net::SocketAddr;

    async fn start(
        limits: ConnLimits,
    ) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "hi" }));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(listener, app, limits, Workers::start(2).unwrap(), rx));
        (addr, tx, task)
    }

    /// Sends each of `chunks`, `gap` apart, then reads until the server closes or `wait`
    /// passes; returns what was read, whether the server closed, and the time from the
    /// last write to the close.
    async fn exchange(
        addr: SocketAddr,
        chunks: &'static [&'static [u8]],
        gap: Duration,
        wait: Duration,
    ) -> (String, bool, Duration) {
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(wait)).unwrap();
            for (i, chunk) in chunks.iter().enumerate() {
                if i > 0 {
                    std::thread::sleep(gap);
                }
                s.write_all(chunk).unwrap();
            }
            let last = std::time::Instant::now();
            let mut out = Vec::new();
            let closed = s.read_to_end(&mut out).is_ok();
            (
                String::from_utf8_lossy(&out).into_owned(),
                closed,
                last.elapsed(),
            )
        })
        .await
        .unwrap()
    }

    /// A case: its name, the chunks sent, the gap between them in ms, the statuses of
    /// the answers in order, and the least time in ms from the last chunk to the close.
    type Case = (
        &'static str,
        &'static [&'static [u8]],
        u64,
        &'static [&'static str],
        u64,
    );

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    /// The header clock (600 ms, from the accept or from a later request's first byte)
    /// gives 408; the idle clock (1500 ms after an answer) closes without an answer; a
    /// request that is slow but in time is served. Every gap keeps 300 ms or more from
    /// the clock it must not reach, for a loaded machine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn header_and_idle_timeouts() {
        let limits = ConnLimits {
            header_timeout: Duration::from_millis(600),
            idle_timeout: Duration::from_millis(1500),
            max_connections: 8,
        };
        let (addr, _stop, _task) = start(limits).await;
        let cases: [Case; 9] = [
            ("nothing sent", &[b""], 0, &["408"], 450),
            ("partial request line", &[b"GET /"], 0, &["408"], 450),
            (
                "partial headers",
                &[b"GET / HTTP/1.1\r\nHost: x\r\nX-A: "],
                0,
                &["408"],
                450,
            ),
            // The clock runs from the accept, not from the last byte.
            (
                "dribbled partial headers",
                &[b"GET / HT", b"TP/1.1\r\n", b"Host"],
                150,
                &["408"],
                0,
            ),
            (
                "a head dribbled within the limit",
                &[b"GET / HT", b"TP/1.1\r\n", b"Host: x\r\n\r\n"],
                100,
                &["200"],
                1200,
            ),
            (
                "a request, then idle: closed unanswered",
                &[GET],
                0,
                &["200"],
                1200,
            ),
            (
                "a second request after longer than the header timeout",
                &[GET, GET],
                1000,
                &["200", "200"],
                1200,
            ),
            (
                "a request, then a partial one",
                &[GET, b"GET / HTTP/1.1\r\n"],
                100,
                &["200", "408"],
                450,
            ),
            (
                "a request, then a partial one after a pause",
                &[GET, b"GET / HTTP/1.1\r\n"],
                1000,
                &["200", "408"],
                450,
            ),
        ];
        for (name, chunks, gap, statuses, least) in cases {
            let (out, closed, took) = exchange(
                addr,
                chunks,
                Duration::from_millis(gap),
                Duration::from_secs(10),
            )
            .await;
            assert!(
                closed,
                "{name}: the server did not close the connection: {out:?}"
            );
            let got: Vec<&str> = out
                .match_indices("HTTP/1.1 ")
                .map(|(i, _)| &out[i + 9..i + 12])
                .collect();
            assert_eq!(got, statuses, "{name}: {out:?}");
            assert!(
                took >= Duration::from_millis(least),
                "{name}: closed after {took:?}"
            );
            if statuses.last() == Some(&"408") {
                assert!(out.contains("connection: close"), "{name}: {out:?}");
                assert!(
                    out.ends_with("within 0.6 s (HEADER_TIMEOUT_SECS)\"}"),
                    "{name}: {out:?}"
                );
            }
        }
    }

    /// Past `max_connections`, a connection is not served until another closes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_limit_holds_new_connections_back() {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_connections: 2,
        };
        let (addr, _stop, _task) = start(limits).await;
        let hold = [
            std::net::TcpStream::connect(addr).unwrap(),
            std::net::TcpStream::connect(addr).unwrap(),
        ];
        let (out, closed, _) = exchange(
            addr,
            &[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
            Duration::ZERO,
            Duration::from_millis(500),
        )
        .await;
        assert!(!closed && out.is_empty(), "served past the limit: {out:?}");
        drop(hold);
        let (out, closed, _) = exchange(
            addr,
            &[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
            Duration::ZERO,
            Duration::from_secs(5),
        )
        .await;
        assert!(closed && out.starts_with("HTTP/1.1 200"), "{out:?}");
    }

    /// Stopping closes idle and silent connections at once, lets a request in flight
    /// finish (its answer says `connection: close`), then stops listening.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_drains() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // `/slow` says when it has started, then answers 800 ms later.
        let started = Arc::new(tokio::sync::Notify::new());
        let notify = Arc::clone(&started);
        let app = Router::new()
            .route("/", axum::routing::get(|| async { "hi" }))
            .route(
                "/slow",
                axum::routing::get(move || async move {
                    notify.notify_one();
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    "late"
                }),
            );
        let (stop, rx) = watch::channel(false);
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_connections: 8,
        };
        let task = tokio::spawn(run(listener, app, limits, Workers::start(2).unwrap(), rx));
        let mut idle = std::net::TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 256];
        let n = idle.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        let in_flight = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        });
        started.notified().await;
        let stopping = Instant::now();
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("run returns once every connection is closed")
            .unwrap();
        assert!(
            stopping.elapsed() >= Duration::from_millis(400),
            "returned before the request in flight was answered"
        );
        let out = in_flight.await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out:?}");
        assert!(
            out.contains("connection: close") && out.ends_with("late"),
            "{out:?}"
        );
        for (name, s) in [("idle", &mut idle), ("silent", &mut silent)] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(s.read(&mut buf).unwrap(), 0, "{name}: not closed");
        }
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening"
        );
    }

    /// Every accepted connection has `TCP_NODELAY` set.
    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        prepare(&accepted);
        assert!(accepted.nodelay().unwrap());
    }
}
