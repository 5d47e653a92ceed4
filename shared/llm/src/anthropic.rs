//! Anthropic Messages (`POST {base}/v1/messages`).

use serde::{Deserialize, Serialize};

use super::{Conversation, Role};

/// The API version the request and response shapes follow.
pub const VERSION: &str = "2023-06-01";

#[derive(Debug, Serialize)]
pub struct Request<'a> {
    pub model: &'a str,
    pub system: &'a str,
    pub messages: Vec<Message<'a>>,
    pub max_tokens: u32,
    pub temperature: f32,
}

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: &'static str,
    pub content: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: Option<UsageWire>,
}

#[derive(Debug, Deserialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UsageWire {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

/// The request body for `conversation`.
pub fn request<'a>(model: &'a str, conversation: &'a Conversation, max_tokens: u32) -> Request<'a> {
    Request {
        model,
        system: &conversation.system,
        messages: conversation
            .messages
            .iter()
            .map(|m| Message {
                role: match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                },
                content: &m.content,
            })
            .collect(),
        max_tokens,
        temperature: 0.0,
    }
}

impl Response {
    /// The text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect::<Vec<_>>()
            .join("")
    }
}
