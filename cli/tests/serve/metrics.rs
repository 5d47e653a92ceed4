//! `GET /metrics` of `pj serve`: the product metrics of real tasks, the runner callbacks, the
//! queues, and the token.

use serde_json::json;

use crate::exposition::{Exposition, parse};
use crate::support::{ALICE, Server, task_body};

const KIND: (&str, &str) = ("kind", "code_change");

async fn scrape(server: &Server, token: Option<&str>) -> (u16, String) {
    let mut request = server.client.get(server.url("/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("the scrape is answered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn metrics(server: &Server) -> Exposition {
    let (status, text) = scrape(server, None).await;
    assert_eq!(status, 200, "{text}");
    parse(&text).unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"))
}

fn id(task: &serde_json::Value) -> String {
    task["id"].as_str().expect("a task id").to_owned()
}

#[tokio::test]
async fn after_tasks_run_the_metrics_should_count_them_by_kind_and_status_with_callbacks_and_queues()
 {
    let server = Server::start(&[("PJ_MAX_ATTEMPTS", "2")]).await;
    let done = server.create(ALICE, task_body("Add a README")).await;
    let failed = server.create(ALICE, task_body("fake:fail")).await;
    let crashed = server.create(ALICE, task_body("fake:crash")).await;
    server.wait_for(ALICE, &id(&done), "completed", 30).await;
    server.wait_for(ALICE, &id(&failed), "failed", 30).await;
    server.wait_for(ALICE, &id(&crashed), "failed", 60).await;
    // A callback nobody signed.
    let forged = server
        .client
        .post(server.url("/webhooks/runner"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_forged_1")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,Zm9vYmFy")
        .body(json!({"task_id": id(&done), "attempt": 1, "type": "task.started"}).to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status(), 401);

    let m = metrics(&server).await;
    assert_eq!(m.types["pj_tasks_created_total"], "counter");
    assert_eq!(m.value("pj_tasks_created_total", &[KIND]), Some(3.0));
    let finished = |status| m.value("pj_tasks_finished_total", &[KIND, ("status", status)]);
    assert_eq!(finished("completed"), Some(1.0));
    assert_eq!(finished("failed"), Some(2.0));
    assert_eq!(finished("needs_review"), None);
    // One attempt each, and a second one for the runner that crashed.
    assert_eq!(m.value("pj_attempts_total", &[KIND]), Some(4.0));
    assert_eq!(m.value("pj_attempts_retried_total", &[KIND]), Some(1.0));
    assert_eq!(
        m.value(
            "pj_task_duration_seconds_count",
            &[KIND, ("status", "completed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "pj_task_duration_seconds_count",
            &[KIND, ("status", "failed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        m.value("pj_dispatch_latency_seconds_count", &[KIND]),
        Some(4.0)
    );
    // The fake runner reports 1,200 input and 300 output tokens for each agent that finishes.
    assert_eq!(
        m.value("pj_tokens_total", &[KIND, ("type", "input")]),
        Some(2_400.0)
    );
    assert_eq!(
        m.value("pj_tokens_total", &[KIND, ("type", "output")]),
        Some(600.0)
    );
    let cost = m.value("pj_cost_usd_total", &[KIND]).expect("a cost");
    assert!((cost - 0.0096).abs() < 1e-9, "{cost}");

    // Every attempt that started sent task.started, and the finished ones their outcome.
    let events = m
        .value("pj_callbacks_accepted_total", &[("callback", "event")])
        .expect("accepted events");
    assert!(events >= 5.0, "{events}");
    assert!(
        m.value("pj_callbacks_accepted_total", &[("callback", "logs")])
            .is_some()
    );
    assert_eq!(
        m.value(
            "pj_callbacks_refused_total",
            &[("callback", "event"), ("reason", "unauthorized")]
        ),
        Some(1.0)
    );

    for queue in ["dispatch", "notify", "tasks"] {
        let depth = m
            .value("pj_queue_depth", &[("queue", queue)])
            .unwrap_or_else(|| panic!("the depth of {queue}"));
        let age = m
            .value("pj_queue_oldest_age_seconds", &[("queue", queue)])
            .unwrap_or_else(|| panic!("the age of {queue}"));
        assert!(depth >= 0.0 && depth.fract() == 0.0, "{queue}: {depth}");
        assert!((0.0..3_600.0).contains(&age), "{queue}: {age}");
        assert!(
            depth > 0.0 || age == 0.0,
            "{queue}: an empty queue has no age"
        );
    }
    assert_eq!(m.types["pj_queue_depth"], "gauge");
}

#[tokio::test]
async fn with_a_metrics_token_only_a_scrape_that_sends_it_should_be_answered() {
    let token = "scrape-me-0123456789";
    let server = Server::start(&[("PJ_METRICS_TOKEN", token)]).await;
    for sent in [
        None,
        Some("scrape-me-012345678"),
        Some("wrong"),
        Some(crate::support::ALICE),
    ] {
        let (status, body) = scrape(&server, sent).await;
        assert_eq!(status, 401, "{sent:?}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(error["error"]["code"], "unauthorized", "{body}");
    }
    let (status, body) = scrape(&server, Some(token)).await;
    assert_eq!(status, 200, "{body}");
    parse(&body).unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{body}"));
    assert!(
        server
            .banner()
            .await
            .contains("/metrics (Authorization: Bearer"),
        "the banner says the metrics need the token"
    );
}

#[test]
fn a_metrics_token_with_a_space_should_stop_the_start_naming_the_variable() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pj"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PJ_METRICS_TOKEN", "two words")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("pj serve runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PJ_METRICS_TOKEN"), "{stderr}");
}
