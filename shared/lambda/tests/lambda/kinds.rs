//! The built-in kinds through the functions on the emulator, as `pj serve` runs them: `api`
//! creates the task; its dispatch message, received for real, drives `dispatch`, which claims
//! the attempt and puts a run message on the tasks queue; `tasks` runs the kind against local
//! fakes (a target API and GoHighLevel on wiremock, a webhook receiver that checks Standard
//! Webhooks signatures) and records the outcome; `notify` sends the notices and retries the
//! outbound messages; `sweeper` starts what is scheduled. The functions get
//! `PJ_ALLOW_PRIVATE_NETWORKS=true` to reach the fakes on 127.0.0.1, except in the test that
//! checks the default refuses them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use http::StatusCode;
use pj_core::messages::{MessageFilter, MessageStatus, MessageStore, OutboundMessage};
use pj_core::ports::{LogStore, QueueName, TaskStore};
use pj_core::signing::{CallbackSecret, SignatureHeaders};
use pj_core::task::Trigger;
use pj_core::{Task, TaskId, TaskStatus, UserId};
use pj_lambda::functions;
use pj_lambda::samples::{DEV_OUTBOUND_SECRET, SAMPLE_USER};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{Answer, QueueFunctions, TestApp, call, event, http_request, sent_mail};

const GHL_KEY: &str = "pit-test-ghl-private-integration-key";
const GHL_LOCATION: &str = "loc-test-1";
const BEARER: &str = "target-api-token-0123456789";

/// A deployment whose functions reach local fakes, retry messages after a second, and talk
/// to the GoHighLevel at `ghl`.
async fn kinds_app(ghl: &str) -> TestApp {
    TestApp::with(
        &[
            ("PJ_ALLOW_PRIVATE_NETWORKS", "true"),
            ("PJ_MESSAGE_RETRY_SECS", "1"),
            ("GHL_API_URL", ghl),
            ("GHL_LOCATION_ID", GHL_LOCATION),
        ],
        &[("ghl_api_key", GHL_KEY)],
    )
    .await
}

/// `POST /tasks` through `api` with `body`, as the sample user or as `other_user`.
pub(crate) async fn create(app: &TestApp, body: Value, other_user: Option<&str>) -> Value {
    let answer = create_answer(app, body, other_user).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json()
}

/// The same, whatever the answer.
pub(crate) async fn create_answer(app: &TestApp, body: Value, other_user: Option<&str>) -> Answer {
    let mut request: Value = serde_json::from_str(&event("api-create-task.json")).unwrap();
    let headers = request["headers"].as_object_mut().unwrap();
    headers.remove("idempotency-key");
    let text = body.to_string();
    headers.insert("content-length".into(), text.len().to_string().into());
    request["body"] = Value::from(text);
    if let Some(user) = other_user {
        let claims = &mut request["requestContext"]["authorizer"]["jwt"]["claims"];
        claims["sub"] = Value::from(user);
        claims["email"] = Value::from(format!("{user}@example.com"));
    }
    call(
        &app.api(&app.wiring("api")),
        http_request(&request.to_string()),
    )
    .await
}

pub(crate) fn id_of(task: &Value) -> TaskId {
    TaskId::parse(task["id"].as_str().expect("the task has an id")).unwrap()
}

fn store(app: &TestApp) -> pj_aws::DynamoStore {
    app.aws.dynamo_store(app.core.table.clone())
}

pub(crate) async fn stored(app: &TestApp, id: &TaskId) -> Task {
    let tasks: &dyn TaskStore = &store(app);
    tasks.get(id).await.unwrap().expect("the task is stored")
}

/// Whether every one of `ids` has ended and its notices are done.
pub(crate) async fn all_settled(app: &TestApp, ids: &[TaskId]) -> bool {
    for id in ids {
        let task = stored(app, id).await;
        if !task.status.is_terminal() || !task.notify_pending.is_empty() {
            return false;
        }
    }
    true
}

