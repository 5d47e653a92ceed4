//! The web page driven in a real headless Chromium (Debian's `chromium`, which `scripts/test`
//! installs) against `pj serve` with the fake runner: sign in, the task list, a code change
//! created through the form and followed on its page to `completed`, a field error, the review
//! queue, a title and a log line that are markup shown as text, a log stream resumed with
//! `Last-Event-ID` after the server was killed and restarted, the phone layout. The browser's console, its
//! exceptions and every URL it loads are watched: no error, and never the token in a URL.
//!
//! A screenshot of each page is written under `target/page-screenshots/` for a person to look at.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel, LogEntrySource};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::browser_protocol::page::EventFrameNavigated;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use serde_json::json;

use crate::support::{ALICE, Server};

/// What the browser did that the test looks at afterwards.
#[derive(Default)]
struct Watched {
    /// Every URL a request went to, and every URL a frame navigated to.
    urls: Vec<String>,
    /// Console errors and uncaught exceptions of the page's scripts.
    script_errors: Vec<String>,
    /// The browser's own error entries, with their URL (a `fetch` answered 4xx is one).
    log_errors: Vec<(LogEntrySource, Option<String>, String)>,
    /// The `Last-Event-ID` of each log stream request that sent one.
    resumed_from: Vec<String>,
}

fn screenshots() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = target
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("page-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

async fn screenshot(page: &Page, name: &str) {
    let path = screenshots().join(format!("{name}.png"));
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
}

/// Evaluates `expr` until it is `true`, for at most 30 s.
async fn wait(page: &Page, expr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = page
            .evaluate(format!("Boolean({expr})"))
            .await
            .ok()
            .and_then(|v| v.into_value::<bool>().ok())
            .unwrap_or(false);
        if ok {
            return;
        }
        if Instant::now() > deadline {
            let text: String = page
                .evaluate("document.body.innerText")
                .await
                .ok()
                .and_then(|v| v.into_value().ok())
                .unwrap_or_default();
            panic!("waited 30 s for {what} ({expr}); the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Markup shown as text: no element of `selector` was made, and no script ran.
async fn assert_no_markup_ran(page: &Page, selector: &str) {
    let made = format!("document.querySelector('{selector}') !== null");
    assert!(!eval::<bool>(page, &made).await, "{selector} was made");
    assert!(eval::<bool>(page, "window.__pwned === undefined").await);
}

/// Waits until the list shows the task `id` as completed.
async fn wait_for_completed_row(page: &Page, id: &str) {
    let shown = format!(
        "document.querySelector('tr[data-id=\"{id}\"] .badge')?.textContent === 'Completed'"
    );
    wait(page, &shown, "the list").await;
}

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, expr: &str) -> T {
    page.evaluate(expr)
        .await
        .unwrap_or_else(|e| panic!("evaluating {expr}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("the value of {expr}: {e}"))
}

async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
}

async fn type_into(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("focusing {selector}: {e}"))
        .type_str(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
}

async fn go(page: &Page, hash: &str) {
    page.evaluate(format!("location.hash = {}", json!(hash)))
        .await
        .expect("navigate");
}

async fn watch(page: &Page) -> Arc<Mutex<Watched>> {
    let watched = Arc::new(Mutex::new(Watched::default()));
    let mut requests = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .unwrap();
    let mut frames = page.event_listener::<EventFrameNavigated>().await.unwrap();
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .unwrap();
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
    let w = watched.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(e) = requests.next() => {
                    let mut w = w.lock().unwrap();
                    w.urls.push(e.request.url.clone());
                    w.urls.push(e.document_url.clone());
                    let headers = serde_json::to_value(&e.request.headers).unwrap_or_default();
                    if let Some(id) = headers.get("Last-Event-ID").and_then(|v| v.as_str()) {
                        w.resumed_from.push(id.to_owned());
                    }
                }
                Some(e) = frames.next() => w.lock().unwrap().urls.push(e.frame.url.clone()),
                Some(e) = console.next() => if e.r#type == ConsoleApiCalledType::Error {
                    w.lock().unwrap().script_errors.push(format!("console.error: {:?}", e.args));
                },
                Some(e) = exceptions.next() => w.lock().unwrap().script_errors
                    .push(format!("exception: {:?}", e.exception_details)),
                Some(e) = log.next() => if e.entry.level == LogEntryLevel::Error {
                    w.lock().unwrap().log_errors.push(
                        (e.entry.source.clone(), e.entry.url.clone(), e.entry.text.clone()));
                },
                else => break,
            }
        }
    });
    watched
}

