//! Completion emails of the embedded deployment: an outbox folder of `.eml` files, or SMTP.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pj_core::ports::{Email, MailError, Mailer};

/// How long one SMTP command may take before the send fails (and the notify queue retries).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the RFC 5322 message of an email: multipart/alternative with the text and HTML
/// versions. A recipient lettre cannot parse is a permanent failure (the same address would be
/// refused on every try); a bad sender is the operator's to fix, so it stays retryable.
fn build_message(email: &Email) -> Result<Message, MailError> {
    let from: Mailbox = email.from.parse().map_err(|e| {
        anyhow::anyhow!(
            "the sender address {:?} (PJ_EMAIL_FROM) is not a valid email address: {e}",
            email.from
        )
    })?;
    let to: Mailbox = email.to.parse().map_err(|e| {
        MailError::Permanent(format!(
            "the notification address {:?} is not a valid email address: {e}",
            email.to
        ))
    })?;
    check_key(&email.idempotency_key)?;
    // The same Message-ID for every send of an attempt lets a mail system that deduplicates
    // drop a repeat.
    let message_id = format!("<{}@{}>", email.idempotency_key, from.email.domain());
    // Task titles are user input; lettre would encode a line break safely, but a subject is
    // one line to read.
    let subject: String = email
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date_now()
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .context("building the email message")
        .map_err(MailError::from)
}

/// The idempotency key names a file and fills a Message-ID, so it must be safe in both.
fn check_key(key: &str) -> anyhow::Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        anyhow::bail!("the email's idempotency key {key:?} cannot name an outbox file")
    }
}

/// Writes each email as an RFC 5322 file, `<dir>/<idempotency_key>.eml`, for a machine with
/// no mail server: an operator (or a mail client) reads them there.
///
/// One file per attempt: a repeated send replaces the file whole (written beside it, synced,
/// renamed over it), so a reader never sees half a message and a retry never makes two.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// Creates the folder when it is missing.
    pub fn new(dir: impl Into<PathBuf>) -> anyhow::Result<OutboxMailer> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the outbox folder {}", dir.display()))?;
        Ok(OutboxMailer { dir })
    }

    /// The file an email with this idempotency key goes to.
    pub fn path_for(&self, idempotency_key: &str) -> anyhow::Result<PathBuf> {
        check_key(idempotency_key)?;
        Ok(self.dir.join(format!("{idempotency_key}.eml")))
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let bytes = build_message(email)?.formatted();
        let path = self.path_for(&email.idempotency_key)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &bytes))
            .await
            .context("the outbox writer stopped")??;
        Ok(())
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".eml")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in the outbox {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing a file in the outbox {}", dir.display()))?;
    tmp.persist(path)
        .with_context(|| format!("moving the email into place at {}", path.display()))?;
    // The rename is durable only once the folder is synced too.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the outbox {}", dir.display()))?;
    Ok(())
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtps://`: TLS from the first byte.
    Tls,
    /// `smtp://`: STARTTLS, and the send fails when the server does not offer it.
    StartTls,
    /// `smtp://...?tls=opportunistic`: STARTTLS when offered.
    Opportunistic,
    /// `smtp://...?tls=none`: plain text, for a relay on the same host or network.
    None,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::Tls => 465,
            Security::StartTls | Security::Opportunistic => 587,
            Security::None => 25,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::Opportunistic => "opportunistic starttls",
            Security::None => "none",
        }
    }
}

