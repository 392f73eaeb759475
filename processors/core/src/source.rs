//! Reading untrusted sources: zip, tar, tar.gz and plain directories.
//!
//! This is the only place the project reads archives. Entries are walked one by one
//! (no crate `extract`/`unpack`), every name goes through [`crate::names`], only regular
//! files and directories pass, limits are counted on the bytes actually read, and each
//! file is hashed in the same pass. What happens to the bytes is up to an [`EntrySink`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::limits::{Limits, RATIO_GRACE_BYTES};
use crate::names::{is_archive_noise, normalize_entry_name, NameSet};

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

    fn file(&mut self, name: &str, data: &mut dyn Read) -> Result<()> {
        let Some(dest) = (self.select)(name) else {
            return Ok(());
        };
        let p = self.root.join(&dest);
        if let Some(parent) = p.parent() {
            crate::fsutil::create_dir_all(parent)?;
        }
        let mut f = crate::fsutil::create_new(&p)?;
        crate::fsutil::copy(data, &mut f, &p)?;
        f.sync_data().map_err(|e| Error::io("sync", &p, e))?;
        self.pending.insert(name.to_string(), dest);
        Ok(())
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
    let kind = detect(path)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut w = Walker::new(path, opts);
    let (size, sha256) = match kind {
        SourceKind::Zip => {
            let (size, sha) = crate::fsutil::hash_file(path)?;
            read_zip(path, &mut w, sink)?;
            (size, sha)
        }
        SourceKind::Tar | SourceKind::TarGz => read_tar(path, kind, &mut w, sink)?,
        SourceKind::Directory => read_dir(path, &mut w, sink)?,
    };
    if w.files.is_empty() {
        return Err(Error::BadArchive {
            path: path.to_path_buf(),
            detail: "it holds no files".into(),
        });
    }
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
        } else if self.total_before + self.count > self.max_total {
            Some(Fault::Limit {
                what: "total size",
                limit: self.max_total,
                actual: self.total_before + self.count,
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
            io::copy(reader, &mut io::sink()).map_err(|e| self.bad_entry(raw, e.to_string()))?;
            return Ok(());
        };
        let limits = self.opts.limits;
        let mut g = Guard {
            inner: reader,
            hasher: Sha256::new(),
            count: 0,
            max_file: limits.max_file_bytes,
            total_before: self.total,
            max_total: limits.max_total_bytes,
            compressed,
            max_ratio: limits.max_ratio,
            fault: None,
        };
        let sink_result = sink.file(&name, &mut g);
        let drain = match sink_result {
            Ok(()) => io::copy(&mut g, &mut io::sink()).map(|_| ()),
            Err(_) => Ok(()),
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
                Fault::Read(detail) => self.bad_entry(&name, detail),
            });
        }
        sink_result?;
        drain.map_err(|e| self.bad_entry(&name, e.to_string()))?;
        if let Some(d) = declared {
            if d != g.count {
                return Err(self.bad_entry(
                    &name,
                    format!("declared size {d} but {} bytes were read", g.count),
                ));
            }
        }
        self.total += g.count;
        let record = FileRecord {
            path: name,
            size: g.count,
            sha256: hex::encode(g.hasher.finalize()),
        };
        sink.finished(&record);
        self.files.push(record);
        Ok(())
    }
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

/// The end-of-central-directory record must end the file exactly, and its comment must
/// not hide another archive.
/// Returns the number of entries the end-of-central-directory record declares
/// (`None` for zip64 archives, whose count lives in another record).
fn check_zip_tail(path: &Path, f: &mut File, len: u64) -> Result<Option<u64>> {
    let tail_len = len.min(22 + 65535);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| Error::io("read", path, e))?;
    let mut seen_any = false;
    for i in (0..tail.len().saturating_sub(21)).rev() {
        if &tail[i..i + 4] != EOCD_SIG {
            continue;
        }
        seen_any = true;
        let comment_len = u16::from_le_bytes([tail[i + 20], tail[i + 21]]) as usize;
        if i + 22 + comment_len == tail.len() {
            let comment = &tail[i + 22..];
            if comment
                .windows(4)
                .any(|w| w == EOCD_SIG || w == b"PK\x03\x04")
            {
                return Err(bad_archive(
                    path,
                    "the archive comment holds another zip record",
                ));
            }
            let count = u16::from_le_bytes([tail[i + 10], tail[i + 11]]);
            return Ok((count != u16::MAX).then_some(count as u64));
        }
    }
    Err(bad_archive(
        path,
        if seen_any {
            "data after the end-of-central-directory record"
        } else {
            "no end-of-central-directory record: the zip is truncated or not a zip"
        },
    ))
}

struct ZipMeta {
    name: String,
    is_dir: bool,
    size: u64,
    compressed: u64,
    span: (u64, u64),
}

fn read_zip(path: &Path, w: &mut Walker, sink: &mut dyn EntrySink) -> Result<()> {
    let mut raw = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = raw
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let declared = check_zip_tail(path, &mut raw, len)?;
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(1 << 16, file))
        .map_err(|e| bad_archive(path, e.to_string()))?;
    // The zip crate keys entries by name, so a repeated name would silently vanish.
    if let Some(n) = declared {
        if n != archive.len() as u64 {
            return Err(bad_archive(
                path,
                format!(
                    "duplicate entry: the central directory lists {n} entries but only {} distinct names",
                    archive.len()
                ),
            ));
        }
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
        let data_start = check_local_header(path, &name, &mut raw, header_start, &central)?;
        if data_start.saturating_add(compressed) > len {
            return Err(w.bad_entry(&name, "its data runs past the end of the file"));
        }
        metas.push(ZipMeta {
            is_dir: f.is_dir(),
            size: f.size(),
            compressed,
            span: (header_start, data_start + compressed),
            name,
        });
    }
    let mut spans: Vec<(u64, u64, &str)> = metas
        .iter()
        .map(|m| (m.span.0, m.span.1, m.name.as_str()))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(bad_archive(
                path,
                format!("entries {:?} and {:?} overlap", pair[0].2, pair[1].2),
            ));
        }
    }

    // Pass 2: inflate, check and hand over each entry.
    for (i, m) in metas.iter().enumerate() {
        if m.is_dir {
            w.dir(&m.name, sink)?;
            continue;
        }
        let mut f = archive
            .by_index(i)
            .map_err(|e| w.bad_entry(&m.name, e.to_string()))?;
        w.file(&m.name, Some(m.size), Some(m.compressed), &mut f, sink)?;
    }
    Ok(())
}

