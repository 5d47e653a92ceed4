use std::time::Duration;

use pj_browser::{BrowserError, SessionOptions};

use crate::support::{launch, options, site, turn};

fn guarded() -> SessionOptions {
    SessionOptions {
        allow_private_networks: false,
        ..options()
    }
}

#[tokio::test]
async fn a_loopback_page_should_be_refused_when_private_networks_are_not_allowed() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(guarded()).await;

    let error = session
        .navigate(&site.url("/table"))
        .await
        .expect_err("refused");
    let BrowserError::Blocked {
        action,
        url,
        reason,
    } = &error
    else {
        panic!("a refusal, not {error:?}");
    };
    assert_eq!(*action, "navigate");
    assert!(url.contains("127.0.0.1"), "{url}");
    assert!(
        reason.contains("loopback") && reason.contains("PJ_ALLOW_PRIVATE_NETWORKS"),
        "{reason}"
    );

    // A name that resolves to loopback is refused like the address itself.
    let by_name = format!("http://localhost:{}/table", site.port);
    let error = session.navigate(&by_name).await.expect_err("refused");
    let message = error.to_string();
    assert!(matches!(error, BrowserError::Blocked { .. }), "{error:?}");
    assert!(
        message.contains("localhost resolves to") && message.contains("loopback"),
        "{message}"
    );

    assert_eq!(site.hits(), 0, "no request reached the site");
    assert_eq!(session.blocked_requests().len(), 2);
    session.close().await;
}

#[tokio::test]
async fn sub_requests_and_frames_to_a_private_address_should_be_refused() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(guarded()).await;
    // A page with no network behind it (a data: URL), whose image and fetch() aim at loopback.
    let frame = format!("http://localhost:{}/table", site.port);
    let html = format!(
        "<p id=done>page</p><img src='{img}'><iframe src='{frame}'></iframe><script>fetch('{api}').then(() => document.title = 'fetched', () => document.title = 'refused')</script>",
        img = site.url("/img.png"),
        api = site.url("/api"),
    );
    let data_url = format!("data:text/html,{}", url_escape(&html));
    session
        .page()
        .goto(data_url)
        .await
        .expect("the data: page loads");
    let mut title = String::new();
    for _ in 0..50 {
        title = session
            .page()
            .get_title()
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if !title.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(title, "refused", "fetch() was refused");
    let blocked = session.blocked_requests();
    assert!(
        blocked
            .iter()
            .any(|b| b.url.ends_with("/img.png") && !b.document),
        "{blocked:?}"
    );
    assert!(
        blocked
            .iter()
            .any(|b| b.url.ends_with("/api") && !b.document),
        "{blocked:?}"
    );
    assert_eq!(site.hits(), 0, "no request reached the site");
    session.close().await;
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn a_cross_site_frame_should_stay_in_the_guarded_page() {
    use chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    // 127.0.0.1 and localhost are different sites: under site isolation the frame would be a
    // target of its own, outside the page's request interception.
    session.navigate(&site.url("/framed")).await.expect("loads");
    session.wait_ms(500).await;
    let targets = session
        .page()
        .execute(GetTargetsParams::default())
        .await
        .expect("targets");
    let frames: Vec<_> = targets
        .result
        .target_infos
        .iter()
        .filter(|t| t.r#type == "iframe")
        .collect();
    assert!(frames.is_empty(), "out-of-process frames: {frames:?}");
    session.close().await;
}
