//! The DynamoDB store beyond the contract: lazy TTL, packed log items and their dedupe, the item
//! size limit, the table's layout.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, IndexStatus, ProjectionType, TimeToLiveStatus};
use chrono::{TimeDelta, Utc};
use pj_aws::{GSI_OWNER, GSI_SWEEP, service};
use pj_contract::sample;
use pj_core::ids::TaskId;
use pj_core::ports::{CreateOutcome, LogLine, LogStore, TaskStore, WriteOutcome};
use pj_core::task::TaskStatus;

use crate::{aws, store};

fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

#[tokio::test]
async fn ttl_expired_items_still_in_the_table_should_be_ignored_on_read() {
    let aws = aws().await;
    let store = store(&aws).await;
    let now = sample::now();
    let past = now - TimeDelta::hours(1);

    let receipt = sample::receipt(past);
    assert!(store.remember_webhook(&receipt).await.unwrap());
    let owner = sample::owner();
    let old = sample::request("Expired key");
    let first = sample::task_from(old.clone(), &owner, now);
    let record = sample::idempotency(&owner, "lazy-ttl", &old, past);
    store.create(&first, Some(&record)).await.unwrap();
    let task = TaskId::generate(Utc::now());
    store
        .append(&task, &[sample::line(1, 0, "expired")], past)
        .await
        .unwrap();

    // DynamoDB deletes expired items lazily (moto never): they are all still there.
    let raw = aws
        .dynamodb()
        .get_item()
        .table_name(store.table())
        .set_key(Some(key(format!("WEBHOOK#{}", receipt.id), "WEBHOOK")))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(raw.item.is_some(), "the expired webhook id is still stored");

    assert!(!store.webhook_seen(&receipt.id, now).await.unwrap());
    assert!(
        store.read(&task, None, 100, now).await.unwrap().is_empty(),
        "an expired line should not be read"
    );
    let other = sample::request("Another request, same key");
    let second = sample::task_from(other.clone(), &owner, now);
    let live = sample::idempotency(&owner, "lazy-ttl", &other, now + TimeDelta::hours(24));
    assert_eq!(
        store.create(&second, Some(&live)).await.unwrap(),
        CreateOutcome::Created,
        "an expired key should count as never used"
    );
    let next = sample::next_version(&second, now);
    assert_eq!(
        store
            .update(
                &next,
                second.version,
                Some(&sample::receipt(now + TimeDelta::hours(1)))
            )
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    let mut reused = receipt.clone();
    reused.expires_at = now + TimeDelta::hours(1);
    let again = sample::next_version(&next, now);
    assert_eq!(
        store
            .update(&again, next.version, Some(&reused))
            .await
            .unwrap(),
        WriteOutcome::Written,
        "an expired webhook id in the table should not block a write"
    );
}

/// The log items of `task`: its chunks (`LOG#`) and its heads (`LOGHEAD#`), raw.
async fn log_items(
    aws: &crate::AwsContext,
    table: &str,
    prefix: &str,
    task: &TaskId,
) -> Vec<HashMap<String, AttributeValue>> {
    aws.dynamodb()
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("{prefix}#{task}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("{name} is {other:?}"),
    }
}

/// Lines as the runner of `scripts/bench-lambda` sends them.
fn runner_lines(seqs: std::ops::Range<u64>) -> Vec<LogLine> {
    seqs.map(|seq| {
        sample::line(
            1,
            seq,
            &format!(
                "line {seq}: compiling pj-core v0.1.0 (/work/repo/shared/core) and running its tests"
            ),
        )
    })
    .collect()
}

#[tokio::test]
async fn a_runners_batches_should_cost_one_transaction_each_and_a_redelivery_should_write_nothing()
{
    let aws = aws().await;
    let store = store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let lines = runner_lines(0..1_000);
    let keep = sample::now() + TimeDelta::days(7);

    let before = aws.metrics().snapshot();
    for batch in lines.chunks(200) {
        assert_eq!(store.append(&task, batch, keep).await.unwrap(), 200);
    }
    let first = aws.metrics().snapshot().since(&before);
    assert_eq!(
        first.service(service::DYNAMODB).calls,
        5,
        "one request a batch: {:?}",
        first.operations
    );
    assert_eq!(
        first
            .operation(service::DYNAMODB, "TransactWriteItems")
            .calls,
        5
    );
    assert!(
        first.dynamodb_estimated_write_units <= 60.0,
        "1,000 lines in 5 chunks of 200 and the head's updates: {} write units",
        first.dynamodb_estimated_write_units
    );
    let chunks = log_items(&aws, store.table(), "LOG", &task).await;
    assert_eq!(chunks.len(), 5, "one item a batch");
    let heads = log_items(&aws, store.table(), "LOGHEAD", &task).await;
    assert_eq!(heads.len(), 1, "one head an attempt");
    assert_eq!(number(&heads[0], "last"), 999);
    for chunk in &chunks {
        assert_eq!(number(chunk, "expires_us"), keep.timestamp_micros());
        assert!(number(chunk, "ttl") >= keep.timestamp());
    }

    let before = aws.metrics().snapshot();
    assert_eq!(
        store.append(&task, &lines[600..800], keep).await.unwrap(),
        0,
        "a redelivered batch stores nothing"
    );
    let again = aws.metrics().snapshot().since(&before);
    assert_eq!(
        (
            again
                .operation(service::DYNAMODB, "TransactWriteItems")
                .calls,
            again.operation(service::DYNAMODB, "GetItem").calls,
            again.operation(service::DYNAMODB, "Query").calls,
        ),
        (1, 1, 1),
        "the write that finds the head past its seqs, then the head and the stored chunks"
    );
    assert_eq!(
        again.dynamodb_items_scanned, 4,
        "the chunks starting up to 999 seqs before the batch, through its last seq"
    );
    assert_eq!(log_items(&aws, store.table(), "LOG", &task).await.len(), 5);

    let read = store.read(&task, None, 1_000, sample::now()).await.unwrap();
    assert_eq!(read, lines, "every line once, in order, as sent");

    // Half old, half new: only the new half is written.
    let overlapping: Vec<_> = (500..1_500)
        .map(|seq| sample::line(1, seq, "overlap"))
        .collect();
    assert_eq!(store.append(&task, &overlapping, keep).await.unwrap(), 500);
    let all = store.read(&task, None, 5_000, sample::now()).await.unwrap();
    assert_eq!(all.len(), 1_500);
    assert_eq!(
        all[700].text, lines[700].text,
        "a stored line keeps its first text"
    );
    assert_eq!(all[1_200].text, "overlap");
}

#[tokio::test]
async fn a_batch_after_many_stored_lines_should_read_only_its_own_range_and_dedupe() {
    let aws = aws().await;
    let store = store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let keep = sample::now() + TimeDelta::days(7);
    // A long log of attempt 1 (chunks at seqs 0 and 1,000), and the start of attempt 2.
    let earlier: Vec<_> = (0..2_000)
        .map(|seq| sample::line(1, seq, &format!("early {seq}")))
        .collect();
    for chunk in earlier.chunks(1_000) {
        assert_eq!(store.append(&task, chunk, keep).await.unwrap(), 1_000);
    }
    let attempt_two: Vec<_> = (0..50).map(|seq| sample::line(2, seq, "two")).collect();
    assert_eq!(store.append(&task, &attempt_two, keep).await.unwrap(), 50);

    // A batch that overlaps the end of attempt 1: five stored lines, ten new ones.
    let batch: Vec<_> = (1_995..2_010)
        .map(|seq| sample::line(1, seq, "late"))
        .collect();
    let before = aws.metrics().snapshot();
    assert_eq!(
        store.append(&task, &batch, keep).await.unwrap(),
        10,
        "the five stored lines are found, the ten new ones written"
    );
    let used = aws.metrics().snapshot().since(&before);
    assert_eq!(used.operation(service::DYNAMODB, "Query").calls, 1);
    assert_eq!(
        used.dynamodb_items_scanned, 1,
        "the dedupe query reads the chunk that can hold seq 1995 to 2009 of attempt 1 only, \
         not the chunk of the 1,000 lines before it nor attempt 2"
    );
    assert_eq!(
        used.operation(service::DYNAMODB, "TransactWriteItems")
            .calls,
        2,
        "the first write finds the head past seq 1995; the second holds"
    );

    // A redelivery of the same batch: both chunks found, nothing written.
    let before = aws.metrics().snapshot();
    assert_eq!(store.append(&task, &batch, keep).await.unwrap(), 0);
    let used = aws.metrics().snapshot().since(&before);
    assert_eq!(used.dynamodb_items_scanned, 2);
    assert_eq!(
        used.operation(service::DYNAMODB, "TransactWriteItems")
            .calls,
        1
    );

    // A batch spanning two attempts is bounded per attempt: not from attempt 1's seq 10
    // through attempt 2's seq 1, which would read the chunks between.
    let mixed = [
        sample::line(1, 10, "again"),
        sample::line(1, 12, "again"),
        sample::line(2, 0, "again"),
        sample::line(2, 1, "again"),
    ];
    let before = aws.metrics().snapshot();
    assert_eq!(store.append(&task, &mixed, keep).await.unwrap(), 0);
    let used = aws.metrics().snapshot().since(&before);
    assert_eq!(
        used.operation(service::DYNAMODB, "Query").calls,
        2,
        "one per attempt"
    );
    assert_eq!(used.dynamodb_items_scanned, 1 + 1);

    let all = store.read(&task, None, 5_000, sample::now()).await.unwrap();
    assert_eq!(all.len(), 2_000 + 10 + 50);
    assert_eq!(
        all[1_995].text, "early 1995",
        "a stored line keeps its first text"
    );
    assert_eq!(all[2_000].text, "late");
    let after = store
        .read(&task, Some(all[1_500].cursor()), 3, sample::now())
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|l| l.seq).collect::<Vec<_>>(),
        [1_501, 1_502, 1_503],
        "a read after a cursor inside a chunk starts at the next line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_of_the_same_new_lines_should_count_them_once() {
    let aws = aws().await;
    let store = store(&aws).await;
    let keep = sample::now() + TimeDelta::days(7);
    for round in 0..5 {
        let task = TaskId::generate(Utc::now());
        let batch = runner_lines(0..200);
        // A straddling batch too: it starts inside what the others store.
        let later = runner_lines(150..250);
        let before = aws.metrics().snapshot();
        let (a, b, c) = tokio::join!(
            store.append(&task, &batch, keep),
            store.append(&task, &batch, keep),
            store.append(&task, &later, keep),
        );
        let counts = [a.unwrap(), b.unwrap(), c.unwrap()];
        assert_eq!(
            counts.iter().sum::<usize>(),
            250,
            "round {round}: every line counted once: {counts:?}"
        );
        let used = aws.metrics().snapshot().since(&before);
        let transactions = used.operation(service::DYNAMODB, "TransactWriteItems");
        assert!(
            transactions.failures >= 1 && used.operation(service::DYNAMODB, "Query").calls >= 1,
            "round {round}: the appends raced, and the losers read what the winner stored: \
             {:?}",
            used.operations
        );
        let read = store.read(&task, None, 1_000, sample::now()).await.unwrap();
        assert_eq!(
            read.iter().map(|l| l.seq).collect::<Vec<_>>(),
            (0..250).collect::<Vec<_>>(),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_batch_expiring_before_the_stored_ones_should_not_shorten_the_heads_life() {
    let aws = aws().await;
    let store = store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let now = sample::now();
    let long = now + TimeDelta::days(7);
    let short = now + TimeDelta::minutes(1);
    assert_eq!(
        store
            .append(&task, &runner_lines(0..10), long)
            .await
            .unwrap(),
        10
    );
    // A clock behind: the next batch would expire first.
    assert_eq!(
        store
            .append(&task, &runner_lines(10..20), short)
            .await
            .unwrap(),
        10
    );
    let heads = log_items(&aws, store.table(), "LOGHEAD", &task).await;
    assert_eq!(
        number(&heads[0], "expires_us"),
        long.timestamp_micros(),
        "the head lives as long as its longest-lived chunk, so TTL never takes it first"
    );
    assert_eq!(number(&heads[0], "last"), 19);
    let later = store
        .read(&task, None, 100, now + TimeDelta::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|l| l.seq).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>(),
        "the short-lived chunk has expired"
    );
    assert_eq!(
        store
            .append(&task, &runner_lines(15..25), long)
            .await
            .unwrap(),
        5,
        "an expired line still counts as stored until DynamoDB deletes it"
    );
}

#[tokio::test]
async fn a_batch_repeating_a_position_should_store_the_first_line() {
    let aws = aws().await;
    let store = store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let batch = [sample::line(1, 0, "first"), sample::line(1, 0, "second")];
    let keep = sample::now() + TimeDelta::days(7);
    assert_eq!(store.append(&task, &batch, keep).await.unwrap(), 1);
    let read = store.read(&task, None, 10, sample::now()).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].text, "first");
}

