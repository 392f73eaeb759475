//! The command line shared by every processor binary: `SOURCE_PATH`/`TARGET_PATH`
//! conventions, `process` (the default), `inspect` and `verify`, logging set-up, and the
//! mapping of errors to the documented exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::error::{Classify, Error};
use crate::limits::Limits;
use crate::manifest::{verify, Manifest, CONTRACT_VERSION};
use crate::processor::{Context, Processor};
use crate::publish::Staging;
use crate::source::ReadOptions;

/// Metadata keys shown in text summaries, when a format has them.
pub const SUMMARY_KEYS: &[&str] = &[
    "algo",
    "algorithm",
    "category",
    "h2o_version",
    "mojo_version",
    "response_column",
    "n_classes",
    "dai_version",
    "mojo2_runtime_version",
    "generation",
    "flavors",
    "loader_module",
    "python_version",
    "mlflow_version",
    "requirements",
    "tensor_signature",
];

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging flags (stderr; level from `RUST_LOG`, default `info`).
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format on stderr.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

/// Limits on what a source may expand to. Sizes accept K, M, G suffixes (powers of 1024).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Maximum total bytes of all files in the source.
    #[arg(long, value_parser = parse_size, default_value_t = Limits::default().max_total_bytes)]
    pub max_total_bytes: u64,
    /// Maximum bytes of one file.
    #[arg(long, value_parser = parse_size, default_value_t = Limits::default().max_file_bytes)]
    pub max_file_bytes: u64,
    /// Maximum number of entries.
    #[arg(long, default_value_t = Limits::default().max_entries)]
    pub max_entries: u64,
    /// Maximum inflated/compressed ratio of a zip entry or a tar.gz stream (past 1 MiB).
    #[arg(long, default_value_t = Limits::default().max_ratio)]
    pub max_ratio: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_total_bytes: self.max_total_bytes,
            max_file_bytes: self.max_file_bytes,
            max_entries: self.max_entries,
            max_ratio: self.max_ratio,
            ..Limits::default()
        }
    }
}

/// Parses `123`, `64K`, `10M`, `2G` (powers of 1024; an optional trailing `B`/`iB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size (e.g. 1048576, 512K, 64M, 2G)"))
}

/// Arguments of `process` (also accepted with no subcommand).
///
/// The source and the target are given as `--source`/`--target` (or `SOURCE_PATH`/
/// `TARGET_PATH`), or as two positional arguments, `SOURCE_URI TARGET_DIR`: the form
/// KServe runs a storage initializer with (a `ClusterStorageContainer`'s container gets the
/// InferenceService's storage URI and `/mnt/models`). Positional arguments win over the
/// flags and the environment (a ClusterStorageContainer may set SOURCE_PATH for other uses).
#[derive(Debug, Clone, Args)]
pub struct ProcessArgs<A: Args> {
    /// The artifact: a file or a folder, or an object: s3://BUCKET/KEY or https://HOST/PATH
    /// (endpoint and credentials from AWS_* or KServe's S3_* variables).
    #[arg(long, env = "SOURCE_PATH")]
    pub source: Option<PathBuf>,
    /// Storage-initializer form: the artifact (as --source), then TARGET_DIR.
    #[arg(value_name = "SOURCE_URI")]
    pub source_uri: Option<PathBuf>,
    /// Storage-initializer form: where the model directory is written (as --target).
    #[arg(value_name = "TARGET_DIR", requires = "source_uri")]
    pub target_dir: Option<PathBuf>,
    /// Where the normalized model directory is written: absent, or an empty directory.
    #[arg(long, env = "TARGET_PATH")]
    pub target: Option<PathBuf>,
    /// Replace the content of a non-empty target.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub extra: A,
}

