//! Routes and handlers: parse the request, call the use case, shape the answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pj_core::api::{EventAck, MAX_LOG_BATCH_BYTES, parse_log_cursor};
use pj_core::artifacts::{MAX_UPLOAD_BYTES, PutOutcome};
use pj_core::engine::Callback;
use pj_core::ports::LogLine;
use pj_core::signing::SignatureHeaders;
use pj_core::stream::{StreamEvent, follow};
use pj_core::time::rfc3339;
use pj_core::{AppError, Principal, TaskApi};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes as mounted;

use crate::auth::{Authenticator, GatewayClaims};
use crate::error::ApiError;
use crate::openapi::{self as doc, ErrorBody};

/// What the handlers share.
pub struct AppState {
    pub api: Arc<TaskApi>,
    pub auth: Authenticator,
    /// How often the log stream looks for changes nobody told it about.
    pub stream_poll: Duration,
}

type Shared = Arc<AppState>;

/// The largest `POST /tasks` body.
const MAX_CREATE_BYTES: usize = 1024 * 1024;
/// Room above the log batch limit so an oversized batch is still read and refused with `413`.
const MAX_WEBHOOK_BYTES: usize = MAX_LOG_BATCH_BYTES + 64 * 1024;

/// The whole API.
pub fn router(state: Shared) -> Router {
    routes(
        state,
        &[
            RouteGroup::Users,
            RouteGroup::RunnerEvents,
            RouteGroup::RunnerLogs,
            RouteGroup::LogStream,
        ],
    )
}

/// The routes of the API by who calls them, so that a deployment that splits them (one Lambda
/// function each) mounts only its own; anything else is the contract's `404`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// Users' task routes (but the log stream: artifacts included), `GET /messages` and
    /// `GET /healthz`.
    Users,
    /// `POST /webhooks/runner` and `POST /webhooks/runner/artifacts`.
    RunnerEvents,
    /// `POST /webhooks/runner/logs`.
    RunnerLogs,
    /// `GET /tasks/{id}/logs/stream`.
    LogStream,
}

impl RouteGroup {
    const ALL: [RouteGroup; 4] = [
        RouteGroup::Users,
        RouteGroup::RunnerEvents,
        RouteGroup::RunnerLogs,
        RouteGroup::LogStream,
    ];

    /// Each route is mounted from its handler's `#[utoipa::path]`: its path and method are
    /// written once, and the description cannot leave one out.
    fn mount(self, router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
        match self {
            RouteGroup::Users => router
                .routes(mounted!(healthz))
                // The page is not part of the API: served beside it, not described in it.
                .merge(OpenApiRouter::from(crate::web::routes()))
                .routes(mounted!(doc::openapi_json))
                .routes(mounted!(create_task, list_tasks))
                .routes(mounted!(get_task))
                .routes(mounted!(execute))
                .routes(mounted!(approve))
                .routes(mounted!(cancel))
                .routes(mounted!(retry))
                .routes(mounted!(executions))
                .routes(mounted!(logs))
                .routes(mounted!(list_artifacts))
                .routes(mounted!(get_artifact))
                .routes(mounted!(list_messages)),
            RouteGroup::RunnerEvents => router
                .routes(mounted!(runner_event))
                .routes(mounted!(runner_artifact)),
            RouteGroup::RunnerLogs => router.routes(mounted!(runner_logs)),
            RouteGroup::LogStream => router.routes(mounted!(stream_logs)),
        }
    }
}

/// The OpenAPI description of every route of every group: what `GET /openapi.json` serves,
/// whichever groups a deployment mounts.
pub fn openapi() -> utoipa::openapi::OpenApi {
    RouteGroup::ALL
        .iter()
        .fold(
            OpenApiRouter::with_openapi(doc::Frame::openapi()),
            |router, group| group.mount(router),
        )
        .into_openapi()
}

/// The router of `groups` only, with the layers every route has.
pub fn routes(state: Shared, groups: &[RouteGroup]) -> Router {
    let (router, _) = groups
        .iter()
        .fold(OpenApiRouter::new(), |router, group| group.mount(router))
        .split_for_parts();
    router
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(middleware::from_fn(log_request))
        .layer(CatchPanicLayer::custom(panic_response))
        // gzip for a client that asks (`Accept-Encoding`): on the wire the page is a third of
        // its size and a task list a tenth (scripts/bench-page). tower-http's default predicate leaves alone what
        // must not be buffered or gains nothing: the log stream (`text/event-stream`), images
        // and bodies under 32 bytes. The token is sent by the page or client itself, never by
        // a browser on its own (no cookie), so a third party cannot make a victim's browser
        // send the many authenticated requests a BREACH-style attack on compression needs.
        .layer(CompressionLayer::new())
        .with_state(state)
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// A panic in a handler is a bug: the caller still gets the JSON error shape.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(AppError::Internal(anyhow::anyhow!(
        "a request handler panicked"
    )))
    .into_response()
}

