//! Question embeddings remembered: people and dashboards ask the same
//! short questions again, and embedding one costs milliseconds where the
//! search after it costs less than one. A least-recently-used map from the
//! question's exact text to its vector, in front of one model (so the key
//! is model and text: a cache never outlives the embedder it wraps).
//! Passages are never cached: ingest embeds each chunk once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{EmbedError, Embedder};

/// An [`Embedder`] that remembers the last `capacity` questions it embedded.
pub struct QueryCache {
    inner: Arc<dyn Embedder>,
    capacity: usize,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Lru {
    /// Text → (vector, tick of its last use).
    map: HashMap<Arc<str>, (Arc<[f32]>, u64)>,
    /// Tick → text, oldest first.
    order: BTreeMap<u64, Arc<str>>,
    tick: u64,
}

impl Lru {
    fn get(&mut self, text: &str) -> Option<Arc<[f32]>> {
        self.tick += 1;
        let tick = self.tick;
        let (key, entry) = self.map.get_key_value(text)?;
        let key = key.clone();
        let v = entry.0.clone();
        let old = entry.1;
        self.order.remove(&old);
        self.order.insert(tick, key.clone());
        if let Some(e) = self.map.get_mut(&key) {
            e.1 = tick;
        }
        Some(v)
    }

    fn put(&mut self, text: &str, v: Arc<[f32]>, capacity: usize) {
        if self.map.contains_key(text) {
            return;
        }
        while self.map.len() >= capacity {
            match self.order.pop_first() {
                Some((_, oldest)) => {
                    self.map.remove(&oldest);
                }
                None => break,
            }
        }
        self.tick += 1;
        let key: Arc<str> = Arc::from(text);
        self.order.insert(self.tick, key.clone());
        self.map.insert(key, (v, self.tick));
    }
}

impl QueryCache {
    /// Wraps `inner`, remembering up to `capacity` questions (at least one).
    pub fn new(inner: Arc<dyn Embedder>, capacity: usize) -> QueryCache {
        QueryCache {
            inner,
            capacity: capacity.max(1),
            lru: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Questions answered from the cache, and embedded, so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

impl Embedder for QueryCache {
    super::delegate_model_facts!(inner);
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_passages(texts)
    }
    fn embed_passages_spans(
        &self,
        texts: &[&str],
        spans: &[Vec<(usize, usize)>],
    ) -> Result<Option<Vec<super::Pooled>>, EmbedError> {
        self.inner.embed_passages_spans(texts, spans)
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        // A poisoned lock only means another caller panicked mid-update of
        // a cache; embedding without it is always correct.
        if let Ok(mut lru) = self.lru.lock() {
            if let Some(v) = lru.get(text) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(v.to_vec());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        // Embedded outside the lock: questions embed in parallel.
        let v = self.inner.embed_query(text)?;
        if let Ok(mut lru) = self.lru.lock() {
            lru.put(text, Arc::from(v.as_slice()), self.capacity);
        }
        Ok(v)
    }
    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::HashEmbedder;
    use proptest::prelude::*;

    #[test]
    fn repeated_questions_hit_and_give_the_same_vector() {
        let inner = Arc::new(HashEmbedder::new(32));
        let c = QueryCache::new(inner.clone(), 2);
        let a = c.embed_query("what is the travel policy").unwrap();
        assert_eq!(c.counts(), (0, 1));
        assert_eq!(c.embed_query("what is the travel policy").unwrap(), a);
        assert_eq!(c.counts(), (1, 1));
        assert_eq!(a, inner.embed_query("what is the travel policy").unwrap());
        // Passages are not questions: never served from the cache.
        let p = c.embed_passages(&["what is the travel policy"]).unwrap();
        assert_eq!(
            p[0],
            inner
                .embed_passages(&["what is the travel policy"])
                .unwrap()[0]
        );
    }

    #[test]
    fn the_least_recently_used_question_goes_first() {
        let c = QueryCache::new(Arc::new(HashEmbedder::new(16)), 2);
        c.embed_query("a").unwrap();
        c.embed_query("b").unwrap();
        c.embed_query("a").unwrap(); // a is now newer than b
        c.embed_query("c").unwrap(); // evicts b
        assert_eq!(c.counts(), (1, 3));
        c.embed_query("a").unwrap();
        assert_eq!(c.counts(), (2, 3));
        c.embed_query("b").unwrap();
        assert_eq!(c.counts(), (2, 4));
    }

    proptest! {
        /// Whatever the sequence of questions, the cache answers exactly
        /// what the model would, and never holds more than its capacity.
        #[test]
        fn cache_is_transparent(qs in proptest::collection::vec(0u8..12, 1..200), cap in 1usize..6) {
            let inner = Arc::new(HashEmbedder::new(8));
            let c = QueryCache::new(inner.clone(), cap);
            for q in qs {
                let text = format!("question {q}");
                prop_assert_eq!(c.embed_query(&text).unwrap(), inner.embed_query(&text).unwrap());
                let lru = c.lru.lock().unwrap();
                prop_assert!(lru.map.len() <= cap);
                prop_assert_eq!(lru.map.len(), lru.order.len());
            }
        }
    }
}
