//! What every request leaves behind: a request id, an access-log line, its
//! latency in the metrics and, for `/v1/*`, one audit record.
//!
//! The middleware opens the request's [`Call`] (the service's audit
//! context) and puts it into the request; use cases fill it; the middleware
//! finishes it once the status is known. A streamed answer is only complete
//! when its stream ends, so such a handler defers the call and its stream
//! task finishes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ErrorCode;
use super::AppState;
use crate::service::Call;

/// The route label of a path: one of the known endpoints or `other`, so
/// metrics labels stay bounded whatever clients send.
pub fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 26] = [
        "/v1/query",
        "/v1/search",
        "/v1/chat/completions",
        "/v1/documents",
        "/v1/documents/page",
        "/v1/me",
        "/v1/usage",
        "/v1/audit",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/models",
        "/mcp",
        "/v1/approvals",
        "/v1/agents",
        "/v1/agents/stop",
        "/v1/agents/resume",
        "/",
        "/console/app.js",
        "/console/app.css",
        "/favicon.ico",
        "/console/oidc/config",
        "/console/oidc/login",
        "/console/oidc/callback",
        "/v1/workflows/runs",
        "/v1/workflows",
    ];
    if let Some(r) = ROUTES.into_iter().find(|r| *r == path) {
        return r;
    }
    // One label per route with ids in it.
    let segs: Vec<&str> = path.split('/').collect();
    let id = |s: &str| !s.is_empty();
    match segs.as_slice() {
        ["", "v1", "approvals", a] if id(a) => "/v1/approvals/{id}",
        ["", "v1", "workflows", "runs", r] if id(r) => "/v1/workflows/runs/{id}",
        ["", "v1", "workflows", "runs", r, "resume"] if id(r) => "/v1/workflows/runs/{id}/resume",
        ["", "v1", "workflows", n, "runs"] if id(n) => "/v1/workflows/{name}/runs",
        _ => "other",
    }
}

/// Whether requests to `route` get an audit line: not the probes and not the
/// console's static files and sign-in start (nothing is read or decided
/// there; the sign-in's callback is audited with who signed in).
fn audited(route: &str) -> bool {
    !matches!(
        route,
        "/healthz"
            | "/readyz"
            | "/metrics"
            | "/"
            | "/console/app.js"
            | "/console/app.css"
            | "/favicon.ico"
            | "/console/oidc/config"
            | "/console/oidc/login"
    )
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The caller's `X-Request-Id` if it is short and plain, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        if !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return v.to_string();
        }
    }
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{:x}-{:06x}",
        start,
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Request id, access log, metrics and audit around every request.
pub async fn observe(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let method = req.method().clone();
    let rid = request_id(req.headers());
    let call = Call::new(&rid, route);
    req.extensions_mut().insert(call.clone());
    let metrics = st.svc.metrics();
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let mut resp = next.run(req).await;
    metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics.observe_http(route, status, secs);
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let code = resp.extensions().get::<ErrorCode>().map(|c| c.0);
    let audited = audited(route);
    let deferred = call.is_deferred();
    let principal = call.principal();
    tracing::info!(
        request_id = %rid,
        %method,
        route,
        status,
        ms = (secs * 1000.0).round() as u64,
        principal = %principal,
        error = code.unwrap_or(""),
        "request"
    );
    if audited && !deferred {
        call.finish(&st.svc, status, code.map(str::to_string));
    }
    resp
}
