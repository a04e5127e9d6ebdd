//! The one error type of the HTTP layer and its mapping to statuses.
//!
//! Every failure a handler, an extractor or a middleware can meet becomes an
//! [`ApiError`]; its status and stable `code` are decided here and nowhere
//! else, and the body is always `{"error": {"code": …, "message": …}}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::generate::GenerateError;
use crate::retrieve::RetrieveError;
use crate::store::pg::PgError;
use crate::store::StoreError;

/// Errors of the HTTP layer, each with its status and stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// The same answer for a missing, malformed, unknown or expired credential.
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large (limit {0} bytes)")]
    TooLarge(usize),
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    #[error("{message}")]
    Budget { message: String, retry_after_s: u64 },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the server is at its concurrency limit; retry shortly")]
    Overloaded,
    #[error(
        "too many requests of yours are in flight at once (limit {0}); retry when one has finished"
    )]
    TooManyConcurrent(usize),
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("the request took longer than {0} s")]
    Timeout(u64),
    #[error("internal error")]
    Internal(String),
}

/// The error code of a response, for the audit log and the access log.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Budget { .. } => (StatusCode::TOO_MANY_REQUESTS, "budget_exceeded"),
            ApiError::Refused(_) => (StatusCode::BAD_REQUEST, "query_refused"),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "provider_error"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::TooManyConcurrent(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "concurrency_limited")
            }
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The JSON body (also sent as an SSE `error` event mid-stream).
    pub fn body(&self) -> serde_json::Value {
        let (_, code) = self.status_code();
        serde_json::json!({"error": {"code": code, "message": self.to_string()}})
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let retry = match &self {
            ApiError::RateLimited { retry_after_s, .. }
            | ApiError::Budget { retry_after_s, .. } => Some(*retry_after_s),
            ApiError::Overloaded | ApiError::TooManyConcurrent(_) => Some(1),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(s) = retry {
            if let Ok(v) = HeaderValue::from_str(&s.max(1).to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp.extensions_mut().insert(ErrorCode(code));
        resp
    }
}

impl From<PgError> for ApiError {
    fn from(e: PgError) -> Self {
        match e {
            // The message names the database's host: the log keeps it.
            PgError::Connect { .. } | PgError::Stopped => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<RetrieveError> for ApiError {
    fn from(e: RetrieveError) -> Self {
        match e {
            RetrieveError::Store(StoreError::Busy(m)) => ApiError::Unavailable(m),
            RetrieveError::Pg(p) => p.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<GenerateError> for ApiError {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::QueryRefused(_) => ApiError::Refused(e.to_string()),
            GenerateError::NoLocalProvider(_) => ApiError::Unavailable(e.to_string()),
            GenerateError::Budget(b) => ApiError::Budget {
                message: b.to_string(),
                retry_after_s: crate::gateway::seconds_to_next_month(),
            },
            GenerateError::AllFailed { .. } => ApiError::Upstream(e.to_string()),
            GenerateError::Config(m) => ApiError::Internal(m),
        }
    }
}

/// JSON body extractor whose failures are this API's errors, not axum's text.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(0);
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge(limit)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest(
                "expected a JSON body with `Content-Type: application/json`".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// The body limit of the route (for the 413 message).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);
