//! Latency percentiles from the exact samples (sorted; a 10 s run at tens of thousands of
//! requests per second is a few megabytes of samples, so no histogram approximation is
//! needed) and their summary as the report prints it.

use std::time::Duration;

use serde::Serialize;

/// Percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Nearest-rank percentile `q` (0 < q ≤ 1) of sorted `samples`.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarizes samples in nanoseconds (sorts them).
pub fn summarize(samples: &mut [u64]) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    samples.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Latency {
        mean_us: sum as f64 / samples.len() as f64 / 1000.0,
        p50_us: us(percentile(samples, 0.50)),
        p90_us: us(percentile(samples, 0.90)),
        p99_us: us(percentile(samples, 0.99)),
        p999_us: us(percentile(samples, 0.999)),
        max_us: us(*samples.last().unwrap_or(&0)),
    }
}

/// `d` in nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u64> = (1..=100).collect();
        let cases: &[(&str, &[u64], f64, u64)] = &[
            ("empty", &[], 0.5, 0),
            ("one", &[7], 0.99, 7),
            ("median of 100", &hundred, 0.5, 50),
            ("p99 of 100", &hundred, 0.99, 99),
            ("p999 of 100 is the max", &hundred, 0.999, 100),
            ("p100", &hundred, 1.0, 100),
        ];
        for (name, s, q, want) in cases {
            assert_eq!(percentile(s, *q), *want, "{name}");
        }
    }

    #[test]
    fn summary_sorts_and_converts_to_microseconds() {
        let mut s = vec![3000, 1000, 2000, 4000];
        let l = summarize(&mut s);
        assert_eq!(l.p50_us, 2.0);
        assert_eq!(l.max_us, 4.0);
        assert_eq!(l.mean_us, 2.5);
        assert_eq!(summarize(&mut []), Latency::default());
    }
}
