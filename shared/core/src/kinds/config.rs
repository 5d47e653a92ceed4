//! The `config` of each built-in kind: parsed and checked when the task is created, naming the
//! first wrong field as `config.<field>` (down to list items), stored with its credentials
//! sealed, and shown by the API with them masked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::ids::TaskId;
use crate::kinds::TaskKind;
use crate::kinds::browser;
use crate::kinds::browser::config::{AutomationConfig, BrowserOffer, ExtractionConfig};
use crate::kinds::notify::ChannelSpec;
use crate::kinds::sealed::{Credential, MASK, Sealer};
use crate::time::parse_rfc3339;

/// The most a request `body`, a `message` or a header list may be.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const MAX_MESSAGE_CHARS: usize = 10_000;
pub const MAX_SMS_CHARS: usize = 1_600;
const MAX_HEADERS: usize = 50;
const MAX_HEADER_VALUE: usize = 8 * 1024;
const MAX_URL_LEN: usize = 2_048;
const MAX_TAGS: usize = 50;
const MAX_TEXT_FIELD: usize = 256;
/// A report covers at most this many days.
pub const MAX_REPORT_DAYS: i64 = 366;
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;
pub const MAX_TIMEOUT_SECS: u32 = 300;

/// What a create request's `config` may depend on beside itself.
#[derive(Debug, Clone, Copy)]
pub struct ConfigContext {
    pub now: DateTime<Utc>,
    /// Whether an email without `to` has somewhere to go.
    pub owner_has_email: bool,
    /// Whether `GHL_LOCATION_ID` is configured, so `location_id` may be left out.
    pub ghl_location_configured: bool,
    /// The browsers the deployment offers.
    pub browsers: BrowserOffer,
}

/// The config of a built-in kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindConfig {
    ApiCall(ApiCallConfig),
    GhlAction(GhlConfig),
    Notification(MessageConfig),
    Reminder(ReminderConfig),
    Report(ReportConfig),
    BrowserAutomation(AutomationConfig),
    DataExtraction(ExtractionConfig),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiCallConfig {
    pub url: String,
    pub method: String,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub body: Option<Body>,
    pub auth: Auth,
    pub timeout_secs: u32,
}

/// A request header; the value of one that carries a credential is sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: HeaderField,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderField {
    Plain(String),
    Credential(Credential),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Sent as `application/json`.
    Json(Value),
    /// Sent as `text/plain; charset=utf-8`.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    None,
    Bearer {
        token: Credential,
    },
    ApiKey {
        header: String,
        value: Credential,
    },
    Basic {
        username: String,
        password: Credential,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GhlConfig {
    pub action: GhlAction,
    /// Absent: `GHL_LOCATION_ID`.
    #[serde(default)]
    pub location_id: Option<String>,
}

/// A contact's fields, in our snake_case names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum GhlAction {
    AddContact {
        #[serde(flatten)]
        contact: ContactFields,
    },
    UpdateContact {
        contact_id: String,
        #[serde(flatten)]
        contact: ContactFields,
    },
    AddTag {
        contact_id: String,
        tags: Vec<String>,
    },
    SendSms {
        contact_id: String,
        message: String,
    },
    CreateOpportunity {
        pipeline_id: String,
        stage_id: String,
        name: String,
        contact_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        monetary_value: Option<f64>,
    },
}

impl GhlAction {
    pub fn name(&self) -> &'static str {
        match self {
            GhlAction::AddContact { .. } => "add_contact",
            GhlAction::UpdateContact { .. } => "update_contact",
            GhlAction::AddTag { .. } => "add_tag",
            GhlAction::SendSms { .. } => "send_sms",
            GhlAction::CreateOpportunity { .. } => "create_opportunity",
        }
    }

    /// Whether GoHighLevel needs a `locationId` for it.
    pub fn needs_location(&self) -> bool {
        matches!(
            self,
            GhlAction::AddContact { .. } | GhlAction::CreateOpportunity { .. }
        )
    }
}

