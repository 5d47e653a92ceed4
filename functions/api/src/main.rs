//! `api`: the users' routes of the HTTP API (`POST/GET /tasks`, `/tasks/{id}[/...]`, the
//! artifacts under `/tasks/{id}/artifacts`, `GET /healthz`), pj-http's router run by
//! `lambda_http`.

mod config;
mod handler;

use pj_lambda::{Error, Wiring, logging};

const FUNCTION: &str = "api";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    lambda_http::run(handler::router(&config, &wiring)).await
}
