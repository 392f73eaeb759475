//! The H2O MLOps scoring API's wire shapes and request rules (FORMATS.md §2.5–§2.9), kept
//! apart from HTTP so that the REST server and the batch command check and answer alike.
//!
//! A request is checked in the reference scorer's order (`RequestChecker`): not empty,
//! `fields` not empty, `rows` not empty, `fields` holding every model input (extra fields
//! are allowed and ignored), every row as long as `fields`; then the shim's own checks
//! (no duplicate field, `includeFieldsInOutput` naming known fields, the Shapley rule of
//! the [`Endpoint`]). `/model/contribution` runs the same checks with its own message
//! prefix. A passing request becomes a [`Layout`] (what the header decides) and a
//! [`Frame`], which backends read by model input index. The batch command checks its CSV
//! header into a [`Layout`] with the same code and then checks and answers row by row.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use artifact_core::{Column, Manifest};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// An error answered over HTTP as `{"detail": "<message>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    /// A request the checks refuse: 400, `Invalid scoring request due to: ...`.
    pub fn invalid(msg: impl fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid scoring request due to: {msg}"),
        )
    }

    /// A failure while scoring a valid request: `Failed scoring request due to: ...`.
    pub fn failed(status: StatusCode, msg: impl fmt::Display) -> Self {
        ApiError::new(status, format!("Failed scoring request due to: {msg}"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The message of an error response, kept as a response extension so that a protocol
/// with another error shape (`protocol::v2`: `{"error": ...}`) can answer it its way.
#[derive(Debug, Clone)]
pub struct ErrorDetail(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            detail: &'a str,
        }
        let mut r = json_response(
            self.status,
            &Body {
                detail: &self.detail,
            },
        );
        r.extensions_mut().insert(ErrorDetail(self.detail));
        r
    }
}

/// Serializes `value` as a JSON response with `status`.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("API values serialize");
    json_bytes(status, body.into())
}

/// A response from JSON that is already serialized.
pub fn json_bytes(status: StatusCode, body: axum::body::Bytes) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// One cell of a request row. The API sends strings; `null` (and, on reading, the empty
/// string) means missing. Numbers and booleans are accepted as their JSON text, as the
/// reference scorer's JSON reader coerces them to strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cell(pub Option<String>);

impl Cell {
    /// The cell as a backend sees it: `None` when missing or empty.
    pub fn value(&self) -> Option<&str> {
        cell_value(self.0.as_deref())
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cell, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string cell")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Cell, E> {
                Ok(Cell(Some(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell, E> {
                Ok(Cell(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
                Ok(Cell(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell(Some(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// `ScoreRequest`. Every member is optional on the wire so that a missing `fields` or
/// `rows` gets the reference scorer's message rather than a parser error. Unknown members
/// are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreRequest {
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    #[serde(default)]
    pub rows: Option<Vec<Vec<Cell>>>,
    #[serde(default)]
    pub no_field_names_in_output: Option<bool>,
    /// Accepted and ignored: no backend of this build computes intervals, and the API lets
    /// `predictionIntervals` stay empty then.
    #[serde(default)]
    pub request_prediction_intervals: Option<bool>,
    #[serde(default)]
    pub include_fields_in_output: Option<Vec<String>>,
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default)]
    pub request_shapley_value_type: Option<String>,
}

/// `ScoreResponse`. `featureShapleyContributions` is there only when the request asked
/// for a Shapley type the model computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreResponse {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fields: Option<Vec<String>>,
    pub score: Vec<Vec<String>>,
    #[serde(
        rename = "featureShapleyContributions",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub feature_shapley_contributions: Option<ContributionsResponse>,
}

/// `ScoreRequest` as `GET /model/sample_request` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRequest {
    pub fields: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// `DataField` of `GET /model/schema`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataField {
    pub name: String,
    pub data_type: &'static str,
}

/// `ModelSchema` of `GET /model/schema`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSchema {
    pub input_fields: Vec<DataField>,
    pub output_fields: Vec<DataField>,
}

/// `Model`, the body of `GET /model/schema`: like the reference scorer, only `id` and
/// `schema`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub schema: ModelSchema,
}

impl ModelInfo {
    pub fn new(id: &str, manifest: &Manifest) -> Self {
        let fields = |cols: &[Column]| {
            cols.iter()
                .map(|c| DataField {
                    name: c.name.clone(),
                    data_type: c.ty.api_name(),
                })
                .collect()
        };
        ModelInfo {
            id: id.to_string(),
            schema: ModelSchema {
                input_fields: fields(&manifest.input_schema),
                output_fields: fields(&manifest.output_schema),
            },
        }
    }
}

/// The reference scorer's placeholder for a column type (`SampleRequestBuilder`).
pub fn placeholder(api_type: &str) -> &'static str {
    match api_type {
        "Bool" => "true",
        "Int32" | "Int64" | "Float32" | "Float64" => "0",
        "Str" => "text",
        "Time64" => "2018-01-01",
        _ => "",
    }
}

impl SampleRequest {
    /// All input columns in order and one row of placeholders by type.
    pub fn new(inputs: &[Column]) -> Self {
        SampleRequest {
            fields: inputs.iter().map(|c| c.name.clone()).collect(),
            rows: vec![inputs
                .iter()
                .map(|c| placeholder(c.ty.api_name()).to_string())
                .collect()],
        }
    }
}

/// Java's `List.toString`: `[a, b, c]`, as the reference messages print lists.
pub fn java_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut s = String::from("[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(it.as_ref());
    }
    s.push(']');
    s
}

/// Which endpoint a request is for: it decides the prefix of the messages and the rule
/// for `requestShapleyValueType` (FORMATS.md §2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /model/score` (and the batch command): Shapley values absent or `NONE`, or
    /// the type the model computes ([`RequestRules::with_shapley`]), which the response
    /// then carries as `featureShapleyContributions`.
    Score,
    /// `POST /model/contribution`: the type must be `ORIGINAL` or `TRANSFORMED` and the
    /// one the model computes (`enabled`); `None` when the model computes none (the
    /// handler answers 501 before the request is checked).
    Contribution { enabled: Option<ShapleyType> },
}

/// The Shapley value types a model may compute (`ShapleyType` without `NONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapleyType {
    /// Over the input columns: `CONTRIBUTION_ORIGINAL`.
    Original,
    /// Over the model's transformed features (one-hot slots): `CONTRIBUTION_TRANSFORMED`.
    Transformed,
}

impl ShapleyType {
    /// The `ShapleyType` name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShapleyType::Original => "ORIGINAL",
            ShapleyType::Transformed => "TRANSFORMED",
        }
    }

    /// The `CapabilityType` name.
    pub fn capability(self) -> &'static str {
        match self {
            ShapleyType::Original => "CONTRIBUTION_ORIGINAL",
            ShapleyType::Transformed => "CONTRIBUTION_TRANSFORMED",
        }
    }
}

