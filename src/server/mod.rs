//! `hort serve`: the HTTP API over one index.
//!
//! Connections: HTTP/1.1 with a deadline for every request head (which also
//! closes idle keep-alive connections) and at most `max_connections` open;
//! see [`serve_router`].
//!
//! Layers, outside in: request id + access log + metrics + audit
//! ([`observe`]); CORS (only if origins are configured); then, for `/v1/*`
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
pub mod auth;
pub(crate) mod documents;
pub mod error;
pub mod limits;
pub mod metrics;
mod observe;
mod openai;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Extension, Router};

pub use auth::{key_hash_hex, Authenticator, Caller};
pub use error::ApiError;
use error::BodyLimit;
use metrics::Metrics;
pub use observe::AuditSlot;

use crate::config::{Config, ServerConfig};
use crate::embed::Embedder;
use crate::gateway::audit::AuditLog;
use crate::gateway::Gateway;
use crate::generate::Generator;
use crate::ingest::IngestOptions;
use crate::retrieve::SearchParams;
use crate::store::pg::PgStore;
use crate::store::{IndexReader, StoreError, View};

pub struct AppState {
    /// The node's embedded index: what it serves on the embedded backend,
    /// its ingest staging area on PostgreSQL.
    pub(crate) reader: Arc<IndexReader>,
    /// The database, on the PostgreSQL backend.
    pub(crate) pg: Option<Arc<PgStore>>,
    /// The optional cross-encoder (`[retrieve] reranker`).
    pub(crate) reranker: Option<Arc<dyn crate::retrieve::rerank::Reranker>>,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) generator: Arc<Generator>,
    pub(crate) gateway: Arc<Gateway>,
    auth: Authenticator,
    /// Admission control: slots per principal and server-wide, time limits.
    limits: limits::Limits,
    pub(crate) audit: Option<AuditLog>,
    pub(crate) metrics: Metrics,
    pub(crate) params: SearchParams,
    server: ServerConfig,
    pub(crate) config: Config,
    pub(crate) kill_switch: crate::mcp::KillSwitch,
    /// What each principal's agents used (calls, tokens), across sessions.
    pub(crate) agent_ledger: crate::mcp::ledger::Ledger,
    /// MCP sessions over HTTP, by `Mcp-Session-Id`.
    mcp_sessions: std::sync::Mutex<std::collections::HashMap<String, Arc<crate::mcp::Session>>>,
    index_dir: PathBuf,
    ingest: IngestOptions,
    /// Uploads and deletions through the API, one at a time.
    writer: tokio::sync::Mutex<()>,
}

