use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::create::{NewTask, RepoPolicy};
use crate::ids::UserId;
use crate::task::{Task, TaskStatus, Usage};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn policy() -> Policy {
    Policy::default()
}

fn new_task(extra: serde_json::Value) -> Task {
    let mut body = json!({"repo_url": "https://github.com/o/r", "prompt": "Add a README"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let new = NewTask::parse(&body, RepoPolicy::HttpsOnly).unwrap();
    new.into_task(
        UserId::parse("u1").unwrap(),
        Some("u1@example.com".into()),
        3,
        t0(),
        &policy(),
    )
    .0
}

fn apply(task: &Task, input: Input) -> Result<Transition, Refusal> {
    transition(task, &input, t0() + Duration::seconds(1), &policy())
}

fn applied(task: &Task, input: Input) -> Task {
    let mut next = apply(task, input.clone())
        .unwrap_or_else(|r| panic!("{input:?} refused on {}: {r:?}", task.status))
        .task;
    next.version = task.version + 1;
    next
}

const A1: Attempt = Attempt(1);

fn fixture(name: &str) -> Task {
    fixtures()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

fn runner(event: RunnerEvent) -> Input {
    Input::Runner { attempt: A1, event }
}

fn completed() -> RunnerEvent {
    RunnerEvent::Completed {
        branch: Some("pj/x".into()),
        pr_url: Some("https://github.com/o/r/pull/1".into()),
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 5,
            cost_usd: Some(0.01),
            model: Some("gpt-4.1".into()),
        }),
        metadata: None,
    }
}

fn failed(code: &str) -> RunnerEvent {
    RunnerEvent::Failed {
        error: TaskError::new(code, "it went wrong"),
        usage: None,
        metadata: None,
    }
}

/// A task in each situation the machine distinguishes.
fn fixtures() -> Vec<(&'static str, Task)> {
    let idle = new_task(json!({"execute": false}));
    let requested = new_task(json!({}));
    let claimed = applied(&requested, Input::Claim { attempt: A1 });
    let dispatched = applied(
        &claimed,
        Input::Dispatched {
            attempt: A1,
            runner_ref: "pid:1".into(),
        },
    );
    let running = applied(&dispatched, runner(RunnerEvent::Started));
    vec![
        ("pending_review", new_task(json!({"requires_review": true}))),
        (
            "scheduled",
            new_task(json!({"scheduled_for": "2030-01-01T00:00:00Z"})),
        ),
        ("queued_idle", idle),
        ("queued_requested", requested),
        ("queued_claimed", claimed),
        ("queued_dispatched", dispatched),
        ("running", running.clone()),
        ("completed", applied(&running, runner(completed()))),
        ("failed", applied(&running, runner(failed("patch_failed")))),
        (
            "needs_review",
            applied(
                &running,
                runner(RunnerEvent::NeedsReview {
                    error: None,
                    branch: None,
                    pr_url: None,
                    usage: None,
                    metadata: None,
                }),
            ),
        ),
        ("cancelled", applied(&running, Input::Cancel)),
    ]
}

#[derive(Debug, PartialEq)]
enum Expect {
    To(TaskStatus),
    Same,
    Refused,
}

fn check(name: &str, task: &Task, input: Input, expect: Expect) {
    let result = apply(task, input.clone());
    match (&expect, &result) {
        (Expect::To(status), Ok(t)) => assert_eq!(
            t.task.status, *status,
            "{input:?} on {name} went to {} not {status}",
            t.task.status
        ),
        (Expect::Same, Err(Refusal::AlreadyDone)) => {}
        (Expect::Refused, Err(Refusal::Conflict(_))) => {}
        _ => panic!("{input:?} on {name}: expected {expect:?}, got {result:?}"),
    }
}

#[test]
fn every_user_input_in_every_status_is_allowed_or_refused_as_the_contract_says() {
    use Expect::*;
    use TaskStatus as S;
    let table: [(&str, [Expect; 4]); 11] = [
        // name: execute, approve, cancel, retry
        (
            "pending_review",
            [Refused, To(S::Queued), To(S::Cancelled), Refused],
        ),
        ("scheduled", [Refused, Refused, To(S::Cancelled), Refused]),
        (
            "queued_idle",
            [To(S::Queued), Refused, To(S::Cancelled), Refused],
        ),
        (
            "queued_requested",
            [Same, Refused, To(S::Cancelled), Refused],
        ),
        ("queued_claimed", [Same, Refused, To(S::Cancelled), Refused]),
        (
            "queued_dispatched",
            [Same, Refused, To(S::Cancelled), Refused],
        ),
        ("running", [Refused, Refused, To(S::Cancelled), Refused]),
        ("completed", [Refused, Refused, Refused, Refused]),
        ("failed", [Refused, Refused, Refused, To(S::Queued)]),
        ("needs_review", [Refused, Refused, Refused, To(S::Queued)]),
        ("cancelled", [Refused, Refused, Refused, To(S::Queued)]),
    ];
    let fixtures = fixtures();
    for (name, expects) in table {
        let (_, task) = fixtures.iter().find(|(n, _)| *n == name).unwrap();
        let inputs = [Input::Execute, Input::Approve, Input::Cancel, Input::Retry];
        for (input, expect) in inputs.into_iter().zip(expects) {
            check(name, task, input, expect);
        }
    }
}

#[test]
fn every_runner_event_in_every_status_is_allowed_or_refused() {
    use Expect::*;
    use TaskStatus as S;
    let table: [(&str, [Expect; 5]); 11] = [
        // name: started, progress, completed, failed (agent), needs_review
        (
            "pending_review",
            [Refused, Refused, Refused, Refused, Refused],
        ),
        ("scheduled", [Refused, Refused, Refused, Refused, Refused]),
        ("queued_idle", [Refused, Refused, Refused, Refused, Refused]),
        (
            "queued_requested",
            [
                To(S::Running),
                Same,
                To(S::Completed),
                To(S::Failed),
                To(S::NeedsReview),
            ],
        ),
        (
            "queued_claimed",
            [
                To(S::Running),
                Same,
                To(S::Completed),
                To(S::Failed),
                To(S::NeedsReview),
            ],
        ),
        (
            "queued_dispatched",
            [
                To(S::Running),
                Same,
                To(S::Completed),
                To(S::Failed),
                To(S::NeedsReview),
            ],
        ),
        (
            "running",
            [
                Same,
                Same,
                To(S::Completed),
                To(S::Failed),
                To(S::NeedsReview),
            ],
        ),
        ("completed", [Refused, Refused, Refused, Refused, Refused]),
        ("failed", [Refused, Refused, Refused, Refused, Refused]),
        (
            "needs_review",
            [Refused, Refused, Refused, Refused, Refused],
        ),
        ("cancelled", [Refused, Refused, Refused, Refused, Refused]),
    ];
    let fixtures = fixtures();
    for (name, expects) in table {
        let (_, task) = fixtures.iter().find(|(n, _)| *n == name).unwrap();
        let events = [
            RunnerEvent::Started,
            RunnerEvent::Progress,
            completed(),
            failed("llm_failed"),
            RunnerEvent::NeedsReview {
                error: None,
                branch: None,
                pr_url: None,
                usage: None,
                metadata: None,
            },
        ];
        for (event, expect) in events.into_iter().zip(expects) {
            check(name, task, runner(event), expect);
        }
    }
}

#[test]
fn every_dispatch_input_is_allowed_only_in_its_step() {
    use Expect::*;
    use TaskStatus as S;
    let fixtures = fixtures();
    let get = |n: &str| {
        fixtures
            .iter()
            .find(|(name, _)| *name == n)
            .unwrap()
            .1
            .clone()
    };
    let claim = || Input::Claim { attempt: A1 };
    let dispatched = || Input::Dispatched {
        attempt: A1,
        runner_ref: "pid:2".into(),
    };
    let deferred = || Input::DispatchDeferred {
        attempt: A1,
        error: "502".into(),
    };
    check(
        "queued_requested",
        &get("queued_requested"),
        claim(),
        To(S::Queued),
    );
    check("queued_claimed", &get("queued_claimed"), claim(), Refused);
    check("queued_idle", &get("queued_idle"), claim(), Refused);
    check("cancelled", &get("cancelled"), claim(), Refused);
    check(
        "queued_claimed",
        &get("queued_claimed"),
        dispatched(),
        To(S::Queued),
    );
    check(
        "queued_requested",
        &get("queued_requested"),
        dispatched(),
        Refused,
    );
    check("running", &get("running"), dispatched(), To(S::Running));
    check("completed", &get("completed"), dispatched(), Same);
    check("cancelled", &get("cancelled"), dispatched(), Refused);
    check(
        "queued_claimed",
        &get("queued_claimed"),
        deferred(),
        To(S::Queued),
    );
    check(
        "queued_requested",
        &get("queued_requested"),
        deferred(),
        Refused,
    );
    check(
        "queued_requested",
        &get("queued_requested"),
        Input::Requeue { attempt: A1 },
        To(S::Queued),
    );
    check(
        "queued_dispatched",
        &get("queued_dispatched"),
        Input::Requeue { attempt: A1 },
        Same,
    );
    check("scheduled", &get("scheduled"), Input::ScheduleDue, Refused);
    check("queued_idle", &get("queued_idle"), Input::ScheduleDue, Same);
}

#[test]
fn a_wrong_attempt_is_refused_and_changes_nothing() {
    let running = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1;
    let input = Input::Runner {
        attempt: Attempt(2),
        event: completed(),
    };
    assert!(matches!(apply(&running, input), Err(Refusal::Conflict(_))));
}

#[test]
fn when_infrastructure_fails_with_attempts_left_should_start_a_new_attempt() {
    let running = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1;
    for input in [
        runner(failed(codes::RUNNER_EXITED)),
        Input::RunnerExited {
            attempt: A1,
            detail: "exit status 1".into(),
        },
    ] {
        let t = apply(&running, input).unwrap();
        assert_eq!(t.task.status, TaskStatus::Queued);
        assert_eq!(t.task.attempt, Attempt(2));
        assert_eq!(t.task.executions[0].state, ExecState::Failed);
        assert_eq!(t.task.executions[1].state, ExecState::Requested);
        assert_eq!(t.effects, vec![Effect::Dispatch(Attempt(2))]);
        assert!(t.task.error.is_none());
    }
}

#[test]
fn when_infrastructure_fails_on_the_last_attempt_should_fail_the_task_and_notify() {
    let mut task = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1;
    for n in 1..=3u32 {
        let attempt = Attempt(n);
        if n > 1 {
            task = applied(&task, Input::Claim { attempt });
            task = applied(
                &task,
                Input::Dispatched {
                    attempt,
                    runner_ref: format!("pid:{n}"),
                },
            );
        }
        task = applied(
            &task,
            Input::RunnerExited {
                attempt,
                detail: "killed".into(),
            },
        );
    }
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempt, Attempt(3));
    assert_eq!(task.error.as_ref().unwrap().code, codes::RUNNER_EXITED);
    assert_eq!(task.notify_pending, vec![Attempt(3)]);
}

