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
pub mod loader;
mod progress;
pub mod rules;
pub mod walk;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::embed::{EmbedError, Embedder};
use crate::sanitize::hygiene::{self, HygieneReport};
use crate::sanitize::injection;
use crate::store::docs::{ChunkFlag, DocRecord};
use crate::store::hnsw::GraphParams;
use crate::store::pg::{Meta, PgError, PgStore};
use crate::store::segment::{ChunkRecord, SegmentBuilder};
use crate::store::{IndexWriter, StoreError};
use chunk::{chunk_page, ChunkParams, ChunkSpan};
use loader::{FileKind, HtmlLoader, LoadError, Loader, PdfIsolation, PdfLoader, TextLoader};
use progress::Progress;
use walk::SourceFile;

pub use walk::{Skipped, WalkError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("{path}: {message}")]
    Root { path: PathBuf, message: String },
    #[error("cannot start the parser pool: {0}")]
    Pool(String),
}

#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub chunk: ChunkParams,
    pub max_file_bytes: u64,
    pub pdf: PdfIsolation,
    pub parse_threads: usize,
    pub batch_size: usize,
    pub segment_chunks: usize,
    pub graph: GraphParams,
    pub progress: bool,
}

impl IngestOptions {
    pub fn from_config(cfg: &Config, pdf: PdfIsolation) -> IngestOptions {
        IngestOptions {
            chunk: ChunkParams {
                max_tokens: cfg.ingest.chunk_tokens,
                overlap_tokens: cfg.ingest.overlap_tokens,
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
            },
            Err(_) => PdfIsolation::InProcess {
                timeout: Duration::from_secs(cfg.ingest.pdf_timeout_s),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Warning {
    pub path: String,
    pub warning: String,
}

/// The summary `hort ingest --json` prints.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Chunks in the index after this ingest.
    pub chunks: usize,
    /// Documents stored without an access rule (visible to nobody).
    pub no_access_rule: Vec<String>,
    pub failed: Vec<Failure>,
    pub seconds: f64,
    /// Documents whose access rule changed (applied without re-embedding).
    pub access_updated: usize,
    /// Chunks embedded by this run.
    pub embedded: usize,
    pub pages: usize,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<Warning>,
    /// Invisible characters removed by text hygiene.
    pub hygiene: HygieneReport,
    /// Chunks of the ingested folders that look like prompt injection
    /// (detector score at or above 0.5).
    pub injection_suspected: Vec<SuspectedChunk>,
    pub generation: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SuspectedChunk {
    pub path: String,
    pub chunk_id: String,
    pub score: f32,
    pub reasons: Vec<String>,
}

struct Job {
    root: String,
    file: SourceFile,
    existing: Option<DocRecord>,
}

struct ParsedDoc {
    job: Job,
    sha256: String,
    pages: Vec<(u32, String)>,
    /// (page index, span)
    spans: Vec<(usize, ChunkSpan)>,
    warnings: Vec<String>,
    hygiene: HygieneReport,
    /// (chunk index, injection score, reasons) of chunks worth remembering.
    flags: Vec<(usize, f32, Vec<String>)>,
}

/// Detector scores at or above this are stored with the document, so a
/// lower policy threshold later needs no re-scan.
const FLAG_STORE_MIN: f32 = 0.3;

fn flag_of(text: &str) -> Option<(f32, Vec<String>)> {
    let d = injection::detect(text);
    (d.score >= FLAG_STORE_MIN).then(|| {
        let reasons = d
            .reasons
            .iter()
            .map(|r| {
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        (d.score, reasons)
    })
}

enum Parsed {
    Doc(Box<ParsedDoc>),
    Unchanged(Job),
    Failed(Job, String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
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

struct Loaders {
    text: TextLoader,
    html: HtmlLoader,
    pdf: PdfLoader,
}

impl Loaders {
    fn for_kind(&self, k: FileKind) -> &dyn Loader {
        match k {
            FileKind::Text | FileKind::Markdown => &self.text,
            FileKind::Html => &self.html,
            FileKind::Pdf => &self.pdf,
        }
    }
}

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
    let loaded = match loaders.for_kind(f.kind).load(bytes) {
        Ok(l) => l,
        Err(e) => return Parsed::Failed(job, e.to_string()),
    };
    let max = opts
        .chunk
        .max_tokens
        .min(embedder.max_tokens().saturating_sub(2))
        .max(1);
    let params = ChunkParams {
        max_tokens: max,
        overlap_tokens: opts.chunk.overlap_tokens.min(max / 2),
    };
    let count = |s: &str| embedder.count_tokens(s);
    let mut pages = Vec::with_capacity(loaded.pages.len());
    let mut spans = Vec::new();
    let mut report = HygieneReport::default();
    for (i, page) in loaded.pages.into_iter().enumerate() {
        let (text, r) = hygiene::clean(&page.text);
        report.add(&r);
        for s in chunk_page(&text, params, &count) {
            spans.push((i, s));
        }
        pages.push((page.number.unwrap_or(0), text));
    }
    if spans.is_empty() {
        return Parsed::Failed(job, LoadError::NoText("").to_string());
    }
    let flags = spans
        .iter()
        .enumerate()
        .filter_map(|(i, (page, s))| {
            flag_of(&pages[*page].1[s.byte_start..s.byte_end]).map(|(score, r)| (i, score, r))
        })
        .collect();
    Parsed::Doc(Box::new(ParsedDoc {
        sha256: sha,
        pages,
        spans,
        warnings: loaded.warnings,
        hygiene: report,
        flags,
        job,
    }))
}

/// Accumulates embedded documents into a segment and commits it when full.
struct Stager<'a> {
    writer: &'a mut IndexWriter,
    builder: SegmentBuilder,
    staged: Vec<(DocRecord, Vec<String>)>,
    dim: usize,
    segment_chunks: usize,
}

impl Stager<'_> {
    fn stage(
        &mut self,
        doc: ParsedDoc,
        vectors: Vec<Vec<f32>>,
        now: i64,
    ) -> Result<(), IngestError> {
        let n = doc.spans.len();
        let first_chunk = self.writer.alloc_chunk_ids(n);
        let id = match &doc.job.existing {
            Some(d) => d.id,
            None => self.writer.alloc_doc_id(),
        };
        let first_page = self.builder.page_count() as u32;
        for (no, text) in &doc.pages {
            self.builder.add_page(*no, text);
        }
        let mut texts = Vec::with_capacity(n);
        for (i, ((page, span), v)) in doc.spans.iter().zip(vectors).enumerate() {
            let text = &doc.pages[*page].1[span.byte_start..span.byte_end];
            let mut hash = [0u8; 16];
            hash.copy_from_slice(&Sha256::digest(text.as_bytes())[..16]);
            let rec = ChunkRecord {
                doc_id: id,
                page_idx: first_page + *page as u32,
                page_no: doc.pages[*page].0,
                byte_start: span.byte_start as u32,
                byte_end: span.byte_end as u32,
                char_start: span.char_start as u32,
                char_end: span.char_end as u32,
                hash,
            };
            self.builder.add_chunk(first_chunk + i as u64, rec, &v)?;
            texts.push(text.to_string());
        }
        let f = &doc.job.file;
        let rec = DocRecord {
            id,
            root: doc.job.root.clone(),
            path: f.rel.clone(),
            kind: f.kind.as_str().to_string(),
            size: f.size,
            mtime_ns: f.mtime_ns,
            sha256: doc.sha256,
            access: f.rule.access().cloned(),
            rule_source: f.rule.source().map(str::to_string),
            segment: String::new(),
            first_chunk,
            n_chunks: n as u32,
            first_page,
            n_pages: doc.pages.len() as u32,
            paged: f.kind.paged(),
            ingested_at: now / 1_000_000_000,
            checked_at_ns: now,
            injection: doc
                .flags
                .iter()
                .map(|(i, score, reasons)| ChunkFlag {
                    chunk: first_chunk + *i as u64,
                    score: *score,
                    reasons: reasons.clone(),
                })
                .collect(),
            hygiene_removed: doc.hygiene.removed(),
        };
        self.staged.push((rec, texts));
        if self.builder.len() >= self.segment_chunks {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the segment, registers its documents and commits.
    fn flush(&mut self) -> Result<(), IngestError> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let b = std::mem::replace(&mut self.builder, SegmentBuilder::new(self.dim));
        let name = self.writer.write_segment(b)?;
        for (mut rec, texts) in self.staged.drain(..) {
            rec.segment = name.clone();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.writer.put_doc(rec, &refs)?;
        }
        self.writer.commit()?;
        Ok(())
    }
}

/// Embeds all chunks of `docs` (length-sorted batches waste less padding)
/// and hands each document to the stager.
fn embed_and_stage(
    docs: &mut Vec<ParsedDoc>,
    embedder: &dyn Embedder,
    batch: usize,
    stager: &mut Stager<'_>,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    if docs.is_empty() {
        return Ok(());
    }
    let mut items: Vec<(usize, usize, usize)> = Vec::new(); // (doc, chunk, tokens)
    for (d, doc) in docs.iter().enumerate() {
        for (c, (_, s)) in doc.spans.iter().enumerate() {
            items.push((d, c, s.tokens));
        }
    }
    items.sort_by_key(|x| x.2);
    let mut vectors: Vec<Vec<Vec<f32>>> = docs
        .iter()
        .map(|d| vec![Vec::new(); d.spans.len()])
        .collect();
    for group in items.chunks(batch.max(1)) {
        let texts: Vec<&str> = group
            .iter()
            .map(|&(d, c, _)| {
                let (page, s) = &docs[d].spans[c];
                &docs[d].pages[*page].1[s.byte_start..s.byte_end]
            })
            .collect();
        let out = embedder.embed_passages(&texts)?;
        if out.len() != group.len() {
            return Err(EmbedError::Inference("embedder returned a different count".into()).into());
        }
        for (&(d, c, _), v) in group.iter().zip(out) {
            vectors[d][c] = v;
        }
    }
    let now = now_ns();
    for (doc, vecs) in docs.drain(..).zip(vectors) {
        report.embedded += vecs.len();
        report.pages += doc.pages.len();
        stager.stage(doc, vecs, now)?;
    }
    Ok(())
}

/// Makes the index at `index_dir` match `roots`: adds new files, re-embeds
/// changed ones, removes deleted ones, applies changed access rules.
pub fn ingest(
    index_dir: &Path,
    roots: &[PathBuf],
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let mut report = IngestReport::default();
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
    let mut writer = IndexWriter::open(
        index_dir,
        embedder.id(),
        embedder.dim(),
        &opts.chunk.fingerprint(),
        opts.graph,
    )?;
    let rechunk = writer.chunker_changed();
    // Stored injection verdicts from another detector version are redone
    // from the stored text (no parsing, no embedding).
    if writer.manifest().detector != injection::DETECTOR_VERSION {
        let docs: Vec<DocRecord> = writer.docs().iter().cloned().collect();
        for d in docs {
            let texts = writer.chunk_texts(&d)?;
            let flags = texts
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    flag_of(t).map(|(score, reasons)| ChunkFlag {
                        chunk: d.first_chunk + i as u64,
                        score,
                        reasons,
                    })
                })
                .collect();
            writer.set_flags(d.id, flags);
        }
        writer.set_detector(injection::DETECTOR_VERSION);
    }

    // 1. Walk, and decide per file what is to be done.
    let mut jobs: Vec<Job> = Vec::new();
    let mut no_rule: Vec<String> = Vec::new();
    for root in &canon {
        let root_s = root.to_string_lossy().to_string();
        let scan = walk::scan(root).map_err(|e| IngestError::Root {
            path: root.clone(),
            message: format!("cannot read folder: {e}"),
        })?;
        report.skipped.extend(scan.skipped);
        for e in scan.errors {
            report.failed.push(Failure {
                path: e.path,
                error: e.error,
            });
        }
        let seen: HashSet<&str> = scan.files.iter().map(|f| f.rel.as_str()).collect();
        let gone: Vec<u64> = writer
            .docs()
            .iter()
            .filter(|d| d.root == root_s && !seen.contains(d.path.as_str()))
            .filter(|d| {
                !scan
                    .unreadable
                    .iter()
                    .any(|u| d.path == *u || u.is_empty() || d.path.starts_with(&format!("{u}/")))
            })
            .map(|d| d.id)
            .collect();
        for id in gone {
            writer.remove_doc(id);
            report.removed += 1;
        }
        for file in scan.files {
            let existing = writer.docs().find(&root_s, &file.rel).cloned();
            let access = file.rule.access().cloned();
            if access.is_none() {
                no_rule.push(file.rel.clone());
            }
            if let Some(d) = &existing {
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
    let loaders = Loaders {
        text: TextLoader,
        html: HtmlLoader,
        pdf: PdfLoader {
            isolation: opts.pdf.clone(),
        },
    };
    let mut progress = Progress::new(jobs.len(), opts.progress);
    let dim = embedder.dim();
    let batch = opts.batch_size.max(1);
    let mut stager = Stager {
        writer: &mut writer,
        builder: SegmentBuilder::new(dim),
        staged: Vec::new(),
        dim,
        segment_chunks: opts.segment_chunks.max(1),
    };
    let result: Result<(), IngestError> = std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Parsed>(32);
        let loaders = &loaders;
        scope.spawn(move || {
            pool.install(|| {
                jobs.into_par_iter().for_each_with(tx, |tx, job| {
                    let _ = tx.send(parse_job(job, opts, embedder, loaders, rechunk));
                });
            });
        });
        let mut waiting: Vec<ParsedDoc> = Vec::new();
        let mut waiting_chunks = 0usize;
        for msg in rx {
            match msg {
                Parsed::Doc(doc) => {
                    progress.file_done(doc.spans.len());
                    report.hygiene.add(&doc.hygiene);
                    for w in &doc.warnings {
                        report.warnings.push(Warning {
                            path: doc.job.file.rel.clone(),
                            warning: w.clone(),
                        });
                    }
                    if doc.job.existing.is_some() {
                        report.updated += 1;
                    } else {
                        report.added += 1;
                    }
                    waiting_chunks += doc.spans.len();
                    waiting.push(*doc);
                    if waiting_chunks >= batch * 8 {
                        embed_and_stage(&mut waiting, embedder, batch, &mut stager, &mut report)?;
                        waiting_chunks = 0;
                    }
                }
                Parsed::Unchanged(job) => {
                    progress.file_done(0);
                    report.unchanged += 1;
                    if let Some(d) = &job.existing {
                        stager
                            .writer
                            .touch_doc(d.id, job.file.size, job.file.mtime_ns, now_ns());
                    }
                }
                Parsed::Failed(job, error) => {
                    progress.file_done(0);
                    let error = if job.existing.is_some() {
                        format!("{error} (the previously indexed version is kept)")
                    } else {
                        error
                    };
                    report.failed.push(Failure {
                        path: job.file.rel.clone(),
                        error,
                    });
                }
            }
        }
        embed_and_stage(&mut waiting, embedder, batch, &mut stager, &mut report)?;
        progress.note("writing segment");
        stager.flush()
    });
    result?;
    progress.finish();

    // 3. Keep the segment count in check, then commit everything left.
    writer.compact(false)?;
    report.generation = writer.commit()?;
    // Documents that failed and were never stored have no rule to report.
    let stored: HashSet<(&str, &str)> = writer
        .docs()
        .iter()
        .map(|d| (d.root.as_str(), d.path.as_str()))
        .collect();
    let roots_s: Vec<String> = canon
        .iter()
        .map(|r| r.to_string_lossy().to_string())
        .collect();
    report.no_access_rule = no_rule
        .into_iter()
        .filter(|p| {
            roots_s
                .iter()
                .any(|r| stored.contains(&(r.as_str(), p.as_str())))
        })
        .collect();
    report.chunks = writer.docs().iter().map(|d| d.n_chunks as usize).sum();
    report.injection_suspected = writer
        .docs()
        .iter()
        .filter(|d| roots_s.contains(&d.root))
        .flat_map(|d| {
            d.injection
                .iter()
                .filter(|f| f.score >= injection::DEFAULT_THRESHOLD)
                .map(|f| SuspectedChunk {
                    path: d.path.clone(),
                    chunk_id: crate::retrieve::chunk_id_string(f.chunk),
                    score: f.score,
                    reasons: f.reasons.clone(),
                })
        })
        .collect();
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    report.seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    Ok(report)
}

/// Documents added through the API (not from a folder) live under this root.
pub const UPLOAD_ROOT: &str = "upload:";

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    BadPath(String),
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The shared database could not take the change.
    #[error("{0}")]
    Database(String),
}

/// Checks an API document path: relative, `/`-separated, no `.`/`..`, no
/// hidden parts, a supported extension. Returns the normalised path and kind.
pub fn check_upload_path(path: &str) -> Result<(String, FileKind), UploadError> {
    let bad = |m: &str| UploadError::BadPath(format!("path {path:?}: {m}"));
    let p = path.trim().trim_start_matches("./");
    if p.is_empty() || p.len() > 512 || p.starts_with('/') || p.contains('\\') || p.contains('\0') {
        return Err(bad("must be a relative path like `folder/name.md`"));
    }
    for part in p.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.starts_with('.') {
            return Err(bad("empty, `.`, `..` or hidden parts are not allowed"));
        }
        if part.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed"));
        }
    }
    let ext = p.rsplit('.').next().filter(|e| *e != p).unwrap_or("");
    let kind = FileKind::from_extension(ext)
        .ok_or_else(|| bad("supported types are .txt, .md, .html, .htm and .pdf"))?;
    if p.ends_with(rules::FILE_RULE_SUFFIX) || p.rsplit('/').next() == Some(rules::DIR_RULE) {
        return Err(bad("access rule files cannot be uploaded as documents"));
    }
    Ok((p.to_string(), kind))
}

/// Adds (or replaces) one document given as bytes, with its access rule.
/// Returns the number of chunks stored.
pub fn ingest_document(
    index_dir: &Path,
    path: &str,
    bytes: &[u8],
    rule: crate::acl::AccessRule,
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<usize, UploadError> {
    let (rel, kind) = check_upload_path(path)?;
    if bytes.len() as u64 > opts.max_file_bytes {
        return Err(UploadError::Unreadable(
            LoadError::TooLarge {
                size: bytes.len() as u64,
                limit: opts.max_file_bytes,
            }
            .to_string(),
        ));
    }
    let mut writer = IndexWriter::open(
        index_dir,
        embedder.id(),
        embedder.dim(),
        &opts.chunk.fingerprint(),
        opts.graph,
    )
    .map_err(IngestError::from)?;
    let existing = writer.docs().find(UPLOAD_ROOT, &rel).cloned();
    let now = now_ns();
    let job = Job {
        root: UPLOAD_ROOT.to_string(),
        file: SourceFile {
            abs: PathBuf::from(&rel),
            rel: rel.clone(),
            kind,
            size: bytes.len() as u64,
            mtime_ns: now,
            rule: walk::RuleState::Rule {
                rule,
                source: "(uploaded with the document)".into(),
            },
        },
        existing,
    };
    let loaders = Loaders {
        text: TextLoader,
        html: HtmlLoader,
        pdf: PdfLoader {
            isolation: opts.pdf.clone(),
        },
    };
    let parsed = parse_bytes(job, bytes, sha256_hex(bytes), opts, embedder, &loaders);
    let doc = match parsed {
        Parsed::Doc(d) => d,
        Parsed::Failed(_, e) => return Err(UploadError::Unreadable(e)),
        Parsed::Unchanged(_) => return Ok(0),
    };
    let n = doc.spans.len();
    let mut report = IngestReport::default();
    let dim = embedder.dim();
    let mut stager = Stager {
        writer: &mut writer,
        builder: SegmentBuilder::new(dim),
        staged: Vec::new(),
        dim,
        segment_chunks: opts.segment_chunks.max(1),
    };
    let mut docs = vec![*doc];
    embed_and_stage(
        &mut docs,
        embedder,
        opts.batch_size.max(1),
        &mut stager,
        &mut report,
    )?;
    stager.flush()?;
    writer.compact(false).map_err(IngestError::from)?;
    writer.commit().map_err(IngestError::from)?;
    Ok(n)
}

/// The PostgreSQL store of the configuration (`None` on the embedded
/// backend), created and migrated if new; refuses a database whose vectors
/// another model made.
pub fn open_database(
    cfg: &Config,
    embedder: &dyn Embedder,
) -> Result<Option<std::sync::Arc<PgStore>>, PgError> {
    if cfg.store.backend != crate::config::Backend::Postgres {
        return Ok(None);
    }
    let url = cfg
        .store
        .url()
        .ok_or_else(|| PgError::Url("[store] url is not set".into()))?;
    let opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
    let meta = Meta {
        embedder: embedder.id().to_string(),
        dim: embedder.dim(),
        chunker: opts.chunk.fingerprint(),
        m: cfg.hnsw.m,
        ef_construction: cfg.hnsw.ef_construction,
    };
    let pg = PgStore::open(
        &url,
        cfg.store.read_url().as_deref(),
        cfg.store.pool_size,
        meta,
    )?;
    Ok(Some(std::sync::Arc::new(pg)))
}

/// Removes a document added through the API. `Ok(false)` if there was none.
pub fn remove_document(
    index_dir: &Path,
    path: &str,
    embedder: &dyn Embedder,
    opts: &IngestOptions,
) -> Result<bool, UploadError> {
    let (rel, _) = check_upload_path(path)?;
    let mut writer = IndexWriter::open(
        index_dir,
        embedder.id(),
        embedder.dim(),
        &opts.chunk.fingerprint(),
        opts.graph,
    )
    .map_err(IngestError::from)?;
    let Some(id) = writer.docs().find(UPLOAD_ROOT, &rel).map(|d| d.id) else {
        return Ok(false);
    };
    writer.remove_doc(id);
    writer.compact(false).map_err(IngestError::from)?;
    writer.commit().map_err(IngestError::from)?;
    Ok(true)
}

#[cfg(test)]
mod tests;
