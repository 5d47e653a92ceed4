//! [`QueueSender`] and [`QueueConsumer`] on SQLite, with SQS semantics: a received message is
//! invisible for its visibility timeout and comes again unless deleted; each receive gives it
//! a new receipt, and only the newest receipt acts on it; a message received `max_receives`
//! times that comes back goes to the dead-letter table.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use pj_core::ports::{QueueConsumer, QueueInspector, QueueName, QueueSender, QueueStats, Received};
use rand::RngCore;
use rusqlite::{Connection, params};

use crate::{SqliteStore, duration_micros, now_micros, sql_limit};

/// An unguessable receipt: 128 random bits, hex.
fn new_receipt() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn receive_tx(
    conn: &mut Connection,
    queue: &'static str,
    max: usize,
    visibility: i64,
    max_receives: i64,
) -> anyhow::Result<Vec<Received>> {
    let now = now_micros();
    let visible_at = now.saturating_add(visibility);
    let tx = conn.savepoint().context("could not start the receive")?;
    let mut received = Vec::new();
    // Dead letters are skipped, so one pass may come back short: look further, past the last
    // id looked at (a zero visibility timeout leaves received messages visible, and they must
    // not be taken twice in one receive).
    let mut last_id = 0i64;
    loop {
        let want = max - received.len();
        let candidates: Vec<(i64, i64, String)> = tx
            .prepare_cached(
                "SELECT id, receive_count, body FROM queue_messages
                 WHERE queue = ?1 AND id > ?2 AND visible_at <= ?3
                 ORDER BY id LIMIT ?4",
            )
            .context("could not prepare the receive")?
            .query_map(params![queue, last_id, now, sql_limit(want)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .context("could not look for messages")?
            .collect::<Result<_, _>>()
            .context("could not read messages")?;
        let Some(&(last, _, _)) = candidates.last() else {
            break;
        };
        last_id = last;
        for (id, count, body) in candidates {
            if count >= max_receives {
                tx.prepare_cached(
                    "INSERT INTO dead_letters (id, queue, body, sent_at, receive_count, dead_at)
                     SELECT id, queue, body, sent_at, receive_count, ?2
                     FROM queue_messages WHERE id = ?1",
                )
                .context("could not prepare the dead-letter move")?
                .execute(params![id, now])
                .context("could not move a message to the dead letters")?;
                tx.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")
                    .context("could not prepare the dead-letter delete")?
                    .execute(params![id])
                    .context("could not remove a dead letter from the queue")?;
                tracing::warn!(
                    queue,
                    message_id = id,
                    receive_count = count,
                    "message moved to the dead letters"
                );
                continue;
            }
            let receipt = new_receipt();
            tx.prepare_cached(
                "UPDATE queue_messages
                 SET receive_count = receive_count + 1, receipt = ?2, visible_at = ?3
                 WHERE id = ?1",
            )
            .context("could not prepare the receive update")?
            .execute(params![id, receipt, visible_at])
            .context("could not mark a message received")?;
            let receive_count = u32::try_from(count + 1)
                .with_context(|| format!("message {id} has the receive count {count}"))?;
            received.push(Received {
                receipt,
                body,
                receive_count,
            });
        }
        if received.len() >= max {
            break;
        }
    }
    tx.commit().context("could not commit the receive")?;
    Ok(received)
}

impl SqliteStore {
    /// The bodies and receive counts of the messages of `queue` that went to the dead letters,
    /// oldest first. For tests and operators.
    pub async fn dead_letters(&self, queue: QueueName) -> anyhow::Result<Vec<(String, u32)>> {
        let queue = queue.as_str();
        self.with_reader("dead-letter read", move |conn| {
            let rows: Vec<(String, i64)> = conn
                .prepare_cached(
                    "SELECT body, receive_count FROM dead_letters WHERE queue = ?1 ORDER BY id",
                )
                .context("could not prepare the dead-letter read")?
                .query_map(params![queue], |row| Ok((row.get(0)?, row.get(1)?)))
                .context("could not read the dead letters")?
                .collect::<Result<_, _>>()
                .context("could not read a dead letter")?;
            rows.into_iter()
                .map(|(body, count)| {
                    let count = u32::try_from(count)
                        .with_context(|| format!("a dead letter has the receive count {count}"))?;
                    Ok((body, count))
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl QueueSender for SqliteStore {
    async fn send(&self, queue: QueueName, body: &str, delay: Duration) -> anyhow::Result<()> {
        let name = queue.as_str();
        let body = body.to_owned();
        let delay_us = duration_micros(delay);
        self.with_writer("send", move |conn| {
            let now = now_micros();
            conn.prepare_cached(
                "INSERT INTO queue_messages (queue, body, sent_at, visible_at, receive_count)
                 VALUES (?1, ?2, ?3, ?4, 0)",
            )
            .context("could not prepare the send")?
            .execute(params![name, body, now, now.saturating_add(delay_us)])
            .context("could not store the message")?;
            Ok(())
        })
        .await?;
        if delay.is_zero() {
            self.signal(queue);
        }
        Ok(())
    }
}

#[async_trait]
impl QueueInspector for SqliteStore {
    async fn stats(&self, queue: QueueName) -> anyhow::Result<QueueStats> {
        let name = queue.as_str();
        self.with_reader("queue stats", move |conn| {
            let now = now_micros();
            let (visible, oldest): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT COUNT(*), MIN(visible_at) FROM queue_messages
                     WHERE queue = ?1 AND visible_at <= ?2",
                )
                .context("could not prepare the queue stats")?
                .query_row(params![name, now], |row| Ok((row.get(0)?, row.get(1)?)))
                .context("could not count the queue")?;
            Ok(QueueStats {
                visible: u64::try_from(visible).unwrap_or(0),
                oldest_visible_age: oldest.map(|at| {
                    Duration::from_micros(u64::try_from(now.saturating_sub(at)).unwrap_or(0))
                }),
            })
        })
        .await
    }
}

#[async_trait]
impl QueueConsumer for SqliteStore {
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> anyhow::Result<Vec<Received>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let name = queue.as_str();
        let visibility = duration_micros(visibility);
        let max_receives = i64::from(self.inner.queue.max_receives);
        self.with_writer("receive", move |conn| {
            receive_tx(conn, name, max, visibility, max_receives)
        })
        .await
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> anyhow::Result<()> {
        let name = queue.as_str();
        let receipt = receipt.to_owned();
        self.with_writer("delete", move |conn| {
            // A stale receipt matches no row: nothing happens, as the port asks.
            conn.prepare_cached("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2")
                .context("could not prepare the delete")?
                .execute(params![name, receipt])
                .context("could not delete the message")?;
            Ok(())
        })
        .await
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let name = queue.as_str();
        let receipt = receipt.to_owned();
        let timeout_us = duration_micros(timeout);
        let changed = self
            .with_writer("visibility change", move |conn| {
                let visible_at = now_micros().saturating_add(timeout_us);
                conn.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2",
                )
                .context("could not prepare the visibility change")?
                .execute(params![name, receipt, visible_at])
                .context("could not change the message's visibility")
            })
            .await?;
        if changed > 0 && timeout.is_zero() {
            self.signal(queue);
        }
        Ok(())
    }
}
