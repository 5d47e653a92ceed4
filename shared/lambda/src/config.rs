//! Typed configuration of the functions, read once at start from the environment. A missing or
//! bad value stops the start with a message that names the variable (and never shows a secret).
//!
//! Each piece reads the variables of one capability; a function's `config.rs` composes the
//! pieces it needs, so it reads exactly what `infra/README.md` says it gets.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

pub use pj_aws::QueueUrls;
use pj_core::capacity::Capacity;
use pj_core::engine::RunnerDefaults;
use pj_core::machine::{MAX_ATTEMPTS_PER_TASK, Policy};
use pj_core::net::NetworkPolicy;
use pj_core::repos::{RepoPattern, RepoRules};
use pj_core::task::{ModelSpec, Provider, RunnerKind};
use secrecy::SecretString;

/// Why the configuration was refused. Its `Debug` is its message, so `main` returning it prints
/// `Error: PJ_TABLE_NAME is not set ...` rather than a struct.
#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set; the function cannot start without it")]
    Missing(&'static str),
    #[error("{name} {problem}")]
    Invalid { name: &'static str, problem: String },
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl ConfigError {
    /// The variable the error is about.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing(name) | ConfigError::Invalid { name, .. } => name,
        }
    }

    fn invalid(name: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            name,
            problem: problem.into(),
        }
    }
}

/// Where variables come from: the process environment, or a fixed map (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct Env {
    fixed: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env { fixed: None }
    }

    /// Exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.fixed {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    /// A whole number of at least `min`, or `default` when unset.
    pub fn number<T>(&self, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.parse::<T>() {
                Ok(v) if v >= min => Ok(v),
                _ => Err(ConfigError::invalid(
                    name,
                    format!("must be a whole number of at least {min}, not {raw:?}"),
                )),
            },
        }
    }

    /// An `http(s)://` URL without its trailing slash, when set.
    pub fn url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(u) if is_http_url(&u) => Ok(Some(u.trim_end_matches('/').to_owned())),
            Some(u) => Err(ConfigError::invalid(
                name,
                format!("must be an http:// or https:// URL, not {u:?}"),
            )),
        }
    }

    pub fn required_url(&self, name: &'static str) -> Result<String, ConfigError> {
        self.url(name)?.ok_or(ConfigError::Missing(name))
    }

    pub fn secret(&self, name: &'static str) -> Option<SecretString> {
        self.get(name).map(SecretString::from)
    }

    pub fn flag(&self, name: &'static str) -> bool {
        self.get(name)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }
}

fn is_http_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(char::is_whitespace)
}

/// What every function gets (`template.yaml`'s `Globals`), and the core's settings that
/// follow from it.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `PJ_TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `PJ_METRICS_NAMESPACE`, default `PithyJaunt`.
    pub metrics_namespace: String,
    /// `PJ_RUNNER`: `github_actions` (default) or `daytona`.
    pub runner: RunnerKind,
    /// `PJ_TASK_TIMEOUT_SECS`, default 600.
    pub task_timeout: Duration,
    /// `PJ_MAX_ATTEMPTS`, default 3.
    pub max_attempts: u32,
    /// `PJ_LOST_DISPATCH_SECS`, default 300.
    pub lost_dispatch_after: Duration,
    /// `PJ_DISPATCH_MAX_RECEIVES`, default 5 (the dispatch queue's `maxReceiveCount`).
    pub dispatch_max_receives: u32,
    /// `PJ_DEFAULT_MODEL` (`provider/name`), default `openai/gpt-4.1`.
    pub default_model: ModelSpec,
    /// `GITHUB_API_URL`, `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`: passed to runners.
    pub github_api_url: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    /// `KEEP_ALIVE`: passed to runners.
    pub keep_alive: bool,
    /// `PJ_ALLOWED_REPOS` and `PJ_ALLOW_PRIVATE_NETWORKS`.
    pub repo_rules: RepoRules,
    /// `PJ_MAX_RUNNING_PER_USER` (default 4) and `PJ_MAX_RUNNING` (default none).
    pub capacity: Capacity,
}

