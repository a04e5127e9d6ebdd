//! `hort bench keyword`: BM25 latency of hort's keyword path (analysis,
//! access-filter clauses, chunk-id lookup) against bare tantivy on the very
//! same index files — the same analyzer, the same bag-of-words disjunction of
//! term queries, `TopDocs`, the chunk-id fast field, and nothing else — so the
//! difference is the cost of hort's layer. (tantivy's `QueryParser` is not the
//! baseline: it reads `-`, `+` and quotes as syntax and turns hyphenated words
//! into phrase queries, which answers a different question.) Also exports the chunks and queries so that
//! `bench/peers/keyword.py` can run bm25s on identical input.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tantivy::collector::TopDocs;

use super::{percentile, write_results, Machine};
use crate::acl::{Classification, Principal};
use crate::store::keyword;
use crate::store::Snapshot;

const LIMIT: usize = 50;

/// Latency figures of a query set.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The figures of `ms` (milliseconds per query).
    pub fn of(mut ms: Vec<f64>) -> Latency {
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
        Latency {
            p50_ms: percentile(&ms, 50.0),
            p95_ms: percentile(&ms, 95.0),
            p99_ms: percentile(&ms, 99.0),
            mean_ms: mean,
        }
    }
}

/// The keyword benchmark: hort's BM25 against bare tantivy on the same index.
#[derive(Debug, Serialize)]
pub struct KeywordReport {
    /// Where it ran.
    pub machine: Machine,
    /// The corpus.
    pub corpus: String,
    /// Chunks indexed.
    pub chunks: usize,
    /// Queries per round.
    pub queries: usize,
    /// Rounds timed.
    pub rounds: usize,
    /// Hits per query.
    pub top_k: usize,
    /// hort's filtered keyword search.
    pub hort: Latency,
    /// tantivy alone, no filter.
    pub tantivy: Latency,
    /// Share of bare tantivy's top 10 that hort's path also returns (same
    /// analysis and scoring, so this should be 1.0: the comparison is fair).
    pub overlap_at_10: f64,
}

/// A principal who may see every chunk (the cost of the filter clauses is
/// part of what is measured, their selectivity is not).
fn see_all(snap: &Snapshot) -> Principal {
    let teams: Vec<String> = snap
        .docs
        .iter()
        .filter_map(|d| d.access.as_ref())
        .flat_map(|a| a.teams.iter().cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let refs: Vec<&str> = teams.iter().map(String::as_str).collect();
    Principal::new("bench", &refs, Classification::Restricted)
}

/// Writes every live chunk as `{"id", "text"}` lines and the queries as
/// `{"query"}` lines (the input of the bm25s peer).
pub fn export(snap: &Snapshot, queries: &[String], dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let io = |e: std::io::Error| e.to_string();
    let mut chunks =
        std::io::BufWriter::new(std::fs::File::create(dir.join("chunks.jsonl")).map_err(io)?);
    for d in snap.docs.iter() {
        for (id, text) in snap.doc_chunks(d).map_err(|e| e.to_string())? {
            let line = serde_json::json!({"id": id, "text": text});
            writeln!(chunks, "{line}").map_err(io)?;
        }
    }
    chunks.flush().map_err(io)?;
    let mut q =
        std::io::BufWriter::new(std::fs::File::create(dir.join("queries.jsonl")).map_err(io)?);
    for query in queries {
        writeln!(q, "{}", serde_json::json!({ "query": query })).map_err(io)?;
    }
    q.flush().map_err(io)
}

/// Runs the keyword benchmark (and exports the corpus for the bm25s peer).
pub fn run(
    snap: &Snapshot,
    corpus: &str,
    queries: &[String],
    rounds: usize,
    out: &Path,
) -> Result<KeywordReport, String> {
    let principal = see_all(snap);
    let filter = snap.filter_for(&principal);
    // Bare tantivy on the same files, with the same analyzer registered.
    let index = tantivy::Index::open_in_dir(snap.dir().join("keyword"))
        .map_err(|e| format!("keyword index: {e}"))?;
    keyword::register_analyzers(&index);
    let fields = keyword::fields();
    let searcher = index.reader().map_err(|e| e.to_string())?.searcher();
    let bare = |q: &str| -> Result<Vec<u64>, String> {
        // hort's query (the same terms over the same language fields), run by
        // tantivy alone: no access bitset, no snapshot, no fusion.
        let Some(query) = keyword::text_query(fields, &keyword::KeywordQuery::of(q)) else {
            return Ok(Vec::new());
        };
        let top = searcher
            .search(&query, &TopDocs::with_limit(LIMIT).order_by_score())
            .map_err(|e| e.to_string())?;
        let mut ids = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let col = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("chunk_id")
                .map_err(|e| e.to_string())?;
            if let Some(id) = col.first(addr.doc_id) {
                ids.push(id);
            }
        }
        Ok(ids)
    };
    let hort = |q: &str| -> Result<Vec<u64>, String> {
        Ok(snap
            .keyword_search_filtered(&keyword::KeywordQuery::of(q), &filter, None, LIMIT)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    };
    // Warm both (page cache, term dictionaries), and compare their answers.
    let mut overlap = 0.0;
    for q in queries {
        let a = hort(q)?;
        let b = bare(q)?;
        let top_b: HashSet<u64> = b.iter().take(10).copied().collect();
        let same = a.iter().take(10).filter(|id| top_b.contains(id)).count();
        overlap += if top_b.is_empty() {
            1.0
        } else {
            same as f64 / top_b.len() as f64
        };
    }
    let overlap_at_10 = overlap / queries.len().max(1) as f64;
    // Alternate rounds so that drift (other load, frequency scaling) hits both.
    let (mut th, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        for q in queries {
            let t = Instant::now();
            std::hint::black_box(hort(q)?);
            th.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for q in queries {
            let t = Instant::now();
            std::hint::black_box(bare(q)?);
            tb.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let report = KeywordReport {
        machine: Machine::detect(),
        corpus: corpus.to_string(),
        chunks: snap.live_chunks(),
        queries: queries.len(),
        rounds: rounds.max(1),
        top_k: LIMIT,
        hort: Latency::of(th),
        tantivy: Latency::of(tb),
        overlap_at_10,
    };
    let (h, b) = (&report.hort, &report.tantivy);
    let md = format!(
        "BM25 top {LIMIT} on {corpus} ({chunks} chunks), {n} queries × {r} rounds, 1 thread.\n\n\
         | path | p50 ms | p95 ms | p99 ms | mean ms |\n|---|---:|---:|---:|---:|\n\
         | hort (access-filter clauses, chunk ids) | {:.3} | {:.3} | {:.3} | {:.3} |\n\
         | bare tantivy (same files, analyzer and terms) | {:.3} | {:.3} | {:.3} | {:.3} |\n\n\
         hort ÷ tantivy at p50: {:.2}×; the two agree on {:.1} % of the top 10.\n\nMachine: {}.\n",
        h.p50_ms,
        h.p95_ms,
        h.p99_ms,
        h.mean_ms,
        b.p50_ms,
        b.p95_ms,
        b.p99_ms,
        b.mean_ms,
        h.p50_ms / b.p50_ms.max(1e-9),
        overlap_at_10 * 100.0,
        report.machine.line(),
        chunks = report.chunks,
        n = report.queries,
        r = report.rounds,
    );
    print!("{md}");
    write_results(out, "keyword-scifact", &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
