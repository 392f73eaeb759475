//! memcpy and memmove for the runtime shim's static musl build (`src/copy.c`).
//!
//! musl's x86_64 routines cost tens of cycles per call whatever the length (`rep movsq`,
//! and `std; rep movsb` for a backward memmove), and the shim's REST path makes a few short
//! copies per cell: in the images' static build they were about a third of a 100-row
//! request's CPU time. build.rs compiles `copy.c` for x86_64 musl targets only; the shim
//! calls [`in_use`], so the crate is linked, and links with
//! `-Wl,--wrap=memcpy,--wrap=memmove` (the list this crate's build script passes on as
//! `DEP_COPY_ROUTINES_WRAP`, forwarded by runtime-shim/build.rs) so that every copy calls
//! these. On every other target the crate is empty and the platform's routines are used.
//!
//! The one Rust function, [`in_use`], tells a binary whose routines it calls (the shim
//! logs it at start-up, and `make e2e-images` checks the image's log). The tests copy
//! through the safe slice methods (`copy_from_slice` is a memcpy call for lengths the
//! compiler cannot see, `copy_within` a memmove call), so on musl they test `copy.c`,
//! elsewhere the platform.

/// Whose memcpy and memmove this binary calls: `"copy-routines"` (x86_64 musl, linked
/// with the `--wrap` flags), `"musl"` (an x86_64 musl binary linked without them: musl's
/// slow routines; a build mistake) or `"libc"` (every other target: the platform's).
pub fn in_use() -> &'static str {
    #[cfg(all(target_arch = "x86_64", target_env = "musl"))]
    {
        if wrapped::routed() {
            "copy-routines"
        } else {
            "musl"
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_env = "musl")))]
    {
        "libc"
    }
}

/// With `--wrap=memcpy`, this crate's reference to `memcpy` is linked to `__wrap_memcpy`;
/// without it, to musl's. Comparing the two addresses (through `black_box`, so that the
/// compiler cannot assume two declarations differ) tells which happened.
#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
mod wrapped {
    use std::hint::black_box;

    type Copy = unsafe extern "C" fn(*mut u8, *const u8, usize) -> *mut u8;

    extern "C" {
        fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn __wrap_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn __wrap_memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    }

    pub(crate) fn routed() -> bool {
        let same = |a: Copy, b: Copy| std::ptr::fn_addr_eq(black_box(a), black_box(b));
        same(memcpy, __wrap_memcpy) && same(memmove, __wrap_memmove)
    }
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    /// Every length to 300 (each short-copy case, several 64-byte blocks), then the edges
    /// around the block loop and `rep movsb` (2048) and a few long ones.
    fn lengths() -> Vec<usize> {
        let mut lengths: Vec<usize> = (0..=300).collect();
        lengths.extend([
            383, 384, 385, 511, 512, 513, 1000, 2046, 2047, 2048, 2049, 2111, 4096, 4097, 65_541,
        ]);
        lengths
    }

    /// Bytes that differ from their neighbours and repeat rarely (a 251-byte cycle).
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 + 1).collect()
    }

    #[test]
    fn memcpy_every_length_at_every_alignment() {
        const GUARD: usize = 16;
        for n in lengths() {
            let src = pattern(n + 16);
            let alignments: &[usize] = if n > 4096 {
                &[0, 1, 15]
            } else {
                &[0, 1, 3, 7, 8, 15]
            };
            for &s in alignments {
                for &d in alignments {
                    let mut dst = vec![0u8; GUARD + d + n + GUARD];
                    dst[GUARD + d..GUARD + d + n].copy_from_slice(black_box(&src[s..s + n]));
                    assert_eq!(
                        &dst[GUARD + d..GUARD + d + n],
                        &src[s..s + n],
                        "memcpy of {n} bytes, source offset {s}, destination offset {d}"
                    );
                    assert!(
                        dst[..GUARD + d]
                            .iter()
                            .chain(&dst[GUARD + d + n..])
                            .all(|&b| b == 0),
                        "memcpy of {n} bytes (source offset {s}, destination offset {d}) \
                         wrote outside the destination"
                    );
                }
            }
        }
    }

    /// memmove with the destination `shift` bytes after (positive) or before (negative)
    /// the source: every shift within 70 either way (overlap inside the short copies and
    /// across one block), the shifts at and around the length (barely overlapping,
    /// adjacent, disjoint) and a block's worth, against a copy through a scratch buffer.
    #[test]
    fn memmove_every_length_and_overlap() {
        for n in lengths() {
            let mut shifts: Vec<isize> = (-70..=70).collect();
            let n_signed = n as isize;
            for s in [n_signed - 1, n_signed, n_signed + 1, 64, 65, 128, 129] {
                shifts.extend([s, -s]);
            }
            if n > 4096 {
                shifts.retain(|s| s.unsigned_abs() % 16 < 3 || s.unsigned_abs() >= n - 1);
            }
            for shift in shifts {
                for align in [0usize, 5] {
                    let margin = 16 + shift.unsigned_abs();
                    let from = margin + align;
                    let to = from
                        .checked_add_signed(shift)
                        .expect("margin covers the shift");
                    let mut buf = pattern(from + n + margin);
                    let mut expected = buf.clone();
                    let moved = expected[from..from + n].to_vec();
                    expected[to..to + n].copy_from_slice(&moved);
                    buf.copy_within(black_box(from..from + n), black_box(to));
                    assert!(
                        buf == expected,
                        "memmove of {n} bytes by {shift} (source offset {from}) differs from \
                         the reference"
                    );
                }
            }
        }
    }

    /// This test binary is linked as the shim is (`--wrap`): `in_use` must say so. (On
    /// other targets `in_use` is the constant `"libc"`: nothing to test.)
    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "musl"))]
    fn in_use_names_the_routines() {
        assert_eq!(super::in_use(), "copy-routines");
    }

    /// The musl build must copy with `copy.c`, not musl's routines: `nm` (binutils,
    /// installed with musl-gcc) lists the test binary's symbols (tests are not stripped):
    /// `--wrap` left no reference to memcpy or memmove, so libc.a's were not taken.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "musl"))]
    fn the_musl_build_links_these_routines() {
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = std::process::Command::new("nm")
            .arg(&exe)
            .output()
            .expect("nm (binutils) runs");
        assert!(out.status.success(), "nm {} failed", exe.display());
        let symbols = String::from_utf8_lossy(&out.stdout);
        let defined = |name: &str| {
            symbols.lines().any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() == 3 && fields[2] == name && fields[1].eq_ignore_ascii_case("t")
            })
        };
        for routine in ["memcpy", "memmove"] {
            assert!(
                defined(&format!("__wrap_{routine}")),
                "{}: no __wrap_{routine}: copy.c was not linked",
                exe.display()
            );
            assert!(
                !defined(routine),
                "{}: musl's {routine} was linked (a reference escaped --wrap)",
                exe.display()
            );
        }
    }
}
