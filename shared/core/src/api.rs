//! The use cases behind the HTTP API: users' task operations and the runners' callbacks.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use crate::agent::AgentMetadata;
use crate::artifacts::{
    Artifact, ArtifactName, ArtifactStore, MAX_ARTIFACT_BYTES, MAX_ARTIFACTS_PER_ATTEMPT,
    MAX_UPLOAD_BYTES, NoArtifactStore, PutOutcome, Upload,
};
use crate::create::{NewTask, validate_branch};
use crate::engine::{Applied, ApplyError, Engine};
use crate::error::{AppError, ValidationError};
use crate::ids::{Attempt, TaskId, UserId, WebhookId};
use crate::kinds::config::ConfigContext;
use crate::kinds::{Sealer, TaskKind};
use crate::machine::{Input, RunnerEvent};
use crate::messages::{
    MessageCursor, MessageFilter, MessageId, MessageStatus, MessageStore, OutboundMessage,
};
use crate::ports::{
    CreateOutcome, IdempotencyRecord, ListCursor, LogCursor, LogLine, LogStore, LogStream,
    SecretSource, WebhookReceipt,
};
use crate::ratelimit::RateLimiter;
use crate::redact::{LineCleaner, redact};
use crate::repos::{Resolver, SystemResolver};
use crate::signing::{SignatureError, SignatureHeaders};
use crate::stream::StreamSlots;
use crate::task::{ExecutionView, Task, TaskError, TaskStatus, Usage};
use crate::time::parse_rfc3339;

/// The most a log batch may hold.
pub const MAX_LOG_BATCH_LINES: usize = 1_000;
pub const MAX_LOG_BATCH_BYTES: usize = 1024 * 1024;
/// The most an event body may be.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Who is asking: a token's or a JWT's user, and where their email goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub email: Option<String>,
}

/// A page of tasks.
#[derive(Debug)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    pub next_cursor: Option<String>,
}

/// A page of a user's outbound messages.
#[derive(Debug)]
pub struct MessagePage {
    pub messages: Vec<OutboundMessage>,
    pub next_cursor: Option<String>,
}

/// A page of log lines.
#[derive(Debug)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    pub next_cursor: Option<String>,
}

/// How a runner event was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAck {
    Applied,
    /// Nothing to change (a repeated `task.started`, a progress note).
    Unchanged,
    /// The `webhook-id` was already processed.
    Duplicate,
}

/// How a log batch was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAck {
    pub stored: usize,
    pub duplicates: usize,
}

/// The most log lines one attempt may store; later lines are dropped, and one marker line (at
/// this `seq`) says so. With the 16 KiB cut of a line this bounds an attempt's log.
pub const MAX_LOG_LINES_PER_ATTEMPT: u64 = 20_000;

/// The users' and the runners' side of the product.
pub struct TaskApi {
    pub engine: Engine,
    pub logs: Arc<dyn LogStore>,
    pub secrets: Arc<dyn SecretSource>,
    /// The outbound message records (`GET /messages`); see [`TaskApi::with_messages`].
    pub messages: Arc<dyn MessageStore>,
    /// The attempts' files (`GET /tasks/{id}/artifacts`); see [`TaskApi::with_artifacts`].
    pub artifacts: Arc<dyn ArtifactStore>,
    /// One bucket per user for every request that changes something.
    pub limiter: RateLimiter,
    /// Resolves repository hosts for the address rule.
    pub resolver: Arc<dyn Resolver>,
    /// Open log streams per user (at most [`crate::stream::MAX_STREAMS_PER_USER`]).
    pub streams: StreamSlots,
    /// The attempt each task was found at by a log batch, so the next batches need not read it.
    attempts_seen: AttemptsSeen,
}

/// The attempt each task was last read at, for the log batch check "not beyond the task's
/// attempt". A task's attempt only grows and a task is never deleted, so a batch of an attempt
/// at or below one seen is admitted without reading the task again. Bounded: emptied when full.
#[derive(Debug, Default)]
struct AttemptsSeen(std::sync::Mutex<std::collections::HashMap<TaskId, Attempt>>);

impl AttemptsSeen {
    /// Tasks remembered at most.
    const CAPACITY: usize = 4_096;

