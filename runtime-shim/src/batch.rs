//! `runtime-shim score`: scores a CSV file through the same start-up checks, request
//! checks, backend and response assembly as `POST /model/score`, for local debugging.
//!
//! The input's header row is the request's `fields` and every other row one request row
//! (an empty cell is missing); the output's header is the response's `fields` and every
//! other row one `score` row. The whole input is read into memory: this is a debugging
//! tool, not a bulk scorer.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::api::{Cell, ScoreRequest, ScoreResponse};
use crate::error::ShimError;
use crate::model::LoadedModel;

/// What to score and where to write it.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub input: PathBuf,
    /// `None` or `-`: standard output.
    pub output: Option<PathBuf>,
    pub include_fields: Vec<String>,
    pub id_field: Option<String>,
}

/// Reads `path` as a score request.
pub fn read_csv(path: &Path) -> Result<ScoreRequest, ShimError> {
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ShimError::Usage(format!("input {} does not exist", path.display()))
        } else {
            ShimError::io("open", path, e)
        }
    })?;
    let bad = |detail: String| ShimError::BadInput {
        path: path.to_path_buf(),
        detail,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let fields: Vec<String> = rdr
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| match e.kind() {
            csv::ErrorKind::Io(_) => {
                ShimError::io("read", path, std::io::Error::other(e.to_string()))
            }
            _ => bad(e.to_string()),
        })?;
        rows.push(rec.iter().map(|c| Cell(Some(c.to_owned()))).collect());
    }
    Ok(ScoreRequest {
        fields: Some(fields),
        rows: Some(rows),
        ..ScoreRequest::default()
    })
}

/// Scores `opts.input` with `model` and writes the CSV; returns the number of rows.
pub async fn run(model: &LoadedModel, opts: &BatchOptions) -> Result<usize, ShimError> {
    let mut req = read_csv(&opts.input)?;
    if !opts.include_fields.is_empty() {
        req.include_fields_in_output = Some(opts.include_fields.clone());
    }
    req.id_field = opts.id_field.clone();
    let rejected = |e: crate::api::ApiError| ShimError::Rejected {
        path: opts.input.clone(),
        detail: e.detail,
    };
    let prepared = model.rules.prepare(Some(req)).map_err(rejected)?;
    let outputs = model
        .backend
        .score(std::sync::Arc::clone(&prepared.frame))
        .await
        .map_err(rejected)?;
    let resp = prepared.respond(outputs, model.backend.output_names(), &model.id);
    let n = resp.score.len();
    match opts.output.as_deref() {
        None => write_csv(std::io::stdout().lock(), &resp)
            .map_err(|e| ShimError::io("write", "standard output", e))?,
        Some(p) if p == Path::new("-") => write_csv(std::io::stdout().lock(), &resp)
            .map_err(|e| ShimError::io("write", "standard output", e))?,
        Some(p) => write_file(p, &resp)?,
    }
    Ok(n)
}

/// Writes through a temporary file renamed into place, so a failed run leaves no
/// half-written output.
fn write_file(path: &Path, resp: &ScoreResponse) -> Result<(), ShimError> {
    let name = path
        .file_name()
        .ok_or_else(|| ShimError::Usage(format!("output {} is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            write_csv(&mut w, resp)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ShimError::io("write", path, e)
    })
}

/// The response as CSV: `fields` as the header, then the score rows.
pub fn write_csv<W: Write>(out: W, resp: &ScoreResponse) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(out);
    if let Some(f) = &resp.fields {
        w.write_record(f)?;
    }
    for row in &resp.score {
        w.write_record(row)?;
    }
    w.flush()
}
