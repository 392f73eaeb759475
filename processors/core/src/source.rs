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
use std::os::unix::fs::FileExt;
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

/// Decides the kind of a source from its content, never from its name.
pub fn detect(path: &Path) -> Result<SourceKind> {
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
        return Ok(SourceKind::Directory);
    }
    if !meta.is_file() {
        return Err(Error::UnsupportedSource {
            path: path.to_path_buf(),
            detail: "it is a special file".into(),
        });
    }
    let mut head = [0u8; 512];
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let n = read_full(&mut f, &mut head).map_err(|e| Error::io("read", path, e))?;
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
fn read_full_at(f: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
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

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
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
    let kind = detect(path)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut w = Walker::new(path, opts);
    let (size, sha256) = match kind {
        SourceKind::Zip => {
            let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::io("stat", path, e))?
                .len();
            let progress = Progress::new(path, Some(len));
            let threads = threads.unwrap_or_else(|| worker_threads(len));
            if threads > 1 {
                // The source's sha256 on its own thread, alongside the entries.
                let cancel = AtomicBool::new(false);
                std::thread::scope(|s| {
                    let hasher = s.spawn(|| hash_source(&file, &cancel));
                    let read = read_zip(path, &file, len, &mut w, sink, &progress, threads);
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
                let hashed = hash_source(&file, &AtomicBool::new(false))
                    .map_err(|e| Error::io("read", path, e))?;
                read_zip(path, &file, len, &mut w, sink, &progress, 1)?;
                hashed
            }
        }
        SourceKind::Tar | SourceKind::TarGz => read_tar(path, kind, &mut w, sink, threads)?,
        SourceKind::Directory => read_dir(path, &mut w, sink)?,
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

/// Size and sha256 (hex) of a whole file, read by offset so that other threads can read
/// it at the same time; stops early (with an error) once `cancel` is set.
fn hash_source(file: &File, cancel: &AtomicBool) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut pos = 0u64;
    crate::fsutil::with_buffer(|buf| loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = match file.read_at(buf, pos) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        pos += n as u64;
    })?;
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

// ---------------------------------------------------------------- zip

const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const LOCAL_SIG: u32 = 0x0403_4b50;

fn bad_archive(path: &Path, detail: impl Into<String>) -> Error {
    Error::BadArchive {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Where the central directory is, as the end records declare it.
struct ZipTail {
    /// Entries the end record declares.
    entries: u64,
    cd_offset: u64,
    /// Where the central directory must end: the zip64 end record, or the end record.
    cd_end: u64,
}

fn le(b: &[u8], at: usize, n: usize) -> u64 {
    b[at..at + n]
        .iter()
        .rev()
        .fold(0u64, |acc, x| (acc << 8) | *x as u64)
}

/// Reads the end records. The end-of-central-directory record must end the file exactly,
/// its comment must not hide another archive, a zip64 end record (when a locator points
/// at one) must sit right before the locator, the central directory must end where those
/// records begin, and the declared entry count must fit the limit and the directory's
/// size, all before the zip crate allocates anything for the entries.
fn check_zip_tail(path: &Path, f: &File, len: u64, limits: &Limits) -> Result<ZipTail> {
    let mut f = f;
    let tail_len = len.min(22 + 65535);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| Error::io("read", path, e))?;
    let mut seen_any = false;
    let mut found = None;
    for i in (0..tail.len().saturating_sub(21)).rev() {
        if &tail[i..i + 4] != EOCD_SIG {
            continue;
        }
        seen_any = true;
        let comment_len = le(&tail, i + 20, 2) as usize;
        if i + 22 + comment_len == tail.len() {
            found = Some(i);
            break;
        }
    }
    // An end record inside the comment of an earlier one (which also reaches the end of
    // the file) means the comment hides a second archive.
    if let Some(i) = found {
        for j in (0..i).rev() {
            if &tail[j..j + 4] == EOCD_SIG
                && j + 22 <= tail.len()
                && j + 22 + le(&tail, j + 20, 2) as usize == tail.len()
            {
                return Err(bad_archive(
                    path,
                    "the archive comment holds another zip record",
                ));
            }
        }
    }
    let Some(i) = found else {
        return Err(bad_archive(
            path,
            if seen_any {
                "data after the end-of-central-directory record"
            } else {
                "no end-of-central-directory record: the zip is truncated or not a zip"
            },
        ));
    };
    let comment = &tail[i + 22..];
    if comment
        .windows(4)
        .any(|w| w == EOCD_SIG || w == b"PK\x03\x04" || w == b"PK\x01\x02")
    {
        return Err(bad_archive(
            path,
            "the archive comment holds another zip record",
        ));
    }
    let eocd_pos = len - tail_len + i as u64;
    let e = &tail[i..i + 22];
    let (disk, cd_disk) = (le(e, 4, 2), le(e, 6, 2));
    let (mut entries_disk, mut entries) = (le(e, 8, 2), le(e, 10, 2));
    let (mut cd_size, mut cd_offset) = (le(e, 12, 4), le(e, 16, 4));
    let mut disks = (disk, cd_disk);
    let mut cd_end = eocd_pos;
    // A zip64 end-of-central-directory locator right before the end record.
    if eocd_pos >= 20 {
        let mut loc = [0u8; 20];
        f.seek(SeekFrom::Start(eocd_pos - 20))
            .and_then(|_| f.read_exact(&mut loc))
            .map_err(|e| Error::io("read", path, e))?;
        if &loc[..4] == b"PK\x06\x07" {
            let z_off = le(&loc, 8, 8);
            let mut z = [0u8; 56];
            let ok = z_off
                .checked_add(56)
                .is_some_and(|end| end <= eocd_pos - 20)
                && f.seek(SeekFrom::Start(z_off))
                    .and_then(|_| f.read_exact(&mut z))
                    .is_ok()
                && &z[..4] == b"PK\x06\x06"
                && le(&z, 4, 8).checked_add(12 + z_off) == Some(eocd_pos - 20);
            if !ok {
                return Err(bad_archive(
                    path,
                    "the zip64 end-of-central-directory locator points at no zip64 end record right before it",
                ));
            }
            disks = (le(&z, 16, 4), le(&z, 20, 4));
            entries_disk = le(&z, 24, 8);
            entries = le(&z, 32, 8);
            cd_size = le(&z, 40, 8);
            cd_offset = le(&z, 48, 8);
            cd_end = z_off;
        }
    }
    if disks != (0, 0) || entries_disk != entries {
        return Err(bad_archive(
            path,
            "split or spanned (multi-disk) archives are not supported",
        ));
    }
    if cd_offset.checked_add(cd_size) != Some(cd_end) {
        return Err(bad_archive(
            path,
            format!(
                "the central directory ({cd_size} bytes at offset {cd_offset}) does not end where the end records begin (offset {cd_end})"
            ),
        ));
    }
    if entries > limits.max_entries {
        return Err(Error::LimitExceeded {
            path: path.to_path_buf(),
            entry: None,
            what: "entry count",
            limit: limits.max_entries,
            actual: entries,
            flag: "--max-entries",
        });
    }
    if entries.saturating_mul(46) > cd_size {
        return Err(bad_archive(
            path,
            format!(
                "the end record declares {entries} entries but the central directory is only {cd_size} bytes"
            ),
        ));
    }
    Ok(ZipTail {
        entries,
        cd_offset,
        cd_end,
    })
}

struct ZipMeta {
    name: String,
    is_dir: bool,
    size: u64,
    compressed: u64,
    /// Stored (false) or deflated (true).
    deflated: bool,
    crc: u32,
    /// Where the entry's data starts.
    data_start: u64,
    /// From the local header to the end of the data and its data descriptor.
    span: (u64, u64),
}

#[allow(clippy::too_many_arguments)]
fn read_zip(
    path: &Path,
    raw: &File,
    len: u64,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
    progress: &Progress,
    threads: usize,
) -> Result<()> {
    let tail = check_zip_tail(path, raw, len, &w.opts.limits)?;
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(SRC_BUFFER, raw))
        .map_err(|e| bad_archive(path, e.to_string()))?;
    // The zip crate keys entries by name, so a repeated name would silently vanish.
    if tail.entries != archive.len() as u64 {
        return Err(bad_archive(
            path,
            format!(
                "duplicate entry: the central directory lists {} entries but only {} distinct names",
                tail.entries,
                archive.len()
            ),
        ));
    }

    // Pass 1: metadata only. Everything that can be refused without inflating is refused here.
    let mut metas = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let f = archive
            .by_index_raw(i)
            .map_err(|e| bad_archive(path, format!("entry #{i}: {e}")))?;
        let name = std::str::from_utf8(f.name_raw())
            .map_err(|_| {
                w.unsafe_entry(&String::from_utf8_lossy(f.name_raw()), "name is not UTF-8")
            })?
            .to_string();
        if f.encrypted() {
            return Err(w.bad_entry(&name, "encrypted entries are not supported"));
        }
        if let Some(mode) = f.unix_mode() {
            match mode & 0o170000 {
                0 | 0o100000 | 0o040000 => {}
                0o120000 => return Err(w.unsafe_entry(&name, "symbolic link")),
                _ => return Err(w.unsafe_entry(&name, "special file (device, FIFO or socket)")),
            }
        }
        let method = f.compression();
        if !matches!(
            method,
            zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
        ) {
            return Err(w.bad_entry(
                &name,
                format!("unsupported compression method {method:?} (only stored and deflate)"),
            ));
        }
        let header_start = f.header_start();
        let compressed = f.compressed_size();
        let central = CentralView {
            name: f.name_raw().to_vec(),
            method: match method {
                zip::CompressionMethod::Stored => 0,
                _ => 8,
            },
            crc: f.crc32(),
            compressed,
            size: f.size(),
        };
        let (data_start, descriptor) =
            check_local_header(path, &name, raw, header_start, len, &central)?;
        let data_end = data_start
            .checked_add(compressed)
            .filter(|end| *end <= len)
            .ok_or_else(|| w.bad_entry(&name, "its data runs past the end of the file"))?;
        let end = if descriptor {
            data_end + check_descriptor(path, &name, raw, data_end, len, &central)?
        } else {
            data_end
        };
        metas.push(ZipMeta {
            is_dir: f.is_dir(),
            size: f.size(),
            compressed,
            deflated: central.method == 8,
            crc: central.crc,
            data_start,
            span: (header_start, end),
            name,
        });
    }
    // The entries must tile the file from its first byte to the central directory: an
    // overlap is a bomb or a differential, and a gap can hide a local entry that only
    // streaming readers (which walk local headers) would see.
    let mut spans: Vec<(u64, u64, &str)> = metas
        .iter()
        .map(|m| (m.span.0, m.span.1, m.name.as_str()))
        .collect();
    spans.sort();
    let mut expected = 0u64;
    let mut previous: Option<&str> = None;
    for &(start, end, name) in &spans {
        if start < expected {
            return Err(bad_archive(
                path,
                format!(
                    "entries {:?} and {name:?} overlap",
                    previous.unwrap_or_default()
                ),
            ));
        }
        if start > expected {
            return Err(bad_archive(
                path,
                format!(
                    "{} bytes before entry {name:?} belong to no entry of the central directory (hidden data or a hidden entry)",
                    start - expected
                ),
            ));
        }
        expected = end;
        previous = Some(name);
    }
    if expected > tail.cd_offset {
        return Err(bad_archive(
            path,
            format!(
                "entry {:?} overlaps the central directory",
                previous.unwrap_or_default()
            ),
        ));
    }
    if expected < tail.cd_offset {
        return Err(bad_archive(
            path,
            format!(
                "{} bytes before the central directory belong to no entry (hidden data or a hidden entry)",
                tail.cd_offset - expected
            ),
        ));
    }
    debug_assert!(tail.cd_end >= tail.cd_offset);

    drop(archive);

    // Pass 2: inflate, check and hand over each entry.
    progress.set_total(metas.iter().map(|m| m.compressed).sum());
    if threads > 1 && sink.destinations().is_some() {
        return read_zip_parallel(path, raw, progress, &metas, w, sink, threads);
    }
    let mut entries = ZipEntries::new(raw, progress);
    for m in &metas {
        if m.is_dir {
            w.dir(&m.name, sink)?;
            continue;
        }
        let mut data = entries.open(m);
        w.file(&m.name, Some(m.size), Some(m.compressed), &mut data, sink)?;
    }
    Ok(())
}

/// Buffer of the compressed bytes a deflated entry is read through.
const SRC_BUFFER: usize = 64 << 10;

/// Opens the data of zip entries, by offset in the source, reusing one inflater and one
/// buffer for all of them (a thread holds one).
///
/// An entry reads as the zip crate's reader of it would (the crate walks the central
/// directory; its per-entry reader costs an inflater allocation each): stored data is
/// the `compressed` bytes at the entry's data offset, deflated data is inflated from them
/// (`flate2`, so a truncated stream simply ends); more bytes than the declared size fail
/// with "File is larger than its declared uncompressed size" as soon as they are read,
/// and at the end the CRC-32 must match ("Invalid checksum").
struct ZipEntries<'a> {
    file: &'a File,
    progress: &'a Progress,
    inflater: Option<flate2::bufread::DeflateDecoder<Range<'a>>>,
}

