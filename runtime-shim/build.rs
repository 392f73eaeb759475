//! Links the `runtime-shim` binary with `-Wl,--wrap=<routine>` for each routine
//! runtime-shim/copy-routines defines on this target (`DEP_COPY_ROUTINES_WRAP`: memcpy and
//! memmove on x86_64 musl, the images' static build; none elsewhere). Each reference then
//! becomes one to `__wrap_<routine>`, defined by copy-routines' copy.c, whatever the order
//! of the objects and libc.a on the link line (with LTO, libc.a comes first).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_COPY_ROUTINES_WRAP");
    let wrap = std::env::var("DEP_COPY_ROUTINES_WRAP").unwrap_or_default();
    for routine in wrap.split(',').filter(|r| !r.is_empty()) {
        println!("cargo:rustc-link-arg-bins=-Wl,--wrap={routine}");
    }
}
