//! The configuration of `pj serve`, read once from the environment; a bad value stops the start
//! with a message that names the variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pj_core::capacity::Capacity;
use pj_core::machine::MAX_ATTEMPTS_PER_TASK;
use pj_core::net::NetworkPolicy;
use pj_core::repos::{RepoPattern, RepoRules};
use pj_core::task::{ModelSpec, Provider, RunnerKind};
use secrecy::SecretString;

/// Everything `pj serve` reads from its environment.
#[derive(Debug)]
pub struct ServeConfig {
    pub auth_tokens: Option<String>,
    pub jwt_secret: Option<SecretString>,
    pub jwt_audience: Option<String>,
    /// The required `iss` of HS256 JWTs, when set (`PJ_JWT_ISSUER`).
    pub jwt_issuer: Option<String>,
    pub webhook_secret: Option<SecretString>,
    pub public_url: Option<String>,
    pub runner: RunnerKind,
    pub runner_cmd: Option<String>,
    pub task_timeout: Duration,
    pub max_attempts: u32,
    pub sweep_interval: Duration,
    pub email_from: String,
    pub smtp_url: Option<SecretString>,
    pub lost_dispatch_after: Duration,
    pub dispatch_max_receives: u32,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    pub default_model: ModelSpec,
    pub github_token: Option<SecretString>,
    /// The remote runners' credentials, under the names of the AWS secret's keys:
    /// `github_app_id`, `github_app_private_key`, `github_app_installation_id`,
    /// `daytona_api_key`.
    pub runner_secrets: BTreeMap<String, SecretString>,
    pub openai_api_key: Option<SecretString>,
    pub anthropic_api_key: Option<SecretString>,
    pub github_api_url: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub keep_alive: bool,
    /// `PJ_ALLOW_LOCAL_REPOS`; unset: allowed only while the dev token is the one way in.
    pub allow_local_repos: Option<bool>,
    /// `PJ_ALLOWED_REPOS` and `PJ_ALLOW_PRIVATE_NETWORKS`.
    pub repo_rules: RepoRules,
    /// `PJ_MAX_RUNNING_PER_USER` (default 4) and `PJ_MAX_RUNNING` (default 16).
    pub capacity: Capacity,
    /// `PJ_WORK_DIR`: where local runners' workspaces go; outside the data dir.
    pub work_dir: Option<PathBuf>,
    /// `PJ_RUNNER_GIT_CONFIG`: a git configuration file handed to local runners.
    pub runner_git_config: Option<PathBuf>,
    /// `PJ_METRICS_TOKEN`: the bearer token `GET /metrics` needs; unset, it is open.
    pub metrics_token: Option<SecretString>,
}

/// Reads a variable; an empty value counts as unset.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn secret(name: &str) -> Option<SecretString> {
    var(name).map(SecretString::from)
}

/// `true`/`1`/`yes` or `false`/`0`/`no`; anything else stops the start.
fn flag(name: &str) -> anyhow::Result<Option<bool>> {
    match var(name) {
        None => Ok(None),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => bail!("{name} must be true or false, not {raw:?}"),
        },
    }
}

fn number<T>(name: &str, default: T, min: T) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<T>() {
            Ok(v) if v >= min => Ok(v),
            _ => bail!("{name} must be a whole number of at least {min}, not {raw:?}"),
        },
    }
}

fn url(name: &str) -> anyhow::Result<Option<String>> {
    match var(name) {
        None => Ok(None),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Ok(Some(u.trim_end_matches('/').to_owned()))
        }
        Some(u) => bail!("{name} must be an http:// or https:// URL, not {u:?}"),
    }
}

