//! `[retrieve]`: hybrid search, fusion and reranking.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Check, ConfigError};

/// `[retrieve]`: hybrid search, fusion and reranking.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveConfig {
    /// Hits returned when a query gives no `k`.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Candidates taken from each of vector and keyword search before fusion.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// The constant of reciprocal rank fusion.
    #[serde(default = "default_rrf_k")]
    pub rrf_k: f32,
    /// Below this many visible chunks, vectors are scored exactly instead of via the graph.
    #[serde(default = "default_exact_threshold")]
    pub exact_threshold: usize,
    /// How vector and keyword results are combined.
    #[serde(default)]
    pub fusion: Fusion,
    /// Weight of the vector list in fusion.
    #[serde(default = "default_weight")]
    pub vector_weight: f32,
    /// Weight of the keyword list in fusion.
    #[serde(default = "default_weight")]
    pub keyword_weight: f32,
    /// Keyword evidence counts for a question only when this many of its
    /// nearest chunks by meaning are in its language (0 = always). A German
    /// question whose nearest chunks are English is asked across languages:
    /// the keyword side can only match its German words, i.e. the wrong
    /// (German) documents. Chosen on the training split of the German/English
    /// set (`bench/multilingual-train/`); a corpus in one language never
    /// closes it.
    #[serde(default = "default_language_gate")]
    pub language_gate: usize,
    /// A German–English dictionary in Ding's format, for searching a
    /// question's keywords in the other language too (docs/multilingual.md).
    /// Default: `<models_dir>/ding/usr/share/trans/de-en` if it is there
    /// (`make models` fetches it); without one, questions are searched in
    /// their own words only.
    #[serde(default)]
    pub dictionary: Option<PathBuf>,
    /// Weight of a translated keyword against a word of the question (0 =
    /// no translation). Chosen on the training split of the German/English
    /// set (`bench/multilingual-train/`).
    #[serde(default = "default_translation_weight")]
    pub translation_weight: f32,
    /// A question asked across languages is also put word by word into the
    /// other language with the dictionary, embedded and searched by meaning
    /// (its nearest chunks merged into the vector side by the better
    /// similarity; docs/multilingual.md). Chosen on the training splits
    /// (both models, both sets better); on held-out sets it lifts questions
    /// across languages and costs some in the documents' own language
    /// (German over German manual pages, first place 0.94 → 0.85 with
    /// e5-small). One more embedding and vector search for such questions;
    /// the dictionary takes ~0.5 s and ~65 MB more to read.
    #[serde(default = "super::default_true")]
    pub translated_vectors: bool,
    /// At most this many hits per document (0 = no limit).
    #[serde(default)]
    pub max_per_doc: usize,
    /// Drop a hit whose text overlaps a better hit of the same page.
    #[serde(default = "super::default_true")]
    pub dedupe_overlaps: bool,
    /// A cross-encoder model directory (docs/multilingual.md): the best
    /// `rerank_candidates` hits are reordered by it. None ships here.
    #[serde(default)]
    pub reranker: Option<PathBuf>,
    /// Hits the reranker scores (the best of them are returned).
    #[serde(default = "default_rerank_candidates")]
    pub rerank_candidates: usize,
}

fn default_translation_weight() -> f32 {
    1.0
}

fn default_language_gate() -> usize {
    5
}

fn default_rerank_candidates() -> usize {
    20
}

/// Fusion of the vector and keyword result lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: Σ w / (rrf_k + rank). Robust to score scales.
    Rrf,
    /// Σ w · score, each list's scores min-max normalised to [0, 1]. The
    /// default: better than RRF on SciFact train (0.732 vs 0.723 nDCG@10,
    /// chosen there) and on the sample corpus (`hort bench quality`).
    #[default]
    Weighted,
}

impl Default for RetrieveConfig {
    fn default() -> Self {
        RetrieveConfig {
            k: default_k(),
            candidates: default_candidates(),
            rrf_k: default_rrf_k(),
            exact_threshold: default_exact_threshold(),
            fusion: Fusion::default(),
            vector_weight: default_weight(),
            keyword_weight: default_weight(),
            language_gate: default_language_gate(),
            dictionary: None,
            translation_weight: default_translation_weight(),
            translated_vectors: true,
            max_per_doc: 0,
            dedupe_overlaps: true,
            reranker: None,
            rerank_candidates: default_rerank_candidates(),
        }
    }
}

fn default_k() -> usize {
    8
}
fn default_candidates() -> usize {
    50
}
fn default_rrf_k() -> f32 {
    60.0
}
fn default_exact_threshold() -> usize {
    20_000
}
fn default_weight() -> f32 {
    1.0
}

impl RetrieveConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range(
            "retrieve.rerank_candidates",
            self.rerank_candidates,
            1,
            10_000,
        )?;
        c.range("retrieve.k", self.k, 1, 1000)?;
        c.range("retrieve.candidates", self.candidates, 1, 10_000)?;
        if !(self.rrf_k.is_finite() && self.rrf_k > 0.0) {
            return Err(c.invalid("retrieve.rrf_k", "must be a positive number"));
        }
        for (name, w) in [
            ("retrieve.vector_weight", self.vector_weight),
            ("retrieve.keyword_weight", self.keyword_weight),
            ("retrieve.translation_weight", self.translation_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(c.invalid(name, "must be a number >= 0"));
            }
        }
        if self.vector_weight + self.keyword_weight <= 0.0 {
            return Err(c.invalid(
                "retrieve.vector_weight",
                "vector_weight and keyword_weight cannot both be 0",
            ));
        }
        Ok(())
    }
}
