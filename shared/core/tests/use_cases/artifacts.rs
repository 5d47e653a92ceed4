//! Artifacts: a runner's signed uploads, and the owner's listing and download.

use pj_core::artifacts::{MAX_ARTIFACTS_PER_ATTEMPT, PutOutcome};
use pj_core::error::AppError;
use pj_core::ids::Attempt;
use serde_json::json;

use crate::{World, alice, bob, signature};

#[tokio::test]
async fn an_uploaded_reply_is_listed_and_served_to_the_owner_only() {
    let world = World::new();
    let running = world.running_task().await;

    let put = world
        .artifact_upload(&running.id, 1, "a1-reply-1.md", b"A plan, then the edits.")
        .await;

    assert_eq!(put.unwrap(), PutOutcome::Stored);
    let listed = world
        .api
        .artifacts(&alice(), running.id.as_str())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name.as_str(), "a1-reply-1.md");
    assert_eq!(listed[0].attempt, Attempt(1));
    assert_eq!(listed[0].size, 23);
    assert_eq!(listed[0].content_type, "text/markdown; charset=utf-8");
    let (_, bytes) = world
        .api
        .artifact(&alice(), running.id.as_str(), "a1-reply-1.md")
        .await
        .unwrap();
    assert_eq!(bytes, b"A plan, then the edits.");

    let theirs = world.api.artifacts(&bob(), running.id.as_str()).await;
    assert!(matches!(theirs, Err(AppError::NotFound)), "{theirs:?}");
    let download = world
        .api
        .artifact(&bob(), running.id.as_str(), "a1-reply-1.md")
        .await;
    assert!(matches!(download, Err(AppError::NotFound)), "{download:?}");
}

#[tokio::test]
async fn a_missing_artifact_is_not_found_and_says_which() {
    let world = World::new();
    let running = world.running_task().await;

    for name in ["a1-none.md", "../../etc/passwd"] {
        let answer = world
            .api
            .artifact(&alice(), running.id.as_str(), name)
            .await;
        match answer {
            Err(AppError::Missing(message)) => assert!(message.contains(name), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_retried_upload_is_a_duplicate_and_keeps_the_first_bytes() {
    let world = World::new();
    let running = world.running_task().await;

    world
        .artifact_upload(&running.id, 1, "a1-reply-1.md", b"first")
        .await
        .unwrap();
    let again = world
        .artifact_upload(&running.id, 1, "a1-reply-1.md", b"second")
        .await;

    assert_eq!(again.unwrap(), PutOutcome::Duplicate);
    let (_, bytes) = world
        .api
        .artifact(&alice(), running.id.as_str(), "a1-reply-1.md")
        .await
        .unwrap();
    assert_eq!(bytes, b"first");
}

#[tokio::test]
async fn a_secret_in_an_uploaded_reply_is_redacted_before_it_is_stored() {
    let world = World::new();
    let running = world.running_task().await;
    let reply = "use the token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB here";

    world
        .artifact_upload(&running.id, 1, "a1-reply-1.md", reply.as_bytes())
        .await
        .unwrap();

    let (_, bytes) = world
        .api
        .artifact(&alice(), running.id.as_str(), "a1-reply-1.md")
        .await
        .unwrap();
    let stored = String::from_utf8(bytes).unwrap();
    assert!(!stored.contains("0123456789abcdef"), "{stored}");
}

#[tokio::test]
async fn an_upload_with_a_bad_signature_stores_nothing() {
    let world = World::new();
    let running = world.running_task().await;
    let body = json!({"task_id": running.id.as_str(), "attempt": 1, "name": "a1-x.txt", "content_base64": ""});
    let (bytes, mut headers) = world.sign(&running.id, Attempt(1), &body);
    headers[2] = "v1,AAAA".into();

    let answer = world
        .api
        .receive_artifact(&signature(&headers), &bytes)
        .await;

    assert!(
        matches!(answer, Err(AppError::Unauthorized(_))),
        "{answer:?}"
    );
    let listed = world
        .api
        .artifacts(&alice(), running.id.as_str())
        .await
        .unwrap();
    assert!(listed.is_empty());
}

#[tokio::test]
async fn an_upload_for_a_later_attempt_is_a_conflict() {
    let world = World::new();
    let running = world.running_task().await;

    let answer = world
        .artifact_upload(&running.id, 2, "a2-reply-1.md", b"from the future")
        .await;

    assert!(matches!(answer, Err(AppError::Conflict(_))), "{answer:?}");
}

#[tokio::test]
async fn an_upload_with_a_name_outside_the_rule_names_the_field() {
    let world = World::new();
    let running = world.running_task().await;

    let answer = world
        .artifact_upload(&running.id, 1, "page.html", b"<script>")
        .await;

    match answer {
        Err(AppError::Validation(e)) => assert_eq!(e.field, "name"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_attempt_past_its_quota_of_artifacts_is_refused() {
    let world = World::new();
    let running = world.running_task().await;
    for i in 0..MAX_ARTIFACTS_PER_ATTEMPT {
        world
            .artifact_upload(&running.id, 1, &format!("a1-{i}.txt"), b"x")
            .await
            .unwrap();
    }

    let answer = world
        .artifact_upload(&running.id, 1, "a1-one-more.txt", b"x")
        .await;

    assert!(matches!(answer, Err(AppError::Conflict(_))), "{answer:?}");
    let listed = world
        .api
        .artifacts(&alice(), running.id.as_str())
        .await
        .unwrap();
    assert_eq!(listed.len(), MAX_ARTIFACTS_PER_ATTEMPT);
}
