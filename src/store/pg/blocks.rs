//! Keyword postings as blocks: one row per (field, term) holding all of the
//! term's postings in a compact byte string, read in a handful of rows and
//! scored here, beside `chunk_terms` (one row per posting), which stays the
//! source of truth and the write path's table.
//!
//! Why: a posting per row costs PostgreSQL a tuple visit, an aggregate step
//! and a join per posting. A five-word question over 100,000 chunks touches
//! ~20,000 of them and took 8 ms that way (walking only each term's best
//! postings, which also cost exactness); the same postings as a few byte
//! strings are read and decoded in well under a millisecond, and the exact
//! top k is found from them without scoring every posting of a frequent
//! word ([`Scorer`]).
//!
//! Blocks are built by compaction ([`compact`]), as an index merges its
//! segments: they cover every chunk up to `upto`, the highest chunk id when
//! they were built. What changed since is read from `chunk_terms` itself
//! (the delta, through two `(field, term, chunk_id)` indexes): chunks above
//! `upto`, and postings marked `moved` (to another access set, by a rule
//! change). Chunks whose postings in a block no longer hold, deleted or
//! moved, are listed in `term_block_dead` by the transaction that changes
//! them. A search reads blocks, delta and that list in one snapshot (one
//! statement when it keeps every block it needs, else a repeatable-read
//! transaction), so a compaction committing meanwhile is never half seen,
//! and a block's stale access set is never trusted: a moved chunk is
//! skipped in the block and scored from its new rows.
//!
//! Compaction and writers exclude each other through one advisory lock:
//! every write transaction holds it shared from its first statement,
//! compaction takes it alone. Chunk ids come from a sequence, so while
//! compaction holds the lock no chunk at or below `upto` can appear.
//!
//! These are chunk ids and scores only: texts are read under row-level
//! security afterwards, so a mistake here could cost a rank, never disclose
//! text.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tokio_postgres::types::ToSql;

use super::{col, Access, Conn, Ctx, PgError};

/// The block encoding's version (first byte of every block).
const FORMAT: u8 = 1;

/// The advisory lock writers share and compaction takes alone.
pub(crate) const LOCK_KEY: i64 = 0x686f_7274_626c; // "hortbl"

/// Chunks changed since the last compaction (new, deleted or moved) from
/// which a writer's commit compacts again, unless they are fewer than a
/// tenth of all chunks: the delta is read posting by posting, so it is kept
/// small, and a compaction rewrites every block, so it is not run for a
/// few documents.
pub(crate) const COMPACT_MIN: i64 = 2_000;

/// Retired chunks from which a commit compacts whatever their share: each
/// search reads their ids (to skip them in blocks).
pub(crate) const DEAD_MAX: i64 = 10_000;

/// Postings read per cursor fetch while compacting.
const FETCH: i64 = 100_000;

/// Blocks written per insert statement while compacting (and at most this
/// many bytes).
const WRITE_ROWS: usize = 2_000;
const WRITE_BYTES: usize = 16 << 20;

/// One posting as a block holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Posting {
    pub chunk: i64,
    pub tf: u32,
    pub len: u32,
    pub acl: u32,
}

/// Builds one block: postings in increasing chunk order, each as the gap to
/// the previous chunk id, tf, length and access set, as LEB128 varints.
#[derive(Debug, Default)]
pub(crate) struct BlockWriter {
    buf: Vec<u8>,
    last: i64,
}

impl BlockWriter {
    pub(crate) fn new() -> BlockWriter {
        BlockWriter {
            buf: vec![FORMAT],
            last: 0,
        }
    }

