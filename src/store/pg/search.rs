//! Both searches on PostgreSQL, with the access rule in every `WHERE`.
//!
//! The vector side is planned like the embedded index's: few visible chunks
//! are scored exactly — from the vectors this node keeps of the principal's
//! access sets (`vectors`), or inside PostgreSQL through the index on access
//! sets; otherwise the HNSW index is walked with the filter applied during
//! the walk (pgvector's iterative scan), and if that still yields fewer than
//! wanted, the exact plan runs.
//! PostgreSQL's own planner cannot make this choice well: it has no estimate
//! of how many rows an array overlap with the caller's teams admits.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::Arc;

use futures_util::FutureExt;

use super::texts::Seen;
use super::vectors::{self, KeptGraph, SetVectors, VectorCache};
use super::{
    col, estimate, in_sets, sets_of, total, Access, Conn, Counts, Ctx, PgError, PgStore, Vector,
    COUNTS_TTL, EXACT_ROWS,
};
use crate::acl::Principal;
use crate::store::contract::Scored;
use crate::store::docfilter::CompiledDocFilter;
use crate::store::plan::ef_for;
use crate::store::record::{VectorParams, VectorPlan};

impl PgStore {
    /// An upper bound of the chunks `access` admits, and all chunks, from
    /// per-team, per-level counts (as the embedded planner estimates from
    /// its segment statistics). A serving node reads them as it starts
    /// ([`PlannerCounts::prefetch`], `/readyz` waits for it); otherwise only
    /// the node's first search waits for them;
    /// later ones plan with the counts at hand while a job reads them again
    /// in the background, once they are [`COUNTS_TTL`] old or after this
    /// node wrote.
    ///
    /// Why: they were read on the request path whenever they had expired
    /// (every 30 s, and on the first search after each write), by every
    /// search that found them expired: 2.1 s at 1,000,000 chunks. The
    /// estimate only chooses a plan (each plan is exact or falls back to
    /// the exact scan when the walk finds too few), so counts a moment old
    /// cost at most speed, never a hit.
    pub(crate) fn estimate_visible(&self, access: &Access) -> Result<(i64, i64), PgError> {
        let at_hand = {
            let g = lock(&self.counts.state);
            g.as_ref()
                .map(|s| (s.counts.clone(), s.changed || s.at.elapsed() >= COUNTS_TTL))
        };
        let counts = match at_hand {
            Some((counts, stale)) => {
                if stale {
                    self.counts.refresh(self.reads().clone());
                }
                counts
            }
            None => {
                let counts = Arc::new(read_counts(self.reads())?);
                *lock(&self.counts.state) = Some(CountsState::read_now(counts.clone()));
                counts
            }
        };
        Ok((estimate(&counts, access), total(&counts)))
    }

    /// Marks the planner's counts as outdated after a write (read again in
    /// the background by the next search).
    pub(crate) fn counts_changed(&self) {
        if let Some(s) = lock(&self.counts.state).as_mut() {
            s.changed = true;
        }
    }

    /// Document ids the metadata filter admits (owner view; the access rule
    /// is applied by the search itself).
    async fn filter_ids(c: &Conn, f: &CompiledDocFilter) -> Result<Vec<i64>, PgError> {
        let prefix = f.path_prefix.clone();
        let like = prefix.as_ref().map(|p| {
            let mut e = String::new();
            for ch in p.chars() {
                if matches!(ch, '%' | '_' | '\\') {
                    e.push('\\');
                }
                e.push(ch);
            }
            e + "/%"
        });
        let rows = c
            .query(
                "SELECT id FROM documents
                 WHERE ($1::text IS NULL OR path = $1 OR path LIKE $2)
                   AND ($3::text[] IS NULL OR kind = ANY($3))
                   AND ($4::bigint IS NULL OR mtime_ns >= $4)
                   AND ($5::bigint IS NULL OR mtime_ns < $5)",
                &[&prefix, &like, &f.kinds, &f.after_ns, &f.before_ns],
            )
            .await
            .ctx("metadata filter")?;
        rows.iter().map(|r| col(r, 0)).collect()
    }

    /// Document ids of a metadata filter, or `None` for no filter.
    pub(crate) async fn doc_ids(
        c: &Conn,
        docs: Option<&CompiledDocFilter>,
    ) -> Result<Option<Vec<i64>>, PgError> {
        match docs.filter(|d| !d.is_empty()) {
            Some(f) => Ok(Some(Self::filter_ids(c, f).await?)),
            None => Ok(None),
        }
    }

