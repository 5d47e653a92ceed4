//! [`LogStore`] on DynamoDB: log lines packed into items, one item per run of consecutive seqs
//! of an accepted batch, with one small head item per attempt that serialises the appends.
//!
//! - A chunk (`LOG#{task}`, `{attempt:010}#{first seq:020}`) holds the lines `first..=last` of
//!   one attempt, every seq of that range and no other: `last` (a number) and `lines`, the lines
//!   as a JSON array of `[ts, stream, text]` compressed with deflate (a binary attribute). A
//!   chunk holds at most [`MAX_LINES_PER_CHUNK`] lines and [`MAX_CHUNK_JSON_BYTES`] of JSON, so
//!   it stays well under DynamoDB's 400 KB item limit whatever the lines are.
//! - A head (`LOGHEAD#{task}`, `{attempt:010}`) holds `last`, the highest seq stored for the
//!   attempt, a `version`, and the latest expiry of the attempt's chunks (so it outlives them).
//!
//! Every write of chunks is one transaction with an update of their attempt's head, whose
//! condition proves that none of the chunk's seqs is stored: either "the head's `last` is below
//! the first seq written" (a runner's next batch: one request, nothing read first), or, when
//! that fails (a retried or late batch), "the head's `version` is still the one read" after a
//! consistent read of the head and of the chunks whose ranges can overlap the batch (a query
//! bounded by the batch's own seqs). Two appends of the same seqs cannot both commit: the second
//! transaction's condition on the head fails, and it reads again what is stored.
//!
//! Reads are strongly consistent: a reader that saw line 5 and then moved its cursor past it
//! must not later miss line 4, which an eventually consistent read could still hide. A chunk is
//! one item, so a reader sees a runner's batch (one chunk) all or none.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem, Update,
};
use aws_smithy_types::Blob;
use chrono::{DateTime, SecondsFormat, Utc};
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{LogCursor, LogLine, LogStore, LogStream};
use pj_core::time::parse_rfc3339;

use super::size::item_size;
use super::tasks::cancellation_reasons;
use super::{
    CONDITION_FAILED, DynamoStore, EXPIRES, Item, PK, SK, TRANSACTION_CONFLICT, TTL, VERSION,
    expiry, get_i64, get_s, key, live, micros, n, pause, s,
};

const LAST: &str = "last";
const LINES: &str = "lines";

/// The most lines in one chunk. Part of the stored layout: reads and the dedupe query start
/// this many seqs before the position they need, to find the chunk that holds it.
pub(crate) const MAX_LINES_PER_CHUNK: u64 = 1_000;
/// The most JSON (before compression) in one chunk: deflate adds at most a few bytes per 64 KB
/// it cannot compress, so a chunk stays far under the 400 KB item limit. A single line longer
/// than this (lines are cut at 16 KiB, but JSON escapes can grow one) gets a chunk of its own.
pub(crate) const MAX_CHUNK_JSON_BYTES: usize = 300 * 1024;
/// The largest chunk item written.
const MAX_CHUNK_ITEM_BYTES: usize = 390 * 1024;
/// The most item bytes in one transaction (DynamoDB allows 4 MB in all).
const MAX_TRANSACTION_BYTES: usize = 2 * 1024 * 1024;
/// The most chunks in one transaction, beside the head (DynamoDB allows 100 actions).
const MAX_CHUNKS_PER_TRANSACTION: usize = 24;
/// The most a stored chunk inflates to: its JSON limit with room for one escaped long line.
const MAX_INFLATED_BYTES: usize = 2 * 1024 * 1024;
/// How often an append reads and writes again after meeting a concurrent append.
const APPEND_TRIES: u32 = 8;

fn log_pk(task: &TaskId) -> String {
    format!("LOG#{task}")
}

fn head_pk(task: &TaskId) -> String {
    format!("LOGHEAD#{task}")
}

fn head_sk(attempt: Attempt) -> String {
    format!("{:010}", attempt.0)
}

/// The sort key of a chunk starting at `seq`: both numbers zero-padded, so text order is number
/// order.
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

