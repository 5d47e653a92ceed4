//! The task record and its public view.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::AgentMetadata;
use crate::error::ValidationError;
use crate::ids::{Attempt, TaskId, UserId};
use crate::kinds::{KindConfig, NotifySpec, TaskKind};
use crate::time::rfc3339;

/// The statuses of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    PendingReview,
    Scheduled,
    Queued,
    Running,
    Completed,
    Failed,
    NeedsReview,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::PendingReview,
        TaskStatus::Scheduled,
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::NeedsReview,
        TaskStatus::Cancelled,
    ];

    /// No event changes a terminal task; only a user's retry starts it again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed
                | TaskStatus::Failed
                | TaskStatus::NeedsReview
                | TaskStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::PendingReview => "pending_review",
            TaskStatus::Scheduled => "scheduled",
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::NeedsReview => "needs_review",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        TaskStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    "must be one of pending_review, scheduled, queued, running, completed, failed, needs_review, cancelled",
                )
            })
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error codes of the contract. Runners may report others; they are kept as they come.
pub mod codes {
    pub const TIMEOUT: &str = "timeout";
    pub const RUNNER_EXITED: &str = "runner_exited";
    pub const DISPATCH_FAILED: &str = "dispatch_failed";
    pub const PATCH_FAILED: &str = "patch_failed";
    pub const LLM_FAILED: &str = "llm_failed";
    pub const PUSH_FAILED: &str = "push_failed";
    pub const PR_FAILED: &str = "pr_failed";
    pub const BUDGET_EXCEEDED: &str = "budget_exceeded";
    // The built-in kinds' codes.
    pub const HTTP_ERROR: &str = "http_error";
    pub const NETWORK_ERROR: &str = "network_error";
    pub const INVALID_CONFIG: &str = "invalid_config";
    pub const PROVIDER_ERROR: &str = "provider_error";
    pub const BROWSER_ERROR: &str = "browser_error";
    pub const EXTRACTION_FAILED: &str = "extraction_failed";
    pub const DELIVERY_FAILED: &str = "delivery_failed";
}

/// `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

impl TaskError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        TaskError {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The failures of infrastructure, which start a new attempt; agent outcomes never do.
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self.code.as_str(),
            codes::TIMEOUT | codes::RUNNER_EXITED | codes::DISPATCH_FAILED
        )
    }
}

/// Tokens and cost of the model calls of an attempt, or summed over a task's attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    /// `null` when a model's price is unknown.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub model: Option<String>,
}

impl Default for Usage {
    /// Nothing used yet: zero tokens at a known cost of zero.
    fn default() -> Self {
        Usage {
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: Some(0.0),
            model: None,
        }
    }
}

impl Usage {
    /// Sums token counts; the cost stays known only while every part's cost is known.
    pub fn add(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cost_usd: match (self.cost_usd, other.cost_usd) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            },
            model: other.model.clone().or_else(|| self.model.clone()),
        }
    }
}

/// Which LLM the runner asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub provider: Provider,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    Anthropic,
}

impl Provider {
    /// `openai` or `anthropic`.
    pub fn parse(raw: &str) -> Option<Provider> {
        match raw {
            "openai" => Some(Provider::Openai),
            "anthropic" => Some(Provider::Anthropic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    /// The provider's model for a task that names none, and the one a runner falls back to
    /// when the other provider keeps failing.
    pub const fn default_model(self) -> &'static str {
        match self {
            Provider::Openai => "gpt-4.1",
            Provider::Anthropic => "claude-sonnet-4-5",
        }
    }

    /// The other provider.
    pub const fn other(self) -> Provider {
        match self {
            Provider::Openai => Provider::Anthropic,
            Provider::Anthropic => Provider::Openai,
        }
    }
}

impl ModelSpec {
    /// A model spec from its parts, or which part is wrong (`"provider"` or `"name"`) and why.
    /// The one rule for a model, whether it comes in a task or in the configuration.
    pub fn new(provider: &str, name: &str) -> Result<ModelSpec, (&'static str, &'static str)> {
        let provider =
            Provider::parse(provider).ok_or(("provider", "must be openai or anthropic"))?;
        let name_ok = (1..=128).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/-@".contains(&b));
        if !name_ok {
            return Err((
                "name",
                "must be a model name such as gpt-4.1 or claude-sonnet-4-5",
            ));
        }
        Ok(ModelSpec {
            provider,
            name: name.to_owned(),
        })
    }

    /// `provider/name`, as the configuration writes it (`openai/gpt-4.1`).
    pub fn parse_spec(raw: &str) -> Result<ModelSpec, String> {
        let (provider, name) = raw
            .trim()
            .split_once('/')
            .ok_or("must be provider/name, such as openai/gpt-4.1")?;
        ModelSpec::new(provider, name).map_err(|(part, why)| format!("the {part} {why}"))
    }
}

/// Where an attempt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerKind {
    Local,
    GithubActions,
    Daytona,
    /// The backend itself: the built-in kinds (an API call, a message, a report) run in its
    /// own workers, not in a runner process.
    Builtin,
}

impl RunnerKind {
    pub const ALL: [RunnerKind; 4] = [
        RunnerKind::Local,
        RunnerKind::GithubActions,
        RunnerKind::Daytona,
        RunnerKind::Builtin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Local => "local",
            RunnerKind::GithubActions => "github_actions",
            RunnerKind::Daytona => "daytona",
            RunnerKind::Builtin => "builtin",
        }
    }

