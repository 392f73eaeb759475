//! A real S3 server for the object-storage tests: moto's `moto_server` from the venv
//! `.ci/setup-s3-venv.sh` builds (`S3_VENV`), started on a free port per test and stopped
//! when dropped; and [`Proxy`], which stands between a reader and that server to cut
//! responses short, lie about their length, or re-upload the object between two reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running `moto_server`.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    pub port: u16,
}

/// The variables a reader needs to reach `endpoint` (moto takes any credentials).
pub fn env_for(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ]
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl S3Server {
    /// Starts `moto_server` from `$S3_VENV`; `None` (with a message) when `S3_VENV` is
    /// unset. Set but broken, it panics: the tests must not pass without their server.
    pub fn start() -> Option<S3Server> {
        let Some(venv) = std::env::var_os("S3_VENV").filter(|v| !v.is_empty()) else {
            eprintln!(
                "S3_VENV is not set: skipping the object-storage tests (run `export S3_VENV=$(.ci/setup-s3-venv.sh)`)"
            );
            return None;
        };
        let bin = PathBuf::from(venv).join("bin/moto_server");
        assert!(
            bin.exists(),
            "S3_VENV is set but {} is missing",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", bin.display()));
        let server = S3Server { child, port };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if ureq::get(&format!("{}/", server.endpoint())).call().is_ok() {
                return Some(server);
            }
            assert!(
                Instant::now() < until,
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_for(&self.endpoint())
    }

    pub fn create_bucket(&self, bucket: &str) {
        put(&format!("{}/{bucket}", self.endpoint()), &[]);
    }

    /// Uploads `bytes` as `bucket/key`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        put(&format!("{}/{bucket}/{key}", self.endpoint()), bytes);
    }

    /// Uploads `bytes` as `bucket/key`, readable without credentials (ACL public-read):
    /// its plain URL is an `https://`-style source.
    pub fn put_public(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let url = format!("{}/{bucket}/{key}", self.endpoint());
        let r = ureq::put(&url)
            .header("Authorization", AUTH)
            .header("x-amz-acl", "public-read")
            .send(bytes)
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        assert!(r.status().is_success(), "PUT {url}: {}", r.status());
    }
}

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// An S3 PUT as moto takes it: it does not check signatures, but an unsigned request
/// after signed ones is refused (403), so this one names the test credentials.
fn put(url: &str, bytes: &[u8]) {
    let r = ureq::put(url)
        .header("Authorization", AUTH)
        .send(bytes)
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert!(r.status().is_success(), "PUT {url}: {}", r.status());
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a [`Proxy`] does to the responses of GETs with a body.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Sends the headers as they are (the full Content-Length), then only half the body,
    /// then closes the connection.
    CutShort,
    /// Says the body is half as long as it is (Content-Length, Content-Range kept) and
    /// sends that half: a consistent but lying response.
    Lie,
    /// Before forwarding the `n`-th GET (counted from 1), uploads these bytes over the
    /// object it asks for: the object changes between two reads.
    ReplaceBefore(usize, Arc<Vec<u8>>),
}

/// A one-request-per-connection HTTP proxy in front of an S3 server, with a [`Fault`].
/// Only GETs that ask for a range (`Range:` header) are touched, so that HEADs and the
/// readers' first look at an object pass.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    pub gets: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(upstream_port: u16, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let gets = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&gets);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let fault = fault.clone();
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream_port, &fault, &counter);
                });
            }
        });
        Proxy { port, gets }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Reads one HTTP message head (up to the blank line) and its body by Content-Length.
fn read_message(
    r: &mut BufReader<TcpStream>,
    body_wanted: bool,
) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let len = header(&lines, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; if body_wanted { len } else { 0 }];
    r.read_exact(&mut body)?;
    Ok((lines, body))
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(
    client: TcpStream,
    upstream_port: u16,
    fault: &Fault,
    gets: &AtomicUsize,
) -> std::io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut client = client;
    let (mut head, body) = read_message(&mut from_client, true)?;
    let is_get = head[0].starts_with("GET ");
    let ranged = is_get && header(&head, "range").is_some();
    if ranged {
        let n = gets.fetch_add(1, Ordering::SeqCst) + 1;
        if let Fault::ReplaceBefore(at, bytes) = fault {
            if n == *at {
                let path = head[0].split_whitespace().nth(1).unwrap_or("/");
                let path = path.split('?').next().unwrap_or(path);
                put(&format!("http://127.0.0.1:{upstream_port}{path}"), bytes);
            }
        }
    }
    // One request per connection, both ways.
    head.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    head.push("Connection: close".into());
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    upstream.write_all(format!("{}\r\n\r\n", head.join("\r\n")).as_bytes())?;
    upstream.write_all(&body)?;
    let mut from_upstream = BufReader::new(upstream);
    let (mut rhead, rbody) = read_message(&mut from_upstream, !head[0].starts_with("HEAD "))?;
    let touch = ranged && !rbody.is_empty() && !matches!(fault, Fault::ReplaceBefore(..));
    let send = if touch {
        &rbody[..rbody.len() / 2]
    } else {
        &rbody[..]
    };
    if touch && matches!(fault, Fault::Lie) {
        for l in rhead.iter_mut().skip(1) {
            if l.to_ascii_lowercase().starts_with("content-length:") {
                *l = format!("Content-Length: {}", send.len());
            }
        }
    }
    rhead.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    rhead.push("Connection: close".into());
    client.write_all(format!("{}\r\n\r\n", rhead.join("\r\n")).as_bytes())?;
    client.write_all(send)?;
    client.flush()?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Reads the object `bytes` of each faulty-server case through a [`Proxy`] with its
/// [`Fault`] (`run(env, uri, target)` is the processor under test, in the
/// storage-initializer form) and holds the outcome to the rule "an error, never a model":
/// the run fails, its message says the case's text, and no `model.json` is written.
/// `also(name, output, uri, target)` adds a caller's own checks. Each case's object is
/// `models/case-<i>/<file>` (the bucket `models` must exist).
pub fn faulty_reads_are_errors<R, A>(
    s3: &S3Server,
    file: &str,
    bytes: &[u8],
    cases: Vec<(&str, Fault, &str)>,
    dir: &std::path::Path,
    run: R,
    also: A,
) where
    R: Fn(&[(&'static str, String)], &str, &std::path::Path) -> std::process::Output,
    A: Fn(&str, &std::process::Output, &str, &std::path::Path),
{
    for (i, (name, fault, says)) in cases.into_iter().enumerate() {
        let key = format!("case-{i}/{file}");
        s3.put("models", &key, bytes);
        let proxy = Proxy::start(s3.port, fault);
        let target = dir.join(format!("t{i}"));
        let uri = format!("s3://models/{key}");
        let o = run(&env_for(&proxy.endpoint()), &uri, &target);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{name}: accepted:\n{err}");
        assert!(
            err.contains(says),
            "{name}: error does not say {says:?}:\n{err}"
        );
        assert!(
            !target.join("model.json").exists(),
            "{name}: model.json written"
        );
        also(name, &o, &uri, &target);
        println!(
            "{name}: exit {:?}: {}",
            o.status.code(),
            err.lines().last().unwrap_or("")
        );
    }
}
