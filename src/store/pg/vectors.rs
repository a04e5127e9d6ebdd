//! The vectors of access sets, kept by a node between searches and scored
//! there (`[store] vector_cache_mb`).
//!
//! Why: a principal who sees few chunks is served by scoring every visible
//! chunk exactly, and in PostgreSQL each of those is a heap row of about
//! 2 kB: 6,400 visible chunks of 100,000 cost 3–7 ms of executor time, 3–5
//! of them visiting the rows alone (`EXPLAIN ANALYZE`, warm), where the
//! embedded index reads the same vectors from its map in 0.2 ms. The
//! visible chunks of a principal are the chunks of the access sets it
//! admits (the distribution column, migration 7), so a node keeps each
//! set's ids and vectors, and a search reads only the sets' versions
//! (migration 13): one small statement instead of thousands of rows.
//!
//! Correctness rests on the version. Every write transaction that inserts,
//! deletes or moves a set's chunks gives the set a new random version in the
//! same transaction (`write.rs`), and a set's rows are read with its version
//! in one snapshot; a search uses kept vectors only under the version it
//! reads in its own snapshot, so it never scores a state that was not
//! committed together. The rows are read as the principal under row-level
//! security, and the hits' texts are read under it again: a kept set can
//! never show a chunk the reading principal may not see.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::store::distance::dot;
use crate::store::hnsw::{self, Vectors};

/// One access set's chunks as of `version`: ids in ascending order and
/// their vectors (row-major) scaled to unit length, as the embedded index
/// keeps them, so that the exact scan it uses ([`hnsw::exact`]) scores them.
#[derive(Debug)]
pub(crate) struct SetVectors {
    pub(crate) version: i64,
    ids: Vec<i64>,
    vectors: Vec<f32>,
    dim: usize,
    /// When a search last used it (the cache's clock), for eviction.
    used: AtomicU64,
}

impl SetVectors {
    /// A set of `version` from its rows (id, vector); vectors of another
    /// dimension than `dim` are an error, not a silent drop.
    pub(crate) fn new(
        version: i64,
        dim: usize,
        mut rows: Vec<(i64, Vec<f32>)>,
    ) -> Result<SetVectors, String> {
        // In id order, the exact scan's ties (by position) fall by id, as
        // the exact plan's `ORDER BY embedding <=> $1, id` has them.
        rows.sort_unstable_by_key(|r| r.0);
        let mut ids = Vec::with_capacity(rows.len());
        let mut vectors = Vec::with_capacity(rows.len() * dim);
        for (id, v) in rows {
            if v.len() != dim {
                return Err(format!(
                    "chunk {id} has a vector of {} dimensions, the index {dim}",
                    v.len()
                ));
            }
            ids.push(id);
            vectors.extend(unit(v));
        }
        Ok(SetVectors {
            version,
            ids,
            vectors,
            dim,
            used: AtomicU64::new(0),
        })
    }

    /// Memory it holds.
    fn bytes(&self) -> usize {
        VectorCache::bytes_for(self.ids.len(), self.dim) + std::mem::size_of::<SetVectors>()
    }
}

/// `v` scaled to unit length (a zero vector stays zero: at distance 1 from
/// everything, as pgvector's cosine distance has it, NaN there).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = dot(&v, &v).sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// The `want` nearest chunks of `sets` to `query` as (id, cosine distance),
/// nearest first, ties by id: what the exact plan's `ORDER BY embedding <=>
/// $1, id` returns. Each block of rows is scanned by [`hnsw::exact`], many
/// blocks in parallel: the scan is bound by memory bandwidth (0.14 µs per
/// 384-d row on one core once the rows exceed the CPU's caches), which more
/// cores share out.
pub(crate) fn nearest(sets: &[Arc<SetVectors>], query: &[f32], want: usize) -> Vec<(i64, f64)> {
    if want == 0 {
        return Vec::new();
    }
    let q = unit(query.to_vec());
    let blocks: Vec<(&SetVectors, std::ops::Range<usize>)> = sets
        .iter()
        .filter(|s| s.dim == q.len())
        .flat_map(|s| {
            let n = s.ids.len();
            (0..n)
                .step_by(BLOCK_ROWS)
                .map(move |at| (&**s, at..(at + BLOCK_ROWS).min(n)))
        })
        .collect();
    let best_of = |(s, rows): &(&SetVectors, std::ops::Range<usize>)| -> Vec<(f32, i64)> {
        let v = Vectors {
            data: &s.vectors[rows.start * s.dim..rows.end * s.dim],
            dim: s.dim,
        };
        hnsw::exact(v, &q, want, |_| true)
            .into_iter()
            .map(|h| (h.dist, s.ids[rows.start + h.idx as usize]))
            .collect()
    };
    let rows: usize = blocks.iter().map(|(_, r)| r.len()).sum();
    let mut best: Vec<(f32, i64)> = if rows < PARALLEL_ROWS {
        blocks.iter().flat_map(best_of).collect()
    } else {
        use rayon::prelude::*;
        blocks.par_iter().flat_map_iter(best_of).collect()
    };
    best.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    best.truncate(want);
    best.into_iter().map(|(d, id)| (id, d as f64)).collect()
}

