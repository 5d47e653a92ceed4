//! A header marked secret is sent as it is and shows nowhere else.

use pj_core::outbound::HeaderValue;
use secrecy::SecretString;
use wiremock::matchers::{header, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{get, open_client, send};

#[tokio::test]
async fn a_secret_header_reaches_the_server_and_prints_as_stars() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .and(header("authorization", "Bearer t0ken-value"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let mut request = get(format!("{}/", server.uri()));
    request.headers.push((
        "Authorization".to_owned(),
        HeaderValue::Secret(SecretString::from("Bearer t0ken-value".to_owned())),
    ));

    assert_eq!(send(&open_client(), &request).await.status, 200);

    let printed = format!("{request:?}");
    assert!(printed.contains("***"), "{printed}");
    assert!(!printed.contains("t0ken-value"), "{printed}");
}
