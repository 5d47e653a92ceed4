//! By default only public addresses are reached: addresses in the URL, names resolving to
//! non-public addresses, and anything that is not http(s) are refused before a byte is sent.

use pj_core::net::NetworkPolicy;
use pj_core::outbound::{HttpClient, HttpError};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{client_with_names, get, guarded_client, refusal};

/// A server that must see no request: `verify` fails the test if one arrived.
async fn untouchable_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_loopback_address_is_refused_and_nothing_reaches_it() {
    let server = untouchable_server().await;

    let why = refusal(&guarded_client(), &get(format!("{}/", server.uri()))).await;

    assert!(why.contains("127.0.0.1 is a loopback address"), "{why}");
    assert!(why.contains("PJ_ALLOW_PRIVATE_NETWORKS=true"), "{why}");
    server.verify().await;
}

#[tokio::test]
async fn localhost_is_refused_saying_what_it_resolves_to() {
    let server = untouchable_server().await;
    let url = format!("http://localhost:{}/", server.address().port());

    let why = refusal(&guarded_client(), &get(url)).await;

    // The system's resolver may answer either loopback address first.
    assert!(
        why.contains("localhost resolves to 127.0.0.1, a loopback address")
            || why.contains("localhost resolves to ::1, a loopback address"),
        "{why}"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_in_the_policys_words() {
    let server = untouchable_server().await;
    let client = client_with_names(NetworkPolicy::default(), &[("intranet.test", "127.0.0.1")]);
    let url = format!("http://intranet.test:{}/", server.address().port());

    let why = refusal(&client, &get(url)).await;

    assert!(
        why.starts_with("intranet.test resolves to 127.0.0.1, a loopback address;"),
        "{why}"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_name_with_one_private_address_among_public_ones_is_refused() {
    let client = client_with_names(
        NetworkPolicy::default(),
        &[("mixed.test", "93.184.216.34,10.0.0.1")],
    );

    let why = refusal(&client, &get("https://mixed.test/")).await;

    assert!(
        why.contains("mixed.test resolves to 10.0.0.1, a private address"),
        "{why}"
    );
}

#[tokio::test]
async fn private_link_local_metadata_and_unspecified_addresses_are_refused() {
    let client = guarded_client();
    for (url, what) in [
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data",
            "169.254.169.254 is a cloud metadata address",
        ),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://[::ffff:127.0.0.1]/", "is a loopback address"),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
    ] {
        let why = refusal(&client, &get(url)).await;
        assert!(why.contains(what), "{url}: {why}");
    }
}

#[tokio::test]
async fn a_url_that_is_not_http_is_refused_saying_why() {
    let client = guarded_client();
    for (url, why_part) in [
        (
            "ftp://example.com/file",
            "only http and https URLs are allowed, not ftp",
        ),
        (
            "file:///etc/passwd",
            "only http and https URLs are allowed, not file",
        ),
        ("example.com/no-scheme", "the URL is not valid"),
    ] {
        let why = refusal(&client, &get(url)).await;
        assert!(why.contains(why_part), "{url}: {why}");
    }
}

#[tokio::test]
async fn a_method_outside_the_five_is_refused() {
    let mut request = get("https://example.com/");
    request.method = "TRACE".to_owned();

    let why = refusal(&guarded_client(), &request).await;

    assert!(why.contains("TRACE") && why.contains("GET, POST"), "{why}");
}

#[tokio::test]
async fn a_refused_url_with_credentials_does_not_show_them() {
    let server = untouchable_server().await;
    let client = client_with_names(NetworkPolicy::default(), &[("intranet.test", "10.1.2.3")]);
    let port = server.address().port();
    for url in [
        format!("http://user:hunter2@127.0.0.1:{port}/?token=s3cret"),
        format!("http://user:hunter2@intranet.test:{port}/?token=s3cret"),
    ] {
        let result = client.send(&get(url.as_str())).await;
        let Err(HttpError::Refused(why)) = result else {
            panic!("{url} should be refused, got {result:?}");
        };
        assert!(!why.contains("hunter2") && !why.contains("s3cret"), "{why}");
    }
    server.verify().await;
}
