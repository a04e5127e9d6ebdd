//! `hort bench backends`: the embedded index and PostgreSQL + pgvector side
//! by side on the same 100k-chunk corpus: `/v1/search` latency over HTTP,
//! vector search latency in process, and recall@10 of the vector search
//! against an exact scan, for a principal who sees everything and one who
//! sees one team (a filtered search).
//!
//! The corpus is synthetic text with clustered vectors ([`synth::Clusters`]);
//! the recall queries come from the same distribution, the HTTP questions
//! are embedded by the real model.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::keyword::Latency;
use super::query::{config, measure, question_bodies, question_texts, serve_in_process, Endpoint};
use super::synth::{self, Clusters, Rng};
use super::{write_results, Machine};
use crate::acl::{Classification, Principal};
use crate::embed::Embedder;
use crate::retrieve::SearchParams;
use crate::store::hnsw::{self, GraphParams};
use crate::store::migrate;
use crate::store::pg::{Ctx, Meta, PgStore, PgWriter};
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
    /// Hits' texts served from what the node keeps, and read from the
    /// database, during the `/v1/search` requests (PostgreSQL; 0 and 0
    /// embedded).
    pub texts_kept_read: (u64, u64),
    /// Vector search alone, in process, over every audience: p50.
    pub vector_p50_ms: f64,
    /// 99th-percentile vector search latency.
    pub vector_p99_ms: f64,
    /// Vector search p50 per audience (the order of
    /// [`BackendsReport::audiences`]): the plan differs by how much a
    /// principal sees, and so does its cost.
    pub vector_p50_ms_by_audience: Vec<f64>,
    /// Keyword search alone, in process, over every audience: p50.
    pub keyword_p50_ms: f64,
    /// 99th-percentile keyword search latency.
    pub keyword_p99_ms: f64,
    /// Keyword search p50 and p99 per audience (the order of
    /// [`BackendsReport::audiences`]): what is visible decides how many
    /// postings are looked at.
    pub keyword_p50_ms_by_audience: Vec<f64>,
    /// Keyword search p99 per audience.
    pub keyword_p99_ms_by_audience: Vec<f64>,
    /// Recall@10 of the vector search against an exact scan, per audience
    /// (the order of [`BackendsReport::audiences`]).
    pub recall_at_10: Vec<f64>,
    /// Share of the embedded backend's keyword top 10 this backend returns
    /// (a hit tying the tenth score counts), per audience (1 for the
    /// embedded backend itself).
    pub keyword_overlap_at_10: Vec<f64>,
}

/// Who searches: a principal and the share of chunks it may see.
#[derive(Debug, Serialize)]
pub struct Audience {
    /// A name for the table.
    pub name: String,
    /// Share of all chunks this principal may see.
    pub selectivity: f64,
    #[serde(skip)]
    principal: Principal,
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
    /// Questions the keyword overlap is measured on.
    pub keyword_queries: usize,
    /// The principals searches run as, widest first.
    pub audiences: Vec<Audience>,
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

/// A keyword hit keyed by document page (ids differ between backends),
/// with its score.
type ScoredKey = ((String, u32), f32);

/// The share of `truth`'s top `k` (the embedded backend's keyword hits)
/// that `found` returns, where a hit missing from `found` counts as found
/// if it only ties `found`'s last score: with equal scores either is a
/// correct top k, and the backends break ties differently (tantivy by
/// segment and document, PostgreSQL by chunk id).
fn keyword_overlap(found: &[ScoredKey], truth: &[ScoredKey], k: usize) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let got: HashSet<&(String, u32)> = found.iter().map(|x| &x.0).collect();
    let last = found.last().map(|x| x.1).filter(|_| found.len() >= k);
    let tie = |s: f32| last.is_some_and(|l| (s - l).abs() <= 1e-3 * l.abs().max(1.0));
    truth
        .iter()
        .filter(|(key, s)| got.contains(key) || tie(*s))
        .count() as f64
        / truth.len() as f64
}

/// Creates database `name` on the server of `url` if it does not exist,
/// and returns its URL.
pub fn database(url: &str, name: &str) -> Result<String, String> {
    use futures_util::FutureExt;
    let pool = crate::store::pg::Pool::new(url, 1).map_err(|e| e.to_string())?;
    let name_ = name.to_string();
    pool.run(move |c| {
        async move {
            let exists = c
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name_])
                .await
                .ctx("find the database")?
                .is_some();
            if !exists {
                c.batch_execute(&format!("CREATE DATABASE {name_}"))
                    .await
                    .ctx("create the database")?;
            }
            Ok(())
        }
        .boxed()
    })
    .map_err(|e| e.to_string())?;
    let (head, _) = url
        .rsplit_once('/')
        .ok_or_else(|| format!("{url}: no database name in the URL"))?;
    Ok(format!("{head}/{name}"))
}

