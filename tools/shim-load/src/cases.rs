//! The malformed requests of the abuse mode, by category, each with the answers the
//! scoring API allows for it.
//!
//! Every generator builds its request from the served model's own fields and a valid row,
//! then breaks exactly one thing, so the expected answer is known: a request the checks
//! must refuse is built so that it cannot pass by chance (an "invalid JSON" body is
//! checked not to parse, a "non-numeric" cell not to read as a number), and the few
//! requests that are valid on purpose (a wrong `Content-Type` on a good body, JSON numbers
//! as cells) say so in their expected statuses. Case `i` of a run depends only on the
//! seed and `i`.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::http;
use crate::model::Target;
use crate::rng::Rng;

/// What to do with the server for one case.
#[derive(Debug, Clone)]
pub enum Action {
    /// The bytes in one write, then one answer (`head`: no body follows, it was HEAD).
    Send { bytes: Vec<u8>, head: bool },
    /// Several requests in one write, then one answer for each, in order.
    Pipelined {
        bytes: Vec<u8>,
        answers: Vec<Vec<u16>>,
    },
    /// The bytes, then the write side is shut: the server sees the stream end early.
    HalfClose { bytes: Vec<u8> },
    /// A head, then `len` body bytes streamed in pieces while the answer is awaited.
    Stream {
        head: Vec<u8>,
        prefix: Vec<u8>,
        len: usize,
        chunked: bool,
    },
    /// The bytes dribbled `piece` at a time, `delay` apart. With `stall_at`, only that
    /// many bytes are sent, then the client waits `stall` (reading whatever the server
    /// says meanwhile) and closes.
    Slow {
        bytes: Vec<u8>,
        piece: usize,
        delay: Duration,
        stall_at: Option<usize>,
        stall: Duration,
    },
}

/// The answers allowed for a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub statuses: Vec<u16>,
    /// The server may close or reset the connection without answering (a stream the
    /// client broke on purpose, a stall the client ends itself).
    pub no_answer: bool,
}

impl Expect {
    fn only(statuses: &[u16]) -> Self {
        Expect {
            statuses: statuses.to_vec(),
            no_answer: false,
        }
    }

    fn or_none(statuses: &[u16]) -> Self {
        Expect {
            statuses: statuses.to_vec(),
            no_answer: true,
        }
    }
}

/// One malformed (or deliberately odd) request.
#[derive(Debug, Clone)]
pub struct Case {
    pub category: Category,
    /// The variant within the category.
    pub kind: &'static str,
    pub action: Action,
    pub expect: Expect,
}

/// The categories, drawn uniformly except `HugeBody` and `Slow`, which are a fixed
/// number of cases (they are expensive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    InvalidJson,
    RandomJson,
    UnknownFieldsOnly,
    WrongTypes,
    ContainerCells,
    ScalarCells,
    MissingParts,
    RowShape,
    NonNumeric,
    BadOptions,
    DeepNesting,
    ContentType,
    InvalidUtf8,
    LyingLength,
    Framing,
    MethodPath,
    Pipelined,
    Contribution,
    HugeBody,
    Slow,
}

impl Category {
    /// The categories drawn at random.
    pub const DRAWN: [Category; 18] = [
        Category::InvalidJson,
        Category::RandomJson,
        Category::UnknownFieldsOnly,
        Category::WrongTypes,
        Category::ContainerCells,
        Category::ScalarCells,
        Category::MissingParts,
        Category::RowShape,
        Category::NonNumeric,
        Category::BadOptions,
        Category::DeepNesting,
        Category::ContentType,
        Category::InvalidUtf8,
        Category::LyingLength,
        Category::Framing,
        Category::MethodPath,
        Category::Pipelined,
        Category::Contribution,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::InvalidJson => "invalid-json",
            Category::RandomJson => "random-json",
            Category::UnknownFieldsOnly => "unknown-fields-only",
            Category::WrongTypes => "wrong-types",
            Category::ContainerCells => "container-cells",
            Category::ScalarCells => "scalar-cells",
            Category::MissingParts => "missing-parts",
            Category::RowShape => "row-shape",
            Category::NonNumeric => "non-numeric",
            Category::BadOptions => "bad-options",
            Category::DeepNesting => "deep-nesting",
            Category::ContentType => "content-type",
            Category::InvalidUtf8 => "invalid-utf8",
            Category::LyingLength => "lying-length",
            Category::Framing => "framing",
            Category::MethodPath => "method-path",
            Category::Pipelined => "pipelined",
            Category::Contribution => "contribution",
            Category::HugeBody => "huge-body",
            Category::Slow => "slow",
        }
    }
}

/// What the generators need: the model's inputs and the server's body limit.
#[derive(Debug, Clone)]
pub struct Gen {
    pub target: Target,
    pub body_limit: usize,
    /// The longest of the server's header and body timeouts, when known: every stall
    /// then lasts 1–2 s longer and must be answered 408.
    pub server_timeout: Option<Duration>,
}

/// The members of `ScoreRequest` (a random key must not be one of them).
const KNOWN_KEYS: [&str; 7] = [
    "fields",
    "rows",
    "noFieldNamesInOutput",
    "requestPredictionIntervals",
    "includeFieldsInOutput",
    "idField",
    "requestShapleyValueType",
];

const GET_ROUTES: [&str; 6] = [
    "/model/id",
    "/model/schema",
    "/model/sample_request",
    "/model/capabilities",
    "/readyz",
    "/healthz",
];

/// Cells the H2O-3 scorer reads as missing in every column.
const MISSING: [&str; 4] = ["", "NA", "N/A", "-"];

fn score(body: &[u8]) -> Vec<u8> {
    http::post_json("/model/score", body)
}

fn send(bytes: Vec<u8>) -> Action {
    Action::Send { bytes, head: false }
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("values serialize")
}