    pub(crate) fn push(&mut self, p: Posting) -> Result<(), PgError> {
        if p.chunk <= self.last && self.buf.len() > 1 || p.chunk < 0 {
            return Err(PgError::Mismatch(format!(
                "postings out of order while compacting (chunk {} after {})",
                p.chunk, self.last
            )));
        }
        put_varint(&mut self.buf, (p.chunk - self.last) as u64);
        put_varint(&mut self.buf, p.tf as u64);
        put_varint(&mut self.buf, p.len as u64);
        put_varint(&mut self.buf, p.acl as u64);
        self.last = p.chunk;
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.len() <= 1
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint at `*at`, or `None` if the bytes end or run too long.
#[inline]
fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Calls `f` for every posting of `block`; a block that does not decode is
/// an error (never a panic, never a partial silent read).
pub(crate) fn decode(block: &[u8], mut f: impl FnMut(Posting)) -> Result<(), PgError> {
    let bad = || PgError::Mismatch("a keyword postings block does not decode".into());
    match block.first() {
        Some(&FORMAT) => {}
        Some(v) => {
            return Err(PgError::Mismatch(format!(
                "a keyword postings block of format {v}; this hort reads {FORMAT}"
            )))
        }
        None => return Err(bad()),
    }
    let (mut at, mut chunk) = (1usize, 0i64);
    while at < block.len() {
        let mut next = || get_varint(block, &mut at).ok_or_else(bad);
        let gap = next()?;
        let (tf, len, acl) = (next()?, next()?, next()?);
        chunk = i64::try_from(gap)
            .ok()
            .and_then(|g| chunk.checked_add(g))
            .ok_or_else(bad)?;
        let small = |v: u64| u32::try_from(v).map_err(|_| bad());
        f(Posting {
            chunk,
            tf: small(tf)?,
            len: small(len)?,
            acl: small(acl)?,
        });
    }
    Ok(())
}

/// A term's block, decoded: its postings as columns, in chunk order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Decoded {
    chunk: Vec<i64>,
    tf: Vec<u32>,
    len: Vec<u32>,
    acl: Vec<u32>,
    /// The (tf, length) pairs of its postings that no other beats on both
    /// (more occurrences, shorter chunk), most occurrences first: the
    /// posting that scores highest, whatever the corpus statistics, is
    /// among them, so they bound what the block can add to a chunk.
    front: Vec<(u32, u32)>,
    /// Its postings grouped by access set, built the first time a search
    /// that sees few of them needs it (see [`Decoded::admitted`]).
    by_acl: std::sync::OnceLock<AclRuns>,
}

/// A block's postings grouped by access set: `pos[start[i]..start[i + 1]]`
/// are the positions (in chunk order) of the postings of set `acl[i]`.
#[derive(Debug, Default, PartialEq)]
struct AclRuns {
    acl: Vec<u32>,
    start: Vec<u32>,
    pos: Vec<u32>,
}

impl AclRuns {
    fn of(acl: &[u32]) -> AclRuns {
        // Access set ids are small and dense: slots by array, by map only
        // for odd ids.
        let max = acl.iter().copied().max().unwrap_or(0) as usize;
        let is_dense = max < 4 * acl.len() + 1024;
        let mut sets: Vec<u32> = if is_dense {
            let mut seen = vec![false; max + 1];
            for &a in acl {
                seen[a as usize] = true;
            }
            (0..=max as u32).filter(|&a| seen[a as usize]).collect()
        } else {
            let mut v = acl.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        };
        sets.shrink_to_fit();
        let dense: Option<Vec<u32>> = is_dense.then(|| {
            let mut d = vec![0u32; max + 1];
            for (i, &a) in sets.iter().enumerate() {
                d[a as usize] = i as u32;
            }
            d
        });
        let map: FxHashMap<u32, usize> = match dense {
            Some(_) => FxHashMap::default(),
            None => sets.iter().enumerate().map(|(i, &a)| (a, i)).collect(),
        };
        let slot = |a: u32| -> usize {
            match &dense {
                Some(d) => d[a as usize] as usize,
                None => map.get(&a).copied().unwrap_or(0),
            }
        };
        let mut start = vec![0u32; sets.len() + 1];
        for &a in acl {
            start[slot(a) + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut pos = vec![0u32; acl.len()];
        for (i, &a) in acl.iter().enumerate() {
            let s = slot(a);
            pos[next[s] as usize] = i as u32;
            next[s] += 1;
        }
        AclRuns {
            acl: sets,
            start,
            pos,
        }
    }
}

/// Blocks of fewer postings are always scored whole.
const FILTER_MIN_POSTINGS: usize = 1024;

impl Decoded {
    fn of(block: &[u8]) -> Result<Decoded, PgError> {
        // About 5 bytes a posting.
        let n = block.len() / 4;
        let mut d = Decoded {
            chunk: Vec::with_capacity(n),
            tf: Vec::with_capacity(n),
            len: Vec::with_capacity(n),
            acl: Vec::with_capacity(n),
            front: Vec::new(),
            by_acl: std::sync::OnceLock::new(),
        };
        decode(block, |p| {
            d.chunk.push(p.chunk);
            d.tf.push(p.tf);
            d.len.push(p.len);
            d.acl.push(p.acl);
        })?;
        d.chunk.shrink_to_fit();
        d.tf.shrink_to_fit();
        d.len.shrink_to_fit();
        d.acl.shrink_to_fit();
        d.front = front(&d.tf, &d.len);
        Ok(d)
    }

    /// Postings in it.
    pub(crate) fn len(&self) -> usize {
        self.chunk.len()
    }

    /// Memory it holds (its postings grouped by access set counted
    /// whether built yet or not).
    fn bytes(&self) -> usize {
        self.chunk.len() * 24 + self.front.len() * 8 + std::mem::size_of::<Decoded>()
    }

    /// Its postings that `admit` lets through, as a block of their own, if
    /// they are few (a quarter or less) in a block of `min` postings or
    /// more; else `None` (the block is scored whole).
    ///
    /// Why: a principal who sees 0.1 % of a million chunks found no ten
    /// chunks early enough for the weak blocks to be skipped, so every
    /// posting of every word was a candidate (8 ms where tantivy, which
    /// intersects with the visible set, took 2). Grouped by access set once
    /// per kept block, the visible postings are gathered in time of their
    /// number.
    fn admitted(&self, admit: &Admit, min: usize) -> Option<Decoded> {
        let n = self.chunk.len();
        if n < min.max(1) {
            return None;
        }
        let runs = self.by_acl.get_or_init(|| AclRuns::of(&self.acl));
        let chosen: Vec<std::ops::Range<usize>> = runs
            .acl
            .iter()
            .enumerate()
            .filter(|(_, &a)| admit.acl(a))
            .map(|(i, _)| runs.start[i] as usize..runs.start[i + 1] as usize)
            .collect();
        let count: usize = chosen.iter().map(|r| r.len()).sum();
        if count * 4 > n {
            return None;
        }
        // The chosen runs merged into chunk order: positions are in chunk
        // order, so marking them and reading the marks back merges them.
        let positions: Vec<u32> = if chosen.len() == 1 {
            runs.pos[chosen[0].clone()].to_vec()
        } else {
            let mut marks = vec![0u64; n.div_ceil(64)];
            for r in &chosen {
                for &p in &runs.pos[r.clone()] {
                    marks[p as usize / 64] |= 1 << (p % 64);
                }
            }
            let mut out = Vec::with_capacity(count);
            for (w, &m) in marks.iter().enumerate() {
                let mut m = m;
                while m != 0 {
                    out.push((w * 64) as u32 + m.trailing_zeros());
                    m &= m - 1;
                }
            }
            out
        };
        let mut d = Decoded {
            chunk: Vec::with_capacity(count),
            tf: Vec::with_capacity(count),
            len: Vec::with_capacity(count),
            acl: Vec::with_capacity(count),
            ..Decoded::default()
        };
        for p in positions {
            let p = p as usize;
            d.chunk.push(self.chunk[p]);
            d.tf.push(self.tf[p]);
            d.len.push(self.len[p]);
            d.acl.push(self.acl[p]);
        }
        d.front = front(&d.tf, &d.len);
        Some(d)
    }

    /// The most one of its postings can add to a chunk's score.
    fn bound(&self, weights: &[(f64, f64)]) -> f64 {
        self.front
            .iter()
            .map(|&(tf, len)| part(weights, tf, len))
            .fold(0.0, f64::max)
    }
}

/// The pairs of `tf` and `len` (parallel) that no other pair beats on both
/// counts (higher tf, shorter length), tf descending.
fn front(tf: &[u32], len: &[u32]) -> Vec<(u32, u32)> {
    // The shortest length per tf: most tfs are small, kept in an array.
    const SMALL: usize = 256;
    let mut small = [None::<u32>; SMALL];
    let mut large: FxHashMap<u32, u32> = FxHashMap::default();
    for (&t, &l) in tf.iter().zip(len) {
        match small.get_mut(t as usize) {
            Some(s) => *s = Some(s.map_or(l, |s| s.min(l))),
            None => {
                let s = large.entry(t).or_insert(l);
                *s = (*s).min(l);
            }
        }
    }
    let mut pairs: Vec<(u32, u32)> = large.into_iter().collect();
    pairs.extend(
        small
            .iter()
            .enumerate()
            .filter_map(|(t, l)| Some((t as u32, (*l)?))),
    );
    pairs.sort_unstable_by_key(|p| std::cmp::Reverse(p.0));
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (t, l) in pairs {
        if out.last().is_none_or(|&(_, shortest)| l < shortest) {
            out.push((t, l));
        }
    }
    out
}

/// Decoded blocks a node keeps between searches (`[store]
/// keyword_cache_mb`), the least recently used going first.
///
/// Why: blocks change only when a compaction rebuilds them all, while a
/// search of common words read and decoded half a megabyte of them each
/// time (1.4 ms of reading and 0.8 ms of decoding of a 2.3 ms keyword search
/// at 100,000 chunks; at 1M a frequent word's block is 3.5 MB, 10–15 ms to
/// read and more to decode). The blocks every question needs are the
/// frequent words', the largest: kept first in first out, they were the ones
/// pushed out again and again (searches of 130 ms among ones of 15 at 1M),
/// so the order is by last use. Every block kept belongs to one compaction,
/// named by the random `generation` it wrote into `term_block_state`; a
/// search reads the current generation in its snapshot and, if it differs
/// from the kept one, is made again reading every block, so it never mixes
/// two. The delta, the retired chunks and the statistics are read every
/// time.
pub(crate) struct BlockCache {
    budget: usize,
    kept: std::sync::Mutex<Kept>,
    /// The job reading the largest blocks ahead of searches ([`largest`]).
    pub(crate) warming: super::warm::Warming,
    /// The compaction whose blocks that job last kept.
    warmed: std::sync::Mutex<Option<i64>>,
}

#[derive(Default)]
struct Kept {
    generation: Option<i64>,
    /// Each block with the tick of its last use.
    blocks: HashMap<(i16, String), (Arc<Decoded>, u64)>,
    /// (key, tick) of every use, oldest first; a record whose tick is no
    /// longer its block's is stale and skipped.
    order: VecDeque<((i16, String), u64)>,
    tick: u64,
    bytes: usize,
}

impl Kept {
    /// Marks `key` as used now.
    fn touch(&mut self, key: &(i16, String)) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.blocks.get_mut(key) {
            entry.1 = tick;
            self.order.push_back((key.clone(), tick));
        }
        // Stale records are dropped once they outnumber the blocks.
        if self.order.len() > 2 * self.blocks.len() + 64 {
            let blocks = &self.blocks;
            self.order
                .retain(|(k, t)| blocks.get(k).is_some_and(|(_, last)| last == t));
        }
    }

    /// Forgets the least recently used block; false if none is kept.
    fn evict(&mut self) -> bool {
        while let Some((key, tick)) = self.order.pop_front() {
            if self.blocks.get(&key).is_some_and(|(_, last)| *last == tick) {
                if let Some((gone, _)) = self.blocks.remove(&key) {
                    self.bytes -= kept_size(&key, &gone);
                }
                return true;
            }
        }
        false
    }
}

/// What a kept block costs the budget: its postings and its key (an absent
/// word's empty block is mostly key).
fn kept_size(key: &(i16, String), d: &Decoded) -> usize {
    d.bytes() + key.1.len() + std::mem::size_of::<(i16, String)>()
}

impl BlockCache {
    /// A cache of at most `budget` bytes (0: keeps nothing).
    pub(crate) fn new(budget: usize) -> BlockCache {
        BlockCache {
            budget,
            kept: std::sync::Mutex::new(Kept::default()),
            warming: Default::default(),
            warmed: Default::default(),
        }
    }

