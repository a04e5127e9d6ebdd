//! `hort.toml`: one file, strict (`deny_unknown_fields`), with every error
//! naming the file and the field. Secrets never live here: API keys are stored
//! as SHA-256, provider keys are read from the environment at use.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::acl::Classification;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub index: IndexConfig,
    /// Where chunks, vectors and the gateway's state live.
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub embed: EmbedConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub hnsw: HnswConfig,
    #[serde(default)]
    pub retrieve: RetrieveConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub sanitize: SanitizeConfig,
    /// Limits and budgets per team (a principal's requests count for each of its teams).
    #[serde(default)]
    pub teams: Vec<TeamConfig>,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub auth: AuthConfig,
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

/// The storage backend: the embedded index (one machine) or PostgreSQL with
/// pgvector (several stateless nodes on one database).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Embedded,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub backend: Backend,
    /// `postgres://user@host:port/db`; the password is better given in
    /// `HORT_DATABASE_URL` (which overrides this) than in the file.
    #[serde(default)]
    pub url: Option<String>,
    /// A streaming replica for searches (`HORT_DATABASE_READ_URL` overrides).
    #[serde(default)]
    pub read_url: Option<String>,
    /// Connections per pool (one pool for writes, one for reads).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
}

fn default_pool_size() -> usize {
    8
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: Backend::Embedded,
            url: None,
            read_url: None,
            pool_size: default_pool_size(),
        }
    }
}

impl StoreConfig {
    /// The primary's URL, the environment first (it may hold a password).
    pub fn url(&self) -> Option<String> {
        std::env::var("HORT_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| self.url.clone())
    }

    pub fn read_url(&self) -> Option<String> {
        std::env::var("HORT_DATABASE_READ_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| self.read_url.clone())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    #[serde(default = "default_index_path")]
    pub path: PathBuf,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            path: default_index_path(),
        }
    }
}

fn default_index_path() -> PathBuf {
    PathBuf::from("data/index")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// Model name (`minilm-l6`) or `hash` (a deterministic embedder for tests).
    #[serde(default = "default_model")]
    pub model: String,
    /// Where `make models` put the model files; searched beside the binary too.
    pub models_dir: Option<PathBuf>,
    /// The ONNX Runtime shared library; default: `<models_dir>/onnxruntime/libonnxruntime.so*`.
    pub runtime: Option<PathBuf>,
    /// Intra-op threads of the model; measured best at 1 on a shared 2-core machine.
    #[serde(default = "default_embed_threads")]
    pub threads: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model: default_model(),
            models_dir: None,
            runtime: None,
            threads: default_embed_threads(),
            batch_size: default_batch(),
        }
    }
}

fn default_model() -> String {
    "minilm-l6".into()
}
fn default_embed_threads() -> usize {
    1
}
fn default_batch() -> usize {
    32
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Target chunk size in model tokens.
    #[serde(default = "default_chunk_tokens")]
    pub chunk_tokens: usize,
    /// Tokens repeated from the end of one chunk at the start of the next.
    #[serde(default = "default_overlap_tokens")]
    pub overlap_tokens: usize,
    /// Files larger than this are reported as failed, not read.
    #[serde(default = "default_max_file_mb")]
    pub max_file_mb: u64,
    /// Wall-clock limit for parsing one PDF in its isolated worker.
    #[serde(default = "default_pdf_timeout")]
    pub pdf_timeout_s: u64,
    /// Address-space limit of the PDF worker process.
    #[serde(default = "default_pdf_memory")]
    pub pdf_memory_mb: u64,
    /// Parser threads; 0 = one per core.
    #[serde(default)]
    pub parse_threads: usize,
    /// Chunks per segment before the writer cuts a new one (and commits).
    #[serde(default = "default_segment_chunks")]
    pub segment_chunks: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            chunk_tokens: default_chunk_tokens(),
            overlap_tokens: default_overlap_tokens(),
            max_file_mb: default_max_file_mb(),
            pdf_timeout_s: default_pdf_timeout(),
            pdf_memory_mb: default_pdf_memory(),
            parse_threads: 0,
            segment_chunks: default_segment_chunks(),
        }
    }
}

