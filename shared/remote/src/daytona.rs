//! `PJ_RUNNER=daytona`: an attempt runs in a sandbox made from a snapshot of the runner image
//! (`infra/daytona`), through Daytona's REST API:
//!
//! 1. `GET /snapshots/{name}`: the snapshot exists and is usable, or the attempt fails at once
//!    naming it (the failure that left tasks `running` forever before). Daytona deactivates a
//!    snapshot unused for two weeks: an inactive one is activated
//!    (`POST /snapshots/{id}/activate`) and the dispatch retried once it is ready.
//! 2. `POST /sandbox` with the snapshot, the runner environment, labels and a name per attempt;
//!    auto-stop after the attempt's deadline and, unless `KEEP_ALIVE`, auto-delete on stop, so
//!    a sandbox whose release is lost does not live on.
//! 3. On the sandbox's toolbox (its `toolboxProxyUrl`, else `GET /sandbox/{id}/toolbox-proxy-url`):
//!    `POST {toolbox}/{id}/process/session` and `POST …/session/{session}/exec` with
//!    `pj-runner run`, asynchronously.
//!
//! Built from Daytona's API reference (its OpenAPI documents for the API and the toolbox).
//!
//! Stop deletes the sandbox (`DELETE /sandbox/{id}`), or with `KEEP_ALIVE` stops it
//! (`POST /sandbox/{id}/stop`) so a person can look at it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use pj_core::ports::{DispatchError, Runner, RunnerJob, SecretSource};
use pj_core::task::RunnerKind;
use pj_core::{Attempt, TaskId};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Failure, client, current_secrets, unreachable};

/// The secret (AWS) holding Daytona's API key; `DAYTONA_API_KEY` in `pj serve`.
pub const API_KEY_SECRET: &str = "daytona_api_key";
/// The session the agent runs in.
const SESSION: &str = "pithy-jaunt";
/// The command the sandbox runs.
pub const COMMAND: &str = "pj-runner run";
/// A sandbox not yet started after its creation is waited for this long.
const START_WAIT: Duration = Duration::from_secs(30);
/// How long a dispatch waits for a snapshot that is not ready yet.
const NOT_READY_WAIT: Duration = Duration::from_secs(30);
/// Minutes a sandbox may idle past its attempt's deadline before it stops by itself.
const AUTO_STOP_MARGIN_MINUTES: i64 = 5;

/// What the Daytona runner reads from its environment.
#[derive(Debug, Clone)]
pub struct DaytonaConfig {
    /// `DAYTONA_API_URL`, default `https://app.daytona.io/api`.
    pub api_url: String,
    /// `PJ_DAYTONA_SNAPSHOT`, default `pithy-jaunt-dev`.
    pub snapshot: String,
    /// `DAYTONA_TARGET`: the region; Daytona's default when unset.
    pub target: Option<String>,
    /// `KEEP_ALIVE`: sandboxes are stopped, not deleted.
    pub keep_alive: bool,
    /// How often a sandbox that is still starting is looked at.
    pub poll: Duration,
}

impl DaytonaConfig {
    /// From `lookup` (the process environment, or a test's map); an error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<DaytonaConfig, String> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let api_url = get("DAYTONA_API_URL").unwrap_or_else(|| "https://app.daytona.io/api".into());
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(format!(
                "DAYTONA_API_URL must be an http(s) URL, not {api_url:?}"
            ));
        }
        let snapshot = get("PJ_DAYTONA_SNAPSHOT").unwrap_or_else(|| "pithy-jaunt-dev".into());
        if snapshot.contains(['/', '?', '#', ' ']) {
            return Err(format!(
                "PJ_DAYTONA_SNAPSHOT is not a snapshot name: {snapshot:?}"
            ));
        }
        Ok(DaytonaConfig {
            api_url: api_url.trim_end_matches('/').to_owned(),
            snapshot,
            target: get("DAYTONA_TARGET"),
            keep_alive: get("KEEP_ALIVE")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            poll: Duration::from_secs(2),
        })
    }
}

