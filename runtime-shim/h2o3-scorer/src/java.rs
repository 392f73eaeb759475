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
