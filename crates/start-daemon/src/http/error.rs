//! Replies that are not a run's result: a request the server will not run, in FastAPI's shape
//! (`{"detail": "..."}`) so that SandboxFusion's clients show the sentence.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refusal: an HTTP status and a sentence saying what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    /// The status: 4xx for the request, 503 while shutting down, 504 past the budget.
    pub status: StatusCode,
    /// What went wrong.
    pub detail: String,
    /// The error kind counted in `/metrics`.
    pub kind: &'static str,
}

impl ApiError {
    /// A well-formed request with a value this server refuses (422, as FastAPI's validation).
    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: detail.into(),
            kind: "invalid",
        }
    }

    /// A body that is not JSON (400).
    pub fn bad_json(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
            kind: "bad_json",
        }
    }

    /// A body over the cap (413).
    pub fn too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: format!("the request body is over {limit} bytes (--http-max-body-bytes)"),
            kind: "too_large",
        }
    }

    /// A body that did not arrive in time (408).
    pub fn slow_body() -> Self {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            detail: "the request body did not arrive in time (--http-body-timeout)".into(),
            kind: "slow_body",
        }
    }

    /// No answer within the request's budget (504: verl retries exactly these).
    pub fn budget(budget: std::time::Duration) -> Self {
        ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            detail: format!(
                "no worker could answer within the request's budget of {:.1} s \
                 (compile_timeout + run_timeout + margin); retry, or add workers",
                budget.as_secs_f64()
            ),
            kind: "budget",
        }
    }

    /// The server is shutting down (503).
    pub fn shutting_down() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: "startd is shutting down; retry on another replica".into(),
            kind: "shutting_down",
        }
    }

    /// A missing or wrong bearer token (401).
    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            detail: "a valid `Authorization: Bearer <token>` header is required".into(),
            kind: "unauthorized",
        }
    }

    /// No such route (404).
    pub fn not_found(path: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            detail: format!(
                "no route {path:?}; this server has /run_code, /run_jupyter, /v1/ping, \
                 /health and /metrics"
            ),
            kind: "not_found",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "detail": self.detail })),
        )
            .into_response();
        r.extensions_mut().insert(ErrorKindTag(self.kind));
        if self.status == StatusCode::UNAUTHORIZED
            && let Ok(v) = axum::http::HeaderValue::from_str("Bearer")
        {
            r.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// Carried on a refusal's response so that the metrics layer counts it by kind.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKindTag(pub &'static str);
