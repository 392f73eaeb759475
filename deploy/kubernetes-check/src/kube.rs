//! Checks of the Kubernetes example against the images: every container runs an image
//! `make images` builds, tagged with the workspace version, with only environment
//! variables that image documents; processors read `SOURCE_PATH` from a read-only volume
//! and write `TARGET_PATH` to a writable one; a runtime reads `MODEL_PATH` from the very
//! directory its pod's processor wrote, listens on its declared port, and is probed on
//! `/readyz` there; every container is non-root with a read-only root filesystem and
//! resource requests; Services reach a runtime's port; the kustomization names the
//! images and files that exist.
//!
//! Manifests are read as untyped YAML (`serde_json::Value`) so that any field the
//! example uses can be checked without modelling the Kubernetes API.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::dockerfile::{Stage, IMAGE_UID};
use crate::error::{read, CheckError};
use crate::images::{ImageSpec, Role};

/// The readiness path of the runtime.
pub const READINESS_PATH: &str = "/readyz";
/// The liveness path of the runtime.
pub const LIVENESS_PATH: &str = "/healthz";

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// File name and document index, for messages: `h2o3-model.yaml#0`.
    pub origin: String,
    pub value: Value,
}

/// Parses every document of a YAML file.
pub fn parse_documents(text: &str, path: &Path) -> Result<Vec<Document>, CheckError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| CheckError::parse(path, e.to_string()))?;
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(docs
        .into_iter()
        .filter(|v| !v.is_null())
        .enumerate()
        .map(|(i, value)| Document {
            origin: format!("{file}#{i}"),
            value,
        })
        .collect())
}

/// Reads every `*.yaml` / `*.yml` file of a folder (sorted by name).
pub fn read_documents(dir: &Path) -> Result<Vec<Document>, CheckError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CheckError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(parse_documents(&read(&f)?, &f)?);
    }
    Ok(out)
}

/// What the checks compare the manifests with.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub images: &'a [ImageSpec],
    /// The final stage of each image's Dockerfile, by image name.
    pub stages: &'a BTreeMap<String, Stage>,
    /// The tag every image reference must carry (the workspace version).
    pub version: &'a str,
    /// The folder of the manifests (kustomization resources are resolved against it).
    pub dir: &'a Path,
}

/// A pod template found in a workload.
#[derive(Debug)]
pub struct PodRef<'a> {
    pub origin: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: &'a Value,
}

pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn kind_and_name(doc: &Document) -> String {
    format!(
        "{} {}/{}",
        doc.origin,
        str_at(&doc.value, "/kind").unwrap_or("?"),
        str_at(&doc.value, "/metadata/name").unwrap_or("?")
    )
}

fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pod template of a workload document, if it is one.
pub fn pod_of(doc: &Document) -> Option<PodRef<'_>> {
    let kind = str_at(&doc.value, "/kind")?;
    let template = match kind {
        "Pod" => &doc.value,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            doc.value.pointer("/spec/template")?
        }
        "CronJob" => doc.value.pointer("/spec/jobTemplate/spec/template")?,
        _ => return None,
    };
    Some(PodRef {
        origin: kind_and_name(doc),
        kind: kind.to_owned(),
        labels: labels(template.pointer("/metadata/labels")),
        annotations: labels(template.pointer("/metadata/annotations")),
        spec: template.get("spec")?,
    })
}

/// `registry/path/name:tag` → (`name`, `tag`).
fn split_image(reference: &str) -> (String, Option<String>) {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((name, tag)) => (name.to_owned(), Some(tag.to_owned())),
        None => (last.to_owned(), None),
    }
}

/// Whether `path` is `base` or inside it, and the part below `base`.
fn relative_to(path: &str, base: &str) -> Option<PathBuf> {
    Path::new(path)
        .strip_prefix(Path::new(base))
        .ok()
        .map(Path::to_path_buf)
}

fn is_absolute_clean(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// A volume mount of a container.
#[derive(Debug, Clone)]
struct Mount {
    volume: String,
    path: String,
    read_only: bool,
    sub_path: Option<String>,
}

/// Where a path in a container lands: the volume, and the path inside the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    volume: String,
    inner: PathBuf,
    read_only: bool,
}

fn place(mounts: &[Mount], path: &str) -> Option<Place> {
    mounts
        .iter()
        .filter_map(|m| relative_to(path, &m.path).map(|rel| (m, rel)))
        .max_by_key(|(m, _)| m.path.len())
        .map(|(m, rel)| Place {
            volume: m.volume.clone(),
            inner: Path::new(m.sub_path.as_deref().unwrap_or("")).join(rel),
            read_only: m.read_only,
        })
}

fn bool_at(v: Option<&Value>, key: &str) -> Option<bool> {
    v.and_then(|v| v.get(key)).and_then(Value::as_bool)
}

