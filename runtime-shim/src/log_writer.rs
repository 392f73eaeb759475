//! The shim's log lines on stderr without a `write` system call per line on the request
//! path.
//!
//! Every request logs one access line, and a `write` to stderr for each was a few
//! percent of a small request's CPU (runtime-shim/README.md, "Serving speed"). Lines at
//! INFO and below are appended to one shared buffer, which a background thread writes
//! out every [`INTERVAL`]; a WARN or ERROR line writes the buffer out at once, itself
//! included, so problems are never delayed and lines keep their order; [`flush`] at exit
//! writes out the rest. Memory is bounded: past [`MAX_BUFFERED`] bytes the line's own
//! writer writes the buffer out (that request waits; no line is ever dropped). A process
//! killed outright (SIGKILL) loses at most the last [`INTERVAL`] of INFO lines.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long an INFO line may wait in the buffer.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// Buffered bytes past which a line is written out by its own writer.
pub const MAX_BUFFERED: usize = 1 << 20;
/// Buffered bytes past which the background thread is woken early.
const WAKE_AT: usize = 64 << 10;

#[derive(Debug)]
struct Shared {
    buf: Mutex<Vec<u8>>,
    /// The batch being written, and the turn to write: taken before `buf` is let go, so
    /// batches reach the sink in order while new lines go into `buf` meanwhile.
    writing: Mutex<Vec<u8>>,
    wake: Condvar,
    /// Whether the background thread runs; without it every line is written at once.
    threaded: AtomicBool,
    /// Where lines go: stderr (another sink in the tests).
    sink: fn(&[u8]),
}

fn to_stderr(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    // Nothing sensible is left to do when stderr itself fails.
    let _ = err.write_all(bytes);
    let _ = err.flush();
}

impl Shared {
    fn new(sink: fn(&[u8])) -> Shared {
        Shared {
            buf: Mutex::new(Vec::new()),
            writing: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            threaded: AtomicBool::new(false),
            sink,
        }
    }

    /// Writes out whatever is buffered. The buffer is swapped for the empty one and let
    /// go before the write, so that request threads appending lines never wait on a slow
    /// stderr or on this thread being descheduled mid-write; the writing turn, taken
    /// first, keeps the batches in order.
    fn write_out(&self, mut buf: MutexGuard<'_, Vec<u8>>) {
        if buf.is_empty() {
            return;
        }
        let mut batch = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *buf, &mut *batch);
        drop(buf);
        (self.sink)(&batch);
        batch.clear();
    }
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The process's batched stderr (the background thread starts on first use).
pub fn stderr() -> BatchedStderr {
    let shared = SHARED.get_or_init(|| {
        let shared = Arc::new(Shared::new(to_stderr));
        let s = Arc::clone(&shared);
        let started = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || loop {
                let buf = s.buf.lock().unwrap_or_else(|e| e.into_inner());
                let (buf, _) = s
                    .wake
                    .wait_timeout(buf, INTERVAL)
                    .unwrap_or_else(|e| e.into_inner());
                s.write_out(buf);
            });
        shared.threaded.store(started.is_ok(), Ordering::Relaxed);
        shared
    });
    BatchedStderr {
        shared: Arc::clone(shared),
    }
}

