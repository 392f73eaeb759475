//! Runs the real `dai-mojo-processor` binary in temp dirs: on the DAI pipelines of the
//! conformance corpus (through `CONFORMANCE_DIR`), on small TOML and protobuf pipelines
//! built here (DAI itself is proprietary), in the three source shapes, and on broken or
//! hostile inputs, which must each fail with their own message and leave no model.json.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_dai-mojo-processor");

// ------------------------------------------------------------------ running

fn run_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("SOURCE_PATH")
        .env_remove("TARGET_PATH")
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("binary runs")
}

fn run(args: &[&str]) -> Output {
    run_env(args, &[])
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

/// Processes `source` and checks the common invariants of a good run; returns model.json.
fn process_ok(source: &Path, target: &Path, label: &str) -> Value {
    let o = process(source, target, &[]);
    assert!(o.status.success(), "{label}: {}", stderr(&o));
    let v = run(&["verify", target.to_str().unwrap()]);
    assert!(v.status.success(), "{label}: verify: {}", stderr(&v));
    let man = manifest(target);
    assert_eq!(man["artifact_type"], "dai/mojo_pipeline", "{label}");
    assert_eq!(man["model_type"], "dai_mojo_pipeline", "{label}");
    assert_eq!(man["payload"], "pipeline.mojo", "{label}");
    assert_eq!(man["schema_known"], true, "{label}");
    man
}

fn file_names(man: &Value) -> Vec<String> {
    man["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn conformance() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("CONFORMANCE_DIR") else {
        eprintln!("skipped: CONFORMANCE_DIR not set");
        return None;
    };
    let dir = PathBuf::from(dir);
    // A relative path is relative to the repository root, as CI sets it.
    let dir = if dir.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir)
    } else {
        dir
    };
    let dai = dir.join("dai");
    assert!(
        dai.is_dir(),
        "CONFORMANCE_DIR is set but {} is missing",
        dai.display()
    );
    Some(dai)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, bytes).unwrap();
    p
}

// ------------------------------------------------------------------ zip building

enum E<'a> {
    F(&'a str, &'a [u8]),
    D(&'a str),
    Link(&'a str, &'a str),
}

