//! The native scorer against h2o-genmodel's own predictions.
//!
//! `testdata/h2o3` holds real MOJOs with 30 input rows each (missing cells, unseen
//! levels) and the output of genmodel's `PredictCsv` for them, every double exact. Each
//! model must reproduce it: labels identical, numbers within 1e-12 relative (genmodel's
//! `NA` is our `NaN`).
//!
//! `tests/reference/` holds genmodel outputs for the conformance MOJOs (which stay in
//! `../shared/conformance`, read through `CONFORMANCE_DIR`), made by
//! `tests/reference/generate.py`. Variants the scorer does not handle, and malformed
//! MOJOs, are built here by editing testdata MOJOs and must be refused at load.

use std::path::{Path, PathBuf};

use h2o3_scorer::{CellError, ContributionKind, H2oScorer, MojoError};
use testkit::mojo::FileEdit;

const TOLERANCE: f64 = 1e-12;

/// Every MOJO in testdata/h2o3, by name.
const TESTDATA: &[&str] = &[
    "gbm_binomial",
    "gbm_binomial_numlabels",
    "gbm_regression",
    "gbm_multinomial",
    "drf_binomial",
    "drf_regression",
    "drf_multinomial",
    "glm_binomial",
    "glm_regression",
    "glm_multinomial",
    "glm_poisson",
    "glm_tweedie",
    "isolation_forest",
    "extended_isolation_forest",
    "kmeans",
    "deeplearning_binomial",
    "deeplearning_regression",
    "deeplearning_autoencoder",
    "xgboost_binomial",
    "xgboost_regression",
    "stacked_ensemble_binomial",
    "pca",
    "glrm",
    "word2vec",
    "rulefit_binomial_rules_and_linear",
    "rulefit_binomial_rules",
    "rulefit_binomial_linear",
    "rulefit_multinomial_rules_and_linear",
    "rulefit_multinomial_rules",
    "rulefit_multinomial_linear",
    "rulefit_regression_rules_and_linear",
    "rulefit_regression_rules",
    "rulefit_regression_linear",
    "isotonic_regression",
    "isotonic_regression_clip",
    "uplift_drf",
    "target_encoder_binomial",
    "target_encoder_binomial_blending",
    "target_encoder_multinomial",
    "target_encoder_regression",
    "target_encoder_legacy",
    "word2vec_blank_lines",
    "glm_ordinal",
    "gam_cubic",
    "gam_thin_plate",
    "gam_ispline",
    "gam_mspline",
    "gam_several",
    "gam_binomial",
    "gam_multinomial",
    "gam_ordinal",
    "coxph",
    "coxph_breslow",
    "coxph_stratified",
    "coxph_offset",
    "coxph_interactions",
    // categorical encodings, weights and fold columns (generate.py `run_encodings`)
    "gbm_onehot_binomial",
    "gbm_binary_multinomial",
    "gbm_eigen_regression",
    "gbm_label_encoder_binomial",
    "gbm_sort_by_response_binomial",
    "gbm_enum_limited_regression",
    "drf_onehot_regression",
    "drf_binary_binomial",
    "drf_eigen_binomial",
    "drf_label_encoder_multinomial",
    "drf_sort_by_response_regression",
    "drf_enum_limited_binomial",
    "xgboost_onehot_binomial",
    "xgboost_binary_regression",
    "xgboost_label_encoder_binomial",
    "xgboost_sort_by_response_multinomial",
    "xgboost_enum_limited_binomial",
    "deeplearning_binary_binomial",
    "deeplearning_eigen_regression",
    "deeplearning_label_encoder_multinomial",
    "deeplearning_sort_by_response_binomial",
    "deeplearning_autoencoder_binary",
    "kmeans_binary",
    "extended_isolation_forest_onehot",
    "gbm_weights_binomial",
    "drf_fold_column_regression",
    "gbm_onehot_weights_offset",
];

/// Conformance MOJOs (files under `$CONFORMANCE_DIR/h2o3`) with committed genmodel
/// references in `tests/reference/<file stem>.{input,predictions}.csv`.
const CONFORMANCE: &[&str] = &[
    "sw_binom_model_prostate.mojo",
    "sw_gbm_cv.mojo",
    "sw_multi_model_iris.mojo",
    "sw_regre_model_prostate.mojo",
    "sw_isolation_forest.mojo",
    "sw_deep_learning_prostate.mojo",
    "sw_deep_learning_airlines_categoricals.zip",
    "sw_deep_learning_auto_encoder.mojo",
    "sw_stacked_ensemble_prostate.mojo",
    "sw_pca_prostate.mojo",
    "sw_glrm.mojo",
    "sw_word2vec.mojo",
];

/// MOJOs of variants testdata does not cover (other distributions, offsets, dropped
/// levels, dart, dropout, ...), made with `tests/reference/generate_variants.py` and
/// committed in `tests/reference/variants/` with genmodel's predictions.
const VARIANTS: &[&str] = &[
    "gbm_poisson",
    "gbm_gamma",
    "gbm_tweedie",
    "gbm_laplace",
    "gbm_quantile",
    "gbm_huber",
    "gbm_balanced",
    "gbm_offset",
    "drf_double_trees",
    "glm_gamma_inverse",
    "glm_drop_first_level",
    "glm_poisson_offset",
    "xgboost_multinomial",
    "xgboost_dart",
    "deeplearning_multinomial_dropout",
    "deeplearning_rectifier_dropout",
    "kmeans_unstandardized",
    "isolation_forest_flag",
    "stacked_ensemble_regression",
    "stacked_ensemble_multinomial_logit",
    "glrm_l1",
    "pca_all_levels",
];

/// Tree models with genmodel contributions in `tests/reference/contributions/`
/// (`generate.py` there): (name, where the MOJO and its input are).
const CONTRIBUTIONS: &[(&str, Source)] = &[
    ("gbm_binomial", Source::Testdata),
    ("gbm_binomial_numlabels", Source::Testdata),
    ("gbm_regression", Source::Testdata),
    ("drf_binomial", Source::Testdata),
    ("drf_regression", Source::Testdata),
    ("xgboost_binomial", Source::Testdata),
    ("xgboost_regression", Source::Testdata),
    ("gbm_poisson", Source::Variants),
    ("gbm_gamma", Source::Variants),
    ("gbm_tweedie", Source::Variants),
    ("gbm_laplace", Source::Variants),
    ("gbm_quantile", Source::Variants),
    ("gbm_huber", Source::Variants),
    ("gbm_balanced", Source::Variants),
    ("gbm_offset", Source::Variants),
    ("xgboost_dart", Source::Variants),
    ("sw_binom_model_prostate", Source::Conformance),
    ("sw_gbm_cv", Source::Conformance),
    ("sw_regre_model_prostate", Source::Conformance),
    // categorical encodings, weights (generate.py writes them beside the predictions)
    ("gbm_onehot_binomial", Source::Generated),
    ("gbm_eigen_regression", Source::Generated),
    ("gbm_label_encoder_binomial", Source::Generated),
    ("gbm_sort_by_response_binomial", Source::Generated),
    ("gbm_enum_limited_regression", Source::Generated),
    ("drf_onehot_regression", Source::Generated),
    ("drf_binary_binomial", Source::Generated),
    ("drf_eigen_binomial", Source::Generated),
    ("drf_sort_by_response_regression", Source::Generated),
    ("drf_enum_limited_binomial", Source::Generated),
    ("xgboost_onehot_binomial", Source::Generated),
    ("xgboost_binary_regression", Source::Generated),
    ("xgboost_label_encoder_binomial", Source::Generated),
    ("xgboost_enum_limited_binomial", Source::Generated),
    ("gbm_weights_binomial", Source::Generated),
    ("drf_fold_column_regression", Source::Generated),
    ("gbm_onehot_weights_offset", Source::Generated),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Testdata,
    /// A testdata model whose contributions `testdata/h2o3/generate.py` wrote beside its
    /// predictions (`<name>.contributions.csv`, listed in expected.json).
    Generated,
    Variants,
    Conformance,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/h2o3")
}

