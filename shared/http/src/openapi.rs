//! `GET /openapi.json`: the OpenAPI 3.1 description of the API.
//!
//! The paths come from the handlers' own `#[utoipa::path]` annotations, and the router mounts
//! each route from that same annotation (`utoipa_axum::routes!`), so a route cannot exist
//! without its description. The shapes below describe what the core serializes (the Task view,
//! the execution view, log lines...); they are the published schema, and the tests check real
//! responses of every route against them, so a field the core adds or renames without them
//! fails a test. The string sets the core lists itself (statuses, kinds, channels) are taken
//! from those lists.
//!
//! The structs and enums here describe; the handlers never build them (they send what the core
//! serializes), hence `dead_code`.
#![allow(dead_code)]

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use http::header;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The document's frame: title, security schemes, tags. The paths and the schemas they use are
/// added by the router (`routes::openapi`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pithy Jaunt",
        description = "Tasks in plain words or typed: a code change becomes a pull request; an API call, a GoHighLevel action, a notification, a reminder, a report or a browser session runs to a result. See docs/http-api.md.",
        license(name = "MIT", identifier = "MIT"),
    ),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode)),
    tags(
        (name = "tasks", description = "A user's tasks, their attempts, logs and files"),
        (name = "messages", description = "The outbound messages of a user's tasks"),
        (name = "runner callbacks", description = "Signed with Standard Webhooks by the runners (docs/runner.md)"),
        (name = "service", description = "The process itself"),
    )
)]
pub struct Frame;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON, built once.
pub(crate) fn document_json(document: impl FnOnce() -> utoipa::openapi::OpenApi) -> String {
    document().to_json().unwrap_or_else(|e| {
        // Serializing a document of our own types cannot fail; should it, the route says so.
        tracing::error!(error = %e, "the OpenAPI description does not serialize");
        String::from("{}")
    })
}

pub(crate) static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| document_json(crate::routes::openapi));

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "This description", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// A string schema whose values are one of the core's own lists.
macro_rules! core_values {
    ($name:ident, $description:literal, $values:expr) => {
        #[doc = $description]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .enum_values(Some($values.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

core_values!(TaskStatus, "A task's status", pj_core::TaskStatus::ALL);
core_values!(TaskKind, "A task's kind", pj_core::kinds::TaskKind::ALL);
core_values!(
    Channel,
    "An outbound message's channel",
    pj_core::messages::Channel::ALL
);
core_values!(
    MessageStatus,
    "An outbound message's status",
    pj_core::messages::MessageStatus::ALL
);

// ---- Errors ----------------------------------------------------------------------------------

/// Every error's shape.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// The field, header or query parameter at fault; `validation_failed` only.
    pub field: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    Unauthorized,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    Internal,
}

// ---- Tasks -----------------------------------------------------------------------------------

/// `{"code", "message"}` of the attempt that ended the task.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

/// Tokens and cost.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[schema(minimum = 0)]
    pub input_tokens: u64,
    #[schema(minimum = 0)]
    pub output_tokens: u64,
    /// `null` once any part's price was unknown.
    #[schema(required = true)]
    pub cost_usd: Option<f64>,
    #[schema(required = true)]
    pub model: Option<String>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    #[schema(pattern = "^(openai|anthropic)$")]
    pub provider: String,
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
}

/// A task (docs/http-api.md, "The Task object").
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    #[schema(pattern = "^tsk_")]
    pub id: String,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub title: String,
    #[schema(required = true)]
    pub prompt: Option<String>,
    #[schema(required = true)]
    pub repo_url: Option<String>,
    #[schema(required = true)]
    pub base_branch: Option<String>,
    #[schema(required = true)]
    pub branch: Option<String>,
    #[schema(required = true)]
    pub pr_url: Option<String>,
    #[schema(required = true)]
    pub error: Option<TaskError>,
    #[schema(minimum = 1)]
    pub attempt: u32,
    #[schema(minimum = 1)]
    pub max_attempts: u32,
    pub usage: Usage,
    #[schema(required = true)]
    pub model: Option<Model>,
    pub requires_review: bool,
    #[schema(required = true, format = DateTime)]
    pub scheduled_for: Option<String>,
    /// A built-in kind's config, credentials shown as `"***"`.
    #[schema(required = true, value_type = Option<Object>)]
    pub config: Option<Value>,
    #[schema(required = true, value_type = Option<Object>)]
    pub notify: Option<Value>,
    /// A built-in kind's outcome (any JSON).
    #[schema(required = true)]
    pub result: Option<Value>,
    #[schema(required = true)]
    pub result_summary: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(required = true, format = DateTime)]
    pub started_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub completed_at: Option<String>,
}

