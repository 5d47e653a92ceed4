//! What becomes of a received queue message, decided once for both deployments: `pj serve`'s
//! loop over the embedded queue and the Lambda functions' SQS batches.

use std::future::Future;
use std::time::Duration;

use pj_core::ports::{QueueConsumer, QueueMessage, QueueName};
use pj_core::worker::Disposition;

/// How a received message is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Handled, or nothing left to do: deleted.
    Delete,
    /// Comes again after this long.
    RetryAfter(Duration),
    /// Cannot be read: kept on the queue, never silently dropped, until the queue's receive
    /// limit moves it to its dead-letter queue, where an operator can look at it.
    DeadLetter,
}

impl Settlement {
    /// Whether the message stays on the queue (a Lambda batch reports it as failed).
    pub fn keeps_message(self) -> bool {
        self != Settlement::Delete
    }
}

/// Reads `body` and hands it to `handle`; an unreadable body is for the dead-letter queue.
pub async fn settle<F, Fut>(body: Option<&str>, receive_count: u32, handle: F) -> Settlement
where
    F: FnOnce(QueueMessage, u32) -> Fut,
    Fut: Future<Output = Disposition>,
{
    let parsed = body
        .ok_or_else(|| "the message has no body".to_owned())
        .and_then(|b| serde_json::from_str::<QueueMessage>(b).map_err(|e| e.to_string()));
    match parsed {
        Ok(message) => match handle(message, receive_count).await {
            Disposition::Done => Settlement::Delete,
            Disposition::RetryAfter(delay) => Settlement::RetryAfter(delay),
        },
        Err(why) => {
            tracing::error!(error = %why, "a queue message could not be read; it goes to the dead-letter queue");
            Settlement::DeadLetter
        }
    }
}

/// Carries out a settlement on the queue. A failure is logged: the message then comes again
/// after the queue's own visibility timeout, which loses nothing.
pub async fn carry_out(
    consumer: &dyn QueueConsumer,
    queue: QueueName,
    receipt: &str,
    settlement: Settlement,
) {
    let result = match settlement {
        Settlement::Delete => consumer.delete(queue, receipt).await,
        Settlement::RetryAfter(delay) => consumer.change_visibility(queue, receipt, delay).await,
        // Visible again at once: the receive limit is reached without waiting out a timeout.
        Settlement::DeadLetter => {
            consumer
                .change_visibility(queue, receipt, Duration::ZERO)
                .await
        }
    };
    if let Err(e) = result {
        tracing::warn!(
            queue = queue.as_str(),
            error = format!("{e:#}"),
            "could not settle a message; it will come again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreadable_message_goes_to_the_dead_letter_queue_and_is_never_dropped() {
        let s = settle(Some("not json"), 1, |_, _| async { Disposition::Done }).await;
        assert_eq!(s, Settlement::DeadLetter);
        assert!(s.keeps_message());
        let s = settle(None, 1, |_, _| async { Disposition::Done }).await;
        assert_eq!(s, Settlement::DeadLetter);
    }

    #[tokio::test]
    async fn a_handled_message_is_deleted_and_a_retried_one_comes_back_after_its_delay() {
        let body = r#"{"type":"dispatch","task_id":"tsk_01k0000000000000000000000a","attempt":1}"#;
        let done = settle(Some(body), 1, |_, _| async { Disposition::Done }).await;
        let later = settle(Some(body), 2, |_, n| async move {
            Disposition::RetryAfter(Duration::from_secs(u64::from(n)))
        })
        .await;
        assert_eq!(done, Settlement::Delete);
        assert_eq!(later, Settlement::RetryAfter(Duration::from_secs(2)));
    }
}
