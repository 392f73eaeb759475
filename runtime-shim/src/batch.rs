//! `runtime-shim score`: scores a CSV file through the same start-up checks, request
//! checks, backend and response assembly as `POST /model/score`.
//!
//! The input's header row is the request's `fields` and every other row one request row
//! (an empty cell is missing); the output's header is the response's `fields` and every
//! other row one `score` row. The file is streamed: the header is checked once (by
//! [`crate::api::RequestRules::header`], the REST checks), then each record is checked
//! ([`Layout::check_row`]), scored and written before the next is read, so memory stays
//! flat whatever the number of rows. An in-process backend scores each row on the calling
//! thread ([`Backend::score_row`]); a proxy backend gets chunks of [`CHUNK_ROWS`] rows
//! through [`Backend::score`]. A file output is written under a temporary name in the
//! same folder and renamed at the end, so a failed or interrupted run leaves none.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::api::{cell_value, ApiError, Cell, Endpoint, Layout, RequestOptions};
use crate::backend::Backend;
use crate::error::ShimError;
use crate::model::LoadedModel;

/// Rows a proxy backend gets per [`Backend::score`] call.
pub const CHUNK_ROWS: usize = 1000;
/// The in-process loop yields to the runtime this often, so that SIGTERM/SIGINT are seen.
const YIELD_ROWS: usize = 1024;

/// What to score and where to write it.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub input: PathBuf,
    /// `None` or `-`: standard output.
    pub output: Option<PathBuf>,
    pub include_fields: Vec<String>,
    pub id_field: Option<String>,
    /// fsync the output file before it is renamed into place.
    pub fsync: bool,
}

/// Scores `opts.input` with `model` and writes the CSV; returns the number of rows.
pub async fn run(model: &LoadedModel, opts: &BatchOptions) -> Result<usize, ShimError> {
    let mut input = Input::open(&opts.input)?;
    let fields = input.header()?;
    let mut record = csv::StringRecord::new();
    let has_rows = input.next(&mut record)?;
    let rejected = |e: ApiError| ShimError::Rejected {
        path: opts.input.clone(),
        detail: e.detail,
    };
    let layout = model
        .rules
        .header(
            fields,
            has_rows,
            RequestOptions {
                include_fields_in_output: (!opts.include_fields.is_empty())
                    .then(|| opts.include_fields.clone()),
                id_field: opts.id_field.clone(),
                ..RequestOptions::default()
            },
            Endpoint::Score,
        )
        .map_err(rejected)?;
    let mut out = Output::create(opts.output.as_deref())?;
    let backend = model.backend.as_ref();
    if let Some(f) = layout.output_fields(backend.output_names()) {
        out.record(&f)?;
    }
    let mut stream = Stream {
        input,
        record,
        layout: &layout,
        out: &mut out,
        rejected: &rejected,
    };
    let rows = if backend.in_process() {
        stream.in_process(backend).await?
    } else {
        stream.chunked(backend).await?
    };
    out.finish(opts.fsync)?;
    Ok(rows)
}

/// The input CSV.
struct Input {
    path: PathBuf,
    rdr: csv::Reader<std::fs::File>,
}

