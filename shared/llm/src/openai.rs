//! OpenAI Chat Completions (`POST {base}/chat/completions`), which vLLM, Ollama and llama.cpp
//! also serve.

use serde::{Deserialize, Serialize};

use super::{Conversation, Role};

#[derive(Debug, Serialize)]
pub struct Request<'a> {
    pub model: &'a str,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: &'static str,
    pub content: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<UsageWire>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    pub message: ChoiceMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ChoiceMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UsageWire {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The o-series and GPT-5 reasoning models take `max_completion_tokens` and only their default
/// temperature; everything else (and every OpenAI-compatible server) takes the classic fields.
fn is_reasoning_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m);
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|p| m == *p || m.starts_with(&format!("{p}-")))
}

/// The request body for `conversation`.
pub fn request<'a>(model: &'a str, conversation: &'a Conversation, max_tokens: u32) -> Request<'a> {
    let mut messages = vec![Message {
        role: "system",
        content: &conversation.system,
    }];
    messages.extend(conversation.messages.iter().map(|m| Message {
        role: match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        },
        content: &m.content,
    }));
    if is_reasoning_model(model) {
        Request {
            model,
            messages,
            temperature: None,
            max_tokens: None,
            max_completion_tokens: Some(max_tokens),
        }
    } else {
        Request {
            model,
            messages,
            temperature: Some(0.0),
            max_tokens: Some(max_tokens),
            max_completion_tokens: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_models_get_max_completion_tokens_and_no_temperature() {
        let c = Conversation::new("s".into(), "u".into());
        let r = request("o3-mini", &c, 100);
        assert_eq!(r.max_completion_tokens, Some(100));
        assert_eq!(r.temperature, None);
        let r = request("gpt-4.1", &c, 100);
        assert_eq!(r.max_tokens, Some(100));
        assert_eq!(r.temperature, Some(0.0));
        let r = request("omni-local", &c, 100);
        assert_eq!(r.max_tokens, Some(100));
    }
}
