//! `api_call`: one HTTP request through the address guard.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::kinds::config::{ApiCallConfig, Auth, Body, HeaderField};
use crate::kinds::run::{AttemptLog, StepTimer, automatic_retry_delay, invalid_config};
use crate::kinds::sealed::{OpenError, Sealer};
use crate::machine::KindOutcome;
use crate::outbound::{HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::task::{Task, TaskError, codes};

/// The most of a response body a result keeps.
pub const MAX_RESULT_BODY_BYTES: usize = 256 * 1024;

/// Whether an HTTP status may pass on another try.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// The error code of a request that got no answer, and whether it may pass: a refused address
/// is the config's fault; a timeout or a broken connection may pass.
pub fn failure_of(error: &HttpError) -> (&'static str, bool) {
    match error {
        HttpError::Refused(_) => (codes::INVALID_CONFIG, false),
        HttpError::Timeout(_) => (codes::TIMEOUT, true),
        HttpError::Network(_) => (codes::NETWORK_ERROR, true),
    }
}

/// A URL as logs and summaries show it: without its query, which may carry a key.
pub fn loggable_url(url: &str) -> String {
    match url.split_once(['?', '#']) {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

pub(crate) async fn run(
    config: &ApiCallConfig,
    task: &Task,
    sealer: &Sealer,
    http: &dyn HttpClient,
    log: &mut AttemptLog,
) -> KindOutcome {
    let request = match request(config, task, sealer) {
        Ok(r) => r,
        Err(e) => return invalid_config(e.to_string()),
    };
    let credentials = credential_values(&request);
    let shown = format!("{} {}", config.method, loggable_url(&config.url));
    log.system(format!("→ {shown}"));
    log.flush().await;
    let step = StepTimer::start("request");
    let answer = http.send(&request).await;
    let ms = step.ms();
    match answer {
        Ok(response) => {
            // A target may echo what it was sent (its headers among it): the credentials of
            // the request never reach the stored result.
            let result = scrub(result_of(&response, ms), &credentials);
            let status = response.status;
            log.system(format!(
                "← {status} in {ms} ms{}",
                if response.truncated {
                    " (body cut at 256 KiB)"
                } else {
                    ""
                }
            ));
            let summary = format!("{shown} → {status} in {ms} ms");
            let steps = vec![step.ok(Some(json!({"status": status})))];
            if (200..300).contains(&status) {
                return KindOutcome {
                    result: Some(result),
                    summary: Some(summary),
                    steps,
                    ..KindOutcome::default()
                };
            }
            let error = TaskError::new(codes::HTTP_ERROR, format!("the API answered {status}"));
            let retry_after = is_retryable_status(status)
                .then(|| automatic_retry_delay(task, response.retry_after()));
            KindOutcome {
                result: Some(result),
                summary: Some(summary),
                steps,
                error: Some(error),
                retry_after,
                usage: None,
            }
        }
        Err(e) => {
            let (code, retryable) = failure_of(&e);
            let message = match &e {
                HttpError::Refused(why) => format!("the request was refused: {why}"),
                other => other.to_string(),
            };
            log.system(format!("✗ {message}"));
            KindOutcome {
                summary: Some(format!("{shown} → {code}")),
                steps: vec![step.failed(message.clone())],
                error: Some(TaskError::new(code, message)),
                retry_after: retryable.then(|| automatic_retry_delay(task, None)),
                ..KindOutcome::default()
            }
        }
    }
}

/// The values of the request's secret headers, and their parts (a bearer token without its
/// scheme), as they could come back in an answer.
pub(crate) fn credential_values(request: &HttpRequest) -> Vec<String> {
    let mut values = Vec::new();
    for (_, value) in request.headers.iter().filter(|(_, v)| v.is_secret()) {
        let value = value.expose();
        values.push(value.to_owned());
        if let Some((_, rest)) = value.split_once(' ') {
            values.push(rest.to_owned());
            if let Ok(decoded) = B64.decode(rest)
                && let Ok(pair) = String::from_utf8(decoded)
            {
                values.extend(pair.split_once(':').map(|(_, p)| p.to_owned()));
                values.push(pair);
            }
        }
    }
    values.retain(|v| v.len() >= 6);
    values
}

/// `value` with each of `secrets` replaced wherever it appears in its text.
pub(crate) fn scrub(value: Value, secrets: &[String]) -> Value {
    if secrets.is_empty() {
        return value;
    }
    let text = value.to_string();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    match crate::redact::redact_values(&text, &refs) {
        std::borrow::Cow::Borrowed(_) => value,
        std::borrow::Cow::Owned(clean) => serde_json::from_str(&clean).unwrap_or(Value::Null),
    }
}

/// The request of a config, its credentials opened.
fn request(config: &ApiCallConfig, task: &Task, sealer: &Sealer) -> Result<HttpRequest, OpenError> {
    let open = |c| sealer.open(&task.id, c);
    let mut headers: Vec<(String, HeaderValue)> = Vec::new();
    for header in &config.headers {
        let value = match &header.value {
            HeaderField::Plain(v) => HeaderValue::Plain(v.clone()),
            HeaderField::Credential(c) => HeaderValue::Secret(open(c)?),
        };
        headers.push((header.name.clone(), value));
    }
    match &config.auth {
        Auth::None => {}
        Auth::Bearer { token } => {
            let token = open(token)?;
            headers.push((
                "Authorization".into(),
                HeaderValue::Secret(SecretString::from(format!(
                    "Bearer {}",
                    token.expose_secret()
                ))),
            ));
        }
        Auth::ApiKey { header, value } => {
            headers.push((header.clone(), HeaderValue::Secret(open(value)?)));
        }
        Auth::Basic { username, password } => {
            let password = open(password)?;
            let pair = format!("{username}:{}", password.expose_secret());
            headers.push((
                "Authorization".into(),
                HeaderValue::Secret(SecretString::from(format!("Basic {}", B64.encode(pair)))),
            ));
        }
    }
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let body = match &config.body {
        None => None,
        Some(Body::Json(v)) => {
            if !has("content-type") {
                headers.push((
                    "Content-Type".into(),
                    HeaderValue::Plain("application/json".into()),
                ));
            }
            Some(serde_json::to_vec(v).unwrap_or_default())
        }
        Some(Body::Text(t)) => {
            if !has("content-type") {
                headers.push((
                    "Content-Type".into(),
                    HeaderValue::Plain("text/plain; charset=utf-8".into()),
                ));
            }
            Some(t.as_bytes().to_vec())
        }
    };
    Ok(HttpRequest {
        method: config.method.clone(),
        url: config.url.clone(),
        headers,
        body,
        timeout: Duration::from_secs(u64::from(config.timeout_secs)),
        max_body_bytes: MAX_RESULT_BODY_BYTES,
        follow_redirects: true,
    })
}

/// `{"status", "content_type", "body", "duration_ms"}`: the body parsed when it is whole JSON,
/// else text (cut at 256 KiB).
pub(crate) fn result_of(response: &HttpResponse, duration_ms: u64) -> Value {
    let content_type = response.header("content-type").map(str::to_owned);
    let json_type = content_type.as_deref().is_some_and(|t| t.contains("json"));
    let body = if json_type && !response.truncated {
        serde_json::from_slice::<Value>(&response.body).ok()
    } else {
        None
    }
    .unwrap_or_else(|| Value::from(String::from_utf8_lossy(&response.body).into_owned()));
    json!({
        "status": response.status,
        "content_type": content_type,
        "body": body,
        "duration_ms": duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_that_may_pass_are_408_429_and_5xx() {
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 409, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn credentials_echoed_by_a_target_are_scrubbed_from_the_result() {
        let request = HttpRequest {
            method: "GET".into(),
            url: "https://h/".into(),
            headers: vec![
                (
                    "Authorization".into(),
                    HeaderValue::Secret(SecretString::from(
                        "Basic dXNlcjpodW50ZXIyMg==".to_owned(),
                    )),
                ),
                (
                    "X-Key".into(),
                    HeaderValue::Secret(SecretString::from("key-abcdef".to_owned())),
                ),
                ("X-Trace".into(), HeaderValue::Plain("trace-123456".into())),
            ],
            body: None,
            timeout: Duration::from_secs(1),
            max_body_bytes: 10,
            follow_redirects: false,
        };
        let echoed = json!({"headers": {"authorization": "Basic dXNlcjpodW50ZXIyMg==", "x-key": "key-abcdef",
                                        "x-trace": "trace-123456"}, "password": "hunter22"});
        let clean = scrub(echoed, &credential_values(&request)).to_string();
        for secret in ["dXNlcjpodW50ZXIyMg", "key-abcdef", "hunter22"] {
            assert!(!clean.contains(secret), "{secret} in {clean}");
        }
        assert!(clean.contains("trace-123456"));
    }

    #[test]
    fn a_logged_url_keeps_no_query() {
        assert_eq!(loggable_url("https://h/p?api_key=s3cret"), "https://h/p?…");
        assert_eq!(loggable_url("https://h/p"), "https://h/p");
    }

    fn response(content_type: &str, body: &[u8], truncated: bool) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
            truncated,
            remote_addr: None,
        }
    }

    #[test]
    fn a_json_answer_is_parsed_and_a_cut_or_text_one_is_text() {
        let r = result_of(&response("application/json", br#"{"a":1}"#, false), 5);
        assert_eq!(r["body"], json!({"a": 1}));
        let r = result_of(&response("application/json", br#"{"a":"#, true), 5);
        assert_eq!(r["body"], json!("{\"a\":"));
        let r = result_of(&response("text/plain", b"hello", false), 5);
        assert_eq!(r["body"], json!("hello"));
        assert_eq!(r["status"], json!(200));
        assert_eq!(r["duration_ms"], json!(5));
    }
}
