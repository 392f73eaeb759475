//! The deployment files against what the workspace builds: `images/images.txt` against the
//! workspace, the catalog and the Dockerfiles; the Dockerfiles against the environment
//! contract; the Kubernetes example against the images. Then the same checks on broken
//! copies, so that each one is shown to catch what it is for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deploy_check::dockerfile::{self, check_stage, Stage, IMAGE_UID};
use deploy_check::images::{self, parse_images_list, Base, ImageSpec, Role, Workspace};
use deploy_check::kube::{self, Document, Expected};
use serde_json::{json, Value};

struct Fixture {
    root: PathBuf,
    images: Vec<ImageSpec>,
    workspace: Workspace,
    /// The final (only) stage of images/<image>.Dockerfile, by image.
    stages: BTreeMap<String, Stage>,
    /// The text of images/<image>.Dockerfile, by image.
    texts: BTreeMap<String, String>,
    /// deploy/kubernetes's own manifests.
    docs: Vec<Document>,
    /// Every example: deploy/kubernetes and each folder in it, with its manifests.
    examples: Vec<(PathBuf, Vec<Document>)>,
}

impl Fixture {
    fn load() -> Fixture {
        let root = deploy_check::repo_root();
        let images = images::read_images_list(&root).expect("images/images.txt");
        let workspace = images::read_workspace(&root).expect("workspace Cargo.toml");
        let mut stages = BTreeMap::new();
        let mut texts = BTreeMap::new();
        for spec in &images {
            let path = root.join(format!("images/{}.Dockerfile", spec.image));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (images/images.txt lists {})",
                    path.display(),
                    spec.image
                )
            });
            let parsed = dockerfile::parse(&text, &path).expect("Dockerfile parses");
            assert_eq!(parsed.len(), 1, "{}: one stage", path.display());
            stages.insert(
                spec.image.clone(),
                parsed.into_iter().next().expect("one stage"),
            );
            texts.insert(spec.image.clone(), text);
        }
        let top = root.join("deploy/kubernetes");
        let docs = kube::read_documents(&top).expect("manifests parse");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&top)
            .expect("deploy/kubernetes")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let mut examples = vec![(top, docs.clone())];
        for d in dirs {
            let docs = kube::read_documents(&d)
                .unwrap_or_else(|e| panic!("{}: manifests parse: {e}", d.display()));
            examples.push((d, docs));
        }
        Fixture {
            root,
            images,
            workspace,
            stages,
            texts,
            docs,
            examples,
        }
    }

    fn k8s_dir(&self) -> PathBuf {
        self.root.join("deploy/kubernetes")
    }

    fn check(&self, docs: &[Document]) -> Vec<String> {
        self.check_in(&self.k8s_dir(), docs)
    }

    fn check_in(&self, dir: &Path, docs: &[Document]) -> Vec<String> {
        let expected = Expected {
            images: &self.images,
            stages: &self.stages,
            version: &self.workspace.version,
            dir,
        };
        kube::check(&expected, docs)
    }

    fn spec(&self, image: &str) -> &ImageSpec {
        self.images
            .iter()
            .find(|s| s.image == image)
            .expect("image listed")
    }
}

fn no_findings(what: &str, findings: &[String]) {
    assert!(findings.is_empty(), "{what}:\n  {}", findings.join("\n  "));
}

#[test]
fn images_list_agrees_with_the_workspace_the_catalog_and_the_dockerfiles() {
    let fx = Fixture::load();
    let mut findings = Vec::new();
    for spec in &fx.images {
        match fx.workspace.packages.get(&spec.package) {
            None => findings.push(format!(
                "{}: package {} is not a workspace member",
                spec.image, spec.package
            )),
            Some(p) if !p.binaries.contains(&spec.binary) => findings.push(format!(
                "{}: package {} has no binary {} (it has {:?})",
                spec.image, spec.package, spec.binary, p.binaries
            )),
            Some(_) => {}
        }
    }
    // One Dockerfile per listed image, and no other.
    let mut files: Vec<String> = std::fs::read_dir(fx.root.join("images"))
        .expect("images/")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".Dockerfile")
                .map(str::to_owned)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = fx.images.iter().map(|s| s.image.clone()).collect();
    listed.sort();
    if files != listed {
        findings.push(format!(
            "images/*.Dockerfile {files:?} != images/images.txt {listed:?}"
        ));
    }
    // The catalog names the same images with the same binaries.
    let catalog = artifact_core::catalog::catalog();
    let mut from_catalog: Vec<(String, String, Role)> = catalog
        .processors
        .iter()
        .map(|p| (p.image.clone(), p.name.clone(), Role::Processor))
        .chain(
            catalog
                .runtimes
                .iter()
                .map(|r| (r.image.clone(), r.binary.clone(), Role::Runtime)),
        )
        .collect();
    from_catalog.sort_by(|a, b| a.0.cmp(&b.0));
    from_catalog.dedup();
    let mut from_list: Vec<(String, String, Role)> = fx
        .images
        .iter()
        .map(|s| (s.image.clone(), s.binary.clone(), s.role))
        .collect();
    from_list.sort_by(|a, b| a.0.cmp(&b.0));
    if from_catalog != from_list {
        findings.push(format!(
            "catalog.json (image, binary, role) {from_catalog:?} != images/images.txt {from_list:?}"
        ));
    }
    no_findings("images/images.txt", &findings);
}

