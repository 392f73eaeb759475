//! What the crate's tests share: a small deterministic generator for the property tests,
//! and the timing loop of the hand-run timing tests.

/// xorshift64*: a seed in, a stream of 64-bit values out (a zero seed stays zero).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Nanoseconds per call: the best of five runs of `run`, which makes `calls` calls.
pub(crate) fn ns_per_call(calls: usize, mut run: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        run();
        best = best.min(start.elapsed().as_nanos() as f64 / calls as f64);
    }
    best
}
