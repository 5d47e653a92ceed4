//! `pj serve` end to end: a real server process on a free port, the fake runner speaking the
//! callback protocol, real HTTP.

mod agent;
mod artifacts;
mod browser;
mod budget;
mod client;
mod exposition;
mod kinds;
mod limits;
mod metrics;
mod openapi;
mod page;
mod python;
mod remote;
mod support;
mod untrusted;

use std::time::Duration;

use serde_json::{Value, json};
use support::{ALICE, BOB, Server, task_body};

fn id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_owned()
}

#[tokio::test]
async fn a_task_runs_to_completion_with_logs_and_an_email() {
    let server = Server::start(&[]).await;
    let task = server
        .create(ALICE, task_body("Add a README fake:logs=5"))
        .await;
    assert_eq!(task["status"], "queued");
    assert_eq!(task["attempt"], 1);
    let done = server.wait_for(ALICE, &id(&task), "completed", 30).await;
    assert_eq!(done["pr_url"], "https://github.com/example/repo/pull/1");
    assert_eq!(done["usage"]["input_tokens"], 1200);
    assert!(done["completed_at"].is_string());
    let lines = server.logs(ALICE, &id(&task)).await;
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    let (_, execs) = server
        .call(
            "GET",
            &format!("/tasks/{}/executions", id(&task)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(execs["executions"][0]["status"], "completed");
    assert_eq!(execs["executions"][0]["runner"], "local");
    // The email goes out shortly after the terminal status.
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = server.outbox();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 1, "one email per attempt");
    let (_, eml) = &mails[0];
    assert!(eml.contains("To: alice@example.com"), "{eml}");
    assert!(eml.contains("pull/1"), "{eml}");
}

#[tokio::test]
async fn an_agent_failure_fails_the_task_without_a_new_attempt() {
    let server = Server::start(&[]).await;
    let task = server.create(ALICE, task_body("fake:fail")).await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 30).await;
    assert_eq!(done["error"]["code"], "patch_failed");
    assert_eq!(done["attempt"], 1);
}

#[tokio::test]
async fn needs_review_is_reported_as_such() {
    let server = Server::start(&[]).await;
    let task = server.create(ALICE, task_body("fake:needs_review")).await;
    let done = server.wait_for(ALICE, &id(&task), "needs_review", 30).await;
    assert_eq!(done["error"]["code"], "verify_failed");
}

#[tokio::test]
async fn a_runner_that_crashes_is_retried_then_fails_with_runner_exited() {
    let server = Server::start(&[("PJ_MAX_ATTEMPTS", "2")]).await;
    let task = server.create(ALICE, task_body("fake:crash")).await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 60).await;
    assert_eq!(done["error"]["code"], "runner_exited");
    assert_eq!(done["attempt"], 2);
    let (_, execs) = server
        .call(
            "GET",
            &format!("/tasks/{}/executions", id(&task)),
            Some(ALICE),
            None,
        )
        .await;
    let execs = execs["executions"].as_array().unwrap().clone();
    assert_eq!(execs.len(), 2);
    assert!(execs.iter().all(|e| e["error"]["code"] == "runner_exited"));
}

#[tokio::test]
async fn a_running_attempt_past_its_deadline_fails_the_task_with_timeout_and_no_new_attempt() {
    // Attempts remain, yet none is started: the agent was at work and a second try would spend
    // the model budget again.
    let server = Server::start(&[("PJ_TASK_TIMEOUT_SECS", "2"), ("PJ_MAX_ATTEMPTS", "3")]).await;
    let task = server.create(ALICE, task_body("fake:hang")).await;
    server.wait_for(ALICE, &id(&task), "running", 30).await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 30).await;
    assert_eq!(done["error"]["code"], "timeout");
    assert_eq!(done["attempt"], 1, "no new attempt after task.started");
    let (_, execs) = server
        .call(
            "GET",
            &format!("/tasks/{}/executions", id(&task)),
            Some(ALICE),
            None,
        )
        .await;
    let execs = execs["executions"].as_array().unwrap().clone();
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(execs[0]["error"]["code"], "timeout");
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = server.outbox();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 1, "one email for the failed task");
}

