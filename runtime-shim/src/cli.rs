//! The command line: `runtime-shim` (serve, the default, as a deployer runs the image with
//! only `MODEL_PATH` set), `runtime-shim serve` and `runtime-shim score` (batch CSV), the
//! environment variables each flag reads, and the mapping of errors to exit codes.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use artifact_core::cli::{init_logging_to, parse_size, report, LogArgs};
use clap::{Args, Parser, Subcommand};

use crate::auth::passphrase::HashAlgorithm;
use crate::auth::{AuthArgs, AuthSettings};
use crate::backend::BackendConfig;
use crate::batch::BatchOptions;
use crate::connections::ConnLimits;
use crate::error::{ShimError, EXIT_CODES_HELP};
use crate::server::ServeConfig;

/// Which model directory, and which model types this runtime serves.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The normalized model directory (a processor's TARGET_PATH).
    #[arg(long, env = "MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// Model types this runtime serves, comma-separated; default: every backend of this
    /// build (h2o3_mojo, mlflow_pyfunc, dai_mojo_pipeline, onnx). A directory of another type is
    /// refused (exit code 5).
    #[arg(long, env = "MODEL_TYPES", value_delimiter = ',')]
    pub model_types: Vec<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Settings of the backends that run a child process (mlflow_pyfunc, dai_mojo_pipeline).
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// mlflow_pyfunc: the MLflow scoring server's command line; {model} is the model
    /// folder, {host} and {port} the loopback address the shim chooses. The command's
    /// folder is put first on the child's PATH (a venv's bin/, where uvicorn is).
    #[arg(long, env = "MLFLOW_SERVE_COMMAND", default_value = crate::backend::mlflow::DEFAULT_SERVE_COMMAND)]
    pub mlflow_serve_command: String,
    /// mlflow_pyfunc: the Python whose version is compared with the model's (default: the
    /// python beside the serve command, else python3 from PATH).
    #[arg(long, env = "MLFLOW_PYTHON")]
    pub mlflow_python: Option<PathBuf>,
    /// mlflow_pyfunc: refuse to start (exit code 6) when the model's Python major.minor
    /// differs from the runtime's, instead of warning.
    #[arg(long, env = "MLFLOW_REQUIRE_PYTHON_MATCH")]
    pub mlflow_require_python_match: bool,
    /// mlflow_pyfunc: refuse to start (exit code 6) when the runtime's Python does not
    /// satisfy the model's requirements (metadata.requirements), instead of warning.
    #[arg(long, env = "MLFLOW_REQUIRE_REQUIREMENTS_MATCH")]
    pub mlflow_require_requirements_match: bool,
    /// mlflow_pyfunc: install the requirements the runtime's Python does not satisfy with
    /// pip into --mlflow-install-dir at start (needs a package index: PIP_INDEX_URL,
    /// PIP_FIND_LINKS, ...), first on the scoring server's PYTHONPATH.
    #[arg(long, env = "MLFLOW_INSTALL_REQUIREMENTS")]
    pub mlflow_install_requirements: bool,
    /// mlflow_pyfunc: the writable folder of --mlflow-install-requirements (default
    /// $TMPDIR/mlflow-requirements).
    #[arg(long, env = "MLFLOW_INSTALL_DIR")]
    pub mlflow_install_dir: Option<PathBuf>,
    /// dai_mojo_pipeline: the external MOJO2 scorer's command line (it must serve the
    /// MLOps scoring API); {pipeline} is pipeline.mojo, {model_dir} its folder, {host} and
    /// {port} the loopback address the shim chooses. Without it a pipeline is refused.
    #[arg(long, env = "DAI_SCORER_COMMAND")]
    pub dai_scorer_command: Option<String>,
    /// dai_mojo_pipeline: the scorer's route that answers 2xx once it can score.
    #[arg(long, env = "DAI_SCORER_HEALTH_PATH", default_value = "/model/id")]
    pub dai_scorer_health_path: String,
    /// dai_mojo_pipeline: stop at start-up (exit code 9) unless a Driverless AI licence
    /// was provided (DRIVERLESS_AI_LICENSE_KEY, a readable DRIVERLESS_AI_LICENSE_FILE,
    /// /license/license.sig or ~/.driverlessai/license.sig).
    #[arg(long, env = "DAI_REQUIRE_LICENSE")]
    pub dai_require_license: bool,
    /// Seconds a child may take to answer its health route at start (and restart).
    #[arg(long, env = "CHILD_START_TIMEOUT_SECS", default_value_t = 300.0)]
    pub child_start_timeout_secs: f64,
    /// Seconds a child gets to exit after SIGTERM before SIGKILL.
    #[arg(long, env = "CHILD_STOP_GRACE_SECS", default_value_t = 5.0)]
    pub child_stop_grace_secs: f64,
    /// onnx: ONNX Runtime's shared library (libonnxruntime.so.1.x, version 1.17 or later,
    /// e.g. onnxruntime/capi/libonnxruntime.so.1.32.0 of the onnxruntime wheel); default:
    /// libonnxruntime.so from the dynamic loader's search path.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub onnx_runtime_lib: Option<PathBuf>,
    /// onnx: threads of each ONNX Runtime session; 0: ONNX Runtime's default (one per
    /// physical core).
    #[arg(long, env = "ONNX_INTRA_OP_THREADS", default_value_t = 0)]
    pub onnx_intra_op_threads: usize,
    /// onnx: ONNX Runtime sessions, created at start-up; each scores one request at a
    /// time (more serve concurrent requests in parallel, each holds the model's weights).
    #[arg(long, env = "ONNX_SESSIONS", default_value_t = 1)]
    pub onnx_sessions: usize,
}

