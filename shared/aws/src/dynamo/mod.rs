//! [`TaskStore`](pj_core::ports::TaskStore), [`LogStore`](pj_core::ports::LogStore) and
//! [`MessageStore`](pj_core::messages::MessageStore) on one DynamoDB table, and the records of
//! the artifacts whose bytes are in S3 (`S3ArtifactStore`, with the `s3` feature).
//!
//! The table has string keys `pk` and `sk`, and these items:
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | task | `TASK#{id}` | `TASK` | `doc` (the task as JSON), `version`, `status`, `gsi1pk` `OWNER#{owner}`, `gsi1sk` `{created µs}#{id}`, and while `sweep_at` is set `gsi2pk` `SWEEP#{shard}`, `gsi2sk` `{sweep_at µs}#{id}` |
//! | idempotency key | `IDEM#{owner}#{key}` | `IDEM` | `fingerprint`, `task_id`, expiry |
//! | webhook id | `WEBHOOK#{id}` | `WEBHOOK` | expiry |
//! | log chunk | `LOG#{task}` | `{attempt:010}#{first seq:020}` | `last` (seq), `lines` (deflated JSON of the lines `first..=last`), expiry |
//! | log head | `LOGHEAD#{task}` | `{attempt:010}` | `last` (the highest seq stored), `version`, the latest expiry of the attempt's chunks |
//! | outbound message | `MSG#{id}` | `MSG` | `doc` (the message as JSON, deflated: binary), `version`, `status`, `gsi1pk` `MSGOWNER#{owner}`, `gsi1sk` `{created µs}#{id}`, and while it is pending `gsi2pk` `MSGSWEEP#{shard}`, `gsi2sk` `{next try µs}#{id}` |
//! | message's task link | `MSG#{id}` | `TASK` | `gsi1pk` `MSGTASK#{owner}#{task}`, `gsi1sk` `{created µs}#{id}` (written with the message, never changed) |
//! | artifact record | `ART#{task}` | `{name}` | `attempt`, `size` (bytes), expiry; the bytes are the S3 object `{task}/{name}` |
//!
//! Times in keys are microseconds since the epoch, zero-padded to 20 digits so they sort as
//! text. Expiry is `expires_us` (microseconds, what reads and conditions compare with the time
//! they are given) and `ttl` (epoch seconds, rounded up, for DynamoDB's TTL deletion, which is
//! lazy: an item may outlive its `ttl` by days, so every read checks `expires_us`).
//!
//! `gsi1` (projecting `doc` and `status`) lists a user's tasks newest first, and in partitions
//! of their own a user's outbound messages newest first and the messages of one of their tasks.
//! `gsi2` (keys only, sparse: only tasks with a `sweep_at` and pending messages) serves the
//! sweeper; its partitions are spread over [`SWEEP_SHARDS`] shards (`SWEEP#` for tasks,
//! `MSGSWEEP#` for messages) so no single partition takes every write. Nothing of either
//! index is ever scanned: every read names its partition (an owner, an owner's task, a shard).
//!
//! Log lines are packed: see [`logs`] for how chunks and heads keep `(attempt, seq)` unique.

#[cfg(feature = "s3")]
pub(crate) mod artifacts;
mod batch;
mod logs;
mod messages;
pub(crate) mod size;
mod tasks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use chrono::{DateTime, Utc};

use batch::Backoff;

/// The index listing a user's tasks newest first.
pub const GSI_OWNER: &str = "gsi1";
/// The sparse index of tasks with a `sweep_at`.
pub const GSI_SWEEP: &str = "gsi2";
/// Partitions of [`GSI_SWEEP`]. Part of the stored layout: changing it strands tasks in the
/// shards no longer read.
pub const SWEEP_SHARDS: u32 = 4;
/// The largest task item stored, well under DynamoDB's 400 KB item limit (a task's index
/// copies must fit too).
pub const MAX_TASK_ITEM_BYTES: usize = 350 * 1024;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const GSI1_PK: &str = "gsi1pk";
pub(crate) const GSI1_SK: &str = "gsi1sk";
pub(crate) const GSI2_PK: &str = "gsi2pk";
pub(crate) const GSI2_SK: &str = "gsi2sk";
pub(crate) const DOC: &str = "doc";
pub(crate) const STATUS: &str = "status";
pub(crate) const TTL: &str = "ttl";
const VERSION: &str = "version";
const EXPIRES: &str = "expires_us";

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The DynamoDB task, log and message store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    backoff: Backoff,
}

impl DynamoStore {
    /// The store on `table`, laid out as `provision::create_table`
    /// makes it.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: Arc::from(table.into()),
            backoff: Backoff::default(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn get_s<'a>(item: &'a Item, name: &str) -> anyhow::Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(anyhow!("the attribute {name} is not a string")),
        None => Err(anyhow!("the attribute {name} is missing")),
    }
}

fn get_i64(item: &Item, name: &str) -> anyhow::Result<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .with_context(|| format!("the attribute {name} is not an integer")),
        Some(_) => Err(anyhow!("the attribute {name} is not a number")),
        None => Err(anyhow!("the attribute {name} is missing")),
    }
}

/// Microseconds since the epoch, rounded down.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Microseconds since the epoch, rounded up, so a time stored for "at or after" checks is never
/// earlier than the real one.
fn micros_ceil(t: DateTime<Utc>) -> i64 {
    let floor = t.timestamp_micros();
    if t.timestamp_subsec_nanos() % 1_000 == 0 {
        floor
    } else {
        floor.saturating_add(1)
    }
}

/// The sweep shard of an id, below [`SWEEP_SHARDS`]: FNV-1a of its text, so it never changes
/// with the build.
fn shard_of(id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash % u64::from(SWEEP_SHARDS)
}

/// A time as a sort key prefix. Times before 1970 sort as 1970.
fn time_key(micros: i64) -> String {
    format!("{:020}", micros.max(0))
}

/// The two expiry attributes of a record that lives until `expires_at`.
fn expiry(item: &mut Item, expires_at: DateTime<Utc>) {
    item.insert(EXPIRES.to_owned(), n(micros(expires_at)));
    let secs = expires_at.timestamp() + i64::from(expires_at.timestamp_subsec_nanos() > 0);
    item.insert(TTL.to_owned(), n(secs.max(0)));
}

/// Whether a record is live at `now` (microseconds).
fn live(item: &Item, now: i64) -> bool {
    get_i64(item, EXPIRES).is_ok_and(|expires| expires > now)
}

/// The condition of writing a record that may replace only an expired one: with `#pk` and
/// `#exp` bound by [`absent_or_expired_names`] and `:now` to the time of the write.
const ABSENT_OR_EXPIRED: &str = "attribute_not_exists(#pk) OR #exp <= :now";

fn absent_or_expired_names() -> HashMap<String, String> {
    HashMap::from([
        ("#pk".to_owned(), PK.to_owned()),
        ("#exp".to_owned(), EXPIRES.to_owned()),
    ])
}

/// The reason code DynamoDB gives a transaction item whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// The reason code of an item another transaction was changing at the same time.
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

fn reason_is(reasons: &[CancellationReason], index: usize, code: &str) -> bool {
    reasons.get(index).and_then(|r| r.code()) == Some(code)
}

/// How often a transaction that met another one on the same item is tried.
const TRANSACTION_TRIES: u32 = 4;

/// A short, jittered pause before trying a conflicting transaction again.
async fn pause(try_number: u32) {
    let base = 20u64 << try_number.min(6);
    let jitter = rand::random::<u64>() % base;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}