#[test]
fn a_dispatch_that_cannot_succeed_fails_the_task_at_once() {
    let fixtures = fixtures();
    let claimed = fixtures
        .iter()
        .find(|(n, _)| *n == "queued_claimed")
        .unwrap()
        .1
        .clone();
    let t = apply(
        &claimed,
        Input::DispatchRefused {
            attempt: A1,
            error: "the snapshot does not exist".into(),
        },
    )
    .unwrap();
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert_eq!(
        t.task.attempt, A1,
        "no new attempt for a failure that would repeat"
    );
    assert_eq!(t.task.error.as_ref().unwrap().code, codes::DISPATCH_FAILED);
    assert_eq!(t.effects, vec![Effect::Notify(A1)]);
    let running = fixtures
        .iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1
        .clone();
    let refused = Input::DispatchRefused {
        attempt: A1,
        error: "x".into(),
    };
    assert_eq!(apply(&running, refused), Err(Refusal::AlreadyDone));
}

#[test]
fn agent_outcomes_never_start_a_new_attempt() {
    let running = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1;
    for code in [
        codes::PATCH_FAILED,
        codes::LLM_FAILED,
        codes::PUSH_FAILED,
        codes::PR_FAILED,
    ] {
        let t = apply(&running, runner(failed(code))).unwrap();
        assert_eq!(t.task.status, TaskStatus::Failed);
        assert_eq!(t.task.attempt, A1);
        assert_eq!(t.effects, vec![Effect::Notify(A1)]);
    }
}