impl<'a> ZipEntries<'a> {
    fn new(file: &'a File, progress: &'a Progress) -> Self {
        ZipEntries {
            file,
            progress,
            inflater: None,
        }
    }

    fn open(&mut self, m: &ZipMeta) -> ZipEntryReader<'_, 'a> {
        let mut range = Range {
            file: self.file,
            progress: self.progress,
            pos: m.data_start,
            end: m.data_start.saturating_add(m.compressed),
            buf: Vec::new(),
            at: 0,
            filled: 0,
        };
        let data = if m.deflated {
            let inflater = match self.inflater.take() {
                Some(mut d) => {
                    range.buf = std::mem::take(&mut d.get_mut().buf);
                    d.reset(range);
                    d
                }
                None => flate2::bufread::DeflateDecoder::new(range),
            };
            EntryData::Deflated(self.inflater.insert(inflater))
        } else {
            EntryData::Stored(range)
        };
        ZipEntryReader {
            data,
            crc: crc32fast::Hasher::new(),
            expected_crc: m.crc,
            declared: m.size,
            count: 0,
        }
    }
}

/// The compressed bytes `pos..end` of the source, read by offset.
struct Range<'a> {
    file: &'a File,
    progress: &'a Progress,
    pos: u64,
    end: u64,
    /// For [`BufRead`]: `buf[at..filled]` are the bytes before `pos`.
    buf: Vec<u8>,
    at: usize,
    filled: usize,
}

impl Read for Range<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at < self.filled {
            let n = out.len().min(self.filled - self.at);
            out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        let want = out
            .len()
            .min((self.end - self.pos).min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut out[..want], self.pos)?;
        self.pos += n as u64;
        self.progress.add(n);
        Ok(n)
    }
}