#[test]
fn dockerfiles_declare_user_entrypoint_labels_and_the_env_contract() {
    let fx = Fixture::load();
    let mut findings = Vec::new();
    for spec in &fx.images {
        let stage = &fx.stages[&spec.image];
        match spec.base.default_image() {
            None if stage.from != "scratch" => findings.push(format!(
                "{}: FROM {}, not scratch (images.txt: base scratch)",
                spec.image, stage.from
            )),
            None => {}
            Some(default) => {
                // The base is a build argument (a registry user passes python:3.11-slim
                // or debian:bookworm-slim), defaulting to the base images/base/build.sh makes.
                if stage.from != "${BASE_IMAGE}" {
                    findings.push(format!(
                        "{}: FROM {}, not FROM ${{BASE_IMAGE}}",
                        spec.image, stage.from
                    ));
                }
                let arg = format!("ARG BASE_IMAGE={default}");
                if !fx.texts[&spec.image].lines().any(|l| l.trim() == arg) {
                    findings.push(format!("{}: no `{arg}` line", spec.image));
                }
            }
        }
        if spec.role == Role::Runtime {
            // MODEL_TYPES is what the catalog says the image's runtime serves.
            let catalog = artifact_core::catalog::catalog();
            let want: Vec<String> = catalog
                .runtimes
                .iter()
                .filter(|r| r.image == spec.image)
                .flat_map(|r| r.model_types.iter().cloned())
                .collect();
            let got = stage
                .env
                .get("MODEL_TYPES")
                .map(String::as_str)
                .unwrap_or("");
            if got != want.join(",") {
                findings.push(format!(
                    "{}: ENV MODEL_TYPES={got:?}, catalog.json says its runtime serves {want:?}",
                    spec.image
                ));
            }
        }
        findings.extend(
            check_stage(stage, spec)
                .into_iter()
                .map(|m| format!("{}: {m}", spec.image)),
        );
    }
    let passwd =
        std::fs::read_to_string(fx.root.join("images/etc/passwd")).expect("images/etc/passwd");
    if !passwd
        .lines()
        .any(|l| l.split(':').nth(2) == Some(&IMAGE_UID.to_string()))
    {
        findings.push(format!("images/etc/passwd names no user {IMAGE_UID}"));
    }
    no_findings("images/*.Dockerfile", &findings);
}

#[test]
fn multistage_variant_matches_the_tested_dockerfiles() {
    let fx = Fixture::load();
    let path = fx.root.join("images/Dockerfile.multistage");
    let text = std::fs::read_to_string(&path).expect("images/Dockerfile.multistage");
    let stages = dockerfile::parse(&text, &path).expect("parses");
    let mut findings = Vec::new();
    // The images on a base are already the registry variant (BASE_IMAGE); the
    // multi-stage file covers the FROM scratch ones.
    for spec in fx.images.iter().filter(|s| s.base == Base::Scratch) {
        let Some(stage) = stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&spec.image))
        else {
            findings.push(format!("no stage {}", spec.image));
            continue;
        };
        if stage.from == "scratch" {
            findings.push(format!(
                "{}: the multi-stage variant is the distroless one",
                spec.image
            ));
        }
        findings.extend(
            check_stage(stage, spec)
                .into_iter()
                .map(|m| format!("{}: {m}", spec.image)),
        );
        let tested = &fx.stages[&spec.image];
        for (what, same) in [
            ("USER", stage.user == tested.user),
            ("ENTRYPOINT", stage.entrypoint == tested.entrypoint),
            ("ENV", stage.env == tested.env),
            ("LABEL", stage.labels == tested.labels),
            ("EXPOSE", stage.expose == tested.expose),
        ] {
            if !same {
                findings.push(format!(
                    "{}: {what} differs from images/{}.Dockerfile",
                    spec.image, spec.image
                ));
            }
        }
    }
    no_findings("images/Dockerfile.multistage", &findings);
}