#[test]
fn a_deadline_passes_only_after_it_is_due() {
    let running = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1;
    let deadline = running.current_execution().unwrap().deadline.unwrap();
    let early = transition(
        &running,
        &Input::DeadlinePassed { attempt: A1 },
        deadline - Duration::seconds(1),
        &policy(),
    );
    assert!(matches!(early, Err(Refusal::Conflict(_))));
    let late = transition(
        &running,
        &Input::DeadlinePassed { attempt: A1 },
        deadline,
        &policy(),
    )
    .unwrap();
    assert_eq!(
        late.task.executions[0].error.as_ref().unwrap().code,
        codes::TIMEOUT
    );
    assert!(
        late.effects
            .iter()
            .any(|e| matches!(e, Effect::StopRunner { .. }))
    );
}

#[test]
fn a_deadline_reached_after_the_runner_started_fails_the_task_and_starts_no_new_attempt() {
    let running = fixture("running");
    let deadline = running.current_execution().unwrap().deadline.unwrap();
    let t = transition(
        &running,
        &Input::DeadlinePassed { attempt: A1 },
        deadline,
        &policy(),
    )
    .unwrap();
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert_eq!(
        t.task.attempt, A1,
        "a second try would spend the budget again"
    );
    assert_eq!(t.task.executions.len(), 1);
    assert_eq!(t.task.executions[0].state, ExecState::Failed);
    assert_eq!(t.task.error.as_ref().unwrap().code, codes::TIMEOUT);
    assert_eq!(t.task.notify_pending, vec![A1]);
    assert_eq!(
        t.effects,
        vec![
            Effect::StopRunner {
                attempt: A1,
                runner: RunnerKind::Local,
                runner_ref: Some("pid:1".into()),
            },
            Effect::Notify(A1),
        ],
        "the runner is stopped and the email sent once, nothing dispatched"
    );
}

#[test]
fn a_running_attempt_whose_runner_is_killed_past_its_deadline_fails_with_timeout_and_no_new_attempt()
 {
    let running = fixture("running");
    let deadline = running.current_execution().unwrap().deadline.unwrap();
    let exited = Input::RunnerExited {
        attempt: A1,
        detail: "killed by signal 15".into(),
    };
    let t = transition(&running, &exited, deadline, &policy()).unwrap();
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert_eq!(t.task.attempt, A1);
    assert_eq!(t.task.error.as_ref().unwrap().code, codes::TIMEOUT);
    assert_eq!(t.effects, vec![Effect::Notify(A1)]);
    // Before its deadline, an exit is the infrastructure's failure: a new attempt.
    let early = transition(
        &running,
        &exited,
        deadline - Duration::seconds(1),
        &policy(),
    )
    .unwrap();
    assert_eq!(early.task.attempt, Attempt(2));
    assert_eq!(
        early.task.executions[0].error.as_ref().unwrap().code,
        codes::RUNNER_EXITED
    );
}

