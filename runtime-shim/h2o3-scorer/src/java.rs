//! Java semantics that genmodel's arithmetic depends on and Rust spells differently.
//!
//! Scores must equal h2o-genmodel's doubles, so the few places where Java and Rust
//! disagree are written out here once: `Math.max`/`Math.min` propagate NaN (Rust's
//! `f64::max` drops it), `java.util.Random` is needed bit for bit for genmodel's
//! multinomial tie-breaking and GLRM's initialisation, and `Double.parseDouble` accepts a
//! few spellings that `str::parse` does not. `parse_double` reads every numeric request
//! cell, so plain decimals such as `-1.234` take a shorter exact path first.

/// `Math.max(a, b)`: NaN if either is NaN, and `0.0` beats `-0.0`.
pub(crate) fn jmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a >= b {
        a
    } else {
        b
    }
}

/// `Math.min(a, b)`: NaN if either is NaN, and `-0.0` beats `0.0`.
pub(crate) fn jmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a <= b {
        a
    } else {
        b
    }
}

/// `Math.max(float, float)`: NaN if either is NaN, and `0.0` beats `-0.0`.
pub(crate) fn jmaxf(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a >= b {
        a
    } else {
        b
    }
}

/// `java.util.Random`: the 48-bit linear congruential generator of the JDK.
#[derive(Debug, Clone)]
pub(crate) struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    pub(crate) fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (self.seed >> (48 - bits)) as i64 as i32
    }

    pub(crate) fn next_double(&mut self) -> f64 {
        let hi = i64::from(self.next(26));
        let lo = i64::from(self.next(27));
        ((hi << 27) + lo) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `Double.parseDouble` of a trimmed cell: Rust's grammar plus Java's optional `d`/`f`
/// suffix. Returns `None` when the text is not a number.
pub(crate) fn parse_double(s: &str) -> Option<f64> {
    if let Some(v) = parse_plain(trim_bytes(s.as_bytes())) {
        return Some(v);
    }
    parse_general(s)
}

/// [`parse_double`] for any spelling: exponents, `NaN`, `Infinity`, `+`, long digit runs.
fn parse_general(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    if let Ok(v) = t.parse::<f64>() {
        return Some(v);
    }
    let body = t.strip_suffix(['d', 'D', 'f', 'F'])?;
    if body.ends_with(|c: char| c.is_ascii_digit() || c == '.') {
        body.parse::<f64>().ok()
    } else {
        None
    }
}

/// `b` without leading and trailing bytes <= `' '`: the same cut as `String.trim` (and
/// `trim_matches(|c| c <= ' ')`), since every char <= `' '` is a single ASCII byte and
/// no byte of a longer UTF-8 char is.
fn trim_bytes(b: &[u8]) -> &[u8] {
    // Nothing to cut, the usual case: two compares instead of two scans.
    if let (Some(&first), Some(&last)) = (b.first(), b.last()) {
        if first > b' ' && last > b' ' {
            return b;
        }
    }
    let start = b.iter().position(|&c| c > b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c > b' ').map_or(start, |i| i + 1);
    &b[start..end]
}

/// Powers of ten that are exact doubles: `10^k = 5^k · 2^k` is exact while `5^k` fits
/// the 53-bit significand, up to `k = 22`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The value of a plain decimal `-?digits(.digits)?` (`1.` and `.5` included) whose
/// digits, as an integer `w`, are at most 2^53 and whose fraction has at most 22 digits;
/// `None` for anything else, which the general parser then reads. `w` and `10^k` are
/// both exact doubles, so the one correctly rounded division `w / 10^k` is the correctly
/// rounded value of the text, the double `str::parse` returns (Clinger's fast path),
/// without its grammar and its slower cases, in one pass over the bytes.
#[inline]
fn parse_plain(b: &[u8]) -> Option<f64> {
    let (neg, b) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    const LIMIT: u64 = 1 << 53;
    let mut w = 0u64;
    // Whether `w` ever passed 2^53 (sticky: `w` may wrap after that, and is then not
    // used; until then `w · 10 + 9` cannot overflow).
    let mut over = false;
    let mut point = None;
    for (i, &c) in b.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            w = w.wrapping_mul(10).wrapping_add(u64::from(d));
            over |= w > LIMIT;
        } else if c == b'.' && point.is_none() {
            point = Some(i);
        } else {
            // An exponent, a suffix, a second point, a sign, a blank.
            return None;
        }
    }
    let (n_digits, k) = match point {
        Some(at) => (b.len() - 1, b.len() - 1 - at),
        None => (b.len(), 0),
    };
    // No digit at all, a value past 2^53, or a fraction too long for an exact 10^k.
    if n_digits == 0 || over || k >= POW10.len() {
        return None;
    }
    let v = w as f64 / POW10[k];
    Some(if neg { -v } else { v })
}