#[test]
fn kubernetes_example_agrees_with_the_images() {
    let fx = Fixture::load();
    for (dir, docs) in &fx.examples {
        no_findings(&dir.display().to_string(), &fx.check_in(dir, docs));
    }

    // What the example has to show: a processor as init container and a runtime serving
    // its output, a Service, a Job running a processor alone, a kustomization.
    let kinds: Vec<&str> = fx
        .docs
        .iter()
        .filter_map(|d| d.value["kind"].as_str())
        .collect();
    for k in [
        "Deployment",
        "Service",
        "Job",
        "Kustomization",
        "PersistentVolumeClaim",
        "Secret",
        "ConfigMap",
    ] {
        assert!(
            kinds.contains(&k),
            "deploy/kubernetes has no {k} (it has {kinds:?})"
        );
    }
    let image_name = |c: &Value| {
        c["image"]
            .as_str()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let deployment = fx
        .docs
        .iter()
        .find(|d| d.value["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment.value["spec"]["template"]["spec"];
    let init: Vec<String> = pod["initContainers"]
        .as_array()
        .expect("initContainers")
        .iter()
        .map(image_name)
        .collect();
    let main: Vec<String> = pod["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(image_name)
        .collect();
    assert!(
        init.iter().any(|i| fx.spec(i).role == Role::Processor),
        "init containers {init:?}"
    );
    assert!(
        main.iter().any(|i| fx.spec(i).role == Role::Runtime),
        "containers {main:?}"
    );
    // The runtime is protected (a passphrase hash from the Secret, OIDC settings from the
    // ConfigMap) and scraped (METRICS_PORT and the annotations).
    let runtime_env: Vec<&Value> = pod["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let from = |name: &str, kind: &str| {
        runtime_env
            .iter()
            .any(|e| e["name"] == name && e["valueFrom"].get(kind).is_some())
    };
    assert!(from("SCORING_PASSPHRASE_HASH", "secretKeyRef"));
    assert!(from("OIDC_ISSUER", "configMapKeyRef"));
    assert!(from("OIDC_AUDIENCE", "configMapKeyRef"));
    let annotations = &deployment.value["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert!(runtime_env.iter().any(|e| e["name"] == "METRICS_PORT"));
    let job = fx
        .docs
        .iter()
        .find(|d| d.value["kind"] == "Job")
        .expect("a Job");
    let job_images: Vec<String> = job.value["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("Job containers")
        .iter()
        .map(image_name)
        .collect();
    assert!(
        job_images
            .iter()
            .any(|i| fx.spec(i).role == Role::Processor),
        "Job containers {job_images:?}"
    );
}

/// A change to the example, applied to the document `origin`.
type Mutation = fn(&mut Value);

fn set(v: &mut Value, pointer: &str, new: Value) {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = new;
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    v.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(key))
        .unwrap_or_else(|| panic!("no {pointer}"));
}

const POD: &str = "/spec/template/spec";
const PROCESSOR: &str = "/spec/template/spec/initContainers/0";
const RUNTIME: &str = "/spec/template/spec/containers/0";

#[test]
fn checker_finds_broken_manifests() {
    let fx = Fixture::load();
    let cases: &[(&str, &str, Mutation, &str)] = &[
        (
            "image not built",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{PROCESSOR}/image"),
                    json!("h2o3-processor:0.1.0"),
                )
            },
            "is not built by make images",
        ),
        (
            "stale tag",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/image"), json!("runtime-shim:0.0.9")),
            "not tagged with the workspace version",
        ),
        (
            "untagged",
            "processor-job.yaml#0",
            |v| {
                set(
                    v,
                    "/spec/template/spec/containers/0/image",
                    json!("h2o3-mojo-processor"),
                )
            },
            "not tagged with the workspace version",
        ),
        (
            "PORT drift",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/env/1/value"), json!("9090")),
            "PORT 9090 is not the port",
        ),
        (
            "PORT not a string",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/env/1/value"), json!(8080)),
            "value 8080 is not a string",
        ),
        (
            "readiness path",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/readinessProbe/httpGet/path"),
                    json!("/healthz"),
                )
            },
            "readinessProbe path",
        ),
        (
            "readiness port",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/readinessProbe/httpGet/port"),
                    json!("metrics"),
                )
            },
            "readinessProbe port",
        ),
        (
            "no readiness",
            "h2o3-model.yaml#0",
            |v| remove(v, &format!("{RUNTIME}/readinessProbe")),
            "no readinessProbe",
        ),
        (
            "container may run as root",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/securityContext/runAsNonRoot"),
                    json!(false),
                )
            },
            "runAsNonRoot is not true",
        ),
        (
            "pod runs as root uid",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{POD}/securityContext/runAsUser"), json!(0)),
            "runAsUser Some(0)",
        ),
        (
            "writable root filesystem",
            "h2o3-model.yaml#0",
            |v| {
                remove(
                    v,
                    &format!("{PROCESSOR}/securityContext/readOnlyRootFilesystem"),
                )
            },
            "readOnlyRootFilesystem is not true",
        ),
        (
            "privilege escalation",
            "processor-job.yaml#0",
            |v| {
                set(
                    v,
                    "/spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation",
                    json!(true),
                )
            },
            "allowPrivilegeEscalation is not false",
        ),
        (
            "capabilities kept",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/securityContext/capabilities/drop"),
                    json!(["NET_RAW"]),
                )
            },
            "capabilities.drop",
        ),
        (
            "no requests",
            "h2o3-model.yaml#0",
            |v| remove(v, &format!("{RUNTIME}/resources/requests")),
            "no resources.requests.cpu",
        ),
        (
            "undocumented env",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/env/0/name"), json!("MODEL_DIR")),
            "env MODEL_DIR is not documented",
        ),
        (
            "processor env on the runtime",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/env/2/name"), json!("SOURCE_PATH")),
            "env SOURCE_PATH is not documented",
        ),
        (
            "model read elsewhere",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/env/0/value"), json!("/model/sub")),
            "MODEL_PATH is model:sub but the processor writes TARGET_PATH to model:",
        ),
        (
            "model outside any volume",
            "h2o3-model.yaml#0",
            |v| set(v, &format!("{RUNTIME}/env/0/value"), json!("/srv/model")),
            "is on no volume mount",
        ),
        (
            "model mounted writable",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/volumeMounts/0/readOnly"),
                    json!(false),
                )
            },
            "MODEL_PATH /model is on volume model mounted read-write",
        ),
        (
            "source mounted writable",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{PROCESSOR}/volumeMounts/0/readOnly"),
                    json!(false),
                )
            },
            "SOURCE_PATH /artifacts/gbm_binomial.zip is on volume artifacts mounted read-write",
        ),
        (
            "target on the source volume",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{PROCESSOR}/env/1/value"),
                    json!("/artifacts/out"),
                )
            },
            "TARGET_PATH /artifacts/out is on volume artifacts mounted read-only",
        ),
        (
            "model volume not an emptyDir",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{POD}/volumes/1"),
                    json!({"name": "model", "persistentVolumeClaim": {"claimName": "x"}}),
                )
            },
            "is not an emptyDir",
        ),
        (
            "mount of an undefined volume",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{PROCESSOR}/volumeMounts/1/name"),
                    json!("scratch"),
                )
            },
            "mounts volume scratch which the pod does not define",
        ),
        (
            "processor as a sidecar",
            "h2o3-model.yaml#0",
            |v| {
                let p = v.pointer(PROCESSOR).cloned().expect("processor");
                remove(v, &format!("{POD}/initContainers"));
                v.pointer_mut(&format!("{POD}/containers"))
                    .and_then(Value::as_array_mut)
                    .expect("containers")
                    .push(p);
            },
            "belongs in initContainers",
        ),
        (
            "runtime as init container",
            "h2o3-model.yaml#0",
            |v| {
                let r = v.pointer(RUNTIME).cloned().expect("runtime");
                v.pointer_mut(&format!("{POD}/initContainers"))
                    .and_then(Value::as_array_mut)
                    .expect("init")
                    .push(r);
            },
            "cannot be an init container",
        ),
        (
            "Service misses the runtime port",
            "h2o3-model.yaml#1",
            |v| set(v, "/spec/ports/0/targetPort", json!(9999)),
            "reaches no runtime container port",
        ),
        (
            "Service selects nothing",
            "h2o3-model.yaml#1",
            |v| {
                set(
                    v,
                    "/spec/selector",
                    json!({"app.kubernetes.io/name": "other"}),
                )
            },
            "matches no pod",
        ),
        (
            "kustomization stale tag",
            "kustomization.yaml#0",
            |v| set(v, "/images/1/newTag", json!("0.0.9")),
            "newTag \"0.0.9\" is not the workspace version",
        ),
        (
            "kustomization unknown image",
            "kustomization.yaml#0",
            |v| set(v, "/images/0/name", json!("h2o3-processor")),
            "is not an image of images/images.txt",
        ),
        (
            "kustomization missing file",
            "kustomization.yaml#0",
            |v| set(v, "/resources/0", json!("missing.yaml")),
            "is not a file",
        ),
        (
            "passphrase hash as a literal value",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/env/3"),
                    json!({"name": "SCORING_PASSPHRASE_HASH", "value": "$pbkdf2-sha256$..."}),
                )
            },
            "SCORING_PASSPHRASE_HASH must come from a Secret (valueFrom.secretKeyRef), not a literal value",
        ),
        (
            "plain passphrase as a literal value",
            "h2o3-model.yaml#0",
            |v| {
                v.pointer_mut(&format!("{RUNTIME}/env"))
                    .and_then(Value::as_array_mut)
                    .unwrap()
                    .push(json!({"name": "SCORING_PASSPHRASE", "value": "hunter2"}))
            },
            "SCORING_PASSPHRASE must come from a Secret",
        ),
        (
            "Secret not in the example",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/env/3/valueFrom/secretKeyRef/name"),
                    json!("elsewhere"),
                )
            },
            "reads Secret elsewhere, which the example does not define",
        ),
        (
            "Secret key missing",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/env/3/valueFrom/secretKeyRef/key"),
                    json!("hash"),
                )
            },
            "reads key \"hash\" of Secret gbm-binomial-scoring, which has no such key",
        ),
        (
            "ConfigMap key missing",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    &format!("{RUNTIME}/env/4/valueFrom/configMapKeyRef/key"),
                    json!("issuer-url"),
                )
            },
            "of ConfigMap gbm-binomial-oidc, which has no such key",
        ),
        (
            "unreadable hash in the Secret",
            "scoring-security.yaml#0",
            |v| set(v, "/stringData/passphrase-hash", json!("md5:abc")),
            "is not a hash the runtime reads: hash 1 of 1: unknown hash scheme",
        ),
        (
            "metrics port not declared",
            "h2o3-model.yaml#0",
            |v| {
                v.pointer_mut(&format!("{RUNTIME}/ports"))
                    .and_then(Value::as_array_mut)
                    .unwrap()
                    .pop();
            },
            "no containerPort 9090 (METRICS_PORT)",
        ),
        (
            "no scrape annotation",
            "h2o3-model.yaml#0",
            |v| {
                v.pointer_mut("/spec/template/metadata/annotations")
                    .and_then(Value::as_object_mut)
                    .unwrap()
                    .remove("prometheus.io/scrape");
            },
            "no prometheus.io/scrape",
        ),
        (
            "scrape annotation on the API port",
            "h2o3-model.yaml#0",
            |v| {
                set(
                    v,
                    "/spec/template/metadata/annotations/prometheus.io~1port",
                    json!("8080"),
                )
            },
            "is not where /metrics is served (METRICS_PORT 9090)",
        ),
        (
            "metrics behind the endpoint security",
            "h2o3-model.yaml#0",
            |v| {
                v.pointer_mut(&format!("{RUNTIME}/env"))
                    .and_then(Value::as_array_mut)
                    .unwrap()
                    .retain(|e| e["name"] != "METRICS_PORT");
                set(
                    v,
                    "/spec/template/metadata/annotations/prometheus.io~1port",
                    json!("8080"),
                )
            },
            "set METRICS_PORT so that Prometheus can scrape it",
        ),
    ];
    for (name, origin, mutate, expected) in cases {
        let mut docs = fx.docs.clone();
        let doc = docs
            .iter_mut()
            .find(|d| d.origin == *origin)
            .unwrap_or_else(|| panic!("case {name}: no document {origin}"));
        mutate(&mut doc.value);
        let findings = fx.check(&docs);
        assert!(
            findings.iter().any(|f| f.contains(expected)),
            "case {name}: expected a finding containing {expected:?}, got:\n  {}",
            findings.join("\n  ")
        );
    }
}

