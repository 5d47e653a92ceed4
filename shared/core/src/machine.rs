//! The task state machine: one transition function that can refuse.
//!
//! It is pure: given a task, an input and the time, it returns the next task and the effects to
//! carry out, or a refusal. Callers write the result with a compare-and-set on the version, so a
//! duplicate, late or concurrent input can neither lose nor repeat a change.

use chrono::{DateTime, Duration, Utc};

use crate::agent::{AgentMetadata, usd};
use crate::ids::Attempt;
use crate::task::{
    ExecState, Execution, RunnerKind, Step, Task, TaskError, TaskStatus, Trigger, Usage, codes,
};

/// The most attempts one task may have, automatic and user retries together, so a task
/// document (which holds every attempt) stays bounded however often it is retried.
pub const MAX_ATTEMPTS_PER_TASK: u32 = 20;

/// What the machine needs to know of the deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    pub runner: RunnerKind,
    /// Deadline of one attempt, counted from its dispatch.
    pub task_timeout: Duration,
    /// A dispatch with no sign of progress for this long is lost.
    pub lost_dispatch_after: Duration,
    /// How often the sweeper sends a lost dispatch message again before failing the attempt.
    pub max_requeues: u32,
    /// A pending email older than this is sent again.
    pub notify_retry_after: Duration,
    /// `PJ_MAX_COST_USD`: once a task's model spend reaches it, no new attempt of the task is
    /// started (neither an automatic retry nor a user's); runners get it to stop themselves.
    pub max_cost_usd: Option<f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            runner: RunnerKind::Local,
            task_timeout: Duration::seconds(600),
            lost_dispatch_after: Duration::seconds(300),
            max_requeues: 3,
            notify_retry_after: Duration::seconds(300),
            max_cost_usd: None,
        }
    }
}

/// What a runner reports about its attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    Started,
    Progress,
    Completed {
        branch: Option<String>,
        pr_url: Option<String>,
        usage: Option<Usage>,
        metadata: Option<AgentMetadata>,
    },
    Failed {
        error: TaskError,
        usage: Option<Usage>,
        metadata: Option<AgentMetadata>,
    },
    NeedsReview {
        error: Option<TaskError>,
        branch: Option<String>,
        pr_url: Option<String>,
        usage: Option<Usage>,
        metadata: Option<AgentMetadata>,
    },
}

impl RunnerEvent {
    /// Whether the event reports the attempt's outcome.
    pub fn is_final(&self) -> bool {
        !matches!(self, RunnerEvent::Started | RunnerEvent::Progress)
    }

    /// What the agent did, as a final event tells it.
    pub fn metadata(&self) -> Option<&AgentMetadata> {
        match self {
            RunnerEvent::Started | RunnerEvent::Progress => None,
            RunnerEvent::Completed { metadata, .. }
            | RunnerEvent::Failed { metadata, .. }
            | RunnerEvent::NeedsReview { metadata, .. } => metadata.as_ref(),
        }
    }
}

/// How an attempt of a built-in kind ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KindOutcome {
    pub result: Option<serde_json::Value>,
    pub summary: Option<String>,
    pub steps: Vec<Step>,
    /// `None`: completed.
    pub error: Option<TaskError>,
    /// For a failure that may pass: the backoff before the next attempt (already no sooner
    /// than the target's `Retry-After`). `None`: the failure is final.
    pub retry_after: Option<std::time::Duration>,
    /// What the attempt's model calls used (the browser kinds' instructions).
    pub usage: Option<crate::task::Usage>,
}

/// The backoff before automatic retry `n` (1 for the first) of a built-in kind: 2 s doubling,
/// at most 10 minutes, times `jitter` (drawn from 0.8..1.2 by the caller, so this stays pure),
/// and never sooner than `floor` (a `Retry-After`, honoured up to a day).
pub fn retry_backoff(
    n: u32,
    floor: Option<std::time::Duration>,
    jitter: f64,
) -> std::time::Duration {
    use std::time::Duration as Std;
    let exp = 2u32.saturating_pow(n.saturating_sub(1).min(16));
    let base = Std::from_secs(2)
        .saturating_mul(exp)
        .min(Std::from_secs(600));
    let floor = floor.unwrap_or_default().min(Std::from_secs(86_400));
    base.mul_f64(jitter.clamp(0.5, 1.5)).max(floor)
}

