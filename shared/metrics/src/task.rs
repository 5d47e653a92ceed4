//! The product metrics of a task's creation and of each stored change of it: derived here once,
//! recorded by every sink (EMF lines on AWS, the Prometheus registry of `pj serve`).

use chrono::{DateTime, Utc};
use pj_core::Task;
use pj_core::ids::Attempt;
use pj_core::task::{Execution, TaskError, TaskStatus, Usage, codes};

use crate::emf::{Datum, Unit};
use crate::names;

/// One product metric. Its name (the one spelling, in [`names`]) and unit are told here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    TaskCreated,
    TaskCompleted,
    TaskFailed,
    TaskNeedsReview,
    TaskCancelled,
    AttemptRequested,
    AttemptRetried,
    AttemptTimedOut,
    DispatchErrors,
    DispatchLatency,
    TaskDuration,
    RunnerDuration,
    TokensInput,
    TokensOutput,
    CostUsd,
    PatchFirstRoundApplied,
    PatchFirstRoundRejected,
}

impl Metric {
    /// Every product metric, in the order `infra/README.md` lists them.
    pub const ALL: [Metric; 17] = [
        Metric::TaskCreated,
        Metric::TaskCompleted,
        Metric::TaskFailed,
        Metric::TaskNeedsReview,
        Metric::TaskCancelled,
        Metric::AttemptRequested,
        Metric::AttemptRetried,
        Metric::AttemptTimedOut,
        Metric::DispatchErrors,
        Metric::DispatchLatency,
        Metric::TaskDuration,
        Metric::RunnerDuration,
        Metric::TokensInput,
        Metric::TokensOutput,
        Metric::CostUsd,
        Metric::PatchFirstRoundApplied,
        Metric::PatchFirstRoundRejected,
    ];

    /// The metric's name in CloudWatch (one of [`names`]).
    pub const fn name(self) -> &'static str {
        match self {
            Metric::TaskCreated => names::TASK_CREATED,
            Metric::TaskCompleted => names::TASK_COMPLETED,
            Metric::TaskFailed => names::TASK_FAILED,
            Metric::TaskNeedsReview => names::TASK_NEEDS_REVIEW,
            Metric::TaskCancelled => names::TASK_CANCELLED,
            Metric::AttemptRequested => names::ATTEMPT_REQUESTED,
            Metric::AttemptRetried => names::ATTEMPT_RETRIED,
            Metric::AttemptTimedOut => names::ATTEMPT_TIMED_OUT,
            Metric::DispatchErrors => names::DISPATCH_ERRORS,
            Metric::DispatchLatency => names::DISPATCH_LATENCY_MS,
            Metric::TaskDuration => names::TASK_DURATION_MS,
            Metric::RunnerDuration => names::RUNNER_DURATION_MS,
            Metric::TokensInput => names::TOKENS_INPUT,
            Metric::TokensOutput => names::TOKENS_OUTPUT,
            Metric::CostUsd => names::COST_USD,
            Metric::PatchFirstRoundApplied => names::PATCH_FIRST_ROUND_APPLIED,
            Metric::PatchFirstRoundRejected => names::PATCH_FIRST_ROUND_REJECTED,
        }
    }

    /// The unit of its values: counts, milliseconds, or dollars (`None`).
    pub const fn unit(self) -> Unit {
        match self {
            Metric::DispatchLatency | Metric::TaskDuration | Metric::RunnerDuration => {
                Unit::Milliseconds
            }
            Metric::CostUsd => Unit::None,
            _ => Unit::Count,
        }
    }
}

/// What one creation or stored change of a task adds to one product metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    pub metric: Metric,
    /// In the metric's [`Metric::unit`]: a count to add, a duration, or dollars.
    pub value: f64,
    /// The task's `kind`.
    pub kind: &'a str,
    /// The status the task ended in, on the metrics of an outcome (the ended count and its
    /// durations); `None` on the others.
    pub outcome: Option<TaskStatus>,
}

impl Observation<'_> {
    /// The observation as an EMF value: the product metrics carry no dimension on AWS.
    pub fn datum(&self) -> Datum<'static> {
        (self.metric.name(), self.value, self.metric.unit())
    }
}

/// The observations of a new task. A task is created, not changed, so it has no "before".
pub fn created_observations(task: &Task) -> Vec<Observation<'_>> {
    let mut out = vec![observation(task, Metric::TaskCreated, 1.0)];
    // A task created to run at once has its first attempt already.
    if !task.executions.is_empty() {
        out.push(observation(
            task,
            Metric::AttemptRequested,
            task.executions.len() as f64,
        ));
    }
    out
}

