//! The one mapping from errors to HTTP responses.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use pj_core::AppError;
use serde_json::json;

/// An error on its way out: always `{"error": {"code", "message", "field"?}}`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::NotFound | AppError::Missing(_) => StatusCode::NOT_FOUND,
            AppError::Validation(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.0.code();
        let body = match &self.0 {
            AppError::Validation(v) => json!({"error": {
                "code": code, "message": format!("{}: {}", v.field, v.message), "field": v.field,
            }}),
            AppError::Internal(e) => {
                // The log says everything; the caller learns nothing about internals.
                tracing::error!(error = format!("{e:#}"), "internal error");
                json!({"error": {"code": code, "message": "something went wrong on our side; try again later"}})
            }
            other => json!({"error": {"code": code, "message": other.to_string()}}),
        };
        let mut response = (status, Json(body)).into_response();
        if let AppError::RateLimited { retry_after } = &self.0 {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
