//! Request counting: the interceptor counts what the SDK really sends.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use chrono::{TimeDelta, Utc};
use pj_aws::{AwsContext, OperationStats, service};
use pj_contract::sample;
use pj_core::ids::TaskId;
use pj_core::ports::{LogStore, QueueConsumer, QueueName, QueueSender, TaskStore};

use crate::{aws, endpoint, queues, store};

#[tokio::test]
async fn request_counting_should_count_each_call_per_service_and_operation() {
    let aws = aws().await;
    let store = store(&aws).await;
    let (queue, _) = queues(&aws, 5).await;
    let before = aws.metrics().snapshot();

    let task = sample::task(&sample::owner(), sample::now());
    store.create(&task, None).await.unwrap();
    store.get(&task.id).await.unwrap();
    store.get(&task.id).await.unwrap();
    queue
        .send(QueueName::Notify, "hello", Duration::ZERO)
        .await
        .unwrap();
    let got = queue
        .receive(QueueName::Notify, 1, Duration::from_secs(30))
        .await
        .unwrap();
    queue
        .delete(QueueName::Notify, &got[0].receipt)
        .await
        .unwrap();

    let d = aws.metrics().snapshot().since(&before);
    let once = OperationStats {
        calls: 1,
        requests: 1,
        retries: 0,
        failures: 0,
    };
    assert_eq!(d.operation(service::DYNAMODB, "PutItem"), once);
    assert_eq!(d.operation(service::DYNAMODB, "GetItem").calls, 2);
    assert_eq!(d.service(service::DYNAMODB).calls, 3);
    assert_eq!(d.operation(service::SQS, "SendMessage"), once);
    assert_eq!(d.operation(service::SQS, "ReceiveMessage"), once);
    assert_eq!(d.operation(service::SQS, "DeleteMessage"), once);
    assert_eq!(d.service(service::SQS).requests, 3);
    assert_eq!(d.service(service::SES).calls, 0);
    assert!(
        d.dynamodb_write_units > 0.0 && d.dynamodb_read_units > 0.0,
        "consumed capacity is summed from the responses: {d:?}"
    );
    assert!(d.dynamodb_estimated_write_units >= 1.0);
}

#[tokio::test]
async fn a_failed_condition_should_count_as_a_failed_call() {
    let aws = aws().await;
    let store = store(&aws).await;
    let task = sample::task(&sample::owner(), sample::now());
    store.create(&task, None).await.unwrap();
    let before = aws.metrics().snapshot();
    assert!(store.create(&task, None).await.is_err());
    let d = aws.metrics().snapshot().since(&before);
    assert_eq!(d.operation(service::DYNAMODB, "PutItem").failures, 1);
    assert_eq!(d.dynamodb_estimated_write_units, 0.0, "nothing was written");
}

#[tokio::test]
async fn retries_should_be_counted_as_requests_of_one_call() {
    // A port nobody listens on: every attempt fails to connect and is retried.
    let _ = endpoint();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .load()
        .await;
    let aws = AwsContext::counting(&config);
    let result = aws.dynamodb().list_tables().send().await;
    assert!(result.is_err());
    let stats = aws
        .metrics()
        .snapshot()
        .operation(service::DYNAMODB, "ListTables");
    assert_eq!(
        stats,
        OperationStats {
            calls: 1,
            requests: 3,
            retries: 2,
            failures: 1,
        }
    );
}

#[tokio::test]
async fn the_estimate_should_count_two_units_per_started_kilobyte_of_a_transactional_write() {
    let aws = aws().await;
    let store = store(&aws).await;
    let keep = sample::now() + TimeDelta::days(7);
    let task = TaskId::generate(Utc::now());
    let lines = vec![
        sample::line(1, 0, "short"),
        sample::line(1, 1, &"y".repeat(1_500)),
        sample::line(1, 2, &"z".repeat(16 * 1024)),
    ];
    let before = aws.metrics().snapshot();
    store.append(&task, &lines, keep).await.unwrap();
    let d = aws.metrics().snapshot().since(&before);
    assert_eq!(
        d.dynamodb_estimated_write_units,
        2.0 + 2.0,
        "one chunk, under a kilobyte deflated, and the head's update, each doubled"
    );

    // 16 KiB that deflate cannot shrink much: 16 or 17 started kilobytes, doubled.
    let task = TaskId::generate(Utc::now());
    let mut state: u32 = 7;
    let noise: String = (0..16 * 1024)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'!' + ((state >> 16) % 94) as u8)
        })
        .collect();
    let before = aws.metrics().snapshot();
    store
        .append(&task, &[sample::line(1, 0, &noise)], keep)
        .await
        .unwrap();
    let d = aws.metrics().snapshot().since(&before);
    assert!(
        (2.0 * 14.0 + 2.0..=2.0 * 17.0 + 2.0).contains(&d.dynamodb_estimated_write_units),
        "{}",
        d.dynamodb_estimated_write_units
    );
}

#[tokio::test]
async fn contexts_should_honour_aws_endpoint_url_from_the_environment() {
    let _ = endpoint();
    let aws = AwsContext::from_env().await;
    aws.dynamodb()
        .list_tables()
        .send()
        .await
        .expect("from_env reaches the emulator through AWS_ENDPOINT_URL");
    // Production clients do not count: counting is what a benchmark or a test turns on.
    assert_eq!(
        aws.metrics()
            .snapshot()
            .operation(service::DYNAMODB, "ListTables")
            .calls,
        0
    );
    let counting = AwsContext::counting(aws.sdk_config());
    counting
        .dynamodb()
        .list_tables()
        .send()
        .await
        .expect("the counting context reaches the emulator too");
    assert_eq!(
        counting
            .metrics()
            .snapshot()
            .operation(service::DYNAMODB, "ListTables")
            .calls,
        1
    );
}
