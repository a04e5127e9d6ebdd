//! HNSW graphs: built by `hnsw_rs`, stored flat, searched in place.
//!
//! `hnsw_rs` builds the graph; hort then writes the neighbour lists as fixed
//! stride u32 arrays into the segment file, so a reopened index maps the graph
//! as well as the vectors and reads neither into the heap. The search is the
//! standard HNSW descent with the access filter checked *inside* the layer-0
//! beam search: disallowed nodes are traversed (the graph stays connected)
//! but never enter the result set, so filtering never happens after top-k.
//!
//! Layout (little-endian u32):
//! `[MAGIC, VERSION, n, max_level, entry, m0, m_up, 0]`,
//! `count[l]` for l in 1..=max_level,
//! level 0: n rows of `[len, m0 neighbours]`,
//! each upper level l: `count[l]` sorted node ids, then rows of `[len, m_up neighbours]`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use hnsw_rs::hnsw::Hnsw;

use super::distance::{distance, CosineUnit};

const MAGIC: u32 = 0x4847_5248; // "HRGH"
const VERSION: u32 = 1;
const HEADER: usize = 8;

/// How a graph is built.
#[derive(Debug, Clone, Copy)]
pub struct GraphParams {
    /// Links per node.
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
}

/// The links per node a graph built with `m` has (`m` bounded to 2..=128).
pub fn links(m: usize) -> usize {
    m.clamp(2, 128)
}

/// Builds the graph of `n = vectors.len() / dim` unit vectors.
pub fn build(vectors: &[f32], dim: usize, params: GraphParams) -> Vec<u32> {
    let n = vectors.len().checked_div(dim).unwrap_or(0);
    if n == 0 {
        return vec![MAGIC, VERSION, 0, 0, 0, 0, 0, 0];
    }
    let m = links(params.m);
    let hnsw: Hnsw<f32, CosineUnit> =
        Hnsw::new(m, n, 16, params.ef_construction.max(m), CosineUnit);
    let data: Vec<(&[f32], usize)> = (0..n)
        .map(|i| (&vectors[i * dim..(i + 1) * dim], i))
        .collect();
    hnsw.parallel_insert_slice(&data);

    let m0 = 2 * m;
    let m_up = m;
    let pi = hnsw.get_point_indexation();
    let max_level = pi.get_max_level_observed() as usize;
    // neighbours[l][node] for every node present at level l
    let mut level0: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut upper: Vec<Vec<(u32, Vec<u32>)>> = vec![Vec::new(); max_level + 1];
    let mut entry = 0u32;
    for layer in 0..=max_level {
        for point in pi.get_layer_iterator(layer) {
            let id = point.get_origin_id() as u32;
            if layer == max_level {
                entry = id;
            }
            let hood = point.get_neighborhood_id();
            for (l, list) in hood.iter().enumerate().take(layer + 1) {
                let cap = if l == 0 { m0 } else { m_up };
                let ids: Vec<u32> = list
                    .iter()
                    .map(|nb| nb.d_id as u32)
                    .filter(|&x| (x as usize) < n && x != id)
                    .take(cap)
                    .collect();
                if l == 0 {
                    level0[id as usize] = ids;
                } else {
                    upper[l].push((id, ids));
                }
            }
        }
    }
    encode(n, max_level, entry, m0, m_up, &level0, &mut upper)
}

fn encode(
    n: usize,
    max_level: usize,
    entry: u32,
    m0: usize,
    m_up: usize,
    level0: &[Vec<u32>],
    upper: &mut [Vec<(u32, Vec<u32>)>],
) -> Vec<u32> {
    let mut out = vec![
        MAGIC,
        VERSION,
        n as u32,
        max_level as u32,
        entry,
        m0 as u32,
        m_up as u32,
        0,
    ];
    for level in upper.iter().skip(1).take(max_level) {
        out.push(level.len() as u32);
    }
    for nbrs in level0 {
        push_row(&mut out, nbrs, m0);
    }
    for level in upper.iter_mut().skip(1).take(max_level) {
        level.sort_by_key(|(id, _)| *id);
        out.extend(level.iter().map(|(id, _)| *id));
        for (_, nbrs) in level.iter() {
            push_row(&mut out, nbrs, m_up);
        }
    }
    out
}