/// A CSV reader for these files: commas, optional double quotes with `""` escapes.
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => cells.push(std::mem::take(&mut cell)),
                _ => cell.push(c),
            }
        }
        cells.push(cell);
        rows.push(cells);
    }
    rows
}

/// Relative difference of two cells, or `None` when they cannot be compared as equal
/// (different labels, NaN against a number).
fn difference(got: &str, want: &str) -> Option<f64> {
    if got == want {
        return Some(0.0);
    }
    let want_nan = want == "NA" || want == "NaN";
    match (got.parse::<f64>(), want.parse::<f64>()) {
        (Ok(g), _) if g.is_nan() && want_nan => Some(0.0),
        (Ok(g), Ok(w)) if g == w => Some(0.0),
        (Ok(g), Ok(w)) if g.is_finite() && w.is_finite() => {
            Some((g - w).abs() / g.abs().max(w.abs()))
        }
        _ => None,
    }
}

/// Scores `input` with `scorer` and compares with `predictions`; returns the largest
/// relative error, or the list of mismatches. `twin` (the same MOJO loaded again: some
/// models, such as GLRM, count the rows they score) writes the same rows as JSON cells,
/// which must be serde_json's spelling of `scorer`'s cells.
fn compare(
    scorer: &H2oScorer,
    twin: &H2oScorer,
    input: &Path,
    predictions: &Path,
) -> Result<f64, String> {
    let input = read_csv(input);
    let want = read_csv(predictions);
    let header = &input[0];
    if header.as_slice() != scorer.input_names() {
        return Err(format!(
            "input names {:?} != CSV header {header:?}",
            scorer.input_names()
        ));
    }
    if want[0].as_slice() != scorer.output_names() {
        return Err(format!(
            "output names {:?} != reference header {:?}",
            scorer.output_names(),
            want[0]
        ));
    }
    if input.len() != want.len() {
        return Err(format!(
            "{} input rows, {} reference rows",
            input.len(),
            want.len()
        ));
    }
    let mut worst = 0.0f64;
    let mut errors = Vec::new();
    for (r, (cells, expected)) in input.iter().zip(&want).enumerate().skip(1) {
        let row: Vec<Option<&str>> = cells
            .iter()
            .map(|c| if c.is_empty() { None } else { Some(c.as_str()) })
            .collect();
        let mut json = Vec::new();
        let as_json = twin.score_json_into(&row, &mut json);
        let got = match scorer.score(&row) {
            Ok(g) => g,
            Err(e) => {
                errors.push(format!("row {r}: {e}"));
                if as_json.is_ok() {
                    errors.push(format!("row {r}: score_json_into accepted it"));
                }
                continue;
            }
        };
        // The JSON cells are serde_json's spelling of the same cells.
        let want_json = serde_json::to_vec(&got).unwrap();
        if as_json.is_err() || json != want_json[1..want_json.len() - 1] {
            errors.push(format!(
                "row {r}: score_json_into wrote {:?}, serde_json {:?}",
                String::from_utf8_lossy(&json),
                String::from_utf8_lossy(&want_json)
            ));
        }
        if got.len() != expected.len() {
            errors.push(format!(
                "row {r}: {} cells, expected {}",
                got.len(),
                expected.len()
            ));
            continue;
        }
        for (c, (g, w)) in got.iter().zip(expected).enumerate() {
            match difference(g, w) {
                Some(d) if d <= TOLERANCE => worst = worst.max(d),
                _ => errors.push(format!("row {r} {}: got {g}, genmodel {w}", want[0][c])),
            }
        }
    }
    if errors.is_empty() {
        Ok(worst)
    } else {
        Err(errors.join("\n  "))
    }
}

fn check(name: &str, mojo: &Path, input: &Path, predictions: &Path) -> Result<String, String> {
    let scorer = H2oScorer::load(mojo).map_err(|e| format!("load failed: {e}"))?;
    let twin = H2oScorer::load(mojo).map_err(|e| format!("load failed: {e}"))?;
    let worst = compare(&scorer, &twin, input, predictions)?;
    let (algo, category) = scorer.describe();
    Ok(format!(
        "{name}: {algo}/{category} matches genmodel, max relative error {worst:e}"
    ))
}

/// Checks `dir/<name>.zip` against `dir/<name>.predictions.csv` on `dir/<name>.input.csv`
/// for every name; one failure lists them all.
fn check_all(dir: &Path, names: &[&str]) {
    let mut failures = Vec::new();
    for &name in names {
        let r = check(
            name,
            &dir.join(format!("{name}.zip")),
            &dir.join(format!("{name}.input.csv")),
            &dir.join(format!("{name}.predictions.csv")),
        );
        match r {
            Ok(line) => println!("{line}"),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} models differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn testdata_models_match_genmodel() {
    check_all(&testdata(), TESTDATA);
}

#[test]
fn variant_models_match_genmodel() {
    check_all(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/variants"),
        VARIANTS,
    );
}

/// `$CONFORMANCE_DIR`, relative paths taken from the repository root (as CI gives it).
fn conformance_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("CONFORMANCE_DIR")?);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = if dir.is_relative() && !dir.exists() {
        root.join(dir)
    } else {
        dir
    };
    Some(dir.join("h2o3"))
}