/// A change to an image's Dockerfile stage.
type StageMutation = fn(&mut Stage);

#[test]
fn checker_finds_broken_dockerfiles() {
    let fx = Fixture::load();
    let cases: &[(&str, &str, StageMutation, &str)] = &[
        (
            "root user",
            "h2o3-mojo-processor",
            |s| s.user = Some("root".into()),
            "USER is Some(\"root\")",
        ),
        ("no user", "runtime-shim", |s| s.user = None, "USER is None"),
        (
            "shell entrypoint",
            "mlflow-processor",
            |s| s.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]),
            "ENTRYPOINT",
        ),
        (
            "no revision label",
            "dai-mojo-processor",
            |s| {
                s.labels.remove("org.opencontainers.image.revision");
            },
            "no label org.opencontainers.image.revision",
        ),
        (
            "title of another image",
            "runtime-shim",
            |s| {
                s.labels.insert(
                    "org.opencontainers.image.title".into(),
                    "h2o3-mojo-processor".into(),
                );
            },
            "not the image name",
        ),
        (
            "empty version label",
            "h2o3-mojo-processor",
            |s| {
                s.labels
                    .insert("org.opencontainers.image.version".into(), " ".into());
            },
            "org.opencontainers.image.version is empty",
        ),
        (
            "wrong role",
            "runtime-shim",
            |s| {
                s.labels
                    .insert("artifact-processors.role".into(), "processor".into());
            },
            "artifact-processors.role",
        ),
        (
            "undocumented contract",
            "h2o3-mojo-processor",
            |s| {
                s.labels.remove("artifact-processors.env.TARGET_PATH");
            },
            "TARGET_PATH is not documented",
        ),
        (
            "no default",
            "runtime-shim",
            |s| {
                s.env.remove("MODEL_PATH");
            },
            "MODEL_PATH has no ENV default",
        ),
        (
            "exposed port drift",
            "runtime-shim",
            |s| s.expose = vec!["9090".into()],
            "is not the PORT default",
        ),
        (
            "processor exposes",
            "dai-mojo-processor",
            |s| s.expose = vec!["8080".into()],
            "a processor serves nothing",
        ),
    ];
    for (name, image, mutate, expected) in cases {
        let mut stage = fx.stages[*image].clone();
        assert!(
            check_stage(&stage, fx.spec(image)).is_empty(),
            "case {name}: the real stage passes"
        );
        mutate(&mut stage);
        let findings = check_stage(&stage, fx.spec(image));
        assert!(
            findings.iter().any(|f| f.contains(expected)),
            "case {name}: expected a finding containing {expected:?}, got {findings:?}"
        );
    }
}

