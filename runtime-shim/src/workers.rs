//! The threads that serve connections: one single-threaded tokio runtime per thread, a
//! connection on one of them for its whole life (thread per core, as actix-web does).
//!
//! Why (issue 20): under tokio's work-stealing runtime a request's task wakes on
//! whichever worker is free, and the workers wake each other through futexes: at 1 row
//! per request `strace -c` counted 0.65 `futex` calls per request beside the one `recvfrom`
//! and one `writev` a request needs, and the shim spent ~26 µs of CPU per request with
//! two workers against ~20 µs with one. Here each connection's socket is registered with
//! its own thread's reactor and its task only ever runs there: an idle thread sleeps in
//! `epoll_wait`, nothing is handed between threads, no work-stealing queue is touched.
//! A connection goes to the thread serving the fewest connections at its accept.
//!
//! Each thread is pinned to a CPU of its own when the process may run on exactly as many
//! CPUs as it has threads ([`pin_plan`]). Unpinned, the scheduler put both threads on one
//! CPU in 13–17% of samples under load; a thread under steady load never sleeps, so the
//! other can wait up to a scheduler tick (4 ms at `HZ=250`), and `bench/serve.sh` saw
//! 4 ms p99s, which did not recur pinned (runtime-shim/README.md, Serving speed).
//!
//! What stays on the main runtime: the accept loops, model loading, the proxy backends'
//! child supervision, signals. Blocking work of a request (`spawn_blocking`) goes to its
//! thread's runtime's blocking pool.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One connection thread: its runtime's handle and the connections it serves now.
struct Worker {
    handle: Handle,
    open: Arc<AtomicUsize>,
}

/// The connection threads. Dropping the last handle to it ends the threads (their
/// runtimes drop whatever tasks they still hold).
pub struct Workers {
    workers: Vec<Worker>,
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `n` threads (at least one), named `shim-conn-<i>`, pinned as [`pin_plan`]
    /// says for the CPUs this process may run on.
    pub fn start(n: usize) -> io::Result<Arc<Workers>> {
        let n = n.max(1);
        // Counted before any thread is pinned (see `process_cpus`).
        process_cpus();
        let allowed = allowed_cpus();
        let plan = pin_plan(&allowed, n);
        let pinned: Vec<usize> = plan.iter().flatten().copied().collect();
        tracing::info!(threads = n, pinned_to_cpus = ?pinned, "connection threads");
        let mut workers = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for (i, cpu) in plan.into_iter().enumerate() {
            // A thread inherits its creator's affinity: the blocking pool's threads (and
            // the threads a large request's rows are split over, which they start) get
            // back every allowed CPU.
            let all = allowed.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(move || {
                    if cpu.is_some() {
                        set_affinity(&all);
                    }
                })
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            workers.push(Worker {
                handle: rt.handle().clone(),
                open: Arc::new(AtomicUsize::new(0)),
            });
            stops.push(stop_tx);
            std::thread::Builder::new()
                .name(format!("shim-conn-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        set_affinity(&[cpu]);
                    }
                    // Runs the thread's tasks until the `Workers` is dropped.
                    let _ = rt.block_on(stop_rx);
                })?;
        }
        Ok(Arc::new(Workers {
            workers,
            _stop: stops,
        }))
    }

    /// Runs `fut` on the thread serving the fewest connections. The future is first
    /// polled there: a socket it registers (`TcpStream::from_std`) belongs to that
    /// thread's reactor.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let w = self
            .workers
            .iter()
            .min_by_key(|w| w.open.load(Relaxed))
            .expect("at least one worker");
        let open = Arc::clone(&w.open);
        open.fetch_add(1, Relaxed);
        drop(w.handle.spawn(async move {
            let _open = Open(open);
            fut.await
        }));
    }

    /// Connections open on each thread (for tests).
    #[cfg(test)]
    fn open(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.open.load(Relaxed)).collect()
    }
}

/// The CPUs this process may use (`available_parallelism`: its affinity and its cgroup's
/// CPU quota), read once: before any thread is pinned ([`Workers::start`] reads it
/// first; read on a pinned thread it would say 1), and not per request (the quota
/// files). Every count of the process's CPUs in the shim comes from here.
pub fn process_cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The CPU each of `threads` threads is pinned to, from the CPUs the process may run on
/// (`allowed`, ascending): the i-th thread on the i-th CPU when there are exactly as many
/// CPUs as threads (a CPU set of its own: `--cpuset-cpus`, Kubernetes' static CPU
/// manager, a machine of that size); none otherwise. With more CPUs allowed than threads
/// (a CPU quota on a shared machine) pinning would put every replica's first thread on the
/// same CPU; with fewer, two threads would share one.
fn pin_plan(allowed: &[usize], threads: usize) -> Vec<Option<usize>> {
    if allowed.len() == threads {
        allowed.iter().copied().map(Some).collect()
    } else {
        vec![None; threads]
    }
}