    /// The vector candidates (id, cosine similarity) of `who`, planned.
    pub(crate) fn vector_candidates(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &[f32],
        want: usize,
        params: VectorParams,
        seen: Option<&Seen>,
    ) -> Result<(Scored, Vec<VectorPlan>), PgError> {
        let access = Access::of(who);
        if access.teams.is_empty() || want == 0 {
            return Ok((Vec::new(), vec![VectorPlan::Skipped]));
        }
        let (estimate, total) = self.estimate_visible(&access)?;
        // The narrower the filter, the wider the beam: about want / selectivity
        // candidates pass by before `want` admitted ones are found, and
        // pgvector orders only the beam well. Measured recall@10 at 12 %
        // selectivity (`hort bench backends`): 0.989 with a beam of want /
        // selectivity, 0.988–0.990 with twice that, 0.992 with three times,
        // 0.994 with four (which doubled the vector p99). Only the filtered
        // part is widened: with nothing filtered the beam stays `want`.
        let selectivity = (estimate as f64 / total.max(1) as f64).clamp(1e-6, 1.0);
        let widened = want as f64 * (1.0 + 3.0 * (1.0 / selectivity - 1.0));
        let ef = ef_for(beam_for(params.ef_search, total).max(want), selectivity)
            .max(widened.ceil().min(1000.0) as usize);
        let filtered = docs.is_some_and(|d| !d.is_empty());
        if !filtered && self.walks_kept_graph(estimate, total) {
            if let Some(v) =
                self.kept_graph_nearest(&access, query, want, params.ef_search, seen)?
            {
                return Ok((v, vec![VectorPlan::Graph]));
            }
        }
        if !filtered && self.keeps_vectors_of(estimate, total, want) {
            let vector = self.kept_nearest(&access, query, want, seen)?;
            return Ok((vector, vec![VectorPlan::Exact]));
        }
        let docs = docs.cloned();
        let qv = Vector(query.to_vec());
        let partitioned = self.partitioned;
        let want = want as i64;
        self.reads().run(move |c| {
            async move {
                let ids = Self::doc_ids(c, docs.as_ref()).await?;
                // A metadata filter naming few documents: score their chunks.
                let exact = exact_is_cheaper(estimate, total, want)
                    || ids
                        .as_ref()
                        .is_some_and(|d| d.len() as i64 <= EXACT_ROWS / 10);
                let q = VectorQuery {
                    v: &qv,
                    access: &access,
                    want,
                    docs: &ids,
                    partitioned,
                    ef: ef.clamp(1, 1000),
                };
                let mut plan = if exact {
                    VectorPlan::Exact
                } else {
                    VectorPlan::Graph
                };
                let mut rows = q.rows(c, exact).await?;
                if !exact && (rows.len() as i64) < want.min(estimate) {
                    rows = q.rows(c, true).await?;
                    plan = VectorPlan::GraphThenExact;
                }
                let vector = rows
                    .iter()
                    .map(|r| Ok((col::<i64>(r, 0)? as u64, 1.0 - col::<f64>(r, 1)? as f32)))
                    .collect::<Result<_, PgError>>()?;
                Ok((vector, vec![plan]))
            }
            .boxed()
        })
    }
}

impl PgStore {
    /// Whether to score the principal's visible chunks (about `visible` of
    /// `total`) from the vectors this node keeps, when they fit the cache:
    /// where scoring them exactly is the plan anyway, where the filtered
    /// walk misses too many (below [`WALK_MIN_SHARE`]), or where scoring
    /// them in memory is cheaper than the walk.
    fn keeps_vectors_of(&self, visible: i64, total: i64, want: usize) -> bool {
        let budget = self.vectors.budget();
        if budget == 0 || VectorCache::bytes_for(visible.max(0) as usize, self.meta().dim) > budget
        {
            return false;
        }
        keeps_rather_than_walks(visible, total, want as i64)
    }

    /// Whether to walk the graph this node keeps of every chunk for a
    /// principal who sees about `visible` of `total`: all of them fit the
    /// cache with their graph, scanning the visible ones would cost more
    /// (above [`KEPT_SCAN_ROWS`]), and they are not so few that the walk
    /// passes mostly by others (below [`KEPT_WALK_MIN_SHARE`]).
    fn walks_kept_graph(&self, visible: i64, total: i64) -> bool {
        let budget = self.vectors.budget();
        visible > KEPT_SCAN_ROWS
            && visible as f64 >= KEPT_WALK_MIN_SHARE * total as f64
            && budget > 0
            && VectorCache::bytes_with_graph(total.max(0) as usize, self.meta().dim, self.meta().m)
                <= budget
    }

