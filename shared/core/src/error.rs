//! The errors of the use cases. One mapping to HTTP lives in the HTTP layer.

use std::time::Duration;

/// Input that does not parse: names the field and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way a use case can fail, as its caller should see it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("task not found")]
    NotFound,
    /// Something else of a task the caller may see is not there (an artifact); says what.
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    /// Everything else. The message is for the log only; callers see a generic text.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict(message.into())
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation(ValidationError::new(field, message))
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized(_) => "unauthorized",
            AppError::NotFound | AppError::Missing(_) => "not_found",
            AppError::Validation(_) => "validation_failed",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Internal(_) => "internal",
        }
    }
}
