//! The on-disk index: immutable segments (chunks, page texts, vectors, HNSW
//! graph), a tantivy keyword index, and a document table, tied together by an
//! atomically replaced manifest.
//!
//! ```text
//! <index>/MANIFEST            which files make up the current generation
//!         MANIFEST.pending    the next one, during a commit
//!         LOCK                held by the one writer
//!         docs-<gen>.json     document table (access rules live here)
//!         segments/*.hseg     immutable, memory-mapped
//!         keyword/            tantivy, commit payload = generation
//! ```
//!
//! **Commit protocol** (one writer): segments are written and fsynced first;
//! then the document table; then `MANIFEST.pending`; then tantivy commits with
//! payload `generation=N+1`; then the pending manifest is renamed over
//! `MANIFEST`. A crash before the tantivy commit leaves generation N
//! everywhere (the pending file is discarded); a crash after it is rolled
//! forward, because the pending manifest names files that are all durable.
//! Readers apply the same rule without writing, so they never see a mix.

pub mod distance;
pub mod docfilter;
pub mod docs;
pub mod fsutil;
pub mod hnsw;
pub mod keyword;
pub mod manifest;
pub mod migrate;
pub mod pg;
pub mod segment;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tantivy::Searcher;

use crate::acl::{AccessRule, AclTable, Filter, Principal, TeamTable};
use docfilter::CompiledDocFilter;
use docs::{DocRecord, DocTable};
use fsutil::{atomic_write, crashpoint, fsync_dir, DirLock};
use hnsw::GraphParams;
use keyword::{AccessBits, KeywordIndex, KeywordWriter, SCHEMA_VERSION};
use manifest::{Manifest, SegmentMeta};
use segment::{Segment, SegmentBuilder};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index is corrupt: {0}")]
    Corrupt(String),
    #[error("keyword index: {0}")]
    Keyword(String),
    #[error("no index at {0} (run `hort ingest <DIR>` first)")]
    NotFound(PathBuf),
    #[error("the index at {path} is in use by another writer (pid {pid}); wait for it to finish")]
    Locked { path: PathBuf, pid: String },
    #[error(
        "the index at {path} was built with embedding model {index} ({index_dim} dimensions), \
         but {configured} ({configured_dim} dimensions) is configured; ingest into a new index \
         directory or configure the original model"
    )]
    ModelMismatch {
        path: PathBuf,
        index: String,
        index_dim: u32,
        configured: String,
        configured_dim: usize,
    },
    #[error("the index keeps changing under the reader; try again ({0})")]
    Busy(String),
    #[error("the index at {0} was written by another version of hort; run `hort compact` (or `hort ingest`) once to upgrade it")]
    NeedsUpgrade(PathBuf),
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

const SEGMENTS: &str = "segments";
const KEYWORD: &str = "keyword";

/// Segments beyond this count are merged by [`IndexWriter::compact`].
const MAX_SEGMENTS: usize = 8;
/// A segment whose live share falls below this is rewritten by compaction.
const MIN_LIVE_RATIO: f64 = 0.5;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a query reads: one generation of the embedded index, or the
/// PostgreSQL database (see [`pg`]).
#[derive(Clone, Debug)]
pub enum View {
    Embedded(Arc<Snapshot>),
    Postgres(Arc<pg::PgStore>),
}

/// One consistent generation of the index, as a query sees it: mapped
/// segments, the document table, access arrays and a tantivy searcher, all
/// of the same commit. Cheap to share (`Arc`), never changes.
pub struct Snapshot {
    dir: PathBuf,
    pub manifest: Manifest,
    pub segments: Vec<Arc<Segment>>,
    pub docs: DocTable,
    pub teams: TeamTable,
    acl: Vec<AclTable>,
    /// Per segment, per team bit: chunk counts by level (the planner's statistics).
    counts: Vec<Vec<[u32; 4]>>,
    keyword: Arc<KeywordIndex>,
    searcher: Searcher,
    live_chunks: usize,
    access_cache: Mutex<HashMap<(Vec<u64>, u8), AccessBits>>,
}