impl io::BufRead for Range<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at == self.filled {
            if self.buf.len() < SRC_BUFFER {
                self.buf.resize(SRC_BUFFER, 0);
            }
            let want = (self.end - self.pos).min(SRC_BUFFER as u64) as usize;
            let n = if want == 0 {
                0
            } else {
                self.file.read_at(&mut self.buf[..want], self.pos)?
            };
            self.pos += n as u64;
            self.progress.add(n);
            self.at = 0;
            self.filled = n;
        }
        Ok(&self.buf[self.at..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.filled);
    }
}

enum EntryData<'d, 'a> {
    Stored(Range<'a>),
    Deflated(&'d mut flate2::bufread::DeflateDecoder<Range<'a>>),
}

/// One zip entry's data, checked against its declared size and CRC-32 (see [`ZipEntries`]).
struct ZipEntryReader<'d, 'a> {
    data: EntryData<'d, 'a>,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    declared: u64,
    count: u64,
}

impl Read for ZipEntryReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.data {
            EntryData::Stored(r) => r.read(buf)?,
            EntryData::Deflated(d) => d.read(buf)?,
        };
        self.count = self.count.saturating_add(n as u64);
        if self.count > self.declared {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "File is larger than its declared uncompressed size",
            ));
        }
        if n == 0 && !buf.is_empty() && self.crc.clone().finalize() != self.expected_crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "Invalid checksum",
            ));
        }
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// A file entry of a zip, planned on the reading thread and read by a worker.
struct ZipJob<'a> {
    /// Position among the planned jobs.
    index: usize,
    meta: &'a ZipMeta,
    /// `None` for archive noise the walker passes over (its data is still read).
    file: Option<PlannedFile<'a>>,
}

struct PlannedFile<'a> {
    name: String,
    /// Where the file goes (`None`: checked, not written).
    dest: Option<PathBuf>,
    check: EntryCheck<'a>,
}

/// Batches planned ahead of the workers: this keeps the planning thread from running
/// far past an error.
const BATCHES_AHEAD: usize = 8;
/// A batch holds consecutive entries of one directory, up to this many bytes...
const BATCH_BYTES: u64 = 4 << 20;
/// ...and this many entries.
const BATCH_ENTRIES: usize = 256;

/// Pass 2 for a sink with [`Destinations`]: this thread walks the entries in order and
/// hands them, in batches, to a few workers that create, inflate, check, hash and write
/// them, each reading its own entries' bytes by offset.
///
/// A batch is a run of consecutive entries of one directory (a large file is a batch of
/// its own): creating files in a directory takes that directory's lock (and, on a busy
/// filesystem, a search of the inode allocator), so workers create files in different
/// directories at the same time rather than queue on one.
///
/// The result is the sequential walk's, error included: names, directories and
/// destinations are decided in entry order and stop at the first refusal; each file is
/// checked against the total of the files before it (their declared sizes, which must be
/// their real sizes for the walk to get this far); the first failing entry in entry order
/// is reported (a refused name only when no file before it failed), and records are
/// handed over in entry order. Each worker holds one entry at a time, with fixed buffers:
/// memory does not depend on the entries' sizes.
fn read_zip_parallel<'a>(
    path: &'a Path,
    raw: &File,
    progress: &Progress,
    metas: &'a [ZipMeta],
    w: &mut Walker<'_>,
    sink: &mut dyn EntrySink,
    threads: usize,
) -> Result<()> {
    let results = std::sync::Mutex::new(Vec::new());
    let first_failed = AtomicUsize::new(usize::MAX);
    let work = |queue: &std::sync::Mutex<mpsc::Receiver<Vec<ZipJob>>>| {
        let mut entries = ZipEntries::new(raw, progress);
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(batch) = next else { break };
            for job in batch {
                if job.index > first_failed.load(Ordering::Relaxed) {
                    break;
                }
                let index = job.index;
                let r = run_zip_job(path, &mut entries, job);
                if r.is_err() {
                    first_failed.fetch_min(index, Ordering::Relaxed);
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((index, r));
            }
        }
    };
    let (tx, rx) = mpsc::sync_channel(BATCHES_AHEAD);
    let queue = std::sync::Mutex::new(rx);
    let (planned, stop) = std::thread::scope(|s| {
        let queue = &queue;
        let work = &work;
        // The planning thread mostly waits for room in the queue, then joins the workers.
        for _ in 0..threads {
            s.spawn(move || work(queue));
        }
        let planned = plan_zip_jobs(path, metas, w, sink, &tx, &first_failed);
        drop(tx);
        work(queue);
        planned
    });

    // Hand over the records in entry order up to the first failure, as the sequential
    // walk does.
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut handed = 0;
    for (i, (index, result)) in results.into_iter().enumerate() {
        if index != i {
            // Jobs are only passed over after one before them failed.
            return Err(bad_archive(path, format!("entry #{i} not read")));
        }
        if let Some(rec) = result? {
            w.total += rec.size;
            sink.finished(&rec);
            w.files.push(rec);
        }
        handed += 1;
    }
    if let Some(e) = stop {
        return Err(e);
    }
    if handed != planned {
        return Err(bad_archive(path, format!("entry #{handed} not read")));
    }
    Ok(())
}

/// Walks the entries in order, as the sequential walk does up to reading their data, and
/// sends the file entries to the workers in batches. Stops at the first refused entry
/// (returned) or once a worker failed. Returns how many jobs it sent.
fn plan_zip_jobs<'a>(
    path: &'a Path,
    metas: &'a [ZipMeta],
    w: &mut Walker<'_>,
    sink: &mut dyn EntrySink,
    batches: &mpsc::SyncSender<Vec<ZipJob<'a>>>,
    first_failed: &AtomicUsize,
) -> (usize, Option<Error>) {
    let mut sent = 0;
    let mut total = w.total;
    let mut batch: Vec<ZipJob> = Vec::new();
    let mut batch_bytes = 0u64;
    let mut stop = None;
    for m in metas {
        if first_failed.load(Ordering::Relaxed) != usize::MAX {
            break;
        }
        if m.is_dir {
            if let Err(e) = w.dir(&m.name, sink) {
                stop = Some(e);
                break;
            }
            continue;
        }
        let file = match w.admit(&m.name, false) {
            Ok(None) => None,
            Ok(Some(name)) => {
                let dest = sink.destinations().and_then(|d| d.destination(&name));
                let check = EntryCheck {
                    path,
                    limits: w.opts.limits,
                    declared: Some(m.size),
                    compressed: Some(m.compressed),
                    total_before: total,
                };
                total = total.saturating_add(m.size);
                Some(PlannedFile { name, dest, check })
            }
            Err(e) => {
                stop = Some(e);
                break;
            }
        };
        let parent = |j: &ZipJob| j.meta.name.rsplit_once('/').map(|(d, _)| d.to_string());
        let job = ZipJob {
            index: sent,
            meta: m,
            file,
        };
        if let Some(last) = batch.last() {
            if parent(last) != parent(&job)
                || batch_bytes.saturating_add(m.size) > BATCH_BYTES
                || batch.len() >= BATCH_ENTRIES
            {
                if batches.send(std::mem::take(&mut batch)).is_err() {
                    break;
                }
                batch_bytes = 0;
            }
        }
        batch_bytes = batch_bytes.saturating_add(m.size);
        batch.push(job);
        sent += 1;
    }
    if !batch.is_empty() {
        // Cannot fail: the receiving end outlives this function.
        let _ = batches.send(batch);
    }
    (sent, stop)
}

fn run_zip_job(path: &Path, entries: &mut ZipEntries, job: ZipJob) -> Result<Option<FileRecord>> {
    let mut data = entries.open(job.meta);
    let Some(planned) = job.file else {
        return drain_noise(path, &job.meta.name, &mut data).map(|()| None);
    };
    let dest = planned.dest;
    planned
        .check
        .run(planned.name, &mut data, &mut |_, data| match &dest {
            Some(p) => write_new(p, data),
            None => Ok(()),
        })
        .map(Some)
}

