//! Retrieval: vector and keyword search, each with the access filter applied
//! *inside* the search, fused by reciprocal rank.
//!
//! Vector side, per segment (a small planner in the spirit of Qdrant's):
//! count the chunks the principal may see; if few, score exactly those; if
//! many, search the graph with the filter in the loop and an `ef` that grows
//! as the filter gets more selective; if the graph still returns fewer than
//! wanted, fall back to the exact scan. Either way no hit outside the
//! principal's access can be produced, and restrictive filters do not starve.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Serialize;

use crate::acl::{Classification, Filter, Principal};
use crate::config::Config;
use crate::embed::{EmbedError, Embedder};
use crate::store::hnsw::{self, Visited};
use crate::store::{Snapshot, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Copy, Debug)]
pub struct SearchParams {
    pub k: usize,
    pub candidates: usize,
    pub rrf_k: f32,
    pub ef_search: usize,
    pub exact_threshold: usize,
}

impl SearchParams {
    pub fn from_config(cfg: &Config) -> SearchParams {
        SearchParams {
            k: cfg.retrieve.k,
            candidates: cfg.retrieve.candidates,
            rrf_k: cfg.retrieve.rrf_k,
            ef_search: cfg.hnsw.ef_search,
            exact_threshold: cfg.retrieve.exact_threshold,
        }
    }
}

/// One retrieved chunk, as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Hit {
    pub chunk_id: String,
    pub doc: String,
    /// 1-based page, or `None` for formats without pages.
    pub page: Option<u32>,
    /// Offsets in Unicode scalar values into the page text.
    pub start: u32,
    pub end: u32,
    pub score: f32,
    pub text: String,
    pub classification: Classification,
    pub teams: Vec<String>,
    #[serde(skip)]
    pub id: u64,
}

/// How the vector side was answered, per segment (for diagnostics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VectorPlan {
    Skipped,
    Exact,
    Graph,
    GraphThenExact,
}

#[derive(Clone, Debug, Default)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    /// Vector candidates (chunk id, cosine similarity), best first.
    pub vector: Vec<(u64, f32)>,
    /// Keyword candidates (chunk id, BM25), best first.
    pub keyword: Vec<(u64, f32)>,
    pub plans: Vec<VectorPlan>,
}

/// Formats an internal chunk id for the API.
pub fn chunk_id_string(id: u64) -> String {
    format!("{id:016x}")
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Nearest chunks the filter admits, over all segments.
pub fn vector_search(
    snap: &Snapshot,
    filter: &Filter,
    query: &[f32],
    want: usize,
    p: &SearchParams,
) -> (Vec<(u64, f32)>, Vec<VectorPlan>) {
    let mut all: Vec<(u64, f32)> = Vec::new();
    let mut plans = Vec::with_capacity(snap.segments.len());
    if filter.is_empty() || want == 0 {
        return (all, vec![VectorPlan::Skipped; snap.segments.len()]);
    }
    for (s, seg) in snap.segments.iter().enumerate() {
        let acl = snap.acl(s);
        let allow = |i: u32| filter.allows(acl, i as usize);
        let n = seg.len();
        let visible = (0..n).filter(|&i| filter.allows(acl, i)).count();
        if visible == 0 {
            plans.push(VectorPlan::Skipped);
            continue;
        }
        let target = want.min(visible);
        let vectors = seg.vectors();
        let (hits, plan) = if visible <= p.exact_threshold {
            (
                hnsw::exact(vectors, query, target, allow),
                VectorPlan::Exact,
            )
        } else {
            let selectivity = visible as f64 / n as f64;
            let base = p.ef_search.max(want);
            let ef = ((base as f64) * (1.0 / selectivity).min(16.0)).min(4096.0) as usize;
            let r = VISITED.with(|v| {
                let budget = hnsw::Budget {
                    k: target,
                    ef,
                    max_visits: n,
                };
                seg.graph()
                    .search(vectors, query, budget, allow, &mut v.borrow_mut())
            });
            if r.hits.len() >= target {
                (r.hits, VectorPlan::Graph)
            } else {
                (
                    hnsw::exact(vectors, query, target, allow),
                    VectorPlan::GraphThenExact,
                )
            }
        };
        plans.push(plan);
        let ids = seg.ids();
        all.extend(hits.iter().map(|h| (ids[h.idx as usize], 1.0 - h.dist)));
    }
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(want);
    (all, plans)
}

/// Reciprocal rank fusion: Σ 1 / (k + rank) over the lists a chunk is in.
pub fn rrf(lists: &[&[(u64, f32)]], k: f32, limit: usize) -> Vec<(u64, f32)> {
    let mut score: HashMap<u64, f32> = HashMap::new();
    for list in lists {
        for (rank, (id, _)) in list.iter().enumerate() {
            *score.entry(*id).or_default() += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(u64, f32)> = score.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(limit);
    out
}

/// Turns a chunk id into a [`Hit`], checking once more that `principal` may
/// see it. The filter already ran inside both searches; this is a second,
/// independent check against the document table, and a hit that fails it is
/// dropped and logged as the bug it would be.
pub fn make_hit(snap: &Snapshot, principal: &Principal, id: u64, score: f32) -> Option<Hit> {
    let loc = snap.locate(id)?;
    let seg = &snap.segments[loc.segment];
    let rec = seg.chunk(loc.row);
    let doc = snap.docs.get(rec.doc_id)?;
    if !doc.chunk_ids().contains(&id) {
        return None;
    }
    let access = doc.access.as_ref();
    if !principal.can_see(access) {
        tracing::error!(
            chunk = id,
            "access check failed after retrieval; hit dropped"
        );
        return None;
    }
    let access = access?;
    let text = seg.chunk_text(loc.row).ok()?.to_string();
    Some(Hit {
        chunk_id: chunk_id_string(id),
        doc: doc.path.clone(),
        page: doc.paged.then_some(rec.page_no),
        start: rec.char_start,
        end: rec.char_end,
        score,
        text,
        classification: access.classification,
        teams: access.teams.clone(),
        id,
    })
}

/// Hybrid search for `principal`: both searches filtered, fused, top `k`.
pub fn search(
    snap: &Snapshot,
    embedder: &dyn Embedder,
    principal: &Principal,
    query: &str,
    k: usize,
    p: &SearchParams,
) -> Result<SearchResult, RetrieveError> {
    let filter = snap.filter_for(principal);
    if filter.is_empty() || k == 0 || query.trim().is_empty() {
        return Ok(SearchResult::default());
    }
    let want = p.candidates.max(k);
    let qv = embedder.embed_query(query)?;
    let (vector, plans) = vector_search(snap, &filter, &qv, want, p);
    let keyword = snap.keyword_search(query, &filter, want)?;
    let fused = rrf(&[&vector, &keyword], p.rrf_k, want);
    let hits = fused
        .into_iter()
        .filter_map(|(id, score)| make_hit(snap, principal, id, score))
        .take(k)
        .collect();
    Ok(SearchResult {
        hits,
        vector,
        keyword,
        plans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let a = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let b = [(3, 10.0), (4, 9.0), (1, 8.0)];
        let f = rrf(&[&a, &b], 60.0, 10);
        assert_eq!(f[0].0, 1);
        assert_eq!(f[1].0, 3);
        assert_eq!(f.len(), 4);
        assert!(rrf(&[&a, &b], 60.0, 2).len() == 2);
    }
}
