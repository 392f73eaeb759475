//! The three source shapes and how each is read through the core's safe reader.
//!
//! - a bare `pipeline.mojo`: a zip whose entries are under `mojo/` (any file name);
//! - a package: a `mojo.zip` (or tar) or a folder holding one `pipeline.mojo`, normally
//!   in a `mojo-pipeline/` folder, next to `example.csv`, `mojo2-runtime.jar`,
//!   `run_example.sh`, `README.txt` and perhaps a licence.
//!
//! The shape is decided by content in one pass: [`OuterSink`] keeps the `mojo/`
//! descriptors in memory (for a bare pipeline) and writes `pipeline.mojo` and
//! `example.csv` to an output folder (for a package). It never copies a licence. A
//! package's `pipeline.mojo` is then read again from that folder, with the limits that
//! the outer level left, so totals count across both levels.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use artifact_core::source::detect;
use artifact_core::{
    read_source, EntrySink, Error as CoreError, FileRecord, Listing, MemorySink, ReadOptions,
    SourceKind,
};

use crate::error::DaiError;
use crate::pipeline::{inner_path, is_licence, keep_in_memory, PipelineFiles};

/// Payload file names in the model directory.
pub const PIPELINE: &str = "pipeline.mojo";
pub const EXAMPLE: &str = "example.csv";
const PACKAGE_BUILD_INFO: &str = "dai_build.info";
const BUILD_INFO_MAX_BYTES: u64 = 1 << 20;

/// Which shape the source has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The source is the `pipeline.mojo` zip itself.
    Bare,
    /// The source holds `pipeline.mojo` at `member` (e.g. `mojo-pipeline/pipeline.mojo`).
    Package { member: String },
}

impl Layout {
    pub fn as_str(&self) -> &'static str {
        match self {
            Layout::Bare => "pipeline.mojo",
            Layout::Package { .. } => "package",
        }
    }
}

/// Everything read from a source.
#[derive(Debug)]
pub struct SourceRead {
    pub layout: Layout,
    /// The source as given.
    pub outer: Listing,
    /// The `pipeline.mojo` (the outer listing again for a bare pipeline).
    pub inner: Listing,
    /// A name for the `pipeline.mojo` in messages (`source` or `source!member`).
    pub pipeline_display: PathBuf,
    /// Where the `pipeline.mojo` bytes are: the source, or the copy in the output folder.
    pub pipeline_path: PathBuf,
    pub files: PipelineFiles,
    /// Files written to the output folder (`pipeline.mojo`, `example.csv` of a package).
    pub written: Vec<FileRecord>,
    pub licences_dropped: Vec<String>,
    /// Package files not copied (runtime jar, scripts, README, ...), by source name.
    pub skipped: Vec<String>,
    /// The package's own `dai_build.info` (next to `pipeline.mojo`), if any.
    pub package_build_info: Option<(String, Vec<u8>)>,
}

/// Routes the entries of the outer source.
struct OuterSink<'a> {
    out_dir: &'a Path,
    mojo_entries: usize,
    mojo_contents: BTreeMap<String, Vec<u8>>,
    pipelines: Vec<String>,
    pipeline_dir: Option<String>,
    example: Option<(String, String)>,
    pending: Option<(String, &'static str)>,
    written: BTreeMap<&'static str, FileRecord>,
    licences: Vec<String>,
    skipped: Vec<String>,
    build_infos: BTreeMap<String, (String, Vec<u8>)>,
}

fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('/').unwrap_or(("", name))
}

impl OuterSink<'_> {
    fn write(
        &mut self,
        name: &str,
        dest: &'static str,
        data: &mut dyn Read,
    ) -> Result<(), CoreError> {
        let p = self.out_dir.join(dest);
        let mut f = artifact_core::fsutil::create_new(&p)?;
        artifact_core::fsutil::copy(data, &mut f, &p)?;
        f.sync_data().map_err(|e| CoreError::Io {
            op: "sync",
            path: p.clone(),
            source: e,
        })?;
        self.pending = Some((name.to_string(), dest));
        Ok(())
    }

    fn remove(&mut self, dest: &'static str) -> Result<(), CoreError> {
        if self.written.remove(dest).is_some() {
            let p = self.out_dir.join(dest);
            std::fs::remove_file(&p).map_err(|e| CoreError::Io {
                op: "remove",
                path: p,
                source: e,
            })?;
        }
        Ok(())
    }
}