/// Rows scored on one thread before the blocks are scanned in parallel.
const PARALLEL_ROWS: usize = 32_768;
/// Rows of one block of the scan.
const BLOCK_ROWS: usize = 8_192;

/// Access sets' vectors a node keeps between searches, at most `budget`
/// bytes, the least recently used going first.
pub(crate) struct VectorCache {
    budget: usize,
    clock: AtomicU64,
    kept: std::sync::Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    sets: HashMap<i32, Arc<SetVectors>>,
    bytes: usize,
}

impl VectorCache {
    /// A cache of at most `budget` bytes (0: keeps nothing, and searches
    /// score their visible chunks inside PostgreSQL).
    pub(crate) fn new(budget: usize) -> VectorCache {
        VectorCache {
            budget,
            clock: AtomicU64::new(1),
            kept: std::sync::Mutex::new(Kept::default()),
        }
    }

    /// Bytes it may hold.
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes `chunks` vectors of `dim` dimensions take kept.
    pub(crate) fn bytes_for(chunks: usize, dim: usize) -> usize {
        chunks * (8 + 4 * dim)
    }

    /// The kept set `id` if it is at `version`.
    pub(crate) fn get(&self, id: i32, version: i64) -> Option<Arc<SetVectors>> {
        let kept = super::lock(&self.kept);
        let s = kept.sets.get(&id).filter(|s| s.version == version)?;
        s.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(s.clone())
    }

    /// Keeps `set` as access set `id` (replacing an older version), making
    /// room by forgetting the sets used least recently; a set larger than
    /// the budget is not kept.
    pub(crate) fn put(&self, id: i32, set: Arc<SetVectors>) {
        let size = set.bytes();
        if size > self.budget {
            return;
        }
        set.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut kept = super::lock(&self.kept);
        if let Some(old) = kept.sets.remove(&id) {
            kept.bytes -= old.bytes();
        }
        while kept.bytes + size > self.budget {
            let Some(oldest) = kept
                .sets
                .iter()
                .min_by_key(|(_, s)| s.used.load(Ordering::Relaxed))
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(gone) = kept.sets.remove(&oldest) {
                kept.bytes -= gone.bytes();
            }
        }
        kept.bytes += size;
        kept.sets.insert(id, set);
    }