impl BackendArgs {
    /// The backends' settings, checked.
    pub fn config(&self) -> Result<BackendConfig, ShimError> {
        Ok(BackendConfig {
            mlflow_serve_command: self.mlflow_serve_command.clone(),
            mlflow_python: self.mlflow_python.clone(),
            mlflow_require_python_match: self.mlflow_require_python_match,
            mlflow_require_requirements_match: self.mlflow_require_requirements_match,
            mlflow_install_requirements: self.mlflow_install_requirements,
            mlflow_install_dir: self
                .mlflow_install_dir
                .clone()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| std::env::temp_dir().join("mlflow-requirements")),
            dai_scorer_command: self.dai_scorer_command.clone(),
            dai_scorer_health_path: self.dai_scorer_health_path.clone(),
            dai_require_license: self.dai_require_license,
            child_start_timeout: seconds(
                "--child-start-timeout-secs",
                self.child_start_timeout_secs,
            )?,
            child_stop_grace: seconds("--child-stop-grace-secs", self.child_stop_grace_secs)?,
            onnx_runtime_lib: self
                .onnx_runtime_lib
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            onnx_intra_op_threads: self.onnx_intra_op_threads,
            onnx_sessions: match self.onnx_sessions {
                0 => {
                    return Err(ShimError::Usage(
                        "--onnx-sessions must be at least 1".into(),
                    ))
                }
                n => n,
            },
        })
    }
}

/// Flags of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (0.0.0.0 in a container; 127.0.0.1 for local use).
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one (the log line `listening on ADDR` names it).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Id answered by /model/id and in every response (default: the manifest's id).
    #[arg(long, env = "MODEL_ID")]
    pub model_id: Option<String>,
    /// The model's name in the Open Inference Protocol v2 (/v2/models/NAME/...; default:
    /// the model id).
    #[arg(long, env = "MODEL_NAME")]
    pub model_name: Option<String>,
    /// The model's one version in the Open Inference Protocol v2
    /// (/v2/models/NAME/versions/VERSION/...).
    #[arg(long, env = "MODEL_VERSION", default_value = "1")]
    pub model_version: String,
    /// Largest accepted request body; K, M, G suffixes (powers of 1024).
    #[arg(long, env = "MAX_BODY_BYTES", value_parser = parse_size, default_value = "64M")]
    pub max_body_bytes: u64,
    /// Seconds after which a request is answered 503 and abandoned.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 60.0)]
    pub request_timeout_secs: f64,
    /// Seconds a client has to send a request's line and headers (else 408 and the
    /// connection is closed).
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value_t = 10.0)]
    pub header_timeout_secs: f64,
    /// Seconds a kept-alive connection may stay idle after an answer before it is
    /// closed; keep it above the idle timeout of a load balancer that reuses connections.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 75.0)]
    pub idle_timeout_secs: f64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 25.0)]
    pub shutdown_grace_secs: f64,
    /// Threads that serve connections, each with its own runtime (default: one per CPU;
    /// each pinned to one when the process may run on exactly that many CPUs).
    #[arg(long, env = "WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// Serve the Prometheus metrics alone on this port (open, for the scraper; 0 picks a
    /// free one) instead of at /metrics on the API port behind the endpoint security.
    #[arg(long, env = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Flags of `hash-passphrase`.