fn push_row(out: &mut Vec<u32>, nbrs: &[u32], cap: usize) {
    let len = nbrs.len().min(cap);
    out.push(len as u32);
    out.extend_from_slice(&nbrs[..len]);
    out.extend(std::iter::repeat_n(0u32, cap - len));
}

/// Where each part of an encoded graph starts; computed once when a segment opens.
#[derive(Debug, Clone)]
pub struct GraphLayout {
    /// Nodes in the graph.
    pub n: usize,
    max_level: usize,
    entry: u32,
    m0: usize,
    m_up: usize,
    level0: usize,
    /// (offset of sorted node ids, count, offset of rows) per level 1..=max_level
    upper: Vec<(usize, usize, usize)>,
}

impl GraphLayout {
    /// The layout of a graph with no nodes.
    pub fn empty() -> GraphLayout {
        GraphLayout {
            n: 0,
            max_level: 0,
            entry: 0,
            m0: 0,
            m_up: 0,
            level0: HEADER,
            upper: Vec::new(),
        }
    }

    /// Validates the header and sizes of an encoded graph.
    pub fn parse(data: &[u32]) -> Result<GraphLayout, String> {
        if data.len() < HEADER || data[0] != MAGIC {
            return Err("graph: bad magic".into());
        }
        if data[1] != VERSION {
            return Err(format!("graph: unsupported version {}", data[1]));
        }
        let n = data[2] as usize;
        let max_level = data[3] as usize;
        let (entry, m0, m_up) = (data[4], data[5] as usize, data[6] as usize);
        if max_level > 64 || m0 > 1024 || m_up > 1024 || (n > 0 && entry as usize >= n) {
            return Err("graph: implausible header".into());
        }
        let mut off = HEADER;
        let counts_at = off;
        off += max_level;
        let level0 = off;
        off = off
            .checked_add(n.checked_mul(1 + m0).ok_or("graph: overflow")?)
            .ok_or("graph: overflow")?;
        let mut upper = Vec::with_capacity(max_level);
        for l in 0..max_level {
            let c = *data.get(counts_at + l).ok_or("graph: truncated")? as usize;
            if c > n {
                return Err("graph: implausible level size".into());
            }
            let nodes = off;
            off += c;
            let rows = off;
            off += c * (1 + m_up);
            upper.push((nodes, c, rows));
        }
        if off > data.len() {
            return Err(format!(
                "graph: truncated ({} of {} words)",
                data.len(),
                off
            ));
        }
        Ok(GraphLayout {
            n,
            max_level,
            entry,
            m0,
            m_up,
            level0,
            upper,
        })
    }
}

/// Vectors of one segment, `dim` floats each.
#[derive(Clone, Copy)]
pub struct Vectors<'a> {
    /// All vectors, row after row.
    pub data: &'a [f32],
    /// Dimensions.
    pub dim: usize,
}

impl<'a> Vectors<'a> {
    /// Vector `i`.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
    /// How many vectors.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }
    /// Asks the CPU to start loading vector `i`, every cache line of it
    /// (a 384-d vector spans 24 lines; fetching only the first left the
    /// walk waiting on the rest). A hint; no effect elsewhere.
    #[inline]
    pub fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v) = self.data.get(i * self.dim..(i + 1) * self.dim) {
            let p = v.as_ptr().cast::<i8>();
            let bytes = std::mem::size_of_val(v);
            let mut off = 0;
            while off < bytes {
                // SAFETY: prefetching is only a hint and `p + off` lies
                // within the vector's bytes.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(p.add(off), std::arch::x86_64::_MM_HINT_T0)
                };
                off += 64;
            }
        }
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A graph over mapped memory.
#[derive(Clone, Copy)]
pub struct Graph<'a> {
    /// The encoded graph.
    pub data: &'a [u32],
    /// Where its parts start.
    pub layout: &'a GraphLayout,
}

