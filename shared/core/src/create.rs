//! `POST /tasks`: the request parsed at the edge into a new task.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ValidationError;
use crate::ids::{Attempt, TaskId, UserId};
use crate::kinds::browser::BrowserOffer;
use crate::kinds::config::ConfigContext;
use crate::kinds::{KindConfig, NotifySpec, TaskKind};
use crate::machine::{Effect, Policy, runner_for};
use crate::task::{
    CallbackCounts, Execution, ModelSpec, Task, TaskContext, TaskStatus, Trigger, Usage,
};
use crate::time::parse_rfc3339;

pub const MAX_PROMPT_CHARS: usize = 20_000;
const MAX_TITLE_CHARS: usize = 200;
const MAX_CONTEXT_CHARS: usize = 100_000;
const MAX_URL_LEN: usize = 2_048;

/// Which repositories a deployment accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoPolicy {
    /// `https://` git URLs only.
    HttpsOnly,
    /// Also `file://` URLs and local paths (the embedded deployment).
    AllowLocal,
}

/// A create request that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub repo_url: String,
    pub prompt: String,
    pub title: Option<String>,
    pub base_branch: String,
    pub kind: String,
    pub execute: bool,
    pub requires_review: bool,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub model: Option<ModelSpec>,
    pub notify_email: Option<String>,
    pub context: TaskContext,
    /// A built-in kind's config (credentials still clear: the caller seals them).
    pub config: Option<KindConfig>,
    pub notify: Option<NotifySpec>,
    /// Attempts for failures that may pass; `None`: the deployment's `PJ_MAX_ATTEMPTS`.
    pub max_attempts: Option<u32>,
    /// SHA-256 of the canonical request, for the `Idempotency-Key` rule.
    pub fingerprint: String,
}

/// The most attempts a create request may ask for.
pub const MAX_REQUESTED_ATTEMPTS: u32 = 10;

/// Fields of a code change that the other kinds do not take.
const CODE_CHANGE_ONLY: [&str; 4] = ["repo_url", "prompt", "base_branch", "context"];

impl NewTask {
    /// Parses a JSON body for a user with an email address in a deployment with a GoHighLevel
    /// location configured (tests and samples); the API passes the real context to
    /// [`NewTask::parse_in`].
    pub fn parse(body: &Value, repos: RepoPolicy) -> Result<NewTask, ValidationError> {
        let cx = ConfigContext {
            now: chrono::Utc::now(),
            owner_has_email: true,
            ghl_location_configured: true,
            browsers: BrowserOffer::everything(),
        };
        NewTask::parse_in(body, repos, &cx)
    }

