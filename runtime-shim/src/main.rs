//! The `runtime-shim` binary; everything is in the library (`cli::main`).

/// Every build allocates with mimalloc. musl's own malloc (the images' static build)
/// takes a global lock on every call and made a 100-row request about 6x slower than the
/// glibc build (`bench/load.sh`, runtime-shim/README.md); glibc's malloc and free were
/// still ~30% of a 1-row request's instructions (callgrind; hyper, axum and tower
/// allocate a few dozen small objects per request), mimalloc's fast paths are a few
/// instructions each.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    runtime_shim::cli::main()
}
