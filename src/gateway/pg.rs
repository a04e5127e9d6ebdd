//! The books in PostgreSQL, shared by every node on the database: spending
//! per account and month, per-minute request windows, and one audit chain
//! (appends serialised across nodes, the head kept in a row changed in the
//! same transaction). The gateway owns these tables and their migrations
//! (`schema/*.sql` beside this file), versioned apart from the documents'.

use std::sync::Mutex;

use futures_util::FutureExt;

use super::audit::{
    self, check_chain, render_line, AuditError, AuditRecord, Verification, GENESIS,
};
use super::ledger::{AccountKind, Ledger, LedgerError, Spend, SpendRow, Spender, Usage};
use super::ratelimit::RateLimited;
use crate::store::pg::{col, Conn, PgError, Pool};

/// Migrations of the gateway's tables (`{genesis}` filled in).
const MIGRATIONS: [(i32, &str); 3] = [
    (1, include_str!("schema/001_gateway.sql")),
    (2, include_str!("schema/002_cache_alerts.sql")),
    (3, include_str!("schema/003_runs.sql")),
];

/// Serialises the gateway's migrations across nodes.
const MIGRATION_LOCK: i64 = 0x686f_7274_6777; // "hortgw"
/// Serialises audit appends across nodes.
const AUDIT_LOCK: i64 = 0x686f_7274_6175; // "hortau"

fn db(e: PgError) -> LedgerError {
    LedgerError::Db(e)
}

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> PgError {
    move |source| PgError::Query { context, source }
}

/// The shared ledger.
pub struct PgLedger {
    pool: Pool,
    /// Whether audit records are kept (`[audit] path` set, as on the
    /// embedded backend; the table is then used instead of the file).
    audit: bool,
    /// Why appends are refused, once the chain was found cut (sticky).
    broken: Mutex<Option<String>>,
}

async fn migrate(c: &mut Conn) -> Result<(), PgError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(q("lock gateway migrations"))?;
    let r = async {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS hort_gateway_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        ).await
        .map_err(q("create gateway schema table"))?;
        let done: Vec<i32> = c
            .query("SELECT version FROM hort_gateway_schema", &[]).await
            .map_err(q("read gateway schema version"))?
            .iter()
            .map(|r| col(r, 0))
            .collect::<Result<_, PgError>>()?;
        for (v, sql) in MIGRATIONS.iter() {
            if done.contains(v) {
                continue;
            }
            let tx = c.transaction().await.map_err(q("begin gateway migration"))?;
            tx.batch_execute(&sql.replace("{genesis}", GENESIS)).await
                .map_err(q("apply gateway migration"))?;
            tx.execute(
                "INSERT INTO hort_gateway_schema (version) VALUES ($1)",
                &[v],
            ).await
            .map_err(q("record gateway migration"))?;
            tx.commit().await.map_err(q("commit gateway migration"))?;
        }
        Ok(())
    }
    .await;
    let _ = c
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    r
}

impl PgLedger {
    /// Connects (a small pool of its own) and applies the gateway's
    /// migrations; `audit`: whether [`Ledger::audit`] appends to the chain.
    pub fn open(
        url: &str,
        pool: impl Into<crate::store::pg::PoolOptions>,
        audit: bool,
    ) -> Result<PgLedger, LedgerError> {
        let pool = Pool::new(url, pool).map_err(db)?;
        pool.run(|c| migrate(c).boxed()).map_err(db)?;
        Ok(PgLedger {
            pool,
            audit,
            broken: Mutex::new(None),
        })
    }

