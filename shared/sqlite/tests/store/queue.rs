//! The embedded queue beyond the contract: order, the dead-letter table, the signal.

use std::time::Duration;

use pj_core::ports::{QueueConsumer, QueueInspector, QueueName, QueueSender, QueueStats};
use tokio::time::timeout;

use crate::{MAX_RECEIVES, TestStore};

const Q: QueueName = QueueName::Dispatch;
const HIDE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn receive_should_take_the_oldest_messages_first() {
    let t = TestStore::new();
    for i in 0..5 {
        t.store
            .send(Q, &format!("m{i}"), Duration::ZERO)
            .await
            .unwrap();
    }
    let first: Vec<String> = t
        .store
        .receive(Q, 2, HIDE)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(first, ["m0", "m1"]);
    let rest: Vec<String> = t
        .store
        .receive(Q, 10, HIDE)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(rest, ["m2", "m3", "m4"]);
}

#[tokio::test]
async fn when_message_comes_back_after_max_receives_should_be_in_the_dead_letters() {
    let t = TestStore::new();
    t.store.send(Q, "doomed", Duration::ZERO).await.unwrap();
    t.store.send(Q, "healthy", Duration::ZERO).await.unwrap();
    for n in 1..=MAX_RECEIVES {
        let got = t.store.receive(Q, 1, HIDE).await.unwrap();
        assert_eq!(got[0].body, "doomed");
        assert_eq!(got[0].receive_count, n);
        t.store
            .change_visibility(Q, &got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    let got = t.store.receive(Q, 1, HIDE).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["healthy"],
        "the dead message should be skipped and the receive filled from the next one"
    );
    assert_eq!(
        t.store.dead_letters(Q).await.unwrap(),
        vec![("doomed".to_owned(), MAX_RECEIVES)]
    );
    assert!(
        t.store
            .dead_letters(QueueName::Notify)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn when_visibility_is_zero_one_receive_should_not_take_a_message_twice() {
    let t = TestStore::new();
    t.store.send(Q, "once", Duration::ZERO).await.unwrap();
    let got = t.store.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    let again = t.store.receive(Q, 10, HIDE).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "a zero timeout leaves the message visible at once"
    );
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn when_message_is_sent_should_wake_a_waiting_consumer() {
    let t = TestStore::new();
    let signal = t.store.queue_signal(Q);
    let waiter =
        tokio::spawn(async move { timeout(Duration::from_secs(5), signal.notified()).await });
    tokio::task::yield_now().await;
    t.store.send(Q, "wake up", Duration::ZERO).await.unwrap();
    assert!(
        waiter.await.unwrap().is_ok(),
        "the waiting consumer should wake"
    );
}

#[tokio::test]
async fn when_message_is_sent_before_the_wait_the_wakeup_should_not_be_lost() {
    let t = TestStore::new();
    t.store.send(Q, "early", Duration::ZERO).await.unwrap();
    let signal = t.store.queue_signal(Q);
    assert!(
        timeout(Duration::from_millis(500), signal.notified())
            .await
            .is_ok(),
        "a send between an empty receive and the wait should still wake the consumer"
    );
}

#[tokio::test]
async fn a_send_to_one_queue_should_not_wake_the_other() {
    let t = TestStore::new();
    t.store
        .send(QueueName::Notify, "mail", Duration::ZERO)
        .await
        .unwrap();
    let dispatch = t.store.queue_signal(Q);
    assert!(
        timeout(Duration::from_millis(200), dispatch.notified())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn when_message_is_made_visible_early_should_wake_a_consumer() {
    let t = TestStore::new();
    t.store.send(Q, "retry me", Duration::ZERO).await.unwrap();
    let signal = t.store.queue_signal(Q);
    signal.notified().await; // the send's permit
    let got = t.store.receive(Q, 1, HIDE).await.unwrap();
    t.store
        .change_visibility(Q, &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        timeout(Duration::from_millis(500), signal.notified())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn stats_should_count_only_receivable_messages_and_age_the_oldest() {
    let t = TestStore::new();
    assert_eq!(t.store.stats(Q).await.unwrap(), QueueStats::default());
    t.store.send(Q, "taken", Duration::ZERO).await.unwrap();
    t.store.send(Q, "waiting", Duration::ZERO).await.unwrap();
    t.store.send(Q, "delayed", HIDE).await.unwrap();
    t.store
        .send(QueueName::Notify, "elsewhere", Duration::ZERO)
        .await
        .unwrap();
    let taken = t.store.receive(Q, 1, HIDE).await.unwrap();
    assert_eq!(taken[0].body, "taken");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stats = t.store.stats(Q).await.unwrap();
    assert_eq!(
        stats.visible, 1,
        "a taken or delayed message waits for no one"
    );
    let age = stats.oldest_visible_age.expect("a message is waiting");
    assert!(
        age >= Duration::from_millis(200) && age < Duration::from_secs(10),
        "{age:?}"
    );
    assert_eq!(t.store.stats(QueueName::Notify).await.unwrap().visible, 1);
}

#[tokio::test]
async fn the_tasks_queue_should_be_a_queue_of_its_own() {
    let t = TestStore::new();
    let tasks = QueueName::Tasks;
    let signal = t.store.queue_signal(tasks);
    t.store.send(tasks, "run", Duration::ZERO).await.unwrap();
    t.store.send(Q, "dispatch", Duration::ZERO).await.unwrap();
    assert!(
        timeout(Duration::from_millis(500), signal.notified())
            .await
            .is_ok(),
        "a send to the tasks queue should wake its consumer"
    );
    assert_eq!(t.store.stats(tasks).await.unwrap().visible, 1);
    let got = t.store.receive(tasks, 10, HIDE).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["run"]
    );
    t.store.delete(tasks, &got[0].receipt).await.unwrap();
    assert_eq!(t.store.stats(tasks).await.unwrap(), QueueStats::default());
    assert_eq!(t.store.stats(Q).await.unwrap().visible, 1);
}
