//! What `log-stream` reads (infra/README.md, "What the functions get").

use std::time::Duration;

use pj_lambda::config::{self, ConfigError, CoreConfig, Env, StreamAuth};

pub struct Config {
    pub core: CoreConfig,
    /// `PJ_JWT_ISSUER` and `PJ_JWT_AUDIENCE`, or `PJ_JWT_SECRET` (HS256) when set.
    pub auth: StreamAuth,
    /// `PJ_STREAM_POLL_MS`.
    pub poll: Duration,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let env = Env::process();
        Ok(Config {
            core: CoreConfig::from_env(&env)?,
            auth: StreamAuth::from_env(&env)?,
            poll: config::stream_poll(&env)?,
        })
    }
}
