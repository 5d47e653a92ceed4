//! Signed callbacks to the server: events to `WEBHOOK_URL`, log batches to `LOGS_URL`.
//!
//! A delivery keeps its `webhook-id` through its retries, so the server applies it once however
//! often it arrives; each try is signed again with a fresh timestamp so a long retry stays within
//! the receiver's 300 s window.

use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use pj_core::agent::AgentMetadata;
use pj_core::ids::WebhookId;
use pj_core::signing::signed_headers;
use pj_core::task::{TaskError, Usage};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::time::Instant;

use super::config::Reporting;
use super::scrub::Scrubber;
use pj_llm::error_chain;
use pj_llm::retry::{backoff, is_retryable, retry_after};

/// How long one callback request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The server cuts error messages at 4,000 characters; stay well inside it.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// The type of a runner event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Started,
    Progress,
    Completed,
    Failed,
    NeedsReview,
}

impl EventKind {
    /// The contract's name of the event.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "task.started",
            EventKind::Progress => "task.progress",
            EventKind::Completed => "task.completed",
            EventKind::Failed => "task.failed",
            EventKind::NeedsReview => "task.needs_review",
        }
    }
}

/// One runner event, without the addressing the sender adds.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub message: Option<String>,
    pub branch: Option<String>,
    pub pr_url: Option<String>,
    pub error: Option<TaskError>,
    pub usage: Option<Usage>,
    /// What the agent did; on final events.
    pub metadata: Option<AgentMetadata>,
}

impl Event {
    /// An event of `kind` with nothing else set.
    pub fn new(kind: EventKind) -> Self {
        Event {
            kind,
            message: None,
            branch: None,
            pr_url: None,
            error: None,
            usage: None,
            metadata: None,
        }
    }

    /// Sets the human-readable note.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

#[derive(Serialize)]
struct EventWire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    task_id: &'a str,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pr_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<TaskError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a AgentMetadata>,
}

/// One log line as the contract sends it.
#[derive(Debug, Clone, Serialize)]
pub struct WireLine {
    pub seq: u64,
    pub ts: String,
    pub stream: &'static str,
    pub text: String,
}

#[derive(Serialize)]
struct LogBatchWire<'a> {
    task_id: &'a str,
    attempt: u32,
    lines: &'a [WireLine],
}

#[derive(Serialize)]
struct ArtifactWire<'a> {
    task_id: &'a str,
    attempt: u32,
    name: &'a str,
    content_base64: String,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A 2xx answer.
    Delivered,
    /// `409`: the attempt was cancelled or superseded; the run should stop quietly.
    Superseded,
    /// Another 4xx: a bug on one side; trying again would not help.
    Rejected { status: u16, detail: String },
    /// Every try failed (network, 5xx, 429) or time ran out.
    GaveUp { detail: String },
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Persistence {
    pub max_tries: u32,
    pub base: Duration,
    pub cap: Duration,
    /// No try starts after this.
    pub until: Option<Instant>,
}

impl Persistence {
    /// For the events that matter (started, final): about half a minute of tries.
    pub fn patient(until: Option<Instant>) -> Self {
        Persistence {
            max_tries: 7,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            until,
        }
    }

    /// For progress notes: a hiccup must not hold up the work.
    pub fn brief() -> Self {
        Persistence {
            max_tries: 2,
            base: Duration::from_millis(300),
            cap: Duration::from_secs(1),
            until: None,
        }
    }
}

/// Signs and sends callbacks for one attempt.
#[derive(Debug, Clone)]
pub struct Callbacks {
    http: reqwest::Client,
    reporting: Reporting,
    scrubber: Scrubber,
}

impl Callbacks {
    pub fn new(http: reqwest::Client, reporting: Reporting, scrubber: Scrubber) -> Self {
        Callbacks {
            http,
            reporting,
            scrubber,
        }
    }

    /// The attempt the callbacks report for.
    pub fn attempt(&self) -> pj_core::ids::Attempt {
        self.reporting.attempt
    }

    /// Whether log batches have somewhere to go.
    pub fn has_logs_url(&self) -> bool {
        self.reporting.logs_url.is_some()
    }

