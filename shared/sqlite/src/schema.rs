//! The schema, as numbered migrations recorded in `PRAGMA user_version`.

use anyhow::{Context, bail};
use rusqlite::{Connection, TransactionBehavior};

/// Each entry moves the schema from version `index` to `index + 1`. Append only: a released
/// migration never changes, or databases already past it would disagree with new ones.
const MIGRATIONS: &[&str] = &[
    // 1: tasks, deduplication records, log lines and the queues.
    r#"
    -- A task is stored whole as its JSON document; the other columns are copies of its fields
    -- that queries filter and sort on. Times are microseconds since the Unix epoch, the
    -- precision of the API's list cursor.
    CREATE TABLE tasks (
        id         TEXT PRIMARY KEY NOT NULL,
        owner      TEXT NOT NULL,
        status     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        sweep_at   INTEGER,
        doc        TEXT NOT NULL
    );
    CREATE INDEX tasks_by_owner ON tasks (owner, created_at, id);
    CREATE INDEX tasks_by_owner_status ON tasks (owner, status, created_at, id);
    -- Most tasks are finished and never due again: keep them out of the sweeper's index.
    CREATE INDEX tasks_by_sweep_at ON tasks (sweep_at, id) WHERE sweep_at IS NOT NULL;

    CREATE TABLE idempotency_keys (
        owner       TEXT NOT NULL,
        key         TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        expires_at  INTEGER NOT NULL,
        PRIMARY KEY (owner, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
    CREATE INDEX idempotency_keys_by_task ON idempotency_keys (task_id);

    CREATE TABLE webhook_ids (
        id         TEXT PRIMARY KEY NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX webhook_ids_by_expiry ON webhook_ids (expires_at);

    -- Lines may be kilobytes long, so this keeps a rowid rather than being WITHOUT ROWID.
    CREATE TABLE log_lines (
        task_id    TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
        ts         TEXT NOT NULL,
        stream     TEXT NOT NULL,
        text       TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, attempt, seq)
    );
    CREATE INDEX log_lines_by_expiry ON log_lines (expires_at);

    -- AUTOINCREMENT so ids are never reused: "oldest first" is id order.
    CREATE TABLE queue_messages (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        queue         TEXT NOT NULL,
        body          TEXT NOT NULL,
        sent_at       INTEGER NOT NULL,
        visible_at    INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt       TEXT UNIQUE
    );
    CREATE INDEX queue_messages_by_queue ON queue_messages (queue, id, visible_at);

    CREATE TABLE dead_letters (
        id            INTEGER PRIMARY KEY,
        queue         TEXT NOT NULL,
        body          TEXT NOT NULL,
        sent_at       INTEGER NOT NULL,
        receive_count INTEGER NOT NULL,
        dead_at       INTEGER NOT NULL
    );
    CREATE INDEX dead_letters_by_queue ON dead_letters (queue, id);
    "#,
    // 2: outbound messages (completion notices, notifications, reminders, reports' deliveries).
    r#"
    -- Stored whole as JSON, like a task; the columns are the fields queries filter and sort on.
    -- Times are microseconds since the Unix epoch. next_try_at is NULL unless the message is
    -- pending, so the sweeper's index holds only the messages that may still be sent.
    CREATE TABLE messages (
        id          TEXT PRIMARY KEY NOT NULL,
        owner       TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        next_try_at INTEGER,
        version     INTEGER NOT NULL,
        doc         TEXT NOT NULL
    );
    CREATE INDEX messages_by_owner ON messages (owner, created_at, id);
    CREATE INDEX messages_by_owner_task ON messages (owner, task_id, created_at, id);
    CREATE INDEX messages_by_next_try_at ON messages (next_try_at, id)
        WHERE next_try_at IS NOT NULL;
    "#,
    // 3: artifacts (a model's replies, a browser's screenshots), expiring with the logs.
    r#"
    CREATE TABLE artifacts (
        task_id    TEXT NOT NULL,
        name       TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        bytes      BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, name)
    );
    CREATE INDEX artifacts_by_expiry ON artifacts (expires_at);
    "#,
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per migration, so a crash
/// leaves it at a version it really has. Safe to run on every open and by several processes.
pub(crate) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same new file cannot both apply the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("could not start a migration")?;
        let current: u32 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .context("could not read the schema version")?;
        if current as usize >= MIGRATIONS.len() {
            if current > SCHEMA_VERSION {
                bail!(
                    "the database has schema version {current}, newer than this program's \
                     {SCHEMA_VERSION}; use a newer build"
                );
            }
            tx.commit().context("could not end the migration check")?;
            return Ok(());
        }
        let next = current + 1;
        tx.execute_batch(MIGRATIONS[current as usize])
            .with_context(|| format!("could not apply migration {next}"))?;
        // user_version lives in the database header, which is written in this transaction.
        tx.pragma_update(None, "user_version", next)
            .with_context(|| format!("could not record schema version {next}"))?;
        tx.commit()
            .with_context(|| format!("could not commit migration {next}"))?;
        tracing::info!(version = next, "SQLite schema migrated");
    }
}
