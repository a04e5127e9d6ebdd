//! The document table: one record per ingested file, with its access rule and
//! where its chunks live. It is small, rewritten whole at each commit
//! (`docs-<generation>.json`), and is the single source of truth for access:
//! the per-chunk ACL arrays and the keyword index's access fields derive from it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::acl::AccessRule;

use super::StoreError;

const DOCS_FORMAT: u32 = 1;

/// A document of the embedded index: where it came from, its rule, where its chunks are.
///
/// The default is an empty record without a rule (visible to nobody), for
/// tools and tests that fill in only the fields they mean.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DocRecord {
    /// The document's id.
    pub id: u64,
    /// The ingested folder this document came from (absolute).
    pub root: String,
    /// Path relative to `root`, `/`-separated: the `doc` of the API.
    pub path: String,
    /// File type: `txt`, `md`, `html`, `pdf`.
    pub kind: String,
    /// File size in bytes.
    pub size: u64,
    /// Modification time (ns since the epoch).
    pub mtime_ns: i64,
    /// SHA-256 of the file bytes (hex).
    pub sha256: String,
    /// `None`: no rule applies, nobody may see the document.
    pub access: Option<AccessRule>,
    /// The rule file that gave `access`, relative to `root`.
    pub rule_source: Option<String>,
    /// The segment holding its chunks.
    pub segment: String,
    /// Chunk ids `first_chunk .. first_chunk + n_chunks`.
    pub first_chunk: u64,
    /// Chunks of the document.
    pub n_chunks: u32,
    /// Page records `first_page .. first_page + n_pages` in `segment`.
    pub first_page: u32,
    /// Pages of the document in `segment`.
    pub n_pages: u32,
    /// Whether the format has pages (PDF) or one text (the rest).
    pub paged: bool,
    /// Unix seconds of the ingest that wrote the chunks.
    pub ingested_at: i64,
    /// When the content hash was last checked against the file (ns since epoch);
    /// a file modified within the same clock tick is re-hashed (racy-clean rule).
    pub checked_at_ns: i64,
    /// Chunks an injection detector scored as notable (see `Manifest::detector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injection: Vec<ChunkFlag>,
    /// Invisible characters removed from the text at ingest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hygiene_removed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A detector's verdict on one chunk, kept with the document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkFlag {
    /// The chunk's id.
    pub chunk: u64,
    /// The detector's score.
    pub score: f32,
    /// The rule families that matched.
    pub reasons: Vec<String>,
}

impl DocRecord {
    /// The stored verdict on `chunk`, if any.
    pub fn flag(&self, chunk: u64) -> Option<&ChunkFlag> {
        self.injection.iter().find(|f| f.chunk == chunk)
    }
}

impl DocRecord {
    /// The document's chunk ids.
    pub fn chunk_ids(&self) -> std::ops::Range<u64> {
        self.first_chunk..self.first_chunk + self.n_chunks as u64
    }
}

#[derive(Serialize, Deserialize)]
struct DocsFile {
    format: u32,
    docs: Vec<DocRecord>,
}

/// All documents of one index generation.
#[derive(Clone, Debug, Default)]
pub struct DocTable {
    docs: BTreeMap<u64, DocRecord>,
    by_key: HashMap<(String, String), u64>,
}

impl DocTable {
    /// Loads a document table file (checksummed).
    pub fn load(path: &Path) -> Result<DocTable, StoreError> {
        let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
        let f: DocsFile = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
        if f.format != DOCS_FORMAT {
            return Err(StoreError::Corrupt(format!(
                "{}: document table format {}, this hort reads {DOCS_FORMAT}",
                path.display(),
                f.format
            )));
        }
        let mut t = DocTable::default();
        for d in f.docs {
            t.insert(d);
        }
        Ok(t)
    }

    /// The table as a file (versioned, checksummed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let f = DocsFile {
            format: DOCS_FORMAT,
            docs: self.docs.values().cloned().collect(),
        };
        // Serialising plain data to memory cannot fail.
        serde_json::to_vec(&f).unwrap_or_default()
    }

    /// Adds or replaces a document.
    pub fn insert(&mut self, d: DocRecord) {
        if let Some(old) = self.docs.get(&d.id) {
            self.by_key.remove(&(old.root.clone(), old.path.clone()));
        }
        self.by_key.insert((d.root.clone(), d.path.clone()), d.id);
        self.docs.insert(d.id, d);
    }

    /// Removes a document.
    pub fn remove(&mut self, id: u64) -> Option<DocRecord> {
        let d = self.docs.remove(&id)?;
        self.by_key.remove(&(d.root.clone(), d.path.clone()));
        Some(d)
    }

    /// The document with that id.
    pub fn get(&self, id: u64) -> Option<&DocRecord> {
        self.docs.get(&id)
    }

    /// The document with that id, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut DocRecord> {
        self.docs.get_mut(&id)
    }

    /// The document at `path` of `root`.
    pub fn find(&self, root: &str, path: &str) -> Option<&DocRecord> {
        self.by_key
            .get(&(root.to_string(), path.to_string()))
            .and_then(|id| self.docs.get(id))
    }

    /// Every document.
    pub fn iter(&self) -> impl Iterator<Item = &DocRecord> {
        self.docs.values()
    }

    /// How many documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}