    fn admits(&self, task: &TaskId, attempt: Attempt) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(task).is_some_and(|&at| attempt <= at)
    }

    fn remember(&self, task: &TaskId, attempt: Attempt) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= Self::CAPACITY && !seen.contains_key(task) {
            seen.clear();
        }
        let at = seen.entry(task.clone()).or_insert(attempt);
        *at = (*at).max(attempt);
    }
}

impl TaskApi {
    pub fn new(
        engine: Engine,
        logs: Arc<dyn LogStore>,
        secrets: Arc<dyn SecretSource>,
        limiter: RateLimiter,
    ) -> Self {
        TaskApi {
            engine,
            logs,
            secrets,
            messages: Arc::new(NoMessageStore),
            artifacts: Arc::new(NoArtifactStore),
            limiter,
            resolver: Arc::new(SystemResolver),
            streams: StreamSlots::default(),
            attempts_seen: AttemptsSeen::default(),
        }
    }

    /// Gives `GET /messages` the deployment's message records. Without them it is a `500`
    /// (logged as such), never an empty list that would say no message was sent.
    pub fn with_messages(mut self, messages: Arc<dyn MessageStore>) -> Self {
        self.messages = messages;
        self
    }

    /// Gives the artifact routes the deployment's store. Without it they are a `500` (logged as
    /// such), never an empty list.
    pub fn with_artifacts(mut self, artifacts: Arc<dyn ArtifactStore>) -> Self {
        self.artifacts = artifacts;
        self
    }

