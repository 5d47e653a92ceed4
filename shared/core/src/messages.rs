//! Outbound messages: every email, webhook and SMS the backend sends for a task (a completion
//! notice, a `notification` or `reminder` task, a report's delivery) has its own record, sent at
//! least once and recorded once.
//!
//! A message's id is derived from what it is for (task, attempt, purpose, channel), so the
//! worker that makes it twice (a redelivered queue message, a retry after a crash) finds the
//! first record instead of making a second. Each send is claimed first with a compare-and-set
//! (a lease), so two workers do not send the same message at once; a crash between the send and
//! its record sends it again, with the same id (a webhook's `webhook-id`, an email's
//! idempotency key), which receivers use to drop the repeat.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ValidationError;
use crate::ids::{Attempt, TaskId, UserId};
use crate::kinds::notify::ChannelSpec;
use crate::time::rfc3339;

/// `msg_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    /// The id of the message sent for `purpose` (e.g. `completion/0`) of a task's attempt.
    pub fn derive(task: &TaskId, attempt: Attempt, purpose: &str) -> MessageId {
        let digest = Sha256::digest(format!("{task}/{attempt}/{purpose}").as_bytes());
        MessageId(format!("msg_{}", hex(&digest[..16])))
    }

    pub fn parse(raw: &str) -> Result<MessageId, ValidationError> {
        let ok = raw
            .strip_prefix("msg_")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(MessageId(raw.to_owned()))
        } else {
            Err(ValidationError::new("message_id", "not a valid message id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        MessageId::parse(&value)
    }
}

impl From<MessageId> for String {
    fn from(value: MessageId) -> Self {
        value.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Webhook, Channel::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Sms => "sms",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Sent,
    Failed,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 3] = [
        MessageStatus::Pending,
        MessageStatus::Sent,
        MessageStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<MessageStatus, ValidationError> {
        MessageStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| ValidationError::new("status", "must be pending, sent or failed"))
    }
}

/// What a message says, fixed when it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageContent {
    /// The email's plain text, or the SMS.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// A webhook's JSON body: `{"type", "task", "message"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// One outbound message and how its delivery stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub id: MessageId,
    pub owner: UserId,
    pub task_id: TaskId,
    pub attempt: Attempt,
    pub channel: Channel,
    /// The address, URL or GoHighLevel contact id.
    pub to: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub content: MessageContent,
    pub status: MessageStatus,
    /// Sends tried so far.
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// When a pending message is next due (a retry's backoff, or a send's lease).
    #[serde(default)]
    pub next_try_at: Option<DateTime<Utc>>,
    /// After this a message that still fails is `failed`.
    pub give_up_at: DateTime<Utc>,
    /// Incremented by every stored change; the compare-and-set token.
    pub version: u64,
}

impl OutboundMessage {
    /// A new pending message to `channel`, due now.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: MessageId,
        owner: UserId,
        task_id: TaskId,
        attempt: Attempt,
        channel: Channel,
        to: String,
        subject: Option<String>,
        content: MessageContent,
        now: DateTime<Utc>,
        keep_trying: chrono::Duration,
    ) -> OutboundMessage {
        OutboundMessage {
            id,
            owner,
            task_id,
            attempt,
            channel,
            to,
            subject,
            content,
            status: MessageStatus::Pending,
            attempts: 0,
            last_error: None,
            created_at: now,
            sent_at: None,
            next_try_at: Some(now),
            give_up_at: now + keep_trying,
            version: 1,
        }
    }

    /// The record as `GET /messages` shows it.
    pub fn view(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "task_id": self.task_id,
            "channel": self.channel.as_str(),
            "to": self.to,
            "subject": self.subject,
            "status": self.status.as_str(),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": rfc3339(self.created_at),
            "sent_at": self.sent_at.map(rfc3339),
        })
    }
}

/// Where a page of a user's messages ends (newest first: created time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCursor {
    pub created_at: DateTime<Utc>,
    pub id: MessageId,
}

/// Which of a user's messages to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub task_id: Option<TaskId>,
    pub status: Option<MessageStatus>,
}

