//! What the agent did, as the final event's `metadata`; the replies themselves stay out of the
//! log.

use pj_runner::agent::Finish;
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::support::{GITHUB_TOKEN, World, anthropic_answer, edit_reply, openai_answer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_change_reports_its_rounds_lines_patch_size_and_the_ladder_step_of_each_hunk() {
    let world = World::new().await;
    let diff = "```diff\n--- a/src/greet.rs\n+++ b/src/greet.rs\n@@ -1,3 +1,3 @@\n\
                 pub fn greet() -> &'static str {\n-    \"hello\"\n+    \"hello, world\"\n }\n```\n";
    world
        .openai_answers([
            openai_answer(&edit_reply("goodbye", "hello, world")),
            openai_answer(diff),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed");
    let m = &done["metadata"];
    assert_eq!(m["rounds"], 2, "{m}");
    assert_eq!(m["first_round_applied"], false);
    assert_eq!(m["files_changed"], 1);
    assert_eq!(m["lines_added"], 1);
    assert_eq!(m["lines_removed"], 1);
    let bytes = m["patch_bytes"].as_u64().unwrap();
    assert!(
        (150..400).contains(&bytes),
        "a one-line change's git diff: {bytes}"
    );
    assert_eq!(
        m["hunks"],
        json!([{"file": "src/greet.rs", "round": 2, "status": "exact", "step": "exact_at_line"}])
    );
    assert!(m.get("fallback").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_stay_out_of_the_log_which_has_one_line_per_round() {
    let world = World::new().await;
    world
        .openai_answers([openai_answer(&edit_reply("goodbye", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "patch_failed");
    let m = &done["metadata"];
    assert_eq!(m["rounds"], 3);
    assert_eq!(m["first_round_applied"], false);
    assert_eq!(m["files_changed"], 0);
    assert_eq!(m["hunks"], json!([]));

    let log = world.log_texts();
    let reply_lines: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("Plan: change the greeting") || l.contains(">>>>>>> REPLACE"))
        .collect();
    assert!(
        reply_lines.is_empty(),
        "a reply reached the log: {reply_lines:?}"
    );
    assert!(!ran.stdout.contains("Plan: change the greeting"));
    let rounds: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("round ") && l.contains("openai/gpt-4o-mini replied with"))
        .collect();
    assert_eq!(rounds.len(), 3, "{log:?}");
    assert!(
        rounds[0].contains("1000 tokens in, 100 out"),
        "{}",
        rounds[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_is_in_the_metadata() {
    let mut world = World::new().await;
    world.set("PJ_LLM_MAX_ATTEMPTS", "1");
    world
        .openai_answers([ResponseTemplate::new(500).set_body_json(json!({
            "error": {"message": "internal error", "type": "server_error"}
        }))])
        .await;
    world
        .anthropic_answers([anthropic_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let m = &world.final_event()["metadata"];
    assert_eq!(m["fallback"], "anthropic/claude-sonnet-4-5");
    assert_eq!(m["first_round_applied"], true);
    assert_eq!(m["hunks"][0]["step"], "search_exact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_asked_the_model_sends_no_metadata() {
    let mut world = World::new().await;
    world.set("BASE_BRANCH", "does-not-exist");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "clone_failed");
    assert!(done.get("metadata").is_none(), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reply_is_kept_as_an_artifact_of_the_attempt_named_by_its_round() {
    let world = World::new().await;
    let diff = "```diff\n--- a/src/greet.rs\n+++ b/src/greet.rs\n@@ -1,3 +1,3 @@\n\
                 pub fn greet() -> &'static str {\n-    \"hello\"\n+    \"hello, world\"\n }\n```\n";
    world
        .openai_answers([
            openai_answer(&edit_reply("goodbye", "hello, world")),
            openai_answer(diff),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
    let artifacts = world.artifacts();
    let names: Vec<&str> = artifacts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a1-reply-1.md", "a1-reply-2.md"]);
    assert_eq!(artifacts[0].1, edit_reply("goodbye", "hello, world"));
    assert_eq!(artifacts[1].1, diff);
    let log = world.log_texts();
    assert!(
        log.iter()
            .any(|l| l == "the reply is kept as a1-reply-2.md"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_model_repeats_is_scrubbed_from_the_kept_reply() {
    let world = World::new().await;
    let leaky = format!(
        "{}\nThe token was {GITHUB_TOKEN}.\n",
        edit_reply("hello", "hello, world")
    );
    world.openai_answers([openai_answer(&leaky)]).await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let artifacts = world.artifacts();
    assert_eq!(artifacts.len(), 1);
    for secret in world.secrets() {
        assert!(!artifacts[0].1.contains(&secret), "{secret} kept");
    }
    assert!(artifacts[0].1.contains("The token was"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_the_reply_costs_the_record_not_the_change() {
    let world = World::new().await;
    world.answers.lock().unwrap().refuse_artifacts = true;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
    assert!(world.artifacts().is_empty());
    let log = world.log_texts();
    assert!(
        log.iter()
            .any(|l| l.starts_with("the reply could not be kept as a1-reply-1.md: HTTP 400")),
        "{log:?}"
    );
}
