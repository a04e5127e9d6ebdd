//! The read side on PostgreSQL: chunks, documents and pages under row-level
//! security as the asking principal, the owner's views that write checks
//! and copies need, and the [`IndexRead`] implementation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::FutureExt;

use super::texts::Seen;
use super::{class_of, col, in_sets, Access, Conn, Ctx, PgError, PgStore, Vector};
use crate::acl::{AccessRule, Principal};
use crate::store::contract::{IndexRead, Scored};
use crate::store::docfilter::CompiledDocFilter;
use crate::store::keyword::KeywordQuery;
use crate::store::record::{
    ChunkHit, DocSummary, FailedFile, NewChunk, NewDocument, Pages, RuleAt, StoreStats,
    VectorParams, VectorPlan, Verdict,
};
use crate::store::StoreError;

/// A stored rule: no teams means no rule (visible to nobody).
pub(crate) fn rule_of(teams: Vec<String>, level: i32) -> Result<Option<AccessRule>, PgError> {
    if teams.is_empty() {
        return Ok(None);
    }
    Ok(Some(AccessRule {
        teams,
        classification: class_of(level)?,
    }))
}

/// An injection verdict from its two columns.
pub(crate) fn verdict_of(score: Option<f32>, reasons: Option<Vec<String>>) -> Option<Verdict> {
    score.map(|score| Verdict {
        score,
        reasons: reasons.unwrap_or_default(),
    })
}

