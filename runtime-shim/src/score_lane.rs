//! `POST /model/score` answered before the router, through the same steps in the same
//! order; every other request goes to the router.
//!
//! Why (issue 20): callgrind of 1-row requests put ~17k of a request's ~45k instructions
//! in axum's and tower's layering around the handler — the route's boxed service cloned
//! per request, a boxed future and a `Next` per `from_fn` layer (access log, error shape,
//! endpoint security, limits), the matched path stored in the request's extensions —
//! against ~10k for the handler itself. Scoring is the route that is called at a rate,
//! so it skips that machinery; the steps are the router's own functions, so they cannot
//! drift apart: the metrics' request count ([`crate::metrics`]), the endpoint security
//! ([`crate::auth::admit`]), the body read under its limit and deadline
//! ([`crate::server::read_body_bytes`]), the handler ([`crate::server::score`]) under the
//! request timeout ([`crate::server::within`]), then the metrics and the access line
//! ([`crate::server::log_access`]). The `/v2` error shape does not apply (not a `/v2`
//! path). The path is compared as the router matches it: exactly, undecoded.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Bytes, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use tower_service::Service;

use crate::auth::Auth;
use crate::server::AppState;

/// The path answered here.
const SCORE: &str = "/model/score";

/// The router with `POST /model/score` answered in front of it.
#[derive(Clone)]
pub struct ScoreLane {
    router: Router,
    lane: Arc<Lane>,
}

/// What the scoring steps need: the state, the endpoint security (`None`: open) and the
/// limits, as given to the router.
struct Lane {
    state: Arc<AppState>,
    auth: Option<Arc<Auth>>,
    max_body: usize,
    timeout: Duration,
}