/// The CPUs this process may run on (its affinity mask), ascending; none when it cannot
/// be read (then nothing is pinned).
fn allowed_cpus() -> Vec<usize> {
    use rustix::thread::{sched_getaffinity, CpuSet};
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Lets the calling thread run on `cpus` only. A refusal (a seccomp profile, a CPU taken
/// away meanwhile) leaves the thread where it was: pinning is an optimisation.
fn set_affinity(cpus: &[usize]) {
    use rustix::thread::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu);
    }
    if let Err(e) = sched_setaffinity(None, &set) {
        tracing::debug!(?cpus, error = %e, "thread affinity not set");
    }
}

/// Counts a connection on its thread while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Futures run on the connection threads, a new one on the least busy thread, and
    /// each thread's count falls back to zero when its futures end.
    #[test]
    fn spreads_connections_over_the_threads() {
        let workers = Workers::start(3).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut ends = Vec::new();
        for _ in 0..6 {
            let (end_tx, end_rx) = oneshot::channel::<()>();
            ends.push(end_tx);
            let tx = tx.clone();
            workers.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                tx.send(name).unwrap();
                let _ = end_rx.await;
            });
        }
        let mut names: Vec<_> = (0..6).map(|_| rx.recv().unwrap().unwrap()).collect();
        names.sort();
        let want = [
            "shim-conn-0",
            "shim-conn-0",
            "shim-conn-1",
            "shim-conn-1",
            "shim-conn-2",
            "shim-conn-2",
        ];
        assert_eq!(names, want);
        assert_eq!(workers.open(), [2, 2, 2]);
        drop(ends);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while workers.open() != [0, 0, 0] {
            assert!(
                std::time::Instant::now() < deadline,
                "counts {:?}",
                workers.open()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn pins_one_thread_per_cpu_only_when_the_cpus_are_as_many_as_the_threads() {
        /// Name, allowed CPUs, threads, the plan.
        type Case = (&'static str, &'static [usize], usize, Vec<Option<usize>>);
        let cases: [Case; 5] = [
            (
                "a cpuset of two, two threads",
                &[2, 5],
                2,
                vec![Some(2), Some(5)],
            ),
            ("one CPU, one thread", &[3], 1, vec![Some(3)]),
            (
                "a quota on a larger machine",
                &[0, 1, 2, 3],
                2,
                vec![None, None],
            ),
            ("more threads than CPUs", &[0, 1], 4, vec![None; 4]),
            ("affinity unreadable", &[], 2, vec![None, None]),
        ];
        for (name, allowed, threads, want) in cases {
            assert_eq!(pin_plan(allowed, threads), want, "{name}");
        }
    }

    /// As many threads as allowed CPUs each run on their own CPU; their blocking pools'
    /// threads (where large requests are scored, over several threads) on all of them.
    #[test]
    fn threads_run_on_their_pinned_cpus() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "the affinity mask is readable here");
        let process = std::thread::available_parallelism().unwrap().get();
        let workers = Workers::start(cpus.len()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut holds = Vec::new();
        for _ in 0..cpus.len() {
            let tx = tx.clone();
            let (hold_tx, hold_rx) = oneshot::channel::<()>();
            holds.push(hold_tx);
            workers.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned).unwrap();
                let mask = allowed_cpus();
                let blocking = tokio::task::spawn_blocking(allowed_cpus).await.unwrap();
                tx.send((name, mask, blocking, process_cpus())).unwrap();
                let _ = hold_rx.await;
            });
        }
        let mut seen: Vec<_> = (0..cpus.len()).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        for (i, (name, mask, blocking, cpus_seen)) in seen.iter().enumerate() {
            assert_eq!(name, &format!("shim-conn-{i}"));
            assert_eq!(mask, &vec![cpus[i]], "{name}");
            assert_eq!(blocking, &cpus, "{name}'s blocking pool runs on every CPU");
            assert_eq!(*cpus_seen, process, "{name} sees the process's CPUs");
        }
        drop(holds);
    }

    #[test]
    fn at_least_one_thread() {
        let workers = Workers::start(0).unwrap();
        assert_eq!(workers.open(), [0]);
    }
}