/// A `notification`: one message to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageConfig {
    pub channel: ChannelSpec,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderConfig {
    #[serde(flatten)]
    pub message: MessageConfig,
    pub remind_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    TaskSummary,
    ExecutionStats,
    WebhookActivity,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::TaskSummary => "task_summary",
            ReportKind::ExecutionStats => "execution_stats",
            ReportKind::WebhookActivity => "webhook_activity",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    pub report: ReportKind,
    /// Absent: seven days before `to`.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Absent: when the report runs.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deliver: Option<ChannelSpec>,
}

impl KindConfig {
    /// Parses the `config` of a built-in kind.
    pub fn parse(
        kind: TaskKind,
        value: Option<&Value>,
        cx: &ConfigContext,
    ) -> Result<KindConfig, ValidationError> {
        let value = match value {
            None | Some(Value::Null) => {
                return Err(ValidationError::new(
                    "config",
                    format!("is required for a {} task", kind.as_str()),
                ));
            }
            Some(v) => v,
        };
        let fields = Fields::of(value, "config")?;
        Ok(match kind {
            TaskKind::CodeChange => {
                return Err(ValidationError::new(
                    "config",
                    "is not used by a code_change task",
                ));
            }
            TaskKind::ApiCall => KindConfig::ApiCall(parse_api_call(&fields)?),
            TaskKind::GhlAction => KindConfig::GhlAction(parse_ghl(&fields, cx)?),
            TaskKind::Notification => KindConfig::Notification(parse_message(&fields, &[], cx)?),
            TaskKind::Reminder => {
                let message = parse_message(&fields, &["remind_at"], cx)?;
                let remind_at = parse_time(&fields, "remind_at")?
                    .ok_or_else(|| fields.error("remind_at", "is required"))?;
                if remind_at <= cx.now {
                    return Err(fields.error("remind_at", "must be in the future"));
                }
                KindConfig::Reminder(ReminderConfig { message, remind_at })
            }
            TaskKind::Report => KindConfig::Report(parse_report(&fields, cx)?),
            TaskKind::BrowserAutomation => {
                KindConfig::BrowserAutomation(browser::config::parse_automation(&fields, cx)?)
            }
            TaskKind::DataExtraction => {
                KindConfig::DataExtraction(browser::config::parse_extraction(&fields, cx)?)
            }
        })
    }

    /// Seals every clear credential for `task`.
    pub fn seal(&mut self, sealer: &Sealer, task: &TaskId) {
        for credential in self.credentials_mut() {
            *credential = sealer.seal(task, credential);
        }
    }

    fn credentials_mut(&mut self) -> Vec<&mut Credential> {
        let mut out = Vec::new();
        if let KindConfig::ApiCall(call) = self {
            for header in &mut call.headers {
                if let HeaderField::Credential(c) = &mut header.value {
                    out.push(c);
                }
            }
            match &mut call.auth {
                Auth::None => {}
                Auth::Bearer { token } => out.push(token),
                Auth::ApiKey { value, .. } => out.push(value),
                Auth::Basic { password, .. } => out.push(password),
            }
        }
        out
    }

