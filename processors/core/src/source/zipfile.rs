//! Zip sources: the end records and the central directory checked against every local
//! header before anything is read, then the entries walked in order, or inflated by a few
//! threads, each reading its own byte ranges of the file.

use super::*;

const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const LOCAL_SIG: u32 = 0x0403_4b50;

/// Where the central directory is, as the end records declare it.
struct ZipTail {
    /// Entries the end record declares.
    entries: u64,
    cd_offset: u64,
    /// Where the central directory must end: the zip64 end record, or the end record.
    cd_end: u64,
}

/// Fills `buf` from `at`, or fails (a source shorter than it said is an error).
fn read_exact_at(f: &dyn ByteSource, buf: &mut [u8], at: u64) -> io::Result<()> {
    if read_full_at(f, buf, at)? < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the source ends before the bytes its records point at",
        ));
    }
    Ok(())
}

/// A source as `Read + Seek`, by offset, for the zip crate's walk of the central directory.
struct AtReader<'a> {
    src: &'a dyn ByteSource,
    pos: u64,
    len: u64,
}

impl Read for AtReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for AtReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
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
fn check_zip_tail(path: &Path, f: &dyn ByteSource, len: u64, limits: &Limits) -> Result<ZipTail> {
    let tail_len = len.min(22 + 65535);
    let mut tail = vec![0u8; tail_len as usize];
    read_exact_at(f, &mut tail, len - tail_len).map_err(|e| Error::io("read", path, e))?;
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
        read_exact_at(f, &mut loc, eocd_pos - 20).map_err(|e| Error::io("read", path, e))?;
        if &loc[..4] == b"PK\x06\x07" {
            let z_off = le(&loc, 8, 8);
            let mut z = [0u8; 56];
            let ok = z_off
                .checked_add(56)
                .is_some_and(|end| end <= eocd_pos - 20)
                && read_exact_at(f, &mut z, z_off).is_ok()
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
pub(super) fn read_zip(
    path: &Path,
    raw: &dyn ByteSource,
    len: u64,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
    progress: &Progress,
    threads: usize,
) -> Result<()> {
    let tail = check_zip_tail(path, raw, len, &w.opts.limits)?;
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(
        SRC_BUFFER,
        AtReader {
            src: raw,
            pos: 0,
            len,
        },
    ))
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
    file: &'a dyn ByteSource,
    progress: &'a Progress,
    inflater: Option<flate2::bufread::DeflateDecoder<Range<'a>>>,
}

impl<'a> ZipEntries<'a> {
    fn new(file: &'a dyn ByteSource, progress: &'a Progress) -> Self {
        ZipEntries {
            file,
            progress,
            inflater: None,
        }
    }

    fn open(&mut self, m: &ZipMeta) -> ZipEntryReader<'_, 'a> {
        let mut range = Range {
            file: self.file,
            stream: None,
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

/// The compressed bytes `pos..end` of the source, read forward through one
/// [`ByteSource::range`] (by offset for a file, one ranged GET for an object), opened on
/// the first read.
struct Range<'a> {
    file: &'a dyn ByteSource,
    stream: Option<Box<dyn Read + Send + 'a>>,
    progress: &'a Progress,
    pos: u64,
    end: u64,
    /// For [`BufRead`]: `buf[at..filled]` are the bytes before `pos`.
    buf: Vec<u8>,
    at: usize,
    filled: usize,
}

impl<'a> Range<'a> {
    /// Reads the next bytes of the range into `out` (at most what is left of it).
    fn pull(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = out
            .len()
            .min((self.end - self.pos).min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        if self.stream.is_none() {
            self.stream = Some(self.file.range(self.pos, self.end)?);
        }
        let n = self
            .stream
            .as_mut()
            .expect("opened above")
            .read(&mut out[..want])?;
        self.pos += n as u64;
        self.progress.add(n);
        Ok(n)
    }
}

impl Read for Range<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at < self.filled {
            let n = out.len().min(self.filled - self.at);
            out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.pull(out)
    }
}

impl io::BufRead for Range<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at == self.filled {
            if self.buf.len() < SRC_BUFFER {
                self.buf.resize(SRC_BUFFER, 0);
            }
            let mut buf = std::mem::take(&mut self.buf);
            let n = self.pull(&mut buf[..SRC_BUFFER]);
            self.buf = buf;
            let n = n?;
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
    raw: &dyn ByteSource,
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
    raw: &dyn ByteSource,
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
    raw: &dyn ByteSource,
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
    read_exact_at(raw, &mut d[..n], at).map_err(|e| Error::io("read", path, e))?;
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