#[derive(Debug, Clone, Args)]
pub struct HashArgs {
    /// The PBKDF2 variant.
    #[arg(long, value_enum, default_value = "pbkdf2-sha256")]
    pub algorithm: HashAlgorithm,
    /// PBKDF2 rounds (default: the current recommendation, 600000 for SHA-256 and 210000
    /// for SHA-512; at least 1000). Each new credential costs one run of this many rounds.
    #[arg(long)]
    pub iterations: Option<u32>,
}

/// Flags of the batch command.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Input CSV: a header row of field names, then one row per request row.
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV (default or `-`: standard output): the response's fields, then its rows.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Input fields copied into each output row (includeFieldsInOutput), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub include_fields: Vec<String>,
    /// The idField of the request.
    #[arg(long)]
    pub id_field: Option<String>,
    /// Scoring threads of an in-process (native) backend; 0: one per CPU, at most 8. The
    /// output is the same whatever the number; memory grows with it (two blocks of 2048
    /// rows in flight per thread).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// fsync the output file before renaming it into place (durable across a power
    /// loss; without it the rename still guarantees that a failed run leaves no file).
    #[arg(long)]
    pub fsync: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the H2O MLOps scoring REST API for MODEL_PATH (the default).
    Serve(ServeArgs),
    /// Score a CSV file with the model, as POST /model/score would, and write a CSV.
    Score(ScoreArgs),
    /// Read a passphrase from standard input and print its PBKDF2 hash (a PHC string
    /// with a random salt) for SCORING_PASSPHRASE_HASH.
    HashPassphrase(HashArgs),
}

/// The runtime container's entrypoint: serves a normalized model directory over the
/// H2O MLOps scoring REST API.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "runtime-shim",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The whole `main` of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = crate::log_writer::stderr();
    init_logging_to(cli.log.log_format, log.clone());
    crate::access_log::init(
        cli.log.log_format,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        log,
    );
    let result = run(cli.command.unwrap_or(Command::Serve(cli.serve)));
    // Children are stopped in order on every normal path; this catches the others.
    crate::backend::proxy::kill_all();
    crate::log_writer::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, cli.log.log_format);
            ExitCode::from(e.exit_code())
        }
    }
}

fn model_path(m: &ModelArgs) -> Result<PathBuf, ShimError> {
    m.model_path
        .clone()
        .ok_or_else(|| ShimError::Usage("no model: pass --model-path DIR or set MODEL_PATH".into()))
}

fn seconds(name: &str, s: f64) -> Result<Duration, ShimError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ShimError::Usage(format!(
                "{name} must be a positive number of seconds, not {s}"
            ))
        })
}