#[derive(Deserialize)]
struct Snapshot {
    #[serde(default)]
    id: String,
    #[serde(default)]
    state: String,
    #[serde(default, rename = "errorReason")]
    error_reason: Option<String>,
}

#[derive(Deserialize)]
struct Sandbox {
    id: String,
    #[serde(default)]
    state: String,
    #[serde(default, rename = "errorReason")]
    error_reason: Option<String>,
    #[serde(default, rename = "toolboxProxyUrl")]
    toolbox_proxy_url: Option<String>,
}

/// Whether the snapshot can make a sandbox now.
enum Readiness {
    Ready,
    /// Not yet (building, pulling, being activated): why, for the retry's message.
    Later(String),
}

#[derive(Deserialize)]
struct ToolboxUrl {
    url: String,
}

/// Starts attempts in Daytona sandboxes, and removes them.
pub struct DaytonaRunner {
    http: reqwest::Client,
    config: DaytonaConfig,
    secrets: Arc<dyn SecretSource>,
}

impl DaytonaRunner {
    pub fn new(
        config: DaytonaConfig,
        secrets: Arc<dyn SecretSource>,
    ) -> anyhow::Result<DaytonaRunner> {
        Ok(DaytonaRunner {
            http: client()?,
            config,
            secrets,
        })
    }

    /// Checks the API key and the snapshot; the error says what to fix. A snapshot that will
    /// be ready soon (building, or just activated) passes, with a warning.
    pub async fn check(&self) -> Result<(), DispatchError> {
        let key = self.api_key().await?;
        if let Readiness::Later(why) = self.usable_snapshot(&key).await? {
            tracing::warn!(snapshot = %self.config.snapshot, why, "the Daytona snapshot is not ready yet; dispatches wait for it");
        }
        Ok(())
    }

    async fn api_key(&self) -> Result<SecretString, DispatchError> {
        let secrets = current_secrets(self.secrets.as_ref()).await?;
        secrets
            .extra
            .get(API_KEY_SECRET)
            .filter(|k| !k.expose_secret().trim().is_empty())
            .cloned()
            .ok_or_else(|| DispatchError::Permanent {
                message: "no Daytona API key: set DAYTONA_API_KEY (pj serve) or daytona_api_key \
                          in the deployment's secret"
                    .into(),
            })
    }

