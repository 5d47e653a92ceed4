//! The contract of [`TaskStore`]: tasks, idempotency keys and webhook ids.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use pj_core::ids::{TaskId, UserId};
use pj_core::ports::{CreateOutcome, ListCursor, TaskStore, WriteOutcome};
use pj_core::task::{Task, TaskStatus};
use rand::Rng;

use crate::sample::{self, unique};
use crate::{must, start};

const SUITE: &str = "task_store";

/// Runs every check of the task store contract.
pub async fn task_store_contract<S: TaskStore + ?Sized>(store: &S) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $( start(SUITE, stringify!($check)); $check(store).await; )*
        };
    }
    run!(
        created_task_reads_back_equal,
        when_task_is_unknown_get_should_return_none,
        when_task_id_exists_create_should_fail,
        when_key_is_repeated_with_the_same_request_should_return_the_first_task,
        when_key_is_repeated_with_another_request_should_conflict_and_store_nothing,
        when_another_owner_uses_the_same_key_should_create,
        when_key_has_expired_should_create_anew,
        when_version_matches_update_should_write,
        when_version_is_stale_update_should_conflict_and_write_nothing,
        when_task_is_missing_update_should_write_nothing,
        when_new_version_is_not_one_more_update_should_fail,
        when_update_carries_a_receipt_should_record_it_with_the_write,
        when_receipt_was_recorded_update_should_write_nothing,
        when_version_conflicts_the_receipt_should_not_be_recorded,
        when_recorded_receipt_has_expired_update_should_write,
        when_webhook_is_remembered_twice_should_say_it_was_there,
        when_remembered_webhook_has_expired_should_count_as_absent,
        webhook_seen_should_ignore_ids_expired_at_the_given_time,
        list_should_be_newest_first_and_only_the_owners,
        list_should_page_with_the_cursor,
        list_should_filter_by_status,
        list_should_order_by_microseconds_then_id,
        when_limit_is_zero_list_should_return_nothing,
        due_should_return_tasks_at_or_before_now_oldest_first,
        due_should_honour_the_limit,
        when_sweep_at_changes_due_should_follow,
        purge_should_keep_live_records,
        concurrent_writers_should_have_one_winner_per_version,
    );
}

/// Creates a task, panicking unless the store says it was created.
async fn create<S: TaskStore + ?Sized>(store: &S, task: &Task) {
    let outcome = must(store.create(task, None).await, "create");
    assert_eq!(
        outcome,
        CreateOutcome::Created,
        "creating the new task {} should create it",
        task.id
    );
}

async fn get<S: TaskStore + ?Sized>(store: &S, id: &TaskId) -> Option<Task> {
    must(store.get(id).await, format_args!("get {id}"))
}

async fn stored<S: TaskStore + ?Sized>(store: &S, id: &TaskId) -> Task {
    match get(store, id).await {
        Some(task) => task,
        None => panic!("the task {id} should be stored"),
    }
}

/// Writes `next` over `expected`, panicking unless it was written.
async fn write<S: TaskStore + ?Sized>(store: &S, next: &Task, expected: u64) {
    let outcome = must(store.update(next, expected, None).await, "update");
    assert_eq!(
        outcome,
        WriteOutcome::Written,
        "writing version {} of {} over version {expected} should succeed",
        next.version,
        next.id
    );
}

fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

fn cursor(task: &Task) -> ListCursor {
    ListCursor {
        created_at: task.created_at,
        id: task.id.clone(),
    }
}

/// Tasks of one new owner created one second apart from `base`, oldest first.
async fn seeded<S: TaskStore + ?Sized>(
    store: &S,
    owner: &UserId,
    base: DateTime<Utc>,
    n: i64,
) -> Vec<Task> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let task = sample::task(owner, base + TimeDelta::seconds(i));
        create(store, &task).await;
        tasks.push(task);
    }
    tasks
}

async fn created_task_reads_back_equal<S: TaskStore + ?Sized>(store: &S) {
    let task = sample::task(&sample::owner(), sample::now());
    create(store, &task).await;
    assert_eq!(
        stored(store, &task.id).await,
        task,
        "a created task should read back field for field"
    );
}

