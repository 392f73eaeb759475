//! Reading untrusted sources: zip, tar, tar.gz and plain directories.
//!
//! This is the only place the project reads archives. Entries are walked one by one
//! (no crate `extract`/`unpack`), every name goes through [`crate::names`], only regular
//! files and directories pass, limits are counted on the bytes actually read, and each
//! file is hashed in the same pass. What happens to the bytes is up to an [`EntrySink`].
//!
//! Large sources use both cores without changing a rule or an error: the entries of a zip
//! are independent, so a sink that writes files to a directory ([`EntrySink::destinations`])
//! has them inflated, checked, hashed and written by a few threads, each reading its own
//! byte range of the source; a tar.gz is inflated on one thread while another walks,
//! hashes and writes its entries; and the source's own sha256 is computed alongside.
//! Every thread holds a fixed number of fixed-size buffers, so memory does not grow with
//! the source. Long reads log their progress every few seconds.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::limits::{Limits, RATIO_GRACE_BYTES};
use crate::names::{is_archive_noise, is_root_name, normalize_entry_name, NameSet};

/// The container shape of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Zip,
    Tar,
    TarGz,
    Directory,
}

/// Identity of the source as recorded in the manifest.
///
/// For a directory, `size` is the sum of its file sizes and `sha256` is the sha256 of
/// its listing in `sha256sum` format (`<hex>  <path>\n`, sorted by path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub file_name: String,
    pub kind: SourceKind,
    pub size: u64,
    pub sha256: String,
}

/// One regular file read from a source or written to a model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// How to read a source.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub limits: Limits,
    /// Silently pass over `__MACOSX/`, `.DS_Store` and `Thumbs.db` (MLflow zips).
    pub skip_noise: bool,
}

/// Everything a source held, in the order it was read.
#[derive(Debug, Clone)]
pub struct Listing {
    pub source: SourceInfo,
    pub files: Vec<FileRecord>,
    pub dirs: Vec<String>,
}

impl Listing {
    pub fn file(&self, name: &str) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.path == name)
    }
}

impl ReadOptions {
    /// Options to read an archive found inside a source that was read with `self` (the
    /// one nesting a processor expects, such as `pipeline.mojo` inside `mojo.zip`): one
    /// level of nesting less, and the bytes and entries of `outer` taken off the totals,
    /// so both levels together stay within the limits. `outer_path` and `entry` name the
    /// nested archive in the error when no nesting level is left
    /// ([`Limits::max_nesting`]).
    pub fn nested(&self, outer: &Listing, outer_path: &Path, entry: &str) -> Result<ReadOptions> {
        if self.limits.max_nesting == 0 {
            return Err(Error::UnsafeEntry {
                path: outer_path.to_path_buf(),
                entry: entry.to_string(),
                reason: "archive nested deeper than the nesting limit allows (archives inside archives are opened only to a fixed depth)".into(),
            });
        }
        let outer_bytes: u64 = outer.files.iter().map(|f| f.size).sum();
        let outer_entries = (outer.files.len() + outer.dirs.len()) as u64;
        let mut inner = self.clone();
        inner.limits.max_nesting -= 1;
        inner.limits.max_total_bytes = self.limits.max_total_bytes.saturating_sub(outer_bytes);
        inner.limits.max_entries = self.limits.max_entries.saturating_sub(outer_entries);
        Ok(inner)
    }
}

/// Receives the validated entries of a source.
///
/// `file` gets a reader that enforces the limits and hashes as it goes; the sink may
/// read it fully or not at all (the walker drains what is left, so every byte is still
/// checked). `finished` is called once the file's record is final.
pub trait EntrySink {
    fn directory(&mut self, _name: &str) -> Result<()> {
        Ok(())
    }
    fn file(&mut self, name: &str, data: &mut dyn Read) -> Result<()>;
    fn finished(&mut self, _record: &FileRecord) {}
    /// A sink that only writes files below a directory returns where each goes: then the
    /// entries of a zip are inflated, checked, hashed and written by several threads at
    /// once, straight to their destinations (create-new, parents created, links never
    /// followed), instead of through [`EntrySink::file`]. Every rule and error is the
    /// same; [`EntrySink::directory`] and [`EntrySink::finished`] are still called in
    /// entry order. `None` (the default) keeps every entry on the sequential path.
    fn destinations(&mut self) -> Option<&mut dyn Destinations> {
        None
    }
}

