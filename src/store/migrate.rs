//! Copying documents between the embedded index and PostgreSQL, with their
//! vectors (nothing is embedded again): `hort migrate`, and the sync that
//! makes `hort ingest` and uploads land in the database.
//!
//! On the PostgreSQL backend the node's embedded index is its ingest staging
//! area (crash-safe, incremental, the same pipeline as on one machine); the
//! database is what every node queries. A sync compares each document's
//! content hash, access rule and injection verdicts, and writes only what
//! differs.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::docs::{ChunkFlag, DocRecord};
use super::hnsw::GraphParams;
use super::pg::{PgChunk, PgDoc, PgError, PgStore};
use super::segment::{ChunkRecord, SegmentBuilder};
use super::{IndexWriter, Snapshot, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("{0}")]
    Mismatch(String),
}

/// Which documents a sync is responsible for: those it may add, replace,
/// and (if absent from the snapshot) remove.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every document of the snapshot; removes database documents of the
    /// same folders that the snapshot no longer has (never uploads, which
    /// other nodes may have made).
    Folders,
    /// Only these folders (as `hort ingest` stores them: absolute paths).
    Roots(Vec<String>),
    /// One document, e.g. an upload.
    Doc { root: String, path: String },
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SyncReport {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub chunks: usize,
}

/// The document `d` of `snap` with its pages, chunks and vectors.
pub fn pg_doc(snap: &Snapshot, d: &DocRecord) -> Result<PgDoc, StoreError> {
    let seg = snap
        .segment_of(d)
        .ok_or_else(|| StoreError::Corrupt(format!("{}: its segment is missing", d.path)))?;
    let mut pages = Vec::with_capacity(d.n_pages as usize);
    for idx in d.first_page..d.first_page + d.n_pages {
        pages.push((seg.page_no(idx), seg.page_text(idx)?.to_string()));
    }
    let vectors = seg.vectors();
    let mut chunks = Vec::with_capacity(d.n_chunks as usize);
    for id in d.chunk_ids() {
        let Some(row) = seg.local(id) else {
            return Err(StoreError::Corrupt(format!(
                "{}: chunk {id} is missing from its segment",
                d.path
            )));
        };
        let rec = seg.chunk(row);
        chunks.push(PgChunk {
            page_ord: rec.page_idx - d.first_page,
            byte_start: rec.byte_start,
            byte_end: rec.byte_end,
            char_start: rec.char_start,
            char_end: rec.char_end,
            content_hash: rec.hash,
            injection: d.flag(id).map(|f| (f.score, f.reasons.clone())),
            embedding: vectors.get(row).to_vec(),
        });
    }
    Ok(PgDoc {
        root: d.root.clone(),
        path: d.path.clone(),
        kind: d.kind.clone(),
        size: d.size,
        mtime_ns: d.mtime_ns,
        sha256: d.sha256.clone(),
        access: d.access.clone(),
        rule_source: d.rule_source.clone(),
        paged: d.paged,
        ingested_at: d.ingested_at,
        hygiene_removed: d.hygiene_removed,
        pages,
        chunks,
    })
}

/// Documents per database transaction.
const BATCH: usize = 64;

