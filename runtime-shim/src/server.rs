//! The HTTP server: the scoring API's routes on axum, the cross-cutting limits (body size,
//! request timeout), one access-log line and the metrics of each request, and the
//! lifecycle of the process.
//!
//! Layers, outermost first: the access log and metrics (every request); the error shape
//! of the Open Inference Protocol on `/v2` paths ([`crate::protocol::v2::error_shape`]);
//! routing; for the protected group (every `/model/*` and `/v2/models/*` route, and
//! `/metrics` when it is served here) the endpoint security ([`crate::auth::protect`]);
//! then the body limits and the handler deadline; then the handler. So a request is
//! authenticated before its body is read. `POST /model/score` goes through the same
//! steps, in the same order, in front of the router ([`crate::score_lane`]).
//!
//! The port is bound before the model is loaded, so that liveness probes (`/healthz`,
//! `/v2/health/live`) pass while a large model is verified; `/readyz`,
//! `/v2/health/ready` and the model routes wait for the loaded model. SIGTERM or SIGINT stops accepting connections, lets in-flight requests
//! finish within a grace period, then stops the backend's child process (if it has one).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::{
    json_bytes, json_response, parse_request_for, ApiError, ContributionsResponse, Endpoint,
};
use crate::auth::{Auth, AuthSettings};
use crate::backend::{BackendConfig, BackendKind};
use crate::connections::ConnLimits;
use crate::error::ShimError;
use crate::metrics::{self, RowsScored};
use crate::model::LoadedModel;
use crate::protocol::v2::{self, V2Model};
use crate::rest_score;
use crate::score_lane::ScoreLane;
use crate::workers::Workers;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub model_path: PathBuf,
    pub served: Vec<BackendKind>,
    pub model_id: Option<String>,
    /// `MODEL_NAME`: the model's name in the Open Inference Protocol (default: its id).
    pub model_name: Option<String>,
    /// `MODEL_VERSION`: the model's one version in the Open Inference Protocol.
    pub model_version: String,
    pub host: IpAddr,
    pub port: u16,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// The connection cap and the header and idle clocks.
    pub connections: ConnLimits,
    pub shutdown_grace: Duration,
    pub backend: BackendConfig,
    /// The endpoint security (none configured: open).
    pub auth: AuthSettings,
    /// `METRICS_PORT`: serve `/metrics` alone on this port (open) rather than on the API
    /// port (protected).
    pub metrics_port: Option<u16>,
    /// `WORKER_THREADS`: the threads that serve connections (`crate::workers`).
    pub worker_threads: usize,
}

/// Shared state of the handlers: the model once it is loaded, and its view in the Open
/// Inference Protocol (set first).
#[derive(Debug, Default)]
pub struct AppState {
    model: OnceLock<Arc<LoadedModel>>,
    v2: OnceLock<Arc<V2Model>>,
}

impl AppState {
    pub(crate) fn model(&self) -> Result<&Arc<LoadedModel>, ApiError> {
        self.model.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the model is not loaded yet; retry when /readyz answers Ready",
            )
        })
    }

    /// The model, when it is loaded.
    pub(crate) fn loaded(&self) -> Option<&Arc<LoadedModel>> {
        self.model.get()
    }

    /// The model and its Open Inference Protocol view, or the 503 of a model not loaded.
    pub(crate) fn v2(&self) -> Result<(&Arc<LoadedModel>, &V2Model), ApiError> {
        match (self.model.get(), self.v2.get()) {
            (Some(m), Some(v)) => Ok((m, v)),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the model is not loaded yet; retry when /v2/health/ready answers 200",
            )),
        }
    }

    /// Publishes the loaded model (its protocol view first).
    pub(crate) fn set(&self, model: Arc<LoadedModel>, v2: V2Model) {
        let _ = self.v2.set(Arc::new(v2));
        let _ = self.model.set(model);
    }
}

type St = State<Arc<AppState>>;

