//! One task from creation to email through the functions, on the emulator: `api` creates it;
//! the message it put on the dispatch queue, received for real, drives `dispatch`, which starts
//! the test runner; as that runner, the test signs its events and log batches for `webhook`
//! and `log-ingest`; the notify message, received for real, drives `notify`; the email is in
//! moto's record of sent mail.

use http::StatusCode;
use pj_aws::MetricsSnapshot;
use pj_core::ports::QueueName;
use pj_core::{TaskId, TaskStatus};
use pj_lambda::samples::SAMPLE_EMAIL;
use serde_json::{Value, json};

use crate::support::{
    TestApp, call, event, http_request, sent_mail, signed_callback, sqs_event, unique_name,
};

/// What each function sent to AWS for one task, in the order they ran.
pub struct Flow {
    pub task: TaskId,
    pub functions: Vec<(String, MetricsSnapshot)>,
    /// Receives standing in for Lambda's event source mapping.
    pub event_source: MetricsSnapshot,
}

/// Runs one task through every function; the runner sends `batches` log batches of
/// `lines_per_batch` lines.
pub async fn one_task(app: &TestApp, batches: u64, lines_per_batch: u64) -> Flow {
    let mut functions = Vec::new();
    let event_source = app.wiring("event-source").aws;

    // api: POST /tasks.
    let api = app.wiring("api");
    let mut create: Value = serde_json::from_str(&event("api-create-task.json")).unwrap();
    create["headers"]["idempotency-key"] = Value::from(unique_name("key"));
    let created = call(&app.api(&api), http_request(&create.to_string())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = TaskId::parse(created.json()["id"].as_str().unwrap()).unwrap();
    functions.push(("api (POST /tasks)".into(), api.aws.metrics().snapshot()));

    // dispatch: the message api sent, as SQS delivers it.
    let messages = app.receive(&event_source, QueueName::Dispatch, 1).await;
    assert_eq!(messages.len(), 1, "api sent one dispatch message");
    let dispatch = app.wiring("dispatch");
    let response = app
        .dispatch(&dispatch)
        .handle_batch(sqs_event(&messages))
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    functions.push(("dispatch".into(), dispatch.aws.metrics().snapshot()));

    // The runner: its environment says where to call back and with which key.
    let job = app.runner.job_for(&id);
    assert_eq!(job.env.get("TASK_ID"), Some(id.as_str()));
    let key =
        pj_core::signing::CallbackSecret::parse(job.env.get("WEBHOOK_SECRET").unwrap()).unwrap();
    let webhook = app.wiring("webhook");
    let webhook_router = app.webhook(&webhook);
    let send_event = |body: Value| {
        let request = signed_callback(&event("webhook-task-started.json"), &body.to_string(), &key);
        let router = webhook_router.clone();
        async move {
            let answer = call(&router, http_request(&request)).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
            assert_eq!(answer.json()["status"], "applied");
        }
    };
    send_event(json!({"type": "task.started", "task_id": id.as_str(), "attempt": 1})).await;

    let ingest = app.wiring("log-ingest");
    let ingest_router = app.log_ingest(&ingest);
    let ts = chrono::Utc::now();
    for batch in 0..batches {
        let lines: Vec<Value> = (0..lines_per_batch)
            .map(|i| {
                let seq = batch * lines_per_batch + i;
                json!({
                    "seq": seq,
                    "ts": pj_core::time::rfc3339(ts + chrono::Duration::milliseconds(seq as i64)),
                    "stream": if seq % 10 == 9 { "stderr" } else { "stdout" },
                    "text": format!("line {seq}: compiling pj-core v0.1.0 (/work/repo/shared/core) and running its tests"),
                })
            })
            .collect();
        let body = json!({"task_id": id.as_str(), "attempt": 1, "lines": lines}).to_string();
        let request = signed_callback(&event("log-ingest-batch.json"), &body, &key);
        let answer = call(&ingest_router, http_request(&request)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.json()["stored"], lines_per_batch);
    }

    send_event(json!({
        "type": "task.completed", "task_id": id.as_str(), "attempt": 1,
        "branch": format!("pj/{id}"), "pr_url": "https://github.com/octo-org/hello-world/pull/7",
        "usage": {"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.01, "model": "gpt-4.1"},
    }))
    .await;
    functions.push((
        "webhook (started, completed)".into(),
        webhook.aws.metrics().snapshot(),
    ));
    functions.push((
        format!("log-ingest ({batches} batches)"),
        ingest.aws.metrics().snapshot(),
    ));
    assert_eq!(app.task(&id).await.status, TaskStatus::Completed);

    // notify: the message the completion asked for, as SQS delivers it.
    let messages = app.receive(&event_source, QueueName::Notify, 1).await;
    assert_eq!(messages.len(), 1, "the completion asked for one email");
    let notify = app.wiring("notify");
    let response = app.notify(&notify).handle_batch(sqs_event(&messages)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    functions.push(("notify".into(), notify.aws.metrics().snapshot()));

    Flow {
        task: id,
        functions,
        event_source: event_source.metrics().snapshot(),
    }
}

#[tokio::test]
async fn a_task_should_go_from_creation_to_email_through_the_functions() {
    let app = TestApp::new().await;
    let flow = one_task(&app, 2, 50).await;
    let id = &flow.task;

    let task = app.task(id).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(
        task.pr_url.as_deref(),
        Some("https://github.com/octo-org/hello-world/pull/7")
    );
    assert!(
        task.notify_pending.is_empty(),
        "the email is recorded as sent"
    );

    let sent = sent_mail().await;
    let mail = sent
        .iter()
        .find(|m| m["body"].as_str().is_some_and(|b| b.contains(id.as_str())))
        .unwrap_or_else(|| panic!("no email about {id}: {sent:?}"));
    assert_eq!(mail["destinations"]["ToAddresses"][0], SAMPLE_EMAIL);
    assert!(mail["body"].as_str().unwrap().contains("pull/7"));

    for name in [
        "task_created",
        "task_completed",
        "dispatch_latency_ms",
        "task_duration_ms",
    ] {
        assert!(
            app.emitted_metrics().iter().any(|d| !d[name].is_null()),
            "no EMF line for {name}"
        );
    }
    assert_eq!(app.metric_total("task_created"), 1.0);
    assert_eq!(app.metric_total("task_completed"), 1.0);
    assert_eq!(app.metric_total("tokens_input"), 1200.0);
}
