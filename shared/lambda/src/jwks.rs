//! The log stream's own JWT check: API Gateway's authorizer does not stand in front of a
//! Function URL, so `log-stream` fetches the issuer's keys once per execution environment, at
//! cold start, and verifies each token as the authorizer would.

use std::time::Duration;

use anyhow::{Context, bail};
use pj_http::Authenticator;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::StreamAuth;

/// How long one request to the issuer may take: a cold start should not hang on it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a discovery document or key set may be.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

/// The authenticator of `auth`: HS256 with the shared secret, or the issuer's JWKS, fetched
/// from `{issuer}/.well-known/openid-configuration` → `jwks_uri`.
pub async fn authenticator(auth: &StreamAuth) -> anyhow::Result<Authenticator> {
    match auth {
        StreamAuth::SharedSecret {
            secret,
            audience,
            issuer,
        } => Ok(Authenticator::default().with_jwt_secret(
            secret.expose_secret().as_bytes(),
            audience.as_deref(),
            issuer.as_deref(),
        )),
        StreamAuth::Issuer { issuer, audiences } => {
            let jwks = fetch_jwks(issuer)
                .await
                .with_context(|| format!("PJ_JWT_ISSUER: could not read the keys of {issuer}"))?;
            Authenticator::default()
                .with_jwks(&jwks, issuer, audiences)
                .map_err(|why| anyhow::anyhow!("PJ_JWT_ISSUER: the keys of {issuer}: {why}"))
        }
    }
}

/// The issuer's JSON Web Key Set, as text.
pub async fn fetch_jwks(issuer: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .context("could not build an HTTP client")?;
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery = get_text(&client, &discovery_url).await?;
    let discovery: Discovery = serde_json::from_str(&discovery)
        .with_context(|| format!("{discovery_url} has no jwks_uri"))?;
    if !discovery.jwks_uri.starts_with("https://") && !discovery.jwks_uri.starts_with("http://") {
        bail!("{discovery_url} names a jwks_uri that is not a URL");
    }
    let jwks = get_text(&client, &discovery.jwks_uri).await?;
    tracing::info!(jwks_uri = %discovery.jwks_uri, "fetched the issuer's signing keys");
    Ok(jwks)
}

async fn get_text(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .with_context(|| format!("GET {url} failed"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading {url} failed"))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        bail!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes");
    }
    String::from_utf8(body.to_vec()).with_context(|| format!("{url} is not UTF-8"))
}
