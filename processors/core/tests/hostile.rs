//! The hostile-archive suite: zip, tar, tar.gz and directory sources built here byte by
//! byte (see `hostile/forge.rs`), each read two ways:
//!
//! - through the core as a processor that unpacks does it (`Staging::prepare` on a fresh
//!   target, a `DirSink` into the staging directory, `read_source`), asserting the exact
//!   error and its exit class, that the failed staging left the target empty, that no
//!   `model.json` exists, that nothing was written next to the target or at an absolute
//!   path the archive named, and that no link was created anywhere;
//! - end to end through `cli::process` with the real H2O-3 MOJO processor (zip and
//!   directory sources; it refuses tars before reading them), asserting its error.
//!
//! Legitimate archives written by real tools (`fixtures/writers/`) must keep passing.

#[path = "hostile/forge.rs"]
mod forge;

use std::path::{Path, PathBuf};

use artifact_core::{
    read_source, Classify, Context, DirSink, ErrorClass, Limits, ReadOptions, Staging,
};
use forge::{gzip, zip, zip_with, Tar, Th, Ze, ZipOpts};
use h2o3_mojo::{H2o3MojoProcessor, NoArgs};

const INI: &str = "[info]\nh2o_version = 3.46.0.11\nmojo_version = 1.00\nalgo = glm\nalgorithm = Generalized Linear Modeling\ncategory = Regression\nuuid = 42\nsupervised = true\nn_features = 2\nn_classes = 1\nn_columns = 3\nn_domains = 1\nbalance_classes = false\ndefault_threshold = 0.5\n\n[columns]\na\nb\ny\n\n[domains]\n1: 2 d000.txt\n";
const DOMAIN: &[u8] = b"x\ny\n";

/// A canary path outside every temp dir that absolute entry names aim at.
fn canary() -> PathBuf {
    std::env::temp_dir().join(format!("hostile-canary-{}", std::process::id()))
}

/// A valid MOJO's entries followed by `extra`: every refusal is then due to `extra`.
fn mojo_with(extra: Vec<Ze>) -> Vec<Ze> {
    let mut v = vec![
        Ze::file("model.ini", INI.as_bytes()),
        Ze::file("domains/d000.txt", DOMAIN),
    ];
    v.extend(extra);
    v
}

fn mojo_zip(extra: Vec<Ze>) -> Vec<u8> {
    zip(&mojo_with(extra))
}

fn tar_base() -> Tar {
    Tar::new()
        .file("MLmodel", b"flavors: {}\n")
        .dir("artifacts/")
}

enum Src {
    Zip(Vec<u8>),
    Tar(Vec<u8>),
    TarGz(Vec<u8>),
    /// A folder source built by the closure.
    Dir(Box<dyn Fn(&Path)>),
}

