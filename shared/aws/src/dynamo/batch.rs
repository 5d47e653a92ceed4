//! Batch writes and reads that finish what DynamoDB leaves unprocessed.
//!
//! `BatchWriteItem` and `BatchGetItem` may do only part of a request when a partition is
//! throttled, returning the rest as `UnprocessedItems` / `UnprocessedKeys`; AWS asks callers to
//! send those again with exponential backoff.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity, WriteRequest};

use super::Item;

/// Items per `BatchWriteItem`, DynamoDB's limit.
pub(crate) const WRITE_BATCH: usize = 25;
/// Keys per `BatchGetItem`, DynamoDB's limit.
pub(crate) const GET_BATCH: usize = 100;

/// How to wait between rounds that left work unprocessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Rounds in a row that processed nothing before giving up.
    pub max_stalled_rounds: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(50),
            max: Duration::from_secs(2),
            max_stalled_rounds: 8,
        }
    }
}

impl Backoff {
    /// The wait after `round` unfinished rounds in a row, with full jitter over its upper half.
    fn delay(&self, round: u32) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1u32 << round.min(16))
            .min(self.max);
        let half = ceiling / 2;
        let jitter = rand::random::<f64>();
        half + half.mul_f64(jitter)
    }
}

/// One `BatchWriteItem` call: writes what it can of `requests` (at most [`WRITE_BATCH`]) and
/// returns the requests left unprocessed.
#[async_trait]
pub(crate) trait BatchWrite: Send + Sync {
    async fn write_batch(&self, requests: Vec<WriteRequest>) -> anyhow::Result<Vec<WriteRequest>>;
}

/// Writes every request, [`WRITE_BATCH`] at a time, sending unprocessed ones again (first) with
/// backoff; fails after `backoff.max_stalled_rounds` rounds in a row that wrote nothing.
pub(crate) async fn write_all<W: BatchWrite + ?Sized>(
    writer: &W,
    requests: Vec<WriteRequest>,
    backoff: &Backoff,
) -> anyhow::Result<()> {
    let mut pending: VecDeque<WriteRequest> = requests.into();
    let mut unfinished_rounds = 0u32;
    let mut stalled_rounds = 0u32;
    while !pending.is_empty() {
        let chunk: Vec<WriteRequest> = pending.drain(..pending.len().min(WRITE_BATCH)).collect();
        let sent = chunk.len();
        let left = writer.write_batch(chunk).await?;
        if left.is_empty() {
            unfinished_rounds = 0;
            stalled_rounds = 0;
            continue;
        }
        if left.len() >= sent {
            stalled_rounds += 1;
            if stalled_rounds >= backoff.max_stalled_rounds {
                bail!(
                    "DynamoDB left {} items unprocessed {stalled_rounds} times in a row",
                    left.len() + pending.len()
                );
            }
        } else {
            stalled_rounds = 0;
        }
        for request in left.into_iter().rev() {
            pending.push_front(request);
        }
        tokio::time::sleep(backoff.delay(unfinished_rounds)).await;
        unfinished_rounds += 1;
    }
    Ok(())
}

/// [`BatchWrite`] on a table.
pub(crate) struct TableWriter<'a> {
    pub client: &'a Client,
    pub table: &'a str,
}

#[async_trait]
impl BatchWrite for TableWriter<'_> {
    async fn write_batch(&self, requests: Vec<WriteRequest>) -> anyhow::Result<Vec<WriteRequest>> {
        let output = self
            .client
            .batch_write_item()
            .request_items(self.table, requests)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .with_context(|| format!("BatchWriteItem on {} failed", self.table))?;
        Ok(output
            .unprocessed_items
            .and_then(|mut u| u.remove(self.table))
            .unwrap_or_default())
    }
}