/// Where a sink's files go, for the parallel reading of zips ([`EntrySink::destinations`]).
pub trait Destinations {
    /// The path the file `name` is written to, or `None` to check it without writing it.
    /// Called on the reading thread, in entry order, once per file, before any of its
    /// bytes are read.
    fn destination(&mut self, name: &str) -> Option<PathBuf>;
}

/// Reads and checks every entry and keeps nothing.
pub struct DiscardSink;

impl EntrySink for DiscardSink {
    fn file(&mut self, _name: &str, _data: &mut dyn Read) -> Result<()> {
        Ok(())
    }
}

/// Keeps the files a predicate selects in memory (bounded by the source limits).
pub struct MemorySink<F: Fn(&str) -> bool> {
    keep: F,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl<F: Fn(&str) -> bool> MemorySink<F> {
    pub fn new(keep: F) -> Self {
        MemorySink {
            keep,
            files: BTreeMap::new(),
        }
    }
}

impl<F: Fn(&str) -> bool> EntrySink for MemorySink<F> {
    fn file(&mut self, name: &str, data: &mut dyn Read) -> Result<()> {
        if (self.keep)(name) {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf)
                .map_err(|e| Error::io("read entry", name, e))?;
            self.files.insert(name.to_string(), buf);
        }
        Ok(())
    }
}

/// Maps a source name to its destination, or `None` to skip it.
pub type SelectFn<'a> = Box<dyn FnMut(&str) -> Option<String> + 'a>;

/// Writes selected files under a root directory (normally inside the staging area),
/// with create-new semantics, never following links, mode 0644/0755.
pub struct DirSink<'a> {
    root: PathBuf,
    select: SelectFn<'a>,
    pending: BTreeMap<String, String>,
    /// Records of written files, with their destination paths relative to `root`.
    pub written: Vec<FileRecord>,
}

impl<'a> DirSink<'a> {
    /// `select` maps a source name to its destination below `root`, or `None` to skip it.
    pub fn new(root: impl Into<PathBuf>, select: impl FnMut(&str) -> Option<String> + 'a) -> Self {
        DirSink {
            root: root.into(),
            select: Box::new(select),
            pending: BTreeMap::new(),
            written: Vec::new(),
        }
    }
}

impl EntrySink for DirSink<'_> {
    fn directory(&mut self, name: &str) -> Result<()> {
        if let Some(dest) = (self.select)(name) {
            let p = self.root.join(&dest);
            crate::fsutil::create_dir_all(&p)?;
        }
        Ok(())
    }

    /// Files are not synced one by one: [`crate::Staging::publish`] makes the whole
    /// staging tree durable before anything refers to it.
    fn file(&mut self, name: &str, data: &mut dyn Read) -> Result<()> {
        let Some(dest) = (self.select)(name) else {
            return Ok(());
        };
        let p = self.root.join(&dest);
        write_new(&p, data)?;
        self.pending.insert(name.to_string(), dest);
        Ok(())
    }

    fn destinations(&mut self) -> Option<&mut dyn Destinations> {
        Some(self)
    }

    fn finished(&mut self, record: &FileRecord) {
        if let Some(dest) = self.pending.remove(&record.path) {
            self.written.push(FileRecord {
                path: dest,
                size: record.size,
                sha256: record.sha256.clone(),
            });
        }
    }
}

impl Destinations for DirSink<'_> {
    fn destination(&mut self, name: &str) -> Option<PathBuf> {
        let dest = (self.select)(name)?;
        let p = self.root.join(&dest);
        self.pending.insert(name.to_string(), dest);
        Some(p)
    }
}

/// Writes a new file at `p` (its parents created), as a [`DirSink`] does.
fn write_new(p: &Path, data: &mut dyn Read) -> Result<()> {
    if let Some(parent) = p.parent() {
        crate::fsutil::create_dir_all(parent)?;
    }
    let mut f = crate::fsutil::create_new(p)?;
    crate::fsutil::copy(data, &mut f, p)?;
    Ok(())
}

/// A source opened for reading its bytes: a local file or an object in object storage.
pub(crate) enum Opened {
    Local(File, u64),
    Remote(Box<Remote>),
}

