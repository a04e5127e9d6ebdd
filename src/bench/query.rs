//! `hort bench query`: end-to-end latency of `POST /v1/search` and
//! `POST /v1/query` (extractive answers) over HTTP on loopback, at several
//! index sizes, plus the memory the open index costs.
//!
//! Indexes are synthetic (see [`super::synth`]): Zipf-distributed text and
//! random vectors, recorded under the real model's id so that the server
//! embeds each question with the real model, as in production. One client
//! connection, requests back to back (latency, not saturation: `bench/serve-load.sh`
//! measures throughput with wrk).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::keyword::Latency;
use super::synth::{self, Rng, Vocabulary};
use super::{write_results, Machine, Rss};
use crate::config::Config;
use crate::embed::Embedder;
use crate::server::{router, AppState};
use crate::service::Service;
use crate::store::hnsw::GraphParams;
use crate::store::IndexReader;

/// `hort serve` in this process on a free loopback port, over the store
/// `cfg` names (the embedded index at `dir`, or the database).
pub fn serve_in_process(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    dir: &Path,
    embedder: Arc<dyn Embedder>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), String> {
    let svc = Service::open(cfg, embedder, dir, false).map_err(|e| e.to_string())?;
    let state = Arc::new(AppState::new(Arc::new(svc)).map_err(|e| e.to_string())?);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = rt.spawn(async move {
        let _ = axum::serve(listener, router(state)).await;
    });
    Ok((addr, server))
}

/// Latency of one endpoint under the benchmark's load.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed.
    pub errors: usize,
    /// Median latency.
    pub p50_ms: f64,
    /// 95th-percentile latency.
    pub p95_ms: f64,
    /// 99th-percentile latency.
    pub p99_ms: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median per stage, from the server's `Server-Timing` header (search
    /// only), and the rest: HTTP, authentication, JSON, audit.
    pub stages_p50_ms: BTreeMap<String, f64>,
    /// The slowest 1 % of requests (at least one), slowest first: each
    /// one's total (`total`) and stages, so that a p99 can be explained.
    pub slowest: Vec<BTreeMap<String, f64>>,
}

/// One index size of the query benchmark.
#[derive(Debug, Serialize)]
pub struct Size {
    /// Chunks in the index.
    pub chunks: usize,
    /// Seconds the build took, if it happened in this run.
    pub build_seconds: Option<f64>,
    /// Time to open the index.
    pub open_ms: f64,
    /// Resident memory the open index added (mapped files are counted once touched).
    pub rss_open_mib: f64,
    /// … and after the measured requests (the pages the queries touched).
    pub rss_after_mib: f64,
    /// `/v1/search`.
    pub search: Endpoint,
    /// `/v1/query` (extractive answers).
    pub query: Endpoint,
}

/// The query benchmark: the HTTP API at several index sizes.
#[derive(Debug, Serialize)]
pub struct QueryReport {
    /// Where it ran.
    pub machine: Machine,
    /// The embedding model.
    pub model: String,
    /// Hits per request.
    pub k: usize,
    /// One entry per size.
    pub sizes: Vec<Size>,
}

/// A minimal HTTP/1.1 keep-alive client: enough for JSON request/response
/// pairs with Content-Length, and no dependency that would add its own cost.
pub(super) struct Client {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Client {
    pub(super) fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(s),
            addr,
        })
    }

    /// Sends one request; the status and the `Server-Timing` header.
    pub(super) fn post(
        &mut self,
        path: &str,
        key: &str,
        body: &str,
    ) -> std::io::Result<(u16, Option<String>)> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.reader.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = None;
        let mut timing = None;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("server-timing") {
                    timing = Some(v.trim().to_string());
                }
            }
        }
        let len = len.ok_or_else(|| std::io::Error::other("response without Content-Length"))?;
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body)?;
        Ok((status, timing))
    }
}

