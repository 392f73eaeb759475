//! `runtime-shim score`: scores a CSV file through the same start-up checks, request
//! checks, backend and response assembly as `POST /model/score`.
//!
//! The input's header row is the request's `fields` and every other row one request row
//! (an empty cell is missing; a blank line is a row too, see [`crate::csv_input`]), so
//! there is one output row per input row; the output's header is the response's `fields` and every
//! other row one `score` row. The file is streamed: the header is checked once (by
//! [`crate::api::RequestRules::header`], the REST checks), then the records go through in
//! blocks, each checked ([`Layout::check_row`]), scored and written in input order, with a
//! bounded number of blocks in flight, so memory stays flat whatever the number of rows.
//! An in-process backend scores blocks of [`BLOCK_ROWS`] rows on `threads` scoring
//! threads ([`Backend::score_row`], row by row; each thread also formats its block's
//! output CSV) while this task reads the input and writes the finished blocks in order; a
//! proxy backend gets chunks of [`CHUNK_ROWS`] rows through [`Backend::score`]. Either way
//! the output, and the first refused row, are those of scoring row by row. A file output
//! is written under a temporary name in the same folder and renamed at the end, so a
//! failed or interrupted run leaves none.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use crate::api::{cell_value, ApiError, Cell, Endpoint, Layout, RequestOptions};
use crate::backend::Backend;
use crate::csv_input::{self, BlankLinesAsRows};
use crate::csv_output::Records;
use crate::error::ShimError;
use crate::model::LoadedModel;

/// Rows a proxy backend gets per [`Backend::score`] call.
pub const CHUNK_ROWS: usize = 1000;
/// Rows an in-process scoring thread gets at a time.
pub const BLOCK_ROWS: usize = 2048;
/// In-process blocks in flight (read, being scored, or waiting to be written) per
/// scoring thread: what bounds memory.
const BLOCKS_PER_THREAD: usize = 2;

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
    /// Scoring threads of an in-process backend (at least 1).
    pub threads: usize,
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
    let rows = if !has_rows {
        0
    } else if backend.in_process() {
        let threads = opts.threads.max(1);
        in_process(
            input,
            record,
            Arc::new(layout),
            &mut out,
            Arc::clone(&model.backend),
            threads,
            &rejected,
        )
        .await?
    } else {
        let mut stream = Stream {
            input,
            record,
            layout: &layout,
            out: &mut out,
            rejected: &rejected,
        };
        stream.chunked(backend).await?
    };
    out.finish(opts.fsync)?;
    Ok(rows)
}

/// The input CSV.
struct Input {
    path: PathBuf,
    rdr: csv::Reader<BlankLinesAsRows<std::fs::File>>,
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
        Ok(Input {
            path: path.to_path_buf(),
            rdr: csv_input::reader(file),
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
            let mut csv = Records::new(outputs.len());
            for (i, out) in outputs.into_iter().enumerate() {
                csv.record(&self.layout.output_row(|p| frame.request_cell(i, p), out));
            }
            self.out.bytes(&csv.finish())?;
        }
        Ok(r)
    }
}

/// A block of records for a scoring thread: its index, the request row number of its
/// first record, and the records (their buffers are reused from block to block).
struct Block {
    index: usize,
    first_row: usize,
    records: Vec<csv::StringRecord>,
    len: usize,
}

/// A scored block: the output CSV of its rows, up to the first refused one if any, and
/// its records, given back for reuse.
struct Scored {
    index: usize,
    csv: Vec<u8>,
    refused: Option<ApiError>,
    records: Vec<csv::StringRecord>,
}

