//! The embedded index behind the storage contract: a [`Snapshot`] is an
//! [`IndexRead`] (one commit, memory-mapped), [`DocWriter`] is its
//! [`IndexWrite`] (the one writer, staging new documents into segments), and
//! [`EmbeddedStore`] hands both out.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::contract::{CompactStats, IndexRead, IndexWrite, Scored, Store};
use super::docfilter::CompiledDocFilter;
use super::docs::{ChunkFlag, DocRecord};
use super::hnsw::GraphParams;
use super::keyword::KeywordQuery;
use super::plan;
use super::record::{
    ChunkHit, ChunkVerdict, DocSummary, FailedFile, NewChunk, NewDocument, Pages, RuleAt,
    StoreStats, StoredDoc, VectorParams, VectorPlan, Verdict,
};
use super::segment::{ChunkRecord, SegmentBuilder};
use super::{IndexReader, IndexWriter, Snapshot, StoreError};
use crate::acl::{AccessRule, Classification, Principal};

impl IndexRead for Snapshot {
    fn model(&self) -> (String, usize) {
        (self.manifest.embedder.clone(), self.manifest.dim as usize)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats {
            generation: self.generation(),
            documents: self.docs.len(),
            unruled: self.docs.iter().filter(|d| d.access.is_none()).count(),
            chunks: self.live_chunks(),
            teams: self.teams.len(),
            segments: self.segments.len(),
            bytes: self.manifest.segments.iter().map(|s| s.bytes).sum(),
        })
    }

    fn verify_files(&self) -> Result<(), StoreError> {
        self.verify()
    }

    fn vector_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &[f32],
        want: usize,
        params: VectorParams,
    ) -> Result<(Scored, Vec<VectorPlan>), StoreError> {
        let filter = self.filter_for(who);
        let mask = docs.filter(|d| !d.is_empty()).map(|d| self.doc_mask(d));
        Ok(plan::vector_search(
            self,
            &filter,
            mask.as_deref(),
            query,
            want,
            params,
        ))
    }

    fn keyword_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &KeywordQuery,
        want: usize,
    ) -> Result<Scored, StoreError> {
        let filter = self.filter_for(who);
        self.keyword_search_filtered(query, &filter, docs.filter(|d| !d.is_empty()), want)
    }

    fn chunks(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        ids: &[u64],
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(loc) = self.locate(id) else {
                continue;
            };
            let seg = &self.segments[loc.segment];
            let rec = seg.chunk(loc.row);
            let Some(doc) = self.docs.get(rec.doc_id) else {
                continue;
            };
            if !doc.chunk_ids().contains(&id) {
                continue; // a dead chunk of a replaced version
            }
            let access = doc.access.as_ref();
            if !who.can_see(access) || docs.is_some_and(|f| !f.matches(doc)) {
                // Both searches filter already: this is the second check,
                // and a chunk that fails it is a bug, logged and dropped.
                tracing::error!(
                    chunk = id,
                    "filter check failed after retrieval; hit dropped"
                );
                continue;
            }
            let Some(access) = access.cloned() else {
                continue;
            };
            out.push(ChunkHit {
                id,
                doc_id: doc.id,
                path: doc.path.clone(),
                paged: doc.paged,
                page_no: rec.page_no,
                char_start: rec.char_start,
                char_end: rec.char_end,
                text: seg.chunk_text(loc.row)?.to_string(),
                access,
                injection: doc.flag(id).map(|f| Verdict {
                    score: f.score,
                    reasons: f.reasons.clone(),
                }),
                ocr: seg.page_ocr(rec.page_idx),
            });
        }
        Ok(out)
    }

    fn hidden_texts(
        &self,
        who: &Principal,
        text: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let filter = self.filter_for(who);
        let hidden = self.keyword_search_invisible(text, &filter, n)?;
        Ok(hidden
            .into_iter()
            .filter_map(|(id, _)| {
                let l = self.locate(id)?;
                self.segments[l.segment]
                    .chunk_text(l.row)
                    .ok()
                    .map(str::to_string)
            })
            .collect())
    }

    fn documents(&self, who: &Principal) -> Result<Vec<DocSummary>, StoreError> {
        let mut v: Vec<DocSummary> = self
            .docs
            .iter()
            .filter(|d| who.can_see(d.access.as_ref()))
            .map(|d| DocSummary {
                id: d.id,
                path: d.path.clone(),
                kind: d.kind.clone(),
                classification: d
                    .access
                    .as_ref()
                    .map(|r| r.classification)
                    .unwrap_or(Classification::Restricted),
                paged: d.paged,
                n_pages: d.n_pages.max(1),
                n_chunks: d.n_chunks,
                uploaded: d.root == super::UPLOAD_ROOT,
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    fn pages(&self, who: &Principal, path: &str, page: Option<u32>) -> Result<Pages, StoreError> {
        let visible: Vec<&DocRecord> = self
            .docs
            .iter()
            .filter(|d| d.path == path && who.can_see(d.access.as_ref()))
            .collect();
        let d = match visible.as_slice() {
            [] => return Ok(Pages::NotFound),
            [d] => *d,
            many => return Ok(Pages::Ambiguous(many.len())),
        };
        let seg = self
            .segment_of(d)
            .ok_or_else(|| StoreError::Corrupt(format!("{}: its segment is missing", d.path)))?;
        let n = d.n_pages.max(1);
        let range = match page {
            Some(p) if p == 0 || p > n => return Ok(Pages::OutOfRange(d.n_pages)),
            Some(p) => p - 1..p,
            None => 0..d.n_pages,
        };
        let mut texts = Vec::new();
        for i in range {
            texts.push(seg.page_text(d.first_page + i)?.to_string());
        }
        Ok(Pages::Found {
            paged: d.paged,
            n_pages: d.n_pages,
            classification: d
                .access
                .as_ref()
                .map(|r| r.classification)
                .unwrap_or(Classification::Restricted),
            texts,
        })
    }

    fn rules_at(&self, path: &str) -> Result<Vec<RuleAt>, StoreError> {
        Ok(self
            .docs
            .iter()
            .filter(|d| d.path == path)
            .map(|d| RuleAt {
                root: d.root.clone(),
                access: d.access.clone(),
            })
            .collect())
    }

    fn export(&self, from: u64, n: usize) -> Result<Vec<(u64, NewDocument)>, StoreError> {
        let mut ids: Vec<u64> = self
            .docs
            .iter()
            .map(|d| d.id)
            .filter(|&id| id >= from)
            .collect();
        ids.sort_unstable();
        ids.truncate(n);
        ids.into_iter()
            .filter_map(|id| self.docs.get(id))
            .map(|d| Ok((d.id, self.new_document(d)?)))
            .collect()
    }

    fn failures(&self) -> Result<Vec<FailedFile>, StoreError> {
        super::failures::read(&self.dir)
    }
}

/// Views are shared as `Arc`s; an `Arc` of a view is a view.
impl<T: IndexRead + ?Sized> IndexRead for Arc<T> {
    fn model(&self) -> (String, usize) {
        (**self).model()
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        (**self).stats()
    }
    fn verify_files(&self) -> Result<(), StoreError> {
        (**self).verify_files()
    }
    fn vector_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &[f32],
        want: usize,
        params: VectorParams,
    ) -> Result<(Scored, Vec<VectorPlan>), StoreError> {
        (**self).vector_search(who, docs, query, want, params)
    }
    fn keyword_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &KeywordQuery,
        want: usize,
    ) -> Result<Scored, StoreError> {
        (**self).keyword_search(who, docs, query, want)
    }
    fn chunks(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        ids: &[u64],
    ) -> Result<Vec<ChunkHit>, StoreError> {
        (**self).chunks(who, docs, ids)
    }
    fn hidden_texts(
        &self,
        who: &Principal,
        text: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        (**self).hidden_texts(who, text, n)
    }
    fn documents(&self, who: &Principal) -> Result<Vec<DocSummary>, StoreError> {
        (**self).documents(who)
    }
    fn pages(&self, who: &Principal, path: &str, page: Option<u32>) -> Result<Pages, StoreError> {
        (**self).pages(who, path, page)
    }
    fn rules_at(&self, path: &str) -> Result<Vec<RuleAt>, StoreError> {
        (**self).rules_at(path)
    }
    fn export(&self, from: u64, n: usize) -> Result<Vec<(u64, NewDocument)>, StoreError> {
        (**self).export(from, n)
    }
    fn failures(&self) -> Result<Vec<FailedFile>, StoreError> {
        (**self).failures()
    }
}

