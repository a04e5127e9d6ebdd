//! BM25 inside PostgreSQL: postings written from hort's own analysers
//! ([`keyword::chunk_terms`]), statistics kept by each write transaction,
//! and a ranked search over them (read as blocks, see [`super::blocks`]),
//! filtered by access set before anything is ranked.
//!
//! Why not PostgreSQL's full text: `ts_rank` is not BM25 (SciFact 0.705
//! against 0.725 embedded), it scores every row holding any word of the
//! question, and its stemming differs from the embedded index's, so the
//! two backends ranked alike only by chance. Here both backends use the
//! same terms, fields, boosts and formula (tantivy's: k1 = 1.2, b = 0.75,
//! idf = ln(1 + (N − df + 0.5) / (df + 0.5)), N all chunks, average length
//! per field over all chunks, a chunk's length quantised as tantivy stores
//! it). One difference remains: tantivy counts deleted chunks in N and df
//! until its segments merge; here they leave at once.
//!
//! Statistics (document frequency per term, chunks and tokens per field)
//! change with every document; a folder's sync collects its changes in a
//! [`StatsDelta`] and applies them, in one sorted statement, just before it
//! commits, so concurrent writers hold those rows for milliseconds and
//! always lock them in the same order (no deadlock).
//!
//! [`keyword::chunk_terms`]: crate::store::keyword::chunk_terms

use std::collections::HashMap;

use futures_util::FutureExt;
use rayon::prelude::*;
use tokio_postgres::GenericClient;

use super::{col, Access, Conn, Ctx, PgError, PgStore, Pool};
use crate::store::docfilter::CompiledDocFilter;
use crate::store::keyword::{self, TermField};

/// BM25's term-frequency saturation and length normalisation (tantivy's).
pub(crate) const K1: f64 = 1.2;
pub(crate) const B: f64 = 0.75;

/// Postings per insert statement.
const INSERT_BATCH: usize = 50_000;

/// The version of the postings' analysis; postings of another version are
/// rebuilt when a store opens (like the embedded index's keyword schema).
const POSTINGS_VERSION: &str = "bm25-1";

/// Statistics a write transaction changes, applied at its commit.
#[derive(Debug, Default)]
pub(crate) struct StatsDelta {
    df: HashMap<(i16, String), i64>,
    chunks: [i64; FIELDS],
    tokens: [i64; FIELDS],
}

/// How many keyword fields there are (the slots of per-field counts).
pub(crate) const FIELDS: usize = TermField::ALL.len();

impl StatsDelta {
    fn is_empty(&self) -> bool {
        self.df.is_empty() && self.chunks == [0; FIELDS] && self.tokens == [0; FIELDS]
    }
}

/// A chunk's length as tantivy scores it: quantised to one of 256 levels
/// (exact up to 40 tokens, then in steps of a few per cent), so that both
/// backends give a chunk the same score.
fn norm(len: u32) -> i32 {
    use tantivy::fieldnorm::FieldNormReader;
    FieldNormReader::id_to_fieldnorm(FieldNormReader::fieldnorm_to_id(len)).min(i32::MAX as u32)
        as i32
}

/// Rows for `chunk_terms`, column by column (one statement per batch).
#[derive(Default)]
struct Rows {
    chunk: Vec<i64>,
    field: Vec<i16>,
    term: Vec<String>,
    tf: Vec<i32>,
    len: Vec<i32>,
    acl: Vec<i32>,
}

