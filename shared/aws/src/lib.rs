//! The AWS adapters of the serverless deployment: the task, log and outbound message store on
//! one DynamoDB table, the artifacts' bytes in S3 (feature `s3`) beside their records on that
//! table, the queues on SQS, email through SES v2, the deployment's secrets from
//! Secrets Manager, and counters of every request the SDK sends.
//!
//! Build one [`AwsContext`] per execution environment (in a Lambda function's `main`): it loads
//! the SDK configuration once (honouring `AWS_ENDPOINT_URL`, so the same code runs against an
//! emulator) and gives every client the counting interceptor, so all adapters built from it
//! share one [`AwsMetrics`]. Then build each adapter once from the context and the names of its
//! resources, and pass them by reference into the handlers.
//!
//! ```no_run
//! # async fn wiring() -> anyhow::Result<()> {
//! use pj_aws::{AwsContext, QueueUrls};
//! let aws = AwsContext::from_env().await;
//! let store = aws.dynamo_store("pj-main");
//! let queues = aws.sqs_queue(QueueUrls {
//!     dispatch: "https://sqs.eu-west-1.amazonaws.com/123456789012/pj-dispatch".into(),
//!     notify: "https://sqs.eu-west-1.amazonaws.com/123456789012/pj-notify".into(),
//!     tasks: "https://sqs.eu-west-1.amazonaws.com/123456789012/pj-tasks".into(),
//! });
//! let mailer = aws.ses_mailer();
//! let secrets = aws.secrets_source("pj/secrets");
//! # #[cfg(feature = "s3")]
//! let artifacts = aws.artifact_store("pj-main", "pj-artifacts");
//! # let _ = (store, queues, mailer, secrets);
//! # Ok(()) }
//! ```

#[cfg(feature = "s3")]
mod artifacts;
mod dynamo;
mod metrics;
#[cfg(feature = "provision")]
pub mod provision;
mod secrets;
mod ses;
mod sqs;

use aws_config::{BehaviorVersion, SdkConfig};

#[cfg(feature = "s3")]
pub use artifacts::S3ArtifactStore;
pub use dynamo::{DynamoStore, GSI_OWNER, GSI_SWEEP, MAX_TASK_ITEM_BYTES, SWEEP_SHARDS};
pub use metrics::{AwsMetrics, CountingInterceptor, MetricsSnapshot, OperationStats, service};
pub use secrets::{DEFAULT_MAX_STALE, DEFAULT_TTL, SecretsManagerSource};
pub use ses::SesMailer;
pub use sqs::{QueueUrls, SqsQueue};

/// The SDK configuration and the clients (four, and S3 with the `s3` feature), each with the counting interceptor. Cheap to
/// clone: clones share the clients and the counters.
#[derive(Debug, Clone)]
pub struct AwsContext {
    config: SdkConfig,
    metrics: AwsMetrics,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    ses: aws_sdk_sesv2::Client,
    secrets: aws_sdk_secretsmanager::Client,
    #[cfg(feature = "s3")]
    s3: aws_sdk_s3::Client,
}

impl AwsContext {
    /// Loads the configuration from the environment (region, credentials, and
    /// `AWS_ENDPOINT_URL` when set), as a Lambda function does in `main`.
    pub async fn from_env() -> AwsContext {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        AwsContext::from_sdk_config(&config)
    }

    /// Like [`AwsContext::from_env`], but every client sends to `endpoint_url` (an emulator),
    /// counting its requests: for tests and benchmarks.
    pub async fn with_endpoint(endpoint_url: &str) -> AwsContext {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint_url)
            .load()
            .await;
        AwsContext::counting(&config)
    }

    /// Builds the clients from a loaded configuration, each with its own counting interceptor
    /// feeding one fresh [`AwsMetrics`].
    pub fn from_sdk_config(config: &SdkConfig) -> AwsContext {
        AwsContext::build(config, None)
    }

    /// Clients that count every request and estimate the write units of every write, for
    /// benchmarks and tests ([`AwsContext::metrics`]); production clients do not pay for it.
    pub fn counting(config: &SdkConfig) -> AwsContext {
        AwsContext::build(config, Some(AwsMetrics::default()))
    }

    fn build(config: &SdkConfig, counting: Option<AwsMetrics>) -> AwsContext {
        let counter = counting.as_ref().map(AwsMetrics::interceptor);
        macro_rules! client {
            ($sdk:ident) => {{
                let mut builder = $sdk::config::Builder::from(config);
                if let Some(counter) = &counter {
                    builder = builder.interceptor(counter.clone());
                }
                $sdk::Client::from_conf(builder.build())
            }};
        }
        AwsContext {
            config: config.clone(),
            metrics: counting.unwrap_or_default(),
            dynamodb: client!(aws_sdk_dynamodb),
            sqs: client!(aws_sdk_sqs),
            ses: client!(aws_sdk_sesv2),
            secrets: client!(aws_sdk_secretsmanager),
            #[cfg(feature = "s3")]
            s3: {
                let mut builder = aws_sdk_s3::config::Builder::from(config);
                // An endpoint URL is an emulator (moto) or a proxy on a plain host and port,
                // where the bucket cannot be a subdomain: address it in the path there. AWS
                // itself keeps its default, virtual-hosted addressing.
                if config.endpoint_url().is_some() {
                    builder = builder.force_path_style(true);
                }
                if let Some(counter) = &counter {
                    builder = builder.interceptor(counter.clone());
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            },
        }
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// The counters the clients of a [`AwsContext::counting`] context feed; always empty for
    /// production clients.
    pub fn metrics(&self) -> &AwsMetrics {
        &self.metrics
    }

    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    pub fn ses(&self) -> &aws_sdk_sesv2::Client {
        &self.ses
    }

    pub fn secrets_manager(&self) -> &aws_sdk_secretsmanager::Client {
        &self.secrets
    }

    #[cfg(feature = "s3")]
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// The artifact store: records on `table` (the store's table), bytes in `bucket` (made as
    /// `provision::create_bucket` makes it).
    #[cfg(feature = "s3")]
    pub fn artifact_store(
        &self,
        table: impl Into<String>,
        bucket: impl Into<String>,
    ) -> S3ArtifactStore {
        S3ArtifactStore::new(self.dynamo_store(table), self.s3.clone(), bucket)
    }

    /// The task, log and message store on `table` (laid out as `provision::create_table` makes
    /// it).
    pub fn dynamo_store(&self, table: impl Into<String>) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), table)
    }

    /// The dispatch, notify and tasks queues.
    pub fn sqs_queue(&self, urls: QueueUrls) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), urls)
    }

    /// The mailer; each email's `from` must be an identity verified in SES.
    pub fn ses_mailer(&self) -> SesMailer {
        SesMailer::new(self.ses.clone())
    }

    /// The secrets in the JSON secret `secret_id`, cached for [`DEFAULT_TTL`].
    pub fn secrets_source(&self, secret_id: impl Into<String>) -> SecretsManagerSource {
        SecretsManagerSource::new(self.secrets.clone(), secret_id)
    }
}