/// Everything that can change a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A user asks to dispatch a queued task.
    Execute,
    /// A user approves a task that waits for review.
    Approve,
    /// A user cancels.
    Cancel,
    /// A user starts a new attempt of a finished task.
    Retry,
    /// The sweeper found a scheduled task due.
    ScheduleDue,
    /// A dispatcher takes the attempt and is about to start its runner.
    Claim { attempt: Attempt },
    /// The runner accepted the attempt.
    Dispatched {
        attempt: Attempt,
        runner_ref: String,
    },
    /// Starting the runner failed for a reason that may pass; the message will come again.
    DispatchDeferred { attempt: Attempt, error: String },
    /// Starting the runner failed for good, or too often.
    DispatchFailed { attempt: Attempt, error: String },
    /// The runner cannot be started as things are (bad credentials, a missing sandbox snapshot,
    /// a runner command that does not exist): the task fails at once, since another attempt
    /// would fail the same way.
    DispatchRefused { attempt: Attempt, error: String },
    /// The sweeper sent a lost dispatch message again.
    Requeue { attempt: Attempt },
    /// A dispatcher looked at the attempt and found no room to start it (the running limits):
    /// the attempt is not lost, it waits its turn.
    AwaitCapacity { attempt: Attempt },
    /// A signed event from the attempt's runner.
    Runner {
        attempt: Attempt,
        event: RunnerEvent,
    },
    /// The runner's process ended without a final event.
    RunnerExited { attempt: Attempt, detail: String },
    /// The sweeper found the attempt past its deadline.
    DeadlinePassed { attempt: Attempt },
    /// The completion email of the attempt went out.
    Notified { attempt: Attempt },
    /// The sweeper asked again for an email that did not go out in time.
    NotifyRequeue { attempt: Attempt },
    /// The completion email of the attempt can never be sent (the mailer refused the address
    /// for good). The task keeps its status; the email is recorded as not sent.
    NotifyFailed { attempt: Attempt },
    /// The backend finished running an attempt of a built-in kind.
    Finished {
        attempt: Attempt,
        outcome: KindOutcome,
    },
    /// A signed runner callback for this task was refused (counted for reports only).
    CallbackRefused,
}

/// Work that must follow a stored transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send the dispatch message of this attempt.
    Dispatch(Attempt),
    /// Send the dispatch message of this attempt after a backoff (an automatic retry).
    DispatchLater(Attempt, std::time::Duration),
    /// Send the completion email of this attempt.
    Notify(Attempt),
    /// Stop the runner of this attempt where the runner allows it.
    StopRunner {
        attempt: Attempt,
        runner: RunnerKind,
        runner_ref: Option<String>,
    },
}

/// An accepted input: the next task and what must follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub task: Task,
    pub effects: Vec<Effect>,
}

/// A refused input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The input's change is already there (a duplicate); answer as if it had been applied.
    AlreadyDone,
    /// The input is not allowed in the task's state (`409`).
    Conflict(String),
}