/// Arguments of `inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs<A: Args> {
    /// The artifact (defaults to SOURCE_PATH).
    #[arg(env = "SOURCE_PATH")]
    pub source: Option<PathBuf>,
    /// Print the description as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub extra: A,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command<A: Args> {
    /// Process SOURCE into a normalized model directory at TARGET (the default).
    Process(ProcessArgs<A>),
    /// Read and validate SOURCE and print what it is, writing nothing.
    Inspect(InspectArgs<A>),
    /// Check a model directory against its model.json (sizes and sha256 of every file).
    Verify {
        /// The model directory (defaults to TARGET_PATH).
        #[arg(env = "TARGET_PATH")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Parser)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli<A: Args> {
    #[command(subcommand)]
    pub command: Option<Command<A>>,
    #[command(flatten)]
    pub process: ProcessArgs<A>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Sets up tracing to stderr in the chosen format; `RUST_LOG` sets the level.
pub fn init_logging(format: LogFormat) {
    init_logging_to(format, std::io::stderr)
}

/// [`init_logging`] with the lines going to `writer` (one that ends on stderr: colours
/// follow whether stderr is a terminal).
pub fn init_logging_to<W>(format: LogFormat, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Prints an error and its whole chain of causes.
pub fn report(err: &(dyn std::error::Error + 'static), format: LogFormat) {
    let mut chain = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        chain.push_str(&format!("\n  caused by: {c}"));
        cur = c.source();
    }
    match format {
        LogFormat::Text => eprintln!("error: {chain}"),
        LogFormat::Json => tracing::error!(error = %chain, "failed"),
    }
}

/// The whole `main` of a processor binary.
pub fn main<P: Processor>() -> ExitCode {
    let cmd = Cli::<P::Args>::command()
        .name(P::NAME)
        .bin_name(P::NAME)
        .version(P::VERSION)
        .about(P::ABOUT)
        .after_help(EXIT_CODES_HELP);
    let matches = cmd.get_matches();
    let cli = match Cli::<P::Args>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    init_logging(cli.log.log_format);
    match run::<P>(cli.command, cli.process) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, cli.log.log_format);
            ExitCode::from(e.class().exit_code())
        }
    }
}

/// Exit codes, as printed by `--help`.
pub const EXIT_CODES_HELP: &str = "Exit codes:\n  0  success\n  2  usage or configuration error (bad flags, no source, non-empty target)\n  3  invalid, unsafe or unsupported artifact (or a model directory that fails verify)\n  4  I/O or environment error (unreadable source, full disk, read-only target)";

/// Runs one command; the error is the processor's own enum.
pub fn run<P: Processor>(
    command: Option<Command<P::Args>>,
    default: ProcessArgs<P::Args>,
) -> Result<(), P::Error> {
    match command.unwrap_or(Command::Process(default)) {
        Command::Process(a) => {
            let (source, target) = source_and_target(&a)?;
            let ctx = Context {
                read: ReadOptions {
                    limits: a.limits.limits(),
                    skip_noise: false,
                },
                args: a.extra,
            };
            let manifest = process::<P>(&source, &target, a.overwrite, &ctx)?;
            print!(
                "{}",
                crate::processor::ModelDescription::from(&manifest).render_text()
            );
            println!("written: {}", target.join(crate::MANIFEST_NAME).display());
            Ok(())
        }
        Command::Inspect(a) => {
            let source = a
                .source
                .ok_or_else(|| Error::Usage("no source: pass SOURCE or set SOURCE_PATH".into()))?;
            let ctx = Context {
                read: ReadOptions {
                    limits: a.limits.limits(),
                    skip_noise: false,
                },
                args: a.extra,
            };
            let d = P::inspect(&source, &ctx)?;
            if a.json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&d).expect("description serializes")
                ));
            } else {
                out(&d.render_text());
            }
            Ok(())
        }
        Command::Verify { dir } => {
            let dir = dir
                .ok_or_else(|| Error::Usage("no directory: pass DIR or set TARGET_PATH".into()))?;
            let m = verify(&dir)?;
            out(&format!(
                "ok: {} files verified in {} (model type {}, contract version {})\n",
                m.files.len(),
                dir.display(),
                m.model_type,
                m.contract_version
            ));
            Ok(())
        }
    }
}