async fn messages_of(app: &TestApp, id: &TaskId) -> Vec<OutboundMessage> {
    let messages: &dyn MessageStore = &store(app);
    let filter = MessageFilter {
        task_id: Some(id.clone()),
        status: None,
    };
    messages
        .list(&UserId::parse(SAMPLE_USER).unwrap(), &filter, 100, None)
        .await
        .unwrap()
}

fn settle_within() -> Duration {
    Duration::from_secs(45)
}

async fn run(app: &TestApp, functions: &QueueFunctions, ids: &[TaskId], what: &str) {
    app.run_queues_until(functions, settle_within(), what, || all_settled(app, ids))
        .await;
}

#[tokio::test]
async fn api_calls_should_complete_be_retried_after_a_503_and_fail_on_a_404() {
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ok"))
        .and(header("authorization", format!("Bearer {BEARER}").as_str()))
        .and(body_json(json!({"contact": "ada"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "id": 7})))
        .expect(1)
        .mount(&target)
        .await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&target)
        .await;
    Mock::given(method("GET"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_string("fine now"))
        .with_priority(2)
        .expect(1)
        .mount(&target)
        .await;
    Mock::given(method("GET"))
        .and(path("/missing"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "no such thing"})))
        .expect(1)
        .mount(&target)
        .await;
    let app = kinds_app(&target.uri()).await;
    let ok = create(
        &app,
        json!({"kind": "api_call", "title": "Post the contact", "config": {
            "url": format!("{}/ok", target.uri()), "method": "POST", "body": {"contact": "ada"},
            "auth": {"type": "bearer", "token": BEARER}}}),
        None,
    )
    .await;
    assert_eq!(ok["config"]["auth"]["token"], "***", "{ok}");
    let flaky = create(
        &app,
        json!({"kind": "api_call", "title": "Flaky", "max_attempts": 3,
               "config": {"url": format!("{}/flaky", target.uri())}}),
        None,
    )
    .await;
    let missing = create(
        &app,
        json!({"kind": "api_call", "title": "Missing",
               "config": {"url": format!("{}/missing", target.uri())}}),
        None,
    )
    .await;
    let ids = [id_of(&ok), id_of(&flaky), id_of(&missing)];
    // The stored config holds the token sealed, never in clear.
    let raw = stored(&app, &ids[0]).await;
    let config = serde_json::to_string(&raw.config).unwrap();
    assert!(!config.contains(BEARER), "{config}");

    let functions = app.queue_functions().await;
    run(&app, &functions, &ids, "the three api calls end").await;

    let ok = stored(&app, &ids[0]).await;
    assert_eq!(ok.status, TaskStatus::Completed, "{:?}", ok.error);
    let result = ok.result.clone().unwrap();
    assert_eq!(result["status"], 200);
    assert_eq!(result["body"], json!({"ok": true, "id": 7}));
    assert!(ok.result_summary.as_deref().unwrap().contains("→ 200"));
    assert_eq!(ok.executions.len(), 1);
    assert_eq!(ok.executions[0].triggered_by, Some(Trigger::Create));
    let logs = store(&app)
        .read(&ok.id, None, 100, Utc::now())
        .await
        .unwrap();
    assert!(
        logs.iter().any(|l| l.text.contains("← 200")),
        "the attempt's log: {logs:?}"
    );
    assert!(logs.iter().all(|l| !l.text.contains(BEARER)));

    let flaky = stored(&app, &ids[1]).await;
    assert_eq!(flaky.status, TaskStatus::Completed, "{:?}", flaky.error);
    assert_eq!(flaky.executions.len(), 2, "one automatic retry");
    assert_eq!(
        flaky.executions[0].error.as_ref().map(|e| e.code.as_str()),
        Some("http_error")
    );
    assert_eq!(
        flaky.executions[1].triggered_by,
        Some(Trigger::AutomaticRetry)
    );
    assert_eq!(flaky.result.unwrap()["body"], "fine now");

    let missing = stored(&app, &ids[2]).await;
    assert_eq!(missing.status, TaskStatus::Failed);
    assert_eq!(missing.executions.len(), 1, "a 404 is not retried");
    assert_eq!(missing.error.as_ref().unwrap().code, "http_error");
    assert_eq!(missing.result.unwrap()["status"], 404);

    // Each outcome told its owner by email (the default notice), through SES.
    let mail = sent_mail().await;
    for id in &ids {
        assert!(
            mail.iter()
                .any(|m| m["body"].as_str().is_some_and(|b| b.contains(id.as_str()))),
            "no email about {id}"
        );
    }
}

