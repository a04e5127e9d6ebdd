//! The AI gateway's bookkeeping: rate limits, what each principal and team
//! spent per month and per provider, budgets (checked *before* a paid call,
//! with the call's worst case), and the audit log.
//!
//! Spending is journaled (JSON lines, replayed at start), so budgets hold
//! across restarts.

pub mod audit;
pub mod ratelimit;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::acl::Principal;
use crate::config::Config;
use crate::store::pg::PgStore;
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

/// Spending of one account (principal, team or provider) in one month.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Spend {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

/// Usage of one answered request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the monthly budget of {account} is spent ({spent:.2} of {budget:.2} USD)")]
pub struct BudgetExceeded {
    pub account: String,
    pub spent: f64,
    pub budget: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

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

type Key = (String, String, String); // (kind, name, month)

type UsageRow = (String, String, String, u64, u64, u64, f64);

fn spend_of(r: &UsageRow) -> Spend {
    Spend {
        requests: r.3,
        prompt_tokens: r.4,
        completion_tokens: r.5,
        cost_usd: r.6,
    }
}

pub struct Gateway {
    spend: Mutex<HashMap<Key, Spend>>,
    journal: Option<Mutex<std::fs::File>>,
    principal_budgets: HashMap<String, f64>,
    team_budgets: HashMap<String, f64>,
    principal_rpm: HashMap<String, u32>,
    team_rpm: HashMap<String, u32>,
    pub limiter: RateLimiter,
    /// On the PostgreSQL backend: the books and the rate windows every node
    /// shares (the in-memory ones are then only a fallback while the
    /// database is unreachable).
    shared: Option<Arc<PgStore>>,
}

impl Gateway {
    /// A gateway that keeps its books in memory only.
    pub fn new(cfg: &Config) -> Gateway {
        Gateway {
            spend: Mutex::new(HashMap::new()),
            journal: None,
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
            limiter: RateLimiter::default(),
            shared: None,
        }
    }

    /// Keeps usage, budgets and rate limits in the database, shared by
    /// every `hort serve` on it.
    pub fn shared(mut self, pg: Arc<PgStore>) -> Gateway {
        self.shared = Some(pg);
        self
    }

    /// A gateway whose spending is journaled at `path` (replayed now).
    pub fn open(cfg: &Config, path: &Path) -> Result<Gateway, GatewayError> {
        let mut g = Gateway::new(cfg);
        let io = |source| GatewayError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if let Ok(f) = std::fs::File::open(path) {
            let mut bad = 0;
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else {
                    bad += 1;
                    continue;
                };
                match serde_json::from_str::<JournalLine>(&line) {
                    Ok(j) => g.book(&j.month, &j.principal, &j.teams, &j.provider, &j.usage),
                    Err(_) if line.trim().is_empty() => {}
                    Err(_) => bad += 1,
                }
            }
            if bad > 0 {
                tracing::warn!(path = %path.display(), bad, "unreadable lines in the usage journal were skipped");
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        g.journal = Some(Mutex::new(file));
        Ok(g)
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, Spend>) -> R) -> R {
        match self.spend.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn spent(&self, kind: &str, name: &str) -> Spend {
        let key = (kind.to_string(), name.to_string(), month_now());
        if let Some(pg) = &self.shared {
            match pg.usage(Some(key.clone())) {
                Ok(rows) => return rows.first().map(spend_of).unwrap_or_default(),
                Err(e) => tracing::error!("shared usage unreadable, using this node's: {e}"),
            }
        }
        self.with(|m| m.get(&key).cloned().unwrap_or_default())
    }

    /// Every month's spending of every account (for /v1/usage and metrics).
    pub fn all_spending(&self) -> Vec<(String, String, String, Spend)> {
        if let Some(pg) = &self.shared {
            match pg.usage(None) {
                Ok(rows) => {
                    return rows
                        .iter()
                        .map(|r| (r.0.clone(), r.1.clone(), r.2.clone(), spend_of(r)))
                        .collect()
                }
                Err(e) => tracing::error!("shared usage unreadable, using this node's: {e}"),
            }
        }
        self.with(|m| {
            let mut v: Vec<_> = m
                .iter()
                .map(|((k, n, mo), s)| (k.clone(), n.clone(), mo.clone(), s.clone()))
                .collect();
            v.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
            v
        })
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
        if let Some(pg) = &self.shared {
            if accounts.is_empty() {
                return Ok(());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            match pg.take_rate(accounts.clone(), now) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err((account, wait))) => {
                    return Err(RateLimited {
                        account,
                        retry_after: std::time::Duration::from_secs(wait.max(1)),
                    })
                }
                Err(e) => tracing::error!("shared rate limits unreachable, using this node's: {e}"),
            }
        }
        self.limiter.take(&accounts)
    }