    /// Whether the runner's environment stays up after the agent reported its outcome (a
    /// Daytona sandbox), so the attempt's end must stop it.
    pub fn outlives_its_run(self) -> bool {
        matches!(self, RunnerKind::Daytona)
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "local" => Ok(RunnerKind::Local),
            "github_actions" => Ok(RunnerKind::GithubActions),
            "daytona" => Ok(RunnerKind::Daytona),
            _ => Err(ValidationError::new(
                "PJ_RUNNER",
                "must be local, github_actions or daytona",
            )),
        }
    }
}

/// Signed runner callbacks for one task, for the `webhook_activity` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallbackCounts {
    pub accepted: u32,
    pub refused: u32,
}

/// Where one attempt stands. Requested, Claimed and Dispatched all show as a `queued` task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecState {
    /// A dispatch message is on its way.
    Requested,
    /// A dispatcher took it and is starting the runner; the outcome is not recorded yet.
    Claimed,
    /// The runner accepted it; `task.started` has not come yet.
    Dispatched,
    Running,
    Completed,
    Failed,
    NeedsReview,
    Cancelled,
}

impl ExecState {
    pub const ALL: [ExecState; 8] = [
        ExecState::Requested,
        ExecState::Claimed,
        ExecState::Dispatched,
        ExecState::Running,
        ExecState::Completed,
        ExecState::Failed,
        ExecState::NeedsReview,
        ExecState::Cancelled,
    ];

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ExecState::Completed
                | ExecState::Failed
                | ExecState::NeedsReview
                | ExecState::Cancelled
        )
    }

    /// Whether a runner may exist for this attempt.
    pub fn may_have_runner(self) -> bool {
        matches!(
            self,
            ExecState::Claimed | ExecState::Dispatched | ExecState::Running
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecState::Requested => "queued",
            ExecState::Claimed => "dispatching",
            ExecState::Dispatched => "dispatched",
            ExecState::Running => "running",
            ExecState::Completed => "completed",
            ExecState::Failed => "failed",
            ExecState::NeedsReview => "needs_review",
            ExecState::Cancelled => "cancelled",
        }
    }
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub attempt: Attempt,
    pub state: ExecState,
    pub runner: RunnerKind,
    /// What the runner adapter needs to find the runner again (a process id, a sandbox id).
    #[serde(default)]
    pub runner_ref: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// The last sign of dispatch progress; the sweeper calls a dispatch lost when it is old.
    pub touched_at: DateTime<Utc>,
    #[serde(default)]
    pub dispatched_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default)]
    pub error: Option<TaskError>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Dispatch tries that failed for a reason that may pass.
    #[serde(default)]
    pub dispatch_failures: u32,
    #[serde(default)]
    pub last_dispatch_error: Option<String>,
    /// How often the sweeper had to send the dispatch message again.
    #[serde(default)]
    pub requeues: u32,
    /// What asked for this attempt.
    #[serde(default)]
    pub triggered_by: Option<Trigger>,
    /// An automatic retry waits until then (its backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// What a built-in kind's attempt produced. Only the latest attempt with a result keeps
    /// it whole (a task is one stored document of bounded size); earlier ones keep the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// What a code change's agent did on this attempt (its runner's final event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AgentMetadata>,
}

