//! The PostgreSQL + pgvector backend: documents, pages, chunks and their
//! embeddings in tables, so that several stateless `hort serve` nodes (and a
//! read replica) answer from one database the company already runs, and
//! several `hort ingest` processes write to it at once.
//!
//! The access rule is enforced twice. Every query carries it in its `WHERE`
//! (`teams && $teams AND classification <= $clearance`, inside the index scan,
//! with pgvector's iterative scan so a narrow filter still yields k rows; or
//! as the access sets it admits, `acl = ANY(…)`, where a plan reads chunks
//! through the index on them), and
//! every read transaction runs as the `hort_reader` role with the principal's
//! teams and clearance set for that transaction only, under row-level
//! security policies that state the same rule. A bug in hort's SQL (a
//! forgotten predicate) therefore still cannot return a row the principal may
//! not see.
//!
//! Keyword search is BM25 over postings the write path fills with the
//! embedded index's own analysers (`postings`), so both backends rank
//! alike; `hort bench quality --pg-url` measures it.
//!
//! Files: [`pool`] (pooled async connections), `schema` (migrations,
//! `.sql` beside it), `search` (the planner and the vector search),
//! `postings` (BM25: postings, statistics, the keyword search), `blocks`
//! (postings compacted into a row per term, and how they are scored), `read`
//! (chunks, documents, pages, export: the [`IndexRead`] side), `write`
//! (a transaction per writer: the [`IndexWrite`] side).
//!
//! [`IndexRead`]: super::IndexRead
//! [`IndexWrite`]: super::IndexWrite

mod blocks;
pub mod pool;
mod postings;
mod read;
mod schema;
mod search;
mod texts;
mod vectors;
mod warm;
mod write;

pub(crate) use search::{beam_for, WALK_MIN_SHARE};

use crate::sync::lock;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::FutureExt;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use crate::acl::{AccessRule, Classification, Principal};
pub use pool::{redact, Conn, Pool, PoolOptions, DEFAULT_POOL_TIMEOUT};
pub use read::PgView;
pub use texts::kept_text_reads;
pub use warm::warming_jobs;
pub use write::{PgBackend, PgWriter};

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No connection.
    #[error("PostgreSQL at {url}: cannot connect: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("PostgreSQL: {context}: {source}")]
    Query {
        /// What it was for.
        context: &'static str,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// The database holds something else than expected (model, schema).
    #[error("PostgreSQL: {0}")]
    Mismatch(String),
    /// The URL cannot be used.
    #[error("PostgreSQL: bad url: {0}")]
    Url(String),
    /// The pool is shut down.
    #[error("PostgreSQL: connection pool stopped")]
    Stopped,
    /// No connection could be had in time (all busy, or the server slow).
    #[error("PostgreSQL busy: {0}")]
    Busy(String),
    /// A job on a pooled connection panicked; the connection was replaced.
    #[error("PostgreSQL: a database job failed unexpectedly ({0})")]
    JobPanicked(String),
    /// The audit chain in the database was cut or edited.
    #[error(
        "shared audit chain: {0}; refusing to continue it (check it with `hort audit verify`)"
    )]
    AuditBroken(String),
}

/// Column `i` of a row as `T`, or an error naming the column (never a panic
/// on a type or index mismatch).
pub fn col<'a, T: FromSql<'a>>(r: &'a tokio_postgres::Row, i: usize) -> Result<T, PgError> {
    r.try_get(i).ctx("reading a result column")
}

/// Adds the query's purpose to a driver error.
pub(crate) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T, PgError>;
}

impl<T> Ctx<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, context: &'static str) -> Result<T, PgError> {
        self.map_err(|source| PgError::Query { context, source })
    }
}

/// A pgvector `vector` in its binary wire format (dimension, unused, floats).
#[derive(Debug, Clone, PartialEq)]
pub struct Vector(pub Vec<f32>);