async fn when_task_is_unknown_get_should_return_none<S: TaskStore + ?Sized>(store: &S) {
    let id = TaskId::generate(Utc::now());
    assert!(
        get(store, &id).await.is_none(),
        "a task never created should not be found"
    );
}

async fn when_task_id_exists_create_should_fail<S: TaskStore + ?Sized>(store: &S) {
    let task = sample::task(&sample::owner(), sample::now());
    create(store, &task).await;
    let mut again = task.clone();
    again.title = "an impostor".into();
    let result = store.create(&again, None).await;
    assert!(
        !matches!(result, Ok(CreateOutcome::Created)),
        "creating a task under an id already stored should not succeed, got {result:?}"
    );
    assert_eq!(
        stored(store, &task.id).await,
        task,
        "a refused create should leave the first task as it was"
    );
}

async fn when_key_is_repeated_with_the_same_request_should_return_the_first_task<
    S: TaskStore + ?Sized,
>(
    store: &S,
) {
    let owner = sample::owner();
    let key = format!("key-{}", unique());
    let now = sample::now();
    let new = sample::request("Same request twice");
    let record = sample::idempotency(&owner, &key, &new, now + TimeDelta::hours(1));
    let first = sample::task_from(new.clone(), &owner, now);
    let outcome = must(store.create(&first, Some(&record)).await, "first create");
    assert_eq!(
        outcome,
        CreateOutcome::Created,
        "the first use of a key should create"
    );

    let retry = sample::task_from(new, &owner, now + TimeDelta::seconds(1));
    let outcome = must(store.create(&retry, Some(&record)).await, "retried create");
    assert_eq!(
        outcome,
        CreateOutcome::Existing(Box::new(first.clone())),
        "a retry with the same key and request should return the first task"
    );
    assert!(
        get(store, &retry.id).await.is_none(),
        "a retry answered with the first task should store no second task"
    );
}

async fn when_key_is_repeated_with_another_request_should_conflict_and_store_nothing<
    S: TaskStore + ?Sized,
>(
    store: &S,
) {
    let owner = sample::owner();
    let key = format!("key-{}", unique());
    let now = sample::now();
    let expires = now + TimeDelta::hours(1);
    let one = sample::request("One request");
    let other = sample::request("Another request");
    let first = sample::task_from(one.clone(), &owner, now);
    let record = sample::idempotency(&owner, &key, &one, expires);
    must(store.create(&first, Some(&record)).await, "first create");

    let second = sample::task_from(other.clone(), &owner, now);
    let other_record = sample::idempotency(&owner, &key, &other, expires);
    let outcome = must(
        store.create(&second, Some(&other_record)).await,
        "create with a reused key",
    );
    assert_eq!(
        outcome,
        CreateOutcome::KeyConflict,
        "a key reused with another request should conflict"
    );
    assert!(
        get(store, &second.id).await.is_none(),
        "a conflicting create should store no task"
    );
    let retry = sample::task_from(one, &owner, now);
    assert_eq!(
        must(store.create(&retry, Some(&record)).await, "retry"),
        CreateOutcome::Existing(Box::new(first)),
        "a conflict should not have replaced the key's first request"
    );
}

async fn when_another_owner_uses_the_same_key_should_create<S: TaskStore + ?Sized>(store: &S) {
    let key = format!("key-{}", unique());
    let now = sample::now();
    let expires = now + TimeDelta::hours(1);
    let new = sample::request("Shared key");
    for owner in [sample::owner(), sample::owner()] {
        let task = sample::task_from(new.clone(), &owner, now);
        let record = sample::idempotency(&owner, &key, &new, expires);
        assert_eq!(
            must(store.create(&task, Some(&record)).await, "create"),
            CreateOutcome::Created,
            "keys belong to their owner: another owner's key of the same name should not count"
        );
    }
}

