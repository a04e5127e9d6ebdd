//! The AI gateway's accounting: rate limits, what each principal and team
//! spent per month and per provider, budgets (checked *before* a paid call,
//! with the call's worst case), the audit log, and the metrics.
//!
//! The books live behind the [`Ledger`] contract: a journal and an audit
//! file on one node ([`journal`]), or tables every node shares on
//! PostgreSQL ([`pg`]); [`open`] picks the configured one. The gateway
//! itself holds the limits and budgets of the configuration, and keeps this
//! node's own count of spending and rate windows as the fallback when the
//! shared books cannot be reached.

pub mod alerts;
pub mod audit;
pub mod cache;
pub mod journal;
pub mod ledger;
pub mod metrics;
pub mod pg;
pub mod policy;
pub mod ratelimit;

use std::collections::HashMap;
use std::sync::Arc;

use crate::acl::Principal;
use crate::config::{Backend, Config};
use crate::sanitize::pii::{Masker, PiiKind};
use alerts::{Alert, Alerter};
use audit::{AuditError, AuditRecord, Verification};
use cache::AnswerCache;
use journal::{Books, FileLedger};
pub use ledger::{AccountKind, Ledger, LedgerError, Spend, SpendRow, Spender, Usage};
use policy::ContentPolicy;
pub use ratelimit::{RateLimited, RateLimiter};

/// `YYYY-MM` of now (UTC); budgets are monthly.
pub fn month_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, _) = civil(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}")
}

/// (year, month, day) of a day number since 1970-01-01 (H. Hinnant).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// Seconds until the next month starts (UTC): when a spent monthly budget
/// frees up again (the `Retry-After` of a budget refusal).
pub fn seconds_to_next_month() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let (_, _, d) = civil(days);
    // Step day by day from the first of this month to the first of the next.
    let mut next = days - (d - 1) + 27;
    while civil(next).2 != 1 {
        next += 1;
    }
    (next * 86_400 - secs).max(1) as u64
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        now.subsec_millis()
    )
}

/// A request refused because an account's monthly budget is spent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the monthly budget of {account} is spent ({spent:.2} of {budget:.2} USD)")]
pub struct BudgetExceeded {
    /// The account (`principal alice`, `team finance`).
    pub account: String,
    /// Spent this month in USD.
    pub spent: f64,
    /// The monthly budget in USD.
    pub budget: f64,
}

/// The gateway of one node.
pub struct Gateway {
    ledger: Arc<dyn Ledger>,
    /// This node's own books and rate windows: the fallback while shared
    /// books are unreachable (with a file ledger they are the same numbers).
    local: Books,
    local_limiter: RateLimiter,
    principal_budgets: HashMap<String, f64>,
    team_budgets: HashMap<String, f64>,
    principal_rpm: HashMap<String, u32>,
    team_rpm: HashMap<String, u32>,
    log_query_text: bool,
    alerter: Alerter,
    policy: ContentPolicy,
    cache: Option<AnswerCache>,
}

/// An account's spending this month against its budget (`GET /v1/usage`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetStatus {
    /// `principal` or `team`.
    pub kind: AccountKind,
    /// The account.
    pub name: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Spent this month in USD.
    pub spent_usd: f64,
    /// The monthly budget in USD.
    pub budget_usd: f64,
    /// `spent_usd / budget_usd` (none for a budget of 0).
    pub share: Option<f64>,
}

/// Opens the answer cache of `[cache]`: a file in the index directory
/// `index` on the embedded backend, the shared table on PostgreSQL. A cache
/// that cannot be opened (another program holds the file, the database is
/// down) is left out with a warning: answers still come, from providers.
pub fn open_cache(cfg: &Config, index: &std::path::Path) -> Option<AnswerCache> {
    if !cfg.cache.enabled {
        return None;
    }
    let store: Result<Arc<dyn cache::CacheStore>, cache::CacheError> = match cfg.store.backend {
        Backend::Embedded => cache::embedded::RedbCache::open(index).map(|c| Arc::new(c) as _),
        Backend::Postgres => match cfg.store.url() {
            Some(url) => cache::pg::PgCache::open(
                &url,
                crate::store::pg::PoolOptions {
                    size: 2,
                    ..crate::store::pg::PoolOptions::of(&cfg.store)
                },
            )
            .map(|c| Arc::new(c) as _),
            None => return None,
        },
    };
    match store {
        Ok(s) => Some(AnswerCache::new(s, &cfg.cache)),
        Err(e) => {
            tracing::warn!("{e}; answers are not cached by this process");
            None
        }
    }
}

