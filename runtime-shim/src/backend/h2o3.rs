//! The `h2o3_mojo` backend: native H2O-3 MOJO scoring in process through `h2o3-scorer`
//! (GBM, DRF, GLM; no JVM).
//!
//! Scoring is CPU-bound and takes microseconds per row, so small requests are scored on
//! the request's own task (no hand-off, which matters for a 1-row p99) and large ones on
//! tokio's blocking pool, where they do not stall other connections. Prediction
//! contributions (`/model/contribution`, TreeSHAP for GBM, DRF and XGBoost binomial and
//! regression models) are served where the scorer computes them, by the same rule; they
//! cost far more per row, so fewer rows stay inline.

use std::path::Path;
use std::sync::Arc;

use artifact_core::Manifest;
use axum::http::StatusCode;
use h2o3_scorer::H2oScorer;

use super::{Backend, BackendConfig, BoxFuture};
use crate::api::{ApiError, Endpoint, Frame, ShapleyType};

/// The model type this backend serves.
pub const MODEL_TYPE: &str = "h2o3_mojo";

/// Requests with more cells than this are scored on the blocking pool.
const INLINE_MAX_CELLS: usize = 4096;
/// Contribution requests with more cells than this are computed on the blocking pool.
const INLINE_MAX_CONTRIBUTION_CELLS: usize = 256;

/// A loaded H2O-3 MOJO.
pub struct H2o3Backend {
    scorer: Arc<H2oScorer>,
    /// `order[j]`: the model input (manifest order) that is the scorer's input `j`.
    order: Arc<[usize]>,
    /// `order` is `0, 1, 2, ...`: a row in manifest order is already in the scorer's.
    same_order: bool,
    outputs: Vec<String>,
    algo: String,
    category: String,
    /// The Shapley type and feature names, or why the model has none.
    contributions: Result<(ShapleyType, Vec<String>), String>,
}

/// Loads `dir/<payload>` and checks that the scorer agrees with the manifest's schema.
pub fn load(
    dir: &Path,
    manifest: &Manifest,
    _: &BackendConfig,
) -> Result<Box<dyn Backend>, String> {
    let scorer = H2oScorer::load(&dir.join(&manifest.payload)).map_err(|e| e.to_string())?;
    let order = scorer
        .input_names()
        .iter()
        .map(|name| {
            manifest
                .input_schema
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| {
                    format!("the MOJO reads input {name:?}, which the manifest's input_schema does not list")
                })
        })
        .collect::<Result<Vec<usize>, String>>()?;
    let declared: Vec<&str> = manifest
        .output_schema
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if scorer.output_names() != declared.as_slice() {
        return Err(format!(
            "the MOJO's outputs {:?} differ from the manifest's output_schema {:?}",
            scorer.output_names(),
            declared
        ));
    }
    let (algo, category) = scorer.describe();
    let contributions = match (scorer.contribution_names(), scorer.contribution_kind()) {
        (Some(names), Some(kind)) => Ok((
            match kind {
                h2o3_scorer::ContributionKind::Original => ShapleyType::Original,
                h2o3_scorer::ContributionKind::Transformed => ShapleyType::Transformed,
            },
            names.to_vec(),
        )),
        _ => Err(scorer
            .contributions_unavailable()
            .unwrap_or("the scorer computes no contributions for this model")
            .to_string()),
    };
    Ok(Box::new(H2o3Backend {
        contributions,
        outputs: scorer.output_names().to_vec(),
        scorer: Arc::new(scorer),
        same_order: order.iter().enumerate().all(|(j, &i)| i == j),
        order: order.into(),
        algo,
        category,
    }))
}

/// What a request asks of the scorer.
#[derive(Clone, Copy)]
enum Job {
    Score,
    Contributions,
}

/// The 400 for a row the scorer refused (a cell it cannot read), naming the row.
fn refused_row(ep: Endpoint, row_number: usize, e: impl std::fmt::Display) -> ApiError {
    ep.invalid(format!("row {row_number} (zero-indexed): {e}"))
}

/// One row (`cells` by model input index) through the scorer; `row_number` for messages.
fn score_one<'a>(
    scorer: &H2oScorer,
    order: &[usize],
    cells: impl Fn(usize) -> Option<&'a str>,
    row_number: usize,
    job: Job,
) -> Result<Vec<String>, ApiError> {
    let row: Vec<Option<&str>> = order.iter().map(|&i| cells(i)).collect();
    let (result, ep) = match job {
        Job::Score => (scorer.score(&row), Endpoint::Score),
        Job::Contributions => {
            let ep = Endpoint::Contribution { enabled: None };
            match scorer.contributions(&row) {
                Some(r) => (r, ep),
                None => {
                    return Err(ep.failed(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the model computes no contributions",
                    ))
                }
            }
        }
    };
    result.map_err(|e| refused_row(ep, row_number, e))
}

fn score_rows(
    scorer: &H2oScorer,
    order: &[usize],
    frame: &Frame,
    job: Job,
) -> Result<Vec<Vec<String>>, ApiError> {
    (0..frame.len())
        .map(|r| {
            score_one(
                scorer,
                order,
                |i| frame.cell(r, i),
                frame.row_number(r),
                job,
            )
        })
        .collect()
}

