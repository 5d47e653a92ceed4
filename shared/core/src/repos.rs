//! Which repositories a deployment lets its users aim tasks at.
//!
//! Parsing (`create::parse_repo_url`) decides which forms are accepted at all (`https://`, and
//! `file://` or a local path where `PJ_ALLOW_LOCAL_REPOS` allows them). This decides, for an
//! accepted URL, whether the operator allows that repository (`PJ_ALLOWED_REPOS`) and whether
//! its host may be reached from here (`PJ_ALLOW_PRIVATE_NETWORKS`), on the addresses its name
//! resolves to.

use std::io;
use std::net::IpAddr;

use async_trait::async_trait;

use crate::error::ValidationError;
use crate::net::NetworkPolicy;

/// One entry of `PJ_ALLOWED_REPOS`: `github.com/acme/*`, `github.com/acme/widgets`, or a local
/// path such as `/srv/repos/*`. `*` stands for one whole path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPattern(Vec<String>);

impl RepoPattern {
    /// Parses one pattern; the message says what is wrong with it.
    pub fn parse(raw: &str) -> Result<RepoPattern, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("an empty pattern".into());
        }
        let segments = segments(raw);
        if segments.len() < 2 {
            return Err(format!(
                "{raw:?} must name a host and a path, such as github.com/acme/*"
            ));
        }
        if segments.iter().any(|s| s.contains('*') && s != "*") {
            return Err(format!(
                "{raw:?}: `*` stands for a whole path segment only, such as github.com/acme/*"
            ));
        }
        Ok(RepoPattern(segments))
    }

    /// Parses a comma-separated list.
    pub fn parse_list(raw: &str) -> Result<Vec<RepoPattern>, String> {
        raw.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(RepoPattern::parse)
            .collect()
    }

    /// Whether the (already parsed) repository URL matches.
    pub fn matches(&self, repo_url: &str) -> bool {
        let repo = segments(repo_url);
        repo.len() == self.0.len()
            && self
                .0
                .iter()
                .zip(&repo)
                .all(|(want, have)| want == "*" || want == have)
    }
}

/// The comparable segments of a URL or pattern: no scheme, host lowercased, no `.git` suffix,
/// no empty segments.
fn segments(raw: &str) -> Vec<String> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .or_else(|| raw.strip_prefix("file://"));
    let (is_url, rest) = match rest {
        Some(r) => (!raw.starts_with("file://"), r),
        None => (false, raw),
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    rest.split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            if i == 0 && is_url {
                s.to_ascii_lowercase()
            } else {
                s.to_owned()
            }
        })
        .collect()
}

/// How long the check waits for a name to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves host names, so the address rule is checked on what a client would connect to.
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

/// The system's resolver (getaddrinfo, through Tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, port)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// The operator's rules for repositories.
#[derive(Debug, Clone, Default)]
pub struct RepoRules {
    /// `PJ_ALLOWED_REPOS`; empty means any.
    pub allowed: Vec<RepoPattern>,
    pub network: NetworkPolicy,
}

impl RepoRules {
    /// Checks a parsed repository URL: the allow-list first, then, for a network URL, every
    /// address its host resolves to.
    pub async fn check(
        &self,
        repo_url: &str,
        resolver: &dyn Resolver,
    ) -> Result<(), ValidationError> {
        let err = |m: String| ValidationError::new("repo_url", m);
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| p.matches(repo_url)) {
            return Err(err(
                "is not one of the repositories this deployment allows (PJ_ALLOWED_REPOS)".into(),
            ));
        }
        let Some((host, port)) = network_host(repo_url) else {
            return Ok(());
        };
        if self.network.allow_private {
            return Ok(());
        }
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let lookup = resolver.resolve(&host, port);
                match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(ips)) => ips,
                    // A name that does not resolve now reaches nothing now; the runner resolves
                    // it again when it clones and checks what it would connect to, so refusing
                    // here would only turn a passing DNS fault into a refused task.
                    Ok(Err(_)) | Err(_) => return Ok(()),
                }
            }
        };
        self.network.check_all(&host, &ips).map_err(err)
    }
}

