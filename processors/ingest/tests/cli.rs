//! Runs the real `artifact-tool` on every testdata artifact, the conformance corpus and
//! lookalikes; checks the experiment metadata against processed manifests; and checks
//! that processors, images and the Kubernetes example do not drift from catalog.json.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use artifact_core::catalog::catalog;
use artifact_core::Processor;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_artifact-tool");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("TARGET_PATH")
        .output()
        .expect("binary runs")
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// Every artifact the project bundles, with its true type and whether the processor
/// takes it with its default policy.
fn testdata_artifacts() -> Vec<(PathBuf, &'static str, bool)> {
    let mut out = Vec::new();
    let h2o = repo().join("testdata/h2o3");
    for e in std::fs::read_dir(&h2o).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zip") {
            out.push((p, "h2o3/mojo", true));
        }
    }
    let ml = repo().join("testdata/mlflow");
    for e in std::fs::read_dir(&ml).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let is_model =
            p.join("MLmodel").is_file() || name.ends_with(".zip") || name.ends_with(".tar.gz");
        if is_model {
            let default_ok = name != "no_signature";
            out.push((p, "python/mlflow", default_ok));
        }
    }
    for v1 in ["v1/sklearn_1_29", "v1/sklearn_2_9"] {
        out.push((ml.join(v1), "python/mlflow", true));
    }
    assert!(out.len() >= 30, "found {} testdata artifacts", out.len());
    out
}

#[test]
fn every_testdata_artifact_is_detected_as_its_true_type() {
    for (path, want, _) in testdata_artifacts() {
        let o = run(&["detect", "--json", path.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let d = json_of(&o);
        assert_eq!(d["artifact_type"], want, "{}", path.display());
    }
}

#[test]
fn renamed_uploads_are_still_detected_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("testdata/h2o3/glm_binomial.zip", "upload.bin", "h2o3/mojo"),
        (
            "testdata/mlflow/sklearn_pipeline.zip",
            "model.mojo",
            "python/mlflow",
        ),
        (
            "testdata/mlflow/xgboost.tar.gz",
            "weights.zip",
            "python/mlflow",
        ),
    ];
    for (src, name, want) in cases {
        let p = tmp.path().join(name);
        std::fs::copy(repo().join(src), &p).unwrap();
        let d = json_of(&run(&["detect", "--json", p.to_str().unwrap()]));
        assert_eq!(d["artifact_type"], want, "{src} renamed to {name}");
    }
}

