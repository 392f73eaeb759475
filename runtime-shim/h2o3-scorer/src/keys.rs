//! Typed access to a model's `[info]` keys, with load errors that name the file and key.
//!
//! Genmodel reads each algorithm's parameters with `readkv` and fails on a missing or
//! mistyped value; the scorer does the same, but reports which key of which `model.ini`
//! (the root's or a stacked-ensemble member's) was wrong instead of throwing an NPE.

use crate::ini::{parse_array, parse_java_double};
use crate::mojo::{Mojo, MojoFiles};

/// Why a model cannot be scored, before the path and algorithm are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoadError {
    /// Well formed, but beyond what this scorer does (never mis-scored instead).
    Unsupported(String),
    /// Malformed: a key or blob is missing or wrong.
    Invalid { file: String, detail: String },
}

pub(crate) type LoadResult<T> = Result<T, LoadError>;

pub(crate) fn unsupported<T>(reason: impl Into<String>) -> LoadResult<T> {
    Err(LoadError::Unsupported(reason.into()))
}

/// The `[info]` keys of one model (root or sub-model) and the blobs next to them.
#[derive(Clone, Copy)]
pub(crate) struct Keys<'a> {
    pub mojo: &'a Mojo,
    pub files: &'a MojoFiles,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(mojo: &'a Mojo, files: &'a MojoFiles) -> Self {
        Keys { mojo, files }
    }

    pub(crate) fn ini_name(&self) -> String {
        format!("{}model.ini", self.mojo.prefix)
    }

    pub(crate) fn invalid<T>(&self, detail: impl Into<String>) -> LoadResult<T> {
        Err(LoadError::Invalid {
            file: self.ini_name(),
            detail: detail.into(),
        })
    }

    pub(crate) fn raw(&self, key: &str) -> Option<&'a str> {
        self.mojo.ini.get(key).map(str::trim)
    }

    pub(crate) fn req_str(&self, key: &str) -> LoadResult<&'a str> {
        match self.raw(key) {
            Some(v) => Ok(v),
            None => self.invalid(format!("key `{key}` is missing")),
        }
    }

    pub(crate) fn opt_f64(&self, key: &str) -> LoadResult<Option<f64>> {
        match self.raw(key) {
            None | Some("null") => Ok(None),
            Some(v) => match parse_java_double(v) {
                Some(x) => Ok(Some(x)),
                None => self.invalid(format!("`{key}` = {v:?} is not a number")),
            },
        }
    }

    pub(crate) fn req_f64(&self, key: &str) -> LoadResult<f64> {
        match self.opt_f64(key)? {
            Some(v) => Ok(v),
            None => self.invalid(format!("key `{key}` is missing")),
        }
    }

    pub(crate) fn f64_or(&self, key: &str, default: f64) -> LoadResult<f64> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    pub(crate) fn opt_i64(&self, key: &str) -> LoadResult<Option<i64>> {
        match self.raw(key) {
            None | Some("null") => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(x) => Ok(Some(x)),
                Err(_) => self.invalid(format!("`{key}` = {v:?} is not an integer")),
            },
        }
    }

    pub(crate) fn req_usize(&self, key: &str) -> LoadResult<usize> {
        match self.opt_i64(key)? {
            Some(v) if v >= 0 => Ok(v as usize),
            Some(v) => self.invalid(format!("`{key}` = {v} is negative")),
            None => self.invalid(format!("key `{key}` is missing")),
        }
    }

    pub(crate) fn usize_or(&self, key: &str, default: usize) -> LoadResult<usize> {
        match self.raw(key) {
            None | Some("null") => Ok(default),
            Some(_) => self.req_usize(key),
        }
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> LoadResult<bool> {
        match self.raw(key) {
            None | Some("null") => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => self.invalid(format!("`{key}` = {v:?} is not true or false")),
        }
    }

    /// An array key; `None` when missing or `null`.
    pub(crate) fn opt_f64_array(&self, key: &str) -> LoadResult<Option<Vec<f64>>> {
        let Some(v) = self.raw(key).filter(|v| *v != "null") else {
            return Ok(None);
        };
        let Some(items) = parse_array(v) else {
            return self.invalid(format!("`{key}` is not an array"));
        };
        let mut out = Vec::with_capacity(items.len());
        for s in &items {
            match parse_java_double(s) {
                Some(x) => out.push(x),
                None => return self.invalid(format!("`{key}` holds {s:?}, not a number")),
            }
        }
        Ok(Some(out))
    }

    pub(crate) fn req_f64_array(&self, key: &str) -> LoadResult<Vec<f64>> {
        match self.opt_f64_array(key)? {
            Some(v) => Ok(v),
            None => self.invalid(format!("key `{key}` is missing")),
        }
    }

    pub(crate) fn opt_i64_array(&self, key: &str) -> LoadResult<Option<Vec<i64>>> {
        let Some(v) = self.raw(key).filter(|v| *v != "null") else {
            return Ok(None);
        };
        let Some(items) = parse_array(v) else {
            return self.invalid(format!("`{key}` is not an array"));
        };
        let mut out = Vec::with_capacity(items.len());
        for s in &items {
            match s.parse::<i64>() {
                Ok(x) => out.push(x),
                Err(_) => return self.invalid(format!("`{key}` holds {s:?}, not an integer")),
            }
        }
        Ok(Some(out))
    }

    /// A blob of this model (`name` relative to its directory), if the MOJO has it.
    pub(crate) fn blob(&self, name: &str) -> Option<&'a [u8]> {
        self.files.get(&format!("{}{name}", self.mojo.prefix))
    }

    /// Names (relative to the model's own folder) of the files under `dir`.
    pub(crate) fn files_under(&self, dir: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("{}{dir}", self.mojo.prefix);
        let skip = self.mojo.prefix.len();
        self.files
            .names
            .range(prefix.clone()..)
            .take_while(move |n| n.starts_with(&prefix))
            .map(move |n| &n[skip..])
    }

    /// `mojo_version` as a number (genmodel compares it as a double).
    pub(crate) fn mojo_version(&self) -> LoadResult<f64> {
        self.req_f64("mojo_version")
    }
}
