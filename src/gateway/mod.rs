//! The AI gateway's bookkeeping: what each principal and team spent, per
//! month and per provider, and whether a call still fits their budget.
//! Budgets are checked *before* a paid call, with the call's worst case.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::Config;

/// `YYYY-MM` of now (UTC); budgets are monthly.
pub fn month_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}")
}

/// Spending of one account (principal, team or provider) in one month.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spend {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

#[derive(Default)]
struct Ledger {
    /// (kind, name, month) -> spend, kind = principal | team | provider
    spend: HashMap<(String, String, String), Spend>,
}

/// Usage of one answered request.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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

pub struct Gateway {
    ledger: Mutex<Ledger>,
    principal_budgets: HashMap<String, f64>,
}

impl Gateway {
    pub fn new(cfg: &Config) -> Gateway {
        Gateway {
            ledger: Mutex::new(Ledger::default()),
            principal_budgets: cfg
                .principals
                .iter()
                .filter_map(|p| p.monthly_budget_usd.map(|b| (p.name.clone(), b)))
                .collect(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        match self.ledger.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn spent(&self, kind: &str, name: &str) -> Spend {
        let key = (kind.to_string(), name.to_string(), month_now());
        self.with(|l| l.spend.get(&key).cloned().unwrap_or_default())
    }

    /// Whether a call that may cost up to `worst_case_usd` fits `principal`'s budget.
    pub fn check_budget(&self, principal: &str, worst_case_usd: f64) -> Result<(), BudgetExceeded> {
        let Some(&budget) = self.principal_budgets.get(principal) else {
            return Ok(());
        };
        let spent = self.spent("principal", principal).cost_usd;
        if worst_case_usd > 0.0 && spent + worst_case_usd > budget {
            return Err(BudgetExceeded {
                account: format!("principal {principal}"),
                spent,
                budget,
            });
        }
        if spent >= budget && worst_case_usd > 0.0 {
            return Err(BudgetExceeded {
                account: format!("principal {principal}"),
                spent,
                budget,
            });
        }
        Ok(())
    }

    /// Books an answered request on the principal, its teams and the provider.
    pub fn record(&self, principal: &str, teams: &[String], provider: &str, u: &Usage) {
        let month = month_now();
        self.with(|l| {
            let mut book = |kind: &str, name: &str| {
                let s = l
                    .spend
                    .entry((kind.to_string(), name.to_string(), month.clone()))
                    .or_default();
                s.requests += 1;
                s.prompt_tokens += u.prompt_tokens as u64;
                s.completion_tokens += u.completion_tokens as u64;
                s.cost_usd += u.cost_usd;
            };
            book("principal", principal);
            for t in teams {
                book("team", t);
            }
            book("provider", provider);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn budget_is_checked_with_the_worst_case() {
        let cfg = Config::parse(
            "[[principals]]\nname='a'\nteams=['t']\nclearance='public'\nmonthly_budget_usd=1.0\n",
            Path::new("x"),
            PathBuf::from("."),
        )
        .unwrap();
        let g = Gateway::new(&cfg);
        assert!(g.check_budget("a", 0.5).is_ok());
        g.record(
            "a",
            &["t".into()],
            "cloud",
            &Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cost_usd: 0.8,
            },
        );
        assert!(g.check_budget("a", 0.5).is_err());
        assert!(
            g.check_budget("a", 0.0).is_ok(),
            "free providers are always fine"
        );
        assert!(
            g.check_budget("nobody", 100.0).is_ok(),
            "no budget configured"
        );
        assert_eq!(g.spent("team", "t").requests, 1);
        assert!(month_now().len() == 7);
    }
}