impl PgStore {
    /// The chunks `ids` that `who` may see and `docs` admits, in the order
    /// asked. With `seen` (the versions of the principal's access sets, as
    /// its view's vector side read them) and no metadata filter, the chunks
    /// this node keeps at those versions are served from memory and only
    /// the others read (see [`texts`](super::texts)).
    pub(crate) fn chunk_hits(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        ids: &[u64],
        seen: Option<&HashMap<i32, i64>>,
    ) -> Result<Vec<ChunkHit>, PgError> {
        let access = Access::of(who);
        if access.teams.is_empty() || ids.is_empty() {
            return Ok(Vec::new());
        }
        let filtered = docs.is_some_and(|d| !d.is_empty());
        let mut rows = match seen {
            Some(versions) if !filtered => self.texts.get(ids, versions),
            _ => Vec::new(),
        };
        let kept: HashSet<u64> = rows.iter().map(|h| h.id).collect();
        let want: Vec<i64> = ids
            .iter()
            .filter(|id| !kept.contains(id))
            .map(|&i| i as i64)
            .collect();
        if !want.is_empty() {
            let docs = docs.cloned();
            let partitioned = self.partitioned;
            let read: Vec<(ChunkHit, i32, i64)> = self.reads().run(move |c| {
                async move {
                    let doc_ids = Self::doc_ids(c, docs.as_ref()).await?;
                    // Each chunk with its access set's version, in the same
                    // snapshot: what the node may keep it under.
                    let fetch = c
                        .prepare_cached(&format!(
                            "{KEPT_CHUNKS}
                             WHERE k.id = ANY($1) AND k.teams && $2 AND k.classification <= $3
                               AND ($4::bigint[] IS NULL OR k.doc_id = ANY($4)){}",
                            in_sets(partitioned, "k.", 2, 3)
                        ))
                        .await
                        .ctx("prepare chunk fetch")?;
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                        [&want, &access.teams, &access.clearance, &doc_ids];
                    // Chunks by primary key, whatever the ids: one plan fits
                    // all, so it is made once per connection, not per fetch
                    // (0.2 ms of a 100-chunk fetch at 100,000 chunks).
                    let rows = access
                        .pipelined(
                            c,
                            "BEGIN READ ONLY",
                            false,
                            "SET LOCAL plan_cache_mode = force_generic_plan",
                            &[(&fetch, &params)],
                        )
                        .await?;
                    rows.iter()
                        .flatten()
                        .map(kept_chunk)
                        .collect::<Result<_, PgError>>()
                }
                .boxed()
            })?;
            rows.extend(read.iter().map(|(h, _, _)| h.clone()));
            self.texts.put(read);
            if seen.is_some() && !filtered {
                self.warm_texts();
            }
        }
        let pos: HashMap<u64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        rows.sort_by_key(|h| pos.get(&h.id).copied().unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// Starts the job that reads every chunk's text ahead into what this
    /// node keeps, unless it runs, ran less than 30 s ago, or found the
    /// corpus larger than `[store] text_cache_mb` (then searches keep what
    /// they read, the least recently used forgotten first). Started by a
    /// search that had to read texts: after the node's first, and after
    /// writes that changed access sets' versions.
    fn warm_texts(&self) {
        if !self.texts.wants_warming() {
            return;
        }
        let cache = self.texts.clone();
        let pool = self.reads().clone();
        // Room left for what searches read beside it.
        let budget = cache.budget() - cache.budget() / 8;
        self.texts.warming.spawn("hort-kept-texts", move || {
            let t = std::time::Instant::now();
            match pool.run(move |c| super::texts::every_text(c, budget).boxed()) {
                Ok((read, complete)) => {
                    let n = read.len();
                    cache.put(read);
                    if !complete {
                        cache.mark_too_big();
                    }
                    tracing::info!(
                        chunks = n,
                        every_chunk = complete,
                        seconds = t.elapsed().as_secs_f64(),
                        "chunk texts read ahead"
                    );
                }
                Err(e) => tracing::warn!("cannot read chunk texts ahead: {e}"),
            }
        });
    }

    /// Documents `who` may see, by path.
    pub(crate) fn visible_documents(&self, who: &Principal) -> Result<Vec<DocSummary>, PgError> {
        let access = Access::of(who);
        self.reads().run(move |c| {
            async move {
                let list = c
                    .prepare_cached(
                        "SELECT d.id, d.path, d.kind, d.classification, d.paged,
                            (SELECT count(*) FROM pages x WHERE x.doc_id = d.id),
                            (SELECT count(*) FROM chunks k WHERE k.doc_id = d.id),
                            d.root = $3
                     FROM documents d
                     WHERE d.teams && $1 AND d.classification <= $2 ORDER BY d.path, d.id",
                    )
                    .await
                    .ctx("prepare document list")?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&access.teams, &access.clearance, &crate::store::UPLOAD_ROOT];
                let rows = access
                    .pipelined(c, "BEGIN READ ONLY", false, "", &[(&list, &params)])
                    .await?;
                rows.iter()
                    .flatten()
                    .map(|r| {
                        Ok(DocSummary {
                            id: col::<i64>(r, 0)? as u64,
                            path: col(r, 1)?,
                            kind: col(r, 2)?,
                            classification: class_of(col(r, 3)?)?,
                            paged: col(r, 4)?,
                            n_pages: (col::<i64>(r, 5)? as u32).max(1),
                            n_chunks: col::<i64>(r, 6)? as u32,
                            uploaded: col(r, 7)?,
                        })
                    })
                    .collect()
            }
            .boxed()
        })
    }

    /// Every document at `path` (any folder, uploads included) with its
    /// rule, read as the owner: a write must know of documents the writer
    /// may not see, to refuse to replace them.
    pub(crate) fn rules_at_path(&self, path: &str) -> Result<Vec<RuleAt>, PgError> {
        let path = path.to_string();
        self.write.run(move |c| {
            async move {
                c.query(
                    "SELECT root, teams, classification FROM documents WHERE path = $1",
                    &[&path],
                )
                .await
                .ctx("documents at a path")?
                .iter()
                .map(|r| {
                    Ok(RuleAt {
                        root: col(r, 0)?,
                        access: rule_of(col(r, 1)?, col(r, 2)?)?,
                    })
                })
                .collect()
            }
            .boxed()
        })
    }

    /// One page (`Some(n)`) or all pages of a document `who` may see, in
    /// one transaction under row-level security, one round trip: the
    /// documents at `path` and the pages asked for are read together (the
    /// page range does not depend on the document found; a page beyond the
    /// last is told from the page count afterwards).
    pub(crate) fn doc_pages(
        &self,
        who: &Principal,
        path: &str,
        page: Option<u32>,
    ) -> Result<Pages, PgError> {
        let access = Access::of(who);
        let path = path.to_string();
        // Pages are 0-based `ord` in the table; page 0 asks for none.
        let (lo, hi): (i32, i32) = match page {
            Some(0) => (-1, -1),
            Some(p) => {
                let p = p.min(i32::MAX as u32) as i32;
                (p - 1, p - 1)
            }
            None => (0, i32::MAX),
        };
        self.reads().run(move |c| {
            async move {
                let find = c
                    .prepare_cached(
                        "SELECT d.id, d.paged, d.classification,
                            (SELECT count(*) FROM pages x WHERE x.doc_id = d.id)
                     FROM documents d
                     WHERE d.path = $1 AND d.teams && $2 AND d.classification <= $3",
                    )
                    .await
                    .ctx("prepare document lookup")?;
                let read = c
                    .prepare_cached(
                        "SELECT p.doc_id, p.text FROM pages p JOIN documents d ON d.id = p.doc_id
                     WHERE d.path = $1 AND d.teams && $2 AND d.classification <= $3
                       AND p.ord BETWEEN $4 AND $5
                     ORDER BY p.doc_id, p.ord",
                    )
                    .await
                    .ctx("prepare page read")?;
                let by_doc: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&path, &access.teams, &access.clearance];
                let in_range: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                    [&path, &access.teams, &access.clearance, &lo, &hi];
                let [docs, pages]: [Vec<tokio_postgres::Row>; 2] = access
                    .pipelined(
                        c,
                        // One snapshot for both: a sync committing between
                        // them must not pair one version's page count with
                        // another's pages.
                        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                        false,
                        "",
                        &[(&find, &by_doc), (&read, &in_range)],
                    )
                    .await?
                    .try_into()
                    .map_err(|_| PgError::Mismatch("page read: not two results".into()))?;
                Ok(match docs.as_slice() {
                    [] => Pages::NotFound,
                    [d] => {
                        let n_pages = col::<i64>(d, 3)? as u32;
                        match page {
                            Some(p) if p == 0 || p > n_pages.max(1) => Pages::OutOfRange(n_pages),
                            _ => {
                                let id: i64 = col(d, 0)?;
                                let mut texts = Vec::new();
                                for r in &pages {
                                    if col::<i64>(r, 0)? == id {
                                        texts.push(col::<String>(r, 1)?);
                                    }
                                }
                                if page.is_some() && texts.is_empty() {
                                    texts.push(String::new());
                                }
                                Pages::Found {
                                    paged: col(d, 1)?,
                                    n_pages,
                                    classification: class_of(col(d, 2)?)?,
                                    texts,
                                }
                            }
                        }
                    }
                    many => Pages::Ambiguous(many.len()),
                })
            }
            .boxed()
        })
    }

