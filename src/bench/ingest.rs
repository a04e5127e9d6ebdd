//! `hort bench ingest`: end-to-end ingest throughput (walk, load, chunk,
//! embed, write, commit) against embedding the same model inputs alone
//! (each chunk under its headings, as ingest gave them to the model) — the
//! pipeline's overhead once parsing runs beside embedding — and PDF pages
//! per second (parse only), on PDFs that `bench/peers/pdf.sh` also gives to
//! poppler's `pdftotext`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

use super::{write_results, Machine};
use crate::embed::{EmbedError, Embedder, HashEmbedder, Pooled};
use crate::ingest::{self, IngestOptions};

/// The whole ingest of a folder: parse, chunk, embed, index.
#[derive(Debug, Serialize)]
pub struct EndToEnd {
    /// Files ingested.
    pub files: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Wall time.
    pub seconds: f64,
    /// Files per second.
    pub files_per_second: f64,
    /// Chunks per second.
    pub chunks_per_second: f64,
}

/// Embedding the same model inputs alone (the ceiling of ingest).
#[derive(Debug, Serialize)]
pub struct EmbedOnly {
    /// Chunks embedded.
    pub chunks: usize,
    /// Wall time.
    pub seconds: f64,
    /// Chunks per second.
    pub chunks_per_second: f64,
}

/// Parsing PDFs alone.
#[derive(Debug, Serialize)]
pub struct PdfPass {
    /// PDFs tried.
    pub files: usize,
    /// PDFs that gave text.
    pub indexed: usize,
    /// PDFs that failed (each with a reason in the ingest report).
    pub failed: usize,
    /// Pages parsed.
    pub pages: usize,
    /// Wall time.
    pub seconds: f64,
    /// Pages per second.
    pub pages_per_second: f64,
    /// Parser processes at once.
    pub parse_threads: usize,
}

/// Ingest and embedding alone at one thread count.
#[derive(Debug, Serialize)]
pub struct AtThreads {
    /// Model sessions (one thread each) and parser threads.
    pub threads: usize,
    /// Ingest end to end.
    pub end_to_end: EndToEnd,
    /// Embedding the same model inputs alone, on as many sessions.
    pub embed_only: EmbedOnly,
}

/// The ingest benchmark.
#[derive(Debug, Serialize)]
pub struct IngestBench {
    /// Where it ran.
    pub machine: Machine,
    /// The embedding model.
    pub model: String,
    /// The corpus ingested.
    pub corpus: String,
    /// Chunks per embedding batch.
    pub batch_size: usize,
    /// Cores of the machine (the default run uses all of them).
    pub cores: usize,
    /// Ingest end to end on every core (the default).
    pub end_to_end: EndToEnd,
    /// Embedding alone on every core.
    pub embed_only: EmbedOnly,
    /// The same on one core (one model session, one parser thread).
    pub one_core: AtThreads,
    /// End-to-end chunks/s on every core ÷ on one core.
    pub scaling: f64,
    /// PDF parsing, if a PDF folder was given.
    pub pdf: Option<PdfPass>,
}

/// Copies the first `limit` files of `src` (sorted by name; all if 0) and its
/// `_access.toml` into a fresh `dst`. Copies, not links: the walker does not
/// follow symbolic links.
pub fn sample_folder(src: &Path, dst: &Path, ext: &str, limit: usize) -> Result<usize, String> {
    let io = |e: std::io::Error| format!("{}: {e}", src.display());
    let _ = std::fs::remove_dir_all(dst);
    std::fs::create_dir_all(dst).map_err(io)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(src)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    files.sort();
    if limit > 0 {
        files.truncate(limit);
    }
    for f in &files {
        if let Some(name) = f.file_name() {
            std::fs::copy(f, dst.join(name)).map_err(io)?;
        }
    }
    let rule = src.join("_access.toml");
    if rule.is_file() {
        std::fs::copy(&rule, dst.join("_access.toml")).map_err(io)?;
    } else {
        std::fs::write(
            dst.join("_access.toml"),
            "teams = [\"all\"]\nclassification = \"public\"\n",
        )
        .map_err(io)?;
    }
    Ok(files.len())
}

/// The embedder as ingest calls it, keeping every passage the model is
/// given: the ceiling embeds exactly those inputs again. A chunk is read
/// under its headings ("Policy > Hotels", an abstract's title), so the
/// model reads more than the chunk's stored text; a ceiling of the stored
/// texts alone would count the headings' tokens as pipeline overhead.
struct Recording<'a> {
    inner: &'a dyn Embedder,
    inputs: Mutex<Vec<String>>,
}