/// Applies `input` to `task` at `now`.
pub fn transition(
    task: &Task,
    input: &Input,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Transition, Refusal> {
    let mut next = task.clone();
    let mut effects = Vec::new();
    match input {
        Input::Execute => {
            if task.status != TaskStatus::Queued {
                return Err(conflict_status(task, "executed"));
            }
            if task
                .current_execution()
                .is_some_and(|e| !e.state.is_finished())
            {
                return Err(Refusal::AlreadyDone);
            }
            request_dispatch(&mut next, &mut effects, now, policy, Trigger::Execute);
        }
        Input::Approve => {
            if task.status != TaskStatus::PendingReview {
                return Err(conflict_status(task, "approved"));
            }
            if task.scheduled_for.is_some_and(|at| at > now) {
                next.status = TaskStatus::Scheduled;
            } else {
                request_dispatch(&mut next, &mut effects, now, policy, Trigger::Approve);
            }
        }
        Input::ScheduleDue => {
            if task.status != TaskStatus::Scheduled {
                return Err(Refusal::AlreadyDone);
            }
            if task.scheduled_for.is_some_and(|at| at > now) {
                return Err(Refusal::Conflict("the task is not due yet".into()));
            }
            request_dispatch(&mut next, &mut effects, now, policy, Trigger::Schedule);
        }
        Input::Cancel => {
            if task.status.is_terminal() {
                return Err(conflict_status(task, "cancelled"));
            }
            next.status = TaskStatus::Cancelled;
            next.completed_at = Some(now);
            if let Some(exec) = next.current_execution_mut()
                && !exec.state.is_finished()
            {
                if exec.state.may_have_runner() {
                    effects.push(Effect::StopRunner {
                        attempt: exec.attempt,
                        runner: exec.runner,
                        runner_ref: exec.runner_ref.clone(),
                    });
                }
                exec.state = ExecState::Cancelled;
                exec.finished_at = Some(now);
            }
        }
        Input::Retry => {
            if !matches!(
                task.status,
                TaskStatus::Failed | TaskStatus::NeedsReview | TaskStatus::Cancelled
            ) {
                return Err(conflict_status(task, "retried"));
            }
            if task.attempt.0 >= MAX_ATTEMPTS_PER_TASK {
                return Err(Refusal::Conflict(format!(
                    "the task has had {MAX_ATTEMPTS_PER_TASK} attempts, the most one task may \
                     have; create a new task"
                )));
            }
            if let Some(reached) = budget_reached(task, policy) {
                return Err(Refusal::Conflict(format!(
                    "{}; no new attempt is started",
                    reached.message
                )));
            }
            next.attempt = task.attempt.next();
            next.error = None;
            next.completed_at = None;
            next.started_at = None;
            request_dispatch(&mut next, &mut effects, now, policy, Trigger::Retry);
        }
        Input::Claim { attempt } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if exec.state != ExecState::Requested {
                return Err(Refusal::Conflict(format!(
                    "attempt {attempt} is {}, not waiting for dispatch",
                    exec.state.as_str()
                )));
            }
            exec.state = ExecState::Claimed;
            exec.touched_at = now;
            exec.deadline = Some(now + policy.task_timeout);
        }
        Input::Dispatched {
            attempt,
            runner_ref,
        } => {
            let exec = execution_mut(&mut next, *attempt)?;
            if exec.state.is_finished() {
                // The attempt ended while its runner was being started. If nobody will hear
                // from that runner again, the caller must stop it.
                let abandoned = exec.state == ExecState::Cancelled
                    || exec
                        .error
                        .as_ref()
                        .is_some_and(TaskError::is_infrastructure);
                return Err(if abandoned {
                    Refusal::Conflict(format!("attempt {attempt} already ended"))
                } else {
                    Refusal::AlreadyDone
                });
            }
            if exec.runner_ref.as_deref() == Some(runner_ref.as_str())
                && exec.state != ExecState::Claimed
            {
                return Err(Refusal::AlreadyDone);
            }
            match exec.state {
                ExecState::Claimed => exec.state = ExecState::Dispatched,
                // The runner said it started before its dispatch was recorded.
                ExecState::Running => {}
                other => {
                    return Err(Refusal::Conflict(format!(
                        "attempt {attempt} is {}, not being dispatched",
                        other.as_str()
                    )));
                }
            }
            exec.runner_ref = Some(runner_ref.clone());
            exec.dispatched_at.get_or_insert(now);
            exec.touched_at = now;
        }
        Input::DispatchDeferred { attempt, error } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if exec.state != ExecState::Claimed {
                return Err(Refusal::Conflict(format!(
                    "attempt {attempt} is {}, not being dispatched",
                    exec.state.as_str()
                )));
            }
            exec.state = ExecState::Requested;
            exec.deadline = None;
            exec.dispatch_failures += 1;
            exec.last_dispatch_error = Some(error.clone());
            exec.touched_at = now;
        }
        Input::DispatchFailed { attempt, error } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if !matches!(exec.state, ExecState::Requested | ExecState::Claimed) {
                return Err(Refusal::AlreadyDone);
            }
            exec.last_dispatch_error = Some(error.clone());
            let failure = TaskError::new(codes::DISPATCH_FAILED, error.clone());
            infrastructure_failure(&mut next, &mut effects, failure, None, now, policy);
        }
        Input::DispatchRefused { attempt, error } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if !matches!(exec.state, ExecState::Requested | ExecState::Claimed) {
                return Err(Refusal::AlreadyDone);
            }
            exec.last_dispatch_error = Some(error.clone());
            let failure = TaskError::new(codes::DISPATCH_FAILED, error.clone());
            finish(
                &mut next,
                &mut effects,
                TaskStatus::Failed,
                Some(failure),
                &None,
                now,
            );
        }
        Input::Requeue { attempt } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if exec.state != ExecState::Requested {
                return Err(Refusal::AlreadyDone);
            }
            exec.requeues += 1;
            exec.touched_at = now;
            effects.push(Effect::Dispatch(*attempt));
        }
        Input::AwaitCapacity { attempt } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if exec.state != ExecState::Requested {
                return Err(Refusal::AlreadyDone);
            }
            // One write per quarter of the lost-dispatch time is enough to keep the sweeper
            // from calling a waiting dispatch lost.
            if exec.touched_at + policy.lost_dispatch_after / 4 > now {
                return Err(Refusal::AlreadyDone);
            }
            exec.touched_at = now;
            exec.requeues = 0;
        }
        Input::Runner { attempt, event } => {
            if task.status.is_terminal() {
                return Err(Refusal::Conflict(format!(
                    "the task is already {}",
                    task.status
                )));
            }
            if *attempt != task.attempt {
                return Err(Refusal::Conflict(format!(
                    "the event is for attempt {attempt}; the current attempt is {}",
                    task.attempt
                )));
            }
            let exec = current_open_execution(&mut next, *attempt)?;
            if exec.runner != RunnerKind::Builtin {
                next.callbacks.accepted = next.callbacks.accepted.saturating_add(1);
            }
            let exec = current_open_execution(&mut next, *attempt)?;
            // A sandbox stays up after its agent reported the outcome: it is released then.
            if event.is_final() && exec.runner.outlives_its_run() {
                effects.push(Effect::StopRunner {
                    attempt: exec.attempt,
                    runner: exec.runner,
                    runner_ref: exec.runner_ref.clone(),
                });
            }
            if let Some(metadata) = event.metadata() {
                exec.metadata = Some(metadata.clone());
            }
            match event {
                RunnerEvent::Progress => return Err(Refusal::AlreadyDone),
                RunnerEvent::Started => {
                    if exec.state == ExecState::Running {
                        return Err(Refusal::AlreadyDone);
                    }
                    exec.state = ExecState::Running;
                    exec.started_at = Some(now);
                    exec.touched_at = now;
                    next.status = TaskStatus::Running;
                    next.started_at = Some(now);
                }
                RunnerEvent::Completed {
                    branch,
                    pr_url,
                    usage,
                    ..
                } => {
                    set_delivery(&mut next, branch, pr_url);
                    finish(
                        &mut next,
                        &mut effects,
                        TaskStatus::Completed,
                        None,
                        usage,
                        now,
                    );
                }
                RunnerEvent::NeedsReview {
                    error,
                    branch,
                    pr_url,
                    usage,
                    ..
                } => {
                    set_delivery(&mut next, branch, pr_url);
                    let error = error.clone().unwrap_or_else(|| {
                        TaskError::new("needs_review", "the change needs a person to review it")
                    });
                    finish(
                        &mut next,
                        &mut effects,
                        TaskStatus::NeedsReview,
                        Some(error),
                        usage,
                        now,
                    );
                }
                RunnerEvent::Failed { error, usage, .. } => {
                    // A runner that reports its own timeout has run its agent: another
                    // attempt would spend the model budget again, as after `DeadlinePassed`
                    // on a running attempt.
                    if error.is_infrastructure() && error.code != codes::TIMEOUT {
                        infrastructure_failure(
                            &mut next,
                            &mut effects,
                            error.clone(),
                            usage.as_ref(),
                            now,
                            policy,
                        );
                    } else {
                        finish(
                            &mut next,
                            &mut effects,
                            TaskStatus::Failed,
                            Some(error.clone()),
                            usage,
                            now,
                        );
                    }
                }
            }
        }
        Input::RunnerExited { attempt, detail } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            if !exec.state.may_have_runner() {
                return Err(Refusal::AlreadyDone);
            }
            if exec.state == ExecState::Running && exec.deadline.is_some_and(|d| d <= now) {
                // Killed for its deadline (the local runner does so when the sweeper is late):
                // the same timeout as `DeadlinePassed`.
                deadline_reached(&mut next, &mut effects, true, now, policy);
            } else {
                let failure = TaskError::new(
                    codes::RUNNER_EXITED,
                    format!("the runner exited without reporting a result ({detail})"),
                );
                infrastructure_failure(&mut next, &mut effects, failure, None, now, policy);
            }
        }
        Input::DeadlinePassed { attempt } => {
            let exec = current_open_execution(&mut next, *attempt)?;
            let due = exec.deadline.is_some_and(|d| d <= now);
            if !exec.state.may_have_runner() || !due {
                return Err(Refusal::Conflict(format!(
                    "attempt {attempt} is not past its deadline"
                )));
            }
            effects.push(Effect::StopRunner {
                attempt: exec.attempt,
                runner: exec.runner,
                runner_ref: exec.runner_ref.clone(),
            });
            let was_running = exec.state == ExecState::Running;
            if exec.runner == RunnerKind::Builtin {
                // The worker running it stopped or hung: no model budget was spent, and a
                // timeout of these kinds may pass.
                let failure = timeout_error(policy);
                let delay = retry_backoff(task.attempt.0, None, 1.0);
                retry_or_fail(&mut next, &mut effects, failure, delay, now, policy);
            } else {
                deadline_reached(&mut next, &mut effects, was_running, now, policy);
            }
        }
        Input::Finished { attempt, outcome } => {
            if task.status.is_terminal() {
                return Err(Refusal::Conflict(format!(
                    "the task is already {}",
                    task.status
                )));
            }
            let exec = current_open_execution(&mut next, *attempt)?;
            if exec.runner != RunnerKind::Builtin {
                return Err(Refusal::Conflict(format!(
                    "attempt {attempt} is not run by the backend"
                )));
            }
            if exec.started_at.is_none() {
                exec.started_at = Some(now);
            }
            exec.result_summary = outcome.summary.clone();
            exec.steps = outcome.steps.clone();
            if outcome.result.is_some() {
                exec.result = outcome.result.clone();
                // One full result per task document: the earlier attempts keep their summary.
                for earlier in next.executions.iter_mut().filter(|e| e.attempt != *attempt) {
                    earlier.result = None;
                }
            }
            next.result = outcome.result.clone();
            next.result_summary = outcome.summary.clone();
            add_usage(&mut next, outcome.usage.as_ref());
            match (&outcome.error, outcome.retry_after) {
                (None, _) => finish(
                    &mut next,
                    &mut effects,
                    TaskStatus::Completed,
                    None,
                    &None,
                    now,
                ),
                (Some(error), Some(delay)) => {
                    retry_or_fail(&mut next, &mut effects, error.clone(), delay, now, policy);
                }
                (Some(error), None) => finish(
                    &mut next,
                    &mut effects,
                    TaskStatus::Failed,
                    Some(error.clone()),
                    &None,
                    now,
                ),
            }
        }
        Input::CallbackRefused => {
            next.callbacks.refused = next.callbacks.refused.saturating_add(1);
        }
        Input::Notified { attempt } => {
            if !task.notify_pending.contains(attempt) {
                return Err(Refusal::AlreadyDone);
            }
            next.notify_pending.retain(|a| a != attempt);
            if !next.notified.contains(attempt) {
                next.notified.push(*attempt);
            }
        }
        Input::NotifyFailed { attempt } => {
            if !task.notify_pending.contains(attempt) {
                return Err(Refusal::AlreadyDone);
            }
            next.notify_pending.retain(|a| a != attempt);
            if !next.notify_failed.contains(attempt) {
                next.notify_failed.push(*attempt);
            }
        }
        Input::NotifyRequeue { attempt } => {
            if !task.notify_pending.contains(attempt) {
                return Err(Refusal::AlreadyDone);
            }
            next.notify_touched_at = Some(now);
            effects.push(Effect::Notify(*attempt));
        }
    }
    next.updated_at = now;
    next.sweep_at = sweep_at(&next, policy);
    Ok(Transition {
        task: next,
        effects,
    })
}