#[tokio::test]
async fn a_runner_that_never_reports_before_its_deadline_gets_a_new_attempt() {
    let server = Server::start(&[("PJ_TASK_TIMEOUT_SECS", "2"), ("PJ_MAX_ATTEMPTS", "2")]).await;
    let task = server.create(ALICE, task_body("fake:mute")).await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 60).await;
    assert_eq!(done["error"]["code"], "timeout");
    assert_eq!(
        done["attempt"], 2,
        "the deadline before task.started is infrastructure"
    );
    let (_, execs) = server
        .call(
            "GET",
            &format!("/tasks/{}/executions", id(&task)),
            Some(ALICE),
            None,
        )
        .await;
    let execs = execs["executions"].as_array().unwrap().clone();
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert!(
        execs.iter().all(|e| e["error"]["code"] == "timeout"),
        "{execs:?}"
    );
}

#[tokio::test]
async fn cancelling_a_running_task_stops_it_and_its_later_events_change_nothing() {
    let server = Server::start(&[]).await;
    let task = server.create(ALICE, task_body("fake:slow=20")).await;
    let tid = id(&task);
    server.wait_for(ALICE, &tid, "running", 30).await;
    let (status, cancelled) = server
        .call("POST", &format!("/tasks/{tid}/cancel"), Some(ALICE), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["status"], "cancelled");
    let (status, _) = server
        .event(&tid, 1, json!({"type": "task.completed", "branch": "pj/x"}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = server
        .call("POST", &format!("/tasks/{tid}/cancel"), Some(ALICE), None)
        .await;
    assert_eq!(status, 409);
    // The stopped runner's exit is the last thing that could still act on the task; after
    // it, a task created later is dispatched, finished and mailed: the queues have worked
    // through anything the cancel could have caused.
    server.wait_for_log(&["runner ended", &tid], 30).await;
    let marker = server.later_marker(ALICE, 30).await;
    let after = server.task(ALICE, &tid).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(
        after["attempt"], 1,
        "a cancelled task starts no new attempt"
    );
    // The refused event is counted for the owner's webhook_activity report, which touches
    // updated_at; nothing else may differ.
    let unstamped = |mut task: Value| {
        task.as_object_mut().map(|t| t.remove("updated_at"));
        task
    };
    assert_eq!(
        unstamped(after),
        unstamped(cancelled),
        "nothing changed the task after its cancel"
    );
    let mails = server.outbox();
    assert_eq!(mails.len(), 1, "only the marker's email: {mails:?}");
    assert!(mails[0].1.contains(id(&marker).as_str()), "{}", mails[0].1);
}

#[tokio::test]
async fn execute_approve_and_retry_follow_the_contract() {
    let server = Server::start(&[]).await;
    let idle = server.create_idle(ALICE).await;
    // A task created after it runs to its end: had the idle one been dispatched, it would
    // have been claimed by now.
    server.later_marker(ALICE, 30).await;
    let still = server.task(ALICE, &id(&idle)).await;
    assert_eq!(still["status"], "queued");
    assert_eq!(
        still["updated_at"], idle["updated_at"],
        "not dispatched: {still}"
    );
    let (_, execs) = server
        .call(
            "GET",
            &format!("/tasks/{}/executions", id(&idle)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(execs["executions"], json!([]), "no attempt was started");
    let (status, _) = server
        .call(
            "POST",
            &format!("/tasks/{}/execute", id(&idle)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = server
        .call(
            "POST",
            &format!("/tasks/{}/execute", id(&idle)),
            Some(ALICE),
            None,
        )
        .await;
    assert!(
        status == 202 || status == 409,
        "repeating execute is safe: {status}"
    );
    server.wait_for(ALICE, &id(&idle), "completed", 30).await;
    let (status, _) = server
        .call(
            "POST",
            &format!("/tasks/{}/execute", id(&idle)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 409);

    // requires_review waits for approval; execute is refused meanwhile.
    let review = server.create(ALICE, json!({"repo_url": "https://github.com/example/repo", "prompt": "p", "requires_review": true})).await;
    assert_eq!(review["status"], "pending_review");
    let (status, _) = server
        .call(
            "POST",
            &format!("/tasks/{}/execute", id(&review)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, approved) = server
        .call(
            "POST",
            &format!("/tasks/{}/approve", id(&review)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(approved["status"], "queued");
    server.wait_for(ALICE, &id(&review), "completed", 30).await;

    // retry starts attempt 2 of a failed task.
    let failing = server.create(ALICE, task_body("fake:fail")).await;
    server.wait_for(ALICE, &id(&failing), "failed", 30).await;
    let (status, retried) = server
        .call(
            "POST",
            &format!("/tasks/{}/retry", id(&failing)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["error"], Value::Null);
    let done = server.wait_for(ALICE, &id(&failing), "failed", 30).await;
    assert_eq!(done["attempt"], 2);
    let (status, _) = server
        .call(
            "POST",
            &format!("/tasks/{}/retry", id(&idle)),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 409, "a completed task is not retried");
}

#[tokio::test]
async fn a_scheduled_task_runs_when_due() {
    let server = Server::start(&[]).await;
    let when = pj_core::time::rfc3339(chrono::Utc::now() + chrono::Duration::seconds(2));
    let task = server
        .create(ALICE, json!({"repo_url": "https://github.com/example/repo", "prompt": "p", "scheduled_for": when}))
        .await;
    assert_eq!(task["status"], "scheduled");
    server.wait_for(ALICE, &id(&task), "completed", 30).await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_task_and_refuses_another_body() {
    let server = Server::start(&[]).await;
    let send = |body: Value| {
        let req = server
            .client
            .post(server.url("/tasks"))
            .bearer_auth(ALICE)
            .header("Idempotency-Key", "create-42")
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (
                r.status().as_u16(),
                replayed,
                r.json::<Value>().await.unwrap(),
            )
        }
    };
    let body =
        json!({"repo_url": "https://github.com/example/repo", "prompt": "p", "execute": false});
    let (s1, r1, first) = send(body.clone()).await;
    let (s2, r2, second) = send(body).await;
    assert_eq!((s1, r1), (201, false));
    assert_eq!((s2, r2), (201, true));
    assert_eq!(first["id"], second["id"]);
    let (s3, _, err) =
        send(json!({"repo_url": "https://github.com/example/repo", "prompt": "other"})).await;
    assert_eq!(s3, 409);
    assert_eq!(err["error"]["code"], "conflict");
    // The same key is another user's own.
    let r = server.client.post(server.url("/tasks")).bearer_auth(BOB).header("Idempotency-Key", "create-42")
        .json(&json!({"repo_url": "https://github.com/example/repo", "prompt": "p", "execute": false})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

#[tokio::test]
async fn tasks_are_listed_newest_first_in_pages_and_filtered_by_status() {
    let server = Server::start(&[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let t = server.create(ALICE, json!({"repo_url": "https://github.com/example/repo", "prompt": format!("task {i}"), "execute": false})).await;
        ids.push(id(&t));
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for expected in [2, 2, 1] {
        let path = match &cursor {
            Some(c) => format!("/tasks?limit=2&cursor={c}"),
            None => "/tasks?limit=2".to_owned(),
        };
        let (status, page) = server.call("GET", &path, Some(ALICE), None).await;
        assert_eq!(status, 200);
        let tasks = page["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), expected);
        seen.extend(tasks.iter().map(id));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert!(cursor.is_none());
    assert_eq!(seen, ids);
    let (_, queued) = server
        .call("GET", "/tasks?status=queued", Some(ALICE), None)
        .await;
    assert_eq!(queued["tasks"].as_array().unwrap().len(), 5);
    let (_, done) = server
        .call("GET", "/tasks?status=completed", Some(ALICE), None)
        .await;
    assert!(done["tasks"].as_array().unwrap().is_empty());
    for bad in [
        "/tasks?limit=0",
        "/tasks?limit=101",
        "/tasks?status=bogus",
        "/tasks?cursor=%%%",
    ] {
        let (status, err) = server.call("GET", bad, Some(ALICE), None).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["error"]["code"], "validation_failed");
    }
}

#[tokio::test]
async fn another_users_task_is_not_found() {
    let server = Server::start(&[]).await;
    let task = server.create_idle(ALICE).await;
    let tid = id(&task);
    for (method, path) in [
        ("GET", format!("/tasks/{tid}")),
        ("POST", format!("/tasks/{tid}/execute")),
        ("POST", format!("/tasks/{tid}/cancel")),
        ("GET", format!("/tasks/{tid}/logs")),
        ("GET", format!("/tasks/{tid}/executions")),
        ("GET", "/tasks/tsk_doesnotexist".to_owned()),
        ("GET", "/tasks/not-an-id".to_owned()),
    ] {
        let (status, body) = server.call(method, &path, Some(BOB), None).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, list) = server.call("GET", "/tasks", Some(BOB), None).await;
    assert!(list["tasks"].as_array().unwrap().is_empty());
}

async fn read_sse(
    server: &Server,
    path: &str,
    last_event_id: Option<&str>,
) -> Vec<(String, Option<String>, Value)> {
    let mut req = server.client.get(server.url(path)).bearer_auth(ALICE);
    if let Some(last) = last_event_id {
        req = req.header("Last-Event-ID", last);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .expect("the stream ends after the terminal status")
        .unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut kind = None;
        let mut event_id = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                kind = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("id:") {
                event_id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if let Some(kind) = kind {
            events.push((
                kind,
                event_id,
                serde_json::from_str(&data).unwrap_or(Value::Null),
            ));
        }
    }
    events
}

#[tokio::test]
async fn the_log_stream_replays_from_last_event_id_and_ends_after_the_terminal_status() {
    let server = Server::start(&[]).await;
    let task = server
        .create(ALICE, task_body("fake:logs=4 fake:slow=1"))
        .await;
    let tid = id(&task);
    // Followed live from the start.
    let live = read_sse(&server, &format!("/tasks/{tid}/logs/stream"), None).await;
    let logs: Vec<&Value> = live
        .iter()
        .filter(|(k, _, _)| k == "log")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(logs.len(), 5, "{live:?}");
    let statuses: Vec<&str> = live
        .iter()
        .filter(|(k, _, _)| k == "status")
        .map(|(_, _, d)| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&"completed"));
    assert!(statuses.contains(&"running"), "{statuses:?}");
    assert_eq!(
        live.last().unwrap().0,
        "status",
        "the stream ends with the terminal status"
    );
    // Replayed after the second line.
    let second_id = live
        .iter()
        .filter(|(k, _, _)| k == "log")
        .nth(1)
        .unwrap()
        .1
        .clone()
        .unwrap();
    let replay = read_sse(
        &server,
        &format!("/tasks/{tid}/logs/stream"),
        Some(&second_id),
    )
    .await;
    let seqs: Vec<u64> = replay
        .iter()
        .filter(|(k, _, _)| k == "log")
        .map(|(_, _, d)| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
}

#[tokio::test]
async fn a_server_killed_while_a_task_runs_finishes_it_after_restart_without_doubling() {
    let mut server = Server::start(&[]).await;
    let task = server
        .create(ALICE, task_body("fake:slow=4 fake:logs=3"))
        .await;
    let tid = id(&task);
    server.wait_for(ALICE, &tid, "running", 30).await;
    server.kill_9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart().await;
    let done = server.wait_for(ALICE, &tid, "completed", 60).await;
    assert_eq!(
        done["attempt"], 1,
        "the runner that outlived the server finished its attempt"
    );
    let lines = server.logs(ALICE, &tid).await;
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
    server.wait_for_mails(1, 30).await;
    // A task created later is finished and mailed: a second email of the first would have
    // gone out by then.
    let marker = server.later_marker(ALICE, 30).await;
    let mails = server.outbox();
    let about = |task: &str| mails.iter().filter(|(_, eml)| eml.contains(task)).count();
    assert_eq!(about(&tid), 1, "one email for the task: {mails:?}");
    assert_eq!(about(&id(&marker)), 1, "{mails:?}");
    assert_eq!(mails.len(), 2, "{mails:?}");
}

#[tokio::test]
async fn bad_requests_get_the_json_error_shape() {
    let server = Server::start(&[
        ("PJ_RATE_LIMIT_BURST", "3"),
        ("PJ_RATE_LIMIT_PER_MINUTE", "1"),
    ])
    .await;
    let post = |body: &'static str, ct: &'static str| {
        server
            .client
            .post(server.url("/tasks"))
            .bearer_auth(ALICE)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let check = |r: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].is_string());
        v
    };
    check(
        post("{not json", "application/json").await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    let v = check(
        post("repo_url=x", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(v["error"]["field"], "Content-Type");
    let v = check(
        post(r#"{"prompt": "x"}"#, "application/json")
            .await
            .unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(v["error"]["field"], "repo_url");
    // An oversized body is refused from its Content-Length, before it is read: the request goes
    // out by hand, its head only, so the server's early answer cannot meet a half-sent body (a
    // client still writing then sees a broken pipe instead of the answer).
    let (status, body) = oversized_post(&server.listen, 2 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    let v: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
    let r = server
        .client
        .get(server.url("/nowhere"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    check(r, 404, "not_found").await;
    let r = server
        .client
        .delete(server.url("/tasks"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    check(r, 404, "not_found").await;
    let r = server
        .client
        .get(server.url("/tasks"))
        .send()
        .await
        .unwrap();
    check(r, 401, "unauthorized").await;
    let r = server
        .client
        .get(server.url("/tasks"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    check(r, 401, "unauthorized").await;
    let r = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The rate limit counts creations per user, valid or not.
    let mut limited = None;
    for _ in 0..5 {
        let r = server
            .client
            .post(server.url("/tasks"))
            .bearer_auth(ALICE)
            .json(&json!({"repo_url": "https://github.com/o/r", "prompt": "p", "execute": false}))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the burst runs out");
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    check(r, 429, "rate_limited").await;
    let r = server
        .client
        .post(server.url("/tasks"))
        .bearer_auth(BOB)
        .json(&json!({"repo_url": "https://github.com/o/r", "prompt": "p", "execute": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "another user has their own budget"
    );
}

#[tokio::test]
async fn runner_callbacks_are_verified_deduplicated_and_redacted() {
    let server = Server::start(&[]).await;
    let task = server
        .create(ALICE, task_body("fake:leak fake:logs=1"))
        .await;
    let tid = id(&task);
    server.wait_for(ALICE, &tid, "completed", 30).await;
    let lines = server.logs(ALICE, &tid).await;
    let leaked = lines
        .iter()
        .find(|l| l["text"].as_str().unwrap().contains("token"))
        .unwrap();
    assert_eq!(leaked["text"], "using token ghp_[REDACTED]");

    // A forged signature, a stale one and none at all are refused.
    let body = json!({"type": "task.progress", "task_id": tid, "attempt": 1});
    let bytes = serde_json::to_vec(&body).unwrap();
    let now = chrono::Utc::now().timestamp();
    for (sig, ts) in [("v1,Zm9yZ2Vk", now), ("", now)] {
        let r = server
            .client
            .post(server.url("/webhooks/runner"))
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }

    // A log batch delivered twice stores its lines once; a repeated webhook-id changes nothing.
    let batch = json!({"task_id": tid, "attempt": 1, "lines": [
        {"seq": 100, "ts": "2026-01-01T00:00:00Z", "stream": "stderr", "text": "late line"}]});
    let (s1, a1) = server
        .runner_post("/webhooks/runner/logs", &tid, 1, &batch, Some("msg_batch"))
        .await;
    let (s2, a2) = server
        .runner_post("/webhooks/runner/logs", &tid, 1, &batch, Some("msg_batch"))
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a1["stored"], 1);
    assert_eq!(a2["stored"], 0);
    // An event for a finished task changes nothing.
    let (status, _) = server
        .runner_post(
            "/webhooks/runner",
            &tid,
            1,
            &json!({"type": "task.progress", "task_id": tid, "attempt": 1}),
            None,
        )
        .await;
    assert_eq!(status, 409);

    // A repeated webhook-id is answered 200 with no second effect.
    let running = server.create(ALICE, task_body("fake:slow=30")).await;
    let rid = id(&running);
    server.wait_for(ALICE, &rid, "running", 30).await;
    let completed =
        json!({"type": "task.completed", "task_id": rid, "attempt": 1, "branch": "pj/first"});
    let (status, ack) = server
        .runner_post("/webhooks/runner", &rid, 1, &completed, Some("msg_done"))
        .await;
    assert_eq!((status, ack["status"].as_str()), (200, Some("applied")));
    let (status, ack) = server
        .runner_post("/webhooks/runner", &rid, 1, &completed, Some("msg_done"))
        .await;
    assert_eq!((status, ack["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(server.task(ALICE, &rid).await["branch"], "pj/first");

    // A key signs for its own attempt only.
    let (status, _) = server
        .runner_post(
            "/webhooks/runner",
            &tid,
            2,
            &json!({"type": "task.started", "task_id": tid, "attempt": 1}),
            None,
        )
        .await;
    assert_eq!(status, 401);

    // Over 1,000 lines is too large.
    let many: Vec<Value> = (0..1001).map(|i| json!({"seq": 1000 + i, "ts": "2026-01-01T00:00:00Z", "stream": "stdout", "text": "x"})).collect();
    let (status, err) = server
        .runner_post(
            "/webhooks/runner/logs",
            &tid,
            1,
            &json!({"task_id": tid, "attempt": 1, "lines": many}),
            None,
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(err["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn a_first_start_with_no_environment_makes_its_secrets_and_keeps_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join(".pj");
    let mut first = Server::spawn(&data_dir, "127.0.0.1:0", vec![], true).await;
    use std::os::unix::fs::PermissionsExt;
    for file in ["webhook-secret", "dev-token"] {
        let mode = std::fs::metadata(data_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let token = std::fs::read_to_string(data_dir.join("dev-token"))
        .unwrap()
        .trim()
        .to_owned();
    let (status, _) = first.call("GET", "/tasks", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        first.terminate(),
        Some(0),
        "SIGTERM stops the server cleanly"
    );
    let second = Server::spawn(&data_dir, "127.0.0.1:0", vec![], true).await;
    let (status, _) = second.call("GET", "/tasks", Some(&token), None).await;
    assert_eq!(status, 200, "the token survives a restart");
}

#[tokio::test]
async fn the_dev_token_is_printed_on_the_first_start_only_and_later_starts_say_where_it_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join(".pj");
    let kept_in = data_dir.join("dev-token");

    let mut first = Server::spawn(&data_dir, "127.0.0.1:0", vec![], true).await;
    let printed = first.banner().await;
    let token = std::fs::read_to_string(&kept_in).unwrap().trim().to_owned();
    assert!(
        printed.contains(&token),
        "the start that made the token shows it: {printed}"
    );
    assert!(
        printed.contains(&format!(
            "web page: {}/ (sign in with the token)",
            first.base
        )),
        "the page's address: {printed}"
    );
    assert_eq!(first.terminate(), Some(0));

    let second = Server::spawn(&data_dir, "127.0.0.1:0", vec![], true).await;
    let printed = second.banner().await;
    assert!(
        !printed.contains(&token),
        "a later start must not print the token: {printed}"
    );
    assert!(
        printed.contains(&kept_in.display().to_string()),
        "a later start says where the token is kept: {printed}"
    );
    let server_log = std::fs::read_to_string(data_dir.with_extension("server.log")).unwrap();
    assert!(!server_log.contains(&token), "nor log it");
    let (status, _) = second.call("GET", "/tasks", Some(&token), None).await;
    assert_eq!(status, 200, "the kept token still works");
}

#[tokio::test]
async fn a_runner_command_that_does_not_exist_fails_the_task_at_once_saying_what_to_fix() {
    let server = Server::start(&[("PJ_RUNNER_CMD", "/nonexistent/pj-runner run")]).await;
    let task = server.create(ALICE, task_body("anything")).await;
    let done = server.wait_for(ALICE, &id(&task), "failed", 30).await;
    assert_eq!(done["error"]["code"], "dispatch_failed");
    assert_eq!(
        done["attempt"], 1,
        "a failure that would repeat starts no new attempt"
    );
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PJ_RUNNER_CMD"),
        "{done}"
    );
}

/// `POST /tasks` announcing a body of `length` bytes, of which it sends none; the answer's
/// status and body.
async fn oversized_post(listen: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen)
        .await
        .expect("connect");
    let head = format!(
        "POST /tasks HTTP/1.1\r\nHost: {listen}\r\nAuthorization: Bearer {ALICE}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("write the head");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers without waiting for the body")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
