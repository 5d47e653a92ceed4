//! The users' HTTP API of a deployment ([docs/http-api.md](../../../docs/http-api.md)), as the
//! client calls it: one bearer token, JSON in and out, every refusal read into one error.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

/// Why a call to the API did not give an answer to use. Never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error (`{"error": {"code", "message", "field"}}`).
    #[error("{message}{}", field.as_ref().map(|f| format!(" (field: {f})")).unwrap_or_default())]
    Refused {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// No answer: the connection failed or timed out.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// An answer that is not what the API documents.
    #[error("{0}")]
    Unexpected(String),
}

/// A deployment's API and the token to call it with.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    stream_base: Url,
    token: Option<SecretString>,
}

/// Reads a base URL, with a message naming where it came from.
fn base_url(value: &str, name: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{name}: not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("{name}: must be an http:// or https:// URL"));
    }
    Ok(url)
}

impl Api {
    /// `url` is the API's base (`PJ_URL`), `stream_url` where `GET /tasks/{id}/logs/stream` is
    /// served when elsewhere (the AWS deployment's `LogStreamUrl`). An error is a usage error.
    pub fn new(
        url: &str,
        stream_url: Option<&str>,
        token: Option<SecretString>,
    ) -> Result<Api, String> {
        let base = base_url(url, "--url / PJ_URL")?;
        let stream_base = match stream_url {
            Some(s) => base_url(s, "--stream-url / PJ_STREAM_URL")?,
            None => base.clone(),
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("pj/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Api {
            http,
            base,
            stream_base,
            token,
        })
    }

    /// `base` with `segments` appended, each one percent-encoded as one path segment.
    fn url(base: &Url, segments: &[&str]) -> Url {
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// Sends a request and reads a refusal into [`ApiError::Refused`].
    async fn send(&self, request: RequestBuilder) -> Result<Response, ApiError> {
        let request = request.build().map_err(|e| unexpected(&e))?;
        let url = without_query(request.url());
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| unreachable(&url, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(response).await)
    }

    /// `GET` of a JSON document; `query` pairs whose value is `None` are left out.
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, Option<String>)],
    ) -> Result<Value, ApiError> {
        let mut url = Api::url(&self.base, segments);
        for (name, value) in query {
            if let Some(value) = value {
                url.query_pairs_mut().append_pair(name, value);
            }
        }
        let request = self
            .request(Method::GET, url)
            .timeout(Duration::from_secs(60));
        json(self.send(request).await?).await
    }

    /// `POST` with a JSON body, or none.
    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> Result<Value, ApiError> {
        let mut request = self
            .request(Method::POST, Api::url(&self.base, segments))
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            request = request.json(body);
        }
        json(self.send(request).await?).await
    }

    /// `GET` of raw bytes (an artifact), the response to read in chunks.
    pub async fn download(&self, segments: &[&str]) -> Result<Response, ApiError> {
        let request = self
            .request(Method::GET, Api::url(&self.base, segments))
            .timeout(Duration::from_secs(300));
        self.send(request).await
    }

    /// Opens `GET /tasks/{id}/logs/stream`, resuming after `last_event_id` when given. No overall
    /// timeout: the caller bounds each read instead (the server sends a comment every 15 s).
    pub async fn stream(
        &self,
        task_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<Response, ApiError> {
        let url = Api::url(&self.stream_base, &["tasks", task_id, "logs", "stream"]);
        let mut request = self
            .request(Method::GET, url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        self.send(request).await
    }
}

/// A URL as it may be shown: without its query (a cursor is noise in a message).
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which says
/// more than reqwest's outer "error sending request".
pub fn unreachable(url: &str, error: &reqwest::Error) -> ApiError {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let reason = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        cause.to_string()
    };
    ApiError::Unreachable {
        url: url.to_owned(),
        reason,
    }
}

fn unexpected(error: &dyn std::error::Error) -> ApiError {
    ApiError::Unexpected(format!("unexpected answer: {error}"))
}

async fn json(response: Response) -> Result<Value, ApiError> {
    let url = without_query(response.url());
    let bytes = response.bytes().await.map_err(|e| unreachable(&url, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::Unexpected(format!("{url} answered something that is not JSON: {e}"))
    })
}

/// Reads the contract's error shape; anything else (a proxy's page, API Gateway's own
/// `{"message": "Unauthorized"}`) is said with its status.
async fn refusal(response: Response) -> ApiError {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["error"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match (text(&error["code"]), text(&error["message"])) {
        (Some(code), Some(message)) => ApiError::Refused {
            status: status.as_u16(),
            code,
            message,
            field: text(&error["field"]),
        },
        _ => ApiError::Refused {
            status: status.as_u16(),
            code: status.as_str().to_owned(),
            message: text(&body["message"]).unwrap_or_else(|| format!("the API answered {status}")),
            field: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_field_and_never_a_token() {
        let error = ApiError::Refused {
            status: 400,
            code: "validation_failed".into(),
            message: "repo_url: is required".into(),
            field: Some("repo_url".into()),
        };
        assert_eq!(error.to_string(), "repo_url: is required (field: repo_url)");
    }

    #[test]
    fn ids_are_one_path_segment_each() {
        let base = Url::parse("https://api.example.com/prod/").unwrap();
        let url = Api::url(&base, &["tasks", "../x?y", "logs"]);
        assert_eq!(
            url.as_str(),
            "https://api.example.com/prod/tasks/..%2Fx%3Fy/logs"
        );
    }

    #[test]
    fn a_shown_url_has_no_credentials_or_query() {
        let url = Url::parse("https://u:p@api.example.com/tasks?cursor=abc").unwrap();
        assert_eq!(without_query(&url), "https://api.example.com/tasks");
    }
}