struct CentralView {
    name: Vec<u8>,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
}

/// Cross-checks a local file header against its central-directory record and returns
/// where the entry's data starts and whether a data descriptor follows the data.
fn check_local_header(
    path: &Path,
    name: &str,
    raw: &File,
    offset: u64,
    len: u64,
    c: &CentralView,
) -> Result<(u64, bool)> {
    let bad = |d: &str| Error::BadEntry {
        path: path.to_path_buf(),
        entry: name.to_string(),
        detail: format!("local header disagrees with the central directory: {d}"),
    };
    // The fixed part and the name the central directory expects, in one read.
    let mut h = vec![0u8; 30 + c.name.len()];
    let got = read_full_at(raw, &mut h, offset)
        .map_err(|_| bad("no local header at the recorded offset"))?;
    if got < 30 {
        return Err(bad("no local header at the recorded offset"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if u32_at(0) != LOCAL_SIG {
        return Err(bad("no local header at the recorded offset"));
    }
    let flags = u16_at(6);
    if flags & 1 != 0 {
        return Err(Error::BadEntry {
            path: path.to_path_buf(),
            entry: name.to_string(),
            detail: "encrypted entries are not supported".into(),
        });
    }
    if u16_at(8) != c.method {
        return Err(bad("compression method"));
    }
    let name_len = u16_at(26) as usize;
    let extra_len = u16_at(28) as u64;
    if got < 30 + name_len.min(c.name.len()) || offset.saturating_add(30 + name_len as u64) > len {
        return Err(bad("truncated local header"));
    }
    if h[30..30 + name_len.min(c.name.len())] != c.name[..] || name_len != c.name.len() {
        return Err(bad("name"));
    }
    let descriptor = flags & 8 != 0;
    if !descriptor {
        if u32_at(14) != c.crc {
            return Err(bad("CRC-32"));
        }
        let (lc, lu) = (u32_at(18), u32_at(22));
        if lc != u32::MAX && (lc as u64 != c.compressed || lu as u64 != c.size) {
            return Err(bad("sizes"));
        }
    }
    let data_start = offset + 30 + name_len as u64 + extra_len;
    if data_start > len {
        return Err(bad("truncated local header"));
    }
    Ok((data_start, descriptor))
}

/// Checks the data descriptor that follows an entry's data (general-purpose flag bit 3,
/// as `java.util.zip` writes) against the central directory and returns its length.
fn check_descriptor(
    path: &Path,
    name: &str,
    raw: &File,
    at: u64,
    len: u64,
    c: &CentralView,
) -> Result<u64> {
    let bad = |d: &str| Error::BadEntry {
        path: path.to_path_buf(),
        entry: name.to_string(),
        detail: format!("data descriptor disagrees with the central directory: {d}"),
    };
    let mut d = [0u8; 24];
    let n = (len - at).min(24) as usize;
    raw.read_exact_at(&mut d[..n], at)
        .map_err(|e| Error::io("read", path, e))?;
    let d = &d[..n];
    let off = if d.len() >= 4 && d[..4] == *b"PK\x07\x08" {
        4
    } else {
        0
    };
    if d.len() < off + 12 {
        return Err(bad("it is missing or truncated"));
    }
    if le(d, off, 4) != c.crc as u64 {
        return Err(bad("CRC-32"));
    }
    if le(d, off + 4, 4) == c.compressed && le(d, off + 8, 4) == c.size {
        return Ok(off as u64 + 12);
    }
    if d.len() >= off + 20 && le(d, off + 4, 8) == c.compressed && le(d, off + 12, 8) == c.size {
        return Ok(off as u64 + 20);
    }
    Err(bad("sizes"))
}

// ---------------------------------------------------------------- tar

/// Counts the bytes read from the underlying file (for the tar.gz ratio) and hashes them.
struct CountingHasher<'p, R> {
    inner: R,
    count: u64,
    hasher: Sha256,
    progress: &'p Progress,
}

impl<R: Read> Read for CountingHasher<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.hasher.update(&buf[..n]);
        self.progress.add(n);
        Ok(n)
    }
}

impl<R: Read> CountingHasher<'_, R> {
    /// Reads (and hashes) the rest of the source; its size and sha256.
    fn finish(mut self) -> io::Result<(u64, String)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.count, hex::encode(self.hasher.finalize())))
    }
}

/// Bytes of a tar stream handed from the inflating thread to the walking one at a time.
const TAR_CHUNK: usize = 256 << 10;
/// Chunks in flight between the two threads (with the one being walked and the one
/// being filled, memory stays at a few hundred kilobytes whatever the source's size).
const TAR_CHUNKS: usize = 4;

enum Chunk {
    Data(Vec<u8>),
    Fault(io::Error),
    End,
}

/// The inflating thread of a tar source: reads and hashes the file, inflates it (tar.gz)
/// and sends the tar stream in chunks, in order, read faults included where they occur;
/// then hashes whatever follows the stream. Stops when the walking side hangs up.
fn produce_tar(
    mut src: CountingHasher<'_, File>,
    gz: bool,
    full: mpsc::SyncSender<Chunk>,
    free: mpsc::Receiver<Vec<u8>>,
) -> io::Result<(u64, String)> {
    let hung_up = || io::Error::other("the reading of the archive stopped");
    {
        let mut stream: Box<dyn Read + '_> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(TAR_CHUNK, &mut src),
            ))
        } else {
            Box::new(&mut src)
        };
        let mut made = 0;
        loop {
            let mut buf = match free.try_recv() {
                Ok(b) => b,
                Err(_) if made < TAR_CHUNKS + 1 => {
                    made += 1;
                    Vec::with_capacity(TAR_CHUNK)
                }
                Err(_) => free.recv().map_err(|_| hung_up())?,
            };
            buf.resize(TAR_CHUNK, 0);
            let mut filled = 0;
            let mut fault = None;
            while filled < buf.len() {
                match stream.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        fault = Some(e);
                        break;
                    }
                }
            }
            let end = filled < buf.len();
            buf.truncate(filled);
            if filled > 0 {
                full.send(Chunk::Data(buf)).map_err(|_| hung_up())?;
            }
            if let Some(e) = fault {
                let _ = full.send(Chunk::Fault(e));
                return Err(hung_up());
            }
            if end {
                break;
            }
        }
        full.send(Chunk::End).map_err(|_| hung_up())?;
    }
    src.finish()
}