/// `POST /tasks`: a code change (`repo_url`, `prompt`) or a built-in kind (`kind`, `title`,
/// `config`). Any other field is `400` naming it.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "repo_url": "https://github.com/example/repo",
    "prompt": "Add a CONTRIBUTING.md that explains how to run the tests",
    "model": {"provider": "anthropic", "name": "claude-sonnet-4-5"}
}))]
pub struct CreateTask {
    #[schema(max_length = 2048)]
    pub repo_url: Option<String>,
    #[schema(min_length = 1, max_length = 20000)]
    pub prompt: Option<String>,
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[schema(max_length = 200)]
    pub base_branch: Option<String>,
    pub kind: Option<TaskKind>,
    /// The kind's config (docs/http-api.md, "Task kinds").
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<u32>,
    #[schema(value_type = Option<Object>)]
    pub notify: Option<Value>,
    pub execute: Option<bool>,
    pub requires_review: Option<bool>,
    #[schema(format = DateTime)]
    pub scheduled_for: Option<String>,
    pub model: Option<Model>,
    #[schema(max_length = 254)]
    pub notify_email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

// ---- Executions, logs, artifacts, messages ---------------------------------------------------

core_values!(
    ExecutionStatus,
    "An attempt's status",
    pj_core::task::ExecState::ALL
);

core_values!(
    Runner,
    "Where an attempt runs",
    pj_core::task::RunnerKind::ALL
);

core_values!(
    Trigger,
    "What asked for an attempt",
    pj_core::task::Trigger::ALL
);

/// One attempt.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    #[schema(minimum = 1)]
    pub attempt: u32,
    pub status: ExecutionStatus,
    pub runner: Runner,
    #[schema(required = true, format = DateTime)]
    pub started_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub finished_at: Option<String>,
    #[schema(required = true)]
    pub error: Option<TaskError>,
    #[schema(required = true)]
    pub usage: Option<Usage>,
    #[schema(required = true, minimum = 0)]
    pub duration_ms: Option<u64>,
    #[schema(required = true)]
    pub triggered_by: Option<Trigger>,
    #[schema(required = true)]
    pub result: Option<Value>,
    #[schema(required = true)]
    pub result_summary: Option<String>,
    /// A built-in kind's steps: `{"action", "ok", "ms", "output"?, "error"?}`.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Value>,
    /// A code change's agent metadata (numbers only), when its runner reported it.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionList {
    pub executions: Vec<Execution>,
}

core_values!(
    LogStream,
    "Where a log line came from",
    pj_core::ports::LogStream::ALL
);

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogLine {
    #[schema(minimum = 1)]
    pub attempt: u32,
    #[schema(minimum = 0)]
    pub seq: u64,
    #[schema(format = DateTime)]
    pub ts: String,
    pub stream: LogStream,
    pub text: String,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    #[schema(pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]
    pub name: String,
    pub content_type: String,
    #[schema(minimum = 0)]
    pub size: u64,
    #[schema(minimum = 1)]
    pub attempt: u32,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactList {
    pub artifacts: Vec<Artifact>,
}

/// An outbound message of a task.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    #[schema(pattern = "^msg_")]
    pub id: String,
    pub task_id: String,
    pub channel: Channel,
    pub to: String,
    #[schema(required = true)]
    pub subject: Option<String>,
    pub status: MessageStatus,
    #[schema(minimum = 0)]
    pub attempts: u32,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub sent_at: Option<String>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[schema(pattern = "^ok$")]
    pub status: String,
}

// ---- Runner callbacks ------------------------------------------------------------------------

/// `POST /webhooks/runner`: `task.started`, `task.completed`, `task.needs_review`,
/// `task.failed` (docs/runner.md).
#[derive(ToSchema)]
pub struct RunnerEvent {
    #[serde(rename = "type")]
    #[schema(pattern = "^task\\.")]
    pub kind: String,
    pub task_id: String,
    pub attempt: u32,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    Applied,
    Unchanged,
    Duplicate,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventAck {
    pub status: EventStatus,
}

/// `POST /webhooks/runner/logs`: a batch of one attempt's lines (docs/runner.md).
#[derive(ToSchema)]
pub struct LogBatch {
    pub task_id: String,
    pub attempt: u32,
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<Value>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsAck {
    #[schema(minimum = 0)]
    pub stored: u64,
    #[schema(minimum = 0)]
    pub duplicates: u64,
}

/// `POST /webhooks/runner/artifacts`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactUpload {
    pub task_id: String,
    pub attempt: u32,
    pub name: String,
    #[schema(content_encoding = "base64")]
    pub content_base64: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    Stored,
    Duplicate,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadAck {
    pub status: UploadStatus,
}

/// The Standard Webhooks headers every runner callback is signed with (docs/runner.md).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header, rename_all = "kebab-case")]
pub struct WebhookHeaders {
    /// The message id, the same on every retry of one event.
    pub webhook_id: String,
    /// Unix seconds when the message was signed.
    pub webhook_timestamp: String,
    /// `v1,<base64 HMAC-SHA256>`, one or more separated by spaces.
    pub webhook_signature: String,
}
