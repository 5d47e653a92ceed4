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
use crate::kinds::message::completion_messages;
use crate::machine::{self, Input};
use crate::messages::{Courier, MessageStatus};
use crate::net::ALLOW_PRIVATE_NETWORKS_VAR;
use crate::ports::{
    DispatchError, Email, EnvValue, LogStore, QueueMessage, Runner, RunnerEnv, RunnerJob,
    SecretSource, Secrets,
};
use crate::task::RunnerKind;
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
                runner,
                runner_ref,
            } => {
                self.stop(task_id, *attempt, *runner, runner_ref.as_deref())
                    .await
            }
            other => {
                tracing::error!(
                    subject = other.subject(),
                    "a message for another queue reached the dispatch queue; dropped"
                );
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
        runner: RunnerKind,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<Disposition> {
        if runner == RunnerKind::Builtin {
            // Nothing to stop: a built-in kind's call ends within its own timeout, and its
            // outcome is refused once the task has ended.
            return Ok(Disposition::Done);
        }
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
        if let Some(due) = exec.not_before.filter(|at| *at > self.engine.now()) {
            // An automatic retry's backoff is longer than a queue holds a message: send it on.
            let wait = (due - self.engine.now()).to_std().unwrap_or_default();
            let again = QueueMessage::Dispatch {
                task_id: id.clone(),
                attempt,
            };
            self.engine
                .send(&again, wait.min(crate::engine::MAX_QUEUE_DELAY))
                .await;
            return Ok(Disposition::Done);
        }
        let builtin = exec.runner == RunnerKind::Builtin;
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
        let admission = if capacity.is_limited() && !builtin {
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
        if builtin {
            // The backend runs it: hand it to the tasks queue's workers. Were this message
            // lost, the claim goes stale and the sweeper starts a new attempt.
            let run = QueueMessage::Run {
                task_id: id.clone(),
                attempt,
            };
            self.engine.send(&run, Duration::ZERO).await;
            return Ok(Disposition::Done);
        }
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
    // The runner stops itself before a model call past the cap, counting what the task's
    // earlier attempts spent.
    if let Some(cap) = settings.policy.max_cost_usd {
        env.insert("PJ_MAX_COST_USD", plain(&cap.to_string()));
        env.insert(
            "PJ_TASK_COST_USD",
            plain(&machine::model_spend_usd(task).to_string()),
        );
    }
    Ok(RunnerJob {
        task_id: task.id.clone(),
        attempt: task.attempt,
        repo_url: task.repo_url.clone(),
        deadline,
        env: RunnerEnv(env),
    })
}

/// Sends what tells of an attempt's outcome (the task's `notify`: by default its completion
/// email), and retries outbound messages (`Deliver`).
pub struct Notifier {
    pub engine: Engine,
    pub courier: Arc<Courier>,
}

impl Notifier {
    /// Handles one message of the notify queue.
    pub async fn handle(&self, message: &QueueMessage, receive_count: u32) -> Disposition {
        let result = match message {
            QueueMessage::Notify { task_id, attempt } => self.notify(task_id, *attempt).await,
            QueueMessage::Deliver { message_id } => self.courier.deliver(message_id).await,
            other => {
                tracing::error!(
                    subject = other.subject(),
                    "a message for another queue reached the notify queue; dropped"
                );
                return Disposition::Done;
            }
        };
        match result {
            Ok(()) => Disposition::Done,
            Err(e) => {
                tracing::warn!(
                    subject = message.subject(),
                    error = format!("{e:#}"),
                    "notice not recorded; it will be tried again"
                );
                Disposition::RetryAfter(backoff(receive_count, None))
            }
        }
    }

    /// Records the attempt's messages (each tried once at once; their retries follow on their
    /// own), then marks the attempt notified, or as never to be notified when every message
    /// failed for good. An error is one that may pass: the queue message comes again, and the
    /// messages already recorded are found, not made twice.
    async fn notify(&self, id: &TaskId, attempt: Attempt) -> anyhow::Result<()> {
        let task = match self.engine.load(id).await {
            Ok(task) => task,
            Err(ApplyError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !task.notify_pending.contains(&attempt) {
            return Ok(());
        }
        let messages =
            completion_messages(&task, attempt, &self.engine.settings, self.engine.now());
        if messages.is_empty() {
            tracing::info!(task_id = %id, %attempt, "no notice to send for this outcome");
        }
        let mut every_one_failed = !messages.is_empty();
        for message in messages {
            let posted = self.courier.post(message).await?;
            every_one_failed &= posted.status == MessageStatus::Failed;
        }
        let outcome = if every_one_failed {
            // Sending again would be refused again: the task keeps its status and the notice
            // is recorded as not sent.
            tracing::warn!(task_id = %id, %attempt, "the outcome's notices can never be sent; recorded as failed");
            Input::NotifyFailed { attempt }
        } else {
            Input::Notified { attempt }
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
    Some(completion_email_to(task, attempt, settings, to))
}

/// The completion email of an attempt, to `to` (a `notify` channel may name its own address).
pub fn completion_email_to(
    task: &Task,
    attempt: Attempt,
    settings: &Settings,
    to: String,
) -> Email {
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
    // The task's page in the web app (a person follows it in a browser; the JSON route
    // `/tasks/{id}` would need a bearer token a browser cannot send).
    let link = format!(
        "{}/#/tasks/{}",
        settings.public_url.trim_end_matches('/'),
        task.id
    );
    let error = exec.and_then(|e| e.error.as_ref()).or(task.error.as_ref());
    // A repository and a branch are a code change's; the other kinds tell their result.
    let code_change = !task.task_kind().is_builtin();
    let mut lines = vec![
        format!("Task: {}", task.title),
        format!("Status: {}", status.as_str()),
    ];
    if code_change {
        lines.push(format!(
            "Repository: {} ({})",
            task.repo_url, task.base_branch
        ));
    } else {
        lines.push(format!("Kind: {}", task.kind));
    }
    lines.push(format!("Attempt: {attempt}"));
    match (&task.pr_url, status) {
        (Some(pr), _) => lines.push(format!("Pull request: {pr}")),
        (None, TaskStatus::Completed | TaskStatus::NeedsReview) if code_change => {
            lines.push(format!("Branch: {}", task.branch));
        }
        _ => {}
    }
    if let Some(summary) = exec
        .and_then(|e| e.result_summary.as_ref())
        .filter(|_| !code_change)
    {
        lines.push(format!("Result: {summary}"));
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
    Email {
        idempotency_key: format!("{}-{}", task.id, attempt),
        from: settings.email_from.clone(),
        to,
        subject: format!("[Pithy Jaunt] {headline}: {}", task.title),
        text,
        html,
    }
}

pub(crate) fn html_escape(s: &str) -> String {
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
    /// Overdue outbound messages tried.
    pub messages: usize,
}

/// Finds attempts past their deadline, lost dispatches, due scheduled tasks and emails that
/// did not go out.
pub struct Sweeper {
    pub engine: Engine,
    pub logs: Arc<dyn LogStore>,
    /// Retries outbound messages whose retry was lost.
    pub courier: Option<Arc<Courier>>,
    /// Expire with the logs.
    pub artifacts: Arc<dyn crate::artifacts::ArtifactStore>,
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
        if let Some(courier) = &self.courier {
            report.messages = courier.sweep(SWEEP_BATCH).await?;
        }
        let now = self.engine.now();
        report.purged = self.engine.store.purge_expired(now).await?
            + self.logs.purge_expired(now).await?
            + self.artifacts.purge_expired(now).await?;
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
