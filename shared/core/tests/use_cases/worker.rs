//! `Dispatcher`, `Notifier` and `Sweeper`.

use std::time::Duration;

use chrono::Duration as Span;
use pj_core::capacity::Capacity;
use pj_core::engine::Settings;
use pj_core::ids::Attempt;
use pj_core::machine::{Input, Policy, transition};
use pj_core::messages::MessageStatus;
use pj_core::ports::{DispatchError, QueueMessage, QueueName};
use pj_core::task::{ExecState, TaskStatus, codes};
use pj_core::time::{Clock, rfc3339};
use pj_core::worker::{CAPACITY_POLL, Disposition};
use pj_core::{Principal, TaskId};
use serde_json::json;

use crate::fakes::{MailAnswer, Sent};
use crate::{World, alice, bob, body, dispatch, notify, t0};

fn per_user(n: u32) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.capacity = Capacity {
            per_user: Some(n),
            total: None,
        }
    }
}

/// Creates a task a second after the one before, so the order of the line is the order of
/// creation.
async fn create_for(world: &World, who: &Principal) -> TaskId {
    world.clock.advance(Span::seconds(1));
    world
        .api
        .create(who, &body(json!({})), None)
        .await
        .expect("created")
        .0
        .id
}

fn started_ids(world: &World) -> Vec<TaskId> {
    world
        .runner
        .started()
        .into_iter()
        .map(|(job, _)| job.task_id)
        .collect()
}

#[tokio::test]
async fn a_dispatch_claims_the_attempt_before_it_starts_the_runner_with_the_contract_environment() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;

    assert_eq!(world.dispatch_sent().await, vec![Disposition::Done]);

    let started = world.runner.started();
    assert_eq!(started.len(), 1);
    let (job, state_at_start) = &started[0];
    assert_eq!(*state_at_start, ExecState::Claimed, "claimed, then started");
    assert_eq!(job.attempt, Attempt(1));
    let deadline = t0() + Span::seconds(600);
    assert_eq!(job.deadline, deadline);
    assert_eq!(job.env.get("TASK_ID"), Some(task.id.as_str()));
    assert_eq!(job.env.get("TASK_ATTEMPT"), Some("1"));
    assert_eq!(
        job.env.get("TASK_DEADLINE"),
        Some(rfc3339(deadline).as_str())
    );
    assert!(
        job.env
            .get("WEBHOOK_SECRET")
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let exec = world.task(&task.id).current_execution().unwrap().clone();
    assert_eq!(exec.state, ExecState::Dispatched);
    assert_eq!(exec.runner_ref.as_deref(), Some("pid:1"));
}

#[tokio::test]
async fn a_dispatch_message_that_comes_again_starts_no_second_runner() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.dispatch_sent().await;

    let again = world.dispatcher.handle(&dispatch(&task.id, 1), 2).await;

    assert_eq!(again, Disposition::Done);
    assert_eq!(world.runner.started().len(), 1);
}

#[tokio::test]
async fn a_permanent_dispatch_error_fails_the_task_at_once_and_sends_its_email_message() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.runner.answer_next(Err(DispatchError::Permanent {
        message: "the runner command does not exist".into(),
    }));

    assert_eq!(world.dispatch_sent().await, vec![Disposition::Done]);

    let failed = world.task(&task.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.attempt,
        Attempt(1),
        "no attempt spent on the same error"
    );
    assert_eq!(failed.error.as_ref().unwrap().code, codes::DISPATCH_FAILED);
    assert_eq!(world.queue.take_messages(), vec![notify(&task.id, 1)]);
}