    /// Replaces the system's resolver (tests resolve names of their own).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    fn limit(&self, who: &Principal) -> Result<(), AppError> {
        self.limiter
            .check(&who.user)
            .map_err(|retry_after| AppError::RateLimited { retry_after })
    }

    /// `POST /tasks`. Returns the task and whether it was created before under the same key.
    pub async fn create(
        &self,
        who: &Principal,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<(Task, bool), AppError> {
        self.limit(who)?;
        let settings = &self.engine.settings;
        let now = self.engine.now();
        let context = ConfigContext {
            now,
            owner_has_email: who.email.as_deref().is_some_and(|e| !e.is_empty()),
            ghl_location_configured: settings.ghl.location_id.is_some(),
            browsers: settings.browsers,
        };
        let mut new = NewTask::parse_in(body, settings.repos, &context)?;
        // The fingerprint is stored beside the key, and the body may hold credentials: keyed
        // with the master secret, it cannot be used to guess them.
        let secrets = self.engine_secrets().await?;
        if let Some(master) = secrets.webhook_master.as_ref() {
            let key = master.derive_key("pithy-jaunt/idempotency-fingerprint/v1");
            new.fingerprint = crate::create::hex_digest(&crate::signing::hmac_sha256(
                &key,
                new.fingerprint.as_bytes(),
            ));
        }
        if !TaskKind::of(&new.kind).is_builtin() {
            settings
                .repo_rules
                .check(&new.repo_url, self.resolver.as_ref())
                .await?;
        }
        let record = match idempotency_key {
            Some(key) => {
                let valid =
                    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
                if !valid {
                    return Err(AppError::validation(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    ));
                }
                Some(IdempotencyRecord {
                    owner: who.user.clone(),
                    key: key.to_owned(),
                    fingerprint: new.fingerprint.clone(),
                    expires_at: now + settings.dedupe_retention,
                })
            }
            None => None,
        };
        let (mut task, effects) = new.into_task(
            who.user.clone(),
            who.email.clone(),
            settings.max_attempts,
            now,
            &settings.policy,
        );
        if let Some(config) = &mut task.config {
            // Credentials are sealed before the task is first stored, under its own id.
            let master = secrets.webhook_master.as_ref().ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("no master secret to seal credentials with"))
            })?;
            config.seal(&Sealer::new(master), &task.id);
        }
        match self.engine.store.create(&task, record.as_ref()).await? {
            CreateOutcome::Created => {
                tracing::info!(task_id = %task.id, status = %task.status, "task created");
                self.engine.feed.publish(&task.id);
                if let Some(observer) = &self.engine.observer {
                    observer.created(&task);
                }
                self.engine.run_effects(&task, &effects).await;
                Ok((task, false))
            }
            CreateOutcome::Existing(first) if first.owner == who.user => Ok((*first, true)),
            CreateOutcome::Existing(_) | CreateOutcome::KeyConflict => Err(AppError::conflict(
                "this Idempotency-Key was already used with a different request",
            )),
        }
    }

    /// `GET /tasks`.
    pub async fn list(
        &self,
        who: &Principal,
        status: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<TaskPage, AppError> {
        let status = status
            .filter(|s| !s.is_empty())
            .map(TaskStatus::parse)
            .transpose()?;
        let limit = parse_limit(limit, 20, 100)?;
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(decode_list_cursor)
            .transpose()?;
        let mut tasks = self
            .engine
            .store
            .list(&who.user, status, limit + 1, after.as_ref())
            .await?;
        let next_cursor = if tasks.len() > limit {
            tasks.truncate(limit);
            tasks.last().map(encode_list_cursor)
        } else {
            None
        };
        Ok(TaskPage { tasks, next_cursor })
    }

    /// `GET /tasks/{id}`: another user's task is not found, exactly like a missing one.
    pub async fn get(&self, who: &Principal, id: &str) -> Result<Task, AppError> {
        let id = TaskId::parse(id).map_err(|_| AppError::NotFound)?;
        match self.engine.store.get(&id).await? {
            Some(task) if task.owner == who.user => Ok(task),
            _ => Err(AppError::NotFound),
        }
    }

    /// `POST /tasks/{id}/execute`: safe to repeat while the dispatch is under way.
    pub async fn execute(&self, who: &Principal, id: &str) -> Result<Task, AppError> {
        self.user_input(who, id, Input::Execute).await
    }

    /// `POST /tasks/{id}/approve`.
    pub async fn approve(&self, who: &Principal, id: &str) -> Result<Task, AppError> {
        self.user_input(who, id, Input::Approve).await
    }

    /// `POST /tasks/{id}/cancel`.
    pub async fn cancel(&self, who: &Principal, id: &str) -> Result<Task, AppError> {
        self.user_input(who, id, Input::Cancel).await
    }

    /// `POST /tasks/{id}/retry`.
    pub async fn retry(&self, who: &Principal, id: &str) -> Result<Task, AppError> {
        self.user_input(who, id, Input::Retry).await
    }

    async fn user_input(&self, who: &Principal, id: &str, input: Input) -> Result<Task, AppError> {
        self.limit(who)?;
        let task = self.get(who, id).await?;
        match self.engine.apply_to(task, &input, None).await {
            Ok(Applied::Changed(t) | Applied::Unchanged(t)) => Ok(t),
            Ok(Applied::Duplicate) => self.get(who, id).await,
            Err(e) => Err(apply_error(e)),
        }
    }

    /// `GET /tasks/{id}/executions`.
    pub async fn executions(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Vec<ExecutionView>, AppError> {
        let task = self.get(who, id).await?;
        Ok(task.executions.iter().map(ExecutionView::from).collect())
    }

    /// `GET /tasks/{id}/logs`.
    pub async fn logs(
        &self,
        who: &Principal,
        id: &str,
        cursor: Option<&str>,
        limit: Option<&str>,
    ) -> Result<LogPage, AppError> {
        let task = self.get(who, id).await?;
        let limit = parse_limit(limit, 500, 1000)?;
        let after = parse_log_cursor(cursor)?;
        let lines = self
            .logs
            .read(&task.id, after, limit, self.engine.now())
            .await?;
        let next_cursor = match lines.last() {
            // A full page, or a task still writing: there may be more after this line.
            Some(last) if lines.len() == limit || !task.status.is_terminal() => {
                Some(last.cursor().encode())
            }
            Some(_) => None,
            None if !task.status.is_terminal() => after.map(|c| c.encode()),
            None => None,
        };
        Ok(LogPage { lines, next_cursor })
    }

    /// `GET /tasks/{id}/artifacts`: the task's files, by attempt then name.
    pub async fn artifacts(&self, who: &Principal, id: &str) -> Result<Vec<Artifact>, AppError> {
        let task = self.get(who, id).await?;
        Ok(self.artifacts.list(&task.id, self.engine.now()).await?)
    }

    /// `GET /tasks/{id}/artifacts/{name}`: one file and what it is.
    pub async fn artifact(
        &self,
        who: &Principal,
        id: &str,
        name: &str,
    ) -> Result<(Artifact, Vec<u8>), AppError> {
        let task = self.get(who, id).await?;
        let missing = || AppError::Missing(format!("the task has no artifact {name:?}"));
        let name = ArtifactName::parse(name).map_err(|_| missing())?;
        self.artifacts
            .get(&task.id, &name, self.engine.now())
            .await?
            .ok_or_else(missing)
    }

    /// `GET /messages`: the caller's outbound messages, newest first, optionally of one task or
    /// in one status.
    pub async fn messages(
        &self,
        who: &Principal,
        task_id: Option<&str>,
        status: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<MessagePage, AppError> {
        let filter = MessageFilter {
            task_id: task_id
                .filter(|t| !t.is_empty())
                .map(TaskId::parse)
                .transpose()?,
            status: status
                .filter(|s| !s.is_empty())
                .map(MessageStatus::parse)
                .transpose()?,
        };
        let limit = parse_limit(limit, 20, 100)?;
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(decode_message_cursor)
            .transpose()?;
        let mut messages = self
            .messages
            .list(&who.user, &filter, limit + 1, after.as_ref())
            .await?;
        let next_cursor = if messages.len() > limit {
            messages.truncate(limit);
            messages.last().map(encode_message_cursor)
        } else {
            None
        };
        Ok(MessagePage {
            messages,
            next_cursor,
        })
    }

    /// The key a delivery for `task` / `attempt` must be signed with; `401` on any mismatch.
    async fn verify(
        &self,
        task: &TaskId,
        attempt: Attempt,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
    ) -> Result<(), AppError> {
        let secrets = self.engine_secrets().await?;
        let master = secrets.webhook_master.as_ref().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("no webhook master secret is configured"))
        })?;
        let key = master.derive(task, attempt);
        key.verify(headers, body, self.engine.now().timestamp())
            .map_err(|e: SignatureError| AppError::Unauthorized(format!("invalid signature: {e}")))
    }

    async fn engine_secrets(&self) -> Result<Arc<crate::ports::Secrets>, AppError> {
        Ok(self.secrets.secrets().await?)
    }

    /// `POST /webhooks/runner`.
    pub async fn receive_event(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
    ) -> Result<EventAck, AppError> {
        if body.len() > MAX_EVENT_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "an event may be at most {MAX_EVENT_BYTES} bytes"
            )));
        }
        let (task_id, attempt) = addressee(body)?;
        self.verify(&task_id, attempt, headers, body).await?;
        let input = Input::Runner {
            attempt,
            event: runner_event(body)?,
        };
        let webhook_id = WebhookId::parse(headers.id.unwrap_or_default())?;
        let now = self.engine.now();
        if self.engine.store.webhook_seen(&webhook_id, now).await? {
            return Ok(EventAck::Duplicate);
        }
        let receipt = WebhookReceipt {
            id: webhook_id,
            expires_at: now + self.engine.settings.dedupe_retention,
        };
        match self.engine.apply(&task_id, &input, Some(&receipt)).await {
            Ok(Applied::Changed(_)) => Ok(EventAck::Applied),
            Ok(Applied::Unchanged(_)) => Ok(EventAck::Unchanged),
            Ok(Applied::Duplicate) => Ok(EventAck::Duplicate),
            Err(ApplyError::Refused(message)) => {
                // Signed right but refused: counted for the owner's webhook_activity report.
                if let Err(ApplyError::Internal(e)) = self
                    .engine
                    .apply(&task_id, &Input::CallbackRefused, None)
                    .await
                {
                    tracing::warn!(task_id = %task_id, error = format!("{e:#}"), "could not count a refused callback");
                }
                Err(AppError::Conflict(message))
            }
            Err(e) => Err(apply_error(e)),
        }
    }

    /// `POST /webhooks/runner/logs`.
    pub async fn receive_logs(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
    ) -> Result<LogAck, AppError> {
        if body.len() > MAX_LOG_BATCH_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "a log batch may be at most {MAX_LOG_BATCH_BYTES} bytes"
            )));
        }
        let (task_id, attempt) = addressee(body)?;
        self.verify(&task_id, attempt, headers, body).await?;
        let batch = decode_log_batch(body)?;
        if !self.attempts_seen.admits(&task_id, attempt) {
            let task = self.engine.load(&task_id).await.map_err(apply_error)?;
            if attempt > task.attempt {
                return Err(AppError::conflict(format!(
                    "the batch is for attempt {attempt}; the current attempt is {}",
                    task.attempt
                )));
            }
            self.attempts_seen.remember(&task_id, task.attempt);
        }
        let lines = batch_lines(batch, attempt)?;
        let sent = lines.len();
        let now = self.engine.now();
        let stored = self
            .logs
            .append(&task_id, &lines, now + self.engine.settings.log_retention)
            .await?;
        if stored > 0 {
            self.engine.feed.publish(&task_id);
        }
        Ok(LogAck {
            stored,
            duplicates: sent - stored,
        })
    }
}

