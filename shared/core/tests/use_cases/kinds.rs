//! The built-in kinds end to end in the core: created through the API, dispatched, run by the
//! `KindWorker`, retried, told of by the `Notifier` and swept, over the fakes and the clock.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Duration as Span;
use pj_core::api::Principal;
use pj_core::capacity::Capacity;
use pj_core::ids::{Attempt, UserId};
use pj_core::machine::{Input, RunnerEvent};
use pj_core::messages::{Channel, MessageFilter, MessageId, MessageStatus, MessageStore};
use pj_core::outbound::HttpError;
use pj_core::ports::{QueueMessage, QueueName};
use pj_core::signing::{CallbackSecret, SignatureHeaders};
use pj_core::task::{ExecState, Task, TaskStatus, Trigger, codes};
use pj_core::time::{Clock, rfc3339};
use pj_core::worker::Disposition;
use pj_core::{Settings, TaskId};
use serde_json::{Value, json};

use crate::fakes::{Received, Reply, Sent};
use crate::{GHL_KEY, GHL_LOCATION, GHL_URL, OUTBOUND, World, alice, bob, dispatch};

const TARGET: &str = "https://api.example.com/v1/contacts";
const HOOK: &str = "https://hooks.example.com/in";

/// An `api_call` task's body.
fn api_call(config: Value) -> Value {
    json!({"kind": "api_call", "title": "Call the API", "config": config})
}

/// `body` with the fields of `extra` added.
fn with(mut body: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// A user whose token has no email address.
fn carol() -> Principal {
    Principal {
        user: UserId::parse("carol").expect("a user"),
        email: None,
    }
}

fn error_code(task: &Task) -> &str {
    task.error.as_ref().map_or("", |e| e.code.as_str())
}

/// The backoff the current attempt of `task` waits, from now.
fn backoff_left(world: &World, id: &TaskId) -> Span {
    let task = world.task(id);
    let exec = task.current_execution().expect("an attempt");
    exec.not_before.expect("a backoff") - world.clock.now()
}

/// The log of a task as `GET /tasks/{id}/logs` gives it: its lines' texts.
async fn log_texts(world: &World, id: &TaskId) -> Vec<String> {
    world
        .api
        .logs(&alice(), id.as_str(), None, None)
        .await
        .expect("the log")
        .lines
        .into_iter()
        .map(|l| l.text)
        .collect()
}

/// Checks a Standard Webhooks delivery against the outbound secret, now.
fn verify(request: &Received) {
    let secret = CallbackSecret::parse(OUTBOUND).expect("the outbound secret");
    let headers = SignatureHeaders {
        id: request.header("webhook-id"),
        timestamp: request.header("webhook-timestamp"),
        signature: request.header("webhook-signature"),
    };
    assert_eq!(
        secret.verify(&headers, &request.body, chrono::Utc::now().timestamp()),
        Ok(()),
        "the delivery's signature verifies with PJ_OUTBOUND_SECRET"
    );
}

// api_call

#[tokio::test]
async fn an_api_call_completes_with_the_answer_as_its_result_and_its_execution_and_log_tell_how() {
    let world = World::new();
    world.http.take_time(Span::milliseconds(120));
    world.http.reply(
        TARGET,
        Reply::json(201, json!({"id": "c-1", "ok": true})).with_header("X-Request-Id", "r-9"),
    );

    let task = world
        .create_kind(api_call(
            json!({"url": TARGET, "method": "POST", "body": {"name": "Ada"}}),
        ))
        .await;
    world.settle().await;

    let done = world.task(&task.id);
    assert_eq!(done.status, TaskStatus::Completed);
    let result = done.result.clone().expect("a result");
    assert_eq!(result["status"], json!(201));
    assert_eq!(result["content_type"], json!("application/json"));
    assert_eq!(
        result["body"],
        json!({"id": "c-1", "ok": true}),
        "parsed JSON"
    );
    assert!(result["duration_ms"].is_u64(), "{result}");
    let summary = done.result_summary.clone().expect("a summary");
    assert!(
        summary.starts_with("POST https://api.example.com/v1/contacts → 201"),
        "{summary}"
    );
    let view = serde_json::to_value(done.view()).unwrap();
    assert_eq!(view["result"], result);
    assert_eq!(view["result_summary"], json!(summary));
    for code_change_only in ["prompt", "repo_url", "base_branch", "branch"] {
        assert_eq!(view[code_change_only], Value::Null, "{code_change_only}");
    }

    let executions = world
        .api
        .executions(&alice(), task.id.as_str())
        .await
        .unwrap();
    let [execution] = executions.as_slice() else {
        panic!("one execution expected: {executions:?}");
    };
    assert_eq!(execution.status, "completed");
    assert_eq!(execution.runner, "builtin");
    assert_eq!(execution.triggered_by, Some(Trigger::Create));
    assert_eq!(
        execution.duration_ms,
        Some(120),
        "from its start to its end on the clock"
    );
    assert_eq!(execution.result.as_ref(), Some(&result));
    assert_eq!(execution.result_summary.as_deref(), Some(summary.as_str()));
    assert_eq!(execution.steps.len(), 1);
    assert_eq!(execution.steps[0].action, "request");
    assert!(execution.steps[0].ok);
    assert_eq!(execution.steps[0].output, Some(json!({"status": 201})));

    let [request] = world
        .http
        .received_at(TARGET)
        .try_into()
        .expect("one request");
    assert_eq!(request.method, "POST");
    assert_eq!(request.json(), json!({"name": "Ada"}));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.timeout, Duration::from_secs(30), "the default");
    assert!(request.follow_redirects);

    let log = log_texts(&world, &task.id).await;
    assert!(
        log.contains(&"→ POST https://api.example.com/v1/contacts".to_owned()),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("← 201 in ")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("completed: ")), "{log:?}");
}

