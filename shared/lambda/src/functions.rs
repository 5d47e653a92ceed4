//! What each function runs, built once in its `main` from its configuration: the HTTP
//! functions' routers and the event handlers of the others. The function crates only read
//! their configuration, call these, and hand the result to the runtime; the tests call the
//! same builders against the emulator.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use axum::Router;
use pj_aws::QueueUrls;
use pj_core::TaskApi;
use pj_core::ports::{Mailer, QueueConsumer, QueueSender, Runner, SecretSource};
use pj_core::ratelimit::RateLimiter;
use pj_core::worker::{Dispatcher, Notifier, SweepReport, Sweeper};
use pj_http::{AppState, Authenticator, RouteGroup};
use serde::Serialize;
use tracing::Instrument;

use crate::http::{end_streams_before_deadline, with_gateway_claims};
use crate::sqs::QueueWorker;
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
    // Only `POST /tasks` is rate limited; the runners' routes never consult it.
    RateLimiter::new(60, 20)
}

/// `api`: the users' routes. API Gateway's JWT authorizer verified the caller; the user is the
/// authorizer's `sub` and `email`.
pub fn api(wiring: &Wiring, queues: QueueUrls) -> Router {
    let queue: Arc<dyn QueueSender> = wiring.queues(queues);
    let engine = wiring.engine(Some(queue), wiring.settings(None, None));
    let api = TaskApi::new(
        engine,
        wiring.logs(),
        no_secrets(),
        wiring.core.shared.rate_limits.limiter(),
    );
    let auth = Authenticator::default().trusting_gateway();
    with_gateway_claims(router(api, auth, Duration::from_secs(1), RouteGroup::Users))
}

/// `webhook`: the runners' signed events.
pub fn webhook(wiring: &Wiring, queues: QueueUrls, secret_id: &str) -> Router {
    let queue: Arc<dyn QueueSender> = wiring.queues(queues);
    let engine = wiring.engine(Some(queue), wiring.settings(None, None));
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

/// `dispatch`: starts and stops runners.
pub fn dispatch(
    wiring: &Wiring,
    queues: QueueUrls,
    secrets: Arc<dyn SecretSource>,
    public_url: &str,
    runner: Arc<dyn Runner>,
) -> QueueWorker<Dispatcher> {
    let queue = wiring.queues(queues);
    let engine = wiring.engine(
        Some(queue.clone() as Arc<dyn QueueSender>),
        wiring.settings(Some(public_url), None),
    );
    let dispatcher = Dispatcher::new(engine, runner, secrets);
    QueueWorker::new(dispatcher, queue as Arc<dyn QueueConsumer>)
}

/// `notify`: sends completion email through SES.
pub fn notify(
    wiring: &Wiring,
    queues: QueueUrls,
    public_url: &str,
    email_from: &str,
) -> QueueWorker<Notifier> {
    let queue = wiring.queues(queues);
    let engine = wiring.engine(
        Some(queue.clone() as Arc<dyn QueueSender>),
        wiring.settings(Some(public_url), Some(email_from)),
    );
    let mailer: Arc<dyn Mailer> = Arc::new(wiring.aws.ses_mailer());
    QueueWorker::new(Notifier { engine, mailer }, queue as Arc<dyn QueueConsumer>)
}

/// `sweeper`: deadlines, lost dispatches, due schedules, emails not sent.
pub fn sweeper(wiring: &Wiring, queues: QueueUrls) -> Sweeper {
    let queue: Arc<dyn QueueSender> = wiring.queues(queues);
    Sweeper {
        engine: wiring.engine(Some(queue), wiring.settings(None, None)),
        logs: wiring.logs(),
    }
}

/// What a sweep answers (and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    pub looked_at: usize,
    pub changed: usize,
    pub purged: u64,
}

impl From<SweepReport> for SweepSummary {
    fn from(r: SweepReport) -> Self {
        SweepSummary {
            looked_at: r.looked_at,
            changed: r.changed,
            purged: r.purged,
        }
    }
}

/// One scheduled sweep. A failed sweep is an error of the invocation (the schedule does not
/// retry it; the next one comes within a minute).
pub async fn sweep(
    sweeper: &Sweeper,
    event: &EventBridgeEvent<serde_json::Value>,
) -> anyhow::Result<SweepSummary> {
    let span = tracing::info_span!(
        "sweep",
        event_id = event.id.as_deref().unwrap_or(""),
        scheduled_at = event.time.map(|t| t.to_rfc3339()).unwrap_or_default(),
    );
    async {
        let report = SweepSummary::from(sweeper.sweep().await?);
        tracing::info!(
            looked_at = report.looked_at,
            changed = report.changed,
            purged = report.purged,
            "sweep done"
        );
        Ok(report)
    }
    .instrument(span)
    .await
}
