//! Packing a directory the core has already read and hashed into a deterministic zip
//! (sorted entries, fixed times, deflate), e.g. an unpacked MOJO folder into the single
//! file its runtime loads. Each file is re-hashed while packed and must match its record.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::source::FileRecord;

/// Zips `files` (paths relative to `root`) into memory.
pub fn zip_directory(root: &Path, files: &[FileRecord]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&FileRecord> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut buf = vec![0u8; 1 << 16];
    for rec in sorted {
        let p = root.join(&rec.path);
        let mut f = crate::fsutil::open_nofollow(&p)?;
        w.start_file(rec.path.as_str(), opts)
            .map_err(|e| Error::io("zip", &p, std::io::Error::other(e)))?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).map_err(|e| Error::io("read", &p, e))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
            w.write_all(&buf[..k])
                .map_err(|e| Error::io("zip", &p, e))?;
        }
        if n != rec.size || hex::encode(h.finalize()) != rec.sha256 {
            return Err(Error::io(
                "pack",
                &p,
                std::io::Error::other("the file changed while it was processed"),
            ));
        }
    }
    let out = w
        .finish()
        .map_err(|e| Error::io("zip", root, std::io::Error::other(e)))?;
    Ok(out.into_inner())
}
