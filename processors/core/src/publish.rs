//! Staging and atomic publish of a model directory.
//!
//! All work happens in `TARGET_PATH/.staging-*` (same filesystem, so moves are renames).
//! On success the staged files are made durable (all at once, see
//! [`crate::fsutil::sync_files`]), the payload is moved into `TARGET_PATH` and
//! `model.json` is written last, by a rename: a directory is a model only once its
//! `model.json` is there, and then its data is on disk. On failure or
//! drop the staging directory is removed; a stale one left by a killed run is removed by
//! the next run.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, MANIFEST_NAME};
use crate::source::FileRecord;

const STAGING_PREFIX: &str = ".staging-";

/// A staging directory inside the target, and the registry of the files written to it.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    dir: PathBuf,
    files: BTreeMap<String, FileRecord>,
    done: bool,
}

impl Staging {
    /// Makes `target` ready: creates it if absent (its parent must exist); accepts it if
    /// empty; with `overwrite`, empties it (its `model.json` first, so it stops being a
    /// model before anything else goes). Leftover staging directories are removed.
    pub fn prepare(target: &Path, overwrite: bool) -> Result<Staging> {
        match std::fs::symlink_metadata(target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(target).map_err(|e| Error::io("create target", target, e))?;
            }
            Err(e) => return Err(Error::io("stat", target, e)),
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() && target.is_dir() => {}
            Ok(_) => {
                return Err(Error::TargetNotDirectory {
                    path: target.to_path_buf(),
                })
            }
        }
        let mut others = Vec::new();
        let mut stale = false;
        for entry in std::fs::read_dir(target).map_err(|e| Error::io("list", target, e))? {
            let entry = entry.map_err(|e| Error::io("list", target, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(STAGING_PREFIX) {
                tracing::info!(path = %entry.path().display(), "removing stale staging directory left by an interrupted run");
                remove_any(&entry.path())?;
                stale = true;
            } else {
                others.push(name);
            }
        }
        if !others.is_empty() {
            others.sort();
            // A staging directory lives until `model.json` is in place, and a run only
            // starts on an empty (or emptied) target: files next to a stale staging
            // directory and no `model.json` are what a run killed while publishing moved in.
            let interrupted = stale && !others.iter().any(|n| n == MANIFEST_NAME);
            if !overwrite && !interrupted {
                return Err(Error::TargetNotEmpty {
                    path: target.to_path_buf(),
                    first: others[0].clone(),
                });
            }
            if interrupted {
                tracing::info!(target = %target.display(), entries = others.len(), "removing the files of a run interrupted while publishing");
            } else {
                tracing::info!(target = %target.display(), entries = others.len(), "--overwrite: emptying target");
            }
            if others.iter().any(|n| n == MANIFEST_NAME) {
                let m = target.join(MANIFEST_NAME);
                std::fs::remove_file(&m).map_err(|e| Error::io("remove", &m, e))?;
                crate::fsutil::sync_dir(target)?;
            }
            for name in others.iter().filter(|n| *n != MANIFEST_NAME) {
                remove_any(&target.join(name))?;
            }
        }
        let dir = target.join(format!(
            "{STAGING_PREFIX}{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir(&dir).map_err(|e| Error::io("create staging directory", &dir, e))?;
        Ok(Staging {
            target: target.to_path_buf(),
            dir,
            files: BTreeMap::new(),
            done: false,
        })
    }

    /// The staging directory; paths given to the other methods are relative to it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Registers a file written to the staging directory by other means (a `DirSink`).
    pub fn record(&mut self, rec: FileRecord) {
        self.files.insert(rec.path.clone(), rec);
    }

    /// Registers files written under `prefix` (e.g. the records of a `DirSink` rooted there).
    pub fn record_under(&mut self, prefix: &str, recs: impl IntoIterator<Item = FileRecord>) {
        for r in recs {
            let path = if prefix.is_empty() {
                r.path
            } else {
                format!("{prefix}/{}", r.path)
            };
            self.record(FileRecord { path, ..r });
        }
    }

    /// Writes a new file from a reader, hashing it on the way.
    pub fn write_file(&mut self, rel: &str, data: &mut dyn Read) -> Result<FileRecord> {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            crate::fsutil::create_dir_all(parent)?;
        }
        let mut f = crate::fsutil::create_new(&p)?;
        let mut tee = HashingReader::new(data);
        crate::fsutil::copy(&mut tee, &mut f, &p)?;
        let rec = FileRecord {
            path: rel.to_string(),
            size: tee.count,
            sha256: tee.finish(),
        };
        self.record(rec.clone());
        Ok(rec)
    }

    /// Copies a file byte for byte into the staging directory.
    ///
    /// `src` may name an object in object storage (`s3://`, `https://`): it is streamed
    /// into the staging area, checked for its full length and against the version first
    /// seen (ETag), as every remote read is.
    pub fn copy_file(&mut self, rel: &str, src: &Path) -> Result<FileRecord> {
        if crate::source::is_remote(src) {
            let (_, opened) = crate::source::open(src)?;
            let opened =
                opened.ok_or_else(|| Error::Usage(format!("{} is not a file", src.display())))?;
            let mut r = opened
                .bytes()
                .range(0, opened.len())
                .map_err(|e| Error::io("read", src, e))?;
            return self.write_file(rel, &mut r);
        }
        let mut f = crate::fsutil::open_nofollow(src)?;
        self.write_file(rel, &mut f)
    }

    /// The files registered so far, sorted by path.
    pub fn files(&self) -> Vec<FileRecord> {
        self.files.values().cloned().collect()
    }

    /// Checks the staging tree against the registry, makes every staged file durable,
    /// moves the payload into the target and writes `model.json` last. `manifest.files`
    /// is filled from the registry.
    ///
    /// Files are written without a sync of their own (by [`Staging::write_file`], a
    /// [`crate::DirSink`], or a processor); this is where they all reach the disk, before
    /// the first rename.
    pub fn publish(mut self, mut manifest: Manifest) -> Result<Manifest> {
        let start = std::time::Instant::now();
        self.check_tree()?;
        let checked = start.elapsed().as_secs_f64();
        crate::fsutil::sync_files(&self.dir, self.files.keys().map(String::as_str))?;
        tracing::debug!(
            files = self.files.len(),
            check_seconds = checked,
            sync_seconds = start.elapsed().as_secs_f64() - checked,
            "staged files checked and synced"
        );
        manifest.files = self.files();
        let mut moved = Vec::new();
        let result = (|| {
            for entry in
                std::fs::read_dir(&self.dir).map_err(|e| Error::io("list", &self.dir, e))?
            {
                let entry = entry.map_err(|e| Error::io("list", &self.dir, e))?;
                let dest = self.target.join(entry.file_name());
                std::fs::rename(entry.path(), &dest)
                    .map_err(|e| Error::io("move into target", &dest, e))?;
                moved.push(dest);
            }
            crate::fsutil::sync_dir(&self.target)?;
            manifest.write_atomic(&self.target)
        })();
        if let Err(e) = result {
            for p in moved {
                let _ = remove_any(&p);
            }
            return Err(e);
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(manifest)
    }

    fn check_tree(&self) -> Result<()> {
        let mut seen = 0usize;
        for entry in walkdir::WalkDir::new(&self.dir)
            .follow_links(false)
            .min_depth(1)
        {
            let entry = entry.map_err(|e| {
                Error::io(
                    "walk",
                    &self.dir,
                    e.into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("loop")),
                )
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&self.dir)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            let size = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            match self.files.get(&rel) {
                Some(r) if entry.file_type().is_file() && r.size == size => seen += 1,
                _ => {
                    return Err(Error::io(
                        "check staged file",
                        entry.path(),
                        std::io::Error::other("written but not registered, or size changed"),
                    ))
                }
            }
        }
        if seen != self.files.len() {
            return Err(Error::io(
                "check staging",
                &self.dir,
                std::io::Error::other("a registered file is missing"),
            ));
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn remove_any(p: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| Error::io("stat", p, e))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(p).map_err(|e| Error::io("remove", p, e))
    } else {
        std::fs::remove_file(p).map_err(|e| Error::io("remove", p, e))
    }
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<'r> {
    inner: &'r mut dyn Read,
    hasher: sha2::Sha256,
    pub count: u64,
}

impl<'r> HashingReader<'r> {
    pub fn new(inner: &'r mut dyn Read) -> Self {
        use sha2::Digest;
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> String {
        use sha2::Digest;
        hex::encode(self.hasher.finalize())
    }
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
