//! `GET /metrics` as `pj serve` mounts it: the token, and the runner callbacks it counts.

use pj_core::ids::{Attempt, TaskId, WebhookId};
use pj_core::signing::{MasterSecret, signed_headers};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{ALICE, MASTER, TestApp, spawn_app_with_metrics};

const TOKEN: &str = "metrics-scraper-token";

async fn scrape(app: &TestApp, authorization: Option<&str>) -> (u16, String, String) {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("the scrape is answered");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.text().await.unwrap_or_default(),
    )
}

/// Posts a runner log batch for attempt 1 of `task`, signed with the master secret.
async fn signed_log_batch(app: &TestApp, task: &str) -> u16 {
    let master = MasterSecret::new(SecretString::from(MASTER)).expect("a valid master secret");
    let key = master.derive(&TaskId::parse(task).expect("a task id"), Attempt::FIRST);
    let body = json!({"task_id": task, "attempt": 1, "lines": [
        {"seq": 0, "ts": "2026-01-01T00:00:00Z", "stream": "stdout", "text": "hello"}
    ]});
    let bytes = serde_json::to_vec(&body).expect("JSON");
    let ts = chrono::Utc::now().timestamp();
    let mut request = app
        .client
        .post(app.url("/webhooks/runner/logs"))
        .header("content-type", "application/json")
        .body(bytes.clone());
    for (name, value) in signed_headers(&key, &WebhookId::generate(), ts, &bytes) {
        request = request.header(name, value);
    }
    request.send().await.expect("answered").status().as_u16()
}

#[tokio::test]
async fn without_a_token_configured_the_metrics_should_be_open_in_the_prometheus_text_format() {
    let (app, _) = spawn_app_with_metrics(None).await;
    let (status, content_type, body) = scrape(&app, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        body.contains("# TYPE pj_callbacks_accepted_total counter"),
        "{body}"
    );
    assert!(
        body.contains("pj_queue_depth{queue=\"dispatch\"} 0"),
        "{body}"
    );
}

#[tokio::test]
async fn with_a_token_configured_a_scrape_without_it_or_with_another_should_be_401() {
    let (app, _) = spawn_app_with_metrics(Some(TOKEN)).await;
    for authorization in [
        None,
        Some("Bearer not-the-metrics-token"),
        Some("Bearer metrics-scraper-toke"),
        Some("Basic bWV0cmljczp4"),
        Some(&format!("Bearer {ALICE}")),
    ] {
        let (status, content_type, body) = scrape(&app, authorization).await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let error: Value = serde_json::from_str(&body).expect("the contract's JSON error");
        assert_eq!(error["error"]["code"], "unauthorized", "{body}");
        assert!(
            !body.contains("pj_"),
            "nothing of the metrics leaks: {body}"
        );
    }
    let (status, _, body) = scrape(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pj_callbacks_accepted_total"), "{body}");
}

#[tokio::test]
async fn runner_callbacks_should_be_counted_accepted_and_refused_by_reason() {
    let (app, exporter) = spawn_app_with_metrics(None).await;
    let task = app.waiting_task(ALICE).await;
    assert_eq!(signed_log_batch(&app, &task).await, 200);
    let forged = app
        .client
        .post(app.url("/webhooks/runner"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_forged")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,Zm9vYmFy")
        .body(json!({"task_id": task, "attempt": 1, "type": "task.started"}).to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), 401);

    let text = exporter.encode();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&r#"pj_callbacks_accepted_total{callback="logs"} 1"#),
        "{text}"
    );
    assert!(
        lines.contains(&r#"pj_callbacks_accepted_total{callback="event"} 0"#),
        "{text}"
    );
    assert!(
        lines.contains(&r#"pj_callbacks_refused_total{callback="event",reason="unauthorized"} 1"#),
        "{text}"
    );
    assert!(
        lines.contains(&r#"pj_tasks_created_total{kind="code_change"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn only_get_should_be_served_at_metrics() {
    let (app, _) = spawn_app_with_metrics(None).await;
    let response = app
        .client
        .post(app.url("/metrics"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.expect("the contract's JSON error");
    assert_eq!(error["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_api_router_alone_should_not_serve_metrics() {
    // The Lambda functions mount `pj_http::router` only: their metrics are EMF lines.
    let app = crate::support::spawn_app().await;
    let (status, _, body) = scrape(&app, None).await;
    assert_eq!(status, 404, "{body}");
}
