//! Browserbase faked with wiremock from its documented shapes; its `connectUrl` is the DevTools
//! websocket of a Chromium the test starts itself, as Browserbase's would be.

use std::process::Stdio;
use std::time::Duration;

use pj_browser::{Browserbase, BrowserbaseConfig, SessionOptions};
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{chromium, options, site, turn};

const KEY: &str = "bb_live_not-a-real-key-7f3a";

/// A Chromium with a DevTools port, as a remote service would run it; killed with its group
/// when dropped.
struct RemoteChromium {
    child: tokio::process::Child,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl RemoteChromium {
    async fn start() -> Self {
        let profile = tempfile::tempdir().expect("a profile dir");
        let mut child = tokio::process::Command::new(chromium().path())
            .args(pj_browser::CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let ws_url = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("ws://") {
                    return line[at..].trim().to_string();
                }
            }
            panic!("chromium printed no DevTools URL");
        })
        .await
        .expect("a DevTools URL within 20 s");
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            ws_url,
            _profile: profile,
        }
    }
}

impl Drop for RemoteChromium {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signals the process group this test started.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

async fn fake_browserbase(connect_url: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/sessions"))
        .and(header("X-BB-API-Key", KEY))
        .and(body_json(json!({ "projectId": "proj-1" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "sess-1",
            "projectId": "proj-1",
            "status": "RUNNING",
            "connectUrl": connect_url,
            "createdAt": "2026-01-01T00:00:00Z",
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/sessions/sess-1/debug"))
        .and(header("X-BB-API-Key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "debuggerFullscreenUrl": "https://debug.example.test/sess-1?fullscreen=1",
            "debuggerUrl": "https://debug.example.test/sess-1",
            "wsUrl": connect_url,
            "pages": [],
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/sessions/sess-1"))
        .and(header("X-BB-API-Key", KEY))
        .and(body_json(
            json!({ "projectId": "proj-1", "status": "REQUEST_RELEASE" }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "sess-1", "status": "COMPLETED" })),
        )
        .mount(&server)
        .await;
    server
}

fn client(server: &MockServer) -> Browserbase {
    Browserbase::new(BrowserbaseConfig {
        api_url: server.uri().parse().expect("a URL"),
        api_key: SecretString::from(KEY),
        project_id: "proj-1".into(),
    })
    .expect("a client")
}

async fn releases(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/sessions/sess-1")
        .count()
}

async fn wait_for_release(server: &MockServer) -> usize {
    for _ in 0..50 {
        let n = releases(server).await;
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    0
}

#[tokio::test]
async fn a_browserbase_session_should_be_driven_through_its_connect_url_and_released() {
    let _turn = turn().await;
    let site = site().await;
    let remote = RemoteChromium::start().await;
    let server = fake_browserbase(&remote.ws_url).await;
    let browserbase = client(&server);

    let session = browserbase.open(options()).await.expect("a session");
    assert_eq!(session.id(), "sess-1");
    assert_eq!(
        session.debug_url(),
        "https://debug.example.test/sess-1?fullscreen=1"
    );
    session
        .session()
        .navigate(&site.url("/table"))
        .await
        .expect("loads");
    assert_eq!(
        session.session().extract("h1").await.expect("text"),
        json!("Planets")
    );
    assert_eq!(releases(&server).await, 0, "not released while in use");
    session.close().await.expect("closed and released");
    assert_eq!(releases(&server).await, 1);
}

#[tokio::test]
async fn a_browserbase_session_should_be_released_when_its_work_fails() {
    let _turn = turn().await;
    let site = site().await;
    let remote = RemoteChromium::start().await;
    let server = fake_browserbase(&remote.ws_url).await;
    let browserbase = client(&server);

    let work = async {
        let session = browserbase
            .open(SessionOptions {
                step_timeout: Duration::from_millis(500),
                ..options()
            })
            .await?;
        session.session().navigate(&site.url("/table")).await?;
        session.session().click("#no-such-button").await?;
        session.close().await
    };
    let error = work.await.expect_err("the click fails");
    assert!(error.to_string().contains("#no-such-button"), "{error}");
    assert_eq!(
        wait_for_release(&server).await,
        1,
        "released in the background"
    );
}

#[tokio::test]
async fn a_browserbase_session_that_cannot_be_reached_should_be_released_and_name_no_secret() {
    let _turn = turn().await;
    // A connectUrl nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("an address").port();
    drop(closed);
    let connect_url = format!("ws://127.0.0.1:{port}/devtools/browser/x?signingKey=sk-secret-1");
    let server = fake_browserbase(&connect_url).await;
    let error = match client(&server).open(options()).await {
        Ok(_) => panic!("nothing to connect to"),
        Err(error) => error,
    };
    let message = format!("{error} {error:?}");
    assert!(!message.contains(KEY), "{message}");
    assert!(!message.contains("sk-secret-1"), "{message}");
    assert_eq!(
        releases(&server).await,
        1,
        "released before the error is returned"
    );
}

#[tokio::test]
async fn a_refused_api_key_should_not_be_repeated_in_the_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/sessions"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!("invalid key {KEY}")))
        .mount(&server)
        .await;
    let error = client(&server).create_session().await.expect_err("refused");
    let message = format!("{error} {error:?}");
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains(KEY), "{message}");
    let config = format!(
        "{:?}",
        BrowserbaseConfig {
            api_url: server.uri().parse().expect("a URL"),
            api_key: SecretString::from(KEY),
            project_id: "p".into(),
        }
    );
    assert!(!config.contains(KEY), "{config}");
}