/// The observations of one stored change of a task, from the task as it was read (`before`)
/// and as it was written (`after`): the outcome of the task, new attempts, dispatches, timeouts,
/// and the usage the runner reported. Record them once per stored write; an input that changed
/// nothing (a duplicate) has nothing to count.
pub fn change_observations<'a>(before: &Task, after: &'a Task) -> Vec<Observation<'a>> {
    let mut out = Vec::new();
    if !before.status.is_terminal() && after.status.is_terminal() {
        outcome(after, &mut out);
    }
    let mut requested = 0u64;
    let mut retried = 0u64;
    let mut dispatch_errors = 0u64;
    let mut timed_out = 0u64;
    let mut first_round = [0u64; 2];
    let mut usage = UsageDelta::default();
    for exec in &after.executions {
        let prev = before.executions.iter().find(|e| e.attempt == exec.attempt);
        if prev.is_none() {
            requested += 1;
            if exec.attempt > Attempt::FIRST {
                retried += 1;
            }
        }
        if let Some(dispatched) = exec.dispatched_at
            && prev.is_none_or(|p| p.dispatched_at.is_none())
        {
            out.push(observation(
                after,
                Metric::DispatchLatency,
                millis(exec.requested_at, dispatched),
            ));
        }
        dispatch_errors += u64::from(
            exec.dispatch_failures
                .saturating_sub(prev.map_or(0, |p| p.dispatch_failures)),
        );
        let newly_finished =
            exec.state.is_finished() && !prev.is_some_and(|p| p.state.is_finished());
        if newly_finished {
            match exec.error.as_ref().map(|e| e.code.as_str()) {
                Some(codes::DISPATCH_FAILED) => dispatch_errors += 1,
                Some(codes::TIMEOUT) => timed_out += 1,
                _ => {}
            }
        }
        usage.add(prev.and_then(|p| p.usage.as_ref()), exec.usage.as_ref());
        let first = |e: &Execution| e.metadata.as_ref().and_then(|m| m.first_round_applied);
        if let Some(applied) = first(exec)
            && prev.and_then(first).is_none()
        {
            first_round[usize::from(!applied)] += 1;
        }
    }
    let counts = [
        (Metric::AttemptRequested, requested),
        (Metric::AttemptRetried, retried),
        (Metric::DispatchErrors, dispatch_errors),
        (Metric::AttemptTimedOut, timed_out),
        (Metric::TokensInput, usage.input_tokens),
        (Metric::TokensOutput, usage.output_tokens),
        (Metric::PatchFirstRoundApplied, first_round[0]),
        (Metric::PatchFirstRoundRejected, first_round[1]),
    ];
    for (metric, n) in counts {
        if n > 0 {
            out.push(observation(after, metric, n as f64));
        }
    }
    if usage.cost_usd > 0.0 {
        out.push(observation(after, Metric::CostUsd, usage.cost_usd));
    }
    out
}

/// The EMF values of a new task ([`created_observations`]).
pub fn created_metrics(task: &Task) -> Vec<Datum<'static>> {
    created_observations(task)
        .iter()
        .map(Observation::datum)
        .collect()
}

/// The EMF values of one stored change of a task ([`change_observations`]).
pub fn transition_metrics(before: &Task, after: &Task) -> Vec<Datum<'static>> {
    change_observations(before, after)
        .iter()
        .map(Observation::datum)
        .collect()
}

fn observation(task: &Task, metric: Metric, value: f64) -> Observation<'_> {
    Observation {
        metric,
        value,
        kind: &task.kind,
        outcome: None,
    }
}

/// The count and durations of a task that just ended.
fn outcome<'a>(task: &'a Task, out: &mut Vec<Observation<'a>>) {
    let ended = |metric, value| Observation {
        metric,
        value,
        kind: &task.kind,
        outcome: Some(task.status),
    };
    let metric = match task.status {
        TaskStatus::Completed => Metric::TaskCompleted,
        TaskStatus::Failed => Metric::TaskFailed,
        TaskStatus::NeedsReview => Metric::TaskNeedsReview,
        TaskStatus::Cancelled => {
            out.push(ended(Metric::TaskCancelled, 1.0));
            return;
        }
        _ => return,
    };
    out.push(ended(metric, 1.0));
    let Some(exec) = task.current_execution() else {
        return;
    };
    let Some(end) = exec.finished_at.or(task.completed_at) else {
        return;
    };
    if let Some(started) = run_started_at(task) {
        out.push(ended(Metric::TaskDuration, millis(started, end)));
    }
    if let Some(started) = exec.started_at {
        out.push(ended(Metric::RunnerDuration, millis(started, end)));
    }
}

