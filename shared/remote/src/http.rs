//! What the remote runners share: one HTTP client, and how an answer of GitHub or Daytona
//! becomes a [`DispatchError`] (retry later, or fail the attempt saying what to fix).

use std::time::Duration;

use chrono::{DateTime, Utc};
use std::sync::Arc;

use pj_core::ports::{DispatchError, SecretSource, Secrets};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Every request's limit: a dispatch is a few small calls, and the queue retries.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// GitHub asks to wait at least a minute after a secondary rate limit without `Retry-After`.
const SECONDARY_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// The longest piece of an API's error message that goes into an error.
const MESSAGE_LIMIT: usize = 300;

pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .user_agent(concat!("pithy-jaunt/", env!("CARGO_PKG_VERSION")))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()?)
}

/// An answer that was not a success, read whole.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The API's own `message` (or the start of the body), cut to a sane length.
    pub message: String,
}

impl Failure {
    /// Reads the answer. `credentials` are the values the request went out with (its bearer
    /// token or key): an API that echoes one back must not carry it into an error or a log.
    pub async fn read(response: reqwest::Response, credentials: &[&str]) -> Failure {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let m = v.get("message")?;
                Some(m.as_str().map_or_else(|| m.to_string(), str::to_owned))
            })
            .unwrap_or(body);
        Failure {
            status,
            headers,
            message: cut(&scrub(message.trim(), credentials)),
        }
    }

    /// How long the API asked to wait: `Retry-After` (seconds or an HTTP date), else GitHub's
    /// `x-ratelimit-reset` when no request is left.
    pub fn retry_after(&self, now: DateTime<Utc>) -> Option<Duration> {
        let header = |name: &str| self.headers.get(name)?.to_str().ok().map(str::trim);
        if let Some(raw) = header("retry-after") {
            if let Ok(secs) = raw.parse::<u64>() {
                return Some(Duration::from_secs(secs));
            }
            if let Ok(at) = DateTime::parse_from_rfc2822(raw) {
                return Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default());
            }
        }
        if header("x-ratelimit-remaining") == Some("0") {
            let reset = header("x-ratelimit-reset")?.parse::<i64>().ok()?;
            let at = DateTime::from_timestamp(reset, 0)?;
            return Some((at - now).to_std().unwrap_or_default());
        }
        None
    }

    /// A rate limit: 429, or GitHub's 403 for a primary or secondary limit.
    pub fn is_rate_limit(&self) -> bool {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            return true;
        }
        self.status == StatusCode::FORBIDDEN
            && (self.headers.contains_key("retry-after")
                || self
                    .headers
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v == "0")
                || self.message.to_ascii_lowercase().contains("rate limit"))
    }

    /// The error for this answer: retried when it may pass, else `advice` says what to fix.
    pub fn into_dispatch_error(
        self,
        what: &str,
        now: DateTime<Utc>,
        advice: impl FnOnce(StatusCode) -> String,
    ) -> DispatchError {
        let detail = if self.message.is_empty() {
            String::new()
        } else {
            format!(": {}", self.message)
        };
        if self.is_rate_limit() {
            let wait = self.retry_after(now).or(
                // A secondary limit without a header: GitHub says to wait a minute.
                (self.status == StatusCode::FORBIDDEN).then_some(SECONDARY_RATE_LIMIT_WAIT),
            );
            return DispatchError::Retryable {
                message: format!("{what}: rate limited ({}){detail}", self.status.as_u16()),
                retry_after: wait,
            };
        }
        if self.status.is_server_error() || self.status == StatusCode::REQUEST_TIMEOUT {
            return DispatchError::Retryable {
                message: format!("{what}: the service answered {}{detail}", self.status),
                retry_after: self.retry_after(now),
            };
        }
        DispatchError::Permanent {
            message: format!(
                "{what}: refused ({}){detail}. {}",
                self.status.as_u16(),
                advice(self.status)
            ),
        }
    }
}

/// The deployment's secrets now; failing to read them may pass (Secrets Manager), so it is
/// retried.
pub async fn current_secrets(source: &dyn SecretSource) -> Result<Arc<Secrets>, DispatchError> {
    source
        .secrets()
        .await
        .map_err(|e| DispatchError::Retryable {
            message: format!("could not read the secrets: {e:#}"),
            retry_after: None,
        })
}

/// A request that got no answer: retried.
pub fn unreachable(what: &str, error: &reqwest::Error) -> DispatchError {
    let kind = if error.is_timeout() {
        "timed out"
    } else {
        "could not connect"
    };
    DispatchError::Retryable {
        message: format!("{what}: {kind} ({})", cut(&scrub(&error.to_string(), &[]))),
        retry_after: None,
    }
}

/// `text` without `credentials` (by value) nor anything shaped like a token, provider key or
/// callback secret. Done before cutting, so a cut cannot leave half a secret unrecognised.
pub fn scrub(text: &str, credentials: &[&str]) -> String {
    let known = pj_core::redact::redact_values(text, credentials);
    pj_core::redact::redact(&known).into_owned()
}

/// At most [`MESSAGE_LIMIT`] characters, on a character boundary.
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn failure(status: u16, headers: &[(&'static str, &str)], message: &str) -> Failure {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Failure {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            message: message.into(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date_should_both_be_read() {
        let secs = failure(429, &[("retry-after", "7")], "");
        assert_eq!(secs.retry_after(now()), Some(Duration::from_secs(7)));
        let date = failure(503, &[("retry-after", "Fri, 15 Jan 2027 08:00:30 GMT")], "");
        assert_eq!(date.retry_after(now()), Some(Duration::from_secs(30)));
    }

    #[test]
    fn an_exhausted_primary_limit_should_wait_until_its_reset() {
        let f = failure(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1800000090"),
            ],
            "API rate limit exceeded",
        );
        match f.into_dispatch_error("dispatch", now(), |_| unreachable!()) {
            DispatchError::Retryable { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(90)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_secondary_limit_without_headers_should_wait_a_minute() {
        let f = failure(403, &[], "You have exceeded a secondary rate limit");
        match f.into_dispatch_error("dispatch", now(), |_| unreachable!()) {
            DispatchError::Retryable { retry_after, .. } => {
                assert_eq!(retry_after, Some(SECONDARY_RATE_LIMIT_WAIT))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plain_403_should_be_permanent_with_the_advice() {
        let f = failure(403, &[], "Resource not accessible by integration");
        let e = f.into_dispatch_error("dispatch", now(), |_| "grant Contents: write".into());
        assert_eq!(
            e,
            DispatchError::Permanent {
                message: "dispatch: refused (403): Resource not accessible by integration. \
                          grant Contents: write"
                    .into()
            }
        );
    }

    #[test]
    fn a_message_should_lose_the_credentials_it_echoes() {
        let text = "bad token dtn_0123456789abcdef, payload whsec_c2VjcmV0LXZhbHVl and ghs_abcdefghijklmnopqrstuvwxyz";
        let clean = scrub(text, &["dtn_0123456789abcdef"]);
        assert!(!clean.contains("dtn_0123456789abcdef"), "{clean}");
        assert!(!clean.contains("c2VjcmV0LXZhbHVl"), "{clean}");
        assert!(!clean.contains("abcdefghijklmnopqrstuvwxyz"), "{clean}");
    }

    #[test]
    fn a_long_message_should_be_cut_on_a_character_boundary() {
        let long = "é".repeat(MESSAGE_LIMIT + 10);
        let c = cut(&long);
        assert_eq!(c.chars().count(), MESSAGE_LIMIT + 1);
        assert!(c.ends_with('…'));
    }
}
