//! The runner of `PJ_RUNNER` for the `dispatch` function.
//!
//! The GitHub Actions and Daytona runners are pj-remote's (`shared/remote`), which is not in
//! the workspace yet. Until it is, [`runner_from_config`] gives a runner that refuses every
//! dispatch for good, saying so: the attempt fails at once with `dispatch_failed` and that
//! message (and its email), instead of retrying something that cannot work.

use std::sync::Arc;

use async_trait::async_trait;
use pj_core::ports::{DispatchError, Runner, RunnerJob, SecretSource};
use pj_core::task::RunnerKind;
use pj_core::{Attempt, TaskId};

use crate::config::CoreConfig;

/// The runner `core.runner` names, reading its credentials from `secrets` when it needs them.
pub fn runner_from_config(core: &CoreConfig, secrets: Arc<dyn SecretSource>) -> Arc<dyn Runner> {
    // pj-remote's runners take the secrets (GitHub token or App, Daytona key) and the
    // runner defaults (GITHUB_API_URL) from here once they land.
    let _ = secrets;
    Arc::new(NotBuilt { kind: core.runner })
}

/// A runner kind this build does not have.
struct NotBuilt {
    kind: RunnerKind,
}

#[async_trait]
impl Runner for NotBuilt {
    fn kind(&self) -> RunnerKind {
        self.kind
    }

    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError> {
        tracing::error!(task_id = %job.task_id, attempt = %job.attempt, runner = self.kind.as_str(), "no runner of this kind is built in");
        Err(DispatchError::Permanent {
            message: format!(
                "PJ_RUNNER={}: this build of the dispatch function has no {} runner",
                self.kind.as_str(),
                self.kind.as_str()
            ),
        })
    }

    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        _runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        tracing::warn!(task_id = %task, %attempt, runner = self.kind.as_str(), "no runner of this kind is built in; nothing to stop");
        Ok(())
    }
}
