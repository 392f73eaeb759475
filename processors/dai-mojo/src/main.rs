fn main() -> std::process::ExitCode {
    artifact_core::cli::main::<dai_mojo::DaiMojoProcessor>()
}
