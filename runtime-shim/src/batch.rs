//! `runtime-shim score`: scores a CSV file through the same start-up checks, request
//! checks, backend and response assembly as `POST /model/score`.
//!
//! The input's header row is the request's `fields` and every other row one request row
//! (an empty cell is missing; a blank line is a row too, see [`crate::csv_input`]), so
//! there is one output row per input row; the output's header is the response's `fields` and every
//! other row one `score` row. The file is streamed: the header is checked once (by
//! [`crate::api::RequestRules::header`], the REST checks), then the records go through in
//! pieces, each row checked ([`Layout::check_row`]), scored and written in input order,
//! with a bounded number of pieces in flight, so memory stays flat whatever the number of
//! rows. For an in-process backend this task cuts the input into pieces of about
//! [`PIECE_BYTES`] that end where records end and `threads` scoring threads parse, check,
//! score ([`Backend::score_row_into`], row by row) and format them, while this task
//! writes the finished pieces in order; a proxy backend gets chunks of [`CHUNK_ROWS`]
//! rows through [`Backend::score`]. Either way the output, and the first refused row
//! (with its number in the whole input), are those of scoring row by row. A file output
//! is written under a temporary name in the same folder and renamed at the end, so a
//! failed or interrupted run leaves none.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use crate::api::{cell_value, ApiError, Cell, Endpoint, Layout, RequestOptions};
use crate::backend::Backend;
use crate::csv_input::{self, BlankLinesAsRows, Fields, NotUtf8, PieceParser};
use crate::csv_output::Records;
use crate::error::ShimError;
use crate::model::LoadedModel;

/// What a record that is not UTF-8 is reported as if reading the file again finds none.
const NOT_UTF8: &str = "a record is not valid UTF-8";

/// Rows a proxy backend gets per [`Backend::score`] call.
pub const CHUNK_ROWS: usize = 1000;
/// Bytes of input an in-process scoring thread gets at a time (rounded up to a record).
pub const PIECE_BYTES: usize = 64 << 10;
/// In-process pieces in flight (read, being scored, or waiting to be written) per
/// scoring thread: what bounds memory.
const PIECES_PER_THREAD: usize = 2;

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
    if model.backend.in_process() {
        return in_process(model, opts).await;
    }
    let mut input = Input::open(&opts.input)?;
    let fields = input.header()?;
    let mut record = csv::StringRecord::new();
    let has_rows = input.next(&mut record)?;
    let (layout, mut out) = start(model, opts, fields, has_rows)?;
    let rows = if has_rows {
        let mut stream = Stream {
            input,
            record,
            layout: &layout,
            out: &mut out,
            rejected: &|e| rejected(opts, e),
        };
        stream.chunked(model.backend.as_ref()).await?
    } else {
        0
    };
    out.finish(opts.fsync)?;
    Ok(rows)
}

/// A refused request (header) or row, as the batch command reports it.
fn rejected(opts: &BatchOptions, e: ApiError) -> ShimError {
    ShimError::Rejected {
        path: opts.input.clone(),
        detail: e.detail,
    }
}

/// Checks the header (`fields`; `has_rows`: whether a row follows it) as a request,
/// creates the output and writes its header row.
fn start(
    model: &LoadedModel,
    opts: &BatchOptions,
    fields: Vec<String>,
    has_rows: bool,
) -> Result<(Layout, Output), ShimError> {
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
        .map_err(|e| rejected(opts, e))?;
    let mut out = Output::create(opts.output.as_deref())?;
    if let Some(f) = layout.output_fields(model.backend.output_names()) {
        out.record(&f)?;
    }
    Ok((layout, out))
}

/// Opens the input file.
fn open(path: &Path) -> Result<std::fs::File, ShimError> {
    std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ShimError::Usage(format!("input {} does not exist", path.display()))
        } else {
            ShimError::io("open", path, e)
        }
    })
}

/// The input CSV, record by record (the proxy path, and error reports).
struct Input {
    path: PathBuf,
    rdr: csv::Reader<BlankLinesAsRows<std::fs::File>>,
}