impl CoreConfig {
    pub fn from_env(env: &Env) -> Result<CoreConfig, ConfigError> {
        let runner = match env.get("PJ_RUNNER") {
            None => RunnerKind::GithubActions,
            Some(raw) => match RunnerKind::parse(&raw) {
                Ok(RunnerKind::Local) => {
                    return Err(ConfigError::invalid(
                        "PJ_RUNNER",
                        "must be github_actions or daytona on AWS Lambda (local runs only in pj serve)",
                    ));
                }
                Ok(kind) => kind,
                Err(_) => {
                    return Err(ConfigError::invalid(
                        "PJ_RUNNER",
                        format!("must be github_actions or daytona, not {raw:?}"),
                    ));
                }
            },
        };
        let default_model = match env.get("PJ_DEFAULT_MODEL") {
            None => ModelSpec {
                provider: Provider::Openai,
                name: "gpt-4.1".into(),
            },
            Some(raw) => parse_model(&raw)
                .map_err(|problem| ConfigError::invalid("PJ_DEFAULT_MODEL", problem))?,
        };
        Ok(CoreConfig {
            table: env.required("PJ_TABLE_NAME")?,
            metrics_namespace: env
                .get(pj_metrics::NAMESPACE_ENV)
                .unwrap_or_else(|| pj_metrics::NAMESPACE.to_owned()),
            runner,
            task_timeout: Duration::from_secs(env.number("PJ_TASK_TIMEOUT_SECS", 600u64, 1)?),
            max_attempts: max_attempts(env)?,
            lost_dispatch_after: Duration::from_secs(env.number(
                "PJ_LOST_DISPATCH_SECS",
                300u64,
                5,
            )?),
            dispatch_max_receives: env.number("PJ_DISPATCH_MAX_RECEIVES", 5u32, 1)?,
            default_model,
            github_api_url: env.url("GITHUB_API_URL")?,
            openai_base_url: env.url("OPENAI_BASE_URL")?,
            anthropic_base_url: env.url("ANTHROPIC_BASE_URL")?,
            keep_alive: env.flag("KEEP_ALIVE"),
            repo_rules: RepoRules {
                allowed: match env.get("PJ_ALLOWED_REPOS") {
                    None => Vec::new(),
                    Some(raw) => RepoPattern::parse_list(&raw)
                        .map_err(|problem| ConfigError::invalid("PJ_ALLOWED_REPOS", problem))?,
                },
                network: NetworkPolicy {
                    allow_private: env.flag("PJ_ALLOW_PRIVATE_NETWORKS"),
                },
            },
            capacity: Capacity {
                per_user: Some(env.number("PJ_MAX_RUNNING_PER_USER", 4u32, 1)?),
                total: match env.get("PJ_MAX_RUNNING") {
                    None => None,
                    Some(_) => Some(env.number("PJ_MAX_RUNNING", 0u32, 1)?),
                },
            },
        })
    }

    /// The state machine's policy.
    pub fn policy(&self) -> Policy {
        Policy {
            runner: self.runner,
            task_timeout: chrono_duration(self.task_timeout),
            lost_dispatch_after: chrono_duration(self.lost_dispatch_after),
            ..Policy::default()
        }
    }

    /// What every runner's environment gets besides the task.
    pub fn runner_defaults(&self) -> RunnerDefaults {
        RunnerDefaults {
            github_api_url: self.github_api_url.clone(),
            openai_base_url: self.openai_base_url.clone(),
            anthropic_base_url: self.anthropic_base_url.clone(),
            default_model: self.default_model.clone(),
            keep_alive: self.keep_alive,
        }
    }
}

