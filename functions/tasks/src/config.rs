//! What `tasks` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    /// With `PJ_ALLOW_PRIVATE_NETWORKS` (the address guard), `GHL_API_URL`,
    /// `GHL_LOCATION_ID`, `PJ_MESSAGE_RETRY_SECS`, and for the browser kinds
    /// `BROWSERBASE_PROJECT_ID`, `BROWSERBASE_API_URL`, `PJ_MAX_BROWSERS` and the model's
    /// `PJ_DEFAULT_MODEL`, `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`.
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`, `PJ_TASKS_QUEUE_URL`: an outcome asks
    /// for its notices, a failure that may pass for the next attempt, a message for its retry.
    pub queues: QueueUrls,
    /// `PJ_SECRET_ARN`: the master secret that opens a config's credentials, the GoHighLevel
    /// key, the outbound webhook secret, the Browserbase key, the model keys.
    pub secret_id: String,
    /// `PJ_EMAIL_FROM`: the sender of `notification`, `reminder` and report emails.
    pub email_from: String,
    /// `PJ_ARTIFACTS_BUCKET`: where the browser kinds' screenshots go.
    pub artifacts_bucket: String,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
            secret_id: config::secret_id(&env)?,
            email_from: config::email_from(&env)?,
            artifacts_bucket: config::artifacts_bucket(&env)?,
        })
    }
}
