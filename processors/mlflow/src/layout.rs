//! Where the MLflow model sits inside a source, and what it holds.
//!
//! A source may be the model folder itself, a zip or tar with the model files at its
//! root, or one with the model folder at its root (FORMATS.md §5.2). The model root is
//! the folder holding the single `MLmodel`: the source root or exactly one top-level
//! folder. No `MLmodel`, several candidates, or files outside the chosen folder are
//! refused with the names found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use artifact_core::{FileRecord, Listing};

use crate::error::MlflowError;

/// The file that makes a folder an MLflow model.
pub const MLMODEL: &str = "MLmodel";

/// How many names an error message lists.
const SHOWN: usize = 10;

/// Finds the model root: `""` (the source root) or the name of one top-level folder.
pub fn find_model_root(path: &Path, listing: &Listing) -> Result<String, MlflowError> {
    let mut candidates = Vec::new();
    let mut deeper = Vec::new();
    for f in &listing.files {
        let (parent, base) = match f.path.rsplit_once('/') {
            Some((p, b)) => (p, b),
            None => ("", f.path.as_str()),
        };
        if base != MLMODEL {
            continue;
        }
        if parent.contains('/') {
            deeper.push(f.path.clone());
        } else {
            candidates.push(f.path.clone());
        }
    }
    match candidates.len() {
        0 if !deeper.is_empty() => Err(MlflowError::MlmodelTooDeep {
            path: path.to_path_buf(),
            found: deeper,
        }),
        0 => Err(MlflowError::NoMlmodel {
            path: path.to_path_buf(),
            found: listing
                .files
                .iter()
                .take(SHOWN)
                .map(|f| f.path.clone())
                .collect(),
            total: listing.files.len(),
        }),
        1 => {
            let root = candidates[0]
                .strip_suffix(MLMODEL)
                .expect("ends with MLmodel")
                .trim_end_matches('/')
                .to_string();
            if !root.is_empty() {
                let prefix = format!("{root}/");
                let outside: Vec<&FileRecord> = listing
                    .files
                    .iter()
                    .filter(|f| !f.path.starts_with(&prefix))
                    .collect();
                if !outside.is_empty() {
                    return Err(MlflowError::OutsideModel {
                        path: path.to_path_buf(),
                        root,
                        outside: outside.iter().take(SHOWN).map(|f| f.path.clone()).collect(),
                        total: outside.len(),
                    });
                }
            }
            Ok(root)
        }
        _ => Err(MlflowError::SeveralMlmodels {
            path: path.to_path_buf(),
            found: candidates,
        }),
    }
}

/// The files and folders of the model, with paths relative to the model root.
#[derive(Debug, Clone, Default)]
pub struct ModelFiles {
    pub files: BTreeMap<String, FileRecord>,
    pub dirs: BTreeSet<String>,
}

impl ModelFiles {
    /// The part of `listing` below `root`, re-rooted.
    pub fn new(listing: &Listing, root: &str) -> ModelFiles {
        let strip = |p: &str| -> Option<String> {
            if root.is_empty() {
                Some(p.to_string())
            } else {
                p.strip_prefix(root)
                    .and_then(|r| r.strip_prefix('/'))
                    .map(str::to_string)
            }
        };
        let mut out = ModelFiles::default();
        for f in &listing.files {
            if let Some(rel) = strip(&f.path) {
                let mut parent = rel.as_str();
                while let Some((p, _)) = parent.rsplit_once('/') {
                    out.dirs.insert(p.to_string());
                    parent = p;
                }
                out.files.insert(
                    rel.clone(),
                    FileRecord {
                        path: rel,
                        ..f.clone()
                    },
                );
            }
        }
        for d in &listing.dirs {
            if let Some(rel) = strip(d) {
                out.dirs.insert(rel);
            }
        }
        out
    }

    pub fn is_file(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.dirs.contains(rel)
    }

    /// Files below a folder (recursively).
    pub fn files_under<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a FileRecord> + 'a {
        let prefix = format!("{dir}/");
        self.files
            .values()
            .filter(move |f| f.path.starts_with(&prefix))
    }

    /// Total bytes of the model's files.
    pub fn total_size(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifact_core::{SourceInfo, SourceKind};

    fn listing(files: &[&str], dirs: &[&str]) -> Listing {
        Listing {
            source: SourceInfo {
                file_name: "x.zip".into(),
                kind: SourceKind::Zip,
                size: 1,
                sha256: String::new(),
            },
            files: files
                .iter()
                .map(|p| FileRecord {
                    path: p.to_string(),
                    size: 1,
                    sha256: String::new(),
                })
                .collect(),
            dirs: dirs.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn roots() {
        let cases: &[(&str, &[&str], Result<&str, &str>)] = &[
            ("flat", &["MLmodel", "model.pkl"], Ok("")),
            (
                "folder",
                &["m/MLmodel", "m/model.pkl", "m/code/x.py"],
                Ok("m"),
            ),
            (
                "nested model inside model is just a file",
                &["m/MLmodel", "m/artifacts/sub/MLmodel"],
                Ok("m"),
            ),
            ("none", &["model.pkl", "conda.yaml"], Err("no MLmodel")),
            (
                "two folders",
                &["a/MLmodel", "b/MLmodel"],
                Err("2 MLflow models"),
            ),
            (
                "root and folder",
                &["MLmodel", "sub/MLmodel"],
                Err("2 MLflow models"),
            ),
            ("too deep", &["a/b/MLmodel"], Err("only at a/b/MLmodel")),
            (
                "stray file",
                &["m/MLmodel", "m/model.pkl", "notes.txt"],
                Err("outside it: notes.txt"),
            ),
            ("case matters", &["mlmodel"], Err("no MLmodel")),
        ];
        for (label, files, want) in cases {
            let got = find_model_root(Path::new("src"), &listing(files, &[]));
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g, *w, "case {label}"),
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "case {label}: {e}"),
                (_, got) => panic!("case {label}: {got:?}"),
            }
        }
    }

    #[test]
    fn rerooted() {
        let l = listing(
            &["m/MLmodel", "m/data/model.pth"],
            &["m", "m/data", "m/empty"],
        );
        let f = ModelFiles::new(&l, "m");
        assert!(f.is_file("MLmodel"));
        assert!(f.is_file("data/model.pth"));
        assert!(f.is_dir("data"));
        assert!(f.is_dir("empty"));
        assert!(!f.is_dir("m"));
        assert_eq!(f.files_under("data").count(), 1);
    }
}