    /// Bytes it may hold.
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Blocks it holds.
    pub(crate) fn held(&self) -> usize {
        crate::sync::lock(&self.kept).blocks.len()
    }

    /// Whether the largest blocks of the current compaction should be read
    /// ahead: never yet, or a compaction has replaced the ones read.
    pub(crate) fn wants_warming(&self) -> bool {
        let warmed = *crate::sync::lock(&self.warmed);
        self.budget > 0 && (warmed.is_none() || warmed != self.generation())
    }

    /// The generation of the kept blocks and, for each of `keys`, its
    /// block if kept (which counts as a use).
    fn get(&self, keys: &[(i16, String)]) -> (Option<i64>, Vec<Option<Arc<Decoded>>>) {
        let mut kept = crate::sync::lock(&self.kept);
        let blocks = keys
            .iter()
            .map(|k| {
                let d = kept.blocks.get(k).map(|(d, _)| d.clone());
                if d.is_some() {
                    kept.touch(k);
                }
                d
            })
            .collect();
        (kept.generation, blocks)
    }

    /// The compaction whose blocks are kept, if any.
    pub(crate) fn generation(&self) -> Option<i64> {
        crate::sync::lock(&self.kept).generation
    }

    /// Keeps `read`, blocks of compaction `generation` (forgetting those of
    /// any other), the least recently used going first when over budget.
    fn put(&self, generation: i64, read: Vec<((i16, String), Arc<Decoded>)>) {
        self.keep(generation, read, true);
    }

    /// Keeps the blocks read ahead of searches ([`largest`]), most useful
    /// last (the least recently used go first); nothing if the kept blocks
    /// already belong to another compaction (a search has seen a newer one
    /// than the job read: the next search starts the job again).
    pub(crate) fn warm(&self, generation: i64, read: Vec<((i16, String), Arc<Decoded>)>) -> bool {
        let kept = self.keep(generation, read, false);
        if kept {
            *crate::sync::lock(&self.warmed) = Some(generation);
        }
        kept
    }

    /// [`BlockCache::put`]; if not `replace`, only into blocks of the same
    /// compaction (or none). Whether they were kept.
    fn keep(
        &self,
        generation: i64,
        read: Vec<((i16, String), Arc<Decoded>)>,
        replace: bool,
    ) -> bool {
        if self.budget == 0 {
            return false;
        }
        let mut kept = crate::sync::lock(&self.kept);
        if !replace && kept.generation.is_some_and(|g| g != generation) {
            return false;
        }
        if kept.generation != Some(generation) {
            *kept = Kept {
                generation: Some(generation),
                ..Kept::default()
            };
        }
        for (key, d) in read {
            let size = kept_size(&key, &d);
            if size > self.budget || kept.blocks.contains_key(&key) {
                continue;
            }
            while kept.bytes + size > self.budget && kept.evict() {}
            kept.bytes += size;
            kept.blocks.insert(key.clone(), (d, 0));
            kept.touch(&key);
        }
        true
    }
}

/// Rows read per fetch while reading blocks ahead.
const AHEAD_FETCH: i32 = 256;

/// The current compaction's generation and its largest blocks, decoded, as
/// many as fit `budget` (smallest first, the order [`BlockCache::warm`]
/// wants), read in one snapshot.
///
/// Why: the blocks every question needs are the frequent words', the
/// largest, and a node read each of them on its first search that had the
/// word: at 100,000 chunks every new question paid for a block read
/// (`/v1/search` keyword 2.4 ms against 1.3 kept), and at 1M, right after
/// the database restarted, one read of such a block from disk took
/// 250–510 ms. Read once ahead, in the background, searches find them
/// kept. Ids and counts only, as the owner (module doc).
pub(crate) async fn largest(
    c: &mut Conn,
    budget: usize,
) -> Result<(i64, Vec<((i16, String), Arc<Decoded>)>), PgError> {
    let tx = c.transaction().await.ctx("begin reading blocks ahead")?;
    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .ctx("begin reading blocks ahead")?;
    let generation: i64 = col(
        &tx.query_one("SELECT generation FROM term_block_state", &[])
            .await
            .ctx("read block generation")?,
        0,
    )?;
    // `length` of a stored block reads its size, not its bytes.
    let portal = tx
        .bind(
            "SELECT field, term, postings FROM term_blocks ORDER BY length(postings) DESC, field, term",
            &[],
        )
        .await
        .ctx("read blocks ahead")?;
    let (mut read, mut bytes) = (Vec::new(), 0usize);
    'fetch: loop {
        let rows = tx
            .query_portal(&portal, AHEAD_FETCH)
            .await
            .ctx("read blocks ahead")?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let key: (i16, String) = (col(r, 0)?, col(r, 1)?);
            let d = Decoded::of(col(r, 2)?)?;
            let size = kept_size(&key, &d);
            if bytes + size > budget {
                // The budget is about full: reading on for a smaller block
                // that still fits would read every remaining row.
                break 'fetch;
            }
            bytes += size;
            read.push((key, Arc::new(d)));
        }
    }
    tx.commit().await.ctx("end reading blocks ahead")?;
    read.reverse();
    Ok((generation, read))
}

/// BM25's parameters and the corpus statistics a question is scored with.
#[derive(Debug, Clone)]
pub(crate) struct Bm25 {
    /// Chunks in the corpus (all fields but the compound parts count each
    /// chunk once).
    pub n: f64,
    /// Tokens per field code (0..FIELDS).
    pub tokens: Vec<f64>,
}

impl Bm25 {
    /// The weight of a term (idf × boost × (k1 + 1)) and its length factor
    /// (k1 · b / average length), as the embedded index computes them.
    fn term(&self, field: i16, df: i64, boost: f64) -> (f64, f64) {
        let (k1, b) = (super::postings::K1, super::postings::B);
        let df = df as f64;
        let idf = (1.0 + (self.n - df + 0.5) / (df + 0.5)).ln();
        let tokens = usize::try_from(field)
            .ok()
            .and_then(|f| self.tokens.get(f))
            .copied()
            .unwrap_or(0.0);
        let avg = (tokens / self.n).max(1e-9);
        (boost * idf * (1.0 + k1), k1 * b / avg)
    }
}

/// Which postings count: access sets admitted (or, with `exclude`, the
/// ones not admitted), chunks of blocks no longer valid, and optionally
/// only chunks of some documents.
struct Admit {
    sets: Vec<bool>,
    exclude: bool,
    dead: HashSet<i64>,
    docs: Option<HashSet<i64>>,
}

impl Admit {
    #[inline]
    fn acl(&self, acl: u32) -> bool {
        let listed = self.sets.get(acl as usize).copied().unwrap_or(false);
        listed != self.exclude
    }

    /// Whether `chunk` is inside the metadata filter (all are without one).
    #[inline]
    fn doc(&self, chunk: i64) -> bool {
        self.docs.as_ref().is_none_or(|d| d.contains(&chunk))
    }
}

/// A question: parallel (field, term, boost).
pub(crate) type Question = (Vec<i16>, Vec<String>, Vec<f64>);

