//! Redirects: followed up to five hops, each hop checked; or not followed, and the `3xx` is the
//! answer.

use pj_core::outbound::HeaderValue;
use secrecy::SecretString;
use wiremock::matchers::{header, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{get, open_client, refusal, send};

fn redirect_to(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(302).insert_header("Location", location)
}

/// `/hop/0` redirects to `/hop/1` and so on; `/hop/{hops}` answers `200 arrived`.
async fn chain_of(hops: usize) -> MockServer {
    let server = MockServer::start().await;
    for i in 0..hops {
        Mock::given(path(format!("/hop/{i}")))
            .respond_with(redirect_to(&format!("/hop/{}", i + 1)))
            .mount(&server)
            .await;
    }
    Mock::given(path(format!("/hop/{hops}")))
        .respond_with(ResponseTemplate::new(200).set_body_string("arrived"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn five_redirects_are_followed_to_the_answer() {
    let server = chain_of(5).await;

    let answer = send(&open_client(), &get(format!("{}/hop/0", server.uri()))).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"arrived");
}

#[tokio::test]
async fn a_sixth_redirect_is_refused() {
    let server = chain_of(6).await;

    let why = refusal(&open_client(), &get(format!("{}/hop/0", server.uri()))).await;

    assert_eq!(why, "more than 5 redirects");
    let received = server.received_requests().await.expect("recorded requests");
    assert!(received.iter().all(|r| r.url.path() != "/hop/6"));
}

#[tokio::test]
async fn without_following_the_redirect_is_the_answer() {
    let server = chain_of(1).await;
    let mut request = get(format!("{}/hop/0", server.uri()));
    request.follow_redirects = false;

    let answer = send(&open_client(), &request).await;

    assert_eq!(answer.status, 302);
    assert_eq!(answer.header("location"), Some("/hop/1"));
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(1));
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(redirect_to("file:///etc/passwd"))
        .mount(&server)
        .await;

    let answer = send(&open_client(), &get(format!("{}/", server.uri()))).await;

    assert_eq!(answer.status, 302);
    assert_eq!(answer.body, b"");
}

fn with_secret(url: String, name: &str, value: &str) -> pj_core::outbound::HttpRequest {
    let mut request = get(url);
    request.headers.push((
        name.to_owned(),
        HeaderValue::Secret(SecretString::from(value.to_owned())),
    ));
    request
}

#[tokio::test]
async fn a_secret_api_key_follows_a_redirect_on_the_same_host() {
    let server = MockServer::start().await;
    Mock::given(path("/old"))
        .respond_with(redirect_to("/new"))
        .mount(&server)
        .await;
    Mock::given(path("/new"))
        .and(header("x-api-key", "k3y"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    let request = with_secret(format!("{}/old", server.uri()), "X-Api-Key", "k3y");
    assert_eq!(send(&open_client(), &request).await.status, 200);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_when_a_secret_api_key_would_follow() {
    let first = MockServer::start().await;
    let other = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(redirect_to(&format!("{}/steal", other.uri())))
        .mount(&first)
        .await;

    let request = with_secret(format!("{}/", first.uri()), "X-Api-Key", "k3y");
    let why = refusal(&open_client(), &request).await;

    assert!(why.contains("another host"), "{why}");
    assert_eq!(other.received_requests().await.map(|r| r.len()), Some(0));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_followed_without_the_secret_authorization() {
    let first = MockServer::start().await;
    let other = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(redirect_to(&format!("{}/elsewhere", other.uri())))
        .mount(&first)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&other)
        .await;

    let request = with_secret(format!("{}/", first.uri()), "Authorization", "Bearer t0ken");
    assert_eq!(send(&open_client(), &request).await.status, 200);

    let received = other.received_requests().await.expect("recorded requests");
    assert!(received[0].headers.get("authorization").is_none());
}