/// When the run that ended with the current attempt was asked for: the request of the first
/// attempt of its chain of automatic retries. The machine requests an automatic retry in the
/// same change that ends the failed attempt, so the retry's `requested_at` equals the failed
/// attempt's `finished_at`; a user's retry comes later and starts a new run.
fn run_started_at(task: &Task) -> Option<DateTime<Utc>> {
    let mut current: &Execution = task.current_execution()?;
    loop {
        let previous = task.executions.iter().find(|e| {
            e.attempt.next() == current.attempt
                && e.error.as_ref().is_some_and(TaskError::is_infrastructure)
                && e.finished_at == Some(current.requested_at)
        });
        match previous {
            Some(p) => current = p,
            None => return Some(current.requested_at),
        }
    }
}

fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    // Never negative, whatever clocks the writers had.
    (to - from).num_milliseconds().max(0) as f64
}

/// Usage added in one change, summed over attempts.
#[derive(Default)]
struct UsageDelta {
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

impl UsageDelta {
    fn add(&mut self, before: Option<&Usage>, after: Option<&Usage>) {
        let Some(after) = after else {
            return;
        };
        let zero = Usage {
            cost_usd: Some(0.0),
            ..Usage::default()
        };
        let before = before.unwrap_or(&zero);
        self.input_tokens += after.input_tokens.saturating_sub(before.input_tokens);
        self.output_tokens += after.output_tokens.saturating_sub(before.output_tokens);
        // A cost becomes unknown for good once one part of it is (see `Usage::add`); then
        // nothing more is counted for that attempt rather than a wrong amount.
        if let (Some(b), Some(a)) = (before.cost_usd, after.cost_usd)
            && a > b
        {
            self.cost_usd += a - b;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use pj_core::UserId;
    use pj_core::create::{NewTask, RepoPolicy};
    use pj_core::machine::{Input, Policy, RunnerEvent, transition};
    use pj_core::task::RunnerKind;
    use serde_json::json;

    use super::*;

    const A1: Attempt = Attempt(1);
    const A2: Attempt = Attempt(2);

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            runner: RunnerKind::GithubActions,
            ..Policy::default()
        }
    }

