//! Ingest: make the index match a set of folders.
//!
//! Parsing runs on a rayon pool (each PDF in its own worker process); parsed
//! documents flow through a bounded channel to this thread, which embeds them
//! in length-sorted batches and is the only writer of the index (milli's
//! "extractors → one writer"). Segments are committed as they fill, so an
//! interrupted ingest keeps what it finished, and a re-run redoes only the
//! rest: unchanged files are recognised by size and mtime (and content hash
//! when in doubt), changed access rules are applied without re-embedding.

pub mod chunk;
mod embedding;
pub mod loader;
pub mod outline;
mod progress;
pub mod rules;
pub mod screen;
mod upload;
pub mod walk;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, Receiver};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::embed::{EmbedError, Embedder, Space};
use crate::sanitize::hygiene::{self, HygieneReport};
use crate::sanitize::injection::{self, Detection};
use crate::store::embedded::{content_hash, EmbeddedSpec, EmbeddedStore};
use crate::store::hnsw::GraphParams;
use crate::store::keyword::TextLanguage;
use crate::store::{
    chunk_id_string, ChunkVerdict, FailedFile, IndexWrite, NewChunk, NewDocument, Store,
    StoreError, StoredDoc, Verdict,
};
use crate::text::sha256_hex;
use chunk::{chunk_page, ChunkParams, ChunkSpan};
use embedding::{Embedded, Item, Stage};
use loader::{LoadError, Loaders, PdfIsolation};
use progress::Progress;
use screen::Screen;
use walk::SourceFile;

pub use embedding::{embed_all, screen_all};
pub use walk::{Skipped, WalkError};

/// Why an ingest stopped (a single file's failure never stops it: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The embedding model failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A folder to ingest cannot be used.
    #[error("{path}: {message}")]
    Root {
        /// The folder.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The parser threads could not be started.
    #[error("cannot start the parser pool: {0}")]
    Pool(String),
}

/// How an ingest runs.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// How pages are cut into chunks.
    pub chunk: ChunkParams,
    /// Larger files are skipped and reported.
    pub max_file_bytes: u64,
    /// How PDF parsing is isolated.
    pub pdf: PdfIsolation,
    /// Files parsed at once (0: one per core).
    pub parse_threads: usize,
    /// Chunks per call of the model.
    pub batch_size: usize,
    /// Chunks per segment of the embedded index.
    pub segment_chunks: usize,
    /// How the embedded index's graphs are built.
    pub graph: GraphParams,
    /// Show progress on stderr.
    pub progress: bool,
}

impl IngestOptions {
    /// The options of `[ingest]`, `[embed]` and `[hnsw]`, with PDFs parsed as `pdf` says.
    pub fn from_config(cfg: &Config, pdf: PdfIsolation) -> IngestOptions {
        IngestOptions {
            chunk: ChunkParams {
                max_tokens: cfg.ingest.chunk_tokens,
                overlap_tokens: cfg.ingest.overlap_tokens,
                headings: cfg.ingest.heading_context,
            },
            max_file_bytes: cfg.ingest.max_file_mb.saturating_mul(1024 * 1024),
            pdf,
            parse_threads: cfg.ingest.parse_threads,
            batch_size: cfg.embed.batch_size,
            segment_chunks: cfg.ingest.segment_chunks,
            graph: GraphParams {
                m: cfg.hnsw.m,
                ef_construction: cfg.hnsw.ef_construction,
            },
            progress: true,
        }
    }

    /// The PDF worker is this very binary, re-run as `hort __pdf-worker`.
    pub fn subprocess_pdf(cfg: &Config) -> PdfIsolation {
        match std::env::current_exe() {
            Ok(exe) => PdfIsolation::Subprocess {
                exe,
                timeout: Duration::from_secs(cfg.ingest.pdf_timeout_s),
                memory_mb: cfg.ingest.pdf_memory_mb,
                engines: loader::Engines {
                    pdfium: pdfium_library(cfg),
                    pdfium_only: cfg.ingest.pdf_engine == crate::config::PdfEngine::Pdfium,
                    ocr: cfg.ingest.ocr.then(|| loader::OcrSetup {
                        dir: match &cfg.ingest.tesseract {
                            Some(p) => cfg.resolve(p),
                            None => crate::embed::models_dir(&cfg.embed, |p| cfg.resolve(p))
                                .join("tesseract"),
                        },
                        languages: cfg.ingest.ocr_languages.clone(),
                        dpi: cfg.ingest.ocr_dpi,
                        budget: Duration::from_secs(cfg.ingest.pdf_timeout_s) / 2,
                    }),
                },
            },
            Err(_) => PdfIsolation::InProcess {
                timeout: Duration::from_secs(cfg.ingest.pdf_timeout_s),
            },
        }
    }
}

