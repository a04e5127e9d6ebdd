//! The real embedding model: all-MiniLM-L6-v2 (int8 ONNX) through fastembed,
//! with ONNX Runtime loaded at run time from the pinned library that
//! `make models` fetched. Nothing is downloaded here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use fastembed::{
    InitOptionsUserDefined, OutputKey, Pooling, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};

use super::{normalize, EmbedError, Embedder, Layout, Pooled};

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingKind {
    /// Mean over the attended tokens (MiniLM, E5).
    Mean,
    /// The first token's vector (BGE and other CLS-trained models).
    Cls,
}

/// One model: where its files are, and what its definition says about how
/// it reads text (the index records `id`, and refuses another model).
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model's id (recorded in the index).
    pub id: String,
    /// Directory with the model and tokenizer files.
    pub dir: PathBuf,
    /// The ONNX Runtime shared library.
    pub runtime: PathBuf,
    /// Dimensions of the output vectors.
    pub dim: usize,
    /// The longest input in tokens.
    pub max_tokens: usize,
    /// How token vectors become one vector.
    pub pooling: PoolingKind,
    /// Put before every question (E5: `"query: "`).
    pub query_prefix: String,
    /// Put before every passage (E5: `"passage: "`).
    pub passage_prefix: String,
}

/// `hort-model.toml` in a model directory of one's own.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Definition {
    id: String,
    dim: usize,
    max_tokens: usize,
    pooling: PoolingKind,
    #[serde(default)]
    query_prefix: String,
    #[serde(default)]
    passage_prefix: String,
}

impl ModelFiles {
    /// all-MiniLM-L6-v2, int8: 384 dimensions, trained on 256-token inputs.
    pub fn minilm(models_dir: &Path, runtime: Option<PathBuf>) -> ModelFiles {
        ModelFiles {
            id: "minilm-l6-int8/1".into(),
            dir: models_dir.join("minilm-l6"),
            runtime: runtime.unwrap_or_else(|| default_runtime(models_dir)),
            dim: 384,
            max_tokens: 256,
            pooling: PoolingKind::Mean,
            query_prefix: String::new(),
            passage_prefix: String::new(),
        }
    }

    /// multilingual-e5-small, 4-bit weights (converted by `make models`):
    /// 384 dimensions, 512 tokens, ~100 languages; E5 expects the prefixes.
    pub fn e5_small(models_dir: &Path, runtime: Option<PathBuf>) -> ModelFiles {
        ModelFiles {
            id: "multilingual-e5-small-q4/1".into(),
            dir: models_dir.join("multilingual-e5-small"),
            runtime: runtime.unwrap_or_else(|| default_runtime(models_dir)),
            dim: 384,
            max_tokens: 512,
            pooling: PoolingKind::Mean,
            query_prefix: "query: ".into(),
            passage_prefix: "passage: ".into(),
        }
    }

    /// A model directory of one's own: `model.onnx`, `tokenizer.json`,
    /// `config.json`, `special_tokens_map.json`, `tokenizer_config.json`
    /// and `hort-model.toml` (id, dim, max_tokens, pooling, prefixes).
    pub fn from_dir(dir: &Path, runtime: PathBuf) -> Result<ModelFiles, EmbedError> {
        let p = dir.join("hort-model.toml");
        let text = std::fs::read_to_string(&p).map_err(|_| EmbedError::MissingFile(p.clone()))?;
        let d: Definition = toml::from_str(&text).map_err(|e| EmbedError::Model {
            path: p.clone(),
            message: e.to_string(),
        })?;
        if d.dim == 0 || d.max_tokens < 16 || d.id.trim().is_empty() {
            return Err(EmbedError::Model {
                path: p,
                message: "id must be set, dim at least 1, max_tokens at least 16".into(),
            });
        }
        Ok(ModelFiles {
            id: d.id,
            dir: dir.to_path_buf(),
            runtime,
            dim: d.dim,
            max_tokens: d.max_tokens,
            pooling: d.pooling,
            query_prefix: d.query_prefix,
            passage_prefix: d.passage_prefix,
        })
    }
}

pub(crate) fn default_runtime(models_dir: &Path) -> PathBuf {
    let dir = models_dir.join("onnxruntime");
    // The pinned file name carries its version; take whichever one is there.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut libs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
            })
            .collect();
        libs.sort();
        if let Some(p) = libs.pop() {
            return p;
        }
    }
    dir.join("libonnxruntime.so")
}