/// The walking side of [`produce_tar`]: the tar stream as a reader.
struct ChunkReader {
    full: mpsc::Receiver<Chunk>,
    free: mpsc::Sender<Vec<u8>>,
    cur: Vec<u8>,
    at: usize,
    /// Set once the stream ended or failed: what every later read says.
    done: Option<Result<(), (io::ErrorKind, String)>>,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            match &self.done {
                Some(Ok(())) => return Ok(0),
                Some(Err((kind, msg))) => return Err(io::Error::new(*kind, msg.clone())),
                None => {}
            }
            let next = self
                .full
                .recv()
                .unwrap_or_else(|_| Chunk::Fault(io::Error::other("the inflating thread stopped")));
            match next {
                Chunk::Data(b) => {
                    let old = std::mem::replace(&mut self.cur, b);
                    self.at = 0;
                    let _ = self.free.send(old);
                }
                Chunk::End => self.done = Some(Ok(())),
                Chunk::Fault(e) => {
                    self.done = Some(Err((e.kind(), e.to_string())));
                    return Err(e);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.at);
        out[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Bytes the tar reader may consume for one entry's headers (PAX records, GNU long
/// names, padding) before its data starts: the tar crate keeps them in memory.
pub const TAR_HEADER_BYTES_MAX: u64 = 1 << 20;
/// Zero padding accepted after the end-of-archive marker (tar's blocking factor).
pub const TAR_PADDING_MAX: u64 = 2 << 20;

/// What the tar stream wrapper knows about where the reader is.
#[derive(Default)]
struct TarPos {
    /// Bytes of the (decompressed) tar stream read so far.
    pos: u64,
    /// While the walker reads an entry's data (its own limits apply), no header budget.
    in_data: bool,
    /// Where the current header phase began.
    phase_start: u64,
    fault: Option<TarFault>,
}

enum TarFault {
    Headers(u64),
    Ratio(u64),
}

/// The decompressed tar stream: counts positions, bounds the bytes of each entry's
/// headers, and for tar.gz the whole stream's ratio outside entry data.
struct TarStream<'s, R> {
    inner: R,
    state: &'s std::cell::RefCell<TarPos>,
    /// For tar.gz: the compressed size and the ratio limit.
    ratio: Option<(u64, u64)>,
}

impl<R: Read> Read for TarStream<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut st = self.state.borrow_mut();
        st.pos += n as u64;
        if !st.in_data {
            if let Some((c, ratio)) = self.ratio {
                if st.pos > RATIO_GRACE_BYTES && st.pos > c.max(1).saturating_mul(ratio) {
                    st.fault = Some(TarFault::Ratio(st.pos / c.max(1)));
                    return Err(io::Error::other("compression ratio limit exceeded"));
                }
            }
            if st.pos - st.phase_start > TAR_HEADER_BYTES_MAX {
                st.fault = Some(TarFault::Headers(st.pos - st.phase_start));
                return Err(io::Error::other("entry headers too large"));
            }
        }
        Ok(n)
    }
}

/// Whether the name in the ustar header (`ustar`, prefix and name joined) can be what a
/// writer put there for the entry whose full name (PAX `path` or GNU long name) is
/// `full`. Writers store the full name verbatim when it fits, else a truncated,
/// ASCII-only rendering of it (Python: `?` for non-ASCII, Go: non-ASCII dropped, GNU and
/// libarchive: a shortened prefix). Anything else names another file: a reader that
/// ignores the extension would see a different archive (the "PAX renames the entry"
/// parser differential).
fn ustar_name_agrees(full: &[u8], ustar: &[u8]) -> bool {
    fn trim(b: &[u8]) -> &[u8] {
        let mut b = b;
        while let Some(rest) = b.strip_suffix(b"/") {
            b = rest;
        }
        while let Some(rest) = b.strip_prefix(b"./") {
            b = rest;
        }
        b
    }
    let (full, ustar) = (trim(full), trim(ustar));
    if ustar.is_empty() || full == ustar {
        return true;
    }
    if full.is_ascii() && full.len() <= 100 {
        // It fits the ustar name field as it is: every writer stores it verbatim.
        return false;
    }
    let text = String::from_utf8_lossy(full);
    let question: Vec<u8> = text
        .chars()
        .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
        .collect();
    let dropped: Vec<u8> = text
        .chars()
        .filter(char::is_ascii)
        .map(|c| c as u8)
        .collect();
    [full, &question[..], &dropped[..]]
        .iter()
        .any(|candidate| candidate.starts_with(ustar) || is_abbreviation(candidate, ustar))
}

/// libarchive's ustar rendering of a long name keeps a prefix of the directory part and
/// a prefix of the file name (`build_ustar_entry_name`): every component of `short` is
/// a prefix of the component at the same place counted from the end, or from the start.
fn is_abbreviation(full: &[u8], short: &[u8]) -> bool {
    let f: Vec<&[u8]> = full.split(|b| *b == b'/').collect();
    let s: Vec<&[u8]> = short.split(|b| *b == b'/').collect();
    if s.len() > f.len() || s.is_empty() {
        return false;
    }
    let (Some(fl), Some(sl)) = (f.last(), s.last()) else {
        return false;
    };
    // The file name part: a prefix of the real one (with its extension kept or cut).
    if sl.is_empty() || !(fl.starts_with(sl) || share_ends(fl, sl)) {
        return false;
    }
    s[..s.len() - 1]
        .iter()
        .zip(&f[..f.len() - 1])
        .all(|(a, b)| b.starts_with(a))
}

/// `short` is a head and a tail of `full` glued together (`long_na.txt` for `long_name.txt`).
fn share_ends(full: &[u8], short: &[u8]) -> bool {
    short.len() < full.len()
        && (0..=short.len()).any(|k| full.starts_with(&short[..k]) && full.ends_with(&short[k..]))
}

fn read_tar(
    path: &Path,
    kind: SourceKind,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
    threads: Option<usize>,
) -> Result<(u64, String)> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let compressed_len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let progress = Progress::new(path, Some(compressed_len));
    if threads.unwrap_or_else(|| worker_threads(compressed_len)) > 1 {
        // One thread reads, hashes and inflates; this one walks, hashes and writes.
        let src = CountingHasher {
            inner: file,
            count: 0,
            hasher: Sha256::new(),
            progress: &progress,
        };
        return std::thread::scope(|s| {
            let (full_tx, full_rx) = mpsc::sync_channel(TAR_CHUNKS);
            let (free_tx, free_rx) = mpsc::channel();
            let producer =
                s.spawn(move || produce_tar(src, kind == SourceKind::TarGz, full_tx, free_rx));
            let stream = ChunkReader {
                full: full_rx,
                free: free_tx,
                cur: Vec::new(),
                at: 0,
                done: None,
            };
            let walked = walk_tar(path, kind, compressed_len, Box::new(stream), w, sink);
            let hashed = producer
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            walked?;
            hashed.map_err(|e| bad_archive(path, e.to_string()))
        });
    }
    let counted = std::cell::RefCell::new(CountingHasher {
        inner: BufReader::with_capacity(1 << 16, file),
        count: 0,
        hasher: Sha256::new(),
        progress: &progress,
    });
    struct Shared<'a, 'p, R>(&'a std::cell::RefCell<CountingHasher<'p, R>>);
    impl<R: Read> Read for Shared<'_, '_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.borrow_mut().read(buf)
        }
    }
    let decompressed: Box<dyn Read> = match kind {
        SourceKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(Shared(&counted))),
        _ => Box::new(Shared(&counted)),
    };
    walk_tar(path, kind, compressed_len, decompressed, w, sink)?;
    counted
        .into_inner()
        .finish()
        .map_err(|e| bad_archive(path, e.to_string()))
}