pub(super) fn config(work: &Path) -> Result<Config, String> {
    let hash = |k: &str| crate::gateway::audit::sha256_hex(k.as_bytes());
    let teams = synth::TEAMS
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "[gateway]\nusage_path = \"bench-usage.jsonl\"\n\n\
         [[principals]]\nname = \"everything\"\napi_key_sha256 = \"{}\"\nteams = [{teams}]\nclearance = \"restricted\"\n\n\
         [[principals]]\nname = \"one-team\"\napi_key_sha256 = \"{}\"\nteams = [\"finance\"]\nclearance = \"internal\"\n",
        hash("bench-everything"),
        hash("bench-one-team")
    );
    Config::parse(&text, &work.join("bench-query.toml"), work.to_path_buf())
        .map_err(|e| e.to_string())
}

/// 500 questions of 3–6 words drawn like the synthetic text (fixed seed:
/// every run and every suite asks the same).
pub(super) fn question_texts() -> Vec<String> {
    let vocab = Vocabulary::new();
    let mut rng = Rng::new(99);
    (0..500)
        .map(|_| {
            let words = 3 + rng.below(4);
            vocab
                .sentence(&mut rng, words)
                .trim_end_matches('.')
                .to_string()
        })
        .collect()
}

/// [`question_texts`] as `/v1/search` request bodies.
pub(super) fn question_bodies() -> Vec<String> {
    question_texts()
        .into_iter()
        .map(|q| serde_json::json!({"query": q, "k": 10}).to_string())
        .collect()
}

/// `name;dur=ms` entries of a `Server-Timing` header.
fn parse_server_timing(v: &str) -> impl Iterator<Item = (String, f64)> + '_ {
    v.split(',').filter_map(|e| {
        let mut parts = e.trim().split(';');
        let name = parts.next()?.trim().to_string();
        let dur = parts.find_map(|p| p.trim().strip_prefix("dur="))?;
        Some((name, dur.parse().ok()?))
    })
}

pub(super) fn measure(
    addr: SocketAddr,
    path: &str,
    bodies: &[String],
    requests: usize,
) -> Result<Endpoint, String> {
    let mut c = Client::connect(addr).map_err(|e| e.to_string())?;
    let keys = ["bench-everything", "bench-one-team"];
    let warm = (requests / 10).clamp(5, 50);
    for i in 0..warm {
        c.post(path, keys[i % 2], &bodies[i % bodies.len()])
            .map_err(|e| e.to_string())?;
    }
    let mut ms = Vec::with_capacity(requests);
    let mut each: Vec<BTreeMap<String, f64>> = Vec::with_capacity(requests);
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut errors = 0;
    for i in 0..requests {
        let body = &bodies[(i + warm) % bodies.len()];
        let t = Instant::now();
        let (status, timing) = c.post(path, keys[i % 2], body).map_err(|e| e.to_string())?;
        let total = t.elapsed().as_secs_f64() * 1000.0;
        ms.push(total);
        let mut this = BTreeMap::from([("total".to_string(), total)]);
        if let Some(t) = timing {
            let parsed: Vec<(String, f64)> = parse_server_timing(&t).collect();
            this.extend(parsed.iter().cloned());
            if let Some((_, search)) = parsed.iter().find(|(n, _)| n == "search") {
                stages
                    .entry("outside the search".into())
                    .or_default()
                    .push(total - search);
            }
            for (name, dur) in parsed {
                stages.entry(name).or_default().push(dur);
            }
        }
        each.push(this);
        if status != 200 {
            errors += 1;
        }
    }
    let total = |m: &BTreeMap<String, f64>| m.get("total").copied().unwrap_or(0.0);
    each.sort_by(|a, b| total(b).total_cmp(&total(a)));
    each.truncate((requests / 100).max(1));
    let l = Latency::of(ms);
    Ok(Endpoint {
        requests,
        errors,
        p50_ms: l.p50_ms,
        p95_ms: l.p95_ms,
        p99_ms: l.p99_ms,
        mean_ms: l.mean_ms,
        stages_p50_ms: stages
            .into_iter()
            .map(|(k, v)| (k, Latency::of(v).p50_ms))
            .collect(),
        slowest: each,
    })
}