/// The best `want` chunks for `q` by BM25 over blocks and delta, with the
/// access sets `access` may read admitted (or, with `exclude`, only those it
/// may not), within `docs` if given: (chunk id, score), best first, ties by
/// chunk id. Blocks of the current compaction that `cache` holds are not
/// read again.
pub(crate) async fn ranked(
    c: &mut Conn,
    cache: &BlockCache,
    access: &Access,
    q: &Question,
    exclude: bool,
    docs: Option<&[i64]>,
    want: usize,
) -> Result<Vec<(i64, f32)>, PgError> {
    // Kept blocks belong to the compaction they were read from; if another
    // has committed since, the read says so and is made again without them
    // (and what it reads replaces them).
    match ranked_with(c, cache, true, access, q, exclude, docs, want).await? {
        Some(top) => Ok(top),
        None => ranked_with(c, cache, false, access, q, exclude, docs, want)
            .await?
            .ok_or_else(|| PgError::Mismatch("keyword blocks changed while read".into())),
    }
}

/// [`ranked`], using the blocks `cache` holds if `use_kept` (else reading
/// every block), and keeping what it reads; `None` if kept blocks were used
/// but belong to another compaction than the one read.
#[allow(clippy::too_many_arguments)]
async fn ranked_with(
    c: &mut Conn,
    cache: &BlockCache,
    use_kept: bool,
    access: &Access,
    q: &Question,
    exclude: bool,
    docs: Option<&[i64]>,
    want: usize,
) -> Result<Option<Vec<(i64, f32)>>, PgError> {
    let mut keys: Vec<(i16, String)> = q.0.iter().copied().zip(q.1.iter().cloned()).collect();
    keys.sort_unstable();
    keys.dedup();
    let (kept_generation, kept) = if use_kept {
        cache.get(&keys)
    } else {
        (None, vec![None; keys.len()])
    };
    let (missing_fields, missing_terms): (Vec<i16>, Vec<String>) = keys
        .iter()
        .zip(&kept)
        .filter(|(_, k)| k.is_none())
        .map(|(k, _)| k.clone())
        .unzip();
    // Everything but the blocks in one statement, planned once per
    // connection (schema/014_keyword_read.sql).
    let head = c
        .prepare_cached("SELECT * FROM hort_keyword_read($1, $2, $3, $4, $5, $6)")
        .await
        .ctx("prepare keyword statistics")?;
    let read_blocks = c
        .prepare_cached(
            "SELECT b.field, b.term, b.postings FROM term_blocks b
             JOIN (SELECT DISTINCT * FROM unnest($1::int2[], $2::text[])) q(field, term)
               ON b.field = q.field AND b.term = q.term",
        )
        .await
        .ctx("prepare keyword blocks")?;
    let head_args: [&(dyn ToSql + Sync); 6] = [
        &access.teams,
        &access.clearance,
        &q.0,
        &q.1,
        &exclude,
        &docs,
    ];
    let block_args: [&(dyn ToSql + Sync); 2] = [&missing_fields, &missing_terms];
    // Every block kept (the steady state: words the corpus lacks are kept
    // too, as empty blocks): one statement, its own snapshot; a transaction
    // around it cost 0.2 ms more. Else the blocks are read beside it in
    // one repeatable-read snapshot, so that a compaction committing
    // meanwhile is never half seen. As the owner either way: ids and
    // counts only (module doc).
    let (head, blocks) = if missing_terms.is_empty() {
        let row = c
            .query_one(&head, &head_args)
            .await
            .ctx("read keyword statistics")?;
        (row, Vec::new())
    } else {
        let mut rows = access
            .pipelined(
                c,
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                true,
                "",
                &[(&head, &head_args[..]), (&read_blocks, &block_args[..])],
            )
            .await?
            .into_iter();
        let head = rows
            .next()
            .and_then(|r| r.into_iter().next())
            .ok_or_else(|| PgError::Mismatch("keyword statistics: no row".into()))?;
        (head, rows.next().unwrap_or_default())
    };

    let generation: i64 = col(&head, 6)?;
    if kept.iter().any(Option::is_some) && kept_generation != Some(generation) {
        return Ok(None);
    }
    let sets: Vec<i32> = col(&head, 0)?;
    let dfs: Vec<i64> = col(&head, 1)?;
    let fields: Vec<i16> = col(&head, 2)?;
    let tokens: Vec<i64> = col(&head, 3)?;
    let n: i64 = col(&head, 4)?;
    let dead: Vec<i64> = col(&head, 5)?;
    let chunks: Option<Vec<i64>> = col(&head, 7)?;
    let delta_fields: Vec<i16> = col(&head, 8)?;
    let delta_terms: Vec<String> = col(&head, 9)?;
    let delta_chunks: Vec<i64> = col(&head, 10)?;
    let delta_tf: Vec<i32> = col(&head, 11)?;
    let delta_len: Vec<i32> = col(&head, 12)?;
    let delta = delta_chunks.len();
    if [
        delta_fields.len(),
        delta_terms.len(),
        delta_tf.len(),
        delta_len.len(),
    ]
    .iter()
    .any(|&l| l != delta)
    {
        return Err(PgError::Mismatch(
            "keyword delta: columns differ in length".into(),
        ));
    }
    let mut per_field = vec![0.0; super::postings::FIELDS];
    for (f, t) in fields.iter().zip(&tokens) {
        if let Some(slot) = usize::try_from(*f).ok().and_then(|f| per_field.get_mut(f)) {
            *slot = *t as f64;
        }
    }
    let stats = Bm25 {
        n: n.max(1) as f64,
        tokens: per_field,
    };
    let mut admit = Admit {
        sets: Vec::new(),
        exclude,
        dead: dead.into_iter().collect(),
        docs: chunks.map(|c| c.into_iter().collect()),
    };
    for s in sets {
        if let Ok(i) = usize::try_from(s) {
            if admit.sets.len() <= i {
                admit.sets.resize(i + 1, false);
            }
            admit.sets[i] = true;
        }
    }
    let mut read = Vec::with_capacity(missing_terms.len());
    for r in &blocks {
        let (field, term): (i16, String) = (col(r, 0)?, col(r, 1)?);
        read.push(((field, term), Arc::new(Decoded::of(col(r, 2)?)?)));
    }
    // A word no block holds has no postings up to `upto` in this
    // compaction (later ones are in the delta): kept as an empty block, so
    // that a question with a word the corpus lacks is answered from kept
    // blocks too.
    let absent: Vec<(i16, String)> = missing_fields
        .into_iter()
        .zip(missing_terms)
        .filter(|k| !read.iter().any(|(r, _)| r == k))
        .collect();
    read.extend(
        absent
            .into_iter()
            .map(|k| (k, Arc::new(Decoded::default()))),
    );
    let mut scorer = Scorer::new(&stats, q, &dfs);
    for ((field, term), d) in keys
        .iter()
        .zip(&kept)
        .filter_map(|(k, d)| Some((k, d.as_ref()?)))
    {
        scorer.block(*field, term, d);
    }
    for ((field, term), d) in &read {
        scorer.block(*field, term, d);
    }
    cache.put(generation, read);
    for i in 0..delta {
        let chunk = delta_chunks[i];
        if admit.doc(chunk) {
            let (tf, len) = (delta_tf[i].max(0) as u32, delta_len[i].max(0) as u32);
            scorer.posting(delta_fields[i], &delta_terms[i], chunk, tf, len);
        }
    }
    Ok(Some(scorer.top(&admit, want)))
}