/// Lines as `BufferedReader.readLine` splits them (`\n`, `\r` or `\r\n`).
pub(crate) fn java_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                lines.push(rest);
                break;
            }
        }
    }
    lines
}

/// `Arrays.binarySearch(double[], double)`: the index of `key`, or `-(insertion point) - 1`.
/// Equal values are told apart by their bits, as Java does (`-0.0` sorts before `0.0`,
/// NaN last), so a sorted array gives Java's answer even for those.
pub(crate) fn binary_search_f64(a: &[f64], key: f64) -> i64 {
    let bits = |v: f64| {
        // `Double.doubleToLongBits`: every NaN is the canonical one.
        if v.is_nan() {
            0x7ff8_0000_0000_0000_i64
        } else {
            v.to_bits() as i64
        }
    };
    let (mut low, mut high) = (0i64, a.len() as i64 - 1);
    while low <= high {
        let mid = ((low + high) as u64 >> 1) as i64;
        let v = a[mid as usize];
        if v < key {
            low = mid + 1;
        } else if v > key {
            high = mid - 1;
        } else {
            let (m, k) = (bits(v), bits(key));
            if m == k {
                return mid;
            } else if m < k {
                low = mid + 1;
            } else {
                high = mid - 1;
            }
        }
    }
    -(low + 1)
}

