//! The SQS batch loop of `dispatch`, `notify` and `tasks`: every message of a batch is handled on its
//! own (one span each), and only the messages that must come again are reported as failed
//! (`ReportBatchItemFailures`), so one bad message is retried alone while Lambda deletes the
//! rest.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use pj_app::{Settlement, carry_out, settle};
use pj_core::kinds::run::KindWorker;
use pj_core::ports::{QueueConsumer, QueueMessage, QueueName};
use pj_core::worker::{Dispatcher, Disposition, Notifier};
use tracing::Instrument;

/// The attribute Lambda's event source puts the receive count in.
const RECEIVE_COUNT: &str = "ApproximateReceiveCount";

/// A use case that takes queue messages (the core's [`Dispatcher`], [`Notifier`] and
/// [`KindWorker`]).
pub trait MessageHandler: Send + Sync {
    /// The queue its messages come from.
    fn queue(&self) -> QueueName;

    /// Handles one message received for the `receive_count`-th time.
    fn handle(
        &self,
        message: &QueueMessage,
        receive_count: u32,
    ) -> impl Future<Output = Disposition> + Send;
}

impl MessageHandler for Dispatcher {
    fn queue(&self) -> QueueName {
        QueueName::Dispatch
    }

    fn handle(
        &self,
        message: &QueueMessage,
        receive_count: u32,
    ) -> impl Future<Output = Disposition> + Send {
        Dispatcher::handle(self, message, receive_count)
    }
}

impl MessageHandler for Notifier {
    fn queue(&self) -> QueueName {
        QueueName::Notify
    }

    fn handle(
        &self,
        message: &QueueMessage,
        receive_count: u32,
    ) -> impl Future<Output = Disposition> + Send {
        Notifier::handle(self, message, receive_count)
    }
}

impl MessageHandler for KindWorker {
    fn queue(&self) -> QueueName {
        QueueName::Tasks
    }

    fn handle(
        &self,
        message: &QueueMessage,
        receive_count: u32,
    ) -> impl Future<Output = Disposition> + Send {
        KindWorker::handle(self, message, receive_count)
    }
}

/// What became of one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: Lambda deletes it.
    Done,
    /// Comes again after its new visibility timeout.
    Retry,
    /// Cannot be read; comes again until it reaches the dead-letter queue, where an operator
    /// can look at it.
    Undecodable,
}

/// A queue-triggered function: a use case and the queue it consumes, to set a message's
/// visibility when the use case wants it back later.
pub struct QueueWorker<H> {
    pub handler: H,
    pub consumer: Arc<dyn QueueConsumer>,
}

impl<H: MessageHandler> QueueWorker<H> {
    pub fn new(handler: H, consumer: Arc<dyn QueueConsumer>) -> Self {
        QueueWorker { handler, consumer }
    }

    /// Handles a batch; the response names the messages to keep.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes = join_all(event.records.iter().map(|m| self.handle_message(m))).await;
        let mut response = SqsBatchResponse::default();
        for (message, outcome) in event.records.iter().zip(outcomes) {
            if outcome == Outcome::Done {
                continue;
            }
            match &message.message_id {
                Some(id) => response.add_failure(id.clone()),
                // Without an id it cannot be named; Lambda deletes it with the batch.
                None => tracing::error!("a message without a message id could not be kept"),
            }
        }
        response
    }

    /// Handles one message in its own span.
    pub async fn handle_message(&self, message: &SqsMessage) -> Outcome {
        let receive_count = message
            .attributes
            .get(RECEIVE_COUNT)
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let span = tracing::info_span!(
            "message",
            queue = self.handler.queue().as_str(),
            message_id = message.message_id.as_deref().unwrap_or(""),
            receive_count,
            task_id = tracing::field::Empty,
            attempt = tracing::field::Empty,
            outbound_message_id = tracing::field::Empty,
        );
        self.handle_in_span(message, receive_count)
            .instrument(span)
            .await
    }

    async fn handle_in_span(&self, message: &SqsMessage, receive_count: u32) -> Outcome {
        let handler = &self.handler;
        let settlement = settle(
            message.body.as_deref(),
            receive_count,
            |decoded, count| async move {
                let span = tracing::Span::current();
                match &decoded {
                    QueueMessage::Dispatch { task_id, attempt }
                    | QueueMessage::Stop {
                        task_id, attempt, ..
                    }
                    | QueueMessage::Notify { task_id, attempt }
                    | QueueMessage::Run { task_id, attempt } => {
                        span.record("task_id", tracing::field::display(task_id));
                        span.record("attempt", attempt.0);
                    }
                    QueueMessage::Deliver { message_id } => {
                        span.record("outbound_message_id", tracing::field::display(message_id));
                    }
                }
                handler.handle(&decoded, count).await
            },
        )
        .await;
        match settlement {
            // Lambda deletes what the batch response does not name.
            Settlement::Delete => Outcome::Done,
            // Named in the response, it comes again after the queue's visibility timeout until
            // the queue's redrive policy moves it to the dead-letter queue.
            Settlement::DeadLetter => Outcome::Undecodable,
            Settlement::RetryAfter(delay) => {
                match &message.receipt_handle {
                    Some(receipt) => {
                        carry_out(
                            self.consumer.as_ref(),
                            self.handler.queue(),
                            receipt,
                            settlement,
                        )
                        .await;
                    }
                    None => tracing::warn!(
                        "a message without a receipt handle keeps the queue's visibility timeout"
                    ),
                }
                tracing::info!(
                    retry_after_secs = delay.as_secs_f64(),
                    "the message will come again"
                );
                Outcome::Retry
            }
        }
    }
}