    /// Every document with its pages, chunks and vectors, `n` at a time
    /// in id order from id `from` on (owner view, for copying the store).
    pub(crate) fn export_docs(
        &self,
        from: u64,
        n: usize,
    ) -> Result<Vec<(u64, NewDocument)>, PgError> {
        let (from, n) = (from.min(i64::MAX as u64) as i64, n as i64);
        self.write.run(move |c| {
            async move {
                let docs = c
                    .query(
                        "SELECT id FROM documents WHERE id >= $1 ORDER BY id LIMIT $2",
                        &[&from, &n],
                    )
                    .await
                    .ctx("export documents")?;
                let mut out = Vec::with_capacity(docs.len());
                for r in &docs {
                    let id: i64 = col(r, 0)?;
                    out.push((id as u64, load_document(c, id).await?));
                }
                Ok(out)
            }
            .boxed()
        })
    }

    fn counts(&self) -> Result<StoreStats, PgError> {
        self.reads().run(|c| {
            async move {
                let r = c
                    .query_one(
                        "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks),
                            (SELECT count(*) FROM documents WHERE teams = '{}'),
                            (SELECT count(DISTINCT t) FROM documents, unnest(teams) t)",
                        &[],
                    )
                    .await
                    .ctx("count documents")?;
                Ok(StoreStats {
                    documents: col::<i64>(&r, 0)? as usize,
                    chunks: col::<i64>(&r, 1)? as usize,
                    unruled: col::<i64>(&r, 2)? as usize,
                    teams: col::<i64>(&r, 3)? as usize,
                    ..StoreStats::default()
                })
            }
            .boxed()
        })
    }
}