/// What asked for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Create,
    Execute,
    Approve,
    Retry,
    Schedule,
    AutomaticRetry,
}

impl Trigger {
    pub const ALL: [Trigger; 6] = [
        Trigger::Create,
        Trigger::Execute,
        Trigger::Approve,
        Trigger::Retry,
        Trigger::Schedule,
        Trigger::AutomaticRetry,
    ];

    /// The name it is stored and shown under (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Create => "create",
            Trigger::Execute => "execute",
            Trigger::Approve => "approve",
            Trigger::Retry => "retry",
            Trigger::Schedule => "schedule",
            Trigger::AutomaticRetry => "automatic_retry",
        }
    }
}

/// One step of a built-in kind's attempt, with its time and outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub action: String,
    pub ok: bool,
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Execution {
    pub fn requested(
        attempt: Attempt,
        runner: RunnerKind,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Self {
        Execution {
            attempt,
            state: ExecState::Requested,
            runner,
            runner_ref: None,
            requested_at: now,
            touched_at: now,
            dispatched_at: None,
            started_at: None,
            finished_at: None,
            deadline: None,
            error: None,
            usage: None,
            dispatch_failures: 0,
            last_dispatch_error: None,
            requeues: 0,
            triggered_by: Some(trigger),
            not_before: None,
            result: None,
            result_summary: None,
            steps: Vec::new(),
            metadata: None,
        }
    }

    /// From start to finish, once both are known.
    pub fn duration_ms(&self) -> Option<u64> {
        let from = self.started_at.or(self.dispatched_at)?;
        let to = self.finished_at?;
        Some((to - from).num_milliseconds().max(0) as u64)
    }
}

/// Extra material for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TaskContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coderabbit_analysis: Option<String>,
}

/// The whole stored record of a task. Stores keep it as one document, so every change,
/// executions included, is one compare-and-set on `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub owner: UserId,
    #[serde(default)]
    pub owner_email: Option<String>,
    pub kind: String,
    pub status: TaskStatus,
    pub title: String,
    pub prompt: String,
    pub repo_url: String,
    pub base_branch: String,
    pub branch: String,
    #[serde(default)]
    pub pr_url: Option<String>,
    #[serde(default)]
    pub error: Option<TaskError>,
    pub attempt: Attempt,
    pub max_attempts: u32,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub model: Option<ModelSpec>,
    #[serde(default)]
    pub notify_email: Option<String>,
    #[serde(default)]
    pub context: TaskContext,
    #[serde(default)]
    pub requires_review: bool,
    #[serde(default)]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// A built-in kind's config, credentials sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KindConfig>,
    /// Where the outcome is sent; absent: an email to the notification address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
    /// The latest attempt's result (built-in kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_summary: Option<String>,
    /// Runner callbacks for this task that were signed right, accepted or refused.
    #[serde(default)]
    pub callbacks: CallbackCounts,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub executions: Vec<Execution>,
    /// Attempts whose completion email is still to be sent.
    #[serde(default)]
    pub notify_pending: Vec<Attempt>,
    /// When the pending email was last asked for; the sweeper asks again when it is old.
    #[serde(default)]
    pub notify_touched_at: Option<DateTime<Utc>>,
    /// Attempts whose email went out, so a redelivered message sends nothing.
    #[serde(default)]
    pub notified: Vec<Attempt>,
    /// Attempts whose email can never be sent (the address was refused for good): not sent,
    /// and not tried again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_failed: Vec<Attempt>,
    /// When the sweeper should look at this task next; derived, kept for the stores' index.
    #[serde(default)]
    pub sweep_at: Option<DateTime<Utc>>,
    /// Incremented by every stored change; the compare-and-set token.
    pub version: u64,
}

impl Task {
    /// The execution of the current attempt, if one was requested.
    pub fn current_execution(&self) -> Option<&Execution> {
        self.executions.iter().find(|e| e.attempt == self.attempt)
    }

    pub fn current_execution_mut(&mut self) -> Option<&mut Execution> {
        let attempt = self.attempt;
        self.executions.iter_mut().find(|e| e.attempt == attempt)
    }

    pub fn task_kind(&self) -> TaskKind {
        TaskKind::of(&self.kind)
    }

    /// The address the completion email goes to.
    pub fn notification_address(&self) -> Option<&str> {
        self.notify_email
            .as_deref()
            .or(self.owner_email.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// The public shape of the contract.
    pub fn view(&self) -> TaskView<'_> {
        TaskView { task: self }
    }
}

/// Serializes a task exactly as the contract's Task object (plus a few additive fields).
pub struct TaskView<'a> {
    task: &'a Task,
}

