//! `webhook`: `POST /webhooks/runner` and `POST /webhooks/runner/artifacts`, the runners' signed
//! events and artifacts, pj-http's router run by `lambda_http`.

mod config;
mod handler;

use pj_lambda::{Error, Wiring, logging};

const FUNCTION: &str = "webhook";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    lambda_http::run(handler::router(&config, &wiring)).await
}