#[tokio::test]
async fn a_retryable_dispatch_error_puts_the_attempt_back_and_asks_for_the_message_later() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.runner.answer_next(Err(DispatchError::Retryable {
        message: "throttled".into(),
        retry_after: Some(Duration::from_secs(30)),
    }));

    let disposition = world.dispatch_sent().await;

    match disposition.as_slice() {
        [Disposition::RetryAfter(after)] => assert!(*after >= Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    let exec = world.task(&task.id).current_execution().unwrap().clone();
    assert_eq!(exec.state, ExecState::Requested);
    assert_eq!(exec.dispatch_failures, 1);
    assert!(
        world.queue.take().is_empty(),
        "the same message comes again"
    );

    // It comes again and the runner starts.
    assert_eq!(
        world.dispatcher.handle(&dispatch(&task.id, 1), 2).await,
        Disposition::Done
    );
    assert_eq!(
        world.task(&task.id).current_execution().unwrap().state,
        ExecState::Dispatched
    );
}

#[tokio::test]
async fn a_retryable_dispatch_error_on_the_last_receive_fails_the_attempt_and_starts_the_next() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.queue.take();
    let last = Settings::default().dispatch_max_receives;
    world.runner.answer_next(Err(DispatchError::Retryable {
        message: "throttled".into(),
        retry_after: None,
    }));

    let disposition = world.dispatcher.handle(&dispatch(&task.id, 1), last).await;

    assert_eq!(disposition, Disposition::Done);
    let next = world.task(&task.id);
    assert_eq!(next.attempt, Attempt(2));
    assert_eq!(
        next.executions[0].error.as_ref().unwrap().code,
        codes::DISPATCH_FAILED
    );
    assert_eq!(world.queue.take_messages(), vec![dispatch(&task.id, 2)]);
}

#[tokio::test]
async fn a_claimed_but_interrupted_dispatch_fails_its_attempt_and_never_starts_it_twice() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.queue.take();
    // A dispatcher claimed the attempt and was cut off before it could say what happened.
    world
        .dispatcher
        .engine
        .apply(
            &task.id,
            &Input::Claim {
                attempt: Attempt(1),
            },
            None,
        )
        .await
        .unwrap();

    let disposition = world.dispatcher.handle(&dispatch(&task.id, 1), 2).await;

    assert_eq!(disposition, Disposition::Done);
    assert!(
        world.runner.started().is_empty(),
        "the attempt is not started again"
    );
    let next = world.task(&task.id);
    assert_eq!(next.attempt, Attempt(2));
    assert_eq!(next.executions[0].state, ExecState::Failed);
    assert_eq!(
        next.executions[0].error.as_ref().unwrap().code,
        codes::DISPATCH_FAILED
    );
    assert_eq!(world.queue.take_messages(), vec![dispatch(&task.id, 2)]);
}

#[tokio::test]
async fn a_dispatch_message_for_an_attempt_cancelled_after_its_claim_starts_no_runner() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world
        .dispatcher
        .engine
        .apply(
            &task.id,
            &Input::Claim {
                attempt: Attempt(1),
            },
            None,
        )
        .await
        .unwrap();
    world.api.cancel(&alice(), task.id.as_str()).await.unwrap();

    world.dispatcher.handle(&dispatch(&task.id, 1), 2).await;

    assert!(world.runner.started().is_empty());
}

#[tokio::test]
async fn a_runner_started_for_an_attempt_cancelled_meanwhile_is_stopped() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    let id = task.id.clone();
    world.runner.while_starting(move |store| {
        let claimed = store.task(&id);
        let mut cancelled = transition(&claimed, &Input::Cancel, t0(), &Policy::default())
            .expect("a claimed task can be cancelled")
            .task;
        cancelled.version = claimed.version + 1;
        store.put(cancelled);
    });

    assert_eq!(world.dispatch_sent().await, vec![Disposition::Done]);

    assert_eq!(world.runner.started().len(), 1);
    assert_eq!(
        world.runner.stopped(),
        vec![(task.id.clone(), Attempt(1), Some("pid:1".into()))],
        "nobody would hear from that runner again"
    );
    assert_eq!(world.task(&task.id).status, TaskStatus::Cancelled);
}

