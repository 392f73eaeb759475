fn main() -> std::process::ExitCode {
    runtime_shim::cli::main()
}