async fn when_key_has_expired_should_create_anew<S: TaskStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let key = format!("key-{}", unique());
    let now = sample::now();
    let old = sample::request("Long ago");
    let expired = sample::idempotency(&owner, &key, &old, now - TimeDelta::hours(1));
    let first = sample::task_from(old, &owner, now);
    must(store.create(&first, Some(&expired)).await, "first create");

    let new = sample::request("Today");
    let live = sample::idempotency(&owner, &key, &new, now + TimeDelta::hours(1));
    let second = sample::task_from(new.clone(), &owner, now);
    assert_eq!(
        must(
            store.create(&second, Some(&live)).await,
            "create after expiry"
        ),
        CreateOutcome::Created,
        "an expired key should count as never used"
    );
    let retry = sample::task_from(new, &owner, now);
    assert_eq!(
        must(store.create(&retry, Some(&live)).await, "retry"),
        CreateOutcome::Existing(Box::new(second)),
        "the key should now belong to the request that reused it"
    );
}

async fn when_version_matches_update_should_write<S: TaskStore + ?Sized>(store: &S) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let mut next = sample::next_version(&task, now + TimeDelta::seconds(1));
    next.status = TaskStatus::Running;
    next.sweep_at = None;
    write(store, &next, task.version).await;
    assert_eq!(
        stored(store, &task.id).await,
        next,
        "an update should store the whole new task"
    );
}

async fn when_version_is_stale_update_should_conflict_and_write_nothing<S: TaskStore + ?Sized>(
    store: &S,
) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let winner = sample::next_version(&task, now);
    write(store, &winner, task.version).await;

    let mut loser = sample::next_version(&task, now);
    loser.title = "the loser".into();
    let outcome = must(store.update(&loser, task.version, None).await, "update");
    assert_eq!(
        outcome,
        WriteOutcome::VersionConflict,
        "an update over a version no longer stored should conflict"
    );
    assert_eq!(
        stored(store, &task.id).await,
        winner,
        "a conflicting update should change nothing"
    );
}

async fn when_task_is_missing_update_should_write_nothing<S: TaskStore + ?Sized>(store: &S) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    let next = sample::next_version(&task, now);
    let outcome = store.update(&next, task.version, None).await;
    assert!(
        !matches!(outcome, Ok(WriteOutcome::Written)),
        "an update of a task never created should not write, got {outcome:?}"
    );
    assert!(
        get(store, &task.id).await.is_none(),
        "an update should never create a task"
    );
}

async fn when_new_version_is_not_one_more_update_should_fail<S: TaskStore + ?Sized>(store: &S) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let mut same = sample::next_version(&task, now);
    same.version = task.version;
    let outcome = store.update(&same, task.version, None).await;
    assert!(
        !matches!(outcome, Ok(WriteOutcome::Written)),
        "a write that does not raise the version by one would defeat compare-and-set; got {outcome:?}"
    );
    assert_eq!(stored(store, &task.id).await, task);
}

async fn when_update_carries_a_receipt_should_record_it_with_the_write<S: TaskStore + ?Sized>(
    store: &S,
) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let receipt = sample::receipt(now + TimeDelta::hours(1));
    assert!(
        !must(store.webhook_seen(&receipt.id, now).await, "webhook_seen"),
        "a new webhook id should not be seen"
    );
    let next = sample::next_version(&task, now);
    let outcome = must(
        store.update(&next, task.version, Some(&receipt)).await,
        "update",
    );
    assert_eq!(outcome, WriteOutcome::Written);
    assert!(
        must(store.webhook_seen(&receipt.id, now).await, "webhook_seen"),
        "the receipt of a write should be recorded with it"
    );
}

async fn when_receipt_was_recorded_update_should_write_nothing<S: TaskStore + ?Sized>(store: &S) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let receipt = sample::receipt(now + TimeDelta::hours(1));
    let first = sample::next_version(&task, now);
    let outcome = must(
        store.update(&first, task.version, Some(&receipt)).await,
        "first delivery",
    );
    assert_eq!(outcome, WriteOutcome::Written);

    let duplicate = sample::next_version(&first, now);
    let outcome = must(
        store
            .update(&duplicate, first.version, Some(&receipt))
            .await,
        "second delivery",
    );
    assert_eq!(
        outcome,
        WriteOutcome::WebhookSeen,
        "a write carrying a webhook id already recorded is a duplicate delivery"
    );
    assert_eq!(
        stored(store, &task.id).await,
        first,
        "a duplicate delivery should write nothing"
    );

    let remembered = sample::receipt(now + TimeDelta::hours(1));
    must(
        store.remember_webhook(&remembered).await,
        "remember_webhook",
    );
    let outcome = must(
        store
            .update(&duplicate, first.version, Some(&remembered))
            .await,
        "delivery remembered without a change",
    );
    assert_eq!(
        outcome,
        WriteOutcome::WebhookSeen,
        "a webhook id remembered without a write should also block the write"
    );
}

