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

use crate::service::Error;

/// Errors of the HTTP layer: a use case's [`Error`], or one only HTTP has
/// (methods, body limits, admission control). Each gets its status and
/// stable code here and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use case failed.
    #[error(transparent)]
    Service(#[from] Error),
    /// The route does not take this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than the route's limit (bytes).
    #[error("request body too large (limit {0} bytes)")]
    TooLarge(usize),
    /// Every slot of the server is taken.
    #[error("the server is at its concurrency limit; retry shortly")]
    Overloaded,
    /// The caller has this many requests in flight already.
    #[error(
        "too many requests of yours are in flight at once (limit {0}); retry when one has finished"
    )]
    TooManyConcurrent(usize),
    /// The body did not arrive within this many seconds.
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// The request took longer than this many seconds.
    #[error("the request took longer than {0} s")]
    Timeout(u64),
}

/// The error code of a response, for the audit log and the access log.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    /// The HTTP status and the stable error code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        let status = match self {
            ApiError::Service(e) => match e {
                Error::BadRequest(_) | Error::Refused(_) => StatusCode::BAD_REQUEST,
                Error::Unauthorized => StatusCode::UNAUTHORIZED,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::RateLimited { .. } | Error::Budget { .. } => StatusCode::TOO_MANY_REQUESTS,
                Error::Upstream(_) => StatusCode::BAD_GATEWAY,
                // Stopped agents are a temporary refusal, as on MCP.
                Error::Unavailable(_) | Error::Stopped(_) => StatusCode::SERVICE_UNAVAILABLE,
                Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Overloaded | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyConcurrent(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        };
        let code = match self {
            ApiError::Service(Error::Stopped(_)) => "unavailable",
            ApiError::Service(e) => e.code(),
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Overloaded => "overloaded",
            ApiError::TooManyConcurrent(_) => "concurrency_limited",
            ApiError::BodyTimeout(_) => "request_timeout",
            ApiError::Timeout(_) => "timeout",
        };
        (status, code)
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
        if let ApiError::Service(Error::Internal(detail)) = &self {
            tracing::error!(%detail, "internal error");
        }
        let retry = match &self {
            ApiError::Service(
                Error::RateLimited { retry_after_s, .. } | Error::Budget { retry_after_s, .. },
            ) => Some(*retry_after_s),
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
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Error::BadRequest(
                "expected a JSON body with `Content-Type: application/json`".into(),
            )
            .into()),
            Err(e) => Err(Error::BadRequest(e.body_text()).into()),
        }
    }
}

/// The body limit of the route (for the 413 message).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);
