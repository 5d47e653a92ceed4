//! The configuration both deployments share, read once, each default defined once (the core's
//! `Settings::default()` and `Policy::default()` hold them), and the core's [`Settings`] built
//! from it.

use std::time::Duration;

use pj_core::capacity::Capacity;
use pj_core::create::RepoPolicy;
use pj_core::engine::{RunnerDefaults, Settings};
use pj_core::kinds::browser::{BrowserChoice, BrowserOffer};
use pj_core::kinds::config::check_ghl_id;
use pj_core::kinds::ghl::GhlSettings;
use pj_core::machine::{MAX_ATTEMPTS_PER_TASK, Policy};
use pj_core::net::NetworkPolicy;
use pj_core::ratelimit::{DEFAULT_BURST, DEFAULT_PER_MINUTE, RateLimiter};
use pj_core::repos::{RepoPattern, RepoRules};
use pj_core::task::{ModelSpec, Provider, RunnerKind};

use crate::env::{ConfigError, Env};

/// Which deployment reads the configuration: what differs between them is said here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// `pj serve`: the local runner by default, at most 16 attempts at once by default.
    Embedded,
    /// The Lambda functions: a remote runner, no limit on attempts in all by default (the
    /// dispatch function's concurrency bounds it).
    Lambda,
}

/// The most attempts under way at once in `pj serve`, unless `PJ_MAX_RUNNING` says otherwise.
pub const EMBEDDED_MAX_RUNNING: u32 = 16;
/// The most attempts of one user under way at once, unless `PJ_MAX_RUNNING_PER_USER` says.
pub const MAX_RUNNING_PER_USER: u32 = 4;

/// The per-user token bucket of every request that changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `PJ_RATE_LIMIT_PER_MINUTE`.
    pub per_minute: u32,
    /// `PJ_RATE_LIMIT_BURST`.
    pub burst: u32,
}

impl RateLimits {
    pub fn limiter(&self) -> RateLimiter {
        RateLimiter::new(self.per_minute, self.burst)
    }
}

/// What every part of either deployment that changes tasks decides with.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `PJ_RUNNER`.
    pub runner: RunnerKind,
    /// `PJ_TASK_TIMEOUT_SECS`.
    pub task_timeout: Duration,
    /// `PJ_MAX_ATTEMPTS`, at most [`MAX_ATTEMPTS_PER_TASK`].
    pub max_attempts: u32,
    /// `PJ_LOST_DISPATCH_SECS`.
    pub lost_dispatch_after: Duration,
    /// `PJ_DISPATCH_MAX_RECEIVES`.
    pub dispatch_max_receives: u32,
    /// `PJ_DEFAULT_MODEL` (`provider/name`); by default OpenAI's, or Anthropic's when only
    /// `ANTHROPIC_API_KEY` is set.
    pub default_model: ModelSpec,
    /// `GITHUB_API_URL`, `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`: passed to runners.
    pub github_api_url: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    /// `KEEP_ALIVE`: passed to runners.
    pub keep_alive: bool,
    /// `PJ_ALLOWED_REPOS` and `PJ_ALLOW_PRIVATE_NETWORKS`.
    pub repo_rules: RepoRules,
    /// `PJ_MAX_RUNNING_PER_USER` and `PJ_MAX_RUNNING`.
    pub capacity: Capacity,
    /// `PJ_RATE_LIMIT_PER_MINUTE` and `PJ_RATE_LIMIT_BURST`.
    pub rate_limits: RateLimits,
    /// `GHL_API_URL` and `GHL_LOCATION_ID`.
    pub ghl: GhlSettings,
    /// `PJ_MESSAGE_RETRY_SECS`: an outbound message's first retry.
    pub message_retry_base: Duration,
    /// `PJ_MAX_COST_USD`: the model spend at which an attempt stops and a task gets no new
    /// attempt; unset, no cap.
    pub max_cost_usd: Option<f64>,
    /// The browser kinds' browsers.
    pub browsers: BrowserConfig,
}

/// The browsers of `browser_automation` and `data_extraction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserConfig {
    /// `PJ_BROWSER`: what a task without `browser` gets (`local` in `pj serve`; on AWS only
    /// `browserbase`, the one there is).
    pub default: BrowserChoice,
    /// `PJ_CHROMIUM`: the local Chromium; unset, `chromium` (or `chromium-browser`,
    /// `google-chrome`) on `PATH`.
    pub chromium: Option<std::path::PathBuf>,
    /// `BROWSERBASE_PROJECT_ID`: with it (and the key: `BROWSERBASE_API_KEY`, on AWS the
    /// secret's `browserbase_api_key`) tasks may use Browserbase.
    pub browserbase_project: Option<String>,
    /// `BROWSERBASE_API_URL`.
    pub browserbase_api_url: String,
    /// `PJ_MAX_BROWSERS`: browsers running at once in one process; a task waits for room.
    pub max_at_once: usize,
    /// What tasks may ask for.
    pub offer: BrowserOffer,
}

