//! The native endpoints: `/v1/search`, `/v1/query`, `/v1/usage`,
//! `/healthz`, `/metrics` — HTTP over the service's use cases.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson};
use super::limits::Admission;
use super::{AppState, Authed};
use crate::gateway::metrics::IndexGauges;
use crate::gateway::{BudgetStatus, SpendRow};
use crate::generate::StreamEvent;
use crate::retrieve::Hit;
use crate::service::Error;
use crate::service::{Call, Query};
use crate::store::docfilter::DocFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    pub k: Option<usize>,
    /// Metadata filter: `path_prefix`, `file_types`, `modified_after`, `modified_before`.
    #[serde(default)]
    pub filter: Option<DocFilter>,
    /// Also say why each hit ranked where it did (both scores, the plan,
    /// the filters applied).
    #[serde(default)]
    pub explain: bool,
}

#[derive(Serialize)]
pub struct SearchResponse {
    pub hits: Vec<Hit>,
    /// Read from a streaming replica this far behind the primary (at most
    /// `[store] max_staleness_s`); absent when nothing searched can be stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staleness_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<crate::service::SearchExplain>,
}

pub async fn search(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Response, ApiError> {
    let q = Query {
        text: &req.query,
        k: req.k,
        filter: req.filter.as_ref(),
    };
    let found = st.svc.search(&call, &caller.principal, q).await?;
    // Stage times only: nothing about the content or the access rules.
    let timing = found.stages.server_timing(found.search_ms);
    let explain = req.explain.then(|| {
        st.svc
            .explain(&found, &caller.principal, req.filter.as_ref())
    });
    Ok((
        [(
            axum::http::header::HeaderName::from_static("server-timing"),
            timing,
        )],
        Json(SearchResponse {
            staleness_ms: Some(found.staleness.as_millis() as u64).filter(|&ms| ms > 0),
            hits: found.hits,
            explain,
        }),
    )
        .into_response())
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

/// A receiver as a stream (ends when every sender is gone).
pub(super) fn channel_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

pub async fn query(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Extension(admission): Extension<Admission>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let principal = caller.principal;
    if !req.stream {
        let q = Query {
            text: &req.query,
            k: req.k,
            filter: req.filter.as_ref(),
        };
        let a = st.svc.ask(&call, &principal, q, None).await?;
        let status = a.cache.as_ref().map(|c| c.header());
        let mut r = Json(a).into_response();
        if let Some(v) = status.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
            r.headers_mut()
                .insert(header::HeaderName::from_static("cache-status"), v);
        }
        return Ok(r);
    }
    call.defer();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<StreamEvent>();
    let (out, events) = tokio::sync::mpsc::unbounded_channel::<Result<Event, Infallible>>();
    // Generation runs in its own task; its events are relayed as they come.
    let relay = tokio::spawn({
        let out = out.clone();
        async move {
            let mut rx = rx;
            while let Some(ev) = rx.recv().await {
                let e = match ev {
                    StreamEvent::Delta(t) => Event::default()
                        .event("delta")
                        .data(serde_json::json!({ "text": t }).to_string()),
                    StreamEvent::Reset => Event::default().event("reset").data("{}"),
                    StreamEvent::Done(a) => Event::default()
                        .event("done")
                        .data(serde_json::to_string(&*a).unwrap_or_default()),
                };
                if out.send(Ok(e)).is_err() {
                    break;
                }
            }
        }
    });
    let svc = st.svc.clone();
    // The task holds the request's slots and deadline until the stream ends.
    tokio::spawn(async move {
        let q = Query {
            text: &req.query,
            k: req.k,
            filter: req.filter.as_ref(),
        };
        let generation = svc.ask(&call, &principal, q, Some(tx));
        let result: Result<(), ApiError> = tokio::select! {
            r = tokio::time::timeout_at(admission.deadline(), generation) => match r {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(admission.timeout_error()),
            },
            _ = out.closed() => Err(ApiError::Service(Error::BadRequest("the client went away".into()))),
        };
        let _ = relay.await;
        match result {
            Ok(()) => call.finish(&svc, 200, None),
            Err(e) => {
                // The status line (200) went out when the stream started: the
                // failure is an `error` event, and the record's error code.
                let _ = out.send(Ok(Event::default()
                    .event("error")
                    .data(e.body().to_string())));
                call.finish(&svc, 200, Some(e.status_code().1.to_string()));
            }
        }
        drop(admission);
    });
    Ok(Sse::new(channel_stream(events))
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Serialize)]
pub struct UsageResponse {
    pub usage: Vec<SpendRow>,
    /// Spending this month against each budget the caller may see.
    pub budgets: Vec<BudgetStatus>,
}

/// `GET /v1/usage`: spending of the caller and its teams (admins: everyone).
pub async fn usage(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
) -> Result<Json<UsageResponse>, ApiError> {
    let svc = st.svc.clone();
    super::off_runtime(move || {
        Json(UsageResponse {
            usage: svc.usage(&caller.principal, &caller.roles),
            budgets: svc.budgets(&caller.principal, &caller.roles),
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Records wanted (1–500, default 20).
    #[serde(default = "default_audit_limit")]
    limit: usize,
    /// Admins: one principal's records only.
    principal: Option<String>,
    /// Admins: walk the whole chain and report what is wrong.
    #[serde(default)]
    verify: bool,
}

fn default_audit_limit() -> usize {
    20
}

/// `GET /v1/audit`: the caller's newest audit records (admins: anyone's)
/// and the state of the chain.
pub async fn audit(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
    axum::extract::Query(p): axum::extract::Query<AuditParams>,
) -> Result<Json<crate::service::AuditTrail>, ApiError> {
    Ok(Json(
        st.svc
            .audit_trail(
                &caller.principal,
                &caller.roles,
                p.principal,
                p.limit,
                p.verify,
            )
            .await?,
    ))
}

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    generation: u64,
    documents: usize,
    chunks: usize,
}

pub async fn healthz(State(st): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    let svc = st.svc.clone();
    let s = super::off_runtime(move || svc.stats()).await??;
    Ok(Json(Health {
        status: "ok",
        generation: s.generation,
        documents: s.documents,
        chunks: s.chunks,
    }))
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    waiting_for: Vec<&'static str>,
}

/// 200 once a question no longer waits for anything read at start (the
/// dictionary), else 503: what a load balancer's readiness probe asks;
/// `/healthz` says the node is alive.
pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let waiting_for = st.svc.waiting_for();
    let (code, status) = if waiting_for.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    };
    (
        code,
        Json(Readiness {
            status,
            waiting_for,
        }),
    )
        .into_response()
}

pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let svc = st.svc.clone();
    let s = tokio::task::spawn_blocking(move || svc.stats())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let gauges = IndexGauges {
        generation: s.generation,
        documents: s.documents,
        chunks: s.chunks,
        segments: s.segments,
        bytes: s.bytes,
        agents_stopped: st.svc.agents_stopped(),
        audit_broken: st.svc.gateway().audit_broken().is_some(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let m = st.svc.metrics();
            let mut text = m.render(&gauges);
            text.push_str(&crate::gateway::metrics::render_gateway(
                st.svc.gateway(),
                m.policy_refused.load(std::sync::atomic::Ordering::Relaxed),
            ));
            text
        },
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::Service(Error::NotFound("no such endpoint".into()))
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
