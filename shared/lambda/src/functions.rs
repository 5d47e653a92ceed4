//! What each function runs, built once in its `main` from its configuration: the HTTP
//! functions' routers and the event handlers of the others. The function crates only read
//! their configuration, call these, and hand the result to the runtime; the tests call the
//! same builders against the emulator.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use pj_aws::QueueUrls;
#[cfg(feature = "outbound")]
use pj_core::artifacts::NoArtifactStore;
#[cfg(feature = "browsers")]
use pj_core::kinds::run::KindWorker;
use pj_core::ports::{QueueConsumer, QueueSender, Runner, SecretSource};
#[cfg(feature = "outbound")]
use pj_core::worker::Notifier;
use pj_core::worker::{Dispatcher, SweepReport, Sweeper};
use serde::Serialize;
use tracing::Instrument;

#[cfg(feature = "outbound")]
use crate::outbound::{HttpClients, courier};
use crate::sqs::QueueWorker;
use crate::wiring::Wiring;

#[cfg(feature = "http")]
pub use crate::routers::{STREAM_DEADLINE_MARGIN, log_ingest, log_stream};
#[cfg(all(feature = "http", feature = "artifacts"))]
pub use crate::routers::{api, webhook};

/// `dispatch`: starts and stops runners, and hands the attempts of the built-in kinds to the
/// tasks queue.
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

/// `notify`: the notices of attempts' outcomes (by default the completion email, through SES;
/// a task's `notify` channels) and the retries of outbound messages (`Deliver`).
#[cfg(feature = "outbound")]
pub fn notify(
    wiring: &Wiring,
    queues: QueueUrls,
    secrets: Arc<dyn SecretSource>,
    public_url: &str,
    email_from: &str,
) -> anyhow::Result<QueueWorker<Notifier>> {
    let queue = wiring.queues(queues);
    let engine = wiring.engine(
        Some(queue.clone() as Arc<dyn QueueSender>),
        wiring.settings(Some(public_url), Some(email_from)),
    );
    let clients = HttpClients::new(&engine.settings)?;
    let courier = courier(wiring, &engine, &clients, secrets);
    Ok(QueueWorker::new(
        Notifier { engine, courier },
        queue as Arc<dyn QueueConsumer>,
    ))
}

/// `tasks`: runs the attempts of the built-in kinds (`api_call`, `ghl_action`,
/// `notification`, `reminder`, `report`, and with a Browserbase project `browser_automation`
/// and `data_extraction`) that `dispatch` claimed. Screenshots go to `artifacts_bucket`
/// (`PJ_ARTIFACTS_BUCKET`). Async because the Browserbase key is read from the secret here,
/// once per execution environment ([`crate::browsers::browserbase_key`]).
#[cfg(feature = "browsers")]
pub async fn tasks(
    wiring: &Wiring,
    queues: QueueUrls,
    secrets: Arc<dyn SecretSource>,
    email_from: &str,
    artifacts_bucket: &str,
) -> anyhow::Result<QueueWorker<KindWorker>> {
    use crate::browsers;

    let queue = wiring.queues(queues);
    let engine = wiring.engine(
        Some(queue.clone() as Arc<dyn QueueSender>),
        wiring.settings(None, Some(email_from)),
    );
    let clients = HttpClients::new(&engine.settings)?;
    let courier = courier(wiring, &engine, &clients, secrets.clone());
    let key = browsers::browserbase_key(&wiring.core, secrets.as_ref()).await?;
    let browsers = browsers::browsers(&wiring.core, &engine.settings, key)?;
    let worker = KindWorker {
        logs: wiring.logs(),
        http: clients.http,
        service_http: clients.service_http,
        courier,
        messages: wiring.messages(),
        browsers,
        page_model: Some(browsers::page_model(&wiring.core, secrets.clone())),
        artifacts: wiring.artifacts(artifacts_bucket),
        secrets,
        engine,
    };
    Ok(QueueWorker::new(worker, queue as Arc<dyn QueueConsumer>))
}

/// `sweeper`: deadlines, lost dispatches, due schedules, notices not sent, outbound messages
/// whose retry is overdue.
#[cfg(feature = "outbound")]
pub fn sweeper(
    wiring: &Wiring,
    queues: QueueUrls,
    secrets: Arc<dyn SecretSource>,
    email_from: &str,
) -> anyhow::Result<Sweeper> {
    let queue: Arc<dyn QueueSender> = wiring.queues(queues);
    let engine = wiring.engine(Some(queue), wiring.settings(None, Some(email_from)));
    let clients = HttpClients::new(&engine.settings)?;
    let courier = courier(wiring, &engine, &clients, secrets);
    Ok(Sweeper {
        engine,
        logs: wiring.logs(),
        courier: Some(courier),
        // On AWS the table's TTL and the bucket's lifecycle rule expire artifacts (the S3 store
        // purges nothing), so the sweep needs no bucket, no S3 client and no S3 permission.
        artifacts: Arc::new(NoArtifactStore),
    })
}

/// What a sweep answers (and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    pub looked_at: usize,
    pub changed: usize,
    pub purged: u64,
    /// Outbound messages whose retry was overdue, tried.
    pub messages: usize,
}

impl From<SweepReport> for SweepSummary {
    fn from(r: SweepReport) -> Self {
        SweepSummary {
            looked_at: r.looked_at,
            changed: r.changed,
            purged: r.purged,
            messages: r.messages,
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
            messages = report.messages,
            "sweep done"
        );
        Ok(report)
    }
    .instrument(span)
    .await
}
