//! Class probabilities to a class label, as genmodel decides it.
//!
//! The label is part of the output, so its rules must be genmodel's exactly: the binomial
//! threshold (`default_threshold`, inclusive), the multinomial arg-max with genmodel's
//! deterministic tie-breaking (a seed hashed from the input row picks among tied classes),
//! and the prior correction for models trained with `balance_classes`.

use crate::java::JavaRandom;

/// `GenModel.correctProbabilities`: undoes class balancing on `preds[1..]`.
pub(crate) fn correct_probabilities(preds: &mut [f64], prior: &[f64], model: &[f64]) {
    let mut sum = 0.0;
    for (i, v) in preds.iter_mut().enumerate().skip(1) {
        let (p, m) = (
            prior.get(i - 1).copied().unwrap_or(0.0),
            model.get(i - 1).copied().unwrap_or(0.0),
        );
        if p != 0.0 && m != 0.0 {
            *v *= p / m;
        }
        sum += *v;
    }
    if sum > 0.0 {
        for p in &mut preds[1..] {
            *p /= sum;
        }
    }
}

/// `GenModel.getPrediction`: the predicted class index for `preds` = `[_, p0, p1, ...]`.
pub(crate) fn get_prediction(
    preds: &[f64],
    prior: Option<&[f64]>,
    row: &[f64],
    threshold: f64,
) -> usize {
    if preds.len() == 3 {
        usize::from(preds[2] >= threshold)
    } else {
        prediction_multinomial(preds, prior, row)
    }
}

/// `GenModel.getPredictionMultinomial`, including its tie-breaking. The list of tied
/// classes is never cleared when a larger value appears (as in genmodel), so it can hold
/// stale entries; that only matters with a prior distribution and is kept as is.
pub(crate) fn prediction_multinomial(preds: &[f64], prior: Option<&[f64]>, row: &[f64]) -> usize {
    let mut ties: Vec<usize> = vec![0];
    let mut best = 1;
    let mut tie_cnt = 0i32;
    for c in 2..preds.len() {
        if preds[best] < preds[c] {
            best = c;
            tie_cnt = 0;
        } else if preds[best] == preds[c] {
            tie_cnt += 1;
            ties.push(c - 1);
        }
    }
    if tie_cnt == 0 {
        return best - 1;
    }
    let mut hash: i64 = 0;
    for d in row {
        hash ^= (d.to_bits() as i64) >> 6;
    }
    if let Some(prior) = prior {
        let at = |i: usize| prior.get(i).copied().unwrap_or(0.0);
        let sum: f64 = ties.iter().map(|&i| at(i)).fold(0.0, |a, b| a + b);
        let rnd = JavaRandom::new(hash).next_double();
        let mut tot = 0.0;
        for &i in &ties {
            tot += at(i) / sum;
            if rnd <= tot {
                return i;
            }
        }
    }
    let res = preds[best];
    let mut idx = (hash as i32) % (tie_cnt + 1);
    for (c, &p) in preds.iter().enumerate().skip(1) {
        if res == p {
            idx -= 1;
            if idx < 0 {
                return c - 1;
            }
        }
    }
    // Unreachable: at least `tie_cnt + 1` classes equal the maximum, and a negative
    // remainder returns at the first of them (genmodel throws here).
    best - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_threshold_is_inclusive() {
        let cases = [("below", 0.3, 0), ("equal", 0.4, 1), ("above", 0.9, 1)];
        for (name, p1, want) in cases {
            assert_eq!(
                get_prediction(&[0.0, 1.0 - p1, p1], None, &[], 0.4),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn multinomial_argmax_and_ties() {
        assert_eq!(
            prediction_multinomial(&[0.0, 0.2, 0.5, 0.3], None, &[1.0]),
            1
        );
        // Three-way tie without priors: index chosen by the row hash.
        let preds = [0.0, 0.25, 0.25, 0.5, 0.0];
        assert_eq!(prediction_multinomial(&preds, None, &[]), 2);
        let tied = [0.0, 0.5, 0.5];
        let picks: Vec<usize> = [0.0, 1.0, 2.0, 3.0, 1e10]
            .iter()
            .map(|&x| prediction_multinomial(&[0.0, 0.5, 0.5, 0.0], None, &[x]))
            .collect();
        assert!(picks.iter().all(|&p| p < 2), "{picks:?}");
        assert_eq!(prediction_multinomial(&tied, None, &[]), 0);
    }

    #[test]
    fn correction_renormalizes() {
        let mut preds = [0.0, 0.5, 0.5];
        correct_probabilities(&mut preds, &[0.2, 0.8], &[0.5, 0.5]);
        assert!((preds[1] - 0.2).abs() < 1e-15 && (preds[2] - 0.8).abs() < 1e-15);
    }
}