impl Input {
    fn open(path: &Path) -> Result<Input, ShimError> {
        Ok(Input {
            path: path.to_path_buf(),
            rdr: csv_input::reader(open(path)?),
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

    /// The error of reading `path` from the start, record after record: how a parse
    /// error in a piece of the in-process path is reported, with its line and byte in
    /// the whole file. `found` (what the piece's parser saw) if the file now reads
    /// cleanly.
    fn first_error(path: &Path, found: &str) -> ShimError {
        let mut input = match Input::open(path) {
            Ok(input) => input,
            Err(e) => return e,
        };
        let mut record = csv::StringRecord::new();
        let mut read_all = || -> Result<(), ShimError> {
            input.header()?;
            while input.next(&mut record)? {}
            Ok(())
        };
        match read_all() {
            Err(e) => e,
            Ok(()) => ShimError::BadInput {
                path: path.to_path_buf(),
                detail: found.to_string(),
            },
        }
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

/// A piece of the input for a scoring thread: its index and its bytes (whole records;
/// the buffers, input and output, are reused from piece to piece).
struct Piece {
    index: usize,
    bytes: Vec<u8>,
    /// A buffer for its output.
    out: Vec<u8>,
}

/// How a piece's rows ended before its end.
enum Stop {
    /// Row `row` (counted from the piece's first) was refused; its record
    /// ([`Fields::text`], [`Fields::ends`]), to report it with its number in the whole
    /// input.
    Refused {
        row: usize,
        text: String,
        ends: Vec<usize>,
    },
    /// A record is not UTF-8.
    NotUtf8,
}

/// A scored piece: the output CSV of its rows up to the first refused one if any, how
/// many rows that is, and its buffers, given back for reuse.
struct Scored {
    index: usize,
    csv: Vec<u8>,
    rows: usize,
    stop: Option<Stop>,
    bytes: Vec<u8>,
}

/// The in-process path. This task cuts the input into pieces of about [`PIECE_BYTES`]
/// that end where records end ([`csv_input::Pieces`]: the blank-line adapter's state
/// machine knows where, so nothing is parsed twice) and hands them to `threads` scoring
/// threads, which parse, check, score and format them; at most `threads` x
/// [`PIECES_PER_THREAD`] pieces are in flight, and this task writes the scored pieces in
/// input order. So the reading, the parsing and the scoring all run in parallel, and the
/// only serial work is cutting and writing. A refused row ends the run after the rows
/// before it are written, as row-by-row scoring would; it is reported with its row number
/// in the whole input (recomputed here, as the threads only know their piece's). Dropping
/// this future (SIGTERM) closes the work queue; the threads finish their piece and exit.
async fn in_process(model: &LoadedModel, opts: &BatchOptions) -> Result<usize, ShimError> {
    let path = opts.input.clone();
    let mut pieces = csv_input::Pieces::new(open(&path)?);
    let read_error = |e: std::io::Error| ShimError::io("read", &path, e);
    let fields = match pieces.header() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => return Err(Input::first_error(&path, &e.to_string())),
    };
    // The first piece that holds a record (a piece may hold only the `\n` of a `\r\n`
    // cut after the header) says whether there are rows; its first record is parsed
    // here so that a parse error in it comes before the header checks, as it does when
    // the rows are read one by one.
    let mut first = Vec::new();
    let has_rows = loop {
        if !pieces.next(&mut first, PIECE_BYTES).map_err(read_error)? {
            break false;
        }
        match PieceParser::default().records(&first, |_| false) {
            Ok(0) => {}
            Ok(_) => break true,
            Err(NotUtf8) => return Err(Input::first_error(&path, NOT_UTF8)),
        }
    };
    let (layout, mut out) = start(model, opts, fields, has_rows)?;
    if !has_rows {
        out.finish(opts.fsync)?;
        return Ok(0);
    }
    let layout = Arc::new(layout);
    let backend = Arc::clone(&model.backend);
    let threads = opts.threads.max(1);
    let (work_tx, work_rx) = mpsc::channel::<Piece>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Scored>();
    for t in 0..threads {
        let work_rx = Arc::clone(&work_rx);
        let done_tx = done_tx.clone();
        let layout = Arc::clone(&layout);
        let backend = Arc::clone(&backend);
        std::thread::Builder::new()
            .name(format!("score-{t}"))
            .spawn(move || {
                let mut parser = PieceParser::default();
                loop {
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(piece)) = next else { return };
                    let scored = score_piece(piece, &layout, backend.as_ref(), &mut parser);
                    if done_tx.send(scored).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| ShimError::io("start", "a scoring thread", e))?;
    }
    drop(done_tx);

    let max_in_flight = threads * PIECES_PER_THREAD;
    let mut spare: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut pending: BTreeMap<usize, Scored> = BTreeMap::new();
    let mut carried = Some(first);
    let (mut sent, mut written, mut rows) = (0, 0, 0);
    let mut more = true;
    loop {
        while more && sent - written < max_in_flight {
            let (mut bytes, out) = spare.pop().unwrap_or_default();
            if let Some(first) = carried.take() {
                bytes = first;
            } else {
                more = pieces.next(&mut bytes, PIECE_BYTES).map_err(read_error)?;
                if !more {
                    break;
                }
            }
            let piece = Piece {
                index: sent,
                bytes,
                out,
            };
            if work_tx.send(piece).is_err() {
                return Err(ShimError::io(
                    "score",
                    &path,
                    std::io::Error::other("the scoring threads stopped"),
                ));
            }
            sent += 1;
        }
        if written == sent {
            out.finish(opts.fsync)?;
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
            rows += scored.rows;
            match scored.stop {
                None => {}
                Some(Stop::NotUtf8) => return Err(Input::first_error(&path, NOT_UTF8)),
                Some(Stop::Refused { row, text, ends }) => {
                    let r = rows - scored.rows + row;
                    let rec = Fields::new(&text, &ends);
                    let mut cells = Vec::new();
                    let e = score_record(&layout, backend.as_ref(), rec, r, &mut cells)
                        .err()
                        .unwrap_or_else(|| {
                            ApiError::invalid(format!("row {r} was refused on one thread only"))
                        });
                    return Err(rejected(opts, e));
                }
            }
            written += 1;
            spare.push((scored.bytes, scored.csv));
        }
    }
}

/// Checks and scores the record of request row `r` into `outputs`.
fn score_record(
    layout: &Layout,
    backend: &dyn Backend,
    rec: Fields<'_>,
    r: usize,
    outputs: &mut Vec<String>,
) -> Result<(), ApiError> {
    layout.check_row(r, rec.len(), Endpoint::Score)?;
    // The cells in request order, on the stack for the usual widths.
    const STACK: usize = 64;
    let positions = layout.positions();
    let mut stack = [None; STACK];
    let heap: Vec<Option<&str>>;
    let cells: &[Option<&str>] = if positions.len() <= STACK {
        for (slot, &p) in stack.iter_mut().zip(positions) {
            *slot = cell_value(rec.get(p));
        }
        &stack[..positions.len()]
    } else {
        heap = positions.iter().map(|&p| cell_value(rec.get(p))).collect();
        &heap
    };
    backend
        .score_row_into(cells, r, outputs)
        .expect("an in-process backend scores rows")
}

/// Parses, checks, scores and formats the rows of `piece`, stopping at the first refused
/// one.
fn score_piece(
    piece: Piece,
    layout: &Layout,
    backend: &dyn Backend,
    parser: &mut PieceParser,
) -> Scored {
    let mut csv = Records::with_buffer(piece.out);
    let mut outputs: Vec<String> = Vec::new();
    let mut rows = 0;
    let mut stop = None;
    let parsed = parser.records(&piece.bytes, |rec| {
        // Messages name the row within the piece here; a refused row is scored again
        // with its number in the whole input before it is reported.
        match score_record(layout, backend, rec, rows, &mut outputs) {
            Ok(()) if layout.extra() == 0 => csv.record(&outputs),
            Ok(()) => {
                csv.record(&layout.output_row(|p| rec.get(p).unwrap_or_default(), outputs.clone()))
            }
            Err(_) => {
                stop = Some(Stop::Refused {
                    row: rows,
                    text: rec.text().to_owned(),
                    ends: rec.ends().to_vec(),
                });
                return false;
            }
        }
        rows += 1;
        true
    });
    if parsed.is_err() {
        stop = Some(Stop::NotUtf8);
    }
    Scored {
        index: piece.index,
        csv: csv.finish(),
        rows,
        stop,
        bytes: piece.bytes,
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