/// Sends each email over SMTP (`PJ_SMTP_URL`). A connection per email: completion emails are
/// few.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    security: Security,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security.as_str())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Reads `PJ_SMTP_URL`:
    ///
    /// - `smtp://user:pass@host:587`: STARTTLS, required (default port 587);
    /// - `smtps://user:pass@host`: TLS from the start (default port 465);
    /// - `smtp://host:25?tls=none`: no encryption, for a local relay (default port 25);
    /// - `smtp://host?tls=opportunistic`: STARTTLS when the server offers it.
    ///
    /// User name and password are percent-decoded. Errors never repeat the URL, which holds the
    /// password.
    pub fn from_url(raw: &str) -> anyhow::Result<SmtpMailer> {
        // url's errors do not quote their input.
        let url = url::Url::parse(raw.trim())
            .map_err(|e| anyhow::anyhow!("PJ_SMTP_URL is not a valid URL: {e}"))?;
        let mut tls = None;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "tls" => tls = Some(value.into_owned()),
                other => anyhow::bail!(
                    "PJ_SMTP_URL has an unknown parameter {other:?}; only `tls` is understood"
                ),
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None | Some("tls" | "wrapper" | "required")) => Security::Tls,
            ("smtps", Some(other)) => anyhow::bail!(
                "PJ_SMTP_URL: smtps:// always uses TLS, so tls={other:?} does not fit; use smtp:// for other modes"
            ),
            ("smtp", None | Some("required" | "starttls")) => Security::StartTls,
            ("smtp", Some("opportunistic")) => Security::Opportunistic,
            ("smtp", Some("none")) => Security::None,
            ("smtp", Some(other)) => anyhow::bail!(
                "PJ_SMTP_URL has tls={other:?}; use required (the default), opportunistic or none"
            ),
            (scheme, _) => {
                anyhow::bail!("PJ_SMTP_URL must start with smtp:// or smtps://, not {scheme}://")
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow::anyhow!("PJ_SMTP_URL names no host"))?
            // An IPv6 host comes bracketed.
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(security.default_port());

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .timeout(Some(SMTP_TIMEOUT));
        if security != Security::None {
            let params = TlsParameters::new(host.clone()).map_err(|e| {
                anyhow::anyhow!("PJ_SMTP_URL: TLS for {host} cannot be set up: {e}")
            })?;
            builder = builder.tls(match security {
                Security::Tls => Tls::Wrapper(params),
                Security::StartTls => Tls::Required(params),
                _ => Tls::Opportunistic(params),
            });
        }
        match (url.username(), url.password()) {
            ("", None) => {}
            (user, Some(password)) => {
                let user = decode(user, "user name")?;
                let password = decode(password, "password")?;
                if security == Security::None {
                    tracing::warn!(
                        host,
                        "PJ_SMTP_URL sends the SMTP password unencrypted (tls=none)"
                    );
                }
                builder = builder.credentials(Credentials::new(user, password));
            }
            (_, None) => anyhow::bail!("PJ_SMTP_URL has a user name but no password"),
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            host,
            port,
            security,
        })
    }
}

fn decode(raw: &str, what: &str) -> anyhow::Result<String> {
    percent_decode(raw).ok_or_else(|| {
        anyhow::anyhow!("PJ_SMTP_URL: the {what} is not valid percent-encoded UTF-8")
    })
}

fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = build_message(email)?;
        let through = || {
            format!(
                "sending the email through {}:{} ({})",
                self.host,
                self.port,
                self.security.as_str()
            )
        };
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A 5xx answer (no such mailbox, address refused) comes again on every try.
            Err(e) if e.is_permanent() => Err(MailError::Permanent(format!("{}: {e}", through()))),
            Err(e) => Err(anyhow::Error::new(e).context(through()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_credentials_are_decoded() {
        assert_eq!(percent_decode("p%40ss%3Aw").as_deref(), Some("p@ss:w"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }

    #[test]
    fn a_subject_with_line_breaks_cannot_add_headers() {
        let email = Email {
            idempotency_key: "tsk_1-1".into(),
            from: "pj@example.com".into(),
            to: "dev@example.com".into(),
            subject: "Fix it\r\nBcc: evil@example.net".into(),
            text: "x\n".into(),
            html: "<p>x</p>".into(),
        };
        let raw =
            String::from_utf8(build_message(&email).expect("builds").formatted()).expect("utf-8");
        assert!(
            raw.contains("Subject: Fix it  Bcc: evil@example.net\r\n"),
            "{raw}"
        );
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn keys_that_could_escape_the_outbox_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "a..b", "x y", "x."] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_key("tsk_01hx-2").is_ok());
    }
}