    /// Sends one event; `note` hears about each failed try.
    pub async fn send_event(
        &self,
        event: &Event,
        persistence: Persistence,
        note: &(dyn Fn(String) + Send + Sync),
    ) -> Delivery {
        let wire = EventWire {
            kind: event.kind.as_str(),
            task_id: self.reporting.task_id.as_str(),
            attempt: self.reporting.attempt.0,
            message: event.message.as_deref().map(|m| self.clean(m)),
            branch: event.branch.as_deref(),
            pr_url: event.pr_url.as_deref(),
            error: event.error.as_ref().map(|e| TaskError {
                code: e.code.clone(),
                message: self.clean(&e.message),
            }),
            usage: event.usage.as_ref(),
            metadata: event.metadata.as_ref(),
        };
        let body = match serde_json::to_vec(&wire) {
            Ok(body) => body,
            Err(e) => {
                return Delivery::Rejected {
                    status: 0,
                    detail: format!("could not encode the event: {e}"),
                };
            }
        };
        let url = self.reporting.webhook_url.clone();
        self.deliver(&url, body, persistence, note).await
    }

    /// Sends one log batch (already scrubbed and cut by the log).
    pub async fn send_logs(
        &self,
        lines: &[WireLine],
        persistence: Persistence,
        note: &(dyn Fn(String) + Send + Sync),
    ) -> Delivery {
        let Some(url) = self.reporting.logs_url.clone() else {
            return Delivery::Delivered;
        };
        let wire = LogBatchWire {
            task_id: self.reporting.task_id.as_str(),
            attempt: self.reporting.attempt.0,
            lines,
        };
        match serde_json::to_vec(&wire) {
            Ok(body) => self.deliver(&url, body, persistence, note).await,
            Err(e) => Delivery::Rejected {
                status: 0,
                detail: format!("could not encode the log batch: {e}"),
            },
        }
    }

    /// Keeps a text of this attempt as the artifact `name` (`{WEBHOOK_URL}/artifacts`), with
    /// the secrets this run knows scrubbed as in the log.
    pub async fn send_text_artifact(
        &self,
        name: &str,
        text: &str,
        persistence: Persistence,
        note: &(dyn Fn(String) + Send + Sync),
    ) -> Delivery {
        let mut url = self.reporting.webhook_url.clone();
        url.path_segments_mut()
            .map(|mut segments| {
                segments.pop_if_empty().push("artifacts");
            })
            .expect("WEBHOOK_URL is an http(s) URL");
        let wire = ArtifactWire {
            task_id: self.reporting.task_id.as_str(),
            attempt: self.reporting.attempt.0,
            name,
            content_base64: base64::engine::general_purpose::STANDARD
                .encode(self.scrubber.scrub(text).as_bytes()),
        };
        match serde_json::to_vec(&wire) {
            Ok(body) => self.deliver(&url, body, persistence, note).await,
            Err(e) => Delivery::Rejected {
                status: 0,
                detail: format!("could not encode the artifact: {e}"),
            },
        }
    }

    fn clean(&self, text: &str) -> String {
        self.scrubber
            .scrub(text)
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .collect()
    }

    async fn deliver(
        &self,
        url: &Url,
        body: Vec<u8>,
        persistence: Persistence,
        note: &(dyn Fn(String) + Send + Sync),
    ) -> Delivery {
        let id = WebhookId::generate();
        let mut tries = 0;
        loop {
            tries += 1;
            let timestamp = Utc::now().timestamp();
            let mut request = self
                .http
                .post(url.clone())
                .timeout(REQUEST_TIMEOUT)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (name, value) in signed_headers(&self.reporting.secret, &id, timestamp, &body) {
                request = request.header(name, value);
            }
            let (detail, asked_wait) = match request.body(body.clone()).send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        return Delivery::Delivered;
                    }
                    if status == StatusCode::CONFLICT {
                        return Delivery::Superseded;
                    }
                    let wait = retry_after(response.headers(), Utc::now());
                    let text = response.text().await.unwrap_or_default();
                    let detail = format!("HTTP {}: {}", status.as_u16(), self.snippet(&text));
                    if !is_retryable(status) {
                        return Delivery::Rejected {
                            status: status.as_u16(),
                            detail,
                        };
                    }
                    (detail, wait)
                }
                Err(e) => (self.scrubber.scrub(&error_chain(&e)), None),
            };
            let wait =
                asked_wait.unwrap_or_else(|| backoff(tries - 1, persistence.base, persistence.cap));
            let out_of_time = persistence
                .until
                .is_some_and(|until| Instant::now() + wait >= until);
            if tries >= persistence.max_tries || out_of_time {
                return Delivery::GaveUp {
                    detail: format!("{detail} (after {tries} tries)"),
                };
            }
            note(format!(
                "callback to {} failed ({detail}); trying again in {} ms",
                url.path(),
                wait.as_millis()
            ));
            tokio::time::sleep(wait).await;
        }
    }

    fn snippet(&self, text: &str) -> String {
        let text: String = text.chars().take(300).collect();
        self.scrubber.scrub(text.trim())
    }
}