#[tokio::test]
async fn an_api_call_answered_503_then_200_is_retried_after_its_backoff_and_not_before() {
    let world = World::new();
    world.http.reply(TARGET, Reply::status(503));
    world
        .http
        .reply(TARGET, Reply::json(200, json!({"ok": true})));

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    let waiting = world.task(&task.id);
    assert_eq!(waiting.status, TaskStatus::Queued);
    assert_eq!(waiting.attempt, Attempt(2));
    let first = &waiting.executions[0];
    assert_eq!(first.state, ExecState::Failed);
    let error = first.error.as_ref().expect("an error");
    assert_eq!(error.code, codes::HTTP_ERROR);
    assert_eq!(error.message, "the API answered 503");
    let second = waiting.current_execution().expect("a second attempt");
    assert_eq!(second.triggered_by, Some(Trigger::AutomaticRetry));
    assert_eq!(second.state, ExecState::Requested);
    let backoff = backoff_left(&world, &task.id);
    assert!(
        backoff >= Span::milliseconds(1_600) && backoff <= Span::milliseconds(2_400),
        "2 s with jitter: {backoff}"
    );
    let views = world
        .api
        .executions(&alice(), task.id.as_str())
        .await
        .unwrap();
    assert_eq!(views[1].status, "queued");
    assert_eq!(views[1].triggered_by, Some(Trigger::AutomaticRetry));
    assert!(
        world.mailer.sent().is_empty(),
        "no email while attempts remain"
    );

    // The dispatch message comes with the backoff as its delay; one that comes early (a queue
    // holds a message at most 15 minutes) is sent on for the time left, and claims nothing.
    let early = world.queue.take_from(QueueName::Dispatch);
    assert_eq!(
        early,
        vec![Sent {
            message: dispatch(&task.id, 2),
            delay: backoff.to_std().unwrap(),
        }]
    );
    world.clock.advance(Span::milliseconds(500));
    assert_eq!(
        world.dispatcher.handle(&early[0].message, 1).await,
        Disposition::Done
    );
    let left = backoff_left(&world, &task.id);
    assert_eq!(
        world.queue.waiting_in(QueueName::Dispatch),
        vec![Sent {
            message: dispatch(&task.id, 2),
            delay: left.to_std().unwrap(),
        }]
    );
    assert_eq!(
        world.task(&task.id).current_execution().unwrap().state,
        ExecState::Requested
    );
    world.advance(left - Span::milliseconds(1)).await;
    assert_eq!(
        world.http.received_at(TARGET).len(),
        1,
        "not sent again before its backoff"
    );

    world.advance(Span::milliseconds(1)).await;

    let done = world.task(&task.id);
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.attempt, Attempt(2));
    let requests = world.http.received_at(TARGET);
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= backoff);
    assert_eq!(
        done.executions[0].result, None,
        "only the latest attempt keeps its whole result"
    );
    assert!(
        done.executions[0]
            .result_summary
            .as_deref()
            .is_some_and(|s| s.contains("503")),
        "the earlier keeps its summary"
    );
    assert_eq!(done.result.as_ref().unwrap()["status"], json!(200));
    assert_eq!(done.executions[1].result, done.result);
    assert_eq!(world.mailer.sent().len(), 1, "one email, for the outcome");
}

#[tokio::test]
async fn an_api_call_with_one_attempt_answered_503_fails_at_once() {
    let world = World::new();
    world.http.reply(TARGET, Reply::status(503));

    let task = world
        .create_kind(with(
            api_call(json!({"url": TARGET})),
            json!({"max_attempts": 1}),
        ))
        .await;
    world.settle().await;

    let failed = world.task(&task.id);
    assert_eq!(failed.max_attempts, 1);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempt, Attempt(1));
    assert_eq!(error_code(&failed), codes::HTTP_ERROR);
    assert_eq!(failed.result.as_ref().unwrap()["status"], json!(503));
    world.clock.advance(Span::hours(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert_eq!(world.http.received_at(TARGET).len(), 1);
    assert_eq!(world.mailer.sent().len(), 1, "the failure's email");
}

#[tokio::test]
async fn an_api_call_answered_429_with_retry_after_is_never_retried_sooner() {
    let world = World::new();
    world
        .http
        .reply(TARGET, Reply::status(429).with_header("Retry-After", "30"));
    world.http.reply(TARGET, Reply::json(200, json!({})));

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    assert_eq!(world.task(&task.id).attempt, Attempt(2));
    assert!(backoff_left(&world, &task.id) >= Span::seconds(30));
    world.advance(Span::seconds(29)).await;
    // Even a dispatch message that comes early changes nothing.
    for sent in world.queue.take_from(QueueName::Dispatch) {
        world.dispatcher.handle(&sent.message, 1).await;
    }
    world.settle().await;
    assert_eq!(world.http.received_at(TARGET).len(), 1);
    assert_eq!(world.task(&task.id).status, TaskStatus::Queued);

    world.advance(Span::seconds(1)).await;

    let requests = world.http.received_at(TARGET);
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Span::seconds(30));
    assert_eq!(world.task(&task.id).status, TaskStatus::Completed);
}