/// The best chunks by BM25 over the question's blocks and delta, found
/// without scoring every posting: MaxScore (Turtle & Flood, as Lucene runs
/// it), exact.
///
/// Why: a frequent word's block holds a posting for most chunks; scoring
/// each of them made a question with two such words cost 70 ms at 1M chunks
/// while its top 50 come from its rare words. Each block has an upper bound
/// of what one of its postings can add ([`Decoded::front`]); once the
/// `want`-th best score found so far beats the summed bounds of the weakest
/// blocks, no chunk found only in those can enter, so candidates come from
/// the other blocks alone and the weak ones are only looked up (by binary
/// search) for candidates that can still make it. The bounds are never
/// below a true score and the cut keeps a margin wider than an `f32`'s
/// rounding, so the result is the exhaustive one, ties by chunk id.
///
/// The delta's chunks are scored exhaustively (they are few) and seed the
/// top: a chunk's postings are all in blocks or all in the delta (chunks
/// above `upto` are in no block; a moved chunk is retired from the blocks
/// and all of its rows are marked moved).
struct Scorer {
    /// Per (field, term): the (weight, length factor) of each time the
    /// question holds it.
    terms: HashMap<i16, HashMap<String, Vec<(f64, f64)>>>,
    /// The question's blocks with their weights.
    blocks: Vec<(Arc<Decoded>, Weights)>,
    /// The delta's chunks, summed.
    delta: FxHashMap<i64, f64>,
    /// Blocks of this many postings or more are narrowed to what the
    /// principal may see when that is little ([`Decoded::admitted`]).
    filter_min: usize,
}

/// The (weight, length factor) of each time a question holds a term.
type Weights = Vec<(f64, f64)>;

/// How far below the `want`-th score a bound must stay for what it bounds
/// to be skipped: scores are ranked as `f32` (relative rounding 6e-8) from
/// `f64` sums added in different orders.
const CUT_MARGIN: f64 = 1e-6;

impl Scorer {
    fn new(stats: &Bm25, q: &Question, dfs: &[i64]) -> Scorer {
        let mut terms: HashMap<i16, HashMap<String, Vec<(f64, f64)>>> = HashMap::new();
        for (i, ((field, term), boost)) in q.0.iter().zip(&q.1).zip(&q.2).enumerate() {
            // A term no chunk holds scores nothing (and has no postings).
            let df = dfs.get(i).copied().unwrap_or(0);
            if df > 0 {
                terms
                    .entry(*field)
                    .or_default()
                    .entry(term.clone())
                    .or_default()
                    .push(stats.term(*field, df, *boost));
            }
        }
        Scorer {
            terms,
            blocks: Vec::new(),
            delta: FxHashMap::default(),
            filter_min: FILTER_MIN_POSTINGS,
        }
    }

    fn weights(&self, field: i16, term: &str) -> Option<&[(f64, f64)]> {
        self.terms.get(&field)?.get(term).map(Vec::as_slice)
    }

    fn block(&mut self, field: i16, term: &str, d: &Arc<Decoded>) {
        if let Some(w) = self.weights(field, term) {
            let w = w.to_vec();
            self.blocks.push((d.clone(), w));
        }
    }

    fn posting(&mut self, field: i16, term: &str, chunk: i64, tf: u32, len: u32) {
        if let Some(v) = self.weights(field, term).map(|w| part(w, tf, len)) {
            *self.delta.entry(chunk).or_default() += v;
        }
    }

    /// The best `want` of the postings `admit` lets through, score
    /// descending, ties by chunk id.
    fn top(self, admit: &Admit, want: usize) -> Vec<(i64, f32)> {
        let mut top = Top::new(want);
        if want == 0 {
            return Vec::new();
        }
        for (&c, &s) in &self.delta {
            top.offer(c, s);
        }
        // Weakest bound first; `below[i]`: the bounds of lists[..i] summed.
        let narrowed: Vec<Option<Decoded>> = self
            .blocks
            .iter()
            .map(|(d, _)| d.admitted(admit, self.filter_min))
            .collect();
        let mut lists: Vec<Cursor> = self
            .blocks
            .iter()
            .zip(&narrowed)
            .map(|((d, w), n)| {
                let d = n.as_ref().unwrap_or(d);
                Cursor {
                    d,
                    w,
                    bound: d.bound(w),
                    at: 0,
                }
            })
            .filter(|c| !c.d.chunk.is_empty())
            .collect();
        lists.sort_by(|a, b| a.bound.total_cmp(&b.bound));
        let mut below = vec![0.0];
        for l in &lists {
            below.push(below[below.len() - 1] + l.bound);
        }
        // lists[..first] can only add to a candidate found in the others:
        // their bounds summed stay below the bar.
        let essential_from = |bar: f64| below[1..].partition_point(|&b| b < bar);
        let mut bar = top.bar();
        let mut first = essential_from(bar);
        while let Some(chunk) = lists[first..].iter().filter_map(Cursor::chunk).min() {
            let mut score = 0.0;
            for l in &mut lists[first..] {
                score += l.take(chunk, admit);
            }
            if admit.dead.contains(&chunk) || !admit.doc(chunk) {
                continue;
            }
            let mut open = true;
            for j in (0..first).rev() {
                if score + below[j + 1] < bar {
                    open = false;
                    break;
                }
                lists[j].seek(chunk);
                score += lists[j].take(chunk, admit);
            }
            if open && score > 0.0 && top.offer(chunk, score) {
                bar = top.bar();
                first = essential_from(bar);
            }
        }
        top.sorted()
    }
}

/// A position in a block while scoring.
struct Cursor<'a> {
    d: &'a Decoded,
    w: &'a [(f64, f64)],
    bound: f64,
    at: usize,
}

impl Cursor<'_> {
    #[inline]
    fn chunk(&self) -> Option<i64> {
        self.d.chunk.get(self.at).copied()
    }

    /// What the posting at the cursor adds to `chunk` if it is that
    /// chunk's (0 if its access set is not admitted), moving past it.
    #[inline]
    fn take(&mut self, chunk: i64, admit: &Admit) -> f64 {
        if self.chunk() != Some(chunk) {
            return 0.0;
        }
        let at = self.at;
        self.at += 1;
        if admit.acl(self.d.acl[at]) {
            part(self.w, self.d.tf[at], self.d.len[at])
        } else {
            0.0
        }
    }

    /// Moves to the first posting at or after `chunk` (galloping: the
    /// candidates a weak block is asked for are far apart).
    fn seek(&mut self, chunk: i64) {
        let c = &self.d.chunk;
        if c.get(self.at).is_none_or(|&x| x >= chunk) {
            return;
        }
        let mut step = 1;
        let mut hi = self.at + 1;
        while hi < c.len() && c[hi] < chunk {
            self.at = hi;
            hi = self.at + step;
            step *= 2;
        }
        let hi = hi.min(c.len());
        self.at += c[self.at..hi].partition_point(|&x| x < chunk);
    }
}

/// The best `want` seen so far, the worst on top of the heap.
struct Top {
    want: usize,
    heap: std::collections::BinaryHeap<Ranked>,
}

/// A scored chunk, ordered worst first: lower score, then higher chunk id.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f32,
    chunk: i64,
}

impl Ord for Ranked {
    fn cmp(&self, o: &Ranked) -> std::cmp::Ordering {
        o.score
            .total_cmp(&self.score)
            .then(self.chunk.cmp(&o.chunk))
    }
}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Ranked) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Ranked {
    fn eq(&self, o: &Ranked) -> bool {
        self.cmp(o).is_eq()
    }
}
impl Eq for Ranked {}

impl Top {
    fn new(want: usize) -> Top {
        Top {
            want,
            heap: std::collections::BinaryHeap::with_capacity(want + 1),
        }
    }

    /// What a chunk's score must reach to possibly enter (0 while fewer
    /// than `want` are held), lowered by [`CUT_MARGIN`].
    fn bar(&self) -> f64 {
        match self.heap.peek() {
            Some(w) if self.heap.len() >= self.want => w.score as f64 * (1.0 - CUT_MARGIN),
            _ => 0.0,
        }
    }