#[test]
fn a_deadline_reached_before_the_runner_started_starts_a_new_attempt_while_attempts_remain() {
    for name in ["queued_claimed", "queued_dispatched"] {
        let task = fixture(name);
        let deadline = task.current_execution().unwrap().deadline.unwrap();
        let t = transition(
            &task,
            &Input::DeadlinePassed { attempt: A1 },
            deadline,
            &policy(),
        )
        .unwrap();
        assert_eq!(t.task.status, TaskStatus::Queued, "{name}");
        assert_eq!(t.task.attempt, Attempt(2), "{name}");
        assert_eq!(
            t.task.executions[0].error.as_ref().unwrap().code,
            codes::TIMEOUT,
            "{name}"
        );
        assert!(t.task.error.is_none(), "{name}");
        assert!(t.task.notify_pending.is_empty(), "{name}: no email yet");
        assert!(t.effects.contains(&Effect::Dispatch(Attempt(2))), "{name}");
        assert!(!t.effects.contains(&Effect::Notify(A1)), "{name}");
    }
}

#[test]
fn a_deadline_reached_before_the_runner_started_on_the_last_attempt_fails_the_task_with_timeout() {
    let mut task = fixture("queued_dispatched");
    task.max_attempts = 1;
    let deadline = task.current_execution().unwrap().deadline.unwrap();
    let t = transition(
        &task,
        &Input::DeadlinePassed { attempt: A1 },
        deadline,
        &policy(),
    )
    .unwrap();
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert_eq!(t.task.attempt, A1);
    assert_eq!(t.task.error.as_ref().unwrap().code, codes::TIMEOUT);
    assert!(t.effects.contains(&Effect::Notify(A1)));
    assert!(!t.effects.iter().any(|e| matches!(e, Effect::Dispatch(_))));
}

#[test]
fn a_runner_that_reports_its_own_timeout_fails_the_task_and_starts_no_new_attempt() {
    for name in ["queued_dispatched", "running"] {
        let t = apply(&fixture(name), runner(failed(codes::TIMEOUT))).unwrap();
        assert_eq!(t.task.status, TaskStatus::Failed, "{name}");
        assert_eq!(t.task.attempt, A1, "{name}");
        assert_eq!(
            t.task.error.as_ref().unwrap().code,
            codes::TIMEOUT,
            "{name}"
        );
        assert_eq!(t.effects, vec![Effect::Notify(A1)], "{name}");
    }
}

#[test]
fn cancelling_a_running_task_stops_its_runner_and_its_later_events_change_nothing() {
    let running = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "running")
        .unwrap()
        .1;
    let cancelled = apply(&running, Input::Cancel).unwrap();
    assert_eq!(
        cancelled.effects,
        vec![Effect::StopRunner {
            attempt: A1,
            runner: RunnerKind::Local,
            runner_ref: Some("pid:1".into())
        }]
    );
    assert!(matches!(
        apply(&cancelled.task, runner(completed())),
        Err(Refusal::Conflict(_))
    ));
}

#[test]
fn the_email_of_an_attempt_is_marked_sent_once() {
    let completed = fixtures()
        .into_iter()
        .find(|(n, _)| *n == "completed")
        .unwrap()
        .1;
    assert_eq!(completed.notify_pending, vec![A1]);
    let sent = applied(&completed, Input::Notified { attempt: A1 });
    assert!(sent.notify_pending.is_empty());
    assert_eq!(sent.notified, vec![A1]);
    assert_eq!(
        apply(&sent, Input::Notified { attempt: A1 }),
        Err(Refusal::AlreadyDone)
    );
}

#[test]
fn the_sweeper_finds_what_is_due() {
    let fixtures = fixtures();
    let get = |n: &str| {
        fixtures
            .iter()
            .find(|(name, _)| *name == n)
            .unwrap()
            .1
            .clone()
    };
    let p = policy();
    let scheduled = get("scheduled");
    let due = scheduled.scheduled_for.unwrap();
    assert_eq!(scheduled.sweep_at, Some(due));
    assert_eq!(sweep_input(&scheduled, due, &p), Some(Input::ScheduleDue));
    assert_eq!(
        sweep_input(&scheduled, due - Duration::seconds(1), &p),
        None
    );

    let requested = get("queued_requested");
    let lost = requested.sweep_at.unwrap();
    assert_eq!(
        sweep_input(&requested, lost, &p),
        Some(Input::Requeue { attempt: A1 })
    );

    let claimed = get("queued_claimed");
    let stale = claimed.current_execution().unwrap().touched_at + p.lost_dispatch_after;
    assert!(matches!(
        sweep_input(&claimed, stale, &p),
        Some(Input::DispatchFailed { .. })
    ));

    let running = get("running");
    let deadline = running.current_execution().unwrap().deadline.unwrap();
    assert_eq!(running.sweep_at, Some(deadline));
    assert_eq!(
        sweep_input(&running, deadline, &p),
        Some(Input::DeadlinePassed { attempt: A1 })
    );

    let completed = get("completed");
    let overdue = completed.notify_touched_at.unwrap() + p.notify_retry_after;
    assert_eq!(sweep_input(&completed, overdue, &p), None);
    assert_eq!(
        overdue_notification(&completed, overdue, &p),
        Some(Input::NotifyRequeue { attempt: A1 })
    );
}