/// The in-process path: this task reads blocks of [`BLOCK_ROWS`] records and hands them
/// to `threads` scoring threads, at most `threads` x [`BLOCKS_PER_THREAD`] blocks in
/// flight, and writes the scored blocks in input order. A refused row ends the run after
/// the rows before it are written, as row-by-row scoring would. Dropping this future
/// (SIGTERM) closes the work queue; the threads finish their block and exit.
async fn in_process(
    mut input: Input,
    first: csv::StringRecord,
    layout: Arc<Layout>,
    out: &mut Output,
    backend: Arc<dyn Backend>,
    threads: usize,
    rejected: &impl Fn(ApiError) -> ShimError,
) -> Result<usize, ShimError> {
    let path = input.path.clone();
    let (work_tx, work_rx) = mpsc::channel::<Block>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Scored>();
    for t in 0..threads {
        let work_rx = Arc::clone(&work_rx);
        let done_tx = done_tx.clone();
        let layout = Arc::clone(&layout);
        let backend = Arc::clone(&backend);
        std::thread::Builder::new()
            .name(format!("score-{t}"))
            .spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok(block)) = next else { return };
                if done_tx
                    .send(score_block(block, &layout, backend.as_ref()))
                    .is_err()
                {
                    return;
                }
            })
            .map_err(|e| ShimError::io("start", "a scoring thread", e))?;
    }
    drop(done_tx);

    let max_in_flight = threads * BLOCKS_PER_THREAD;
    let mut spare: Vec<Vec<csv::StringRecord>> = Vec::new();
    let mut pending: BTreeMap<usize, Scored> = BTreeMap::new();
    let mut carried = Some(first);
    let (mut sent, mut written, mut rows) = (0, 0, 0);
    let mut more = true;
    loop {
        while more && sent - written < max_in_flight {
            let mut records = spare.pop().unwrap_or_default();
            let mut len = 0;
            while len < BLOCK_ROWS {
                if records.len() == len {
                    records.push(csv::StringRecord::new());
                }
                if let Some(r) = carried.take() {
                    records[len] = r;
                } else if !input.next(&mut records[len])? {
                    more = false;
                    break;
                }
                len += 1;
            }
            if len == 0 {
                break;
            }
            let block = Block {
                index: sent,
                first_row: rows,
                records,
                len,
            };
            rows += len;
            sent += 1;
            if work_tx.send(block).is_err() {
                return Err(ShimError::io(
                    "score",
                    &path,
                    std::io::Error::other("the scoring threads stopped"),
                ));
            }
        }
        if written == sent {
            return Ok(rows);
        }
        let scored = done_rx.recv().await.ok_or_else(|| {
            ShimError::io(
                "score",
                &path,
                std::io::Error::other("a scoring thread stopped"),
            )
        })?;
        pending.insert(scored.index, scored);
        while let Some(scored) = pending.remove(&written) {
            out.bytes(&scored.csv)?;
            if let Some(e) = scored.refused {
                return Err(rejected(e));
            }
            written += 1;
            spare.push(scored.records);
        }
    }
}

/// Checks, scores and formats the rows of `block`, stopping at the first refused one.
fn score_block(block: Block, layout: &Layout, backend: &dyn Backend) -> Scored {
    let ep = Endpoint::Score;
    let positions = layout.positions();
    let mut csv = Records::new(block.len);
    let mut refused = None;
    // Reused row after row: the cells of a record and the output cells.
    let mut cells: Vec<Option<&str>> = Vec::with_capacity(positions.len());
    let mut outputs: Vec<String> = Vec::new();
    for (i, rec) in block.records[..block.len].iter().enumerate() {
        let r = block.first_row + i;
        let scored = layout.check_row(r, rec.len(), ep).and_then(|()| {
            cells.clear();
            cells.extend(positions.iter().map(|&p| cell_value(rec.get(p))));
            backend
                .score_row_into(&cells, r, &mut outputs)
                .expect("an in-process backend scores rows")
        });
        match scored {
            Ok(()) if layout.extra() == 0 => csv.record(&outputs),
            Ok(()) => {
                csv.record(&layout.output_row(|p| &rec[p], outputs.clone()));
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    Scored {
        index: block.index,
        csv: csv.finish(),
        refused,
        records: block.records,
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
    w: std::io::BufWriter<Sink>,
    /// (temporary, final) paths of a file output.
    file: Option<(PathBuf, PathBuf)>,
}

impl Output {
    fn create(path: Option<&Path>) -> Result<Output, ShimError> {
        let buffered = |sink| std::io::BufWriter::with_capacity(1 << 16, sink);
        let path = match path {
            None => None,
            Some(p) if p == Path::new("-") => None,
            Some(p) => Some(p),
        };
        let Some(path) = path else {
            return Ok(Output {
                w: buffered(Sink::Stdout(std::io::stdout().lock())),
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
            w: buffered(Sink::File(f)),
            file: Some((tmp, path.to_path_buf())),
        })
    }

    fn target(&self) -> PathBuf {
        match &self.file {
            Some((_, p)) => p.clone(),
            None => PathBuf::from("standard output"),
        }
    }

    /// Appends CSV `bytes` already formatted (a scored block).
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), ShimError> {
        self.w
            .write_all(bytes)
            .map_err(|e| ShimError::io("write", self.target(), e))
    }

    /// Appends one CSV record (the header).
    fn record(&mut self, row: &[String]) -> Result<(), ShimError> {
        let mut csv = Records::new(0);
        csv.record(row);
        self.bytes(&csv.finish())
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
