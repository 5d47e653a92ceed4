//! `webhook` and `log-ingest`: the runners' signed callbacks from the sample events.

use http::StatusCode;
use pj_core::TaskStatus;
use pj_lambda::samples::{RUNNER_TASK, retarget};
use serde_json::json;

use crate::support::{TestApp, call, event, http_request, signed_callback, signed_sample};

#[tokio::test]
async fn a_signed_runner_event_should_change_the_task_once() {
    let app = TestApp::new().await;
    let (id, _key) = app.dispatched_task().await;
    let webhook = app.webhook(&app.wiring("webhook"));

    // The sample, sent to this task and signed now with the master secret's key for it.
    let delivery = signed_sample(&retarget(
        &event("webhook-task-started.json"),
        RUNNER_TASK,
        &id,
    ));
    let first = call(&webhook, http_request(&delivery)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json()["status"], "applied");
    assert_eq!(app.task(&id).await.status, TaskStatus::Running);

    let again = call(&webhook, http_request(&delivery)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["status"], "duplicate");
}

#[tokio::test]
async fn when_the_signature_is_stale_or_forged_should_refuse() {
    let app = TestApp::new().await;
    let (id, _key) = app.dispatched_task().await;
    let webhook = app.webhook(&app.wiring("webhook"));
    // The file as it is: signed long ago.
    let stale = retarget(&event("webhook-task-started.json"), RUNNER_TASK, &id);
    let answer = call(&webhook, http_request(&stale)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    // Signed now, but with another attempt's key.
    let other_key = pj_lambda::samples::dev_master_secret().derive(&id, pj_core::Attempt(2));
    let body = json!({"type": "task.started", "task_id": id.as_str(), "attempt": 1}).to_string();
    let forged = signed_callback(&event("webhook-task-started.json"), &body, &other_key);
    let answer = call(&webhook, http_request(&forged)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    assert_eq!(
        app.task(&id).await.status,
        TaskStatus::Queued,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_signed_log_batch_should_be_stored_once() {
    let app = TestApp::new().await;
    let (id, key) = app.dispatched_task().await;
    let logs = app.log_ingest(&app.wiring("log-ingest"));

    let sample = signed_sample(&retarget(&event("log-ingest-batch.json"), RUNNER_TASK, &id));
    let first = call(&logs, http_request(&sample)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json(), json!({"stored": 8, "duplicates": 0}));

    // The runner's retry of the same batch, a new delivery: nothing is stored twice.
    let body: serde_json::Value = serde_json::from_str(&event("log-ingest-batch.json")).unwrap();
    let body = retarget(body["body"].as_str().unwrap(), RUNNER_TASK, &id);
    let retry = signed_callback(&event("log-ingest-batch.json"), &body, &key);
    let second = call(&logs, http_request(&retry)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.json(), json!({"stored": 0, "duplicates": 8}));
}