impl Rows {
    /// Analyses `chunks` (id, text) on every core and adds their postings,
    /// counting them into `delta`. Each chunk and field also gets a row for
    /// the empty term: it carries the length, so that removing the chunk
    /// later finds what to subtract.
    fn of(chunks: &[(i64, String)], acl: i32, delta: &mut StatsDelta) -> Rows {
        let analysed: Vec<(i64, Vec<keyword::FieldTerms>)> = chunks
            .par_iter()
            .map(|(id, text)| (*id, keyword::chunk_terms(text)))
            .collect();
        let mut r = Rows::default();
        for (id, fields) in analysed {
            for f in fields {
                let code = f.field.code();
                delta.chunks[f.field as usize] += 1;
                delta.tokens[f.field as usize] += f.len as i64;
                let len = norm(f.len);
                // The marker row's tf is the exact length (field totals
                // are exact sums); `len` is what scoring uses.
                let marker = std::iter::once((String::new(), f.len));
                for (term, tf) in marker.chain(f.terms) {
                    if !term.is_empty() {
                        *delta.df.entry((code, term.clone())).or_default() += 1;
                    }
                    r.chunk.push(id);
                    r.field.push(code);
                    r.term.push(term);
                    r.tf.push(tf.min(i32::MAX as u32) as i32);
                    r.len.push(len);
                    r.acl.push(acl);
                }
            }
        }
        r
    }

    /// Inserts the rows, at most [`INSERT_BATCH`] per statement (a long
    /// document's postings would otherwise make one message of many MB).
    async fn insert(&self, c: &(impl GenericClient + Sync)) -> Result<(), PgError> {
        for r in batches(self.chunk.len(), INSERT_BATCH) {
            c.execute(
                "INSERT INTO chunk_terms (chunk_id, field, term, tf, len, acl)
                 SELECT * FROM unnest($1::bigint[], $2::int2[], $3::text[], $4::int[], $5::int[], $6::int[])",
                &[
                    &&self.chunk[r.clone()],
                    &&self.field[r.clone()],
                    &&self.term[r.clone()],
                    &&self.tf[r.clone()],
                    &&self.len[r.clone()],
                    &&self.acl[r],
                ],
            ).await
            .ctx("insert postings")?;
        }
        Ok(())
    }
}

/// `0..n` in consecutive ranges of at most `size`.
fn batches(n: usize, size: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let size = size.max(1);
    (0..n).step_by(size).map(move |s| s..(s + size).min(n))
}

/// Writes the postings of a document's chunks (id, text), readable under
/// access set `acl`.
pub(crate) async fn add(
    c: &(impl GenericClient + Sync),
    chunks: &[(i64, String)],
    acl: i32,
    delta: &mut StatsDelta,
) -> Result<(), PgError> {
    Rows::of(chunks, acl, delta).insert(c).await
}

/// Counts the postings of document `doc` out of the statistics and retires
/// them from the blocks (before the document is deleted; its postings go
/// with its chunks).
pub(crate) async fn forget(
    c: &tokio_postgres::Client,
    doc: i64,
    delta: &mut StatsDelta,
) -> Result<(), PgError> {
    super::blocks::retire(c, doc).await?;
    let rows = c
        .query(
            "SELECT p.field, p.term, count(*), sum(p.tf)::bigint
             FROM chunks k JOIN chunk_terms p ON p.chunk_id = k.id
             WHERE k.doc_id = $1 GROUP BY 1, 2",
            &[&doc],
        )
        .await
        .ctx("count a document's postings")?;
    for r in &rows {
        let field: i16 = col(r, 0)?;
        let term: String = col(r, 1)?;
        let n: i64 = col(r, 2)?;
        let Some(slot) = usize::try_from(field).ok().filter(|f| *f < FIELDS) else {
            return Err(PgError::Mismatch(format!(
                "a posting of unknown field {field}"
            )));
        };
        if term.is_empty() {
            delta.chunks[slot] -= n;
            delta.tokens[slot] -= col::<i64>(r, 3)?;
        } else {
            *delta.df.entry((field, term)).or_default() -= n;
        }
    }
    Ok(())
}

/// Moves a document's postings to access set `acl` (its rule changed); the
/// blocks' copies of them, under the old set, are retired.
pub(crate) async fn set_acl(c: &tokio_postgres::Client, doc: i64, acl: i32) -> Result<(), PgError> {
    super::blocks::retire(c, doc).await?;
    c.execute(
        "UPDATE chunk_terms SET acl = $2, moved = true
         WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = $1)",
        &[&doc, &acl],
    )
    .await
    .ctx("move postings to a new rule")?;
    Ok(())
}

