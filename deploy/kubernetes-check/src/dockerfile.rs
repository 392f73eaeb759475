//! A small Dockerfile reader, enough to compare what an image declares (base, user,
//! entrypoint, environment defaults, labels, exposed ports) with `images/images.txt` and
//! the Kubernetes manifests, and the checks of one image stage against its list entry.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::CheckError;
use crate::images::{ImageSpec, Role};

/// The user every image runs as (numeric, so that `runAsNonRoot` can be verified), and
/// the one `images/etc/passwd` names.
pub const IMAGE_USER: &str = "65532:65532";
/// The uid of [`IMAGE_USER`].
pub const IMAGE_UID: i64 = 65532;
/// Where each image's binary is; the entrypoint is this plus the binary name.
pub const BIN_DIR: &str = "/usr/local/bin";
/// The OCI labels every image carries (org.opencontainers.image.*).
pub const OCI_LABELS: &[&str] = &["title", "version", "source", "revision", "licenses"];
/// Label key prefix of the documented environment variables.
pub const ENV_LABEL_PREFIX: &str = "artifact-processors.env.";
/// Label key of the role.
pub const ROLE_LABEL: &str = "artifact-processors.role";

/// One build stage: from `FROM` to the next `FROM`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stage {
    /// The `AS` name, if any.
    pub name: Option<String>,
    /// The base image as written (`scratch`, `${BASE_IMAGE}`, ...).
    pub from: String,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    /// `ENV` defaults.
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub expose: Vec<String>,
}

impl Stage {
    /// Names of the environment variables the image documents (its `env.` labels).
    pub fn documented_env(&self) -> impl Iterator<Item = &str> {
        self.labels
            .keys()
            .filter_map(|k| k.strip_prefix(ENV_LABEL_PREFIX))
    }
}

/// Splits `key=value key2="quoted value"` (LABEL and ENV syntax).
fn key_values(args: &str, path: &Path, line: usize) -> Result<Vec<(String, String)>, CheckError> {
    let err = |m: &str| CheckError::parse(path, format!("line {line}: {m}"));
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(err(&format!("{key:?} is not key=value")));
        }
        let key = key.trim_matches('"').to_owned();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(err("unterminated quoted value")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(err("unterminated quoted value")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// Parses a Dockerfile into its stages. Knows the instructions the project's Dockerfiles
/// use; others are kept out of the model but accepted.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Stage>, CheckError> {
    // Logical lines: comments dropped, continuations joined.
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.starts_with('#') || (t.is_empty() && pending.is_none()) {
            continue;
        }
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = t.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            pending = Some((start, acc));
        } else {
            acc.push_str(t);
            logical.push((start, acc));
        }
    }
    if let Some((start, _)) = pending {
        return Err(CheckError::parse(
            path,
            format!("line {start}: continuation runs past the end"),
        ));
    }

    let mut stages: Vec<Stage> = Vec::new();
    for (line, l) in logical {
        let (instr, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let args = args.trim();
        let instr = instr.to_ascii_uppercase();
        if instr == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let (from, name) = match words[..] {
                [from] => (from, None),
                [from, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (from, Some(name.to_owned()))
                }
                _ => {
                    return Err(CheckError::parse(
                        path,
                        format!("line {line}: FROM {args:?}"),
                    ))
                }
            };
            stages.push(Stage {
                name,
                from: from.to_owned(),
                ..Stage::default()
            });
            continue;
        }
        if instr == "ARG" {
            continue; // ARGs before the first FROM, and build arguments inside stages
        }
        let Some(stage) = stages.last_mut() else {
            return Err(CheckError::parse(
                path,
                format!("line {line}: {instr} before FROM"),
            ));
        };
        match instr.as_str() {
            "USER" => stage.user = Some(args.to_owned()),
            "ENTRYPOINT" => {
                let v: Vec<String> = serde_json::from_str(args).map_err(|e| {
                    CheckError::parse(
                        path,
                        format!("line {line}: ENTRYPOINT is not a JSON array of strings (exec form): {e}"),
                    )
                })?;
                stage.entrypoint = Some(v);
            }
            "ENV" => stage.env.extend(key_values(args, path, line)?),
            "LABEL" => stage.labels.extend(key_values(args, path, line)?),
            "EXPOSE" => stage
                .expose
                .extend(args.split_whitespace().map(str::to_owned)),
            _ => {}
        }
    }
    if stages.is_empty() {
        return Err(CheckError::parse(path, "no FROM"));
    }
    Ok(stages)
}

/// Checks an image's final stage against its `images.txt` entry: non-root numeric user,
/// the binary as exec-form entrypoint, the OCI labels (title literal, the others from
/// build arguments), the role label, the role's environment contract documented and
/// given defaults, and for a runtime the exposed port equal to the `PORT` default.
pub fn check_stage(stage: &Stage, spec: &ImageSpec) -> Vec<String> {
    let mut f = Vec::new();
    if stage.user.as_deref() != Some(IMAGE_USER) {
        f.push(format!("USER is {:?}, not {IMAGE_USER:?}", stage.user));
    }
    let want_entry = vec![format!("{BIN_DIR}/{}", spec.binary)];
    if stage.entrypoint.as_ref() != Some(&want_entry) {
        f.push(format!(
            "ENTRYPOINT is {:?}, not {want_entry:?}",
            stage.entrypoint
        ));
    }
    for l in OCI_LABELS {
        let key = format!("org.opencontainers.image.{l}");
        match stage.labels.get(&key) {
            None => f.push(format!("no label {key}")),
            Some(v) if *l == "title" && *v != spec.image => f.push(format!(
                "label {key} is {v:?}, not the image name {:?}",
                spec.image
            )),
            Some(v) if *l != "title" && v.trim().is_empty() => {
                f.push(format!("label {key} is empty"))
            }
            _ => {}
        }
    }
    let role = match spec.role {
        Role::Processor => "processor",
        Role::Runtime => "runtime",
    };
    if stage.labels.get(ROLE_LABEL).map(String::as_str) != Some(role) {
        f.push(format!(
            "label {ROLE_LABEL} is {:?}, not {role:?}",
            stage.labels.get(ROLE_LABEL)
        ));
    }
    for name in spec.role.contract_env() {
        if !stage.documented_env().any(|d| d == *name) {
            f.push(format!(
                "{name} is not documented (label {ENV_LABEL_PREFIX}{name})"
            ));
        }
        if !stage.env.contains_key(*name) {
            f.push(format!("{name} has no ENV default"));
        }
    }
    if spec.role == Role::Runtime {
        let port = stage.env.get("PORT").cloned().unwrap_or_default();
        if stage.expose != [port.clone()] {
            f.push(format!(
                "EXPOSE {:?} is not the PORT default {port:?}",
                stage.expose
            ));
        }
    } else if !stage.expose.is_empty() {
        f.push(format!(
            "a processor serves nothing but EXPOSEs {:?}",
            stage.expose
        ));
    }
    f
}