fn timeout_error(policy: &Policy) -> TaskError {
    TaskError::new(
        codes::TIMEOUT,
        format!(
            "the attempt did not finish within {} seconds",
            policy.task_timeout.num_seconds()
        ),
    )
}

fn conflict_status(task: &Task, verb: &str) -> Refusal {
    Refusal::Conflict(format!("a task that is {} cannot be {verb}", task.status))
}

/// The execution of `attempt`, which must be the current one of a task still under way.
fn current_open_execution(task: &mut Task, attempt: Attempt) -> Result<&mut Execution, Refusal> {
    if task.status.is_terminal() {
        return Err(Refusal::Conflict(format!(
            "the task is already {}",
            task.status
        )));
    }
    if attempt != task.attempt {
        return Err(Refusal::Conflict(format!(
            "attempt {attempt} is not the current attempt ({})",
            task.attempt
        )));
    }
    let exec = execution_mut(task, attempt)?;
    if exec.state.is_finished() {
        return Err(Refusal::Conflict(format!(
            "attempt {attempt} already ended"
        )));
    }
    Ok(exec)
}

fn execution_mut(task: &mut Task, attempt: Attempt) -> Result<&mut Execution, Refusal> {
    task.executions
        .iter_mut()
        .find(|e| e.attempt == attempt)
        .ok_or_else(|| Refusal::Conflict(format!("attempt {attempt} was never dispatched")))
}

