fn main() -> std::process::ExitCode {
    shim_load::cli::main()
}
