//! The command line: `shim-load load ...` and `shim-load abuse ...`, their flags, the
//! printed and JSON reports, and the exit codes (0 all good, 1 a check failed, 2 usage,
//! 3 the server could not be used).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::abuse::{self, AbuseConfig};
use crate::authabuse::{self, AuthAbuseConfig};
use crate::error::{Error, Result};
use crate::load::{self, LoadConfig, LoadReport};

/// Load and abuse client for the runtime shim's scoring API (loopback only).
#[derive(Debug, Parser)]
#[command(
    name = "shim-load",
    version,
    after_help = "Exit codes: 0 every check passed, 1 a check failed (an error under load, a \
                  disallowed answer under abuse, a failed health check, a dead server), 2 \
                  usage, 3 the server could not be used (unreachable, bad set-up answers)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keep-alive load on /model/score (or /v2/models/{id}/infer with --protocol v2);
    /// prints requests/s and latency percentiles.
    Load(LoadArgs),
    /// Malformed requests; checks every answer is an allowed 4xx and the server survives.
    Abuse(AbuseArgs),
    /// Writes the /model/score body `load` would send to standard output (for other load
    /// tools, e.g. wrk).
    Body(BodyArgs),
    /// Attacks on the endpoint security (wrong and forged credentials, malformed and huge
    /// Authorization headers); none may be let in or get a 5xx, valid ones must pass.
    AuthAbuse(AuthAbuseArgs),
    /// Prints the JWKS of the test issuer (testdata/auth's public keys), for a shim's
    /// OIDC_JWKS_FILE in tests and benchmarks.
    TestJwks,
    /// Prints a token of the test issuer (testdata/auth's RSA key, RS256), valid for
    /// --ttl seconds, for --bearer in benchmarks.
    TestToken(TestTokenArgs),
}

#[derive(Debug, Args)]
pub struct TestTokenArgs {
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
    #[arg(long, default_value = testkit::tokens::ISSUER)]
    pub issuer: String,
    #[arg(long, default_value = testkit::tokens::AUDIENCE)]
    pub audience: String,
}

#[derive(Debug, Args)]
pub struct AuthAbuseArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10_000)]
    pub requests: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// A passphrase the shim accepts (plain or hashed there); repeat for several.
    #[arg(long = "passphrase", required = true)]
    pub passphrases: Vec<String>,
    /// Text the shim stores (e.g. its SCORING_PASSPHRASE_HASH hashes), sent as a
    /// credential that must fail; repeat for several.
    #[arg(long = "stored")]
    pub stored: Vec<String>,
    /// The OIDC issuer the shim accepts tokens of (signed with testdata/auth's keys);
    /// without it no token case is sent.
    #[arg(long)]
    pub issuer: Option<String>,
    #[arg(long, default_value = testkit::tokens::AUDIENCE)]
    pub audience: String,
    /// The /model/score body's row: the first row of this CSV (header: the fields).
    #[arg(long)]
    pub csv: PathBuf,
}

