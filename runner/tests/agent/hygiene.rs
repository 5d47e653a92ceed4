//! What leaves the process: no secret anywhere, log lines in order, callbacks retried.

use pj_runner::agent::Finish;
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::support::{BRANCH, GITHUB_TOKEN, OPENAI_KEY, World, edit_reply, openai_answer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_stdout_logs_callbacks_commits_or_the_pull_request() {
    let mut world = World::new().await;
    // Secrets where they could leak: in the task text (the PR body quotes it), in an API error
    // that echoes the key, and in the model's reply (the log keeps it).
    world.set(
        "AGENT_PROMPT",
        format!("Make greet say hello, world\n\nDo not print {GITHUB_TOKEN} or {OPENAI_KEY}."),
    );
    let reply = format!(
        "I will not use {GITHUB_TOKEN}.\n\n{}",
        edit_reply("hello", "hello, world")
    );
    world
        .openai_answers([
            ResponseTemplate::new(503).set_body_json(json!({
                "error": {"message": format!("Overloaded for key {OPENAI_KEY}"), "type": "server_error"}
            })),
            openai_answer(&reply),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let prs = World::bodies(&world.github, "POST", "/repos/o/r/pulls").await;
    let received = world.received.lock().unwrap();
    let commit = world.git(&world.bare, &["log", "-1", "--format=%B", BRANCH]);
    let mut places: Vec<(String, String)> = vec![
        ("stdout".into(), ran.stdout.clone()),
        ("the commit message".into(), commit),
    ];
    places.extend(
        received
            .bodies
            .iter()
            .map(|b| ("a callback".into(), b.clone())),
    );
    places.extend(
        prs.iter()
            .map(|p| ("the pull request".into(), p.to_string())),
    );
    for secret in world.secrets() {
        for (place, text) in &places {
            assert!(!text.contains(&secret), "a secret reached {place}: {text}");
        }
    }
    assert!(
        ran.stdout.contains("[REDACTED]"),
        "the reply's token was shown redacted"
    );
    assert!(
        prs[0]["body"].as_str().unwrap().contains("[REDACTED]"),
        "the task text was scrubbed in the PR body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_error_that_echoes_the_key_is_scrubbed_in_the_failure() {
    let world = World::new().await;
    world
        .openai_answers([ResponseTemplate::new(401).set_body_json(json!({
            "error": {
                "message": format!("Incorrect API key provided: {OPENAI_KEY}."),
                "type": "invalid_request_error",
                "code": "invalid_api_key"
            }
        }))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "llm_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("Incorrect API key provided"), "{message}");
    assert!(!message.contains(OPENAI_KEY), "{message}");
    assert!(!ran.stdout.contains(OPENAI_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_are_numbered_from_zero_without_gaps_and_match_stdout() {
    let world = World::new().await;
    // The first batch fails, so its lines reach the server only on a retry.
    world.answers.lock().unwrap().fail_log_batches = 1;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let mut lines = world.received.lock().unwrap().lines.clone();
    lines.sort_by_key(|l| l["seq"].as_u64());
    lines.dedup_by_key(|l| l["seq"].as_u64());
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected);
    assert!(seqs.len() > 10, "the run logs its steps");
    for line in &lines {
        assert!(matches!(
            line["stream"].as_str(),
            Some("stdout" | "stderr" | "system")
        ));
        let ts = line["ts"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    }
    let shipped: Vec<String> = world.log_texts();
    let printed: Vec<&str> = ran.stdout.lines().collect();
    for text in &shipped {
        assert!(printed.contains(&text.as_str()), "not on stdout: {text}");
    }
    // The final event comes after the last line was shipped.
    let reporting = shipped
        .iter()
        .any(|l| l.starts_with("reporting task.completed"));
    assert!(
        reporting,
        "the report line was flushed before the final event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_fails_is_retried_under_the_same_webhook_id() {
    let world = World::new().await;
    world.answers.lock().unwrap().fail_events = 2;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let events = world.received.lock().unwrap().events.clone();
    let started: Vec<&String> = events
        .iter()
        .filter(|(_, e)| e["type"] == "task.started")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(started.len(), 3, "two failures, then delivered");
    assert!(started.iter().all(|id| *id == started[0]), "{started:?}");
    let ids: std::collections::HashSet<&String> = events.iter().map(|(id, _)| id).collect();
    assert!(ids.len() > 1, "each delivery has its own id");
    assert_eq!(world.final_event()["type"], "task.completed");
}
