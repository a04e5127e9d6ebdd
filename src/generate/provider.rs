//! The seam to language models: one trait, implemented by the offline
//! extractive answerer and by the OpenAI-compatible and Anthropic clients.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Locality;
use crate::retrieve::translate::Senses;

/// One source as the provider sees it (already spotlighted and, for cloud
/// providers, with personal data masked).
#[derive(Clone, Debug)]
pub struct SourceText {
    /// The number the answer cites, `[n]`.
    pub n: usize,
    /// What the source is called in the prompt (document and page).
    pub label: String,
    /// The source's text.
    pub text: String,
}

/// What is asked of a provider.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The system prompt.
    pub system: String,
    /// The user turn: spotlighted sources and the question.
    pub user: String,
    /// The question alone, and the sources, for providers that work on
    /// structure rather than on a prompt (the extractive one).
    pub question: String,
    /// The sources that fit into the prompt.
    pub sources: Vec<SourceText>,
    /// The longest answer to ask for.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// What the question's words may be in the sources' other language,
    /// when the search translated them (for the offline answerer, which
    /// cannot translate; models that can ignore it). Never set on the
    /// masked request.
    pub senses: Option<Arc<Senses>>,
}

/// A finished answer from a provider.
#[derive(Clone, Debug, Default)]
pub struct Completion {
    /// The answer text.
    pub text: String,
    /// Prompt tokens (reported, or estimated).
    pub prompt_tokens: u32,
    /// Completion tokens (reported, or estimated).
    pub completion_tokens: u32,
    /// Whether the provider reported token usage (else it was estimated).
    pub usage_reported: bool,
    /// The model that answered.
    pub model: String,
}

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// When to try again, if the provider said.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The provider could not be reached.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The answer could not be read.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The provider is not usable as configured.
    #[error("not usable: {0}")]
    Config(String),
}

impl ProviderError {
    /// The kind of failure without the provider's message, URL or body:
    /// what a caller of hort may see (the whole error goes to the logs).
    pub fn public(&self) -> String {
        match self {
            ProviderError::Http { status, .. } => format!("HTTP {status}"),
            ProviderError::Timeout(d) => format!("no answer within {} s", d.as_secs()),
            ProviderError::Connect(_) => "connection failed".into(),
            ProviderError::Malformed(_) => "malformed response".into(),
            ProviderError::Config(_) => "not usable".into(),
        }
    }

    /// Worth trying the same provider again (after a pause).
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Http { status, .. } => {
                *status == 429 || *status == 408 || *status >= 500
            }
            ProviderError::Timeout(_) | ProviderError::Connect(_) => true,
            ProviderError::Malformed(_) | ProviderError::Config(_) => false,
        }
    }

    /// How long the provider asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A model behind an API that answers chat requests.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The name `routing.chain` uses.
    fn name(&self) -> &str;
    /// Where it runs.
    fn locality(&self) -> Locality;
    /// The model it asks for (part of the answer cache's key).
    fn model(&self) -> &str {
        ""
    }
    /// USD per 1000 input and output tokens.
    fn prices(&self) -> (f64, f64) {
        (0.0, 0.0)
    }
    /// One turn of a tool-using conversation (the workflow runner's loop):
    /// the model's text and the tools it asks for. Providers without native
    /// tool calling refuse.
    async fn chat_tools(
        &self,
        _system: &str,
        _turns: &[super::tools::Turn],
        _tools: &[super::tools::ToolSpec],
        _max_tokens: u32,
    ) -> Result<super::tools::Reply, ProviderError> {
        Err(ProviderError::Config(format!(
            "{} does not support tool calling",
            self.name()
        )))
    }
    /// Produces an answer. With `deltas`, text is also sent piece by piece
    /// as it is generated (streaming); the returned completion is the whole.
    async fn complete(
        &self,
        req: &ChatRequest,
        deltas: Option<&UnboundedSender<String>>,
    ) -> Result<Completion, ProviderError>;
}

/// Rough token count for providers that report none (about four characters
/// per token for English and German).
pub fn estimate_tokens(text: &str) -> u32 {
    (text.chars().count() as u32).div_ceil(4)
}
