//! `tasks`: batches of the tasks queue (run messages) → the core's `KindWorker`, which runs
//! the attempts of the built-in kinds (the browser kinds through Browserbase), answered with a
//! partial batch response.

mod config;
mod handler;

use lambda_runtime::service_fn;
use pj_lambda::{Error, Wiring, logging};

const FUNCTION: &str = "tasks";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    let worker = handler::worker(&config, &wiring).await?;
    lambda_runtime::run(service_fn(|event| handler::handle(&worker, event))).await
}
