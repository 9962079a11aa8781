//! JSON errors of the HTTP API: `{"error":{"code","message"}}` with the right status, and never a
//! stack trace, a secret or a contact's text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use helpline_router::RouterError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in first (POST /api/session)",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not do this",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<RouterError> for ApiError {
    fn from(e: RouterError) -> Self {
        match e {
            RouterError::Refused("forbidden", m) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
            }
            RouterError::Refused(code, m) => ApiError::new(StatusCode::BAD_REQUEST, code, m),
            RouterError::UnknownConversation => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such conversation")
            }
            RouterError::Ended => {
                ApiError::new(StatusCode::CONFLICT, "ended", "the conversation is over")
            }
            RouterError::Store(err) => {
                tracing::warn!(error = %err, "request failed on Redis");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable; try again shortly",
                )
            }
            RouterError::Vault(_) | RouterError::Setup(_) => {
                tracing::error!(error = %e, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}