impl TaskApi {
    /// `POST /webhooks/runner/artifacts`: one file of an attempt, stored once under its name.
    pub async fn receive_artifact(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
    ) -> Result<PutOutcome, AppError> {
        if body.len() > MAX_UPLOAD_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "an artifact may be at most {MAX_ARTIFACT_BYTES} bytes"
            )));
        }
        let (task_id, attempt) = addressee(body)?;
        self.verify(&task_id, attempt, headers, body).await?;
        let upload = Upload::parse(body)?;
        let task = self.engine.load(&task_id).await.map_err(apply_error)?;
        if attempt > task.attempt {
            return Err(AppError::conflict(format!(
                "the artifact is for attempt {attempt}; the current attempt is {}",
                task.attempt
            )));
        }
        let now = self.engine.now();
        // Read then written: two uploads at once may pass the quota by one each, which bounds
        // what a runner can store all the same.
        let stored = self.artifacts.list(&task_id, now).await?;
        if stored.iter().any(|a| a.name == upload.name) {
            return Ok(PutOutcome::Duplicate);
        }
        if stored.iter().filter(|a| a.attempt == attempt).count() >= MAX_ARTIFACTS_PER_ATTEMPT {
            return Err(AppError::conflict(format!(
                "attempt {attempt} already stored its quota of {MAX_ARTIFACTS_PER_ATTEMPT} artifacts"
            )));
        }
        let (name, bytes) = upload.into_stored_bytes();
        let expires_at = now + self.engine.settings.log_retention;
        Ok(self
            .artifacts
            .put(&task_id, attempt, &name, bytes, expires_at)
            .await?)
    }
}