    fn new_task(extra: serde_json::Value) -> Task {
        let mut body = json!({"repo_url": "https://github.com/o/r", "prompt": "Add a README"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        NewTask::parse(&body, RepoPolicy::HttpsOnly)
            .unwrap()
            .into_task(UserId::parse("u1").unwrap(), None, 3, t0(), &policy())
            .0
    }

    /// Applies `input` `secs` seconds after t0, as the engine would store it.
    fn at(task: &Task, secs: i64, input: Input) -> Task {
        let mut next = transition(task, &input, t0() + Duration::seconds(secs), &policy())
            .unwrap_or_else(|r| panic!("{input:?} refused on {}: {r:?}", task.status))
            .task;
        next.version = task.version + 1;
        next
    }

    fn value(metrics: &[Datum<'static>], name: &str) -> Option<f64> {
        let found: Vec<_> = metrics.iter().filter(|(n, _, _)| *n == name).collect();
        assert!(found.len() <= 1, "{name} given twice: {metrics:?}");
        found.first().map(|(_, v, _)| *v)
    }

    fn unit(metrics: &[Datum<'static>], name: &str) -> Unit {
        metrics.iter().find(|(n, _, _)| *n == name).unwrap().2
    }

    fn usage(input: u64, output: u64, cost: Option<f64>) -> Option<Usage> {
        Some(Usage {
            input_tokens: input,
            output_tokens: output,
            cost_usd: cost,
            model: Some("gpt-4.1".into()),
        })
    }

    /// Queued at t0, claimed at 2 s, dispatched at 5 s, started at 30 s.
    fn running() -> Task {
        let task = new_task(json!({}));
        let claimed = at(&task, 2, Input::Claim { attempt: A1 });
        let dispatched = at(
            &claimed,
            5,
            Input::Dispatched {
                attempt: A1,
                runner_ref: "run-1".into(),
            },
        );
        at(
            &dispatched,
            30,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Started,
            },
        )
    }

    #[test]
    fn a_new_task_should_count_as_created_with_its_first_attempt() {
        let task = new_task(json!({}));
        assert_eq!(
            created_metrics(&task),
            vec![
                (names::TASK_CREATED, 1.0, Unit::Count),
                (names::ATTEMPT_REQUESTED, 1.0, Unit::Count),
            ]
        );
    }

    #[test]
    fn a_task_created_not_to_run_should_count_its_first_attempt_when_executed() {
        let task = new_task(json!({"execute": false}));
        assert_eq!(
            created_metrics(&task),
            vec![(names::TASK_CREATED, 1.0, Unit::Count)]
        );
        let executed = at(&task, 60, Input::Execute);
        assert_eq!(
            transition_metrics(&task, &executed),
            vec![(names::ATTEMPT_REQUESTED, 1.0, Unit::Count)]
        );
    }

    #[test]
    fn every_observation_should_carry_the_kind_and_an_outcome_its_status() {
        let before = running();
        let after = at(
            &before,
            90,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Completed {
                    branch: Some("pj/x".into()),
                    pr_url: None,
                    usage: usage(1_000, 200, Some(0.03)),
                    metadata: None,
                },
            },
        );
        let observed = change_observations(&before, &after);
        assert!(
            observed.iter().all(|o| o.kind == "code_change"),
            "{observed:?}"
        );
        let with_outcome: Vec<Metric> = observed
            .iter()
            .filter(|o| o.outcome == Some(TaskStatus::Completed))
            .map(|o| o.metric)
            .collect();
        assert_eq!(
            with_outcome,
            [
                Metric::TaskCompleted,
                Metric::TaskDuration,
                Metric::RunnerDuration
            ]
        );
        let without: Vec<Metric> = observed
            .iter()
            .filter(|o| o.outcome.is_none())
            .map(|o| o.metric)
            .collect();
        assert_eq!(
            without,
            [Metric::TokensInput, Metric::TokensOutput, Metric::CostUsd]
        );
    }

    #[test]
    fn the_emf_values_should_be_the_observations_without_their_labels() {
        let before = running();
        let after = at(&before, 700, Input::DeadlinePassed { attempt: A1 });
        let datums: Vec<_> = change_observations(&before, &after)
            .iter()
            .map(|o| (o.metric.name(), o.value, o.metric.unit()))
            .collect();
        assert!(!datums.is_empty());
        assert_eq!(transition_metrics(&before, &after), datums);
    }

    #[test]
    fn every_metric_should_have_one_name_of_its_own() {
        let names: std::collections::BTreeSet<&str> =
            Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        assert_eq!(
            crate::PRODUCT_METRICS
                .iter()
                .map(|(name, _)| *name)
                .collect::<std::collections::BTreeSet<_>>(),
            names
        );
    }

    #[test]
    fn when_the_runner_accepts_the_attempt_should_measure_the_dispatch_latency() {
        let task = new_task(json!({}));
        let claimed = at(&task, 2, Input::Claim { attempt: A1 });
        assert!(transition_metrics(&task, &claimed).is_empty());
        let dispatched = at(
            &claimed,
            5,
            Input::Dispatched {
                attempt: A1,
                runner_ref: "run-1".into(),
            },
        );
        let m = transition_metrics(&claimed, &dispatched);
        assert_eq!(
            m,
            vec![(names::DISPATCH_LATENCY_MS, 5_000.0, Unit::Milliseconds)]
        );
    }

    #[test]
    fn when_a_task_completes_should_count_it_with_durations_and_usage() {
        let before = running();
        let after = at(
            &before,
            90,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Completed {
                    branch: Some("pj/x".into()),
                    pr_url: Some("https://github.com/o/r/pull/1".into()),
                    usage: usage(1_000, 200, Some(0.03)),
                    metadata: None,
                },
            },
        );
        let m = transition_metrics(&before, &after);
        assert_eq!(value(&m, names::TASK_COMPLETED), Some(1.0));
        assert_eq!(value(&m, names::TASK_DURATION_MS), Some(90_000.0));
        assert_eq!(value(&m, names::RUNNER_DURATION_MS), Some(60_000.0));
        assert_eq!(value(&m, names::TOKENS_INPUT), Some(1_000.0));
        assert_eq!(value(&m, names::TOKENS_OUTPUT), Some(200.0));
        assert_eq!(unit(&m, names::TASK_DURATION_MS), Unit::Milliseconds);
        assert_eq!(unit(&m, names::TOKENS_INPUT), Unit::Count);
        assert_eq!(value(&m, names::TASK_FAILED), None);
        assert_eq!(value(&m, names::DISPATCH_LATENCY_MS), None);
    }

    #[test]
    fn cost_should_count_what_an_attempt_added_where_its_price_is_known() {
        let before = running();
        let with_usage = |task: &Task, u: Option<Usage>| {
            let mut next = task.clone();
            next.version += 1;
            next.current_execution_mut().unwrap().usage = u;
            next
        };
        let first = with_usage(&before, usage(100, 10, Some(0.02)));
        let m = transition_metrics(&before, &first);
        assert_eq!(value(&m, names::COST_USD), Some(0.02));
        assert_eq!(unit(&m, names::COST_USD), Unit::None);
        assert_eq!(value(&m, names::TOKENS_INPUT), Some(100.0));

        let more = with_usage(&first, usage(150, 25, Some(0.05)));
        let m = transition_metrics(&first, &more);
        assert!((value(&m, names::COST_USD).unwrap() - 0.03).abs() < 1e-12);
        assert_eq!(value(&m, names::TOKENS_INPUT), Some(50.0));
        assert_eq!(value(&m, names::TOKENS_OUTPUT), Some(15.0));

        // Once a part's price is unknown the sum is unknown: tokens still count, cost does not.
        let unknown = with_usage(&more, usage(180, 30, None));
        let m = transition_metrics(&more, &unknown);
        assert_eq!(value(&m, names::COST_USD), None);
        assert_eq!(value(&m, names::TOKENS_INPUT), Some(30.0));
    }

    #[test]
    fn when_the_agent_fails_should_count_a_failed_task() {
        let before = running();
        let after = at(
            &before,
            40,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Failed {
                    error: TaskError::new(codes::PATCH_FAILED, "no hunk applied"),
                    usage: usage(10, 0, None),
                    metadata: None,
                },
            },
        );
        let m = transition_metrics(&before, &after);
        assert_eq!(value(&m, names::TASK_FAILED), Some(1.0));
        assert_eq!(value(&m, names::TASK_DURATION_MS), Some(40_000.0));
        assert_eq!(value(&m, names::TOKENS_INPUT), Some(10.0));
        // An unknown price is no cost of zero: nothing is sent.
        assert_eq!(value(&m, names::COST_USD), None);
        assert_eq!(value(&m, names::ATTEMPT_RETRIED), None);
    }