#[test]
fn parsers_refuse_malformed_input() {
    let p = Path::new("x");
    let lists: &[(&str, &str, &str)] = &[
        ("four fields", "a pkg bin processor\n", "expected 7 fields"),
        (
            "eight fields",
            "a pkg bin processor scratch musl 10 extra\n",
            "expected 7 fields",
        ),
        (
            "unknown role",
            "a pkg bin sidecar scratch musl 10\n",
            "role \"sidecar\"",
        ),
        (
            "unknown base",
            "a pkg bin runtime alpine musl 10\n",
            "base \"alpine\"",
        ),
        (
            "unknown libc",
            "a pkg bin runtime debian uclibc 10\n",
            "libc \"uclibc\"",
        ),
        (
            "glibc from scratch",
            "a pkg bin runtime scratch glibc 10\n",
            "needs the static musl build",
        ),
        (
            "budget not a number",
            "a pkg bin runtime python musl 1.5\n",
            "max_mb \"1.5\"",
        ),
        (
            "duplicate",
            "a pkg bin processor scratch musl 10\na pkg2 bin2 runtime scratch musl 10\n",
            "listed twice",
        ),
        ("empty", "# only a comment\n\n", "lists no image"),
    ];
    for (name, text, expected) in lists {
        let err = parse_images_list(text, p).expect_err(name).to_string();
        assert!(err.contains(expected), "case {name}: {err}");
    }
    let ok = parse_images_list("# c\n\n  a  pkg  bin  runtime  python  musl  1400 \n", p)
        .expect("valid list");
    assert_eq!(ok[0].role, Role::Runtime);
    assert_eq!(ok[0].base, Base::Python);
    assert_eq!(ok[0].max_mb, 1400);

    let dockerfiles: &[(&str, &str, &str)] = &[
        ("no FROM", "LABEL a=b\n", "LABEL before FROM"),
        (
            "shell-form entrypoint",
            "FROM scratch\nENTRYPOINT /bin/x\n",
            "exec form",
        ),
        (
            "unterminated quote",
            "FROM scratch\nLABEL a=\"b\n",
            "unterminated",
        ),
        (
            "legacy ENV form",
            "FROM scratch\nENV A b\n",
            "is not key=value",
        ),
        (
            "dangling continuation",
            "FROM scratch\nLABEL a=b \\\n",
            "continuation",
        ),
    ];
    for (name, text, expected) in dockerfiles {
        let err = dockerfile::parse(text, p).expect_err(name).to_string();
        assert!(err.contains(expected), "case {name}: {err}");
    }
    let stages = dockerfile::parse(
        "ARG X\nFROM a AS one\n# c\nLABEL k=\"v w\" \\\n  # inside\n  k2=x\nFROM scratch\nENV A=1 B=\"2 3\"\nEXPOSE 1 2\n",
        p,
    )
    .expect("valid Dockerfile");
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].name.as_deref(), Some("one"));
    assert_eq!(stages[0].labels.get("k").map(String::as_str), Some("v w"));
    assert_eq!(stages[0].labels.get("k2").map(String::as_str), Some("x"));
    assert_eq!(stages[1].env.get("B").map(String::as_str), Some("2 3"));
    assert_eq!(stages[1].expose, vec!["1", "2"]);

    let err = kube::parse_documents("a: [1, 2\n", p)
        .expect_err("bad YAML")
        .to_string();
    assert!(err.starts_with("x: "), "{err}");
}

