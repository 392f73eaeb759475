//! An MLflow model's requirements against the Python environment that serves it.
//!
//! The processor records the model's requirement lines (`requirements.txt`,
//! `python_env.yaml` or `conda.yaml`) in `metadata.requirements`; a runtime image carries
//! one environment for every model, so a model may ask for versions it does not have.
//! Before the scoring server starts, the runtime's own Python evaluates each line with
//! `packaging` (the library pip and MLflow use: name, version specifier, environment
//! marker) against what `importlib.metadata` finds installed, and the backend applies the
//! deployer's policy: warn (the default), refuse (`MLFLOW_REQUIRE_REQUIREMENTS_MATCH`), or
//! install the unmet lines with pip into a writable folder put first on the server's
//! `PYTHONPATH` (`MLFLOW_INSTALL_REQUIREMENTS`, off unless asked for: it downloads code).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Reads the requirement lines (JSON list in argv[1]) and prints, as JSON, each line the
/// environment does not satisfy, or could not check.
const CHECK_SCRIPT: &str = r##"
import json, sys
from importlib import metadata
try:
    from packaging.requirements import InvalidRequirement, Requirement
except ImportError:
    Requirement = None
out = []
for line in json.loads(sys.argv[1]):
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith("#") or text.startswith("-"):
        continue
    if Requirement is None:
        out.append({"requirement": text, "kind": "unchecked", "detail": "the runtime's Python has no 'packaging' module"})
        continue
    try:
        req = Requirement(text)
    except InvalidRequirement as e:
        out.append({"requirement": text, "kind": "unchecked", "detail": str(e)})
        continue
    if req.marker is not None and not req.marker.evaluate():
        continue
    if req.url:
        out.append({"requirement": text, "kind": "unchecked", "detail": "a URL requirement"})
        continue
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        out.append({"requirement": text, "kind": "missing", "detail": "not installed"})
        continue
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        out.append({"requirement": text, "kind": "version", "detail": "installed: %s %s" % (req.name, have)})
print(json.dumps(out))
"##;

/// A requirement line the environment does not satisfy (or could not check).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Unmet {
    /// The line, without its comment.
    pub requirement: String,
    /// `missing`, `version` or `unchecked`.
    pub kind: String,
    pub detail: String,
}

impl Unmet {
    /// Whether the line is known not to be satisfied (not merely unchecked).
    pub fn is_unmet(&self) -> bool {
        self.kind != "unchecked"
    }
}

impl std::fmt::Display for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.requirement, self.detail)
    }
}

/// Runs `python` on the check script: the lines of `requirements` it does not satisfy,
/// with `extra_path` (an install folder) first on its `PYTHONPATH`.
pub fn check(
    python: &Path,
    requirements: &[String],
    extra_path: Option<&Path>,
) -> Result<Vec<Unmet>, String> {
    let lines = serde_json::to_string(requirements).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(python);
    cmd.args(["-c", CHECK_SCRIPT, &lines])
        .stdin(Stdio::null())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(p) = extra_path {
        cmd.env("PYTHONPATH", python_path(p));
    }
    let out = cmd.output().map_err(|e| {
        format!(
            "cannot check the model's requirements: `{}`: {e} (set MLFLOW_PYTHON)",
            python.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!(
            "cannot check the model's requirements: `{} -c ...` exited with {}: {}",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "cannot check the model's requirements: `{}` answered {:?}: {e}",
            python.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `dir` before the inherited `PYTHONPATH`.
pub fn python_path(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&old));
    }
    std::env::join_paths(paths).unwrap_or_else(|_| dir.as_os_str().to_owned())
}

/// `python -m pip install --target dir` of `requirements` (pip's own `PIP_*` variables
/// apply: index, find-links, certificates), within `timeout`.
pub fn install(
    python: &Path,
    dir: &Path,
    requirements: &[String],
    timeout: Duration,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "MLFLOW_INSTALL_DIR {}: {e} (it must be writable: a volume when the root filesystem is read-only)",
            dir.display()
        )
    })?;
    let mut child = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--upgrade",
            "--target",
        ])
        .arg(dir)
        .arg("--")
        .args(requirements)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{} -m pip`: {e}", python.display()))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "installing the model's requirements took more than {} s (CHILD_START_TIMEOUT_SECS)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("cannot watch `{} -m pip`: {e}", python.display())),
        }
    };
    let err = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let tail: Vec<&str> = err.lines().rev().take(10).collect();
        Err(format!(
            "`{} -m pip install --target {} {}` exited with {status}: {}",
            python.display(),
            dir.display(),
            requirements.join(" "),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    }
}

/// What the policy decided: the folder to put first on the scoring server's `PYTHONPATH`
/// when requirements were installed.
pub type Installed = Option<PathBuf>;
