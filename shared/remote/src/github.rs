//! `PJ_RUNNER=github_actions`: an attempt is a `repository_dispatch` event that starts the
//! workflow of `infra/github-actions/pithy-jaunt.yml` in the runner repository.
//!
//! Credentials come from the [`SecretSource`] on every call (they may be rotated): a GitHub
//! App (`github_app_id`, `github_app_private_key`, optionally `github_app_installation_id`
//! among the secrets' extras), whose installation tokens are minted and cached until shortly
//! before they expire, or else a token (`github_token`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pj_core::ports::{DispatchError, Runner, RunnerJob, SecretSource, Secrets};
use pj_core::task::RunnerKind;
use pj_core::{Attempt, TaskId};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::http::{Failure, client, current_secrets, unreachable};

/// The `event_type` the workflow listens for.
pub const EVENT_TYPE: &str = "pithy-jaunt-execute";
/// What never goes into the payload: the workflow has its own token and the provider keys are
/// the repository's secrets.
const WITHHELD: [&str; 3] = ["GITHUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"];
/// A cached installation token is renewed this long before it expires.
const TOKEN_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// The permissions the runner needs: dispatching, and cancelling a run.
const NEEDED: [(&str, &str, &str); 2] = [
    ("contents", "Contents: write", "repository_dispatch"),
    ("actions", "Actions: write", "cancelling a workflow run"),
];

/// A repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName(String);

impl RepoName {
    /// `owner/name`.
    pub fn parse(raw: &str) -> Result<RepoName, String> {
        let raw = raw.trim().trim_end_matches('/');
        let mut parts = raw.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(o), Some(n), None) if valid(o) && valid(n) => Ok(RepoName(raw.to_owned())),
            _ => Err(format!("{raw:?} is not owner/name")),
        }
    }

    /// The repository of a `https://github.com/owner/name[.git]` URL.
    pub fn from_github_url(url: &str) -> Option<RepoName> {
        RepoName::from_url_on(url, "github.com")
    }

    /// The repository of a `https://{host}/owner/name[.git]` URL (a GitHub Enterprise host).
    pub fn from_url_on(url: &str, host: &str) -> Option<RepoName> {
        let parsed = url::Url::parse(url).ok()?;
        if !parsed.host_str()?.eq_ignore_ascii_case(host) {
            return None;
        }
        let path = parsed.path().trim_matches('/');
        RepoName::parse(path.strip_suffix(".git").unwrap_or(path)).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What the GitHub Actions runner reads from its environment.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// `GITHUB_API_URL`, default `https://api.github.com`.
    pub api_url: String,
    /// `PJ_GITHUB_RUNNER_REPO`: where the workflow runs; else each task's own repository.
    pub runner_repo: Option<RepoName>,
}

impl GithubConfig {
    /// From `lookup` (the process environment, or a test's map); an error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<GithubConfig, String> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let api_url = get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(format!(
                "GITHUB_API_URL must be an http(s) URL, not {api_url:?}"
            ));
        }
        let runner_repo = get("PJ_GITHUB_RUNNER_REPO")
            .map(|r| RepoName::parse(&r).map_err(|e| format!("PJ_GITHUB_RUNNER_REPO: {e}")))
            .transpose()?;
        Ok(GithubConfig {
            api_url: api_url.trim_end_matches('/').to_owned(),
            runner_repo,
        })
    }

    /// The host of the repositories this API serves: `github.com` for `api.github.com`, the
    /// web host of a GitHub Enterprise API (`HOST/api/v3`, or `api.HOST`).
    fn web_host(&self) -> Option<String> {
        let url = url::Url::parse(&self.api_url).ok()?;
        let host = url.host_str()?;
        Some(
            host.strip_prefix("api.")
                .unwrap_or(host)
                .to_ascii_lowercase(),
        )
    }
}

/// The credential a request goes out with.
enum Credential {
    App(App),
    Token(SecretString),
}

struct App {
    id: String,
    key: EncodingKey,
    installation: Option<u64>,
}

