//! What `notify` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    /// With `PJ_ALLOW_PRIVATE_NETWORKS`, `GHL_API_URL`, `PJ_MESSAGE_RETRY_SECS`.
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`, `PJ_TASKS_QUEUE_URL`.
    pub queues: QueueUrls,
    /// `PJ_SECRET_ARN`: the outbound webhook secret, the GoHighLevel key (SMS).
    pub secret_id: String,
    /// `PJ_PUBLIC_URL`: the emails link to the task there.
    pub public_url: String,
    /// `PJ_EMAIL_FROM`: the sender, an identity verified in SES.
    pub email_from: String,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
            secret_id: config::secret_id(&env)?,
            public_url: config::public_url(&env)?,
            email_from: config::email_from(&env)?,
        })
    }
}
