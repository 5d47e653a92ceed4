//! Runs that end with a change delivered.

use pj_runner::agent::Finish;
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, header_exists, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{
    BRANCH, GITHUB_TOKEN, OPENAI_KEY, World, anthropic_answer, edit_reply, openai_answer,
    pull_request,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_task_becomes_a_pushed_branch_and_a_pull_request() {
    let world = World::new().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header(
            "authorization",
            format!("Bearer {OPENAI_KEY}").as_str(),
        ))
        .and(body_partial_json(
            json!({"model": "gpt-4o-mini", "temperature": 0.0}),
        ))
        .respond_with(openai_answer(&edit_reply("hello", "hello, world")))
        .expect(1)
        .mount(&world.llm)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("head", format!("o:{BRANCH}").as_str()))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&world.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .and(header(
            "authorization",
            format!("Bearer {GITHUB_TOKEN}").as_str(),
        ))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header_exists("user-agent"))
        .and(body_partial_json(json!({
            "title": "Make greet say hello, world",
            "head": BRANCH,
            "base": "main",
            "draft": false
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(pull_request(7, false)))
        .expect(1)
        .mount(&world.github)
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let greet = world
        .file_on(BRANCH, "src/greet.rs")
        .expect("the branch was pushed");
    assert!(greet.contains("\"hello, world\""), "{greet}");
    assert_eq!(
        world.file_on("main", "src/greet.rs").as_deref(),
        Some(crate::support::GREET),
        "the base branch is untouched"
    );
    let types = world.event_types();
    assert_eq!(types.first().map(String::as_str), Some("task.started"));
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed");
    assert_eq!(done["pr_url"], "https://github.com/o/r/pull/7");
    assert_eq!(done["branch"], BRANCH);
    assert_eq!(done["usage"]["input_tokens"], 1000);
    assert_eq!(done["usage"]["output_tokens"], 100);
    assert_eq!(done["usage"]["model"], "gpt-4o-mini");
    // gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
    assert_eq!(done["usage"]["cost_usd"], 0.00021);

    let prs = World::bodies(&world.github, "POST", "/repos/o/r/pulls").await;
    let body = prs[0]["body"].as_str().unwrap();
    assert!(
        body.contains("The greeting in src/greet.rs is too short."),
        "{body}"
    );
    assert!(body.contains("openai/gpt-4o-mini"), "{body}");
    assert!(body.contains("1000 in, 100 out"), "{body}");
    assert!(body.contains("$0.0002"), "{body}");
    assert!(body.contains(crate::support::TASK_ID), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_task_becomes_a_pushed_branch_and_a_pull_request() {
    let mut world = World::new().await;
    world.set("MODEL_PROVIDER", "anthropic");
    world.set("MODEL", "claude-sonnet-4-20250514");
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", crate::support::ANTHROPIC_KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 8192,
            "temperature": 0.0,
            "messages": [{"role": "user"}]
        })))
        .respond_with(anthropic_answer(&edit_reply("hello", "hello, world")))
        .expect(1)
        .mount(&world.llm)
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let greet = world.file_on(BRANCH, "src/greet.rs").unwrap();
    assert!(greet.contains("\"hello, world\""));
    let requests = World::bodies(&world.llm, "POST", "/v1/messages").await;
    let system = requests[0]["system"].as_str().unwrap();
    assert!(
        system.contains("<<<<<<< SEARCH"),
        "the system prompt is sent"
    );
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed");
    assert_eq!(done["pr_url"], "https://github.com/o/r/pull/7");
    assert_eq!(done["usage"]["input_tokens"], 2000);
    assert_eq!(done["usage"]["output_tokens"], 200);
    // claude-sonnet-4: $3 in, $15 out per million tokens.
    assert_eq!(done["usage"]["cost_usd"], 0.009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_pull_request_for_the_branch_is_updated_not_duplicated() {
    let world = World::new().await;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .and(query_param("head", format!("o:{BRANCH}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([pull_request(3, false)])))
        .mount(&world.github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/pulls/3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull_request(3, false)))
        .expect(1)
        .mount(&world.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(ResponseTemplate::new(201).set_body_json(pull_request(9, false)))
        .expect(0)
        .mount(&world.github)
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(
        world.final_event()["pr_url"],
        "https://github.com/o/r/pull/3"
    );
    let patch = World::bodies(&world.github, "PATCH", "/repos/o/r/pulls/3").await;
    assert!(patch[0]["body"].as_str().unwrap().contains("hello, world"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_that_github_says_already_exists_is_found_and_updated() {
    let world = World::new().await;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    // The first look finds nothing (a race with another run); the second finds #5.
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(crate::support::InTurn::new([
            ResponseTemplate::new(200).set_body_json(json!([])),
            ResponseTemplate::new(200).set_body_json(json!([pull_request(5, false)])),
        ]))
        .mount(&world.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom",
                        "message": format!("A pull request already exists for o:{BRANCH}.")}],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            "status": "422"
        })))
        .expect(1)
        .mount(&world.github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/o/r/pulls/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull_request(5, false)))
        .expect(1)
        .mount(&world.github)
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(
        world.final_event()["pr_url"],
        "https://github.com/o/r/pull/5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_continues_from_the_branch_an_earlier_attempt_pushed() {
    let world = World::new().await;
    let earlier = world.push_earlier_attempt("NOTES.md", "from the first attempt\n");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(
        world.file_on(BRANCH, "NOTES.md").as_deref(),
        Some("from the first attempt\n"),
        "the earlier attempt's work stays"
    );
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, world")
    );
    let parent = world.git(&world.bare, &["rev-parse", &format!("{BRANCH}~1")]);
    assert_eq!(
        parent.trim(),
        earlier,
        "the new commit sits on the earlier one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_is_not_github_gets_the_branch_without_a_pull_request() {
    let mut world = World::new().await;
    let url = format!("file://{}", world.bare.display());
    world.set("TARGET_REPO", url);
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed");
    assert_eq!(done["branch"], BRANCH);
    assert!(done.get("pr_url").is_none(), "{done}");
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, world")
    );
    let calls = world.github.received_requests().await.unwrap_or_default();
    assert!(calls.is_empty(), "GitHub was not called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_openai_compatible_server_needs_no_api_key() {
    let mut world = World::new().await;
    world.unset("OPENAI_API_KEY");
    world.set("MODEL", "qwen2.5-coder:7b");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let calls = world.llm.received_requests().await.unwrap_or_default();
    assert!(calls[0].headers.get("authorization").is_none());
    let done = world.final_event();
    assert_eq!(done["usage"]["input_tokens"], 1000);
    assert!(
        done["usage"]["cost_usd"].is_null(),
        "an unknown model has no price"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unified_diff_in_a_fenced_block_is_applied_too() {
    let world = World::new().await;
    let reply = "Plan: change the greeting and add a note.\n\n```diff\n\
        --- a/src/greet.rs\n+++ b/src/greet.rs\n@@ -1,3 +1,3 @@\n \
        pub fn greet() -> &'static str {\n-    \"hello\"\n+    \"hello, world\"\n }\n\
        --- /dev/null\n+++ b/NOTES.md\n@@ -0,0 +1 @@\n+The greeting now names the world.\n```\n";
    world.openai_answers([openai_answer(reply)]).await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, world")
    );
    assert_eq!(
        world.file_on(BRANCH, "NOTES.md").as_deref(),
        Some("The greeting now names the world.\n"),
        "a new file is committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_file_and_a_100000_character_analysis_file_reach_the_model_whole() {
    let mut world = World::new().await;
    // 100,000 characters of two bytes each: over Linux's 128 KiB limit for one variable.
    let analysis = format!("{}end of analysis", "ä".repeat(100_000 - 15));
    let prompt_file = world.root.path().join("prompt.txt");
    let analysis_file = world.root.path().join("analysis.txt");
    std::fs::write(&prompt_file, crate::support::PROMPT).unwrap();
    std::fs::write(&analysis_file, &analysis).unwrap();
    world.unset("AGENT_PROMPT");
    world.set("AGENT_PROMPT_FILE", prompt_file.display().to_string());
    world.set("CODERABBIT_ANALYSIS", "the variable loses to the file");
    world.set(
        "CODERABBIT_ANALYSIS_FILE",
        analysis_file.display().to_string(),
    );
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    let task = requests[0]["messages"][1]["content"].as_str().unwrap();
    assert!(task.contains("The greeting in src/greet.rs is too short."));
    assert!(task.contains(&analysis), "the analysis arrived whole");
    assert!(!task.contains("the variable loses to the file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_file_that_cannot_be_read_is_named_in_invalid_environment() {
    let mut world = World::new().await;
    world.set("AGENT_PROMPT_FILE", "/nonexistent/prompt.txt");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "invalid_environment");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("AGENT_PROMPT_FILE: cannot read /nonexistent/prompt.txt"),
        "{message}"
    );
}
