//! Feedback rounds: edits that do not apply, and checks that fail.

use pj_runner::agent::Finish;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{BRANCH, World, edit_reply, openai_answer, pull_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_does_not_apply_is_sent_back_and_the_second_round_applies() {
    let world = World::new().await;
    world
        .openai_answers([
            openai_answer(&edit_reply("goodbye", "hello, world")),
            openai_answer(&edit_reply("hello", "hello, world")),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    assert_eq!(requests.len(), 2);
    let second = requests[1]["messages"].as_array().unwrap();
    // system, task, the failed reply, the engine's report.
    assert_eq!(second.len(), 4);
    assert_eq!(second[2]["role"], "assistant");
    assert!(second[2]["content"].as_str().unwrap().contains("goodbye"));
    let feedback = second[3]["content"].as_str().unwrap();
    assert!(feedback.contains("was not applied"), "{feedback}");
    assert!(feedback.contains("src/greet.rs"), "{feedback}");
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, world")
    );
    let done = world.final_event();
    assert_eq!(done["type"], "task.completed");
    assert_eq!(
        done["usage"]["input_tokens"], 2000,
        "usage is summed over calls"
    );
    assert_eq!(done["usage"]["output_tokens"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_never_applies_needs_review_with_patch_failed() {
    let world = World::new().await;
    world
        .openai_answers([openai_answer(&edit_reply("goodbye", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    assert_eq!(requests.len(), 3, "one reply and two more rounds");
    let done = world.final_event();
    assert_eq!(done["type"], "task.needs_review");
    assert_eq!(done["error"]["code"], "patch_failed");
    assert!(!world.has_branch(BRANCH), "nothing was pushed");
    assert!(
        world
            .log_texts()
            .iter()
            .any(|l| l.contains("the edits did not apply")),
        "the engine's report is in the log (the reply itself is not: metadata.rs)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_any_edit_is_asked_for_again() {
    let world = World::new().await;
    world
        .openai_answers([
            openai_answer("I think the greeting is fine as it is."),
            openai_answer(&edit_reply("hello", "hello, world")),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_goes_back_to_the_model_and_its_fix_completes_the_task() {
    let mut world = World::new().await;
    world.set(
        "PJ_VERIFY_CMD",
        "grep -q 'hello, world!' src/greet.rs || { echo 'greeting lacks its bang' >&2; exit 1; }",
    );
    world
        .openai_answers([
            openai_answer(&edit_reply("hello", "hello, world")),
            openai_answer(&edit_reply("hello, world", "hello, world!")),
        ])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    let feedback = requests[1]["messages"][3]["content"].as_str().unwrap();
    assert!(feedback.contains("greeting lacks its bang"), "{feedback}");
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, world!")
    );
    assert_eq!(world.final_event()["type"], "task.completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_keeps_failing_opens_a_draft_and_needs_review() {
    let mut world = World::new().await;
    // `.pithy/verify` in the repository names the check when PJ_VERIFY_CMD does not.
    let earlier = world.root.path().join("with-verify");
    world.git(
        world.root.path(),
        &[
            "clone",
            "-q",
            world.bare.to_str().unwrap(),
            earlier.to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(earlier.join(".pithy")).unwrap();
    std::fs::write(
        earlier.join(".pithy/verify"),
        "#!/bin/sh\necho 'tests: 1 failed' >&2\nexit 1\n",
    )
    .unwrap();
    world.git(&earlier, &["add", "-A"]);
    world.git(&earlier, &["commit", "-q", "-m", "Add a check"]);
    world.git(&earlier, &["push", "-q", "origin", "HEAD:main"]);
    world.unset("PJ_VERIFY_CMD");
    world
        .openai_answers([
            openai_answer(&edit_reply("hello", "hello, world")),
            openai_answer(&edit_reply("hello, world", "hello, there")),
            openai_answer(&edit_reply("hello, there", "hello, friend")),
        ])
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/pulls"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&world.github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/pulls"))
        .and(body_partial_json(json!({"draft": true})))
        .respond_with(ResponseTemplate::new(201).set_body_json(pull_request(8, true)))
        .expect(1)
        .mount(&world.github)
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    assert_eq!(
        requests.len(),
        3,
        "one reply and two rounds of fixes:\n{}",
        ran.stdout
    );
    let done = world.final_event();
    assert_eq!(done["type"], "task.needs_review");
    assert_eq!(done["error"]["code"], "verify_failed");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tests: 1 failed")
    );
    assert_eq!(done["pr_url"], "https://github.com/o/r/pull/8");
    assert_eq!(done["branch"], BRANCH);
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, friend")
    );
    let pr = World::bodies(&world.github, "POST", "/repos/o/r/pulls").await;
    assert!(pr[0]["body"].as_str().unwrap().contains("failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_that_change_nothing_need_review_and_push_nothing() {
    let world = World::new().await;
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.needs_review");
    assert_eq!(done["error"]["code"], "no_changes");
    assert!(!world.has_branch(BRANCH));
}