    /// The config as the API shows it: the request's shape, credentials as `"***"`.
    pub fn public_view(&self) -> Value {
        match self {
            KindConfig::ApiCall(call) => {
                let headers: Map<String, Value> = call
                    .headers
                    .iter()
                    .map(|h| {
                        let value = match &h.value {
                            HeaderField::Plain(v) => v.as_str(),
                            HeaderField::Credential(_) => MASK,
                        };
                        (h.name.clone(), Value::from(value))
                    })
                    .collect();
                let auth = match &call.auth {
                    Auth::None => serde_json::json!({"type": "none"}),
                    Auth::Bearer { .. } => serde_json::json!({"type": "bearer", "token": MASK}),
                    Auth::ApiKey { header, .. } => {
                        serde_json::json!({"type": "api_key", "header": header, "value": MASK})
                    }
                    Auth::Basic { username, .. } => {
                        serde_json::json!({"type": "basic", "username": username, "password": MASK})
                    }
                };
                let body = match &call.body {
                    None => Value::Null,
                    Some(Body::Json(v)) => v.clone(),
                    Some(Body::Text(t)) => Value::from(t.as_str()),
                };
                serde_json::json!({
                    "url": call.url, "method": call.method, "headers": headers, "body": body,
                    "auth": auth, "timeout_secs": call.timeout_secs,
                })
            }
            KindConfig::GhlAction(ghl) => {
                let mut view = serde_json::to_value(&ghl.action).unwrap_or(Value::Null);
                if let (Some(obj), Some(location)) = (view.as_object_mut(), &ghl.location_id) {
                    obj.insert("location_id".into(), Value::from(location.as_str()));
                }
                view
            }
            KindConfig::Notification(m) => message_view(m),
            KindConfig::Reminder(r) => {
                let mut view = message_view(&r.message);
                if let Some(obj) = view.as_object_mut() {
                    obj.insert(
                        "remind_at".into(),
                        Value::from(crate::time::rfc3339(r.remind_at)),
                    );
                }
                view
            }
            KindConfig::Report(r) => {
                let mut view = serde_json::json!({"report": r.report.as_str()});
                if let Some(obj) = view.as_object_mut() {
                    if let Some(from) = r.from {
                        obj.insert("from".into(), crate::time::rfc3339(from).into());
                    }
                    if let Some(to) = r.to {
                        obj.insert("to".into(), crate::time::rfc3339(to).into());
                    }
                    if let Some(deliver) = &r.deliver {
                        obj.insert(
                            "deliver".into(),
                            serde_json::to_value(deliver).unwrap_or(Value::Null),
                        );
                    }
                }
                view
            }
            KindConfig::BrowserAutomation(a) => browser::config::automation_view(a),
            KindConfig::DataExtraction(e) => browser::config::extraction_view(e),
        }
    }
}

fn message_view(m: &MessageConfig) -> Value {
    let mut view = serde_json::to_value(&m.channel).unwrap_or(Value::Null);
    if let Some(obj) = view.as_object_mut() {
        obj.insert("message".into(), Value::from(m.message.as_str()));
    }
    view
}

/// Reads the fields of one JSON object, naming them by their path in the request.
pub(crate) struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    pub(crate) fn of(value: &'a Value, path: &str) -> Result<Fields<'a>, ValidationError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ValidationError::new(path, "must be an object"))?;
        Ok(Fields {
            obj,
            path: path.to_owned(),
        })
    }

    pub(crate) fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.path)
    }

    pub(crate) fn error(&self, field: &str, message: impl Into<String>) -> ValidationError {
        ValidationError::new(self.path(field), message)
    }

    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field)
    }

    /// Refuses a field not in `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ValidationError> {
        match self.obj.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(self.error(unknown, "is not a known field")),
            None => Ok(()),
        }
    }

    pub(crate) fn str(&self, field: &str) -> Result<Option<&'a str>, ValidationError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.error(field, "must be a string")),
        }
    }

    pub(crate) fn required_str(&self, field: &str) -> Result<&'a str, ValidationError> {
        match self.str(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.error(field, "must not be empty")),
            None => Err(self.error(field, "is required")),
        }
    }

    pub(crate) fn bool(&self, field: &str) -> Result<Option<bool>, ValidationError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(field, "must be true or false")),
        }
    }

    /// A short single-line text field.
    fn text(&self, field: &str) -> Result<Option<String>, ValidationError> {
        match self.str(field)? {
            None => Ok(None),
            Some(s) if s.chars().count() > MAX_TEXT_FIELD || s.chars().any(char::is_control) => {
                Err(self.error(
                    field,
                    format!("must be at most {MAX_TEXT_FIELD} characters on one line"),
                ))
            }
            Some(s) if s.trim().is_empty() => Err(self.error(field, "must not be empty")),
            Some(s) => Ok(Some(s.trim().to_owned())),
        }
    }

    pub(crate) fn required_text(&self, field: &str) -> Result<String, ValidationError> {
        self.text(field)?
            .ok_or_else(|| self.error(field, "is required"))
    }

    fn id(&self, field: &str) -> Result<String, ValidationError> {
        let id = self.required_str(field)?;
        check_ghl_id(id).map_err(|why| self.error(field, why))?;
        Ok(id.to_owned())
    }
}

