//! Provider fallback: when the task's provider keeps failing and the other provider has a key,
//! the other provider's default model answers, for the rest of the attempt.

use pj_runner::agent::Finish;
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::support::{
    ANTHROPIC_KEY, BRANCH, OPENAI_KEY, World, anthropic_answer, edit_reply, openai_answer,
};

fn openai_overloaded() -> ResponseTemplate {
    ResponseTemplate::new(503).set_body_json(json!({
        "error": {"message": "The server is overloaded or not ready yet.", "type": "server_error"}
    }))
}

fn anthropic_overloaded() -> ResponseTemplate {
    ResponseTemplate::new(529).set_body_json(json!({
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"}
    }))
}

/// A world whose model calls are tried twice before they count as failing.
async fn world() -> World {
    let mut world = World::new().await;
    world.set("PJ_LLM_MAX_ATTEMPTS", "2");
    world
}

async fn requests(world: &World, route: &str) -> Vec<serde_json::Value> {
    World::bodies(&world.llm, "POST", route).await
}

fn lines_with(world: &World, needle: &str) -> Vec<String> {
    world
        .log_texts()
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_openai_keeps_failing_anthropic_answers_for_the_rest_of_the_attempt_and_the_log_and_usage_say_so()
 {
    let world = world().await;
    world.openai_answers([openai_overloaded()]).await;
    world
        .anthropic_answers([
            anthropic_answer(&edit_reply("goodbye", "hello, world")),
            anthropic_answer(&edit_reply("hello", "hello, world")),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed", "{done}");
    assert_eq!(
        requests(&world, "/v1/chat/completions").await.len(),
        2,
        "OpenAI was asked as often as PJ_LLM_MAX_ATTEMPTS says, and not again"
    );
    let asked = requests(&world, "/v1/messages").await;
    assert_eq!(asked.len(), 2, "the second round stayed on the fallback");
    assert_eq!(asked[0]["model"], "claude-sonnet-4-5");
    let sent = world.llm.received_requests().await.unwrap_or_default();
    let anthropic = sent
        .iter()
        .find(|r| r.url.path() == "/v1/messages")
        .unwrap();
    assert_eq!(
        anthropic
            .headers
            .get("x-api-key")
            .unwrap()
            .to_str()
            .unwrap(),
        ANTHROPIC_KEY
    );

    let said = lines_with(&world, "instead for the rest of this attempt");
    assert_eq!(said.len(), 1, "one line says so: {said:?}");
    assert!(said[0].contains("openai/gpt-4o-mini"), "{}", said[0]);
    assert!(said[0].contains("503"), "{}", said[0]);
    assert!(
        said[0].contains("anthropic/claude-sonnet-4-5"),
        "{}",
        said[0]
    );

    // Two Anthropic replies of 2,000 tokens in and 200 out at $3 and $15 per million.
    assert_eq!(done["usage"]["model"], "claude-sonnet-4-5");
    assert_eq!(done["usage"]["input_tokens"], 4000);
    assert_eq!(done["usage"]["cost_usd"], 0.018);
    let prs = World::bodies(&world.github, "POST", "/repos/o/r/pulls").await;
    let body = prs[0]["body"].as_str().unwrap();
    assert!(
        body.contains("anthropic/claude-sonnet-4-5 (fallback: openai/gpt-4o-mini failed)"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_anthropic_keeps_failing_openai_answers_with_its_default_model() {
    let mut world = world().await;
    world.set("MODEL_PROVIDER", "anthropic");
    world.set("MODEL", "claude-sonnet-4-20250514");
    world.anthropic_answers([anthropic_overloaded()]).await;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed", "{done}");
    let asked = requests(&world, "/v1/chat/completions").await;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["model"], "gpt-4.1");
    let sent = world.llm.received_requests().await.unwrap_or_default();
    let openai = sent
        .iter()
        .find(|r| r.url.path() == "/v1/chat/completions")
        .unwrap();
    assert_eq!(
        openai
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {OPENAI_KEY}")
    );
    // gpt-4.1: 1,000 tokens in at $2 and 100 out at $8 per million.
    assert_eq!(done["usage"]["model"], "gpt-4.1");
    assert_eq!(done["usage"]["cost_usd"], 0.0028);
    assert_eq!(lines_with(&world, "asking openai/gpt-4.1 instead").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_for_the_other_provider_the_failure_stands() {
    let mut world = world().await;
    world.unset("ANTHROPIC_API_KEY");
    world.openai_answers([openai_overloaded()]).await;
    world
        .anthropic_answers([anthropic_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.failed");
    assert_eq!(done["error"]["code"], "llm_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("503"), "{message}");
    assert!(requests(&world, "/v1/messages").await.is_empty());
    assert!(lines_with(&world, "instead for the rest").is_empty());
    assert!(!world.has_branch(BRANCH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_does_not_fall_back() {
    let world = world().await;
    world
        .openai_answers([ResponseTemplate::new(401).set_body_json(json!({
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "code": "invalid_api_key"
            }
        }))])
        .await;
    world
        .anthropic_answers([anthropic_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "llm_failed");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key")
    );
    assert_eq!(requests(&world, "/v1/chat/completions").await.len(), 1);
    assert!(requests(&world, "/v1/messages").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_may_turn_the_fallback_off() {
    let mut world = world().await;
    world.set("PJ_LLM_FALLBACK", "false");
    world.openai_answers([openai_overloaded()]).await;
    world
        .anthropic_answers([anthropic_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["error"]["code"], "llm_failed");
    assert!(requests(&world, "/v1/messages").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_fallback_fails_too_the_error_names_both() {
    let world = world().await;
    world.openai_answers([openai_overloaded()]).await;
    world.anthropic_answers([anthropic_overloaded()]).await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "llm_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("503"), "{message}");
    assert!(
        message.contains("the fallback anthropic/claude-sonnet-4-5 failed too"),
        "{message}"
    );
    assert!(message.contains("Overloaded"), "{message}");
}
