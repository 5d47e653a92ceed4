//! The records of artifacts on the tasks' table: what [`S3ArtifactStore`](crate::S3ArtifactStore)
//! lists and serves, while the bytes are S3 objects.
//!
//! One item per artifact (`ART#{task}`, `{name}`) with `attempt`, `size` and the expiry, so a
//! task's artifacts are one `Query` of one partition (never an S3 listing, never a `HEAD` per
//! object) and one artifact is one `GetItem`.

use anyhow::{Context, anyhow};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, Utc};
use pj_core::artifacts::{Artifact, ArtifactName};
use pj_core::ids::{Attempt, TaskId};

use super::{
    ABSENT_OR_EXPIRED, DynamoStore, Item, PK, SK, absent_or_expired_names, expiry, get_i64, get_s,
    key, live, micros, n, s,
};

const ATTEMPT: &str = "attempt";
const SIZE: &str = "size";

fn artifact_pk(task: &TaskId) -> String {
    format!("ART#{task}")
}

fn record_item(task: &TaskId, artifact: &Artifact, expires_at: DateTime<Utc>) -> Item {
    let mut item = key(artifact_pk(task), artifact.name.as_str());
    item.insert(ATTEMPT.to_owned(), n(artifact.attempt.0));
    item.insert(SIZE.to_owned(), n(artifact.size));
    expiry(&mut item, expires_at);
    item
}

fn decode(item: &Item) -> anyhow::Result<Artifact> {
    let name = ArtifactName::parse(get_s(item, SK)?)
        .map_err(|e| anyhow!("a stored artifact's name breaks the rule: {e}"))?;
    let attempt = u32::try_from(get_i64(item, ATTEMPT)?)
        .context("a stored artifact's attempt is out of range")?;
    let size =
        u64::try_from(get_i64(item, SIZE)?).context("a stored artifact's size is negative")?;
    Ok(Artifact::new(name, Attempt(attempt), size))
}

/// How a record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordWrite {
    /// Whatever is there: the caller wrote the bytes the record describes.
    Always,
    /// Only where no live record is (absent, or expired at `now`).
    IfNoneLive,
}

impl DynamoStore {
    /// Writes the record of `artifact`; whether it was written (an [`RecordWrite::IfNoneLive`]
    /// write finds a live record and leaves it).
    pub(crate) async fn put_artifact_record(
        &self,
        task: &TaskId,
        artifact: &Artifact,
        expires_at: DateTime<Utc>,
        write: RecordWrite,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut request = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(record_item(task, artifact, expires_at)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if write == RecordWrite::IfNoneLive {
            request = request
                .condition_expression(ABSENT_OR_EXPIRED)
                .set_expression_attribute_names(Some(absent_or_expired_names()))
                .expression_attribute_values(":now", n(micros(now)));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "PutItem of the artifact record {task}/{} on {} failed",
                    artifact.name,
                    self.table()
                )
            }),
        }
    }

    /// The task's live records, by attempt then name: one strongly consistent `Query` (more
    /// pages only past 1 MB of records, thousands of them).
    pub(crate) async fn artifact_records(
        &self,
        task: &TaskId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Artifact>> {
        let now = micros(now);
        let mut artifacts = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(artifact_pk(task)))
                // A runner's upload must show in the listing that follows it.
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .with_context(|| {
                    format!(
                        "Query of the artifacts of {task} on {} failed",
                        self.table()
                    )
                })?;
            for item in output.items() {
                if live(item, now) {
                    artifacts.push(
                        decode(item).with_context(|| {
                            format!("an artifact record of {task} is unreadable")
                        })?,
                    );
                }
            }
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        artifacts.sort_by(|a, b| (a.attempt, &a.name).cmp(&(b.attempt, &b.name)));
        Ok(artifacts)
    }

    /// The live record of one artifact.
    pub(crate) async fn artifact_record(
        &self,
        task: &TaskId,
        name: &ArtifactName,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Artifact>> {
        let item = self
            .get_item(
                key(artifact_pk(task), name.as_str()),
                &format!("the artifact record {task}/{name}"),
            )
            .await?;
        match item {
            Some(item) if live(&item, micros(now)) => {
                Ok(Some(decode(&item).with_context(|| {
                    format!("the artifact record {task}/{name}")
                })?))
            }
            _ => Ok(None),
        }
    }
}