/// Who runs a task's attempts: the deployment's runner for a code change, the backend itself
/// for the built-in kinds.
pub fn runner_for(task: &Task, policy: &Policy) -> RunnerKind {
    if task.task_kind().is_builtin() {
        RunnerKind::Builtin
    } else {
        policy.runner
    }
}

/// Queues the current attempt and asks for its dispatch message.
fn request_dispatch(
    task: &mut Task,
    effects: &mut Vec<Effect>,
    now: DateTime<Utc>,
    policy: &Policy,
    trigger: Trigger,
) {
    task.status = TaskStatus::Queued;
    let runner = runner_for(task, policy);
    task.executions
        .push(Execution::requested(task.attempt, runner, trigger, now));
    effects.push(Effect::Dispatch(task.attempt));
}

/// A failure of a built-in kind that may pass: a new attempt after `delay` while attempts
/// remain, else the task fails.
fn retry_or_fail(
    task: &mut Task,
    effects: &mut Vec<Effect>,
    error: TaskError,
    delay: std::time::Duration,
    now: DateTime<Utc>,
    policy: &Policy,
) {
    if task.attempt.0 >= task.max_attempts.min(MAX_ATTEMPTS_PER_TASK) {
        finish(task, effects, TaskStatus::Failed, Some(error), &None, now);
        return;
    }
    if let Some(exec) = task.current_execution_mut() {
        exec.state = ExecState::Failed;
        exec.finished_at = Some(now);
        exec.error = Some(error);
    }
    task.attempt = task.attempt.next();
    task.started_at = None;
    task.status = TaskStatus::Queued;
    let due = now + Duration::from_std(delay).unwrap_or(Duration::days(1));
    let mut exec = Execution::requested(
        task.attempt,
        runner_for(task, policy),
        Trigger::AutomaticRetry,
        now,
    );
    exec.not_before = Some(due);
    // The lost-dispatch clock starts when the attempt is due, not while it waits its backoff.
    exec.touched_at = due;
    task.executions.push(exec);
    effects.push(Effect::DispatchLater(task.attempt, delay));
}

