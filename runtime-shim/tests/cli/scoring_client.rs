//! H2O's own mini-batch scoring client (`h2o-mlops-scoring-client` 0.2.1b1, PyPI) against
//! the real shim: `tests/scoring-client/check_client.py` in the venv named by
//! `SCORING_CLIENT_VENV` (made by `.ci/setup-scoring-client-venv.sh`). Without the
//! variable the tests say they are skipped; with it set, a missing venv fails them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::auth::hash_of;
use super::{process, testdata, Server};

/// The venv's python, or `None` (skipped) when `SCORING_CLIENT_VENV` is unset.
fn python() -> Option<PathBuf> {
    super::venv_python("SCORING_CLIENT_VENV", "setup-scoring-client-venv.sh")
}

/// Runs the client checks against `server`; panics with their output on failure.
fn check(py: &Path, server: &Server, model: &str, extra: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scoring-client/check_client.py");
    let out = Command::new(py)
        .arg(&script)
        .args(["--url", &server.base, "--model", model, "--testdata"])
        .arg(testdata())
        .args(extra)
        .output()
        .expect("the venv's python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("client checks passed"),
        "{model} {extra:?}:\n{text}\nshim log:\n{}",
        server.log()
    );
    eprintln!("{model} {extra:?}:\n{text}");
}

/// Mini-batch scoring with an id column equals H2O's predictions; with
/// `request_contributions` the contributions equal `/model/contribution`'s.
#[test]
fn h2o_scoring_client_scores_and_explains_like_h2o() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (model, contributions) in [
        ("gbm_binomial", Some("ORIGINAL")),
        ("xgboost_binomial", Some("TRANSFORMED")),
        ("drf_regression", Some("ORIGINAL")),
        ("gbm_multinomial", None),
        ("glm_binomial", None),
    ] {
        let dir = process(model, tmp.path());
        let server = Server::start(&dir, &[]);
        let mut extra = Vec::new();
        if let Some(c) = contributions {
            extra.extend(["--contributions", c]);
        }
        check(&py, &server, model, &extra);
    }
}

/// The client's passphrase, plain and hashed: accepted; none or a wrong one: 401.
#[test]
fn h2o_scoring_client_with_a_passphrase_plain_and_hashed() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = process("gbm_binomial", tmp.path());
    let plain = "client passphrase 8c1d";
    let hashed = "client hashed passphrase e4b0";
    for (name, env, pass) in [
        ("plain", ("SCORING_PASSPHRASE", plain.to_string()), plain),
        (
            "hashed",
            ("SCORING_PASSPHRASE_HASH", hash_of(hashed)),
            hashed,
        ),
    ] {
        let server = Server::start(&dir, &[(env.0, env.1.as_str())]);
        check(
            &py,
            &server,
            "gbm_binomial",
            &[
                "--passphrase",
                pass,
                "--contributions",
                "ORIGINAL",
                "--refused",
                "not the passphrase",
            ],
        );
        let (status, log) = server.stop();
        assert!(status.success(), "{name}: {log}");
        assert!(
            !log.contains(pass),
            "{name}: the passphrase in the log:\n{log}"
        );
    }
}