#[test]
fn conformance_models_match_genmodel() {
    let Some(dir) = conformance_dir() else {
        eprintln!("skipped: CONFORMANCE_DIR not set");
        return;
    };
    assert!(
        dir.is_dir(),
        "CONFORMANCE_DIR set but {} is missing",
        dir.display()
    );
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let mut failures = Vec::new();
    for &file in CONFORMANCE {
        let name = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap();
        let r = check(
            name,
            &dir.join(file),
            &refs.join(format!("{name}.input.csv")),
            &refs.join(format!("{name}.predictions.csv")),
        );
        match r {
            Ok(line) => println!("{line}"),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} models differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_testdata_model_has_a_case() {
    let text = std::fs::read_to_string(testdata().join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = expected["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for n in &names {
        assert!(TESTDATA.contains(n), "no test case for testdata model {n}");
    }
    assert_eq!(names.len(), TESTDATA.len());
}

#[test]
fn scorer_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<H2oScorer>();
    let scorer =
        std::sync::Arc::new(H2oScorer::load(&testdata().join("gbm_multinomial.zip")).unwrap());
    let row = [Some("0.5"), Some("3.0"), Some("2.0"), Some("red")];
    let first = scorer.score(&row).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = scorer.clone();
            std::thread::spawn(move || s.score(&row).unwrap())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), first);
    }
}

#[test]
fn cells_that_are_not_numbers_are_refused() {
    let scorer = H2oScorer::load(&testdata().join("gbm_regression.zip")).unwrap();
    let names = scorer.input_names().to_vec();
    let x2 = names.iter().position(|n| n == "x2").unwrap();
    let cases = [
        ("letters", "abc"),
        ("decimal comma", "1,5"),
        ("two numbers", "1 2"),
    ];
    for (label, bad) in cases {
        let mut row: Vec<Option<&str>> = vec![Some("1"); names.len()];
        row[names.iter().position(|n| n == "color").unwrap()] = Some("red");
        row[x2] = Some(bad);
        let e = scorer.score(&row).expect_err(label);
        assert_eq!(
            e,
            CellError {
                column: "x2".into(),
                value: bad.into()
            },
            "{label}"
        );
        assert_eq!(
            e.to_string(),
            format!("column \"x2\": {bad:?} is not a number")
        );
    }
    // Missing spellings and unknown levels are not errors.
    let mut row: Vec<Option<&str>> = vec![Some("NA"); names.len()];
    row[names.iter().position(|n| n == "color").unwrap()] = Some("no such level");
    assert_eq!(scorer.score(&row).unwrap().len(), 1);
}

/// A copy of a testdata MOJO with `model.ini` keys replaced (`Some`) or removed (`None`)
/// and files replaced, written as a zip into `dir`.
fn mutated(
    dir: &Path,
    base: &str,
    ini: &[(&str, Option<&str>)],
    files: &[(&str, &[u8])],
) -> PathBuf {
    let files: Vec<FileEdit> = files.iter().map(|(n, b)| FileEdit::Put(n, b)).collect();
    testkit::mojo::edited(&testdata().join(base), dir, ini, &files)
}

#[test]
fn unsupported_variants_are_refused_with_a_reason() {
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, Option<&'a str>)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown algorithm",
            "gbm_regression.zip",
            vec![
                ("algo", Some("psvm")),
                ("algorithm", Some("PSVM")),
                ("category", Some("Regression")),
            ],
            "psvm",
        ),
        (
            "GBM custom distribution",
            "gbm_regression.zip",
            vec![("distribution", Some("custom"))],
            "custom",
        ),
        (
            "GBM bernoulli on a regression",
            "gbm_regression.zip",
            vec![("distribution", Some("bernoulli"))],
            "bernoulli",
        ),
        (
            "encoding genmodel's tree reader has no encoder for",
            "gbm_onehot_binomial.zip",
            vec![("_genmodel_encoding", Some("OneHotInternal"))],
            "OneHotInternal",
        ),
        (
            "Deep Learning one-hot explicit (genmodel has no encoder)",
            "deeplearning_binary_binomial.zip",
            vec![("_genmodel_encoding", Some("OneHotExplicit"))],
            "OneHotExplicit",
        ),
        (
            "Deep Learning EnumLimited (h2o writes a null encoding)",
            "deeplearning_binary_binomial.zip",
            vec![("_genmodel_encoding", Some("null"))],
            "null",
        ),
        (
            "preprocessors",
            "gbm_binomial.zip",
            vec![("preprocessors_count", Some("1"))],
            "preprocessors",
        ),
        (
            "GLM category Ordinal, family multinomial",
            "glm_multinomial.zip",
            vec![("category", Some("Ordinal"))],
            "Ordinal",
        ),
        (
            "GLM unknown link",
            "glm_regression.zip",
            vec![("link", Some("probit"))],
            "probit",
        ),
        (
            "DL maxout",
            "deeplearning_regression.zip",
            vec![("activation", Some("Maxout"))],
            "Maxout",
        ),
        (
            "DL modified huber",
            "deeplearning_binomial.zip",
            vec![("distribution", Some("modified_huber"))],
            "modified_huber",
        ),
        (
            "GLRM loss",
            "glrm.zip",
            vec![("regularizationX", Some("Simplex"))],
            "Simplex",
        ),
        (
            "stacked ensemble transform",
            "stacked_ensemble_binomial.zip",
            vec![("metalearner_transform", Some("Percentile"))],
            "Percentile",
        ),
        (
            "clustering GBM",
            "gbm_regression.zip",
            vec![("category", Some("Clustering"))],
            "Clustering",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (label, base, ini, needle) in cases {
        let path = mutated(dir.path(), base, &ini, &[]);
        match H2oScorer::load(&path) {
            Err(e @ MojoError::NotScorable { .. }) => {
                assert!(e.to_string().contains(needle), "{label}: {e}")
            }
            Err(e) => panic!("{label}: expected Unsupported, got {e}"),
            Ok(s) => panic!("{label}: loaded as {:?}", s.describe()),
        }
    }
    // A LabelEncoder level Java's Integer.parseInt reads with non-ASCII digits.
    let grade = "1\n13\n2\n3\n\u{663}\n8\n";
    let path = mutated(
        dir.path(),
        "gbm_label_encoder_binomial.zip",
        &[],
        &[("_orig_domain_values_4", grade.as_bytes())],
    );
    let e = H2oScorer::load(&path).expect_err("non-ASCII digits");
    assert!(
        matches!(e, MojoError::NotScorable { .. }) && e.to_string().contains("LabelEncoder"),
        "{e}"
    );
}