impl Snapshot {
    /// Document `d` with its pages, chunks and vectors, as a write would take it.
    pub fn new_document(&self, d: &DocRecord) -> Result<NewDocument, StoreError> {
        let seg = self
            .segment_of(d)
            .ok_or_else(|| StoreError::Corrupt(format!("{}: its segment is missing", d.path)))?;
        let mut pages = Vec::with_capacity(d.n_pages as usize);
        let mut page_ocr = Vec::new();
        for idx in d.first_page..d.first_page + d.n_pages {
            pages.push((seg.page_no(idx), seg.page_text(idx)?.to_string()));
            page_ocr.push(seg.page_ocr(idx));
        }
        if page_ocr.iter().all(Option::is_none) {
            page_ocr.clear();
        }
        let vectors = seg.vectors();
        let mut chunks = Vec::with_capacity(d.n_chunks as usize);
        for id in d.chunk_ids() {
            let row = seg.local(id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{}: chunk {id} is missing from its segment",
                    d.path
                ))
            })?;
            let rec = seg.chunk(row);
            chunks.push(NewChunk {
                page_ord: rec.page_idx - d.first_page,
                byte_start: rec.byte_start,
                byte_end: rec.byte_end,
                char_start: rec.char_start,
                char_end: rec.char_end,
                content_hash: rec.hash,
                injection: d.flag(id).map(|f| Verdict {
                    score: f.score,
                    reasons: f.reasons.clone(),
                }),
                embedding: vectors.get(row).to_vec(),
            });
        }
        Ok(NewDocument {
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
            checked_at_ns: d.checked_at_ns,
            hygiene_removed: d.hygiene_removed,
            pages,
            page_ocr,
            chunks,
        })
    }
}