#[tokio::test]
async fn at_one_running_per_user_a_second_attempt_waits_and_a_fresh_dispatch_message_is_sent_later()
{
    let world = World::with(per_user(1));
    let first = create_for(&world, &alice()).await;
    let second = create_for(&world, &alice()).await;

    assert_eq!(
        world.dispatch_sent().await,
        vec![Disposition::Done, Disposition::Done]
    );

    assert_eq!(started_ids(&world), vec![first.clone()]);
    let waiting = world.task(&second);
    assert_eq!(waiting.status, TaskStatus::Queued);
    assert_eq!(
        waiting.current_execution().unwrap().state,
        ExecState::Requested
    );
    assert_eq!(
        world.queue.take(),
        vec![Sent {
            message: dispatch(&second, 1),
            delay: CAPACITY_POLL,
        }],
        "a fresh message, so waiting uses up no receives"
    );

    // While the first runs, the second keeps waiting; once it finished, the second starts.
    world.queue.take();
    world.dispatcher.handle(&dispatch(&second, 1), 1).await;
    assert_eq!(started_ids(&world), vec![first.clone()]);
    world.queue.take();
    world
        .event(
            &first,
            1,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await
        .unwrap();
    world.queue.take();
    assert_eq!(
        world.dispatcher.handle(&dispatch(&second, 1), 1).await,
        Disposition::Done
    );
    assert_eq!(started_ids(&world), vec![first, second]);
}

#[tokio::test]
async fn one_user_at_their_cap_does_not_hold_up_another_user() {
    let world = World::with(per_user(1));
    let first = create_for(&world, &alice()).await;
    let _waits = create_for(&world, &alice()).await;
    let bobs = create_for(&world, &bob()).await;

    world.dispatch_sent().await;

    assert_eq!(started_ids(&world), vec![first, bobs]);
}

#[tokio::test]
async fn at_the_total_cap_an_attempt_waits_whoever_owns_it() {
    let world = World::with(|s| {
        s.capacity = Capacity {
            per_user: None,
            total: Some(1),
        }
    });
    let first = create_for(&world, &alice()).await;
    let bobs = create_for(&world, &bob()).await;

    world.dispatch_sent().await;

    assert_eq!(started_ids(&world), vec![first]);
    assert_eq!(
        world.queue.take(),
        vec![Sent {
            message: dispatch(&bobs, 1),
            delay: CAPACITY_POLL,
        }]
    );
}

#[tokio::test]
async fn a_stop_message_stops_the_runner_it_names() {
    let world = World::new();
    let running = world.running_task().await;
    world.queue.take();
    world
        .api
        .cancel(&alice(), running.id.as_str())
        .await
        .unwrap();

    assert_eq!(world.dispatch_sent().await, vec![Disposition::Done]);

    assert_eq!(
        world.runner.stopped(),
        vec![(running.id, Attempt(1), Some("pid:1".into()))]
    );
}

#[tokio::test]
async fn the_notifier_sends_the_email_once_and_not_again_after_it_is_recorded_sent() {
    let world = World::new();
    let running = world.running_task().await;
    world
        .event(
            &running.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await
        .unwrap();

    assert_eq!(world.notify_sent().await, vec![Disposition::Done]);

    let sent = world.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "alice@example.com");
    // The link opens the task's page of the web app, not the JSON route.
    let page = format!("Task details: http://127.0.0.1:8080/#/tasks/{}", running.id);
    assert!(sent[0].text.contains(&page), "{}", sent[0].text);
    assert!(sent[0].html.contains(&page), "{}", sent[0].html);
    let records = world.messages.of(&running.id);
    assert_eq!(records.len(), 1, "one message record");
    assert_eq!(records[0].status, MessageStatus::Sent);
    assert_eq!(
        sent[0].idempotency_key,
        records[0].id.as_str(),
        "the record's id, so a mailer that deduplicates does"
    );
    let task = world.task(&running.id);
    assert_eq!(task.notified, vec![Attempt(1)]);
    assert!(task.notify_pending.is_empty());

    // The same message again (a redelivery) sends nothing more.
    assert_eq!(
        world.notifier.handle(&notify(&running.id, 1), 2).await,
        Disposition::Done
    );
    assert_eq!(world.mailer.sent().len(), 1);
    assert_eq!(world.messages.of(&running.id).len(), 1, "and records none");
}

/// A code change completed by its runner, whose completion email is pending.
async fn completed_task(world: &World) -> TaskId {
    let running = world.running_task().await;
    world
        .event(
            &running.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await
        .unwrap();
    assert_eq!(world.task(&running.id).notify_pending, vec![Attempt(1)]);
    running.id
}

#[tokio::test]
async fn when_the_mailer_refuses_an_address_for_good_the_email_is_recorded_failed_and_not_retried()
{
    let world = World::new();
    let id = completed_task(&world).await;
    world.queue.take_from(QueueName::Dispatch);
    world
        .mailer
        .answer_next(MailAnswer::Refuse("550 no such mailbox".into()));

    assert_eq!(world.notify_sent().await, vec![Disposition::Done]);

    let task = world.task(&id);
    assert_eq!(
        task.status,
        TaskStatus::Completed,
        "the task keeps its status"
    );
    assert!(task.notify_pending.is_empty());
    assert_eq!(task.notify_failed, vec![Attempt(1)]);
    assert!(task.notified.is_empty(), "not recorded as sent");
    let records = world.messages.of(&id);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, MessageStatus::Failed);
    assert_eq!(records[0].attempts, 1);
    assert_eq!(
        records[0].last_error.as_deref(),
        Some("550 no such mailbox")
    );
    assert!(
        world.queue.take().is_empty(),
        "no retry is asked for: {:?}",
        world.queue.history()
    );

    // Neither the sweeper a month later nor a redelivered message tries it again.
    world.clock.advance(Span::days(30));
    world.sweeper.sweep().await.unwrap();
    world.redeliver_everything().await;
    assert_eq!(world.mailer.tries().len(), 1);
    assert!(world.mailer.sent().is_empty());
    assert_eq!(world.task(&id).notify_failed, vec![Attempt(1)]);
}

#[tokio::test]
async fn when_the_mailer_fails_for_now_the_email_stays_pending_and_a_later_delivery_sends_it_once()
{
    let world = World::new();
    let id = completed_task(&world).await;
    world.queue.take_from(QueueName::Dispatch);
    world
        .mailer
        .answer_next(MailAnswer::FailForNow("connection reset".into()));

    assert_eq!(world.notify_sent().await, vec![Disposition::Done]);

    let record = world.messages.of(&id).pop().expect("a record");
    assert_eq!(record.status, MessageStatus::Pending);
    assert_eq!(record.attempts, 1);
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connection reset")),
        "{record:?}"
    );
    assert!(world.mailer.sent().is_empty());
    assert!(
        world.task(&id).notify_failed.is_empty(),
        "not failed: its retries are the record's"
    );
    let retry = match world.queue.waiting_in(QueueName::Notify).as_slice() {
        [
            Sent {
                message: QueueMessage::Deliver { message_id },
                delay,
            },
        ] => {
            assert_eq!(message_id, &record.id);
            *delay
        }
        other => panic!("one Deliver message expected, got {other:?}"),
    };
    assert!(retry >= Duration::from_secs(24), "{retry:?}");

    // Before its backoff nothing is sent; once it passed, the Deliver sends it.
    world.advance(Span::seconds(20)).await;
    assert!(world.mailer.sent().is_empty());
    world
        .advance(Span::from_std(retry).unwrap() - Span::seconds(20))
        .await;
    assert_eq!(world.mailer.sent().len(), 1);
    let record = world.messages.record(&record.id);
    assert_eq!(record.status, MessageStatus::Sent);
    assert_eq!(record.attempts, 2);

    // Nothing more: not the sweeper, not a redelivery.
    world.clock.advance(Span::days(1));
    world.sweeper.sweep().await.unwrap();
    world.redeliver_everything().await;
    assert_eq!(world.mailer.sent().len(), 1);
    assert_eq!(world.mailer.tries().len(), 2);
}

