//! The fallback chain: each provider in order, with a time limit per
//! attempt, retries with exponential backoff and jitter on 429/5xx/timeouts
//! (Retry-After honoured), no retry on other 4xx, and a circuit breaker per
//! provider that skips a failing provider for a while. Which providers may be
//! tried at all is decided before (sensitivity routing).
//!
//! A link of the chain is a provider or a [`Group`] of deployments of one
//! model that share its traffic (weighted, least in flight, or lowest
//! latency); a member whose breaker is open gets no calls, a failing member
//! hands the call to the next member, and after the group the chain goes on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::{self, UnboundedSender};

use super::provider::{ChatRequest, Completion, Provider, ProviderError};
use crate::config::{Balance, ProviderConfig};

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
    /// Share of a weighted group's calls.
    pub weight: u32,
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
            weight: c.weight.max(1),
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
            weight: 1,
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
    /// Calls under way (least-in-flight balancing).
    in_flight: AtomicUsize,
    /// Moving average of successful calls' time in µs (0: none yet).
    latency_us: AtomicU64,
}

/// Counts a call as under way for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicUsize) -> InFlight<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slot {
    /// A slot with a closed breaker.
    pub fn new(provider: Arc<dyn Provider>, policy: Policy) -> Slot {
        Slot {
            provider,
            policy,
            breaker: Mutex::new(Breaker::default()),
            in_flight: AtomicUsize::new(0),
            latency_us: AtomicU64::new(0),
        }
    }

    /// Calls under way now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The moving average of successful calls' time (`None` before the first).
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    fn observe_latency(&self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        // Weight 1/4 for the newest call: quick to follow a slowing
        // deployment, not thrown by one slow answer.
        let _ = self
            .latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 { us } else { (old * 3 + us) / 4 })
            });
    }

    fn breaker<R>(&self, f: impl FnOnce(&mut Breaker) -> R) -> R {
        f(&mut crate::sync::lock(&self.breaker))
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
        let busy = InFlight::new(&slot.in_flight);
        let result = match tokio::time::timeout(slot.policy.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout(slot.policy.timeout)),
        };
        drop(busy);
        drop(tx);
        let streamed = relay.await.unwrap_or(false);
        let ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(c) => {
                slot.succeeded();
                slot.observe_latency(started.elapsed());
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

/// Deployments of one model sharing its traffic.
pub struct Group {
    /// The name `routing.chain` uses.
    pub name: String,
    /// How calls are spread.
    pub strategy: Balance,
    /// The deployments.
    pub members: Vec<Arc<Slot>>,
    /// Smooth weighted round robin's running weights (one per member).
    current: Mutex<Vec<i64>>,
}

impl Group {
    /// A group over `members`.
    pub fn new(name: &str, strategy: Balance, members: Vec<Arc<Slot>>) -> Group {
        let n = members.len();
        Group {
            name: name.to_string(),
            strategy,
            members,
            current: Mutex::new(vec![0; n]),
        }
    }

    /// The members in the order this call tries them: the strategy's pick
    /// first, then the others by the same measure; members whose breaker is
    /// open are left out.
    pub fn order(&self) -> Vec<Arc<Slot>> {
        let open: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].available())
            .collect();
        let mut order: Vec<usize> = match self.strategy {
            Balance::Weighted => self.weighted(&open),
            Balance::LeastInFlight => {
                let mut o = open.clone();
                // Ties go to the member with fewer calls in its rotation slot
                // (stable: configuration order).
                o.sort_by_key(|&i| self.members[i].in_flight());
                o
            }
            Balance::Latency => {
                let mut o = open.clone();
                // Unmeasured members first, so every member gets measured.
                o.sort_by_key(|&i| self.members[i].latency().unwrap_or(Duration::ZERO));
                o
            }
        };
        order.dedup();
        order.into_iter().map(|i| self.members[i].clone()).collect()
    }

    /// Smooth weighted round robin (as nginx): each call, every available
    /// member gains its weight; the richest is picked and pays the total.
    /// Over any window the picks follow the weights, without bursts.
    fn weighted(&self, open: &[usize]) -> Vec<usize> {
        if open.is_empty() {
            return Vec::new();
        }
        let mut cur = crate::sync::lock(&self.current);
        let total: i64 = open
            .iter()
            .map(|&i| self.members[i].policy.weight as i64)
            .sum();
        for &i in open {
            cur[i] += self.members[i].policy.weight as i64;
        }
        let mut rest: Vec<usize> = open.to_vec();
        rest.sort_by_key(|&i| std::cmp::Reverse(cur[i]));
        cur[rest[0]] -= total;
        rest
    }
}

