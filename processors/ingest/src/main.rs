//! `artifact-tool`: one entry point for local debugging of any upload.

use std::path::PathBuf;
use std::process::ExitCode;

use artifact_core::cli::{init_logging, report, LimitArgs, LogArgs};
use artifact_core::{Classify, ReadOptions};
use artifact_ingest::{compositions, detect, experiment_metadata, process, IngestError};
use clap::{Parser, Subcommand};

/// Detect, inspect and process any model upload (H2O-3 MOJO, Driverless AI MOJO pipeline,
/// MLflow model), and list the compositions (processor, model type, runtime) that can
/// deploy it. The per-type processor binaries do the same work inside the images.
#[derive(Debug, Parser)]
#[command(name = "artifact-tool", version, after_help = artifact_core::cli::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Clone, clap::Args)]
struct Upload {
    /// The upload: a file or a folder.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// Flags for the processor that takes the upload, after `--` (e.g. `-- --allow-no-signature`).
    #[arg(last = true)]
    processor_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Say which artifact type an upload is, from its content.
    Detect(Upload),
    /// Detect, then print the summary: type, schema and format metadata.
    Inspect(Upload),
    /// Print the experiment metadata H2O MLOps would store for the upload (JSON).
    Metadata(Upload),
    /// List the compositions that can deploy the upload (or all of them, without PATH).
    Compositions {
        /// The upload; without it, every composition in the catalog.
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Detect, then process the upload with the right processor into TARGET.
    Process {
        #[command(flatten)]
        upload: Upload,
        /// The model directory to write.
        #[arg(long, env = "TARGET_PATH")]
        target: PathBuf,
        /// Replace the content of a non-empty target.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print the catalog (catalog.json) this build was made with.
    Catalog,
}

fn read_options(l: &LimitArgs) -> ReadOptions {
    ReadOptions {
        limits: l.limits(),
        skip_noise: false,
    }
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializes"));
}

fn run(cmd: Cmd) -> Result<(), IngestError> {
    match cmd {
        Cmd::Detect(u) => {
            let d = detect(&u.path, &read_options(&u.limits), &u.processor_args)?;
            if u.json {
                print_json(&serde_json::json!({
                    "artifact_type": d.artifact_type,
                    "processor": d.processor,
                    "model_type": d.description.model_type,
                    "evidence": d.evidence,
                    "wraps": d.wraps,
                    "warnings": d.warnings,
                }));
            } else {
                println!("{}", d.artifact_type);
                println!("  processor: {}", d.processor);
                println!("  evidence:  {}", d.evidence);
                for w in &d.warnings {
                    println!("  warning:   {w}");
                }
                if let Some(w) = &d.wraps {
                    println!(
                        "  wraps:     {} at {}{}",
                        w.artifact_type,
                        w.path,
                        w.flavor
                            .as_ref()
                            .map(|f| format!(" (flavor {f})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Cmd::Inspect(u) => {
            let d = detect(&u.path, &read_options(&u.limits), &u.processor_args)?;
            if u.json {
                print_json(&d);
            } else {
                print!("{}", d.description.render_text());
                if let Some(w) = &d.wraps {
                    println!("wraps:         {} at {}", w.artifact_type, w.path);
                }
                println!("compositions:");
                for c in compositions(&d) {
                    println!(
                        "  {} -> {} -> {} (runtime {}, image {})",
                        c.deployable_artifact_type,
                        c.artifact_processor,
                        c.model_type,
                        c.runtime,
                        c.runtime_image
                    );
                }
            }
        }
        Cmd::Metadata(u) => {
            let d = detect(&u.path, &read_options(&u.limits), &u.processor_args)?;
            print_json(&experiment_metadata(&d.description));
        }
        Cmd::Compositions { path, json } => {
            let list = match path {
                Some(p) => compositions(&detect(&p, &ReadOptions::default(), &[])?),
                None => artifact_core::catalog::catalog().compositions(None),
            };
            if json {
                print_json(&list);
            } else if list.is_empty() {
                println!("no runtime in this toolkit serves it");
            } else {
                println!(
                    "{:<20} {:<20} {:<20} {:<18} {:<26} runtime image",
                    "artifact type", "deployable type", "processor", "model type", "runtime"
                );
                for c in list {
                    println!(
                        "{:<20} {:<20} {:<20} {:<18} {:<26} {}",
                        c.artifact_type,
                        c.deployable_artifact_type,
                        c.artifact_processor,
                        c.model_type,
                        c.runtime,
                        c.runtime_image
                    );
                }
            }
        }
        Cmd::Process {
            upload,
            target,
            overwrite,
        } => {
            let read = read_options(&upload.limits);
            let d = detect(&upload.path, &read, &upload.processor_args)?;
            let kind = d.kind.expect("detect sets the kind");
            let m = process(
                kind,
                &upload.path,
                &target,
                overwrite,
                &read,
                &upload.processor_args,
            )?;
            println!(
                "{} -> {} ({} files) written to {}",
                d.artifact_type,
                m.model_type,
                m.files.len(),
                target.display()
            );
        }
        Cmd::Catalog => print!("{}", artifact_core::catalog::CATALOG_JSON),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, cli.log.log_format);
            ExitCode::from(e.class().exit_code())
        }
    }
}