impl ServeConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let runner = match var("PJ_RUNNER") {
            None => RunnerKind::Local,
            Some(r) => RunnerKind::parse(r.trim()).map_err(|_| {
                anyhow::anyhow!("PJ_RUNNER must be local, github_actions or daytona, not {r:?}")
            })?,
        };
        let default_model = match var("PJ_DEFAULT_MODEL") {
            Some(raw) => parse_model(&raw).context("PJ_DEFAULT_MODEL")?,
            None if var("OPENAI_API_KEY").is_none() && var("ANTHROPIC_API_KEY").is_some() => {
                ModelSpec {
                    provider: Provider::Anthropic,
                    name: "claude-sonnet-4-5".into(),
                }
            }
            None => ModelSpec {
                provider: Provider::Openai,
                name: "gpt-4.1".into(),
            },
        };
        Ok(ServeConfig {
            auth_tokens: var("PJ_AUTH_TOKENS"),
            jwt_secret: secret("PJ_JWT_SECRET"),
            jwt_audience: var("PJ_JWT_AUDIENCE").map(|a| a.trim().to_owned()),
            jwt_issuer: var("PJ_JWT_ISSUER").map(|i| i.trim().to_owned()),
            webhook_secret: secret("PJ_WEBHOOK_SECRET"),
            public_url: url("PJ_PUBLIC_URL")?,
            runner,
            runner_cmd: var("PJ_RUNNER_CMD"),
            task_timeout: Duration::from_secs(number("PJ_TASK_TIMEOUT_SECS", 600u64, 1)?),
            max_attempts: match number("PJ_MAX_ATTEMPTS", 3u32, 1)? {
                n if n > MAX_ATTEMPTS_PER_TASK => {
                    bail!("PJ_MAX_ATTEMPTS must be at most {MAX_ATTEMPTS_PER_TASK}, not {n}")
                }
                n => n,
            },
            sweep_interval: Duration::from_secs(number("PJ_SWEEP_INTERVAL_SECS", 10u64, 1)?),
            email_from: var("PJ_EMAIL_FROM")
                .unwrap_or_else(|| "Pithy Jaunt <pithy-jaunt@localhost>".into()),
            smtp_url: secret("PJ_SMTP_URL"),
            lost_dispatch_after: Duration::from_secs(number("PJ_LOST_DISPATCH_SECS", 300u64, 5)?),
            dispatch_max_receives: number("PJ_DISPATCH_MAX_RECEIVES", 5u32, 1)?,
            rate_limit_per_minute: number("PJ_RATE_LIMIT_PER_MINUTE", 60u32, 1)?,
            rate_limit_burst: number("PJ_RATE_LIMIT_BURST", 20u32, 1)?,
            default_model,
            github_token: secret("GITHUB_TOKEN"),
            runner_secrets: runner_secrets()?,
            openai_api_key: secret("OPENAI_API_KEY"),
            anthropic_api_key: secret("ANTHROPIC_API_KEY"),
            github_api_url: url("GITHUB_API_URL")?,
            openai_base_url: url("OPENAI_BASE_URL")?,
            anthropic_base_url: url("ANTHROPIC_BASE_URL")?,
            keep_alive: var("KEEP_ALIVE")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            allow_local_repos: flag("PJ_ALLOW_LOCAL_REPOS")?,
            repo_rules: RepoRules {
                allowed: match var("PJ_ALLOWED_REPOS") {
                    None => Vec::new(),
                    Some(raw) => RepoPattern::parse_list(&raw)
                        .map_err(|e| anyhow::anyhow!("PJ_ALLOWED_REPOS: {e}"))?,
                },
                network: NetworkPolicy {
                    allow_private: flag("PJ_ALLOW_PRIVATE_NETWORKS")?.unwrap_or(false),
                },
            },
            capacity: Capacity {
                per_user: Some(number("PJ_MAX_RUNNING_PER_USER", 4u32, 1)?),
                total: Some(number("PJ_MAX_RUNNING", 16u32, 1)?),
            },
            work_dir: var("PJ_WORK_DIR").map(PathBuf::from),
            runner_git_config: match var("PJ_RUNNER_GIT_CONFIG") {
                None => None,
                Some(path) if Path::new(&path).is_file() => Some(PathBuf::from(path)),
                Some(path) => bail!("PJ_RUNNER_GIT_CONFIG: {path} is not a file"),
            },
            metrics_token: match var("PJ_METRICS_TOKEN") {
                None => None,
                Some(t) if t.trim() != t || t.chars().any(|c| !c.is_ascii_graphic()) => {
                    bail!("PJ_METRICS_TOKEN must be visible ASCII without spaces")
                }
                Some(t) => Some(SecretString::from(t)),
            },
        })
    }
}

/// `PJ_GITHUB_APP_ID`, `PJ_GITHUB_APP_PRIVATE_KEY` (the PEM text) or
/// `PJ_GITHUB_APP_PRIVATE_KEY_FILE`, `PJ_GITHUB_APP_INSTALLATION_ID`, `DAYTONA_API_KEY`.
fn runner_secrets() -> anyhow::Result<BTreeMap<String, SecretString>> {
    let mut out = BTreeMap::new();
    let pairs = [
        ("PJ_GITHUB_APP_ID", "github_app_id"),
        ("PJ_GITHUB_APP_PRIVATE_KEY", "github_app_private_key"),
        (
            "PJ_GITHUB_APP_INSTALLATION_ID",
            "github_app_installation_id",
        ),
        ("DAYTONA_API_KEY", "daytona_api_key"),
    ];
    for (variable, key) in pairs {
        if let Some(v) = secret(variable) {
            out.insert(key.to_owned(), v);
        }
    }
    if let Some(path) = var("PJ_GITHUB_APP_PRIVATE_KEY_FILE") {
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("PJ_GITHUB_APP_PRIVATE_KEY_FILE: could not read {path}"))?;
        out.insert("github_app_private_key".into(), SecretString::from(pem));
    }
    Ok(out)
}

/// `provider/name`, e.g. `openai/gpt-4.1` or `anthropic/claude-sonnet-4-5`.
fn parse_model(raw: &str) -> anyhow::Result<ModelSpec> {
    let (provider, name) = raw
        .split_once('/')
        .context("must be provider/name, such as openai/gpt-4.1")?;
    let provider = match provider {
        "openai" => Provider::Openai,
        "anthropic" => Provider::Anthropic,
        other => bail!("the provider must be openai or anthropic, not {other:?}"),
    };
    if name.is_empty() {
        bail!("the model name is empty");
    }
    Ok(ModelSpec {
        provider,
        name: name.to_owned(),
    })
}

/// The runner command: `PJ_RUNNER_CMD`, else `pj-runner run`, preferring the `pj-runner` built
/// beside this `pj` so a fresh checkout works without installing anything.
pub fn runner_command(configured: Option<&str>) -> String {
    if let Some(cmd) = configured {
        return cmd.to_owned();
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("pj-runner")))
        .filter(|p| p.is_file());
    match sibling {
        Some(path) => format!("{} run", shell_quote(&path)),
        None => "pj-runner run".to_owned(),
    }
}

/// A path as one word for a POSIX shell.
pub fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Reads a file kept in the data dir, or makes it with `make` (mode 0600). Returns the value and
/// whether it was made now.
pub fn kept_secret(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<(String, bool)> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if !existing.trim().is_empty() {
        return Ok((existing.trim().to_owned(), false));
    }
    let value = make();
    write_private(path, &value)?;
    Ok((value, true))
}

/// Writes a file only its owner can read, atomically.
pub fn write_private(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(value.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
