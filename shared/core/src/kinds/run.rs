//! The worker that runs attempts of the built-in kinds (`QueueMessage::Run`): it marks the
//! attempt running, runs the kind with a live log, and records the outcome through the same
//! state machine as a runner's events.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use crate::artifacts::ArtifactStore;
use crate::engine::{Applied, ApplyError, Engine};
use crate::ids::{Attempt, TaskId};
use crate::kinds::browser::run::BrowserRun;
use crate::kinds::browser::{Browsers, PageModel};
use crate::kinds::config::KindConfig;
use crate::kinds::sealed::Sealer;
use crate::kinds::{api_call, ghl, message, report};
use crate::machine::{Input, KindOutcome, RunnerEvent, retry_backoff};
use crate::messages::{Courier, MessageStore};
use crate::outbound::HttpClient;
use crate::ports::{LogLine, LogStore, LogStream, QueueMessage, SecretSource};
use crate::redact::LineCleaner;
use crate::task::{ExecState, RunnerKind, Step, Task, TaskError, codes};
use crate::worker::{Disposition, backoff};

/// Runs the built-in kinds.
pub struct KindWorker {
    pub engine: Engine,
    pub logs: Arc<dyn LogStore>,
    /// Requests to addresses users name (API calls, webhooks): through the address guard.
    pub http: Arc<dyn HttpClient>,
    /// Requests to services the operator configured (GoHighLevel).
    pub service_http: Arc<dyn HttpClient>,
    pub courier: Arc<Courier>,
    pub messages: Arc<dyn MessageStore>,
    pub secrets: Arc<dyn SecretSource>,
    /// The browser kinds' browsers; without them those tasks fail with `browser_error`.
    pub browsers: Option<Arc<dyn Browsers>>,
    /// The model of the browser kinds' plain-words steps.
    pub page_model: Option<Arc<dyn PageModel>>,
    /// Where screenshots are kept.
    pub artifacts: Arc<dyn ArtifactStore>,
}

impl KindWorker {
    /// Handles one message of the tasks queue.
    pub async fn handle(&self, message: &QueueMessage, receive_count: u32) -> Disposition {
        let QueueMessage::Run { task_id, attempt } = message else {
            tracing::error!(
                subject = message.subject(),
                "a message for another queue reached the tasks queue; dropped"
            );
            return Disposition::Done;
        };
        match self.run(task_id, *attempt).await {
            Ok(()) => Disposition::Done,
            Err(e) => {
                tracing::warn!(task_id = %task_id, %attempt, error = format!("{e:#}"), "running the attempt failed; it will come again");
                Disposition::RetryAfter(backoff(receive_count, None))
            }
        }
    }

    async fn run(&self, id: &TaskId, attempt: Attempt) -> anyhow::Result<()> {
        let task = match self.engine.load(id).await {
            Ok(task) => task,
            Err(ApplyError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(exec) = task.current_execution().filter(|e| e.attempt == attempt) else {
            return Ok(());
        };
        if task.status.is_terminal() || exec.runner != RunnerKind::Builtin {
            return Ok(());
        }
        match exec.state {
            ExecState::Claimed | ExecState::Dispatched => {}
            ExecState::Running => {
                // A worker took it before and stopped mid-way: whether its call went out is
                // unknown, so this attempt ends as a failure that may pass and the next one runs.
                let error = TaskError::new(
                    codes::NETWORK_ERROR,
                    "the worker running this attempt stopped before it finished",
                );
                let outcome = KindOutcome {
                    error: Some(error),
                    retry_after: Some(automatic_retry_delay(&task, None)),
                    ..KindOutcome::default()
                };
                self.finish(id, attempt, outcome).await?;
                return Ok(());
            }
            _ => return Ok(()),
        }
        let started = Input::Runner {
            attempt,
            event: RunnerEvent::Started,
        };
        let task = match self.engine.apply_to(task, &started, None).await {
            Ok(Applied::Changed(t)) => t,
            Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => return Ok(()),
            Err(ApplyError::Internal(e)) => return Err(e),
        };
        let mut log = AttemptLog::new(self.engine.clone(), self.logs.clone(), &task);
        let outcome = self.outcome(&task, &mut log).await;
        match &outcome.error {
            None => log.system(format!(
                "completed: {}",
                outcome.summary.as_deref().unwrap_or("done")
            )),
            Some(e) if outcome.retry_after.is_some() => {
                log.system(format!("failed ({}): {}; this may pass", e.code, e.message))
            }
            Some(e) => log.system(format!("failed ({}): {}", e.code, e.message)),
        }
        log.flush().await;
        self.finish(id, attempt, outcome).await
    }

    async fn finish(
        &self,
        id: &TaskId,
        attempt: Attempt,
        outcome: KindOutcome,
    ) -> anyhow::Result<()> {
        match self
            .engine
            .apply(id, &Input::Finished { attempt, outcome }, None)
            .await
        {
            Ok(_) | Err(ApplyError::Refused(_)) | Err(ApplyError::NotFound) => Ok(()),
            Err(ApplyError::Internal(e)) => Err(e),
        }
    }

    /// Runs the task's kind.
    async fn outcome(&self, task: &Task, log: &mut AttemptLog) -> KindOutcome {
        let Some(config) = &task.config else {
            return invalid_config("the task has no config");
        };
        let secrets = match self.secrets.secrets().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "secrets unavailable");
                return KindOutcome {
                    error: Some(TaskError::new(
                        codes::PROVIDER_ERROR,
                        "the deployment's secrets could not be read",
                    )),
                    retry_after: Some(automatic_retry_delay(task, None)),
                    ..KindOutcome::default()
                };
            }
        };
        let settings = &self.engine.settings;
        match config {
            KindConfig::ApiCall(call) => {
                let Some(master) = secrets.webhook_master.as_ref() else {
                    return invalid_config("no master secret is configured to open credentials");
                };
                api_call::run(call, task, &Sealer::new(master), self.http.as_ref(), log).await
            }
            KindConfig::GhlAction(action) => {
                let key = secrets.extra.get(ghl::API_KEY_SECRET);
                ghl::run(
                    action,
                    task,
                    &settings.ghl,
                    key,
                    self.service_http.as_ref(),
                    log,
                )
                .await
            }
            KindConfig::Notification(m) => {
                message::run(task, m, "notification", &self.courier, settings, log).await
            }
            KindConfig::Reminder(r) => {
                message::run(task, &r.message, "reminder", &self.courier, settings, log).await
            }
            KindConfig::BrowserAutomation(a) => match self.browser_run(task) {
                Some(run) => run.automation(a, log).await,
                None => no_browsers(),
            },
            KindConfig::DataExtraction(e) => match self.browser_run(task) {
                Some(run) => run.extraction(e, log).await,
                None => no_browsers(),
            },
            KindConfig::Report(r) => {
                report::run(
                    r,
                    task,
                    self.engine.store.as_ref(),
                    self.messages.as_ref(),
                    &self.courier,
                    settings,
                    self.engine.now(),
                    log,
                )
                .await
            }
        }
    }
}

