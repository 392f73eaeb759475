//! On x86_64 musl (the images' static build), routes every memcpy and memmove of the
//! `runtime-shim` binary to runtime-shim/copy-routines (see its copy.c): with `--wrap`,
//! each reference becomes one to `__wrap_memcpy` / `__wrap_memmove`, whatever the order of
//! the objects and libc.a on the link line (with LTO, libc.a comes first).

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if arch == "x86_64" && env == "musl" {
        for routine in ["memcpy", "memmove"] {
            println!("cargo:rustc-link-arg-bins=-Wl,--wrap={routine}");
        }
    }
}
