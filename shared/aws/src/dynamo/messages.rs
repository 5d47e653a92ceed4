//! [`MessageStore`] on DynamoDB: the outbound message records, on the tasks' table.
//!
//! A message is one item (`MSG#{id}`, `MSG`) holding its document, deflated (a webhook's body
//! carries the whole task, result included), its version for the compare-and-set, and its
//! status. Its `gsi1` keys list the owner's messages newest first; while it is pending its
//! `gsi2` keys (in partitions of their own, `MSGSWEEP#{shard}`) say when it is next due. A
//! second item written with it, the task link (`MSG#{id}`, `TASK`), puts it in the owner's
//! partition of that task on `gsi1`, so `GET /messages?task_id=` reads the task's few messages
//! instead of filtering all of the owner's.

use std::collections::HashMap;

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
use chrono::{DateTime, Utc};
use pj_core::ids::{TaskId, UserId};
use pj_core::messages::{
    MessageCursor, MessageFilter, MessageId, MessageStatus, MessageStore, OutboundMessage,
};

use super::batch::get_all;
use super::size::item_size;
use super::tasks::cancellation_reasons;
use super::{
    CONDITION_FAILED, DOC, DynamoStore, GSI_OWNER, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, Item,
    MAX_TASK_ITEM_BYTES, PK, STATUS, TRANSACTION_CONFLICT, TRANSACTION_TRIES, VERSION, get_s, key,
    micros, micros_ceil, n, pause, reason_is, s, shard_of, time_key,
};

const MESSAGE_SK: &str = "MSG";
const LINK_SK: &str = "TASK";
/// The most JSON one message's document may take before it is deflated; reads refuse to
/// inflate more.
const MAX_MESSAGE_JSON_BYTES: usize = 4 << 20;

fn message_pk(id: &MessageId) -> String {
    format!("MSG#{id}")
}

fn owner_pk(owner: &UserId) -> String {
    format!("MSGOWNER#{owner}")
}

fn task_pk(owner: &UserId, task: &TaskId) -> String {
    // A user id never holds `#`, so the owner part ends at the first one.
    format!("MSGTASK#{owner}#{task}")
}

fn sweep_pk(shard: u64) -> String {
    format!("MSGSWEEP#{shard}")
}

/// A created-at or next-try position in an index: the time, then the id for ties.
fn position(micros: i64, id: &MessageId) -> String {
    format!("{}#{id}", time_key(micros))
}

fn message_key(id: &MessageId) -> Item {
    key(message_pk(id), MESSAGE_SK)
}

/// The message's item, refused when it is too large to store with its index copy.
fn message_item(message: &OutboundMessage) -> anyhow::Result<Item> {
    let json = serde_json::to_vec(message)
        .with_context(|| format!("could not encode the message {}", message.id))?;
    if json.len() > MAX_MESSAGE_JSON_BYTES {
        bail!(
            "the message {} takes {} bytes of JSON, over the limit of {MAX_MESSAGE_JSON_BYTES}",
            message.id,
            json.len()
        );
    }
    let packed = miniz_oxide::deflate::compress_to_vec(&json, 6);
    let mut item = message_key(&message.id);
    item.insert(DOC.to_owned(), AttributeValue::B(Blob::new(packed)));
    item.insert(VERSION.to_owned(), n(message.version));
    item.insert(STATUS.to_owned(), s(message.status.as_str()));
    item.insert(GSI1_PK.to_owned(), s(owner_pk(&message.owner)));
    item.insert(
        GSI1_SK.to_owned(),
        s(position(micros(message.created_at), &message.id)),
    );
    // Only a pending message is ever due; rounded up so it is never due before its time.
    if message.status == MessageStatus::Pending
        && let Some(at) = message.next_try_at
    {
        item.insert(
            GSI2_PK.to_owned(),
            s(sweep_pk(shard_of(message.id.as_str()))),
        );
        item.insert(
            GSI2_SK.to_owned(),
            s(position(micros_ceil(at), &message.id)),
        );
    }
    let size = item_size(&item);
    if size > MAX_TASK_ITEM_BYTES {
        bail!(
            "the message {} takes {size} bytes stored, over the limit of {MAX_TASK_ITEM_BYTES}",
            message.id
        );
    }
    Ok(item)
}

/// The item that files a message under its owner's task on `gsi1`; written once, with it.
fn link_item(message: &OutboundMessage) -> Item {
    let mut item = key(message_pk(&message.id), LINK_SK);
    item.insert(
        GSI1_PK.to_owned(),
        s(task_pk(&message.owner, &message.task_id)),
    );
    item.insert(
        GSI1_SK.to_owned(),
        s(position(micros(message.created_at), &message.id)),
    );
    item
}

