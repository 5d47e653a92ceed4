//! What `api` reads (infra/README.md, "What the functions get").

use pj_lambda::PageConfig;
use pj_lambda::config::{self, ConfigError, CoreConfig, Env, QueueUrls};

pub struct Config {
    pub core: CoreConfig,
    /// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL`, `PJ_TASKS_QUEUE_URL`.
    pub queues: QueueUrls,
    /// `PJ_SECRET_ARN`: the master secret that seals the credentials of a new task's config.
    pub secret_id: String,
    /// `PJ_ARTIFACTS_BUCKET`: where the artifacts' bytes are read.
    pub artifacts_bucket: String,
    /// `PJ_LOG_STREAM_URL`: where the web page finds the log stream.
    pub page: PageConfig,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            queues: config::queue_urls(&env)?,
            secret_id: config::secret_id(&env)?,
            artifacts_bucket: config::artifacts_bucket(&env)?,
            page: config::page(&env)?,
        })
    }
}