/// Maps the engine's refusal to the API's errors.
pub fn apply_error(e: ApplyError) -> AppError {
    match e {
        ApplyError::NotFound => AppError::NotFound,
        ApplyError::Refused(message) => AppError::Conflict(message),
        ApplyError::Internal(e) => AppError::Internal(e),
    }
}

/// A runner event body read exactly as `POST /webhooks/runner` reads it once the signature
/// holds: whom it is for and the event. No I/O; for fuzzing and tests.
pub fn parse_event_body(body: &[u8]) -> Result<(TaskId, Attempt, RunnerEvent), AppError> {
    let (task, attempt) = addressee(body)?;
    Ok((task, attempt, runner_event(body)?))
}

/// A log batch body read exactly as `POST /webhooks/runner/logs` reads it once the signature
/// holds: whom it is for and its lines, checked, cleaned of secrets, cut, in seq order with a
/// repeated seq kept once. No I/O; for fuzzing and tests.
pub fn parse_log_batch(body: &[u8]) -> Result<(TaskId, Attempt, Vec<LogLine>), AppError> {
    let (task, attempt) = addressee(body)?;
    let lines = batch_lines(decode_log_batch(body)?, attempt)?;
    Ok((task, attempt, lines))
}

fn runner_event(body: &[u8]) -> Result<RunnerEvent, AppError> {
    let event: EventBody = serde_json::from_slice(body)
        .map_err(|e| AppError::validation("body", format!("not a runner event: {e}")))?;
    event.into_runner_event()
}

fn decode_log_batch(body: &[u8]) -> Result<LogBatch, AppError> {
    let batch: LogBatch = serde_json::from_slice(body)
        .map_err(|e| AppError::validation("body", format!("not a log batch: {e}")))?;
    if batch.lines.len() > MAX_LOG_BATCH_LINES {
        return Err(AppError::PayloadTooLarge(format!(
            "a log batch may hold at most {MAX_LOG_BATCH_LINES} lines"
        )));
    }
    Ok(batch)
}