impl Opened {
    pub(crate) fn bytes(&self) -> &dyn ByteSource {
        match self {
            Opened::Local(f, _) => f,
            Opened::Remote(r) => r.as_ref(),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Opened::Local(_, len) => *len,
            Opened::Remote(r) => r.len(),
        }
    }

    fn is_remote(&self) -> bool {
        matches!(self, Opened::Remote(_))
    }
}

/// Decides the kind of a source from its content, never from its name.
pub fn detect(path: &Path) -> Result<SourceKind> {
    open(path).map(|(kind, _)| kind)
}

/// Opens a source and decides its kind from its content (a directory is not opened).
pub(crate) fn open(path: &Path) -> Result<(SourceKind, Option<Opened>)> {
    if is_remote(path) {
        let r = Remote::open(path).map_err(|e| match e {
            remote::OpenError::NotFound => Error::SourceMissing {
                path: path.to_path_buf(),
            },
            remote::OpenError::Usage(msg) => Error::Usage(msg),
            remote::OpenError::Io(e) => Error::io("open", path, e),
        })?;
        let kind = sniff(path, &r)?;
        return Ok((kind, Some(Opened::Remote(Box::new(r)))));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::SourceMissing {
                path: path.to_path_buf(),
            }
        } else {
            Error::io("stat", path, e)
        }
    })?;
    let meta = if meta.file_type().is_symlink() {
        // A mount point or a link given by the user is fine at the top level.
        std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?
    } else {
        meta
    };
    if meta.is_dir() {
        return Ok((SourceKind::Directory, None));
    }
    if !meta.is_file() {
        return Err(Error::UnsupportedSource {
            path: path.to_path_buf(),
            detail: "it is a special file".into(),
        });
    }
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    let kind = sniff(path, &f)?;
    Ok((kind, Some(Opened::Local(f, len))))
}

/// The kind of a file source from its first bytes.
fn sniff(path: &Path, src: &dyn ByteSource) -> Result<SourceKind> {
    let mut head = [0u8; 512];
    let n = read_full_at(src, &mut head, 0).map_err(|e| Error::io("read", path, e))?;
    let head = &head[..n];
    if n == 0 {
        return Err(Error::UnsupportedSource {
            path: path.to_path_buf(),
            detail: "the file is empty".into(),
        });
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(SourceKind::Zip);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(SourceKind::TarGz);
    }
    if n >= 262 && &head[257..262] == b"ustar" {
        return Ok(SourceKind::Tar);
    }
    Err(Error::UnsupportedSource {
        path: path.to_path_buf(),
        detail: format!(
            "unknown content (first bytes {})",
            hex::encode(&head[..n.min(8)])
        ),
    })
}

/// Reads from `at` until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(f: &dyn ByteSource, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads a source of any kind through `sink`, applying every rule, and lists what it held.
pub fn read_source(path: &Path, opts: &ReadOptions, sink: &mut dyn EntrySink) -> Result<Listing> {
    read_source_threads(path, opts, sink, None)
}

/// [`read_source`] with `threads` threads (by default: by the size of the source and the
/// machine, see [`worker_threads`]).
fn read_source_threads(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn EntrySink,
    threads: Option<usize>,
) -> Result<Listing> {
    let start = Instant::now();
    let (kind, opened) = open(path)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut w = Walker::new(path, opts);
    let (size, sha256) = match (kind, &opened) {
        (SourceKind::Zip, Some(opened)) => {
            let src = opened.bytes();
            let len = opened.len();
            let progress = Progress::new(path, Some(len));
            // An object is read over the network: several ranges in flight whatever the
            // number of cores.
            let threads = threads.unwrap_or_else(|| {
                if opened.is_remote() {
                    REMOTE_THREADS
                } else {
                    worker_threads(len)
                }
            });
            if threads > 1 {
                // The source's sha256 on its own thread, alongside the entries.
                let cancel = AtomicBool::new(false);
                std::thread::scope(|s| {
                    let hasher = s.spawn(|| hash_source(src, len, &cancel));
                    let read = read_zip(path, src, len, &mut w, sink, &progress, threads);
                    if read.is_err() {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    let hashed = hasher
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p));
                    read?;
                    hashed.map_err(|e| Error::io("read", path, e))
                })?
            } else {
                let hashed = hash_source(src, len, &AtomicBool::new(false))
                    .map_err(|e| Error::io("read", path, e))?;
                read_zip(path, src, len, &mut w, sink, &progress, 1)?;
                hashed
            }
        }
        (SourceKind::Tar | SourceKind::TarGz, Some(opened)) => read_tar(
            path,
            kind,
            opened.bytes(),
            opened.len(),
            &mut w,
            sink,
            threads,
        )?,
        _ => read_dir(path, &mut w, sink)?,
    };
    if w.files.is_empty() {
        return Err(Error::BadArchive {
            path: path.to_path_buf(),
            detail: "it holds no files".into(),
        });
    }
    tracing::debug!(
        source = %path.display(),
        files = w.files.len(),
        bytes = w.total,
        seconds = start.elapsed().as_secs_f64(),
        "source read"
    );
    Ok(Listing {
        source: SourceInfo {
            file_name,
            kind,
            size,
            sha256,
        },
        files: w.files,
        dirs: w.dirs,
    })
}

