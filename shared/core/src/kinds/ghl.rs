//! `ghl_action`: one GoHighLevel API v2 call, and the SMS channel of outbound messages.
//!
//! Every request carries `Authorization: Bearer <key>` (a Private Integration token) and
//! `Version: 2021-07-28`, with GoHighLevel's own camelCase names in the JSON body.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::kinds::api_call::{failure_of, is_retryable_status, result_of, scrub};
use crate::kinds::config::{ContactFields, GhlAction, GhlConfig};
use crate::kinds::run::{AttemptLog, StepTimer, automatic_retry_delay, invalid_config};
use crate::machine::KindOutcome;
use crate::outbound::{HeaderValue, HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::task::{Task, TaskError, codes};

/// The API version every request names.
pub const API_VERSION: &str = "2021-07-28";
pub const DEFAULT_API_URL: &str = "https://services.leadconnectorhq.com";
/// The name of the API key among the deployment's secrets (`GHL_API_KEY`; on AWS the secret's
/// `ghl_api_key`).
pub const API_KEY_SECRET: &str = "ghl_api_key";
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The deployment's GoHighLevel settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhlSettings {
    /// `GHL_API_URL`.
    pub api_url: String,
    /// `GHL_LOCATION_ID`.
    pub location_id: Option<String>,
}

impl Default for GhlSettings {
    fn default() -> Self {
        GhlSettings {
            api_url: DEFAULT_API_URL.into(),
            location_id: None,
        }
    }
}

/// Method, path and body of an action.
pub fn request_parts(
    action: &GhlAction,
    location_id: Option<&str>,
) -> (&'static str, String, Value) {
    match action {
        GhlAction::AddContact { contact } => {
            let mut body = contact_body(contact);
            if let Some(location) = location_id {
                body.insert("locationId".into(), location.into());
            }
            ("POST", "/contacts/".into(), Value::Object(body))
        }
        GhlAction::UpdateContact {
            contact_id,
            contact,
        } => (
            "PUT",
            format!("/contacts/{contact_id}"),
            Value::Object(contact_body(contact)),
        ),
        GhlAction::AddTag { contact_id, tags } => (
            "POST",
            format!("/contacts/{contact_id}/tags"),
            json!({"tags": tags}),
        ),
        GhlAction::SendSms {
            contact_id,
            message,
        } => sms_parts(contact_id, message),
        GhlAction::CreateOpportunity {
            pipeline_id,
            stage_id,
            name,
            contact_id,
            monetary_value,
        } => {
            let mut body = json!({
                "pipelineId": pipeline_id,
                "pipelineStageId": stage_id,
                "name": name,
                "status": "open",
                "contactId": contact_id,
            });
            if let Some(location) = location_id {
                body["locationId"] = location.into();
            }
            if let Some(value) = monetary_value {
                body["monetaryValue"] = json!(value);
            }
            ("POST", "/opportunities/".into(), body)
        }
    }
}

fn sms_parts(contact_id: &str, message: &str) -> (&'static str, String, Value) {
    (
        "POST",
        "/conversations/messages".into(),
        json!({"type": "SMS", "contactId": contact_id, "message": message}),
    )
}

fn contact_body(contact: &ContactFields) -> Map<String, Value> {
    let mut body = Map::new();
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            body.insert(name.into(), v.as_str().into());
        }
    };
    put("firstName", &contact.first_name);
    put("lastName", &contact.last_name);
    put("email", &contact.email);
    put("phone", &contact.phone);
    if let Some(tags) = &contact.tags {
        body.insert("tags".into(), json!(tags));
    }
    body
}

/// A request to the API.
pub fn request(
    settings: &GhlSettings,
    key: &SecretString,
    method: &str,
    path: &str,
    body: &Value,
) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        url: format!("{}{path}", settings.api_url.trim_end_matches('/')),
        headers: vec![
            (
                "Authorization".into(),
                HeaderValue::Secret(SecretString::from(format!(
                    "Bearer {}",
                    key.expose_secret()
                ))),
            ),
            ("Version".into(), HeaderValue::Plain(API_VERSION.into())),
            (
                "Accept".into(),
                HeaderValue::Plain("application/json".into()),
            ),
            (
                "Content-Type".into(),
                HeaderValue::Plain("application/json".into()),
            ),
        ],
        body: Some(serde_json::to_vec(body).unwrap_or_default()),
        timeout: TIMEOUT,
        max_body_bytes: MAX_ANSWER_BYTES,
        follow_redirects: false,
    }
}

/// Sends an SMS to a contact (the `sms` channel).
pub async fn send_sms(
    settings: &GhlSettings,
    key: &SecretString,
    http: &dyn HttpClient,
    contact_id: &str,
    message: &str,
) -> Result<HttpResponse, HttpError> {
    let (method, path, body) = sms_parts(contact_id, message);
    http.send(&request(settings, key, method, &path, &body))
        .await
}

