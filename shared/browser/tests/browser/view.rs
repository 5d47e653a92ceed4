use pj_browser::ElementRef;
use serde_json::json;

use crate::support::{launch, options, site, turn};

#[tokio::test]
async fn two_buttons_with_the_same_text_should_be_told_apart_by_the_page_view() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/twins")).await.expect("loads");
    let view = session.observe(4_000).await.expect("a view");
    let text = view.render();
    let buttons: Vec<_> = view
        .elements
        .iter()
        .filter(|e| e.role == "button" && e.name == "Subscribe")
        .collect();
    assert_eq!(buttons.len(), 2, "{text}");
    assert_eq!(buttons[0].context, vec!["Newsletter".to_string()], "{text}");
    assert_eq!(buttons[1].context, vec!["Billing".to_string()], "{text}");
    assert!(text.contains("## Billing"), "{text}");
    assert!(
        view.elements
            .iter()
            .any(|e| e.role == "text" && e.name == "Pay yearly and save."),
        "{text}"
    );
    let billing = buttons[1].reference;

    // References are stable: a second look names the same elements the same way.
    let again = session.observe(4_000).await.expect("a view");
    assert_eq!(again.elements, view.elements);

    session
        .click_ref(billing)
        .await
        .expect("clicked by reference");
    assert_eq!(
        session.extract("#out").await.expect("extracted"),
        json!("billing")
    );
    session.close().await;
}

#[tokio::test]
async fn typing_by_reference_should_fill_the_field_the_view_named() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/form")).await.expect("loads");
    let view = session.observe(4_000).await.expect("a view");
    let field = view
        .elements
        .iter()
        .find(|e| e.role == "textbox")
        .unwrap_or_else(|| panic!("a textbox in {}", view.render()));
    assert_eq!(field.name, "Your name");
    assert_eq!(field.value.as_deref(), Some("placeholder text"));
    session
        .type_ref(field.reference, "Grace Hopper")
        .await
        .expect("typed");
    let submit = view
        .elements
        .iter()
        .find(|e| e.name == "Say hello")
        .expect("the button");
    session.click_ref(submit.reference).await.expect("clicked");
    session.wait_for("#greeting").await.expect("submitted");
    assert_eq!(
        session.extract("#greeting").await.expect("text"),
        json!("Hello, Grace Hopper")
    );
    // On the new page the old reference names nothing.
    let error = session
        .click_ref(ElementRef(field.reference.0))
        .await
        .expect_err("gone");
    assert!(
        error
            .to_string()
            .contains(&format!("[{}]", field.reference.0)),
        "{error}"
    );
    session.close().await;
}

#[tokio::test]
async fn a_small_budget_should_cut_the_view_and_say_so() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/twins")).await.expect("loads");
    let view = session.observe(160).await.expect("a view");
    assert!(view.render().chars().count() <= 160, "{}", view.render());
    assert!(view.omitted > 0);
    session.close().await;
}