/// Every environment variable the shim reads: those of its flags, in every command, then
/// `RUST_LOG` and the licence variables a DAI scorer inherits. Tests clear them all, so
/// that the caller's environment cannot leak into a run.
pub fn environment() -> Vec<String> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut names: Vec<String> = std::iter::once(&cmd)
        .chain(cmd.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter_map(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .chain(
            [
                "RUST_LOG",
                "DRIVERLESS_AI_LICENSE_FILE",
                "DRIVERLESS_AI_LICENSE_KEY",
            ]
            .map(String::from),
        )
        .chain(crate::auth::SECRET_VARIABLES.map(String::from))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Runs one command.
pub fn run(command: Command) -> Result<(), ShimError> {
    match command {
        Command::Serve(a) => {
            let served = crate::model::served_backends(&a.model.model_types)?;
            let cfg = ServeConfig {
                model_path: model_path(&a.model)?,
                served,
                model_id: a.model_id.clone(),
                model_name: a.model_name.clone(),
                model_version: a.model_version.clone(),
                host: a.host,
                port: a.port,
                max_body_bytes: usize::try_from(a.max_body_bytes).unwrap_or(usize::MAX),
                request_timeout: seconds("--request-timeout-secs", a.request_timeout_secs)?,
                connections: ConnLimits {
                    header_timeout: seconds("--header-timeout-secs", a.header_timeout_secs)?,
                    idle_timeout: seconds("--idle-timeout-secs", a.idle_timeout_secs)?,
                    max_connections: match a.max_connections {
                        0 => {
                            return Err(ShimError::Usage(
                                "--max-connections must be at least 1".into(),
                            ))
                        }
                        n => n,
                    },
                },
                shutdown_grace: seconds("--shutdown-grace-secs", a.shutdown_grace_secs)?,
                backend: a.model.backend.config()?,
                auth: AuthSettings::from_env(&a.auth)?,
                metrics_port: a.metrics_port,
                worker_threads: a
                    .worker_threads
                    .filter(|n| *n > 0)
                    .unwrap_or_else(crate::workers::process_cpus),
            };
            // Connections are served on their own threads (`crate::workers`); this
            // runtime accepts them, loads the model and watches a proxy's child.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| ShimError::io("start", "the async runtime", e))?;
            rt.block_on(crate::server::serve(cfg))
        }
        Command::Score(a) => {
            let served = crate::model::served_backends(&a.model.model_types)?;
            let dir = model_path(&a.model)?;
            let backend = a.model.backend.config()?;
            let opts = BatchOptions {
                input: a.input,
                output: a.output,
                include_fields: a.include_fields,
                id_field: a.id_field,
                fsync: a.fsync,
                threads: match a.threads {
                    0 => crate::workers::process_cpus().min(8),
                    n => n,
                },
            };
            // Two threads: a proxy backend's child is watched while the model loads.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| ShimError::io("start", "the async runtime", e))?;
            rt.block_on(async move {
                // A signal must not leave a proxy backend's child behind.
                let mut signals = crate::server::Signals::install()?;
                let interrupted = |sig: &str| {
                    ShimError::io(
                        "score",
                        &opts.input,
                        std::io::Error::new(
                            std::io::ErrorKind::Interrupted,
                            format!("interrupted by {sig}"),
                        ),
                    )
                };
                let mut loading = tokio::task::spawn_blocking(move || {
                    crate::model::load(&dir, &served, None, &backend)
                });
                let model = tokio::select! {
                    r = &mut loading => r.map_err(|e| {
                        ShimError::io("load model", "the model", std::io::Error::other(e))
                    })??,
                    sig = signals.recv() => {
                        crate::server::abandon_loading(loading, Duration::from_secs(30)).await;
                        return Err(interrupted(sig));
                    }
                };
                let scored = tokio::select! {
                    r = crate::batch::run(&model, &opts) => r,
                    sig = signals.recv() => Err(interrupted(sig)),
                };
                model.backend.shutdown().await;
                let rows = scored?;
                tracing::info!(rows, input = %opts.input.display(), "scored");
                Ok(())
            })
        }
        Command::HashPassphrase(a) => hash_passphrase(&a),
    }
}

/// `hash-passphrase`: the passphrase from standard input (a terminal: one line; else
/// everything, less one final line break), its hash on standard output.
fn hash_passphrase(a: &HashArgs) -> Result<(), ShimError> {
    use std::io::{IsTerminal, Read, Write};
    let stdin = std::io::stdin();
    let mut text = Vec::new();
    let read = if stdin.is_terminal() {
        eprint!("passphrase (Enter to end): ");
        let mut line = String::new();
        stdin.read_line(&mut line).map(|_| text = line.into_bytes())
    } else {
        stdin
            .lock()
            .take(1 << 16)
            .read_to_end(&mut text)
            .map(|_| ())
    };
    read.map_err(|e| ShimError::io("read the passphrase from", "standard input", e))?;
    if text.ends_with(b"\n") {
        text.pop();
        if text.ends_with(b"\r") {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(ShimError::Usage(
            "hash-passphrase: standard input holds no passphrase".into(),
        ));
    }
    let h = crate::auth::passphrase::hash_passphrase(&text, a.algorithm, a.iterations)
        .map_err(ShimError::Usage)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{h}").map_err(|e| ShimError::io("write the hash to", "standard output", e))
}

#[cfg(test)]
mod tests {
    /// The variables of the flags of every command are found, with the extra ones.
    #[test]
    fn environment_lists_every_variable() {
        let names = super::environment();
        for v in [
            "MODEL_PATH",
            "MODEL_TYPES",
            "PORT",
            "HEADER_TIMEOUT_SECS",
            "IDLE_TIMEOUT_SECS",
            "MAX_CONNECTIONS",
            "MLFLOW_SERVE_COMMAND",
            "CHILD_STOP_GRACE_SECS",
            "LOG_FORMAT",
            "RUST_LOG",
            "DRIVERLESS_AI_LICENSE_KEY",
        ] {
            assert!(names.iter().any(|n| n == v), "{v} not in {names:?}");
        }
    }
}