/// The PDFium library PDFs are read with (`None`: pdf-extract alone): the
/// configured path, else `<models_dir>/pdfium/libpdfium.so`. With
/// `pdf_engine = "auto"` a missing library means pdf-extract (said once in
/// the log); with `"pdfium"` the path is kept, so every PDF fails with the
/// reason rather than being read by an engine the operator ruled out.
pub fn pdfium_library(cfg: &Config) -> Option<PathBuf> {
    use crate::config::PdfEngine;
    if cfg.ingest.pdf_engine == PdfEngine::PdfExtract {
        return None;
    }
    let path = match &cfg.ingest.pdfium {
        Some(p) => cfg.resolve(p),
        None => {
            crate::embed::models_dir(&cfg.embed, |p| cfg.resolve(p)).join("pdfium/libpdfium.so")
        }
    };
    if path.is_file() || cfg.ingest.pdf_engine == PdfEngine::Pdfium {
        return Some(path);
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(
            "no PDFium library at {} (run `make models`); PDFs are read with pdf-extract",
            path.display()
        )
    });
    None
}

/// A file that could not be ingested.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// The folder (canonical), kept with the store's record of failures.
    #[serde(skip)]
    pub root: String,
    /// The file, relative to its folder.
    pub path: String,
    /// Why.
    pub error: String,
}

/// A file ingested with a remark (some pages without text, say).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Warning {
    /// The file, relative to its folder.
    pub path: String,
    /// The remark.
    pub warning: String,
}

/// The summary `hort ingest --json` prints.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    /// New documents.
    pub added: usize,
    /// Changed documents, chunked and embedded again.
    pub updated: usize,
    /// Documents already up to date.
    pub unchanged: usize,
    /// Documents whose files are gone.
    pub removed: usize,
    /// Chunks in the index after this ingest.
    pub chunks: usize,
    /// Documents stored without an access rule (visible to nobody).
    pub no_access_rule: Vec<String>,
    /// Files that could not be ingested, with reasons.
    pub failed: Vec<Failure>,
    /// Wall time.
    pub seconds: f64,
    /// Documents whose access rule changed (applied without re-embedding).
    pub access_updated: usize,
    /// Chunks embedded by this run.
    pub embedded: usize,
    /// Pages parsed.
    pub pages: usize,
    /// Files left out (unsupported type, hidden, a rule file).
    pub skipped: Vec<Skipped>,
    /// Files ingested with remarks.
    pub warnings: Vec<Warning>,
    /// Invisible characters removed by text hygiene.
    pub hygiene: HygieneReport,
    /// Chunks of the ingested folders that look like prompt injection
    /// (detector score at or above 0.5).
    pub injection_suspected: Vec<SuspectedChunk>,
    /// The store's commit generation after the ingest (0 on PostgreSQL).
    pub generation: u64,
}

/// A stored chunk that looks like prompt injection.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SuspectedChunk {
    /// Its document.
    pub path: String,
    /// The chunk.
    pub chunk_id: String,
    /// The detector's score.
    pub score: f32,
    /// The rule families that matched.
    pub reasons: Vec<String>,
}

struct Job {
    root: String,
    file: SourceFile,
    existing: Option<StoredDoc>,
}

struct ParsedDoc {
    job: Job,
    sha256: String,
    pages: Vec<(u32, String)>,
    /// OCR's confidence per page OCR read (empty: none was).
    page_ocr: Vec<Option<f32>>,
    /// (page index, span)
    spans: Vec<(usize, ChunkSpan)>,
    /// The heading path each span is embedded under (empty: none).
    contexts: Vec<String>,
    warnings: Vec<String>,
    hygiene: HygieneReport,
}