    #[test]
    fn when_the_task_needs_review_should_count_it() {
        let before = running();
        let after = at(
            &before,
            50,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::NeedsReview {
                    error: None,
                    branch: Some("pj/x".into()),
                    pr_url: None,
                    usage: None,
                    metadata: None,
                },
            },
        );
        let m = transition_metrics(&before, &after);
        assert_eq!(value(&m, names::TASK_NEEDS_REVIEW), Some(1.0));
        assert_eq!(value(&m, names::TASK_DURATION_MS), Some(50_000.0));
        assert_eq!(value(&m, names::RUNNER_DURATION_MS), Some(20_000.0));
        assert_eq!(value(&m, names::TOKENS_INPUT), None);
    }

    #[test]
    fn when_a_user_cancels_should_count_a_cancellation_only() {
        let before = running();
        let after = at(&before, 45, Input::Cancel);
        assert_eq!(
            transition_metrics(&before, &after),
            vec![(names::TASK_CANCELLED, 1.0, Unit::Count)]
        );
    }

    #[test]
    fn when_a_running_attempt_times_out_should_count_the_timeout_and_the_failure_and_no_retry() {
        let before = running();
        // The deadline is 600 s after the claim at 2 s.
        let after = at(&before, 700, Input::DeadlinePassed { attempt: A1 });
        assert_eq!(after.status, TaskStatus::Failed);
        let m = transition_metrics(&before, &after);
        assert_eq!(value(&m, names::ATTEMPT_TIMED_OUT), Some(1.0));
        assert_eq!(value(&m, names::ATTEMPT_RETRIED), None);
        assert_eq!(value(&m, names::TASK_FAILED), Some(1.0));
    }

