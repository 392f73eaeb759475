//! The cheap path of `POST /model/score` for backends that score in process, row by row
//! ([`crate::backend::Backend::score_row_json`]: native H2O-3). Issue 20: at 100 rows
//! per request most of the time went to the request's `String` per cell, `Vec<String>`
//! per output row and serde's walk over them, not to scoring. Here the body is parsed into borrowed cells (one
//! flat vector; a cell is copied only when it holds JSON escapes or is a number): by a
//! hand-written one-pass parser ([`request::parse`]; serde's walk was still about 23% of
//! the instructions of a 1000-row request), or by serde_json into the same struct for the
//! bodies that parser is not sure of (numbers or booleans as cells, escaped member names,
//! anything it refuses). Each row's cells go straight into the scorer in its input order,
//! the scorer writes its outputs into the answer as JSON strings (no `String` per cell),
//! and the answer is one buffer, byte for byte what serde writes for a
//! [`crate::api::ScoreResponse`]. Requests over
//! [`PARALLEL_MIN_BODY`] are parsed and scored one per CPU at a time (the others wait
//! their turn): alone, on the blocking pool with their rows split over up to one thread
//! per CPU; beside other large ones, on their connection's own thread.
//!
//! Everything this path cannot answer by itself goes to the general path, which then
//! answers exactly as before: a body serde refuses here (the general parser gives the
//! message), a request asking for Shapley values, a backend without row scoring. The
//! request checks are the same code ([`RequestRules::check`]) in the same order.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::api::{cell_value, ApiError, Endpoint, Layout, RequestOptions};
use crate::model::LoadedModel;
use crate::workers::process_cpus;

mod request;

/// Bodies larger than this (about 7 000 rows of a 5-input model) are scored one per CPU
/// at a time, a lone one with its rows split over several threads. Smaller ones are
/// scored on their connection's thread: splitting a 1000-row request (~30 KiB) saved a
/// lone request a fraction of a millisecond but, under concurrent ones, handed each to
/// other threads and back and grew the blocking pools (`shim-load load --rows 1000
/// --connections 32 --duration 3s` on `gbm_binomial`: 457 µs of CPU per request and
/// 79 MB peak RSS with the 16 KiB threshold, 413 µs and 36 MB with this one).
pub const PARALLEL_MIN_BODY: usize = 256 * 1024;
/// Rows per scoring thread at least: fewer and the threads' start costs more than it saves.
const ROWS_PER_THREAD: usize = 128;

/// The answer of the cheap path: the JSON body and the number of rows scored.
pub struct Answer {
    pub body: Vec<u8>,
    pub rows: u64,
}

/// Answers `body` if this path can (`Ok(None)`: take the general path). Errors are the
/// general path's errors for the same request.
pub async fn score(model: &Arc<LoadedModel>, body: &Bytes) -> Result<Option<Answer>, ApiError> {
    if !model.backend.in_process() {
        return Ok(None);
    }
    if body.len() < PARALLEL_MIN_BODY {
        return answer(model, body, 1);
    }
    // One large request per CPU at a time: more would only add blocking threads (each
    // with its stack and, with glibc, its own malloc arena) time-sharing the same CPUs.
    // Counted while it waits too, so that a request does not split its rows over CPUs
    // that the waiting ones are about to take.
    let counted = LargeInFlight::enter();
    let permit = large_slots()
        .acquire()
        .await
        .map_err(|e| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let threads = threads_for(process_cpus(), LARGE_IN_FLIGHT.load(Ordering::Relaxed));
    if threads == 1 {
        // Not alone: scored right here, on the connection's thread, which is one CPU's
        // worth already (`crate::workers`); a hand-over to the blocking pool and back
        // would only add two thread switches and a wake-up per request. (Its
        // connection thread's other connections wait that long: at most one large
        // request's time.)
        let _held = (permit, counted);
        return answer(model, body, 1);
    }
    let (model, body) = (Arc::clone(model), body.clone());
    tokio::task::spawn_blocking(move || {
        let (_permit, _counted) = (permit, counted);
        let threads = threads_for(process_cpus(), LARGE_IN_FLIGHT.load(Ordering::Relaxed));
        answer(&model, &body, threads)
    })
    .await
    .map_err(|e| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, e))?
}

/// The large requests that may be parsed and scored at once: one per CPU.
fn large_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(process_cpus()))
}

/// Large requests being answered or waiting for a slot right now (see [`threads_for`]).
static LARGE_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts a large request in [`LARGE_IN_FLIGHT`] while it lives.
struct LargeInFlight;

impl LargeInFlight {
    fn enter() -> LargeInFlight {
        LARGE_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        LargeInFlight
    }
}

