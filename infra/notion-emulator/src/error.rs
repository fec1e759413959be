//! Notion's error objects.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

/// Notion's message for a 403 `restricted_resource` on an endpoint the integration's capabilities do not cover.
pub const INSUFFICIENT_PERMISSIONS: &str = "Insufficient permissions for this endpoint.";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    pub additional_data: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None, additional_data: None }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "validation_error", message)
    }

    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn invalid_url() -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_url", "Invalid request URL.")
    }

    pub fn not_found(kind: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "object_not_found",
            format!(
                "Could not find {kind} with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
            ),
        )
    }

    /// 403 `restricted_resource`: the integration lacks the capability (user information, comments) or permission.
    pub fn restricted(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "restricted_resource", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "API token is invalid.")
    }

    pub fn missing_version() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
        )
    }

    pub fn invalid_cursor(cursor: &str) -> ApiError {
        ApiError::validation(format!("The start_cursor provided is invalid: {cursor}"))
    }

    pub fn rate_limited(retry_after: u64, reason: &str) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "You have been rated limited. Please try again in a few minutes.",
        );
        e.retry_after = Some(retry_after.max(1));
        e.additional_data = Some(json!({ "rate_limit_reason": reason }));
        e
    }

    pub fn body(&self, request_id: &str) -> Value {
        let mut v = json!({
            "object": "error",
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        });
        if let Some(extra) = &self.additional_data {
            v["additional_data"] = extra.clone();
        }
        v
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = Uuid::new_v4().to_string();
        let body = self.body(&request_id);
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-notion-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