    /// Parses a JSON body, naming the first field that is wrong.
    pub fn parse_in(
        body: &Value,
        repos: RepoPolicy,
        cx: &ConfigContext,
    ) -> Result<NewTask, ValidationError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        const KNOWN: [&str; 14] = [
            "config",
            "notify",
            "max_attempts",
            "repo_url",
            "prompt",
            "title",
            "base_branch",
            "kind",
            "execute",
            "requires_review",
            "scheduled_for",
            "model",
            "notify_email",
            "context",
        ];
        if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ValidationError::new(
                unknown.clone(),
                "is not a known field",
            ));
        }
        let kind = TaskKind::parse(opt_str(obj, "kind")?.unwrap_or("code_change"))?;
        if kind.is_builtin() {
            return NewTask::parse_builtin(obj, body, kind, cx);
        }
        if obj.get("config").is_some_and(|v| !v.is_null()) {
            return Err(ValidationError::new(
                "config",
                "is not used by a code_change task",
            ));
        }
        let repo_url = parse_repo_url(
            opt_str(obj, "repo_url")?
                .ok_or_else(|| ValidationError::new("repo_url", "is required"))?,
            repos,
        )?;
        let prompt =
            opt_str(obj, "prompt")?.ok_or_else(|| ValidationError::new("prompt", "is required"))?;
        let prompt_chars = prompt.chars().count();
        if prompt.trim().is_empty() || prompt_chars > MAX_PROMPT_CHARS {
            return Err(ValidationError::new(
                "prompt",
                format!("must be 1 to {MAX_PROMPT_CHARS} characters"),
            ));
        }
        let title = opt_str(obj, "title")?
            .map(parse_title)
            .transpose()?
            .flatten();
        let base_branch = opt_str(obj, "base_branch")?.unwrap_or("main");
        validate_branch(base_branch).map_err(|m| ValidationError::new("base_branch", m))?;
        let common = Common::parse(obj, cx)?;
        let context = match obj.get("context") {
            None | Some(Value::Null) => TaskContext::default(),
            Some(Value::Object(ctx)) => {
                if let Some(unknown) = ctx.keys().find(|k| k.as_str() != "coderabbit_analysis") {
                    return Err(ValidationError::new(
                        format!("context.{unknown}"),
                        "is not a known field",
                    ));
                }
                let analysis = match ctx.get("coderabbit_analysis") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.chars().count() <= MAX_CONTEXT_CHARS => {
                        Some(s.clone())
                    }
                    Some(Value::String(_)) => {
                        return Err(ValidationError::new(
                            "context.coderabbit_analysis",
                            format!("must be at most {MAX_CONTEXT_CHARS} characters"),
                        ));
                    }
                    Some(_) => {
                        return Err(ValidationError::new(
                            "context.coderabbit_analysis",
                            "must be a string",
                        ));
                    }
                };
                TaskContext {
                    coderabbit_analysis: analysis,
                }
            }
            Some(_) => return Err(ValidationError::new("context", "must be an object")),
        };
        Ok(NewTask {
            repo_url,
            prompt: prompt.to_owned(),
            title,
            base_branch: base_branch.to_owned(),
            kind: kind.as_str().to_owned(),
            execute: common.execute,
            requires_review: common.requires_review,
            scheduled_for: common.scheduled_for,
            model: common.model,
            notify_email: common.notify_email,
            context,
            config: None,
            notify: common.notify,
            max_attempts: common.max_attempts,
            fingerprint: fingerprint(body),
        })
    }

    /// The body of a built-in kind: a title and a config instead of a repository and prompt.
    fn parse_builtin(
        obj: &Map<String, Value>,
        body: &Value,
        kind: TaskKind,
        cx: &ConfigContext,
    ) -> Result<NewTask, ValidationError> {
        if let Some(field) = CODE_CHANGE_ONLY
            .iter()
            .find(|f| obj.get(**f).is_some_and(|v| !v.is_null()))
        {
            return Err(ValidationError::new(
                *field,
                format!(
                    "belongs to code_change tasks; a {} task takes config",
                    kind.as_str()
                ),
            ));
        }
        let title = match opt_str(obj, "title")? {
            Some(t) => t,
            None => return Err(ValidationError::new("title", "is required")),
        };
        let title = parse_title(title)?
            .ok_or_else(|| ValidationError::new("title", "must not be empty"))?;
        let config = KindConfig::parse(kind, obj.get("config"), cx)?;
        let mut common = Common::parse(obj, cx)?;
        if let KindConfig::Reminder(reminder) = &config {
            if common.scheduled_for.is_some() {
                return Err(ValidationError::new(
                    "scheduled_for",
                    "is not used by a reminder, which waits for config.remind_at",
                ));
            }
            common.scheduled_for = Some(reminder.remind_at);
        }
        Ok(NewTask {
            repo_url: String::new(),
            prompt: String::new(),
            title: Some(title),
            base_branch: String::new(),
            kind: kind.as_str().to_owned(),
            execute: common.execute,
            requires_review: common.requires_review,
            scheduled_for: common.scheduled_for,
            model: common.model,
            notify_email: common.notify_email,
            context: TaskContext::default(),
            config: Some(config),
            notify: common.notify,
            max_attempts: common.max_attempts,
            fingerprint: fingerprint(body),
        })
    }

    /// The task this request creates, and the effects of its creation. `max_attempts` is the
    /// deployment's default, used when the request names none.
    pub fn into_task(
        self,
        owner: UserId,
        owner_email: Option<String>,
        max_attempts: u32,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> (Task, Vec<Effect>) {
        let id = TaskId::generate(now);
        let title = self
            .title
            .unwrap_or_else(|| title_from_prompt(&self.prompt));
        let future = self.scheduled_for.filter(|at| *at > now);
        let mut effects = Vec::new();
        let status = if self.requires_review {
            TaskStatus::PendingReview
        } else if future.is_some() {
            TaskStatus::Scheduled
        } else {
            TaskStatus::Queued
        };
        let dispatch_now = status == TaskStatus::Queued && self.execute;
        let mut task = Task {
            branch: format!("pj/{id}"),
            id,
            owner,
            owner_email,
            kind: self.kind,
            status,
            title,
            prompt: self.prompt,
            repo_url: self.repo_url,
            base_branch: self.base_branch,
            pr_url: None,
            error: None,
            attempt: Attempt::FIRST,
            max_attempts: self.max_attempts.unwrap_or(max_attempts).max(1),
            usage: Usage::default(),
            model: self.model,
            notify_email: self.notify_email,
            context: self.context,
            requires_review: self.requires_review,
            scheduled_for: self.scheduled_for,
            config: self.config,
            notify: self.notify,
            result: None,
            result_summary: None,
            callbacks: CallbackCounts::default(),
            created_at: now,
            updated_at: now,
            started_at: None,
            completed_at: None,
            executions: Vec::new(),
            notify_pending: Vec::new(),
            notify_touched_at: None,
            notified: Vec::new(),
            notify_failed: Vec::new(),
            sweep_at: None,
            version: 1,
        };
        if dispatch_now {
            let runner = runner_for(&task, policy);
            task.executions.push(Execution::requested(
                Attempt::FIRST,
                runner,
                Trigger::Create,
                now,
            ));
            effects.push(Effect::Dispatch(Attempt::FIRST));
        }
        task.sweep_at = crate::machine::sweep_at(&task, policy);
        (task, effects)
    }
}

