//! Asking the model: OpenAI Chat Completions or Anthropic Messages, with retries on rate limits
//! and server errors, a time limit per call, and token counts for the usage report. When the
//! task's provider keeps failing, the other provider's default model answers instead (OpenAI
//! first, Anthropic as fallback, and the other way round), for the rest of the attempt.

pub mod anthropic;
pub mod openai;
pub mod page;
pub mod price;
pub mod retry;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use pj_core::task::{Provider, Usage};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::retry::{backoff, is_retryable, retry_after};

/// Where a line for the caller's log goes (the runner's log, a task's attempt log).
pub type Note<'a> = &'a (dyn Fn(String) + Send + Sync);

/// The model a call asks.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub provider: Provider,
    pub name: String,
    /// `OPENAI_BASE_URL` or `ANTHROPIC_BASE_URL`, without a trailing slash.
    pub base_url: String,
    /// Optional for OpenAI-compatible local servers.
    pub api_key: Option<SecretString>,
    pub timeout: Duration,
    pub max_output_tokens: u32,
    pub max_attempts: u32,
}

impl ModelConfig {
    /// `provider/name`, for the log, the commit and the pull request.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider.as_str(), self.name)
    }
}

/// An error with its causes, as one line; reqwest hides the useful part in `source()`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// The system prompt and the turns so far; each round of feedback adds two.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub system: String,
    pub messages: Vec<Message>,
}

impl Conversation {
    /// A conversation that starts with the task.
    pub fn new(system: String, first: String) -> Self {
        Conversation {
            system,
            messages: vec![Message {
                role: Role::User,
                content: first,
            }],
        }
    }

    /// Adds the model's reply and what we answer to it.
    pub fn follow_up(&mut self, reply: String, answer: String) {
        self.messages.push(Message {
            role: Role::Assistant,
            content: reply,
        });
        self.messages.push(Message {
            role: Role::User,
            content: answer,
        });
    }
}

/// What the model said, and what it cost.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The model that answered, as configured (the fallback's, after a fallback).
    pub model: String,
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The output hit the token limit, so the edit may be cut off.
    pub truncated: bool,
}

/// Why no reply came.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer within {0} s")]
    Timeout(u64),
    #[error("the model API answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("could not reach the model API: {0}")]
    Network(String),
    #[error("the model API's answer was not understood: {0}")]
    BadResponse(String),
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<LlmError> },
    #[error("{first}; the fallback {fallback} failed too: {second}")]
    FallbackFailed {
        first: Box<LlmError>,
        fallback: String,
        second: Box<LlmError>,
    },
}

impl LlmError {
    /// Rate limits (429), time-outs the server reports (408), server errors and network
    /// errors may pass: the same call is tried again.
    fn is_retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => StatusCode::from_u16(*status)
                .is_ok_and(|s| s == StatusCode::REQUEST_TIMEOUT || is_retryable(s)),
            LlmError::Network(_) => true,
            _ => false,
        }
    }

    /// The provider itself is in trouble (what may pass did not, or it did not answer in
    /// time), so the other provider may answer. A request the provider refuses (a 4xx other
    /// than 408 and 429: a bad request, a bad key) or an answer not understood is the
    /// request's fault, and would be the fallback's too.
    pub fn warrants_fallback(&self) -> bool {
        match self {
            LlmError::Timeout(_) => true,
            LlmError::GaveUp { last, .. } => last.warrants_fallback(),
            LlmError::Status { .. } | LlmError::Network(_) => self.is_retryable(),
            LlmError::BadResponse(_) | LlmError::FallbackFailed { .. } => false,
        }
    }
}

/// A client for the task's model, with the other provider's default model to fall back on.
pub struct ModelClient {
    http: reqwest::Client,
    primary: ModelConfig,
    fallback: Option<ModelConfig>,
    /// Set when the primary failed and the fallback was asked: every later call of the
    /// attempt goes to the fallback, so one conversation does not hop between providers.
    on_fallback: AtomicBool,
}

impl ModelClient {
    pub fn new(http: reqwest::Client, primary: ModelConfig, fallback: Option<ModelConfig>) -> Self {
        ModelClient {
            http,
            primary,
            fallback,
            on_fallback: AtomicBool::new(false),
        }
    }

    /// The model calls go to now.
    fn active(&self) -> &ModelConfig {
        match &self.fallback {
            Some(fallback) if self.on_fallback.load(Ordering::Relaxed) => fallback,
            _ => &self.primary,
        }
    }

