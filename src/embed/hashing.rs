//! A deterministic, dependency-free embedder for tests: feature hashing of
//! lower-cased words and character trigrams. Texts that share words land
//! near each other, which is all unit tests of retrieval need.

use super::{normalize, EmbedError, Embedder};

/// A deterministic embedder of hashed word and character n-grams: no model files, for tests and demos.
pub struct HashEmbedder {
    dim: usize,
    id: String,
}

impl HashEmbedder {
    /// An embedder of `dim` dimensions.
    pub fn new(dim: usize) -> HashEmbedder {
        HashEmbedder {
            dim: dim.max(8),
            id: format!("hash-v1-{}", dim.max(8)),
        }
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        for word in words(text) {
            let w = word.to_lowercase();
            add(&mut v, fnv(w.as_bytes()), 1.0);
            let chars: Vec<char> = format!(" {w} ").chars().collect();
            for tri in chars.windows(3) {
                let s: String = tri.iter().collect();
                add(&mut v, fnv(s.as_bytes()), 0.3);
            }
        }
        normalize(&mut v);
        v
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn add(v: &mut [f32], h: u64, w: f32) {
    let i = (h % v.len() as u64) as usize;
    let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
    v[i] += sign * w;
}

impl Embedder for HashEmbedder {
    fn id(&self) -> &str {
        &self.id
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn max_tokens(&self) -> usize {
        256
    }
    fn count_tokens(&self, text: &str) -> usize {
        // Roughly what a WordPiece tokenizer does: words plus punctuation marks.
        words(text).count() + text.chars().filter(|c| c.is_ascii_punctuation()).count()
    }
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed(t)).collect())
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_unit_vectors_that_reflect_overlap() {
        let e = HashEmbedder::new(384);
        let a = e.embed_query("travel expenses need approval").unwrap();
        let b = e
            .embed_passages(&["Travel expenses need CFO approval"])
            .unwrap();
        let c = e.embed_query("kubernetes cluster upgrade").unwrap();
        assert_eq!(a, e.embed_query("travel expenses need approval").unwrap());
        assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        assert!(cos(&a, &b[0]) > cos(&a, &c) + 0.3);
        assert_eq!(e.count_tokens("Hello, world."), 4);
    }
}
