//! The `runtime-shim` binary; everything is in the library (`cli::main`).

/// Every build allocates with mimalloc. musl's own malloc (the images' static build)
/// takes a global lock on every call and made a 100-row request about 6x slower than the
/// glibc build (`bench/load.sh`, runtime-shim/README.md); glibc's malloc and free were
/// still ~30% of a 1-row request's instructions (callgrind; hyper, axum and tower
/// allocate a few dozen small objects per request), mimalloc's fast paths are a few
/// instructions each. Built with mimalloc's `no_thp` (the workspace's `Cargo.toml`): its
/// eagerly committed arena, backed by transparent huge pages, kept 2 MiB pages resident
/// for a few KiB of use (peak RSS under 100-row load 25 MB with, 9.6 MB without, the same
/// CPU per request: runtime-shim/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    runtime_shim::cli::main()
}
