//! [`ArtifactStore`] on AWS: the bytes are S3 objects (`{task}/{name}` in one bucket), what is
//! known of them is a record on the tasks' table (see `dynamo`'s item table), so a listing is
//! one `Query` and a download one `GetItem` and one `GetObject`.
//!
//! A name is written once, and the object decides: a put writes the object with
//! `If-None-Match: *`, which S3 refuses (`412`) when the key exists, so the first bytes stay
//! whatever retries, races or crashes follow. The record is then derived from the object:
//!
//! - The object was ours: the record is written unconditionally. Any record already there
//!   describes either this object (written by a racing put that found it, below) or bytes that
//!   no longer exist (expired and removed by the bucket's lifecycle rule).
//! - The object existed (`412`): an earlier put wrote it, and may have crashed before its
//!   record. The object's own size and metadata (`attempt`, `expires-us`, written with it) make
//!   the record, written only where none is live; the answer is a duplicate either way.
//!
//! A crash between the object and its record leaves an object that is neither listed nor
//! served (both read the record first). The runner's retry finds the object and writes the
//! record it lacked, so the store converges; an object never retried is removed by the
//! lifecycle rule with the rest. Nothing is ever deleted here: DynamoDB's TTL removes the
//! records and the bucket's lifecycle rule (7 days, so never before the record expires) the
//! objects, and reads skip a record whose `expires_us` has passed.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};
use pj_core::artifacts::{Artifact, ArtifactName, ArtifactStore, PutOutcome};
use pj_core::ids::{Attempt, TaskId};

use crate::dynamo::DynamoStore;
use crate::dynamo::artifacts::RecordWrite;

/// Object metadata (`x-amz-meta-*`) that lets a later put rebuild a lost record.
const META_ATTEMPT: &str = "attempt";
const META_EXPIRES: &str = "expires-us";

/// How often a put is tried when S3 answers `409` (another conditional write of the same key
/// was in flight).
const PUT_TRIES: u32 = 3;

/// The artifact store: records on the table of `store`, bytes in `bucket`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3ArtifactStore {
    store: DynamoStore,
    s3: Client,
    bucket: String,
}

impl S3ArtifactStore {
    pub fn new(store: DynamoStore, s3: Client, bucket: impl Into<String>) -> S3ArtifactStore {
        S3ArtifactStore {
            store,
            s3,
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of an artifact: task ids and names are safe key segments.
    pub fn object_key(task: &TaskId, name: &ArtifactName) -> String {
        format!("{task}/{name}")
    }

    /// Writes the object unless the key exists; `Ok(true)` when it was written.
    async fn put_object_once(
        &self,
        key: &str,
        name: &ArtifactName,
        attempt: Attempt,
        bytes: &[u8],
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        for try_number in 1..=PUT_TRIES {
            let result = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type(name.content_type())
                .metadata(META_ATTEMPT, attempt.0.to_string())
                .metadata(META_EXPIRES, expires_at.timestamp_micros().to_string())
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) if status_of(&e) == Some(412) => return Ok(false),
                // S3 refuses a conditional write while another one of the key is in flight;
                // the next try sees the winner's object.
                Err(e) if status_of(&e) == Some(409) && try_number < PUT_TRIES => {
                    tracing::debug!(key, "a concurrent put of the artifact; trying again");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(try_number))).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("PutObject of {key} in the bucket {} failed", self.bucket)
                    });
                }
            }
        }
        unreachable!("the last try returns")
    }

    /// The record of the object at `key`, from its size and metadata; `None` when it is gone.
    /// An object without the metadata (written by something else) takes the caller's.
    async fn record_of_object(
        &self,
        key: &str,
        name: &ArtifactName,
        attempt: Attempt,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<Option<(Artifact, DateTime<Utc>)>> {
        let head = match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => head,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("HeadObject of {key} in the bucket {} failed", self.bucket)
                });
            }
        };
        let meta = head.metadata();
        let stored_attempt = meta
            .and_then(|m| m.get(META_ATTEMPT))
            .and_then(|a| a.parse().ok())
            .map_or(attempt, Attempt);
        let stored_expiry = meta
            .and_then(|m| m.get(META_EXPIRES))
            .and_then(|e| e.parse().ok())
            .and_then(DateTime::from_timestamp_micros)
            .unwrap_or(expires_at);
        let size = u64::try_from(head.content_length().unwrap_or_default()).unwrap_or_default();
        Ok(Some((
            Artifact::new(name.clone(), stored_attempt, size),
            stored_expiry,
        )))
    }
}

/// The HTTP status of a failed call that got an answer.
fn status_of<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

#[async_trait]
impl ArtifactStore for S3ArtifactStore {
    async fn put(
        &self,
        task: &TaskId,
        attempt: Attempt,
        name: &ArtifactName,
        bytes: Vec<u8>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<PutOutcome> {
        let key = S3ArtifactStore::object_key(task, name);
        if self
            .put_object_once(&key, name, attempt, &bytes, expires_at)
            .await?
        {
            let artifact = Artifact::new(name.clone(), attempt, bytes.len() as u64);
            self.store
                .put_artifact_record(task, &artifact, expires_at, RecordWrite::Always, Utc::now())
                .await?;
            return Ok(PutOutcome::Stored);
        }
        // The name's first bytes exist; make sure they are recorded (their put may have
        // crashed before it got that far).
        match self
            .record_of_object(&key, name, attempt, expires_at)
            .await?
        {
            Some((artifact, stored_expiry)) => {
                let repaired = self
                    .store
                    .put_artifact_record(
                        task,
                        &artifact,
                        stored_expiry,
                        RecordWrite::IfNoneLive,
                        Utc::now(),
                    )
                    .await?;
                if repaired {
                    tracing::info!(
                        task_id = %task,
                        artifact = %name,
                        "recorded an artifact whose first put stopped before its record"
                    );
                }
            }
            // Removed between the two calls (the lifecycle rule): the next put starts afresh.
            None => {
                tracing::warn!(task_id = %task, artifact = %name, "the artifact's object vanished")
            }
        }
        Ok(PutOutcome::Duplicate)
    }

    async fn list(&self, task: &TaskId, now: DateTime<Utc>) -> anyhow::Result<Vec<Artifact>> {
        self.store.artifact_records(task, now).await
    }

    async fn get(
        &self,
        task: &TaskId,
        name: &ArtifactName,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(Artifact, Vec<u8>)>> {
        let Some(record) = self.store.artifact_record(task, name, now).await? else {
            return Ok(None);
        };
        let key = S3ArtifactStore::object_key(task, name);
        let object = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(e) if status_of(&e) == Some(404) => {
                // Only the lifecycle rule deletes, and never before the record expires.
                tracing::warn!(task_id = %task, artifact = %name, "a recorded artifact has no object");
                return Ok(None);
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("GetObject of {key} in the bucket {} failed", self.bucket)
                });
            }
        };
        let bytes = object
            .body
            .collect()
            .await
            .with_context(|| format!("reading {key} from the bucket {} failed", self.bucket))?
            .to_vec();
        let artifact = Artifact::new(record.name, record.attempt, bytes.len() as u64);
        Ok(Some((artifact, bytes)))
    }

    // `purge_expired` keeps the trait's `Ok(0)`: DynamoDB's TTL and the bucket's lifecycle rule
    // expire artifacts, and reads skip the expired ones until then.
}
