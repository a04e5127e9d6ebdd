//! `hort.toml`: one file, strict (`deny_unknown_fields`), with every error
//! naming the file and the field. Secrets never live here: API keys are stored
//! as SHA-256, provider keys are read from the environment at use.
//!
//! One file per section, each with its types, defaults and `validate`;
//! this module holds the whole ([`Config`]), loading, and the checks that
//! span sections (roles named by MCP grants, the routing chain's providers).

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod alerts;
mod cache;
mod embed;
mod gateway;
mod ingest;
mod mcp;
mod policy;
mod principals;
mod providers;
mod retrieve;
mod sanitize;
mod server;
mod store;
mod workflows;

pub use alerts::AlertsConfig;
pub use cache::CacheConfig;
pub use embed::EmbedConfig;
pub use gateway::{AuditConfig, FsyncPolicy, GatewayConfig};
pub use ingest::{IngestConfig, PdfEngine};
pub use mcp::{McpConfig, McpGrant, Tool};
pub use policy::{ContentRule, PolicyTarget};
pub use principals::{AuthConfig, JwtConfig, PrincipalConfig, SignInConfig, TeamConfig};
pub use providers::{
    Balance, GroupConfig, Locality, ProviderConfig, ProviderKind, QueryRule, RoutingConfig,
};
pub use retrieve::{Fusion, RetrieveConfig};
pub use sanitize::{InjectionAction, QueryInjectionAction, SanitizeConfig};
pub use server::ServerConfig;
pub use store::{
    Backend, HnswConfig, IndexConfig, StoreConfig, DEFAULT_KEYWORD_CACHE_MB, DEFAULT_TEXT_CACHE_MB,
    DEFAULT_VECTOR_CACHE_MB,
};
pub use workflows::{AgentConfig, HttpToolConfig, WorkflowConfig};

/// A configuration that cannot be used, naming the file (and field).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for hort (an unknown key, a wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of its range or contradicts another.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as a TOML path (`providers[0].timeout_s`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// The whole of `hort.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[index]`: where the embedded index lives.
    #[serde(default)]
    pub index: IndexConfig,
    /// Where chunks, vectors and the gateway's state live.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[embed]`: the embedding model.
    #[serde(default)]
    pub embed: EmbedConfig,
    /// `[ingest]`: chunking and parsing.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// `[hnsw]`: the vector graphs.
    #[serde(default)]
    pub hnsw: HnswConfig,
    /// `[retrieve]`: hybrid search and reranking.
    #[serde(default)]
    pub retrieve: RetrieveConfig,
    /// `[server]`: the HTTP listener and its limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[principals]]`: who may call, with which access.
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
    /// `[[providers]]`: the answer models.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// `[audit]`: the audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[routing]`: which providers may answer what.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// `[sanitize]`: injection and personal-data handling.
    #[serde(default)]
    pub sanitize: SanitizeConfig,
    /// Limits and budgets per team (a principal's requests count for each of its teams).
    #[serde(default)]
    pub teams: Vec<TeamConfig>,
    /// `[gateway]`: the usage journal.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// `[auth]`: JWT callers.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[cache]`: the answer cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[alerts]`: budget alerts.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `[[content_policy]]`: questions and answers the gateway refuses.
    #[serde(default)]
    pub content_policy: Vec<ContentRule>,
    /// `[[workflows]]`: agents hort runs (docs/agents.md).
    #[serde(default)]
    pub workflows: Vec<WorkflowConfig>,
    /// The MCP server for agents: tools per principal or role, approvals, limits.
    #[serde(default)]
    pub mcp: McpConfig,
    /// Directory relative paths in the file are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the configuration came from (for error messages).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}

/// Makes the errors of [`Config::validate`]: each names the file and the field.
struct Check<'a> {
    path: &'a Path,
}