impl ToSql for Vector {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let dim = i16::try_from(self.0.len()).map_err(|_| "vector longer than 32767")?;
        out.put_i16(dim);
        out.put_i16(0);
        for x in &self.0 {
            out.put_f32(*x);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        ty.name() == "vector"
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Vector {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Vector, Box<dyn std::error::Error + Sync + Send>> {
        if raw.len() < 4 {
            return Err("vector: short header".into());
        }
        let dim = i16::from_be_bytes([raw[0], raw[1]]) as usize;
        let body = &raw[4..];
        if body.len() != dim * 4 {
            return Err("vector: length does not match its dimension".into());
        }
        Ok(Vector(
            body.chunks_exact(4)
                .map(|b| f32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ))
    }

    fn accepts(ty: &Type) -> bool {
        ty.name() == "vector"
    }
}

/// Access for one read transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Access {
    pub(crate) teams: Vec<String>,
    pub(crate) clearance: i32,
}

impl Access {
    pub(crate) fn of(p: &Principal) -> Access {
        Access {
            teams: p.teams.clone(),
            clearance: p.clearance.level() as i32,
        }
    }

    /// Runs `steps` in one read-only transaction (`begin`: `BEGIN …`), as
    /// `hort_reader` with this access unless `owner`, after `settings`
    /// (`SET LOCAL …`, may be empty), and returns each step's rows.
    ///
    /// Why: a search's reads waited for each statement before sending the
    /// next: begin, access, query, commit were four round trips, each a
    /// wake-up of the connection task and the server. Here every message is
    /// sent before the first answer is read (the server answers in order),
    /// so it is one round trip (with the policies reading their settings
    /// once, migration 11: `/v1/search` 6.7 → 5.6 ms p50 at 100,000
    /// chunks, `hort bench backends`). Every step's
    /// statement must be prepared already: nothing may wait between `BEGIN`
    /// and `COMMIT`, or the commit would overtake it. The commit is sent with
    /// the rest, so a job dropped or failed midway never leaves its
    /// connection inside a transaction; a failed step aborts the transaction,
    /// so nothing after it runs, and a failed `BEGIN` or access statement
    /// fails the read before any rows are looked at.
    pub(crate) async fn pipelined(
        &self,
        c: &Conn,
        begin: &str,
        owner: bool,
        settings: &str,
        steps: &[Step<'_>],
    ) -> Result<Vec<Vec<tokio_postgres::Row>>, PgError> {
        let set = if owner {
            None
        } else {
            Some(c.prepare_cached(SET_ACCESS).await.ctx("prepare access")?)
        };
        let (literal, level) = (array_literal(&self.teams), self.clearance.to_string());
        let access: [&(dyn ToSql + Sync); 2] = [&literal, &level];
        // The transaction's own settings travel with its BEGIN: one message
        // less (each costs a round of wake-ups on both sides).
        let begin = if settings.is_empty() {
            begin.to_string()
        } else {
            format!("{begin}; {settings}")
        };
        // `join!` and `join_all` poll in order, and each statement is sent
        // when first polled: the server receives them in this order.
        let (began, access, rows, ended) = futures_util::join!(
            c.batch_execute(&begin),
            async {
                match &set {
                    Some(st) => c.query_one(st, &access).await.map(Some),
                    None => Ok(None),
                }
            },
            futures_util::future::join_all(steps.iter().map(|(st, p)| c.query(*st, p))),
            c.batch_execute("COMMIT"),
        );
        began.ctx("begin read")?;
        access.ctx("set access")?;
        let rows = rows
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .ctx("read")?;
        ended.ctx("end read")?;
        Ok(rows)
    }
}

/// One statement of a [`Access::pipelined`] read: prepared, with its
/// parameters.
pub(crate) type Step<'a> = (&'a tokio_postgres::Statement, &'a [&'a (dyn ToSql + Sync)]);

/// Makes a transaction's reads those of `hort_reader` with a principal's
/// teams (`$1`, an array literal) and clearance (`$2`).
const SET_ACCESS: &str = "SELECT set_config('role', 'hort_reader', true),
        set_config('hort.teams', $1, true), set_config('hort.clearance', $2, true)";

/// The access sets (values of the distribution column `acl`) of a
/// principal whose teams and clearance are parameters `$t` and `$c`,
/// computed inside the statement (so that it can be pipelined).
pub(crate) fn sets_of(t: usize, c: usize) -> String {
    format!("ARRAY(SELECT id FROM access_sets WHERE teams && ${t} AND classification <= ${c})")
}

/// The distribution column's condition for a query on a partitioned corpus:
/// `alias.acl` among the access sets of the principal whose teams and
/// clearance are parameters `$t` and `$c`; nothing on one table (see
/// [`PgStore::partitioned`]).
pub(crate) fn in_sets(partitioned: bool, alias: &str, t: usize, c: usize) -> String {
    if partitioned {
        format!(" AND {alias}acl = ANY({})", sets_of(t, c))
    } else {
        String::new()
    }
}

/// A `text[]` literal; every element quoted, so no team name can break out.
fn array_literal(items: &[String]) -> String {
    let mut s = String::from("{");
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        for ch in t.chars() {
            if ch == '"' || ch == '\\' {
                s.push('\\');
            }
            s.push(ch);
        }
        s.push('"');
    }
    s.push('}');
    s
}

