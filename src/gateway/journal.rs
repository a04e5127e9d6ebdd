//! The books of one node: spending in memory, journaled to a JSON-lines file
//! (replayed at start, so budgets survive restarts), rate windows in memory,
//! and the audit chain in a file ([`super::audit::AuditLog`]).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::audit::{self, AuditError, AuditLog, AuditRecord, Verification};
use super::ledger::{AccountKind, Ledger, LedgerError, Spend, SpendRow, Spender, Usage};
use super::ratelimit::{RateLimited, RateLimiter};
use crate::config::FsyncPolicy;

/// One line of the usage journal.
#[derive(Serialize, Deserialize)]
struct JournalLine {
    month: String,
    principal: String,
    teams: Vec<String>,
    provider: String,
    #[serde(flatten)]
    usage: Usage,
}

/// A line of the journal that records a budget alert as raised.
#[derive(Serialize, Deserialize)]
struct AlertLine {
    alert: AlertKey,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash)]
struct AlertKey {
    kind: AccountKind,
    name: String,
    month: String,
    permille: u32,
}

type Key = (AccountKind, String, String); // (kind, name, month)

/// Spending per account and month, in memory.
#[derive(Default)]
pub struct Books(Mutex<HashMap<Key, Spend>>);

impl Books {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, Spend>) -> R) -> R {
        f(&mut crate::sync::lock(&self.0))
    }

    /// Adds one request's usage to each account of `who`.
    pub fn book(&self, month: &str, who: &Spender, u: &Usage) {
        self.with(|m| {
            for (kind, name) in who.accounts() {
                let s = m.entry((kind, name, month.to_string())).or_default();
                s.requests += 1;
                s.prompt_tokens += u.prompt_tokens as u64;
                s.completion_tokens += u.completion_tokens as u64;
                s.cost_usd += u.cost_usd;
            }
        });
    }

    /// One account's spending in `month`.
    pub fn spent(&self, kind: AccountKind, name: &str, month: &str) -> Spend {
        self.with(|m| {
            m.get(&(kind, name.to_string(), month.to_string()))
                .cloned()
                .unwrap_or_default()
        })
    }

    /// Every account's spending, ordered.
    pub fn rows(&self) -> Vec<SpendRow> {
        self.with(|m| {
            let mut v: Vec<SpendRow> = m
                .iter()
                .map(|((kind, name, month), s)| SpendRow {
                    kind: *kind,
                    name: name.clone(),
                    month: month.clone(),
                    spend: s.clone(),
                })
                .collect();
            v.sort_by(|a, b| (a.kind, &a.name, &a.month).cmp(&(b.kind, &b.name, &b.month)));
            v
        })
    }
}

