//! Messages of tasks: the `notification` and `reminder` kinds, a task's completion notice (its
//! `notify`), and the sender of each channel (email through the mailer, signed webhooks through
//! the address guard, SMS through GoHighLevel).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::engine::Settings;
use crate::ids::{Attempt, WebhookId};
use crate::kinds::config::MessageConfig;
use crate::kinds::ghl;
use crate::kinds::notify::{ChannelSpec, NotifySpec};
use crate::kinds::run::{AttemptLog, StepTimer};
use crate::machine::KindOutcome;
use crate::messages::{
    Channel, Courier, MessageContent, MessageId, MessageSender, MessageStatus, OutboundMessage,
    SendOutcome, destination,
};
use crate::outbound::{HeaderValue, HttpClient, HttpError, HttpRequest};
use crate::ports::{Email, MailError, Mailer, SecretSource};
use crate::signing::{CallbackSecret, signed_headers};
use crate::task::{ExecState, Task, TaskError, TaskStatus, codes};
use crate::worker::html_escape;

/// The name of the outbound webhook secret among the deployment's secrets
/// (`PJ_OUTBOUND_SECRET`; on AWS the secret's `outbound_secret`).
pub const OUTBOUND_SECRET: &str = "outbound_secret";

/// Runs a `notification` or `reminder`: one message, tried once now; its own retries follow.
pub(crate) async fn run(
    task: &Task,
    config: &MessageConfig,
    kind: &str,
    courier: &Courier,
    settings: &Settings,
    log: &mut AttemptLog,
) -> KindOutcome {
    let Some((channel, to)) = destination(&config.channel, task.notification_address()) else {
        return crate::kinds::run::invalid_config("the email has no address to go to");
    };
    let subject = match &config.channel {
        ChannelSpec::Email { subject, .. } => {
            Some(subject.clone().unwrap_or_else(|| task.title.clone()))
        }
        _ => None,
    };
    let content = MessageContent {
        text: format!("{}\n", config.message),
        html: matches!(channel, Channel::Email).then(|| {
            format!(
                "<!doctype html><html><body><p>{}</p></body></html>",
                html_escape(&config.message).replace('\n', "<br>")
            )
        }),
        payload: matches!(channel, Channel::Webhook)
            .then(|| webhook_payload(kind, task, &config.message)),
    };
    let message = OutboundMessage::new(
        MessageId::derive(&task.id, task.attempt, "message"),
        task.owner.clone(),
        task.id.clone(),
        task.attempt,
        channel,
        to,
        subject,
        content,
        courier.clock.now(),
        settings.message_keep_trying,
    );
    log.system(format!(
        "sending the {kind} by {} ({})",
        channel.as_str(),
        message.id
    ));
    log.flush().await;
    let step = StepTimer::start("send");
    let posted = match courier.post(message).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(task_id = %task.id, error = format!("{e:#}"), "could not record a message");
            return KindOutcome {
                steps: vec![step.failed("the message could not be recorded")],
                error: Some(TaskError::new(
                    codes::DELIVERY_FAILED,
                    "the message could not be recorded",
                )),
                retry_after: Some(crate::kinds::run::automatic_retry_delay(task, None)),
                ..KindOutcome::default()
            };
        }
    };
    outcome_of_message(&posted, step, log)
}

/// A task's outcome from its message: sent or pending (its retries go on) completes; failed
/// fails with `delivery_failed`.
pub(crate) fn outcome_of_message(
    message: &OutboundMessage,
    step: StepTimer,
    log: &mut AttemptLog,
) -> KindOutcome {
    let result = json!({
        "message_id": message.id,
        "channel": message.channel.as_str(),
        "status": message.status.as_str(),
    });
    let last_error = message.last_error.clone().unwrap_or_default();
    match message.status {
        MessageStatus::Sent => {
            log.system(format!("sent ({})", message.id));
            KindOutcome {
                summary: Some(format!(
                    "{} sent to {}",
                    message.channel.as_str(),
                    shown_to(message)
                )),
                steps: vec![step.ok(Some(result.clone()))],
                result: Some(result),
                ..KindOutcome::default()
            }
        }
        MessageStatus::Pending => {
            log.system(format!(
                "not delivered yet ({last_error}); it will be tried again for up to 24 hours"
            ));
            KindOutcome {
                summary: Some(format!(
                    "{} to {} pending: {last_error}",
                    message.channel.as_str(),
                    shown_to(message)
                )),
                steps: vec![step.ok(Some(result.clone()))],
                result: Some(result),
                ..KindOutcome::default()
            }
        }
        MessageStatus::Failed => {
            log.system(format!("not delivered: {last_error}"));
            KindOutcome {
                summary: Some(format!(
                    "{} to {} failed",
                    message.channel.as_str(),
                    shown_to(message)
                )),
                steps: vec![step.failed(last_error.clone())],
                result: Some(result),
                error: Some(TaskError::new(codes::DELIVERY_FAILED, last_error)),
                retry_after: None,
                usage: None,
            }
        }
    }
}