/// The ONNX Runtime library can be loaded once per process.
static RUNTIME: OnceLock<Result<PathBuf, String>> = OnceLock::new();

pub(crate) fn init_runtime(path: &Path) -> Result<(), EmbedError> {
    if !path.is_file() {
        return Err(EmbedError::MissingFile(path.to_path_buf()));
    }
    let r = RUNTIME.get_or_init(|| match ort::init_from(path) {
        // Loading the library is all that is needed; sessions create the
        // default environment on first use.
        Ok(_builder) => Ok(path.to_path_buf()),
        Err(e) => Err(e.to_string()),
    });
    match r {
        Ok(_) => Ok(()),
        Err(message) => Err(EmbedError::Runtime {
            path: path.to_path_buf(),
            message: message.clone(),
        }),
    }
}

/// A sentence-embedding model run by ONNX Runtime.
pub struct OnnxEmbedder {
    files: ModelFiles,
    /// fastembed's `embed` needs `&mut`, so each session serves one call at
    /// a time; several sessions let ingest workers and concurrent questions
    /// embed in parallel (one intra-op thread each scaled better than one
    /// session with many threads: `hort bench embed`).
    sessions: Vec<Mutex<TextEmbedding>>,
    /// The question session ([`Layout::question_threads`]), if any.
    wide: Option<Mutex<TextEmbedding>>,
    /// Calls running now (the question session is for a call alone).
    running: AtomicUsize,
    /// Indexes of the sessions nobody holds; callers wait for any of them
    /// (waiting on one in particular would leave another idle).
    free: Mutex<Vec<usize>>,
    freed: Condvar,
    layout: Layout,
    /// A second tokenizer without truncation or padding, for counting.
    counter: tokenizers::Tokenizer,
}

impl OnnxEmbedder {
    /// Loads the model as `layout` says (sessions × intra-op threads).
    pub fn load(files: &ModelFiles, layout: Layout) -> Result<OnnxEmbedder, EmbedError> {
        let read = |name: &str| -> Result<Vec<u8>, EmbedError> {
            let p = files.dir.join(name);
            std::fs::read(&p).map_err(|_| EmbedError::MissingFile(p))
        };
        let onnx = read("model.onnx")?;
        let tokenizer_file = read("tokenizer.json")?;
        let tok = TokenizerFiles {
            tokenizer_file: tokenizer_file.clone(),
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        init_runtime(&files.runtime)?;
        let model_err = |message: String| EmbedError::Model {
            path: files.dir.clone(),
            message,
        };
        let pooling = || match files.pooling {
            PoolingKind::Mean => Pooling::Mean,
            PoolingKind::Cls => Pooling::Cls,
        };
        let layout = Layout {
            sessions: layout.sessions.max(1),
            intra_threads: layout.intra_threads.max(1),
            question_threads: layout.question_threads,
        };
        let session = |threads: usize| {
            let udm =
                UserDefinedEmbeddingModel::new(onnx.clone(), tok.clone()).with_pooling(pooling());
            // Threads that spin while waiting for work burn the cores other
            // sessions need; they sleep instead.
            let opts = InitOptionsUserDefined::new()
                .with_max_length(files.max_tokens)
                .with_intra_threads(threads)
                .with_session_config("session.intra_op.allow_spinning", "0");
            TextEmbedding::try_new_from_user_defined(udm, opts)
                .map(Mutex::new)
                .map_err(|e| model_err(e.to_string()))
        };
        let mut sessions = Vec::with_capacity(layout.sessions);
        for _ in 0..layout.sessions {
            sessions.push(session(layout.intra_threads)?);
        }
        let wide = match layout.question_threads {
            0 | 1 => None,
            n => Some(session(n)?),
        };
        let mut counter = tokenizers::Tokenizer::from_bytes(&tokenizer_file)
            .map_err(|e| model_err(format!("tokenizer.json: {e}")))?;
        counter
            .with_truncation(None)
            .map_err(|e| model_err(format!("tokenizer.json: {e}")))?;
        counter.with_padding(None);
        Ok(OnnxEmbedder {
            files: files.clone(),
            sessions,
            wide,
            running: AtomicUsize::new(0),
            free: Mutex::new((0..layout.sessions).rev().collect()),
            freed: Condvar::new(),
            layout,
            counter,
        })
    }

    /// A free session, waiting for the first one freed if all are busy.
    fn session(&self) -> Result<Held<'_>, EmbedError> {
        let poisoned = || EmbedError::Inference("a model session panicked earlier".into());
        let mut free = self.free.lock().map_err(|_| poisoned())?;
        let i = loop {
            if let Some(i) = free.pop() {
                break i;
            }
            free = self.freed.wait(free).map_err(|_| poisoned())?;
        };
        drop(free);
        // Returned to the free list even if taking the lock fails below.
        let slot = Slot { owner: self, i };
        let guard = self.sessions[i].lock().map_err(|_| poisoned())?;
        Ok(Held { guard, _slot: slot })
    }