impl ParsedDoc {
    /// The document to store, with the vectors of its chunks and the
    /// injection verdicts on them.
    ///
    /// Each vector is placed in the index's `space` (none: stored as the
    /// model made it), by the chunk's language as the keyword side tells it.
    fn into_document(
        self,
        vectors: Vec<Vec<f32>>,
        verdicts: &[Detection],
        space: Option<&Space>,
        now: i64,
    ) -> NewDocument {
        let chunks = self
            .spans
            .iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, ((page, span), mut v))| {
                let text = &self.pages[*page].1[span.byte_start..span.byte_end];
                if let Some(s) = space {
                    s.place(&mut v, chunk_language(text));
                }
                NewChunk {
                    page_ord: *page as u32,
                    byte_start: span.byte_start as u32,
                    byte_end: span.byte_end as u32,
                    char_start: span.char_start as u32,
                    char_end: span.char_end as u32,
                    content_hash: content_hash(text),
                    injection: verdicts
                        .get(i)
                        .and_then(screen::stored_verdict)
                        .map(|(score, reasons)| Verdict { score, reasons }),
                    embedding: v,
                }
            })
            .collect();
        let f = self.job.file;
        NewDocument {
            root: self.job.root,
            path: f.rel,
            kind: f.kind.as_str().to_string(),
            size: f.size,
            mtime_ns: f.mtime_ns,
            sha256: self.sha256,
            access: f.rule.access().cloned(),
            rule_source: f.rule.source().map(str::to_string),
            paged: f.kind.paged(),
            ingested_at: now / 1_000_000_000,
            checked_at_ns: now,
            hygiene_removed: self.hygiene.removed(),
            pages: self.pages,
            page_ocr: self.page_ocr,
            chunks,
        }
    }
}