/// The fields that must come out the same whatever the order of delivery.
fn essence(task: &Task) -> impl PartialEq + std::fmt::Debug {
    (
        task.status,
        task.attempt,
        task.branch.clone(),
        task.pr_url.clone(),
        task.error.clone(),
        task.usage.clone(),
        task.executions
            .iter()
            .map(|e| (e.attempt, e.state))
            .collect::<Vec<_>>(),
        task.notify_pending.clone(),
    )
}

fn event_sets() -> Vec<Vec<RunnerEvent>> {
    vec![
        vec![
            RunnerEvent::Started,
            RunnerEvent::Progress,
            RunnerEvent::Progress,
            completed(),
        ],
        vec![
            RunnerEvent::Started,
            RunnerEvent::Progress,
            failed("patch_failed"),
        ],
        vec![
            RunnerEvent::Started,
            RunnerEvent::NeedsReview {
                error: Some(TaskError::new("verify_failed", "tests fail")),
                branch: Some("pj/x".into()),
                pr_url: Some("https://github.com/o/r/pull/2".into()),
                usage: None,
                metadata: None,
            },
        ],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_order_of_the_same_events_with_duplicates_ends_the_same(
        set in 0usize..3,
        order in proptest::collection::vec(0usize..64, 1..24),
        extra in proptest::collection::vec(0usize..8, 0..8),
    ) {
        let events = &event_sets()[set];
        let start = fixtures().into_iter().find(|(n, _)| *n == "queued_dispatched").unwrap().1;

        let mut in_order = start.clone();
        for e in events {
            if let Ok(t) = apply(&in_order, runner(e.clone())) {
                in_order = t.task;
            }
        }

        // Every event at least once, some twice or more, in a random order.
        let mut deliveries: Vec<RunnerEvent> = events.clone();
        deliveries.extend(extra.iter().map(|i| events[i % events.len()].clone()));
        for (i, j) in order.iter().enumerate() {
            let n = deliveries.len();
            deliveries.swap(i % n, j % n);
        }
        // The final event comes last in reality only sometimes; the result must not care,
        // except that `task.started` after the end is refused.
        let mut task = start.clone();
        let mut notifies = 0;
        let mut started = 0;
        for e in deliveries {
            match apply(&task, runner(e.clone())) {
                Ok(t) => {
                    notifies += t.effects.iter().filter(|e| matches!(e, Effect::Notify(_))).count();
                    if e == RunnerEvent::Started { started += 1; }
                    task = t.task;
                }
                Err(Refusal::AlreadyDone) | Err(Refusal::Conflict(_)) => {}
            }
        }
        prop_assert_eq!(essence(&task), essence(&in_order));
        prop_assert_eq!(notifies, 1, "the final transition was applied more than once");
        prop_assert!(started <= 1, "task.started was applied twice");
    }
}

#[test]
fn a_sandbox_is_released_when_its_agent_reports_the_outcome_and_a_process_is_not() {
    let daytona = Policy {
        runner: RunnerKind::Daytona,
        ..Policy::default()
    };
    let at = t0() + Duration::seconds(1);
    for (runner_kind, policy) in [
        (RunnerKind::Local, policy()),
        (RunnerKind::Daytona, daytona),
    ] {
        let requested = new_task(json!({}));
        let mut task = requested;
        task.executions[0].runner = runner_kind;
        let step = |task: &Task, input: Input| {
            let mut t = transition(task, &input, at, &policy).unwrap();
            t.task.version = task.version + 1;
            t
        };
        let claimed = step(&task, Input::Claim { attempt: A1 }).task;
        let dispatched = step(
            &claimed,
            Input::Dispatched {
                attempt: A1,
                runner_ref: "sbx-1".into(),
            },
        )
        .task;
        let started = step(&dispatched, runner(RunnerEvent::Started));
        assert!(
            started
                .effects
                .iter()
                .all(|e| !matches!(e, Effect::StopRunner { .. }))
        );
        task = started.task;
        let done = step(&task, runner(completed()));
        let stops: Vec<_> = done
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::StopRunner { .. }))
            .collect();
        match runner_kind {
            RunnerKind::Daytona => assert_eq!(
                stops,
                vec![&Effect::StopRunner {
                    attempt: A1,
                    runner: RunnerKind::Daytona,
                    runner_ref: Some("sbx-1".into())
                }]
            ),
            _ => assert!(stops.is_empty(), "{runner_kind:?}: {stops:?}"),
        }
    }
}

