//! Compiles `src/copy.c` into the crate for x86_64 musl targets only (glibc's routines are
//! already fast; other architectures keep musl's), always at -O2 so that the unit tests
//! (debug profile) check the code the release build links. The routines to route here
//! with `-Wl,--wrap=<routine>` go to this crate's tests as link flags and to dependents'
//! build scripts as `DEP_COPY_ROUTINES_WRAP` (runtime-shim/build.rs forwards them to the
//! shim's link), so that this file alone decides when the wrapping happens.

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
    const WRAP: &str = "memcpy,memmove";
    for routine in WRAP.split(',') {
        println!("cargo:rustc-link-arg=-Wl,--wrap={routine}");
    }
    println!("cargo:wrap={WRAP}");
}