fn zip_of(entries: &[E]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for e in entries {
        match e {
            E::F(n, data) => {
                w.start_file(*n, opts).unwrap();
                w.write_all(data).unwrap();
            }
            E::D(n) => w.add_directory(*n, opts).unwrap(),
            E::Link(n, t) => w.add_symlink(*n, *t, opts).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

fn zip_files(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let e: Vec<E> = entries.iter().map(|(n, d)| E::F(n, d)).collect();
    zip_of(&e)
}

/// The files DAI puts next to pipeline.mojo in `mojo-pipeline/`, plus a licence.
const PACKAGE_EXTRAS: &[(&str, &[u8])] = &[
    ("example.csv", b"a,b\n1,2\n"),
    ("license.sig", b"SECRET-LICENCE-KEY"),
    ("mojo2-runtime.jar", b"PK not really a jar"),
    (
        "run_example.sh",
        b"java -cp mojo2-runtime.jar ai.h2o.mojos.ExecuteMojo pipeline.mojo example.csv\n",
    ),
    ("README.txt", b"H2O DRIVERLESS AI MOJO PIPELINE\n"),
];

/// A `mojo.zip`: `mojo-pipeline/pipeline.mojo` plus the usual package files.
fn mojo_zip(pipeline: &[u8], example: Option<&[u8]>) -> Vec<u8> {
    let mut files: Vec<(String, &[u8])> = vec![("mojo-pipeline/pipeline.mojo".into(), pipeline)];
    for (n, d) in PACKAGE_EXTRAS {
        match (*n, example) {
            ("example.csv", Some(ex)) => files.push((format!("mojo-pipeline/{n}"), ex)),
            ("example.csv", None) => {}
            _ => files.push((format!("mojo-pipeline/{n}"), d)),
        }
    }
    let mut entries = vec![E::D("mojo-pipeline/")];
    entries.extend(files.iter().map(|(n, d)| E::F(n, d)));
    zip_of(&entries)
}

/// Renames an entry in place (same length), in both its local and central headers: the
/// zip writer refuses duplicate names, hostile archives do not.
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

/// An unpacked `mojo-pipeline/` folder.
fn mojo_folder(dir: &Path, pipeline: &[u8], example: Option<&[u8]>) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    write(dir, "pipeline.mojo", pipeline);
    for (n, d) in PACKAGE_EXTRAS {
        match (*n, example) {
            ("example.csv", Some(ex)) => {
                write(dir, n, ex);
            }
            ("example.csv", None) => {}
            _ => {
                write(dir, n, d);
            }
        }
    }
    dir.to_path_buf()
}

// ------------------------------------------------------------------ synthetic TOML pipelines

const TOML_ROOT: &str = r#"mojo_version = 2.0
uuid = '11111111-2222-3333-4444-555555555555'
time_created = 2019-05-06T07:08:09.123456
missing_values = ['', '?', 'NA']

[columns]
features = [
  ['a_int32', 'int32'],
  ['b_int64', 'int64'],
  ['c_float32', 'float32'],
  ['d_float64', 'float64'],
  ['e_str', 'str'],
  ['f_bool', 'bool'],
  ['g_time', 'time64'],
]
outputs = [
  ['y', 'float64'],
  ['y.lower', 'float64'],
  ['y.upper', 'float64'],
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

/// DAI's nested descriptors are not strict TOML (`[None]`); the processor must cope.
const TOML_NESTED: &str = r#"mojo_version = 2.0
uuid = 'nested'
[columns]
features = [['a_int32', 'int32']]
outputs = [['x', 'float64']]
[[transforms]]
  name = "Map"
  missing = [None]
"#;

const BUILD_INFO_TOML: &str = "suffix=\"\"\nbase_version=\"1.5.1\"\nmojo2_runtime_version=\"0.13.16\"\nmodel2capnp_version=\"0.13.0\"\nversion=\"1.5.1\"\n";

fn toml_pipeline_with(root: &str, nested: bool) -> Vec<u8> {
    let mut entries = vec![
        E::D("mojo/"),
        E::F("mojo/pipeline.toml", root.as_bytes()),
        E::F("mojo/dai_build.info", BUILD_INFO_TOML.as_bytes()),
    ];
    if nested {
        entries.push(E::F(
            "mojo/predict_0/0_XGBoostModel_0/pipeline.toml",
            TOML_NESTED.as_bytes(),
        ));
        entries.push(E::F(
            "mojo/predict_0/0_XGBoostModel_0/xgb_1.model.capnp",
            b"\x00\x01model",
        ));
    }
    zip_of(&entries)
}

fn toml_pipeline() -> Vec<u8> {
    toml_pipeline_with(TOML_ROOT, true)
}

// ------------------------------------------------------------------ synthetic protobuf pipelines

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u32, wt: u8, out: &mut Vec<u8>) {
    varint((u64::from(field) << 3) | u64::from(wt), out);
}

fn pb_bytes(field: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    key(field, 2, &mut out);
    varint(data.len() as u64, &mut out);
    out.extend_from_slice(data);
    out
}

fn pb_varint(field: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    key(field, 0, &mut out);
    varint(v, &mut out);
    out
}

fn pb_msg(field: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    pb_bytes(field, &parts.concat())
}

/// Column type tags of the Column oneof.
const BOOL: u32 = 2;
const INT32: u32 = 3;
const INT64: u32 = 4;
const FLOAT32: u32 = 5;
const FLOAT64: u32 = 6;
const STR: u32 = 7;
const TIME64: u32 = 8;

fn frame(field: u32, cols: &[(&str, u32)]) -> Vec<u8> {
    let cols: Vec<Vec<u8>> = cols
        .iter()
        .map(|(n, t)| {
            pb_msg(
                1,
                &[
                    pb_bytes(1, n.as_bytes()),
                    pb_bytes(*t, b""),
                    // an unknown field inside a column is skipped
                    pb_varint(20, 1),
                ],
            )
        })
        .collect();
    pb_msg(field, &cols)
}

/// What the synthetic protobuf root holds.
#[derive(Clone)]
struct Pb {
    uuid: Option<&'static str>,
    inputs: Vec<(&'static str, u32)>,
    outputs: Vec<(&'static str, u32)>,
    version: Option<&'static str>,
    transformed: bool,
    original: bool,
    interval_table: Option<&'static str>,
    nested: Option<&'static str>,
    unknown_fields: bool,
}

fn good_pb() -> Pb {
    Pb {
        uuid: Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
        inputs: vec![
            ("p_bool", BOOL),
            ("p_int32", INT32),
            ("p_int64", INT64),
            ("p_float32", FLOAT32),
            ("p_float64", FLOAT64),
            ("p_str", STR),
            ("p_time", TIME64),
        ],
        outputs: vec![("target", FLOAT64)],
        version: Some("1.10.4"),
        transformed: true,
        original: true,
        interval_table: Some("mojo/map-val-pred_interval.0"),
        nested: Some("mojo/predict_stacked_base_x/0_Model_0/pipeline.pb"),
        unknown_fields: true,
    }
}

impl Pb {
    fn encode(&self) -> Vec<u8> {
        let mut parts = vec![pb_varint(1, 2)];
        if let Some(u) = self.uuid {
            parts.push(pb_bytes(2, u.as_bytes()));
            parts.push(pb_bytes(3, u.as_bytes()));
        }
        parts.push(pb_msg(
            4,
            &[pb_varint(1, 1_647_057_133), pb_varint(2, 997_247_000)],
        ));
        for mv in ["", "?", "NA"] {
            parts.push(pb_bytes(5, mv.as_bytes()));
        }
        parts.push(frame(6, &self.inputs));
        parts.push(frame(7, &self.outputs));
        parts.push(frame(8, &[("interim", FLOAT64)]));
        if let Some(n) = self.nested {
            parts.push(pb_msg(
                9,
                &[
                    pb_varint(1, 1),
                    pb_bytes(2, b"p_int32"),
                    pb_bytes(3, b"interim"),
                    pb_msg(30, &[pb_bytes(1, n.as_bytes())]),
                ],
            ));
        }
        parts.push(pb_msg(
            9,
            &[
                pb_varint(1, 2),
                pb_bytes(2, b"interim"),
                pb_bytes(3, b"target"),
                pb_msg(43, &[]),
            ],
        ));
        parts.push(pb_msg(12, &[pb_varint(1, 1), pb_bytes(2, b"GLMModel")]));
        if let Some(v) = self.version {
            parts.push(pb_bytes(13, v.as_bytes()));
        }
        if self.transformed {
            parts.push(frame(14, &[("0_p_float64", FLOAT64)]));
        }
        if self.original {
            parts.push(pb_msg(
                16,
                &[
                    pb_bytes(1, b"contrib_0_p_float64"),
                    pb_msg(
                        2,
                        &[pb_bytes(1, b"contrib_p_float64"), {
                            let mut f = Vec::new();
                            key(2, 1, &mut f);
                            f.extend_from_slice(&1.0f64.to_le_bytes());
                            f
                        }],
                    ),
                ],
            ));
        }
        let target = pb_msg(1, &[pb_bytes(1, b"target")]);
        match self.interval_table {
            Some(t) => parts.push(pb_msg(
                17,
                &[pb_msg(
                    1,
                    &[
                        target,
                        pb_msg(
                            2,
                            &[pb_msg(
                                1,
                                &[pb_msg(
                                    2,
                                    &[pb_msg(3, &[pb_varint(1, 5), pb_bytes(2, t.as_bytes())])],
                                )],
                            )],
                        ),
                    ],
                )],
            )),
            None => parts.push(pb_msg(17, &[pb_msg(1, &[target])])),
        }
        if self.unknown_fields {
            parts.push(pb_varint(99, 12345));
            let mut f = Vec::new();
            key(100, 5, &mut f);
            f.extend_from_slice(&[1, 2, 3, 4]);
            key(101, 1, &mut f);
            f.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            key(102, 3, &mut f); // group start
            f.extend(pb_varint(1, 7));
            f.extend(pb_bytes(2, b"inside a group"));
            key(102, 4, &mut f); // group end
            parts.push(f);
            parts.push(pb_bytes(103, b"opaque future field"));
        }
        parts.concat()
    }

    /// The pipeline.mojo zip around this root.
    fn zip(&self) -> Vec<u8> {
        let root = self.encode();
        let nested_root = Pb {
            nested: None,
            interval_table: None,
            ..self.clone()
        }
        .encode();
        let mut entries = vec![
            E::D("mojo/"),
            E::F("mojo/pipeline.pb", &root),
            E::F(
                "mojo/dai_build.info",
                b"base_version=\"1.10.4\"\nmojo2_runtime_version=\"2.7.10\"\nmodel2proto_version=\"2.7.10\"\nversion=\"1.10.4+synthetic\"\n",
            ),
            E::F("mojo/pipeline.wm", b"signerId=H2O.ai\npipelineFile=mojo/pipeline.pb\n"),
            E::F("mojo/pipeline.sig", &[7u8; 512]),
        ];
        if let Some(n) = self.nested {
            entries.push(E::F(n, &nested_root));
        }
        if let Some(t) = self.interval_table {
            entries.push(E::F(t, b"\x00\x00"));
        }
        zip_of(&entries)
    }
}

// ------------------------------------------------------------------ conformance

type Cols = &'static [(&'static str, &'static str)];

struct Conf {
    /// Under CONFORMANCE_DIR/dai: a pipeline.mojo file or a folder.
    path: &'static str,
    id: &'static str,
    generation: &'static str,
    layout: &'static str,
    inputs: Cols,
    outputs: Cols,
    dai_version: &'static str,
    dai_version_source: &'static str,
    mojo2_runtime_version: &'static str,
    time_created: &'static str,
    capabilities: &'static [&'static str],
    has_signature: bool,
    has_watermark: bool,
    entries: u64,
    nested: u64,
    example: bool,
    missing_values: Option<usize>,
}

/// The MLOps column type of a DAI type name, as the contract says.
fn mlops(dai: &str) -> &'static str {
    match dai {
        "float32" | "Float32" => "Float32",
        "float64" | "Float64" => "Float64",
        "int32" | "Int32" => "Int32",
        "int64" | "Int64" => "Int64",
        "str" | "Str" => "String",
        "bool" | "Bool" => "Boolean",
        "time64" | "Time64" => "Time64",
        other => panic!("unexpected DAI type {other}"),
    }
}

const CONFORMANCE: &[Conf] = &[
    Conf {
        path: "sw_proto_based_pipeline.mojo",
        id: "4722d920-b3f8-11e9-9f90-ac1f6b00be4c",
        generation: "protobuf",
        layout: "pipeline.mojo",
        inputs: &[
            ("pclass", "Float32"),
            ("sex", "Str"),
            ("age", "Float32"),
            ("ticket", "Str"),
            ("fare", "Float32"),
            ("cabin", "Str"),
        ],
        outputs: &[("survived.0", "Float32"), ("survived.1", "Float32")],
        dai_version: "1.7.0",
        dai_version_source: "mojo/dai_build.info",
        mojo2_runtime_version: "2.0.1",
        time_created: "2019-08-01T01:05:09.468393Z",
        capabilities: &["SCORE"],
        has_signature: true,
        has_watermark: true,
        entries: 40,
        nested: 0,
        example: false,
        missing_values: Some(11),
    },
    Conf {
        path: "sw_daiMojoShapley",
        id: "9c30c5da-a1b7-11ec-bcb7-80615f048080",
        generation: "protobuf",
        layout: "package",
        inputs: &[
            ("sepal_len", "Float32"),
            ("sepal_wid", "Float32"),
            ("petal_len", "Float32"),
            ("petal_wid", "Float32"),
        ],
        outputs: &[
            ("class.Iris-setosa", "Float32"),
            ("class.Iris-versicolor", "Float32"),
            ("class.Iris-virginica", "Float32"),
        ],
        dai_version: "1.10.3+local_dev-placeholder-5420-g0e52960675",
        dai_version_source: "mojo/dai_build.info",
        mojo2_runtime_version: "2.7.8-master.413",
        time_created: "2022-03-12T03:52:13.997247Z",
        capabilities: &["SCORE", "CONTRIBUTION_ORIGINAL", "CONTRIBUTION_TRANSFORMED"],
        has_signature: false,
        has_watermark: false,
        entries: 3,
        nested: 0,
        example: true,
        missing_values: Some(11),
    },
    Conf {
        path: "sw_daiPredictionInterval",
        id: "test_regression_accuracy3_e5169_d71b",
        generation: "protobuf",
        layout: "package",
        inputs: &[
            ("secret_Date", "Str"),
            ("секрет_秘密_314159265", "Float32"),
            ("secret_MaxWindSpeed", "Float32"),
            ("secret_Temp9am", "Float32"),
            ("secret_RelHumid9am", "Float32"),
            ("secret_Cloud9am", "Float32"),
            ("secret_WindSpeed9am", "Float32"),
            ("secret_Pressure9am", "Float32"),
            ("secret_Temp3pm", "Float32"),
            ("secret_RelHumid3pm", "Float32"),
            ("secret_Cloud3pm", "Float32"),
            ("secret_WindSpeed3pm", "Float32"),
            ("secret_ChangeTemp", "Float32"),
            ("secret_ChangeTempDir", "Str"),
            ("secret_ChangeTempMag", "Str"),
            ("secret_ChangeWindDirect", "Str"),
            ("secret_MaxWindPeriod", "Str"),
            ("secret_RainToday", "Float32"),
            ("secret_TempRange", "Float32"),
            ("secret_PressureChange", "Str"),
            ("secret_RainTomorrow", "Float32"),
        ],
        outputs: &[("secret_Pressure3pm", "Float64")],
        dai_version: "1.10.4+local_dev-placeholder-10923-g044fadf807",
        dai_version_source: "mojo/dai_build.info",
        mojo2_runtime_version: "2.7.10-master.456",
        time_created: "2022-08-16T14:13:54.585170Z",
        capabilities: &[
            "SCORE",
            "SCORE_PREDICTION_INTERVAL",
            "CONTRIBUTION_TRANSFORMED",
        ],
        has_signature: false,
        has_watermark: false,
        entries: 1592,
        nested: 9,
        example: true,
        missing_values: Some(11),
    },
    Conf {
        path: "ddt_multinomial-pipeline.mojo",
        id: "a3d653b4-ef81-453e-b832-42d9db9f1459",
        generation: "protobuf",
        layout: "pipeline.mojo",
        inputs: &[
            ("Date", "Str"),
            ("Sunshine", "Float32"),
            ("MaxWindSpeed", "Float32"),
            ("Temp9am", "Float32"),
            ("RelHumid9am", "Float32"),
            ("Cloud9am", "Float32"),
            ("WindSpeed9am", "Float32"),
            ("Pressure9am", "Float32"),
            ("Temp3pm", "Float32"),
            ("RelHumid3pm", "Float32"),
            ("Cloud3pm", "Float32"),
            ("WindSpeed3pm", "Float32"),
            ("Pressure3pm", "Float32"),
            ("ChangeTemp", "Float32"),
            ("ChangeTempDir", "Str"),
            ("ChangeTempMag", "Str"),
            ("MaxWindPeriod", "Str"),
            ("RainToday", "Float32"),
            ("TempRange", "Float32"),
            ("PressureChange", "Str"),
            ("RainTomorrow", "Float32"),
        ],
        outputs: &[
            ("ChangeWindDirect.c", "Float32"),
            ("ChangeWindDirect.l", "Float32"),
            ("ChangeWindDirect.n", "Float32"),
            ("ChangeWindDirect.s", "Float32"),
        ],
        dai_version: "1.9.3",
        dai_version_source: "mojo/dai_build.info",
        mojo2_runtime_version: "2.6.0",
        time_created: "2021-06-08T03:33:36.652620Z",
        capabilities: &["SCORE", "CONTRIBUTION_TRANSFORMED"],
        has_signature: false,
        has_watermark: false,
        entries: 651,
        nested: 0,
        example: false,
        missing_values: Some(11),
    },
    Conf {
        path: "sw_mojo2_multiple_outputs",
        id: "40ae88fd-2436-46b9-a13f-525aacfc4f8d",
        generation: "toml",
        layout: "package",
        inputs: &[
            ("sepal_len", "float64"),
            ("sepal_wid", "float64"),
            ("petal_len", "float64"),
            ("petal_wid", "float64"),
        ],
        outputs: &[
            ("class.Iris-setosa", "float64"),
            ("class.Iris-versicolor", "float64"),
            ("class.Iris-virginica", "float64"),
        ],
        dai_version: "1.4.0+local_a3b987b-dirty",
        dai_version_source: "mojo/dai_build.info",
        mojo2_runtime_version: "0.13.2",
        time_created: "2018-09-27T11:37:54.991533",
        capabilities: &["SCORE"],
        has_signature: false,
        has_watermark: false,
        entries: 11,
        nested: 3,
        example: true,
        missing_values: Some(11),
    },
    Conf {
        path: "ddt_kdb_pipeline.mojo",
        id: "6db1247f-7f33-4cde-aa25-3d7ca9700870",
        generation: "toml",
        layout: "pipeline.mojo",
        inputs: &[
            ("LIMIT_BAL", "float64"),
            ("SEX", "str"),
            ("EDUCATION", "str"),
            ("MARRIAGE", "str"),
            ("AGE", "float64"),
            ("PAY_1", "float64"),
            ("PAY_2", "float64"),
            ("PAY_3", "float64"),
            ("PAY_4", "float64"),
            ("PAY_5", "float64"),
            ("PAY_6", "float64"),
            ("BILL_AMT1", "float64"),
            ("BILL_AMT2", "float64"),
            ("BILL_AMT3", "float64"),
            ("BILL_AMT4", "float64"),
            ("BILL_AMT5", "float64"),
            ("BILL_AMT6", "float64"),
            ("PAY_AMT1", "float64"),
            ("PAY_AMT2", "float64"),
            ("PAY_AMT3", "float64"),
            ("PAY_AMT4", "float64"),
            ("PAY_AMT5", "float64"),
            ("PAY_AMT6", "float64"),
        ],
        outputs: &[
            ("DEFAULT_PAYMENT_NEXT_MONTH.0", "float64"),
            ("DEFAULT_PAYMENT_NEXT_MONTH.1", "float64"),
        ],
        dai_version: "1.3.0rc10",
        dai_version_source: "mojo/dai_build.info",
        mojo2_runtime_version: "0.12.1",
        time_created: "2018-08-27T00:40:05.181517",
        capabilities: &["SCORE"],
        has_signature: false,
        has_watermark: false,
        entries: 52,
        nested: 20,
        example: false,
        missing_values: Some(10),
    },
    Conf {
        path: "sw_mojo2data",
        id: "b448504b-1877-435f-9b09-d911a3388bd7",
        generation: "toml",
        layout: "package",
        inputs: &[
            ("ID", "int32"),
            ("CAPSULE", "int32"),
            ("RACE", "int32"),
            ("DPROS", "int32"),
            ("DCAPS", "int32"),
            ("PSA", "float64"),
            ("VOL", "float64"),
            ("GLEASON", "int32"),
        ],
        outputs: &[("AGE", "float64")],
        // No dai_build.info inside this 1.0.28 pipeline: the folder's own one is used.
        dai_version: "1.0.28+PR-2641_1",
        dai_version_source: "dai_build.info",
        mojo2_runtime_version: "0.8.4",
        time_created: "2018-04-03T12:20:26.738856",
        capabilities: &["SCORE"],
        has_signature: false,
        has_watermark: false,
        entries: 56,
        nested: 30,
        example: true,
        missing_values: None,
    },
];

fn schema_of(cols: Cols) -> Value {
    Value::Array(
        cols.iter()
            .map(|(n, t)| json!({"name": n, "type": mlops(t)}))
            .collect(),
    )
}

fn pipeline_file(dai: &Path, c: &Conf) -> PathBuf {
    let p = dai.join(c.path);
    if p.is_dir() {
        p.join("pipeline.mojo")
    } else {
        p
    }
}

#[test]
fn every_conformance_pipeline_is_processed_with_its_schema_and_versions() {
    let Some(dai) = conformance() else { return };
    // Every pipeline of the corpus is in the table.
    let mut on_disk: Vec<String> = dir_names(&dai)
        .into_iter()
        .filter(|n| n.ends_with(".mojo") || dai.join(n).is_dir())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CONFORMANCE.iter().map(|c| c.path.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "conformance pipelines vs the test table");

    for c in CONFORMANCE {
        let label = c.path;
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        let man = process_ok(&dai.join(c.path), &target, label);
        assert_eq!(man["id"], c.id, "{label}: id");
        assert_eq!(man["input_schema"], schema_of(c.inputs), "{label}: inputs");
        assert_eq!(
            man["output_schema"],
            schema_of(c.outputs),
            "{label}: outputs"
        );
        assert_eq!(
            man["capabilities"],
            json!(c.capabilities),
            "{label}: capabilities"
        );
        let md = &man["metadata"];
        assert_eq!(md["generation"], c.generation, "{label}");
        assert_eq!(md["source_layout"], c.layout, "{label}");
        assert_eq!(md["uuid"], c.id, "{label}");
        assert_eq!(md["dai_version"], c.dai_version, "{label}: DAI version");
        assert_eq!(md["dai_version_source"], c.dai_version_source, "{label}");
        assert_eq!(
            md["mojo2_runtime_version"], c.mojo2_runtime_version,
            "{label}: runtime version"
        );
        assert_eq!(md["time_created"], c.time_created, "{label}");
        assert_eq!(md["has_signature"], c.has_signature, "{label}");
        assert_eq!(md["has_watermark"], c.has_watermark, "{label}");
        assert_eq!(md["entries"], c.entries, "{label}: entries");
        assert_eq!(md["nested_pipelines"], c.nested, "{label}: nested");
        assert_eq!(
            md["input_dai_types"],
            json!(c.inputs.iter().map(|x| x.1).collect::<Vec<_>>()),
            "{label}"
        );
        assert_eq!(
            md["output_dai_types"],
            json!(c.outputs.iter().map(|x| x.1).collect::<Vec<_>>()),
            "{label}"
        );
        match c.missing_values {
            Some(n) => {
                let mv = md["missing_values"].as_array().unwrap();
                assert_eq!(mv.len(), n, "{label}: missing values");
                assert_eq!(mv[0], "", "{label}");
                assert!(mv.contains(&json!("NA")), "{label}");
            }
            None => assert!(md.get("missing_values").is_none(), "{label}"),
        }
        assert_eq!(md["licence_files_dropped"], json!([]), "{label}");
        // The payload is the pipeline byte for byte, plus example.csv when the folder has it.
        let want_files: Vec<&str> = if c.example {
            vec!["example.csv", "pipeline.mojo"]
        } else {
            vec!["pipeline.mojo"]
        };
        assert_eq!(file_names(&man), want_files, "{label}");
        assert_eq!(
            std::fs::read(target.join("pipeline.mojo")).unwrap(),
            std::fs::read(pipeline_file(&dai, c)).unwrap(),
            "{label}: payload differs from the source pipeline.mojo"
        );
        if c.example {
            assert_eq!(
                std::fs::read(target.join("example.csv")).unwrap(),
                std::fs::read(dai.join(c.path).join("example.csv")).unwrap(),
                "{label}"
            );
        }
        let mut want_dir = [vec!["model.json"], want_files].concat();
        want_dir.sort();
        assert_eq!(dir_names(&target), want_dir, "{label}: target content");
    }
}

#[test]
fn conformance_pipelines_read_bare_and_in_a_mojo_zip() {
    let Some(dai) = conformance() else { return };
    for c in CONFORMANCE {
        let label = c.path;
        let tmp = tempfile::tempdir().unwrap();
        let pipeline = std::fs::read(pipeline_file(&dai, c)).unwrap();
        // Bare pipeline.mojo, under any file name.
        let bare = write(tmp.path(), "some-upload.bin", &pipeline);
        let man = process_ok(&bare, &tmp.path().join("bare"), label);
        assert_eq!(man["input_schema"], schema_of(c.inputs), "{label}: bare");
        assert_eq!(man["output_schema"], schema_of(c.outputs), "{label}: bare");
        assert_eq!(man["metadata"]["source_layout"], "pipeline.mojo", "{label}");
        // Built into a mojo.zip with a mojo-pipeline/ folder and a licence.
        let z = write(
            tmp.path(),
            "upload.zip",
            &mojo_zip(&pipeline, Some(b"x\n1\n")),
        );
        let man = process_ok(&z, &tmp.path().join("zip"), label);
        assert_eq!(man["id"], c.id, "{label}: zip");
        assert_eq!(man["input_schema"], schema_of(c.inputs), "{label}: zip");
        assert_eq!(man["output_schema"], schema_of(c.outputs), "{label}: zip");
        assert_eq!(man["metadata"]["source_layout"], "package", "{label}");
        assert_eq!(
            man["metadata"]["licence_files_dropped"],
            json!(["mojo-pipeline/license.sig"]),
            "{label}"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("zip/pipeline.mojo")).unwrap(),
            pipeline,
            "{label}: payload in the mojo.zip case"
        );
        assert_eq!(
            file_names(&man),
            ["example.csv", "pipeline.mojo"],
            "{label}"
        );
    }
}

// ------------------------------------------------------------------ synthetic pipelines

#[test]
fn synthetic_pipelines_of_both_generations() {
    struct Case {
        name: &'static str,
        pipeline: Vec<u8>,
        generation: &'static str,
        inputs: Value,
        dai_types: Value,
        outputs: Value,
        capabilities: Value,
        metadata: Value,
    }
    let pb_inputs = json!([
        {"name": "p_bool", "type": "Boolean"},
        {"name": "p_int32", "type": "Int32"},
        {"name": "p_int64", "type": "Int64"},
        {"name": "p_float32", "type": "Float32"},
        {"name": "p_float64", "type": "Float64"},
        {"name": "p_str", "type": "String"},
        {"name": "p_time", "type": "Time64"},
    ]);
    let pb_types = json!(["Bool", "Int32", "Int64", "Float32", "Float64", "Str", "Time64"]);
    let cases = vec![
        Case {
            name: "toml, all types, nested ExecPipe, interval outputs",
            pipeline: toml_pipeline(),
            generation: "toml",
            inputs: json!([
                {"name": "a_int32", "type": "Int32"},
                {"name": "b_int64", "type": "Int64"},
                {"name": "c_float32", "type": "Float32"},
                {"name": "d_float64", "type": "Float64"},
                {"name": "e_str", "type": "String"},
                {"name": "f_bool", "type": "Boolean"},
                {"name": "g_time", "type": "Time64"},
            ]),
            dai_types: json!(["int32", "int64", "float32", "float64", "str", "bool", "time64"]),
            outputs: json!([
                {"name": "y", "type": "Float64"},
                {"name": "y.lower", "type": "Float64"},
                {"name": "y.upper", "type": "Float64"},
            ]),
            capabilities: json!(["SCORE", "SCORE_PREDICTION_INTERVAL"]),
            metadata: json!({
                "uuid": "11111111-2222-3333-4444-555555555555",
                "time_created": "2019-05-06T07:08:09.123456",
                "missing_values": ["", "?", "NA"],
                "mojo_version": "2.0",
                "dai_version": "1.5.1",
                "dai_version_source": "mojo/dai_build.info",
                "dai_base_version": "1.5.1",
                "mojo2_runtime_version": "0.13.16",
                "nested_pipelines": 1,
                "has_signature": false,
                "has_watermark": false,
                "entries": 4,
            }),
        },
        Case {
            name: "protobuf, all types, Shapley, intervals, nested, unknown fields",
            pipeline: good_pb().zip(),
            generation: "protobuf",
            inputs: pb_inputs.clone(),
            dai_types: pb_types.clone(),
            outputs: json!([{"name": "target", "type": "Float64"}]),
            capabilities: json!([
                "SCORE",
                "SCORE_PREDICTION_INTERVAL",
                "CONTRIBUTION_ORIGINAL",
                "CONTRIBUTION_TRANSFORMED"
            ]),
            metadata: json!({
                "uuid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "experiment_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "time_created": "2022-03-12T03:52:13.997247Z",
                "missing_values": ["", "?", "NA"],
                "mojo_version": "2",
                "dai_version": "1.10.4+synthetic",
                "dai_version_source": "mojo/dai_build.info",
                "mojo2_runtime_version": "2.7.10",
                "nested_pipelines": 1,
                "has_signature": true,
                "has_watermark": true,
                "entries": 6,
            }),
        },
        Case {
            name: "protobuf, plain: no Shapley, no intervals, version from the descriptor",
            pipeline: {
                let pb = Pb {
                    transformed: false,
                    original: false,
                    interval_table: None,
                    nested: None,
                    unknown_fields: false,
                    ..good_pb()
                };
                zip_files(&[("mojo/pipeline.pb", &pb.encode())])
            },
            generation: "protobuf",
            inputs: pb_inputs.clone(),
            dai_types: pb_types.clone(),
            outputs: json!([{"name": "target", "type": "Float64"}]),
            capabilities: json!(["SCORE"]),
            metadata: json!({
                "dai_version": "1.10.4",
                "dai_version_source": "mojo/pipeline.pb",
                "nested_pipelines": 0,
                "has_signature": false,
                "entries": 1,
            }),
        },
    ];
    for c in cases {
        let label = c.name;
        let tmp = tempfile::tempdir().unwrap();
        let src = write(tmp.path(), "pipeline.mojo", &c.pipeline);
        let target = tmp.path().join("out");
        let man = process_ok(&src, &target, label);
        assert_eq!(man["input_schema"], c.inputs, "{label}");
        assert_eq!(man["output_schema"], c.outputs, "{label}");
        assert_eq!(man["capabilities"], c.capabilities, "{label}");
        let md = &man["metadata"];
        assert_eq!(md["generation"], c.generation, "{label}");
        assert_eq!(md["input_dai_types"], c.dai_types, "{label}");
        for (k, v) in c.metadata.as_object().unwrap() {
            assert_eq!(&md[k], v, "{label}: metadata {k}");
        }
        assert_eq!(
            std::fs::read(target.join("pipeline.mojo")).unwrap(),
            c.pipeline,
            "{label}"
        );
    }
}

#[test]
fn no_uuid_falls_back_to_the_pipeline_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let pb = Pb {
        uuid: None,
        ..good_pb()
    };
    let src = write(tmp.path(), "p.mojo", &pb.zip());
    let man = process_ok(&src, &tmp.path().join("out"), "no uuid");
    assert_eq!(man["id"], man["source"]["sha256"]);
    assert!(man["metadata"].get("uuid").is_none());
}

