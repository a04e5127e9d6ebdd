//! Retrieval: vector and keyword search, each with the access filter (and
//! any metadata filter) applied *inside* the search, then fused.
//!
//! Vector side, per segment, a planner in the spirit of Qdrant's: estimate
//! how many chunks the principal may see from per-team, per-level counts; if
//! few, score exactly those (a scan of the mapped vectors); if many, search
//! the graph with the filter checked in the loop and an `ef` that grows as
//! the filter narrows; if the graph still returns fewer than wanted, fall
//! back to the exact scan. No plan can produce a hit outside the principal's
//! access, and restrictive filters do not starve.

pub mod rerank;

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Serialize;

use crate::acl::{AccessRule, Classification, Filter, Principal};
use crate::config::{Config, Fusion, InjectionAction, SanitizeConfig};
use crate::embed::{EmbedError, Embedder};
use crate::store::docfilter::CompiledDocFilter;
use crate::store::hnsw::{self, Visited};
use crate::store::pg::{ChunkRow, PgError, PgStore};
use crate::store::{Snapshot, StoreError, View};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

#[derive(Clone, Copy, Debug)]
pub struct SearchParams {
    pub k: usize,
    pub candidates: usize,
    pub fusion: Fusion,
    pub rrf_k: f32,
    pub vector_weight: f32,
    pub keyword_weight: f32,
    pub ef_search: usize,
    pub exact_threshold: usize,
    pub max_per_doc: usize,
    pub dedupe_overlaps: bool,
    pub injection: InjectionPolicy,
}

/// How chunks suspected of prompt injection are treated in results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InjectionPolicy {
    pub threshold: f32,
    pub high: f32,
    pub on_suspected: InjectionAction,
    pub on_high: InjectionAction,
    pub downrank_factor: f32,
}

impl InjectionPolicy {
    pub fn from_config(s: &SanitizeConfig) -> InjectionPolicy {
        InjectionPolicy {
            threshold: s.injection_threshold,
            high: s.injection_high,
            on_suspected: s.on_suspected,
            on_high: s.on_high,
            downrank_factor: s.downrank_factor,
        }
    }

    /// The action for a chunk with detector score `score`, if any.
    pub fn action(&self, score: f32) -> Option<InjectionAction> {
        if score >= self.high {
            Some(self.on_high)
        } else if score >= self.threshold {
            Some(self.on_suspected)
        } else {
            None
        }
    }
}

/// Scores go out with four decimals: more is noise.
fn round4<S: serde::Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((*x as f64 * 10_000.0).round() / 10_000.0)
}

/// A hit's injection verdict, and what was done about it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HitInjection {
    #[serde(serialize_with = "round4")]
    pub score: f32,
    pub reasons: Vec<String>,
    pub action: InjectionAction,
}

impl SearchParams {
    pub fn from_config(cfg: &Config) -> SearchParams {
        let r = &cfg.retrieve;
        SearchParams {
            k: r.k,
            candidates: r.candidates,
            fusion: r.fusion,
            rrf_k: r.rrf_k,
            vector_weight: r.vector_weight,
            keyword_weight: r.keyword_weight,
            ef_search: cfg.hnsw.ef_search,
            exact_threshold: r.exact_threshold,
            max_per_doc: r.max_per_doc,
            dedupe_overlaps: r.dedupe_overlaps,
            injection: InjectionPolicy::from_config(&cfg.sanitize),
        }
    }
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams::from_config(&Config::default())
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
    #[serde(serialize_with = "round4")]
    pub score: f32,
    pub text: String,
    pub classification: Classification,
    pub teams: Vec<String>,
    /// Present when the chunk looks like a prompt injection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<HitInjection>,
    #[serde(skip)]
    pub id: u64,
    #[serde(skip)]
    pub doc_id: u64,
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

/// What to search for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub query: &'a str,
    pub k: usize,
    pub docs: Option<&'a CompiledDocFilter>,
}

/// Formats an internal chunk id for the API.
pub fn chunk_id_string(id: u64) -> String {
    format!("{id:016x}")
}