/// `PJ_MAX_ATTEMPTS`, at most the attempts one task may have.
fn max_attempts(env: &Env) -> Result<u32, ConfigError> {
    let n = env.number("PJ_MAX_ATTEMPTS", 3u32, 1)?;
    if n > MAX_ATTEMPTS_PER_TASK {
        return Err(ConfigError::invalid(
            "PJ_MAX_ATTEMPTS",
            format!("must be at most {MAX_ATTEMPTS_PER_TASK}, not {n}"),
        ));
    }
    Ok(n)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn parse_model(raw: &str) -> Result<ModelSpec, String> {
    let (provider, name) = raw
        .split_once('/')
        .ok_or("must be provider/name, such as openai/gpt-4.1")?;
    let provider = match provider {
        "openai" => Provider::Openai,
        "anthropic" => Provider::Anthropic,
        other => return Err(format!("names provider {other:?}; use openai or anthropic")),
    };
    if name.is_empty() {
        return Err("names no model after the provider".into());
    }
    Ok(ModelSpec {
        provider,
        name: name.to_owned(),
    })
}

/// `PJ_DISPATCH_QUEUE_URL` and `PJ_NOTIFY_QUEUE_URL`.
pub fn queue_urls(env: &Env) -> Result<QueueUrls, ConfigError> {
    Ok(QueueUrls {
        dispatch: env.required_url("PJ_DISPATCH_QUEUE_URL")?,
        notify: env.required_url("PJ_NOTIFY_QUEUE_URL")?,
    })
}

/// `PJ_SECRET_ARN`: the Secrets Manager secret (an ARN or a name).
pub fn secret_id(env: &Env) -> Result<String, ConfigError> {
    env.required("PJ_SECRET_ARN")
}

/// `PJ_PUBLIC_URL`: the API's base URL, which runners call back to and emails link to.
pub fn public_url(env: &Env) -> Result<String, ConfigError> {
    env.required_url("PJ_PUBLIC_URL")
}

/// `PJ_EMAIL_FROM`: the sender of completion email, an identity verified in SES.
pub fn email_from(env: &Env) -> Result<String, ConfigError> {
    let from = env.required("PJ_EMAIL_FROM")?;
    if !from.contains('@') {
        return Err(ConfigError::invalid(
            "PJ_EMAIL_FROM",
            format!(
                "must be an address such as \"Pithy Jaunt <noreply@example.com>\", not {from:?}"
            ),
        ));
    }
    Ok(from)
}

/// The per-user limit of `POST /tasks` within one execution environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `PJ_RATE_LIMIT_PER_MINUTE`, default 60.
    pub per_minute: u32,
    /// `PJ_RATE_LIMIT_BURST`, default 20.
    pub burst: u32,
}

impl RateLimits {
    pub fn from_env(env: &Env) -> Result<RateLimits, ConfigError> {
        Ok(RateLimits {
            per_minute: env.number("PJ_RATE_LIMIT_PER_MINUTE", 60u32, 1)?,
            burst: env.number("PJ_RATE_LIMIT_BURST", 20u32, 1)?,
        })
    }
}

/// How the log stream verifies its callers' JWTs.
#[derive(Debug, Clone)]
pub enum StreamAuth {
    /// `PJ_JWT_SECRET` is set: HS256 tokens signed with it (Supabase's legacy secret), with the
    /// first of `PJ_JWT_AUDIENCE` as the required audience and `PJ_JWT_ISSUER` as the required
    /// issuer, each when given.
    SharedSecret {
        secret: SecretString,
        audience: Option<String>,
        issuer: Option<String>,
    },
    /// The issuer's keys, from `{PJ_JWT_ISSUER}/.well-known/openid-configuration`, as API
    /// Gateway's JWT authorizer checks them: the issuer exactly and one of `PJ_JWT_AUDIENCE`.
    Issuer {
        issuer: String,
        audiences: Vec<String>,
    },
}

impl StreamAuth {
    pub fn from_env(env: &Env) -> Result<StreamAuth, ConfigError> {
        let audiences: Vec<String> = env
            .get("PJ_JWT_AUDIENCE")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(secret) = env.secret("PJ_JWT_SECRET") {
            return Ok(StreamAuth::SharedSecret {
                secret,
                audience: audiences.into_iter().next(),
                // Compared with `iss` exactly, as for the JWKS path; any string an issuer uses.
                issuer: env.get("PJ_JWT_ISSUER").map(|i| i.trim().to_owned()),
            });
        }
        // The issuer is compared with `iss` exactly (Auth0's ends with a slash): kept as given.
        let issuer = env.required("PJ_JWT_ISSUER")?;
        if !is_http_url(&issuer) {
            return Err(ConfigError::invalid(
                "PJ_JWT_ISSUER",
                format!("must be the issuer's https:// URL, not {issuer:?}"),
            ));
        }
        Ok(StreamAuth::Issuer { issuer, audiences })
    }
}