/// Opens the configured books: on the embedded backend the usage journal
/// and the audit file, on PostgreSQL the shared tables.
pub fn open(cfg: &Config) -> Result<Gateway, LedgerError> {
    let ledger: Arc<dyn Ledger> = match cfg.store.backend {
        Backend::Embedded => Arc::new(FileLedger::open(
            &cfg.resolve(&cfg.gateway.usage_path),
            cfg.audit.path.as_ref().map(|p| cfg.resolve(p)).as_deref(),
            cfg.audit.fsync,
        )?),
        Backend::Postgres => {
            let url = cfg
                .store
                .url()
                .ok_or_else(|| LedgerError::NotConfigured("[store] url is not set".into()))?;
            Arc::new(pg::PgLedger::open(
                &url,
                crate::store::pg::PoolOptions {
                    size: cfg.store.pool_size.min(4),
                    ..crate::store::pg::PoolOptions::of(&cfg.store)
                },
                cfg.audit.path.is_some(),
            )?)
        }
    };
    Ok(Gateway::with_ledger(cfg, ledger))
}

/// Checks the configured audit chain — the file at `path` (default
/// `[audit] path`) or, on PostgreSQL with no path given, the database's —
/// without opening it for writing (a broken chain must still be checked).
/// Returns what was checked and what was found; `None` if there is no
/// audit log to check.
pub fn verify_audit(
    cfg: &Config,
    path: Option<&std::path::Path>,
    require_head: bool,
) -> Result<Option<(String, Verification)>, LedgerError> {
    if path.is_none() && cfg.store.backend == Backend::Postgres {
        let url = cfg
            .store
            .url()
            .ok_or_else(|| LedgerError::NotConfigured("[store] url is not set".into()))?;
        let ledger = pg::PgLedger::open(&url, 1, true)?;
        return Ok(ledger
            .verify(require_head)?
            .map(|v| ("database audit log".to_string(), v)));
    }
    let Some(p) = path
        .map(std::path::Path::to_path_buf)
        .or_else(|| cfg.audit.path.as_ref().map(|p| cfg.resolve(p)))
    else {
        return Ok(None);
    };
    let v = audit::verify(&p, require_head)?;
    Ok(Some((p.display().to_string(), v)))
}

impl Gateway {
    /// A gateway that keeps its books in memory only.
    pub fn new(cfg: &Config) -> Gateway {
        Gateway::with_ledger(cfg, Arc::new(FileLedger::memory()))
    }

    /// A gateway over the given books.
    pub fn with_ledger(cfg: &Config, ledger: Arc<dyn Ledger>) -> Gateway {
        Gateway {
            ledger,
            local: Books::default(),
            local_limiter: RateLimiter::default(),
            principal_budgets: cfg
                .principals
                .iter()
                .filter_map(|p| p.monthly_budget_usd.map(|b| (p.name.clone(), b)))
                .collect(),
            team_budgets: cfg
                .teams
                .iter()
                .filter_map(|t| t.monthly_budget_usd.map(|b| (t.name.clone(), b)))
                .collect(),
            principal_rpm: cfg
                .principals
                .iter()
                .filter_map(|p| p.requests_per_minute.map(|r| (p.name.clone(), r)))
                .collect(),
            team_rpm: cfg
                .teams
                .iter()
                .filter_map(|t| t.requests_per_minute.map(|r| (t.name.clone(), r)))
                .collect(),
            log_query_text: cfg.audit.log_query_text,
            alerter: Alerter::new(&cfg.alerts),
            policy: ContentPolicy::new(&cfg.content_policy).unwrap_or_else(|e| {
                tracing::error!("{e}: every question and answer is refused");
                ContentPolicy::deny_all(&e.to_string())
            }),
            cache: None,
        }
    }

