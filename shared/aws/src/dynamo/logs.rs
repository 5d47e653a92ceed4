//! [`LogStore`] on DynamoDB: one item per line under `LOG#{task}`, sorted by attempt and seq.
//!
//! Reads are strongly consistent: a reader that saw line 5 and then moved its cursor past it
//! must not later miss line 4, which an eventually consistent read could still hide.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, ReturnConsumedCapacity, WriteRequest};
use chrono::{DateTime, SecondsFormat, Utc};
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{LogCursor, LogLine, LogStore, LogStream};
use pj_core::time::parse_rfc3339;

use super::batch::{TableWriter, write_all};
use super::size::item_size;
use super::{
    DynamoStore, EXPIRES, Item, MAX_TASK_ITEM_BYTES, PK, SK, expiry, get_s, key, live, micros, n, s,
};

const TS: &str = "ts";
const STREAM: &str = "stream";
const TEXT: &str = "text";

fn log_pk(task: &TaskId) -> String {
    format!("LOG#{task}")
}

/// The sort key of a position: both numbers zero-padded, so text order is number order.
fn log_sk(attempt: Attempt, seq: u64) -> String {
    format!("{:010}#{seq:020}", attempt.0)
}

fn parse_sk(sk: &str) -> anyhow::Result<(Attempt, u64)> {
    let (attempt, seq) = sk
        .split_once('#')
        .ok_or_else(|| anyhow!("the log sort key {sk:?} has no separator"))?;
    Ok((
        Attempt(
            attempt
                .parse()
                .with_context(|| format!("the log sort key {sk:?}"))?,
        ),
        seq.parse()
            .with_context(|| format!("the log sort key {sk:?}"))?,
    ))
}

fn line_item(task: &TaskId, line: &LogLine, expires_at: DateTime<Utc>) -> anyhow::Result<Item> {
    let mut item = key(log_pk(task), &log_sk(line.attempt, line.seq));
    // Text keeps the timestamp exactly, nanoseconds included.
    item.insert(
        TS.to_owned(),
        s(line.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    item.insert(STREAM.to_owned(), s(line.stream.as_str()));
    item.insert(TEXT.to_owned(), s(line.text.clone()));
    expiry(&mut item, expires_at);
    let size = item_size(&item);
    // Lines are cut at 16 KiB before they come here; this only guards the item limit.
    if size > MAX_TASK_ITEM_BYTES {
        bail!(
            "the log line {} of {task} takes {size} bytes stored, over the limit of \
             {MAX_TASK_ITEM_BYTES}",
            line.cursor().encode()
        );
    }
    Ok(item)
}

fn decode_line(item: &Item) -> anyhow::Result<LogLine> {
    let (attempt, seq) = parse_sk(get_s(item, SK)?)?;
    let ts = get_s(item, TS)?;
    let stream = get_s(item, STREAM)?;
    Ok(LogLine {
        attempt,
        seq,
        ts: parse_rfc3339(ts)
            .ok_or_else(|| anyhow!("a stored log line has the timestamp {ts:?}"))?,
        stream: LogStream::parse(stream)
            .ok_or_else(|| anyhow!("a stored log line has the stream {stream:?}"))?,
        text: get_s(item, TEXT)?.to_owned(),
    })
}

/// The lowest and highest seq of each attempt among `positions`, in order.
fn attempt_ranges(positions: &BTreeSet<(Attempt, u64)>) -> Vec<(Attempt, u64, u64)> {
    let mut ranges: Vec<(Attempt, u64, u64)> = Vec::new();
    for &(attempt, seq) in positions {
        match ranges.last_mut() {
            // Positions come sorted, so a seq of the same attempt is the highest so far.
            Some((a, _, high)) if *a == attempt => *high = seq,
            _ => ranges.push((attempt, seq, seq)),
        }
    }
    ranges
}

impl DynamoStore {
    /// The sort keys stored for `task` between `low` and `high`, both included, expired or
    /// not (a line stays stored once, as it first came, until DynamoDB deletes it).
    async fn stored_positions(
        &self,
        task: &TaskId,
        low: String,
        high: String,
    ) -> anyhow::Result<HashSet<String>> {
        let mut stored = HashSet::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(log_pk(task)))
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()))
                .projection_expression("#sk")
                // A redelivered batch must see the first delivery's lines.
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .with_context(|| {
                    format!(
                        "Query of the stored log lines of {task} on {} failed",
                        self.table()
                    )
                })?;
            for item in output.items.unwrap_or_default() {
                stored.insert(get_s(&item, SK)?.to_owned());
            }
            match output.last_evaluated_key {
                Some(next) => start = Some(next),
                None => return Ok(stored),
            }
        }
    }
}

