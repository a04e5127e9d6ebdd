//! The fallback chain: each provider in order, with a time limit per
//! attempt, retries with exponential backoff and jitter on 429/5xx/timeouts
//! (Retry-After honoured), no retry on other 4xx, and a circuit breaker per
//! provider that skips a failing provider for a while. Which providers may be
//! tried at all is decided before (sensitivity routing).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::{self, UnboundedSender};

use super::provider::{ChatRequest, Completion, Provider, ProviderError};
use crate::config::ProviderConfig;

/// Per-provider settings of the chain.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Time allowed per attempt.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry (doubled per retry, with jitter).
    pub backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// Failures in a row that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips the provider.
    pub breaker_cooldown: Duration,
    /// The longest answer to ask for.
    pub max_tokens: u32,
}

impl Policy {
    /// The policy of a `[[providers]]` entry.
    pub fn from_config(c: &ProviderConfig) -> Policy {
        Policy {
            timeout: Duration::from_secs(c.timeout_s.max(1)),
            max_retries: c.max_retries.min(10),
            backoff: Duration::from_millis(c.backoff_ms),
            max_backoff: Duration::from_millis(c.max_backoff_ms.max(c.backoff_ms)),
            breaker_failures: c.breaker_failures.max(1),
            breaker_cooldown: Duration::from_secs(c.breaker_cooldown_s),
            max_tokens: c.max_tokens,
        }
    }

    /// The extractive answerer: instant, never retried.
    pub fn local_default() -> Policy {
        Policy {
            timeout: Duration::from_secs(30),
            max_retries: 0,
            backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            breaker_failures: u32::MAX,
            breaker_cooldown: Duration::ZERO,
            max_tokens: 600,
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// A provider with its policy and breaker (shared across requests).
pub struct Slot {
    /// The provider.
    pub provider: Arc<dyn Provider>,
    /// How it is called.
    pub policy: Policy,
    breaker: Mutex<Breaker>,
}

impl Slot {
    /// A slot with a closed breaker.
    pub fn new(provider: Arc<dyn Provider>, policy: Policy) -> Slot {
        Slot {
            provider,
            policy,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    fn breaker<R>(&self, f: impl FnOnce(&mut Breaker) -> R) -> R {
        match self.breaker.lock() {
            Ok(mut b) => f(&mut b),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Whether the breaker lets a call through now (a half-open trial counts).
    pub fn available(&self) -> bool {
        self.breaker(|b| b.open_until.is_none_or(|t| Instant::now() >= t))
    }

    fn succeeded(&self) {
        self.breaker(|b| {
            b.failures = 0;
            b.open_until = None;
        });
    }

    fn failed(&self) {
        let (limit, cooldown) = (self.policy.breaker_failures, self.policy.breaker_cooldown);
        self.breaker(|b| {
            b.failures = b.failures.saturating_add(1);
            if b.failures >= limit {
                b.open_until = Some(Instant::now() + cooldown);
            }
        });
    }
}

/// One try of one provider, for the response's `route.attempts`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Attempt {
    /// The provider tried.
    pub provider: String,
    /// ok | error | skipped
    pub outcome: String,
    /// What the caller may know: the kind of failure ("HTTP 503",
    /// "connection failed"), never a provider's message or address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The whole error, for the server log and the audit log only.
    #[serde(skip)]
    pub internal: Option<String>,
    /// How long the attempt took.
    pub ms: u64,
}

impl Attempt {
    /// An attempt that was not made, with a reason the caller may read.
    pub fn skipped(provider: &str, why: String) -> Attempt {
        Attempt {
            provider: provider.to_string(),
            outcome: "skipped".into(),
            detail: Some(why),
            internal: None,
            ms: 0,
        }
    }
}

/// What a stream consumer receives from the chain.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// More answer text.
    Text(String),
    /// The text so far is void: a provider failed mid-answer and another one starts.
    Reset,
}

fn jitter(d: Duration) -> Duration {
    // 0.5x .. 1.5x, from the clock's low bits (no RNG needed for spreading retries).
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d.mul_f64(0.5 + (n % 1000) as f64 / 1000.0)
}

/// Calls one slot with its retries. `build` makes the request for this
/// provider (masking depends on the provider's locality).
pub async fn call_slot(
    slot: &Slot,
    req: &ChatRequest,
    out: Option<&UnboundedSender<Piece>>,
    attempts: &mut Vec<Attempt>,
) -> Result<Completion, ProviderError> {
    let name = slot.provider.name().to_string();
    let mut last: Option<ProviderError> = None;
    for attempt in 0..=slot.policy.max_retries {
        if !slot.available() {
            attempts.push(Attempt::skipped(&name, "circuit breaker open".into()));
            return Err(last.unwrap_or(ProviderError::Config("circuit breaker open".into())));
        }
        let started = Instant::now();
        // Each attempt streams into its own channel; the relay marks a reset
        // if an attempt fails after it produced text.
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let relay_out = out.cloned();
        let relay = tokio::spawn(async move {
            let mut sent = false;
            while let Some(t) = rx.recv().await {
                if let Some(o) = &relay_out {
                    sent = true;
                    let _ = o.send(Piece::Text(t));
                }
            }
            sent
        });
        let call = slot.provider.complete(req, out.map(|_| &tx));
        let result = match tokio::time::timeout(slot.policy.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout(slot.policy.timeout)),
        };
        drop(tx);
        let streamed = relay.await.unwrap_or(false);
        let ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(c) => {
                slot.succeeded();
                attempts.push(Attempt {
                    provider: name.clone(),
                    outcome: "ok".into(),
                    detail: None,
                    internal: None,
                    ms,
                });
                return Ok(c);
            }
            Err(e) => {
                slot.failed();
                if streamed {
                    if let Some(o) = out {
                        let _ = o.send(Piece::Reset);
                    }
                }
                tracing::warn!(provider = %name, error = %e, "provider attempt failed");
                attempts.push(Attempt {
                    provider: name.clone(),
                    outcome: "error".into(),
                    detail: Some(e.public()),
                    internal: Some(e.to_string()),
                    ms,
                });
                let retry = e.retryable() && attempt < slot.policy.max_retries;
                let wait = e.retry_after();
                last = Some(e);
                if !retry {
                    break;
                }
                let backoff = match wait {
                    Some(w) => w.min(slot.policy.max_backoff),
                    None => jitter(slot.policy.backoff * 2u32.saturating_pow(attempt))
                        .min(slot.policy.max_backoff),
                };
                tokio::time::sleep(backoff).await;
            }
        }
    }
    Err(last.unwrap_or(ProviderError::Config("no attempt made".into())))
}