#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process answers (the store is not checked)", body = doc::Health)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn no_route(request: Request) -> ApiError {
    let _ = request;
    ApiError(AppError::NotFound)
}

/// The authenticated caller.
struct Caller(Principal);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let gateway = parts.extensions.get::<GatewayClaims>();
        Ok(Caller(state.auth.authenticate(&parts.headers, gateway)?))
    }
}

/// A task id from the path; one that cannot be read is a task that is not there.
fn task_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError(AppError::NotFound))
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(query: Params) -> Result<HashMap<String, String>, ApiError> {
    query.map(|Query(q)| q).map_err(|_| {
        ApiError(AppError::validation(
            "query",
            "the query string is malformed",
        ))
    })
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        ApiError(AppError::PayloadTooLarge(format!(
            "the body may be at most {limit} bytes"
        )))
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

fn json_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError(AppError::validation(
                "Content-Type",
                "must be application/json",
            )));
        }
    }
    if bytes.is_empty() {
        return Err(ApiError(AppError::validation(
            "body",
            "a JSON body is required",
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError(AppError::validation(
            "body",
            format!("is not valid JSON: {e}"),
        ))
    })
}

fn view(task: &pj_core::Task) -> Value {
    serde_json::to_value(task.view()).unwrap_or(Value::Null)
}

#[utoipa::path(post, path = "/tasks", tag = "tasks", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key with the same body answers the first task again")),
    request_body(content = doc::CreateTask, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = doc::Task,
            headers(("Location" = String, description = "/tasks/{id}"))),
        (status = 400, description = "A field, header or the body is invalid; `field` names it", body = ErrorBody),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used with another body", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
async fn create_task(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, MAX_CREATE_BYTES).await?;
    let value = json_body(&headers, &bytes)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError(AppError::validation(
                "Idempotency-Key",
                "must be visible ASCII",
            ))
        })?),
        None => None,
    };
    let (task, replayed) = state.api.create(&caller.0, &value, key).await?;
    let mut response = (StatusCode::CREATED, Json(view(&task))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/tasks/{}", task.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(get, path = "/tasks", tag = "tasks", security(("bearer" = [])),
    params(
        ("status" = Option<doc::TaskStatus>, Query, description = "Only tasks of this status"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "At most this many (default 20)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The user's tasks, newest first", body = doc::TaskPage),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
    ))]
async fn list_tasks(
    State(state): State<Shared>,
    caller: Caller,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    let q = params(query)?;
    let page = state
        .api
        .list(
            &caller.0,
            q.get("status").map(String::as_str),
            q.get("limit").map(String::as_str),
            q.get("cursor").map(String::as_str),
        )
        .await?;
    let tasks: Vec<Value> = page.tasks.iter().map(view).collect();
    Ok(Json(
        json!({"tasks": tasks, "next_cursor": page.next_cursor}),
    ))
}

#[utoipa::path(get, path = "/messages", tag = "messages", security(("bearer" = [])),
    params(
        ("task_id" = Option<String>, Query, description = "Only this task's messages"),
        ("status" = Option<doc::MessageStatus>, Query, description = "Only messages of this status"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "At most this many (default 20)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The user's outbound messages, newest first", body = doc::MessagePage),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
    ))]
async fn list_messages(
    State(state): State<Shared>,
    caller: Caller,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    let q = params(query)?;
    let page = state
        .api
        .messages(
            &caller.0,
            q.get("task_id").map(String::as_str),
            q.get("status").map(String::as_str),
            q.get("limit").map(String::as_str),
            q.get("cursor").map(String::as_str),
        )
        .await?;
    let messages: Vec<Value> = page.messages.iter().map(|m| m.view()).collect();
    Ok(Json(
        json!({"messages": messages, "next_cursor": page.next_cursor}),
    ))
}

#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = doc::Task),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
    ))]
async fn get_task(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    Ok(Json(view(&state.api.get(&caller.0, &id).await?)))
}

#[utoipa::path(post, path = "/tasks/{id}/execute", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 202, description = "The dispatch of a queued task is requested", body = doc::Task),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 409, description = "Not allowed in the task's status", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
async fn execute(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = task_id(path)?;
    let task = state.api.execute(&caller.0, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&task))))
}