/// Resolves a probe's or Service's port (number or name) against a container's ports.
fn resolve_port(port: &Value, container: &Value) -> Option<i64> {
    let ports = container.get("ports").and_then(Value::as_array);
    match port {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => match name.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => ports?
                .iter()
                .find(|p| str_at(p, "/name") == Some(name))
                .and_then(|p| p.get("containerPort"))
                .and_then(Value::as_i64),
        },
        _ => None,
    }
}

/// What one pod's containers do, for the checks that relate containers to each other.
#[derive(Debug, Default)]
struct PodFacts {
    /// Places processor init containers write (`TARGET_PATH`).
    targets: Vec<Place>,
    /// Places processors read (`SOURCE_PATH`).
    sources: Vec<Place>,
    /// (container, place of `MODEL_PATH`) of the runtime containers.
    models: Vec<(String, Place)>,
}

/// Checks every document; returns the findings (empty when everything agrees).
pub fn check(expected: &Expected<'_>, docs: &[Document]) -> Vec<String> {
    let mut f = Vec::new();
    let pods: Vec<PodRef<'_>> = docs.iter().filter_map(pod_of).collect();
    for doc in docs {
        let what = kind_and_name(doc);
        let kind = str_at(&doc.value, "/kind");
        if str_at(&doc.value, "/apiVersion").is_none() || kind.is_none() {
            f.push(format!("{what}: no apiVersion or kind"));
            continue;
        }
        if kind == Some("Kustomization") {
            check_kustomization(expected, &what, &doc.value, &mut f);
            continue;
        }
        if str_at(&doc.value, "/metadata/name").is_none() {
            f.push(format!("{what}: no metadata.name"));
        }
        if kind == Some("Service") {
            check_service(&what, &doc.value, &pods, expected, &mut f);
        }
    }
    for pod in &pods {
        check_pod(expected, pod, &mut f);
    }
    crate::security::check(expected, docs, &pods, &mut f);
    f
}

fn check_kustomization(expected: &Expected<'_>, what: &str, doc: &Value, f: &mut Vec<String>) {
    for r in doc
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match r.as_str() {
            Some(r) if expected.dir.join(r).is_file() => {}
            _ => f.push(format!(
                "{what}: resource {r} is not a file of {}",
                expected.dir.display()
            )),
        }
    }
    for i in doc
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(i, "/name").unwrap_or("");
        if !expected.images.iter().any(|s| s.image == name) {
            f.push(format!(
                "{what}: images entry {name:?} is not an image of images/images.txt"
            ));
        }
        if let Some(tag) = i.get("newTag") {
            if tag.as_str() != Some(expected.version) {
                f.push(format!(
                    "{what}: {name} newTag {tag} is not the workspace version {}",
                    expected.version
                ));
            }
        }
    }
}

fn check_service(
    what: &str,
    doc: &Value,
    pods: &[PodRef<'_>],
    expected: &Expected<'_>,
    f: &mut Vec<String>,
) {
    let selector = labels(doc.pointer("/spec/selector"));
    if selector.is_empty() {
        f.push(format!("{what}: no selector"));
        return;
    }
    let selected: Vec<&PodRef<'_>> = pods
        .iter()
        .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        .collect();
    if selected.is_empty() {
        f.push(format!(
            "{what}: selector {selector:?} matches no pod of the example"
        ));
    }
    for port in doc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let target = port
            .get("targetPort")
            .or_else(|| port.get("port"))
            .cloned()
            .unwrap_or(Value::Null);
        for pod in &selected {
            let runtimes: Vec<&Value> = containers(pod.spec, "containers")
                .filter(|c| role_of(expected, c) == Some(Role::Runtime))
                .collect();
            let reached = runtimes.iter().any(|c| {
                resolve_port(&target, c).is_some_and(|n| {
                    c.get("ports").and_then(Value::as_array).is_some_and(|ps| {
                        ps.iter()
                            .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(n))
                    })
                })
            });
            if !reached {
                f.push(format!(
                    "{what}: targetPort {target} reaches no runtime container port of {}",
                    pod.origin
                ));
            }
        }
    }
}

pub(crate) fn containers<'a>(spec: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn spec_of<'a>(expected: &'a Expected<'_>, container: &Value) -> Option<&'a ImageSpec> {
    let (name, _) = split_image(str_at(container, "/image")?);
    expected.images.iter().find(|s| s.image == name)
}

pub(crate) fn role_of(expected: &Expected<'_>, container: &Value) -> Option<Role> {
    spec_of(expected, container).map(|s| s.role)
}

