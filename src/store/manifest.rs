//! The manifest: the one file that says which files make up the index.
//! Replacing it (atomically) is the commit; everything it does not name is
//! garbage. A `MANIFEST.pending` is written just before the keyword index
//! commits, so a crash between the two can be rolled forward.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The manifest file.
pub const FILE: &str = "MANIFEST";
/// The manifest being committed (renamed over [`FILE`]).
pub const PENDING: &str = "MANIFEST.pending";

/// A segment of the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Its directory name.
    pub name: String,
    /// Chunks in it.
    pub chunks: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// The index's root record: which segments and tables make up one generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format version.
    pub format: u32,
    /// Increases by one with every commit; the keyword index's commit payload
    /// carries the same number, which is how the two are matched.
    pub generation: u64,
    /// The embedding model that made the vectors; another model is refused.
    pub embedder: String,
    /// Vector dimensions.
    pub dim: u32,
    /// Chunking parameters; when they change every document is re-chunked.
    pub chunker: String,
    /// Version of the keyword schema; when it changes the keyword index is rebuilt.
    pub keyword_schema: u32,
    /// The next chunk id to give out.
    pub next_chunk_id: u64,
    /// The next document id to give out.
    pub next_doc_id: u64,
    /// The segments of this generation.
    pub segments: Vec<SegmentMeta>,
    /// The document table of this generation (`None` before the first commit).
    pub docs_file: Option<String>,
    /// Unix seconds of the commit.
    pub committed_at: i64,
    /// Version of the injection detector whose verdicts the documents carry.
    #[serde(default)]
    pub detector: u32,
}

impl Manifest {
    /// The manifest of a new, empty index.
    pub fn empty(embedder: &str, dim: usize, chunker: &str, keyword_schema: u32) -> Manifest {
        Manifest {
            format: FORMAT,
            generation: 0,
            embedder: embedder.to_string(),
            dim: dim as u32,
            chunker: chunker.to_string(),
            keyword_schema,
            next_chunk_id: 0,
            next_doc_id: 0,
            segments: Vec::new(),
            docs_file: None,
            committed_at: 0,
            detector: 0,
        }
    }

    /// Reads a manifest; `Ok(None)` if the file does not exist.
    pub fn read(path: &Path) -> Result<Option<Manifest>, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
        if m.format != FORMAT {
            return Err(StoreError::Corrupt(format!(
                "{}: index format {}, this hort reads {FORMAT}",
                path.display(),
                m.format
            )));
        }
        Ok(Some(m))
    }

    /// The manifest as a file (with a checksum).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