    /// Offers a chunk; whether the `want`-th score may have risen.
    fn offer(&mut self, chunk: i64, score: f64) -> bool {
        let r = Ranked {
            score: score as f32,
            chunk,
        };
        if self.heap.len() < self.want {
            self.heap.push(r);
            return self.heap.len() == self.want;
        }
        match self.heap.peek() {
            Some(worst) if r < *worst => {
                self.heap.pop();
                self.heap.push(r);
                true
            }
            _ => false,
        }
    }

    fn sorted(self) -> Vec<(i64, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| (r.chunk, r.score))
            .collect()
    }
}

/// A posting's share of a chunk's score over every time the question holds
/// its term.
#[inline]
fn part(weights: &[(f64, f64)], tf: u32, len: u32) -> f64 {
    let k = super::postings::K1 * (1.0 - super::postings::B);
    let (tf, len) = (tf as f64, len as f64);
    weights
        .iter()
        .map(|(w, c)| w * tf / (tf + k + c * len))
        .sum()
}

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Compacted {
    /// Whether blocks were rebuilt.
    pub built: bool,
    /// Chunks whose postings were retired from the blocks (deleted or
    /// moved) since the previous compaction.
    pub retired: i64,
    /// Blocks written.
    pub blocks: i64,
}

/// Rebuilds the blocks from `chunk_terms` if enough changed since the last
/// compaction (see [`COMPACT_MIN`]) or if `force`, in one transaction on
/// `c`, which must not be inside one. Waits for running writers and holds
/// new ones back while it runs; readers go on with the previous blocks.
pub(crate) async fn compact(c: &tokio_postgres::Client, force: bool) -> Result<Compacted, PgError> {
    c.batch_execute("BEGIN").await.ctx("begin compaction")?;
    let done = build(c, force).await;
    let end = if done.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = c.batch_execute(end).await.ctx("end compaction");
    let done = done?;
    ended?;
    Ok(done)
}

/// Chunks above the blocks' range, chunks retired from them, all chunks,
/// and the highest chunk id. All chunks are counted only when at least
/// `least` changed (a full count on every commit would cost the write path
/// a scan of the table; below [`COMPACT_MIN`] changes it is not needed).
async fn changes(c: &tokio_postgres::Client, least: i64) -> Result<(i64, i64, i64, i64), PgError> {
    let r = c
        .query_one(
            "WITH s AS (SELECT (SELECT count(*) FROM chunks WHERE id > upto) AS new,
                               (SELECT count(*) FROM term_block_dead) AS dead
                        FROM term_block_state)
             SELECT new, dead,
                    CASE WHEN new + dead >= $1 THEN (SELECT count(*) FROM chunks) ELSE 0 END,
                    (SELECT coalesce(max(id), 0) FROM chunks)
             FROM s",
            &[&least],
        )
        .await
        .ctx("count changed chunks")?;
    Ok((col(&r, 0)?, col(&r, 1)?, col(&r, 2)?, col(&r, 3)?))
}

/// Whether enough changed for a compaction.
fn due(new: i64, dead: i64, total: i64) -> bool {
    let changed = new + dead;
    changed >= COMPACT_MIN && (changed * 10 >= total || dead >= DEAD_MAX)
}

async fn build(c: &tokio_postgres::Client, force: bool) -> Result<Compacted, PgError> {
    // Looked at before the lock, which waits for every running writer:
    // most commits change too little to compact.
    if !force {
        let (new, dead, total, _) = changes(c, COMPACT_MIN).await?;
        if !due(new, dead, total) {
            return Ok(Compacted::default());
        }
    }
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .ctx("lock out writers for compaction")?;
    let (new, dead, total, upto) = changes(c, 0).await?;
    let changed = new + dead;
    let mut out = Compacted {
        retired: dead,
        ..Compacted::default()
    };
    if !force && !due(new, dead, total) {
        // Another node compacted meanwhile.
        return Ok(out);
    }
    let started = std::time::Instant::now();
    if total > 100_000 {
        eprintln!("hort: compacting keyword postings of {total} chunks");
    }
    c.batch_execute(
        "DELETE FROM term_blocks; DELETE FROM term_block_dead;
         UPDATE chunk_terms SET moved = false WHERE moved;
         DECLARE hort_blocks NO SCROLL CURSOR FOR
           SELECT field, term, chunk_id, tf, len, acl FROM chunk_terms
           WHERE term <> '' ORDER BY field, term, chunk_id;",
    )
    .await
    .ctx("start compaction")?;
    let fetch = format!("FETCH {FETCH} FROM hort_blocks");
    let mut out_rows = Pending::default();
    let mut current: Option<(i16, String, BlockWriter)> = None;
    loop {
        let rows = c.query(&fetch, &[]).await.ctx("read postings")?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let (field, term): (i16, &str) = (col(r, 0)?, col(r, 1)?);
            let same = matches!(&current, Some((f, t, _)) if *f == field && t == term);
            if !same {
                if let Some((f, t, w)) = current.take() {
                    out_rows.push(f, t, w);
                }
                current = Some((field, term.to_string(), BlockWriter::new()));
            }
            if let Some((_, _, w)) = current.as_mut() {
                let (chunk, tf, len, acl): (i64, i32, i32, i32) =
                    (col(r, 2)?, col(r, 3)?, col(r, 4)?, col(r, 5)?);
                w.push(Posting {
                    chunk,
                    tf: tf.max(0) as u32,
                    len: len.max(0) as u32,
                    acl: acl.max(0) as u32,
                })?;
            }
        }
        if out_rows.full() {
            out.blocks += out_rows.flush(c).await?;
        }
    }
    if let Some((f, t, w)) = current.take() {
        out_rows.push(f, t, w);
    }
    out.blocks += out_rows.flush(c).await?;
    c.batch_execute("CLOSE hort_blocks")
        .await
        .ctx("end postings read")?;
    c.execute(
        "UPDATE term_block_state SET upto = $1, built_at = now(), generation = floor(random() * 9.2e18)::bigint",
        &[&upto],
    )
    .await
    .ctx("record compaction")?;
    out.built = true;
    tracing::info!(
        chunks = total,
        changed,
        blocks = out.blocks,
        ms = started.elapsed().as_millis() as u64,
        "compacted keyword postings into blocks"
    );
    Ok(out)
}

/// Blocks waiting to be written.
#[derive(Default)]
struct Pending {
    fields: Vec<i16>,
    terms: Vec<String>,
    blocks: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, field: i16, term: String, w: BlockWriter) {
        if w.is_empty() {
            return;
        }
        let b = w.finish();
        self.bytes += b.len();
        self.fields.push(field);
        self.terms.push(term);
        self.blocks.push(b);
    }

    fn full(&self) -> bool {
        self.fields.len() >= WRITE_ROWS || self.bytes >= WRITE_BYTES
    }

    async fn flush(&mut self, c: &tokio_postgres::Client) -> Result<i64, PgError> {
        let n = self.fields.len() as i64;
        // Chunks of the batch limits keep each statement's message bounded.
        while !self.fields.is_empty() {
            let (mut rows, mut bytes) = (0, 0);
            while rows < self.fields.len() && rows < WRITE_ROWS && bytes < WRITE_BYTES {
                bytes += self.blocks[rows].len();
                rows += 1;
            }
            let fields: Vec<i16> = self.fields.drain(..rows).collect();
            let terms: Vec<String> = self.terms.drain(..rows).collect();
            let blocks: Vec<Vec<u8>> = self.blocks.drain(..rows).collect();
            c.execute(
                "INSERT INTO term_blocks (field, term, postings)
                 SELECT * FROM unnest($1::int2[], $2::text[], $3::bytea[])",
                &[&fields, &terms, &blocks],
            )
            .await
            .ctx("write keyword blocks")?;
        }
        self.bytes = 0;
        Ok(n)
    }
}

