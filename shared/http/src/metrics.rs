//! `GET /metrics`: the Prometheus text exposition of `pj serve`. A router of its own, so only
//! the deployment that wants it mounts it; the Lambda functions write EMF lines instead.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pj_core::AppError;
use pj_metrics::prometheus::{CONTENT_TYPE, Exporter};
use subtle::ConstantTimeEq;

use crate::auth::{bearer, digest};
use crate::error::ApiError;

/// What `GET /metrics` needs.
pub struct MetricsState {
    exporter: Arc<Exporter>,
    /// The SHA-256 of the token a scraper must send; `None`: open to whoever reaches the port.
    token: Option<[u8; 32]>,
}

impl MetricsState {
    /// Answers from `exporter`; with a `token`, only to `Authorization: Bearer <token>`.
    pub fn new(exporter: Arc<Exporter>, token: Option<&str>) -> Self {
        MetricsState {
            exporter,
            token: token.map(digest),
        }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), AppError> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        let given = digest(bearer(headers)?);
        // Digests of equal length, compared in constant time: the answer's timing tells
        // nothing about the token.
        if bool::from(given.ct_eq(want)) {
            Ok(())
        } else {
            Err(AppError::Unauthorized(
                "the metrics token is not valid".into(),
            ))
        }
    }
}

/// `GET /metrics` alone.
pub fn metrics_router(state: Arc<MetricsState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(crate::routes::no_route)
        .with_state(state)
}

async fn metrics(State(state): State<Arc<MetricsState>>, headers: HeaderMap) -> Response {
    if let Err(e) = state.check(&headers) {
        return ApiError(e).into_response();
    }
    let body = state.exporter.render().await;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