/// Reads the items of `keys` with strongly consistent reads, [`GET_BATCH`] at a time, asking
/// again for unprocessed keys with backoff. Missing items are left out; the order is not kept.
pub(crate) async fn get_all(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    backoff: &Backoff,
) -> anyhow::Result<Vec<Item>> {
    let mut found = Vec::with_capacity(keys.len());
    let mut pending: VecDeque<Item> = keys.into();
    let mut unfinished_rounds = 0u32;
    let mut stalled_rounds = 0u32;
    while !pending.is_empty() {
        let chunk: Vec<Item> = pending.drain(..pending.len().min(GET_BATCH)).collect();
        let sent = chunk.len();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(chunk))
            .consistent_read(true)
            .build()
            .context("could not build a BatchGetItem request")?;
        let output = client
            .batch_get_item()
            .request_items(table, request)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .with_context(|| format!("BatchGetItem on {table} failed"))?;
        if let Some(mut responses) = output.responses {
            found.extend(responses.remove(table).unwrap_or_default());
        }
        let left: Vec<Item> = output
            .unprocessed_keys
            .and_then(|mut u: HashMap<String, KeysAndAttributes>| u.remove(table))
            .map(|k| k.keys)
            .unwrap_or_default();
        if left.is_empty() {
            unfinished_rounds = 0;
            stalled_rounds = 0;
            continue;
        }
        if left.len() >= sent {
            stalled_rounds += 1;
            if stalled_rounds >= backoff.max_stalled_rounds {
                bail!(
                    "DynamoDB left {} keys unprocessed {stalled_rounds} times in a row",
                    left.len()
                );
            }
        } else {
            stalled_rounds = 0;
        }
        pending.extend(left);
        tokio::time::sleep(backoff.delay(unfinished_rounds)).await;
        unfinished_rounds += 1;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest};

    use super::*;

    fn request(i: usize) -> WriteRequest {
        let item = HashMap::from([("pk".to_owned(), AttributeValue::S(format!("item-{i}")))]);
        WriteRequest::builder()
            .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
            .build()
    }

    fn name(r: &WriteRequest) -> String {
        match r.put_request().and_then(|p| p.item().get("pk")) {
            Some(AttributeValue::S(s)) => s.clone(),
            other => panic!("not a sample request: {other:?}"),
        }
    }

    /// A table that, for its first `throttled_calls` calls, writes only the first `accept`
    /// requests of each batch and returns the rest unprocessed.
    struct ThrottledTable {
        throttled_calls: usize,
        accept: usize,
        state: Mutex<(usize, BTreeMap<String, usize>, Vec<usize>)>,
    }

    impl ThrottledTable {
        fn new(throttled_calls: usize, accept: usize) -> Self {
            ThrottledTable {
                throttled_calls,
                accept,
                state: Mutex::new((0, BTreeMap::new(), Vec::new())),
            }
        }
    }

    #[async_trait]
    impl BatchWrite for ThrottledTable {
        async fn write_batch(
            &self,
            requests: Vec<WriteRequest>,
        ) -> anyhow::Result<Vec<WriteRequest>> {
            let mut state = self.state.lock().unwrap();
            let (calls, written, sizes) = &mut *state;
            assert!(requests.len() <= WRITE_BATCH, "a batch of over 25 items");
            sizes.push(requests.len());
            *calls += 1;
            let accept = if *calls <= self.throttled_calls {
                self.accept
            } else {
                usize::MAX
            };
            let mut left = Vec::new();
            for (i, r) in requests.into_iter().enumerate() {
                if i < accept {
                    *written.entry(name(&r)).or_default() += 1;
                } else {
                    left.push(r);
                }
            }
            Ok(left)
        }
    }

    fn fast() -> Backoff {
        Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(100),
            max_stalled_rounds: 3,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn when_items_come_back_unprocessed_should_send_them_again_until_all_are_written_once() {
        let table = ThrottledTable::new(4, 10);
        let requests: Vec<_> = (0..60).map(request).collect();
        write_all(&table, requests, &fast()).await.unwrap();
        let (calls, written, sizes) = &*table.state.lock().unwrap();
        assert_eq!(written.len(), 60, "every item should be written");
        assert!(
            written.values().all(|&n| n == 1),
            "no item should be written twice: {written:?}"
        );
        assert!(sizes.iter().all(|&s| s <= WRITE_BATCH));
        // 4 throttled calls write 10 each, then 20 are left: one more call.
        assert_eq!(*calls, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn when_nothing_is_ever_processed_should_give_up_with_an_error() {
        let table = ThrottledTable::new(usize::MAX, 0);
        let started = tokio::time::Instant::now();
        let err = write_all(&table, (0..30).map(request).collect(), &fast())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unprocessed"),
            "the error should say why: {err}"
        );
        let (calls, written, _) = &*table.state.lock().unwrap();
        assert_eq!(*calls, 3, "it should stop after three stalled rounds");
        assert!(written.is_empty());
        assert!(
            started.elapsed() >= Duration::from_millis(10),
            "it should have backed off between rounds"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_some_items_are_processed_each_round_should_keep_going() {
        // One item per call gets through: slow progress is progress, not a stall.
        let table = ThrottledTable::new(usize::MAX, 1);
        write_all(&table, (0..5).map(request).collect(), &fast())
            .await
            .unwrap();
        let (calls, written, _) = &*table.state.lock().unwrap();
        assert_eq!(written.len(), 5);
        assert_eq!(*calls, 5);
    }

    #[test]
    fn backoff_should_grow_and_stay_under_its_ceiling() {
        let b = fast();
        for round in 0..20 {
            let d = b.delay(round);
            assert!(d <= b.max, "round {round}: {d:?}");
        }
        assert!(b.delay(0) <= b.first);
        assert!(b.delay(5) >= b.max / 2);
    }
}