    /// This gateway with an answer cache.
    pub fn with_cache(mut self, cache: Option<AnswerCache>) -> Gateway {
        self.cache = cache;
        self
    }

    /// The answer cache, if there is one.
    pub fn cache(&self) -> Option<&AnswerCache> {
        self.cache.as_ref()
    }

    /// The content policy.
    pub fn policy(&self) -> &ContentPolicy {
        &self.policy
    }

    /// The alerting (its counters).
    pub fn alerter(&self) -> &Alerter {
        &self.alerter
    }

    /// Keeps an agent run's state in the books (a file, or the database).
    pub fn put_run(&self, id: &str, state: &str) -> Result<(), LedgerError> {
        self.ledger.put_run(id, state)
    }

    /// An agent run's state.
    pub fn get_run(&self, id: &str) -> Result<Option<String>, LedgerError> {
        self.ledger.get_run(id)
    }

    /// An alert about an agent run that was stopped (a limit, the kill
    /// switch, a guard): the server log, the audit log's run line and, if
    /// configured, the alert webhook.
    pub fn run_alert(&self, text: &str) {
        self.alerter.send_text("agent_run_stopped", text);
    }

    /// Every configured budget this month (for reports; callers filter).
    pub fn budget_status(&self) -> Vec<BudgetStatus> {
        let month = month_now();
        let mut out: Vec<BudgetStatus> = self
            .principal_budgets
            .iter()
            .map(|(n, b)| (AccountKind::Principal, n, *b))
            .chain(
                self.team_budgets
                    .iter()
                    .map(|(n, b)| (AccountKind::Team, n, *b)),
            )
            .map(|(kind, name, budget)| {
                let spent = self.spent(kind, name).cost_usd;
                BudgetStatus {
                    kind,
                    name: name.clone(),
                    month: month.clone(),
                    spent_usd: spent,
                    budget_usd: budget,
                    share: (budget > 0.0).then(|| spent / budget),
                }
            })
            .collect();
        out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        out
    }

    /// Raises the budget alerts `p`'s spending crossed (each once per
    /// account, month and threshold): an audit record and a webhook call.
    fn raise_alerts(&self, p: &Principal, month: &str) {
        for (kind, name, budget) in self.budgets(p) {
            let account = format!("{} {name}", kind.as_str());
            let spent = self.spent(kind, name).cost_usd;
            for (t, permille) in self.alerter.crossed(&account, month, spent, budget) {
                let first = match self.ledger.claim_alert(kind, name, month, permille) {
                    Ok(first) => first,
                    Err(e) => {
                        tracing::error!("budget alert not claimed (raised on this node only): {e}");
                        true
                    }
                };
                self.alerter.seen(&account, month, permille);
                if !first {
                    continue;
                }
                let pct = (t * 100.0).round();
                let alert = Alert {
                    text: format!(
                        "hort: {account} has spent {spent:.2} of its {budget:.2} USD budget for {month} ({pct}% threshold reached)"
                    ),
                    kind: kind.as_str(),
                    account: name.to_string(),
                    month: month.to_string(),
                    threshold: t,
                    spent_usd: spent,
                    budget_usd: budget,
                };
                let record = AuditRecord {
                    time: rfc3339_now(),
                    request_id: format!("budget-alert-{month}-{permille}"),
                    principal: account.clone(),
                    endpoint: "gateway:budget_alert".into(),
                    status: 200,
                    cost_usd: spent,
                    flags: vec![format!("budget_alert:{pct}%")],
                    ..AuditRecord::default()
                };
                if let Err(e) = self.audit(record) {
                    tracing::error!("budget alert not in the audit log: {e}");
                }
                self.alerter.send(alert);
            }
        }
    }