fn batch_lines(batch: LogBatch, attempt: Attempt) -> Result<Vec<LogLine>, AppError> {
    let mut lines = Vec::with_capacity(batch.lines.len());
    for (i, line) in batch.lines.into_iter().enumerate() {
        let ts = parse_rfc3339(&line.ts).ok_or_else(|| {
            ValidationError::new(format!("lines[{i}].ts"), "must be an RFC 3339 timestamp")
        })?;
        let stream = LogStream::parse(&line.stream).ok_or_else(|| {
            ValidationError::new(
                format!("lines[{i}].stream"),
                "must be stdout, stderr or system",
            )
        })?;
        lines.push(LogLine {
            attempt,
            seq: line.seq,
            ts,
            stream,
            text: line.text,
        });
    }
    // A batch that repeats a seq keeps its first line, as a retried batch would.
    lines.sort_by_key(|l| l.seq);
    lines.dedup_by_key(|l| l.seq);
    // Cleaned in order, so a private key printed over several lines is redacted whole.
    let mut cleaner = LineCleaner::default();
    for line in &mut lines {
        line.text = cleaner.clean(&line.text);
    }
    if let Some(first_over) = lines
        .iter()
        .position(|l| l.seq >= MAX_LOG_LINES_PER_ATTEMPT)
    {
        let ts = lines[first_over].ts;
        lines.truncate(first_over);
        // Stored under the quota's own seq, so however many batches go over, it is there once.
        lines.push(LogLine {
            attempt,
            seq: MAX_LOG_LINES_PER_ATTEMPT,
            ts,
            stream: LogStream::System,
            text: format!(
                "[the log of this attempt reached its quota of {MAX_LOG_LINES_PER_ATTEMPT} \
                 lines; later lines are dropped]"
            ),
        });
    }
    Ok(lines)
}

/// Reads only whom a callback is for, to find the key to check it with.
fn addressee(body: &[u8]) -> Result<(TaskId, Attempt), AppError> {
    #[derive(Deserialize)]
    struct Addressee {
        task_id: String,
        attempt: u32,
    }
    let a: Addressee = serde_json::from_slice(body).map_err(|_| {
        AppError::validation("body", "must be a JSON object with task_id and attempt")
    })?;
    let task = TaskId::parse(&a.task_id)?;
    if a.attempt == 0 {
        return Err(AppError::validation("attempt", "counts from 1"));
    }
    Ok((task, Attempt(a.attempt)))
}

#[derive(Debug, Deserialize)]
struct EventBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    pr_url: Option<String>,
    #[serde(default)]
    error: Option<TaskError>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    metadata: Option<AgentMetadata>,
}

const MAX_ERROR_MESSAGE_CHARS: usize = 4_000;

impl EventBody {
    fn into_runner_event(self) -> Result<RunnerEvent, AppError> {
        let branch = match self.branch.filter(|b| !b.is_empty()) {
            Some(b) => {
                validate_branch(&b).map_err(|m| AppError::validation("branch", m))?;
                Some(b)
            }
            None => None,
        };
        let pr_url = match self.pr_url.filter(|u| !u.is_empty()) {
            Some(u)
                if (u.starts_with("https://") || u.starts_with("http://"))
                    && u.len() <= 2048
                    && !u.contains(char::is_whitespace) =>
            {
                Some(u)
            }
            Some(_) => return Err(AppError::validation("pr_url", "must be an http(s) URL")),
            None => None,
        };
        let error = self.error.map(clean_error).transpose()?;
        let usage = self.usage.map(check_usage).transpose()?;
        let metadata = self.metadata.map(AgentMetadata::bounded);
        Ok(match self.kind.as_str() {
            "task.started" => RunnerEvent::Started,
            "task.progress" => RunnerEvent::Progress,
            "task.completed" => {
                if branch.is_none() && pr_url.is_none() {
                    return Err(AppError::validation(
                        "pr_url",
                        "task.completed carries pr_url or at least branch",
                    ));
                }
                RunnerEvent::Completed {
                    branch,
                    pr_url,
                    usage,
                    metadata,
                }
            }
            "task.failed" => RunnerEvent::Failed {
                error: error.unwrap_or_else(|| {
                    TaskError::new("failed", "the runner reported a failure without details")
                }),
                usage,
                metadata,
            },
            "task.needs_review" => RunnerEvent::NeedsReview {
                error,
                branch,
                pr_url,
                usage,
                metadata,
            },
            _ => {
                return Err(AppError::validation(
                    "type",
                    "must be task.started, task.progress, task.completed, task.failed or task.needs_review",
                ));
            }
        })
    }
}