/// Applies `delta` (sorted, so concurrent writers lock rows in one order).
pub(crate) async fn apply(
    c: &(impl GenericClient + Sync),
    delta: StatsDelta,
) -> Result<(), PgError> {
    if delta.is_empty() {
        return Ok(());
    }
    let mut df: Vec<((i16, String), i64)> = delta.df.into_iter().filter(|x| x.1 != 0).collect();
    df.sort_unstable();
    let (fields, terms): (Vec<i16>, Vec<String>) = df.iter().map(|x| x.0.clone()).unzip();
    let counts: Vec<i64> = df.iter().map(|x| x.1).collect();
    c.execute(
        "INSERT INTO term_df (field, term, df)
         SELECT * FROM unnest($1::int2[], $2::text[], $3::bigint[]) ORDER BY 1, 2
         ON CONFLICT (field, term) DO UPDATE SET df = term_df.df + EXCLUDED.df",
        &[&fields, &terms, &counts],
    )
    .await
    .ctx("update document frequencies")?;
    if counts.iter().any(|n| *n < 0) {
        c.execute(
            "DELETE FROM term_df d USING unnest($1::int2[], $2::text[]) u(field, term)
             WHERE d.field = u.field AND d.term = u.term AND d.df <= 0",
            &[&fields, &terms],
        )
        .await
        .ctx("drop unused terms")?;
    }
    for f in TermField::ALL {
        let i = f as usize;
        if delta.chunks[i] != 0 || delta.tokens[i] != 0 {
            c.execute(
                "UPDATE field_lengths SET chunks = chunks + $2, tokens = tokens + $3 WHERE field = $1",
                &[&f.code(), &delta.chunks[i], &delta.tokens[i]],
            ).await
            .ctx("update field lengths")?;
        }
    }
    Ok(())
}

/// The id of the access set (teams, classification), created if new.
/// Runs on its own connection, outside the writer's transaction: a new set
/// inserted inside it would make a concurrent writer with the same set wait
/// for that whole transaction. A set no chunk uses admits nothing.
pub(crate) async fn access_set(pool: &Pool, teams: &[String], class: i32) -> Result<i32, PgError> {
    let mut teams = teams.to_vec();
    teams.sort();
    teams.dedup();
    let c = pool.get().await?;
    {
        if let Some(r) = c
            .query_opt(
                "INSERT INTO access_sets (teams, classification) VALUES ($1, $2)
                 ON CONFLICT (teams, classification) DO NOTHING RETURNING id",
                &[&teams, &class],
            )
            .await
            .ctx("create an access set")?
        {
            return col(&r, 0);
        }
        col(
            &c.query_one(
                "SELECT id FROM access_sets WHERE teams = $1 AND classification = $2",
                &[&teams, &class],
            )
            .await
            .ctx("find an access set")?,
            0,
        )
    }
}

/// SQL for the team array `column` as [`access_set`] stores it: sorted
/// byte-wise (as Rust sorts) and without repeats.
fn team_set(column: &str) -> String {
    format!("ARRAY(SELECT DISTINCT t COLLATE \"C\" FROM unnest({column}) t ORDER BY 1)")
}

