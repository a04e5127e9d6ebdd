//! The answer cache on PostgreSQL: one table every node shares (created by
//! the gateway's migrations). Like the embedded cache, hits only read and
//! the recency of uses is written with the next entry.

use super::{CacheError, CacheStore, Digest, Entry, Touched};
use futures_util::FutureExt;

use crate::store::pg::{col, Conn, PgError, Pool};

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> PgError {
    move |source| PgError::Query { context, source }
}

/// Entries in the `answer_cache` table.
pub struct PgCache {
    pool: Pool,
    touched: Touched,
}

impl PgCache {
    /// Connects (a small pool of its own); the table exists once the
    /// gateway's migrations ran (`gateway::open`).
    pub fn open(
        url: &str,
        pool: impl Into<crate::store::pg::PoolOptions>,
    ) -> Result<PgCache, CacheError> {
        Ok(PgCache {
            pool: Pool::new(url, pool)?,
            touched: Touched::default(),
        })
    }

    fn take_touched(&self) -> Vec<(Vec<u8>, i64)> {
        self.touched
            .take()
            .into_iter()
            .map(|(k, t)| (k.0.to_vec(), t as i64))
            .collect()
    }
}

async fn write_touched(c: &Conn, touched: &[(Vec<u8>, i64)]) -> Result<(), PgError> {
    for (k, t) in touched {
        c.execute(
            "UPDATE answer_cache SET used = greatest(used, $2) WHERE key = $1",
            &[k, t],
        )
        .await
        .map_err(q("note cache uses"))?;
    }
    Ok(())
}

impl CacheStore for PgCache {
    fn get(&self, key: &Digest) -> Result<Option<Entry>, CacheError> {
        let k = key.0.to_vec();
        let row = self.pool.run(move |c| {
            async move {
                c.query_opt("SELECT entry FROM answer_cache WHERE key = $1", &[&k])
                    .await
                    .map_err(q("read cache entry"))?
                    .map(|r| col::<String>(&r, 0))
                    .transpose()
            }
            .boxed()
        })?;
        Ok(match row {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    }

    fn by_context(&self, context: &Digest) -> Result<Vec<(Digest, Entry)>, CacheError> {
        let ctx = context.0.to_vec();
        let rows = self.pool.run(move |c| {
            async move {
                c.query(
                    "SELECT key, entry FROM answer_cache WHERE context = $1",
                    &[&ctx],
                )
                .await
                .map_err(q("read cache context"))?
                .iter()
                .map(|r| Ok((col::<Vec<u8>>(r, 0)?, col::<String>(r, 1)?)))
                .collect::<Result<Vec<_>, PgError>>()
            }
            .boxed()
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, e) in rows {
            if let Some(d) = Digest::from_slice(&k) {
                out.push((d, serde_json::from_str(&e)?));
            }
        }
        Ok(out)
    }

    fn put(&self, key: &Digest, entry: &Entry, max_entries: u64) -> Result<u64, CacheError> {
        let text = serde_json::to_string(entry)?;
        let k = key.0.to_vec();
        let ctx = super::embedded::hex_digest(&entry.context)
            .ok_or_else(|| CacheError::Embedded("entry without a context".into()))?
            .0
            .to_vec();
        let docs = entry.docs.clone();
        let used = entry.created as i64;
        let touched = self.take_touched();
        let max = max_entries as i64;
        let evicted = self.pool.run(move |c| async move {
            write_touched(c, &touched).await?;
            c.execute(
                "INSERT INTO answer_cache (key, context, docs, entry, used) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key) DO UPDATE SET context = $2, docs = $3, entry = $4, used = $5",
                &[&k, &ctx, &docs, &text, &used],
            ).await
            .map_err(q("keep cache entry"))?;
            let n: i64 = col(
                &c.query_one("SELECT count(*) FROM answer_cache", &[]).await
                    .map_err(q("count cache"))?,
                0,
            )?;
            if n <= max {
                return Ok(0);
            }
            let over = n - max + max / 20;
            let gone = c
                .execute(
                    "DELETE FROM answer_cache WHERE key IN
                     (SELECT key FROM answer_cache WHERE key <> $2 ORDER BY used LIMIT $1)",
                    &[&over, &k],
                ).await
                .map_err(q("evict cache entries"))?;
            Ok(gone)
        }.boxed())?;
        Ok(evicted)
    }

    fn touch(&self, key: &Digest, now: u64) {
        self.touched.note(key, now);
    }

    fn remove(&self, key: &Digest) -> Result<(), CacheError> {
        let k = key.0.to_vec();
        self.pool.run(move |c| {
            async move {
                c.execute("DELETE FROM answer_cache WHERE key = $1", &[&k])
                    .await
                    .map_err(q("drop cache entry"))
            }
            .boxed()
        })?;
        Ok(())
    }

    fn forget_docs(&self, docs: &[String]) -> Result<u64, CacheError> {
        let docs = docs.to_vec();
        Ok(self.pool.run(move |c| {
            async move {
                c.execute("DELETE FROM answer_cache WHERE docs && $1", &[&docs])
                    .await
                    .map_err(q("forget cache entries of documents"))
            }
            .boxed()
        })?)
    }

    fn len(&self) -> Result<u64, CacheError> {
        let n: i64 = self.pool.run(|c| {
            async move {
                col(
                    &c.query_one("SELECT count(*) FROM answer_cache", &[])
                        .await
                        .map_err(q("count cache"))?,
                    0,
                )
            }
            .boxed()
        })?;
        Ok(n as u64)
    }

    fn flush(&self) {
        let touched = self.take_touched();
        if touched.is_empty() {
            return;
        }
        if let Err(e) = self
            .pool
            .run(move |c| async move { write_touched(c, &touched).await }.boxed())
        {
            tracing::warn!("answer cache: {e}");
        }
    }
}
