//! Crash and environment safety of the real processor binary: SIGKILL at random points
//! of a run, a full disk (a small tmpfs, and `RLIMIT_FSIZE`), and a read-only target.
//! The invariant each time: `TARGET_PATH` either has no `model.json` or is a complete
//! model that `verify` accepts, and a re-run succeeds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{process, stderr, BIN, INI};

/// A MOJO zip that passes validation and carries `blob` bytes of incompressible data,
/// so that reading, hashing, copying and publishing take a while.
fn big_mojo(blob: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("model.ini", deflated).unwrap();
    w.write_all(INI.as_bytes()).unwrap();
    w.start_file("domains/d000.txt", deflated).unwrap();
    w.write_all(b"x\ny\n").unwrap();
    w.start_file("experimental/blob.bin", stored).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<u8> = (0..blob).map(|_| rng.next() as u8).collect();
    w.write_all(&data).unwrap();
    w.finish().unwrap().into_inner()
}

/// xorshift64*: a seeded generator, so a failing trial can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn spawn(source: &Path, target: &Path) -> std::process::Child {
    Command::new(BIN)
        .args(["--source", source.to_str().unwrap()])
        .args(["--target", target.to_str().unwrap()])
        .env_remove("SOURCE_PATH")
        .env_remove("TARGET_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary runs")
}

/// What a killed run left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Left {
    /// The target does not exist yet.
    NoTarget,
    /// Only a staging directory (or nothing) in the target.
    Staging,
    /// Payload moved in, `model.json` not yet written.
    PayloadWithoutManifest,
    /// A complete, verified model.
    Complete,
}

fn inspect_target(target: &Path) -> Result<Left, String> {
    if !target.exists() {
        return Ok(Left::NoTarget);
    }
    if target.join("model.json").exists() {
        artifact_core::verify(target)
            .map_err(|e| format!("model.json exists but verify fails: {e}"))?;
        return Ok(Left::Complete);
    }
    let names: Vec<String> = std::fs::read_dir(target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if names.iter().all(|n| n.starts_with(".staging-")) {
        Ok(Left::Staging)
    } else {
        Ok(Left::PayloadWithoutManifest)
    }
}

#[test]
fn sigkill_at_random_points_never_leaves_a_half_model() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("big.zip");
    std::fs::write(&src, big_mojo(2 << 20)).unwrap();

    // How long an undisturbed run takes (the median of three).
    let mut times = Vec::new();
    for i in 0..3 {
        let t = tmp.path().join(format!("baseline{i}"));
        let start = Instant::now();
        let o = process(&src, &t, &[]);
        times.push(start.elapsed());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    times.sort();
    let full = times[1];

    let trials: u64 = std::env::var("KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut rng = Rng(std::env::var("KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_128));
    let mut outcomes = std::collections::BTreeMap::<Left, u32>::new();
    let mut needed_overwrite = 0;
    let mut exited_first = 0;
    let started = Instant::now();
    for trial in 0..trials {
        let target = tmp.path().join(format!("t{trial}"));
        // Uniform over the run and past its end (a loaded machine runs slower than the
        // baseline, so a third of the kills aim beyond it).
        let delay = full.mul_f64((rng.next() % 1500) as f64 / 1000.0);
        let mut child = spawn(&src, &target);
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            exited_first += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let left = inspect_target(&target)
            .unwrap_or_else(|e| panic!("trial {trial} (killed after {delay:?}): {e}"));
        *outcomes.entry(left).or_default() += 1;

        // A plain re-run (what a restarted container does) succeeds whenever the kill
        // left no model; a finished model is only replaced with --overwrite.
        let o = process(&src, &target, &[]);
        if left == Left::Complete {
            assert_eq!(o.status.code(), Some(2), "trial {trial}: {}", stderr(&o));
            assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
            needed_overwrite += 1;
            let o = process(&src, &target, &["--overwrite"]);
            assert!(o.status.success(), "trial {trial}: {}", stderr(&o));
        } else {
            assert!(
                o.status.success(),
                "trial {trial}: re-run after {left:?}: {}",
                stderr(&o)
            );
        }
        artifact_core::verify(&target)
            .unwrap_or_else(|e| panic!("trial {trial}: after the re-run: {e}"));
        std::fs::remove_dir_all(&target).unwrap();
    }
    println!(
        "kill test: {trials} SIGKILL trials in {:?} (undisturbed run {full:?}); left behind: {outcomes:?}; {exited_first} runs had finished before the kill; {needed_overwrite} finished models were replaced with --overwrite, every other re-run was plain",
        started.elapsed()
    );
    // The delays spread over the whole run: kills landed before and after publishing.
    if trials >= 50 {
        assert!(outcomes.get(&Left::Complete).copied().unwrap_or(0) > 0);
        assert!(
            outcomes.get(&Left::Staging).copied().unwrap_or(0)
                + outcomes.get(&Left::NoTarget).copied().unwrap_or(0)
                > 0
        );
    }
}