    async fn usable_snapshot(&self, key: &SecretString) -> Result<Readiness, DispatchError> {
        let name = &self.config.snapshot;
        let path = format!("/snapshots/{name}");
        let snapshot: Snapshot = match self
            .call(Method::GET, &self.config.api_url, &path, key, None)
            .await
        {
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
                return Err(DispatchError::Permanent {
                    message: format!(
                        "the Daytona snapshot {name:?} does not exist: create it from the runner \
                         image (infra/daytona, `daytona snapshot create`) or set \
                         PJ_DAYTONA_SNAPSHOT to one that exists"
                    ),
                });
            }
            other => other?.json().await.map_err(unreadable("snapshot"))?,
        };
        match snapshot.state.as_str() {
            "active" => Ok(Readiness::Ready),
            "inactive" => self.activate(&snapshot, key).await,
            "error" | "build_failed" | "removing" => Err(DispatchError::Permanent {
                message: format!(
                    "the Daytona snapshot {name:?} cannot start sandboxes (state {}{}): build it \
                     again from infra/daytona",
                    snapshot.state,
                    snapshot
                        .error_reason
                        .map(|r| format!(": {}", crate::http::cut(&r)))
                        .unwrap_or_default()
                ),
            }),
            other => Ok(Readiness::Later(format!(
                "the Daytona snapshot {name:?} is not ready yet (state {other})"
            ))),
        }
    }

    /// Activates a snapshot Daytona deactivated (it does after two weeks without use).
    async fn activate(
        &self,
        snapshot: &Snapshot,
        key: &SecretString,
    ) -> Result<Readiness, DispatchError> {
        let name = &self.config.snapshot;
        // Daytona activates by id (its route takes a UUID); the name is only a fallback.
        let id = if snapshot.id.is_empty() {
            name
        } else {
            &snapshot.id
        };
        let path = format!("/snapshots/{id}/activate");
        match self
            .call(Method::POST, &self.config.api_url, &path, key, None)
            .await
        {
            Ok(_) => {
                tracing::info!(snapshot = %name, "activated the inactive Daytona snapshot");
                Ok(Readiness::Later(format!(
                    "the Daytona snapshot {name:?} was inactive (unused for two weeks) and is \
                     being activated"
                )))
            }
            Err(CallError::Answer(_, failure))
                if matches!(failure.status.as_u16(), 401 | 403 | 404) =>
            {
                Err(DispatchError::Permanent {
                    message: format!(
                        "the Daytona snapshot {name:?} is inactive (Daytona deactivates snapshots \
                         unused for two weeks) and could not be activated ({}: {}): activate it \
                         in Daytona's dashboard, or give the API key write:snapshots so it is \
                         activated when needed",
                        failure.status.as_u16(),
                        failure.message
                    ),
                })
            }
            // A 400 here is a race with another activation (or Daytona's cool-down after a
            // deactivation): it passes.
            Err(CallError::Answer(what, failure)) if failure.status.is_client_error() => {
                Ok(Readiness::Later(format!(
                    "the Daytona snapshot {name:?} is inactive; {what}: {}",
                    failure.message
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn create(&self, job: &RunnerJob, key: &SecretString) -> Result<Sandbox, DispatchError> {
        let env: serde_json::Map<String, Value> = job
            .env
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.expose().to_owned())))
            .collect();
        let minutes = (job.deadline - Utc::now()).num_minutes().max(1) + AUTO_STOP_MARGIN_MINUTES;
        let mut body = json!({
            "name": sandbox_name(&job.task_id, job.attempt),
            "snapshot": self.config.snapshot,
            "env": env,
            "labels": {
                "pithy-jaunt/task": job.task_id.as_str(),
                "pithy-jaunt/attempt": job.attempt.to_string(),
            },
            "autoStopInterval": minutes,
            // 0 deletes on stop; negative never deletes.
            "autoDeleteInterval": if self.config.keep_alive { -1 } else { 0 },
        });
        if let Some(target) = &self.config.target {
            body["target"] = json!(target);
        }
        let name = &self.config.snapshot;
        match self
            .call(
                Method::POST,
                &self.config.api_url,
                "/sandbox",
                key,
                Some(&body),
            )
            .await
        {
            Ok(r) => r.json().await.map_err(unreadable("sandbox")),
            // An earlier try of this attempt made the sandbox, then lost the answer: remove it,
            // so the attempt never runs twice, and try again.
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => {
                let earlier = sandbox_name(&job.task_id, job.attempt);
                self.remove(&earlier, key, false)
                    .await
                    .map_err(|e| DispatchError::Retryable {
                        message: format!(
                            "could not remove the sandbox {earlier} of an earlier try: {e:#}"
                        ),
                        retry_after: None,
                    })?;
                Err(DispatchError::Retryable {
                    message: format!(
                        "removed the sandbox {earlier} of an earlier try; trying again"
                    ),
                    retry_after: Some(Duration::from_secs(5)),
                })
            }
            // Daytona answers 400 "Snapshot … is pending" while it builds: that passes.
            Err(CallError::Answer(_, failure))
                if failure.status.is_client_error() && snapshot_not_ready(&failure.message) =>
            {
                Err(DispatchError::Retryable {
                    message: format!(
                        "the Daytona snapshot {name:?} is not ready yet: {}",
                        failure.message
                    ),
                    retry_after: Some(NOT_READY_WAIT),
                })
            }
            Err(CallError::Answer(_, failure))
                if failure.status.is_client_error()
                    && failure.message.to_ascii_lowercase().contains("snapshot") =>
            {
                let status = failure.status;
                Err(DispatchError::Permanent {
                    message: format!(
                        "Daytona cannot make a sandbox from the snapshot {name:?} ({}): {}. \
                         Build it from infra/daytona or set PJ_DAYTONA_SNAPSHOT",
                        status.as_u16(),
                        failure.message
                    ),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the sandbox has started; a sandbox that failed is removed.
    async fn started(
        &self,
        mut sandbox: Sandbox,
        key: &SecretString,
    ) -> Result<Sandbox, DispatchError> {
        let give_up = tokio::time::Instant::now() + START_WAIT;
        loop {
            match sandbox.state.as_str() {
                "started" => return Ok(sandbox),
                "error" | "build_failed" | "destroyed" | "destroying" => {
                    let _ = self.remove(&sandbox.id, key, false).await;
                    let reason = sandbox
                        .error_reason
                        .map(|r| crate::http::cut(&r))
                        .unwrap_or_default();
                    let lower = reason.to_ascii_lowercase();
                    let message = format!(
                        "the Daytona sandbox from snapshot {:?} did not start (state {}): {reason}",
                        self.config.snapshot, sandbox.state
                    );
                    return Err(if lower.contains("image") || lower.contains("snapshot") {
                        DispatchError::Permanent {
                            message: format!(
                                "{message}. Build the snapshot again from infra/daytona"
                            ),
                        }
                    } else {
                        DispatchError::Retryable {
                            message,
                            retry_after: None,
                        }
                    });
                }
                _ if tokio::time::Instant::now() >= give_up => {
                    let _ = self.remove(&sandbox.id, key, false).await;
                    return Err(DispatchError::Retryable {
                        message: format!(
                            "the Daytona sandbox {} did not start within {} s (state {})",
                            sandbox.id,
                            START_WAIT.as_secs(),
                            sandbox.state
                        ),
                        retry_after: None,
                    });
                }
                _ => {
                    tokio::time::sleep(self.config.poll).await;
                    let path = format!("/sandbox/{}", sandbox.id);
                    sandbox = self
                        .call(Method::GET, &self.config.api_url, &path, key, None)
                        .await?
                        .json()
                        .await
                        .map_err(unreadable("sandbox"))?;
                }
            }
        }
    }

    /// Starts `pj-runner run` in the sandbox, in the background of a session.
    async fn run_agent(&self, sandbox: &Sandbox, key: &SecretString) -> Result<(), DispatchError> {
        let toolbox = match sandbox
            .toolbox_proxy_url
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            Some(url) => url.to_owned(),
            None => {
                let answer: ToolboxUrl = self
                    .call(
                        Method::GET,
                        &self.config.api_url,
                        &format!("/sandbox/{}/toolbox-proxy-url", sandbox.id),
                        key,
                        None,
                    )
                    .await?
                    .json()
                    .await
                    .map_err(unreadable("toolbox URL"))?;
                answer.url
            }
        };
        let base = toolbox.trim_end_matches('/');
        let sandbox = &sandbox.id;
        self.call(
            Method::POST,
            base,
            &format!("/{sandbox}/process/session"),
            key,
            Some(&json!({"sessionId": SESSION})),
        )
        .await?;
        self.call(
            Method::POST,
            base,
            &format!("/{sandbox}/process/session/{SESSION}/exec"),
            key,
            Some(&json!({"command": COMMAND, "runAsync": true})),
        )
        .await?;
        Ok(())
    }

    /// Deletes the sandbox, or stops it when `keep` (a person will look at it). One that is
    /// gone already is not an error.
    async fn remove(&self, sandbox: &str, key: &SecretString, keep: bool) -> anyhow::Result<()> {
        let (method, path) = if keep {
            (Method::POST, format!("/sandbox/{sandbox}/stop"))
        } else {
            (Method::DELETE, format!("/sandbox/{sandbox}"))
        };
        match self
            .call(method, &self.config.api_url, &path, key, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            // Daytona refuses to stop a sandbox that is not running (stopped by its auto-stop,
            // or failed): it is kept as it is, which is what was asked.
            Err(CallError::Answer(_, failure))
                if keep && failure.status == StatusCode::BAD_REQUEST =>
            {
                tracing::info!(sandbox, reason = %failure.message, "the sandbox is not running; kept as it is");
                Ok(())
            }
            // 409: a state change is under way (starting, stopping); the stop message comes
            // again after a backoff.
            Err(e) => Err(DispatchError::from(e).into()),
        }
    }

    async fn call(
        &self,
        method: Method,
        base: &str,
        path: &str,
        key: &SecretString,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, CallError> {
        let what = format!("Daytona {method} {path}");
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(key.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Unreachable(unreachable(&what, &e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let failure = Failure::read(response, &[key.expose_secret()]).await;
        Err(CallError::Answer(what, failure))
    }
}

/// Why a call failed: an answer the caller may handle (a 404, a 409), or no answer.
enum CallError {
    Answer(String, Failure),
    Unreachable(DispatchError),
}

impl CallError {
    fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Answer(_, f) => Some(f.status),
            CallError::Unreachable(_) => None,
        }
    }
}

impl From<CallError> for DispatchError {
    fn from(e: CallError) -> DispatchError {
        match e {
            CallError::Unreachable(e) => e,
            CallError::Answer(what, failure) => {
                failure.into_dispatch_error(&what, Utc::now(), advice)
            }
        }
    }
}

fn advice(status: StatusCode) -> String {
    match status.as_u16() {
        401 => "Daytona does not accept the API key: create a new one and set DAYTONA_API_KEY \
                (pj serve) or daytona_api_key (the deployment's secret)"
            .into(),
        403 => "the Daytona API key lacks a permission: it needs write:sandboxes and \
                delete:sandboxes (and write:snapshots to activate a snapshot Daytona \
                deactivated); create a key with them"
            .into(),
        404 => "not found in Daytona: check DAYTONA_API_URL and PJ_DAYTONA_SNAPSHOT".into(),
        _ => "see Daytona's message".into(),
    }
}

fn unreadable(what: &'static str) -> impl Fn(reqwest::Error) -> DispatchError {
    move |e| DispatchError::Retryable {
        message: format!("Daytona's {what} answer could not be read ({e})"),
        retry_after: None,
    }
}

/// Daytona's answer to a create from a snapshot still being built, pulled or activated.
fn snapshot_not_ready(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("snapshot")
        && ["is pending", "is building", "is pulling"]
            .iter()
            .any(|s| m.contains(s))
}

/// One sandbox name per attempt, so a retried create finds the earlier one.
pub fn sandbox_name(task: &TaskId, attempt: Attempt) -> String {
    format!("pj-{task}-{attempt}")
}

#[async_trait]
impl Runner for DaytonaRunner {
    fn kind(&self) -> RunnerKind {
        RunnerKind::Daytona
    }

    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError> {
        let key = self.api_key().await?;
        if let Readiness::Later(why) = self.usable_snapshot(&key).await? {
            return Err(DispatchError::Retryable {
                message: why,
                retry_after: Some(NOT_READY_WAIT),
            });
        }
        let sandbox = self.create(job, &key).await?;
        let sandbox = self.started(sandbox, &key).await?;
        if let Err(e) = self.run_agent(&sandbox, &key).await {
            // A sandbox without its agent would idle until its auto-stop.
            if let Err(cleanup) = self.remove(&sandbox.id, &key, false).await {
                tracing::warn!(task_id = %job.task_id, sandbox = %sandbox.id, error = format!("{cleanup:#}"), "could not remove the sandbox");
            }
            return Err(e);
        }
        tracing::info!(task_id = %job.task_id, attempt = %job.attempt, sandbox = %sandbox.id, snapshot = %self.config.snapshot, "sandbox started");
        Ok(sandbox.id)
    }

    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        let key = self.api_key().await?;
        // Without a recorded id (the start's answer was lost) the attempt's name finds it.
        let name = sandbox_name(task, attempt);
        let sandbox = runner_ref.unwrap_or(&name);
        self.remove(sandbox, &key, self.config.keep_alive).await?;
        tracing::info!(task_id = %task, %attempt, sandbox, kept = self.config.keep_alive, "sandbox released");
        Ok(())
    }
}