impl KindWorker {
    fn browser_run<'a>(&'a self, task: &'a Task) -> Option<BrowserRun<'a>> {
        Some(BrowserRun {
            task,
            engine: &self.engine,
            browsers: self.browsers.as_deref()?,
            model: self.page_model.as_deref(),
            artifacts: self.artifacts.as_ref(),
            default_browser: self.engine.settings.browsers.default,
        })
    }
}

/// The outcome of a browser task where the deployment has no browsers (final).
fn no_browsers() -> KindOutcome {
    KindOutcome {
        error: Some(TaskError::new(
            codes::BROWSER_ERROR,
            "this deployment runs no browsers",
        )),
        ..KindOutcome::default()
    }
}

/// The outcome of a config that cannot run (final).
pub(crate) fn invalid_config(message: impl Into<String>) -> KindOutcome {
    KindOutcome {
        error: Some(TaskError::new(codes::INVALID_CONFIG, message)),
        ..KindOutcome::default()
    }
}

/// The backoff before the next attempt of `task`, no sooner than `floor`.
pub(crate) fn automatic_retry_delay(
    task: &Task,
    floor: Option<std::time::Duration>,
) -> std::time::Duration {
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    retry_backoff(task.attempt.0, floor, jitter)
}

/// A step timed from its start.
pub(crate) struct StepTimer {
    action: &'static str,
    started: Instant,
}

impl StepTimer {
    pub(crate) fn start(action: &'static str) -> StepTimer {
        StepTimer {
            action,
            started: Instant::now(),
        }
    }

    pub(crate) fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn ok(self, output: Option<serde_json::Value>) -> Step {
        Step {
            action: self.action.to_owned(),
            ok: true,
            ms: self.ms(),
            output,
            error: None,
        }
    }

    pub(crate) fn failed(self, error: impl Into<String>) -> Step {
        Step {
            action: self.action.to_owned(),
            ok: false,
            ms: self.ms(),
            output: None,
            error: Some(error.into()),
        }
    }
}

/// The log of one attempt, written as it goes so the stream shows it live. Lines are cleaned of
/// secrets exactly as a runner's are.
pub struct AttemptLog {
    engine: Engine,
    logs: Arc<dyn LogStore>,
    task: TaskId,
    attempt: Attempt,
    next_seq: u64,
    pending: Vec<LogLine>,
    cleaner: LineCleaner,
}

impl AttemptLog {
    pub fn new(engine: Engine, logs: Arc<dyn LogStore>, task: &Task) -> AttemptLog {
        AttemptLog {
            engine,
            logs,
            task: task.id.clone(),
            attempt: task.attempt,
            next_seq: 0,
            pending: Vec::new(),
            cleaner: LineCleaner::default(),
        }
    }

    /// Adds a line; it is stored at the next [`AttemptLog::flush`].
    pub fn system(&mut self, text: impl AsRef<str>) {
        let line = LogLine {
            attempt: self.attempt,
            seq: self.next_seq,
            ts: self.engine.now(),
            stream: LogStream::System,
            text: self.cleaner.clean(text.as_ref()),
        };
        self.next_seq += 1;
        self.pending.push(line);
    }

    /// Stores the lines added since the last flush and wakes the task's followers. A failure
    /// is logged, not returned: the attempt's outcome matters more than its log.
    pub async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.pending);
        let expires = self.engine.now() + self.engine.settings.log_retention;
        match self.logs.append(&self.task, &lines, expires).await {
            Ok(_) => self.engine.feed.publish(&self.task),
            Err(e) => {
                tracing::warn!(task_id = %self.task, error = format!("{e:#}"), "could not store log lines")
            }
        }
    }
}