#[test]
fn a_waiting_dispatch_is_kept_alive_so_the_sweeper_never_calls_it_lost() {
    let queued = new_task(json!({}));
    let policy = policy();
    let later = t0() + policy.lost_dispatch_after - Duration::seconds(1);
    let waited = transition(
        &queued,
        &Input::AwaitCapacity { attempt: A1 },
        later,
        &policy,
    )
    .expect("an old wait is recorded")
    .task;
    let exec = waited.current_execution().expect("an execution");
    assert_eq!(exec.state, ExecState::Requested);
    assert_eq!(exec.touched_at, later);
    assert!(
        sweep_input(&waited, t0() + policy.lost_dispatch_after, &policy).is_none(),
        "a dispatch that waits its turn is not lost"
    );
    // A second look soon after writes nothing.
    assert_eq!(
        transition(
            &waited,
            &Input::AwaitCapacity { attempt: A1 },
            later + Duration::seconds(1),
            &policy
        ),
        Err(Refusal::AlreadyDone)
    );
}

#[test]
fn retries_stop_at_the_most_attempts_one_task_may_have() {
    let mut task = new_task(json!({}));
    task.status = TaskStatus::Failed;
    task.attempt = Attempt(MAX_ATTEMPTS_PER_TASK - 1);
    let retried = applied(&task, Input::Retry);
    assert_eq!(retried.attempt, Attempt(MAX_ATTEMPTS_PER_TASK));
    let mut last = retried;
    last.status = TaskStatus::Failed;
    match apply(&last, Input::Retry) {
        Err(Refusal::Conflict(message)) => assert!(message.contains("create a new task")),
        other => panic!("a retry past the cap should be refused, got {other:?}"),
    }
}

// The built-in kinds: run by the backend, finished with `Input::Finished`.

/// An `api_call` task as created, its first attempt requested.
fn builtin_task(max_attempts: u32) -> Task {
    let body = json!({"kind": "api_call", "title": "Call", "config": {"url": "https://api.example.com/x"},
                      "max_attempts": max_attempts});
    let new = NewTask::parse(&body, RepoPolicy::HttpsOnly).unwrap();
    new.into_task(
        UserId::parse("u1").unwrap(),
        Some("u1@example.com".into()),
        3,
        t0(),
        &policy(),
    )
    .0
}

/// A built-in task whose current attempt the worker has started.
fn builtin_running(max_attempts: u32) -> Task {
    let task = builtin_task(max_attempts);
    let attempt = task.attempt;
    let claimed = applied(&task, Input::Claim { attempt });
    applied(
        &claimed,
        Input::Runner {
            attempt,
            event: RunnerEvent::Started,
        },
    )
}

fn finished(attempt: Attempt, outcome: KindOutcome) -> Input {
    Input::Finished { attempt, outcome }
}

fn succeeded(n: u32) -> KindOutcome {
    KindOutcome {
        result: Some(json!({"status": 200, "attempt": n})),
        summary: Some(format!("GET https://api.example.com/x → 200 (attempt {n})")),
        steps: vec![Step {
            action: "request".into(),
            ok: true,
            ms: 12,
            output: Some(json!({"status": 200})),
            error: None,
        }],
        error: None,
        retry_after: None,
        usage: None,
    }
}

fn failed_with(retry_after: Option<std::time::Duration>) -> KindOutcome {
    KindOutcome {
        result: Some(json!({"status": 503})),
        summary: Some("GET https://api.example.com/x → 503".into()),
        steps: Vec::new(),
        error: Some(TaskError::new(codes::HTTP_ERROR, "the API answered 503")),
        retry_after,
        usage: None,
    }
}

#[test]
fn what_a_built_in_attempts_model_used_is_added_to_the_attempt_and_the_task() {
    let running = builtin_running(3);
    let usage = Usage {
        input_tokens: 1200,
        output_tokens: 40,
        cost_usd: Some(0.002),
        model: Some("openai/gpt-4.1-mini".into()),
    };
    let outcome = KindOutcome {
        usage: Some(usage.clone()),
        ..succeeded(1)
    };

    let next = applied(&running, finished(Attempt(1), outcome));

    assert_eq!(next.usage.input_tokens, 1200);
    assert_eq!(next.usage.cost_usd, Some(0.002));
    assert_eq!(next.executions[0].usage, Some(usage));
}

#[test]
fn a_built_in_kind_is_run_by_the_backend_and_its_start_is_no_runner_callback() {
    let task = builtin_task(3);
    assert_eq!(task.executions[0].runner, RunnerKind::Builtin);
    let running = builtin_running(3);
    assert_eq!(running.status, TaskStatus::Running);
    assert_eq!(
        running.callbacks.accepted, 0,
        "the worker's own start is not a callback"
    );
    let code = applied(&fixture("queued_dispatched"), runner(RunnerEvent::Started));
    assert_eq!(code.callbacks.accepted, 1, "a runner's is");
}