/// The writer of the embedded index behind the contract: new documents are
/// staged into a segment builder; a full segment is written and committed
/// at once (so an interrupted ingest keeps what it finished), the rest at
/// [`IndexWrite::commit`].
pub struct DocWriter {
    w: IndexWriter,
    builder: SegmentBuilder,
    /// Staged documents (their chunks are in `builder`) with their chunk texts.
    staged: Vec<(DocRecord, Vec<String>)>,
    dim: usize,
    segment_chunks: usize,
    /// Failed files per folder, written with the next commit.
    failures: std::collections::BTreeMap<String, Vec<FailedFile>>,
}

impl DocWriter {
    /// A writer over `w` that starts a new segment every `segment_chunks` chunks.
    pub fn new(w: IndexWriter, segment_chunks: usize) -> DocWriter {
        let dim = w.manifest().dim as usize;
        DocWriter {
            w,
            builder: SegmentBuilder::new(dim),
            staged: Vec::new(),
            dim,
            segment_chunks: segment_chunks.max(1),
            failures: Default::default(),
        }
    }

    /// The underlying index writer (for maintenance commands).
    pub fn index(&mut self) -> &mut IndexWriter {
        &mut self.w
    }

    /// Writes the staged segment and registers its documents (no commit).
    fn write_staged(&mut self) -> Result<(), StoreError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        // Documents without chunks need no segment, only their records.
        let name = if self.builder.is_empty() {
            String::new()
        } else {
            let b = std::mem::replace(&mut self.builder, SegmentBuilder::new(self.dim));
            self.w.write_segment(b)?
        };
        for (mut rec, texts) in self.staged.drain(..) {
            rec.segment = name.clone();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.w.put_doc(rec, &refs)?;
        }
        Ok(())
    }

    fn stored_doc(d: &DocRecord) -> StoredDoc {
        StoredDoc {
            id: d.id,
            root: d.root.clone(),
            path: d.path.clone(),
            size: d.size,
            mtime_ns: d.mtime_ns,
            checked_at_ns: d.checked_at_ns,
            sha256: d.sha256.clone(),
            access: d.access.clone(),
            rule_source: d.rule_source.clone(),
            n_chunks: d.n_chunks,
            flagged: d
                .injection
                .iter()
                .map(|f| ChunkVerdict {
                    ord: (f.chunk - d.first_chunk) as u32,
                    chunk_id: f.chunk,
                    verdict: Verdict {
                        score: f.score,
                        reasons: f.reasons.clone(),
                    },
                })
                .collect(),
        }
    }
}

