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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocRecord {
    pub id: u64,
    /// The ingested folder this document came from (absolute).
    pub root: String,
    /// Path relative to `root`, `/`-separated: the `doc` of the API.
    pub path: String,
    /// File type: `txt`, `md`, `html`, `pdf`.
    pub kind: String,
    pub size: u64,
    pub mtime_ns: i64,
    /// SHA-256 of the file bytes (hex).
    pub sha256: String,
    /// `None`: no rule applies, nobody may see the document.
    pub access: Option<AccessRule>,
    /// The rule file that gave `access`, relative to `root`.
    pub rule_source: Option<String>,
    pub segment: String,
    /// Chunk ids `first_chunk .. first_chunk + n_chunks`.
    pub first_chunk: u64,
    pub n_chunks: u32,
    /// Page records `first_page .. first_page + n_pages` in `segment`.
    pub first_page: u32,
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
    pub chunk: u64,
    pub score: f32,
    pub reasons: Vec<String>,
}

impl DocRecord {
    /// The stored verdict on `chunk`, if any.
    pub fn flag(&self, chunk: u64) -> Option<&ChunkFlag> {
        self.injection.iter().find(|f| f.chunk == chunk)
    }
}

impl DocRecord {
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

    pub fn to_bytes(&self) -> Vec<u8> {
        let f = DocsFile {
            format: DOCS_FORMAT,
            docs: self.docs.values().cloned().collect(),
        };
        // Serialising plain data to memory cannot fail.
        serde_json::to_vec(&f).unwrap_or_default()
    }

    pub fn insert(&mut self, d: DocRecord) {
        if let Some(old) = self.docs.get(&d.id) {
            self.by_key.remove(&(old.root.clone(), old.path.clone()));
        }
        self.by_key.insert((d.root.clone(), d.path.clone()), d.id);
        self.docs.insert(d.id, d);
    }

    pub fn remove(&mut self, id: u64) -> Option<DocRecord> {
        let d = self.docs.remove(&id)?;
        self.by_key.remove(&(d.root.clone(), d.path.clone()));
        Some(d)
    }

    pub fn get(&self, id: u64) -> Option<&DocRecord> {
        self.docs.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut DocRecord> {
        self.docs.get_mut(&id)
    }

    pub fn find(&self, root: &str, path: &str) -> Option<&DocRecord> {
        self.by_key
            .get(&(root.to_string(), path.to_string()))
            .and_then(|id| self.docs.get(id))
    }

    pub fn iter(&self) -> impl Iterator<Item = &DocRecord> {
        self.docs.values()
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}