#[test]
fn a_finished_attempt_without_error_completes_the_task_with_its_result() {
    let running = builtin_running(3);

    let t = apply(&running, finished(A1, succeeded(1))).unwrap();

    let now = t0() + Duration::seconds(1);
    assert_eq!(t.task.status, TaskStatus::Completed);
    assert_eq!(t.task.error, None);
    assert_eq!(t.task.completed_at, Some(now));
    assert_eq!(t.task.result, succeeded(1).result);
    assert_eq!(t.task.result_summary, succeeded(1).summary);
    let exec = &t.task.executions[0];
    assert_eq!(exec.state, ExecState::Completed);
    assert_eq!(exec.finished_at, Some(now));
    assert_eq!(exec.result, succeeded(1).result);
    assert_eq!(exec.result_summary, succeeded(1).summary);
    assert_eq!(exec.steps, succeeded(1).steps);
    assert_eq!(exec.duration_ms(), Some(0));
    assert_eq!(t.task.notify_pending, vec![A1]);
    assert_eq!(t.effects, vec![Effect::Notify(A1)]);
}

#[test]
fn a_failure_that_may_pass_starts_a_new_attempt_after_its_backoff_while_attempts_remain() {
    let running = builtin_running(3);
    let delay = std::time::Duration::from_secs(5);

    let t = apply(&running, finished(A1, failed_with(Some(delay)))).unwrap();

    let now = t0() + Duration::seconds(1);
    let due = now + Duration::seconds(5);
    assert_eq!(t.task.status, TaskStatus::Queued);
    assert_eq!(t.task.attempt, Attempt(2));
    assert_eq!(t.task.error, None, "the task has not failed");
    assert!(
        t.task.notify_pending.is_empty(),
        "no email while attempts remain"
    );
    let first = &t.task.executions[0];
    assert_eq!(first.state, ExecState::Failed);
    assert_eq!(first.finished_at, Some(now));
    assert_eq!(first.error.as_ref().unwrap().code, codes::HTTP_ERROR);
    assert_eq!(first.result_summary, failed_with(None).summary);
    let second = &t.task.executions[1];
    assert_eq!(second.attempt, Attempt(2));
    assert_eq!(second.state, ExecState::Requested);
    assert_eq!(second.runner, RunnerKind::Builtin);
    assert_eq!(second.triggered_by, Some(Trigger::AutomaticRetry));
    assert_eq!(second.not_before, Some(due));
    assert_eq!(
        t.task.sweep_at,
        Some(due + policy().lost_dispatch_after),
        "the lost-dispatch clock starts when the attempt is due"
    );
    assert_eq!(t.effects, vec![Effect::DispatchLater(Attempt(2), delay)]);
}

#[test]
fn a_failure_that_may_pass_on_the_last_attempt_fails_the_task() {
    for max_attempts in [1, 2] {
        let mut task = builtin_running(max_attempts);
        if max_attempts == 2 {
            let retried = applied(
                &task,
                finished(A1, failed_with(Some(std::time::Duration::ZERO))),
            );
            let claimed = applied(
                &retried,
                Input::Claim {
                    attempt: Attempt(2),
                },
            );
            task = applied(
                &claimed,
                Input::Runner {
                    attempt: Attempt(2),
                    event: RunnerEvent::Started,
                },
            );
        }
        let last = Attempt(max_attempts);

        let t = apply(
            &task,
            finished(last, failed_with(Some(std::time::Duration::from_secs(5)))),
        )
        .unwrap();

        assert_eq!(t.task.status, TaskStatus::Failed, "{max_attempts}");
        assert_eq!(t.task.attempt, last, "{max_attempts}");
        assert_eq!(t.task.error.as_ref().unwrap().code, codes::HTTP_ERROR);
        assert_eq!(t.task.executions.len(), max_attempts as usize);
        assert_eq!(t.effects, vec![Effect::Notify(last)], "{max_attempts}");
    }
}

#[test]
fn a_final_failure_fails_the_task_at_once_whatever_attempts_remain() {
    let running = builtin_running(3);

    let t = apply(&running, finished(A1, failed_with(None))).unwrap();

    assert_eq!(t.task.status, TaskStatus::Failed);
    assert_eq!(t.task.attempt, A1);
    assert_eq!(t.task.executions.len(), 1);
    assert_eq!(t.task.error.as_ref().unwrap().code, codes::HTTP_ERROR);
    assert_eq!(
        t.task.result,
        failed_with(None).result,
        "the answer is kept"
    );
    assert_eq!(t.effects, vec![Effect::Notify(A1)]);
}

#[test]
fn a_finished_for_an_attempt_that_is_not_the_current_one_is_refused() {
    let running = builtin_running(3);
    let retried = applied(
        &running,
        finished(A1, failed_with(Some(std::time::Duration::from_secs(5)))),
    );

    // Attempt 1 again (a worker that ran on past its deadline), and a later attempt.
    for attempt in [A1, Attempt(3)] {
        assert!(
            matches!(
                apply(&retried, finished(attempt, succeeded(1))),
                Err(Refusal::Conflict(_))
            ),
            "{attempt}"
        );
    }
    // A task that ended, and an attempt a runner runs.
    let done = applied(&builtin_running(3), finished(A1, succeeded(1)));
    assert!(matches!(
        apply(&done, finished(A1, succeeded(1))),
        Err(Refusal::Conflict(_))
    ));
    assert!(matches!(
        apply(&fixture("running"), finished(A1, succeeded(1))),
        Err(Refusal::Conflict(_))
    ));
}

