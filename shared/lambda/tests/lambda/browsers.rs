//! The browser kinds on AWS: `api` accepts them only with a Browserbase project, `tasks` runs
//! them through Browserbase with the key of the deployment's secret, and their screenshots go
//! to the artifacts' bucket, listed and served by `api` to the task's owner only. Browserbase
//! is wiremock built from its documented shapes, whose `connectUrl` is the DevTools websocket
//! of a local headless Chromium (Debian's `chromium`; `PJ_CHROMIUM` names another); the pages
//! are local (wiremock), which `PJ_ALLOW_PRIVATE_NETWORKS=true` lets the browser open; the
//! model of the plain-words step is wiremock in OpenAI's shape.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use pj_core::{TaskId, TaskStatus};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::artifacts::{owner_get, through_lambda_http};
use crate::kinds::{all_settled, create, create_answer, id_of, stored};
use crate::support::{TestApp, call, http_request};

const BB_KEY: &str = "bb_live_test_key_0123456789";
const BB_PROJECT: &str = "proj-aws-1";
const OPENAI_KEY: &str = "sk-test-aws-browser-0123456789";

const FORM: &str = r#"<!doctype html><title>Sign up</title>
<form action="/welcome" method="get">
  <label>Email <input id="email" name="email"></label>
  <button type="submit">Sign up</button>
</form>"#;

const WELCOME: &str = r#"<!doctype html><title>Welcome</title>
<h1>Welcome aboard</h1><p id="who">signed up</p>"#;

const BOOKS: &str = r#"<!doctype html><title>Books</title>
<h1>Books</h1>
<table><tr><th>Title</th><th>Price</th></tr>
<tr><td class="title"><a href="/dune">Dune</a></td><td class="price">9.99</td></tr>
<tr><td class="title"><a href="/emma">Emma</a></td><td class="price">4.50</td></tr></table>"#;

async fn site() -> MockServer {
    let site = MockServer::start().await;
    for (at, html) in [("/form", FORM), ("/welcome", WELCOME), ("/books", BOOKS)] {
        Mock::given(method("GET"))
            .and(path(at))
            .respond_with(ResponseTemplate::new(200).set_body_raw(html, "text/html; charset=utf-8"))
            .mount(&site)
            .await;
    }
    site
}

/// A model that answers the titles an extraction asks for, only with the secret's key.
async fn model() -> MockServer {
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header(
            "authorization",
            format!("Bearer {OPENAI_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
            "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "[\"Dune\", \"Emma\"]"}}],
            "usage": {"prompt_tokens": 800, "completion_tokens": 12, "total_tokens": 812}
        })))
        .mount(&model)
        .await;
    model
}

/// Browserbase, whose sessions `ids` (one per create, in order) all connect to `ws_url`.
async fn browserbase(ws_url: &str, ids: &[&str]) -> MockServer {
    let browserbase = MockServer::start().await;
    for (n, id) in ids.iter().enumerate() {
        Mock::given(method("POST"))
            .and(path("/v1/sessions"))
            .and(header("x-bb-api-key", BB_KEY))
            .and(body_json(json!({"projectId": BB_PROJECT})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "id": id, "connectUrl": ws_url, "status": "RUNNING"})))
            .up_to_n_times(1)
            .with_priority(u8::try_from(n + 1).unwrap())
            .expect(1)
            .mount(&browserbase)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/sessions/{id}/debug")))
            .and(header("x-bb-api-key", BB_KEY))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "debuggerFullscreenUrl": format!("https://www.browserbase.com/devtools-fullscreen/{id}")})))
            .mount(&browserbase)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/sessions/{id}")))
            .and(header("x-bb-api-key", BB_KEY))
            .and(body_json(
                json!({"projectId": BB_PROJECT, "status": "REQUEST_RELEASE"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": id})))
            .expect(1)
            .mount(&browserbase)
            .await;
    }
    browserbase
}

/// Whether Browserbase was asked to release `id`.
async fn released(browserbase: &MockServer, id: &str) -> bool {
    let at = format!("/v1/sessions/{id}");
    browserbase
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| r.method.as_str() == "POST" && r.url.path() == at)
}

/// Runs the queue functions until `id` has ended and its notices are done.
async fn run_to_the_end(app: &TestApp, id: &TaskId, what: &str) {
    let functions = app.queue_functions().await;
    app.run_queues_until(&functions, Duration::from_secs(90), what, || {
        all_settled(app, std::slice::from_ref(id))
    })
    .await;
}

/// The width and height of a PNG, after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (at(16), at(20))
}