fn default_chunk_tokens() -> usize {
    200
}
fn default_overlap_tokens() -> usize {
    40
}
fn default_max_file_mb() -> u64 {
    100
}
fn default_pdf_timeout() -> u64 {
    60
}
fn default_pdf_memory() -> u64 {
    4096
}
fn default_segment_chunks() -> usize {
    200_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HnswConfig {
    #[serde(default = "default_m")]
    pub m: usize,
    #[serde(default = "default_ef_construction")]
    pub ef_construction: usize,
    #[serde(default = "default_ef_search")]
    pub ef_search: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: default_m(),
            ef_construction: default_ef_construction(),
            ef_search: default_ef_search(),
        }
    }
}

fn default_m() -> usize {
    16
}
fn default_ef_construction() -> usize {
    200
}
fn default_ef_search() -> usize {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveConfig {
    /// Hits returned when a query gives no `k`.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Candidates taken from each of vector and keyword search before fusion.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// The constant of reciprocal rank fusion.
    #[serde(default = "default_rrf_k")]
    pub rrf_k: f32,
    /// Below this many visible chunks, vectors are scored exactly instead of via the graph.
    #[serde(default = "default_exact_threshold")]
    pub exact_threshold: usize,
    /// How vector and keyword results are combined.
    #[serde(default)]
    pub fusion: Fusion,
    /// Weight of the vector list in fusion.
    #[serde(default = "default_weight")]
    pub vector_weight: f32,
    /// Weight of the keyword list in fusion.
    #[serde(default = "default_weight")]
    pub keyword_weight: f32,
    /// At most this many hits per document (0 = no limit).
    #[serde(default)]
    pub max_per_doc: usize,
    /// Drop a hit whose text overlaps a better hit of the same page.
    #[serde(default = "default_true")]
    pub dedupe_overlaps: bool,
    /// A cross-encoder model directory (docs/multilingual.md): the best
    /// `rerank_candidates` hits are reordered by it. None ships here.
    #[serde(default)]
    pub reranker: Option<PathBuf>,
    #[serde(default = "default_rerank_candidates")]
    pub rerank_candidates: usize,
}

fn default_rerank_candidates() -> usize {
    20
}

/// Fusion of the vector and keyword result lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: Σ w / (rrf_k + rank). Robust to score scales.
    Rrf,
    /// Σ w · score, each list's scores min-max normalised to [0, 1]. The
    /// default: better than RRF on SciFact train (0.732 vs 0.723 nDCG@10,
    /// chosen there) and on the sample corpus (`hort bench quality`).
    #[default]
    Weighted,
}

impl Default for RetrieveConfig {
    fn default() -> Self {
        RetrieveConfig {
            k: default_k(),
            candidates: default_candidates(),
            rrf_k: default_rrf_k(),
            exact_threshold: default_exact_threshold(),
            fusion: Fusion::default(),
            vector_weight: default_weight(),
            keyword_weight: default_weight(),
            max_per_doc: 0,
            dedupe_overlaps: true,
            reranker: None,
            rerank_candidates: default_rerank_candidates(),
        }
    }
}

fn default_k() -> usize {
    8
}
fn default_candidates() -> usize {
    50
}
fn default_rrf_k() -> f32 {
    60.0
}
fn default_exact_threshold() -> usize {
    20_000
}
fn default_weight() -> f32 {
    1.0
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub name: String,
    /// SHA-256 (hex) of the API key; the key itself is never stored.
    pub api_key_sha256: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    pub clearance: Classification,
    pub requests_per_minute: Option<u32>,
    pub monthly_budget_usd: Option<f64>,
    /// `admin` may upload and delete documents; `approver` decides on agent actions.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A JWT whose subject (`[auth.jwt] name_claim`) is this value
    /// authenticates as this principal (its teams, clearance, roles, grants and
    /// limits from here). Without it, JWT callers are `jwt:<subject>` and never
    /// share the name, grants or approvals of an API-key principal.
    pub jwt_subject: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    pub requests_per_minute: Option<u32>,
    pub monthly_budget_usd: Option<f64>,
}

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

/// Agents over MCP: which tools each principal (or role) may use, which
/// wait for a person, and the per-session limits of the kill switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    #[serde(default)]
    pub grants: Vec<McpGrant>,
    /// Principals without a grant get the read tools (search, ask,
    /// get_document); false: no tools at all without a grant.
    #[serde(default = "default_true")]
    pub default_read_tools: bool,
    /// Tools whose calls wait for a person with the approver role.
    #[serde(default = "default_requires_approval")]
    pub requires_approval: Vec<String>,
    /// Per session: tool calls, tokens (model tokens plus returned text / 4), seconds.
    #[serde(default = "default_mcp_calls")]
    pub max_tool_calls: u32,
    #[serde(default = "default_mcp_tokens")]
    pub max_tokens: u64,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpGrant {
    pub principal: Option<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Ask,
    DeleteDocument,
    GetDocument,
    IngestDocument,
    Search,
}

