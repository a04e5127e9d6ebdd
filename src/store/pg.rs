//! The PostgreSQL + pgvector backend: documents, pages, chunks and their
//! embeddings in tables, so that several stateless `hort serve` nodes (and a
//! read replica) answer from one database the company already runs.
//!
//! The access rule is enforced twice. Every query carries it in its `WHERE`
//! (`teams && $teams AND classification <= $clearance`, inside the index scan,
//! with pgvector's iterative scan so a narrow filter still yields k rows), and
//! every read transaction runs as the `hort_reader` role with the principal's
//! teams and clearance set for that transaction only, under row-level
//! security policies that state the same rule. A bug in hort's SQL (a
//! forgotten predicate) therefore still cannot return a row the principal may
//! not see.
//!
//! Keyword search uses PostgreSQL's own full text (`ts_rank` over a
//! generated `tsvector`), not BM25: a tantivy index per node would not be
//! shared. `hort bench quality --backend postgres` measures the difference.
//!
//! The `postgres` client blocks, and must not block inside the async runtime,
//! so each connection lives on its own thread and callers hand it jobs
//! ([`Pool::run`]). The gateway's sync call sites thereby stay sync.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls};

use crate::acl::{AccessRule, Classification, Principal};
use crate::store::docfilter::CompiledDocFilter;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL at {url}: cannot connect: {source}")]
    Connect {
        url: String,
        source: postgres::Error,
    },
    #[error("PostgreSQL: {context}: {source}")]
    Query {
        context: &'static str,
        source: postgres::Error,
    },
    #[error("PostgreSQL: {0}")]
    Mismatch(String),
    #[error("PostgreSQL: bad url: {0}")]
    Url(String),
    #[error("PostgreSQL: connection pool stopped")]
    Stopped,
    /// A job on a pooled connection panicked; the connection was replaced.
    #[error("PostgreSQL: a database job failed unexpectedly ({0})")]
    JobPanicked(String),
    #[error(
        "shared audit chain: {0}; refusing to continue it (check it with `hort audit verify`)"
    )]
    AuditBroken(String),
}

/// Column `i` of a row as `T`, or an error naming the column (never a panic
/// on a type or index mismatch).
pub fn col<'a, T: FromSql<'a>>(r: &'a postgres::Row, i: usize) -> Result<T, PgError> {
    r.try_get(i).ctx("reading a result column")
}

/// Adds the query's purpose to a driver error.
trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T, PgError>;
}

impl<T> Ctx<T> for Result<T, postgres::Error> {
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

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// One connection, (re)opened on demand by its worker thread.
pub struct Conn {
    config: postgres::Config,
    url: String,
    client: Option<Client>,
}

impl Conn {
    pub fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let c = self
                .config
                .connect(NoTls)
                .map_err(|source| PgError::Connect {
                    url: self.url.clone(),
                    source,
                })?;
            self.client = Some(c);
        }
        self.client.as_mut().ok_or(PgError::Stopped)
    }
}

/// Connections on their own threads; [`Pool::run`] hands one of them a job
/// and waits for its answer (from async code too: nothing here enters a
/// runtime the caller is in).
pub struct Pool {
    tx: Mutex<mpsc::Sender<Job>>,
}

/// The URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Pool {
    pub fn new(url: &str, size: usize) -> Result<Pool, PgError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| PgError::Url(format!("{}: {e}", redact(url))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("hort");
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size.max(1) {
            let rx = rx.clone();
            let mut conn = Conn {
                config: config.clone(),
                url: redact(url),
                client: None,
            };
            std::thread::Builder::new()
                .name(format!("hort-pg-{i}"))
                .spawn(move || loop {
                    let job = {
                        let r = match rx.lock() {
                            Ok(g) => g,
                            Err(p) => p.into_inner(),
                        };
                        r.recv()
                    };
                    match job {
                        Ok(job) => {
                            // A panicking job must not take its worker (and
                            // so the pool's capacity) with it. The
                            // connection may be mid-transaction: drop it,
                            // the next job reconnects.
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                job(&mut conn)
                            }));
                            if r.is_err() {
                                conn.client = None;
                                tracing::error!(
                                    "a PostgreSQL job panicked; its connection was closed"
                                );
                            }
                        }
                        Err(_) => return,
                    }
                })
                .map_err(|_| PgError::Stopped)?;
        }
        Ok(Pool { tx: Mutex::new(tx) })
    }

    /// Runs `f` on a pooled connection and returns its result.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, PgError> + Send + 'static,
    ) -> Result<R, PgError> {
        let (otx, orx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn: &mut Conn| {
            let r = conn.client().and_then(f);
            let _ = otx.send(r);
        });
        // Dropped unanswered: the job panicked (the worker lives on).
        let lost = || PgError::JobPanicked("see the server log".into());
        {
            let tx = match self.tx.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            tx.send(job).map_err(|_| PgError::Stopped)?;
        }
        orx.recv().map_err(|_| lost())?
    }
}

/// Schema migrations, applied in order, each once, each in a transaction.
/// `{dim}` is the embedding dimension the database is created for.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE hort_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE documents (
    id bigserial PRIMARY KEY,
    root text NOT NULL,
    path text NOT NULL,
    kind text NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    sha256 text NOT NULL,
    -- No access rule: no teams, visible to nobody (fail closed).
    teams text[] NOT NULL,
    classification int NOT NULL,
    rule_source text,
    paged boolean NOT NULL,
    ingested_at bigint NOT NULL,
    hygiene_removed int NOT NULL DEFAULT 0,
    UNIQUE (root, path)
);
CREATE TABLE pages (
    doc_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord int NOT NULL,
    page_no int NOT NULL,
    text text NOT NULL,
    teams text[] NOT NULL,
    classification int NOT NULL,
    PRIMARY KEY (doc_id, ord)
);
CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    doc_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord int NOT NULL,
    page_ord int NOT NULL,
    page_no int NOT NULL,
    byte_start int NOT NULL,
    byte_end int NOT NULL,
    char_start int NOT NULL,
    char_end int NOT NULL,
    text text NOT NULL,
    content_hash bytea NOT NULL,
    teams text[] NOT NULL,
    classification int NOT NULL,
    injection_score real,
    injection_reasons text[],
    embedding vector({dim}) NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX chunks_doc ON chunks (doc_id);