struct CentralView {
    name: Vec<u8>,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
}

/// Cross-checks a local file header against its central-directory record and returns
/// where the entry's data starts.
fn check_local_header(
    path: &Path,
    name: &str,
    raw: &mut File,
    offset: u64,
    c: &CentralView,
) -> Result<u64> {
    let bad = |d: &str| Error::BadEntry {
        path: path.to_path_buf(),
        entry: name.to_string(),
        detail: format!("local header disagrees with the central directory: {d}"),
    };
    let mut h = [0u8; 30];
    raw.seek(SeekFrom::Start(offset))
        .and_then(|_| raw.read_exact(&mut h))
        .map_err(|_| bad("no local header at the recorded offset"))?;
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if u32_at(0) != LOCAL_SIG {
        return Err(bad("no local header at the recorded offset"));
    }
    let flags = u16_at(6);
    if u16_at(8) != c.method {
        return Err(bad("compression method"));
    }
    if flags & 1 != 0 {
        return Err(Error::BadEntry {
            path: path.to_path_buf(),
            entry: name.to_string(),
            detail: "encrypted entries are not supported".into(),
        });
    }
    let name_len = u16_at(26) as usize;
    let extra_len = u16_at(28) as u64;
    let mut local_name = vec![0u8; name_len];
    raw.read_exact(&mut local_name)
        .map_err(|_| bad("truncated local header"))?;
    if local_name != c.name {
        return Err(bad("name"));
    }
    if flags & 8 == 0 {
        if u32_at(14) != c.crc {
            return Err(bad("CRC-32"));
        }
        let (lc, lu) = (u32_at(18), u32_at(22));
        if lc != u32::MAX && (lc as u64 != c.compressed || lu as u64 != c.size) {
            return Err(bad("sizes"));
        }
    }
    Ok(offset + 30 + name_len as u64 + extra_len)
}

// ---------------------------------------------------------------- tar

/// Counts the bytes read from the underlying file (for the tar.gz ratio) and hashes them.
struct CountingHasher<R> {
    inner: R,
    count: u64,
    hasher: Sha256,
}

impl<R: Read> Read for CountingHasher<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn read_tar(
    path: &Path,
    kind: SourceKind,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
) -> Result<(u64, String)> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let compressed_len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let counted = std::cell::RefCell::new(CountingHasher {
        inner: BufReader::with_capacity(1 << 16, file),
        count: 0,
        hasher: Sha256::new(),
    });
    struct Shared<'a, R>(&'a std::cell::RefCell<CountingHasher<R>>);
    impl<R: Read> Read for Shared<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.borrow_mut().read(buf)
        }
    }
    let stream: Box<dyn Read> = match kind {
        SourceKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(Shared(&counted))),
        _ => Box::new(Shared(&counted)),
    };
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| bad_archive(path, e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            bad_archive(
                path,
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    "truncated: the archive ends inside an entry".to_string()
                } else {
                    e.to_string()
                },
            )
        })?;
        let raw_name = entry.path_bytes().into_owned();
        let name = match std::str::from_utf8(&raw_name) {
            Ok(s) => s.to_string(),
            Err(_) => {
                return Err(w.unsafe_entry(&String::from_utf8_lossy(&raw_name), "name is not UTF-8"))
            }
        };
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
                let ratio = w.opts.limits.max_ratio.max(1);
                let base =
                    ratio_base.map(|c| c.saturating_mul(ratio).saturating_sub(w.total) / ratio);
                w.file(&name, Some(declared), base, &mut entry, sink)?;
            }
            T::Directory => w.dir(&name, sink)?,
            T::Symlink => return Err(w.unsafe_entry(&name, "symbolic link")),
            T::Link => return Err(w.unsafe_entry(&name, "hard link")),
            T::Char | T::Block => return Err(w.unsafe_entry(&name, "device file")),
            T::Fifo => return Err(w.unsafe_entry(&name, "FIFO")),
            T::XGlobalHeader => return Err(w.unsafe_entry(&name, "PAX global header")),
            T::GNUSparse => return Err(w.unsafe_entry(&name, "sparse file")),
            other => return Err(w.unsafe_entry(&name, format!("unsupported entry type {other:?}"))),
        }
    }
    drop(archive);
    let mut c = counted.into_inner();
    // Hash whatever follows the end-of-archive marker too, so the sha256 is of the whole file.
    io::copy(&mut c, &mut io::sink()).map_err(|e| bad_archive(path, e.to_string()))?;
    Ok((c.count, hex::encode(c.hasher.finalize())))
}

// ---------------------------------------------------------------- directory

fn read_dir(root: &Path, w: &mut Walker, sink: &mut dyn EntrySink) -> Result<(u64, String)> {
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
            let mut f = crate::fsutil::open_nofollow(entry.path())?;
            let len = f
                .metadata()
                .map_err(|e| Error::io("stat", entry.path(), e))?
                .len();
            w.file(rel, Some(len), None, &mut f, sink)?;
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
