//! With private networks allowed, requests reach the server as asked and answers come back whole
//! (or cut where asked).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pj_core::outbound::{HeaderValue, HttpClient, HttpError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use wiremock::matchers::{body_bytes, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{client_with_names, get, open_client, send};

#[tokio::test]
async fn a_get_with_headers_reaches_the_server_and_its_answer_comes_back() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/things"))
        .and(header("x-trace", "abc"))
        .and(header(
            "user-agent",
            concat!("pithy-jaunt/", env!("CARGO_PKG_VERSION")),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Answer", "yes")
                .set_body_string("hello"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut request = get(format!("{}/things", server.uri()));
    request
        .headers
        .push(("X-Trace".to_owned(), HeaderValue::Plain("abc".to_owned())));

    let answer = send(&open_client(), &request).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"hello");
    assert!(!answer.truncated);
    assert_eq!(answer.remote_addr, Some(*server.address()));
    assert!(
        answer
            .headers
            .contains(&("x-answer".to_owned(), "yes".to_owned()))
    );
    assert!(
        answer
            .headers
            .iter()
            .all(|(name, _)| *name == name.to_ascii_lowercase()),
        "{:?}",
        answer.headers
    );
}

#[tokio::test]
async fn a_post_with_a_body_reaches_the_server_with_its_body_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .and(header("content-type", "application/json"))
        .and(body_bytes(br#"{"a":1}"#.to_vec()))
        .respond_with(ResponseTemplate::new(201).set_body_string("created"))
        .expect(1)
        .mount(&server)
        .await;
    let mut request = get(format!("{}/hooks", server.uri()));
    request.method = "POST".to_owned();
    request.headers.push((
        "Content-Type".to_owned(),
        HeaderValue::Plain("application/json".to_owned()),
    ));
    request.body = Some(br#"{"a":1}"#.to_vec());

    let answer = send(&open_client(), &request).await;

    assert_eq!(answer.status, 201);
    assert_eq!(answer.body, b"created");
}

#[tokio::test]
async fn put_patch_and_delete_reach_the_server_as_themselves() {
    let server = MockServer::start().await;
    for verb in ["PUT", "PATCH", "DELETE"] {
        Mock::given(method(verb))
            .and(path("/item"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = open_client();
    for verb in ["PUT", "PATCH", "DELETE"] {
        let mut request = get(format!("{}/item", server.uri()));
        request.method = verb.to_owned();
        assert_eq!(send(&client, &request).await.status, 204, "{verb}");
    }
}

#[tokio::test]
async fn a_503_with_retry_after_comes_back_with_its_status_and_headers() {
    let server = MockServer::start().await;
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;

    let answer = send(&open_client(), &get(format!("{}/busy", server.uri()))).await;

    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("retry-after"), Some("120"));
    assert_eq!(answer.retry_after(), Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut request = get(format!("{}/slow", server.uri()));
    request.timeout = Duration::from_millis(300);

    let started = Instant::now();
    let result = open_client().send(&request).await;

    assert_eq!(
        result.map(|a| a.status),
        Err(HttpError::Timeout(Duration::from_millis(300)))
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_body_longer_than_the_limit_is_cut_at_the_limit_and_marked_truncated() {
    let server = MockServer::start().await;
    let long: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(long.clone()))
        .mount(&server)
        .await;
    let mut request = get(format!("{}/big", server.uri()));
    request.max_body_bytes = 256 * 1024;

    let answer = send(&open_client(), &request).await;

    assert!(answer.truncated);
    assert_eq!(answer.body.len(), 256 * 1024);
    assert_eq!(answer.body, long[..256 * 1024]);
    assert!(answer.body.capacity() <= 256 * 1024);
}

#[tokio::test]
async fn a_body_exactly_as_long_as_the_limit_is_whole() {
    let server = MockServer::start().await;
    Mock::given(path("/exact"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![7u8; 1000]))
        .mount(&server)
        .await;
    let mut request = get(format!("{}/exact", server.uri()));
    request.max_body_bytes = 1000;

    let answer = send(&open_client(), &request).await;

    assert!(!answer.truncated);
    assert_eq!(answer.body.len(), 1000);
}

#[tokio::test]
async fn cookies_a_server_sets_are_not_sent_back() {
    let server = MockServer::start().await;
    Mock::given(path("/login"))
        .respond_with(ResponseTemplate::new(200).insert_header("Set-Cookie", "session=abc; Path=/"))
        .mount(&server)
        .await;
    Mock::given(path("/me"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let client = open_client();

    send(&client, &get(format!("{}/login", server.uri()))).await;
    send(&client, &get(format!("{}/me", server.uri()))).await;

    let received = server.received_requests().await.expect("recorded requests");
    assert_eq!(received.len(), 2);
    assert!(received[1].headers.get("cookie").is_none());
}

#[tokio::test]
async fn a_name_is_connected_to_at_the_address_it_resolves_to() {
    let server = MockServer::start().await;
    let port = server.address().port();
    Mock::given(path("/"))
        .and(header("host", format!("api.test:{port}").as_str()))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_with_names(
        pj_core::net::NetworkPolicy {
            allow_private: true,
        },
        &[("api.test", "127.0.0.1")],
    );

    let answer = send(&client, &get(format!("http://api.test:{port}/"))).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.remote_addr, Some(*server.address()));
}

#[tokio::test]
async fn localhost_is_reached_when_the_operator_allows_private_networks() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("http://localhost:{}/", server.address().port());

    assert_eq!(send(&open_client(), &get(url)).await.status, 200);
}

#[tokio::test]
async fn a_closed_port_is_a_network_error_that_keeps_the_password_and_query_to_itself() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let request = get(format!(
        "http://user:hunter2@127.0.0.1:{port}/path?token=s3cret"
    ));

    let Err(HttpError::Network(why)) = open_client().send(&request).await else {
        panic!("a closed port is a network error");
    };

    assert!(
        why.contains(&format!("http://127.0.0.1:{port}/path")),
        "{why}"
    );
    assert!(!why.contains("hunter2"), "{why}");
    assert!(!why.contains("s3cret"), "{why}");
    assert!(!why.contains("user:"), "{why}");
}

/// A server that answers `200 ok` to every GET on a kept-alive connection and counts the
/// connections it accepted.
async fn counting_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    // A GET has no body: the request ends at its empty line.
                    line.clear();
                    match stream.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if stream.get_mut().write_all(answer).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn requests_one_after_another_share_one_pooled_connection() {
    let (addr, accepted) = counting_server().await;
    let client = open_client();

    for _ in 0..20 {
        let answer = send(&client, &get(format!("http://{addr}/"))).await;
        assert_eq!(answer.body, b"ok");
    }

    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
