//! The contract of [`MessageStore`]: outbound message records.

use chrono::{DateTime, TimeDelta, Utc};
use pj_core::ids::{Attempt, TaskId, UserId};
use pj_core::messages::{
    Channel, MessageContent, MessageCursor, MessageFilter, MessageId, MessageStatus, MessageStore,
    OutboundMessage,
};
use serde_json::json;

use crate::sample::{self, unique};
use crate::{must, start};

const SUITE: &str = "message_store";

/// Runs every check of the message store contract.
pub async fn message_store_contract<S: MessageStore + ?Sized>(store: &S) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $( start(SUITE, stringify!($check)); $check(store).await; )*
        };
    }
    run!(
        an_inserted_message_reads_back_equal,
        when_the_id_exists_insert_should_store_nothing_and_say_so,
        when_version_matches_update_should_write,
        when_version_is_stale_update_should_write_nothing,
        list_should_be_newest_first_and_only_the_owners,
        list_should_page_with_the_cursor,
        list_should_filter_by_task_and_status,
        due_should_return_pending_messages_at_or_before_now_oldest_first,
    );
}

/// A pending webhook message of `owner` for `task`, created at `at`.
pub fn message(owner: &UserId, task: &TaskId, purpose: &str, at: DateTime<Utc>) -> OutboundMessage {
    OutboundMessage::new(
        MessageId::derive(task, Attempt(1), &format!("{purpose}/{}", unique())),
        owner.clone(),
        task.clone(),
        Attempt(1),
        Channel::Webhook,
        "https://hooks.example.com/in?token=x".into(),
        None,
        MessageContent {
            text: "naïve ünïcode ✓".into(),
            html: None,
            payload: Some(json!({"type": "notification", "message": "hi"})),
        },
        at,
        TimeDelta::hours(24),
    )
}

fn task_id() -> TaskId {
    TaskId::generate(Utc::now())
}

async fn insert<S: MessageStore + ?Sized>(store: &S, message: &OutboundMessage) {
    assert!(
        must(store.insert(message).await, "insert"),
        "a new message {} was not inserted",
        message.id
    );
}

async fn an_inserted_message_reads_back_equal<S: MessageStore + ?Sized>(store: &S) {
    let m = message(&sample::owner(), &task_id(), "read", sample::now());
    insert(store, &m).await;
    let back = must(store.get(&m.id).await, "get");
    assert_eq!(back.as_ref(), Some(&m));
    let unknown = MessageId::derive(&task_id(), Attempt(1), "never");
    assert_eq!(must(store.get(&unknown).await, "get unknown"), None);
}

async fn when_the_id_exists_insert_should_store_nothing_and_say_so<S: MessageStore + ?Sized>(
    store: &S,
) {
    let m = message(&sample::owner(), &task_id(), "twice", sample::now());
    insert(store, &m).await;
    let mut again = m.clone();
    again.to = "https://elsewhere.example.com/".into();
    assert!(!must(store.insert(&again).await, "insert again"));
    assert_eq!(
        must(store.get(&m.id).await, "get").map(|b| b.to),
        Some(m.to)
    );
}

async fn when_version_matches_update_should_write<S: MessageStore + ?Sized>(store: &S) {
    let m = message(&sample::owner(), &task_id(), "update", sample::now());
    insert(store, &m).await;
    let mut sent = m.clone();
    sent.status = MessageStatus::Sent;
    sent.attempts = 1;
    sent.sent_at = Some(sample::now());
    sent.next_try_at = None;
    sent.version = m.version + 1;
    assert!(must(store.update(&sent, m.version).await, "update"));
    assert_eq!(must(store.get(&m.id).await, "get"), Some(sent));
}

async fn when_version_is_stale_update_should_write_nothing<S: MessageStore + ?Sized>(store: &S) {
    let m = message(&sample::owner(), &task_id(), "stale", sample::now());
    insert(store, &m).await;
    let mut first = m.clone();
    first.attempts = 1;
    first.version = m.version + 1;
    assert!(must(store.update(&first, m.version).await, "first update"));
    let mut late = m.clone();
    late.status = MessageStatus::Failed;
    late.version = m.version + 1;
    assert!(!must(store.update(&late, m.version).await, "stale update"));
    assert_eq!(must(store.get(&m.id).await, "get"), Some(first));
}

