//! The AWS adapters against the moto emulator, over HTTP: every port contract, then what only
//! the AWS adapters promise (lazy TTL, batched log writes, artifacts that survive a crashed put,
//! SES's record of sent mail, the secrets cache, request counting).
//!
//! Run through `scripts/with-moto cargo test -p pj-aws`, which starts moto and sets
//! `AWS_ENDPOINT_URL`. Every test makes its own table, bucket, queues and secrets under unique names,
//! so tests share one emulator.

mod artifacts;
mod contract;
mod mail;
mod messages;
mod metrics;
mod queue;
mod secrets;
mod store;

use pj_aws::provision::{self, ProvisionedQueues};
use pj_aws::{AwsContext, DynamoStore, S3ArtifactStore, SqsQueue};
use pj_contract::sample;

/// The emulator's URL; these tests never pass without one.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: the pj-aws tests run against the moto emulator. \
             Run them as `scripts/with-moto cargo test -p pj-aws`."
        ),
    }
}

/// A fresh context (with its own counters) on the emulator.
pub async fn aws() -> AwsContext {
    AwsContext::with_endpoint(&endpoint()).await
}

/// A resource name no other test uses.
pub fn unique_name(what: &str) -> String {
    format!("pj-test-{what}-{}", sample::unique())
}

/// A store on a new table of its own.
pub async fn store(aws: &AwsContext) -> DynamoStore {
    let table = unique_name("table");
    provision::create_table(aws.dynamodb(), &table)
        .await
        .expect("the table is created");
    aws.dynamo_store(table)
}

/// An artifact store on a new table and a new bucket of its own.
pub async fn artifact_store(aws: &AwsContext) -> S3ArtifactStore {
    let table = unique_name("table");
    provision::create_table(aws.dynamodb(), &table)
        .await
        .expect("the table is created");
    // Bucket names are lower case.
    let bucket = unique_name("bucket").to_lowercase();
    provision::create_bucket(aws.s3(), &bucket)
        .await
        .expect("the bucket is created");
    aws.artifact_store(table, bucket)
}

/// New queues of their own, dead-lettering after `max_receives` receives.
pub async fn queues(aws: &AwsContext, max_receives: u32) -> (SqsQueue, ProvisionedQueues) {
    let made = provision::create_queues(aws.sqs(), &unique_name("q"), max_receives)
        .await
        .expect("the queues are created");
    (aws.sqs_queue(made.urls.clone()), made)
}
