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
use axum::routing::{get, post};
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

use crate::auth::{Authenticator, GatewayClaims};
use crate::error::ApiError;

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
    fn mount(self, router: Router<Shared>) -> Router<Shared> {
        match self {
            RouteGroup::Users => router
                .route("/healthz", get(healthz))
                .merge(crate::web::routes())
                .route("/tasks", post(create_task).get(list_tasks))
                .route("/tasks/{id}", get(get_task))
                .route("/tasks/{id}/execute", post(execute))
                .route("/tasks/{id}/approve", post(approve))
                .route("/tasks/{id}/cancel", post(cancel))
                .route("/tasks/{id}/retry", post(retry))
                .route("/tasks/{id}/executions", get(executions))
                .route("/tasks/{id}/logs", get(logs))
                .route("/tasks/{id}/artifacts", get(list_artifacts))
                .route("/tasks/{id}/artifacts/{name}", get(get_artifact))
                .route("/messages", get(list_messages)),
            RouteGroup::RunnerEvents => router
                .route("/webhooks/runner", post(runner_event))
                .route("/webhooks/runner/artifacts", post(runner_artifact)),
            RouteGroup::RunnerLogs => router.route("/webhooks/runner/logs", post(runner_logs)),
            RouteGroup::LogStream => router.route("/tasks/{id}/logs/stream", get(stream_logs)),
        }
    }
}

/// The router of `groups` only, with the layers every route has.
pub fn routes(state: Shared, groups: &[RouteGroup]) -> Router {
    groups
        .iter()
        .fold(Router::new(), |router, group| group.mount(router))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(middleware::from_fn(log_request))
        .layer(CatchPanicLayer::custom(panic_response))
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

async fn get_task(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    Ok(Json(view(&state.api.get(&caller.0, &id).await?)))
}

async fn execute(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = task_id(path)?;
    let task = state.api.execute(&caller.0, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&task))))
}

async fn approve(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    Ok(Json(view(&state.api.approve(&caller.0, &id).await?)))
}

async fn cancel(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    Ok(Json(view(&state.api.cancel(&caller.0, &id).await?)))
}

async fn retry(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = task_id(path)?;
    let task = state.api.retry(&caller.0, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&task))))
}

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

async fn list_artifacts(
    State(state): State<Shared>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(path)?;
    let artifacts = state.api.artifacts(&caller.0, &id).await?;
    Ok(Json(json!({"artifacts": artifacts})))
}

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