/// `Arrays.binarySearch(long[], long)`: the index of `key`, or `-(insertion point) - 1`.
pub(crate) fn binary_search_i64(a: &[i64], key: i64) -> i64 {
    let (mut low, mut high) = (0i64, a.len() as i64 - 1);
    while low <= high {
        let mid = ((low + high) as u64 >> 1) as i64;
        match a[mid as usize].cmp(&key) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid - 1,
            std::cmp::Ordering::Equal => return mid,
        }
    }
    -(low + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{ns_per_call, Rng};

    #[test]
    fn lines_split_like_buffered_reader() {
        assert_eq!(java_lines("a\r\nb\rc\n\nd"), vec!["a", "b", "c", "", "d"]);
        assert_eq!(java_lines("a\n"), vec!["a"]);
    }

    #[test]
    fn binary_search_follows_java() {
        let a = [-0.0, 0.0, 1.0, 2.5];
        let cases: [(&str, f64, i64); 6] = [
            ("hit", 1.0, 2),
            ("between", 2.0, -4),
            ("below", -1.0, -1),
            ("above", 3.0, -5),
            ("negative zero", -0.0, 0),
            ("positive zero", 0.0, 1),
        ];
        for (name, key, want) in cases {
            assert_eq!(binary_search_f64(&a, key), want, "{name}");
        }
        assert_eq!(binary_search_f64(&[], 1.0), -1);
        assert_eq!(binary_search_i64(&[1, 3, 5], 3), 1);
        assert_eq!(binary_search_i64(&[1, 3, 5], 4), -3);
        assert_eq!(binary_search_i64(&[1, 3, 5], 9), -4);
    }

    #[test]
    fn random_matches_the_jdk() {
        // new java.util.Random(42).nextDouble() and the second draw.
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next_double(), 0.7275636800328681);
        assert_eq!(r.next_double(), 0.6832234717598454);
        let mut r = JavaRandom::new(0);
        assert_eq!(r.next_double(), 0.730967787376657);
    }

    #[test]
    fn max_min_follow_java() {
        let cases: [(&str, f64, f64, f64, f64); 4] = [
            ("ordered", 1.0, 2.0, 2.0, 1.0),
            ("nan left", f64::NAN, 2.0, f64::NAN, f64::NAN),
            ("nan right", 1.0, f64::NAN, f64::NAN, f64::NAN),
            ("signed zeros", -0.0, 0.0, 0.0, -0.0),
        ];
        for (name, a, b, max, min) in cases {
            let (x, n) = (jmax(a, b), jmin(a, b));
            assert!(
                x.to_bits() == max.to_bits() || (x.is_nan() && max.is_nan()),
                "{name}: max"
            );
            assert!(
                n.to_bits() == min.to_bits() || (n.is_nan() && min.is_nan()),
                "{name}: min"
            );
        }
    }

    /// ns per `parse_double` on typical request cells (best of five runs of 1,000,000):
    /// `cargo test -p h2o3-scorer --release -- --ignored --nocapture time_parse_double`.
    #[test]
    #[ignore = "timing, run in release by hand"]
    fn time_parse_double() {
        let cells = ["0.346", "-1.234", "5.701", "13"];
        let mut sum = 0.0;
        let ns = ns_per_call(1_000_000, || {
            for i in 0..1_000_000 {
                let cell = std::hint::black_box(cells[i % cells.len()]);
                sum += parse_double(cell).unwrap_or(0.0);
            }
        });
        std::hint::black_box(sum);
        println!("parse_double: {ns:.1} ns per call");
    }

    /// `Some` values equal by bits (so `-0.0` differs from `0.0`).
    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        a.map(f64::to_bits) == b.map(f64::to_bits)
    }

    #[test]
    fn plain_decimals_take_the_fast_path() {
        // (text, value, whether the fast path reads it). Every value must also be what
        // the general parser alone gives.
        let cases: [(&str, Option<f64>, bool); 34] = [
            ("0", Some(0.0), true),
            ("-0", Some(-0.0), true),
            ("-0.0", Some(-0.0), true),
            ("0.000", Some(0.0), true),
            ("007", Some(7.0), true),
            ("-007.50", Some(-7.5), true),
            ("1.", Some(1.0), true),
            (".5", Some(0.5), true),
            ("-.5", Some(-0.5), true),
            ("0.1", Some(0.1), true),
            ("-1.234", Some(-1.234), true),
            ("9007199254740992", Some(9_007_199_254_740_992.0), true),
            ("9007199254740993", Some(9_007_199_254_740_992.0), false),
            ("900719925474099.2", Some(900_719_925_474_099.2), true),
            ("900719925474099.3", Some(900_719_925_474_099.3), false),
            ("0.0000000000000000000001", Some(1e-22), true),
            ("0.00000000000000000000001", Some(1e-23), false),
            ("1.0000000000000000000000", Some(1.0), false),
            (
                "123456789012345678901234567890",
                Some(1.2345678901234568e29),
                false,
            ),
            (" \t1.5\r\n", Some(1.5), true),
            ("1.5 ", Some(1.5), true),
            ("\t1.5", Some(1.5), true),
            (" ", None, false),
            ("\u{0}7\u{1f}", Some(7.0), true),
            ("\u{a0}1", None, false),
            ("+1", Some(1.0), false),
            ("1e5", Some(1e5), false),
            ("2d", Some(2.0), false),
            ("1.d", Some(1.0), false),
            (".", None, false),
            ("-", None, false),
            ("", None, false),
            ("--1", None, false),
            ("1..2", None, false),
        ];
        for (text, want, fast) in cases {
            let got = parse_double(text);
            assert!(same(got, want), "{text:?}: {got:?}, want {want:?}");
            assert!(same(got, parse_general(text)), "{text:?}: general parser");
            let plain = parse_plain(trim_bytes(text.as_bytes()));
            assert_eq!(plain.is_some(), fast, "{text:?}: fast path");
        }
    }

    #[test]
    fn random_decimals_parse_like_std() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut text = String::new();
        let mut fast = 0;
        for _ in 0..300_000 {
            text.clear();
            let pick = |rng: &mut Rng, n: u64| (rng.next() % n) as usize;
            let space = [" ", "\t", "\r\n", ""];
            text.push_str(space[pick(&mut rng, 8).min(3)]);
            text.push_str(["-", "+", "", ""][pick(&mut rng, 4)]);
            if pick(&mut rng, 8) == 0 {
                text.push_str(&"0".repeat(1 + pick(&mut rng, 4)));
            }
            // Digit counts around the limits: 16 digits reach 2^53, 22 and 23 the
            // fraction's.
            let before = pick(&mut rng, 18);
            let after = pick(&mut rng, 25);
            for _ in 0..before {
                text.push(char::from(b'0' + pick(&mut rng, 10) as u8));
            }
            if after > 0 || pick(&mut rng, 4) == 0 {
                text.push('.');
            }
            // Few significant digits in a long fraction now and then (0.000…0123).
            let zeros = if pick(&mut rng, 4) == 0 { after } else { 0 };
            for j in 0..after {
                let d = if j + 4 < zeros { 0 } else { pick(&mut rng, 10) };
                text.push(char::from(b'0' + d as u8));
            }
            text.push_str(space[pick(&mut rng, 8).min(3)]);
            let want = text.trim().parse::<f64>().ok();
            let got = parse_double(&text);
            assert!(same(got, want), "{text:?}: {got:?}, want {want:?}");
            if let Some(v) = parse_plain(trim_bytes(text.as_bytes())) {
                assert!(same(Some(v), want), "{text:?}: fast {v:?}, want {want:?}");
                fast += 1;
            }
        }
        // The generator must exercise the fast path and the fall-through alike.
        assert!((50_000..250_000).contains(&fast), "{fast} fast");
    }

    #[test]
    fn parse_double_spellings() {
        let cases = [
            (" 1.5 ", Some(1.5)),
            ("2d", Some(2.0)),
            ("3.F", Some(3.0)),
            ("-1e3", Some(-1000.0)),
            ("abc", None),
            ("d", None),
            ("1..2", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_double(text), want, "{text:?}");
        }
        assert!(parse_double("NaN").unwrap().is_nan());
        assert_eq!(parse_double("-Infinity"), Some(f64::NEG_INFINITY));
    }
}
