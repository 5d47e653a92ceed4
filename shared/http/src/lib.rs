//! The HTTP API of Pithy Jaunt as one axum router: users' endpoints, the runners' callbacks
//! and the log stream. `pj serve` serves it; the Lambda functions run it through `lambda_http`.
//! `pj serve` also mounts [`metrics_router`] (`GET /metrics`). The users' group carries the web
//! page ([`web`]).

pub mod auth;
mod error;
mod metrics;
mod openapi;
mod routes;
pub mod web;

pub use auth::{Authenticator, GatewayClaims};
pub use error::ApiError;
pub use metrics::{MetricsState, metrics_router};
pub use routes::{AppState, RouteGroup, openapi, router, routes};
pub use web::PageConfig;
