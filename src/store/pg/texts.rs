//! The texts and positions of chunks a node has read, kept between
//! searches (`[store] text_cache_mb`) and served again while their access
//! set is at the version they were read with.
//!
//! Why: after both searches, reading the winners' texts was one more
//! statement on every search, 1.0 ms of a 3.8 ms `/v1/search` at 100,000
//! chunks (`hort bench backends`) though the server spent 0.4 ms on it:
//! the rest is the round trip (waking the connection task, the server
//! process and the caller) on a machine the database shares. Chunks are
//! immutable (a changed document gets new chunks with new ids), so a kept
//! text is never outdated; only who may see it and its injection verdict
//! change, and every write that changes either gives the chunk's access
//! set a new version in the same transaction (`write.rs`), as for the
//! kept vectors (`vectors.rs`).
//!
//! A kept chunk is served only to a view that read its set's versions as
//! the principal (the vector side's statement, see [`Seen`]), only if the
//! set is among those the principal admits, and only at the version the
//! chunk was read with (the set's version is read with the text, in one
//! snapshot). Anything else is read from the database under row-level
//! security, as before. So a search never sees more than it would have
//! read in the snapshot of its own vector side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Access;
use crate::store::record::ChunkHit;
use crate::sync::lock;

/// Chunks served from what nodes keep, and chunks read from the database
/// by searches that had the versions to check kept ones against, in this
/// process: how well the texts kept serve (`hort bench backends`).
static SERVED: AtomicU64 = AtomicU64::new(0);
static MISSED: AtomicU64 = AtomicU64::new(0);

/// (served from memory, read) since the process started: see [`SERVED`].
pub fn kept_text_reads() -> (u64, u64) {
    (
        SERVED.load(Ordering::Relaxed),
        MISSED.load(Ordering::Relaxed),
    )
}

/// One kept chunk: as read, with its access set and that set's version in
/// the same snapshot.
#[derive(Debug)]
struct Kept {
    hit: ChunkHit,
    acl: i32,
    version: i64,
    bytes: usize,
    used: u64,
}

/// The chunks a node keeps, the least recently used forgotten first.
pub(crate) struct TextCache {
    budget: usize,
    inner: Mutex<Inner>,
    /// The job that reads every chunk ahead (see [`every_text`]).
    pub(crate) warming: super::warm::Warming,
    /// The last read-ahead found more chunks than the budget holds: the
    /// node keeps what searches read, and reads no more ahead.
    too_big: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    chunks: HashMap<u64, Kept>,
    bytes: usize,
    clock: u64,
}

/// Bytes a kept chunk takes (its strings and a fixed overhead for the
/// entry, the map's slot and the allocations).
fn bytes_of(h: &ChunkHit) -> usize {
    let teams: usize = h.access.teams.iter().map(|t| t.len() + 24).sum();
    let reasons: usize = h
        .injection
        .as_ref()
        .map_or(0, |v| v.reasons.iter().map(|r| r.len() + 24).sum());
    h.text.len() + h.path.len() + teams + reasons + 256
}

impl TextCache {
    /// A cache of at most `budget` bytes (0: keeps nothing).
    pub(crate) fn new(budget: usize) -> TextCache {
        TextCache {
            budget,
            inner: Mutex::new(Inner::default()),
            warming: Default::default(),
            too_big: AtomicBool::new(false),
        }
    }

    /// Bytes it may hold.
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Whether reading every chunk ahead may still pay: a budget, and no
    /// read-ahead that found more than it holds.
    pub(crate) fn wants_warming(&self) -> bool {
        self.budget > 0 && !self.too_big.load(Ordering::Relaxed)
    }

    /// Records that a read-ahead stopped at the budget.
    pub(crate) fn mark_too_big(&self) {
        self.too_big.store(true, Ordering::Relaxed);
    }