/// A run id as a file name: its letters, digits and dashes only (ids are
/// made by hort, but one read from a request must not name another path).
fn run_file(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// The file ledger.
pub struct FileLedger {
    books: Books,
    journal: Option<(PathBuf, Mutex<std::fs::File>)>,
    /// Agent runs: one JSON file each beside the journal (`runs/`), or in
    /// memory for a memory ledger.
    runs_dir: Option<PathBuf>,
    runs_mem: Mutex<HashMap<String, String>>,
    /// Budget alerts raised (replayed from the journal).
    alerts: Mutex<std::collections::HashSet<AlertKey>>,
    limiter: RateLimiter,
    audit: Option<AuditLog>,
    audit_path: Option<PathBuf>,
}

impl FileLedger {
    /// Books in memory only (no journal, no audit log).
    pub fn memory() -> FileLedger {
        FileLedger {
            books: Books::default(),
            journal: None,
            runs_dir: None,
            runs_mem: Mutex::default(),
            alerts: Mutex::default(),
            limiter: RateLimiter::default(),
            audit: None,
            audit_path: None,
        }
    }

    /// Replays the journal at `usage` (created if missing) and opens the
    /// audit log at `audit` (if any; refused if it was cut or edited).
    pub fn open(
        usage: &Path,
        audit: Option<&Path>,
        fsync: FsyncPolicy,
    ) -> Result<FileLedger, LedgerError> {
        let io = |source| LedgerError::Io {
            path: usage.to_path_buf(),
            source,
        };
        if let Some(dir) = usage.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let books = Books::default();
        let mut alerts = std::collections::HashSet::new();
        if let Ok(f) = std::fs::File::open(usage) {
            let mut bad = 0;
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else {
                    bad += 1;
                    continue;
                };
                match serde_json::from_str::<JournalLine>(&line) {
                    Ok(j) => books.book(
                        &j.month,
                        &Spender {
                            principal: j.principal,
                            teams: j.teams,
                            provider: j.provider,
                        },
                        &j.usage,
                    ),
                    Err(_) if line.trim().is_empty() => {}
                    Err(_) => match serde_json::from_str::<AlertLine>(&line) {
                        Ok(a) => {
                            alerts.insert(a.alert);
                        }
                        Err(_) => bad += 1,
                    },
                }
            }
            if bad > 0 {
                tracing::warn!(path = %usage.display(), bad, "unreadable lines in the usage journal were skipped");
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(usage)
            .map_err(io)?;
        let log = match audit {
            Some(p) => Some(AuditLog::open(p, fsync)?),
            None => None,
        };
        Ok(FileLedger {
            books,
            journal: Some((usage.to_path_buf(), Mutex::new(file))),
            runs_dir: Some(usage.with_file_name("runs")),
            runs_mem: Mutex::default(),
            alerts: Mutex::new(alerts),
            limiter: RateLimiter::default(),
            audit: log,
            audit_path: audit.map(Path::to_path_buf),
        })
    }
}

impl Ledger for FileLedger {
    fn add_usage(&self, month: &str, who: &Spender, u: &Usage) -> Result<(), LedgerError> {
        self.books.book(month, who, u);
        let Some((path, j)) = &self.journal else {
            return Ok(());
        };
        if u.cost_usd == 0.0 && u.prompt_tokens == 0 && u.completion_tokens == 0 {
            return Ok(());
        }
        let line = JournalLine {
            month: month.to_string(),
            principal: who.principal.clone(),
            teams: who.teams.clone(),
            provider: who.provider.clone(),
            usage: u.clone(),
        };
        let mut s = serde_json::to_string(&line).unwrap_or_default();
        s.push('\n');
        let mut f = crate::sync::lock(j);
        f.write_all(s.as_bytes()).map_err(|source| LedgerError::Io {
            path: path.clone(),
            source,
        })
    }

    fn spent(&self, kind: AccountKind, name: &str, month: &str) -> Result<Spend, LedgerError> {
        Ok(self.books.spent(kind, name, month))
    }

    fn claim_alert(
        &self,
        kind: AccountKind,
        name: &str,
        month: &str,
        permille: u32,
    ) -> Result<bool, LedgerError> {
        let key = AlertKey {
            kind,
            name: name.to_string(),
            month: month.to_string(),
            permille,
        };
        let mut alerts = crate::sync::lock(&self.alerts);
        if alerts.contains(&key) {
            return Ok(false);
        }
        if let Some((path, j)) = &self.journal {
            let mut s =
                serde_json::to_string(&AlertLine { alert: key.clone() }).unwrap_or_default();
            s.push('\n');
            let mut f = crate::sync::lock(j);
            // Durable before the alert goes out: a restart must not raise it again.
            f.write_all(s.as_bytes())
                .and_then(|_| f.sync_data())
                .map_err(|source| LedgerError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        alerts.insert(key);
        Ok(true)
    }

    fn put_run(&self, id: &str, state: &str) -> Result<(), LedgerError> {
        let Some(dir) = &self.runs_dir else {
            let mut m = crate::sync::lock(&self.runs_mem);
            m.insert(id.to_string(), state.to_string());
            return Ok(());
        };
        let path = dir.join(format!("{}.json", run_file(id)));
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        // Whole or not at all: write aside, make it durable, rename over.
        let tmp = dir.join(format!(".{}.tmp", run_file(id)));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(state.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    fn get_run(&self, id: &str) -> Result<Option<String>, LedgerError> {
        let Some(dir) = &self.runs_dir else {
            let m = crate::sync::lock(&self.runs_mem);
            return Ok(m.get(id).cloned());
        };
        let path = dir.join(format!("{}.json", run_file(id)));
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LedgerError::Io { path, source }),
        }
    }

    fn all_spending(&self) -> Result<Vec<SpendRow>, LedgerError> {
        Ok(self.books.rows())
    }

    fn take_rate(&self, limits: &[(String, u32)]) -> Result<Result<(), RateLimited>, LedgerError> {
        Ok(self.limiter.take(limits))
    }

    fn audit(&self, record: AuditRecord) -> Result<(), AuditError> {
        match &self.audit {
            Some(log) => log.append(record),
            None => Ok(()),
        }
    }

    fn audit_broken(&self) -> Option<String> {
        self.audit.as_ref().and_then(AuditLog::broken)
    }

    fn recent_audit(
        &self,
        principal: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        match &self.audit_path {
            Some(p) => audit::recent(p, principal, limit),
            None => Ok(Vec::new()),
        }
    }

    fn verify(&self, require_head: bool) -> Result<Option<Verification>, AuditError> {
        match &self.audit_path {
            Some(p) => Ok(Some(audit::verify(p, require_head)?)),
            None => Ok(None),
        }
    }

    fn flush(&self) {
        if let Some(a) = &self.audit {
            a.flush();
        }
        if let Some((_, j)) = &self.journal {
            if let Ok(f) = j.lock() {
                let _ = f.sync_data();
            }
        }
    }
}