impl Endpoint {
    /// A request the checks refuse: 400 with the endpoint's prefix.
    pub fn invalid(self, msg: impl fmt::Display) -> ApiError {
        match self {
            Endpoint::Score => ApiError::invalid(msg),
            Endpoint::Contribution { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid shapley contribution request due to: {msg}"),
            ),
        }
    }

    /// A failure while answering a valid request, with the endpoint's prefix.
    pub fn failed(self, status: StatusCode, msg: impl fmt::Display) -> ApiError {
        match self {
            Endpoint::Score => ApiError::failed(status, msg),
            Endpoint::Contribution { .. } => ApiError::new(
                status,
                format!("Failed shapley contribution request due to: {msg}"),
            ),
        }
    }

    /// The `requestShapleyValueType` rule (the reference `MojoScorer`'s messages):
    /// `Ok(Some(t))` when the request asks for the type `t` the model computes, `Ok(None)`
    /// when it asks for none (`/model/score` only). `model` is the type the model
    /// computes, which `/model/score` checks against (`/model/contribution` carries its
    /// own in the endpoint).
    fn check_shapley(
        self,
        requested: Option<&str>,
        model: Option<ShapleyType>,
    ) -> Result<Option<ShapleyType>, ApiError> {
        const ONLY: &str =
            "Only ORIGINAL or TRANSFORMED are accepted enums values of Shapley values";
        let enabled = match self {
            Endpoint::Score => match requested {
                None | Some("NONE") => return Ok(None),
                _ => model,
            },
            Endpoint::Contribution { enabled } => enabled,
        };
        match requested {
            Some(t @ ("ORIGINAL" | "TRANSFORMED")) => match enabled {
                Some(e) if e.as_str() == t => Ok(Some(e)),
                _ => Err(self.invalid(format!(
                    "Requested Shapley type {t} not enabled for this scorer. Expected: {}",
                    enabled.map_or("NONE", ShapleyType::as_str)
                ))),
            },
            _ => Err(self.invalid(ONLY)),
        }
    }
}

/// A cell as a backend sees it: `None` when missing (`null`) or empty. The one rule for
/// requests and batch CSV cells.
pub fn cell_value(raw: Option<&str>) -> Option<&str> {
    match raw {
        Some("") | None => None,
        Some(s) => Some(s),
    }
}

/// Rows of a checked request, addressed by model input index.
#[derive(Debug, Clone)]
pub struct Frame {
    rows: Vec<Vec<Cell>>,
    /// `positions[i]`: where model input `i` is in the request's `fields`.
    positions: Arc<[usize]>,
    /// The request row number of `rows[0]` (a batch scored in chunks starts past 0), for
    /// messages.
    first_row: usize,
}