/// The routes of the scoring API with their limits, endpoint security (`auth`; `None`:
/// open) and access log; `/metrics` among the protected routes when `metrics_here`.
pub fn router(
    state: Arc<AppState>,
    max_body_bytes: usize,
    request_timeout: Duration,
    auth: Option<&Arc<Auth>>,
    metrics_here: bool,
) -> Router {
    let limits = axum::middleware::from_fn(move |req, next| {
        limits(req, next, max_body_bytes, request_timeout)
    });
    let mut protected = Router::new()
        .route("/model/id", get(model_id))
        .route("/model/schema", get(schema))
        .route("/model/sample_request", get(sample_request))
        .route("/model/capabilities", get(capabilities))
        .route("/model/score", post(score))
        .route("/model/contribution", post(contribution))
        .route("/model/media-score", post(media_score))
        .merge(v2::protected_routes());
    if metrics_here {
        protected = protected.route("/metrics", get(metrics_text));
    }
    // Body limits inside the endpoint security: nothing is read before the check.
    let protected = crate::auth::protect(protected.route_layer(limits.clone()), auth);
    let open = Router::new()
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .merge(v2::open_routes())
        .fallback(not_found)
        .layer(limits);
    protected
        .merge(open)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(v2::error_shape))
        .layer(axum::middleware::from_fn(access_log))
        .with_state(state)
}

/// The router of `METRICS_PORT`: `/metrics` alone, open (the port is for the scraper).
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
}

/// One `access` line per request (method, path, status, bytes out, microseconds), and
/// its figures in the metrics (route template, status, time, rows scored).
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    metrics::global().request_started();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    log_access(
        method.as_str(),
        &path,
        route.as_ref().map(MatchedPath::as_str),
        &resp,
        start,
    );
    resp
}

/// The end of [`access_log`]: the request's figures in the metrics and its access line
/// (also for `POST /model/score`, answered before the router: [`crate::score_lane`]).
pub(crate) fn log_access(
    method: &str,
    path: &str,
    route: Option<&str>,
    resp: &Response,
    start: Instant,
) {
    let took = start.elapsed();
    let rows = resp.extensions().get::<RowsScored>().map_or(0, |r| r.0);
    metrics::global().request_done(route, resp.status().as_u16(), took, rows);
    crate::access_log::record(&crate::access_log::Access {
        method,
        path,
        status: resp.status().as_u16(),
        bytes: resp.body().size_hint().exact().unwrap_or(0),
        micros: took.as_micros() as u64,
    });
}

/// The limits that protect the server: a declared `Content-Length` over `max_body` is
/// refused (413) before anything is read; the body is then read whole under its own
/// deadline (`timeout`; a client that stalls is answered 408, a client fault); then the
/// handler runs under the request timeout (503 with a `detail`: the server was too slow).
async fn limits(req: Request, next: Next, max_body: usize, timeout: Duration) -> Response {
    match read_body(req, max_body, timeout).await {
        Err(refused) => refused,
        Ok(req) => within(timeout, next.run(req)).await,
    }
}

/// `answer` under the request timeout: a 503 with a `detail` when it takes longer.
pub(crate) async fn within(timeout: Duration, answer: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(timeout, answer).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s and was abandoned",
                timeout.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// The request with its body read into memory, or the refusal: 413 when the declared
/// `Content-Length` (checked first, nothing read, no `100 Continue`) or the bytes received
/// exceed `max_body`; 408 when the whole body has not arrived within `deadline`; 400 when
/// the connection fails mid-body. A refusal closes the connection (its body is unread).
async fn read_body(req: Request, max_body: usize, deadline: Duration) -> Result<Request, Response> {
    let (parts, buf) = read_body_bytes(req, max_body, deadline).await?;
    Ok(Request::from_parts(parts, Body::from(buf)))
}

/// [`read_body`]'s work: the request's head and its body's bytes.
pub(crate) async fn read_body_bytes<B>(
    req: axum::http::Request<B>,
    max_body: usize,
    deadline: Duration,
) -> Result<(axum::http::request::Parts, Vec<u8>), Response>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let path = req.uri().path();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(refuse(too_large(path)));
    }
    let (parts, mut body) = req.into_parts();
    let path = parts.uri.path();
    let collect = async {
        // Reserve at most 1 MiB up front: a client that declares a large body and sends
        // nothing must not make the server allocate it.
        let mut buf = Vec::with_capacity(declared.map_or(0, |n| n.min(1 << 20) as usize));
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max_body {
                    return Err(too_large(path));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    };
    match tokio::time::timeout(deadline, collect).await {
        Ok(Ok(buf)) => Ok((parts, buf)),
        Ok(Err(e)) => Err(refuse(e)),
        Err(_) => Err(refuse(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body was not received within {} s",
                deadline.as_secs_f64()
            ),
        ))),
    }
}

