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
use crate::store::hnsw::{self, Budget, Graph, GraphLayout, GraphParams, Vectors, Visited};

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

    /// Chunks in it.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
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

thread_local! {
    /// A search's visited marks, kept per thread (a fresh set would clear
    /// a word per chunk of the graph on every search).
    static VISITED: std::cell::RefCell<Visited> = std::cell::RefCell::new(Visited::default());
}

/// Every access set's vectors as of the versions they were read at, with
/// one HNSW graph over all of them: the embedded index's walk, on a node
/// of the PostgreSQL backend.
///
/// Why: pgvector's walk for a principal who sees all of 100,000 chunks
/// took 2.6 ms (p50), the embedded index's 0.19 (`hort bench backends`),
/// and access sets are too many and too small (283 of 10 to 2,200 chunks
/// there) for a graph each. A search admits a node only if its set is one
/// the principal may read *and* the set is still at the version the graph
/// holds (read in the search's own snapshot); sets written since are
/// scanned from their current rows instead, so the graph never serves a
/// state that is not committed, and a write costs a scan of the sets it
/// touched until the graph is built again.
pub(crate) struct KeptGraph {
    /// Per set: its version, its number in `node_set`, and its chunks.
    sets: HashMap<i32, (i64, u32, usize)>,
    /// Each node's set (by its number).
    node_set: Vec<u32>,
    ids: Vec<i64>,
    vectors: Vec<f32>,
    dim: usize,
    graph: Vec<u32>,
    layout: GraphLayout,
}

impl KeptGraph {
    /// The graph over `sets` (seconds for 100,000 chunks: never on a
    /// request's path).
    pub(crate) fn build(
        sets: Vec<(i32, Arc<SetVectors>)>,
        dim: usize,
        params: GraphParams,
    ) -> Result<KeptGraph, String> {
        let n: usize = sets.iter().map(|(_, s)| s.ids.len()).sum();
        let mut g = KeptGraph {
            sets: HashMap::with_capacity(sets.len()),
            node_set: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            vectors: Vec::with_capacity(n * dim),
            dim,
            graph: Vec::new(),
            layout: GraphLayout::empty(),
        };
        for (number, (id, s)) in sets.iter().enumerate() {
            if s.dim != dim {
                return Err(format!(
                    "access set {id} has vectors of {} dimensions",
                    s.dim
                ));
            }
            let number = number as u32;
            g.sets.insert(*id, (s.version, number, s.ids.len()));
            g.node_set.extend(std::iter::repeat_n(number, s.ids.len()));
            g.ids.extend_from_slice(&s.ids);
            g.vectors.extend_from_slice(&s.vectors);
        }
        // The sets' own copies go before the graph's builder makes its own.
        drop(sets);
        g.graph = hnsw::build(&g.vectors, dim, params);
        g.layout = GraphLayout::parse(&g.graph)?;
        Ok(g)
    }

    /// Memory it holds.
    pub(crate) fn bytes(&self) -> usize {
        VectorCache::bytes_for(self.ids.len(), self.dim)
            + 4 * (self.graph.len() + self.node_set.len())
            + 24 * self.sets.len()
    }

    /// Chunks in it.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The version set `id` has in the graph.
    pub(crate) fn version_of(&self, id: i32) -> Option<i64> {
        self.sets.get(&id).map(|s| s.0)
    }

    /// The `want` nearest chunks of sets `admitted` (which must be in the
    /// graph at the version the caller read) as (id, cosine distance),
    /// nearest first, ties by id; the beam widened as the admitted share
    /// narrows ([`ef_for`](crate::store::plan::ef_for)), and every admitted
    /// chunk scored if the walk finds fewer than wanted.
    pub(crate) fn nearest(
        &self,
        admitted: &[i32],
        query: &[f32],
        want: usize,
        ef: usize,
    ) -> Vec<(i64, f64)> {
        let mut allowed = vec![false; self.sets.len()];
        let mut rows = 0;
        for id in admitted {
            if let Some(&(_, number, n)) = self.sets.get(id) {
                allowed[number as usize] = true;
                rows += n;
            }
        }
        let target = want.min(rows);
        if target == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let q = unit(query.to_vec());
        let v = Vectors {
            data: &self.vectors,
            dim: self.dim,
        };
        let allow = |i: u32| allowed[self.node_set[i as usize] as usize];
        let ef = crate::store::plan::ef_for(ef.max(want), rows as f64 / self.len() as f64);
        let graph = Graph {
            data: &self.graph,
            layout: &self.layout,
        };
        let budget = Budget {
            k: target,
            ef,
            max_visits: self.len(),
        };
        let found = VISITED.with(|m| graph.search(v, &q, budget, allow, &mut m.borrow_mut()));
        let hits = if found.hits.len() >= target {
            found.hits
        } else {
            hnsw::exact(v, &q, target, allow)
        };
        let mut out: Vec<(i64, f64)> = hits
            .into_iter()
            .map(|h| (self.ids[h.idx as usize], h.dist as f64))
            .collect();
        out.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out
    }
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
    /// The job reading every set and building the kept graph (one at a
    /// time: it uses every core while it builds).
    pub(crate) warming: super::warm::Warming,
}

#[derive(Default)]
struct Kept {
    sets: HashMap<i32, Arc<SetVectors>>,
    bytes: usize,
    /// The graph over every set, when one was built and fits the budget
    /// (its bytes count against it, before the sets').
    graph: Option<Arc<KeptGraph>>,
}