/// Distinct access filters whose keyword bitsets a snapshot keeps (one per
/// team combination and clearance in use; cleared when full).
const ACCESS_CACHE_ENTRIES: usize = 256;

fn lock_cache<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The cache holds no invariant a panic could break: recover it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("dir", &self.dir)
            .field("generation", &self.manifest.generation)
            .field("docs", &self.docs.len())
            .field("chunks", &self.live_chunks)
            .finish()
    }
}

/// Where a chunk is: segment position and row within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLoc {
    pub segment: usize,
    pub row: usize,
}

impl Snapshot {
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Chunks that belong to a live document.
    pub fn live_chunks(&self) -> usize {
        self.live_chunks
    }

    pub fn acl(&self, segment: usize) -> &AclTable {
        &self.acl[segment]
    }

    pub fn filter_for(&self, principal: &Principal) -> Filter {
        Filter::new(principal, &self.teams)
    }

    /// The segment holding the chunks of `d`.
    pub fn segment_of(&self, d: &DocRecord) -> Option<&Arc<Segment>> {
        self.segments.iter().find(|s| s.name() == d.segment)
    }

    /// The chunks of `d` in order, as (chunk id, text).
    pub fn doc_chunks(&self, d: &DocRecord) -> Result<Vec<(u64, &str)>, StoreError> {
        let Some(seg) = self.segment_of(d) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(d.n_chunks as usize);
        for id in d.chunk_ids() {
            if let Some(row) = seg.local(id) {
                out.push((id, seg.chunk_text(row)?));
            }
        }
        Ok(out)
    }

    pub fn locate(&self, chunk_id: u64) -> Option<ChunkLoc> {
        self.segments
            .iter()
            .enumerate()
            .find_map(|(s, seg)| seg.local(chunk_id).map(|row| ChunkLoc { segment: s, row }))
    }

    /// Keyword search with the access filter (and a metadata filter) as query clauses.
    pub fn keyword_search(
        &self,
        query: &str,
        filter: &Filter,
        docs: Option<&CompiledDocFilter>,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>, StoreError> {
        if filter.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let access = self.access_bits(filter)?;
        self.keyword
            .search(&self.searcher, query, &access, docs, limit)
    }

    /// The keyword-side bitsets of `filter`, from the cache of this snapshot
    /// (a snapshot never changes, so an entry never goes stale; a new
    /// generation starts with an empty cache). Keyed by the filter's team bits
    /// and level, which identify it exactly within this snapshot.
    fn access_bits(&self, filter: &Filter) -> Result<AccessBits, StoreError> {
        let key = filter.cache_key();
        if let Some(b) = lock_cache(&self.access_cache).get(&key) {
            return Ok(b.clone());
        }
        let bits = self.keyword.access_bits(&self.searcher, filter)?;
        let mut cache = lock_cache(&self.access_cache);
        if cache.len() >= ACCESS_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, bits.clone());
        Ok(bits)
    }

    /// Chunks the principal may *not* see that match `query` (for checking
    /// answers for leaked text; never used to answer).
    pub fn keyword_search_invisible(
        &self,
        query: &str,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<(u64, f32)>, StoreError> {
        self.keyword
            .search_invisible(&self.searcher, query, filter, limit)
    }

    /// Per segment, a bitset of the chunks whose document matches `f`.
    pub fn doc_mask(&self, f: &CompiledDocFilter) -> Vec<Vec<u64>> {
        let pos: HashMap<&str, usize> = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name(), i))
            .collect();
        let mut masks: Vec<Vec<u64>> = self
            .segments
            .iter()
            .map(|s| vec![0u64; s.len().div_ceil(64)])
            .collect();
        for d in self.docs.iter().filter(|d| d.n_chunks > 0 && f.matches(d)) {
            let Some(&s) = pos.get(d.segment.as_str()) else {
                continue;
            };
            let Some(start) = self.segments[s].local(d.first_chunk) else {
                continue;
            };
            for row in start..start + d.n_chunks as usize {
                masks[s][row / 64] |= 1 << (row % 64);
            }
        }
        masks
    }

    /// Upper bound of the chunks of `segment` that `filter` admits, from the
    /// per-team, per-level counts (exact when documents have one team each).
    pub fn estimate_visible(&self, segment: usize, filter: &Filter) -> usize {
        let counts = &self.counts[segment];
        let mut total = 0usize;
        for bit in filter.team_bits() {
            if let Some(per_level) = counts.get(bit as usize) {
                total += per_level[..=(filter.max_level().min(3) as usize)]
                    .iter()
                    .map(|&c| c as usize)
                    .sum::<usize>();
            }
        }
        total.min(self.segments[segment].len())
    }

    /// Reads the whole of every segment and checks its checksums.
    pub fn verify(&self) -> Result<(), StoreError> {
        for s in &self.segments {
            s.verify()?;
        }
        Ok(())
    }
}

