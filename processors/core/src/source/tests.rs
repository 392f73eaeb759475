//! The threaded paths (zip entries on several threads, a tar inflated on its own
//! thread) must give exactly what the sequential walk gives: the same listing, the
//! same files on disk, or the same first error.
use super::*;
use std::io::Write;

/// One entry of a zip built byte by byte.
#[derive(Clone)]
struct Ze {
    name: String,
    data: Vec<u8>,
    deflate: bool,
    /// Overrides of what the headers declare.
    crc: Option<u32>,
    size: Option<u32>,
}

fn file(name: &str, data: &[u8]) -> Ze {
    Ze {
        name: name.into(),
        data: data.to_vec(),
        deflate: true,
        crc: None,
        size: None,
    }
}

fn stored(name: &str, data: &[u8]) -> Ze {
    Ze {
        deflate: false,
        ..file(name, data)
    }
}

fn dir(name: &str) -> Ze {
    stored(name, b"")
}

fn zip(entries: &[Ze]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let body = if e.deflate {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&e.data).unwrap();
            enc.finish().unwrap()
        } else {
            e.data.clone()
        };
        let crc = e.crc.unwrap_or_else(|| crc32fast::hash(&e.data));
        let size = e.size.unwrap_or(e.data.len() as u32);
        let offset = out.len() as u32;
        let method: u16 = if e.deflate { 8 } else { 0 };
        let fixed = |sig: u32, v: &mut Vec<u8>| {
            v.extend_from_slice(&sig.to_le_bytes());
            if sig == 0x0201_4b50 {
                v.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
            }
            v.extend_from_slice(&20u16.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&method.to_le_bytes());
            v.extend_from_slice(&[0; 4]);
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&(body.len() as u32).to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        fixed(0x0403_4b50, &mut out);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&body);
        fixed(0x0201_4b50, &mut central);
        let mode: u32 = if e.name.ends_with('/') {
            0o40755
        } else {
            0o100644
        };
        // Comment length, disk, internal attributes; external attributes (mode).
        central.extend_from_slice(&[0; 6]);
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(n: usize, seed: u64) -> Vec<u8> {
    let mut s = Vec::new();
    let mut i = seed;
    while s.len() < n {
        s.extend_from_slice(format!("{{\"id\": {i}, \"token\": \"tok{}\"}}\n", i % 97).as_bytes());
        i += 1;
    }
    s.truncate(n);
    s
}

/// A model-like tree: directories, large and small files, empty files, noise.
fn many() -> Vec<Ze> {
    let mut v = vec![dir("model/"), file("model/MLmodel", b"flavors: {}\n")];
    v.push(stored("model/data/w0.bin", &noise(700_000, 1)));
    v.push(file("model/data/vocab.jsonl", &text(500_000, 2)));
    v.push(stored("__MACOSX/._MLmodel", b"resource fork"));
    v.push(file("model/empty.txt", b""));
    for i in 0..150 {
        let body = text(10 + i * 37, i as u64);
        if i % 3 == 0 {
            v.push(stored(&format!("model/code/m{:02}/f{i}.py", i / 40), &body));
        } else {
            v.push(file(&format!("model/code/m{:02}/f{i}.py", i / 40), &body));
        }
    }
    v.push(dir("model/code/empty/"));
    v.push(file("model/.DS_Store", b"junk"));
    v
}

/// What a read left: its result (listing or error) and the files written.
fn read(bytes: &[u8], name: &str, opts: &ReadOptions, threads: usize) -> String {
    read_over(bytes, name, opts, threads, &[])
}

/// [`read`] into a directory where the files `existing` (destination paths) are
/// already, so that they cannot be created.
fn read_over(
    bytes: &[u8],
    name: &str,
    opts: &ReadOptions,
    threads: usize,
    existing: &[&str],
) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join(name);
    std::fs::write(&src, bytes).unwrap();
    let out = tmp.path().join("out");
    for e in existing {
        let p = out.join(e);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"in the way").unwrap();
    }
    // Every tenth name is checked but not written.
    let mut sink = DirSink::new(&out, |n: &str| {
        (!n.ends_with("0.py")).then(|| format!("x/{n}"))
    });
    let result = read_source_threads(&src, opts, &mut sink, Some(threads));
    let written = std::mem::take(&mut sink.written);
    let result = match result {
        Ok(l) => format!("{:?}\n{:?}\n{:?}", l.source, l.files, l.dirs),
        Err(e) => {
            let mut msg = format!("error: {e}")
                .replace(&src.display().to_string(), "SRC")
                .replace(&out.display().to_string(), "OUT");
            // The count a limit is caught at depends on read sizes: `: N > limit`.
            if let Some(at) = msg.find("limit exceeded") {
                if let Some(colon) = msg[at..].find(": ") {
                    let start = at + colon + 2;
                    let digits = msg[start..].bytes().take_while(u8::is_ascii_digit).count();
                    msg.replace_range(start..start + digits, "N");
                }
            }
            msg
        }
    };
    let mut on_disk = Vec::new();
    if out.exists() && result.starts_with("Source") {
        for e in walkdir::WalkDir::new(&out).sort_by_file_name() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(&out).unwrap().display().to_string();
            if e.file_type().is_file() {
                on_disk.push(format!(
                    "{rel} {}",
                    hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))
                ));
            } else {
                on_disk.push(format!("{rel}/"));
            }
        }
    }
    format!("{result}\nwritten {written:?}\non disk {on_disk:?}")
}