/// Browsers at once by default: each Chromium wants about a core and a few hundred MB.
pub const DEFAULT_MAX_BROWSERS: usize = 2;
/// Browserbase's API, unless `BROWSERBASE_API_URL` says otherwise.
pub const DEFAULT_BROWSERBASE_API_URL: &str = "https://api.browserbase.com";

impl BrowserConfig {
    fn from_env(env: &Env, deployment: Deployment) -> Result<BrowserConfig, ConfigError> {
        let default = match (env.get("PJ_BROWSER").as_deref(), deployment) {
            (None, Deployment::Embedded) => BrowserChoice::Local,
            (None, Deployment::Lambda) => BrowserChoice::Browserbase,
            (Some("browserbase"), _) => BrowserChoice::Browserbase,
            (Some("local"), Deployment::Embedded) => BrowserChoice::Local,
            (Some("local"), Deployment::Lambda) => {
                return Err(ConfigError::invalid(
                    "PJ_BROWSER",
                    "must be browserbase on AWS Lambda (a local Chromium runs only in pj serve)",
                ));
            }
            (Some(other), _) => {
                return Err(ConfigError::invalid(
                    "PJ_BROWSER",
                    format!("must be local or browserbase, not {other:?}"),
                ));
            }
        };
        let browserbase_project = env
            .get("BROWSERBASE_PROJECT_ID")
            .filter(|p| !p.trim().is_empty());
        if default == BrowserChoice::Browserbase
            && browserbase_project.is_none()
            && env.get("PJ_BROWSER").is_some()
        {
            return Err(ConfigError::invalid(
                "BROWSERBASE_PROJECT_ID",
                "is required with PJ_BROWSER=browserbase",
            ));
        }
        let local = deployment == Deployment::Embedded;
        let browserbase = browserbase_project.is_some();
        let offer = BrowserOffer {
            default: [default, BrowserChoice::Local, BrowserChoice::Browserbase]
                .into_iter()
                .find(|c| match c {
                    BrowserChoice::Local => local,
                    BrowserChoice::Browserbase => browserbase,
                }),
            local,
            browserbase,
        };
        Ok(BrowserConfig {
            default,
            chromium: env.get("PJ_CHROMIUM").map(std::path::PathBuf::from),
            browserbase_project,
            browserbase_api_url: env
                .url("BROWSERBASE_API_URL")?
                .unwrap_or_else(|| DEFAULT_BROWSERBASE_API_URL.to_owned()),
            max_at_once: env.number("PJ_MAX_BROWSERS", DEFAULT_MAX_BROWSERS, 1)?,
            offer,
        })
    }
}