/// `true` when `bytes` parse as JSON (an "invalid JSON" case must not).
fn parses(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok()
}

/// `true` when `s` could be read as a number (or missing) by a lenient scorer: Rust's
/// and Java's grammars after trimming, with Java's `d`/`f` suffix.
fn numberish(s: &str) -> bool {
    let t = s.trim_matches(|c: char| c <= ' ');
    if MISSING.contains(&t) || t.parse::<f64>().is_ok() {
        return true;
    }
    let stripped = t.trim_end_matches(['d', 'D', 'f', 'F']);
    stripped != t && stripped.parse::<f64>().is_ok()
}

/// A random word of `lo..=hi` letters.
fn word(rng: &mut Rng, lo: usize, hi: usize) -> String {
    const A: &[u8] = b"abcdeghjkmopqrstuvwxyzABCDEGHJKMOPQRSTUVWXYZ";
    let len = rng.range(lo, hi);
    (0..len).map(|_| *rng.pick(A) as char).collect()
}

impl Gen {
    fn fields(&self) -> &[String] {
        &self.target.fields
    }

    fn width(&self) -> usize {
        self.target.fields.len()
    }

    /// A valid cell for input `i`.
    fn valid_cell(&self, rng: &mut Rng, i: usize) -> String {
        if self.target.is_numeric(i) {
            match rng.below(6) {
                0 => String::new(),
                1 => "NA".into(),
                2 => rng.range(0, 1000).to_string(),
                _ => format!("{:.4}", rng.f64() * 20.0 - 10.0),
            }
        } else {
            match self.target.types[i].as_str() {
                "Bool" => rng.pick(&["true", "false"]).to_string(),
                "Time64" => "2018-01-01".into(),
                _ if rng.chance(0.5) => self.target.sample[i].clone(),
                _ => word(rng, 1, 8),
            }
        }
    }

    fn valid_row(&self, rng: &mut Rng) -> Vec<String> {
        (0..self.width()).map(|i| self.valid_cell(rng, i)).collect()
    }

    fn valid_rows(&self, rng: &mut Rng) -> Vec<Vec<String>> {
        let n = rng.range(1, 5);
        (0..n).map(|_| self.valid_row(rng)).collect()
    }

    /// A valid request as a JSON value.
    fn valid_value(&self, rng: &mut Rng) -> Value {
        json!({ "fields": self.fields(), "rows": self.valid_rows(rng) })
    }

    fn valid_body(&self, rng: &mut Rng) -> Vec<u8> {
        to_vec(&self.valid_value(rng))
    }

