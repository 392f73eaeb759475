//! Object-storage sources: `s3://bucket/key` and `https://host/path`, read with the Apache
//! Arrow project's `object_store` straight into the shared walk (no local copy).
//!
//! The walk reads every source through [`ByteSource`]: random reads (`read_at`: zip end
//! records, central directory, local headers) and forward streams of a byte range (`range`:
//! zip entries, a whole tar.gz, the source's sha256). For a local file those are `pread`s;
//! for an object they are ranged GETs: random reads (end records, central directory, local
//! headers) go through a cache of 64 KiB pages, short ranges (the many small entries of a
//! model) through a cache of 4 MiB blocks, each fetched by one GET shared by the threads;
//! each longer range is one GET whose body is pulled as it is consumed, and the zip
//! workers each hold their own, so several are in flight.
//!
//! An object is pinned when it is opened: its size and ETag (from a HEAD) are checked on
//! every response, and every GET carries `If-Match` with that ETag (or, when the server
//! gives none, `If-Unmodified-Since` with its Last-Modified). A response that is short,
//! long, for another range, or from another version of the object is an error, never data.
//!
//! Endpoint and credentials come from the environment: the standard `AWS_*` variables
//! (`AWS_ENDPOINT_URL` for S3-compatible stores, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_DEFAULT_REGION`/`AWS_REGION`, ...)
//! and KServe's S3 variables (`S3_ENDPOINT`, `S3_USE_HTTPS`, `S3_VERIFY_SSL`), see
//! [`S3Env`].

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

/// Whether a source names an object in object storage rather than a local path.
pub fn is_remote(path: &Path) -> bool {
    let s = path.to_string_lossy();
    ["s3://", "s3a://", "https://", "http://"]
        .iter()
        .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p))
}

/// Random reads and forward streams of a source's bytes: a local file or a remote object.
pub(crate) trait ByteSource: Sync {
    /// Reads at most `buf.len()` bytes at `at` (0 at the end).
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize>;
    /// The bytes `start..end`, read forward (a stream that ends early is an error of the
    /// reader for a remote object; for a local file it simply ends, as `pread` does).
    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>>;
}

impl ByteSource for std::fs::File {
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, at)
    }

    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        struct FileRange<'f> {
            file: &'f std::fs::File,
            pos: u64,
            end: u64,
        }
        impl Read for FileRange<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let want = out
                    .len()
                    .min(self.end.saturating_sub(self.pos).min(usize::MAX as u64) as usize);
                if want == 0 {
                    return Ok(0);
                }
                let n = std::os::unix::fs::FileExt::read_at(self.file, &mut out[..want], self.pos)?;
                self.pos += n as u64;
                Ok(n)
            }
        }
        Ok(Box::new(FileRange {
            file: self,
            pos: start,
            end,
        }))
    }
}

/// A fault of the object store (refused, unreachable, short or lying response): carried
/// inside `io::Error`s so that the walk reports it as an I/O error of the source, not as a
/// fault of the artifact.
#[derive(Debug)]
pub(crate) struct RemoteFault(pub String);

impl std::fmt::Display for RemoteFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RemoteFault {}

fn fault(msg: impl Into<String>) -> io::Error {
    io::Error::other(RemoteFault(msg.into()))
}

/// Whether an I/O error came from the object store (see [`RemoteFault`]).
pub(crate) fn remote_fault(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<RemoteFault>())
        .map(|f| f.0.clone())
}

/// The object-store settings read from the environment.
///
/// | variable | meaning |
/// |----------|---------|
/// | `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`) | endpoint of an S3-compatible store, with its scheme |
/// | `S3_ENDPOINT` | KServe's: the endpoint host\[:port\], scheme from `S3_USE_HTTPS` (default 1) |
/// | `S3_USE_HTTPS` | KServe's: `0` for plain HTTP to `S3_ENDPOINT` |
/// | `S3_VERIFY_SSL` | KServe's: `0` accepts any certificate (self-signed in-cluster stores) |
/// | `AWS_DEFAULT_REGION` / `AWS_REGION` | region (default `us-east-1`) |
/// | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | credentials; none: the instance's or the pod's role |
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Env {
    pub endpoint: Option<String>,
    pub verify_tls: bool,
}

