//! [`TaskStore`] on SQLite.

use anyhow::{Context, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::ids::{TaskId, UserId, WebhookId};
use pj_core::ports::{
    CreateOutcome, IdempotencyRecord, ListCursor, TaskStore, WebhookReceipt, WriteOutcome,
};
use pj_core::task::{Task, TaskStatus};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteStore, micros, micros_ceil, now_micros, sql_limit};

/// Rows deleted per transaction by a purge, so a large purge never holds the writer long.
pub(crate) const PURGE_BATCH: i64 = 2_000;

/// A task as its row holds it.
struct TaskRow {
    id: String,
    owner: String,
    status: &'static str,
    created_at: i64,
    version: i64,
    sweep_at: Option<i64>,
    doc: String,
}

impl TaskRow {
    fn of(task: &Task) -> anyhow::Result<TaskRow> {
        Ok(TaskRow {
            id: task.id.as_str().to_owned(),
            owner: task.owner.as_str().to_owned(),
            status: task.status.as_str(),
            created_at: micros(task.created_at),
            version: i64::try_from(task.version).context("the task's version is too large")?,
            // Rounded up so a task is never due before its time.
            sweep_at: task.sweep_at.map(micros_ceil),
            doc: serde_json::to_string(task).context("could not encode the task")?,
        })
    }
}

fn decode_task(doc: &str) -> anyhow::Result<Task> {
    serde_json::from_str(doc).context("a stored task document does not decode")
}

fn decode_tasks(docs: Vec<String>) -> anyhow::Result<Vec<Task>> {
    docs.iter().map(|d| decode_task(d)).collect()
}

/// Whether a live (unexpired at `now`) webhook id is recorded.
fn webhook_live(conn: &Connection, id: &str, now: i64) -> anyhow::Result<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM webhook_ids WHERE id = ?1 AND expires_at > ?2")
        .context("could not prepare the webhook lookup")?;
    stmt.exists(params![id, now])
        .context("could not look up the webhook id")
}

/// Records a webhook id, replacing an expired record of it. Returns whether it was written.
fn record_webhook(conn: &Connection, id: &str, expires_at: i64, now: i64) -> anyhow::Result<bool> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO webhook_ids (id, expires_at) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
             WHERE webhook_ids.expires_at <= ?3",
        )
        .context("could not prepare the webhook insert")?;
    let changed = stmt
        .execute(params![id, expires_at, now])
        .context("could not record the webhook id")?;
    Ok(changed > 0)
}

fn read_task(conn: &Connection, id: &str) -> anyhow::Result<Option<Task>> {
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM tasks WHERE id = ?1")
        .context("could not prepare the task lookup")?;
    let doc: Option<String> = stmt
        .query_row(params![id], |row| row.get(0))
        .optional()
        .context("could not read the task")?;
    doc.as_deref().map(decode_task).transpose()
}

/// The SQL of one `list` query shape; each shape is its own cached statement so SQLite plans it
/// against the right index.
fn list_sql(with_status: bool, with_cursor: bool) -> &'static str {
    match (with_status, with_cursor) {
        (false, false) => {
            "SELECT doc FROM tasks WHERE owner = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        }
        (false, true) => {
            "SELECT doc FROM tasks WHERE owner = ?1 AND (created_at, id) < (?3, ?4)
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        }
        (true, false) => {
            "SELECT doc FROM tasks WHERE owner = ?1 AND status = ?5
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        }
        (true, true) => {
            "SELECT doc FROM tasks WHERE owner = ?1 AND status = ?5 AND (created_at, id) < (?3, ?4)
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        }
    }
}

