//! The on-disk index: immutable segments (chunks, page texts, vectors, HNSW
//! graph), a tantivy keyword index, and a document table, tied together by an
//! atomically replaced manifest.
//!
//! ```text
//! <index>/MANIFEST            which files make up the current generation
//!         MANIFEST.pending    the next one, during a commit
//!         LOCK                held by the one writer
//!         docs-<gen>.json     document table (access rules live here)
//!         segments/*.hseg     immutable, memory-mapped
//!         keyword/            tantivy, commit payload = generation
//! ```
//!
//! **Commit protocol** (one writer): segments are written and fsynced first;
//! then the document table; then `MANIFEST.pending`; then tantivy commits with
//! payload `generation=N+1`; then the pending manifest is renamed over
//! `MANIFEST`. A crash before the tantivy commit leaves generation N
//! everywhere (the pending file is discarded); a crash after it is rolled
//! forward, because the pending manifest names files that are all durable.
//! Readers apply the same rule without writing, so they never see a mix.

mod access;
mod compaction;
pub mod contract;
pub mod distance;
pub mod docfilter;
pub mod docs;
pub mod embedded;
mod failures;
pub mod fsutil;
pub mod hnsw;
pub mod keyword;
pub mod manifest;
pub mod migrate;
pub mod pg;
pub mod plan;
mod reader;
pub mod record;
pub mod segment;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Backend, Config};

pub use contract::{CompactStats, IndexRead, IndexWrite, Scored, Store};
pub use reader::{ChunkLoc, IndexReader, Snapshot};
pub use record::*;
pub use writer::IndexWriter;

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file fails its checksum or format.
    #[error("index is corrupt: {0}")]
    Corrupt(String),
    /// The keyword index failed.
    #[error("keyword index: {0}")]
    Keyword(String),
    /// The keyword index is damaged or of another schema. It is derived
    /// from the segments, so the next writer rebuilds it.
    #[error(
        "the keyword index is damaged ({0}); the next `hort ingest` or `hort compact` \
         rebuilds it from the segments"
    )]
    KeywordDamaged(String),
    /// There is no index yet.
    #[error("no index at {0} (run `hort ingest <DIR>` first)")]
    NotFound(PathBuf),
    /// Another process writes the index.
    #[error("the index at {path} is in use by another writer (pid {pid}); wait for it to finish")]
    Locked {
        /// The index.
        path: PathBuf,
        /// The writer's process id.
        pid: String,
    },
    /// The index was built with another embedding model.
    #[error(
        "the index at {path} was built with embedding model {index} ({index_dim} dimensions), \
         but {configured} ({configured_dim} dimensions) is configured; configure the original \
         model or re-ingest into a new index directory"
    )]
    ModelMismatch {
        /// The index.
        path: PathBuf,
        /// The model the index was built with.
        index: String,
        /// Its dimensions.
        index_dim: u32,
        /// The configured model.
        configured: String,
        /// Its dimensions.
        configured_dim: usize,
    },
    /// The store cannot serve the request now.
    #[error("the index keeps changing under the reader; try again ({0})")]
    Busy(String),
    /// The index was written by an older format and must be rebuilt.
    #[error("the index at {0} was written by another version of hort; run `hort compact` (or `hort ingest`) once to upgrade it")]
    NeedsUpgrade(PathBuf),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] pg::PgError),
}

impl StoreError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

const SEGMENTS: &str = "segments";
const KEYWORD: &str = "keyword";

/// Whether an index whose vectors were made by `recorded` may be used
/// where the configured model records `configured`: the same, or the same
/// model's raw vectors from before it had a space (`model+space`,
/// `embed::space`), which stay raw: ingest places new vectors as the index
/// recorded, so one index never mixes the two.
pub fn embedder_compatible(recorded: &str, configured: &str) -> bool {
    recorded == configured
        || configured
            .split_once('+')
            .is_some_and(|(model, _)| model == recorded)
}

/// What opening a store needs beyond the configuration: the embedding
/// model that makes (and must have made) the vectors, and the chunker's
/// fingerprint (a change means chunking again).
#[derive(Clone, Debug)]
pub struct Spec {
    /// The embedding model's id.
    pub embedder: String,
    /// Its dimensions.
    pub dim: usize,
    /// The chunker's fingerprint.
    pub chunker: String,
}

/// Opens the store the configuration names: the embedded index at `index`
/// (with `create`, an empty one is made if there is none), or PostgreSQL
/// (migrated if new; refused if another model made its vectors). The one
/// place above which no code names a backend.
pub fn open(
    cfg: &Config,
    index: &Path,
    spec: &Spec,
    create: bool,
) -> Result<Arc<dyn Store>, StoreError> {
    let graph = hnsw::GraphParams {
        m: cfg.hnsw.m,
        ef_construction: cfg.hnsw.ef_construction,
    };
    match cfg.store.backend {
        Backend::Embedded => Ok(Arc::new(embedded::EmbeddedStore::open(
            embedded::EmbeddedSpec {
                dir: index.to_path_buf(),
                embedder: spec.embedder.clone(),
                dim: spec.dim,
                chunker: spec.chunker.clone(),
                graph,
                segment_chunks: cfg.ingest.segment_chunks,
            },
            create,
        )?)),
        Backend::Postgres => {
            let url = cfg
                .store
                .url()
                .ok_or_else(|| pg::PgError::Url("[store] url is not set".into()))?;
            let db = pg::PgStore::open(
                &url,
                cfg.store.read_url().as_deref(),
                pg::PoolOptions::of(&cfg.store),
                pg::Meta {
                    embedder: spec.embedder.clone(),
                    dim: spec.dim,
                    chunker: spec.chunker.clone(),
                    m: graph.m,
                    ef_construction: graph.ef_construction,
                },
            )?
            .with_max_staleness(std::time::Duration::from_secs_f64(
                cfg.store.max_staleness_s,
            ))
            .with_keyword_cache(cfg.store.keyword_cache_mb)
            .with_vector_cache(cfg.store.vector_cache_mb)
            .with_text_cache(cfg.store.text_cache_mb);
            Ok(Arc::new(pg::PgBackend::new(Arc::new(db), &spec.chunker)))
        }
    }
}

#[cfg(test)]
mod tests;
