//! [`MessageStore`] on SQLite.

use anyhow::{Context, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::ids::UserId;
use pj_core::messages::{
    MessageCursor, MessageFilter, MessageId, MessageStatus, MessageStore, OutboundMessage,
};
use rusqlite::{OptionalExtension, params};

use crate::{SqliteStore, micros, micros_ceil, sql_limit};

/// A message as its row holds it.
struct MessageRow {
    id: String,
    owner: String,
    task_id: String,
    status: &'static str,
    created_at: i64,
    next_try_at: Option<i64>,
    version: i64,
    doc: String,
}

impl MessageRow {
    fn of(message: &OutboundMessage) -> anyhow::Result<MessageRow> {
        // Only a pending message is ever due; one without a time is due from its creation, as
        // the courier reads it.
        let next_try_at = (message.status == MessageStatus::Pending)
            .then(|| micros_ceil(message.next_try_at.unwrap_or(message.created_at)));
        Ok(MessageRow {
            id: message.id.as_str().to_owned(),
            owner: message.owner.as_str().to_owned(),
            task_id: message.task_id.as_str().to_owned(),
            status: message.status.as_str(),
            created_at: micros(message.created_at),
            next_try_at,
            version: i64::try_from(message.version)
                .context("the message's version is too large")?,
            doc: serde_json::to_string(message).context("could not encode the message")?,
        })
    }
}

fn decode(docs: Vec<String>) -> anyhow::Result<Vec<OutboundMessage>> {
    docs.iter()
        .map(|d| serde_json::from_str(d).context("a stored message does not decode"))
        .collect()
}

/// The SQL of one `list` query shape; each shape is its own cached statement so SQLite plans it
/// against the right index. Parameters: owner, limit, cursor time and id, task id, status.
fn list_sql(with_task: bool, with_status: bool, with_cursor: bool) -> String {
    let mut sql = String::from("SELECT doc FROM messages WHERE owner = ?1");
    if with_task {
        sql.push_str(" AND task_id = ?5");
    }
    if with_status {
        sql.push_str(" AND status = ?6");
    }
    if with_cursor {
        sql.push_str(" AND (created_at, id) < (?3, ?4)");
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?2");
    sql
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert(&self, message: &OutboundMessage) -> anyhow::Result<bool> {
        let row = MessageRow::of(message)?;
        self.with_writer("message insert", move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO messages
                     (id, owner, task_id, status, created_at, next_try_at, version, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (id) DO NOTHING",
                )
                .context("could not prepare the message insert")?
                .execute(params![
                    row.id,
                    row.owner,
                    row.task_id,
                    row.status,
                    row.created_at,
                    row.next_try_at,
                    row.version,
                    row.doc
                ])
                .with_context(|| format!("could not insert the message {}", row.id))?;
            Ok(n > 0)
        })
        .await
    }

    async fn get(&self, id: &MessageId) -> anyhow::Result<Option<OutboundMessage>> {
        let id = id.as_str().to_owned();
        self.with_reader("message get", move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM messages WHERE id = ?1")
                .context("could not prepare the message lookup")?
                .query_row(params![id], |row| row.get(0))
                .optional()
                .context("could not read the message")?;
            Ok(decode(doc.into_iter().collect())?.pop())
        })
        .await
    }

    async fn update(
        &self,
        message: &OutboundMessage,
        expected_version: u64,
    ) -> anyhow::Result<bool> {
        if message.version != expected_version.wrapping_add(1) {
            bail!(
                "the message {} is written as version {} over version {expected_version}; \
                 a write must add exactly one",
                message.id,
                message.version
            );
        }
        let row = MessageRow::of(message)?;
        let expected = i64::try_from(expected_version).context("the version is too large")?;
        self.with_writer("message update", move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE messages SET status = ?2, next_try_at = ?3, version = ?4, doc = ?5
                     WHERE id = ?1 AND version = ?6",
                )
                .context("could not prepare the message update")?
                .execute(params![
                    row.id,
                    row.status,
                    row.next_try_at,
                    row.version,
                    row.doc,
                    expected
                ])
                .with_context(|| format!("could not update the message {}", row.id))?;
            Ok(n > 0)
        })
        .await
    }

    async fn list(
        &self,
        owner: &UserId,
        filter: &MessageFilter,
        limit: usize,
        after: Option<&MessageCursor>,
    ) -> anyhow::Result<Vec<OutboundMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let owner = owner.as_str().to_owned();
        let task = filter.task_id.as_ref().map(|t| t.as_str().to_owned());
        let status = filter.status.map(MessageStatus::as_str);
        let after = after.map(|c| (micros(c.created_at), c.id.as_str().to_owned()));
        self.with_reader("message list", move |conn| {
            let sql = list_sql(task.is_some(), status.is_some(), after.is_some());
            let mut stmt = conn
                .prepare_cached(&sql)
                .context("could not prepare the message list")?;
            // Unused parameters of a shape are simply not bound.
            stmt.raw_bind_parameter(1, &owner)?;
            stmt.raw_bind_parameter(2, sql_limit(limit))?;
            if let Some((created_at, id)) = &after {
                stmt.raw_bind_parameter(3, created_at)?;
                stmt.raw_bind_parameter(4, id)?;
            }
            if let Some(task) = &task {
                stmt.raw_bind_parameter(5, task)?;
            }
            if let Some(status) = status {
                stmt.raw_bind_parameter(6, status)?;
            }
            let mut rows = stmt.raw_query();
            let mut docs = Vec::new();
            while let Some(row) = rows.next().context("could not list messages")? {
                docs.push(row.get::<_, String>(0)?);
            }
            decode(docs)
        })
        .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<OutboundMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = micros(now);
        self.with_reader("message due", move |conn| {
            let docs = conn
                .prepare_cached(
                    // `next_try_at IS NOT NULL` lets SQLite use the partial index.
                    "SELECT doc FROM messages
                     WHERE next_try_at IS NOT NULL AND next_try_at <= ?1
                     ORDER BY next_try_at, id LIMIT ?2",
                )
                .context("could not prepare the due messages query")?
                .query_map(params![now, sql_limit(limit)], |row| {
                    row.get::<_, String>(0)
                })
                .context("could not find due messages")?
                .collect::<Result<Vec<_>, _>>()
                .context("could not read due messages")?;
            decode(docs)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_shape_binds_the_parameters_it_names() {
        for task in [false, true] {
            for status in [false, true] {
                for cursor in [false, true] {
                    let sql = list_sql(task, status, cursor);
                    assert!(sql.contains("?1") && sql.contains("?2"));
                    assert_eq!(sql.contains("?3") && sql.contains("?4"), cursor);
                    assert_eq!(sql.contains("?5"), task);
                    assert_eq!(sql.contains("?6"), status);
                }
            }
        }
    }
}