impl CoreConfig {
    pub fn from_env(env: &Env, deployment: Deployment) -> Result<CoreConfig, ConfigError> {
        let defaults = Settings::default();
        let policy = Policy::default();
        let runner = match (env.get("PJ_RUNNER"), deployment) {
            (None, Deployment::Embedded) => RunnerKind::Local,
            (None, Deployment::Lambda) => RunnerKind::GithubActions,
            (Some(raw), _) => match RunnerKind::parse(&raw) {
                Ok(RunnerKind::Local) if deployment == Deployment::Lambda => {
                    return Err(ConfigError::invalid(
                        "PJ_RUNNER",
                        "must be github_actions or daytona on AWS Lambda (local runs only in pj serve)",
                    ));
                }
                Ok(kind) => kind,
                Err(_) => {
                    return Err(ConfigError::invalid(
                        "PJ_RUNNER",
                        format!("must be local, github_actions or daytona, not {raw:?}"),
                    ));
                }
            },
        };
        let default_model = match env.get("PJ_DEFAULT_MODEL") {
            Some(raw) => ModelSpec::parse_spec(&raw)
                .map_err(|problem| ConfigError::invalid("PJ_DEFAULT_MODEL", problem))?,
            None if env.get("OPENAI_API_KEY").is_none()
                && env.get("ANTHROPIC_API_KEY").is_some() =>
            {
                ModelSpec {
                    provider: Provider::Anthropic,
                    name: ANTHROPIC_DEFAULT_MODEL.to_owned(),
                }
            }
            None => defaults.runner.default_model.clone(),
        };
        let max_attempts = env.number("PJ_MAX_ATTEMPTS", defaults.max_attempts, 1)?;
        if max_attempts > MAX_ATTEMPTS_PER_TASK {
            return Err(ConfigError::invalid(
                "PJ_MAX_ATTEMPTS",
                format!("must be at most {MAX_ATTEMPTS_PER_TASK}, not {max_attempts}"),
            ));
        }
        let allowed = match env.get("PJ_ALLOWED_REPOS") {
            None => Vec::new(),
            Some(raw) => RepoPattern::parse_list(&raw)
                .map_err(|problem| ConfigError::invalid("PJ_ALLOWED_REPOS", problem))?,
        };
        let total = match (env.get("PJ_MAX_RUNNING"), deployment) {
            (Some(_), _) => Some(env.number("PJ_MAX_RUNNING", EMBEDDED_MAX_RUNNING, 1)?),
            (None, Deployment::Embedded) => Some(EMBEDDED_MAX_RUNNING),
            (None, Deployment::Lambda) => None,
        };
        let max_cost_usd = match env.get(MAX_COST_VAR) {
            None => None,
            Some(raw) => Some(
                raw.parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            MAX_COST_VAR,
                            format!("must be a positive amount of US dollars such as 5 or 0.50, not {raw:?}"),
                        )
                    })?,
            ),
        };
        Ok(CoreConfig {
            browsers: BrowserConfig::from_env(env, deployment)?,
            max_cost_usd,
            runner,
            task_timeout: Duration::from_secs(env.number(
                "PJ_TASK_TIMEOUT_SECS",
                seconds(policy.task_timeout),
                1,
            )?),
            max_attempts,
            lost_dispatch_after: Duration::from_secs(env.number(
                "PJ_LOST_DISPATCH_SECS",
                seconds(policy.lost_dispatch_after),
                5,
            )?),
            dispatch_max_receives: env.number(
                "PJ_DISPATCH_MAX_RECEIVES",
                defaults.dispatch_max_receives,
                1,
            )?,
            default_model,
            github_api_url: env.url("GITHUB_API_URL")?,
            openai_base_url: env.url("OPENAI_BASE_URL")?,
            anthropic_base_url: env.url("ANTHROPIC_BASE_URL")?,
            keep_alive: env.flag("KEEP_ALIVE"),
            repo_rules: RepoRules {
                allowed,
                network: NetworkPolicy {
                    allow_private: env.boolean("PJ_ALLOW_PRIVATE_NETWORKS")?.unwrap_or(false),
                },
            },
            capacity: Capacity {
                per_user: Some(env.number("PJ_MAX_RUNNING_PER_USER", MAX_RUNNING_PER_USER, 1)?),
                total,
            },
            rate_limits: RateLimits {
                per_minute: env.number("PJ_RATE_LIMIT_PER_MINUTE", DEFAULT_PER_MINUTE, 1)?,
                burst: env.number("PJ_RATE_LIMIT_BURST", DEFAULT_BURST, 1)?,
            },
            ghl: GhlSettings {
                api_url: env
                    .url("GHL_API_URL")?
                    .unwrap_or(defaults.ghl.api_url.clone()),
                location_id: match env.get("GHL_LOCATION_ID") {
                    None => None,
                    Some(id) => {
                        check_ghl_id(&id)
                            .map_err(|problem| ConfigError::invalid("GHL_LOCATION_ID", problem))?;
                        Some(id)
                    }
                },
            },
            message_retry_base: Duration::from_secs(env.number(
                "PJ_MESSAGE_RETRY_SECS",
                defaults.message_retry_base.as_secs(),
                1,
            )?),
        })
    }

    /// The state machine's policy.
    pub fn policy(&self) -> Policy {
        Policy {
            runner: self.runner,
            task_timeout: chrono_duration(self.task_timeout),
            lost_dispatch_after: chrono_duration(self.lost_dispatch_after),
            max_cost_usd: self.max_cost_usd,
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

    /// The core's settings; `public_url` and `email_from` where the caller has them, the
    /// core's defaults elsewhere.
    pub fn settings(
        &self,
        public_url: Option<&str>,
        email_from: Option<&str>,
        repos: RepoPolicy,
    ) -> Settings {
        let defaults = Settings::default();
        Settings {
            public_url: public_url.map_or(defaults.public_url.clone(), str::to_owned),
            max_attempts: self.max_attempts,
            policy: self.policy(),
            repos,
            repo_rules: self.repo_rules.clone(),
            capacity: self.capacity,
            email_from: email_from.map_or(defaults.email_from.clone(), str::to_owned),
            dispatch_max_receives: self.dispatch_max_receives,
            runner: self.runner_defaults(),
            ghl: self.ghl.clone(),
            message_retry_base: self.message_retry_base,
            browsers: self.browsers.offer,
            ..defaults
        }
    }
}

/// The spending cap's variable.
pub const MAX_COST_VAR: &str = "PJ_MAX_COST_USD";

/// The model of a task that names none when only Anthropic's key is configured.
pub const ANTHROPIC_DEFAULT_MODEL: &str = Provider::Anthropic.default_model();

fn seconds(d: chrono::Duration) -> u64 {
    u64::try_from(d.num_seconds()).unwrap_or(0)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)], deployment: Deployment) -> Result<CoreConfig, ConfigError> {
        CoreConfig::from_env(&Env::from_pairs(pairs.iter().copied()), deployment)
    }

    #[test]
    fn both_deployments_share_the_cores_defaults_and_differ_only_where_said() {
        let embedded = read(&[], Deployment::Embedded).expect("defaults");
        let lambda = read(&[], Deployment::Lambda).expect("defaults");
        let settings = Settings::default();
        for c in [&embedded, &lambda] {
            assert_eq!(c.max_attempts, settings.max_attempts);
            assert_eq!(c.dispatch_max_receives, settings.dispatch_max_receives);
            assert_eq!(c.policy().task_timeout, Policy::default().task_timeout);
            assert_eq!(c.default_model, settings.runner.default_model);
            assert_eq!(c.rate_limits.per_minute, DEFAULT_PER_MINUTE);
            assert_eq!(c.capacity.per_user, Some(MAX_RUNNING_PER_USER));
        }
        assert_eq!(embedded.runner, RunnerKind::Local);
        assert_eq!(lambda.runner, RunnerKind::GithubActions);
        assert_eq!(embedded.capacity.total, Some(EMBEDDED_MAX_RUNNING));
        assert_eq!(lambda.capacity.total, None);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("PJ_RUNNER", "jenkins"),
            ("PJ_MAX_ATTEMPTS", "0"),
            ("PJ_MAX_ATTEMPTS", "21"),
            ("PJ_TASK_TIMEOUT_SECS", "ten"),
            ("PJ_DEFAULT_MODEL", "gpt-4.1"),
            ("PJ_DEFAULT_MODEL", "mistral/large"),
            ("GITHUB_API_URL", "api.github.com"),
            ("PJ_ALLOWED_REPOS", "github.com"),
            ("PJ_ALLOW_PRIVATE_NETWORKS", "perhaps"),
            ("PJ_MAX_RUNNING", "0"),
            ("PJ_MAX_COST_USD", "0"),
            ("PJ_MAX_COST_USD", "-2"),
            ("PJ_MAX_COST_USD", "five"),
            ("PJ_MAX_COST_USD", "inf"),
        ] {
            let err = read(&[(name, value)], Deployment::Embedded).expect_err(name);
            assert_eq!(err.variable(), name, "{err}");
        }
        let err = read(&[("PJ_RUNNER", "local")], Deployment::Lambda).expect_err("local");
        assert_eq!(err.variable(), "PJ_RUNNER");
    }

    #[test]
    fn the_spending_cap_is_a_positive_decimal_and_reaches_the_machine() {
        let c = read(&[("PJ_MAX_COST_USD", "2.50")], Deployment::Lambda).expect("ok");
        assert_eq!(c.max_cost_usd, Some(2.5));
        assert_eq!(c.policy().max_cost_usd, Some(2.5));
        let s = c.settings(None, None, RepoPolicy::HttpsOnly);
        assert_eq!(s.policy.max_cost_usd, Some(2.5));
        let c = read(&[], Deployment::Embedded).expect("ok");
        assert_eq!(c.policy().max_cost_usd, None, "no cap unless set");
    }

    #[test]
    fn the_model_is_anthropics_when_only_its_key_is_set() {
        let c = read(&[("ANTHROPIC_API_KEY", "sk-ant-x")], Deployment::Embedded).expect("ok");
        assert_eq!(c.default_model.provider, Provider::Anthropic);
        let c = read(
            &[("PJ_DEFAULT_MODEL", "anthropic/claude-opus-4")],
            Deployment::Lambda,
        )
        .expect("ok");
        assert_eq!(c.default_model.name, "claude-opus-4");
    }
}
