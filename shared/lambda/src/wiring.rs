//! Building the core and its adapters once per execution environment.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pj_aws::{AwsContext, DynamoStore, QueueUrls, SqsQueue};
#[cfg(feature = "artifacts")]
use pj_core::artifacts::ArtifactStore;
use pj_core::create::RepoPolicy;
use pj_core::engine::{Feed, Observer};
use pj_core::messages::MessageStore;
use pj_core::ports::{
    LogStore, QueueName, QueueSender, SecretSource, Secrets, StaticSecrets, TaskStore,
};
use pj_core::time::{Clock, SystemClock};
use pj_core::{Engine, Settings, Task};
use pj_metrics::Metrics;

use crate::config::CoreConfig;

/// Emits the product metrics (EMF lines) after every stored change of a task.
pub struct MetricsObserver<W: Write + Send = io::Stdout> {
    metrics: Metrics<W>,
}

impl MetricsObserver<io::Stdout> {
    /// Writes to stdout, which Lambda ships to CloudWatch Logs.
    pub fn stdout(namespace: &str, function: &str) -> Self {
        MetricsObserver {
            metrics: Metrics::new(namespace, function),
        }
    }
}

impl<W: Write + Send> MetricsObserver<W> {
    pub fn with_writer(namespace: &str, function: &str, out: W) -> Self {
        MetricsObserver {
            metrics: Metrics::with_writer(namespace, function, out),
        }
    }
}

impl<W: Write + Send> Observer for MetricsObserver<W> {
    fn created(&self, task: &Task) {
        // A lost metric line is a lost data point; it never fails the request.
        if let Err(e) = self.metrics.record_created(task) {
            tracing::warn!(task_id = %task.id, error = %e, "could not write the metrics of a new task");
        }
    }

    fn changed(&self, before: &Task, after: &Task) {
        if let Err(e) = self.metrics.record_transition(before, after) {
            tracing::warn!(task_id = %after.id, error = %e, "could not write the metrics of a change");
        }
    }
}

/// A sender for functions that send no messages (`log-ingest`, `log-stream`): their role
/// holds no `sqs:SendMessage`, and no use case they run asks for one.
pub struct NoQueue;

#[async_trait]
impl QueueSender for NoQueue {
    async fn send(&self, queue: QueueName, _body: &str, _delay: Duration) -> anyhow::Result<()> {
        anyhow::bail!(
            "this function has no queues; a message for the {} queue was not sent",
            queue.as_str()
        )
    }
}

/// Secrets for functions that read none (`log-stream`).
pub fn no_secrets() -> Arc<dyn SecretSource> {
    Arc::new(StaticSecrets(Arc::new(Secrets::default())))
}

/// What one function builds once in `main` and every handler shares: the AWS clients, the
/// store, the clock and the metrics observer.
#[derive(Clone)]
pub struct Wiring {
    pub aws: AwsContext,
    pub core: CoreConfig,
    pub store: Arc<DynamoStore>,
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn Observer>,
}

impl Wiring {
    /// Loads the AWS configuration from the environment (honouring `AWS_ENDPOINT_URL`) and
    /// builds the store on `PJ_TABLE_NAME`; metrics go to stdout as `function`.
    pub async fn from_env(core: CoreConfig, function: &str) -> Wiring {
        let aws = AwsContext::from_env().await;
        Wiring::new(aws, core, function)
    }

    /// The same on a context already made (an emulator's, in tests).
    pub fn new(aws: AwsContext, core: CoreConfig, function: &str) -> Wiring {
        let observer = Arc::new(MetricsObserver::stdout(&core.metrics_namespace, function));
        Wiring {
            store: Arc::new(aws.dynamo_store(core.table.clone())),
            aws,
            core,
            clock: Arc::new(SystemClock),
            observer,
        }
    }

    /// The core's settings; `public_url` and `email_from` only where the function has them
    /// (`dispatch` and `notify`).
    pub fn settings(&self, public_url: Option<&str>, email_from: Option<&str>) -> Settings {
        self.core
            .shared
            .settings(public_url, email_from, RepoPolicy::HttpsOnly)
    }

    /// The queues at `urls`.
    pub fn queues(&self, urls: QueueUrls) -> Arc<SqsQueue> {
        Arc::new(self.aws.sqs_queue(urls))
    }

    /// The engine: this function's store, `queue` (or [`NoQueue`]), the metrics observer.
    pub fn engine(&self, queue: Option<Arc<dyn QueueSender>>, settings: Settings) -> Engine {
        Engine {
            store: self.store.clone() as Arc<dyn TaskStore>,
            queue: queue.unwrap_or_else(|| Arc::new(NoQueue)),
            clock: self.clock.clone(),
            feed: Feed::default(),
            settings: Arc::new(settings),
            observer: Some(self.observer.clone()),
        }
    }

    /// The log store (the same table).
    pub fn logs(&self) -> Arc<dyn LogStore> {
        self.store.clone()
    }

    /// The outbound message store (the same table).
    pub fn messages(&self) -> Arc<dyn MessageStore> {
        self.store.clone()
    }

    /// The artifact store: records on the table, bytes in `bucket` (`PJ_ARTIFACTS_BUCKET`).
    #[cfg(feature = "artifacts")]
    pub fn artifacts(&self, bucket: &str) -> Arc<dyn ArtifactStore> {
        Arc::new(self.aws.artifact_store(self.core.table.clone(), bucket))
    }

    /// The deployment's secrets from Secrets Manager, cached per execution environment.
    pub fn secrets(&self, secret_id: &str) -> Arc<dyn SecretSource> {
        Arc::new(self.aws.secrets_source(secret_id))
    }
}
