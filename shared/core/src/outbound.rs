//! The port through which the built-in task kinds reach the outside world over HTTP: a user's
//! API call, GoHighLevel, an outbound webhook. The adapter behind it is the address guard (see
//! [`crate::net`]): it refuses loopback, private, link-local and metadata addresses on the
//! address actually connected to, redirects included, unless the operator allows them.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

/// The most redirects an outgoing request follows.
pub const MAX_REDIRECTS: usize = 5;

/// A header value: plain, or a credential that never prints.
#[derive(Clone)]
pub enum HeaderValue {
    Plain(String),
    Secret(SecretString),
}

impl HeaderValue {
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(v) => v,
            HeaderValue::Secret(v) => v.expose_secret(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, HeaderValue::Secret(_))
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Plain(v) => write!(f, "{v:?}"),
            HeaderValue::Secret(_) => f.write_str("***"),
        }
    }
}

/// One outgoing request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    pub headers: Vec<(String, HeaderValue)>,
    pub body: Option<Vec<u8>>,
    /// For the whole exchange, the body included.
    pub timeout: Duration,
    /// The most body bytes kept; the rest is not read and the response says `truncated`.
    pub max_body_bytes: usize,
    /// Whether redirects are followed (at most [`MAX_REDIRECTS`], each hop checked by the
    /// guard); when not, a `3xx` is the answer.
    pub follow_redirects: bool,
}

/// The answer to a request.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than `max_body_bytes` and was cut.
    pub truncated: bool,
    /// The address the final response came from.
    pub remote_addr: Option<SocketAddr>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in seconds (the HTTP-date form is read as no hint).
    pub fn retry_after(&self) -> Option<Duration> {
        let secs: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(Duration::from_secs(secs))
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Refused before anything was sent: the address guard, a bad URL, too many redirects.
    /// Trying again cannot help.
    #[error("{0}")]
    Refused(String),
    /// No answer within the request's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke; may pass.
    #[error("{0}")]
    Network(String),
}

/// Sends requests through the address guard.
#[async_trait]
pub trait HttpClient: Send + Sync {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError>;
}
