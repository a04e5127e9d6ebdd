//! Documents: reading a page or a whole document, listing, and changing
//! (upload, delete) — only what the caller may see, and nothing it may not
//! see changes at its hands. A write to a path where a document lives that
//! the writer may not see is refused (the same answer whatever lives
//! there), a delete of it looks like a delete of nothing; uploads live under
//! their own root and never take the path of a folder's document (a second
//! document under a familiar name would pass for it in every citation).
//! Text given to the caller passes the injection policy first.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, Error, Service};
use crate::acl::{AccessRule, Classification, Principal};
use crate::config::InjectionAction;
use crate::ingest::{self, UPLOAD_ROOT};
use crate::sanitize::injection::Detection;
use crate::store::{DocSummary, Pages, RuleAt};

/// Longest passage [`Service::page`] returns, in characters.
const MAX_PASSAGE_CHARS: usize = 20_000;

/// Text up to this size read at query time is screened by the rules and
/// the learned head; longer text by the rules alone (see
/// [`Service::detect_injection`]). A passage (20,000 characters at most)
/// always fits.
pub const MAX_SCREENED_BYTES: usize = 96 * 1024;

/// What a write of a path would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEffect {
    /// The path is new.
    Adds,
    /// It replaces the caller's document at the path.
    Replaces,
}

/// A document to add or replace, with its access rule.
#[derive(Deserialize, Debug)]
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
    /// Teams that may see the document (the uploader's own).
    pub teams: Vec<String>,
    /// Its classification (at most the uploader's clearance).
    pub classification: Classification,
}

/// What an upload stored.
#[derive(Serialize, Debug)]
pub struct Uploaded {
    /// The document's path.
    pub path: String,
    /// Chunks stored.
    pub chunks: usize,
    /// The store's commit generation after it (0 on PostgreSQL).
    pub generation: u64,
}

/// What a deletion did.
#[derive(Serialize, Debug)]
pub struct Removed {
    /// The document's path.
    pub path: String,
    /// Whether there was a document to delete.
    pub removed: bool,
    /// The store's commit generation after it (0 on PostgreSQL).
    pub generation: u64,
}

/// A passage of a page, as an agent reads it.
#[derive(Serialize, Debug)]
pub struct Passage {
    /// The document.
    pub doc: String,
    /// 1-based page, `None` for formats without pages.
    pub page: Option<u32>,
    /// Start of the passage (characters into the page).
    pub start: usize,
    /// End of the passage.
    pub end: usize,
    /// Pages of the document.
    pub pages: u32,
    /// The document's classification.
    pub classification: Classification,
    /// The text, or a note that it was withheld (prompt injection).
    pub text: String,
    /// The injection verdict, if the passage looks like one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<Value>,
}

