//! What each function runs, built once in its `main` from its configuration: the HTTP
//! functions' routers and the event handlers of the others. The function crates only read
//! their configuration, call these, and hand the result to the runtime; the tests call the
//! same builders against the emulator.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use pj_aws::QueueUrls;
use pj_core::ports::{Mailer, QueueConsumer, QueueSender, Runner, SecretSource};
use pj_core::worker::{Dispatcher, Notifier, SweepReport, Sweeper};
use serde::Serialize;
use tracing::Instrument;

use crate::sqs::QueueWorker;
use crate::wiring::Wiring;

#[cfg(feature = "http")]
pub use crate::routers::{STREAM_DEADLINE_MARGIN, api, log_ingest, log_stream, webhook};

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
