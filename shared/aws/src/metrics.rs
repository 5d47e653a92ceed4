//! Counting what the SDK sends: an interceptor on every client of an
//! [`AwsContext`](crate::AwsContext) counts executions, HTTP requests and retries per service and
//! operation, and sums DynamoDB's consumed capacity from the responses.
//!
//! DynamoDB reports consumed capacity only when asked (`ReturnConsumedCapacity`), and emulators
//! report made-up numbers, so the interceptor also estimates the write units of every item
//! written from the request itself, by DynamoDB's published sizing rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{ConsumedCapacity, WriteRequest};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef, Input, Output,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::dynamo::size::{item_size, write_units};

/// The service names the SDK gives its operations (and the counters use).
pub mod service {
    pub const DYNAMODB: &str = "DynamoDB";
    pub const SQS: &str = "SQS";
    pub const SES: &str = "SESv2";
    pub const SECRETS_MANAGER: &str = "Secrets Manager";
    pub const S3: &str = "S3";
}

/// How often one operation ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Executions: calls of the client's `send`, each counted once however often retried.
    pub calls: u64,
    /// HTTP requests sent: the first attempt of every call plus its retries.
    pub requests: u64,
    /// Requests that were retries.
    pub retries: u64,
    /// Calls that ended in an error (a service error such as a failed condition included).
    pub failures: u64,
}

impl OperationStats {
    fn add(&mut self, other: &OperationStats) {
        self.calls += other.calls;
        self.requests += other.requests;
        self.retries += other.retries;
        self.failures += other.failures;
    }

