//! `hort serve`: the HTTP API over one index.
//!
//! Layers, outside in: request id + access log + metrics + audit
//! ([`observe`]); CORS (only if origins are configured); then, for `/v1/*`
//! only, load shedding at the concurrency limit (503 at once rather than a
//! queue that grows without bound) and a per-request timeout. `/healthz`
//! and `/metrics` stay outside the limit so monitoring works under load.
//!
//! Every `/v1/*` handler takes an [`Authed`] caller: the bearer credential
//! is checked (API key or JWT), then the rate limits of the principal and
//! its teams. CPU-heavy work (embedding, search, parsing) runs on the
//! blocking pool. Errors are [`ApiError`]s, mapped to statuses in one place.

mod agents;
pub(crate) mod api;
pub mod auth;
pub(crate) mod documents;
pub mod error;
pub mod metrics;
mod observe;
mod openai;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{BoxError, Extension, Router};
use tower::ServiceBuilder;

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
    pub(crate) audit: Option<AuditLog>,
    pub(crate) metrics: Metrics,
    pub(crate) params: SearchParams,
    server: ServerConfig,
    pub(crate) config: Config,
    pub(crate) kill_switch: crate::mcp::KillSwitch,
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
            audit,
            metrics: Metrics::default(),
            params: SearchParams::from_config(cfg),
            server: cfg.server.clone(),
            config: cfg.clone(),
            kill_switch: crate::mcp::KillSwitch::new(cfg),
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

/// An authenticated caller within its rate limits.
pub struct Authed(pub Caller);

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = st.auth.authenticate(header).ok_or(ApiError::Unauthorized)?;
        if let Some(slot) = parts.extensions.get::<AuditSlot>() {
            slot.set_principal(&caller.principal.name);
        }
        if let Err(e) = st.gateway.check_rate(&caller.principal, caller.rpm) {
            st.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::RateLimited {
                message: e.to_string(),
                retry_after_s: e.retry_after.as_secs_f64().ceil() as u64,
            });
        }
        Ok(Authed(caller))
    }
}

async fn tower_error(st: Arc<AppState>, err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        st.metrics.overloaded.fetch_add(1, Ordering::Relaxed);
        ApiError::Overloaded
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout(st.server.request_timeout_s)
    } else {
        ApiError::Internal(err.to_string())
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
    let body = sv.max_body_kb.saturating_mul(1024);
    // Uploads carry the document as base64 (4 bytes per 3) inside JSON.
    let upload = sv.max_upload_mb.saturating_mul(1024 * 1024) / 3 * 4 + 64 * 1024;
    let st = state.clone();
    // `Router::layer` clones the stack per route: the semaphore is shared so
    // the limit is one for the whole API.
    let permits = Arc::new(tokio::sync::Semaphore::new(sv.max_concurrency));
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |err: BoxError| {
            tower_error(st.clone(), err)
        }))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
            permits,
        ))
        .timeout(Duration::from_secs(sv.request_timeout_s));
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
        .layer(limits);
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
    let result = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    refresher.abort();
    state.flush();
    tracing::info!("stopped");
    result?;
    Ok(())
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
    tracing::info!("shutting down: finishing in-flight requests");
}
