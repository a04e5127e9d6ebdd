//! The one writer of the embedded index (an exclusive lock is held while
//! it lives) and its commit protocol; see the `store` module docs.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::docs::{self, DocRecord, DocTable};
use super::fsutil::{atomic_write, crashpoint, fsync_dir, DirLock};
use super::hnsw::GraphParams;
use super::keyword::{KeywordIndex, KeywordWriter, SCHEMA_VERSION};
use super::manifest::{self, Manifest, SegmentMeta};
use super::segment::{Segment, SegmentBuilder};
use super::{StoreError, KEYWORD, SEGMENTS};
use crate::acl::AccessRule;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The one writer of an index (an exclusive lock is held while it lives).
pub struct IndexWriter {
    pub(super) dir: PathBuf,
    /// Declared before the lock so that it is dropped first: the keyword
    /// writer's background merges end before the next writer may start.
    kw: KeywordWriter,
    _lock: DirLock,
    pub(super) manifest: Manifest,
    pub(super) docs: DocTable,
    pub(super) segments: HashMap<String, Arc<Segment>>,
    pub(super) new_segments: Vec<SegmentMeta>,
    pub(super) dirty: bool,
    graph: GraphParams,
    chunker: String,
}

impl IndexWriter {
    /// Opens (or creates) the index for writing, recovering from an
    /// interrupted commit, and checks that `embedder` made its vectors.
    pub fn open(
        dir: &Path,
        embedder: &str,
        dim: usize,
        chunker: &str,
        graph: GraphParams,
    ) -> Result<IndexWriter, StoreError> {
        std::fs::create_dir_all(dir.join(SEGMENTS)).map_err(|e| StoreError::io(dir, e))?;
        let lock = DirLock::try_acquire(dir)
            .map_err(|e| StoreError::io(dir, e))?
            .ok_or_else(|| StoreError::Locked {
                path: dir.to_path_buf(),
                pid: DirLock::holder(dir)
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "unknown".into()),
            })?;
        let kw_dir = dir.join(KEYWORD);
        let mut rebuild = false;
        let keyword = match KeywordIndex::open_or_create(&kw_dir) {
            Ok(k) => k,
            // Only a damaged index is rebuilt; one that cannot be reached
            // now (permissions, open files) is an error, not a reason to
            // empty it under the readers.
            Err(StoreError::KeywordDamaged(why)) => {
                tracing::warn!(
                    "the keyword index is damaged ({why}); rebuilding it from the segments"
                );
                std::fs::remove_dir_all(&kw_dir).map_err(|e| StoreError::io(&kw_dir, e))?;
                rebuild = true;
                KeywordIndex::open_or_create(&kw_dir)?
            }
            Err(e) => return Err(e),
        };
        let committed = Manifest::read(&dir.join(manifest::FILE))?;
        let pending = Manifest::read(&dir.join(manifest::PENDING))?;
        let kgen = keyword.committed_generation()?;
        let cgen = committed.as_ref().map(|m| m.generation).unwrap_or(0);
        let manifest = match (committed, pending) {
            (c, Some(p)) if kgen == p.generation && kgen == cgen + 1 => {
                // The crash hit after the keyword commit: roll forward.
                let from = dir.join(manifest::PENDING);
                let to = dir.join(manifest::FILE);
                std::fs::rename(&from, &to).map_err(|e| StoreError::io(&from, e))?;
                fsync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
                drop(c);
                Some(p)
            }
            (c, _) => {
                if kgen != cgen && !rebuild {
                    tracing::warn!(
                        "keyword index at generation {kgen}, manifest at {cgen}; rebuilding the keyword index"
                    );
                    rebuild = true;
                }
                c
            }
        };
        let _ = std::fs::remove_file(dir.join(manifest::PENDING));
        let manifest = match manifest {
            Some(m) => {
                if !super::embedder_compatible(&m.embedder, embedder) || m.dim as usize != dim {
                    return Err(StoreError::ModelMismatch {
                        path: dir.to_path_buf(),
                        index: m.embedder,
                        index_dim: m.dim,
                        configured: embedder.to_string(),
                        configured_dim: dim,
                    });
                }
                m
            }
            None => Manifest::empty(embedder, dim, chunker, SCHEMA_VERSION),
        };
        if manifest.keyword_schema != SCHEMA_VERSION {
            rebuild = true;
        }
        let docs = match &manifest.docs_file {
            Some(f) => DocTable::load(&dir.join(f))?,
            None => DocTable::default(),
        };
        let seg_dir = dir.join(SEGMENTS);
        let mut segments = HashMap::new();
        for m in &manifest.segments {
            segments.insert(m.name.clone(), Arc::new(Segment::open(&seg_dir, &m.name)?));
        }
        let kw = keyword.writer()?;
        let mut w = IndexWriter {
            dir: dir.to_path_buf(),
            kw,
            _lock: lock,
            manifest,
            docs,
            segments,
            new_segments: Vec::new(),
            dirty: false,
            graph,
            chunker: chunker.to_string(),
        };
        w.collect_garbage();
        if rebuild {
            w.rebuild_keyword()?;
            w.commit()?;
        }
        Ok(w)
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest as it will be committed.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The documents as they will be committed.
    pub fn docs(&self) -> &DocTable {
        &self.docs
    }