#[tokio::test]
async fn an_api_call_answered_404_fails_at_once_with_http_error() {
    let world = World::new();
    world.http.reply(
        TARGET,
        Reply::json(404, json!({"error": "no such contact"})),
    );

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    let failed = world.task(&task.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempt, Attempt(1));
    assert_eq!(error_code(&failed), codes::HTTP_ERROR);
    assert_eq!(
        failed.result.as_ref().unwrap()["body"],
        json!({"error": "no such contact"}),
        "the answer is kept"
    );
    world.clock.advance(Span::hours(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert_eq!(world.http.received_at(TARGET).len(), 1, "never tried again");
}

#[tokio::test]
async fn an_address_the_client_refuses_fails_the_api_call_at_once_with_invalid_config() {
    let world = World::new();
    world.http.reply(
        TARGET,
        Reply::Error(HttpError::Refused(
            "api.example.com resolves to 127.0.0.1, a loopback address".into(),
        )),
    );

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    let failed = world.task(&task.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempt, Attempt(1));
    assert_eq!(error_code(&failed), codes::INVALID_CONFIG);
    assert!(
        failed.error.as_ref().unwrap().message.contains("loopback"),
        "{:?}",
        failed.error
    );
    assert_eq!(failed.executions.len(), 1);
}

#[tokio::test]
async fn an_api_call_that_gets_no_answer_in_time_is_retried_as_a_timeout() {
    let world = World::new();
    world.http.reply(
        TARGET,
        Reply::Error(HttpError::Timeout(Duration::from_secs(5))),
    );

    let task = world
        .create_kind(api_call(json!({"url": TARGET, "timeout_secs": 5})))
        .await;
    world.settle().await;

    let waiting = world.task(&task.id);
    assert_eq!(waiting.attempt, Attempt(2));
    assert_eq!(
        waiting.executions[0].error.as_ref().unwrap().code,
        codes::TIMEOUT
    );
    assert_eq!(
        world.http.received_at(TARGET)[0].timeout,
        Duration::from_secs(5)
    );
    world.advance(Span::minutes(1)).await;
    assert_eq!(world.task(&task.id).status, TaskStatus::Completed);
}

#[tokio::test]
async fn a_run_that_finds_its_attempt_already_running_ends_it_as_a_failure_that_may_pass() {
    let world = World::new();
    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.dispatch_sent().await;
    let run = world.queue.take_from(QueueName::Tasks);
    assert_eq!(
        run.iter().map(|s| &s.message).collect::<Vec<_>>(),
        vec![&QueueMessage::Run {
            task_id: task.id.clone(),
            attempt: Attempt(1)
        }]
    );
    // A worker took the attempt and stopped mid-way; its message comes again.
    let started = Input::Runner {
        attempt: Attempt(1),
        event: RunnerEvent::Started,
    };
    world
        .kinds
        .engine
        .apply(&task.id, &started, None)
        .await
        .unwrap();

    assert_eq!(
        world.kinds.handle(&run[0].message, 2).await,
        Disposition::Done
    );

    let waiting = world.task(&task.id);
    assert_eq!(waiting.attempt, Attempt(2));
    assert_eq!(
        waiting.executions[0].error.as_ref().unwrap().code,
        codes::NETWORK_ERROR
    );
    assert!(
        world.http.received().is_empty(),
        "whether its call went out is unknown: it is not made again as the same attempt"
    );
    world.advance(Span::minutes(1)).await;
    assert_eq!(world.task(&task.id).status, TaskStatus::Completed);
    assert_eq!(world.http.received_at(TARGET).len(), 1);
}

#[tokio::test]
async fn a_built_in_task_cancelled_before_its_run_makes_no_call_and_stops_no_runner() {
    let world = World::new();
    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.dispatch_sent().await;
    let run = world.queue.take_from(QueueName::Tasks);

    world.api.cancel(&alice(), task.id.as_str()).await.unwrap();
    world.settle().await;
    for sent in &run {
        assert_eq!(
            world.kinds.handle(&sent.message, 1).await,
            Disposition::Done
        );
    }

    assert_eq!(world.task(&task.id).status, TaskStatus::Cancelled);
    assert!(world.http.received().is_empty());
    assert!(
        world.runner.stopped().is_empty(),
        "a built-in attempt has no runner: {:?}",
        world.runner.stopped()
    );
    assert!(
        world
            .queue
            .history()
            .iter()
            .any(|m| matches!(m, QueueMessage::Stop { .. })),
        "the stop was asked for, and taken as done"
    );
}

// Credentials

const TOKEN: &str = "tok-8c1d2e-bearer-secret";
const PASSWORD: &str = "pw-5f6a7b-basic-secret";
const KEY_VALUE: &str = "key-9d0e1f-apikey-secret";
const HEADER_SECRET: &str = "hdr-2b3c4d-session-secret";

fn basic() -> String {
    format!("Basic {}", B64.encode(format!("ada:{PASSWORD}")))
}

/// Fails naming the credential `text` shows.
fn assert_hides_credentials(what: &str, text: &str) {
    let encoded = B64.encode(format!("ada:{PASSWORD}"));
    for secret in [TOKEN, PASSWORD, KEY_VALUE, HEADER_SECRET, &encoded] {
        assert!(
            !text.contains(secret),
            "{what} shows the credential {secret}: {text}"
        );
    }
}

#[tokio::test]
async fn credentials_are_stored_sealed_shown_by_no_route_and_sent_only_to_the_target() {
    let world = World::new();
    let auths = [
        json!({"type": "bearer", "token": TOKEN}),
        json!({"type": "basic", "username": "ada", "password": PASSWORD}),
        json!({"type": "api_key", "header": "X-Api-Key", "value": KEY_VALUE}),
    ];
    let mut ids = Vec::new();
    for auth in &auths {
        let body = with(
            api_call(json!({
                "url": TARGET, "method": "POST", "body": {"a": 1}, "auth": auth,
                "headers": {"X-Session-Token": HEADER_SECRET, "X-Trace": "trace-1"},
            })),
            json!({"notify": {"channels": [{"channel": "webhook", "url": HOOK}, {"channel": "email"}]}}),
        );
        let (created, _) = world.api.create(&alice(), &body, None).await.unwrap();
        let view = serde_json::to_value(created.view()).unwrap();
        assert_hides_credentials("the created task", &view.to_string());
        assert_eq!(view["config"]["headers"]["X-Session-Token"], json!("***"));
        assert_eq!(view["config"]["headers"]["X-Trace"], json!("trace-1"));
        let stored = serde_json::to_string(&world.task(&created.id))
            .expect("a stored task serializes: its credentials are sealed");
        assert_hides_credentials("the stored task", &stored);
        let sealed = stored.matches("\"v1.").count();
        assert_eq!(
            sealed, 2,
            "the auth and the session header, sealed: {stored}"
        );
        ids.push(created.id);
    }
    let views = [
        serde_json::to_value(world.task(&ids[0]).view()).unwrap(),
        serde_json::to_value(world.task(&ids[1]).view()).unwrap(),
        serde_json::to_value(world.task(&ids[2]).view()).unwrap(),
    ];
    assert_eq!(
        views[0]["config"]["auth"],
        json!({"type": "bearer", "token": "***"})
    );
    assert_eq!(
        views[1]["config"]["auth"],
        json!({"type": "basic", "username": "ada", "password": "***"})
    );
    assert_eq!(
        views[2]["config"]["auth"],
        json!({"type": "api_key", "header": "X-Api-Key", "value": "***"})
    );

    world.settle().await;

    for id in &ids {
        let task = world.api.get(&alice(), id.as_str()).await.unwrap();
        assert_eq!(task.status, TaskStatus::Completed);
        let view = serde_json::to_string(&task.view()).unwrap();
        assert_hides_credentials("GET /tasks/{id}", &view);
        let executions = world.api.executions(&alice(), id.as_str()).await.unwrap();
        assert_hides_credentials(
            "GET /tasks/{id}/executions",
            &serde_json::to_string(&executions).unwrap(),
        );
        assert_hides_credentials(
            "GET /tasks/{id}/logs",
            &log_texts(&world, id).await.join("\n"),
        );
    }
    let page = world.api.list(&alice(), None, None, None).await.unwrap();
    assert_eq!(page.tasks.len(), 3);
    for task in &page.tasks {
        assert_hides_credentials("GET /tasks", &serde_json::to_string(&task.view()).unwrap());
    }
    let messages = world
        .messages
        .list(&alice().user, &MessageFilter::default(), 100, None)
        .await
        .unwrap();
    assert_eq!(messages.len(), 6, "a webhook and an email per task");
    for message in &messages {
        assert_hides_credentials("GET /messages", &message.view().to_string());
        assert_hides_credentials(
            "a message's record",
            &serde_json::to_string(message).unwrap(),
        );
    }
    for email in world.mailer.sent() {
        assert_hides_credentials("an email", &format!("{email:?}"));
    }
    let hooks = world.http.received_at(HOOK);
    assert_eq!(hooks.len(), 3);
    for hook in &hooks {
        assert_hides_credentials("a webhook", &String::from_utf8_lossy(&hook.body));
    }

    // The target, and only the target, gets them.
    let requests = world.http.received_at(TARGET);
    assert_eq!(requests.len(), 3);
    let bearer = format!("Bearer {TOKEN}");
    let basic = basic();
    assert_eq!(requests[0].header("Authorization"), Some(bearer.as_str()));
    assert_eq!(requests[1].header("Authorization"), Some(basic.as_str()));
    assert_eq!(requests[2].header("X-Api-Key"), Some(KEY_VALUE));
    for (request, auth_header) in
        requests
            .iter()
            .zip(["Authorization", "Authorization", "X-Api-Key"])
    {
        assert_eq!(request.header("X-Session-Token"), Some(HEADER_SECRET));
        assert_eq!(request.header("X-Trace"), Some("trace-1"));
        assert!(
            request.secret_headers.iter().any(|h| h == auth_header)
                && request
                    .secret_headers
                    .iter()
                    .any(|h| h == "X-Session-Token"),
            "credential headers are marked secret, so they never print: {:?}",
            request.secret_headers
        );
        assert!(!request.secret_headers.iter().any(|h| h == "X-Trace"));
    }
}

// ghl_action

/// Each action's config and the request GoHighLevel must get for it.
fn ghl_actions() -> Vec<(Value, &'static str, String, Value)> {
    vec![
        (
            json!({"action": "add_contact", "first_name": "Ada", "last_name": "Lovelace",
                   "email": "ada@example.com", "phone": "+1 555 0100 200", "tags": ["vip"]}),
            "POST",
            format!("{GHL_URL}/contacts/"),
            json!({"locationId": GHL_LOCATION, "firstName": "Ada", "lastName": "Lovelace",
                   "email": "ada@example.com", "phone": "+1 555 0100 200", "tags": ["vip"]}),
        ),
        (
            json!({"action": "update_contact", "contact_id": "c-1", "email": "ada@example.org"}),
            "PUT",
            format!("{GHL_URL}/contacts/c-1"),
            json!({"email": "ada@example.org"}),
        ),
        (
            json!({"action": "add_tag", "contact_id": "c-1", "tags": ["vip", "2026"]}),
            "POST",
            format!("{GHL_URL}/contacts/c-1/tags"),
            json!({"tags": ["vip", "2026"]}),
        ),
        (
            json!({"action": "send_sms", "contact_id": "c-1", "message": "See you at 3"}),
            "POST",
            format!("{GHL_URL}/conversations/messages"),
            json!({"type": "SMS", "contactId": "c-1", "message": "See you at 3"}),
        ),
        (
            json!({"action": "create_opportunity", "pipeline_id": "p-1", "stage_id": "s-1",
                   "name": "Website deal", "contact_id": "c-1", "monetary_value": 1500,
                   "location_id": "loc-own"}),
            "POST",
            format!("{GHL_URL}/opportunities/"),
            json!({"locationId": "loc-own", "pipelineId": "p-1", "pipelineStageId": "s-1",
                   "name": "Website deal", "status": "open", "contactId": "c-1",
                   "monetaryValue": 1500.0}),
        ),
    ]
}

fn ghl_action(config: Value) -> Value {
    json!({"kind": "ghl_action", "title": "Update the CRM", "config": config})
}

#[tokio::test]
async fn each_ghl_action_sends_the_documented_request_with_the_key_and_the_version() {
    for (config, method, url, body) in ghl_actions() {
        let world = World::new();
        let answer = json!({"contact": {"id": "c-1"}, "traceId": "t-1"});
        world.ghl_http.reply(&url, Reply::json(201, answer.clone()));

        let task = world.create_kind(ghl_action(config.clone())).await;
        world.settle().await;

        let done = world.task(&task.id);
        assert_eq!(
            done.status,
            TaskStatus::Completed,
            "{config}: {:?}",
            done.error
        );
        assert_eq!(done.result, Some(answer), "{config}: the API's answer");
        let requests = world.ghl_http.received();
        let [request] = requests.as_slice() else {
            panic!("{config}: one request expected, got {requests:?}");
        };
        assert_eq!(request.method, method, "{config}");
        assert_eq!(request.url, url, "{config}");
        assert_eq!(request.json(), body, "{config}");
        assert_eq!(request.header("Version"), Some("2021-07-28"), "{config}");
        let bearer = format!("Bearer {GHL_KEY}");
        assert_eq!(
            request.header("Authorization"),
            Some(bearer.as_str()),
            "{config}"
        );
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        assert_eq!(request.secret_headers, vec!["Authorization".to_owned()]);
        assert!(
            world.http.received().is_empty(),
            "GoHighLevel goes through the operator's client, not the users'"
        );
        let shown = format!(
            "{}{}",
            serde_json::to_string(&done.view()).unwrap(),
            log_texts(&world, &task.id).await.join("\n")
        );
        assert!(!shown.contains(GHL_KEY), "{config}: {shown}");
    }
}

#[tokio::test]
async fn a_ghl_action_without_an_api_key_configured_fails_at_once_with_invalid_config() {
    let world = World::with_secrets(|s| {
        s.extra.remove(pj_core::kinds::ghl::API_KEY_SECRET);
    });

    let task = world
        .create_kind(ghl_action(
            json!({"action": "add_tag", "contact_id": "c-1", "tags": ["vip"]}),
        ))
        .await;
    world.settle().await;

    let failed = world.task(&task.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempt, Attempt(1));
    assert_eq!(error_code(&failed), codes::INVALID_CONFIG);
    assert!(
        failed
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("GHL_API_KEY")
    );
    assert!(world.ghl_http.received().is_empty());
}

#[tokio::test]
async fn a_ghl_action_answered_429_with_retry_after_is_retried_no_sooner() {
    let world = World::new();
    let url = format!("{GHL_URL}/contacts/c-1/tags");
    world.ghl_http.reply(
        &url,
        Reply::json(429, json!({"message": "Too many requests"})).with_header("Retry-After", "20"),
    );
    world
        .ghl_http
        .reply(&url, Reply::json(200, json!({"tags": ["vip"]})));

    let task = world
        .create_kind(ghl_action(
            json!({"action": "add_tag", "contact_id": "c-1", "tags": ["vip"]}),
        ))
        .await;
    world.settle().await;

    let waiting = world.task(&task.id);
    assert_eq!(waiting.attempt, Attempt(2));
    let error = waiting.executions[0].error.clone().unwrap();
    assert_eq!(error.code, codes::HTTP_ERROR);
    assert_eq!(error.message, "GoHighLevel answered 429: Too many requests");
    assert!(backoff_left(&world, &task.id) >= Span::seconds(20));
    world.advance(Span::seconds(19)).await;
    assert_eq!(world.ghl_http.received().len(), 1);

    world.advance(Span::seconds(1)).await;

    let requests = world.ghl_http.received();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Span::seconds(20));
    assert_eq!(world.task(&task.id).status, TaskStatus::Completed);
}

// Outbound messages

#[tokio::test]
async fn a_webhook_notification_is_recorded_once_and_its_retry_after_a_500_keeps_its_webhook_id() {
    let world = World::new();
    world.http.reply(HOOK, Reply::status(500));

    let task = world
        .create_kind(json!({"kind": "notification", "title": "Say hello",
            "config": {"channel": "webhook", "url": HOOK, "message": "Hello, Ada"}}))
        .await;
    world.settle().await;

    let id = MessageId::derive(&task.id, Attempt(1), "message");
    let done = world.task(&task.id);
    assert_eq!(
        done.status,
        TaskStatus::Completed,
        "sent or on its way: its retries are the message's"
    );
    assert_eq!(
        done.result,
        Some(json!({"message_id": id, "channel": "webhook", "status": "pending"}))
    );
    let first = world.http.received_at(HOOK);
    let [first] = first.as_slice() else {
        panic!("one delivery expected: {first:?}");
    };
    assert_eq!(first.method, "POST");
    assert_eq!(first.header("webhook-id"), Some(id.as_str()));
    verify(first);
    let payload = first.json();
    assert_eq!(payload["type"], json!("notification"));
    assert_eq!(payload["message"], json!("Hello, Ada"));
    assert_eq!(payload["task"]["id"], json!(task.id));
    assert!(!first.follow_redirects);
    let record = world.messages.record(&id);
    assert_eq!(record.status, MessageStatus::Pending);
    assert_eq!(record.attempts, 1);
    assert_eq!(
        record.last_error.as_deref(),
        Some("the receiver answered 500")
    );
    let retry = match world.queue.waiting_in(QueueName::Notify).as_slice() {
        [
            Sent {
                message: QueueMessage::Deliver { message_id },
                delay,
            },
        ] if message_id == &id => *delay,
        other => panic!("the message's Deliver expected, got {other:?}"),
    };
    assert!(
        (Duration::from_secs(24)..=Duration::from_secs(36)).contains(&retry),
        "PJ_MESSAGE_RETRY_SECS with jitter: {retry:?}"
    );

    world.advance(Span::seconds(20)).await;
    assert_eq!(
        world.http.received_at(HOOK).len(),
        1,
        "not before its backoff"
    );
    world
        .advance(Span::from_std(retry).unwrap() - Span::seconds(20))
        .await;

    let deliveries = world.http.received_at(HOOK);
    assert_eq!(deliveries.len(), 2);
    assert_eq!(
        deliveries[1].header("webhook-id"),
        Some(id.as_str()),
        "the same webhook-id across retries"
    );
    assert_eq!(deliveries[1].body, deliveries[0].body);
    verify(&deliveries[1]);
    let record = world.messages.record(&id);
    assert_eq!(record.status, MessageStatus::Sent);
    assert_eq!(record.attempts, 2);
    assert!(record.sent_at.is_some());
    let view = record.view();
    assert_eq!(view["status"], json!("sent"));
    assert_eq!(view["attempts"], json!(2));

    // Every queue message again: no second record, no second delivery.
    world.redeliver_everything().await;
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert_eq!(world.http.received_at(HOOK).len(), 2);
    let records = world.messages.of(&task.id);
    assert_eq!(
        records
            .iter()
            .filter(|m| m.channel == Channel::Webhook)
            .count(),
        1
    );
    assert_eq!(
        records.len(),
        2,
        "the notification and the completion email"
    );
    assert_eq!(world.mailer.sent().len(), 1);
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_retried_by_its_own_deliveries_for_a_day_then_failed() {
    let world = World::new();
    for _ in 0..100 {
        world.http.reply(HOOK, Reply::status(503));
    }
    let task = world
        .create_kind(json!({"kind": "notification", "title": "Say hello",
            "config": {"channel": "webhook", "url": HOOK, "message": "Hello"},
            "notify": {"on_complete": false}}))
        .await;
    world.settle().await;
    let id = MessageId::derive(&task.id, Attempt(1), "message");
    let created = world.messages.record(&id).created_at;

    // No sweeper: the message's Deliver messages alone carry it, although its later backoffs
    // are longer than a queue holds a message.
    for _ in 0..500 {
        if !world.next().await {
            break;
        }
    }

    let record = world.messages.record(&id);
    assert_eq!(record.status, MessageStatus::Failed);
    assert_eq!(
        record.last_error.as_deref(),
        Some("the receiver answered 503")
    );
    let tries = world.http.received_at(HOOK);
    assert_eq!(tries.len() as u32, record.attempts);
    assert!(
        tries
            .iter()
            .all(|t| t.header("webhook-id") == Some(id.as_str()))
    );
    let last = tries.last().unwrap().at - created;
    assert!(
        last >= Span::hours(20) && last <= Span::hours(24),
        "tried for about a day: the last after {last}"
    );
    for (n, pair) in tries.windows(2).enumerate() {
        let floor = (30.0 * 2f64.powi(n as i32)).min(3600.0) * 0.8;
        let gap = (pair[1].at - pair[0].at).num_milliseconds() as f64 / 1000.0;
        assert!(
            gap >= floor,
            "try {} came {gap} s after the one before, sooner than its backoff",
            n + 2
        );
    }
    assert!(
        world.queue.messages().is_empty(),
        "nothing more is asked for"
    );
}

#[tokio::test]
async fn a_notification_to_a_webhook_the_client_refuses_fails_at_once_with_delivery_failed() {
    let world = World::new();
    world.http.reply(
        HOOK,
        Reply::Error(HttpError::Refused(
            "hooks.example.com resolves to 10.0.0.7, a private address".into(),
        )),
    );

    let task = world
        .create_kind(json!({"kind": "notification", "title": "Say hello",
            "config": {"channel": "webhook", "url": HOOK, "message": "Hello"}}))
        .await;
    world.settle().await;

    let failed = world.task(&task.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempt, Attempt(1));
    assert_eq!(error_code(&failed), codes::DELIVERY_FAILED);
    let record = world
        .messages
        .record(&MessageId::derive(&task.id, Attempt(1), "message"));
    assert_eq!(record.status, MessageStatus::Failed);
    assert_eq!(record.attempts, 1);
    world.clock.advance(Span::days(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert_eq!(world.http.received_at(HOOK).len(), 1);
}

#[tokio::test]
async fn an_email_notification_sends_its_message_to_the_owner_under_its_title() {
    let world = World::new();

    let task = world
        .create_kind(json!({"kind": "notification", "title": "Your invoice",
            "config": {"channel": "email", "message": "Your invoice is ready."}}))
        .await;
    world.settle().await;

    let id = MessageId::derive(&task.id, Attempt(1), "message");
    let emails = world.mailer.sent();
    let email = emails
        .iter()
        .find(|e| e.idempotency_key == id.as_str())
        .unwrap_or_else(|| panic!("the notification's email: {emails:?}"));
    assert_eq!(email.to, "alice@example.com");
    assert_eq!(email.subject, "Your invoice");
    assert_eq!(email.text, "Your invoice is ready.\n");
    assert!(email.html.contains("Your invoice is ready."));
    assert_eq!(world.task(&task.id).status, TaskStatus::Completed);
}

#[tokio::test]
async fn an_sms_notification_goes_through_gohighlevel_to_its_contact() {
    let world = World::new();

    let task = world
        .create_kind(json!({"kind": "notification", "title": "Text Ada",
            "config": {"channel": "sms", "contact_id": "c-1", "message": "See you at 3"}}))
        .await;
    world.settle().await;

    let done = world.task(&task.id);
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert_eq!(done.result.as_ref().unwrap()["status"], json!("sent"));
    let url = format!("{GHL_URL}/conversations/messages");
    let [request] = world
        .ghl_http
        .received_at(&url)
        .try_into()
        .expect("one request");
    assert_eq!(
        request.json(),
        json!({"type": "SMS", "contactId": "c-1", "message": "See you at 3"})
    );
    let bearer = format!("Bearer {GHL_KEY}");
    assert_eq!(request.header("Authorization"), Some(bearer.as_str()));
    assert_eq!(request.header("Version"), Some("2021-07-28"));
    assert!(world.http.received().is_empty());
}

#[tokio::test]
async fn a_reminder_waits_scheduled_until_remind_at_then_sends_its_message_once() {
    let world = World::new();
    let remind_at = world.clock.now() + Span::hours(1);

    let task = world
        .create_kind(json!({"kind": "reminder", "title": "Call Ada back",
            "config": {"channel": "webhook", "url": HOOK, "message": "Call Ada back",
                       "remind_at": rfc3339(remind_at)}}))
        .await;

    assert_eq!(task.status, TaskStatus::Scheduled);
    assert_eq!(task.scheduled_for, Some(remind_at));
    assert!(world.queue.messages().is_empty());
    world.clock.advance(Span::hours(1) - Span::seconds(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert_eq!(world.task(&task.id).status, TaskStatus::Scheduled);
    assert!(world.http.received().is_empty(), "not a second early");

    world.clock.advance(Span::seconds(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;

    let done = world.task(&task.id);
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.executions[0].triggered_by, Some(Trigger::Schedule));
    let [delivery] = world
        .http
        .received_at(HOOK)
        .try_into()
        .expect("one delivery");
    assert_eq!(delivery.at, remind_at);
    assert_eq!(delivery.json()["type"], json!("reminder"));
    assert_eq!(delivery.json()["message"], json!("Call Ada back"));

    world.sweeper.sweep().await.unwrap();
    world.redeliver_everything().await;
    world.clock.advance(Span::days(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert_eq!(world.http.received_at(HOOK).len(), 1, "never twice");
    assert_eq!(
        world
            .messages
            .of(&task.id)
            .iter()
            .filter(|m| m.channel == Channel::Webhook)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_reminder_cancelled_before_remind_at_never_fires() {
    let world = World::new();
    let remind_at = world.clock.now() + Span::hours(1);
    let task = world
        .create_kind(json!({"kind": "reminder", "title": "Call Ada back",
            "config": {"channel": "webhook", "url": HOOK, "message": "Call Ada back",
                       "remind_at": rfc3339(remind_at)}}))
        .await;

    world.api.cancel(&alice(), task.id.as_str()).await.unwrap();
    world.clock.advance(Span::hours(2));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;

    assert_eq!(world.task(&task.id).status, TaskStatus::Cancelled);
    assert!(world.http.received().is_empty());
    assert!(world.messages.of(&task.id).is_empty());
}

// report

/// Alice's tasks around a range, and others': returns the range.
async fn tasks_around_a_range(
    world: &World,
) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    // Before the range: a completed api_call and its email.
    world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;
    world.clock.advance(Span::hours(1));
    let from = world.clock.now();

    // In the range: a code change (two callbacks accepted, one refused), an api_call that
    // completes in 100 ms and one answered 404 in 300 ms.
    let coded = world.running_task().await;
    assert!(
        world
            .event(&coded.id, 2, json!({"type": "task.started"}))
            .await
            .is_err()
    );
    world
        .event(
            &coded.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await
        .unwrap();
    world.settle().await;
    world.clock.advance(Span::minutes(10));
    world.http.take_time(Span::milliseconds(100));
    world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;
    world.http.take_time(Span::milliseconds(300));
    world.http.reply(TARGET, Reply::status(404));
    world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;
    world.http.take_time(Span::zero());

    // Bob's, in the range too: a code change with a callback and a completed api_call.
    let (bobs, _) = world
        .api
        .create(&bob(), &crate::body(json!({})), None)
        .await
        .unwrap();
    world.dispatch_sent().await;
    world
        .event(&bobs.id, 1, json!({"type": "task.started"}))
        .await
        .unwrap();
    world
        .create_kind_for(&bob(), api_call(json!({"url": TARGET})))
        .await;
    world.settle().await;

    world.clock.advance(Span::hours(1));
    let to = world.clock.now();
    // At the end of the range, which is not in it.
    world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;
    world.clock.advance(Span::minutes(1));
    (from, to)
}

fn report(
    kind: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Value {
    json!({"kind": "report", "title": format!("Weekly {kind}"),
           "config": {"report": kind, "from": rfc3339(from), "to": rfc3339(to)}})
}

#[tokio::test]
async fn a_task_summary_counts_only_the_owners_tasks_in_the_range_and_deliver_sends_it() {
    let world = World::new();
    let (from, to) = tasks_around_a_range(&world).await;
    let emails_before = world.mailer.sent().len();

    let mut body = report("task_summary", from, to);
    body["config"]["deliver"] = json!({"channel": "email"});
    let task = world.create_kind(body).await;
    world.settle().await;

    let done = world.task(&task.id);
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    let result = done.result.clone().unwrap();
    assert_eq!(result["total"], json!(3));
    assert_eq!(result["by_kind"], json!({"api_call": 2, "code_change": 1}));
    assert_eq!(result["by_status"]["completed"], json!(2));
    assert_eq!(result["by_status"]["failed"], json!(1));
    assert_eq!(
        result["by_status"]["running"],
        json!(0),
        "bob's is not counted"
    );
    assert_eq!(result["partial"], json!(false));
    assert_eq!(result["delivery"]["status"], json!("sent"));
    let summary = done.result_summary.clone().unwrap();
    assert!(
        summary.contains("3 task(s): 2 completed, 1 failed"),
        "{summary}"
    );

    let emails = world.mailer.sent();
    let delivered = emails[emails_before..]
        .iter()
        .find(|e| e.subject == "[Pithy Jaunt] Report: Weekly task_summary")
        .unwrap_or_else(|| panic!("the report's email: {emails:?}"));
    assert_eq!(delivered.to, "alice@example.com");
    assert_eq!(delivered.text, format!("{summary}\n"));
}

#[tokio::test]
async fn execution_stats_count_only_the_owners_attempts_in_the_range() {
    let world = World::new();
    let (from, to) = tasks_around_a_range(&world).await;

    let task = world.create_kind(report("execution_stats", from, to)).await;
    world.settle().await;

    let result = world.task(&task.id).result.unwrap();
    assert_eq!(result["attempts"], json!(3));
    assert!(
        (result["success_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9,
        "{result}"
    );
    let api_calls = &result["by_kind"]["api_call"];
    assert_eq!(api_calls["attempts"], json!(2));
    assert_eq!(api_calls["success_rate"], json!(0.5));
    assert_eq!(api_calls["duration_ms_p50"], json!(100));
    assert_eq!(api_calls["duration_ms_p95"], json!(300));
    assert_eq!(result["by_kind"]["code_change"]["attempts"], json!(1));
    assert_eq!(result["by_kind"]["code_change"]["success_rate"], json!(1.0));
}

#[tokio::test]
async fn webhook_activity_counts_only_the_owners_messages_and_callbacks_in_the_range() {
    let world = World::new();
    let (from, to) = tasks_around_a_range(&world).await;

    let task = world
        .create_kind(report("webhook_activity", from, to))
        .await;
    world.settle().await;

    let result = world.task(&task.id).result.unwrap();
    assert_eq!(
        result["messages"]["total"],
        json!(3),
        "the three completion emails in the range: {result}"
    );
    assert_eq!(
        result["messages"]["by_channel"]["email"],
        json!({"pending": 0, "sent": 3, "failed": 0})
    );
    assert_eq!(
        result["callbacks"],
        json!({"accepted": 2, "refused": 1}),
        "alice's, not bob's"
    );
}

#[tokio::test]
async fn a_report_without_dates_covers_the_seven_days_before_it_runs_and_not_itself() {
    let world = World::new();
    world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.clock.advance(Span::days(2));
    world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;
    world.clock.advance(Span::days(6));

    let task = world
        .create_kind(json!({"kind": "report", "title": "This week",
            "config": {"report": "task_summary"}}))
        .await;
    world.settle().await;

    let result = world.task(&task.id).result.unwrap();
    assert_eq!(result["total"], json!(1), "{result}");
    assert_eq!(result["by_kind"], json!({"api_call": 1}));
    assert_eq!(
        result["from"],
        json!(rfc3339(world.clock.now() - Span::days(7)))
    );
}

// notify

#[tokio::test]
async fn a_task_whose_notify_says_not_on_complete_sends_nothing_when_it_completes() {
    let world = World::new();

    let task = world
        .create_kind(with(
            api_call(json!({"url": TARGET})),
            json!({"notify": {"on_complete": false}}),
        ))
        .await;
    world.settle().await;

    let done = world.task(&task.id);
    assert_eq!(done.status, TaskStatus::Completed);
    assert!(done.notify_pending.is_empty());
    assert!(world.messages.of(&task.id).is_empty());
    assert!(world.mailer.tries().is_empty());
    world.clock.advance(Span::hours(1));
    world.sweeper.sweep().await.unwrap();
    world.settle().await;
    assert!(world.mailer.tries().is_empty());
}

#[tokio::test]
async fn a_task_whose_notify_names_a_webhook_and_an_email_records_and_sends_both() {
    let world = World::new();

    let task = world
        .create_kind(with(
            api_call(json!({"url": TARGET})),
            json!({"notify": {"channels": [
                {"channel": "webhook", "url": HOOK},
                {"channel": "email", "to": "ops@example.com", "subject": "The call is done"},
            ]}}),
        ))
        .await;
    world.settle().await;

    let records = world.messages.of(&task.id);
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|m| m.status == MessageStatus::Sent),
        "{records:?}"
    );
    let [hook] = world
        .http
        .received_at(HOOK)
        .try_into()
        .expect("one webhook");
    verify(&hook);
    assert_eq!(hook.json()["type"], json!("task.completed"));
    assert_eq!(hook.json()["task"]["status"], json!("completed"));
    let [email] = world.mailer.sent().try_into().expect("one email");
    assert_eq!(email.to, "ops@example.com");
    assert_eq!(email.subject, "The call is done");
}

#[tokio::test]
async fn a_task_without_notify_sends_its_outcome_by_email_to_its_owner() {
    let world = World::new();

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    let [email] = world.mailer.sent().try_into().expect("one email");
    assert_eq!(email.to, "alice@example.com");
    assert_eq!(email.subject, "[Pithy Jaunt] Completed: Call the API");
    let [record] = world.messages.of(&task.id).try_into().expect("one record");
    assert_eq!(record.channel, Channel::Email);
    assert_eq!(email.idempotency_key, record.id.as_str());
}

#[tokio::test]
async fn the_completion_email_of_a_built_in_kind_names_no_repository_and_tells_its_result() {
    let world = World::new();

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    let [email] = world.mailer.sent().try_into().expect("one email");
    let summary = world.task(&task.id).result_summary.unwrap();
    assert!(!email.text.contains("Repository"), "{}", email.text);
    assert!(!email.text.contains("Branch"), "{}", email.text);
    assert!(
        email.text.contains(&format!("Result: {summary}")),
        "{}",
        email.text
    );
}

#[tokio::test]
async fn a_notify_email_with_its_own_address_is_sent_when_the_owner_has_none() {
    let world = World::new();

    let task = world
        .create_kind_for(
            &carol(),
            with(
                api_call(json!({"url": TARGET})),
                json!({"notify": {"channels": [{"channel": "email", "to": "ops@example.com"}]}}),
            ),
        )
        .await;
    world.settle().await;

    let [email] = world.mailer.sent().try_into().expect("one email");
    assert_eq!(email.to, "ops@example.com");
    assert_eq!(world.messages.of(&task.id).len(), 1);
}

// running limits

#[tokio::test]
async fn a_built_in_kind_is_not_held_back_by_the_running_limits_of_runners() {
    let world = World::with(|s: &mut Settings| {
        s.capacity = Capacity {
            per_user: Some(1),
            total: Some(1),
        }
    });
    let running = world.running_task().await;

    let task = world.create_kind(api_call(json!({"url": TARGET}))).await;
    world.settle().await;

    assert_eq!(world.task(&task.id).status, TaskStatus::Completed);
    assert_eq!(world.task(&running.id).status, TaskStatus::Running);
    assert_eq!(
        world.runner.started().len(),
        1,
        "no runner for the api_call"
    );
    assert_eq!(world.http.received_at(TARGET).len(), 1);
}
