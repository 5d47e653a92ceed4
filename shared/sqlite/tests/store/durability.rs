//! Reopening the file gives back everything; migrations run once.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use pj_contract::sample;
use pj_core::ports::{
    CreateOutcome, LogStore, QueueConsumer, QueueName, QueueSender, TaskStore, WriteOutcome,
};
use pj_sqlite::{QueueConfig, SCHEMA_VERSION, SqliteStore};
use rusqlite::Connection;

use crate::{TestStore, open};

fn schema(path: &std::path::Path) -> (u32, Vec<String>) {
    let conn = Connection::open(path).expect("the file opens");
    let version = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .expect("schema query");
    let sql = stmt
        .query_map([], |r| r.get(0))
        .expect("schema rows")
        .collect::<Result<Vec<String>, _>>()
        .expect("schema text");
    (version, sql)
}

#[tokio::test]
async fn when_store_is_reopened_should_give_back_all_state() {
    let t = TestStore::new();
    let now = sample::now();
    let owner = sample::owner();
    let new = sample::request("Survive a restart");
    let record = sample::idempotency(&owner, "restart-key", &new, now + TimeDelta::hours(1));
    let task = sample::task_from(new.clone(), &owner, now);
    let receipt = sample::receipt(now + TimeDelta::hours(1));
    let next = sample::next_version(&task, now);
    let lines = vec![
        sample::line(1, 0, "before"),
        sample::line(1, 1, "the crash"),
    ];
    {
        let store = &t.store;
        store.create(&task, Some(&record)).await.unwrap();
        assert_eq!(
            store
                .update(&next, task.version, Some(&receipt))
                .await
                .unwrap(),
            WriteOutcome::Written
        );
        store
            .append(&task.id, &lines, now + TimeDelta::days(7))
            .await
            .unwrap();
        store
            .send(QueueName::Dispatch, "in flight", Duration::ZERO)
            .await
            .unwrap();
        store
            .send(QueueName::Notify, "waiting", Duration::ZERO)
            .await
            .unwrap();
        let got = store
            .receive(QueueName::Dispatch, 1, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }
    let TestStore { store, path, _dir } = t;
    drop(store);

    let store = open(&path);
    assert_eq!(store.get(&task.id).await.unwrap(), Some(next.clone()));
    assert!(store.webhook_seen(&receipt.id, now).await.unwrap());
    let retry = sample::task_from(new, &owner, now);
    assert_eq!(
        store.create(&retry, Some(&record)).await.unwrap(),
        CreateOutcome::Existing(Box::new(next)),
        "the idempotency key should survive"
    );
    assert_eq!(store.read(&task.id, None, 10, now).await.unwrap(), lines);
    assert!(
        store
            .receive(QueueName::Dispatch, 10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "a message in flight should stay in flight across a restart"
    );
    let waiting = store
        .receive(QueueName::Notify, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].body, "waiting");
}

#[tokio::test]
async fn when_opened_again_migrations_should_change_nothing() {
    let t = TestStore::new();
    let first = schema(&t.path);
    assert_eq!(first.0, SCHEMA_VERSION);
    assert!(
        first.1.iter().any(|sql| sql.contains("CREATE TABLE tasks")),
        "the schema should be there after the first open"
    );
    for _ in 0..3 {
        let again = open(&t.path);
        drop(again);
        assert_eq!(
            schema(&t.path),
            first,
            "reopening should not touch the schema"
        );
    }
}

#[tokio::test]
async fn a_database_of_schema_1_should_gain_the_later_tables_and_keep_its_tasks() {
    let t = TestStore::new();
    let TestStore { store, path, _dir } = t;
    let task = sample::task(&sample::owner(), Utc::now());
    store.create(&task, None).await.unwrap();
    drop(store);
    // A database as the release before migration 2 left it (without the later migrations'
    // tables too).
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE messages; DROP TABLE artifacts; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let store = open(&path);
    assert_eq!(schema(&path).0, SCHEMA_VERSION);
    assert_eq!(store.get(&task.id).await.unwrap(), Some(task.clone()));
    let message = pj_contract::message(&task.owner, &task.id, "after", Utc::now());
    assert!(
        pj_core::messages::MessageStore::insert(&store, &message)
            .await
            .unwrap()
    );
    let name = pj_core::artifacts::ArtifactName::parse("a1-reply-1.md").unwrap();
    let put = pj_core::artifacts::ArtifactStore::put(
        &store,
        &task.id,
        pj_core::ids::Attempt(1),
        &name,
        b"a reply".to_vec(),
        Utc::now() + chrono::TimeDelta::days(7),
    )
    .await
    .unwrap();
    assert_eq!(put, pj_core::artifacts::PutOutcome::Stored);
}

#[tokio::test]
async fn when_two_stores_open_one_new_file_should_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite3");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || SqliteStore::open(&path, QueueConfig::default()).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("every opener succeeds");
    }
    assert_eq!(schema(&path).0, SCHEMA_VERSION);
}

#[tokio::test]
async fn when_database_is_newer_than_the_program_should_refuse_to_open() {
    let t = TestStore::new();
    let TestStore { store, path, _dir } = t;
    drop(store);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, QueueConfig::default()).unwrap_err();
    assert!(
        format!("{err:#}").contains("newer than this program"),
        "the error should say why: {err:#}"
    );
}

#[tokio::test]
async fn the_file_should_be_in_wal_mode() {
    let t = TestStore::new();
    let conn = Connection::open(&t.path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn when_max_receives_is_zero_open_should_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(
        &dir.path().join("x.sqlite3"),
        QueueConfig { max_receives: 0 },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("max_receives"));
}

#[tokio::test]
async fn clones_should_share_one_database() {
    let t = TestStore::new();
    let clone = t.store.clone();
    let task = sample::task(&sample::owner(), Utc::now());
    clone.create(&task, None).await.unwrap();
    assert_eq!(t.store.get(&task.id).await.unwrap(), Some(task));
}