pub(crate) fn rule_columns(access: Option<&AccessRule>) -> (Vec<String>, i32) {
    match access {
        Some(a) => (a.teams.clone(), a.classification.level() as i32),
        // Nobody shares a team with an empty list: invisible to all.
        None => (Vec::new(), Classification::Restricted.level() as i32),
    }
}

/// What the embedder, dimension and chunker of the stored vectors are, and
/// how the vector index is built (`[hnsw]`; used when the index is made).
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The embedding model's id.
    pub embedder: String,
    /// Vector dimensions.
    pub dim: usize,
    /// The chunker's fingerprint.
    pub chunker: String,
    /// Links per node of the vector index.
    pub m: usize,
    /// Beam width while building it.
    pub ef_construction: usize,
}

impl Default for Meta {
    fn default() -> Meta {
        let h = crate::config::HnswConfig::default();
        Meta {
            embedder: String::new(),
            dim: 0,
            chunker: String::new(),
            m: h.m,
            ef_construction: h.ef_construction,
        }
    }
}

/// The database side of hort: a write pool on the primary and a read pool
/// (the replica's, if configured).
pub struct PgStore {
    /// Shared with the jobs a node runs beside its searches (keeping
    /// access sets' graphs): the last holder closes it.
    pub(crate) write: std::sync::Arc<Pool>,
    pub(crate) read: std::sync::Arc<Pool>,
    /// Searches read the replica while it is at most this far behind, the
    /// primary otherwise.
    max_staleness: Duration,
    /// The replica's lag as last read (`None`: not known), kept fresh by a
    /// watcher thread (see [`watch_lag`]); zero without a replica.
    lag: std::sync::Arc<Mutex<Option<Duration>>>,
    meta: Meta,
    /// Chunk counts per (team, classification), for the query planner.
    pub(crate) counts: std::sync::Arc<search::PlannerCounts>,
    /// `chunks` is partitioned (by the distribution column `acl`, see
    /// migration 7): searches then name the principal's access sets so the
    /// planner reads only the parts holding them. On one table they would
    /// only cost planning time (about 1 ms for a principal of many sets:
    /// the planner estimates each element of the list).
    pub(crate) partitioned: bool,
    /// Decoded keyword blocks kept between searches (`[store]
    /// keyword_cache_mb`).
    pub(crate) blocks: std::sync::Arc<blocks::BlockCache>,
    /// Access sets' vectors kept between searches (`[store]
    /// vector_cache_mb`).
    pub(crate) vectors: std::sync::Arc<vectors::VectorCache>,
    /// Chunks' texts kept between searches (`[store] text_cache_mb`).
    pub(crate) texts: std::sync::Arc<texts::TextCache>,
}

