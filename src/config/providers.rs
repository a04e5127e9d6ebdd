//! `[[providers]]` and `[routing]`: the answer models, their costs and
//! failure handling, and which of them may see what.

use std::collections::HashSet;

use serde::Deserialize;

use super::{Check, ConfigError};
use crate::acl::Classification;

/// The wire protocol of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The OpenAI chat completions API (and compatible local servers).
    Openai,
    /// Anthropic's messages API.
    Anthropic,
    /// hort's built-in extractive answerer (offline, no model).
    Extractive,
}

/// Where a provider runs, which decides what it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Locality {
    /// On machines you control: may see any classification.
    Local,
    /// A third party's service: sees only context below `local_only_from`, masked.
    Cloud,
}

/// A `[[providers]]` entry: one answer model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The name `routing.chain` uses.
    pub name: String,
    /// The wire protocol.
    pub kind: ProviderKind,
    /// The API's base URL (required for local OpenAI-compatible servers).
    pub base_url: Option<String>,
    /// The model to ask for.
    pub model: Option<String>,
    /// Name of the environment variable holding the key (never the key itself).
    pub api_key_env: Option<String>,
    /// Where it runs (decides which context it may see).
    pub locality: Locality,
    /// Whole-call limit per attempt (streaming included).
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Price per 1000 prompt tokens in USD (for usage and budgets).
    #[serde(default)]
    pub usd_per_1k_input: f64,
    /// Price per 1000 completion tokens in USD.
    #[serde(default)]
    pub usd_per_1k_output: f64,
    /// Retries after a 429, a 5xx, a timeout or a connection error (not after 4xx).
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff; doubles per retry, with jitter; Retry-After wins when given.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest pause between retries (also caps Retry-After).
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Consecutive failed calls that open the circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker skips the provider before one trial call.
    #[serde(default = "default_breaker_cooldown")]
    pub breaker_cooldown_s: u64,
    /// Largest answer, in tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Share of a `weighted` group's traffic (relative to the other members).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// How a group spreads calls over its deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// In proportion to each member's `weight` (smooth weighted round robin).
    #[default]
    Weighted,
    /// The member with the fewest calls under way.
    LeastInFlight,
    /// The member with the lowest recent latency (moving average).
    Latency,
}

/// A `[[routing.groups]]` entry: deployments of one model that share its
/// traffic. `routing.chain` names the group like a provider; a member whose
/// circuit breaker is open gets nothing, a failing member hands the call to
/// the next, and after the whole group the chain goes on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The name `routing.chain` uses.
    pub name: String,
    /// The `[[providers]]` of the group.
    pub providers: Vec<String>,
    /// How calls are spread.
    #[serde(default)]
    pub strategy: Balance,
}

fn default_retries() -> u32 {
    2
}
fn default_backoff_ms() -> u64 {
    250
}
fn default_max_backoff_ms() -> u64 {
    8000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown() -> u64 {
    30
}
fn default_max_tokens() -> u32 {
    600
}

fn default_timeout() -> u64 {
    30
}

/// `[routing]`: the provider chain and which providers may see what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Providers to try in order; `extractive` is built in (local, offline).
    /// Empty: the extractive answerer only.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Context or questions at or above this level go to `locality = "local"`
    /// providers only. Default: confidential.
    #[serde(default = "default_local_only")]
    pub local_only_from: Option<Classification>,
    /// When no allowed provider answers, answer extractively instead of failing.
    #[serde(default = "super::default_true")]
    pub extractive_fallback: bool,
    /// Rules that rate the question itself (regular expressions, case-insensitive).
    #[serde(default)]
    pub query_rules: Vec<QueryRule>,
    /// Level of a question that contains personal data (e-mail, IBAN, …).
    pub pii_in_query: Option<Classification>,
    /// Context handed to a model, in (estimated) tokens.
    #[serde(default = "default_context_tokens")]
    pub max_context_tokens: u32,
    /// Groups of deployments of one model, balanced (named in `chain`).
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            chain: Vec::new(),
            local_only_from: default_local_only(),
            extractive_fallback: true,
            query_rules: Vec::new(),
            pii_in_query: None,
            max_context_tokens: default_context_tokens(),
            groups: Vec::new(),
        }
    }
}