fn clean_error(e: TaskError) -> Result<TaskError, AppError> {
    let code_ok = (1..=64).contains(&e.code.len())
        && e.code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !code_ok {
        return Err(AppError::validation(
            "error.code",
            "must be a lowercase code such as patch_failed",
        ));
    }
    let message: String = redact(&e.message)
        .chars()
        .take(MAX_ERROR_MESSAGE_CHARS)
        .collect();
    Ok(TaskError {
        code: e.code,
        message,
    })
}

fn check_usage(u: Usage) -> Result<Usage, AppError> {
    if u.cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) {
        return Err(AppError::validation(
            "usage.cost_usd",
            "must be a non-negative number or null",
        ));
    }
    if u.model.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(AppError::validation("usage.model", "is too long"));
    }
    Ok(u)
}

#[derive(Debug, Deserialize)]
struct LogBatch {
    lines: Vec<LogLineIn>,
}

#[derive(Debug, Deserialize)]
struct LogLineIn {
    seq: u64,
    ts: String,
    stream: String,
    text: String,
}

fn parse_limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, AppError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(AppError::validation(
                "limit",
                format!("must be a number from 1 to {max}"),
            )),
        },
    }
}

/// Parses a log cursor (also a `Last-Event-ID`).
pub fn parse_log_cursor(raw: Option<&str>) -> Result<Option<LogCursor>, AppError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => LogCursor::decode(s)
            .map(Some)
            .ok_or_else(|| AppError::validation("cursor", "is not a cursor this API gave out")),
    }
}

fn encode_list_cursor(task: &Task) -> String {
    B64URL.encode(format!(
        "{}|{}",
        task.created_at.timestamp_micros(),
        task.id
    ))
}

fn decode_list_cursor(raw: &str) -> Result<ListCursor, AppError> {
    let bad = || AppError::validation("cursor", "is not a cursor this API gave out");
    let bytes = B64URL.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, id) = text.split_once('|').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    Ok(ListCursor {
        created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
        id: TaskId::parse(id).map_err(|_| bad())?,
    })
}

fn encode_message_cursor(message: &OutboundMessage) -> String {
    B64URL.encode(format!(
        "{}|{}",
        message.created_at.timestamp_micros(),
        message.id
    ))
}

fn decode_message_cursor(raw: &str) -> Result<MessageCursor, AppError> {
    let bad = || AppError::validation("cursor", "is not a cursor this API gave out");
    let bytes = B64URL.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, id) = text.split_once('|').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    Ok(MessageCursor {
        created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
        id: MessageId::parse(id).map_err(|_| bad())?,
    })
}

/// The message store of a deployment that wired none: every call is an error, so a missing
/// store shows as a failure and never as "no messages".
struct NoMessageStore;

#[async_trait::async_trait]
impl MessageStore for NoMessageStore {
    async fn insert(&self, _: &OutboundMessage) -> anyhow::Result<bool> {
        anyhow::bail!("this deployment has no message store")
    }

    async fn get(&self, _: &MessageId) -> anyhow::Result<Option<OutboundMessage>> {
        anyhow::bail!("this deployment has no message store")
    }

    async fn update(&self, _: &OutboundMessage, _: u64) -> anyhow::Result<bool> {
        anyhow::bail!("this deployment has no message store")
    }

    async fn list(
        &self,
        _: &UserId,
        _: &MessageFilter,
        _: usize,
        _: Option<&MessageCursor>,
    ) -> anyhow::Result<Vec<OutboundMessage>> {
        anyhow::bail!("this deployment has no message store")
    }