impl Frame {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of model inputs.
    pub fn width(&self) -> usize {
        self.positions.len()
    }

    /// Cell of model input `input` in row `row`; `None` when missing or empty.
    pub fn cell(&self, row: usize, input: usize) -> Option<&str> {
        self.rows[row][self.positions[input]].value()
    }

    /// The raw text at position `p` of the request's `fields` in row `row` (`""` when
    /// `null`), as the response copies it.
    pub fn request_cell(&self, row: usize, p: usize) -> &str {
        self.rows[row][p].0.as_deref().unwrap_or("")
    }

    /// The zero-indexed request row number of `row`, as messages name it.
    pub fn row_number(&self, row: usize) -> usize {
        self.first_row + row
    }
}

/// The checks of a model's requests, built once at start-up from the input schema.
#[derive(Debug, Clone)]
pub struct RequestRules {
    inputs: Vec<String>,
    /// No input name twice: a request whose `fields` are the inputs in order has the
    /// identity layout and no duplicate (the common request, checked without hashing).
    inputs_distinct: bool,
    expected: String,
    /// The Shapley type the model computes, which `/model/score` may ask for.
    shapley: Option<ShapleyType>,
}

/// What a request's header decides, checked: where each model input is among `fields`,
/// and what every response row copies around the backend's outputs. The batch command
/// checks its CSV header into one and then streams rows through it.
#[derive(Debug, Clone)]
pub struct Layout {
    fields: Vec<String>,
    /// `positions[i]`: where model input `i` is in `fields`.
    positions: Arc<[usize]>,
    /// Positions in `fields` of the copied fields, in input order.
    include: Vec<usize>,
    /// The id field's name, when a UUID is generated per row.
    generated_id: Option<String>,
    no_field_names: bool,
    /// The Shapley values the request asks for (a type the model computes).
    shapley: Option<ShapleyType>,
}

/// The members of a request other than `fields` and `rows`.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    pub include_fields_in_output: Option<Vec<String>>,
    pub id_field: Option<String>,
    pub no_field_names_in_output: Option<bool>,
    pub request_shapley_value_type: Option<String>,
}

/// A request that passed every check: the frame for the backend and what the response
/// copies around its scores.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub frame: Arc<Frame>,
    pub layout: Layout,
}

/// The first check of `fields` and of the model inputs' positions among them.
struct Columns {
    positions: Vec<usize>,
    /// The first field named twice.
    duplicate: Option<String>,
}

impl RequestRules {
    pub fn new(inputs: &[Column]) -> Self {
        let inputs: Vec<String> = inputs.iter().map(|c| c.name.clone()).collect();
        let expected = java_list(&inputs);
        let inputs_distinct = {
            let mut seen = std::collections::HashSet::with_capacity(inputs.len());
            inputs.iter().all(|i| seen.insert(i.as_str()))
        };
        RequestRules {
            inputs,
            inputs_distinct,
            expected,
            shapley: None,
        }
    }

    /// The rules of a model that computes Shapley values of type `kind` (`None`: none), so
    /// that `/model/score` accepts `requestShapleyValueType: kind`.
    pub fn with_shapley(mut self, kind: Option<ShapleyType>) -> Self {
        self.shapley = kind;
        self
    }

    /// `fields` must hold every model input.
    fn columns(&self, fields: &[String], ep: Endpoint) -> Result<Columns, ApiError> {
        if self.inputs_distinct && fields == self.inputs.as_slice() {
            return Ok(Columns {
                positions: (0..fields.len()).collect(),
                duplicate: None,
            });
        }
        let index = field_index(fields);
        let mut duplicate = None;
        let mut seen = std::collections::HashSet::with_capacity(fields.len());
        for f in fields {
            if !seen.insert(f.as_str()) && duplicate.is_none() {
                duplicate = Some(f.clone());
            }
        }
        let mut positions = Vec::with_capacity(self.inputs.len());
        for name in &self.inputs {
            match index.get(name.as_str()) {
                Some(&p) => positions.push(p),
                None => {
                    return Err(ep.invalid(format!(
                        "Input fields don't contain all the Mojo fields, expected {} actual {}",
                        self.expected,
                        java_list(fields)
                    )))
                }
            }
        }
        Ok(Columns {
            positions,
            duplicate,
        })
    }

