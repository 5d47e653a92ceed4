//! `TaskApi`: the users' operations and the runners' callbacks.

use pj_core::api::{EventAck, MAX_LOG_LINES_PER_ATTEMPT};
use pj_core::error::AppError;
use pj_core::ids::Attempt;
use pj_core::ports::{LogStream, QueueMessage};
use pj_core::ratelimit::RateLimiter;
use pj_core::task::{ExecState, Task, TaskStatus};
use serde_json::json;

use crate::{World, alice, bob, body, dispatch, log_line, notify, signature};

#[tokio::test]
async fn creating_a_task_stores_it_queued_and_sends_its_dispatch_message() {
    let world = World::new();

    let (task, sent) = world.create(json!({})).await;

    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(
        world.task(&task.id),
        task,
        "what was answered is what was stored"
    );
    assert_eq!(sent, vec![dispatch(&task.id, 1)]);
}

#[tokio::test]
async fn a_task_created_without_execute_waits_and_sends_nothing() {
    let world = World::new();

    let (task, sent) = world.create(json!({"execute": false})).await;

    assert_eq!(task.status, TaskStatus::Queued);
    assert!(task.executions.is_empty());
    assert!(sent.is_empty(), "{sent:?}");
}

#[tokio::test]
async fn an_invalid_create_is_refused_naming_the_field_and_nothing_is_stored_or_sent() {
    let world = World::new();
    let cases = [
        (json!({"prompt": "p"}), "repo_url"),
        (
            json!({"repo_url": "https://github.com/o/r", "prompt": ""}),
            "prompt",
        ),
        (
            json!({"repo_url": "http://github.com/o/r", "prompt": "p"}),
            "repo_url",
        ),
    ];
    for (bad, field) in cases {
        match world.api.create(&alice(), &bad, None).await {
            Err(AppError::Validation(v)) => assert_eq!(v.field, field, "{bad}"),
            other => panic!("{bad} answered {other:?}"),
        }
    }
    match world.api.create(&alice(), &body(json!({})), Some("")).await {
        Err(AppError::Validation(v)) => assert_eq!(v.field, "Idempotency-Key"),
        other => panic!("an empty key answered {other:?}"),
    }
    assert_eq!(world.store.count(), 0);
    assert!(world.queue.take().is_empty());
}

#[tokio::test]
async fn the_same_idempotency_key_with_the_same_body_returns_the_first_task_and_sends_nothing_more()
{
    let world = World::new();
    let (first, existed) = world
        .api
        .create(&alice(), &body(json!({})), Some("key-1"))
        .await
        .unwrap();
    assert!(!existed);
    assert_eq!(world.queue.take().len(), 1);

    let (again, existed) = world
        .api
        .create(&alice(), &body(json!({})), Some("key-1"))
        .await
        .unwrap();

    assert!(existed);
    assert_eq!(again.id, first.id);
    assert_eq!(world.store.count(), 1);
    assert!(world.queue.take().is_empty(), "no second dispatch");
}

