//! `PJ_MAX_COST_USD` on the server's side, and the agent's metadata on the execution.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::*;
use crate::agent::{AgentMetadata, HunkPlacement};
use crate::create::{NewTask, RepoPolicy};
use crate::ids::UserId;

const A1: Attempt = Attempt(1);
const A2: Attempt = Attempt(2);

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn capped(dollars: f64) -> Policy {
    Policy {
        max_cost_usd: Some(dollars),
        ..Policy::default()
    }
}

fn step(task: &Task, input: Input, policy: &Policy) -> Result<Transition, Refusal> {
    transition(task, &input, t0() + Duration::seconds(1), policy)
}

fn applied(task: &Task, input: Input, policy: &Policy) -> Task {
    let mut next = step(task, input.clone(), policy)
        .unwrap_or_else(|r| panic!("{input:?} refused on {}: {r:?}", task.status))
        .task;
    next.version = task.version + 1;
    next
}

/// A task whose attempt `attempt` has started.
fn running(policy: &Policy) -> Task {
    let body = json!({"repo_url": "https://github.com/o/r", "prompt": "Add a README"});
    let new = NewTask::parse(&body, RepoPolicy::HttpsOnly).unwrap();
    let (task, _) = new.into_task(UserId::parse("u1").unwrap(), None, 3, t0(), policy);
    start(&task, A1, policy)
}

fn start(task: &Task, attempt: Attempt, policy: &Policy) -> Task {
    let claimed = applied(task, Input::Claim { attempt }, policy);
    let dispatched = applied(
        &claimed,
        Input::Dispatched {
            attempt,
            runner_ref: format!("pid:{attempt}"),
        },
        policy,
    );
    applied(
        &dispatched,
        Input::Runner {
            attempt,
            event: RunnerEvent::Started,
        },
        policy,
    )
}

fn spent(dollars: f64) -> Option<Usage> {
    Some(Usage {
        input_tokens: 1_000,
        output_tokens: 100,
        cost_usd: Some(dollars),
        model: Some("gpt-4.1".into()),
    })
}

fn failed(attempt: Attempt, code: &str, usage: Option<Usage>) -> Input {
    Input::Runner {
        attempt,
        event: RunnerEvent::Failed {
            error: TaskError::new(code, "it went wrong"),
            usage,
            metadata: None,
        },
    }
}

