//! Small filesystem helpers with the project's safety defaults: create-new, no link
//! following, fixed modes, and errors that name the path; and the one place that makes
//! written files durable ([`sync_files`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Creates a new file (fails if anything exists at `p`, link or not), mode 0644.
pub fn create_new(p: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| Error::io("create", p, e))
}

/// Opens a file for reading, refusing a symbolic link at the last component.
pub fn open_nofollow(p: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| Error::io("open", p, e))
}

/// Creates a directory and its parents, mode 0755. Existing links are never followed:
/// every component that exists must be a real directory.
pub fn create_dir_all(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::io(
                "create directory",
                p,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            ))
        }
        Err(_) => {}
    }
    if let Some(parent) = p.parent() {
        if !parent.as_os_str().is_empty() {
            create_dir_all(parent)?;
        }
    }
    match std::fs::DirBuilder::new().mode(0o755).create(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(Error::io("create directory", p, e)),
        },
        Err(e) => Err(Error::io("create directory", p, e)),
    }
}

/// Size of the buffers data is copied and hashed through: large enough that system
/// calls cost nothing next to the bytes, small enough that a few threads stay far below
/// the memory budget.
pub const COPY_BUFFER: usize = 256 << 10;

/// Copies `r` into `w`; write errors name `dest`. Read errors are returned as I/O errors
/// on `dest` too; the source walker reports its own read faults first.
///
/// Every [`WRITEBACK_CHUNK`] written, and at the end, the disk write of what was written
/// is started (not waited for), so that the sync before publishing finds little left to
/// write: the disk works while the data is still being read.
pub fn copy(r: &mut dyn Read, w: &mut File, dest: &Path) -> Result<u64> {
    with_buffer(|buf| {
        let mut n = 0u64;
        let mut flushed = 0u64;
        loop {
            let k = match r.read(buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read data for", dest, e)),
            };
            w.write_all(&buf[..k])
                .map_err(|e| Error::io("write", dest, e))?;
            n += k as u64;
            if n - flushed >= WRITEBACK_CHUNK {
                start_writeback(w, flushed, n - flushed);
                flushed = n;
            }
        }
        if n - flushed >= WRITEBACK_MIN {
            start_writeback(w, flushed, n - flushed);
        }
        Ok(n)
    })
}

/// How much [`copy`] writes between two starts of writeback.
pub const WRITEBACK_CHUNK: u64 = 8 << 20;
/// Smaller tails are left to the final sync.
const WRITEBACK_MIN: u64 = 1 << 20;

/// Starts writing `len` bytes at `offset` of `f` to disk, without waiting. This is
/// `posix_fadvise(DONTNEED)`: Linux starts the writeback of the dirty pages of the range
/// (and would drop clean ones, but pages just written are dirty). Only a hint: the
/// durability of the data is [`sync_files`]'s job.
pub fn start_writeback(f: &File, offset: u64, len: u64) {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(f, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
}

/// Runs `f` with a [`COPY_BUFFER`]-sized buffer of this thread's, so that the thousands
/// of small files of a source do not each allocate (and clear) one. A nested call gets
/// a buffer of its own.
pub fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    thread_local! {
        static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buf = BUFFER.with(std::cell::Cell::take);
    buf.resize(COPY_BUFFER, 0);
    let out = f(&mut buf);
    BUFFER.with(|b| b.set(buf));
    out
}

/// Size and sha256 (hex) of a file.
pub fn hash_file(p: &Path) -> Result<(u64, String)> {
    let mut f = open_nofollow(p)?;
    hash_reader(&mut f).map_err(|e| Error::io("read", p, e))
}

/// Size and sha256 (hex) of everything a reader yields.
pub fn hash_reader(r: &mut dyn Read) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Up to this many files are made durable one by one; more take one `syncfs`.
pub const SYNC_EACH_MAX: usize = 16;

/// Makes the data of the files below `dir` (named by their paths relative to it)
/// durable, before anything refers to them. A few files are fdatasynced one by one: that
/// costs a journal commit each and touches nothing else. Many files (an unpacked MLflow
/// model has thousands) are flushed by one `syncfs` of the filesystem holding `dir`
/// (their directory entries too): one commit for all of them, where a commit per file
/// takes seconds.
pub fn sync_files<'a>(dir: &Path, files: impl ExactSizeIterator<Item = &'a str>) -> Result<()> {
    if files.len() <= SYNC_EACH_MAX {
        for rel in files {
            let p = dir.join(rel);
            open_nofollow(&p)?
                .sync_data()
                .map_err(|e| Error::io("sync", &p, e))?;
        }
        return Ok(());
    }
    let d = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
    rustix::fs::syncfs(&d).map_err(|e| Error::io("sync filesystem of", dir, e.into()))
}

/// Flushes a directory's entries (after a rename into it) to disk.
pub fn sync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_files_one_by_one_or_the_whole_filesystem() {
        for (label, n, missing, ok) in [
            ("a few files, each synced", 3, false, true),
            ("a few files, one missing", 3, true, false),
            ("many files, one syncfs", SYNC_EACH_MAX + 5, false, true),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let names: Vec<String> = (0..n).map(|i| format!("d{}/f{i}", i % 3)).collect();
            for (i, name) in names.iter().enumerate() {
                if missing && i == 1 {
                    continue;
                }
                let p = tmp.path().join(name);
                create_dir_all(p.parent().unwrap()).unwrap();
                let mut f = create_new(&p).unwrap();
                copy(&mut &b"data"[..], &mut f, &p).unwrap();
            }
            let r = sync_files(tmp.path(), names.iter().map(String::as_str));
            assert_eq!(r.is_ok(), ok, "{label}: {r:?}");
        }
    }

    #[test]
    fn copy_counts_and_reuses_its_buffer() {
        let tmp = tempfile::tempdir().unwrap();
        // Larger than a writeback chunk, so writeback is started along the way.
        let data: Vec<u8> = (0..(WRITEBACK_CHUNK as usize + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        for i in 0..3 {
            let p = tmp.path().join(format!("f{i}"));
            let mut f = create_new(&p).unwrap();
            assert_eq!(copy(&mut &data[..], &mut f, &p).unwrap(), data.len() as u64);
            assert_eq!(std::fs::read(&p).unwrap(), data);
        }
    }
}