/// One delivery to the webhook receiver.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    verified: bool,
    at: DateTime<Utc>,
    body: Value,
}

/// A webhook receiver that checks each delivery's Standard Webhooks signature with the
/// deployment's outbound secret and fails the first `failures` deliveries with a 503.
#[derive(Clone)]
struct Receiver {
    key: Arc<CallbackSecret>,
    failures: Arc<Mutex<u32>>,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn new(failures: u32) -> Receiver {
        Receiver {
            key: Arc::new(CallbackSecret::parse(DEV_OUTBOUND_SECRET).unwrap()),
            failures: Arc::new(Mutex::new(failures)),
            seen: Arc::default(),
        }
    }

    async fn mount(&self, server: &MockServer, at: &str) {
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }

    fn seen(&self) -> Vec<Delivery> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let headers = SignatureHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        };
        let verified = self
            .key
            .verify(&headers, &request.body, Utc::now().timestamp())
            .is_ok();
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Delivery {
                id: header("webhook-id").unwrap_or_default().to_owned(),
                verified,
                at: Utc::now(),
                body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
            });
        if !verified {
            return ResponseTemplate::new(401);
        }
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if *failures > 0 {
            *failures -= 1;
            return ResponseTemplate::new(503);
        }
        ResponseTemplate::new(200)
    }
}

#[tokio::test]
async fn a_webhook_notification_should_be_delivered_again_with_the_same_webhook_id() {
    let server = MockServer::start().await;
    let receiver = Receiver::new(1);
    receiver.mount(&server, "/hooks/in").await;
    let app = kinds_app(&server.uri()).await;
    let task = create(
        &app,
        json!({"kind": "notification", "title": "Tell the CRM",
               "config": {"channel": "webhook", "url": format!("{}/hooks/in", server.uri()),
                          "message": "The nightly import finished"}}),
        None,
    )
    .await;
    let id = id_of(&task);
    let functions = app.queue_functions().await;
    app.run_queues_until(
        &functions,
        settle_within(),
        "the webhook is delivered",
        || async {
            all_settled(&app, std::slice::from_ref(&id)).await
                && messages_of(&app, &id)
                    .await
                    .iter()
                    .all(|m| m.status == MessageStatus::Sent)
        },
    )
    .await;

    let task = stored(&app, &id).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let sent: Vec<OutboundMessage> = messages_of(&app, &id)
        .await
        .into_iter()
        .filter(|m| m.to.contains("/hooks/in"))
        .collect();
    assert_eq!(sent.len(), 1, "one message record: {sent:?}");
    let message = &sent[0];
    assert_eq!(message.status, MessageStatus::Sent);
    assert_eq!(message.attempts, 2);
    assert_eq!(
        task.result.as_ref().unwrap()["message_id"],
        message.id.as_str()
    );

    let deliveries = receiver.seen();
    assert_eq!(
        deliveries.len(),
        2,
        "the first failed, the retry got through"
    );
    for d in &deliveries {
        assert!(d.verified, "a valid signature: {d:?}");
        assert_eq!(
            d.id,
            message.id.as_str(),
            "the webhook-id is the message id"
        );
    }
    assert_eq!(deliveries[0].body["type"], "notification");
    assert_eq!(deliveries[0].body["message"], "The nightly import finished");
    assert_eq!(deliveries[0].body["task"]["id"], id.as_str());
    assert_eq!(deliveries[0].body, deliveries[1].body);
}