/// Walks the (inflated) tar stream of `path`: every entry, the end-of-archive marker and
/// the padding after it.
fn walk_tar(
    path: &Path,
    kind: SourceKind,
    compressed_len: u64,
    decompressed: Box<dyn Read + '_>,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
) -> Result<()> {
    let state = std::cell::RefCell::new(TarPos::default());
    let limits = w.opts.limits;
    let stream = TarStream {
        inner: decompressed,
        state: &state,
        ratio: (kind == SourceKind::TarGz).then_some((compressed_len, limits.max_ratio)),
    };
    let mut archive = tar::Archive::new(stream);
    let fault_or = |state: &std::cell::RefCell<TarPos>, e: io::Error, index: u64| -> Error {
        match state.borrow_mut().fault.take() {
            Some(TarFault::Headers(n)) => bad_archive(
                path,
                format!(
                    "entry #{index}: its headers (PAX records, GNU long names) take more than {TAR_HEADER_BYTES_MAX} bytes ({n} read)"
                ),
            ),
            Some(TarFault::Ratio(actual)) => Error::LimitExceeded {
                path: path.to_path_buf(),
                entry: None,
                what: "compression ratio",
                limit: limits.max_ratio,
                actual,
                flag: "--max-ratio",
            },
            None => bad_archive(
                path,
                if e.kind() == io::ErrorKind::UnexpectedEof
                    || e.to_string().contains("failed to read entire block")
                    || e.to_string().contains("unexpected EOF")
                {
                    "truncated: the archive ends inside an entry".to_string()
                } else {
                    e.to_string()
                },
            ),
        }
    };
    let mut entries = archive
        .entries()
        .map_err(|e| bad_archive(path, e.to_string()))?;
    // End of the last entry's data, padded to the 512-byte block.
    let mut data_end = 0u64;
    let mut index = 0u64;
    loop {
        {
            let mut st = state.borrow_mut();
            st.in_data = false;
            st.phase_start = st.pos;
        }
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(|e| fault_or(&state, e, index))?;
        index += 1;
        state.borrow_mut().in_data = true;
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            let raw = entry.header().path_bytes().into_owned();
            return Err(w.unsafe_entry(&String::from_utf8_lossy(&raw), "PAX global header"));
        }
        let raw_name = entry.path_bytes().into_owned();
        let lossy = String::from_utf8_lossy(&raw_name).into_owned();
        let ustar_name = entry.header().path_bytes().into_owned();
        let ustar_size = entry.header().entry_size().ok();
        // PAX records: a `path` must agree with the ustar name, a `size` with the ustar
        // size, and no key that changes the entry may repeat (readers differ on which wins).
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_size: Option<Vec<u8>> = None;
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| w.bad_entry(&lossy, format!("unreadable PAX header: {e}")))?
        {
            let mut seen = std::collections::HashSet::new();
            for ext in exts {
                let ext = ext.map_err(|_| w.bad_entry(&lossy, "malformed PAX record"))?;
                let key = ext.key_bytes().to_vec();
                if !seen.insert(key.clone()) {
                    return Err(w.unsafe_entry(
                        &lossy,
                        format!(
                            "PAX record {:?} appears twice",
                            String::from_utf8_lossy(&key)
                        ),
                    ));
                }
                match &key[..] {
                    b"path" => pax_path = Some(ext.value_bytes().to_vec()),
                    b"size" => pax_size = Some(ext.value_bytes().to_vec()),
                    _ => {}
                }
            }
        }
        if let Some(p) = &pax_path {
            if *p != raw_name {
                return Err(w.unsafe_entry(
                    &lossy,
                    format!(
                        "a GNU long name and a PAX path name it differently ({:?})",
                        String::from_utf8_lossy(p)
                    ),
                ));
            }
        }
        if !ustar_name_agrees(&raw_name, &ustar_name) {
            return Err(w.unsafe_entry(
                &lossy,
                format!(
                    "its {} renames the entry its ustar header names {:?}",
                    if pax_path.is_some() {
                        "PAX path"
                    } else {
                        "GNU long name"
                    },
                    String::from_utf8_lossy(&ustar_name)
                ),
            ));
        }
        if let Some(ps) = &pax_size {
            let parsed = std::str::from_utf8(ps)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            match (parsed, ustar_size) {
                (None, _) => return Err(w.bad_entry(&lossy, "malformed PAX size")),
                (Some(p), Some(u)) if u != 0 && u != p => {
                    return Err(w.unsafe_entry(
                        &lossy,
                        format!("its PAX size {p} disagrees with its ustar size {u}"),
                    ))
                }
                _ => {}
            }
        }
        let name = match std::str::from_utf8(&raw_name) {
            Ok(s) => s.to_string(),
            Err(_) => return Err(w.unsafe_entry(&lossy, "name is not UTF-8")),
        };
        data_end = entry
            .raw_file_position()
            .saturating_add(entry.size())
            .saturating_add(511)
            / 512
            * 512;
        use tar::EntryType as T;
        let et = entry.header().entry_type();
        match et {
            T::Regular | T::Continuous => {
                let declared = entry.size();
                // Ratio of a gzip stream is checked as a whole: inflated so far vs the source size.
                let ratio_base = if kind == SourceKind::TarGz {
                    Some(compressed_len)
                } else {
                    None
                };
                // Express the whole-stream limit (inflated bytes vs the file size) as this
                // entry's compressed budget.
                let ratio = limits.max_ratio.max(1);
                let base =
                    ratio_base.map(|c| c.saturating_mul(ratio).saturating_sub(w.total) / ratio);
                w.file(&name, Some(declared), base, &mut entry, sink)?;
            }
            T::Directory => {
                if entry.size() != 0 {
                    return Err(w.bad_entry(&name, "a directory entry carries data"));
                }
                w.dir(&name, sink)?
            }
            T::Symlink => return Err(w.unsafe_entry(&name, "symbolic link")),
            T::Link => return Err(w.unsafe_entry(&name, "hard link")),
            T::Char | T::Block => return Err(w.unsafe_entry(&name, "device file")),
            T::Fifo => return Err(w.unsafe_entry(&name, "FIFO")),
            T::XGlobalHeader => return Err(w.unsafe_entry(&name, "PAX global header")),
            T::GNUSparse => return Err(w.unsafe_entry(&name, "sparse file")),
            other => return Err(w.unsafe_entry(&name, format!("unsupported entry type {other:?}"))),
        }
    }
    // The walk stops at a zero block (the end-of-archive marker) or at the end of the
    // stream; only the marker means the archive is whole.
    let end = state.borrow().pos;
    if end < data_end + 512 {
        return Err(bad_archive(
            path,
            "truncated: the archive ends without its end-of-archive marker",
        ));
    }
    // After the marker only zero padding may follow: anything else is data no entry
    // lists (a second archive that `tar -i` would read).
    {
        let mut st = state.borrow_mut();
        st.in_data = true;
    }
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    let mut padding = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(bad_archive(
                    path,
                    format!("after the end-of-archive marker: {e}"),
                ))
            }
        };
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(bad_archive(path, "data after the end-of-archive marker"));
        }
        padding += n as u64;
        if padding > TAR_PADDING_MAX {
            return Err(bad_archive(
                path,
                format!(
                    "more than {TAR_PADDING_MAX} bytes of padding after the end-of-archive marker"
                ),
            ));
        }
    }
    // The caller hashes whatever follows the compressed stream too, so the sha256 is of
    // the whole file.
    Ok(())
}

// ---------------------------------------------------------------- directory

/// A reader that counts what it reads into a [`Progress`].
struct Counted<'p, R> {
    inner: R,
    progress: &'p Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n);
        Ok(n)
    }
}

