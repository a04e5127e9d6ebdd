//! `/v1/documents`: add, replace or delete one document with its access
//! rule, for callers with the `admin` role (and for agents through MCP).
//!
//! Nobody changes what they may not see: a write to a path where a document
//! the writer may not see lives is refused (the same answer whatever that
//! document is), a delete of it looks like a delete of nothing. Uploads live
//! under their own root and never take the path of a document from an
//! ingested folder (a second document under a familiar name would pass for
//! it in every citation).
//!
//! Uploaded documents live beside the ingested folders (under their own
//! root, so a folder ingest never removes them). The write takes the
//! index's writer lock like `hort ingest`; if another process holds it the
//! answer is 503 rather than a wait. Parsing and embedding run on the
//! blocking pool; the served snapshot switches once the commit is durable.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson};
use super::{AppState, AuditSlot, Authed};
use crate::acl::{AccessRule, Classification, Principal};
use crate::ingest::{self, IngestError, UploadError};
use crate::store::migrate::{self, Scope};
use crate::store::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// Relative path with extension, e.g. `hr/leave-policy.md`.
    pub path: String,
    /// The document as text (txt, md, html) …
    #[serde(default)]
    pub content: Option<String>,
    /// … or as base64 bytes (any type, PDF included).
    #[serde(default)]
    pub content_base64: Option<String>,
    pub teams: Vec<String>,
    pub classification: Classification,
}

#[derive(Serialize, Debug)]
pub struct UploadResponse {
    pub path: String,
    pub chunks: usize,
    pub generation: u64,
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    pub path: String,
}

#[derive(Serialize, Debug)]
pub struct RemoveResponse {
    pub path: String,
    pub removed: bool,
    pub generation: u64,
}

fn map_upload(e: UploadError) -> ApiError {
    match e {
        UploadError::BadPath(m) | UploadError::Unreadable(m) => ApiError::BadRequest(m),
        UploadError::Ingest(IngestError::Store(s @ StoreError::Locked { .. })) => {
            ApiError::Unavailable(s.to_string())
        }
        UploadError::Ingest(other) => ApiError::Internal(other.to_string()),
        UploadError::Database(m) => {
            // The database's message may name hosts: the log keeps it.
            tracing::error!(error = %m, "document change not stored in the database");
            ApiError::Unavailable("the database did not take the change; retry later".into())
        }
    }
}

/// Standard base64 (RFC 4648, padding optional, line breaks ignored).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT.decode(clean).ok()
}

/// Every document at `path` (whatever its folder), from the database on
/// PostgreSQL (the node's staging copy may be behind other nodes).
fn documents_at(st: &AppState, path: &str) -> Result<Vec<(String, Option<AccessRule>)>, ApiError> {
    if let Some(pg) = &st.pg {
        return Ok(pg
            .docs_at(path)?
            .into_iter()
            .map(|d| (d.root, d.access))
            .collect());
    }
    Ok(st
        .reader
        .snapshot()
        .docs
        .iter()
        .filter(|d| d.path == path)
        .map(|d| (d.root.clone(), d.access.clone()))
        .collect())
}

/// What a write of `path` by `writer` would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteEffect {
    Adds,
    Replaces,
}

/// May `writer` write an uploaded document at `path` (normalised)?
pub(crate) fn check_write(
    st: &AppState,
    writer: &Principal,
    path: &str,
) -> Result<WriteEffect, ApiError> {
    let docs = documents_at(st, path)?;
    if docs.iter().any(|(_, rule)| !writer.can_see(rule.as_ref())) {
        // The same answer whatever lives there: its rule is not the writer's business.
        return Err(ApiError::Forbidden(format!(
            "the path {path:?} is not available to you: choose another path"
        )));
    }
    if docs.iter().any(|(root, _)| root != ingest::UPLOAD_ROOT) {
        return Err(ApiError::Forbidden(format!(
            "{path:?} is the path of a document from an ingested folder; an upload may not \
             shadow it: choose another path"
        )));
    }
    Ok(if docs.is_empty() {
        WriteEffect::Adds
    } else {
        WriteEffect::Replaces
    })
}

/// May `writer` delete the uploaded document at `path`? A document it may
/// not see is "not found", exactly like one that does not exist.
pub(crate) fn check_delete(st: &AppState, writer: &Principal, path: &str) -> Result<(), ApiError> {
    let visible = documents_at(st, path)?
        .iter()
        .any(|(root, rule)| root == ingest::UPLOAD_ROOT && writer.can_see(rule.as_ref()));
    if visible {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no uploaded document {path:?} that you may see"
        )))
    }
}