    /// The name of the model calls go to now.
    pub fn active_name(&self) -> &str {
        &self.active().name
    }

    /// `provider/model` of the model calls go to now, for notes.
    pub fn label(&self) -> String {
        self.active().label()
    }

    /// `provider/model` of the fallback, once calls went to it.
    pub fn fell_back_to(&self) -> Option<String> {
        self.on_fallback
            .load(Ordering::Relaxed)
            .then(|| self.fallback.as_ref().map(ModelConfig::label))
            .flatten()
    }

    /// The model for the commit and the pull request: the one that answered, and after a
    /// fallback the one that failed.
    pub fn described(&self) -> String {
        match self.fell_back_to() {
            Some(fallback) => format!("{fallback} (fallback: {} failed)", self.primary.label()),
            None => self.primary.label(),
        }
    }

    /// The usage of one reply, priced as the model that gave it.
    pub fn usage_of(&self, reply: &Reply) -> Usage {
        Usage {
            input_tokens: reply.input_tokens,
            output_tokens: reply.output_tokens,
            cost_usd: price::cost(&reply.model, reply.input_tokens, reply.output_tokens),
            model: Some(reply.model.clone()),
        }
    }

    /// Asks the active model; when the task's own provider keeps failing (see
    /// [`LlmError::warrants_fallback`]) and there is a fallback, asks the fallback instead, and
    /// keeps to it for the rest of the attempt. One log line says so.
    pub async fn complete(
        &self,
        conversation: &Conversation,
        note: Note<'_>,
        until: Instant,
    ) -> Result<Reply, LlmError> {
        if self.fell_back_to().is_some() {
            return self
                .complete_with(self.active(), conversation, note, until)
                .await;
        }
        let first = match self
            .complete_with(&self.primary, conversation, note, until)
            .await
        {
            Ok(reply) => return Ok(reply),
            Err(e) => e,
        };
        let Some(fallback) = self.fallback.as_ref().filter(|_| first.warrants_fallback()) else {
            return Err(first);
        };
        note(format!(
            "{} keeps failing ({first}); asking {} instead for the rest of this attempt",
            self.primary.label(),
            fallback.label()
        ));
        self.on_fallback.store(true, Ordering::Relaxed);
        self.complete_with(fallback, conversation, note, until)
            .await
            .map_err(|second| LlmError::FallbackFailed {
                first: Box::new(first),
                fallback: fallback.label(),
                second: Box::new(second),
            })
    }