/// Sources smaller than this are read on one thread: starting threads would cost more
/// than they save. The environment variable `ARTIFACT_PARALLEL_MIN_BYTES` overrides it
/// (with 0, the test suites put every hostile archive through the threaded paths too).
pub const PARALLEL_MIN_BYTES: u64 = 4 << 20;
/// At most this many threads work on one source (each holds its own buffers).
const MAX_THREADS: usize = 4;
/// Threads reading the entries of a zip in object storage, each with its own ranged GET
/// in flight (network-bound: not limited by the cores).
const REMOTE_THREADS: usize = 4;

/// How many threads may work on a source of `len` bytes.
fn worker_threads(len: u64) -> usize {
    static MIN: OnceLock<u64> = OnceLock::new();
    let min = *MIN.get_or_init(|| {
        std::env::var("ARTIFACT_PARALLEL_MIN_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(PARALLEL_MIN_BYTES)
    });
    if len < min {
        return 1;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS)
}

/// Size and sha256 (hex) of a whole source, read forward on its own (by offset for a
/// file, one GET for an object) so that other threads can read it at the same time;
/// stops early (with an error) once `cancel` is set. A source that is not `len` bytes
/// long any more is an error.
fn hash_source(src: &dyn ByteSource, len: u64, cancel: &AtomicBool) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut pos = 0u64;
    let mut stream = src.range(0, u64::MAX)?;
    crate::fsutil::with_buffer(|buf| loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = match stream.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        pos += n as u64;
    })?;
    if pos != len {
        return Err(io::Error::other(format!(
            "the source changed while it was read: {pos} bytes, {len} when opened"
        )));
    }
    Ok((pos, hex::encode(h.finalize())))
}

/// Seconds between two progress lines.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Logs how far the reading of a source is, at info level every [`PROGRESS_EVERY`]:
/// source bytes read (for a zip, of its entries' data), their total when known (not for
/// a directory), and the rate. Shared by the threads.
struct Progress {
    source: String,
    start: Instant,
    total: AtomicU64,
    known_total: bool,
    done: AtomicU64,
    /// Milliseconds after `start` when the next line is due.
    next_ms: AtomicU64,
}

impl Progress {
    fn new(path: &Path, total: Option<u64>) -> Progress {
        Progress {
            source: path.display().to_string(),
            start: Instant::now(),
            total: AtomicU64::new(total.unwrap_or(0)),
            known_total: total.is_some(),
            done: AtomicU64::new(0),
            next_ms: AtomicU64::new(PROGRESS_EVERY.as_millis() as u64),
        }
    }

    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn add(&self, n: usize) {
        let done = self.done.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        let elapsed = self.start.elapsed();
        let ms = elapsed.as_millis() as u64;
        if ms < next
            || self
                .next_ms
                .compare_exchange(
                    next,
                    ms + PROGRESS_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let rate_mb_s = done as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9);
        match self.known_total.then(|| self.total.load(Ordering::Relaxed)) {
            Some(total) => tracing::info!(
                source = %self.source,
                bytes_done = done.min(total),
                total,
                percent = (done.min(total) as f64 * 1000.0 / total.max(1) as f64).round() / 10.0,
                rate_mb_s = (rate_mb_s * 10.0).round() / 10.0,
                "progress"
            ),
            None => tracing::info!(
                source = %self.source,
                bytes_done = done,
                rate_mb_s = (rate_mb_s * 10.0).round() / 10.0,
                "progress"
            ),
        }
    }
}