    /// The `want` nearest chunks of the principal's access sets, scored
    /// from the kept vectors (see [`vectors`](super::vectors)): the sets'
    /// versions are read in one small statement, and only sets kept at
    /// another version (or not at all) are read again, with their version,
    /// in one snapshot. The versions are recorded in `seen` (the view's, for
    /// its texts).
    fn kept_nearest(
        &self,
        access: &Access,
        query: &[f32],
        want: usize,
        seen: Option<&Seen>,
    ) -> Result<Scored, PgError> {
        let versions = self.set_versions(access)?;
        if let Some(s) = seen {
            s.record(access, &versions);
        }
        let sets = self.current_sets(access, versions)?;
        Ok(as_scored(vectors::nearest(&sets, query, want)))
    }

    /// Access sets `versions` (id, version) as kept at those versions; the
    /// others are read again as `access` (their version and chunks in one
    /// snapshot) and kept.
    fn current_sets(
        &self,
        access: &Access,
        versions: Vec<(i32, i64)>,
    ) -> Result<Vec<Arc<SetVectors>>, PgError> {
        let mut sets = Vec::with_capacity(versions.len());
        let mut stale = Vec::new();
        for (id, version) in versions {
            match self.vectors.get(id, version) {
                Some(s) => sets.push(s),
                None => stale.push(id),
            }
        }
        if !stale.is_empty() {
            for (id, set) in read_sets(self.reads(), access, stale, self.meta().dim)? {
                self.vectors.put(id, set.clone());
                sets.push(set);
            }
        }
        Ok(sets)
    }

    /// The `want` nearest chunks of the principal's access sets through the
    /// graph this node keeps of every set ([`KeptGraph`]): the sets still at
    /// the version the graph holds are walked, those written since are
    /// scanned from their current rows (kept, or read as the principal).
    /// None without a graph: pgvector's walk serves the search while a job
    /// in the background builds one; it is built again once the sets
    /// written since hold a tenth as many chunks as the graph. The versions
    /// are recorded in `seen` (the view's, for its texts).
    fn kept_graph_nearest(
        &self,
        access: &Access,
        query: &[f32],
        want: usize,
        ef: usize,
        seen: Option<&Seen>,
    ) -> Result<Option<Scored>, PgError> {
        // Without a graph the caller's plan reads the versions itself: not
        // read here for nothing.
        let Some(graph) = self.vectors.graph() else {
            self.warm_graph();
            return Ok(None);
        };
        let versions = self.set_versions(access)?;
        if let Some(s) = seen {
            s.record(access, &versions);
        }
        let (walked, written): (Vec<_>, Vec<_>) = versions
            .into_iter()
            .partition(|&(id, version)| graph.version_of(id) == Some(version));
        let walked: Vec<i32> = walked.into_iter().map(|(id, _)| id).collect();
        let sets = self.current_sets(access, written)?;
        let changed: usize = sets.iter().map(|s| s.len()).sum();
        if changed * REBUILD_SHARE > graph.len() {
            self.warm_graph();
        }
        let mut best = graph.nearest(&walked, query, want, ef);
        best.extend(vectors::nearest(&sets, query, want));
        best.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        best.truncate(want);
        Ok(Some(as_scored(best)))
    }

    /// Starts the job that reads every access set's vectors (in one
    /// snapshot, as a principal of every team cleared for everything: the
    /// graph serves every principal, each admitted only to its own sets'
    /// nodes) and builds the graph over them; nothing if that job already
    /// runs. A failure only leaves the node without a graph.
    fn warm_graph(&self) {
        let cache = self.vectors.clone();
        let pool = self.reads().clone();
        let dim = self.meta().dim;
        // As the database's own graph is built (`[hnsw]`).
        let params = crate::store::hnsw::GraphParams {
            m: self.meta().m,
            ef_construction: self.meta().ef_construction,
        };
        self.vectors.warming.spawn("hort-kept-graph", move || {
            let t = std::time::Instant::now();
            match every_set(&pool, dim)
                .and_then(|sets| KeptGraph::build(sets, dim, params).map_err(PgError::Mismatch))
            {
                Ok(g) => {
                    tracing::info!(
                        chunks = g.len(),
                        mb = g.bytes() >> 20,
                        seconds = t.elapsed().as_secs_f64(),
                        "kept vector graph built"
                    );
                    cache.put_graph(Arc::new(g));
                }
                Err(e) => tracing::warn!("cannot build the kept vector graph: {e}"),
            }
        });
    }