/// Records that the blocks' postings of document `doc`'s chunks no longer
/// hold (the document is about to be deleted, or moved to another access
/// set); its chunks above the blocks' range need nothing.
pub(crate) async fn retire(c: &tokio_postgres::Client, doc: i64) -> Result<(), PgError> {
    c.execute(
        "INSERT INTO term_block_dead (chunk_id)
         SELECT k.id FROM chunks k, term_block_state s WHERE k.doc_id = $1 AND k.id <= s.upto
         ON CONFLICT DO NOTHING",
        &[&doc],
    )
    .await
    .ctx("retire postings from blocks")?;
    Ok(())
}

/// Compacts on a pooled connection (opening a store whose blocks were
/// never built: a database from before them).
pub(crate) async fn build_missing(c: &mut Conn) -> Result<(), PgError> {
    let r = c
        .query_one(
            "SELECT s.upto = 0 AND EXISTS (SELECT 1 FROM chunks) FROM term_block_state s",
            &[],
        )
        .await
        .ctx("read keyword block state")?;
    if col::<bool>(&r, 0)? {
        compact(c, false).await?;
    }
    Ok(())
}

/// Forgets every block (the postings are rebuilt; the next compaction
/// builds blocks again). Runs inside the caller's transaction.
pub(crate) async fn reset(c: &impl tokio_postgres::GenericClient) -> Result<(), PgError> {
    c.batch_execute(
        "DELETE FROM term_blocks; DELETE FROM term_block_dead;
         UPDATE term_block_state SET upto = 0, generation = floor(random() * 9.2e18)::bigint;
         UPDATE chunk_terms SET moved = false WHERE moved;",
    )
    .await
    .ctx("reset keyword blocks")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(chunk: i64, tf: u32, len: u32, acl: u32) -> Posting {
        Posting {
            chunk,
            tf,
            len,
            acl,
        }
    }

    fn decoded(chunks: &[i64]) -> Arc<Decoded> {
        let postings: Vec<(i64, u32, u32, u32)> = chunks.iter().map(|&c| (c, 1, 10, 0)).collect();
        block_of(&postings)
    }

    fn key(t: &str) -> (i16, String) {
        (0, t.to_string())
    }

    #[test]
    fn kept_blocks_belong_to_one_compaction_and_fit_the_budget() {
        let one = decoded(&[1, 2, 3]);
        let size = kept_size(&key("a"), &one);
        let cache = BlockCache::new(2 * size);
        assert_eq!(cache.get(&[key("a")]), (None, vec![None]));
        cache.put(
            7,
            vec![(key("a"), one.clone()), (key("b"), decoded(&[4, 5, 6]))],
        );
        let (generation, got) = cache.get(&[key("a"), key("b"), key("c")]);
        assert_eq!(generation, Some(7));
        assert_eq!(got[0].as_deref(), Some(&*one));
        assert!(got[1].is_some() && got[2].is_none());
        // Over budget: the least recently used goes first ("b" was read
        // after "a")...
        cache.put(7, vec![(key("c"), decoded(&[7, 8, 9]))]);
        let (_, got) = cache.get(&[key("a"), key("b"), key("c")]);
        assert!(got[0].is_none() && got[1].is_some() && got[2].is_some());
        // ...whenever it was kept: "b", kept before "c", was read since.
        assert!(cache.get(&[key("b")]).1[0].is_some());
        cache.put(7, vec![(key("e"), decoded(&[10, 11, 12]))]);
        let (_, got) = cache.get(&[key("b"), key("c"), key("e")]);
        assert!(got[0].is_some() && got[1].is_none() && got[2].is_some());
        // Blocks of another compaction replace all of them.
        cache.put(8, vec![(key("d"), decoded(&[1]))]);
        let (generation, got) = cache.get(&[key("b"), key("c"), key("d")]);
        assert_eq!(generation, Some(8));
        assert!(got[0].is_none() && got[1].is_none() && got[2].is_some());
        // Blocks read ahead of searches never replace a newer compaction's
        // (a search saw it after the job read its own); into their own
        // compaction's they go, and the node no longer wants them.
        assert!(cache.wants_warming());
        assert!(!cache.warm(7, vec![(key("x"), decoded(&[1]))]));
        assert_eq!(cache.get(&[key("d"), key("x")]).1[1], None);
        assert!(cache.warm(8, vec![(key("x"), decoded(&[1]))]));
        let (generation, got) = cache.get(&[key("d"), key("x")]);
        assert_eq!(generation, Some(8));
        assert!(got.iter().all(Option::is_some));
        assert!(!cache.wants_warming());
        // A block larger than the whole budget is not kept; budget 0 keeps nothing.
        cache.put(
            8,
            vec![(key("big"), decoded(&(1..1000).collect::<Vec<_>>()))],
        );
        assert_eq!(cache.get(&[key("big")]).1, vec![None]);
        let off = BlockCache::new(0);
        off.put(1, vec![(key("a"), one)]);
        assert_eq!(off.get(&[key("a")]), (None, vec![None]));
    }

    proptest! {
        /// Whatever the uses, the kept blocks fit the budget, their bytes
        /// are counted right, the most recently used is kept, and the
        /// record of uses stays bounded.
        #[test]
        fn the_cache_stays_within_its_budget(
            ops in proptest::collection::vec((0usize..12, 1usize..40, any::<bool>()), 1..200),
        ) {
            let budget = kept_size(&key("t10"), &decoded(&(0..60).collect::<Vec<_>>()));
            let cache = BlockCache::new(budget);
            for (k, n, read) in ops {
                let name = format!("t{k}");
                if read {
                    cache.get(&[key(&name)]);
                } else {
                    cache.put(1, vec![(key(&name), decoded(&(0..n as i64).collect::<Vec<_>>()))]);
                    prop_assert!(cache.get(&[key(&name)]).1[0].is_some(), "just kept");
                }
                let kept = crate::sync::lock(&cache.kept);
                let sum: usize = kept.blocks.iter().map(|(k, (d, _))| kept_size(k, d)).sum();
                prop_assert_eq!(kept.bytes, sum);
                prop_assert!(kept.bytes <= budget);
                prop_assert!(kept.order.len() <= 2 * kept.blocks.len() + 65);
            }
        }
    }

    #[test]
    fn blocks_round_trip() {
        let all = vec![
            p(1, 1, 10, 3),
            p(2, 7, 300, 1),
            p(900_000_000_000, 1, 0, 70_000),
            p(900_000_000_001, u32::MAX, u32::MAX, u32::MAX),
        ];
        let mut w = BlockWriter::new();
        for x in &all {
            w.push(*x).unwrap();
        }
        let b = w.finish();
        let mut back = Vec::new();
        decode(&b, |x| back.push(x)).unwrap();
        assert_eq!(back, all);
        let mut none = Vec::new();
        decode(&BlockWriter::new().finish(), |x| none.push(x)).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn out_of_order_postings_are_refused() {
        let mut w = BlockWriter::new();
        w.push(p(5, 1, 1, 1)).unwrap();
        assert!(w.push(p(5, 1, 1, 1)).is_err());
        assert!(w.push(p(4, 1, 1, 1)).is_err());
        assert!(BlockWriter::new().push(p(-1, 1, 1, 1)).is_err());
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut w = BlockWriter::new();
        w.push(p(300, 2, 40, 9)).unwrap();
        let b = w.finish();
        for cut in 0..b.len() {
            let r = decode(&b[..cut], |_| {});
            assert!(cut == 1 || r.is_err(), "cut at {cut}");
        }
        assert!(decode(&[2, 1, 1, 1, 1], |_| {}).is_err());
        assert!(decode(
            &[FORMAT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            |_| {}
        )
        .is_err());
        let huge = [FORMAT, 1, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 1];
        assert!(decode(&huge, |_| {}).is_err(), "a tf beyond u32");
    }

    #[test]
    fn the_best_come_first_with_ties_by_chunk() {
        let mut t = Top::new(3);
        for (c, s) in [(7, 1.0), (3, 2.0), (5, 1.0), (9, 0.5), (4, 1.0)] {
            t.offer(c, s);
        }
        assert_eq!(t.sorted(), vec![(3, 2.0), (4, 1.0), (5, 1.0)]);
        assert!(Top::new(5).sorted().is_empty());
        let mut extremes = Top::new(2);
        for (c, s) in [(i64::MAX, 3.0), (i64::MIN, 1.0), (0, 1.0)] {
            extremes.offer(c, s);
        }
        assert_eq!(extremes.sorted(), vec![(i64::MAX, 3.0), (i64::MIN, 1.0)]);
    }

    #[test]
    fn a_block_narrowed_to_what_is_admitted_keeps_exactly_that() {
        let all: Vec<(i64, u32, u32, u32)> = (0..5000)
            .map(|c| {
                (
                    c * 3 + 1,
                    (c % 4) as u32 + 1,
                    10 + (c % 50) as u32,
                    ((c * 7) % 40) as u32,
                )
            })
            .collect();
        let d = block_of(&all);
        for (listed, exclude) in [
            (vec![3], false),
            (vec![0, 5, 39], false),
            ((0..37).collect::<Vec<u32>>(), true),
            (vec![99], false),
        ] {
            let mut sets = vec![false; 100];
            for &l in &listed {
                sets[l as usize] = true;
            }
            let admit = Admit {
                sets,
                exclude,
                dead: HashSet::new(),
                docs: None,
            };
            let n = d.admitted(&admit, 1000).expect("few admitted: narrowed");
            let want: Vec<&(i64, u32, u32, u32)> = all.iter().filter(|p| admit.acl(p.3)).collect();
            assert_eq!(n.chunk.len(), want.len());
            for (i, p) in want.iter().enumerate() {
                assert_eq!((n.chunk[i], n.tf[i], n.len[i], n.acl[i]), **p);
            }
            assert!(
                d.admitted(&admit, 10_000).is_none(),
                "small blocks stay whole"
            );
        }
        let most = Admit {
            sets: vec![true; 40],
            exclude: false,
            dead: HashSet::new(),
            docs: None,
        };
        assert!(
            d.admitted(&most, 0).is_none(),
            "a block mostly admitted stays whole"
        );
        // Access set ids far apart are grouped as well.
        let odd: Vec<(i64, u32, u32, u32)> = (0..3000)
            .map(|c| (c, 1, 10, [1, 70_000, 5_000_000][c as usize % 3]))
            .collect();
        let mut sets = vec![false; 70_001];
        sets[70_000] = true;
        let admit = Admit {
            sets,
            exclude: false,
            dead: HashSet::new(),
            docs: None,
        };
        let n = block_of(&odd).admitted(&admit, 0);
        assert!(n.is_none(), "a third is more than a quarter");
        let odd: Vec<(i64, u32, u32, u32)> = (0..4000)
            .map(|c| (c, 1, 10, [1, 70_000, 5_000_000, 9][c as usize % 5 % 4]))
            .collect();
        let n = block_of(&odd)
            .admitted(&admit, 0)
            .expect("a fifth admitted");
        let want: Vec<i64> = odd.iter().filter(|p| p.3 == 70_000).map(|p| p.0).collect();
        assert_eq!(n.chunk, want);
    }

    #[test]
    fn a_cursor_seeks_the_first_posting_at_or_after() {
        let chunks: Vec<i64> = (0..1000).map(|i| i * 3).collect();
        let d = decoded(&chunks);
        let w = [(1.0, 0.1)];
        let mut c = Cursor {
            d: &d,
            w: &w,
            bound: 1.0,
            at: 0,
        };
        for want in [0, 1, 2, 3, 4, 300, 301, 2996, 2997] {
            c.seek(want);
            assert_eq!(c.chunk(), chunks.iter().copied().find(|&x| x >= want));
        }
        c.seek(2998);
        assert_eq!(c.chunk(), None);
        c.seek(5);
        assert_eq!(c.chunk(), None, "a cursor never moves back");
    }

    /// A block of `(chunk, tf, len, acl)` postings (chunks increasing).
    fn block_of(postings: &[(i64, u32, u32, u32)]) -> Arc<Decoded> {
        let mut w = BlockWriter::new();
        for &(c, tf, len, acl) in postings {
            w.push(p(c, tf, len, acl)).unwrap();
        }
        Arc::new(Decoded::of(&w.finish()).unwrap())
    }

    /// Postings of one term: chunk ids below 400, each chunk's access set
    /// a function of it (as in a real block), tf and length from a few
    /// values so that many scores tie.
    fn arb_block() -> impl Strategy<Value = Vec<(i64, u32, u32, u32)>> {
        proptest::collection::btree_map(0i64..400, (1u32..4, 1u32..6), 0..300).prop_map(|m| {
            m.into_iter()
                .map(|(c, (tf, len))| (c, tf, len * 7, (c % 13) as u32))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The pruned top is the exhaustive one: the same length, every
        /// score the chunk's true score, and nothing left out that scores
        /// above the last one kept (rounding ties aside).
        #[test]
        fn pruning_keeps_the_exhaustive_top(
            blocks in proptest::collection::vec((arb_block(), 0.1f64..3.0, 0.001f64..0.05), 0..6),
            delta in proptest::collection::btree_map(400i64..500, 0.01f64..4.0, 0..20),
            sets in proptest::collection::vec(proptest::bool::weighted(0.2), 13),
            exclude in any::<bool>(),
            dead in proptest::collection::hash_set(0i64..400, 0..40),
            docs in proptest::option::of(proptest::collection::hash_set(0i64..500, 0..300)),
            want in 0usize..25,
            narrow in any::<bool>(),
        ) {
            let admit = Admit { sets, exclude, dead, docs };
            let mut s = Scorer {
                terms: HashMap::new(),
                blocks: Vec::new(),
                delta: FxHashMap::default(),
                filter_min: if narrow { 0 } else { usize::MAX },
            };
            let mut truth: HashMap<i64, f64> = HashMap::new();
            for (postings, w, c) in &blocks {
                let weights = vec![(*w, *c)];
                for &(chunk, tf, len, acl) in postings {
                    if admit.acl(acl) && !admit.dead.contains(&chunk) && admit.doc(chunk) {
                        *truth.entry(chunk).or_default() += part(&weights, tf, len);
                    }
                }
                let d = block_of(postings);
                for &(_, tf, len, _) in postings {
                    prop_assert!(part(&weights, tf, len) <= d.bound(&weights));
                }
                if !postings.is_empty() {
                    s.blocks.push((d, weights));
                }
            }
            for (&chunk, &v) in &delta {
                if admit.doc(chunk) {
                    s.delta.insert(chunk, v);
                    truth.insert(chunk, v);
                }
            }
            let got = s.top(&admit, want);
            prop_assert_eq!(got.len(), want.min(truth.len()));
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * a.abs().max(b.abs());
            for w in got.windows(2) {
                prop_assert!(w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0));
            }
            for (c, v) in &got {
                prop_assert!(close(truth[c], *v as f64), "chunk {} scored {} not {}", c, v, truth[c]);
            }
            if let Some(last) = got.last() {
                let kept: HashSet<i64> = got.iter().map(|g| g.0).collect();
                for (c, v) in &truth {
                    prop_assert!(
                        kept.contains(c) || *v <= last.1 as f64 || close(*v, last.1 as f64),
                        "chunk {} ({}) left out above the last kept ({})", c, v, last.1
                    );
                }
            }
        }
    }

    #[test]
    fn access_sets_admit_or_exclude() {
        let a = Admit {
            sets: vec![false, true, false, true],
            exclude: false,
            dead: HashSet::new(),
            docs: None,
        };
        assert!(a.acl(1) && a.acl(3) && !a.acl(0) && !a.acl(2) && !a.acl(99));
        let x = Admit { exclude: true, ..a };
        assert!(!x.acl(1) && !x.acl(3) && x.acl(0) && x.acl(99));
    }
}
