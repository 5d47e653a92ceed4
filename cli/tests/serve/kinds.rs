//! The built-in kinds end to end in `pj serve`, against local fakes: a target API (wiremock),
//! GoHighLevel (wiremock at `GHL_API_URL`), a webhook receiver verifying with the official
//! Standard Webhooks library and a real SMTP server (both Python, see `python.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::python::PyFake;
use crate::support::{ALICE, BOB, Server};

/// Local fakes are on loopback: the tests that call them let the server reach it.
const PRIVATE_OK: (&str, &str) = ("PJ_ALLOW_PRIVATE_NETWORKS", "true");

fn id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_owned()
}

fn api_call(title: &str, config: Value) -> Value {
    json!({"kind": "api_call", "title": title, "config": config})
}

/// Waits until the task is `completed` or `failed`.
async fn finished(server: &Server, token: &str, task: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let t = server.task(token, task).await;
        if t["status"] == "completed" || t["status"] == "failed" {
            return t;
        }
        if Instant::now() > deadline {
            panic!("the task never finished: {t}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn executions(server: &Server, token: &str, task: &str) -> Vec<Value> {
    let (status, body) = server
        .call(
            "GET",
            &format!("/tasks/{task}/executions"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["executions"].as_array().cloned().unwrap_or_default()
}

async fn messages(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = server
        .call("GET", &format!("/messages{query}"), Some(token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().cloned().unwrap_or_default()
}

/// Waits until the task's messages all reached `status`, failing after `secs`.
async fn messages_of(
    server: &Server,
    token: &str,
    task: &str,
    n: usize,
    status: &str,
    secs: u64,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let found = messages(server, token, &format!("?task_id={task}")).await;
        if found.len() == n && found.iter().all(|m| m["status"] == status) {
            return found;
        }
        if Instant::now() > deadline {
            panic!("the task's messages never were {n} {status}: {found:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The arrival time of every request a responder answered.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

fn arrivals() -> Arrivals {
    Arc::new(Mutex::new(Vec::new()))
}

/// Records the request's arrival and answers `first` to the first one, `then` to the others.
fn first_then(
    seen: &Arrivals,
    first: ResponseTemplate,
    then: ResponseTemplate,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    let seen = seen.clone();
    move |_: &Request| {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(Instant::now());
        if seen.len() == 1 {
            first.clone()
        } else {
            then.clone()
        }
    }
}

// ---- api_call against a target API -----------------------------------------------------

#[tokio::test]
async fn an_api_call_that_gets_a_2xx_completes_with_the_answer_as_its_result() {
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(header("x-trace", "t-1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"sku": "A-1", "qty": 2})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 42, "ok": true})))
        .expect(1)
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let task = server
        .create(
            ALICE,
            api_call(
                "Place an order",
                json!({"url": format!("{}/orders", target.uri()), "method": "POST",
                       "headers": {"X-Trace": "t-1"}, "body": {"sku": "A-1", "qty": 2}}),
            ),
        )
        .await;
    assert_eq!(task["kind"], "api_call");
    let done = server.wait_for(ALICE, &id(&task), "completed", 30).await;
    assert_eq!(done["result"]["status"], 201);
    assert_eq!(done["result"]["body"], json!({"id": 42, "ok": true}));
    assert_eq!(done["result"]["content_type"], "application/json");
    assert!(done["result"]["duration_ms"].is_u64(), "{done}");
    let summary = done["result_summary"].as_str().expect("a summary");
    assert!(
        summary.contains("POST") && summary.contains("201"),
        "{summary}"
    );

    let execs = executions(&server, ALICE, &id(&task)).await;
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0]["status"], "completed");
    assert_eq!(execs[0]["runner"], "builtin");
    assert_eq!(execs[0]["triggered_by"], "create");
    assert_eq!(execs[0]["result"], done["result"]);
    assert!(execs[0]["duration_ms"].is_u64(), "{}", execs[0]);
    assert_eq!(execs[0]["steps"][0]["action"], "request");
    assert_eq!(execs[0]["steps"][0]["ok"], true);
    let lines = server.logs(ALICE, &id(&task)).await;
    let text: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    assert!(
        text.iter()
            .any(|l| l.contains("POST") && l.contains("/orders")),
        "{text:?}"
    );
    assert!(text.iter().any(|l| l.contains("201")), "{text:?}");
}

#[tokio::test]
async fn an_api_call_that_gets_a_404_fails_with_http_error_at_once() {
    let target = MockServer::start().await;
    Mock::given(path("/missing"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no such thing"))
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let task = server
        .create(
            ALICE,
            json!({"kind": "api_call", "title": "A missing page", "max_attempts": 3,
                   "config": {"url": format!("{}/missing", target.uri())}}),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 30).await;
    assert_eq!(done["error"]["code"], "http_error", "{done}");
    assert_eq!(done["result"]["status"], 404);
    assert_eq!(done["result"]["body"], "no such thing");
    // Give an automatic retry, were there one, the time to show.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(executions(&server, ALICE, &id(&task)).await.len(), 1);
    assert_eq!(
        target.received_requests().await.unwrap_or_default().len(),
        1
    );
}

#[tokio::test]
async fn an_api_call_that_gets_a_503_then_a_200_completes_on_its_automatic_retry() {
    let target = MockServer::start().await;
    let seen = arrivals();
    Mock::given(path("/flaky"))
        .respond_with(first_then(
            &seen,
            ResponseTemplate::new(503),
            ResponseTemplate::new(200).set_body_json(json!({"second": true})),
        ))
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let task = server
        .create(
            ALICE,
            api_call("Flaky", json!({"url": format!("{}/flaky", target.uri())})),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&task), "completed", 40).await;
    assert_eq!(done["attempt"], 2);
    assert_eq!(done["result"]["body"], json!({"second": true}));
    let execs = executions(&server, ALICE, &id(&task)).await;
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert_eq!(execs[0]["status"], "failed");
    assert_eq!(execs[0]["error"]["code"], "http_error");
    // One full result per task: the earlier attempt keeps its summary.
    let first = execs[0]["result_summary"].as_str().unwrap_or_default();
    assert!(first.contains("503"), "{first}");
    assert_eq!(execs[1]["status"], "completed");
    assert_eq!(execs[1]["triggered_by"], "automatic_retry");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_429_with_retry_after_is_tried_again_no_sooner_than_it_says() {
    let target = MockServer::start().await;
    let seen = arrivals();
    Mock::given(path("/limited"))
        .respond_with(first_then(
            &seen,
            ResponseTemplate::new(429).insert_header("Retry-After", "2"),
            ResponseTemplate::new(200).set_body_json(json!({"ok": true})),
        ))
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let task = server
        .create(
            ALICE,
            api_call(
                "Rate limited",
                json!({"url": format!("{}/limited", target.uri())}),
            ),
        )
        .await;
    server.wait_for(ALICE, &id(&task), "completed", 40).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let gap = seen[1] - seen[0];
    assert!(
        gap >= Duration::from_secs(2),
        "the second request came {gap:?} after the first, sooner than Retry-After"
    );
    let execs = executions(&server, ALICE, &id(&task)).await;
    assert_eq!(execs[0]["error"]["code"], "http_error");
    assert_eq!(execs[1]["triggered_by"], "automatic_retry");
}

#[tokio::test]
async fn a_slow_endpoint_times_out_and_is_tried_up_to_max_attempts() {
    let target = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(4)))
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let task = server
        .create(
            ALICE,
            json!({"kind": "api_call", "title": "Slow", "max_attempts": 3,
                   "config": {"url": format!("{}/slow", target.uri()), "timeout_secs": 1}}),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 60).await;
    assert_eq!(done["error"]["code"], "timeout", "{done}");
    assert_eq!(done["attempt"], 3);
    let execs = executions(&server, ALICE, &id(&task)).await;
    assert_eq!(execs.len(), 3, "{execs:?}");
    for (i, e) in execs.iter().enumerate() {
        assert_eq!(e["error"]["code"], "timeout", "{e}");
        let ms = e["duration_ms"].as_u64().expect("a duration");
        assert!(ms < 3_000, "attempt {i} waited {ms} ms for a 1 s timeout");
    }
    assert_eq!(execs[1]["triggered_by"], "automatic_retry");
    assert_eq!(execs[2]["triggered_by"], "automatic_retry");
    assert_eq!(
        target.received_requests().await.unwrap_or_default().len(),
        3
    );
}

// ---- credentials -----------------------------------------------------------------------

const BEARER: &str = "tok-sekrit-4f1a9b2c";
const API_KEY: &str = "apikey-sekrit-77b2e0";
const PASSWORD: &str = "pw-sekrit-9c3d11";
const HEADER_TOKEN: &str = "hdr-sekrit-x1y2z3";

/// Every form a credential of these tasks could take when it leaks.
fn secret_forms() -> Vec<String> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ops:{PASSWORD}"));
    vec![
        BEARER.into(),
        API_KEY.into(),
        PASSWORD.into(),
        HEADER_TOKEN.into(),
        basic,
    ]
}

fn leaks(text: &str) -> Vec<String> {
    secret_forms()
        .into_iter()
        .filter(|s| text.contains(s.as_str()))
        .collect()
}

#[tokio::test]
async fn credentials_are_used_masked_in_every_route_and_never_stored_in_clear() {
    let target = MockServer::start().await;
    // A target that echoes the credentials it got back in its answer.
    Mock::given(path("/echo"))
        .respond_with(|req: &Request| {
            let get = |name: &str| {
                req.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            ResponseTemplate::new(200).set_body_json(json!({
                "authorization": get("authorization"),
                "x-api-key": get("x-api-key"),
                "x-session-token": get("x-session-token"),
            }))
        })
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let url = format!("{}/echo", target.uri());
    let configs = [
        json!({"url": url, "auth": {"type": "bearer", "token": BEARER},
               "headers": {"X-Session-Token": HEADER_TOKEN}}),
        json!({"url": url, "auth": {"type": "api_key", "header": "X-Api-Key", "value": API_KEY}}),
        json!({"url": url, "auth": {"type": "basic", "username": "ops", "password": PASSWORD}}),
    ];
    let mut ids = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        let created = server
            .create(ALICE, api_call(&format!("Credentials {i}"), config))
            .await;
        assert!(leaks(&created.to_string()).is_empty(), "{created}");
        ids.push(id(&created));
    }
    for task in &ids {
        server.wait_for(ALICE, task, "completed", 30).await;
        messages_of(&server, ALICE, task, 1, "sent", 30).await;
    }

    // The target got the real credentials (the password inside Basic's base64).
    let got: Vec<String> = target
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .flat_map(|r| {
            r.headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .collect();
    let got = got.join("\n");
    for form in secret_forms().iter().filter(|f| f.as_str() != PASSWORD) {
        assert!(
            got.contains(form.as_str()),
            "the target never got {form}: {got}"
        );
    }

    // Every route shows them masked.
    let task = server.task(ALICE, &ids[0]).await;
    assert_eq!(task["config"]["auth"]["token"], "***");
    assert_eq!(task["config"]["headers"]["X-Session-Token"], "***");
    assert_eq!(
        server.task(ALICE, &ids[1]).await["config"]["auth"]["value"],
        "***"
    );
    assert_eq!(
        server.task(ALICE, &ids[2]).await["config"]["auth"]["password"],
        "***"
    );
    let mut shown = String::new();
    for task in &ids {
        for route in [
            format!("/tasks/{task}"),
            format!("/tasks/{task}/executions"),
            format!("/tasks/{task}/logs?limit=1000"),
            format!("/messages?task_id={task}"),
        ] {
            let (status, body) = server.call("GET", &route, Some(ALICE), None).await;
            assert_eq!(status, 200, "{route}: {body}");
            shown.push_str(&body.to_string());
        }
    }
    let (_, list) = server
        .call("GET", "/tasks?limit=100", Some(ALICE), None)
        .await;
    shown.push_str(&list.to_string());
    let (_, all) = server
        .call("GET", "/messages?limit=100", Some(ALICE), None)
        .await;
    shown.push_str(&all.to_string());
    assert!(shown.contains("***"));
    assert_eq!(
        leaks(&shown),
        Vec::<String>::new(),
        "a route shows a credential"
    );

    // Nor at rest: the database (with its write-ahead log), the outbox, the server's log.
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).expect("the data dir") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            at_rest.push(path);
        }
    }
    for entry in std::fs::read_dir(server.data_dir.join("outbox")).expect("the outbox") {
        at_rest.push(entry.expect("an entry").path());
    }
    at_rest.push(server.data_dir.with_extension("server.log"));
    assert!(
        at_rest
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == "pj.db")),
        "{at_rest:?}"
    );
    for path in at_rest {
        let bytes = std::fs::read(&path).expect("readable");
        for form in secret_forms() {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                "{} holds {form}",
                path.display()
            );
        }
    }
}

// ---- the address guard -----------------------------------------------------------------

#[tokio::test]
async fn by_default_an_api_call_to_a_private_address_is_refused_before_anything_is_sent() {
    let target = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    let port = target.address().port();
    // No PJ_ALLOW_PRIVATE_NETWORKS: the default.
    let server = Server::start(&[]).await;
    let urls = [
        format!("http://127.0.0.1:{port}/in"),
        "http://10.0.0.1/in".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        // A name that resolves to 127.0.0.1.
        format!("http://localhost:{port}/in"),
    ];
    let mut ids = Vec::new();
    for url in &urls {
        let task = server
            .create(
                ALICE,
                json!({"kind": "api_call", "title": "Look inside", "max_attempts": 3,
                       "config": {"url": url, "timeout_secs": 2}}),
            )
            .await;
        ids.push(id(&task));
    }
    for (task, url) in ids.iter().zip(&urls) {
        let done = server.wait_for(ALICE, task, "failed", 30).await;
        assert_eq!(done["error"]["code"], "invalid_config", "{url}: {done}");
        let message = done["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("refused"), "{url}: {message}");
        assert_eq!(
            executions(&server, ALICE, task).await.len(),
            1,
            "{url}: a refusal is final"
        );
    }
    assert!(
        target
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "the local target got a request"
    );
}

// ---- GoHighLevel -----------------------------------------------------------------------

const GHL_KEY: &str = "pit-ghl-test-key-0001";

fn ghl(action: Value) -> Value {
    json!({"kind": "ghl_action", "title": "GoHighLevel", "config": action})
}

/// A GoHighLevel route that answers only a request with the key, the version and this body.
async fn ghl_route(ghl: &MockServer, verb: &str, route: &str, body: Value, answer: Value) {
    Mock::given(method(verb))
        .and(path(route))
        .and(header(
            "authorization",
            format!("Bearer {GHL_KEY}").as_str(),
        ))
        .and(header("version", "2021-07-28"))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(ghl)
        .await;
}

#[tokio::test]
async fn each_gohighlevel_action_calls_its_route_with_the_key_the_version_and_camel_case() {
    let ghl_api = MockServer::start().await;
    ghl_route(
        &ghl_api,
        "POST",
        "/contacts/",
        json!({"locationId": "loc-test-1", "firstName": "Ada", "lastName": "Lovelace",
               "email": "ada@example.com", "phone": "+1 555 0100 200", "tags": ["vip", "new"]}),
        json!({"contact": {"id": "c-new"}}),
    )
    .await;
    ghl_route(
        &ghl_api,
        "PUT",
        "/contacts/c-1",
        json!({"firstName": "Grace", "tags": ["returning"]}),
        json!({"contact": {"id": "c-1"}, "succeded": true}),
    )
    .await;
    ghl_route(
        &ghl_api,
        "POST",
        "/contacts/c-2/tags",
        json!({"tags": ["hot-lead"]}),
        json!({"tags": ["hot-lead"]}),
    )
    .await;
    ghl_route(
        &ghl_api,
        "POST",
        "/conversations/messages",
        json!({"type": "SMS", "contactId": "c-3", "message": "Your order shipped"}),
        json!({"conversationId": "conv-1", "messageId": "m-1"}),
    )
    .await;
    ghl_route(
        &ghl_api,
        "POST",
        "/opportunities/",
        json!({"locationId": "loc-other", "pipelineId": "p-1", "pipelineStageId": "s-1",
               "name": "Big deal", "status": "open", "contactId": "c-4", "monetaryValue": 1250.5}),
        json!({"opportunity": {"id": "o-1"}}),
    )
    .await;
    // GoHighLevel is the operator's service: reached wherever GHL_API_URL points, without
    // PJ_ALLOW_PRIVATE_NETWORKS.
    let server = Server::start(&[
        ("GHL_API_URL", ghl_api.uri().as_str()),
        ("GHL_API_KEY", GHL_KEY),
        ("GHL_LOCATION_ID", "loc-test-1"),
    ])
    .await;
    let actions = [
        (
            json!({"action": "add_contact", "first_name": "Ada", "last_name": "Lovelace",
                   "email": "ada@example.com", "phone": "+1 555 0100 200", "tags": ["vip", "new"]}),
            json!({"contact": {"id": "c-new"}}),
        ),
        (
            json!({"action": "update_contact", "contact_id": "c-1", "first_name": "Grace",
                   "tags": ["returning"]}),
            json!({"contact": {"id": "c-1"}, "succeded": true}),
        ),
        (
            json!({"action": "add_tag", "contact_id": "c-2", "tags": ["hot-lead"]}),
            json!({"tags": ["hot-lead"]}),
        ),
        (
            json!({"action": "send_sms", "contact_id": "c-3", "message": "Your order shipped"}),
            json!({"conversationId": "conv-1", "messageId": "m-1"}),
        ),
        (
            json!({"action": "create_opportunity", "pipeline_id": "p-1", "stage_id": "s-1",
                   "name": "Big deal", "contact_id": "c-4", "monetary_value": 1250.5,
                   "location_id": "loc-other"}),
            json!({"opportunity": {"id": "o-1"}}),
        ),
    ];
    let mut made = Vec::new();
    for (config, answer) in actions {
        let task = server.create(ALICE, ghl(config.clone())).await;
        made.push((id(&task), config, answer));
    }
    for (task, config, answer) in made {
        let done = finished(&server, ALICE, &task, 30).await;
        assert_eq!(done["status"], "completed", "{config}: {done}");
        assert_eq!(done["result"], answer, "{config}");
        let summary = done["result_summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains(config["action"].as_str().unwrap_or_default()),
            "{summary}"
        );
    }
    ghl_api.verify().await;
    let shown = server
        .call("GET", "/tasks?limit=100", Some(ALICE), None)
        .await
        .1;
    assert!(!shown.to_string().contains(GHL_KEY));
}

#[tokio::test]
async fn a_gohighlevel_429_is_retried_after_its_retry_after_and_sms_notifications_go_through_it() {
    let ghl_api = MockServer::start().await;
    let seen = arrivals();
    Mock::given(method("POST"))
        .and(path("/contacts/c-busy/tags"))
        .and(header(
            "authorization",
            format!("Bearer {GHL_KEY}").as_str(),
        ))
        .respond_with(first_then(
            &seen,
            ResponseTemplate::new(429).insert_header("Retry-After", "2"),
            ResponseTemplate::new(200).set_body_json(json!({"tags": ["later"]})),
        ))
        .mount(&ghl_api)
        .await;
    ghl_route(
        &ghl_api,
        "POST",
        "/conversations/messages",
        json!({"type": "SMS", "contactId": "c-sms", "message": "Your table is ready"}),
        json!({"conversationId": "conv-2", "messageId": "m-2"}),
    )
    .await;
    let server = Server::start(&[
        ("GHL_API_URL", ghl_api.uri().as_str()),
        ("GHL_API_KEY", GHL_KEY),
    ])
    .await;
    let tag = server
        .create(
            ALICE,
            ghl(json!({"action": "add_tag", "contact_id": "c-busy", "tags": ["later"]})),
        )
        .await;
    let sms = server
        .create(
            ALICE,
            json!({"kind": "notification", "title": "Table ready",
                   "config": {"channel": "sms", "contact_id": "c-sms",
                              "message": "Your table is ready"}}),
        )
        .await;

    let done = server.wait_for(ALICE, &id(&tag), "completed", 40).await;
    assert_eq!(done["result"], json!({"tags": ["later"]}));
    let execs = executions(&server, ALICE, &id(&tag)).await;
    assert_eq!(execs.len(), 2);
    assert_eq!(execs[0]["error"]["code"], "http_error");
    assert_eq!(execs[1]["triggered_by"], "automatic_retry");
    let seen = seen.lock().unwrap().clone();
    assert!(seen[1] - seen[0] >= Duration::from_secs(2), "{seen:?}");

    let done = server.wait_for(ALICE, &id(&sms), "completed", 30).await;
    assert_eq!(done["result"]["channel"], "sms");
    assert_eq!(done["result"]["status"], "sent");
    let found = messages(&server, ALICE, &format!("?task_id={}", id(&sms))).await;
    let text = found
        .iter()
        .find(|m| m["channel"] == "sms")
        .expect("the SMS");
    assert_eq!(text["to"], "c-sms");
    assert_eq!(text["status"], "sent");
    assert_eq!(text["attempts"], 1);
    ghl_api.verify().await;
}

// ---- webhooks, signed and retried ------------------------------------------------------

fn outbound_secret(server: &Server) -> String {
    std::fs::read_to_string(server.data_dir.join("outbound-secret"))
        .expect("pj serve keeps its outbound secret in the data dir")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_webhook_notification_is_signed_retried_with_the_same_id_and_ends_sent() {
    let server = Server::start(&[PRIVATE_OK, ("PJ_MESSAGE_RETRY_SECS", "1")]).await;
    let secret = outbound_secret(&server);
    assert!(secret.starts_with("whsec_"), "a Standard Webhooks secret");
    assert!(
        !server.banner().await.contains(&secret),
        "the banner shows no secret"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir.join("outbound-secret"))
            .expect("the secret file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads it");
    }
    let receiver = PyFake::webhook_receiver(&secret, 1);
    let task = server
        .create(
            ALICE,
            json!({"kind": "notification", "title": "Deploy finished",
                   "config": {"channel": "webhook", "url": receiver.url("/hooks/pj"),
                              "message": "v2 is live"}}),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&task), "completed", 30).await;
    let message_id = done["result"]["message_id"]
        .as_str()
        .expect("its message")
        .to_owned();
    let found = messages_of(&server, ALICE, &id(&task), 2, "sent", 30).await;
    let sent = found
        .iter()
        .find(|m| m["id"] == message_id.as_str())
        .expect("the notification's message");
    assert_eq!(sent["channel"], "webhook");
    assert_eq!(sent["attempts"], 2);
    assert!(sent["sent_at"].is_string());

    let got = receiver.wait_for(2, 10).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for (i, delivery) in got.iter().enumerate() {
        assert_eq!(delivery["verified"], true, "delivery {i}: {delivery}");
        assert_eq!(delivery["webhook_id"], message_id.as_str(), "delivery {i}");
        assert_eq!(delivery["path"], "/hooks/pj");
        assert_eq!(delivery["body"]["type"], "notification");
        assert_eq!(delivery["body"]["message"], "v2 is live");
        assert_eq!(delivery["body"]["task"]["id"], id(&task).as_str());
    }
    assert_eq!(got[0]["status"], 500);
    assert_eq!(got[1]["status"], 200);
}

// ---- email: a real SMTP server, and the outbox -----------------------------------------

#[tokio::test]
async fn a_notification_email_and_the_completion_email_go_to_a_real_smtp_server() {
    let smtp = PyFake::smtp_server();
    let url = format!("smtp://127.0.0.1:{}?tls=none", smtp.port);
    let server = Server::start(&[("PJ_SMTP_URL", url.as_str())]).await;
    let task = server
        .create(
            ALICE,
            json!({"kind": "notification", "title": "Tell Carol",
                   "config": {"channel": "email", "to": "carol@example.com",
                              "subject": "Hello Carol", "message": "The report is ready."}}),
        )
        .await;
    server.wait_for(ALICE, &id(&task), "completed", 30).await;
    let mails = smtp.wait_for(2, 30).await;
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m["rcpt_tos"] == json!([who]))
            .unwrap_or_else(|| panic!("no email to {who}: {mails:?}"))
    };
    let note = to("carol@example.com")["data"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(note.contains("Subject: Hello Carol"), "{note}");
    assert!(note.contains("The report is ready."), "{note}");
    let done = to("alice@example.com")["data"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(done.contains("Completed: Tell Carol"), "{done}");
    assert_eq!(mails.len(), 2, "one email each: {mails:?}");
    let found = messages_of(&server, ALICE, &id(&task), 2, "sent", 10).await;
    assert!(found.iter().all(|m| m["channel"] == "email"));
    assert!(
        server.outbox().is_empty(),
        "with SMTP set, nothing goes to the outbox"
    );
}

#[tokio::test]
async fn without_smtp_a_notification_email_is_written_to_the_outbox() {
    let server = Server::start(&[]).await;
    let task = server
        .create(
            ALICE,
            json!({"kind": "notification", "title": "Tell Carol",
                   "config": {"channel": "email", "to": "carol@example.com",
                              "subject": "Hello Carol", "message": "The report is ready."}}),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&task), "completed", 30).await;
    let mails = server.wait_for_mails(2, 30).await;
    let message_id = done["result"]["message_id"].as_str().expect("its message");
    let (_, note) = mails
        .iter()
        .find(|(name, _)| name == &format!("{message_id}.eml"))
        .unwrap_or_else(|| panic!("no {message_id}.eml among {mails:?}"));
    assert!(note.contains("To: carol@example.com"), "{note}");
    assert!(note.contains("Subject: Hello Carol"), "{note}");
    assert!(note.contains("The report is ready."), "{note}");
    assert!(
        mails
            .iter()
            .any(|(_, m)| m.contains("To: alice@example.com") && m.contains("Tell Carol")),
        "{mails:?}"
    );
}

// ---- a reminder ------------------------------------------------------------------------

#[tokio::test]
async fn a_reminder_waits_scheduled_then_sends_once_and_not_early() {
    let server = Server::start(&[PRIVATE_OK]).await;
    let receiver = PyFake::webhook_receiver(&outbound_secret(&server), 0);
    let remind_at = Utc::now() + chrono::Duration::seconds(3);
    let task = server
        .create(
            ALICE,
            json!({"kind": "reminder", "title": "Stand-up",
                   "config": {"channel": "webhook", "url": receiver.url("/remind"),
                              "message": "Stand-up in 5 minutes",
                              "remind_at": rfc3339(remind_at)}}),
        )
        .await;
    assert_eq!(task["status"], "scheduled");
    assert_eq!(task["scheduled_for"], rfc3339(remind_at).as_str());
    // Until remind_at it waits.
    while Utc::now() < remind_at - chrono::Duration::milliseconds(300) {
        let now = server.task(ALICE, &id(&task)).await;
        assert_eq!(now["status"], "scheduled", "{now}");
        assert!(receiver.records().is_empty(), "sent early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = server.wait_for(ALICE, &id(&task), "completed", 20).await;
    assert_eq!(done["result"]["status"], "sent");
    let got = receiver.wait_for(1, 10).await;
    let arrived = got[0]["arrived"].as_f64().expect("a time");
    let due = remind_at.timestamp_micros() as f64 / 1e6;
    assert!(arrived >= due, "arrived {arrived}, before remind_at {due}");
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["body"]["type"], "reminder");
    assert_eq!(got[0]["body"]["message"], "Stand-up in 5 minutes");
    // Sweeps run every second: a second send would show within a few.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.records().len(), 1, "sent once");
    assert_eq!(executions(&server, ALICE, &id(&task)).await.len(), 1);
}

// ---- a report --------------------------------------------------------------------------

#[tokio::test]
async fn a_report_counts_only_the_owners_tasks_and_delivers_its_summary() {
    let target = MockServer::start().await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&target)
        .await;
    Mock::given(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&target)
        .await;
    let server = Server::start(&[PRIVATE_OK]).await;
    let receiver = PyFake::webhook_receiver(&outbound_secret(&server), 0);
    let mut runs = Vec::new();
    for (token, route) in [
        (ALICE, "/ok"),
        (ALICE, "/gone"),
        (BOB, "/ok"),
        (BOB, "/ok"),
        (BOB, "/gone"),
    ] {
        let task = server
            .create(
                token,
                api_call(
                    "Count me",
                    json!({"url": format!("{}{route}", target.uri())}),
                ),
            )
            .await;
        runs.push((token, id(&task)));
    }
    for (token, task) in &runs {
        finished(&server, token, task, 30).await;
    }

    let report = server
        .create(
            ALICE,
            json!({"kind": "report", "title": "Weekly",
                   "config": {"report": "task_summary",
                              "deliver": {"channel": "webhook", "url": receiver.url("/report")}}}),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&report), "completed", 30).await;
    let result = &done["result"];
    assert_eq!(result["report"], "task_summary");
    assert_eq!(result["total"], 2, "{result}");
    assert_eq!(result["by_status"]["completed"], 1, "{result}");
    assert_eq!(result["by_status"]["failed"], 1, "{result}");
    assert_eq!(result["by_kind"], json!({"api_call": 2}), "{result}");
    assert_eq!(result["delivery"]["status"], "sent", "{result}");
    let summary = done["result_summary"].as_str().expect("a summary");
    assert!(summary.contains("2 task(s)"), "{summary}");

    let got = receiver.wait_for(1, 10).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["body"]["type"], "report");
    assert_eq!(got[0]["body"]["message"], summary);

    let stats = server
        .create(
            ALICE,
            json!({"kind": "report", "title": "Stats", "config": {"report": "execution_stats"}}),
        )
        .await;
    let done = server.wait_for(ALICE, &id(&stats), "completed", 30).await;
    let stats = &done["result"];
    assert_eq!(stats["report"], "execution_stats");
    let summary = done["result_summary"].as_str().unwrap_or_default();
    // Alice's two api_calls and her first report: Bob's three are not hers.
    assert!(summary.contains("3 attempt(s)"), "{summary}: {stats}");
}

// ---- validation ------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_config_is_a_400_naming_the_field_down_to_a_list_item() {
    let server = Server::start(&[]).await;
    for (body, field) in [
        (api_call("t", json!({"url": "gopher://x"})), "config.url"),
        (
            api_call("t", json!({"url": "https://x.example", "timeout_secs": 0})),
            "config.timeout_secs",
        ),
        (
            ghl(json!({"action": "add_tag", "contact_id": "c-1", "tags": ["ok", 7]})),
            "config.tags[1]",
        ),
        (
            ghl(json!({"action": "add_contact", "email": "ada@example.com"})),
            "config.location_id",
        ),
        (
            json!({"kind": "notification", "title": "t",
                   "config": {"channel": "pager", "message": "m"}}),
            "config.channel",
        ),
        (
            json!({"kind": "report", "title": "t", "config": {"report": "task_summary",
                   "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}),
            "config.from",
        ),
    ] {
        let (status, answer) = server
            .call("POST", "/tasks", Some(ALICE), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
}