async fn when_version_conflicts_the_receipt_should_not_be_recorded<S: TaskStore + ?Sized>(
    store: &S,
) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let winner = sample::next_version(&task, now);
    write(store, &winner, task.version).await;

    let receipt = sample::receipt(now + TimeDelta::hours(1));
    let loser = sample::next_version(&task, now);
    let outcome = must(
        store.update(&loser, task.version, Some(&receipt)).await,
        "update",
    );
    assert_eq!(outcome, WriteOutcome::VersionConflict);
    assert!(
        !must(store.webhook_seen(&receipt.id, now).await, "webhook_seen"),
        "the receipt of a write that did not happen should not be recorded, or its retry \
         would be dropped as a duplicate"
    );
    let retried = sample::next_version(&winner, now);
    let outcome = must(
        store.update(&retried, winner.version, Some(&receipt)).await,
        "retry",
    );
    assert_eq!(
        outcome,
        WriteOutcome::Written,
        "the retry over the current version should be written"
    );
}

async fn when_recorded_receipt_has_expired_update_should_write<S: TaskStore + ?Sized>(store: &S) {
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let mut receipt = sample::receipt(now - TimeDelta::hours(1));
    must(store.remember_webhook(&receipt).await, "remember_webhook");

    receipt.expires_at = now + TimeDelta::hours(1);
    let next = sample::next_version(&task, now);
    let outcome = must(
        store.update(&next, task.version, Some(&receipt)).await,
        "update",
    );
    assert_eq!(
        outcome,
        WriteOutcome::Written,
        "an expired webhook id should count as never seen"
    );
    assert!(
        must(store.webhook_seen(&receipt.id, now).await, "webhook_seen"),
        "the write should have recorded the id again, with its new expiry"
    );
}

async fn when_webhook_is_remembered_twice_should_say_it_was_there<S: TaskStore + ?Sized>(
    store: &S,
) {
    let now = sample::now();
    let receipt = sample::receipt(now + TimeDelta::hours(1));
    assert!(
        must(store.remember_webhook(&receipt).await, "first remember"),
        "remembering a new webhook id should report it new"
    );
    assert!(
        !must(store.remember_webhook(&receipt).await, "second remember"),
        "remembering it again should report it was there"
    );
    assert!(must(
        store.webhook_seen(&receipt.id, now).await,
        "webhook_seen"
    ));
}

async fn when_remembered_webhook_has_expired_should_count_as_absent<S: TaskStore + ?Sized>(
    store: &S,
) {
    let now = sample::now();
    let mut receipt = sample::receipt(now - TimeDelta::hours(1));
    must(store.remember_webhook(&receipt).await, "remember expired");
    assert!(
        !must(store.webhook_seen(&receipt.id, now).await, "webhook_seen"),
        "an expired webhook id should not be seen"
    );
    receipt.expires_at = now + TimeDelta::hours(1);
    assert!(
        must(store.remember_webhook(&receipt).await, "remember again"),
        "an expired webhook id should count as absent and be replaced"
    );
    assert!(
        must(store.webhook_seen(&receipt.id, now).await, "webhook_seen"),
        "the replaced id should be seen until its new expiry"
    );
}

async fn webhook_seen_should_ignore_ids_expired_at_the_given_time<S: TaskStore + ?Sized>(
    store: &S,
) {
    let now = sample::now();
    let receipt = sample::receipt(now + TimeDelta::minutes(10));
    must(store.remember_webhook(&receipt).await, "remember_webhook");
    assert!(must(
        store.webhook_seen(&receipt.id, now).await,
        "webhook_seen now"
    ));
    assert!(
        !must(
            store
                .webhook_seen(&receipt.id, now + TimeDelta::minutes(11))
                .await,
            "webhook_seen later"
        ),
        "webhook_seen should judge expiry by the time it is given"
    );
}