async fn list_should_be_newest_first_and_only_the_owners<S: MessageStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let t0 = sample::now();
    let task = task_id();
    let mut made = Vec::new();
    for i in 0..3 {
        let m = message(&owner, &task, "list", t0 + TimeDelta::seconds(i));
        insert(store, &m).await;
        made.push(m);
    }
    insert(store, &message(&sample::owner(), &task, "other", t0)).await;
    let listed = must(
        store
            .list(&owner, &MessageFilter::default(), 10, None)
            .await,
        "list",
    );
    made.reverse();
    assert_eq!(listed, made);
}

async fn list_should_page_with_the_cursor<S: MessageStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let t0 = sample::now();
    let task = task_id();
    for i in 0..5 {
        insert(
            store,
            &message(&owner, &task, "page", t0 + TimeDelta::seconds(i)),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut after: Option<MessageCursor> = None;
    loop {
        let page = must(
            store
                .list(&owner, &MessageFilter::default(), 2, after.as_ref())
                .await,
            "list page",
        );
        let Some(last) = page.last() else { break };
        after = Some(MessageCursor {
            created_at: last.created_at,
            id: last.id.clone(),
        });
        seen.extend(page.iter().map(|m| m.created_at));
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
}

async fn list_should_filter_by_task_and_status<S: MessageStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let (a, b) = (task_id(), task_id());
    let t0 = sample::now();
    let of_a = message(&owner, &a, "filter", t0);
    insert(store, &of_a).await;
    let mut of_b = message(&owner, &b, "filter", t0 + TimeDelta::seconds(1));
    insert(store, &of_b).await;
    let mut failed = of_b.clone();
    failed.status = MessageStatus::Failed;
    failed.version += 1;
    assert!(must(store.update(&failed, of_b.version).await, "update"));
    of_b = failed;
    let by_task = MessageFilter {
        task_id: Some(a.clone()),
        status: None,
    };
    assert_eq!(
        must(store.list(&owner, &by_task, 10, None).await, "by task"),
        vec![of_a.clone()]
    );
    let by_status = MessageFilter {
        task_id: None,
        status: Some(MessageStatus::Failed),
    };
    assert_eq!(
        must(store.list(&owner, &by_status, 10, None).await, "by status"),
        vec![of_b]
    );
    let both = MessageFilter {
        task_id: Some(a),
        status: Some(MessageStatus::Failed),
    };
    assert!(must(store.list(&owner, &both, 10, None).await, "both").is_empty());
}

async fn due_should_return_pending_messages_at_or_before_now_oldest_first<
    S: MessageStore + ?Sized,
>(
    store: &S,
) {
    // Far in the past, so other runs' messages (due "now") come after these.
    let base = sample::now() - TimeDelta::days(3650) - TimeDelta::seconds(rand_offset());
    let owner = sample::owner();
    let task = task_id();
    let mut second = message(&owner, &task, "due", base);
    second.next_try_at = Some(base + TimeDelta::seconds(2));
    let mut first = message(&owner, &task, "due", base);
    first.next_try_at = Some(base + TimeDelta::seconds(1));
    let mut later = message(&owner, &task, "due", base);
    later.next_try_at = Some(base + TimeDelta::seconds(60));
    let mut sent = message(&owner, &task, "due", base);
    sent.status = MessageStatus::Sent;
    sent.next_try_at = None;
    for m in [&second, &first, &later, &sent] {
        insert(store, m).await;
    }
    let due = must(store.due(base + TimeDelta::seconds(2), 100).await, "due");
    let ids: Vec<&MessageId> = due.iter().map(|m| &m.id).collect();
    let mine: Vec<&MessageId> = ids
        .into_iter()
        .filter(|id| [&first.id, &second.id, &later.id, &sent.id].contains(id))
        .collect();
    assert_eq!(mine, vec![&first.id, &second.id]);
    let limited = must(
        store.due(base + TimeDelta::seconds(2), 1).await,
        "due limit 1",
    );
    assert_eq!(limited.len(), 1);
}

/// Seconds to move this run's "long ago" so two runs on one store do not meet.
fn rand_offset() -> i64 {
    rand::Rng::gen_range(&mut rand::thread_rng(), 0..86_400)
}