// ------------------------------------------------------------------ source shapes

#[test]
fn the_three_source_shapes_give_the_same_model() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = toml_pipeline();
    let example = b"a_int32,b_int64\n1,2\n";
    let bare = write(tmp.path(), "anything.zip", &pipeline);
    let zipped = write(tmp.path(), "mojo.zip", &mojo_zip(&pipeline, Some(example)));
    let folder = mojo_folder(&tmp.path().join("mojo-pipeline"), &pipeline, Some(example));
    let gz = {
        // The same package as a tar.gz.
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        b.append_dir_all("mojo-pipeline", &folder).unwrap();
        let bytes = b.into_inner().unwrap().finish().unwrap();
        write(tmp.path(), "mojo.tar.gz", &bytes)
    };
    type Shape<'a> = (&'a str, &'a Path, &'a str, &'a str, &'a [&'a str]);
    let shapes: &[Shape] = &[
        ("bare", &bare, "pipeline.mojo", "zip", &["pipeline.mojo"]),
        (
            "mojo.zip",
            &zipped,
            "package",
            "zip",
            &["example.csv", "pipeline.mojo"],
        ),
        (
            "folder",
            &folder,
            "package",
            "directory",
            &["example.csv", "pipeline.mojo"],
        ),
        (
            "tar.gz",
            &gz,
            "package",
            "tar_gz",
            &["example.csv", "pipeline.mojo"],
        ),
    ];
    let mut schemas = Vec::new();
    for (label, src, layout, kind, files) in shapes {
        let target = tmp.path().join(format!("out-{label}"));
        let o = process(src, &target, &[]);
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        let err = stderr(&o);
        let man = manifest(&target);
        assert!(run(&["verify", target.to_str().unwrap()]).status.success());
        assert_eq!(man["metadata"]["source_layout"], *layout, "{label}");
        assert_eq!(man["source"]["kind"], *kind, "{label}");
        assert_eq!(file_names(&man), *files, "{label}");
        assert_eq!(
            std::fs::read(target.join("pipeline.mojo")).unwrap(),
            pipeline,
            "{label}: payload"
        );
        if *layout == "package" {
            // The licence is a secret: never copied, and the log says so.
            assert!(!target.join("license.sig").exists(), "{label}");
            assert_eq!(
                std::fs::read(target.join("example.csv")).unwrap(),
                example,
                "{label}"
            );
            let dropped = &man["metadata"]["licence_files_dropped"];
            assert_eq!(dropped.as_array().unwrap().len(), 1, "{label}: {dropped}");
            assert!(
                dropped[0].as_str().unwrap().ends_with("license.sig"),
                "{label}"
            );
            assert!(
                err.contains("licence files found in the source are not copied"),
                "{label}: {err}"
            );
            let skipped: Vec<&str> = man["metadata"]["package_files_skipped"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().rsplit('/').next().unwrap())
                .collect();
            assert_eq!(
                skipped,
                ["README.txt", "mojo2-runtime.jar", "run_example.sh"],
                "{label}"
            );
        }
        // Nothing of the licence anywhere in the model directory.
        for name in dir_names(&target) {
            let bytes = std::fs::read(target.join(&name)).unwrap();
            assert!(
                !bytes
                    .windows(b"SECRET-LICENCE-KEY".len())
                    .any(|w| w == b"SECRET-LICENCE-KEY"),
                "{label}: {name} holds the licence"
            );
        }
        schemas.push((
            man["id"].clone(),
            man["input_schema"].clone(),
            man["output_schema"].clone(),
        ));
    }
    assert!(schemas.windows(2).all(|w| w[0] == w[1]), "{schemas:?}");
}