CREATE INDEX chunks_teams ON chunks USING gin (teams);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction});

-- Gateway state shared by every node.
CREATE TABLE usage (
    kind text NOT NULL,
    name text NOT NULL,
    month text NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    prompt_tokens bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, name, month)
);
CREATE TABLE rate_windows (
    account text NOT NULL,
    minute bigint NOT NULL,
    n int NOT NULL,
    PRIMARY KEY (account, minute)
);
CREATE TABLE audit (
    seq bigint PRIMARY KEY,
    line text NOT NULL,
    hash text NOT NULL
);

-- Row-level security: the role reads run as sees only what the principal
-- set for the transaction may see. The table owner (the role hort connects
-- as) is exempt, for ingest and migration.
DO $$ BEGIN
    CREATE ROLE hort_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
GRANT hort_reader TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO hort_reader;
GRANT SELECT ON documents, pages, chunks TO hort_reader;
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION hort_teams() RETURNS text[] LANGUAGE sql STABLE AS
    $f$ SELECT coalesce(nullif(current_setting('hort.teams', true), ''), '{}')::text[] $f$;
CREATE FUNCTION hort_clearance() RETURNS int LANGUAGE sql STABLE AS
    $f$ SELECT coalesce(nullif(current_setting('hort.clearance', true), ''), '-1')::int $f$;
CREATE POLICY hort_acl ON documents FOR SELECT TO hort_reader
    USING (teams && hort_teams() AND classification <= hort_clearance());
CREATE POLICY hort_acl ON pages FOR SELECT TO hort_reader
    USING (teams && hort_teams() AND classification <= hort_clearance());
CREATE POLICY hort_acl ON chunks FOR SELECT TO hort_reader
    USING (teams && hort_teams() AND classification <= hort_clearance());
"#,
    ),
    (
        2,
        // The audit chain's head, kept beside it and changed in the same
        // transaction: deleting the newest rows leaves the head ahead of them.
        r#"
CREATE TABLE audit_head (
    id int PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
SELECT 1, coalesce(max(seq), 0),
       coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '{genesis}')
FROM audit;
"#,
    ),
];

/// Serialises migrations across nodes starting at once.
const MIGRATION_LOCK: i64 = 0x686f_7274_6d69; // "hortmi"
/// Serialises audit appends across nodes.
const AUDIT_LOCK: i64 = 0x686f_7274_6175; // "hortau"

/// (chunk id, score), best first.
pub type Candidates = Vec<(u64, f32)>;

/// One document as the backend stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct PgDoc {
    pub root: String,
    pub path: String,
    pub kind: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub access: Option<AccessRule>,
    pub rule_source: Option<String>,
    pub paged: bool,
    pub ingested_at: i64,
    pub hygiene_removed: usize,
    /// (page number, text), in order.
    pub pages: Vec<(u32, String)>,
    pub chunks: Vec<PgChunk>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgChunk {
    /// Index into `PgDoc::pages`.
    pub page_ord: u32,
    pub byte_start: u32,
    pub byte_end: u32,
    pub char_start: u32,
    pub char_end: u32,
    pub content_hash: [u8; 16],
    pub injection: Option<(f32, Vec<String>)>,
    pub embedding: Vec<f32>,
}

/// A document's identity and version, for incremental sync.
#[derive(Debug, Clone, PartialEq)]
pub struct DocVersion {
    pub id: i64,
    pub root: String,
    pub path: String,
    pub sha256: String,
    pub teams: Vec<String>,
    pub classification: i32,
    pub flags: usize,
}

/// One retrieved chunk with what a hit shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub id: i64,
    pub doc_id: i64,
    pub path: String,
    pub paged: bool,
    pub page_no: u32,
    pub char_start: u32,
    pub char_end: u32,
    pub text: String,
    pub teams: Vec<String>,
    pub classification: Classification,
    pub injection: Option<(f32, Vec<String>)>,
}

/// A document as listed to a principal.
#[derive(Debug, Clone, PartialEq)]
pub struct DocRow {
    pub id: i64,
    pub root: String,
    pub path: String,
    pub kind: String,
    pub chunks: i64,
    pub n_pages: i64,
    pub paged: bool,
    pub teams: Vec<String>,
    pub classification: Classification,
}

/// A document at a path, whoever may see it (for write checks).
#[derive(Debug, Clone, PartialEq)]
pub struct DocAt {
    pub root: String,
    /// `None`: no rule, visible to nobody.
    pub access: Option<AccessRule>,
}

/// What [`PgStore::doc_page`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum PageLookup {
    NotFound,
    /// That many visible documents have the path (in different folders).
    Ambiguous(usize),
    /// The document has this many pages.
    OutOfRange(u32),
    Found {
        paged: bool,
        n_pages: u32,
        classification: Classification,
        text: String,
    },
}

/// Pages of a document, or why there are none.
enum DocText {
    Pages {
        paged: bool,
        n_pages: u32,
        classification: Classification,
        pages: Vec<String>,
    },
    Missing(PageLookup),
}

/// Access for one read transaction.
#[derive(Debug, Clone)]
struct Access {
    teams: Vec<String>,
    clearance: i32,
}

impl Access {
    fn of(p: &Principal) -> Access {
        Access {
            teams: p.teams.clone(),
            clearance: p.clearance.level() as i32,
        }
    }

    /// Opens a read-only transaction as `hort_reader`, with the principal's
    /// teams and clearance as the row-level security policies read them.
    fn begin<'c>(&self, c: &'c mut Client) -> Result<postgres::Transaction<'c>, PgError> {
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .ctx("begin read")?;
        tx.batch_execute("SET LOCAL ROLE hort_reader")
            .ctx("set role hort_reader")?;
        tx.execute(
            "SELECT set_config('hort.teams', $1, true), set_config('hort.clearance', $2, true)",
            &[&array_literal(&self.teams), &self.clearance.to_string()],
        )
        .ctx("set access")?;
        Ok(tx)
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

fn rule_columns(access: Option<&AccessRule>) -> (Vec<String>, i32) {
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
    pub embedder: String,
    pub dim: usize,
    pub chunker: String,
    pub m: usize,
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
    write: Pool,
    read: Pool,
    meta: Meta,
    /// Chunk counts per (team, classification), for the query planner.
    counts: Mutex<Option<(std::time::Instant, Counts)>>,
}

