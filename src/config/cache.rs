//! `[cache]`: the answer cache of the gateway (what the provider said for a
//! question over one exact context, reused for callers who would send the
//! provider that same context).

use serde::Deserialize;

use super::{Check, ConfigError};

/// `[cache]`: the answer cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Reuse answers at all (teams may opt out: `[[teams]] answer_cache = false`).
    #[serde(default = "super::default_true")]
    pub enabled: bool,
    /// How long an answer is reused, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
    /// The most answers kept; past it the least recently used go first.
    #[serde(default = "default_max_entries")]
    pub max_entries: u64,
    /// Cosine similarity at or above which a question counts as the same as
    /// a cached one (semantic cache, for teams that opt in with
    /// `[[teams]] semantic_cache = true`; the context must still be identical
    /// and numbers, negations and comparisons must agree).
    #[serde(default = "default_similarity")]
    pub semantic_similarity: f32,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            ttl_s: default_ttl(),
            max_entries: default_max_entries(),
            semantic_similarity: default_similarity(),
        }
    }
}

fn default_ttl() -> u64 {
    86_400
}
fn default_max_entries() -> u64 {
    10_000
}
fn default_similarity() -> f32 {
    0.92
}

impl CacheConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range("cache.ttl_s", self.ttl_s, 1, 31_536_000)?;
        c.range("cache.max_entries", self.max_entries, 1, 100_000_000)?;
        c.range(
            "cache.semantic_similarity",
            self.semantic_similarity,
            0.5,
            1.0,
        )
    }
}