/// One stored document with its pages, chunks and vectors.
pub(crate) async fn load_document(c: &Conn, id: i64) -> Result<NewDocument, PgError> {
    let r = c
        .query_one(
            "SELECT root, path, kind, size, mtime_ns, sha256, teams, classification,
                    rule_source, paged, ingested_at, hygiene_removed, checked_at_ns
             FROM documents WHERE id = $1",
            &[&id],
        )
        .await
        .ctx("read document")?;
    let rows = c
        .query(
            "SELECT page_no, text, ocr_confidence FROM pages WHERE doc_id = $1 ORDER BY ord",
            &[&id],
        )
        .await
        .ctx("read pages")?;
    let mut pages = Vec::with_capacity(rows.len());
    let mut page_ocr = Vec::with_capacity(rows.len());
    for p in &rows {
        pages.push((col::<i32>(p, 0)? as u32, col::<String>(p, 1)?));
        page_ocr.push(col::<Option<f32>>(p, 2)?);
    }
    if page_ocr.iter().all(Option::is_none) {
        page_ocr.clear();
    }
    let chunks = c
        .query(
            "SELECT page_ord, byte_start, byte_end, char_start, char_end, content_hash,
                    injection_score, injection_reasons, embedding
             FROM chunks WHERE doc_id = $1 ORDER BY ord",
            &[&id],
        )
        .await
        .ctx("read chunks")?
        .iter()
        .map(|k| {
            let hash: Vec<u8> = col(k, 5)?;
            let mut content_hash = [0u8; 16];
            let n = hash.len().min(16);
            content_hash[..n].copy_from_slice(&hash[..n]);
            Ok(NewChunk {
                page_ord: col::<i32>(k, 0)? as u32,
                byte_start: col::<i32>(k, 1)? as u32,
                byte_end: col::<i32>(k, 2)? as u32,
                char_start: col::<i32>(k, 3)? as u32,
                char_end: col::<i32>(k, 4)? as u32,
                content_hash,
                injection: verdict_of(col(k, 6)?, col(k, 7)?),
                embedding: col::<Vector>(k, 8)?.0,
            })
        })
        .collect::<Result<_, PgError>>()?;
    Ok(NewDocument {
        root: col(&r, 0)?,
        path: col(&r, 1)?,
        kind: col(&r, 2)?,
        size: col::<i64>(&r, 3)? as u64,
        mtime_ns: col(&r, 4)?,
        sha256: col(&r, 5)?,
        access: rule_of(col(&r, 6)?, col(&r, 7)?)?,
        rule_source: col(&r, 8)?,
        paged: col(&r, 9)?,
        ingested_at: col(&r, 10)?,
        hygiene_removed: col::<i32>(&r, 11)? as usize,
        checked_at_ns: col(&r, 12)?,
        pages,
        page_ocr,
        chunks,
    })
}

/// Chunks as [`kept_chunk`] reads them: what [`chunk_hit`] reads, then
/// the chunk's access set and that set's version (one snapshot), which a
/// node keeps the text under (see [`texts`](super::texts)). A `WHERE`
/// follows.
pub(super) const KEPT_CHUNKS: &str =
    "SELECT k.id, k.doc_id, d.path, d.paged, k.page_no, k.char_start, k.char_end,
            k.text, k.teams, k.classification, k.injection_score, k.injection_reasons,
            k.ocr_confidence, k.acl, a.version
     FROM chunks k JOIN documents d ON d.id = k.doc_id JOIN access_sets a ON a.id = k.acl";

/// A row of [`KEPT_CHUNKS`]: the chunk, its access set and the set's version.
pub(super) fn kept_chunk(r: &tokio_postgres::Row) -> Result<(ChunkHit, i32, i64), PgError> {
    Ok((chunk_hit(r)?, col(r, 13)?, col(r, 14)?))
}

fn chunk_hit(r: &tokio_postgres::Row) -> Result<ChunkHit, PgError> {
    Ok(ChunkHit {
        id: col::<i64>(r, 0)? as u64,
        doc_id: col::<i64>(r, 1)? as u64,
        path: col(r, 2)?,
        paged: col(r, 3)?,
        page_no: col::<i32>(r, 4)? as u32,
        char_start: col::<i32>(r, 5)? as u32,
        char_end: col::<i32>(r, 6)? as u32,
        text: col(r, 7)?,
        access: AccessRule {
            teams: col(r, 8)?,
            classification: class_of(col(r, 9)?)?,
        },
        injection: verdict_of(col(r, 10)?, col(r, 11)?),
        ocr: col(r, 12)?,
    })
}

impl IndexRead for PgStore {
    fn model(&self) -> (String, usize) {
        (self.meta().embedder.clone(), self.meta().dim)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(self.counts()?)
    }

    fn staleness(&self) -> std::time::Duration {
        PgStore::staleness(self)
    }