impl Tool {
    pub const ALL: [Tool; 5] = [
        Tool::Search,
        Tool::Ask,
        Tool::GetDocument,
        Tool::IngestDocument,
        Tool::DeleteDocument,
    ];
    /// The tools that only read.
    pub const READ: [Tool; 3] = [Tool::Search, Tool::Ask, Tool::GetDocument];

    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Search => "search",
            Tool::Ask => "ask",
            Tool::GetDocument => "get_document",
            Tool::IngestDocument => "ingest_document",
            Tool::DeleteDocument => "delete_document",
        }
    }

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

/// Bearer tokens other than API keys: JWTs from an OIDC provider, checked
/// offline against a JWKS file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt: Option<JwtConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`: when set, a token must carry it.
    pub audience: Option<String>,
    /// The issuer's public keys (a JWKS document saved to disk).
    pub jwks_file: PathBuf,
    /// Claim with the principal's name.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Claim with the list of teams.
    #[serde(default = "default_teams_claim")]
    pub teams_claim: String,
    /// Claim with the clearance (public … restricted); missing means public.
    #[serde(default = "default_clearance_claim")]
    pub clearance_claim: String,
    /// Claim with roles (admin, approver).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Requests per minute for JWT principals (none: unlimited).
    pub requests_per_minute: Option<u32>,
}

fn default_name_claim() -> String {
    "sub".into()
}
fn default_teams_claim() -> String {
    "teams".into()
}
fn default_clearance_claim() -> String {
    "clearance".into()
}
fn default_roles_claim() -> String {
    "roles".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Extractive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Locality {
    Local,
    Cloud,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Name of the environment variable holding the key (never the key itself).
    pub api_key_env: Option<String>,
    pub locality: Locality,
    /// Whole-call limit per attempt (streaming included).
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    #[serde(default)]
    pub usd_per_1k_input: f64,
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

/// What happens to a chunk suspected of carrying a prompt injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectionAction {
    /// Keep it, and say so in the response.
    Annotate,
    /// Keep it, lower its score (and say so).
    Downrank,
    /// Never put it in a prompt (and say so).
    Quarantine,
}

/// What happens to a question that itself looks like an injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryInjectionAction {
    Annotate,
    Refuse,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanitizeConfig {
    /// Detector score at or above which a chunk or question is "suspected".
    #[serde(default = "default_suspected")]
    pub injection_threshold: f32,
    /// Score at or above which `on_high` applies instead of `on_suspected`.
    #[serde(default = "default_high")]
    pub injection_high: f32,
    #[serde(default = "default_on_suspected")]
    pub on_suspected: InjectionAction,
    #[serde(default = "default_on_high")]
    pub on_high: InjectionAction,
    /// Score multiplier for `downrank`.
    #[serde(default = "default_downrank")]
    pub downrank_factor: f32,
    #[serde(default = "default_on_query")]
    pub on_query_injection: QueryInjectionAction,
    /// Mask personal data before it goes to a provider with `locality = "cloud"`.
    #[serde(default = "default_true")]
    pub pii_mask_cloud: bool,
    /// Mask personal data before it goes to a provider with `locality = "local"`.
    #[serde(default)]
    pub pii_mask_local: bool,
    /// Which kinds of personal data are masked.
    #[serde(default = "default_pii_types")]
    pub pii_types: Vec<crate::sanitize::pii::PiiKind>,
}

impl Default for SanitizeConfig {
    fn default() -> Self {
        SanitizeConfig {
            injection_threshold: default_suspected(),
            injection_high: default_high(),
            on_suspected: default_on_suspected(),
            on_high: default_on_high(),
            downrank_factor: default_downrank(),
            on_query_injection: default_on_query(),
            pii_mask_cloud: true,
            pii_mask_local: false,
            pii_types: default_pii_types(),
        }
    }
}

fn default_suspected() -> f32 {
    0.5
}
fn default_high() -> f32 {
    0.8
}
fn default_on_suspected() -> InjectionAction {
    InjectionAction::Downrank
}
fn default_on_high() -> InjectionAction {
    InjectionAction::Quarantine
}
fn default_downrank() -> f32 {
    0.5
}
fn default_on_query() -> QueryInjectionAction {
    QueryInjectionAction::Annotate
}
fn default_pii_types() -> Vec<crate::sanitize::pii::PiiKind> {
    crate::sanitize::pii::PiiKind::ALL.to_vec()
}

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
    #[serde(default = "default_true")]
    pub extractive_fallback: bool,
    /// Rules that rate the question itself (regular expressions, case-insensitive).
    #[serde(default)]
    pub query_rules: Vec<QueryRule>,
    /// Level of a question that contains personal data (e-mail, IBAN, …).
    pub pii_in_query: Option<Classification>,
    /// Context handed to a model, in (estimated) tokens.
    #[serde(default = "default_context_tokens")]
    pub max_context_tokens: u32,
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
        }
    }
}