    /// True when the committed index was chunked with other parameters.
    pub fn chunker_changed(&self) -> bool {
        self.manifest.generation > 0 && self.manifest.chunker != self.chunker
    }

    /// A new document id.
    pub fn alloc_doc_id(&mut self) -> u64 {
        let id = self.manifest.next_doc_id;
        self.manifest.next_doc_id += 1;
        id
    }

    /// Reserves `n` consecutive chunk ids; returns the first.
    pub fn alloc_chunk_ids(&mut self, n: usize) -> u64 {
        let id = self.manifest.next_chunk_id;
        self.manifest.next_chunk_id += n as u64;
        id
    }

    /// Writes a segment file (durably, but not yet part of the index).
    pub fn write_segment(&mut self, b: SegmentBuilder) -> Result<String, StoreError> {
        let n = b.len();
        let name = format!(
            "seg-{:08}-{:x}.hseg",
            self.manifest.generation + 1,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
                ^ ((std::process::id() as u64) << 32)
        );
        let seg_dir = self.dir.join(SEGMENTS);
        let bytes = b.write(&seg_dir, &name, self.graph)?;
        let seg = Segment::open(&seg_dir, &name)?;
        self.segments.insert(name.clone(), Arc::new(seg));
        self.new_segments.push(SegmentMeta {
            name: name.clone(),
            chunks: n as u64,
            bytes,
        });
        self.dirty = true;
        Ok(name)
    }

    fn keyword_add_doc(&self, d: &DocRecord, texts: &[&str]) -> Result<(), StoreError> {
        for (i, t) in texts.iter().enumerate() {
            self.kw.add(d.first_chunk + i as u64, d, t)?;
        }
        Ok(())
    }

