//! The address guard inside the client: the resolver that refuses names, the check of URLs whose
//! host is an address (the resolver never sees those), and the redirect policy that applies both
//! to every hop.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use pj_core::net::NetworkPolicy;
use pj_core::outbound::MAX_REDIRECTS;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use url::{Host, Url};

/// A request refused by the guard inside reqwest (the resolver, the redirect policy). It comes
/// back wrapped in reqwest's errors; [`refusal_in`] finds it so that the caller sees the guard's
/// own words as `HttpError::Refused`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refusal(pub(crate) String);

/// The refusal somewhere in `err`'s source chain, if any.
pub(crate) fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(refusal) = err.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        next = err.source();
    }
    None
}

/// Resolves a host name to its addresses. The system's resolver ([`SystemLookup`]) in
/// production; whatever it answers, the guard checks every address before a connection is made.
#[async_trait]
pub trait NameLookup: Send + Sync {
    /// The addresses `host` resolves to.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait]
impl NameLookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let mut seen = HashSet::new();
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|addr| addr.ip())
            .filter(|ip| seen.insert(*ip))
            .collect())
    }
}

/// reqwest's resolver: the connection can only go to addresses this returned, so checking them
/// here is checking the address actually connected to (a name that resolves differently the
/// second time cannot slip past).
pub(crate) struct GuardedResolver {
    pub(crate) policy: NetworkPolicy,
    pub(crate) lookup: Arc<dyn NameLookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let lookup = Arc::clone(&self.lookup);
        Box::pin(async move {
            let host = name.as_str();
            let ips = lookup.lookup(host).await?;
            policy.check_all(host, &ips).map_err(Refusal)?;
            // Port 0: reqwest puts in the URL's port.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Whether `url` may be requested: `http` or `https`, and, when its host is an address, an
/// address the policy allows. A host name is left to the resolver.
pub(crate) fn check_target(policy: NetworkPolicy, url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("only http and https URLs are allowed, not {other}")),
    }
    match url.host() {
        None => Err("the URL has no host".to_owned()),
        Some(Host::Ipv4(ip)) => policy.check(ip.into()),
        Some(Host::Ipv6(ip)) => policy.check(ip.into()),
        // The URL parser turns every address form into `Ipv4`/`Ipv6`; this is in case a name
        // still reads as an address to the connector, which would then skip the resolver.
        Some(Host::Domain(name)) => match name.parse::<IpAddr>() {
            Ok(ip) => policy.check(ip),
            Err(_) => Ok(()),
        },
    }
}

/// A URL as it may appear in a message: no user, password, query or fragment.
pub(crate) fn shown(url: &Url) -> String {
    let mut url = url.clone();
    // Only fails for URLs that cannot have credentials, which then have none to remove.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// Which redirects a client follows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Follow {
    /// At most [`MAX_REDIRECTS`], each hop checked.
    Checked,
    /// The same, and never to another host: for requests carrying a secret header that reqwest
    /// does not drop on a redirect to another host by itself (it drops `Authorization`,
    /// `Cookie` and `Proxy-Authorization`, not an `X-Api-Key`).
    CheckedSameHost,
}

pub(crate) fn redirect_policy(policy: NetworkPolicy, follow: Follow) -> Policy {
    Policy::custom(move |attempt| match check_hop(policy, follow, &attempt) {
        Ok(()) => attempt.follow(),
        Err(why) => attempt.error(Refusal(why)),
    })
}

/// `previous` holds the URLs already requested, the first one included: the nth redirect comes
/// with n of them.
fn check_hop(policy: NetworkPolicy, follow: Follow, attempt: &Attempt<'_>) -> Result<(), String> {
    check_redirect(policy, follow, attempt.previous(), attempt.url())
}

pub(crate) fn check_redirect(
    policy: NetworkPolicy,
    follow: Follow,
    previous: &[Url],
    next: &Url,
) -> Result<(), String> {
    if previous.len() > MAX_REDIRECTS {
        return Err(format!("more than {MAX_REDIRECTS} redirects"));
    }
    check_target(policy, next)
        .map_err(|why| format!("the redirect to {} is refused: {why}", shown(next)))?;
    if let (Follow::CheckedSameHost, Some(first)) = (follow, previous.first()) {
        if first.host_str() != next.host_str()
            || first.port_or_known_default() != next.port_or_known_default()
        {
            return Err(format!(
                "the redirect to {} is refused: it leads to another host and the request \
                 carries a secret header",
                shown(next)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    fn hop(policy: NetworkPolicy, follow: Follow, from: &str, to: &str) -> Result<(), String> {
        check_redirect(policy, follow, &[url(from)], &url(to))
    }

    #[test]
    fn a_redirect_to_the_metadata_address_is_refused_with_the_policys_words() {
        let why = hop(
            NetworkPolicy::default(),
            Follow::Checked,
            "https://example.com/",
            "http://169.254.169.254/latest/meta-data?token=x",
        )
        .expect_err("the metadata service is not public");
        assert!(why.contains("a cloud metadata address"), "{why}");
        assert!(why.contains("PJ_ALLOW_PRIVATE_NETWORKS"), "{why}");
        assert!(!why.contains("token=x"), "{why}");
    }

    #[test]
    fn a_redirect_to_loopback_private_or_unspecified_addresses_is_refused() {
        for to in [
            "http://127.0.0.1:8080/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://0.0.0.0/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
        ] {
            assert!(
                hop(
                    NetworkPolicy::default(),
                    Follow::Checked,
                    "https://example.com/",
                    to
                )
                .is_err(),
                "{to} should be refused"
            );
        }
    }

    #[test]
    fn a_redirect_to_a_name_is_left_to_the_resolver() {
        assert!(
            hop(
                NetworkPolicy::default(),
                Follow::Checked,
                "https://example.com/",
                "https://example.org/next"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_redirect_to_a_private_address_is_followed_when_the_operator_allows_it() {
        let open = NetworkPolicy {
            allow_private: true,
        };
        assert!(
            hop(
                open,
                Follow::Checked,
                "http://127.0.0.1:1/",
                "http://10.0.0.1/"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_redirect_to_another_scheme_is_refused_even_when_private_networks_are_allowed() {
        let open = NetworkPolicy {
            allow_private: true,
        };
        let why = hop(
            open,
            Follow::Checked,
            "http://a.test/",
            "file:///etc/passwd",
        )
        .expect_err("file is not http");
        assert!(why.contains("only http and https"), "{why}");
    }

    #[test]
    fn the_sixth_redirect_is_refused() {
        let chain: Vec<Url> = (0..=MAX_REDIRECTS)
            .map(|i| url(&format!("https://example.com/{i}")))
            .collect();
        let next = url("https://example.com/last");
        let policy = NetworkPolicy::default();
        assert!(check_redirect(policy, Follow::Checked, &chain[..MAX_REDIRECTS], &next).is_ok());
        assert_eq!(
            check_redirect(policy, Follow::Checked, &chain, &next),
            Err("more than 5 redirects".to_owned())
        );
    }

    #[test]
    fn with_a_secret_header_a_redirect_to_another_host_or_port_is_refused() {
        let policy = NetworkPolicy::default();
        let from = "https://api.example.com/v1";
        assert!(
            hop(
                policy,
                Follow::CheckedSameHost,
                from,
                "https://api.example.com/v2"
            )
            .is_ok()
        );
        assert!(
            hop(
                policy,
                Follow::CheckedSameHost,
                from,
                "https://evil.example/"
            )
            .is_err()
        );
        assert!(
            hop(
                policy,
                Follow::CheckedSameHost,
                from,
                "https://api.example.com:8443/"
            )
            .is_err()
        );
        assert!(hop(policy, Follow::Checked, from, "https://evil.example/").is_ok());
    }

    #[test]
    fn a_shown_url_has_no_credentials_query_or_fragment() {
        assert_eq!(
            shown(&url(
                "https://user:hunter2@example.com:8443/a/b?token=t#frag"
            )),
            "https://example.com:8443/a/b"
        );
    }
}
