//! Runs that meet trouble: busy or silent models, refused pushes, the deadline, cancellation, a
//! broken environment.

use std::time::{Duration, Instant};

use chrono::Utc;
use pj_runner::agent::Finish;
use wiremock::ResponseTemplate;

use crate::support::{BRANCH, World, edit_reply, openai_answer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_model_is_asked_again_after_retry_after() {
    let world = World::new().await;
    world
        .openai_answers([
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(serde_json::json!({
                    "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
                })),
            openai_answer(&edit_reply("hello", "hello, world")),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let started = Instant::now();
    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after was honoured"
    );
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    assert_eq!(requests.len(), 2);
    assert_eq!(world.final_event()["type"], "task.completed");
    assert!(
        world.log_texts().iter().any(|l| l.contains("429")),
        "the retry is in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_does_not_answer_in_time_fails_with_llm_failed() {
    let mut world = World::new().await;
    world.set("PJ_LLM_TIMEOUT_SECS", "1");
    // No other provider to fall back on (fallback.rs has those runs).
    world.unset("ANTHROPIC_API_KEY");
    world
        .openai_answers([
            openai_answer(&edit_reply("hello", "hello, world")).set_delay(Duration::from_secs(5))
        ])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.failed");
    assert_eq!(done["error"]["code"], "llm_failed");
    assert!(done["error"]["message"].as_str().unwrap().contains("1 s"));
    assert!(!world.has_branch(BRANCH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_api_that_refuses_the_request_fails_at_once_with_llm_failed() {
    let world = World::new().await;
    world
        .openai_answers([ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": {"message": "The model `gpt-4o-mini` does not exist", "type": "invalid_request_error"}
        }))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "llm_failed");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    assert_eq!(requests.len(), 1, "a 400 is not tried again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_push_fails_with_push_failed() {
    let world = World::new().await;
    world.refuse_pushes();
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.failed");
    assert_eq!(done["error"]["code"], "push_failed");
    assert!(
        world
            .log_texts()
            .iter()
            .any(|l| l.contains("push refused by policy")),
        "git's stderr is in the log"
    );
    assert!(
        world
            .github
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_github_refuses_fails_with_pr_failed_after_the_push() {
    let world = World::new().await;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&world.github)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
        })))
        .mount(&world.github)
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "pr_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("Resource not accessible"), "{message}");
    assert!(
        message.contains(BRANCH),
        "the message names the pushed branch: {message}"
    );
    assert!(world.has_branch(BRANCH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_the_run_with_timeout() {
    let mut world = World::new().await;
    world.set(
        "TASK_DEADLINE",
        (Utc::now() + chrono::Duration::seconds(5)).to_rfc3339(),
    );
    world.set("PJ_DEADLINE_MARGIN_SECS", "2");
    world.set("PJ_LLM_TIMEOUT_SECS", "60");
    world
        .openai_answers([
            openai_answer(&edit_reply("hello", "hello, world")).set_delay(Duration::from_secs(30))
        ])
        .await;

    let started = Instant::now();
    let ran = world.run().await;

    assert!(
        started.elapsed() < Duration::from_secs(6),
        "stopped before the deadline"
    );
    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.failed");
    assert_eq!(done["error"]["code"], "timeout");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("asking the model")
    );
    assert!(!world.has_branch(BRANCH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_attempt_stops_quietly_without_pushing() {
    let world = World::new().await;
    world.answers.lock().unwrap().conflict_on = Some("task.progress");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Superseded, "stdout:\n{}", ran.stdout);
    let types = world.event_types();
    assert!(
        !types
            .iter()
            .any(|t| t == "task.completed" || t == "task.failed"),
        "no final event after a 409: {types:?}"
    );
    assert!(!world.has_branch(BRANCH));
    assert!(
        world
            .llm
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_variable_is_named_and_reported_as_task_failed() {
    let mut world = World::new().await;
    world.unset("TARGET_REPO");
    world.set("PJ_CONTEXT_TOKENS", "many");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.failed");
    assert_eq!(done["error"]["code"], "invalid_environment");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("TARGET_REPO: is not set"), "{message}");
    assert!(message.contains("PJ_CONTEXT_TOKENS"), "{message}");
    assert!(ran.stdout.contains("TARGET_REPO"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_secret_nothing_is_sent_and_the_exit_says_so() {
    let mut world = World::new().await;
    world.unset("WEBHOOK_SECRET");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::InvalidEnvironment);
    assert!(
        ran.stdout.contains("WEBHOOK_SECRET: is not set"),
        "{}",
        ran.stdout
    );
    assert!(world.received.lock().unwrap().bodies.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_base_branch_fails_with_clone_failed() {
    let mut world = World::new().await;
    world.set("BASE_BRANCH", "does-not-exist");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "clone_failed");
}