#[test]
fn malformed_models_are_invalid() {
    let truncated_tree: &[u8] = &[0x30, 0x00, 0x00, 0x03];
    let xgb = std::fs::read(testdata().join("xgboost_regression.zip")).unwrap();
    let booster = {
        use std::io::Read;
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(xgb)).unwrap();
        let mut b = Vec::new();
        z.by_name("boosterBytes")
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        b
    };
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, Option<&'a str>)>,
        Vec<(&'a str, &'a [u8])>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "truncated tree",
            "gbm_binomial.zip",
            vec![],
            vec![("trees/t00_001.bin", truncated_tree)],
            "t00_001.bin",
        ),
        (
            "GBM without init_f",
            "gbm_regression.zip",
            vec![("init_f", None)],
            vec![],
            "init_f",
        ),
        (
            "GLM beta too short",
            "glm_regression.zip",
            vec![("beta", Some("[1.0]"))],
            vec![],
            "beta",
        ),
        (
            "DL weights missing",
            "deeplearning_regression.zip",
            vec![("weight_layer1", None)],
            vec![],
            "layer 1",
        ),
        (
            "truncated booster",
            "xgboost_regression.zip",
            vec![],
            vec![("boosterBytes", &booster[..booster.len() / 2])],
            "boosterBytes",
        ),
        (
            "k-means center too long",
            "kmeans.zip",
            vec![("center_0", Some("[1, 2, 3, 4, 5, 6]"))],
            vec![],
            "center_0",
        ),
        (
            "encoding without original columns",
            "drf_binomial.zip",
            vec![("_genmodel_encoding", Some("OneHotExplicit"))],
            vec![],
            "_n_orig_names",
        ),
        (
            "tree MOJO without _genmodel_encoding",
            "gbm_binomial.zip",
            vec![("_genmodel_encoding", None)],
            vec![],
            "_genmodel_encoding",
        ),
        (
            "fewer original names than claimed",
            "gbm_onehot_binomial.zip",
            vec![("_n_orig_names", Some("7"))],
            vec![],
            "_orig_names",
        ),
        (
            "original domain shorter than claimed",
            "gbm_binary_multinomial.zip",
            vec![("_m_orig_domain_values_3", Some("14"))],
            vec![],
            "_orig_domain_values_3",
        ),
        (
            "original domains missing",
            "gbm_eigen_regression.zip",
            vec![("_n_orig_domain_values", None)],
            vec![],
            "_n_orig_domain_values",
        ),
        (
            "Eigen projections too short",
            "gbm_eigen_regression.zip",
            vec![("_orig_projection_array", Some("[0.5, 0.25]"))],
            vec![],
            "_orig_projection_array",
        ),
        (
            "one-hot layout against n_features",
            "drf_onehot_regression.zip",
            vec![("_m_orig_domain_values_2", Some("3"))],
            vec![("_orig_domain_values_2", b"blue\ngreen\nred\n")],
            "n_features",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (label, base, ini, files, needle) in cases {
        let path = mutated(dir.path(), base, &ini, &files);
        match H2oScorer::load(&path) {
            Err(e @ MojoError::Invalid { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(needle) && msg.contains(".zip"),
                    "{label}: {msg}"
                )
            }
            Err(e) => panic!("{label}: expected Invalid, got {e}"),
            Ok(s) => panic!("{label}: loaded as {:?}", s.describe()),
        }
    }
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let not_zip = tmp.join("not-a-mojo.zip");
    std::fs::write(&not_zip, b"this is not a zip").unwrap();
    let e = H2oScorer::load(&not_zip).expect_err("garbage");
    assert!(e.to_string().contains("not-a-mojo.zip"), "{e}");
    let missing = tmp.join("missing.zip");
    let e = H2oScorer::load(&missing).expect_err("missing");
    assert!(e.to_string().contains("missing.zip"), "{e}");
}

/// The MOJO and input CSV of a contributions case; `None` for a conformance MOJO when
/// `CONFORMANCE_DIR` is not set.
fn contribution_case(name: &str, source: Source) -> Option<(PathBuf, PathBuf)> {
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    Some(match source {
        Source::Testdata | Source::Generated => (
            testdata().join(format!("{name}.zip")),
            testdata().join(format!("{name}.input.csv")),
        ),
        Source::Variants => (
            refs.join(format!("variants/{name}.zip")),
            refs.join(format!("variants/{name}.input.csv")),
        ),
        Source::Conformance => {
            let dir = conformance_dir()?;
            assert!(
                dir.is_dir(),
                "CONFORMANCE_DIR set but {} is missing",
                dir.display()
            );
            (
                dir.join(format!("{name}.mojo")),
                refs.join(format!("{name}.input.csv")),
            )
        }
    })
}

/// Compares the scorer's contributions of every input row with genmodel's; returns the
/// largest relative error. Genmodel's values are `float`s: ours are read back as `f32`
/// and widened, so equal values compare exactly.
fn compare_contributions(
    scorer: &H2oScorer,
    input: &Path,
    reference: &Path,
) -> Result<f64, String> {
    let input = read_csv(input);
    let want = read_csv(reference);
    let names = scorer
        .contribution_names()
        .ok_or_else(|| format!("no contributions: {:?}", scorer.contributions_unavailable()))?;
    if want[0].as_slice() != names {
        return Err(format!("names {names:?} != genmodel's {:?}", want[0]));
    }
    if input.len() != want.len() {
        return Err(format!(
            "{} input rows, {} reference rows",
            input.len(),
            want.len()
        ));
    }
    let mut worst = 0.0f64;
    let mut errors = Vec::new();
    for (r, (cells, expected)) in input.iter().zip(&want).enumerate().skip(1) {
        let row: Vec<Option<&str>> = cells
            .iter()
            .map(|c| if c.is_empty() { None } else { Some(c.as_str()) })
            .collect();
        let got = match scorer.contributions(&row) {
            Some(Ok(g)) => g,
            Some(Err(e)) => {
                errors.push(format!("row {r}: {e}"));
                continue;
            }
            None => return Err("contributions() returned None".into()),
        };
        if got.len() != expected.len() {
            errors.push(format!(
                "row {r}: {} cells, expected {}",
                got.len(),
                expected.len()
            ));
            continue;
        }
        for (c, (g, w)) in got.iter().zip(expected).enumerate() {
            let widened = g.parse::<f32>().map(|v| f64::from(v).to_string());
            match widened.as_deref().ok().and_then(|g| difference(g, w)) {
                Some(d) if d <= TOLERANCE => worst = worst.max(d),
                _ => errors.push(format!("row {r} {}: got {g}, genmodel {w}", names[c])),
            }
        }
    }
    if errors.is_empty() {
        Ok(worst)
    } else {
        Err(errors.join("\n  "))
    }
}

