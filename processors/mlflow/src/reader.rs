//! Access to the small files of a model once the source has been read: from the staging
//! directory for `process`, from memory for `inspect` (which writes nothing).
//!
//! Only text files are read (`MLmodel`, environment files, requirements,
//! `registered_model_meta`), each up to [`MAX_TEXT_BYTES`]; `.onnx` files are scanned for
//! the external data files they name and their graph's interface
//! ([`crate::onnx::graph::read_model`]). Nothing is ever unpickled or executed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use artifact_core::EntrySink;

use crate::error::MlflowError;
use crate::onnx::graph::{read_model, OnnxModel};

/// Largest text file (MLmodel, conda.yaml, ...) read into memory.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;
/// Total bytes of text files `inspect` keeps in memory.
const MAX_KEPT_BYTES: u64 = 64 << 20;

/// A text file as read.
#[derive(Debug, Clone)]
pub enum Text {
    Data(Vec<u8>),
    /// Larger than [`MAX_TEXT_BYTES`]; its size.
    TooLarge(u64),
    /// `inspect` did not keep it (memory budget or not a kind of file it keeps).
    NotKept,
}

/// Reads the model's small files; paths are relative to the model root.
pub trait ModelReader {
    fn text(&self, rel: &str) -> Result<Text, MlflowError>;
    /// What a scan of an `.onnx` file found (external data, graph interface), or why it
    /// could not be scanned.
    fn onnx(&self, rel: &str) -> Result<Result<OnnxModel, String>, MlflowError>;
}

/// Whether `inspect` keeps a file's text: the files an MLflow model describes itself with.
pub fn is_text_kind(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base == crate::layout::MLMODEL || base == "registered_model_meta" {
        return true;
    }
    let lower = base.to_ascii_lowercase();
    [".yaml", ".yml", ".txt"].iter().any(|e| lower.ends_with(e))
}

/// Whether a file is an ONNX model (by name).
pub fn is_onnx(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".onnx")
}

fn read_capped(r: &mut dyn Read, op_path: &Path) -> Result<Text, MlflowError> {
    let mut buf = Vec::new();
    r.take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| MlflowError::io("read", op_path, e))?;
    if buf.len() as u64 > MAX_TEXT_BYTES {
        let rest = std::io::copy(r, &mut std::io::sink())
            .map_err(|e| MlflowError::io("read", op_path, e))?;
        return Ok(Text::TooLarge(buf.len() as u64 + rest));
    }
    Ok(Text::Data(buf))
}

/// Reads from the model folder written to the staging directory.
pub struct DiskReader {
    pub dir: PathBuf,
}

impl ModelReader for DiskReader {
    fn text(&self, rel: &str) -> Result<Text, MlflowError> {
        let p = self.dir.join(rel);
        let mut f = artifact_core::fsutil::open_nofollow(&p)?;
        read_capped(&mut f, &p)
    }

    fn onnx(&self, rel: &str) -> Result<Result<OnnxModel, String>, MlflowError> {
        let p = self.dir.join(rel);
        let f = artifact_core::fsutil::open_nofollow(&p)?;
        let mut r = std::io::BufReader::with_capacity(1 << 16, f);
        Ok(read_model(&mut r))
    }
}

/// The sink `inspect` reads a source with: it keeps the text files in memory (within a
/// budget), scans `.onnx` files as they stream by, and lets the core check and hash the rest.
#[derive(Default)]
pub struct InspectSink {
    texts: BTreeMap<String, Text>,
    onnx: BTreeMap<String, Result<OnnxModel, String>>,
    kept: u64,
}

impl EntrySink for InspectSink {
    fn file(&mut self, name: &str, data: &mut dyn Read) -> artifact_core::Result<()> {
        if is_onnx(name) {
            self.onnx.insert(name.to_string(), read_model(data));
        } else if is_text_kind(name) {
            let text = if self.kept >= MAX_KEPT_BYTES {
                Text::NotKept
            } else {
                match read_capped(data, Path::new(name)) {
                    Ok(t) => t,
                    // The core reports the read fault itself (limit, CRC, truncation).
                    Err(_) => return Ok(()),
                }
            };
            if let Text::Data(d) = &text {
                self.kept += d.len() as u64;
            }
            self.texts.insert(name.to_string(), text);
        }
        Ok(())
    }
}

/// What [`InspectSink`] kept, seen from the model root.
pub struct MemoryReader {
    pub sink: InspectSink,
    pub root: String,
}

impl MemoryReader {
    fn full(&self, rel: &str) -> String {
        if self.root.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.root)
        }
    }
}

impl ModelReader for MemoryReader {
    fn text(&self, rel: &str) -> Result<Text, MlflowError> {
        Ok(self
            .sink
            .texts
            .get(&self.full(rel))
            .cloned()
            .unwrap_or(Text::NotKept))
    }

    fn onnx(&self, rel: &str) -> Result<Result<OnnxModel, String>, MlflowError> {
        Ok(self
            .sink
            .onnx
            .get(&self.full(rel))
            .cloned()
            .unwrap_or_else(|| Err("not scanned: the file name does not end in .onnx".into())))
    }
}
