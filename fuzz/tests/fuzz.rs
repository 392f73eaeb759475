//! Fuzz targets on the stable toolchain: proptest generates inputs (mutations of valid
//! seeds, grammar-shaped text, random bytes) for every reader of untrusted input, and
//! each target checks that the reader never panics and that what it accepts is sound.
//!
//! `cargo test -p fuzz-targets` is the short run (a few thousand cases per target);
//! `PROPTEST_CASES=200000 cargo test --release -p fuzz-targets -- --nocapture` is the
//! long one (README.md). Each target prints how many inputs it executed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use artifact_core::names::{normalize_entry_name, NameSet};
use artifact_core::{read_source, Classify, DirSink, ErrorClass, Limits, ReadOptions};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Inputs a reader accepted, per target: a fuzz run that never gets past the first
/// check would say so here.
static ACCEPTED: std::sync::Mutex<BTreeMap<&'static str, u64>> =
    std::sync::Mutex::new(BTreeMap::new());

fn accepted(target: &'static str) {
    *ACCEPTED.lock().unwrap().entry(target).or_default() += 1;
}

/// Runs `strategy` through `check` for `PROPTEST_CASES` cases (default `default`) and
/// prints the number of executions.
fn fuzz<S: Strategy>(
    target: &str,
    default: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let count = std::cell::Cell::new(0u64);
    let start = std::time::Instant::now();
    let result = runner.run(&strategy, |v| {
        count.set(count.get() + 1);
        check(v)
    });
    let ok: Vec<String> = ACCEPTED
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "fuzz {target}: {} executions in {:.1?} (accepted so far: {})",
        count.get(),
        start.elapsed(),
        ok.join(", ")
    );
    if let Err(e) = result {
        panic!("fuzz {target}: {e}");
    }
}

// ------------------------------------------------------------------ mutations

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Overwrite(usize, Vec<u8>),
    /// Copies `len` bytes from one place over another (repeats headers, names, sizes).
    Copy(usize, usize, usize),
}