    async fn due(
        &self,
        _: chrono::DateTime<chrono::Utc>,
        _: usize,
    ) -> anyhow::Result<Vec<OutboundMessage>> {
        anyhow::bail!("this deployment has no message store")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_batch_should_be_admitted_unread_only_up_to_the_attempt_seen() {
        let seen = AttemptsSeen::default();
        let task = TaskId::generate(chrono::Utc::now());
        assert!(
            !seen.admits(&task, Attempt(1)),
            "nothing seen: read the task"
        );
        seen.remember(&task, Attempt(2));
        assert!(seen.admits(&task, Attempt(1)));
        assert!(seen.admits(&task, Attempt(2)));
        assert!(
            !seen.admits(&task, Attempt(3)),
            "a later attempt than seen is checked against the task"
        );
        seen.remember(&task, Attempt(1));
        assert!(
            seen.admits(&task, Attempt(2)),
            "what was seen never goes back"
        );
        let other = TaskId::generate(chrono::Utc::now());
        assert!(!seen.admits(&other, Attempt(1)));
    }

    fn line(seq: u64, text: &str) -> Value {
        json!({"seq": seq, "ts": "2026-01-01T00:00:00Z", "stream": "stdout", "text": text})
    }

    #[test]
    fn a_log_batch_is_read_in_seq_order_with_a_private_key_redacted_across_its_lines() {
        // Sent out of order, with a repeated seq: stored in order, the first copy kept.
        let body = json!({"task_id": "tsk_1", "attempt": 2, "lines": [
            line(3, "MIIEowIBAAKCAQEAsecretbody"),
            line(1, "key follows"),
            line(2, "-----BEGIN RSA PRIVATE KEY-----"),
            line(4, "-----END RSA PRIVATE KEY-----"),
            line(5, "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
            line(1, "a repeat"),
        ]});
        let (task, attempt, lines) = parse_log_batch(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(task.as_str(), "tsk_1");
        assert_eq!(attempt, Attempt(2));
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "key follows",
                "-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----",
                "[REDACTED]",
                "[REDACTED]-----END RSA PRIVATE KEY-----",
                "Authorization: Bearer [REDACTED]",
            ]
        );
    }

    #[test]
    fn a_log_batch_line_that_does_not_parse_is_named_by_its_index_as_sent() {
        let mut bad = line(1, "x");
        bad["stream"] = json!("stdin");
        let body = json!({"task_id": "tsk_1", "attempt": 1, "lines": [line(9, "y"), bad]});
        match parse_log_batch(&serde_json::to_vec(&body).unwrap()) {
            Err(AppError::Validation(v)) => assert_eq!(v.field, "lines[1].stream"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn an_event_body_is_read_as_the_webhook_reads_it() {
        let body =
            br#"{"task_id": "tsk_1", "attempt": 1, "type": "task.completed", "branch": "pj/x"}"#;
        let (_, attempt, event) = parse_event_body(body).unwrap();
        assert_eq!(attempt, Attempt(1));
        assert!(matches!(event, RunnerEvent::Completed { .. }));
        let zero = br#"{"task_id": "tsk_1", "attempt": 0, "type": "task.started"}"#;
        assert!(parse_event_body(zero).is_err(), "attempts count from 1");
    }

    #[test]
    fn a_message_cursor_reads_back_and_a_made_up_one_names_the_cursor() {
        let task = TaskId::generate(chrono::Utc::now());
        let at = DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        let message = OutboundMessage::new(
            MessageId::derive(&task, Attempt(1), "completion/0"),
            UserId::parse("alice").unwrap(),
            task,
            Attempt(1),
            crate::messages::Channel::Email,
            "alice@example.com".into(),
            None,
            crate::messages::MessageContent {
                text: "hi".into(),
                html: None,
                payload: None,
            },
            at,
            chrono::Duration::hours(24),
        );
        let cursor = decode_message_cursor(&encode_message_cursor(&message)).unwrap();
        assert_eq!(cursor.created_at, at);
        assert_eq!(cursor.id, message.id);
        for bad in ["x", "MTIz", &B64URL.encode("12|tsk_1")] {
            match decode_message_cursor(bad) {
                Err(AppError::Validation(v)) => assert_eq!(v.field, "cursor"),
                other => panic!("{bad}: expected a validation error, got {other:?}"),
            }
        }
    }
}