/// 413 with the prefix of the route's endpoint (none for the Open Inference Protocol).
fn too_large(path: &str) -> ApiError {
    if path.starts_with("/v2/") {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than the limit (MAX_BODY_BYTES)",
        );
    }
    let ep = if path == "/model/contribution" {
        Endpoint::Contribution { enabled: None }
    } else {
        Endpoint::Score
    };
    let mut err = ep.invalid("the body is larger than the limit (MAX_BODY_BYTES)");
    err.status = StatusCode::PAYLOAD_TOO_LARGE;
    err
}

/// `err` as a response that closes the connection.
fn refuse(err: ApiError) -> Response {
    let mut r = err.into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn model_id(State(st): St) -> Result<Response, ApiError> {
    Ok(text(StatusCode::OK, st.model()?.id.clone()))
}

async fn schema(State(st): St) -> Result<Response, ApiError> {
    Ok(json_bytes(StatusCode::OK, st.model()?.schema_json.clone()))
}

async fn sample_request(State(st): St) -> Result<Response, ApiError> {
    Ok(json_bytes(
        StatusCode::OK,
        st.model()?.sample_request_json.clone(),
    ))
}

async fn capabilities(State(st): St) -> Result<Response, ApiError> {
    Ok(json_bytes(
        StatusCode::OK,
        st.model()?.capabilities_json.clone(),
    ))
}

/// The body, or the 413 (or other rejection) with `ep`'s prefix.
fn body_of(body: Result<Bytes, BytesRejection>, ep: Endpoint) -> Result<Bytes, ApiError> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            let mut err = ep.invalid("the body is larger than the limit (MAX_BODY_BYTES)");
            err.status = StatusCode::PAYLOAD_TOO_LARGE;
            err
        }
        s => {
            let mut err = ep.invalid(e.body_text());
            err.status = s;
            err
        }
    })
}

/// `POST /model/score`: the scores, and with a `requestShapleyValueType` the model
/// computes, the same rows' Shapley values as `featureShapleyContributions` (what
/// `/model/contribution` answers for them).
pub(crate) async fn score(
    State(st): St,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let m = st.model()?;
    let body = body_of(body, Endpoint::Score)?;
    if let Some(a) = rest_score::score(m, &body).await? {
        return Ok(with_rows(json_bytes(StatusCode::OK, a.body.into()), a.rows));
    }
    let prepared = m
        .rules
        .prepare_for(parse_request_for(&body, Endpoint::Score)?, Endpoint::Score)?;
    let outputs = m.backend.score(Arc::clone(&prepared.frame)).await?;
    let rows = prepared.frame.len() as u64;
    let mut resp = prepared.respond(outputs, m.backend.output_names(), &m.id);
    if prepared.layout.shapley().is_some() {
        // The rules only accept the type the backend reported at load.
        let (_, features) = m
            .backend
            .contributions_support()
            .map_err(|why| ApiError::failed(StatusCode::INTERNAL_SERVER_ERROR, why))?;
        let features = features.to_vec();
        let values = m.backend.contributions(Arc::clone(&prepared.frame)).await?;
        resp.feature_shapley_contributions = Some(ContributionsResponse::single(&features, values));
    }
    Ok(with_rows(json_response(StatusCode::OK, &resp), rows))
}

/// `r`, telling the metrics it scored `rows` rows.
fn with_rows(mut r: Response, rows: u64) -> Response {
    r.extensions_mut().insert(RowsScored(rows));
    r
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics_text() -> Response {
    let mut r = (StatusCode::OK, metrics::global().render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    r
}

/// `POST /model/contribution`: 501 when the model computes no Shapley values, else the
/// request checks of `/model/score` (with the contribution prefix and the requested type
/// checked against the model's), then one contribution row per request row.
async fn contribution(
    State(st): St,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let m = st.model()?;
    let (kind, features) = m.backend.contributions_support().map_err(|why| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("Unsupported operation due to: {why}"),
        )
    })?;
    let ep = Endpoint::Contribution {
        enabled: Some(kind),
    };
    let body = body_of(body, ep)?;
    let prepared = m.rules.prepare_for(parse_request_for(&body, ep)?, ep)?;
    let rows = m.backend.contributions(Arc::clone(&prepared.frame)).await?;
    let n = rows.len() as u64;
    Ok(with_rows(
        json_response(
            StatusCode::OK,
            &ContributionsResponse::single(features, rows),
        ),
        n,
    ))
}