/// What the H2O-3 processor must say about the same source.
enum EndToEnd {
    /// The core's message.
    Same,
    /// A message of its own (format-level cases).
    Says(&'static str),
    /// Not run: the processor refuses tars before reading them.
    Skip,
}

struct Case {
    name: &'static str,
    src: Src,
    /// The exact error; `{src}` is the source path, `{n}` any decimal number.
    expect: &'static str,
    limits: Option<Limits>,
    e2e: EndToEnd,
}

fn case(name: &'static str, src: Src, expect: &'static str) -> Case {
    let e2e = match src {
        Src::Zip(_) | Src::Dir(_) => EndToEnd::Same,
        _ => EndToEnd::Skip,
    };
    Case {
        name,
        src,
        expect,
        limits: None,
        e2e,
    }
}

impl Case {
    fn limits(mut self, l: Limits) -> Case {
        self.limits = Some(l);
        self
    }
    fn e2e(mut self, e: EndToEnd) -> Case {
        self.e2e = e;
        self
    }
}

/// `got` matches `pattern` where `{n}` stands for a decimal number.
fn matches(pattern: &str, got: &str) -> bool {
    let mut parts = pattern.split("{n}");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = got.strip_prefix(first) else {
        return false;
    };
    for part in parts {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        match rest[digits..].strip_prefix(part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Every path below `root`, with whether it is a symlink.
fn tree(root: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            out.push((e.path(), ft.is_symlink()));
            if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

fn write_source(tmp: &Path, src: &Src) -> PathBuf {
    let (name, bytes) = match src {
        Src::Zip(b) => ("upload.zip", b),
        Src::Tar(b) => ("upload.tar", b),
        Src::TarGz(b) => ("upload.tar.gz", b),
        Src::Dir(build) => {
            let p = tmp.join("upload");
            std::fs::create_dir(&p).unwrap();
            build(&p);
            return p;
        }
    };
    let p = tmp.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn check_refusal(
    expect: &str,
    result: artifact_core::Result<artifact_core::Listing>,
) -> Result<(), String> {
    let err = match result {
        Ok(l) => return Err(format!("accepted, listing {:?}", l.files)),
        Err(e) => e,
    };
    if !matches(expect, &err.to_string()) {
        return Err(format!("error\n  got:  {err}\n  want: {expect}"));
    }
    if err.class() != ErrorClass::Artifact {
        return Err(format!("class {:?}, want Artifact (exit 3)", err.class()));
    }
    Ok(())
}

/// Runs one case both ways and checks every invariant; returns what went wrong.
fn run_case(c: &Case) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let src = write_source(tmp.path(), &c.src);
    let opts = ReadOptions {
        limits: c.limits.unwrap_or_default(),
        ..ReadOptions::default()
    };
    let expect = c.expect.replace("{src}", &src.display().to_string());
    let before: Vec<(PathBuf, bool)> = tree(tmp.path());

    // 1. Unpacking into a staging directory, as an extracting processor does.
    let target = tmp.path().join("target");
    let staging = Staging::prepare(&target, false).map_err(|e| e.to_string())?;
    let result = {
        let mut sink = DirSink::new(staging.dir().join("x"), |n: &str| Some(n.to_string()));
        read_source(&src, &opts, &mut sink)
    };
    drop(staging);
    if c.expect.is_empty() {
        // A format-level case: the archive itself is sound.
        if let Err(e) = result {
            return Err(format!("the core refused it: {e}"));
        }
    } else {
        check_refusal(&expect, result)?;
    }
    if target.join("model.json").exists() {
        return Err("model.json exists".into());
    }
    let left: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
    if !left.is_empty() {
        return Err(format!("the target is not empty: {left:?}"));
    }
    // Nothing new next to the source and the target, no link anywhere, nothing at the
    // absolute path the archives aim at.
    let mut after = tree(tmp.path());
    after.retain(|(p, _)| p != &target);
    if after != before {
        return Err(format!("the temp dir changed: {after:?}"));
    }
    if canary().exists() {
        return Err(format!("{} was created", canary().display()));
    }

    // 2. End to end through the real H2O-3 processor.
    let want = match c.e2e {
        EndToEnd::Skip => return Ok(()),
        EndToEnd::Same => expect.clone(),
        EndToEnd::Says(s) => s.replace("{src}", &src.display().to_string()),
    };
    let target = tmp.path().join("target-e2e");
    let ctx = Context {
        read: opts.clone(),
        args: NoArgs {},
    };
    match artifact_core::cli::process::<H2o3MojoProcessor>(&src, &target, false, &ctx) {
        Ok(_) => return Err("the processor accepted it".into()),
        Err(e) => {
            if !matches(&want, &e.to_string()) {
                return Err(format!("processor error\n  got:  {e}\n  want: {want}"));
            }
            if e.class() != ErrorClass::Artifact {
                return Err(format!("processor class {:?}", e.class()));
            }
        }
    }
    if target.join("model.json").exists() {
        return Err("processor: model.json exists".into());
    }
    // The target exists unless the source was refused before it was touched.
    if target.exists() && std::fs::read_dir(&target).unwrap().count() != 0 {
        return Err("processor: the target is not empty".into());
    }
    let mut after = tree(tmp.path());
    after.retain(|(p, _)| p != &target && !p.starts_with(tmp.path().join("target")));
    if after != before {
        return Err(format!("processor: the temp dir changed: {after:?}"));
    }
    Ok(())
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// Deterministic bytes that do not compress.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn hostile_cases() -> Vec<Case> {
    let canary = canary().display().to_string();
    let abs_name: &'static str = Box::leak(format!("{canary}/evil").into_boxed_str());
    let abs_expect: &'static str = Box::leak(
        format!("{{src}}: entry \"{canary}/evil\" is unsafe: absolute path").into_boxed_str(),
    );
    let ratio_bomb = vec![0u8; 2 << 20];
    let good_tar = tar_base().file("model.pkl", b"pickle").end();
    let good_tgz = gzip(&good_tar);
    vec![
        // ---------------------------------------------------------- zip: names
        case(
            "zip ../ traversal",
            Src::Zip(mojo_zip(vec![Ze::file("../evil", b"x")])),
            "{src}: entry \"../evil\" is unsafe: parent-directory component `..`",
        ),
        case(
            "zip inner ../ traversal",
            Src::Zip(mojo_zip(vec![Ze::file("a/../../evil", b"x")])),
            "{src}: entry \"a/../../evil\" is unsafe: parent-directory component `..`",
        ),
        case(
            "zip absolute path",
            Src::Zip(mojo_zip(vec![Ze::file(abs_name, b"x")])),
            abs_expect,
        ),
        case(
            "zip drive-letter path",
            Src::Zip(mojo_zip(vec![Ze::file("C:/evil", b"x")])),
            "{src}: entry \"C:/evil\" is unsafe: drive-letter prefix",
        ),
        case(
            "zip drive-letter path behind ./",
            Src::Zip(mojo_zip(vec![Ze::file("./C:/evil", b"x")])),
            "{src}: entry \"./C:/evil\" is unsafe: drive-letter prefix",
        ),
        case(
            "zip backslash traversal",
            Src::Zip(mojo_zip(vec![Ze::file("..\\evil", b"x")])),
            "{src}: entry \"..\\\\evil\" is unsafe: name holds a backslash",
        ),
        case(
            "zip NUL in name",
            Src::Zip(mojo_zip(vec![Ze::file("model.ini\0.txt", b"x")])),
            "{src}: entry \"model.ini\\0.txt\" is unsafe: name holds the control or format character '\\0'",
        ),
        case(
            "zip escape sequence in name",
            Src::Zip(mojo_zip(vec![Ze::file("a\x1b[2Jb", b"x")])),
            "{src}: entry \"a\\u{1b}[2Jb\" is unsafe: name holds the control or format character '\\u{1b}'",
        ),
        case(
            "zip bidi override in name",
            Src::Zip(mojo_zip(vec![Ze::file("model\u{202e}ini.exe", b"x")])),
            "{src}: entry \"model\\u{202e}ini.exe\" is unsafe: name holds the control or format character '\\u{202e}'",
        ),
        case(
            "zip non-UTF-8 name",
            Src::Zip(mojo_zip(vec![Ze {
                name: b"caf\xe9.txt".to_vec(),
                ..Ze::file("", b"x")
            }])),
            "{src}: entry \"caf\u{fffd}.txt\" is unsafe: name is not UTF-8",
        ),
        // ---------------------------------------------------------- zip: entry types
        case(
            "zip symlink to outside",
            Src::Zip(mojo_zip(vec![Ze::stored("link", b"/etc").with(|e| e.mode = Some(0o120777))])),
            "{src}: entry \"link\" is unsafe: symbolic link",
        ),
        case(
            "zip symlink then a file through it",
            Src::Zip(mojo_zip(vec![
                Ze::stored("out", b"..").with(|e| e.mode = Some(0o120777)),
                Ze::file("out/evil", b"x"),
            ])),
            "{src}: entry \"out\" is unsafe: symbolic link",
        ),
        case(
            "zip FIFO",
            Src::Zip(mojo_zip(vec![Ze::stored("fifo", b"").with(|e| e.mode = Some(0o010644))])),
            "{src}: entry \"fifo\" is unsafe: special file (device, FIFO or socket)",
        ),
        case(
            "zip character device",
            Src::Zip(mojo_zip(vec![Ze::stored("null", b"").with(|e| e.mode = Some(0o020666))])),
            "{src}: entry \"null\" is unsafe: special file (device, FIFO or socket)",
        ),
        // ---------------------------------------------------------- zip: collisions
        case(
            "zip duplicate names",
            Src::Zip(mojo_zip(vec![Ze::file("model.ini", b"[info]\nalgorithm = evil\n")])),
            "{src}: invalid archive: duplicate entry: the central directory lists 3 entries but only 2 distinct names",
        ),
        case(
            "zip names differing by case",
            Src::Zip(mojo_zip(vec![Ze::file("Model.ini", b"x")])),
            "{src}: entry \"Model.ini\" is unsafe: name collides with \"model.ini\" when case or Unicode normalization is ignored",
        ),
        case(
            "zip names differing by Unicode normalization",
            Src::Zip(mojo_zip(vec![
                Ze::file("caf\u{e9}.txt", b"nfc"),
                Ze::file("cafe\u{301}.txt", b"nfd"),
            ])),
            "{src}: entry \"cafe\\u{301}.txt\" is unsafe: name collides with \"caf\u{e9}.txt\" when case or Unicode normalization is ignored",
        ),
        case(
            "zip directory differing by case from a parent",
            Src::Zip(mojo_zip(vec![Ze::file("Domains/d001.txt", b"x")])),
            "{src}: entry \"Domains/d001.txt\" is unsafe: name collides with \"domains\" when case or Unicode normalization is ignored",
        ),
        case(
            "zip file used as a directory",
            Src::Zip(mojo_zip(vec![Ze::file("model.ini/x", b"x")])),
            "{src}: entry \"model.ini/x\" is unsafe: its parent \"model.ini\" is a file",
        ),
        // ---------------------------------------------------------- zip: header disagreement
        case(
            "zip local name differs from central name",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"x").with(|e| e.local_name = Some(b"../../evil.".to_vec()))])),
            "{src}: entry \"weights.bin\": local header disagrees with the central directory: name",
        ),
        case(
            "zip local method differs",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"xxxxxxxx").with(|e| e.local_method = Some(0))])),
            "{src}: entry \"weights.bin\": local header disagrees with the central directory: compression method",
        ),
        case(
            "zip local CRC differs",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"x").with(|e| e.local_crc = Some(7))])),
            "{src}: entry \"weights.bin\": local header disagrees with the central directory: CRC-32",
        ),
        case(
            "zip local sizes differ",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"x").with(|e| e.local_sizes = Some((3, 1000)))])),
            "{src}: entry \"weights.bin\": local header disagrees with the central directory: sizes",
        ),
        case(
            "zip data descriptor disagrees",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"abc").with(|e| {
                e.flags = 8;
                let mut d = b"PK\x07\x08".to_vec();
                d.extend_from_slice(&0xdead_beefu32.to_le_bytes());
                d.extend_from_slice(&[0; 8]);
                e.descriptor = Some(d);
            })])),
            "{src}: entry \"weights.bin\": data descriptor disagrees with the central directory: CRC-32",
        ),
        case(
            "zip overlapping entries",
            Src::Zip(overlapping_zip()),
            "{src}: invalid archive: entries \"outer.bin\" and \"inner.bin\" overlap",
        ),
        case(
            "zip hidden local entry between entries",
            Src::Zip(zip_with(
                &mojo_with(vec![]),
                &ZipOpts {
                    gap: forge::local_header(&Ze::stored("hidden.bin", b"evil"), 4)
                        .into_iter()
                        .chain(*b"evil")
                        .collect(),
                    ..ZipOpts::default()
                },
            )),
            "{src}: invalid archive: 44 bytes before the central directory belong to no entry (hidden data or a hidden entry)",
        ),
        // ---------------------------------------------------------- zip: unsupported data
        case(
            "zip encrypted entry",
            Src::Zip(mojo_zip(vec![Ze::stored("weights.bin", b"ciphertext").with(|e| e.flags = 1)])),
            "{src}: entry \"weights.bin\": encrypted entries are not supported",
        ),
        case(
            "zip encrypted in the local header only",
            Src::Zip(mojo_zip(vec![Ze::stored("weights.bin", b"ciphertext").with(|e| e.local_flags = Some(1))])),
            "{src}: entry \"weights.bin\": encrypted entries are not supported",
        ),
        case(
            "zip bzip2 method",
            Src::Zip(mojo_zip(vec![Ze::stored("weights.bin", b"BZh91AY&SY").with(|e| e.method = Some(12))])),
            "{src}: entry \"weights.bin\": unsupported compression method Unsupported(12) (only stored and deflate)",
        ),
        case(
            "zip AES method 99",
            Src::Zip(mojo_zip(vec![Ze::stored("weights.bin", b"0123456789").with(|e| e.method = Some(99))])),
            "{src}: entry \"weights.bin\": unsupported compression method Unsupported(99) (only stored and deflate)",
        ),
        case(
            "zip unknown method 77",
            Src::Zip(mojo_zip(vec![Ze::stored("weights.bin", b"0123456789").with(|e| e.method = Some(77))])),
            "{src}: entry \"weights.bin\": unsupported compression method Unsupported(77) (only stored and deflate)",
        ),
        case(
            "zip CRC mismatch",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"real data").with(|e| e.crc = Some(0x1234_5678))])),
            "{src}: entry \"weights.bin\": CRC-32 mismatch: the data does not match its checksum",
        ),
        case(
            "zip declared size larger than the data",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"real data").with(|e| e.size = Some(100))])),
            "{src}: entry \"weights.bin\": declared size 100 but 9 bytes were read",
        ),
        case(
            "zip declared size smaller than the data",
            Src::Zip(mojo_zip(vec![Ze::file("weights.bin", b"real data, longer").with(|e| e.size = Some(4))])),
            "{src}: entry \"weights.bin\": cannot read its data: File is larger than its declared uncompressed size",
        ),
        // ---------------------------------------------------------- zip: container
        case(
            "zip data after the end record",
            Src::Zip(zip_with(&mojo_with(vec![]), &ZipOpts { trailing: b"#!/bin/sh\nrm -rf /\n".to_vec(), ..ZipOpts::default() })),
            "{src}: invalid archive: data after the end-of-central-directory record",
        ),
        case(
            "zip comment hiding a second zip",
            Src::Zip(zip_with(&mojo_with(vec![]), &ZipOpts { comment: zip(&[Ze::file("model.ini", b"evil")]), ..ZipOpts::default() })),
            "{src}: invalid archive: the archive comment holds another zip record",
        ),
        case(
            "zip central directory offset lie",
            Src::Zip(zip_with(&mojo_with(vec![]), &ZipOpts { cd_offset: Some(3), ..ZipOpts::default() })),
            "{src}: invalid archive: the central directory ({n} bytes at offset 3) does not end where the end records begin (offset {n})",
        ),
        case(
            "zip multi-disk archive",
            Src::Zip(zip_with(&mojo_with(vec![]), &ZipOpts { disk: Some(1), ..ZipOpts::default() })),
            "{src}: invalid archive: split or spanned (multi-disk) archives are not supported",
        ),
        case(
            "zip64 locator pointing nowhere",
            Src::Zip(zip64_bad_locator()),
            "{src}: invalid archive: the zip64 end-of-central-directory locator points at no zip64 end record right before it",
        ),
        case(
            "zip entry count lie",
            Src::Zip(zip_with(&mojo_with(vec![]), &ZipOpts { count: Some(60000), ..ZipOpts::default() })),
            "{src}: invalid archive: the end record declares 60000 entries but the central directory is only {n} bytes",
        ),
        case(
            "zip empty archive",
            Src::Zip(zip(&[])),
            "{src}: invalid archive: it holds no files",
        ),
        case(
            "empty file",
            Src::Zip(Vec::new()),
            "source {src} is not a zip, tar, tar.gz or directory: the file is empty",
        ),
        case(
            "zip only directories",
            Src::Zip(zip(&[Ze::dir("a/"), Ze::dir("a/b/")])),
            "{src}: invalid archive: it holds no files",
        ),
        case(
            "zip truncated in the middle",
            Src::Zip({ let z = mojo_zip(vec![]); z[..z.len() / 2].to_vec() }),
            "{src}: invalid archive: no end-of-central-directory record: the zip is truncated or not a zip",
        ),
        case(
            "zip truncated inside the end record",
            Src::Zip({ let z = mojo_zip(vec![]); z[..z.len() - 5].to_vec() }),
            "{src}: invalid archive: no end-of-central-directory record: the zip is truncated or not a zip",
        ),
        // ---------------------------------------------------------- zip: bombs
        case(
            "zip bomb: compression ratio",
            Src::Zip(mojo_zip(vec![Ze::file("bomb.bin", &ratio_bomb)])),
            "{src}: compression ratio limit exceeded at entry \"bomb.bin\": {n} > 200 (raise it with --max-ratio)",
        ),
        case(
            "zip bomb: total size",
            Src::Zip(mojo_zip(vec![
                Ze::file("a.bin", &noise(300_000, 1)),
                Ze::file("b.bin", &noise(300_000, 2)),
            ])),
            "{src}: total size limit exceeded at entry \"b.bin\": {n} > 500000 (raise it with --max-total-bytes)",
        )
        .limits(limits(|l| l.max_total_bytes = 500_000)),
        case(
            "zip bomb: one file's size",
            Src::Zip(mojo_zip(vec![Ze::file("a.bin", &noise(300_000, 3))])),
            "{src}: file size limit exceeded at entry \"a.bin\": {n} > 200000 (raise it with --max-file-bytes)",
        )
        .limits(limits(|l| l.max_file_bytes = 200_000)),
        case(
            "zip bomb: entry count",
            Src::Zip(zip(&(0..50).map(|i| Ze::file(&format!("f{i}"), b"")).collect::<Vec<_>>())),
            "{src}: entry count limit exceeded: 50 > 20 (raise it with --max-entries)",
        )
        .limits(limits(|l| l.max_entries = 20)),
        case(
            "zip name too deep",
            Src::Zip(mojo_zip(vec![Ze::file(&format!("{}f", "d/".repeat(40)), b"x")])),
            "{src}: entry \"d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/f\" is unsafe: name is 41 components deep, more than 32",
        ),
        // ---------------------------------------------------------- zip: the format
        case(
            "MOJO whose model.ini is a directory",
            Src::Zip(zip(&[Ze::dir("model.ini/"), Ze::file("model.ini/x", INI.as_bytes()), Ze::file("domains/d000.txt", DOMAIN)])),
            "",
        )
        .e2e(EndToEnd::Says("{src}: not an H2O-3 MOJO: no model.ini (found domains/d000.txt, model.ini/x)")),
        case(
            "MOJO with a gigantic model.ini line",
            Src::Zip(zip(&[
                Ze::stored("model.ini", gigantic_ini().as_bytes())
                    .with(|e| e.crc = Some(GIGANTIC_INI_CRC)),
                Ze::file("domains/d000.txt", DOMAIN),
            ])),
            "",
        )
        .e2e(EndToEnd::Says("{src}: model.ini: line 4: line is 67108865 bytes long, more than 67108864")),
        // ---------------------------------------------------------- tar: names and types
        case(
            "tar ../ traversal",
            Src::Tar(tar_base().file("../../evil", b"x").end()),
            "{src}: entry \"../../evil\" is unsafe: parent-directory component `..`",
        ),
        case(
            "tar absolute path",
            Src::Tar(tar_base().file(abs_name, b"x").end()),
            abs_expect,
        ),
        case(
            "tar drive-letter path",
            Src::Tar(tar_base().file("C:/evil", b"x").end()),
            "{src}: entry \"C:/evil\" is unsafe: drive-letter prefix",
        ),
        case(
            "tar drive-letter path with a backslash",
            Src::Tar(tar_base().file("C:\\evil", b"x").end()),
            "{src}: entry \"C:\\\\evil\" is unsafe: name holds a backslash",
        ),
        case(
            "tar newline in name",
            Src::Tar(tar_base().file("a\nb", b"x").end()),
            "{src}: entry \"a\\nb\" is unsafe: name holds the control or format character '\\n'",
        ),
        case(
            "tar non-UTF-8 name",
            Src::Tar(tar_base().raw(Th::new(b'0', b"caf\xe9", 1), b"x").end()),
            "{src}: entry \"caf\u{fffd}\" is unsafe: name is not UTF-8",
        ),
        case(
            "tar symlink to outside",
            Src::Tar(tar_base().raw(Th { link: b"/etc".to_vec(), ..Th::new(b'2', b"etc", 0) }, b"").end()),
            "{src}: entry \"etc\" is unsafe: symbolic link",
        ),
        case(
            "tar symlink then a file through it",
            Src::Tar(tar_base()
                .raw(Th { link: b"../..".to_vec(), ..Th::new(b'2', b"up", 0) }, b"")
                .file("up/evil", b"x")
                .end()),
            "{src}: entry \"up\" is unsafe: symbolic link",
        ),
        case(
            "tar hard link to outside",
            Src::Tar(tar_base().raw(Th { link: b"/etc/passwd".to_vec(), ..Th::new(b'1', b"passwd", 0) }, b"").end()),
            "{src}: entry \"passwd\" is unsafe: hard link",
        ),
        case(
            "tar hard link inside",
            Src::Tar(tar_base().raw(Th { link: b"MLmodel".to_vec(), ..Th::new(b'1', b"copy", 0) }, b"").end()),
            "{src}: entry \"copy\" is unsafe: hard link",
        ),
        case(
            "tar character device",
            Src::Tar(tar_base().raw(Th::new(b'3', b"null", 0), b"").end()),
            "{src}: entry \"null\" is unsafe: device file",
        ),
        case(
            "tar block device",
            Src::Tar(tar_base().raw(Th::new(b'4', b"sda", 0), b"").end()),
            "{src}: entry \"sda\" is unsafe: device file",
        ),
        case(
            "tar FIFO",
            Src::Tar(tar_base().raw(Th::new(b'6', b"pipe", 0), b"").end()),
            "{src}: entry \"pipe\" is unsafe: FIFO",
        ),
        case(
            "tar sparse entry",
            Src::Tar(tar_base().raw(Th::new(b'S', b"sparse", 0), b"").end()),
            "{src}: invalid archive: sparse entry type listed but not GNU header",
        ),
        case(
            "tar PAX global header",
            Src::Tar(tar_base().raw(Th::new(b'g', b"global", 13), &forge::pax(&[("path", b"evil")])).end()),
            "{src}: entry \"global\" is unsafe: PAX global header",
        ),
        case(
            "tar duplicate names",
            Src::Tar(tar_base().file("MLmodel", b"flavors: {evil: 1}\n").end()),
            "{src}: entry \"MLmodel\" is unsafe: duplicate entry",
        ),
        case(
            "tar names differing by case",
            Src::Tar(tar_base().file("mlmodel", b"x").end()),
            "{src}: entry \"mlmodel\" is unsafe: name collides with \"MLmodel\" when case or Unicode normalization is ignored",
        ),
        case(
            "tar directory carrying data",
            Src::Tar(tar_base().raw(Th::new(b'5', b"data/", 3), b"abc").end()),
            "{src}: entry \"data/\": a directory entry carries data",
        ),
        // ---------------------------------------------------------- tar: header differentials
        case(
            "tar PAX path renames the entry",
            Src::Tar(tar_base().pax(&[("path", b"weights.bin")]).file("model.pkl", b"x").end()),
            "{src}: entry \"weights.bin\" is unsafe: its PAX path renames the entry its ustar header names \"model.pkl\"",
        ),
        case(
            "tar PAX path with a traversal",
            Src::Tar(tar_base().pax(&[("path", b"../../evil")]).file("../../evil", b"x").end()),
            "{src}: entry \"../../evil\" is unsafe: parent-directory component `..`",
        ),
        case(
            "tar PAX path with NUL",
            Src::Tar(tar_base().pax(&[("path", b"model.pkl\0../../evil")]).file("model.pkl", b"x").end()),
            "{src}: entry \"model.pkl\\0../../evil\" is unsafe: its PAX path renames the entry its ustar header names \"model.pkl\"",
        ),
        case(
            "tar GNU long name renames the entry",
            Src::Tar(tar_base().long_name("weights.bin").file("model.pkl", b"x").end()),
            "{src}: entry \"weights.bin\" is unsafe: its GNU long name renames the entry its ustar header names \"model.pkl\"",
        ),
        case(
            "tar GNU long name and PAX path disagree",
            Src::Tar(tar_base().long_name("a.bin").pax(&[("path", b"b.bin")]).file("a.bin", b"x").end()),
            "{src}: entry \"a.bin\" is unsafe: a GNU long name and a PAX path name it differently (\"b.bin\")",
        ),
        case(
            "tar PAX path repeated",
            Src::Tar(tar_base().pax(&[("path", b"a.bin"), ("path", b"b.bin")]).file("a.bin", b"x").end()),
            "{src}: entry \"a.bin\" is unsafe: PAX record \"path\" appears twice",
        ),
        case(
            "tar PAX size disagrees with the ustar size",
            Src::Tar(tar_base().pax(&[("size", b"1")]).file("a.bin", b"xy").end()),
            "{src}: entry \"a.bin\" is unsafe: its PAX size 1 disagrees with its ustar size 2",
        ),
        case(
            "tar oversized PAX header (memory bomb)",
            Src::Tar(tar_base().pax(&[("comment", &vec![b'a'; 2 << 20])]).file("a.bin", b"x").end()),
            "{src}: invalid archive: entry #2: its headers (PAX records, GNU long names) take more than 1048576 bytes ({n} read)",
        ),
        case(
            "tar oversized GNU long name (memory bomb)",
            Src::Tar(tar_base().long_name(&"n".repeat(3 << 20)).file("a.bin", b"x").end()),
            "{src}: invalid archive: entry #2: its headers (PAX records, GNU long names) take more than 1048576 bytes ({n} read)",
        ),
        case(
            "tar.gz bomb in the headers: compression ratio",
            Src::TarGz(gzip(&tar_base().pax(&[("comment", &vec![b'a'; 3 << 20])]).file("a.bin", b"x").end())),
            "{src}: compression ratio limit exceeded: {n} > 20 (raise it with --max-ratio)",
        )
        .limits(limits(|l| l.max_ratio = 20)),
        case(
            "tar header checksum mismatch",
            Src::Tar(tar_base().raw(Th { bad_checksum: true, ..Th::new(b'0', b"a.bin", 1) }, b"x").end()),
            "{src}: invalid archive: archive header checksum mismatch",
        ),
        // ---------------------------------------------------------- tar: container
        case(
            "tar declared size past the end",
            Src::Tar({ let mut t = tar_base().raw(Th::new(b'0', b"a.bin", 100_000), b"short").0; t.truncate(t.len() - 100); t }),
            "{src}: entry \"a.bin\": declared size 100000 but 412 bytes were read",
        ),
        case(
            "tar truncated at an entry boundary",
            Src::Tar(tar_base().file("a.bin", b"x").0),
            "{src}: invalid archive: truncated: the archive ends without its end-of-archive marker",
        ),
        case(
            "tar truncated inside a header",
            Src::Tar({ let t = tar_base().file("a.bin", b"x").end(); t[..1024 + 512 + 100].to_vec() }),
            "{src}: invalid archive: truncated: the archive ends inside an entry",
        ),
        case(
            "tar second archive after the end marker",
            Src::Tar({ let mut t = good_tar.clone(); t.extend(Tar::new().file("evil.bin", b"x").end()); t }),
            "{src}: invalid archive: data after the end-of-archive marker",
        ),
        case(
            "tar empty archive",
            Src::Tar(Tar::new().dir("empty/").end()),
            "{src}: invalid archive: it holds no files",
        ),
        case(
            "tar.gz bomb: compression ratio",
            Src::TarGz(gzip(&tar_base().file("bomb.bin", &ratio_bomb).end())),
            "{src}: compression ratio limit exceeded at entry \"bomb.bin\": {n} > 200 (raise it with --max-ratio)",
        ),
        case(
            "tar.gz bomb: zero padding after the end",
            Src::TarGz(gzip(&{ let mut t = good_tar.clone(); t.extend(vec![0u8; 4 << 20]); t })),
            "{src}: invalid archive: more than 2097152 bytes of padding after the end-of-archive marker",
        ),
        case(
            "tar.gz bomb: entry count",
            Src::TarGz(gzip(&(0..50).fold(Tar::new(), |t, i| t.file(&format!("f{i}"), b"")).end())),
            "{src}: entry count limit exceeded at entry \"f20\": 21 > 20 (raise it with --max-entries)",
        )
        .limits(limits(|l| l.max_entries = 20)),
        case(
            "tar.gz truncated stream",
            Src::TarGz(good_tgz[..good_tgz.len() - 20].to_vec()),
            "{src}: invalid archive: truncated: the archive ends inside an entry",
        ),
        // ---------------------------------------------------------- directories
        case(
            "directory with a symlink to outside",
            Src::Dir(Box::new(|p: &Path| {
                mojo_dir(p);
                std::os::unix::fs::symlink("/etc/passwd", p.join("passwd")).unwrap();
            })),
            "{src}: entry \"passwd\" is unsafe: symbolic link",
        ),
        case(
            "directory with a symlinked folder",
            Src::Dir(Box::new(|p: &Path| {
                mojo_dir(p);
                std::os::unix::fs::symlink("/tmp", p.join("trees")).unwrap();
            })),
            "{src}: entry \"trees\" is unsafe: symbolic link",
        ),
        case(
            "directory with a FIFO",
            Src::Dir(Box::new(|p: &Path| {
                mojo_dir(p);
                let st = std::process::Command::new("mkfifo").arg(p.join("pipe")).status().unwrap();
                assert!(st.success());
            })),
            "{src}: entry \"pipe\" is unsafe: special file (device, FIFO or socket)",
        ),
        case(
            "directory with a control character in a name",
            Src::Dir(Box::new(|p: &Path| {
                mojo_dir(p);
                std::fs::write(p.join("a\rb"), b"x").unwrap();
            })),
            "{src}: entry \"a\\rb\" is unsafe: name holds the control or format character '\\r'",
        ),
        case(
            "empty directory",
            Src::Dir(Box::new(|p: &Path| std::fs::create_dir(p.join("sub")).unwrap())),
            "{src}: invalid archive: it holds no files",
        )
        .e2e(EndToEnd::Same),
    ]
}

