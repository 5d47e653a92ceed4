//! What every test shares: the Chromium to use, local test pages on 127.0.0.1, and a look at
//! the process table for leftover browsers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use pj_browser::{BrowserSession, Chromium, SessionOptions};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The Chromium the tests drive: `PJ_CHROMIUM`, or one on `PATH`. Missing is a failure, never a
/// skip: a green run must mean the browser was really driven.
pub fn chromium() -> Chromium {
    let explicit = std::env::var_os("PJ_CHROMIUM").map(PathBuf::from);
    match Chromium::locate(explicit.as_deref()) {
        Ok(chromium) => chromium,
        Err(e) => panic!(
            "these tests drive a real Chromium and none was found ({e}). Install Debian's \
             `chromium` package (scripts/system-packages does, as root) or set PJ_CHROMIUM to \
             the binary."
        ),
    }
}

/// Two cores: more than two browsers at once make every timing in these tests a guess.
static BROWSERS: Semaphore = Semaphore::const_new(2);

/// A turn to run a browser; hold it for the test's length.
pub async fn turn() -> SemaphorePermit<'static> {
    BROWSERS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// Options for tests against local pages: private addresses allowed (the pages are on
/// 127.0.0.1) and short timeouts so failures come fast.
pub fn options() -> SessionOptions {
    SessionOptions {
        allow_private_networks: true,
        navigation_timeout: Duration::from_secs(5),
        step_timeout: Duration::from_secs(3),
        launch_timeout: Duration::from_secs(20),
    }
}

pub async fn launch(options: SessionOptions) -> BrowserSession {
    BrowserSession::launch(&chromium(), options)
        .await
        .expect("a local Chromium starts")
}

/// The PIDs of processes whose command line names `needle` (a profile directory).
pub fn processes_naming(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // A zombie has an empty command line: it is already dead, only not yet reaped.
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            found.push(pid);
        }
    }
    found
}

/// Waits a little for the kernel to finish tearing processes down, then returns what is left.
pub async fn leftover_processes(profile: &Path) -> Vec<u32> {
    for _ in 0..30 {
        if processes_naming(profile).is_empty() {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    processes_naming(profile)
}

/// The local test site.
pub struct Site {
    pub base: String,
    pub port: u16,
    /// How many requests reached the site, any path.
    pub hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Site {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn site() -> Site {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/form", get(|| async { Html(FORM) }))
        .route("/hello", get(hello))
        .route("/table", get(|| async { Html(TABLE) }))
        .route("/late", get(|| async { Html(LATE) }))
        .route("/twins", get(|| async { Html(TWINS) }))
        .route("/tall", get(|| async { Html(TALL) }))
        .route("/framed", get(framed))
        .route("/never", get(never))
        .route("/to-table", get(|| async { Redirect::temporary("/table") }))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hits),
            count,
        ))
        .with_state(());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("an address").port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Site {
        base: format!("http://127.0.0.1:{port}"),
        port,
        hits,
        server,
    }
}

async fn count(
    State(hits): State<Arc<AtomicUsize>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    hits.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

async fn hello(Query(q): Query<std::collections::HashMap<String, String>>) -> impl IntoResponse {
    let name = q.get("name").cloned().unwrap_or_default();
    let escaped = name
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Html(format!(
        "<!doctype html><title>Hello</title><h1 id=\"greeting\">Hello, {escaped}</h1>"
    ))
}

async fn framed(headers: axum::http::HeaderMap) -> Html<String> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let port = host.rsplit(':').next().unwrap_or_default().to_string();
    Html(format!(
        "<!doctype html><title>Framed</title><iframe src=\"http://localhost:{port}/table\"></iframe>"
    ))
}

/// Holds the response until the client goes away: a page that never loads.
async fn never() -> Html<&'static str> {
    std::future::pending::<()>().await;
    Html("")
}

const FORM: &str = r#"<!doctype html><title>Form</title>
<form action="/hello" method="get">
  <label for="name">Your name</label> <input id="name" name="name" value="placeholder text">
  <button type="submit">Say hello</button>
</form>"#;

const TABLE: &str = r#"<!doctype html><title>Table</title>
<h1 class="title">Planets</h1>
<table>
  <tr><th>Name</th><th>Moons</th></tr>
  <tr><td class="name"><a href="/planet/mercury">Mercury</a></td><td class="moons">0</td></tr>
  <tr><td class="name"><a href="/planet/venus">Venus</a></td><td class="moons">0</td></tr>
  <tr><td class="name"><a href="/planet/earth">Earth</a></td><td class="moons">1</td></tr>
</table>"#;

const LATE: &str = r#"<!doctype html><title>Late</title>
<p>Waiting…</p>
<script>setTimeout(() => { const p = document.createElement('p'); p.id = 'late'; p.textContent = 'I came late'; document.body.appendChild(p); }, 700);</script>"#;

const TWINS: &str = r#"<!doctype html><title>Twins</title>
<main>
  <section aria-label="Newsletter">
    <h2>Newsletter</h2>
    <p>News once a month.</p>
    <button onclick="document.getElementById('out').textContent = 'newsletter'">Subscribe</button>
  </section>
  <section>
    <h2>Billing</h2>
    <p>Pay yearly and save.</p>
    <button onclick="document.getElementById('out').textContent = 'billing'">Subscribe</button>
  </section>
  <p id="out">nothing yet</p>
</main>"#;

const TALL: &str = r#"<!doctype html><title>Tall</title>
<style>body { margin: 0 } div { height: 3000px; background: linear-gradient(#08f, #f80) }</style>
<div>tall</div>"#;

/// The width and height a PNG's IHDR chunk declares, after checking the signature.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 33, "a PNG is more than {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "the first chunk is IHDR");
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (width, height)
}
