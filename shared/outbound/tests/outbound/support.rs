//! Requests, clients and lookups the tests share.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pj_core::net::NetworkPolicy;
use pj_core::outbound::{HttpClient, HttpError, HttpRequest, HttpResponse};
use pj_outbound::{GuardedClient, NameLookup};

/// The operator allows private networks: the wiremock servers on 127.0.0.1 are reachable.
pub fn open_client() -> GuardedClient {
    GuardedClient::new(NetworkPolicy {
        allow_private: true,
    })
    .expect("a client")
}

/// The default: public addresses only.
pub fn guarded_client() -> GuardedClient {
    GuardedClient::new(NetworkPolicy::default()).expect("a client")
}

/// A client whose names resolve as `names` says, each still checked against `policy`.
pub fn client_with_names(policy: NetworkPolicy, names: &[(&str, &str)]) -> GuardedClient {
    let names = names
        .iter()
        .map(|(name, ips)| {
            let ips = ips
                .split(',')
                .map(|ip| ip.parse().expect("an address"))
                .collect();
            ((*name).to_owned(), ips)
        })
        .collect();
    GuardedClient::with_lookup(policy, Arc::new(FixedNames(names))).expect("a client")
}

struct FixedNames(HashMap<String, Vec<IpAddr>>);

#[async_trait]
impl NameLookup for FixedNames {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0.get(host).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such name {host}"))
        })
    }
}

pub fn get(url: impl Into<String>) -> HttpRequest {
    HttpRequest {
        method: "GET".to_owned(),
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout: Duration::from_secs(10),
        max_body_bytes: 1 << 20,
        follow_redirects: true,
    }
}

pub async fn send(client: &GuardedClient, request: &HttpRequest) -> HttpResponse {
    client.send(request).await.expect("an answer")
}

/// The refusal's message; fails the test on an answer or another error.
pub async fn refusal(client: &GuardedClient, request: &HttpRequest) -> String {
    match client.send(request).await {
        Err(HttpError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
