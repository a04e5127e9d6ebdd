//! `hort bench cache`: what the answer cache buys and what it risks.
//!
//! 1. Latency: `/v1/query` over HTTP on loopback through a fake
//!    OpenAI-compatible provider that takes `--provider-ms` (800) per
//!    answer, uncached (each question new) and cached (the same questions
//!    again); then the sustained throughput of cached answers at several
//!    client connections, with the audit log on, and what that makes per day.
//! 2. The semantic cache's decision on question pairs in English and German
//!    (`bench/cache/pairs-*.tsv`): "same" pairs that may share an answer and
//!    "near" pairs that must not ("over 500 EUR" / "over 5,000 EUR"). The
//!    similarity threshold is chosen on the dev split (the lowest with no
//!    wrong hit) and reported on the test split, with and without the facet
//!    check, per embedding model.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::keyword::Latency;
use super::query::{serve_in_process, Client};
use super::{write_results, Machine};
use crate::config::Config;
use crate::embed::Embedder;
use crate::gateway::cache::{cosine, facets::facets, same_meaning};
use crate::ingest::{ingest, IngestOptions};

/// One question pair.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Whether the two may share an answer.
    pub same: bool,
    /// `en` or `de`.
    pub lang: String,
    /// The questions.
    pub a: String,
    /// …
    pub b: String,
}

/// Reads a pairs file (`kind<TAB>lang<TAB>question<TAB>question`, `#` comments).
pub fn load_pairs(path: &Path) -> Result<Vec<Pair>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [kind, lang, a, b] = f[..] else {
            return Err(format!(
                "{}:{}: expected 4 tab-separated fields",
                path.display(),
                i + 1
            ));
        };
        let same = match kind {
            "same" => true,
            "near" => false,
            k => {
                return Err(format!(
                    "{}:{}: kind {k:?} is not same or near",
                    path.display(),
                    i + 1
                ))
            }
        };
        out.push(Pair {
            same,
            lang: lang.to_string(),
            a: a.to_string(),
            b: b.to_string(),
        });
    }
    Ok(out)
}

struct Scored {
    same: bool,
    lang: String,
    sim: f32,
    facets_agree: bool,
}

fn score(e: &dyn Embedder, pairs: &[Pair]) -> Result<Vec<Scored>, String> {
    pairs
        .iter()
        .map(|p| {
            let a = e.embed_query(&p.a).map_err(|x| x.to_string())?;
            let b = e.embed_query(&p.b).map_err(|x| x.to_string())?;
            Ok(Scored {
                same: p.same,
                lang: p.lang.clone(),
                sim: cosine(&a, &b),
                facets_agree: facets(&p.a) == facets(&p.b),
            })
        })
        .collect()
}

/// Hit rate on "same" pairs and wrong-hit rate on "near" pairs.
#[derive(Debug, Serialize, Clone)]
pub struct Rates {
    /// Language (`all`, `en`, `de`).
    pub lang: String,
    /// "same" pairs.
    pub same_pairs: usize,
    /// "near" pairs.
    pub near_pairs: usize,
    /// Share of "same" pairs that would share an answer.
    pub hit_rate: f64,
    /// Share of "near" pairs that would wrongly share one.
    pub wrong_hit_rate: f64,
    /// The same without the facet check (embedding similarity alone).
    pub hit_rate_similarity_only: f64,
    /// …
    pub wrong_hit_rate_similarity_only: f64,
}

fn rates(s: &[Scored], threshold: f32, lang: &str) -> Rates {
    let pick: Vec<&Scored> = s
        .iter()
        .filter(|x| lang == "all" || x.lang == lang)
        .collect();
    let share = |same: bool, facets: bool| {
        let set: Vec<&&Scored> = pick.iter().filter(|x| x.same == same).collect();
        let hits = set
            .iter()
            .filter(|x| {
                let f = if facets { x.facets_agree } else { true };
                same_meaning(x.sim, threshold, &[], &[]) && f
            })
            .count();
        hits as f64 / set.len().max(1) as f64
    };
    Rates {
        lang: lang.to_string(),
        same_pairs: pick.iter().filter(|x| x.same).count(),
        near_pairs: pick.iter().filter(|x| !x.same).count(),
        hit_rate: share(true, true),
        wrong_hit_rate: share(false, true),
        hit_rate_similarity_only: share(true, false),
        wrong_hit_rate_similarity_only: share(false, false),
    }
}