impl Drop for LargeInFlight {
    fn drop(&mut self) {
        LARGE_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Scoring threads for one large request when `in_flight` of them (itself included) are
/// being answered on `cpus` CPUs: the CPUs shared out, at least one. A lone request
/// uses every CPU; under concurrent ones each keeps to its own thread, as splitting
/// would only add threads for the same CPUs (measured: 32 connections of 1000-row
/// requests on 2 CPUs answered at 0.8–1.1x the JVM's rows/s (1.8x for DRF) while
/// splitting).
fn threads_for(cpus: usize, in_flight: usize) -> usize {
    (cpus / in_flight.max(1)).max(1)
}

fn answer(model: &LoadedModel, body: &[u8], threads: usize) -> Result<Option<Answer>, ApiError> {
    let ep = Endpoint::Score;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // The fast parser gives serde's reading or declines; serde then reads or refuses.
    let req = match request::parse(body) {
        Some(req) => req,
        None => match serde_json::from_slice::<Option<Request<'_>>>(body) {
            Ok(Some(req)) => req,
            _ => return Ok(None),
        },
    };
    if req.request_shapley_value_type.is_some() {
        return Ok(None);
    }
    let rows = req.rows.unwrap_or_default();
    let opts = RequestOptions {
        include_fields_in_output: req.include_fields_in_output,
        id_field: req.id_field,
        no_field_names_in_output: req.no_field_names_in_output,
        request_shapley_value_type: None,
    };
    let layout = model.rules.check(req.fields, rows.lens(), opts, ep)?;
    let n = rows.len();
    let threads = threads.min(n / ROWS_PER_THREAD).max(1);
    let per = n.div_ceil(threads);
    let mut out = Vec::with_capacity(body.len() / 2 + 64);
    layout.write_response_head(&mut out, &model.id, model.backend.output_names());
    if threads == 1 {
        if !write_rows(model, &layout, &rows, 0..n, &mut out)? {
            return Ok(None);
        }
    } else {
        let parts: Vec<Result<(bool, Vec<u8>), ApiError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (layout, rows) = (&layout, &rows);
                    let range = t * per..((t + 1) * per).min(n);
                    s.spawn(move || {
                        let mut buf = Vec::with_capacity(range.len() * 64);
                        write_rows(model, layout, rows, range, &mut buf).map(|ok| (ok, buf))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        // The first failing row in request order, as the general path reports it.
        for (i, part) in parts.into_iter().enumerate() {
            let (ok, buf) = part?;
            if !ok {
                return Ok(None);
            }
            if i > 0 && !buf.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(&buf);
        }
    }
    out.extend_from_slice(b"]}");
    Ok(Some(Answer {
        body: out,
        rows: n as u64,
    }))
}

/// Scores `range` of `rows` and writes them as `score` rows (comma-separated) to `out`;
/// `false` when the backend does not score row by row.
fn write_rows(
    model: &LoadedModel,
    layout: &Layout,
    rows: &Rows<'_>,
    range: std::ops::Range<usize>,
    out: &mut Vec<u8>,
) -> Result<bool, ApiError> {
    let positions = layout.positions();
    let mut cells: Vec<Option<&str>> = Vec::with_capacity(positions.len());
    let first = range.start;
    for r in range {
        let row = rows.row(r);
        cells.clear();
        cells.extend(positions.iter().map(|&p| cell_value(row[p].as_deref())));
        if r > first {
            out.push(b',');
        }
        out.push(b'[');
        layout.write_extra(out, |p| row[p].as_deref().unwrap_or(""));
        // The outputs straight into the answer (on an error or `None` the answer is
        // dropped).
        match model.backend.score_row_json(&cells, r, out) {
            None => return Ok(false),
            Some(res) => res?,
        }
        out.push(b']');
    }
    Ok(true)
}

/// A `ScoreRequest` with borrowed cells: the members of [`crate::api::ScoreRequest`], the
/// same types and rules (unknown members ignored), so that it accepts what that accepts.
/// [`request::parse`] builds the same struct.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default, borrow)]
    rows: Option<Rows<'a>>,
    #[serde(default)]
    no_field_names_in_output: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    request_prediction_intervals: Option<bool>,
    #[serde(default)]
    include_fields_in_output: Option<Vec<String>>,
    #[serde(default)]
    id_field: Option<String>,
    #[serde(default)]
    request_shapley_value_type: Option<String>,
}

type RawCell<'a> = Option<Cow<'a, str>>;

/// Every row's cells in one vector; `ends[r]`: where row `r` ends.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Rows<'a> {
    cells: Vec<RawCell<'a>>,
    ends: Vec<usize>,
}

impl<'a> Rows<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn row(&self, r: usize) -> &[RawCell<'a>] {
        let start = if r == 0 { 0 } else { self.ends[r - 1] };
        &self.cells[start..self.ends[r]]
    }

    fn lens(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        (0..self.len()).map(|r| self.row(r).len())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Rows<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RowsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for RowsVisitor<'a> {
            type Value = Rows<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of rows")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rows<'a>, A::Error> {
                let mut rows = Rows::default();
                while seq.next_element_seed(RowSeed(&mut rows.cells))?.is_some() {
                    rows.ends.push(rows.cells.len());
                }
                Ok(rows)
            }
        }
        d.deserialize_seq(RowsVisitor(std::marker::PhantomData))
    }
}

