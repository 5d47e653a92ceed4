//! The HTTP functions' routers (`api`, `webhook`, `log-ingest`, `log-stream`): each mounts its
//! own group of `pj_http`'s routes. Built only with the `http` feature, so the queue and
//! schedule functions link no HTTP framework; `api` and `webhook` also need `artifacts` (the S3
//! client), which `log-ingest` and `log-stream` do without.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
#[cfg(feature = "artifacts")]
use pj_aws::QueueUrls;
use pj_core::TaskApi;
#[cfg(feature = "artifacts")]
use pj_core::ports::QueueSender;
use pj_core::ratelimit::{DEFAULT_BURST, DEFAULT_PER_MINUTE, RateLimiter};
#[cfg(feature = "artifacts")]
use pj_http::PageConfig;
use pj_http::{AppState, Authenticator, RouteGroup};

use crate::http::end_streams_before_deadline;
#[cfg(feature = "artifacts")]
use crate::http::with_gateway_claims;
use crate::wiring::{Wiring, no_secrets};

/// How long before the invocation's deadline the log stream ends its response.
pub const STREAM_DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// The function's own routes only: API Gateway sends each function only its routes, and a
/// function invoked some other way answers anything else with the contract's `404`.
fn router(api: TaskApi, auth: Authenticator, stream_poll: Duration, group: RouteGroup) -> Router {
    let state = AppState {
        api: Arc::new(api),
        auth,
        stream_poll,
    };
    pj_http::routes(Arc::new(state), &[group])
}

fn webhook_limiter() -> RateLimiter {
    // Only users' changes are rate limited; the runners' routes never consult it.
    RateLimiter::new(DEFAULT_PER_MINUTE, DEFAULT_BURST)
}

/// `api`: the users' routes and the web page. API Gateway's JWT authorizer verified the caller;
/// the user is the authorizer's `sub` and `email`. The master secret (`secret_id`) seals the
/// credentials in a new task's config before it is stored; the artifacts are served from
/// `artifacts_bucket`; the page is told where the log stream is by `page`.
#[cfg(feature = "artifacts")]
pub fn api(
    wiring: &Wiring,
    queues: QueueUrls,
    secret_id: &str,
    artifacts_bucket: &str,
    page: PageConfig,
) -> Router {
    let queue: Arc<dyn QueueSender> = wiring.queues(queues);
    let engine = wiring.engine(Some(queue), wiring.settings(None, None));
    let api = TaskApi::new(
        engine,
        wiring.logs(),
        wiring.secrets(secret_id),
        wiring.core.shared.rate_limits.limiter(),
    )
    .with_messages(wiring.messages())
    .with_artifacts(wiring.artifacts(artifacts_bucket));
    let auth = Authenticator::default().trusting_gateway();
    page.layer(with_gateway_claims(router(
        api,
        auth,
        Duration::from_secs(1),
        RouteGroup::Users,
    )))
}

/// `webhook`: the runners' signed events and their artifacts, stored in `artifacts_bucket`.
#[cfg(feature = "artifacts")]
pub fn webhook(
    wiring: &Wiring,
    queues: QueueUrls,
    secret_id: &str,
    artifacts_bucket: &str,
) -> Router {
    let queue: Arc<dyn QueueSender> = wiring.queues(queues);
    let engine = wiring.engine(Some(queue), wiring.settings(None, None));
    let api = TaskApi::new(
        engine,
        wiring.logs(),
        wiring.secrets(secret_id),
        webhook_limiter(),
    )
    .with_artifacts(wiring.artifacts(artifacts_bucket));
    router(
        api,
        Authenticator::default(),
        Duration::from_secs(1),
        RouteGroup::RunnerEvents,
    )
}

/// `log-ingest`: the runners' signed log batches.
pub fn log_ingest(wiring: &Wiring, secret_id: &str) -> Router {
    let engine = wiring.engine(None, wiring.settings(None, None));
    let api = TaskApi::new(
        engine,
        wiring.logs(),
        wiring.secrets(secret_id),
        webhook_limiter(),
    );
    router(
        api,
        Authenticator::default(),
        Duration::from_secs(1),
        RouteGroup::RunnerLogs,
    )
}

/// `log-stream`: `GET /tasks/{id}/logs/stream` as server-sent events, for callers `auth`
/// accepts, polling the table every `poll`, ended before the invocation's deadline.
pub fn log_stream(wiring: &Wiring, auth: Authenticator, poll: Duration) -> Router {
    let engine = wiring.engine(None, wiring.settings(None, None));
    let api = TaskApi::new(engine, wiring.logs(), no_secrets(), webhook_limiter());
    end_streams_before_deadline(
        router(api, auth, poll, RouteGroup::LogStream),
        STREAM_DEADLINE_MARGIN,
    )
}