pub(crate) type Counts = std::collections::HashMap<(String, i32), i64>;

/// How long the planner's chunk counts are reused before they are read again.
pub(crate) const COUNTS_TTL: Duration = Duration::from_secs(30);

/// Up to this many visible chunks are always scored exactly (all of them,
/// through the index on access sets) instead of walking the HNSW graph;
/// above, the planner weighs both plans' measured costs (`search.rs`). In
/// PostgreSQL each scored row costs a heap visit, so the crossover sits far
/// lower than the embedded index's mapped scan.
pub const EXACT_ROWS: i64 = 1500;

/// How often a replica's lag is read again.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// How long opening a store waits for the replica's first lag reading.
const FIRST_LAG_WAIT: Duration = Duration::from_secs(2);

/// The default bound on a replica's lag (`[store] max_staleness_s`).
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(5);

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("meta", &self.meta).finish()
    }
}

impl PgStore {
    /// Connects, applies pending migrations, and checks (or, on a new
    /// database, records) which embedder made the vectors.
    pub fn open(
        url: &str,
        read_url: Option<&str>,
        pool: impl Into<PoolOptions>,
        meta: Meta,
    ) -> Result<PgStore, PgError> {
        let pool = pool.into();
        let write = Pool::new(url, pool)?;
        let read = match read_url {
            Some(r) => Pool::new(r, pool)?,
            None => Pool::new(url, pool)?,
        };
        let want = meta.clone();
        let mut meta = meta;
        // What the database recorded (an index from before the model had a
        // space keeps its raw vectors: ingest reads this to place new ones).
        meta.embedder =
            write.run(move |c| async move { schema::migrate(c, &want).await }.boxed())?;
        let partitioned = write.run(|c| {
            async move {
                let r = c
                    .query_one(
                        "SELECT relkind = 'p' FROM pg_class WHERE oid = 'chunks'::regclass",
                        &[],
                    )
                    .await
                    .ctx("is chunks partitioned")?;
                col::<bool>(&r, 0)
            }
            .boxed()
        })?;
        let lag = std::sync::Arc::new(Mutex::new(Some(Duration::ZERO)));
        if let Some(r) = read_url {
            // Unknown (so: the primary) until the watcher, which has
            // connections of its own, has read it: a replica that is down
            // or silent costs the watcher its timeouts, never a request.
            // Opening waits a moment for the first reading.
            *lock(&lag) = None;
            let first = watch_lag(url, r, std::sync::Arc::downgrade(&lag))?;
            let _ = first.recv_timeout(FIRST_LAG_WAIT);
        }
        Ok(PgStore {
            write: std::sync::Arc::new(write),
            read: std::sync::Arc::new(read),
            max_staleness: DEFAULT_MAX_STALENESS,
            lag,
            meta,
            counts: Default::default(),
            partitioned,
            blocks: std::sync::Arc::new(blocks::BlockCache::new(
                crate::config::DEFAULT_KEYWORD_CACHE_MB << 20,
            )),
            vectors: std::sync::Arc::new(vectors::VectorCache::new(
                crate::config::DEFAULT_VECTOR_CACHE_MB << 20,
            )),
            texts: std::sync::Arc::new(texts::TextCache::new(
                crate::config::DEFAULT_TEXT_CACHE_MB << 20,
            )),
        })
    }

    /// Whether `chunks` is partitioned (read when the store opened):
    /// searches then name the principal's access sets.
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// What the stored vectors are.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Keeps at most `mb` megabytes of decoded keyword blocks between
    /// searches (0: none).
    pub fn with_keyword_cache(mut self, mb: usize) -> PgStore {
        self.blocks = std::sync::Arc::new(blocks::BlockCache::new(mb << 20));
        self
    }

