//! A minimal HTTP/1.1 client on a raw TCP stream.
//!
//! The abuse mode must send what no client library would (lying lengths, broken framing,
//! invalid UTF-8 in the request line, bodies dribbled a byte at a time) and see exactly
//! what the server answers, including answers that end in a closed or reset connection.
//! So requests are bytes the caller builds, and answers are parsed with `httparse`. The
//! load mode uses the same client: one write and usually one read per request, which keeps
//! the client's share of a small machine low.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// A final answer (1xx answers before it are in `interim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub interim: Vec<u16>,
    /// The server will close the connection after this answer.
    pub close: bool,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Bytes read from a connection and not yet consumed.
#[derive(Debug, Default)]
pub struct RecvBuf {
    data: Vec<u8>,
    pos: usize,
}

enum BodyKind {
    Empty,
    Length(usize),
    Chunked,
    ToEof,
}

struct Head {
    status: u16,
    close: bool,
    content_type: Option<String>,
    body: BodyKind,
    len: usize,
}

const READ_CHUNK: usize = 16 * 1024;

impl RecvBuf {
    fn buffered(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Reads more bytes; `Ok(0)` at EOF.
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<usize> {
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        } else if self.pos >= READ_CHUNK {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        self.data.reserve(READ_CHUNK);
        r.read_buf(&mut self.data)
            .await
            .map_err(|e| Error::io("read the answer", e))
    }

    fn parse_head(&self, head_request: bool) -> Result<Option<Head>> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(self.buffered()) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(Error::Malformed(e.to_string())),
        };
        let status = resp.code.unwrap_or(0);
        let http10 = resp.version == Some(0);
        let mut close = http10;
        let mut content_type = None;
        let mut length = None;
        let mut chunked = false;
        for h in resp.headers.iter() {
            let value = String::from_utf8_lossy(h.value);
            if h.name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            } else if h.name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.into_owned());
            } else if h.name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| Error::Malformed(format!("content-length {value:?}")))?,
                );
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304
        {
            BodyKind::Empty
        } else if chunked {
            BodyKind::Chunked
        } else if let Some(n) = length {
            BodyKind::Length(n)
        } else {
            close = true;
            BodyKind::ToEof
        };
        Ok(Some(Head {
            status,
            close,
            content_type,
            body,
            len,
        }))
    }

    /// Reads one final answer from `r` (skipping and recording 1xx answers).
    /// `head_request`: the request was HEAD, so the answer has no body.
    pub async fn recv<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        head_request: bool,
    ) -> Result<Response> {
        let mut interim = Vec::new();
        loop {
            let head = loop {
                if let Some(h) = self.parse_head(head_request)? {
                    break h;
                }
                if self.fill(r).await? == 0 {
                    return Err(Error::Closed {
                        received: self.buffered().len(),
                    });
                }
            };
            self.pos += head.len;
            if (100..200).contains(&head.status) {
                interim.push(head.status);
                continue;
            }
            let body = match head.body {
                BodyKind::Empty => Vec::new(),
                BodyKind::Length(n) => self.take(r, n, head.len).await?,
                BodyKind::Chunked => self.chunked(r, head.len).await?,
                BodyKind::ToEof => {
                    while self.fill(r).await? > 0 {}
                    let b = self.buffered().to_vec();
                    self.pos = self.data.len();
                    b
                }
            };
            return Ok(Response {
                status: head.status,
                interim,
                close: head.close,
                content_type: head.content_type,
                body,
            });
        }
    }

    async fn take<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        n: usize,
        head_len: usize,
    ) -> Result<Vec<u8>> {
        while self.buffered().len() < n {
            if self.fill(r).await? == 0 {
                return Err(Error::Closed {
                    received: head_len + self.buffered().len(),
                });
            }
        }
        let b = self.buffered()[..n].to_vec();
        self.pos += n;
        Ok(b)
    }

    async fn line<R: AsyncRead + Unpin>(&mut self, r: &mut R, head_len: usize) -> Result<String> {
        loop {
            if let Some(i) = self.buffered().windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buffered()[..i]).into_owned();
                self.pos += i + 2;
                return Ok(l);
            }
            if self.fill(r).await? == 0 {
                return Err(Error::Closed {
                    received: head_len + self.buffered().len(),
                });
            }
        }
    }

    async fn chunked<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        head_len: usize,
    ) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line(r, head_len).await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| Error::Malformed(format!("chunk size {line:?}")))?;
            if size == 0 {
                // Trailers up to the empty line.
                while !self.line(r, head_len).await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take(r, size, head_len).await?);
            if !self.line(r, head_len).await?.is_empty() {
                return Err(Error::Malformed("no CRLF after a chunk".into()));
            }
        }
    }
}