    /// The versions of the access sets `access` admits, in one statement
    /// (its own snapshot). `access_sets` holds rules and versions, no
    /// content, and has no row-level policy: the statement's `WHERE` is the
    /// admission rule itself, so it runs without the transaction and role
    /// a read of content needs (one message instead of four, on every
    /// search that uses kept vectors).
    fn set_versions(&self, access: &Access) -> Result<Vec<(i32, i64)>, PgError> {
        let a = access.clone();
        self.reads().run(move |c| {
            async move {
                let st = c
                    .prepare_cached(
                        "SELECT id, version FROM access_sets
                         WHERE teams && $1 AND classification <= $2",
                    )
                    .await
                    .ctx("prepare access set versions")?;
                c.query(&st, &[&a.teams, &a.clearance])
                    .await
                    .ctx("read access set versions")?
                    .iter()
                    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                    .collect()
            }
            .boxed()
        })
    }
}

/// The chunk counts the vector planner estimates from, and the job that
/// reads them again.
pub(crate) struct PlannerCounts {
    state: std::sync::Mutex<Option<CountsState>>,
    /// One read at a time; the next one as soon as writes ask for it (no
    /// gap but the last read's own duration).
    refresh: super::warm::Warming,
}

impl Default for PlannerCounts {
    fn default() -> PlannerCounts {
        PlannerCounts {
            state: Default::default(),
            refresh: super::warm::Warming::with_gap(std::time::Duration::ZERO),
        }
    }
}

struct CountsState {
    /// When they were read.
    at: std::time::Instant,
    counts: Arc<Counts>,
    /// This node wrote since they were read.
    changed: bool,
}

impl CountsState {
    /// Counts just read, with no write since.
    fn read_now(counts: Arc<Counts>) -> CountsState {
        CountsState {
            at: std::time::Instant::now(),
            counts,
            changed: false,
        }
    }
}

impl PlannerCounts {
    /// Reads the counts for the first time on a thread of its own (a
    /// serving node, at start), so that its first search does not wait for
    /// them. A failure is logged; the first search then reads them itself.
    pub(crate) fn prefetch(self: &Arc<Self>, pool: Arc<super::pool::Pool>) {
        if lock(&self.state).is_some() {
            return;
        }
        let this = self.clone();
        self.refresh
            .spawn("hort-counts", move || match read_counts(&pool) {
                Ok(c) => {
                    let mut g = lock(&this.state);
                    if g.is_none() {
                        *g = Some(CountsState::read_now(Arc::new(c)));
                    }
                }
                Err(e) => tracing::warn!("cannot read the planner's chunk counts: {e}"),
            });
    }

    /// Whether the counts were read (a search no longer waits for them).
    pub(crate) fn are_read(&self) -> bool {
        lock(&self.state).is_some()
    }

    /// Reads the counts again on a thread of its own, unless that already
    /// runs. A failure keeps the counts at hand until they expire again.
    fn refresh(self: &Arc<Self>, pool: Arc<super::pool::Pool>) {
        let this = self.clone();
        self.refresh.spawn("hort-counts", move || {
            // A write from now on marks the new counts outdated again.
            if let Some(s) = lock(&this.state).as_mut() {
                s.changed = false;
            }
            let read = read_counts(&pool);
            let mut g = lock(&this.state);
            let Some(s) = g.as_mut() else {
                return;
            };
            s.at = std::time::Instant::now();
            match read {
                Ok(c) => s.counts = Arc::new(c),
                Err(e) => tracing::warn!("cannot read the planner's chunk counts: {e}"),
            }
        });
    }
}

