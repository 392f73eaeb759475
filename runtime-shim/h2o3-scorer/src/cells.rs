//! Numbers to output cells, fast.
//!
//! An output number is spelled as Rust's `Display` spells an `f64` (the shortest decimal
//! that reads back as the same double, never in exponent form: `0.25`, `3`, `-0`,
//! `0.0000001`, `NaN`, `inf`). Formatting two or three of them per row was a quarter of
//! the scorer's time through `format!`, so the shortest digits come from `zmij`, several
//! times faster, and are laid out here the way `Display` lays them out.
//!
//! Except from 2^-17 (7.6e-6) to 1, where probabilities live: there [`crate::fraction`]
//! finds the digits in exact 64-bit arithmetic and stores them into the answer at fixed
//! sizes. zmij writes such a value's digits and then moves them right to make room for
//! `0.` (a `memmove` and a `memset`), and its text is then copied into the answer (a
//! `memcpy` call of variable length); ryu, used here before, writes `0.` first, but with
//! that copy `push_f64` took 32.4–33.3 ns per random probability into an answer, and
//! takes 28.6–29.5 now (`time_push_f64`, 2 runs each).
//!
//! zmij agrees with `Display` on the digits except at a tie, where two shortest decimals
//! are equally close to the binary value (`314641.125f32`: zmij rounds to even,
//! `314641.12`, `Display` up, `314641.13`). A tie needs the value's exact decimal
//! expansion to be one digit longer than the shortest, so at most 18 significant digits
//! for an `f64` (10 for an `f32`); the few values that short (dyadic fractions such as
//! `0.125`, integers with a factor of a power of five) go through `format!`, as do the
//! ties [`crate::fraction`] finds exactly. The unit tests compare `push_f64` with
//! `Display` on millions of values.

use crate::fraction;

/// `format!("{v}")` for an `f64`.
#[cfg(test)]
fn f64_cell(v: f64) -> String {
    let mut out = String::new();
    push_f64(v, &mut out);
    out
}

/// Where a cell's text goes: a `String` (a cell of its own) or the bytes of an answer
/// being written (no cell in between, no second copy).
pub(crate) trait Sink {
    fn put(&mut self, s: &str);
    fn put_fmt(&mut self, args: std::fmt::Arguments<'_>);
    /// Appends [`fraction::write`]'s text.
    fn put_fraction(&mut self, digits: u64, k: i32);
}

impl Sink for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
    fn put_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = std::fmt::Write::write_fmt(self, args);
    }
    #[inline]
    fn put_fraction(&mut self, digits: u64, k: i32) {
        // The bytes without a copy (no unsafe code): the check is over one cell's ASCII.
        let mut bytes = std::mem::take(self).into_bytes();
        fraction::write(digits, k, &mut bytes);
        *self = String::from_utf8(bytes).expect("a cell and the digits are UTF-8");
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
    fn put_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = std::io::Write::write_fmt(self, args);
    }
    #[inline]
    fn put_fraction(&mut self, digits: u64, k: i32) {
        fraction::write(digits, k, self);
    }
}

/// Appends `format!("{v}")` for an `f64` to `out` (no allocation once `out` has room).
pub(crate) fn push_f64(v: f64, out: &mut impl Sink) {
    // A whole number (a class label index, a saturated probability of 1, a count) is
    // its digits: no shortest-decimal search, and no `format!` for it as a possible tie.
    // std's integer formatting is also faster for it than zmij's `1.0` form. (The cast
    // round trip tests for a whole number without `trunc`, a libm call on x86-64.)
    if v != 0.0 && v.abs() < 9_007_199_254_740_992.0 && v as i64 as f64 == v {
        out.put_fmt(format_args!("{}", v as i64));
        return;
    }
    // Probabilities (see the module's docs). What it declines in its range, ties and
    // powers of two, has a short exact expansion, so `may_tie` sends it to `format!`.
    if let Some((digits, k)) = fraction::shortest(v.abs()) {
        if v < 0.0 {
            out.put("-");
        }
        out.put_fraction(digits, k);
        return;
    }
    let bits = v.to_bits();
    let field = ((bits >> 52) & 0x7FF) as i32;
    let frac = bits & ((1 << 52) - 1);
    let (m, e) = if field == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), field - 1075)
    };
    if !v.is_finite() || may_tie(m, e, 1e40, 1_000_000_000_000_000_000, v.abs()) {
        out.put_fmt(format_args!("{v}"));
        return;
    }
    let mut buf = zmij::Buffer::new();
    push_shortest(buf.format_finite(v), out)
}

