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