#[tokio::test]
async fn the_web_page_signs_in_creates_follows_reviews_and_never_puts_the_token_in_a_url() {
    let mut server = Server::start(&[]).await;
    // A task whose title is markup, created through the API: the page must show it as text.
    let xss = "<img src=x onerror=\"window.__pwned=1\"> Fix the <b>parser</b>";
    let (status, _) = server
        .call(
            "POST",
            "/tasks",
            Some(ALICE),
            Some(
                json!({"repo_url": "https://github.com/example/repo", "prompt": "p",
                        "title": xss, "execute": false}),
            ),
        )
        .await;
    assert_eq!(status, 201);

    let chromium = pj_browser::Chromium::locate(None).expect(
        "Chromium is installed (scripts/test installs Debian's chromium, or set PJ_CHROMIUM)",
    );
    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(chromium.path())
        .user_data_dir(profile.path())
        .args(
            pj_browser::CHROMIUM_FLAGS
                .iter()
                .map(|f| f.trim_start_matches("--")),
        )
        .window_size(1280, 800)
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.expect("Chromium starts");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.unwrap();
    let watched = watch(&page).await;
    page.execute(SetDeviceMetricsOverrideParams::new(1280, 800, 1.0, false))
        .await
        .unwrap();

    // Sign in: a wrong token is refused with a message; the right one opens the list.
    page.goto(server.url("/")).await.unwrap();
    wait(
        &page,
        "document.getElementById('token')",
        "the sign-in form",
    )
    .await;
    screenshot(&page, "1-sign-in").await;
    type_into(&page, "#token", "not-a-token-of-anyone").await;
    click(&page, "form button[type=submit]").await;
    wait(
        &page,
        "document.getElementById('signin-error') && !document.getElementById('signin-error').hidden \
         && document.getElementById('signin-error').textContent.includes('401')",
        "the refusal",
    )
    .await;
    assert!(
        eval::<bool>(&page, "sessionStorage.getItem('pj.token') === null").await,
        "a refused token is not kept"
    );
    type_into(&page, "#token", ALICE).await;
    click(&page, "form button[type=submit]").await;
    wait(
        &page,
        "performance.getEntriesByName('pj:list-rendered').length === 1",
        "the task list",
    )
    .await;
    assert_eq!(
        eval::<String>(&page, "sessionStorage.getItem('pj.token')").await,
        ALICE
    );

    // The markup title is text: no element made of it, no script run, no request for "x".
    wait(
        &page,
        "document.querySelector('#task-list td.title a')",
        "a row",
    )
    .await;
    let shown: String = eval(
        &page,
        "document.querySelector('#task-list td.title a').textContent",
    )
    .await;
    assert_eq!(shown, xss);
    assert_no_markup_ran(&page, "#task-list img, #task-list b").await;

    // A code change through the form, followed on its page to completed.
    click(&page, "a[data-nav=new]").await;
    wait(&page, "document.getElementById('repo_url')", "the form").await;
    type_into(&page, "#title", "Add a README").await;
    type_into(&page, "#repo_url", "https://github.com/example/repo").await;
    type_into(
        &page,
        "#prompt",
        "Add a README with the build steps fake:logs=5",
    )
    .await;
    click(&page, "form button[type=submit]").await;
    wait(
        &page,
        "location.hash.startsWith('#/tasks/tsk_')",
        "the task page",
    )
    .await;
    wait(
        &page,
        "document.querySelector('.title-row .badge')?.textContent === 'Completed'",
        "the task to complete, live",
    )
    .await;
    wait(
        &page,
        "document.querySelectorAll('#log li').length === 5 \
         && document.getElementById('log-state').textContent.includes('ended')",
        "the five log lines and the end of the stream",
    )
    .await;
    let pr: String = eval(
        &page,
        "[...document.querySelectorAll('a')].find(a => a.textContent === 'View pull request').href",
    )
    .await;
    assert_eq!(pr, "https://github.com/example/repo/pull/1");
    assert!(
        eval::<bool>(
            &page,
            "document.querySelector('button[data-action=retry]').disabled \
             && document.querySelector('button[data-action=cancel]').disabled"
        )
        .await,
        "a completed task is neither retried nor cancelled"
    );
    wait(
        &page,
        "document.querySelector('.panel table td')?.textContent === '1'",
        "the attempt",
    )
    .await;
    screenshot(&page, "4-task-completed").await;

    // A log line that is markup is text too (stored after the end, replayed on the next visit).
    let task_hash: String = eval(&page, "location.hash").await;
    let tid = task_hash.trim_start_matches("#/tasks/").to_owned();
    let line = "<img src=x onerror=\"window.__pwned=2\"> <script>window.__pwned=3</script>";
    let batch = json!({"task_id": tid, "attempt": 1, "lines": [
        {"seq": 100, "ts": "2026-01-01T00:00:00Z", "stream": "stderr", "text": line}]});
    let (status, _) = server
        .runner_post("/webhooks/runner/logs", &tid, 1, &batch, None)
        .await;
    assert_eq!(status, 200);
    // And two files: a screenshot is shown (fetched with the token, from a blob: URL), a
    // reply is offered for download.
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    for (name, content) in [("a1-step-1.png", PNG), ("a1-reply-1.md", "SGVsbG8=")] {
        let upload = json!({"task_id": tid, "attempt": 1, "name": name, "content_base64": content});
        let (status, _) = server
            .runner_post("/webhooks/runner/artifacts", &tid, 1, &upload, None)
            .await;
        assert_eq!(status, 200, "{name}");
    }
    go(&page, "#/").await;
    wait(&page, "document.title.startsWith('Tasks')", "the list").await;
    go(&page, &task_hash).await;
    wait(
        &page,
        "document.querySelectorAll('#log li').length === 6",
        "the replayed log",
    )
    .await;
    let last: String = eval(
        &page,
        "document.querySelector('#log li:last-child').textContent",
    )
    .await;
    assert!(last.ends_with(line), "{last}");
    assert_no_markup_ran(&page, "#log img, #log script").await;
    wait(
        &page,
        "document.querySelector('.shots img')?.src.startsWith('blob:') \
         && document.querySelector('.shots img').naturalWidth === 1",
        "the screenshot",
    )
    .await;
    assert_eq!(
        eval::<String>(&page, "document.querySelector('.shots img').alt").await,
        "Screenshot a1-step-1.png (attempt 1)"
    );
    assert!(
        eval::<bool>(
            &page,
            "[...document.querySelectorAll('.artifact-list button')].some(b => b.textContent === 'Download a1-reply-1.md')"
        )
        .await
    );

    // A bad value is shown beside its field, tied to it for assistive technology.
    go(&page, "#/new").await;
    wait(&page, "document.getElementById('repo_url')", "the form").await;
    type_into(&page, "#repo_url", "not a repository").await;
    type_into(&page, "#prompt", "anything").await;
    click(&page, "form button[type=submit]").await;
    wait(
        &page,
        "document.getElementById('repo_url-error')",
        "the field error",
    )
    .await;
    assert_eq!(
        eval::<String>(
            &page,
            "document.getElementById('repo_url').getAttribute('aria-invalid')"
        )
        .await,
        "true"
    );
    assert!(
        eval::<String>(
            &page,
            "document.getElementById('repo_url').getAttribute('aria-describedby')"
        )
        .await
        .split(' ')
        .any(|id| id == "repo_url-error")
    );
    assert_eq!(
        eval::<String>(&page, "document.activeElement.id").await,
        "repo_url",
        "the focus goes to the field at fault"
    );
    screenshot(&page, "3-new-task-error").await;
    // A built-in kind's config error names its path beside the config editor.
    page.evaluate(
        "const k = document.getElementById('kind'); k.value = 'api_call'; \
         k.dispatchEvent(new Event('change')); \
         document.getElementById('title').value = 'Ping'; \
         document.getElementById('config').value = JSON.stringify({url: 'ftp://example.com/'});",
    )
    .await
    .unwrap();
    click(&page, "form button[type=submit]").await;
    wait(
        &page,
        "document.getElementById('config-error')",
        "the config error",
    )
    .await;
    let said: String = eval(&page, "document.getElementById('config-error').textContent").await;
    assert!(said.starts_with("config.url"), "{said}");
    assert_eq!(
        eval::<String>(
            &page,
            "document.getElementById('config').getAttribute('aria-invalid')"
        )
        .await,
        "true"
    );

    // A task held for review waits in the queue until approved there.
    go(&page, "#/review").await;
    wait(
        &page,
        "document.title.startsWith('Review')",
        "the review queue",
    )
    .await;
    go(&page, "#/new").await;
    wait(&page, "document.getElementById('repo_url')", "the form").await;
    type_into(&page, "#title", "Upgrade the linter").await;
    type_into(&page, "#repo_url", "https://github.com/example/repo").await;
    type_into(&page, "#prompt", "Upgrade the linter fake:logs=2").await;
    click(&page, "#requires_review").await;
    click(&page, "form button[type=submit]").await;
    wait(
        &page,
        "document.querySelector('.title-row .badge')?.textContent === 'Pending review'",
        "the held task",
    )
    .await;
    let held_hash: String = eval(&page, "location.hash").await;
    let held = held_hash.trim_start_matches("#/tasks/").to_owned();
    click(&page, "a[data-nav=review]").await;
    wait(
        &page,
        &format!("document.querySelector('tr[data-id=\"{held}\"] button[data-action=approve]')"),
        "the held task in the queue",
    )
    .await;
    screenshot(&page, "5-review-queue").await;
    click(
        &page,
        &format!("tr[data-id=\"{held}\"] button[data-action=approve]"),
    )
    .await;
    wait(
        &page,
        &format!("!document.querySelector('tr[data-id=\"{held}\"]') && document.querySelector('.notice.ok')"),
        "the approval",
    )
    .await;
    server.wait_for(ALICE, &held, "completed", 30).await;

    // A stream broken by the server's end is resumed after the last line seen, once it is back.
    let slow = server
        .create(
            ALICE,
            json!({"repo_url": "https://github.com/example/repo",
                              "title": "Rebuild the index", "prompt": "fake:logs=3 fake:slow=6"}),
        )
        .await;
    let slow_id = slow["id"].as_str().unwrap().to_owned();
    go(&page, &format!("#/tasks/{slow_id}")).await;
    wait(
        &page,
        "document.querySelectorAll('#log li').length === 3",
        "the first lines",
    )
    .await;
    server.kill_9();
    server.restart().await;
    wait(
        &page,
        "document.querySelector('.title-row .badge')?.textContent === 'Completed' \
         && document.getElementById('log-state').textContent.includes('ended')",
        "the task to complete after the restart",
    )
    .await;
    let texts: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#log li')].map(li => li.lastChild.textContent)",
    )
    .await;
    assert_eq!(
        texts,
        ["step 0 of 3", "step 1 of 3", "step 2 of 3", "done waiting"],
        "every line once: the stream resumed after the last one seen"
    );
    assert!(
        !watched.lock().unwrap().resumed_from.is_empty(),
        "the reconnection sent Last-Event-ID"
    );

    // The list, then at a phone's width.
    go(&page, "#/").await;
    wait_for_completed_row(&page, &held).await;
    screenshot(&page, "2-list").await;
    page.execute(SetDeviceMetricsOverrideParams::new(375, 812, 1.0, true))
        .await
        .unwrap();
    go(&page, "#/review").await;
    wait(
        &page,
        "document.title.startsWith('Review')",
        "the review queue",
    )
    .await;
    go(&page, "#/").await;
    wait_for_completed_row(&page, &held).await;
    assert!(
        eval::<bool>(&page, "document.documentElement.scrollWidth <= 375").await,
        "nothing is wider than the phone"
    );
    screenshot(&page, "6-list-phone").await;

    // Sign out forgets the token.
    click(&page, "#sign-out").await;
    wait(
        &page,
        "document.getElementById('token')",
        "the sign-in form",
    )
    .await;
    assert!(
        eval::<bool>(&page, "sessionStorage.getItem('pj.token') === null").await,
        "signing out forgets the token"
    );

    browser.close().await.unwrap();
    browser.wait().await.unwrap();
    events.abort();

    let w = watched.lock().unwrap();
    assert!(w.script_errors.is_empty(), "{:#?}", w.script_errors);
    // The only errors the browser logs are the answers the test asked for: the wrong token's
    // 401, the two refused forms' 400, and the stream cut by the server's end (and refused
    // while it was down).
    let unexpected: Vec<_> = w
        .log_errors
        .iter()
        .filter(|(source, url, text)| {
            let asked = *source == LogEntrySource::Network
                && url.as_deref().is_some_and(|u| {
                    (u.ends_with("/tasks?limit=1") && text.contains("401"))
                        || (u.ends_with("/tasks") && text.contains("400"))
                        || (u.ends_with("/logs/stream")
                            && (text.contains("ERR_INCOMPLETE_CHUNKED_ENCODING")
                                || text.contains("ERR_CONNECTION_REFUSED")))
                });
            !asked
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(
        w.urls.iter().any(|u| u.contains("/logs/stream")),
        "the log was streamed"
    );
    for url in &w.urls {
        assert!(!url.contains(ALICE), "the token in a URL: {url}");
        assert!(
            !url.ends_with("/x"),
            "the markup title loaded an image: {url}"
        );
    }
}