/// Appends one row's cells.
struct RowSeed<'r, 'a>(&'r mut Vec<RawCell<'a>>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for RowSeed<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for RowSeed<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(c) = seq.next_element::<CellOf<'a>>()? {
            self.0.push(c.0);
        }
        Ok(())
    }
}

/// A cell as [`crate::api::Cell`] reads it (strings, `null`, numbers and booleans as
/// their text), borrowed when the JSON text is the cell's text.
struct CellOf<'a>(RawCell<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for CellOf<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CellOf<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string cell")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Owned(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<CellOf<'a>, E> {
                Ok(CellOf(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<CellOf<'a>, E> {
                Ok(CellOf(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<CellOf<'a>, E> {
                Ok(CellOf(Some(Cow::Owned(v.to_string()))))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_requests_share_the_cpus() {
        let cases = [
            ("alone on 2 CPUs", 2, 1, 2),
            ("two at once on 2 CPUs", 2, 2, 1),
            ("32 at once on 2 CPUs", 2, 32, 1),
            ("alone on 8 CPUs", 8, 1, 8),
            ("three at once on 8 CPUs", 8, 3, 2),
            ("never zero", 1, 0, 1),
        ];
        for (name, cpus, in_flight, want) in cases {
            assert_eq!(threads_for(cpus, in_flight), want, "{name}");
        }
    }
    use crate::api::parse_request;
    use serde_json::{json, Value};

    fn model(parent: &std::path::Path) -> Arc<crate::model::LoadedModel> {
        crate::test_models::loaded(parent, "gbm_onehot_binomial")
    }

    /// The general path's answer: the body or the error.
    async fn general(m: &LoadedModel, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let prepared = m.rules.prepare(parse_request(body)?)?;
        let outputs = m.backend.score(Arc::clone(&prepared.frame)).await?;
        let resp = prepared.respond(outputs, m.backend.output_names(), &m.id);
        Ok(serde_json::to_vec(&resp).unwrap())
    }

    /// UUIDs (generated ids) blanked, to compare answers that generate them.
    fn blank_uuids(body: &[u8]) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(body).unwrap();
        for row in v["score"].as_array_mut().unwrap() {
            for c in row.as_array_mut().unwrap() {
                if uuid::Uuid::parse_str(c.as_str().unwrap()).is_ok() {
                    *c = json!("uuid");
                }
            }
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn rows(n: usize, bad_at: Option<usize>) -> Value {
        let pool = [
            json!(["-0.42", "3.405", "red", "izmir", "13"]),
            json!([0.346, 5.701, null, "genoa", 5]),
            json!(["", "1e3", "r\u{0065}d", "n\"ew\\ \u{1F600}", "7"]),
            json!(["1.5", "-2", "purple", "genoa", "3"]),
        ];
        Value::Array(
            (0..n)
                .map(|i| {
                    if Some(i) == bad_at {
                        json!(["x", "1", "red", "izmir", "1"])
                    } else {
                        pool[i % pool.len()].clone()
                    }
                })
                .collect(),
        )
    }

    /// Many large requests at once: each gets the answer it gets alone, and the slots and
    /// the count of large requests are all given back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_large_requests_wait_for_a_slot_and_are_answered() {
        let tmp = tempfile::tempdir().unwrap();
        let m = model(tmp.path());
        let fields = json!(["x1", "x2", "color", "city", "grade"]);
        let body = json!({"fields": fields, "rows": rows(9000, None)}).to_string();
        assert!(body.len() > PARALLEL_MIN_BODY);
        let body = Bytes::from(body);
        let want = general(&m, &body).await.unwrap();
        let answers: Vec<_> = (0..16)
            .map(|_| {
                let (m, body) = (Arc::clone(&m), body.clone());
                tokio::spawn(async move { score(&m, &body).await })
            })
            .collect();
        for (i, a) in answers.into_iter().enumerate() {
            let a = a.await.unwrap().unwrap().expect("taken");
            assert_eq!(a.body, want, "request {i}");
        }
        assert_eq!(large_slots().available_permits(), process_cpus());
        assert_eq!(LARGE_IN_FLIGHT.load(Ordering::Relaxed), 0);
    }

    /// The cheap path answers every request it takes exactly as the general path does,
    /// on one thread and on several, and leaves the rest to it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_as_the_general_path() {
        let tmp = tempfile::tempdir().unwrap();
        let m = model(tmp.path());
        let fields = json!(["x1", "x2", "color", "city", "grade"]);
        let cases: Vec<(&str, String, bool)> = vec![
            ("one row", json!({"fields": fields, "rows": rows(1, None)}).to_string(), true),
            ("1000 rows", json!({"fields": fields, "rows": rows(1000, None)}).to_string(), true),
            (
                "1000 rows of text cells (the hand-written parser's)",
                json!({"fields": fields, "rows": vec![json!(["-0.42", "3.405", "red", "izmir", "13"]); 1000]}).to_string(),
                true,
            ),
            (
                "escapes in the body text",
                r#"{"fields":["x1","x\u0032","color","city","grade"],"rows":[["1","2","\u0072ed","a\/b","3"]]}"#.into(),
                true,
            ),
            (
                "fields reordered, extra field, options",
                json!({"fields": ["grade", "extra", "city", "color", "x2", "x1"],
                       "rows": [["1", "e", "genoa", "red", "2", "3"], [null, null, null, null, null, null]],
                       "includeFieldsInOutput": ["x1", "extra"], "noFieldNamesInOutput": false,
                       "requestPredictionIntervals": true, "unknown": [1, {"a": 2}]})
                .to_string(),
                true,
            ),
            (
                "no field names, generated id",
                json!({"fields": fields, "rows": rows(600, None), "noFieldNamesInOutput": true,
                       "idField": "id", "includeFieldsInOutput": ["id", "city"]})
                .to_string(),
                true,
            ),
            ("bad cell in row 700 of 1000", json!({"fields": fields, "rows": rows(1000, Some(700))}).to_string(), true),
            ("bad cell in row 0", json!({"fields": fields, "rows": rows(3, Some(0))}).to_string(), true),
            ("short row", json!({"fields": fields, "rows": [["1", "2", "red", "izmir"]]}).to_string(), true),
            ("missing input", json!({"fields": ["x1"], "rows": [["1"]]}).to_string(), true),
            ("no rows", json!({"fields": fields, "rows": []}).to_string(), true),
            ("no fields", json!({"rows": [["1"]]}).to_string(), true),
            ("duplicate field", json!({"fields": ["x1", "x1", "x2", "color", "city", "grade"], "rows": [["1", "1", "2", "red", "a", "3"]]}).to_string(), true),
            ("unknown include", json!({"fields": fields, "rows": rows(1, None), "includeFieldsInOutput": ["nope"]}).to_string(), true),
            // Left to the general path.
            ("null body", "null".into(), false),
            ("empty body", "  ".into(), false),
            ("not JSON", "{\"fields\":".into(), false),
            ("container cell", json!({"fields": fields, "rows": [[[1], "2", "red", "a", "3"]]}).to_string(), false),
            ("row not a list", json!({"fields": fields, "rows": ["x"]}).to_string(), false),
            ("Shapley values", json!({"fields": fields, "rows": rows(1, None), "requestShapleyValueType": "ORIGINAL"}).to_string(), false),
        ];
        for (name, body, taken) in cases {
            let want = general(&m, body.as_bytes()).await;
            for threads in [1, 2, 3] {
                match answer(&m, body.as_bytes(), threads) {
                    Ok(None) => assert!(!taken, "{name}: not taken"),
                    Ok(Some(a)) => {
                        assert!(taken, "{name}: taken");
                        let want = want
                            .as_ref()
                            .unwrap_or_else(|e| panic!("{name}: general path refused: {e}"));
                        assert_eq!(
                            String::from_utf8(blank_uuids(&a.body)).unwrap(),
                            String::from_utf8(blank_uuids(want)).unwrap(),
                            "{name}, {threads} threads"
                        );
                        let v: Value = serde_json::from_slice(&a.body).unwrap();
                        assert_eq!(
                            v["score"].as_array().unwrap().len() as u64,
                            a.rows,
                            "{name}"
                        );
                    }
                    Err(e) => {
                        assert!(taken, "{name}: taken");
                        assert_eq!(Some(e), want.clone().err(), "{name}, {threads} threads");
                    }
                }
            }
        }
    }
}
