//! `log-stream`: `GET /tasks/{id}/logs/stream` as server-sent events from a Function URL in
//! `RESPONSE_STREAM` mode. No gateway verifies the caller: the function checks the JWT itself
//! with the issuer's keys, fetched here once per execution environment.

mod config;
mod handler;

use pj_lambda::{Error, Wiring, jwks, logging};

const FUNCTION: &str = "log-stream";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let auth = jwks::authenticator(&config.auth).await?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    lambda_http::run_with_streaming_response(handler::router(&config, &wiring, auth)).await
}