/// A number attribute that may exceed `i64` (a seq may be any `u64`).
fn get_u64(item: &Item, name: &str) -> anyhow::Result<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .with_context(|| format!("the attribute {name} is not a whole number")),
        Some(_) => Err(anyhow!("the attribute {name} is not a number")),
        None => Err(anyhow!("the attribute {name} is missing")),
    }
}

/// One line as stored in a chunk; its position is the chunk's first seq plus its index.
type StoredLine<'a> = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>, String);

fn line_json(line: &LogLine) -> anyhow::Result<Vec<u8>> {
    // Text keeps the timestamp exactly, nanoseconds included.
    serde_json::to_vec(&(
        line.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        line.stream.as_str(),
        &line.text,
    ))
    .context("could not encode a log line")
}

/// A run of consecutive seqs of one attempt, ready to store.
struct Chunk {
    attempt: Attempt,
    first: u64,
    last: u64,
    /// The lines' JSON values, each on its own.
    json: Vec<Vec<u8>>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.json.len()
    }

    fn item(&self, task: &TaskId, expires_at: DateTime<Utc>) -> anyhow::Result<Item> {
        let mut array =
            Vec::with_capacity(self.json.iter().map(|j| j.len() + 1).sum::<usize>() + 1);
        array.push(b'[');
        for (i, json) in self.json.iter().enumerate() {
            if i > 0 {
                array.push(b',');
            }
            array.extend_from_slice(json);
        }
        array.push(b']');
        // What a read would refuse to inflate is never written.
        if array.len() > MAX_INFLATED_BYTES {
            bail!(
                "the log lines {}-{} to {} of {task} take {} bytes of JSON, over the limit of \
                 {MAX_INFLATED_BYTES}",
                self.attempt.0,
                self.first,
                self.last,
                array.len()
            );
        }
        let packed = miniz_oxide::deflate::compress_to_vec(&array, 6);
        let mut item = key(log_pk(task), &log_sk(self.attempt, self.first));
        item.insert(LAST.to_owned(), n(self.last));
        item.insert(LINES.to_owned(), AttributeValue::B(Blob::new(packed)));
        expiry(&mut item, expires_at);
        let size = item_size(&item);
        if size > MAX_CHUNK_ITEM_BYTES {
            bail!(
                "the log lines {}-{} to {} of {task} take {size} bytes stored, over the limit \
                 of {MAX_CHUNK_ITEM_BYTES}",
                self.attempt.0,
                self.first,
                self.last
            );
        }
        Ok(item)
    }
}

/// Cuts `lines` (one attempt's, in seq order, each position once) into chunks: a new chunk at
/// every gap in the seqs and wherever the current one is full.
fn chunks(lines: &[&LogLine]) -> anyhow::Result<Vec<Chunk>> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut bytes = 0usize;
    for line in lines {
        let json = line_json(line)?;
        let fits = |c: &Chunk| {
            c.attempt == line.attempt
                && c.last.checked_add(1) == Some(line.seq)
                && (c.len() as u64) < MAX_LINES_PER_CHUNK
                && bytes + 1 + json.len() <= MAX_CHUNK_JSON_BYTES
        };
        match chunks.last_mut() {
            Some(c) if fits(c) => {
                bytes += 1 + json.len();
                c.last = line.seq;
                c.json.push(json);
            }
            _ => {
                bytes = 2 + json.len();
                chunks.push(Chunk {
                    attempt: line.attempt,
                    first: line.seq,
                    last: line.seq,
                    json: vec![json],
                });
            }
        }
    }
    Ok(chunks)
}