fn set_delivery(task: &mut Task, branch: &Option<String>, pr_url: &Option<String>) {
    if let Some(branch) = branch {
        task.branch = branch.clone();
    }
    if pr_url.is_some() {
        task.pr_url = pr_url.clone();
    }
}

fn add_usage(task: &mut Task, usage: Option<&Usage>) {
    if let Some(usage) = usage {
        task.usage = task.usage.add(usage);
        if let Some(exec) = task.current_execution_mut() {
            exec.usage = Some(exec.usage.clone().unwrap_or_default().add(usage));
        }
    }
}

/// Ends the current attempt and the task for good: an agent outcome, a refused dispatch, the
/// last attempt's infrastructure failure, or a timeout after `task.started`.
fn finish(
    task: &mut Task,
    effects: &mut Vec<Effect>,
    status: TaskStatus,
    error: Option<TaskError>,
    usage: &Option<Usage>,
    now: DateTime<Utc>,
) {
    add_usage(task, usage.as_ref());
    let attempt = task.attempt;
    if let Some(exec) = task.current_execution_mut() {
        exec.state = match status {
            TaskStatus::Completed => ExecState::Completed,
            TaskStatus::NeedsReview => ExecState::NeedsReview,
            _ => ExecState::Failed,
        };
        exec.finished_at = Some(now);
        exec.error = error.clone();
    }
    task.status = status;
    task.error = error;
    task.completed_at = Some(now);
    task.notify_pending.push(attempt);
    task.notify_touched_at = Some(now);
    effects.push(Effect::Notify(attempt));
}

