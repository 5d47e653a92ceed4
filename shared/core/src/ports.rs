//! The ports: what the core asks of the world, split by capability.
//!
//! Adapters (SQLite, DynamoDB, SQS, SES, the local runner, GitHub Actions, Daytona) implement
//! these; one contract test suite per port runs against every implementation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ids::{Attempt, TaskId, UserId, WebhookId};
use crate::messages::MessageId;
use crate::signing::MasterSecret;
use crate::task::{RunnerKind, Task, TaskStatus};

/// An `Idempotency-Key` as stored: the first task created under it, and its request's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub owner: UserId,
    pub key: String,
    pub fingerprint: String,
    pub expires_at: DateTime<Utc>,
}

/// The result of [`TaskStore::create`].
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created,
    /// The key was used before with the same request: here is the first task.
    Existing(Box<Task>),
    /// The key was used before with another request.
    KeyConflict,
}

/// A `webhook-id` to remember in the same write as the change it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReceipt {
    pub id: WebhookId,
    pub expires_at: DateTime<Utc>,
}

/// The result of a compare-and-set write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The stored version was not the expected one: read again and redo.
    VersionConflict,
    /// The receipt's `webhook-id` was already recorded: the delivery is a duplicate.
    WebhookSeen,
}

/// Where a page of a user's tasks ends (newest first: created time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: DateTime<Utc>,
    pub id: TaskId,
}

/// Tasks, idempotency keys and webhook ids.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Stores a new task, atomically with its idempotency key when there is one.
    async fn create(
        &self,
        task: &Task,
        idempotency: Option<&IdempotencyRecord>,
    ) -> anyhow::Result<CreateOutcome>;

    async fn get(&self, id: &TaskId) -> anyhow::Result<Option<Task>>;

    /// A user's tasks, newest first, strictly after `after`.
    async fn list(
        &self,
        owner: &UserId,
        status: Option<TaskStatus>,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> anyhow::Result<Vec<Task>>;

    /// Writes `task` if the stored version is `expected_version`, recording `receipt` in the same
    /// atomic write. `task.version` must be `expected_version + 1`.
    async fn update(
        &self,
        task: &Task,
        expected_version: u64,
        receipt: Option<&WebhookReceipt>,
    ) -> anyhow::Result<WriteOutcome>;

    /// Whether a `webhook-id` was recorded and has not expired.
    async fn webhook_seen(&self, id: &WebhookId, now: DateTime<Utc>) -> anyhow::Result<bool>;

    /// Records a `webhook-id` that changed nothing. Returns false when it was already there.
    async fn remember_webhook(&self, receipt: &WebhookReceipt) -> anyhow::Result<bool>;

    /// Tasks whose `sweep_at` is at or before `now`, oldest first.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<Task>>;

    /// The tasks that may be under way (and some finished ones whose email is pending), at most
    /// `limit`: every task under way has a sweep time (its deadline or dispatch check), so all
    /// that are due before the far future are them.
    async fn under_way(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<Task>> {
        self.due(now + chrono::Duration::days(36_500), limit).await
    }

    /// Deletes expired idempotency keys, webhook ids and the like where the store does not
    /// expire them itself. Returns how many went.
    async fn purge_expired(&self, _now: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(0)
    }
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    System,
}

impl LogStream {
    pub const ALL: [LogStream; 3] = [LogStream::Stdout, LogStream::Stderr, LogStream::System];

    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            "system" => Some(LogStream::System),
            _ => None,
        }
    }
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub attempt: Attempt,
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub stream: LogStream,
    pub text: String,
}

impl LogLine {
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            attempt: self.attempt,
            seq: self.seq,
        }
    }
}

/// The position of a log line: lines are ordered by attempt, then seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogCursor {
    pub attempt: Attempt,
    pub seq: u64,
}

impl LogCursor {
    pub fn encode(&self) -> String {
        format!("{}-{}", self.attempt.0, self.seq)
    }

    pub fn decode(raw: &str) -> Option<LogCursor> {
        let (a, s) = raw.trim().split_once('-')?;
        Some(LogCursor {
            attempt: Attempt(a.parse().ok()?),
            seq: s.parse().ok()?,
        })
    }
}

/// The log lines of tasks.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Stores the lines of one task that are not stored yet under the same `(attempt, seq)`.
    /// Returns how many were new.
    async fn append(
        &self,
        task: &TaskId,
        lines: &[LogLine],
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize>;

    /// Unexpired lines strictly after `after`, in order.
    async fn read(
        &self,
        task: &TaskId,
        after: Option<LogCursor>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<LogLine>>;

    /// Deletes expired lines where the store does not expire them itself.
    async fn purge_expired(&self, _now: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(0)
    }
}

/// The two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// Dispatch and stop requests for runners.
    Dispatch,
    /// Completion notices and outbound messages.
    Notify,
    /// Attempts of the built-in kinds, run by the backend itself.
    Tasks,
}

impl QueueName {
    /// Every queue.
    pub const ALL: [QueueName; 3] = [QueueName::Dispatch, QueueName::Notify, QueueName::Tasks];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Dispatch => "dispatch",
            QueueName::Notify => "notify",
            QueueName::Tasks => "tasks",
        }
    }
}

