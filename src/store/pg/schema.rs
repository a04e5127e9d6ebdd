//! The database schema of the documents: versioned migrations in `.sql`
//! files beside this one, applied in order, each once, each in a
//! transaction, under an advisory lock (nodes may start together). The
//! gateway keeps its own tables and versions (`gateway::pg`).

use super::Conn;

use super::{col, Ctx, Meta, PgError};

/// `{dim}`, `{m}` and `{ef_construction}` are filled in when applied.
const MIGRATIONS: [(i32, &str); 15] = [
    (1, include_str!("schema/001_documents.sql")),
    (2, include_str!("schema/002_ingest.sql")),
    (3, include_str!("schema/003_failures.sql")),
    (4, include_str!("schema/004_ocr.sql")),
    (5, include_str!("schema/005_postings.sql")),
    (6, include_str!("schema/006_postings_by_access.sql")),
    (7, include_str!("schema/007_distribution.sql")),
    (8, include_str!("schema/008_term_blocks.sql")),
    (9, include_str!("schema/009_inline_vectors.sql")),
    (10, include_str!("schema/010_chunks_by_access_set.sql")),
    (
        11,
        include_str!("schema/011_policies_read_settings_once.sql"),
    ),
    (12, include_str!("schema/012_block_generation.sql")),
    (13, include_str!("schema/013_access_set_versions.sql")),
    (14, include_str!("schema/014_keyword_read.sql")),
    (
        15,
        include_str!("schema/015_versions_follow_every_write.sql"),
    ),
];

/// Serialises migrations across nodes starting at once.
const MIGRATION_LOCK: i64 = 0x686f_7274_6d69; // "hortmi"

/// Applies pending migrations under a lock (nodes may start together) and
/// checks the stored vectors' embedder against `want`.
/// Migrates the schema and checks the model; returns the embedder the
/// database recorded.
pub(super) async fn migrate(c: &mut Conn, want: &Meta) -> Result<String, PgError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .ctx("lock migrations")?;
    let r = migrate_locked(c, want).await;
    let _ = c
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    r
}

async fn migrate_locked(c: &mut Conn, want: &Meta) -> Result<String, PgError> {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS hort_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    ).await
    .ctx("create schema table")?;
    let done: Vec<i32> = c
        .query("SELECT version FROM hort_schema", &[])
        .await
        .ctx("read schema version")?
        .iter()
        .map(|r| col(r, 0))
        .collect::<Result<_, PgError>>()?;
    for (v, sql) in MIGRATIONS.iter() {
        if done.contains(v) {
            continue;
        }
        let sql = sql
            .replace("{dim}", &want.dim.to_string())
            .replace("{m}", &want.m.clamp(2, 100).to_string())
            .replace(
                "{ef_construction}",
                &want.ef_construction.clamp(4, 1000).to_string(),
            );
        let tx = c.transaction().await.ctx("begin migration")?;
        tx.batch_execute(&sql).await.ctx("apply migration")?;
        tx.execute("INSERT INTO hort_schema (version) VALUES ($1)", &[v])
            .await
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
                .await
                .ctx("record embedder")?;
            }
        }
        tx.commit().await.ctx("commit migration")?;
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
        .await
        .ctx("read embedder")?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect::<Result<_, PgError>>()?;
    let field = |k: &str| got.get(k).cloned().unwrap_or_default();
    if !crate::store::embedder_compatible(&field("embedder"), &want.embedder)
        || field("dim") != want.dim.to_string()
    {
        return Err(PgError::Mismatch(format!(
            "the database holds vectors of embedder {} ({} dimensions); this configuration embeds with {} ({} dimensions): re-ingest into a new database or use the matching model",
            field("embedder"),
            field("dim"),
            want.embedder,
            want.dim
        )));
    }
    // BM25 postings for chunks written before them (or by another analysis),
    // and their blocks.
    super::postings::backfill(c).await?;
    super::blocks::build_missing(c).await?;
    Ok(field("embedder"))
}
