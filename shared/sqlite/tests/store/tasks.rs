//! Task and log store behaviour beyond the contract: concurrency at scale, exact purge
//! counts, expiry judged by the engine's clock.

use std::collections::BTreeSet;

use chrono::{TimeDelta, TimeZone, Utc};
use pj_contract::sample;
use pj_core::ports::{CreateOutcome, LogStore, TaskStore, WriteOutcome};

use crate::TestStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_many_writers_race_on_many_tasks_should_have_one_winner_per_version() {
    const TASKS: usize = 6;
    const WRITERS: usize = 8;
    const ROUNDS: usize = 10;
    let t = TestStore::new();
    let owner = sample::owner();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let task = sample::task(&owner, Utc::now());
        t.store.create(&task, None).await.unwrap();
        tasks.push(task);
    }
    let mut handles = Vec::new();
    for task in &tasks {
        for _ in 0..WRITERS {
            let store = t.store.clone();
            let id = task.id.clone();
            handles.push(tokio::spawn(async move {
                let mut won = Vec::new();
                for _ in 0..ROUNDS {
                    let current = store.get(&id).await.unwrap().unwrap();
                    let next = sample::next_version(&current, Utc::now());
                    match store.update(&next, current.version, None).await.unwrap() {
                        WriteOutcome::Written => won.push(next.version),
                        WriteOutcome::VersionConflict => {}
                        WriteOutcome::WebhookSeen => panic!("no receipt was given"),
                    }
                }
                (id, won)
            }));
        }
    }
    let mut wins: std::collections::HashMap<_, Vec<u64>> = Default::default();
    for h in handles {
        let (id, won) = h.await.unwrap();
        wins.entry(id).or_default().extend(won);
    }
    for task in &tasks {
        let won = &wins[&task.id];
        let unique: BTreeSet<u64> = won.iter().copied().collect();
        assert_eq!(unique.len(), won.len(), "a version was won twice: {won:?}");
        let stored = t.store.get(&task.id).await.unwrap().unwrap();
        let expected: BTreeSet<u64> = (task.version + 1..=stored.version).collect();
        assert_eq!(
            unique, expected,
            "every version up to the stored one was won once"
        );
    }
}

#[tokio::test]
async fn when_receipt_races_on_two_tasks_only_one_write_should_take_it() {
    let t = TestStore::new();
    let now = Utc::now();
    let owner = sample::owner();
    let (a, b) = (sample::task(&owner, now), sample::task(&owner, now));
    t.store.create(&a, None).await.unwrap();
    t.store.create(&b, None).await.unwrap();
    let receipt = sample::receipt(now + TimeDelta::hours(1));
    let (na, nb) = (sample::next_version(&a, now), sample::next_version(&b, now));
    let (ra, rb) = tokio::join!(
        t.store.update(&na, a.version, Some(&receipt)),
        t.store.update(&nb, b.version, Some(&receipt)),
    );
    let outcomes = [ra.unwrap(), rb.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == WriteOutcome::Written)
            .count(),
        1,
        "one delivery id should cause one write: {outcomes:?}"
    );
    assert!(outcomes.contains(&WriteOutcome::WebhookSeen));
}

#[tokio::test]
async fn purge_should_delete_and_count_expired_records() {
    let t = TestStore::new();
    let now = Utc::now();
    let owner = sample::owner();
    for i in 0..3 {
        let new = sample::request(&format!("request {i}"));
        let expires = if i < 2 {
            now - TimeDelta::minutes(1)
        } else {
            now + TimeDelta::hours(1)
        };
        let record = sample::idempotency(&owner, &format!("key-{i}"), &new, expires);
        let task = sample::task_from(new, &owner, now);
        assert_eq!(
            t.store.create(&task, Some(&record)).await.unwrap(),
            CreateOutcome::Created
        );
    }
    for i in 0..5 {
        let expires = if i < 4 {
            now - TimeDelta::minutes(1)
        } else {
            now + TimeDelta::hours(1)
        };
        t.store
            .remember_webhook(&sample::receipt(expires))
            .await
            .unwrap();
    }
    assert_eq!(
        TaskStore::purge_expired(&t.store, now).await.unwrap(),
        2 + 4
    );
    assert_eq!(
        TaskStore::purge_expired(&t.store, now).await.unwrap(),
        0,
        "nothing left to purge"
    );

    // More lines than one purge transaction takes, so the purge runs in batches.
    let task = sample::task(&owner, now);
    let lines: Vec<_> = (0..5_000).map(|s| sample::line(1, s, "old")).collect();
    for chunk in lines.chunks(1_000) {
        t.store
            .append(&task.id, chunk, now - TimeDelta::seconds(1))
            .await
            .unwrap();
    }
    t.store
        .append(
            &task.id,
            &[sample::line(2, 0, "new")],
            now + TimeDelta::days(7),
        )
        .await
        .unwrap();
    assert_eq!(LogStore::purge_expired(&t.store, now).await.unwrap(), 5_000);
    let left = t
        .store
        .read(&task.id, None, 10_000, now - TimeDelta::days(1))
        .await
        .unwrap();
    assert_eq!(
        left.len(),
        1,
        "only the live line is left, even for a reader in the past"
    );
}

#[tokio::test]
async fn when_engine_clock_is_in_the_past_keys_should_live_by_that_clock() {
    // A manual clock far from the system clock: expiry follows the task's own times.
    let t = TestStore::new();
    let then = Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap();
    let owner = sample::owner();
    let new = sample::request("From the past");
    let record = sample::idempotency(&owner, "old-clock", &new, then + TimeDelta::hours(24));
    let first = sample::task_from(new.clone(), &owner, then);
    t.store.create(&first, Some(&record)).await.unwrap();
    let retry = sample::task_from(new, &owner, then + TimeDelta::minutes(5));
    assert_eq!(
        t.store.create(&retry, Some(&record)).await.unwrap(),
        CreateOutcome::Existing(Box::new(first.clone()))
    );

    let receipt = sample::receipt(then + TimeDelta::hours(24));
    let next = sample::next_version(&first, then + TimeDelta::minutes(1));
    assert_eq!(
        t.store
            .update(&next, first.version, Some(&receipt))
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    let again = sample::next_version(&next, then + TimeDelta::minutes(2));
    assert_eq!(
        t.store
            .update(&again, next.version, Some(&receipt))
            .await
            .unwrap(),
        WriteOutcome::WebhookSeen,
        "a duplicate delivery under a manual clock should still be caught"
    );
}

#[tokio::test]
async fn when_sweep_at_has_nanoseconds_the_task_should_not_be_due_early() {
    let t = TestStore::new();
    let at = Utc.with_ymd_and_hms(1985, 1, 1, 0, 0, 0).unwrap() + TimeDelta::nanoseconds(1_500);
    let mut task = sample::task(&sample::owner(), Utc::now());
    task.sweep_at = Some(at);
    t.store.create(&task, None).await.unwrap();
    let early = t
        .store
        .due(at - TimeDelta::nanoseconds(500), 10)
        .await
        .unwrap();
    assert!(
        early.iter().all(|d| d.id != task.id),
        "due before its sweep_at"
    );
    let due = t
        .store
        .due(at + TimeDelta::microseconds(1), 10)
        .await
        .unwrap();
    assert!(due.iter().any(|d| d.id == task.id));
}