    /// The checks that follow the row lengths: no duplicate field,
    /// `includeFieldsInOutput` naming known fields, the Shapley rule.
    fn layout(
        &self,
        fields: Vec<String>,
        cols: Columns,
        opts: RequestOptions,
        ep: Endpoint,
    ) -> Result<Layout, ApiError> {
        if let Some(d) = cols.duplicate {
            return Err(ep.invalid(format!(
                "field {d:?} appears more than once in the input fields"
            )));
        }
        // Built only when fields are copied: most requests copy none.
        let index = match &opts.include_fields_in_output {
            Some(names) if !names.is_empty() => field_index(&fields),
            _ => HashMap::new(),
        };
        let id_field = opts.id_field.filter(|s| !s.is_empty());
        let mut include = Vec::new();
        let mut generated_id = None;
        for name in opts.include_fields_in_output.iter().flatten() {
            match index.get(name.as_str()) {
                Some(&p) => include.push(p),
                None if id_field.as_deref() == Some(name.as_str()) => {
                    generated_id = Some(name.clone())
                }
                None => {
                    return Err(ep.invalid(format!(
                        "includeFieldsInOutput names {name:?}, which is neither one of the input fields {} nor the idField",
                        java_list(&fields)
                    )))
                }
            }
        }
        include.sort_unstable();
        include.dedup();
        let shapley = ep.check_shapley(opts.request_shapley_value_type.as_deref(), self.shapley)?;
        Ok(Layout {
            fields,
            positions: cols.positions.into(),
            include,
            generated_id,
            no_field_names: opts.no_field_names_in_output.unwrap_or(false),
            shapley: match ep {
                Endpoint::Score => shapley,
                Endpoint::Contribution { .. } => None,
            },
        })
    }

    /// Checks a parsed `/model/score` request; `None` is a `null` or empty body.
    pub fn prepare(&self, req: Option<ScoreRequest>) -> Result<Prepared, ApiError> {
        self.prepare_for(req, Endpoint::Score)
    }

    /// Checks a parsed request for `ep`, in the reference scorer's order; `None` is a
    /// `null` or empty body.
    pub fn prepare_for(
        &self,
        req: Option<ScoreRequest>,
        ep: Endpoint,
    ) -> Result<Prepared, ApiError> {
        let mut req = req.ok_or_else(|| ep.invalid("Request cannot be empty"))?;
        let opts = req.take_options();
        let rows = req.rows.unwrap_or_default();
        let layout = self.check(req.fields, rows.iter().map(Vec::len), opts, ep)?;
        Ok(Prepared {
            frame: Arc::new(layout.frame(rows, 0)),
            layout,
        })
    }

    /// The checks of [`RequestRules::prepare_for`] after the empty body, on the parts of a
    /// request however it was parsed: `fields`, the length of each row (none: `rows`
    /// missing or empty) and the other members.
    pub fn check(
        &self,
        fields: Option<Vec<String>>,
        row_lens: impl ExactSizeIterator<Item = usize>,
        opts: RequestOptions,
        ep: Endpoint,
    ) -> Result<Layout, ApiError> {
        let fields = match fields {
            Some(f) if !f.is_empty() => f,
            _ => return Err(ep.invalid("List of input fields cannot be empty")),
        };
        if row_lens.len() == 0 {
            return Err(ep.invalid("List of input data rows cannot be empty"));
        }
        let cols = self.columns(&fields, ep)?;
        for (r, len) in row_lens.enumerate() {
            check_row_len(r, len, fields.len(), ep)?;
        }
        self.layout(fields, cols, opts, ep)
    }

    /// Checks a streamed request's header (the batch command's CSV header), once it is
    /// known whether it has rows: the checks of [`RequestRules::prepare_for`] except the
    /// row lengths, which [`Layout::check_row`] makes as each row arrives. (A request
    /// with both a bad row and a bad header is refused for the header here, for the row
    /// there.)
    pub fn header(
        &self,
        fields: Vec<String>,
        has_rows: bool,
        opts: RequestOptions,
        ep: Endpoint,
    ) -> Result<Layout, ApiError> {
        if fields.is_empty() {
            return Err(ep.invalid("List of input fields cannot be empty"));
        }
        if !has_rows {
            return Err(ep.invalid("List of input data rows cannot be empty"));
        }
        let cols = self.columns(&fields, ep)?;
        self.layout(fields, cols, opts, ep)
    }
}

fn field_index(fields: &[String]) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(fields.len());
    for (i, f) in fields.iter().enumerate() {
        index.entry(f.as_str()).or_insert(i);
    }
    index
}

/// Every row must be exactly as long as `fields` (the reference message says "Not
/// enough" for a long row too).
fn check_row_len(r: usize, len: usize, width: usize, ep: Endpoint) -> Result<(), ApiError> {
    if len != width {
        return Err(ep.invalid(format!("Not enough elements in row {r} (zero-indexed)")));
    }
    Ok(())
}

impl Layout {
    /// Checks request row `r` of `len` cells.
    pub fn check_row(&self, r: usize, len: usize, ep: Endpoint) -> Result<(), ApiError> {
        check_row_len(r, len, self.fields.len(), ep)
    }