/// The source and the target of `process`: the positional pair (storage-initializer form)
/// or `--source`/`--target` (`SOURCE_PATH`/`TARGET_PATH`).
fn source_and_target<A: Args>(a: &ProcessArgs<A>) -> Result<(PathBuf, PathBuf), Error> {
    match (&a.source_uri, &a.target_dir) {
        (Some(s), Some(t)) => Ok((s.clone(), t.clone())),
        (Some(_), None) => Err(Error::Usage(
            "no target: the storage-initializer form is PROCESSOR SOURCE_URI TARGET_DIR".into(),
        )),
        (None, _) => {
            let source = a.source.clone().ok_or_else(|| {
                Error::Usage(
                    "no source: pass --source PATH (or SOURCE_URI TARGET_DIR) or set SOURCE_PATH"
                        .into(),
                )
            })?;
            let target = a.target.clone().ok_or_else(|| {
                Error::Usage(
                    "no target: pass --target PATH (or SOURCE_URI TARGET_DIR) or set TARGET_PATH"
                        .into(),
                )
            })?;
            Ok((source, target))
        }
    }
}

/// The catalog is the source of names: a processor may only produce what it lists.
fn check_catalog<P: Processor>(model_type: &str) -> crate::Result<()> {
    let ok = crate::catalog::catalog()
        .processor(P::NAME)
        .is_some_and(|e| {
            e.artifact_type == P::ARTIFACT_TYPE && e.model_types.iter().any(|m| m == model_type)
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Catalog(format!(
            "processor {} ({}) producing model type {model_type:?} is not in catalog.json",
            P::NAME,
            P::ARTIFACT_TYPE
        )))
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes()).and_then(|_| o.flush());
}

/// Processes `source` into `target`: staging, the processor's work, manifest, publish.
pub fn process<P: Processor>(
    source: &Path,
    target: &Path,
    overwrite: bool,
    ctx: &Context<P::Args>,
) -> Result<Manifest, P::Error> {
    let start = Instant::now();
    tracing::info!(processor = P::NAME, version = P::VERSION, source = %source.display(), target = %target.display(), "processing");
    // Fail on a missing source before touching the target.
    crate::source::detect(source)?;
    let mut staging = Staging::prepare(target, overwrite)?;
    let d = P::process(source, &mut staging, ctx)?;
    check_catalog::<P>(&d.model_type)?;
    let manifest = Manifest {
        contract_version: CONTRACT_VERSION,
        id: d.id,
        artifact_type: d.artifact_type,
        model_type: d.model_type,
        processor: crate::manifest::ProcessorInfo {
            name: P::NAME.to_string(),
            version: P::VERSION.to_string(),
        },
        source: d.source,
        payload: d.payload,
        schema_known: d.schema_known,
        input_schema: d.input_schema,
        output_schema: d.output_schema,
        capabilities: d.capabilities,
        metadata: d.metadata,
        files: Vec::new(),
    };
    let manifest = staging.publish(manifest)?;
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        files = manifest.files.len(),
        bytes,
        seconds = (secs * 1000.0).round() / 1000.0,
        mb_per_s = (bytes as f64 / 1e6 / secs.max(1e-9) * 10.0).round() / 10.0,
        model_type = %manifest.model_type,
        "published model"
    );
    Ok(manifest)
}

impl From<&Manifest> for crate::processor::ModelDescription {
    fn from(m: &Manifest) -> Self {
        crate::processor::ModelDescription {
            id: m.id.clone(),
            artifact_type: m.artifact_type.clone(),
            model_type: m.model_type.clone(),
            source: m.source.clone(),
            payload: m.payload.clone(),
            schema_known: m.schema_known,
            input_schema: m.input_schema.clone(),
            output_schema: m.output_schema.clone(),
            capabilities: m.capabilities.clone(),
            metadata: m.metadata.clone(),
        }
    }
}