/// An `http://` or `https://` URL with a host and no credentials in it.
pub fn check_http_url(raw: &str) -> Result<(), &'static str> {
    if raw.len() > MAX_URL_LEN || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL of at most 2048 characters without spaces");
    }
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials; put them in auth");
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']'))
        .map_or(authority, |(host, _)| host);
    if host.is_empty() {
        return Err("must name a host");
    }
    Ok(())
}

/// A GoHighLevel id (contact, pipeline, stage, location): letters, digits, `-` and `_`.
pub fn check_ghl_id(raw: &str) -> Result<(), &'static str> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("must be an id of 1 to 64 letters, digits, - or _")
    }
}

/// Header names whose values are credentials.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "key",
        "auth",
        "session",
        "signature",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// Headers the HTTP client sets itself.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
];

fn parse_api_call(fields: &Fields<'_>) -> Result<ApiCallConfig, ValidationError> {
    fields.only(&["url", "method", "headers", "body", "auth", "timeout_secs"])?;
    let url = fields.required_str("url")?;
    check_http_url(url).map_err(|why| fields.error("url", why))?;
    let method = fields.str("method")?.unwrap_or("GET");
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
        return Err(fields.error("method", "must be GET, POST, PUT, PATCH or DELETE"));
    }
    let mut headers = Vec::new();
    match fields.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            if map.len() > MAX_HEADERS {
                return Err(fields.error("headers", format!("must hold at most {MAX_HEADERS}")));
            }
            for (name, value) in map {
                let path = format!("headers.{name}");
                let token = !name.is_empty()
                    && name.len() <= 128
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(fields.error(&path, "is not a valid header name"));
                }
                if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(
                        fields.error(&path, "is set by the HTTP client and cannot be given")
                    );
                }
                let value = match value {
                    Value::String(s)
                        if s.len() <= MAX_HEADER_VALUE
                            && !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) =>
                    {
                        s.clone()
                    }
                    Value::String(_) => {
                        return Err(fields.error(&path, "must be at most 8 KiB on one line"));
                    }
                    _ => return Err(fields.error(&path, "must be a string")),
                };
                let value = if is_credential_header(name) {
                    HeaderField::Credential(Credential::clear(value))
                } else {
                    HeaderField::Plain(value)
                };
                headers.push(Header {
                    name: name.clone(),
                    value,
                });
            }
        }
        Some(_) => return Err(fields.error("headers", "must be an object of strings")),
    }
    let body = match fields.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Body::Text(s.clone())),
        Some(v) => Some(Body::Json(v.clone())),
    };
    let body_len = match &body {
        Some(Body::Text(s)) => s.len(),
        Some(Body::Json(v)) => serde_json::to_vec(v).map_or(0, |b| b.len()),
        None => 0,
    };
    if body_len > MAX_BODY_BYTES {
        return Err(fields.error("body", "must be at most 256 KiB"));
    }
    if body.is_some() && matches!(method, "GET") {
        return Err(fields.error("body", "cannot be sent with GET"));
    }
    let auth = match fields.get("auth") {
        None | Some(Value::Null) => Auth::None,
        Some(value) => {
            let auth = Fields::of(value, &fields.path("auth"))?;
            let secret = |field: &str| -> Result<Credential, ValidationError> {
                let value = auth.required_str(field)?;
                if value.len() > MAX_HEADER_VALUE || value.bytes().any(|b| b < 0x20 || b == 0x7f) {
                    return Err(auth.error(field, "must be at most 8 KiB of visible characters"));
                }
                Ok(Credential::clear(value))
            };
            match auth.required_str("type")? {
                "none" => {
                    auth.only(&["type"])?;
                    Auth::None
                }
                "bearer" => {
                    auth.only(&["type", "token"])?;
                    Auth::Bearer {
                        token: secret("token")?,
                    }
                }
                "api_key" => {
                    auth.only(&["type", "header", "value"])?;
                    let header = auth.required_str("header")?;
                    let token = !header.is_empty()
                        && header.len() <= 128
                        && header
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !token {
                        return Err(auth.error("header", "is not a valid header name"));
                    }
                    Auth::ApiKey {
                        header: header.to_owned(),
                        value: secret("value")?,
                    }
                }
                "basic" => {
                    auth.only(&["type", "username", "password"])?;
                    let username = auth.required_str("username")?;
                    if username.contains(':') || username.chars().any(char::is_control) {
                        return Err(
                            auth.error("username", "must not contain : or control characters")
                        );
                    }
                    Auth::Basic {
                        username: username.to_owned(),
                        password: secret("password")?,
                    }
                }
                _ => return Err(auth.error("type", "must be none, bearer, api_key or basic")),
            }
        }
    };
    let timeout_secs = match fields.get("timeout_secs") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_TIMEOUT_SECS as u64).contains(n))
            .ok_or_else(|| {
                fields.error(
                    "timeout_secs",
                    format!("must be a whole number from 1 to {MAX_TIMEOUT_SECS}"),
                )
            })? as u32,
    };
    Ok(ApiCallConfig {
        url: url.to_owned(),
        method: method.to_owned(),
        headers,
        body,
        auth,
        timeout_secs,
    })
}