impl S3Env {
    /// Reads the variables through `get` (the process environment in [`S3Env::from_env`]).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> S3Env {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let off = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no")
            })
        };
        let endpoint = get("AWS_ENDPOINT_URL")
            .or_else(|| get("AWS_ENDPOINT"))
            .or_else(|| {
                get("S3_ENDPOINT").map(|e| {
                    if e.contains("://") {
                        e
                    } else if off(get("S3_USE_HTTPS")) {
                        format!("http://{e}")
                    } else {
                        format!("https://{e}")
                    }
                })
            });
        S3Env {
            endpoint,
            verify_tls: !off(get("S3_VERIFY_SSL")),
        }
    }

    pub fn from_env() -> S3Env {
        S3Env::from_vars(|k| std::env::var(k).ok())
    }
}

/// Retries of a failed request (object_store backs off between them); a response cut
/// short is not retried but reported.
const MAX_RETRIES: usize = 2;
/// Block size of the cache behind short ranges: one GET fetches a block, so the data of
/// many small entries costs one request, not one each.
const BLOCK: u64 = 4 << 20;
/// Blocks kept by that cache (memory: `BLOCK * BLOCKS`).
const BLOCKS: usize = 8;
/// Page size of the cache behind random reads (end records, central directory, local
/// headers): small, so that checking the header of every large entry does not fetch
/// megabytes of its data.
const PAGE: u64 = 64 << 10;
/// Pages kept by that cache.
const PAGES: usize = 32;
/// One block being fetched or fetched (several threads wanting it wait for one GET).
type Slot = Arc<std::sync::OnceLock<Result<Bytes, String>>>;

/// An object opened for reading, pinned to the version its HEAD saw.
pub(crate) struct Remote {
    uri: String,
    store: Arc<dyn ObjectStore>,
    key: object_store::path::Path,
    rt: tokio::runtime::Runtime,
    size: u64,
    etag: Option<String>,
    /// The metadata the HEAD returned (its Last-Modified guards stores without ETags).
    meta: object_store::ObjectMeta,
    blocks: Cache,
    pages: Cache,
}

/// Fixed-size pieces of the object, fetched whole, the most recent kept.
struct Cache {
    size: u64,
    keep: usize,
    slots: Mutex<VecDeque<(u64, Slot)>>,
}

impl Cache {
    fn new(size: u64, keep: usize) -> Cache {
        Cache {
            size,
            keep,
            slots: Mutex::new(VecDeque::new()),
        }
    }
}

/// What went wrong opening an object, for [`crate::Error`].
#[derive(Debug)]
pub(crate) enum OpenError {
    NotFound,
    Usage(String),
    Io(io::Error),
}

