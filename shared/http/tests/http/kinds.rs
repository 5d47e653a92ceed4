//! `POST /tasks` with the built-in kinds' fields: taken, shown with credentials masked, and
//! refused naming the field (`config.<field>`, down to list items).

use serde_json::{Value, json};

use crate::support::{ALICE, TestApp, spawn_app};

async fn create(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(ALICE)
        .json(&body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn an_api_call_with_notify_and_max_attempts_is_taken_and_shown_masked() {
    let app = spawn_app().await;
    let (status, task) = create(
        &app,
        json!({
            "kind": "api_call",
            "title": "Ping the orders API",
            "execute": false,
            "max_attempts": 4,
            "notify": {"on_complete": true, "on_failure": false,
                       "channels": [{"channel": "webhook", "url": "https://hooks.example.com/in"}]},
            "config": {
                "url": "https://api.example.com/orders",
                "method": "POST",
                "headers": {"X-Trace": "t-1", "X-Api-Key": "k-very-secret"},
                "body": {"id": 42},
                "auth": {"type": "bearer", "token": "tok-very-secret"},
                "timeout_secs": 5,
            },
        }),
    )
    .await;
    assert_eq!(status, 201, "{task}");
    assert_eq!(task["kind"], "api_call");
    assert_eq!(task["status"], "queued");
    assert_eq!(task["max_attempts"], 4);
    assert_eq!(task["repo_url"], Value::Null);
    assert_eq!(
        task["config"]["auth"],
        json!({"type": "bearer", "token": "***"})
    );
    assert_eq!(task["config"]["headers"]["X-Api-Key"], "***");
    assert_eq!(task["config"]["headers"]["X-Trace"], "t-1");
    assert_eq!(
        task["notify"]["channels"][0]["url"],
        "https://hooks.example.com/in"
    );
    assert_eq!(task["notify"]["on_failure"], false);
    let text = task.to_string();
    assert!(!text.contains("very-secret"), "{text}");
}

#[tokio::test]
async fn a_wrong_field_of_a_kind_is_a_400_naming_it() {
    let app = spawn_app().await;
    let api_call = |config: Value| json!({"kind": "api_call", "title": "t", "config": config});
    let cases = [
        (api_call(json!({"url": "ftp://x"})), "config.url"),
        (
            api_call(json!({"url": "https://x.example", "method": "TRACE"})),
            "config.method",
        ),
        (
            api_call(json!({"url": "https://x.example", "timeout_secs": 301})),
            "config.timeout_secs",
        ),
        (
            api_call(json!({"url": "https://x.example", "auth": {"type": "bearer"}})),
            "config.auth.token",
        ),
        (
            json!({"kind": "ghl_action", "title": "t",
                   "config": {"action": "add_tag", "contact_id": "c1", "tags": ["vip", ""]}}),
            "config.tags[1]",
        ),
        (
            json!({"kind": "notification", "title": "t",
                   "config": {"channel": "webhook", "url": "https://h.example"}}),
            "config.message",
        ),
        (
            json!({"kind": "reminder", "title": "t", "config": {
                "channel": "email", "message": "m", "remind_at": "2001-01-01T00:00:00Z"}}),
            "config.remind_at",
        ),
        (
            json!({"kind": "report", "title": "t", "config": {"report": "everything"}}),
            "config.report",
        ),
        (
            json!({"kind": "api_call", "title": "t", "max_attempts": 11,
                   "config": {"url": "https://x.example"}}),
            "max_attempts",
        ),
        (json!({"kind": "api_call", "title": "t"}), "config"),
        (
            json!({"kind": "api_call", "config": {"url": "https://x.example"}}),
            "title",
        ),
        (
            json!({"kind": "api_call", "title": "t", "prompt": "p",
                   "config": {"url": "https://x.example"}}),
            "prompt",
        ),
        (json!({"kind": "teleport", "title": "t"}), "kind"),
    ];
    for (body, field) in cases {
        let (status, answer) = create(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed", "{body}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
}
