//! The browser kinds in the core: steps run in order on a fake browser, each recorded; a failing
//! step names itself and keeps what came before; plain-words steps go through a fake model.

use pj_core::kinds::browser::{PageElement, PageView};
use pj_core::task::{Task, TaskStatus, codes};
use serde_json::{Value, json};

use crate::fakes::FAKE_PNG;
use crate::{World, alice};

fn automation(steps: Value) -> Value {
    json!({"kind": "browser_automation", "title": "Sign up",
           "config": {"start_url": "https://shop.example.com/", "steps": steps}})
}

fn error_code(task: &Task) -> &str {
    task.error.as_ref().map_or("", |e| e.code.as_str())
}

fn error_message(task: &Task) -> &str {
    task.error.as_ref().map_or("", |e| e.message.as_str())
}

async fn run(world: &World, body: Value) -> Task {
    let task = world.create_kind(body).await;
    world.settle().await;
    world.task(&task.id)
}

/// A page with two buttons of the same text in different sections.
fn two_subscribe_buttons() -> PageView {
    let button = |reference: &str, context: &str| PageElement {
        reference: reference.into(),
        role: "button".into(),
        name: "Subscribe".into(),
        context: context.into(),
    };
    PageView {
        url: "https://shop.example.com/".into(),
        title: "Shop".into(),
        elements: vec![button("1", "Newsletter"), button("2", "Podcast")],
        text: "Page: Shop\n## Newsletter\n[1] button \"Subscribe\"\n## Podcast\n[2] button \"Subscribe\"\n"
            .into(),
    }
}

#[tokio::test]
async fn the_steps_run_in_order_each_recorded_and_the_screenshot_is_an_artifact() {
    let world = World::new();
    world
        .browsers
        .script()
        .reads
        .insert("h1".into(), json!("Welcome, Ada"));

    let done = run(
        &world,
        automation(json!([
            {"action": "type", "selector": "#email", "text": "ada@example.com"},
            {"action": "click", "selector": "button[type=submit]"},
            {"action": "wait", "selector": "h1"},
            {"action": "extract", "selector": "h1", "schema": {"type": "string"}},
            {"action": "screenshot", "full_page": true},
        ])),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert_eq!(
        world.browsers.calls(),
        [
            "open local",
            "navigate https://shop.example.com/",
            "type \"ada@example.com\" into #email",
            "click button[type=submit]",
            "wait for h1",
            "read h1",
            "screenshot full_page=true",
            "close",
        ]
    );
    let result = done.result.clone().unwrap();
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|s| s["ok"] == true && s["ms"].is_u64()));
    assert_eq!(result["extracted"], json!({"step_4": "Welcome, Ada"}));
    assert_eq!(result["screenshots"], json!(["a1-step-5.png"]));
    assert_eq!(result["session_id"], "fake-session");
    let (artifact, bytes) = world
        .api
        .artifact(&alice(), done.id.as_str(), "a1-step-5.png")
        .await
        .unwrap();
    assert_eq!(bytes, FAKE_PNG);
    assert_eq!(artifact.content_type, "image/png");
    let exec = done.current_execution().unwrap();
    assert_eq!(exec.steps.len(), 5);
    assert_eq!(world.browsers.script().open_now, 0);
}

#[tokio::test]
async fn a_failing_step_fails_the_task_naming_it_and_keeps_what_came_before() {
    let world = World::new();
    world
        .browsers
        .script()
        .fails_on
        .insert("#missing".into(), "waited 10 s for \"#missing\"".into());

    let done = run(
        &world,
        automation(json!([
            {"action": "screenshot"},
            {"action": "click", "selector": "#missing"},
            {"action": "click", "selector": "#never"},
        ])),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(error_code(&done), codes::BROWSER_ERROR);
    assert!(
        error_message(&done).starts_with("step 2 (click \"#missing\") failed: waited 10 s"),
        "{}",
        error_message(&done)
    );
    let result = done.result.clone().unwrap();
    let oks: Vec<&Value> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["ok"])
        .collect();
    assert_eq!(oks, [&json!(true), &json!(false)]);
    assert_eq!(
        result["screenshots"],
        json!(["a1-step-1.png", "a1-step-2-failed.png"])
    );
    assert!(!world.browsers.calls().contains(&"click #never".to_owned()));
    assert_eq!(world.browsers.calls().last().unwrap(), "close");
    assert_eq!(
        done.attempt.0, 1,
        "a step that fails on the page is not retried"
    );
}

