//! `[store]`, `[index]` and `[hnsw]`: where chunks and vectors live and how
//! the vector graphs are built.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Check, ConfigError};

/// The storage backend: the embedded index (one machine) or PostgreSQL with
/// pgvector (several stateless nodes on one database).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded index: mapped segments beside a keyword index, one machine.
    #[default]
    Embedded,
    /// PostgreSQL with pgvector, shared by several stateless nodes.
    Postgres,
}

/// `[store]`: the backend and, for PostgreSQL, where it is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Which backend stores chunks, vectors and the gateway's books.
    #[serde(default)]
    pub backend: Backend,
    /// `postgres://user@host:port/db`; the password is better given in
    /// `HORT_DATABASE_URL` (which overrides this) than in the file.
    #[serde(default)]
    pub url: Option<String>,
    /// A streaming replica for searches (`HORT_DATABASE_READ_URL` overrides).
    #[serde(default)]
    pub read_url: Option<String>,
    /// Connections per pool (one pool for writes, one for reads).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// How long a request waits for a free connection (or a new one to
    /// open) before it fails as busy (HTTP 503).
    #[serde(default = "default_pool_timeout_s")]
    pub pool_timeout_s: f64,
    /// Searches read the replica while it is at most this many seconds
    /// behind the primary, the primary otherwise; results report the bound.
    #[serde(default = "default_max_staleness_s")]
    pub max_staleness_s: f64,
    /// Megabytes of decoded keyword postings a node keeps between searches
    /// (PostgreSQL; 0: none): they change only when a compaction rebuilds
    /// them, and reading them again cost most of a keyword search. The
    /// largest (frequent words') are read ahead after the node's first
    /// keyword search.
    #[serde(default = "default_keyword_cache_mb")]
    pub keyword_cache_mb: usize,
    /// Megabytes of access sets' vectors a node keeps between searches
    /// (PostgreSQL; 0: none): a principal who sees few chunks is served by
    /// scoring them all, which reading them from their table rows made the
    /// slowest part of a search.
    #[serde(default = "default_vector_cache_mb")]
    pub vector_cache_mb: usize,
    /// Megabytes of chunks' texts and positions a node keeps between
    /// searches (PostgreSQL; 0: none): served again while the chunk's
    /// access set is unchanged, they spare a search its last round trip.
    #[serde(default = "default_text_cache_mb")]
    pub text_cache_mb: usize,
}

/// The default of `[store] text_cache_mb`.
pub const DEFAULT_TEXT_CACHE_MB: usize = 128;

fn default_text_cache_mb() -> usize {
    DEFAULT_TEXT_CACHE_MB
}

/// The default of `[store] vector_cache_mb`.
pub const DEFAULT_VECTOR_CACHE_MB: usize = 512;

fn default_vector_cache_mb() -> usize {
    DEFAULT_VECTOR_CACHE_MB
}

/// The default of `[store] keyword_cache_mb`.
pub const DEFAULT_KEYWORD_CACHE_MB: usize = 256;

fn default_keyword_cache_mb() -> usize {
    DEFAULT_KEYWORD_CACHE_MB
}

fn default_max_staleness_s() -> f64 {
    5.0
}

fn default_pool_timeout_s() -> f64 {
    10.0
}

fn default_pool_size() -> usize {
    8
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: Backend::Embedded,
            url: None,
            read_url: None,
            pool_size: default_pool_size(),
            pool_timeout_s: default_pool_timeout_s(),
            max_staleness_s: default_max_staleness_s(),
            keyword_cache_mb: default_keyword_cache_mb(),
            vector_cache_mb: default_vector_cache_mb(),
            text_cache_mb: default_text_cache_mb(),
        }
    }
}

impl StoreConfig {
    /// The primary's URL, the environment first (it may hold a password).
    pub fn url(&self) -> Option<String> {
        std::env::var("HORT_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| self.url.clone())
    }

    /// The URL of a read replica, if configured (`HORT_DATABASE_READ_URL` wins).
    pub fn read_url(&self) -> Option<String> {
        std::env::var("HORT_DATABASE_READ_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| self.read_url.clone())
    }
}

/// `[index]`: where the embedded index lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// The index directory, relative to the configuration file.
    #[serde(default = "default_index_path")]
    pub path: PathBuf,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            path: default_index_path(),
        }
    }
}

fn default_index_path() -> PathBuf {
    PathBuf::from("data/index")
}

/// `[hnsw]`: how the vector graphs are built and searched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HnswConfig {
    /// Links per node (graph degree).
    #[serde(default = "default_m")]
    pub m: usize,
    /// Beam width while building.
    #[serde(default = "default_ef_construction")]
    pub ef_construction: usize,
    /// Beam width while searching (widened for narrow filters).
    #[serde(default = "default_ef_search")]
    pub ef_search: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: default_m(),
            ef_construction: default_ef_construction(),
            ef_search: default_ef_search(),
        }
    }
}

fn default_m() -> usize {
    16
}
fn default_ef_construction() -> usize {
    200
}
fn default_ef_search() -> usize {
    64
}

impl StoreConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        if self.backend == Backend::Postgres && self.url().is_none() {
            return Err(c.invalid(
                "store.url",
                "backend = \"postgres\" needs a url (or HORT_DATABASE_URL)",
            ));
        }
        c.range("store.pool_size", self.pool_size, 1, 256)?;
        c.range("store.pool_timeout_s", self.pool_timeout_s, 0.1, 3_600.0)?;
        c.range("store.keyword_cache_mb", self.keyword_cache_mb, 0, 1 << 20)?;
        c.range("store.vector_cache_mb", self.vector_cache_mb, 0, 1 << 20)?;
        c.range("store.text_cache_mb", self.text_cache_mb, 0, 1 << 20)?;
        // NaN fails the range check too.
        c.range("store.max_staleness_s", self.max_staleness_s, 0.0, 86_400.0)
    }
}

impl HnswConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range("hnsw.m", self.m, 4, 128)?;
        if self.ef_construction < self.m || self.ef_construction > 4096 {
            return Err(c.invalid("hnsw.ef_construction", "must be between hnsw.m and 4096"));
        }
        c.range("hnsw.ef_search", self.ef_search, 1, 4096)
    }
}
