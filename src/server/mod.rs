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
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::acl::Principal;
use crate::config::Config;
use crate::embed::Embedder;
use crate::retrieve::{self, Hit, SearchParams};
use crate::store::docfilter::DocFilter;
use crate::store::{IndexReader, StoreError};

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
    pub fn new(cfg: &Config, reader: Arc<IndexReader>, embedder: Arc<dyn Embedder>) -> AppState {
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

async fn search(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let principal = st.authenticate(&headers)?;
    let k = req.k.unwrap_or(st.params.k);
    if k == 0 || k > st.max_k {
        return Err(ApiError::BadRequest(format!(
            "k must be between 1 and {}",
            st.max_k
        )));
    }
    if req.query.trim().is_empty() {
        return Err(ApiError::BadRequest("query must not be empty".into()));
    }
    if req.query.chars().count() > st.max_query_chars {
        return Err(ApiError::BadRequest(format!(
            "query is longer than {} characters",
            st.max_query_chars
        )));
    }
    let docs = match &req.filter {
        Some(f) => Some(
            f.compile()
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let st2 = st.clone();
    let hits = tokio::task::spawn_blocking(move || {
        let snap = st2.reader.snapshot();
        let r = retrieve::Request {
            query: &req.query,
            k,
            docs: docs.as_ref(),
        };
        retrieve::search(&snap, st2.embedder.as_ref(), &principal, &r, &st2.params).map(|r| r.hits)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(SearchResponse { hits }))
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
        .route("/v1/query", post(search))
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
    let state = Arc::new(AppState::new(cfg, reader.clone(), embedder));
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
