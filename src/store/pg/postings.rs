//! BM25 inside PostgreSQL: postings written from hort's own analysers
//! ([`keyword::chunk_terms`]), statistics kept by each write transaction,
//! and a ranked search that walks each query term's postings best first,
//! filtered by access inside the index.
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
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// The chunk length the walk order assumes (the real average is applied
/// when scoring; the order only decides which postings are read first).
const REF_LEN: f64 = 100.0;

/// Postings read per query term and field at most, best first. Terms rarer
/// than this are read whole, so truncation touches only common terms, whose
/// idf (and so share of a score) is small. `hort bench backends` reports
/// how much of the embedded backend's keyword top 10 survives it.
pub const WALK_DEPTH: i64 = 2000;

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
const FIELDS: usize = TermField::ALL.len();

impl StatsDelta {
    fn is_empty(&self) -> bool {
        self.df.is_empty() && self.chunks == [0; FIELDS] && self.tokens == [0; FIELDS]
    }
}

/// The order key of a posting: BM25's tf factor at [`REF_LEN`].
fn impact(tf: u32, len: u32) -> f32 {
    let tf = tf as f64;
    (tf / (tf + K1 * (1.0 - B + B * len as f64 / REF_LEN))) as f32
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
    impact: Vec<f32>,
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
                    r.impact.push(impact(tf, len as u32));
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
                "INSERT INTO chunk_terms (chunk_id, field, term, tf, len, acl, impact)
                 SELECT * FROM unnest($1::bigint[], $2::int2[], $3::text[], $4::int[], $5::int[], $6::int[], $7::real[])",
                &[
                    &&self.chunk[r.clone()],
                    &&self.field[r.clone()],
                    &&self.term[r.clone()],
                    &&self.tf[r.clone()],
                    &&self.len[r.clone()],
                    &&self.acl[r.clone()],
                    &&self.impact[r],
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

/// Counts the postings of document `doc` out of the statistics (before the
/// document is deleted; its postings go with its chunks).
pub(crate) async fn forget(
    c: &(impl GenericClient + Sync),
    doc: i64,
    delta: &mut StatsDelta,
) -> Result<(), PgError> {
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

/// Moves a document's postings to access set `acl` (its rule changed).
pub(crate) async fn set_acl(
    c: &(impl GenericClient + Sync),
    doc: i64,
    acl: i32,
) -> Result<(), PgError> {
    c.execute(
        "UPDATE chunk_terms SET acl = $2
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
type Question = (Vec<i16>, Vec<String>, Vec<f64>);

/// The terms of `query` as a [`Question`].
fn query_arrays(query: &str) -> Question {
    let mut fields = Vec::new();
    let mut terms = Vec::new();
    let mut boosts = Vec::new();
    for (f, t) in keyword::query_terms(query) {
        fields.push(f.code());
        terms.push(t);
        boosts.push(f.boost() as f64);
    }
    (fields, terms, boosts)
}

/// Visible postings of the question's terms up to which all of them are
/// scored (exact BM25); above, each term's postings are walked best first
/// to [`WALK_DEPTH`]. Measured at 100,000 chunks over 16 questions and five
/// principals (`EXPLAIN ANALYZE`): the exact plan is faster below about
/// 7,000 visible postings, the walk above about 9,000.
pub const EXACT_POSTINGS: f64 = 8_000.0;

/// BM25 over the postings of the query's terms, every visible posting
/// (`exact`) or each term's best [`WALK_DEPTH`], the best candidates of
/// which are then scored on every term. `$1..$3` the query's
/// (field, term, boost), `$4` the access sets to admit (or, with
/// `$5 = true`, to exclude), `$6` document ids or NULL, `$7` the walk depth
/// (unused when exact), `$8` how many to return. Per-posting arithmetic is
/// in float8 (numeric would cost more than the walk).
fn ranked(exact: bool) -> String {
    // The walk must follow `chunk_terms_walk` in order; `acl + 0` keeps the
    // planner from reading the term through the index by access set and
    // sorting (which it picks once statistics say the filter is selective,
    // and which reads every posting of a common word: measured 0.5 s).
    let (acl, order, tail) = if exact {
        (
            "p.acl",
            "AND $7::bigint IS NOT NULL",
            "SELECT chunk_id, sum(part)::real AS score FROM h GROUP BY chunk_id
             ORDER BY score DESC, chunk_id LIMIT $8",
        )
    } else {
        // A chunk missing from some term's walk has only part of its
        // score: the best candidates are scored again on every term, from
        // all of each candidate's postings (the primary key; `OFFSET 0`
        // keeps the planner from probing the walk index per chunk and
        // term instead, which reads a common word's whole list each time:
        // measured 1.5 s against 4 ms).
        (
            "p.acl + 0",
            "ORDER BY p.impact DESC LIMIT $7",
            "SELECT c.chunk_id, f.score::real AS score FROM (
                 SELECT chunk_id FROM h GROUP BY chunk_id
                 ORDER BY sum(part) DESC, chunk_id LIMIT greatest($8::bigint * 4, 200)) c
             CROSS JOIN LATERAL (
                 SELECT sum({part_p}) AS score
                 FROM (SELECT field, term, tf, len FROM chunk_terms p
                       WHERE p.chunk_id = c.chunk_id OFFSET 0) p
                 JOIN s ON s.field = p.field AND s.term = p.term) f
             ORDER BY score DESC, c.chunk_id LIMIT $8",
        )
    };
    let tail = tail.replace("{part_p}", &bm25_part("p"));
    format!(
        "
WITH q AS (SELECT * FROM unnest($1::int2[], $2::text[], $3::float8[]) AS q(field, term, boost)),
n AS (SELECT greatest(sum(chunks) FILTER (WHERE field <> 2), 1)::float8 AS n FROM field_lengths),
s AS (
    SELECT q.field, q.term,
           q.boost * ln(1 + (n.n - d.df + 0.5) / (d.df + 0.5)) * {w_factor} AS w,
           {k_b} / greatest(f.tokens::float8 / n.n, 1e-9) AS c
    FROM q CROSS JOIN n
    JOIN term_df d ON d.field = q.field AND d.term = q.term
    JOIN field_lengths f ON f.field = q.field),
h AS (
    SELECT x.chunk_id, {part_x} AS part
    FROM s CROSS JOIN LATERAL (
        SELECT p.chunk_id, p.tf, p.len FROM chunk_terms p
        WHERE p.field = s.field AND p.term = s.term
          AND ({acl} = ANY($4)) <> $5
          AND ($6::bigint[] IS NULL OR p.chunk_id IN (SELECT id FROM chunks WHERE doc_id = ANY($6)))
        {order}) x)
{tail}",
        part_x = bm25_part("x"),
        w_factor = format_args!("{:.6}::float8", 1.0 + K1),
        k_b = format_args!("{:.6}::float8", K1 * B),
    )
}

/// One posting's share of a BM25 score in [`ranked`]: the term's weight
/// `s.w` (idf × boost × (k1 + 1)) times the saturated tf, with `s.c`
/// (k1 · b / average length) normalising the posting's length. Posting
/// columns are read from `alias`.
fn bm25_part(alias: &str) -> String {
    format!(
        "s.w * {alias}.tf::float8 / ({alias}.tf::float8 + {k_1b:.6}::float8 + s.c * {alias}.len::float8)",
        k_1b = K1 * (1.0 - B)
    )
}

/// Whether to score every visible posting: when about `visible` of `total`
/// chunks are visible and the question's terms have `postings` postings in
/// all, the visible ones are few enough.
fn exact_plan(visible: i64, total: i64, postings: i64, budget: f64) -> bool {
    let share = (visible as f64 / total.max(1) as f64).clamp(0.0, 1.0);
    share * postings as f64 <= budget
}

impl PgStore {
    /// The keyword candidates (chunk id, BM25 score) of `who`, best first.
    ///
    /// Runs as the connecting role, with the access rule as the set of
    /// access sets the principal may see, checked on every posting inside
    /// the index walk (so never after a cut-off). These are ids only: every
    /// chunk's content is read later under row-level security
    /// ([`PgStore::chunk_hits`]), so a mistake here could cost a rank,
    /// never disclose text.
    pub(crate) fn keyword_candidates(
        &self,
        who: &crate::acl::Principal,
        docs: Option<&CompiledDocFilter>,
        query: &str,
        want: usize,
    ) -> Result<Vec<(u64, f32)>, PgError> {
        let access = Access::of(who);
        let question = query_arrays(query);
        if access.teams.is_empty() || want == 0 || question.1.is_empty() {
            return Ok(Vec::new());
        }
        let (visible, total) = self.estimate_visible(&access)?;
        let budget = self.exact_postings;
        let docs = docs.cloned();
        let want = want as i64;
        self.reads().run(move |c| {
            async move {
                let ids = Self::doc_ids(c, docs.as_ref()).await?;
                let (tx, sets, postings) = begin(c, &access, &question).await?;
                let sql = ranked(exact_plan(visible, total, postings, budget));
                let rows = ranked_rows(&tx, &sql, &question, (&sets, false), &ids, want)
                    .await
                    .ctx("keyword search")?;
                tx.commit().await.ctx("end keyword read")?;
                rows.iter()
                    .map(|r| Ok((col::<i64>(r, 0)? as u64, col::<f32>(r, 1)?)))
                    .collect()
            }
            .boxed()
        })
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
        let question = query_arrays(text);
        if question.1.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let n = n as i64;
        self.reads().run(move |c| {
            async move {
                let (tx, sets, _) = begin(c, &access, &question).await?;
                let sql = format!(
                    "SELECT k.text FROM ({}) r JOIN chunks k ON k.id = r.chunk_id
                     ORDER BY r.score DESC, r.chunk_id",
                    ranked(false)
                );
                let rows = ranked_rows(&tx, &sql, &question, (&sets, true), &None, n)
                    .await
                    .ctx("leak check")?;
                tx.commit().await.ctx("end leak check")?;
                rows.iter().map(|r| col(r, 0)).collect()
            }
            .boxed()
        })
    }
}

/// Runs a [`ranked`] query: `sets` admitted (or, if the flag is set,
/// excluded), `docs` the documents to keep (all if `None`), `want` rows.
async fn ranked_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    q: &Question,
    (sets, exclude): (&[i32], bool),
    docs: &Option<Vec<i64>>,
    want: i64,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query(
        &statement,
        &[
            &q.0,
            &q.1,
            &q.2,
            &sets,
            &exclude,
            docs,
            &WALK_DEPTH.max(want),
            &want,
        ],
    )
    .await
}

/// A read-only transaction (as the owner, see
/// [`PgStore::keyword_candidates`]), the access sets `access` may see, and
/// how many postings the question's terms have in all (for the plan), read
/// in one round trip.
async fn begin<'c>(
    c: &'c mut Conn,
    access: &Access,
    q: &Question,
) -> Result<(deadpool_postgres::Transaction<'c>, Vec<i32>, i64), PgError> {
    let tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .ctx("begin read")?;
    let statement = tx
        .prepare_cached(
            "SELECT ARRAY(SELECT id FROM access_sets WHERE teams && $1 AND classification <= $2),
                    (SELECT coalesce(sum(d.df), 0)::bigint
                     FROM unnest($3::int2[], $4::text[]) q(field, term)
                     JOIN term_df d ON d.field = q.field AND d.term = q.term)",
        )
        .await
        .ctx("prepare visible access sets")?;
    let row = tx
        .query_one(&statement, &[&access.teams, &access.clearance, &q.0, &q.1])
        .await
        .ctx("visible access sets")?;
    Ok((tx, col(&row, 0)?, col(&row, 1)?))
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
    fn few_visible_postings_are_scored_exactly() {
        let b = EXACT_POSTINGS;
        assert!(exact_plan(100, 100, 5_000, b));
        assert!(!exact_plan(100, 100, 50_000, b));
        assert!(exact_plan(1, 100, 50_000, b));
        assert!(exact_plan(0, 0, 1_000_000, b));
        assert!(!exact_plan(1, 100, 1, 0.0));
    }

    #[test]
    fn the_walk_order_prefers_more_occurrences_and_shorter_chunks() {
        assert!(impact(3, 100) > impact(1, 100));
        assert!(impact(1, 50) > impact(1, 200));
        assert!(impact(1, 100) > 0.0 && impact(1000, 100) < 1.0);
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
