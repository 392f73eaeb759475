//! The `h2o3_mojo` backend: native H2O-3 MOJO scoring in process through `h2o3-scorer`
//! (GBM, DRF, GLM; no JVM).
//!
//! Scoring is CPU-bound and takes microseconds per row, so small requests are scored on
//! the request's own task (no hand-off, which matters for a 1-row p99) and large ones on
//! tokio's blocking pool, where they do not stall other connections.

use std::path::Path;
use std::sync::Arc;

use artifact_core::Manifest;
use axum::http::StatusCode;
use h2o3_scorer::H2oScorer;

use super::{Backend, BackendConfig, BoxFuture};
use crate::api::{ApiError, Frame};

/// The model type this backend serves.
pub const MODEL_TYPE: &str = "h2o3_mojo";

/// Requests with more cells than this are scored on the blocking pool.
const INLINE_MAX_CELLS: usize = 4096;

/// A loaded H2O-3 MOJO.
pub struct H2o3Backend {
    scorer: Arc<H2oScorer>,
    /// `order[j]`: the model input (manifest order) that is the scorer's input `j`.
    order: Arc<[usize]>,
    outputs: Vec<String>,
    algo: String,
    category: String,
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
    Ok(Box::new(H2o3Backend {
        outputs: scorer.output_names().to_vec(),
        scorer: Arc::new(scorer),
        order: order.into(),
        algo,
        category,
    }))
}

fn score_rows(
    scorer: &H2oScorer,
    order: &[usize],
    frame: &Frame,
) -> Result<Vec<Vec<String>>, ApiError> {
    let mut cells: Vec<Option<&str>> = Vec::with_capacity(order.len());
    let mut out = Vec::with_capacity(frame.len());
    for r in 0..frame.len() {
        cells.clear();
        cells.extend(order.iter().map(|&i| frame.cell(r, i)));
        let row = scorer
            .score(&cells)
            .map_err(|e| ApiError::invalid(format!("row {r} (zero-indexed): {e}")))?;
        out.push(row);
    }
    Ok(out)
}

impl Backend for H2o3Backend {
    fn describe(&self) -> String {
        format!("native H2O-3 {} {}", self.algo, self.category)
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn capabilities(&self) -> Vec<String> {
        vec!["SCORE".to_string()]
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        // Loaded in process: nothing can become unready after `load`.
        Box::pin(std::future::ready(true))
    }

    fn score(&self, frame: Arc<Frame>) -> BoxFuture<'_, Result<Vec<Vec<String>>, ApiError>> {
        if frame.len() * frame.width().max(1) <= INLINE_MAX_CELLS {
            return Box::pin(std::future::ready(score_rows(
                &self.scorer,
                &self.order,
                &frame,
            )));
        }
        let scorer = Arc::clone(&self.scorer);
        let order = Arc::clone(&self.order);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || score_rows(&scorer, &order, &frame))
                .await
                .map_err(|e| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, e))?
        })
    }
}
