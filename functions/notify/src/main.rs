//! `notify`: batches of the notify queue → the core's `Notifier` (the notices of attempts'
//! outcomes: email through SES v2, signed webhooks, SMS; retries of outbound messages),
//! answered with a partial batch response.

mod config;
mod handler;

use lambda_runtime::service_fn;
use pj_lambda::{Error, Wiring, logging};

const FUNCTION: &str = "notify";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    let worker = handler::worker(&config, &wiring)?;
    lambda_runtime::run(service_fn(|event| handler::handle(&worker, event))).await
}