fn decode_chunk(item: &Item) -> anyhow::Result<(Attempt, u64, Vec<LogLine>)> {
    let (attempt, first) = parse_sk(get_s(item, SK)?)?;
    let last = get_u64(item, LAST)?;
    let packed = match item.get(LINES) {
        Some(AttributeValue::B(b)) => b.as_ref(),
        _ => bail!("the log chunk {attempt}-{first} has no binary {LINES}"),
    };
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, MAX_INFLATED_BYTES)
        .map_err(|e| anyhow!("the log chunk {attempt}-{first} does not inflate: {e:?}"))?;
    let stored: Vec<StoredLine<'_>> = serde_json::from_slice(&json)
        .with_context(|| format!("the log chunk {attempt}-{first} does not decode"))?;
    if last.checked_sub(first).and_then(|d| d.checked_add(1)) != Some(stored.len() as u64) {
        bail!(
            "the log chunk {attempt}-{first} holds {} lines for seqs {first} to {last}",
            stored.len()
        );
    }
    let lines = stored
        .into_iter()
        .zip(first..=last)
        .map(|((ts, stream, text), seq)| {
            Ok(LogLine {
                attempt,
                seq,
                ts: parse_rfc3339(&ts)
                    .ok_or_else(|| anyhow!("a stored log line has the timestamp {ts:?}"))?,
                stream: LogStream::parse(&stream)
                    .ok_or_else(|| anyhow!("a stored log line has the stream {stream:?}"))?,
                text,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((attempt, first, lines))
}

/// What an append knows of an attempt's head when it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Nothing read: the write holds if the head's `last` is below the first seq written.
    Beyond,
    /// Read: the write holds if the head is still at `version` (0: absent), whose `last` and
    /// expiry were these.
    Version {
        version: u64,
        last: u64,
        expires_us: i64,
    },
}

impl Guard {
    fn read(head: Option<&Item>) -> anyhow::Result<Guard> {
        Ok(match head {
            None => Guard::Version {
                version: 0,
                last: 0,
                expires_us: i64::MIN,
            },
            Some(head) => Guard::Version {
                version: get_u64(head, VERSION)?,
                last: get_u64(head, LAST)?,
                expires_us: get_i64(head, EXPIRES)?,
            },
        })
    }

    /// The guard after this append's own write of the seqs up to `last`.
    fn after(self, last: u64, expires_at: DateTime<Utc>) -> Guard {
        match self {
            Guard::Beyond => Guard::Beyond,
            Guard::Version {
                version,
                last: was,
                expires_us,
            } => Guard::Version {
                version: version + 1,
                last: if version == 0 { last } else { was.max(last) },
                expires_us: expires_us.max(micros(expires_at)),
            },
        }
    }
}

/// How a run of transactions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    Written,
    /// A condition failed or another transaction held the head: read and try again.
    Raced {
        conflict: bool,
    },
}

/// A chunk's item with what the head's update needs to know of it.
struct ChunkItem {
    first: u64,
    last: u64,
    lines: usize,
    item: Item,
}

/// Groups chunk items into transactions under DynamoDB's limits.
fn transactions(items: Vec<ChunkItem>) -> Vec<Vec<ChunkItem>> {
    let mut groups: Vec<Vec<ChunkItem>> = Vec::new();
    let mut bytes = 0usize;
    for entry in items {
        let size = item_size(&entry.item);
        match groups.last_mut() {
            Some(g)
                if g.len() < MAX_CHUNKS_PER_TRANSACTION
                    && bytes + size <= MAX_TRANSACTION_BYTES =>
            {
                bytes += size;
                g.push(entry);
            }
            _ => {
                bytes = size;
                groups.push(vec![entry]);
            }
        }
    }
    groups
}

/// An update expression with exactly the names and values it uses (DynamoDB refuses others).
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, placeholder: &str, name: &str) -> &mut Self {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        self
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
}

