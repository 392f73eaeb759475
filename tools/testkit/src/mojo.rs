//! Edited copies of real MOJOs, for tests that need a broken or altered model: `model.ini`
//! keys replaced, added or removed, and files replaced, added or removed, the rest copied
//! as is.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// What to do with a file of the MOJO.
#[derive(Debug, Clone, Copy)]
pub enum FileEdit<'a> {
    /// Replace its bytes (or add it when absent).
    Put(&'a str, &'a [u8]),
    /// Leave it out.
    Remove(&'a str),
}

/// Writes into `dir` a copy of the MOJO zip `src` whose root `model.ini` has each `ini`
/// key set (`Some`, added at the end of `[info]` when absent) or removed (`None`), and
/// with `files` applied. Returns the new zip's path (a fresh name each call).
pub fn edited(src: &Path, dir: &Path, ini: &[(&str, Option<&str>)], files: &[FileEdit]) -> PathBuf {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let stem = src.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("{stem}-{}.zip", dir.read_dir().unwrap().count()));
    let mut w = zip::ZipWriter::new(std::fs::File::create(&out).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let mut seen = Vec::new();
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if name == "model.ini" && !ini.is_empty() {
            data = edit_ini(&String::from_utf8(data).unwrap(), ini).into_bytes();
        }
        let edit = files.iter().find(|e| match e {
            FileEdit::Put(n, _) | FileEdit::Remove(n) => *n == name,
        });
        match edit {
            Some(FileEdit::Remove(_)) => continue,
            Some(FileEdit::Put(_, bytes)) => data = bytes.to_vec(),
            None => {}
        }
        seen.push(name.clone());
        w.start_file(name, opts).unwrap();
        w.write_all(&data).unwrap();
    }
    for e in files {
        if let FileEdit::Put(name, bytes) = e {
            if !seen.iter().any(|s| s == name) {
                w.start_file(*name, opts).unwrap();
                w.write_all(bytes).unwrap();
            }
        }
    }
    w.finish().unwrap();
    out
}

/// `model.ini` text with `[info]` keys set or removed.
pub fn edit_ini(text: &str, ini: &[(&str, Option<&str>)]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let key = line.split(" = ").next().unwrap_or("");
        match ini.iter().find(|(k, _)| *k == key) {
            Some((_, Some(v))) => lines.push(format!("{key} = {v}")),
            Some((_, None)) => {}
            None => lines.push(line.to_string()),
        }
    }
    for (k, v) in ini {
        if let Some(v) = v {
            if !text.lines().any(|l| l.split(" = ").next() == Some(*k)) {
                let at = lines.iter().position(|l| l.is_empty()).unwrap();
                lines.insert(at, format!("{k} = {v}"));
            }
        }
    }
    lines.join("\n") + "\n"
}
