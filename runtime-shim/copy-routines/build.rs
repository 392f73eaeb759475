//! Compiles `src/copy.c` into the crate for x86_64 musl targets only (glibc's routines are
//! already fast; other architectures keep musl's), always at -O2 so that the unit tests
//! (debug profile) check the code the release build links, and links the crate's tests
//! with the `--wrap` flags that route memcpy and memmove to it (runtime-shim/build.rs
//! does the same for the shim).

fn main() {
    println!("cargo:rerun-if-changed=src/copy.c");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if arch != "x86_64" || env != "musl" {
        return;
    }
    cc::Build::new()
        .file("src/copy.c")
        .opt_level(2)
        // A freestanding memcpy must not be compiled into a call to memcpy.
        .flag("-ffreestanding")
        .flag("-fno-tree-loop-distribute-patterns")
        .flag("-fno-stack-protector")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("copy_routines");
    for routine in ["memcpy", "memmove"] {
        println!("cargo:rustc-link-arg=-Wl,--wrap={routine}");
    }
}
