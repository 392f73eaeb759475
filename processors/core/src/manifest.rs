//! The manifest `model.json` of a normalized model directory: its shape, its atomic
//! writing, and `verify`, which runtimes call before they trust a directory.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::normalize_entry_name;
use crate::schema::Column;
use crate::source::{FileRecord, SourceInfo};

/// The contract version this build writes and reads.
pub const CONTRACT_VERSION: u32 = 1;
/// File name of the manifest inside a model directory.
pub const MANIFEST_NAME: &str = "model.json";
const MANIFEST_MAX_BYTES: u64 = 64 << 20;

/// Which processor wrote a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessorInfo {
    pub name: String,
    pub version: String,
}

/// The manifest. Field order is the serialization order; `metadata` is a sorted map, so
/// the same input and processor version give byte-identical output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub contract_version: u32,
    /// Stable id of the model (`/model/id` falls back to it).
    pub id: String,
    pub artifact_type: String,
    pub model_type: String,
    pub processor: ProcessorInfo,
    pub source: SourceInfo,
    /// Path (relative to the directory) of what the runtime loads: a file or a folder.
    pub payload: String,
    /// False when the artifact carries no usable schema and the user accepted that.
    pub schema_known: bool,
    pub input_schema: Vec<Column>,
    pub output_schema: Vec<Column>,
    /// MLOps capability names (`SCORE`, `CONTRIBUTION_ORIGINAL`, ...).
    pub capabilities: Vec<String>,
    /// Format metadata; keys depend on the artifact type.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Every payload file, sorted by path.
    pub files: Vec<FileRecord>,
}

impl Manifest {
    /// The canonical serialization: pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serializes");
        v.push(b'\n');
        v
    }

    /// Writes `model.json` into `dir` atomically: temp file, fsync, rename, fsync dir.
    pub fn write_atomic(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".model.json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = crate::fsutil::create_new(&tmp)?;
        f.write_all(&self.to_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io("write", &tmp, e)
            })?;
        let dest = dir.join(MANIFEST_NAME);
        std::fs::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io("rename into place", &dest, e)
        })?;
        crate::fsutil::sync_dir(dir)
    }

    /// Reads and parses `dir/model.json` and checks its contract version.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let p = dir.join(MANIFEST_NAME);
        let f = match crate::fsutil::open_nofollow(&p) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoManifest {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(e),
        };
        let mut buf = Vec::new();
        f.take(MANIFEST_MAX_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read", &p, e))?;
        if buf.len() as u64 > MANIFEST_MAX_BYTES {
            return Err(Error::BadManifest {
                path: dir.to_path_buf(),
                detail: format!("larger than {MANIFEST_MAX_BYTES} bytes"),
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| Error::BadManifest {
                path: dir.to_path_buf(),
                detail: e.to_string(),
            })?;
        let found = value
            .get("contract_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::BadManifest {
                path: dir.to_path_buf(),
                detail: "no integer contract_version".into(),
            })?;
        if found != CONTRACT_VERSION as u64 {
            return Err(Error::ContractVersion {
                path: dir.to_path_buf(),
                found,
                expected: CONTRACT_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| Error::BadManifest {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        })
    }
}

/// Checks a model directory against its manifest: every listed file exists as a regular
/// file (no links) with the recorded size and sha256, and nothing else is there.
/// Returns the manifest on success.
pub fn verify(dir: &Path) -> Result<Manifest> {
    let manifest = Manifest::read(dir)?;
    let fail = |file: &str, detail: String| Error::VerifyFailed {
        path: dir.to_path_buf(),
        file: file.to_string(),
        detail,
    };
    let limits = crate::limits::Limits {
        max_depth: 256,
        max_name_len: 4096,
        ..Default::default()
    };
    let mut listed = std::collections::BTreeSet::new();
    for rec in &manifest.files {
        let norm = normalize_entry_name(&rec.path, &limits)
            .map_err(|r| fail(&rec.path, format!("unsafe path in manifest: {r}")))?;
        if norm != rec.path || rec.path == MANIFEST_NAME {
            return Err(fail(&rec.path, "path in manifest is not normalized".into()));
        }
        let p = dir.join(&rec.path);
        let meta =
            std::fs::symlink_metadata(&p).map_err(|e| fail(&rec.path, format!("missing: {e}")))?;
        if !meta.is_file() {
            return Err(fail(&rec.path, "not a regular file".into()));
        }
        if meta.len() != rec.size {
            return Err(fail(
                &rec.path,
                format!("size is {} bytes, manifest says {}", meta.len(), rec.size),
            ));
        }
        let (_, sha) = crate::fsutil::hash_file(&p)?;
        if sha != rec.sha256 {
            return Err(fail(
                &rec.path,
                format!("sha256 is {sha}, manifest says {}", rec.sha256),
            ));
        }
        listed.insert(rec.path.clone());
    }
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| {
            Error::io(
                "walk",
                dir,
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
            )
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        if rel == MANIFEST_NAME {
            continue;
        }
        if !listed.contains(&rel) {
            return Err(fail(&rel, "not listed in the manifest".into()));
        }
    }
    if !dir.join(&manifest.payload).exists() {
        return Err(fail(
            &manifest.payload,
            "the payload named by the manifest is missing".into(),
        ));
    }
    Ok(manifest)
}