#[tokio::test]
async fn a_ghl_action_should_call_gohighlevel_with_its_key_version_and_camel_case_body() {
    let ghl = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/"))
        .and(header(
            "authorization",
            format!("Bearer {GHL_KEY}").as_str(),
        ))
        .and(header("version", "2021-07-28"))
        .and(body_json(json!({
            "locationId": GHL_LOCATION, "firstName": "Ada", "lastName": "Lovelace",
            "email": "ada@example.com", "tags": ["vip"],
        })))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"contact": {"id": "c-42", "firstName": "Ada"}})),
        )
        .expect(1)
        .mount(&ghl)
        .await;
    let app = kinds_app(&ghl.uri()).await;
    let task = create(
        &app,
        json!({"kind": "ghl_action", "title": "Add Ada",
               "config": {"action": "add_contact", "first_name": "Ada",
                          "last_name": "Lovelace", "email": "ada@example.com", "tags": ["vip"]}}),
        None,
    )
    .await;
    let id = id_of(&task);
    run(
        &app,
        &app.queue_functions().await,
        std::slice::from_ref(&id),
        "the contact is added",
    )
    .await;
    let task = stored(&app, &id).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(task.result.unwrap()["contact"]["id"], "c-42");
}

#[tokio::test]
async fn a_report_should_count_only_the_owners_tasks() {
    let app = kinds_app("http://127.0.0.1:9").await;
    let parked = |title: &str| {
        json!({"kind": "notification", "title": title, "execute": false,
               "config": {"channel": "email", "message": "later"}})
    };
    for title in ["First", "Second"] {
        create(&app, parked(title), None).await;
    }
    for title in ["Theirs 1", "Theirs 2", "Theirs 3"] {
        create(&app, parked(title), Some("someone-else")).await;
    }
    let report = create(
        &app,
        json!({"kind": "report", "title": "This week", "config": {"report": "task_summary"}}),
        None,
    )
    .await;
    let id = id_of(&report);
    run(
        &app,
        &app.queue_functions().await,
        std::slice::from_ref(&id),
        "the report is made",
    )
    .await;
    let report = stored(&app, &id).await;
    assert_eq!(report.status, TaskStatus::Completed, "{:?}", report.error);
    let result = report.result.unwrap();
    assert_eq!(result["total"], 2, "{result}");
    assert_eq!(result["by_kind"], json!({"notification": 2}));
    assert_eq!(result["by_status"]["queued"], 2);
    assert_eq!(result["partial"], false);
    assert!(
        report
            .result_summary
            .as_deref()
            .unwrap()
            .contains("2 task(s): 2 queued")
    );
}