/// Where a message went, as a summary shows it (a webhook URL without its query).
fn shown_to(message: &OutboundMessage) -> String {
    match message.channel {
        Channel::Webhook => crate::kinds::api_call::loggable_url(&message.to),
        _ => message.to.clone(),
    }
}

/// A webhook's body: `{"type", "task", "message"}`.
pub fn webhook_payload(kind: &str, task: &Task, message: &str) -> Value {
    json!({"type": kind, "task": task.view(), "message": message})
}

/// The messages that tell of an attempt's outcome, per the task's `notify` (default: an email
/// to its notification address), or none when its outcome is not one to tell.
pub fn completion_messages(
    task: &Task,
    attempt: Attempt,
    settings: &Settings,
    now: chrono::DateTime<Utc>,
) -> Vec<OutboundMessage> {
    let spec = task.notify.clone().unwrap_or_default();
    let exec = task.executions.iter().find(|e| e.attempt == attempt);
    let status = match exec.map(|e| e.state) {
        Some(ExecState::Completed) => TaskStatus::Completed,
        Some(ExecState::NeedsReview) => TaskStatus::NeedsReview,
        Some(ExecState::Failed) => TaskStatus::Failed,
        _ => task.status,
    };
    let wanted = match status {
        TaskStatus::Completed | TaskStatus::NeedsReview => spec.on_complete,
        _ => spec.on_failure,
    };
    if !wanted {
        return Vec::new();
    }
    let channels = if spec.channels.is_empty() {
        NotifySpec::default_channels()
    } else {
        spec.channels.clone()
    };
    let email = crate::worker::completion_email(task, attempt, settings);
    // What an email channel says. It goes to the channel's own address when it names one, so
    // it must not depend on the task having one.
    let letter = crate::worker::completion_email_to(task, attempt, settings, String::new());
    let event = format!("task.{}", status.as_str());
    channels
        .iter()
        .enumerate()
        .filter_map(|(i, channel)| {
            let (kind, to) = destination(channel, task.notification_address())?;
            let summary = email.as_ref().map_or_else(
                || format!("{}: {}", status.as_str(), task.title),
                |e| e.subject.clone(),
            );
            let content = match kind {
                Channel::Email => MessageContent {
                    text: letter.text.clone(),
                    html: Some(letter.html.clone()),
                    payload: None,
                },
                Channel::Webhook => MessageContent {
                    text: summary.clone(),
                    html: None,
                    payload: Some(webhook_payload(&event, task, &summary)),
                },
                Channel::Sms => MessageContent {
                    text: summary.clone(),
                    html: None,
                    payload: None,
                },
            };
            let subject = match (kind, channel) {
                (Channel::Email, ChannelSpec::Email { subject, .. }) => {
                    Some(subject.clone().unwrap_or_else(|| letter.subject.clone()))
                }
                _ => None,
            };
            Some(OutboundMessage::new(
                MessageId::derive(&task.id, attempt, &format!("completion/{i}")),
                task.owner.clone(),
                task.id.clone(),
                attempt,
                kind,
                to,
                subject,
                content,
                now,
                settings.message_keep_trying,
            ))
        })
        .collect()
}

impl NotifySpec {
    /// The channels of a `notify` that names none: an email to the notification address.
    pub fn default_channels() -> Vec<ChannelSpec> {
        vec![ChannelSpec::Email {
            to: None,
            subject: None,
        }]
    }
}

/// Sends each channel: email through the mailer, webhooks signed with the outbound secret
/// through the address guard, SMS through GoHighLevel.
pub struct ChannelSender {
    pub mailer: Arc<dyn Mailer>,
    /// Guarded: a webhook URL is a user's.
    pub http: Arc<dyn HttpClient>,
    /// For GoHighLevel, which the operator configured.
    pub service_http: Arc<dyn HttpClient>,
    pub secrets: Arc<dyn SecretSource>,
    pub settings: Arc<Settings>,
}

