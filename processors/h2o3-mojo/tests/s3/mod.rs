//! The H2O-3 processor on objects in a real S3 server (moto's, started per test; the
//! tests skip with a message when `S3_VENV` is unset): every testdata MOJO gives the same
//! `model.json` from `s3://` as from the local file, run the way KServe runs a storage
//! initializer (`PROCESSOR SOURCE_URI TARGET_DIR`, KServe's `S3_*` variables); a server
//! that cuts responses short, lies about their length, or whose object changes between
//! two reads gives a clear error and no `model.json`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use testkit::s3::{Fault, S3Server};

use super::{manifest, process, stderr, testdata, BIN};

/// The binary with only the given S3 variables (none inherited).
fn command(env: &[(&str, String)]) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("S3_") || k == "SOURCE_PATH" || k == "TARGET_PATH"
        {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// KServe's variables for a plain-http endpoint (S3_ENDPOINT is host:port).
fn kserve_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("S3_ENDPOINT", format!("127.0.0.1:{port}")),
        ("S3_USE_HTTPS", "0".into()),
        ("S3_VERIFY_SSL", "0".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ]
}

/// Storage-initializer form: two positional arguments.
fn storage_initializer(env: &[(&str, String)], uri: &str, target: &Path) -> Output {
    command(env)
        .args([uri, target.to_str().unwrap()])
        .output()
        .expect("binary runs")
}

#[test]
fn every_testdata_mojo_from_s3_gives_the_same_model_json() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("models");
    let tmp = tempfile::tempdir().unwrap();
    let mut zips: Vec<_> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    zips.sort();
    assert!(zips.len() >= 20, "{} testdata MOJOs", zips.len());
    for (i, zip) in zips.iter().enumerate() {
        let name = zip.file_name().unwrap().to_str().unwrap();
        s3.put(
            "models",
            &format!("h2o3-mojo/{name}"),
            &std::fs::read(zip).unwrap(),
        );
        let local = tmp.path().join(format!("local-{i}"));
        let o = process(zip, &local, &[]);
        assert!(o.status.success(), "{name} local: {}", stderr(&o));
        // KServe's form and variables for half of them, AWS_ENDPOINT_URL and --source for the rest.
        let remote = tmp.path().join(format!("remote-{i}"));
        let uri = format!("s3://models/h2o3-mojo/{name}");
        let o = if i % 2 == 0 {
            storage_initializer(&kserve_env(s3.port), &uri, &remote)
        } else {
            command(&s3.env())
                .args(["--source", &uri, "--target", remote.to_str().unwrap()])
                .output()
                .unwrap()
        };
        assert!(o.status.success(), "{uri}: {}", stderr(&o));
        assert_eq!(
            manifest(&local),
            manifest(&remote),
            "{name}: model.json differs"
        );
        assert_eq!(
            std::fs::read(local.join("model.mojo")).unwrap(),
            std::fs::read(remote.join("model.mojo")).unwrap(),
            "{name}: payload differs"
        );
        let v = command(&[])
            .args(["verify", remote.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(v.status.success(), "{name}: verify: {}", stderr(&v));
    }
    println!("{} MOJOs from s3:// equal to their local runs", zips.len());
}

#[test]
fn missing_objects_and_bad_uris_are_usage_errors() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("models");
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, i32)] = &[
        ("missing object", "s3://models/nope.zip", 2),
        ("missing bucket", "s3://nobucket/x.zip", 2),
        ("a prefix", "s3://models/h2o3-mojo/", 2),
        ("no key", "s3://models", 2),
    ];
    for (name, uri, code) in cases {
        let target = tmp.path().join(name.replace(' ', "-"));
        let o = storage_initializer(&s3.env(), uri, &target);
        assert_eq!(o.status.code(), Some(*code), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(uri.trim_end_matches('/')),
            "{name}: {}",
            stderr(&o)
        );
        assert!(!target.join("model.json").exists(), "{name}");
    }
    // Only the target (and nothing else) is required: a target alone is a usage error.
    let o = command(&s3.env())
        .arg("s3://models/x.zip")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("SOURCE_URI TARGET_DIR"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn short_lying_or_changing_objects_are_errors_never_models() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("models");
    let zip = std::fs::read(testdata().join("gbm_binomial.zip")).unwrap();
    let other = std::fs::read(testdata().join("glm_binomial.zip")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Fault, &str)> = vec![
        ("cut short", Fault::CutShort, "bytes"),
        ("lying length", Fault::Lie, "ended after"),
        (
            "changed after the first read",
            Fault::ReplaceBefore(2, Arc::new(other.clone())),
            "the object changed while it was read",
        ),
        (
            "changed midway",
            Fault::ReplaceBefore(4, Arc::new(other)),
            "the object changed while it was read",
        ),
    ];
    testkit::s3::faulty_reads_are_errors(
        &s3,
        "gbm_binomial.zip",
        &zip,
        cases,
        tmp.path(),
        storage_initializer,
        |name, o, uri, target| {
            let err = stderr(o);
            assert!(
                err.contains(uri),
                "{name}: error does not name the object:\n{err}"
            );
            assert!(
                !target.exists() || std::fs::read_dir(target).unwrap().next().is_none(),
                "{name}: the target is not empty"
            );
        },
    );
}

/// An object behind a plain URL (`https://` in production; moto serves http) is read the
/// same way, without credentials: HEAD, then range requests pinned to its ETag.
#[test]
fn an_object_behind_a_url_gives_the_same_model_json() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("models");
    let tmp = tempfile::tempdir().unwrap();
    let zip = testdata().join("gbm_binomial.zip");
    s3.put_public(
        "models",
        "public/gbm_binomial.zip",
        &std::fs::read(&zip).unwrap(),
    );
    let local = tmp.path().join("local");
    let o = process(&zip, &local, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let remote = tmp.path().join("remote");
    let url = format!("{}/models/public/gbm_binomial.zip", s3.endpoint());
    let o = storage_initializer(&[], &url, &remote);
    assert!(o.status.success(), "{url}: {}", stderr(&o));
    assert_eq!(manifest(&local), manifest(&remote));
    // A missing one is a missing source.
    let o = storage_initializer(
        &[],
        &format!("{}/models/public/nope.zip", s3.endpoint()),
        &tmp.path().join("x"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