type Counts = std::collections::HashMap<(String, i32), i64>;

/// How long the planner's chunk counts are reused before they are read again.
const COUNTS_TTL: Duration = Duration::from_secs(30);

/// At most this many visible chunks are scored exactly (all of them, from
/// the team index) instead of walking the HNSW graph: in PostgreSQL each
/// scored row costs a heap visit (~3 µs), so the crossover sits far lower
/// than the embedded index's mapped scan.
pub const EXACT_ROWS: i64 = 1500;

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
        pool_size: usize,
        meta: Meta,
    ) -> Result<PgStore, PgError> {
        let write = Pool::new(url, pool_size)?;
        let read = match read_url {
            Some(r) => Pool::new(r, pool_size)?,
            None => Pool::new(url, pool_size)?,
        };
        let want = meta.clone();
        write.run(move |c| migrate(c, &want))?;
        Ok(PgStore {
            write,
            read,
            meta,
            counts: Mutex::new(None),
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Every stored document's version (owner view, for sync).
    pub fn versions(&self) -> Result<Vec<DocVersion>, PgError> {
        self.write.run(|c| {
            let rows = c
                .query(
                    "SELECT d.id, d.root, d.path, d.sha256, d.teams, d.classification,
                            (SELECT count(*) FROM chunks k WHERE k.doc_id = d.id AND k.injection_score IS NOT NULL)
                     FROM documents d ORDER BY d.id",
                    &[],
                )
                .ctx("list documents")?;
            rows
                .iter()
                .map(|r| Ok(DocVersion {
                    id: col(r, 0)?,
                    root: col(r, 1)?,
                    path: col(r, 2)?,
                    sha256: col(r, 3)?,
                    teams: col(r, 4)?,
                    classification: col(r, 5)?,
                    flags: col::<i64>(r, 6)? as usize,
                }))
                .collect()
        })
    }

    /// Inserts or replaces documents (by root and path), each with its pages
    /// and chunks, in one transaction.
    pub fn put_docs(&self, docs: Vec<PgDoc>) -> Result<Vec<i64>, PgError> {
        let dim = self.meta.dim;
        self.write
            .run(move |c| {
                let mut tx = c.transaction().ctx("begin write")?;
                let ins_doc = tx
                    .prepare(
                        "INSERT INTO documents (root, path, kind, size, mtime_ns, sha256, teams,
                        classification, rule_source, paged, ingested_at, hygiene_removed)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id",
                    )
                    .ctx("prepare document insert")?;
                let ins_page = tx
                    .prepare(
                        "INSERT INTO pages (doc_id, ord, page_no, text, teams, classification)
                     VALUES ($1,$2,$3,$4,$5,$6)",
                    )
                    .ctx("prepare page insert")?;
                let ins_chunk = tx
                    .prepare(
                        "INSERT INTO chunks (doc_id, ord, page_ord, page_no, byte_start, byte_end,
                        char_start, char_end, text, content_hash, teams, classification,
                        injection_score, injection_reasons, embedding)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                    )
                    .ctx("prepare chunk insert")?;
                let mut ids = Vec::with_capacity(docs.len());
                for d in docs {
                    tx.execute(
                        "DELETE FROM documents WHERE root = $1 AND path = $2",
                        &[&d.root, &d.path],
                    )
                    .ctx("replace document")?;
                    let (teams, class) = rule_columns(d.access.as_ref());
                    let id: i64 = tx
                        .query_one(
                            &ins_doc,
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
                            ],
                        )
                        .ctx("insert document")?
                        .get(0);
                    for (ord, (no, text)) in d.pages.iter().enumerate() {
                        tx.execute(
                            &ins_page,
                            &[&id, &(ord as i32), &(*no as i32), text, &teams, &class],
                        )
                        .ctx("insert page")?;
                    }
                    for (ord, k) in d.chunks.iter().enumerate() {
                        if k.embedding.len() != dim {
                            return Err(PgError::Mismatch(format!(
                                "{}: a vector of {} dimensions for a {dim}-dimensional database",
                                d.path,
                                k.embedding.len()
                            )));
                        }
                        let (page_no, text) = d
                            .pages
                            .get(k.page_ord as usize)
                            .and_then(|(no, p)| {
                                p.get(k.byte_start as usize..k.byte_end as usize)
                                    .map(|t| (*no, t))
                            })
                            .ok_or_else(|| {
                                PgError::Mismatch(format!(
                                    "{}: chunk {ord} points outside its page",
                                    d.path
                                ))
                            })?;
                        let (score, reasons) = match &k.injection {
                            Some((s, r)) => (Some(*s), Some(r.clone())),
                            None => (None, None),
                        };
                        tx.execute(
                            &ins_chunk,
                            &[
                                &id,
                                &(ord as i32),
                                &(k.page_ord as i32),
                                &(page_no as i32),
                                &(k.byte_start as i32),
                                &(k.byte_end as i32),
                                &(k.char_start as i32),
                                &(k.char_end as i32),
                                &text,
                                &k.content_hash.as_slice(),
                                &teams,
                                &class,
                                &score,
                                &reasons,
                                &Vector(k.embedding.clone()),
                            ],
                        )
                        .ctx("insert chunk")?;
                    }
                    ids.push(id);
                }
                tx.commit().ctx("commit documents")?;
                Ok(ids)
            })
            .inspect(|_| self.counts_changed())
    }

    /// Removes documents by id (pages and chunks go with them).
    pub fn delete_docs(&self, ids: Vec<i64>) -> Result<u64, PgError> {
        self.write
            .run(move |c| {
                c.execute("DELETE FROM documents WHERE id = ANY($1)", &[&ids])
                    .ctx("delete documents")
            })
            .inspect(|_| self.counts_changed())
    }

    /// Removes the document at (root, path); `false` if there was none.
    pub fn delete_path(&self, root: &str, path: &str) -> Result<bool, PgError> {
        let (root, path) = (root.to_string(), path.to_string());
        self.write
            .run(move |c| {
                Ok(c.execute(
                    "DELETE FROM documents WHERE root = $1 AND path = $2",
                    &[&root, &path],
                )
                .ctx("delete document")?
                    > 0)
            })
            .inspect(|_| self.counts_changed())
    }

    /// The stored version of (root, path), if any.
    pub fn version_of(&self, root: &str, path: &str) -> Result<Option<String>, PgError> {
        let (root, path) = (root.to_string(), path.to_string());
        self.write.run(move |c| {
            c.query_opt(
                "SELECT sha256 FROM documents WHERE root = $1 AND path = $2",
                &[&root, &path],
            )
            .ctx("find document")?
            .map(|r| col(&r, 0))
            .transpose()
        })
    }

    /// Drops the vector index before a bulk load into an empty table
    /// (building it once afterwards is far cheaper than maintaining it per
    /// row); [`PgStore::end_bulk`] rebuilds it.
    pub fn begin_bulk(&self) -> Result<bool, PgError> {
        self.write.run(|c| {
            let empty: bool = c
                .query_one("SELECT NOT EXISTS (SELECT 1 FROM chunks)", &[])
                .ctx("count chunks")?
                .get(0);
            if empty {
                c.batch_execute("DROP INDEX IF EXISTS chunks_embedding")
                    .ctx("drop vector index")?;
            }
            Ok(empty)
        })
    }

    pub fn end_bulk(&self) -> Result<(), PgError> {
        let sql = format!(
            "SET maintenance_work_mem = '1GB';
             CREATE INDEX IF NOT EXISTS chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = {}, ef_construction = {});
             ANALYZE chunks; ANALYZE documents;",
            self.meta.m.clamp(2, 100),
            self.meta.ef_construction.clamp(4, 1000)
        );
        self.write
            .run(move |c| c.batch_execute(&sql).ctx("build vector index"))
    }

    /// Document ids the metadata filter admits (owner view; the access rule
    /// is applied by the search itself).
    fn filter_ids(c: &mut Client, f: &CompiledDocFilter) -> Result<Vec<i64>, PgError> {
        let prefix = f.path_prefix.clone();
        let like = prefix.as_ref().map(|p| {
            let mut e = String::new();
            for ch in p.chars() {
                if matches!(ch, '%' | '_' | '\\') {
                    e.push('\\');
                }
                e.push(ch);
            }
            e + "/%"
        });
        let rows = c
            .query(
                "SELECT id FROM documents
                 WHERE ($1::text IS NULL OR path = $1 OR path LIKE $2)
                   AND ($3::text[] IS NULL OR kind = ANY($3))
                   AND ($4::bigint IS NULL OR mtime_ns >= $4)
                   AND ($5::bigint IS NULL OR mtime_ns < $5)",
                &[&prefix, &like, &f.kinds, &f.after_ns, &f.before_ns],
            )
            .ctx("metadata filter")?;
        rows.iter().map(|r| col(r, 0)).collect()
    }

    /// An upper bound of the chunks `access` admits, from per-team,
    /// per-level counts read at most every [`COUNTS_TTL`] (as the embedded
    /// planner estimates from its segment statistics).
    fn estimate_visible(&self, access: &Access) -> Result<(i64, i64), PgError> {
        let fresh = {
            let g = match self.counts.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.as_ref()
                .filter(|(at, _)| at.elapsed() < COUNTS_TTL)
                .map(|(_, c)| (estimate(c, access), total(c)))
        };
        if let Some(n) = fresh {
            return Ok(n);
        }
        let counts: Counts = self.read.run(|c| {
            c.query(
                "SELECT t, classification, count(*) FROM chunks, unnest(teams) t GROUP BY 1, 2",
                &[],
            )
            .ctx("count chunks per team")?
            .iter()
            .map(|r| Ok(((col(r, 0)?, col(r, 1)?), col(r, 2)?)))
            .collect::<Result<_, PgError>>()
        })?;
        let n = (estimate(&counts, access), total(&counts));
        let mut g = match self.counts.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = Some((std::time::Instant::now(), counts));
        Ok(n)
    }

    /// Forgets the planner's counts after a write.
    fn counts_changed(&self) {
        if let Ok(mut g) = self.counts.lock() {
            *g = None;
        }
    }

    /// Both searches for `principal`, in one read transaction: vector
    /// candidates (id, cosine similarity) and keyword candidates (id, rank).
    ///
    /// The vector side is planned like the embedded index's: few visible
    /// chunks are scored exactly (the team index finds them); otherwise the
    /// HNSW index is walked with the filter applied during the walk
    /// (pgvector's iterative scan), and if that still yields fewer than
    /// wanted, the exact plan runs. PostgreSQL's own planner cannot make
    /// this choice well: it has no estimate of how many rows an array
    /// overlap with the caller's teams admits.
    pub fn search(
        &self,
        principal: &Principal,
        query: Option<&str>,
        qv: Option<Vec<f32>>,
        want: usize,
        ef: usize,
        docs: Option<CompiledDocFilter>,
    ) -> Result<(Candidates, Candidates), PgError> {
        let access = Access::of(principal);
        if access.teams.is_empty() || want == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let (estimate, total) = match qv {
            Some(_) => self.estimate_visible(&access)?,
            None => (0, 0),
        };
        // The narrower the filter, the wider the beam: about want / selectivity
        // candidates pass by before `want` admitted ones are found, and
        // pgvector orders only the beam well (measured: recall@10 0.88 at 6 %
        // selectivity with the embedded backend's milder widening).
        let selectivity = (estimate as f64 / total.max(1) as f64).clamp(1e-6, 1.0);
        let ef = crate::retrieve::ef_for(ef, selectivity)
            .max((want as f64 / selectivity).ceil().min(1000.0) as usize);
        let query = query.map(str::to_string);
        let want = want as i64;
        self.read.run(move |c| {
            let ids = match &docs {
                Some(f) => Some(Self::filter_ids(c, f)?),
                None => None,
            };
            // Keyword candidates first, as the connecting role: PostgreSQL
            // does not use a full-text index under row-level security (`@@`
            // is not leakproof), and scanning every visible row instead costs
            // seconds at a million chunks. The access rule is in the WHERE;
            // these are ids only, and every chunk's content is read later
            // under row-level security ([`PgStore::chunks`]), so a mistake
            // here could cost a rank, never disclose text.
            let mut keyword = Vec::new();
            if let Some(query) = &query {
                let mut tx = c
                    .build_transaction()
                    .read_only(true)
                    .start()
                    .ctx("begin read")?;
                // The words of the question, stemmed, OR-ed (computed first so
                // that the query can use the full-text index).
                let tsq: String = tx
                    .query_one(
                        "SELECT coalesce(string_agg(quote_literal(l), ' | '), '')
                         FROM unnest(tsvector_to_array(to_tsvector('english', $1))) l",
                        &[query],
                    )
                    .ctx("parse the question")?
                    .get(0);
                if !tsq.is_empty() {
                    let rows = tx
                        .query(
                            "SELECT id, ts_rank(tsv, q, 1) AS r FROM chunks, to_tsquery('simple', $1) q
                             WHERE tsv @@ q AND teams && $2 AND classification <= $3
                               AND ($5::bigint[] IS NULL OR doc_id = ANY($5))
                             ORDER BY r DESC, id LIMIT $4",
                            &[&tsq, &access.teams, &access.clearance, &want, &ids],
                        )
                        .ctx("keyword search")?;
                    keyword = rows
                        .iter()
                        .map(|r| Ok((col::<i64>(r, 0)? as u64, col::<f32>(r, 1)?)))
                        .collect::<Result<_, PgError>>()?;
                }
                tx.commit().ctx("end keyword read")?;
            }
            let mut tx = access.begin(c)?;
            let mut vector = Vec::new();
            if let Some(qv) = qv {
                let qv = Vector(qv);
                // A metadata filter naming few documents: score their chunks.
                let exact = estimate <= EXACT_ROWS
                    || ids.as_ref().is_some_and(|d| d.len() as i64 <= EXACT_ROWS / 10);
                let run = |tx: &mut postgres::Transaction<'_>, exact: bool| {
                    tx.batch_execute(if exact {
                        "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = on; SET LOCAL enable_seqscan = on;"
                    } else {
                        "SET LOCAL enable_indexscan = on; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off;"
                    })
                    .ctx("choose the vector plan")?;
                    // relaxed_order may return rows slightly out of order:
                    // order the materialised candidates again.
                    tx.query(
                        "WITH c AS MATERIALIZED (
                            SELECT id, embedding <=> $1 AS d FROM chunks
                            WHERE teams && $2 AND classification <= $3
                              AND ($5::bigint[] IS NULL OR doc_id = ANY($5))
                            ORDER BY embedding <=> $1 LIMIT $4)
                         SELECT id, d FROM c ORDER BY d, id",
                        &[&qv, &access.teams, &access.clearance, &want, &ids],
                    )
                    .ctx("vector search")
                };
                tx.batch_execute(&format!(
                    "SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.max_scan_tuples = 100000;",
                    ef.clamp(1, 1000)
                ))
                .ctx("set search parameters")?;
                let mut rows = run(&mut tx, exact)?;
                if !exact && (rows.len() as i64) < want.min(estimate) {
                    rows = run(&mut tx, true)?;
                }
                vector = rows
                    .iter()
                    .map(|r| Ok((col::<i64>(r, 0)? as u64, 1.0 - col::<f64>(r, 1)? as f32)))
                    .collect::<Result<_, PgError>>()?;
                tx.batch_execute("SET LOCAL enable_indexscan = on; SET LOCAL enable_bitmapscan = on; SET LOCAL enable_seqscan = on;")
                    .ctx("reset plan settings")?;
            }
            tx.commit().ctx("end read")?;
            Ok((vector, keyword))
        })
    }

    /// Texts of up to `n` chunks that `principal` may *not* see and that
    /// share words with `text` (the generator's check that an answer did not
    /// carry hidden text; runs as the owner, by design).
    pub fn invisible_texts(
        &self,
        principal: &Principal,
        text: &str,
        n: i64,
    ) -> Result<Vec<String>, PgError> {
        let access = Access::of(principal);
        let text = text.to_string();
        self.read.run(move |c| {
            let rows = c
                .query(
                    "WITH q AS (SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(l), ' | '), '')) AS q
                                FROM unnest(tsvector_to_array(to_tsvector('english', $1))) l)
                     SELECT text FROM chunks, q
                     WHERE tsv @@ q.q AND NOT (teams && $2 AND classification <= $3)
                     ORDER BY ts_rank(tsv, q.q, 1) DESC, id LIMIT $4",
                    &[&text, &access.teams, &access.clearance, &n],
                )
                .ctx("leak check")?;
            rows.iter().map(|r| col(r, 0)).collect()
        })
    }

    /// The chunks `ids` that `principal` may see (others are simply absent).
    pub fn chunks(&self, principal: &Principal, ids: Vec<u64>) -> Result<Vec<ChunkRow>, PgError> {
        let access = Access::of(principal);
        let ids: Vec<i64> = ids.into_iter().map(|i| i as i64).collect();
        self.read.run(move |c| {
            let mut tx = access.begin(c)?;
            let rows = tx
                .query(
                    "SELECT k.id, k.doc_id, d.path, d.paged, k.page_no, k.char_start, k.char_end,
                            k.text, k.teams, k.classification, k.injection_score, k.injection_reasons
                     FROM chunks k JOIN documents d ON d.id = k.doc_id
                     WHERE k.id = ANY($1) AND k.teams && $2 AND k.classification <= $3",
                    &[&ids, &access.teams, &access.clearance],
                )
                .ctx("fetch chunks")?;
            tx.commit().ctx("end read")?;
            rows.iter().map(chunk_row).collect()
        })
    }

    /// Documents `principal` may see, by path.
    pub fn list_docs(&self, principal: &Principal) -> Result<Vec<DocRow>, PgError> {
        let access = Access::of(principal);
        self.read.run(move |c| {
            let mut tx = access.begin(c)?;
            let rows = tx
                .query(
                    "SELECT d.id, d.root, d.path, d.kind,
                            (SELECT count(*) FROM chunks k WHERE k.doc_id = d.id),
                            d.teams, d.classification,
                            (SELECT count(*) FROM pages x WHERE x.doc_id = d.id), d.paged
                     FROM documents d
                     WHERE d.teams && $1 AND d.classification <= $2 ORDER BY d.path, d.id",
                    &[&access.teams, &access.clearance],
                )
                .ctx("list documents")?;
            tx.commit().ctx("end read")?;
            rows.iter()
                .map(|r| {
                    Ok(DocRow {
                        id: col(r, 0)?,
                        root: col(r, 1)?,
                        path: col(r, 2)?,
                        kind: col(r, 3)?,
                        chunks: col(r, 4)?,
                        teams: col(r, 5)?,
                        classification: class_of(col(r, 6)?)?,
                        n_pages: col(r, 7)?,
                        paged: col(r, 8)?,
                    })
                })
                .collect()
        })
    }

    /// Every document at `path` (any folder, uploads included) with its
    /// rule, read as the owner: a write must know of documents the writer
    /// may not see, to refuse to replace them.
    pub fn docs_at(&self, path: &str) -> Result<Vec<DocAt>, PgError> {
        let path = path.to_string();
        self.write.run(move |c| {
            c.query(
                "SELECT root, teams, classification FROM documents WHERE path = $1",
                &[&path],
            )
            .ctx("documents at a path")?
            .iter()
            .map(|r| {
                let teams: Vec<String> = col(r, 1)?;
                let level = class_of(col(r, 2)?)?;
                Ok(DocAt {
                    root: col(r, 0)?,
                    access: AccessRule::new(&teams, level).ok(),
                })
            })
            .collect()
        })
    }

    /// Page `page_no` (1-based) of the document at `path`, if `principal`
    /// may see it (read under row-level security).
    pub fn doc_page(
        &self,
        principal: &Principal,
        path: &str,
        page_no: u32,
    ) -> Result<PageLookup, PgError> {
        Ok(match self.doc_text(principal, path, Some(page_no))? {
            DocText::Pages {
                paged,
                n_pages,
                classification,
                mut pages,
            } => PageLookup::Found {
                paged,
                n_pages,
                classification,
                text: pages.pop().unwrap_or_default(),
            },
            DocText::Missing(m) => m,
        })
    }

    /// Every page of the document at `path`, if `principal` may see it:
    /// `(paged, pages)`, or the lookup's failure.
    pub fn doc_pages(
        &self,
        principal: &Principal,
        path: &str,
    ) -> Result<Result<(bool, Vec<String>), PageLookup>, PgError> {
        Ok(match self.doc_text(principal, path, None)? {
            DocText::Pages { paged, pages, .. } => Ok((paged, pages)),
            DocText::Missing(m) => Err(m),
        })
    }

    /// One page (`Some(n)`) or all pages of a document `principal` may
    /// see, in one transaction under row-level security.
    fn doc_text(
        &self,
        principal: &Principal,
        path: &str,
        page_no: Option<u32>,
    ) -> Result<DocText, PgError> {
        let access = Access::of(principal);
        let path = path.to_string();
        self.read.run(move |c| {
            let mut tx = access.begin(c)?;
            let docs = tx
                .query(
                    "SELECT d.id, d.paged, d.classification,
                            (SELECT count(*) FROM pages x WHERE x.doc_id = d.id)
                     FROM documents d
                     WHERE d.path = $1 AND d.teams && $2 AND d.classification <= $3",
                    &[&path, &access.teams, &access.clearance],
                )
                .ctx("find document")?;
            let r = match docs.as_slice() {
                [] => DocText::Missing(PageLookup::NotFound),
                [d] => {
                    let n_pages = col::<i64>(d, 3)? as u32;
                    let id: i64 = col(d, 0)?;
                    // Pages are 0-based `ord` in the table; `None`: all.
                    let range: (i32, i32) = match page_no {
                        Some(p) if p == 0 || p > n_pages.max(1) => {
                            tx.commit().ctx("end read")?;
                            return Ok(DocText::Missing(PageLookup::OutOfRange(n_pages)));
                        }
                        Some(p) => ((p - 1) as i32, (p - 1) as i32),
                        None => (0, i32::MAX),
                    };
                    let mut pages: Vec<String> = tx
                        .query(
                            "SELECT text FROM pages WHERE doc_id = $1 AND ord BETWEEN $2 AND $3 ORDER BY ord",
                            &[&id, &range.0, &range.1],
                        )
                        .ctx("read pages")?
                        .iter()
                        .map(|r| col(r, 0))
                        .collect::<Result<_, PgError>>()?;
                    if page_no.is_some() && pages.is_empty() {
                        pages.push(String::new());
                    }
                    DocText::Pages {
                        paged: col(d, 1)?,
                        n_pages,
                        classification: class_of(col(d, 2)?)?,
                        pages,
                    }
                }
                many => DocText::Missing(PageLookup::Ambiguous(many.len())),
            };
            tx.commit().ctx("end read")?;
            Ok(r)
        })
    }

    /// Runs `sql` as the principal's reader role with no filter of hort's
    /// own: what row-level security alone lets through. For tests of the
    /// policies and for operators checking them.
    pub fn select_as(&self, principal: &Principal, sql: &str) -> Result<Vec<i64>, PgError> {
        let access = Access::of(principal);
        let sql = sql.to_string();
        self.read.run(move |c| {
            let mut tx = access.begin(c)?;
            let rows = tx.query(&sql, &[]).ctx("select as principal")?;
            tx.commit().ctx("end read")?;
            rows.iter().map(|r| col(r, 0)).collect()
        })
    }

    /// Every document with its pages, chunks and vectors (for `hort migrate`
    /// back to the embedded index), `batch` documents at a time from `after`.
    pub fn export(&self, after: i64, batch: i64) -> Result<Vec<(i64, PgDoc)>, PgError> {
        self.write.run(move |c| {
            let docs = c
                .query(
                    "SELECT id, root, path, kind, size, mtime_ns, sha256, teams, classification,
                            rule_source, paged, ingested_at, hygiene_removed
                     FROM documents WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after, &batch],
                )
                .ctx("export documents")?;
            let mut out = Vec::with_capacity(docs.len());
            for r in &docs {
                let id: i64 = col(r, 0)?;
                let teams: Vec<String> = col(r, 7)?;
                let access = if teams.is_empty() {
                    None
                } else {
                    Some(AccessRule {
                        teams,
                        classification: class_of(col(r, 8)?)?,
                    })
                };
                let pages = c
                    .query(
                        "SELECT page_no, text FROM pages WHERE doc_id = $1 ORDER BY ord",
                        &[&id],
                    )
                    .ctx("export pages")?
                    .iter()
                    .map(|p| Ok((col::<i32>(p, 0)? as u32, col::<String>(p, 1)?)))
                    .collect::<Result<_, PgError>>()?;
                let chunks = c
                    .query(
                        "SELECT page_ord, byte_start, byte_end, char_start, char_end, content_hash,
                                injection_score, injection_reasons, embedding
                         FROM chunks WHERE doc_id = $1 ORDER BY ord",
                        &[&id],
                    )
                    .ctx("export chunks")?
                    .iter()
                    .map(|k| {
                        let hash: Vec<u8> = col(k, 5)?;
                        let mut content_hash = [0u8; 16];
                        let n = hash.len().min(16);
                        content_hash[..n].copy_from_slice(&hash[..n]);
                        let score: Option<f32> = col(k, 6)?;
                        let reasons: Option<Vec<String>> = col(k, 7)?;
                        Ok(PgChunk {
                            page_ord: col::<i32>(k, 0)? as u32,
                            byte_start: col::<i32>(k, 1)? as u32,
                            byte_end: col::<i32>(k, 2)? as u32,
                            char_start: col::<i32>(k, 3)? as u32,
                            char_end: col::<i32>(k, 4)? as u32,
                            content_hash,
                            injection: score.map(|s| (s, reasons.unwrap_or_default())),
                            embedding: col::<Vector>(k, 8)?.0,
                        })
                    })
                    .collect::<Result<_, PgError>>()?;
                out.push((
                    id,
                    PgDoc {
                        root: col(r, 1)?,
                        path: col(r, 2)?,
                        kind: col(r, 3)?,
                        size: col::<i64>(r, 4)? as u64,
                        mtime_ns: col(r, 5)?,
                        sha256: col(r, 6)?,
                        access,
                        rule_source: col(r, 9)?,
                        paged: col(r, 10)?,
                        ingested_at: col(r, 11)?,
                        hygiene_removed: col::<i32>(r, 12)? as usize,
                        pages,
                        chunks,
                    },
                ));
            }
            Ok(out)
        })
    }

    /// Adds one request's usage to each `(kind, name)` account of `month`.
    pub fn add_usage(
        &self,
        month: &str,
        accounts: Vec<(String, String)>,
        prompt: u64,
        completion: u64,
        cost: f64,
    ) -> Result<(), PgError> {
        let month = month.to_string();
        self.write.run(move |c| {
            let mut tx = c.transaction().ctx("begin usage")?;
            for (kind, name) in &accounts {
                tx.execute(
                    "INSERT INTO usage (kind, name, month, requests, prompt_tokens, completion_tokens, cost_usd)
                     VALUES ($1, $2, $3, 1, $4, $5, $6)
                     ON CONFLICT (kind, name, month) DO UPDATE SET
                        requests = usage.requests + 1,
                        prompt_tokens = usage.prompt_tokens + EXCLUDED.prompt_tokens,
                        completion_tokens = usage.completion_tokens + EXCLUDED.completion_tokens,
                        cost_usd = usage.cost_usd + EXCLUDED.cost_usd",
                    &[kind, name, &month, &(prompt as i64), &(completion as i64), &cost],
                )
                .ctx("record usage")?;
            }
            tx.commit().ctx("commit usage")
        })
    }

    /// Every account's usage: (kind, name, month, requests, prompt, completion, cost).
    #[allow(clippy::type_complexity)]
    pub fn usage(
        &self,
        kind_name: Option<(String, String, String)>,
    ) -> Result<Vec<(String, String, String, u64, u64, u64, f64)>, PgError> {
        self.write.run(move |c| {
            let (k, n, m) = match kind_name {
                Some((k, n, m)) => (Some(k), Some(n), Some(m)),
                None => (None, None, None),
            };
            let rows = c
                .query(
                    "SELECT kind, name, month, requests, prompt_tokens, completion_tokens, cost_usd
                     FROM usage WHERE ($1::text IS NULL OR (kind = $1 AND name = $2 AND month = $3))
                     ORDER BY kind, name, month",
                    &[&k, &n, &m],
                )
                .ctx("read usage")?;
            rows.iter()
                .map(|r| {
                    Ok((
                        col(r, 0)?,
                        col(r, 1)?,
                        col(r, 2)?,
                        col::<i64>(r, 3)? as u64,
                        col::<i64>(r, 4)? as u64,
                        col::<i64>(r, 5)? as u64,
                        col(r, 6)?,
                    ))
                })
                .collect()
        })
    }

    /// Counts one request against each `(account, per-minute limit)` in the
    /// current minute, all or none: `Err` names the first account over its
    /// limit and the seconds until its window ends.
    pub fn take_rate(
        &self,
        accounts: Vec<(String, u32)>,
        now_secs: i64,
    ) -> Result<Result<(), (String, u64)>, PgError> {
        self.write.run(move |c| {
            let minute = now_secs.div_euclid(60);
            let mut tx = c.transaction().ctx("begin rate")?;
            for (account, rpm) in &accounts {
                let n: i32 = tx
                    .query_one(
                        "INSERT INTO rate_windows (account, minute, n) VALUES ($1, $2, 1)
                         ON CONFLICT (account, minute) DO UPDATE SET n = rate_windows.n + 1
                         RETURNING n",
                        &[account, &minute],
                    )
                    .ctx("count request")?
                    .get(0);
                if n as i64 > *rpm as i64 {
                    tx.rollback().ctx("rate rollback")?;
                    let wait = 60 - now_secs.rem_euclid(60);
                    return Ok(Err((account.clone(), wait as u64)));
                }
            }
            // Old windows are of no use; a few rows per call keep the table small.
            tx.execute(
                "DELETE FROM rate_windows WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM rate_windows WHERE minute < $1 LIMIT 16))",
                &[&(minute - 1)],
            )
            .ctx("prune rate windows")?;
            tx.commit().ctx("commit rate")?;
            Ok(Ok(()))
        })
    }

    /// Appends one line to the shared audit chain: `make(seq, prev_hash)`
    /// renders the line; the append is serialised across nodes. Refused
    /// (nothing written) when the newest rows do not match the chain's head,
    /// i.e. rows were deleted or edited at the end.
    pub fn audit_append(
        &self,
        make: impl FnOnce(u64, String) -> Result<String, PgError> + Send + 'static,
    ) -> Result<u64, PgError> {
        self.write.run(move |c| {
            let mut tx = c.transaction().ctx("begin audit")?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                .ctx("lock audit")?;
            let (seq, prev) = match tx
                .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
                .ctx("audit end")?
            {
                Some(r) => (
                    col::<i64>(&r, 0)? as u64,
                    col::<String>(&r, 1)?,
                ),
                None => (0, crate::gateway::audit::GENESIS.to_string()),
            };
            let head = tx
                .query_one("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", &[])
                .ctx("audit head")?;
            let (head_seq, head_hash) = (col::<i64>(&head, 0)? as u64, col::<String>(&head, 1)?);
            if head_seq != seq || head_hash != prev {
                return Err(PgError::AuditBroken(if head_seq > seq {
                    format!(
                        "the chain ends at record {seq} but {head_seq} were written: the last {} record(s) were removed",
                        head_seq - seq
                    )
                } else {
                    format!("the chain ends at record {seq} and does not match its head (record {head_seq})")
                }));
            }
            let line = make(seq + 1, prev)?;
            let hash = crate::gateway::audit::sha256_hex(line.as_bytes());
            tx.execute(
                "INSERT INTO audit (seq, line, hash) VALUES ($1, $2, $3)",
                &[&((seq + 1) as i64), &line, &hash],
            )
            .ctx("append audit")?;
            tx.execute(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
                &[&((seq + 1) as i64), &hash],
            )
            .ctx("move audit head")?;
            tx.commit().ctx("commit audit")?;
            Ok(seq + 1)
        })
    }

    /// The chain's head: (sequence number, hash) of the last record written.
    pub fn audit_head(&self) -> Result<(u64, String), PgError> {
        self.write.run(|c| {
            let r = c
                .query_one("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
                .ctx("audit head")?;
            Ok((col::<i64>(&r, 0)? as u64, col::<String>(&r, 1)?))
        })
    }

    /// The audit lines in order (for `hort audit verify`).
    pub fn audit_lines(&self) -> Result<Vec<String>, PgError> {
        self.write.run(|c| {
            c.query("SELECT line FROM audit ORDER BY seq", &[])
                .ctx("read audit")?
                .iter()
                .map(|r| col(r, 0))
                .collect()
        })
    }

    /// Runs arbitrary statements as the owner (tests and tooling).
    pub fn execute_owner(&self, sql: &str) -> Result<(), PgError> {
        let sql = sql.to_string();
        self.write
            .run(move |c| c.batch_execute(&sql).ctx("owner statement"))
    }
}

