//! The browser kinds end to end in `pj serve`, on a real headless Chromium (Debian's `chromium`,
//! which `scripts/test` installs) against local pages; a fake model (wiremock, OpenAI's shape)
//! that reads the page view it is sent; and a fake Browserbase whose `connectUrl` is a local
//! Chromium's DevTools websocket.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{ALICE, BOB, Server};

const FORM: &str = r#"<!doctype html><title>Sign up</title>
<form action="/welcome" method="get">
  <label>Email <input id="email" name="email"></label>
  <button type="submit">Sign up</button>
</form>"#;

const WELCOME: &str = r#"<!doctype html><title>Welcome</title>
<h1>Welcome aboard</h1>
<script>setTimeout(() => {
  const late = document.createElement('p'); late.id = 'late'; late.textContent = 'ready';
  document.body.appendChild(late);
}, 700);</script>"#;

const TWO_BUTTONS: &str = r#"<!doctype html><title>Subscribe</title>
<section aria-label="Newsletter"><h2>Newsletter</h2>
  <button onclick="document.getElementById('picked').textContent='newsletter'">Subscribe</button></section>
<section aria-label="Podcast"><h2>Podcast</h2>
  <button onclick="document.getElementById('picked').textContent='podcast'">Subscribe</button></section>
<p id="picked">none</p>"#;

const TABLE: &str = r#"<!doctype html><title>Books</title>
<h1>Books</h1>
<table><tr><th>Title</th><th>Price</th></tr>
<tr><td class="title"><a href="/dune">Dune</a></td><td class="price">9.99</td></tr>
<tr><td class="title"><a href="/emma">Emma</a></td><td class="price">4.50</td></tr></table>"#;

/// Local pages; `/never` answers after two minutes, a page that never loads.
async fn site() -> MockServer {
    let site = MockServer::start().await;
    for (at, html) in [
        ("/form", FORM),
        ("/welcome", WELCOME),
        ("/buttons", TWO_BUTTONS),
        ("/books", TABLE),
    ] {
        Mock::given(method("GET"))
            .and(path(at))
            .respond_with(ResponseTemplate::new(200).set_body_raw(html, "text/html; charset=utf-8"))
            .mount(&site)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/never"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("<p>late</p>", "text/html")
                .set_delay(Duration::from_secs(120)),
        )
        .mount(&site)
        .await;
    site
}

/// A model that reads the page view it is sent: for a click it picks the button under the
/// section named in the instruction; for an extraction it answers the books it finds.
struct PageReader;

impl Respond for PageReader {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON request");
        let prompt = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        let answer = if prompt.contains("The element is to click") {
            let section = if prompt.contains("podcast") {
                "## Podcast"
            } else {
                "## Newsletter"
            };
            let after = &prompt[prompt.find(section).expect("the section is in the view")..];
            let line = after
                .lines()
                .find(|l| l.contains("button \"Subscribe\""))
                .expect("its button is in the view");
            let reference = &line[1..line.find(']').expect("a reference")];
            json!({"ref": reference}).to_string()
        } else {
            let titles: Vec<&str> = ["Dune", "Emma"]
                .into_iter()
                .filter(|t| prompt.contains(t))
                .collect();
            json!(titles).to_string()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 800, "completion_tokens": 12, "total_tokens": 812}
        }))
    }
}

