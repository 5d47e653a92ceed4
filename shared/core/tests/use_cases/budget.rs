//! `PJ_MAX_COST_USD` from dispatch to retry, and the agent's metadata from the runner's final
//! event to `GET /tasks/{id}/executions`.

use pj_core::api::EventAck;
use pj_core::error::AppError;
use pj_core::ids::Attempt;
use pj_core::task::{TaskStatus, codes};
use serde_json::json;

use crate::{World, alice};

fn capped(dollars: f64) -> World {
    World::with(move |s| s.policy.max_cost_usd = Some(dollars))
}

fn failed_with(code: &str, cost: f64) -> serde_json::Value {
    json!({
        "type": "task.failed",
        "error": {"code": code, "message": "it went wrong"},
        "usage": {"input_tokens": 1000, "output_tokens": 100, "cost_usd": cost, "model": "gpt-4.1"}
    })
}

#[tokio::test]
async fn a_capped_deployment_gives_each_runner_the_cap_and_the_tasks_earlier_spend() {
    let world = capped(1.0);
    let task = world.running_task().await;
    let first = world.runner.started()[0].0.clone();
    assert_eq!(first.env.get("PJ_MAX_COST_USD"), Some("1"));
    assert_eq!(first.env.get("PJ_TASK_COST_USD"), Some("0"));

    let ack = world
        .event(&task.id, 1, failed_with(codes::RUNNER_EXITED, 0.25))
        .await;
    assert_eq!(ack.expect("taken"), EventAck::Applied);
    world.dispatch_sent().await;

    let second = world.runner.started()[1].0.clone();
    assert_eq!(second.attempt, Attempt(2));
    assert_eq!(second.env.get("PJ_MAX_COST_USD"), Some("1"));
    assert_eq!(second.env.get("PJ_TASK_COST_USD"), Some("0.25"));
}

#[tokio::test]
async fn without_a_cap_runners_get_no_budget_variables() {
    let world = World::new();
    world.running_task().await;
    let job = world.runner.started()[0].0.clone();
    assert_eq!(job.env.get("PJ_MAX_COST_USD"), None);
    assert_eq!(job.env.get("PJ_TASK_COST_USD"), None);
}

#[tokio::test]
async fn a_runner_that_stops_at_the_cap_fails_the_task_and_a_retry_is_a_conflict_that_says_why() {
    let world = capped(0.5);
    let task = world.running_task().await;
    let ack = world
        .event(&task.id, 1, failed_with(codes::BUDGET_EXCEEDED, 0.5))
        .await;
    assert_eq!(ack.expect("taken"), EventAck::Applied);
    let failed = world.task(&task.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error.unwrap().code, codes::BUDGET_EXCEEDED);

    let retry = world.api.retry(&alice(), task.id.as_str()).await;

    match retry {
        Err(AppError::Conflict(why)) => {
            assert!(why.contains("PJ_MAX_COST_USD ($0.50)"), "{why}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(world.task(&task.id).attempt, Attempt(1));
}

#[tokio::test]
async fn the_agents_metadata_shows_in_the_executions() {
    let world = World::new();
    let task = world.running_task().await;
    let metadata = json!({
        "rounds": 2,
        "first_round_applied": false,
        "files_changed": 1,
        "lines_added": 4,
        "lines_removed": 1,
        "patch_bytes": 312,
        "hunks": [{"file": "src/greet.rs", "round": 2, "status": "exact", "step": "search_exact"}],
        "a_later_field": "ignored"
    });
    let ack = world
        .event(
            &task.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x", "metadata": metadata}),
        )
        .await;
    assert_eq!(ack.expect("taken"), EventAck::Applied);

    let executions = world
        .api
        .executions(&alice(), task.id.as_str())
        .await
        .expect("the executions");
    let shown = serde_json::to_value(&executions).expect("json");
    let m = &shown[0]["metadata"];
    assert_eq!(m["rounds"], 2);
    assert_eq!(m["first_round_applied"], false);
    assert_eq!(m["lines_added"], 4);
    assert_eq!(m["patch_bytes"], 312);
    assert_eq!(m["hunks"][0]["step"], "search_exact");
    assert!(m.get("a_later_field").is_none());
}

#[tokio::test]
async fn metadata_that_is_not_an_object_of_the_contracts_shape_is_refused() {
    let world = World::new();
    let task = world.running_task().await;
    let answer = world
        .event(
            &task.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x", "metadata": {"rounds": "two"}}),
        )
        .await;
    assert!(matches!(answer, Err(AppError::Validation(_))), "{answer:?}");
}