impl Credential {
    /// The App when its id and key are configured (the recommended mode), else the token.
    fn from_secrets(secrets: &Secrets) -> Result<Credential, String> {
        let extra = |k: &str| {
            secrets
                .extra
                .get(k)
                .map(|v| v.expose_secret().trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match (extra("github_app_id"), extra("github_app_private_key")) {
            (Some(id), Some(pem)) => {
                // A key pasted into one line of an environment variable or a JSON string
                // often keeps its line breaks as the two characters `\n`.
                let pem = if pem.contains('\n') {
                    pem
                } else {
                    pem.replace("\\n", "\n")
                };
                let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
                    "the GitHub App's private key (github_app_private_key) is not an RSA key in \
                     PEM form; download a new one from the App's settings"
                        .to_owned()
                })?;
                let installation = match extra("github_app_installation_id") {
                    None => None,
                    Some(raw) => Some(raw.parse().map_err(|_| {
                        format!("github_app_installation_id must be a number, not {raw:?}")
                    })?),
                };
                Ok(Credential::App(App {
                    id,
                    key,
                    installation,
                }))
            }
            (Some(_), None) | (None, Some(_)) => Err(
                "a GitHub App needs both its id (github_app_id) and its private key \
                 (github_app_private_key)"
                    .into(),
            ),
            (None, None) => match &secrets.github_token {
                Some(t) if !t.expose_secret().trim().is_empty() => Ok(Credential::Token(t.clone())),
                _ => Err(
                    "no GitHub credentials: configure a GitHub App (github_app_id and \
                          github_app_private_key) or a token (github_token / GITHUB_TOKEN)"
                        .into(),
                ),
            },
        }
    }
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
    #[serde(default)]
    permissions: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Runs {
    #[serde(default)]
    workflow_runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    id: u64,
    #[serde(default)]
    display_title: String,
    #[serde(default)]
    status: String,
}

/// Starts attempts as workflow runs, and cancels them.
pub struct GithubActionsRunner {
    http: reqwest::Client,
    config: GithubConfig,
    secrets: Arc<dyn SecretSource>,
    /// Installation tokens by installation id.
    tokens: Mutex<HashMap<u64, (SecretString, DateTime<Utc>)>>,
    /// Installation ids by repository.
    installations: Mutex<HashMap<RepoName, u64>>,
}

impl GithubActionsRunner {
    pub fn new(
        config: GithubConfig,
        secrets: Arc<dyn SecretSource>,
    ) -> anyhow::Result<GithubActionsRunner> {
        Ok(GithubActionsRunner {
            http: client()?,
            config,
            secrets,
            tokens: Mutex::new(HashMap::new()),
            installations: Mutex::new(HashMap::new()),
        })
    }

    /// Checks that the credentials work and have what the runner needs; the error says what
    /// is missing. `pj serve` runs it at start; the dispatch function before its first start.
    pub async fn check(&self) -> Result<(), DispatchError> {
        let credential = self.credential().await?;
        let what = "checking the GitHub credentials";
        match &credential {
            Credential::App(app) => {
                let jwt = app_jwt(app).map_err(permanent)?;
                let me: Value = self
                    .call_json(Method::GET, "/app", &jwt, None)
                    .await
                    .map_err(|e| within(what, e))?;
                let granted = me.get("permissions").cloned().unwrap_or(Value::Null);
                if let Some((name, why)) = lacking(|key| granted.get(key)?.as_str()) {
                    return Err(permanent(format!(
                        "the GitHub App lacks the {name} permission ({why} needs it): add it in \
                         the App's settings and accept it on the installations"
                    )));
                }
                // An installation keeps its old grant until its owner accepts the App's new
                // permissions: checked where the installation is known before a task names it.
                let repo = self.config.runner_repo.as_ref();
                if let Some(path) = installation_path(app, repo) {
                    let installation: Installation = self
                        .call_json(Method::GET, &path, &jwt, None)
                        .await
                        .map_err(|e| within(what, e))?;
                    let granted = |key: &str| installation.permissions.get(key).map(String::as_str);
                    if let Some((name, why)) = lacking(granted) {
                        let place = match repo {
                            Some(r) => format!("on {}", r.as_str()),
                            None => format!("{} (github_app_installation_id)", installation.id),
                        };
                        return Err(permanent(format!(
                            "the GitHub App's installation {place} lacks the {name} permission \
                             ({why} needs it): accept the App's new permissions in the \
                             installation's settings"
                        )));
                    }
                }
            }
            Credential::Token(token) => match &self.config.runner_repo {
                Some(repo) => {
                    let r: Value = self
                        .call_json(
                            Method::GET,
                            &format!("/repos/{}", repo.as_str()),
                            token.expose_secret(),
                            None,
                        )
                        .await
                        .map_err(|e| within(what, e))?;
                    if r.pointer("/permissions/push").and_then(Value::as_bool) != Some(true) {
                        return Err(permanent(format!(
                            "the GitHub token cannot write to {}: repository_dispatch needs \
                             Contents: write (a classic token: the repo scope)",
                            repo.as_str()
                        )));
                    }
                }
                None => {
                    let _: Value = self
                        .call_json(Method::GET, "/user", token.expose_secret(), None)
                        .await
                        .map_err(|e| within(what, e))?;
                }
            },
        }
        Ok(())
    }

