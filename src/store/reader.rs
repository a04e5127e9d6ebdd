//! The read side of the embedded index: [`IndexReader`] hands out
//! [`Snapshot`]s — one consistent generation each — and picks up new commits
//! on `refresh`. Readers never take the writer's lock and never wait for it;
//! they follow the writer's roll-forward rule without writing anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tantivy::Searcher;

use super::access::build_acl;
use super::docfilter::CompiledDocFilter;
use super::docs::{DocRecord, DocTable};
use super::keyword::{AccessBits, KeywordIndex, SCHEMA_VERSION};
use super::manifest::{self, Manifest, SegmentMeta};
use super::segment::Segment;
use super::{StoreError, KEYWORD, SEGMENTS};
use crate::acl::{AclTable, Filter, Principal, TeamTable};

/// One consistent generation of the index, as a query sees it: mapped
/// segments, the document table, access arrays and a tantivy searcher, all
/// of the same commit. Cheap to share (`Arc`), never changes.
pub struct Snapshot {
    pub(super) dir: PathBuf,
    /// The manifest of this generation.
    pub manifest: Manifest,
    /// Its segments.
    pub segments: Vec<Arc<Segment>>,
    /// Its documents.
    pub docs: DocTable,
    /// Teams named by its rules.
    pub teams: TeamTable,
    pub(super) acl: Vec<AclTable>,
    /// Per segment, per team bit: chunk counts by level (the planner's statistics).
    pub(super) counts: Vec<Vec<[u32; 4]>>,
    pub(super) keyword: Arc<KeywordIndex>,
    pub(super) searcher: Searcher,
    pub(super) live_chunks: usize,
    pub(super) access_cache: Mutex<HashMap<(Vec<u64>, u8), AccessBits>>,
}

/// Distinct access filters whose keyword bitsets a snapshot keeps (one per
/// team combination and clearance in use; cleared when full).
const ACCESS_CACHE_ENTRIES: usize = 256;

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
    /// Index of the segment.
    pub segment: usize,
    /// Row in the segment.
    pub row: usize,
}

impl Snapshot {
    /// The commit generation.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Chunks that belong to a live document.
    pub fn live_chunks(&self) -> usize {
        self.live_chunks
    }

    /// The access table of segment `segment`.
    pub fn acl(&self, segment: usize) -> &AclTable {
        &self.acl[segment]
    }

    /// `principal`'s access compiled against this snapshot's teams.
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

    /// Where a chunk is stored.
    pub fn locate(&self, chunk_id: u64) -> Option<ChunkLoc> {
        self.segments
            .iter()
            .enumerate()
            .find_map(|(s, seg)| seg.local(chunk_id).map(|row| ChunkLoc { segment: s, row }))
    }

    /// Keyword search with the access filter (and a metadata filter) as query clauses.
    pub fn keyword_search_filtered(
        &self,
        query: &super::keyword::KeywordQuery,
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
        if let Some(b) = crate::sync::lock(&self.access_cache).get(&key) {
            return Ok(b.clone());
        }
        let bits = self.keyword.access_bits(&self.searcher, filter)?;
        let mut cache = crate::sync::lock(&self.access_cache);
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
        let query = super::keyword::KeywordQuery::of(query);
        self.keyword
            .search_invisible(&self.searcher, &query, filter, limit)
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
    /// Opens the index at `dir` (a reader never blocks the writer).
    pub fn open(dir: &Path) -> Result<IndexReader, StoreError> {
        if !dir.join(manifest::FILE).is_file() && !dir.join(manifest::PENDING).is_file() {
            return Err(StoreError::NotFound(dir.to_path_buf()));
        }
        if let Some(m) = Manifest::read(&dir.join(manifest::FILE))? {
            if m.keyword_schema != SCHEMA_VERSION {
                return Err(StoreError::NeedsUpgrade(dir.to_path_buf()));
            }
        }
        let keyword = Arc::new(KeywordIndex::open(&dir.join(KEYWORD))?);
        let snap = load_snapshot(dir, &keyword, None)?;
        Ok(IndexReader {
            dir: dir.to_path_buf(),
            keyword,
            current: RwLock::new(Arc::new(snap)),
        })
    }

    /// The newest snapshot this reader loaded.
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