/// Chunks of the principal's teams up to its clearance (a chunk shared by
/// two of its teams counts twice: an upper bound).
fn estimate(counts: &Counts, access: &Access) -> i64 {
    counts
        .iter()
        .filter(|((t, c), _)| *c <= access.clearance && access.teams.contains(t))
        .map(|(_, n)| *n)
        .sum()
}

/// All chunks with an access rule (a chunk counts once per team: the
/// selectivity estimate divides like by like).
fn total(counts: &Counts) -> i64 {
    counts.values().sum()
}

fn class_of(level: i32) -> Result<Classification, PgError> {
    u8::try_from(level)
        .ok()
        .and_then(Classification::from_level)
        .ok_or_else(|| PgError::Mismatch(format!("classification {level} is not a level")))
}

fn chunk_row(r: &postgres::Row) -> Result<ChunkRow, PgError> {
    let score: Option<f32> = col(r, 10)?;
    let reasons: Option<Vec<String>> = col(r, 11)?;
    Ok(ChunkRow {
        id: col(r, 0)?,
        doc_id: col(r, 1)?,
        path: col(r, 2)?,
        paged: col(r, 3)?,
        page_no: col::<i32>(r, 4)? as u32,
        char_start: col::<i32>(r, 5)? as u32,
        char_end: col::<i32>(r, 6)? as u32,
        text: col(r, 7)?,
        teams: col(r, 8)?,
        classification: class_of(col(r, 9)?)?,
        injection: score.map(|s| (s, reasons.unwrap_or_default())),
    })
}