/// Byte strings that mean something to archive and text parsers.
fn interesting() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\xff\xff\xff\xff".to_vec()),
        Just(b"\0\0\0\0".to_vec()),
        Just(b"../".to_vec()),
        Just(b"/".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"PK\x03\x04".to_vec()),
        Just(b"PK\x01\x02".to_vec()),
        Just(b"PK\x05\x06".to_vec()),
        Just(b"PK\x06\x07".to_vec()),
        Just(b"PK\x07\x08".to_vec()),
        Just(b"ustar\0".to_vec()),
        Just(b"2".to_vec()),
        Just(b"5".to_vec()),
        Just(b"x".to_vec()),
        Just(b"L".to_vec()),
        Just(b"\x80".to_vec()),
        vec(any::<u8>(), 1..8),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1u8..).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        3 => (any::<usize>(), interesting()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        1 => (any::<usize>(), any::<usize>(), 1usize..64).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match m {
            Mutation::Flip(i, x) => b[i % n] ^= x,
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::Insert(i, bytes) => {
                let at = i % (n + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Overwrite(i, bytes) => {
                let at = i % n;
                for (k, v) in bytes.iter().enumerate() {
                    if at + k < n {
                        b[at + k] = *v;
                    }
                }
            }
            Mutation::Copy(from, to, len) => {
                let (from, to) = (from % n, to % n);
                let len = (*len).min(n - from).min(n - to);
                let chunk = b[from..from + len].to_vec();
                b[to..to + len].copy_from_slice(&chunk);
            }
        }
    }
    b
}

// ------------------------------------------------------------------ archive seeds

const INI: &str = "[info]\nh2o_version = 3.46.0.11\nmojo_version = 1.00\nalgo = glm\nalgorithm = Generalized Linear Modeling\ncategory = Regression\nuuid = 42\nsupervised = true\nn_features = 2\nn_classes = 1\nn_columns = 3\nn_domains = 1\nbalance_classes = false\ndefault_threshold = 0.5\n\n[columns]\na\nb\ny\n\n[domains]\n1: 2 d000.txt\n";

fn zip_seed(streaming: bool) -> Vec<u8> {
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    fn fill<W: Write + std::io::Seek>(
        w: &mut zip::ZipWriter<W>,
        d: zip::write::SimpleFileOptions,
        s: zip::write::SimpleFileOptions,
    ) {
        w.start_file("model.ini", d).unwrap();
        w.write_all(INI.as_bytes()).unwrap();
        w.add_directory("domains/", s).unwrap();
        w.start_file("domains/d000.txt", s).unwrap();
        w.write_all(b"x\ny\n").unwrap();
        w.start_file("trees/t00_000.bin", d).unwrap();
        w.write_all(&[7u8; 300]).unwrap();
    }
    if streaming {
        // A non-seekable writer uses data descriptors, as java.util.zip does.
        let mut w = zip::ZipWriter::new_stream(Vec::new());
        w.start_file("model.ini", deflated).unwrap();
        w.write_all(INI.as_bytes()).unwrap();
        w.start_file("domains/d000.txt", deflated).unwrap();
        w.write_all(b"x\ny\n").unwrap();
        w.finish().unwrap().into_inner()
    } else {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        fill(&mut w, deflated, stored);
        w.finish().unwrap().into_inner()
    }
}

fn tar_header(name: &[u8], typeflag: u8, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn tar_entry(out: &mut Vec<u8>, name: &[u8], typeflag: u8, data: &[u8]) {
    out.extend_from_slice(&tar_header(name, typeflag, data.len()));
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
}

fn tar_seed() -> Vec<u8> {
    let mut t = Vec::new();
    tar_entry(&mut t, b"model/", b'5', b"");
    tar_entry(
        &mut t,
        b"model/MLmodel",
        b'0',
        b"flavors:\n  python_function: {}\n",
    );
    let long = format!("model/{}/weights.bin", "d".repeat(120));
    let pax = format!("{} path={long}\n", long.len() + 7 + 3);
    tar_entry(&mut t, b"./PaxHeaders/x", b'x', pax.as_bytes());
    tar_entry(&mut t, &long.as_bytes()[..100], b'0', &[1u8; 700]);
    let mut gnu = long.replace("weights", "bias").into_bytes();
    gnu.push(0);
    tar_entry(&mut t, b"././@LongLink", b'L', &gnu);
    tar_entry(&mut t, &gnu[..100], b'0', b"b");
    t.extend(std::iter::repeat_n(0u8, 1024));
    t
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Reads `bytes` as a source into a fresh directory and checks what the reader did:
/// every error is an artifact error (never I/O, never a panic), and on success every
/// name is normalized and unique, every file is on disk with its recorded size and
/// nothing else (no link, nothing unlisted, nothing outside) was written.
fn check_source(bytes: &[u8], file_name: &str) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join(file_name);
    std::fs::write(&src, bytes).unwrap();
    let out = tmp.path().join("out");
    let opts = ReadOptions {
        limits: Limits {
            max_total_bytes: 8 << 20,
            max_file_bytes: 4 << 20,
            max_entries: 2000,
            ..Limits::default()
        },
        ..ReadOptions::default()
    };
    let result = {
        let mut sink = DirSink::new(&out, |n: &str| Some(n.to_string()));
        read_source(&src, &opts, &mut sink).map(|l| (l, sink.written))
    };
    match result {
        Err(e) => {
            prop_assert_eq!(e.class(), ErrorClass::Artifact, "{}", e);
        }
        Ok((listing, written)) => {
            accepted(if file_name.ends_with(".zip") {
                "zip"
            } else {
                "tar"
            });
            let mut names = NameSet::default();
            for d in &listing.dirs {
                names.insert(d, true).map_err(TestCaseError::fail)?;
            }
            for f in &listing.files {
                let norm = normalize_entry_name(&f.path, &Limits::default());
                prop_assert_eq!(norm.as_deref(), Ok(f.path.as_str()));
                names.insert(&f.path, false).map_err(TestCaseError::fail)?;
                let meta = std::fs::symlink_metadata(out.join(&f.path)).unwrap();
                prop_assert!(meta.is_file());
                prop_assert_eq!(meta.len(), f.size);
            }
            prop_assert_eq!(written.len(), listing.files.len());
            let mut on_disk = 0;
            if out.exists() {
                let mut stack = vec![out.clone()];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).unwrap() {
                        let e = e.unwrap();
                        let ft = e.file_type().unwrap();
                        prop_assert!(!ft.is_symlink());
                        if ft.is_dir() {
                            stack.push(e.path());
                        } else {
                            on_disk += 1;
                        }
                    }
                }
            }
            prop_assert_eq!(on_disk, listing.files.len());
        }
    }
    let top: BTreeSet<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    prop_assert!(
        top.iter().all(|n| n == file_name || n == "out"),
        "{:?}",
        top
    );
    Ok(())
}