    /// A random JSON value, nested at most `depth` deep.
    fn random_value(&self, rng: &mut Rng, depth: usize) -> Value {
        let top = if depth == 0 { 6 } else { 8 };
        match rng.below(top) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(0.5)),
            2 => json!(rng.next_u64() as i64),
            3 => json!((rng.f64() - 0.5) * 10f64.powi(rng.range(0, 30) as i32)),
            4 => json!(word(rng, 0, 12)),
            5 => json!(rng.range(0, 100)),
            6 => Value::Array(
                (0..rng.range(0, 4))
                    .map(|_| self.random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.range(0, 4))
                    .map(|_| (word(rng, 1, 6), self.random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    fn random_container(&self, rng: &mut Rng) -> Value {
        if rng.chance(0.5) {
            Value::Array(
                (0..rng.range(0, 3))
                    .map(|_| self.random_value(rng, 2))
                    .collect(),
            )
        } else {
            let mut m = Map::new();
            m.insert(word(rng, 3, 3), self.random_value(rng, 2));
            Value::Object(m)
        }
    }

    /// A value of any type but the one wanted: `not` names it.
    fn wrong_value(&self, rng: &mut Rng, not: &str) -> Value {
        loop {
            let v = self.random_value(rng, 2);
            let same = match not {
                "array" => v.is_array(),
                "string" => v.is_string(),
                "bool" => v.is_boolean(),
                _ => false,
            };
            // `null` is "absent" for every optional member, which is valid.
            if !same && !v.is_null() {
                return v;
            }
        }
    }

    /// Case `index` of a run: the first `huge` are huge bodies, the next `slow` slow
    /// clients, the others drawn from [`Category::DRAWN`].
    pub fn case(&self, seed: u64, index: u64, huge: u64, slow: u64) -> Case {
        let mut rng = Rng::for_case(seed, index);
        let category = if index < huge {
            Category::HugeBody
        } else if index < huge + slow {
            Category::Slow
        } else {
            *rng.pick(&Category::DRAWN)
        };
        self.generate(category, &mut rng)
    }

    pub fn generate(&self, category: Category, rng: &mut Rng) -> Case {
        let (kind, action, expect) = match category {
            Category::InvalidJson => self.invalid_json(rng),
            Category::RandomJson => self.random_json(rng),
            Category::UnknownFieldsOnly => self.unknown_fields_only(rng),
            Category::WrongTypes => self.wrong_types(rng),
            Category::ContainerCells => self.container_cells(rng),
            Category::ScalarCells => self.scalar_cells(rng),
            Category::MissingParts => self.missing_parts(rng),
            Category::RowShape => self.row_shape(rng),
            Category::NonNumeric => self.non_numeric(rng),
            Category::BadOptions => self.bad_options(rng),
            Category::DeepNesting => self.deep_nesting(rng),
            Category::ContentType => self.content_type(rng),
            Category::InvalidUtf8 => self.invalid_utf8(rng),
            Category::LyingLength => self.lying_length(rng),
            Category::Framing => self.framing(rng),
            Category::MethodPath => self.method_path(rng),
            Category::Pipelined => self.pipelined(rng),
            Category::Contribution => self.contribution(rng),
            Category::HugeBody => self.huge_body(rng),
            Category::Slow => self.slow(rng),
        };
        Case {
            category,
            kind,
            action,
            expect,
        }
    }

    fn invalid_json(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let valid = self.valid_body(rng);
        let (kind, body) = match rng.below(5) {
            0 => ("truncated", valid[..rng.range(1, valid.len() - 1)].to_vec()),
            1 => {
                let mut b = valid;
                let tails: [&[u8]; 7] = [b"x", b"}", b",", b"{}", b"]", b"\"", b"\x00"];
                b.extend_from_slice(rng.one(&tails));
                ("trailing-garbage", b)
            }
            2 => {
                let mut b = valid.clone();
                for _ in 0..20 {
                    b = valid.clone();
                    let at = rng.below(b.len());
                    b[at] = *rng.pick(b"{}[]:,\"\\'x\x00\x01 ");
                    if !parses(&b) {
                        break;
                    }
                }
                if parses(&b) {
                    b.truncate(b.len() - 1);
                }
                ("byte-replaced", b)
            }
            3 => {
                let f = &self.fields()[0];
                let variants: [String; 10] = [
                    format!("{{'fields':['{f}'],'rows':[['1']]}}"),
                    format!("{{\"fields\":[\"{f}\",],\"rows\":[[\"1\"]]}}"),
                    format!("{{\"fields\":[\"{f}\"] /* c */,\"rows\":[[\"1\"]]}}"),
                    format!("{{\"fields\":[\"{f}\"],\"rows\":[[NaN]]}}"),
                    format!("{{fields:[\"{f}\"],rows:[[\"1\"]]}}"),
                    format!("{{\"fields\":[\"{f}\"],\"rows\":[[\"a\tb\nc\"]]}}"),
                    format!("{{\"fields\":[\"{f}\"],\"rows\":[[\"\\ud800\"]]}}"),
                    format!("{{\"fields\":[\"{f}\"],\"rows\":[[\"\\q\"]]}}"),
                    format!("{{\"fields\":[\"{f}\"],\"rows\":[[01]]}}"),
                    format!("{{\"fields\":[\"{f}\"],\"rows\":[[+1, 0x10]]}}"),
                ];
                ("syntax-variant", rng.pick(&variants).clone().into_bytes())
            }
            _ => {
                let mut b: Vec<u8> = (0..rng.range(1, 200))
                    .map(|_| rng.range(0x20, 0x7e) as u8)
                    .collect();
                if parses(&b) || b.iter().all(u8::is_ascii_whitespace) {
                    b.insert(0, b'{');
                }
                ("random-bytes", b)
            }
        };
        debug_assert!(!parses(&body), "{kind}: {}", String::from_utf8_lossy(&body));
        (kind, send(score(&body)), Expect::only(&[400]))
    }

    fn random_json(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let v = loop {
            let v = self.random_value(rng, 3);
            if !v.is_object() {
                break v;
            }
        };
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            _ => "array",
        };
        (kind, send(score(&to_vec(&v))), Expect::only(&[400]))
    }

    fn unknown_fields_only(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut m = Map::new();
        let kind = if rng.chance(0.5) {
            for _ in 0..rng.range(1, 6) {
                let k = word(rng, 1, 10);
                if !KNOWN_KEYS.contains(&k.as_str()) {
                    m.insert(k, self.random_value(rng, 2));
                }
            }
            if m.is_empty() {
                m.insert("x".into(), json!(1));
            }
            "random-keys"
        } else {
            // Near misses and other APIs' shapes (MLflow's dataframe_split, KServe's
            // instances): none is a ScoreRequest member.
            let rows = self.valid_rows(rng);
            let k = *rng.pick(&[
                "Fields",
                "field",
                "ROWS",
                "row",
                "columns",
                "data",
                "inputs",
                "instances",
            ]);
            m.insert(k.into(), json!(self.fields()));
            m.insert(
                rng.pick(&["Rows", "data", "values", "dataframe_split"])
                    .to_string(),
                json!(rows),
            );
            "near-miss-keys"
        };
        (
            kind,
            send(score(&to_vec(&Value::Object(m)))),
            Expect::only(&[400]),
        )
    }

    fn wrong_types(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut v = self.valid_value(rng);
        let kind = match rng.below(5) {
            0 => {
                v["fields"] = self.wrong_value(rng, "array");
                "fields-not-a-list"
            }
            1 => {
                let n = self.width();
                v["fields"] = Value::Array(
                    (0..n)
                        .map(|_| loop {
                            let x = self.random_value(rng, 1);
                            if !x.is_string() {
                                break x;
                            }
                        })
                        .collect(),
                );
                "fields-not-strings"
            }
            2 => {
                v["rows"] = self.wrong_value(rng, "array");
                "rows-not-a-list"
            }
            3 => {
                let rows = v["rows"].as_array_mut().expect("rows");
                let at = rng.below(rows.len());
                rows[at] = loop {
                    let x = self.random_value(rng, 2);
                    if !x.is_array() {
                        break x;
                    }
                };
                "row-not-a-list"
            }
            _ => {
                let (k, not) = *rng.pick(&[
                    ("noFieldNamesInOutput", "bool"),
                    ("requestPredictionIntervals", "bool"),
                    ("includeFieldsInOutput", "array"),
                    ("idField", "string"),
                    ("requestShapleyValueType", "string"),
                ]);
                v[k] = self.wrong_value(rng, not);
                "option-wrong-type"
            }
        };
        (kind, send(score(&to_vec(&v))), Expect::only(&[400]))
    }

    fn container_cells(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut v = self.valid_value(rng);
        let rows = v["rows"].as_array_mut().expect("rows");
        let r = rng.below(rows.len());
        let c = rng.below(self.width());
        let cell = self.random_container(rng);
        let kind = if cell.is_array() {
            "array-cell"
        } else {
            "object-cell"
        };
        rows[r][c] = cell;
        (kind, send(score(&to_vec(&v))), Expect::only(&[400]))
    }

    /// JSON numbers, booleans and null as cells: the API reads them as their text (null
    /// as missing), so only a boolean in a numeric column is refused.
    fn scalar_cells(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut v = self.valid_value(rng);
        let rows = v["rows"].as_array_mut().expect("rows");
        for _ in 0..rng.range(1, 4) {
            let r = rng.below(rows.len());
            let c = rng.below(self.width());
            rows[r][c] = match rng.below(4) {
                0 => json!(rng.next_u64() as i64 >> rng.range(0, 63)),
                1 => json!((rng.f64() - 0.5) * 10f64.powi(rng.range(0, 12) as i32)),
                2 => Value::Bool(rng.chance(0.5)),
                _ => Value::Null,
            };
        }
        // Judged on the final cells (a later draw may overwrite an earlier one).
        let cells = || {
            rows.iter()
                .flat_map(|r| r.as_array().expect("row").iter().enumerate())
        };
        let refused = cells().any(|(c, v)| v.is_boolean() && self.target.is_numeric(c));
        let kind = if refused {
            "bool-in-numeric-column"
        } else if cells().any(|(_, v)| v.is_boolean()) {
            "bool-in-text-column"
        } else if cells().any(|(_, v)| v.is_number()) {
            "number-cells"
        } else {
            "null-cells"
        };
        let expect = Expect::only(if refused { &[400] } else { &[200] });
        (kind, send(score(&to_vec(&v))), expect)
    }

    fn missing_parts(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let rows = self.valid_rows(rng);
        let fields = self.fields();
        let (kind, body): (&str, Vec<u8>) = match rng.below(10) {
            0 => ("empty-object", b"{}".to_vec()),
            1 => ("no-rows", to_vec(&json!({ "fields": fields }))),
            2 => ("no-fields", to_vec(&json!({ "rows": rows }))),
            3 => (
                "empty-fields",
                to_vec(&json!({ "fields": [], "rows": rows })),
            ),
            4 => (
                "empty-rows",
                to_vec(&json!({ "fields": fields, "rows": [] })),
            ),
            5 => (
                "null-members",
                to_vec(&json!({ "fields": null, "rows": null })),
            ),
            6 => ("null-body", b"null".to_vec()),
            7 => (
                "empty-body",
                rng.pick(&[&b""[..], b" ", b"\r\n\t "]).to_vec(),
            ),
            8 => (
                "empty-row",
                to_vec(&json!({ "fields": fields, "rows": [[]] })),
            ),
            _ => {
                let drop = rng.below(fields.len());
                let f: Vec<&String> = fields
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != drop)
                    .map(|(_, f)| f)
                    .collect();
                let r: Vec<Vec<&String>> = rows
                    .iter()
                    .map(|row| {
                        row.iter()
                            .enumerate()
                            .filter(|(i, _)| *i != drop)
                            .map(|(_, c)| c)
                            .collect()
                    })
                    .collect();
                (
                    "model-input-missing",
                    to_vec(&json!({ "fields": f, "rows": r })),
                )
            }
        };
        (kind, send(score(&body)), Expect::only(&[400]))
    }

    fn row_shape(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut rows = self.valid_rows(rng);
        let r = rng.below(rows.len());
        let kind = if rng.chance(0.5) && self.width() > 0 {
            let keep = rng.below(self.width());
            rows[r].truncate(keep);
            "row-too-short"
        } else {
            for _ in 0..rng.range(1, 5) {
                rows[r].push(word(rng, 3, 3));
            }
            "row-too-long"
        };
        let body = to_vec(&json!({ "fields": self.fields(), "rows": rows }));
        (kind, send(score(&body)), Expect::only(&[400]))
    }

    fn non_numeric_text(rng: &mut Rng) -> String {
        let fixed = [
            "abc",
            "1.2.3",
            "12abc",
            "0x1F",
            "1,5",
            "--3",
            "1e",
            "e5",
            "one",
            "١٢",
            "1 2",
            "true",
            "Infinityx",
            "+-1",
            ".",
            "..",
            "1..2",
            "€5",
            "5€",
            "1_000",
            "(1)",
        ];
        loop {
            let s = if rng.chance(0.5) {
                rng.pick(&fixed).to_string()
            } else {
                format!("{}{}", word(rng, 1, 6), rng.below(100))
            };
            if !numberish(&s) {
                return s;
            }
        }
    }

    fn non_numeric(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let numeric: Vec<usize> = (0..self.width())
            .filter(|&i| self.target.is_numeric(i))
            .collect();
        if numeric.is_empty() {
            return self.missing_parts(rng);
        }
        let mut rows = self.valid_rows(rng);
        let r = rng.below(rows.len());
        rows[r][*rng.pick(&numeric)] = Self::non_numeric_text(rng);
        let body = to_vec(&json!({ "fields": self.fields(), "rows": rows }));
        (
            "text-in-numeric-column",
            send(score(&body)),
            Expect::only(&[400]),
        )
    }

    fn bad_options(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut v = self.valid_value(rng);
        let kind = match rng.below(4) {
            0 => {
                let dup = rng.pick(self.fields()).clone();
                let mut f = self.fields().to_vec();
                f.push(dup);
                for row in v["rows"].as_array_mut().expect("rows") {
                    row.as_array_mut().expect("row").push(json!("1"));
                }
                v["fields"] = json!(f);
                "duplicate-field"
            }
            1 => {
                v["includeFieldsInOutput"] = json!([format!("zz_{}", word(rng, 5, 5))]);
                "include-unknown-field"
            }
            2 => {
                // A type the model does not compute (its own type is a valid request).
                let other: Vec<&str> = ["ORIGINAL", "TRANSFORMED"]
                    .into_iter()
                    .filter(|t| self.target.shapley.as_deref() != Some(*t))
                    .collect();
                v["requestShapleyValueType"] = json!(rng.pick(&other));
                "shapley-not-computed"
            }
            _ => {
                v["requestShapleyValueType"] = json!(word(rng, 1, 10));
                "shapley-unknown"
            }
        };
        (kind, send(score(&to_vec(&v))), Expect::only(&[400]))
    }

    fn deep_nesting(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let depth = rng.range(200, 100_000);
        let nest = |open: &str, inner: &str, close: &str| {
            let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
            for _ in 0..depth {
                s.push_str(open);
            }
            s.push_str(inner);
            for _ in 0..depth {
                s.push_str(close);
            }
            s
        };
        let f = serde_json::to_string(self.fields()).expect("strings");
        let (kind, body) = match rng.below(5) {
            0 => ("nested-arrays", nest("[", "", "]")),
            1 => ("nested-objects", nest("{\"a\":", "1", "}")),
            2 => (
                "nested-cell",
                format!(
                    "{{\"fields\":{f},\"rows\":[[{}]]}}",
                    nest("[", "\"1\"", "]")
                ),
            ),
            3 => (
                "nested-fields",
                format!(
                    "{{\"fields\":{},\"rows\":[[\"1\"]]}}",
                    nest("[", "\"x\"", "]")
                ),
            ),
            _ => ("unclosed", "[".repeat(depth)),
        };
        (kind, send(score(body.as_bytes())), Expect::only(&[400]))
    }

    fn content_type(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let ct = *rng.pick(&[
            Some("text/plain"),
            Some("application/xml"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencoded"),
            Some(""),
            None,
            Some("application/json; charset=latin1"),
            Some("application/json, text/plain"),
            Some("*/*"),
        ]);
        let valid = rng.chance(0.5);
        let body = if valid {
            self.valid_body(rng)
        } else {
            b"fields=x1&rows=1".to_vec()
        };
        let headers: Vec<(&str, &str)> = ct.map(|c| ("Content-Type", c)).into_iter().collect();
        let bytes = http::request("POST", "/model/score", &headers, &body);
        // The shim reads the body whatever the type says (415 would be allowed too).
        let (kind, expect) = if valid {
            ("valid-body", Expect::only(&[200, 415]))
        } else {
            ("form-body", Expect::only(&[400, 415]))
        };
        (kind, send(bytes), expect)
    }

    fn invalid_utf8(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let invalid: [&[u8]; 6] = [
            b"\xff\xfe",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xe2\x82",
            b"a\x80b",
            b"\xf8\x88\x80\x80\x80",
        ];
        let bad: &[u8] = rng.one(&invalid);
        match rng.below(4) {
            0 | 1 => {
                // Inside a JSON string: a cell or a field name.
                let mut rows = self.valid_rows(rng);
                let marker = "\u{1}MARK\u{1}";
                let in_field = rng.chance(0.3);
                let mut fields = self.fields().to_vec();
                if in_field {
                    fields[0] = marker.into();
                } else {
                    let r = rng.below(rows.len());
                    rows[r][rng.below(self.width())] = marker.into();
                }
                let text = serde_json::to_string(&json!({ "fields": fields, "rows": rows }))
                    .expect("json");
                let escaped = serde_json::to_string(marker).expect("json");
                let escaped = &escaped[1..escaped.len() - 1];
                let mut body = Vec::new();
                let (a, b) = text.split_once(escaped).expect("marker in body");
                body.extend_from_slice(a.as_bytes());
                body.extend_from_slice(bad);
                body.extend_from_slice(b.as_bytes());
                let kind = if in_field { "in-field-name" } else { "in-cell" };
                (kind, send(score(&body)), Expect::only(&[400]))
            }
            2 => {
                let mut b = b"GET /model/".to_vec();
                b.extend_from_slice(bad);
                b.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                ("in-path", send(b), Expect::or_none(&[400, 404]))
            }
            _ => {
                let body = self.valid_body(rng);
                let mut b = b"POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Note: ".to_vec();
                b.extend_from_slice(bad);
                b.extend_from_slice(
                    format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                b.extend_from_slice(&body);
                // obs-text is allowed in a header value; the request itself is valid.
                ("in-header-value", send(b), Expect::or_none(&[200, 400]))
            }
        }
    }

    fn lying_length(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let body = self.valid_body(rng);
        let head = |len: &str| {
            format!("POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
                .into_bytes()
        };
        match rng.below(6) {
            0 => {
                let mut b = head(&(body.len() + rng.range(1, 1000)).to_string());
                b.extend_from_slice(&body[..rng.range(0, body.len())]);
                (
                    "longer-than-sent-then-eof",
                    Action::HalfClose { bytes: b },
                    Expect::or_none(&[400]),
                )
            }
            1 => {
                let mut b = head(&rng.range(1, body.len() - 1).to_string());
                b.extend_from_slice(&body);
                // The first answer is the one for the cut body; the rest of the bytes
                // are then read as a (broken) next request, whose answer is not read.
                ("shorter-than-sent", send(b), Expect::only(&[400]))
            }
            2 => {
                let lengths = [
                    "abc",
                    "-1",
                    "1e3",
                    "0x10",
                    "+5",
                    "1 2",
                    "99999999999999999999999",
                ];
                let mut b = head(rng.one(&lengths));
                b.extend_from_slice(&body);
                ("not-a-number", send(b), Expect::or_none(&[400, 413]))
            }
            3 => {
                let mut b = format!(
                    "POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nContent-Length: {}\r\n\r\n",
                    body.len(),
                    body.len() + 1
                )
                .into_bytes();
                b.extend_from_slice(&body);
                ("two-lengths", send(b), Expect::or_none(&[400]))
            }
            4 => {
                // Both framings; either reading of it is broken JSON.
                let chunk = &body[..body.len() / 2];
                let mut b = format!(
                    "POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                    chunk.len(),
                    chunk.len()
                )
                .into_bytes();
                b.extend_from_slice(chunk);
                b.extend_from_slice(b"\r\n0\r\n\r\n");
                ("length-and-chunked", send(b), Expect::or_none(&[400]))
            }
            _ => {
                let mut b = b"POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                let chunkings: [&[u8]; 5] = [
                    b"zz\r\nabc\r\n0\r\n\r\n",
                    b"3\r\nabcdef\r\n0\r\n\r\n",
                    b"ffffffffffffffffffff\r\nab\r\n",
                    b"3\nabc\n0\n\n",
                    b"-1\r\n\r\n",
                ];
                b.extend_from_slice(rng.one(&chunkings));
                ("bad-chunked", send(b), Expect::or_none(&[400]))
            }
        }
    }

    fn framing(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let host = "Host: 127.0.0.1\r\n";
        match rng.below(9) {
            0 => {
                let mut b: Vec<u8> = (0..rng.range(1, 100))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                b.extend_from_slice(b"\r\n\r\n");
                // Garbage the parser cannot yet call wrong (only blank lines, or a
                // request line still open) is a request whose head never completes: 408
                // once the server's header timeout passes.
                (
                    "garbage-request",
                    send(b),
                    Expect::or_none(&[400, 404, 405, 408]),
                )
            }
            1 => (
                "http2-preface",
                send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
                Expect::or_none(&[400]),
            ),
            2 => {
                // Over hyper's 400 KiB read buffer (smaller values are accepted).
                let n = rng.range(512 * 1024, 2048 * 1024);
                let b = format!(
                    "GET /healthz HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n",
                    "a".repeat(n)
                );
                ("huge-header", send(b.into_bytes()), Expect::or_none(&[431]))
            }
            3 => {
                let mut b = format!("GET /healthz HTTP/1.1\r\n{host}");
                for i in 0..rng.range(101, 2000) {
                    b.push_str(&format!("X-H{i}: v\r\n"));
                }
                b.push_str("\r\n");
                (
                    "many-headers",
                    send(b.into_bytes()),
                    Expect::or_none(&[431]),
                )
            }
            4 => {
                let b = format!(
                    "GET /{} HTTP/1.1\r\n{host}\r\n",
                    "a".repeat(rng.range(70_000, 200_000))
                );
                ("long-uri", send(b.into_bytes()), Expect::or_none(&[414]))
            }
            5 => (
                "bare-lf",
                send(b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n".to_vec()),
                Expect::or_none(&[200, 400]),
            ),
            6 => (
                "http09-request",
                send(b"GET /healthz\r\n\r\n".to_vec()),
                Expect::or_none(&[400]),
            ),
            7 => (
                "unknown-version",
                send(
                    format!(
                        "GET /healthz HTTP/{}\r\n{host}\r\n",
                        rng.pick(&["3.0", "1.2", "0.9", "9"])
                    )
                    .into_bytes(),
                ),
                Expect::or_none(&[400]),
            ),
            _ => (
                "absolute-form",
                send(format!("GET http://127.0.0.1/healthz HTTP/1.1\r\n{host}\r\n").into_bytes()),
                Expect::only(&[200, 400]),
            ),
        }
    }

    /// The status the router gives `method path` with an empty body; `contributions`:
    /// the model has Shapley values (a `CONTRIBUTION_*` capability).
    pub fn route_status(method: &str, path: &str, contributions: bool) -> Vec<u16> {
        let route = path.split('?').next().unwrap_or("");
        let get = GET_ROUTES.contains(&route);
        let post = matches!(
            route,
            "/model/score" | "/model/contribution" | "/model/media-score"
        );
        match (method, route) {
            ("GET" | "HEAD", _) if get => vec![200],
            ("POST", "/model/score") => vec![400],
            ("POST", "/model/contribution") if contributions => vec![400],
            // No Shapley values, no media scoring: the API's own 501 for these.
            ("POST", "/model/contribution" | "/model/media-score") => vec![501],
            _ if get || post => vec![405],
            _ => vec![404],
        }
    }

    fn method_path(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let method = *rng.pick(&[
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
            "PROPFIND", "FOO", "post",
        ]);
        let random = format!("/{}", word(rng, 1, 12));
        let random_model = format!("/model/{}", word(rng, 1, 12));
        let path = *rng.pick(&[
            "/model/score",
            "/model/id",
            "/model/schema",
            "/model/sample_request",
            "/model/capabilities",
            "/model/contribution",
            "/model/media-score",
            "/readyz",
            "/healthz",
            "/",
            "/model",
            "/model/",
            "/model/score/",
            "//model/score",
            "/model/../model/score",
            "/model/score?x=1&y",
            "/model/%73core",
            "/MODEL/SCORE",
            "/model/contributions",
            "/v1/models",
            "/model/id?",
            random.as_str(),
            random_model.as_str(),
        ]);
        let bytes = http::request(method, path, &[], b"");
        let status = Self::route_status(method, path, self.target.contributions);
        let kind = if status == [404] {
            "unknown-path"
        } else if status.contains(&405) {
            "wrong-method"
        } else {
            "known-route"
        };
        (
            kind,
            Action::Send {
                bytes,
                head: method == "HEAD",
            },
            Expect::only(&status),
        )
    }

    /// A body the score checks refuse, sent to `/model/contribution`, which runs the same
    /// checks: 400, or 501 first for a model without Shapley values.
    fn contribution(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let origin = *rng.pick(&[
            Category::InvalidJson,
            Category::RandomJson,
            Category::WrongTypes,
            Category::ContainerCells,
            Category::MissingParts,
            Category::RowShape,
            Category::NonNumeric,
            Category::DeepNesting,
        ]);
        let case = self.generate(origin, rng);
        let Action::Send { bytes, head } = case.action else {
            unreachable!("{} cases are single requests", origin.name())
        };
        let line = b"POST /model/score ";
        assert!(
            bytes.starts_with(line),
            "{} posts to /model/score",
            origin.name()
        );
        let mut b = b"POST /model/contribution ".to_vec();
        b.extend_from_slice(&bytes[line.len()..]);
        let expect = Expect::only(if self.target.contributions {
            &[400]
        } else {
            &[501]
        });
        (origin.name(), Action::Send { bytes: b, head }, expect)
    }

    fn pipelined(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let mut bytes = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..rng.range(2, 6) {
            match rng.below(3) {
                0 => {
                    bytes.extend(score(&self.valid_body(rng)));
                    answers.push(vec![200]);
                }
                1 => {
                    let v = self.valid_body(rng);
                    bytes.extend(score(&v[..v.len() - 1]));
                    answers.push(vec![400]);
                }
                _ => {
                    bytes.extend(http::request("GET", "/healthz", &[], b""));
                    answers.push(vec![200]);
                }
            }
        }
        (
            "mixed",
            Action::Pipelined { bytes, answers },
            Expect::only(&[200, 400]),
        )
    }

    /// Bodies over the server's limit (413), streamed while the answer is awaited; and
    /// large broken bodies under it (400).
    fn huge_body(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let limit = self.body_limit;
        let hi = if limit < 50 << 20 {
            50 << 20
        } else {
            limit + (16 << 20)
        };
        let len = rng.range(limit + 1, hi.max(limit + 1));
        let f = serde_json::to_string(self.fields()).expect("strings");
        let prefix = format!("{{\"fields\":{f},\"rows\":[[\"").into_bytes();
        let head = |extra: &str| {
            format!("POST /model/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\r\n").into_bytes()
        };
        match rng.below(4) {
            0 => (
                "over-limit-with-length",
                Action::Stream {
                    head: head(&format!("Content-Length: {len}\r\n")),
                    prefix,
                    len,
                    chunked: false,
                },
                Expect::or_none(&[413]),
            ),
            1 => (
                "over-limit-chunked",
                Action::Stream {
                    head: head("Transfer-Encoding: chunked\r\n"),
                    prefix,
                    len,
                    chunked: true,
                },
                Expect::or_none(&[413]),
            ),
            2 => (
                "over-limit-expect-continue",
                Action::Stream {
                    head: head(&format!(
                        "Content-Length: {len}\r\nExpect: 100-continue\r\n"
                    )),
                    prefix,
                    len,
                    chunked: false,
                },
                Expect::or_none(&[413]),
            ),
            _ => {
                // Under the limit but never closed: a large body that is not JSON.
                let len = rng.range(limit.min(1 << 20) / 2, limit.min(4 << 20) - 1);
                (
                    "large-unterminated-under-limit",
                    Action::Stream {
                        head: head(&format!("Content-Length: {len}\r\n")),
                        prefix,
                        len,
                        chunked: false,
                    },
                    Expect::only(&[400]),
                )
            }
        }
    }

    fn slow(&self, rng: &mut Rng) -> (&'static str, Action, Expect) {
        let valid = self.valid_body(rng);
        let piece = rng.range(1, 3);
        let delay = Duration::from_millis(rng.range(1, 3) as u64);
        let (stall, stalled) = match self.server_timeout {
            Some(t) => (
                t + Duration::from_millis(rng.range(1000, 2000) as u64),
                Expect::only(&[408]),
            ),
            None => (
                Duration::from_millis(rng.range(800, 2000) as u64),
                Expect::or_none(&[400, 408]),
            ),
        };
        match rng.below(5) {
            0 => (
                "dribbled-valid",
                Action::Slow {
                    bytes: score(&valid),
                    piece,
                    delay,
                    stall_at: None,
                    stall,
                },
                Expect::only(&[200]),
            ),
            1 => (
                "dribbled-invalid",
                Action::Slow {
                    bytes: score(&valid[..valid.len() - 1]),
                    piece,
                    delay,
                    stall_at: None,
                    stall,
                },
                Expect::only(&[400]),
            ),
            2 => {
                let bytes = score(&valid);
                let head_len = bytes
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(10);
                let at = rng.range(1, head_len);
                (
                    "stall-in-headers",
                    Action::Slow {
                        bytes,
                        piece,
                        delay,
                        stall_at: Some(at),
                        stall,
                    },
                    stalled.clone(),
                )
            }
            3 => {
                let bytes = score(&valid);
                let head_len = bytes
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(10)
                    + 4;
                let at = rng.range(head_len, bytes.len() - 1);
                (
                    "stall-in-body",
                    Action::Slow {
                        bytes,
                        piece,
                        delay,
                        stall_at: Some(at),
                        stall,
                    },
                    stalled.clone(),
                )
            }
            _ => (
                "idle-connection",
                Action::Slow {
                    bytes: Vec::new(),
                    piece,
                    delay,
                    stall_at: Some(0),
                    stall,
                },
                stalled,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn gen() -> Gen {
        Gen {
            target: Target {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
                fields: vec!["x1".into(), "x2".into(), "color".into()],
                types: vec!["Float64".into(), "Int32".into(), "Str".into()],
                sample: vec!["0".into(), "0".into(), "text".into()],
                contributions: true,
                shapley: Some("ORIGINAL".into()),
            },
            body_limit: 1 << 20,
            server_timeout: None,
        }
    }

    fn body_of(a: &Action) -> &[u8] {
        match a {
            Action::Send { bytes, .. } => {
                let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                &bytes[at + 4..]
            }
            _ => panic!("not a Send: {a:?}"),
        }
    }

    #[test]
    fn cases_are_reproducible_from_seed_and_index() {
        let g = gen();
        for i in 0..200 {
            let a = format!("{:?}", g.case(42, i, 2, 2));
            assert_eq!(a, format!("{:?}", g.case(42, i, 2, 2)), "case {i}");
        }
        assert_eq!(g.case(1, 0, 1, 1).category, Category::HugeBody);
        assert_eq!(g.case(1, 1, 1, 1).category, Category::Slow);
    }

    /// With the server's timeout known, every stall outlasts it by 1–2 s and must be
    /// answered 408; the dribbled requests keep their statuses.
    #[test]
    fn stalls_outlast_a_known_server_timeout() {
        let mut g = gen();
        g.server_timeout = Some(Duration::from_secs(3));
        let mut stalls = 0;
        for i in 0..200 {
            let c = g.case(5, i, 0, 200);
            assert_eq!(c.category, Category::Slow, "case {i}");
            let Action::Slow {
                stall_at, stall, ..
            } = &c.action
            else {
                panic!("case {i}: {:?}", c.action)
            };
            if stall_at.is_some() {
                stalls += 1;
                assert!(
                    *stall >= Duration::from_secs(4) && *stall < Duration::from_secs(5),
                    "case {i}: {stall:?}"
                );
                assert_eq!(c.expect, Expect::only(&[408]), "case {i}");
            } else {
                assert!(!c.expect.no_answer, "case {i}");
            }
        }
        assert!(stalls > 50, "{stalls} stalls in 200 cases");
    }

    /// The bodies that must be refused cannot pass by chance: many draws per category.
    #[test]
    fn refused_bodies_are_really_broken() {
        let g = gen();
        let cats = [
            ("invalid json does not parse", Category::InvalidJson),
            ("random json is not an object", Category::RandomJson),
            ("unknown keys only", Category::UnknownFieldsOnly),
            ("wrong types", Category::WrongTypes),
            ("non-numeric", Category::NonNumeric),
        ];
        for (name, cat) in cats {
            for i in 0..500 {
                let c = g.generate(cat, &mut Rng::for_case(9, i));
                assert_eq!(c.expect, Expect::only(&[400]), "{name}");
                let body = body_of(&c.action);
                let v = serde_json::from_slice::<Value>(body);
                match cat {
                    Category::InvalidJson => {
                        assert!(v.is_err(), "{name}: {}", String::from_utf8_lossy(body))
                    }
                    Category::RandomJson => assert!(!v.unwrap().is_object(), "{name}"),
                    Category::UnknownFieldsOnly => {
                        let v = v.unwrap();
                        for k in KNOWN_KEYS {
                            assert!(v.get(k).is_none(), "{name}: {k} in {v}");
                        }
                    }
                    Category::NonNumeric => {
                        let v = v.unwrap();
                        let bad = v["rows"].as_array().unwrap().iter().flat_map(|r| {
                            r.as_array().unwrap()[..2]
                                .iter()
                                .map(|c| c.as_str().unwrap().to_string())
                                .collect::<Vec<_>>()
                        });
                        assert!(bad.into_iter().any(|c| !numberish(&c)), "{name}: {v}");
                    }
                    _ => assert!(v.is_ok(), "{name}: still JSON"),
                }
            }
        }
    }

    #[test]
    fn numberish_follows_the_scorers_grammar() {
        let cases = [
            ("int", "12", true),
            ("float", " -1.5e3 ", true),
            ("java suffix", "1.5d", true),
            ("missing NA", "NA", true),
            ("nan", "NaN", true),
            ("inf", "inf", true),
            ("word", "abc", false),
            ("two dots", "1.2.3", false),
            ("hex", "0x10", false),
            ("only suffix", "d", false),
        ];
        for (name, s, want) in cases {
            assert_eq!(numberish(s), want, "{name}");
        }
    }

    #[test]
    fn routes_get_their_status() {
        let cases: [(&str, &str, &str, bool, &[u16]); 10] = [
            ("get schema", "GET", "/model/schema", false, &[200]),
            ("head healthz", "HEAD", "/healthz", false, &[200]),
            ("empty score", "POST", "/model/score", false, &[400]),
            (
                "contribution, no Shapley",
                "POST",
                "/model/contribution",
                false,
                &[501],
            ),
            (
                "contribution, Shapley",
                "POST",
                "/model/contribution",
                true,
                &[400],
            ),
            ("media", "POST", "/model/media-score", true, &[501]),
            ("put score", "PUT", "/model/score", false, &[405]),
            ("post readyz", "POST", "/readyz", false, &[405]),
            ("query kept out", "GET", "/model/id?x", false, &[200]),
            ("unknown", "GET", "/nope", false, &[404]),
        ];
        for (name, m, p, shap, want) in cases {
            assert_eq!(Gen::route_status(m, p, shap), want, "{name}");
        }
    }

    #[test]
    fn scalar_cells_are_refused_only_for_a_bool_in_a_numeric_column() {
        let g = gen();
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..300 {
            let c = g.generate(Category::ScalarCells, &mut Rng::for_case(3, i));
            let v: Value = serde_json::from_slice(body_of(&c.action)).unwrap();
            // Columns 0 and 1 of the test model are numeric.
            let bool_in_numeric = v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r[0].is_boolean() || r[1].is_boolean());
            let want: &[u16] = if bool_in_numeric { &[400] } else { &[200] };
            assert_eq!(c.expect.statuses, want, "{}: {v}", c.kind);
            kinds.insert(c.kind);
        }
        assert_eq!(kinds.len(), 4, "every variant drawn: {kinds:?}");
    }

    #[test]
    fn huge_bodies_are_over_the_limit() {
        let g = gen();
        for i in 0..100 {
            let c = g.generate(Category::HugeBody, &mut Rng::for_case(5, i));
            if let Action::Stream { len, .. } = c.action {
                if c.expect.statuses == [413] {
                    assert!(len > g.body_limit, "{}", c.kind);
                    assert!(len <= 50 << 20, "{}", c.kind);
                } else {
                    assert!(len < g.body_limit, "{}", c.kind);
                }
            } else {
                panic!("{}: not streamed", c.kind);
            }
        }
    }
}
