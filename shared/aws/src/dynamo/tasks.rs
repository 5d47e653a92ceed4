//! [`TaskStore`] on DynamoDB.
//!
//! Expiry follows the SQLite store: a record is live while its expiry is after "now". The port
//! passes no clock to `create` and `update`, so "now" is the task's own `created_at` for a
//! create and `updated_at` for an update (both from the engine's clock); `remember_webhook` has
//! only the system clock.

use anyhow::{Context, bail};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use pj_core::ids::{TaskId, UserId, WebhookId};
use pj_core::ports::{
    CreateOutcome, IdempotencyRecord, ListCursor, TaskStore, WebhookReceipt, WriteOutcome,
};
use pj_core::task::{Task, TaskStatus};

use super::batch::get_all;
use super::size::item_size;
use super::{
    ABSENT_OR_EXPIRED, CONDITION_FAILED, DOC, DynamoStore, GSI_OWNER, GSI_SWEEP, GSI1_PK, GSI1_SK,
    GSI2_PK, GSI2_SK, Item, MAX_TASK_ITEM_BYTES, PK, SK, STATUS, SWEEP_SHARDS,
    TRANSACTION_CONFLICT, TRANSACTION_TRIES, VERSION, absent_or_expired_names, expiry, get_s, key,
    live, micros, micros_ceil, n, pause, reason_is, s, shard_of, time_key,
};

const TASK_SK: &str = "TASK";
const IDEM_SK: &str = "IDEM";
const WEBHOOK_SK: &str = "WEBHOOK";
const FINGERPRINT: &str = "fingerprint";
const TASK_ID: &str = "task_id";

fn task_pk(id: &TaskId) -> String {
    format!("TASK#{id}")
}

fn idem_pk(owner: &UserId, key: &str) -> String {
    // A user id never holds `#`, so the owner part ends at the first one.
    format!("IDEM#{owner}#{key}")
}

fn webhook_pk(id: &WebhookId) -> String {
    format!("WEBHOOK#{id}")
}

fn owner_pk(owner: &UserId) -> String {
    format!("OWNER#{owner}")
}

/// A created-at or sweep-at position in an index: the time, then the id for ties.
fn position(micros: i64, id: &TaskId) -> String {
    format!("{}#{id}", time_key(micros))
}

/// The sweep shard of a task.
fn sweep_shard(id: &TaskId) -> String {
    sweep_pk(shard_of(id.as_str()))
}

fn sweep_pk(shard: u64) -> String {
    format!("SWEEP#{shard}")
}

/// The item of a task, refused when it is too large to store with its index copies.
fn task_item(task: &Task) -> anyhow::Result<Item> {
    let doc = serde_json::to_string(task)
        .with_context(|| format!("could not encode the task {}", task.id))?;
    let mut item = key(task_pk(&task.id), TASK_SK);
    item.insert(DOC.to_owned(), s(doc));
    item.insert(VERSION.to_owned(), n(task.version));
    item.insert(STATUS.to_owned(), s(task.status.as_str()));
    item.insert(GSI1_PK.to_owned(), s(owner_pk(&task.owner)));
    item.insert(
        GSI1_SK.to_owned(),
        s(position(micros(task.created_at), &task.id)),
    );
    // Rounded up so a task is never due before its time; absent, the task leaves the index.
    if let Some(at) = task.sweep_at {
        item.insert(GSI2_PK.to_owned(), s(sweep_shard(&task.id)));
        item.insert(GSI2_SK.to_owned(), s(position(micros_ceil(at), &task.id)));
    }
    let size = item_size(&item);
    if size > MAX_TASK_ITEM_BYTES {
        bail!(
            "the task {} takes {size} bytes stored, over the limit of {MAX_TASK_ITEM_BYTES}",
            task.id
        );
    }
    Ok(item)
}

fn decode_task(item: &Item) -> anyhow::Result<Task> {
    let doc = get_s(item, DOC).context("a task item has no document")?;
    serde_json::from_str(doc).context("a stored task document does not decode")
}

fn idem_item(record: &IdempotencyRecord, task: &TaskId) -> Item {
    let mut item = key(idem_pk(&record.owner, &record.key), IDEM_SK);
    item.insert(FINGERPRINT.to_owned(), s(record.fingerprint.clone()));
    item.insert(TASK_ID.to_owned(), s(task.as_str()));
    expiry(&mut item, record.expires_at);
    item
}

