//! The contract of [`QueueSender`] and [`QueueConsumer`]: SQS semantics.
//!
//! Timeouts are whole seconds (SQS rounds them so) and short, so the suite runs in seconds.
//! The queues must hold nothing else while it runs, and each check leaves them empty.

use std::collections::BTreeSet;
use std::time::Duration;

use pj_core::ports::{QueueConsumer, QueueName, QueueSender, Received};
use tokio::time::{Instant, sleep};

use crate::sample::unique;
use crate::{must, start};

const SUITE: &str = "queue";
const QUEUE: QueueName = QueueName::Dispatch;
/// How long a check waits for a message it expects.
const PATIENCE: Duration = Duration::from_secs(8);
/// How long a check watches a queue that should stay empty.
const QUIET: Duration = Duration::from_millis(1_500);
const POLL: Duration = Duration::from_millis(50);
const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(30);

/// Runs every check of the queue contract. `max_receives` is the queue's `maxReceiveCount`:
/// receives after which a message that comes back goes to the dead letters instead.
pub async fn queue_contract<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q, max_receives: u32) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $( start(SUITE, stringify!($check)); $check(queue).await; )*
        };
    }
    run!(
        when_message_is_sent_should_be_received_with_count_one,
        when_received_should_stay_hidden_for_the_visibility_timeout,
        when_not_deleted_should_come_again_with_a_new_receipt,
        when_deleted_should_not_come_again,
        when_visibility_is_changed_to_zero_should_come_again_at_once,
        when_visibility_is_extended_should_stay_hidden,
        when_sent_with_delay_should_stay_hidden_until_due,
        when_receipt_is_stale_should_not_fail,
        receive_should_honour_max_and_give_each_message_once,
        queues_should_be_separate,
    );
    start(
        SUITE,
        "when_received_max_receives_times_should_go_to_dead_letters",
    );
    when_received_max_receives_times_should_go_to_dead_letters(queue, max_receives).await;
}

/// For queues whose stale receipts act on nothing (the embedded queue): SQS only says a
/// delete with an old receipt "might not" delete, and its emulators do delete, so this is
/// not part of [`queue_contract`].
pub async fn queue_strict_receipt_contract<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q) {
    start(SUITE, "when_receipt_is_stale_should_do_nothing");
    when_receipt_is_stale_should_do_nothing(queue).await;
}

fn body(check: &str) -> String {
    format!("{{\"check\":\"{check}\",\"run\":\"{}\"}}", unique())
}

async fn send<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q, name: QueueName, body: &str) {
    must(queue.send(name, body, Duration::ZERO).await, "send");
}

/// Receives until a message comes, or panics after [`PATIENCE`].
async fn receive_one<Q: QueueSender + QueueConsumer + ?Sized>(
    queue: &Q,
    name: QueueName,
    visibility: Duration,
    what: &str,
) -> Received {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut got = must(queue.receive(name, 1, visibility).await, "receive");
        assert!(got.len() <= 1, "receive should return at most max messages");
        if let Some(message) = got.pop() {
            return message;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no message came within {PATIENCE:?}"
        );
        sleep(POLL).await;
    }
}

/// Watches `name` for `how_long`, panicking if anything can be received.
async fn assert_quiet<Q: QueueSender + QueueConsumer + ?Sized>(
    queue: &Q,
    name: QueueName,
    how_long: Duration,
    what: &str,
) {
    let deadline = Instant::now() + how_long;
    loop {
        let got = must(queue.receive(name, 10, LONG).await, "receive");
        if let Some(message) = got.first() {
            // Do not leave it hidden for the next check.
            for m in &got {
                let _ = queue.delete(name, &m.receipt).await;
            }
            panic!(
                "{what}: expected nothing to receive, got {:?} (received {} times)",
                message.body, message.receive_count
            );
        }
        if Instant::now() >= deadline {
            return;
        }
        sleep(POLL).await;
    }
}

async fn delete<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q, name: QueueName, r: &str) {
    must(queue.delete(name, r).await, "delete");
}

async fn when_message_is_sent_should_be_received_with_count_one<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
) {
    let sent = body("received_with_count_one");
    send(queue, QUEUE, &sent).await;
    let got = receive_one(queue, QUEUE, LONG, "a sent message").await;
    assert_eq!(got.body, sent, "the body should arrive unchanged");
    assert_eq!(got.receive_count, 1, "a first receive should count one");
    assert!(!got.receipt.is_empty(), "a receive should give a receipt");
    delete(queue, QUEUE, &got.receipt).await;
}