    /// The kept chunks among `ids` whose access set `versions` (as read by
    /// the principal: sets it does not admit are absent) holds at the
    /// version they were read with; the others are for the database.
    pub(crate) fn get(&self, ids: &[u64], versions: &HashMap<i32, i64>) -> Vec<ChunkHit> {
        if self.budget == 0 {
            return Vec::new();
        }
        let mut inner = lock(&self.inner);
        let Inner { chunks, clock, .. } = &mut *inner;
        let mut out: Vec<ChunkHit> = Vec::new();
        for id in ids {
            // Asked twice, served once (as the database answers).
            if out.iter().any(|h| h.id == *id) {
                continue;
            }
            if let Some(k) = chunks.get_mut(id) {
                if versions.get(&k.acl) == Some(&k.version) {
                    *clock += 1;
                    k.used = *clock;
                    out.push(k.hit.clone());
                }
            }
        }
        SERVED.fetch_add(out.len() as u64, Ordering::Relaxed);
        MISSED.fetch_add((ids.len() - out.len()) as u64, Ordering::Relaxed);
        out
    }

    /// Keeps chunks as read (each with its access set and that set's
    /// version, from one snapshot), replacing what was kept of them, and
    /// forgets the least recently used while over the budget. A chunk
    /// larger than a sixteenth of the budget is not kept.
    pub(crate) fn put(&self, read: impl IntoIterator<Item = (ChunkHit, i32, i64)>) {
        if self.budget == 0 {
            return;
        }
        let mut inner = lock(&self.inner);
        for (hit, acl, version) in read {
            let bytes = bytes_of(&hit);
            if bytes > self.budget / 16 {
                // What was kept of it is older than this read: gone too.
                if let Some(old) = inner.chunks.remove(&hit.id) {
                    inner.bytes -= old.bytes;
                }
                continue;
            }
            inner.clock += 1;
            let used = inner.clock;
            if let Some(old) = inner.chunks.insert(
                hit.id,
                Kept {
                    hit,
                    acl,
                    version,
                    bytes,
                    used,
                },
            ) {
                inner.bytes -= old.bytes;
            }
            inner.bytes += bytes;
        }
        if inner.bytes > self.budget {
            inner.evict(self.budget - self.budget / 8);
        }
    }

    /// Chunks kept and the bytes they hold.
    pub(crate) fn held(&self) -> (usize, usize) {
        let inner = lock(&self.inner);
        (inner.chunks.len(), inner.bytes)
    }
}

impl Inner {
    /// Forgets the least recently used chunks until at most `room` bytes
    /// are kept (an eighth below the budget, so that the sort of every
    /// kept chunk's last use is paid once per many insertions, not on
    /// each).
    fn evict(&mut self, room: usize) {
        let mut by_use: Vec<(u64, u64, usize)> = self
            .chunks
            .values()
            .map(|k| (k.used, k.hit.id, k.bytes))
            .collect();
        let n = by_use.len();
        if n == 0 {
            return;
        }
        // About as many as the excess holds at the average size are
        // selected (in linear time) and only those sorted; the others are
        // sorted only if that was not enough.
        let average = (self.bytes / n).max(1);
        let k = (self.bytes.saturating_sub(room) / average + 16).min(n);
        if k < n {
            by_use.select_nth_unstable(k);
        }
        let (first, rest) = by_use.split_at_mut(k);
        first.sort_unstable();
        if self.forget(first, room) {
            return;
        }
        rest.sort_unstable();
        self.forget(rest, room);
    }

    /// Forgets `oldest` in order until at most `room` bytes are kept;
    /// whether that was reached.
    fn forget(&mut self, oldest: &[(u64, u64, usize)], room: usize) -> bool {
        for &(_, id, bytes) in oldest {
            if self.bytes <= room {
                return true;
            }
            if self.chunks.remove(&id).is_some() {
                self.bytes -= bytes;
            }
        }
        self.bytes <= room
    }
}

