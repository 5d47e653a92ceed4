//! Browserbase: a browser in someone else's cloud, reached over the same DevTools protocol.
//!
//! `POST /v1/sessions` `{"projectId"}` answers the session's `id` and `connectUrl` (its DevTools
//! websocket); `GET /v1/sessions/{id}/debug` answers `debuggerFullscreenUrl`, the live view a
//! task shows as its `debug_url`; `POST /v1/sessions/{id}` `{"projectId", "status":
//! "REQUEST_RELEASE"}` ends it. Every request carries `X-BB-API-Key`. A session is billed while
//! it runs, so [`BrowserbaseSession`] releases it on every way out: `close`, or when dropped
//! (a failed or cancelled task) by a release sent in the background.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::{BrowserError, BrowserSession, SessionOptions};

/// Where Browserbase is and who we are there.
#[derive(Clone)]
pub struct BrowserbaseConfig {
    /// `BROWSERBASE_API_URL`, default `https://api.browserbase.com`.
    pub api_url: url::Url,
    /// `BROWSERBASE_API_KEY`.
    pub api_key: SecretString,
    /// `BROWSERBASE_PROJECT_ID`.
    pub project_id: String,
}

impl std::fmt::Debug for BrowserbaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserbaseConfig")
            .field("api_url", &self.api_url.as_str())
            .field("api_key", &"***")
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// The default `BROWSERBASE_API_URL`.
pub const DEFAULT_API_URL: &str = "https://api.browserbase.com";

/// A client of Browserbase's sessions API.
#[derive(Debug, Clone)]
pub struct Browserbase {
    http: reqwest::Client,
    config: BrowserbaseConfig,
}

/// A session Browserbase created, before anyone connected to it.
#[derive(Clone)]
pub struct CreatedSession {
    /// The session's id.
    pub id: String,
    /// The DevTools websocket. It may carry a signing key, so it is kept out of `Debug`.
    pub connect_url: SecretString,
}

impl std::fmt::Debug for CreatedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedSession")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAnswer {
    id: String,
    connect_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DebugAnswer {
    debugger_fullscreen_url: String,
}

impl Browserbase {
    /// A client; requests time out after 30 s.
    pub fn new(config: BrowserbaseConfig) -> Result<Self, BrowserError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BrowserError::Browserbase(format!("no HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    fn endpoint(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.api_url.as_str().trim_end_matches('/')
        )
    }

    /// `POST /v1/sessions`.
    pub async fn create_session(&self) -> Result<CreatedSession, BrowserError> {
        let answer: CreateAnswer = self
            .call(
                "creating a session",
                self.http
                    .post(self.endpoint("/v1/sessions"))
                    .json(&json!({ "projectId": self.config.project_id })),
            )
            .await?;
        Ok(CreatedSession {
            id: answer.id,
            connect_url: SecretString::from(answer.connect_url),
        })
    }

    /// `GET /v1/sessions/{id}/debug` → `debuggerFullscreenUrl`.
    pub async fn debug_url(&self, id: &str) -> Result<String, BrowserError> {
        let answer: DebugAnswer = self
            .call(
                "reading the session's debug URL",
                self.http
                    .get(self.endpoint(&format!("/v1/sessions/{}/debug", path_segment(id)))),
            )
            .await?;
        Ok(answer.debugger_fullscreen_url)
    }

    /// `POST /v1/sessions/{id}` `{"projectId", "status": "REQUEST_RELEASE"}`.
    pub async fn release(&self, id: &str) -> Result<(), BrowserError> {
        let _: serde_json::Value = self
            .call(
                "releasing the session",
                self.http
                    .post(self.endpoint(&format!("/v1/sessions/{}", path_segment(id))))
                    .json(&json!({ "projectId": self.config.project_id, "status": "REQUEST_RELEASE" })),
            )
            .await?;
        Ok(())
    }

    /// Creates a session, reads its debug URL and connects to it. When anything after the
    /// creation fails, the session is released before the error is returned.
    pub async fn open(&self, options: SessionOptions) -> Result<BrowserbaseSession, BrowserError> {
        let created = self.create_session().await?;
        let id = created.id.clone();
        let opened = async {
            let debug_url = self.debug_url(&id).await?;
            let session =
                BrowserSession::connect(created.connect_url.expose_secret(), options).await?;
            Ok::<_, BrowserError>((debug_url, session))
        };
        match opened.await {
            Ok((debug_url, session)) => Ok(BrowserbaseSession {
                session: Some(session),
                client: self.clone(),
                id,
                debug_url,
                released: false,
            }),
            Err(e) => {
                if let Err(release) = self.release(&id).await {
                    tracing::warn!(session_id = %id, error = %release, "a Browserbase session could not be released");
                }
                Err(e)
            }
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, BrowserError> {
        // reqwest's errors name the URL and never the headers, so the key cannot leak through
        // them; the answer's body is cut, since an error page may be long.
        let response = request
            .header("X-BB-API-Key", self.config.api_key.expose_secret())
            .send()
            .await
            .map_err(|e| BrowserError::Browserbase(format!("{what}: {}", e.without_url())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| BrowserError::Browserbase(format!("{what}: {}", e.without_url())))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            let text = text.replace(self.config.api_key.expose_secret(), "***");
            return Err(BrowserError::Browserbase(format!(
                "{what}: HTTP {status}: {text}"
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| BrowserError::Browserbase(format!("{what}: unexpected answer: {e}")))
    }
}

/// A session id goes into a path; anything but the characters ids are made of is escaped.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A browser session in Browserbase, released when it ends.
pub struct BrowserbaseSession {
    session: Option<BrowserSession>,
    client: Browserbase,
    id: String,
    debug_url: String,
    released: bool,
}

impl BrowserbaseSession {
    /// The Browserbase session id (the task's `session_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The live view (the task's `debug_url`).
    pub fn debug_url(&self) -> &str {
        &self.debug_url
    }

    /// The browser session to run steps in.
    pub fn session(&self) -> &BrowserSession {
        // Taken only by `close` and `drop`, which consume or end `self`.
        self.session
            .as_ref()
            .expect("the session is open until close")
    }

    /// Closes the page and releases the Browserbase session.
    pub async fn close(mut self) -> Result<(), BrowserError> {
        if let Some(session) = self.session.take() {
            session.close().await;
        }
        self.released = true;
        self.client.release(&self.id).await
    }
}

impl Drop for BrowserbaseSession {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Dropped without `close`: a failed step's early return or a cancelled task. The release
        // cannot be awaited here, so it is sent in the background when a runtime is there to
        // send it (Browserbase also ends the session at its own timeout).
        drop(self.session.take());
        let (client, id) = (self.client.clone(), self.id.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = client.release(&id).await {
                        tracing::warn!(session_id = %id, error = %e, "a Browserbase session could not be released");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(session_id = %id, "a Browserbase session was dropped outside a runtime and not released")
            }
        }
    }
}