/// A whole document as plain text, page by page.
pub struct WholeDocument {
    /// Whether the format has pages.
    pub paged: bool,
    /// The pages' texts, in order.
    pub pages: Vec<String>,
    /// The text looks like a prompt injection at the quarantine level.
    pub withheld: bool,
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

impl Service {
    /// Runs blocking store work off the async runtime.
    async fn blocking<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Service) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let svc = self.clone();
        tokio::task::spawn_blocking(move || f(&svc)).await?
    }

    /// The injection detector on text read at query time: the rules and
    /// the learned head that screened the stored chunks, run off the async
    /// runtime (the head needs the model). Text longer than
    /// [`MAX_SCREENED_BYTES`] gets the rules alone: a whole long document
    /// read for display would otherwise cost a full embedding pass per
    /// view, and its chunks were screened at ingest.
    pub async fn detect_injection(self: &Arc<Self>, text: String) -> Detection {
        if text.len() > MAX_SCREENED_BYTES {
            return crate::sanitize::injection::detect(&text);
        }
        let svc = self.clone();
        let t = text.clone();
        tokio::task::spawn_blocking(move || {
            svc.screen
                .detect_text(svc.embedder.as_ref(), svc.ingest.chunk, &t)
        })
        .await
        .unwrap_or_else(|_| crate::sanitize::injection::detect(&text))
    }

    /// The injection detector this node runs, in words.
    pub fn injection_detector(&self) -> String {
        self.screen.describe()
    }

    /// A passage of page `page` (default 1) of the document at `doc`,
    /// between characters `start` and `end` (at most 20,000 of them).
    pub async fn page(
        self: &Arc<Self>,
        call: &Call,
        who: &Principal,
        doc: &str,
        page: Option<u32>,
        start: Option<usize>,
        end: Option<usize>,
    ) -> Result<Passage, Error> {
        let page_no = page.unwrap_or(1);
        let (p, path) = (who.clone(), doc.to_string());
        let found = self
            .blocking(move |s| Ok(s.store.reader().pages(&p, &path, Some(page_no))?))
            .await?;
        let (paged, n_pages, classification, text) = match found {
            Pages::NotFound => {
                return Err(Error::NotFound(format!(
                    "no document {doc:?} that you may see"
                )))
            }
            Pages::Ambiguous(n) => {
                return Err(Error::BadRequest(format!(
                    "{doc:?} names {n} documents in different folders; search and use the result's path"
                )))
            }
            Pages::OutOfRange(n) => {
                return Err(Error::BadRequest(format!(
                    "page {page_no} out of range (1–{})",
                    n.max(1)
                )))
            }
            Pages::Found {
                paged,
                n_pages,
                classification,
                texts,
            } => (paged, n_pages, classification, texts.concat()),
        };
        let n = text.chars().count();
        let start = start.unwrap_or(0).min(n);
        let end = end.unwrap_or(n).min(n).max(start);
        let end = end.min(start + MAX_PASSAGE_CHARS);
        let passage: String = text.chars().skip(start).take(end - start).collect();
        // The sanitize layer: a passage is untrusted text like any search hit.
        let det = self.detect_injection(passage.clone()).await;
        let (text, injection) = match self.params.injection.action(det.score) {
            Some(InjectionAction::Quarantine) => {
                call.add_flag(format!("quarantined:{doc}"));
                (
                    "[withheld: this passage looks like a prompt injection]".to_string(),
                    Some(
                        serde_json::json!({"score": det.score, "reasons": det.reasons, "action": "quarantine"}),
                    ),
                )
            }
            Some(act) => {
                call.add_flag(format!("injection_suspected:{doc}"));
                (
                    passage,
                    Some(
                        serde_json::json!({"score": det.score, "reasons": det.reasons, "action": act}),
                    ),
                )
            }
            None => (passage, None),
        };
        call.set_docs(vec![doc.to_string()]);
        Ok(Passage {
            doc: doc.to_string(),
            page: paged.then_some(page_no),
            start,
            end,
            pages: n_pages,
            classification,
            text,
            injection,
        })
    }

    /// Every page of the document at `path`, if `who` may see it.
    pub async fn document(
        self: &Arc<Self>,
        call: &Call,
        who: &Principal,
        path: &str,
    ) -> Result<WholeDocument, Error> {
        let (p, path_s) = (who.clone(), path.to_string());
        let found = self
            .blocking(move |s| Ok(s.store.reader().pages(&p, &path_s, None)?))
            .await?;
        let Pages::Found { paged, texts, .. } = found else {
            // Ambiguous or absent: the same answer as for a document one may not see.
            return Err(Error::NotFound(format!("resource not found: {path}")));
        };
        let det = self.detect_injection(texts.concat()).await;
        let withheld = self.params.injection.action(det.score) == Some(InjectionAction::Quarantine);
        call.set_docs(vec![path.to_string()]);
        Ok(WholeDocument {
            paged,
            pages: texts,
            withheld,
        })
    }

    /// Every document `who` may see, by path.
    pub async fn documents(self: &Arc<Self>, who: &Principal) -> Result<Vec<DocSummary>, Error> {
        let p = who.clone();
        self.blocking(move |s| Ok(s.store.reader().documents(&p)?))
            .await
    }

    /// The files the latest ingest of each folder could not read: for
    /// admins only (failed files have no access rule to filter them by).
    pub async fn failed_files(
        self: &Arc<Self>,
        roles: &[String],
    ) -> Result<Vec<crate::store::FailedFile>, Error> {
        if !roles.iter().any(|r| r == "admin") {
            return Err(Error::Forbidden("only admins see failed files".into()));
        }
        self.blocking(|s| Ok(s.store.reader().failures()?)).await
    }

    fn rules_at(&self, path: &str) -> Result<Vec<RuleAt>, Error> {
        Ok(self.store.reader().rules_at(path)?)
    }

    /// The normalised form of a document path given by a caller (relative,
    /// `/`-separated, a supported type), or why it is refused.
    pub fn upload_path(path: &str) -> Result<String, Error> {
        Ok(ingest::check_upload_path(path)?.0)
    }

    /// What a write of `path` (normalised) by `writer` would do, or why it
    /// may not happen.
    pub fn check_write(&self, writer: &Principal, path: &str) -> Result<WriteEffect, Error> {
        let docs = self.rules_at(path)?;
        if docs.iter().any(|d| !writer.can_see(d.access.as_ref())) {
            // The same answer whatever lives there: its rule is not the writer's business.
            return Err(Error::Forbidden(format!(
                "the path {path:?} is not available to you: choose another path"
            )));
        }
        if docs.iter().any(|d| d.root != UPLOAD_ROOT) {
            return Err(Error::Forbidden(format!(
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

    /// Whether `writer` may delete the uploaded document at `path`: one it
    /// may not see is "not found", exactly like one that does not exist.
    pub fn check_delete(&self, writer: &Principal, path: &str) -> Result<(), Error> {
        let visible = self
            .rules_at(path)?
            .iter()
            .any(|d| d.root == UPLOAD_ROOT && writer.can_see(d.access.as_ref()));
        if visible {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "no uploaded document {path:?} that you may see"
            )))
        }
    }

    /// Adds or replaces one uploaded document for `writer`, who must be able
    /// to see any document it replaces. The caller's authority to write at
    /// all is the front end's to check (the admin role over HTTP, a grant and
    /// an approval over MCP); `approved` is what an approval said the write
    /// would do, and a write that would now do something else is refused.
    pub async fn upload(
        self: &Arc<Self>,
        call: &Call,
        writer: &Principal,
        req: UploadRequest,
        approved: Option<WriteEffect>,
    ) -> Result<Uploaded, Error> {
        call.set_docs(vec![req.path.clone()]);
        let bytes = match (req.content, req.content_base64) {
            (Some(t), None) => t.into_bytes(),
            (None, Some(b)) => decode_base64(&b)
                .ok_or_else(|| Error::BadRequest("content_base64 is not valid base64".into()))?,
            _ => {
                return Err(Error::BadRequest(
                    "give exactly one of content and content_base64".into(),
                ))
            }
        };
        let rule = AccessRule::new(&req.teams, req.classification)
            .map_err(|e| Error::BadRequest(format!("access rule: {e}")))?;
        let (path, _) = ingest::check_upload_path(&req.path)?;
        let _guard = self.writer.lock().await;
        let (p, w) = (path.clone(), writer.clone());
        let chunks = self
            .blocking(move |s| {
                let effect = s.check_write(&w, &p)?;
                if approved.is_some_and(|a| a != effect) {
                    return Err(Error::Forbidden(format!(
                        "{p:?} changed since the approval (the write would now {}): call again for a new approval",
                        match effect {
                            WriteEffect::Adds => "add a new document",
                            WriteEffect::Replaces => "replace an existing document",
                        }
                    )));
                }
                let n = ingest::ingest_document(
                    s.store.as_ref(),
                    &p,
                    &bytes,
                    rule,
                    s.embedder.as_ref(),
                    &s.ingest,
                )?;
                s.store.refresh()?;
                Ok(n)
            })
            .await?;
        tracing::info!(path = %path, chunks, "document uploaded");
        self.forget_cached(&path);
        Ok(Uploaded {
            path,
            chunks,
            generation: self.stats().map(|s| s.generation).unwrap_or(0),
        })
    }

    /// Drops cached answers made from `doc` (their keys already miss: this
    /// frees the room at once).
    fn forget_cached(self: &Arc<Self>, doc: &str) {
        if let Some(c) = self.gateway.cache() {
            c.forget_docs(&[doc.to_string()]);
        }
    }

    /// Deletes one uploaded document `writer` may see; `NotFound` if there
    /// is none at `path` (or none it may see).
    pub async fn delete(
        self: &Arc<Self>,
        call: &Call,
        writer: &Principal,
        path: &str,
    ) -> Result<Removed, Error> {
        call.set_docs(vec![path.to_string()]);
        let (path, _) = ingest::check_upload_path(path)?;
        let _guard = self.writer.lock().await;
        let (p, w) = (path.clone(), writer.clone());
        let removed = self
            .blocking(move |s| {
                s.check_delete(&w, &p)?;
                let removed = ingest::remove_document(s.store.as_ref(), &p)?;
                s.store.refresh()?;
                Ok(removed)
            })
            .await?;
        if !removed {
            return Err(Error::NotFound(format!(
                "no uploaded document {path:?} that you may see"
            )));
        }
        self.forget_cached(&path);
        Ok(Removed {
            path,
            removed,
            generation: self.stats().map(|s| s.generation).unwrap_or(0),
        })
    }
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
