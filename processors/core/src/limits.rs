//! Limits on what an archive may expand to, enforced on bytes actually read.
//!
//! Header claims are never trusted: a zip bomb is caught while it inflates.

/// Bounds applied to every source, archive or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of all regular files.
    pub max_total_bytes: u64,
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Number of entries (files and directories).
    pub max_entries: u64,
    /// Inflated/compressed ratio of one zip entry, or of a whole tar.gz stream.
    pub max_ratio: u64,
    /// Length of an entry name in bytes.
    pub max_name_len: usize,
    /// Number of path components of an entry name.
    pub max_depth: usize,
    /// Levels of archives inside the source that a processor may open (`pipeline.mojo`
    /// inside `mojo.zip` is one level); see [`crate::ReadOptions::nested`].
    pub max_nesting: u32,
}

/// Below this many inflated bytes the ratio is not checked: small text files compress far better than 100:1.
pub const RATIO_GRACE_BYTES: u64 = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 16 << 30,
            max_file_bytes: 8 << 30,
            max_entries: 100_000,
            max_ratio: 200,
            max_name_len: 1024,
            max_depth: 32,
            max_nesting: 1,
        }
    }
}