impl Remote {
    /// Builds the store for `uri` from the environment and reads the object's metadata.
    pub(crate) fn open(uri: &Path) -> Result<Remote, OpenError> {
        let uri = uri.to_string_lossy().into_owned();
        let (store, key) = build_store(&uri, &S3Env::from_env()).map_err(OpenError::Usage)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()
            .map_err(OpenError::Io)?;
        let meta = rt.block_on(store.head(&key)).map_err(|e| match e {
            object_store::Error::NotFound { .. } => OpenError::NotFound,
            e => OpenError::Io(fault(format!("HEAD {uri}: {e}"))),
        })?;
        tracing::debug!(source = %uri, size = meta.size, etag = ?meta.e_tag, "opened object");
        Ok(Remote {
            size: meta.size,
            etag: meta.e_tag.clone(),
            meta,
            uri,
            store,
            key,
            rt,
            blocks: Cache::new(BLOCK, BLOCKS),
            pages: Cache::new(PAGE, PAGES),
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.size
    }

    /// Starts a GET of `r`, conditional on the version opened, and checks what the
    /// response says it holds.
    fn get(&self, r: Range<u64>) -> io::Result<BoxStream<'static, object_store::Result<Bytes>>> {
        let mut opts = GetOptions {
            range: Some(GetRange::Bounded(r.clone())),
            ..GetOptions::default()
        };
        match &self.etag {
            Some(t) => opts.if_match = Some(t.clone()),
            None => opts.if_unmodified_since = Some(self.meta.last_modified),
        }
        let res = self
            .rt
            .block_on(self.store.get_opts(&self.key, opts))
            .map_err(|e| match e {
                object_store::Error::Precondition { .. } => fault(format!(
                    "{}: the object changed while it was read (it no longer matches ETag {}): nothing was published; retry once the upload is complete",
                    self.uri,
                    self.etag.as_deref().unwrap_or("of the first read")
                )),
                object_store::Error::NotFound { .. } => fault(format!(
                    "{}: the object was deleted while it was read",
                    self.uri
                )),
                e => fault(format!("GET {} bytes {}..{}: {e}", self.uri, r.start, r.end)),
            })?;
        if res.meta.size != self.size || (self.etag.is_some() && res.meta.e_tag != self.etag) {
            return Err(fault(format!(
                "{}: the object changed while it was read (size {} ETag {:?}, first seen as size {} ETag {:?})",
                self.uri, res.meta.size, res.meta.e_tag, self.size, self.etag
            )));
        }
        if res.range != r {
            return Err(fault(format!(
                "{}: asked for bytes {}..{} but the response holds bytes {}..{}",
                self.uri, r.start, r.end, res.range.start, res.range.end
            )));
        }
        Ok(res.into_stream())
    }

    /// Piece `index` of `cache` (fetched whole, by one GET whoever asks for it meanwhile).
    fn piece(&self, cache: &Cache, index: u64) -> io::Result<Bytes> {
        let slot = {
            let mut slots = cache.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.iter().find(|(i, _)| *i == index) {
                Some((_, slot)) => Arc::clone(slot),
                None => {
                    if slots.len() >= cache.keep {
                        slots.pop_front();
                    }
                    let slot: Slot = Arc::default();
                    slots.push_back((index, Arc::clone(&slot)));
                    slot
                }
            }
        };
        let fetched = slot.get_or_init(|| {
            let start = index * cache.size;
            let end = (start + cache.size).min(self.size);
            let mut buf = Vec::with_capacity((end - start) as usize);
            self.stream(start, end)
                .read_to_end(&mut buf)
                .map(|_| Bytes::from(buf))
                .map_err(|e| remote_fault(&e).unwrap_or_else(|| e.to_string()))
        });
        fetched.clone().map_err(fault)
    }

    /// Reads at `at` from the pieces of `cache`.
    fn read_cached(&self, cache: &Cache, buf: &mut [u8], at: u64) -> io::Result<usize> {
        if at >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let piece = self.piece(cache, at / cache.size)?;
        let off = (at % cache.size) as usize;
        let n = buf.len().min(piece.len().saturating_sub(off));
        buf[..n].copy_from_slice(&piece[off..off + n]);
        Ok(n)
    }

    /// The bytes `start..end` as the body of one GET.
    fn stream(&self, start: u64, end: u64) -> RemoteRange<'_> {
        RemoteRange {
            remote: self,
            range: start..end,
            stream: None,
            cur: Bytes::new(),
            got: 0,
        }
    }
}

/// A short range read through the block cache.
struct Blocks<'r> {
    remote: &'r Remote,
    pos: u64,
    end: u64,
}

