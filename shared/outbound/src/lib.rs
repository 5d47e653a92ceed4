//! The outbound HTTP client of the built-in task kinds: the core's [`HttpClient`] port on
//! reqwest, behind the address guard of [`pj_core::net`].
//!
//! Where a request may go is decided on the address actually connected to: names are resolved
//! by the client's own resolver, which refuses a name when any of its addresses is not public,
//! so the connection can only be made to checked addresses; a URL whose host is an address
//! never reaches a resolver, so it is checked before sending and on every redirect hop. There
//! is no proxy, so no connection goes anywhere else.

mod guard;

use std::error::Error as StdError;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use pj_core::net::NetworkPolicy;
use pj_core::outbound::{HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse};
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, redirect};
use url::Url;

use guard::{Follow, GuardedResolver, check_target, redirect_policy, refusal_in, shown};
pub use guard::{NameLookup, SystemLookup};

const USER_AGENT: &str = concat!("pithy-jaunt/", env!("CARGO_PKG_VERSION"));

/// The headers reqwest itself drops on a redirect to another host. A secret header outside
/// this list makes a followed request refuse such a redirect instead.
const DROPPED_ACROSS_HOSTS: [&str; 4] =
    ["authorization", "cookie", "cookie2", "proxy-authorization"];

/// The most memory set aside up front for a body, whatever length the server announces.
const PREALLOCATE_LIMIT: usize = 1 << 20;

/// The [`HttpClient`] of the product: every request through the address guard of its
/// [`NetworkPolicy`]. Build it once and share it: it holds the connection pools.
pub struct GuardedClient {
    policy: NetworkPolicy,
    /// Redirects are not followed: the `3xx` is the answer.
    direct: reqwest::Client,
    /// Redirects are followed, each hop checked.
    following: reqwest::Client,
    /// Redirects are followed, each hop checked, never to another host.
    following_same_host: reqwest::Client,
}

impl GuardedClient {
    /// A client that resolves names with the system's resolver.
    pub fn new(policy: NetworkPolicy) -> anyhow::Result<GuardedClient> {
        GuardedClient::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// A client that resolves names with `lookup`; every address it answers is still checked
    /// against `policy`.
    pub fn with_lookup(
        policy: NetworkPolicy,
        lookup: Arc<dyn NameLookup>,
    ) -> anyhow::Result<GuardedClient> {
        let resolver = Arc::new(GuardedResolver { policy, lookup });
        // One builder per redirect behaviour: reqwest's redirect policy belongs to the client,
        // not to the request.
        let build = |redirects: redirect::Policy| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .no_proxy()
                .dns_resolver(Arc::clone(&resolver))
                .redirect(redirects)
                // The previous URL (its query may hold a token) is nobody else's business.
                .referer(false)
                .build()
                .context("building the outbound HTTP client")
        };
        Ok(GuardedClient {
            policy,
            direct: build(redirect::Policy::none())?,
            following: build(redirect_policy(policy, Follow::Checked))?,
            following_same_host: build(redirect_policy(policy, Follow::CheckedSameHost))?,
        })
    }

    fn client_for(&self, request: &HttpRequest) -> &reqwest::Client {
        let carries_secret_to_others = request.headers.iter().any(|(name, value)| {
            value.is_secret()
                && !DROPPED_ACROSS_HOSTS
                    .iter()
                    .any(|dropped| name.eq_ignore_ascii_case(dropped))
        });
        if !request.follow_redirects {
            &self.direct
        } else if carries_secret_to_others {
            &self.following_same_host
        } else {
            &self.following
        }
    }

    async fn exchange(
        &self,
        builder: reqwest::RequestBuilder,
        request: &HttpRequest,
        url: &Url,
    ) -> Result<HttpResponse, HttpError> {
        let mut response = builder
            .send()
            .await
            .map_err(|err| failure(err, "could not reach", url, request))?;
        let remote_addr = response.remote_addr();
        // The resolver and the URL checks already decided this; should a path past them ever
        // open, the answer is still not handed over.
        if let Some(addr) = remote_addr {
            self.policy.check(addr.ip()).map_err(HttpError::Refused)?;
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let final_url = response.url().clone();
        let (body, truncated) = read_capped(&mut response, request.max_body_bytes)
            .await
            .map_err(|err| failure(err, "the answer broke off from", &final_url, request))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
            truncated,
            remote_addr,
        })
    }
}