/// Every chunk's text in id order, each with its access set and that set's
/// version, in one snapshot, as a principal of every team cleared for
/// everything (a chunk without a rule is never kept), until `budget` bytes
/// are read; and whether that was every chunk. Read in batches through a
/// portal, and given up after the first batch when the chunks at that
/// batch's size would not fit: a corpus larger than the budget is not read.
pub(crate) async fn every_text(
    c: &mut super::Conn,
    budget: usize,
) -> Result<(Vec<(ChunkHit, i32, i64)>, bool), super::PgError> {
    use super::{array_literal, col, Ctx, SET_ACCESS};
    let tx = c.transaction().await.ctx("begin reading texts ahead")?;
    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .ctx("begin reading texts ahead")?;
    let teams: Vec<String> = col(
        &tx.query_one(
            "SELECT ARRAY(SELECT DISTINCT unnest(teams) FROM access_sets)",
            &[],
        )
        .await
        .ctx("read access sets")?,
        0,
    )?;
    let level = crate::acl::Classification::Restricted.level().to_string();
    tx.query_one(SET_ACCESS, &[&array_literal(&teams), &level])
        .await
        .ctx("set access")?;
    let portal = tx
        .bind(&format!("{} ORDER BY k.id", super::read::KEPT_CHUNKS), &[])
        .await
        .ctx("read texts ahead")?;
    let visible: i64 = col(
        &tx.query_one("SELECT count(*) FROM chunks", &[])
            .await
            .ctx("count chunks")?,
        0,
    )?;
    let (mut read, mut bytes) = (Vec::new(), 0usize);
    let complete = 'fetch: loop {
        let rows = tx
            .query_portal(&portal, AHEAD_FETCH)
            .await
            .ctx("read texts ahead")?;
        if rows.is_empty() {
            break true;
        }
        for r in &rows {
            let kept = super::read::kept_chunk(r)?;
            bytes += bytes_of(&kept.0);
            if bytes > budget {
                break 'fetch false;
            }
            read.push(kept);
        }
        // After the first batch: if the chunks at their size so far will
        // not all fit, read no further (a corpus ten times the budget is
        // not read up to it for chunks picked by id).
        if read.len() as i64 == AHEAD_FETCH as i64
            && (bytes as f64 / read.len() as f64) * visible as f64 > budget as f64
        {
            break false;
        }
    };
    tx.commit().await.ctx("end reading texts ahead")?;
    Ok((read, complete))
}

/// Rows per fetch of the read-ahead.
const AHEAD_FETCH: i32 = 2000;

/// The access sets' versions a view's searches read, per principal's
/// access (teams and clearance): what a kept chunk is checked against.
#[derive(Debug, Default)]
pub(crate) struct Seen(Mutex<Vec<(Access, Versions)>>);

/// Access sets' versions by set id, as one statement read them.
pub(crate) type Versions = Arc<HashMap<i32, i64>>;

impl Seen {
    /// Records the versions `access` read (the sets it admits, each with
    /// its version, from one statement), replacing earlier ones.
    pub(crate) fn record(&self, access: &Access, versions: &[(i32, i64)]) {
        let map = Arc::new(versions.iter().copied().collect::<HashMap<_, _>>());
        let mut seen = lock(&self.0);
        match seen.iter_mut().find(|(a, _)| a == access) {
            Some(slot) => slot.1 = map,
            None => seen.push((access.clone(), map)),
        }
    }

    /// The versions `access` read last, if it read any.
    pub(crate) fn of(&self, access: &Access) -> Option<Versions> {
        lock(&self.0)
            .iter()
            .find(|(a, _)| a == access)
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AccessRule, Classification};
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn hit(id: u64, text: &str) -> ChunkHit {
        ChunkHit {
            id,
            doc_id: 1,
            path: "a.md".into(),
            paged: false,
            page_no: 1,
            char_start: 0,
            char_end: text.chars().count() as u32,
            text: text.into(),
            access: AccessRule {
                teams: vec!["eng".into()],
                classification: Classification::Internal,
            },
            injection: None,
            ocr: None,
        }
    }

