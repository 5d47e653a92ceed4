//! [`SecretSource`] on Secrets Manager: one JSON secret, read once per execution environment
//! and refreshed after a TTL.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};
use pj_core::ports::{SecretSource, Secrets};
use pj_core::signing::MasterSecret;
use pj_core::time::{Clock, SystemClock};
use secrecy::SecretString;
use tokio::sync::Mutex;

/// How long a read secret is served before it is read again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a cached secret is still served while reading it again fails.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(60 * 60);
/// After a failed refresh, callers get the cached value without a new try for this long, so
/// an outage of Secrets Manager does not turn every request into a slow failing call.
const RETRY_AFTER: chrono::Duration = chrono::Duration::seconds(10);

/// The deployment's secrets from one Secrets Manager secret holding a JSON object:
/// `webhook_master_secret`, `github_token`, `openai_api_key`, `anthropic_api_key`, and any
/// other string field into [`Secrets::extra`] (e.g. `github_app_id`,
/// `github_app_private_key`, `daytona_api_key`). Empty strings count as absent.
///
/// Concurrent callers share one read. When a refresh fails, the cached value is served (with a
/// warning in the log) while it is younger than the hard limit; after that the error comes
/// through. No secret value is ever put in an error or a log line.
///
/// Ages are counted on the core's [`Clock`] (the system clock unless [`Self::with_clock`]
/// says otherwise), so tests move time instead of sleeping.
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
    ttl: Duration,
    max_stale: Duration,
    clock: Arc<dyn Clock>,
    cache: Mutex<Cache>,
}

impl fmt::Debug for SecretsManagerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerSource")
            .field("secret_id", &self.secret_id)
            .field("ttl", &self.ttl)
            .field("max_stale", &self.max_stale)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Cache {
    value: Option<(Arc<Secrets>, DateTime<Utc>)>,
    /// No refresh is tried before this, after a failed one.
    quiet_until: Option<DateTime<Utc>>,
}

/// How long after `then` it is `now`; zero when the clock went back.
fn elapsed(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or_default()
}

impl SecretsManagerSource {
    pub fn new(client: Client, secret_id: impl Into<String>) -> SecretsManagerSource {
        SecretsManagerSource {
            client,
            secret_id: secret_id.into(),
            ttl: DEFAULT_TTL,
            max_stale: DEFAULT_MAX_STALE,
            clock: Arc::new(SystemClock),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The clock that ages the cached value (the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> SecretsManagerSource {
        self.clock = clock;
        self
    }

    /// How long a read value is served before the next read.
    pub fn with_ttl(mut self, ttl: Duration) -> SecretsManagerSource {
        self.ttl = ttl;
        self
    }

    /// How old a cached value may get while refreshes fail (at least the TTL).
    pub fn with_max_stale(mut self, max_stale: Duration) -> SecretsManagerSource {
        self.max_stale = max_stale;
        self
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    async fn fetch(&self) -> anyhow::Result<Secrets> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .with_context(|| format!("GetSecretValue of {} failed", self.secret_id))?;
        let raw = output
            .secret_string()
            .ok_or_else(|| anyhow!("the secret {} has no string value", self.secret_id))?;
        parse_secrets(raw).with_context(|| format!("the secret {} is unusable", self.secret_id))
    }
}

/// Parses the secret's JSON. Errors name fields, never values.
fn parse_secrets(raw: &str) -> anyhow::Result<Secrets> {
    // Parsed as a generic value first: its syntax errors say where, not what. The object's
    // values are then taken field by field.
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| anyhow!("it is not JSON (line {}, column {})", e.line(), e.column()))?;
    let serde_json::Value::Object(fields) = value else {
        bail!("it is not a JSON object");
    };
    let mut secrets = Secrets::default();
    let mut extra = BTreeMap::new();
    for (name, value) in fields {
        let serde_json::Value::String(text) = value else {
            tracing::warn!(field = %name, "a secret field that is not a string is ignored");
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let text = SecretString::from(text);
        match name.as_str() {
            "webhook_master_secret" => {
                secrets.webhook_master = Some(
                    MasterSecret::new(text)
                        .map_err(|why| anyhow!("webhook_master_secret: {why}"))?,
                );
            }
            "github_token" => secrets.github_token = Some(text),
            "openai_api_key" => secrets.openai_api_key = Some(text),
            "anthropic_api_key" => secrets.anthropic_api_key = Some(text),
            _ => {
                extra.insert(name, text);
            }
        }
    }
    secrets.extra = extra;
    Ok(secrets)
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn secrets(&self) -> anyhow::Result<Arc<Secrets>> {
        // Held across the read, so callers arriving meanwhile wait for it and share it.
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some((value, read_at)) = &cache.value {
            let age = elapsed(now, *read_at);
            let quiet = cache.quiet_until.is_some_and(|until| now < until);
            if age < self.ttl || (quiet && age < self.max_stale.max(self.ttl)) {
                return Ok(value.clone());
            }
        }
        match self.fetch().await {
            Ok(secrets) => {
                let secrets = Arc::new(secrets);
                cache.value = Some((secrets.clone(), self.clock.now()));
                cache.quiet_until = None;
                Ok(secrets)
            }
            Err(e) => {
                let cached = cache
                    .value
                    .clone()
                    .filter(|(_, read_at)| elapsed(now, *read_at) < self.max_stale);
                let Some((value, read_at)) = cached else {
                    return Err(e);
                };
                let error = format!("{e:#}");
                tracing::warn!(
                    secret_id = %self.secret_id,
                    age_secs = elapsed(now, read_at).as_secs(),
                    error = %error,
                    "could not refresh the secrets; serving the cached ones"
                );
                cache.quiet_until = Some(now + RETRY_AFTER);
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn known_fields_should_be_typed_and_others_extra() {
        let s = parse_secrets(
            r#"{"webhook_master_secret": "a-master-secret-of-some-length",
                "github_token": "ghp_x", "openai_api_key": "", "daytona_api_key": "d",
                "github_app_id": "42", "not_a_string": 5}"#,
        )
        .unwrap();
        assert!(s.webhook_master.is_some());
        assert_eq!(s.github_token.as_ref().unwrap().expose_secret(), "ghp_x");
        assert!(
            s.openai_api_key.is_none(),
            "an empty value counts as absent"
        );
        assert!(s.anthropic_api_key.is_none());
        assert_eq!(
            s.extra.keys().collect::<Vec<_>>(),
            ["daytona_api_key", "github_app_id"]
        );
    }

    #[test]
    fn errors_should_never_show_a_value() {
        for raw in [
            r#"{"github_token": "ghp_SECRETVALUE""#,
            r#""ghp_SECRETVALUE""#,
            r#"{"webhook_master_secret": "SECRETVALUE"}"#,
        ] {
            let err = format!("{:#}", parse_secrets(raw).unwrap_err());
            assert!(
                !err.contains("SECRETVALUE"),
                "the error shows the value: {err}"
            );
        }
    }
}
