//! Word2Vec (`Word2VecMojoModel`): the embedding of one word.
//!
//! `vocabulary` lists the words one per line (newlines escaped as `\n`), `vectors` holds
//! `vocab_size × vec_size` big-endian `f32`s in the same order. The input word is
//! encoded as its vocabulary index (the vocabulary acts as the column's domain), so an
//! unknown or missing word is NaN and gives NaN in every component, as genmodel's
//! `predictWord2Vec` gives no vector.

use crate::java::java_lines;
use crate::keys::{unsupported, Keys, LoadError, LoadResult};
use crate::model::{Common, Model};

/// `StringEscapeUtils.unescapeNewlines`: `\n` to a newline, `\\` to a backslash, any
/// other escaped character to itself.
fn unescape_newlines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut slash = false;
    for c in s.chars() {
        if slash {
            out.push(if c == 'n' { '\n' } else { c });
            slash = false;
        } else if c == '\\' {
            slash = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug)]
pub(crate) struct Word2Vec {
    vec_size: usize,
    /// Embedding of each word, in vocabulary order.
    vectors: Vec<Vec<f32>>,
    vocabulary: Vec<String>,
}

impl Word2Vec {
    pub(crate) fn read(keys: &Keys) -> LoadResult<Word2Vec> {
        let common = Common::read(keys)?;
        if common.n_features != 1 {
            return unsupported(format!("Word2Vec with {} input columns", common.n_features));
        }
        let vocab_size = keys.usize_or("vocab_size", 0)?;
        let vec_size = keys.usize_or("vec_size", 0)?;
        let file = |n: &str| format!("{}{n}", keys.mojo.prefix);
        let bytes = keys.blob("vectors").ok_or_else(|| LoadError::Invalid {
            file: file("vectors"),
            detail: "is missing".into(),
        })?;
        if vocab_size
            .checked_mul(vec_size)
            .and_then(|v| v.checked_mul(4))
            != Some(bytes.len())
        {
            return Err(LoadError::Invalid {
                file: file("vectors"),
                detail: format!(
                    "has {} bytes, not {vocab_size} words × {vec_size} floats",
                    bytes.len()
                ),
            });
        }
        let text = keys.blob("vocabulary").ok_or_else(|| LoadError::Invalid {
            file: file("vocabulary"),
            detail: "is missing".into(),
        })?;
        let text = std::str::from_utf8(text).map_err(|_| LoadError::Invalid {
            file: file("vocabulary"),
            detail: "is not UTF-8 text".into(),
        })?;
        let words: Vec<String> = java_lines(text)
            .into_iter()
            .map(|l| {
                unescape_newlines(l)
                    .trim_matches(|c: char| c <= ' ')
                    .to_string()
            })
            .collect();
        let distinct: std::collections::HashSet<&str> = words.iter().map(String::as_str).collect();
        if words.len() != vocab_size || distinct.len() != vocab_size {
            return Err(LoadError::Invalid {
                file: file("vocabulary"),
                detail: format!(
                    "has {} lines ({} distinct words) for vocab_size = {vocab_size}",
                    words.len(),
                    distinct.len()
                ),
            });
        }
        let vectors = bytes
            .chunks_exact(4 * vec_size.max(1))
            .take(vocab_size)
            .map(|w| {
                w.chunks_exact(4)
                    .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .collect();
        Ok(Word2Vec {
            vec_size,
            vectors,
            vocabulary: words,
        })
    }

    pub(crate) fn vec_size(&self) -> usize {
        self.vec_size
    }

    /// The vocabulary, used as the input column's domain.
    pub(crate) fn vocabulary(&self) -> &[String] {
        &self.vocabulary
    }
}

impl Model for Word2Vec {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        let w = row[0];
        if w.is_nan() {
            preds.fill(f64::NAN);
        } else {
            for (p, &v) in preds.iter_mut().zip(&self.vectors[w as usize]) {
                *p = f64::from(v);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_text() {
        assert_eq!(unescape_newlines(r"a\nb\\c\d\"), "a\nb\\cd");
    }
}