impl Read for Blocks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = out
            .len()
            .min((self.end - self.pos).min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self
            .remote
            .read_cached(&self.remote.blocks, &mut out[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ByteSource for Remote {
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        self.read_cached(&self.pages, buf, at)
    }

    fn range(&self, start: u64, end: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let end = end.min(self.size);
        if start >= end {
            return Ok(Box::new(io::empty()));
        }
        if end - start <= BLOCK / 4 {
            // Small entries (and the headers around them) come from the cached blocks.
            return Ok(Box::new(Blocks {
                remote: self,
                pos: start,
                end,
            }));
        }
        Ok(Box::new(self.stream(start, end)))
    }
}

/// The body of one ranged GET, pulled as it is read; started on the first read. Exactly
/// `range` bytes or an error.
struct RemoteRange<'r> {
    remote: &'r Remote,
    range: Range<u64>,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    cur: Bytes,
    got: u64,
}

impl Read for RemoteRange<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = self.range.end - self.range.start;
        while self.cur.is_empty() {
            if self.got == want && self.stream.is_none() {
                return Ok(0);
            }
            if self.stream.is_none() {
                self.stream = Some(self.remote.get(self.range.clone())?);
            }
            let stream = self.stream.as_mut().expect("started above");
            match self.remote.rt.block_on(stream.next()) {
                Some(Ok(b)) => {
                    self.got += b.len() as u64;
                    if self.got > want {
                        return Err(fault(format!(
                            "{}: the response for bytes {}..{} is longer than asked ({} bytes or more, {want} expected)",
                            self.remote.uri, self.range.start, self.range.end, self.got
                        )));
                    }
                    self.cur = b;
                }
                Some(Err(e)) => {
                    return Err(fault(format!(
                        "{}: the response for bytes {}..{} failed after {} of {want} bytes: {e}",
                        self.remote.uri, self.range.start, self.range.end, self.got
                    )))
                }
                None if self.got < want => {
                    return Err(fault(format!(
                    "{}: the response for bytes {}..{} ended after {} of {want} bytes (cut short)",
                    self.remote.uri, self.range.start, self.range.end, self.got
                )))
                }
                None => {
                    self.stream = None;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// The store and the object key of a URI.
fn build_store(
    uri: &str,
    env: &S3Env,
) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path), String> {
    // rustls needs a process-wide crypto provider (ring); installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = object_store::RetryConfig {
        max_retries: MAX_RETRIES,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let mut client =
        object_store::ClientOptions::new().with_allow_invalid_certificates(!env.verify_tls);
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri}: not a URI"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" => {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
                return Err(format!(
                    "{uri}: expected s3://BUCKET/KEY naming one object (a zip, tar or tar.gz; prefixes are not read)"
                ));
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry);
            if std::env::var_os("AWS_DEFAULT_REGION").is_none()
                && std::env::var_os("AWS_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
            if let Some(e) = &env.endpoint {
                if e.starts_with("http://") {
                    client = client.with_allow_http(true);
                }
                b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
            }
            let store = b
                .with_client_options(client)
                .build()
                .map_err(|e| format!("{uri}: S3 configuration: {e}"))?;
            let key = object_store::path::Path::parse(key)
                .map_err(|e| format!("{uri}: invalid object key: {e}"))?;
            Ok((Arc::new(store), key))
        }
        "https" | "http" => {
            let (host, key) = rest.split_once('/').unwrap_or((rest, ""));
            if key.is_empty() {
                return Err(format!("{uri}: expected a path naming one file"));
            }
            if scheme.eq_ignore_ascii_case("http") {
                client = client.with_allow_http(true);
            }
            let store = object_store::http::HttpBuilder::new()
                .with_url(format!("{scheme}://{host}"))
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(|e| format!("{uri}: HTTP configuration: {e}"))?;
            let key = object_store::path::Path::parse(key)
                .map_err(|e| format!("{uri}: invalid path: {e}"))?;
            Ok((Arc::new(store), key))
        }
        _ => Err(format!("{uri}: unsupported scheme (s3:// or https://)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_the_environment() {
        /// (case, variables, endpoint, verify TLS)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>, bool);
        let cases: &[Case] = &[
            ("nothing", &[], None, true),
            (
                "aws endpoint url",
                &[("AWS_ENDPOINT_URL", "http://minio:9000")],
                Some("http://minio:9000"),
                true,
            ),
            (
                "kserve https default",
                &[("S3_ENDPOINT", "minio:9000")],
                Some("https://minio:9000"),
                true,
            ),
            (
                "kserve http",
                &[("S3_ENDPOINT", "minio:9000"), ("S3_USE_HTTPS", "0")],
                Some("http://minio:9000"),
                true,
            ),
            (
                "kserve no verify",
                &[("S3_ENDPOINT", "s3.local"), ("S3_VERIFY_SSL", "0")],
                Some("https://s3.local"),
                false,
            ),
            (
                "aws wins over kserve",
                &[("S3_ENDPOINT", "a:1"), ("AWS_ENDPOINT_URL", "https://b")],
                Some("https://b"),
                true,
            ),
            (
                "kserve endpoint with scheme",
                &[("S3_ENDPOINT", "http://c:2")],
                Some("http://c:2"),
                true,
            ),
        ];
        for (name, vars, endpoint, verify) in cases {
            let env = S3Env::from_vars(|k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            });
            assert_eq!(env.endpoint.as_deref(), *endpoint, "{name}");
            assert_eq!(env.verify_tls, *verify, "{name}");
        }
    }

    #[test]
    fn remote_names() {
        for (s, remote) in [
            ("s3://b/k.zip", true),
            ("S3://b/k.zip", true),
            ("https://h/x.zip", true),
            ("http://h/x.zip", true),
            ("s3://", false),
            ("./s3:/x", false),
            ("/tmp/model.zip", false),
        ] {
            assert_eq!(is_remote(Path::new(s)), remote, "{s}");
        }
    }
}