enum Parsed {
    Doc(Box<ParsedDoc>),
    Unchanged(Job),
    Failed(Job, String),
    /// Read, but nothing to index: a picture without text.
    Skipped(Job, String),
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A file modified within this long before its content was last checked
/// could have changed again without its mtime moving (coarse timestamps).
const RACY_NS: i64 = 2_000_000_000;

fn parse_job(
    job: Job,
    opts: &IngestOptions,
    embedder: &dyn Embedder,
    loaders: &Loaders,
    rechunk: bool,
) -> Parsed {
    let f = &job.file;
    if f.size > opts.max_file_bytes {
        let e = LoadError::TooLarge {
            size: f.size,
            limit: opts.max_file_bytes,
        };
        return Parsed::Failed(job, e.to_string());
    }
    let bytes = match std::fs::read(&f.abs) {
        Ok(b) => b,
        Err(e) => return Parsed::Failed(job, LoadError::Io(e).to_string()),
    };
    if bytes.len() as u64 > opts.max_file_bytes {
        let e = LoadError::TooLarge {
            size: bytes.len() as u64,
            limit: opts.max_file_bytes,
        };
        return Parsed::Failed(job, e.to_string());
    }
    let sha = sha256_hex(&bytes);
    if !rechunk && job.existing.as_ref().is_some_and(|d| d.sha256 == sha) {
        return Parsed::Unchanged(job);
    }
    parse_bytes(job, &bytes, sha, opts, embedder, loaders)
}

/// Loads, cleans, chunks and scores one document's bytes.
fn parse_bytes(
    job: Job,
    bytes: &[u8],
    sha: String,
    opts: &IngestOptions,
    embedder: &dyn Embedder,
    loaders: &Loaders,
) -> Parsed {
    let f = &job.file;
    let loaded = match loaders.load(f.kind, bytes) {
        Ok(l) => l,
        // Photos and logos are pictures without text, not broken files.
        Err(e @ LoadError::NoText(_)) if f.kind == loader::FileKind::Image => {
            return Parsed::Skipped(job, format!("picture: {e}"))
        }
        Err(e) => return Parsed::Failed(job, e.to_string()),
    };
    let params = opts.chunk.within(embedder.max_tokens());
    let count = |s: &str| embedder.count_tokens(s);
    let mut pages = Vec::with_capacity(loaded.pages.len());
    let mut page_ocr = Vec::with_capacity(loaded.pages.len());
    let mut spans = Vec::new();
    let mut report = HygieneReport::default();
    let mut placed = Vec::new();
    for (i, page) in loaded.pages.into_iter().enumerate() {
        let (text, r) = hygiene::clean(&page.text);
        report.add(&r);
        for s in chunk_page(&text, params, &count) {
            spans.push((i, s));
        }
        if params.headings {
            let mut headings = page.headings;
            headings.extend(outline::from_text(f.kind, &text));
            outline::locate(i, &text, &headings, &mut placed);
        }
        pages.push((page.number.unwrap_or(0), text));
        page_ocr.push(page.ocr);
    }
    // Headings in reading order (a format's and the text's own may interleave).
    placed.sort_by_key(|p| (p.page, p.offset));
    let window = embedder.max_tokens();
    let contexts = outline::contexts(&placed, &spans)
        .iter()
        .zip(&spans)
        .map(|(path, (_, s))| outline::fit(path, window.saturating_sub(s.tokens), &count))
        .collect();
    if page_ocr.iter().all(Option::is_none) {
        page_ocr.clear();
    }
    if spans.is_empty() {
        return Parsed::Failed(job, LoadError::NoText(String::new()).to_string());
    }
    Parsed::Doc(Box::new(ParsedDoc {
        sha256: sha,
        pages,
        page_ocr,
        spans,
        contexts,
        warnings: loaded.warnings,
        hygiene: report,
        job,
    }))
}

/// A parsed document waiting for the vectors of its chunks.
struct Pending {
    doc: ParsedDoc,
    vectors: Vec<Vec<f32>>,
    verdicts: Vec<Detection>,
    missing: usize,
}

/// The writer's side of the pipeline: takes parsed documents, queues their
/// chunks for the embedding workers, and stores each document as soon as
/// its last vector is back. Parsing pauses (the channel fills) while enough
/// chunks wait, so memory stays bounded whatever the corpus.
fn write_loop(
    parsed: Receiver<Parsed>,
    stage: &mut Stage,
    w: &mut dyn IndexWrite,
    report: &mut IngestReport,
    kept: &mut HashSet<(String, String)>,
    progress: &mut Progress,
    space: Option<&Space>,
) -> Result<(), IngestError> {
    let enough = stage_capacity(stage);
    let closed = never::<Parsed>();
    let results = stage.results.clone();
    let mut parse_done = false;
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    let mut next_slot = 0usize;
    loop {
        if parse_done {
            stage.dispatch(true);
            if stage.in_flight == 0 && stage.queued() == 0 {
                break;
            }
        }
        let accept = !parse_done && stage.queued() + stage.in_flight < enough;
        let source = if accept { &parsed } else { &closed };
        select! {
            recv(source) -> msg => match msg {
                Ok(Parsed::Doc(doc)) => {
                    progress.file_done(doc.spans.len());
                    report.hygiene.add(&doc.hygiene);
                    for warning in &doc.warnings {
                        report.warnings.push(Warning {
                            path: doc.job.file.rel.clone(),
                            warning: warning.clone(),
                        });
                    }
                    if doc.job.existing.is_some() {
                        report.updated += 1;
                    } else {
                        report.added += 1;
                    }
                    kept.insert((doc.job.root.clone(), doc.job.file.rel.clone()));
                    let slot = next_slot;
                    next_slot += 1;
                    for (c, (page, s)) in doc.spans.iter().enumerate() {
                        let chunk = &doc.pages[*page].1[s.byte_start..s.byte_end];
                        let context = doc.contexts.get(c).map_or("", String::as_str);
                        let (text, body) = outline::embedding_input(context, chunk);
                        stage.push(Item {
                            tag: (slot, c),
                            tokens: s.tokens + context.len() / 4,
                            text,
                            body,
                        });
                    }
                    let n = doc.spans.len();
                    pending.insert(slot, Pending {
                        doc: *doc,
                        vectors: vec![Vec::new(); n],
                        verdicts: vec![Detection::default(); n],
                        missing: n,
                    });
                }
                Ok(Parsed::Unchanged(job)) => {
                    progress.file_done(0);
                    report.unchanged += 1;
                    if let Some(d) = &job.existing {
                        w.touch(d.id, job.file.size, job.file.mtime_ns, now_ns())?;
                    }
                }
                Ok(Parsed::Skipped(job, reason)) if job.existing.is_none() => {
                    progress.file_done(0);
                    report.skipped.push(walk::Skipped {
                        path: job.file.rel.clone(),
                        reason,
                    });
                }
                Ok(Parsed::Failed(job, error) | Parsed::Skipped(job, error)) => {
                    progress.file_done(0);
                    let error = if job.existing.is_some() {
                        format!("{error} (the previously indexed version is kept)")
                    } else {
                        error
                    };
                    report.failed.push(Failure {
                        root: job.root.clone(),
                        path: job.file.rel.clone(),
                        error,
                    });
                }
                Err(_) => parse_done = true,
            },
            recv(results) -> msg => {
                let e: Embedded = msg.map_err(|_| {
                    EmbedError::Inference("the embedding workers stopped".into())
                })?;
                stage.returned(&e);
                let vectors = e.vectors?;
                progress.embedded(vectors.len());
                let mut verdicts = e.verdicts.into_iter();
                for ((slot, c), v) in e.tags.into_iter().zip(vectors) {
                    let verdict = verdicts.next().unwrap_or_default();
                    let Some(p) = pending.get_mut(&slot) else { continue };
                    p.vectors[c] = v;
                    p.verdicts[c] = verdict;
                    p.missing -= 1;
                    if p.missing == 0 {
                        if let Some(p) = pending.remove(&slot) {
                            report.embedded += p.vectors.len();
                            report.pages += p.doc.pages.len();
                            w.put(p.doc.into_document(p.vectors, &p.verdicts, space, now_ns()))?;
                        }
                    }
                }
                stage.dispatch(false);
            },
        }
    }
    progress.note("writing");
    Ok(())
}

/// The language a chunk's vector is placed by in its model's space
/// (`embed::Space`): the one its keywords are analysed in, so that a chunk
/// is German or English for both sides alike; `None` for another language.
/// `hort bench space` takes its means by it.
pub fn chunk_language(text: &str) -> Option<&'static str> {
    TextLanguage::detect(text).code()
}

