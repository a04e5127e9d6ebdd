//! Budget alerts: when an account's spending this month crosses a share of
//! its budget (`[alerts] thresholds`, e.g. 50/80/100 %), say so once —
//! once per account, month and threshold across restarts and across nodes
//! (the claim is a row of the shared books) — in the audit log and to a
//! webhook. Deliveries run on a thread of their own with retries and
//! backoff, so a slow or dead receiver never holds up a request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::config::AlertsConfig;

/// One alert, as the webhook receives it (`text` is what Slack shows).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Alert {
    /// A sentence for people (Slack-compatible).
    pub text: String,
    /// `principal` or `team`.
    pub kind: &'static str,
    /// The account's name.
    pub account: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The share of the budget crossed (0.8 = 80 %).
    pub threshold: f64,
    /// Spent this month in USD.
    pub spent_usd: f64,
    /// The monthly budget in USD.
    pub budget_usd: f64,
}

/// Counters of deliveries (exported as `hort_budget_alerts_*`).
#[derive(Default)]
pub struct AlertStats {
    /// Alerts raised.
    pub raised: AtomicU64,
    /// Deliveries the webhook accepted.
    pub delivered: AtomicU64,
    /// Alerts given up on after every try.
    pub failed: AtomicU64,
    /// Alerts waiting for delivery.
    pub pending: AtomicUsize,
}

/// The alerting of one node.
pub struct Alerter {
    thresholds: Vec<f64>,
    tx: Option<crossbeam_channel::Sender<serde_json::Value>>,
    /// Claims this node already knows about (spares the books a write per request).
    seen: Mutex<HashSet<(String, String, u32)>>,
    /// Counters.
    pub stats: Arc<AlertStats>,
}

impl Alerter {
    /// The alerter of `[alerts]`; with a webhook, its delivery thread.
    pub fn new(cfg: &AlertsConfig) -> Alerter {
        let mut thresholds = cfg.thresholds.clone();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        let stats = Arc::new(AlertStats::default());
        let tx = cfg.webhook_url.as_ref().and_then(|url| {
            let (tx, rx) = crossbeam_channel::unbounded::<serde_json::Value>();
            let (url, cfg, st) = (url.clone(), cfg.clone(), stats.clone());
            match std::thread::Builder::new()
                .name("hort-alerts".into())
                .spawn(move || deliver_all(rx, &url, &cfg, &st))
            {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!("budget alerts: cannot start the delivery thread: {e}");
                    None
                }
            }
        });
        Alerter {
            thresholds,
            tx,
            seen: Mutex::new(HashSet::new()),
            stats,
        }
    }

    /// The thresholds `spent` of `budget` has crossed, as per mille, that
    /// this node has not seen claimed yet for `account` in `month`.
    pub fn crossed(&self, account: &str, month: &str, spent: f64, budget: f64) -> Vec<(f64, u32)> {
        if budget <= 0.0 {
            return Vec::new();
        }
        let seen = crate::sync::lock(&self.seen);
        self.thresholds
            .iter()
            .filter(|t| spent >= *t * budget)
            .map(|t| (*t, (t * 1000.0).round() as u32))
            .filter(|(_, pm)| !seen.contains(&(account.to_string(), month.to_string(), *pm)))
            .collect()
    }

    /// Remembers a claim (whether this node or another made it).
    pub fn seen(&self, account: &str, month: &str, permille: u32) {
        let mut seen = crate::sync::lock(&self.seen);
        seen.insert((account.to_string(), month.to_string(), permille));
    }

    /// Queues a raised alert for the webhook (never waits).
    pub fn send(&self, alert: Alert) {
        tracing::warn!(account = %alert.account, threshold = alert.threshold, "{}", alert.text);
        self.queue(serde_json::to_value(&alert).unwrap_or_default());
    }

    /// Queues an alert of another `kind` (e.g. a stopped agent run).
    pub fn send_text(&self, kind: &str, text: &str) {
        tracing::warn!(kind, "{text}");
        self.queue(serde_json::json!({"text": text, "kind": kind}));
    }

    fn queue(&self, alert: serde_json::Value) {
        self.stats.raised.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.tx {
            self.stats.pending.fetch_add(1, Ordering::Relaxed);
            if tx.send(alert).is_err() {
                self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `limit` for queued alerts to be delivered (at shutdown).
    pub fn drain(&self, limit: Duration) {
        let until = std::time::Instant::now() + limit;
        while self.stats.pending.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn deliver_all(
    rx: crossbeam_channel::Receiver<serde_json::Value>,
    url: &str,
    cfg: &AlertsConfig,
    stats: &AlertStats,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("budget alerts: no runtime for deliveries: {e}");
            return;
        }
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_s))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("budget alerts: no HTTP client: {e}");
            return;
        }
    };
    for alert in rx {
        let ok = rt.block_on(deliver(&client, url, cfg, &alert));
        stats.pending.fetch_sub(1, Ordering::Relaxed);
        if ok {
            stats.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "alert not delivered after {} tries (it is in the audit log): {}",
                cfg.attempts,
                alert["text"]
            );
        }
    }
}

/// One alert, tried up to `attempts` times with doubling waits.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    cfg: &AlertsConfig,
    alert: &serde_json::Value,
) -> bool {
    let mut wait = Duration::from_millis(cfg.backoff_ms);
    for attempt in 1..=cfg.attempts {
        match client.post(url).json(alert).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => tracing::warn!(
                "budget alert: webhook answered {} (try {attempt})",
                r.status()
            ),
            Err(e) => tracing::warn!("budget alert: webhook unreachable (try {attempt}): {e}"),
        }
        if attempt < cfg.attempts {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }
    false
}
