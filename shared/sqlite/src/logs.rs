//! [`LogStore`] on SQLite.

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{LogCursor, LogLine, LogStore, LogStream};
use pj_core::time::parse_rfc3339;
use rusqlite::{Row, params};

use crate::tasks::purge;
use crate::{SqliteStore, micros, sql_limit};

/// A stored line's columns, converted before the write so the transaction only writes.
struct LineRow {
    attempt: i64,
    seq: i64,
    ts: String,
    stream: &'static str,
    text: String,
}

impl LineRow {
    fn of(line: &LogLine) -> anyhow::Result<LineRow> {
        Ok(LineRow {
            attempt: i64::from(line.attempt.0),
            seq: i64::try_from(line.seq)
                .with_context(|| format!("the log seq {} is too large to store", line.seq))?,
            // Text keeps the timestamp exactly, nanoseconds included.
            ts: line.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            stream: line.stream.as_str(),
            text: line.text.clone(),
        })
    }
}

fn decode_line(row: &Row<'_>) -> anyhow::Result<LogLine> {
    let attempt: i64 = row.get(0)?;
    let seq: i64 = row.get(1)?;
    let ts: String = row.get(2)?;
    let stream: String = row.get(3)?;
    Ok(LogLine {
        attempt: Attempt(
            u32::try_from(attempt)
                .with_context(|| format!("a stored log line has the attempt {attempt}"))?,
        ),
        seq: u64::try_from(seq).with_context(|| format!("a stored log line has the seq {seq}"))?,
        ts: parse_rfc3339(&ts)
            .ok_or_else(|| anyhow!("a stored log line has the timestamp {ts:?}"))?,
        stream: LogStream::parse(&stream)
            .ok_or_else(|| anyhow!("a stored log line has the stream {stream:?}"))?,
        text: row.get(4)?,
    })
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append(
        &self,
        task: &TaskId,
        lines: &[LogLine],
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        if lines.is_empty() {
            return Ok(0);
        }
        let task = task.as_str().to_owned();
        let rows = lines
            .iter()
            .map(LineRow::of)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let expires_at = micros(expires_at);
        self.with_writer("log append", move |conn| {
            let tx = conn.savepoint().context("could not start the log append")?;
            let mut stored = 0;
            {
                // OR IGNORE: a line already stored under its (attempt, seq) keeps its first text.
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO log_lines
                         (task_id, attempt, seq, ts, stream, text, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .context("could not prepare the log insert")?;
                for row in &rows {
                    stored += stmt
                        .execute(params![
                            task,
                            row.attempt,
                            row.seq,
                            row.ts,
                            row.stream,
                            row.text,
                            expires_at
                        ])
                        .context("could not store a log line")?;
                }
            }
            tx.commit().context("could not commit the log append")?;
            Ok(stored)
        })
        .await
    }

    async fn read(
        &self,
        task: &TaskId,
        after: Option<LogCursor>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<LogLine>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let task = task.as_str().to_owned();
        // Before every line there is: attempts count from 1 and seqs from 0, both never negative.
        let (attempt, seq) = match after {
            Some(c) => (
                i64::from(c.attempt.0),
                i64::try_from(c.seq).unwrap_or(i64::MAX),
            ),
            None => (-1, -1),
        };
        let now = micros(now);
        self.with_reader("log read", move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT attempt, seq, ts, stream, text FROM log_lines
                     WHERE task_id = ?1 AND (attempt, seq) > (?2, ?3) AND expires_at > ?4
                     ORDER BY attempt, seq LIMIT ?5",
                )
                .context("could not prepare the log read")?;
            let mut rows = stmt
                .query(params![task, attempt, seq, now, sql_limit(limit)])
                .context("could not read log lines")?;
            let mut lines = Vec::new();
            while let Some(row) = rows.next().context("could not read a log line")? {
                lines.push(decode_line(row)?);
            }
            Ok(lines)
        })
        .await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        purge(
            self,
            "DELETE FROM log_lines WHERE rowid IN
             (SELECT rowid FROM log_lines WHERE expires_at <= ?1 LIMIT ?2)",
            micros(now),
        )
        .await
    }
}
