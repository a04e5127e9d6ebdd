//! Text → vector. One trait at the seam ([`Embedder`]); the real model runs
//! through ONNX Runtime ([`OnnxEmbedder`]), and a small deterministic
//! [`HashEmbedder`] makes unit tests fast and independent of model files.

mod cache;
mod hashing;
mod onnx;
pub mod space;

pub use cache::QueryCache;
pub use hashing::HashEmbedder;
pub(crate) use onnx::init_runtime;
pub use onnx::{ModelFiles, OnnxEmbedder, PoolingKind};
pub use space::Space;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::EmbedConfig;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file of the model is missing.
    #[error("model file missing: {0} (run `make models` to fetch the pinned model files)")]
    MissingFile(PathBuf),
    /// The ONNX Runtime library could not be loaded.
    #[error("cannot load the ONNX Runtime library {path}: {message}")]
    Runtime {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The model could not be loaded.
    #[error("cannot load the embedding model from {path}: {message}")]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The model failed on an input.
    #[error("embedding failed: {0}")]
    Inference(String),
    /// The configured model is not one hort knows.
    #[error("unknown embedding model {0:?} (known: minilm-l6, multilingual-e5-small, hash, or a directory with a hort-model.toml)")]
    UnknownModel(String),
}

/// A text embedder. Implementations must be deterministic for the same input,
/// return unit-length vectors of [`Embedder::dim`] floats, and be usable from
/// several threads (the ingest pipeline counts tokens on rayon workers).
pub trait Embedder: Send + Sync {
    /// Identifies model and version; the index records it and refuses another.
    fn id(&self) -> &str;
    /// Dimensions of the vectors.
    fn dim(&self) -> usize;
    /// The longest input the model reads, in its own tokens.
    fn max_tokens(&self) -> usize;
    /// Tokens the model would see for `text` (no special tokens, no truncation).
    fn count_tokens(&self, text: &str) -> usize;
    /// Embeds document passages.
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Embeds a query (models with asymmetric prefixes treat it differently).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError>;
    /// Like [`Embedder::embed_passages`], and from the same forward pass the
    /// model's token states mean-pooled over byte `spans` of each text: the
    /// learned injection detector reads sentence windows of a chunk without
    /// running the model twice. `Ok(None)` if this embedder has no token
    /// states (the learned detector is then off).
    fn embed_passages_spans(
        &self,
        texts: &[&str],
        spans: &[Vec<(usize, usize)>],
    ) -> Result<Option<Vec<Pooled>>, EmbedError> {
        let _ = (texts, spans);
        Ok(None)
    }
    /// Calls that can run at once without waiting for each other (the
    /// ingest pipeline starts this many embedding workers).
    fn parallelism(&self) -> usize {
        1
    }
}

/// The model facts a wrapping embedder passes through unchanged (a wrapper
/// changes how texts are embedded or what is kept of them, never which
/// model reads them): `id`, `dim`, `max_tokens`, `count_tokens` of field
/// `$inner`, written once for every wrapper's `impl Embedder`.
macro_rules! delegate_model_facts {
    ($inner:ident) => {
        fn id(&self) -> &str {
            self.$inner.id()
        }
        fn dim(&self) -> usize {
            self.$inner.dim()
        }
        fn max_tokens(&self) -> usize {
            self.$inner.max_tokens()
        }
        fn count_tokens(&self, text: &str) -> usize {
            self.$inner.count_tokens(text)
        }
    };
}
pub(crate) use delegate_model_facts;

/// A passage's vector and its token states pooled over byte spans of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pooled {
    /// The passage vector, as [`Embedder::embed_passages`] gives it.
    pub vector: Vec<f32>,
    /// One unit vector per requested span, in order; empty where the span
    /// holds no token the model read (truncated away, or only spaces).
    pub spans: Vec<Vec<f32>>,
}