fn default_local_only() -> Option<Classification> {
    Some(Classification::Confidential)
}
fn default_context_tokens() -> u32 {
    3000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRule {
    pub pattern: String,
    pub level: Classification,
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

    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from("<config>")),
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

    /// Checks every value against the range it is used in: limits, time
    /// spans and sizes are bounded here, so that no later arithmetic on
    /// them (durations added to clocks, multiplied backoffs, token buckets)
    /// can overflow or divide by zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.store.backend == Backend::Postgres && self.store.url().is_none() {
            return Err(self.invalid(
                "store.url",
                "backend = \"postgres\" needs a url (or HORT_DATABASE_URL)",
            ));
        }
        if !(1..=256).contains(&self.store.pool_size) {
            return Err(self.invalid("store.pool_size", "must be between 1 and 256"));
        }
        let ing = &self.ingest;
        if !(16..=4096).contains(&ing.chunk_tokens) {
            return Err(self.invalid("ingest.chunk_tokens", "must be between 16 and 4096"));
        }
        if ing.overlap_tokens * 2 > ing.chunk_tokens {
            return Err(self.invalid(
                "ingest.overlap_tokens",
                "must be at most half of ingest.chunk_tokens",
            ));
        }
        self.range("ingest.pdf_timeout_s", ing.pdf_timeout_s, 1, 3600)?;
        self.range("ingest.pdf_memory_mb", ing.pdf_memory_mb, 64, 1 << 20)?;
        self.range("ingest.max_file_mb", ing.max_file_mb, 1, 1 << 20)?;
        self.range("ingest.parse_threads", ing.parse_threads, 0, 4096)?;
        if ing.segment_chunks < 1000 {
            return Err(self.invalid("ingest.segment_chunks", "must be at least 1000"));
        }
        if !(4..=128).contains(&self.hnsw.m) {
            return Err(self.invalid("hnsw.m", "must be between 4 and 128"));
        }
        if self.hnsw.ef_construction < self.hnsw.m || self.hnsw.ef_construction > 4096 {
            return Err(self.invalid("hnsw.ef_construction", "must be between hnsw.m and 4096"));
        }
        if !(1..=4096).contains(&self.hnsw.ef_search) {
            return Err(self.invalid("hnsw.ef_search", "must be between 1 and 4096"));
        }
        if self.embed.batch_size == 0 || self.embed.batch_size > 1024 {
            return Err(self.invalid("embed.batch_size", "must be between 1 and 1024"));
        }
        if self.embed.threads == 0 || self.embed.threads > 256 {
            return Err(self.invalid("embed.threads", "must be between 1 and 256"));
        }
        let r = &self.retrieve;
        self.range("retrieve.rerank_candidates", r.rerank_candidates, 1, 10_000)?;
        if r.k == 0 || r.k > 1000 {
            return Err(self.invalid("retrieve.k", "must be between 1 and 1000"));
        }
        if r.candidates == 0 || r.candidates > 10_000 {
            return Err(self.invalid("retrieve.candidates", "must be between 1 and 10000"));
        }
        if !(r.rrf_k.is_finite() && r.rrf_k > 0.0) {
            return Err(self.invalid("retrieve.rrf_k", "must be a positive number"));
        }
        for (name, w) in [
            ("retrieve.vector_weight", r.vector_weight),
            ("retrieve.keyword_weight", r.keyword_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(self.invalid(name, "must be a number >= 0"));
            }
        }
        if r.vector_weight + r.keyword_weight <= 0.0 {
            return Err(self.invalid(
                "retrieve.vector_weight",
                "vector_weight and keyword_weight cannot both be 0",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.principals.iter().enumerate() {
            let f = |name: &str| format!("principals[{i}].{name}");
            if p.name.trim().is_empty() {
                return Err(self.invalid(f("name"), "must not be empty"));
            }
            if !names.insert(p.name.as_str()) {
                return Err(self.invalid(f("name"), format!("duplicate principal {:?}", p.name)));
            }
            if let Some(h) = &p.api_key_sha256 {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(self.invalid(
                        f("api_key_sha256"),
                        "must be 64 hex digits (the SHA-256 of the key; see `hort keygen`)",
                    ));
                }
            }
            if p.teams.iter().any(|t| t.trim().is_empty()) {
                return Err(self.invalid(f("teams"), "team names must not be empty"));
            }
            if let Some(b) = p.monthly_budget_usd {
                if !(b.is_finite() && b >= 0.0) {
                    return Err(self.invalid(f("monthly_budget_usd"), "must be >= 0"));
                }
            }
        }
        let s = &self.sanitize;
        if !(0.0..=1.0).contains(&s.injection_threshold) {
            return Err(self.invalid("sanitize.injection_threshold", "must be between 0 and 1"));
        }
        if !(s.injection_threshold..=1.0).contains(&s.injection_high) {
            return Err(self.invalid(
                "sanitize.injection_high",
                "must be between injection_threshold and 1",
            ));
        }
        if !(0.0..=1.0).contains(&s.downrank_factor) {
            return Err(self.invalid("sanitize.downrank_factor", "must be between 0 and 1"));
        }
        // Roles: the built-in ones, and any role an MCP grant names.
        let granted_roles: Vec<&str> = self
            .mcp
            .grants
            .iter()
            .filter_map(|g| g.role.as_deref())
            .collect();
        for (i, g) in self.mcp.grants.iter().enumerate() {
            let f = |name: &str| format!("mcp.grants[{i}].{name}");
            if g.principal.is_some() == g.role.is_some() {
                return Err(self.invalid(f("principal"), "give exactly one of principal and role"));
            }
            for t in &g.tools {
                if Tool::parse(t).is_none() {
                    return Err(self.invalid(
                        f("tools"),
                        format!("unknown tool {t:?} (search, ask, get_document, ingest_document, delete_document)"),
                    ));
                }
            }
        }
        for t in &self.mcp.requires_approval {
            if Tool::parse(t).is_none() {
                return Err(self.invalid("mcp.requires_approval", format!("unknown tool {t:?}")));
            }
        }
        self.range("mcp.max_tool_calls", self.mcp.max_tool_calls, 1, u32::MAX)?;
        self.range("mcp.max_tokens", self.mcp.max_tokens, 1, u64::MAX)?;
        self.range("mcp.max_session_s", self.mcp.max_session_s, 1, 31_536_000)?;
        for (i, p) in self.principals.iter().enumerate() {
            for r in &p.roles {
                if r != "admin" && r != "approver" && !granted_roles.contains(&r.as_str()) {
                    return Err(self.invalid(
                        format!("principals[{i}].roles"),
                        format!("unknown role {r:?} (admin, approver, or a role named in [[mcp.grants]])"),
                    ));
                }
            }
            if p.requests_per_minute == Some(0) {
                return Err(self.invalid(
                    format!("principals[{i}].requests_per_minute"),
                    "must be at least 1",
                ));
            }
        }
        let mut tnames = std::collections::HashSet::new();
        for (i, t) in self.teams.iter().enumerate() {
            if !tnames.insert(t.name.as_str()) {
                return Err(self.invalid(
                    format!("teams[{i}].name"),
                    format!("duplicate team {:?}", t.name),
                ));
            }
            if t.requests_per_minute == Some(0) {
                return Err(self.invalid(
                    format!("teams[{i}].requests_per_minute"),
                    "must be at least 1",
                ));
            }
            if t.monthly_budget_usd
                .is_some_and(|b| !(b.is_finite() && b >= 0.0))
            {
                return Err(self.invalid(format!("teams[{i}].monthly_budget_usd"), "must be >= 0"));
            }
        }
        let sv = &self.server;
        self.range("server.max_k", sv.max_k, 1, 10_000)?;
        self.range("server.max_query_chars", sv.max_query_chars, 1, 1_000_000)?;
        self.range("server.max_body_kb", sv.max_body_kb, 1, 1 << 20)?;
        self.range("server.max_upload_mb", sv.max_upload_mb, 1, 4096)?;
        self.range("server.request_timeout_s", sv.request_timeout_s, 1, 86_400)?;
        self.range("server.header_timeout_s", sv.header_timeout_s, 1, 3600)?;
        self.range("server.body_timeout_s", sv.body_timeout_s, 1, 3600)?;
        self.range("server.max_concurrency", sv.max_concurrency, 1, 100_000)?;
        self.range(
            "server.max_concurrency_per_principal",
            sv.per_principal(),
            1,
            sv.max_concurrency,
        )?;
        self.range("server.max_connections", sv.max_connections, 1, 1_000_000)?;
        if let Some(j) = &self.auth.jwt {
            if let Some(r) = j.requests_per_minute {
                self.range("auth.jwt.requests_per_minute", r, 1, u32::MAX)?;
            }
            if j.issuer.trim().is_empty() {
                return Err(self.invalid("auth.jwt.issuer", "must not be empty"));
            }
        }
        for (i, p) in self.principals.iter().enumerate() {
            if p.name.starts_with("jwt:") {
                return Err(self.invalid(
                    format!("principals[{i}].name"),
                    "names starting with `jwt:` are reserved for JWT callers (map a token with jwt_subject)",
                ));
            }
            if p.jwt_subject
                .as_deref()
                .is_some_and(|s| s.trim().is_empty())
            {
                return Err(
                    self.invalid(format!("principals[{i}].jwt_subject"), "must not be empty")
                );
            }
        }
        let mut subjects = std::collections::HashSet::new();
        for (i, p) in self.principals.iter().enumerate() {
            if let Some(sub) = &p.jwt_subject {
                if !subjects.insert(sub.as_str()) {
                    return Err(self.invalid(
                        format!("principals[{i}].jwt_subject"),
                        format!("{sub:?} is mapped to two principals"),
                    ));
                }
            }
        }
        let mut pnames = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            if !pnames.insert(p.name.as_str()) {
                return Err(self.invalid(
                    format!("providers[{i}].name"),
                    format!("duplicate provider {:?}", p.name),
                ));
            }
        }
        self.range(
            "routing.max_context_tokens",
            self.routing.max_context_tokens,
            1,
            10_000_000,
        )?;
        for (i, r) in self.routing.query_rules.iter().enumerate() {
            if let Err(e) = regex::Regex::new(&r.pattern) {
                return Err(
                    self.invalid(format!("routing.query_rules[{i}].pattern"), e.to_string())
                );
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            if p.kind != ProviderKind::Extractive
                && p.base_url.is_none()
                && p.kind == ProviderKind::Openai
                && p.locality == Locality::Local
            {
                return Err(self.invalid(
                    format!("providers[{i}].base_url"),
                    "a local OpenAI-compatible provider needs base_url",
                ));
            }
            let f = |name: &str| format!("providers[{i}].{name}");
            self.range(f("timeout_s"), p.timeout_s, 1, 600)?;
            self.range(f("max_retries"), p.max_retries, 0, 10)?;
            self.range(f("backoff_ms"), p.backoff_ms, 0, 600_000)?;
            self.range(f("max_backoff_ms"), p.max_backoff_ms, 0, 3_600_000)?;
            self.range(f("breaker_failures"), p.breaker_failures, 1, 1_000_000)?;
            self.range(f("breaker_cooldown_s"), p.breaker_cooldown_s, 0, 86_400)?;
            self.range(f("max_tokens"), p.max_tokens, 1, 1_000_000)?;
            self.amount(f("usd_per_1k_input"), p.usd_per_1k_input)?;
            self.amount(f("usd_per_1k_output"), p.usd_per_1k_output)?;
            if p.name == "extractive" && p.kind != ProviderKind::Extractive {
                return Err(self.invalid(
                    format!("providers[{i}].name"),
                    "\"extractive\" is the built-in extractive answerer",
                ));
            }
        }
        for (i, name) in self.routing.chain.iter().enumerate() {
            if name != "extractive" && !pnames.contains(name.as_str()) {
                return Err(self.invalid(
                    format!("routing.chain[{i}]"),
                    format!("no provider named {name:?}"),
                ));
            }
        }
        Ok(())
    }

    /// Resolves a path from the file against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn index_path(&self) -> PathBuf {
        self.resolve(&self.index.path)
    }

    pub fn principal(&self, name: &str) -> Option<&PrincipalConfig> {
        self.principals.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
