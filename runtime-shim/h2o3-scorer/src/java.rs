//! Java semantics that genmodel's arithmetic depends on and Rust spells differently.
//!
//! Scores must equal h2o-genmodel's doubles, so the few places where Java and Rust
//! disagree are written out here once: `Math.max`/`Math.min` propagate NaN (Rust's
//! `f64::max` drops it), `java.util.Random` is needed bit for bit for genmodel's
//! multinomial tie-breaking and GLRM's initialisation, and `Double.parseDouble` accepts a
//! few spellings that `str::parse` does not.

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

#[cfg(test)]
mod tests {
    use super::*;

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
