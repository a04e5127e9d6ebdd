//! `hort serve`: the HTTP API over one index.
//!
//! Connections: HTTP/1.1 with a deadline for every request head (which also
//! closes idle keep-alive connections) and at most `max_connections` open;
//! see [`serve_router`].
//!
//! Layers, outside in: request id + access log + metrics + audit
//! (`observe`); CORS (only if origins are configured); then, for `/v1/*`
//! and `/mcp`, admission control ([`limits`]): the credential and rate
//! limits, the caller's own share of slots, the body (with its own time
//! limit), a server-wide slot (503 at once rather than a queue that grows
//! without bound) and the request deadline. `/healthz` and `/metrics` stay
//! outside the limit so monitoring works under load.
//!
//! Every `/v1/*` handler takes an [`Authed`] caller (the one admission
//! control authenticated). CPU-heavy work (embedding, search, parsing) runs
//! on the blocking pool. Errors are [`ApiError`]s, mapped to statuses in one
//! place.

mod agents;
pub(crate) mod api;
mod console;
pub(crate) mod documents;
pub mod error;
pub mod limits;
mod observe;
mod oidc;
mod openai;
mod workflows;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Extension, Router};

pub use crate::auth::{key_hash_hex, Authenticator, Caller};
pub use error::ApiError;
use error::BodyLimit;

use crate::config::{Config, ServerConfig};
use crate::embed::Embedder;
use crate::service::Error;
use crate::service::Service;

/// Runs synchronous service work (files, the database through the storage
/// contract, the gateway's books) on the blocking pool, so that no async
/// worker waits on it.
pub(crate) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Service(Error::Internal(format!("a worker failed: {e}"))))
}

/// What the handlers share: the service, and what only HTTP needs
/// (authentication, admission control, the MCP sessions of this server).
pub struct AppState {
    pub(crate) svc: Arc<Service>,
    auth: Authenticator,
    /// Admission control: slots per principal and server-wide, time limits.
    limits: limits::Limits,
    server: ServerConfig,
    /// MCP sessions over HTTP, by `Mcp-Session-Id`.
    mcp_sessions: std::sync::Mutex<std::collections::HashMap<String, Arc<crate::mcp::Session>>>,
}

impl AppState {
    /// The state of a server over `svc`: authentication, limits, MCP sessions.
    pub fn new(svc: Arc<Service>) -> Result<AppState, ServeError> {
        let cfg = svc.config();
        let auth =
            Authenticator::new(cfg).map_err(|e| ServeError::Config(format!("auth.jwt: {e}")))?;
        Ok(AppState {
            auth,
            limits: limits::Limits::new(&cfg.server),
            server: cfg.server.clone(),
            mcp_sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
            svc,
        })
    }

    /// The service behind the API.
    pub fn service(&self) -> &Arc<Service> {
        &self.svc
    }
}

/// Refuses callers without the admin role; `what` names the action in the message.
fn require_admin(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.has_role("admin") {
        Ok(())
    } else {
        Err(ApiError::Service(Error::Forbidden(format!(
            "{what} needs the admin role"
        ))))
    }
}

/// The caller admission control authenticated (and held to its rate
/// limits). A route outside admission control has none: 401, fail closed.
pub struct Authed(pub Caller);

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<AppState>) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Authed)
            .ok_or(ApiError::Service(Error::Unauthorized))
    }
}

fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(list)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// The routes of the HTTP API with their layers.
pub fn router(state: Arc<AppState>) -> Router {
    let sv = &state.server;
    let body = state.limits.body_limit("");
    let upload = state.limits.body_limit("/v1/documents");
    let v1 = Router::new()
        .route("/v1/search", post(api::search))
        .route("/v1/query", post(api::query))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/usage", get(api::usage))
        .route("/v1/audit", get(api::audit))
        .route("/v1/me", get(documents::me))
        .route("/v1/documents/page", get(documents::page))
        .route(
            "/v1/documents",
            post(documents::upload)
                .delete(documents::remove)
                .get(documents::list)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(upload))
                .layer::<_, std::convert::Infallible>(Extension(BodyLimit(upload))),
        )
        .route("/v1/approvals", get(agents::approvals_list))
        .route(
            "/v1/approvals/{id}",
            get(agents::approval_get).post(agents::approval_decide),
        )
        .route("/v1/workflows/{name}/runs", post(workflows::start))
        .route("/v1/workflows/runs/{id}", get(workflows::get))
        .route("/v1/workflows/runs/{id}/resume", post(workflows::resume))
        .route("/v1/agents", get(agents::agents_status))
        .route("/v1/agents/stop", post(agents::agents_stop))
        .route("/v1/agents/resume", post(agents::agents_resume))
        .route(
            "/mcp",
            post(agents::mcp_post)
                .get(agents::mcp_get)
                .delete(agents::mcp_delete),
        )
        .layer(DefaultBodyLimit::max(body))
        .layer(Extension(BodyLimit(body)))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::admit,
        ));
    let mut app = Router::new()
        .route("/", get(console::index))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style))
        .route("/favicon.ico", get(console::favicon))
        .route("/console/oidc/config", get(oidc::config))
        .route("/console/oidc/login", get(oidc::login))
        .route("/console/oidc/callback", get(oidc::callback))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .merge(v1)
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ));
    if let Some(c) = cors(&sv.cors_origins) {
        app = app.layer(c);
    }
    app.with_state(state)
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A use case failed at start.
    #[error(transparent)]
    Service(#[from] crate::service::Error),
    /// The service could not be opened.
    #[error(transparent)]
    Open(#[from] crate::service::OpenError),
    /// The configuration cannot be served.
    #[error("configuration: {0}")]
    Config(String),
    /// An I/O error of the listener.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the configured store until Ctrl-C or SIGTERM; in-flight requests
/// finish and the audit log is flushed. `on_ready` gets the bound address
/// (useful with port 0).
pub async fn serve(
    cfg: &Config,
    index: &Path,
    addr: &str,
    embedder: Arc<dyn Embedder>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let svc = Arc::new(Service::open(cfg, embedder, index, false)?);
    svc.warm_up();
    let state = Arc::new(AppState::new(svc.clone())?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr()?;
    // Pick up commits of concurrent ingests.
    let refresher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let r = svc.clone();
            match tokio::task::spawn_blocking(move || r.refresh()).await {
                Ok(Ok(true)) => tracing::info!("switched to a new index generation"),
                Ok(Err(e)) => tracing::warn!("index refresh failed: {e}"),
                _ => {}
            }
        }
    });
    on_ready(local);
    serve_router(
        listener,
        router(state.clone()),
        &cfg.server,
        shutdown_signal(),
    )
    .await;
    refresher.abort();
    state.svc.flush();
    tracing::info!("stopped");
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (up to the request timeout) and returns.
///
/// HTTP/1.1 through hyper with a timer, so that a client gets
/// `header_timeout_s` to send each request head: a connection that opens and
/// sends nothing (or trickles its headers, or idles between keep-alive
/// requests) is closed then, and holds nothing of the server's meanwhile.
/// At most `max_connections` are open; further clients wait in the
/// listen queue. Bodies have their own limit in admission control.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    sv: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let max = sv.max_connections;
    let connections = Arc::new(tokio::sync::Semaphore::new(max));
    let header_timeout = Duration::from_secs(sv.header_timeout_s);
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors and the like: pause, do not spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(axum::body::Body::new))
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let closing = async move {
                let _ = closed.wait_for(|c| *c).await;
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closing => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = closing.send(true);
    // Every connection hands its permit back when it is done.
    let grace = Duration::from_secs(sv.request_timeout_s.saturating_add(5));
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, connections.acquire_many(all)).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