impl Recording<'_> {
    fn keep(&self, texts: &[&str]) {
        let mut inputs = crate::sync::lock(&self.inputs);
        inputs.extend(texts.iter().map(|t| t.to_string()));
    }
}

impl Embedder for Recording<'_> {
    crate::embed::delegate_model_facts!(inner);
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.keep(texts);
        self.inner.embed_passages(texts)
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.inner.embed_query(text)
    }
    fn embed_passages_spans(
        &self,
        texts: &[&str],
        spans: &[Vec<(usize, usize)>],
    ) -> Result<Option<Vec<Pooled>>, EmbedError> {
        self.keep(texts);
        self.inner.embed_passages_spans(texts, spans)
    }
    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }
}

/// What `hort bench ingest` runs on.
pub struct IngestBenchArgs<'a> {
    /// The text corpus.
    pub corpus: &'a Path,
    /// Files taken from it (0: all).
    pub limit: usize,
    /// A folder of PDFs, if any.
    pub pdfs: Option<&'a Path>,
    /// PDFs taken from it (0: all).
    pub pdf_limit: usize,
    /// Scratch directory.
    pub work: &'a Path,
    /// Where the report goes.
    pub out: &'a Path,
}

/// Lets every thread of this process run on the first `n` CPUs it may use
/// (`None`: on all of them again). Best effort: where the kernel refuses,
/// the pass runs unpinned and says so.
fn pin_to_cpus(n: Option<usize>) {
    #[cfg(target_os = "linux")]
    {
        static ALLOWED: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
        let allowed = ALLOWED.get_or_init(|| {
            // SAFETY: a zeroed cpu_set_t is a valid empty set; the call
            // fills it for this thread.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            let ok = unsafe {
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
            } == 0;
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| ok && unsafe { libc::CPU_ISSET(c, &set) })
                .collect()
        });
        let cpus: Vec<usize> = match n {
            Some(n) => allowed.iter().copied().take(n).collect(),
            None => allowed.clone(),
        };
        if cpus.is_empty() {
            return;
        }
        // SAFETY: as above; CPU_SET only writes inside the set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for c in &cpus {
            unsafe { libc::CPU_SET(*c, &mut set) };
        }
        let tasks = std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten();
        for t in tasks {
            if let Some(tid) = t
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<libc::pid_t>().ok())
            {
                // SAFETY: the set is initialised and its size is passed.
                let r = unsafe {
                    libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
                };
                if r != 0 {
                    eprintln!("bench ingest: cannot pin thread {tid} (running it unpinned)");
                }
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = n;
}

/// Ingests the sample end to end into a fresh index, then embeds its
/// chunks alone, on `threads` sessions.
fn at_threads(
    args: &IngestBenchArgs<'_>,
    input: &Path,
    files: usize,
    embedder: &dyn Embedder,
    opts: &IngestOptions,
    threads: usize,
) -> Result<AtThreads, String> {
    // Both passes on warm sessions, their buffers grown to the largest
    // batch the model can get (otherwise the first pass pays for growing
    // them and the second does not).
    let long = "word ".repeat(embedder.max_tokens());
    let warm = vec![long.as_str(); opts.batch_size.max(1) * embedder.parallelism()];
    ingest::embed_all(embedder, &warm, opts.batch_size).map_err(|e| e.to_string())?;
    let index = args.work.join("ingest-index");
    let _ = std::fs::remove_dir_all(&index);
    eprintln!(
        "bench ingest: {files} files end to end into {} on {threads} core(s)",
        index.display()
    );
    let recording = Recording {
        inner: embedder,
        inputs: Mutex::new(Vec::new()),
    };
    let t = Instant::now();
    let r = ingest::ingest(&index, &[input.to_path_buf()], &recording, opts)
        .map_err(|e| e.to_string())?;
    let seconds = t.elapsed().as_secs_f64();
    let end_to_end = EndToEnd {
        files: r.added,
        chunks: r.embedded,
        seconds,
        files_per_second: r.added as f64 / seconds,
        chunks_per_second: r.embedded as f64 / seconds,
    };
    let texts = recording
        .inputs
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    eprintln!(
        "bench ingest: embedding the same {} chunks alone on {threads} core(s)",
        refs.len()
    );
    let t = Instant::now();
    std::hint::black_box(
        ingest::embed_all(embedder, &refs, opts.batch_size).map_err(|e| e.to_string())?,
    );
    let es = t.elapsed().as_secs_f64();
    Ok(AtThreads {
        threads,
        end_to_end,
        embed_only: EmbedOnly {
            chunks: refs.len(),
            seconds: es,
            chunks_per_second: refs.len() as f64 / es,
        },
    })
}