fn read_dir(root: &Path, w: &mut Walker, sink: &mut dyn EntrySink) -> Result<(u64, String)> {
    let progress = Progress::new(root, None);
    let root = std::fs::canonicalize(root).map_err(|e| Error::io("resolve", root, e))?;
    for entry in walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let entry = entry.map_err(|e| {
            let p = e.path().unwrap_or(&root).to_path_buf();
            match e.into_io_error() {
                Some(io) => Error::io("walk", p, io),
                None => bad_archive(&p, "filesystem loop"),
            }
        })?;
        let rel = entry
            .path()
            .strip_prefix(&root)
            .expect("walkdir stays below its root");
        let Some(rel) = rel.to_str() else {
            return Err(w.unsafe_entry(&rel.to_string_lossy(), "name is not UTF-8"));
        };
        let ft = entry.file_type();
        if ft.is_symlink() {
            return Err(w.unsafe_entry(rel, "symbolic link"));
        } else if ft.is_dir() {
            w.dir(rel, sink)?;
        } else if ft.is_file() {
            let f = crate::fsutil::open_nofollow(entry.path())?;
            let len = f
                .metadata()
                .map_err(|e| Error::io("stat", entry.path(), e))?
                .len();
            let mut counted = Counted {
                inner: f,
                progress: &progress,
            };
            w.file(rel, Some(len), None, &mut counted, sink)?;
        } else {
            return Err(w.unsafe_entry(rel, "special file (device, FIFO or socket)"));
        }
    }
    let mut files: Vec<&FileRecord> = w.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = Sha256::new();
    let mut size = 0;
    for f in files {
        size += f.size;
        h.update(format!("{}  {}\n", f.sha256, f.path).as_bytes());
    }
    Ok((size, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    //! The threaded paths (zip entries on several threads, a tar inflated on its own
    //! thread) must give exactly what the sequential walk gives: the same listing, the
    //! same files on disk, or the same first error.
    use super::*;
    use std::io::Write;

    /// One entry of a zip built byte by byte.
    #[derive(Clone)]
    struct Ze {
        name: String,
        data: Vec<u8>,
        deflate: bool,
        /// Overrides of what the headers declare.
        crc: Option<u32>,
        size: Option<u32>,
    }

    fn file(name: &str, data: &[u8]) -> Ze {
        Ze {
            name: name.into(),
            data: data.to_vec(),
            deflate: true,
            crc: None,
            size: None,
        }
    }

    fn stored(name: &str, data: &[u8]) -> Ze {
        Ze {
            deflate: false,
            ..file(name, data)
        }
    }

    fn dir(name: &str) -> Ze {
        stored(name, b"")
    }

    fn zip(entries: &[Ze]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for e in entries {
            let body = if e.deflate {
                let mut enc =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&e.data).unwrap();
                enc.finish().unwrap()
            } else {
                e.data.clone()
            };
            let crc = e.crc.unwrap_or_else(|| crc32fast::hash(&e.data));
            let size = e.size.unwrap_or(e.data.len() as u32);
            let offset = out.len() as u32;
            let method: u16 = if e.deflate { 8 } else { 0 };
            let fixed = |sig: u32, v: &mut Vec<u8>| {
                v.extend_from_slice(&sig.to_le_bytes());
                if sig == 0x0201_4b50 {
                    v.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
                }
                v.extend_from_slice(&20u16.to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes());
                v.extend_from_slice(&method.to_le_bytes());
                v.extend_from_slice(&[0; 4]);
                v.extend_from_slice(&crc.to_le_bytes());
                v.extend_from_slice(&(body.len() as u32).to_le_bytes());
                v.extend_from_slice(&size.to_le_bytes());
                v.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes());
            };
            fixed(0x0403_4b50, &mut out);
            out.extend_from_slice(e.name.as_bytes());
            out.extend_from_slice(&body);
            fixed(0x0201_4b50, &mut central);
            let mode: u32 = if e.name.ends_with('/') {
                0o40755
            } else {
                0o100644
            };
            // Comment length, disk, internal attributes; external attributes (mode).
            central.extend_from_slice(&[0; 6]);
            central.extend_from_slice(&(mode << 16).to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(e.name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(n: usize, seed: u64) -> Vec<u8> {
        let mut s = Vec::new();
        let mut i = seed;
        while s.len() < n {
            s.extend_from_slice(
                format!("{{\"id\": {i}, \"token\": \"tok{}\"}}\n", i % 97).as_bytes(),
            );
            i += 1;
        }
        s.truncate(n);
        s
    }

    /// A model-like tree: directories, large and small files, empty files, noise.
    fn many() -> Vec<Ze> {
        let mut v = vec![dir("model/"), file("model/MLmodel", b"flavors: {}\n")];
        v.push(stored("model/data/w0.bin", &noise(700_000, 1)));
        v.push(file("model/data/vocab.jsonl", &text(500_000, 2)));
        v.push(stored("__MACOSX/._MLmodel", b"resource fork"));
        v.push(file("model/empty.txt", b""));
        for i in 0..150 {
            let body = text(10 + i * 37, i as u64);
            if i % 3 == 0 {
                v.push(stored(&format!("model/code/m{:02}/f{i}.py", i / 40), &body));
            } else {
                v.push(file(&format!("model/code/m{:02}/f{i}.py", i / 40), &body));
            }
        }
        v.push(dir("model/code/empty/"));
        v.push(file("model/.DS_Store", b"junk"));
        v
    }

    /// What a read left: its result (listing or error) and the files written.
    fn read(bytes: &[u8], name: &str, opts: &ReadOptions, threads: usize) -> String {
        read_over(bytes, name, opts, threads, &[])
    }

    /// [`read`] into a directory where the files `existing` (destination paths) are
    /// already, so that they cannot be created.
    fn read_over(
        bytes: &[u8],
        name: &str,
        opts: &ReadOptions,
        threads: usize,
        existing: &[&str],
    ) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join(name);
        std::fs::write(&src, bytes).unwrap();
        let out = tmp.path().join("out");
        for e in existing {
            let p = out.join(e);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"in the way").unwrap();
        }
        // Every tenth name is checked but not written.
        let mut sink = DirSink::new(&out, |n: &str| {
            (!n.ends_with("0.py")).then(|| format!("x/{n}"))
        });
        let result = read_source_threads(&src, opts, &mut sink, Some(threads));
        let written = std::mem::take(&mut sink.written);
        let result = match result {
            Ok(l) => format!("{:?}\n{:?}\n{:?}", l.source, l.files, l.dirs),
            Err(e) => {
                let mut msg = format!("error: {e}")
                    .replace(&src.display().to_string(), "SRC")
                    .replace(&out.display().to_string(), "OUT");
                // The count a limit is caught at depends on read sizes: `: N > limit`.
                if let Some(at) = msg.find("limit exceeded") {
                    if let Some(colon) = msg[at..].find(": ") {
                        let start = at + colon + 2;
                        let digits = msg[start..].bytes().take_while(u8::is_ascii_digit).count();
                        msg.replace_range(start..start + digits, "N");
                    }
                }
                msg
            }
        };
        let mut on_disk = Vec::new();
        if out.exists() && result.starts_with("Source") {
            for e in walkdir::WalkDir::new(&out).sort_by_file_name() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(&out).unwrap().display().to_string();
                if e.file_type().is_file() {
                    on_disk.push(format!(
                        "{rel} {}",
                        hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
                    ));
                } else {
                    on_disk.push(format!("{rel}/"));
                }
            }
        }
        format!("{result}\nwritten {written:?}\non disk {on_disk:?}")
    }

    fn with(entries: &[Ze], at: usize, e: Ze) -> Vec<Ze> {
        let mut v = entries.to_vec();
        v.insert(at, e);
        v
    }

    #[test]
    fn threaded_zip_reads_as_the_sequential_walk() {
        let base = many();
        let limits = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            ReadOptions {
                limits: l,
                skip_noise: true,
            }
        };
        let plain = ReadOptions::default();
        let skip = ReadOptions {
            skip_noise: true,
            ..ReadOptions::default()
        };
        let bad_crc = Ze {
            crc: Some(7),
            ..file("model/code/bad.py", &text(3000, 9))
        };
        let cases: Vec<(&str, Vec<Ze>, ReadOptions, &str)> = vec![
            ("valid, noise kept", base.clone(), plain.clone(), "Source"),
            ("valid, noise skipped", base.clone(), skip.clone(), "Source"),
            (
                "CRC mismatch",
                with(&base, 60, bad_crc.clone()),
                skip.clone(),
                "CRC-32 mismatch",
            ),
            (
                "CRC mismatch before a refused name",
                with(
                    &with(&base, 60, bad_crc.clone()),
                    120,
                    file("MODEL/x", b"x"),
                ),
                skip.clone(),
                "CRC-32 mismatch",
            ),
            (
                "refused name before a CRC mismatch",
                with(&with(&base, 120, bad_crc.clone()), 60, file("../x", b"x")),
                skip.clone(),
                "parent-directory",
            ),
            (
                "declared size larger than the data",
                with(
                    &base,
                    90,
                    Ze {
                        size: Some(5000),
                        ..file("model/s.txt", &text(300, 3))
                    },
                ),
                skip.clone(),
                "declared size 5000 but 300 bytes were read",
            ),
            (
                "declared size smaller than the data",
                with(
                    &base,
                    90,
                    Ze {
                        size: Some(10),
                        ..file("model/s.txt", &text(300, 3))
                    },
                ),
                skip.clone(),
                "larger than its declared uncompressed size",
            ),
            (
                "stored size smaller than the data",
                with(
                    &base,
                    30,
                    Ze {
                        size: Some(10),
                        ..stored("model/s.bin", &noise(300, 3))
                    },
                ),
                skip.clone(),
                "larger than its declared uncompressed size",
            ),
            (
                "total size limit in the middle",
                base.clone(),
                limits(|l| l.max_total_bytes = 1_300_000),
                "total size limit exceeded",
            ),
            (
                "file size limit",
                base.clone(),
                limits(|l| l.max_file_bytes = 600_000),
                "file size limit exceeded at entry \"model/data/w0.bin\"",
            ),
            (
                "compression ratio",
                with(&base, 40, file("model/bomb.bin", &vec![0u8; 3 << 20])),
                skip.clone(),
                "compression ratio limit exceeded at entry \"model/bomb.bin\"",
            ),
            (
                "entry count",
                base.clone(),
                limits(|l| l.max_entries = 100),
                "entry count limit exceeded",
            ),
            (
                "a file where a directory was",
                with(&base, 100, file("model/code/m00", b"x")),
                skip.clone(),
                "a directory of the same name exists",
            ),
            (
                "a directory entry over a file",
                with(&base, 100, dir("model/MLmodel/")),
                skip.clone(),
                "a file of the same name exists",
            ),
        ];
        let mut failures = Vec::new();
        // Files that cannot be created (something is in the way), then a fault.
        /// (label, entries, options, files in the way, expected)
        type InTheWay<'a> = (&'a str, Vec<Ze>, ReadOptions, &'a [&'a str], &'a str);
        let in_the_way: Vec<InTheWay> = vec![
            (
                "a file that cannot be created, then a CRC mismatch",
                with(&base, 120, bad_crc.clone()),
                skip.clone(),
                &["x/model/code/m00/f7.py"],
                "File exists",
            ),
            (
                "a large file that cannot be created and is over the size limit",
                base.clone(),
                limits(|l| l.max_file_bytes = 600_000),
                &["x/model/data/w0.bin"],
                "File exists",
            ),
        ];
        for (label, entries, opts, existing, want) in &in_the_way {
            let bytes = zip(entries);
            let sequential = read_over(&bytes, "a.zip", opts, 1, existing);
            if !sequential.contains(want) {
                failures.push(format!("{label}: the sequential walk says {sequential}"));
                continue;
            }
            let threaded = read_over(&bytes, "a.zip", opts, 4, existing);
            if threaded != sequential {
                failures.push(format!(
                    "{label}:\n  sequential {sequential}\n  threaded   {threaded}"
                ));
            }
        }
        for (label, entries, opts, want) in &cases {
            let bytes = zip(entries);
            let sequential = read(&bytes, "a.zip", opts, 1);
            if !sequential.contains(want) {
                failures.push(format!("{label}: the sequential walk says {sequential}"));
                continue;
            }
            for threads in [2, 4] {
                let threaded = read(&bytes, "a.zip", opts, threads);
                if threaded != sequential {
                    failures.push(format!(
                        "{label} ({threads} threads):\n  sequential {sequential}\n  threaded   {threaded}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn tar(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn tar_inflated_on_its_own_thread_reads_as_the_sequential_walk() {
        let mut entries = vec![
            ("model/MLmodel", b"flavors: {}\n".to_vec()),
            ("model/w.bin", noise(2 << 20, 5)),
            ("model/vocab.jsonl", text(3 << 20, 6)),
        ];
        for i in 0..100 {
            entries.push((
                Box::leak(format!("model/code/f{i}.py").into_boxed_str()),
                text(100 + i * 50, i as u64),
            ));
        }
        let t = tar(&entries);
        let tgz = gzip(&t);
        let mut cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            ("tar", t.clone(), "a.tar", "Source"),
            ("tar.gz", tgz.clone(), "a.tar.gz", "Source"),
            (
                "tar.gz truncated",
                tgz[..tgz.len() / 2].to_vec(),
                "a.tar.gz",
                "error",
            ),
            (
                "tar.gz cut at the end",
                tgz[..tgz.len() - 9].to_vec(),
                "a.tar.gz",
                "error",
            ),
            (
                "tar.gz with trailing bytes",
                [tgz.clone(), b"trailing".to_vec()].concat(),
                "a.tar.gz",
                "error",
            ),
            (
                "two gzip members",
                [gzip(&t[..t.len() / 2]), gzip(&t[t.len() / 2..])].concat(),
                "a.tar.gz",
                "Source",
            ),
        ];
        let mut corrupt = tgz.clone();
        let mid = corrupt.len() / 3;
        corrupt[mid..mid + 64].fill(0x55);
        cases.push(("tar.gz corrupted inside", corrupt, "a.tar.gz", "error"));
        let mut refused = entries.clone();
        refused.insert(60, ("model/CODE/x.py", b"x".to_vec()));
        let refused = gzip(&tar(&refused));
        let small_files = ReadOptions {
            limits: Limits {
                max_file_bytes: 1 << 20,
                ..Limits::default()
            },
            ..ReadOptions::default()
        };
        /// (label, source, file name, options, files in the way, expected)
        type Case<'a> = (
            &'a str,
            Vec<u8>,
            &'a str,
            ReadOptions,
            &'a [&'a str],
            &'a str,
        );
        let mut all: Vec<Case> = cases
            .into_iter()
            .map(|(l, b, n, w)| (l, b, n, ReadOptions::default(), &[][..], w))
            .collect();
        all.extend([
            (
                "a file that cannot be created, then a refused name",
                refused.clone(),
                "a.tar.gz",
                ReadOptions::default(),
                &["x/model/code/f7.py"][..],
                "error: create OUT/x/model/code/f7.py: File exists",
            ),
            (
                "a refused name, then nothing in the way",
                refused,
                "a.tar.gz",
                ReadOptions::default(),
                &[][..],
                "error: SRC: entry \"model/CODE/x.py\" is unsafe: name collides",
            ),
            (
                "a large file that cannot be created and is over the size limit",
                tgz.clone(),
                "a.tar.gz",
                small_files.clone(),
                &["x/model/w.bin"][..],
                "error: create OUT/x/model/w.bin: File exists",
            ),
            (
                "over the size limit",
                tgz.clone(),
                "a.tar.gz",
                small_files,
                &[][..],
                "error: SRC: file size limit exceeded at entry \"model/w.bin\"",
            ),
        ]);
        let mut failures = Vec::new();
        for (label, bytes, name, opts, existing, want) in &all {
            let sequential = read_over(bytes, name, opts, 1, existing);
            if !sequential.starts_with(want) {
                failures.push(format!("{label}: the sequential walk says {sequential}"));
                continue;
            }
            let threaded = read_over(bytes, name, opts, 2, existing);
            if threaded != sequential {
                failures.push(format!(
                    "{label}:\n  sequential {sequential}\n  threaded   {threaded}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
