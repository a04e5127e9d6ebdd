//! `[[workflows]]`: agents hort runs itself — each with a role prompt, a
//! provider with native tool calling, an allow-list of hort's tools, and
//! the agents it may hand work to — with the limits of a whole run.

use std::collections::HashSet;

use serde::Deserialize;

use super::{Check, ConfigError, Tool};

/// One agent of a workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The name hand-offs use.
    pub name: String,
    /// What the agent is for (its system prompt).
    pub prompt: String,
    /// A `[[providers]]` entry of kind openai or anthropic (tool calling).
    pub provider: String,
    /// hort's tools it may use (further narrowed by the starting principal's
    /// grants and, for a delegated agent, by its delegator's tools).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Agents it may hand a task to.
    #[serde(default)]
    pub handoffs: Vec<String>,
    /// Model turns of this agent per hand-off.
    #[serde(default = "default_iterations")]
    pub max_iterations: u32,
}

/// A `[[workflows.http_tools]]` entry: an HTTP endpoint agents may call,
/// with its arguments' JSON Schema (checked before every call) and a URL
/// under one of the workflow's `allowed_base_urls`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToolConfig {
    /// The tool's name (not one of hort's own).
    pub name: String,
    /// What it does (the model reads this).
    pub description: String,
    /// Where the arguments are POSTed as JSON.
    pub url: String,
    /// JSON Schema of the arguments: an object with typed properties
    /// (string, integer, number, boolean, array), `required`, `enum`;
    /// unknown properties are refused.
    pub parameters: toml::Value,
    /// Name of the environment variable holding a bearer token (never the token).
    pub token_env: Option<String>,
    /// Time allowed per call.
    #[serde(default = "default_http_timeout")]
    pub timeout_s: u64,
}

fn default_http_timeout() -> u64 {
    10
}

/// A `[[workflows]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// The name `hort run` uses.
    pub name: String,
    /// The agent a run starts with.
    pub entry: String,
    /// Its agents.
    pub agents: Vec<AgentConfig>,
    /// Model turns of the whole run, every agent together.
    #[serde(default = "default_steps")]
    pub max_steps: u32,
    /// Tool calls (hand-offs included) of the whole run.
    #[serde(default = "default_actions")]
    pub max_actions: u32,
    /// Model tokens of the whole run.
    #[serde(default = "default_tokens")]
    pub max_tokens: u64,
    /// Wall-clock seconds of the whole run.
    #[serde(default = "default_seconds")]
    pub max_seconds: u64,
    /// Spending of the whole run in USD (the principal's budgets apply too).
    #[serde(default = "default_usd")]
    pub max_usd: f64,
    /// How deep hand-offs may nest (the entry agent is depth 0).
    #[serde(default = "default_depth")]
    pub max_depth: u32,
    /// HTTP tools its agents may be given (by name in `tools`).
    #[serde(default)]
    pub http_tools: Vec<HttpToolConfig>,
    /// The only URL prefixes an HTTP tool may call.
    #[serde(default)]
    pub allowed_base_urls: Vec<String>,
}

fn default_iterations() -> u32 {
    8
}
fn default_steps() -> u32 {
    24
}
fn default_actions() -> u32 {
    40
}
fn default_tokens() -> u64 {
    200_000
}
fn default_seconds() -> u64 {
    600
}
fn default_usd() -> f64 {
    1.0
}
fn default_depth() -> u32 {
    2
}

impl WorkflowConfig {
    /// The HTTP tool called `name`.
    pub fn http_tool(&self, name: &str) -> Option<&HttpToolConfig> {
        self.http_tools.iter().find(|t| t.name == name)
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name == name)
    }
}

pub(super) fn validate_workflows(
    workflows: &[WorkflowConfig],
    providers: &[super::ProviderConfig],
    c: &Check,
) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, w) in workflows.iter().enumerate() {
        let f = |n: &str| format!("workflows[{i}].{n}");
        if w.name.trim().is_empty() || !names.insert(w.name.as_str()) {
            return Err(c.invalid(f("name"), "must be set and unique"));
        }
        let agents: HashSet<&str> = w.agents.iter().map(|a| a.name.as_str()).collect();
        if agents.len() != w.agents.len() || w.agents.is_empty() {
            return Err(c.invalid(f("agents"), "agents need unique names (at least one)"));
        }
        if !agents.contains(w.entry.as_str()) {
            return Err(c.invalid(f("entry"), format!("no agent named {:?}", w.entry)));
        }
        c.range(f("max_steps"), w.max_steps, 1, 10_000)?;
        c.range(f("max_actions"), w.max_actions, 1, 10_000)?;
        c.range(f("max_tokens"), w.max_tokens, 1, 100_000_000)?;
        c.range(f("max_seconds"), w.max_seconds, 1, 86_400)?;
        c.range(f("max_depth"), w.max_depth, 0, 10)?;
        c.amount(f("max_usd"), w.max_usd)?;
        for (j, u) in w.allowed_base_urls.iter().enumerate() {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.splitn(4, '/').nth(3).is_some();
            if !ok {
                return Err(c.invalid(
                    format!("workflows[{i}].allowed_base_urls[{j}]"),
                    "must be an http(s) URL ending in a path, e.g. \"https://api.example.com/v1/\"",
                ));
            }
        }
        for (j, t) in w.http_tools.iter().enumerate() {
            let g = |n: &str| format!("workflows[{i}].http_tools[{j}].{n}");
            if Tool::parse(&t.name).is_some()
                || t.name.starts_with("handoff_to_")
                || t.name.is_empty()
            {
                return Err(c.invalid(
                    g("name"),
                    "must not be empty, one of hort's tools or a hand-off",
                ));
            }
            if !w
                .allowed_base_urls
                .iter()
                .any(|b| t.url.starts_with(b.as_str()))
            {
                return Err(c.invalid(
                    g("url"),
                    format!("{} is under none of allowed_base_urls", t.url),
                ));
            }
            if t.parameters.get("type").and_then(|v| v.as_str()) != Some("object") {
                return Err(c.invalid(
                    g("parameters"),
                    "must be a JSON Schema with type = \"object\"",
                ));
            }
            c.range(g("timeout_s"), t.timeout_s, 1, 300)?;
        }
        for (j, a) in w.agents.iter().enumerate() {
            let g = |n: &str| format!("workflows[{i}].agents[{j}].{n}");
            let p = providers.iter().find(|p| p.name == a.provider);
            match p {
                Some(p) if p.kind != super::ProviderKind::Extractive => {}
                _ => {
                    return Err(c.invalid(
                        g("provider"),
                        format!("no openai or anthropic provider named {:?}", a.provider),
                    ))
                }
            }
            for (k, t) in a.tools.iter().enumerate() {
                if Tool::parse(t).is_none() && w.http_tool(t).is_none() {
                    return Err(c.invalid(
                        format!("workflows[{i}].agents[{j}].tools[{k}]"),
                        format!("no tool named {t:?}"),
                    ));
                }
            }
            for h in &a.handoffs {
                if !agents.contains(h.as_str()) || h == &a.name {
                    return Err(c.invalid(
                        g("handoffs"),
                        format!("{h:?} is not another agent of the workflow"),
                    ));
                }
            }
            c.range(g("max_iterations"), a.max_iterations, 1, 1000)?;
        }
    }
    Ok(())
}