/// The head's update for a transaction writing chunks of `attempt` with seqs `first..=last`.
fn head_update(
    table: &str,
    task: &TaskId,
    attempt: Attempt,
    (first, last): (u64, u64),
    guard: Guard,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<Update> {
    let mut expiring = Item::new();
    expiry(&mut expiring, expires_at);
    let (exp, ttl) = (expiring[EXPIRES].clone(), expiring[TTL].clone());
    let mut e = Expression::default();
    e.name("#last", LAST)
        .name("#v", VERSION)
        .value(":one", n(1));
    let (condition, update) = match guard {
        // The head's expiry must stay the latest of its chunks' (so TTL never deletes it
        // before them): a write expiring earlier (a clock behind another's) reads first.
        Guard::Beyond => {
            e.name("#pk", PK)
                .name("#exp", EXPIRES)
                .name("#ttl", TTL)
                .value(":first", n(first))
                .value(":last", n(last))
                .value(":exp", exp)
                .value(":ttl", ttl);
            (
                "attribute_not_exists(#pk) OR (#last < :first AND #exp <= :exp)",
                "SET #last = :last, #exp = :exp, #ttl = :ttl ADD #v :one",
            )
        }
        Guard::Version {
            version,
            last: was,
            expires_us,
        } => {
            let condition = if version == 0 {
                e.name("#pk", PK);
                "attribute_not_exists(#pk)"
            } else {
                e.value(":v", n(version));
                "#v = :v"
            };
            let new_last = if version == 0 { last } else { was.max(last) };
            e.value(":last", n(new_last));
            let update = if micros(expires_at) >= expires_us {
                e.name("#exp", EXPIRES)
                    .name("#ttl", TTL)
                    .value(":exp", exp)
                    .value(":ttl", ttl);
                "SET #last = :last, #exp = :exp, #ttl = :ttl ADD #v :one"
            } else {
                "SET #last = :last ADD #v :one"
            };
            (condition, update)
        }
    };
    let Expression { names, values } = e;
    Update::builder()
        .table_name(table)
        .set_key(Some(key(head_pk(task), &head_sk(attempt))))
        .condition_expression(condition)
        .update_expression(update)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .context("could not build a log head Update")
}

/// Whether `seq` lies in one of the stored ranges (`first` to `last`, disjoint).
fn covered(stored: &BTreeMap<u64, u64>, seq: u64) -> bool {
    stored
        .range(..=seq)
        .next_back()
        .is_some_and(|(_, &last)| last >= seq)
}

impl DynamoStore {
    /// Writes `items` (chunks of `attempt`, in seq order) in transactions with the head's
    /// update under `guard`. Returns the lines written and how it ended: after a race, the
    /// lines of the transactions before stay written.
    async fn commit(
        &self,
        task: &TaskId,
        attempt: Attempt,
        items: Vec<ChunkItem>,
        mut guard: Guard,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<(usize, Commit)> {
        let mut written = 0;
        for group in transactions(items) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else {
                continue;
            };
            let range = (first.first, last.last);
            let lines: usize = group.iter().map(|c| c.lines).sum();
            let head = head_update(self.table(), task, attempt, range, guard, expires_at)?;
            let mut actions = vec![TransactWriteItem::builder().update(head).build()];
            for chunk in group {
                // Never true under the head's condition; a chunk left by a head that TTL
                // deleted first would be, and is then found by the read that follows.
                let put = Put::builder()
                    .table_name(self.table())
                    .set_item(Some(chunk.item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build()
                    .context("could not build a log chunk Put")?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    written += lines;
                    guard = guard.after(range.1, expires_at);
                    continue;
                }
                Err(err) => err,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(err).with_context(|| {
                    format!(
                        "TransactWriteItems of the log lines of {task} on {} failed",
                        self.table()
                    )
                });
            };
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some(TRANSACTION_CONFLICT));
            let failed = reasons.iter().any(|r| r.code() == Some(CONDITION_FAILED));
            if !conflict && !failed {
                return Err(err).with_context(|| {
                    format!("the append of the log lines of {task} was cancelled")
                });
            }
            return Ok((written, Commit::Raced { conflict }));
        }
        Ok((written, Commit::Written))
    }

    /// The head of `attempt`, read consistently.
    async fn read_head(&self, task: &TaskId, attempt: Attempt) -> anyhow::Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(head_pk(task), &head_sk(attempt))))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .with_context(|| {
                format!(
                    "GetItem of the log head of {task} on {} failed",
                    self.table()
                )
            })?;
        Ok(output.item)
    }

    /// The seq ranges stored for `attempt` that can hold a seq from `low` to `high`: the
    /// chunks starting up to [`MAX_LINES_PER_CHUNK`] before `low`, through `high`; expired or
    /// not (a line stays stored once, as it first came, until DynamoDB deletes it).
    async fn stored_ranges(
        &self,
        task: &TaskId,
        attempt: Attempt,
        low: u64,
        high: u64,
    ) -> anyhow::Result<BTreeMap<u64, u64>> {
        let from = log_sk(attempt, low.saturating_sub(MAX_LINES_PER_CHUNK - 1));
        let to = log_sk(attempt, high);
        let mut stored = BTreeMap::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#last", LAST)
                .expression_attribute_values(":pk", s(log_pk(task)))
                .expression_attribute_values(":low", s(from.clone()))
                .expression_attribute_values(":high", s(to.clone()))
                .projection_expression("#sk, #last")
                // What the head's version vouches for must be seen.
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .with_context(|| {
                    format!(
                        "Query of the stored log chunks of {task} on {} failed",
                        self.table()
                    )
                })?;
            for item in output.items.unwrap_or_default() {
                let (_, first) = parse_sk(get_s(&item, SK)?)?;
                stored.insert(first, get_u64(&item, LAST)?);
            }
            match output.last_evaluated_key {
                Some(next) => start = Some(next),
                None => return Ok(stored),
            }
        }
    }

    /// Appends the lines of one attempt (in seq order, each position once).
    async fn append_attempt(
        &self,
        task: &TaskId,
        attempt: Attempt,
        lines: &[&LogLine],
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let (Some(low), Some(high)) = (lines.first(), lines.last()) else {
            return Ok(0);
        };
        let (low, high) = (low.seq, high.seq);
        let mut pending = lines.to_vec();
        let mut written = 0;
        // First as if the lines came after everything stored, as a runner's next batch does.
        let mut guard = Guard::Beyond;
        for try_number in 0..APPEND_TRIES {
            let items = chunks(&pending)?
                .into_iter()
                .map(|c| {
                    Ok(ChunkItem {
                        first: c.first,
                        last: c.last,
                        lines: c.len(),
                        item: c.item(task, expires_at)?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if items.is_empty() {
                return Ok(written);
            }
            let (new, outcome) = self.commit(task, attempt, items, guard, expires_at).await?;
            written += new;
            let Commit::Raced { conflict } = outcome else {
                return Ok(written);
            };
            if conflict {
                pause(try_number).await;
            }
            // The head before the chunks: every chunk its version vouches for is then seen,
            // and a chunk committed after the read changes the version.
            guard = Guard::read(self.read_head(task, attempt).await?.as_ref())?;
            let stored = self.stored_ranges(task, attempt, low, high).await?;
            pending.retain(|l| !covered(&stored, l.seq));
        }
        bail!("the append of the log lines of {task} met concurrent appends {APPEND_TRIES} times")
    }
}

#[async_trait]
impl LogStore for DynamoStore {
    async fn append(
        &self,
        task: &TaskId,
        lines: &[LogLine],
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        // A position repeated within the batch keeps its first line.
        let mut unique: BTreeMap<(Attempt, u64), &LogLine> = BTreeMap::new();
        for line in lines {
            unique.entry((line.attempt, line.seq)).or_insert(line);
        }
        let mut by_attempt: BTreeMap<Attempt, Vec<&LogLine>> = BTreeMap::new();
        for ((attempt, _), line) in unique {
            by_attempt.entry(attempt).or_default().push(line);
        }
        let mut new = 0;
        for (attempt, lines) in by_attempt {
            new += self
                .append_attempt(task, attempt, &lines, expires_at)
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
            // A chunk holds at least one line; the one holding the cursor may come first.
            let page = i32::try_from((limit - lines.len()).min(100) + 1).unwrap_or(101);
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
                // The chunk holding the line after the cursor starts at most a chunk's
                // length before it.
                Some(c) => query
                    .key_condition_expression("#pk = :pk AND #sk >= :from")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(
                        ":from",
                        s(log_sk(
                            c.attempt,
                            c.seq.saturating_sub(MAX_LINES_PER_CHUNK - 1),
                        )),
                    ),
                None => query.key_condition_expression("#pk = :pk"),
            };
            let output = query.send().await.with_context(|| {
                format!(
                    "Query of the log chunks of {task} on {} failed",
                    self.table()
                )
            })?;
            for item in output.items.unwrap_or_default() {
                // The filter already did this; a store that ignored it would still be right.
                if !live(&item, now) {
                    continue;
                }
                let (_, _, chunk) = decode_chunk(&item)?;
                lines.extend(
                    chunk
                        .into_iter()
                        .filter(|l| after.is_none_or(|c| l.cursor() > c)),
                );
                if lines.len() >= limit {
                    lines.truncate(limit);
                    return Ok(lines);
                }
            }
            match output.last_evaluated_key {
                Some(next) => start = Some(next),
                None => return Ok(lines),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn line(attempt: u32, seq: u64, text: &str) -> LogLine {
        LogLine {
            attempt: Attempt(attempt),
            seq,
            ts: Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap(),
            stream: LogStream::Stdout,
            text: text.to_owned(),
        }
    }

    fn task() -> TaskId {
        TaskId::generate(Utc::now())
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

    #[test]
    fn chunks_should_break_at_gaps_in_the_seqs() {
        let lines: Vec<LogLine> = [0, 1, 2, 5, 6, 9]
            .into_iter()
            .map(|s| line(1, s, "x"))
            .collect();
        let refs: Vec<&LogLine> = lines.iter().collect();
        let ranges: Vec<(u64, u64)> = chunks(&refs)
            .unwrap()
            .iter()
            .map(|c| (c.first, c.last))
            .collect();
        assert_eq!(ranges, [(0, 2), (5, 6), (9, 9)]);
    }

    #[test]
    fn chunks_should_stay_under_the_line_and_byte_limits() {
        let many: Vec<LogLine> = (0..2_500).map(|s| line(1, s, "short")).collect();
        let refs: Vec<&LogLine> = many.iter().collect();
        let sizes: Vec<usize> = chunks(&refs).unwrap().iter().map(Chunk::len).collect();
        assert_eq!(sizes, [1_000, 1_000, 500], "at most 1,000 lines a chunk");

        let long = "é".repeat(8 * 1024);
        let big: Vec<LogLine> = (0..100).map(|s| line(1, s, &long)).collect();
        let refs: Vec<&LogLine> = big.iter().collect();
        let cut = chunks(&refs).unwrap();
        assert!(cut.len() > 1, "16 KiB lines fill a chunk in under 20 lines");
        let t = task();
        for c in &cut {
            let json: usize = c.json.iter().map(|j| j.len() + 1).sum::<usize>() + 1;
            assert!(json <= MAX_CHUNK_JSON_BYTES);
            assert!(item_size(&c.item(&t, Utc::now()).unwrap()) <= MAX_CHUNK_ITEM_BYTES);
        }
        assert_eq!(cut.iter().map(Chunk::len).sum::<usize>(), 100);
    }

    #[test]
    fn a_chunk_should_decode_to_the_lines_it_was_made_of() {
        let lines = vec![
            line(3, 7, "naïve \"quoted\" \\ text"),
            LogLine {
                stream: LogStream::Stderr,
                ..line(3, 8, "")
            },
        ];
        let refs: Vec<&LogLine> = lines.iter().collect();
        let chunk = chunks(&refs).unwrap().remove(0);
        let item = chunk.item(&task(), Utc::now()).unwrap();
        let (attempt, first, decoded) = decode_chunk(&item).unwrap();
        assert_eq!((attempt, first), (Attempt(3), 7));
        assert_eq!(decoded, lines);
    }

    #[test]
    fn covered_should_find_a_seq_inside_a_stored_range_only() {
        let stored = BTreeMap::from([(0, 9), (20, 20), (30, 39)]);
        for seq in [0, 5, 9, 20, 30, 39] {
            assert!(covered(&stored, seq), "{seq}");
        }
        for seq in [10, 19, 21, 29, 40, u64::MAX] {
            assert!(!covered(&stored, seq), "{seq}");
        }
    }

    #[test]
    fn transactions_should_stay_under_the_action_and_byte_limits() {
        let item = |size: usize| ChunkItem {
            first: 0,
            last: 0,
            lines: 1,
            item: HashMap::from([("b".to_owned(), s("x".repeat(size)))]),
        };
        let small: Vec<ChunkItem> = (0..60).map(|_| item(10)).collect();
        let sizes: Vec<usize> = transactions(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [24, 24, 12]);
        let big: Vec<ChunkItem> = (0..10).map(|_| item(390 * 1024)).collect();
        let sizes: Vec<usize> = transactions(big).iter().map(Vec::len).collect();
        assert_eq!(sizes, [5, 5]);
    }
}
