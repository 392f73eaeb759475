//! The `runtime-shim` binary; everything is in the library (`cli::main`).

/// The static musl build (the images) allocates with mimalloc: musl's own malloc takes a
/// global lock on every call and made a 100-row request about 6x slower than the glibc
/// build (`bench/load.sh`, runtime-shim/README.md). glibc builds keep the system allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    runtime_shim::cli::main()
}