/// Chunks that may wait for vectors at once: a sorting window being
/// filled while every worker has a window's worth to do.
fn stage_capacity(stage: &Stage) -> usize {
    let batch = stage.batch();
    batch * embedding::WINDOW_BATCHES * (stage.workers() + 1)
}

/// Makes the embedded index at `index_dir` match `roots` (created if
/// there is none): [`ingest_into`] for tools and tests that work on one
/// index directory.
pub fn ingest(
    index_dir: &Path,
    roots: &[PathBuf],
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let store = EmbeddedStore::open(
        EmbeddedSpec {
            dir: index_dir.to_path_buf(),
            embedder: crate::embed::space::index_id(embedder.id()),
            dim: embedder.dim(),
            chunker: opts.chunk.fingerprint(),
            graph: opts.graph,
            segment_chunks: opts.segment_chunks,
        },
        true,
    )?;
    ingest_into(&store, roots, embedder, opts)
}

/// Re-scores the stored chunks when the injection detector changed (from
/// the stored text: no parsing; the model runs again only if the detector
/// has a head, whose vectors are not stored).
fn rescore(
    writer: &mut dyn IndexWrite,
    roots: &[String],
    screen: &Screen,
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<(), IngestError> {
    if writer.detector() == screen.version() {
        return Ok(());
    }
    let mut docs = Vec::new();
    for root in roots {
        docs.extend(writer.stored(root)?);
    }
    let mut progress = Progress::new(docs.len(), opts.progress);
    if !docs.is_empty() {
        progress.note("re-scoring stored chunks with the current injection detector");
    }
    // Documents are screened in blocks, so the model's sessions get full
    // batches however small each document is.
    let block = opts.batch_size.max(1) * embedder.parallelism().max(1) * embedding::WINDOW_BATCHES;
    let mut rest = docs.as_slice();
    while !rest.is_empty() {
        let mut taken: Vec<(u64, Vec<String>)> = Vec::new();
        let mut chunks = 0;
        while let Some((d, more)) = rest.split_first() {
            if chunks >= block {
                break;
            }
            let texts = writer.chunk_texts(d.id)?;
            chunks += texts.len();
            taken.push((d.id, texts));
            rest = more;
        }
        let refs: Vec<&str> = taken
            .iter()
            .flat_map(|(_, t)| t.iter().map(String::as_str))
            .collect();
        let verdicts = if screen.head().is_some() {
            embedding::screen_all(embedder, screen, &refs, opts.batch_size.max(1))?.1
        } else {
            refs.iter().map(|t| injection::detect(t)).collect()
        };
        let mut at = 0;
        for (id, texts) in &taken {
            let flagged = verdicts[at..at + texts.len()]
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    screen::stored_verdict(v).map(|(score, reasons)| ChunkVerdict {
                        ord: i as u32,
                        chunk_id: 0,
                        verdict: Verdict { score, reasons },
                    })
                })
                .collect();
            at += texts.len();
            writer.set_verdicts(*id, flagged)?;
            progress.file_done(texts.len());
        }
    }
    progress.finish();
    writer.set_detector(screen.version())?;
    Ok(())
}