/// One link of the chain.
pub enum Link {
    /// A provider.
    One(Arc<Slot>),
    /// Deployments of one model, balanced.
    Group(Group),
}

impl Link {
    /// The providers to try for this link, in order.
    pub fn order(&self) -> Vec<Arc<Slot>> {
        match self {
            Link::One(s) => vec![s.clone()],
            Link::Group(g) => g.order(),
        }
    }

    /// What the answer cache's key must know of the link: names, kinds of
    /// balancing, and each member's model and address.
    pub fn fingerprint(&self) -> String {
        let one = |s: &Slot| {
            format!(
                "{}|{}|{:?}|{}",
                s.provider.name(),
                s.provider.model(),
                s.provider.locality(),
                s.policy.max_tokens
            )
        };
        match self {
            Link::One(s) => one(s),
            Link::Group(g) => format!(
                "group {} {:?} [{}]",
                g.name,
                g.strategy,
                g.members
                    .iter()
                    .map(|m| one(m))
                    .collect::<Vec<_>>()
                    .join(";")
            ),
        }
    }
}

#[cfg(test)]
mod balance_tests {
    use super::*;
    use crate::generate::provider::Completion;

    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Provider for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn model(&self) -> &str {
            "m"
        }
        fn locality(&self) -> crate::config::Locality {
            crate::config::Locality::Local
        }
        async fn complete(
            &self,
            _req: &ChatRequest,
            _out: Option<&UnboundedSender<String>>,
        ) -> Result<Completion, ProviderError> {
            Err(ProviderError::Config("unused".into()))
        }
    }

    fn slot(name: &'static str, weight: u32) -> Arc<Slot> {
        let mut p = Policy::local_default();
        p.weight = weight;
        p.breaker_failures = 1;
        p.breaker_cooldown = Duration::from_secs(60);
        Arc::new(Slot::new(Arc::new(Named(name)), p))
    }

    fn firsts(g: &Group, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| g.order()[0].provider.name().to_string())
            .collect()
    }

    #[test]
    fn weighted_picks_follow_the_weights_smoothly() {
        let g = Group::new("g", Balance::Weighted, vec![slot("a", 3), slot("b", 1)]);
        let picks = firsts(&g, 8);
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 6);
        // Never more than three a's in a row for weights 3:1.
        assert!(!picks.windows(4).any(|w| w.iter().all(|p| p == "a")));
        // Every member is in each order (the fallback within the group).
        assert_eq!(g.order().len(), 2);
    }

    #[test]
    fn open_breakers_get_no_traffic_and_counts_steer_the_others() {
        let a = slot("a", 1);
        let b = slot("b", 1);
        let g = Group::new("g", Balance::LeastInFlight, vec![a.clone(), b.clone()]);
        let _busy = InFlight::new(&a.in_flight);
        assert_eq!(firsts(&g, 3), vec!["b", "b", "b"]);
        b.failed(); // one failure opens b's breaker (breaker_failures = 1)
        assert_eq!(
            g.order()
                .iter()
                .map(|s| s.provider.name())
                .collect::<Vec<_>>(),
            vec!["a"]
        );
        let l = Group::new("l", Balance::Latency, vec![slot("x", 1), slot("y", 1)]);
        l.members[0].observe_latency(Duration::from_millis(900));
        assert_eq!(firsts(&l, 1), vec!["y"], "unmeasured first");
        l.members[1].observe_latency(Duration::from_millis(100));
        assert_eq!(firsts(&l, 2), vec!["y", "y"]);
    }
}