/// Chunks per (team, classification): per access set, from the index on
/// the distribution column (0.15 s at 1,000,000 chunks; counting every
/// chunk's teams took 2.1 s), each set's count added to each of its teams.
fn read_counts(pool: &super::pool::Pool) -> Result<Counts, PgError> {
    let per_set: Vec<(Vec<String>, i32, i64)> = pool.run(|c| {
        async move {
            c.query(
                "SELECT a.teams, a.classification, n.n
                 FROM access_sets a
                 JOIN (SELECT acl, count(*) AS n FROM chunks GROUP BY acl) n ON n.acl = a.id",
                &[],
            )
            .await
            .ctx("count chunks per access set")?
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?)))
            .collect::<Result<_, PgError>>()
        }
        .boxed()
    })?;
    let mut counts = Counts::new();
    for (teams, classification, n) in per_set {
        for t in teams {
            *counts.entry((t, classification)).or_default() += n;
        }
    }
    Ok(counts)
}

/// Kept distances as the contract's scores (cosine similarity).
fn as_scored(nearest: Vec<(i64, f64)>) -> Scored {
    nearest
        .into_iter()
        .map(|(id, d)| (id as u64, 1.0 - d as f32))
        .collect()
}

/// Up to this many visible chunks are scanned from the kept vectors
/// rather than found by walking the kept graph (about 0.6 ms of scanning).
const KEPT_SCAN_ROWS: i64 = 4_096;

/// The share of all chunks a principal must see for the kept graph to be
/// walked for it (the beam widens as the share narrows, as in the embedded
/// index, [`ef_for`]). Below it the walk passes mostly by chunks the
/// principal may not see: at 12 % of 100,000 chunks it took 2.5 ms (p50),
/// no faster than scanning the visible ones (2.2 ms, `hort bench backends`).
const KEPT_WALK_MIN_SHARE: f64 = WALK_MIN_SHARE;

/// The graph is built again once the sets written since it was built
/// hold more than 1/REBUILD_SHARE of its chunks (each search scans them).
const REBUILD_SHARE: usize = 10;

/// Every access set with its chunks' vectors, in one snapshot, read as a
/// principal of every team the sets name, cleared for everything.
fn every_set(pool: &super::pool::Pool, dim: usize) -> Result<Vec<(i32, Arc<SetVectors>)>, PgError> {
    let (ids, teams): (Vec<i32>, Vec<String>) = pool.run(|c| {
        async move {
            let r = c
                .query_one(
                    "SELECT ARRAY(SELECT id FROM access_sets),
                            ARRAY(SELECT DISTINCT unnest(teams) FROM access_sets)",
                    &[],
                )
                .await
                .ctx("read access sets")?;
            Ok((col(&r, 0)?, col(&r, 1)?))
        }
        .boxed()
    })?;
    let all = Access {
        teams,
        clearance: crate::acl::Classification::Restricted.level() as i32,
    };
    read_sets(pool, &all, ids, dim)
}

/// Access sets `ids` with their chunks' vectors, read as the principal
/// in one snapshot (repeatable read: the versions and the rows agree).
fn read_sets(
    pool: &super::pool::Pool,
    access: &Access,
    ids: Vec<i32>,
    dim: usize,
) -> Result<Vec<(i32, Arc<SetVectors>)>, PgError> {
    let a = access.clone();
    let (versions, rows) = pool.run(move |c| {
        async move {
            let sv = c
                .prepare_cached("SELECT id, version FROM access_sets WHERE id = ANY($1)")
                .await
                .ctx("prepare access set versions")?;
            let sc = c
                .prepare_cached("SELECT acl, id, embedding FROM chunks WHERE acl = ANY($1)")
                .await
                .ctx("prepare access set vectors")?;
            let mut rows = a
                .pipelined(
                    c,
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    false,
                    "",
                    &[(&sv, &[&ids]), (&sc, &[&ids])],
                )
                .await?;
            let chunks = rows.pop().unwrap_or_default();
            let versions = rows.pop().unwrap_or_default();
            Ok((versions, chunks))
        }
        .boxed()
    })?;
    let mut by_set: HashMap<i32, Vec<(i64, Vec<f32>)>> = HashMap::new();
    for r in &rows {
        let v: Vector = col(r, 2)?;
        by_set
            .entry(col(r, 0)?)
            .or_default()
            .push((col(r, 1)?, v.0));
    }
    versions
        .iter()
        .map(|r| {
            let id: i32 = col(r, 0)?;
            let set = SetVectors::new(col(r, 1)?, dim, by_set.remove(&id).unwrap_or_default())
                .map_err(PgError::Mismatch)?;
            Ok((id, Arc::new(set)))
        })
        .collect()
}

