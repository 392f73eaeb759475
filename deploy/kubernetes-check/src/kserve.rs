//! Structural checks of the KServe manifests (`deploy/kserve/`): KServe's custom resources
//! are not core Kubernetes objects (no schema to validate them against offline), so their
//! fields are checked here against the images, the catalog and the processors' contract.
//!
//! - `ClusterStorageContainer`: one per processor image of `images/images.txt`; its
//!   container is named `storage-initializer` (KServe runs it so, with the storage URI and
//!   `/mnt/models` as its two arguments), runs the processor's image at the workspace
//!   version with no `command`/`args` of its own and no `SOURCE_PATH`/`TARGET_PATH` (the
//!   arguments carry them), only documented variables, non-root with a read-only root
//!   filesystem; `workloadType: initContainer`; its URI format is the regex of its
//!   artifact folder, [`uri_regex`].
//! - `ClusterServingRuntime`: one per catalog runtime whose image `make images` builds,
//!   named as the catalog names it, `supportedModelFormats` exactly the runtime's model
//!   types, `protocolVersions` holding `v2`; its container `kserve-container` runs that
//!   image with `MODEL_PATH=/mnt/models`, listens on `PORT` (a declared container port) and
//!   is probed on `/readyz` there.
//! - `InferenceService`: its runtime exists and serves its model format; its storage URI
//!   is taken by exactly one storage container, whose processor produces that format.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::kube::{str_at, Document, Expected, READINESS_PATH};

/// Where KServe mounts the model for the storage step and the runtime.
pub const MODEL_MOUNT: &str = "/mnt/models";
/// The container name KServe requires of a storage container.
pub const STORAGE_CONTAINER: &str = "storage-initializer";
/// The container name KServe gives the predictor of a serving runtime.
pub const RUNTIME_CONTAINER: &str = "kserve-container";

/// The artifact folder of a processor image in storage URIs (`h2o3-mojo-processor` →
/// `h2o3-mojo`).
pub fn uri_folder(image: &str) -> &str {
    image.strip_suffix("-processor").unwrap_or(image)
}

/// The URI format of a processor's storage container: `s3://` or `https://`, a bucket
/// (host), any folders, the processor's artifact folder, then the object's name.
pub fn uri_regex(image: &str) -> String {
    format!("^(s3|https)://[^/]+/(.+/)?{}/[^/]+$", uri_folder(image))
}

/// Whether `uri` matches [`uri_regex`] of the processor image `image` (the regex's
/// language, decided without a regex engine).
pub fn uri_matches(image: &str, uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("s3://")
        .or_else(|| uri.strip_prefix("https://"))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    // bucket, [folders...], artifact folder, name
    parts.len() >= 3
        && !parts[0].is_empty()
        && !parts[parts.len() - 1].is_empty()
        && parts[parts.len() - 2] == uri_folder(image)
}

fn env_of(c: &Value) -> BTreeMap<String, Option<String>> {
    c.get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                str_at(e, "/name")?.to_owned(),
                str_at(e, "/value").map(str::to_owned),
            ))
        })
        .collect()
}