    async fn credential(&self) -> Result<Credential, DispatchError> {
        let secrets = current_secrets(self.secrets.as_ref()).await?;
        Credential::from_secrets(&secrets).map_err(permanent)
    }

    /// The repository the attempt's workflow runs in.
    fn runner_repo(&self, job: &RunnerJob) -> Result<RepoName, DispatchError> {
        if let Some(repo) = &self.config.runner_repo {
            return Ok(repo.clone());
        }
        let own = RepoName::from_github_url(&job.repo_url).or_else(|| {
            let host = self.config.web_host()?;
            RepoName::from_url_on(&job.repo_url, &host)
        });
        own.ok_or_else(|| DispatchError::Permanent {
            message: format!(
                "{} is not a GitHub repository: set PJ_GITHUB_RUNNER_REPO to the repository \
                 whose workflow runs the tasks",
                job.repo_url
            ),
        })
    }

    /// A bearer token for `repo`: the installation token of the App, or the token.
    async fn bearer(&self, repo: &RepoName) -> Result<SecretString, DispatchError> {
        match self.credential().await? {
            Credential::Token(t) => Ok(t),
            Credential::App(app) => {
                let Some(id) = app.installation else {
                    let id = self.installation_of(&app, repo).await?;
                    let token = self.installation_token(&app, id).await;
                    if matches!(token, Err(DispatchError::Permanent { .. })) {
                        // The App may have been installed again (a new id): ask next time.
                        self.installations.lock().await.remove(repo);
                    }
                    return token;
                };
                self.installation_token(&app, id).await
            }
        }
    }

    /// The id of the App's installation on `repo`, asked once per repository.
    async fn installation_of(&self, app: &App, repo: &RepoName) -> Result<u64, DispatchError> {
        if let Some(id) = self.installations.lock().await.get(repo).copied() {
            return Ok(id);
        }
        let jwt = app_jwt(app).map_err(permanent)?;
        let path = format!("/repos/{}/installation", repo.as_str());
        let found: Installation = self.call_json(Method::GET, &path, &jwt, None).await?;
        self.installations
            .lock()
            .await
            .insert(repo.clone(), found.id);
        Ok(found.id)
    }

    /// The cached token of installation `id`, minted again shortly before it expires. The
    /// lock is held while minting, so concurrent dispatches mint once.
    async fn installation_token(&self, app: &App, id: u64) -> Result<SecretString, DispatchError> {
        let mut tokens = self.tokens.lock().await;
        if let Some((token, expires)) = tokens.get(&id)
            && *expires - TOKEN_MARGIN > Utc::now()
        {
            return Ok(token.clone());
        }
        let jwt = app_jwt(app).map_err(permanent)?;
        let minted: InstallationToken = self
            .call_json(
                Method::POST,
                &format!("/app/installations/{id}/access_tokens"),
                &jwt,
                None,
            )
            .await?;
        tracing::info!(installation = id, expires_at = %minted.expires_at, "minted a GitHub installation token");
        let token = SecretString::from(minted.token);
        tokens.insert(id, (token.clone(), minted.expires_at));
        Ok(token)
    }

