//! `hort serve`: the HTTP API over one index.
//!
//! Every `/v1/*` call authenticates a bearer key (compared as SHA-256, in
//! constant time, against every principal, so timing reveals nothing), turns
//! it into a principal, and retrieves with that principal's access filter.
//! CPU-heavy work (embedding, search) runs on the blocking pool. One error
//! type maps to HTTP statuses in one place ([`ApiError`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::acl::Principal;
use crate::config::Config;
use crate::embed::Embedder;
use crate::gateway::Gateway;
use crate::generate::{GenerateError, Generator, StreamEvent};
use crate::retrieve::Hit;
use crate::retrieve::{self, SearchParams};
use crate::store::docfilter::DocFilter;
use crate::store::{IndexReader, Snapshot, StoreError};

/// Errors of the HTTP layer, each with its status and stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("request body too large")]
    TooLarge,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Budget(String),
    #[error("{0}")]
    Upstream(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Refused(_) => (StatusCode::BAD_REQUEST, "query_refused"),
            ApiError::Budget(_) => (StatusCode::TOO_MANY_REQUESTS, "budget_exceeded"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "provider_error"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<retrieve::RetrieveError> for ApiError {
    fn from(e: retrieve::RetrieveError) -> Self {
        match e {
            retrieve::RetrieveError::Store(StoreError::Busy(m)) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// JSON body extractor whose failures are this API's errors, not axum's text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

struct KeyEntry {
    hash: [u8; 32],
    principal: Principal,
}

pub struct AppState {
    reader: Arc<IndexReader>,
    embedder: Arc<dyn Embedder>,
    generator: Arc<Generator>,
    keys: Vec<KeyEntry>,
    params: SearchParams,
    max_k: usize,
    max_query_chars: usize,
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of an API key, in hex (what `hort.toml` stores).
pub fn key_hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl AppState {
    pub fn new(
        cfg: &Config,
        reader: Arc<IndexReader>,
        embedder: Arc<dyn Embedder>,
        generator: Arc<Generator>,
    ) -> AppState {
        let keys = cfg
            .principals
            .iter()
            .filter_map(|p| {
                let hash = parse_hex32(&p.api_key_sha256.as_deref()?.to_ascii_lowercase())?;
                Some(KeyEntry {
                    hash,
                    principal: Principal::new(&p.name, &p.teams, p.clearance),
                })
            })
            .collect();
        AppState {
            reader,
            embedder,
            generator,
            keys,
            params: SearchParams::from_config(cfg),
            max_k: cfg.server.max_k,
            max_query_chars: cfg.server.max_query_chars,
        }
    }

    /// The principal a bearer key belongs to. Every stored hash is compared,
    /// whatever matches, so the time taken does not depend on which (if any).
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let key = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found: Option<&Principal> = None;
        for k in &self.keys {
            let diff = k
                .hash
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(&k.principal);
            }
        }
        found.cloned().ok_or(ApiError::Unauthorized)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    pub k: Option<usize>,
    /// Metadata filter: `path_prefix`, `file_types`, `modified_after`, `modified_before`.
    #[serde(default)]
    pub filter: Option<DocFilter>,
}

#[derive(Serialize)]
pub struct SearchResponse {
    pub hits: Vec<Hit>,
}

/// Validates a request and retrieves with the principal's filter (off the
/// async runtime: embedding and search are CPU work).
async fn retrieve_hits(
    st: &Arc<AppState>,
    principal: &Principal,
    query: &str,
    k: Option<usize>,
    filter: Option<&DocFilter>,
) -> Result<(Arc<Snapshot>, Vec<Hit>), ApiError> {
    let k = k.unwrap_or(st.params.k);
    if k == 0 || k > st.max_k {
        return Err(ApiError::BadRequest(format!(
            "k must be between 1 and {}",
            st.max_k
        )));
    }
    if query.trim().is_empty() {
        return Err(ApiError::BadRequest("query must not be empty".into()));
    }
    if query.chars().count() > st.max_query_chars {
        return Err(ApiError::BadRequest(format!(
            "query is longer than {} characters",
            st.max_query_chars
        )));
    }
    let docs = match filter {
        Some(f) => Some(
            f.compile()
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let st2 = st.clone();
    let principal = principal.clone();
    let query = query.to_string();
    tokio::task::spawn_blocking(move || {
        let snap = st2.reader.snapshot();
        let r = retrieve::Request {
            query: &query,
            k,
            docs: docs.as_ref(),
        };
        let hits =
            retrieve::search(&snap, st2.embedder.as_ref(), &principal, &r, &st2.params)?.hits;
        Ok::<_, ApiError>((snap, hits))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

async fn search(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let principal = st.authenticate(&headers)?;
    let (_, hits) = retrieve_hits(&st, &principal, &req.query, req.k, req.filter.as_ref()).await?;
    Ok(Json(SearchResponse { hits }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub query: String,
    pub k: Option<usize>,
    #[serde(default)]
    pub filter: Option<DocFilter>,
    /// Server-Sent Events: `delta` (checked sentences), `reset`, `done` (the verified answer).
    #[serde(default)]
    pub stream: bool,
}

impl From<GenerateError> for ApiError {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::QueryRefused(_) => ApiError::Refused(e.to_string()),
            GenerateError::NoLocalProvider(_) => ApiError::Unavailable(e.to_string()),
            GenerateError::Budget(b) => ApiError::Budget(b.to_string()),
            GenerateError::AllFailed(_) => ApiError::Upstream(e.to_string()),
            GenerateError::Config(m) => ApiError::Internal(m),
        }
    }
}

async fn query(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let principal = st.authenticate(&headers)?;
    let (snap, hits) =
        retrieve_hits(&st, &principal, &req.query, req.k, req.filter.as_ref()).await?;
    if !req.stream {
        let a = st
            .generator
            .answer(&snap, &principal, &req.query, hits, None)
            .await?;
        return Ok(Json(a).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<StreamEvent>();
    let (etx, erx) =
        tokio::sync::mpsc::unbounded_channel::<Result<Event, std::convert::Infallible>>();
    let st2 = st.clone();
    let q = req.query.clone();
    tokio::spawn(async move {
        if let Err(e) = st2
            .generator
            .answer(&snap, &principal, &q, hits, Some(tx))
            .await
        {
            let api: ApiError = e.into();
            let (_, code) = api.status_code();
            let body = serde_json::json!({"error": {"code": code, "message": api.to_string()}});
            let _ = etx.send(Ok(Event::default().event("error").data(body.to_string())));
        }
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await?;
        let e = match ev {
            StreamEvent::Delta(t) => Event::default()
                .event("delta")
                .data(serde_json::json!({ "text": t }).to_string()),
            StreamEvent::Reset => Event::default().event("reset").data("{}"),
            StreamEvent::Done(a) => Event::default()
                .event("done")
                .data(serde_json::to_string(&*a).unwrap_or_default()),
        };
        Some((Ok::<_, std::convert::Infallible>(e), rx))
    });
    let errors =
        futures_util::stream::unfold(
            erx,
            |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
        );
    let merged = futures_util::stream::select(events, errors);
    Ok(Sse::new(merged)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    generation: u64,
    documents: usize,
    chunks: usize,
}

async fn healthz(State(st): State<Arc<AppState>>) -> Json<Health> {
    let snap = st.reader.snapshot();
    Json(Health {
        status: "ok",
        generation: snap.generation(),
        documents: snap.docs.len(),
        chunks: snap.live_chunks(),
    })
}

async fn not_found() -> ApiError {
    ApiError::BadRequest("no such endpoint".into())
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/search", post(search))
        .route("/v1/query", post(query))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
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

/// Serves the index at `index` until Ctrl-C or SIGTERM; in-flight requests finish.
/// `on_ready` gets the bound address (useful with port 0).
pub async fn serve(
    cfg: &Config,
    index: &Path,
    addr: &str,
    embedder: Arc<dyn Embedder>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let reader = Arc::new(IndexReader::open(index)?);
    let gateway = Arc::new(Gateway::new(cfg));
    let generator = Arc::new(
        Generator::from_config(cfg, gateway).map_err(|e| ServeError::Config(e.to_string()))?,
    );
    let state = Arc::new(AppState::new(cfg, reader.clone(), embedder, generator));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr()?;
    // Pick up commits of concurrent ingests.
    tokio::spawn(async move {
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