/// The fields every kind takes.
struct Common {
    execute: bool,
    requires_review: bool,
    scheduled_for: Option<DateTime<Utc>>,
    model: Option<ModelSpec>,
    notify_email: Option<String>,
    notify: Option<NotifySpec>,
    max_attempts: Option<u32>,
}

impl Common {
    fn parse(obj: &Map<String, Value>, cx: &ConfigContext) -> Result<Common, ValidationError> {
        let scheduled_for = match opt_str(obj, "scheduled_for")? {
            Some(raw) => Some(parse_rfc3339(raw).ok_or_else(|| {
                ValidationError::new("scheduled_for", "must be an RFC 3339 timestamp")
            })?),
            None => None,
        };
        let model = match obj.get("model") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_model(v)?),
        };
        let notify_email = match opt_str(obj, "notify_email")? {
            Some(e) => {
                crate::email::check_address(e)
                    .map_err(|why| ValidationError::new("notify_email", why))?;
                Some(e.to_owned())
            }
            None => None,
        };
        let owner_has_email = cx.owner_has_email || notify_email.is_some();
        let notify = match obj.get("notify") {
            None | Some(Value::Null) => None,
            Some(v) => Some(NotifySpec::parse(v, owner_has_email)?),
        };
        let max_attempts = match obj.get("max_attempts") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|n| (1..=MAX_REQUESTED_ATTEMPTS as u64).contains(n))
                    .ok_or_else(|| {
                        ValidationError::new(
                            "max_attempts",
                            format!("must be a whole number from 1 to {MAX_REQUESTED_ATTEMPTS}"),
                        )
                    })? as u32,
            ),
        };
        Ok(Common {
            execute: opt_bool(obj, "execute")?.unwrap_or(true),
            requires_review: opt_bool(obj, "requires_review")?.unwrap_or(false),
            scheduled_for,
            model,
            notify_email,
            notify,
            max_attempts,
        })
    }
}

fn parse_title(raw: &str) -> Result<Option<String>, ValidationError> {
    if raw.chars().count() > MAX_TITLE_CHARS || raw.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters on one line"),
        ));
    }
    Ok(Some(raw.trim().to_owned()).filter(|t| !t.is_empty()))
}

/// SHA-256 of the canonical request, for the `Idempotency-Key` rule.
fn fingerprint(body: &Value) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    hex_digest(&Sha256::digest(&canonical))
}

fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ValidationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ValidationError::new(field, "must be a string")),
    }
}

fn opt_bool(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, ValidationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ValidationError::new(field, "must be true or false")),
    }
}

fn parse_model(v: &Value) -> Result<ModelSpec, ValidationError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ValidationError::new("model", "must be an object with provider and name"))?;
    let provider = opt_str(obj, "provider")?.unwrap_or_default();
    let name = opt_str(obj, "name")?.unwrap_or_default();
    ModelSpec::new(provider, name)
        .map_err(|(part, why)| ValidationError::new(format!("model.{part}"), why))
}

