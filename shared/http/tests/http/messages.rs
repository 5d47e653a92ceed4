//! `GET /messages`: the caller's outbound messages, newest first, in pages, filtered.

use chrono::{TimeDelta, Utc};
use pj_core::messages::{MessageStatus, OutboundMessage};
use pj_core::ratelimit::RateLimiter;
use pj_core::{AppError, Principal, TaskApi, TaskId, UserId};
use serde_json::Value;

use crate::support::{ALICE, BOB, TestApp, spawn_app};

/// Stores a message of `owner` for `task`, created `secs` seconds after a fixed start.
async fn stored(app: &TestApp, owner: &str, task: &TaskId, secs: i64) -> OutboundMessage {
    let start = Utc::now() - TimeDelta::hours(1);
    let owner = UserId::parse(owner).expect("a user id");
    let message = pj_contract::message(&owner, task, "http", start + TimeDelta::seconds(secs));
    assert!(app.api.messages.insert(&message).await.expect("insert"));
    message
}

async fn get(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(&format!("/messages{query}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("a list of messages")
        .iter()
        .map(|m| m["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test]
async fn messages_are_the_callers_own_newest_first_in_the_contracts_shape() {
    let app = spawn_app().await;
    let task = TaskId::generate(Utc::now());
    let older = stored(&app, "alice", &task, 1).await;
    let newer = stored(&app, "alice", &task, 2).await;
    let bobs = stored(&app, "bob", &task, 3).await;

    let (status, page) = get(&app, ALICE, "").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), [newer.id.to_string(), older.id.to_string()]);
    assert_eq!(page["next_cursor"], Value::Null);
    let first = &page["messages"][0];
    let mut fields: Vec<&str> = first
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "attempts",
            "channel",
            "created_at",
            "id",
            "last_error",
            "sent_at",
            "status",
            "subject",
            "task_id",
            "to"
        ]
    );
    assert_eq!(first["channel"], "webhook");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["task_id"], task.as_str());

    let (_, page) = get(&app, BOB, "").await;
    assert_eq!(ids(&page), [bobs.id.to_string()]);
}

#[tokio::test]
async fn messages_page_with_the_cursor_and_filter_by_task_and_status() {
    let app = spawn_app().await;
    let (a, b) = (TaskId::generate(Utc::now()), TaskId::generate(Utc::now()));
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(stored(&app, "alice", &a, i).await);
    }
    let of_b = stored(&app, "alice", &b, 10).await;
    let mut failed = of_b.clone();
    failed.status = MessageStatus::Failed;
    failed.next_try_at = None;
    failed.version += 1;
    assert!(
        app.api
            .messages
            .update(&failed, of_b.version)
            .await
            .unwrap()
    );

    let mut seen = Vec::new();
    let mut query = format!("?task_id={a}&limit=2");
    loop {
        let (status, page) = get(&app, ALICE, &query).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?task_id={a}&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    made.reverse();
    let want: Vec<String> = made.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(seen, want, "every message of the task once, newest first");

    let (_, page) = get(&app, ALICE, "?status=failed").await;
    assert_eq!(ids(&page), [of_b.id.to_string()]);
    let (_, page) = get(&app, ALICE, &format!("?status=failed&task_id={a}")).await;
    assert!(ids(&page).is_empty());
    let (_, page) = get(&app, ALICE, "?status=pending&limit=100").await;
    assert_eq!(ids(&page).len(), 5);
}

#[tokio::test]
async fn a_bad_query_is_a_400_naming_its_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("?status=delivered", "status"),
        ("?task_id=nope", "task_id"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?cursor=made-up", "cursor"),
    ] {
        let (status, body) = get(&app, ALICE, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn messages_need_a_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/messages"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_deployment_without_a_message_store_fails_rather_than_list_nothing() {
    let app = spawn_app().await;
    let api = TaskApi::new(
        app.api.engine.clone(),
        app.api.logs.clone(),
        app.api.secrets.clone(),
        RateLimiter::new(60, 10),
    );
    let who = Principal {
        user: UserId::parse("alice").unwrap(),
        email: None,
    };
    let answer = api.messages(&who, None, None, None, None).await;
    assert!(matches!(answer, Err(AppError::Internal(_))), "{answer:?}");
}
