fn main() -> std::process::ExitCode {
    artifact_core::cli::main::<h2o3_mojo::H2o3MojoProcessor>()
}