/// Parses an API chunk id.
pub fn parse_chunk_id(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

#[inline]
fn bit(mask: &[u64], i: usize) -> bool {
    mask.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// The beam width for a graph search when a fraction `selectivity` of the
/// nodes is admitted. Only admitted nodes enter the result heap, so the
/// search already explores ~1/selectivity times more of the graph; a mild
/// widening (fourth root) keeps recall above 0.95 at every selectivity on
/// GloVe-50 (`hort bench filter`) without the cost of a linear one.
pub fn ef_for(base: usize, selectivity: f64) -> usize {
    let s = selectivity.clamp(1e-6, 1.0);
    ((base as f64) * (1.0 / s).powf(0.25).min(8.0))
        .round()
        .min(4096.0) as usize
}

/// Nearest chunks the filter (and the optional per-segment mask) admits.
pub fn vector_search(
    snap: &Snapshot,
    filter: &Filter,
    mask: Option<&[Vec<u64>]>,
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
        let seg_mask = mask.map(|m| m[s].as_slice());
        let allow = |i: u32| {
            let i = i as usize;
            filter.allows(acl, i) && seg_mask.is_none_or(|m| bit(m, i))
        };
        let n = seg.len();
        let estimate = match seg_mask {
            None => snap.estimate_visible(s, filter),
            // With a metadata filter the counts do not apply; count exactly
            // over the (usually few) chunks the mask admits.
            Some(m) => (0..n)
                .filter(|&i| bit(m, i) && filter.allows(acl, i))
                .count(),
        };
        if estimate == 0 {
            plans.push(VectorPlan::Skipped);
            continue;
        }
        let target = want.min(estimate);
        let vectors = seg.vectors();
        let (hits, plan) = if estimate <= p.exact_threshold {
            (
                hnsw::exact(vectors, query, target, allow),
                VectorPlan::Exact,
            )
        } else {
            let ef = ef_for(p.ef_search.max(want), estimate as f64 / n as f64);
            let budget = hnsw::Budget {
                k: target,
                ef,
                max_visits: n,
            };
            let r = VISITED.with(|v| {
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

/// Reciprocal rank fusion: Σ w / (k + rank) over the lists a chunk is in.
pub fn rrf(lists: &[(&[(u64, f32)], f32)], k: f32, limit: usize) -> Vec<(u64, f32)> {
    let mut score: HashMap<u64, f32> = HashMap::new();
    for (list, w) in lists {
        for (rank, (id, _)) in list.iter().enumerate() {
            *score.entry(*id).or_default() += w / (k + rank as f32 + 1.0);
        }
    }
    sorted(score, limit)
}

/// Weighted score fusion: each list's scores min-max normalised to [0, 1],
/// then Σ w · score (a chunk missing from a list scores 0 there).
pub fn weighted(lists: &[(&[(u64, f32)], f32)], limit: usize) -> Vec<(u64, f32)> {
    let mut score: HashMap<u64, f32> = HashMap::new();
    for (list, w) in lists {
        let (lo, hi) = list
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x.1), hi.max(x.1))
            });
        for (id, s) in list.iter() {
            let norm = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
            *score.entry(*id).or_default() += w * norm;
        }
    }
    sorted(score, limit)
}

fn sorted(score: HashMap<u64, f32>, limit: usize) -> Vec<(u64, f32)> {
    let mut out: Vec<(u64, f32)> = score.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(limit);
    out
}

/// Turns a chunk id into a [`Hit`], checking once more that `principal` may
/// see it (and that it matches the metadata filter). The filters already ran
/// inside both searches; this is a second, independent check against the
/// document table, and a hit that fails it is dropped and logged as the bug
/// it would be.
pub fn make_hit(
    snap: &Snapshot,
    principal: &Principal,
    docs: Option<&CompiledDocFilter>,
    id: u64,
    score: f32,
) -> Option<Hit> {
    let loc = snap.locate(id)?;
    let seg = &snap.segments[loc.segment];
    let rec = seg.chunk(loc.row);
    let doc = snap.docs.get(rec.doc_id)?;
    if !doc.chunk_ids().contains(&id) {
        return None;
    }
    let access = doc.access.as_ref();
    if !principal.can_see(access) || docs.is_some_and(|f| !f.matches(doc)) {
        tracing::error!(
            chunk = id,
            "filter check failed after retrieval; hit dropped"
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
        injection: doc.flag(id).map(|f| HitInjection {
            score: f.score,
            reasons: f.reasons.clone(),
            // Filled in by the policy; annotate until then.
            action: InjectionAction::Annotate,
        }),
        id,
        doc_id: doc.id,
    })
}

/// Picks the final hits from the fused list: drops a hit whose text overlaps
/// a better hit of the same page, and keeps at most `max_per_doc` per document.
fn select(
    fused: &[(u64, f32)],
    k: usize,
    p: &SearchParams,
    mut make: impl FnMut(u64, f32) -> Option<Hit>,
) -> Vec<Hit> {
    // Apply the injection policy first: down-ranking can reorder.
    let mut cands: Vec<Hit> = Vec::with_capacity(fused.len());
    for &(id, score) in fused {
        let Some(mut h) = make(id, score) else {
            continue;
        };
        if let Some(inj) = h.injection.as_mut() {
            match p.injection.action(inj.score) {
                None => h.injection = None,
                Some(action) => {
                    inj.action = action;
                    if action == InjectionAction::Downrank {
                        h.score *= p.injection.downrank_factor;
                    }
                }
            }
        }
        cands.push(h);
    }
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<Hit> = Vec::with_capacity(k);
    let mut per_doc: HashMap<u64, usize> = HashMap::new();
    for h in cands {
        if out.len() >= k {
            break;
        }
        if p.dedupe_overlaps
            && out.iter().any(|o| {
                o.doc_id == h.doc_id && o.page == h.page && o.start < h.end && h.start < o.end
            })
        {
            continue;
        }
        let n = per_doc.entry(h.doc_id).or_default();
        if p.max_per_doc > 0 && *n >= p.max_per_doc {
            continue;
        }
        *n += 1;
        out.push(h);
    }
    out
}

/// Both candidate lists fused as configured; more than k are kept so that
/// de-duplication and diversity can skip some.
fn fuse(
    vector: &[(u64, f32)],
    keyword: &[(u64, f32)],
    p: &SearchParams,
    want: usize,
) -> Vec<(u64, f32)> {
    let lists = [(vector, p.vector_weight), (keyword, p.keyword_weight)];
    match p.fusion {
        Fusion::Rrf => rrf(&lists, p.rrf_k, want * 2),
        Fusion::Weighted => weighted(&lists, want * 2),
    }
}

/// Hybrid search for `principal`: both searches filtered, fused, top `k`.
pub fn search(
    snap: &Snapshot,
    embedder: &dyn Embedder,
    principal: &Principal,
    req: &Request<'_>,
    p: &SearchParams,
) -> Result<SearchResult, RetrieveError> {
    let filter = snap.filter_for(principal);
    if filter.is_empty() || req.k == 0 || req.query.trim().is_empty() {
        return Ok(SearchResult::default());
    }
    let docs = req.docs.filter(|d| !d.is_empty());
    let want = p.candidates.max(req.k);
    let mask = docs.map(|d| snap.doc_mask(d));
    let qv = embedder.embed_query(req.query)?;
    let (vector, plans) = if p.vector_weight > 0.0 {
        vector_search(snap, &filter, mask.as_deref(), &qv, want, p)
    } else {
        (Vec::new(), Vec::new())
    };
    let keyword = if p.keyword_weight > 0.0 {
        snap.keyword_search(req.query, &filter, docs, want)?
    } else {
        Vec::new()
    };
    let fused = fuse(&vector, &keyword, p, want);
    let hits = select(&fused, req.k, p, |id, score| {
        make_hit(snap, principal, docs, id, score)
    });
    Ok(SearchResult {
        hits,
        vector,
        keyword,
        plans,
    })
}

/// Hybrid search over whichever backend `view` reads.
pub fn search_view(
    view: &View,
    embedder: &dyn Embedder,
    principal: &Principal,
    req: &Request<'_>,
    p: &SearchParams,
) -> Result<SearchResult, RetrieveError> {
    let mut r = match view {
        View::Embedded(snap) => search(snap, embedder, principal, req, p),
        View::Postgres(pg) => search_pg(pg, embedder, principal, req, p),
    }?;
    for h in &mut r.hits {
        own_teams_only(h, principal);
    }
    Ok(r)
}

/// A hit names only the teams of the document that the asker belongs to:
/// which other teams share a document is not the asker's business. (At
/// least one is always left: the asker sees the hit through it.)
pub fn own_teams_only(h: &mut Hit, principal: &Principal) {
    h.teams.retain(|t| principal.teams.contains(t));
}

/// Hybrid search on PostgreSQL: both searches run in the database with the
/// access rule in their `WHERE` and under row-level security; the fusion,
/// the injection policy and the selection are the embedded backend's.
pub fn search_pg(
    pg: &PgStore,
    embedder: &dyn Embedder,
    principal: &Principal,
    req: &Request<'_>,
    p: &SearchParams,
) -> Result<SearchResult, RetrieveError> {
    if principal.teams.is_empty() || req.k == 0 || req.query.trim().is_empty() {
        return Ok(SearchResult::default());
    }
    let docs = req.docs.filter(|d| !d.is_empty());
    let want = p.candidates.max(req.k);
    let qv = if p.vector_weight > 0.0 {
        Some(embedder.embed_query(req.query)?)
    } else {
        None
    };
    let (vector, keyword) = pg.search(
        principal,
        (p.keyword_weight > 0.0).then_some(req.query),
        qv,
        want,
        p.ef_search.max(want),
        docs.cloned(),
    )?;
    let fused = fuse(&vector, &keyword, p, want);
    let rows: HashMap<u64, ChunkRow> = pg
        .chunks(principal, fused.iter().map(|x| x.0).collect())?
        .into_iter()
        .map(|r| (r.id as u64, r))
        .collect();
    let hits = select(&fused, req.k, p, |id, score| {
        let r = rows.get(&id)?;
        let rule = AccessRule {
            teams: r.teams.clone(),
            classification: r.classification,
        };
        if !principal.can_see(Some(&rule)) {
            tracing::error!(
                chunk = id,
                "filter check failed after retrieval; hit dropped"
            );
            return None;
        }
        Some(Hit {
            chunk_id: chunk_id_string(id),
            doc: r.path.clone(),
            page: r.paged.then_some(r.page_no),
            start: r.char_start,
            end: r.char_end,
            score,
            text: r.text.clone(),
            classification: r.classification,
            teams: r.teams.clone(),
            injection: r.injection.as_ref().map(|(s, reasons)| HitInjection {
                score: *s,
                reasons: reasons.clone(),
                action: InjectionAction::Annotate,
            }),
            id,
            doc_id: r.doc_id as u64,
        })
    });
    Ok(SearchResult {
        hits,
        vector,
        keyword,
        plans: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let a = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let b = [(3, 10.0), (4, 9.0), (1, 8.0)];
        let f = rrf(&[(&a, 1.0), (&b, 1.0)], 60.0, 10);
        assert_eq!(f[0].0, 1);
        assert_eq!(f[1].0, 3);
        assert_eq!(f.len(), 4);
        assert_eq!(rrf(&[(&a, 1.0), (&b, 1.0)], 60.0, 2).len(), 2);
        // A zero weight silences a list.
        let only_b = rrf(&[(&a, 0.0), (&b, 1.0)], 60.0, 1);
        assert_eq!(only_b[0].0, 3);
    }

    #[test]
    fn weighted_normalises_each_list() {
        let a = [(1, 0.95), (2, 0.90)];
        let b = [(2, 30.0), (3, 10.0)];
        let f = weighted(&[(&a, 1.0), (&b, 1.0)], 10);
        // 2: 0 + 1; 1: 1 + 0; 3: 0 + 0 -> 1 and 2 tie at 1.0, id order breaks it.
        assert_eq!(f.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        let f = weighted(&[(&a, 1.0), (&b, 2.0)], 10);
        assert_eq!(f[0].0, 2);
    }

    #[test]
    fn ef_grows_as_the_filter_narrows() {
        assert_eq!(ef_for(64, 1.0), 64);
        assert!(ef_for(64, 0.1) > ef_for(64, 0.5));
        assert_eq!(ef_for(64, 0.0001), 512);
        assert_eq!(ef_for(64, 0.0625), 128);
    }
}