impl VectorCache {
    /// A cache of at most `budget` bytes (0: keeps nothing, and searches
    /// score their visible chunks inside PostgreSQL).
    pub(crate) fn new(budget: usize) -> VectorCache {
        VectorCache {
            budget,
            clock: AtomicU64::new(1),
            kept: std::sync::Mutex::new(Kept::default()),
            warming: Default::default(),
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

    /// Bytes `chunks` vectors take kept with their graph (its lowest level
    /// holds 2·m links and a count per node, and each node its set; the
    /// levels above, about a sixteenth of the nodes, m + 1 each and an id).
    pub(crate) fn bytes_with_graph(chunks: usize, dim: usize, m: usize) -> usize {
        let m = hnsw::links(m);
        Self::bytes_for(chunks, dim) + chunks * 4 * (2 + 2 * m) + chunks / 16 * 4 * (m + 2)
    }

    /// The kept set `id` if it is at `version`.
    pub(crate) fn get(&self, id: i32, version: i64) -> Option<Arc<SetVectors>> {
        let kept = crate::sync::lock(&self.kept);
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
        set.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut kept = crate::sync::lock(&self.kept);
        let room = self.budget.saturating_sub(kept.graph_bytes());
        if size > room {
            return;
        }
        if let Some(old) = kept.sets.remove(&id) {
            kept.bytes -= old.bytes();
        }
        kept.evict(room - size);
        kept.bytes += size;
        kept.sets.insert(id, set);
    }

    /// The graph over every set, if one is kept.
    pub(crate) fn graph(&self) -> Option<Arc<KeptGraph>> {
        crate::sync::lock(&self.kept).graph.clone()
    }

    /// Keeps `graph` in place of the one kept, making room by forgetting
    /// sets used least recently; a graph larger than the budget is not kept.
    pub(crate) fn put_graph(&self, graph: Arc<KeptGraph>) {
        if graph.bytes() > self.budget {
            return;
        }
        let mut kept = crate::sync::lock(&self.kept);
        kept.evict(self.budget - graph.bytes());
        kept.graph = Some(graph);
    }

    /// Sets kept and the bytes they hold.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let kept = crate::sync::lock(&self.kept);
        (kept.sets.len(), kept.bytes)
    }
}

impl Kept {
    fn graph_bytes(&self) -> usize {
        self.graph.as_ref().map_or(0, |g| g.bytes())
    }

    /// Forgets the sets used least recently until they hold at most `room`.
    fn evict(&mut self, room: usize) {
        while self.bytes > room {
            let Some(oldest) = self
                .sets
                .iter()
                .min_by_key(|(_, s)| s.used.load(Ordering::Relaxed))
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(gone) = self.sets.remove(&oldest) {
                self.bytes -= gone.bytes();
            }
        }
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

    /// Sets of random 4-d vectors, ids numbered across them.
    fn random_sets(sizes: &[usize], seed: u64) -> Vec<(i32, Arc<SetVectors>)> {
        let mut x = seed;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut id = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(s, &n)| {
                let rows = (0..n)
                    .map(|_| {
                        id += 1;
                        (id, (0..4).map(|_| next()).collect())
                    })
                    .collect();
                (
                    s as i32 + 100,
                    Arc::new(SetVectors::new(7, 4, rows).unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn the_kept_graph_finds_only_admitted_sets_and_what_a_scan_finds() {
        let sets = random_sets(&[300, 50, 900, 10], 3);
        let g = KeptGraph::build(
            sets.clone(),
            4,
            GraphParams {
                m: 16,
                ef_construction: 100,
            },
        )
        .unwrap();
        assert_eq!(g.len(), 1260);
        assert_eq!(g.version_of(102), Some(7));
        assert_eq!(g.version_of(1), None);
        let q = [0.3f32, -0.1, 0.2, 0.05];
        for admitted in [vec![100, 101, 102, 103], vec![102], vec![101, 103], vec![]] {
            let got = g.nearest(&admitted, &q, 10, 64);
            let chosen: Vec<Arc<SetVectors>> = sets
                .iter()
                .filter(|(id, _)| admitted.contains(id))
                .map(|(_, s)| s.clone())
                .collect();
            let want = nearest(&chosen, &q, 10);
            // A graph of this size, walked with a beam of 64, finds them all.
            assert_eq!(
                got.iter().map(|x| x.0).collect::<Vec<_>>(),
                want.iter().map(|x| x.0).collect::<Vec<_>>(),
                "admitted {admitted:?}"
            );
            for ((_, a), (_, b)) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5);
            }
        }
        // A set the graph does not hold admits nothing.
        assert!(g.nearest(&[999], &q, 10, 64).is_empty());
        // A question of another dimension finds nothing rather than panicking.
        assert!(g.nearest(&[100], &[1.0, 0.0], 10, 64).is_empty());
    }

    #[test]
    fn the_kept_graph_counts_against_the_budget_before_the_sets() {
        let sets = random_sets(&[200], 5);
        let g = Arc::new(
            KeptGraph::build(
                sets.clone(),
                4,
                GraphParams {
                    m: 8,
                    ef_construction: 40,
                },
            )
            .unwrap(),
        );
        let one = sets[0].1.bytes();
        let cache = VectorCache::new(g.bytes() + one + one / 2);
        cache.put(1, sets[0].1.clone());
        cache.put(2, random_sets(&[200], 6)[0].1.clone());
        assert_eq!(cache.held().0, 2, "both sets fit before the graph");
        cache.put_graph(g.clone());
        assert!(cache.graph().is_some());
        assert_eq!(cache.held().0, 1, "the graph pushed the older set out");
        assert!(cache.get(2, 7).is_some() && cache.get(1, 7).is_none());
        // With the graph kept, a second set no longer fits beside it.
        cache.put(3, random_sets(&[200], 7)[0].1.clone());
        assert_eq!(cache.held().0, 1);
        // A graph larger than the budget is not kept.
        let small = VectorCache::new(g.bytes() - 1);
        small.put_graph(g);
        assert!(small.graph().is_none());
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