/// Builds the postings of every chunk if they are missing or of another
/// analysis version (a database from before BM25, or a new analyser), in
/// one transaction: a crash leaves the old state, and the next open starts
/// again. Runs under the migration lock.
pub(crate) async fn backfill(c: &mut Conn) -> Result<(), PgError> {
    let have: Option<String> = c
        .query_opt("SELECT value FROM hort_meta WHERE key = 'postings'", &[])
        .await
        .ctx("read postings version")?
        .map(|r| col(&r, 0))
        .transpose()?;
    if have.as_deref() == Some(POSTINGS_VERSION) {
        return Ok(());
    }
    let total: i64 = col(
        &c.query_one("SELECT count(*) FROM chunks", &[])
            .await
            .ctx("count chunks")?,
        0,
    )?;
    let tx = c.transaction().await.ctx("begin postings build")?;
    tx.batch_execute(
        "TRUNCATE chunk_terms, term_df; UPDATE field_lengths SET chunks = 0, tokens = 0;",
    )
    .await
    .ctx("clear postings")?;
    super::blocks::reset(&*tx).await?;
    if total > 0 {
        tracing::info!(
            chunks = total,
            "building keyword postings for existing chunks"
        );
        eprintln!("hort: building BM25 postings for {total} chunks already in the database");
    }
    // Access sets of the documents as they are.
    tx.batch_execute(&format!(
        "INSERT INTO access_sets (teams, classification)
         SELECT DISTINCT {}, classification FROM documents ON CONFLICT DO NOTHING",
        team_set("teams")
    ))
    .await
    .ctx("collect access sets")?;
    let chunks_sql = format!(
        "SELECT k.id, k.text, s.id FROM chunks k
         JOIN access_sets s ON s.classification = k.classification AND s.teams = {}
         WHERE k.id > $1 ORDER BY k.id LIMIT 2000",
        team_set("k.teams")
    );
    let mut delta = StatsDelta::default();
    let mut after = 0i64;
    let mut done = 0i64;
    loop {
        let rows = tx
            .query(&chunks_sql, &[&after])
            .await
            .ctx("read chunks for postings")?;
        if rows.is_empty() {
            break;
        }
        let mut by_acl: HashMap<i32, Vec<(i64, String)>> = HashMap::new();
        for r in &rows {
            let id: i64 = col(r, 0)?;
            after = after.max(id);
            by_acl.entry(col(r, 2)?).or_default().push((id, col(r, 1)?));
        }
        for (acl, chunks) in by_acl {
            add(&*tx, &chunks, acl, &mut delta).await?;
        }
        done += rows.len() as i64;
        if done % 20_000 < 2000 {
            eprintln!("hort: postings for {done}/{total} chunks");
        }
    }
    apply(&*tx, delta).await?;
    tx.execute(
        "INSERT INTO hort_meta (key, value) VALUES ('postings', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&POSTINGS_VERSION],
    )
    .await
    .ctx("record postings version")?;
    tx.commit().await.ctx("commit postings build")?;
    Ok(())
}

/// A question's terms as three parallel arrays (field, term, boost).
type Question = super::blocks::Question;

/// The terms of `query` as a [`Question`].
fn query_arrays(query: &keyword::KeywordQuery) -> Question {
    let mut fields = Vec::new();
    let mut terms = Vec::new();
    let mut boosts = Vec::new();
    for t in query.terms() {
        fields.push(t.field.code());
        terms.push(t.term.clone());
        boosts.push(t.weight as f64);
    }
    (fields, terms, boosts)
}

impl PgStore {
    /// The keyword candidates (chunk id, BM25 score) of `who`, best first.
    ///
    /// Runs as the connecting role, with the access rule as the set of
    /// access sets the principal may see, checked on every posting before
    /// any is ranked (so never after a cut-off). These are ids only: every
    /// chunk's content is read later under row-level security
    /// ([`PgStore::chunk_hits`]), so a mistake here could cost a rank,
    /// never disclose text.
    pub(crate) fn keyword_candidates(
        &self,
        who: &crate::acl::Principal,
        docs: Option<&CompiledDocFilter>,
        query: &keyword::KeywordQuery,
        want: usize,
    ) -> Result<Vec<(u64, f32)>, PgError> {
        let access = Access::of(who);
        let question = query_arrays(query);
        if access.teams.is_empty() || want == 0 || question.1.is_empty() {
            return Ok(Vec::new());
        }
        let docs = docs.cloned();
        let cache = self.blocks.clone();
        let hits = self.reads().run(move |c| {
            async move {
                let ids = Self::doc_ids(c, docs.as_ref()).await?;
                let hits = super::blocks::ranked(
                    c,
                    &cache,
                    &access,
                    &question,
                    false,
                    ids.as_deref(),
                    want,
                )
                .await?;
                Ok(hits.into_iter().map(|(id, s)| (id as u64, s)).collect())
            }
            .boxed()
        })?;
        // After the search has read the current compaction's generation.
        if self.blocks.wants_warming() {
            self.warm_blocks();
        }
        Ok(hits)
    }