    #[test]
    fn when_an_attempt_times_out_before_its_runner_started_should_count_the_timeout_and_the_retry()
    {
        let claimed = at(&new_task(json!({})), 2, Input::Claim { attempt: A1 });
        let before = at(
            &claimed,
            5,
            Input::Dispatched {
                attempt: A1,
                runner_ref: "run-1".into(),
            },
        );
        let after = at(&before, 700, Input::DeadlinePassed { attempt: A1 });
        assert_eq!(after.status, TaskStatus::Queued);
        let m = transition_metrics(&before, &after);
        assert_eq!(value(&m, names::ATTEMPT_TIMED_OUT), Some(1.0));
        assert_eq!(value(&m, names::ATTEMPT_RETRIED), Some(1.0));
        assert_eq!(value(&m, names::TASK_FAILED), None);
    }

    #[test]
    fn a_run_with_automatic_retries_should_last_from_its_first_request() {
        let first = running();
        let retried = at(
            &first,
            100,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Failed {
                    error: TaskError::new(codes::RUNNER_EXITED, "gone"),
                    usage: usage(5, 1, Some(0.001)),
                    metadata: None,
                },
            },
        );
        assert_eq!(retried.attempt, A2);
        let m = transition_metrics(&first, &retried);
        assert_eq!(value(&m, names::ATTEMPT_REQUESTED), Some(1.0));
        assert_eq!(value(&m, names::ATTEMPT_RETRIED), Some(1.0));
        assert_eq!(value(&m, names::TOKENS_INPUT), Some(5.0));

