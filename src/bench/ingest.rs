//! `hort bench ingest`: end-to-end ingest throughput (walk, load, chunk,
//! embed, write, commit) against embedding the same chunks alone — the
//! pipeline's overhead once parsing runs beside embedding — and PDF pages
//! per second (parse only), on PDFs that `bench/peers/pdf.sh` also gives to
//! poppler's `pdftotext`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{write_results, Machine};
use crate::embed::{Embedder, HashEmbedder};
use crate::ingest::{self, IngestOptions};
use crate::store::IndexReader;

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

/// Embedding the same chunks alone (the ceiling of ingest).
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
    /// Ingest end to end.
    pub end_to_end: EndToEnd,
    /// Embedding alone.
    pub embed_only: EmbedOnly,
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

fn all_chunk_texts(index: &Path) -> Result<Vec<String>, String> {
    let snap = IndexReader::open(index)
        .map_err(|e| e.to_string())?
        .snapshot();
    let mut out = Vec::with_capacity(snap.live_chunks());
    for d in snap.docs.iter() {
        let chunks = snap.doc_chunks(d).map_err(|e| e.to_string())?;
        out.extend(chunks.into_iter().map(|(_, t)| t.to_string()));
    }
    Ok(out)
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

/// Runs the ingest benchmark.
pub fn run(
    args: &IngestBenchArgs<'_>,
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<IngestBench, String> {
    let input = args.work.join("ingest-input");
    let files = sample_folder(args.corpus, &input, "txt", args.limit)?;
    let index = args.work.join("ingest-index");
    let _ = std::fs::remove_dir_all(&index);
    eprintln!(
        "bench ingest: {files} files end to end into {}",
        index.display()
    );
    let t = Instant::now();
    let r = ingest::ingest(&index, std::slice::from_ref(&input), embedder, opts)
        .map_err(|e| e.to_string())?;
    let seconds = t.elapsed().as_secs_f64();
    let end_to_end = EndToEnd {
        files: r.added,
        chunks: r.embedded,
        seconds,
        files_per_second: r.added as f64 / seconds,
        chunks_per_second: r.embedded as f64 / seconds,
    };
    let texts = all_chunk_texts(&index)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    eprintln!(
        "bench ingest: embedding the same {} chunks alone",
        refs.len()
    );
    let t = Instant::now();
    for b in refs.chunks(opts.batch_size.max(1)) {
        std::hint::black_box(embedder.embed_passages(b).map_err(|e| e.to_string())?);
    }
    let es = t.elapsed().as_secs_f64();
    let embed_only = EmbedOnly {
        chunks: refs.len(),
        seconds: es,
        chunks_per_second: refs.len() as f64 / es,
    };
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
        model: embedder.id().to_string(),
        corpus: args.corpus.display().to_string(),
        batch_size: opts.batch_size,
        end_to_end,
        embed_only,
        pdf,
    };
    let e = &report.end_to_end;
    let o = &report.embed_only;
    let mut md = format!(
        "| pass | files | chunks | seconds | files/s | chunks/s |\n|---|---:|---:|---:|---:|---:|\n\
         | end to end (`hort ingest`) | {} | {} | {:.1} | {:.1} | {:.1} |\n\
         | embedding the same chunks alone | – | {} | {:.1} | – | {:.1} |\n\n\
         End to end ÷ embedding alone: {:.2}× ({}, batch {}).\n",
        e.files,
        e.chunks,
        e.seconds,
        e.files_per_second,
        e.chunks_per_second,
        o.chunks,
        o.seconds,
        o.chunks_per_second,
        e.chunks_per_second / o.chunks_per_second.max(1e-9),
        report.model,
        report.batch_size,
    );
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