    fn doc_texts(&self, d: &DocRecord) -> Result<Vec<String>, StoreError> {
        let seg = self.segments.get(&d.segment).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "document {} refers to missing segment {}",
                d.path, d.segment
            ))
        })?;
        let mut out = Vec::with_capacity(d.n_chunks as usize);
        for id in d.chunk_ids() {
            let row = seg.local(id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "chunk {id} of {} missing from {}",
                    d.path, d.segment
                ))
            })?;
            out.push(seg.chunk_text(row)?.to_string());
        }
        Ok(out)
    }

    /// Adds a document, or replaces its content (same id). `texts` are the
    /// texts of its chunks, in id order, already stored in `d.segment`.
    pub fn put_doc(&mut self, d: DocRecord, texts: &[&str]) -> Result<(), StoreError> {
        if texts.len() != d.n_chunks as usize {
            return Err(StoreError::Corrupt(format!(
                "{}: {} texts for {} chunks",
                d.path,
                texts.len(),
                d.n_chunks
            )));
        }
        if self.docs.get(d.id).is_some() {
            self.kw.delete_doc(d.id);
        }
        self.keyword_add_doc(&d, texts)?;
        self.docs.insert(d);
        self.dirty = true;
        Ok(())
    }

    /// Changes who may see a document, without touching its vectors.
    pub fn set_access(
        &mut self,
        doc_id: u64,
        access: Option<AccessRule>,
        rule_source: Option<String>,
    ) -> Result<(), StoreError> {
        let Some(mut d) = self.docs.get(doc_id).cloned() else {
            return Ok(());
        };
        d.access = access;
        d.rule_source = rule_source;
        let texts = self.doc_texts(&d)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.kw.delete_doc(doc_id);
        self.keyword_add_doc(&d, &refs)?;
        self.docs.insert(d);
        self.dirty = true;
        Ok(())
    }

    /// Replaces a document's stored injection verdicts (no index change).
    pub fn set_flags(&mut self, doc_id: u64, flags: Vec<docs::ChunkFlag>) {
        if let Some(d) = self.docs.get_mut(doc_id) {
            if d.injection != flags {
                d.injection = flags;
                self.dirty = true;
            }
        }
    }

    /// Records which detector version the stored verdicts come from.
    pub fn set_detector(&mut self, version: u32) {
        if self.manifest.detector != version {
            self.manifest.detector = version;
            self.dirty = true;
        }
    }

    /// The texts of a document's chunks, in id order.
    pub fn chunk_texts(&self, d: &DocRecord) -> Result<Vec<String>, StoreError> {
        self.doc_texts(d)
    }

    /// Updates file metadata of an unchanged document (no index change).
    pub fn touch_doc(&mut self, doc_id: u64, size: u64, mtime_ns: i64, checked_at_ns: i64) {
        if let Some(d) = self.docs.get_mut(doc_id) {
            if d.size != size || d.mtime_ns != mtime_ns || d.checked_at_ns != checked_at_ns {
                d.size = size;
                d.mtime_ns = mtime_ns;
                d.checked_at_ns = checked_at_ns;
                self.dirty = true;
            }
        }
    }

    /// Removes a document (its chunks are dropped at compaction).
    pub fn remove_doc(&mut self, doc_id: u64) -> Option<DocRecord> {
        let d = self.docs.remove(doc_id)?;
        self.kw.delete_doc(doc_id);
        self.dirty = true;
        Some(d)
    }

    fn rebuild_keyword(&mut self) -> Result<(), StoreError> {
        self.kw.delete_all()?;
        let docs: Vec<DocRecord> = self.docs.iter().cloned().collect();
        for d in &docs {
            let texts = self.doc_texts(d)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.keyword_add_doc(d, &refs)?;
        }
        self.manifest.keyword_schema = SCHEMA_VERSION;
        self.dirty = true;
        Ok(())
    }

    /// Commits a new, empty index so that readers can open it (a database
    /// node's staging index before its first upload).
    pub fn initialise(&mut self) -> Result<u64, StoreError> {
        if !self.dir.join(manifest::FILE).is_file() {
            self.dirty = true;
        }
        self.commit()
    }

    /// Makes everything since the last commit durable and visible, as one step.
    pub fn commit(&mut self) -> Result<u64, StoreError> {
        if !self.dirty {
            return Ok(self.manifest.generation);
        }
        let generation = self.manifest.generation + 1;
        crashpoint("commit:segments-written");
        let docs_name = format!("docs-{generation:08}.json");
        let docs_path = self.dir.join(&docs_name);
        atomic_write(&docs_path, &self.docs.to_bytes())
            .map_err(|e| StoreError::io(&docs_path, e))?;
        let live: BTreeSet<&str> = self
            .docs
            .iter()
            .filter(|d| d.n_chunks > 0)
            .map(|d| d.segment.as_str())
            .collect();
        let segments: Vec<SegmentMeta> = self
            .manifest
            .segments
            .iter()
            .chain(self.new_segments.iter())
            .filter(|s| live.contains(s.name.as_str()))
            .cloned()
            .collect();
        let next = Manifest {
            generation,
            segments,
            docs_file: Some(docs_name),
            chunker: self.chunker.clone(),
            committed_at: now_secs(),
            ..self.manifest.clone()
        };
        let pending = self.dir.join(manifest::PENDING);
        atomic_write(&pending, &next.to_bytes()).map_err(|e| StoreError::io(&pending, e))?;
        crashpoint("commit:pending-written");
        self.kw.commit(generation)?;
        crashpoint("commit:keyword-committed");
        let target = self.dir.join(manifest::FILE);
        std::fs::rename(&pending, &target).map_err(|e| StoreError::io(&target, e))?;
        fsync_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        crashpoint("commit:manifest-renamed");
        self.manifest = next;
        self.new_segments.clear();
        self.dirty = false;
        let keep: BTreeSet<String> = self
            .manifest
            .segments
            .iter()
            .map(|s| s.name.clone())
            .collect();
        self.segments.retain(|name, _| keep.contains(name));
        self.collect_garbage();
        Ok(generation)
    }

    /// Removes files no manifest refers to (left by replaced generations or
    /// by a crash). Readers that still map them keep their mapping.
    fn collect_garbage(&self) {
        let keep_segments: BTreeSet<&str> = self
            .manifest
            .segments
            .iter()
            .chain(self.new_segments.iter())
            .map(|s| s.name.as_str())
            .collect();
        if let Ok(rd) = std::fs::read_dir(self.dir.join(SEGMENTS)) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if !keep_segments.contains(name.as_ref()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let stale_docs = name.starts_with("docs-")
                    && self.manifest.docs_file.as_deref() != Some(name.as_ref());
                let tmp = name.contains(".tmp-");
                if stale_docs || tmp {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}