#[tokio::test]
async fn when_the_retry_of_a_pending_email_is_lost_the_sweeper_sends_it_once() {
    let world = World::new();
    let id = completed_task(&world).await;
    world.queue.take_from(QueueName::Dispatch);
    world
        .mailer
        .answer_next(MailAnswer::FailForNow("connection reset".into()));
    world.notify_sent().await;
    world.queue.take(); // the Deliver is lost

    world.clock.advance(Span::seconds(10));
    world.sweeper.sweep().await.unwrap();
    assert!(world.mailer.sent().is_empty(), "not due yet");
    world.clock.advance(Span::hours(1));
    let report = world.sweeper.sweep().await.unwrap();

    assert_eq!(report.messages, 1);
    assert_eq!(world.mailer.sent().len(), 1);
    assert_eq!(world.messages.of(&id)[0].status, MessageStatus::Sent);
    world.sweeper.sweep().await.unwrap();
    assert_eq!(world.mailer.sent().len(), 1);
}

#[tokio::test]
async fn the_sweeper_fails_a_running_attempt_past_its_deadline_with_timeout_and_no_new_attempt() {
    let world = World::new();
    let running = world.running_task().await;
    world.queue.take();
    world.clock.advance(Span::seconds(599));
    world.sweeper.sweep().await.unwrap();
    assert_eq!(
        world.task(&running.id).version,
        running.version,
        "not yet due"
    );

    world.clock.advance(Span::seconds(1));
    let report = world.sweeper.sweep().await.unwrap();

    assert_eq!(report.changed, 1);
    let failed = world.task(&running.id);
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempt, Attempt(1));
    assert_eq!(failed.error.as_ref().unwrap().code, codes::TIMEOUT);
    let sent = world.queue.take_messages();
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, QueueMessage::Dispatch { .. })),
        "no new attempt: {sent:?}"
    );
    assert!(
        sent.iter().any(|m| matches!(m, QueueMessage::Stop { .. })),
        "{sent:?}"
    );
    assert!(sent.contains(&notify(&running.id, 1)), "{sent:?}");
    for message in sent
        .iter()
        .filter(|m| matches!(m, QueueMessage::Notify { .. }))
    {
        world.notifier.handle(message, 1).await;
    }
    world.sweeper.sweep().await.unwrap();
    assert_eq!(
        world.mailer.sent().len(),
        1,
        "one email for the failed task"
    );
}