impl H2o3Backend {
    /// Calls `f` with `row`'s cells in the scorer's input order: `row` itself when the
    /// orders agree (the usual case), else a copy (on the stack for up to 16 inputs:
    /// a larger array costs its zeroing on every row).
    fn in_order<T>(&self, row: &[Option<&str>], f: impl FnOnce(&[Option<&str>]) -> T) -> T {
        const STACK: usize = 16;
        let n = self.order.len();
        if self.same_order && row.len() == n {
            f(row)
        } else if n <= STACK {
            let mut stack = [None; STACK];
            for (slot, &i) in stack.iter_mut().zip(self.order.iter()) {
                *slot = row[i];
            }
            f(&stack[..n])
        } else {
            let heap: Vec<Option<&str>> = self.order.iter().map(|&i| row[i]).collect();
            f(&heap)
        }
    }

    /// Inline when small, else on the blocking pool.
    fn run(
        &self,
        frame: Arc<Frame>,
        job: Job,
        inline_max_cells: usize,
    ) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        if frame.len() * frame.width().max(1) <= inline_max_cells {
            return Box::pin(std::future::ready(score_rows(
                &self.scorer,
                &self.order,
                &frame,
                job,
            )));
        }
        let scorer = Arc::clone(&self.scorer);
        let order = Arc::clone(&self.order);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || score_rows(&scorer, &order, &frame, job))
                .await
                .map_err(|e| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, e))?
        })
    }
}

impl Backend for H2o3Backend {
    fn describe(&self) -> String {
        format!("native H2O-3 {} {}", self.algo, self.category)
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn capabilities(&self) -> Vec<String> {
        let mut c = vec!["SCORE".to_string()];
        if let Ok((kind, _)) = &self.contributions {
            c.push(kind.capability().to_string());
        }
        c
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        // Loaded in process: nothing can become unready after `load`.
        Box::pin(std::future::ready(true))
    }

    fn score(&self, frame: Arc<Frame>) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        self.run(frame, Job::Score, INLINE_MAX_CELLS)
    }

    fn contributions_support(&self) -> Result<(ShapleyType, &[String]), String> {
        match &self.contributions {
            Ok((kind, names)) => Ok((*kind, names.as_slice())),
            Err(why) => Err(why.clone()),
        }
    }

    fn contributions(
        &self,
        frame: Arc<Frame>,
    ) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        self.run(frame, Job::Contributions, INLINE_MAX_CONTRIBUTION_CELLS)
    }

    fn in_process(&self) -> bool {
        true
    }

    fn score_row(
        &self,
        row: &[Option<&str>],
        row_number: usize,
    ) -> Option<Result<Vec<String>, ApiError>> {
        Some(score_one(
            &self.scorer,
            &self.order,
            |i| row[i],
            row_number,
            Job::Score,
        ))
    }

    fn score_row_into(
        &self,
        row: &[Option<&str>],
        row_number: usize,
        out: &mut Vec<String>,
    ) -> Option<Result<(), ApiError>> {
        Some(
            self.in_order(row, |ordered| self.scorer.score_into(ordered, out))
                .map_err(|e| refused_row(Endpoint::Score, row_number, e)),
        )
    }

    fn score_row_json(
        &self,
        row: &[Option<&str>],
        row_number: usize,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), ApiError>> {
        Some(
            self.in_order(row, |ordered| self.scorer.score_json_into(ordered, out))
                .map_err(|e| refused_row(Endpoint::Score, row_number, e)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row in manifest order is scored alike whether that order is the scorer's (the
    /// row used as it is) or not (copied in the scorer's order), for any width.
    #[test]
    fn rows_reach_the_scorer_in_its_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::test_models::processed(tmp.path(), "gbm_onehot_binomial");
        let manifest = artifact_core::Manifest::read(&dir).unwrap();
        let scorer = H2oScorer::load(&dir.join(&manifest.payload)).unwrap();
        let n = scorer.input_names().len();
        let direct = H2o3Backend {
            scorer: Arc::new(scorer),
            order: (0..n).collect::<Vec<_>>().into(),
            same_order: true,
            outputs: Vec::new(),
            algo: String::new(),
            category: String::new(),
            contributions: Err(String::new()),
        };
        let row = [
            Some("-0.42"),
            Some("3.405"),
            Some("red"),
            Some("izmir"),
            Some("13"),
        ];
        assert_eq!(row.len(), n);
        let mut want = Vec::new();
        direct.score_row_json(&row, 0, &mut want).unwrap().unwrap();
        // The same inputs given in reverse, with an order that undoes it; and an order
        // longer than the stack copy holds (the scorer ignores cells past its inputs).
        let reversed: Vec<Option<&str>> = row.iter().rev().copied().collect();
        let wide: Vec<Option<&str>> = reversed.iter().copied().cycle().take(40).collect();
        type Case<'a> = (&'a str, Vec<Option<&'a str>>, Vec<usize>);
        let cases: [Case; 2] = [
            ("reversed", reversed.clone(), (0..n).rev().collect()),
            (
                "wider than the stack",
                wide,
                (0..n).rev().map(|i| i + 35).chain(0..12).collect(),
            ),
        ];
        for (name, cells, order) in cases {
            let permuted = H2o3Backend {
                order: order.into(),
                same_order: false,
                scorer: Arc::clone(&direct.scorer),
                outputs: Vec::new(),
                algo: String::new(),
                category: String::new(),
                contributions: Err(String::new()),
            };
            let mut got = Vec::new();
            permuted
                .score_row_json(&cells, 0, &mut got)
                .unwrap()
                .unwrap();
            assert_eq!(got, want, "{name}");
            let mut strings = Vec::new();
            permuted
                .score_row_into(&cells, 0, &mut strings)
                .unwrap()
                .unwrap();
            let json: Vec<u8> = serde_json::to_vec(&strings).unwrap();
            assert_eq!(&json[1..json.len() - 1], &want[..], "{name}: as strings");
        }
    }
}
