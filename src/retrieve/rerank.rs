//! An optional second stage: a cross-encoder reads the question and each
//! candidate together and scores their relevance, which a bi-encoder (one
//! vector per text) cannot. No cross-encoder ships with weights in the
//! registries reachable here, so the model is an operator-provided directory:
//! `model.onnx` (inputs `input_ids`, `attention_mask` and optionally
//! `token_type_ids`; output `logits` [batch, 1 or more], the first column
//! being the relevance), `tokenizer.json`, `config.json`,
//! `special_tokens_map.json`, `tokenizer_config.json`.

use std::path::Path;
use std::sync::Mutex;

use fastembed::{
    RerankInitOptionsUserDefined, TextRerank, TokenizerFiles, UserDefinedRerankingModel,
};

use super::Hit;
use crate::embed::EmbedError;

/// Scores (question, passage) pairs; higher is more relevant.
pub trait Reranker: Send + Sync {
    /// A relevance score per passage for `query` (higher is better), in order.
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>, EmbedError>;
}

/// A cross-encoder ONNX model run by ONNX Runtime (through fastembed).
pub struct CrossEncoder {
    model: Mutex<TextRerank>,
}

impl CrossEncoder {
    /// Loads the model in `dir`; `runtime` is the ONNX Runtime library (the
    /// embedder's), `max_tokens` the pair's window.
    pub fn load(
        dir: &Path,
        runtime: &Path,
        max_tokens: usize,
        threads: usize,
    ) -> Result<CrossEncoder, EmbedError> {
        let read = |name: &str| -> Result<Vec<u8>, EmbedError> {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|_| EmbedError::MissingFile(p))
        };
        let tok = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        crate::embed::init_runtime(runtime)?;
        let model = UserDefinedRerankingModel::new(read("model.onnx")?, tok);
        let opts = RerankInitOptionsUserDefined::new()
            .with_max_length(max_tokens)
            .with_intra_threads(threads.max(1));
        let model =
            TextRerank::try_new_from_user_defined(model, opts).map_err(|e| EmbedError::Model {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(CrossEncoder {
            model: Mutex::new(model),
        })
    }
}

impl Reranker for CrossEncoder {
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>, EmbedError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let mut m = self
            .model
            .lock()
            .map_err(|_| EmbedError::Inference("reranker lock poisoned".into()))?;
        let results = m
            .rerank(query, passages, false, Some(16))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let mut scores = vec![f32::NEG_INFINITY; passages.len()];
        for r in results {
            if let Some(s) = scores.get_mut(r.index) {
                *s = r.score;
            }
        }
        Ok(scores)
    }
}

/// Reorders `hits` by the reranker's scores (a stable sort: ties keep the
/// fused order) and keeps `k`. The hits were already access-filtered; the
/// reranker only reorders them.
pub fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    hits: Vec<Hit>,
    k: usize,
) -> Result<Vec<Hit>, EmbedError> {
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    let scores = reranker.score(query, &texts)?;
    if scores.len() != hits.len() {
        return Err(EmbedError::Inference(format!(
            "reranker returned {} scores for {} passages",
            scores.len(),
            hits.len()
        )));
    }
    let mut scored: Vec<(f32, Hit)> = scores.into_iter().zip(hits).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(scored
        .into_iter()
        .take(k)
        .map(|(score, mut h)| {
            h.score = score;
            h
        })
        .collect())
}