/// Every composition of the catalog (processor, model type, runtime) has a Kubernetes
/// example: a Deployment whose init container runs the processor's image (with
/// `MLFLOW_MODEL_TYPE` when the model type is not the processor's default) and whose
/// runtime container runs the runtime's image; the checks above hold for all of them.
#[test]
fn every_composition_has_a_kubernetes_example() {
    let fx = Fixture::load();
    let catalog = artifact_core::catalog::catalog();
    let image_name = |c: &Value| {
        c["image"]
            .as_str()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let env_of = |c: &Value, name: &str| {
        c["env"].as_array().and_then(|e| {
            e.iter()
                .find(|v| v["name"] == name)
                .and_then(|v| v["value"].as_str().map(str::to_owned))
        })
    };
    // (processor image, model type, runtime image) of every example Deployment.
    let mut shown = Vec::new();
    for (dir, docs) in &fx.examples {
        for d in docs.iter().filter(|d| d.value["kind"] == "Deployment") {
            let pod = &d.value["spec"]["template"]["spec"];
            let Some(init) = pod["initContainers"].as_array().and_then(|a| a.first()) else {
                continue;
            };
            let processor = catalog
                .processors
                .iter()
                .find(|p| p.image == image_name(init))
                .unwrap_or_else(|| panic!("{}: init image {}", dir.display(), init["image"]));
            let model_type = env_of(init, "MLFLOW_MODEL_TYPE")
                .unwrap_or_else(|| processor.model_types[0].clone());
            for c in pod["containers"].as_array().expect("containers") {
                shown.push((processor.image.clone(), model_type.clone(), image_name(c)));
            }
        }
    }
    let mut missing = Vec::new();
    for p in &catalog.processors {
        for m in &p.model_types {
            for r in catalog
                .runtimes
                .iter()
                .filter(|r| r.model_types.contains(m))
            {
                let want = (p.image.clone(), m.clone(), r.image.clone());
                if !shown.contains(&want) {
                    missing.push(format!("{} -> {m} -> {} ({})", p.name, r.name, r.image));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "compositions without a Kubernetes example under deploy/kubernetes: {missing:?} (examples show {shown:?})"
    );
}

fn kserve_docs(fx: &Fixture) -> Vec<Document> {
    kube::read_documents(&fx.root.join("deploy/kserve")).expect("KServe manifests parse")
}

fn catalog_json(fx: &Fixture) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fx.root.join("catalog.json")).unwrap()).unwrap()
}

/// The core checks (kustomization, Secrets) and the structural KServe checks.
fn check_kserve(fx: &Fixture, docs: &[Document]) -> Vec<String> {
    let dir = fx.root.join("deploy/kserve");
    let expected = Expected {
        images: &fx.images,
        stages: &fx.stages,
        version: &fx.workspace.version,
        dir: &dir,
    };
    let mut f = kube::check(&expected, docs);
    f.extend(deploy_check::kserve::check(
        &expected,
        &catalog_json(fx),
        docs,
    ));
    f
}

#[test]
fn kserve_manifests_agree_with_the_images_and_the_catalog() {
    let fx = Fixture::load();
    let docs = kserve_docs(&fx);
    let kinds: Vec<&str> = docs
        .iter()
        .filter_map(|d| d.value.get("kind").and_then(Value::as_str))
        .collect();
    for k in [
        "ClusterStorageContainer",
        "ClusterServingRuntime",
        "InferenceService",
        "Kustomization",
    ] {
        assert!(kinds.contains(&k), "deploy/kserve has no {k}: {kinds:?}");
    }
    no_findings("deploy/kserve", &check_kserve(&fx, &docs));

    // Broken copies: each must be caught.
    let find = |kind: &str, name: &str| {
        docs.iter()
            .position(|d| {
                d.value.get("kind").and_then(Value::as_str) == Some(kind)
                    && d.value.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            })
            .unwrap_or_else(|| panic!("{kind}/{name}"))
    };
    let csc = find("ClusterStorageContainer", "h2o3-mojo-processor");
    let csr = find("ClusterServingRuntime", "h2o3-mojo-native-runtime");
    let isvc = find("InferenceService", "gbm-binomial");
    type Edit = Box<dyn Fn(&mut Vec<Document>)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "container not named storage-initializer",
            Box::new(move |d| {
                set(
                    &mut d[csc].value,
                    "/spec/container/name",
                    json!("processor"),
                )
            }),
            "must be named storage-initializer",
        ),
        (
            "processor given args",
            Box::new(move |d| d[csc].value["spec"]["container"]["args"] = json!(["--source", "x"])),
            "args is set",
        ),
        (
            "processor given SOURCE_PATH",
            Box::new(move |d| {
                set(
                    &mut d[csc].value,
                    "/spec/container/env",
                    json!([{"name": "SOURCE_PATH", "value": "/x"}]),
                )
            }),
            "env SOURCE_PATH is set",
        ),
        (
            "processor with the wrong tag",
            Box::new(move |d| {
                set(
                    &mut d[csc].value,
                    "/spec/container/image",
                    json!("h2o3-mojo-processor:latest"),
                )
            }),
            "not tagged with the workspace version",
        ),
        (
            "runtime image as storage step",
            Box::new(move |d| {
                set(
                    &mut d[csc].value,
                    "/spec/container/image",
                    json!("runtime-shim:0.1.0"),
                )
            }),
            "not a Processor",
        ),
        (
            "a regex of another folder",
            Box::new(move |d| {
                set(
                    &mut d[csc].value,
                    "/spec/supportedUriFormats",
                    json!([{"regex": "^s3://.+$"}]),
                )
            }),
            "supportedUriFormats must be",
        ),
        (
            "storage container missing",
            Box::new(move |d| {
                d.remove(csc);
            }),
            "no ClusterStorageContainer runs the processor image h2o3-mojo-processor",
        ),
        (
            "undocumented env",
            Box::new(move |d| {
                set(
                    &mut d[csc].value,
                    "/spec/container/env",
                    json!([{"name": "S3_BUCKET", "value": "x"}]),
                )
            }),
            "env S3_BUCKET is not documented",
        ),
        (
            "no v2",
            Box::new(move |d| set(&mut d[csr].value, "/spec/protocolVersions", json!(["v1"]))),
            "protocolVersions does not hold v2",
        ),
        (
            "format not in the catalog",
            Box::new(move |d| {
                set(
                    &mut d[csr].value,
                    "/spec/supportedModelFormats",
                    json!([{"name": "h2o3_mojo"}, {"name": "sklearn"}]),
                )
            }),
            "are not the catalog's model types",
        ),
        (
            "model path elsewhere",
            Box::new(move |d| {
                set(
                    &mut d[csr].value,
                    "/spec/containers/0/env/0/value",
                    json!("/model"),
                )
            }),
            "MODEL_PATH is not /mnt/models",
        ),
        (
            "runtime container renamed",
            Box::new(move |d| {
                set(
                    &mut d[csr].value,
                    "/spec/containers/0/name",
                    json!("runtime"),
                )
            }),
            "no container named kserve-container",
        ),
        (
            "port not declared",
            Box::new(move |d| {
                set(
                    &mut d[csr].value,
                    "/spec/containers/0/env/1/value",
                    json!("9000"),
                )
            }),
            "is not a declared containerPort",
        ),
        (
            "runtime missing",
            Box::new(move |d| {
                d.remove(csr);
            }),
            "no ClusterServingRuntime for the catalog runtime h2o3-mojo-native-runtime",
        ),
        (
            "uri of another processor",
            Box::new(move |d| {
                set(
                    &mut d[isvc].value,
                    "/spec/predictor/model/storageUri",
                    json!("s3://models/dai-mojo/gbm.zip"),
                )
            }),
            "which does not produce \"h2o3_mojo\"",
        ),
        (
            "uri no storage container takes",
            Box::new(move |d| {
                set(
                    &mut d[isvc].value,
                    "/spec/predictor/model/storageUri",
                    json!("s3://models/gbm.zip"),
                )
            }),
            "is taken by 0 storage containers",
        ),
        (
            "format the runtime does not serve",
            Box::new(move |d| {
                set(
                    &mut d[isvc].value,
                    "/spec/predictor/model/modelFormat/name",
                    json!("onnx"),
                )
            }),
            "does not serve \"onnx\"",
        ),
    ];
    for (name, edit, says) in cases {
        let mut broken = docs.clone();
        edit(&mut broken);
        let found = check_kserve(&fx, &broken);
        assert!(
            found.iter().any(|x| x.contains(says)),
            "{name}: no finding saying {says:?} in {found:#?}"
        );
    }
}