#[tokio::test]
async fn when_a_task_document_is_too_large_should_refuse_and_store_nothing() {
    let aws = aws().await;
    let store = store(&aws).await;
    let mut task = sample::task(&sample::owner(), sample::now());
    task.prompt = "x".repeat(360 * 1024);
    let err = store.create(&task, None).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("over the limit"),
        "the error should say why: {err:#}"
    );
    assert!(store.get(&task.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_retried_create_of_the_same_task_under_its_key_should_return_it() {
    let aws = aws().await;
    let store = store(&aws).await;
    let owner = sample::owner();
    let now = sample::now();
    let new = sample::request("Lambda retried me");
    let task = sample::task_from(new.clone(), &owner, now);
    let record = sample::idempotency(&owner, "retried", &new, now + TimeDelta::hours(24));
    assert_eq!(
        store.create(&task, Some(&record)).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create(&task, Some(&record)).await.unwrap(),
        CreateOutcome::Existing(Box::new(task.clone())),
        "both conditions fail; the key decides"
    );
}

#[tokio::test]
async fn a_status_filter_should_page_through_many_other_tasks() {
    let aws = aws().await;
    let store = store(&aws).await;
    let owner = sample::owner();
    let base = sample::now();
    let mut tasks = Vec::new();
    for i in 0..120 {
        let task = sample::task(&owner, base + TimeDelta::seconds(i));
        store.create(&task, None).await.unwrap();
        tasks.push(task);
    }
    // Only the two oldest are running: the newest 118 are read past to find them.
    for task in &tasks[..2] {
        let mut next = sample::next_version(task, base);
        next.status = TaskStatus::Running;
        store.update(&next, task.version, None).await.unwrap();
    }
    let running = store
        .list(&owner, Some(TaskStatus::Running), 1, None)
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, tasks[1].id);
    let all = store
        .list(&owner, Some(TaskStatus::Running), 100, None)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![tasks[1].id.clone(), tasks[0].id.clone()]
    );
    let unfiltered = store.list(&owner, None, 100, None).await.unwrap();
    assert_eq!(unfiltered.len(), 100, "a list stops at its limit");
    assert_eq!(unfiltered[0].id, tasks[119].id);
}

