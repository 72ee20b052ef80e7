//! The HTTP server (axum): `/metrics` for Prometheus, `/health` (200 while running, 503 once
//! draining), `/ready`, and `POST /classify`, the seed's web API: a CSV upload (multipart field
//! `file`, or a raw `text/csv` body) comes back as CSV with `target_label` and `tier` added; a
//! JSON array of `{source, log_message}` comes back as JSON records. Bodies are bounded
//! (`server.max_body_bytes`, 413 past it); it listens on 127.0.0.1 unless configured otherwise.
//! `POST /reload` reads the config again, as SIGHUP does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::classify;
use crate::config::{ConfigErrors, Section};
use crate::health::Health;
use crate::metrics::Registry;
use crate::tiers::Tiers;

/// `[server]`: the HTTP server.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Serve `/metrics`, `/health`, `/ready` and `POST /classify`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `IP:port` to listen on: loopback only by default; `0.0.0.0:9598` exposes it (to a
    /// Prometheus scraper, a Kubernetes probe). Env: `LOGSIEVE_SERVER_ADDRESS`.
    #[serde(default = "default_address")]
    pub address: String,
    /// Largest `POST /classify` body accepted, in bytes; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn yes() -> bool {
    true
}

fn default_address() -> String {
    "127.0.0.1:9598".into()
}

fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            enabled: true,
            address: default_address(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

/// The server's checked settings.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub enabled: bool,
    pub address: SocketAddr,
    pub max_body_bytes: usize,
}

impl ServerConfig {
    pub fn plan(self, at: &Section, errs: &mut ConfigErrors) -> Option<ServerPlan> {
        match self.address.parse::<SocketAddr>() {
            Ok(address) => Some(ServerPlan {
                enabled: self.enabled,
                address,
                max_body_bytes: self.max_body_bytes,
            }),
            Err(_) => {
                errs.add(
                    at.key("address"),
                    format!("`{}` is not an IP:port address", self.address),
                    "write it like 127.0.0.1:9598",
                );
                None
            }
        }
    }
}

impl ServerPlan {
    pub fn describe(&self) -> String {
        if self.enabled {
            format!(
                "server: http://{} (/metrics /health /ready POST /classify)",
                self.address
            )
        } else {
            "server: disabled".into()
        }
    }
}

#[derive(Clone)]
pub struct State {
    pub registry: Registry,
    /// The tiers in force (a reload may swap them).
    pub tiers: Arc<arc_swap::ArcSwap<Tiers>>,
    pub health: Arc<Health>,
    pub max_body_bytes: usize,
    pub max_lines: usize,
    /// Turns for `POST /classify` ([`CLASSIFY_AT_ONCE`]).
    pub classifying: Arc<tokio::sync::Semaphore>,
    /// Where `POST /reload` asks for a config reload.
    pub reload: tokio::sync::mpsc::Sender<crate::reload::ReloadRequest>,
}

/// How long a client may take to send a request's headers: one that trickles them is cut off.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests under way may run once the server stops.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// `POST /classify` requests labelled at once; more wait their turn (each holds its body, up
/// to `max_body_bytes`, in memory).
pub const CLASSIFY_AT_ONCE: usize = 4;

/// The server's port, bound (so that a port in use is found before anything starts).
pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {address}: {e} (set [server] address, or LOGSIEVE_SERVER_ADDRESS, to a free port; or [server] enabled = false)")
    })
}

/// Serves on `listener` until `stop`.
pub fn serve_on(
    listener: tokio::net::TcpListener,
    state: State,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "HTTP server listening");
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/classify", post(classify_upload))
        .route("/reload", post(reload))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state);
    tokio::spawn(serve(listener, app, stop))
}

/// Accepts connections until `stop`, each served over HTTP/1.1 with a bound on how long its
/// request headers may take (a client trickling bytes is cut off, and the others are served
/// meanwhile); then lets the requests under way finish, for at most [`STOP_WAIT`].
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to be freed.
                    tracing::warn!("HTTP server: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    let _ = tokio::time::timeout(STOP_WAIT, graceful.shutdown()).await;
    Ok(())
}

async fn metrics(axum::extract::State(state): axum::extract::State<State>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.registry.render(),
    )
        .into_response()
}

