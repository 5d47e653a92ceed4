//! What `sweeper` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    /// With `PJ_ALLOW_PRIVATE_NETWORKS`, `GHL_API_URL`, `PJ_MESSAGE_RETRY_SECS`.
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`, `PJ_TASKS_QUEUE_URL`: dispatch again,
    /// stop runners past their deadline, ask again for notices and message retries.
    pub queues: QueueUrls,
    /// `PJ_SECRET_ARN`: the outbound webhook secret, the GoHighLevel key (SMS), for the
    /// messages whose retry is overdue.
    pub secret_id: String,
    /// `PJ_EMAIL_FROM`: the sender of those retried emails.
    pub email_from: String,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
            secret_id: config::secret_id(&env)?,
            email_from: config::email_from(&env)?,
        })
    }
}
