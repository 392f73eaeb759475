//! `images/images.txt`, the list of images `make images` builds, and the workspace facts
//! the images carry: the version they are tagged with and which package holds which
//! binary. The list is plain text (image, package, binary, role, base, libc and size
//! budget per line) so that shell scripts read it as easily as this crate, and so that it
//! can be generated from the catalog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{read, CheckError};

/// What a container of an image does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads `SOURCE_PATH`, writes `TARGET_PATH`, exits.
    Processor,
    /// Serves `MODEL_PATH` on `PORT` until stopped.
    Runtime,
}

impl Role {
    /// The environment contract of the role (docs/model-directory.md): every container of
    /// the role gets these, from its manifest or from the image's defaults.
    pub fn contract_env(self) -> &'static [&'static str] {
        match self {
            Role::Processor => &["SOURCE_PATH", "TARGET_PATH"],
            Role::Runtime => &["MODEL_PATH", "PORT"],
        }
    }
}

/// What an image is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: the static binary alone.
    Scratch,
    /// `FROM ${BASE_IMAGE}`, default the project's Debian base.
    Debian,
    /// `FROM ${BASE_IMAGE}`, default the project's Python 3.11 base.
    Python,
}

impl Base {
    /// The `ARG BASE_IMAGE=` default a non-scratch Dockerfile declares (the base
    /// images/base/build.sh makes); `None` for scratch.
    pub fn default_image(self) -> Option<&'static str> {
        match self {
            Base::Scratch => None,
            Base::Debian => Some("toolkit-base-debian:bookworm"),
            Base::Python => Some("toolkit-base-python:3.11"),
        }
    }
}

/// Which build of the binary an image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    /// The static `x86_64-unknown-linux-musl` build (any base).
    Musl,
    /// The host's glibc build (needs a glibc base).
    Glibc,
}

/// One line of `images/images.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub image: String,
    pub package: String,
    pub binary: String,
    pub role: Role,
    pub base: Base,
    pub libc: Libc,
    /// The size budget, in MB (10^6 bytes).
    pub max_mb: u64,
}

/// Parses `images/images.txt`: `#` comments and blank lines, else exactly seven fields.
pub fn parse_images_list(text: &str, path: &Path) -> Result<Vec<ImageSpec>, CheckError> {
    let mut out: Vec<ImageSpec> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [image, package, binary, role, base, libc, max_mb] = fields[..] else {
            return Err(CheckError::parse(
                path,
                format!(
                    "line {}: expected 7 fields (image package binary role base libc max_mb), found {}",
                    n + 1,
                    fields.len()
                ),
            ));
        };
        let bad = |what: &str| CheckError::parse(path, format!("line {}: {what}", n + 1));
        let base = match base {
            "scratch" => Base::Scratch,
            "debian" => Base::Debian,
            "python" => Base::Python,
            other => {
                return Err(bad(&format!(
                    "base {other:?} is not \"scratch\", \"debian\" or \"python\""
                )))
            }
        };
        let libc = match libc {
            "musl" => Libc::Musl,
            "glibc" => Libc::Glibc,
            other => return Err(bad(&format!("libc {other:?} is not \"musl\" or \"glibc\""))),
        };
        if base == Base::Scratch && libc != Libc::Musl {
            return Err(bad("a FROM scratch image needs the static musl build"));
        }
        let max_mb: u64 = max_mb
            .parse()
            .map_err(|_| bad(&format!("max_mb {max_mb:?} is not a whole number")))?;
        let role = match role {
            "processor" => Role::Processor,
            "runtime" => Role::Runtime,
            other => {
                return Err(CheckError::parse(
                    path,
                    format!(
                        "line {}: role {other:?} is not \"processor\" or \"runtime\"",
                        n + 1
                    ),
                ))
            }
        };
        if out.iter().any(|s| s.image == image) {
            return Err(CheckError::parse(
                path,
                format!("line {}: image {image} is listed twice", n + 1),
            ));
        }
        out.push(ImageSpec {
            image: image.to_owned(),
            package: package.to_owned(),
            binary: binary.to_owned(),
            role,
            base,
            libc,
            max_mb,
        });
    }
    if out.is_empty() {
        return Err(CheckError::parse(path, "lists no image"));
    }
    Ok(out)
}

/// Reads `images/images.txt` under the repository root.
pub fn read_images_list(root: &Path) -> Result<Vec<ImageSpec>, CheckError> {
    let path = root.join("images/images.txt");
    parse_images_list(&read(&path)?, &path)
}

/// A workspace member: its folder and its binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub dir: PathBuf,
    pub binaries: Vec<String>,
}

/// What the root `Cargo.toml` says about the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub version: String,
    pub repository: String,
    pub license: String,
    /// Members by package name.
    pub packages: BTreeMap<String, Package>,
}

fn parse_toml(path: &Path) -> Result<toml::Table, CheckError> {
    read(path)?
        .parse::<toml::Table>()
        .map_err(|e| CheckError::parse(path, e.to_string()))
}

fn string_at<'a>(
    table: &'a toml::Table,
    keys: &[&str],
    path: &Path,
) -> Result<&'a str, CheckError> {
    let mut cur = table;
    let (last, parents) = keys.split_last().expect("at least one key");
    for k in parents {
        cur = cur.get(*k).and_then(|v| v.as_table()).ok_or_else(|| {
            CheckError::parse(
                path,
                format!("no [{}] table", keys[..keys.len() - 1].join(".")),
            )
        })?;
    }
    cur.get(*last)
        .and_then(|v| v.as_str())
        .ok_or_else(|| CheckError::parse(path, format!("no string {}", keys.join("."))))
}

/// Reads the root `Cargo.toml` and every member's: version, repository and licence of
/// `[workspace.package]`, and each member's package name and binaries.
pub fn read_workspace(root: &Path) -> Result<Workspace, CheckError> {
    let path = root.join("Cargo.toml");
    let top = parse_toml(&path)?;
    let members = top
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .ok_or_else(|| CheckError::parse(&path, "no workspace.members"))?;
    let mut packages = BTreeMap::new();
    for m in members {
        let m = m
            .as_str()
            .ok_or_else(|| CheckError::parse(&path, "a workspace member is not a string"))?;
        let dir = root.join(m);
        let mpath = dir.join("Cargo.toml");
        let t = parse_toml(&mpath)?;
        let name = string_at(&t, &["package", "name"], &mpath)?.to_owned();
        let mut binaries: Vec<String> = t
            .get("bin")
            .and_then(|b| b.as_array())
            .map(|bins| {
                bins.iter()
                    .filter_map(|b| b.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if binaries.is_empty() && dir.join("src/main.rs").is_file() {
            binaries.push(name.clone());
        }
        packages.insert(name, Package { dir, binaries });
    }
    Ok(Workspace {
        version: string_at(&top, &["workspace", "package", "version"], &path)?.to_owned(),
        repository: string_at(&top, &["workspace", "package", "repository"], &path)?.to_owned(),
        license: string_at(&top, &["workspace", "package", "license"], &path)?.to_owned(),
        packages,
    })
}