#[test]
fn a_run_killed_while_publishing_is_cleaned_up_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m.zip");
    std::fs::write(&src, big_mojo(1024)).unwrap();
    // The state a kill between moving the payload and writing model.json leaves.
    let target = tmp.path().join("out");
    std::fs::create_dir_all(target.join(".staging-99-1")).unwrap();
    std::fs::write(target.join("model.mojo"), b"half").unwrap();
    std::fs::write(target.join(".model.json.tmp"), b"{").unwrap();
    let o = process(&src, &target, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    artifact_core::verify(&target).unwrap();
    assert!(!target.join(".model.json.tmp").exists());
    // Without a stale staging directory, files in the target are the user's: refused.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("model.mojo"), b"mine").unwrap();
    let o = process(&src, &other, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read(other.join("model.mojo")).unwrap(), b"mine");
    // A finished model next to a stale staging directory is kept, not replaced.
    let done = tmp.path().join("done");
    assert!(process(&src, &done, &[]).status.success());
    std::fs::create_dir(done.join(".staging-1-1")).unwrap();
    let o = process(&src, &done, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    artifact_core::verify(&done).unwrap();
}

/// A mount made for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs at `dir` with `options`; `None` (and a note) where mounting is not
    /// permitted (no CAP_SYS_ADMIN).
    fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        match st {
            Ok(s) if s.success() => Some(Mount(dir.to_path_buf())),
            _ => {
                println!("skipped: cannot mount a tmpfs at {} here", dir.display());
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Runs the processor with `RLIMIT_FSIZE` set to `bytes` and SIGXFSZ ignored, so an
/// oversized write fails with EFBIG instead of killing the process.
fn process_with_fsize(source: &Path, target: &Path, bytes: u64) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=\"$0\":\"$0\" -- \"$@\"")
        .arg(bytes.to_string())
        .arg(BIN)
        .args(["--source", source.to_str().unwrap()])
        .args(["--target", target.to_str().unwrap()])
        .env_remove("SOURCE_PATH")
        .env_remove("TARGET_PATH")
        .output()
        .expect("sh runs")
}

fn assert_no_model(target: &Path, what: &str) {
    assert!(!target.join("model.json").exists(), "{what}: model.json");
    if target.exists() {
        let left: Vec<_> = std::fs::read_dir(target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{what}: target holds {left:?}");
    }
}

#[test]
fn a_full_disk_gives_a_clear_error_and_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m.zip");
    let mojo = big_mojo(256 << 10);
    std::fs::write(&src, &mojo).unwrap();
    let mut runs = 0;

    // RLIMIT_FSIZE: every file the processor writes may hold at most half the payload.
    let target = tmp.path().join("fsize");
    let o = process_with_fsize(&src, &target, mojo.len() as u64 / 2);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("model.mojo: File too large (os error 27)"),
        "{err}"
    );
    assert_no_model(&target, "RLIMIT_FSIZE");
    runs += 1;

    // A real full disk: a tmpfs too small for the payload, and sizes around the payload
    // so that the disk fills at different points (payload, manifest, or not at all).
    let mnt = tmp.path().join("small");
    let page = 4096u64;
    let payload_pages = (mojo.len() as u64).div_ceil(page);
    let mut outcomes = (0, 0);
    for pages in [
        16,
        payload_pages - 1,
        payload_pages,
        payload_pages + 1,
        payload_pages + 2,
        payload_pages + 8,
    ] {
        let Some(_m) = Mount::tmpfs(&mnt, &format!("size={}", pages * page)) else {
            return;
        };
        let target = mnt.join("model");
        let o = process(&src, &target, &[]);
        runs += 1;
        if o.status.success() {
            artifact_core::verify(&target).expect("a published model verifies");
            outcomes.0 += 1;
        } else {
            assert_eq!(o.status.code(), Some(4), "{pages} pages: {}", stderr(&o));
            assert!(
                stderr(&o).contains("No space left on device (os error 28)"),
                "{pages} pages: {}",
                stderr(&o)
            );
            assert_no_model(&target, &format!("tmpfs of {pages} pages"));
            outcomes.1 += 1;
        }
    }
    assert!(outcomes.1 >= 2, "the small disks filled up: {outcomes:?}");
    assert!(
        outcomes.0 >= 1,
        "the large enough disk worked: {outcomes:?}"
    );
    println!(
        "full disk: {runs} runs; on tmpfs {} published and verified, {} failed with ENOSPC and left no model.json",
        outcomes.0, outcomes.1
    );
}

#[test]
fn a_read_only_target_gives_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m.zip");
    std::fs::write(&src, big_mojo(1024)).unwrap();

    // Not writable even for root: a path under /proc.
    let o = process(&src, Path::new("/proc/self/no-such-model"), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("create target /proc/self/no-such-model"),
        "{}",
        stderr(&o)
    );

    // A read-only filesystem: an existing empty mount point, and a target inside it.
    let ro = tmp.path().join("ro");
    let Some(_m) = Mount::tmpfs(&ro, "ro,size=1m") else {
        return;
    };
    let o = process(&src, &ro, &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "create staging directory {}/.staging-",
            ro.display()
        )) && stderr(&o).contains("Read-only file system (os error 30)"),
        "{}",
        stderr(&o)
    );
    assert_no_model(&ro, "read-only mount point");
    let o = process(&src, &ro.join("model"), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "create target {}: Read-only file system (os error 30)",
            ro.join("model").display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(!ro.join("model").exists());
}