pub(crate) async fn run(
    config: &GhlConfig,
    task: &Task,
    settings: &GhlSettings,
    key: Option<&SecretString>,
    http: &dyn HttpClient,
    log: &mut AttemptLog,
) -> KindOutcome {
    let Some(key) = key else {
        return invalid_config("GoHighLevel is not configured here: GHL_API_KEY is not set");
    };
    let location = config
        .location_id
        .as_deref()
        .or(settings.location_id.as_deref());
    if config.action.needs_location() && location.is_none() {
        return invalid_config("no location_id, and GHL_LOCATION_ID is not set");
    }
    let (method, path, body) = request_parts(&config.action, location);
    let action = config.action.name();
    log.system(format!("→ GoHighLevel {action}: {method} {path}"));
    log.flush().await;
    let step = StepTimer::start("ghl_request");
    let answer = http
        .send(&request(settings, key, method, &path, &body))
        .await;
    let ms = step.ms();
    match answer {
        Ok(response) => {
            let status = response.status;
            log.system(format!("← {status} in {ms} ms"));
            let answer = scrub(
                result_of(&response, ms)["body"].clone(),
                &[key.expose_secret().to_owned()],
            );
            let summary = format!("GoHighLevel {action} → {status} in {ms} ms");
            let steps = vec![step.ok(Some(json!({"status": status})))];
            if (200..300).contains(&status) {
                return KindOutcome {
                    result: Some(answer),
                    summary: Some(summary),
                    steps,
                    ..KindOutcome::default()
                };
            }
            let message = match answer.get("message").and_then(Value::as_str) {
                Some(m) => format!("GoHighLevel answered {status}: {m}"),
                None => format!("GoHighLevel answered {status}"),
            };
            KindOutcome {
                result: Some(answer),
                summary: Some(summary),
                steps,
                retry_after: is_retryable_status(status)
                    .then(|| automatic_retry_delay(task, response.retry_after())),
                error: Some(TaskError::new(codes::HTTP_ERROR, message)),
                usage: None,
            }
        }
        Err(e) => {
            let (code, retryable) = failure_of(&e);
            let message = format!("GoHighLevel could not be reached: {e}");
            log.system(format!("✗ {message}"));
            KindOutcome {
                summary: Some(format!("GoHighLevel {action} → {code}")),
                steps: vec![step.failed(message.clone())],
                error: Some(TaskError::new(code, message)),
                retry_after: retryable.then(|| automatic_retry_delay(task, None)),
                ..KindOutcome::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> ContactFields {
        ContactFields {
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            email: Some("ada@example.com".into()),
            phone: None,
            tags: Some(vec!["vip".into()]),
        }
    }

    #[test]
    fn each_action_has_the_documented_path_and_camel_case_body() {
        let (m, p, b) = request_parts(&GhlAction::AddContact { contact: contact() }, Some("loc1"));
        assert_eq!((m, p.as_str()), ("POST", "/contacts/"));
        assert_eq!(
            b,
            json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                   "tags": ["vip"], "locationId": "loc1"})
        );
        let (m, p, _) = request_parts(
            &GhlAction::UpdateContact {
                contact_id: "c1".into(),
                contact: contact(),
            },
            Some("loc1"),
        );
        assert_eq!((m, p.as_str()), ("PUT", "/contacts/c1"));
        let (m, p, b) = request_parts(
            &GhlAction::AddTag {
                contact_id: "c1".into(),
                tags: vec!["a".into()],
            },
            None,
        );
        assert_eq!(
            (m, p.as_str(), b),
            ("POST", "/contacts/c1/tags", json!({"tags": ["a"]}))
        );
        let (m, p, b) = request_parts(
            &GhlAction::SendSms {
                contact_id: "c1".into(),
                message: "hi".into(),
            },
            None,
        );
        assert_eq!(
            (m, p.as_str(), b),
            (
                "POST",
                "/conversations/messages",
                json!({"type": "SMS", "contactId": "c1", "message": "hi"})
            )
        );
        let (m, p, b) = request_parts(
            &GhlAction::CreateOpportunity {
                pipeline_id: "p1".into(),
                stage_id: "s1".into(),
                name: "Deal".into(),
                contact_id: "c1".into(),
                monetary_value: Some(1500.0),
            },
            Some("loc1"),
        );
        assert_eq!((m, p.as_str()), ("POST", "/opportunities/"));
        assert_eq!(
            b,
            json!({"pipelineId": "p1", "pipelineStageId": "s1", "name": "Deal", "status": "open",
                   "contactId": "c1", "locationId": "loc1", "monetaryValue": 1500.0})
        );
    }

    #[test]
    fn every_request_carries_the_bearer_key_and_the_version() {
        let settings = GhlSettings::default();
        let r = request(
            &settings,
            &SecretString::from("pit-key".to_owned()),
            "POST",
            "/contacts/",
            &json!({}),
        );
        assert_eq!(r.url, "https://services.leadconnectorhq.com/contacts/");
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(h, _)| h == n)
                .map(|(_, v)| v.expose().to_owned())
        };
        assert_eq!(header("Authorization").as_deref(), Some("Bearer pit-key"));
        assert_eq!(header("Version").as_deref(), Some(API_VERSION));
        assert!(!format!("{r:?}").contains("pit-key"));
    }
}
