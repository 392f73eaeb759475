fn main() -> std::process::ExitCode {
    artifact_core::cli::main::<mlflow_model::MlflowProcessor>()
}
