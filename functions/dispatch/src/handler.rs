//! SQS batch → one `Dispatcher::handle` per message (`ApproximateReceiveCount` as its receive
//! count): `Done` is deleted by Lambda; `RetryAfter(d)` sets the message's visibility to `d`
//! and reports it as a batch item failure.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use pj_core::worker::Dispatcher;
use pj_lambda::config::Env;
use pj_lambda::{Error, QueueWorker, Wiring, functions, runner_from_config};

use crate::config::Config;

pub type Worker = QueueWorker<Dispatcher>;

pub fn worker(config: &Config, wiring: &Wiring) -> Worker {
    let secrets = wiring.secrets(&config.secret_id);
    let runner = runner_from_config(&config.core, &Env::process(), secrets.clone());
    functions::dispatch(
        wiring,
        config.queues.clone(),
        secrets,
        &config.public_url,
        runner,
    )
}

pub async fn handle(
    worker: &Worker,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(worker.handle_batch(event.payload).await)
}