#[test]
fn a_package_without_example_csv_and_an_example_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = good_pb().zip();
    // example.csv in another folder than pipeline.mojo is not the pipeline's example.
    let z = zip_of(&[
        E::F("other/example.csv", b"not,this\n"),
        E::F("mojo-pipeline/pipeline.mojo", &pipeline),
        E::F("mojo-pipeline/README.txt", b"readme"),
    ]);
    let src = write(tmp.path(), "mojo.zip", &z);
    let man = process_ok(&src, &tmp.path().join("out"), "example elsewhere");
    assert_eq!(file_names(&man), ["pipeline.mojo"]);
    assert_eq!(
        man["metadata"]["package_files_skipped"],
        json!(["mojo-pipeline/README.txt", "other/example.csv"])
    );
    assert_eq!(
        man["metadata"]["package_pipeline"],
        "mojo-pipeline/pipeline.mojo"
    );
    // pipeline.mojo at the root of the zip works too.
    let z = zip_files(&[("pipeline.mojo", &pipeline), ("example.csv", b"e\n")]);
    let src = write(tmp.path(), "root.zip", &z);
    let man = process_ok(&src, &tmp.path().join("out2"), "root package");
    assert_eq!(file_names(&man), ["example.csv", "pipeline.mojo"]);
}