fn mojo_dir(p: &Path) {
    std::fs::write(p.join("model.ini"), INI).unwrap();
    std::fs::create_dir(p.join("domains")).unwrap();
    std::fs::write(p.join("domains/d000.txt"), DOMAIN).unwrap();
}

/// CRC-32 of [`gigantic_ini`], computed once (`zlib.crc32`): a debug build takes seconds
/// to checksum 64 MiB. If the text changes, the reader reports a CRC mismatch.
const GIGANTIC_INI_CRC: u32 = 0x1dd3_1a78;

/// A valid model.ini whose fourth line is one byte over the reader's line limit.
fn gigantic_ini() -> String {
    let mut s = String::from("[info]\nh2o_version = 3.46.0.11\nmojo_version = 1.00\n");
    s.push_str("comment = ");
    s.push_str(&"a".repeat((64 << 20) + 1 - "comment = ".len()));
    s.push('\n');
    s.push_str(&INI["[info]\n".len()..]);
    s
}

/// Two central entries whose local records overlap: the second entry's local header
/// lies inside the first entry's stored data (the overlapping-file zip bomb).
fn overlapping_zip() -> Vec<u8> {
    let inner = Ze::stored("inner.bin", b"payload");
    let inner_local = forge::local_header(&inner, 7)
        .into_iter()
        .chain(*b"payload")
        .collect::<Vec<u8>>();
    let outer = Ze::stored("outer.bin", &inner_local);
    let mut out = forge::local_header(&outer, inner_local.len() as u32);
    let inner_offset = out.len() as u32;
    out.extend_from_slice(&inner_local);
    let cd_offset = out.len() as u32;
    let mut cd = forge::central_header(&outer, inner_local.len() as u32, 0);
    cd.extend(forge::central_header(&inner, 7, inner_offset));
    let cd_len = cd.len() as u32;
    out.extend(cd);
    out.extend(forge::end_record(2, cd_len, cd_offset, 0, b""));
    out
}