#[tokio::test]
async fn an_instruction_acts_on_the_element_the_model_picks_and_its_tokens_count() {
    let world = World::new();
    world.browsers.script().view = two_subscribe_buttons();
    world.model.answers(&["```json\n{\"ref\": \"2\"}\n```"]);

    let done = run(
        &world,
        automation(json!([{"action": "click", "instruction": "subscribe to the podcast"}])),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert!(world.browsers.calls().contains(&"click ref 2".to_owned()));
    let prompt = &world.model.prompts()[0];
    assert!(prompt.contains("subscribe to the podcast"), "{prompt}");
    assert!(prompt.contains("## Podcast\n[2] button"), "{prompt}");
    assert_eq!(done.usage.input_tokens, 1000);
    assert_eq!(done.usage.cost_usd, Some(0.001));
    assert_eq!(
        done.current_execution()
            .unwrap()
            .usage
            .as_ref()
            .unwrap()
            .output_tokens,
        10
    );
}

#[tokio::test]
async fn a_pick_that_is_not_on_the_page_is_asked_for_once_more() {
    let world = World::new();
    world.browsers.script().view = two_subscribe_buttons();
    world
        .model
        .answers(&["{\"ref\": \"9\"}", "{\"ref\": \"1\"}"]);

    let done = run(
        &world,
        automation(json!([{"action": "click", "instruction": "join the newsletter"}])),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert!(world.browsers.calls().contains(&"click ref 1".to_owned()));
    let second = &world.model.prompts()[1];
    assert!(
        second.contains("\"9\" is not a reference of the page"),
        "{second}"
    );
}

#[tokio::test]
async fn a_model_that_finds_no_element_fails_the_step_with_its_reason() {
    let world = World::new();
    world.browsers.script().view = two_subscribe_buttons();
    world.model.answers(&[
        "{\"ref\": null, \"reason\": \"there is no cart\"}",
        "{\"ref\": null, \"reason\": \"there is no cart\"}",
    ]);

    let done = run(
        &world,
        automation(json!([{"action": "click", "instruction": "open the cart"}])),
    )
    .await;

    assert_eq!(error_code(&done), codes::BROWSER_ERROR);
    assert!(
        error_message(&done).contains("there is no cart"),
        "{}",
        error_message(&done)
    );
}

#[tokio::test]
async fn an_extraction_that_breaks_its_schema_is_asked_again_with_the_error() {
    let world = World::new();
    world
        .model
        .answers(&["{\"price\": \"12.50\"}", "{\"price\": 12.5}"]);

    let done = run(
        &world,
        automation(
            json!([{"action": "extract", "instruction": "the price of the first book",
            "schema": {"type": "object", "required": ["price"],
                       "properties": {"price": {"type": "number"}}}}]),
        ),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert_eq!(
        done.result.as_ref().unwrap()["extracted"],
        json!({"step_1": {"price": 12.5}})
    );
    let second = &world.model.prompts()[1];
    assert!(second.contains("/price"), "the error says where: {second}");
    assert!(second.contains("{\"price\": \"12.50\"}"), "{second}");
    assert_eq!(done.usage.input_tokens, 2000, "both questions count");
}

#[tokio::test]
async fn an_extraction_that_breaks_its_schema_twice_fails_with_extraction_failed() {
    let world = World::new();
    world
        .model
        .answers(&["{\"price\": \"x\"}", "no JSON at all"]);

    let done = run(
        &world,
        automation(json!([{"action": "extract", "instruction": "the price",
            "schema": {"type": "object", "properties": {"price": {"type": "number"}}}}])),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(error_code(&done), codes::EXTRACTION_FAILED);
}

#[tokio::test]
async fn what_a_selector_extracts_is_checked_against_its_schema() {
    let world = World::new();
    world
        .browsers
        .script()
        .reads
        .insert("td.price".into(), json!(["12.50", "3.00"]));

    let done = run(
        &world,
        automation(json!([{"action": "extract", "selector": "td.price",
            "schema": {"type": "array", "items": {"type": "number"}}}])),
    )
    .await;

    assert_eq!(error_code(&done), codes::EXTRACTION_FAILED);
    assert!(
        error_message(&done).contains("step 1"),
        "{}",
        error_message(&done)
    );
}

#[tokio::test]
async fn a_browser_that_cannot_be_had_for_now_is_tried_again_and_one_that_never_will_is_not() {
    let world = World::new();
    world.browsers.script().open_fails = Some(("Browserbase answered 503".into(), true));
    let task = world
        .create_kind(automation(json!([{"action": "screenshot"}])))
        .await;
    world.settle().await;
    let waiting = world.task(&task.id);
    assert_eq!(
        waiting.status,
        TaskStatus::Queued,
        "a retry waits its backoff"
    );
    assert_eq!(waiting.attempt.0, 2);

    let world = World::new();
    world.browsers.script().open_fails = Some(("no Chromium".into(), false));
    let done = run(&world, automation(json!([{"action": "screenshot"}]))).await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(error_code(&done), codes::BROWSER_ERROR);
    assert!(error_message(&done).contains("no Chromium"));
}

#[tokio::test]
async fn a_data_extraction_reads_its_fields_into_data() {
    let world = World::new();
    world.browsers.script().fields = json!({"title": "Dune", "links": ["/a", "/b"]})
        .as_object()
        .unwrap()
        .clone();

    let done = run(
        &world,
        json!({"kind": "data_extraction", "title": "Books",
               "config": {"url": "https://books.example.com/", "fields": {"title": "h1", "links": "a@href"}}}),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert_eq!(
        done.result.as_ref().unwrap()["data"],
        json!({"title": "Dune", "links": ["/a", "/b"]})
    );
    assert_eq!(
        world.browsers.calls(),
        [
            "open local",
            "navigate https://books.example.com/",
            "read 2 fields",
            "close"
        ]
    );
}

#[tokio::test]
async fn a_data_extraction_by_instruction_gives_what_the_model_extracted() {
    let world = World::new();
    world
        .model
        .answers(&["[{\"title\": \"Dune\", \"price\": 9.99}]"]);

    let done = run(
        &world,
        json!({"kind": "data_extraction", "title": "Books",
               "config": {"url": "https://books.example.com/", "instruction": "every book with its price",
                          "schema": {"type": "array", "items": {"type": "object", "required": ["title", "price"]}}}}),
    )
    .await;

    assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
    assert_eq!(
        done.result.as_ref().unwrap()["data"],
        json!([{"title": "Dune", "price": 9.99}])
    );
}

#[tokio::test]
async fn the_browser_configs_are_shown_as_they_were_given() {
    let world = World::new();
    let config = json!({"start_url": "https://shop.example.com/", "browser": "local", "steps": [
        {"action": "type", "instruction": "the email field", "text": "a@b.c"},
        {"action": "wait", "ms": 500},
        {"action": "extract", "selector": "h1", "schema": {"type": "string"}},
        {"action": "screenshot", "full_page": false},
    ]});
    let task = world
        .create_kind(
            json!({"kind": "browser_automation", "title": "t", "execute": false, "config": config}),
        )
        .await;

    let shown = world.api.get(&alice(), task.id.as_str()).await.unwrap();
    let view = serde_json::to_value(shown.view()).unwrap();
    assert_eq!(view["config"], config);
}
