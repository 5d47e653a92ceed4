//! `dispatch`: batches of the dispatch queue (dispatch and stop messages) → the core's
//! `Dispatcher` (a runner, or the tasks queue for a built-in kind), answered with a partial
//! batch response.

mod config;
mod handler;

use lambda_runtime::service_fn;
use pj_lambda::{Error, Wiring, logging};

const FUNCTION: &str = "dispatch";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    let worker = handler::worker(&config, &wiring);
    lambda_runtime::run(service_fn(|event| handler::handle(&worker, event))).await
}