#[async_trait]
impl MessageSender for ChannelSender {
    async fn send(&self, message: &OutboundMessage) -> SendOutcome {
        match message.channel {
            Channel::Email => self.email(message).await,
            Channel::Webhook => self.webhook(message).await,
            Channel::Sms => self.sms(message).await,
        }
    }
}

impl ChannelSender {
    async fn email(&self, message: &OutboundMessage) -> SendOutcome {
        let email = Email {
            idempotency_key: message.id.to_string(),
            from: self.settings.email_from.clone(),
            to: message.to.clone(),
            subject: message.subject.clone().unwrap_or_default(),
            text: message.content.text.clone(),
            html: message.content.html.clone().unwrap_or_else(|| {
                format!(
                    "<!doctype html><html><body><pre>{}</pre></body></html>",
                    html_escape(&message.content.text)
                )
            }),
        };
        match self.mailer.send(&email).await {
            Ok(()) => SendOutcome::Sent,
            Err(MailError::Retryable(e)) => SendOutcome::Retry {
                error: format!("the mail server did not take it: {e:#}"),
                retry_after: None,
            },
            Err(MailError::Permanent(why)) => SendOutcome::Failed { error: why },
        }
    }

    async fn webhook(&self, message: &OutboundMessage) -> SendOutcome {
        let secrets = match self.secrets.secrets().await {
            Ok(s) => s,
            Err(e) => {
                return SendOutcome::Retry {
                    error: format!("the deployment's secrets could not be read: {e:#}"),
                    retry_after: None,
                };
            }
        };
        let Some(key) = secrets
            .extra
            .get(OUTBOUND_SECRET)
            .and_then(|s| CallbackSecret::parse(s.expose_secret()).ok())
        else {
            return SendOutcome::Failed {
                error: "no outbound webhook secret (PJ_OUTBOUND_SECRET) is configured".into(),
            };
        };
        let body = serde_json::to_vec(&message.content.payload).unwrap_or_default();
        let Ok(id) = WebhookId::parse(message.id.as_str()) else {
            return SendOutcome::Failed {
                error: "the message id is not a webhook id".into(),
            };
        };
        let mut headers: Vec<(String, HeaderValue)> =
            signed_headers(&key, &id, Utc::now().timestamp(), &body)
                .into_iter()
                .map(|(n, v)| (n.to_owned(), HeaderValue::Plain(v)))
                .collect();
        headers.push((
            "Content-Type".into(),
            HeaderValue::Plain("application/json".into()),
        ));
        let request = HttpRequest {
            method: "POST".into(),
            url: message.to.clone(),
            headers,
            body: Some(body),
            timeout: std::time::Duration::from_secs(15),
            max_body_bytes: 4 * 1024,
            // A redirected POST would be sent on as a GET: a receiver must answer itself.
            follow_redirects: false,
        };
        match self.http.send(&request).await {
            Ok(r) if (200..300).contains(&r.status) => SendOutcome::Sent,
            Ok(r) => SendOutcome::Retry {
                error: format!("the receiver answered {}", r.status),
                retry_after: r.retry_after(),
            },
            Err(HttpError::Refused(why)) => SendOutcome::Failed { error: why },
            Err(e) => SendOutcome::Retry {
                error: e.to_string(),
                retry_after: None,
            },
        }
    }

    async fn sms(&self, message: &OutboundMessage) -> SendOutcome {
        let secrets = match self.secrets.secrets().await {
            Ok(s) => s,
            Err(e) => {
                return SendOutcome::Retry {
                    error: format!("the deployment's secrets could not be read: {e:#}"),
                    retry_after: None,
                };
            }
        };
        let Some(key) = secrets.extra.get(ghl::API_KEY_SECRET) else {
            return SendOutcome::Failed {
                error: "SMS goes through GoHighLevel, and GHL_API_KEY is not set".into(),
            };
        };
        let text = message.content.text.trim_end();
        match ghl::send_sms(
            &self.settings.ghl,
            key,
            self.service_http.as_ref(),
            &message.to,
            text,
        )
        .await
        {
            Ok(r) if (200..300).contains(&r.status) => SendOutcome::Sent,
            Ok(r) if crate::kinds::api_call::is_retryable_status(r.status) => SendOutcome::Retry {
                error: format!("GoHighLevel answered {}", r.status),
                retry_after: r.retry_after(),
            },
            Ok(r) => SendOutcome::Failed {
                error: format!("GoHighLevel answered {}", r.status),
            },
            Err(HttpError::Refused(why)) => SendOutcome::Failed { error: why },
            Err(e) => SendOutcome::Retry {
                error: e.to_string(),
                retry_after: None,
            },
        }
    }
}