/// Access arrays and planner statistics of one snapshot.
struct AccessData {
    teams: TeamTable,
    acl: Vec<AclTable>,
    counts: Vec<Vec<[u32; 4]>>,
    live: usize,
}

/// Builds per-segment access arrays and counts from the document table.
fn build_acl(segments: &[Arc<Segment>], docs: &DocTable) -> Result<AccessData, StoreError> {
    let mut teams = TeamTable::new();
    for d in docs.iter() {
        if let Some(a) = &d.access {
            for t in &a.teams {
                teams.intern(t);
            }
        }
    }
    let pos: HashMap<&str, usize> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name(), i))
        .collect();
    let mut acl: Vec<AclTable> = segments
        .iter()
        .map(|s| AclTable::new(s.len(), teams.words()))
        .collect();
    let mut counts: Vec<Vec<[u32; 4]>> = segments
        .iter()
        .map(|_| vec![[0u32; 4]; teams.len()])
        .collect();
    let mut live = 0usize;
    for d in docs.iter() {
        if d.n_chunks == 0 {
            continue;
        }
        let s = *pos.get(d.segment.as_str()).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "document {} refers to missing segment {}",
                d.path, d.segment
            ))
        })?;
        let seg = &segments[s];
        let start = seg.local(d.first_chunk);
        let last = seg.local(d.first_chunk + d.n_chunks as u64 - 1);
        let (Some(start), Some(last)) = (start, last) else {
            return Err(StoreError::Corrupt(format!(
                "chunks of {} are not in segment {}",
                d.path, d.segment
            )));
        };
        if last + 1 - start != d.n_chunks as usize {
            return Err(StoreError::Corrupt(format!(
                "chunks of {} are not contiguous in segment {}",
                d.path, d.segment
            )));
        }
        acl[s].set(start, &teams, d.access.as_ref());
        for row in start + 1..=last {
            acl[s].copy_entry(start, row);
        }
        if let Some(a) = &d.access {
            for t in &a.teams {
                if let Some(bit) = teams.get(t) {
                    counts[s][bit as usize][a.classification.level() as usize] += d.n_chunks;
                }
            }
        }
        live += d.n_chunks as usize;
    }
    Ok(AccessData {
        teams,
        acl,
        counts,
        live,
    })
}

fn open_segments(
    dir: &Path,
    metas: &[SegmentMeta],
    reuse: Option<&Snapshot>,
) -> Result<Vec<Arc<Segment>>, StoreError> {
    let seg_dir = dir.join(SEGMENTS);
    metas
        .iter()
        .map(|m| {
            if let Some(s) = reuse.and_then(|p| p.segments.iter().find(|s| s.name() == m.name)) {
                return Ok(s.clone());
            }
            Segment::open(&seg_dir, &m.name).map(Arc::new)
        })
        .collect()
}

