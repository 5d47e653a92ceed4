//! What `dispatch` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    /// With `PJ_RUNNER` and `PJ_DISPATCH_MAX_RECEIVES` (the queue's `maxReceiveCount`).
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`, `PJ_TASKS_QUEUE_URL` (the attempts of
    /// the built-in kinds go there).
    pub queues: QueueUrls,
    /// `PJ_SECRET_ARN`: the webhook master secret and the runners' credentials.
    pub secret_id: String,
    /// `PJ_PUBLIC_URL`: where runners call back to.
    pub public_url: String,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
            secret_id: config::secret_id(&env)?,
            public_url: config::public_url(&env)?,
        })
    }
}
