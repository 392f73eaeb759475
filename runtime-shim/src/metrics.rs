//! Prometheus metrics of the shim, served at `/metrics` (on the API port behind the
//! endpoint security, or alone on `METRICS_PORT`).
//!
//! Why it is built this way: a scoring request takes a few microseconds, so what it
//! records must cost next to nothing and never wait on another request. Every figure is
//! a relaxed atomic that a request adds to (its route's status count, one latency
//! bucket, the sum, the in-flight gauge); no lock is taken and nothing is allocated per
//! request. The text exposition is written by the maintained `prometheus-client` crate at
//! scrape time, from a [`Collector`] that reads the atomics, so the format (names,
//! escaping, `# HELP`/`# TYPE`, cumulative buckets) is not ours to get wrong.
//! (`prometheus-client`'s own histogram takes a lock per observation, which is why the
//! figures are kept here and only encoded by it.)
//!
//! Routes are labelled by their matched path template (`/model/score`, a future
//! `/v2/models/{name}/infer`), never by the raw path, so the label set stays bounded;
//! requests that match no route count under `other`. A route gets its slot the first
//! time it is seen ([`ROUTE_SLOTS`] at most, then `other` too).
//!
//! What is recorded: requests by route and status and their latency
//! ([`Metrics::request_done`], from the access-log middleware of `server.rs`), rows
//! scored ([`RowsScored`], a response extension the scoring handlers set), requests in
//! flight, refused authentication by reason ([`Metrics::auth_refused`], from `auth`),
//! the model's load time ([`Metrics::model_loaded`]) and restarts of a proxy backend's
//! child ([`Metrics::child_restarted`], from `backend/proxy.rs`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Distinct route labels kept; more count under `other`.
pub const ROUTE_SLOTS: usize = 32;
/// Upper bounds (seconds) of the latency buckets: 50 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];
/// Status codes 100..=599 have their own counter.
const STATUSES: usize = 500;

/// Why a request was refused by the endpoint security (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <credential>`, several headers, or a credential over the size limit.
    Malformed,
    /// No passphrase matched and no token verified.
    Rejected,
    /// A token that verified but is past its `exp`.
    Expired,
    /// A token signed by a key the issuer does not list (after a refresh).
    UnknownKey,
    /// Too many hashed-passphrase checks waiting (answered 429).
    Busy,
}

impl AuthRefusal {
    pub const ALL: [AuthRefusal; 6] = [
        AuthRefusal::Missing,
        AuthRefusal::Malformed,
        AuthRefusal::Rejected,
        AuthRefusal::Expired,
        AuthRefusal::UnknownKey,
        AuthRefusal::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthRefusal::Missing => "missing",
            AuthRefusal::Malformed => "malformed",
            AuthRefusal::Rejected => "rejected",
            AuthRefusal::Expired => "expired",
            AuthRefusal::UnknownKey => "unknown_key",
            AuthRefusal::Busy => "busy",
        }
    }
}

/// A response extension: the handler scored this many rows.
#[derive(Debug, Clone, Copy)]
pub struct RowsScored(pub u64);