/// Writes out every buffered line now (at exit).
pub fn flush() {
    if let Some(s) = SHARED.get() {
        s.write_out(s.buf.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl BatchedStderr {
    /// Appends a whole INFO line (its newline included), as the subscriber's writer does.
    pub fn append_info(&self, line: &[u8]) {
        // Writing into the buffer cannot fail.
        let _ = self.make_writer().write_all(line);
    }
}

/// A `MakeWriter` for `tracing_subscriber` (see the module docs).
#[derive(Debug, Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

/// The writer of one log line.
#[derive(Debug)]
pub struct Line<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
            urgent: !self.shared.threaded.load(Ordering::Relaxed),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            shared: &self.shared,
            // `Level` orders ERROR < WARN < INFO < DEBUG < TRACE.
            urgent: !self.shared.threaded.load(Ordering::Relaxed) || *meta.level() <= Level::WARN,
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.shared.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(bytes);
        if self.urgent || buf.len() >= MAX_BUFFERED {
            self.shared.write_out(buf);
        } else if buf.len() >= WAKE_AT {
            self.shared.wake.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static OUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn event(level: Level) -> tracing::Metadata<'static> {
        tracing::Metadata::new(
            "event",
            "t",
            level,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE)),
            tracing::metadata::Kind::EVENT,
        )
    }

    #[test]
    fn info_lines_wait_and_warnings_take_them_along() {
        let shared = Shared::new(|bytes| OUT.lock().unwrap().extend_from_slice(bytes));
        shared.threaded.store(true, Ordering::Relaxed);
        let w = BatchedStderr {
            shared: Arc::new(shared),
        };
        let (info, warn) = (event(Level::INFO), event(Level::WARN));
        let buffered = || w.shared.buf.lock().unwrap().clone();
        let out = || OUT.lock().unwrap().clone();
        w.make_writer_for(&info).write_all(b"one\n").unwrap();
        w.make_writer_for(&info).write_all(b"two\n").unwrap();
        assert_eq!(buffered(), b"one\ntwo\n", "INFO lines wait");
        assert!(out().is_empty());
        w.make_writer_for(&warn).write_all(b"three\n").unwrap();
        assert!(buffered().is_empty(), "a WARN line writes all out");
        assert_eq!(out(), b"one\ntwo\nthree\n", "in order");
        let big = vec![b'x'; MAX_BUFFERED];
        w.make_writer_for(&info).write_all(&big).unwrap();
        assert!(buffered().is_empty(), "bounded");
        w.shared.threaded.store(false, Ordering::Relaxed);
        w.make_writer_for(&info).write_all(b"four\n").unwrap();
        assert!(buffered().is_empty(), "no thread: at once");
        assert!(out().ends_with(b"xxfour\n"));
    }

    static SLOW_OUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    /// Held by the test to keep the slow sink from finishing.
    static GATE: Mutex<()> = Mutex::new(());
    static IN_SINK: AtomicBool = AtomicBool::new(false);

    #[test]
    fn lines_go_in_while_a_batch_is_written_and_batches_keep_their_order() {
        let shared = Shared::new(|bytes| {
            IN_SINK.store(true, Ordering::SeqCst);
            let _wait = GATE.lock().unwrap_or_else(|e| e.into_inner());
            SLOW_OUT.lock().unwrap().extend_from_slice(bytes);
        });
        shared.threaded.store(true, Ordering::Relaxed);
        let w = BatchedStderr {
            shared: Arc::new(shared),
        };
        let info = event(Level::INFO);
        let gate = GATE.lock().unwrap();
        w.make_writer_for(&info).write_all(b"one\n").unwrap();
        // A WARN line writes the batch out, and the sink is stuck on the gate.
        let writer = {
            let w = w.clone();
            std::thread::spawn(move || {
                let warn = event(Level::WARN);
                w.make_writer_for(&warn).write_all(b"two\n").unwrap()
            })
        };
        while !IN_SINK.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // The buffer was let go before the write: it is free and empty, and an INFO line
        // goes in at once.
        assert!(
            w.shared.buf.try_lock().is_ok_and(|b| b.is_empty()),
            "the buffer is held while the batch is written"
        );
        w.make_writer_for(&info).write_all(b"three\n").unwrap();
        assert_eq!(*w.shared.buf.lock().unwrap(), b"three\n");
        assert!(
            SLOW_OUT.lock().unwrap().is_empty(),
            "the first batch is still being written"
        );
        // A second batch waits for the first one's turn.
        let second = {
            let w = w.clone();
            std::thread::spawn(move || {
                let warn = event(Level::WARN);
                w.make_writer_for(&warn).write_all(b"four\n").unwrap()
            })
        };
        drop(gate);
        writer.join().unwrap();
        second.join().unwrap();
        assert_eq!(
            *SLOW_OUT.lock().unwrap(),
            b"one\ntwo\nthree\nfour\n",
            "in order"
        );
    }

    struct Callsite;
    impl tracing::Callsite for Callsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unreachable!("not registered")
        }
    }
    static CALLSITE: Callsite = Callsite;
}