impl ScoreLane {
    pub fn new(
        router: Router,
        state: Arc<AppState>,
        auth: Option<Arc<Auth>>,
        max_body: usize,
        timeout: Duration,
    ) -> ScoreLane {
        ScoreLane {
            router,
            lane: Arc::new(Lane {
                state,
                auth,
                max_body,
                timeout,
            }),
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<hyper::Request<Incoming>> for ScoreLane {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: hyper::Request<Incoming>) -> Answer {
        if req.method() == Method::POST && req.uri().path() == SCORE {
            let lane = Arc::clone(&self.lane);
            Box::pin(async move { Ok(lane.score(req).await) })
        } else {
            Box::pin(self.router.call(req))
        }
    }
}

impl Lane {
    /// The request with the access log's bookkeeping around it.
    async fn score(&self, req: hyper::Request<Incoming>) -> Response {
        let start = Instant::now();
        crate::metrics::global().request_started();
        let mut resp = self.answer(req).await;
        // What axum's router adds to every answer of a matched route (`Allow` is only
        // for 405s, which the router answers).
        if !resp.headers().contains_key(header::CONTENT_LENGTH) {
            if let Some(n) = resp.body().size_hint().exact() {
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
        crate::server::log_access("POST", SCORE, Some(SCORE), &resp, start);
        resp
    }

    async fn answer(&self, req: hyper::Request<Incoming>) -> Response {
        if let Some(auth) = &self.auth {
            if let Err(refused) = crate::auth::admit(auth, req.headers()).await {
                return refused;
            }
        }
        let body = match crate::server::read_body_bytes(req, self.max_body, self.timeout).await {
            Ok((_, body)) => Bytes::from(body),
            Err(refused) => return refused,
        };
        let state = State(Arc::clone(&self.state));
        crate::server::within(self.timeout, async move {
            crate::server::score(state, Ok(body)).await.into_response()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthSettings, Secret};
    use crate::connections::ConnLimits;
    use crate::protocol::v2::V2Model;
    use crate::server::router;
    use std::io::{Read, Write};
    use std::net::SocketAddr;

    const MAX_BODY: usize = 4096;
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn model(parent: &std::path::Path) -> Arc<crate::model::LoadedModel> {
        crate::test_models::loaded(parent, "gbm_onehot_binomial")
    }

    /// Serves `app` on a fresh port.
    async fn serve<S: crate::connections::App>(app: S) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnLimits {
            header_timeout: TIMEOUT,
            idle_timeout: TIMEOUT,
            max_connections: 16,
        };
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        // The sender lives as long as the test process: the server never stops.
        std::mem::forget(stop_tx);
        let workers = crate::workers::Workers::start(1).unwrap();
        tokio::spawn(crate::connections::run(
            listener, app, limits, workers, stop,
        ));
        addr
    }

    /// The whole answer to `raw`, without its `date` header.
    async fn exchange(addr: SocketAddr, raw: Vec<u8>) -> String {
        let out = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(&raw).unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            out
        })
        .await
        .unwrap();
        String::from_utf8_lossy(&out)
            .split("\r\n")
            .filter(|l| !l.starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    fn request(method: &str, path: &str, headers: &[&str], body: &str) -> Vec<u8> {
        let mut r = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        for h in headers {
            r.push_str(h);
            r.push_str("\r\n");
        }
        if !headers
            .iter()
            .any(|h| h.starts_with("Content-Length") || h.starts_with("Transfer"))
        {
            r.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        r.push_str("\r\n");
        r.push_str(body);
        r.into_bytes()
    }

    /// The router alone and the lane in front of it answer every request alike: status,
    /// headers (but the date) and body, with and without endpoint security and before
    /// the model is loaded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_as_the_router() {
        let tmp = tempfile::tempdir().unwrap();
        let m = model(tmp.path());
        let good = r#"{"fields":["x1","x2","color","city","grade"],"rows":[["-0.42","3.405","red","izmir","13"]]}"#;
        let big = format!(
            r#"{{"fields":["x1","x2","color","city","grade"],"rows":[{}]}}"#,
            vec![r#"["1","2","red","izmir","3"]"#; 200].join(",")
        );
        let cases: Vec<(&str, &str, &str, Vec<&str>, String)> = vec![
            ("one row", "POST", "/model/score", vec![], good.into()),
            (
                "with credential",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                good.into(),
            ),
            (
                "wrong credential",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer nope"],
                good.into(),
            ),
            (
                "not JSON",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                "{".into(),
            ),
            (
                "not a request",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                "[1]".into(),
            ),
            (
                "empty body",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                String::new(),
            ),
            (
                "declared too large",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret", "Content-Length: 99999"],
                String::new(),
            ),
            (
                "sent too large",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                big,
            ),
            (
                "chunked",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret", "Transfer-Encoding: chunked"],
                format!("{:x}\r\n{good}\r\n0\r\n\r\n", good.len()),
            ),
            (
                "shapley",
                "POST",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                good.replace("]]}", r#"]],"requestShapleyValueType":"ORIGINAL"}"#),
            ),
            (
                "GET",
                "GET",
                "/model/score",
                vec!["Authorization: Bearer s3cret"],
                String::new(),
            ),
            (
                "trailing slash",
                "POST",
                "/model/score/",
                vec!["Authorization: Bearer s3cret"],
                good.into(),
            ),
            (
                "encoded",
                "POST",
                "/model/%73core",
                vec!["Authorization: Bearer s3cret"],
                good.into(),
            ),
        ];
        let secured = AuthSettings {
            passphrase: Some(Secret(b"s3cret".to_vec())),
            hashes: None,
            oidc: None,
        };
        let configs = [
            ("open", AuthSettings::default(), true),
            ("passphrase", secured, true),
            ("not loaded", AuthSettings::default(), false),
        ];
        for (config, settings, loaded) in configs {
            let auth = crate::auth::Auth::new(&settings).unwrap();
            let state = Arc::new(AppState::default());
            if loaded {
                state.set(Arc::clone(&m), V2Model::new(&m, None, "1"));
            }
            let r = router(Arc::clone(&state), MAX_BODY, TIMEOUT, auth.as_ref(), true);
            let plain = serve(r.clone()).await;
            let lane = serve(ScoreLane::new(r, state, auth, MAX_BODY, TIMEOUT)).await;
            for (name, method, path, headers, body) in &cases {
                let raw = request(method, path, headers, body);
                let want = exchange(plain, raw.clone()).await;
                let got = exchange(lane, raw).await;
                assert_eq!(got, want, "{config}, {name}");
                let scored = matches!(
                    (config, *name),
                    ("open", "one row" | "with credential" | "chunked")
                        | ("passphrase", "with credential" | "chunked")
                );
                let status = if scored { "HTTP/1.1 200 " } else { "HTTP/1.1 " };
                assert!(want.starts_with(status), "{config}, {name}: {want}");
            }
        }
    }
}
