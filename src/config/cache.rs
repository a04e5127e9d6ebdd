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
    /// and numbers, negations and comparisons must agree). Default: the
    /// lowest value without a wrong hit on `bench/cache/pairs-dev.tsv` for
    /// the configured model (see [`CacheConfig::similarity_for`]).
    pub semantic_similarity: Option<f32>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            ttl_s: default_ttl(),
            max_entries: default_max_entries(),
            semantic_similarity: None,
        }
    }
}

fn default_ttl() -> u64 {
    86_400
}
fn default_max_entries() -> u64 {
    10_000
}
impl CacheConfig {
    /// The similarity threshold for an embedding model (its id): the
    /// configured one, or the one `hort bench cache` chose on the dev pairs
    /// for the bundled models (0.97 for a model it does not know).
    pub fn similarity_for(&self, model: &str) -> f32 {
        self.semantic_similarity
            .unwrap_or(if model.starts_with("minilm") {
                0.95
            } else {
                0.97
            })
    }
}

impl CacheConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range("cache.ttl_s", self.ttl_s, 1, 31_536_000)?;
        c.range("cache.max_entries", self.max_entries, 1, 100_000_000)?;
        match self.semantic_similarity {
            Some(s) => c.range("cache.semantic_similarity", s, 0.5, 1.0),
            None => Ok(()),
        }
    }
}
