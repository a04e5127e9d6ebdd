//! Documents added through the API: one file given as bytes, with its rule,
//! stored under [`UPLOAD_ROOT`] as one commit, through the same parse, embed
//! and put stages as a folder's ingest.

use std::path::PathBuf;

use super::loader::{FileKind, LoadError, Loaders};
use super::walk::{self, SourceFile};
use super::{
    now_ns, parse_bytes, rules, screen::Screen, screen_all, IngestError, IngestOptions, Job, Parsed,
};
use crate::embed::{Embedder, Space};
use crate::sanitize::hygiene::is_invisible_in_name;
use crate::store::{Store, StoreError, UPLOAD_ROOT};
use crate::text::sha256_hex;

/// Why a document could not be added or removed through the API.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The path is not acceptable (absolute, hidden parts, unsupported type).
    #[error("{0}")]
    BadPath(String),
    /// The content cannot be parsed or is too large.
    #[error("{0}")]
    Unreadable(String),
    /// Storing it failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl From<StoreError> for UploadError {
    fn from(e: StoreError) -> Self {
        UploadError::Ingest(IngestError::Store(e))
    }
}

/// Checks an API document path: relative, `/`-separated, no `.`/`..`, no
/// hidden parts, a supported extension. Returns the normalised path and kind.
pub fn check_upload_path(path: &str) -> Result<(String, FileKind), UploadError> {
    let bad = |m: &str| UploadError::BadPath(format!("path {path:?}: {m}"));
    let p = path.trim().trim_start_matches("./");
    if p.is_empty() || p.len() > 512 || p.starts_with('/') || p.contains('\\') || p.contains('\0') {
        return Err(bad("must be a relative path like `folder/name.md`"));
    }
    for part in p.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.starts_with('.') {
            return Err(bad("empty, `.`, `..` or hidden parts are not allowed"));
        }
        if let Some(c) = part.chars().find(|&c| is_invisible_in_name(c)) {
            return Err(bad(&format!(
                "invisible characters (controls, bidi or zero-width: U+{:04X}) are not allowed",
                c as u32
            )));
        }
    }
    let ext = p.rsplit('.').next().filter(|e| *e != p).unwrap_or("");
    let kind = FileKind::from_extension(ext)
        .ok_or_else(|| bad(&format!("supported types are {}", FileKind::extensions())))?;
    if p.ends_with(rules::FILE_RULE_SUFFIX) || p.rsplit('/').next() == Some(rules::DIR_RULE) {
        return Err(bad("access rule files cannot be uploaded as documents"));
    }
    Ok((p.to_string(), kind))
}

/// Adds (or replaces) one document given as bytes, with its access rule,
/// as one commit. Returns the number of chunks stored.
pub fn ingest_document(
    store: &dyn Store,
    path: &str,
    bytes: &[u8],
    rule: crate::acl::AccessRule,
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<usize, UploadError> {
    let (rel, kind) = check_upload_path(path)?;
    if bytes.len() as u64 > opts.max_file_bytes {
        return Err(UploadError::Unreadable(
            LoadError::TooLarge {
                size: bytes.len() as u64,
                limit: opts.max_file_bytes,
            }
            .to_string(),
        ));
    }
    let mut writer = store.writer()?;
    let existing = writer
        .stored(UPLOAD_ROOT)?
        .into_iter()
        .find(|d| d.path == rel);
    let now = now_ns();
    let job = Job {
        root: UPLOAD_ROOT.to_string(),
        file: SourceFile {
            abs: PathBuf::from(&rel),
            rel: rel.clone(),
            kind,
            size: bytes.len() as u64,
            mtime_ns: now,
            rule: walk::RuleState::Rule {
                rule,
                source: "(uploaded with the document)".into(),
            },
        },
        existing,
    };
    let loaders = Loaders::new(opts.pdf.clone());
    let doc = match parse_bytes(job, bytes, sha256_hex(bytes), opts, embedder, &loaders) {
        Parsed::Doc(d) => d,
        Parsed::Failed(_, e) | Parsed::Skipped(_, e) => return Err(UploadError::Unreadable(e)),
        Parsed::Unchanged(_) => return Ok(0),
    };
    let n = doc.spans.len();
    let texts: Vec<&str> = doc
        .spans
        .iter()
        .map(|(page, s)| &doc.pages[*page].1[s.byte_start..s.byte_end])
        .collect();
    let screen = Screen::for_model(embedder.id());
    let (vectors, verdicts) =
        screen_all(embedder, &screen, &texts, opts.batch_size).map_err(IngestError::from)?;
    let space = Space::of_index(&store.reader().model().0);
    writer.put(doc.into_document(vectors, &verdicts, space, now_ns()))?;
    writer.compact(false)?;
    writer.commit()?;
    Ok(n)
}

/// Removes a document added through the API. `Ok(false)` if there was none.
pub fn remove_document(store: &dyn Store, path: &str) -> Result<bool, UploadError> {
    let (rel, _) = check_upload_path(path)?;
    let mut writer = store.writer()?;
    let Some(d) = writer
        .stored(UPLOAD_ROOT)?
        .into_iter()
        .find(|d| d.path == rel)
    else {
        return Ok(false);
    };
    writer.remove(d.id)?;
    writer.compact(false)?;
    writer.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_paths_are_plain_relative_names() {
        assert_eq!(check_upload_path("./hr/leave.md").unwrap().0, "hr/leave.md");
        for bad in [
            "../x.md",
            "/etc/x.md",
            "a//x.md",
            ".git/x.md",
            "a\\x.md",
            "x.exe",
            "hr/_access.toml",
            "a/x.md.access.toml",
            "a/invoice\u{202E}fdp.md",
            "a/zero\u{200B}width.md",
            "a/new\nline.md",
            "a/x\0.md",
        ] {
            assert!(
                matches!(check_upload_path(bad), Err(UploadError::BadPath(_))),
                "{bad:?}"
            );
        }
    }
}
