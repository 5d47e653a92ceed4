//! Asking the model: OpenAI Chat Completions or Anthropic Messages, with retries on rate limits
//! and server errors, a time limit per call, and token counts for the usage report.

pub mod anthropic;
pub mod openai;
pub mod price;

use std::time::Duration;

use chrono::Utc;
use pj_core::task::{Provider, Usage};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::callback::error_chain;
use super::config::ModelConfig;
use super::log::Log;
use super::retry::{backoff, is_retryable, retry_after};

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
}

impl LlmError {
    fn is_retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => {
                StatusCode::from_u16(*status).is_ok_and(is_retryable)
            }
            LlmError::Network(_) => true,
            _ => false,
        }
    }
}

/// A client for the configured model.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    config: ModelConfig,
}

impl ModelClient {
    pub fn new(http: reqwest::Client, config: ModelConfig) -> Self {
        ModelClient { http, config }
    }

    /// `provider/model`, for notes and the pull request.
    pub fn label(&self) -> String {
        format!("{}/{}", self.config.provider.as_str(), self.config.name)
    }

    /// The model's name as configured.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The usage of one reply, priced.
    pub fn usage_of(&self, reply: &Reply) -> Usage {
        Usage {
            input_tokens: reply.input_tokens,
            output_tokens: reply.output_tokens,
            cost_usd: price::cost(&self.config.name, reply.input_tokens, reply.output_tokens),
            model: Some(self.config.name.clone()),
        }
    }

    /// Asks once, trying again after rate limits and server errors (never after a timeout: a
    /// second wait as long would eat the attempt's time). No wait runs past `until`.
    pub async fn complete(
        &self,
        conversation: &Conversation,
        log: &Log,
        until: Instant,
    ) -> Result<Reply, LlmError> {
        let max = self.config.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let (error, asked) = match self.send(conversation).await {
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
            log.system(format!(
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
        conversation: &Conversation,
    ) -> Result<Reply, (LlmError, Option<Duration>)> {
        let c = &self.config;
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
    fn error_bodies_give_their_message() {
        let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(api_error_message(body), "Overloaded");
        assert_eq!(api_error_message("bad gateway"), "bad gateway");
    }
}