    /// Sets kept and the bytes they hold.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let kept = super::lock(&self.kept);
        (kept.sets.len(), kept.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(version: i64, rows: &[(i64, [f32; 2])]) -> Arc<SetVectors> {
        Arc::new(
            SetVectors::new(
                version,
                2,
                rows.iter().map(|(i, v)| (*i, v.to_vec())).collect(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn nearest_orders_by_cosine_distance_then_id_across_sets() {
        let a = set(1, &[(1, [1.0, 0.0]), (2, [0.0, 1.0]), (3, [2.0, 0.0])]);
        let b = set(1, &[(4, [1.0, 1.0]), (5, [0.0, 0.0]), (6, [-1.0, 0.0])]);
        let got = nearest(&[a, b], &[3.0, 0.0], 4);
        let ids: Vec<i64> = got.iter().map(|(i, _)| *i).collect();
        // 1 and 3 point the same way (distance 0, by id), then 4 (45°),
        // then 2 and the zero vector at distance 1: 2 by id.
        assert_eq!(ids, vec![1, 3, 4, 2]);
        assert!(got[0].1.abs() < 1e-6 && got[1].1.abs() < 1e-6);
        assert!((got[2].1 - (1.0 - std::f64::consts::FRAC_1_SQRT_2)).abs() < 1e-6);
        // Asking for more than there are returns them all, the opposite last.
        let all = nearest(
            &[set(1, &[(9, [-1.0, 0.0]), (8, [1.0, 0.0])])],
            &[1.0, 0.0],
            10,
        );
        assert_eq!(all.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![8, 9]);
        assert!(nearest(&[], &[1.0, 0.0], 3).is_empty());
    }

    #[test]
    fn the_parallel_scan_finds_the_nearest_by_distance_then_id() {
        // Enough rows for blocks, over sets of uneven size, with ties.
        let mut sets = Vec::new();
        let mut id = 0;
        for n in [40_000usize, 3, 9_000] {
            let rows = (0..n)
                .map(|i| {
                    id += 1;
                    let a = (i % 97) as f32 / 97.0 * std::f32::consts::TAU;
                    (id, vec![a.cos(), a.sin()])
                })
                .collect();
            sets.push(Arc::new(SetVectors::new(1, 2, rows).unwrap()));
        }
        let q = [0.31f32, 0.7];
        let got = nearest(&sets, &q, 25);
        // The reference: every row's cosine distance in double precision,
        // sorted by (distance, id).
        let mut all: Vec<(f64, i64)> = Vec::new();
        for s in &sets {
            for (i, id) in s.ids.iter().enumerate() {
                let v = &s.vectors[i * 2..i * 2 + 2];
                let cos = (v[0] as f64 * q[0] as f64 + v[1] as f64 * q[1] as f64)
                    / (q[0] as f64).hypot(q[1] as f64);
                all.push((1.0 - cos, *id));
            }
        }
        all.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let want: Vec<i64> = all.iter().take(25).map(|x| x.1).collect();
        assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), want);
        for ((_, d), (r, _)) in got.iter().zip(&all) {
            assert!((d - r).abs() < 1e-5, "{d} against {r}");
        }
    }

    #[test]
    fn a_vector_of_the_wrong_dimension_is_refused() {
        let e = SetVectors::new(1, 3, vec![(7, vec![1.0, 2.0])]).unwrap_err();
        assert!(e.contains("chunk 7"), "{e}");
    }

    #[test]
    fn only_the_current_version_is_served_and_the_least_used_goes_first() {
        let one = SetVectors::new(1, 2, vec![(1, vec![1.0, 0.0])])
            .unwrap()
            .bytes();
        let cache = VectorCache::new(2 * one);
        cache.put(10, set(1, &[(1, [1.0, 0.0])]));
        cache.put(11, set(5, &[(2, [1.0, 0.0])]));
        assert!(cache.get(10, 1).is_some());
        assert!(cache.get(10, 2).is_none(), "another version is not served");
        // 10 was used after 11: a third set pushes 11 out.
        cache.put(12, set(7, &[(3, [0.0, 1.0])]));
        assert!(cache.get(11, 5).is_none());
        assert!(cache.get(10, 1).is_some() && cache.get(12, 7).is_some());
        assert_eq!(cache.held(), (2, 2 * one));
        // A new version replaces the old one in place.
        cache.put(10, set(2, &[(1, [0.0, 1.0])]));
        assert!(cache.get(10, 1).is_none() && cache.get(10, 2).is_some());
        assert_eq!(cache.held(), (2, 2 * one));
        // Too large for the budget: not kept, nothing else lost.
        let big: Vec<(i64, [f32; 2])> = (0..100).map(|i| (i, [1.0, 0.0])).collect();
        cache.put(13, set(1, &big));
        assert!(cache.get(13, 1).is_none());
        assert_eq!(cache.held(), (2, 2 * one));
        // A cache of no bytes keeps nothing.
        let off = VectorCache::new(0);
        off.put(1, set(1, &[(1, [1.0, 0.0])]));
        assert!(off.get(1, 1).is_none());
    }
}