#[utoipa::path(post, path = "/tasks/{id}/approve", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "A pending_review task is queued (or scheduled)", body = doc::Task),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 409, description = "Not allowed in the task's status", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
async fn approve(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    Ok(Json(view(&state.api.approve(&caller.0, &id).await?)))
}

#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task is cancelled", body = doc::Task),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 409, description = "Not allowed in the task's status", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
async fn cancel(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    Ok(Json(view(&state.api.cancel(&caller.0, &id).await?)))
}

#[utoipa::path(post, path = "/tasks/{id}/retry", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 202, description = "The task's next attempt is dispatched", body = doc::Task),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 409, description = "Not allowed in the task's status", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
async fn retry(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = task_id(path)?;
    let task = state.api.retry(&caller.0, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&task))))
}

#[utoipa::path(get, path = "/tasks/{id}/executions", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "One entry per attempt, oldest first", body = doc::ExecutionList),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
    ))]
async fn executions(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    let executions = state.api.executions(&caller.0, &id).await?;
    Ok(Json(json!({"executions": executions})))
}

fn line_json(line: &LogLine) -> Value {
    json!({
        "attempt": line.attempt,
        "seq": line.seq,
        "ts": rfc3339(line.ts),
        "stream": line.stream.as_str(),
        "text": line.text,
    })
}

#[utoipa::path(get, path = "/tasks/{id}/logs", tag = "tasks", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The task's id"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page, or a stream event's `id`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many lines (default 500)"),
    ),
    responses(
        (status = 200, description = "The stored log lines of every attempt, in order", body = doc::LogPage),
        (status = 400, description = "A query parameter is invalid", body = ErrorBody),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
    ))]
async fn logs(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    let q = params(query)?;
    let page = state
        .api
        .logs(
            &caller.0,
            &id,
            q.get("cursor").map(String::as_str),
            q.get("limit").map(String::as_str),
        )
        .await?;
    let lines: Vec<Value> = page.lines.iter().map(line_json).collect();
    Ok(Json(
        json!({"lines": lines, "next_cursor": page.next_cursor}),
    ))
}

#[utoipa::path(get, path = "/tasks/{id}/logs/stream", tag = "tasks", security(("bearer" = [])),
    description = "Server-sent events: `log` (id: the line's cursor; data: a LogLine), `status` (data: the Task, first and on every change), `error` (the stream ends). On AWS served at the log-stream function's URL.",
    params(
        ("id" = String, Path, description = "The task's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
        ("cursor" = Option<String>, Query, description = "Resume after this event, for clients that cannot set headers"),
    ),
    responses(
        (status = 200, description = "The task's log and status changes until it ends", content_type = "text/event-stream", body = String),
        (status = 400, description = "A cursor the API did not give out", body = ErrorBody),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 429, description = "Too many open streams", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds"))),
    ))]
async fn stream_logs(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Params,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = task_id(path)?;
    let q = params(query)?;
    let task = state.api.get(&caller.0, &id).await?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(q.get("cursor").map(String::as_str));
    let after = parse_log_cursor(last_event_id)?;
    // Held by the stream: freed when it ends or when the client goes away and axum drops it.
    let slot = state.api.streams.acquire(&caller.0.user)?;
    let events = follow(
        state.api.engine.clone(),
        state.api.logs.clone(),
        task.id.clone(),
        after,
        state.stream_poll,
    )
    .map(move |item| {
        let _held = &slot;
        Ok(match item {
            Ok(StreamEvent::Log(line)) => Event::default()
                .event("log")
                .id(line.cursor().encode())
                .data(line_json(&line).to_string()),
            Ok(StreamEvent::Status(task)) => Event::default()
                .event("status")
                .data(view(&task).to_string()),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "log stream failed");
                Event::default().event("error").data(
                    json!({"error": {"code": "internal", "message": "the stream failed; reconnect with Last-Event-ID"}})
                        .to_string(),
                )
            }
        })
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn signature_headers(headers: &HeaderMap) -> SignatureHeaders<'_> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    SignatureHeaders {
        id: get("webhook-id"),
        timestamp: get("webhook-timestamp"),
        signature: get("webhook-signature"),
    }
}

/// Tells the engine's observer how a runner callback was answered.
fn observe_callback<T>(state: &Shared, callback: Callback, answer: &Result<T, ApiError>) {
    if let Some(observer) = &state.api.engine.observer {
        observer.callback(callback, answer.as_ref().err().map(|e| e.0.code()));
    }
}

