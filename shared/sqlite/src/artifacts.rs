//! [`ArtifactStore`] on SQLite: the bytes live in the database file, under the data dir, beside
//! the log lines they go with, and expire with them.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::artifacts::{Artifact, ArtifactName, ArtifactStore, PutOutcome};
use pj_core::ids::{Attempt, TaskId};
use rusqlite::{OptionalExtension, params};

use crate::tasks::purge;
use crate::{SqliteStore, micros};

fn artifact(name: String, attempt: i64, size: i64) -> anyhow::Result<Artifact> {
    let name = ArtifactName::parse(&name).context("a stored artifact's name breaks the rule")?;
    let attempt = u32::try_from(attempt).context("a stored artifact's attempt is out of range")?;
    Ok(Artifact::new(name, Attempt(attempt), size as u64))
}

#[async_trait]
impl ArtifactStore for SqliteStore {
    async fn put(
        &self,
        task: &TaskId,
        attempt: Attempt,
        name: &ArtifactName,
        bytes: Vec<u8>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<PutOutcome> {
        let (task, name) = (task.as_str().to_owned(), name.as_str().to_owned());
        let expires_at = micros(expires_at);
        self.with_writer("artifact put", move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO artifacts (task_id, name, attempt, bytes, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (task_id, name) DO NOTHING",
                )
                .context("could not prepare the artifact insert")?
                .execute(params![task, name, attempt.0, bytes, expires_at])
                .with_context(|| format!("could not store the artifact {name}"))?;
            Ok(if n > 0 {
                PutOutcome::Stored
            } else {
                PutOutcome::Duplicate
            })
        })
        .await
    }

    async fn list(&self, task: &TaskId, now: DateTime<Utc>) -> anyhow::Result<Vec<Artifact>> {
        let task = task.as_str().to_owned();
        self.with_reader("artifact list", move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT name, attempt, length(bytes) FROM artifacts
                     WHERE task_id = ?1 AND expires_at > ?2 ORDER BY attempt, name",
                )
                .context("could not prepare the artifact list")?;
            let rows = statement
                .query_map(params![task, micros(now)], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .context("could not list the artifacts")?;
            rows.map(|row| {
                let (name, attempt, size) = row.context("could not read an artifact row")?;
                artifact(name, attempt, size)
            })
            .collect()
        })
        .await
    }

    async fn get(
        &self,
        task: &TaskId,
        name: &ArtifactName,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(Artifact, Vec<u8>)>> {
        let (task, name) = (task.as_str().to_owned(), name.as_str().to_owned());
        self.with_reader("artifact get", move |conn| {
            let row: Option<(String, i64, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT name, attempt, bytes FROM artifacts
                     WHERE task_id = ?1 AND name = ?2 AND expires_at > ?3",
                )
                .context("could not prepare the artifact lookup")?
                .query_row(params![task, name, micros(now)], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
                .context("could not read the artifact")?;
            row.map(|(name, attempt, bytes)| {
                Ok((artifact(name, attempt, bytes.len() as i64)?, bytes))
            })
            .transpose()
        })
        .await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        purge(
            self,
            "DELETE FROM artifacts WHERE rowid IN
             (SELECT rowid FROM artifacts WHERE expires_at <= ?1 LIMIT ?2)",
            micros(now),
        )
        .await
    }
}