async fn list_should_be_newest_first_and_only_the_owners<S: TaskStore + ?Sized>(store: &S) {
    let base = sample::now();
    let owner = sample::owner();
    let mine = seeded(store, &owner, base, 5).await;
    let theirs = seeded(store, &sample::owner(), base, 3).await;

    let listed = must(store.list(&owner, None, 100, None).await, "list");
    let expected: Vec<TaskId> = mine.iter().rev().map(|t| t.id.clone()).collect();
    assert_eq!(
        ids(&listed),
        expected,
        "list should give the owner's tasks newest first, and only theirs"
    );
    assert_eq!(listed[0], mine[4], "listed tasks should be whole tasks");
    assert!(
        listed
            .iter()
            .all(|t| !theirs.iter().any(|other| other.id == t.id)),
        "another owner's tasks should never be listed"
    );
}

async fn list_should_page_with_the_cursor<S: TaskStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let tasks = seeded(store, &owner, sample::now(), 5).await;
    let mut pages = Vec::new();
    let mut after: Option<ListCursor> = None;
    loop {
        let page = must(
            store.list(&owner, None, 2, after.as_ref()).await,
            "list page",
        );
        assert!(page.len() <= 2, "a page should hold at most the limit");
        let Some(last) = page.last() else { break };
        after = Some(cursor(last));
        pages.push(ids(&page));
        assert!(
            pages.len() <= 3,
            "five tasks should take three pages of two"
        );
    }
    let expected: Vec<Vec<TaskId>> = vec![
        vec![tasks[4].id.clone(), tasks[3].id.clone()],
        vec![tasks[2].id.clone(), tasks[1].id.clone()],
        vec![tasks[0].id.clone()],
    ];
    assert_eq!(
        pages, expected,
        "pages should continue strictly after the cursor"
    );
}

async fn list_should_filter_by_status<S: TaskStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let base = sample::now();
    let tasks = seeded(store, &owner, base, 4).await;
    for task in [&tasks[0], &tasks[2], &tasks[3]] {
        let mut next = sample::next_version(task, base);
        next.status = TaskStatus::Running;
        write(store, &next, task.version).await;
    }
    let running = must(
        store
            .list(&owner, Some(TaskStatus::Running), 100, None)
            .await,
        "list running",
    );
    assert_eq!(
        ids(&running),
        vec![
            tasks[3].id.clone(),
            tasks[2].id.clone(),
            tasks[0].id.clone()
        ],
        "the status filter should follow updates and keep newest first"
    );
    assert!(running.iter().all(|t| t.status == TaskStatus::Running));

    let page = must(
        store
            .list(
                &owner,
                Some(TaskStatus::Running),
                1,
                Some(&cursor(&running[0])),
            )
            .await,
        "list running after a cursor",
    );
    assert_eq!(
        ids(&page),
        vec![tasks[2].id.clone()],
        "the filter should page too"
    );

    let queued = must(
        store
            .list(&owner, Some(TaskStatus::Queued), 100, None)
            .await,
        "list queued",
    );
    assert_eq!(ids(&queued), vec![tasks[1].id.clone()]);
    let completed = must(
        store
            .list(&owner, Some(TaskStatus::Completed), 100, None)
            .await,
        "list completed",
    );
    assert!(completed.is_empty(), "no task of the owner is completed");
}

async fn list_should_order_by_microseconds_then_id<S: TaskStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let base = sample::now();
    // Two tasks one microsecond apart, then two created in the same microsecond.
    let early = sample::task(&owner, base);
    let later = sample::task(&owner, base + TimeDelta::microseconds(1));
    let tie_at = base + TimeDelta::microseconds(2);
    let mut tied = [sample::task(&owner, tie_at), sample::task(&owner, tie_at)];
    tied.sort_by(|a, b| a.id.cmp(&b.id));
    for task in [&early, &later, &tied[0], &tied[1]] {
        create(store, task).await;
    }
    let expected = vec![
        tied[1].id.clone(),
        tied[0].id.clone(),
        later.id.clone(),
        early.id.clone(),
    ];
    let listed = must(store.list(&owner, None, 100, None).await, "list");
    assert_eq!(
        ids(&listed),
        expected,
        "list should tell microseconds apart and break ties by id, descending"
    );
    let mut paged = Vec::new();
    let mut after = None;
    while let Some(task) = must(store.list(&owner, None, 1, after.as_ref()).await, "page")
        .into_iter()
        .next()
    {
        after = Some(cursor(&task));
        paged.push(task.id);
        assert!(paged.len() <= 4, "paging one by one should end");
    }
    assert_eq!(
        paged, expected,
        "a cursor inside a tie should continue with the rest of the tie"
    );
}