    /// The chain's head: (sequence number, hash) of the last record written.
    pub fn audit_head(&self) -> Result<(u64, String), PgError> {
        self.pool.run(|c| {
            async move {
                let r = c
                    .query_one("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
                    .await
                    .map_err(q("audit head"))?;
                Ok((col::<i64>(&r, 0)? as u64, col::<String>(&r, 1)?))
            }
            .boxed()
        })
    }

    /// The audit lines in order.
    pub fn audit_lines(&self) -> Result<Vec<String>, PgError> {
        self.pool.run(|c| {
            async move {
                c.query("SELECT line FROM audit ORDER BY seq", &[])
                    .await
                    .map_err(q("read audit"))?
                    .iter()
                    .map(|r| col(r, 0))
                    .collect()
            }
            .boxed()
        })
    }

    /// Runs statements as the owner (tests: simulating tampering).
    pub fn execute_owner(&self, sql: &str) -> Result<(), PgError> {
        let sql = sql.to_string();
        self.pool.run(move |c| {
            async move { c.batch_execute(&sql).await.map_err(q("owner statement")) }.boxed()
        })
    }

    /// Appends one record; refused (nothing written) when the newest rows
    /// do not match the chain's head, i.e. rows were deleted or edited at
    /// the end.
    fn append(&self, record: AuditRecord) -> Result<(), PgError> {
        self.pool.run(move |c| async move {
            let tx = c.transaction().await.map_err(q("begin audit"))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK]).await
                .map_err(q("lock audit"))?;
            let (seq, prev) = match tx
                .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[]).await
                .map_err(q("audit end"))?
            {
                Some(r) => (col::<i64>(&r, 0)? as u64, col::<String>(&r, 1)?),
                None => (0, GENESIS.to_string()),
            };
            let head = tx
                .query_one("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", &[]).await
                .map_err(q("audit head"))?;
            let (head_seq, head_hash) = (col::<i64>(&head, 0)? as u64, col::<String>(&head, 1)?);
            if head_seq != seq || head_hash != prev {
                return Err(PgError::AuditBroken(if head_seq > seq {
                    format!(
                        "the chain ends at record {seq} but {head_seq} were written: the last {} record(s) were removed",
                        head_seq - seq
                    )
                } else {
                    format!(
                        "the chain ends at record {seq} and does not match its head (record {head_seq})"
                    )
                }));
            }
            let line = render_line(seq + 1, prev, record);
            let hash = crate::text::sha256_hex(line.as_bytes());
            tx.execute(
                "INSERT INTO audit (seq, line, hash) VALUES ($1, $2, $3)",
                &[&((seq + 1) as i64), &line, &hash],
            ).await
            .map_err(q("append audit"))?;
            tx.execute(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
                &[&((seq + 1) as i64), &hash],
            ).await
            .map_err(q("move audit head"))?;
            tx.commit().await.map_err(q("commit audit"))?;
            Ok(())
        }.boxed())
    }
}

impl Ledger for PgLedger {
    fn add_usage(&self, month: &str, who: &Spender, u: &Usage) -> Result<(), LedgerError> {
        let month = month.to_string();
        let accounts: Vec<(String, String)> = who
            .accounts()
            .into_iter()
            .map(|(k, n)| (k.as_str().to_string(), n))
            .collect();
        let (prompt, completion, cost) = (
            u.prompt_tokens as i64,
            u.completion_tokens as i64,
            u.cost_usd,
        );
        self.pool
            .run(move |c| async move {
                let tx = c.transaction().await.map_err(q("begin usage"))?;
                for (kind, name) in &accounts {
                    tx.execute(
                        "INSERT INTO usage (kind, name, month, requests, prompt_tokens, completion_tokens, cost_usd)
                         VALUES ($1, $2, $3, 1, $4, $5, $6)
                         ON CONFLICT (kind, name, month) DO UPDATE SET
                            requests = usage.requests + 1,
                            prompt_tokens = usage.prompt_tokens + EXCLUDED.prompt_tokens,
                            completion_tokens = usage.completion_tokens + EXCLUDED.completion_tokens,
                            cost_usd = usage.cost_usd + EXCLUDED.cost_usd",
                        &[kind, name, &month, &prompt, &completion, &cost],
                    ).await
                    .map_err(q("record usage"))?;
                }
                tx.commit().await.map_err(q("commit usage"))
            }.boxed())
            .map_err(db)
    }

    fn put_run(&self, id: &str, state: &str) -> Result<(), LedgerError> {
        let (id, state) = (id.to_string(), state.to_string());
        self.pool
            .run(move |c| {
                async move {
                    c.execute(
                        "INSERT INTO agent_runs (id, state) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET state = $2, updated_at = now()",
                        &[&id, &state],
                    )
                    .await
                    .map_err(q("keep agent run"))
                }
                .boxed()
            })
            .map_err(db)?;
        Ok(())
    }

    fn get_run(&self, id: &str) -> Result<Option<String>, LedgerError> {
        let id = id.to_string();
        self.pool
            .run(move |c| {
                async move {
                    c.query_opt("SELECT state FROM agent_runs WHERE id = $1", &[&id])
                        .await
                        .map_err(q("read agent run"))?
                        .map(|r| col::<String>(&r, 0))
                        .transpose()
                }
                .boxed()
            })
            .map_err(db)
    }

