//! The write side on PostgreSQL: a writer holds its own connection to the
//! primary and one transaction from its first change to
//! [`IndexWrite::commit`], so a folder's whole sync becomes visible at once
//! (or not at all). Each folder (`root`) it touches is locked for the
//! transaction (an advisory lock on the root's name): two ingests of the
//! same folder queue, ingests of different folders run side by side.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::blocks;
use super::postings::{self, StatsDelta};
use super::read::{rule_of, verdict_of};
use super::{col, rule_columns, Ctx, PgError, PgStore, Vector};
use crate::acl::AccessRule;
use crate::store::contract::{CompactStats, IndexRead, IndexWrite, Store};
use crate::store::record::{ChunkVerdict, FailedFile, NewDocument, StoredDoc};
use crate::store::StoreError;

/// Documents of a bulk load above which the vector and postings indexes are
/// dropped and built once at the end (into an empty table only): far
/// cheaper than maintaining them per row.
const BULK_DOCS: usize = 1000;

/// One chunk's columns for its insert.
struct ChunkRow<'a> {
    /// ord, page_ord, page_no, byte and char ranges.
    numbers: [i32; 7],
    text: &'a str,
    hash: &'a [u8],
    score: Option<f32>,
    reasons: Option<Vec<String>>,
    embedding: Vector,
    ocr: Option<f32>,
}

/// A writer: one connection, one transaction.
pub struct PgWriter {
    client: Client,
    store: Arc<PgStore>,
    in_tx: bool,
    locked: HashSet<String>,
    detector: u32,
    chunker: String,
    stored_chunker: String,
    /// The vector index was dropped for a bulk load: build it at commit.
    rebuild_index: bool,
    /// BM25 statistics this transaction changes, applied as it commits.
    stats: StatsDelta,
    /// Access set ids by (teams, classification), once looked up.
    access_sets: std::collections::HashMap<(Vec<String>, i32), i32>,
    /// A forced compaction asked for inside the transaction, run after its
    /// commit (every commit compacts if enough changed).
    force_compact: bool,
    /// Access sets whose chunks this transaction inserts, deletes or
    /// moves: each gets a new version as it commits, which tells nodes
    /// keeping the set's vectors that theirs are stale (migration 13).
    touched: std::collections::BTreeSet<i32>,
}

impl PgWriter {
    /// Connects to the primary (its own connection: a transaction spans
    /// many calls).
    pub fn open(store: Arc<PgStore>, chunker: &str) -> Result<PgWriter, PgError> {
        let client = store.write.dedicated("hort-writer")?;
        let (detector, stored_chunker) = store.write.block(async {
            // Its writes renew their sets' versions at commit, in id order;
            // the triggers that renew them for anyone else's (migration 15)
            // leave this session alone.
            client
                .batch_execute("SET hort.writer = on")
                .await
                .ctx("mark the writer's session")?;
            let rows = client
                .query(
                    "SELECT key, value FROM hort_meta WHERE key IN ('detector', 'chunker')",
                    &[],
                )
                .await
                .ctx("read meta")?;
            let mut detector = 0;
            let mut chunker = String::new();
            for r in &rows {
                match col::<String>(r, 0)?.as_str() {
                    "detector" => detector = col::<String>(r, 1)?.parse().unwrap_or(0),
                    _ => chunker = col(r, 1)?,
                }
            }
            Ok((detector, chunker))
        })?;
        Ok(PgWriter {
            client,
            store,
            in_tx: false,
            locked: HashSet::new(),
            detector,
            chunker: chunker.to_string(),
            stored_chunker,
            rebuild_index: false,
            stats: StatsDelta::default(),
            access_sets: Default::default(),
            force_compact: false,
            touched: Default::default(),
        })
    }