    /// One call to the API, its JSON answer on success.
    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> Result<T, DispatchError> {
        let response = self.send(method.clone(), path, bearer, body).await?;
        response.json().await.map_err(|e| DispatchError::Retryable {
            message: format!("GitHub {method} {path}: unreadable answer ({e})"),
            retry_after: None,
        })
    }

    /// One call to the API; an answer that is not a success becomes the error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, DispatchError> {
        let what = format!("GitHub {method} {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.config.api_url))
            .bearer_auth(bearer)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| unreachable(&what, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let failure = Failure::read(response, &[bearer]).await;
        Err(failure.into_dispatch_error(&what, Utc::now(), |status| advice(status, path)))
    }
}

/// Where the App's installation for `repo` is read: the configured one, else the repository's.
fn installation_path(app: &App, repo: Option<&RepoName>) -> Option<String> {
    match (app.installation, repo) {
        (Some(id), _) => Some(format!("/app/installations/{id}")),
        (None, Some(repo)) => Some(format!("/repos/{}/installation", repo.as_str())),
        (None, None) => None,
    }
}

/// The first permission of [`NEEDED`] that `granted` does not give as `write`: its name as
/// GitHub's settings show it, and what needs it.
fn lacking<'a>(granted: impl Fn(&str) -> Option<&'a str>) -> Option<(&'static str, &'static str)> {
    NEEDED
        .into_iter()
        .find(|(key, _, _)| granted(key) != Some("write"))
        .map(|(_, name, why)| (name, why))
}

fn permanent(message: String) -> DispatchError {
    DispatchError::Permanent { message }
}

/// `error`, saying what was being done.
fn within(what: &str, error: DispatchError) -> DispatchError {
    match error {
        DispatchError::Permanent { message } => DispatchError::Permanent {
            message: format!("{what}: {message}"),
        },
        DispatchError::Retryable {
            message,
            retry_after,
        } => DispatchError::Retryable {
            message: format!("{what}: {message}"),
            retry_after,
        },
    }
}

/// What to fix after GitHub refused a request for good.
fn advice(status: StatusCode, path: &str) -> String {
    match status.as_u16() {
        401 => "GitHub does not accept the credentials: renew the token, or check the App's id \
                and private key"
            .into(),
        403 => "the credentials lack a permission: the token or the App's installation needs \
                Contents: write (and Actions: write to cancel runs) on the runner repository"
            .into(),
        404 if path.ends_with("/installation") => {
            "the GitHub App is not installed on this repository: install it there".into()
        }
        404 if path.starts_with("/app/installations/") => {
            "the GitHub App's installation does not exist (it was removed, or \
             github_app_installation_id / PJ_GITHUB_APP_INSTALLATION_ID is wrong): install the \
             App on the repository again and fix or clear the installation id"
                .into()
        }
        404 => "the repository does not exist or the credentials cannot see it: check \
                PJ_GITHUB_RUNNER_REPO (or the task's repository) and give the token or the App \
                access to it"
            .into(),
        422 => "GitHub refused the request's content: check that the workflow \
                infra/github-actions/pithy-jaunt.yml is on the default branch"
            .into(),
        _ => "see GitHub's message".into(),
    }
}

/// A JWT that authenticates as the App (for ten minutes at most, by GitHub's rule).
fn app_jwt(app: &App) -> Result<String, String> {
    let now = Utc::now().timestamp();
    let claims = json!({"iat": now - 60, "exp": now + 540, "iss": app.id});
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &app.key)
        .map_err(|_| "could not sign the GitHub App's JWT with its private key".to_owned())
}

/// The run-name the workflow gives the attempt's run.
pub fn run_name(task: &TaskId, attempt: Attempt) -> String {
    format!("pithy-jaunt {task} attempt {attempt}")
}