#[test]
fn archive_reader_on_mutated_zips() {
    let seeds = [zip_seed(false), zip_seed(true)];
    fuzz(
        "archive reader (mutated zips)",
        1500,
        (0..seeds.len(), vec(mutation(), 1..3)),
        |(i, muts)| check_source(&apply(&seeds[i], &muts), "a.zip"),
    );
}

#[test]
fn archive_reader_on_mutated_tars() {
    let tar = tar_seed();
    let seeds = [(tar.clone(), "a.tar"), (gzip(&tar), "a.tar.gz")];
    fuzz(
        "archive reader (mutated tar and tar.gz)",
        1500,
        (0..seeds.len(), vec(mutation(), 1..3)),
        |(i, muts)| check_source(&apply(&seeds[i].0, &muts), seeds[i].1),
    );
}

#[test]
fn archive_reader_on_random_bytes_behind_a_magic_number() {
    let magic = prop_oneof![
        Just((b"PK\x03\x04".to_vec(), "r.zip")),
        Just((b"PK\x05\x06".to_vec(), "r.zip")),
        Just((vec![0x1f, 0x8b], "r.tgz")),
        Just((Vec::new(), "r.tar")),
    ];
    fuzz(
        "archive reader (random bytes)",
        1000,
        (magic, vec(any::<u8>(), 0..1200)),
        |((head, name), tail)| {
            let mut b = head;
            b.extend(tail);
            if name == "r.tar" && b.len() >= 263 {
                b[257..263].copy_from_slice(b"ustar\0");
            }
            check_source(&b, name)
        },
    );
}

// ------------------------------------------------------------------ names

fn name_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec!['a', 'B', 'z', '/', '.', '\\', ':', 'C', ' ', '_']),
        1 => prop::sample::select(vec!['\0', '\n', '\u{1b}', '\u{202e}', '\u{200b}', '\u{feff}', '\u{301}', '\u{e9}', 'İ', 'ß', 'K']),
        1 => any::<char>(),
    ]
}

#[test]
fn entry_names() {
    let names = vec(vec(name_char(), 0..24).prop_map(String::from_iter), 1..6);
    fuzz("entry names", 5000, names, |names| {
        let limits = Limits::default();
        let mut set = NameSet::default();
        for raw in &names {
            if let Ok(n) = normalize_entry_name(raw, &limits) {
                let again = normalize_entry_name(&n, &limits);
                prop_assert_eq!(again.as_deref(), Ok(n.as_str()));
                prop_assert!(!n.starts_with('/') && !n.contains('\\') && !n.contains('\0'));
                prop_assert!(n.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
                prop_assert!(!n.chars().any(char::is_control));
                let _ = set.insert(&n, raw.ends_with('/'));
            }
        }
        Ok(())
    });
}

// ------------------------------------------------------------------ model.ini

fn ini_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "h2o_version", "mojo_version", "algo", "algorithm", "category", "uuid", "supervised",
            "n_features", "n_classes", "n_columns", "n_domains", "balance_classes",
            "default_threshold", "escape_domain_values", "submodel_count", "submodel_key_0",
            "submodel_dir_0", "base_models_num", "metalearner", "offset_column",
            "n_trees", "n_trees_per_class", "prior_class_distrib", "model_class_distrib",
            "response_column", "family", "link", "use_all_factor_levels", "cats", "nums",
            "cat_offsets", "beta", "center", "scale", "k", "centers_0",
        ]).prop_map(str::to_string),
        1 => "[a-z_]{0,12}",
    ]
}