/// The outbound message records.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a new message; `false` when one with its id exists (nothing is written).
    async fn insert(&self, message: &OutboundMessage) -> anyhow::Result<bool>;

    async fn get(&self, id: &MessageId) -> anyhow::Result<Option<OutboundMessage>>;

    /// Writes `message` if the stored version is `expected_version`; `false` when it was not.
    /// `message.version` must be `expected_version + 1`.
    async fn update(
        &self,
        message: &OutboundMessage,
        expected_version: u64,
    ) -> anyhow::Result<bool>;

    /// A user's messages, newest first, strictly after `after`.
    async fn list(
        &self,
        owner: &UserId,
        filter: &MessageFilter,
        limit: usize,
        after: Option<&MessageCursor>,
    ) -> anyhow::Result<Vec<OutboundMessage>>;

    /// Pending messages whose `next_try_at` is at or before `now`, oldest first.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<OutboundMessage>>;
}

/// How one try of a message went, as the channel's sender saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// May pass; try again no sooner than `retry_after` when the receiver said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Can never be sent as it is.
    Failed {
        error: String,
    },
}

/// Sends one message over its channel.
#[async_trait]
pub trait MessageSender: Send + Sync {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome;
}

/// The backoff before a message's try `n + 1`: `base` doubling, at most an hour, with jitter
/// (`jitter` drawn from 0.8..1.2 by the caller), and never sooner than `floor`.
pub fn message_backoff(n: u32, base: Duration, floor: Option<Duration>, jitter: f64) -> Duration {
    let exp = 2u32.saturating_pow(n.saturating_sub(1).min(20));
    let delay = base.saturating_mul(exp).min(Duration::from_secs(3600));
    delay
        .mul_f64(jitter.clamp(0.5, 1.5))
        .max(floor.unwrap_or_default())
}

/// How long a send may take before another worker may try the message again.
pub const SEND_LEASE: Duration = Duration::from_secs(120);

/// Where a channel spec sends, given the task's notification address.
pub fn destination(
    channel: &ChannelSpec,
    owner_address: Option<&str>,
) -> Option<(Channel, String)> {
    match channel {
        ChannelSpec::Email { to, .. } => to
            .as_deref()
            .or(owner_address)
            .map(|to| (Channel::Email, to.to_owned())),
        ChannelSpec::Webhook { url } => Some((Channel::Webhook, url.clone())),
        ChannelSpec::Sms { contact_id } => Some((Channel::Sms, contact_id.clone())),
    }
}

/// Delivers messages: records them, tries each once at once, and leaves the retries to the
/// queue (`QueueMessage::Deliver`) and the sweeper.
pub struct Courier {
    pub store: Arc<dyn MessageStore>,
    pub sender: Arc<dyn MessageSender>,
    pub clock: Arc<dyn crate::time::Clock>,
    pub queue: Arc<dyn crate::ports::QueueSender>,
    /// The first retry's backoff (`PJ_MESSAGE_RETRY_SECS`).
    pub retry_base: Duration,
    /// Told of every message that reached its final status.
    pub observer: Option<Arc<dyn MessageObserver>>,
}

/// Told of every message that ends `sent` or `failed`, e.g. for metrics.
pub trait MessageObserver: Send + Sync {
    fn finished(&self, message: &OutboundMessage);
}

impl Courier {
    /// Records `message` unless it exists, then tries it if it is due. Returns the record as it
    /// stands afterwards.
    pub async fn post(&self, message: OutboundMessage) -> anyhow::Result<OutboundMessage> {
        if !self.store.insert(&message).await? {
            let existing = self
                .store
                .get(&message.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("message {} vanished", message.id))?;
            return self.try_send(existing).await;
        }
        tracing::info!(message_id = %message.id, task_id = %message.task_id, channel = message.channel.as_str(), "message recorded");
        self.try_send(message).await
    }

    /// Handles a `Deliver` message of the queue: tries the message if it is due, and sends the
    /// `Deliver` on when it came early.
    pub async fn deliver(&self, id: &MessageId) -> anyhow::Result<()> {
        let Some(message) = self.store.get(id).await? else {
            return Ok(());
        };
        let now = self.clock.now();
        match message.next_try_at {
            Some(at) if message.status == MessageStatus::Pending && at > now => {
                // A retry's backoff may be longer than a queue holds a message (or another
                // worker holds the send's lease): ask again when it is due.
                self.schedule(id, (at - now).to_std().unwrap_or_default())
                    .await;
                Ok(())
            }
            _ => self.try_send(message).await.map(drop),
        }
    }