impl EntrySink for OuterSink<'_> {
    fn directory(&mut self, name: &str) -> Result<(), CoreError> {
        if name == "mojo" || name.starts_with("mojo/") {
            self.mojo_entries += 1;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, data: &mut dyn Read) -> Result<(), CoreError> {
        if name.starts_with("mojo/") {
            self.mojo_entries += 1;
            if keep_in_memory(name) {
                let mut buf = Vec::new();
                data.read_to_end(&mut buf).map_err(|e| CoreError::Io {
                    op: "read entry",
                    path: name.into(),
                    source: e,
                })?;
                self.mojo_contents.insert(name.to_string(), buf);
            }
            return Ok(());
        }
        if is_licence(name) {
            self.licences.push(name.to_string());
            return Ok(());
        }
        let (dir, base) = split(name);
        match base {
            PIPELINE => {
                self.pipelines.push(name.to_string());
                if self.pipelines.len() == 1 {
                    self.write(name, PIPELINE, data)?;
                    self.pipeline_dir = Some(dir.to_string());
                }
            }
            EXAMPLE => {
                let wanted = match &self.pipeline_dir {
                    Some(p) => p == dir,
                    None => self.example.is_none(),
                };
                if wanted {
                    if let Some((_, old)) = self.example.take() {
                        self.remove(EXAMPLE)?;
                        self.skipped.push(old);
                    }
                    self.write(name, EXAMPLE, data)?;
                    self.example = Some((dir.to_string(), name.to_string()));
                } else {
                    self.skipped.push(name.to_string());
                }
            }
            PACKAGE_BUILD_INFO => {
                let mut buf = Vec::new();
                data.take(BUILD_INFO_MAX_BYTES)
                    .read_to_end(&mut buf)
                    .map_err(|e| CoreError::Io {
                        op: "read entry",
                        path: name.into(),
                        source: e,
                    })?;
                self.build_infos
                    .insert(dir.to_string(), (name.to_string(), buf));
                self.skipped.push(name.to_string());
            }
            _ => self.skipped.push(name.to_string()),
        }
        Ok(())
    }

    fn finished(&mut self, record: &FileRecord) {
        if let Some((name, dest)) = self.pending.take() {
            if name == record.path {
                self.written.insert(
                    dest,
                    FileRecord {
                        path: dest.to_string(),
                        size: record.size,
                        sha256: record.sha256.clone(),
                    },
                );
            } else {
                self.pending = Some((name, dest));
            }
        }
    }
}

fn listing_summary(listing: &Listing) -> String {
    let names: Vec<&str> = listing
        .files
        .iter()
        .take(5)
        .map(|f| f.path.as_str())
        .collect();
    format!(
        "{}{}",
        names.join(", "),
        if listing.files.len() > 5 { ", ..." } else { "" }
    )
}

/// Rewrites a core error about the staged inner `pipeline.mojo` so that it names the
/// source (`outer!member`), and reports limits as totals across both levels.
fn relabel(e: CoreError, display: &Path, outer_total: u64, outer_entries: u64) -> CoreError {
    let path = display.to_path_buf();
    match e {
        CoreError::BadArchive { detail, .. } => CoreError::BadArchive { path, detail },
        CoreError::BadEntry { entry, detail, .. } => CoreError::BadEntry {
            path,
            entry,
            detail,
        },
        CoreError::UnsafeEntry { entry, reason, .. } => CoreError::UnsafeEntry {
            path,
            entry,
            reason,
        },
        CoreError::UnsupportedSource { detail, .. } => {
            CoreError::UnsupportedSource { path, detail }
        }
        CoreError::LimitExceeded {
            entry,
            what,
            limit,
            actual,
            flag,
            ..
        } => {
            let base = match what {
                "total size" => outer_total,
                "entry count" => outer_entries,
                _ => 0,
            };
            CoreError::LimitExceeded {
                path,
                entry,
                what,
                limit: limit + base,
                actual: actual + base,
                flag,
            }
        }
        other => other,
    }
}