/// Reusable visited marks (an epoch per search instead of clearing).
#[derive(Default)]
pub struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }
    #[inline]
    fn seen(&self, i: usize) -> bool {
        self.marks[i] == self.epoch
    }
    /// Marks `i`; true if it was not yet visited.
    #[inline]
    fn insert(&mut self, i: usize) -> bool {
        if self.marks[i] == self.epoch {
            false
        } else {
            self.marks[i] = self.epoch;
            true
        }
    }
}

/// A node with its distance to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Distance (1 − cosine).
    pub dist: f32,
    /// The node.
    pub idx: u32,
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    fn cmp(&self, o: &Self) -> Ordering {
        self.dist
            .total_cmp(&o.dist)
            .then_with(|| self.idx.cmp(&o.idx))
    }
}

/// How much a graph search may do: `k` results, beam width `ef`, and at most
/// `max_visits` distance computations.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Results wanted.
    pub k: usize,
    /// Beam width.
    pub ef: usize,
    /// Distance computations at most.
    pub max_visits: usize,
}

/// What a graph search found, and how much of the graph it read.
pub struct GraphResult {
    /// Ascending by distance, at most `k`, all allowed by the filter.
    pub hits: Vec<Scored>,
    /// Distance computations made.
    pub visited: usize,
}