/// The current attempt reached its deadline. After the runner's `task.started` the agent was at
/// work, and a second try would spend the model budget again on the same work: the task fails.
/// Before it nothing was spent: an infrastructure failure, which starts a new attempt while
/// attempts remain.
fn deadline_reached(
    task: &mut Task,
    effects: &mut Vec<Effect>,
    was_running: bool,
    now: DateTime<Utc>,
    policy: &Policy,
) {
    let failure = timeout_error(policy);
    if was_running {
        finish(task, effects, TaskStatus::Failed, Some(failure), &None, now);
    } else {
        infrastructure_failure(task, effects, failure, None, now, policy);
    }
}

/// Ends the current attempt with an infrastructure failure: a new attempt while the budget
/// lasts, else the task fails.
fn infrastructure_failure(
    task: &mut Task,
    effects: &mut Vec<Effect>,
    error: TaskError,
    usage: Option<&Usage>,
    now: DateTime<Utc>,
    policy: &Policy,
) {
    add_usage(task, usage);
    if let Some(exec) = task.current_execution_mut() {
        exec.state = ExecState::Failed;
        exec.finished_at = Some(now);
        exec.error = Some(error.clone());
    }
    let budget = budget_reached(task, policy);
    if task.attempt.0 < task.max_attempts.min(MAX_ATTEMPTS_PER_TASK) && budget.is_none() {
        task.attempt = task.attempt.next();
        task.started_at = None;
        request_dispatch(task, effects, now, policy, Trigger::AutomaticRetry);
    } else {
        let status = TaskStatus::Failed;
        finish(task, effects, status, Some(error.clone()), &None, now);
        // The attempt keeps its own cause; the task says why no attempt follows.
        if let Some(reached) = budget {
            task.error = Some(TaskError::new(
                codes::BUDGET_EXCEEDED,
                format!(
                    "{}; no new attempt is started after this one's {} ({})",
                    reached.message, error.code, error.message
                ),
            ));
        }
    }
}

