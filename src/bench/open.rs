//! `hort bench open`: resident memory of a reader after opening an index of
//! N chunks, and after serving queries. Shows that vectors and graph are
//! mapped, not loaded: resident memory grows with what queries touch, not
//! with the index size.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::synth::{self, Rng};
use super::{percentile, write_results, Machine, Rss};
use crate::acl::{Classification, Principal};
use crate::retrieve::SearchParams;
use crate::store::hnsw::GraphParams;
use crate::store::plan::vector_search;
use crate::store::{IndexReader, StoreError};

/// The open benchmark: how fast an index opens and how much memory it takes.
#[derive(Debug, Serialize)]
pub struct OpenReport {
    /// Where it ran.
    pub machine: Machine,
    /// Chunks in the index.
    pub chunks: usize,
    /// Vector dimensions.
    pub dim: usize,
    /// Seconds the build took, if it happened in this run.
    pub build_seconds: Option<f64>,
    /// Bytes on disk.
    pub index_bytes: u64,
    /// Bytes of vectors on disk.
    pub vector_bytes: u64,
    /// Time to open the index.
    pub open_ms: f64,
    /// Memory before opening.
    pub rss_before_open: Rss,
    /// Memory after opening.
    pub rss_after_open: Rss,
    /// Memory after the queries.
    pub rss_after_queries: Rss,
    /// Queries run.
    pub queries: usize,
    /// Median vector search latency.
    pub vector_p50_ms: f64,
    /// 95th-percentile vector search latency.
    pub vector_p95_ms: f64,
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Builds (if needed) a synthetic index of `chunks` in `work`, then measures.
pub fn run(
    work: &Path,
    chunks: usize,
    out: &Path,
    queries: usize,
) -> Result<OpenReport, StoreError> {
    let dim = 384;
    let index = work.join(format!("synthetic-v2-{chunks}"));
    let mut build_seconds = None;
    if !index.join("MANIFEST").is_file() {
        let t = Instant::now();
        eprintln!(
            "bench open: building a synthetic index of {chunks} chunks in {}",
            index.display()
        );
        synth::build_index(
            &index,
            synth::EMBEDDER_ID,
            chunks,
            dim,
            GraphParams {
                m: 16,
                ef_construction: 100,
            },
            42,
            |done| eprintln!("bench open: {done}/{chunks} chunks written"),
        )?;
        build_seconds = Some(t.elapsed().as_secs_f64());
    }
    let before = Rss::now();
    let t = Instant::now();
    let reader = IndexReader::open(&index)?;
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let after_open = Rss::now();
    let snap = reader.snapshot();
    let params = SearchParams {
        k: 10,
        candidates: 50,
        ..SearchParams::default()
    };
    let mut rng = Rng::new(7);
    let mut lat = Vec::with_capacity(queries);
    for i in 0..queries {
        // Alternate a broad principal (graph) and a narrow one (exact scan).
        let p = if i % 2 == 0 {
            Principal::new("all", &synth::TEAMS, Classification::Restricted)
        } else {
            Principal::new("one", &[synth::TEAMS[i % 10]], Classification::Internal)
        };
        let f = snap.filter_for(&p);
        let q = synth::random_unit_vector(&mut rng, dim);
        let t = Instant::now();
        let (hits, _) = vector_search(&snap, &f, None, &q, 50, params.vector());
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(hits);
    }
    let after_queries = Rss::now();
    lat.sort_by(f64::total_cmp);
    let vector_bytes = (snap.live_chunks() * dim * 4) as u64;
    let report = OpenReport {
        machine: Machine::detect(),
        chunks: snap.live_chunks(),
        dim,
        build_seconds,
        index_bytes: dir_size(&index),
        vector_bytes,
        open_ms,
        rss_before_open: before,
        rss_after_open: after_open,
        rss_after_queries: after_queries,
        queries,
        vector_p50_ms: percentile(&lat, 50.0),
        vector_p95_ms: percentile(&lat, 95.0),
    };
    let md = format!(
        "| chunks | index on disk | vectors | open | RSS after open (anon / file) | RSS after {q} queries (anon / file) | vector search p50 / p95 |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {c} | {disk:.0} MB | {vec:.0} MB | {open:.0} ms | +{ro:.1} MiB ({ra:.1} / {rf:.1}) | +{qo:.1} MiB ({qa:.1} / {qf:.1}) | {p50:.2} / {p95:.2} ms |\n\n\
         Machine: {m}. RSS growth is relative to the process before opening the index.\n",
        q = queries,
        c = report.chunks,
        disk = report.index_bytes as f64 / 1e6,
        vec = vector_bytes as f64 / 1e6,
        open = open_ms,
        ro = Rss::mib(after_open.total_kib.saturating_sub(before.total_kib)),
        ra = Rss::mib(after_open.anon_kib.saturating_sub(before.anon_kib)),
        rf = Rss::mib(after_open.file_kib.saturating_sub(before.file_kib)),
        qo = Rss::mib(after_queries.total_kib.saturating_sub(before.total_kib)),
        qa = Rss::mib(after_queries.anon_kib.saturating_sub(before.anon_kib)),
        qf = Rss::mib(after_queries.file_kib.saturating_sub(before.file_kib)),
        p50 = report.vector_p50_ms,
        p95 = report.vector_p95_ms,
        m = report.machine.line(),
    );
    write_results(out, "open", &report, &md).map_err(|e| StoreError::io(out, e))?;
    print!("{md}");
    Ok(report)
}