#[tokio::test]
async fn browser_tasks_should_run_through_browserbase_with_their_screenshots_in_s3() {
    let chromium = pj_browser::Chromium::locate(None).expect(
        "Chromium is installed (scripts/test installs Debian's chromium, or set PJ_CHROMIUM)",
    );
    let (remote, ws_url) = pj_browser::ChromiumProcess::start(&chromium, Duration::from_secs(20))
        .await
        .expect("a Chromium with a DevTools websocket");
    let (site, model) = (site().await, model().await);
    let browserbase = browserbase(&ws_url, &["sess-extract", "sess-form"]).await;
    let model_url = format!("{}/v1", model.uri());
    let app = TestApp::with(
        &[
            ("PJ_ALLOW_PRIVATE_NETWORKS", "true"),
            ("BROWSERBASE_PROJECT_ID", BB_PROJECT),
            ("BROWSERBASE_API_URL", &browserbase.uri()),
            ("OPENAI_BASE_URL", &model_url),
            ("PJ_DEFAULT_MODEL", "openai/gpt-4.1-mini"),
        ],
        &[
            ("browserbase_api_key", BB_KEY),
            ("openai_api_key", OPENAI_KEY),
        ],
    )
    .await;

    // A data extraction: by fields, one value and a list.
    let extraction = id_of(
        &create(
            &app,
            json!({"kind": "data_extraction", "title": "Books", "config": {
                "url": format!("{}/books", site.uri()),
                "fields": {"heading": "h1", "titles": "td.title a", "links": "td.title a@href"}}}),
            None,
        )
        .await,
    );
    run_to_the_end(&app, &extraction, "the extraction ends").await;
    let done = stored(&app, &extraction).await;
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    let result = done.result.clone().expect("a result");
    assert_eq!(
        result["data"],
        json!({"heading": "Books", "titles": ["Dune", "Emma"], "links": ["/dune", "/emma"]}),
        "{result}"
    );
    assert_eq!(result["session_id"], "sess-extract");
    assert_eq!(
        result["debug_url"],
        "https://www.browserbase.com/devtools-fullscreen/sess-extract"
    );
    assert!(
        released(&browserbase, "sess-extract").await,
        "the session is released"
    );

    // A browser automation: a form, its next page, a plain-words extraction, a screenshot.
    let automation = id_of(
        &create(
            &app,
            json!({"kind": "browser_automation", "title": "Sign up", "config": {
            "start_url": format!("{}/form", site.uri()),
            "steps": [
                {"action": "type", "selector": "#email", "text": "ada@example.com"},
                {"action": "click", "selector": "button[type=submit]"},
                {"action": "wait", "selector": "#who"},
                {"action": "extract", "selector": "h1"},
                {"action": "navigate", "url": format!("{}/books", site.uri())},
                {"action": "extract", "instruction": "the titles of the books",
                 "schema": {"type": "array", "items": {"type": "string"}}},
                {"action": "screenshot", "full_page": true},
            ]}}),
            None,
        )
        .await,
    );
    run_to_the_end(&app, &automation, "the automation ends").await;
    let done = stored(&app, &automation).await;
    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    let result = done.result.clone().expect("a result");
    assert_eq!(
        result["extracted"],
        json!({"step_4": "Welcome aboard", "step_6": ["Dune", "Emma"]}),
        "{result}"
    );
    assert_eq!(result["screenshots"], json!(["a1-step-7.png"]));
    assert_eq!(result["session_id"], "sess-form");
    let steps = result["steps"].as_array().expect("the steps");
    assert_eq!(steps.len(), 7, "{result}");
    assert!(steps.iter().all(|s| s["ok"] == true), "{result}");
    assert!(
        released(&browserbase, "sess-form").await,
        "the session is released"
    );

    // The screenshot: listed, and served byte for byte (as in the bucket) to the owner only.
    let api = app.api(&app.wiring("api"));
    let listed = call(&api, http_request(&owner_get(&automation, "", None))).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let artifacts = listed.json()["artifacts"].clone();
    assert_eq!(artifacts.as_array().map(Vec::len), Some(1), "{artifacts}");
    assert_eq!(artifacts[0]["name"], "a1-step-7.png");
    assert_eq!(artifacts[0]["content_type"], "image/png");
    assert_eq!(artifacts[0]["attempt"], 1);
    let image = through_lambda_http(&api, &owner_get(&automation, "/a1-step-7.png", None)).await;
    assert_eq!(image["statusCode"], 200, "{image}");
    assert_eq!(image["headers"]["content-type"], "image/png");
    let body = STANDARD
        .decode(image["body"].as_str().expect("a body"))
        .expect("the body is base64");
    let (width, height) = png_size(&body);
    assert!(width > 0 && height > 0, "{width}x{height}");
    assert_eq!(artifacts[0]["size"], body.len());
    let object = app
        .aws
        .s3()
        .get_object()
        .bucket(&app.artifacts_bucket)
        .key(format!("{automation}/a1-step-7.png"))
        .send()
        .await
        .expect("the screenshot is in the bucket")
        .body
        .collect()
        .await
        .expect("its bytes are read")
        .to_vec();
    assert!(object == body, "the download differs from the object");
    for rest in ["", "/a1-step-7.png"] {
        let answer = call(
            &api,
            http_request(&owner_get(&automation, rest, Some("someone-else"))),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{rest}: {}",
            answer.text
        );
    }

    // Neither key reaches the task, its log or its result.
    let shown = serde_json::to_string(&stored(&app, &automation).await).unwrap();
    assert!(!shown.contains(BB_KEY) && !shown.contains(OPENAI_KEY));
    drop(remote);
}