/// Loads the snapshot of the latest complete commit, following the same
/// roll-forward rule as the writer (without writing anything).
fn load_snapshot(
    dir: &Path,
    keyword: &Arc<KeywordIndex>,
    reuse: Option<&Snapshot>,
) -> Result<Snapshot, StoreError> {
    let mut last_err = String::new();
    for attempt in 0..100 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let committed = Manifest::read(&dir.join(manifest::FILE))?;
        let pending = Manifest::read(&dir.join(manifest::PENDING))?;
        let Some((searcher, kgen)) = keyword.searcher()? else {
            last_err = "keyword index commit in progress".into();
            continue;
        };
        let m = match (committed, pending) {
            (Some(m), _) if m.generation == kgen => m,
            (_, Some(p)) if p.generation == kgen => p,
            (None, None) => return Err(StoreError::NotFound(dir.to_path_buf())),
            (m, _) => {
                last_err = format!(
                    "keyword index at generation {kgen}, manifest at {}",
                    m.map(|m| m.generation).unwrap_or(0)
                );
                continue;
            }
        };
        let segments = match open_segments(dir, &m.segments, reuse) {
            Ok(s) => s,
            // A concurrent commit may have removed files of an older generation.
            Err(e) if e.is_not_found() => {
                last_err = e.to_string();
                continue;
            }
            Err(e) => return Err(e),
        };
        let docs = match &m.docs_file {
            None => DocTable::default(),
            Some(f) => match DocTable::load(&dir.join(f)) {
                Ok(d) => d,
                Err(e) if e.is_not_found() => {
                    last_err = e.to_string();
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let a = build_acl(&segments, &docs)?;
        return Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest: m,
            segments,
            docs,
            teams: a.teams,
            acl: a.acl,
            counts: a.counts,
            keyword: keyword.clone(),
            searcher,
            live_chunks: a.live,
            access_cache: Mutex::new(HashMap::new()),
        });
    }
    Err(StoreError::Busy(last_err))
}

/// The read side: hands out snapshots and picks up new commits on `refresh`.
/// Readers never take the writer's lock and never wait for it.
pub struct IndexReader {
    dir: PathBuf,
    keyword: Arc<KeywordIndex>,
    current: RwLock<Arc<Snapshot>>,
}