/// The runner environment of the payload: everything but the withheld variables.
pub fn payload(job: &RunnerJob) -> Value {
    let pj: serde_json::Map<String, Value> = job
        .env
        .iter()
        .filter(|(name, _)| !WITHHELD.contains(name))
        .map(|(name, value)| (name.to_owned(), Value::String(value.expose().to_owned())))
        .collect();
    json!({"event_type": EVENT_TYPE, "client_payload": {"pj": pj}})
}

#[async_trait]
impl Runner for GithubActionsRunner {
    fn kind(&self) -> RunnerKind {
        RunnerKind::GithubActions
    }

    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError> {
        let repo = self.runner_repo(job)?;
        let token = self.bearer(&repo).await?;
        self.send(
            Method::POST,
            &format!("/repos/{}/dispatches", repo.as_str()),
            token.expose_secret(),
            Some(&payload(job)),
        )
        .await?;
        tracing::info!(task_id = %job.task_id, attempt = %job.attempt, repo = repo.as_str(), "workflow dispatched");
        Ok(repo.as_str().to_owned())
    }

    /// Cancels the attempt's run, found by its run-name among the repository's recent
    /// `repository_dispatch` runs. A run not found (ended, or not queued yet) is left alone.
    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        // Without a recorded repository (the start's answer was lost) the configured one is
        // the only place the run can be.
        let repo = runner_ref
            .and_then(|r| RepoName::parse(r).ok())
            .or_else(|| self.config.runner_repo.clone());
        let Some(repo) = repo else {
            tracing::warn!(task_id = %task, %attempt, "no runner repository recorded; nothing to cancel");
            return Ok(());
        };
        let token = self.bearer(&repo).await?;
        let runs: Runs = self
            .call_json(
                Method::GET,
                &format!(
                    "/repos/{}/actions/runs?event=repository_dispatch&per_page=100",
                    repo.as_str()
                ),
                token.expose_secret(),
                None,
            )
            .await?;
        let name = run_name(task, attempt);
        let open = |s: &str| !matches!(s, "completed" | "cancelled" | "failure" | "success");
        let mine: Vec<&Run> = runs
            .workflow_runs
            .iter()
            .filter(|r| r.display_title == name && open(&r.status))
            .collect();
        if mine.is_empty() {
            tracing::info!(task_id = %task, %attempt, repo = repo.as_str(), "no open workflow run to cancel");
        }
        for run in mine {
            let path = format!("/repos/{}/actions/runs/{}/cancel", repo.as_str(), run.id);
            match self
                .send(Method::POST, &path, token.expose_secret(), None)
                .await
            {
                Ok(_) => {
                    tracing::info!(task_id = %task, %attempt, run_id = run.id, "workflow run cancelled")
                }
                // 409: the run ended meanwhile.
                Err(DispatchError::Permanent { message }) if message.contains("(409)") => {
                    tracing::info!(task_id = %task, %attempt, run_id = run.id, "workflow run already ended")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_host(api: &str) -> Option<String> {
        GithubConfig::from_lookup(|k| (k == "GITHUB_API_URL").then(|| api.to_owned()))
            .unwrap()
            .web_host()
    }

    #[test]
    fn the_web_host_should_follow_the_api_url() {
        assert_eq!(
            web_host("https://api.github.com").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            web_host("https://ghe.example.com/api/v3").as_deref(),
            Some("ghe.example.com")
        );
        assert_eq!(
            web_host("https://api.acme.ghe.com").as_deref(),
            Some("acme.ghe.com")
        );
    }

    #[test]
    fn the_app_jwt_should_be_issued_in_the_past_and_live_under_ten_minutes() {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/rsa-test-key.pem"
        ))
        .unwrap();
        let app = App {
            id: "77".into(),
            key: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            installation: None,
        };
        let jwt = app_jwt(&app).unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        let now = Utc::now().timestamp();
        let iat = claims["iat"].as_i64().unwrap();
        let exp = claims["exp"].as_i64().unwrap();
        assert_eq!(claims["iss"], "77");
        assert!(iat <= now - 59 && iat >= now - 61, "{claims}");
        assert!(exp > now && exp - now <= 600, "{claims}");
    }
}