impl AppState {
    /// Everything the handlers share; opens the usage journal and the audit log.
    pub fn new(
        cfg: &Config,
        index_dir: &Path,
        reader: Arc<IndexReader>,
        embedder: Arc<dyn Embedder>,
    ) -> Result<AppState, ServeError> {
        let gateway = Arc::new(
            Gateway::open(cfg, &cfg.resolve(&cfg.gateway.usage_path))
                .map_err(|e| ServeError::Config(format!("usage journal: {e}")))?,
        );
        let generator = Arc::new(
            Generator::from_config(cfg, gateway.clone())
                .map_err(|e| ServeError::Config(e.to_string()))?,
        );
        let auth =
            Authenticator::new(cfg).map_err(|e| ServeError::Config(format!("auth.jwt: {e}")))?;
        let audit = match &cfg.audit.path {
            None => None,
            Some(p) => Some(
                AuditLog::open(&cfg.resolve(p), cfg.audit.fsync, cfg.audit.log_query_text)
                    .map_err(|e| ServeError::Config(format!("audit log: {e}")))?,
            ),
        };
        let mut ingest = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
        ingest.progress = false;
        let reranker: Option<Arc<dyn crate::retrieve::rerank::Reranker>> =
            match &cfg.retrieve.reranker {
                None => None,
                Some(dir) => Some(Arc::new(
                    crate::retrieve::rerank::CrossEncoder::load(
                        &cfg.resolve(dir),
                        &crate::embed::runtime_path(&cfg.embed, |p| cfg.resolve(p)),
                        512,
                        cfg.embed.threads,
                    )
                    .map_err(|e| ServeError::Config(format!("retrieve.reranker: {e}")))?,
                )),
            };
        Ok(AppState {
            reader,
            pg: None,
            reranker,
            embedder,
            generator,
            gateway,
            auth,
            limits: limits::Limits::new(&cfg.server),
            audit,
            metrics: Metrics::default(),
            params: SearchParams::from_config(cfg),
            server: cfg.server.clone(),
            config: cfg.clone(),
            kill_switch: crate::mcp::KillSwitch::new(cfg),
            agent_ledger: Default::default(),
            mcp_sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
            index_dir: index_dir.to_path_buf(),
            ingest,
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Serves from PostgreSQL: searches, usage, rate limits and the audit
    /// chain go to `pg` (shared with the other nodes).
    pub fn with_postgres(mut self, pg: Arc<PgStore>) -> Result<AppState, ServeError> {
        self.gateway = Arc::new(Gateway::new(&self.config).shared(pg.clone()));
        self.generator = Arc::new(
            Generator::from_config(&self.config, self.gateway.clone())
                .map_err(|e| ServeError::Config(e.to_string()))?,
        );
        if let Some(a) = self.audit.take() {
            self.audit = Some(a.shared(pg.clone()));
        }
        self.pg = Some(pg);
        Ok(self)
    }

    /// What queries read now.
    pub(crate) fn view(&self) -> View {
        match &self.pg {
            Some(pg) => View::Postgres(pg.clone()),
            None => View::Embedded(self.reader.snapshot()),
        }
    }

    /// How uploads are parsed (the default runs PDFs in a `hort` subprocess).
    pub fn with_ingest_options(mut self, opts: IngestOptions) -> AppState {
        self.ingest = opts;
        self
    }

    /// Writes pending audit records to disk (at shutdown).
    pub fn flush(&self) {
        if let Some(a) = &self.audit {
            a.flush();
        }
    }
}

/// Refuses callers without the admin role; `what` names the action in the message.
fn require_admin(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.has_role("admin") {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("{what} needs the admin role")))
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
            .ok_or(ApiError::Unauthorized)
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

pub fn router(state: Arc<AppState>) -> Router {
    let sv = &state.server;
    let body = state.limits.body_limit("");
    let upload = state.limits.body_limit("/v1/documents");
    let v1 = Router::new()
        .route("/v1/search", post(api::search))
        .route("/v1/query", post(api::query))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .route(
            "/v1/documents",
            post(documents::upload)
                .delete(documents::remove)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(upload))
                .layer::<_, std::convert::Infallible>(Extension(BodyLimit(upload))),
        )
        .route("/v1/approvals", get(agents::approvals_list))
        .route(
            "/v1/approvals/{id}",
            get(agents::approval_get).post(agents::approval_decide),
        )
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
        .route("/healthz", get(api::healthz))
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

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the index at `index` until Ctrl-C or SIGTERM; in-flight requests
/// finish and the audit log is flushed. `on_ready` gets the bound address
/// (useful with port 0).
/// The reader and the shared state of one node: on the PostgreSQL backend
/// the database (migrated if new) and the node's staging index (created if
/// new); on the embedded backend the index at `index`.
pub fn open_node(
    cfg: &Config,
    index: &Path,
    embedder: Arc<dyn Embedder>,
) -> Result<(Arc<IndexReader>, AppState), ServeError> {
    let pg = crate::ingest::open_database(cfg, embedder.as_ref())
        .map_err(|e| ServeError::Config(e.to_string()))?;
    if pg.is_some() && !index.join(crate::store::manifest::FILE).exists() {
        let opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
        crate::store::IndexWriter::open(
            index,
            embedder.id(),
            embedder.dim(),
            &opts.chunk.fingerprint(),
            opts.graph,
        )?
        .initialise()?;
    }
    let reader = Arc::new(IndexReader::open(index)?);
    let mut state = AppState::new(cfg, index, reader.clone(), embedder)?;
    if let Some(pg) = pg {
        state = state.with_postgres(pg)?;
    }
    Ok((reader, state))
}

pub async fn serve(
    cfg: &Config,
    index: &Path,
    addr: &str,
    embedder: Arc<dyn Embedder>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let (reader, state) = open_node(cfg, index, embedder)?;
    let state = Arc::new(state);
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
            let r = reader.clone();
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
    state.flush();
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