/// Runs the query benchmark.
pub fn run(
    embedder: Arc<dyn Embedder>,
    sizes: &[usize],
    requests: usize,
    work: &Path,
    out: &Path,
) -> Result<QueryReport, String> {
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
    let cfg = config(work)?;
    let bodies = question_bodies();
    // The same questions drive `bench/serve-load.sh` (wrk).
    let lines: String = bodies.iter().map(|b| format!("{b}\n")).collect();
    std::fs::write(work.join("query-bodies.jsonl"), lines).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut report = QueryReport {
        machine: Machine::detect(),
        model: embedder.id().to_string(),
        k: 10,
        sizes: Vec::new(),
    };
    for &n in sizes {
        let dir = work.join(format!("query-synthetic-{n}"));
        let mut build_seconds = None;
        if !dir.join("MANIFEST").is_file() {
            eprintln!(
                "bench query: building a synthetic index of {n} chunks in {} (one-off)",
                dir.display()
            );
            let t = Instant::now();
            synth::build_index(
                &dir,
                embedder.id(),
                n,
                embedder.dim(),
                GraphParams {
                    m: 16,
                    ef_construction: 100,
                },
                42,
                |done| eprintln!("bench query: {done}/{n} chunks written"),
            )
            .map_err(|e| e.to_string())?;
            build_seconds = Some(t.elapsed().as_secs_f64());
        }
        let before = Rss::now();
        let t = Instant::now();
        let reader = IndexReader::open(&dir).map_err(|e| e.to_string())?;
        let open_ms = t.elapsed().as_secs_f64() * 1000.0;
        let after_open = Rss::now();
        drop(reader);
        let (addr, server) = serve_in_process(&rt, &cfg, &dir, embedder.clone())?;
        eprintln!("bench query: {n} chunks, {requests} requests per endpoint");
        let search = measure(addr, "/v1/search", &bodies, requests)?;
        let query = measure(addr, "/v1/query", &bodies, requests)?;
        let after = Rss::now();
        server.abort();
        let mib = |a: Rss, b: Rss| (a.total_kib as f64 - b.total_kib as f64) / 1024.0;
        report.sizes.push(Size {
            chunks: n,
            build_seconds,
            open_ms,
            rss_open_mib: mib(after_open, before),
            rss_after_mib: mib(after, before),
            search,
            query,
        });
    }
    let mut md = format!(
        "HTTP on loopback, one connection, requests back to back, k = 10; each question embedded by {} \
         (synthetic Zipf text and random vectors; half the requests as a principal who sees everything, \
         half as one who sees one team up to internal).\n\n\
         | chunks | open | RSS after open | RSS after requests | `/v1/search` p50 / p95 / p99 | `/v1/query` p50 / p95 / p99 | errors |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        report.model
    );
    for s in &report.sizes {
        md.push_str(&format!(
            "| {} | {:.0} ms | {:+.0} MiB | {:+.0} MiB | {:.1} / {:.1} / {:.1} ms | {:.1} / {:.1} / {:.1} ms | {} |\n",
            s.chunks,
            s.open_ms,
            s.rss_open_mib,
            s.rss_after_mib,
            s.search.p50_ms,
            s.search.p95_ms,
            s.search.p99_ms,
            s.query.p50_ms,
            s.query.p95_ms,
            s.query.p99_ms,
            s.search.errors + s.query.errors
        ));
    }
    md.push_str(
        "\n`/v1/search` stages, median ms (from the server's `Server-Timing` header; \
         the keyword side runs beside embedding and the vector side):\n\n\
         | chunks | embed question | vector search | keyword search | fuse + fetch | search in all | outside the search (HTTP, auth, JSON, audit) |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in &report.sizes {
        let g = |k: &str| s.search.stages_p50_ms.get(k).copied().unwrap_or(f64::NAN);
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            s.chunks,
            g("embed"),
            g("vector"),
            g("keyword"),
            g("fetch"),
            g("search"),
            g("outside the search"),
        ));
    }
    md.push_str(&format!("\nMachine: {}.\n", report.machine.line()));
    print!("{md}");
    write_results(out, "query", &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