/// Appends zmij's spelling in `Display`'s form: without an exponent the digits are
/// `Display`'s already, but for a trailing `.0` (`3.0` is `3`); with one, [`layout`].
fn push_shortest(s: &str, out: &mut impl Sink) {
    // zmij ends an exponent form with `e+d` to `e-ddd`, so the `e`, if any, is 3 to 5
    // bytes from the end (three compares: `contains` would call `memchr`).
    let b = s.as_bytes();
    let e_at = |back: usize| b.len() >= back && b[b.len() - back] == b'e';
    if e_at(3) || e_at(4) || e_at(5) {
        layout(s, out);
    } else {
        out.put(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// `format!("{v}")` for an `f32`.
pub(crate) fn f32_cell(v: f32) -> String {
    let bits = v.to_bits();
    let field = ((bits >> 23) & 0xFF) as i32;
    let frac = u64::from(bits & ((1 << 23) - 1));
    let (m, e) = if field == 0 {
        (frac, -149)
    } else {
        (frac | (1 << 23), field - 150)
    };
    if !v.is_finite() || may_tie(m, e, 1e20, 10_000_000_000, f64::from(v.abs())) {
        return format!("{v}");
    }
    let mut out = String::new();
    let mut buf = zmij::Buffer::new();
    push_shortest(buf.format_finite(v), &mut out);
    out
}

/// Whether `m · 2^e` (= `abs`, finite) could lie exactly halfway between two shortest
/// decimals, i.e. whether its exact decimal expansion has fewer significant digits
/// than `digits_limit` (10^18 for `f64`, 10^10 for `f32`). For `e < 0` (after dropping
/// trailing zero bits, so `m` is odd) that expansion is the integer `m · 5^-e`. For
/// `e >= 0` the tie decimal `q · 10^k` needs `5^k` to divide `m`, which bounds the
/// value below `integer_limit` (10^40, 10^20).
fn may_tie(m: u64, e: i32, integer_limit: f64, digits_limit: u128, abs: f64) -> bool {
    if m == 0 {
        return false;
    }
    let tz = m.trailing_zeros();
    let (m, e) = (m >> tz, e + tz as i32);
    if e >= 0 {
        return abs < integer_limit;
    }
    // 5^27 alone exceeds 10^18.
    let k = (-e) as usize;
    k < POW5.len() && u128::from(m) * u128::from(POW5[k]) < digits_limit
}

/// `5^k` for `k <= 26` (a table: `pow` multiplies in a loop, and a widened `f32`
/// output reaches it on every cell).
const POW5: [u64; 27] = {
    let mut t = [1u64; 27];
    let mut k = 1;
    while k < t.len() {
        t[k] = t[k - 1] * 5;
        k += 1;
    }
    t
};

/// Appends zmij's output (`-1.5e-7`, `123.0`, `1e+16`, `5e-324`) to `out` in `Display`'s
/// positional form. Kept out of line: zmij writes an exponent for an `f64` only below
/// 1e-5 and from 1e16 on (an `f32` below 1e-6 and from 1e13), and inlined this would
/// make every call save registers for it.
#[inline(never)]
fn layout(s: &str, out: &mut impl Sink) {
    let b = s.as_bytes();
    let (neg, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let (mantissa, exp) = match b.iter().position(|&c| c == b'e') {
        Some(at) => {
            let (sign, digits) = match &b[at + 1..] {
                [b'-', rest @ ..] => (-1, rest),
                [b'+', rest @ ..] => (1, rest),
                rest => (1, rest),
            };
            let e = digits
                .iter()
                .fold(0i32, |e, &d| e * 10 + i32::from(d - b'0'));
            (&b[..at], sign * e)
        }
        None => (b, 0),
    };
    // The significant digits (zmij writes at most 17) and where the point goes.
    let mut digits = [0u8; 32];
    let mut n = 0usize;
    let mut point = mantissa.len() as i32 + exp;
    for &c in mantissa {
        if c == b'.' {
            point = n as i32 + exp;
        } else if n < digits.len() {
            digits[n] = c;
            n += 1;
        }
    }
    let lead = digits[..n].iter().take_while(|&&d| d == b'0').count();
    point -= lead as i32;
    let mut digits = &digits[lead..n];
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if neg {
        out.put("-");
    }
    if digits.is_empty() {
        out.put("0");
        return;
    }
    let n = digits.len() as i32;
    fn text(d: &[u8]) -> &str {
        std::str::from_utf8(d).unwrap_or("")
    }
    if point <= 0 {
        out.put("0.");
        for _ in point..0 {
            out.put("0");
        }
        out.put(text(digits));
    } else if point >= n {
        out.put(text(digits));
        for _ in n..point {
            out.put("0");
        }
    } else {
        out.put(text(&digits[..point as usize]));
        out.put(".");
        out.put(text(&digits[point as usize..]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{ns_per_call, Rng};

    /// ns per `push_f64` on random probabilities (best of five runs of 1,000,000), into
    /// an answer (`Vec<u8>`, the REST path) and into a cell (`String`, the batch path),
    /// and per call of zmij alone and `Display` on the same values:
    /// `cargo test -p h2o3-scorer --release -- --ignored --nocapture time_push_f64`.
    #[test]
    #[ignore = "timing, run in release by hand"]
    fn time_push_f64() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let values: Vec<f64> = (0..1_000_000)
            .map(|_| (rng.next() >> 11) as f64 / (1u64 << 53) as f64)
            .collect();
        let mut answer: Vec<u8> = Vec::with_capacity(32 << 20);
        let ns = ns_per_call(values.len(), || {
            answer.clear();
            for &v in &values {
                push_f64(std::hint::black_box(v), &mut answer);
                answer.push(b',');
            }
            std::hint::black_box(&answer);
        });
        println!("push_f64 into an answer: {ns:.1} ns per call");
        let mut cell = String::with_capacity(32);
        let ns = ns_per_call(values.len(), || {
            for &v in &values {
                cell.clear();
                push_f64(std::hint::black_box(v), &mut cell);
                std::hint::black_box(&cell);
            }
        });
        println!("push_f64 into a cell: {ns:.1} ns per call");
        // The same values through zmij alone and `Display`, for scale.
        let ns = ns_per_call(values.len(), || {
            for &v in &values {
                let mut buf = zmij::Buffer::new();
                std::hint::black_box(buf.format_finite(std::hint::black_box(v)));
            }
        });
        println!("zmij alone: {ns:.1} ns per call");
        let ns = ns_per_call(values.len(), || {
            for &v in &values {
                cell.clear();
                use std::fmt::Write;
                let _ = write!(cell, "{}", std::hint::black_box(v));
                std::hint::black_box(&cell);
            }
        });
        println!("Display: {ns:.1} ns per call");
    }

    #[test]
    fn named_cases_spell_like_display() {
        let cases: [(&str, f64, &str); 18] = [
            ("zero", 0.0, "0"),
            ("negative zero", -0.0, "-0"),
            ("integer", 3.0, "3"),
            ("one", 1.0, "1"),
            ("negative integer", -42.0, "-42"),
            (
                "largest exact integer",
                9_007_199_254_740_991.0,
                "9007199254740991",
            ),
            ("2^53", 9_007_199_254_740_992.0, "9007199254740992"),
            ("probability", 0.2811443710778968, "0.2811443710778968"),
            ("small", 1.5e-7, "0.00000015"),
            ("large", 1.5e16, "15000000000000000"),
            ("huge", 1e300, &format!("{}", 1e300)),
            ("tiny subnormal", 5e-324, &format!("{}", 5e-324)),
            ("max", f64::MAX, &format!("{}", f64::MAX)),
            ("negative", -123.456, "-123.456"),
            ("a tenth", 0.1, "0.1"),
            ("NaN", f64::NAN, "NaN"),
            ("infinity", f64::INFINITY, "inf"),
            ("minus infinity", f64::NEG_INFINITY, "-inf"),
        ];
        for (name, v, want) in cases {
            assert_eq!(f64_cell(v), want, "{name}");
        }
        assert_eq!(f32_cell(-0.20215273f32), "-0.20215273");
        assert_eq!(f32_cell(1e-10f32), format!("{}", 1e-10f32));
        // A tie: 314641.125 exactly; zmij alone rounds it to even (314641.12).
        let tie = f32::from_bits(0x4899_a224);
        assert_eq!(f64::from(tie), 314_641.125);
        assert_eq!(f32_cell(tie), "314641.13");
    }

    #[test]
    fn random_doubles_spell_like_display() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for i in 0..1_000_000u32 {
            // Alternate raw bit patterns (every exponent) with values in the range
            // predictions live in (probabilities, moderate regression values).
            let v = match i % 3 {
                0 => f64::from_bits(rng.next()),
                1 => (rng.next() >> 11) as f64 / (1u64 << 53) as f64,
                _ => ((rng.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e6,
            };
            assert_eq!(f64_cell(v), format!("{v}"), "{v:e} ({:#x})", v.to_bits());
            let f = f32::from_bits(rng.next() as u32);
            assert_eq!(f32_cell(f), format!("{f}"), "{f:e} ({:#x})", f.to_bits());
        }
        // Dyadic fractions and large integers, where ties live.
        for _ in 0..300_000 {
            let m = rng.next() >> (11 + rng.next() % 50);
            let e = (rng.next() % 120) as i32 - 60;
            let v = m as f64 * 2f64.powi(e);
            assert_eq!(f64_cell(v), format!("{v}"), "{v:e} ({:#x})", v.to_bits());
            let f = (m >> 30) as f32 * 2f32.powi(e / 2);
            assert_eq!(f32_cell(f), format!("{f}"), "{f:e} ({:#x})", f.to_bits());
        }
        // Decimal-looking values and every power of ten.
        for e in -330..=310 {
            for m in [1.0, 1.5, 2.5, 9.999999999999999, 0.3] {
                let v = m * 10f64.powi(e);
                assert_eq!(f64_cell(v), format!("{v}"), "{v:e}");
            }
        }
    }

    /// Both signs of `v` and its neighbours, as `Display` spells them.
    fn check_around(v: f64) {
        for w in [v.next_down(), v, v.next_up()] {
            for x in [w, -w] {
                assert_eq!(f64_cell(x), format!("{x}"), "{x:e} ({:#x})", x.to_bits());
            }
        }
    }

    #[test]
    fn special_doubles_spell_like_display() {
        // Zeros, subnormals, the normal range's ends, and where zmij switches between
        // positional and exponent form (below 1e-5, from 1e16).
        for v in [
            0.0,
            5e-324,
            1e-323,
            f64::from_bits((1 << 52) - 1),
            f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::MAX,
            1e15,
            1e16,
            1e17,
            9_007_199_254_740_992.0,
            1e-5,
            1e-6,
            1e-7,
            1.5e-7,
            0.5,
            1.0,
        ] {
            check_around(v);
        }
        for bits in (0..5000).chain((1u64 << 52) - 5000..(1 << 52) + 5000) {
            check_around(f64::from_bits(bits));
        }
        // Every power of two (their rounding interval is lopsided), and every power of
        // ten with its neighbours.
        for e in -1074..=1023 {
            check_around(2f64.powi(e));
        }
        for e in -323..=308 {
            check_around(format!("1e{e}").parse().unwrap());
        }
        // Around the positional/exponent switches, where the digit count varies, and
        // (10^-1) inside the range spelled by `crate::fraction`.
        for e in [-8, -7, -6, -5, -4, -1, 14, 15, 16, 17] {
            let scale = 10f64.powi(e);
            let mut rng = Rng(0x1234_5678_9ABC_DEF0 ^ e as u64);
            for _ in 0..20_000 {
                check_around((1.0 + (rng.next() >> 11) as f64 / (1u64 << 53) as f64) * scale);
            }
        }
    }

    #[test]
    fn random_probabilities_and_bits_spell_like_display() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..300_000 {
            let p = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            assert_eq!(f64_cell(p), format!("{p}"), "{p:e} ({:#x})", p.to_bits());
            // Probabilities as a model computes them: a ratio of sums, a logistic.
            let q = 1.0 / (1.0 + (-(p - 0.5) * 40.0).exp());
            assert_eq!(f64_cell(q), format!("{q}"), "{q:e} ({:#x})", q.to_bits());
            let v = f64::from_bits(rng.next());
            assert_eq!(f64_cell(v), format!("{v}"), "{v:e} ({:#x})", v.to_bits());
            // A float model's probability widened to a double (XGBoost's).
            let w = f64::from(p as f32);
            assert_eq!(f64_cell(w), format!("{w}"), "{w:e} ({:#x})", w.to_bits());
        }
    }
}
