//! The background use cases: dispatching attempts to runners, sending completion emails and
//! sweeping for what fell through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::SecretString;

use crate::capacity::Admission;
use crate::engine::{Applied, ApplyError, Engine, Settings};
use crate::ids::{Attempt, TaskId};
use crate::machine::{self, Input};
use crate::net::ALLOW_PRIVATE_NETWORKS_VAR;
use crate::ports::{
    DispatchError, Email, EnvValue, LogStore, MailError, Mailer, QueueMessage, Runner, RunnerEnv,
    RunnerJob, SecretSource, Secrets,
};
use crate::task::{ExecState, Task, TaskStatus};
use crate::time::rfc3339;

/// What to do with a queue message after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Handled (or nothing left to do): delete it.
    Done,
    /// Try again after this long.
    RetryAfter(Duration),
}

/// The backoff before receive `n + 1`: exponential with jitter, at least `floor`.
pub fn backoff(receive_count: u32, floor: Option<Duration>) -> Duration {
    let exp = 2u64.saturating_pow(receive_count.saturating_sub(1).min(16));
    let base = Duration::from_secs(2)
        .saturating_mul(exp as u32)
        .min(Duration::from_secs(120));
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    base.mul_f64(jitter).max(floor.unwrap_or_default())
}

/// How long an attempt that waits for room (the running limits) waits before it looks again.
pub const CAPACITY_POLL: Duration = Duration::from_secs(3);
/// The most tasks under way that an admission reads.
const MAX_ACTIVE_READ: usize = 10_000;

/// Hands attempts to the runner, and stops runners.
pub struct Dispatcher {
    pub engine: Engine,
    pub runner: Arc<dyn Runner>,
    pub secrets: Arc<dyn SecretSource>,
    /// One admission at a time in this process: the check of the running limits and the claim
    /// that follows it are one step, so two dispatches cannot both take the last place.
    admission: tokio::sync::Mutex<()>,
}

impl Dispatcher {
    pub fn new(engine: Engine, runner: Arc<dyn Runner>, secrets: Arc<dyn SecretSource>) -> Self {
        Dispatcher {
            engine,
            runner,
            secrets,
            admission: tokio::sync::Mutex::new(()),
        }
    }

    /// Handles one message of the dispatch queue, received for the `receive_count`-th time.
    pub async fn handle(&self, message: &QueueMessage, receive_count: u32) -> Disposition {
        let last_try = receive_count >= self.engine.settings.dispatch_max_receives;
        let result = match message {
            QueueMessage::Dispatch { task_id, attempt } => {
                self.dispatch(task_id, *attempt, last_try).await
            }
            QueueMessage::Stop {
                task_id,
                attempt,
                runner_ref,
                ..
            } => self.stop(task_id, *attempt, runner_ref.as_deref()).await,
            QueueMessage::Notify { .. } => {
                tracing::error!("a notify message reached the dispatch queue; dropped");
                Ok(Disposition::Done)
            }
        };
        match result {
            Ok(d) => d,
            Err(e) if last_try => {
                tracing::error!(
                    subject = message.subject(),
                    error = format!("{e:#}"),
                    "dispatch message failed on its last receive"
                );
                Disposition::Done
            }
            Err(e) => {
                tracing::warn!(
                    subject = message.subject(),
                    error = format!("{e:#}"),
                    "dispatch message failed; it will come again"
                );
                Disposition::RetryAfter(backoff(receive_count, None))
            }
        }
    }

    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<Disposition> {
        self.runner.stop(task, attempt, runner_ref).await?;
        tracing::info!(task_id = %task, %attempt, "runner stopped");
        Ok(Disposition::Done)
    }