/// A valid zip with a zip64 locator inserted before its end record that points at
/// nothing.
fn zip64_bad_locator() -> Vec<u8> {
    let z = mojo_zip(vec![]);
    let eocd = z.len() - 22;
    let mut out = z[..eocd].to_vec();
    out.extend_from_slice(b"PK\x06\x07");
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&12345u64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&z[eocd..]);
    out
}

#[test]
fn hostile_archives_are_refused_with_their_own_error() {
    let t = std::time::Instant::now();
    let cases = hostile_cases();
    println!("built the cases in {:?}", t.elapsed());
    let mut failures = Vec::new();
    for c in &cases {
        let t = std::time::Instant::now();
        let r = run_case(c);
        if t.elapsed().as_millis() > 300 {
            println!("slow case {:?}: {:?}", c.name, t.elapsed());
        }
        if let Err(why) = r {
            failures.push(format!("case {:?}: {why}", c.name));
        }
    }
    let e2e = cases
        .iter()
        .filter(|c| !matches!(c.e2e, EndToEnd::Skip))
        .count();
    println!(
        "hostile cases: {} ({} also end to end through the H2O-3 processor)",
        cases.len(),
        e2e
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 40, "only {} cases", cases.len());
}

/// The same cases from a real S3 server (moto's; skipped with a message when `S3_VENV` is
/// unset): every zip, tar and tar.gz case read from `s3://` through the core, unpacking
/// into a staging directory, must be refused with the same error (naming the object) and
/// leave the target empty; the zip cases also end to end through the H2O-3 processor.
#[test]
fn hostile_archives_from_s3_are_refused_the_same_way() {
    let Some(s3) = testkit::s3::S3Server::start() else {
        return;
    };
    for (k, v) in s3.env() {
        std::env::set_var(k, v);
    }
    s3.create_bucket("uploads");
    let cases = hostile_cases();
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, c) in cases.iter().enumerate() {
        let (file, bytes) = match &c.src {
            Src::Zip(b) => ("upload.zip", b),
            Src::Tar(b) => ("upload.tar", b),
            Src::TarGz(b) => ("upload.tar.gz", b),
            Src::Dir(_) => continue,
        };
        n += 1;
        let key = format!("case-{i}/{file}");
        s3.put("uploads", &key, bytes);
        let uri = PathBuf::from(format!("s3://uploads/{key}"));
        let tmp = tempfile::tempdir().unwrap();
        let opts = ReadOptions {
            limits: c.limits.unwrap_or_default(),
            ..ReadOptions::default()
        };
        let expect = c.expect.replace("{src}", &uri.display().to_string());
        let result = read_staged(tmp.path(), &uri, &opts);
        let checked = if c.expect.is_empty() {
            result
                .map(|_| ())
                .map_err(|e| format!("the core refused it: {e}"))
        } else {
            check_refusal(&expect, result)
        };
        if let Err(why) = checked {
            failures.push(format!("case {:?}: {why}", c.name));
            continue;
        }
        let want = match c.e2e {
            EndToEnd::Skip => continue,
            EndToEnd::Same => expect.clone(),
            EndToEnd::Says(s) => s.replace("{src}", &uri.display().to_string()),
        };
        let target = tmp.path().join("target-e2e");
        let ctx = Context {
            read: opts.clone(),
            args: NoArgs {},
        };
        match artifact_core::cli::process::<H2o3MojoProcessor>(&uri, &target, false, &ctx) {
            Ok(_) => failures.push(format!("case {:?}: the processor accepted it", c.name)),
            Err(e) if !matches(&want, &e.to_string()) => failures.push(format!(
                "case {:?}: processor error\n  got:  {e}\n  want: {want}",
                c.name
            )),
            Err(_) => {}
        }
        if target.join("model.json").exists() {
            failures.push(format!("case {:?}: model.json exists", c.name));
        }
    }
    println!("hostile cases from s3://: {n}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(n >= 30, "only {n} cases");
}