#[test]
fn contributions_match_genmodel() {
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/contributions");
    let mut failures = Vec::new();
    let mut skipped = 0;
    for &(name, source) in CONTRIBUTIONS {
        let Some((mojo, input)) = contribution_case(name, source) else {
            skipped += 1;
            continue;
        };
        let reference = match source {
            Source::Generated => testdata().join(format!("{name}.contributions.csv")),
            _ => refs.join(format!("{name}.contributions.csv")),
        };
        let r = H2oScorer::load(&mojo)
            .map_err(|e| format!("load failed: {e}"))
            .and_then(|s| {
                // XGBoost's are over its one-hot slots; H2O tree models' over the input
                // columns, unless a categorical encoding made other features of them.
                let header = &read_csv(&reference)[0];
                let features = &header[..header.len() - 1];
                let inputs = &read_csv(&input)[0];
                let over_inputs = (features.len()..=features.len() + 1).contains(&inputs.len())
                    && features.iter().zip(inputs).all(|(f, i)| f == i);
                let want = if name.starts_with("xgboost") || !over_inputs {
                    ContributionKind::Transformed
                } else {
                    ContributionKind::Original
                };
                if s.contribution_kind() != Some(want) {
                    return Err(format!(
                        "kind {:?}, expected {want:?}",
                        s.contribution_kind()
                    ));
                }
                compare_contributions(&s, &input, &reference)
            });
        match r {
            Ok(worst) => {
                println!("{name}: contributions match genmodel, max relative error {worst:e}")
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    if skipped > 0 {
        eprintln!("skipped {skipped} conformance models: CONFORMANCE_DIR not set");
    }
    assert!(
        failures.is_empty(),
        "{} models differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn contributions_add_up_to_the_link_space_prediction() {
    // GBM regression with the identity link: bias + contributions = prediction (up to
    // the float sums); Bernoulli GBM: the sum is the log-odds of class 1.
    let cases = [
        ("gbm_regression", false),
        ("gbm_binomial", true),
        ("xgboost_binomial", true),
    ];
    for (name, logit) in cases {
        let scorer = H2oScorer::load(&testdata().join(format!("{name}.zip"))).unwrap();
        let input = read_csv(&testdata().join(format!("{name}.input.csv")));
        for (r, cells) in input.iter().enumerate().skip(1) {
            let row: Vec<Option<&str>> = cells
                .iter()
                .map(|c| if c.is_empty() { None } else { Some(c.as_str()) })
                .collect();
            let c = scorer.contributions(&row).unwrap().unwrap();
            let sum: f64 = c.iter().map(|v| v.parse::<f64>().unwrap()).sum();
            let pred = scorer.score(&row).unwrap();
            let p: f64 = pred.last().unwrap().parse().unwrap();
            let want = if logit { (p / (1.0 - p)).ln() } else { p };
            assert!(
                (sum - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{name} row {r}: contributions sum to {sum}, prediction {want}"
            );
        }
    }
}

#[test]
fn models_without_contributions_say_why() {
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/variants");
    let cases = [
        (
            "GBM multinomial",
            testdata().join("gbm_multinomial.zip"),
            "multinomial",
        ),
        (
            "DRF multinomial",
            testdata().join("drf_multinomial.zip"),
            "multinomial",
        ),
        (
            "XGBoost multinomial",
            refs.join("xgboost_multinomial.zip"),
            "multinomial",
        ),
        (
            "DRF double trees",
            refs.join("drf_double_trees.zip"),
            "binomial_double_trees",
        ),
        (
            "GLM",
            testdata().join("glm_binomial.zip"),
            "only for GBM, DRF and XGBoost",
        ),
        (
            "deep learning",
            testdata().join("deeplearning_regression.zip"),
            "only for GBM",
        ),
        (
            "stacked ensemble",
            testdata().join("stacked_ensemble_binomial.zip"),
            "only for GBM",
        ),
    ];
    for (label, mojo, needle) in cases {
        let scorer = H2oScorer::load(&mojo).unwrap();
        assert_eq!(scorer.contribution_names(), None, "{label}");
        assert_eq!(scorer.contribution_kind(), None, "{label}");
        let why = scorer.contributions_unavailable().unwrap_or("");
        assert!(why.contains(needle), "{label}: {why}");
        assert!(scorer.contributions(&[]).is_none(), "{label}");
        // Scoring is unaffected.
        assert!(scorer.score(&[]).is_ok(), "{label}");
    }
}

#[test]
fn contributions_need_what_genmodel_needs() {
    use std::io::Read;
    let drf_details = {
        let mut z =
            zip::ZipArchive::new(std::fs::File::open(testdata().join("drf_binomial.zip")).unwrap())
                .unwrap();
        let mut text = String::new();
        z.by_name("experimental/modelDetails.json")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let no_varimp = drf_details.replace("\"variable_importances\"", "\"no_importances\"");
    let half_aux = {
        let mut z =
            zip::ZipArchive::new(std::fs::File::open(testdata().join("gbm_binomial.zip")).unwrap())
                .unwrap();
        let mut b = Vec::new();
        z.by_name("trees/t00_002_aux.bin")
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        b.truncate(b.len() - 20);
        b
    };
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, Option<&'a str>)>,
        Vec<(&'a str, &'a [u8])>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "DRF without variable importances",
            "drf_binomial.zip",
            vec![],
            vec![("experimental/modelDetails.json", no_varimp.as_bytes())],
            "variable importances",
        ),
        (
            "old tree format",
            "gbm_binomial.zip",
            vec![("mojo_version", Some("1.10"))],
            vec![],
            "1.20",
        ),
        (
            "truncated aux file",
            "gbm_binomial.zip",
            vec![],
            vec![("trees/t00_002_aux.bin", &half_aux)],
            "t00_002_aux.bin",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (label, base, ini, files, needle) in cases {
        let path = mutated(dir.path(), base, &ini, &files);
        let scorer = H2oScorer::load(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
        let why = scorer.contributions_unavailable().unwrap_or("");
        assert!(why.contains(needle), "{label}: {why:?}");
        assert!(scorer.score(&[]).is_ok(), "{label}: scoring still works");
    }
}

#[test]
fn contribution_cells_are_read_like_score_cells() {
    let scorer = H2oScorer::load(&testdata().join("gbm_regression.zip")).unwrap();
    let names = scorer.input_names().to_vec();
    let mut row: Vec<Option<&str>> = vec![Some("1"); names.len()];
    row[names.iter().position(|n| n == "x2").unwrap()] = Some("abc");
    let e = scorer.contributions(&row).unwrap().unwrap_err();
    assert_eq!((e.column.as_str(), e.value.as_str()), ("x2", "abc"));
    // All missing: a valid row.
    let c = scorer.contributions(&[]).unwrap().unwrap();
    assert_eq!(c.len(), scorer.contribution_names().unwrap().len());
}

/// RuleFit, isotonic regression, Uplift DRF and Target Encoder MOJOs edited into what
/// genmodel cannot load or score (a key or file missing or wrong), or into a variant it
/// does not score: each is refused at load, as `Invalid` or `NotScorable`, with a message
/// naming what is wrong.
#[test]
fn rulefit_isotonic_uplift_and_target_encoder_refusals() {
    use testkit::mojo::FileEdit::{Put, Remove};
    const TE: &str = "feature_engineering/target_encoding/";
    let te = |f: &str| format!("{TE}{f}");
    let (enc_map, inenc, inout) = (
        te("encoding_map.ini"),
        te("input_encoding_columns_map.ini"),
        te("input_output_columns_map.ini"),
    );
    let unknown_column_in = "[from]\nshape\n[to]\ncolor\n[from]\nsize\n[to]\nsize\n";
    let unknown_column_out = "[from]\nshape\n[to]\ncolor_te\n[from]\nsize\n[to]\nsize_te\n";
    let no_codes = "[from]\ncolor\n[to]\ncolor\n[from]\nsize\n[to]\nsize\n[from]\ncolor\nsize\n[to]\ncolor:size\n";
    let one_output = "[from]\ncolor\n[to]\ncolor_te\n";
    let bad_line = "[color]\n0 = x y\n[size]\n0 = 1.0 2.0\n";
    let too_few = [0u8, 0, 0, 5];
    let one_y = [0u8, 0, 0, 1, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0];
    #[derive(Debug, PartialEq)]
    enum Want {
        Invalid,
        NotScorable,
    }
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, Option<&'a str>)>,
        Vec<testkit::mojo::FileEdit<'a>>,
        Want,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "RuleFit's linear model is not a sub-model",
            "rulefit_binomial_rules_and_linear",
            vec![("linear_model", Some("nope"))],
            vec![],
            Want::Invalid,
            "linear model \"nope\"",
        ),
        (
            "RuleFit without its model type",
            "rulefit_binomial_rules_and_linear",
            vec![("model_type", None)],
            vec![],
            Want::Invalid,
            "model_type",
        ),
        (
            "RuleFit condition on a column past the features",
            "rulefit_binomial_rules_and_linear",
            vec![("feature_index_0_0_0_0", Some("7"))],
            vec![],
            Want::Invalid,
            "feature_index_0_0_0_0 = 7",
        ),
        (
            "RuleFit rule without its name",
            "rulefit_binomial_rules",
            vec![("var_name_rule_id_0_0_0", None)],
            vec![],
            Want::Invalid,
            "var_name_rule_id_0_0_0",
        ),
        (
            "RuleFit input named after no GLM column",
            "rulefit_regression_linear",
            vec![("linear_names_0", Some("nope"))],
            vec![],
            Want::Invalid,
            "linear_names_0 = \"nope\"",
        ),
        (
            "RuleFit without the rule count of a group",
            "rulefit_multinomial_rules",
            vec![("num_rules_M0T1", None)],
            vec![],
            Want::Invalid,
            "num_rules_M0T1",
        ),
        (
            "isotonic thresholds missing",
            "isotonic_regression",
            vec![],
            vec![Remove("calib/thresholds_x")],
            Want::Invalid,
            "calib/thresholds_x: is missing",
        ),
        (
            "isotonic thresholds shorter than their count",
            "isotonic_regression",
            vec![],
            vec![Put("calib/thresholds_y", &too_few)],
            Want::Invalid,
            "claims 5 doubles",
        ),
        (
            "isotonic x and y of different lengths",
            "isotonic_regression_clip",
            vec![],
            vec![Put("calib/thresholds_y", &one_y)],
            Want::Invalid,
            "has 1 values for",
        ),
        (
            "Uplift DRF with three classes",
            "uplift_drf",
            vec![("n_classes", Some("3"))],
            vec![],
            Want::NotScorable,
            "n_classes = 3",
        ),
        (
            "Uplift DRF claiming trees it lacks",
            "uplift_drf",
            vec![("n_trees", Some("9"))],
            vec![],
            Want::Invalid,
            "n_trees = 9",
        ),
        (
            "Target Encoder without its encoding map",
            "target_encoder_binomial",
            vec![],
            vec![Remove(&enc_map)],
            Want::Invalid,
            "encoding_map.ini: is missing",
        ),
        (
            "Target Encoder without with_blending",
            "target_encoder_binomial",
            vec![("with_blending", None)],
            vec![],
            Want::Invalid,
            "with_blending",
        ),
        (
            "Target Encoder blending without smoothing",
            "target_encoder_binomial_blending",
            vec![("smoothing", None)],
            vec![],
            Want::Invalid,
            "smoothing",
        ),
        (
            "Target Encoder encoding a column the model lacks",
            "target_encoder_binomial",
            vec![],
            vec![
                Put(&inenc, unknown_column_in.as_bytes()),
                Put(&inout, unknown_column_out.as_bytes()),
            ],
            Want::Invalid,
            "\"shape\", which is not one of the model's columns",
        ),
        (
            "Target Encoder interaction without its codes",
            "target_encoder_binomial_blending",
            vec![],
            vec![Put(&inenc, no_codes.as_bytes())],
            Want::Invalid,
            "[to_domain]",
        ),
        (
            "Target Encoder outputs that do not line up",
            "target_encoder_binomial",
            vec![],
            vec![Put(&inout, one_output.as_bytes())],
            Want::Invalid,
            "names 1 encodings",
        ),
        (
            "Target Encoder encoding line that is not numbers",
            "target_encoder_binomial",
            vec![],
            vec![Put(&enc_map, bad_line.as_bytes())],
            Want::Invalid,
            "line 2: \"0 = x y\"",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (label, base, ini, files, want, needle) in cases {
        let src = testdata().join(format!("{base}.zip"));
        let path = testkit::mojo::edited(&src, dir.path(), &ini, &files);
        let got = match H2oScorer::load(&path) {
            Ok(s) => panic!("{label}: loaded as {:?}", s.describe()),
            Err(e @ MojoError::Invalid { .. }) => (Want::Invalid, e.to_string()),
            Err(e @ MojoError::NotScorable { .. }) => (Want::NotScorable, e.to_string()),
            Err(e) => panic!("{label}: {e}"),
        };
        assert_eq!(got.0, want, "{label}: {}", got.1);
        assert!(
            got.1.contains(needle),
            "{label}: {needle:?} not in {}",
            got.1
        );
    }
}

/// Every testdata model genmodel refuses contributions for (`no_contributions` in
/// expected.json, genmodel's own message, recorded by the generator) has none here
/// either, and the scorer says why.
#[test]
fn models_genmodel_gives_no_contributions_say_why() {
    let text = std::fs::read_to_string(testdata().join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for m in expected["models"].as_array().unwrap() {
        let Some(refusal) = m.get("no_contributions") else {
            continue;
        };
        let name = m["name"].as_str().unwrap();
        let scorer = H2oScorer::load(&testdata().join(format!("{name}.zip"))).unwrap();
        assert_eq!(
            scorer.contribution_names(),
            None,
            "{name}: genmodel says {refusal}"
        );
        assert_eq!(scorer.capabilities(), vec!["SCORE"], "{name}");
        let why = scorer.contributions_unavailable().unwrap_or("");
        assert!(why.contains("genmodel"), "{name}: {why:?}");
        n += 1;
    }
    assert!(n >= 18, "{n} testdata models record genmodel's refusal");
}

/// What a GAM, CoxPH or GLM ordinal MOJO the scorer refuses must be refused as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// `MojoError::NotScorable`: well formed, but genmodel cannot score it either (or
    /// not as the scorer would), or beyond what the scorer does.
    NotScorable,
    /// `MojoError::Invalid`: malformed.
    Invalid,
}

#[test]
fn gam_coxph_and_ordinal_refusals_say_why() {
    use testkit::mojo::FileEdit::{Put, Remove};
    use Refusal::{Invalid, NotScorable};
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, Option<&'a str>)>,
        Vec<FileEdit<'a>>,
        Refusal,
        &'a str,
    );
    let reversed_knots: Vec<u8> = {
        use std::io::Read;
        let f = std::fs::File::open(testdata().join("gam_cubic.zip")).unwrap();
        let mut z = zip::ZipArchive::new(f).unwrap();
        let mut b = Vec::new();
        z.by_name("knots").unwrap().read_to_end(&mut b).unwrap();
        b.chunks(8).rev().flatten().copied().collect()
    };
    let cases: Vec<Case> = vec![
        (
            "GAM thin plate spline with standardize",
            "gam_thin_plate.zip",
            vec![("standardize", Some("true"))],
            vec![],
            NotScorable,
            "standardize",
        ),
        (
            "GAM with an offset column",
            "gam_cubic.zip",
            vec![("offset_column", Some("x3"))],
            vec![],
            NotScorable,
            "offset",
        ),
        (
            "GAM M-spline of order 40",
            "gam_mspline.zip",
            vec![("spline_orders_sorted", Some("[40]"))],
            vec![],
            NotScorable,
            "spline order 40",
        ),
        (
            "GAM M-spline centred with a smaller column's matrix",
            "gam_binomial.zip",
            vec![("num_knots_sorted", Some("[4, 4, 5, 6]"))],
            vec![],
            NotScorable,
            "M-spline",
        ),
        (
            "GAM thin plate over two columns after an I-spline",
            "gam_several.zip",
            vec![
                ("num_CS_col", Some("1")),
                ("num_IS_col", Some("1")),
                ("bs_sorted", Some("[0, 2, 1]")),
                ("spline_orders_sorted", Some("[0, 3, 0]")),
            ],
            vec![],
            NotScorable,
            "polynomial terms",
        ),
        (
            "GAM ordinal link on a regression",
            "gam_cubic.zip",
            vec![("link", Some("ologit"))],
            vec![],
            NotScorable,
            "ologit",
        ),
        (
            "GAM family bernoulli on a regression",
            "gam_cubic.zip",
            vec![("family", Some("bernoulli"))],
            vec![],
            NotScorable,
            "bernoulli",
        ),
        (
            "GAM knots truncated",
            "gam_cubic.zip",
            vec![],
            vec![Put("knots", &[0u8; 8])],
            Invalid,
            "knots",
        ),
        (
            "GAM knots out of order",
            "gam_cubic.zip",
            vec![],
            vec![Put("knots", &reversed_knots)],
            Invalid,
            "ascending",
        ),
        (
            "GAM cubic spline with two knots",
            "gam_cubic.zip",
            vec![("num_knots_sorted", Some("[2]"))],
            vec![],
            Invalid,
            "2 knots",
        ),
        (
            "GAM spline types out of genmodel's order",
            "gam_cubic.zip",
            vec![("bs_sorted", Some("[1]"))],
            vec![],
            Invalid,
            "bs_sorted",
        ),
        (
            "GAM without its sorted GAM columns",
            "gam_cubic.zip",
            vec![],
            vec![Remove("gam_columns_sorted")],
            Invalid,
            "gam_columns_sorted",
        ),
        (
            "GAM sorted GAM columns with an extra name",
            "gam_cubic.zip",
            vec![],
            vec![Put("gam_columns_sorted", b"age\nscore\n")],
            Invalid,
            "gam_columns_sorted",
        ),
        (
            "GAM coefficients too short",
            "gam_cubic.zip",
            vec![("beta_center", Some("[1.0]"))],
            vec![],
            Invalid,
            "beta_center",
        ),
        (
            "GAM multinomial coefficients truncated",
            "gam_multinomial.zip",
            vec![],
            vec![Put("beta_multinomial_centering", &[0u8; 16])],
            Invalid,
            "beta_multinomial_centering",
        ),
        (
            "CoxPH offset that is a categorical feature",
            "coxph.zip",
            vec![("offset_column", Some("color"))],
            vec![],
            NotScorable,
            "categorical",
        ),
        (
            "CoxPH without coefficients",
            "coxph.zip",
            vec![("coef", None)],
            vec![],
            Invalid,
            "coef",
        ),
        (
            "CoxPH stratum means for fewer strata",
            "coxph_stratified.zip",
            vec![("x_mean_cat_size1", Some("1"))],
            vec![],
            Invalid,
            "x_mean_cat",
        ),
        (
            "CoxPH stratum key longer than the features",
            "coxph_stratified.zip",
            vec![("strata_0", Some("[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]"))],
            vec![],
            Invalid,
            "stratum",
        ),
        (
            "CoxPH interaction column out of range",
            "coxph_interactions.zip",
            vec![("interaction_targets", Some("[3, 4, 99]"))],
            vec![],
            Invalid,
            "99",
        ),
        (
            "CoxPH numeric offsets too short",
            "coxph.zip",
            vec![("num_offsets", Some("[2]"))],
            vec![],
            Invalid,
            "num_offsets",
        ),
        (
            "GLM ordinal coefficients not a multiple of the classes",
            "glm_ordinal.zip",
            vec![("beta", Some("[1.0, 2.0]"))],
            vec![],
            Invalid,
            "beta",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (label, base, ini, files, want, needle) in cases {
        let path = testkit::mojo::edited(&testdata().join(base), dir.path(), &ini, &files);
        let got = match H2oScorer::load(&path) {
            Err(e @ MojoError::NotScorable { .. }) => (NotScorable, e.to_string()),
            Err(e @ MojoError::Invalid { .. }) => (Invalid, e.to_string()),
            Err(e) => panic!("{label}: unexpected error {e}"),
            Ok(s) => panic!("{label}: loaded as {:?}", s.describe()),
        };
        assert_eq!(got.0, want, "{label}: {}", got.1);
        assert!(
            got.1.contains(needle) && got.1.contains(".zip"),
            "{label}: {}",
            got.1
        );
    }
}

/// Scores one row given as (column, cell) pairs; other columns are missing.
fn score_named(scorer: &H2oScorer, cells: &[(&str, &str)]) -> Vec<String> {
    let row: Vec<Option<&str>> = scorer
        .input_names()
        .iter()
        .map(|n| cells.iter().find(|(c, _)| c == n).map(|(_, v)| *v))
        .collect();
    scorer.score(&row).unwrap()
}

#[test]
fn coxph_rows_genmodel_cannot_score_have_no_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let plain = H2oScorer::load(&testdata().join("coxph_stratified.zip")).unwrap();
    // Without strata_5 = [1, 2] (g2, s3), that combination is unknown: genmodel's stratum
    // lookup gives null and scoring throws.
    let fewer = mutated(
        dir.path(),
        "coxph_stratified.zip",
        &[("strata_count", Some("5"))],
        &[],
    );
    let fewer = H2oScorer::load(&fewer).unwrap();
    let row = |grp, site| {
        vec![
            ("grp", grp),
            ("site", site),
            ("color", "red"),
            ("age", "50"),
            ("score", "45.5"),
        ]
    };
    assert_eq!(score_named(&fewer, &row("g2", "s3")), vec!["NaN"]);
    for (grp, site) in [("g1", "s1"), ("g2", "s2"), ("g1", "s3")] {
        let got = score_named(&fewer, &row(grp, site));
        assert_eq!(got, score_named(&plain, &row(grp, site)), "{grp} {site}");
        assert_ne!(got, vec!["NaN"], "{grp} {site}");
    }
    // A missing or unknown stratum level counts as level 0 (s1).
    let s1 = score_named(&plain, &row("g2", "s1"));
    assert_eq!(score_named(&plain, &row("g2", "")), s1);
    assert_eq!(score_named(&plain, &row("g2", "nowhere")), s1);

    // With every level coded, a missing level makes genmodel throw; a missing number only
    // makes lp NaN (PredictCsv's NA), like a missing level with the first level dropped.
    // MOJOs written before `num_numerical_columns` read every coefficient after the
    // categorical ones in column order: the same lp here.
    let old = testkit::mojo::edited(
        &testdata().join("coxph.zip"),
        dir.path(),
        &[("num_numerical_columns", None), ("num_offsets", None)],
        &[],
    );
    let old = H2oScorer::load(&old).unwrap();
    let new = H2oScorer::load(&testdata().join("coxph.zip")).unwrap();
    let input = read_csv(&testdata().join("coxph.input.csv"));
    for cells in &input[1..] {
        let row: Vec<Option<&str>> = cells.iter().map(|c| Some(c.as_str())).collect();
        assert_eq!(
            old.score(&row).unwrap(),
            new.score(&row).unwrap(),
            "{cells:?}"
        );
    }

    let all_levels = mutated(
        dir.path(),
        "coxph.zip",
        &[("use_all_factor_levels", Some("true"))],
        &[],
    );
    let all_levels = H2oScorer::load(&all_levels).unwrap();
    let full = [("color", "red"), ("age", "50"), ("score", "45.5")];
    assert_ne!(score_named(&all_levels, &full), vec!["NaN"]);
    assert_eq!(
        score_named(&all_levels, &[("age", "50"), ("score", "45.5")]),
        vec!["NaN"]
    );
}

#[test]
fn gam_predictors_are_read_as_genmodel_reads_them() {
    let scorer = H2oScorer::load(&testdata().join("gam_several.zip")).unwrap();
    // The original predictors, never the spline columns.
    assert_eq!(
        scorer.input_names(),
        ["color", "x3", "age", "dose", "score"]
    );
    let base = [
        ("color", "red"),
        ("x3", "2"),
        ("dose", "1.5"),
        ("score", "47"),
    ];
    let with_age = |age: &str| {
        let mut cells = base.to_vec();
        cells.push(("age", age));
        score_named(&scorer, &cells)
    };
    // A missing predictor leaves its spline columns to mean imputation; "NaN" is missing.
    assert_eq!(with_age("NaN"), with_age(""));
    assert_ne!(with_age("40"), with_age(""));
    // A predictor that is not a number is refused like any numeric cell.
    let e = scorer
        .score(&[Some("red"), Some("2"), Some("forty")])
        .unwrap_err();
    assert_eq!((e.column.as_str(), e.value.as_str()), ("age", "forty"));
}

#[test]
fn gam_coxph_and_ordinal_have_no_contributions() {
    // genmodel 3.46: "setEnableContributions can be set to true only with DRF, GBM, or
    // XGBoost models."
    for name in [
        "glm_ordinal",
        "gam_binomial",
        "gam_cubic",
        "coxph_stratified",
    ] {
        let scorer = H2oScorer::load(&testdata().join(format!("{name}.zip"))).unwrap();
        assert_eq!(scorer.contribution_names(), None, "{name}");
        assert_eq!(scorer.capabilities(), ["SCORE"], "{name}");
        let why = scorer.contributions_unavailable().unwrap_or("");
        assert!(
            why.contains("only for GBM, DRF and XGBoost"),
            "{name}: {why}"
        );
    }
}

/// Every `[info]` key of the GAM, CoxPH and GLM ordinal testdata MOJOs set to values a
/// hostile or broken writer could put there: the scorer refuses the MOJO or scores every
/// testdata row, and never panics.
#[test]
fn gam_coxph_and_ordinal_survive_edited_keys() {
    const VALUES: &[&str] = &[
        "0",
        "-1",
        "7",
        "2147483647",
        "[]",
        "[1]",
        "[3, 0, 1, 2]",
        "[99999]",
        "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]",
    ];
    let models = [
        "glm_ordinal",
        "gam_binomial",
        "gam_several",
        "coxph_stratified",
        "coxph_interactions",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut loaded = 0;
    let mut refused = 0;
    for name in models {
        let base = testdata().join(format!("{name}.zip"));
        let scorer = H2oScorer::load(&base).unwrap();
        let input = read_csv(&testdata().join(format!("{name}.input.csv")));
        let keys: Vec<String> = {
            let text = {
                use std::io::Read;
                let mut z = zip::ZipArchive::new(std::fs::File::open(&base).unwrap()).unwrap();
                let mut t = String::new();
                z.by_name("model.ini")
                    .unwrap()
                    .read_to_string(&mut t)
                    .unwrap();
                t
            };
            text.lines()
                .skip_while(|l| l.trim() != "[info]")
                .skip(1)
                .take_while(|l| !l.trim().starts_with('['))
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
                .filter(|k| !matches!(k.as_str(), "algo" | "algorithm" | "category" | "supervised"))
                .collect()
        };
        drop(scorer);
        for key in &keys {
            for value in VALUES.iter().map(|v| Some(*v)).chain([None]) {
                let path = testkit::mojo::edited(&base, dir.path(), &[(key, value)], &[]);
                let outcome = std::panic::catch_unwind(|| match H2oScorer::load(&path) {
                    Ok(s) => {
                        for cells in &input[1..] {
                            let row: Vec<Option<&str>> =
                                cells.iter().map(|c| Some(c.as_str())).collect();
                            let _ = s.score(&row);
                        }
                        true
                    }
                    Err(_) => false,
                });
                match outcome {
                    Ok(true) => loaded += 1,
                    Ok(false) => refused += 1,
                    Err(_) => panic!("{name}: {key} = {value:?} panics"),
                }
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    println!("{loaded} edited MOJOs scored, {refused} refused");
    assert!(loaded > 0 && refused > 0);
}