fn default_local_only() -> Option<Classification> {
    Some(Classification::Confidential)
}
fn default_context_tokens() -> u32 {
    3000
}

/// A rule that rates questions matching a pattern at a classification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRule {
    /// A regular expression (case-insensitive) on the question.
    pub pattern: String,
    /// The classification a matching question gets.
    pub level: Classification,
}

/// Checks the providers and that the routing chain names only them.
pub(super) fn validate_providers(
    providers: &[ProviderConfig],
    routing: &RoutingConfig,
    c: &Check,
) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, p) in providers.iter().enumerate() {
        let f = |name: &str| format!("providers[{i}].{name}");
        if !names.insert(p.name.as_str()) {
            return Err(c.invalid(f("name"), format!("duplicate provider {:?}", p.name)));
        }
        if p.name == "extractive" && p.kind != ProviderKind::Extractive {
            return Err(c.invalid(
                f("name"),
                "\"extractive\" is the built-in extractive answerer",
            ));
        }
        if p.base_url.is_none() && p.kind == ProviderKind::Openai && p.locality == Locality::Local {
            return Err(c.invalid(
                f("base_url"),
                "a local OpenAI-compatible provider needs base_url",
            ));
        }
        c.range(f("timeout_s"), p.timeout_s, 1, 600)?;
        c.range(f("max_retries"), p.max_retries, 0, 10)?;
        c.range(f("backoff_ms"), p.backoff_ms, 0, 600_000)?;
        c.range(f("max_backoff_ms"), p.max_backoff_ms, 0, 3_600_000)?;
        c.range(f("breaker_failures"), p.breaker_failures, 1, 1_000_000)?;
        c.range(f("breaker_cooldown_s"), p.breaker_cooldown_s, 0, 86_400)?;
        c.range(f("max_tokens"), p.max_tokens, 1, 1_000_000)?;
        c.range(f("weight"), p.weight, 1, 1_000_000)?;
        c.amount(f("usd_per_1k_input"), p.usd_per_1k_input)?;
        c.amount(f("usd_per_1k_output"), p.usd_per_1k_output)?;
    }
    c.range(
        "routing.max_context_tokens",
        routing.max_context_tokens,
        1,
        10_000_000,
    )?;
    for (i, r) in routing.query_rules.iter().enumerate() {
        if let Err(e) = regex::Regex::new(&r.pattern) {
            return Err(c.invalid(format!("routing.query_rules[{i}].pattern"), e.to_string()));
        }
    }
    let mut groups = HashSet::new();
    for (i, g) in routing.groups.iter().enumerate() {
        let f = |name: &str| format!("routing.groups[{i}].{name}");
        if names.contains(g.name.as_str())
            || g.name == "extractive"
            || !groups.insert(g.name.as_str())
        {
            return Err(c.invalid(
                f("name"),
                format!("{:?} is already the name of a provider or group", g.name),
            ));
        }
        if g.providers.is_empty() {
            return Err(c.invalid(f("providers"), "a group needs at least one provider"));
        }
        let mut seen = HashSet::new();
        for (j, m) in g.providers.iter().enumerate() {
            if !names.contains(m.as_str()) || !seen.insert(m.as_str()) {
                return Err(c.invalid(
                    format!("routing.groups[{i}].providers[{j}]"),
                    format!("no provider named {m:?}, or named twice"),
                ));
            }
        }
    }
    for (i, name) in routing.chain.iter().enumerate() {
        if name != "extractive" && !names.contains(name.as_str()) && !groups.contains(name.as_str())
        {
            return Err(c.invalid(
                format!("routing.chain[{i}]"),
                format!("no provider or group named {name:?}"),
            ));
        }
    }
    Ok(())
}