#[test]
fn inspect_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let src_dir = tmp.path().join("src");
    std::fs::create_dir(&src_dir).unwrap();
    let src = write(
        &src_dir,
        "mojo.zip",
        &mojo_zip(&good_pb().zip(), Some(b"e\n")),
    );
    let o = run_env(
        &["inspect", "--json", src.to_str().unwrap()],
        &[("TMPDIR", &scratch)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["model_type"], "dai_mojo_pipeline");
    assert_eq!(d["input_schema"].as_array().unwrap().len(), 7);
    assert_eq!(
        dir_names(&scratch),
        Vec::<String>::new(),
        "scratch left behind"
    );
    assert_eq!(dir_names(&src_dir), ["mojo.zip"]);
    // And the text summary.
    let o = run_env(&["inspect", src.to_str().unwrap()], &[("TMPDIR", &scratch)]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("model type:    dai_mojo_pipeline"), "{text}");
    assert!(text.contains("dai_version:   1.10.4+synthetic"), "{text}");
    assert_eq!(dir_names(&scratch), Vec::<String>::new());
}

#[test]
fn two_runs_give_byte_identical_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let src = write(
        tmp.path(),
        "mojo.zip",
        &mojo_zip(&toml_pipeline(), Some(b"e\n")),
    );
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    process_ok(&src, &a, "first");
    process_ok(&src, &b, "second");
    assert_eq!(
        std::fs::read(a.join("model.json")).unwrap(),
        std::fs::read(b.join("model.json")).unwrap()
    );
}