    async fn dispatch(
        &self,
        id: &TaskId,
        attempt: Attempt,
        last_try: bool,
    ) -> anyhow::Result<Disposition> {
        let task = match self.engine.load(id).await {
            Ok(task) => task,
            Err(ApplyError::NotFound) => return Ok(Disposition::Done),
            Err(e) => return Err(e.into()),
        };
        let Some(exec) = task.current_execution().filter(|e| e.attempt == attempt) else {
            return Ok(Disposition::Done);
        };
        match exec.state {
            ExecState::Requested => {}
            // A dispatcher took it before and was cut off: the runner may or may not have
            // started. Starting another could run the attempt twice, so this attempt fails and
            // the next one (with its own key) takes over.
            ExecState::Claimed => {
                let input = Input::DispatchFailed {
                    attempt,
                    error:
                        "the dispatch of this attempt was interrupted and its outcome is unknown"
                            .into(),
                };
                self.apply_quietly(task, &input).await?;
                return Ok(Disposition::Done);
            }
            _ => return Ok(Disposition::Done),
        }
        let capacity = self.engine.settings.capacity;
        let admission = if capacity.is_limited() {
            let guard = self.admission.lock().await;
            let active = self
                .engine
                .store
                .under_way(self.engine.now(), MAX_ACTIVE_READ)
                .await?;
            if let Admission::Wait(why) = capacity.admit(&task, &active) {
                tracing::info!(task_id = %id, %attempt, why, "waiting for room to run");
                self.apply_quietly(task, &Input::AwaitCapacity { attempt })
                    .await?;
                // A fresh message, so waiting does not use up the receives a dispatch may take.
                let again = QueueMessage::Dispatch {
                    task_id: id.clone(),
                    attempt,
                };
                self.engine.send(&again, CAPACITY_POLL).await;
                return Ok(Disposition::Done);
            }
            Some(guard)
        } else {
            None
        };
        let claimed = match self
            .engine
            .apply_to(task, &Input::Claim { attempt }, None)
            .await
        {
            Ok(Applied::Changed(t)) => t,
            Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => {
                return Ok(Disposition::Done);
            }
            Err(ApplyError::Internal(e)) => return Err(e),
        };
        drop(admission);
        let secrets = self.secrets.secrets().await?;
        let job = runner_job(&claimed, &self.engine.settings, &secrets)?;
        tracing::info!(task_id = %id, %attempt, runner = self.runner.kind().as_str(), "dispatching");
        match self.runner.start(&job).await {
            Ok(runner_ref) => {
                let input = Input::Dispatched {
                    attempt,
                    runner_ref: runner_ref.clone(),
                };
                match self.engine.apply(id, &input, None).await {
                    Ok(_) => {}
                    Err(ApplyError::Refused(reason)) => {
                        tracing::info!(task_id = %id, %attempt, reason, "attempt ended while its runner started; stopping it");
                        self.runner.stop(id, attempt, Some(&runner_ref)).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(Disposition::Done)
            }
            Err(DispatchError::Permanent { message }) => {
                tracing::warn!(task_id = %id, %attempt, error = %message, "dispatch failed for good");
                let input = Input::DispatchRefused {
                    attempt,
                    error: message,
                };
                self.apply_by_id(id, &input).await?;
                Ok(Disposition::Done)
            }
            Err(DispatchError::Retryable {
                message,
                retry_after,
            }) => {
                if last_try {
                    tracing::warn!(task_id = %id, %attempt, error = %message, "dispatch failed on its last try");
                    let input = Input::DispatchFailed {
                        attempt,
                        error: message,
                    };
                    self.apply_by_id(id, &input).await?;
                    return Ok(Disposition::Done);
                }
                tracing::warn!(task_id = %id, %attempt, error = %message, "dispatch failed; retrying");
                let failures = claimed
                    .current_execution()
                    .map_or(0, |e| e.dispatch_failures)
                    + 1;
                let input = Input::DispatchDeferred {
                    attempt,
                    error: message,
                };
                self.apply_by_id(id, &input).await?;
                Ok(Disposition::RetryAfter(backoff(failures, retry_after)))
            }
        }
    }

    async fn apply_by_id(&self, id: &TaskId, input: &Input) -> anyhow::Result<()> {
        match self.engine.apply(id, input, None).await {
            Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => Ok(()),
            Err(ApplyError::Internal(e)) => Err(e),
        }
    }

    async fn apply_quietly(&self, task: Task, input: &Input) -> anyhow::Result<()> {
        match self.engine.apply_to(task, input, None).await {
            Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => Ok(()),
            Err(ApplyError::Internal(e)) => Err(e),
        }
    }
}

/// The contract's runner environment for the current attempt of a claimed task.
pub fn runner_job(
    task: &Task,
    settings: &Settings,
    secrets: &Secrets,
) -> anyhow::Result<RunnerJob> {
    let exec = task
        .current_execution()
        .ok_or_else(|| anyhow::anyhow!("task {} has no execution to dispatch", task.id))?;
    let deadline = exec
        .deadline
        .ok_or_else(|| anyhow::anyhow!("task {} was dispatched without a deadline", task.id))?;
    let master = secrets
        .webhook_master
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no webhook master secret is configured"))?;
    let model = task
        .model
        .as_ref()
        .unwrap_or(&settings.runner.default_model);
    let base = settings.public_url.trim_end_matches('/');
    let mut env = BTreeMap::new();
    let plain = |v: &str| EnvValue::Plain(v.to_owned());
    env.insert("TASK_ID", plain(task.id.as_str()));
    env.insert("TASK_ATTEMPT", plain(&task.attempt.to_string()));
    env.insert("TARGET_REPO", plain(&task.repo_url));
    env.insert("BASE_BRANCH", plain(&task.base_branch));
    env.insert("BRANCH_NAME", plain(&task.branch));
    env.insert("AGENT_PROMPT", plain(&task.prompt));
    env.insert("MODEL_PROVIDER", plain(model.provider.as_str()));
    env.insert("MODEL", plain(&model.name));
    env.insert("WEBHOOK_URL", plain(&format!("{base}/webhooks/runner")));
    env.insert("LOGS_URL", plain(&format!("{base}/webhooks/runner/logs")));
    env.insert(
        "WEBHOOK_SECRET",
        EnvValue::Secret(master.derive(&task.id, task.attempt).expose_whsec()),
    );
    env.insert("TASK_DEADLINE", plain(&rfc3339(deadline)));
    let optional: [(&'static str, Option<&String>); 3] = [
        ("GITHUB_API_URL", settings.runner.github_api_url.as_ref()),
        ("OPENAI_BASE_URL", settings.runner.openai_base_url.as_ref()),
        (
            "ANTHROPIC_BASE_URL",
            settings.runner.anthropic_base_url.as_ref(),
        ),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            env.insert(name, plain(v));
        }
    }
    let secret_vars: [(&'static str, Option<&SecretString>); 3] = [
        ("GITHUB_TOKEN", secrets.github_token.as_ref()),
        ("OPENAI_API_KEY", secrets.openai_api_key.as_ref()),
        ("ANTHROPIC_API_KEY", secrets.anthropic_api_key.as_ref()),
    ];
    for (name, value) in secret_vars {
        if let Some(v) = value {
            env.insert(name, EnvValue::Secret(v.clone()));
        }
    }
    if let Some(analysis) = &task.context.coderabbit_analysis {
        env.insert("CODERABBIT_ANALYSIS", plain(analysis));
    }
    if settings.runner.keep_alive {
        env.insert("KEEP_ALIVE", plain("true"));
    }
    // The runner checks the clone's addresses by the same rule as the server.
    if settings.repo_rules.network.allow_private {
        env.insert(ALLOW_PRIVATE_NETWORKS_VAR, plain("true"));
    }
    Ok(RunnerJob {
        task_id: task.id.clone(),
        attempt: task.attempt,
        repo_url: task.repo_url.clone(),
        deadline,
        env: RunnerEnv(env),
    })
}

/// Sends completion emails.
pub struct Notifier {
    pub engine: Engine,
    pub mailer: Arc<dyn Mailer>,
}

impl Notifier {
    /// Handles one message of the notify queue.
    pub async fn handle(&self, message: &QueueMessage, receive_count: u32) -> Disposition {
        let QueueMessage::Notify { task_id, attempt } = message else {
            tracing::error!("a dispatch message reached the notify queue; dropped");
            return Disposition::Done;
        };
        match self.notify(task_id, *attempt).await {
            Ok(()) => Disposition::Done,
            Err(e) => {
                tracing::warn!(task_id = %task_id, %attempt, error = format!("{e:#}"), "email not sent; it will be tried again");
                Disposition::RetryAfter(backoff(receive_count, None))
            }
        }
    }

    /// Sends the email of one attempt and records it as sent, or as never to be sent when the
    /// mailer refuses it for good. An error is one that may pass: the message comes again.
    async fn notify(&self, id: &TaskId, attempt: Attempt) -> anyhow::Result<()> {
        let task = match self.engine.load(id).await {
            Ok(task) => task,
            Err(ApplyError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !task.notify_pending.contains(&attempt) {
            return Ok(());
        }
        let outcome = match completion_email(&task, attempt, &self.engine.settings) {
            Some(email) => match self.mailer.send(&email).await {
                Ok(()) => {
                    tracing::info!(task_id = %id, %attempt, "completion email sent");
                    Input::Notified { attempt }
                }
                Err(MailError::Retryable(e)) => return Err(e),
                Err(MailError::Permanent(why)) => {
                    // Sending again would be refused again: the task keeps its status and the
                    // email is recorded as not sent.
                    tracing::warn!(task_id = %id, %attempt, reason = %why, "the completion email can never be sent; recorded as failed, not retried");
                    Input::NotifyFailed { attempt }
                }
            },
            None => {
                tracing::info!(task_id = %id, %attempt, "no address to send the completion email to");
                Input::Notified { attempt }
            }
        };
        match self.engine.apply_to(task, &outcome, None).await {
            Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => Ok(()),
            Err(ApplyError::Internal(e)) => Err(e),
        }
    }
}

/// The completion email of an attempt, or nothing when there is no address.
pub fn completion_email(task: &Task, attempt: Attempt, settings: &Settings) -> Option<Email> {
    let to = task.notification_address()?.to_owned();
    let exec = task.executions.iter().find(|e| e.attempt == attempt);
    let status = match exec.map(|e| e.state) {
        Some(ExecState::Completed) => TaskStatus::Completed,
        Some(ExecState::NeedsReview) => TaskStatus::NeedsReview,
        Some(ExecState::Failed) => TaskStatus::Failed,
        _ => task.status,
    };
    let headline = match status {
        TaskStatus::Completed => "Completed",
        TaskStatus::NeedsReview => "Needs review",
        _ => "Failed",
    };
    let link = format!(
        "{}/tasks/{}",
        settings.public_url.trim_end_matches('/'),
        task.id
    );
    let error = exec.and_then(|e| e.error.as_ref()).or(task.error.as_ref());
    let mut lines = vec![
        format!("Task: {}", task.title),
        format!("Status: {}", status.as_str()),
        format!("Repository: {} ({})", task.repo_url, task.base_branch),
        format!("Attempt: {attempt}"),
    ];
    match (&task.pr_url, status) {
        (Some(pr), _) => lines.push(format!("Pull request: {pr}")),
        (None, TaskStatus::Completed | TaskStatus::NeedsReview) => {
            lines.push(format!("Branch: {}", task.branch));
        }
        _ => {}
    }
    if let Some(e) = error.filter(|_| status != TaskStatus::Completed) {
        lines.push(format!("Error: {} ({})", e.message, e.code));
    }
    lines.push(format!("Task details: {link}"));
    let text = format!("{}\n", lines.join("\n"));
    let html_lines: Vec<String> = lines
        .iter()
        .map(|l| format!("<p>{}</p>", html_escape(l)))
        .collect();
    let html = format!(
        "<!doctype html><html><body><h2>{}: {}</h2>{}</body></html>",
        headline,
        html_escape(&task.title),
        html_lines.join("")
    );
    Some(Email {
        idempotency_key: format!("{}-{}", task.id, attempt),
        from: settings.email_from.clone(),
        to,
        subject: format!("[Pithy Jaunt] {headline}: {}", task.title),
        text,
        html,
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub looked_at: usize,
    pub changed: usize,
    pub purged: u64,
}

/// Finds attempts past their deadline, lost dispatches, due scheduled tasks and emails that
/// did not go out.
pub struct Sweeper {
    pub engine: Engine,
    pub logs: Arc<dyn LogStore>,
}

/// Tasks looked at per round of a sweep.
const SWEEP_BATCH: usize = 100;
/// Rounds per sweep, so one sweep always ends.
const SWEEP_MAX_ROUNDS: usize = 20;

impl Sweeper {
    pub async fn sweep(&self) -> anyhow::Result<SweepReport> {
        let mut report = SweepReport::default();
        let policy = &self.engine.settings.policy;
        for _ in 0..SWEEP_MAX_ROUNDS {
            let now = self.engine.now();
            let due = self.engine.store.due(now, SWEEP_BATCH).await?;
            let count = due.len();
            let mut progressed = false;
            for task in due {
                report.looked_at += 1;
                let input = machine::sweep_input(&task, now, policy)
                    .or_else(|| machine::overdue_notification(&task, now, policy));
                match input {
                    Some(input) => match self.engine.apply_to(task, &input, None).await {
                        Ok(Applied::Changed(_)) => {
                            report.changed += 1;
                            progressed = true;
                        }
                        Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => {}
                        Err(ApplyError::Internal(e)) => return Err(e),
                    },
                    None => progressed |= self.reschedule(task, now).await?,
                }
            }
            if count < SWEEP_BATCH || !progressed {
                break;
            }
        }
        let now = self.engine.now();
        report.purged =
            self.engine.store.purge_expired(now).await? + self.logs.purge_expired(now).await?;
        Ok(report)
    }

    /// A task whose `sweep_at` passed with nothing to do gets it recomputed.
    async fn reschedule(&self, mut task: Task, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let next = machine::sweep_at(&task, &self.engine.settings.policy);
        if next == task.sweep_at && next.is_none_or(|at| at > now) {
            return Ok(false);
        }
        let expected = task.version;
        // Nothing was due: never leave a check in the past, or every sweep would find it again.
        task.sweep_at = next.map(|at| at.max(now + chrono::Duration::seconds(60)));
        task.version += 1;
        self.engine.store.update(&task, expected, None).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::create::{NewTask, RepoPolicy};
    use crate::engine::Feed;
    use crate::ids::{UserId, WebhookId};
    use crate::machine::{RunnerEvent, transition};
    use crate::ports::{
        CreateOutcome, IdempotencyRecord, ListCursor, QueueName, QueueSender, TaskStore,
        WebhookReceipt, WriteOutcome,
    };
    use crate::time::ManualClock;

    /// Tasks in a map, with the store's compare-and-set.
    #[derive(Default)]
    struct MemoryStore(Mutex<HashMap<TaskId, Task>>);

    #[async_trait]
    impl TaskStore for MemoryStore {
        async fn create(
            &self,
            task: &Task,
            _idempotency: Option<&IdempotencyRecord>,
        ) -> anyhow::Result<CreateOutcome> {
            self.0.lock().unwrap().insert(task.id.clone(), task.clone());
            Ok(CreateOutcome::Created)
        }

        async fn get(&self, id: &TaskId) -> anyhow::Result<Option<Task>> {
            Ok(self.0.lock().unwrap().get(id).cloned())
        }

        async fn list(
            &self,
            _owner: &UserId,
            _status: Option<TaskStatus>,
            _limit: usize,
            _after: Option<&ListCursor>,
        ) -> anyhow::Result<Vec<Task>> {
            Ok(Vec::new())
        }

        async fn update(
            &self,
            task: &Task,
            expected_version: u64,
            _receipt: Option<&WebhookReceipt>,
        ) -> anyhow::Result<WriteOutcome> {
            let mut tasks = self.0.lock().unwrap();
            match tasks.get(&task.id) {
                Some(stored) if stored.version == expected_version => {
                    tasks.insert(task.id.clone(), task.clone());
                    Ok(WriteOutcome::Written)
                }
                _ => Ok(WriteOutcome::VersionConflict),
            }
        }

        async fn webhook_seen(&self, _id: &WebhookId, _now: DateTime<Utc>) -> anyhow::Result<bool> {
            Ok(false)
        }

        async fn remember_webhook(&self, _receipt: &WebhookReceipt) -> anyhow::Result<bool> {
            Ok(true)
        }

        async fn due(&self, _now: DateTime<Utc>, _limit: usize) -> anyhow::Result<Vec<Task>> {
            Ok(Vec::new())
        }
    }

    /// A queue that only counts.
    #[derive(Default)]
    struct CountingQueue(AtomicUsize);

    #[async_trait]
    impl QueueSender for CountingQueue {
        async fn send(&self, _q: QueueName, _body: &str, _delay: Duration) -> anyhow::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// A mailer that refuses every email, for good or for now, and counts the tries.
    struct RefusingMailer {
        permanent: bool,
        tries: AtomicUsize,
    }

    #[async_trait]
    impl Mailer for RefusingMailer {
        async fn send(&self, _email: &Email) -> Result<(), MailError> {
            self.tries.fetch_add(1, Ordering::SeqCst);
            if self.permanent {
                Err(MailError::Permanent("550 no such mailbox".into()))
            } else {
                Err(MailError::Retryable(anyhow::anyhow!("connection reset")))
            }
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// A notifier over a store holding one completed task whose email is pending.
    async fn completed_task_with(mailer: Arc<RefusingMailer>) -> (Notifier, TaskId) {
        let settings = Settings::default();
        let body = json!({"repo_url": "https://github.com/o/r", "prompt": "p", "notify_email": "gone@example.com"});
        let new = NewTask::parse(&body, RepoPolicy::HttpsOnly).unwrap();
        let (mut task, _) = new.into_task(
            UserId::parse("u1").unwrap(),
            None,
            3,
            t0(),
            &settings.policy,
        );
        let a1 = Attempt(1);
        for input in [
            Input::Claim { attempt: a1 },
            Input::Dispatched {
                attempt: a1,
                runner_ref: "pid:1".into(),
            },
            Input::Runner {
                attempt: a1,
                event: RunnerEvent::Completed {
                    branch: Some("pj/x".into()),
                    pr_url: None,
                    usage: None,
                },
            },
        ] {
            let version = task.version;
            task = transition(&task, &input, t0(), &settings.policy)
                .unwrap()
                .task;
            task.version = version + 1;
        }
        assert_eq!(task.status, TaskStatus::Completed);
        assert_eq!(task.notify_pending, vec![a1]);
        let store = Arc::new(MemoryStore::default());
        store.create(&task, None).await.unwrap();
        let engine = Engine {
            store,
            queue: Arc::new(CountingQueue::default()),
            clock: Arc::new(ManualClock::new(t0())),
            feed: Feed::default(),
            settings: Arc::new(settings),
            observer: None,
        };
        (Notifier { engine, mailer }, task.id)
    }

    fn notify(task_id: &TaskId) -> QueueMessage {
        QueueMessage::Notify {
            task_id: task_id.clone(),
            attempt: Attempt(1),
        }
    }

    #[tokio::test]
    async fn when_the_mailer_refuses_an_address_for_good_the_email_is_recorded_failed_and_not_retried()
     {
        let mailer = Arc::new(RefusingMailer {
            permanent: true,
            tries: AtomicUsize::new(0),
        });
        let (notifier, id) = completed_task_with(mailer.clone()).await;

        let disposition = notifier.handle(&notify(&id), 1).await;

        assert_eq!(disposition, Disposition::Done, "the message is settled");
        let task = notifier.engine.load(&id).await.unwrap();
        assert_eq!(
            task.status,
            TaskStatus::Completed,
            "the task keeps its status"
        );
        assert!(task.notify_pending.is_empty());
        assert_eq!(task.notify_failed, vec![Attempt(1)]);
        assert!(task.notified.is_empty(), "not recorded as sent");
        let far = t0() + chrono::Duration::days(30);
        assert_eq!(
            machine::overdue_notification(&task, far, &notifier.engine.settings.policy),
            None,
            "the sweeper does not ask for it again"
        );

        // A redelivered message sends nothing more.
        assert_eq!(notifier.handle(&notify(&id), 2).await, Disposition::Done);
        assert_eq!(mailer.tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn when_the_mailer_fails_for_now_the_email_stays_pending_and_is_retried() {
        let mailer = Arc::new(RefusingMailer {
            permanent: false,
            tries: AtomicUsize::new(0),
        });
        let (notifier, id) = completed_task_with(mailer.clone()).await;

        let disposition = notifier.handle(&notify(&id), 1).await;

        assert!(
            matches!(disposition, Disposition::RetryAfter(_)),
            "{disposition:?}"
        );
        let task = notifier.engine.load(&id).await.unwrap();
        assert_eq!(task.notify_pending, vec![Attempt(1)]);
        assert!(task.notify_failed.is_empty());
    }
}
