//! One browser session: a page in a local or remote Chromium, its address guard, and the steps.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::layout::Point;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use pj_core::net::NetworkPolicy;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use crate::BrowserError;
use crate::guard::{self, BlockedRequest, GuardLog};
use crate::launch::{Chromium, ChromiumProcess};
use crate::steps::{FieldSpec, Step, StepOutput};
use crate::view::{ElementRef, PageView, VIEW_JS};

/// How a session behaves: the address rule and the time each step may take.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// `PJ_ALLOW_PRIVATE_NETWORKS=true`: the page may reach loopback, private and link-local
    /// addresses. Off by default.
    pub allow_private_networks: bool,
    /// How long a `navigate` step may take until the page has loaded.
    pub navigation_timeout: Duration,
    /// How long any other step may take, waiting for its element included.
    pub step_timeout: Duration,
    /// How long Chromium may take to start, or a remote endpoint to answer.
    pub launch_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            navigation_timeout: Duration::from_secs(30),
            step_timeout: Duration::from_secs(10),
            launch_timeout: Duration::from_secs(20),
        }
    }
}

/// How often a step looks again for an element that is not there or not ready yet.
const POLL: Duration = Duration::from_millis(100);

/// A page in a Chromium driven over the DevTools protocol.
///
/// Made by [`BrowserSession::launch`] (a local Chromium of its own, gone with the session) or
/// [`BrowserSession::connect`] (a remote browser, e.g. a Browserbase session). Steps are its
/// async methods; each is bounded by its timeout and fails with an error naming what it waited
/// for. Dropping the session (a cancelled task included) ends its local Chromium at once.
pub struct BrowserSession {
    // Field order is drop order: the page and the connection go before the process is killed.
    /// The page the steps run in; replaced when a navigation never finished (see `navigate`).
    page: Mutex<Page>,
    browser: Browser,
    handler_task: JoinHandle<()>,
    guard_task: Mutex<Option<JoinHandle<()>>>,
    guard: Arc<GuardLog>,
    /// How many refused requests the steps have already reported.
    reported: AtomicUsize,
    process: Mutex<Option<ChromiumProcess>>,
    profile_dir: Option<PathBuf>,
    options: SessionOptions,
}

impl BrowserSession {
    /// Starts a local headless Chromium with a fresh profile and opens a page in it.
    pub async fn launch(
        chromium: &Chromium,
        options: SessionOptions,
    ) -> Result<Self, BrowserError> {
        let (process, ws_url) = ChromiumProcess::start(chromium, options.launch_timeout).await?;
        let profile_dir = process.profile_dir().map(|p| p.to_path_buf());
        // On an error below, `process` is dropped with the future and its group killed.
        let mut session = Self::attach(&ws_url, options, Some(process)).await?;
        session.profile_dir = profile_dir;
        Ok(session)
    }

    /// Connects to a browser's DevTools websocket (`ws://` or `wss://`, e.g. Browserbase's
    /// `connectUrl`) and opens a page in it. The remote browser is not ended by this session.
    pub async fn connect(ws_url: &str, options: SessionOptions) -> Result<Self, BrowserError> {
        if !(ws_url.starts_with("ws://") || ws_url.starts_with("wss://")) {
            return Err(BrowserError::Connect(
                "the DevTools endpoint must be a ws:// or wss:// URL".into(),
            ));
        }
        Self::attach(ws_url, options, None).await
    }

