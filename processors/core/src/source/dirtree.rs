//! Directory sources: the tree walked without following links, through the same checks
//! as an archive's entries.

use super::*;

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

pub(super) fn read_dir(
    root: &Path,
    w: &mut Walker,
    sink: &mut dyn EntrySink,
) -> Result<(u64, String)> {
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