/// Accepts `https://host/path` without credentials, and in the embedded deployment `file://`
/// URLs and local paths (made absolute).
pub fn parse_repo_url(raw: &str, repos: RepoPolicy) -> Result<String, ValidationError> {
    let err = |m: &str| ValidationError::new("repo_url", m);
    if raw.is_empty()
        || raw.len() > MAX_URL_LEN
        || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(err("must be a git URL without spaces"));
    }
    if let Some(rest) = raw.strip_prefix("https://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || authority.contains('@') {
            return Err(err(
                "must be an https:// URL with a host and no credentials in it",
            ));
        }
        if path.trim_matches('/').is_empty() {
            return Err(err(
                "must name a repository, such as https://github.com/owner/repo",
            ));
        }
        return Ok(raw.to_owned());
    }
    if repos == RepoPolicy::AllowLocal {
        if let Some(path) = raw.strip_prefix("file://") {
            if path.starts_with('/') {
                return Ok(raw.to_owned());
            }
            return Err(err("a file:// URL must hold an absolute path"));
        }
        if !raw.contains("://") {
            let path = std::path::Path::new(raw);
            let absolute = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|_| err("a relative path cannot be resolved here"))?
                    .join(path)
            };
            return Ok(absolute.to_string_lossy().into_owned());
        }
        return Err(err(
            "must be an https:// git URL, a file:// URL or a local path",
        ));
    }
    Err(err("must be an https:// git URL"))
}

/// Git's rules for a branch name, the ones that matter for safety.
pub fn validate_branch(name: &str) -> Result<(), &'static str> {
    let bad = name.is_empty()
        || name.len() > 200
        || name.starts_with('-')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with('.')
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name == "@"
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err("must be a valid git branch name")
    } else {
        Ok(())
    }
}

/// The first line of the prompt, cut to a readable length.
fn title_from_prompt(prompt: &str) -> String {
    let line = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("Task");
    let mut title: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        title.push('…');
    }
    title
}

