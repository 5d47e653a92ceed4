//! The address guard on every request a page makes.
//!
//! The page's requests are paused with the DevTools `Fetch` domain (pattern `*`, request stage):
//! navigations, every redirect hop (Chromium pauses each hop as a request of its own),
//! sub-resources, XHR and `fetch()`. For each paused request the host is resolved here and the
//! request goes on only when every address it resolves to is public per `pj_core::net`;
//! otherwise it fails with `BlockedByClient` and is recorded, so the step that caused it can fail
//! with the reason rather than with Chromium's bare `net::ERR_BLOCKED_BY_CLIENT`.
//!
//! The rebinding hole, and what is done about it: after the check here Chromium resolves the name
//! again for its own connection, and a hostile DNS server can answer a public address to the
//! first lookup and `127.0.0.1` to the second. `--host-resolver-rules` cannot pin the checked
//! address (it is one rule set for the whole browser, fixed at launch), and rewriting the URL to
//! the address breaks TLS and the `Host` header. So a second check runs on the address Chromium
//! actually connected to: every response carries `remoteIPAddress`, and a response from a
//! refused address taints the session: from then on every request is refused, and every step
//! fails (the session's steps check the taint), so whatever a rebound page read cannot leave
//! through a later request or through the task's result. What remains: the one request that went
//! to the private address was sent (a GET or a form POST reaching an internal service), and a
//! request issued by the page in the instant between that response and the guard seeing it may
//! still be let through. A local forward proxy that connects to the checked address itself would
//! close both; it is not built yet. Not seen by this page-level interception at all: requests of
//! service workers and shared workers (targets of their own) and WebSocket handshakes (the
//! `Fetch` domain does not pause them); pop-ups, which would be targets of their own too, are
//! refused at launch (`--block-new-web-contents`), and so is site isolation, which would put a
//! cross-site iframe in a target of its own. A remote browser (Browserbase) keeps its own flags:
//! there pop-ups and cross-site frames are outside the guard, but that browser sits in the
//! provider's network, not the operator's.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    ErrorReason, EventResponseReceived, ResourceType,
};
use futures::StreamExt;
use pj_core::net::NetworkPolicy;
use tokio::task::JoinSet;

/// How long a name may take to resolve before its request is refused.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request the guard refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedRequest {
    /// The request's URL.
    pub url: String,
    /// Why, in words (the address and the rule).
    pub reason: String,
    /// Whether it was a frame's document (a navigation or one of its redirects), which fails the
    /// step that caused it; a refused image or script only leaves a hole in the page.
    pub document: bool,
}

/// What the guard has seen, shared with the session's steps.
#[derive(Debug, Default)]
pub(crate) struct GuardLog {
    blocked: Mutex<Vec<BlockedRequest>>,
    /// Set when a response came from a refused address (see the module doc).
    tainted: Mutex<Option<BlockedRequest>>,
}

