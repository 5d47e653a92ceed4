//! `sweeper`: the EventBridge schedule (every minute) → the core's `Sweeper::sweep` (tasks and
//! outbound messages).

mod config;
mod handler;

use lambda_runtime::service_fn;
use pj_lambda::{Error, Wiring, logging};

const FUNCTION: &str = "sweeper";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = config::Config::from_env()?;
    let wiring = Wiring::from_env(config.core.clone(), FUNCTION).await;
    let sweeper = handler::sweeper(&config, &wiring)?;
    lambda_runtime::run(service_fn(|event| handler::handle(&sweeper, event))).await
}