/// Core Kubernetes objects of deploy/ (not KServe's resources, not kustomize's), each
/// written to its own file for kubernetes-validate.
fn core_objects(fx: &Fixture, dir: &Path) -> Vec<PathBuf> {
    let mut docs = Vec::new();
    for sub in [
        "deploy/kubernetes",
        "deploy/kubernetes/onnx-native",
        "deploy/kserve",
    ] {
        docs.extend(kube::read_documents(&fx.root.join(sub)).expect("manifests parse"));
    }
    docs.iter()
        .filter(|d| {
            let api = d
                .value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            !api.contains("kserve.io") && !api.starts_with("kustomize.config.k8s.io")
        })
        .enumerate()
        .map(|(i, d)| {
            let p = dir.join(format!("{i:02}-{}.json", d.origin.replace(['#', '/'], "-")));
            std::fs::write(&p, serde_json::to_vec_pretty(&d.value).unwrap()).unwrap();
            p
        })
        .collect()
}

fn kubernetes_validate(venv: &Path, files: &[PathBuf]) -> std::process::Output {
    std::process::Command::new(venv.join("bin/kubernetes-validate"))
        .arg("--strict")
        .arg("--no-warn")
        .args(files)
        .output()
        .expect("kubernetes-validate runs")
}

/// kubernetes-validate (PyPI, in the venv .ci/setup-kubernetes-validate-venv.sh builds:
/// KUBERNETES_VALIDATE_VENV) on every core object of deploy/, strict (no unknown fields);
/// and on a broken copy, which it must refuse. Skipped with a message when the variable is
/// unset; set but broken, the test fails.
#[test]
fn core_objects_pass_kubernetes_validate() {
    let Some(venv) = std::env::var_os("KUBERNETES_VALIDATE_VENV").filter(|v| !v.is_empty()) else {
        eprintln!("KUBERNETES_VALIDATE_VENV is not set: skipping kubernetes-validate (run `export KUBERNETES_VALIDATE_VENV=$(.ci/setup-kubernetes-validate-venv.sh)`)");
        return;
    };
    let venv = PathBuf::from(venv);
    let fx = Fixture::load();
    let tmp = std::env::temp_dir().join(format!("kubernetes-validate-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let files = core_objects(&fx, &tmp);
    let kinds: Vec<String> = files
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["kind"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    for k in ["Deployment", "Service", "Secret", "ServiceAccount"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} among {kinds:?}");
    }
    let o = kubernetes_validate(&venv, &files);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "kubernetes-validate refused deploy/:\n{out}"
    );
    println!(
        "kubernetes-validate: {} core objects ({})",
        files.len(),
        kinds.join(", ")
    );

    // A broken copy must be refused (the check can fail).
    let deployment = files
        .iter()
        .zip(&kinds)
        .find(|(_, k)| *k == "Deployment")
        .map(|(p, _)| p.clone())
        .unwrap();
    let mut v: Value = serde_json::from_slice(&std::fs::read(&deployment).unwrap()).unwrap();
    set(&mut v, "/spec/replicas", json!("one"));
    let broken = tmp.join("broken.json");
    std::fs::write(&broken, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = kubernetes_validate(&venv, &[broken]);
    assert!(
        !o.status.success(),
        "kubernetes-validate accepted replicas: \"one\""
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}