    fn claim_alert(
        &self,
        kind: AccountKind,
        name: &str,
        month: &str,
        permille: u32,
    ) -> Result<bool, LedgerError> {
        let (kind, name, month, permille) = (
            kind.as_str().to_string(),
            name.to_string(),
            month.to_string(),
            permille as i32,
        );
        let n = self
            .pool
            .run(move |c| {
                async move {
                    c.execute(
                    "INSERT INTO budget_alerts (kind, name, month, permille) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&kind, &name, &month, &permille],
                ).await
                .map_err(q("claim budget alert"))
                }
                .boxed()
            })
            .map_err(db)?;
        Ok(n == 1)
    }

    fn spent(&self, kind: AccountKind, name: &str, month: &str) -> Result<Spend, LedgerError> {
        let (k, n, m) = (
            kind.as_str().to_string(),
            name.to_string(),
            month.to_string(),
        );
        self.pool
            .run(move |c| {
                async move {
                    let r = c
                        .query_opt(
                            "SELECT requests, prompt_tokens, completion_tokens, cost_usd
                         FROM usage WHERE kind = $1 AND name = $2 AND month = $3",
                            &[&k, &n, &m],
                        )
                        .await
                        .map_err(q("read usage"))?;
                    Ok(match r {
                        None => Spend::default(),
                        Some(r) => Spend {
                            requests: col::<i64>(&r, 0)? as u64,
                            prompt_tokens: col::<i64>(&r, 1)? as u64,
                            completion_tokens: col::<i64>(&r, 2)? as u64,
                            cost_usd: col(&r, 3)?,
                        },
                    })
                }
                .boxed()
            })
            .map_err(db)
    }

    fn all_spending(&self) -> Result<Vec<SpendRow>, LedgerError> {
        self.pool
            .run(|c| async move {
                let rows = c
                    .query(
                        "SELECT kind, name, month, requests, prompt_tokens, completion_tokens, cost_usd
                         FROM usage ORDER BY kind, name, month",
                        &[],
                    ).await
                    .map_err(q("read usage"))?;
                rows.iter()
                    .filter_map(|r| {
                        let kind: String = match col(r, 0) {
                            Ok(k) => k,
                            Err(e) => return Some(Err(e)),
                        };
                        let kind = AccountKind::parse(&kind)?;
                        Some((|| {
                            Ok(SpendRow {
                                kind,
                                name: col(r, 1)?,
                                month: col(r, 2)?,
                                spend: Spend {
                                    requests: col::<i64>(r, 3)? as u64,
                                    prompt_tokens: col::<i64>(r, 4)? as u64,
                                    completion_tokens: col::<i64>(r, 5)? as u64,
                                    cost_usd: col(r, 6)?,
                                },
                            })
                        })())
                    })
                    .collect()
            }.boxed())
            .map_err(db)
    }