impl Check<'_> {
    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// `value` within `lo..=hi`, else an error naming `field` and the range.
    fn range<T: PartialOrd + std::fmt::Display>(
        &self,
        field: impl Into<String>,
        value: T,
        lo: T,
        hi: T,
    ) -> Result<(), ConfigError> {
        if value >= lo && value <= hi {
            Ok(())
        } else {
            Err(self.invalid(field, format!("must be between {lo} and {hi} (is {value})")))
        }
    }

    /// A money amount: finite and not negative.
    fn amount(&self, field: impl Into<String>, value: f64) -> Result<(), ConfigError> {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(self.invalid(field, "must be a number >= 0"))
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, path, base)
    }

    /// Parses configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        cfg.base_dir = base_dir;
        cfg.source = Some(path.to_path_buf());
        cfg.validate()?;
        Ok(cfg)
    }

    /// The file to load when none is named: `./hort.toml` if it exists.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Config::load(p),
            None => {
                let p = Path::new("hort.toml");
                if p.is_file() {
                    Config::load(p)
                } else {
                    Ok(Config {
                        base_dir: PathBuf::from("."),
                        ..Config::default()
                    })
                }
            }
        }
    }

    /// Checks every value against the range it is used in: limits, time
    /// spans and sizes are bounded here, so that no later arithmetic on
    /// them (durations added to clocks, multiplied backoffs, token buckets)
    /// can overflow or divide by zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let path = self
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from("<config>"));
        let c = &Check { path: &path };
        self.store.validate(c)?;
        self.ingest.validate(c)?;
        self.hnsw.validate(c)?;
        self.embed.validate(c)?;
        self.retrieve.validate(c)?;
        self.sanitize.validate(c)?;
        self.mcp.validate(c)?;
        principals::validate_principals(&self.principals, &self.mcp.roles(), c)?;
        principals::validate_teams(&self.teams, c)?;
        self.server.validate(c)?;
        self.auth.validate(c)?;
        self.cache.validate(c)?;
        self.alerts.validate(c)?;
        policy::validate_rules(&self.content_policy, c)?;
        workflows::validate_workflows(&self.workflows, &self.providers, c)?;
        providers::validate_providers(&self.providers, &self.routing, c)
    }

    /// Resolves a path from the file against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The embedded index directory, resolved against the file's directory.
    pub fn index_path(&self) -> PathBuf {
        self.resolve(&self.index.path)
    }

    /// The configured principal of that name.
    pub fn principal(&self, name: &str) -> Option<&PrincipalConfig> {
        self.principals.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Classification;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("hort.toml"), PathBuf::from("."))
    }

    #[test]
    fn interface_example_parses() {
        let cfg = parse(
            r#"
[index]
path = "data/index"

[[principals]]
name = "alice"
api_key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
teams = ["finance"]
clearance = "confidential"
requests_per_minute = 60
monthly_budget_usd = 50.0

[[providers]]
name = "local-llm"
kind = "openai"
base_url = "http://127.0.0.1:8081/v1"
model = "smollm2"
api_key_env = "LOCAL_LLM_KEY"
locality = "local"
timeout_s = 30
usd_per_1k_input = 0.0
usd_per_1k_output = 0.0

[audit]
path = "data/audit.jsonl"

[routing]
chain = ["local-llm", "extractive"]
local_only_from = "confidential"
"#,
        )
        .unwrap();
        assert_eq!(cfg.principals[0].clearance, Classification::Confidential);
        assert_eq!(cfg.ingest.chunk_tokens, 200);
    }

    #[test]
    fn unknown_field_is_named() {
        let e = parse("[index]\npaht = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("hort.toml") && e.contains("paht"), "{e}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let e = parse("[ingest]\nchunk_tokens = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ingest.chunk_tokens"), "{e}");
        let e = parse("[[principals]]\nname='a'\nclearance='public'\napi_key_sha256='xyz'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("principals[0].api_key_sha256"), "{e}");
        let e = parse("[[principals]]\nname='a'\nclearance='secret'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret"), "{e}");
        let e = parse("[routing]\nchain=['nope']\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("routing.chain[0]"), "{e}");
    }

    #[test]
    fn limits_out_of_range_name_the_field() {
        for (text, field) in [
            (
                "[auth.jwt]\nissuer='i'\njwks_file='j'\nrequests_per_minute=0\n",
                "auth.jwt.requests_per_minute",
            ),
            (
                "[auth.jwt]\nissuer='i'\njwks_file='j'\n[auth.jwt.sign_in]\nauthorization_endpoint='http://idp.example/a'\ntoken_endpoint='https://idp/t'\nclient_id='c'\n",
                "auth.jwt.sign_in.authorization_endpoint",
            ),
            (
                "[auth.jwt]\nissuer='i'\njwks_file='j'\n[auth.jwt.sign_in]\nauthorization_endpoint='https://idp/a'\ntoken_endpoint='https://idp/t'\nclient_id='c'\nredirect_url='https://hort/elsewhere'\n",
                "auth.jwt.sign_in.redirect_url",
            ),
            (
                "[auth.jwt]\nissuer='i'\njwks_file='j'\n[auth.jwt.sign_in]\nauthorization_endpoint='https://idp/a'\ntoken_endpoint='https://idp/t'\nclient_id=' '\n",
                "auth.jwt.sign_in.client_id",
            ),
            ("[server]\nrequest_timeout_s=9223372036854775807\n", "server.request_timeout_s"),
            ("[server]\nheader_timeout_s=0\n", "server.header_timeout_s"),
            (
                "[server]\nmax_concurrency=4\nmax_concurrency_per_principal=5\n",
                "server.max_concurrency_per_principal",
            ),
            (
                "[[providers]]\nname='p'\nkind='openai'\nlocality='cloud'\nbreaker_cooldown_s=9223372036854775807\n",
                "providers[0].breaker_cooldown_s",
            ),
            (
                "[[providers]]\nname='p'\nkind='openai'\nlocality='cloud'\nbackoff_ms=9223372036854775807\n",
                "providers[0].backoff_ms",
            ),
            (
                "[[providers]]\nname='p'\nkind='openai'\nlocality='cloud'\nusd_per_1k_input=nan\n",
                "providers[0].usd_per_1k_input",
            ),
            ("[mcp]\nmax_session_s=9223372036854775807\n", "mcp.max_session_s"),
            ("[[principals]]\nname='jwt:x'\nclearance='public'\n", "principals[0].name"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
        let ok = parse("[server]\nmax_concurrency=4\nmax_concurrency_per_principal=4\n");
        assert!(ok.is_ok(), "{ok:?}");
    }
}
