//! What `api` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls, RateLimits};

pub struct Config {
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`.
    pub queues: QueueUrls,
    /// `PJ_RATE_LIMIT_PER_MINUTE`, `PJ_RATE_LIMIT_BURST`.
    pub limits: RateLimits,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
            limits: RateLimits::from_env(&env)?,
        })
    }
}
