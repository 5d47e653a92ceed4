//! SQS batch → one `Notifier::handle` per message (a notify message: the attempt's notices; a
//! deliver message: an outbound message tried again): `Done` is deleted by Lambda;
//! `RetryAfter(d)` sets the message's visibility to `d` and reports it as a batch item failure.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use pj_core::worker::Notifier;
use pj_lambda::{Error, QueueWorker, Wiring, functions};

use crate::config::Config;

pub type Worker = QueueWorker<Notifier>;

pub fn worker(config: &Config, wiring: &Wiring) -> Result<Worker, Error> {
    Ok(functions::notify(
        wiring,
        config.queues.clone(),
        wiring.secrets(&config.secret_id),
        &config.public_url,
        &config.email_from,
    )?)
}

pub async fn handle(
    worker: &Worker,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(worker.handle_batch(event.payload).await)
}
