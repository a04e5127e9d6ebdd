//! The native endpoints: `/v1/search`, `/v1/query`, `/healthz`, `/metrics`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson};
use super::limits::Admission;
use super::metrics::IndexGauges;
use super::{AppState, AuditSlot, Authed};
use crate::acl::Principal;
use crate::generate::{Answer, GenerateError, StreamEvent};
use crate::retrieve::{self, Hit};
use crate::store::docfilter::DocFilter;
use crate::store::View;

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
pub(crate) async fn retrieve_hits(
    st: &Arc<AppState>,
    principal: &Principal,
    query: &str,
    k: Option<usize>,
    filter: Option<&DocFilter>,
) -> Result<(View, Vec<Hit>), ApiError> {
    let k = k.unwrap_or(st.params.k);
    if k == 0 || k > st.server.max_k {
        return Err(ApiError::BadRequest(format!(
            "k must be between 1 and {}",
            st.server.max_k
        )));
    }
    if query.trim().is_empty() {
        return Err(ApiError::BadRequest("query must not be empty".into()));
    }
    if query.chars().count() > st.server.max_query_chars {
        return Err(ApiError::BadRequest(format!(
            "query is longer than {} characters",
            st.server.max_query_chars
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
        let view = st2.view();
        let r = retrieve::Request {
            query: &query,
            k,
            docs: docs.as_ref(),
        };
        let Some(rr) = &st2.reranker else {
            let hits =
                retrieve::search_view(&view, st2.embedder.as_ref(), &principal, &r, &st2.params)?
                    .hits;
            return Ok::<_, ApiError>((view, hits));
        };
        // More candidates for the cross-encoder to reorder, then k.
        let wide = retrieve::Request {
            k: k.max(st2.config.retrieve.rerank_candidates),
            ..r
        };
        let hits =
            retrieve::search_view(&view, st2.embedder.as_ref(), &principal, &wide, &st2.params)?
                .hits;
        let hits = retrieve::rerank::rerank(rr.as_ref(), &query, hits, k)
            .map_err(|e| ApiError::Internal(format!("reranker: {e}")))?;
        Ok((view, hits))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

pub async fn search(
    State(st): State<Arc<AppState>>,
    Extension(slot): Extension<AuditSlot>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    slot.set_question(&req.query);
    let (_, hits) = retrieve_hits(
        &st,
        &caller.principal,
        &req.query,
        req.k,
        req.filter.as_ref(),
    )
    .await?;
    slot.set_hits(&hits);
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

/// Refuses callers whose monthly budget is spent, before any work.
pub(crate) fn check_budget(st: &AppState, p: &Principal) -> Result<(), ApiError> {
    st.gateway.check_spent(p).map_err(|e| {
        st.metrics.budget_refused.fetch_add(1, Ordering::Relaxed);
        ApiError::Budget {
            message: e.to_string(),
            retry_after_s: crate::gateway::seconds_to_next_month(),
        }
    })
}

/// A failed generation as the caller sees it (the kind of each provider's
/// failure); the whole errors go to the request's audit record.
pub(super) fn generation_failed(slot: &AuditSlot, e: GenerateError) -> ApiError {
    if let GenerateError::AllFailed { internal, .. } = &e {
        slot.set_provider_errors(internal.clone());
    }
    e.into()
}

/// Books a finished answer in the metrics and the audit record.
pub(super) fn observe_answer(st: &AppState, slot: &AuditSlot, a: &Answer) {
    st.metrics.observe_answer(a);
    slot.set_answer(a);
}

/// A receiver as a stream (ends when every sender is gone).
pub(super) fn channel_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

pub async fn query(
    State(st): State<Arc<AppState>>,
    Extension(slot): Extension<AuditSlot>,
    Extension(admission): Extension<Admission>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let principal = caller.principal;
    slot.set_question(&req.query);
    check_budget(&st, &principal)?;
    let (snap, hits) =
        retrieve_hits(&st, &principal, &req.query, req.k, req.filter.as_ref()).await?;
    slot.set_hits(&hits);
    if !req.stream {
        let a = st
            .generator
            .answer(&snap, &principal, &req.query, hits, None)
            .await
            .map_err(|e| generation_failed(&slot, e))?;
        observe_answer(&st, &slot, &a);
        return Ok(Json(a).into_response());
    }
    slot.defer();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<StreamEvent>();
    let (out, events) = tokio::sync::mpsc::unbounded_channel::<Result<Event, Infallible>>();
    let st2 = st.clone();
    let q = req.query.clone();
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
    // The task holds the request's slots and deadline until the stream ends.
    tokio::spawn(async move {
        let generation = st2.generator.answer(&snap, &principal, &q, hits, Some(tx));
        let result = tokio::select! {
            r = tokio::time::timeout_at(admission.deadline(), generation) => {
                r.map_err(|_| admission.timeout_error())
            }
            _ = out.closed() => Err(ApiError::BadRequest("the client went away".into())),
        };
        let _ = relay.await;
        match result {
            Ok(Ok(a)) => {
                observe_answer(&st2, &slot, &a);
                slot.finish_deferred(&st2, None);
            }
            Ok(Err(e)) => {
                let e = generation_failed(&slot, e);
                stream_failed(&st2, &slot, &out, e)
            }
            Err(api) => stream_failed(&st2, &slot, &out, api),
        }
        drop(admission);
    });
    Ok(Sse::new(channel_stream(events))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Ends a stream with an `error` event (the status line went out long ago)
/// and writes its audit record.
fn stream_failed(
    st: &AppState,
    slot: &AuditSlot,
    out: &tokio::sync::mpsc::UnboundedSender<Result<Event, Infallible>>,
    e: ApiError,
) {
    let _ = out.send(Ok(Event::default()
        .event("error")
        .data(e.body().to_string())));
    slot.finish_deferred(st, Some(e.status_code().1));
}

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    generation: u64,
    documents: usize,
    chunks: usize,
}

pub async fn healthz(State(st): State<Arc<AppState>>) -> Json<Health> {
    let snap = st.reader.snapshot();
    Json(Health {
        status: "ok",
        generation: snap.generation(),
        documents: snap.docs.len(),
        chunks: snap.live_chunks(),
    })
}

pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let snap = st.reader.snapshot();
    let gauges = IndexGauges {
        generation: snap.generation(),
        documents: snap.docs.len(),
        chunks: snap.live_chunks(),
        segments: snap.segments.len(),
        bytes: snap.manifest.segments.iter().map(|s| s.bytes).sum(),
        agents_stopped: st.kill_switch.is_stopped(),
        audit_broken: st.audit.as_ref().is_some_and(|a| a.broken().is_some()),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(&gauges),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
