//! Scheduled event → one sweep; the answer says what it looked at and changed.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use pj_core::worker::Sweeper;
use pj_lambda::functions::{self, SweepSummary};
use pj_lambda::{Error, Wiring};

use crate::config::Config;

pub fn sweeper(config: &Config, wiring: &Wiring) -> Result<Sweeper, Error> {
    Ok(functions::sweeper(
        wiring,
        config.queues.clone(),
        wiring.secrets(&config.secret_id),
        &config.email_from,
    )?)
}

pub async fn handle(
    sweeper: &Sweeper,
    event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
) -> Result<SweepSummary, Error> {
    Ok(functions::sweep(sweeper, &event.payload).await?)
}