#[tokio::test]
async fn the_sweeper_starts_a_new_attempt_when_a_runner_never_reported_by_its_deadline() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.dispatch_sent().await;
    world.clock.advance(Span::seconds(600));

    world.sweeper.sweep().await.unwrap();

    let next = world.task(&task.id);
    assert_eq!(next.status, TaskStatus::Queued);
    assert_eq!(next.attempt, Attempt(2));
    assert_eq!(
        next.executions[0].error.as_ref().unwrap().code,
        codes::TIMEOUT
    );
    let sent = world.queue.take_messages();
    assert!(sent.contains(&dispatch(&task.id, 2)), "{sent:?}");
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, QueueMessage::Notify { .. })),
        "no email while attempts remain: {sent:?}"
    );
}

#[tokio::test]
async fn the_sweeper_sends_a_lost_dispatch_again_then_fails_the_attempt_after_the_requeues() {
    let world = World::new();
    let (task, _) = world.create(json!({})).await;
    world.queue.take(); // the message is lost
    let policy = Settings::default().policy;

    for round in 1..=policy.max_requeues {
        world.clock.advance(policy.lost_dispatch_after);
        world.sweeper.sweep().await.unwrap();
        assert_eq!(
            world.queue.take_messages(),
            vec![dispatch(&task.id, 1)],
            "requeue {round}"
        );
        assert_eq!(
            world.task(&task.id).current_execution().unwrap().requeues,
            round
        );
    }
    world.clock.advance(policy.lost_dispatch_after);
    world.sweeper.sweep().await.unwrap();

    let next = world.task(&task.id);
    assert_eq!(next.attempt, Attempt(2));
    assert_eq!(
        next.executions[0].error.as_ref().unwrap().code,
        codes::DISPATCH_FAILED
    );
    assert_eq!(world.queue.take_messages(), vec![dispatch(&task.id, 2)]);
}

#[tokio::test]
async fn the_sweeper_dispatches_a_scheduled_task_when_it_is_due_and_not_before() {
    let world = World::new();
    let at = world.clock.now() + Span::hours(1);
    let (task, sent) = world.create(json!({"scheduled_for": rfc3339(at)})).await;
    assert_eq!(task.status, TaskStatus::Scheduled);
    assert!(sent.is_empty());

    world.clock.advance(Span::minutes(59));
    world.sweeper.sweep().await.unwrap();
    assert_eq!(world.task(&task.id).status, TaskStatus::Scheduled);
    assert!(world.queue.take().is_empty());

    world.clock.advance(Span::minutes(1));
    world.sweeper.sweep().await.unwrap();

    assert_eq!(world.task(&task.id).status, TaskStatus::Queued);
    assert_eq!(world.queue.take_messages(), vec![dispatch(&task.id, 1)]);
}

#[tokio::test]
async fn the_sweeper_asks_again_for_an_email_that_did_not_go_out_and_it_is_sent_once() {
    let world = World::new();
    let running = world.running_task().await;
    world
        .event(
            &running.id,
            1,
            json!({"type": "task.completed", "branch": "pj/x"}),
        )
        .await
        .unwrap();
    world.queue.take(); // the notify message is lost
    world
        .clock
        .advance(Settings::default().policy.notify_retry_after);

    world.sweeper.sweep().await.unwrap();

    assert_eq!(world.queue.take_messages(), vec![notify(&running.id, 1)]);
    world.notifier.handle(&notify(&running.id, 1), 1).await;
    world.notifier.handle(&notify(&running.id, 1), 1).await;
    assert_eq!(world.mailer.sent().len(), 1);
    world.clock.advance(Span::days(1));
    world.sweeper.sweep().await.unwrap();
    assert!(world.queue.take().is_empty(), "nothing more to ask for");
}