/// Adds or replaces one uploaded document for `writer`, who must be able to
/// see any document it replaces. The caller's authority to write at all is
/// checked by the caller (the admin role over HTTP, a grant and an approval
/// over MCP); `approved` is what the approval said the write would do, and a
/// write that would now do something else is refused.
pub(crate) async fn put_document(
    st: &Arc<AppState>,
    writer: &Principal,
    req: UploadRequest,
    approved: Option<WriteEffect>,
) -> Result<UploadResponse, ApiError> {
    let bytes = match (req.content, req.content_base64) {
        (Some(t), None) => t.into_bytes(),
        (None, Some(b)) => decode_base64(&b)
            .ok_or_else(|| ApiError::BadRequest("content_base64 is not valid base64".into()))?,
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of content and content_base64".into(),
            ))
        }
    };
    let rule = AccessRule::new(&req.teams, req.classification)
        .map_err(|e| ApiError::BadRequest(format!("access rule: {e}")))?;
    let (path, _) = ingest::check_upload_path(&req.path).map_err(map_upload)?;
    let _guard = st.writer.lock().await;
    let effect = check_write(st, writer, &path)?;
    if approved.is_some_and(|a| a != effect) {
        return Err(ApiError::Forbidden(format!(
            "{path:?} changed since the approval (the write would now {}): call again for a new approval",
            match effect {
                WriteEffect::Adds => "add a new document",
                WriteEffect::Replaces => "replace an existing document",
            }
        )));
    }
    let st2 = st.clone();
    let p = path.clone();
    let chunks = tokio::task::spawn_blocking(move || {
        let n = ingest::ingest_document(
            &st2.index_dir,
            &p,
            &bytes,
            rule,
            st2.embedder.as_ref(),
            &st2.ingest,
        )?;
        st2.reader
            .refresh()
            .map_err(|e| UploadError::Ingest(IngestError::Store(e)))?;
        if let Some(pg) = &st2.pg {
            // The staging index has the document; the database serves it.
            let scope = Scope::Doc {
                root: ingest::UPLOAD_ROOT.to_string(),
                path: p.clone(),
            };
            migrate::to_postgres(&st2.reader.snapshot(), pg, &scope, false)
                .map_err(|e| UploadError::Database(format!("storing in the database: {e}")))?;
        }
        Ok::<_, UploadError>(n)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(map_upload)?;
    tracing::info!(path = %path, chunks, "document uploaded");
    Ok(UploadResponse {
        path,
        chunks,
        generation: st.reader.snapshot().generation(),
    })
}

/// Deletes one uploaded document `writer` may see; `NotFound` if there is
/// none at `path` (or none it may see).
pub(crate) async fn delete_document(
    st: &Arc<AppState>,
    writer: &Principal,
    path: &str,
) -> Result<RemoveResponse, ApiError> {
    let (path, _) = ingest::check_upload_path(path).map_err(map_upload)?;
    let _guard = st.writer.lock().await;
    check_delete(st, writer, &path)?;
    let st2 = st.clone();
    let p = path.clone();
    let removed = tokio::task::spawn_blocking(move || {
        let mut r =
            ingest::remove_document(&st2.index_dir, &p, st2.embedder.as_ref(), &st2.ingest)?;
        st2.reader
            .refresh()
            .map_err(|e| UploadError::Ingest(IngestError::Store(e)))?;
        if let Some(pg) = &st2.pg {
            // Another node may have uploaded it: the database decides.
            r = pg
                .delete_path(ingest::UPLOAD_ROOT, &p)
                .map_err(|e| UploadError::Database(format!("deleting in the database: {e}")))?;
        }
        Ok::<_, UploadError>(r)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(map_upload)?;
    if !removed {
        return Err(ApiError::NotFound(format!(
            "no uploaded document {path:?} that you may see"
        )));
    }
    Ok(RemoveResponse {
        path,
        removed,
        generation: st.reader.snapshot().generation(),
    })
}

pub async fn upload(
    State(st): State<Arc<AppState>>,
    Extension(slot): Extension<AuditSlot>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<UploadRequest>,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    super::require_admin(&caller, "changing documents")?;
    slot.set_docs(vec![req.path.clone()]);
    Ok((
        StatusCode::CREATED,
        Json(put_document(&st, &caller.principal, req, None).await?),
    ))
}

pub async fn remove(
    State(st): State<Arc<AppState>>,
    Extension(slot): Extension<AuditSlot>,
    Authed(caller): Authed,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Json<RemoveResponse>, ApiError> {
    super::require_admin(&caller, "changing documents")?;
    let Query(q) = q.map_err(|_| {
        ApiError::BadRequest("name the document: DELETE /v1/documents?path=folder/name.md".into())
    })?;
    slot.set_docs(vec![q.path.clone()]);
    Ok(Json(
        delete_document(&st, &caller.principal, &q.path).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs\nbG8h").unwrap(), b"hello!");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a$==").is_none());
        assert!(decode_base64("abcde").is_none());
    }
}
