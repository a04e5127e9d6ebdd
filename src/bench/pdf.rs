//! `hort bench pdf`: PDF pages per second, parsing only, through the same
//! worker processes ingest uses, for each engine (PDFium, pdf-extract), on
//! the same files and with as many processes at once as poppler's
//! `pdftotext` is given by `bench/peers/pdf.sh` (whose result is read beside
//! it). Files read and failed, by reason, per engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{write_results, Machine};
use crate::ingest::loader::{Loader, PdfLoader};

/// One engine's pass over the files.
#[derive(Debug, Serialize)]
pub struct EnginePass {
    /// The engine (`pdfium`, `pdf-extract`).
    pub engine: String,
    /// Files read.
    pub indexed: usize,
    /// Files that failed, by reason (the reason's first words).
    pub failed: BTreeMap<String, usize>,
    /// Pages read.
    pub pages: usize,
    /// Wall time.
    pub seconds: f64,
    /// Pages per second.
    pub pages_per_second: f64,
}

/// The peer's figures (`bench/peers/pdf.sh`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Peer {
    /// The tool.
    pub engine: String,
    /// Its version.
    pub version: String,
    /// Pages it saw (pdfinfo).
    pub pages: usize,
    /// Seconds.
    pub seconds: f64,
    /// Pages per second.
    pub pages_per_second: f64,
    /// Processes at once.
    pub processes: usize,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct PdfBench {
    /// Where it ran.
    pub machine: Machine,
    /// The folder of PDFs.
    pub folder: String,
    /// PDFs in it.
    pub files: usize,
    /// Worker processes at once.
    pub processes: usize,
    /// Each engine.
    pub engines: Vec<EnginePass>,
    /// `pdftotext` on the same files, if `bench/peers/pdf.sh` ran.
    pub peer: Option<Peer>,
}

fn pdfs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e} (give --pdfs a folder of PDFs)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Parses every file with `loader` on `processes` threads (each runs its
/// own worker process per file, as ingest does).
fn pass(engine: &str, files: &[PathBuf], loader: &PdfLoader, processes: usize) -> EnginePass {
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    let results: Vec<(usize, Option<String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..processes.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let r = std::fs::read(f)
                            .map_err(|e| e.to_string())
                            .and_then(|b| loader.load(&b).map_err(|e| e.to_string()));
                        out.push(match r {
                            Ok(d) => (d.pages.len(), None),
                            Err(e) => (0, Some(e)),
                        });
                    }
                    out
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let seconds = t.elapsed().as_secs_f64();
    let mut failed = BTreeMap::new();
    let mut pages = 0;
    let mut indexed = 0;
    for (p, e) in results {
        match e {
            None => {
                indexed += 1;
                pages += p;
            }
            Some(e) => {
                let reason: String = e.split([':', '(']).next().unwrap_or("").trim().to_string();
                *failed.entry(reason).or_insert(0) += 1;
            }
        }
    }
    EnginePass {
        engine: engine.into(),
        indexed,
        failed,
        pages,
        seconds,
        pages_per_second: pages as f64 / seconds.max(1e-9),
    }
}

/// Runs every engine in `engines` (name, loader) over the PDFs in `dir`.
pub fn run(
    dir: &Path,
    engines: &[(&str, PdfLoader)],
    processes: usize,
    peer: Option<&Path>,
    out: &Path,
) -> Result<PdfBench, String> {
    let files = pdfs(dir)?;
    if files.is_empty() {
        return Err(format!("no PDFs in {}", dir.display()));
    }
    let mut passes = Vec::new();
    for (name, loader) in engines {
        eprintln!(
            "bench pdf: {name} on {} PDFs, {processes} processes",
            files.len()
        );
        passes.push(pass(name, &files, loader, processes));
    }
    let peer: Option<Peer> = peer
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    let report = PdfBench {
        machine: Machine::detect(),
        folder: dir.display().to_string(),
        files: files.len(),
        processes,
        engines: passes,
        peer,
    };
    let mut md = format!(
        "PDF parsing only, {} PDFs in `{}`, {} processes at once (one worker process per \
         file, as ingest runs them).\n\n\
         | engine | read | failed | pages | seconds | pages/s | ÷ pdftotext |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        report.files, report.folder, report.processes
    );
    let base = report.peer.as_ref().map(|p| p.pages_per_second);
    for e in &report.engines {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.0} | {} |\n",
            e.engine,
            e.indexed,
            e.failed.values().sum::<usize>(),
            e.pages,
            e.seconds,
            e.pages_per_second,
            base.map_or("–".into(), |b| format!("{:.2}×", e.pages_per_second / b)),
        ));
    }
    if let Some(p) = &report.peer {
        md.push_str(&format!(
            "| {} ({}, `bench/peers/pdf.sh`) | – | – | {} | {:.1} | {:.0} | 1.00× |\n",
            p.engine, p.version, p.pages, p.seconds, p.pages_per_second
        ));
    }
    for e in &report.engines {
        if !e.failed.is_empty() {
            md.push_str(&format!("\n{} failures:", e.engine));
            for (r, n) in &e.failed {
                md.push_str(&format!(" {n} × {r};"));
            }
            md.push('\n');
        }
    }
    md.push_str(&format!("\nMachine: {}.\n", report.machine.line()));
    print!("{md}");
    write_results(out, "pdf", &report, &md).map_err(|e| e.to_string())?;
    Ok(report)
}