impl IndexWrite for DocWriter {
    fn stored(&mut self, root: &str) -> Result<Vec<StoredDoc>, StoreError> {
        Ok(self
            .w
            .docs()
            .iter()
            .filter(|d| d.root == root)
            .map(DocWriter::stored_doc)
            .collect())
    }

    fn chunk_texts(&mut self, id: u64) -> Result<Vec<String>, StoreError> {
        match self.w.docs().get(id).cloned() {
            Some(d) => self.w.chunk_texts(&d),
            None => Ok(Vec::new()),
        }
    }

    fn chunker_changed(&self) -> bool {
        self.w.chunker_changed()
    }

    fn detector(&self) -> u32 {
        self.w.manifest().detector
    }

    fn set_detector(&mut self, version: u32) -> Result<(), StoreError> {
        self.w.set_detector(version);
        Ok(())
    }

    fn put(&mut self, doc: NewDocument) -> Result<(), StoreError> {
        let existing = self.w.docs().find(&doc.root, &doc.path).map(|d| d.id);
        // A replaced document keeps its id: its old chunks die with the new version.
        let id = match existing {
            Some(id) => id,
            None => self.w.alloc_doc_id(),
        };
        let n = doc.chunks.len();
        let first_chunk = self.w.alloc_chunk_ids(n);
        let first_page = self.builder.page_count() as u32;
        for (ord, (no, text)) in doc.pages.iter().enumerate() {
            self.builder.add_page_ocr(*no, text, doc.ocr_of(ord));
        }
        let mut texts = Vec::with_capacity(n);
        let mut flags = Vec::new();
        for (i, c) in doc.chunks.iter().enumerate() {
            let text = doc.chunk_text(i).ok_or_else(|| {
                StoreError::Corrupt(format!("{}: chunk {i} points outside its page", doc.path))
            })?;
            if c.embedding.len() != self.dim {
                return Err(StoreError::Corrupt(format!(
                    "{}: a vector of {} dimensions for a {}-dimensional index",
                    doc.path,
                    c.embedding.len(),
                    self.dim
                )));
            }
            let page_no = doc.pages[c.page_ord as usize].0;
            let rec = ChunkRecord {
                doc_id: id,
                page_idx: first_page + c.page_ord,
                page_no,
                byte_start: c.byte_start,
                byte_end: c.byte_end,
                char_start: c.char_start,
                char_end: c.char_end,
                hash: c.content_hash,
            };
            self.builder
                .add_chunk(first_chunk + i as u64, rec, &c.embedding)?;
            texts.push(text.to_string());
            if let Some(v) = &c.injection {
                flags.push(ChunkFlag {
                    chunk: first_chunk + i as u64,
                    score: v.score,
                    reasons: v.reasons.clone(),
                });
            }
        }
        let rec = DocRecord {
            id,
            root: doc.root,
            path: doc.path,
            kind: doc.kind,
            size: doc.size,
            mtime_ns: doc.mtime_ns,
            sha256: doc.sha256,
            access: doc.access,
            rule_source: doc.rule_source,
            segment: String::new(),
            first_chunk,
            n_chunks: n as u32,
            first_page,
            n_pages: doc.pages.len() as u32,
            paged: doc.paged,
            ingested_at: doc.ingested_at,
            checked_at_ns: doc.checked_at_ns,
            injection: flags,
            hygiene_removed: doc.hygiene_removed,
        };
        self.staged.push((rec, texts));
        if self.builder.len() >= self.segment_chunks {
            self.write_staged()?;
            self.w.commit()?;
        }
        Ok(())
    }

    fn set_access(
        &mut self,
        id: u64,
        access: Option<AccessRule>,
        rule_source: Option<String>,
    ) -> Result<(), StoreError> {
        self.w.set_access(id, access, rule_source)
    }

    fn set_verdicts(&mut self, id: u64, flagged: Vec<ChunkVerdict>) -> Result<(), StoreError> {
        let Some(first) = self.w.docs().get(id).map(|d| d.first_chunk) else {
            return Ok(());
        };
        let flags = flagged
            .into_iter()
            .map(|f| ChunkFlag {
                chunk: first + f.ord as u64,
                score: f.verdict.score,
                reasons: f.verdict.reasons,
            })
            .collect();
        self.w.set_flags(id, flags);
        Ok(())
    }