    /// Begins the transaction, sharing the lock that keeps compaction of
    /// the keyword blocks out while anything is written (see
    /// [`blocks`](super::blocks)).
    async fn begin(&mut self) -> Result<(), PgError> {
        if !self.in_tx {
            self.client
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock_shared({});",
                    blocks::LOCK_KEY
                ))
                .await
                .ctx("begin write")?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// Begins the transaction and takes the folder's lock (once).
    async fn lock_root(&mut self, root: &str) -> Result<(), PgError> {
        self.begin().await?;
        if self.locked.insert(root.to_string()) {
            self.client
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 7342))",
                    &[&root],
                )
                .await
                .ctx("lock the folder")?;
        }
        Ok(())
    }

    /// The access set id of a rule (see [`postings::access_set`]).
    async fn access_set(&mut self, teams: &[String], class: i32) -> Result<i32, PgError> {
        let key = (teams.to_vec(), class);
        if let Some(id) = self.access_sets.get(&key) {
            return Ok(*id);
        }
        let id = postings::access_set(&self.store.write, teams, class).await?;
        self.access_sets.insert(key, id);
        Ok(id)
    }

    /// Deletes a document, its chunks and their postings, counting the
    /// postings out of the statistics first.
    async fn delete_document(&mut self, id: i64) -> Result<bool, PgError> {
        postings::forget(&self.client, id, &mut self.stats).await?;
        let gone = self
            .client
            .query_opt("DELETE FROM documents WHERE id = $1 RETURNING acl", &[&id])
            .await
            .ctx("delete a document")?;
        match gone {
            Some(r) => {
                self.touched.insert(col(&r, 0)?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn put_document(&mut self, d: &NewDocument) -> Result<(), PgError> {
        self.lock_root(&d.root).await?;
        let dim = self.store.meta().dim;
        let old: Option<i64> = self
            .client
            .query_opt(
                "SELECT id FROM documents WHERE root = $1 AND path = $2",
                &[&d.root, &d.path],
            )
            .await
            .ctx("find the document's last version")?
            .map(|r| col(&r, 0))
            .transpose()?;
        if let Some(old) = old {
            self.delete_document(old).await?;
        }
        let (teams, class) = rule_columns(d.access.as_ref());
        let acl = self.access_set(&teams, class).await?;
        self.touched.insert(acl);
        let c = &self.client;
        let id: i64 = col(
            &c.query_one(
                "INSERT INTO documents (root, path, kind, size, mtime_ns, sha256, teams,
                    classification, rule_source, paged, ingested_at, hygiene_removed, checked_at_ns, acl)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING id",
                &[
                    &d.root,
                    &d.path,
                    &d.kind,
                    &(d.size as i64),
                    &d.mtime_ns,
                    &d.sha256,
                    &teams,
                    &class,
                    &d.rule_source,
                    &d.paged,
                    &d.ingested_at,
                    &(d.hygiene_removed as i32),
                    &d.checked_at_ns,
                    &acl,
                ],
            )
            .await
            .ctx("insert document")?,
            0,
        )?;
        let ins_page = c
            .prepare(
                "INSERT INTO pages (doc_id, ord, page_no, text, teams, classification, ocr_confidence, acl)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            ).await
            .ctx("prepare page insert")?;
        // Rows are sent without waiting for each answer (the connection
        // pipelines them): one round trip per document, not one per row.
        let pages: Vec<(i32, i32, Option<f32>)> = (0..d.pages.len())
            .map(|ord| (ord as i32, d.pages[ord].0 as i32, d.ocr_of(ord)))
            .collect();
        let page_params: Vec<[&(dyn ToSql + Sync); 8]> = pages
            .iter()
            .zip(&d.pages)
            .map(|((ord, no, ocr), (_, text))| {
                [
                    &id as &(dyn ToSql + Sync),
                    ord,
                    no,
                    text,
                    &teams,
                    &class,
                    ocr,
                    &acl,
                ]
            })
            .collect();
        try_join_all(page_params.iter().map(|p| c.execute(&ins_page, p)))
            .await
            .ctx("insert page")?;
        let ins_chunk = c
            .prepare(
                "INSERT INTO chunks (doc_id, ord, page_ord, page_no, byte_start, byte_end,
                    char_start, char_end, text, content_hash, teams, classification,
                    injection_score, injection_reasons, embedding, ocr_confidence, acl)
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) RETURNING id",
            )
            .await
            .ctx("prepare chunk insert")?;
        let mut rows = Vec::with_capacity(d.chunks.len());
        for (ord, k) in d.chunks.iter().enumerate() {
            if k.embedding.len() != dim {
                return Err(PgError::Mismatch(format!(
                    "{}: a vector of {} dimensions for a {dim}-dimensional database",
                    d.path,
                    k.embedding.len()
                )));
            }
            let text = d.chunk_text(ord).ok_or_else(|| {
                PgError::Mismatch(format!("{}: chunk {ord} points outside its page", d.path))
            })?;
            let page_no = d.pages[k.page_ord as usize].0;
            rows.push(ChunkRow {
                numbers: [
                    ord as i32,
                    k.page_ord as i32,
                    page_no as i32,
                    k.byte_start as i32,
                    k.byte_end as i32,
                    k.char_start as i32,
                    k.char_end as i32,
                ],
                text,
                hash: k.content_hash.as_slice(),
                score: k.injection.as_ref().map(|v| v.score),
                reasons: k.injection.as_ref().map(|v| v.reasons.clone()),
                embedding: Vector(k.embedding.clone()),
                ocr: d.ocr_of(k.page_ord as usize),
            });
        }
        let chunk_params: Vec<[&(dyn ToSql + Sync); 17]> = rows
            .iter()
            .map(|r| {
                let n = &r.numbers;
                [
                    &id as &(dyn ToSql + Sync),
                    &n[0],
                    &n[1],
                    &n[2],
                    &n[3],
                    &n[4],
                    &n[5],
                    &n[6],
                    &r.text,
                    &r.hash,
                    &teams,
                    &class,
                    &r.score,
                    &r.reasons,
                    &r.embedding,
                    &r.ocr,
                    &acl,
                ]
            })
            .collect();
        let ids = try_join_all(chunk_params.iter().map(|p| c.query_one(&ins_chunk, p)))
            .await
            .ctx("insert chunk")?;
        let mut texts = Vec::with_capacity(rows.len());
        for (row, r) in ids.iter().zip(&rows) {
            texts.push((col::<i64>(row, 0)?, r.text.to_string()));
        }
        postings::add(c, &texts, acl, &mut self.stats).await
    }

    async fn stored_docs(&mut self, root: &str) -> Result<Vec<StoredDoc>, PgError> {
        self.lock_root(root).await?;
        let c = &self.client;
        let rows = c
            .query(
                "SELECT d.id, d.root, d.path, d.size, d.mtime_ns, d.checked_at_ns, d.sha256,
                        d.teams, d.classification, d.rule_source,
                        (SELECT count(*) FROM chunks k WHERE k.doc_id = d.id)
                 FROM documents d WHERE d.root = $1 ORDER BY d.id",
                &[&root],
            )
            .await
            .ctx("stored documents")?;
        let mut docs: Vec<StoredDoc> = rows
            .iter()
            .map(|r| {
                Ok(StoredDoc {
                    id: col::<i64>(r, 0)? as u64,
                    root: col(r, 1)?,
                    path: col(r, 2)?,
                    size: col::<i64>(r, 3)? as u64,
                    mtime_ns: col(r, 4)?,
                    checked_at_ns: col(r, 5)?,
                    sha256: col(r, 6)?,
                    access: rule_of(col(r, 7)?, col(r, 8)?)?,
                    rule_source: col(r, 9)?,
                    n_chunks: col::<i64>(r, 10)? as u32,
                    flagged: Vec::new(),
                })
            })
            .collect::<Result<_, PgError>>()?;
        let flagged = c
            .query(
                "SELECT k.doc_id, k.ord, k.injection_score, k.injection_reasons, k.id
                 FROM chunks k JOIN documents d ON d.id = k.doc_id
                 WHERE d.root = $1 AND k.injection_score IS NOT NULL ORDER BY k.doc_id, k.ord",
                &[&root],
            )
            .await
            .ctx("stored verdicts")?;
        let pos: std::collections::HashMap<u64, usize> =
            docs.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        for r in &flagged {
            let doc = col::<i64>(r, 0)? as u64;
            if let (Some(&i), Some(verdict)) = (pos.get(&doc), verdict_of(col(r, 2)?, col(r, 3)?)) {
                docs[i].flagged.push(ChunkVerdict {
                    ord: col::<i32>(r, 1)? as u32,
                    chunk_id: col::<i64>(r, 4)? as u64,
                    verdict,
                });
            }
        }
        Ok(docs)
    }
}

// No `Drop`: an uncommitted transaction ends with the writer's connection
// (dropping the client closes it, and the server rolls the work back).

/// The contract's steps as async functions; each [`IndexWrite`] method runs
/// one to its end on the pool's runtime (the contract is synchronous).
impl PgWriter {
    async fn chunk_texts_now(&mut self, id: u64) -> Result<Vec<String>, PgError> {
        self.begin().await?;
        let rows = self
            .client
            .query(
                "SELECT text FROM chunks WHERE doc_id = $1 ORDER BY ord",
                &[&(id as i64)],
            )
            .await
            .ctx("chunk texts")?;
        rows.iter().map(|r| col(r, 0)).collect()
    }

    async fn set_detector_now(&mut self, version: u32) -> Result<(), PgError> {
        self.begin().await?;
        self.client
            .execute(
                "INSERT INTO hort_meta (key, value) VALUES ('detector', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&version.to_string()],
            )
            .await
            .ctx("record the detector")?;
        self.detector = version;
        Ok(())
    }

    async fn expect_now(&mut self, docs: usize) -> Result<(), PgError> {
        if docs <= BULK_DOCS || self.rebuild_index {
            return Ok(());
        }
        self.begin().await?;
        let empty: bool = col(
            &self
                .client
                .query_one("SELECT NOT EXISTS (SELECT 1 FROM chunks)", &[])
                .await
                .ctx("count chunks")?,
            0,
        )?;
        if empty {
            self.client
                .batch_execute(
                    "DROP INDEX IF EXISTS chunks_embedding; DROP INDEX IF EXISTS chunk_terms_recent;",
                )
                .await
                .ctx("drop vector and postings indexes")?;
            self.rebuild_index = true;
        }
        Ok(())
    }

    async fn set_access_now(
        &mut self,
        id: u64,
        access: Option<AccessRule>,
        rule_source: Option<String>,
    ) -> Result<(), PgError> {
        self.begin().await?;
        let (teams, class) = rule_columns(access.as_ref());
        let id = id as i64;
        let acl = self.access_set(&teams, class).await?;
        // The chunks leave their set for another: both change.
        self.touch_set_of(id).await?;
        self.touched.insert(acl);
        let c = &self.client;
        c.execute(
            "UPDATE documents SET teams = $2, classification = $3, rule_source = $4, acl = $5
             WHERE id = $1",
            &[&id, &teams, &class, &rule_source, &acl],
        )
        .await
        .ctx("change a rule")?;
        c.execute(
            "UPDATE pages SET teams = $2, classification = $3, acl = $4 WHERE doc_id = $1",
            &[&id, &teams, &class, &acl],
        )
        .await
        .ctx("change a rule (pages)")?;
        c.execute(
            "UPDATE chunks SET teams = $2, classification = $3, acl = $4 WHERE doc_id = $1",
            &[&id, &teams, &class, &acl],
        )
        .await
        .ctx("change a rule (chunks)")?;
        postings::set_acl(&self.client, id, acl).await?;
        Ok(())
    }

    /// Marks the access set of document `id` (as stored now) as changed
    /// by this transaction: it gets a new version when it commits.
    async fn touch_set_of(&mut self, id: i64) -> Result<(), PgError> {
        if let Some(r) = self
            .client
            .query_opt("SELECT acl FROM documents WHERE id = $1", &[&id])
            .await
            .ctx("read a document's access set")?
        {
            self.touched.insert(col(&r, 0)?);
        }
        Ok(())
    }

    async fn set_verdicts_now(
        &mut self,
        id: u64,
        flagged: Vec<ChunkVerdict>,
    ) -> Result<(), PgError> {
        self.begin().await?;
        let id = id as i64;
        // A verdict is part of what a node keeps of a chunk (its text, see
        // `texts.rs`): the set's new version tells nodes to read it again.
        self.touch_set_of(id).await?;
        let c = &self.client;
        c.execute(
            "UPDATE chunks SET injection_score = NULL, injection_reasons = NULL WHERE doc_id = $1",
            &[&id],
        )
        .await
        .ctx("clear verdicts")?;
        for f in flagged {
            c.execute(
                "UPDATE chunks SET injection_score = $3, injection_reasons = $4
                 WHERE doc_id = $1 AND ord = $2",
                &[&id, &(f.ord as i32), &f.verdict.score, &f.verdict.reasons],
            )
            .await
            .ctx("store a verdict")?;
        }
        Ok(())
    }

    async fn touch_now(
        &mut self,
        id: u64,
        size: u64,
        mtime_ns: i64,
        checked_at_ns: i64,
    ) -> Result<(), PgError> {
        self.begin().await?;
        self.client
            .execute(
                "UPDATE documents SET size = $2, mtime_ns = $3, checked_at_ns = $4 WHERE id = $1",
                &[&(id as i64), &(size as i64), &mtime_ns, &checked_at_ns],
            )
            .await
            .ctx("touch a document")?;
        Ok(())
    }

    async fn remove_now(&mut self, id: u64) -> Result<bool, PgError> {
        self.begin().await?;
        self.delete_document(id as i64).await
    }

    async fn set_failures_now(
        &mut self,
        root: &str,
        failed: Vec<FailedFile>,
    ) -> Result<(), PgError> {
        self.begin().await?;
        let c = &self.client;
        c.execute("DELETE FROM ingest_failures WHERE root = $1", &[&root])
            .await
            .ctx("clear failed files")?;
        for f in failed {
            c.execute(
                "INSERT INTO ingest_failures (root, path, error, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (root, path) DO UPDATE SET error = EXCLUDED.error, at = EXCLUDED.at",
                &[&f.root, &f.path, &f.error, &(f.at as i64)],
            )
            .await
            .ctx("record a failed file")?;
        }
        Ok(())
    }

    async fn commit_now(&mut self) -> Result<u64, PgError> {
        if !self.in_tx {
            return Ok(0);
        }
        self.commit_tx().await?;
        // Compaction needs writers out, this one included: it runs after
        // the commit, in a transaction of its own.
        // What was written is committed either way: searches read it from
        // the rows until a later compaction folds it into blocks, so a
        // failed compaction is reported, not returned.
        let force = std::mem::take(&mut self.force_compact);
        if let Err(e) = blocks::compact(&self.client, force).await {
            tracing::warn!(error = %e, "compacting keyword postings failed; the next commit retries");
            eprintln!("hort: compacting keyword postings failed ({e}); searches stay exact, the next commit retries");
        }
        Ok(0)
    }

    async fn commit_tx(&mut self) -> Result<(), PgError> {
        let mut vacuum = false;
        if self.rebuild_index {
            let m = self.store.meta();
            let sql = format!(
                "SELECT set_config('maintenance_work_mem', CASE
                     WHEN pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('1GB')
                     THEN '1GB' ELSE current_setting('maintenance_work_mem') END, true);
                 CREATE INDEX IF NOT EXISTS chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = {}, ef_construction = {});
                 CREATE INDEX IF NOT EXISTS chunk_terms_recent ON chunk_terms (field, term, chunk_id) INCLUDE (tf, len, acl);
                 ANALYZE chunks; ANALYZE documents; ANALYZE chunk_terms;",
                m.m.clamp(2, 100),
                m.ef_construction.clamp(4, 1000)
            );
            self.client
                .batch_execute(&sql)
                .await
                .ctx("build vector and postings indexes")?;
            self.rebuild_index = false;
            vacuum = true;
        }
        if self.chunker_changed() {
            self.client
                .execute(
                    "UPDATE hort_meta SET value = $1 WHERE key = 'chunker'",
                    &[&self.chunker],
                )
                .await
                .ctx("record the chunker")?;
            self.stored_chunker = self.chunker.clone();
        }
        postings::apply(&self.client, std::mem::take(&mut self.stats)).await?;
        if !self.touched.is_empty() {
            // Last before the commit, locked in id order: writers of the
            // same sets wait for each other only this long, and never in
            // a cycle.
            let ids: Vec<i32> = self.touched.iter().copied().collect();
            self.client
                .execute(
                    "UPDATE access_sets SET version = floor(random() * 9.2e18)::bigint
                     WHERE id IN (SELECT id FROM access_sets WHERE id = ANY($1) ORDER BY id FOR UPDATE)",
                    &[&ids],
                )
                .await
                .ctx("version the changed access sets")?;
        }
        crate::store::fsutil::crashpoint("pg:before-commit");
        self.client.batch_execute("COMMIT").await.ctx("commit")?;
        self.touched.clear();
        self.in_tx = false;
        self.locked.clear();
        self.store.counts_changed();
        if vacuum {
            // After a bulk load: the visibility map lets the postings walk
            // stay index-only (autovacuum would get there later; searches
            // until then visit the table for every posting). Statistics
            // were gathered before the commit.
            if let Err(e) = self
                .client
                .batch_execute("VACUUM chunk_terms, chunks")
                .await
            {
                tracing::warn!(error = %e, "vacuum after a bulk load failed; autovacuum will follow");
            }
        }
        Ok(())
    }
}