        let claimed = at(&retried, 101, Input::Claim { attempt: A2 });
        let dispatched = at(
            &claimed,
            103,
            Input::Dispatched {
                attempt: A2,
                runner_ref: "run-2".into(),
            },
        );
        assert_eq!(
            value(
                &transition_metrics(&claimed, &dispatched),
                names::DISPATCH_LATENCY_MS
            ),
            Some(3_000.0)
        );
        let started = at(
            &dispatched,
            110,
            Input::Runner {
                attempt: A2,
                event: RunnerEvent::Started,
            },
        );
        let done = at(
            &started,
            200,
            Input::Runner {
                attempt: A2,
                event: RunnerEvent::Completed {
                    branch: None,
                    pr_url: Some("https://github.com/o/r/pull/2".into()),
                    usage: None,
                    metadata: None,
                },
            },
        );
        let m = transition_metrics(&started, &done);
        assert_eq!(value(&m, names::TASK_COMPLETED), Some(1.0));
        assert_eq!(value(&m, names::TASK_DURATION_MS), Some(200_000.0));
        assert_eq!(value(&m, names::RUNNER_DURATION_MS), Some(90_000.0));
    }

    #[test]
    fn a_users_retry_should_start_a_new_run() {
        let before = running();
        let failed = at(
            &before,
            40,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Failed {
                    error: TaskError::new(codes::LLM_FAILED, "no key"),
                    usage: None,
                    metadata: None,
                },
            },
        );
        let retried = at(&failed, 1_000, Input::Retry);
        assert_eq!(
            transition_metrics(&failed, &retried),
            vec![
                (names::ATTEMPT_REQUESTED, 1.0, Unit::Count),
                (names::ATTEMPT_RETRIED, 1.0, Unit::Count),
            ]
        );
        let claimed = at(&retried, 1_001, Input::Claim { attempt: A2 });
        let dispatched = at(
            &claimed,
            1_002,
            Input::Dispatched {
                attempt: A2,
                runner_ref: "run-2".into(),
            },
        );
        let done = at(
            &dispatched,
            1_060,
            Input::Runner {
                attempt: A2,
                event: RunnerEvent::Completed {
                    branch: Some("pj/x".into()),
                    pr_url: None,
                    usage: None,
                    metadata: None,
                },
            },
        );
        let m = transition_metrics(&dispatched, &done);
        assert_eq!(value(&m, names::TASK_DURATION_MS), Some(60_000.0));
        // It completed without ever reporting task.started.
        assert_eq!(value(&m, names::RUNNER_DURATION_MS), None);
    }

    #[test]
    fn when_dispatch_fails_should_count_each_failed_try() {
        let task = new_task(json!({}));
        let claimed = at(&task, 1, Input::Claim { attempt: A1 });
        let deferred = at(
            &claimed,
            2,
            Input::DispatchDeferred {
                attempt: A1,
                error: "GitHub answered 502".into(),
            },
        );
        assert_eq!(
            transition_metrics(&claimed, &deferred),
            vec![(names::DISPATCH_ERRORS, 1.0, Unit::Count)]
        );
        let reclaimed = at(&deferred, 10, Input::Claim { attempt: A1 });
        let failed = at(
            &reclaimed,
            11,
            Input::DispatchFailed {
                attempt: A1,
                error: "GitHub answered 404".into(),
            },
        );
        let m = transition_metrics(&reclaimed, &failed);
        assert_eq!(value(&m, names::DISPATCH_ERRORS), Some(1.0));
        assert_eq!(value(&m, names::ATTEMPT_RETRIED), Some(1.0));
    }

    #[test]
    fn when_the_last_attempt_fails_for_infrastructure_should_count_a_failed_task() {
        let mut task = new_task(json!({}));
        task.max_attempts = 1;
        let claimed = at(&task, 1, Input::Claim { attempt: A1 });
        let failed = at(
            &claimed,
            4,
            Input::DispatchFailed {
                attempt: A1,
                error: "no token".into(),
            },
        );
        assert_eq!(failed.status, TaskStatus::Failed);
        let m = transition_metrics(&claimed, &failed);
        assert_eq!(value(&m, names::TASK_FAILED), Some(1.0));
        assert_eq!(value(&m, names::DISPATCH_ERRORS), Some(1.0));
        assert_eq!(value(&m, names::TASK_DURATION_MS), Some(4_000.0));
        assert_eq!(value(&m, names::ATTEMPT_RETRIED), None);
    }

    #[test]
    fn a_change_without_news_should_count_nothing() {
        let before = running();
        let notified = {
            let done = at(
                &before,
                60,
                Input::Runner {
                    attempt: A1,
                    event: RunnerEvent::Completed {
                        branch: Some("pj/x".into()),
                        pr_url: None,
                        usage: None,
                        metadata: None,
                    },
                },
            );
            (done.clone(), at(&done, 61, Input::Notified { attempt: A1 }))
        };
        assert!(transition_metrics(&notified.0, &notified.1).is_empty());
        assert!(transition_metrics(&before, &before).is_empty());
    }

    fn reported(first_round_applied: Option<bool>) -> Option<pj_core::agent::AgentMetadata> {
        Some(pj_core::agent::AgentMetadata {
            rounds: 2,
            first_round_applied,
            ..Default::default()
        })
    }

    #[test]
    fn the_first_rounds_patch_should_count_once_as_applied_or_not() {
        let before = running();
        let needs_review = at(
            &before,
            90,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::NeedsReview {
                    error: None,
                    branch: None,
                    pr_url: None,
                    usage: None,
                    metadata: reported(Some(false)),
                },
            },
        );
        let metrics = transition_metrics(&before, &needs_review);
        assert_eq!(
            value(&metrics, names::PATCH_FIRST_ROUND_REJECTED),
            Some(1.0)
        );
        assert_eq!(value(&metrics, names::PATCH_FIRST_ROUND_APPLIED), None);
        assert_eq!(
            unit(&metrics, names::PATCH_FIRST_ROUND_REJECTED),
            Unit::Count
        );
        // A later change of the same task does not count it again.
        let notified = at(&needs_review, 95, Input::Notified { attempt: A1 });
        assert!(transition_metrics(&needs_review, &notified).is_empty());

        let completed = at(
            &before,
            90,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Completed {
                    branch: Some("pj/x".into()),
                    pr_url: None,
                    usage: None,
                    metadata: reported(Some(true)),
                },
            },
        );
        let metrics = transition_metrics(&before, &completed);
        assert_eq!(value(&metrics, names::PATCH_FIRST_ROUND_APPLIED), Some(1.0));
        assert_eq!(value(&metrics, names::PATCH_FIRST_ROUND_REJECTED), None);

        // No first reply (the model failed), or no metadata at all: nothing to count.
        let failed = at(
            &before,
            90,
            Input::Runner {
                attempt: A1,
                event: RunnerEvent::Failed {
                    error: TaskError::new(codes::LLM_FAILED, "overloaded"),
                    usage: None,
                    metadata: reported(None),
                },
            },
        );
        let metrics = transition_metrics(&before, &failed);
        assert_eq!(value(&metrics, names::PATCH_FIRST_ROUND_APPLIED), None);
        assert_eq!(value(&metrics, names::PATCH_FIRST_ROUND_REJECTED), None);
    }
}
