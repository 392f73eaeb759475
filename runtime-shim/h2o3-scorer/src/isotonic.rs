//! Isotonic regression (`IsotonicRegressionMojoModel`): a monotone step function of one
//! input, interpolated linearly between its thresholds.
//!
//! The MOJO holds the fitted points as two blobs, `calib/thresholds_x` and
//! `calib/thresholds_y` (a big-endian `int` count, then that many big-endian doubles), and
//! the training range as `calib_min_x`/`calib_max_x`. Genmodel scores `row[0]`: a missing
//! value stays missing; anything else is first clipped into the range (whatever the
//! model's `out_of_bounds` said: the H2O cluster gives NA outside the range when it is
//! `NA`, genmodel never does), then looked up with `Arrays.binarySearch`: a threshold hit
//! exactly gives its `y`, otherwise the two neighbours are interpolated. The same
//! calibrator is what genmodel applies to tree models calibrated with `isotonic`.

use crate::java::{binary_search_f64, jmin};
use crate::keys::{Keys, LoadError, LoadResult};
use crate::model::{Common, Model};

/// `IsotonicCalibrator`: the fitted points and the range they cover.
#[derive(Debug)]
pub(crate) struct Calibrator {
    min_x: f64,
    max_x: f64,
    xs: Vec<f64>,
    ys: Vec<f64>,
}

/// `readblobDoubles`: a big-endian `int` count, then the doubles (bytes after them are
/// ignored, as `ByteBuffer` ignores them).
fn read_doubles(keys: &Keys, name: &str) -> LoadResult<Vec<f64>> {
    let file = format!("{}{name}", keys.mojo.prefix);
    let invalid = |detail: String| LoadError::Invalid {
        file: file.clone(),
        detail,
    };
    let bytes = keys
        .blob(name)
        .ok_or_else(|| invalid("is missing".into()))?;
    let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(invalid(format!("has {} bytes, no count", bytes.len())));
    };
    let n = i32::from_be_bytes(*head);
    let fits = usize::try_from(n)
        .ok()
        .filter(|&n| n.checked_mul(8).is_some_and(|b| b <= rest.len()));
    let Some(n) = fits else {
        return Err(invalid(format!(
            "claims {n} doubles but holds {} bytes after the count",
            rest.len()
        )));
    };
    Ok(rest[..n * 8]
        .chunks_exact(8)
        .map(|c| f64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

impl Calibrator {
    /// `readIsotonicCalibrator`: the range keys default to NaN, the blobs are required.
    pub(crate) fn read(keys: &Keys) -> LoadResult<Calibrator> {
        let xs = read_doubles(keys, "calib/thresholds_x")?;
        let ys = read_doubles(keys, "calib/thresholds_y")?;
        if xs.len() != ys.len() || xs.is_empty() {
            return Err(LoadError::Invalid {
                file: format!("{}calib/thresholds_y", keys.mojo.prefix),
                detail: format!(
                    "has {} values for {} thresholds in calib/thresholds_x (genmodel needs one \
                     per threshold, and at least one)",
                    ys.len(),
                    xs.len()
                ),
            });
        }
        Ok(Calibrator {
            min_x: keys.f64_or("calib_min_x", f64::NAN)?,
            max_x: keys.f64_or("calib_max_x", f64::NAN)?,
            xs,
            ys,
        })
    }

    /// `calibrateP1`: clip, then `IsotonicRegressionUtils.score`. `None` where genmodel
    /// throws (a value the thresholds do not bracket, e.g. `-0.0` when the first
    /// threshold is `0.0`).
    pub(crate) fn calibrate(&self, p1: f64) -> Option<f64> {
        // IsotonicRegressionUtils.clip
        let x = if p1.is_nan() {
            f64::NAN
        } else if p1 < self.min_x {
            self.min_x
        } else {
            jmin(p1, self.max_x)
        };
        // IsotonicRegressionUtils.score
        if x.is_nan() || x < self.min_x || x > self.max_x {
            return Some(f64::NAN);
        }
        let pos = binary_search_f64(&self.xs, x);
        if pos >= 0 {
            return Some(self.ys[pos as usize]);
        }
        let lo = -pos - 2;
        let hi = lo + 1;
        if lo < 0 || hi as usize >= self.xs.len() {
            return None;
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let (x_lo, x_hi, y_lo, y_hi) = (self.xs[lo], self.xs[hi], self.ys[lo], self.ys[hi]);
        let slope = (y_hi - y_lo) / (x_hi - x_lo);
        Some(y_lo + slope * (x - x_lo))
    }
}

/// Isotonic regression: the calibrator applied to the one input.
#[derive(Debug)]
pub(crate) struct IsotonicRegression {
    calibrator: Calibrator,
}

impl IsotonicRegression {
    pub(crate) fn read(keys: &Keys) -> LoadResult<IsotonicRegression> {
        let common = Common::read(keys)?;
        if common.n_features == 0 {
            return keys.invalid("n_features = 0, but isotonic regression scores its first input");
        }
        Ok(IsotonicRegression {
            calibrator: Calibrator::read(keys)?,
        })
    }
}

impl Model for IsotonicRegression {
    fn score0(&self, row: &mut [f64], _offset: f64, preds: &mut [f64]) -> bool {
        match self.calibrator.calibrate(row[0]) {
            Some(v) => {
                preds[0] = v;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_then_interpolates() {
        let c = Calibrator {
            min_x: 0.0,
            max_x: 4.0,
            xs: vec![0.0, 1.0, 4.0],
            ys: vec![-1.0, 1.0, 2.0],
        };
        let cases: [(&str, f64, Option<f64>); 8] = [
            ("threshold", 1.0, Some(1.0)),
            ("first threshold", 0.0, Some(-1.0)),
            ("interpolated", 0.5, Some(0.0)),
            ("interpolated on a flat slope", 2.5, Some(1.5)),
            ("below the range: clipped", -3.0, Some(-1.0)),
            ("above the range: clipped", 9.0, Some(2.0)),
            ("missing", f64::NAN, Some(f64::NAN)),
            ("negative zero sorts before the first threshold", -0.0, None),
        ];
        for (name, x, want) in cases {
            let got = c.calibrate(x);
            let same = match (got, want) {
                (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
                (a, b) => a == b,
            };
            assert!(same, "{name}: {got:?}");
        }
    }
}
