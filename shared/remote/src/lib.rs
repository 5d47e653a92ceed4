//! The remote runners of `PJ_RUNNER`: GitHub Actions (`github_actions`) and Daytona
//! sandboxes (`daytona`), the same from `pj serve` and from the `dispatch` function.
//!
//! Each implements the core's [`pj_core::ports::Runner`]: `start` either starts the attempt's
//! runner or says why not, as an error the dispatcher retries (5xx, 429, rate limits, no
//! answer; after `Retry-After` or `x-ratelimit-reset` when given) or one that fails the
//! attempt at once with what to fix (401, 403, 404, 422, a missing snapshot). No credential
//! ever goes into an error or a log line.

pub mod daytona;
pub mod github;
pub mod http;

use std::sync::Arc;

use pj_core::ports::{Runner, SecretSource};
use pj_core::task::RunnerKind;

pub use daytona::{DaytonaConfig, DaytonaRunner};
pub use github::{GithubActionsRunner, GithubConfig, RepoName};

/// A remote runner with its start-up check.
pub enum RemoteRunner {
    Github(Arc<GithubActionsRunner>),
    Daytona(Arc<DaytonaRunner>),
}

/// The typed configuration of a remote runner, read once at start.
#[derive(Debug, Clone)]
pub enum RemoteConfig {
    Github(GithubConfig),
    Daytona(DaytonaConfig),
}

impl RemoteConfig {
    /// The configuration of the runner of `kind` from `lookup` (the environment); `None` for
    /// `local`. The error names the variable.
    pub fn from_lookup(
        kind: RunnerKind,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<RemoteConfig>, String> {
        Ok(match kind {
            RunnerKind::Local | RunnerKind::Builtin => None,
            RunnerKind::GithubActions => {
                Some(RemoteConfig::Github(GithubConfig::from_lookup(lookup)?))
            }
            RunnerKind::Daytona => Some(RemoteConfig::Daytona(DaytonaConfig::from_lookup(lookup)?)),
        })
    }
}

impl RemoteRunner {
    /// The runner `config` describes, reading its credentials from `secrets` on use.
    pub fn new(config: RemoteConfig, secrets: Arc<dyn SecretSource>) -> anyhow::Result<Self> {
        Ok(match config {
            RemoteConfig::Github(c) => {
                RemoteRunner::Github(Arc::new(GithubActionsRunner::new(c, secrets)?))
            }
            RemoteConfig::Daytona(c) => {
                RemoteRunner::Daytona(Arc::new(DaytonaRunner::new(c, secrets)?))
            }
        })
    }

    /// The runner of `kind` configured from `lookup` (the environment); `None` for `local`.
    pub fn from_lookup(
        kind: RunnerKind,
        lookup: impl Fn(&str) -> Option<String>,
        secrets: Arc<dyn SecretSource>,
    ) -> anyhow::Result<Option<RemoteRunner>> {
        match RemoteConfig::from_lookup(kind, lookup).map_err(anyhow::Error::msg)? {
            None => Ok(None),
            Some(config) => RemoteRunner::new(config, secrets).map(Some),
        }
    }

    /// Checks the credentials (and Daytona's snapshot); the error says what to fix.
    pub async fn check(&self) -> Result<(), pj_core::ports::DispatchError> {
        match self {
            RemoteRunner::Github(r) => r.check().await,
            RemoteRunner::Daytona(r) => r.check().await,
        }
    }

    pub fn runner(&self) -> Arc<dyn Runner> {
        match self {
            RemoteRunner::Github(r) => r.clone(),
            RemoteRunner::Daytona(r) => r.clone(),
        }
    }
}

/// A remote runner whose check runs before its first start (in a Lambda execution
/// environment, where a failed start-up would only retry the same messages). A check that
/// finds something to fix (credentials, a permission, the snapshot) fails the attempt at once
/// with its message; one that got no usable answer (5xx, a rate limit, no connection) is
/// retried like any dispatch. Until it passes it is run again for the next attempt.
pub struct CheckedFirst {
    remote: RemoteRunner,
    checked: tokio::sync::OnceCell<()>,
}

impl CheckedFirst {
    pub fn new(remote: RemoteRunner) -> CheckedFirst {
        CheckedFirst {
            remote,
            checked: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait::async_trait]
impl Runner for CheckedFirst {
    fn kind(&self) -> RunnerKind {
        self.remote.runner().kind()
    }

    async fn start(
        &self,
        job: &pj_core::ports::RunnerJob,
    ) -> Result<String, pj_core::ports::DispatchError> {
        self.checked
            .get_or_try_init(|| async { self.remote.check().await })
            .await?;
        self.remote.runner().start(job).await
    }

    async fn stop(
        &self,
        task: &pj_core::TaskId,
        attempt: pj_core::Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        self.remote.runner().stop(task, attempt, runner_ref).await
    }
}
