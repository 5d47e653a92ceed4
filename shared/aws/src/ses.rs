//! [`Mailer`] on SES v2.

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use pj_core::email::check_address;
use pj_core::ports::{Email, MailError, Mailer};

/// Sends completion email with SES v2 `SendEmail`. The sender is each email's `from`
/// (`PJ_EMAIL_FROM`), which must be an identity verified in SES (an address or its domain).
///
/// SES has no idempotency token: the notify flow's `notified` record keeps a redelivered
/// message from sending twice, not this adapter.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client) -> SesMailer {
        SesMailer {
            client,
            configuration_set: None,
        }
    }

    /// Sends through an SES configuration set (for event publishing or a dedicated IP pool).
    pub fn with_configuration_set(mut self, name: impl Into<String>) -> SesMailer {
        self.configuration_set = Some(name.into());
        self
    }
}

fn utf8(data: &str) -> anyhow::Result<Content> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .context("could not build email content")
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        // SES takes the same addresses the core accepts; one it cannot take never will be.
        if let Err(why) = check_address(&email.to) {
            return Err(MailError::Permanent(format!(
                "the notification address cannot receive email: {why}"
            )));
        }
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&email.text)?)
                    .html(utf8(&email.html)?)
                    .build(),
            )
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(|e| {
                // A malformed request (a recipient SES cannot parse) fails the same way every
                // time. MessageRejected is not taken as permanent: it is also what an unverified
                // sender or a sandboxed account gets, which the operator fixes.
                let permanent = matches!(
                    e.as_service_error(),
                    Some(SendEmailError::BadRequestException(_))
                );
                let e = anyhow::Error::new(e)
                    .context(format!("SES SendEmail ({}) failed", email.idempotency_key));
                if permanent {
                    MailError::Permanent(format!("{e:#}"))
                } else {
                    MailError::Retryable(e)
                }
            })?;
        tracing::info!(
            email = %email.idempotency_key,
            message_id = output.message_id().unwrap_or(""),
            "email sent through SES"
        );
        Ok(())
    }
}
