//! What every request leaves behind: a request id, an access-log line, its
//! latency in the metrics and, for `/v1/*`, one audit record.
//!
//! Handlers fill an [`AuditSlot`] that the middleware put into the request;
//! the middleware writes the record once the status is known. A streamed
//! answer is only complete when its stream ends, so such a handler defers
//! the record and its stream task writes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ErrorCode;
use super::AppState;
use crate::gateway::audit::AuditRecord;
use crate::gateway::rfc3339_now;
use crate::generate::Answer;
use crate::retrieve::Hit;

/// The route label of a path: one of the known endpoints or `other`, so
/// metrics labels stay bounded whatever clients send.
pub fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 12] = [
        "/v1/query",
        "/v1/search",
        "/v1/chat/completions",
        "/v1/documents",
        "/healthz",
        "/metrics",
        "/v1/models",
        "/mcp",
        "/v1/approvals",
        "/v1/agents",
        "/v1/agents/stop",
        "/v1/agents/resume",
    ];
    if let Some(r) = ROUTES.into_iter().find(|r| *r == path) {
        return r;
    }
    // One label for every approval id.
    match path.strip_prefix("/v1/approvals/") {
        Some(id) if !id.is_empty() && !id.contains('/') => "/v1/approvals/{id}",
        _ => "other",
    }
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

struct SlotState {
    record: AuditRecord,
    question: Option<String>,
    started: Instant,
    deferred: bool,
}

/// The audit record of one request, filled as the request goes.
#[derive(Clone)]
pub struct AuditSlot(Arc<Mutex<SlotState>>);

impl AuditSlot {
    fn new(request_id: &str, endpoint: &str) -> AuditSlot {
        AuditSlot(Arc::new(Mutex::new(SlotState {
            record: AuditRecord {
                request_id: request_id.to_string(),
                endpoint: endpoint.to_string(),
                ..AuditRecord::default()
            },
            question: None,
            started: Instant::now(),
            deferred: false,
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut SlotState) -> R) -> R {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn request_id(&self) -> String {
        self.with(|s| s.record.request_id.clone())
    }

    pub fn set_principal(&self, name: &str) {
        self.with(|s| s.record.principal = name.to_string());
    }

    /// The question (the log keeps its hash, and its masked text if configured).
    pub fn set_question(&self, q: &str) {
        self.with(|s| s.question = Some(q.to_string()));
    }

    pub fn set_hits(&self, hits: &[Hit]) {
        self.with(|s| {
            s.record.chunks = hits.iter().map(|h| h.chunk_id.clone()).collect();
            let mut docs: Vec<String> = Vec::new();
            for h in hits {
                if !docs.contains(&h.doc) {
                    docs.push(h.doc.clone());
                }
            }
            s.record.docs = docs;
            for h in hits {
                if h.injection.is_some()
                    && !s.record.flags.iter().any(|f| f == "injection_suspected")
                {
                    s.record.flags.push("injection_suspected".into());
                }
            }
        });
    }

    pub fn set_answer(&self, a: &Answer) {
        self.set_hits(&a.hits);
        self.with(|s| {
            let r = &mut s.record;
            r.provider = Some(a.route.provider.clone());
            r.locality = serde_json::to_value(a.route.locality)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            r.provider_errors = crate::generate::internal_details(&a.route.attempts);
            r.prompt_tokens = a.usage.prompt_tokens;
            r.completion_tokens = a.usage.completion_tokens;
            r.cost_usd = a.usage.cost_usd;
            let f = &a.flags;
            let mut add = |on: bool, name: &str| {
                if on && !r.flags.iter().any(|x| x == name) {
                    r.flags.push(name.to_string());
                }
            };
            add(!f.quarantined.is_empty(), "quarantined");
            add(f.query_injection.is_some(), "query_injection");
            add(f.pii_masked > 0, "pii_masked");
            add(!f.output_blocked.is_empty(), "output_blocked");
            for flag in &a.audit_flags {
                add(true, flag);
            }
            add(f.citations_removed > 0, "citations_removed");
            add(!f.unsupported_sentences.is_empty(), "unsupported_sentences");
        });
    }

    /// Provider failures in full (the caller saw only their kind).
    pub fn set_provider_errors(&self, errors: Vec<String>) {
        self.with(|s| s.record.provider_errors = errors);
    }

    /// Records a document change (uploads and deletions name the document).
    pub fn set_docs(&self, docs: Vec<String>) {
        self.with(|s| s.record.docs = docs);
    }

    /// Adds a flag (e.g. an approval decision).
    pub fn add_flag(&self, flag: String) {
        self.with(|s| s.record.flags.push(flag));
    }

    /// The stream task writes the record when the stream ends.
    pub fn defer(&self) {
        self.with(|s| s.deferred = true);
    }

    /// Writes the record of a deferred (streamed) request.
    pub fn finish_deferred(&self, st: &AppState, error: Option<&str>) {
        // The status line (200) went out when the stream started; a failure
        // during the stream is recorded as its error code.
        self.write(st, 200, error.map(str::to_string));
    }

    fn write(&self, st: &AppState, status: u16, error: Option<String>) {
        let Some(log) = &st.audit else {
            return;
        };
        let mut record = self.with(|s| {
            let mut r = s.record.clone();
            r.status = status;
            r.error = error;
            r.latency_ms = s.started.elapsed().as_millis() as u64;
            if let Some(q) = &s.question {
                log.question(q, &mut r);
            }
            r
        });
        record.time = rfc3339_now();
        if record.principal.is_empty() {
            record.principal = "-".into();
        }
        if let Err(e) = log.append(record) {
            st.metrics.audit_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("audit log: {e}");
        }
    }
}

/// Request id, access log, metrics and audit around every request.
pub async fn observe(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let method = req.method().clone();
    let rid = request_id(req.headers());
    let slot = AuditSlot::new(&rid, route);
    req.extensions_mut().insert(slot.clone());
    st.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let mut resp = next.run(req).await;
    st.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    st.metrics.observe_http(route, status, secs);
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let code = resp.extensions().get::<ErrorCode>().map(|c| c.0);
    let audited = route != "/healthz" && route != "/metrics";
    let deferred = slot.with(|s| s.deferred);
    let principal = slot.with(|s| s.record.principal.clone());
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
        slot.write(&st, status, code.map(str::to_string));
    }
    resp
}
