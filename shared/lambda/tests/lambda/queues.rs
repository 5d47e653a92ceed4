//! `dispatch` and `notify`: SQS batches with partial batch responses.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use pj_aws::service;
use pj_core::ports::{DispatchError, QueueName};
use pj_core::task::ExecState;
use pj_core::{TaskId, TaskStatus};
use pj_lambda::samples::{KIND_TASK, QUEUED_TASK, RUNNER_TASK, SAMPLE_EMAIL, retarget};
use serde_json::{Value, json};

use crate::support::{
    PUBLIC_URL, TestApp, call, event, http_request, sample_sqs_event, sent_mail, signed_callback,
    sqs_event, unique_name,
};

/// A task created through `api` (its dispatch message left on the queue).
async fn created_task(app: &TestApp) -> TaskId {
    let mut create: Value = serde_json::from_str(&event("api-create-task.json")).unwrap();
    create["headers"]["idempotency-key"] = Value::from(unique_name("key"));
    let created = call(
        &app.api(&app.wiring("api")),
        http_request(&create.to_string()),
    )
    .await;
    TaskId::parse(created.json()["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_sample_dispatch_batch_should_start_the_runner() {
    let app = TestApp::new().await;
    let id = created_task(&app).await;
    let batch = sample_sqs_event("dispatch-batch.json", QUEUED_TASK, &id);
    let response = app
        .dispatch(&app.wiring("dispatch"))
        .handle_batch(batch)
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let job = app.runner.job_for(&id);
    assert_eq!(
        job.env.get("WEBHOOK_URL"),
        Some(format!("{PUBLIC_URL}/webhooks/runner").as_str())
    );
    assert!(job.env.get("WEBHOOK_SECRET").unwrap().starts_with("whsec_"));
    let task = app.task(&id).await;
    assert_eq!(
        task.current_execution().unwrap().state,
        ExecState::Dispatched
    );
    assert!(app.metric_total("dispatch_latency_ms") >= 0.0);
}

#[tokio::test]
async fn only_the_messages_that_must_come_again_should_be_reported() {
    let app = TestApp::new().await;
    let fine = created_task(&app).await;
    let busy = created_task(&app).await;
    app.runner.fail(
        &busy,
        DispatchError::Retryable {
            message: "GitHub answered 502".into(),
            retry_after: Some(Duration::from_secs(30)),
        },
    );
    // Both dispatch messages as SQS delivers them, and one nobody can read.
    let wiring = app.wiring("dispatch");
    let mut messages = app.receive(&app.aws, QueueName::Dispatch, 2).await;
    assert_eq!(messages.len(), 2);
    messages.sort_by_key(|m| m.body().unwrap_or_default().contains(busy.as_str()));
    let mut event: Value = serde_json::to_value(sqs_event(&messages)).unwrap();
    let mut garbled = event["Records"][0].clone();
    garbled["messageId"] = "garbled-1".into();
    garbled["body"] = "{not json".into();
    event["Records"].as_array_mut().unwrap().push(garbled);
    let event: SqsEvent = serde_json::from_value(event).unwrap();

    let response = app.dispatch(&wiring).handle_batch(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    let busy_message = messages[1].message_id().unwrap();
    assert_eq!(failed, [busy_message, "garbled-1"]);
    assert_eq!(
        app.task(&fine).await.current_execution().unwrap().state,
        ExecState::Dispatched
    );
    let deferred = app.task(&busy).await;
    assert_eq!(deferred.current_execution().unwrap().dispatch_failures, 1);
    // The deferred message got its backoff (at least the runner's 30 s): it is not back yet.
    let counted = wiring.aws.metrics().snapshot();
    assert_eq!(
        counted
            .operation(service::SQS, "ChangeMessageVisibility")
            .calls,
        1
    );
    assert!(
        app.receive(&app.aws, QueueName::Dispatch, 1)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_stop_message_should_stop_the_runner() {
    let app = TestApp::new().await;
    let (id, _) = app.dispatched_task().await;
    let cancel = retarget(
        &event("api-cancel-task.json"),
        pj_lambda::samples::CANCEL_TASK,
        &id,
    );
    let answer = call(&app.api(&app.wiring("api")), http_request(&cancel)).await;
    assert_eq!(answer.json()["status"], "cancelled");
    let messages = app.receive(&app.aws, QueueName::Dispatch, 1).await;
    assert_eq!(messages.len(), 1);
    let response = app
        .dispatch(&app.wiring("dispatch"))
        .handle_batch(sqs_event(&messages))
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let stops = app.runner.stops.lock().unwrap().clone();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].0, id);
    assert_eq!(stops[0].2.as_deref(), Some("run-1"));
}

#[tokio::test]
async fn the_sample_notify_batch_should_send_the_email() {
    let app = TestApp::new().await;
    let (id, key) = app.dispatched_task().await;
    let webhook = app.webhook(&app.wiring("webhook"));
    let body: Value = serde_json::from_str(&event("webhook-task-completed.json")).unwrap();
    let body = retarget(body["body"].as_str().unwrap(), RUNNER_TASK, &id);
    let answer = call(
        &webhook,
        http_request(&signed_callback(
            &event("webhook-task-completed.json"),
            &body,
            &key,
        )),
    )
    .await;
    assert_eq!(answer.json(), json!({"status": "applied"}));
    assert_eq!(app.task(&id).await.status, TaskStatus::Completed);

    let batch = sample_sqs_event("notify-batch.json", RUNNER_TASK, &id);
    let response = app.notify(&app.wiring("notify")).handle_batch(batch).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let sent = sent_mail().await;
    let link = format!("{PUBLIC_URL}/#/tasks/{id}");
    let mail = sent
        .iter()
        .find(|m| m["body"].as_str().is_some_and(|b| b.contains(&link)))
        .unwrap_or_else(|| panic!("no email links {link}: {sent:?}"));
    assert_eq!(mail["source"], app.email_from.as_str());
    assert_eq!(
        mail["destinations"]["ToAddresses"][0],
        pj_lambda::samples::SAMPLE_EMAIL
    );
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .starts_with("[Pithy Jaunt] Completed")
    );
    let task = app.task(&id).await;
    assert!(task.notify_pending.is_empty() && task.notified == [pj_core::Attempt(1)]);
}

/// `events/tasks-batch.json` against the samples `scripts/dev-aws` seeds: the tasks function
/// runs the claimed notification, whose email goes out through SES.
#[tokio::test]
async fn the_sample_tasks_batch_should_run_the_sample_notification() {
    let app = TestApp::new().await;
    let wiring = app.wiring("provision");
    let engine = wiring.engine(
        Some(wiring.queues(app.queues.urls.clone())),
        wiring.settings(Some(PUBLIC_URL), Some(&app.email_from)),
    );
    let made = pj_lambda::samples::seed_sample_tasks(&engine)
        .await
        .unwrap();
    assert_eq!(made.len(), 4, "{made:?}");
    let id = TaskId::parse(KIND_TASK).unwrap();
    assert_eq!(
        app.task(&id).await.current_execution().unwrap().state,
        ExecState::Claimed
    );

    let batch: SqsEvent = serde_json::from_str(&event("tasks-batch.json")).unwrap();
    let response = app
        .tasks(&app.wiring("tasks"))
        .await
        .handle_batch(batch)
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let task = app.task(&id).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(task.result.as_ref().unwrap()["channel"], "email");
    assert_eq!(task.result.as_ref().unwrap()["status"], "sent");
    let sent = sent_mail().await;
    let mail = sent
        .iter()
        .find(|m| m["subject"] == "Nightly import finished")
        .unwrap_or_else(|| panic!("no sample notification: {sent:?}"));
    assert_eq!(mail["destinations"]["ToAddresses"][0], SAMPLE_EMAIL);
    assert_eq!(mail["source"], app.email_from.as_str());

    // The same message again (a redelivery) runs nothing twice.
    let batch: SqsEvent = serde_json::from_str(&event("tasks-batch.json")).unwrap();
    let response = app
        .tasks(&app.wiring("tasks"))
        .await
        .handle_batch(batch)
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let again = sent_mail().await;
    assert_eq!(
        again
            .iter()
            .filter(|m| m["subject"] == "Nightly import finished")
            .count(),
        1
    );
}

/// The dispatch function with its real runner: PJ_RUNNER=github_actions against a fake GitHub,
/// the token from the deployment's secret.
#[tokio::test]
async fn the_dispatch_function_should_start_a_workflow_run_through_github() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "ghp_DispatchFunctionTestToken000000000001";
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "pj-bot"})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo-org/hello-world/dispatches"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&github)
        .await;
    let app = TestApp::new().await;
    let mut document = pj_lambda::samples::dev_secret_document();
    document["github_token"] = Value::from(TOKEN);
    let secret_id = unique_name("secret");
    pj_aws::provision::put_secret(app.aws.secrets_manager(), &secret_id, &document)
        .await
        .unwrap();

    let wiring = app.wiring("dispatch");
    let secrets = wiring.secrets(&secret_id);
    let env = pj_lambda::config::Env::from_pairs([("GITHUB_API_URL", github.uri())]);
    let runner = pj_lambda::runner_from_config(&app.core, &env, secrets.clone());
    let worker = pj_lambda::functions::dispatch(
        &wiring,
        app.queues.urls.clone(),
        secrets,
        PUBLIC_URL,
        runner,
    );
    let id = created_task(&app).await;
    let batch = sample_sqs_event("dispatch-batch.json", QUEUED_TASK, &id);
    let response = worker.handle_batch(batch).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let exec = app.task(&id).await.current_execution().unwrap().clone();
    assert_eq!(exec.state, ExecState::Dispatched);
    assert_eq!(exec.runner_ref.as_deref(), Some("octo-org/hello-world"));
    let requests = github.received_requests().await.unwrap();
    let sent: Value = requests
        .iter()
        .find(|r| r.url.path().ends_with("/dispatches"))
        .unwrap()
        .body_json()
        .unwrap();
    assert_eq!(sent["client_payload"]["pj"]["TASK_ID"], id.as_str());
    assert_eq!(
        sent["client_payload"]["pj"]["WEBHOOK_URL"],
        format!("{PUBLIC_URL}/webhooks/runner")
    );
}