fn parse_tags(fields: &Fields<'_>, field: &str) -> Result<Option<Vec<String>>, ValidationError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            if items.is_empty() || items.len() > MAX_TAGS {
                return Err(fields.error(field, format!("must hold 1 to {MAX_TAGS} tags")));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item.as_str().map(str::trim) {
                    Some(tag)
                        if !tag.is_empty()
                            && tag.chars().count() <= 100
                            && !tag.chars().any(char::is_control) =>
                    {
                        Ok(tag.to_owned())
                    }
                    _ => Err(fields.error(
                        &format!("{field}[{i}]"),
                        "must be a tag of 1 to 100 characters",
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Some)
        }
        Some(_) => Err(fields.error(field, "must be a list of tags")),
    }
}

fn parse_contact(fields: &Fields<'_>) -> Result<ContactFields, ValidationError> {
    let email = fields.text("email")?;
    if let Some(email) = &email {
        crate::email::check_address(email).map_err(|why| fields.error("email", why))?;
    }
    let phone = fields.text("phone")?;
    if let Some(phone) = &phone {
        let digits = phone.bytes().filter(u8::is_ascii_digit).count();
        let ok = (7..=15).contains(&digits)
            && phone
                .bytes()
                .all(|b| b.is_ascii_digit() || b" +-().".contains(&b));
        if !ok {
            return Err(fields.error("phone", "must be a phone number such as +1 555 0100 200"));
        }
    }
    Ok(ContactFields {
        first_name: fields.text("first_name")?,
        last_name: fields.text("last_name")?,
        email,
        phone,
        tags: parse_tags(fields, "tags")?,
    })
}