impl IndexWrite for PgWriter {
    fn stored(&mut self, root: &str) -> Result<Vec<StoredDoc>, StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.stored_docs(root))?)
    }

    fn chunk_texts(&mut self, id: u64) -> Result<Vec<String>, StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.chunk_texts_now(id))?)
    }

    fn chunker_changed(&self) -> bool {
        !self.stored_chunker.is_empty() && self.stored_chunker != self.chunker
    }

    fn detector(&self) -> u32 {
        self.detector
    }

    fn set_detector(&mut self, version: u32) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.set_detector_now(version))?)
    }

    fn expect(&mut self, docs: usize) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.expect_now(docs))?)
    }

    fn put(&mut self, doc: NewDocument) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.put_document(&doc))?)
    }

    fn set_access(
        &mut self,
        id: u64,
        access: Option<AccessRule>,
        rule_source: Option<String>,
    ) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store
            .write
            .block(self.set_access_now(id, access, rule_source))?)
    }

    fn set_verdicts(&mut self, id: u64, flagged: Vec<ChunkVerdict>) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.set_verdicts_now(id, flagged))?)
    }

    fn touch(
        &mut self,
        id: u64,
        size: u64,
        mtime_ns: i64,
        checked_at_ns: i64,
    ) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store
            .write
            .block(self.touch_now(id, size, mtime_ns, checked_at_ns))?)
    }

    fn remove(&mut self, id: u64) -> Result<bool, StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.remove_now(id))?)
    }

    fn set_failures(&mut self, root: &str, failed: Vec<FailedFile>) -> Result<(), StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.set_failures_now(root, failed))?)
    }

    /// Rebuilds the keyword blocks if enough changed (or `force`); the
    /// database keeps the rest of its storage tidy itself (autovacuum).
    /// Inside a transaction this waits for its commit (compaction must not
    /// overlap any writer's), and reports nothing yet.
    fn compact(&mut self, force: bool) -> Result<CompactStats, StoreError> {
        if self.in_tx {
            self.force_compact |= force;
            return Ok(CompactStats::default());
        }
        let store = self.store.clone();
        let done = store.write.block(blocks::compact(&self.client, force))?;
        Ok(CompactStats {
            merged_segments: usize::from(done.built),
            dropped_chunks: if done.built { done.retired as usize } else { 0 },
        })
    }

    fn commit(&mut self) -> Result<u64, StoreError> {
        let store = self.store.clone();
        Ok(store.write.block(self.commit_now())?)
    }
}

/// PostgreSQL as a [`Store`]: every view is the database itself.
pub struct PgBackend {
    pg: Arc<PgStore>,
    chunker: String,
}

impl PgBackend {
    /// PostgreSQL as a store for vectors cut by `chunker`.
    pub fn new(pg: Arc<PgStore>, chunker: &str) -> PgBackend {
        PgBackend {
            pg,
            chunker: chunker.to_string(),
        }
    }

    /// The database (for the gateway's ledger and tools).
    pub fn database(&self) -> &Arc<PgStore> {
        &self.pg
    }
}

impl Store for PgBackend {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn reader(&self) -> Arc<dyn IndexRead> {
        // One per search: it remembers the access sets' versions its
        // vector side read, for the texts the node keeps.
        Arc::new(super::PgView::new(self.pg.clone()))
    }

    fn refresh(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn writer(&self) -> Result<Box<dyn IndexWrite>, StoreError> {
        Ok(Box::new(PgWriter::open(self.pg.clone(), &self.chunker)?))
    }

    fn warm_up(&self) {
        self.pg.counts.prefetch(self.pg.reads().clone());
    }

    fn waiting_for(&self) -> Option<&'static str> {
        (!self.pg.counts.are_read()).then_some("planner counts")
    }
}
