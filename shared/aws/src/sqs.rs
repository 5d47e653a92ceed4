//! [`QueueSender`] and [`QueueConsumer`] on SQS. Dead-lettering is the queues' redrive policy
//! (see `provision::create_queues`).

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use pj_core::ports::{QueueConsumer, QueueName, QueueSender, Received};

/// SQS's longest delay of a message.
const MAX_DELAY_SECS: u64 = 900;
/// SQS's longest visibility timeout.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// SQS's largest receive.
const MAX_RECEIVE: usize = 10;

/// The URLs of the queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls {
    pub dispatch: String,
    pub notify: String,
    pub tasks: String,
}

impl QueueUrls {
    pub fn get(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Dispatch => &self.dispatch,
            QueueName::Notify => &self.notify,
            QueueName::Tasks => &self.tasks,
        }
    }
}

/// The dispatch and notify queues on SQS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    urls: QueueUrls,
    wait: Duration,
}

impl SqsQueue {
    /// The queues at `urls`. A receive waits up to one second for a message (short polling
    /// would often miss messages on a nearly empty queue; long waits hold the caller).
    pub fn new(client: Client, urls: QueueUrls) -> SqsQueue {
        SqsQueue {
            client,
            urls,
            wait: Duration::from_secs(1),
        }
    }

    /// How long a receive waits for messages (`WaitTimeSeconds`, whole seconds up to 20).
    pub fn with_wait(mut self, wait: Duration) -> SqsQueue {
        self.wait = wait.min(Duration::from_secs(20));
        self
    }

    pub fn urls(&self) -> &QueueUrls {
        &self.urls
    }
}

/// Whole seconds, rounded up (a message is never early), at most `max`.
fn seconds(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i32::try_from(secs.min(max)).unwrap_or(i32::MAX)
}

/// Whether an error only says that a receipt is no longer current: the message was deleted,
/// received again, or is not in flight. The port asks that such a receipt do nothing.
fn is_stale_receipt(err: &impl ProvideErrorMetadata) -> bool {
    match err.code() {
        Some("ReceiptHandleIsInvalid" | "MessageNotInflight")
        | Some("AWS.SimpleQueueService.MessageNotInflight") => true,
        // An expired handle is reported as an invalid parameter value.
        Some("InvalidParameterValue") => err
            .message()
            .map(|m| m.to_ascii_lowercase())
            .is_some_and(|m| m.contains("receipt handle") || m.contains("receipthandle")),
        _ => false,
    }
}

#[async_trait]
impl QueueSender for SqsQueue {
    async fn send(&self, queue: QueueName, body: &str, delay: Duration) -> anyhow::Result<()> {
        self.client
            .send_message()
            .queue_url(self.urls.get(queue))
            .message_body(body)
            .delay_seconds(seconds(delay, MAX_DELAY_SECS))
            .send()
            .await
            .with_context(|| format!("SendMessage to the {} queue failed", queue.as_str()))?;
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for SqsQueue {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> anyhow::Result<Vec<Received>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .receive_message()
            .queue_url(self.urls.get(queue))
            .max_number_of_messages(i32::try_from(max.min(MAX_RECEIVE)).unwrap_or(1))
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY_SECS))
            .wait_time_seconds(seconds(self.wait, 20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .with_context(|| format!("ReceiveMessage from the {} queue failed", queue.as_str()))?;
        let mut received = Vec::new();
        for message in output.messages.unwrap_or_default() {
            let receive_count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let (Some(receipt), Some(body)) = (message.receipt_handle, message.body) else {
                tracing::warn!(
                    queue = queue.as_str(),
                    "SQS returned a message without a receipt or body"
                );
                continue;
            };
            received.push(Received {
                receipt,
                body,
                receive_count,
            });
        }
        Ok(received)
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> anyhow::Result<()> {
        match self
            .client
            .delete_message()
            .queue_url(self.urls.get(queue))
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_stale_receipt(&e) => {
                tracing::debug!(
                    queue = queue.as_str(),
                    "delete with a stale receipt ignored"
                );
                Ok(())
            }
            Err(e) => Err(e)
                .with_context(|| format!("DeleteMessage on the {} queue failed", queue.as_str())),
        }
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        match self
            .client
            .change_message_visibility()
            .queue_url(self.urls.get(queue))
            .receipt_handle(receipt)
            .visibility_timeout(seconds(timeout, MAX_VISIBILITY_SECS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_stale_receipt(&e) => {
                tracing::debug!(
                    queue = queue.as_str(),
                    "visibility change with a stale receipt ignored"
                );
                Ok(())
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "ChangeMessageVisibility on the {} queue failed",
                    queue.as_str()
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_should_round_up_and_clamp() {
        assert_eq!(seconds(Duration::ZERO, 900), 0);
        assert_eq!(seconds(Duration::from_millis(1_500), 900), 2);
        assert_eq!(seconds(Duration::from_secs(3_600), 900), 900);
        assert_eq!(seconds(Duration::MAX, MAX_VISIBILITY_SECS), 43_200);
    }
}
