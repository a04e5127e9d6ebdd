//! `[alerts]`: budget alerts, sent to a webhook and written to the audit log.

use serde::Deserialize;

use super::{Check, ConfigError};

/// `[alerts]`: when spending crosses a share of a budget, say so once per month.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where alerts are POSTed (JSON with a Slack-compatible `text` field);
    /// none: alerts go to the audit log and the server log only.
    pub webhook_url: Option<String>,
    /// Shares of a monthly budget that raise an alert (each once per month
    /// and account).
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<f64>,
    /// Deliveries tried per alert.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the second try, doubled per try (at most a minute).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Time allowed per delivery, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_url: None,
            thresholds: default_thresholds(),
            attempts: default_attempts(),
            backoff_ms: default_backoff_ms(),
            timeout_s: default_timeout(),
        }
    }
}

fn default_thresholds() -> Vec<f64> {
    vec![0.5, 0.8, 1.0]
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff_ms() -> u64 {
    1000
}
fn default_timeout() -> u64 {
    10
}

impl AlertsConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        for (i, t) in self.thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0 && *t <= 10.0) {
                return Err(c.invalid(
                    format!("alerts.thresholds[{i}]"),
                    "must be a share of the budget above 0 (e.g. 0.8 for 80 %)",
                ));
            }
        }
        if let Some(u) = &self.webhook_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(c.invalid("alerts.webhook_url", "must be an http(s) URL"));
            }
        }
        c.range("alerts.attempts", self.attempts, 1, 20)?;
        c.range("alerts.backoff_ms", self.backoff_ms, 1, 60_000)?;
        c.range("alerts.timeout_s", self.timeout_s, 1, 300)
    }
}
