//! Admission control for `/v1/*` and `/mcp`: who may take a slot, when,
//! and for how long.
//!
//! The order is chosen so that a slow or hostile client only ever costs
//! itself:
//! 1. the credential is checked from the headers alone (401 before any body
//!    is read), then the caller's rate limits;
//! 2. the caller takes one of its own slots (`max_concurrency_per_principal`,
//!    429 `concurrency_limited` when they are all busy) — a client that opens
//!    many slow uploads fills only its own share;
//! 3. the body is read in full, within `body_timeout_s` (408) and the route's
//!    size limit (413);
//! 4. only then is a server-wide slot taken (`max_concurrency`, 503
//!    `overloaded` when none is free), so slots are held by work, not by
//!    clients that trickle bytes;
//! 5. the handler runs under the request deadline (`request_timeout_s`).
//!
//! Both slots and the deadline travel with the request as an [`Admission`].
//! A handler that answers with a stream moves a clone of it into the task
//! that produces the stream, so the slots stay taken and the deadline holds
//! until the stream's last event, not only until the handler returns.
//!
//! Headers are bounded by the connection layer (`header_timeout_s`, see
//! [`super::serve`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::ApiError;
use super::AppState;
use crate::auth::Caller;
use crate::config::ServerConfig;
use crate::service::Call;
use crate::service::Error;

/// Entries of idle principals are dropped once the table is this large.
const MAX_TRACKED_PRINCIPALS: usize = 10_000;

/// Admission control: slots for all requests and per principal, and the time limits.
pub struct Limits {
    global: Arc<Semaphore>,
    per_principal: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_principal_max: usize,
    body_timeout: Duration,
    request_timeout: Duration,
    /// Body limits: ordinary requests, and document uploads.
    body_limit: usize,
    upload_limit: usize,
}

/// A request's slots and deadline; clone it into a task that outlives the
/// handler (a stream) to keep them.
#[derive(Clone)]
pub struct Admission(Arc<Held>);

struct Held {
    _own: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    deadline: Instant,
    timeout_s: u64,
}

impl Admission {
    /// When the request (its stream included) must have ended.
    pub fn deadline(&self) -> Instant {
        self.0.deadline
    }

    /// The error a request past its deadline ends with.
    pub fn timeout_error(&self) -> ApiError {
        ApiError::Timeout(self.0.timeout_s)
    }
}

impl Limits {
    /// The limits of `[server]`.
    pub fn new(sv: &ServerConfig) -> Limits {
        let body_limit = sv.max_body_kb.saturating_mul(1024);
        // Uploads carry the document as base64 (4 bytes per 3) inside JSON.
        let upload_limit = sv.max_upload_mb.saturating_mul(1024 * 1024) / 3 * 4 + 64 * 1024;
        Limits {
            global: Arc::new(Semaphore::new(sv.max_concurrency)),
            per_principal: Mutex::new(HashMap::new()),
            per_principal_max: sv.per_principal(),
            body_timeout: Duration::from_secs(sv.body_timeout_s),
            request_timeout: Duration::from_secs(sv.request_timeout_s),
            body_limit,
            upload_limit,
        }
    }

    /// The body limit of a route (uploads may be larger).
    pub fn body_limit(&self, path: &str) -> usize {
        if path == "/v1/documents" {
            self.upload_limit
        } else {
            self.body_limit
        }
    }

    fn own_slot(&self, principal: &str) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut map = crate::sync::lock(&self.per_principal);
            if map.len() >= MAX_TRACKED_PRINCIPALS && !map.contains_key(principal) {
                let max = self.per_principal_max;
                map.retain(|_, s| s.available_permits() < max);
            }
            map.entry(principal.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_principal_max)))
                .clone()
        };
        sem.try_acquire_owned().ok()
    }
}

/// Reads a whole body within `limit` bytes and `within` time.
async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Bytes, ApiError> {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::Service(Error::BadRequest(
                    "the request body could not be read".into(),
                ))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(ApiError::TooLarge(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(within, read).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::BodyTimeout(within.as_secs())),
    }
}

/// The middleware: authenticate, admit, read the body, run under the deadline.
pub async fn admit(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match admit_inner(st, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn admit_inner(st: Arc<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller: Caller = st
        .auth
        .authenticate(header)
        .ok_or(ApiError::Service(Error::Unauthorized))?;
    if let Some(call) = req.extensions().get::<Call>() {
        call.set_principal(&caller.principal.name);
    }
    // Shared rate limits are counted in the database: off the async
    // workers, like every other database call of a request.
    {
        let (svc, who, rpm) = (st.svc.clone(), caller.principal.clone(), caller.rpm);
        super::off_runtime(move || svc.admit(&who, rpm)).await??;
    }
    let limits = &st.limits;
    let metrics = st.svc.metrics();
    let own = limits.own_slot(&caller.principal.name).ok_or_else(|| {
        metrics.overloaded.fetch_add(1, Ordering::Relaxed);
        ApiError::TooManyConcurrent(limits.per_principal_max)
    })?;
    let (mut parts, body) = req.into_parts();
    let bytes = read_body(
        body,
        limits.body_limit(parts.uri.path()),
        limits.body_timeout,
    )
    .await?;
    let global = limits.global.clone().try_acquire_owned().map_err(|_| {
        metrics.overloaded.fetch_add(1, Ordering::Relaxed);
        ApiError::Overloaded
    })?;
    let deadline = Instant::now() + limits.request_timeout;
    let admission = Admission(Arc::new(Held {
        _own: own,
        _global: global,
        deadline,
        timeout_s: limits.request_timeout.as_secs(),
    }));
    parts.extensions.insert(caller);
    parts.extensions.insert(admission.clone());
    let req = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(r) => Ok(r),
        Err(_) => Err(admission.timeout_error()),
    }
}
