//! Artifacts over HTTP in `pj serve`: a runner's signed upload, byte for byte back to the owner.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, Server};

fn upload(task_id: &str, name: &str, bytes: &[u8]) -> Value {
    upload_for(task_id, 1, name, bytes)
}

fn upload_for(task_id: &str, attempt: u32, name: &str, bytes: &[u8]) -> Value {
    json!({"task_id": task_id, "attempt": attempt, "name": name, "content_base64": B64.encode(bytes)})
}

/// A real PNG signature followed by every byte value, so a text conversion anywhere shows.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(300_000));
    bytes
}

#[tokio::test]
async fn an_uploaded_png_comes_back_byte_for_byte_and_a_retry_is_a_duplicate() {
    let server = Server::start(&[]).await;
    let task = server.create_idle(ALICE).await;
    let id = task["id"].as_str().unwrap();

    let body = upload(id, "a1-step-1.png", &png());
    let (status, answer) = server
        .runner_post("/webhooks/runner/artifacts", id, 1, &body, Some("msg_png"))
        .await;
    assert_eq!((status, answer), (200, json!({"status": "stored"})));
    let (status, answer) = server
        .runner_post("/webhooks/runner/artifacts", id, 1, &body, Some("msg_png"))
        .await;
    assert_eq!((status, answer), (200, json!({"status": "duplicate"})));

    let response = server
        .client
        .get(server.url(&format!("/tasks/{id}/artifacts/a1-step-1.png")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.bytes().await.unwrap() == png(), "the bytes differ");
    let (status, _) = server
        .call(
            "GET",
            &format!("/tasks/{id}/artifacts/a1-step-1.png"),
            Some(BOB),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_upload_that_breaks_a_rule_is_refused_naming_it() {
    let server = Server::start(&[]).await;
    let task = server.create_idle(ALICE).await;
    let id = task["id"].as_str().unwrap();

    let (status, answer) = server
        .runner_post(
            "/webhooks/runner/artifacts",
            id,
            1,
            &upload(id, "x.html", b"<p>"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "validation_failed");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("name"),
        "{answer}"
    );

    let too_big = vec![7u8; pj_core::artifacts::MAX_ARTIFACT_BYTES + 1];
    let (status, answer) = server
        .runner_post(
            "/webhooks/runner/artifacts",
            id,
            1,
            &upload(id, "big.png", &too_big),
            None,
        )
        .await;
    assert_eq!(status, 413, "{answer}");

    let (status, _) = server
        .runner_post(
            "/webhooks/runner/artifacts",
            id,
            2,
            &upload_for(id, 2, "a2.txt", b"x"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (_, listed) = server
        .call("GET", &format!("/tasks/{id}/artifacts"), Some(ALICE), None)
        .await;
    assert_eq!(listed, json!({"artifacts": []}));
}
