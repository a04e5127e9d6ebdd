//! Token buckets per principal and per team: `requests_per_minute` tokens,
//! refilled continuously; a request takes one token from every bucket it
//! counts against, or from none (then it is refused with the wait until the
//! emptiest bucket has a token again).
//!
//! Total for every `u32`: a limit of 0 (which configuration validation
//! refuses anyway) refuses every request with a one-minute wait instead of
//! dividing by zero.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    fn new(rpm: u32) -> Bucket {
        Bucket {
            tokens: rpm as f64,
            capacity: rpm as f64,
            per_sec: rpm as f64 / 60.0,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.last = now;
    }

    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            return Duration::ZERO;
        }
        // per_sec is 0 for a limit of 0: "never", said as a minute.
        Duration::try_from_secs_f64((1.0 - self.tokens) / self.per_sec)
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60))
    }
}

/// A request refused by a per-minute limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rate limit of {account} reached; retry in {} s", retry_after.as_secs().max(1))]
pub struct RateLimited {
    /// The account whose limit was reached.
    pub account: String,
    /// When a request would be admitted again.
    pub retry_after: Duration,
}

/// Per-minute limits on this node (token buckets per account).
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes a token for each `(account, requests per minute)`, all or none.
    pub fn take(&self, accounts: &[(String, u32)]) -> Result<(), RateLimited> {
        if accounts.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = crate::sync::lock(&self.buckets);
        let mut worst: Option<(String, Duration)> = None;
        for (name, rpm) in accounts {
            let b = map.entry(name.clone()).or_insert_with(|| Bucket::new(*rpm));
            if (b.capacity - *rpm as f64).abs() > f64::EPSILON {
                // The configuration changed: start the account afresh.
                *b = Bucket::new(*rpm);
            }
            b.refill(now);
            let w = b.wait();
            if w > Duration::ZERO && worst.as_ref().is_none_or(|x| w > x.1) {
                worst = Some((name.clone(), w));
            }
        }
        if let Some((account, retry_after)) = worst {
            return Err(RateLimited {
                account,
                retry_after,
            });
        }
        for (name, _) in accounts {
            if let Some(b) = map.get_mut(name) {
                b.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any limit, any number of requests: an answer, never a panic; a
        /// refusal always names a finite wait of at most a minute.
        #[test]
        fn any_limit_answers_without_panicking(rpm in any::<u32>(), n in 1usize..50) {
            let r = RateLimiter::default();
            let acc = vec![("principal p".to_string(), rpm)];
            for i in 0..n {
                match r.take(&acc) {
                    Ok(()) => prop_assert!(rpm > 0 && (i as u64) < rpm as u64),
                    Err(e) => prop_assert!(e.retry_after <= Duration::from_secs(60)),
                }
            }
            if rpm == 0 {
                prop_assert!(r.take(&acc).is_err());
            }
        }
    }

    #[test]
    fn buckets_empty_and_refuse_with_a_wait() {
        let r = RateLimiter::default();
        let acc = vec![
            ("principal alice".to_string(), 3),
            ("team finance".to_string(), 100),
        ];
        for _ in 0..3 {
            r.take(&acc).unwrap();
        }
        let e = r.take(&acc).unwrap_err();
        assert_eq!(e.account, "principal alice");
        assert!(
            e.retry_after > Duration::from_secs(15) && e.retry_after <= Duration::from_secs(20)
        );
        // A refused request took nothing from the team bucket.
        let team_only = vec![("team finance".to_string(), 100)];
        for _ in 0..97 {
            r.take(&team_only).unwrap();
        }
        assert!(r.take(&team_only).is_err());
    }
}