async fn when_limit_is_zero_list_should_return_nothing<S: TaskStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    seeded(store, &owner, sample::now(), 1).await;
    assert!(must(store.list(&owner, None, 0, None).await, "list").is_empty());
    assert_eq!(
        must(store.list(&owner, None, 1, None).await, "list").len(),
        1
    );
}

/// A stretch of the distant past no other run uses, for `sweep_at`: `due` looks at every task
/// of the store, and real tasks are due around now.
fn private_past() -> DateTime<Utc> {
    let spread: i64 = rand::thread_rng().gen_range(0..20 * 365 * 86_400);
    let start = Utc
        .with_ymd_and_hms(1990, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH);
    start + TimeDelta::seconds(spread)
}

/// Tasks due at `base`, `base + 1 s` and `base + 2 s`, one due later, one never due.
async fn sweep_fixture<S: TaskStore + ?Sized>(store: &S, base: DateTime<Utc>) -> Vec<Task> {
    let owner = sample::owner();
    let now = sample::now();
    // Created in an order unlike their sweep order, so the order comes from sweep_at.
    let plan = [Some(2), Some(0), None, Some(3_600), Some(1)];
    let mut tasks = Vec::new();
    for offset in plan {
        let mut task = sample::task(&owner, now);
        task.sweep_at = offset.map(|s| base + TimeDelta::seconds(s));
        create(store, &task).await;
        tasks.push(task);
    }
    tasks
}

/// Leaves nothing due in the private stretch, for the next run on a shared store.
async fn clear_sweeps<S: TaskStore + ?Sized>(store: &S, tasks: &[Task]) {
    for task in tasks {
        let current = stored(store, &task.id).await;
        if current.sweep_at.is_some() {
            let mut next = sample::next_version(&current, current.updated_at);
            next.sweep_at = None;
            write(store, &next, current.version).await;
        }
    }
}

fn mine(due: &[Task], tasks: &[Task]) -> Vec<TaskId> {
    due.iter()
        .filter(|t| tasks.iter().any(|m| m.id == t.id))
        .map(|t| t.id.clone())
        .collect()
}

async fn due_should_return_tasks_at_or_before_now_oldest_first<S: TaskStore + ?Sized>(store: &S) {
    let base = private_past();
    let tasks = sweep_fixture(store, base).await;
    let due = must(store.due(base + TimeDelta::seconds(2), 1_000).await, "due");
    assert_eq!(
        mine(&due, &tasks),
        vec![
            tasks[1].id.clone(),
            tasks[4].id.clone(),
            tasks[0].id.clone()
        ],
        "due should give the tasks whose sweep_at is at or before now, oldest sweep_at first, \
         and neither later ones nor ones without sweep_at"
    );
    let sweeps: Vec<_> = due.iter().map(|t| t.sweep_at).collect();
    assert!(
        sweeps.windows(2).all(|w| w[0] <= w[1]),
        "due should be ordered by sweep_at across all tasks"
    );
    let before = must(store.due(base - TimeDelta::seconds(1), 1_000).await, "due");
    assert!(
        mine(&before, &tasks).is_empty(),
        "nothing should be due before its sweep_at"
    );
    clear_sweeps(store, &tasks).await;
}

async fn due_should_honour_the_limit<S: TaskStore + ?Sized>(store: &S) {
    let base = private_past();
    let tasks = sweep_fixture(store, base).await;
    let due = must(store.due(base + TimeDelta::seconds(2), 2).await, "due");
    assert!(due.len() <= 2, "due should return at most the limit");
    assert!(
        must(store.due(base, 0).await, "due").is_empty(),
        "a limit of zero should return nothing"
    );
    clear_sweeps(store, &tasks).await;
}