#[tokio::test]
async fn due_should_merge_every_shard_oldest_first() {
    let aws = aws().await;
    let store = store(&aws).await;
    let owner = sample::owner();
    let base = Utc::now() - TimeDelta::days(1);
    let mut expected = Vec::new();
    for i in 0..40 {
        let mut task = sample::task(&owner, sample::now());
        task.sweep_at = Some(base + TimeDelta::seconds(40 - i));
        store.create(&task, None).await.unwrap();
        expected.push(task.id);
    }
    expected.reverse();
    let due = store.due(Utc::now(), 1_000).await.unwrap();
    assert_eq!(
        due.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        expected
    );
    let first = store.due(Utc::now(), 7).await.unwrap();
    assert_eq!(
        first.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        expected[..7].to_vec(),
        "a limit should take the oldest across shards"
    );
}

#[tokio::test]
async fn the_table_should_have_both_indexes_and_ttl() {
    let aws = aws().await;
    let store = store(&aws).await;
    let described = aws
        .dynamodb()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let table = described.table().unwrap();
    let indexes = table.global_secondary_indexes();
    let find = |name: &str| {
        indexes
            .iter()
            .find(|i| i.index_name() == Some(name))
            .unwrap_or_else(|| panic!("no index {name}"))
    };
    let owner = find(GSI_OWNER);
    assert_eq!(
        owner.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::Include)
    );
    let sweep = find(GSI_SWEEP);
    assert_eq!(
        sweep.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::KeysOnly)
    );
    for index in [owner, sweep] {
        assert!(matches!(
            index.index_status(),
            None | Some(IndexStatus::Active)
        ));
    }
    let ttl = aws
        .dynamodb()
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    // Provisioning again is harmless.
    pj_aws::provision::create_table(aws.dynamodb(), store.table())
        .await
        .unwrap();
}