async fn when_received_should_stay_hidden_for_the_visibility_timeout<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
) {
    send(queue, QUEUE, &body("stays_hidden")).await;
    let got = receive_one(queue, QUEUE, LONG, "a sent message").await;
    assert_quiet(
        queue,
        QUEUE,
        QUIET,
        "a received message should stay hidden for its visibility timeout",
    )
    .await;
    delete(queue, QUEUE, &got.receipt).await;
}

async fn when_not_deleted_should_come_again_with_a_new_receipt<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
) {
    let sent = body("comes_again");
    send(queue, QUEUE, &sent).await;
    let first = receive_one(queue, QUEUE, SHORT, "a sent message").await;
    let received_at = Instant::now();
    let again = receive_one(
        queue,
        QUEUE,
        LONG,
        "a message not deleted should come again after its visibility timeout",
    )
    .await;
    assert!(
        received_at.elapsed() >= SHORT.mul_f64(0.8),
        "the message came again after {:?}, before its visibility timeout of {SHORT:?}",
        received_at.elapsed()
    );
    assert_eq!(again.body, sent);
    assert_eq!(
        again.receive_count, 2,
        "the second receive should count two"
    );
    assert_ne!(
        again.receipt, first.receipt,
        "every receive should give a new receipt"
    );
    delete(queue, QUEUE, &again.receipt).await;
}

async fn when_deleted_should_not_come_again<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q) {
    send(queue, QUEUE, &body("deleted")).await;
    let got = receive_one(queue, QUEUE, SHORT, "a sent message").await;
    delete(queue, QUEUE, &got.receipt).await;
    assert_quiet(
        queue,
        QUEUE,
        SHORT + QUIET,
        "a deleted message should never come again",
    )
    .await;
}

async fn when_visibility_is_changed_to_zero_should_come_again_at_once<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
) {
    let sent = body("visibility_zero");
    send(queue, QUEUE, &sent).await;
    let got = receive_one(queue, QUEUE, LONG, "a sent message").await;
    let changed_at = Instant::now();
    must(
        queue
            .change_visibility(QUEUE, &got.receipt, Duration::ZERO)
            .await,
        "change_visibility",
    );
    let again = receive_one(queue, QUEUE, LONG, "a message made visible").await;
    assert!(
        changed_at.elapsed() < Duration::from_secs(5),
        "a message made visible should come at once, not after its first timeout"
    );
    assert_eq!(again.body, sent);
    assert_eq!(again.receive_count, 2);
    delete(queue, QUEUE, &again.receipt).await;
}

async fn when_visibility_is_extended_should_stay_hidden<Q: QueueSender + QueueConsumer + ?Sized>(
    queue: &Q,
) {
    send(queue, QUEUE, &body("visibility_extended")).await;
    let got = receive_one(queue, QUEUE, SHORT, "a sent message").await;
    must(
        queue.change_visibility(QUEUE, &got.receipt, LONG).await,
        "change_visibility",
    );
    assert_quiet(
        queue,
        QUEUE,
        SHORT + QUIET,
        "a message whose visibility timeout was extended should stay hidden past the first one",
    )
    .await;
    must(
        queue
            .change_visibility(QUEUE, &got.receipt, Duration::ZERO)
            .await,
        "change_visibility",
    );
    let again = receive_one(queue, QUEUE, LONG, "a message made visible").await;
    assert_eq!(again.receive_count, 2);
    delete(queue, QUEUE, &again.receipt).await;
}

async fn when_sent_with_delay_should_stay_hidden_until_due<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
) {
    let sent = body("delayed");
    let delay = Duration::from_secs(2);
    let sent_at = Instant::now();
    must(queue.send(QUEUE, &sent, delay).await, "send with delay");
    let got = receive_one(queue, QUEUE, LONG, "a delayed message").await;
    assert!(
        sent_at.elapsed() >= delay.mul_f64(0.8),
        "a message delayed {delay:?} came after {:?}",
        sent_at.elapsed()
    );
    assert_eq!(got.body, sent);
    assert_eq!(got.receive_count, 1, "a delay is not a receive");
    delete(queue, QUEUE, &got.receipt).await;
}

async fn when_receipt_is_stale_should_not_fail<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q) {
    send(queue, QUEUE, &body("stale_receipt")).await;
    let first = receive_one(queue, QUEUE, SHORT, "a sent message").await;
    let second = receive_one(queue, QUEUE, LONG, "a message not deleted").await;
    assert_ne!(first.receipt, second.receipt);
    must(
        queue.change_visibility(QUEUE, &first.receipt, LONG).await,
        "a visibility change with a stale receipt should not fail",
    );
    must(
        queue.delete(QUEUE, &first.receipt).await,
        "a delete with a stale receipt should not fail",
    );
    must(
        queue.delete(QUEUE, &second.receipt).await,
        "a delete with the current receipt should not fail",
    );
    must(
        queue.delete(QUEUE, &second.receipt).await,
        "deleting a message twice should not fail",
    );
    must(
        queue.change_visibility(QUEUE, &second.receipt, SHORT).await,
        "a visibility change of a deleted message should not fail",
    );
    assert_quiet(
        queue,
        QUEUE,
        QUIET,
        "a deleted message should not come again",
    )
    .await;
}

