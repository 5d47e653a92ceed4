//! The core's [`PageModel`] port: the browser kinds' plain-words steps ask the task's model (or
//! the deployment's default) through the same client as the runner's agent, with the same
//! retries, provider fallback and prices. The keys are read from the deployment's secrets at
//! each question (the source caches them), so `pj serve` and the Lambda functions build it alike.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pj_core::kinds::browser::{ModelAnswer, PageModel};
use pj_core::ports::{SecretSource, Secrets};
use pj_core::task::{ModelSpec, Provider};
use tokio::time::Instant;

use crate::{Conversation, ModelClient, ModelConfig};

/// OpenAI's API, unless `OPENAI_BASE_URL` says otherwise.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Anthropic's API, unless `ANTHROPIC_BASE_URL` says otherwise.
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// Answers to a page are short: a reference, or the extracted JSON.
const MAX_OUTPUT_TOKENS: u32 = 4_096;
/// Tries of one call before it fails (or falls back).
const MAX_ATTEMPTS: u32 = 3;

/// The models of a deployment.
pub struct PageModels {
    http: reqwest::Client,
    secrets: Arc<dyn SecretSource>,
    /// `OPENAI_BASE_URL`: given, a keyless OpenAI-compatible server there may be asked.
    openai_base_url: Option<String>,
    anthropic_base_url: Option<String>,
    default: ModelSpec,
    /// How long one call may take.
    timeout: Duration,
}

impl PageModels {
    pub fn new(
        http: reqwest::Client,
        secrets: Arc<dyn SecretSource>,
        openai_base_url: Option<String>,
        anthropic_base_url: Option<String>,
        default: ModelSpec,
        timeout: Duration,
    ) -> PageModels {
        PageModels {
            http,
            secrets,
            openai_base_url,
            anthropic_base_url,
            default,
            timeout,
        }
    }

    /// `provider/name` at its endpoint, when the deployment can ask it: with the provider's
    /// key, or for OpenAI at a base URL the operator gave (a local compatible server).
    fn config(&self, secrets: &Secrets, provider: Provider, name: &str) -> Option<ModelConfig> {
        let (key, base, default) = match provider {
            Provider::Openai => (
                secrets.openai_api_key.clone(),
                self.openai_base_url.as_deref(),
                DEFAULT_OPENAI_BASE_URL,
            ),
            Provider::Anthropic => (
                secrets.anthropic_api_key.clone(),
                self.anthropic_base_url.as_deref(),
                DEFAULT_ANTHROPIC_BASE_URL,
            ),
        };
        let keyless_ok = provider == Provider::Openai && base.is_some();
        if key.is_none() && !keyless_ok {
            return None;
        }
        Some(ModelConfig {
            provider,
            name: name.to_owned(),
            base_url: base.unwrap_or(default).trim_end_matches('/').to_owned(),
            api_key: key,
            timeout: self.timeout,
            max_output_tokens: MAX_OUTPUT_TOKENS,
            max_attempts: MAX_ATTEMPTS,
        })
    }
}

#[async_trait]
impl PageModel for PageModels {
    async fn ask(
        &self,
        model: Option<&ModelSpec>,
        system: &str,
        prompt: &str,
        note: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ModelAnswer, String> {
        let secrets = self
            .secrets
            .secrets()
            .await
            .map_err(|_| "the deployment's secrets could not be read".to_owned())?;
        let spec = model.unwrap_or(&self.default);
        let primary = self
            .config(&secrets, spec.provider, &spec.name)
            .ok_or_else(|| format!("no key for {} is configured", spec.provider.as_str()))?;
        // The other provider's default model, only with a key of its own (as the runner).
        let other = spec.provider.other();
        let fallback = self
            .config(&secrets, other, other.default_model())
            .filter(|c| c.api_key.is_some());
        let client = ModelClient::new(self.http.clone(), primary, fallback);
        let conversation = Conversation::new(system.to_owned(), prompt.to_owned());
        let until = Instant::now() + self.timeout * (2 * MAX_ATTEMPTS);
        let reply = client
            .complete(&conversation, note, until)
            .await
            .map_err(|e| e.to_string())?;
        let usage = client.usage_of(&reply);
        Ok(ModelAnswer {
            text: reply.text,
            usage,
        })
    }
}