#[tokio::test]
async fn a_reminder_should_wait_for_remind_at_and_be_sent_once() {
    let server = MockServer::start().await;
    let receiver = Receiver::new(0);
    receiver.mount(&server, "/remind").await;
    let app = kinds_app(&server.uri()).await;
    let remind_at = Utc::now() + chrono::Duration::seconds(4);
    let task = create(
        &app,
        json!({"kind": "reminder", "title": "Call Ada back",
               "config": {"channel": "webhook", "url": format!("{}/remind", server.uri()),
                          "message": "Call Ada back about the renewal",
                          "remind_at": pj_core::time::rfc3339(remind_at)}}),
        None,
    )
    .await;
    assert_eq!(task["status"], "scheduled", "{task}");
    let id = id_of(&task);
    let schedule: EventBridgeEvent<Value> =
        serde_json::from_str(&event("sweeper-schedule.json")).unwrap();
    let sweeper = app.sweeper(&app.wiring("sweeper"));
    let functions = app.queue_functions().await;

    // Before remind_at: a sweep starts nothing, and nothing is on the way.
    let early = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!(early.changed, 0, "{early:?}");
    assert!(app.peek(QueueName::Dispatch).await.is_empty());
    assert_eq!(stored(&app, &id).await.status, TaskStatus::Scheduled);

    tokio::time::sleep(
        (remind_at - Utc::now())
            .to_std()
            .unwrap_or_default()
            .saturating_add(Duration::from_millis(200)),
    )
    .await;
    let due = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!(due.changed, 1, "{due:?}");
    run(
        &app,
        &functions,
        std::slice::from_ref(&id),
        "the reminder is sent",
    )
    .await;

    // A later sweep and more rounds of the queues send nothing again.
    let after = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!(after.changed, 0, "{after:?}");
    app.run_queues_for(&functions, Duration::from_secs(3)).await;

    let task = stored(&app, &id).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(task.executions.len(), 1);
    assert_eq!(task.executions[0].triggered_by, Some(Trigger::Schedule));
    let deliveries = receiver.seen();
    assert_eq!(deliveries.len(), 1, "sent once: {deliveries:?}");
    assert!(deliveries[0].verified);
    assert!(deliveries[0].at >= remind_at, "not before remind_at");
    assert_eq!(deliveries[0].body["type"], "reminder");
}

#[tokio::test]
async fn by_default_an_api_call_to_a_loopback_address_should_be_refused() {
    let target = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&target)
        .await;
    // PJ_ALLOW_PRIVATE_NETWORKS is not set.
    let app = TestApp::new().await;
    let task = create(
        &app,
        json!({"kind": "api_call", "title": "Local", "max_attempts": 3,
               "config": {"url": format!("{}/private", target.uri())}}),
        None,
    )
    .await;
    let id = id_of(&task);
    run(
        &app,
        &app.queue_functions().await,
        std::slice::from_ref(&id),
        "the call is refused",
    )
    .await;
    let task = stored(&app, &id).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.executions.len(), 1, "a refusal is not retried");
    let error = task.error.unwrap();
    assert_eq!(error.code, "invalid_config");
    assert!(error.message.contains("127.0.0.1"), "{}", error.message);
    assert!(target.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_message_whose_retry_was_lost_should_be_sent_by_the_sweep() {
    let server = MockServer::start().await;
    let receiver = Receiver::new(0);
    receiver.mount(&server, "/late").await;
    let app = kinds_app(&server.uri()).await;
    let owner = UserId::parse(SAMPLE_USER).unwrap();
    let task = TaskId::generate(Utc::now());
    // Recorded and tried once a while ago; its Deliver message never came.
    let mut message = pj_contract::message(&owner, &task, "lost", Utc::now());
    message.to = format!("{}/late", server.uri());
    message.attempts = 1;
    message.last_error = Some("the receiver answered 503".into());
    message.next_try_at = Some(Utc::now() - chrono::Duration::seconds(5));
    let messages: &dyn MessageStore = &store(&app);
    assert!(messages.insert(&message).await.unwrap());

    let schedule: EventBridgeEvent<Value> =
        serde_json::from_str(&event("sweeper-schedule.json")).unwrap();
    let sweeper = app.sweeper(&app.wiring("sweeper"));
    let report = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!(report.messages, 1, "{report:?}");
    let after = messages.get(&message.id).await.unwrap().unwrap();
    assert_eq!(after.status, MessageStatus::Sent);
    assert_eq!(after.attempts, 2);
    let deliveries = receiver.seen();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].verified);
    assert_eq!(deliveries[0].id, message.id.as_str());
    // Sent: the next sweep leaves it alone.
    let again = functions::sweep(&sweeper, &schedule).await.unwrap();
    assert_eq!(again.messages, 0, "{again:?}");
}