fn check_pod(expected: &Expected<'_>, pod: &PodRef<'_>, f: &mut Vec<String>) {
    let volumes: BTreeMap<String, &Value> = containers(pod.spec, "volumes")
        .filter_map(|v| Some((str_at(v, "/name")?.to_owned(), v)))
        .collect();
    let pod_sc = pod.spec.get("securityContext");
    let long_running = matches!(
        pod.kind.as_str(),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
    );
    let mut facts = PodFacts::default();
    let mut any = false;
    for (key, init) in [("initContainers", true), ("containers", false)] {
        for c in containers(pod.spec, key) {
            any = true;
            let name = str_at(c, "/name").unwrap_or("?");
            let at = format!(
                "{} {} {name}",
                pod.origin,
                if init { "initContainer" } else { "container" }
            );
            check_container(
                expected,
                &at,
                c,
                init,
                long_running,
                pod_sc,
                &volumes,
                &mut facts,
                f,
            );
        }
    }
    if !any {
        f.push(format!("{}: no containers", pod.origin));
    }
    // The runtime serves what its pod's processor wrote: same volume, same directory.
    for (runtime, model) in &facts.models {
        let at = format!("{} container {runtime}", pod.origin);
        let volume = volumes.get(&model.volume);
        let empty_dir = volume.is_some_and(|v| v.get("emptyDir").is_some());
        if facts.targets.is_empty() {
            if empty_dir {
                f.push(format!(
                    "{at}: MODEL_PATH is on emptyDir {} but no processor init container writes it",
                    model.volume
                ));
            }
        } else if !facts
            .targets
            .iter()
            .any(|t| t.volume == model.volume && t.inner == model.inner)
        {
            f.push(format!(
                "{at}: MODEL_PATH is {}:{} but the processor writes TARGET_PATH to {}",
                model.volume,
                model.inner.display(),
                facts
                    .targets
                    .iter()
                    .map(|t| format!("{}:{}", t.volume, t.inner.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else if !empty_dir {
            f.push(format!(
                "{at}: the model volume {} shared with the processor is not an emptyDir",
                model.volume
            ));
        }
    }
    for s in &facts.sources {
        if facts.targets.iter().any(|t| t.volume == s.volume) {
            f.push(format!(
                "{}: SOURCE_PATH and TARGET_PATH are on the same volume {}",
                pod.origin, s.volume
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_container(
    expected: &Expected<'_>,
    at: &str,
    c: &Value,
    init: bool,
    long_running: bool,
    pod_sc: Option<&Value>,
    volumes: &BTreeMap<String, &Value>,
    facts: &mut PodFacts,
    f: &mut Vec<String>,
) {
    // Security: effective values (the container's setting wins over the pod's).
    let sc = c.get("securityContext");
    let effective = |k: &str| bool_at(sc, k).or_else(|| bool_at(pod_sc, k));
    if effective("runAsNonRoot") != Some(true) {
        f.push(format!("{at}: runAsNonRoot is not true"));
    }
    let uid = sc
        .and_then(|s| s.get("runAsUser"))
        .or_else(|| pod_sc.and_then(|s| s.get("runAsUser")))
        .and_then(Value::as_i64);
    if uid.is_some_and(|u| u != IMAGE_UID) {
        f.push(format!(
            "{at}: runAsUser {uid:?} is not the images' user {IMAGE_UID}"
        ));
    }
    if bool_at(sc, "readOnlyRootFilesystem") != Some(true) {
        f.push(format!("{at}: readOnlyRootFilesystem is not true"));
    }
    if bool_at(sc, "allowPrivilegeEscalation") != Some(false) {
        f.push(format!("{at}: allowPrivilegeEscalation is not false"));
    }
    let drops_all = sc
        .and_then(|s| s.pointer("/capabilities/drop"))
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")));
    if !drops_all {
        f.push(format!("{at}: capabilities.drop does not hold ALL"));
    }
    for r in ["cpu", "memory"] {
        if c.pointer(&format!("/resources/requests/{r}")).is_none() {
            f.push(format!("{at}: no resources.requests.{r}"));
        }
    }

    // Image: one that `make images` builds, at the workspace version.
    let Some(reference) = str_at(c, "/image") else {
        f.push(format!("{at}: no image"));
        return;
    };
    let (name, tag) = split_image(reference);
    let Some(spec) = expected.images.iter().find(|s| s.image == name) else {
        f.push(format!(
            "{at}: image {reference} is not built by make images (images/images.txt: {})",
            expected
                .images
                .iter()
                .map(|s| s.image.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return;
    };
    if tag.as_deref() != Some(expected.version) {
        f.push(format!(
            "{at}: image {reference} is not tagged with the workspace version {}",
            expected.version
        ));
    }
    let Some(stage) = expected.stages.get(&spec.image) else {
        f.push(format!("{at}: no Dockerfile stage for {}", spec.image));
        return;
    };
    match (spec.role, init) {
        (Role::Runtime, true) => f.push(format!("{at}: the runtime {name} serves until stopped; it cannot be an init container")),
        (Role::Processor, false) if long_running => f.push(format!(
            "{at}: the processor {name} exits when done; in a long-running workload it belongs in initContainers"
        )),
        _ => {}
    }

    // Environment: only what the image documents, and the role's contract.
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
        let Some(n) = str_at(e, "/name") else {
            f.push(format!("{at}: an env entry has no name"));
            continue;
        };
        if !stage.documented_env().any(|d| d == n) {
            f.push(format!(
                "{at}: env {n} is not documented by images/{}.Dockerfile (it documents {})",
                spec.image,
                stage.documented_env().collect::<Vec<_>>().join(", ")
            ));
        }
        let value = match e.get("value") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                f.push(format!("{at}: env {n} value {other} is not a string"));
                Some(other.to_string())
            }
            None => None,
        };
        if env.insert(n.to_owned(), value).is_some() {
            f.push(format!("{at}: env {n} is set twice"));
        }
    }
    let value_of = |n: &str| -> Option<String> {
        match env.get(n) {
            Some(v) => v.clone(),
            None => stage.env.get(n).cloned(),
        }
    };
    for n in spec.role.contract_env() {
        if !env.contains_key(*n) && !stage.env.contains_key(*n) {
            f.push(format!(
                "{at}: {n} is neither set nor defaulted by the image"
            ));
        }
    }

    let mounts: Vec<Mount> = c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(Mount {
                volume: str_at(m, "/name")?.to_owned(),
                path: str_at(m, "/mountPath")?.to_owned(),
                read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                sub_path: str_at(m, "/subPath").map(str::to_owned),
            })
        })
        .collect();
    for m in &mounts {
        if !volumes.contains_key(&m.volume) {
            f.push(format!(
                "{at}: mounts volume {} which the pod does not define",
                m.volume
            ));
        }
    }
    let placed = |var: &str, want_read_only: bool, f: &mut Vec<String>| -> Option<Place> {
        let path = value_of(var)?;
        if !is_absolute_clean(&path) {
            f.push(format!("{at}: {var} {path:?} is not a clean absolute path"));
            return None;
        }
        let Some(p) = place(&mounts, &path) else {
            f.push(format!(
                "{at}: {var} {path} is on no volume mount (the root filesystem is read-only)"
            ));
            return None;
        };
        if p.read_only != want_read_only {
            f.push(format!(
                "{at}: {var} {path} is on volume {} mounted {}",
                p.volume,
                if p.read_only {
                    "read-only"
                } else {
                    "read-write; it should be read-only"
                }
            ));
        }
        Some(p)
    };

    match spec.role {
        Role::Processor => {
            if let Some(p) = placed("SOURCE_PATH", true, f) {
                facts.sources.push(p);
            }
            if let Some(p) = placed("TARGET_PATH", false, f) {
                if init {
                    facts.targets.push(p);
                }
            }
            if c.get("ports").is_some() || c.get("readinessProbe").is_some() {
                f.push(format!(
                    "{at}: a processor serves nothing; it has ports or a readiness probe"
                ));
            }
        }
        Role::Runtime => {
            if let Some(p) = placed("MODEL_PATH", true, f) {
                facts
                    .models
                    .push((str_at(c, "/name").unwrap_or("?").to_owned(), p));
            }
            let port = value_of("PORT").and_then(|p| p.parse::<i64>().ok());
            let Some(port) = port else {
                f.push(format!("{at}: PORT is not a number"));
                return;
            };
            if !stage
                .expose
                .iter()
                .any(|e| e.parse::<i64>().ok() == Some(port))
            {
                f.push(format!(
                    "{at}: PORT {port} is not the port images/{}.Dockerfile exposes {:?}",
                    spec.image, stage.expose
                ));
            }
            let declared = c.get("ports").and_then(Value::as_array).is_some_and(|ps| {
                ps.iter()
                    .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(port))
            });
            if !declared {
                f.push(format!("{at}: no containerPort {port} (PORT)"));
            }
            for (probe, path, required) in [
                ("readinessProbe", READINESS_PATH, true),
                ("livenessProbe", LIVENESS_PATH, false),
            ] {
                let Some(get) = c.pointer(&format!("/{probe}/httpGet")) else {
                    if required {
                        f.push(format!("{at}: no {probe}.httpGet"));
                    }
                    continue;
                };
                if str_at(get, "/path") != Some(path) {
                    f.push(format!(
                        "{at}: {probe} path is {:?}, not {path}",
                        str_at(get, "/path")
                    ));
                }
                let resolved = get.get("port").and_then(|p| resolve_port(p, c));
                if resolved != Some(port) {
                    f.push(format!(
                        "{at}: {probe} port {:?} does not resolve to PORT {port}",
                        get.get("port")
                    ));
                }
            }
        }
    }
}