    fn vector_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &[f32],
        want: usize,
        params: VectorParams,
    ) -> Result<(Scored, Vec<VectorPlan>), StoreError> {
        Ok(self.vector_candidates(who, docs, query, want, params, None)?)
    }

    fn keyword_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &KeywordQuery,
        want: usize,
    ) -> Result<Scored, StoreError> {
        Ok(self.keyword_candidates(who, docs, query, want)?)
    }

    fn chunks(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        ids: &[u64],
    ) -> Result<Vec<ChunkHit>, StoreError> {
        Ok(self.chunk_hits(who, docs, ids, None)?)
    }

    fn hidden_texts(
        &self,
        who: &Principal,
        text: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.invisible_texts(who, text, n)?)
    }

    fn documents(&self, who: &Principal) -> Result<Vec<DocSummary>, StoreError> {
        Ok(self.visible_documents(who)?)
    }

    fn pages(&self, who: &Principal, path: &str, page: Option<u32>) -> Result<Pages, StoreError> {
        Ok(self.doc_pages(who, path, page)?)
    }

    fn rules_at(&self, path: &str) -> Result<Vec<RuleAt>, StoreError> {
        Ok(self.rules_at_path(path)?)
    }

    fn export(&self, from: u64, n: usize) -> Result<Vec<(u64, NewDocument)>, StoreError> {
        Ok(self.export_docs(from, n)?)
    }

    fn failures(&self) -> Result<Vec<FailedFile>, StoreError> {
        Ok(self.write.run(|c| {
            async move {
                c.query(
                    "SELECT root, path, error, at FROM ingest_failures ORDER BY root, path",
                    &[],
                )
                .await
                .ctx("failed files")?
                .iter()
                .map(|r| {
                    Ok(FailedFile {
                        root: col(r, 0)?,
                        path: col(r, 1)?,
                        error: col(r, 2)?,
                        at: col::<i64>(r, 3)?.max(0) as u64,
                    })
                })
                .collect()
            }
            .boxed()
        })?)
    }
}

/// What one search (or one request) reads on PostgreSQL: the store, and
/// the versions of the principal's access sets its vector side read, so
/// that its hits' texts can be served from those the node keeps at the
/// same versions ([`texts`](super::texts)), as if read in that snapshot.
/// Every other read goes to the store as it is.
pub struct PgView {
    store: Arc<PgStore>,
    seen: Seen,
}

impl PgView {
    /// A view of `store` that has read nothing yet.
    pub fn new(store: Arc<PgStore>) -> PgView {
        PgView {
            store,
            seen: Seen::default(),
        }
    }
}

impl IndexRead for PgView {
    fn model(&self) -> (String, usize) {
        self.store.model()
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.store.stats()
    }

    fn staleness(&self) -> std::time::Duration {
        PgStore::staleness(&self.store)
    }

    fn vector_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &[f32],
        want: usize,
        params: VectorParams,
    ) -> Result<(Scored, Vec<VectorPlan>), StoreError> {
        Ok(self
            .store
            .vector_candidates(who, docs, query, want, params, Some(&self.seen))?)
    }

    fn keyword_search(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        query: &KeywordQuery,
        want: usize,
    ) -> Result<Scored, StoreError> {
        self.store.keyword_search(who, docs, query, want)
    }

    fn chunks(
        &self,
        who: &Principal,
        docs: Option<&CompiledDocFilter>,
        ids: &[u64],
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let seen = self.seen.of(&Access::of(who));
        Ok(self.store.chunk_hits(who, docs, ids, seen.as_deref())?)
    }

    fn hidden_texts(
        &self,
        who: &Principal,
        text: &str,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.store.hidden_texts(who, text, n)
    }

    fn documents(&self, who: &Principal) -> Result<Vec<DocSummary>, StoreError> {
        self.store.documents(who)
    }

    fn pages(&self, who: &Principal, path: &str, page: Option<u32>) -> Result<Pages, StoreError> {
        self.store.pages(who, path, page)
    }

    fn rules_at(&self, path: &str) -> Result<Vec<RuleAt>, StoreError> {
        self.store.rules_at(path)
    }

    fn export(&self, from: u64, n: usize) -> Result<Vec<(u64, NewDocument)>, StoreError> {
        self.store.export(from, n)
    }

    fn failures(&self) -> Result<Vec<FailedFile>, StoreError> {
        self.store.failures()
    }
}
