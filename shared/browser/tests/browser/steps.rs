use std::time::{Duration, Instant};

use pj_browser::{BrowserError, FieldSpec, SessionOptions, Step, StepOutput};
use serde_json::json;

use crate::support::{launch, options, png_size, site, turn};

#[tokio::test]
async fn a_form_should_navigate_on_submit() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session
        .navigate(&site.url("/form"))
        .await
        .expect("the form loads");
    session
        .type_text("#name", "Ada Lovelace")
        .await
        .expect("typed");
    session.click("button[type=submit]").await.expect("clicked");
    session
        .wait_for("#greeting")
        .await
        .expect("the next page came");
    let greeting = session.extract("#greeting").await.expect("extracted");
    assert_eq!(
        greeting,
        json!("Hello, Ada Lovelace"),
        "typing replaced the field's content"
    );
    assert!(
        session
            .url()
            .await
            .expect("a URL")
            .contains("/hello?name=Ada+Lovelace")
    );
    session.close().await;
}

#[tokio::test]
async fn a_table_should_be_extracted_as_a_list_and_as_fields() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session
        .navigate(&site.url("/to-table"))
        .await
        .expect("the redirect is followed");
    let names = session
        .run(&Step::Extract {
            selector: "td.name".into(),
        })
        .await
        .expect("extracted");
    assert_eq!(
        names,
        StepOutput::Extracted(json!(["Mercury", "Venus", "Earth"]))
    );

    let fields: Vec<(String, FieldSpec)> = [
        ("title", "h1.title"),
        ("planets", "td.name"),
        ("links", "td.name a@href"),
        ("moons", "td.moons"),
        ("missing", ".nothing-here"),
    ]
    .into_iter()
    .map(|(name, spec)| {
        (
            name.to_string(),
            FieldSpec::parse(spec).expect("a valid field"),
        )
    })
    .collect();
    let data = session.extract_fields(&fields).await.expect("extracted");
    assert_eq!(
        serde_json::Value::Object(data),
        json!({
            "title": "Planets",
            "planets": ["Mercury", "Venus", "Earth"],
            "links": ["/planet/mercury", "/planet/venus", "/planet/earth"],
            "moons": ["0", "0", "1"],
            "missing": null,
        })
    );
    session.close().await;
}

#[tokio::test]
async fn a_late_element_should_be_waited_for() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/late")).await.expect("loads");
    session
        .wait_for("#late")
        .await
        .expect("it comes within the step's timeout");
    // An extract waits by itself too.
    session
        .navigate(&site.url("/late"))
        .await
        .expect("loads again");
    assert_eq!(
        session.extract("#late").await.expect("extracted"),
        json!("I came late")
    );
    session.close().await;
}

#[tokio::test]
async fn waiting_for_an_element_that_never_appears_should_fail_naming_the_selector() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(SessionOptions {
        step_timeout: Duration::from_secs(1),
        ..options()
    })
    .await;
    session.navigate(&site.url("/late")).await.expect("loads");
    let started = Instant::now();
    let error = session
        .wait_for("#never-there")
        .await
        .expect_err("it never comes");
    let elapsed = started.elapsed();
    assert!(
        matches!(error, BrowserError::Timeout { action: "wait", .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("#never-there"), "{error}");
    // Never before its time (no upper bound: the machine may be slow).
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let error = session
        .click("#never-there")
        .await
        .expect_err("nothing to click");
    assert!(
        error.to_string().contains("click") && error.to_string().contains("#never-there"),
        "{error}"
    );
    session.close().await;
}

#[tokio::test]
async fn an_invalid_selector_should_fail_at_once() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/table")).await.expect("loads");
    let error = session.wait_for("td[[").await.expect_err("invalid");
    // At once: refused as a selector, not timed out waiting for it.
    assert!(!matches!(error, BrowserError::Timeout { .. }), "{error:?}");
    assert!(
        error.to_string().contains("not a valid CSS selector"),
        "{error}"
    );
    session.close().await;
}

#[tokio::test]
async fn a_page_that_never_loads_should_fail_the_navigation_within_its_timeout() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(SessionOptions {
        navigation_timeout: Duration::from_secs(2),
        ..options()
    })
    .await;
    let error = session
        .navigate(&site.url("/never"))
        .await
        .expect_err("it never loads");
    assert!(
        matches!(
            error,
            BrowserError::Timeout {
                action: "navigate",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("/never"), "{error}");
    // The session is still usable.
    session
        .navigate(&site.url("/table"))
        .await
        .expect("the next page loads");
    assert_eq!(
        session.extract("h1").await.expect("extracted"),
        json!("Planets")
    );
    session.close().await;
}

#[tokio::test]
async fn screenshots_should_be_real_pngs_of_the_viewport_and_of_the_whole_page() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/tall")).await.expect("loads");
    let viewport = session.screenshot(false).await.expect("a screenshot");
    let (width, height) = png_size(&viewport);
    assert!(
        width >= 600 && (400..3000).contains(&height),
        "{width}x{height}"
    );
    let full = session
        .run(&Step::Screenshot { full_page: true })
        .await
        .expect("a screenshot");
    let StepOutput::Screenshot(full) = full else {
        panic!("a screenshot step gives a screenshot")
    };
    let (full_width, full_height) = png_size(&full);
    assert!(
        full_height >= 3000,
        "the whole page is {full_width}x{full_height}"
    );
    session.close().await;
}

#[tokio::test]
async fn only_http_and_https_pages_should_be_navigated_to() {
    let _turn = turn().await;
    let session = launch(options()).await;
    for url in ["file:///etc/passwd", "javascript:alert(1)", "not a url"] {
        let error = session.navigate(url).await.expect_err("refused");
        assert!(
            matches!(
                error,
                BrowserError::Step {
                    action: "navigate",
                    ..
                }
            ),
            "{url}: {error:?}"
        );
    }
    session.close().await;
}