fn create_tx(
    conn: &mut Connection,
    row: &TaskRow,
    idempotency: Option<&IdempotencyRecord>,
    now: i64,
) -> anyhow::Result<CreateOutcome> {
    let tx = conn.savepoint().context("could not start the create")?;
    if let Some(record) = idempotency {
        let existing: Option<(String, String)> = tx
            .prepare_cached(
                "SELECT fingerprint, task_id FROM idempotency_keys
                 WHERE owner = ?1 AND key = ?2 AND expires_at > ?3",
            )
            .context("could not prepare the idempotency lookup")?
            .query_row(params![record.owner.as_str(), record.key, now], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .context("could not look up the idempotency key")?;
        if let Some((fingerprint, task_id)) = existing {
            if fingerprint != record.fingerprint {
                return Ok(CreateOutcome::KeyConflict);
            }
            let first = read_task(&tx, &task_id)?.with_context(|| {
                format!("the idempotency key points to the missing task {task_id}")
            })?;
            return Ok(CreateOutcome::Existing(Box::new(first)));
        }
    }
    tx.prepare_cached(
        "INSERT INTO tasks (id, owner, status, created_at, version, sweep_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .context("could not prepare the task insert")?
    .execute(params![
        row.id,
        row.owner,
        row.status,
        row.created_at,
        row.version,
        row.sweep_at,
        row.doc
    ])
    .with_context(|| format!("could not insert the task {}", row.id))?;
    if let Some(record) = idempotency {
        // An expired record of the same key may still be there: it is replaced.
        tx.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (owner, key, fingerprint, task_id, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .context("could not prepare the idempotency insert")?
        .execute(params![
            record.owner.as_str(),
            record.key,
            record.fingerprint,
            row.id,
            micros(record.expires_at)
        ])
        .context("could not record the idempotency key")?;
    }
    tx.commit().context("could not commit the create")?;
    Ok(CreateOutcome::Created)
}

fn update_tx(
    conn: &mut Connection,
    row: &TaskRow,
    expected_version: i64,
    receipt: Option<(&str, i64)>,
    now: i64,
) -> anyhow::Result<WriteOutcome> {
    let tx = conn.savepoint().context("could not start the update")?;
    // A duplicate delivery is reported as such even when the task moved on since: the caller
    // must not redo it against the newer version.
    if let Some((id, _)) = receipt
        && webhook_live(&tx, id, now)?
    {
        return Ok(WriteOutcome::WebhookSeen);
    }
    let changed = tx
        .prepare_cached(
            "UPDATE tasks SET status = ?2, version = ?3, sweep_at = ?4, doc = ?5
             WHERE id = ?1 AND version = ?6",
        )
        .context("could not prepare the task update")?
        .execute(params![
            row.id,
            row.status,
            row.version,
            row.sweep_at,
            row.doc,
            expected_version
        ])
        .with_context(|| format!("could not update the task {}", row.id))?;
    // No row matched: another version is stored, or there is no such task; the caller reads
    // it again and finds out which.
    if changed == 0 {
        return Ok(WriteOutcome::VersionConflict);
    }
    if let Some((id, expires_at)) = receipt {
        record_webhook(&tx, id, expires_at, now)?;
    }
    tx.commit().context("could not commit the update")?;
    Ok(WriteOutcome::Written)
}

/// Runs a batched `DELETE` (parameters: now, batch size) until a batch comes back short.
/// Each batch is its own transaction, so other writes go on between them; a crash in the
/// middle leaves the rest for the next purge.
pub(crate) async fn purge(store: &SqliteStore, sql: &'static str, now: i64) -> anyhow::Result<u64> {
    let mut total = 0u64;
    loop {
        let deleted = store
            .with_writer("purge", move |conn| {
                let n = conn
                    .prepare_cached(sql)
                    .context("could not prepare the purge")?
                    .execute(params![now, PURGE_BATCH])
                    .context("could not purge")?;
                Ok(n)
            })
            .await?;
        total += deleted as u64;
        if (deleted as i64) < PURGE_BATCH {
            return Ok(total);
        }
    }
}

/// Expiry rules: a record is live while `expires_at > now`. The port passes no clock to
/// `create` and `update`, so "now" is taken from the task itself: its `created_at` for a
/// create and its `updated_at` for an update, both set from the engine's clock at the moment
/// of the change (so tests with a manual clock behave). `remember_webhook` has only the
/// system clock.
#[async_trait]
impl TaskStore for SqliteStore {
    async fn create(
        &self,
        task: &Task,
        idempotency: Option<&IdempotencyRecord>,
    ) -> anyhow::Result<CreateOutcome> {
        if let Some(record) = idempotency
            && record.owner != task.owner
        {
            bail!(
                "the idempotency key of {} is recorded for another owner",
                task.id
            );
        }
        let row = TaskRow::of(task)?;
        let record = idempotency.cloned();
        let now = micros(task.created_at);
        self.with_writer("create", move |conn| {
            create_tx(conn, &row, record.as_ref(), now)
        })
        .await
    }

    async fn get(&self, id: &TaskId) -> anyhow::Result<Option<Task>> {
        let id = id.as_str().to_owned();
        self.with_reader("get", move |conn| read_task(conn, &id))
            .await
    }

    async fn list(
        &self,
        owner: &UserId,
        status: Option<TaskStatus>,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> anyhow::Result<Vec<Task>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let owner = owner.as_str().to_owned();
        let status = status.map(TaskStatus::as_str);
        let after = after.map(|c| (micros(c.created_at), c.id.as_str().to_owned()));
        self.with_reader("list", move |conn| {
            let mut stmt = conn
                .prepare_cached(list_sql(status.is_some(), after.is_some()))
                .context("could not prepare the task list")?;
            // Unused parameters of a shape are simply not bound.
            stmt.raw_bind_parameter(1, &owner)?;
            stmt.raw_bind_parameter(2, sql_limit(limit))?;
            if let Some((created_at, id)) = &after {
                stmt.raw_bind_parameter(3, created_at)?;
                stmt.raw_bind_parameter(4, id)?;
            }
            if let Some(status) = status {
                stmt.raw_bind_parameter(5, status)?;
            }
            let mut rows = stmt.raw_query();
            let mut docs = Vec::new();
            while let Some(row) = rows.next().context("could not list tasks")? {
                docs.push(row.get::<_, String>(0)?);
            }
            decode_tasks(docs)
        })
        .await
    }

    async fn update(
        &self,
        task: &Task,
        expected_version: u64,
        receipt: Option<&WebhookReceipt>,
    ) -> anyhow::Result<WriteOutcome> {
        if task.version != expected_version.wrapping_add(1) {
            bail!(
                "the task {} is written as version {} over version {expected_version}; \
                 a write must add exactly one",
                task.id,
                task.version
            );
        }
        let row = TaskRow::of(task)?;
        let expected = i64::try_from(expected_version).context("the version is too large")?;
        let receipt = receipt.map(|r| (r.id.as_str().to_owned(), micros(r.expires_at)));
        let now = micros(task.updated_at);
        self.with_writer("update", move |conn| {
            update_tx(
                conn,
                &row,
                expected,
                receipt.as_ref().map(|(id, exp)| (id.as_str(), *exp)),
                now,
            )
        })
        .await
    }

    async fn webhook_seen(&self, id: &WebhookId, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let id = id.as_str().to_owned();
        let now = micros(now);
        self.with_reader("webhook lookup", move |conn| webhook_live(conn, &id, now))
            .await
    }

    async fn remember_webhook(&self, receipt: &WebhookReceipt) -> anyhow::Result<bool> {
        let id = receipt.id.as_str().to_owned();
        let expires_at = micros(receipt.expires_at);
        let now = now_micros();
        self.with_writer("webhook insert", move |conn| {
            record_webhook(conn, &id, expires_at, now)
        })
        .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<Task>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = micros(now);
        self.with_reader("due", move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    // `sweep_at IS NOT NULL` lets SQLite use the partial index.
                    "SELECT doc FROM tasks WHERE sweep_at IS NOT NULL AND sweep_at <= ?1
                     ORDER BY sweep_at, id LIMIT ?2",
                )
                .context("could not prepare the due query")?;
            let docs = stmt
                .query_map(params![now, sql_limit(limit)], |row| {
                    row.get::<_, String>(0)
                })
                .context("could not find due tasks")?
                .collect::<Result<Vec<_>, _>>()
                .context("could not read due tasks")?;
            decode_tasks(docs)
        })
        .await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let now = micros(now);
        let keys = purge(
            self,
            "DELETE FROM idempotency_keys WHERE (owner, key) IN
             (SELECT owner, key FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
            now,
        )
        .await?;
        let webhooks = purge(
            self,
            "DELETE FROM webhook_ids WHERE id IN
             (SELECT id FROM webhook_ids WHERE expires_at <= ?1 LIMIT ?2)",
            now,
        )
        .await?;
        Ok(keys + webhooks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_shape_binds_the_parameters_it_names() {
        for (status, cursor) in [(false, false), (false, true), (true, false), (true, true)] {
            let sql = list_sql(status, cursor);
            assert!(sql.contains("?1") && sql.contains("?2"));
            assert_eq!(sql.contains("?3"), cursor);
            assert_eq!(sql.contains("?5"), status);
        }
    }
}
