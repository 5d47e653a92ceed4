//! Typed configuration of the functions, read once at start from the environment. A missing or
//! bad value stops the start with a message that names the variable (and never shows a secret).
//!
//! Each piece reads the variables of one capability; a function's `config.rs` composes the
//! pieces it needs, so it reads exactly what `infra/README.md` says it gets.

use std::time::Duration;

pub use pj_aws::QueueUrls;
use secrecy::SecretString;

pub use pj_app::env::is_http_url;
pub use pj_app::{ConfigError, Env, RateLimits};

/// What every function gets (`template.yaml`'s `Globals`): the configuration both deployments
/// share, plus the table and the metrics namespace.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// `PJ_TABLE_NAME`: the DynamoDB table.
    pub table: String,
    /// `PJ_METRICS_NAMESPACE`, default `PithyJaunt`.
    pub metrics_namespace: String,
    /// Everything else, as `pj serve` reads it ([`pj_app::CoreConfig`]).
    pub shared: pj_app::CoreConfig,
}

impl CoreConfig {
    pub fn from_env(env: &Env) -> Result<CoreConfig, ConfigError> {
        Ok(CoreConfig {
            table: env.required("PJ_TABLE_NAME")?,
            metrics_namespace: env
                .get(pj_metrics::NAMESPACE_ENV)
                .unwrap_or_else(|| pj_metrics::NAMESPACE.to_owned()),
            shared: pj_app::CoreConfig::from_env(env, pj_app::Deployment::Lambda)?,
        })
    }
}

/// `PJ_DISPATCH_QUEUE_URL`, `PJ_NOTIFY_QUEUE_URL` and `PJ_TASKS_QUEUE_URL`.
pub fn queue_urls(env: &Env) -> Result<QueueUrls, ConfigError> {
    Ok(QueueUrls {
        dispatch: env.required_url("PJ_DISPATCH_QUEUE_URL")?,
        notify: env.required_url("PJ_NOTIFY_QUEUE_URL")?,
        tasks: env.required_url("PJ_TASKS_QUEUE_URL")?,
    })
}

/// `PJ_SECRET_ARN`: the Secrets Manager secret (an ARN or a name).
pub fn secret_id(env: &Env) -> Result<String, ConfigError> {
    env.required("PJ_SECRET_ARN")
}

/// `PJ_ARTIFACTS_BUCKET`: the S3 bucket of the artifacts' bytes (`api` reads, `webhook` and
/// `tasks` write).
pub fn artifacts_bucket(env: &Env) -> Result<String, ConfigError> {
    env.required("PJ_ARTIFACTS_BUCKET")
}

/// `PJ_PUBLIC_URL`: the API's base URL, which runners call back to and emails link to.
pub fn public_url(env: &Env) -> Result<String, ConfigError> {
    env.required_url("PJ_PUBLIC_URL")
}

/// `PJ_LOG_STREAM_URL` (`api`): the `log-stream` function's URL, where the web page follows a
/// task's log (named to the page and allowed by its Content-Security-Policy). Unset, the page
/// looks on its own origin.
#[cfg(feature = "http")]
pub fn page(env: &Env) -> Result<pj_http::PageConfig, ConfigError> {
    match env.get("PJ_LOG_STREAM_URL") {
        None => Ok(pj_http::PageConfig::same_origin()),
        Some(url) => pj_http::PageConfig::with_log_stream_url(&url)
            .map_err(|e| ConfigError::invalid("PJ_LOG_STREAM_URL", e.to_string())),
    }
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
    use pj_core::task::RunnerKind;

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![("PJ_TABLE_NAME", "pj-table")]
    }

    #[test]
    fn defaults_should_match_the_template() {
        let core = CoreConfig::from_env(&Env::from_pairs(minimal())).unwrap();
        assert_eq!(core.table, "pj-table");
        assert_eq!(core.metrics_namespace, "PithyJaunt");
        assert_eq!(core.shared.runner, RunnerKind::GithubActions);
        assert_eq!(core.shared.task_timeout, Duration::from_secs(600));
        assert_eq!(core.shared.max_attempts, 3);
        assert_eq!(core.shared.dispatch_max_receives, 5);
    }

    #[test]
    fn when_a_required_variable_is_missing_should_name_it() {
        let err = CoreConfig::from_env(&Env::from_pairs([("PJ_RUNNER", "daytona")])).unwrap_err();
        assert_eq!(err.variable(), "PJ_TABLE_NAME");
        assert!(format!("{err:?}").starts_with("PJ_TABLE_NAME is not set"));
        let err =
            queue_urls(&Env::from_pairs([("PJ_DISPATCH_QUEUE_URL", "http://q/d")])).unwrap_err();
        assert_eq!(err.variable(), "PJ_NOTIFY_QUEUE_URL");
        let err = artifacts_bucket(&Env::from_pairs(minimal())).unwrap_err();
        assert_eq!(err.variable(), "PJ_ARTIFACTS_BUCKET");
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