/// The beam a walk of pgvector's graph over `total` chunks starts from,
/// for the configured `ef`: `ef` up to [`BEAM_CHUNKS`], doubling with every
/// tenfold growth beyond. The embedded index walks each of its segments
/// with `ef` (1M chunks are five graphs of 200,000); pgvector has one graph
/// of every chunk, and the same beam finds less of it as it grows: recall@10
/// for a principal who sees everything, 1.000 at 100,000 chunks with a beam
/// of 64, but 0.975 at 1M, where 128 reached 0.995 and 192 1.000 (the
/// walk's p50 2.3 → 3.3 → 5.4 ms; `hort bench backends`, 200 queries).
pub(crate) fn beam_for(ef: usize, total: i64) -> usize {
    let growth = (total as f64 / BEAM_CHUNKS as f64).max(1.0);
    (ef as f64 * growth.powf(std::f64::consts::LOG10_2)).round() as usize
}

/// The size of corpus up to which pgvector's graph is walked with the
/// configured beam (see [`beam_for`]).
const BEAM_CHUNKS: i64 = 100_000;

/// Microseconds per visible chunk of scoring the kept vectors (384
/// dimensions; measured with `hort bench backends`).
const KEPT_US_PER_ROW: f64 = 0.15;

/// The share of the corpus a principal must see for the filtered graph
/// walk to be trusted with its search. Below it, pgvector's walk (iterative
/// scan, beam widened as the filter narrows) found too few of the true
/// nearest: recall@10 0.983 at 12 % visible of 1M chunks, where 46 % reached
/// 0.995 and everything 0.990 (`hort bench backends`, 200 queries each);
/// widening the beam further bought 0.003 per doubling of its cost at 100k.
/// Scoring the kept vectors is exact, so it is chosen there whenever they
/// fit the cache, at the cost of a longer scan (the cache's budget bounds
/// it).
pub(crate) const WALK_MIN_SHARE: f64 = 0.25;

/// Whether scoring the kept vectors of about `visible` of `total` chunks
/// is the better plan than walking the graph for `want` of them (given
/// that they fit the cache).
fn keeps_rather_than_walks(visible: i64, total: i64, want: i64) -> bool {
    exact_is_cheaper(visible, total, want)
        || (visible as f64) < WALK_MIN_SHARE * total as f64
        || KEPT_US_PER_ROW * visible as f64 <= graph_us(visible, total, want)
}

/// What the graph walk for `want` of about `visible` of `total` chunks is
/// expected to cost, in microseconds.
fn graph_us(visible: i64, total: i64, want: i64) -> f64 {
    let selectivity = (visible as f64 / total.max(1) as f64).clamp(1e-6, 1.0);
    GRAPH_US + GRAPH_US_PER_PASSED * want.max(1) as f64 / selectivity
}

/// Microseconds the graph walk costs before it finds anything, and per
/// chunk it must pass by to find `want` visible ones (about want /
/// selectivity); and what the exact plan costs per visible chunk. Measured
/// at 100,000 chunks, 384 dimensions, vectors stored inline (migration 9),
/// on 2 cores (`hort bench backends`, and `EXPLAIN ANALYZE` of both plans
/// at 2.9k, 6k, 11.6k and 23.7k visible chunks, 10 and 50 wanted): the walk
/// took 2.7–3.4 ms for 10 wanted at 6–24 % visible but 15 ms for 50 wanted at
/// 6 % and 30 ms at 3 %, the exact scan 6–9 ms up to 11.6k visible and 19
/// ms at 23.7k.
const GRAPH_US: f64 = 2_000.0;
const GRAPH_US_PER_PASSED: f64 = 15.0;
const EXACT_US_PER_ROW: f64 = 0.8;

/// Whether scoring every one of about `visible` of `total` chunks is
/// cheaper than walking the graph for `want` of them (always below
/// [`EXACT_ROWS`]).
fn exact_is_cheaper(visible: i64, total: i64, want: i64) -> bool {
    if visible <= EXACT_ROWS {
        return true;
    }
    EXACT_US_PER_ROW * visible as f64 <= graph_us(visible, total, want)
}

/// One vector search's parameters.
struct VectorQuery<'a> {
    v: &'a Vector,
    access: &'a Access,
    want: i64,
    docs: &'a Option<Vec<i64>>,
    /// Whether the corpus is partitioned by access set (the distribution
    /// column): the walk then names the principal's sets too.
    partitioned: bool,
    ef: usize,
}