#[test]
fn conformance_artifacts_are_detected() {
    let Some(dir) = std::env::var_os("CONFORMANCE_DIR") else {
        eprintln!("skipped: CONFORMANCE_DIR not set");
        return;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "CONFORMANCE_DIR set but {} is missing",
        dir.display()
    );
    let mut n = 0;
    for (sub, want) in [("h2o3", "h2o3/mojo"), ("dai", "dai/mojo_pipeline")] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let o = run(&["detect", "--json", p.to_str().unwrap()]);
            assert!(
                o.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(json_of(&o)["artifact_type"], want, "{}", p.display());
            n += 1;
        }
    }
    assert_eq!(n, 19);
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn lookalikes_are_not_model_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let plain_zip = tmp.path().join("plain.zip");
    std::fs::write(
        &plain_zip,
        zip_of(&[("notes.txt", b"hello"), ("data.csv", b"a,b\n1,2\n")]),
    )
    .unwrap();
    let stray_ini = tmp.path().join("stray.zip");
    std::fs::write(
        &stray_ini,
        zip_of(&[
            ("model.ini", b"[settings]\ncolor = blue\n"),
            ("x.txt", b"x"),
        ]),
    )
    .unwrap();
    let bad_yaml = tmp.path().join("bad-mlmodel");
    std::fs::create_dir(&bad_yaml).unwrap();
    std::fs::write(bad_yaml.join("MLmodel"), "flavors: [unclosed\n  : : :\n").unwrap();
    std::fs::write(bad_yaml.join("model.pkl"), b"x").unwrap();
    let empty = tmp.path().join("empty.zip");
    std::fs::write(&empty, b"").unwrap();
    let empty_zip = tmp.path().join("empty-archive.zip");
    std::fs::write(&empty_zip, zip_of(&[])).unwrap();
    let cases: [(&str, &Path, &str); 5] = [
        (
            "plain zip",
            &plain_zip,
            "found none of these (2 files: notes.txt, data.csv)",
        ),
        (
            "zip with a stray model.ini",
            &stray_ini,
            "h2o3/mojo: h2o3-mojo-processor:",
        ),
        (
            "folder with an MLmodel that is not YAML",
            &bad_yaml,
            "python/mlflow: mlflow-processor:",
        ),
        ("empty file", &empty, "the file is empty"),
        ("empty archive", &empty_zip, "an empty archive or folder"),
    ];
    for (label, path, needle) in cases {
        let o = run(&["detect", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{label}: {err}");
        assert!(
            err.contains("not a model artifact: looked for model.ini"),
            "{label}: {err}"
        );
        assert!(
            err.contains(needle),
            "{label}: expected {needle:?} in {err}"
        );
    }
}

#[test]
fn experiment_metadata_schema_equals_the_processed_manifest() {
    for (path, _, default_ok) in testdata_artifacts() {
        if !default_ok {
            continue;
        }
        let p = path.to_str().unwrap();
        let meta = json_of(&run(&["metadata", p]));
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("model");
        let o = run(&["process", p, "--target", target.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let man: Value =
            serde_json::from_slice(&std::fs::read(target.join("model.json")).unwrap()).unwrap();
        assert_eq!(
            meta["input_schema"]["json_value"], man["input_schema"],
            "{p}"
        );
        assert_eq!(
            meta["output_schema"]["json_value"], man["output_schema"],
            "{p}"
        );
        assert_eq!(meta["model_type"]["string_value"], man["model_type"], "{p}");
        assert!(
            meta["tool_version"]["string_value"].is_string(),
            "{p}: {meta}"
        );
        artifact_core::verify(&target).unwrap();
    }
}

#[test]
fn metadata_has_the_typed_keys_mlops_reads() {
    let m = json_of(&run(&[
        "metadata",
        repo()
            .join("testdata/h2o3/gbm_binomial.zip")
            .to_str()
            .unwrap(),
    ]));
    assert_eq!(m["tool"]["string_value"], "H2O-3");
    assert_eq!(m["tool_version"]["string_value"], "3.46.0.11");
    assert_eq!(
        m["model_parameters"]["json_value"]["target_column"],
        "label"
    );
    assert_eq!(m["model_parameters"]["json_value"]["ntrees"], 5);
    let m = json_of(&run(&[
        "metadata",
        repo()
            .join("testdata/mlflow/sklearn_pipeline")
            .to_str()
            .unwrap(),
    ]));
    assert_eq!(m["tool"]["string_value"], "MLflow");
    assert_eq!(
        m["mlflow/flavors/python_function/loader_module"]["string_value"],
        "mlflow.sklearn"
    );
    // Every value holds exactly one typed field.
    for (k, v) in m.as_object().unwrap() {
        let o = v.as_object().unwrap_or_else(|| panic!("{k}: {v}"));
        assert_eq!(o.len(), 1, "{k}: {v}");
        assert!(
            o.contains_key("string_value") || o.contains_key("json_value"),
            "{k}: {v}"
        );
    }
}

#[test]
fn mlflow_wrapping_a_dai_pipeline_is_recognised() {
    let Some(dir) = std::env::var_os("CONFORMANCE_DIR") else {
        eprintln!("skipped: CONFORMANCE_DIR not set");
        return;
    };
    let pipeline = PathBuf::from(dir).join("dai/sw_daiMojoShapley/pipeline.mojo");
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("dai-mlflow");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(&pipeline, model.join("pipeline.mojo")).unwrap();
    std::fs::write(
        model.join("MLmodel"),
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    python_version: 3.11.7\n    data: pipeline.mojo\nmlflow_version: 3.17.2\nsignature:\n  inputs: '[{\"type\": \"float\", \"name\": \"sepal_len\"}]'\n  outputs: '[{\"type\": \"float\", \"name\": \"class.Iris-setosa\"}]'\n",
    )
    .unwrap();
    let d = json_of(&run(&["detect", "--json", model.to_str().unwrap()]));
    assert_eq!(d["artifact_type"], "python/mlflow");
    assert_eq!(d["wraps"]["artifact_type"], "dai/mojo_pipeline", "{d}");
    assert_eq!(d["wraps"]["path"], "pipeline.mojo");
}

#[test]
fn mlflow_wrapping_an_h2o_mojo_is_recognised() {
    let model = repo().join("testdata/mlflow/h2o_mojo_wrapped");
    if !model.exists() {
        // A folder built here around a testdata MOJO, with the flavor h2o_mlflow_flavor writes.
        panic!("testdata/mlflow/h2o_mojo_wrapped is missing");
    }
    let d = json_of(&run(&["detect", "--json", model.to_str().unwrap()]));
    assert_eq!(d["artifact_type"], "python/mlflow");
    assert_eq!(d["wraps"]["artifact_type"], "h2o3/mojo", "{d}");
    assert_eq!(d["wraps"]["flavor"], "h2o_mojo_pojo", "{d}");
    // It deploys as MLflow (pyfunc) and, with no Python or JVM, on the native runtime.
    let c = json_of(&run(&["compositions", "--json", model.to_str().unwrap()]));
    let got: Vec<(&str, &str)> = c
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["model_type"].as_str().unwrap(),
                c["runtime"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("mlflow_pyfunc", "mlflow-pyfunc-runtime"),
            ("h2o3_mojo", "h2o3-mojo-native-runtime")
        ],
        "{c}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("native");
    let o = run(&[
        "process",
        model.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--",
        "--model-type",
        "h2o3_mojo",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let man = artifact_core::verify(&target).unwrap();
    assert_eq!(
        (man.model_type.as_str(), man.payload.as_str()),
        ("h2o3_mojo", "model.mojo")
    );
}

#[test]
fn compositions_follow_the_catalog() {
    let all = json_of(&run(&["compositions", "--json"]));
    assert_eq!(
        all.as_array().unwrap().len(),
        catalog().compositions(None).len()
    );
    let for_mojo = json_of(&run(&[
        "compositions",
        "--json",
        repo()
            .join("testdata/h2o3/gbm_regression.zip")
            .to_str()
            .unwrap(),
    ]));
    let first = &for_mojo[0];
    assert_eq!(first["artifact_processor"], "h2o3-mojo-processor");
    assert_eq!(first["model_type"], "h2o3_mojo");
    assert_eq!(first["deployable_artifact_type"], "h2o3_mojo");
    // An MLflow model with an onnx flavor deploys as mlflow_pyfunc or natively as onnx;
    // one without only as mlflow_pyfunc.
    let runtimes = |model: &str| -> Vec<(String, String)> {
        let v = json_of(&run(&[
            "compositions",
            "--json",
            repo().join(model).to_str().unwrap(),
        ]));
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["model_type"].as_str().unwrap().to_string(),
                    c["runtime"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pair = |m: &str, r: &str| (m.to_string(), r.to_string());
    assert_eq!(
        runtimes("testdata/onnx/classifier_zipmap"),
        [
            pair("mlflow_pyfunc", "mlflow-pyfunc-runtime"),
            pair("onnx", "onnx-native-runtime")
        ]
    );
    assert_eq!(
        runtimes("testdata/mlflow/sklearn_pipeline"),
        [pair("mlflow_pyfunc", "mlflow-pyfunc-runtime")]
    );
}

#[test]
fn process_dispatches_and_passes_processor_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("onnx");
    let o = run(&[
        "process",
        repo().join("testdata/mlflow/onnx").to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--",
        "--model-type",
        "onnx",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let man = artifact_core::verify(&target).unwrap();
    assert_eq!(man.model_type, "onnx");
    let o = run(&[
        "process",
        "/nonexistent/upload.zip",
        "--target",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// ------------------------------------------------------------------ catalog drift

#[test]
fn processors_match_the_catalog() {
    fn check<P: Processor>(model_types: &[&str]) {
        let e = catalog()
            .processor(P::NAME)
            .unwrap_or_else(|| panic!("{} is not in catalog.json", P::NAME));
        assert_eq!(e.artifact_type, P::ARTIFACT_TYPE, "{}", P::NAME);
        let mut want: Vec<&str> = e.model_types.iter().map(|s| s.as_str()).collect();
        let mut got = model_types.to_vec();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{}: model types", P::NAME);
    }
    check::<h2o3_mojo::H2o3MojoProcessor>(&[h2o3_mojo::MODEL_TYPE]);
    check::<dai_mojo::DaiMojoProcessor>(&[dai_mojo::MODEL_TYPE]);
    let mlflow_types: Vec<&str> = <mlflow_model::ModelType as clap::ValueEnum>::value_variants()
        .iter()
        .map(|t| t.name())
        .collect();
    check::<mlflow_model::MlflowProcessor>(&mlflow_types);
    assert_eq!(
        catalog().processors.len(),
        3,
        "every catalog processor is checked above"
    );
}

/// (image, package, binary, role) lines of images/images.txt.
fn image_lines() -> Vec<[String; 4]> {
    std::fs::read_to_string(repo().join("images/images.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let f: Vec<String> = l.split_whitespace().map(String::from).collect();
            [f[0].clone(), f[1].clone(), f[2].clone(), f[3].clone()]
        })
        .collect()
}

#[test]
fn images_match_the_catalog() {
    let lines = image_lines();
    let mut expected: Vec<(String, String, String)> = catalog()
        .processors
        .iter()
        .map(|p| (p.image.clone(), p.name.clone(), "processor".to_string()))
        .collect();
    for r in &catalog().runtimes {
        let e = (r.image.clone(), r.binary.clone(), "runtime".to_string());
        if !expected.contains(&e) {
            expected.push(e);
        }
    }
    let mut got: Vec<(String, String, String)> = lines
        .iter()
        .map(|[i, _, b, r]| (i.clone(), b.clone(), r.clone()))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "images/images.txt vs catalog.json");
    for (image, binary, _) in &expected {
        let df = std::fs::read_to_string(repo().join(format!("images/{image}.Dockerfile")))
            .unwrap_or_else(|e| panic!("images/{image}.Dockerfile: {e}"));
        assert!(
            df.contains(&format!("org.opencontainers.image.title=\"{image}\"")),
            "{image}: title label"
        );
        assert!(
            df.contains(&format!("/usr/local/bin/{binary}")),
            "{image}: entrypoint {binary}"
        );
    }
}

#[test]
fn kubernetes_example_matches_the_catalog() {
    let dir = repo().join("deploy/kubernetes");
    let images: Vec<String> = catalog()
        .processors
        .iter()
        .map(|p| p.image.clone())
        .chain(catalog().runtimes.iter().map(|r| r.image.clone()))
        .collect();
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            continue;
        }
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let t = line.trim().trim_start_matches("- ");
            if let Some(img) = t.strip_prefix("image:") {
                let img = img.trim().trim_matches('"');
                let repo_name = img.rsplit('/').next().unwrap().split(':').next().unwrap();
                assert!(
                    images.iter().any(|i| i == repo_name),
                    "{}: image {img:?} is not in catalog.json",
                    p.display()
                );
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 2,
        "the Kubernetes example names at least a processor and a runtime image"
    );
}
