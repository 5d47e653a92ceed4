//! Artifacts across the functions: a runner's signed upload through `webhook`, listed and
//! downloaded through `api` by the task's owner only, bytes in the emulator's S3.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use pj_core::TaskId;
use pj_core::signing::CallbackSecret;
use pj_lambda::Router;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{TestApp, call, http_request, signed_callback};

/// Bytes every value of which occurs, as in a screenshot: nothing of them may be read as text.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(20_000));
    bytes
}

/// A sample HTTP event moved to `method path`.
pub(crate) fn routed(sample: &str, method: &str, path: &str, route: &str) -> Value {
    let mut event: Value = serde_json::from_str(&crate::support::event(sample)).unwrap();
    event["rawPath"] = path.into();
    event["routeKey"] = format!("{method} {route}").into();
    event["requestContext"]["routeKey"] = format!("{method} {route}").into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = path.into();
    event
}

/// The runner's upload of `name` for attempt 1, signed now with `key`.
fn upload(task: &TaskId, key: &CallbackSecret, name: &str, bytes: &[u8]) -> String {
    let body = json!({
        "task_id": task.as_str(),
        "attempt": 1,
        "name": name,
        "content_base64": STANDARD.encode(bytes),
    })
    .to_string();
    let template = routed(
        "webhook-task-started.json",
        "POST",
        "/webhooks/runner/artifacts",
        "/webhooks/runner/artifacts",
    );
    signed_callback(&template.to_string(), &body, key)
}

/// `GET /tasks/{id}/artifacts{rest}` as the sample's user, or as `sub`.
pub(crate) fn owner_get(task: &TaskId, rest: &str, sub: Option<&str>) -> String {
    let route = if rest.is_empty() {
        "/tasks/{id}/artifacts"
    } else {
        "/tasks/{id}/artifacts/{name}"
    };
    let path = format!("/tasks/{task}/artifacts{rest}");
    let mut event = routed("api-get-task.json", "GET", &path, route);
    event["pathParameters"] = json!({"id": task.as_str()});
    if let Some(name) = rest.strip_prefix('/') {
        event["pathParameters"]["name"] = name.into();
    }
    if let Some(sub) = sub {
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = sub.into();
    }
    event.to_string()
}

/// The function's answer as `lambda_http::run` hands it to the Lambda runtime: the API Gateway
/// payload 2.0 response (`statusCode`, `headers`, `body`, `isBase64Encoded`).
pub(crate) async fn through_lambda_http(router: &Router, event: &str) -> Value {
    let request: LambdaRequest = serde_json::from_str(event).expect("an API Gateway v2 event");
    let response = Adapter::from(router.clone())
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the router never fails");
    serde_json::to_value(&response).expect("the response serializes")
}

#[tokio::test]
async fn an_uploaded_artifact_should_be_listed_and_served_byte_exact_to_its_owner_only() {
    let app = TestApp::new().await;
    let (id, key) = app.dispatched_task().await;
    let webhook = app.webhook(&app.wiring("webhook"));
    let api = app.api(&app.wiring("api"));

    let stored = call(
        &webhook,
        http_request(&upload(&id, &key, "a1-step-1.png", &png())),
    )
    .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.json(), json!({"status": "stored"}));
    let reply = "# The reply\n\nDone: ✓\n";
    let stored = call(
        &webhook,
        http_request(&upload(&id, &key, "a1-reply-1.md", reply.as_bytes())),
    )
    .await;
    assert_eq!(
        stored.json(),
        json!({"status": "stored"}),
        "{}",
        stored.text
    );

    // The runner's retry (a new delivery of the same upload) changes nothing.
    let retried = call(
        &webhook,
        http_request(&upload(&id, &key, "a1-step-1.png", b"other")),
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.json(), json!({"status": "duplicate"}));

    let listed = call(&api, http_request(&owner_get(&id, "", None))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(
        listed.json(),
        json!({"artifacts": [
            {"name": "a1-reply-1.md", "content_type": "text/markdown; charset=utf-8",
             "size": reply.len(), "attempt": 1},
            {"name": "a1-step-1.png", "content_type": "image/png", "size": png().len(),
             "attempt": 1},
        ]})
    );

    // Through API Gateway a binary body travels in base64, and must come back byte for byte.
    let image = through_lambda_http(&api, &owner_get(&id, "/a1-step-1.png", None)).await;
    assert_eq!(image["statusCode"], 200, "{image}");
    assert_eq!(image["headers"]["content-type"], "image/png");
    assert_eq!(image["headers"]["x-content-type-options"], "nosniff");
    assert_eq!(image["isBase64Encoded"], true);
    let body = STANDARD
        .decode(image["body"].as_str().expect("a body"))
        .expect("the body is base64");
    assert!(body == png(), "the downloaded PNG differs from the upload");
    // Text stays text.
    let text = through_lambda_http(&api, &owner_get(&id, "/a1-reply-1.md", None)).await;
    assert_eq!(text["statusCode"], 200, "{text}");
    assert_eq!(text["isBase64Encoded"], false);
    assert_eq!(text["body"], reply);

    // Another user sees neither the list nor a file; a name never stored is not found.
    for rest in ["", "/a1-step-1.png"] {
        let answer = call(
            &api,
            http_request(&owner_get(&id, rest, Some("someone-else"))),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{rest}: {}",
            answer.text
        );
        assert_eq!(answer.json()["error"]["code"], "not_found");
    }
    let missing = call(&api, http_request(&owner_get(&id, "/a1-none.png", None))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
}

#[tokio::test]
async fn an_upload_signed_with_another_key_should_store_nothing() {
    let app = TestApp::new().await;
    let (id, _key) = app.dispatched_task().await;
    let webhook = app.webhook(&app.wiring("webhook"));
    let other_key = pj_lambda::samples::dev_master_secret().derive(&id, pj_core::Attempt(2));

    let forged = call(
        &webhook,
        http_request(&upload(&id, &other_key, "a1-x.png", &png())),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{}", forged.text);

    let api = app.api(&app.wiring("api"));
    let listed = call(&api, http_request(&owner_get(&id, "", None))).await;
    assert_eq!(listed.json(), json!({"artifacts": []}), "{}", listed.text);
}
