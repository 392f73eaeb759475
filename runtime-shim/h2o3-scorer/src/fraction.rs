//! The shortest decimal of a number between 2^-17 and 1, in exact integer arithmetic.
//!
//! Why (issue 20): a classifier's answer is mostly probabilities, two or more per row, and
//! spelling them took as large a share of a 100-row `xgboost_binomial` request as its
//! trees (13% against 12%, `perf`): ryu's digits, its layout, and a copy of its text into
//! the answer (a `memcpy` call of variable length). In this range the shortest decimal
//! needs no table of 128-bit powers of ten: `v = c 2^q` with `-69 <= q <= -53`, and
//! `v 10^-k` for `k = floor(q log10 2)` is `2c 5^-k / 2^e` with `5^-k < 2^49` and
//! `e < 64`, so one 64×64-bit product gives its whole part and its fraction exactly, and
//! the choice between candidates is a few 64-bit compares. The digits are written eight
//! at a time in a register and stored into the answer at fixed sizes.
//!
//! The choice is the one `Display` makes (its `format_shortest`): among the decimals that
//! read back as `v` (inside its rounding interval, the ends included when `v`'s
//! significand is even) the ones with the fewest digits, and of those the nearest to
//! `v`. Which candidates (Giulietti's Schubfach, section 9: "The Schubfach way to render
//! doubles", 2020): with `k` so chosen the interval is 1 to 10 units of 10^k wide, so it
//! holds at most one multiple of ten units (`s - r` or `s - r + 10`, around `v`) and at
//! least one of the two whole units around `v` (`s`, `s + 1`). When two shortest ones are
//! equally near (a tie, where `Display` rounds up and others round to even) this gives
//! up and the caller uses `Display`.

/// `5^16` to `5^21`: `10^-k / 2^-k` for `k` from -16 down to -21.
const POW5: [u64; 6] = [
    152_587_890_625,
    762_939_453_125,
    3_814_697_265_625,
    19_073_486_328_125,
    95_367_431_640_625,
    476_837_158_203_125,
];

/// Eight ASCII `'0'`s.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// `v`'s shortest decimal as `(digits, k)`, `v ≈ digits 10^k` with `digits < 10^17` and
/// `-21 <= k <= -16`, for a `v` with 2^-17 <= v < 1 that is not a power of two (their
/// interval is lopsided). `None` for any other `v` and at a tie.
#[inline]
pub(crate) fn shortest(v: f64) -> Option<(u64, i32)> {
    let bits = v.to_bits();
    let field = (bits >> 52) as i32; // the sign bit too: a negative `v` is out of range
    let frac = bits & ((1 << 52) - 1);
    if !(1006..=1022).contains(&field) || frac == 0 {
        return None;
    }
    let c = frac | (1 << 52);
    // v = c 2^q, -69 <= q <= -53; k = floor(q log10 2), -21..=-16 (tested for every q).
    let q = field - 1075;
    let k = (q * 78_913) >> 18;
    // In units of 10^k: v = 2c 5^-k / 2^e, whole part `s`, fraction `f / 2^e`; the
    // rounding interval reaches 5^-k / 2^e either side.
    let reach = POW5[(-k - 16) as usize];
    let e = (1 - q + k) as u32; // 33..=54
    let scaled = u128::from(c << 1) * u128::from(reach);
    let s = (scaled >> e) as u64;
    let unit = 1u64 << e;
    let f = scaled as u64 & (unit - 1);
    // A distance `x` (in units of 2^-e) is inside iff `x < within`.
    let within = reach + u64::from(c & 1 == 0);
    let r = s % 10;
    let (below10, above10) = (f + r * unit < within, (10 - r) * unit - f < within);
    let digits = if below10 != above10 {
        s - r + if above10 { 10 } else { 0 }
    } else {
        let (below, above) = (f < within, unit - f < within);
        if below != above {
            s + u64::from(above)
        } else {
            let half = unit >> 1;
            if f == half {
                return None;
            }
            s + u64::from(f > half)
        }
    };
    // Below 1, so at 10^-16 at most 16 digits (rounding up to 1 cannot happen: 1 is
    // outside the interval of the largest double below it; kept as a check).
    if k == -16 && digits >= 10_000_000_000_000_000 {
        return None;
    }
    Some((digits, k))
}