    async fn attach(
        ws_url: &str,
        options: SessionOptions,
        process: Option<ChromiumProcess>,
    ) -> Result<Self, BrowserError> {
        let config = HandlerConfig {
            // Certificate errors are errors: a task must not read a page an attacker in the
            // middle served.
            ignore_https_errors: false,
            // chromiumoxide runs one navigation at a time and holds the next one until the
            // current one is done or past this deadline: it must be the navigation timeout, or
            // a page that never loaded would hold up the next step's navigation too.
            request_timeout: options.navigation_timeout,
            ..HandlerConfig::default()
        };
        let connect = Browser::connect_with_config(ws_url.to_string(), config);
        // The URL may carry a signing key (Browserbase's does): it is never put in an error.
        let (browser, mut handler) =
            match tokio::time::timeout(options.launch_timeout, connect).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(BrowserError::Connect(e.to_string())),
                Err(_) => {
                    return Err(BrowserError::Connect(format!(
                        "no answer within {} s",
                        options.launch_timeout.as_secs()
                    )));
                }
            };
        let handler_task = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "DevTools connection event");
                    if matches!(e, CdpError::Ws(_)) {
                        break;
                    }
                }
            }
        });
        let log = Arc::new(GuardLog::default());
        let opened = open_page(&browser, options, Arc::clone(&log));
        let (page, guard_task) = match tokio::time::timeout(options.launch_timeout, opened).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                handler_task.abort();
                return Err(BrowserError::Connect(format!("could not open a page: {e}")));
            }
            Err(_) => {
                handler_task.abort();
                return Err(BrowserError::Connect(
                    "could not open a page in time".into(),
                ));
            }
        };
        Ok(Self {
            page: Mutex::new(page),
            browser,
            handler_task,
            guard_task: Mutex::new(Some(guard_task)),
            guard: log,
            reported: AtomicUsize::new(0),
            process: Mutex::new(process),
            profile_dir: None,
            options,
        })
    }

    /// The page the steps run in (a handle: cheap to clone).
    fn current(&self) -> Page {
        self.page.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Abandons the current page for a fresh one in the same browser, guarded alike.
    ///
    /// chromiumoxide runs one navigation at a time and keeps a navigation that never finished
    /// pending for 30 s whatever its timeouts say, so after a page that never loaded the next
    /// `navigate` would wait behind it. A new page has no such past; cookies stay (same browser
    /// context), history does not.
    async fn replace_page(&self) {
        let fresh = tokio::time::timeout(
            self.options.launch_timeout,
            open_page(&self.browser, self.options, Arc::clone(&self.guard)),
        )
        .await;
        let Ok(Ok((page, guard_task))) = fresh else {
            tracing::warn!("no fresh page after a navigation timeout; keeping the stuck one");
            return;
        };
        let old_page = std::mem::replace(
            &mut *self.page.lock().unwrap_or_else(|p| p.into_inner()),
            page,
        );
        let old_guard = self
            .guard_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(guard_task);
        if let Some(task) = old_guard {
            task.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), old_page.close()).await;
    }

    /// The local browser's profile directory (every one of its processes names it on its
    /// command line); `None` for a remote browser.
    pub fn profile_dir(&self) -> Option<&std::path::Path> {
        self.profile_dir.as_deref()
    }

    /// Every request the address guard refused so far.
    pub fn blocked_requests(&self) -> Vec<BlockedRequest> {
        self.guard.blocked()
    }

    /// The underlying chromiumoxide page, for what the steps do not cover (benchmarks compare
    /// against it). Requests it causes still pass the address guard.
    pub fn page(&self) -> Page {
        self.current()
    }

    /// The page's current URL.
    pub async fn url(&self) -> Result<String, BrowserError> {
        self.step("url", self.options.step_timeout, "the page's URL", async {
            Ok(self
                .current()
                .url()
                .await
                .map_err(|e| self.cdp("url", e))?
                .unwrap_or_default())
        })
        .await
    }

    /// Runs one step of the contract's `steps` list.
    pub async fn run(&self, step: &Step) -> Result<StepOutput, BrowserError> {
        match step {
            Step::Navigate { url } => self.navigate(url).await.map(|()| StepOutput::Done),
            Step::Click { selector } => self.click(selector).await.map(|()| StepOutput::Done),
            Step::Type { selector, text } => self
                .type_text(selector, text)
                .await
                .map(|()| StepOutput::Done),
            Step::WaitFor { selector } => self.wait_for(selector).await.map(|()| StepOutput::Done),
            Step::WaitMs { ms } => {
                self.wait_ms(*ms).await;
                Ok(StepOutput::Done)
            }
            Step::Extract { selector } => self.extract(selector).await.map(StepOutput::Extracted),
            Step::Screenshot { full_page } => self
                .screenshot(*full_page)
                .await
                .map(StepOutput::Screenshot),
        }
    }

    /// Loads `url` (`http` or `https`) and waits until the page has loaded, within the
    /// navigation timeout.
    pub async fn navigate(&self, url: &str) -> Result<(), BrowserError> {
        let action = "navigate";
        let parsed = url::Url::parse(url).map_err(|e| BrowserError::Step {
            action,
            message: format!("{url:?} is not a valid URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(BrowserError::Step {
                action,
                message: format!("{url} is not an http or https URL"),
            });
        }
        let timeout = self.options.navigation_timeout;
        // chromiumoxide's own deadline (the same length) normally ends the wait first, and so
        // also clears its pending navigation; the outer one is the backstop.
        let result = self
            .step(action, timeout + Duration::from_secs(1), url, async {
                match self.current().goto(parsed.as_str()).await {
                    Ok(_) => Ok(()),
                    Err(CdpError::Timeout) => Err(BrowserError::Timeout {
                        action,
                        after: timeout,
                        what: url.to_string(),
                    }),
                    Err(e) => Err(self.cdp(action, e)),
                }
            })
            .await;
        if matches!(result, Err(BrowserError::Timeout { .. })) {
            self.replace_page().await;
        }
        result
    }

    /// Clicks the first element matching `selector`, once it is attached, visible, not moving
    /// and not covered by another element.
    pub async fn click(&self, selector: &str) -> Result<(), BrowserError> {
        self.step(
            "click",
            self.options.step_timeout,
            selector,
            self.click_inner("click", selector),
        )
        .await
    }

    /// Replaces the content of the field matching `selector` with `text`, typed as a person's
    /// input would arrive (`input` events; any Unicode).
    pub async fn type_text(&self, selector: &str, text: &str) -> Result<(), BrowserError> {
        self.step(
            "type",
            self.options.step_timeout,
            selector,
            self.type_inner("type", selector, text),
        )
        .await
    }

    /// Waits until an element matching `selector` is attached and visible.
    pub async fn wait_for(&self, selector: &str) -> Result<(), BrowserError> {
        self.step("wait", self.options.step_timeout, selector, async {
            self.until("wait", selector, Ready::Visible)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Waits `ms` milliseconds.
    pub async fn wait_ms(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// The text of the elements matching `selector`, once at least one is attached: a string
    /// for one element, a list for several.
    pub async fn extract(&self, selector: &str) -> Result<Value, BrowserError> {
        self.step("extract", self.options.step_timeout, selector, async {
            self.until("extract", selector, Ready::Attached).await?;
            let spec = FieldSpec {
                selector: selector.to_string(),
                attribute: None,
            };
            let value = self.read_field("extract", &spec).await?;
            Ok(value)
        })
        .await
    }

    /// The fields of a `data_extraction` task, read from the page as it is now: for each name,
    /// `null` when nothing matches, a string for one element, a list for several.
    pub async fn extract_fields(
        &self,
        fields: &[(String, FieldSpec)],
    ) -> Result<Map<String, Value>, BrowserError> {
        self.step("extract", self.options.step_timeout, "the fields", async {
            let mut out = Map::new();
            for (name, spec) in fields {
                out.insert(name.clone(), self.read_field("extract", spec).await?);
            }
            Ok(out)
        })
        .await
    }

    /// A PNG of the viewport, or of the whole page.
    pub async fn screenshot(&self, full_page: bool) -> Result<Vec<u8>, BrowserError> {
        self.step("screenshot", self.options.step_timeout, "the page", async {
            let params = ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .full_page(full_page)
                .build();
            self.current()
                .screenshot(params)
                .await
                .map_err(|e| self.cdp("screenshot", e))
        })
        .await
    }

    /// The page as a model sees it: its elements with stable references, cut so that
    /// [`PageView::render`] fits in `budget` characters.
    pub async fn observe(&self, budget: usize) -> Result<PageView, BrowserError> {
        self.step("observe", self.options.step_timeout, "the page", async {
            let view: PageView = self
                .eval::<RawView>("observe", VIEW_JS.to_string())
                .await
                .map(|raw| PageView {
                    url: raw.url,
                    title: raw.title,
                    elements: raw.elements,
                    omitted: 0,
                })?;
            Ok(view.fit(budget))
        })
        .await
    }

    /// Clicks the element a page view named `reference`.
    pub async fn click_ref(&self, reference: ElementRef) -> Result<(), BrowserError> {
        let selector = reference.selector();
        self.step(
            "click",
            self.options.step_timeout,
            &reference.to_string(),
            self.click_inner("click", &selector),
        )
        .await
    }

    /// Types into the element a page view named `reference`, as [`Self::type_text`] does.
    pub async fn type_ref(&self, reference: ElementRef, text: &str) -> Result<(), BrowserError> {
        let selector = reference.selector();
        self.step(
            "type",
            self.options.step_timeout,
            &reference.to_string(),
            self.type_inner("type", &selector, text),
        )
        .await
    }

    /// Ends the session: the page is closed, and a local browser is killed (its whole process
    /// group) and its profile removed. A remote browser is left to its owner (Browserbase
    /// sessions are released by [`crate::BrowserbaseSession::close`]).
    pub async fn close(self) {
        self.stop_tasks();
        let process = self.process.lock().ok().and_then(|mut p| p.take());
        match process {
            Some(process) => process.close().await,
            None => {
                let _ = tokio::time::timeout(Duration::from_secs(5), self.current().close()).await;
            }
        }
    }

    fn stop_tasks(&self) {
        self.handler_task.abort();
        if let Some(task) = self
            .guard_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }

    async fn click_inner(&self, action: &'static str, selector: &str) -> Result<(), BrowserError> {
        let point = self.until(action, selector, Ready::Clickable).await?;
        let point = point.ok_or_else(|| BrowserError::Step {
            action,
            message: format!("{selector} has no point to click"),
        })?;
        self.current()
            .click(Point {
                x: point.0,
                y: point.1,
            })
            .await
            .map(|_| ())
            .map_err(|e| self.cdp(action, e))
    }

    async fn type_inner(
        &self,
        action: &'static str,
        selector: &str,
        text: &str,
    ) -> Result<(), BrowserError> {
        self.until(action, selector, Ready::Editable).await?;
        // `until` focused the field and selected its content; inserted text replaces it.
        self.current()
            .execute(InsertTextParams::new(text))
            .await
            .map(|_| ())
            .map_err(|e| self.cdp(action, e))
    }

    /// Polls the page until `selector` matches an element in the state `ready` asks for, and
    /// returns the point to click when that was asked. An invalid selector fails at once; a
    /// selector that never matches is failed by the step's timeout around this.
    async fn until(
        &self,
        action: &'static str,
        selector: &str,
        ready: Ready,
    ) -> Result<Option<(f64, f64)>, BrowserError> {
        let quoted = serde_json::to_string(selector).unwrap_or_default();
        let js = format!("({READY_JS})({quoted}, {:?})", ready.as_str());
        let mut last_rect: Option<Vec<f64>> = None;
        loop {
            let probe: Probe = match self.eval(action, js.clone()).await {
                Ok(p) => p,
                // A navigation replaced the document under the evaluation: look again.
                Err(BrowserError::Step { message, .. }) if message.contains("context") => {
                    Probe::default()
                }
                Err(e) => return Err(e),
            };
            if let Some(error) = probe.invalid {
                return Err(BrowserError::Step {
                    action,
                    message: format!("{selector} is not a valid CSS selector: {error}"),
                });
            }
            if probe.ok {
                // Clicking something still moving (an animation, a layout shift) would hit
                // whatever lands under the point: the element must be where it was a poll ago.
                if ready != Ready::Clickable || last_rect.as_ref() == probe.rect.as_ref() {
                    return Ok(probe.point);
                }
                last_rect = probe.rect;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn read_field(
        &self,
        action: &'static str,
        spec: &FieldSpec,
    ) -> Result<Value, BrowserError> {
        let selector = serde_json::to_string(&spec.selector).unwrap_or_default();
        let attribute = serde_json::to_string(&spec.attribute).unwrap_or_default();
        let js = format!("({READ_JS})({selector}, {attribute})");
        let read: Read = self.eval(action, js).await?;
        if let Some(error) = read.invalid {
            return Err(BrowserError::Step {
                action,
                message: format!("{} is not a valid CSS selector: {error}", spec.selector),
            });
        }
        Ok(match read.values.len() {
            0 => Value::Null,
            1 => read.values.into_iter().next().unwrap_or(Value::Null),
            _ => Value::Array(read.values),
        })
    }

    async fn eval<T: DeserializeOwned>(
        &self,
        action: &'static str,
        js: String,
    ) -> Result<T, BrowserError> {
        let result = self
            .current()
            .evaluate_expression(js)
            .await
            .map_err(|e| self.cdp(action, e))?;
        result.into_value().map_err(|e| BrowserError::Step {
            action,
            message: format!("the page answered something unexpected: {e}"),
        })
    }

    /// Runs one step within `timeout`, then reports what the address guard refused meanwhile:
    /// a refused document (a navigation, a redirect, a click's navigation) fails the step with
    /// the reason, which says more than Chromium's `net::ERR_BLOCKED_BY_CLIENT`.
    async fn step<T>(
        &self,
        action: &'static str,
        timeout: Duration,
        what: &str,
        work: impl Future<Output = Result<T, BrowserError>>,
    ) -> Result<T, BrowserError> {
        if let Some(taint) = self.guard.taint() {
            return Err(BrowserError::Blocked {
                action,
                url: taint.url,
                reason: taint.reason,
            });
        }
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(BrowserError::Timeout {
                action,
                after: timeout,
                what: what.to_string(),
            }),
        };
        let since = self
            .reported
            .swap(self.guard.blocked_count(), Ordering::SeqCst);
        if let Some(blocked) = self
            .guard
            .blocked_document_since(since)
            .or_else(|| self.guard.taint())
        {
            return Err(BrowserError::Blocked {
                action,
                url: blocked.url,
                reason: blocked.reason,
            });
        }
        result
    }

    /// Turns a DevTools error into the step's error, telling a dead browser from a failed step.
    fn cdp(&self, action: &'static str, error: CdpError) -> BrowserError {
        let exited = self
            .process
            .lock()
            .ok()
            .and_then(|mut p| p.as_mut().map(|p| p.has_exited()))
            .unwrap_or(false);
        match error {
            CdpError::Ws(_) | CdpError::ChannelSendError(_) | CdpError::NoResponse => {
                BrowserError::BrowserGone {
                    action,
                    message: error.to_string(),
                }
            }
            _ if exited => BrowserError::BrowserGone {
                action,
                message: format!("Chromium exited ({error})"),
            },
            CdpError::JavascriptException(details) => BrowserError::Step {
                action,
                message: details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or(details.text),
            },
            CdpError::Timeout => BrowserError::Timeout {
                action,
                after: self.options.navigation_timeout,
                what: "an answer from the browser".into(),
            },
            other => BrowserError::Step {
                action,
                message: other.to_string(),
            },
        }
    }
}

impl Drop for BrowserSession {
    fn drop(&mut self) {
        self.stop_tasks();
        // The process (if any) is dropped with the session's fields: its group is killed then.
    }
}

/// Opens a blank page in `browser` with the address guard installed before anything loads.
async fn open_page(
    browser: &Browser,
    options: SessionOptions,
    log: Arc<GuardLog>,
) -> Result<(Page, JoinHandle<()>), CdpError> {
    let page = browser.new_page("about:blank").await?;
    let policy = NetworkPolicy {
        allow_private: options.allow_private_networks,
    };
    let guard_task = guard::install(&page, policy, log).await?;
    Ok((page, guard_task))
}

/// What an element must be before a step acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    Attached,
    Visible,
    Clickable,
    Editable,
}

impl Ready {
    fn as_str(self) -> &'static str {
        match self {
            Self::Attached => "attached",
            Self::Visible => "visible",
            Self::Clickable => "clickable",
            Self::Editable => "editable",
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct Probe {
    ok: bool,
    #[serde(default)]
    invalid: Option<String>,
    #[serde(default)]
    point: Option<(f64, f64)>,
    #[serde(default)]
    rect: Option<Vec<f64>>,
}

#[derive(Debug, serde::Deserialize)]
struct Read {
    #[serde(default)]
    values: Vec<Value>,
    #[serde(default)]
    invalid: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct RawView {
    url: String,
    title: String,
    elements: Vec<crate::view::ViewElement>,
}

/// Looks for the element and reports whether it is ready; for a click, scrolls it into view and
/// checks that the element itself (or a child of it) is what a click at its centre would hit.
const READY_JS: &str = r#"(selector, ready) => {
  let el;
  try { el = document.querySelector(selector); } catch (e) { return { ok: false, invalid: String(e.message || e) }; }
  if (!el) return { ok: false };
  if (ready === 'attached') return { ok: true };
  const style = getComputedStyle(el);
  let r = el.getBoundingClientRect();
  if (style.visibility === 'hidden' || style.display === 'none' || r.width === 0 || r.height === 0) return { ok: false };
  if (ready === 'visible') return { ok: true };
  if (el.disabled) return { ok: false };
  if (ready === 'editable') {
    el.focus();
    if (typeof el.select === 'function') { el.select(); }
    else if (el.isContentEditable) { const range = document.createRange(); range.selectNodeContents(el); const s = getSelection(); s.removeAllRanges(); s.addRange(range); }
    return { ok: document.activeElement === el || el.contains(document.activeElement) };
  }
  el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
  r = el.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  if (!hit || !(hit === el || el.contains(hit))) return { ok: false };
  return { ok: true, point: [x, y], rect: [r.left, r.top, r.width, r.height] };
}"#;

/// Reads the text (or an attribute) of every element matching the selector.
const READ_JS: &str = r#"(selector, attribute) => {
  let els;
  try { els = Array.from(document.querySelectorAll(selector)); } catch (e) { return { values: [], invalid: String(e.message || e) }; }
  const text = (el) => (el.innerText !== undefined && el.innerText !== '' ? el.innerText : el.textContent || '').replace(/\s+/g, ' ').trim();
  return { values: els.map((el) => attribute === null ? text(el) : el.getAttribute(attribute)) };
}"#;