/// Runs the ingest benchmark; `load(threads)` gives the model on that many
/// sessions.
pub fn run(
    args: &IngestBenchArgs<'_>,
    load: &dyn Fn(usize) -> Result<Arc<dyn Embedder>, String>,
    opts: &IngestOptions,
) -> Result<IngestBench, String> {
    let model_id = load(1)?.id().to_string();
    let input = args.work.join("ingest-input");
    let files = sample_folder(args.corpus, &input, "txt", args.limit)?;
    let cores = crate::embed::cores();
    let mut passes = Vec::new();
    for threads in [1, cores] {
        // One core means one core: every thread of the process (the
        // tokenizer's pool included) is pinned to the first CPU.
        pin_to_cpus((threads == 1).then_some(1));
        let embedder = load(threads)?;
        let opts = IngestOptions {
            parse_threads: threads,
            ..opts.clone()
        };
        passes.push(at_threads(
            args,
            &input,
            files,
            embedder.as_ref(),
            &opts,
            threads,
        )?);
    }
    pin_to_cpus(None);
    let all = passes.pop().ok_or("no passes")?;
    let one_core = passes.pop().ok_or("no passes")?;
    let scaling =
        all.end_to_end.chunks_per_second / one_core.end_to_end.chunks_per_second.max(1e-9);
    let pdf = match args.pdfs {
        Some(dir) => {
            let input = args.work.join("ingest-pdf-input");
            let n = sample_folder(dir, &input, "pdf", args.pdf_limit)?;
            let index = args.work.join("ingest-pdf-index");
            let _ = std::fs::remove_dir_all(&index);
            eprintln!("bench ingest: parsing {n} PDFs (hash embedder: parsing only)");
            let hash = HashEmbedder::new(64);
            let t = Instant::now();
            let r = ingest::ingest(&index, std::slice::from_ref(&input), &hash, opts)
                .map_err(|e| e.to_string())?;
            let s = t.elapsed().as_secs_f64();
            Some(PdfPass {
                files: n,
                indexed: r.added,
                failed: r.failed.len(),
                pages: r.pages,
                seconds: s,
                pages_per_second: r.pages as f64 / s,
                parse_threads: if opts.parse_threads == 0 {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                } else {
                    opts.parse_threads
                },
            })
        }
        None => None,
    };
    let report = IngestBench {
        machine: Machine::detect(),
        model: model_id,
        corpus: args.corpus.display().to_string(),
        batch_size: opts.batch_size,
        cores,
        end_to_end: all.end_to_end,
        embed_only: all.embed_only,
        one_core,
        scaling,
        pdf,
    };
    let mut md = String::from(
        "| cores | pass | files | chunks | seconds | files/s | chunks/s | end to end ÷ embedding alone |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (threads, e, o) in [
        (1, &report.one_core.end_to_end, &report.one_core.embed_only),
        (cores, &report.end_to_end, &report.embed_only),
    ] {
        md.push_str(&format!(
            "| {threads} | end to end (`hort ingest`) | {} | {} | {:.1} | {:.1} | {:.1} | {:.2}× |\n\
             | {threads} | embedding the same inputs alone (chunks under their headings) | – | {} | {:.1} | – | {:.1} | |\n",
            e.files,
            e.chunks,
            e.seconds,
            e.files_per_second,
            e.chunks_per_second,
            e.chunks_per_second / o.chunks_per_second.max(1e-9),
            o.chunks,
            o.seconds,
            o.chunks_per_second,
        ));
    }
    md.push_str(&format!(
        "\nEnd to end on {cores} cores ÷ on 1 core: {:.2}× ({}, batch {}; one model session \
         and one parser thread per core).\n",
        report.scaling, report.model, report.batch_size,
    ));
    if let Some(p) = &report.pdf {
        md.push_str(&format!(
            "\nPDF parsing: {} PDFs ({} indexed, {} failed), {} pages in {:.1} s = {:.1} pages/s \
             ({} parse threads, each PDF in a worker process).\n",
            p.files, p.indexed, p.failed, p.pages, p.seconds, p.pages_per_second, p.parse_threads
        ));
    }
    md.push_str(&format!("\nMachine: {}.\n", report.machine.line()));
    print!("{md}");
    write_results(args.out, "ingest", &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