/// What a task's model calls cost so far, in US dollars: the attempts whose cost is known (a
/// model without a price counts nothing).
pub fn model_spend_usd(task: &Task) -> f64 {
    // A fold from +0: an empty `sum()` of floats is -0, which would read "-0" to a runner.
    let by_attempt = task
        .executions
        .iter()
        .filter_map(|e| e.usage.as_ref()?.cost_usd)
        .fold(0.0, |sum, cost| sum + cost);
    by_attempt.max(task.usage.cost_usd.unwrap_or(0.0))
}

/// The `budget_exceeded` error when the task's model spend has reached `PJ_MAX_COST_USD`.
pub fn budget_reached(task: &Task, policy: &Policy) -> Option<TaskError> {
    let cap = policy.max_cost_usd?;
    let spent = model_spend_usd(task);
    // Costs are whole millionths of a dollar; a sum of them may fall a hair short in floats.
    (spent + 1e-9 >= cap).then(|| {
        TaskError::new(
            codes::BUDGET_EXCEEDED,
            format!(
                "the task's model spend, {}, reached PJ_MAX_COST_USD ({})",
                usd(spent),
                usd(cap)
            ),
        )
    })
}

/// When the sweeper should look at the task next: a due schedule, a deadline, a dispatch that
/// may be lost, or an email that may not have gone out.
pub fn sweep_at(task: &Task, policy: &Policy) -> Option<DateTime<Utc>> {
    let mut at: Option<DateTime<Utc>> = None;
    let mut consider = |t: DateTime<Utc>| at = Some(at.map_or(t, |a| a.min(t)));
    if task.status == TaskStatus::Scheduled
        && let Some(when) = task.scheduled_for
    {
        consider(when);
    }
    if !task.status.is_terminal()
        && let Some(exec) = task.current_execution()
    {
        match exec.state {
            ExecState::Requested => consider(exec.touched_at + policy.lost_dispatch_after),
            ExecState::Claimed => {
                consider(exec.touched_at + policy.lost_dispatch_after);
                if let Some(d) = exec.deadline {
                    consider(d);
                }
            }
            ExecState::Dispatched | ExecState::Running => {
                if let Some(d) = exec.deadline {
                    consider(d);
                }
            }
            _ => {}
        }
    }
    if !task.notify_pending.is_empty() {
        consider(task.notify_touched_at.unwrap_or(task.updated_at) + policy.notify_retry_after);
    }
    at
}

/// What the sweeper should do with a task at `now`, if anything.
pub fn sweep_input(task: &Task, now: DateTime<Utc>, policy: &Policy) -> Option<Input> {
    if task.status == TaskStatus::Scheduled {
        return task
            .scheduled_for
            .is_none_or(|at| at <= now)
            .then_some(Input::ScheduleDue);
    }
    if task.status.is_terminal() {
        return None;
    }
    let exec = task.current_execution()?;
    let attempt = exec.attempt;
    let past_deadline = exec.deadline.is_some_and(|d| d <= now);
    let stale = exec.touched_at + policy.lost_dispatch_after <= now;
    match exec.state {
        ExecState::Dispatched | ExecState::Running | ExecState::Claimed if past_deadline => {
            Some(Input::DeadlinePassed { attempt })
        }
        ExecState::Claimed if stale => Some(Input::DispatchFailed {
            attempt,
            error: "the dispatch of this attempt was interrupted and its outcome is unknown".into(),
        }),
        ExecState::Requested if stale && exec.requeues >= policy.max_requeues => {
            Some(Input::DispatchFailed {
                attempt,
                error: exec
                    .last_dispatch_error
                    .clone()
                    .unwrap_or_else(|| "the dispatch message was lost too many times".into()),
            })
        }
        ExecState::Requested if stale => Some(Input::Requeue { attempt }),
        _ => None,
    }
}

/// The pending email the sweeper should ask for again, if one is overdue.
pub fn overdue_notification(task: &Task, now: DateTime<Utc>, policy: &Policy) -> Option<Input> {
    let asked = task.notify_touched_at.unwrap_or(task.updated_at);
    let attempt = *task.notify_pending.first()?;
    (asked + policy.notify_retry_after <= now).then_some(Input::NotifyRequeue { attempt })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod budget_tests;
