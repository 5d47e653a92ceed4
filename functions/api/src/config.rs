//! What `api` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`.
    pub queues: QueueUrls,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
        })
    }
}
