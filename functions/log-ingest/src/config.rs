//! What `log-ingest` reads (infra/README.md, "What the functions get").

use pj_lambda::config::{self, ConfigError, CoreConfig, Env};

pub struct Config {
    pub core: CoreConfig,
    /// `PJ_SECRET_ARN`: the webhook master secret the callback keys derive from.
    pub secret_id: String,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            secret_id: config::secret_id(&env)?,
        })
    }
}