#[tokio::test]
async fn a_stored_idempotency_fingerprint_is_keyed_so_it_cannot_be_checked_against_a_guessed_body()
{
    use sha2::{Digest, Sha256};
    let world = World::new();
    let request = json!({"kind": "api_call", "title": "t",
        "config": {"url": "https://api.example.com/", "auth": {"type": "basic", "username": "u", "password": "pw1"}}});
    world
        .api
        .create(&alice(), &request, Some("key-1"))
        .await
        .unwrap();
    let guessed = hex::encode(Sha256::digest(serde_json::to_vec(&request).unwrap()));
    assert_eq!(world.store.fingerprints().len(), 1);
    assert!(!world.store.fingerprints().contains(&guessed));
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_body_is_a_conflict() {
    let world = World::new();
    world
        .api
        .create(&alice(), &body(json!({})), Some("key-1"))
        .await
        .unwrap();
    world.queue.take();

    let other = body(json!({"prompt": "Something else"}));
    let answer = world.api.create(&alice(), &other, Some("key-1")).await;

    assert!(matches!(answer, Err(AppError::Conflict(_))), "{answer:?}");
    assert_eq!(world.store.count(), 1);
    assert!(world.queue.take().is_empty());
}

#[tokio::test]
async fn another_users_idempotency_key_of_the_same_name_is_their_own() {
    let world = World::new();
    let (mine, _) = world
        .api
        .create(&alice(), &body(json!({})), Some("key-1"))
        .await
        .unwrap();

    let (theirs, existed) = world
        .api
        .create(&bob(), &body(json!({})), Some("key-1"))
        .await
        .unwrap();

    assert!(!existed);
    assert_ne!(theirs.id, mine.id);
}

#[tokio::test]
async fn creating_past_the_rate_limit_is_refused_with_a_retry_after_and_stores_nothing() {
    let world = World::with_limiter(|_| {}, RateLimiter::new(1, 2));
    world
        .api
        .create(&alice(), &body(json!({})), None)
        .await
        .unwrap();
    world
        .api
        .create(&alice(), &body(json!({})), None)
        .await
        .unwrap();

    let answer = world.api.create(&alice(), &body(json!({})), None).await;

    match answer {
        Err(AppError::RateLimited { retry_after }) => assert!(!retry_after.is_zero()),
        other => panic!("the third create answered {other:?}"),
    }
    assert_eq!(world.store.count(), 2);
    assert!(
        world
            .api
            .create(&bob(), &body(json!({})), None)
            .await
            .is_ok(),
        "another user has a bucket of their own"
    );
}

#[tokio::test]
async fn execute_sends_the_dispatch_message_once_however_often_it_is_repeated() {
    let world = World::new();
    let (task, _) = world.create(json!({"execute": false})).await;

    let executed = world.api.execute(&alice(), task.id.as_str()).await.unwrap();
    let again = world.api.execute(&alice(), task.id.as_str()).await.unwrap();

    assert_eq!(executed.status, TaskStatus::Queued);
    assert_eq!(
        executed.current_execution().unwrap().state,
        ExecState::Requested
    );
    assert_eq!(
        again.version, executed.version,
        "the repeat changed nothing"
    );
    assert_eq!(world.queue.take_messages(), vec![dispatch(&task.id, 1)]);
}

#[tokio::test]
async fn approve_queues_a_task_waiting_for_review_and_dispatches_it_and_only_that() {
    let world = World::new();
    let (task, sent) = world.create(json!({"requires_review": true})).await;
    assert_eq!(task.status, TaskStatus::PendingReview);
    assert!(sent.is_empty());

    let approved = world.api.approve(&alice(), task.id.as_str()).await.unwrap();

    assert_eq!(approved.status, TaskStatus::Queued);
    assert_eq!(world.queue.take_messages(), vec![dispatch(&task.id, 1)]);
    let again = world.api.approve(&alice(), task.id.as_str()).await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
    assert!(world.queue.take().is_empty());
}

#[tokio::test]
async fn cancelling_a_running_task_sends_a_stop_message_and_a_second_cancel_is_a_conflict() {
    let world = World::new();
    let running = world.running_task().await;
    world.queue.take();

    let cancelled = world
        .api
        .cancel(&alice(), running.id.as_str())
        .await
        .unwrap();

    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    match world.queue.take_messages().as_slice() {
        [
            QueueMessage::Stop {
                task_id,
                attempt,
                runner_ref,
                ..
            },
        ] => {
            assert_eq!(task_id, &running.id);
            assert_eq!(*attempt, Attempt(1));
            assert_eq!(runner_ref.as_deref(), Some("pid:1"));
        }
        other => panic!("cancel sent {other:?}"),
    }
    let again = world.api.cancel(&alice(), running.id.as_str()).await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
    assert!(world.queue.take().is_empty());
    let late = world
        .event(
            &running.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await;
    assert!(matches!(late, Err(AppError::Conflict(_))), "{late:?}");
    assert_only_the_refusal_is_counted(&cancelled, world.task(&running.id));
}

/// A refused callback changes nothing of `before` but its count of refused callbacks (for the
/// owner's `webhook_activity` report).
fn assert_only_the_refusal_is_counted(before: &Task, mut after: Task) {
    assert_eq!(after.callbacks.refused, before.callbacks.refused + 1);
    after.callbacks = before.callbacks;
    after.version = before.version;
    after.updated_at = before.updated_at;
    assert_eq!(&after, before);
}

#[tokio::test]
async fn retrying_a_failed_task_starts_a_new_attempt_and_sends_its_dispatch_message() {
    let world = World::new();
    let running = world.running_task().await;
    world
        .event(
            &running.id,
            1,
            json!({"type": "task.failed", "error": {"code": "patch_failed", "message": "no"}}),
        )
        .await
        .unwrap();
    world.queue.take();

    let retried = world
        .api
        .retry(&alice(), running.id.as_str())
        .await
        .unwrap();

    assert_eq!(retried.status, TaskStatus::Queued);
    assert_eq!(retried.attempt, Attempt(2));
    assert_eq!(world.queue.take_messages(), vec![dispatch(&running.id, 2)]);
    let again = world.api.retry(&alice(), running.id.as_str()).await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn another_users_task_is_not_found_and_cannot_be_changed() {
    let world = World::new();
    let (task, _) = world.create(json!({"execute": false})).await;

    assert!(matches!(
        world.api.get(&bob(), task.id.as_str()).await,
        Err(AppError::NotFound)
    ));
    assert!(matches!(
        world.api.execute(&bob(), task.id.as_str()).await,
        Err(AppError::NotFound)
    ));
    assert!(world.queue.take().is_empty());
    assert_eq!(world.task(&task.id).version, task.version);
}

#[tokio::test]
async fn a_final_event_finishes_the_task_and_sends_its_email_message() {
    let world = World::new();
    let running = world.running_task().await;
    world.queue.take();

    let ack = world
        .event(
            &running.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x", "pr_url": "https://github.com/o/r/pull/1"}),
        )
        .await
        .unwrap();

    assert_eq!(ack, EventAck::Applied);
    let done = world.task(&running.id);
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(
        done.pr_url.as_deref(),
        Some("https://github.com/o/r/pull/1")
    );
    assert_eq!(world.queue.take_messages(), vec![notify(&running.id, 1)]);
}

#[tokio::test]
async fn an_event_is_checked_against_its_signature_before_anything_else() {
    let world = World::new();
    let running = world.running_task().await;
    let body = json!({"task_id": running.id.as_str(), "attempt": 1, "type": "task.completed", "branch": "pj/x"});
    let (bytes, mut headers) = world.sign(&running.id, Attempt(1), &body);
    headers[2] = headers[2].replace("v1,", "v1,AAAA");

    let forged = world.deliver_event(&bytes, &headers).await;

    assert!(
        matches!(forged, Err(AppError::Unauthorized(_))),
        "{forged:?}"
    );
    // Signed with the key of another attempt: refused as well, though the body says attempt 1.
    let (bytes, headers) = world.sign(&running.id, Attempt(2), &body);
    let other_key = world.deliver_event(&bytes, &headers).await;
    assert!(
        matches!(other_key, Err(AppError::Unauthorized(_))),
        "{other_key:?}"
    );
    // A body that would not be valid is still refused for its signature first.
    let invalid = json!({"task_id": running.id.as_str(), "attempt": 1, "type": "task.nonsense"});
    let (bytes, mut headers) = world.sign(&running.id, Attempt(1), &invalid);
    headers[2] = "v1,AAAA".into();
    let answer = world.deliver_event(&bytes, &headers).await;
    assert!(
        matches!(answer, Err(AppError::Unauthorized(_))),
        "{answer:?}"
    );
    assert_eq!(world.task(&running.id).version, running.version);
}

#[tokio::test]
async fn a_repeated_webhook_id_is_answered_as_a_duplicate_and_changes_nothing() {
    let world = World::new();
    let running = world.running_task().await;
    world.queue.take();
    let body = json!({"task_id": running.id.as_str(), "attempt": 1, "type": "task.completed", "branch": "pj/x"});
    let (bytes, headers) = world.sign(&running.id, Attempt(1), &body);
    assert_eq!(
        world.deliver_event(&bytes, &headers).await.unwrap(),
        EventAck::Applied
    );
    let after_first = world.task(&running.id);
    world.queue.take();

    let again = world.deliver_event(&bytes, &headers).await.unwrap();

    assert_eq!(again, EventAck::Duplicate);
    assert_eq!(world.task(&running.id).version, after_first.version);
    assert!(world.queue.take().is_empty(), "no second email");
}

#[tokio::test]
async fn a_repeated_webhook_id_of_an_event_that_changed_nothing_is_a_duplicate_too() {
    let world = World::new();
    let running = world.running_task().await;
    let body = json!({"task_id": running.id.as_str(), "attempt": 1, "type": "task.progress"});
    let (bytes, headers) = world.sign(&running.id, Attempt(1), &body);
    assert_eq!(
        world.deliver_event(&bytes, &headers).await.unwrap(),
        EventAck::Unchanged
    );

    let again = world.deliver_event(&bytes, &headers).await.unwrap();

    assert_eq!(again, EventAck::Duplicate);
}

#[tokio::test]
async fn an_event_for_an_attempt_that_is_not_the_current_one_is_a_conflict() {
    let world = World::new();
    let running = world.running_task().await;

    let answer = world
        .event(
            &running.id,
            2,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await;

    assert!(matches!(answer, Err(AppError::Conflict(_))), "{answer:?}");
    assert_only_the_refusal_is_counted(&running, world.task(&running.id));
}

#[tokio::test]
async fn a_log_batch_is_stored_once_and_a_redelivery_counts_as_duplicates() {
    let world = World::new();
    let running = world.running_task().await;
    let lines = vec![log_line(0, "one"), log_line(1, "two")];

    let first = world
        .log_batch(&running.id, 1, lines.clone())
        .await
        .unwrap();
    let again = world.log_batch(&running.id, 1, lines).await.unwrap();

    assert_eq!((first.stored, first.duplicates), (2, 0));
    assert_eq!((again.stored, again.duplicates), (0, 2));
    let texts: Vec<String> = world
        .logs
        .lines(&running.id)
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(texts, ["one", "two"]);
}

#[tokio::test]
async fn a_log_batch_with_a_bad_signature_stores_nothing() {
    let world = World::new();
    let running = world.running_task().await;
    let body = json!({"task_id": running.id.as_str(), "attempt": 1, "lines": [log_line(0, "x")]});
    let (bytes, mut headers) = world.sign(&running.id, Attempt(1), &body);
    headers[2] = "v1,AAAA".into();

    let answer = world.api.receive_logs(&signature(&headers), &bytes).await;

    assert!(
        matches!(answer, Err(AppError::Unauthorized(_))),
        "{answer:?}"
    );
    assert!(world.logs.lines(&running.id).is_empty());
}

#[tokio::test]
async fn a_log_batch_for_a_later_attempt_than_the_current_one_is_a_conflict() {
    let world = World::new();
    let running = world.running_task().await;

    let answer = world
        .log_batch(&running.id, 2, vec![log_line(0, "from the future")])
        .await;

    assert!(matches!(answer, Err(AppError::Conflict(_))), "{answer:?}");
    assert!(world.logs.lines(&running.id).is_empty());
}

#[tokio::test]
async fn log_lines_past_the_quota_are_dropped_and_one_marker_line_says_so() {
    let world = World::new();
    let running = world.running_task().await;
    let last = MAX_LOG_LINES_PER_ATTEMPT - 1;

    world
        .log_batch(
            &running.id,
            1,
            vec![
                log_line(last, "the last kept"),
                log_line(last + 1, "dropped"),
            ],
        )
        .await
        .unwrap();
    world
        .log_batch(&running.id, 1, vec![log_line(last + 5, "dropped too")])
        .await
        .unwrap();

    let lines = world.logs.lines(&running.id);
    let seen: Vec<(u64, LogStream)> = lines.iter().map(|l| (l.seq, l.stream)).collect();
    assert_eq!(
        seen,
        [
            (last, LogStream::Stdout),
            (MAX_LOG_LINES_PER_ATTEMPT, LogStream::System)
        ],
        "{lines:?}"
    );
    assert!(lines[1].text.contains("quota"), "{}", lines[1].text);
}