    /// The budgets that apply to `p`: its own and its teams'.
    fn budgets<'a>(&self, p: &'a Principal) -> Vec<(&'static str, &'a str, f64)> {
        let mut accounts = Vec::new();
        if let Some(&b) = self.principal_budgets.get(&p.name) {
            accounts.push(("principal", p.name.as_str(), b));
        }
        for t in &p.teams {
            if let Some(&b) = self.team_budgets.get(t) {
                accounts.push(("team", t.as_str(), b));
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
                    account: format!("{kind} {name}"),
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
                    account: format!("{kind} {name}"),
                    spent,
                    budget,
                });
            }
        }
        Ok(())
    }

    fn book(&self, month: &str, principal: &str, teams: &[String], provider: &str, u: &Usage) {
        self.with(|m| {
            let mut add = |kind: &str, name: &str| {
                let s = m
                    .entry((kind.to_string(), name.to_string(), month.to_string()))
                    .or_default();
                s.requests += 1;
                s.prompt_tokens += u.prompt_tokens as u64;
                s.completion_tokens += u.completion_tokens as u64;
                s.cost_usd += u.cost_usd;
            };
            add("principal", principal);
            for t in teams {
                add("team", t);
            }
            add("provider", provider);
        });
    }

    /// Books an answered request on the principal, its teams and the provider.
    pub fn record(&self, principal: &str, teams: &[String], provider: &str, u: &Usage) {
        let month = month_now();
        self.book(&month, principal, teams, provider, u);
        if let Some(pg) = &self.shared {
            let mut accounts = vec![("principal".to_string(), principal.to_string())];
            accounts.extend(teams.iter().map(|t| ("team".to_string(), t.clone())));
            accounts.push(("provider".to_string(), provider.to_string()));
            if let Err(e) = pg.add_usage(
                &month,
                accounts,
                u.prompt_tokens as u64,
                u.completion_tokens as u64,
                u.cost_usd,
            ) {
                tracing::error!("shared usage not recorded: {e}");
            }
        }
        let Some(j) = &self.journal else {
            return;
        };
        if u.cost_usd == 0.0 && u.prompt_tokens == 0 && u.completion_tokens == 0 {
            return;
        }
        let line = JournalLine {
            month,
            principal: principal.to_string(),
            teams: teams.to_vec(),
            provider: provider.to_string(),
            usage: u.clone(),
        };
        if let Ok(mut s) = serde_json::to_string(&line) {
            s.push('\n');
            let mut f = match j.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Err(e) = f.write_all(s.as_bytes()) {
                tracing::error!("usage journal: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Classification;
    use std::path::PathBuf;

    fn cfg() -> Config {
        Config::parse(
            "[[principals]]\nname='a'\nteams=['t']\nclearance='public'\nmonthly_budget_usd=1.0\n\n[[teams]]\nname='t'\nmonthly_budget_usd=1.5\n",
            Path::new("x"),
            PathBuf::from("."),
        )
        .unwrap()
    }

    #[test]
    fn budgets_of_principal_and_team_survive_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("usage.jsonl");
        let a = Principal::new("a", &["t"], Classification::Public);
        let b = Principal::new("b", &["t"], Classification::Public);
        {
            let g = Gateway::open(&cfg(), &path).unwrap();
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
        let g = Gateway::open(&cfg(), &path).unwrap();
        assert!(
            (g.spent("principal", "a").cost_usd - 0.8).abs() < 1e-9,
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
        assert_eq!(g.spent("team", "t").requests, 2);
        assert_eq!(month_now().len(), 7);
    }
}