/// Applies pending migrations under a lock (nodes may start together) and
/// checks the stored vectors' embedder against `want`.
fn migrate(c: &mut Client, want: &Meta) -> Result<(), PgError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .ctx("lock migrations")?;
    let r = migrate_locked(c, want);
    let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    r
}

fn migrate_locked(c: &mut Client, want: &Meta) -> Result<(), PgError> {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS hort_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .ctx("create schema table")?;
    let done: Vec<i32> = c
        .query("SELECT version FROM hort_schema", &[])
        .ctx("read schema version")?
        .iter()
        .map(|r| col(r, 0))
        .collect::<Result<_, PgError>>()?;
    for (v, sql) in MIGRATIONS {
        if done.contains(v) {
            continue;
        }
        let sql = sql
            .replace("{dim}", &want.dim.to_string())
            .replace("{m}", &want.m.clamp(2, 100).to_string())
            .replace(
                "{ef_construction}",
                &want.ef_construction.clamp(4, 1000).to_string(),
            )
            .replace("{genesis}", crate::gateway::audit::GENESIS);
        let mut tx = c.transaction().ctx("begin migration")?;
        tx.batch_execute(&sql).ctx("apply migration")?;
        tx.execute("INSERT INTO hort_schema (version) VALUES ($1)", &[v])
            .ctx("record migration")?;
        if *v == 1 {
            for (k, val) in [
                ("embedder", want.embedder.clone()),
                ("dim", want.dim.to_string()),
                ("chunker", want.chunker.clone()),
            ] {
                tx.execute(
                    "INSERT INTO hort_meta (key, value) VALUES ($1, $2)",
                    &[&k, &val],
                )
                .ctx("record embedder")?;
            }
        }
        tx.commit().ctx("commit migration")?;
        tracing::info!(version = v, "applied database migration");
    }
    if let Some(newest) = done.iter().max() {
        let known = MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0);
        if *newest > known {
            return Err(PgError::Mismatch(format!(
                "the database has schema version {newest}, this hort knows up to {known}: upgrade hort"
            )));
        }
    }
    let got: std::collections::HashMap<String, String> = c
        .query("SELECT key, value FROM hort_meta", &[])
        .ctx("read embedder")?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect::<Result<_, PgError>>()?;
    let field = |k: &str| got.get(k).cloned().unwrap_or_default();
    if field("embedder") != want.embedder || field("dim") != want.dim.to_string() {
        return Err(PgError::Mismatch(format!(
            "the database holds vectors of embedder {} ({} dimensions); this configuration embeds with {} ({} dimensions): re-ingest into a new database or use the matching model",
            field("embedder"),
            field("dim"),
            want.embedder,
            want.dim
        )));
    }
    Ok(())
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