/// How a model's work is spread over cores: `sessions` independent model
/// sessions (each serves one call at a time), each with `intra_threads`
/// threads of its own; and, for questions, optionally one more session
/// that spreads a single question over `question_threads` cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Model sessions.
    pub sessions: usize,
    /// Threads inside each session.
    pub intra_threads: usize,
    /// Threads of the question session (0: none). A question embeds there
    /// when no other call is running: one question alone then finishes
    /// sooner (4.2 instead of 6.0 ms for MiniLM on 2 cores), while under
    /// load questions take the one-thread sessions, which waste no time
    /// synchronising threads (11 % more questions per second here).
    pub question_threads: usize,
}

/// Sessions beyond this add memory (each holds the weights and its own
/// buffers) faster than throughput; larger machines give each session more
/// threads instead.
const MAX_SESSIONS: usize = 16;

impl Layout {
    /// The layout for `threads` cores (0: every core of the machine). One
    /// thread per session: on this 2-core machine two sessions embedded
    /// 1.9× one, one session with two threads 1.3–1.8× (`hort bench embed`).
    pub fn for_threads(threads: usize) -> Layout {
        let threads = if threads == 0 { cores() } else { threads };
        let sessions = threads.clamp(1, MAX_SESSIONS);
        Layout {
            sessions,
            intra_threads: (threads / sessions).max(1),
            question_threads: if threads > 1 { threads.min(8) } else { 0 },
        }
    }

    /// `sessions` one-thread sessions and nothing else (benchmarks compare
    /// layouts with it).
    pub fn sessions(sessions: usize) -> Layout {
        Layout {
            sessions,
            intra_threads: 1,
            question_threads: 0,
        }
    }

    /// Threads in all.
    pub fn threads(&self) -> usize {
        self.sessions * self.intra_threads
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Scales `v` to unit length (leaves an all-zero vector alone).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Finds the model directory: the configured one, else `data/models` in the
/// working directory, else `data/models` two levels above the executable
/// (`target/release/hort` in a checkout).
pub fn models_dir(cfg: &EmbedConfig, resolve: impl Fn(&Path) -> PathBuf) -> PathBuf {
    if let Some(d) = &cfg.models_dir {
        return resolve(d);
    }
    let cwd = PathBuf::from("data/models");
    if cwd.is_dir() {
        return cwd;
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            let d = root.join("data/models");
            if d.is_dir() {
                return d;
            }
        }
    }
    cwd
}

/// The ONNX Runtime library a configuration uses.
pub fn runtime_path(cfg: &EmbedConfig, resolve: impl Fn(&Path) -> PathBuf) -> PathBuf {
    match cfg.runtime.as_deref() {
        Some(r) => resolve(r),
        None => onnx::default_runtime(&models_dir(cfg, &resolve)),
    }
}

/// The model files a configuration names (`None`: the hash embedder).
pub fn model_files(
    cfg: &EmbedConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Option<ModelFiles>, EmbedError> {
    let runtime = || cfg.runtime.as_deref().map(&resolve);
    Ok(Some(match cfg.model.as_str() {
        "hash" => return Ok(None),
        "minilm-l6" => ModelFiles::minilm(&models_dir(cfg, &resolve), runtime()),
        "multilingual-e5-small" => ModelFiles::e5_small(&models_dir(cfg, &resolve), runtime()),
        other if other.contains('/') => {
            ModelFiles::from_dir(&resolve(Path::new(other)), runtime_path(cfg, &resolve))?
        }
        other => return Err(EmbedError::UnknownModel(other.to_string())),
    }))
}

/// Builds the embedder a configuration names: `[embed] threads` sessions
/// (every core by default), questions remembered in an LRU of
/// `[embed] query_cache` entries.
pub fn from_config(
    cfg: &EmbedConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Arc<dyn Embedder>, EmbedError> {
    let inner: Arc<dyn Embedder> = match model_files(cfg, resolve)? {
        None => Arc::new(HashEmbedder::new(384)),
        Some(files) => Arc::new(OnnxEmbedder::load(
            &files,
            Layout::for_threads(cfg.threads),
        )?),
    };
    Ok(match cfg.query_cache {
        0 => inner,
        n => Arc::new(QueryCache::new(inner, n)),
    })
}