    fn minus(&self, earlier: &OperationStats) -> OperationStats {
        OperationStats {
            calls: self.calls.saturating_sub(earlier.calls),
            requests: self.requests.saturating_sub(earlier.requests),
            retries: self.retries.saturating_sub(earlier.retries),
            failures: self.failures.saturating_sub(earlier.failures),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Per `(service, operation)`, e.g. `("DynamoDB", "BatchWriteItem")`.
    pub operations: BTreeMap<(String, String), OperationStats>,
    /// Read capacity units DynamoDB reported consumed.
    pub dynamodb_read_units: f64,
    /// Write capacity units DynamoDB reported consumed.
    pub dynamodb_write_units: f64,
    /// Write units of the items written, estimated from their size: 1 per started KB per item,
    /// twice that inside a transaction; base table only (index writes come on top), successful
    /// writes only.
    pub dynamodb_estimated_write_units: f64,
    /// Items DynamoDB read to answer `Query` and `Scan` calls (their `ScannedCount`: what the
    /// key condition matched, before any filter), so a test can see how much a query read.
    pub dynamodb_items_scanned: u64,
}

impl MetricsSnapshot {
    /// The counts of one operation (zero when it never ran).
    pub fn operation(&self, service: &str, operation: &str) -> OperationStats {
        self.operations
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// The counts of all operations of one service.
    pub fn service(&self, service: &str) -> OperationStats {
        let mut total = OperationStats::default();
        for ((s, _), stats) in &self.operations {
            if s == service {
                total.add(stats);
            }
        }
        total
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &MetricsSnapshot) -> MetricsSnapshot {
        let operations = self
            .operations
            .iter()
            .map(|(key, stats)| {
                let before = earlier.operations.get(key).copied().unwrap_or_default();
                (key.clone(), stats.minus(&before))
            })
            .filter(|(_, stats)| *stats != OperationStats::default())
            .collect();
        MetricsSnapshot {
            operations,
            dynamodb_read_units: self.dynamodb_read_units - earlier.dynamodb_read_units,
            dynamodb_write_units: self.dynamodb_write_units - earlier.dynamodb_write_units,
            dynamodb_estimated_write_units: self.dynamodb_estimated_write_units
                - earlier.dynamodb_estimated_write_units,
            dynamodb_items_scanned: self
                .dynamodb_items_scanned
                .saturating_sub(earlier.dynamodb_items_scanned),
        }
    }
}

/// The counters shared by every client of one [`AwsContext`](crate::AwsContext). Cheap to
/// clone: clones count together.
#[derive(Debug, Clone, Default)]
pub struct AwsMetrics {
    inner: Arc<Mutex<MetricsSnapshot>>,
}

impl AwsMetrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.lock().clone()
    }

    /// The interceptor that feeds these counters, for a client built outside
    /// [`AwsContext`](crate::AwsContext): `config::Builder::interceptor(metrics.interceptor())`.
    pub fn interceptor(&self) -> CountingInterceptor {
        CountingInterceptor {
            metrics: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetricsSnapshot> {
        // Counters stay meaningful even if a panicking thread held the lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_operation(&self, names: (String, String), f: impl FnOnce(&mut OperationStats)) {
        f(self.lock().operations.entry(names).or_default());
    }
}

/// The SDK interceptor behind [`AwsMetrics`].
#[derive(Debug, Clone)]
pub struct CountingInterceptor {
    metrics: AwsMetrics,
}

/// Requests sent so far by the current execution, so a retry can be told from a first try.
#[derive(Debug, Clone, Copy)]
struct AttemptsSent(u32);

impl Storable for AttemptsSent {
    type Storer = StoreReplace<Self>;
}

/// The estimated write units of the current execution's request.
#[derive(Debug, Clone, Copy)]
struct PendingWriteUnits(f64);

impl Storable for PendingWriteUnits {
    type Storer = StoreReplace<Self>;
}

fn names(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(m) => (m.service().to_owned(), m.name().to_owned()),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    }
}

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "pj-aws request counter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The input is gone once serialized, so the estimate is taken now and booked when the
        // call has succeeded.
        if let Some(units) = estimated_write_units(context.input()) {
            cfg.interceptor_state().store_put(PendingWriteUnits(units));
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let sent = cfg.load::<AttemptsSent>().map_or(0, |a| a.0);
        cfg.interceptor_state()
            .store_put(AttemptsSent(sent.saturating_add(1)));
        self.metrics.with_operation(names(cfg), |stats| {
            stats.requests += 1;
            if sent > 0 {
                stats.retries += 1;
            }
        });
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let output = match context.output_or_error() {
            Some(Ok(output)) => Some(output),
            _ => None,
        };
        self.metrics.with_operation(names(cfg), |stats| {
            stats.calls += 1;
            if output.is_none() {
                stats.failures += 1;
            }
        });
        if let Some(output) = output {
            let (read, write) = consumed_capacity(output);
            let pending = cfg.load::<PendingWriteUnits>().map_or(0.0, |p| p.0);
            let estimated = (pending - unprocessed_write_units(output)).max(0.0);
            let scanned = scanned_items(output);
            if read != 0.0 || write != 0.0 || estimated != 0.0 || scanned != 0 {
                let mut m = self.metrics.lock();
                m.dynamodb_read_units += read;
                m.dynamodb_write_units += write;
                m.dynamodb_estimated_write_units += estimated;
                m.dynamodb_items_scanned += scanned;
            }
        }
        Ok(())
    }
}

/// Estimated write units of a DynamoDB write request (other requests: `None`).
fn estimated_write_units(input: &Input) -> Option<f64> {
    if let Some(put) = input.downcast_ref::<PutItemInput>() {
        return put.item().map(|item| write_units(item_size(item)));
    }
    if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
        let requests = batch.request_items()?;
        return Some(requests.values().flatten().map(request_units).sum());
    }
    if let Some(tx) = input.downcast_ref::<TransactWriteItemsInput>() {
        // A transactional write costs two units per started KB. An update's or a delete's
        // item is not in the request: counted as one KB (the small items updated here are).
        let units = tx
            .transact_items()
            .iter()
            .map(|t| match t.put() {
                Some(put) => 2.0 * write_units(item_size(put.item())),
                None if t.update().is_some() || t.delete().is_some() => 2.0,
                None => 0.0,
            })
            .sum();
        return Some(units);
    }
    None
}