    /// Keeps at most `mb` megabytes of access sets' vectors between
    /// searches (0: none; visible chunks are then scored inside
    /// PostgreSQL).
    pub fn with_vector_cache(mut self, mb: usize) -> PgStore {
        self.vectors = std::sync::Arc::new(vectors::VectorCache::new(mb << 20));
        self
    }

    /// The vector planner's estimate of the chunks `who` sees (an upper
    /// bound: a chunk of several of its teams counts once per team) and of
    /// all chunks, from the counts at hand: for operators and tests.
    pub fn planner_estimate(&self, who: &Principal) -> Result<(i64, i64), PgError> {
        self.estimate_visible(&Access::of(who))
    }

    /// Keeps at most `mb` megabytes of chunks' texts between searches (0:
    /// none; every search reads its hits' texts from the database).
    pub fn with_text_cache(mut self, mb: usize) -> PgStore {
        self.texts = std::sync::Arc::new(texts::TextCache::new(mb << 20));
        self
    }

    /// How many chunks' texts this node keeps: for tests and operators.
    pub fn kept_texts(&self) -> usize {
        self.texts.held().0
    }

    /// The compaction (`term_block_state.generation`) whose keyword blocks
    /// this node keeps, if any: for tests and operators checking that
    /// nodes follow compactions.
    pub fn kept_keyword_generation(&self) -> Option<i64> {
        self.blocks.generation()
    }

    /// How many keyword blocks this node keeps (words the corpus lacks
    /// count, as empty blocks): for tests and operators.
    pub fn kept_keyword_blocks(&self) -> usize {
        self.blocks.held()
    }

    /// Reads go to the replica only while it is at most `d` behind.
    pub fn with_max_staleness(mut self, d: Duration) -> PgStore {
        self.max_staleness = d;
        self
    }

    /// How far behind the primary the data searches read is, at most: zero
    /// on the primary, the replica's lag when it serves reads. A replica
    /// that lags more than the bound, or whose lag cannot be read (it is
    /// down), is not read from: searches go to the primary.
    pub fn staleness(&self) -> Duration {
        self.readable_lag().unwrap_or(Duration::ZERO)
    }

    /// The pool searches and reads run on: the replica's while it is
    /// within the bound, else the primary's.
    pub(crate) fn reads(&self) -> &std::sync::Arc<Pool> {
        match self.readable_lag() {
            Some(_) => &self.read,
            None => &self.write,
        }
    }

    /// The lag of the `read` pool's server while it is known and within the
    /// bound (zero without a replica); `None`: read the primary.
    fn readable_lag(&self) -> Option<Duration> {
        (*lock(&self.lag)).filter(|&lag| lag <= self.max_staleness)
    }

    /// Runs `sql` as the principal's reader role with no filter of hort's
    /// own: what row-level security alone lets through (a column of ids). For tests of the
    /// policies and for operators checking them.
    pub fn select_as(&self, principal: &Principal, sql: &str) -> Result<Vec<i64>, PgError> {
        let access = Access::of(principal);
        let sql = sql.to_string();
        self.read.run(move |c| {
            async move {
                // The way searches read (one pipelined transaction), so
                // the tests of the policies test that path.
                let st = c.prepare(&sql).await.ctx("select as principal")?;
                let rows = access
                    .pipelined(c, "BEGIN READ ONLY", false, "", &[(&st, &[])])
                    .await?;
                rows.iter().flatten().map(|r| col(r, 0)).collect()
            }
            .boxed()
        })
    }

    /// Runs arbitrary statements as the owner (tests and tooling).
    pub fn execute_owner(&self, sql: &str) -> Result<(), PgError> {
        let sql = sql.to_string();
        self.write
            .run(move |c| async move { c.batch_execute(&sql).await.ctx("owner statement") }.boxed())
    }
}

