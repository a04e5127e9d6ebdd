//! The one error of the use cases. Each front end maps it once: the HTTP
//! server to a status (`server::error`), MCP to a JSON-RPC error or a tool
//! error (`mcp`), the CLI to a message and an exit code. [`Error::code`] is
//! the stable name every front end shows.

use crate::gateway::{BudgetExceeded, RateLimited};
use crate::generate::GenerateError;
use crate::ingest::{IngestError, UploadError};
use crate::retrieve::RetrieveError;
use crate::store::pg::PgError;
use crate::store::StoreError;

/// The one error of the use cases, mapped once per front end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or out of range (the message says why).
    #[error("{0}")]
    BadRequest(String),
    /// No valid credential (the same answer whatever was wrong with it).
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// The caller lacks a role or may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there that the caller may see.
    #[error("{0}")]
    NotFound(String),
    /// A per-minute limit is reached.
    #[error("{message}")]
    RateLimited {
        /// What was refused and why.
        message: String,
        /// Seconds until a request would be admitted.
        retry_after_s: u64,
    },
    /// A monthly budget is spent.
    #[error("{message}")]
    Budget {
        /// What was refused and why.
        message: String,
        /// Seconds until a request would be admitted.
        retry_after_s: u64,
    },
    /// The question looks like a prompt injection and the policy refuses it.
    #[error("{0}")]
    Refused(String),
    /// Every provider failed (the message names each one's kind of failure).
    #[error("{0}")]
    Upstream(String),
    /// Temporarily impossible: a writer holds the index, the database is
    /// down, no local provider for confidential context.
    #[error("{0}")]
    Unavailable(String),
    /// The agents are stopped, or a caller's agent limits are spent.
    #[error("{0}")]
    Stopped(String),
    /// A bug or an unexpected failure; the message is for the log only.
    #[error("internal error")]
    Internal(String),
}

/// Why the service could not start: for the operator, in full.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway's books could not be opened.
    #[error("the gateway's books: {0}")]
    Ledger(#[from] crate::gateway::ledger::LedgerError),
    /// The provider configuration cannot be used.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The reranker could not be loaded.
    #[error("retrieve.reranker: {0}")]
    Reranker(String),
    /// The dictionary could not be read.
    #[error("retrieve.dictionary: {0}")]
    Dictionary(#[from] crate::retrieve::translate::TranslateError),
}

impl Error {
    /// The whole message, internal details included: for the operator's
    /// own front end (the CLI) and logs, never for a remote client.
    pub fn detail(&self) -> String {
        match self {
            Error::Internal(m) => m.clone(),
            other => other.to_string(),
        }
    }

    /// The stable code of the error (the HTTP API's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::RateLimited { .. } => "rate_limited",
            Error::Budget { .. } => "budget_exceeded",
            Error::Refused(_) => "query_refused",
            Error::Upstream(_) => "provider_error",
            Error::Unavailable(_) => "unavailable",
            Error::Stopped(_) => "agents_stopped",
            Error::Internal(_) => "internal",
        }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e {
            // The message names the database's host: the log keeps it.
            PgError::Connect { .. } | PgError::Stopped => {
                tracing::error!(error = %e, "database unavailable");
                Error::Unavailable("the database is unavailable; retry later".into())
            }
            PgError::Busy(_) => {
                tracing::warn!(error = %e, "no database connection in time");
                Error::Unavailable("the database is busy; retry later".into())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy(m) => Error::Unavailable(m),
            s @ StoreError::Locked { .. } => Error::Unavailable(s.to_string()),
            StoreError::Db(p) => p.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<RetrieveError> for Error {
    fn from(e: RetrieveError) -> Self {
        match e {
            RetrieveError::Store(s) => s.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<GenerateError> for Error {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::QueryRefused(_) => Error::Refused(e.to_string()),
            GenerateError::NoLocalProvider(_) => Error::Unavailable(e.to_string()),
            GenerateError::Budget(b) => b.into(),
            GenerateError::AllFailed { .. } => Error::Upstream(e.to_string()),
            GenerateError::Config(m) => Error::Internal(m),
        }
    }
}

impl From<BudgetExceeded> for Error {
    fn from(b: BudgetExceeded) -> Self {
        Error::Budget {
            message: b.to_string(),
            retry_after_s: crate::gateway::seconds_to_next_month(),
        }
    }
}

impl From<RateLimited> for Error {
    fn from(e: RateLimited) -> Self {
        Error::RateLimited {
            message: e.to_string(),
            retry_after_s: e.retry_after.as_secs_f64().ceil() as u64,
        }
    }
}

impl From<UploadError> for Error {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::BadPath(m) | UploadError::Unreadable(m) => Error::BadRequest(m),
            UploadError::Ingest(IngestError::Store(s)) => s.into(),
            UploadError::Ingest(other) => Error::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("a worker task failed: {e}"))
    }
}

impl From<crate::gateway::audit::AuditError> for Error {
    fn from(e: crate::gateway::audit::AuditError) -> Self {
        // Paths and database messages are for the operator's log.
        Error::Internal(format!("audit log: {e}"))
    }
}
