//! What `notify` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`.
    pub queues: QueueUrls,
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
            public_url: config::public_url(&env)?,
            email_from: config::email_from(&env)?,
        })
    }
}