    /// What an account spent this month.
    pub fn spent(&self, kind: AccountKind, name: &str) -> Spend {
        let month = month_now();
        match self.ledger.spent(kind, name, &month) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("shared usage unreadable, using this node's: {e}");
                self.local.spent(kind, name, &month)
            }
        }
    }

    /// Every month's spending of every account (for reports and metrics).
    pub fn all_spending(&self) -> Vec<SpendRow> {
        match self.ledger.all_spending() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("shared usage unreadable, using this node's: {e}");
                self.local.rows()
            }
        }
    }

    /// Rate limits of the principal and its teams (a request counts for each).
    pub fn check_rate(&self, p: &Principal, jwt_rpm: Option<u32>) -> Result<(), RateLimited> {
        let mut accounts = Vec::new();
        if let Some(r) = self.principal_rpm.get(&p.name).copied().or(jwt_rpm) {
            accounts.push((format!("principal {}", p.name), r));
        }
        for t in &p.teams {
            if let Some(&r) = self.team_rpm.get(t) {
                accounts.push((format!("team {t}"), r));
            }
        }
        if accounts.is_empty() {
            return Ok(());
        }
        match self.ledger.take_rate(&accounts) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("shared rate limits unreachable, using this node's: {e}");
                self.local_limiter.take(&accounts)
            }
        }
    }

    /// The budgets that apply to `p`: its own and its teams'.
    fn budgets<'a>(&self, p: &'a Principal) -> Vec<(AccountKind, &'a str, f64)> {
        let mut accounts = Vec::new();
        if let Some(&b) = self.principal_budgets.get(&p.name) {
            accounts.push((AccountKind::Principal, p.name.as_str(), b));
        }
        for t in &p.teams {
            if let Some(&b) = self.team_budgets.get(t) {
                accounts.push((AccountKind::Team, t.as_str(), b));
            }
        }
        accounts
    }

    /// Refuses a principal whose own or whose team's monthly budget is spent
    /// (a budget of 0 allows only free providers and is never "spent").
    pub fn check_spent(&self, p: &Principal) -> Result<(), BudgetExceeded> {
        for (kind, name, budget) in self.budgets(p) {
            let spent = self.spent(kind, name).cost_usd;
            if budget > 0.0 && spent >= budget {
                return Err(BudgetExceeded {
                    account: format!("{} {name}", kind.as_str()),
                    spent,
                    budget,
                });
            }
        }
        Ok(())
    }

    /// Whether a call that may cost up to `worst_case_usd` fits the budgets
    /// of the principal and of each of its teams.
    pub fn check_budget(&self, p: &Principal, worst_case_usd: f64) -> Result<(), BudgetExceeded> {
        if worst_case_usd <= 0.0 {
            return Ok(());
        }
        for (kind, name, budget) in self.budgets(p) {
            let spent = self.spent(kind, name).cost_usd;
            if spent + worst_case_usd > budget {
                return Err(BudgetExceeded {
                    account: format!("{} {name}", kind.as_str()),
                    spent,
                    budget,
                });
            }
        }
        Ok(())
    }

    /// Books an answered request on the principal, its teams and the provider.
    pub fn record(&self, principal: &str, teams: &[String], provider: &str, u: &Usage) {
        let month = month_now();
        let who = Spender {
            principal: principal.to_string(),
            teams: teams.to_vec(),
            provider: provider.to_string(),
        };
        self.local.book(&month, &who, u);
        if let Err(e) = self.ledger.add_usage(&month, &who, u) {
            tracing::error!("usage not recorded: {e}");
        }
        if u.cost_usd > 0.0 {
            let p = Principal {
                name: principal.to_string(),
                teams: teams.to_vec(),
                clearance: crate::acl::Classification::Public,
            };
            self.raise_alerts(&p, &month);
        }
    }

    /// The question as the audit log keeps it: always its hash, its text
    /// only if configured, and then with personal data masked.
    pub fn question(&self, q: &str, record: &mut AuditRecord) {
        record.query_sha256 = Some(crate::text::sha256_hex(q.as_bytes()));
        if self.log_query_text {
            record.query = Some(Masker::new().mask(q, &PiiKind::ALL).0);
        }
    }

    /// Appends one record to the audit chain.
    pub fn audit(&self, record: AuditRecord) -> Result<(), AuditError> {
        self.ledger.audit(record)
    }

    /// The newest audit records (only `principal`'s when given), newest first.
    pub fn recent_audit(
        &self,
        principal: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        self.ledger.recent_audit(principal, limit)
    }

    /// Why the audit chain refuses appends, if it does.
    pub fn audit_broken(&self) -> Option<String> {
        self.ledger.audit_broken()
    }

    /// Checks the audit chain of these books (`None`: there is none).
    pub fn verify_audit(&self, require_head: bool) -> Result<Option<Verification>, AuditError> {
        self.ledger.verify(require_head)
    }

    /// Makes pending writes durable (at shutdown).
    pub fn flush(&self) {
        self.ledger.flush();
        if let Some(c) = &self.cache {
            c.flush();
        }
        self.alerter.drain(std::time::Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Classification;
    use std::path::{Path, PathBuf};

    fn cfg() -> Config {
        Config::parse(
            "[[principals]]\nname='a'\nteams=['t']\nclearance='public'\nmonthly_budget_usd=1.0\n\n[[teams]]\nname='t'\nmonthly_budget_usd=1.5\n",
            Path::new("x"),
            PathBuf::from("."),
        )
        .unwrap()
    }

    fn journaled(path: &Path) -> Gateway {
        let l = FileLedger::open(path, None, crate::config::FsyncPolicy::Never).unwrap();
        Gateway::with_ledger(&cfg(), Arc::new(l))
    }

    #[test]
    fn budgets_of_principal_and_team_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("usage.jsonl");
        let a = Principal::new("a", &["t"], Classification::Public);
        let b = Principal::new("b", &["t"], Classification::Public);
        {
            let g = journaled(&path);
            assert!(g.check_budget(&a, 0.5).is_ok());
            g.record(
                "a",
                &a.teams,
                "cloud",
                &Usage {
                    prompt_tokens: 10,
                    completion_tokens: 5,
                    cost_usd: 0.8,
                },
            );
            assert!(g
                .check_budget(&a, 0.5)
                .unwrap_err()
                .account
                .starts_with("principal a"));
            assert!(
                g.check_budget(&a, 0.0).is_ok(),
                "free providers are always fine"
            );
        }
        let g = journaled(&path);
        assert!(
            (g.spent(AccountKind::Principal, "a").cost_usd - 0.8).abs() < 1e-9,
            "replayed"
        );
        g.record(
            "b",
            &b.teams,
            "cloud",
            &Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
                cost_usd: 0.6,
            },
        );
        // b has no budget of its own, but its team has spent 1.4 of 1.5.
        let e = g.check_budget(&b, 0.2).unwrap_err();
        assert_eq!(e.account, "team t");
        assert_eq!(g.spent(AccountKind::Team, "t").requests, 2);
        assert_eq!(month_now().len(), 7);
    }

    #[test]
    fn a_budget_alert_is_claimed_once_across_restarts() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("usage.jsonl");
        let open = || FileLedger::open(&path, None, crate::config::FsyncPolicy::Never).unwrap();
        {
            let l = open();
            assert!(l
                .claim_alert(AccountKind::Team, "t", "2026-12", 800)
                .unwrap());
            assert!(!l
                .claim_alert(AccountKind::Team, "t", "2026-12", 800)
                .unwrap());
            // Spending lines and alert lines share the journal.
            l.add_usage(
                "2026-12",
                &Spender {
                    principal: "a".into(),
                    teams: vec!["t".into()],
                    provider: "p".into(),
                },
                &Usage {
                    prompt_tokens: 1,
                    completion_tokens: 1,
                    cost_usd: 0.5,
                },
            )
            .unwrap();
        }
        let l = open();
        assert!(!l
            .claim_alert(AccountKind::Team, "t", "2026-12", 800)
            .unwrap());
        assert!(l
            .claim_alert(AccountKind::Team, "t", "2027-01", 800)
            .unwrap());
        assert!(l
            .claim_alert(AccountKind::Principal, "t", "2026-12", 800)
            .unwrap());
        assert!((l.spent(AccountKind::Team, "t", "2026-12").unwrap().cost_usd - 0.5).abs() < 1e-9);
    }

    #[test]
    fn question_text_is_hashed_and_masked() {
        let mut c = cfg();
        c.audit.log_query_text = true;
        let g = Gateway::new(&c);
        let mut r = AuditRecord::default();
        g.question("Refund to DE89 3704 0044 0532 0130 00 please", &mut r);
        assert_eq!(r.query.as_deref(), Some("Refund to [IBAN_1] please"));
        assert_eq!(r.query_sha256.unwrap().len(), 64);
    }
}
