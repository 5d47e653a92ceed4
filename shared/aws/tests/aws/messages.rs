//! The outbound messages on DynamoDB beyond the contract: their partitions in the indexes, the
//! reads of one owner's data only (the report's), and the sweep index kept to pending messages.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeDelta, Utc};
use pj_aws::service;
use pj_contract::sample;
use pj_core::ids::TaskId;
use pj_core::messages::{MessageFilter, MessageStatus, MessageStore};
use pj_core::ports::{ListCursor, TaskStore};

use crate::{aws, store};

async fn raw_item(
    aws: &pj_aws::AwsContext,
    table: &str,
    pk: String,
    sk: &str,
) -> HashMap<String, AttributeValue> {
    aws.dynamodb()
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the item is stored")
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// The report pages an owner's tasks newest first from a cursor at the end of its range, a
/// cursor that names no stored task.
#[tokio::test]
async fn a_list_from_a_cursor_at_a_time_should_start_just_before_that_time_and_read_one_owner() {
    let aws = aws().await;
    let store = store(&aws).await;
    let owner = sample::owner();
    let to = sample::now() - TimeDelta::hours(1);
    let before = sample::task(&owner, to - TimeDelta::seconds(2));
    let just_before = sample::task(&owner, to - TimeDelta::microseconds(1));
    let at = sample::task(&owner, to);
    let after = sample::task(&owner, to + TimeDelta::seconds(1));
    let someone_elses = sample::task(&sample::owner(), to - TimeDelta::seconds(1));
    let tasks: &dyn TaskStore = &store;
    for task in [&before, &just_before, &at, &after, &someone_elses] {
        tasks.create(task, None).await.unwrap();
    }
    let cursor = ListCursor {
        created_at: to,
        // The smallest id: the cursor sits before every task created at `to` itself.
        id: TaskId::parse("tsk_0").unwrap(),
    };
    let counted = aws.metrics().snapshot();
    let listed = tasks.list(&owner, None, 100, Some(&cursor)).await.unwrap();
    let ids: Vec<&TaskId> = listed.iter().map(|t| &t.id).collect();
    assert_eq!(ids, [&just_before.id, &before.id]);
    let reads = aws.metrics().snapshot().since(&counted);
    assert_eq!(reads.operation(service::DYNAMODB, "Query").calls, 1);
    assert_eq!(reads.operation(service::DYNAMODB, "Scan").calls, 0);
    assert_eq!(
        reads.dynamodb_items_scanned, 2,
        "only the owner's tasks before the cursor are read"
    );
}

#[tokio::test]
async fn messages_should_live_in_partitions_of_their_own() {
    let aws = aws().await;
    let store = store(&aws).await;
    let (tasks, messages): (&dyn TaskStore, &dyn MessageStore) = (&store, &store);
    let owner = sample::owner();
    let task = sample::task(&owner, sample::now());
    tasks.create(&task, None).await.unwrap();
    let message = pj_contract::message(&owner, &task.id, "layout", sample::now());
    assert!(messages.insert(&message).await.unwrap());

    let listed = tasks.list(&owner, None, 10, None).await.unwrap();
    assert_eq!(listed.len(), 1, "the owner's task list holds no message");
    let listed = messages
        .list(&owner, &MessageFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&message));
    assert!(
        tasks
            .due(Utc::now() + TimeDelta::days(1), 100)
            .await
            .unwrap()
            .iter()
            .all(|t| t.id == task.id),
        "the task sweep finds no message"
    );

    let item = raw_item(&aws, store.table(), format!("MSG#{}", message.id), "MSG").await;
    assert_eq!(
        text(&item, "gsi1pk"),
        Some(format!("MSGOWNER#{owner}").as_str())
    );
    assert!(text(&item, "gsi2pk").is_some_and(|p| p.starts_with("MSGSWEEP#")));
    assert_eq!(text(&item, "status"), Some("pending"));
    assert!(matches!(item.get("doc"), Some(AttributeValue::B(_))));
    let link = raw_item(&aws, store.table(), format!("MSG#{}", message.id), "TASK").await;
    assert_eq!(
        text(&link, "gsi1pk"),
        Some(format!("MSGTASK#{owner}#{}", task.id).as_str())
    );
}

#[tokio::test]
async fn the_messages_of_a_task_should_be_read_from_the_tasks_partition_alone() {
    let aws = aws().await;
    let store = store(&aws).await;
    let messages: &dyn MessageStore = &store;
    let owner = sample::owner();
    let (busy, quiet) = (TaskId::generate(Utc::now()), TaskId::generate(Utc::now()));
    let t0 = sample::now();
    let mut of_quiet = Vec::new();
    for i in 0..30 {
        let at = t0 + TimeDelta::seconds(i);
        let m = pj_contract::message(&owner, &busy, "busy", at);
        assert!(messages.insert(&m).await.unwrap());
        if i % 10 == 0 {
            let m = pj_contract::message(&owner, &quiet, "quiet", at);
            assert!(messages.insert(&m).await.unwrap());
            of_quiet.push(m);
        }
    }
    of_quiet.reverse();
    let filter = MessageFilter {
        task_id: Some(quiet.clone()),
        status: None,
    };
    let counted = aws.metrics().snapshot();
    let listed = messages.list(&owner, &filter, 10, None).await.unwrap();
    assert_eq!(listed, of_quiet);
    let reads = aws.metrics().snapshot().since(&counted);
    assert_eq!(reads.operation(service::DYNAMODB, "Query").calls, 1);
    assert_eq!(reads.operation(service::DYNAMODB, "BatchGetItem").calls, 1);
    assert_eq!(
        reads.dynamodb_items_scanned, 3,
        "the quiet task's three links, none of the busy task's messages"
    );
    // Someone else naming the task sees nothing of it.
    assert!(
        messages
            .list(&sample::owner(), &filter, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_message_should_leave_the_sweep_index_once_it_is_sent() {
    let aws = aws().await;
    let store = store(&aws).await;
    let messages: &dyn MessageStore = &store;
    let owner = sample::owner();
    let task = TaskId::generate(Utc::now());
    let long_ago = sample::now() - TimeDelta::days(4000);
    let message = pj_contract::message(&owner, &task, "sent", long_ago);
    assert!(messages.insert(&message).await.unwrap());
    let due = messages
        .due(long_ago + TimeDelta::seconds(1), 100)
        .await
        .unwrap();
    assert!(due.iter().any(|m| m.id == message.id));

    let mut sent = message.clone();
    sent.status = MessageStatus::Sent;
    sent.sent_at = Some(long_ago);
    sent.next_try_at = None;
    sent.attempts = 1;
    sent.version += 1;
    assert!(messages.update(&sent, message.version).await.unwrap());
    let item = raw_item(&aws, store.table(), format!("MSG#{}", message.id), "MSG").await;
    assert!(!item.contains_key("gsi2pk") && !item.contains_key("gsi2sk"));
    assert_eq!(text(&item, "status"), Some("sent"));
    let due = messages.due(Utc::now(), 1_000).await.unwrap();
    assert!(due.iter().all(|m| m.id != message.id));
}