impl IndexReader {
    pub fn open(dir: &Path) -> Result<IndexReader, StoreError> {
        if !dir.join(manifest::FILE).is_file() && !dir.join(manifest::PENDING).is_file() {
            return Err(StoreError::NotFound(dir.to_path_buf()));
        }
        if let Some(m) = Manifest::read(&dir.join(manifest::FILE))? {
            if m.keyword_schema != SCHEMA_VERSION {
                return Err(StoreError::NeedsUpgrade(dir.to_path_buf()));
            }
        }
        let keyword = Arc::new(KeywordIndex::open_or_create(&dir.join(KEYWORD))?);
        let snap = load_snapshot(dir, &keyword, None)?;
        Ok(IndexReader {
            dir: dir.to_path_buf(),
            keyword,
            current: RwLock::new(Arc::new(snap)),
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Switches to the latest commit if there is a newer one. Returns whether it did.
    pub fn refresh(&self) -> Result<bool, StoreError> {
        let cur = self.snapshot();
        let latest = Manifest::read(&self.dir.join(manifest::FILE))?
            .map(|m| m.generation)
            .unwrap_or(0);
        if latest == cur.generation() {
            return Ok(false);
        }
        let snap = Arc::new(load_snapshot(&self.dir, &self.keyword, Some(&cur))?);
        let changed = snap.generation() != cur.generation();
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(p) => *p.into_inner() = snap,
        }
        Ok(changed)
    }
}

/// What compaction did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompactStats {
    pub merged_segments: usize,
    pub dropped_chunks: usize,
}

/// The one writer of an index (an exclusive lock is held while it lives).
pub struct IndexWriter {
    dir: PathBuf,
    _lock: DirLock,
    kw: KeywordWriter,
    manifest: Manifest,
    docs: DocTable,
    segments: HashMap<String, Arc<Segment>>,
    new_segments: Vec<SegmentMeta>,
    dirty: bool,
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
            Err(e) => {
                tracing::warn!("keyword index unreadable ({e}); rebuilding it from the segments");
                std::fs::remove_dir_all(&kw_dir).map_err(|e| StoreError::io(&kw_dir, e))?;
                rebuild = true;
                KeywordIndex::open_or_create(&kw_dir)?
            }
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
                if kgen != cgen {
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
                if m.embedder != embedder || m.dim as usize != dim {
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
            _lock: lock,
            kw,
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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn docs(&self) -> &DocTable {
        &self.docs
    }

    /// True when the committed index was chunked with other parameters.
    pub fn chunker_changed(&self) -> bool {
        self.manifest.generation > 0 && self.manifest.chunker != self.chunker
    }

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

    /// Live chunk count per segment name.
    fn live_per_segment(&self) -> HashMap<&str, usize> {
        let mut live: HashMap<&str, usize> = HashMap::new();
        for d in self.docs.iter() {
            *live.entry(d.segment.as_str()).or_default() += d.n_chunks as usize;
        }
        live
    }

    /// Rewrites segments that are mostly dead, and merges small ones when
    /// there are too many. Vectors are copied, never re-embedded; chunk ids
    /// stay the same, so the keyword index is untouched.
    pub fn compact(&mut self, force: bool) -> Result<CompactStats, StoreError> {
        let live = self.live_per_segment();
        let mut all: Vec<(String, usize, usize)> = self
            .manifest
            .segments
            .iter()
            .chain(self.new_segments.iter())
            .filter_map(|m| {
                let l = live.get(m.name.as_str()).copied().unwrap_or(0);
                (l > 0).then(|| (m.name.clone(), l, m.chunks as usize))
            })
            .collect();
        let mut pick: BTreeSet<String> = BTreeSet::new();
        if force {
            pick.extend(all.iter().map(|s| s.0.clone()));
        } else {
            for (name, l, total) in &all {
                if (*l as f64) < MIN_LIVE_RATIO * *total as f64 {
                    pick.insert(name.clone());
                }
            }
            if all.len() > MAX_SEGMENTS {
                all.sort_by_key(|s| s.1);
                let excess = all.len() - MAX_SEGMENTS + 1;
                pick.extend(all.iter().take(excess.max(2)).map(|s| s.0.clone()));
            }
        }
        let dead: usize = all
            .iter()
            .filter(|s| pick.contains(&s.0))
            .map(|s| s.2 - s.1)
            .sum();
        if pick.is_empty() || (pick.len() == 1 && dead == 0) {
            return Ok(CompactStats::default());
        }
        let mut docs: Vec<DocRecord> = self
            .docs
            .iter()
            .filter(|d| d.n_chunks > 0 && pick.contains(&d.segment))
            .cloned()
            .collect();
        docs.sort_by_key(|d| d.first_chunk);
        let dim = self.manifest.dim as usize;
        let mut b = SegmentBuilder::new(dim);
        let mut moved = Vec::with_capacity(docs.len());
        for d in &docs {
            let seg = self
                .segments
                .get(&d.segment)
                .ok_or_else(|| StoreError::Corrupt(format!("missing segment {}", d.segment)))?
                .clone();
            let first_page = b.page_count() as u32;
            for p in d.first_page..d.first_page + d.n_pages {
                b.add_page(seg.page_no(p), seg.page_text(p)?);
            }
            let vecs = seg.vectors();
            for id in d.chunk_ids() {
                let row = seg
                    .local(id)
                    .ok_or_else(|| StoreError::Corrupt(format!("chunk {id} missing")))?;
                let mut rec = seg.chunk(row);
                if rec.page_idx < d.first_page || rec.page_idx >= d.first_page + d.n_pages {
                    return Err(StoreError::Corrupt(format!("chunk {id} outside its pages")));
                }
                rec.page_idx = rec.page_idx - d.first_page + first_page;
                b.add_chunk(id, rec, vecs.get(row))?;
            }
            moved.push((d.id, first_page));
        }
        let name = self.write_segment(b)?;
        for (id, first_page) in moved {
            if let Some(d) = self.docs.get_mut(id) {
                d.segment = name.clone();
                d.first_page = first_page;
            }
        }
        self.dirty = true;
        Ok(CompactStats {
            merged_segments: pick.len(),
            dropped_chunks: dead,
        })
    }
}

#[cfg(test)]
mod tests;