async fn media_score() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "score media files is not implemented",
    )
}

async fn readyz(State(st): St) -> Response {
    match st.model.get() {
        Some(m) if m.backend.ready().await => text(StatusCode::OK, "Ready"),
        _ => text(StatusCode::INTERNAL_SERVER_ERROR, "Not ready"),
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "OK")
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// Waits for SIGTERM or SIGINT; returns the signal's name.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Self, ShimError> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |e| ShimError::io("install signal handler", "SIGTERM/SIGINT", e);
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
        })
    }

    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Ends a load that a signal interrupted: a child that is still starting is killed, which
/// makes a proxy backend's load return at once (it must not outlive the runtime); a load
/// that won the race has its child stopped.
pub(crate) async fn abandon_loading(
    loading: tokio::task::JoinHandle<Result<LoadedModel, ShimError>>,
    limit: Duration,
) {
    crate::backend::proxy::kill_all();
    if let Ok(Ok(Ok(model))) = tokio::time::timeout(limit, loading).await {
        model.backend.shutdown().await;
    }
}

/// Binds, loads the model, serves until SIGTERM/SIGINT, then drains.
pub async fn serve(cfg: ServeConfig) -> Result<(), ShimError> {
    let mut signals = Signals::install()?;
    crate::model::precheck(&cfg.model_path, &cfg.served, &cfg.backend)?;
    // The endpoint security is checked (and an issuer's keys fetched) before the port is
    // bound: a bad configuration never serves, not even for a moment.
    let settings = cfg.auth.clone();
    let auth = tokio::task::spawn_blocking(move || Auth::new(&settings))
        .await
        .map_err(|e| ShimError::io("check", "the endpoint security", std::io::Error::other(e)))??;
    match &auth {
        None => tracing::warn!(
            "ENDPOINT SECURITY IS OFF: none of SCORING_PASSPHRASE, SCORING_PASSPHRASE_HASH, \
             OIDC_ISSUER is set, so anyone who can reach this port can call every /model/* \
             and /v2/models/* route; set one of them to require `Authorization: Bearer <credential>`"
        ),
        Some(a) => {
            tracing::info!(
                "endpoint security: /model/* (and /v2/models/*) needs one of {}",
                a.describe()
            );
            a.spawn_background();
        }
    }
    let addr = SocketAddr::new(cfg.host, cfg.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| ShimError::Bind { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| ShimError::Bind { addr, error })?;
    // Whose memcpy and memmove the binary calls (runtime-shim/copy-routines): a static
    // build linked without its `--wrap` flags would serve at about half the speed.
    let copies = copy_routines::in_use();
    if copies == "musl" {
        tracing::warn!(
            "this static build copies with musl's memcpy and memmove, not copy-routines' \
             (linked without -Wl,--wrap, see runtime-shim/build.rs): scoring costs about twice \
             the CPU"
        );
    }
    tracing::info!(
        model_path = %cfg.model_path.display(),
        copies = %copies,
        "listening on {bound}"
    );

    let metrics_listener = match cfg.metrics_port {
        None => None,
        Some(port) => {
            let addr = SocketAddr::new(cfg.host, port);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| ShimError::Bind { addr, error })?;
            let bound = l
                .local_addr()
                .map_err(|error| ShimError::Bind { addr, error })?;
            tracing::info!("metrics on {bound}/metrics (METRICS_PORT, open)");
            Some(l)
        }
    };

    let state = Arc::new(AppState::default());
    let app = ScoreLane::new(
        router(
            Arc::clone(&state),
            cfg.max_body_bytes,
            cfg.request_timeout,
            auth.as_ref(),
            metrics_listener.is_none(),
        ),
        Arc::clone(&state),
        auth.clone(),
        cfg.max_body_bytes,
        cfg.request_timeout,
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = Workers::start(cfg.worker_threads)
        .map_err(|e| ShimError::io("start", "the connection threads", e))?;
    if let Some(l) = metrics_listener {
        tokio::spawn(crate::connections::run(
            l,
            metrics_router(),
            cfg.connections,
            Arc::clone(&workers),
            stop_rx.clone(),
        ));
    }
    let mut server = tokio::spawn(crate::connections::run(
        listener,
        app,
        cfg.connections,
        workers,
        stop_rx,
    ));

    let dir = cfg.model_path.clone();
    let served = cfg.served.clone();
    let model_id = cfg.model_id.clone();
    let backend = cfg.backend.clone();
    let load_start = Instant::now();
    let mut loading = tokio::task::spawn_blocking(move || {
        crate::model::load(&dir, &served, model_id.as_deref(), &backend)
    });
    let loaded = tokio::select! {
        r = &mut loading => r.map_err(|e| ShimError::io("load model", &cfg.model_path, std::io::Error::other(e)))?,
        sig = signals.recv() => {
            tracing::info!("received {sig} while loading the model; exiting");
            abandon_loading(loading, cfg.shutdown_grace).await;
            return Ok(());
        }
    };
    let model = match loaded {
        Ok(m) => m,
        Err(e) => {
            let _ = stop_tx.send(true);
            return Err(e);
        }
    };
    let model = Arc::new(model);
    let view = V2Model::new(&model, cfg.model_name.as_deref(), &cfg.model_version);
    tracing::info!(
        name = %view.name,
        version = %view.version,
        "Open Inference Protocol v2: POST /v2/models/{}/infer",
        view.name
    );
    state.set(Arc::clone(&model), view);
    metrics::global().model_loaded(load_start.elapsed());
    tracing::info!("ready");

    tokio::select! {
        sig = signals.recv() => tracing::info!("received {sig}: shutting down"),
        r = &mut server => {
            model.backend.shutdown().await;
            let why = match r {
                Ok(()) => std::io::Error::other("the server stopped unexpectedly"),
                Err(e) => std::io::Error::other(e),
            };
            return Err(ShimError::io("serve", bound.to_string(), why));
        }
    }
    let _ = stop_tx.send(true);
    match tokio::time::timeout(cfg.shutdown_grace, server).await {
        Ok(_) => tracing::info!("stopped"),
        Err(_) => tracing::warn!(
            grace_seconds = cfg.shutdown_grace.as_secs_f64(),
            "connections still open after the grace period; exiting anyway"
        ),
    }
    // In-flight requests have had their chance; now the backend's child (if any) goes.
    model.backend.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    async fn call(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let out = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    /// Before the model is loaded: alive, not ready, and the model routes say why.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_before_the_model_is_loaded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(
            Arc::new(AppState::default()),
            1 << 20,
            Duration::from_secs(5),
            None,
            true,
        );
        let (_stop, stop) = tokio::sync::watch::channel(false);
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            max_connections: 16,
        };
        tokio::spawn(crate::connections::run(
            listener,
            app,
            limits,
            crate::workers::Workers::start(2).unwrap(),
            stop,
        ));
        let cases = [
            ("healthz", "GET", "/healthz", 200, "OK"),
            ("readyz", "GET", "/readyz", 500, "Not ready"),
            ("id", "GET", "/model/id", 503, "the model is not loaded yet"),
            (
                "schema",
                "GET",
                "/model/schema",
                503,
                "the model is not loaded yet",
            ),
            (
                "score",
                "POST",
                "/model/score",
                503,
                "the model is not loaded yet",
            ),
            ("v2 live", "GET", "/v2/health/live", 200, "{\"live\":true}"),
            (
                "v2 ready",
                "GET",
                "/v2/health/ready",
                503,
                "{\"ready\":false}",
            ),
            (
                "v2 server metadata",
                "GET",
                "/v2",
                200,
                "binary_tensor_data",
            ),
            (
                "v2 model ready",
                "GET",
                "/v2/models/m/ready",
                503,
                "{\"error\":\"the model is not loaded yet",
            ),
            (
                "v2 metadata",
                "GET",
                "/v2/models/m",
                503,
                "{\"error\":\"the model is not loaded yet",
            ),
            (
                "v2 infer",
                "POST",
                "/v2/models/m/infer",
                503,
                "{\"error\":\"the model is not loaded yet",
            ),
        ];
        for (name, method, path, status, needle) in cases {
            let (got, body) = call(addr, method, path).await;
            assert_eq!(got, status, "{name}: {body}");
            assert!(body.contains(needle), "{name}: {body}");
        }
    }
}