fn with(entries: &[Ze], at: usize, e: Ze) -> Vec<Ze> {
    let mut v = entries.to_vec();
    v.insert(at, e);
    v
}

#[test]
fn threaded_zip_reads_as_the_sequential_walk() {
    let base = many();
    let limits = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        ReadOptions {
            limits: l,
            skip_noise: true,
        }
    };
    let plain = ReadOptions::default();
    let skip = ReadOptions {
        skip_noise: true,
        ..ReadOptions::default()
    };
    let bad_crc = Ze {
        crc: Some(7),
        ..file("model/code/bad.py", &text(3000, 9))
    };
    let cases: Vec<(&str, Vec<Ze>, ReadOptions, &str)> = vec![
        ("valid, noise kept", base.clone(), plain.clone(), "Source"),
        ("valid, noise skipped", base.clone(), skip.clone(), "Source"),
        (
            "CRC mismatch",
            with(&base, 60, bad_crc.clone()),
            skip.clone(),
            "CRC-32 mismatch",
        ),
        (
            "CRC mismatch before a refused name",
            with(
                &with(&base, 60, bad_crc.clone()),
                120,
                file("MODEL/x", b"x"),
            ),
            skip.clone(),
            "CRC-32 mismatch",
        ),
        (
            "refused name before a CRC mismatch",
            with(&with(&base, 120, bad_crc.clone()), 60, file("../x", b"x")),
            skip.clone(),
            "parent-directory",
        ),
        (
            "declared size larger than the data",
            with(
                &base,
                90,
                Ze {
                    size: Some(5000),
                    ..file("model/s.txt", &text(300, 3))
                },
            ),
            skip.clone(),
            "declared size 5000 but 300 bytes were read",
        ),
        (
            "declared size smaller than the data",
            with(
                &base,
                90,
                Ze {
                    size: Some(10),
                    ..file("model/s.txt", &text(300, 3))
                },
            ),
            skip.clone(),
            "larger than its declared uncompressed size",
        ),
        (
            "stored size smaller than the data",
            with(
                &base,
                30,
                Ze {
                    size: Some(10),
                    ..stored("model/s.bin", &noise(300, 3))
                },
            ),
            skip.clone(),
            "larger than its declared uncompressed size",
        ),
        (
            "total size limit in the middle",
            base.clone(),
            limits(|l| l.max_total_bytes = 1_300_000),
            "total size limit exceeded",
        ),
        (
            "file size limit",
            base.clone(),
            limits(|l| l.max_file_bytes = 600_000),
            "file size limit exceeded at entry \"model/data/w0.bin\"",
        ),
        (
            "compression ratio",
            with(&base, 40, file("model/bomb.bin", &vec![0u8; 3 << 20])),
            skip.clone(),
            "compression ratio limit exceeded at entry \"model/bomb.bin\"",
        ),
        (
            "entry count",
            base.clone(),
            limits(|l| l.max_entries = 100),
            "entry count limit exceeded",
        ),
        (
            "a file where a directory was",
            with(&base, 100, file("model/code/m00", b"x")),
            skip.clone(),
            "a directory of the same name exists",
        ),
        (
            "a directory entry over a file",
            with(&base, 100, dir("model/MLmodel/")),
            skip.clone(),
            "a file of the same name exists",
        ),
    ];
    let mut failures = Vec::new();
    // Files that cannot be created (something is in the way), then a fault.
    /// (label, entries, options, files in the way, expected)
    type InTheWay<'a> = (&'a str, Vec<Ze>, ReadOptions, &'a [&'a str], &'a str);
    let in_the_way: Vec<InTheWay> = vec![
        (
            "a file that cannot be created, then a CRC mismatch",
            with(&base, 120, bad_crc.clone()),
            skip.clone(),
            &["x/model/code/m00/f7.py"],
            "File exists",
        ),
        (
            "a large file that cannot be created and is over the size limit",
            base.clone(),
            limits(|l| l.max_file_bytes = 600_000),
            &["x/model/data/w0.bin"],
            "File exists",
        ),
    ];
    for (label, entries, opts, existing, want) in &in_the_way {
        let bytes = zip(entries);
        let sequential = read_over(&bytes, "a.zip", opts, 1, existing);
        if !sequential.contains(want) {
            failures.push(format!("{label}: the sequential walk says {sequential}"));
            continue;
        }
        let threaded = read_over(&bytes, "a.zip", opts, 4, existing);
        if threaded != sequential {
            failures.push(format!(
                "{label}:\n  sequential {sequential}\n  threaded   {threaded}"
            ));
        }
    }
    for (label, entries, opts, want) in &cases {
        let bytes = zip(entries);
        let sequential = read(&bytes, "a.zip", opts, 1);
        if !sequential.contains(want) {
            failures.push(format!("{label}: the sequential walk says {sequential}"));
            continue;
        }
        for threads in [2, 4] {
            let threaded = read(&bytes, "a.zip", opts, threads);
            if threaded != sequential {
                failures.push(format!(
                    "{label} ({threads} threads):\n  sequential {sequential}\n  threaded   {threaded}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn tar(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn tar_inflated_on_its_own_thread_reads_as_the_sequential_walk() {
    let mut entries = vec![
        ("model/MLmodel", b"flavors: {}\n".to_vec()),
        ("model/w.bin", noise(2 << 20, 5)),
        ("model/vocab.jsonl", text(3 << 20, 6)),
    ];
    for i in 0..100 {
        entries.push((
            Box::leak(format!("model/code/f{i}.py").into_boxed_str()),
            text(100 + i * 50, i as u64),
        ));
    }
    let t = tar(&entries);
    let tgz = gzip(&t);
    let mut cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("tar", t.clone(), "a.tar", "Source"),
        ("tar.gz", tgz.clone(), "a.tar.gz", "Source"),
        (
            "tar.gz truncated",
            tgz[..tgz.len() / 2].to_vec(),
            "a.tar.gz",
            "error",
        ),
        (
            "tar.gz cut at the end",
            tgz[..tgz.len() - 9].to_vec(),
            "a.tar.gz",
            "error",
        ),
        (
            "tar.gz with trailing bytes",
            [tgz.clone(), b"trailing".to_vec()].concat(),
            "a.tar.gz",
            "error",
        ),
        (
            "two gzip members",
            [gzip(&t[..t.len() / 2]), gzip(&t[t.len() / 2..])].concat(),
            "a.tar.gz",
            "Source",
        ),
    ];
    let mut corrupt = tgz.clone();
    let mid = corrupt.len() / 3;
    corrupt[mid..mid + 64].fill(0x55);
    cases.push(("tar.gz corrupted inside", corrupt, "a.tar.gz", "error"));
    let mut refused = entries.clone();
    refused.insert(60, ("model/CODE/x.py", b"x".to_vec()));
    let refused = gzip(&tar(&refused));
    let small_files = ReadOptions {
        limits: Limits {
            max_file_bytes: 1 << 20,
            ..Limits::default()
        },
        ..ReadOptions::default()
    };
    /// (label, source, file name, options, files in the way, expected)
    type Case<'a> = (
        &'a str,
        Vec<u8>,
        &'a str,
        ReadOptions,
        &'a [&'a str],
        &'a str,
    );
    let mut all: Vec<Case> = cases
        .into_iter()
        .map(|(l, b, n, w)| (l, b, n, ReadOptions::default(), &[][..], w))
        .collect();
    all.extend([
        (
            "a file that cannot be created, then a refused name",
            refused.clone(),
            "a.tar.gz",
            ReadOptions::default(),
            &["x/model/code/f7.py"][..],
            "error: create OUT/x/model/code/f7.py: File exists",
        ),
        (
            "a refused name, then nothing in the way",
            refused,
            "a.tar.gz",
            ReadOptions::default(),
            &[][..],
            "error: SRC: entry \"model/CODE/x.py\" is unsafe: name collides",
        ),
        (
            "a large file that cannot be created and is over the size limit",
            tgz.clone(),
            "a.tar.gz",
            small_files.clone(),
            &["x/model/w.bin"][..],
            "error: create OUT/x/model/w.bin: File exists",
        ),
        (
            "over the size limit",
            tgz.clone(),
            "a.tar.gz",
            small_files,
            &[][..],
            "error: SRC: file size limit exceeded at entry \"model/w.bin\"",
        ),
    ]);
    let mut failures = Vec::new();
    for (label, bytes, name, opts, existing, want) in &all {
        let sequential = read_over(bytes, name, opts, 1, existing);
        if !sequential.starts_with(want) {
            failures.push(format!("{label}: the sequential walk says {sequential}"));
            continue;
        }
        let threaded = read_over(bytes, name, opts, 2, existing);
        if threaded != sequential {
            failures.push(format!(
                "{label}:\n  sequential {sequential}\n  threaded   {threaded}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