    /// Runs `f` on a model session: the question session for a question
    /// asked while nothing else runs, else a pooled one.
    fn with_model<R>(
        &self,
        question: bool,
        f: impl FnOnce(&mut TextEmbedding) -> Result<R, EmbedError>,
    ) -> Result<R, EmbedError> {
        let running = Running::enter(&self.running);
        let alone = running.was == 0;
        let mut wide_guard = match (&self.wide, question && alone) {
            (Some(w), true) => w.try_lock().ok(),
            _ => None,
        };
        let mut pooled;
        let model: &mut TextEmbedding = match wide_guard.as_deref_mut() {
            Some(m) => m,
            None => {
                pooled = self.session()?;
                &mut pooled.guard
            }
        };
        f(model)
    }

    fn prefixed<'a>(prefix: &str, texts: &[&'a str]) -> Vec<std::borrow::Cow<'a, str>> {
        texts
            .iter()
            .map(|t| match prefix {
                "" => std::borrow::Cow::Borrowed(*t),
                p => std::borrow::Cow::Owned(format!("{p}{t}")),
            })
            .collect()
    }

    fn checked(&self, mut out: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>, EmbedError> {
        for v in &mut out {
            if v.len() != self.files.dim {
                return Err(EmbedError::Inference(format!(
                    "model returned {} dimensions, expected {}",
                    v.len(),
                    self.files.dim
                )));
            }
            normalize(v);
        }
        Ok(out)
    }

    fn run(
        &self,
        prefix: &str,
        texts: &[&str],
        question: bool,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let texts = Self::prefixed(prefix, texts);
        let out = self.with_model(question, |model| {
            model
                .embed(&texts, Some(texts.len()))
                .map_err(|e| EmbedError::Inference(e.to_string()))
        })?;
        self.checked(out)
    }

    /// Passage vectors and span-pooled token states from one forward pass.
    fn run_spans(
        &self,
        texts: &[&str],
        spans: &[Vec<(usize, usize)>],
    ) -> Result<Option<Vec<Pooled>>, EmbedError> {
        if texts.len() != spans.len() {
            return Err(EmbedError::Inference(
                "one span list per text expected".into(),
            ));
        }
        if texts.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let prefix = &self.files.passage_prefix;
        let prefixed = Self::prefixed(prefix, texts);
        let inference = |e: fastembed::Error| EmbedError::Inference(e.to_string());
        let pooling = match self.files.pooling {
            PoolingKind::Mean => Pooling::Mean,
            PoolingKind::Cls => Pooling::Cls,
        };
        let precedence: &[OutputKey] = &OUTPUTS;
        let (vectors, states) = self.with_model(false, |model| {
            let out = model
                .transform(&prefixed, Some(prefixed.len()))
                .map_err(inference)?;
            let mut vectors = Vec::with_capacity(texts.len());
            let mut states = Vec::with_capacity(texts.len());
            for batch in out.into_raw() {
                let pooled = batch
                    .select_and_pool_output(&precedence, Some(pooling.clone()))
                    .map_err(inference)?;
                for row in pooled.rows() {
                    vectors.push(row.to_vec());
                }
                let tokens = batch.select_output(&precedence).map_err(inference)?;
                let shape = tokens.shape().to_vec();
                let [rows, seq, dim] = shape[..] else {
                    // The model pools inside: no token states to read.
                    return Ok((vectors, None));
                };
                let flat = tokens
                    .as_standard_layout()
                    .iter()
                    .copied()
                    .collect::<Vec<f32>>();
                for r in 0..rows {
                    let attended = batch
                        .attention_mask_array
                        .row(r)
                        .iter()
                        .filter(|m| **m != 0)
                        .count();
                    states.push((
                        flat[r * seq * dim..(r + 1) * seq * dim].to_vec(),
                        attended.min(seq),
                        dim,
                    ));
                }
            }
            Ok((vectors, Some(states)))
        })?;
        let vectors = self.checked(vectors)?;
        let Some(states) = states else {
            return Ok(None);
        };
        if vectors.len() != texts.len() || states.len() != texts.len() {
            return Err(EmbedError::Inference(
                "embedder returned a different count".into(),
            ));
        }
        let mut out = Vec::with_capacity(texts.len());
        for (i, (vector, (h, attended, dim))) in vectors.into_iter().zip(states).enumerate() {
            let enc = self
                .counter
                .encode(prefixed[i].as_ref(), true)
                .map_err(|e| EmbedError::Inference(format!("tokenizer: {e}")))?;
            // Tokens past the model's window were cut (the last one read is
            // the closing special token): only those before it count.
            let offsets = &enc.get_offsets()[..enc.len().min(attended.saturating_sub(1))];
            let pooled = spans[i]
                .iter()
                .map(|&(a, b)| {
                    let (a, b) = (a + prefix.len(), b + prefix.len());
                    let mut v = vec![0f32; dim];
                    let mut n = 0usize;
                    for (k, &(x, y)) in offsets.iter().enumerate() {
                        if y > x && x >= a && y <= b {
                            n += 1;
                            for (acc, h) in v.iter_mut().zip(&h[k * dim..(k + 1) * dim]) {
                                *acc += h;
                            }
                        }
                    }
                    if n == 0 {
                        return Vec::new();
                    }
                    normalize(&mut v);
                    v
                })
                .collect();
            out.push(Pooled {
                vector,
                spans: pooled,
            });
        }
        Ok(Some(out))
    }
}