/// The replica's lag, `None` when it cannot be read (logged). A replica that
/// has replayed everything the primary has written is not behind, however
/// long ago its last transaction was; otherwise everything committed since
/// the last transaction it replayed may be missing, so that transaction's
/// age bounds the staleness.
fn measured_lag(primary: &Pool, replica: &Pool) -> Option<Duration> {
    let measured = primary
        .run(|c| {
            async move {
                let r = c
                    .query_one("SELECT pg_current_wal_lsn()::text", &[])
                    .await
                    .ctx("primary's WAL position")?;
                col::<String>(&r, 0)
            }
            .boxed()
        })
        .and_then(|at| {
            replica.run(move |c| {
                async move {
                    let r = c
                        .query_one(
                            "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, true),
                                    extract(epoch FROM clock_timestamp()
                                            - pg_last_xact_replay_timestamp())::float8",
                            &[&at],
                        )
                        .await
                        .ctx("replica's replay position")?;
                    let caught_up: bool = col(&r, 0)?;
                    let age: Option<f64> = col(&r, 1)?;
                    Ok(if caught_up {
                        Some(Duration::ZERO)
                    } else {
                        age.map(|s| Duration::from_secs_f64(s.max(0.0)))
                    })
                }
                .boxed()
            })
        });
    match measured {
        Ok(lag) => lag,
        Err(e) => {
            tracing::warn!("replica lag unknown, searches read the primary: {e}");
            None
        }
    }
}

/// Reads the replica's lag now and then every [`LAG_EVERY`], on a thread
/// with one connection to each server, until the store that owns `cell` is
/// dropped; the receiver hears when the first reading is in.
fn watch_lag(
    url: &str,
    read_url: &str,
    cell: std::sync::Weak<Mutex<Option<Duration>>>,
) -> Result<std::sync::mpsc::Receiver<()>, PgError> {
    let primary = Pool::new(url, 1)?;
    let replica = Pool::new(read_url, 1)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("hort-pg-lag".into())
        .spawn(move || loop {
            let lag = measured_lag(&primary, &replica);
            match cell.upgrade() {
                Some(c) => *lock(&c) = lag,
                None => return,
            }
            let _ = tx.try_send(());
            std::thread::sleep(LAG_EVERY);
        })
        .map_err(|_| PgError::Stopped)?;
    Ok(rx)
}

/// Chunks of the principal's teams up to its clearance (a chunk shared by
/// two of its teams counts twice: an upper bound).
pub(crate) fn estimate(counts: &Counts, access: &Access) -> i64 {
    counts
        .iter()
        .filter(|((t, c), _)| *c <= access.clearance && access.teams.contains(t))
        .map(|(_, n)| *n)
        .sum()
}

/// All chunks with an access rule (a chunk counts once per team: the
/// selectivity estimate divides like by like).
pub(crate) fn total(counts: &Counts) -> i64 {
    counts.values().sum()
}

pub(crate) fn class_of(level: i32) -> Result<Classification, PgError> {
    u8::try_from(level)
        .ok()
        .and_then(Classification::from_level)
        .ok_or_else(|| PgError::Mismatch(format!("classification {level} is not a level")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literal_quotes_every_element() {
        assert_eq!(array_literal(&[]), "{}");
        assert_eq!(
            array_literal(&["a".into(), "b,\"c\\".into()]),
            "{\"a\",\"b,\\\"c\\\\\"}"
        );
    }

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://hort:s3cret@db:5432/x"),
            "postgres://hort:***@db:5432/x"
        );
        assert_eq!(redact("postgres://hort@db/x"), "postgres://hort@db/x");
    }

    #[test]
    fn vectors_round_trip_in_the_wire_format() {
        let v = Vector(vec![1.0, -0.5, 0.25]);
        let mut b = BytesMut::new();
        let ty = Type::TEXT; // accepts() is not consulted by to_sql itself
        v.to_sql(&ty, &mut b).unwrap();
        assert_eq!(&b[..4], &[0, 3, 0, 0]);
        assert_eq!(Vector::from_sql(&ty, &b).unwrap(), v);
        assert!(Vector::from_sql(&ty, &b[..7]).is_err());
    }
}
