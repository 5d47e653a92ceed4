//! The SQS queue beyond the contract: dead letters land in the dead-letter queue, long delays
//! are clamped, receive counts come from SQS.

use std::time::Duration;

use pj_core::ports::{QueueConsumer, QueueName, QueueSender};
use tokio::time::{Instant, sleep};

use crate::{aws, queues, unique_name};

const HIDE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_message_received_max_receives_times_should_land_in_the_dead_letter_queue() {
    let aws = aws().await;
    let (queue, made) = queues(&aws, 2).await;
    let body = unique_name("doomed");
    queue
        .send(QueueName::Dispatch, &body, Duration::ZERO)
        .await
        .unwrap();
    for n in 1..=2 {
        let got = queue.receive(QueueName::Dispatch, 10, HIDE).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, n);
        queue
            .change_visibility(QueueName::Dispatch, &got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(
        queue
            .receive(QueueName::Dispatch, 10, HIDE)
            .await
            .unwrap()
            .is_empty()
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dead = aws
            .sqs()
            .receive_message()
            .queue_url(&made.dead_letters.dispatch)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if let Some(message) = dead.messages().first() {
            assert_eq!(message.body(), Some(body.as_str()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached the dead-letter queue"
        );
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_delay_past_sqs_limit_should_be_clamped_not_refused() {
    let aws = aws().await;
    let (queue, _) = queues(&aws, 5).await;
    queue
        .send(QueueName::Notify, "later", Duration::from_secs(3_600))
        .await
        .expect("a delay over 15 minutes is clamped to SQS's limit");
    assert!(
        queue
            .receive(QueueName::Notify, 10, HIDE)
            .await
            .unwrap()
            .is_empty(),
        "the delayed message should not be visible yet"
    );
    queue
        .send(QueueName::Notify, "now", Duration::ZERO)
        .await
        .unwrap();
    let got = queue
        .receive(QueueName::Notify, 10, Duration::from_secs(100_000))
        .await;
    assert_eq!(
        got.expect("a visibility timeout past 12 hours is clamped")
            .len(),
        1
    );
}

#[tokio::test]
async fn receive_should_ask_sqs_for_at_most_ten() {
    let aws = aws().await;
    let (queue, _) = queues(&aws, 5).await;
    for i in 0..12 {
        queue
            .send(QueueName::Dispatch, &format!("m{i}"), Duration::ZERO)
            .await
            .unwrap();
    }
    let got = queue.receive(QueueName::Dispatch, 50, HIDE).await.unwrap();
    assert!(!got.is_empty() && got.len() <= 10, "got {}", got.len());
    assert!(
        queue
            .receive(QueueName::Dispatch, 0, HIDE)
            .await
            .unwrap()
            .is_empty()
    );
}