fn decode_message(item: &Item) -> anyhow::Result<OutboundMessage> {
    let packed = match item.get(DOC) {
        Some(AttributeValue::B(blob)) => blob.as_ref(),
        Some(_) => return Err(anyhow!("a message item's document is not binary")),
        None => return Err(anyhow!("a message item has no document")),
    };
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, MAX_MESSAGE_JSON_BYTES)
        .map_err(|e| anyhow!("a stored message document does not inflate: {e:?}"))?;
    serde_json::from_slice(&json).context("a stored message document does not decode")
}

/// The index key a list page starts after: the item at `cursor` in the partition `partition`
/// (whether or not it exists), with `sk` the sort key of the items listed there.
fn start_key(partition: String, sk: &str, cursor: &MessageCursor) -> Item {
    let mut k = key(message_pk(&cursor.id), sk);
    k.insert(GSI1_PK.to_owned(), s(partition));
    k.insert(
        GSI1_SK.to_owned(),
        s(position(micros(cursor.created_at), &cursor.id)),
    );
    k
}

/// Items per page read when a filter applies after the read.
fn page_size(left: usize, filtered: bool) -> i32 {
    let page = if filtered {
        left.clamp(50, 1_000)
    } else {
        left.min(1_000)
    };
    i32::try_from(page).unwrap_or(i32::MAX)
}

impl DynamoStore {
    /// One page of `gsi1` in `partition`, newest first.
    async fn owner_index_page(
        &self,
        partition: &str,
        status: Option<MessageStatus>,
        page: i32,
        start: Option<Item>,
    ) -> anyhow::Result<(Vec<Item>, Option<Item>)> {
        let mut query = self
            .client
            .query()
            .table_name(self.table())
            .index_name(GSI_OWNER)
            .key_condition_expression("#o = :owner")
            .expression_attribute_names("#o", GSI1_PK)
            .expression_attribute_values(":owner", s(partition))
            .scan_index_forward(false)
            .limit(page)
            .set_exclusive_start_key(start)
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
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }

    /// The owner's messages, newest first, from their documents in `gsi1`.
    async fn list_of_owner(
        &self,
        owner: &UserId,
        status: Option<MessageStatus>,
        limit: usize,
        after: Option<&MessageCursor>,
    ) -> anyhow::Result<Vec<OutboundMessage>> {
        let partition = owner_pk(owner);
        let mut start = after.map(|c| start_key(partition.clone(), MESSAGE_SK, c));
        let mut found = Vec::new();
        loop {
            let page = page_size(limit - found.len(), status.is_some());
            let (items, next) = self
                .owner_index_page(&partition, status, page, start.take())
                .await?;
            for item in &items {
                let message = decode_message(item)?;
                // The index lags the table: a status filter is checked on the document too.
                if status.is_none_or(|s| s == message.status) {
                    found.push(message);
                }
                if found.len() == limit {
                    return Ok(found);
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(found),
            }
        }
    }

    /// The owner's messages of one task, newest first: the task links in `gsi1`, then the
    /// messages themselves.
    async fn list_of_task(
        &self,
        owner: &UserId,
        task: &TaskId,
        status: Option<MessageStatus>,
        limit: usize,
        after: Option<&MessageCursor>,
    ) -> anyhow::Result<Vec<OutboundMessage>> {
        let partition = task_pk(owner, task);
        let mut start = after.map(|c| start_key(partition.clone(), LINK_SK, c));
        let mut found = Vec::new();
        loop {
            let page = page_size(limit - found.len(), status.is_some());
            let (links, next) = self
                .owner_index_page(&partition, None, page, start.take())
                .await?;
            let pks: Vec<String> = links
                .iter()
                .map(|link| get_s(link, PK).map(str::to_owned))
                .collect::<anyhow::Result<_>>()?;
            let keys = pks.iter().map(|pk| key(pk.clone(), MESSAGE_SK)).collect();
            let mut by_pk: HashMap<String, Item> = HashMap::new();
            for item in get_all(&self.client, self.table(), keys, &self.backoff).await? {
                by_pk.insert(get_s(&item, PK)?.to_owned(), item);
            }
            for pk in &pks {
                // A link is written with its message: one without is skipped, not an error.
                let Some(item) = by_pk.get(pk) else { continue };
                let message = decode_message(item)?;
                if &message.owner == owner
                    && &message.task_id == task
                    && status.is_none_or(|s| s == message.status)
                {
                    found.push(message);
                }
                if found.len() == limit {
                    return Ok(found);
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(found),
            }
        }
    }
}

#[async_trait]
impl MessageStore for DynamoStore {
    async fn insert(&self, message: &OutboundMessage) -> anyhow::Result<bool> {
        let item = message_item(message)?;
        let link = link_item(message);
        for try_number in 0..TRANSACTION_TRIES {
            let put_message = Put::builder()
                .table_name(self.table())
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .context("could not build the message Put")?;
            let put_link = Put::builder()
                .table_name(self.table())
                .set_item(Some(link.clone()))
                .build()
                .context("could not build the task link Put")?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_message).build())
                .transact_items(TransactWriteItem::builder().put(put_link).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            let Some(reasons) = cancellation_reasons(&err) else {
                return Err(err)
                    .with_context(|| format!("TransactWriteItems of the message {}", message.id));
            };
            if reason_is(reasons, 0, CONDITION_FAILED) {
                return Ok(false);
            }
            if reasons
                .iter()
                .any(|r| r.code() == Some(TRANSACTION_CONFLICT))
            {
                pause(try_number).await;
                continue;
            }
            return Err(err).with_context(|| {
                format!(
                    "the insert of the message {} was cancelled for another reason",
                    message.id
                )
            });
        }
        bail!(
            "the insert of the message {} met concurrent writes {TRANSACTION_TRIES} times",
            message.id
        )
    }

    async fn get(&self, id: &MessageId) -> anyhow::Result<Option<OutboundMessage>> {
        let item = self
            .get_item(message_key(id), &format!("the message {id}"))
            .await?;
        item.as_ref()
            .map(decode_message)
            .transpose()
            .with_context(|| format!("the message {id} does not decode"))
    }

    async fn update(
        &self,
        message: &OutboundMessage,
        expected_version: u64,
    ) -> anyhow::Result<bool> {
        if message.version != expected_version.wrapping_add(1) {
            bail!(
                "the message {} is written as version {} over version {expected_version}; a \
                 write must add exactly one",
                message.id,
                message.version
            );
        }
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(message_item(message)?))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":expected", n(expected_version))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // Another version is stored, or no message at all.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => {
                Err(e).with_context(|| format!("PutItem of the message {} failed", message.id))
            }
        }
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
        match &filter.task_id {
            None => self.list_of_owner(owner, filter.status, limit, after).await,
            Some(task) => {
                self.list_of_task(owner, task, filter.status, limit, after)
                    .await
            }
        }
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<OutboundMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = micros(now);
        let items = self.due_items(sweep_pk, now, limit).await?;
        let mut due = Vec::with_capacity(items.len());
        for item in &items {
            let message = decode_message(item)?;
            // The index lags the table, and the message may have been tried since it was read.
            if message.status == MessageStatus::Pending
                && message.next_try_at.is_some_and(|at| micros_ceil(at) <= now)
            {
                due.push(message);
            }
        }
        due.sort_by(|a, b| (a.next_try_at, &a.id).cmp(&(b.next_try_at, &b.id)));
        Ok(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use pj_core::ids::Attempt;
    use pj_core::messages::{Channel, MessageContent};

    fn message(status: MessageStatus) -> OutboundMessage {
        let task = TaskId::generate(Utc::now());
        let mut m = OutboundMessage::new(
            MessageId::derive(&task, Attempt(1), "test"),
            UserId::parse("ada").unwrap(),
            task,
            Attempt(1),
            Channel::Webhook,
            "https://hooks.example.com/".into(),
            None,
            MessageContent {
                text: "hello".into(),
                html: None,
                payload: Some(serde_json::json!({"type": "notification"})),
            },
            Utc::now(),
            TimeDelta::hours(24),
        );
        m.status = status;
        m
    }

    #[test]
    fn a_pending_message_is_in_the_sweep_index_and_a_finished_one_is_not() {
        let pending = message_item(&message(MessageStatus::Pending)).unwrap();
        assert!(get_s(&pending, GSI2_PK).unwrap().starts_with("MSGSWEEP#"));
        for status in [MessageStatus::Sent, MessageStatus::Failed] {
            let item = message_item(&message(status)).unwrap();
            assert!(!item.contains_key(GSI2_PK) && !item.contains_key(GSI2_SK));
        }
    }

    #[test]
    fn a_stored_document_decodes_to_the_same_message() {
        let m = message(MessageStatus::Pending);
        assert_eq!(decode_message(&message_item(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn the_owner_and_task_partitions_never_meet_the_tasks() {
        let m = message(MessageStatus::Sent);
        let item = message_item(&m).unwrap();
        assert_eq!(get_s(&item, GSI1_PK).unwrap(), "MSGOWNER#ada");
        let link = link_item(&m);
        assert_eq!(
            get_s(&link, GSI1_PK).unwrap(),
            format!("MSGTASK#ada#{}", m.task_id)
        );
        assert_eq!(
            get_s(&link, GSI1_SK).unwrap(),
            get_s(&item, GSI1_SK).unwrap()
        );
    }
}