    /// `positions[i]`: where model input `i` is in `fields`.
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// The Shapley values a `/model/score` request asks for along with its scores.
    pub fn shapley(&self) -> Option<ShapleyType> {
        self.shapley
    }

    /// A frame of checked rows whose first is request row `first_row`.
    pub fn frame(&self, rows: Vec<Vec<Cell>>, first_row: usize) -> Frame {
        Frame {
            rows,
            positions: Arc::clone(&self.positions),
            first_row,
        }
    }

    /// The response's `fields`: the copied input fields (input order), the generated id,
    /// the backend's outputs; `None` with `noFieldNamesInOutput`.
    pub fn output_fields(&self, output_names: &[String]) -> Option<Vec<String>> {
        (!self.no_field_names).then(|| {
            let mut f = Vec::with_capacity(self.extra() + output_names.len());
            f.extend(self.include.iter().map(|&p| self.fields[p].clone()));
            f.extend(self.generated_id.iter().cloned());
            f.extend(output_names.iter().cloned());
            f
        })
    }

    /// Writes one response row's cells before the outputs, each followed by a comma:
    /// what [`Layout::output_row`] puts there (`cell(p)` as there).
    pub fn write_extra<'a>(&self, out: &mut Vec<u8>, cell: impl Fn(usize) -> &'a str) {
        for &p in &self.include {
            write_json_str(out, cell(p));
            out.push(b',');
        }
        if self.generated_id.is_some() {
            write_json_str(out, &uuid::Uuid::new_v4().to_string());
            out.push(b',');
        }
    }

    /// Writes the start of a [`ScoreResponse`] without Shapley values, exactly as serde
    /// would, up to the opening bracket of `score`'s rows.
    pub fn write_response_head(&self, out: &mut Vec<u8>, id: &str, output_names: &[String]) {
        out.extend_from_slice(b"{\"id\":");
        write_json_str(out, id);
        if let Some(fields) = self.output_fields(output_names) {
            out.extend_from_slice(b",\"fields\":[");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, f);
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"score\":[");
    }

    /// How many cells [`Layout::output_row`] puts before the outputs.
    pub fn extra(&self) -> usize {
        self.include.len() + usize::from(self.generated_id.is_some())
    }

    /// One response row: the copied cells of the request row (`cell(p)`: the raw text
    /// at position `p` of `fields`, `""` when `null`), then a new UUID when one is
    /// generated, then `outputs`.
    pub fn output_row<'a>(
        &self,
        cell: impl Fn(usize) -> &'a str,
        outputs: Vec<String>,
    ) -> Vec<String> {
        let extra = self.extra();
        if extra == 0 {
            return outputs;
        }
        let mut r = Vec::with_capacity(extra + outputs.len());
        r.extend(self.include.iter().map(|&p| cell(p).to_string()));
        if self.generated_id.is_some() {
            r.push(uuid::Uuid::new_v4().to_string());
        }
        r.extend(outputs);
        r
    }
}

impl ScoreRequest {
    /// Takes the members other than `fields` and `rows` out.
    fn take_options(&mut self) -> RequestOptions {
        RequestOptions {
            include_fields_in_output: self.include_fields_in_output.take(),
            id_field: self.id_field.take(),
            no_field_names_in_output: self.no_field_names_in_output.take(),
            request_shapley_value_type: self.request_shapley_value_type.take(),
        }
    }
}

impl Prepared {
    /// Builds the response: per row the copied input fields (input order), then the
    /// generated id, then the backend's outputs.
    pub fn respond(
        &self,
        outputs: Vec<Vec<String>>,
        output_names: &[String],
        id: &str,
    ) -> ScoreResponse {
        let score = outputs
            .into_iter()
            .zip(self.frame.rows.iter())
            .map(|(out, row)| {
                self.layout
                    .output_row(|p| row[p].0.as_deref().unwrap_or(""), out)
            })
            .collect();
        ScoreResponse {
            id: id.to_string(),
            fields: self.layout.output_fields(output_names),
            score,
            feature_shapley_contributions: None,
        }
    }
}

/// `ContributionsResponse`, the body of `/model/contribution` and the
/// `featureShapleyContributions` of a `ScoreResponse`: one group without `output_group`
/// (genmodel, and so the shim, computes contributions for binomial and regression models
/// only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContributionsResponse {
    pub features: Vec<String>,
    pub contribution_groups: Vec<ContributionGroup>,
}

impl ContributionsResponse {
    /// One group without `output_group`: `rows[i]` is request row `i`'s values, one per
    /// feature.
    pub fn single(features: &[String], rows: Vec<Vec<String>>) -> Self {
        ContributionsResponse {
            features: features.to_vec(),
            contribution_groups: vec![ContributionGroup {
                output_group: None,
                contributions: rows,
            }],
        }
    }
}