/// `pj serve` whose browsers may open local pages, whose Chromium profiles go under `tmp`, and
/// whose model is the page reader.
async fn server(tmp: &Path, model: &MockServer, extra: &[(&str, &str)]) -> Server {
    let model_url = format!("{}/v1", model.uri());
    let tmpdir = tmp.display().to_string();
    let mut env = vec![
        ("PJ_ALLOW_PRIVATE_NETWORKS", "true"),
        ("TMPDIR", tmpdir.as_str()),
        ("OPENAI_BASE_URL", model_url.as_str()),
        ("OPENAI_API_KEY", "sk-test-browser-0123456789"),
        ("PJ_DEFAULT_MODEL", "openai/gpt-4.1-mini"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env).await
}

async fn model() -> MockServer {
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(PageReader)
        .mount(&model)
        .await;
    model
}

/// Processes whose command line names `dir` (a Chromium with its profile there).
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

/// Waits up to `secs` for the browsers under `dir` to be gone (a killed group is reaped at
/// once, but the check must not race the reaping), failing with what is left.
async fn assert_no_browser_left(dir: &Path, secs: u64) {
    for _ in 0..secs * 10 {
        if processes_under(dir).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Chromium outlived its task: {:?}", processes_under(dir));
}

/// The width and height a PNG's header gives, after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (at(16), at(20))
}

async fn create(server: &Server, body: Value) -> String {
    server.create(ALICE, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_form_is_filled_submitted_and_its_next_page_read_and_screenshotted() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let server = server(tmp.path(), &model, &[]).await;

    let id = create(
        &server,
        json!({"kind": "browser_automation", "title": "Sign up", "config": {
        "start_url": format!("{}/form", site.uri()),
        "steps": [
            {"action": "type", "selector": "#email", "text": "ada@example.com"},
            {"action": "click", "selector": "button[type=submit]"},
            {"action": "wait", "selector": "h1"},
            {"action": "extract", "selector": "h1", "schema": {"type": "string"}},
            {"action": "wait", "selector": "#late"},
            {"action": "screenshot", "full_page": true},
        ]}}),
    )
    .await;
    let done = server.wait_for(ALICE, &id, "completed", 90).await;

    let result = &done["result"];
    assert_eq!(result["extracted"]["step_4"], "Welcome aboard");
    assert_eq!(result["extracted"], json!({"step_4": "Welcome aboard"}));
    assert_eq!(result["screenshots"], json!(["a1-step-6.png"]));
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    assert!(steps.iter().all(|s| s["ok"] == true), "{steps:?}");
    let lines: Vec<String> = server
        .logs(ALICE, &id)
        .await
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect();
    for n in 1..=6 {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("step {n}/6 ")) && l.contains(": ok in ")),
            "a line for step {n}: {lines:?}"
        );
    }
    let png = server
        .client
        .get(server.url(&format!("/tasks/{id}/artifacts/a1-step-6.png")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let (width, height) = png_size(&png.bytes().await.unwrap());
    assert!(width >= 300 && height >= 200, "{width}x{height}");
    let (status, _) = server
        .call(
            "GET",
            &format!("/tasks/{id}/artifacts/a1-step-6.png"),
            Some(BOB),
            None,
        )
        .await;
    assert_eq!(status, 404, "another user's screenshot is not found");
    assert_no_browser_left(tmp.path(), 5).await;
}

#[tokio::test]
async fn an_instruction_clicks_the_button_of_the_section_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let server = server(tmp.path(), &model, &[]).await;

    let id = create(
        &server,
        json!({"kind": "browser_automation", "title": "Subscribe", "config": {
        "start_url": format!("{}/buttons", site.uri()),
        "steps": [
            {"action": "click", "instruction": "subscribe to the podcast"},
            {"action": "extract", "selector": "#picked"},
        ]}}),
    )
    .await;
    let done = server.wait_for(ALICE, &id, "completed", 90).await;

    assert_eq!(done["result"]["extracted"]["step_2"], "podcast");
    assert_eq!(done["usage"]["input_tokens"], 800);
    assert_eq!(done["usage"]["model"], "gpt-4.1-mini");
    assert_no_browser_left(tmp.path(), 5).await;
}

#[tokio::test]
async fn a_table_is_extracted_by_fields_and_by_instruction() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let server = server(tmp.path(), &model, &[]).await;
    let url = format!("{}/books", site.uri());

    let by_fields = create(
        &server,
        json!({"kind": "data_extraction", "title": "Books", "config": {"url": url,
            "fields": {"heading": "h1", "titles": "td.title", "links": "td.title a@href", "none": ".missing"}}}),
    )
    .await;
    let by_words = create(
        &server,
        json!({"kind": "data_extraction", "title": "Books", "config": {"url": url,
            "instruction": "the titles of the books", "schema": {"type": "array", "items": {"type": "string"}}}}),
    )
    .await;

    let done = server.wait_for(ALICE, &by_fields, "completed", 90).await;
    assert_eq!(
        done["result"]["data"],
        json!({"heading": "Books", "titles": ["Dune", "Emma"], "links": ["/dune", "/emma"], "none": null})
    );
    let done = server.wait_for(ALICE, &by_words, "completed", 90).await;
    assert_eq!(done["result"]["data"], json!(["Dune", "Emma"]));
    assert_no_browser_left(tmp.path(), 5).await;
}

#[tokio::test]
async fn a_page_that_never_loads_fails_the_task_at_its_deadline_and_leaves_no_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let server = server(tmp.path(), &model, &[("PJ_TASK_TIMEOUT_SECS", "5")]).await;

    let id = create(
        &server,
        json!({"kind": "browser_automation", "title": "Never", "max_attempts": 1, "config": {
            "start_url": format!("{}/never", site.uri()),
            "steps": [{"action": "screenshot"}]}}),
    )
    .await;
    let done = server.wait_for(ALICE, &id, "failed", 90).await;

    let code = done["error"]["code"].as_str().unwrap();
    assert!(code == "browser_error" || code == "timeout", "{done}");
    assert_no_browser_left(tmp.path(), 5).await;
}

#[tokio::test]
async fn a_cancelled_task_closes_its_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let server = server(tmp.path(), &model, &[]).await;

    let id = create(
        &server,
        json!({"kind": "browser_automation", "title": "Slow", "config": {
            "start_url": format!("{}/form", site.uri()),
            "steps": [{"action": "wait", "ms": 3000}, {"action": "screenshot"}]}}),
    )
    .await;
    server.wait_for(ALICE, &id, "running", 60).await;
    for _ in 0..100 {
        if !processes_under(tmp.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!processes_under(tmp.path()).is_empty(), "the browser runs");
    let (status, body) = server
        .call("POST", &format!("/tasks/{id}/cancel"), Some(ALICE), None)
        .await;
    assert_eq!(status, 200, "{body}");

    assert_no_browser_left(tmp.path(), 15).await;
    let done = server.task(ALICE, &id).await;
    assert_eq!(done["status"], "cancelled");
    let (_, listed) = server
        .call("GET", &format!("/tasks/{id}/artifacts"), Some(ALICE), None)
        .await;
    assert_eq!(
        listed["artifacts"],
        json!([]),
        "the step after the cancel never ran"
    );
}

