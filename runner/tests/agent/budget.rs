//! `PJ_MAX_COST_USD`: the run stops before a model call past the cap, counting what earlier
//! attempts spent (`PJ_TASK_COST_USD`).

use pj_runner::agent::Finish;

use crate::support::{BRANCH, World, edit_reply, openai_answer};

// Every fake OpenAI reply is 1,000 tokens in and 100 out of gpt-4o-mini ($0.15 and $0.60 per
// million): $0.00021 a call, of which the input is $0.00015.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_stops_before_the_call_that_would_pass_the_cap() {
    let mut world = World::new().await;
    world.set("PJ_MAX_COST_USD", "0.0005");
    // Replies that never apply: without the cap there would be three calls.
    world
        .openai_answers([openai_answer(&edit_reply("goodbye", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let requests = World::bodies(&world.llm, "POST", "/v1/chat/completions").await;
    // $0.00042 after two calls; a third would cost at least $0.00015 more.
    assert_eq!(requests.len(), 2, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["type"], "task.failed");
    assert_eq!(done["error"]["code"], "budget_exceeded");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("PJ_MAX_COST_USD ($0.0005)"), "{message}");
    assert!(message.contains("$0.00042 spent"), "{message}");
    assert!(message.contains("$0.00015"), "{message}");
    assert_eq!(done["usage"]["cost_usd"], 0.00042);
    assert!(!world.has_branch(BRANCH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spend_of_earlier_attempts_counts_against_the_cap() {
    let mut world = World::new().await;
    world.set("PJ_MAX_COST_USD", "2");
    world.set("PJ_TASK_COST_USD", "2.000000");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "budget_exceeded");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("reached PJ_MAX_COST_USD ($2.00)"),
        "{message}"
    );
    assert!(message.contains("$2.00 by earlier attempts"), "{message}");
    assert!(
        world
            .llm
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "no model call was made"
    );
    assert!(!world.has_branch(BRANCH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_cap_the_run_goes_on_and_the_log_names_the_cap() {
    let mut world = World::new().await;
    world.set("PJ_MAX_COST_USD", "0.50");
    world.set("PJ_TASK_COST_USD", "0.1");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
    assert!(
        world
            .log_texts()
            .iter()
            .any(|l| l
                == "spending cap PJ_MAX_COST_USD $0.50; earlier attempts of the task spent $0.10"),
        "{:?}",
        world.log_texts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_that_is_not_an_amount_is_named_in_invalid_environment() {
    let mut world = World::new().await;
    world.set("PJ_MAX_COST_USD", "five dollars");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "invalid_environment");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PJ_MAX_COST_USD")
    );
}