/// A `ContributionGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionGroup {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output_group: Option<String>,
    pub contributions: Vec<Vec<String>>,
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it. Most cells of an
/// answer (numbers, labels) need no escape: those are copied between quotes at once;
/// serde_json writes the others.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // `fold` rather than `any`: no early exit, so the check is branch-free. serde_json
    // escapes control characters, `"` and `\` only (not DEL, not non-ASCII).
    let plain = s
        .bytes()
        .fold(true, |p, b| p & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

/// Parses a `/model/score` request body: empty or `null` is `None`; anything that is not
/// a JSON object of the right shape is a 400.
pub fn parse_request(body: &[u8]) -> Result<Option<ScoreRequest>, ApiError> {
    parse_request_for(body, Endpoint::Score)
}

/// [`parse_request`] with `ep`'s message prefix. A `ContributionsRequest` parses as a
/// `ScoreRequest` (its members are a subset).
pub fn parse_request_for(body: &[u8], ep: Endpoint) -> Result<Option<ScoreRequest>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Option<ScoreRequest>>(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ep.invalid(format!("the body is not valid JSON: {e}"))
        } else {
            ep.invalid(format!("the body is not a ScoreRequest: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = [
            "",
            "0.5859945019468265",
            "no",
            "-0",
            "NaN",
            "a\"b",
            "back\\slash",
            "tab\there",
            "nl\n",
            "\u{1}",
            "\u{1f}",
            " ",
            "\u{7f}",
            "é\u{1F600}",
            "/",
            "</script>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every character up to U+00FF alone and between letters.
        for c in (0u32..=0xFF).filter_map(char::from_u32) {
            cases.push(c.to_string());
            cases.push(format!("a{c}b"));
        }
        for s in &cases {
            let mut got = Vec::new();
            write_json_str(&mut got, s);
            assert_eq!(got, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
    use artifact_core::ColumnType;

    fn rules() -> RequestRules {
        RequestRules::new(&[
            Column::new("a", ColumnType::Float64),
            Column::new("b", ColumnType::String),
        ])
    }

    fn req(json: &str) -> Result<Prepared, ApiError> {
        rules().prepare(parse_request(json.as_bytes())?)
    }

    /// Where each input is found: the request in the inputs' order (checked without
    /// hashing), permuted, with extra fields, and against a model naming an input twice.
    #[test]
    fn input_positions() {
        let twice = RequestRules::new(&[
            Column::new("a", ColumnType::Float64),
            Column::new("a", ColumnType::Float64),
        ]);
        type Case<'a> = (
            &'a str,
            &'a RequestRules,
            &'a [&'a str],
            Result<&'a [usize], &'a str>,
        );
        let cases: [Case; 5] = [
            ("in order", &rules(), &["a", "b"], Ok(&[0, 1])),
            ("permuted", &rules(), &["b", "a"], Ok(&[1, 0])),
            ("extra fields", &rules(), &["z", "b", "a"], Ok(&[2, 1])),
            (
                "a field twice",
                &rules(),
                &["a", "b", "a"],
                Err("\"a\" appears more than once"),
            ),
            (
                "inputs named twice",
                &twice,
                &["a", "a"],
                Err("\"a\" appears more than once"),
            ),
        ];
        for (name, rules, fields, want) in cases {
            let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            let got = rules.header(fields, true, RequestOptions::default(), Endpoint::Score);
            match (got, want) {
                (Ok(l), Ok(p)) => assert_eq!(l.positions(), p, "{name}"),
                (Err(e), Err(m)) => assert!(e.detail.contains(m), "{name}: {}", e.detail),
                (got, want) => panic!(
                    "{name}: {:?} against {want:?}",
                    got.map(|l| l.positions().to_vec())
                ),
            }
        }
    }

    #[test]
    fn checks_in_reference_order() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("empty body", "", Some("Request cannot be empty")),
            ("null body", "null", Some("Request cannot be empty")),
            ("not json", "{nope", Some("not valid JSON")),
            ("array body", "[1]", Some("not a ScoreRequest")),
            (
                "no fields",
                r#"{"rows":[["1"]]}"#,
                Some("List of input fields cannot be empty"),
            ),
            (
                "empty fields",
                r#"{"fields":[],"rows":[["1"]]}"#,
                Some("List of input fields cannot be empty"),
            ),
            (
                "no rows",
                r#"{"fields":["a","b"]}"#,
                Some("List of input data rows cannot be empty"),
            ),
            (
                "missing input",
                r#"{"fields":["a","x"],"rows":[["1","2"]]}"#,
                Some(
                    "Input fields don't contain all the Mojo fields, expected [a, b] actual [a, x]",
                ),
            ),
            (
                "short row",
                r#"{"fields":["a","b"],"rows":[["1","2"],["1"]]}"#,
                Some("Not enough elements in row 1 (zero-indexed)"),
            ),
            (
                "long row",
                r#"{"fields":["a","b"],"rows":[["1","2","3"]]}"#,
                Some("Not enough elements in row 0 (zero-indexed)"),
            ),
            (
                "duplicate",
                r#"{"fields":["a","b","a"],"rows":[["1","2","3"]]}"#,
                Some("\"a\" appears more than once"),
            ),
            (
                "unknown include",
                r#"{"fields":["a","b"],"rows":[["1","2"]],"includeFieldsInOutput":["z"]}"#,
                Some("includeFieldsInOutput names \"z\""),
            ),
            (
                "shapley",
                r#"{"fields":["a","b"],"rows":[["1","2"]],"requestShapleyValueType":"ORIGINAL"}"#,
                Some("Requested Shapley type ORIGINAL not enabled"),
            ),
            (
                "bad shapley",
                r#"{"fields":["a","b"],"rows":[["1","2"]],"requestShapleyValueType":"X"}"#,
                Some("Only ORIGINAL or TRANSFORMED"),
            ),
            ("ok", r#"{"fields":["b","a"],"rows":[["x","1"]]}"#, None),
            (
                "ok extra field, nulls and numbers",
                r#"{"fields":["z","a","b"],"rows":[[null,1.5,null]],"requestShapleyValueType":"NONE"}"#,
                None,
            ),
        ];
        for (name, body, want) in cases {
            match (req(body), want) {
                (Ok(_), None) => {}
                (Err(e), Some(w)) => {
                    assert_eq!(e.status, StatusCode::BAD_REQUEST, "{name}");
                    assert!(
                        e.detail.starts_with("Invalid scoring request due to: "),
                        "{name}: {}",
                        e.detail
                    );
                    assert!(e.detail.contains(w), "{name}: {}", e.detail);
                }
                (r, w) => panic!("{name}: got {r:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn contribution_requests_get_their_prefix_and_type_rule() {
        let ep = Endpoint::Contribution {
            enabled: Some(ShapleyType::Original),
        };
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("ORIGINAL", r#"{"fields":["a","b"],"rows":[["1","x"]],"requestShapleyValueType":"ORIGINAL"}"#, None),
            ("TRANSFORMED", r#"{"fields":["a","b"],"rows":[["1","x"]],"requestShapleyValueType":"TRANSFORMED"}"#,
                Some("Requested Shapley type TRANSFORMED not enabled for this scorer. Expected: ORIGINAL")),
            ("NONE", r#"{"fields":["a","b"],"rows":[["1","x"]],"requestShapleyValueType":"NONE"}"#,
                Some("Only ORIGINAL or TRANSFORMED are accepted enums values of Shapley values")),
            ("absent", r#"{"fields":["a","b"],"rows":[["1","x"]]}"#,
                Some("Only ORIGINAL or TRANSFORMED are accepted enums values of Shapley values")),
            ("short row first", r#"{"fields":["a","b"],"rows":[["1"]],"requestShapleyValueType":"NONE"}"#,
                Some("Not enough elements in row 0 (zero-indexed)")),
            ("empty", "", Some("Request cannot be empty")),
        ];
        for (name, body, want) in cases {
            let got =
                parse_request_for(body.as_bytes(), ep).and_then(|r| rules().prepare_for(r, ep));
            match (got, want) {
                (Ok(_), None) => {}
                (Err(e), Some(w)) => {
                    assert_eq!(e.status, StatusCode::BAD_REQUEST, "{name}");
                    assert_eq!(
                        e.detail,
                        format!("Invalid shapley contribution request due to: {w}"),
                        "{name}"
                    );
                }
                (r, w) => panic!("{name}: got {r:?}, want {w:?}"),
            }
        }
    }

    /// `/model/score` of a model with Shapley values: its type is accepted (and
    /// recorded in the layout), the other type and bad values get the reference's
    /// messages with the scoring prefix, `NONE` or no type scores only.
    #[test]
    fn score_requests_may_ask_for_the_models_shapley_type() {
        let rules = rules().with_shapley(Some(ShapleyType::Original));
        let body = |t: &str| {
            format!(r#"{{"fields":["a","b"],"rows":[["1","x"]],"requestShapleyValueType":{t}}}"#)
        };
        type Want = Result<Option<ShapleyType>, &'static str>;
        let cases: &[(&str, String, Want)] = &[
            ("ORIGINAL", body("\"ORIGINAL\""), Ok(Some(ShapleyType::Original))),
            ("NONE", body("\"NONE\""), Ok(None)),
            ("null", body("null"), Ok(None)),
            (
                "absent",
                r#"{"fields":["a","b"],"rows":[["1","x"]]}"#.to_string(),
                Ok(None),
            ),
            (
                "TRANSFORMED",
                body("\"TRANSFORMED\""),
                Err("Requested Shapley type TRANSFORMED not enabled for this scorer. Expected: ORIGINAL"),
            ),
            (
                "lower case",
                body("\"original\""),
                Err("Only ORIGINAL or TRANSFORMED are accepted enums values of Shapley values"),
            ),
        ];
        for (name, body, want) in cases {
            let got = parse_request(body.as_bytes()).and_then(|r| rules.prepare(r));
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(p.layout.shapley(), *w, "{name}"),
                (Err(e), Err(w)) => assert_eq!(
                    e.detail,
                    format!("Invalid scoring request due to: {w}"),
                    "{name}"
                ),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        // A model without Shapley values keeps the refusal naming NONE.
        let e = parse_request(body("\"ORIGINAL\"").as_bytes())
            .and_then(|r| super::tests::rules().prepare(r))
            .unwrap_err();
        assert!(e.detail.ends_with("Expected: NONE"), "{}", e.detail);
    }

    #[test]
    fn header_checks_are_the_request_checks() {
        let opts = RequestOptions::default;
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&str, Vec<String>, bool, Option<&str>)] = &[
            ("ok", f(&["z", "b", "a"]), true, None),
            (
                "no fields",
                f(&[]),
                true,
                Some("List of input fields cannot be empty"),
            ),
            (
                "no rows",
                f(&["a", "b"]),
                false,
                Some("List of input data rows cannot be empty"),
            ),
            (
                "missing",
                f(&["a"]),
                true,
                Some("Input fields don't contain all the Mojo fields, expected [a, b] actual [a]"),
            ),
            (
                "duplicate",
                f(&["a", "b", "a"]),
                true,
                Some("field \"a\" appears more than once"),
            ),
        ];
        for (name, fields, has_rows, want) in cases {
            match (
                rules().header(fields.clone(), *has_rows, opts(), Endpoint::Score),
                want,
            ) {
                (Ok(l), None) => {
                    assert_eq!(l.positions(), [2, 1], "{name}");
                    assert!(l.check_row(0, 3, Endpoint::Score).is_ok());
                    assert_eq!(
                        l.check_row(7, 2, Endpoint::Score).unwrap_err().detail,
                        "Invalid scoring request due to: Not enough elements in row 7 (zero-indexed)"
                    );
                }
                (Err(e), Some(w)) => assert!(e.detail.contains(w), "{name}: {}", e.detail),
                (r, w) => panic!("{name}: got {r:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn frame_maps_model_inputs_to_request_positions() {
        let p = req(r#"{"fields":["z","b","a"],"rows":[["q","x",""],[null,"y",2]]}"#).unwrap();
        assert_eq!(p.frame.width(), 2);
        assert_eq!(p.frame.cell(0, 0), None, "empty string is missing");
        assert_eq!(p.frame.cell(0, 1), Some("x"));
        assert_eq!(p.frame.cell(1, 0), Some("2"));
        assert_eq!(p.frame.cell(1, 1), Some("y"));
    }

    #[test]
    fn response_copies_fields_in_input_order_then_id_then_outputs() {
        let p = req(r#"{"fields":["a","b","k"],"rows":[["1","x","k1"]],"includeFieldsInOutput":["k","a","id"],"idField":"id"}"#).unwrap();
        let r = p.respond(vec![vec!["0.5".into()]], &["predict".into()], "m");
        assert_eq!(r.fields.unwrap(), ["a", "k", "id", "predict"]);
        assert_eq!(r.score[0][0], "1");
        assert_eq!(r.score[0][1], "k1");
        assert!(uuid::Uuid::parse_str(&r.score[0][2]).is_ok());
        assert_eq!(r.score[0][3], "0.5");
        let p = req(r#"{"fields":["a","b"],"rows":[["1","x"]],"noFieldNamesInOutput":true,"idField":"a","includeFieldsInOutput":["a"]}"#).unwrap();
        let r = p.respond(vec![vec!["0.5".into()]], &["predict".into()], "m");
        assert_eq!(r.fields, None);
        assert_eq!(r.score, vec![vec!["1".to_string(), "0.5".to_string()]]);
    }

    #[test]
    fn sample_request_uses_reference_placeholders() {
        let cols: Vec<Column> = ColumnType::ALL
            .iter()
            .map(|t| Column::new(t.as_str(), *t))
            .collect();
        let s = SampleRequest::new(&cols);
        assert_eq!(
            s.rows[0],
            ["true", "2018-01-01", "0", "0", "0", "0", "text"]
        );
        assert_eq!(s.fields.len(), 7);
    }
}