/// The semantic cache's decision for one embedding model.
#[derive(Debug, Serialize)]
pub struct SemanticReport {
    /// The embedding model.
    pub model: String,
    /// The threshold chosen on dev: the lowest with no wrong hit there.
    pub threshold: f32,
    /// Dev at that threshold (a training figure).
    pub dev: Vec<Rates>,
    /// Test at that threshold (held out).
    pub test: Vec<Rates>,
    /// Test, all languages, at other thresholds (the trade-off an operator
    /// who sets `[cache] semantic_similarity` makes).
    pub test_sweep: Vec<(f32, Rates)>,
}

/// The semantic pairs part for one model.
pub fn semantic(e: &dyn Embedder, dev: &[Pair], test: &[Pair]) -> Result<SemanticReport, String> {
    let d = score(e, dev)?;
    let t = score(e, test)?;
    let mut threshold = 0.99;
    let mut x = 0.70f32;
    while x <= 0.99 {
        let r = rates(&d, x, "all");
        if r.wrong_hit_rate == 0.0 {
            threshold = x;
            break;
        }
        x = ((x + 0.01) * 100.0).round() / 100.0;
    }
    let all = |s: &[Scored]| {
        ["all", "en", "de"]
            .iter()
            .map(|l| rates(s, threshold, l))
            .collect()
    };
    Ok(SemanticReport {
        model: e.id().to_string(),
        threshold,
        dev: all(&d),
        test: all(&t),
        test_sweep: [0.85f32, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98]
            .iter()
            .map(|&x| (x, rates(&t, x, "all")))
            .collect(),
    })
}

/// Sustained throughput at one number of connections.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Client connections, each sending requests back to back.
    pub connections: usize,
    /// Seconds measured.
    pub seconds: f64,
    /// Answers received (all cache hits).
    pub requests: usize,
    /// Failed requests.
    pub errors: usize,
    /// Requests per second.
    pub per_second: f64,
    /// … and what that makes in a day.
    pub per_day: f64,
}

/// The cache benchmark.
#[derive(Debug, Serialize)]
pub struct CacheReport {
    /// Where it ran.
    pub machine: Machine,
    /// The embedding model of the server.
    pub model: String,
    /// The fake provider's time per answer.
    pub provider_ms: u64,
    /// `/v1/query` with every question new (the provider called).
    pub uncached: Latency,
    /// Requests behind `uncached`.
    pub uncached_requests: usize,
    /// `/v1/query` for questions answered before (served from the cache).
    pub cached: Latency,
    /// Requests behind `cached`.
    pub cached_requests: usize,
    /// Whether the audit log was written (it was: fsync once a second).
    pub audit_log: bool,
    /// Cached answers under load.
    pub throughput: Vec<Throughput>,
    /// The semantic cache's decisions.
    pub semantic: Vec<SemanticReport>,
}