    fn touch(
        &mut self,
        id: u64,
        size: u64,
        mtime_ns: i64,
        checked_at_ns: i64,
    ) -> Result<(), StoreError> {
        self.w.touch_doc(id, size, mtime_ns, checked_at_ns);
        Ok(())
    }

    fn remove(&mut self, id: u64) -> Result<bool, StoreError> {
        // A document staged but not yet written can be dropped from the stage.
        Ok(self.w.remove_doc(id).is_some())
    }

    fn compact(&mut self, force: bool) -> Result<CompactStats, StoreError> {
        self.write_staged()?;
        self.w.compact(force)
    }

    fn set_failures(&mut self, root: &str, failed: Vec<FailedFile>) -> Result<(), StoreError> {
        self.failures.insert(root.to_string(), failed);
        Ok(())
    }

    fn commit(&mut self) -> Result<u64, StoreError> {
        self.write_staged()?;
        // Failures are kept beside the manifest, not in it: they change
        // without a new generation (an ingest that only failed).
        if !self.failures.is_empty() {
            super::failures::replace(self.w.dir(), std::mem::take(&mut self.failures))?;
        }
        self.w.commit()
    }
}

/// What opening the embedded index needs to know.
#[derive(Clone, Debug)]
pub struct EmbeddedSpec {
    /// The index directory.
    pub dir: PathBuf,
    /// The embedding model's id.
    pub embedder: String,
    /// Its dimensions.
    pub dim: usize,
    /// The chunker's fingerprint.
    pub chunker: String,
    /// How graphs are built.
    pub graph: GraphParams,
    /// Chunks per segment.
    pub segment_chunks: usize,
}

impl EmbeddedSpec {
    /// The index's single writer (refused while another holds it).
    fn open_writer(&self) -> Result<IndexWriter, StoreError> {
        IndexWriter::open(
            &self.dir,
            &self.embedder,
            self.dim,
            &self.chunker,
            self.graph,
        )
    }
}

/// The embedded index as a [`Store`].
pub struct EmbeddedStore {
    spec: EmbeddedSpec,
    reader: IndexReader,
}

impl EmbeddedStore {
    /// Opens the index at `spec.dir`; with `create`, an empty one is made
    /// first if there is none (a fresh node, or `hort ingest`).
    pub fn open(spec: EmbeddedSpec, create: bool) -> Result<EmbeddedStore, StoreError> {
        if create && !spec.dir.join(super::manifest::FILE).is_file() {
            spec.open_writer()?.initialise()?;
        }
        let reader = match IndexReader::open(&spec.dir) {
            Ok(r) => r,
            // The keyword index is derived from the segments: rebuild it
            // (the writer does, on open) rather than refuse to serve. If
            // another writer holds the index, it is that writer's to mend.
            Err(e @ StoreError::KeywordDamaged(_)) => match spec.open_writer() {
                Ok(_) => IndexReader::open(&spec.dir)?,
                Err(StoreError::Locked { .. }) => return Err(e),
                Err(other) => return Err(other),
            },
            Err(e) => return Err(e),
        };
        let m = reader.snapshot().manifest.clone();
        if !super::embedder_compatible(&m.embedder, &spec.embedder) || m.dim as usize != spec.dim {
            return Err(StoreError::ModelMismatch {
                path: spec.dir.clone(),
                index: m.embedder,
                index_dim: m.dim,
                configured: spec.embedder.clone(),
                configured_dim: spec.dim,
            });
        }
        Ok(EmbeddedStore { spec, reader })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    /// The current snapshot (for tools that need the embedded index itself).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.reader.snapshot()
    }
}

impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn reader(&self) -> Arc<dyn IndexRead> {
        self.reader.snapshot()
    }

    fn refresh(&self) -> Result<bool, StoreError> {
        self.reader.refresh()
    }

    fn writer(&self) -> Result<Box<dyn IndexWrite>, StoreError> {
        let w = self.spec.open_writer()?;
        Ok(Box::new(DocWriter::new(w, self.spec.segment_chunks)))
    }
}

/// The first 16 bytes of the SHA-256 of a chunk's text.
pub fn content_hash(text: &str) -> [u8; 16] {
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&Sha256::digest(text.as_bytes())[..16]);
    hash
}