    /// Asks `config`'s model once, trying again after rate limits and server errors (never
    /// after a timeout: a second wait as long would eat the attempt's time). No wait runs past
    /// `until`.
    async fn complete_with(
        &self,
        config: &ModelConfig,
        conversation: &Conversation,
        note: Note<'_>,
        until: Instant,
    ) -> Result<Reply, LlmError> {
        let max = config.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let (error, asked) = match self.send(config, conversation).await {
                Ok(reply) => return Ok(reply),
                Err(failed) => failed,
            };
            if !error.is_retryable() {
                return Err(error);
            }
            if attempt >= max {
                return Err(LlmError::GaveUp {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let wait = asked.unwrap_or_else(|| backoff(attempt - 1, BACKOFF_BASE, BACKOFF_CAP));
            if Instant::now() + wait >= until {
                return Err(error);
            }
            note(format!(
                "{error}; asking again in {:.1} s (attempt {} of {max})",
                wait.as_secs_f64(),
                attempt + 1
            ));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One request. On failure, also the wait the server asked for.
    async fn send(
        &self,
        c: &ModelConfig,
        conversation: &Conversation,
    ) -> Result<Reply, (LlmError, Option<Duration>)> {
        let request = match c.provider {
            Provider::Openai => {
                let body = openai::request(&c.name, conversation, c.max_output_tokens);
                let mut r = self
                    .http
                    .post(format!("{}/chat/completions", c.base_url))
                    .json(&body);
                if let Some(key) = &c.api_key {
                    r = r.bearer_auth(key.expose_secret());
                }
                r
            }
            Provider::Anthropic => {
                let body = anthropic::request(&c.name, conversation, c.max_output_tokens);
                let mut r = self
                    .http
                    .post(format!("{}/v1/messages", c.base_url))
                    .header("anthropic-version", anthropic::VERSION)
                    .json(&body);
                if let Some(key) = &c.api_key {
                    r = r.header("x-api-key", key.expose_secret());
                }
                r
            }
        };
        let timeout_secs = c.timeout.as_secs();
        let response = request
            .timeout(c.timeout)
            .send()
            .await
            .map_err(|e| (transport_error(&e, timeout_secs), None))?;
        let status = response.status();
        if !status.is_success() {
            let asked = retry_after(response.headers(), Utc::now());
            let body = response.text().await.unwrap_or_default();
            let message = api_error_message(&body);
            return Err((
                LlmError::Status {
                    status: status.as_u16(),
                    message,
                },
                asked,
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| (transport_error(&e, timeout_secs), None))?;
        match c.provider {
            Provider::Openai => parse_openai(&body),
            Provider::Anthropic => parse_anthropic(&body),
        }
        .map(|reply| Reply {
            model: c.name.clone(),
            ..reply
        })
        .map_err(|e| (e, None))
    }
}

fn transport_error(e: &reqwest::Error, timeout_secs: u64) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout(timeout_secs)
    } else {
        LlmError::Network(error_chain(e))
    }
}

fn parse_openai(body: &[u8]) -> Result<Reply, LlmError> {
    let response: openai::Response =
        serde_json::from_slice(body).map_err(|e| LlmError::BadResponse(e.to_string()))?;
    let choice = response
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::BadResponse("no choices in the answer".into()))?;
    let text = match (choice.message.content, choice.message.refusal) {
        (Some(text), _) if !text.is_empty() => text,
        (_, Some(refusal)) => {
            return Err(LlmError::BadResponse(format!(
                "the model refused: {refusal}"
            )));
        }
        _ => return Err(LlmError::BadResponse("the answer has no content".into())),
    };
    let (input_tokens, output_tokens) = response
        .usage
        .map(|u| (u.prompt_tokens, u.completion_tokens))
        .unwrap_or((0, 0));
    Ok(Reply {
        model: String::new(),
        text,
        input_tokens,
        output_tokens,
        truncated: choice.finish_reason.as_deref() == Some("length"),
    })
}

fn parse_anthropic(body: &[u8]) -> Result<Reply, LlmError> {
    let response: anthropic::Response =
        serde_json::from_slice(body).map_err(|e| LlmError::BadResponse(e.to_string()))?;
    let text = response.text();
    if text.is_empty() {
        return Err(LlmError::BadResponse("the answer has no text".into()));
    }
    let (input_tokens, output_tokens) = response
        .usage
        .as_ref()
        .map(|u| (u.input_tokens, u.output_tokens))
        .unwrap_or((0, 0));
    Ok(Reply {
        model: String::new(),
        text,
        input_tokens,
        output_tokens,
        truncated: response.stop_reason.as_deref() == Some("max_tokens"),
    })
}

/// The `error.message` both providers put in their error bodies, else the start of the body.
/// The caller's log and events scrub it (an API may echo a key back).
fn api_error_message(body: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(|m| m.as_str());
    let text = message.unwrap_or(body).trim();
    let cut: String = text.chars().take(300).collect();
    if cut.is_empty() {
        "(no details)".to_owned()
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openai_answer_gives_text_and_tokens() {
        let body = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,
            "message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],
            "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let reply = parse_openai(body).unwrap();
        assert_eq!(reply.text, "hi");
        assert_eq!((reply.input_tokens, reply.output_tokens), (12, 3));
        assert!(reply.truncated);
    }

    #[test]
    fn an_anthropic_answer_joins_its_text_blocks() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant",
            "content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
            "stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":2}}"#;
        let reply = parse_anthropic(body).unwrap();
        assert_eq!(reply.text, "ab");
        assert_eq!((reply.input_tokens, reply.output_tokens), (7, 2));
        assert!(!reply.truncated);
    }

    #[test]
    fn a_provider_in_trouble_warrants_a_fallback_and_a_refused_request_does_not() {
        let status = |status| LlmError::Status {
            status,
            message: "x".into(),
        };
        let gave_up = |last| LlmError::GaveUp {
            attempts: 4,
            last: Box::new(last),
        };
        for e in [
            gave_up(status(503)),
            gave_up(status(529)),
            gave_up(status(429)),
            status(408),
            status(500),
            LlmError::Timeout(180),
            gave_up(LlmError::Network("reset".into())),
        ] {
            assert!(e.warrants_fallback(), "{e}");
        }
        for e in [
            status(400),
            status(401),
            status(403),
            status(404),
            status(422),
            LlmError::BadResponse("no choices".into()),
        ] {
            assert!(!e.warrants_fallback(), "{e}");
        }
    }

    #[test]
    fn error_bodies_give_their_message() {
        let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(api_error_message(body), "Overloaded");
        assert_eq!(api_error_message("bad gateway"), "bad gateway");
    }
}
