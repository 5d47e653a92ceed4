//! SQS batch → one `KindWorker::handle` per run message (`ApproximateReceiveCount` as its
//! receive count): `Done` is deleted by Lambda; `RetryAfter(d)` sets the message's visibility
//! to `d` and reports it as a batch item failure.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use pj_core::kinds::run::KindWorker;
use pj_lambda::{Error, QueueWorker, Wiring, functions};

use crate::config::Config;

pub type Worker = QueueWorker<KindWorker>;

pub async fn worker(config: &Config, wiring: &Wiring) -> Result<Worker, Error> {
    Ok(functions::tasks(
        wiring,
        config.queues.clone(),
        wiring.secrets(&config.secret_id),
        &config.email_from,
        &config.artifacts_bucket,
    )
    .await?)
}

pub async fn handle(
    worker: &Worker,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(worker.handle_batch(event.payload).await)
}