impl VectorQuery<'_> {
    /// The nearest visible chunks (id, cosine distance), by scoring every
    /// visible chunk (`exact`) or walking the HNSW graph with the filter
    /// inside the walk, in a read transaction of its own: the plan's and
    /// pgvector's settings, the access and the search go in one round trip.
    async fn rows(&self, c: &Conn, exact: bool) -> Result<Vec<tokio_postgres::Row>, PgError> {
        // The exact plan states the rule through the access sets it admits
        // (`acl` among the sets whose teams and classification the
        // principal may read: the same rule, checked on the few access sets
        // rather than on every row, 0.4 ms of a 6,000-row scan), so the
        // index on `acl` finds only the visible chunks, where the team index
        // also finds those of higher classification (6,050 of 11,630 rows
        // for one team at `internal`: 3.8 ms against 7 ms). Row-level
        // security still checks every row's teams and classification. The
        // walk states the rule per row, and names the sets only on a
        // partitioned corpus (to skip the parts that hold none).
        let rule = if exact {
            format!("acl = ANY({})", sets_of(2, 3))
        } else {
            format!(
                "teams && $2 AND classification <= $3{}",
                in_sets(self.partitioned, "", 2, 3)
            )
        };
        let (index, others) = if exact { ("off", "on") } else { ("on", "off") };
        let settings = format!(
            "SET LOCAL enable_indexscan = {index}; SET LOCAL enable_bitmapscan = {others};
             SET LOCAL enable_seqscan = {others}; SET LOCAL hnsw.ef_search = {};
             SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.max_scan_tuples = 100000;",
            self.ef
        );
        // relaxed_order may return rows slightly out of order: order the
        // materialised candidates again.
        let statement = c
            .prepare_cached(&format!(
                "WITH c AS MATERIALIZED (
                    SELECT id, embedding <=> $1 AS d FROM chunks
                    WHERE {rule} AND ($5::bigint[] IS NULL OR doc_id = ANY($5))
                    ORDER BY embedding <=> $1 LIMIT $4)
                 SELECT id, d FROM c ORDER BY d, id"
            ))
            .await
            .ctx("prepare vector search")?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
            self.v,
            &self.access.teams,
            &self.access.clearance,
            &self.want,
            self.docs,
        ];
        let mut rows = self
            .access
            .pipelined(
                c,
                "BEGIN READ ONLY",
                false,
                &settings,
                &[(&statement, &params)],
            )
            .await?;
        Ok(rows.pop().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_measured_costs() {
        let n = 100_000;
        // Measured faster exact: 2.9k visible (10 wanted), 6k (50 wanted).
        assert!(exact_is_cheaper(2_880, n, 10));
        assert!(exact_is_cheaper(6_050, n, 50));
        // Measured faster walking: 11.6k (10 and 50), 23.7k, everything.
        assert!(!exact_is_cheaper(11_630, n, 10));
        assert!(!exact_is_cheaper(11_630, n, 50));
        assert!(!exact_is_cheaper(23_720, n, 10));
        assert!(!exact_is_cheaper(n, n, 50));
        // Few chunks are always scored; an empty corpus too.
        assert!(exact_is_cheaper(EXACT_ROWS, 10_000_000, 1));
        assert!(exact_is_cheaper(0, 0, 10));
    }

    #[test]
    fn the_beam_doubles_per_tenfold_growth() {
        assert_eq!(beam_for(64, 0), 64);
        assert_eq!(beam_for(64, 100_000), 64);
        assert_eq!(beam_for(64, 1_000_000), 128);
        assert_eq!(beam_for(64, 10_000_000), 256);
        assert!((90..=91).contains(&beam_for(64, 316_228)));
    }

    #[test]
    fn kept_vectors_serve_where_the_walk_misses() {
        let m = 1_000_000;
        // 12 % of 1M: the walk is cheaper but reached recall 0.983.
        assert!(keeps_rather_than_walks(122_000, m, 10));
        // 46 % and everything: the walk reached 0.995 and 0.990.
        assert!(!keeps_rather_than_walks(462_000, m, 10));
        assert!(!keeps_rather_than_walks(m, m, 10));
        // Cheaper kept than walked: 6 % of 1M for 50 wanted.
        assert!(keeps_rather_than_walks(62_000, m, 50));
        // Few chunks are always scored.
        assert!(keeps_rather_than_walks(EXACT_ROWS, m, 10));
    }
}