#[utoipa::path(post, path = "/webhooks/runner", tag = "runner callbacks",
    params(doc::WebhookHeaders),
    request_body(content = doc::RunnerEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "The event was applied, changed nothing, or was seen before", body = doc::EventAck),
        (status = 400, description = "The event is invalid", body = ErrorBody),
        (status = 401, description = "The signature does not hold", body = ErrorBody),
        (status = 404, description = "No such task or attempt", body = ErrorBody),
        (status = 409, description = "The attempt is over", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
    ))]
async fn runner_event(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let answer = receive_event(&state, &headers, body).await;
    observe_callback(&state, Callback::Event, &answer);
    answer
}

async fn receive_event(
    state: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(headers, body, MAX_WEBHOOK_BYTES).await?;
    let ack = state
        .api
        .receive_event(&signature_headers(headers), &bytes)
        .await?;
    let status = match ack {
        EventAck::Applied => "applied",
        EventAck::Unchanged => "unchanged",
        EventAck::Duplicate => "duplicate",
    };
    Ok(Json(json!({"status": status})))
}

#[utoipa::path(post, path = "/webhooks/runner/artifacts", tag = "runner callbacks",
    params(doc::WebhookHeaders),
    request_body(content = doc::ArtifactUpload, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored, or already stored under that name", body = doc::UploadAck),
        (status = 400, description = "The upload is invalid", body = ErrorBody),
        (status = 401, description = "The signature does not hold", body = ErrorBody),
        (status = 404, description = "No such task or attempt", body = ErrorBody),
        (status = 409, description = "The attempt is over or has too many artifacts", body = ErrorBody),
        (status = 413, description = "Over 2 MiB", body = ErrorBody),
    ))]
async fn runner_artifact(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let answer = receive_artifact(&state, &headers, body).await;
    observe_callback(&state, Callback::Artifact, &answer);
    answer
}

async fn receive_artifact(
    state: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    // Room above the limit so an oversized upload is still read and refused with `413`.
    let bytes = read_body(headers, body, MAX_UPLOAD_BYTES + 64 * 1024).await?;
    let put = state
        .api
        .receive_artifact(&signature_headers(headers), &bytes)
        .await?;
    let status = match put {
        PutOutcome::Stored => "stored",
        PutOutcome::Duplicate => "duplicate",
    };
    Ok(Json(json!({"status": status})))
}

#[utoipa::path(get, path = "/tasks/{id}/artifacts", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The files of the task's attempts, by attempt then name", body = doc::ArtifactList),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
    ))]
async fn list_artifacts(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    let artifacts = state.api.artifacts(&caller.0, &id).await?;
    Ok(Json(json!({"artifacts": artifacts})))
}

#[utoipa::path(get, path = "/tasks/{id}/artifacts/{name}", tag = "tasks", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The task's id"),
        ("name" = String, Path, description = "The artifact's name"),
    ),
    responses(
        (status = 200, description = "The bytes, with the name's content type",
            content(
                (Vec<u8> = "image/png"),
                (Object = "application/json"),
                (String = "text/plain; charset=utf-8"),
                (String = "text/markdown; charset=utf-8"),
            ),
            headers(("Content-Disposition" = String), ("X-Content-Type-Options" = String))),
        (status = 401, description = "No token, or a token not accepted", body = ErrorBody),
        (status = 404, description = "No such task for this user, or no such artifact", body = ErrorBody),
    ))]
async fn get_artifact(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (id, name) = path
        .map(|Path(p)| p)
        .map_err(|_| ApiError(AppError::NotFound))?;
    let (artifact, bytes) = state.api.artifact(&caller.0, &id, &name).await?;
    Ok((
        [
            (header::CONTENT_TYPE, artifact.content_type),
            // Served as a download of what it is, never sniffed into something a browser runs.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}\"", artifact.name),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(post, path = "/webhooks/runner/logs", tag = "runner callbacks",
    params(doc::WebhookHeaders),
    request_body(content = doc::LogBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The lines stored and those seen before", body = doc::LogsAck),
        (status = 400, description = "The batch is invalid", body = ErrorBody),
        (status = 401, description = "The signature does not hold", body = ErrorBody),
        (status = 404, description = "No such task or attempt", body = ErrorBody),
        (status = 409, description = "The attempt is over", body = ErrorBody),
        (status = 413, description = "The batch is too large", body = ErrorBody),
    ))]
async fn runner_logs(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let answer = receive_logs(&state, &headers, body).await;
    observe_callback(&state, Callback::Logs, &answer);
    answer
}

async fn receive_logs(
    state: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(headers, body, MAX_WEBHOOK_BYTES).await?;
    let ack = state
        .api
        .receive_logs(&signature_headers(headers), &bytes)
        .await?;
    Ok(Json(
        json!({"stored": ack.stored, "duplicates": ack.duplicates}),
    ))
}