/// The outputs fastembed's `embed` reads, in its order.
const OUTPUTS: [OutputKey; 4] = [
    OutputKey::OnlyOne,
    OutputKey::ByName("text_embeds"),
    OutputKey::ByName("last_hidden_state"),
    OutputKey::ByName("sentence_embedding"),
];

/// A session taken from the pool; back on the free list when dropped.
struct Held<'a> {
    guard: MutexGuard<'a, TextEmbedding>,
    _slot: Slot<'a>,
}

struct Slot<'a> {
    owner: &'a OnnxEmbedder,
    i: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // A poisoned free list means a panic mid-push: nothing to restore.
        if let Ok(mut free) = self.owner.free.lock() {
            free.push(self.i);
            self.owner.freed.notify_one();
        }
    }
}

/// Counts a call as running while it lives.
struct Running<'a> {
    count: &'a AtomicUsize,
    /// Calls that were running before this one.
    was: usize,
}

impl<'a> Running<'a> {
    fn enter(count: &'a AtomicUsize) -> Running<'a> {
        let was = count.fetch_add(1, Ordering::AcqRel);
        Running { count, was }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Embedder for OnnxEmbedder {
    fn id(&self) -> &str {
        &self.files.id
    }
    fn dim(&self) -> usize {
        self.files.dim
    }
    fn max_tokens(&self) -> usize {
        // The passage prefix takes part of the window.
        self.files
            .max_tokens
            .saturating_sub(self.count_tokens(&self.files.passage_prefix))
    }
    fn count_tokens(&self, text: &str) -> usize {
        match self.counter.encode(text, false) {
            Ok(enc) => enc.len(),
            // A tokenizer failure must not stop chunking; a word-based estimate
            // errs on the large side, so chunks stay within the model's window.
            Err(_) => text.split_whitespace().count() * 2,
        }
    }
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(&self.files.passage_prefix, texts, false)
    }
    fn embed_passages_spans(
        &self,
        texts: &[&str],
        spans: &[Vec<(usize, usize)>],
    ) -> Result<Option<Vec<Pooled>>, EmbedError> {
        self.run_spans(texts, spans)
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.run(&self.files.query_prefix, &[text], true)?
            .pop()
            .ok_or_else(|| EmbedError::Inference("no output".into()))
    }
    fn parallelism(&self) -> usize {
        self.layout.sessions
    }
}