/// Makes the database match `snap` within `scope`.
pub fn to_postgres(
    snap: &Snapshot,
    pg: &PgStore,
    scope: &Scope,
    progress: bool,
) -> Result<SyncReport, MigrateError> {
    let m = pg.meta();
    if snap.manifest.embedder != m.embedder || snap.manifest.dim as usize != m.dim {
        return Err(MigrateError::Mismatch(format!(
            "the index was embedded with {} ({} dimensions), the database holds {} ({} dimensions)",
            snap.manifest.embedder, snap.manifest.dim, m.embedder, m.dim
        )));
    }
    let in_scope = |d: &DocRecord| match scope {
        Scope::Folders => true,
        Scope::Roots(r) => r.contains(&d.root),
        Scope::Doc { root, path } => d.root == *root && d.path == *path,
    };
    let stored: HashMap<(String, String), super::pg::DocVersion> = pg
        .versions()?
        .into_iter()
        .map(|v| ((v.root.clone(), v.path.clone()), v))
        .collect();
    let mut report = SyncReport::default();
    let mut todo: Vec<&DocRecord> = Vec::new();
    let mut keep: HashSet<(String, String)> = HashSet::new();
    for d in snap.docs.iter().filter(|d| in_scope(d)) {
        keep.insert((d.root.clone(), d.path.clone()));
        let (teams, class) = match &d.access {
            Some(a) => (a.teams.clone(), a.classification.level() as i32),
            None => (Vec::new(), 3),
        };
        match stored.get(&(d.root.clone(), d.path.clone())) {
            Some(v)
                if v.sha256 == d.sha256
                    && sorted(&v.teams) == sorted(&teams)
                    && v.classification == class
                    && v.flags == d.injection.len() =>
            {
                report.unchanged += 1
            }
            Some(_) => {
                report.updated += 1;
                todo.push(d)
            }
            None => {
                report.added += 1;
                todo.push(d)
            }
        }
    }
    let bulk = todo.len() > 1000 && pg.begin_bulk()?;
    let total = todo.len();
    for (i, batch) in todo.chunks(BATCH).enumerate() {
        let docs = batch
            .iter()
            .map(|d| pg_doc(snap, d))
            .collect::<Result<Vec<_>, _>>()?;
        report.chunks += docs.iter().map(|d| d.chunks.len()).sum::<usize>();
        pg.put_docs(docs)?;
        if progress {
            eprint!(
                "\rmigrate: {} of {total} documents written",
                (i * BATCH + batch.len()).min(total)
            );
        }
    }
    if progress && total > 0 {
        eprintln!();
    }
    if bulk {
        if progress {
            eprintln!("migrate: building the vector index");
        }
        pg.end_bulk()?;
    }
    // Removals: database documents of the same folders the snapshot lacks.
    let roots: HashSet<&str> = match scope {
        Scope::Folders => snap
            .docs
            .iter()
            .map(|d| d.root.as_str())
            .filter(|r| *r != crate::ingest::UPLOAD_ROOT)
            .collect(),
        Scope::Roots(r) => r.iter().map(String::as_str).collect(),
        Scope::Doc { .. } => HashSet::new(),
    };
    let gone: Vec<i64> = stored
        .values()
        .filter(|v| roots.contains(v.root.as_str()))
        .filter(|v| !keep.contains(&(v.root.clone(), v.path.clone())))
        .map(|v| v.id)
        .collect();
    if let Scope::Doc { root, path } = scope {
        if !keep.contains(&(root.clone(), path.clone())) {
            report.removed += pg.delete_path(root, path)? as usize;
        }
    }
    if !gone.is_empty() {
        report.removed += pg.delete_docs(gone)? as usize;
    }
    Ok(report)
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Copies every database document into the embedded index at `dir`
/// (replacing documents of the same folder and path).
pub fn to_embedded(
    pg: &PgStore,
    dir: &Path,
    graph: GraphParams,
    segment_chunks: usize,
    progress: bool,
) -> Result<SyncReport, MigrateError> {
    let m = pg.meta().clone();
    let mut writer = IndexWriter::open(dir, &m.embedder, m.dim, &m.chunker, graph)?;
    let mut report = SyncReport::default();
    let mut builder = SegmentBuilder::new(m.dim);
    let mut staged: Vec<(DocRecord, Vec<String>)> = Vec::new();
    let mut after = 0i64;
    loop {
        let batch = pg.export(after, BATCH as i64)?;
        let Some(last) = batch.last() else { break };
        after = last.0;
        for (_, d) in batch {
            let existing = writer.docs().find(&d.root, &d.path).map(|x| x.id);
            match existing {
                Some(old) => {
                    writer.remove_doc(old);
                    report.updated += 1;
                }
                None => report.added += 1,
            }
            let id = writer.alloc_doc_id();
            let n = d.chunks.len();
            let first_chunk = writer.alloc_chunk_ids(n);
            let first_page = builder.page_count() as u32;
            for (no, text) in &d.pages {
                builder.add_page(*no, text);
            }
            let mut texts = Vec::with_capacity(n);
            let mut flags = Vec::new();
            for (i, k) in d.chunks.iter().enumerate() {
                let (page_no, page) = d.pages.get(k.page_ord as usize).ok_or_else(|| {
                    MigrateError::Mismatch(format!("{}: a chunk without its page", d.path))
                })?;
                let text = page
                    .get(k.byte_start as usize..k.byte_end as usize)
                    .ok_or_else(|| {
                        MigrateError::Mismatch(format!("{}: a chunk outside its page", d.path))
                    })?;
                let mut hash = [0u8; 16];
                hash.copy_from_slice(&Sha256::digest(text.as_bytes())[..16]);
                let rec = ChunkRecord {
                    doc_id: id,
                    page_idx: first_page + k.page_ord,
                    page_no: *page_no,
                    byte_start: k.byte_start,
                    byte_end: k.byte_end,
                    char_start: k.char_start,
                    char_end: k.char_end,
                    hash,
                };
                builder.add_chunk(first_chunk + i as u64, rec, &k.embedding)?;
                texts.push(text.to_string());
                if let Some((score, reasons)) = &k.injection {
                    flags.push(ChunkFlag {
                        chunk: first_chunk + i as u64,
                        score: *score,
                        reasons: reasons.clone(),
                    });
                }
            }
            report.chunks += n;
            staged.push((
                DocRecord {
                    id,
                    root: d.root,
                    path: d.path,
                    kind: d.kind,
                    size: d.size,
                    mtime_ns: d.mtime_ns,
                    sha256: d.sha256,
                    access: d.access,
                    rule_source: d.rule_source,
                    segment: String::new(),
                    first_chunk,
                    n_chunks: n as u32,
                    first_page,
                    n_pages: d.pages.len() as u32,
                    paged: d.paged,
                    ingested_at: d.ingested_at,
                    checked_at_ns: 0,
                    injection: flags,
                    hygiene_removed: d.hygiene_removed,
                },
                texts,
            ));
            if builder.len() >= segment_chunks.max(1) {
                flush(&mut writer, &mut builder, &mut staged, m.dim)?;
                if progress {
                    eprint!(
                        "\rmigrate: {} documents copied",
                        report.added + report.updated
                    );
                }
            }
        }
    }
    flush(&mut writer, &mut builder, &mut staged, m.dim)?;
    if progress {
        eprintln!(
            "\rmigrate: {} documents copied",
            report.added + report.updated
        );
    }
    writer.commit()?;
    Ok(report)
}

fn flush(
    writer: &mut IndexWriter,
    builder: &mut SegmentBuilder,
    staged: &mut Vec<(DocRecord, Vec<String>)>,
    dim: usize,
) -> Result<(), StoreError> {
    if builder.is_empty() {
        // Documents without chunks still need their records.
        for (rec, _) in staged.drain(..) {
            writer.put_doc(rec, &[])?;
        }
        return writer.commit().map(|_| ());
    }
    let b = std::mem::replace(builder, SegmentBuilder::new(dim));
    let name = writer.write_segment(b)?;
    for (mut rec, texts) in staged.drain(..) {
        rec.segment = name.clone();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        writer.put_doc(rec, &refs)?;
    }
    writer.commit().map(|_| ())
}
