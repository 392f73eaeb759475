//! The crate's one error type. Transport errors of a single request are values the abuse
//! mode classifies (a reset after a deliberately broken request is expected); the other
//! variants stop a run: a bad flag, a server that cannot be reached or answers the set-up
//! requests wrongly, a CSV that cannot be read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("usage: {0}")]
    Usage(String),
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the connection closed after {received} bytes of the answer")]
    Closed { received: usize },
    #[error("the connection was reset")]
    Reset,
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{request}: {detail}")]
    Server { request: String, detail: String },
    #[error("{path}: {detail}")]
    Csv { path: PathBuf, detail: String },
}

impl Error {
    /// An I/O error of `op`, with resets and EOFs told apart (the abuse mode counts them).
    pub fn io(op: &'static str, source: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match source.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Error::Reset,
            K::UnexpectedEof => Error::Closed { received: 0 },
            _ => Error::Io { op, source },
        }
    }

    /// Exit code of the binary: 2 for usage, 3 for a server or input that cannot be used.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 3,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