fn request_units(request: &WriteRequest) -> f64 {
    match request.put_request() {
        Some(put) => write_units(item_size(put.item())),
        // A delete costs at least one unit; its item's size is unknown here.
        None => 1.0,
    }
}

/// The estimated units of the items a batch write left unprocessed (they were not written).
fn unprocessed_write_units(output: &Output) -> f64 {
    output
        .downcast_ref::<BatchWriteItemOutput>()
        .and_then(|o| o.unprocessed_items())
        .map(|u| u.values().flatten().map(request_units).sum())
        .unwrap_or(0.0)
}

/// The items a `Query` or `Scan` response says were read (`ScannedCount`).
fn scanned_items(output: &Output) -> u64 {
    let count = if let Some(o) = output.downcast_ref::<QueryOutput>() {
        o.scanned_count()
    } else if let Some(o) = output.downcast_ref::<ScanOutput>() {
        o.scanned_count()
    } else {
        0
    };
    u64::try_from(count).unwrap_or(0)
}

/// Read and write units DynamoDB reported in a response.
fn consumed_capacity(output: &Output) -> (f64, f64) {
    fn one(c: Option<&ConsumedCapacity>, reads: bool) -> (f64, f64) {
        many(c.into_iter(), reads)
    }
    fn many<'a>(cs: impl Iterator<Item = &'a ConsumedCapacity>, reads: bool) -> (f64, f64) {
        let (mut r, mut w) = (0.0, 0.0);
        for c in cs {
            // Totals come as CapacityUnits; the split, where given, says which kind they were.
            match (c.read_capacity_units(), c.write_capacity_units()) {
                (None, None) => {
                    let units = c.capacity_units().unwrap_or(0.0);
                    if reads { r += units } else { w += units }
                }
                (read, write) => {
                    r += read.unwrap_or(0.0);
                    w += write.unwrap_or(0.0);
                }
            }
        }
        (r, w)
    }
    if let Some(o) = output.downcast_ref::<PutItemOutput>() {
        return one(o.consumed_capacity(), false);
    }
    if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
        return one(o.consumed_capacity(), false);
    }
    if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
        return one(o.consumed_capacity(), false);
    }
    if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
        return many(o.consumed_capacity().iter(), false);
    }
    if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
        return many(o.consumed_capacity().iter(), false);
    }
    if let Some(o) = output.downcast_ref::<GetItemOutput>() {
        return one(o.consumed_capacity(), true);
    }
    if let Some(o) = output.downcast_ref::<QueryOutput>() {
        return one(o.consumed_capacity(), true);
    }
    if let Some(o) = output.downcast_ref::<ScanOutput>() {
        return one(o.consumed_capacity(), true);
    }
    if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
        return many(o.consumed_capacity().iter(), true);
    }
    if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
        return many(o.consumed_capacity().iter(), true);
    }
    (0.0, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_should_subtract_and_drop_operations_that_did_not_run() {
        let mut before = MetricsSnapshot::default();
        before.operations.insert(
            ("SQS".into(), "SendMessage".into()),
            OperationStats {
                calls: 2,
                requests: 3,
                retries: 1,
                failures: 0,
            },
        );
        let mut after = before.clone();
        after.operations.insert(
            ("DynamoDB".into(), "Query".into()),
            OperationStats {
                calls: 1,
                requests: 1,
                retries: 0,
                failures: 0,
            },
        );
        after.dynamodb_write_units = 4.0;
        let diff = after.since(&before);
        assert_eq!(diff.operations.len(), 1);
        assert_eq!(diff.operation("DynamoDB", "Query").calls, 1);
        assert_eq!(
            diff.operation("SQS", "SendMessage"),
            OperationStats::default()
        );
        assert_eq!(diff.dynamodb_write_units, 4.0);
        assert_eq!(after.service("SQS").requests, 3);
    }
}