/// A fault met while reading an entry's bytes, reported in preference to the sink's error.
#[derive(Debug)]
enum Fault {
    Limit {
        what: &'static str,
        limit: u64,
        actual: u64,
        flag: &'static str,
    },
    Read(String),
    /// The object store failed or lied (see [`remote::RemoteFault`]).
    Source(String),
}

struct Guard<'r> {
    inner: &'r mut dyn Read,
    hasher: Sha256,
    count: u64,
    max_file: u64,
    total_before: u64,
    max_total: u64,
    compressed: Option<u64>,
    max_ratio: u64,
    fault: Option<Fault>,
}

impl Read for Guard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fault.is_some() {
            return Err(io::Error::other("entry already failed"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                if let Some(msg) = remote::remote_fault(&e) {
                    self.fault = Some(Fault::Source(msg));
                    return Err(e);
                }
                let msg = describe_read_error(&e);
                self.fault = Some(Fault::Read(msg.clone()));
                return Err(io::Error::other(msg));
            }
        };
        self.count += n as u64;
        let fault = if self.count > self.max_file {
            Some(Fault::Limit {
                what: "file size",
                limit: self.max_file,
                actual: self.count,
                flag: "--max-file-bytes",
            })
        } else if self.total_before.saturating_add(self.count) > self.max_total {
            Some(Fault::Limit {
                what: "total size",
                limit: self.max_total,
                actual: self.total_before.saturating_add(self.count),
                flag: "--max-total-bytes",
            })
        } else {
            match self.compressed {
                Some(c)
                    if self.count > RATIO_GRACE_BYTES
                        && self.count > c.max(1).saturating_mul(self.max_ratio) =>
                {
                    Some(Fault::Limit {
                        what: "compression ratio",
                        limit: self.max_ratio,
                        actual: self.count / c.max(1),
                        flag: "--max-ratio",
                    })
                }
                _ => None,
            }
        };
        if let Some(f) = fault {
            self.fault = Some(f);
            return Err(io::Error::other("limit exceeded"));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn describe_read_error(e: &io::Error) -> String {
    let s = e.to_string();
    if s.to_ascii_lowercase().contains("checksum") {
        "CRC-32 mismatch: the data does not match its checksum".into()
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        "truncated: the data ends early".into()
    } else {
        format!("cannot read its data: {s}")
    }
}

struct Walker<'p> {
    path: &'p Path,
    opts: &'p ReadOptions,
    names: NameSet,
    entries: u64,
    total: u64,
    files: Vec<FileRecord>,
    dirs: Vec<String>,
}

impl<'p> Walker<'p> {
    fn new(path: &'p Path, opts: &'p ReadOptions) -> Self {
        Walker {
            path,
            opts,
            names: NameSet::default(),
            entries: 0,
            total: 0,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }

    fn unsafe_entry(&self, entry: &str, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            path: self.path.to_path_buf(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn bad_entry(&self, entry: &str, detail: impl Into<String>) -> Error {
        Error::BadEntry {
            path: self.path.to_path_buf(),
            entry: entry.to_string(),
            detail: detail.into(),
        }
    }

    /// Checks a raw name; `Ok(None)` means "noise, pass over it".
    fn admit(&mut self, raw: &str, is_dir: bool) -> Result<Option<String>> {
        let name = normalize_entry_name(raw, &self.opts.limits)
            .map_err(|reason| self.unsafe_entry(raw, reason))?;
        if self.opts.skip_noise && is_archive_noise(&name) {
            return Ok(None);
        }
        self.entries += 1;
        if self.entries > self.opts.limits.max_entries {
            return Err(Error::LimitExceeded {
                path: self.path.to_path_buf(),
                entry: Some(name),
                what: "entry count",
                limit: self.opts.limits.max_entries,
                actual: self.entries,
                flag: "--max-entries",
            });
        }
        self.names
            .insert(&name, is_dir)
            .map_err(|reason| self.unsafe_entry(raw, reason))?;
        Ok(Some(name))
    }

    fn dir(&mut self, raw: &str, sink: &mut dyn EntrySink) -> Result<()> {
        if is_root_name(raw) {
            return Ok(());
        }
        if let Some(name) = self.admit(raw, true)? {
            sink.directory(&name)?;
            self.dirs.push(name);
        }
        Ok(())
    }

    fn file(
        &mut self,
        raw: &str,
        declared: Option<u64>,
        compressed: Option<u64>,
        reader: &mut dyn Read,
        sink: &mut dyn EntrySink,
    ) -> Result<()> {
        let Some(name) = self.admit(raw, false)? else {
            return drain_noise(self.path, raw, reader);
        };
        let check = EntryCheck {
            path: self.path,
            limits: self.opts.limits,
            declared,
            compressed,
            total_before: self.total,
        };
        let record = check.run(name, reader, &mut |name, data| sink.file(name, data))?;
        self.total += record.size;
        sink.finished(&record);
        self.files.push(record);
        Ok(())
    }
}

/// Reads an entry the walker passes over (archive noise), so its data is still checked.
fn drain_noise(path: &Path, raw: &str, reader: &mut dyn Read) -> Result<()> {
    io::copy(reader, &mut io::sink()).map_err(|e| Error::BadEntry {
        path: path.to_path_buf(),
        entry: raw.to_string(),
        detail: e.to_string(),
    })?;
    Ok(())
}

/// The checks of one admitted file entry: its limits (counted on the bytes read, against
/// the total of the files before it), its declared size, and its read faults.
#[derive(Clone, Copy)]
struct EntryCheck<'p> {
    path: &'p Path,
    limits: Limits,
    declared: Option<u64>,
    compressed: Option<u64>,
    /// Bytes of the files read before this one.
    total_before: u64,
}

impl EntryCheck<'_> {
    /// Hands `reader`, guarded and hashed, to `consume`, reads whatever it left, and
    /// returns the entry's record. A read fault (limit, CRC, truncation) is reported in
    /// preference to `consume`'s own error.
    fn run(
        &self,
        name: String,
        reader: &mut dyn Read,
        consume: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>,
    ) -> Result<FileRecord> {
        let limits = self.limits;
        let mut g = Guard {
            inner: reader,
            hasher: Sha256::new(),
            count: 0,
            max_file: limits.max_file_bytes,
            total_before: self.total_before,
            max_total: limits.max_total_bytes,
            compressed: self.compressed,
            max_ratio: limits.max_ratio,
            fault: None,
        };
        let sink_result = consume(&name, &mut g);
        let drain = match sink_result {
            Ok(()) => drain_guard(&mut g),
            Err(_) => Ok(()),
        };
        let bad_entry = |name: &str, detail: String| Error::BadEntry {
            path: self.path.to_path_buf(),
            entry: name.to_string(),
            detail,
        };
        if let Some(fault) = g.fault.take() {
            return Err(match fault {
                Fault::Limit {
                    what,
                    limit,
                    actual,
                    flag,
                } => Error::LimitExceeded {
                    path: self.path.to_path_buf(),
                    entry: Some(name),
                    what,
                    limit,
                    actual,
                    flag,
                },
                Fault::Read(detail) => bad_entry(&name, detail),
                Fault::Source(detail) => Error::Io {
                    op: "read",
                    path: self.path.to_path_buf(),
                    source: io::Error::other(format!("entry {name:?}: {detail}")),
                },
            });
        }
        sink_result?;
        drain.map_err(|e| bad_entry(&name, e.to_string()))?;
        if let Some(d) = self.declared {
            if d != g.count {
                return Err(bad_entry(
                    &name,
                    format!("declared size {d} but {} bytes were read", g.count),
                ));
            }
        }
        Ok(FileRecord {
            path: name,
            size: g.count,
            sha256: hex::encode(g.hasher.finalize()),
        })
    }
}

/// Reads what a sink left of an entry (through its guard, so every byte is checked).
fn drain_guard(g: &mut Guard) -> io::Result<()> {
    crate::fsutil::with_buffer(|buf| loop {
        match g.read(buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    })
}

/// A source that is not a well-formed archive of its kind.
fn bad_archive(path: &Path, detail: impl Into<String>) -> Error {
    Error::BadArchive {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

mod dirtree;
pub mod remote;
mod tarfile;
mod zipfile;

pub use remote::{is_remote, S3Env};
use remote::{ByteSource, Remote};

use dirtree::read_dir;
use tarfile::read_tar;
use zipfile::read_zip;

#[cfg(test)]
mod tests;