pub(crate) fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewTask, ValidationError> {
        NewTask::parse(&v, RepoPolicy::HttpsOnly)
    }

    #[test]
    fn a_minimal_request_gets_the_defaults() {
        let t = parse(json!({"repo_url": "https://github.com/o/r", "prompt": "Fix it"})).unwrap();
        assert_eq!(t.base_branch, "main");
        assert_eq!(t.kind, "code_change");
        assert!(t.execute);
        assert!(!t.requires_review);
    }

    #[test]
    fn when_required_fields_are_missing_should_name_them() {
        assert_eq!(parse(json!({"prompt": "x"})).unwrap_err().field, "repo_url");
        assert_eq!(
            parse(json!({"repo_url": "https://github.com/o/r"}))
                .unwrap_err()
                .field,
            "prompt"
        );
    }

    #[test]
    fn when_prompt_is_too_long_or_blank_should_refuse() {
        let long = "a".repeat(MAX_PROMPT_CHARS + 1);
        assert_eq!(
            parse(json!({"repo_url": "https://github.com/o/r", "prompt": long}))
                .unwrap_err()
                .field,
            "prompt"
        );
        assert_eq!(
            parse(json!({"repo_url": "https://github.com/o/r", "prompt": "  "}))
                .unwrap_err()
                .field,
            "prompt"
        );
        let exact = "é".repeat(MAX_PROMPT_CHARS);
        assert!(parse(json!({"repo_url": "https://github.com/o/r", "prompt": exact})).is_ok());
    }

    #[test]
    fn when_repo_url_carries_credentials_should_refuse() {
        let err = parse(json!({"repo_url": "https://x:ghp_abc@github.com/o/r", "prompt": "p"}));
        assert_eq!(err.unwrap_err().field, "repo_url");
    }

    #[test]
    fn local_paths_are_accepted_only_where_allowed() {
        let body = json!({"repo_url": "/srv/repo", "prompt": "p"});
        assert!(NewTask::parse(&body, RepoPolicy::HttpsOnly).is_err());
        assert_eq!(
            NewTask::parse(&body, RepoPolicy::AllowLocal)
                .unwrap()
                .repo_url,
            "/srv/repo"
        );
    }

    #[test]
    fn when_field_has_wrong_type_or_is_unknown_should_name_it() {
        let base = |k: &str, v: Value| {
            let mut m = json!({"repo_url": "https://github.com/o/r", "prompt": "p"});
            m[k] = v;
            parse(m).unwrap_err().field
        };
        assert_eq!(base("execute", json!("yes")), "execute");
        assert_eq!(base("scheduled_for", json!("tomorrow")), "scheduled_for");
        assert_eq!(
            base("model", json!({"provider": "x", "name": "m"})),
            "model.provider"
        );
        assert_eq!(base("notify_email", json!("nope")), "notify_email");
        assert_eq!(base("base_branch", json!("a..b")), "base_branch");
        assert_eq!(base("colour", json!(1)), "colour");
    }

    #[test]
    fn when_notify_email_cannot_be_sent_to_should_reject_it_as_the_mailer_would() {
        let with = |email: &str| {
            parse(
                json!({"repo_url": "https://github.com/o/r", "prompt": "p", "notify_email": email}),
            )
        };
        for bad in [
            "dev@example.com\r\nBcc: evil@example.net",
            "dev @example.com",
            "dev@",
            "josé@example.com",
            "Dev <dev@example.com>",
        ] {
            assert_eq!(with(bad).unwrap_err().field, "notify_email", "{bad:?}");
        }
        let long = format!(
            "{}@{}.com",
            "a".repeat(64),
            vec!["c".repeat(63); 3].join(".")
        );
        assert_eq!(with(&long).unwrap_err().field, "notify_email");
        assert_eq!(
            with("first.last+tag@example.co.uk")
                .unwrap()
                .notify_email
                .as_deref(),
            Some("first.last+tag@example.co.uk")
        );
    }

    /// A body of `kind` with a title and `config`, and the `extra` fields.
    fn builtin(kind: &str, config: Value, extra: Value) -> Value {
        let mut body = json!({"kind": kind, "title": "Do the thing", "config": config});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    }

    fn api_call(extra: Value) -> Value {
        builtin(
            "api_call",
            json!({"url": "https://api.example.com/x"}),
            extra,
        )
    }

    fn refused(body: Value) -> ValidationError {
        match parse(body.clone()) {
            Ok(t) => panic!("{body} was accepted as {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_built_in_kind_takes_a_title_and_a_config_and_no_repository() {
        let t = parse(api_call(json!({}))).unwrap();
        assert_eq!(t.kind, "api_call");
        assert_eq!(t.title.as_deref(), Some("Do the thing"));
        assert!(matches!(t.config, Some(KindConfig::ApiCall(_))));
        assert_eq!(t.repo_url, "");
        assert_eq!(t.max_attempts, None, "the deployment's default");
        let (task, effects) = t.into_task(
            UserId::parse("u1").unwrap(),
            None,
            3,
            crate::time::parse_rfc3339("2026-12-01T12:00:00Z").unwrap(),
            &Policy::default(),
        );
        assert_eq!(
            task.executions[0].runner,
            crate::task::RunnerKind::Builtin,
            "run by the backend whatever the deployment's runner"
        );
        assert_eq!(task.executions[0].triggered_by, Some(Trigger::Create));
        assert_eq!(task.max_attempts, 3);
        assert_eq!(effects, vec![Effect::Dispatch(Attempt::FIRST)]);
    }

    #[test]
    fn a_built_in_kind_without_a_title_is_refused_naming_title() {
        let mut body = api_call(json!({}));
        body.as_object_mut().unwrap().remove("title");
        let e = refused(body);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("title", "is required")
        );
        assert_eq!(refused(api_call(json!({"title": "   "}))).field, "title");
        assert_eq!(refused(api_call(json!({"title": 7}))).field, "title");
        assert_eq!(refused(api_call(json!({"title": "a\nb"}))).field, "title");
    }

    #[test]
    fn the_fields_of_a_code_change_are_refused_for_a_built_in_kind() {
        for (field, value) in [
            ("repo_url", json!("https://github.com/o/r")),
            ("prompt", json!("Add a README")),
            ("base_branch", json!("main")),
            ("context", json!({"coderabbit_analysis": "x"})),
        ] {
            let e = refused(api_call(json!({field: value})));
            assert_eq!(e.field, field);
            assert!(e.message.contains("code_change"), "{}", e.message);
        }
        // Null is as good as absent.
        assert!(parse(api_call(json!({"repo_url": null}))).is_ok());
    }

    #[test]
    fn a_config_is_refused_for_a_code_change() {
        let e = refused(json!({"repo_url": "https://github.com/o/r", "prompt": "p",
                               "config": {"url": "https://api.example.com/x"}}));
        assert_eq!(e.field, "config");
    }

    #[test]
    fn an_unknown_kind_is_refused_naming_kind() {
        let e = refused(builtin("teleport", json!({}), json!({})));
        assert_eq!(e.field, "kind");
        assert!(e.message.starts_with("must be one of"), "{}", e.message);
        assert!(e.message.contains("data_extraction"), "{}", e.message);
        assert_eq!(refused(json!({"kind": 1})).field, "kind");
    }

    #[test]
    fn max_attempts_must_be_a_whole_number_from_1_to_10() {
        for bad in [json!(0), json!(11), json!(-1), json!(2.5), json!("3")] {
            assert_eq!(
                refused(api_call(json!({"max_attempts": bad}))).field,
                "max_attempts",
                "{bad}"
            );
        }
        for good in [1, 10] {
            let t = parse(api_call(json!({"max_attempts": good}))).unwrap();
            assert_eq!(t.max_attempts, Some(good));
            let (task, _) = t.into_task(
                UserId::parse("u1").unwrap(),
                None,
                3,
                chrono::Utc::now(),
                &Policy::default(),
            );
            assert_eq!(task.max_attempts, good, "over the deployment's 3");
        }
        let code = json!({"repo_url": "https://github.com/o/r", "prompt": "p", "max_attempts": 11});
        assert_eq!(refused(code).field, "max_attempts", "for a code change too");
    }

    #[test]
    fn a_wrong_notify_is_refused_naming_its_field_down_to_the_channel() {
        let cases = [
            (json!("email"), "notify"),
            (json!({"on_failure": 1}), "notify.on_failure"),
            (
                json!({"channels": [{"channel": "webhook", "url": "ftp://x"}]}),
                "notify.channels[0].url",
            ),
            (
                json!({"channels": [{"channel": "email"}, {"channel": "fax"}]}),
                "notify.channels[1].channel",
            ),
        ];
        for (notify, field) in cases {
            assert_eq!(
                refused(api_call(json!({"notify": notify.clone()}))).field,
                field
            );
            let code =
                json!({"repo_url": "https://github.com/o/r", "prompt": "p", "notify": notify});
            assert_eq!(refused(code).field, field, "for a code change too");
        }
    }

    #[test]
    fn an_email_channel_without_an_address_is_refused_unless_the_task_has_one() {
        let cx = ConfigContext {
            now: chrono::Utc::now(),
            owner_has_email: false,
            ghl_location_configured: true,
            browsers: BrowserOffer::everything(),
        };
        let notify = json!({"notify": {"channels": [{"channel": "email"}]}});
        let e =
            NewTask::parse_in(&api_call(notify.clone()), RepoPolicy::HttpsOnly, &cx).unwrap_err();
        assert_eq!(e.field, "notify.channels[0].to");
        let mut with_address = api_call(notify);
        with_address["notify_email"] = json!("ops@example.com");
        assert!(NewTask::parse_in(&with_address, RepoPolicy::HttpsOnly, &cx).is_ok());
    }

    #[test]
    fn a_reminder_is_scheduled_for_its_remind_at() {
        let remind_at = "2099-01-01T09:00:00Z";
        let reminder = |extra: Value| {
            builtin(
                "reminder",
                json!({"channel": "email", "message": "Call Ada", "remind_at": remind_at}),
                extra,
            )
        };
        let t = parse(reminder(json!({}))).unwrap();
        let at = crate::time::parse_rfc3339(remind_at).unwrap();
        assert_eq!(t.scheduled_for, Some(at));
        let now = crate::time::parse_rfc3339("2026-12-01T12:00:00Z").unwrap();
        let (task, effects) = t.into_task(
            UserId::parse("u1").unwrap(),
            Some("u1@example.com".into()),
            3,
            now,
            &Policy::default(),
        );
        assert_eq!(task.status, TaskStatus::Scheduled);
        assert!(task.executions.is_empty());
        assert!(effects.is_empty());
        assert_eq!(task.sweep_at, Some(at), "the sweeper looks at it then");

        let e = refused(reminder(json!({"scheduled_for": "2099-01-01T08:00:00Z"})));
        assert_eq!(e.field, "scheduled_for");
        let past = builtin(
            "reminder",
            json!({"channel": "email", "message": "Call Ada", "remind_at": "2001-01-01T00:00:00Z"}),
            json!({}),
        );
        assert_eq!(refused(past).field, "config.remind_at");
    }

    #[test]
    fn the_same_body_in_another_key_order_has_the_same_fingerprint() {
        let a: Value =
            serde_json::from_str(r#"{"prompt":"p","repo_url":"https://h/o/r"}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"repo_url":"https://h/o/r","prompt":"p"}"#).unwrap();
        assert_eq!(parse(a).unwrap().fingerprint, parse(b).unwrap().fingerprint);
    }
}