/// What travels on the queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueueMessage {
    Dispatch {
        task_id: TaskId,
        attempt: Attempt,
    },
    Stop {
        task_id: TaskId,
        attempt: Attempt,
        runner: RunnerKind,
        #[serde(default)]
        runner_ref: Option<String>,
    },
    Notify {
        task_id: TaskId,
        attempt: Attempt,
    },
    /// Try an outbound message again.
    Deliver {
        message_id: MessageId,
    },
    /// Run a claimed attempt of a built-in kind.
    Run {
        task_id: TaskId,
        attempt: Attempt,
    },
}

impl QueueMessage {
    pub fn queue(&self) -> QueueName {
        match self {
            QueueMessage::Dispatch { .. } | QueueMessage::Stop { .. } => QueueName::Dispatch,
            QueueMessage::Notify { .. } | QueueMessage::Deliver { .. } => QueueName::Notify,
            QueueMessage::Run { .. } => QueueName::Tasks,
        }
    }

    /// What the message is about, for logs.
    pub fn subject(&self) -> &str {
        match self {
            QueueMessage::Dispatch { task_id, .. }
            | QueueMessage::Stop { task_id, .. }
            | QueueMessage::Notify { task_id, .. }
            | QueueMessage::Run { task_id, .. } => task_id.as_str(),
            QueueMessage::Deliver { message_id } => message_id.as_str(),
        }
    }
}

/// How a queue stands at one moment, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Messages that can be received now (not delayed, not held by a consumer).
    pub visible: u64,
    /// How long the message that has been receivable the longest has waited to be taken;
    /// `None` when no message is receivable.
    pub oldest_visible_age: Option<Duration>,
}

/// Reads how the queues stand, at scrape time (`GET /metrics` in `pj serve`).
#[async_trait]
pub trait QueueInspector: Send + Sync {
    async fn stats(&self, queue: QueueName) -> anyhow::Result<QueueStats>;
}

/// Sends messages. Every component that causes work needs only this.
#[async_trait]
pub trait QueueSender: Send + Sync {
    async fn send(&self, queue: QueueName, body: &str, delay: Duration) -> anyhow::Result<()>;
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub receipt: String,
    pub body: String,
    /// How often this message was received, this time included.
    pub receive_count: u32,
}

/// Receives messages with SQS semantics: a received message is invisible for the visibility
/// timeout, then comes again unless deleted; after too many receives it goes to a dead-letter
/// queue.
#[async_trait]
pub trait QueueConsumer: Send + Sync {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> anyhow::Result<Vec<Received>>;

    async fn delete(&self, queue: QueueName, receipt: &str) -> anyhow::Result<()>;

    /// Makes the message visible again after `timeout` (the backoff of a retry).
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        timeout: Duration,
    ) -> anyhow::Result<()>;
}

/// An environment variable for a runner; secret values never print.
#[derive(Clone)]
pub enum EnvValue {
    Plain(String),
    Secret(SecretString),
}

impl EnvValue {
    pub fn expose(&self) -> &str {
        match self {
            EnvValue::Plain(v) => v,
            EnvValue::Secret(v) => v.expose_secret(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, EnvValue::Secret(_))
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Plain(v) => write!(f, "{v:?}"),
            EnvValue::Secret(_) => f.write_str("[REDACTED]"),
        }
    }
}

/// The contract's runner environment for one attempt.
#[derive(Debug, Clone, Default)]
pub struct RunnerEnv(pub BTreeMap<&'static str, EnvValue>);

impl RunnerEnv {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(EnvValue::expose)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &EnvValue)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }
}

/// One attempt for a runner to start.
#[derive(Debug, Clone)]
pub struct RunnerJob {
    pub task_id: TaskId,
    pub attempt: Attempt,
    pub repo_url: String,
    pub deadline: DateTime<Utc>,
    pub env: RunnerEnv,
}

/// Why a runner could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// May pass: retried with backoff within the queue's receive budget.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Cannot succeed as things are: the attempt fails at once, saying what to fix.
    #[error("{message}")]
    Permanent { message: String },
}

/// Starts and stops runners.
#[async_trait]
pub trait Runner: Send + Sync {
    fn kind(&self) -> RunnerKind;

    /// Starts the attempt; returns what identifies the runner for [`Runner::stop`].
    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError>;

    /// Stops the attempt's runner where it can. Stopping a runner that is gone is not an error.
    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<()>;
}

/// A completion email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Stable per task attempt, so a sender that can deduplicate does.
    pub idempotency_key: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// May pass (the network, a busy server, throttling): the email is tried again later.
    #[error(transparent)]
    Retryable(#[from] anyhow::Error),
    /// Can never be sent as it is (the address is refused for good): recorded as not sent and
    /// not tried again.
    #[error("{0}")]
    Permanent(String),
}

/// Sends email.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// The deployment's secrets.
#[derive(Clone, Default)]
pub struct Secrets {
    pub webhook_master: Option<MasterSecret>,
    pub github_token: Option<SecretString>,
    pub openai_api_key: Option<SecretString>,
    pub anthropic_api_key: Option<SecretString>,
    /// Further named secrets for the runner adapters (a GitHub App's key, Daytona's API key).
    pub extra: BTreeMap<String, SecretString>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "webhook_master",
                &self.webhook_master.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "github_token",
                &self.github_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "openai_api_key",
                &self.openai_api_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "anthropic_api_key",
                &self.anthropic_api_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where secrets come from (the environment, files, Secrets Manager), cached by the adapter.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secrets(&self) -> anyhow::Result<Arc<Secrets>>;
}

/// Secrets fixed at start.
pub struct StaticSecrets(pub Arc<Secrets>);

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn secrets(&self) -> anyhow::Result<Arc<Secrets>> {
        Ok(self.0.clone())
    }
}