/// Runs `pass` (searches) until one starts no warming job (kept graph,
/// keyword blocks read ahead), waiting for each job to end (at most 30
/// passes).
fn settle(mut pass: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    use crate::store::pg::warming_jobs;
    for _ in 0..30 {
        let (before, _) = warming_jobs();
        pass()?;
        let t = Instant::now();
        while warming_jobs().1 > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let (after, _) = warming_jobs();
        if after == before {
            return Ok(());
        }
        eprintln!(
            "bench backends: postgres: node warmed (kept graph, keyword blocks) in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
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

    // From everyone down to one chunk in a thousand.
    let four: Vec<&str> = synth::TEAMS[..4].to_vec();
    let audiences: Vec<Audience> = [
        (
            "every team",
            Principal::new("all", &synth::TEAMS, Classification::Restricted),
        ),
        (
            "four teams",
            Principal::new("four", &four, Classification::Restricted),
        ),
        (
            "one team",
            Principal::new("one", &["finance"], Classification::Restricted),
        ),
        (
            "1 % team",
            Principal::new("x", &[synth::RARE_TEAMS[0]], Classification::Restricted),
        ),
        (
            "0.1 % team",
            Principal::new("y", &[synth::RARE_TEAMS[1]], Classification::Restricted),
        ),
    ]
    .into_iter()
    .map(|(name, principal)| {
        let visible = snap
            .docs
            .iter()
            .filter(|d| principal.can_see(d.access.as_ref()))
            .map(|d| d.n_chunks as usize)
            .sum::<usize>();
        Audience {
            name: name.to_string(),
            selectivity: visible as f64 / snap.live_chunks().max(1) as f64,
            principal,
        }
    })
    .collect();
    let params = SearchParams::default();
    let mut rng = Rng::new(77);
    let queries: Vec<Vec<f32>> = (0..200).map(|_| clusters.sample(&mut rng)).collect();
    let truth: Vec<Vec<HashSet<(String, u32)>>> = queries
        .iter()
        .map(|q| {
            audiences
                .iter()
                .map(|a| exact_top(&snap, &a.principal, q, 10))
                .collect()
        })
        .collect();
    let mut every_team: Vec<&str> = synth::TEAMS.to_vec();
    every_team.extend(synth::RARE_TEAMS);
    let god = Principal::new("god", &every_team, Classification::Restricted);
    let questions: Vec<String> = question_texts().into_iter().take(100).collect();
    let key_of =
        |view: &dyn IndexRead, hits: &[(u64, f32)]| -> Result<Vec<(String, u32)>, String> {
            let ids: Vec<u64> = hits.iter().map(|x| x.0).collect();
            Ok(view
                .chunks(&god, None, &ids)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|r| (r.path, r.page_no))
                .collect())
        };

    // Both searches in process, every audience, both backends.
    let mut sides = Vec::new();
    let mut embedded_keyword: Vec<Vec<Vec<ScoredKey>>> = Vec::new();
    // Keyword hits keyed by document page, with their scores.
    let scored = |view: &dyn IndexRead, hits: &[(u64, f32)]| -> Result<Vec<ScoredKey>, String> {
        let ids: Vec<u64> = hits.iter().map(|x| x.0).collect();
        let rows: HashMap<u64, (String, u32)> = view
            .chunks(&god, None, &ids)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| (r.id, (r.path, r.page_no)))
            .collect();
        Ok(hits
            .iter()
            .filter_map(|(id, s)| Some((rows.get(id)?.clone(), *s)))
            .collect())
    };
    for backend in ["embedded", "postgres"] {
        let view: &dyn IndexRead = if backend == "embedded" {
            snap.as_ref()
        } else {
            pg.as_ref()
        };
        if backend == "postgres" {
            // A node keeps a graph of every chunk, built in the background
            // after the first search that could use it, and reads the
            // largest keyword blocks ahead after its first keyword search:
            // measured once both are done, as a node that has been serving.
            settle(|| {
                for a in &audiences {
                    view.vector_search(&a.principal, None, &queries[0], 10, params.vector())
                        .map_err(|e| e.to_string())?;
                    let q = crate::store::keyword::KeywordQuery::of(&questions[0]);
                    view.keyword_search(&a.principal, None, &q, 10)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })?;
        }
        eprintln!("bench backends: {backend}: searches in process");
        let mut by_audience = vec![Vec::new(); audiences.len()];
        let mut rec = vec![Vec::new(); audiences.len()];
        for (q, t) in queries.iter().zip(&truth) {
            for (w, a) in audiences.iter().enumerate() {
                let start = Instant::now();
                let (v, _) = view
                    .vector_search(&a.principal, None, q, 10, params.vector())
                    .map_err(|e| e.to_string())?;
                by_audience[w].push(start.elapsed().as_secs_f64() * 1000.0);
                rec[w].push(recall(&key_of(view, &v)?, &t[w]));
            }
        }
        let mut kms = vec![Vec::new(); audiences.len()];
        let mut overlap = vec![Vec::new(); audiences.len()];
        for (qi, q) in questions.iter().enumerate() {
            let q = crate::store::keyword::KeywordQuery::of(q);
            for (w, a) in audiences.iter().enumerate() {
                let start = Instant::now();
                let hits = view
                    .keyword_search(&a.principal, None, &q, 10)
                    .map_err(|e| e.to_string())?;
                kms[w].push(start.elapsed().as_secs_f64() * 1000.0);
                let found = scored(view, &hits)?;
                if backend == "embedded" {
                    if w == 0 {
                        embedded_keyword.push(Vec::new());
                    }
                    embedded_keyword[qi].push(found);
                    overlap[w].push(1.0);
                } else {
                    overlap[w].push(keyword_overlap(&found, &embedded_keyword[qi][w], 10));
                }
            }
        }
        let l = Latency::of(by_audience.concat());
        let k_by: Vec<Latency> = kms.iter().map(|v| Latency::of(v.clone())).collect();
        let k = Latency::of(kms.concat());
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
                slowest: Vec::new(),
            },
            texts_kept_read: (0, 0),
            vector_p50_ms: l.p50_ms,
            vector_p99_ms: l.p99_ms,
            vector_p50_ms_by_audience: by_audience
                .into_iter()
                .map(|v| Latency::of(v).p50_ms)
                .collect(),
            keyword_p50_ms: k.p50_ms,
            keyword_p99_ms: k.p99_ms,
            keyword_p50_ms_by_audience: k_by.iter().map(|l| l.p50_ms).collect(),
            keyword_p99_ms_by_audience: k_by.iter().map(|l| l.p99_ms).collect(),
            recall_at_10: rec.iter().map(|r| mean(r)).collect(),
            keyword_overlap_at_10: overlap.iter().map(|r| mean(r)).collect(),
        });
    }

    // `/v1/search` over HTTP, the same questions against each backend. The
    // embedder remembers questions (`[embed] query_cache`): each is embedded
    // once beforehand, so that neither side pays for the model and the
    // second does not ride on the first's cache.
    let cfg = config(work)?;
    let bodies = question_bodies();
    for q in super::query::question_texts() {
        embedder.embed_query(&q).map_err(|e| e.to_string())?;
    }
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
        if side.backend == "postgres" {
            settle(|| measure(addr, "/v1/search", &bodies, 10).map(|_| ()))?;
        }
        eprintln!(
            "bench backends: {}: {requests} requests to /v1/search",
            side.backend
        );
        let before = crate::store::pg::kept_text_reads();
        side.search = measure(addr, "/v1/search", &bodies, requests)?;
        let after = crate::store::pg::kept_text_reads();
        side.texts_kept_read = (after.0 - before.0, after.1 - before.1);
        server.abort();
    }

    let report = BackendsReport {
        machine: Machine::detect(),
        chunks: n,
        model: embedder.id().to_string(),
        recall_queries: queries.len(),
        keyword_queries: questions.len(),
        audiences,
        sides,
    };
    let mut md = format!(
        "{} chunks (synthetic text, clustered {dim}-dimensional vectors), k = 10. \
         `/v1/search`: HTTP on loopback, one connection, {requests} requests alternating between a principal \
         who sees every team and one of one team at `internal` (6 % of the chunks), each question embedded by {} \
         beforehand (both sides read it from the query cache: the figures compare the backends, not the model). Vector and keyword search in process, over every audience below \
         ({} vector queries, {} keyword questions each).\n\n\
         | backend | `/v1/search` p50 / p99 | vector p50 / p99 | keyword p50 / p99 | load |\n\
         |---|---:|---:|---:|---:|\n",
        report.chunks,
        report.model,
        report.recall_queries,
        report.keyword_queries,
    );
    for s in &report.sides {
        md.push_str(&format!(
            "| {} | {:.1} / {:.1} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {} |\n",
            s.backend,
            s.search.p50_ms,
            s.search.p99_ms,
            s.vector_p50_ms,
            s.vector_p99_ms,
            s.keyword_p50_ms,
            s.keyword_p99_ms,
            s.load_seconds
                .map(|x| format!("{x:.0} s"))
                .unwrap_or_else(|| "(earlier run)".into())
        ));
    }
    md.push_str(
        "\nRecall@10 of the vector search against an exact scan, and (PostgreSQL) the share of the \
         embedded backend's keyword top 10 it returns (a hit that only ties its tenth score counts: \
         the backends break ties differently), by who searches:\n\n\
         | who searches | sees | recall@10 embedded | recall@10 PostgreSQL | vector p50 embedded / PostgreSQL | keyword top-10 overlap | keyword p50 / p99 embedded | keyword p50 / p99 PostgreSQL |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, a) in report.audiences.iter().enumerate() {
        let at = |b: usize, v: &dyn Fn(&Side) -> &Vec<f64>| {
            report.sides.get(b).and_then(|s| v(s).get(i).copied())
        };
        let cell = |b: usize, v: &dyn Fn(&Side) -> &Vec<f64>| {
            at(b, v).map(|x| format!("{x:.3}")).unwrap_or_default()
        };
        let ms = |b: usize| {
            at(b, &|s| &s.vector_p50_ms_by_audience)
                .map(|x| format!("{x:.2} ms"))
                .unwrap_or_else(|| "–".into())
        };
        let kw = |b: usize| match (
            at(b, &|s| &s.keyword_p50_ms_by_audience),
            at(b, &|s| &s.keyword_p99_ms_by_audience),
        ) {
            (Some(p50), Some(p99)) => format!("{p50:.2} / {p99:.2} ms"),
            _ => "–".into(),
        };
        md.push_str(&format!(
            "| {} | {:.1} % | {} | {} | {} / {} | {} | {} | {} |\n",
            a.name,
            a.selectivity * 100.0,
            cell(0, &|s| &s.recall_at_10),
            cell(1, &|s| &s.recall_at_10),
            ms(0),
            ms(1),
            cell(1, &|s| &s.keyword_overlap_at_10),
            kw(0),
            kw(1),
        ));
    }
    let texts = report
        .sides
        .iter()
        .find(|s| s.backend == "postgres")
        .map_or((0, 0), |s| s.texts_kept_read);
    md.push_str(&format!(
        "\nPostgreSQL 18.6 + pgvector 0.8.6 on the same machine (loopback); both graphs m = 16, \
         ef_construction = 100; search ef = {} on both (pgvector walks one graph of every chunk \
         and starts from {} at this size), widened as the filter narrows; pgvector with iterative \
         scan (relaxed order); both backends score visible chunks exactly where few are visible \
         (embedded: up to {} chunks; PostgreSQL: up to {}, wherever its measured cost model puts \
         the exact scan below the filtered walk, and wherever a principal sees under {:.0} % of \
         the chunks; a node scores these from the vectors it keeps of the principal's access \
         sets when they fit `[store] vector_cache_mb` = {} MB). Keyword side: tantivy BM25 \
         embedded, BM25 over the visible postings in PostgreSQL (compacted blocks plus the rows \
         changed since), its exact top k found with MaxScore pruning. Hits' texts in `/v1/search` \
         on PostgreSQL: {} served from what the node keeps (`[store] text_cache_mb` = {} MB, read \
         ahead when every chunk fits), {} read from the database. Machine: {}.\n",
        params.ef_search,
        crate::store::pg::beam_for(params.ef_search, n as i64),
        params.exact_threshold,
        crate::store::pg::EXACT_ROWS,
        crate::store::pg::WALK_MIN_SHARE * 100.0,
        crate::config::DEFAULT_VECTOR_CACHE_MB,
        texts.0,
        crate::config::DEFAULT_TEXT_CACHE_MB,
        texts.1,
        report.machine.line()
    ));
    print!("{md}");
    // The default size under its usual name; others beside it.
    let name = if n == 100_000 {
        "query-backends".to_string()
    } else {
        format!("query-backends-{n}")
    };
    write_results(out, &name, &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