    #[test]
    fn a_kept_chunk_is_served_only_at_its_sets_version_to_whom_admits_the_set() {
        let c = TextCache::new(1 << 20);
        c.put([(hit(1, "one"), 7, 100), (hit(2, "two"), 8, 200)]);
        let both = HashMap::from([(7, 100), (8, 200)]);
        let ids: Vec<u64> = c.get(&[1, 2, 3], &both).iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![1, 2], "3 was never read");
        // Set 8 written since (a chunk moved, deleted or added): its kept
        // chunks are read again.
        let moved = HashMap::from([(7, 100), (8, 201)]);
        let ids: Vec<u64> = c.get(&[1, 2], &moved).iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![1]);
        // A principal who does not admit set 7 never gets its chunks from
        // the cache, whatever the versions.
        let other = HashMap::from([(8, 200)]);
        let ids: Vec<u64> = c.get(&[1, 2], &other).iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![2]);
        assert!(c.get(&[1, 2], &HashMap::new()).is_empty());
        // Read again at the new version: served at it.
        c.put([(hit(2, "two"), 8, 201)]);
        assert_eq!(c.get(&[2], &moved).len(), 1);
        assert_eq!(c.held().0, 2, "replaced, not added");
    }

    #[test]
    fn nothing_is_kept_without_a_budget() {
        let c = TextCache::new(0);
        c.put([(hit(1, "one"), 7, 100)]);
        assert!(c.get(&[1], &HashMap::from([(7, 100)])).is_empty());
        assert_eq!(c.held(), (0, 0));
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let one = bytes_of(&hit(0, &"x".repeat(100)));
        let c = TextCache::new(one * 20);
        let v = HashMap::from([(7, 1)]);
        c.put((0..20).map(|i| (hit(i, &"x".repeat(100)), 7, 1)));
        assert_eq!(c.held().0, 20);
        // 0 is used again, so 1 is now the least recently used.
        assert_eq!(c.get(&[0], &v).len(), 1);
        // Over the budget: down to seven eighths of it, the least recently
        // used first.
        c.put([(hit(20, &"x".repeat(100)), 7, 1)]);
        let kept: Vec<u64> = c
            .get(&(0..21).collect::<Vec<_>>(), &v)
            .iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(kept.len(), 17, "{kept:?}");
        assert!(kept.contains(&0) && kept.contains(&20), "{kept:?}");
        for gone in 1..5 {
            assert!(!kept.contains(&gone), "{kept:?}");
        }
        assert!(c.held().1 <= one * 20 - one * 20 / 8);
    }

    #[test]
    fn eviction_by_selection_forgets_exactly_the_least_recently_used() {
        let one = bytes_of(&hit(0, &"x".repeat(100)));
        let c = TextCache::new(one * 100);
        let v = HashMap::from([(7, 1)]);
        c.put((0..100).map(|i| (hit(i, &"x".repeat(100)), 7, 1)));
        assert_eq!(c.get(&(0..50).collect::<Vec<_>>(), &v).len(), 50);
        // Now 50..100 were used least recently, 50 first.
        c.put([(hit(100, &"x".repeat(100)), 7, 1)]);
        let kept: HashSet<u64> = c
            .get(&(0..101).collect::<Vec<_>>(), &v)
            .iter()
            .map(|h| h.id)
            .collect();
        let gone: Vec<u64> = (0..101).filter(|i| !kept.contains(i)).collect();
        assert_eq!(gone, (50..64).collect::<Vec<_>>());
    }

    #[test]
    fn seen_versions_are_per_access() {
        let s = Seen::default();
        let eng = Access {
            teams: vec!["eng".into()],
            clearance: 1,
        };
        let eng_high = Access {
            teams: vec!["eng".into()],
            clearance: 3,
        };
        s.record(&eng, &[(7, 100)]);
        assert!(s.of(&eng_high).is_none());
        s.record(&eng_high, &[(7, 100), (9, 5)]);
        s.record(&eng, &[(7, 101)]);
        assert_eq!(s.of(&eng).unwrap().get(&7), Some(&101));
        assert_eq!(s.of(&eng_high).unwrap().len(), 2);
    }

    proptest! {
        /// Whatever is put and asked, the cache stays within its budget, its
        /// count of bytes is exact, and it serves a chunk only at the
        /// version of the set it was last read with.
        #[test]
        fn served_only_as_last_read_and_within_budget(
            ops in proptest::collection::vec((0u64..40, 0i32..4, 0i64..3, 1usize..300), 1..200),
            budget in 8_000usize..40_000,
        ) {
            let c = TextCache::new(budget);
            let mut last: HashMap<u64, (i32, i64)> = HashMap::new();
            for (id, acl, version, len) in ops {
                c.put([(hit(id, &"y".repeat(len)), acl, version)]);
                last.insert(id, (acl, version));
                let (n, bytes) = c.held();
                prop_assert!(bytes <= budget);
                let inner = lock(&c.inner);
                prop_assert_eq!(inner.chunks.len(), n);
                prop_assert_eq!(inner.chunks.values().map(|k| k.bytes).sum::<usize>(), bytes);
                drop(inner);
                for v in 0..3 {
                    let versions: HashMap<i32, i64> = (0..4).map(|a| (a, v)).collect();
                    for h in c.get(&(0..40).collect::<Vec<_>>(), &versions) {
                        let (a, ver) = last[&h.id];
                        prop_assert_eq!(ver, v);
                        prop_assert!(versions.get(&a) == Some(&ver));
                    }
                }
            }
        }
    }
}