#[tokio::test]
async fn without_a_browserbase_project_browser_tasks_should_be_refused_at_create() {
    let app = TestApp::with(&[("PJ_ALLOW_PRIVATE_NETWORKS", "true")], &[]).await;
    for body in [
        json!({"kind": "data_extraction", "title": "Books", "config": {
            "url": "https://example.com/books", "fields": {"heading": "h1"}}}),
        json!({"kind": "browser_automation", "title": "Look", "config": {
            "start_url": "https://example.com/", "steps": [{"action": "screenshot"}]}}),
    ] {
        let answer = create_answer(&app, body, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        let error: Value = answer.json()["error"].clone();
        assert_eq!(error["code"], "validation_failed", "{error}");
        assert!(
            error.to_string().contains("config.browser"),
            "the error names config.browser: {error}"
        );
    }
    // The tasks function starts all the same: it runs the other kinds.
    app.tasks(&app.wiring("tasks")).await;
}

#[tokio::test]
async fn a_browserbase_project_without_its_key_should_stop_the_tasks_function_naming_the_key() {
    let app = TestApp::with(&[("BROWSERBASE_PROJECT_ID", BB_PROJECT)], &[]).await;
    let wiring = app.wiring("tasks");
    let err = pj_lambda::functions::tasks(
        &wiring,
        app.queues.urls.clone(),
        wiring.secrets(&app.secret_id),
        &app.email_from,
        &app.artifacts_bucket,
    )
    .await
    .err()
    .expect("the function does not start");
    assert!(
        err.to_string().starts_with("browserbase_api_key:"),
        "{err:#}"
    );
}