/// Reads `src` into a fresh staging directory below `tmp`, drops the staging, and checks
/// that the target it lived in is left empty and without `model.json`.
fn read_staged(
    tmp: &Path,
    src: &Path,
    opts: &ReadOptions,
) -> artifact_core::Result<artifact_core::Listing> {
    let target = tmp.join("target");
    let staging = Staging::prepare(&target, false).expect("prepare");
    let result = {
        let mut sink = DirSink::new(staging.dir().join("x"), |n: &str| Some(n.to_string()));
        read_source(src, opts, &mut sink)
    };
    drop(staging);
    assert!(!target.join("model.json").exists());
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    std::fs::remove_dir(&target).unwrap();
    result
}

#[test]
fn every_truncation_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let zip_bytes = mojo_zip(vec![Ze::file("trees/t00.bin", &noise(700, 9))]);
    let tar = tar_base().file("model.pkl", &noise(700, 10)).end();
    // Where the end-of-archive marker starts: cuts past its first block are whole archives.
    let marker = tar.len() - 1024;
    let tgz = gzip(&tar);
    let mut refused = 0;
    for (name, bytes, whole_from) in [
        ("cut.zip", &zip_bytes, zip_bytes.len()),
        ("cut.tar", &tar, marker + 512),
        ("cut.tar.gz", &tgz, tgz.len()),
    ] {
        for len in 1..whole_from {
            let src = tmp.path().join(name);
            std::fs::write(&src, &bytes[..len]).unwrap();
            match read_staged(tmp.path(), &src, &ReadOptions::default()) {
                Ok(l) => panic!(
                    "{name} cut at {len} of {} accepted: {:?}",
                    bytes.len(),
                    l.files
                ),
                Err(e) => assert_eq!(e.class(), ErrorClass::Artifact, "{name} at {len}: {e}"),
            }
            refused += 1;
        }
        // The whole archive is accepted, so the refusals above are about the cut.
        let src = tmp.path().join(name);
        std::fs::write(&src, bytes).unwrap();
        read_staged(tmp.path(), &src, &ReadOptions::default()).unwrap();
        std::fs::remove_file(&src).unwrap();
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    println!("truncations refused: {refused}");
}

