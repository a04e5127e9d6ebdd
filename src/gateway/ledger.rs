//! The gateway's books behind one contract: what was spent (per account and
//! month), the per-minute request windows, and the audit chain. Two
//! implementations: [`super::journal::FileLedger`] (a usage journal and an
//! audit file beside the embedded index, one node) and
//! [`super::pg::PgLedger`] (tables in the database, shared by every node).

use serde::{Deserialize, Serialize};

use super::audit::{AuditError, AuditRecord, Verification};
use super::ratelimit::RateLimited;

/// The kinds of account spending is booked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A principal (configured, or `jwt:<sub>`).
    Principal,
    /// A team.
    Team,
    /// A provider (what it was paid).
    Provider,
}

impl AccountKind {
    /// The kind's name in reports and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Principal => "principal",
            AccountKind::Team => "team",
            AccountKind::Provider => "provider",
        }
    }

    /// The kind of a name.
    pub fn parse(s: &str) -> Option<AccountKind> {
        match s {
            "principal" => Some(AccountKind::Principal),
            "team" => Some(AccountKind::Team),
            "provider" => Some(AccountKind::Provider),
            _ => None,
        }
    }
}

/// Spending of one account in one month.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Spend {
    /// Answered requests.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Money spent in USD.
    pub cost_usd: f64,
}

/// Usage of one answered request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// What it cost in USD.
    pub cost_usd: f64,
}

/// Who spent: the asking principal, its teams, the provider that answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Spender {
    /// The principal's name.
    pub principal: String,
    /// The principal's teams.
    pub teams: Vec<String>,
    /// The provider's name.
    pub provider: String,
}

impl Spender {
    /// The accounts a request is booked on.
    pub fn accounts(&self) -> Vec<(AccountKind, String)> {
        let mut a = vec![(AccountKind::Principal, self.principal.clone())];
        a.extend(self.teams.iter().map(|t| (AccountKind::Team, t.clone())));
        a.push((AccountKind::Provider, self.provider.clone()));
        a
    }
}

/// One row of a spending report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    /// The kind of account.
    pub kind: AccountKind,
    /// The account's name.
    pub name: String,
    /// The month (`YYYY-MM`, UTC).
    pub month: String,
    /// What was spent.
    pub spend: Spend,
}

/// Why the books could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The journal could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The journal.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database's tables could not be read or written.
    #[error("shared ledger: {0}")]
    Db(#[from] crate::store::pg::PgError),
    /// The shared ledger is not configured (no database URL).
    #[error("shared ledger: {0}")]
    NotConfigured(String),
    /// The audit chain failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The contract of the gateway's books.
pub trait Ledger: Send + Sync {
    /// Books one answered request in `month`.
    fn add_usage(&self, month: &str, who: &Spender, usage: &Usage) -> Result<(), LedgerError>;

    /// One account's spending in `month`.
    fn spent(&self, kind: AccountKind, name: &str, month: &str) -> Result<Spend, LedgerError>;

    /// Claims the alert "`kind name` crossed `permille`‰ of its budget in
    /// `month`": true only for the first claim, on every node that shares
    /// these books, and across restarts.
    fn claim_alert(
        &self,
        kind: AccountKind,
        name: &str,
        month: &str,
        permille: u32,
    ) -> Result<bool, LedgerError>;

    /// Keeps the state of an agent run (JSON), replacing what was kept.
    fn put_run(&self, id: &str, state: &str) -> Result<(), LedgerError>;

    /// The state of an agent run, if there is one.
    fn get_run(&self, id: &str) -> Result<Option<String>, LedgerError>;

    /// Every account's spending in every month, ordered.
    fn all_spending(&self) -> Result<Vec<SpendRow>, LedgerError>;

    /// Takes one request from each `(account, per-minute limit)`, all or
    /// none; the inner `Err` names an account over its limit and the wait.
    fn take_rate(&self, limits: &[(String, u32)]) -> Result<Result<(), RateLimited>, LedgerError>;

    /// Appends one record to the audit chain (none configured: nothing).
    fn audit(&self, record: AuditRecord) -> Result<(), AuditError>;

    /// Why the audit chain refuses appends, if it does (it was cut or edited).
    fn audit_broken(&self) -> Option<String>;

    /// The newest `limit` audit records, newest first; only `principal`'s
    /// when given. Reads from the end and stops early: cheap on long logs.
    fn recent_audit(
        &self,
        principal: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, AuditError>;

    /// Checks the audit chain: every line, and the head. `None` when there
    /// is no audit chain to check.
    fn verify(&self, require_head: bool) -> Result<Option<Verification>, AuditError>;

    /// Makes pending writes durable (at shutdown).
    fn flush(&self);
}
