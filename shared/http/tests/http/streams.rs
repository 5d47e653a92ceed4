use pj_core::UserId;
use pj_core::stream::MAX_STREAMS_PER_USER;
use serde_json::Value;

use crate::support::{ALICE, BOB, TestApp, eventually, spawn_app};

async fn open_stream(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/tasks/{id}/logs/stream")))
        .bearer_auth(token)
        .send()
        .await
        .expect("the stream is answered")
}

fn alice() -> UserId {
    UserId::parse("alice").expect("a user id")
}

#[tokio::test]
async fn when_a_user_holds_the_most_streams_the_next_is_429_until_one_is_closed() {
    let app = spawn_app().await;
    let id = app.waiting_task(ALICE).await;
    let mut open = Vec::new();
    for _ in 0..MAX_STREAMS_PER_USER {
        let stream = open_stream(&app, ALICE, &id).await;
        assert_eq!(stream.status(), 200);
        open.push(stream);
    }

    let refused = open_stream(&app, ALICE, &id).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry_after >= 1);
    let error: Value = refused.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "rate_limited");

    // Another user's streams are their own.
    let bobs_task = app.waiting_task(BOB).await;
    assert_eq!(open_stream(&app, BOB, &bobs_task).await.status(), 200);

    // The client goes away: its slot comes back.
    drop(open.pop());
    eventually("the closed stream's slot is free", || {
        app.api.streams.open_for(&alice()) < MAX_STREAMS_PER_USER
    })
    .await;
    let again = open_stream(&app, ALICE, &id).await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn when_the_task_ends_its_streams_give_their_slots_back() {
    let app = spawn_app().await;
    let id = app.waiting_task(ALICE).await;
    let mut open = Vec::new();
    for _ in 0..MAX_STREAMS_PER_USER {
        open.push(open_stream(&app, ALICE, &id).await);
    }
    assert_eq!(app.api.streams.open_for(&alice()), MAX_STREAMS_PER_USER);

    let cancelled = app
        .client
        .post(app.url(&format!("/tasks/{id}/cancel")))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("the cancel is answered");
    assert_eq!(cancelled.status(), 200);
    // Every stream sends the final status and ends, while its client still holds it.
    for stream in open.iter_mut() {
        while stream.chunk().await.expect("the stream reads").is_some() {}
    }
    eventually("the ended streams' slots are free", || {
        app.api.streams.open_for(&alice()) == 0
    })
    .await;
    assert_eq!(open_stream(&app, ALICE, &id).await.status(), 200);
}