#[test]
fn nested_archives_stop_at_the_nesting_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let level3 = zip(&[Ze::file("deepest.txt", b"x")]);
    let level2 = zip(&[Ze::stored("level3.zip", &level3)]);
    let level1 = zip(&[Ze::stored("level2.zip", &level2), Ze::file("readme", b"r")]);
    let src = tmp.path().join("upload.zip");
    std::fs::write(&src, &level1).unwrap();

    // Open every archive found inside, the way a processor opens `pipeline.mojo`.
    fn open_nested(
        path: &Path,
        opts: &ReadOptions,
        out: &Path,
        depth: usize,
    ) -> artifact_core::Result<usize> {
        let dir = out.join(format!("level{depth}"));
        let mut sink = DirSink::new(&dir, |n: &str| Some(n.to_string()));
        let listing = read_source(path, opts, &mut sink)?;
        let mut deepest = depth;
        for f in &listing.files {
            let p = dir.join(&f.path);
            if artifact_core::source::detect(&p).is_ok_and(|k| k == artifact_core::SourceKind::Zip)
            {
                let inner = opts.nested(&listing, path, &f.path)?;
                deepest = deepest.max(open_nested(&p, &inner, out, depth + 1)?);
            }
        }
        Ok(deepest)
    }
    let out = tmp.path().join("out");
    let err = open_nested(&src, &ReadOptions::default(), &out, 0).unwrap_err();
    let level1_path = out.join("level0/level2.zip");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: entry \"level3.zip\" is unsafe: archive nested deeper than the nesting limit allows (archives inside archives are opened only to a fixed depth)",
            level1_path.display()
        )
    );
    assert_eq!(err.class(), ErrorClass::Artifact);
    // With one more level allowed the same source is read to the bottom.
    let deeper = ReadOptions {
        limits: limits(|l| l.max_nesting = 2),
        ..ReadOptions::default()
    };
    let out2 = tmp.path().join("out2");
    assert_eq!(open_nested(&src, &deeper, &out2, 0).unwrap(), 2);
    assert_eq!(
        std::fs::read(out2.join("level2/deepest.txt")).unwrap(),
        b"x"
    );

    // Totals are counted across levels: 300 kB outside and 300 kB inside exceed 500 kB.
    let inner = zip(&[Ze::stored("big.bin", &noise(300_000, 5))]);
    let outer = zip(&[
        Ze::stored("pipeline.mojo", &inner),
        Ze::stored("extra.bin", &noise(1000, 6)),
    ]);
    std::fs::write(&src, &outer).unwrap();
    let small = ReadOptions {
        limits: limits(|l| l.max_total_bytes = 500_000),
        ..ReadOptions::default()
    };
    let out3 = tmp.path().join("out3");
    let err = open_nested(&src, &small, &out3, 0).unwrap_err();
    assert!(
        matches(
            &format!(
                "{}: total size limit exceeded at entry \"big.bin\": {{n}} > {} (raise it with --max-total-bytes)",
                out3.join("level0/pipeline.mojo").display(),
                500_000 - inner.len() - 1000
            ),
            &err.to_string()
        ),
        "{err}"
    );
}

#[test]
fn real_writers_long_and_non_ascii_names_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/writers");
    let long = format!(
        "{}/{}/{}.txt",
        "d".repeat(60),
        "e".repeat(70),
        "long_file_name_".repeat(8)
    );
    let mut want = vec![
        ("short.txt".to_string(), b"z\n".to_vec()),
        (format!("{}.bin", "f".repeat(120)), b"y\n".to_vec()),
        (
            "\u{fc}n\u{ef} c\u{f6}d\u{e9}/f\u{ef}l\u{e9}.txt".to_string(),
            b"x\n".to_vec(),
        ),
        (long, b"hi\n".to_vec()),
        (
            format!("{}/{}", "g".repeat(150), "\u{e9}".repeat(60)),
            b"w\n".to_vec(),
        ),
    ];
    want.sort();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".sh") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut sink = DirSink::new(&out, |n: &str| Some(n.to_string()));
        let listing = read_source(&path, &ReadOptions::default(), &mut sink)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got: Vec<(String, Vec<u8>)> = listing
            .files
            .iter()
            .map(|f| (f.path.clone(), std::fs::read(out.join(&f.path)).unwrap()))
            .collect();
        got.sort();
        assert_eq!(got, want, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 6, "fixtures");
}
