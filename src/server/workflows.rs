//! Workflow runs over HTTP: start one (`POST /v1/workflows/{name}/runs`,
//! JSON or Server-Sent Events with each step as it happens), read one
//! (`GET /v1/workflows/runs/{id}`) and resume one after an approval
//! (`POST /v1/workflows/runs/{id}/resume`). The run is the service's; this
//! file only speaks HTTP.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::api::channel_stream;
use super::error::{ApiError, ApiJson};
use super::limits::Admission;
use super::{AppState, Authed};
use crate::service::runs::{RunReport, Step};
use crate::service::{Call, Error};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The task.
    pub task: String,
    /// Server-Sent Events: `step` per step, then `done` with the report.
    #[serde(default)]
    pub stream: bool,
}

#[derive(Deserialize, Default)]
pub struct StreamParam {
    #[serde(default)]
    pub stream: bool,
}

/// Runs `work` (a run of the service) as JSON or as an event stream.
fn respond<F>(
    st: &Arc<AppState>,
    call: Call,
    admission: Admission,
    stream: bool,
    work: impl FnOnce(Option<tokio::sync::mpsc::UnboundedSender<Step>>) -> F + Send + 'static,
) -> impl std::future::Future<Output = Result<Response, ApiError>>
where
    F: std::future::Future<Output = Result<RunReport, Error>> + Send + 'static,
{
    let svc = st.svc.clone();
    async move {
        if !stream {
            let r = work(None).await?;
            return Ok(Json(r).into_response());
        }
        call.defer();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Step>();
        let (out, events) = tokio::sync::mpsc::unbounded_channel::<Result<Event, Infallible>>();
        let relay = tokio::spawn({
            let out = out.clone();
            async move {
                while let Some(s) = rx.recv().await {
                    let e = Event::default()
                        .event("step")
                        .data(serde_json::to_string(&s).unwrap_or_default());
                    if out.send(Ok(e)).is_err() {
                        break;
                    }
                }
            }
        });
        tokio::spawn(async move {
            let r = tokio::time::timeout_at(admission.deadline(), work(Some(tx))).await;
            let _ = relay.await;
            match r {
                Ok(Ok(report)) => {
                    let _ = out.send(Ok(Event::default()
                        .event("done")
                        .data(serde_json::to_string(&report).unwrap_or_default())));
                    call.finish(&svc, 200, None);
                }
                Ok(Err(e)) => {
                    let e = ApiError::Service(e);
                    let _ = out.send(Ok(Event::default()
                        .event("error")
                        .data(e.body().to_string())));
                    call.finish(&svc, 200, Some(e.status_code().1.to_string()));
                }
                Err(_) => {
                    let e = admission.timeout_error();
                    let _ = out.send(Ok(Event::default()
                        .event("error")
                        .data(e.body().to_string())));
                    call.finish(&svc, 200, Some("timeout".into()));
                }
            }
            drop(admission);
        });
        Ok(Sse::new(channel_stream(events))
            .keep_alive(KeepAlive::default())
            .into_response())
    }
}

/// `POST /v1/workflows/{name}/runs`.
pub async fn start(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Extension(admission): Extension<Admission>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<Response, ApiError> {
    let svc = st.svc.clone();
    respond(
        &st,
        call,
        admission,
        req.stream,
        move |progress| async move {
            svc.run_workflow(&caller.principal, &caller.roles, &name, &req.task, progress)
                .await
        },
    )
    .await
}

/// `GET /v1/workflows/runs/{id}`: the run's state (its principal and admins).
pub async fn get(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<RunReport>, ApiError> {
    Ok(Json(st.svc.get_run(
        &caller.principal,
        &caller.roles,
        &id,
    )?))
}

/// `POST /v1/workflows/runs/{id}/resume[?stream=true]`.
pub async fn resume(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Extension(admission): Extension<Admission>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    Query(q): Query<StreamParam>,
) -> Result<Response, ApiError> {
    let svc = st.svc.clone();
    respond(&st, call, admission, q.stream, move |progress| async move {
        svc.resume_run(&caller.principal, &caller.roles, &id, progress)
            .await
    })
    .await
}