/// One connection to the server.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub buf: RecvBuf,
}

impl Conn {
    /// Connects with TCP_NODELAY (a request is one write; Nagle would only add delay to
    /// the byte-by-byte clients).
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("set TCP_NODELAY", e))?;
        Ok(Conn {
            stream,
            buf: RecvBuf::default(),
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| Error::io("send the request", e))
    }

    pub async fn recv(&mut self, head_request: bool, limit: Duration) -> Result<Response> {
        match tokio::time::timeout(limit, self.buf.recv(&mut self.stream, head_request)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(limit)),
        }
    }

    /// Sends `bytes` and reads the answer.
    pub async fn exchange(
        &mut self,
        bytes: &[u8],
        head_request: bool,
        limit: Duration,
    ) -> Result<Response> {
        self.send(bytes).await?;
        self.recv(head_request, limit).await
    }
}

/// A request with `Host` and (for a body or a method that carries one) `Content-Length`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(128 + body.len());
    r.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").as_bytes());
    for (k, v) in headers {
        r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

/// A JSON `POST` to `path`.
pub fn post_json(path: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, &[("Content-Type", "application/json")], body)
}

/// One request on a fresh connection that is closed afterwards.
pub async fn once(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Result<Response> {
    let mut c = Conn::connect(addr).await?;
    c.exchange(bytes, false, limit).await
}

/// `GET path` on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, limit: Duration) -> Result<Response> {
    once(
        addr,
        &request("GET", path, &[("Connection", "close")], b""),
        limit,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8], head: bool) -> Result<(Response, usize)> {
        let mut r: &[u8] = bytes;
        let mut b = RecvBuf::default();
        let resp = b.recv(&mut r, head).await?;
        Ok((resp, b.buffered().len()))
    }

    #[tokio::test]
    async fn answers_are_framed_as_http_says() {
        // (name, bytes, HEAD request, status, body, close, bytes left buffered)
        type Case<'a> = (&'a str, &'a [u8], bool, u16, &'a [u8], bool, usize);
        let cases: &[Case] = &[
            (
                "content-length, keep-alive, next answer left buffered",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKHTTP/1.1 200",
                false,
                200,
                b"OK",
                false,
                12,
            ),
            (
                "chunked with trailer",
                b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
                false,
                400,
                b"abcde",
                false,
                0,
            ),
            (
                "100 continue then final, close",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx",
                false,
                413,
                b"x",
                true,
                0,
            ),
            (
                "HEAD has no body",
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n",
                true,
                200,
                b"",
                false,
                0,
            ),
            (
                "no length: to EOF, closes",
                b"HTTP/1.0 200 OK\r\n\r\nabc",
                false,
                200,
                b"abc",
                true,
                0,
            ),
        ];
        for (name, bytes, head, status, body, close, rest) in cases {
            let (r, left) = parse(bytes, *head)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.status, *status, "{name}");
            assert_eq!(r.body, *body, "{name}");
            assert_eq!(r.close, *close, "{name}");
            assert_eq!(left, *rest, "{name}");
        }
        assert_eq!(
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx", false)
                .await
                .unwrap()
                .0
                .interim,
            [100]
        );
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("nothing", b"", "closed after 0"),
            (
                "cut in the head",
                b"HTTP/1.1 200 OK\r\nCont",
                "closed after 21",
            ),
            (
                "cut in the body",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                "closed after 40",
            ),
            ("not HTTP", b"SSH-2.0-x\r\n\r\n", "malformed"),
            (
                "bad length",
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "malformed",
            ),
            (
                "bad chunk",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "malformed",
            ),
        ];
        for (name, bytes, want) in cases {
            let e = parse(bytes, false)
                .await
                .err()
                .unwrap_or_else(|| panic!("{name}: parsed"));
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn requests_carry_host_and_length() {
        let cases: &[(&str, &str, &[u8], &str)] = &[
            (
                "get",
                "GET",
                b"",
                "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            ),
            (
                "post",
                "POST",
                b"{}",
                "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}",
            ),
            (
                "empty delete",
                "DELETE",
                b"",
                "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        for (name, method, body, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&request(method, "/x", &[], body)),
                *want,
                "{name}"
            );
        }
    }
}