#[test]
fn only_the_latest_execution_with_a_result_keeps_it_whole() {
    let running = builtin_running(3);
    let retried = applied(
        &running,
        finished(A1, failed_with(Some(std::time::Duration::ZERO))),
    );
    assert_eq!(retried.executions[0].result, failed_with(None).result);
    let claimed = applied(
        &retried,
        Input::Claim {
            attempt: Attempt(2),
        },
    );
    let second = applied(
        &claimed,
        Input::Runner {
            attempt: Attempt(2),
            event: RunnerEvent::Started,
        },
    );

    let done = applied(&second, finished(Attempt(2), succeeded(2)));

    assert_eq!(done.executions[0].result, None);
    assert_eq!(
        done.executions[0].result_summary,
        failed_with(None).summary,
        "the earlier attempt keeps its summary"
    );
    assert_eq!(done.executions[1].result, succeeded(2).result);
    assert_eq!(done.result, succeeded(2).result);
}

#[test]
fn a_deadline_passed_on_a_built_in_attempt_is_a_timeout_that_may_pass() {
    let running = builtin_running(3);
    let deadline = running.current_execution().unwrap().deadline.unwrap();
    let early = transition(
        &running,
        &Input::DeadlinePassed { attempt: A1 },
        deadline - Duration::seconds(1),
        &policy(),
    );
    assert!(matches!(early, Err(Refusal::Conflict(_))));

    let t = transition(
        &running,
        &Input::DeadlinePassed { attempt: A1 },
        deadline,
        &policy(),
    )
    .unwrap();

    assert_eq!(t.task.status, TaskStatus::Queued, "unlike a running agent");
    assert_eq!(t.task.attempt, Attempt(2));
    assert_eq!(
        t.task.executions[0].error.as_ref().unwrap().code,
        codes::TIMEOUT
    );
    let backoff = retry_backoff(1, None, 1.0);
    assert_eq!(
        t.task.executions[1].not_before,
        Some(deadline + Duration::from_std(backoff).unwrap())
    );
    assert_eq!(
        t.effects,
        vec![
            Effect::StopRunner {
                attempt: A1,
                runner: RunnerKind::Builtin,
                runner_ref: None,
            },
            Effect::DispatchLater(Attempt(2), backoff),
        ]
    );

    // On the last attempt the task fails with the timeout.
    let last = builtin_running(1);
    let t = transition(
        &last,
        &Input::DeadlinePassed { attempt: A1 },
        deadline,
        &policy(),
    )
    .unwrap();
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert_eq!(t.task.error.as_ref().unwrap().code, codes::TIMEOUT);
    assert!(t.effects.contains(&Effect::Notify(A1)));
}

#[test]
fn a_refused_callback_is_counted_and_changes_nothing_else() {
    for name in ["running", "completed", "cancelled"] {
        let before = fixture(name);

        let t = apply(&before, Input::CallbackRefused).unwrap();

        assert_eq!(
            t.task.callbacks.refused,
            before.callbacks.refused + 1,
            "{name}"
        );
        assert_eq!(
            t.task.callbacks.accepted, before.callbacks.accepted,
            "{name}"
        );
        assert_eq!(t.task.status, before.status, "{name}");
        assert_eq!(t.task.executions, before.executions, "{name}");
        assert_eq!(t.task.notify_pending, before.notify_pending, "{name}");
        assert!(t.effects.is_empty(), "{name}: {:?}", t.effects);
    }
    let twice = applied(
        &applied(&fixture("running"), Input::CallbackRefused),
        Input::CallbackRefused,
    );
    assert_eq!(twice.callbacks.refused, 2);
}

#[test]
fn the_automatic_retry_backoff_doubles_from_two_seconds_to_ten_minutes_and_honours_retry_after() {
    use std::time::Duration as Std;
    assert_eq!(retry_backoff(1, None, 1.0), Std::from_secs(2));
    assert_eq!(retry_backoff(2, None, 1.0), Std::from_secs(4));
    assert_eq!(retry_backoff(4, None, 1.0), Std::from_secs(16));
    assert_eq!(retry_backoff(30, None, 1.0), Std::from_secs(600));
    assert_eq!(retry_backoff(1, None, 1.2), Std::from_millis(2_400));
    assert_eq!(
        retry_backoff(1, Some(Std::from_secs(30)), 1.2),
        Std::from_secs(30),
        "never sooner than Retry-After"
    );
    assert_eq!(
        retry_backoff(1, Some(Std::from_secs(10 * 86_400)), 1.0),
        Std::from_secs(86_400),
        "a Retry-After is honoured up to a day"
    );
}
