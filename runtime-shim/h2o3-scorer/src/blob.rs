//! The binary and text blobs GAM and CoxPH MOJOs keep beside `model.ini`, read as
//! genmodel's `ModelMojoReader` reads them.
//!
//! Numbers are big-endian (`ByteBuffer.getDouble`/`getInt`), one array after the other
//! with no header: the shapes come from `model.ini`. Genmodel fails to load a MOJO whose
//! blob is too short (`BufferUnderflowException`) and ignores bytes past what it reads;
//! so do these readers. Text blobs are read line by line, each line trimmed (`readtext`).

use crate::keys::{Keys, LoadError, LoadResult};

fn invalid<T>(keys: &Keys, name: &str, detail: String) -> LoadResult<T> {
    Err(LoadError::Invalid {
        file: format!("{}{name}", keys.mojo.prefix),
        detail,
    })
}

fn bytes<'a>(keys: &Keys<'a>, name: &str) -> LoadResult<&'a [u8]> {
    match keys.blob(name) {
        Some(b) => Ok(b),
        None => invalid(keys, name, "is missing".into()),
    }
}

/// More rows of width 0 than any real model has (their count is not bounded by the blob).
const MAX_EMPTY_ROWS: usize = 1 << 20;

/// Reads blobs of fixed-width big-endian numbers in order, like genmodel's `ByteBuffer`.
pub(crate) struct Numbers<'a> {
    name: String,
    prefix: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Numbers<'a> {
    /// The blob `name` of the model (missing: invalid).
    pub(crate) fn open(keys: &Keys<'a>, name: &str) -> LoadResult<Numbers<'a>> {
        Ok(Numbers {
            name: name.to_string(),
            prefix: &keys.mojo.prefix,
            bytes: bytes(keys, name)?,
            at: 0,
        })
    }

    fn take(&mut self, n: usize, width: usize) -> LoadResult<&'a [u8]> {
        let need = n.checked_mul(width);
        match need.and_then(|need| self.at.checked_add(need)) {
            Some(end) if end <= self.bytes.len() => {
                let chunk = &self.bytes[self.at..end];
                self.at = end;
                Ok(chunk)
            }
            _ => Err(LoadError::Invalid {
                file: format!("{}{}", self.prefix, self.name),
                detail: format!(
                    "has {} bytes; {n} more {width}-byte values are needed after byte {}",
                    self.bytes.len(),
                    self.at
                ),
            }),
        }
    }

    /// The next `n` doubles.
    pub(crate) fn doubles(&mut self, n: usize) -> LoadResult<Vec<f64>> {
        Ok(self
            .take(n, 8)?
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// The next `rows × cols` doubles as rows.
    pub(crate) fn matrix(&mut self, rows: usize, cols: usize) -> LoadResult<Vec<Vec<f64>>> {
        self.check_rows(rows, cols)?;
        (0..rows).map(|_| self.doubles(cols)).collect()
    }

    /// The next `rows × cols` ints as rows.
    pub(crate) fn int_matrix(&mut self, rows: usize, cols: usize) -> LoadResult<Vec<Vec<i32>>> {
        self.check_rows(rows, cols)?;
        (0..rows).map(|_| self.ints(cols)).collect()
    }

    /// Rows of width 0 read no bytes, so only their count bounds them.
    fn check_rows(&self, rows: usize, cols: usize) -> LoadResult<()> {
        if cols == 0 && rows > MAX_EMPTY_ROWS {
            return Err(LoadError::Invalid {
                file: format!("{}{}", self.prefix, self.name),
                detail: format!("{rows} rows of no values"),
            });
        }
        Ok(())
    }

    /// The next `n` ints.
    pub(crate) fn ints(&mut self, n: usize) -> LoadResult<Vec<i32>> {
        Ok(self
            .take(n, 4)?
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// The lines of the text blob `name` as `ModelMojoReader.readtext` gives them.
pub(crate) fn lines<'a>(keys: &Keys<'a>, name: &str) -> LoadResult<Vec<&'a str>> {
    let text = keys
        .files
        .text(&format!("{}{name}", keys.mojo.prefix))
        .map_err(|p| LoadError::Invalid {
            file: p.file,
            detail: p.detail,
        })?;
    match text {
        Some(t) => Ok(split_lines(t)),
        None => invalid(keys, name, "is missing".into()),
    }
}

/// Lines split at `\n`, `\r` or `\r\n` (`BufferedReader.readLine`), each trimmed like
/// Java's `String.trim` (every char up to `' '`).
fn split_lines(mut rest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        out.push(rest[..end].trim_matches(|c: char| c <= ' '));
        rest = &rest[end..];
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.get(1..))
            .unwrap_or("");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_split_like_buffered_reader() {
        let cases = [
            ("trailing newline", "a\nb\n", vec!["a", "b"]),
            ("crlf and spaces", "a\r\n b \r\nc", vec!["a", "b", "c"]),
            ("lone cr", "a\rb", vec!["a", "b"]),
            ("empty line", "a\n\nb", vec!["a", "", "b"]),
            ("tab trimmed", "\tx\t", vec!["x"]),
            ("empty", "", vec![]),
        ];
        for (label, text, want) in cases {
            assert_eq!(super::split_lines(text), want, "{label}");
        }
    }
}
