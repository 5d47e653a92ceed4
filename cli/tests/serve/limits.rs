//! What one user can make the server do: attempts that wait their turn, rate limits on every
//! change, a bounded number of attempts, the repositories and hosts a task may name, and a log
//! that stops at its quota.

use serde_json::{Value, json};

use crate::support::{ALICE, BOB, Server, task_body};

fn id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_owned()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

#[tokio::test]
async fn with_a_cap_of_one_a_users_tasks_run_one_after_another_and_others_are_not_held_up() {
    let server = Server::start(&[("PJ_MAX_RUNNING_PER_USER", "1")]).await;
    let first = server.create(ALICE, task_body("first fake:slow=3")).await;
    let second = server.create(ALICE, task_body("second fake:slow=1")).await;
    let third = server.create(ALICE, task_body("third")).await;
    let bobs = server.create(BOB, task_body("bob's")).await;

    // Bob's task is not stuck behind Alice's.
    let bob_done = server.wait_for(BOB, &id(&bobs), "completed", 30).await;
    let first_done = server.wait_for(ALICE, &id(&first), "completed", 60).await;
    assert!(
        time(&bob_done["completed_at"]) < time(&first_done["completed_at"]),
        "another user's task finished while the first one still ran"
    );
    let second_done = server.wait_for(ALICE, &id(&second), "completed", 60).await;
    let third_done = server.wait_for(ALICE, &id(&third), "completed", 60).await;
    // One at a time, in the order they were created.
    assert!(time(&second_done["started_at"]) >= time(&first_done["completed_at"]));
    assert!(time(&third_done["started_at"]) >= time(&second_done["completed_at"]));
    assert_eq!(second_done["attempt"], 1, "waiting is not a failed attempt");
    assert_eq!(third_done["attempt"], 1, "waiting is not a failed attempt");
}

#[tokio::test]
async fn a_cancel_and_retry_loop_is_rate_limited_and_starts_few_runners() {
    let server = Server::start(&[
        ("PJ_RATE_LIMIT_BURST", "6"),
        ("PJ_RATE_LIMIT_PER_MINUTE", "6"),
    ])
    .await;
    let task = server.create(ALICE, task_body("fake:hang")).await;
    let task_id = id(&task);
    let mut limited = 0;
    let mut accepted = 0;
    for round in 0..40 {
        let verb = if round % 2 == 0 { "cancel" } else { "retry" };
        let resp = server
            .client
            .post(server.url(&format!("/tasks/{task_id}/{verb}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .expect("request");
        match resp.status().as_u16() {
            429 => {
                limited += 1;
                assert!(resp.headers().contains_key("retry-after"));
                let body: Value = resp.json().await.expect("json error");
                assert_eq!(body["error"]["code"], "rate_limited");
            }
            200 | 202 => accepted += 1,
            409 => {}
            other => panic!("{verb} answered {other}"),
        }
    }
    assert!(limited > 30, "only {limited} of 40 changes were refused");
    let executions = server
        .call(
            "GET",
            &format!("/tasks/{task_id}/executions"),
            Some(ALICE),
            None,
        )
        .await
        .1;
    let attempts = executions["executions"]
        .as_array()
        .expect("executions")
        .len();
    assert!(
        attempts <= 1 + accepted / 2 + 1 && attempts <= 6,
        "{attempts} attempts for {accepted} accepted changes"
    );
    // Bob's bucket is his own.
    let (status, _) = server
        .call("POST", &format!("/tasks/{task_id}/cancel"), Some(BOB), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn local_repositories_need_an_explicit_yes_once_users_sign_in_with_tokens() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().to_string_lossy().into_owned();
    for repo in [local.clone(), format!("file://{local}")] {
        let (status, body) = server
            .call(
                "POST",
                "/tasks",
                Some(ALICE),
                Some(json!({"repo_url": repo, "prompt": "p"})),
            )
            .await;
        assert_eq!(status, 400, "{repo}: {body}");
        assert_eq!(body["error"]["field"], "repo_url");
    }
    drop(server);
    let allowed = Server::start(&[("PJ_ALLOW_LOCAL_REPOS", "true")]).await;
    allowed
        .create(
            ALICE,
            json!({"repo_url": local, "prompt": "p", "execute": false}),
        )
        .await;
}

#[tokio::test]
async fn repositories_outside_the_allowed_list_or_on_private_hosts_are_refused() {
    let server = Server::start(&[("PJ_ALLOWED_REPOS", "github.com/example/*")]).await;
    let (status, body) = server
        .call(
            "POST",
            "/tasks",
            Some(ALICE),
            Some(task_body_for("https://github.com/other/repo")),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "repo_url");
    server
        .create(ALICE, task_body_for("https://github.com/example/repo"))
        .await;
    drop(server);

    let server = Server::start(&[]).await;
    for repo in [
        "https://127.0.0.1/o/r",
        "https://localhost:8443/o/r",
        "https://[::1]/o/r",
        "https://10.1.2.3/o/r",
        "https://169.254.169.254/latest/meta-data",
    ] {
        let (status, body) = server
            .call("POST", "/tasks", Some(ALICE), Some(task_body_for(repo)))
            .await;
        assert_eq!(status, 400, "{repo}: {body}");
        assert_eq!(body["error"]["field"], "repo_url", "{repo}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("PJ_ALLOW_PRIVATE_NETWORKS"), "{message}");
    }
    drop(server);

    let open = Server::start(&[("PJ_ALLOW_PRIVATE_NETWORKS", "true")]).await;
    open.create(ALICE, task_body_for("https://127.0.0.1/o/r"))
        .await;
}

fn task_body_for(repo: &str) -> Value {
    json!({"repo_url": repo, "prompt": "p", "execute": false})
}

#[tokio::test]
async fn an_attempts_log_stops_at_its_quota_with_one_marker_line() {
    let server = Server::start(&[]).await;
    let task = server.create_idle(ALICE).await;
    let task_id = id(&task);
    let quota = pj_core::api::MAX_LOG_LINES_PER_ATTEMPT;
    let batch = |from: u64, to: u64| {
        let lines: Vec<Value> = (from..to)
            .map(|seq| json!({"seq": seq, "ts": "2026-01-01T00:00:00Z", "stream": "stdout", "text": format!("line {seq}")}))
            .collect();
        json!({"task_id": task_id, "attempt": 1, "lines": lines})
    };
    for (from, to) in [(quota - 2, quota + 3), (quota + 3, quota + 10)] {
        let (status, body) = server
            .runner_post("/webhooks/runner/logs", &task_id, 1, &batch(from, to), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let lines = server.logs(ALICE, &task_id).await;
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![quota - 2, quota - 1, quota]);
    let marker = lines[2]["text"].as_str().expect("text");
    assert!(marker.contains("quota"), "{marker}");
    assert_eq!(lines[2]["stream"], "system");
}
