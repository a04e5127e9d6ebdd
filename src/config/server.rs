//! `[server]`: the HTTP listener, request limits and admission control.

use serde::Deserialize;

use super::{Check, ConfigError};

/// `[server]`: the HTTP listener, request limits and admission control.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_addr")]
    pub addr: String,
    /// Largest k a request may ask for.
    #[serde(default = "default_max_k")]
    pub max_k: usize,
    /// Longest query accepted, in characters.
    #[serde(default = "default_max_query_chars")]
    pub max_query_chars: usize,
    /// Largest request body (413 above), except document uploads.
    #[serde(default = "default_max_body_kb")]
    pub max_body_kb: usize,
    /// Largest document upload.
    #[serde(default = "default_max_upload_mb")]
    pub max_upload_mb: usize,
    /// A request taking longer is answered 503 (code `timeout`).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_s: u64,
    /// Requests handled at once; more are refused at once with 503 (back-pressure).
    /// A request holds its slot from the moment its body has arrived until its
    /// response (a stream included) has ended.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Requests of one principal in flight at once, its slow uploads included;
    /// more are refused with 429, so that one key cannot starve the others.
    /// Default: half of `max_concurrency` (at least 1); a deployment with a
    /// single key sets it to `max_concurrency`.
    #[serde(default)]
    pub max_concurrency_per_principal: Option<usize>,
    /// Seconds a client has to send a request's head; also how long an idle
    /// keep-alive connection stays open. Slower connections are closed.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_s: u64,
    /// Seconds a client has to send a request's body once its head arrived (408).
    #[serde(default = "default_body_timeout")]
    pub body_timeout_s: u64,
    /// Open connections at most; further clients wait in the listen queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Origins allowed by CORS; empty (the default): no CORS headers at all.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

impl ServerConfig {
    /// Slots of one principal: as configured, else half of the server's.
    pub fn per_principal(&self) -> usize {
        self.max_concurrency_per_principal
            .unwrap_or((self.max_concurrency / 2).max(1))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: default_addr(),
            max_k: default_max_k(),
            max_query_chars: default_max_query_chars(),
            max_body_kb: default_max_body_kb(),
            max_upload_mb: default_max_upload_mb(),
            request_timeout_s: default_request_timeout(),
            max_concurrency: default_max_concurrency(),
            max_concurrency_per_principal: None,
            header_timeout_s: default_header_timeout(),
            body_timeout_s: default_body_timeout(),
            max_connections: default_max_connections(),
            cors_origins: Vec::new(),
        }
    }
}

fn default_max_body_kb() -> usize {
    1024
}
fn default_max_upload_mb() -> usize {
    25
}
fn default_request_timeout() -> u64 {
    120
}
fn default_max_concurrency() -> usize {
    64
}
fn default_header_timeout() -> u64 {
    10
}
fn default_body_timeout() -> u64 {
    30
}
fn default_max_connections() -> usize {
    1024
}

fn default_addr() -> String {
    "127.0.0.1:8080".into()
}
fn default_max_k() -> usize {
    100
}
fn default_max_query_chars() -> usize {
    4096
}

impl ServerConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        c.range("server.max_k", self.max_k, 1, 10_000)?;
        c.range("server.max_query_chars", self.max_query_chars, 1, 1_000_000)?;
        c.range("server.max_body_kb", self.max_body_kb, 1, 1 << 20)?;
        c.range("server.max_upload_mb", self.max_upload_mb, 1, 4096)?;
        c.range(
            "server.request_timeout_s",
            self.request_timeout_s,
            1,
            86_400,
        )?;
        c.range("server.header_timeout_s", self.header_timeout_s, 1, 3600)?;
        c.range("server.body_timeout_s", self.body_timeout_s, 1, 3600)?;
        c.range("server.max_concurrency", self.max_concurrency, 1, 100_000)?;
        c.range(
            "server.max_concurrency_per_principal",
            self.per_principal(),
            1,
            self.max_concurrency,
        )?;
        c.range("server.max_connections", self.max_connections, 1, 1_000_000)
    }
}