impl<'a> Graph<'a> {
    fn row(&self, off: usize, cap: usize) -> &'a [u32] {
        let len = (self.data[off] as usize).min(cap);
        &self.data[off + 1..off + 1 + len]
    }

    fn neighbours(&self, level: usize, node: u32) -> &'a [u32] {
        let l = self.layout;
        if level == 0 {
            return self.row(l.level0 + node as usize * (1 + l.m0), l.m0);
        }
        let (nodes, count, rows) = l.upper[level - 1];
        match self.data[nodes..nodes + count].binary_search(&node) {
            Ok(p) => self.row(rows + p * (1 + l.m_up), l.m_up),
            Err(_) => &[],
        }
    }

    /// k nearest allowed nodes. `max_visits` bounds the work when the filter
    /// lets little through; the caller falls back to an exact scan if fewer
    /// than k come back.
    pub fn search(
        &self,
        vectors: Vectors<'_>,
        query: &[f32],
        budget: Budget,
        allow: impl Fn(u32) -> bool,
        visited: &mut Visited,
    ) -> GraphResult {
        let Budget { k, ef, max_visits } = budget;
        let n = self.layout.n.min(vectors.len());
        if n == 0 || k == 0 {
            return GraphResult {
                hits: Vec::new(),
                visited: 0,
            };
        }
        let ef = ef.max(k);
        let mut ep = self.layout.entry.min(n as u32 - 1);
        let mut ep_d = distance(query, vectors.get(ep as usize));
        let mut visits = 1usize;
        for level in (1..=self.layout.max_level).rev() {
            loop {
                let mut changed = false;
                for &nb in self.neighbours(level, ep) {
                    if nb as usize >= n {
                        continue;
                    }
                    let d = distance(query, vectors.get(nb as usize));
                    visits += 1;
                    if d < ep_d {
                        ep_d = d;
                        ep = nb;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        visited.reset(n);
        visited.insert(ep as usize);
        let mut candidates = BinaryHeap::new();
        let mut results: BinaryHeap<Scored> = BinaryHeap::new();
        candidates.push(Reverse(Scored {
            dist: ep_d,
            idx: ep,
        }));
        if allow(ep) {
            results.push(Scored {
                dist: ep_d,
                idx: ep,
            });
        }
        let mut bound = if results.is_empty() {
            f32::INFINITY
        } else {
            ep_d
        };
        while let Some(Reverse(c)) = candidates.pop() {
            if c.dist > bound && results.len() >= ef {
                break;
            }
            if visits >= max_visits {
                break;
            }
            let nbs = self.neighbours(0, c.idx);
            // Start loading the unvisited neighbours' vectors before scoring
            // them: once vectors outgrow the caches the walk waits on memory.
            for &nb in nbs {
                let i = nb as usize;
                if i < n && !visited.seen(i) {
                    vectors.prefetch(i);
                }
            }
            for &nb in nbs {
                let i = nb as usize;
                if i >= n || !visited.insert(i) {
                    continue;
                }
                let d = distance(query, vectors.get(i));
                visits += 1;
                if results.len() < ef || d < bound {
                    candidates.push(Reverse(Scored { dist: d, idx: nb }));
                    if allow(nb) {
                        results.push(Scored { dist: d, idx: nb });
                        if results.len() > ef {
                            results.pop();
                        }
                        if let Some(w) = results.peek() {
                            bound = w.dist;
                        }
                    }
                }
            }
        }
        let mut hits = results.into_sorted_vec();
        hits.truncate(k);
        GraphResult {
            hits,
            visited: visits,
        }
    }
}

/// Exact k nearest among the nodes `allow` admits (the planner's other path,
/// and the reference the graph is measured against).
pub fn exact(
    vectors: Vectors<'_>,
    query: &[f32],
    k: usize,
    allow: impl Fn(u32) -> bool,
) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
    for i in 0..vectors.len() {
        if !allow(i as u32) {
            continue;
        }
        let d = distance(query, vectors.get(i));
        if heap.len() < k {
            heap.push(Scored {
                dist: d,
                idx: i as u32,
            });
        } else if heap.peek().is_some_and(|w| d < w.dist) {
            heap.pop();
            heap.push(Scored {
                dist: d,
                idx: i as u32,
            });
        }
    }
    heap.into_sorted_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::normalize;

    fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let mut v: Vec<f32> = (0..dim)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                })
                .collect();
            normalize(&mut v);
            out.extend(v);
        }
        out
    }

    #[test]
    fn graph_search_has_high_recall_and_respects_filter() {
        let (n, dim) = (3000, 32);
        let data = random_vectors(n, dim, 7);
        let enc = build(
            &data,
            dim,
            GraphParams {
                m: 16,
                ef_construction: 100,
            },
        );
        let layout = GraphLayout::parse(&enc).unwrap();
        let g = Graph {
            data: &enc,
            layout: &layout,
        };
        let v = Vectors { data: &data, dim };
        let queries = random_vectors(50, dim, 99);
        let mut visited = Visited::default();
        let (mut found, mut total) = (0, 0);
        for q in queries.chunks(dim) {
            let allow = |i: u32| i.is_multiple_of(3);
            let truth = exact(v, q, 10, allow);
            let budget = Budget {
                k: 10,
                ef: 80,
                max_visits: usize::MAX,
            };
            let got = g.search(v, q, budget, allow, &mut visited);
            assert!(
                got.hits.iter().all(|h| h.idx.is_multiple_of(3)),
                "filter inside the search"
            );
            total += truth.len();
            found += got
                .hits
                .iter()
                .filter(|h| truth.iter().any(|t| t.idx == h.idx))
                .count();
        }
        let recall = found as f64 / total as f64;
        assert!(recall > 0.9, "recall {recall}");
    }

    #[test]
    fn corrupt_graphs_are_rejected_not_trusted() {
        assert!(GraphLayout::parse(&[1, 2, 3]).is_err());
        let mut enc = build(
            &random_vectors(50, 8, 1),
            8,
            GraphParams {
                m: 4,
                ef_construction: 16,
            },
        );
        enc.truncate(enc.len() / 2);
        assert!(GraphLayout::parse(&enc).is_err());
    }

    #[test]
    fn out_of_range_neighbours_are_ignored() {
        let data = random_vectors(40, 8, 3);
        let mut enc = build(
            &data,
            8,
            GraphParams {
                m: 4,
                ef_construction: 16,
            },
        );
        let layout = GraphLayout::parse(&enc).unwrap();
        // Point a neighbour slot far outside the segment.
        enc[layout.level0 + 1] = 1_000_000;
        let g = Graph {
            data: &enc,
            layout: &layout,
        };
        let v = Vectors {
            data: &data,
            dim: 8,
        };
        let budget = Budget {
            k: 5,
            ef: 10,
            max_visits: usize::MAX,
        };
        let r = g.search(v, v.get(0), budget, |_| true, &mut Visited::default());
        assert!(r.hits.iter().all(|h| (h.idx as usize) < 40));
    }
}