async fn health(axum::extract::State(state): axum::extract::State<State>) -> Response {
    if state.health.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn ready(axum::extract::State(state): axum::extract::State<State>) -> Response {
    match state.health.not_ready_because() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// Reads the config again (as SIGHUP does) and says what came of it: 200 and what changed, or
/// 400 and the problems (the config in force stays).
async fn reload(axum::extract::State(state): axum::extract::State<State>) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = crate::reload::ReloadRequest { reply: Some(reply) };
    if state.reload.send(request).await.is_err() {
        return stopping();
    }
    match answer.await {
        Ok(Ok(what)) => (StatusCode::OK, format!("{what}\n")).into_response(),
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
        Err(_) => stopping(),
    }
}

/// 503: the agent is stopping and takes no more requests of this kind.
fn stopping() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, format!("{}\n", message.into())).into_response()
}

fn too_large(limit: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes (server.max_body_bytes)\n"),
    )
        .into_response()
}

async fn classify_upload(
    axum::extract::State(state): axum::extract::State<State>,
    request: Request,
) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let Ok(_turn) = state.classifying.acquire().await else {
        return stopping();
    };
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        read_body(body, declared, state.max_body_bytes),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(response)) => return response,
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s\n",
                    BODY_TIMEOUT.as_secs()
                ),
            )
                .into_response()
        }
    };
    if content_type.starts_with("application/json") {
        let rows: Vec<classify::JsonRow> = match serde_json::from_slice(&body) {
            Ok(rows) => rows,
            Err(e) => {
                return bad_request(format!(
                    "expected a JSON array of {{\"source\", \"log_message\"}} objects: {e}"
                ))
            }
        };
        let records = classify::label_all(
            &state.tiers.load_full(),
            classify::json_events(rows),
            state.max_lines,
        )
        .await;
        return (
            [(header::CONTENT_TYPE, "application/json")],
            crate::event::json_array(&records),
        )
            .into_response();
    }
    let csv_bytes = if content_type.starts_with("multipart/form-data") {
        let request = Request::from_parts(parts, Body::from(body));
        let mut multipart = match Multipart::from_request(request, &()).await {
            Ok(m) => m,
            Err(e) => return bad_request(format!("bad multipart body: {}", e.body_text())),
        };
        match file_field(&mut multipart).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return bad_request(
                    "the multipart form has no `file` field (upload the CSV as `file`)",
                )
            }
            Err(e) => return bad_request(format!("bad multipart body: {}", e.body_text())),
        }
    } else {
        body
    };
    let table = match classify::read_csv(&csv_bytes) {
        Ok(t) => t,
        Err(problem) => return bad_request(problem),
    };
    let records =
        classify::label_all(&state.tiers.load_full(), table.events(), state.max_lines).await;
    (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        table.write(&records),
    )
        .into_response()
}

/// The bytes of the form's `file` field, if it has one.
async fn file_field(multipart: &mut Multipart) -> Result<Option<Bytes>, MultipartError> {
    while let Some(field) = multipart.next_field().await? {
        if field.name() == Some("file") {
            return Ok(Some(field.bytes().await?));
        }
    }
    Ok(None)
}

/// How much of an oversized body is read and thrown away before the 413 goes out, and for how
/// long. A server that answers while the client is still sending, and then closes, resets the
/// connection under the client, which then reports a broken pipe instead of the 413; reading
/// the rest first (what nginx calls a lingering close) lets the client see the answer. Bodies
/// declared larger than this are refused at once.
const DRAIN_MAX_BYTES: usize = 64 << 20;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// The request body, if it is at most `limit` bytes; otherwise a 413, sent after the rest of
/// the body (within [`DRAIN_MAX_BYTES`] and [`DRAIN_MAX_TIME`]) has been read and dropped.
async fn read_body(body: Body, declared: Option<usize>, limit: usize) -> Result<Bytes, Response> {
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_MAX_BYTES)) {
        return Err(too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad_request(format!("cannot read the request body: {e}")))?;
        if kept.len() + chunk.len() > limit {
            let mut seen = kept.len() + chunk.len();
            drop(kept);
            let _ = tokio::time::timeout(DRAIN_MAX_TIME, async {
                while seen <= limit.saturating_add(DRAIN_MAX_BYTES) {
                    match stream.next().await {
                        Some(Ok(chunk)) => seen += chunk.len(),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(too_large(limit));
        }
        kept.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(kept))
}