impl Input {
    fn open(path: &Path) -> Result<Input, ShimError> {
        let file = std::fs::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ShimError::Usage(format!("input {} does not exist", path.display()))
            } else {
                ShimError::io("open", path, e)
            }
        })?;
        let rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(file);
        Ok(Input {
            path: path.to_path_buf(),
            rdr,
        })
    }

    fn error(&self, e: csv::Error) -> ShimError {
        match e.kind() {
            csv::ErrorKind::Io(_) => {
                ShimError::io("read", &self.path, std::io::Error::other(e.to_string()))
            }
            _ => ShimError::BadInput {
                path: self.path.clone(),
                detail: e.to_string(),
            },
        }
    }

    /// The header row: the request's `fields`.
    fn header(&mut self) -> Result<Vec<String>, ShimError> {
        match self.rdr.headers() {
            Ok(h) => Ok(h.iter().map(str::to_owned).collect()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Reads the next record into `record`; `false` at the end.
    fn next(&mut self, record: &mut csv::StringRecord) -> Result<bool, ShimError> {
        self.rdr.read_record(record).map_err(|e| self.error(e))
    }
}

/// The rows after the header: `record` holds the row not yet scored.
struct Stream<'a, F: Fn(ApiError) -> ShimError> {
    input: Input,
    record: csv::StringRecord,
    layout: &'a Layout,
    out: &'a mut Output,
    rejected: &'a F,
}

impl<F: Fn(ApiError) -> ShimError> Stream<'_, F> {
    /// Each row scored on this thread and written before the next is read.
    async fn in_process(&mut self, backend: &dyn Backend) -> Result<usize, ShimError> {
        let ep = Endpoint::Score;
        let positions = self.layout.positions();
        let mut r = 0;
        loop {
            let rec = &self.record;
            self.layout
                .check_row(r, rec.len(), ep)
                .map_err(self.rejected)?;
            let cells: Vec<Option<&str>> =
                positions.iter().map(|&p| cell_value(rec.get(p))).collect();
            let outputs = backend
                .score_row(&cells, r)
                .expect("an in-process backend scores rows")
                .map_err(self.rejected)?;
            let row = self.layout.output_row(|p| &rec[p], outputs);
            self.out.record(&row)?;
            r += 1;
            if r % YIELD_ROWS == 0 {
                tokio::task::yield_now().await;
            }
            if !self.input.next(&mut self.record)? {
                return Ok(r);
            }
        }
    }

    /// Rows sent to the backend [`CHUNK_ROWS`] at a time.
    async fn chunked(&mut self, backend: &dyn Backend) -> Result<usize, ShimError> {
        let ep = Endpoint::Score;
        let mut r = 0;
        let mut more = true;
        while more {
            let first = r;
            let mut rows = Vec::with_capacity(CHUNK_ROWS);
            while more && rows.len() < CHUNK_ROWS {
                self.layout
                    .check_row(r, self.record.len(), ep)
                    .map_err(self.rejected)?;
                rows.push(
                    self.record
                        .iter()
                        .map(|c| Cell(Some(c.to_owned())))
                        .collect(),
                );
                r += 1;
                more = self.input.next(&mut self.record)?;
            }
            let frame = Arc::new(self.layout.frame(rows, first));
            let outputs = backend
                .score(Arc::clone(&frame))
                .await
                .map_err(self.rejected)?;
            for (i, out) in outputs.into_iter().enumerate() {
                let row = self.layout.output_row(|p| frame.request_cell(i, p), out);
                self.out.record(&row)?;
            }
        }
        Ok(r)
    }
}

/// Standard output or the temporary file.
enum Sink {
    Stdout(std::io::StdoutLock<'static>),
    File(std::fs::File),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::File(f) => f.flush(),
        }
    }
}

/// Where the output CSV goes. A file is written as `.NAME.tmp-PID` beside it and
/// removed if it is dropped before [`Output::finish`] (an error, an interrupt).
struct Output {
    w: csv::Writer<Sink>,
    /// (temporary, final) paths of a file output.
    file: Option<(PathBuf, PathBuf)>,
}

impl Output {
    fn create(path: Option<&Path>) -> Result<Output, ShimError> {
        let builder = || {
            let mut b = csv::WriterBuilder::new();
            b.buffer_capacity(1 << 16);
            b
        };
        let path = match path {
            None => None,
            Some(p) if p == Path::new("-") => None,
            Some(p) => Some(p),
        };
        let Some(path) = path else {
            return Ok(Output {
                w: builder().from_writer(Sink::Stdout(std::io::stdout().lock())),
                file: None,
            });
        };
        let name = path.file_name().ok_or_else(|| {
            ShimError::Usage(format!("output {} is not a file path", path.display()))
        })?;
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let f = std::fs::File::create(&tmp).map_err(|e| ShimError::io("write", path, e))?;
        Ok(Output {
            w: builder().from_writer(Sink::File(f)),
            file: Some((tmp, path.to_path_buf())),
        })
    }

    fn target(&self) -> PathBuf {
        match &self.file {
            Some((_, p)) => p.clone(),
            None => PathBuf::from("standard output"),
        }
    }

    fn record(&mut self, row: &[String]) -> Result<(), ShimError> {
        self.w
            .write_record(row)
            .map_err(|e| ShimError::io("write", self.target(), e.into()))
    }

    /// Flushes, optionally fsyncs, and renames a file output into place.
    fn finish(mut self, fsync: bool) -> Result<(), ShimError> {
        let target = self.target();
        let io = |e| ShimError::io("write", &target, e);
        self.w.flush().map_err(io)?;
        let Some((tmp, path)) = self.file.take() else {
            return Ok(());
        };
        let result = match &self.w.get_ref() {
            Sink::File(f) if fsync => f.sync_all(),
            _ => Ok(()),
        }
        .and_then(|()| std::fs::rename(&tmp, &path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some((tmp, _)) = &self.file {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