async fn when_sweep_at_changes_due_should_follow<S: TaskStore + ?Sized>(store: &S) {
    let base = private_past();
    let tasks = sweep_fixture(store, base).await;
    let at = base + TimeDelta::seconds(2);
    // The first due task is cleared, the never-due one becomes due.
    let current = stored(store, &tasks[1].id).await;
    let mut cleared = sample::next_version(&current, current.updated_at);
    cleared.sweep_at = None;
    write(store, &cleared, current.version).await;
    let current = stored(store, &tasks[2].id).await;
    let mut scheduled = sample::next_version(&current, current.updated_at);
    scheduled.sweep_at = Some(base + TimeDelta::milliseconds(500));
    write(store, &scheduled, current.version).await;

    let due = must(store.due(at, 1_000).await, "due");
    assert_eq!(
        mine(&due, &tasks),
        vec![
            tasks[2].id.clone(),
            tasks[4].id.clone(),
            tasks[0].id.clone()
        ],
        "due should follow updates of sweep_at"
    );
    let found = due.iter().find(|t| t.id == tasks[2].id);
    assert_eq!(
        found,
        Some(&scheduled),
        "due should return the current task"
    );
    clear_sweeps(store, &tasks).await;
}

async fn purge_should_keep_live_records<S: TaskStore + ?Sized>(store: &S) {
    let owner = sample::owner();
    let now = sample::now();
    let live_receipt = sample::receipt(now + TimeDelta::hours(1));
    let dead_receipt = sample::receipt(now - TimeDelta::hours(1));
    must(store.remember_webhook(&live_receipt).await, "remember live");
    must(store.remember_webhook(&dead_receipt).await, "remember dead");
    let key = format!("key-{}", unique());
    let new = sample::request("Purge me not");
    let record = sample::idempotency(&owner, &key, &new, now + TimeDelta::hours(1));
    let first = sample::task_from(new.clone(), &owner, now);
    must(store.create(&first, Some(&record)).await, "create");

    must(store.purge_expired(now).await, "purge_expired");

    assert!(
        must(store.webhook_seen(&live_receipt.id, now).await, "seen"),
        "purge should keep live webhook ids"
    );
    assert!(
        !must(store.webhook_seen(&dead_receipt.id, now).await, "seen"),
        "expired webhook ids stay unseen"
    );
    let retry = sample::task_from(new, &owner, now);
    assert_eq!(
        must(store.create(&retry, Some(&record)).await, "retry"),
        CreateOutcome::Existing(Box::new(first.clone())),
        "purge should keep live idempotency keys"
    );
    assert_eq!(
        stored(store, &first.id).await,
        first,
        "purge should never touch tasks"
    );
}

/// Writers racing on one task: every version is won by exactly one of them.
async fn concurrent_writers_should_have_one_winner_per_version<S: TaskStore + ?Sized>(store: &S) {
    const WRITERS: usize = 8;
    const WINS_EACH: usize = 3;
    let now = sample::now();
    let task = sample::task(&sample::owner(), now);
    create(store, &task).await;
    let writers = (0..WRITERS).map(|writer| {
        let id = task.id.clone();
        async move {
            let mut won = Vec::new();
            while won.len() < WINS_EACH {
                let current = stored(store, &id).await;
                let mut next = sample::next_version(&current, now);
                next.title = format!("writer {writer}");
                match must(store.update(&next, current.version, None).await, "update") {
                    WriteOutcome::Written => won.push(next.version),
                    WriteOutcome::VersionConflict => tokio::task::yield_now().await,
                    WriteOutcome::WebhookSeen => {
                        panic!("an update without a receipt cannot be a duplicate")
                    }
                }
            }
            won
        }
    });
    let wins: Vec<u64> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let unique_wins: BTreeSet<u64> = wins.iter().copied().collect();
    assert_eq!(
        unique_wins.len(),
        wins.len(),
        "two writers won the same version: {wins:?}"
    );
    let total = (WRITERS * WINS_EACH) as u64;
    let expected: BTreeSet<u64> = (task.version + 1..=task.version + total).collect();
    assert_eq!(
        unique_wins, expected,
        "every version should have been won once"
    );
    assert_eq!(stored(store, &task.id).await.version, task.version + total);
}
