//! The web page: `GET /`, `/app.js` and `/app.css` without a token, with the page's security
//! headers, revalidation by ETag and gzip for a browser that accepts it; every other path is
//! still the API's.

use pj_http::PageConfig;
use reqwest::Response;
use serde_json::Value;

use crate::support::{ALICE, spawn_app, spawn_app_with_page};

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("a visible header")
}

fn assert_page_headers(response: &Response, connect_src: &str) {
    let csp = header(response, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        connect_src,
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(
            csp.split(';').any(|d| d.trim() == directive),
            "{directive} in {csp}"
        );
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "cache-control"), "no-cache");
}

#[tokio::test]
async fn the_page_is_served_without_a_token_with_its_security_headers() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_page_headers(&response, "connect-src 'self'");
    let html = response.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains(r#"<script src="app.js" defer></script>"#));
    assert!(html.contains(r#"<meta name="pj-log-stream-url" content="">"#));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style: the policy would refuse it"
    );
}

#[tokio::test]
async fn the_assets_have_their_content_types_and_the_whole_page_is_small() {
    let app = spawn_app().await;
    let mut total = 0;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_page_headers(&response, "connect-src 'self'");
        total += response.bytes().await.unwrap().len();
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(header(&head, "content-type"), content_type, "HEAD {path}");
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    assert!(total < 100 * 1024, "the page is {total} bytes");
}

#[tokio::test]
async fn an_unchanged_asset_is_answered_304_by_its_etag() {
    let app = spawn_app().await;
    for path in ["/", "/app.js", "/app.css", "/favicon.svg"] {
        let first = app.client.get(app.url(path)).send().await.unwrap();
        let etag = header(&first, "etag").to_owned();
        // Weak: the gzipped and the plain bytes are the same page.
        assert!(etag.starts_with("W/\"") && etag.ends_with('"'), "{etag}");
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(header(&again, "etag"), etag);
        assert_page_headers(&again, "connect-src 'self'");
        assert!(again.bytes().await.unwrap().is_empty());
        let changed = app
            .client
            .get(app.url(path))
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200, "{path}");
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut plain)
        .expect("a gzip stream");
    plain
}

#[tokio::test]
async fn a_browser_that_accepts_gzip_gets_the_page_gzipped_and_the_same_bytes() {
    let app = spawn_app().await;
    let (mut plain_total, mut gzip_total) = (0, 0);
    for path in ["/", "/app.js", "/app.css", "/favicon.svg"] {
        let plain = app.client.get(app.url(path)).send().await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain_etag = header(&plain, "etag").to_owned();
        let plain = plain.bytes().await.unwrap();

        let gzipped = app
            .client
            .get(app.url(path))
            .header("accept-encoding", "br;q=1.0, gzip;q=0.8, *;q=0.1")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.status(), 200, "{path}");
        assert_eq!(header(&gzipped, "content-encoding"), "gzip", "{path}");
        assert_eq!(header(&gzipped, "vary"), "accept-encoding", "{path}");
        assert_eq!(header(&gzipped, "etag"), plain_etag, "{path}");
        assert_page_headers(&gzipped, "connect-src 'self'");
        let gzipped = gzipped.bytes().await.unwrap();
        assert_eq!(gunzip(&gzipped), plain, "{path}");
        plain_total += plain.len();
        gzip_total += gzipped.len();
    }
    assert!(
        gzip_total * 3 < plain_total,
        "gzip should take the page from {plain_total} bytes to under a third, not {gzip_total}"
    );
}

#[tokio::test]
async fn the_api_gzips_a_task_list_but_never_the_log_stream() {
    let app = spawn_app().await;
    let id = app.waiting_task(ALICE).await;
    let list = app
        .client
        .get(app.url("/tasks"))
        .bearer_auth(ALICE)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(header(&list, "content-encoding"), "gzip");
    let body: Value = serde_json::from_slice(&gunzip(&list.bytes().await.unwrap())).unwrap();
    assert_eq!(body["tasks"][0]["id"], id.as_str());

    // An event stream is written as the events come: buffering it to compress would hold
    // them back.
    let stream = app
        .client
        .get(app.url(&format!("/tasks/{id}/logs/stream")))
        .bearer_auth(ALICE)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(header(&stream, "content-type").starts_with("text/event-stream"));
    assert!(stream.headers().get("content-encoding").is_none());

    // A client that does not ask gets plain JSON.
    let plain = app
        .client
        .get(app.url("/tasks"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["tasks"][0]["id"], id.as_str());
}

#[tokio::test]
async fn unknown_paths_and_methods_are_still_the_json_404() {
    let app = spawn_app().await;
    for path in [
        "/index.html",
        "/app.js.map",
        "/favicon.ico",
        "/tasks/x/page",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    let response = app.client.post(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_log_stream_on_another_origin_is_named_to_the_page_and_allowed_by_its_policy() {
    let stream = "https://abc123.lambda-url.us-east-1.on.aws/";
    let app = spawn_app_with_page(PageConfig::with_log_stream_url(stream).unwrap()).await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_page_headers(
        &response,
        "connect-src 'self' https://abc123.lambda-url.us-east-1.on.aws",
    );
    let etag = header(&response, "etag").to_owned();
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!(
            r#"<meta name="pj-log-stream-url" content="{stream}">"#
        )),
        "{html}"
    );
    let plain = spawn_app().await;
    let other = plain.client.get(plain.url("/")).send().await.unwrap();
    assert_ne!(header(&other, "etag"), etag, "another page, another ETag");
    let js = app.client.get(app.url("/app.js")).send().await.unwrap();
    assert_page_headers(
        &js,
        "connect-src 'self' https://abc123.lambda-url.us-east-1.on.aws",
    );
}
