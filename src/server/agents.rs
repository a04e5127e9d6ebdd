//! Agents over HTTP: the MCP endpoint (`/mcp`, streamable HTTP with JSON
//! responses), the approvals queue (`/v1/approvals`) and the kill switch
//! (`/v1/agents/stop`, `/v1/agents/resume`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiJson};
use super::{AppState, Authed};
use crate::mcp::{self, Session};
use crate::service::approvals::Action;
use crate::service::Call;
use crate::service::Error;

const SESSION_HEADER: &str = "mcp-session-id";
/// Sessions kept at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// Sessions one principal keeps at most: opening more ends its own oldest,
/// never another principal's.
const MAX_SESSIONS_PER_PRINCIPAL: usize = 32;

fn new_session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::text::sha256_hex(format!("{nanos}-{n}-{}", std::process::id()).as_bytes())
}

/// `POST /mcp`: one JSON-RPC message in, its reply out (202 for notifications).
pub async fn mcp_post(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(mcp::parse_error(&e.to_string())),
            )
                .into_response())
        }
    };
    let is_initialize = msg.get("method").and_then(Value::as_str) == Some("initialize");
    let session = if is_initialize {
        let s = Arc::new(Session::new(
            new_session_id(),
            caller.principal.clone(),
            caller.roles.clone(),
        ));
        let mut map = crate::sync::lock(&st.mcp_sessions);
        let name = &caller.principal.name;
        let own = map.values().filter(|x| &x.principal.name == name).count();
        // Make room: the principal's own oldest first, then anyone's oldest.
        let victim = if own >= MAX_SESSIONS_PER_PRINCIPAL {
            map.iter()
                .filter(|(_, x)| &x.principal.name == name)
                .max_by_key(|(_, x)| x.elapsed())
                .map(|(k, _)| k.clone())
        } else if map.len() >= MAX_SESSIONS {
            map.iter()
                .max_by_key(|(_, x)| x.elapsed())
                .map(|(k, _)| k.clone())
        } else {
            None
        };
        if let Some(v) = victim {
            map.remove(&v);
        }
        map.insert(s.id.clone(), s.clone());
        s
    } else {
        let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
            // No session: a JSON-RPC error the client can act on (e.g. a
            // `server/discover` probe falls back to the initialize handshake).
            let rpc_id = msg.get("id").cloned().unwrap_or(Value::Null);
            let (code, text) = match msg.get("method").and_then(Value::as_str) {
                Some(m @ "server/discover") => (-32601, format!("method not found: {m}")),
                _ => (
                    -32600,
                    "missing Mcp-Session-Id header (initialize first)".to_string(),
                ),
            };
            let body =
                json!({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": code, "message": text}});
            let status = if code == -32601 {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok((status, Json(body)).into_response());
        };
        let map = crate::sync::lock(&st.mcp_sessions);
        // Another principal's session id is treated as unknown.
        match map.get(id) {
            Some(s) if s.principal.name == caller.principal.name => s.clone(),
            _ => {
                return Err(ApiError::Service(Error::NotFound(
                    "unknown MCP session (initialize again)".into(),
                )))
            }
        }
    };
    let reply = mcp::handle(&st.svc, &session, msg).await;
    let mut resp = match reply {
        Some(r) => Json(r).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    };
    if is_initialize {
        if let Ok(v) = HeaderValue::from_str(&session.id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    Ok(resp)
}

/// `GET /mcp`: this server sends no unsolicited messages, so it offers no stream.
pub async fn mcp_get(Authed(_): Authed) -> ApiError {
    ApiError::MethodNotAllowed
}

/// `DELETE /mcp`: ends a session.
pub async fn mcp_delete(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Service(Error::BadRequest("missing Mcp-Session-Id header".into()))
        })?;
    let mut map = crate::sync::lock(&st.mcp_sessions);
    match map.get(id) {
        Some(s) if s.principal.name == caller.principal.name => {
            map.remove(id);
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::Service(Error::NotFound(
            "unknown MCP session".into(),
        ))),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /v1/approvals`: everything for approvers; one's own actions otherwise.
pub async fn approvals_list(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let svc = st.svc.clone();
    let list = super::off_runtime(move || {
        svc.list_approvals(&caller.principal, &caller.roles, q.status.as_deref())
    })
    .await??;
    Ok(Json(json!({ "approvals": list })))
}

pub async fn approval_get(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<Action>, ApiError> {
    let svc = st.svc.clone();
    Ok(Json(
        super::off_runtime(move || svc.get_approval(&caller.principal, &caller.roles, &id))
            .await??,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/approvals/{id}` `{"decision": "approve" | "reject", "reason": …}`:
/// approvers only, and never on their own actions (four eyes).
pub async fn approval_decide(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decision>,
) -> Result<Json<Action>, ApiError> {
    let approve = match d.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::Service(Error::BadRequest(format!(
                "decision must be \"approve\" or \"reject\", not {other:?}"
            ))))
        }
    };
    let svc = st.svc.clone();
    Ok(Json(
        super::off_runtime(move || {
            svc.decide_approval(
                &call,
                &caller.principal,
                &caller.roles,
                &id,
                approve,
                d.reason,
            )
        })
        .await??,
    ))
}

/// `GET /v1/agents`: for the people who run the agents (admins, approvers).
pub async fn agents_status(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
) -> Result<Json<Value>, ApiError> {
    if !caller.has_role("admin") && !caller.has_role("approver") {
        return Err(ApiError::Service(Error::Forbidden(
            "the agents' status needs the admin or approver role".into(),
        )));
    }
    let sessions = st.mcp_sessions.lock().map(|m| m.len()).unwrap_or(0);
    Ok(Json(
        json!({"stopped": st.svc.agents_stopped(), "http_sessions": sessions}),
    ))
}

/// `POST /v1/agents/stop`: every MCP session (of every process) refuses calls from now on.
pub async fn agents_stop(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
) -> Result<Json<Value>, ApiError> {
    let svc = st.svc.clone();
    super::off_runtime(move || svc.stop_agents(&call, &caller.principal.name, &caller.roles))
        .await??;
    Ok(Json(json!({"stopped": true})))
}

pub async fn agents_resume(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
) -> Result<Json<Value>, ApiError> {
    let svc = st.svc.clone();
    super::off_runtime(move || svc.resume_agents(&call, &caller.principal.name, &caller.roles))
        .await??;
    Ok(Json(json!({"stopped": false})))
}
