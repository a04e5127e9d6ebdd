//! What each principal's agents have used: tool calls (resource reads
//! included) and tokens, counted per principal across all its sessions, in
//! windows of `[mcp] max_session_s`. Counting per session would let an agent
//! reset its limits by opening a new session.
//!
//! Per process: the HTTP sessions of one `hort serve` share it; a `hort mcp`
//! process (one stdio session) has its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::McpConfig;

/// What each principal's agents used: tool calls, tokens, seconds (per principal, across sessions and transports).
#[derive(Default)]
pub struct AgentLedger {
    by_principal: Mutex<HashMap<String, Window>>,
}

struct Window {
    started: Instant,
    calls: u32,
    tokens: u64,
}

impl AgentLedger {
    fn with<R>(&self, principal: &str, window: Duration, f: impl FnOnce(&mut Window) -> R) -> R {
        let mut map = crate::sync::lock(&self.by_principal);
        let w = map.entry(principal.to_string()).or_insert_with(|| Window {
            started: Instant::now(),
            calls: 0,
            tokens: 0,
        });
        if w.started.elapsed() >= window {
            *w = Window {
                started: Instant::now(),
                calls: 0,
                tokens: 0,
            };
        }
        f(w)
    }

    /// Counts one call of `principal`, or refuses it (counting nothing)
    /// when its calls or tokens of the current window are spent.
    pub fn take_call(&self, m: &McpConfig, principal: &str) -> Result<(), String> {
        let window = Duration::from_secs(m.max_session_s);
        self.with(principal, window, |w| {
            if w.calls >= m.max_tool_calls {
                return Err(format!(
                    "limit reached: {} tool calls per {} s for {principal} (all its sessions count)",
                    m.max_tool_calls, m.max_session_s
                ));
            }
            if w.tokens >= m.max_tokens {
                return Err(format!(
                    "limit reached: {} tokens per {} s for {principal} (all its sessions count)",
                    m.max_tokens, m.max_session_s
                ));
            }
            w.calls += 1;
            Ok(())
        })
    }

    /// Books the tokens a call used.
    pub fn add_tokens(&self, m: &McpConfig, principal: &str, tokens: u64) {
        let window = Duration::from_secs(m.max_session_s);
        self.with(principal, window, |w| {
            w.tokens = w.tokens.saturating_add(tokens)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_tokens_are_counted_per_principal() {
        let m = McpConfig {
            max_tool_calls: 2,
            max_tokens: 100,
            ..McpConfig::default()
        };
        let l = AgentLedger::default();
        l.take_call(&m, "a").unwrap();
        l.take_call(&m, "a").unwrap();
        assert!(l.take_call(&m, "a").unwrap_err().contains("2 tool calls"));
        l.take_call(&m, "b").unwrap();
        l.add_tokens(&m, "b", 100);
        assert!(l.take_call(&m, "b").unwrap_err().contains("100 tokens"));
    }
}
