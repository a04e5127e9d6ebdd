//! `[mcp]`: the tools agents may call (per principal or role), which need
//! a human's approval, and the per-principal limits of agent sessions.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Check, ConfigError};

/// Agents over MCP: which tools each principal (or role) may use, which
/// wait for a person, and the per-session limits of the kill switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Tools granted per principal or role (on top of the default read tools).
    #[serde(default)]
    pub grants: Vec<McpGrant>,
    /// Principals without a grant get the read tools (search, ask,
    /// get_document); false: no tools at all without a grant.
    #[serde(default = "super::default_true")]
    pub default_read_tools: bool,
    /// Tools whose calls wait for a person with the approver role.
    #[serde(default = "default_requires_approval")]
    pub requires_approval: Vec<String>,
    /// Per session: tool calls, tokens (model tokens plus returned text / 4), seconds.
    #[serde(default = "default_mcp_calls")]
    pub max_tool_calls: u32,
    /// Tokens an agent may use per session (answers and tool output).
    #[serde(default = "default_mcp_tokens")]
    pub max_tokens: u64,
    /// Seconds an agent session may last.
    #[serde(default = "default_mcp_seconds")]
    pub max_session_s: u64,
    /// Pending actions (one JSON file each), shared by every hort process.
    #[serde(default = "default_approvals_dir")]
    pub approvals_dir: PathBuf,
    /// While this file exists, every MCP session refuses tool calls
    /// (`hort agents stop` / `resume`).
    #[serde(default = "default_stop_file")]
    pub stop_file: PathBuf,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            grants: Vec::new(),
            default_read_tools: true,
            requires_approval: default_requires_approval(),
            max_tool_calls: default_mcp_calls(),
            max_tokens: default_mcp_tokens(),
            max_session_s: default_mcp_seconds(),
            approvals_dir: default_approvals_dir(),
            stop_file: default_stop_file(),
        }
    }
}

/// One grant of tools to a principal or to everyone with a role (exactly one of the two).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpGrant {
    /// The principal the grant is for.
    pub principal: Option<String>,
    /// The role the grant is for.
    pub role: Option<String>,
    /// Tool names (checked against [`Tool`] when the file is read).
    pub tools: Vec<String>,
}

impl McpGrant {
    /// The granted tools (unknown names were refused when the file was read).
    pub fn granted(&self) -> impl Iterator<Item = Tool> + '_ {
        self.tools.iter().filter_map(|t| Tool::parse(t))
    }
}

/// The tools hort offers agents (declared in the order of their names,
/// which is the order agents see them listed in).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// Ask a question; the answer comes with verified citations.
    Ask,
    /// Delete a document that was added through the API.
    DeleteDocument,
    /// Read a page or a span of a document.
    GetDocument,
    /// Add or replace a document (with its access rule).
    IngestDocument,
    /// Search: passages with their sources.
    Search,
}

impl Tool {
    /// Every tool, in name order.
    pub const ALL: [Tool; 5] = [
        Tool::Search,
        Tool::Ask,
        Tool::GetDocument,
        Tool::IngestDocument,
        Tool::DeleteDocument,
    ];
    /// The tools that only read.
    pub const READ: [Tool; 3] = [Tool::Search, Tool::Ask, Tool::GetDocument];

    /// The tool's MCP name (`get_document`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Search => "search",
            Tool::Ask => "ask",
            Tool::GetDocument => "get_document",
            Tool::IngestDocument => "ingest_document",
            Tool::DeleteDocument => "delete_document",
        }
    }

    /// The tool of an MCP name.
    pub fn parse(s: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

fn default_requires_approval() -> Vec<String> {
    vec!["ingest_document".into(), "delete_document".into()]
}
fn default_mcp_calls() -> u32 {
    200
}
fn default_mcp_tokens() -> u64 {
    200_000
}
fn default_mcp_seconds() -> u64 {
    3600
}
fn default_approvals_dir() -> PathBuf {
    PathBuf::from("data/approvals")
}
fn default_stop_file() -> PathBuf {
    PathBuf::from("data/agents.stopped")
}

impl McpConfig {
    /// The roles the grants name (valid roles besides the built-in ones).
    pub(super) fn roles(&self) -> Vec<&str> {
        self.grants
            .iter()
            .filter_map(|g| g.role.as_deref())
            .collect()
    }

    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        let known = Tool::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        for (i, g) in self.grants.iter().enumerate() {
            let f = |name: &str| format!("mcp.grants[{i}].{name}");
            if g.principal.is_some() == g.role.is_some() {
                return Err(c.invalid(f("principal"), "give exactly one of principal and role"));
            }
            for t in &g.tools {
                if Tool::parse(t).is_none() {
                    return Err(c.invalid(f("tools"), format!("unknown tool {t:?} ({known})")));
                }
            }
        }
        for t in &self.requires_approval {
            if Tool::parse(t).is_none() {
                return Err(c.invalid(
                    "mcp.requires_approval",
                    format!("unknown tool {t:?} ({known})"),
                ));
            }
        }
        c.range("mcp.max_tool_calls", self.max_tool_calls, 1, u32::MAX)?;
        c.range("mcp.max_tokens", self.max_tokens, 1, u64::MAX)?;
        c.range("mcp.max_session_s", self.max_session_s, 1, 31_536_000)
    }
}