/// The figures of one route.
struct RouteStats {
    name: OnceLock<Box<str>>,
    statuses: Box<[AtomicU64]>,
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`], then the overflow.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
    rows: AtomicU64,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            name: OnceLock::new(),
            statuses: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
            rows: AtomicU64::new(0),
        }
    }
}

/// Every figure of the process (one set: [`global`]).
pub struct Metrics {
    routes: Box<[RouteStats]>,
    other: RouteStats,
    in_flight: AtomicI64,
    auth_refused: [AtomicU64; AuthRefusal::ALL.len()],
    /// Seconds to verify and load the model, as f64 bits; `u64::MAX` until loaded.
    model_load: AtomicU64,
    child_restarts: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            routes: (0..ROUTE_SLOTS).map(|_| RouteStats::new()).collect(),
            other: RouteStats::new(),
            in_flight: AtomicI64::new(0),
            auth_refused: std::array::from_fn(|_| AtomicU64::new(0)),
            model_load: AtomicU64::new(u64::MAX),
            child_restarts: AtomicU64::new(0),
        }
    }

    /// The slot of `route` (a matched path template), claimed on first sight.
    fn route(&self, route: Option<&str>) -> &RouteStats {
        let Some(route) = route else {
            return &self.other;
        };
        for slot in self.routes.iter() {
            match slot.name.get() {
                Some(n) if **n == *route => return slot,
                Some(_) => continue,
                None => {
                    // Claim it; if another request claimed it first with another name,
                    // keep looking.
                    let _ = slot.name.set(route.into());
                    if slot.name.get().is_some_and(|n| **n == *route) {
                        return slot;
                    }
                }
            }
        }
        &self.other
    }

    /// A request has started (the in-flight gauge).
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// A request has been answered: its route (matched path template, `None` when no
    /// route matched), status, time and the rows it scored.
    pub fn request_done(&self, route: Option<&str>, status: u16, took: Duration, rows: u64) {
        self.in_flight.fetch_sub(1, Relaxed);
        let r = self.route(route);
        if let Some(c) = (status as usize)
            .checked_sub(100)
            .and_then(|i| r.statuses.get(i))
        {
            c.fetch_add(1, Relaxed);
        }
        let secs = took.as_secs_f64();
        let b = LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        r.buckets[b].fetch_add(1, Relaxed);
        r.sum_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        r.count.fetch_add(1, Relaxed);
        if rows > 0 {
            r.rows.fetch_add(rows, Relaxed);
        }
    }

    /// A request was refused by the endpoint security.
    pub fn auth_refused(&self, why: AuthRefusal) {
        let i = AuthRefusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.auth_refused[i].fetch_add(1, Relaxed);
    }

    /// The model was verified and loaded in `took`.
    pub fn model_loaded(&self, took: Duration) {
        self.model_load.store(took.as_secs_f64().to_bits(), Relaxed);
    }

    /// A proxy backend's child was started again after it exited or was killed.
    pub fn child_restarted(&self) {
        self.child_restarts.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4) of every figure.
    pub fn render(&'static self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Exposition(self)));
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads the atomics at scrape time.
#[derive(Debug)]
struct Exposition(&'static Metrics);

impl Exposition {
    fn named_routes(&self) -> impl Iterator<Item = (&str, &RouteStats)> {
        self.0
            .routes
            .iter()
            .filter_map(|r| r.name.get().map(|n| (&**n, r)))
            .chain(std::iter::once(("other", &self.0.other)))
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0;
        {
            let mut e = encoder.encode_descriptor(
                "runtime_shim_requests",
                "HTTP requests answered, by route (matched path template) and status",
                None,
                MetricType::Counter,
            )?;
            for (name, r) in self.named_routes() {
                for (i, c) in r.statuses.iter().enumerate() {
                    let n = c.load(Relaxed);
                    if n > 0 {
                        let status = (i + 100).to_string();
                        let labels = [("route", name), ("status", status.as_str())];
                        ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
                    }
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "runtime_shim_request_duration_seconds",
                "Time from the request's head to its answer, by route",
                None,
                MetricType::Histogram,
            )?;
            for (name, r) in self.named_routes() {
                let count = r.count.load(Relaxed);
                if count == 0 {
                    continue;
                }
                // Per-bucket counts: the encoder writes them cumulated. The count is
                // their total, so that `+Inf` equals `_count` in every scrape.
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .chain(std::iter::once(&f64::INFINITY))
                    .zip(&r.buckets)
                    .map(|(le, c)| (*le, c.load(Relaxed)))
                    .collect();
                let total = buckets.iter().map(|(_, c)| c).sum();
                let sum = r.sum_nanos.load(Relaxed) as f64 / 1e9;
                let labels = [("route", name)];
                e.encode_family(&labels)?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        sum, total, &buckets, None,
                    )?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "runtime_shim_rows_scored",
                "Request rows scored (or explained, for /model/contribution), by route",
                None,
                MetricType::Counter,
            )?;
            for (name, r) in self.named_routes() {
                let n = r.rows.load(Relaxed);
                if n > 0 {
                    ConstCounter::new(n).encode(e.encode_family(&[("route", name)])?)?;
                }
            }
        }
        let in_flight = ConstGauge::new(m.in_flight.load(Relaxed));
        in_flight.encode(encoder.encode_descriptor(
            "runtime_shim_requests_in_flight",
            "Requests being handled now",
            None,
            in_flight.metric_type(),
        )?)?;
        {
            let mut e = encoder.encode_descriptor(
                "runtime_shim_auth_refused",
                "Requests refused by the endpoint security, by reason",
                None,
                MetricType::Counter,
            )?;
            for (why, c) in AuthRefusal::ALL.iter().zip(&m.auth_refused) {
                ConstCounter::new(c.load(Relaxed))
                    .encode(e.encode_family(&[("reason", why.as_str())])?)?;
            }
        }
        let load = m.model_load.load(Relaxed);
        if load != u64::MAX {
            let g = ConstGauge::new(f64::from_bits(load));
            g.encode(encoder.encode_descriptor(
                "runtime_shim_model_load_seconds",
                "Time to verify and load the model at start-up",
                None,
                g.metric_type(),
            )?)?;
        }
        let restarts = ConstCounter::new(m.child_restarts.load(Relaxed));
        restarts.encode(encoder.encode_descriptor(
            "runtime_shim_child_restarts",
            "Restarts of a proxy backend's scoring child (MLflow, DAI scorer)",
            None,
            restarts.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaked() -> &'static Metrics {
        Box::leak(Box::new(Metrics::new()))
    }

    #[test]
    fn exposition_has_every_family_with_its_figures() {
        let m = leaked();
        for (route, status, micros, rows) in [
            (Some("/model/score"), 200, 80, 3),
            (Some("/model/score"), 200, 3_000, 1),
            (Some("/model/score"), 400, 20, 0),
            (None, 404, 10, 0),
        ] {
            m.request_started();
            m.request_done(route, status, Duration::from_micros(micros), rows);
        }
        m.request_started();
        m.auth_refused(AuthRefusal::Rejected);
        m.auth_refused(AuthRefusal::Rejected);
        m.model_loaded(Duration::from_millis(1500));
        m.child_restarted();
        let text = m.render();
        let want = [
            "# TYPE runtime_shim_requests_total counter",
            r#"runtime_shim_requests_total{route="/model/score",status="200"} 2"#,
            r#"runtime_shim_requests_total{route="/model/score",status="400"} 1"#,
            r#"runtime_shim_requests_total{route="other",status="404"} 1"#,
            "# TYPE runtime_shim_request_duration_seconds histogram",
            r#"runtime_shim_request_duration_seconds_bucket{route="/model/score",le="0.0001"} 2"#,
            r#"runtime_shim_request_duration_seconds_bucket{route="/model/score",le="0.005"} 3"#,
            r#"runtime_shim_request_duration_seconds_bucket{route="/model/score",le="+Inf"} 3"#,
            r#"runtime_shim_request_duration_seconds_count{route="/model/score"} 3"#,
            r#"runtime_shim_rows_scored_total{route="/model/score"} 4"#,
            "runtime_shim_requests_in_flight 1",
            r#"runtime_shim_auth_refused_total{reason="rejected"} 2"#,
            r#"runtime_shim_auth_refused_total{reason="missing"} 0"#,
            "runtime_shim_model_load_seconds 1.5",
            "runtime_shim_child_restarts_total 1",
        ];
        for w in want {
            assert!(text.lines().any(|l| l == w), "{w:?} not in:\n{text}");
        }
        let sum = text
            .lines()
            .find(|l| {
                l.starts_with(r#"runtime_shim_request_duration_seconds_sum{route="/model/score"}"#)
            })
            .unwrap();
        let v: f64 = sum.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((v - 0.0031).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn routes_past_the_slots_count_as_other() {
        let m = leaked();
        for i in 0..ROUTE_SLOTS + 5 {
            let r = format!("/r{i}");
            m.request_started();
            m.request_done(Some(&r), 200, Duration::from_micros(1), 0);
        }
        let text = m.render();
        assert!(text.contains(r#"route="/r31""#), "{text}");
        assert!(!text.contains(r#"route="/r32""#), "{text}");
        assert!(
            text.contains(r#"runtime_shim_requests_total{route="other",status="200"} 5"#),
            "{text}"
        );
    }
}