/// Reads `source` (any of the three shapes). Package files are written to `out_dir`.
pub fn read(source: &Path, opts: &ReadOptions, out_dir: &Path) -> Result<SourceRead, DaiError> {
    let kind = match detect(source) {
        Ok(k) => k,
        Err(CoreError::UnsupportedSource { path, detail }) => {
            return Err(DaiError::NotAPipeline {
                path,
                detail: format!(
                    "it is not a zip (a pipeline.mojo or a mojo.zip) nor a mojo-pipeline folder: {detail}"
                ),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let mut sink = OuterSink {
        out_dir,
        mojo_entries: 0,
        mojo_contents: BTreeMap::new(),
        pipelines: Vec::new(),
        pipeline_dir: None,
        example: None,
        pending: None,
        written: BTreeMap::new(),
        licences: Vec::new(),
        skipped: Vec::new(),
        build_infos: BTreeMap::new(),
    };
    let outer = read_source(source, opts, &mut sink)?;
    let path = source.to_path_buf();
    let has_mojo = sink.mojo_entries > 0;
    match (has_mojo, sink.pipelines.len()) {
        (true, 0) if kind == SourceKind::Zip => {
            // A bare pipeline.mojo: whatever a package rule wrote is not ours.
            sink.remove(PIPELINE)?;
            sink.remove(EXAMPLE)?;
            let files = PipelineFiles {
                names: outer.files.iter().map(|f| f.path.clone()).collect(),
                contents: std::mem::take(&mut sink.mojo_contents),
            };
            Ok(SourceRead {
                layout: Layout::Bare,
                inner: outer.clone(),
                outer,
                pipeline_display: path.clone(),
                pipeline_path: path,
                files,
                written: Vec::new(),
                licences_dropped: Vec::new(),
                skipped: Vec::new(),
                package_build_info: None,
            })
        }
        (true, 0) => Err(DaiError::NotAPipeline {
            path,
            detail: "it holds an unpacked pipeline (mojo/...); the runtimes load pipeline.mojo as a zip: give that file, or the mojo.zip or mojo-pipeline folder holding it".into(),
        }),
        (false, 0) => Err(DaiError::NotAPipeline {
            path,
            detail: format!(
                "no pipeline.mojo and no mojo/pipeline.pb or mojo/pipeline.toml (found {})",
                listing_summary(&outer)
            ),
        }),
        (true, _) => Err(DaiError::Ambiguous {
            path,
            detail: format!(
                "it holds both pipeline entries (mojo/...) and {}",
                sink.pipelines[0]
            ),
        }),
        (false, 1) => read_package(source, opts, out_dir, outer, sink),
        (false, _) => Err(DaiError::Ambiguous {
            path,
            detail: format!(
                "it holds {} pipeline.mojo files ({}); give one pipeline",
                sink.pipelines.len(),
                sink.pipelines.join(", ")
            ),
        }),
    }
}

fn read_package(
    source: &Path,
    opts: &ReadOptions,
    out_dir: &Path,
    outer: Listing,
    mut sink: OuterSink,
) -> Result<SourceRead, DaiError> {
    let member = sink.pipelines[0].clone();
    let dir = sink.pipeline_dir.clone().unwrap_or_default();
    if let Some((ex_dir, ex_name)) = sink.example.clone() {
        if ex_dir != dir {
            sink.remove(EXAMPLE)?;
            sink.skipped.push(ex_name);
        }
    }
    let display = inner_path(source, &member);
    let staged = out_dir.join(PIPELINE);
    match detect(&staged) {
        Ok(SourceKind::Zip) => {}
        Ok(other) => {
            return Err(DaiError::NotAPipeline {
                path: display,
                detail: format!("pipeline.mojo must be a zip, but it is a {other:?} archive"),
            })
        }
        Err(CoreError::UnsupportedSource { detail, .. }) => {
            return Err(DaiError::NotAPipeline {
                path: display,
                detail: format!("pipeline.mojo must be a zip, but {detail}"),
            })
        }
        Err(e) => return Err(e.into()),
    }
    let outer_total: u64 = outer.files.iter().map(|f| f.size).sum();
    let outer_entries = (outer.files.len() + outer.dirs.len()) as u64;
    // One level of nesting (pipeline.mojo inside the package), totals across both levels.
    let inner_opts = opts.nested(&outer, source, &member)?;
    let mut mem = MemorySink::new(keep_in_memory);
    let mut inner = read_source(&staged, &inner_opts, &mut mem)
        .map_err(|e| relabel(e, &display, outer_total, outer_entries))?;
    inner.source.file_name = PIPELINE.into();
    let files = PipelineFiles {
        names: inner.files.iter().map(|f| f.path.clone()).collect(),
        contents: mem.files,
    };
    let package_build_info = sink.build_infos.remove(&dir);
    let mut skipped = sink.skipped;
    skipped.sort();
    let mut licences = sink.licences;
    licences.sort();
    Ok(SourceRead {
        layout: Layout::Package { member },
        outer,
        inner,
        pipeline_display: display,
        pipeline_path: staged,
        files,
        written: sink.written.into_values().collect(),
        licences_dropped: licences,
        skipped,
        package_build_info,
    })
}
