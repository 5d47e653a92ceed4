//! Pull requests through the GitHub REST API: one per task branch, updated by a retry.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::config::GithubRepo;
use super::log::Log;
use pj_llm::error_chain;
use pj_llm::retry::{backoff, is_retryable, retry_after};

const API_VERSION: &str = "2022-11-28";
const TRIES: u32 = 4;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the pull request says.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub draft: bool,
}

/// Why no pull request could be opened or updated.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GithubError(pub String);

#[derive(Debug, Deserialize)]
struct PullWire {
    number: u64,
    html_url: String,
    #[serde(default)]
    draft: bool,
}

#[derive(Serialize)]
struct CreateWire<'a> {
    title: &'a str,
    head: &'a str,
    base: &'a str,
    body: &'a str,
    draft: bool,
}

#[derive(Serialize)]
struct UpdateWire<'a> {
    title: &'a str,
    body: &'a str,
}

/// The GitHub REST API for one repository.
pub struct Github {
    http: reqwest::Client,
    api: Url,
    repo: GithubRepo,
    token: Option<SecretString>,
}

enum Answer {
    Ok(serde_json::Value),
    Status(StatusCode, String),
}

impl Github {
    pub fn new(
        http: reqwest::Client,
        api: Url,
        repo: GithubRepo,
        token: Option<SecretString>,
    ) -> Self {
        Github {
            http,
            api,
            repo,
            token,
        }
    }

    /// Opens the pull request, or updates the open one of the same branch (a retry of the task).
    /// Returns its web address.
    pub async fn open_or_update(&self, pr: &PullRequest, log: &Log) -> Result<String, GithubError> {
        if let Some(existing) = self.find_open(&pr.head, log).await? {
            return self.update(existing, pr, log).await;
        }
        let mut draft = pr.draft;
        loop {
            let body = CreateWire {
                title: &pr.title,
                head: &pr.head,
                base: &pr.base,
                body: &pr.body,
                draft,
            };
            let body = serde_json::to_value(&body)
                .map_err(|e| GithubError(format!("could not encode the pull request: {e}")))?;
            match self
                .call(Method::POST, &self.pulls_path(), None, Some(&body), log)
                .await?
            {
                Answer::Ok(value) => {
                    let created: PullWire = serde_json::from_value(value).map_err(|e| {
                        GithubError(format!("GitHub's answer to the new pull request: {e}"))
                    })?;
                    log.system(format!("opened pull request #{}", created.number));
                    return Ok(created.html_url);
                }
                Answer::Status(StatusCode::UNPROCESSABLE_ENTITY, message)
                    if message.contains("already exists") =>
                {
                    // Made by a run that got no further than this, or by a race with one.
                    let existing = self.find_open(&pr.head, log).await?.ok_or_else(|| {
                        GithubError(format!(
                            "GitHub says a pull request exists but none is open for {}: {message}",
                            pr.head
                        ))
                    })?;
                    return self.update(existing, pr, log).await;
                }
                Answer::Status(StatusCode::UNPROCESSABLE_ENTITY, message)
                    if draft && message.to_ascii_lowercase().contains("draft") =>
                {
                    log.system("draft pull requests are not available here; opening a ready one");
                    draft = false;
                }
                Answer::Status(status, message) => {
                    return Err(GithubError(format!(
                        "GitHub refused the pull request (HTTP {}): {message}",
                        status.as_u16()
                    )));
                }
            }
        }
    }

    fn pulls_path(&self) -> String {
        format!("repos/{}/{}/pulls", self.repo.owner, self.repo.name)
    }

    async fn find_open(&self, branch: &str, log: &Log) -> Result<Option<PullWire>, GithubError> {
        let head = format!("{}:{branch}", self.repo.owner);
        let query = [("head", head.as_str()), ("state", "open")];
        match self
            .call(Method::GET, &self.pulls_path(), Some(&query), None, log)
            .await?
        {
            Answer::Ok(value) => {
                let list: Vec<PullWire> = serde_json::from_value(value)
                    .map_err(|e| GithubError(format!("GitHub's list of pull requests: {e}")))?;
                Ok(list.into_iter().next())
            }
            Answer::Status(status, message) => Err(GithubError(format!(
                "could not look up pull requests (HTTP {}): {message}",
                status.as_u16()
            ))),
        }
    }

    async fn update(
        &self,
        existing: PullWire,
        pr: &PullRequest,
        log: &Log,
    ) -> Result<String, GithubError> {
        let body = serde_json::to_value(UpdateWire {
            title: &pr.title,
            body: &pr.body,
        })
        .map_err(|e| GithubError(format!("could not encode the pull request: {e}")))?;
        let path = format!("{}/{}", self.pulls_path(), existing.number);
        match self
            .call(Method::PATCH, &path, None, Some(&body), log)
            .await?
        {
            Answer::Ok(_) => {
                log.system(format!("updated pull request #{}", existing.number));
                if pr.draft && !existing.draft {
                    // The REST API cannot turn an open pull request back into a draft.
                    log.system(
                        "the pull request stays ready for review; its text says it needs review",
                    );
                }
                Ok(existing.html_url)
            }
            Answer::Status(status, message) => Err(GithubError(format!(
                "GitHub refused to update pull request #{} (HTTP {}): {message}",
                existing.number,
                status.as_u16()
            ))),
        }
    }

    /// One API call, tried again on network errors, 429 and 5xx.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: Option<&[(&str, &str)]>,
        body: Option<&serde_json::Value>,
        log: &Log,
    ) -> Result<Answer, GithubError> {
        let base = self.api.as_str().trim_end_matches('/');
        let url = format!("{base}/{path}");
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .timeout(REQUEST_TIMEOUT)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", API_VERSION);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose_secret());
            }
            if let Some(query) = query {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let (detail, asked) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let asked = retry_after(response.headers(), Utc::now());
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        let value = serde_json::from_str(&text).map_err(|e| {
                            GithubError(format!("GitHub's answer is not JSON: {e}"))
                        })?;
                        return Ok(Answer::Ok(value));
                    }
                    let message = github_message(&text);
                    if !is_retryable(status) {
                        return Ok(Answer::Status(status, message));
                    }
                    (format!("HTTP {}: {message}", status.as_u16()), asked)
                }
                Err(e) => (error_chain(&e), None),
            };
            if tries >= TRIES {
                return Err(GithubError(format!(
                    "GitHub did not answer {method} {path}: {detail}"
                )));
            }
            let wait = asked.unwrap_or_else(|| {
                backoff(tries - 1, Duration::from_secs(1), Duration::from_secs(8))
            });
            log.system(format!(
                "GitHub {method} {path} failed ({detail}); trying again in {} s",
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
        }
    }
}

/// GitHub's `message` and the `errors[].message` details, as one line.
fn github_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.chars().take(300).collect();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = value.get("message").and_then(|m| m.as_str()) {
        parts.push(m.to_owned());
    }
    if let Some(errors) = value.get("errors").and_then(|e| e.as_array()) {
        for e in errors {
            if let Some(m) = e.get("message").and_then(|m| m.as_str()) {
                parts.push(m.to_owned());
            }
        }
    }
    let text = parts.join(": ");
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_errors_read_as_one_line() {
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest",
            "code":"custom","message":"A pull request already exists for o:pj/x."}],
            "documentation_url":"https://docs.github.com/rest"}"#;
        assert_eq!(
            github_message(body),
            "Validation Failed: A pull request already exists for o:pj/x."
        );
    }
}
