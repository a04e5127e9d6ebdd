//! `hort bench backends`: the embedded index and PostgreSQL + pgvector side
//! by side on the same 100k-chunk corpus: `/v1/search` latency over HTTP,
//! vector search latency in process, and recall@10 of the vector search
//! against an exact scan, for a principal who sees everything and one who
//! sees one team (a filtered search).
//!
//! The corpus is synthetic text with clustered vectors ([`synth::Clusters`]);
//! the recall queries come from the same distribution, the HTTP questions
//! are embedded by the real model.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::keyword::Latency;
use super::query::{config, measure, question_bodies, serve_in_process, Endpoint};
use super::synth::{self, Clusters, Rng};
use super::{write_results, Machine};
use crate::acl::{Classification, Principal};
use crate::embed::Embedder;
use crate::retrieve::SearchParams;
use crate::store::hnsw::{self, GraphParams};
use crate::store::migrate;
use crate::store::pg::{Meta, PgStore, PgWriter};
use crate::store::{IndexRead, IndexReader, Snapshot};

/// One backend's figures in the backends benchmark.
#[derive(Debug, Serialize)]
pub struct Side {
    /// `embedded` or `postgres`.
    pub backend: String,
    /// Seconds to bring the data in (build, or copy into the database and
    /// build its index), when it happened in this run.
    pub load_seconds: Option<f64>,
    /// `/v1/search` latency through a real server.
    pub search: Endpoint,
    /// Vector search alone, in process: p50 / p99 for both principals.
    pub vector_p50_ms: f64,
    /// 99th-percentile vector search latency.
    pub vector_p99_ms: f64,
    /// Recall@10 of the vector search for a principal who sees everything.
    pub recall_at_10_all: f64,
    /// Recall@10 for a principal of one team (a filtered search).
    pub recall_at_10_one_team: f64,
}

/// The embedded index and PostgreSQL side by side on the same chunks.
#[derive(Debug, Serialize)]
pub struct BackendsReport {
    /// Where it ran.
    pub machine: Machine,
    /// Chunks loaded.
    pub chunks: usize,
    /// The embedding model.
    pub model: String,
    /// Queries the recall is measured on.
    pub recall_queries: usize,
    /// Share of chunks the one-team principal may see.
    pub one_team_selectivity: f64,
    /// One entry per backend.
    pub sides: Vec<Side>,
}

/// Document path and page of a chunk: the same on both backends.
fn key_embedded(snap: &Snapshot, id: u64) -> Option<(String, u32)> {
    let l = snap.locate(id)?;
    let rec = snap.segments[l.segment].chunk(l.row);
    let d = snap.docs.get(rec.doc_id)?;
    Some((d.path.clone(), rec.page_no))
}

fn exact_top(snap: &Snapshot, p: &Principal, q: &[f32], k: usize) -> HashSet<(String, u32)> {
    let filter = snap.filter_for(p);
    let mut all: Vec<(u64, f32)> = Vec::new();
    for (s, seg) in snap.segments.iter().enumerate() {
        let acl = snap.acl(s);
        let hits = hnsw::exact(seg.vectors(), q, k, |i| filter.allows(acl, i as usize));
        all.extend(hits.iter().map(|h| (seg.ids()[h.idx as usize], h.dist)));
    }
    all.sort_by(|a, b| a.1.total_cmp(&b.1));
    all.truncate(k);
    all.into_iter()
        .filter_map(|(id, _)| key_embedded(snap, id))
        .collect()
}

fn recall(found: &[(String, u32)], truth: &HashSet<(String, u32)>) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    found.iter().filter(|k| truth.contains(*k)).count() as f64 / truth.len() as f64
}

/// Creates database `name` on the server of `url` if it does not exist,
/// and returns its URL.
pub fn database(url: &str, name: &str) -> Result<String, String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).map_err(|e| e.to_string())?;
    let exists = c
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| e.to_string())?;
    }
    let (head, _) = url
        .rsplit_once('/')
        .ok_or_else(|| format!("{url}: no database name in the URL"))?;
    Ok(format!("{head}/{name}"))
}