    /// Starts the job that reads the largest blocks of the current
    /// compaction into the node's cache ([`super::blocks::largest`]);
    /// nothing if it runs. A failure only leaves the blocks to be read by
    /// the searches that need them.
    fn warm_blocks(&self) {
        let (pool, cache) = (self.reads().clone(), self.blocks.clone());
        self.blocks.warming.spawn("hort-kept-blocks", move || {
            let t = std::time::Instant::now();
            let budget = cache.budget();
            match pool.run(move |c| super::blocks::largest(c, budget).boxed()) {
                Ok((generation, read)) => {
                    let (n, postings) =
                        (read.len(), read.iter().map(|(_, d)| d.len()).sum::<usize>());
                    if cache.warm(generation, read) {
                        tracing::info!(
                            blocks = n,
                            postings,
                            seconds = t.elapsed().as_secs_f64(),
                            "keyword blocks read ahead"
                        );
                    }
                }
                Err(e) => tracing::warn!("cannot read keyword blocks ahead: {e}"),
            }
        });
    }

    /// Texts of up to `n` chunks that `who` may *not* see and that share
    /// words with `text` (the generator's check that an answer did not carry
    /// hidden text; runs as the owner, by design).
    pub(crate) fn invisible_texts(
        &self,
        who: &crate::acl::Principal,
        text: &str,
        n: usize,
    ) -> Result<Vec<String>, PgError> {
        let access = Access::of(who);
        let question = query_arrays(&keyword::KeywordQuery::of(text));
        if question.1.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let cache = self.blocks.clone();
        self.reads().run(move |c| {
            async move {
                let hits =
                    super::blocks::ranked(c, &cache, &access, &question, true, None, n).await?;
                let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
                let rows = c
                    .query("SELECT id, text FROM chunks WHERE id = ANY($1)", &[&ids])
                    .await
                    .ctx("leak check")?;
                let mut texts: HashMap<i64, String> = rows
                    .iter()
                    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                    .collect::<Result<_, PgError>>()?;
                Ok(ids.iter().filter_map(|id| texts.remove(id)).collect())
            }
            .boxed()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_documents_are_inserted_in_batches() {
        let all: Vec<_> = batches(120_001, INSERT_BATCH).collect();
        assert_eq!(all, vec![0..50_000, 50_000..100_000, 100_000..120_001]);
        assert_eq!(batches(0, 10).count(), 0);
        assert_eq!(batches(3, 0).collect::<Vec<_>>(), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn rows_count_terms_chunks_and_tokens() {
        let mut delta = StatsDelta::default();
        let rows = Rows::of(
            &[
                (1, "Travel costs are refunded; travel by train.".to_string()),
                (
                    2,
                    "Die Reisekostenabrechnung wird monatlich erstellt.".to_string(),
                ),
            ],
            7,
            &mut delta,
        );
        // English chunk: one length row plus its distinct terms.
        let english: Vec<&str> = rows
            .chunk
            .iter()
            .zip(&rows.term)
            .filter(|(c, _)| **c == 1)
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(english[0], "");
        assert!(english.contains(&"travel"));
        let travel = rows.term.iter().position(|t| t == "travel").unwrap();
        assert_eq!(rows.tf[travel], 2);
        assert_eq!(delta.df[&(0, "travel".to_string())], 1);
        assert_eq!(delta.chunks[TermField::English as usize], 1);
        // German: its field and the compound parts, each counted once.
        assert_eq!(delta.chunks[TermField::German as usize], 1);
        assert_eq!(delta.chunks[TermField::GermanParts as usize], 1);
        assert!(delta.df.contains_key(&(2, "reisekosten".to_string())));
        assert!(rows.acl.iter().all(|a| *a == 7));
        // The marker row carries the exact length, `len` the scored one.
        let marker = rows.term.iter().position(|t| t.is_empty()).unwrap();
        assert_eq!(
            delta.tokens[TermField::English as usize],
            rows.tf[marker] as i64
        );
        assert_eq!(rows.len[marker], rows.tf[marker]);
        assert_eq!(norm(40), 40);
        assert!((norm(1000) - 1000).abs() < 100 && norm(1000) != 1000);
    }
}
