//! tar and tar.gz sources: the headers walked one by one (PAX and GNU renames refused,
//! the end-of-archive marker required); a tar.gz is inflated on a thread of its own.

use super::*;

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
    mut src: CountingHasher<'_, Box<dyn Read + Send + '_>>,
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

pub(super) fn read_tar(
    path: &Path,
    kind: SourceKind,
    src: &dyn ByteSource,
    compressed_len: u64,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
    threads: Option<usize>,
) -> Result<(u64, String)> {
    // One forward read of the whole source (one GET for an object).
    let file = src
        .range(0, u64::MAX)
        .map_err(|e| Error::io("read", path, e))?;
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