/// `PJ_STREAM_POLL_MS`: how often the log stream looks for new lines and status changes
/// (writers run in other functions, so nothing wakes it), default 1000.
pub fn stream_poll(env: &Env) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(env.number(
        "PJ_STREAM_POLL_MS",
        1_000u64,
        100,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![("PJ_TABLE_NAME", "pj-table")]
    }

    #[test]
    fn defaults_should_match_the_template() {
        let core = CoreConfig::from_env(&Env::from_pairs(minimal())).unwrap();
        assert_eq!(core.table, "pj-table");
        assert_eq!(core.metrics_namespace, "PithyJaunt");
        assert_eq!(core.runner, RunnerKind::GithubActions);
        assert_eq!(core.task_timeout, Duration::from_secs(600));
        assert_eq!(core.max_attempts, 3);
        assert_eq!(core.dispatch_max_receives, 5);
    }

    #[test]
    fn when_a_required_variable_is_missing_should_name_it() {
        let err = CoreConfig::from_env(&Env::from_pairs([("PJ_RUNNER", "daytona")])).unwrap_err();
        assert_eq!(err.variable(), "PJ_TABLE_NAME");
        assert!(format!("{err:?}").starts_with("PJ_TABLE_NAME is not set"));
        let err =
            queue_urls(&Env::from_pairs([("PJ_DISPATCH_QUEUE_URL", "http://q/d")])).unwrap_err();
        assert_eq!(err.variable(), "PJ_NOTIFY_QUEUE_URL");
    }

    #[test]
    fn when_a_value_is_bad_should_name_the_variable() {
        for (name, value) in [
            ("PJ_RUNNER", "local"),
            ("PJ_RUNNER", "jenkins"),
            ("PJ_MAX_ATTEMPTS", "0"),
            ("PJ_TASK_TIMEOUT_SECS", "ten"),
            ("PJ_DEFAULT_MODEL", "gpt-4.1"),
            ("GITHUB_API_URL", "api.github.com"),
        ] {
            let mut pairs = minimal();
            pairs.push((name, value));
            let err = CoreConfig::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.variable(), name, "{err}");
        }
        let err = email_from(&Env::from_pairs([("PJ_EMAIL_FROM", "nobody")])).unwrap_err();
        assert_eq!(err.variable(), "PJ_EMAIL_FROM");
    }

    #[test]
    fn the_stream_takes_a_shared_secret_before_the_issuer() {
        let env = Env::from_pairs([
            ("PJ_JWT_SECRET", "a-secret-of-enough-length-0123456789"),
            ("PJ_JWT_ISSUER", "https://issuer.example"),
            ("PJ_JWT_AUDIENCE", "authenticated, other"),
        ]);
        match StreamAuth::from_env(&env).unwrap() {
            StreamAuth::SharedSecret {
                audience, issuer, ..
            } => {
                assert_eq!(audience.as_deref(), Some("authenticated"));
                // HS256 tokens are held to the issuer too when one is configured.
                assert_eq!(issuer.as_deref(), Some("https://issuer.example"));
            }
            other => panic!("expected the shared secret, got {other:?}"),
        }
        let env = Env::from_pairs([("PJ_JWT_SECRET", "a-secret-of-enough-length-0123456789")]);
        match StreamAuth::from_env(&env).unwrap() {
            StreamAuth::SharedSecret {
                audience, issuer, ..
            } => {
                assert_eq!(audience, None);
                assert_eq!(issuer, None);
            }
            other => panic!("expected the shared secret, got {other:?}"),
        }
        let env = Env::from_pairs([
            ("PJ_JWT_ISSUER", "https://tenant.auth0.com/"),
            ("PJ_JWT_AUDIENCE", "api-a,api-b"),
        ]);
        match StreamAuth::from_env(&env).unwrap() {
            StreamAuth::Issuer { issuer, audiences } => {
                assert_eq!(issuer, "https://tenant.auth0.com/");
                assert_eq!(audiences, ["api-a", "api-b"]);
            }
            other => panic!("expected the issuer, got {other:?}"),
        }
        let nothing = Env::from_pairs(Vec::<(String, String)>::new());
        let err = StreamAuth::from_env(&nothing).unwrap_err();
        assert_eq!(err.variable(), "PJ_JWT_ISSUER");
    }

    #[test]
    fn secrets_should_never_show_in_errors() {
        let env = Env::from_pairs([("PJ_JWT_ISSUER", "not a url SECRETVALUE")]);
        // The issuer is no secret, but a shared secret never reaches a message.
        let err = StreamAuth::from_env(&env).unwrap_err();
        assert_eq!(err.variable(), "PJ_JWT_ISSUER");
        let debug = format!(
            "{:?}",
            StreamAuth::from_env(&Env::from_pairs([("PJ_JWT_SECRET", "SECRETVALUE-0123")]))
                .unwrap()
        );
        assert!(!debug.contains("SECRETVALUE"), "{debug}");
    }
}