/// The strict form: a stale receipt neither deletes the message nor changes its visibility.
async fn when_receipt_is_stale_should_do_nothing<Q: QueueSender + QueueConsumer + ?Sized>(
    queue: &Q,
) {
    let sent = body("stale_receipt_strict");
    send(queue, QUEUE, &sent).await;
    let first = receive_one(queue, QUEUE, SHORT, "a sent message").await;
    let second = receive_one(queue, QUEUE, LONG, "a message not deleted").await;
    must(queue.delete(QUEUE, &first.receipt).await, "stale delete");
    must(
        queue
            .change_visibility(QUEUE, &first.receipt, Duration::ZERO)
            .await,
        "stale visibility change",
    );
    assert_quiet(
        queue,
        QUEUE,
        QUIET,
        "a stale receipt should not make the message visible",
    )
    .await;
    must(
        queue
            .change_visibility(QUEUE, &second.receipt, Duration::ZERO)
            .await,
        "current visibility change",
    );
    let third = receive_one(
        queue,
        QUEUE,
        LONG,
        "a stale receipt should not have deleted the message",
    )
    .await;
    assert_eq!(third.body, sent);
    assert_eq!(third.receive_count, 3);
    delete(queue, QUEUE, &third.receipt).await;
    assert_quiet(
        queue,
        QUEUE,
        QUIET,
        "a deleted message should not come again",
    )
    .await;
}

async fn receive_should_honour_max_and_give_each_message_once<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
) {
    let sent: BTreeSet<String> = (0..4).map(|_| body("batch")).collect();
    for b in &sent {
        send(queue, QUEUE, b).await;
    }
    let first = receive_one(queue, QUEUE, LONG, "one of four messages").await;
    let mut got = vec![first];
    let deadline = Instant::now() + PATIENCE;
    while got.len() < sent.len() {
        let batch = must(queue.receive(QUEUE, 2, LONG).await, "receive of up to 2");
        assert!(
            batch.len() <= 2,
            "receive should return at most max messages"
        );
        got.extend(batch);
        assert!(
            Instant::now() < deadline,
            "only {} of {} messages came within {PATIENCE:?}",
            got.len(),
            sent.len()
        );
        sleep(POLL).await;
    }
    let bodies: BTreeSet<String> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(got.len(), sent.len(), "no message should be received twice");
    assert_eq!(bodies, sent, "every message sent should be received");
    assert!(got.iter().all(|m| m.receive_count == 1));
    for m in &got {
        delete(queue, QUEUE, &m.receipt).await;
    }
    assert_quiet(queue, QUEUE, QUIET, "every message was deleted").await;
}

async fn queues_should_be_separate<Q: QueueSender + QueueConsumer + ?Sized>(queue: &Q) {
    let sent = body("separate");
    send(queue, QueueName::Notify, &sent).await;
    assert_quiet(
        queue,
        QueueName::Dispatch,
        Duration::from_millis(500),
        "a message sent to the notify queue should not reach the dispatch queue",
    )
    .await;
    let got = receive_one(queue, QueueName::Notify, LONG, "a notify message").await;
    assert_eq!(got.body, sent);
    must(
        queue.delete(QueueName::Dispatch, &got.receipt).await,
        "a delete on the wrong queue should not fail",
    );
    delete(queue, QueueName::Notify, &got.receipt).await;
    assert_quiet(queue, QueueName::Notify, QUIET, "the message was deleted").await;
}

async fn when_received_max_receives_times_should_go_to_dead_letters<
    Q: QueueSender + QueueConsumer + ?Sized,
>(
    queue: &Q,
    max_receives: u32,
) {
    assert!(max_receives >= 1, "max_receives counts from 1");
    let sent = body("dead_letter");
    send(queue, QUEUE, &sent).await;
    for n in 1..=max_receives {
        let got = receive_one(queue, QUEUE, LONG, "a message not yet dead").await;
        assert_eq!(got.body, sent);
        assert_eq!(got.receive_count, n, "receive {n} should count {n}");
        must(
            queue
                .change_visibility(QUEUE, &got.receipt, Duration::ZERO)
                .await,
            "change_visibility",
        );
    }
    assert_quiet(
        queue,
        QUEUE,
        QUIET,
        "a message received max_receives times should go to the dead letters, not come again",
    )
    .await;
}
