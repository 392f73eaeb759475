//! The native scorer against h2o-genmodel's own predictions.
//!
//! `testdata/h2o3` holds real MOJOs with 30 input rows each (missing cells, unseen
//! levels) and the output of genmodel's `PredictCsv` for them, every double exact. Each
//! supported model must reproduce it: labels identical, numbers within 1e-12 relative
//! (genmodel's `NA` is our `NaN`). Unsupported models must be refused at load, naming
//! their algorithm.
//!
//! `tests/reference/` holds genmodel outputs for the conformance MOJOs (which stay in
//! `../shared/conformance`, read through `CONFORMANCE_DIR`), made by
//! `tests/reference/generate.sh`.

use std::path::{Path, PathBuf};

use h2o3_scorer::{CellError, H2oScorer, ScoreError};

const TOLERANCE: f64 = 1e-12;

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Scores equal genmodel's predictions file (`<name>.predictions.csv` unless given).
    Match,
    /// Refused at load with `ScoreError::Unsupported` whose message contains this text.
    Refused(&'static str),
}
use Expect::*;

/// Every MOJO in testdata/h2o3, by name.
const TESTDATA: &[(&str, Expect)] = &[
    ("gbm_binomial", Match),
    ("gbm_binomial_numlabels", Match),
    ("gbm_regression", Match),
    ("gbm_multinomial", Match),
    ("drf_binomial", Match),
    ("drf_regression", Match),
    ("drf_multinomial", Match),
    ("glm_binomial", Match),
    ("glm_regression", Match),
    ("glm_multinomial", Match),
    ("glm_poisson", Match),
    ("glm_tweedie", Match),
    ("isolation_forest", Match),
    ("extended_isolation_forest", Match),
    ("kmeans", Match),
    ("deeplearning_binomial", Match),
    ("deeplearning_regression", Match),
    ("deeplearning_autoencoder", Match),
    ("xgboost_binomial", Match),
    ("xgboost_regression", Match),
    ("stacked_ensemble_binomial", Match),
    ("pca", Match),
    ("glrm", Match),
    ("word2vec", Match),
];

/// Conformance MOJOs (files under `$CONFORMANCE_DIR/h2o3`) with committed genmodel
/// references in `tests/reference/<file stem>.{input,predictions}.csv`.
const CONFORMANCE: &[(&str, Expect)] = &[
    ("sw_binom_model_prostate.mojo", Match),
    ("sw_gbm_cv.mojo", Match),
    ("sw_multi_model_iris.mojo", Match),
    ("sw_regre_model_prostate.mojo", Match),
    ("sw_isolation_forest.mojo", Match),
    ("sw_deep_learning_prostate.mojo", Match),
    ("sw_deep_learning_airlines_categoricals.zip", Match),
    ("sw_deep_learning_auto_encoder.mojo", Match),
    ("sw_stacked_ensemble_prostate.mojo", Match),
    ("sw_pca_prostate.mojo", Match),
    ("sw_glrm.mojo", Match),
];

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
/// relative error, or the list of mismatches.
fn compare(scorer: &H2oScorer, input: &Path, predictions: &Path) -> Result<f64, String> {
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
        let got = match scorer.score(&row) {
            Ok(g) => g,
            Err(e) => {
                errors.push(format!("row {r}: {e}"));
                continue;
            }
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

fn check(
    name: &str,
    mojo: &Path,
    expect: Expect,
    input: &Path,
    predictions: &Path,
) -> Result<String, String> {
    match (H2oScorer::load(mojo), expect) {
        (Ok(s), Match) => {
            let worst = compare(&s, input, predictions)?;
            let (algo, category) = s.describe();
            Ok(format!(
                "{name}: {algo}/{category} matches genmodel, max relative error {worst:e}"
            ))
        }
        (
            Err(ScoreError::Unsupported {
                algo,
                category,
                reason,
            }),
            Refused(needle),
        ) => {
            let msg = format!("{algo} / {category}: {reason}");
            if msg.contains(needle) {
                Ok(format!("{name}: refused ({msg})"))
            } else {
                Err(format!("refusal {msg:?} does not mention {needle:?}"))
            }
        }
        (Ok(s), Refused(_)) => Err(format!("loaded ({:?}) but should be refused", s.describe())),
        (Err(e), _) => Err(format!("load failed: {e}")),
    }
}

#[test]
fn testdata_models_match_genmodel() {
    let dir = testdata();
    let mut failures = Vec::new();
    for &(name, expect) in TESTDATA {
        let r = check(
            name,
            &dir.join(format!("{name}.zip")),
            expect,
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
    for &(file, expect) in CONFORMANCE {
        let name = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap();
        let r = check(
            name,
            &dir.join(file),
            expect,
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
        assert!(
            TESTDATA.iter().any(|(t, _)| t == n),
            "no test case for testdata model {n}"
        );
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
