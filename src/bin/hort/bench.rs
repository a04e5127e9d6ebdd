//! `hort bench <suite>`: each suite of the library's `bench` module, with
//! its inputs prepared (benchmark indexes are built once and reused).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::args::BenchSuite;
use crate::commands::load_embedder;
use hort::config::Config;
use hort::embed::{self, Embedder};
use hort::ingest::loader::{PdfIsolation, PdfLoader};
use hort::ingest::{self, IngestOptions};
use hort::retrieve::SearchParams;
use hort::store::{migrate, IndexRead, IndexReader};

pub fn run(cfg: &Config, suite: BenchSuite) -> Result<ExitCode> {
    let cfg = cfg.clone();
    match suite {
        BenchSuite::Open {
            chunks,
            work,
            out,
            queries,
        } => {
            hort::bench::open::run(&work, chunks, &out, queries)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Quality {
            queries,
            corpus,
            work,
            out,
            pg_url,
            lists,
            models,
        } => {
            let judged =
                hort::bench::quality::load_queries(&queries).map_err(anyhow::Error::msg)?;
            let stem = queries
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("set")
                .to_string();
            let models = if models.is_empty() {
                vec![cfg.embed.model.clone()]
            } else {
                models
            };
            if lists.is_some() && models.len() > 1 {
                anyhow::bail!("--lists writes one model's candidate lists: name one model");
            }
            let mut reports = Vec::new();
            for model in &models {
                let mut cfg = cfg.clone();
                cfg.embed.model = model.clone();
                reports.push(quality(
                    &cfg,
                    &judged,
                    &stem,
                    &queries,
                    &corpus,
                    &work,
                    &out,
                    pg_url.as_deref(),
                    lists.as_deref(),
                )?);
            }
            if reports.len() > 1 {
                let mut name = format!("quality-{stem}-models");
                if pg_url.is_some() {
                    name.push_str("-postgres");
                }
                hort::bench::quality::models_table(
                    &queries.display().to_string(),
                    reports,
                    &name,
                    &out,
                )
                .map_err(anyhow::Error::msg)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Injection {
            datasets,
            work,
            out,
            models,
            train,
            calibration_rate,
            hidden_units,
            german_copies,
            words,
            words_l2,
            centre,
            unseen_calibration,
        } => {
            for (flag, v) in [("--words", words), ("--words-l2", words_l2)] {
                if !(v.is_finite() && v >= 0.0) {
                    anyhow::bail!("{flag} must be a number of 0 or more, not {v}");
                }
            }
            hort::bench::injection::run(&datasets, &work, &out).map_err(anyhow::Error::msg)?;
            let mut embedders = Vec::new();
            for m in models.iter().filter(|m| !m.is_empty()) {
                let mut c = cfg.clone();
                c.embed.model = m.clone();
                embedders.push(load_embedder(&c)?);
            }
            if !embedders.is_empty() {
                let refs: Vec<&dyn hort::embed::Embedder> =
                    embedders.iter().map(|e| e.as_ref()).collect();
                let chunk = hort::ingest::IngestOptions::from_config(
                    &cfg,
                    IngestOptions::subprocess_pdf(&cfg),
                )
                .chunk;
                let opts = hort::bench::detector::Options {
                    chunk,
                    train_to: train.as_deref(),
                    calibration_rate,
                    hidden_units,
                    german_copies,
                    words,
                    words_l2,
                    centre,
                    unseen_calibration,
                };
                hort::bench::detector::run(&datasets, &work, &out, &refs, opts)
                    .map_err(anyhow::Error::msg)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Pdf {
            pdfs,
            from,
            limit,
            processes,
            peer,
            out,
        } => {
            if let Some(src) = from {
                hort::bench::ingest::sample_folder(&src, &pdfs, "pdf", limit)
                    .map_err(anyhow::Error::msg)?;
            }
            let processes = processes.unwrap_or_else(hort::embed::cores);
            // The ingest's workers, with the engines of each pass.
            let worker = |engines: hort::ingest::loader::Engines| {
                let mut isolation = IngestOptions::subprocess_pdf(&cfg);
                if let PdfIsolation::Subprocess { engines: e, .. } = &mut isolation {
                    *e = engines;
                }
                PdfLoader { isolation }
            };
            let mut engines = Vec::new();
            if let Some(lib) = hort::ingest::pdfium_library(&cfg) {
                engines.push((
                    "pdfium",
                    worker(hort::ingest::loader::Engines {
                        pdfium: Some(lib),
                        pdfium_only: true,
                        ocr: None,
                    }),
                ));
            }
            engines.push(("pdf-extract", worker(Default::default())));
            hort::bench::pdf::run(&pdfs, &engines, processes, Some(&peer), &out)
                .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Pii { per_kind, out } => {
            hort::bench::pii::run(&out, per_kind).map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Keyword {
            corpus,
            queries,
            rounds,
            work,
            out,
        } => {
            let embedder = load_embedder(&cfg)?;
            let index = bench_index(&cfg, embedder.as_ref(), &corpus, &work)?;
            let snap = IndexReader::open(&index)?.snapshot();
            let qs = read_queries(&queries)?;
            hort::bench::keyword::export(&snap, &qs, &work.join("keyword-export"))
                .map_err(anyhow::Error::msg)?;
            hort::bench::keyword::run(&snap, &corpus.display().to_string(), &qs, rounds, &out)
                .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Space {
            corpus,
            tag,
            work,
            out,
        } => {
            space(&cfg, &corpus, &tag, &work, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Embed {
            corpus,
            texts,
            work,
            out,
        } => {
            let embedder = load_embedder(&cfg)?;
            let index = bench_index(&cfg, embedder.as_ref(), &corpus, &work)?;
            drop(embedder);
            let snap = IndexReader::open(&index)?.snapshot();
            let mut all = Vec::new();
            for d in snap.docs.iter() {
                if all.len() >= texts {
                    break;
                }
                let chunks = snap.doc_chunks(d)?;
                let room = texts - all.len();
                all.extend(chunks.into_iter().take(room).map(|(_, t)| t.to_string()));
            }
            hort::bench::embed::write_inputs(&all, &work.join("embed-inputs.jsonl"))
                .map_err(anyhow::Error::msg)?;
            let files = embed::model_files(&cfg.embed, |p| cfg.resolve(p))?
                .context("the hash embedder has no model to measure")?;
            // MiniLM's results are the ones compared with the peers.
            let name = match cfg.embed.model.as_str() {
                "minilm-l6" => "embed".to_string(),
                m => format!("embed-{}", model_slug(m)),
            };
            hort::bench::embed::run(&files, &all, cfg.embed.batch_size, &out, &name)
                .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Ingest {
            corpus,
            limit,
            pdfs,
            pdf_limit,
            work,
            out,
        } => {
            let mut opts = IngestOptions::from_config(&cfg, IngestOptions::subprocess_pdf(&cfg));
            opts.progress = false;
            let load = |threads: usize| {
                let mut cfg = cfg.clone();
                cfg.embed.threads = threads;
                load_embedder(&cfg).map_err(|e| format!("{e:#}"))
            };
            let args = hort::bench::ingest::IngestBenchArgs {
                corpus: &corpus,
                limit,
                pdfs: pdfs.is_dir().then_some(pdfs.as_path()),
                pdf_limit,
                work: &work,
                out: &out,
            };
            hort::bench::ingest::run(&args, &load, &opts).map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Query {
            sizes,
            requests,
            work,
            out,
            pg_url,
        } => {
            // Every question embedded: the question cache would hide the model's cost.
            let mut cold = cfg.clone();
            cold.embed.query_cache = 0;
            let embedder = load_embedder(&cold)?;
            match pg_url {
                None => {
                    hort::bench::query::run(embedder, &sizes, requests, &work, &out)
                        .map_err(anyhow::Error::msg)?;
                }
                Some(url) => {
                    for &n in &sizes {
                        hort::bench::backends::run(
                            embedder.clone(),
                            &url,
                            n,
                            requests,
                            &work,
                            &out,
                        )
                        .map_err(anyhow::Error::msg)?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Backends {
            pg_url,
            chunks,
            requests,
            work,
            out,
        } => {
            let url = pg_url
                .or_else(|| std::env::var("HORT_DATABASE_URL").ok())
                .context("give --pg-url (or HORT_DATABASE_URL); `make pg` starts a server")?;
            let embedder = load_embedder(&cfg)?;
            hort::bench::backends::run(embedder, &url, chunks, requests, &work, &out)
                .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Cache {
            corpus,
            dev,
            test,
            models,
            provider_ms,
            uncached,
            cached,
            seconds,
            work,
            out,
        } => {
            let embedder = load_embedder(&cfg)?;
            let mut for_pairs = Vec::new();
            for m in &models {
                let mut c = cfg.clone();
                c.embed.model = m.clone();
                for_pairs.push(load_embedder(&c).with_context(|| format!("model {m}"))?);
            }
            hort::bench::cache::run(
                embedder,
                for_pairs,
                &corpus,
                &dev,
                &test,
                provider_ms,
                uncached,
                cached,
                seconds,
                &work,
                &out,
            )
            .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Report {
            out,
            readme,
            no_readme,
        } => {
            let md = hort::bench::report::run(&out, (!no_readme).then_some(readme.as_path()))
                .map_err(anyhow::Error::msg)?;
            print!("{md}");
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Ann { common, set } => {
            let set = hort::bench::ann::AnnSet::named(&set).map_err(anyhow::Error::msg)?;
            hort::bench::ann::run_ann(
                &common.datasets,
                &common.work,
                &common.out,
                common.graph(),
                set,
            )
            .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::AnnData {
            wordnet,
            limit,
            out,
        } => {
            let embedder = load_embedder(&cfg)?;
            let texts =
                hort::bench::dataset::wordnet_texts(&wordnet, limit).map_err(anyhow::Error::msg)?;
            if texts.len() < 2_000 {
                anyhow::bail!(
                    "{}: only {} synsets found (is it a WordNet 3.0 dict folder?)",
                    wordnet.display(),
                    texts.len()
                );
            }
            eprintln!(
                "bench ann-data: embedding {} WordNet glosses with {} on {} session(s)",
                texts.len(),
                embedder.id(),
                embedder.parallelism()
            );
            let t = std::time::Instant::now();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let mut flat = Vec::with_capacity(refs.len() * embedder.dim());
            for (i, part) in refs.chunks(10_000).enumerate() {
                for v in ingest::embed_all(embedder.as_ref(), part, cfg.embed.batch_size)? {
                    flat.extend_from_slice(&v);
                }
                eprintln!(
                    "bench ann-data: {} of {} ({:.0} s)",
                    (i * 10_000 + part.len()),
                    refs.len(),
                    t.elapsed().as_secs_f64()
                );
            }
            if let Some(d) = out.parent() {
                std::fs::create_dir_all(d)?;
            }
            hort::bench::dataset::write_npy_f32(&out, embedder.dim(), &flat)
                .map_err(anyhow::Error::msg)?;
            eprintln!("bench ann-data: wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        BenchSuite::Filter {
            common,
            ef_search,
            exact_threshold,
        } => {
            let params = SearchParams {
                ef_search,
                exact_threshold,
                ..SearchParams::default()
            };
            hort::bench::ann::run_filter(
                &common.datasets,
                &common.work,
                &common.out,
                common.graph(),
                params,
            )
            .map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn bench_index(
    cfg: &Config,
    embedder: &dyn Embedder,
    corpus: &Path,
    work: &Path,
) -> Result<PathBuf> {
    let corpus_name = std::fs::canonicalize(corpus)
        .with_context(|| format!("{}: no such corpus folder", corpus.display()))?
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().to_string())
        .unwrap_or_else(|| "corpus".into());
    let index = work.join(format!(
        "quality-{corpus_name}-{}",
        model_slug(&cfg.embed.model)
    ));
    // An index of the model's raw vectors from before it had a space would
    // stay raw: built again, so the bench measures what ingest now writes.
    let id = || Ok(embedder.id().to_string());
    if let Some((held, _)) = crate::commands::discard_index_of_other_model(&index, id)? {
        eprintln!("bench: {} holds {held}; building it again", index.display());
    }
    let mut opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
    opts.progress = false;
    ingest::ingest(&index, &[corpus.to_path_buf()], embedder, &opts)?;
    Ok(index)
}

/// `hort bench space`: each corpus's chunks embedded as ingest embeds them
/// (raw, before any space), averaged per language as ingest tells a chunk's
/// language, the corpora's means averaged so each corpus weighs the same
/// (a large corpus of one kind would otherwise make the means its own).
fn space(cfg: &Config, corpora: &[PathBuf], tag: &str, work: &Path, out: &Path) -> Result<()> {
    let embedder = load_embedder(cfg)?;
    let mut per_corpus = Vec::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut sources = Vec::new();
    for corpus in corpora {
        let index = bench_index(cfg, embedder.as_ref(), corpus, work)?;
        let snap = IndexReader::open(&index)?.snapshot();
        let mut texts = Vec::new();
        for d in snap.docs.iter() {
            texts.extend(snap.doc_chunks(d)?.into_iter().map(|(_, t)| t.to_string()));
        }
        eprintln!(
            "bench space: embedding {} chunks of {} with {}",
            texts.len(),
            corpus.display(),
            embedder.id()
        );
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = ingest::embed_all(embedder.as_ref(), &refs, cfg.embed.batch_size)?;
        let langs: Vec<Option<&str>> = texts.iter().map(|t| ingest::chunk_language(t)).collect();
        let (c, means) = embed::space::means_of(
            langs
                .iter()
                .zip(&vectors)
                .filter_map(|(l, v)| l.map(|l| (l, v.as_slice()))),
        );
        for (l, n) in c {
            *counts.entry(l).or_default() += n;
        }
        per_corpus.push(means);
        sources.push(corpus.display().to_string());
    }
    // Each corpus's mean weighs the same.
    let (_, means) = embed::space::means_of(
        per_corpus
            .iter()
            .flatten()
            .map(|(l, m)| (l.as_str(), m.as_slice())),
    );
    let s = embed::Space {
        format: embed::space::FORMAT,
        model: embedder.id().to_string(),
        tag: tag.to_string(),
        sources,
        counts: counts.into_iter().collect(),
        means,
    };
    s.check().map_err(anyhow::Error::msg)?;
    let mut json = serde_json::to_string(&s)?;
    json.push('\n');
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("bench space: wrote {} ({:?})", out.display(), s.counts);
    Ok(())
}

/// A model's name as it may appear in a file or database name: a model
/// given as a directory (`models/my-model`, `/srv/m/`) by its last component,
/// anything outside `[A-Za-z0-9._-]` as `_`. Without this a path model
/// wrote its index and report into nested folders named after the path.
fn model_slug(model: &str) -> String {
    let last = model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("model");
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn read_queries(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let q = v
            .get("query")
            .and_then(|q| q.as_str())
            .with_context(|| format!("{}:{}: no \"query\" field", path.display(), i + 1))?;
        out.push(q.to_string());
    }
    Ok(out)
}

/// `hort bench quality` for one model: its index (built once per corpus
/// and model, then updated), the optional copy into PostgreSQL, the
/// candidate lists, and the report.
#[allow(clippy::too_many_arguments)]
fn quality(
    cfg: &Config,
    judged: &[hort::bench::quality::Judged],
    stem: &str,
    queries: &Path,
    corpus: &Path,
    work: &Path,
    out: &Path,
    pg_url: Option<&str>,
    lists: Option<&Path>,
) -> Result<hort::bench::quality::QualityReport> {
    let embedder = load_embedder(cfg)?;
    let index = bench_index(cfg, embedder.as_ref(), corpus, work)?;
    let snap = IndexReader::open(&index)?.snapshot();
    let mut name = format!("quality-{stem}-{}", model_slug(&cfg.embed.model));
    let view: Arc<dyn IndexRead> = match pg_url {
        None => snap.clone(),
        Some(url) => {
            let db_name: String =
                format!("hort_bench_quality_{stem}_{}", model_slug(&cfg.embed.model))
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
            let db = hort::bench::backends::database(url, &db_name).map_err(anyhow::Error::msg)?;
            let pg = hort::store::pg::PgStore::open(
                &db,
                None,
                2,
                hort::store::pg::Meta {
                    embedder: snap.manifest.embedder.clone(),
                    dim: snap.manifest.dim as usize,
                    chunker: snap.manifest.chunker.clone(),
                    ..Default::default()
                },
            )?;
            let pg = Arc::new(pg);
            let mut w = hort::store::pg::PgWriter::open(pg.clone(), &snap.manifest.chunker)?;
            migrate::copy(snap.as_ref(), &mut w, true)?;
            name.push_str("-postgres");
            pg
        }
    };
    if let Some(path) = lists {
        hort::bench::quality::write_lists(
            view.as_ref(),
            embedder.as_ref(),
            &hort::bench::quality::evaluator(&snap),
            judged,
            SearchParams::open(cfg)?,
            path,
        )
        .map_err(anyhow::Error::msg)?;
    }
    hort::bench::quality::report(
        &snap,
        view.as_ref(),
        pg_url.is_some(),
        embedder.as_ref(),
        judged,
        &queries.display().to_string(),
        &name,
        SearchParams::open(cfg)?,
        out,
    )
    .map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::model_slug;

    #[test]
    fn a_model_directory_names_files_by_its_last_component() {
        assert_eq!(model_slug("minilm-l6"), "minilm-l6");
        assert_eq!(model_slug("/tmp/gt/minilm-fp32"), "minilm-fp32");
        assert_eq!(model_slug("models/my model/"), "my_model");
        assert_eq!(model_slug("/"), "model");
        assert!(!model_slug("a/b:c").contains(['/', ':']));
    }
}