/// The checks every container of the KServe manifests gets: image at the workspace
/// version with the expected role, documented variables only, hardened security context,
/// resource requests.
fn check_container(
    expected: &Expected<'_>,
    at: &str,
    c: &Value,
    role: crate::images::Role,
    f: &mut Vec<String>,
) -> Option<String> {
    let Some(reference) = str_at(c, "/image") else {
        f.push(format!("{at}: no image"));
        return None;
    };
    let (name, tag) = reference
        .rsplit('/')
        .next()
        .unwrap_or(reference)
        .split_once(':')
        .map(|(n, t)| (n.to_owned(), Some(t.to_owned())))
        .unwrap_or((reference.to_owned(), None));
    let Some(spec) = expected.images.iter().find(|s| s.image == name) else {
        f.push(format!(
            "{at}: image {reference} is not built by make images (images/images.txt)"
        ));
        return None;
    };
    if spec.role != role {
        f.push(format!(
            "{at}: image {name} is a {:?}, not a {role:?}",
            spec.role
        ));
    }
    if tag.as_deref() != Some(expected.version) {
        f.push(format!(
            "{at}: image {reference} is not tagged with the workspace version {}",
            expected.version
        ));
    }
    if let Some(stage) = expected.stages.get(&name) {
        for n in env_of(c).keys() {
            if !stage.documented_env().any(|d| d == n) {
                f.push(format!(
                    "{at}: env {n} is not documented by images/{name}.Dockerfile"
                ));
            }
        }
    }
    let sc = c.get("securityContext");
    let b = |k: &str| sc.and_then(|s| s.get(k)).and_then(Value::as_bool);
    if b("runAsNonRoot") != Some(true)
        || b("readOnlyRootFilesystem") != Some(true)
        || b("allowPrivilegeEscalation") != Some(false)
    {
        f.push(format!(
            "{at}: securityContext must set runAsNonRoot, readOnlyRootFilesystem and not allowPrivilegeEscalation"
        ));
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
    Some(name)
}

/// Checks the KServe documents; `catalog` is catalog.json. Returns the findings.
pub fn check(expected: &Expected<'_>, catalog: &Value, docs: &[Document]) -> Vec<String> {
    use crate::images::Role;
    let mut f = Vec::new();
    let kind = |d: &Document| str_at(&d.value, "/kind").unwrap_or("").to_owned();
    let name = |d: &Document| str_at(&d.value, "/metadata/name").unwrap_or("").to_owned();
    let api = |d: &Document| str_at(&d.value, "/apiVersion").unwrap_or("").to_owned();

    // Storage containers: processor image → its URI regex.
    let mut storage: BTreeMap<String, String> = BTreeMap::new();
    for d in docs.iter().filter(|d| kind(d) == "ClusterStorageContainer") {
        let at = format!("{} ClusterStorageContainer/{}", d.origin, name(d));
        if api(d) != "serving.kserve.io/v1alpha1" {
            f.push(format!(
                "{at}: apiVersion is not serving.kserve.io/v1alpha1"
            ));
        }
        if str_at(&d.value, "/spec/workloadType") != Some("initContainer") {
            f.push(format!("{at}: workloadType is not initContainer"));
        }
        let Some(c) = d.value.pointer("/spec/container") else {
            f.push(format!("{at}: no spec.container"));
            continue;
        };
        if str_at(c, "/name") != Some(STORAGE_CONTAINER) {
            f.push(format!(
                "{at}: the container must be named {STORAGE_CONTAINER} (KServe runs it so)"
            ));
        }
        for k in ["command", "args"] {
            if c.get(k).is_some() {
                f.push(format!(
                    "{at}: {k} is set: KServe passes the storage URI and {MODEL_MOUNT} as the arguments of the image's entrypoint"
                ));
            }
        }
        let env = env_of(c);
        for k in ["SOURCE_PATH", "TARGET_PATH"] {
            if env.contains_key(k) {
                f.push(format!(
                    "{at}: env {k} is set: the storage step takes the source and target as its arguments"
                ));
            }
        }
        let Some(image) = check_container(expected, &at, c, Role::Processor, &mut f) else {
            continue;
        };
        if name(d) != image {
            f.push(format!("{at}: name it after its processor image {image}"));
        }
        let formats: Vec<&Value> = d
            .value
            .pointer("/spec/supportedUriFormats")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let want = uri_regex(&image);
        if formats.len() != 1 || str_at(formats[0], "/regex") != Some(want.as_str()) {
            f.push(format!(
                "{at}: supportedUriFormats must be the one regex {want:?} (its artifact folder)"
            ));
        }
        if storage.insert(image.clone(), want).is_some() {
            f.push(format!("{at}: a second storage container for {image}"));
        }
    }
    for spec in expected.images.iter().filter(|s| s.role == Role::Processor) {
        if !storage.contains_key(&spec.image) {
            f.push(format!(
                "no ClusterStorageContainer runs the processor image {}",
                spec.image
            ));
        }
    }

    // Serving runtimes: name → model formats.
    let runtimes: Vec<&Value> = catalog
        .get("runtimes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let mut served: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in docs.iter().filter(|d| kind(d) == "ClusterServingRuntime") {
        let at = format!("{} ClusterServingRuntime/{}", d.origin, name(d));
        if api(d) != "serving.kserve.io/v1alpha1" {
            f.push(format!(
                "{at}: apiVersion is not serving.kserve.io/v1alpha1"
            ));
        }
        let Some(entry) = runtimes
            .iter()
            .find(|r| str_at(r, "/name") == Some(name(d).as_str()))
        else {
            f.push(format!("{at}: not a runtime of catalog.json"));
            continue;
        };
        let formats: Vec<String> = d
            .value
            .pointer("/spec/supportedModelFormats")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| str_at(m, "/name").map(str::to_owned))
            .collect();
        let mut want: Vec<String> = entry
            .get("model_types")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        let mut got = formats.clone();
        got.sort();
        want.sort();
        if got != want {
            f.push(format!(
                "{at}: supportedModelFormats {got:?} are not the catalog's model types {want:?}"
            ));
        }
        let protocols = d.value.pointer("/spec/protocolVersions");
        if !protocols
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|v| v.as_str() == Some("v2")))
        {
            f.push(format!("{at}: protocolVersions does not hold v2"));
        }
        let containers: Vec<&Value> = d
            .value
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let Some(c) = containers
            .iter()
            .find(|c| str_at(c, "/name") == Some(RUNTIME_CONTAINER))
        else {
            f.push(format!("{at}: no container named {RUNTIME_CONTAINER}"));
            continue;
        };
        if let Some(image) = check_container(expected, &at, c, Role::Runtime, &mut f) {
            if str_at(entry, "/image") != Some(image.as_str()) {
                f.push(format!(
                    "{at}: image {image} is not the catalog's image for this runtime"
                ));
            }
        }
        let env = env_of(c);
        if env.get("MODEL_PATH").cloned().flatten().as_deref() != Some(MODEL_MOUNT) {
            f.push(format!("{at}: MODEL_PATH is not {MODEL_MOUNT}"));
        }
        let port = env.get("PORT").cloned().flatten();
        let declared: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("containerPort").map(|v| v.to_string()))
            .collect();
        match &port {
            Some(p) if declared.contains(p) => {}
            _ => f.push(format!(
                "{at}: PORT {port:?} is not a declared containerPort {declared:?}"
            )),
        }
        if str_at(c, "/readinessProbe/httpGet/path") != Some(READINESS_PATH)
            || c.pointer("/readinessProbe/httpGet/port")
                .map(|v| v.to_string())
                != port
        {
            f.push(format!(
                "{at}: readinessProbe is not GET {READINESS_PATH} on PORT"
            ));
        }
        served.insert(name(d), formats);
    }
    for r in &runtimes {
        let Some(image) = str_at(r, "/image") else {
            continue;
        };
        let rname = str_at(r, "/name").unwrap_or("");
        if expected.images.iter().any(|s| s.image == image) && !served.contains_key(rname) {
            f.push(format!(
                "no ClusterServingRuntime for the catalog runtime {rname} (image {image})"
            ));
        }
    }

    // InferenceServices.
    let processors: Vec<&Value> = catalog
        .get("processors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    for d in docs.iter().filter(|d| kind(d) == "InferenceService") {
        let at = format!("{} InferenceService/{}", d.origin, name(d));
        let m = d.value.pointer("/spec/predictor/model");
        let format = m.and_then(|m| str_at(m, "/modelFormat/name")).unwrap_or("");
        let runtime = m.and_then(|m| str_at(m, "/runtime")).unwrap_or("");
        let uri = m.and_then(|m| str_at(m, "/storageUri")).unwrap_or("");
        match served.get(runtime) {
            Some(formats) if formats.iter().any(|x| x == format) => {}
            Some(_) => f.push(format!("{at}: runtime {runtime} does not serve {format:?}")),
            None => f.push(format!("{at}: no ClusterServingRuntime {runtime:?}")),
        }
        let takers: Vec<&String> = storage.keys().filter(|i| uri_matches(i, uri)).collect();
        match takers.as_slice() {
            [image] => {
                let produces = processors.iter().any(|p| {
                    str_at(p, "/image") == Some(image.as_str())
                        && p.get("model_types")
                            .and_then(Value::as_array)
                            .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(format)))
                });
                if !produces {
                    f.push(format!(
                        "{at}: storageUri {uri} goes to {image}, which does not produce {format:?}"
                    ));
                }
            }
            _ => f.push(format!(
                "{at}: storageUri {uri:?} is taken by {} storage containers (want exactly one)",
                takers.len()
            )),
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_matching_is_the_regex() {
        let cases = [
            ("s3://models/h2o3-mojo/gbm.zip", true),
            ("s3://models/team/a/h2o3-mojo/gbm.zip", true),
            ("https://host/h2o3-mojo/gbm.zip", true),
            ("s3://h2o3-mojo/gbm.zip", false),
            ("s3://models/h2o3-mojo/", false),
            ("s3://models/h2o3-mojo/x/gbm.zip", false),
            ("gs://models/h2o3-mojo/gbm.zip", false),
            ("s3://models/mlflow/gbm.zip", false),
        ];
        for (uri, want) in cases {
            assert_eq!(uri_matches("h2o3-mojo-processor", uri), want, "{uri}");
        }
        assert_eq!(
            uri_regex("h2o3-mojo-processor"),
            "^(s3|https)://[^/]+/(.+/)?h2o3-mojo/[^/]+$"
        );
    }
}
