//! The MLflow processor on objects in a real S3 server (moto's, started per test; skipped
//! with a message when `S3_VENV` is unset): every testdata MLflow archive (zips by range
//! reads, tar.gz as one stream) gives the same `model.json` and files from `s3://` as from
//! the local file, in the storage-initializer form; a tar.gz whose response is cut short
//! or whose object changes midway is an error with no `model.json`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use testkit::s3::{Fault, S3Server};

use super::{command, folder_files, manifest, process, stderr, testdata};

fn with_env(env: &[(&str, String)]) -> Command {
    let mut c = command();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("S3_") {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn storage_initializer(env: &[(&str, String)], uri: &str, target: &Path) -> Output {
    with_env(env)
        .args([uri, target.to_str().unwrap()])
        .output()
        .expect("binary runs")
}

#[test]
fn every_testdata_archive_from_s3_gives_the_same_model_json() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("models");
    let tmp = tempfile::tempdir().unwrap();
    let mut archives: Vec<_> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".zip") || n.ends_with(".tar.gz")
        })
        .collect();
    archives.sort();
    assert!(archives.len() >= 6, "{archives:?}");
    for (i, a) in archives.iter().enumerate() {
        let name = a.file_name().unwrap().to_str().unwrap();
        s3.put(
            "models",
            &format!("mlflow/{name}"),
            &std::fs::read(a).unwrap(),
        );
        let local = tmp.path().join(format!("local-{i}"));
        let o = process(a, &local, &[]);
        assert!(o.status.success(), "{name} local: {}", stderr(&o));
        let remote = tmp.path().join(format!("remote-{i}"));
        let uri = format!("s3://models/mlflow/{name}");
        // Nothing is written locally but the target: not in TMPDIR, not in the working
        // directory.
        let scratch = tmp.path().join(format!("scratch-{i}"));
        std::fs::create_dir(&scratch).unwrap();
        let o = with_env(&s3.env())
            .env("TMPDIR", &scratch)
            .current_dir(&scratch)
            .args([uri.as_str(), remote.to_str().unwrap()])
            .output()
            .expect("binary runs");
        assert!(o.status.success(), "{uri}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "{name}: wrote outside the target"
        );
        assert_eq!(
            manifest(&local),
            manifest(&remote),
            "{name}: model.json differs"
        );
        assert_eq!(
            folder_files(&local),
            folder_files(&remote),
            "{name}: files differ"
        );
    }
    println!(
        "{} MLflow archives from s3:// equal to their local runs",
        archives.len()
    );
}

#[test]
fn a_cut_or_changed_tar_gz_is_an_error() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("models");
    let tgz = std::fs::read(testdata().join("xgboost.tar.gz")).unwrap();
    let other = std::fs::read(testdata().join("sklearn_pipeline.tar.gz")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Fault, &str)> = vec![
        ("cut short", Fault::CutShort, "bytes"),
        ("lying length", Fault::Lie, "ended after"),
        (
            "changed midway",
            Fault::ReplaceBefore(2, Arc::new(other)),
            "the object changed while it was read",
        ),
    ];
    testkit::s3::faulty_reads_are_errors(
        &s3,
        "xgboost.tar.gz",
        &tgz,
        cases,
        tmp.path(),
        storage_initializer,
        |_, _, _, _| {},
    );
}
