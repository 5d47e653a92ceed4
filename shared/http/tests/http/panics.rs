use std::sync::Arc;

use serde_json::Value;

use crate::support::{ALICE, PanickingLogs, spawn_app_with_logs};

#[tokio::test]
async fn when_a_handler_panics_should_answer_500_with_the_json_error_and_serve_the_next_request() {
    let app = spawn_app_with_logs(|_| Arc::new(PanickingLogs)).await;
    let id = app.waiting_task(ALICE).await;

    let response = app
        .client
        .get(app.url(&format!("/tasks/{id}/logs")))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("a panicking handler still answers");
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "internal");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(
        !message.contains("log store") && !message.contains("panic"),
        "a 500 says nothing about internals: {message}"
    );

    // The same server, on with its work.
    let response = app
        .client
        .get(app.url(&format!("/tasks/{id}")))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("the next request is answered");
    assert_eq!(response.status(), 200);
    let again = app
        .client
        .get(app.url(&format!("/tasks/{id}/logs")))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("a second panic is answered too");
    assert_eq!(again.status(), 500);
}

/// With `panic = "abort"` the catch-panic layer is dead code in release builds: one panic ends
/// `pj serve` for everyone. The release profile must let panics unwind.
#[test]
fn the_release_profile_lets_panics_unwind_so_the_server_survives_them() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
            .expect("the workspace manifest");
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let setting: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if section.starts_with("[profile") {
            assert_ne!(
                setting, "panic=\"abort\"",
                "{section} aborts on panic; the catch-panic layer needs unwinding"
            );
        }
    }
}