/// The folders to ingest, absolute, each once and in one order for every
/// process (PostgreSQL locks each folder for the run, and two runs that
/// take the same folders in different orders could otherwise deadlock); an
/// error names the first that is missing or no folder. Callers check them
/// before they open or create an index, so a mistyped path leaves nothing
/// behind.
pub fn folders(roots: &[PathBuf]) -> Result<Vec<PathBuf>, IngestError> {
    let mut canon: Vec<PathBuf> = Vec::new();
    for r in roots {
        let c = std::fs::canonicalize(r).map_err(|e| IngestError::Root {
            path: r.clone(),
            message: format!("cannot open folder: {e}"),
        })?;
        if !c.is_dir() {
            return Err(IngestError::Root {
                path: r.clone(),
                message: "not a folder".into(),
            });
        }
        if !canon.contains(&c) {
            canon.push(c);
        }
    }
    canon.sort();
    Ok(canon)
}

/// Makes `store` match `roots`: adds new files, re-embeds changed ones,
/// removes deleted ones, applies changed access rules — all through the
/// storage contract, so the same pipeline fills the embedded index and
/// PostgreSQL (where each run is one transaction: a folder's sync becomes
/// visible at once).
pub fn ingest_into(
    store: &dyn Store,
    roots: &[PathBuf],
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let mut report = IngestReport::default();
    let canon = folders(roots)?;
    let roots_s: Vec<String> = canon
        .iter()
        .map(|r| r.to_string_lossy().to_string())
        .collect();
    let mut writer = store.writer()?;
    let rechunk = writer.chunker_changed();
    // As the index recorded it: one from before the model had a space keeps
    // its raw vectors.
    let space = Space::of_index(&store.reader().model().0);
    let screen = Screen::for_model(embedder.id());
    rescore(writer.as_mut(), &roots_s, &screen, embedder, opts)?;

    // 1. Walk, and decide per file what is to be done.
    let mut jobs: Vec<Job> = Vec::new();
    let mut no_rule: Vec<(String, String)> = Vec::new();
    let mut kept: HashSet<(String, String)> = HashSet::new();
    for (root, root_s) in canon.iter().zip(&roots_s) {
        let scan = walk::scan(root).map_err(|e| IngestError::Root {
            path: root.clone(),
            message: format!("cannot read folder: {e}"),
        })?;
        report.skipped.extend(scan.skipped);
        for e in scan.errors {
            report.failed.push(Failure {
                root: root_s.clone(),
                path: e.path,
                error: e.error,
            });
        }
        let stored: HashMap<String, StoredDoc> = writer
            .stored(root_s)?
            .into_iter()
            .map(|d| (d.path.clone(), d))
            .collect();
        let seen: HashSet<&str> = scan.files.iter().map(|f| f.rel.as_str()).collect();
        for d in stored.values() {
            let unreadable = scan
                .unreadable
                .iter()
                .any(|u| d.path == *u || u.is_empty() || d.path.starts_with(&format!("{u}/")));
            if seen.contains(d.path.as_str()) {
                continue;
            }
            if unreadable {
                kept.insert((root_s.clone(), d.path.clone()));
                continue;
            }
            writer.remove(d.id)?;
            report.removed += 1;
        }
        for file in scan.files {
            let existing = stored.get(&file.rel).cloned();
            let access = file.rule.access().cloned();
            if access.is_none() {
                no_rule.push((root_s.clone(), file.rel.clone()));
            }
            if let Some(d) = &existing {
                kept.insert((root_s.clone(), d.path.clone()));
                if d.access != access || d.rule_source.as_deref() != file.rule.source() {
                    writer.set_access(d.id, access, file.rule.source().map(str::to_string))?;
                    report.access_updated += 1;
                }
                let racy = d.checked_at_ns.saturating_sub(d.mtime_ns) < RACY_NS;
                if !rechunk && !racy && d.size == file.size && d.mtime_ns == file.mtime_ns {
                    report.unchanged += 1;
                    continue;
                }
            }
            jobs.push(Job {
                root: root_s.clone(),
                file,
                existing,
            });
        }
    }
    writer.expect(jobs.len())?;

    // 2. Parse in parallel, embed and write here.
    let threads = if opts.parse_threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.parse_threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("hort-parse-{i}"))
        .build()
        .map_err(|e| IngestError::Pool(e.to_string()))?;
    let loaders = Loaders::new(opts.pdf.clone());
    let mut progress = Progress::new(jobs.len(), opts.progress);
    let batch = opts.batch_size.max(1);
    let w: &mut dyn IndexWrite = writer.as_mut();
    let stop = AtomicBool::new(false);
    let result: Result<(), IngestError> = std::thread::scope(|scope| {
        let (tx, rx) = bounded::<Parsed>(64);
        let loaders = &loaders;
        let stop = &stop;
        scope.spawn(move || {
            pool.install(|| {
                // Stops early once the writer is gone (an error there).
                let _ = jobs.into_par_iter().try_for_each_with(tx, |tx, job| {
                    if stop.load(Ordering::Relaxed) {
                        return Err(());
                    }
                    tx.send(parse_job(job, opts, embedder, loaders, rechunk))
                        .map_err(|_| ())
                });
            });
        });
        let mut stage = Stage::start(scope, embedder, Some(&screen), batch, stop);
        let r = write_loop(
            rx,
            &mut stage,
            w,
            &mut report,
            &mut kept,
            &mut progress,
            space,
        );
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        r
    });
    result?;
    progress.finish();

    // 3. Record what failed per folder (replacing the last ingest's list),
    // keep the segment count in check, then commit everything left.
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for root in &roots_s {
        let failed = report
            .failed
            .iter()
            .filter(|f| &f.root == root)
            .map(|f| FailedFile {
                root: root.clone(),
                path: f.path.clone(),
                error: f.error.clone(),
                at,
            })
            .collect();
        writer.set_failures(root, failed)?;
    }
    writer.compact(false)?;
    report.generation = writer.commit()?;
    // Documents that failed and were never stored have no rule to report.
    report.no_access_rule = no_rule
        .into_iter()
        .filter(|k| kept.contains(k))
        .map(|(_, p)| p)
        .collect();
    for root in &roots_s {
        for d in writer.stored(root)? {
            report.injection_suspected.extend(
                d.flagged
                    .iter()
                    .filter(|f| f.verdict.score >= injection::DEFAULT_THRESHOLD)
                    .map(|f| SuspectedChunk {
                        path: d.path.clone(),
                        chunk_id: chunk_id_string(f.chunk_id),
                        score: f.verdict.score,
                        reasons: f.verdict.reasons.clone(),
                    }),
            );
        }
    }
    drop(writer);
    store.refresh()?;
    report.chunks = store.reader().stats()?.chunks;
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    report.seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    Ok(report)
}

/// Documents added through the API (not from a folder) live under this root.
pub use crate::store::UPLOAD_ROOT;
pub use upload::{check_upload_path, ingest_document, remove_document, UploadError};

#[cfg(test)]
mod tests;
