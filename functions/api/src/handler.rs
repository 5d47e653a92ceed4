//! API Gateway HTTP API request → the router; the user is the JWT authorizer's `sub` and
//! `email` (`requestContext.authorizer.jwt.claims`).

use pj_lambda::{Router, Wiring, functions};

use crate::config::Config;

pub fn router(config: &Config, wiring: &Wiring) -> Router {
    functions::api(
        wiring,
        config.queues.clone(),
        &config.secret_id,
        &config.artifacts_bucket,
        config.page.clone(),
    )
}
