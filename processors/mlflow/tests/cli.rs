//! Runs the real `mlflow-processor` binary on the testdata MLflow models in every source
//! layout (folder, zip with the folder at the root, flat zip, Finder-style zip, tar,
//! tar.gz, and the committed archives), and on broken or hostile inputs built here, in
//! temp dirs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// Objects in a real S3 server, read straight into the target (storage-initializer form).
mod s3;

const BIN: &str = env!("CARGO_BIN_EXE_mlflow-processor");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn testdata() -> PathBuf {
    repo().join("testdata/mlflow")
}

fn command() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "SOURCE_PATH",
        "TARGET_PATH",
        "MLFLOW_MODEL_TYPE",
        "MLFLOW_ALLOW_NO_SIGNATURE",
        "MLFLOW_ALLOW_UNMAPPED_TYPES",
        "LOG_FORMAT",
    ] {
        c.env_remove(v);
    }
    c
}

fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("binary runs")
}

fn process(source: &Path, target: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--source",
        source.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn inspect_json(source: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["inspect", "--json", source.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Every file below `dir`, relative and sorted, with its bytes.
fn folder_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ------------------------------------------------------------------ archive builders

fn zip_opts() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644)
}

/// A zip of `files`, each name prefixed with `prefix`; `finder` adds directory entries
/// and the `__MACOSX/` and `.DS_Store` noise macOS archivers add.
fn zip_bytes(files: &[(String, Vec<u8>)], prefix: &str, finder: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut dirs = std::collections::BTreeSet::new();
    if finder && !prefix.is_empty() {
        w.add_directory(prefix, zip_opts()).unwrap();
    }
    for (name, data) in files {
        if finder {
            if let Some((d, _)) = name.rsplit_once('/') {
                if dirs.insert(d.to_string()) {
                    w.add_directory(format!("{prefix}{d}/"), zip_opts())
                        .unwrap();
                }
            }
        }
        w.start_file(format!("{prefix}{name}"), zip_opts()).unwrap();
        w.write_all(data).unwrap();
    }
    if finder {
        w.start_file(format!("{prefix}.DS_Store"), zip_opts())
            .unwrap();
        w.write_all(b"\0\0\0\x01Bud1").unwrap();
        w.start_file(format!("__MACOSX/{prefix}._MLmodel"), zip_opts())
            .unwrap();
        w.write_all(b"\0\x05\x16\x07").unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A tar (ustar) of `files` under `prefix`, with a directory entry for the prefix.
fn tar_bytes(files: &[(String, Vec<u8>)], prefix: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    if !prefix.is_empty() {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_path(prefix).unwrap();
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("{prefix}{name}")).unwrap();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The layouts every testdata model is processed in.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Folder,
    ZipWithFolder,
    ZipFlat,
    ZipFinder,
    Tar,
    TarGzFlat,
    /// An archive committed next to the folder in testdata.
    Committed(&'static str),
}

impl Layout {
    fn all() -> [Layout; 6] {
        [
            Layout::Folder,
            Layout::ZipWithFolder,
            Layout::ZipFlat,
            Layout::ZipFinder,
            Layout::Tar,
            Layout::TarGzFlat,
        ]
    }

    /// Whether the model sits in a top-level folder of the source (else at its root).
    fn has_folder(self) -> bool {
        match self {
            Layout::Folder | Layout::ZipFlat | Layout::TarGzFlat => false,
            Layout::ZipWithFolder | Layout::ZipFinder | Layout::Tar => true,
            Layout::Committed(f) => !f.contains("_flat"),
        }
    }

    /// Builds the source in `tmp` and returns its path and expected source kind.
    fn build(self, model_dir: &Path, tmp: &Path) -> (PathBuf, &'static str) {
        let name = model_dir.file_name().unwrap().to_str().unwrap();
        let files = folder_files(model_dir);
        let folder = format!("{name}/");
        let (file, bytes, kind) = match self {
            Layout::Folder => return (model_dir.to_path_buf(), "directory"),
            Layout::Committed(f) => {
                let kind = if f.ends_with(".zip") { "zip" } else { "tar_gz" };
                return (testdata().join(f), kind);
            }
            Layout::ZipWithFolder => (
                format!("{name}.zip"),
                zip_bytes(&files, &folder, false),
                "zip",
            ),
            Layout::ZipFlat => (
                format!("{name}_flat.zip"),
                zip_bytes(&files, "", false),
                "zip",
            ),
            Layout::ZipFinder => (
                format!("{name}_finder.zip"),
                zip_bytes(&files, &folder, true),
                "zip",
            ),
            Layout::Tar => (format!("{name}.tar"), tar_bytes(&files, &folder), "tar"),
            Layout::TarGzFlat => (
                format!("{name}.tgz"),
                gzip(&tar_bytes(&files, "")),
                "tar_gz",
            ),
        };
        let p = tmp.join(file);
        std::fs::write(&p, bytes).unwrap();
        (p, kind)
    }
}

// ------------------------------------------------------------------ testdata models

fn snapshot() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/testdata_models.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The fields `inspect --json` and `model.json` share.
fn description_of(v: &Value) -> Value {
    json!({
        "id": v["id"], "artifact_type": v["artifact_type"], "model_type": v["model_type"],
        "source": v["source"], "payload": v["payload"], "schema_known": v["schema_known"],
        "input_schema": v["input_schema"], "output_schema": v["output_schema"],
        "capabilities": v["capabilities"], "metadata": v["metadata"],
    })
}

#[test]
fn every_testdata_model_in_every_layout_has_its_expected_schema() {
    let snap = snapshot();
    let cases = snap["cases"].as_array().expect("cases");
    assert!(cases.len() >= 12, "{} cases", cases.len());
    let mut folders_seen = std::collections::BTreeSet::new();
    let mut runs = 0;
    for case in cases {
        let label = case["case"].as_str().unwrap();
        let folder = case["folder"].as_str().unwrap();
        folders_seen.insert(folder.to_string());
        let model_dir = testdata().join(folder);
        let args: Vec<&str> = case["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let mut layouts = Layout::all().to_vec();
        for c in case["committed_archives"].as_array().into_iter().flatten() {
            let f: &'static str = Box::leak(c.as_str().unwrap().to_string().into_boxed_str());
            layouts.push(Layout::Committed(f));
        }
        let originals = folder_files(&model_dir);
        for layout in layouts {
            let tmp = tempfile::tempdir().unwrap();
            let (source, kind) = layout.build(&model_dir, tmp.path());
            let target = tmp.path().join("out");
            let what = format!("case {label}, layout {layout:?}");
            let out = process(&source, &target, &args);
            assert!(out.status.success(), "{what}: {}", stderr(&out));
            runs += 1;
            let m = manifest(&target);
            for key in [
                "id",
                "artifact_type",
                "model_type",
                "payload",
                "schema_known",
                "input_schema",
                "output_schema",
                "capabilities",
            ] {
                assert_eq!(m[key], case[key], "{what}: {key}");
            }
            assert_eq!(m["contract_version"], 1, "{what}");
            assert_eq!(m["processor"]["name"], "mlflow-processor", "{what}");
            assert_eq!(m["source"]["kind"], kind, "{what}");
            for (key, want) in case["metadata"].as_object().unwrap() {
                assert_eq!(&m["metadata"][key], want, "{what}: metadata.{key}");
            }
            let folder_name = model_dir.file_name().unwrap().to_str().unwrap();
            let want_folder = if layout.has_folder() {
                json!(folder_name)
            } else {
                Value::Null
            };
            assert_eq!(
                m["metadata"]["source_model_folder"], want_folder,
                "{what}: source_model_folder"
            );
            for key in case["metadata_absent"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                assert!(
                    m["metadata"].get(key).is_none(),
                    "{what}: metadata.{key} should be absent"
                );
            }
            // The MLmodel is kept whole in the manifest, unknown keys included.
            let mlmodel_text = std::fs::read_to_string(model_dir.join("MLmodel")).unwrap();
            for line in mlmodel_text.lines().filter(|l| !l.starts_with(' ')) {
                let key = line.split(':').next().unwrap();
                assert!(
                    m["metadata"]["mlmodel"].get(key).is_some(),
                    "{what}: mlmodel.{key} kept"
                );
            }
            // Payload files: exactly the expected ones, byte-identical to the model's.
            let files: Vec<&str> = m["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap())
                .collect();
            let want_files: Vec<&str> = case["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert_eq!(files, want_files, "{what}: files");
            for f in m["files"].as_array().unwrap() {
                let path = f["path"].as_str().unwrap();
                let original = match path.strip_prefix("model/") {
                    Some(rel) => rel.to_string(),
                    None => case["payload_source"][path].as_str().unwrap().to_string(),
                };
                let bytes = &originals.iter().find(|(p, _)| *p == original).unwrap().1;
                assert_eq!(
                    f["sha256"].as_str().unwrap(),
                    sha256(bytes),
                    "{what}: {path}"
                );
                assert_eq!(
                    std::fs::read(target.join(path)).unwrap(),
                    *bytes,
                    "{what}: {path}"
                );
            }
            // Nothing else in the target.
            let mut top: Vec<String> = std::fs::read_dir(&target)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            top.sort();
            let mut want_top: Vec<String> = want_files
                .iter()
                .map(|f| f.split('/').next().unwrap().to_string())
                .chain(["model.json".to_string()])
                .collect();
            want_top.sort();
            want_top.dedup();
            assert_eq!(top, want_top, "{what}: target entries");
            let v = run(&["verify", target.to_str().unwrap()]);
            assert!(v.status.success(), "{what}: verify: {}", stderr(&v));
            // inspect describes the source exactly as process did, and writes nothing.
            let before = std::fs::read_dir(tmp.path()).unwrap().count();
            let i = inspect_json(&source, &args);
            assert!(i.status.success(), "{what}: inspect: {}", stderr(&i));
            let d: Value = serde_json::from_slice(&i.stdout).unwrap();
            assert_eq!(
                description_of(&d),
                description_of(&m),
                "{what}: inspect vs process"
            );
            assert_eq!(
                std::fs::read_dir(tmp.path()).unwrap().count(),
                before,
                "{what}: inspect wrote"
            );
        }
    }
    // Every model folder of testdata is covered.
    let mut on_disk = Vec::new();
    for base in [testdata(), testdata().join("v1")] {
        for e in std::fs::read_dir(&base).unwrap() {
            let p = e.unwrap().path();
            if p.join("MLmodel").is_file() {
                on_disk.push(
                    p.strip_prefix(testdata())
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
    }
    for f in &on_disk {
        assert!(
            folders_seen.contains(f),
            "testdata model {f} has no snapshot case"
        );
    }
    assert!(runs >= 70, "{runs} runs");
}

/// Models the default flags refuse, each with the flag that accepts them.
#[test]
fn testdata_models_refused_by_default() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("no_signature", &[], "MLmodel has no signature"),
        (
            "sklearn_pipeline",
            &["--model-type", "onnx"],
            "no onnx flavor",
        ),
    ];
    for (folder, args, needle) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let out = process(&testdata().join(folder), &target, args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{folder} {args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(needle),
            "{folder} {args:?}: {}",
            stderr(&out)
        );
        assert!(!target.join("model.json").exists(), "{folder}");
    }
}

/// Tensors of a higher rank or a variable width map to no columns: refused with the
/// signature entry, its shape and why (the message of the 1-D-only mapping, and what
/// maps instead); with `--allow-unmapped-types`, left out and listed.
#[test]
fn tensors_without_a_fixed_width_are_refused() {
    let model = testdata().join("sklearn_proba");
    let original = std::fs::read_to_string(model.join("MLmodel")).unwrap();
    let input = r#"'[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'"#;
    let output = "outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1,\n    2]}}]'";
    assert!(original.contains(input) && original.contains(output));
    type Case<'a> = (&'a str, String, &'a str);
    let cases: &[Case] = &[
        (
            "rank 3 input",
            original.replace(input, r#"'[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3, 2]}}]'"#),
            "input column \"input_0\" (tensor float64 [-1, 3, 2]): a tensor of shape [-1, 3, 2] is not one value per row (only [-1] or [-1, 1] map to a column); a 2-D tensor [-1, k] with a fixed k maps to k columns, higher ranks to none",
        ),
        (
            "unknown width input",
            original.replace(input, r#"'[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, -1]}}]'"#),
            "input column \"input_0\" (tensor float64 [-1, -1]): a tensor of shape [-1, -1] is not one value per row (only [-1] or [-1, 1] map to a column); [-1, k] maps to k columns only when k is fixed, and here the number of values per row is variable",
        ),
        (
            "rank 3 named output",
            original.replace(output, r#"outputs: '[{"name": "proba", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2, 1, 3]}}]'"#),
            "output column \"proba\" (tensor float64 [-1, 2, 1, 3]): a tensor of shape [-1, 2, 1, 3] is not one value per row (only [-1] or [-1, 1] map to a column); a 2-D tensor [-1, k] with a fixed k maps to k columns, higher ranks to none",
        ),
    ];
    for (label, mlmodel, needle) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("m");
        std::fs::create_dir(&source).unwrap();
        for (name, bytes) in folder_files(&model) {
            let bytes = if name == "MLmodel" {
                mlmodel.as_bytes().to_vec()
            } else {
                bytes
            };
            std::fs::write(source.join(name), bytes).unwrap();
        }
        let target = tmp.path().join("out");
        let out = process(&source, &target, &[]);
        assert_eq!(out.status.code(), Some(3), "{label}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{label}: {}", stderr(&out));
        assert!(!target.join("model.json").exists(), "{label}");
        // Accepted by flag: the tensor is left out, the schema unknown, no tensor layout.
        let target = tmp.path().join("flag");
        let out = process(&source, &target, &["--allow-unmapped-types"]);
        assert!(out.status.success(), "{label}: {}", stderr(&out));
        let m = manifest(&target);
        assert_eq!(m["schema_known"], false, "{label}");
        let unmapped = m["metadata"]["unmapped_columns"].as_array().unwrap();
        assert_eq!(unmapped.len(), 1, "{label}");
        let reason = unmapped[0]["reason"].as_str().unwrap();
        assert!(
            needle.ends_with(&format!("): {reason}")),
            "{label}: {reason}"
        );
        let side = unmapped[0]["side"].as_str().unwrap();
        let other = if side == "input" { "outputs" } else { "inputs" };
        let t = &m["metadata"]["tensor_signature"];
        assert!(t.get(format!("{side}s")).is_none(), "{label}: {t}");
        assert_eq!(
            t[other][0]["shape"].as_array().unwrap().len(),
            2,
            "{label}: {t}"
        );
    }
}

#[test]
fn manifest_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let source = testdata().join("sklearn_pipeline.zip");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert!(process(&source, &a, &[]).status.success());
    assert!(process(&source, &b, &[]).status.success());
    assert_eq!(
        std::fs::read(a.join("model.json")).unwrap(),
        std::fs::read(b.join("model.json")).unwrap()
    );
}

#[test]
fn runs_from_environment_variables_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let out = command()
        .env("SOURCE_PATH", testdata().join("onnx"))
        .env("TARGET_PATH", &target)
        .env("MLFLOW_MODEL_TYPE", "onnx")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&target);
    assert_eq!(m["model_type"], "onnx");
    assert_eq!(m["payload"], "model.onnx");
}

#[test]
fn inspect_prints_flavors_schema_python_and_requirements_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src.zip");
    std::fs::copy(testdata().join("sklearn_pipeline.zip"), &source).unwrap();
    let out = command()
        .current_dir(tmp.path())
        .args(["inspect", source.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "model type:    mlflow_pyfunc",
        "flavors:       [\"python_function\",\"sklearn\"]",
        "loader_module: mlflow.sklearn",
        "python_version: 3.11.7",
        "mlflow_version: 3.17.2",
        "requirements:  [\"mlflow==3.17.2\"",
        "inputs (6):",
        "  Int64    age",
        "  String   plan",
        "outputs (1):",
        "  Int64    prediction",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let entries: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "inspect wrote into its working directory");
}

#[test]
fn registered_model_meta_gives_the_source_model_name_and_version() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = folder_files(&testdata().join("xgboost"));
    files.push((
        "registered_model_meta".into(),
        b"model_name: credit-risk\nmodel_version: '7'\n".to_vec(),
    ));
    let source = tmp.path().join("registered.zip");
    std::fs::write(&source, zip_bytes(&files, "model/", false)).unwrap();
    let target = tmp.path().join("out");
    let out = process(&source, &target, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&target);
    assert_eq!(m["metadata"]["source_model_name"], "credit-risk");
    assert_eq!(m["metadata"]["source_model_version"], "7");
    assert_eq!(m["metadata"]["source_model_folder"], "model");
}

// ------------------------------------------------------------------ ONNX external data

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn pb_len(field: u64, body: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A `ValueInfoProto` of a tensor: `dims` are sizes, -1 for the variable `N`.
fn value_info(name: &str, elem: u64, dims: &[i64]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        if *d < 0 {
            pb_len(2, b"N", &mut dim);
        } else {
            varint(1 << 3, &mut dim);
            varint(*d as u64, &mut dim);
        }
        pb_len(1, &dim, &mut shape);
    }
    let mut tensor = Vec::new();
    varint(1 << 3, &mut tensor);
    varint(elem, &mut tensor);
    pb_len(2, &shape, &mut tensor);
    let mut ty = Vec::new();
    pb_len(1, &tensor, &mut ty);
    let mut vi = Vec::new();
    pb_len(1, name.as_bytes(), &mut vi);
    pb_len(2, &ty, &mut vi);
    vi
}

/// An ONNX ModelProto with these graph inputs and outputs (`(name, element type, dims)`;
/// 1 is float) and no nodes.
fn onnx_graph(inputs: &[(&str, u64, &[i64])], outputs: &[(&str, u64, &[i64])]) -> Vec<u8> {
    let mut graph = Vec::new();
    pb_len(2, b"g", &mut graph);
    for (n, e, d) in inputs {
        pb_len(11, &value_info(n, *e, d), &mut graph);
    }
    for (n, e, d) in outputs {
        pb_len(12, &value_info(n, *e, d), &mut graph);
    }
    let mut model = Vec::new();
    varint(1 << 3, &mut model);
    varint(8, &mut model);
    pb_len(7, &graph, &mut model);
    model
}

/// An ONNX ModelProto whose one initializer is stored in an external file `location`, with
/// the input `x` and the output `y` of ONNX_MLMODEL's signature.
fn onnx_with_external(location: &str) -> Vec<u8> {
    let mut entry = Vec::new();
    pb_len(1, b"location", &mut entry);
    pb_len(2, location.as_bytes(), &mut entry);
    let mut tensor = Vec::new();
    varint(1 << 3, &mut tensor);
    varint(4, &mut tensor);
    varint(2 << 3, &mut tensor);
    varint(1, &mut tensor);
    pb_len(8, b"coef", &mut tensor);
    pb_len(13, &entry, &mut tensor);
    varint(14 << 3, &mut tensor);
    varint(1, &mut tensor);
    let mut graph = Vec::new();
    pb_len(5, &tensor, &mut graph);
    pb_len(2, b"g", &mut graph);
    pb_len(11, &value_info("x", 1, &[-1, 1]), &mut graph);
    pb_len(12, &value_info("y", 1, &[-1, 1]), &mut graph);
    let mut model = Vec::new();
    varint(1 << 3, &mut model);
    varint(8, &mut model);
    pb_len(7, &graph, &mut model);
    model
}

const ONNX_MLMODEL: &str = r#"flavors:
  onnx:
    data: model.onnx
    onnx_version: 1.23.2
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.7
mlflow_version: 3.17.2
model_uuid: 0123456789abcdef0123456789abcdef
signature:
  inputs: '[{"name": "x", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]'
  outputs: '[{"name": "y", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]'
  params: null
"#;

#[test]
fn onnx_external_data_travels_with_the_onnx_payload() {
    let env = |files: &mut Vec<(String, Vec<u8>)>| {
        files.push((
            "conda.yaml".into(),
            b"dependencies:\n- python=3.11.7\n".to_vec(),
        ));
        files.push(("python_env.yaml".into(), b"python: 3.11.7\n".to_vec()));
        files.push(("requirements.txt".into(), b"onnx==1.23.2\n".to_vec()));
    };
    type Case = (
        &'static str,
        &'static str,
        bool,
        Result<&'static [&'static str], &'static str>,
    );
    let cases: &[Case] = &[
        ("external file present", "weights/coef.bin", true, Ok(&["model.onnx", "weights/coef.bin"])),
        (
            "external file missing",
            "weights/coef.bin",
            false,
            Err("external data file \"m/weights/coef.bin\" named by the model is not in the model folder"),
        ),
        ("external file escapes", "../coef.bin", false, Err("external data location \"../coef.bin\" is unsafe")),
        ("external file named model.json", "model.json", true, Err("collides with a name the model directory reserves")),
    ];
    for (label, location, present, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = vec![
            ("MLmodel".to_string(), ONNX_MLMODEL.as_bytes().to_vec()),
            ("model.onnx".to_string(), onnx_with_external(location)),
        ];
        env(&mut files);
        if *present {
            files.push((location.to_string(), vec![0u8; 16]));
        }
        let source = tmp.path().join("m.zip");
        std::fs::write(&source, zip_bytes(&files, "m/", false)).unwrap();
        for model_type in ["onnx", "mlflow_pyfunc"] {
            let target = tmp.path().join(format!("out-{model_type}"));
            let out = process(&source, &target, &["--model-type", model_type]);
            match want {
                Ok(want_files) => {
                    assert!(out.status.success(), "case {label}: {}", stderr(&out));
                    let m = manifest(&target);
                    let got: Vec<&str> = m["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f["path"].as_str().unwrap())
                        .collect();
                    if model_type == "onnx" {
                        assert_eq!(got, *want_files, "case {label}");
                        assert_eq!(
                            m["input_schema"],
                            json!([{"name": "x", "type": "Float32"}]),
                            "case {label}"
                        );
                    }
                    assert_eq!(
                        m["metadata"]["onnx_external_data"],
                        json!([location]),
                        "case {label}"
                    );
                    assert!(run(&["verify", target.to_str().unwrap()]).status.success());
                }
                Err(needle) => {
                    assert_eq!(out.status.code(), Some(3), "case {label}: {}", stderr(&out));
                    assert!(
                        stderr(&out).contains(needle),
                        "case {label}: {}",
                        stderr(&out)
                    );
                    assert!(!target.join("model.json").exists(), "case {label}");
                }
            }
        }
    }
}

// ------------------------------------------------------------------ bad inputs

const GOOD_MLMODEL: &str = r#"flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
model_uuid: 53dfafec1dea581b870df32a2ddcb942
signature:
  inputs: '[{"type": "long", "name": "age", "required": true}, {"type": "string", "name": "city", "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: null
utc_time_created: '2025-01-01 00:00:00.000000'
"#;

/// The files of a small valid model with the given MLmodel text.
fn model_with(mlmodel: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("MLmodel".into(), mlmodel.as_bytes().to_vec()),
        (
            "conda.yaml".into(),
            b"name: mlflow-env\ndependencies:\n- python=3.11.7\n- pip:\n  - mlflow==3.17.2\n"
                .to_vec(),
        ),
        ("model.pkl".into(), b"\x80\x05K\x01.".to_vec()),
        (
            "python_env.yaml".into(),
            b"python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
                .to_vec(),
        ),
        (
            "requirements.txt".into(),
            b"mlflow==3.17.2\nscikit-learn==1.9.1\n".to_vec(),
        ),
    ]
}

fn mlmodel_replacing(from: &str, to: &str) -> String {
    assert!(GOOD_MLMODEL.contains(from), "{from}");
    GOOD_MLMODEL.replace(from, to)
}

fn without(mut files: Vec<(String, Vec<u8>)>, name: &str) -> Vec<(String, Vec<u8>)> {
    files.retain(|(n, _)| n != name);
    files
}

/// Replaces every occurrence of `from` by `to` (same length), in local and central
/// headers alike: forges names the zip writer would not write.
fn rename_entry(mut zip: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let (f, t) = (from.as_bytes(), to.as_bytes());
    let mut found = false;
    for i in 0..=zip.len() - f.len() {
        if &zip[i..i + f.len()] == f {
            zip[i..i + f.len()].copy_from_slice(t);
            found = true;
        }
    }
    assert!(found, "{from} not in zip");
    zip
}

/// Sets the Unix mode of entry `name` in the central directory (made by Unix).
fn set_zip_mode(mut zip: Vec<u8>, name: &str, mode: u32) -> Vec<u8> {
    let mut i = 0;
    let mut found = false;
    while i + 46 <= zip.len() {
        if &zip[i..i + 4] == b"PK\x01\x02" {
            let n = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            if &zip[i + 46..i + 46 + n] == name.as_bytes() {
                zip[i + 5] = 3;
                zip[i + 38..i + 42].copy_from_slice(&(mode << 16).to_le_bytes());
                found = true;
            }
        }
        i += 1;
    }
    assert!(found, "{name} not in central directory");
    zip
}

/// A tar of a good model under `m/` followed by one forged entry.
fn tar_with(entry_name: &[u8], kind: tar::EntryType, link: Option<&str>, gz: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in model_with(GOOD_MLMODEL) {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("m/{name}")).unwrap();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let data: &[u8] = if kind == tar::EntryType::Regular {
        b"evil"
    } else {
        b""
    };
    h.set_size(data.len() as u64);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    if kind == tar::EntryType::Char {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    // Written byte by byte: `set_path` refuses `..` and absolute names.
    let name = &mut h.as_ustar_mut().unwrap().name;
    name.fill(0);
    name[..entry_name.len()].copy_from_slice(entry_name);
    h.set_cksum();
    b.append(&h, data).unwrap();
    let bytes = b.into_inner().unwrap();
    if gz {
        gzip(&bytes)
    } else {
        bytes
    }
}

#[test]
fn bad_inputs_each_get_their_own_error() {
    struct Case {
        name: &'static str,
        /// File name of the source and its bytes (or a folder of files when `folder`).
        file: &'static str,
        bytes: Vec<u8>,
        args: &'static [&'static str],
        code: i32,
        needles: &'static [&'static str],
    }
    let zip = |files: Vec<(String, Vec<u8>)>| zip_bytes(&files, "m/", false);
    let good = zip(model_with(GOOD_MLMODEL));

    // The base is good: every failure below comes from its one defect.
    {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("good.zip");
        std::fs::write(&p, &good).unwrap();
        let out = process(&p, &tmp.path().join("out"), &[]);
        assert!(out.status.success(), "good base: {}", stderr(&out));
        let t = tar_with(b"m/extra.txt", tar::EntryType::Regular, None, false);
        std::fs::write(&p, &t).unwrap();
        let out = process(&p, &tmp.path().join("out2"), &[]);
        assert!(out.status.success(), "good tar base: {}", stderr(&out));
    }

    let mut big = GOOD_MLMODEL.to_string();
    let filler = format!("# {}\n", "x".repeat(1021));
    while big.len() <= 16 << 20 {
        big.push_str(&filler);
    }

    let cases = vec![
        Case {
            name: "no MLmodel",
            file: "none.zip",
            bytes: zip(without(model_with(GOOD_MLMODEL), "MLmodel")),
            args: &[],
            code: 3,
            needles: &["no MLmodel file", "m/model.pkl"],
        },
        Case {
            name: "two MLmodels",
            file: "two.zip",
            bytes: {
                let mut f: Vec<(String, Vec<u8>)> = model_with(GOOD_MLMODEL).into_iter().map(|(n, d)| (format!("a/{n}"), d)).collect();
                f.extend(model_with(GOOD_MLMODEL).into_iter().map(|(n, d)| (format!("b/{n}"), d)));
                zip_bytes(&f, "", false)
            },
            args: &[],
            code: 3,
            needles: &["2 MLflow models found (a/MLmodel, b/MLmodel)"],
        },
        Case {
            name: "MLmodel at the root and in a folder",
            file: "rootandsub.zip",
            bytes: {
                let mut f = model_with(GOOD_MLMODEL);
                f.push(("sub/MLmodel".into(), GOOD_MLMODEL.as_bytes().to_vec()));
                zip_bytes(&f, "", false)
            },
            args: &[],
            code: 3,
            needles: &["2 MLflow models found (MLmodel, sub/MLmodel)"],
        },
        Case {
            name: "MLmodel too deep",
            file: "deep.zip",
            bytes: zip_bytes(&model_with(GOOD_MLMODEL), "a/b/", false),
            args: &[],
            code: 3,
            needles: &["MLmodel found only at a/b/MLmodel"],
        },
        Case {
            name: "file outside the model folder",
            file: "stray.zip",
            bytes: {
                let mut f: Vec<(String, Vec<u8>)> = model_with(GOOD_MLMODEL).into_iter().map(|(n, d)| (format!("m/{n}"), d)).collect();
                f.push(("notes.txt".into(), b"hi".to_vec()));
                zip_bytes(&f, "", false)
            },
            args: &[],
            code: 3,
            needles: &["the model folder is \"m\"", "outside it: notes.txt"],
        },
        Case {
            name: "YAML syntax error",
            file: "yaml.zip",
            bytes: zip(model_with(&mlmodel_replacing("mlflow_version: 3.17.2", "mlflow_version: [3.17.2"))),
            args: &[],
            code: 3,
            needles: &["m/MLmodel: YAML syntax error"],
        },
        Case {
            name: "MLmodel is a list",
            file: "list.zip",
            bytes: zip(model_with("- flavors\n- signature\n")),
            args: &[],
            code: 3,
            needles: &["m/MLmodel: (document): the top level must be a map"],
        },
        Case {
            name: "MLmodel without flavors",
            file: "noflavors.zip",
            bytes: zip(model_with("mlflow_version: 2.9.2\n")),
            args: &[],
            code: 3,
            needles: &["m/MLmodel: flavors: missing"],
        },
        Case {
            name: "MLmodel over 16 MiB",
            file: "big.zip",
            bytes: zip(model_with(&big)),
            // The filler compresses far past the default ratio limit.
            args: &["--max-ratio", "1000000"],
            code: 3,
            needles: &["m/MLmodel is 1677", "bytes this processor reads for the MLmodel file"],
        },
        Case {
            name: "signature JSON invalid",
            file: "sigjson.zip",
            bytes: zip(model_with(&mlmodel_replacing(r#"'[{"type": "long", "name": "age""#, r#"'[{"type": "long" "name": "age""#))),
            args: &[],
            code: 3,
            needles: &["m/MLmodel: signature.inputs is not a valid MLflow schema: invalid JSON: expected `,` or `}` at line 1 column 18"],
        },
        Case {
            name: "signature schema written as YAML, not JSON text",
            file: "sigyaml.zip",
            bytes: zip(model_with(&mlmodel_replacing(r#"  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'"#, "  outputs:\n  - {type: long, name: y}"))),
            args: &[],
            code: 3,
            needles: &["signature.outputs is not a valid MLflow schema: expected JSON text", "found a list"],
        },
        Case {
            name: "signature params JSON invalid",
            file: "params.zip",
            bytes: zip(model_with(&mlmodel_replacing("  params: null", "  params: '[{\"name\": \"t\"'"))),
            args: &[],
            code: 3,
            needles: &["signature.params is not a valid MLflow schema: invalid JSON"],
        },
        Case {
            name: "signature mixes named and unnamed",
            file: "sigmix.zip",
            bytes: zip(model_with(&mlmodel_replacing(r#"{"type": "string", "name": "city", "required": true}"#, r#"{"type": "string", "required": true}"#))),
            args: &[],
            code: 3,
            needles: &["signature.inputs is not a valid MLflow schema: mixes named and unnamed"],
        },
        Case {
            name: "referenced model file missing",
            file: "nopkl.zip",
            bytes: zip(without(model_with(GOOD_MLMODEL), "model.pkl")),
            args: &[],
            code: 3,
            needles: &["MLmodel flavors.python_function.model_path names \"model.pkl\", which is not in the model folder"],
        },
        Case {
            name: "referenced env file missing",
            file: "noconda.zip",
            bytes: zip(without(model_with(GOOD_MLMODEL), "conda.yaml")),
            args: &[],
            code: 3,
            needles: &["flavors.python_function.env.conda names \"conda.yaml\""],
        },
        Case {
            name: "referenced file with the wrong case",
            file: "case.zip",
            bytes: zip(model_with(&GOOD_MLMODEL.replace("model.pkl", "Model.pkl"))),
            args: &[],
            code: 3,
            needles: &["names \"Model.pkl\"", "the model has \"model.pkl\"; names are case-sensitive"],
        },
        Case {
            name: "reference escapes the model",
            file: "escape.zip",
            bytes: zip(model_with(&mlmodel_replacing("pickled_model: model.pkl", "pickled_model: ../../etc/passwd"))),
            args: &[],
            code: 3,
            needles: &["flavors.sklearn.pickled_model names \"../../etc/passwd\", which is not a safe relative path", "parent-directory"],
        },
        Case {
            name: "pyfunc env of the wrong shape",
            file: "envlist.zip",
            bytes: zip(model_with(&mlmodel_replacing("    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n", "    env: [conda.yaml]\n"))),
            args: &[],
            code: 3,
            needles: &["flavors.python_function.env: expected a file name (MLflow 1.x) or a map {conda, virtualenv}"],
        },
        Case {
            name: "unmappable column type",
            file: "binary.zip",
            bytes: zip(model_with(&mlmodel_replacing(r#"{"type": "string", "name": "city", "required": true}"#, r#"{"type": "binary", "name": "photo", "required": true}"#))),
            args: &[],
            code: 3,
            needles: &["input column \"photo\" (binary)", "--allow-unmapped-types"],
        },
        Case {
            name: "array column",
            file: "array.zip",
            bytes: zip(model_with(&mlmodel_replacing(r#"{"type": "string", "name": "city", "required": true}"#, r#"{"type": "array", "items": {"type": "string"}, "name": "tags", "required": true}"#))),
            args: &[],
            code: 3,
            needles: &["input column \"tags\" (array<string>)"],
        },
        Case {
            name: "no signature",
            file: "nosig.zip",
            bytes: zip(model_with(&GOOD_MLMODEL[..GOOD_MLMODEL.find("signature:").unwrap()])),
            args: &[],
            code: 3,
            needles: &["MLmodel has no signature", "mlflow.models.infer_signature", "--allow-no-signature"],
        },
        Case {
            name: "signature without outputs",
            file: "noout.zip",
            bytes: zip(model_with(&mlmodel_replacing(r#"  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'"#, "  outputs: null"))),
            args: &[],
            code: 3,
            needles: &["the MLmodel signature has no outputs"],
        },
        Case {
            name: "no python_function flavor",
            file: "nopyfunc.zip",
            bytes: zip(model_with(&GOOD_MLMODEL.replace("  python_function:\n    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n    predict_fn: predict\n    python_version: 3.11.7\n", ""))),
            args: &[],
            code: 3,
            needles: &["model type mlflow_pyfunc is not available", "no python_function flavor (flavors: sklearn)"],
        },
        Case {
            name: "onnx model type without onnx flavor",
            file: "noonnx.zip",
            bytes: good.clone(),
            args: &["--model-type", "onnx"],
            code: 3,
            needles: &["model type onnx is not available", "no onnx flavor (flavors: python_function, sklearn)"],
        },
        Case {
            name: "unknown model type",
            file: "good.zip",
            bytes: good.clone(),
            args: &["--model-type", "pickle"],
            code: 2,
            needles: &["invalid value 'pickle'"],
        },
        Case {
            name: "conda.yaml syntax error",
            file: "badconda.zip",
            bytes: {
                let mut f = without(model_with(GOOD_MLMODEL), "conda.yaml");
                f.push(("conda.yaml".into(), b"dependencies: [python=3.11\n".to_vec()));
                zip(f)
            },
            args: &[],
            code: 3,
            needles: &["m/conda.yaml: YAML syntax error"],
        },
        Case {
            name: "not an archive",
            file: "model.bin",
            bytes: b"this is not an MLflow model".to_vec(),
            args: &[],
            code: 3,
            needles: &["is not a zip, tar, tar.gz or directory"],
        },
        Case {
            name: "zip entry with ..",
            file: "dotdot.zip",
            bytes: rename_entry(zip_bytes(&[("m/MLmodel".into(), GOOD_MLMODEL.as_bytes().to_vec()), ("m/xxx/evil".into(), b"x".to_vec())], "", false), "m/xxx/evil", "../../evil"),
            args: &[],
            code: 3,
            needles: &["entry \"../../evil\" is unsafe", "parent-directory component"],
        },
        Case {
            name: "zip entry with an absolute path",
            file: "abs.zip",
            bytes: rename_entry(zip_bytes(&[("m/MLmodel".into(), GOOD_MLMODEL.as_bytes().to_vec()), ("xetc/evil".into(), b"x".to_vec())], "", false), "xetc/evil", "/etc/evil"),
            args: &[],
            code: 3,
            needles: &["entry \"/etc/evil\" is unsafe", "absolute path"],
        },
        Case {
            name: "zip symlink",
            file: "symlink.zip",
            bytes: {
                let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                for (n, d) in model_with(GOOD_MLMODEL) {
                    w.start_file(format!("m/{n}"), zip_opts()).unwrap();
                    w.write_all(&d).unwrap();
                }
                w.add_symlink("m/link", "/etc/passwd", zip_opts()).unwrap();
                w.finish().unwrap().into_inner()
            },
            args: &[],
            code: 3,
            needles: &["entry \"m/link\" is unsafe: symbolic link"],
        },
        Case {
            name: "zip device file",
            file: "device.zip",
            bytes: set_zip_mode(zip(model_with(GOOD_MLMODEL)), "m/model.pkl", 0o020644),
            args: &[],
            code: 3,
            needles: &["entry \"m/model.pkl\" is unsafe: special file"],
        },
        Case {
            name: "tar entry with ..",
            file: "dotdot.tar",
            bytes: tar_with(b"m/../../evil", tar::EntryType::Regular, None, false),
            args: &[],
            code: 3,
            needles: &["entry \"m/../../evil\" is unsafe", "parent-directory component"],
        },
        Case {
            name: "tar.gz entry with ..",
            file: "dotdot.tar.gz",
            bytes: tar_with(b"../evil", tar::EntryType::Regular, None, true),
            args: &[],
            code: 3,
            needles: &["entry \"../evil\" is unsafe"],
        },
        Case {
            name: "tar entry with an absolute path",
            file: "abs.tar",
            bytes: tar_with(b"/etc/cron.d/evil", tar::EntryType::Regular, None, false),
            args: &[],
            code: 3,
            needles: &["entry \"/etc/cron.d/evil\" is unsafe", "absolute path"],
        },
        Case {
            name: "tar symlink",
            file: "symlink.tar",
            bytes: tar_with(b"m/link", tar::EntryType::Symlink, Some("/etc/passwd"), false),
            args: &[],
            code: 3,
            needles: &["entry \"m/link\" is unsafe: symbolic link"],
        },
        Case {
            name: "tar hard link",
            file: "hardlink.tar",
            bytes: tar_with(b"m/hard", tar::EntryType::Link, Some("/etc/shadow"), false),
            args: &[],
            code: 3,
            needles: &["entry \"m/hard\" is unsafe: hard link"],
        },
        Case {
            name: "tar device file",
            file: "device.tar",
            bytes: tar_with(b"m/null", tar::EntryType::Char, None, false),
            args: &[],
            code: 3,
            needles: &["entry \"m/null\" is unsafe: device file"],
        },
    ];
    let mut seen_messages = std::collections::BTreeSet::new();
    for case in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join(case.file);
        std::fs::write(&source, &case.bytes).unwrap();
        let target = tmp.path().join("out");
        for (mode, out) in [
            ("process", process(&source, &target, case.args)),
            ("inspect", inspect_json(&source, case.args)),
        ] {
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(case.code),
                "case {} ({mode}): {err}",
                case.name
            );
            for needle in case.needles {
                assert!(
                    err.contains(needle),
                    "case {} ({mode}): {needle:?} not in: {err}",
                    case.name
                );
            }
            assert!(
                err.contains(case.file) || case.code == 2,
                "case {} ({mode}): the message names the source: {err}",
                case.name
            );
            assert!(
                stdout(&out).is_empty(),
                "case {} ({mode}): printed {}",
                case.name,
                stdout(&out)
            );
            if mode == "process" {
                if std::env::var_os("SHOW_ERRORS").is_some() {
                    eprintln!(
                        "[{}] {}",
                        case.name,
                        err.lines()
                            .filter(|l| !l.contains(" INFO "))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
                seen_messages.insert(err.clone());
            }
        }
        assert!(
            !target.join("model.json").exists(),
            "case {}: model.json written",
            case.name
        );
        if target.exists() {
            let left: Vec<_> = std::fs::read_dir(&target)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "case {}: left {left:?}", case.name);
        }
    }
    assert_eq!(
        seen_messages.len(),
        cases.len(),
        "every case has its own message"
    );
}

#[test]
fn accepted_by_flag_is_recorded() {
    let cases: &[(&str, String, &[&str], Value, Value)] = &[
        (
            "no signature",
            GOOD_MLMODEL[..GOOD_MLMODEL.find("signature:").unwrap()].to_string(),
            &["--allow-no-signature"],
            json!([]),
            json!({"schema_unknown_reason": "MLmodel has no signature", "schema_source": "none"}),
        ),
        (
            "binary column",
            mlmodel_replacing(
                r#"{"type": "string", "name": "city", "required": true}"#,
                r#"{"type": "binary", "name": "photo", "required": true}"#,
            ),
            &["--allow-unmapped-types"],
            json!([{"name": "age", "type": "Int64"}]),
            json!({"unmapped_columns": [{"side": "input", "name": "photo", "mlflow_type": "binary",
                "mlflow_spec": {"type": "binary", "name": "photo", "required": true},
                "reason": "MLflow type binary (raw bytes) has no MLOps column type"}], "schema_source": "signature"}),
        ),
    ];
    for (label, mlmodel, args, inputs, meta) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("m.zip");
        std::fs::write(&source, zip_bytes(&model_with(mlmodel), "", false)).unwrap();
        let target = tmp.path().join("out");
        let out = process(&source, &target, args);
        assert!(out.status.success(), "case {label}: {}", stderr(&out));
        let m = manifest(&target);
        assert_eq!(m["schema_known"], false, "case {label}");
        assert_eq!(m["input_schema"], *inputs, "case {label}");
        for (k, v) in meta.as_object().unwrap() {
            assert_eq!(&m["metadata"][k], v, "case {label}: {k}");
        }
    }
}

// ------------------------------------------------------------------ h2o3_mojo

/// An MLflow model saved with `h2o_mlflow_flavor` becomes, with `--model-type h2o3_mojo`,
/// the directory the `h2o3/mojo` processor writes for the bare MOJO: same payload bytes,
/// schemas, capabilities, model type, id and MOJO metadata; the MLflow facts under
/// `metadata.mlflow`. In every source layout, and `inspect` describes it the same way.
#[test]
fn a_wrapped_h2o3_mojo_becomes_the_bare_mojos_directory() {
    let model = testdata().join("h2o_mojo_wrapped");
    let mojo = model.join("gbm_h2o_wrapped.zip");
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("bare");
    let ctx = artifact_core::Context {
        read: artifact_core::ReadOptions::default(),
        args: h2o3_mojo::NoArgs {},
    };
    artifact_core::cli::process::<h2o3_mojo::H2o3MojoProcessor>(&mojo, &bare, false, &ctx).unwrap();
    let bare_m = manifest(&bare);

    let files = folder_files(&model);
    let zipped = tmp.path().join("wrapped.zip");
    std::fs::write(&zipped, zip_bytes(&files, "h2o_mojo_wrapped/", true)).unwrap();
    let tgz = tmp.path().join("wrapped.tar.gz");
    std::fs::write(&tgz, gzip(&tar_bytes(&files, ""))).unwrap();
    for (layout, source) in [("folder", &model), ("zip", &zipped), ("tar.gz", &tgz)] {
        let target = tmp.path().join(format!("out-{layout}"));
        let o = process(source, &target, &["--model-type", "h2o3_mojo"]);
        assert!(o.status.success(), "{layout}: {}", stderr(&o));
        let v = run(&["verify", target.to_str().unwrap()]);
        assert!(v.status.success(), "{layout}: verify: {}", stderr(&v));
        let m = manifest(&target);
        assert_eq!(
            std::fs::read(target.join("model.mojo")).unwrap(),
            std::fs::read(&mojo).unwrap(),
            "{layout}: payload"
        );
        let names: Vec<String> = folder_files(&target).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["model.json", "model.mojo"],
            "{layout}: nothing else"
        );
        for key in [
            "model_type",
            "id",
            "payload",
            "schema_known",
            "input_schema",
            "output_schema",
            "capabilities",
            "files",
        ] {
            assert_eq!(m[key], bare_m[key], "{layout}: {key}");
        }
        assert_eq!(m["artifact_type"], "python/mlflow", "{layout}");
        assert_eq!(m["model_type"], "h2o3_mojo", "{layout}");
        let mut meta = m["metadata"].as_object().unwrap().clone();
        let mlflow = meta.remove("mlflow").expect("metadata.mlflow");
        assert_eq!(
            Value::Object(meta),
            bare_m["metadata"],
            "{layout}: MOJO metadata"
        );
        assert_eq!(
            mlflow["flavors"],
            json!(["h2o_mojo_pojo", "python_function"])
        );
        assert_eq!(mlflow["mlflow_version"], "3.17.2");
        assert_eq!(mlflow["wrapped_mojo"]["sha256"], bare_m["source"]["sha256"]);
        assert!(mlflow["wrapped_mojo"]["file"]
            .as_str()
            .unwrap()
            .ends_with("gbm_h2o_wrapped.zip"));

        let o = inspect_json(source, &["--model-type", "h2o3_mojo"]);
        assert!(o.status.success(), "{layout}: inspect: {}", stderr(&o));
        let d: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(description_of(&d), description_of(&m), "{layout}: inspect");
    }
}

/// Models the `h2o3_mojo` model type refuses, each with what the user is told.
#[test]
fn h2o3_mojo_model_type_refusals() {
    let model = testdata().join("h2o_mojo_wrapped");
    let files = folder_files(&model);
    let mlmodel = String::from_utf8(
        files
            .iter()
            .find(|(n, _)| n == "MLmodel")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    let with = |from: &str, to: &str| -> Vec<(String, Vec<u8>)> {
        assert!(mlmodel.contains(from), "{from}");
        files
            .iter()
            .map(|(n, b)| {
                let b = if n == "MLmodel" {
                    mlmodel.replace(from, to).into_bytes()
                } else {
                    b.clone()
                };
                (n.clone(), b)
            })
            .collect()
    };
    let tmp = tempfile::tempdir().unwrap();
    let broken_mojo = testkit::mojo::edited(
        &model.join("gbm_h2o_wrapped.zip"),
        tmp.path(),
        &[("n_trees", Some("2147483647"))],
        &[],
    );
    let mut broken = files.clone();
    for (n, b) in broken.iter_mut() {
        if n == "gbm_h2o_wrapped.zip" {
            *b = std::fs::read(&broken_mojo).unwrap();
        }
    }
    let sklearn = folder_files(&testdata().join("sklearn_pipeline"));
    type Files = Vec<(String, Vec<u8>)>;
    let cases: Vec<(&str, Files, &str)> = vec![
        (
            "no h2o flavor",
            sklearn,
            "model type h2o3_mojo is not available for this model: MLmodel has no h2o_mojo_pojo flavor",
        ),
        (
            "a POJO",
            with("model_type: MOJO", "model_type: POJO"),
            "holds a POJO (model_type: POJO), Java source that only a JVM can run",
        ),
        (
            "model_file names nothing",
            with("model_file: gbm_h2o_wrapped.zip", "model_file: gone.zip"),
            "MLmodel flavors.h2o_mojo_pojo.model_file names \"gone.zip\", which is not in the model folder",
        ),
        (
            "a MOJO the native loader refuses",
            broken,
            "gbm_h2o_wrapped.zip: the H2O-3 MOJO of the h2o_mojo_pojo flavor is refused\n  caused by: gbm_h2o_wrapped.zip: model.ini: n_trees = 2147483647 but the last tree file is for tree 2",
        ),
    ];
    for (name, files, needle) in cases {
        let src = tmp.path().join(format!("{name}.zip"));
        std::fs::write(&src, zip_bytes(&files, "", false)).unwrap();
        let target = tmp.path().join(format!("out-{name}"));
        let o = process(&src, &target, &["--model-type", "h2o3_mojo"]);
        assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{name}: {}", stderr(&o));
        assert!(!target.join("model.json").exists(), "{name}");
        let o = inspect_json(&src, &["--model-type", "h2o3_mojo"]);
        assert_eq!(o.status.code(), Some(3), "{name}: inspect: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{name}: inspect: {}",
            stderr(&o)
        );
    }
}

/// `--model-type onnx` takes its schema from the graph: no `--allow-unmapped-types` for a
/// `[-1, k]` input, no signature needed, and a signature that describes another graph is
/// refused.
#[test]
fn onnx_schema_comes_from_the_graph_and_must_agree_with_the_signature() {
    let mlmodel = |signature: Option<(&str, &str)>| {
        let head = ONNX_MLMODEL.split("signature:").next().unwrap().to_string();
        match signature {
            None => head,
            Some((i, o)) => format!("{head}signature:\n  inputs: '{i}'\n  outputs: '{o}'\n"),
        }
    };
    let tensor = |name: &str, dtype: &str, shape: &str| {
        format!(
            r#"{{"name": "{name}", "type": "tensor", "tensor-spec": {{"dtype": "{dtype}", "shape": {shape}}}}}"#
        )
    };
    type Want<'a> = Result<(&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)]), &'a [&'a str]>;
    struct Case<'a> {
        name: &'a str,
        inputs: &'a [(&'a str, u64, &'a [i64])],
        outputs: &'a [(&'a str, u64, &'a [i64])],
        signature: Option<(String, String)>,
        args: &'a [&'a str],
        want: Want<'a>,
    }
    let cases = [
        Case {
            name: "no signature, a [-1, 3] input",
            inputs: &[("x", 1, &[-1, 3])],
            outputs: &[("y", 1, &[-1])],
            signature: None,
            args: &[],
            want: Ok((&[("x_0", "Float32"), ("x_1", "Float32"), ("x_2", "Float32")], &[("y", "Float32")])),
        },
        Case {
            name: "string, int64 and double tensors",
            inputs: &[("city", 8, &[-1, 1]), ("n", 7, &[-1])],
            outputs: &[("score", 11, &[-1, 2])],
            signature: Some((
                format!("[{}, {}]", tensor("city", "str", "[-1, 1]"), tensor("n", "int64", "[-1]")),
                format!("[{}]", tensor("score", "float64", "[-1, 2]")),
            )),
            args: &[],
            want: Ok((&[("city", "String"), ("n", "Int64")], &[("score_0", "Float64"), ("score_1", "Float64")])),
        },
        Case {
            name: "the signature's dtype differs",
            inputs: &[("x", 1, &[-1, 1])],
            outputs: &[("y", 1, &[-1, 1])],
            signature: Some((
                format!("[{}]", tensor("x", "float64", "[-1, 1]")),
                format!("[{}]", tensor("y", "float32", "[-1, 1]")),
            )),
            args: &[],
            want: Err(&[
                "m/model.onnx: the MLmodel signature does not describe this ONNX graph",
                "signature input \"x\" is tensor float64 [-1, 1]: dtype float64, but the graph's \"x\" is tensor(float)[N, 1]",
            ]),
        },
        Case {
            name: "the signature names another input",
            inputs: &[("x", 1, &[-1, 2])],
            outputs: &[("y", 1, &[-1])],
            signature: Some((
                format!("[{}]", tensor("features", "float32", "[-1, 2]")),
                format!("[{}]", tensor("y", "float32", "[-1]")),
            )),
            args: &["--allow-unmapped-types"],
            want: Err(&[
                "signature input \"features\" (tensor float32 [-1, 2]) is not a graph input (the graph's: \"x\")",
                "graph input \"x\" (tensor(float)[N, 2]) is not in the signature",
            ]),
        },
        Case {
            name: "an image input is refused",
            inputs: &[("img", 1, &[-1, 3, 8, 8])],
            outputs: &[("y", 1, &[-1])],
            signature: None,
            args: &[],
            want: Err(&[
                "1 ONNX graph input(s) or output(s) have no MLOps column mapping: input \"img\" (tensor(float)[N, 3, 8, 8]): rank 4",
                "pass --allow-unmapped-types",
            ]),
        },
        Case {
            name: "an image input with --allow-unmapped-types",
            inputs: &[("img", 1, &[-1, 3, 8, 8])],
            outputs: &[("y", 1, &[-1])],
            signature: None,
            args: &["--allow-unmapped-types"],
            want: Ok((&[], &[("y", "Float32")])),
        },
    ];
    let env = [
        ("conda.yaml", "dependencies:\n- python=3.11.7\n"),
        ("python_env.yaml", "python: 3.11.7\n"),
        ("requirements.txt", "onnx==1.23.2\n"),
    ];
    for case in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let sig = case
            .signature
            .as_ref()
            .map(|(i, o)| (i.as_str(), o.as_str()));
        let mut files = vec![
            ("MLmodel".to_string(), mlmodel(sig).into_bytes()),
            (
                "model.onnx".to_string(),
                onnx_graph(case.inputs, case.outputs),
            ),
        ];
        files.extend(
            env.iter()
                .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())),
        );
        let source = tmp.path().join("m.zip");
        std::fs::write(&source, zip_bytes(&files, "m/", false)).unwrap();
        let target = tmp.path().join("out");
        let mut args = vec!["--model-type", "onnx"];
        args.extend_from_slice(case.args);
        let out = process(&source, &target, &args);
        let label = case.name;
        match &case.want {
            Ok((inputs, outputs)) => {
                assert!(out.status.success(), "{label}: {}", stderr(&out));
                let m = manifest(&target);
                let cols = |v: &[(&str, &str)]| {
                    Value::Array(
                        v.iter()
                            .map(|(n, t)| json!({"name": n, "type": t}))
                            .collect(),
                    )
                };
                assert_eq!(m["input_schema"], cols(inputs), "{label}");
                assert_eq!(m["output_schema"], cols(outputs), "{label}");
                assert_eq!(m["schema_known"], json!(!inputs.is_empty()), "{label}");
                assert_eq!(m["metadata"]["schema_source"], "onnx_graph", "{label}");
                assert_eq!(
                    m["metadata"]["signature_checked"],
                    json!(sig.is_some()),
                    "{label}"
                );
                if inputs.is_empty() {
                    assert_eq!(
                        m["metadata"]["unmapped_columns"][0]["name"], "img",
                        "{label}"
                    );
                }
            }
            Err(needles) => {
                assert_eq!(out.status.code(), Some(3), "{label}: {}", stderr(&out));
                for n in *needles {
                    assert!(
                        stderr(&out).contains(n),
                        "{label}: {n:?} not in {}",
                        stderr(&out)
                    );
                }
                assert!(!target.join("model.json").exists(), "{label}");
            }
        }
    }
}