fn webhook_item(receipt: &WebhookReceipt) -> Item {
    let mut item = key(webhook_pk(&receipt.id), WEBHOOK_SK);
    expiry(&mut item, receipt.expires_at);
    item
}

/// A transactional Put of an item that may replace only an expired record, as of `now`;
/// `want_old` asks for the record that is in the way when there is one.
fn put_unless_live(table: &str, item: Item, now: i64, want_old: bool) -> anyhow::Result<Put> {
    let old = want_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld);
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(ABSENT_OR_EXPIRED)
        .set_expression_attribute_names(Some(absent_or_expired_names()))
        .expression_attribute_values(":now", n(now))
        .set_return_values_on_condition_check_failure(old)
        .build()
        .context("could not build a conditional Put")
}

pub(super) fn cancellation_reasons(
    err: &SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
) -> Option<&[CancellationReason]> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Some(e.cancellation_reasons())
        }
        _ => None,
    }
}

impl DynamoStore {
    pub(super) async fn get_item(&self, key: Item, what: &str) -> anyhow::Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .with_context(|| format!("GetItem of {what} on {} failed", self.table()))?;
        Ok(output.item)
    }

    async fn get_task(&self, id: &TaskId) -> anyhow::Result<Option<Task>> {
        let item = self
            .get_item(key(task_pk(id), TASK_SK), &format!("the task {id}"))
            .await?;
        item.as_ref()
            .map(decode_task)
            .transpose()
            .with_context(|| format!("the task {id} does not decode"))
    }

    async fn create_plain(&self, task: &Task, item: Item) -> anyhow::Result<CreateOutcome> {
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                bail!("a task {} is already stored", task.id)
            }
            Err(e) => Err(e).with_context(|| format!("PutItem of the new task {} failed", task.id)),
        }
    }

    /// The task and its key in one transaction; when the key is taken, the answer comes from
    /// the record that holds it.
    async fn create_with_key(
        &self,
        task: &Task,
        item: Item,
        record: &IdempotencyRecord,
    ) -> anyhow::Result<CreateOutcome> {
        let now = micros(task.created_at);
        for try_number in 0..TRANSACTION_TRIES {
            let put_task = Put::builder()
                .table_name(self.table())
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .context("could not build the task Put")?;
            let put_key = put_unless_live(self.table(), idem_item(record, &task.id), now, true)?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_task).build())
                .transact_items(TransactWriteItem::builder().put(put_key).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(CreateOutcome::Created),
                Err(e) => e,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(err).with_context(|| {
                    format!(
                        "TransactWriteItems of the new task {} and its key failed",
                        task.id
                    )
                });
            };
            // The key first: a retried create of the very same task fails both conditions and
            // is answered with the task.
            if reason_is(reasons, 1, CONDITION_FAILED) {
                let holder = match reasons.get(1).and_then(|r| r.item()) {
                    Some(old) => Some(old.clone()),
                    None => {
                        self.get_item(
                            key(idem_pk(&record.owner, &record.key), IDEM_SK),
                            "an idempotency key",
                        )
                        .await?
                    }
                };
                match holder {
                    Some(holder) if live(&holder, now) => {
                        return self.answer_from_key(&holder, record).await;
                    }
                    // It expired or went between the write and the read: write again.
                    _ => continue,
                }
            }
            if reason_is(reasons, 0, CONDITION_FAILED) {
                bail!("a task {} is already stored", task.id);
            }
            if reasons
                .iter()
                .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
            {
                pause(try_number).await;
                continue;
            }
            return Err(err).with_context(|| {
                format!("the create of {} was cancelled for another reason", task.id)
            });
        }
        bail!(
            "the create of {} met concurrent writes {TRANSACTION_TRIES} times",
            task.id
        )
    }

    async fn answer_from_key(
        &self,
        holder: &Item,
        record: &IdempotencyRecord,
    ) -> anyhow::Result<CreateOutcome> {
        if get_s(holder, FINGERPRINT)? != record.fingerprint {
            return Ok(CreateOutcome::KeyConflict);
        }
        let first = get_s(holder, TASK_ID)?;
        let first = TaskId::parse(first)
            .map_err(|e| anyhow::anyhow!("an idempotency key holds a bad task id: {e}"))?;
        let task = self
            .get_task(&first)
            .await?
            .with_context(|| format!("the idempotency key points to the missing task {first}"))?;
        Ok(CreateOutcome::Existing(Box::new(task)))
    }

    async fn update_plain(
        &self,
        task: &Task,
        item: Item,
        expected: u64,
    ) -> anyhow::Result<WriteOutcome> {
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":expected", n(expected))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::Written),
            // Another version is stored, or no task at all: the caller reads again and sees.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(WriteOutcome::VersionConflict)
            }
            Err(e) => Err(e).with_context(|| format!("PutItem of the task {} failed", task.id)),
        }
    }

    async fn update_with_receipt(
        &self,
        task: &Task,
        item: Item,
        expected: u64,
        receipt: &WebhookReceipt,
    ) -> anyhow::Result<WriteOutcome> {
        let now = micros(task.updated_at);
        for try_number in 0..TRANSACTION_TRIES {
            let put_task = Put::builder()
                .table_name(self.table())
                .set_item(Some(item.clone()))
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":expected", n(expected))
                .build()
                .context("could not build the task Put")?;
            let put_receipt = put_unless_live(self.table(), webhook_item(receipt), now, false)?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_task).build())
                .transact_items(TransactWriteItem::builder().put(put_receipt).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(WriteOutcome::Written),
                Err(e) => e,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(err).with_context(|| {
                    format!(
                        "TransactWriteItems of the task {} and the webhook id {} failed",
                        task.id, receipt.id
                    )
                });
            };
            // A duplicate delivery is reported as such even when the task moved on since: the
            // caller must not redo it against the newer version.
            if reason_is(reasons, 1, CONDITION_FAILED) {
                return Ok(WriteOutcome::WebhookSeen);
            }
            if reason_is(reasons, 0, CONDITION_FAILED) {
                return Ok(WriteOutcome::VersionConflict);
            }
            if reasons
                .iter()
                .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
            {
                pause(try_number).await;
                continue;
            }
            return Err(err).with_context(|| {
                format!("the update of {} was cancelled for another reason", task.id)
            });
        }
        // Still contended: reading again and redoing is the caller's way out.
        Ok(WriteOutcome::VersionConflict)
    }

    /// The items the sweep index holds as due at or before `now` (microseconds) in the
    /// partitions `partition` names for each shard, the oldest `limit` of them read whole.
    pub(super) async fn due_items(
        &self,
        partition: fn(u64) -> String,
        now: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<Item>> {
        // Every position of a time at or before now sorts below the next microsecond's digits.
        let bound = time_key(now.saturating_add(1));
        let shards = try_join_all(
            (0..u64::from(SWEEP_SHARDS))
                .map(|shard| self.due_in_partition(partition(shard), &bound, limit)),
        )
        .await?;
        let mut candidates: Vec<(String, Item)> = shards.into_iter().flatten().collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        candidates.truncate(limit);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let keys = candidates.into_iter().map(|(_, k)| k).collect();
        get_all(&self.client, self.table(), keys, &self.backoff).await
    }

    /// The keys in one partition of the sweep index (`partition`) whose position sorts below
    /// `bound`, oldest first, at most `limit`, each with its position.
    pub(super) async fn due_in_partition(
        &self,
        partition: String,
        bound: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, Item)>> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = i32::try_from(limit - found.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(self.table())
                .index_name(GSI_SWEEP)
                .key_condition_expression("#p = :shard AND #s < :bound")
                .expression_attribute_names("#p", GSI2_PK)
                .expression_attribute_names("#s", GSI2_SK)
                .expression_attribute_values(":shard", s(partition.clone()))
                .expression_attribute_values(":bound", s(bound))
                .scan_index_forward(true)
                .limit(page)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .with_context(|| format!("Query of {GSI_SWEEP} on {} failed", self.table()))?;
            for item in output.items.unwrap_or_default() {
                let position = get_s(&item, GSI2_SK)?.to_owned();
                let key = key(get_s(&item, PK)?.to_owned(), get_s(&item, SK)?);
                found.push((position, key));
            }
            match output.last_evaluated_key {
                Some(next) if found.len() < limit => start = Some(next),
                _ => return Ok(found),
            }
        }
    }
}

