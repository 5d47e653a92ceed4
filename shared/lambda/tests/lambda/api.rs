//! `api`: the sample API Gateway requests through the users' router, the user taken from the
//! JWT authorizer's claims.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use pj_core::TaskId;
use pj_core::ports::QueueName;
use pj_lambda::samples::{CANCEL_TASK, RUNNER_TASK, SAMPLE_EMAIL, SAMPLE_USER, retarget};
use serde_json::Value;

use crate::artifacts::{routed, through_lambda_http};
use crate::support::{TestApp, call, event, http_request, signed_sample};

#[tokio::test]
async fn create_list_get_and_cancel_from_the_sample_events() {
    let app = TestApp::new().await;
    let wiring = app.wiring("api");
    let api = app.api(&wiring);

    let created = call(&api, http_request(&event("api-create-task.json"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let body = created.json();
    assert_eq!(body["status"], "queued");
    let id = TaskId::parse(body["id"].as_str().unwrap()).unwrap();
    let stored = app.task(&id).await;
    assert_eq!(
        stored.owner.as_str(),
        SAMPLE_USER,
        "the owner is the authorizer's sub"
    );
    assert_eq!(stored.owner_email.as_deref(), Some(SAMPLE_EMAIL));
    let messages = app.peek(QueueName::Dispatch).await;
    assert_eq!(messages.len(), 1, "one dispatch message: {messages:?}");
    assert_eq!(messages[0]["type"], "dispatch");
    assert_eq!(messages[0]["task_id"], id.as_str());
    assert_eq!(
        app.metric_total("task_created"),
        1.0,
        "EMF after the stored task"
    );

    // The sample's Idempotency-Key makes a retried create return the first task.
    let again = call(&api, http_request(&event("api-create-task.json"))).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let listed = call(&api, http_request(&event("api-list-tasks.json"))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let tasks = listed.json()["tasks"].as_array().cloned().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["id"], id.as_str());

    let got = call(
        &api,
        http_request(&retarget(&event("api-get-task.json"), RUNNER_TASK, &id)),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.json()["id"], id.as_str());

    let cancel = retarget(&event("api-cancel-task.json"), CANCEL_TASK, &id);
    let cancelled = call(&api, http_request(&cancel)).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(app.metric_total("task_cancelled"), 1.0);
    let twice = call(&api, http_request(&cancel)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.text);
    assert_eq!(twice.json()["error"]["code"], "conflict");
}

#[tokio::test]
async fn when_the_authorizer_claims_are_missing_should_refuse() {
    let app = TestApp::new().await;
    let api = app.api(&app.wiring("api"));
    let mut request: Value = serde_json::from_str(&event("api-list-tasks.json")).unwrap();
    request["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let answer = call(&api, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    assert_eq!(answer.json()["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn another_users_task_should_be_not_found() {
    let app = TestApp::new().await;
    let api = app.api(&app.wiring("api"));
    let created = call(&api, http_request(&event("api-create-task.json"))).await;
    let id = TaskId::parse(created.json()["id"].as_str().unwrap()).unwrap();
    let mut request: Value =
        serde_json::from_str(&retarget(&event("api-get-task.json"), RUNNER_TASK, &id)).unwrap();
    request["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "someone-else".into();
    let answer = call(&api, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    assert_eq!(answer.json()["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_health_check_needs_no_claims() {
    let app = TestApp::new().await;
    let answer = call(
        &app.api(&app.wiring("api")),
        http_request(&event("api-healthz.json")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["status"], "ok");
}

#[tokio::test]
async fn the_api_function_should_serve_the_whole_description_without_a_token() {
    let app = TestApp::new().await;
    let answer = call(
        &app.api(&app.wiring("api")),
        http_request(&event("api-openapi.json")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let doc = answer.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    // The routes of the other functions too: one description of the whole API.
    for path in [
        "/tasks",
        "/webhooks/runner",
        "/webhooks/runner/logs",
        "/tasks/{id}/logs/stream",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is described");
    }
}

#[tokio::test]
async fn the_web_page_needs_no_claims_and_names_the_log_stream() {
    let app = TestApp::new().await;
    let stream = "https://abc123.lambda-url.eu-west-1.on.aws/";
    let page = pj_lambda::PageConfig::with_log_stream_url(stream).expect("a Function URL");
    let router = app.api_with_page(&app.wiring("api"), page);
    let request = routed("api-healthz.json", "GET", "/", "/");
    let answer = call(&router, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        answer.text.contains(&format!(
            r#"<meta name="pj-log-stream-url" content="{stream}">"#
        )),
        "{}",
        answer.text
    );
    let csp = answer.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("connect-src 'self' https://abc123.lambda-url.eu-west-1.on.aws;"),
        "{csp}"
    );
}

#[tokio::test]
async fn the_web_page_reaches_api_gateway_gzipped_as_a_base64_body() {
    let app = TestApp::new().await;
    let router = app.api(&app.wiring("api"));
    let mut request = routed("api-healthz.json", "GET", "/app.js", "/app.js");
    request["headers"]["accept-encoding"] = "gzip, deflate, br, zstd".into();
    let response = through_lambda_http(&router, &request.to_string()).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["headers"]["content-encoding"], "gzip");
    // A body with a Content-Encoding is binary, which Lambda hands to API Gateway
    // base64-encoded; as text, the gzip bytes would be mangled.
    assert_eq!(response["isBase64Encoded"], true);
    let body = STANDARD
        .decode(response["body"].as_str().expect("a body"))
        .expect("the body is base64");
    assert!(body.starts_with(&[0x1f, 0x8b]), "a gzip stream");
}

#[tokio::test]
async fn each_http_function_should_answer_only_its_routes() {
    let app = TestApp::new().await;
    let wiring = app.wiring("any");
    let runner_event = signed_sample(&event("webhook-task-started.json"));
    let user_request = event("api-list-tasks.json");
    let stream_request = event("log-stream-request.json");
    let cases = [
        ("api", app.api(&wiring), runner_event.clone()),
        ("api", app.api(&wiring), stream_request.clone()),
        ("webhook", app.webhook(&wiring), user_request.clone()),
        ("log-ingest", app.log_ingest(&wiring), runner_event.clone()),
        ("log-ingest", app.log_ingest(&wiring), user_request.clone()),
    ];
    for (function, router, request) in cases {
        let answer = call(&router, http_request(&request)).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{function}: {}",
            answer.text
        );
        assert_eq!(answer.json()["error"]["code"], "not_found");
    }
}