fn parse_ghl(fields: &Fields<'_>, cx: &ConfigContext) -> Result<GhlConfig, ValidationError> {
    const CONTACT: [&str; 5] = ["first_name", "last_name", "email", "phone", "tags"];
    let action = fields.required_str("action")?;
    fn known<'k>(extra: &[&'k str]) -> Vec<&'k str> {
        let mut v = vec!["action", "location_id"];
        v.extend_from_slice(extra);
        v
    }
    let action = match action {
        "add_contact" => {
            fields.only(&known(&CONTACT))?;
            let contact = parse_contact(fields)?;
            if contact == ContactFields::default() {
                return Err(fields.error(
                    "email",
                    "or another contact field (first_name, last_name, phone, tags) is required",
                ));
            }
            GhlAction::AddContact { contact }
        }
        "update_contact" => {
            fields.only(&known(&[&CONTACT[..], &["contact_id"]].concat()))?;
            let contact_id = fields.id("contact_id")?;
            let contact = parse_contact(fields)?;
            if contact == ContactFields::default() {
                return Err(fields.error(
                    "first_name",
                    "or another contact field (last_name, email, phone, tags) is required",
                ));
            }
            GhlAction::UpdateContact {
                contact_id,
                contact,
            }
        }
        "add_tag" => {
            fields.only(&known(&["contact_id", "tags"]))?;
            GhlAction::AddTag {
                contact_id: fields.id("contact_id")?,
                tags: parse_tags(fields, "tags")?
                    .ok_or_else(|| fields.error("tags", "is required"))?,
            }
        }
        "send_sms" => {
            fields.only(&known(&["contact_id", "message"]))?;
            let contact_id = fields.id("contact_id")?;
            let message = fields.required_str("message")?;
            if message.chars().count() > MAX_SMS_CHARS {
                return Err(fields.error(
                    "message",
                    format!("must be at most {MAX_SMS_CHARS} characters"),
                ));
            }
            GhlAction::SendSms {
                contact_id,
                message: message.to_owned(),
            }
        }
        "create_opportunity" => {
            fields.only(&known(&[
                "pipeline_id",
                "stage_id",
                "name",
                "contact_id",
                "monetary_value",
            ]))?;
            let monetary_value = match fields.get("monetary_value") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_f64()
                        .filter(|n| n.is_finite() && *n >= 0.0)
                        .ok_or_else(|| {
                            fields.error("monetary_value", "must be a number of at least 0")
                        })?,
                ),
            };
            GhlAction::CreateOpportunity {
                pipeline_id: fields.id("pipeline_id")?,
                stage_id: fields.id("stage_id")?,
                name: fields.required_text("name")?,
                contact_id: fields.id("contact_id")?,
                monetary_value,
            }
        }
        _ => {
            return Err(fields.error(
                "action",
                "must be add_contact, update_contact, add_tag, send_sms or create_opportunity",
            ));
        }
    };
    let location_id = match fields.str("location_id")? {
        Some(id) => {
            check_ghl_id(id).map_err(|why| fields.error("location_id", why))?;
            Some(id.to_owned())
        }
        None => None,
    };
    if action.needs_location() && location_id.is_none() && !cx.ghl_location_configured {
        return Err(fields.error(
            "location_id",
            "is required: this deployment has no GHL_LOCATION_ID",
        ));
    }
    Ok(GhlConfig {
        action,
        location_id,
    })
}

fn parse_message(
    fields: &Fields<'_>,
    also: &[&str],
    cx: &ConfigContext,
) -> Result<MessageConfig, ValidationError> {
    let channel = ChannelSpec::parse(fields, &[&["message"], also].concat(), cx.owner_has_email)?;
    let message = fields.required_str("message")?;
    let limit = match channel {
        ChannelSpec::Sms { .. } => MAX_SMS_CHARS,
        _ => MAX_MESSAGE_CHARS,
    };
    if message.chars().count() > limit {
        return Err(fields.error("message", format!("must be at most {limit} characters")));
    }
    Ok(MessageConfig {
        channel,
        message: message.to_owned(),
    })
}

fn parse_time(fields: &Fields<'_>, field: &str) -> Result<Option<DateTime<Utc>>, ValidationError> {
    fields
        .str(field)?
        .map(|raw| {
            parse_rfc3339(raw).ok_or_else(|| fields.error(field, "must be an RFC 3339 timestamp"))
        })
        .transpose()
}

fn parse_report(fields: &Fields<'_>, cx: &ConfigContext) -> Result<ReportConfig, ValidationError> {
    fields.only(&["report", "from", "to", "deliver"])?;
    let report = match fields.required_str("report")? {
        "task_summary" => ReportKind::TaskSummary,
        "execution_stats" => ReportKind::ExecutionStats,
        "webhook_activity" => ReportKind::WebhookActivity,
        _ => {
            return Err(fields.error(
                "report",
                "must be task_summary, execution_stats or webhook_activity",
            ));
        }
    };
    let from = parse_time(fields, "from")?;
    let to = parse_time(fields, "to")?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(fields.error("from", "must be before to"));
        }
        if to - from > chrono::Duration::days(MAX_REPORT_DAYS) {
            return Err(fields.error(
                "from",
                format!("must be at most {MAX_REPORT_DAYS} days before to"),
            ));
        }
    }
    let deliver = match fields.get("deliver") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let deliver = Fields::of(value, &fields.path("deliver"))?;
            Some(ChannelSpec::parse(&deliver, &[], cx.owner_has_email)?)
        }
    };
    Ok(ReportConfig {
        report,
        from,
        to,
        deliver,
    })
}

#[cfg(test)]
mod tests;