#[async_trait]
impl TaskStore for DynamoStore {
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
        let item = task_item(task)?;
        match idempotency {
            None => self.create_plain(task, item).await,
            Some(record) => self.create_with_key(task, item, record).await,
        }
    }

    async fn get(&self, id: &TaskId) -> anyhow::Result<Option<Task>> {
        self.get_task(id).await
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
        // The cursor is the index key of the task it names, whether or not that task exists.
        let mut start = after.map(|c| {
            let mut k = key(task_pk(&c.id), TASK_SK);
            k.insert(GSI1_PK.to_owned(), s(owner_pk(owner)));
            k.insert(GSI1_SK.to_owned(), s(position(micros(c.created_at), &c.id)));
            k
        });
        let mut tasks = Vec::new();
        loop {
            let left = limit - tasks.len();
            // A filter applies after the page is read, so a filtered list reads larger pages.
            let page = if status.is_some() {
                left.clamp(50, 1_000)
            } else {
                left.min(1_000)
            };
            let mut query = self
                .client
                .query()
                .table_name(self.table())
                .index_name(GSI_OWNER)
                .key_condition_expression("#o = :owner")
                .expression_attribute_names("#o", GSI1_PK)
                .expression_attribute_values(":owner", s(owner_pk(owner)))
                .scan_index_forward(false)
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            if let Some(status) = status {
                query = query
                    .filter_expression("#st = :status")
                    .expression_attribute_names("#st", STATUS)
                    .expression_attribute_values(":status", s(status.as_str()));
            }
            let output = query
                .send()
                .await
                .with_context(|| format!("Query of {GSI_OWNER} on {} failed", self.table()))?;
            for item in output.items.unwrap_or_default() {
                tasks.push(decode_task(&item)?);
                if tasks.len() == limit {
                    return Ok(tasks);
                }
            }
            match output.last_evaluated_key {
                Some(next) => start = Some(next),
                None => return Ok(tasks),
            }
        }
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
        let item = task_item(task)?;
        match receipt {
            None => self.update_plain(task, item, expected_version).await,
            Some(receipt) => {
                self.update_with_receipt(task, item, expected_version, receipt)
                    .await
            }
        }
    }

    async fn webhook_seen(&self, id: &WebhookId, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let item = self
            .get_item(key(webhook_pk(id), WEBHOOK_SK), "a webhook id")
            .await?;
        Ok(item.is_some_and(|item| live(&item, micros(now))))
    }

    async fn remember_webhook(&self, receipt: &WebhookReceipt) -> anyhow::Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(webhook_item(receipt)))
            .condition_expression(ABSENT_OR_EXPIRED)
            .set_expression_attribute_names(Some(absent_or_expired_names()))
            .expression_attribute_values(":now", n(micros(Utc::now())))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => {
                Err(e).with_context(|| format!("PutItem of the webhook id {} failed", receipt.id))
            }
        }
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<Task>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = micros(now);
        let items = self.due_items(sweep_pk, now, limit).await?;
        let mut tasks = Vec::with_capacity(items.len());
        for item in &items {
            let task = decode_task(item)?;
            // The index lags the table, and the task may have moved on since it was read.
            if task.sweep_at.is_some_and(|at| micros_ceil(at) <= now) {
                tasks.push(task);
            }
        }
        tasks.sort_by(|a, b| (a.sweep_at, &a.id).cmp(&(b.sweep_at, &b.id)));
        Ok(tasks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_shards_should_be_stable_and_within_range() {
        let id = TaskId::parse("tsk_01jabcdefghjkmnpqrstvwxyz0").unwrap();
        assert_eq!(sweep_shard(&id), sweep_shard(&id));
        let shards: std::collections::BTreeSet<String> = (0..200)
            .map(|_| sweep_shard(&TaskId::generate(Utc::now())))
            .collect();
        assert_eq!(
            shards.len(),
            SWEEP_SHARDS as usize,
            "every shard should be used"
        );
    }

    #[test]
    fn positions_should_sort_by_time_then_id() {
        let a = TaskId::parse("tsk_a").unwrap();
        let b = TaskId::parse("tsk_b").unwrap();
        assert!(position(9, &b) < position(10, &a));
        assert!(position(10, &a) < position(10, &b));
        assert!(
            position(10, &b) < time_key(11),
            "the due bound excludes later times"
        );
        assert!(position(-5, &a) < position(0, &b));
    }
}