impl GuardLog {
    pub(crate) fn blocked(&self) -> Vec<BlockedRequest> {
        self.blocked.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub(crate) fn blocked_count(&self) -> usize {
        self.blocked.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// The first document refused since `since` (a count from [`Self::blocked_count`]).
    pub(crate) fn blocked_document_since(&self, since: usize) -> Option<BlockedRequest> {
        let blocked = self.blocked.lock().ok()?;
        blocked.iter().skip(since).find(|b| b.document).cloned()
    }

    pub(crate) fn taint(&self) -> Option<BlockedRequest> {
        self.tainted.lock().ok().and_then(|t| t.clone())
    }

    fn record(&self, blocked: BlockedRequest) {
        if let Ok(mut list) = self.blocked.lock() {
            list.push(blocked);
        }
    }

    fn set_taint(&self, blocked: BlockedRequest) {
        if let Ok(mut taint) = self.tainted.lock() {
            taint.get_or_insert(blocked);
        }
    }
}

/// Starts guarding `page`: pauses all its requests and decides each one in the background. The
/// returned task runs until aborted (the session aborts it when it ends).
pub(crate) async fn install(
    page: &Page,
    policy: NetworkPolicy,
    log: Arc<GuardLog>,
) -> Result<tokio::task::JoinHandle<()>, chromiumoxide::error::CdpError> {
    // Listeners first, then interception: a request paused before anyone listens would hang.
    let mut paused = page.event_listener::<EventRequestPaused>().await?;
    let mut responses = page.event_listener::<EventResponseReceived>().await?;
    page.execute(
        EnableParams::builder()
            .pattern(
                RequestPattern::builder()
                    .url_pattern("*")
                    .request_stage(RequestStage::Request)
                    .build(),
            )
            .build(),
    )
    .await?;
    let page = page.clone();
    Ok(tokio::spawn(async move {
        // Each request is decided in a task of its own, so one slow name does not hold up the
        // page's other requests; aborting this task drops the set and so aborts them all.
        let mut deciding = JoinSet::new();
        loop {
            tokio::select! {
                Some(event) = paused.next() => {
                    let (page, log) = (page.clone(), Arc::clone(&log));
                    deciding.spawn(async move { decide(&page, policy, &log, &event).await });
                }
                Some(event) = responses.next() => {
                    let Some(ip) = event.response.remote_ip_address.as_deref() else { continue };
                    let Ok(ip) = ip.trim_matches(['[', ']']).parse::<IpAddr>() else { continue };
                    if let Err(reason) = policy.check(ip) {
                        tracing::warn!(url = %event.response.url, %ip, "a response came from a refused address; the session is tainted");
                        log.set_taint(BlockedRequest {
                            url: event.response.url.clone(),
                            reason: format!("the browser connected to {ip} after the name was checked: {reason}"),
                            document: true,
                        });
                    }
                }
                Some(_) = deciding.join_next(), if !deciding.is_empty() => {}
                else => break,
            }
        }
    }))
}

async fn decide(page: &Page, policy: NetworkPolicy, log: &GuardLog, event: &EventRequestPaused) {
    let url = event.request.url.as_str();
    let verdict = match log.taint() {
        Some(taint) => Err(format!("the session is stopped: {}", taint.reason)),
        None => verdict(policy, url).await,
    };
    let result = match verdict {
        Ok(()) => page
            .execute(ContinueRequestParams::new(event.request_id.clone()))
            .await
            .map(|_| ()),
        Err(reason) => {
            tracing::info!(url = %cut(url), %reason, "request refused by the address guard");
            log.record(BlockedRequest {
                url: cut(url),
                reason,
                document: matches!(event.resource_type, ResourceType::Document),
            });
            page.execute(FailRequestParams::new(
                event.request_id.clone(),
                ErrorReason::BlockedByClient,
            ))
            .await
            .map(|_| ())
        }
    };
    if let Err(e) = result {
        // The page navigated away or closed while this request was being decided: Chromium
        // dropped the request itself.
        tracing::debug!(error = %e, "a paused request could not be answered");
    }
}

/// Whether a request to `url` may go out under `policy`.
pub(crate) async fn verdict(policy: NetworkPolicy, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" | "ws" | "wss" => {}
        // No network behind these: the page's own data, or Chromium's blank page.
        "data" | "blob" | "about" => return Ok(()),
        other => return Err(format!("the {other}: scheme is not allowed")),
    }
    if policy.allow_private {
        return Ok(());
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let ips: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                Ok(Err(e)) => return Err(format!("{name} does not resolve: {e}")),
                Err(_) => return Err(format!("{name} did not resolve within 5 s")),
            }
        }
        None => return Err("the URL has no host".into()),
    };
    let host = parsed.host_str().unwrap_or_default();
    policy.check_all(host, &ips)
}

/// URLs can be long (data in the query); a log line or an error needs the start only.
fn cut(url: &str) -> String {
    const MAX: usize = 300;
    if url.len() <= MAX {
        url.to_string()
    } else {
        let end = (0..=MAX)
            .rev()
            .find(|i| url.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &url[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARDED: NetworkPolicy = NetworkPolicy {
        allow_private: false,
    };

    #[tokio::test]
    async fn private_addresses_and_names_resolving_to_them_are_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3:8080/x",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::1]/",
            "http://localhost:9/",
            "ws://127.0.0.1/socket",
        ] {
            assert!(
                verdict(GUARDED, url).await.is_err(),
                "{url} should be refused"
            );
        }
        let reason = verdict(GUARDED, "http://169.254.169.254/")
            .await
            .expect_err("refused");
        assert!(reason.contains("metadata"), "{reason}");
    }

    #[tokio::test]
    async fn public_addresses_and_pages_without_network_pass() {
        for url in [
            "http://1.1.1.1/",
            "https://[2606:4700::1111]/",
            "data:text/html,hi",
            "about:blank",
        ] {
            assert_eq!(verdict(GUARDED, url).await, Ok(()), "{url} should pass");
        }
    }

    #[tokio::test]
    async fn local_files_are_refused_even_when_private_networks_are_allowed() {
        let open = NetworkPolicy {
            allow_private: true,
        };
        assert!(verdict(open, "file:///etc/passwd").await.is_err());
        assert!(verdict(open, "http://127.0.0.1/").await.is_ok());
    }
}