fn ini_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Generalized Linear Modeling",
            "Gradient Boosting Machine",
            "Distributed Random Forest",
            "K-means",
            "StackedEnsemble",
            "Deep Learning",
            "Isolation Forest",
            "XGBoost",
            "Word2Vec",
            "Regression",
            "Binomial",
            "Multinomial",
            "Clustering",
            "AnomalyDetection",
            "AutoEncoder",
            "DimReduction",
            "WordEmbedding",
            "true",
            "false",
            "NaN",
            "Infinity",
            "-Infinity",
            "null",
            "[]",
            "1.00",
            "1.40",
            "3.46.0.11",
            "models/GBM/x/",
            "GBM_model",
        ])
        .prop_map(str::to_string),
        (0u64..6).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        vec(-3.0f64..3.0, 0..5).prop_map(|v| format!(
            "[{}]",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "[ -~]{0,20}",
    ]
}

fn ini_line() -> BoxedStrategy<String> {
    prop_oneof![
        2 => prop::sample::select(vec!["[info]", "[columns]", "[domains]", "[other]", "", "# c"]).prop_map(str::to_string),
        6 => (ini_key(), ini_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => "[a-zA-Z0-9 _=:]{1,12}",
        2 => (0usize..5, 0usize..5, 0usize..4).prop_map(|(c, l, f)| format!("{c}: {l} d00{f}.txt")),
        1 => "[ -~\t]{0,30}",
    ]
    .boxed()
}

/// A model.ini from lines, and domain files for it.
fn mojo_files() -> impl Strategy<Value = (String, Vec<Vec<String>>)> {
    (
        vec(ini_line(), 0..40),
        vec(vec("[a-zA-Z0-9 ]{0,6}", 0..5), 0..4),
    )
        .prop_map(|(lines, domains)| (lines.join("\n"), domains))
}

#[test]
fn model_ini_and_mojo_validation() {
    use h2o3_mojo::ini::ModelIni;
    use h2o3_mojo::{Mojo, MojoFiles};

    /// Loads `files` as a MOJO and, when it loads, derives everything a processor asks
    /// of it.
    fn load_mojo(files: &MojoFiles) {
        if let Ok(m) = Mojo::load(files, "", 0) {
            accepted("mojo");
            let _ = m.input_schema();
            let _ = m.output_schema();
            let _ = m.metadata();
        }
    }

    fuzz(
        "model.ini (grammar-shaped)",
        4000,
        mojo_files(),
        |(text, domains)| {
            let _ = ModelIni::parse(&text);
            // The whole validation, with the text as the root or as a sub-model's model.ini.
            let mut contents = BTreeMap::new();
            contents.insert("model.ini".to_string(), text.as_bytes().to_vec());
            contents.insert(
                "models/GBM/x/model.ini".to_string(),
                text.replace("StackedEnsemble", "GBM").into_bytes(),
            );
            for (i, levels) in domains.iter().enumerate() {
                contents.insert(
                    format!("domains/d00{i}.txt"),
                    levels.join("\n").into_bytes(),
                );
            }
            let mut names: BTreeSet<String> = contents.keys().cloned().collect();
            names.insert("trees/t00_000.bin".into());
            let files = MojoFiles { contents, names };
            load_mojo(&files);
            Ok(())
        },
    );
    fuzz(
        "model.ini (line edits and byte mutations of a valid MOJO)",
        4000,
        (
            line_edits(ini_line()),
            vec(mutation(), 0..2),
            vec("[a-z]{1,3}", 0..4),
        ),
        |(edits, muts, levels)| {
            let bytes = apply(edit_lines(INI, &edits).as_bytes(), &muts);
            let mut contents = BTreeMap::new();
            contents.insert("model.ini".to_string(), bytes);
            let domain = if levels.is_empty() {
                "x\ny\n".to_string()
            } else {
                levels.join("\n")
            };
            contents.insert("domains/d000.txt".to_string(), domain.into_bytes());
            let names = contents.keys().cloned().collect();
            let files = MojoFiles { contents, names };
            load_mojo(&files);
            Ok(())
        },
    );
}

// ------------------------------------------------------------------ MLmodel

fn yaml_line() -> BoxedStrategy<String> {
    let key = prop::sample::select(vec![
        "artifact_path",
        "flavors",
        "python_function",
        "loader_module",
        "python_version",
        "env",
        "conda",
        "virtualenv",
        "data",
        "model_path",
        "signature",
        "inputs",
        "outputs",
        "params",
        "mlflow_version",
        "model_uuid",
        "utc_time_created",
        "saved_input_example_info",
        "metadata",
        "sklearn",
        "onnx",
        "pickled_model",
        "serialization_format",
        "code",
        "predict_fn",
        "sklearn_version",
        "onnx_version",
        "providers",
        "<<",
        "? complex",
    ]);
    let value = prop_oneof![
        Just(String::new()),
        Just("mlflow.sklearn".to_string()),
        Just("3.11.7".to_string()),
        Just("'[{\"type\": \"double\", \"name\": \"x\"}]'".to_string()),
        Just("'[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, 4]}}]'".to_string()),
        Just("&a {x: 1}".to_string()),
        Just("*a".to_string()),
        Just("!!python/object:os.system ls".to_string()),
        Just("[1, 2, {a: b}]".to_string()),
        Just("|\n  text".to_string()),
        "[ -~]{0,16}",
    ];
    prop_oneof![
        4 => (0usize..4, key, value).prop_map(|(i, k, v)| format!("{}{k}: {v}", "  ".repeat(i))),
        1 => (0usize..4, "[ -~]{0,12}").prop_map(|(i, v)| format!("{}- {v}", "  ".repeat(i))),
        1 => "[ -~\t]{0,20}",
    ]
    .boxed()
}

/// The `MLmodel` MLflow 3 writes for a scikit-learn model.
const MLMODEL_SEED: &str = r#"artifact_path: model
flavors:
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
    sklearn_version: 1.5.1
mlflow_version: 3.17.2
model_size_bytes: 1234
model_uuid: 0f0ef3d54f244b6ca3f35e0b2a31e7d1
signature:
  inputs: '[{"type": "double", "name": "x", "required": true}, {"type": "string", "name": "s", "required": false}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
utc_time_created: '2026-01-01 00:00:00.000000'
"#;

#[test]
fn mlmodel_yaml_and_signature() {
    use mlflow_model::mlmodel::MlModel;
    use mlflow_model::signature::{parse_schema, Side};
    fuzz(
        "MLmodel (line edits and byte mutations of a real one)",
        3000,
        (line_edits(yaml_line()), vec(mutation(), 0..2)),
        |(edits, muts)| {
            let bytes = apply(edit_lines(MLMODEL_SEED, &edits).as_bytes(), &muts);
            if let Ok(v) = mlflow_model::yaml::parse(&bytes) {
                if let Ok(m) = MlModel::from_value(v) {
                    accepted("MLmodel");
                    let _ = m.flavor_names();
                }
            }
            Ok(())
        },
    );
    fuzz(
        "MLmodel (grammar-shaped YAML)",
        2000,
        vec(yaml_line(), 0..30),
        |lines| {
            let text = lines.join("\n");
            if let Ok(v) = mlflow_model::yaml::parse(text.as_bytes()) {
                if let Ok(m) = MlModel::from_value(v) {
                    accepted("MLmodel");
                    let _ = m.flavor_names();
                }
            }
            Ok(())
        },
    );
    let column = prop_oneof![
        Just(r#"{"type": "double", "name": "x"}"#.to_string()),
        Just(r#"{"type": "string", "name": "s", "required": false}"#.to_string()),
        Just(
            r#"{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}"#
                .to_string()
        ),
        Just(r#"{"type": "array", "items": {"type": "long"}, "name": "a"}"#.to_string()),
        Just(
            r#"{"type": "object", "properties": {"p": {"type": "boolean"}}, "name": "o"}"#
                .to_string()
        ),
        Just(r#"{"type": "map", "values": {"type": "binary"}}"#.to_string()),
        "[ -~]{0,20}",
    ];
    fuzz(
        "MLmodel signature schema (JSON-shaped)",
        3000,
        (vec(column, 0..5), vec(mutation(), 0..3)),
        |(cols, muts)| {
            let text = format!("[{}]", cols.join(", "));
            let bytes = apply(text.as_bytes(), &muts);
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_schema(&text, Side::Input);
            let _ = parse_schema(&text, Side::Output);
            Ok(())
        },
    );
}

// ------------------------------------------------------------------ pipeline.toml

const TOML_SEED: &str = r#"mojo_version = 2.0
uuid = '0f0ef3d5-4f24-4b6c-a3f3-5e0b2a31e7d1'
[columns]
features = [
  ['a_int32', 'int32'],
  ['d_float64', 'float64'],
  ['e_str', 'str'],
]
outputs = [
  ['y', 'float64'],
]
interim = [
  ['x', 'float64'],
]
[[transforms]]
  name = "ExecPipe"
  inputs = ["a_int32", "d_float64"]
  outputs = ["x"]
  filename = "pipeline.toml"
  pwd = "predict_0/0_XGBoostModel_0"
[[transforms]]
  name = "Agg"
  inputs = ["x"]
  outputs = ["y"]
  op = "sum"
"#;

/// The nested descriptor the seed's `ExecPipe` calls (DAI writes `[None]`, not TOML).
const TOML_NESTED: &str = "mojo_version = 2.0\nuuid = 'nested'\n[columns]\nfeatures = [['a_int32', 'int32']]\noutputs = [['x', 'float64']]\n[[transforms]]\n  name = \"Map\"\n  missing = [None]\n";

#[derive(Debug, Clone)]
enum LineEdit {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, String),
    Insert(usize, String),
}

fn line_edits<S: Strategy<Value = String> + Clone + 'static>(
    replacement: S,
) -> impl Strategy<Value = Vec<LineEdit>> {
    vec(
        prop_oneof![
            any::<usize>().prop_map(LineEdit::Delete),
            any::<usize>().prop_map(LineEdit::Duplicate),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
            (any::<usize>(), replacement.clone()).prop_map(|(a, l)| LineEdit::Replace(a, l)),
            (any::<usize>(), replacement).prop_map(|(a, l)| LineEdit::Insert(a, l)),
        ],
        0..4,
    )
}

/// Applies line edits to a text seed.
fn edit_lines(seed: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            LineEdit::Delete(i) => {
                lines.remove(i % n);
            }
            LineEdit::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
            LineEdit::Replace(i, l) => lines[i % n] = l.clone(),
            LineEdit::Insert(i, l) => lines.insert(i % (n + 1), l.clone()),
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn toml_line() -> BoxedStrategy<String> {
    prop_oneof![
        Just("[columns]".to_string()),
        Just("[[transforms]]".to_string()),
        Just("features = []".to_string()),
        Just("outputs = [['y', 'nonsense']]".to_string()),
        Just("filename = '../../pipeline.toml'".to_string()),
        Just("pwd = '/etc'".to_string()),
        Just("mojo_version = 'x'".to_string()),
        "[a-z_]{1,8} = [\\[\\]'a-z0-9, ]{0,20}",
        "[ -~]{0,24}",
    ]
    .boxed()
}

fn pipeline_files(root: &str, bytes: Vec<u8>, nested: Option<&[u8]>) -> dai_mojo::PipelineFiles {
    let mut contents = BTreeMap::new();
    contents.insert(root.to_string(), bytes);
    if let Some(n) = nested {
        let name = if root.ends_with(".pb") {
            "mojo/predict_stacked_base_x/0_Model_0/pipeline.pb"
        } else {
            "mojo/predict_0/0_XGBoostModel_0/pipeline.toml"
        };
        contents.insert(name.to_string(), n.to_vec());
    }
    let mut names: BTreeSet<String> = contents.keys().cloned().collect();
    names.insert("mojo/xgb.model".into());
    dai_mojo::PipelineFiles { names, contents }
}

#[test]
fn pipeline_toml() {
    fuzz(
        "pipeline.toml (line edits and byte mutations of a seed)",
        3000,
        (
            line_edits(toml_line()),
            vec(mutation(), 0..2),
            any::<bool>(),
        ),
        |(edits, muts, nested)| {
            let bytes = apply(edit_lines(TOML_SEED, &edits).as_bytes(), &muts);
            let nested_text = nested.then_some(TOML_NESTED.as_bytes());
            let files = pipeline_files("mojo/pipeline.toml", bytes, nested_text);
            if let Ok(p) = dai_mojo::pipeline::read_pipeline(Path::new("pipeline.mojo"), &files) {
                accepted("pipeline.toml");
                let _ = p.capabilities();
            }
            Ok(())
        },
    );
}

// ------------------------------------------------------------------ protobuf

/// A protobuf message as a tree, encoded with the wire format.
#[derive(Debug, Clone)]
enum PbField {
    Varint(u32, u64),
    Bytes(u32, Vec<u8>),
    Msg(u32, Vec<PbField>),
    Fixed32(u32, u32),
    Fixed64(u32, u64),
    /// A raw key with any wire type (groups, invalid types).
    Raw(u32, u8),
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
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

fn encode(fields: &[PbField], out: &mut Vec<u8>) {
    for f in fields {
        match f {
            PbField::Varint(n, v) => {
                put_varint((*n as u64) << 3, out);
                put_varint(*v, out);
            }
            PbField::Bytes(n, b) => {
                put_varint(((*n as u64) << 3) | 2, out);
                put_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            PbField::Msg(n, inner) => {
                let mut body = Vec::new();
                encode(inner, &mut body);
                put_varint(((*n as u64) << 3) | 2, out);
                put_varint(body.len() as u64, out);
                out.extend(body);
            }
            PbField::Fixed32(n, v) => {
                put_varint(((*n as u64) << 3) | 5, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            PbField::Fixed64(n, v) => {
                put_varint(((*n as u64) << 3) | 1, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            PbField::Raw(n, wt) => put_varint(((*n as u64) << 3) | (*wt as u64 & 7), out),
        }
    }
}

fn pb_fields() -> impl Strategy<Value = Vec<PbField>> {
    let number = prop_oneof![8 => 1u32..18, 1 => 18u32..50, 1 => any::<u32>().prop_map(|n| n >> 3)];
    let text = prop_oneof![
        Just(b"target".to_vec()),
        Just(b"mojo/xgb.model".to_vec()),
        Just(b"mojo/predict_stacked_base_x/0_Model_0/pipeline.pb".to_vec()),
        Just(b"../../etc/passwd".to_vec()),
        Just(b"1.10.4".to_vec()),
        vec(any::<u8>(), 0..12),
    ];
    let leaf = prop_oneof![
        (number.clone(), prop_oneof![0u64..10, any::<u64>()])
            .prop_map(|(n, v)| PbField::Varint(n, v)),
        (number.clone(), text).prop_map(|(n, b)| PbField::Bytes(n, b)),
        (number.clone(), any::<u32>()).prop_map(|(n, v)| PbField::Fixed32(n, v)),
        (number.clone(), any::<u64>()).prop_map(|(n, v)| PbField::Fixed64(n, v)),
        (number.clone(), 0u8..8).prop_map(|(n, w)| PbField::Raw(n, w)),
    ];
    let tree = leaf.prop_recursive(4, 64, 6, move |inner| {
        (number.clone(), vec(inner, 0..6)).prop_map(|(n, fs)| PbField::Msg(n, fs))
    });
    vec(tree, 0..12)
}

/// A protobuf pipeline root that the reader accepts (the shape of DAI 1.10's
/// `mojo.spec.Pipeline`, as dai-mojo's tests build it).
fn pb_seed() -> Vec<PbField> {
    use PbField::*;
    let frame = |field: u32, cols: &[(&str, u32)]| {
        Msg(
            field,
            cols.iter()
                .map(|(n, t)| {
                    Msg(
                        1,
                        vec![Bytes(1, n.as_bytes().to_vec()), Bytes(*t, Vec::new())],
                    )
                })
                .collect(),
        )
    };
    vec![
        Varint(1, 2),
        Bytes(2, b"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".to_vec()),
        Bytes(3, b"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".to_vec()),
        Msg(4, vec![Varint(1, 1_647_057_133), Varint(2, 997_247_000)]),
        Bytes(5, b"NA".to_vec()),
        frame(
            6,
            &[
                ("p_bool", 2),
                ("p_int32", 3),
                ("p_float64", 6),
                ("p_str", 7),
                ("p_time", 8),
            ],
        ),
        frame(7, &[("target", 6)]),
        frame(8, &[("interim", 6)]),
        Msg(
            9,
            vec![
                Varint(1, 2),
                Bytes(2, b"interim".to_vec()),
                Bytes(3, b"target".to_vec()),
                Msg(43, vec![]),
            ],
        ),
        Msg(12, vec![Varint(1, 1), Bytes(2, b"GLMModel".to_vec())]),
        Bytes(13, b"1.10.4".to_vec()),
        frame(14, &[("0_p_float64", 6)]),
    ]
}

#[test]
fn protobuf_readers() {
    fuzz(
        "protobuf (edits of a valid pipeline.pb)",
        4000,
        (
            vec((any::<usize>(), any::<bool>()), 0..3),
            pb_fields(),
            vec(mutation(), 0..2),
        ),
        |(edits, extra, muts)| {
            let mut fields = pb_seed();
            for (i, replace) in edits {
                let n = fields.len();
                if n == 0 {
                    break;
                }
                match (replace, extra.get(i % extra.len().max(1))) {
                    (true, Some(f)) => fields[i % n] = f.clone(),
                    _ => {
                        fields.remove(i % n);
                    }
                }
            }
            fields.extend(extra.into_iter().take(2));
            let mut bytes = Vec::new();
            encode(&fields, &mut bytes);
            let bytes = apply(&bytes, &muts);
            let files = pipeline_files("mojo/pipeline.pb", bytes.clone(), None);
            if dai_mojo::pipeline::read_pipeline(Path::new("pipeline.mojo"), &files).is_ok() {
                accepted("pipeline.pb");
            }
            let _ = mlflow_model::onnx::external_locations(&mut &bytes[..]);
            Ok(())
        },
    );
    fuzz(
        "protobuf (generated messages and byte mutations)",
        4000,
        (pb_fields(), vec(mutation(), 0..3), any::<bool>()),
        |(fields, muts, nested)| {
            let mut bytes = Vec::new();
            encode(&fields, &mut bytes);
            let bytes = apply(&bytes, &muts);
            let _ = dai_mojo::wire::Msg::new(&bytes).collect();
            let nested_bytes = nested.then_some(&bytes[..]);
            let files = pipeline_files("mojo/pipeline.pb", bytes.clone(), nested_bytes);
            if dai_mojo::pipeline::read_pipeline(Path::new("pipeline.mojo"), &files).is_ok() {
                accepted("pipeline.pb");
            }
            let _ = mlflow_model::onnx::external_locations(&mut &bytes[..]);
            Ok(())
        },
    );
}

/// The ONNX graph reader and its column mapping on byte mutations of the testdata ONNX
/// models (skl2onnx trees, ZipMap, a pipeline with string inputs, an onnx.helper
/// network): never a panic, and what it reads maps without one.
#[test]
fn onnx_graph_reader() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/onnx");
    let seeds: Vec<Vec<u8>> = ["regressor", "classifier_zipmap", "pipeline", "mlp"]
        .iter()
        .map(|n| std::fs::read(root.join(n).join("model.onnx")).unwrap())
        .collect();
    for s in &seeds {
        let m = mlflow_model::onnx::graph::read_model(&mut &s[..]).unwrap();
        assert!(mlflow_model::onnx::schema::map_model(&m)
            .unmapped
            .is_empty());
    }
    fuzz(
        "onnx graph (mutated testdata models)",
        3000,
        (0..seeds.len(), vec(mutation(), 1..4)),
        |(i, muts)| {
            let bytes = apply(&seeds[i], &muts);
            if let Ok(m) = mlflow_model::onnx::graph::read_model(&mut &bytes[..]) {
                accepted("model.onnx");
                let map = mlflow_model::onnx::schema::map_model(&m);
                for t in &map.inputs {
                    prop_assert_eq!(t.columns.len(), t.width);
                }
            }
            Ok(())
        },
    );
}
