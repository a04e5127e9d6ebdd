//! The answer cache of one node: a `redb` file beside the embedded index
//! (`answer-cache.redb`). redb gives crash-safe transactions and lets
//! `hort serve` and `hort query` on the same index share the file (multi-
//! writer mode, one write transaction at a time). Hits only read; the
//! recency of uses is kept in memory and written with the next entry, so a
//! hit never waits on the disk.

use std::path::{Path, PathBuf};

use redb::{
    ConcurrencyMode, Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable,
    ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::{CacheError, CacheStore, Digest, Entry, Touched};

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const USED: TableDefinition<&[u8], u64> = TableDefinition::new("used");
const CONTEXTS: MultimapTableDefinition<&[u8], &[u8]> = MultimapTableDefinition::new("contexts");
const DOCS: MultimapTableDefinition<&str, &[u8]> = MultimapTableDefinition::new("docs");

/// The file's name in the index directory.
pub const FILE: &str = "answer-cache.redb";

fn err(e: impl std::fmt::Display) -> CacheError {
    CacheError::Embedded(e.to_string())
}

/// Entries in a redb file.
pub struct RedbCache {
    db: Database,
    path: PathBuf,
    touched: Touched,
}

impl RedbCache {
    /// Opens (or creates) the cache file in `dir`. A file that cannot be
    /// read as a cache (damaged, another format) is moved aside and a new
    /// one started: a cache holds nothing that cannot be asked again.
    pub fn open(dir: &Path) -> Result<RedbCache, CacheError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let path = dir.join(FILE);
        let open = || {
            Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .create(&path)
        };
        let db = match open() {
            Ok(db) => db,
            Err(e @ redb::DatabaseError::DatabaseAlreadyOpen)
            | Err(e @ redb::DatabaseError::LockProtocolMismatch) => return Err(err(e)),
            Err(e) => {
                let aside = path.with_extension("redb.damaged");
                tracing::warn!(
                    "answer cache {}: {e}; moved aside to {}, starting empty",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(&path, &aside).map_err(err)?;
                open().map_err(err)?
            }
        };
        let c = RedbCache {
            db,
            path,
            touched: Touched::default(),
        };
        // Create the tables once, so readers never meet a missing table.
        let tx = c.db.begin_write().map_err(err)?;
        tx.open_table(ENTRIES).map_err(err)?;
        tx.open_table(USED).map_err(err)?;
        tx.open_multimap_table(CONTEXTS).map_err(err)?;
        tx.open_multimap_table(DOCS).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(c)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes one entry and its index rows inside `tx`.
fn remove_in(tx: &redb::WriteTransaction, key: &Digest) -> Result<bool, CacheError> {
    let mut entries = tx.open_table(ENTRIES).map_err(err)?;
    let Some(bytes) = entries.remove(key.0.as_slice()).map_err(err)? else {
        return Ok(false);
    };
    let entry: Option<Entry> = serde_json::from_slice(bytes.value()).ok();
    drop(bytes);
    tx.open_table(USED)
        .map_err(err)?
        .remove(key.0.as_slice())
        .map_err(err)?;
    if let Some(e) = entry {
        let ctx = hex_digest(&e.context);
        let mut contexts = tx.open_multimap_table(CONTEXTS).map_err(err)?;
        if let Some(c) = ctx {
            contexts
                .remove(c.0.as_slice(), key.0.as_slice())
                .map_err(err)?;
        }
        let mut docs = tx.open_multimap_table(DOCS).map_err(err)?;
        for d in &e.docs {
            docs.remove(d.as_str(), key.0.as_slice()).map_err(err)?;
        }
    }
    Ok(true)
}

pub(super) fn hex_digest(s: &str) -> Option<Digest> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Digest(out))
}

impl CacheStore for RedbCache {
    fn get(&self, key: &Digest) -> Result<Option<Entry>, CacheError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(ENTRIES).map_err(err)?;
        match t.get(key.0.as_slice()).map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    fn by_context(&self, context: &Digest) -> Result<Vec<(Digest, Entry)>, CacheError> {
        let tx = self.db.begin_read().map_err(err)?;
        let contexts = tx.open_multimap_table(CONTEXTS).map_err(err)?;
        let entries = tx.open_table(ENTRIES).map_err(err)?;
        let mut out = Vec::new();
        for k in contexts.get(context.0.as_slice()).map_err(err)? {
            let k = k.map_err(err)?;
            let Some(key) = Digest::from_slice(k.value()) else {
                continue;
            };
            if let Some(v) = entries.get(key.0.as_slice()).map_err(err)? {
                out.push((key, serde_json::from_slice(v.value())?));
            }
        }
        Ok(out)
    }

    fn put(&self, key: &Digest, entry: &Entry, max_entries: u64) -> Result<u64, CacheError> {
        let bytes = serde_json::to_vec(entry)?;
        let ctx = hex_digest(&entry.context)
            .ok_or_else(|| CacheError::Embedded("entry without a context".into()))?;
        let touched = self.touched.take();
        let tx = self.db.begin_write().map_err(err)?;
        remove_in(&tx, key)?;
        {
            let mut entries = tx.open_table(ENTRIES).map_err(err)?;
            entries
                .insert(key.0.as_slice(), bytes.as_slice())
                .map_err(err)?;
            let mut used = tx.open_table(USED).map_err(err)?;
            used.insert(key.0.as_slice(), entry.created).map_err(err)?;
            for (k, t) in &touched {
                if entries.get(k.0.as_slice()).map_err(err)?.is_some() {
                    used.insert(k.0.as_slice(), *t).map_err(err)?;
                }
            }
            tx.open_multimap_table(CONTEXTS)
                .map_err(err)?
                .insert(ctx.0.as_slice(), key.0.as_slice())
                .map_err(err)?;
            let mut docs = tx.open_multimap_table(DOCS).map_err(err)?;
            for d in &entry.docs {
                docs.insert(d.as_str(), key.0.as_slice()).map_err(err)?;
            }
        }
        let len = tx.open_table(ENTRIES).map_err(err)?.len().map_err(err)?;
        let mut evicted = 0;
        if len > max_entries {
            // Past the bound: drop the least recently used, and a twentieth
            // more so that the next puts do not each pay for a scan.
            let over = len - max_entries + max_entries / 20;
            let mut order: Vec<(u64, Digest)> = Vec::with_capacity(len as usize);
            {
                let used = tx.open_table(USED).map_err(err)?;
                for row in used.iter().map_err(err)? {
                    let (k, t) = row.map_err(err)?;
                    if let Some(d) = Digest::from_slice(k.value()) {
                        order.push((t.value(), d));
                    }
                }
            }
            order.sort();
            for (_, k) in order
                .into_iter()
                .filter(|(_, k)| k != key)
                .take(over as usize)
            {
                if remove_in(&tx, &k)? {
                    evicted += 1;
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(evicted)
    }

    fn touch(&self, key: &Digest, now: u64) {
        self.touched.note(key, now);
    }

    fn remove(&self, key: &Digest) -> Result<(), CacheError> {
        let tx = self.db.begin_write().map_err(err)?;
        remove_in(&tx, key)?;
        tx.commit().map_err(err)
    }

    fn forget_docs(&self, docs: &[String]) -> Result<u64, CacheError> {
        let tx = self.db.begin_write().map_err(err)?;
        let mut keys = Vec::new();
        {
            let t = tx.open_multimap_table(DOCS).map_err(err)?;
            for d in docs {
                for k in t.get(d.as_str()).map_err(err)? {
                    if let Some(k) = Digest::from_slice(k.map_err(err)?.value()) {
                        keys.push(k);
                    }
                }
            }
        }
        keys.sort();
        keys.dedup();
        let mut n = 0;
        for k in &keys {
            if remove_in(&tx, k)? {
                n += 1;
            }
        }
        tx.commit().map_err(err)?;
        Ok(n)
    }

    fn len(&self) -> Result<u64, CacheError> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(ENTRIES).map_err(err)?;
        t.len().map_err(err)
    }

    fn flush(&self) {
        let touched = self.touched.take();
        if touched.is_empty() {
            return;
        }
        let r = (|| {
            let tx = self.db.begin_write().map_err(err)?;
            {
                let entries = tx.open_table(ENTRIES).map_err(err)?;
                let mut used = tx.open_table(USED).map_err(err)?;
                for (k, t) in &touched {
                    if entries.get(k.0.as_slice()).map_err(err)?.is_some() {
                        used.insert(k.0.as_slice(), *t).map_err(err)?;
                    }
                }
            }
            tx.commit().map_err(err)
        })();
        if let Err(e) = r {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ctx: &Digest, docs: &[&str], created: u64) -> Entry {
        Entry {
            v: super::super::FORMAT,
            created,
            context: ctx.hex(),
            completion: "answer [1]".into(),
            provider: "p".into(),
            sent: vec![1],
            masked: false,
            prompt_tokens: 10,
            completion_tokens: 2,
            cost_usd: 0.01,
            docs: docs.iter().map(|s| s.to_string()).collect(),
            embedding: None,
            model: None,
            facets: vec![],
            scope: vec![],
        }
    }

    fn d(n: u8) -> Digest {
        Digest([n; 32])
    }

    #[test]
    fn put_get_evict_forget_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let c = RedbCache::open(dir.path()).unwrap();
        c.put(&d(1), &entry(&d(100), &["a.md"], 1), 3).unwrap();
        c.put(&d(2), &entry(&d(100), &["b.md"], 2), 3).unwrap();
        c.put(&d(3), &entry(&d(101), &["a.md", "c.md"], 3), 3)
            .unwrap();
        assert_eq!(c.len().unwrap(), 3);
        assert_eq!(c.by_context(&d(100)).unwrap().len(), 2);
        // 1 was used last: 2 is the least recently used and goes first.
        c.touch(&d(1), 10);
        let evicted = c.put(&d(4), &entry(&d(102), &["d.md"], 4), 3).unwrap();
        assert_eq!(evicted, 1);
        assert!(c.get(&d(2)).unwrap().is_none());
        assert!(c.get(&d(1)).unwrap().is_some());
        assert_eq!(c.by_context(&d(100)).unwrap().len(), 1);
        // a.md changed: exactly the entries that used it go.
        assert_eq!(c.forget_docs(&["a.md".into()]).unwrap(), 2);
        assert!(c.get(&d(1)).unwrap().is_none() && c.get(&d(3)).unwrap().is_none());
        assert!(c.get(&d(4)).unwrap().is_some());
        drop(c);
        let c = RedbCache::open(dir.path()).unwrap();
        assert_eq!(c.len().unwrap(), 1, "entries survive a restart");
    }

    #[test]
    fn a_damaged_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"not a database at all").unwrap();
        let c = RedbCache::open(dir.path()).unwrap();
        assert_eq!(c.len().unwrap(), 0);
        assert!(dir.path().join("answer-cache.redb.damaged").exists());
    }
}
