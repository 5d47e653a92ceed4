//! Contract test suites for the ports, written once and run against every adapter: the SQLite
//! adapters now, the DynamoDB and SQS adapters against an emulator later.
//!
//! Each suite is a public async function generic over the adapter, meant to be called from a
//! `#[tokio::test]` (multi-threaded or not). It runs many small named checks in turn and prints
//! each check's name to stderr as it starts, so the output of a failing test ends with the
//! check that failed and a panic message saying what was expected. [`sample`] makes the data,
//! for adapters' own tests too.
//!
//! Task ids, owners and webhook ids are unique per run, so the task and log suites can share a
//! store (or an emulator) with other runs. The queue suite cannot tell its messages from
//! others': give it queues nobody else uses while it runs.

mod artifact_store;
mod log_store;
mod message_store;
mod queue;
pub mod sample;
mod task_store;

pub use artifact_store::artifact_store_contract;
pub use log_store::log_store_contract;
pub use message_store::{message, message_store_contract};
pub use queue::{queue_contract, queue_strict_receipt_contract};
pub use task_store::task_store_contract;

use std::fmt::Display;

/// Unwraps a port's result, or panics naming the check and the step.
#[track_caller]
pub(crate) fn must<T>(result: anyhow::Result<T>, step: impl Display) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{step}: the adapter returned an error: {e:#}"),
    }
}

/// Announces a check, so a failing suite's output shows which check failed.
pub(crate) fn start(suite: &str, check: &str) {
    eprintln!("contract {suite}: {check}");
}