/// The host and port of an `http(s)://` URL (an IPv6 literal without its brackets).
fn network_host(url: &str) -> Option<(String, u16)> {
    let (rest, default_port) = if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else {
        (url.strip_prefix("http://")?, 80)
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_ascii_lowercase(), port.parse().ok()?)),
        None => Some((authority.to_ascii_lowercase(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct FakeResolver(HashMap<&'static str, Vec<IpAddr>>);

    #[async_trait]
    impl Resolver for FakeResolver {
        async fn resolve(&self, host: &str, _port: u16) -> io::Result<Vec<IpAddr>> {
            self.0
                .get(host)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
        }
    }

    fn resolver() -> FakeResolver {
        FakeResolver(HashMap::from([
            ("github.com", vec!["140.82.112.3".parse().expect("ip")]),
            ("rebind.example", vec!["127.0.0.1".parse().expect("ip")]),
            (
                "metadata.example",
                vec!["169.254.169.254".parse().expect("ip")],
            ),
        ]))
    }

    fn rules(allowed: &str) -> RepoRules {
        RepoRules {
            allowed: RepoPattern::parse_list(allowed).expect("patterns"),
            network: NetworkPolicy::default(),
        }
    }

    #[test]
    fn a_star_stands_for_one_segment_and_hosts_ignore_case() {
        let p = RepoPattern::parse("github.com/acme/*").expect("pattern");
        assert!(p.matches("https://github.com/acme/widgets"));
        assert!(p.matches("https://GitHub.com/acme/widgets.git"));
        assert!(!p.matches("https://github.com/acme"));
        assert!(!p.matches("https://github.com/acme/widgets/extra"));
        assert!(!p.matches("https://github.com/other/widgets"));
        assert!(!p.matches("https://github.com.evil.test/acme/widgets"));
        let local = RepoPattern::parse("/srv/repos/*").expect("pattern");
        assert!(local.matches("/srv/repos/app"));
        assert!(local.matches("file:///srv/repos/app"));
    }

    #[test]
    fn patterns_that_cannot_mean_a_repository_are_refused() {
        assert!(RepoPattern::parse("github.com").is_err());
        assert!(RepoPattern::parse("github.com/ac*").is_err());
        assert!(RepoPattern::parse_list("github.com/a/*, ,github.com/b/c").is_ok());
    }

    #[tokio::test]
    async fn a_repository_outside_the_allowed_list_is_refused_naming_repo_url() {
        let r = rules("github.com/acme/*");
        let err = r
            .check("https://github.com/other/x", &resolver())
            .await
            .expect_err("not allowed");
        assert_eq!(err.field, "repo_url");
        assert!(err.message.contains("PJ_ALLOWED_REPOS"));
        assert!(
            r.check("https://github.com/acme/x", &resolver())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn loopback_private_and_metadata_hosts_are_refused_even_behind_a_name() {
        let r = rules("");
        for url in [
            "https://127.0.0.1/o/r",
            "https://[::1]:8443/o/r",
            "https://10.0.0.5/o/r",
            "https://rebind.example/o/r",
            "https://metadata.example/o/r",
        ] {
            let err = r.check(url, &resolver()).await.expect_err(url);
            assert_eq!(err.field, "repo_url", "{url}");
        }
        assert!(r.check("https://github.com/o/r", &resolver()).await.is_ok());
        assert!(r.check("/srv/local/repo", &resolver()).await.is_ok());
        // Not resolvable now: left to the runner, which checks what it connects to.
        assert!(
            r.check("https://no-such-host.example/o/r", &resolver())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_operator_may_allow_private_networks() {
        let r = RepoRules {
            allowed: Vec::new(),
            network: NetworkPolicy {
                allow_private: true,
            },
        };
        assert!(
            r.check("https://rebind.example/o/r", &resolver())
                .await
                .is_ok()
        );
    }
}
