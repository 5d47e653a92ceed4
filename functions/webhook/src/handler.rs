//! API Gateway HTTP API request (`POST /webhooks/runner`, `POST /webhooks/runner/artifacts`) →
//! the router, which verifies the Standard Webhooks signature before anything changes.

use pj_lambda::{Router, Wiring, functions};

use crate::config::Config;

pub fn router(config: &Config, wiring: &Wiring) -> Router {
    functions::webhook(
        wiring,
        config.queues.clone(),
        &config.secret_id,
        &config.artifacts_bucket,
    )
}
