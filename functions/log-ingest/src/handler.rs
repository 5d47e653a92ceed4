//! API Gateway HTTP API request (`POST /webhooks/runner/logs`) → the router, which verifies
//! the signature, then stores the lines not stored yet.

use pj_lambda::{Router, Wiring, functions};

use crate::config::Config;

pub fn router(config: &Config, wiring: &Wiring) -> Router {
    functions::log_ingest(wiring, &config.secret_id)
}
