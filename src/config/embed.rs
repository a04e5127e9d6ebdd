//! `[embed]`: the local embedding model and how it runs.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Check, ConfigError};

/// `[embed]`: which local model embeds chunks and questions, and how it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// Model name (`minilm-l6`) or `hash` (a deterministic embedder for tests).
    #[serde(default = "default_model")]
    pub model: String,
    /// Where `make models` put the model files; searched beside the binary too.
    pub models_dir: Option<PathBuf>,
    /// The ONNX Runtime shared library; default: `<models_dir>/onnxruntime/libonnxruntime.so*`.
    pub runtime: Option<PathBuf>,
    /// Cores the model may use (0: every core). Each core gets a model
    /// session of its own, so ingest embeds on all of them and concurrent
    /// questions do not wait for each other; set 1 on a shared machine.
    #[serde(default)]
    pub threads: usize,
    /// Questions whose vectors are remembered (least recently used go
    /// first; 0: none).
    #[serde(default = "default_query_cache")]
    pub query_cache: usize,
    /// Texts per call of the model during ingest.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model: default_model(),
            models_dir: None,
            runtime: None,
            threads: 0,
            query_cache: default_query_cache(),
            batch_size: default_batch(),
        }
    }
}

fn default_model() -> String {
    "minilm-l6".into()
}
fn default_query_cache() -> usize {
    1024
}
fn default_batch() -> usize {
    32
}

impl EmbedConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range("embed.batch_size", self.batch_size, 1, 1024)?;
        c.range("embed.threads", self.threads, 0, 1024)?;
        c.range("embed.query_cache", self.query_cache, 0, 1_000_000)
    }
}