/// Eight ASCII digits of `x < 10^8`, the first in the lowest byte: split into two
/// four-digit lanes of one register, then four two-digit lanes, then eight digits (a
/// multiply and a shift per step for all lanes at once).
#[inline]
fn eight(x: u32) -> u64 {
    let halves = u64::from(x / 10_000) | (u64::from(x % 10_000) << 32);
    let hundreds = ((halves * 5243) >> 19) & 0x0000_007F_0000_007F; // lane / 100
    let pairs = hundreds | ((halves - hundreds * 100) << 16);
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F; // lane / 10
    (tens | ((pairs - tens * 10) << 8)) + ZEROS
}

/// Appends `0.` and the fraction `digits 10^k` ([`shortest`]'s) without trailing zeros.
#[inline]
pub(crate) fn write(digits: u64, k: i32, out: &mut Vec<u8>) {
    // 17 digits: one, then two groups of eight, split from `digits` in parallel.
    let first = digits / 10_000_000_000_000_000;
    let high = digits / 100_000_000;
    let mid = eight((high - first * 100_000_000) as u32);
    let low = eight((digits - high * 100_000_000) as u32);
    let trailing_zeros = match (low ^ ZEROS, mid ^ ZEROS) {
        (0, 0) => 16,
        (0, m) => 8 + m.leading_zeros() / 8,
        (l, _) => l.leading_zeros() / 8,
    } as usize;
    // Fixed-size stores (no `memcpy` call): `0.000000`, cut where the 17 digits start (at
    // 10^-16 on the dot: their first is 0 then, and the dot is put back), the digits.
    out.reserve(32);
    let at = out.len();
    out.extend_from_slice(b"0.000000");
    out.truncate(at + (-k - 15) as usize);
    let head = u128::from(b'0' + first as u8) | (u128::from(mid) << 8) | (u128::from(low) << 72);
    out.extend_from_slice(&head.to_le_bytes());
    out.push((low >> 56) as u8);
    out[at + 1] = b'.';
    out.truncate(out.len() - trailing_zeros);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Rng;

    /// `Display`'s spelling through [`shortest`] and [`write`], `None` where it declines.
    fn spelled(v: f64) -> Option<String> {
        let (digits, k) = shortest(v)?;
        let mut out = b"prefix ".to_vec();
        write(digits, k, &mut out);
        Some(String::from_utf8(out).unwrap()["prefix ".len()..].to_owned())
    }

    fn check(v: f64) {
        if let Some(s) = spelled(v) {
            assert_eq!(s, format!("{v}"), "{v:e} ({:#x})", v.to_bits());
        }
    }

    #[test]
    fn k_is_the_floor_of_q_log10_2_for_every_exponent() {
        for q in -69i32..=-53 {
            let k = (q * 78_913) >> 18;
            // 10^k <= 2^q < 10^(k+1), i.e. 2^-q <= 10^-k < 10 2^-q, exactly.
            let (p2, p10) = (1u128 << -q, 10u128.pow((-k) as u32));
            assert!(p2 <= p10 && p10 < 10 * p2, "q {q}, k {k}");
            assert_eq!(POW5[(-k - 16) as usize], 5u64.pow((-k) as u32), "q {q}");
        }
    }

    #[test]
    fn eight_digits_are_format_s() {
        let mut rng = Rng(0x0DDB_1A5E_5BAD_5EED);
        let edges = [0, 1, 9, 10, 99, 100, 9_999, 10_000, 10_001, 99_999_999];
        for x in edges
            .into_iter()
            .chain((0..1_000_000).map(|_| (rng.next() % 100_000_000) as u32))
        {
            assert_eq!(eight(x).to_le_bytes(), *format!("{x:08}").as_bytes(), "{x}");
        }
    }

    #[test]
    fn named_cases() {
        let cases: [(&str, f64, Option<&str>); 10] = [
            (
                "a probability",
                0.2811443710778968,
                Some("0.2811443710778968"),
            ),
            (
                "just below one",
                1.0f64.next_down(),
                Some("0.9999999999999999"),
            ),
            ("a tenth", 0.1, Some("0.1")),
            (
                "below a tenth",
                0.1f64.next_down(),
                Some("0.09999999999999999"),
            ),
            (
                "the range's floor",
                2f64.powi(-17).next_up(),
                Some("0.000007629394531250002"),
            ),
            ("short dyadic", 0.375, Some("0.375")),
            (
                "widened f32",
                f64::from(0.3f32),
                Some("0.30000001192092896"),
            ),
            ("a power of two", 0.5, None),
            ("one", 1.0, None),
            ("negative", -0.25, None),
        ];
        for (name, v, want) in cases {
            assert_eq!(spelled(v).as_deref(), want, "{name}");
            check(v);
        }
    }

    #[test]
    fn every_exponent_spells_like_display() {
        let mut rng = Rng(0xA076_1D64_78BD_642F);
        let mut declined = 0;
        for field in 1006u64..=1022 {
            for _ in 0..60_000 {
                let v = f64::from_bits((field << 52) | (rng.next() >> 12));
                for w in [v, v.next_down(), v.next_up()] {
                    check(w);
                    declined += u32::from(w < 1.0 && spelled(w).is_none());
                }
            }
        }
        // `check` passes a declined value; random 52-bit fractions are neither ties nor
        // powers of two, so nearly all must be spelled here.
        assert!(declined < 10, "{declined} declined");
    }

    #[test]
    fn probabilities_as_models_make_them_spell_like_display() {
        let mut rng = Rng(0xE703_7ED1_A0B4_28DB);
        let (mut seen, mut declined) = (0u32, 0u32);
        for _ in 0..300_000 {
            let p = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            // A float model's probability widened (XGBoost), a logistic, 1 - p, and
            // short decimals with their neighbours (where the shorter candidates win).
            let d = (rng.next() % 100_000) as f64 / 100_000.0;
            for v in [
                p,
                f64::from(p as f32),
                1.0 / (1.0 + (-(p - 0.5) * 40.0).exp()),
                1.0 - p,
                d,
                d.next_up(),
                d.next_down(),
            ] {
                check(v);
                if (2f64.powi(-17)..1.0).contains(&v) {
                    seen += 1;
                    declined += u32::from(spelled(v).is_none());
                }
            }
        }
        // Declined (ties, among widened `f32`s mostly, and powers of two): rare.
        assert!(declined < seen / 1000, "{declined} of {seen} declined");
    }

    /// Whether `v` is exactly halfway between `Display`'s spelling and the decimal one
    /// unit lower in its last digit (a tie, which `Display` rounds up).
    fn is_tie(v: f64) -> bool {
        let text = format!("{v}");
        let digits = &text["0.".len()..];
        let b: u128 = digits.parse().unwrap();
        let n = digits.len() as u32;
        let bits = v.to_bits();
        let (c, q) = (
            (bits & ((1 << 52) - 1)) | (1 << 52),
            ((bits >> 52) as i32) - 1075,
        );
        // v = c 2^q = (2b - 1) / 2 10^-n  <=>  2c 10^n = (2b - 1) 2^-q
        2 * u128::from(c) * 10u128.pow(n) == (2 * b - 1) << (-q)
    }

    #[test]
    fn ties_and_only_ties_are_declined() {
        let mut rng = Rng(0x5851_F42D_4C95_7F2D);
        let mut ties = 0;
        // Widened `f32`s: few significant bits, so short exact expansions, where ties are.
        for _ in 0..1_000_000 {
            let v = f64::from(f32::from_bits(
                0x3700_0000 + (rng.next() % 0x0800_0000) as u32,
            ));
            if !(2f64.powi(-17)..1.0).contains(&v) || v.to_bits() & ((1 << 52) - 1) == 0 {
                continue;
            }
            match spelled(v) {
                Some(s) => assert_eq!(s, format!("{v}"), "{v:e}"),
                None => {
                    assert!(is_tie(v), "{v:e} ({:#x}) declined but no tie", v.to_bits());
                    ties += 1;
                }
            }
        }
        assert!(ties > 100, "only {ties} ties met");
    }
}