    /// Sends the `Deliver` of a message after `delay` (at most a queue's limit); a failure is
    /// logged, and the sweeper finds the message when it is overdue.
    async fn schedule(&self, id: &MessageId, delay: Duration) {
        let message = crate::ports::QueueMessage::Deliver {
            message_id: id.clone(),
        };
        let sent = match serde_json::to_string(&message) {
            Ok(body) => {
                self.queue
                    .send(
                        crate::ports::QueueName::Notify,
                        &body,
                        delay.min(crate::engine::MAX_QUEUE_DELAY),
                    )
                    .await
            }
            Err(e) => Err(e.into()),
        };
        if let Err(e) = sent {
            tracing::warn!(message_id = %id, error = format!("{e:#}"), "could not schedule a retry; the sweeper will");
        }
    }

    /// Tries every pending message that is overdue (a lost `Deliver`, a crash mid-send).
    pub async fn sweep(&self, limit: usize) -> anyhow::Result<usize> {
        let due = self.store.due(self.clock.now(), limit).await?;
        let n = due.len();
        for message in due {
            if let Err(e) = self.try_send(message).await {
                tracing::warn!(error = format!("{e:#}"), "message retry failed");
            }
        }
        Ok(n)
    }

    /// One try, if the message is pending and due: claim it with a lease, send, record.
    async fn try_send(&self, message: OutboundMessage) -> anyhow::Result<OutboundMessage> {
        let now = self.clock.now();
        if message.status != MessageStatus::Pending
            || message.next_try_at.is_some_and(|at| at > now)
        {
            return Ok(message);
        }
        let mut claimed = message.clone();
        claimed.attempts += 1;
        claimed.next_try_at = Some(now + chrono::Duration::from_std(SEND_LEASE)?);
        claimed.version = message.version + 1;
        if !self.store.update(&claimed, message.version).await? {
            // Another worker has it.
            return Ok(message);
        }
        let outcome = self.sender.send(&claimed).await;
        let now = self.clock.now();
        let mut done = claimed.clone();
        done.version = claimed.version + 1;
        let mut redeliver_after = None;
        match outcome {
            SendOutcome::Sent => {
                done.status = MessageStatus::Sent;
                done.sent_at = Some(now);
                done.next_try_at = None;
                done.last_error = None;
            }
            SendOutcome::Failed { error } => {
                done.status = MessageStatus::Failed;
                done.next_try_at = None;
                done.last_error = Some(error);
            }
            SendOutcome::Retry { error, retry_after } => {
                let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2);
                let delay = message_backoff(done.attempts, self.retry_base, retry_after, jitter);
                let at = now + chrono::Duration::from_std(delay)?;
                done.last_error = Some(error);
                if at > done.give_up_at {
                    done.status = MessageStatus::Failed;
                    done.next_try_at = None;
                } else {
                    done.next_try_at = Some(at);
                    redeliver_after = Some(delay);
                }
            }
        }
        if !self.store.update(&done, claimed.version).await? {
            anyhow::bail!("message {} changed while it was being sent", done.id);
        }
        tracing::info!(
            message_id = %done.id,
            task_id = %done.task_id,
            channel = done.channel.as_str(),
            status = done.status.as_str(),
            attempts = done.attempts,
            error = done.last_error.as_deref().unwrap_or(""),
            "message tried"
        );
        if done.status != MessageStatus::Pending
            && let Some(observer) = &self.observer
        {
            observer.finished(&done);
        }
        if let Some(delay) = redeliver_after {
            self.schedule(&done.id, delay).await;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_the_same_for_the_same_purpose_and_differs_otherwise() {
        let task = TaskId::parse("tsk_01abc").unwrap();
        let a = MessageId::derive(&task, Attempt(1), "completion/0");
        assert_eq!(a, MessageId::derive(&task, Attempt(1), "completion/0"));
        assert_ne!(a, MessageId::derive(&task, Attempt(2), "completion/0"));
        assert_ne!(a, MessageId::derive(&task, Attempt(1), "completion/1"));
        assert!(MessageId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn a_message_backoff_doubles_is_capped_and_honours_retry_after() {
        let base = Duration::from_secs(30);
        assert_eq!(message_backoff(1, base, None, 1.0), Duration::from_secs(30));
        assert_eq!(
            message_backoff(3, base, None, 1.0),
            Duration::from_secs(120)
        );
        assert_eq!(
            message_backoff(30, base, None, 1.0),
            Duration::from_secs(3600)
        );
        assert_eq!(
            message_backoff(1, base, Some(Duration::from_secs(90)), 1.0),
            Duration::from_secs(90)
        );
    }
}