/// A fake OpenAI-compatible provider on loopback that answers after `ms`.
fn fake_provider(rt: &tokio::runtime::Runtime, ms: u64) -> Result<SocketAddr, String> {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |_body: String| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            axum::Json(serde_json::json!({
                "choices": [{"message": {"role": "assistant",
                    "content": "The sources answer this question [1]."}}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 40}
            }))
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn config(work: &Path, provider: SocketAddr) -> Result<Config, String> {
    let hash = crate::gateway::audit::sha256_hex(b"bench-cache");
    let text = format!(
        "[index]\npath = \"cache-index\"\n\n[gateway]\nusage_path = \"cache-usage.jsonl\"\n\n\
         [audit]\npath = \"cache-audit.jsonl\"\n\n\
         [[providers]]\nname = \"slow\"\nkind = \"openai\"\nbase_url = \"http://{provider}/v1\"\n\
         model = \"m\"\nlocality = \"local\"\nmax_retries = 0\nusd_per_1k_input = 0.0025\nusd_per_1k_output = 0.01\n\n\
         [routing]\nchain = [\"slow\"]\nextractive_fallback = false\n\n\
         [[principals]]\nname = \"bench\"\napi_key_sha256 = \"{hash}\"\nteams = [\"staff\", \"finance\", \"legal\", \"board\"]\nclearance = \"restricted\"\n"
    );
    Config::parse(&text, &work.join("bench-cache.toml"), work.to_path_buf())
        .map_err(|e| e.to_string())
}

/// Questions about the sample corpus, each different.
fn questions(n: usize) -> Vec<String> {
    const TOPICS: &[&str] = &[
        "travel",
        "hotels",
        "per diems",
        "approvals",
        "vendors",
        "invoices",
        "the fleet",
        "fuel cards",
        "overtime",
        "bank accounts",
        "the board",
        "warehouse safety",
        "leave",
        "contracts",
        "budgets",
    ];
    const FORMS: &[&str] = &[
        "What does the policy say about {}?",
        "Who is responsible for {}?",
        "Which rules apply to {}?",
        "Summarise what we know about {}.",
    ];
    (0..n)
        .map(|i| {
            let t = TOPICS[i % TOPICS.len()];
            let f = FORMS[(i / TOPICS.len()) % FORMS.len()];
            let q = f.replace("{}", t);
            if i >= TOPICS.len() * FORMS.len() {
                format!("{q} ({})", i)
            } else {
                q
            }
        })
        .collect()
}

fn ask(c: &mut Client, q: &str) -> Result<f64, String> {
    let body = serde_json::json!({"query": q, "k": 4}).to_string();
    let t = Instant::now();
    let (status, _) = c
        .post("/v1/query", "bench-cache", &body)
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// Runs the suite: latency and throughput through a server over `corpus`,
/// and the semantic pairs for each of `models`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    embedder: Arc<dyn Embedder>,
    models: Vec<Arc<dyn Embedder>>,
    corpus: &Path,
    dev: &Path,
    test: &Path,
    provider_ms: u64,
    uncached: usize,
    cached: usize,
    seconds: u64,
    work: &Path,
    out: &Path,
) -> Result<CacheReport, String> {
    let dev = load_pairs(dev)?;
    let test = load_pairs(test)?;
    let mut semantic_reports = Vec::new();
    for m in &models {
        eprintln!("semantic pairs with {} …", m.id());
        semantic_reports.push(semantic(m.as_ref(), &dev, &test)?);
    }
    let work = work.join("cache");
    // A fresh run: no answer cached from before.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let provider = fake_provider(&rt, provider_ms)?;
    let cfg = config(&work, provider)?;
    let index = cfg.index_path();
    eprintln!("ingesting {} …", corpus.display());
    let mut opts = IngestOptions::from_config(&cfg, IngestOptions::subprocess_pdf(&cfg));
    opts.progress = false;
    ingest(&index, &[PathBuf::from(corpus)], embedder.as_ref(), &opts)
        .map_err(|e| e.to_string())?;
    let (addr, server) = serve_in_process(&rt, &cfg, &index, embedder.clone())?;

    let qs = questions(uncached);
    let mut c = Client::connect(addr).map_err(|e| e.to_string())?;
    eprintln!("{uncached} new questions through a {provider_ms} ms provider …");
    let mut cold = Vec::with_capacity(qs.len());
    for q in &qs {
        cold.push(ask(&mut c, q)?);
    }
    eprintln!("{cached} repeated questions …");
    let mut warm = Vec::with_capacity(cached);
    for i in 0..cached {
        warm.push(ask(&mut c, &qs[i % qs.len()])?);
    }
    let mut throughput = Vec::new();
    let cores = crate::embed::cores();
    let mut conns = vec![1, cores, 2 * cores, 4 * cores];
    conns.dedup();
    for n in conns {
        eprintln!("{n} connections for {seconds} s …");
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let t = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|j| {
                let (stop, ok, bad, qs) = (stop.clone(), ok.clone(), bad.clone(), qs.clone());
                std::thread::spawn(move || {
                    let Ok(mut c) = Client::connect(addr) else {
                        bad.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let mut i = j;
                    while !stop.load(Ordering::Relaxed) {
                        match ask(&mut c, &qs[i % qs.len()]) {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => bad.fetch_add(1, Ordering::Relaxed),
                        };
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        let secs = t.elapsed().as_secs_f64();
        let requests = ok.load(Ordering::Relaxed);
        throughput.push(Throughput {
            connections: n,
            seconds: secs,
            requests,
            errors: bad.load(Ordering::Relaxed),
            per_second: requests as f64 / secs,
            per_day: requests as f64 / secs * 86_400.0,
        });
    }
    server.abort();
    let report = CacheReport {
        machine: Machine::detect(),
        model: embedder.id().to_string(),
        provider_ms,
        uncached_requests: cold.len(),
        uncached: Latency::of(cold),
        cached_requests: warm.len(),
        cached: Latency::of(warm),
        audit_log: true,
        throughput,
        semantic: semantic_reports,
    };
    let md = markdown(&report);
    print!("{md}");
    write_results(out, "cache", &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}

fn markdown(r: &CacheReport) -> String {
    let mut s = format!(
        "## Answer cache ({})\n\n{}\n\n`/v1/query` through a provider that takes {} ms, {} model:\n\n\
         | | requests | p50 ms | p99 ms |\n|---|---:|---:|---:|\n\
         | uncached (each question new) | {} | {:.1} | {:.1} |\n| cached (asked before) | {} | {:.1} | {:.1} |\n\n\
         Cached answers under load (audit log on):\n\n| connections | requests/s | per day | errors |\n|---:|---:|---:|---:|\n",
        r.machine.date,
        r.machine.line(),
        r.provider_ms,
        r.model,
        r.uncached_requests,
        r.uncached.p50_ms,
        r.uncached.p99_ms,
        r.cached_requests,
        r.cached.p50_ms,
        r.cached.p99_ms,
    );
    for t in &r.throughput {
        s.push_str(&format!(
            "| {} | {:.0} | {:.1} M | {} |\n",
            t.connections,
            t.per_second,
            t.per_day / 1e6,
            t.errors
        ));
    }
    for m in &r.semantic {
        s.push_str(&format!(
            "\nSemantic cache, {} (threshold {:.2}, chosen on dev as the lowest without a wrong hit):\n\n\
             | split | lang | same pairs | hit rate | near pairs | wrong hits | similarity only: hit / wrong |\n\
             |---|---|---:|---:|---:|---:|---:|\n",
            m.model, m.threshold
        ));
        for (split, rows) in [("test (held out)", &m.test), ("dev (tuning)", &m.dev)] {
            for x in rows {
                s.push_str(&format!(
                    "| {split} | {} | {} | {:.2} | {} | {:.2} | {:.2} / {:.2} |\n",
                    x.lang,
                    x.same_pairs,
                    x.hit_rate,
                    x.near_pairs,
                    x.wrong_hit_rate,
                    x.hit_rate_similarity_only,
                    x.wrong_hit_rate_similarity_only
                ));
            }
        }
        s.push_str("\nTest pairs at other thresholds (all languages): ");
        let row: Vec<String> = m
            .test_sweep
            .iter()
            .map(|(t, r)| {
                format!(
                    "{t:.2}: hits {:.2}, wrong {:.2}",
                    r.hit_rate, r.wrong_hit_rate
                )
            })
            .collect();
        s.push_str(&row.join("; "));
        s.push('\n');
    }
    s
}
