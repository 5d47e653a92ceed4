//! The runner of `PJ_RUNNER` for the `dispatch` function: pj-remote's GitHub Actions or
//! Daytona runner, configured from the environment (`GITHUB_API_URL`,
//! `PJ_GITHUB_RUNNER_REPO`; `DAYTONA_API_URL`, `PJ_DAYTONA_SNAPSHOT`, `DAYTONA_TARGET`,
//! `KEEP_ALIVE`) with its credentials from the secret, and checked before its first start.

use std::sync::Arc;

use async_trait::async_trait;
use pj_core::ports::{DispatchError, Runner, RunnerJob, SecretSource};
use pj_core::task::RunnerKind;
use pj_core::{Attempt, TaskId};
use pj_remote::{CheckedFirst, RemoteRunner};

use crate::config::{CoreConfig, Env};

/// The runner `core.shared.runner` names, configured from `env`, reading its credentials from
/// `secrets` when it needs them.
pub fn runner_from_config(
    core: &CoreConfig,
    env: &Env,
    secrets: Arc<dyn SecretSource>,
) -> Arc<dyn Runner> {
    let lookup = |name: &str| env.get(name);
    match RemoteRunner::from_lookup(core.shared.runner, lookup, secrets) {
        Ok(Some(remote)) => Arc::new(CheckedFirst::new(remote)),
        Ok(None) => misconfigured(
            core.shared.runner,
            "the local runner exists only in pj serve".into(),
        ),
        Err(e) => misconfigured(core.shared.runner, format!("{e:#}")),
    }
}

fn misconfigured(kind: RunnerKind, problem: String) -> Arc<dyn Runner> {
    tracing::error!(
        runner = kind.as_str(),
        problem,
        "the runner is misconfigured"
    );
    Arc::new(Misconfigured { kind, problem })
}

/// A runner whose configuration is wrong: every attempt fails at once saying what to fix,
/// instead of retrying something that cannot work.
struct Misconfigured {
    kind: RunnerKind,
    problem: String,
}

#[async_trait]
impl Runner for Misconfigured {
    fn kind(&self) -> RunnerKind {
        self.kind
    }

    async fn start(&self, _job: &RunnerJob) -> Result<String, DispatchError> {
        Err(DispatchError::Permanent {
            message: format!("PJ_RUNNER={}: {}", self.kind.as_str(), self.problem),
        })
    }

    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        _runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        tracing::warn!(task_id = %task, %attempt, runner = self.kind.as_str(), "the runner is misconfigured; nothing to stop");
        Ok(())
    }
}