/// Runs the comparison (PostgreSQL from `HORT_BENCH_PG_URL`, skipped if unset).
pub fn run(
    embedder: Arc<dyn Embedder>,
    pg_url: &str,
    n: usize,
    requests: usize,
    work: &Path,
    out: &Path,
) -> Result<BackendsReport, String> {
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
    let dim = embedder.dim();
    let clusters = Clusters::new(5, dim, (n / 100).max(10));
    let dir = work.join(format!("query-clustered-{n}"));
    let mut build_seconds = None;
    if !dir.join("MANIFEST").is_file() {
        eprintln!(
            "bench backends: building a {n}-chunk index in {} (one-off)",
            dir.display()
        );
        let t = Instant::now();
        synth::build_index_with(
            &dir,
            embedder.id(),
            n,
            dim,
            GraphParams {
                m: 16,
                ef_construction: 100,
            },
            42,
            |done| eprintln!("bench backends: {done}/{n} chunks written"),
            |rng, _| clusters.sample(rng),
        )
        .map_err(|e| e.to_string())?;
        build_seconds = Some(t.elapsed().as_secs_f64());
    }
    let reader = Arc::new(IndexReader::open(&dir).map_err(|e| e.to_string())?);
    let snap = reader.snapshot();

    let db = database(pg_url, &format!("hort_bench_clustered_{n}"))?;
    let pg = Arc::new(
        PgStore::open(
            &db,
            None,
            4,
            Meta {
                embedder: snap.manifest.embedder.clone(),
                dim: snap.manifest.dim as usize,
                chunker: snap.manifest.chunker.clone(),
                // The embedded index of this suite is built with the same.
                m: 16,
                ef_construction: 100,
            },
        )
        .map_err(|e| e.to_string())?,
    );
    let t = Instant::now();
    let mut writer =
        PgWriter::open(pg.clone(), &snap.manifest.chunker).map_err(|e| e.to_string())?;
    let sync = migrate::copy(snap.as_ref(), &mut writer, true).map_err(|e| e.to_string())?;
    drop(writer);
    let pg_load = (sync.added + sync.updated > 0).then(|| t.elapsed().as_secs_f64());

    let everyone = Principal::new("everything", &synth::TEAMS, Classification::Restricted);
    let one_team = Principal::new("one-team", &["finance"], Classification::Internal);
    let visible = snap
        .docs
        .iter()
        .filter(|d| one_team.can_see(d.access.as_ref()))
        .map(|d| d.n_chunks as usize)
        .sum::<usize>();
    let params = SearchParams::default();
    let mut rng = Rng::new(77);
    let queries: Vec<Vec<f32>> = (0..200).map(|_| clusters.sample(&mut rng)).collect();
    let truth: Vec<[HashSet<(String, u32)>; 2]> = queries
        .iter()
        .map(|q| {
            [
                exact_top(&snap, &everyone, q, 10),
                exact_top(&snap, &one_team, q, 10),
            ]
        })
        .collect();
    let god = Principal::new("god", &synth::TEAMS, Classification::Restricted);

    // Vector search in process, both principals, both backends.
    let mut sides = Vec::new();
    for backend in ["embedded", "postgres"] {
        let mut ms = Vec::new();
        let mut rec = [Vec::new(), Vec::new()];
        for (q, t) in queries.iter().zip(&truth) {
            for (w, p) in [&everyone, &one_team].into_iter().enumerate() {
                let start = Instant::now();
                let view: &dyn IndexRead = if backend == "embedded" {
                    snap.as_ref()
                } else {
                    pg.as_ref()
                };
                let (v, _) = view
                    .vector_search(p, None, q, 10, params.vector())
                    .map_err(|e| e.to_string())?;
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
                let ids: Vec<u64> = v.iter().map(|x| x.0).collect();
                let found: Vec<(String, u32)> = view
                    .chunks(&god, None, &ids)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|r| (r.path, r.page_no))
                    .collect();
                rec[w].push(recall(&found, &t[w]));
            }
        }
        let l = Latency::of(ms);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        sides.push(Side {
            backend: backend.into(),
            load_seconds: if backend == "embedded" {
                build_seconds
            } else {
                pg_load
            },
            search: Endpoint {
                requests: 0,
                errors: 0,
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                mean_ms: 0.0,
                stages_p50_ms: Default::default(),
            },
            vector_p50_ms: l.p50_ms,
            vector_p99_ms: l.p99_ms,
            recall_at_10_all: mean(&rec[0]),
            recall_at_10_one_team: mean(&rec[1]),
        });
    }

    // `/v1/search` over HTTP, the same questions against each backend.
    let cfg = config(work)?;
    let bodies = question_bodies();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    for side in sides.iter_mut() {
        let mut side_cfg = cfg.clone();
        if side.backend == "postgres" {
            side_cfg.store.backend = crate::config::Backend::Postgres;
            side_cfg.store.url = Some(db.clone());
            side_cfg.hnsw.m = 16;
            side_cfg.hnsw.ef_construction = 100;
        }
        let (addr, server) = serve_in_process(&rt, &side_cfg, &dir, embedder.clone())?;
        eprintln!(
            "bench backends: {}: {requests} requests to /v1/search",
            side.backend
        );
        side.search = measure(addr, "/v1/search", &bodies, requests)?;
        server.abort();
    }

    let report = BackendsReport {
        machine: Machine::detect(),
        chunks: n,
        model: embedder.id().to_string(),
        recall_queries: queries.len(),
        one_team_selectivity: visible as f64 / snap.live_chunks().max(1) as f64,
        sides,
    };
    let mut md = format!(
        "{} chunks (synthetic text, clustered {dim}-dimensional vectors), k = 10. \
         Recall@10 of the vector search against an exact scan over {} queries, for a principal who \
         sees everything and one who sees {:.0} % of the chunks (one team, up to internal). \
         `/v1/search`: HTTP on loopback, one connection, {requests} requests, each question embedded by {}.\n\n\
         | backend | `/v1/search` p50 / p99 | vector search p50 / p99 | recall@10 (all) | recall@10 (one team) | load |\n\
         |---|---:|---:|---:|---:|---:|\n",
        report.chunks,
        report.recall_queries,
        report.one_team_selectivity * 100.0,
        report.model
    );
    for s in &report.sides {
        md.push_str(&format!(
            "| {} | {:.1} / {:.1} ms | {:.2} / {:.2} ms | {:.3} | {:.3} | {} |\n",
            s.backend,
            s.search.p50_ms,
            s.search.p99_ms,
            s.vector_p50_ms,
            s.vector_p99_ms,
            s.recall_at_10_all,
            s.recall_at_10_one_team,
            s.load_seconds
                .map(|x| format!("{x:.0} s"))
                .unwrap_or_else(|| "(earlier run)".into())
        ));
    }
    md.push_str(&format!(
        "\nPostgreSQL 18.6 + pgvector 0.8.6 on the same machine (loopback); both graphs m = 16, \
         ef_construction = 100; search ef = {} on both, widened as the filter narrows; pgvector \
         with iterative scan (relaxed order); both backends score few visible chunks exactly \
         (embedded: up to {} chunks, PostgreSQL: up to {}). Machine: {}.\n",
        params.ef_search,
        params.exact_threshold,
        crate::store::pg::EXACT_ROWS,
        report.machine.line()
    ));
    print!("{md}");
    write_results(out, "query-backends", &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