#[async_trait]
impl HttpClient for GuardedClient {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        // The parser's message never quotes the input, which may hold a password.
        let url = Url::parse(&request.url)
            .map_err(|err| HttpError::Refused(format!("the URL is not valid: {err}")))?;
        check_target(self.policy, &url).map_err(HttpError::Refused)?;
        let method = method(&request.method)?;
        let headers = header_map(&request.headers)?;
        let mut builder = self
            .client_for(request)
            .request(method, url.clone())
            .headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        match tokio::time::timeout(request.timeout, self.exchange(builder, request, &url)).await {
            Ok(answer) => answer,
            Err(_elapsed) => Err(HttpError::Timeout(request.timeout)),
        }
    }
}

fn method(name: &str) -> Result<Method, HttpError> {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        _ => Err(HttpError::Refused(format!(
            "the method {name:?} is not allowed; use GET, POST, PUT, PATCH or DELETE"
        ))),
    }
}

fn header_map(headers: &[(String, HeaderValue)]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::Refused(format!("{name:?} is not a valid HTTP header name")))?;
        // The value is never quoted: it may be a credential.
        let mut header_value =
            reqwest::header::HeaderValue::from_str(value.expose()).map_err(|_| {
                HttpError::Refused(format!(
                    "the value of the header {header_name} is not valid in HTTP"
                ))
            })?;
        header_value.set_sensitive(value.is_secret());
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// Reads the body up to `max` bytes; `true` when there was more. Nothing past `max` is kept,
/// and the buffer never grows beyond it.
async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let announced = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut body = Vec::with_capacity(announced.min(max).min(PREALLOCATE_LIMIT));
    while let Some(chunk) = response.chunk().await? {
        let room = max - body.len();
        let take = chunk.len().min(room);
        let wanted = body.len() + take;
        if wanted > body.capacity() {
            let grown = (body.capacity() * 2).max(wanted).min(max);
            body.reserve_exact(grown - body.len());
        }
        body.extend_from_slice(&chunk[..take]);
        if take < chunk.len() {
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

/// The one mapping from reqwest's errors to the port's: the guard's refusals in its own words,
/// timeouts, and the rest as a network error that names the URL without its credentials or
/// query.
fn failure(err: reqwest::Error, doing: &str, url: &Url, request: &HttpRequest) -> HttpError {
    if let Some(refusal) = refusal_in(&err) {
        return HttpError::Refused(refusal.0.clone());
    }
    if err.is_timeout() {
        return HttpError::Timeout(request.timeout);
    }
    let at = err.url().map_or_else(|| shown(url), shown);
    let message = format!("{doing} {at}: {}", chain(&err.without_url()));
    HttpError::Network(scrub(message, url))
}

/// An error and its sources, one after the other.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let part = err.to_string();
        if !part.is_empty() && parts.last() != Some(&part) {
            parts.push(part);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// No error text built here quotes a URL's password; this keeps it so should a dependency's
/// message ever quote one.
fn scrub(message: String, url: &Url) -> String {
    match url.password() {
        Some(password) if !password.is_empty() => message.replace(password, "***"),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_five_methods_of_the_port_are_sent() {
        for name in ["GET", "POST", "PUT", "PATCH", "DELETE", "get"] {
            assert!(method(name).is_ok(), "{name}");
        }
        for name in ["CONNECT", "TRACE", "OPTIONS", "HEAD", "GE T", ""] {
            assert!(
                matches!(method(name), Err(HttpError::Refused(_))),
                "{name} should be refused"
            );
        }
    }

    #[test]
    fn a_secret_header_is_marked_sensitive_and_its_invalid_value_is_never_quoted() {
        let secret = HeaderValue::Secret("Bearer t0ken".to_owned().into());
        let map = header_map(&[("X-Api-Key".to_owned(), secret)]).expect("valid headers");
        assert!(map["x-api-key"].is_sensitive());
        assert_eq!(format!("{:?}", map["x-api-key"]), "Sensitive");

        let broken = HeaderValue::Secret("t0ken\r\nX-Evil: 1".to_owned().into());
        let Err(HttpError::Refused(why)) = header_map(&[("X-Api-Key".to_owned(), broken)]) else {
            panic!("a value with a line break is refused");
        };
        assert!(why.contains("x-api-key") && !why.contains("t0ken"), "{why}");

        let plain = HeaderValue::Plain("1".to_owned());
        let Err(HttpError::Refused(why)) = header_map(&[("Bad Name".to_owned(), plain)]) else {
            panic!("a name with a space is refused");
        };
        assert!(why.contains("Bad Name"), "{why}");
    }

    #[test]
    fn a_password_a_dependency_might_quote_is_scrubbed() {
        let url = Url::parse("https://user:hunter2@example.com/").expect("a URL");
        assert_eq!(
            scrub("failed for hunter2".to_owned(), &url),
            "failed for ***"
        );
    }
}
