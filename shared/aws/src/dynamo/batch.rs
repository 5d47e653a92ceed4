//! Batch reads that finish what DynamoDB leaves unprocessed.
//!
//! `BatchGetItem` may do only part of a request when a partition is throttled, returning the
//! rest as `UnprocessedKeys`; AWS asks callers to send those again with exponential backoff.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};

use super::Item;

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
    use super::*;

    fn fast() -> Backoff {
        Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(100),
            max_stalled_rounds: 3,
        }
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