#[test]
fn when_the_tasks_spend_reached_the_cap_a_retry_should_be_refused_saying_why() {
    let policy = capped(1.0);
    let task = applied(
        &running(&policy),
        failed(A1, codes::LLM_FAILED, spent(1.0)),
        &policy,
    );
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(
        task.error.as_ref().map(|e| e.code.as_str()),
        Some(codes::LLM_FAILED),
        "an agent's own failure keeps its code"
    );

    match step(&task, Input::Retry, &policy) {
        Err(Refusal::Conflict(why)) => {
            assert!(why.contains("PJ_MAX_COST_USD ($1.00)"), "{why}");
            assert!(why.contains("$1.00,"), "the spend is named: {why}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Under a higher cap the same task may be retried.
    let retried = applied(&task, Input::Retry, &capped(1.5));
    assert_eq!(retried.status, TaskStatus::Queued);
}

#[test]
fn when_an_infrastructure_failure_brings_the_spend_to_the_cap_no_new_attempt_should_start() {
    let policy = capped(1.0);
    let first = applied(
        &running(&policy),
        failed(A1, codes::RUNNER_EXITED, spent(0.6)),
        &policy,
    );
    assert_eq!(first.status, TaskStatus::Queued, "under the cap: retried");
    assert_eq!(first.attempt, A2);

    let second = start(&first, A2, &policy);
    let out = step(
        &second,
        failed(A2, codes::RUNNER_EXITED, spent(0.5)),
        &policy,
    )
    .unwrap();
    let task = out.task;

    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempt, A2, "no third attempt");
    let error = task.error.as_ref().unwrap();
    assert_eq!(error.code, codes::BUDGET_EXCEEDED);
    assert!(error.message.contains("$1.10"), "{}", error.message);
    assert!(error.message.contains("runner_exited"), "{}", error.message);
    assert_eq!(
        task.current_execution()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .code,
        codes::RUNNER_EXITED,
        "the attempt keeps its own cause"
    );
    assert_eq!(out.effects, vec![Effect::Notify(A2)]);
}

#[test]
fn when_a_dispatch_fails_after_earlier_spend_at_the_cap_no_new_attempt_should_start() {
    let policy = capped(0.5);
    // A task whose earlier spend came in under a higher cap, then the cap was lowered.
    let first = applied(
        &running(&capped(10.0)),
        failed(A1, codes::RUNNER_EXITED, spent(0.7)),
        &capped(10.0),
    );
    let claimed = applied(&first, Input::Claim { attempt: A2 }, &policy);
    let task = applied(
        &claimed,
        Input::DispatchFailed {
            attempt: A2,
            error: "no runner".into(),
        },
        &policy,
    );
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.unwrap().code, codes::BUDGET_EXCEEDED);
}

#[test]
fn when_a_completed_attempt_passes_the_cap_the_task_should_stay_completed_with_its_pull_request() {
    let policy = capped(0.5);
    let completed = RunnerEvent::Completed {
        branch: Some("pj/x".into()),
        pr_url: Some("https://github.com/o/r/pull/1".into()),
        usage: spent(0.75),
        metadata: None,
    };
    let task = applied(
        &running(&policy),
        Input::Runner {
            attempt: A1,
            event: completed,
        },
        &policy,
    );
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(
        task.pr_url.as_deref(),
        Some("https://github.com/o/r/pull/1")
    );
    assert_eq!(task.usage.cost_usd, Some(0.75));
}

#[test]
fn without_a_cap_spend_should_change_nothing() {
    let policy = Policy::default();
    let task = applied(
        &running(&policy),
        failed(A1, codes::RUNNER_EXITED, spent(1_000.0)),
        &policy,
    );
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(budget_reached(&task, &policy), None);
}

#[test]
fn the_spend_counts_the_attempts_whose_cost_is_known() {
    let policy = Policy::default();
    let first = applied(
        &running(&policy),
        failed(A1, codes::RUNNER_EXITED, spent(0.25)),
        &policy,
    );
    let second = start(&first, A2, &policy);
    let unpriced = Some(Usage {
        cost_usd: None,
        ..spent(0.0).unwrap()
    });
    let task = applied(&second, failed(A2, codes::RUNNER_EXITED, unpriced), &policy);
    assert_eq!(task.usage.cost_usd, None, "the task's total is unknown");
    assert_eq!(model_spend_usd(&task), 0.25, "the known part still counts");
}

#[test]
fn a_final_event_should_leave_its_metadata_on_the_execution() {
    let policy = Policy::default();
    let metadata = AgentMetadata {
        rounds: 2,
        first_round_applied: Some(false),
        files_changed: 1,
        lines_added: 3,
        lines_removed: 1,
        patch_bytes: 240,
        hunks: vec![HunkPlacement {
            file: "src/lib.rs".into(),
            round: 2,
            status: "fuzzy".into(),
            step: Some("indentation".into()),
        }],
        fallback: None,
    };
    let event = RunnerEvent::NeedsReview {
        error: None,
        branch: Some("pj/x".into()),
        pr_url: None,
        usage: None,
        metadata: Some(metadata.clone()),
    };
    let task = applied(
        &running(&policy),
        Input::Runner { attempt: A1, event },
        &policy,
    );
    let exec = task.current_execution().unwrap();
    assert_eq!(exec.metadata.as_ref(), Some(&metadata));
    let view = serde_json::to_value(crate::task::ExecutionView::from(exec)).unwrap();
    assert_eq!(view["metadata"]["hunks"][0]["step"], "indentation");
    assert_eq!(view["metadata"]["first_round_applied"], false);
}