impl<'a> Serialize for TaskView<'a> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let t = self.task;
        let usage = UsageView(&t.usage, t.model.as_ref());
        // The repository fields belong to code changes; the other kinds show them as null.
        let code = !t.task_kind().is_builtin();
        let code_field = |v: &'a str| code.then_some(v);
        let mut map = serializer.serialize_map(Some(26))?;
        map.serialize_entry("id", &t.id)?;
        map.serialize_entry("kind", &t.kind)?;
        map.serialize_entry("status", &t.status)?;
        map.serialize_entry("title", &t.title)?;
        map.serialize_entry("prompt", &code_field(&t.prompt))?;
        map.serialize_entry("repo_url", &code_field(&t.repo_url))?;
        map.serialize_entry("base_branch", &code_field(&t.base_branch))?;
        map.serialize_entry("branch", &code_field(&t.branch))?;
        map.serialize_entry("pr_url", &t.pr_url)?;
        map.serialize_entry("error", &t.error)?;
        map.serialize_entry("attempt", &t.attempt)?;
        map.serialize_entry("max_attempts", &t.max_attempts)?;
        map.serialize_entry("usage", &usage)?;
        map.serialize_entry("model", &t.model)?;
        map.serialize_entry("requires_review", &t.requires_review)?;
        map.serialize_entry("scheduled_for", &t.scheduled_for.map(rfc3339))?;
        map.serialize_entry("config", &t.config.as_ref().map(KindConfig::public_view))?;
        map.serialize_entry("notify", &t.notify)?;
        map.serialize_entry("result", &t.result)?;
        map.serialize_entry("result_summary", &t.result_summary)?;
        map.serialize_entry("created_at", &rfc3339(t.created_at))?;
        map.serialize_entry("updated_at", &rfc3339(t.updated_at))?;
        map.serialize_entry("started_at", &t.started_at.map(rfc3339))?;
        map.serialize_entry("completed_at", &t.completed_at.map(rfc3339))?;
        map.end()
    }
}

/// The task's usage; before any model call it names the requested model.
struct UsageView<'a>(&'a Usage, Option<&'a ModelSpec>);

impl Serialize for UsageView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let UsageView(usage, requested) = self;
        let model = usage
            .model
            .as_deref()
            .or(requested.map(|m| m.name.as_str()));
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("input_tokens", &usage.input_tokens)?;
        map.serialize_entry("output_tokens", &usage.output_tokens)?;
        map.serialize_entry("cost_usd", &usage.cost_usd)?;
        map.serialize_entry("model", &model)?;
        map.end()
    }
}

/// One row of `GET /tasks/{id}/executions`.
#[derive(Debug, Serialize)]
pub struct ExecutionView {
    pub attempt: Attempt,
    pub status: &'static str,
    pub runner: &'static str,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<TaskError>,
    pub usage: Option<Usage>,
    pub duration_ms: Option<u64>,
    pub triggered_by: Option<Trigger>,
    pub result: Option<serde_json::Value>,
    pub result_summary: Option<String>,
    pub steps: Vec<Step>,
    /// A code change's agent metadata; absent for the built-in kinds and older attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AgentMetadata>,
}

impl From<&Execution> for ExecutionView {
    fn from(e: &Execution) -> Self {
        ExecutionView {
            attempt: e.attempt,
            status: e.state.as_str(),
            runner: e.runner.as_str(),
            started_at: e.started_at.map(rfc3339),
            finished_at: e.finished_at.map(rfc3339),
            error: e.error.clone(),
            usage: e.usage.clone(),
            duration_ms: e.duration_ms(),
            triggered_by: e.triggered_by,
            result: e.result.clone(),
            result_summary: e.result_summary.clone(),
            steps: e.steps.clone(),
            metadata: e.metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_and_a_runner_kind_are_shown_under_their_stored_names() {
        for trigger in Trigger::ALL {
            assert_eq!(
                serde_json::to_value(trigger).unwrap(),
                trigger.as_str(),
                "{trigger:?}"
            );
        }
        for runner in RunnerKind::ALL {
            assert_eq!(
                serde_json::to_value(runner).unwrap(),
                runner.as_str(),
                "{runner:?}"
            );
        }
    }
}