#[tokio::test]
async fn a_browserbase_session_is_driven_through_its_connect_url_and_released() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let chromium = pj_browser::Chromium::locate(None).expect(
        "Chromium is installed (scripts/test installs Debian's chromium, or set PJ_CHROMIUM)",
    );
    let (remote, ws_url) = pj_browser::ChromiumProcess::start(&chromium, Duration::from_secs(20))
        .await
        .expect("a Chromium with a DevTools websocket");
    let browserbase = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/sessions"))
        .and(header("x-bb-api-key", "bb_live_test_key_0123"))
        .and(body_json(json!({"projectId": "proj-1"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "sess-42", "connectUrl": ws_url, "status": "RUNNING"})))
        .expect(1)
        .mount(&browserbase)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/sessions/sess-42/debug"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "debuggerFullscreenUrl": "https://www.browserbase.com/devtools-fullscreen/sess-42"})))
        .mount(&browserbase)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/sessions/sess-42"))
        .and(body_json(
            json!({"projectId": "proj-1", "status": "REQUEST_RELEASE"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "sess-42"})))
        .expect(1)
        .mount(&browserbase)
        .await;
    let server = server(
        tmp.path(),
        &model,
        &[
            ("PJ_BROWSER", "browserbase"),
            ("BROWSERBASE_API_URL", &browserbase.uri()),
            ("BROWSERBASE_API_KEY", "bb_live_test_key_0123"),
            ("BROWSERBASE_PROJECT_ID", "proj-1"),
        ],
    )
    .await;

    let id = create(
        &server,
        json!({"kind": "data_extraction", "title": "Books", "config": {
            "url": format!("{}/books", site.uri()), "fields": {"heading": "h1"}}}),
    )
    .await;
    let done = server.wait_for(ALICE, &id, "completed", 90).await;

    assert_eq!(done["result"]["data"], json!({"heading": "Books"}));
    assert_eq!(done["result"]["session_id"], "sess-42");
    assert_eq!(
        done["result"]["debug_url"],
        "https://www.browserbase.com/devtools-fullscreen/sess-42"
    );
    let lines = server.logs(ALICE, &id).await;
    assert!(
        lines.iter().all(|l| !l["text"]
            .as_str()
            .unwrap()
            .contains("bb_live_test_key_0123")),
        "the key never reaches the log"
    );
    // The release is sent when the task ends; the mock checks it came once when dropped.
    for _ in 0..50 {
        let released = browserbase
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| r.url.path() == "/v1/sessions/sess-42" && r.method.as_str() == "POST");
        if released {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(remote);
}

/// The distinct Chromium profiles under `dir` that have a process now: browsers running.
fn browsers_running(dir: &Path) -> usize {
    let mut profiles: Vec<String> = processes_under(dir)
        .iter()
        .filter_map(|cmdline| {
            let at = cmdline.find("pj-chromium-")?;
            Some(cmdline[at..].split(['/', ' ']).next()?.to_owned())
        })
        .collect();
    profiles.sort();
    profiles.dedup();
    profiles.len()
}

#[tokio::test]
async fn no_more_browsers_run_at_once_than_pj_max_browsers() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let server = server(tmp.path(), &model, &[("PJ_MAX_BROWSERS", "1")]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            create(
                &server,
                json!({"kind": "browser_automation", "title": "Wait", "config": {
                    "start_url": format!("{}/form", site.uri()),
                    "steps": [{"action": "wait", "ms": 1200}]}}),
            )
            .await,
        );
    }

    let mut most = 0;
    let mut all_done = false;
    for _ in 0..600 {
        most = most.max(browsers_running(tmp.path()));
        let mut done = 0;
        for id in &ids {
            if server.task(ALICE, id).await["status"] == "completed" {
                done += 1;
            }
        }
        if done == ids.len() {
            all_done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        all_done,
        "the three tasks complete, one browser after another"
    );
    assert_eq!(most, 1, "one browser at a time");
    assert_no_browser_left(tmp.path(), 5).await;
}

#[tokio::test]
async fn a_server_killed_mid_task_leaves_no_browser_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (site, model) = (site().await, model().await);
    let mut server = server(tmp.path(), &model, &[]).await;
    let id = create(
        &server,
        json!({"kind": "browser_automation", "title": "Long", "config": {
            "start_url": format!("{}/form", site.uri()),
            "steps": [{"action": "wait", "ms": 30000}]}}),
    )
    .await;
    server.wait_for(ALICE, &id, "running", 60).await;
    for _ in 0..100 {
        if browsers_running(tmp.path()) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(browsers_running(tmp.path()), 1, "the browser runs");

    // SIGKILL: no clean-up of the server's own runs; the kernel ends its browsers.
    server.kill_9();

    assert_no_browser_left(tmp.path(), 5).await;
}
