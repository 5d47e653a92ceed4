//! Applying transitions: read, decide, compare-and-set, then carry out the effects.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::capacity::Capacity;
use crate::create::RepoPolicy;
use crate::ids::TaskId;
use crate::kinds::ghl::GhlSettings;
use crate::machine::{Effect, Input, Policy, Refusal, transition};
use crate::ports::{QueueMessage, QueueSender, TaskStore, WebhookReceipt, WriteOutcome};
use crate::repos::RepoRules;
use crate::task::{ModelSpec, Provider, Task};
use crate::time::Clock;

/// Settings of the core, read once at start by the deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL that runners call back to.
    pub public_url: String,
    pub max_attempts: u32,
    pub policy: Policy,
    pub repos: RepoPolicy,
    /// `PJ_ALLOWED_REPOS` and `PJ_ALLOW_PRIVATE_NETWORKS`, checked on every new task.
    pub repo_rules: RepoRules,
    /// `PJ_MAX_RUNNING_PER_USER` and `PJ_MAX_RUNNING`.
    pub capacity: Capacity,
    pub email_from: String,
    /// Receives of a dispatch message before its attempt fails with `dispatch_failed`.
    pub dispatch_max_receives: u32,
    pub log_retention: chrono::Duration,
    /// How long idempotency keys and webhook ids are remembered.
    pub dedupe_retention: chrono::Duration,
    pub runner: RunnerDefaults,
    /// GoHighLevel for `ghl_action` and the SMS channel.
    pub ghl: GhlSettings,
    /// The first retry of an outbound message waits this long (`PJ_MESSAGE_RETRY_SECS`), then
    /// doubling.
    pub message_retry_base: Duration,
    /// An outbound message is tried for this long before it is `failed`.
    pub message_keep_trying: chrono::Duration,
    /// The browsers of the browser kinds (`PJ_BROWSER`, a Chromium, Browserbase).
    pub browsers: crate::kinds::browser::BrowserOffer,
}

/// What every runner's environment gets besides the task.
#[derive(Debug, Clone)]
pub struct RunnerDefaults {
    pub github_api_url: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    /// The model of a task that names none.
    pub default_model: ModelSpec,
    pub keep_alive: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: "http://127.0.0.1:8080".into(),
            max_attempts: 3,
            policy: Policy::default(),
            repos: RepoPolicy::HttpsOnly,
            repo_rules: RepoRules::default(),
            capacity: Capacity::default(),
            email_from: "Pithy Jaunt <pithy-jaunt@localhost>".into(),
            dispatch_max_receives: 5,
            log_retention: chrono::Duration::days(7),
            dedupe_retention: chrono::Duration::hours(24),
            runner: RunnerDefaults {
                github_api_url: None,
                openai_base_url: None,
                anthropic_base_url: None,
                default_model: ModelSpec {
                    provider: Provider::Openai,
                    name: Provider::Openai.default_model().into(),
                },
                keep_alive: false,
            },
            ghl: GhlSettings::default(),
            message_retry_base: Duration::from_secs(30),
            message_keep_trying: chrono::Duration::hours(24),
            browsers: crate::kinds::browser::BrowserOffer::default(),
        }
    }
}

/// Wakes whoever follows a task (the log stream) when it or its logs change.
#[derive(Debug, Clone)]
pub struct Feed(broadcast::Sender<TaskId>);

impl Default for Feed {
    fn default() -> Self {
        Feed(broadcast::channel(1024).0)
    }
}

impl Feed {
    pub fn publish(&self, id: &TaskId) {
        // Nobody listening is fine.
        let _ = self.0.send(id.clone());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TaskId> {
        self.0.subscribe()
    }
}

/// The result of applying an input.
#[derive(Debug, Clone)]
pub enum Applied {
    /// Stored: the new task.
    Changed(Task),
    /// The change was already there; nothing was written.
    Unchanged(Task),
    /// The `webhook-id` of the delivery was already recorded.
    Duplicate,
}

impl Applied {
    pub fn task(&self) -> Option<&Task> {
        match self {
            Applied::Changed(t) | Applied::Unchanged(t) => Some(t),
            Applied::Duplicate => None,
        }
    }
}

/// Why an input was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("task not found")]
    NotFound,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Told of every stored change of a task, e.g. to emit metrics.
pub trait Observer: Send + Sync {
    fn created(&self, task: &Task);
    fn changed(&self, before: &Task, after: &Task);
    /// Told of every runner callback answered: `refused` is the error code of a refusal
    /// ([`crate::AppError::code`]), `None` when it was accepted. Ignored unless overridden.
    fn callback(&self, callback: Callback, refused: Option<&'static str>) {
        let _ = (callback, refused);
    }
}

/// A runner callback endpoint, for [`Observer::callback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Callback {
    /// `POST /webhooks/runner`.
    Event,
    /// `POST /webhooks/runner/logs`.
    Logs,
    /// `POST /webhooks/runner/artifacts`.
    Artifact,
}

impl Callback {
    pub const ALL: [Callback; 3] = [Callback::Event, Callback::Logs, Callback::Artifact];
}

impl Callback {
    pub fn as_str(self) -> &'static str {
        match self {
            Callback::Event => "event",
            Callback::Logs => "logs",
            Callback::Artifact => "artifact",
        }
    }
}

/// The longest a queue message may be held back (SQS's limit).
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// How often a write is redone after losing a compare-and-set race.
const MAX_CAS_ROUNDS: usize = 32;

