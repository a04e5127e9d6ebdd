//! `[gateway]` and `[audit]`: where usage and the audit chain are kept.

use std::path::PathBuf;

use serde::Deserialize;

/// `[gateway]`: where the node keeps its books on the embedded backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Journal of spending (JSON lines), replayed at start so budgets survive restarts.
    #[serde(default = "default_usage_path")]
    pub usage_path: PathBuf,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            usage_path: default_usage_path(),
        }
    }
}

fn default_usage_path() -> PathBuf {
    PathBuf::from("data/usage.jsonl")
}

/// `[audit]`: the hash-chained audit log.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit log (JSON lines, hash-chained); none: no audit log.
    pub path: Option<PathBuf>,
    /// When records reach the disk.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Also record the question text (personal data masked). Default: only its hash.
    #[serde(default)]
    pub log_query_text: bool,
}

/// When audit records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every record (slowest, nothing lost).
    Always,
    /// At most once a second (a crash loses up to a second).
    #[default]
    Interval,
    /// Leave it to the operating system.
    Never,
}