#[test]
fn reprocessing_needs_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let src = write(tmp.path(), "p.mojo", &toml_pipeline());
    let target = tmp.path().join("out");
    process_ok(&src, &target, "first");
    let o = process(&src, &target, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = process(&src, &target, &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

// ------------------------------------------------------------------ bad inputs

#[test]
fn bad_inputs_fail_with_their_own_message_and_no_model_json() {
    type Build = Box<dyn Fn(&Path) -> PathBuf>;
    struct Case {
        name: &'static str,
        build: Build,
        extra: Vec<String>,
        code: i32,
        expect: &'static [&'static str],
    }
    fn case(name: &'static str, expect: &'static [&'static str], build: Build) -> Case {
        Case {
            name,
            build,
            extra: Vec::new(),
            code: 3,
            expect,
        }
    }
    fn bare(bytes: Vec<u8>) -> Build {
        Box::new(move |d: &Path| write(d, "pipeline.mojo", &bytes))
    }
    fn in_zip(inner: Vec<u8>) -> Build {
        Box::new(move |d: &Path| write(d, "mojo.zip", &mojo_zip(&inner, None)))
    }
    fn toml_root(root: String) -> Build {
        bare(toml_pipeline_with(&root, true))
    }
    fn pb(p: Pb) -> Build {
        bare(p.zip())
    }
    let truncated = {
        let mut root = good_pb().encode();
        root.truncate(root.len() - 3);
        root
    };
    let cut_inside_frame = {
        let root = good_pb().encode();
        let at = root.windows(7).position(|w| w == b"p_int32").unwrap();
        root[..at + 2].to_vec()
    };
    let big = vec![b'z'; 200_000];
    let inner_big = zip_files(&[
        ("mojo/pipeline.pb", &good_pb().encode()),
        ("mojo/big.bin", &big),
    ]);
    let outer_big = mojo_zip(&inner_big, None);
    let outer_files_total: usize = inner_big.len()
        + PACKAGE_EXTRAS
            .iter()
            .filter(|(n, _)| *n != "example.csv")
            .map(|(_, d)| d.len())
            .sum::<usize>();
    let limit = (outer_files_total + 1000).to_string();

    let mut cases = vec![
        case(
            "not a zip",
            &["not a zip", "unknown content (first bytes 6a75737420736f6d)"],
            Box::new(|d: &Path| write(d, "pipeline.mojo", b"just some text, not a zip at all")),
        ),
        case(
            "empty file",
            &["the file is empty"],
            Box::new(|d: &Path| write(d, "pipeline.mojo", b"")),
        ),
        case(
            "zip that is no pipeline",
            &["not a Driverless AI MOJO pipeline", "no pipeline.mojo and no mojo/pipeline.pb", "notes.txt"],
            bare(zip_files(&[("notes.txt", b"hello")])),
        ),
        case(
            "inner zip without a descriptor (bare)",
            &["no mojo/pipeline.pb or mojo/pipeline.toml", "mojo/xgb.model"],
            bare(zip_files(&[("mojo/xgb.model", b"model")])),
        ),
        case(
            "inner zip without a descriptor (in mojo.zip)",
            &["mojo.zip!mojo-pipeline/pipeline.mojo", "no mojo/pipeline.pb or mojo/pipeline.toml"],
            in_zip(zip_files(&[("other/readme.txt", b"x")])),
        ),
        case(
            "pipeline.mojo in mojo.zip is not a zip",
            &["mojo.zip!mojo-pipeline/pipeline.mojo", "pipeline.mojo must be a zip"],
            in_zip(b"plain text".to_vec()),
        ),
        case(
            "truncated protobuf",
            &["mojo/pipeline.pb", "truncated protobuf at byte"],
            bare(zip_files(&[("mojo/pipeline.pb", &truncated)])),
        ),
        case(
            "protobuf cut inside the features frame",
            &["mojo/pipeline.pb", "truncated protobuf at byte"],
            bare(zip_files(&[("mojo/pipeline.pb", &cut_inside_frame)])),
        ),
        case(
            "protobuf with an invalid wire type",
            &["invalid protobuf at byte 0: unknown wire type 7"],
            bare(zip_files(&[("mojo/pipeline.pb", &[0x0f, 1, 2])])),
        ),
        case(
            "protobuf uuid with the wrong wire type",
            &["field 2 (uuid)", "has wire type varint, expected length-delimited"],
            bare(zip_files(&[("mojo/pipeline.pb", &[pb_varint(2, 5), good_pb().encode()].concat())])),
        ),
        case(
            "protobuf column without a type",
            &["column \"untyped\" has no type"],
            bare(zip_files(&[(
                "mojo/pipeline.pb",
                &[good_pb().encode(), pb_msg(6, &[pb_msg(1, &[pb_bytes(1, b"untyped")])])].concat(),
            )])),
        ),
        case(
            "protobuf column with an unknown type tag",
            &["column \"odd\" has the unsupported type with the unknown type tag 11"],
            bare(zip_files(&[(
                "mojo/pipeline.pb",
                &[good_pb().encode(), pb_msg(6, &[pb_msg(1, &[pb_bytes(1, b"odd"), pb_bytes(11, b"")])])].concat(),
            )])),
        ),
        case(
            "protobuf without outputs",
            &["the pipeline declares no outputs"],
            pb(Pb { outputs: vec![], ..good_pb() }),
        ),
        case(
            "protobuf with a duplicate input",
            &["the input features name \"x\" twice"],
            pb(Pb { inputs: vec![("x", FLOAT32), ("x", STR)], ..good_pb() }),
        ),
        case(
            "protobuf with a missing nested pipeline",
            &["mojo/pipeline.pb refers to the nested pipeline \"mojo/predict_missing/0/pipeline.pb\", which is not in the pipeline"],
            bare(zip_files(&[(
                "mojo/pipeline.pb",
                &Pb { nested: Some("mojo/predict_missing/0/pipeline.pb"), ..good_pb() }.encode(),
            ), ("mojo/map-val-pred_interval.0", b"")])),
        ),
        case(
            "protobuf nested pipeline with an unsafe path",
            &["refers to \"mojo/../../etc/pipeline.pb\", an unsafe path"],
            bare(zip_files(&[(
                "mojo/pipeline.pb",
                &Pb { nested: Some("mojo/../../etc/pipeline.pb"), ..good_pb() }.encode(),
            ), ("mojo/map-val-pred_interval.0", b"")])),
        ),
        case(
            "protobuf with a missing prediction-interval table",
            &["refers to the prediction-interval table \"mojo/map-val-pred_interval.0\", which is not in the pipeline"],
            bare(zip_files(&[(
                "mojo/pipeline.pb",
                &Pb { nested: None, ..good_pb() }.encode(),
            )])),
        ),
        case(
            "truncated nested protobuf",
            &["mojo/nested/pipeline.pb", "truncated protobuf at byte"],
            bare(zip_files(&[
                ("mojo/pipeline.pb", &Pb { nested: Some("mojo/nested/pipeline.pb"), interval_table: None, ..good_pb() }.encode()),
                ("mojo/nested/pipeline.pb", &truncated),
            ])),
        ),
        case(
            "TOML root without [columns]",
            &["mojo/pipeline.toml: no [columns] table"],
            toml_root(TOML_ROOT.replace("[columns]", "[cols]")),
        ),
        case(
            "TOML without outputs",
            &["[columns] has no `outputs` list"],
            toml_root(TOML_ROOT.replace("outputs = [\n  ['y'", "results = [\n  ['y'")),
        ),
        case(
            "TOML syntax error",
            &["mojo/pipeline.toml: not valid TOML"],
            toml_root(TOML_ROOT.replace("uuid = '", "uuid = ")),
        ),
        case(
            "TOML unknown column type",
            &["column \"d_float64\" has the unsupported type \"decimal128\""],
            toml_root(TOML_ROOT.replace("['d_float64', 'float64']", "['d_float64', 'decimal128']")),
        ),
        case(
            "TOML bad column entry",
            &["columns.features[0] is a string, expected a ['name', 'type'] pair"],
            toml_root(TOML_ROOT.replace("['a_int32', 'int32']", "'a_int32'")),
        ),
        case(
            "TOML missing nested sub-pipeline",
            &["mojo/pipeline.toml refers to the nested pipeline \"mojo/predict_0/0_XGBoostModel_0/pipeline.toml\", which is not in the pipeline"],
            bare(toml_pipeline_with(TOML_ROOT, false)),
        ),
        case(
            "TOML ExecPipe without pwd",
            &["transforms[0] (ExecPipe) has no string `pwd`"],
            toml_root(TOML_ROOT.replace("  pwd = \"predict_0/0_XGBoostModel_0\"\n", "")),
        ),
        case(
            "TOML ExecPipe climbing out",
            &["an unsafe path", "parent-directory component"],
            toml_root(TOML_ROOT.replace("pwd = \"predict_0/", "pwd = \"../../")),
        ),
        case(
            "hostile outer zip: parent traversal",
            &["mojo.zip: entry \"../evil.sh\" is unsafe", "parent-directory"],
            Box::new(|d: &Path| write(d, "mojo.zip", &zip_files(&[("mojo-pipeline/pipeline.mojo", &toml_pipeline()), ("../evil.sh", b"rm -rf /")]))),
        ),
        case(
            "hostile outer zip: symlink",
            &["entry \"mojo-pipeline/example.csv\" is unsafe: symbolic link"],
            Box::new(|d: &Path| write(d, "mojo.zip", &zip_of(&[E::F("mojo-pipeline/pipeline.mojo", &toml_pipeline()), E::Link("mojo-pipeline/example.csv", "/etc/passwd")]))),
        ),
        case(
            "hostile inner zip: absolute path",
            &["mojo.zip!mojo-pipeline/pipeline.mojo: entry \"/etc/cron.d/x\" is unsafe: absolute path"],
            in_zip(zip_files(&[("mojo/pipeline.toml", TOML_ROOT.as_bytes()), ("/etc/cron.d/x", b"* * * * * x")])),
        ),
        case(
            "hostile inner zip: symlink",
            &["mojo.zip!mojo-pipeline/pipeline.mojo: entry \"mojo/pipeline.pb\" is unsafe: symbolic link"],
            in_zip(zip_of(&[E::Link("mojo/pipeline.pb", "/etc/passwd")])),
        ),
        case(
            "hostile bare pipeline: duplicate entries",
            &["duplicate entry"],
            bare(rename_entry(
                zip_files(&[("mojo/pipeline.pb", &good_pb().encode()), ("mojo/pipeline.pc", b"")]),
                "mojo/pipeline.pc",
                "mojo/pipeline.pb",
            )),
        ),
        case(
            "two pipelines in one mojo.zip",
            &["ambiguous source", "2 pipeline.mojo files"],
            Box::new(|d: &Path| write(d, "mojo.zip", &zip_files(&[("a/pipeline.mojo", &toml_pipeline()), ("b/pipeline.mojo", &toml_pipeline())]))),
        ),
        case(
            "a pipeline and a package at once",
            &["ambiguous source", "both pipeline entries"],
            Box::new(|d: &Path| write(d, "mojo.zip", &zip_files(&[("mojo/pipeline.toml", TOML_ROOT.as_bytes()), ("x/pipeline.mojo", &toml_pipeline())]))),
        ),
        case(
            "licence inside pipeline.mojo",
            &["holds the licence file \"mojo/license.sig\"", "remove it"],
            bare(zip_files(&[("mojo/pipeline.pb", &Pb { nested: None, interval_table: None, ..good_pb() }.encode()), ("mojo/license.sig", b"SECRET")])),
        ),
        case(
            "unpacked pipeline folder",
            &["it holds an unpacked pipeline (mojo/...)"],
            Box::new(|d: &Path| {
                let dir = d.join("unpacked");
                write(&dir, "mojo/pipeline.toml", TOML_ROOT.as_bytes());
                dir
            }),
        ),
    ];
    cases.push(Case {
        name: "total size limit counted across both levels",
        build: Box::new(move |d: &Path| write(d, "mojo.zip", &outer_big)),
        extra: vec!["--max-total-bytes".into(), limit.clone()],
        code: 3,
        expect: &[
            "mojo.zip!mojo-pipeline/pipeline.mojo: total size limit exceeded at entry \"mojo/big.bin\"",
            "--max-total-bytes",
        ],
    });
    cases.push(case(
        "missing source",
        &["does not exist"],
        Box::new(|d: &Path| d.join("nope.mojo")),
    ));
    cases.last_mut().unwrap().code = 2;

    for c in &cases {
        let label = c.name;
        let tmp = tempfile::tempdir().unwrap();
        let src = (c.build)(tmp.path());
        let target = tmp.path().join("out");
        let extra: Vec<&str> = c.extra.iter().map(String::as_str).collect();
        let o = process(&src, &target, &extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(c.code), "{label}: {err}");
        for e in c.expect {
            assert!(err.contains(e), "{label}: expected {e:?} in:\n{err}");
        }
        assert!(!err.contains("panicked"), "{label}: {err}");
        assert!(
            !target.join("model.json").exists(),
            "{label}: model.json written"
        );
        if target.exists() {
            assert_eq!(
                dir_names(&target),
                Vec::<String>::new(),
                "{label}: leftovers"
            );
        }
        // inspect refuses it the same way.
        let o = run(&["inspect", src.to_str().unwrap()]);
        if extra.is_empty() {
            assert_eq!(
                o.status.code(),
                Some(c.code),
                "{label}: inspect: {}",
                stderr(&o)
            );
        }
    }
    if let Some(limit_case) = cases.iter().find(|c| c.name.starts_with("total size")) {
        // The limit in the message is the one given, not what was left for the inner level.
        let _ = limit_case;
        let tmp = tempfile::tempdir().unwrap();
        let src = (limit_case.build)(tmp.path());
        let o = process(
            &src,
            &tmp.path().join("out"),
            &["--max-total-bytes", &limit],
        );
        let err = stderr(&o);
        assert!(err.contains(&format!("> {limit} ")), "{err}");
    }
}

#[test]
fn truncating_a_real_protobuf_anywhere_never_panics() {
    // Every prefix of a synthetic root must be refused cleanly or accepted, never crash.
    let root = Pb {
        nested: None,
        interval_table: None,
        ..good_pb()
    }
    .encode();
    let tmp = tempfile::tempdir().unwrap();
    let step = (root.len() / 12).max(1);
    for n in (1..root.len()).step_by(step) {
        let src = write(
            tmp.path(),
            &format!("p{n}.mojo"),
            &zip_files(&[("mojo/pipeline.pb", &root[..n])]),
        );
        let o = run(&["inspect", src.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "prefix {n}: {err}");
        assert!(
            o.status.code() == Some(0) || o.status.code() == Some(3),
            "prefix {n}: {err}"
        );
    }
}