    fn take_rate(&self, limits: &[(String, u32)]) -> Result<Result<(), RateLimited>, LedgerError> {
        if limits.is_empty() {
            return Ok(Ok(()));
        }
        let accounts = limits.to_vec();
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.pool
            .run(move |c| {
                async move {
                    let minute = now_secs.div_euclid(60);
                    let names: Vec<&str> = accounts.iter().map(|(a, _)| a.as_str()).collect();
                    // Every account counted in one statement, and the
                    // begin and the pruning sent with it: one round trip
                    // (then commit, or roll back if one is over its
                    // limit, so that a refused request counts nowhere).
                    // Counting first and checking after is what keeps the
                    // limit exact between nodes: the upsert locks each row.
                    let count = c
                        .prepare_cached(
                            "INSERT INTO rate_windows (account, minute, n)
                             SELECT DISTINCT a, $2::bigint, 1 FROM unnest($1::text[]) a
                             ON CONFLICT (account, minute) DO UPDATE SET n = rate_windows.n + 1
                             RETURNING account, n",
                        )
                        .await
                        .map_err(q("prepare rate count"))?;
                    // Old windows are of no use; a few rows per call keep the table small.
                    let prune = c
                        .prepare_cached(
                            "DELETE FROM rate_windows WHERE ctid = ANY(ARRAY(
                             SELECT ctid FROM rate_windows WHERE minute < $1 LIMIT 16))",
                        )
                        .await
                        .map_err(q("prepare rate prune"))?;
                    let old = minute - 1;
                    let count_args: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                        [&names, &minute];
                    let prune_args: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&old];
                    let (began, counted, pruned) = futures_util::join!(
                        c.batch_execute("BEGIN"),
                        c.query(&count, &count_args),
                        c.execute(&prune, &prune_args),
                    );
                    // The first account over its limit; nothing returns
                    // before the transaction is ended.
                    let over: Result<Option<String>, PgError> = began
                        .and(pruned)
                        .and(counted)
                        .map_err(q("count request"))
                        .and_then(|rows| {
                            for r in &rows {
                                let (account, n): (String, i32) = (col(r, 0)?, col(r, 1)?);
                                let limit = accounts
                                    .iter()
                                    .filter(|(a, _)| *a == account)
                                    .map(|(_, rpm)| *rpm)
                                    .min()
                                    .unwrap_or(u32::MAX);
                                if n as i64 > limit as i64 {
                                    return Ok(Some(account));
                                }
                            }
                            Ok(None)
                        });
                    let end = if matches!(over, Ok(None)) {
                        "COMMIT"
                    } else {
                        "ROLLBACK"
                    };
                    let ended = c.batch_execute(end).await.map_err(q("end rate count"));
                    let over = over?;
                    ended?;
                    Ok(match over {
                        None => Ok(()),
                        Some(account) => {
                            let wait = 60 - now_secs.rem_euclid(60);
                            Err(RateLimited {
                                account,
                                retry_after: std::time::Duration::from_secs(wait.max(1) as u64),
                            })
                        }
                    })
                }
                .boxed()
            })
            .map_err(db)
    }

    fn audit(&self, record: AuditRecord) -> Result<(), AuditError> {
        if !self.audit {
            return Ok(());
        }
        if let Some(reason) = self.audit_broken() {
            return Err(AuditError::SharedBroken(reason));
        }
        match self.append(record) {
            Ok(()) => Ok(()),
            Err(PgError::AuditBroken(reason)) => {
                tracing::error!(%reason, "shared audit log: refusing to continue the chain");
                if let Ok(mut b) = self.broken.lock() {
                    *b = Some(reason.clone());
                }
                Err(AuditError::SharedBroken(reason))
            }
            Err(e) => Err(AuditError::Db(e)),
        }
    }

    fn audit_broken(&self) -> Option<String> {
        self.broken.lock().ok().and_then(|b| b.clone())
    }

    fn recent_audit(
        &self,
        principal: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        if !self.audit {
            return Ok(Vec::new());
        }
        let (who, n) = (principal.map(str::to_string), limit as i64);
        let lines: Vec<String> = self
            .pool
            .run(move |c| {
                async move {
                    // Newest first through the primary key; the principal is
                    // compared on the line's JSON, so a scan stops at `n` matches.
                    c.query(
                        "SELECT line FROM audit \
                     WHERE $1::text IS NULL OR (line::jsonb ->> 'principal') = $1 \
                     ORDER BY seq DESC LIMIT $2",
                        &[&who, &n],
                    )
                    .await
                    .map_err(q("read recent audit"))?
                    .iter()
                    .map(|r| col(r, 0))
                    .collect()
                }
                .boxed()
            })
            .map_err(AuditError::Db)?;
        Ok(lines
            .iter()
            .filter_map(|l| audit::parse_record(l))
            .collect())
    }

    fn verify(&self, _require_head: bool) -> Result<Option<Verification>, AuditError> {
        let shared = AuditError::Db;
        let lines = self.audit_lines().map_err(shared)?;
        let (head_seq, head_hash) = self.audit_head().map_err(shared)?;
        let mut c = check_chain(lines.into_iter().map(Ok));
        let last = c.expect_seq - 1;
        if head_seq > last {
            c.problems.push(format!(
                "the chain ends at record {last} but {head_seq} were written: the last {} record(s) were removed",
                head_seq - last
            ));
        } else if head_seq != last || head_hash != c.prev_hash {
            c.problems.push(format!(
                "record {last}: the last record was edited (it does not match the head)"
            ));
        }
        Ok(Some(Verification {
            records: c.records,
            problems: c.problems,
        }))
    }

    fn flush(&self) {}
}