#[async_trait]
impl LogStore for DynamoStore {
    /// `BatchWriteItem` cannot be conditional, so "not stored yet" is what one consistent read
    /// before the write found: two appends of the same new lines racing each other may both
    /// count them (the second writes the same line again, or, with other text, replaces it).
    async fn append(
        &self,
        task: &TaskId,
        lines: &[LogLine],
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        // A position repeated within the batch keeps its first line.
        let mut positions = BTreeSet::new();
        let unique: Vec<&LogLine> = lines
            .iter()
            .filter(|l| positions.insert((l.attempt, l.seq)))
            .collect();
        // One bounded query per attempt in the batch (a runner's batch holds one): only the
        // sort keys between that attempt's lowest and highest seq are read, never the rest of
        // a long log.
        let mut stored = HashSet::new();
        for (attempt, low, high) in attempt_ranges(&positions) {
            stored.extend(
                self.stored_positions(task, log_sk(attempt, low), log_sk(attempt, high))
                    .await?,
            );
        }
        let mut requests = Vec::new();
        for line in unique {
            if stored.contains(&log_sk(line.attempt, line.seq)) {
                continue;
            }
            let put = PutRequest::builder()
                .set_item(Some(line_item(task, line, expires_at)?))
                .build()
                .context("could not build a log line Put")?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let new = requests.len();
        if new > 0 {
            let writer = TableWriter {
                client: &self.client,
                table: self.table(),
            };
            write_all(&writer, requests, &self.backoff)
                .await
                .with_context(|| format!("could not store the log lines of {task}"))?;
        }
        Ok(new)
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
        let now = micros(now);
        let mut lines = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = i32::try_from((limit - lines.len()).min(1_000)).unwrap_or(1_000);
            let mut query = self
                .client
                .query()
                .table_name(self.table())
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(log_pk(task)))
                .filter_expression("#exp > :now")
                .expression_attribute_names("#exp", EXPIRES)
                .expression_attribute_values(":now", n(now))
                .consistent_read(true)
                .scan_index_forward(true)
                .limit(page)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            query = match after {
                Some(c) => query
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":after", s(log_sk(c.attempt, c.seq))),
                None => query.key_condition_expression("#pk = :pk"),
            };
            let output = query.send().await.with_context(|| {
                format!(
                    "Query of the log lines of {task} on {} failed",
                    self.table()
                )
            })?;
            for item in output.items.unwrap_or_default() {
                // The filter already did this; a store that ignored it would still be right.
                if live(&item, now) {
                    lines.push(decode_line(&item)?);
                }
            }
            match output.last_evaluated_key {
                Some(next) if lines.len() < limit => start = Some(next),
                _ => {
                    lines.truncate(limit);
                    return Ok(lines);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_bounded_per_attempt_by_its_own_lowest_and_highest_seq() {
        let positions: BTreeSet<(Attempt, u64)> = [
            (Attempt(2), 3),
            (Attempt(1), 900),
            (Attempt(1), 905),
            (Attempt(2), 0),
            (Attempt(1), 901),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            attempt_ranges(&positions),
            [(Attempt(1), 900, 905), (Attempt(2), 0, 3)],
            "attempt 1 past seq 905 and attempt 2 past seq 3 are not read"
        );
        assert!(attempt_ranges(&BTreeSet::new()).is_empty());
    }

    #[test]
    fn sort_keys_should_order_like_positions_and_parse_back() {
        let a = log_sk(Attempt(1), 10);
        let b = log_sk(Attempt(1), 2);
        let c = log_sk(Attempt(2), 0);
        assert!(b < a && a < c);
        assert_eq!(parse_sk(&a).unwrap(), (Attempt(1), 10));
        assert_eq!(
            parse_sk(&log_sk(Attempt(u32::MAX), u64::MAX)).unwrap(),
            (Attempt(u32::MAX), u64::MAX)
        );
    }
}
