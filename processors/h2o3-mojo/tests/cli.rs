//! Runs the real `h2o3-mojo-processor` binary on testdata MOJOs, the conformance corpus
//! and hostile or broken inputs built here, in temp dirs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// SIGKILL, full-disk and read-only-target tests of the binary.
mod crash;

/// Objects in a real S3 server, read straight into the target (storage-initializer form).
mod s3;

const BIN: &str = env!("CARGO_BIN_EXE_h2o3-mojo-processor");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn testdata() -> PathBuf {
    repo().join("testdata/h2o3")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SOURCE_PATH")
        .env_remove("TARGET_PATH")
        .output()
        .expect("binary runs")
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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap()
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(testdata().join("expected.json")).unwrap()).unwrap()
}

#[test]
fn every_testdata_mojo_is_processed_with_its_expected_schema() {
    let exp = expected();
    let models = exp["models"].as_array().expect("models list");
    assert!(models.len() >= 20, "testdata has {} models", models.len());
    for m in models {
        let name = m["name"].as_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let src = testdata().join(m["mojo"].as_str().unwrap());
        let o = process(&src, &target, &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v = run(&["verify", target.to_str().unwrap()]);
        assert!(v.status.success(), "{name}: verify: {}", stderr(&v));
        let man = manifest(&target);
        assert_eq!(man["input_schema"], m["inputs"], "{name}: input schema");
        let outs: Vec<&str> = man["output_schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = m["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(outs, want, "{name}: output names");
        assert_eq!(man["model_type"], "h2o3_mojo");
        assert_eq!(man["artifact_type"], "h2o3/mojo");
        assert_eq!(man["metadata"]["algo"], m["algo"], "{name}");
        assert_eq!(man["metadata"]["category"], m["category"], "{name}");
        assert_eq!(man["payload"], "model.mojo");
        // The payload is the MOJO byte for byte.
        assert_eq!(
            std::fs::read(target.join("model.mojo")).unwrap(),
            std::fs::read(&src).unwrap(),
            "{name}: payload"
        );
        if let Some(resp) = m.get("response_domain") {
            assert_eq!(&man["metadata"]["response_domain"], resp, "{name}");
        }
    }
}

/// The encoding facts `generate.py` took from genmodel (`genmodel_encoding`: what its
/// wrapper applies; `categorical_encoding`: the training parameter; `not_inputs`: the
/// `[columns]` after the features; `contributions`: genmodel computes them) against the
/// manifest's `metadata.scoring` and capabilities.
#[test]
fn encodings_and_columns_that_are_not_inputs_are_in_the_metadata() {
    let exp = expected();
    let models: Vec<&Value> = exp["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("genmodel_encoding").is_some())
        .collect();
    assert!(models.len() >= 26, "{} encoding models", models.len());
    for m in models {
        let name = m["name"].as_str().unwrap();
        let file = testdata().join(m["mojo"].as_str().unwrap());
        let o = run(&["inspect", "--json", file.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let d: Value = serde_json::from_slice(&o.stdout).unwrap();
        let scoring = &d["metadata"]["scoring"];
        let enc = &scoring["categorical_encoding"];
        let (genmodel, training) = (
            m["genmodel_encoding"].as_str().unwrap(),
            m["categorical_encoding"].as_str().unwrap(),
        );
        match (genmodel, training) {
            ("AUTO", "AUTO" | "Enum") => assert!(enc.is_null(), "{name}: {enc}"),
            ("AUTO", "SortByResponse") => {
                assert_eq!(enc["applied_by"], "model", "{name}: {enc}")
            }
            ("AUTO", t) => {
                assert_eq!(
                    (&enc["scheme"], &enc["applied_by"]),
                    (&t.into(), &"client".into()),
                    "{name}"
                );
                let original = enc["original_columns"].as_array().unwrap();
                assert_eq!(original.len(), 5, "{name}: {enc}");
            }
            (g, _) => {
                assert_eq!(
                    (&enc["scheme"], &enc["applied_by"]),
                    (&g.into(), &"scorer".into()),
                    "{name}"
                );
                let inputs: Vec<&Value> = d["input_schema"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| &c["name"])
                    .collect();
                let described: Vec<&Value> = enc["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| &c["name"])
                    .collect();
                assert_eq!(described, inputs[..described.len()], "{name}");
            }
        }
        let offset = d["metadata"]["offset_column"].as_str();
        let not_inputs: Vec<&str> = m
            .get("not_inputs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|c| Some(*c) != offset)
                    .collect()
            })
            .unwrap_or_default();
        let recorded: Vec<&str> = scoring["columns_not_inputs"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(recorded, not_inputs, "{name}");
        let caps: Vec<&str> = d["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let has_contributions = caps.iter().any(|c| c.starts_with("CONTRIBUTION_"));
        assert_eq!(
            has_contributions,
            m.get("contributions").is_some(),
            "{name}: {caps:?}"
        );
    }
}

#[test]
fn output_types_follow_the_category() {
    let cases = [
        ("gbm_binomial.zip", vec!["String", "Float64", "Float64"]),
        ("gbm_regression.zip", vec!["Float64"]),
        ("kmeans.zip", vec!["Int32"]),
        ("isolation_forest.zip", vec!["Float64", "Float64"]),
        (
            "rulefit_multinomial_rules.zip",
            vec!["String", "Float64", "Float64", "Float64"],
        ),
        ("isotonic_regression.zip", vec!["Float64"]),
        ("uplift_drf.zip", vec!["Float64", "Float64", "Float64"]),
        (
            "target_encoder_binomial_blending.zip",
            vec!["Float64", "Float64", "Float64"],
        ),
    ];
    for (file, types) in cases {
        let o = run(&["inspect", "--json", testdata().join(file).to_str().unwrap()]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let d: Value = serde_json::from_slice(&o.stdout).unwrap();
        let got: Vec<&str> = d["output_schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(got, types, "{file}");
    }
}

#[test]
fn target_encoder_manifests_say_what_score_returns() {
    // (MOJO, blending, inflection point, smoothing, encodings as `from` → `to`)
    type Case<'a> = (
        &'a str,
        bool,
        Value,
        Value,
        Vec<(Vec<&'a str>, Vec<&'a str>)>,
    );
    let cases: Vec<Case> = vec![
        (
            "target_encoder_binomial",
            false,
            Value::Null,
            Value::Null,
            vec![
                (vec!["color"], vec!["color_te"]),
                (vec!["size"], vec!["size_te"]),
            ],
        ),
        (
            "target_encoder_binomial_blending",
            true,
            json!(3.0),
            json!(2.0),
            vec![
                (vec!["color"], vec!["color_te"]),
                (vec!["size"], vec!["size_te"]),
                (vec!["color", "size"], vec!["color:size_te"]),
            ],
        ),
        (
            "target_encoder_multinomial",
            true,
            json!(5.0),
            json!(4.0),
            vec![
                (
                    vec!["color"],
                    vec!["color_versicolor_te", "color_virginica_te"],
                ),
                (
                    vec!["size"],
                    vec!["size_versicolor_te", "size_virginica_te"],
                ),
            ],
        ),
    ];
    for (name, blending, inflection, smoothing, encodings) in cases {
        let o = run(&[
            "inspect",
            "--json",
            testdata().join(format!("{name}.zip")).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let d: Value = serde_json::from_slice(&o.stdout).unwrap();
        let te = &d["metadata"]["scoring"]["target_encoding"];
        assert_eq!(te["blending"], json!(blending), "{name}: {te}");
        assert_eq!(te["inflection_point"], inflection, "{name}");
        assert_eq!(te["smoothing"], smoothing, "{name}");
        assert!(
            te["outputs"]
                .as_str()
                .unwrap()
                .contains("encoded columns only"),
            "{name}"
        );
        assert!(te["noise"].as_str().unwrap().starts_with("none"), "{name}");
        let got: Vec<(Vec<&str>, Vec<&str>)> = te["encodings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let names = |k: &str| -> Vec<&str> {
                    e[k].as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect()
                };
                (names("from"), names("to"))
            })
            .collect();
        assert_eq!(got, encodings, "{name}");
        let outputs: Vec<&str> = encodings.iter().flat_map(|(_, to)| to.clone()).collect();
        let schema: Vec<&str> = d["output_schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            schema, outputs,
            "{name}: the output schema is the encoded columns"
        );
        assert_eq!(d["capabilities"], json!(["SCORE"]), "{name}");
    }
}

#[test]
fn manifest_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let src = testdata().join("stacked_ensemble_binomial.zip");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert!(process(&src, &a, &[]).status.success());
    assert!(process(&src, &b, &[]).status.success());
    assert_eq!(
        std::fs::read(a.join("model.json")).unwrap(),
        std::fs::read(b.join("model.json")).unwrap()
    );
}

/// Writes the entries of a zip into a folder (the test's own trusted data).
fn unpack_trusted(zip_path: &Path, dest: &Path) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let p = dest.join(f.name().unwrap().to_string());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut out = std::fs::File::create(&p).unwrap();
        std::io::copy(&mut f, &mut out).unwrap();
    }
}

#[test]
fn unpacked_folder_becomes_a_zip_payload_with_the_same_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let src = testdata().join("gbm_multinomial.zip");
    let folder = tmp.path().join("mojo-folder");
    unpack_trusted(&src, &folder);
    let (from_zip, from_dir) = (tmp.path().join("z"), tmp.path().join("d"));
    assert!(process(&src, &from_zip, &[]).status.success());
    let o = process(&folder, &from_dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (mz, md) = (manifest(&from_zip), manifest(&from_dir));
    assert_eq!(mz["input_schema"], md["input_schema"]);
    assert_eq!(mz["output_schema"], md["output_schema"]);
    assert_eq!(md["source"]["kind"], "directory");
    // The packed payload is itself a valid MOJO zip.
    let again = tmp.path().join("again");
    let o = process(&from_dir.join("model.mojo"), &again, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(manifest(&again)["output_schema"], mz["output_schema"]);
}

#[test]
fn runs_from_environment_variables_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    std::fs::create_dir(&target).unwrap(); // an empty volume mount
    let o = Command::new(BIN)
        .env("SOURCE_PATH", testdata().join("glm_binomial.zip"))
        .env("TARGET_PATH", &target)
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(target.join("model.json").exists());
    // JSON logs: every stderr line is a JSON object.
    for line in stderr(&o).lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
}

/// GAM and CoxPH models record how their inputs become the scored row.
#[test]
fn gam_and_coxph_scoring_facts_are_in_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let scoring = |name: &str| {
        let target = tmp.path().join(name);
        let o = process(&testdata().join(format!("{name}.zip")), &target, &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        manifest(&target)["metadata"]["scoring"].clone()
    };
    let gam = scoring("gam_several");
    let cols = gam["gam"]["columns"].as_array().unwrap();
    let got: Vec<(Value, &str, usize)> = cols
        .iter()
        .map(|c| {
            (
                c["predictors"].clone(),
                c["spline"].as_str().unwrap(),
                c["expanded_columns"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (serde_json::json!(["age"]), "cubic regression spline", 4),
            (serde_json::json!(["dose"]), "cubic regression spline", 3),
            (
                serde_json::json!(["age", "score"]),
                "thin plate regression spline",
                6
            ),
        ]
    );
    assert_eq!(cols[2]["expanded_columns"][0], "age_score_1_center_tp_0");
    assert_eq!(gam["gam"]["features"], serde_json::json!(["color", "x3"]));
    let orders: Vec<Value> = scoring("gam_binomial")["gam"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["spline_order"].clone())
        .collect();
    assert_eq!(
        orders,
        serde_json::json!([null, 2, 3, null])
            .as_array()
            .unwrap()
            .clone()
    );

    let cox = scoring("coxph_stratified");
    assert_eq!(
        cox["coxph"],
        serde_json::json!({"stratify_by": ["grp", "site"], "strata": 6,
            "interaction_columns": [], "unused_columns": ["__strata", "stop"]})
    );
    let cox = scoring("coxph_interactions");
    assert_eq!(
        cox["coxph"]["interaction_columns"],
        serde_json::json!(["color_grp", "age_score", "color_age"])
    );
    // Models scored from their [columns] as they are record nothing.
    assert_eq!(scoring("glm_ordinal"), Value::Null);
}

#[test]
fn conformance_corpus() {
    let Some(dir) = std::env::var_os("CONFORMANCE_DIR") else {
        eprintln!("skipped: CONFORMANCE_DIR not set");
        return;
    };
    let dir = PathBuf::from(dir).join("h2o3");
    assert!(
        dir.is_dir(),
        "CONFORMANCE_DIR set but {} is missing",
        dir.display()
    );
    let snap: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/conformance_h2o3.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let snap = snap.as_object().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let want = snap
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: not in the snapshot"));
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let o = process(&path, &target, &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(run(&["verify", target.to_str().unwrap()]).status.success());
        let man = manifest(&target);
        assert_eq!(man["input_schema"], want["input_schema"], "{name}");
        let outs: Vec<Value> = man["output_schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(Value::Array(outs), want["outputs"], "{name}");
        for key in ["algo", "category", "h2o_version", "mojo_version"] {
            assert_eq!(man["metadata"][key], want[key], "{name}: {key}");
        }
        seen += 1;
    }
    assert_eq!(seen, snap.len(), "every snapshot entry has its file");
}

// ------------------------------------------------------------------ bad inputs

/// A small GLM regression that the native loader accepts (categorical `b` first, as GLM
/// MOJOs order their columns).
const INI: &str = "[info]\nh2o_version = 3.46.0.11\nmojo_version = 1.00\nalgo = glm\nalgorithm = Generalized Linear Modeling\ncategory = Regression\nuuid = 42\nsupervised = true\nn_features = 2\nn_classes = 1\nn_columns = 3\nn_domains = 1\nbalance_classes = false\ndefault_threshold = 0.5\nuse_all_factor_levels = true\ncats = 1\ncat_offsets = [0, 2]\nnums = 1\nmean_imputation = false\nbeta = [0.5, -0.5, 2.0, 1.0]\nfamily = gaussian\nlink = identity\n\n[columns]\nb\na\ny\n\n[domains]\n0: 2 d000.txt\n";

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

fn zip_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for e in entries {
        match e {
            Entry::File(name, data) => {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
            Entry::Symlink(name, target) => w.add_symlink(*name, *target, opts).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

/// Renames an entry in both its local and central headers (same length), forging what
/// the zip writer refuses to write.
fn rename_entry(mut zip: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let (f, t) = (from.as_bytes(), to.as_bytes());
    let mut i = 0;
    while i + f.len() <= zip.len() {
        if &zip[i..i + f.len()] == f {
            zip[i..i + f.len()].copy_from_slice(t);
        }
        i += 1;
    }
    zip
}

fn good_mojo_with(ini: &str, extra: &[Entry]) -> Vec<u8> {
    let mut entries = vec![
        Entry::File("model.ini", ini.as_bytes()),
        Entry::File("domains/d000.txt", b"x\ny\n"),
    ];
    for e in extra {
        entries.push(match e {
            Entry::File(n, d) => Entry::File(n, d),
            Entry::Symlink(n, t) => Entry::Symlink(n, t),
        });
    }
    zip_bytes(&entries)
}

#[test]
fn bad_inputs_each_get_their_own_error() {
    let good = good_mojo_with(INI, &[]);
    let truncated = good[..good.len() / 2].to_vec();
    struct Case {
        name: &'static str,
        source: Vec<u8>,
        extra: &'static [&'static str],
        code: i32,
        needle: &'static str,
    }
    let cases = vec![
        Case {
            name: "not a zip",
            source: b"hello, I am a text file\n".to_vec(),
            extra: &[],
            code: 3,
            needle: "is not a zip, tar, tar.gz or directory",
        },
        Case {
            name: "empty file",
            source: Vec::new(),
            extra: &[],
            code: 3,
            needle: "the file is empty",
        },
        Case {
            name: "truncated zip",
            source: truncated,
            extra: &[],
            code: 3,
            needle: "truncated",
        },
        Case {
            name: "no model.ini",
            source: zip_bytes(&[Entry::File("readme.txt", b"hi")]),
            extra: &[],
            code: 3,
            needle: "no model.ini",
        },
        Case {
            name: "required key missing",
            source: good_mojo_with(&INI.replace("category = Regression\n", ""), &[]),
            extra: &[],
            code: 3,
            needle: "required key `category` is missing",
        },
        Case {
            name: "algorithm missing",
            source: good_mojo_with(
                &INI.replace("algorithm = Generalized Linear Modeling\n", ""),
                &[],
            ),
            extra: &[],
            code: 3,
            needle: "required key `algorithm` is missing",
        },
        Case {
            name: "n_columns disagrees",
            source: good_mojo_with(&INI.replace("n_columns = 3", "n_columns = 4"), &[]),
            extra: &[],
            code: 3,
            needle: "n_columns = 4 but [columns] lists 3 names",
        },
        Case {
            name: "domain file missing",
            source: zip_bytes(&[Entry::File("model.ini", INI.as_bytes())]),
            extra: &[],
            code: 3,
            needle: "domain file of column \"b\" is missing",
        },
        Case {
            name: "wrong level count",
            source: zip_bytes(&[
                Entry::File("model.ini", INI.as_bytes()),
                Entry::File("domains/d000.txt", b"x\ny\nz\n"),
            ]),
            extra: &[],
            code: 3,
            needle: "has 3 levels but model.ini declares 2",
        },
        Case {
            name: "tree algorithm without trees",
            source: good_mojo_with(&INI.replace("algo = glm", "algo = gbm"), &[]),
            extra: &[],
            code: 3,
            needle: "needs tree files",
        },
        Case {
            name: "entry ../x",
            source: good_mojo_with(INI, &[Entry::File("../x", b"evil")]),
            extra: &[],
            code: 3,
            needle: "parent-directory component",
        },
        Case {
            name: "entry /x",
            source: good_mojo_with(INI, &[Entry::File("/x", b"evil")]),
            extra: &[],
            code: 3,
            needle: "absolute path",
        },
        Case {
            name: "symlink entry",
            source: good_mojo_with(INI, &[Entry::Symlink("link", "/etc/passwd")]),
            extra: &[],
            code: 3,
            needle: "symbolic link",
        },
        Case {
            name: "entry over the size limit",
            source: good_mojo_with(INI, &[Entry::File("big.bin", &[7u8; 5000])]),
            extra: &["--max-file-bytes", "4K"],
            code: 3,
            needle: "file size limit exceeded at entry \"big.bin\"",
        },
        Case {
            name: "duplicate entry",
            source: rename_entry(
                good_mojo_with(INI, &[Entry::File("model.inj", INI.as_bytes())]),
                "model.inj",
                "model.ini",
            ),
            extra: &[],
            code: 3,
            needle: "duplicate entry",
        },
    ];
    for c in cases {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("upload.zip");
        std::fs::write(&src, &c.source).unwrap();
        let target = tmp.path().join("out");
        let o = process(&src, &target, c.extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(c.code), "{}: {err}", c.name);
        assert!(
            err.contains(c.needle),
            "{}: expected {:?} in {err}",
            c.name,
            c.needle
        );
        assert!(
            !target.join("model.json").exists(),
            "{}: model.json written",
            c.name
        );
        // Nothing outside the target, and nothing left inside it.
        let mut top: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert!(
            top == ["out", "upload.zip"] || top == ["upload.zip"],
            "{}: {top:?}",
            c.name
        );
        if target.exists() {
            assert_eq!(
                std::fs::read_dir(&target).unwrap().count(),
                0,
                "{}: target not empty",
                c.name
            );
        }
    }
}

#[test]
fn target_rules() {
    let src = testdata().join("gbm_regression.zip");
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("stray.txt"), "x").unwrap();

    let o = process(&src, &target, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert!(!target.join("model.json").exists());

    let o = process(&src, &target, &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!target.join("stray.txt").exists());
    assert!(run(&["verify", target.to_str().unwrap()]).status.success());

    // A stale staging directory from a killed run is cleaned up, not an obstacle.
    let t2 = tmp.path().join("t2");
    std::fs::create_dir_all(t2.join(".staging-1-2/half")).unwrap();
    let o = process(&src, &t2, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!t2.join(".staging-1-2").exists());

    // Missing parent of the target: configuration error... reported as I/O with the path.
    let o = process(&src, &tmp.path().join("no/such/dir"), &[]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));

    // Missing source, no arguments.
    let o = process(&tmp.path().join("nope.zip"), &tmp.path().join("t3"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"));
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SOURCE_PATH"));
}

#[test]
fn verify_catches_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    assert!(process(&testdata().join("drf_binomial.zip"), &target, &[])
        .status
        .success());
    let payload = target.join("model.mojo");
    let mut bytes = std::fs::read(&payload).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&payload, bytes).unwrap();
    let o = run(&["verify", target.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("\"model.mojo\": sha256 is"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m.zip");
    std::fs::copy(testdata().join("gbm_binomial.zip"), &src).unwrap();
    let o = Command::new(BIN)
        .args(["inspect", src.to_str().unwrap()])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "artifact type: h2o3/mojo",
        "algo:",
        "gbm",
        "inputs (4):",
        "Float64  x1",
        "String   predict",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

/// A MOJO whose trees, domains or sub-models do not match its `model.ini` is refused by
/// the processor with the very message the runtime's loader gives for it (the processor
/// validates with that loader), and nothing is published.
#[test]
fn broken_mojos_are_refused_with_the_runtime_loaders_message() {
    use testkit::mojo::{edited, FileEdit};
    let gbm_ini = |k: &'static str, v: &'static str| (k, Some(v));
    let se_member_ini = std::str::from_utf8(&read_entry(
        "stacked_ensemble_binomial.zip",
        "models/GLM/se_base_glm/model.ini",
    ))
    .unwrap()
    .to_string();
    let short_beta = testkit::mojo::edit_ini(&se_member_ini, &[("beta", Some("[1.0]"))]);
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, Option<&'a str>)>,
        Vec<FileEdit<'a>>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "n_trees claims 2^31-1 trees (5 tree files)",
            "gbm_binomial.zip",
            vec![gbm_ini("n_trees", "2147483647")],
            vec![],
            "n_trees = 2147483647 but the last tree file is for tree 4",
        ),
        (
            "a tree file cut short",
            "gbm_binomial.zip",
            vec![],
            vec![FileEdit::Put("trees/t00_001.bin", &[0x30, 0x00, 0x00, 0x03])],
            "trees/t00_001.bin",
        ),
        (
            "a domain with more levels than model.ini declares",
            "gbm_binomial.zip",
            vec![],
            vec![FileEdit::Put("domains/d000.txt", b"blue\ngreen\nred\nyellow\npink\n")],
            "has 5 levels but model.ini declares 4",
        ),
        (
            "n_classes disagrees with the response domain",
            "drf_multinomial.zip",
            vec![gbm_ini("n_classes", "4")],
            vec![],
            "n_classes = 4",
        ),
        (
            "a stacked-ensemble member is missing",
            "stacked_ensemble_binomial.zip",
            vec![],
            vec![FileEdit::Remove("models/GLM/se_base_glm/model.ini")],
            "models/GLM/se_base_glm/model.ini: is missing, but the stacked ensemble lists this sub-model",
        ),
        (
            "a stacked-ensemble member's coefficients are cut short",
            "stacked_ensemble_binomial.zip",
            vec![],
            vec![FileEdit::Put("models/GLM/se_base_glm/model.ini", short_beta.as_bytes())],
            "models/GLM/se_base_glm/model.ini",
        ),
        (
            "GLM coefficients cut short",
            "glm_binomial.zip",
            vec![gbm_ini("beta", "[1.0, 2.0]")],
            vec![],
            "beta",
        ),
        (
            "a preprocessor the runtime does not apply",
            "gbm_binomial.zip",
            vec![gbm_ini("preprocessors_count", "1")],
            vec![],
            "preprocessors",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, base, ini, files, needle) in cases {
        let src = edited(&testdata().join(base), tmp.path(), &ini, &files);
        let runtime = h2o3_mojo::H2oScorer::load(&src)
            .map(|_| ())
            .expect_err(name)
            .to_string();
        assert!(runtime.contains(needle), "{name}: runtime says {runtime}");
        let target = tmp.path().join(format!("out-{name}"));
        let o = process(&src, &target, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{name}: {err}");
        assert!(
            err.contains(&format!("error: {runtime}")),
            "{name}: the processor says\n{err}\nthe runtime says\n{runtime}"
        );
        assert!(!target.join("model.json").exists(), "{name}: published");
        // `inspect` judges the same way.
        let o = run(&["inspect", src.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(3), "{name}: inspect");
        assert!(
            stderr(&o).contains(&runtime),
            "{name}: inspect: {}",
            stderr(&o)
        );
    }
}

/// The bytes of `entry` in `testdata/h2o3/<zip>`.
fn read_entry(zip: &str, entry: &str) -> Vec<u8> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::fs::File::open(testdata().join(zip)).unwrap()).unwrap();
    let mut out = Vec::new();
    z.by_name(entry).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Start and end of the generated support table in README.md.
const TABLE_BEGIN: &str = "<!-- h2o3-support-table: generated by the h2o3-mojo test `support_table_in_the_readme_is_the_testdatas`; UPDATE_SUPPORT_TABLE=1 rewrites it -->";
const TABLE_END: &str = "<!-- end of h2o3-support-table -->";

/// What a client sends for one processed testdata MOJO, from its manifest: the kind of
/// columns, and the extra columns this MOJO adds or leaves out.
fn client_columns(man: &Value) -> (String, Vec<String>) {
    let md = &man["metadata"];
    let sc = &md["scoring"];
    let names = |v: &Value| -> String {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| format!("`{}`", c.as_str().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let kind = if md["algo"] == "word2vec" {
        "one word per row"
    } else if sc["categorical_encoding"]["applied_by"] == "client" {
        "the encoded columns, as genmodel reads them (the MOJO records no original columns)"
    } else if sc.get("gam").is_some() {
        "original columns (the scorer computes the splines)"
    } else {
        "original columns"
    };
    let mut extras = Vec::new();
    if let Some(off) = md["offset_column"].as_str() {
        extras.push(format!("+ the offset column `{off}`"));
    }
    if sc["coxph"]["stratify_by"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        extras.push(format!(
            "+ the stratum columns {}",
            names(&sc["coxph"]["stratify_by"])
        ));
    }
    if sc.get("columns_not_inputs").is_some() {
        extras.push(format!(
            "; {} not an input (weights, fold or treatment column)",
            names(&sc["columns_not_inputs"])
        ));
    }
    (kind.to_string(), extras)
}

/// The README's support table (algorithm × category × encoding → what a client sends,
/// native scoring, contributions) is generated from the testdata MOJOs as the processor
/// publishes them: each row names the MOJOs behind it, every one of which the runtime
/// shim's tests score against genmodel's reference. Drift in either fails here.
#[test]
fn support_table_in_the_readme_is_the_testdatas() {
    use std::collections::BTreeMap;
    let exp = expected();
    // (algorithm, category, encoding) -> (client columns, contributions, models)
    type Row = (Vec<String>, Vec<String>, Vec<String>);
    let mut rows: BTreeMap<(String, String, String), Row> = BTreeMap::new();
    let tmp = tempfile::tempdir().unwrap();
    for m in exp["models"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let target = tmp.path().join(name);
        let o = process(&testdata().join(m["mojo"].as_str().unwrap()), &target, &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let man = manifest(&target);
        let md = &man["metadata"];
        let encoding = md["scoring"]["categorical_encoding"]["scheme"]
            .as_str()
            .or(md["model_parameters"]["categorical_encoding"].as_str())
            .unwrap_or("—")
            .to_string();
        let key = (
            format!(
                "{} (`{}`)",
                md["algorithm"].as_str().unwrap(),
                md["algo"].as_str().unwrap()
            ),
            md["category"].as_str().unwrap().to_string(),
            encoding,
        );
        let contributions: Vec<String> = man["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str()?.strip_prefix("CONTRIBUTION_"))
            .map(str::to_owned)
            .collect();
        let row = rows.entry(key).or_default();
        let push = |v: &mut Vec<String>, s: String| {
            if !v.contains(&s) {
                v.push(s);
            }
        };
        let (kind, extras) = client_columns(&man);
        push(&mut row.0, kind);
        for e in extras {
            push(&mut row.0, format!("{e} (`{name}`)"));
        }
        push(
            &mut row.1,
            if contributions.is_empty() {
                "none (genmodel computes none)".into()
            } else {
                contributions.join(", ")
            },
        );
        row.2.push(format!("`{name}`"));
    }
    let mut table = String::from(
        "| algorithm | category | categorical encoding | a client sends | scored natively | contributions | testdata MOJOs |\n|---|---|---|---|---|---|---|\n",
    );
    for ((algo, category, encoding), (client, contrib, models)) in &rows {
        table.push_str(&format!(
            "| {algo} | {category} | {encoding} | {} | yes, as genmodel | {} | {} |\n",
            client.join(" ").replace(" ;", ";"),
            contrib.join("; "),
            models.join(", ")
        ));
    }
    let readme_path = repo().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (head, rest) = readme
        .split_once(TABLE_BEGIN)
        .expect("README.md has the support table's begin marker");
    let (_, tail) = rest
        .split_once(TABLE_END)
        .expect("README.md has the support table's end marker");
    let want = format!("{head}{TABLE_BEGIN}\n{table}{TABLE_END}{tail}");
    if std::env::var_os("UPDATE_SUPPORT_TABLE").is_some() {
        std::fs::write(&readme_path, &want).unwrap();
        return;
    }
    assert!(
        readme == want,
        "README.md's H2O-3 support table differs from the testdata's; run \
         UPDATE_SUPPORT_TABLE=1 cargo test -p h2o3-mojo --test cli support_table and review. Table now:\n{table}"
    );
}
