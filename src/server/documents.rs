//! `/v1/documents`: add, replace or delete one document with its access
//! rule, for callers with the `admin` role — the service's upload and
//! delete use cases over HTTP (which refuse to touch a document the caller
//! may not see). Uploads take the index's writer lock like `hort ingest`;
//! while another process holds it the answer is 503 rather than a wait.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::{ApiError, ApiJson};
use super::{AppState, Authed};
use crate::service::Error;
use crate::service::{Call, Removed, UploadRequest, Uploaded};

#[derive(Deserialize)]
pub struct RemoveQuery {
    pub path: String,
}

pub async fn upload(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<UploadRequest>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    super::require_admin(&caller, "changing documents")?;
    let r = st.svc.upload(&call, &caller.principal, req, None).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

pub async fn remove(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Json<Removed>, ApiError> {
    super::require_admin(&caller, "changing documents")?;
    let Query(q) = q.map_err(|_| {
        ApiError::Service(Error::BadRequest(
            "name the document: DELETE /v1/documents?path=folder/name.md".into(),
        ))
    })?;
    Ok(Json(
        st.svc.delete(&call, &caller.principal, &q.path).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The document's path (as in hits and citations).
    pub doc: String,
    /// 1-based page (absent for formats without pages).
    pub page: Option<u32>,
    /// First character of the window (default 0).
    pub start: Option<usize>,
    /// End of the window (default: the page's end, at most 20,000 characters).
    pub end: Option<usize>,
}

/// `GET /v1/documents/page?doc=…&page=…[&start=…&end=…]`: the text of a page
/// of a document the caller may see (what a citation's offsets point into);
/// `404` for one it may not see, as for one that does not exist.
pub async fn page(
    State(st): State<Arc<AppState>>,
    Extension(call): Extension<Call>,
    Authed(caller): Authed,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<crate::service::Passage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::Service(Error::BadRequest(e.body_text())))?;
    Ok(Json(
        st.svc
            .page(&call, &caller.principal, &q.doc, q.page, q.start, q.end)
            .await?,
    ))
}

/// `GET /v1/documents`: the documents the caller may see.
pub async fn list(
    State(st): State<Arc<AppState>>,
    Authed(caller): Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    let docs = st.svc.documents(&caller.principal).await?;
    // Admins also see what the latest ingests could not read.
    if caller.roles.iter().any(|r| r == "admin") {
        let failed = st.svc.failed_files(&caller.roles).await?;
        return Ok(Json(
            serde_json::json!({ "documents": docs, "failed": failed }),
        ));
    }
    Ok(Json(serde_json::json!({ "documents": docs })))
}

/// `GET /v1/me`: who the caller is (for the console's header).
pub async fn me(Authed(caller): Authed) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": caller.principal.name,
        "teams": caller.principal.teams,
        "clearance": caller.principal.clearance,
        "roles": caller.roles,
    }))
}