#[derive(Debug, Args)]
pub struct BodyArgs {
    /// The shim's base URL (its sample row is used unless --csv is given).
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value_t = 1)]
    pub rows: usize,
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Common {
    /// The shim's base URL, on a loopback address (http://127.0.0.1:PORT).
    #[arg(long)]
    pub url: String,
    /// Client threads (the server on the same machine needs the other cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Longest wait for one answer (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    /// Rows per request.
    #[arg(long, default_value_t = 1)]
    pub rows: usize,
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Measured time (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time under load before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Rows from this CSV (header: the fields) instead of the model's sample row.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// At most this many measured requests (bounds the samples kept: 8 bytes each).
    #[arg(long, default_value_t = 20_000_000)]
    pub max_requests: u64,
    /// Print the table header before the row.
    #[arg(long)]
    pub header: bool,
    /// Send `Authorization: Bearer <this>` with every request (a passphrase or token of
    /// a shim with endpoint security).
    #[arg(long, env = "SHIM_LOAD_BEARER", hide_env_values = true)]
    pub bearer: Option<String>,
    /// The API scored through: mlops (POST /model/score) or v2 (the same rows as JSON
    /// tensors to POST /v2/models/{id}/infer, the Open Inference Protocol).
    #[arg(long, value_enum, default_value = "mlops")]
    pub protocol: load::Protocol,
    /// Send this file as every request's body, as it is (any API: e.g. MLflow's
    /// `{"dataframe_split": ...}` with --path /invocations); --rows says how many rows it
    /// holds, which the answers (`score`, v2 `outputs` or MLflow `predictions`) are
    /// checked for.
    #[arg(long, conflicts_with = "csv")]
    pub body: Option<PathBuf>,
    /// Post to this path (default: /model/score, or the v2 infer route).
    #[arg(long)]
    pub path: Option<String>,
    /// The requests' Content-Type.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
}

#[derive(Debug, Args)]
pub struct AbuseArgs {
    #[command(flatten)]
    pub common: Common,
    /// Cases in all (slow and huge ones included).
    #[arg(long, default_value_t = 10_000)]
    pub requests: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Connections sending the ordinary cases at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Bodies over the limit (and large ones under it), streamed.
    #[arg(long, default_value_t = 6)]
    pub huge: u64,
    /// Slow clients (byte by byte, stalls), run alongside the rest.
    #[arg(long, default_value_t = 16)]
    pub slow: u64,
    #[arg(long, default_value_t = 8)]
    pub slow_concurrency: usize,
    /// The server's MAX_BODY_BYTES (K, M, G suffixes).
    #[arg(long, default_value = "64M", value_parser = artifact_core::cli::parse_size)]
    pub body_limit: u64,
    /// The longer of the server's HEADER_TIMEOUT_SECS and REQUEST_TIMEOUT_SECS: slow
    /// clients then stall 1–2 s longer than it, and each stall must be answered 408
    /// (without it, stalls last 0.8–2 s and the client may give up first).
    #[arg(long, value_parser = parse_duration)]
    pub server_timeout: Option<Duration>,
    /// A readiness and scoring check after every this many cases.
    #[arg(long, default_value_t = 500)]
    pub check_every: u64,
    /// The whole run fails if it takes longer.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub max_duration: Duration,
    /// The server's process id: checked to be alive at the end.
    #[arg(long)]
    pub pid: Option<u32>,
}

/// `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// The socket address of `http://HOST:PORT[/]`, refused unless HOST is loopback.
pub fn parse_url(url: &str) -> Result<SocketAddr> {
    let bad = |why: &str| Error::Usage(format!("--url {url:?}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("expected http://127.0.0.1:PORT"))?;
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, port) = hostport.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let ip: IpAddr = match host.trim_start_matches('[').trim_end_matches(']') {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => h
            .parse()
            .map_err(|_| bad("the host must be an IP address or localhost"))?,
    };
    if !ip.is_loopback() {
        return Err(bad("only loopback addresses are allowed"));
    }
    Ok(SocketAddr::new(ip, port))
}

/// One thread: a current-thread runtime (no cross-thread wake-ups, the cheapest client);
/// more: a multi-thread one.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let mut b = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))
}

fn write_json<T: serde::Serialize>(path: &Option<PathBuf>, value: &T) -> Result<()> {
    if let Some(p) = path {
        let text = serde_json::to_string_pretty(value).expect("reports serialize");
        std::fs::write(p, text + "\n").map_err(|e| Error::io("write the JSON report", e))?;
    }
    Ok(())
}

fn run_load(a: &LoadArgs) -> Result<bool> {
    let cfg = LoadConfig {
        addr: parse_url(&a.common.url)?,
        rows: a.rows,
        connections: a.connections,
        duration: a.duration,
        warmup: a.warmup,
        csv: a.csv.clone(),
        timeout: a.common.timeout,
        check_every: 1000,
        max_requests: a.max_requests,
        bearer: a.bearer.clone(),
        protocol: a.protocol,
        body: a.body.clone(),
        path: a.path.clone(),
        content_type: a.content_type.clone(),
    };
    let report = runtime(a.common.threads)?.block_on(load::run(&cfg))?;
    if a.header {
        println!("{}", LoadReport::HEADER);
    }
    println!("{}", report.row());
    for (k, n) in &report.error_kinds {
        println!("  error {k}: {n}");
    }
    write_json(&a.common.json, &report)?;
    Ok(report.errors == 0)
}

fn run_body(a: &BodyArgs) -> Result<bool> {
    let cfg = LoadConfig {
        addr: parse_url(&a.url)?,
        rows: a.rows,
        connections: 1,
        duration: Duration::ZERO,
        warmup: Duration::ZERO,
        csv: a.csv.clone(),
        timeout: Duration::from_secs(10),
        check_every: 0,
        max_requests: 0,
        bearer: None,
        protocol: load::Protocol::Mlops,
        body: None,
        path: None,
        content_type: "application/json".into(),
    };
    let body = runtime(1)?.block_on(load::body(&cfg))?;
    std::io::Write::write_all(&mut std::io::stdout(), &body)
        .map_err(|e| Error::io("write the body", e))?;
    Ok(true)
}

fn run_abuse(a: &AbuseArgs) -> Result<bool> {
    let cfg = AbuseConfig {
        addr: parse_url(&a.common.url)?,
        requests: a.requests,
        seed: a.seed,
        concurrency: a.concurrency,
        huge: a.huge,
        slow: a.slow,
        slow_concurrency: a.slow_concurrency,
        body_limit: usize::try_from(a.body_limit).unwrap_or(usize::MAX),
        server_timeout: a.server_timeout,
        check_every: a.check_every,
        timeout: a.common.timeout,
        max_duration: a.max_duration,
        pid: a.pid,
    };
    let report = runtime(a.common.threads)?.block_on(abuse::run(&cfg))?;
    print!("{}", report.text());
    write_json(&a.common.json, &report)?;
    Ok(report.ok)
}

fn run_auth_abuse(a: &AuthAbuseArgs) -> Result<bool> {
    let (fields, rows) = crate::model::read_csv(&a.csv)?;
    let cfg = AuthAbuseConfig {
        addr: parse_url(&a.common.url)?,
        requests: a.requests,
        seed: a.seed,
        concurrency: a.concurrency,
        passphrases: a.passphrases.clone(),
        stored: a.stored.clone(),
        issuer: a.issuer.clone(),
        audience: a.audience.clone(),
        score_body: crate::model::score_body(&fields, &rows[..1]),
        timeout: a.common.timeout,
    };
    let report = runtime(a.common.threads)?.block_on(authabuse::run(cfg))?;
    print!("{}", report.text());
    write_json(&a.common.json, &report)?;
    Ok(report.ok)
}

/// The whole `main` of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Load(a) => run_load(a),
        Command::Abuse(a) => run_abuse(a),
        Command::Body(a) => run_body(a),
        Command::AuthAbuse(a) => run_auth_abuse(a),
        Command::TestJwks => {
            println!("{}", testkit::tokens::Keys::load().jwks());
            Ok(true)
        }
        Command::TestToken(a) => {
            let mut c = testkit::tokens::claims(a.ttl);
            c["iss"] = serde_json::json!(a.issuer);
            c["aud"] = serde_json::json!(a.audience);
            println!(
                "{}",
                testkit::tokens::token(&testkit::tokens::Keys::load().rsa, &c)
            );
            Ok(true)
        }
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("shim-load: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_loopback() {
        let cases = [
            ("v4", "http://127.0.0.1:8080", Some("127.0.0.1:8080")),
            ("path", "http://127.0.0.1:9/x", Some("127.0.0.1:9")),
            ("localhost", "http://localhost:1", Some("127.0.0.1:1")),
            ("v6", "http://[::1]:80", Some("[::1]:80")),
            ("remote", "http://10.0.0.1:80", None),
            ("name", "http://example.com:80", None),
            ("https", "https://127.0.0.1:80", None),
            ("no port", "http://127.0.0.1", None),
        ];
        for (name, url, want) in cases {
            let got = parse_url(url).ok().map(|a| a.to_string());
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("seconds", "10s", Some(10_000)),
            ("plain", "3", Some(3000)),
            ("millis", "250ms", Some(250)),
            ("minutes", "1.5m", Some(90_000)),
            ("unit", "3h", None),
            ("junk", "abc", None),
        ];
        for (name, s, want) in cases {
            let got = parse_duration(s).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{name}");
        }
    }
}