/// Reads, decides and writes tasks; every use case changes tasks through it.
#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn TaskStore>,
    pub queue: Arc<dyn QueueSender>,
    pub clock: Arc<dyn Clock>,
    pub feed: Feed,
    pub settings: Arc<Settings>,
    /// Told of every stored change.
    pub observer: Option<Arc<dyn Observer>>,
}

impl Engine {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn load(&self, id: &TaskId) -> Result<Task, ApplyError> {
        self.store.get(id).await?.ok_or(ApplyError::NotFound)
    }

    /// Applies `input` to the task `id`.
    pub async fn apply(
        &self,
        id: &TaskId,
        input: &Input,
        receipt: Option<&WebhookReceipt>,
    ) -> Result<Applied, ApplyError> {
        let task = self.load(id).await?;
        self.apply_to(task, input, receipt).await
    }

    /// Applies `input` starting from a task already read; reads again only after losing a race.
    pub async fn apply_to(
        &self,
        mut task: Task,
        input: &Input,
        receipt: Option<&WebhookReceipt>,
    ) -> Result<Applied, ApplyError> {
        for _ in 0..MAX_CAS_ROUNDS {
            let now = self.now();
            match transition(&task, input, now, &self.settings.policy) {
                Err(Refusal::AlreadyDone) => {
                    if let Some(receipt) = receipt {
                        self.store.remember_webhook(receipt).await?;
                    }
                    return Ok(Applied::Unchanged(task));
                }
                Err(Refusal::Conflict(message)) => return Err(ApplyError::Refused(message)),
                Ok(mut next) => {
                    next.task.version = task.version + 1;
                    match self.store.update(&next.task, task.version, receipt).await? {
                        WriteOutcome::Written => {
                            tracing::info!(
                                task_id = %next.task.id,
                                attempt = %next.task.attempt,
                                from = %task.status,
                                to = %next.task.status,
                                input = input_name(input),
                                "task changed"
                            );
                            self.feed.publish(&next.task.id);
                            if let Some(observer) = &self.observer {
                                observer.changed(&task, &next.task);
                            }
                            self.run_effects(&next.task, &next.effects).await;
                            return Ok(Applied::Changed(next.task));
                        }
                        WriteOutcome::WebhookSeen => return Ok(Applied::Duplicate),
                        WriteOutcome::VersionConflict => {
                            task = self.load(&task.id).await?;
                        }
                    }
                }
            }
        }
        Err(ApplyError::Internal(anyhow::anyhow!(
            "task {} kept changing under {MAX_CAS_ROUNDS} writes",
            task.id
        )))
    }

    /// Sends the messages a stored transition asks for. A failure here loses nothing: the
    /// sweeper finds dispatches and emails that did not happen and asks again.
    pub async fn run_effects(&self, task: &Task, effects: &[Effect]) {
        for effect in effects {
            let mut delay = Duration::ZERO;
            let message = match effect {
                Effect::Dispatch(attempt) => QueueMessage::Dispatch {
                    task_id: task.id.clone(),
                    attempt: *attempt,
                },
                Effect::DispatchLater(attempt, after) => {
                    // A queue holds a message back for a bounded time (SQS: 15 minutes); a
                    // dispatcher that gets it early sends it on again.
                    delay = (*after).min(MAX_QUEUE_DELAY);
                    QueueMessage::Dispatch {
                        task_id: task.id.clone(),
                        attempt: *attempt,
                    }
                }
                Effect::Notify(attempt) => QueueMessage::Notify {
                    task_id: task.id.clone(),
                    attempt: *attempt,
                },
                Effect::StopRunner {
                    attempt,
                    runner,
                    runner_ref,
                } => QueueMessage::Stop {
                    task_id: task.id.clone(),
                    attempt: *attempt,
                    runner: *runner,
                    runner_ref: runner_ref.clone(),
                },
            };
            self.send(&message, delay).await;
        }
    }

    /// Sends one message, logging a failure.
    pub async fn send(&self, message: &QueueMessage, delay: Duration) {
        let body = match serde_json::to_string(message) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "could not encode a queue message");
                return;
            }
        };
        if let Err(e) = self.queue.send(message.queue(), &body, delay).await {
            tracing::warn!(
                subject = message.subject(),
                queue = message.queue().as_str(),
                error = format!("{e:#}"),
                "could not send a queue message; the sweeper will ask again"
            );
        }
    }
}

fn input_name(input: &Input) -> &'static str {
    match input {
        Input::Execute => "execute",
        Input::Approve => "approve",
        Input::Cancel => "cancel",
        Input::Retry => "retry",
        Input::ScheduleDue => "schedule_due",
        Input::Claim { .. } => "claim",
        Input::Dispatched { .. } => "dispatched",
        Input::DispatchDeferred { .. } => "dispatch_deferred",
        Input::DispatchFailed { .. } => "dispatch_failed",
        Input::DispatchRefused { .. } => "dispatch_refused",
        Input::Requeue { .. } => "requeue",
        Input::AwaitCapacity { .. } => "await_capacity",
        Input::Runner { .. } => "runner_event",
        Input::RunnerExited { .. } => "runner_exited",
        Input::DeadlinePassed { .. } => "deadline_passed",
        Input::Notified { .. } => "notified",
        Input::NotifyRequeue { .. } => "notify_requeue",
        Input::NotifyFailed { .. } => "notify_failed",
        Input::Finished { .. } => "finished",
        Input::CallbackRefused => "callback_refused",
    }
}
