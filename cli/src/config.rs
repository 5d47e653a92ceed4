//! The configuration of `pj serve`, read once from the environment; a bad value stops the start
//! with a message that names the variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pj_app::{CoreConfig, Deployment, Env};
use pj_core::Settings;
use pj_core::signing::CallbackSecret;
use secrecy::{ExposeSecret, SecretString};

/// Everything `pj serve` reads from its environment: what both deployments share
/// ([`pj_app::CoreConfig`]), and what only the embedded one has.
#[derive(Debug)]
pub struct ServeConfig {
    pub core: pj_app::CoreConfig,
    pub auth_tokens: Option<String>,
    pub jwt_secret: Option<SecretString>,
    pub jwt_audience: Option<String>,
    pub jwt_issuer: Option<String>,
    pub webhook_secret: Option<SecretString>,
    pub public_url: Option<String>,
    pub runner_cmd: Option<String>,
    pub sweep_interval: Duration,
    pub email_from: String,
    pub smtp_url: Option<SecretString>,
    pub github_token: Option<SecretString>,
    /// The remote runners' credentials, under the names of the AWS secret's keys:
    /// `github_app_id`, `github_app_private_key`, `github_app_installation_id`,
    /// `daytona_api_key`.
    pub runner_secrets: BTreeMap<String, SecretString>,
    pub openai_api_key: Option<SecretString>,
    pub anthropic_api_key: Option<SecretString>,
    /// `PJ_ALLOW_LOCAL_REPOS`; unset: allowed only while the dev token is the one way in.
    pub allow_local_repos: Option<bool>,
    /// `PJ_WORK_DIR`: where local runners' workspaces go; outside the data dir.
    pub work_dir: Option<PathBuf>,
    /// `PJ_RUNNER_GIT_CONFIG`: a git configuration file handed to local runners.
    pub runner_git_config: Option<PathBuf>,
    /// The remote runner's variables (`PJ_RUNNER=github_actions` or `daytona`).
    pub remote: Option<pj_remote::RemoteConfig>,
    /// `PJ_METRICS_TOKEN`: the bearer token `GET /metrics` needs; unset, it is open.
    pub metrics_token: Option<SecretString>,
    /// `GHL_API_KEY`: GoHighLevel's Private Integration token (the `ghl_action` kind and the
    /// SMS channel).
    pub ghl_api_key: Option<SecretString>,
    /// `PJ_OUTBOUND_SECRET` (`whsec_...`): signs outbound webhooks; unset, `pj serve` keeps one
    /// of its own in the data dir.
    pub outbound_secret: Option<SecretString>,
    /// `BROWSERBASE_API_KEY`: with `BROWSERBASE_PROJECT_ID`, browser tasks may run in
    /// Browserbase.
    pub browserbase_api_key: Option<SecretString>,
}

impl ServeConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::read(&Env::process())
    }

    /// Reads `env`; the error names the variable.
    pub fn read(env: &Env) -> anyhow::Result<Self> {
        let core = CoreConfig::from_env(env, Deployment::Embedded)?;
        let remote = pj_remote::RemoteConfig::from_lookup(core.runner, |n| env.get(n))
            .map_err(|e| anyhow::anyhow!("PJ_RUNNER={}: {e}", core.runner.as_str()))?;
        Ok(ServeConfig {
            core,
            remote,
            auth_tokens: env.get("PJ_AUTH_TOKENS"),
            jwt_secret: env.secret("PJ_JWT_SECRET"),
            jwt_audience: env.get("PJ_JWT_AUDIENCE"),
            jwt_issuer: env.get("PJ_JWT_ISSUER"),
            webhook_secret: env.secret("PJ_WEBHOOK_SECRET"),
            public_url: env
                .url("PJ_PUBLIC_URL")?
                .map(|u| u.trim_end_matches('/').to_owned()),
            runner_cmd: env.get("PJ_RUNNER_CMD"),
            sweep_interval: Duration::from_secs(env.number("PJ_SWEEP_INTERVAL_SECS", 10u64, 1)?),
            email_from: env
                .get("PJ_EMAIL_FROM")
                .unwrap_or_else(|| Settings::default().email_from),
            smtp_url: env.secret("PJ_SMTP_URL"),
            github_token: env.secret("GITHUB_TOKEN"),
            runner_secrets: runner_secrets(env)?,
            openai_api_key: env.secret("OPENAI_API_KEY"),
            anthropic_api_key: env.secret("ANTHROPIC_API_KEY"),
            browserbase_api_key: env.secret("BROWSERBASE_API_KEY"),
            allow_local_repos: env.boolean("PJ_ALLOW_LOCAL_REPOS")?,
            work_dir: env.get("PJ_WORK_DIR").map(PathBuf::from),
            runner_git_config: match env.get("PJ_RUNNER_GIT_CONFIG") {
                None => None,
                Some(path) if Path::new(&path).is_file() => Some(PathBuf::from(path)),
                Some(path) => bail!("PJ_RUNNER_GIT_CONFIG: {path} is not a file"),
            },
            ghl_api_key: env.secret("GHL_API_KEY"),
            outbound_secret: match env.secret("PJ_OUTBOUND_SECRET") {
                None => None,
                Some(s) => match CallbackSecret::parse(s.expose_secret()) {
                    Ok(_) => Some(s),
                    Err(problem) => bail!(
                        "PJ_OUTBOUND_SECRET {problem} (a Standard Webhooks secret: whsec_ and the base64 of 32 bytes)"
                    ),
                },
            },
            metrics_token: match env.get("PJ_METRICS_TOKEN") {
                None => None,
                Some(t) if t.chars().any(|c| !c.is_ascii_graphic()) => {
                    bail!("PJ_METRICS_TOKEN must be visible ASCII without spaces")
                }
                Some(t) => Some(SecretString::from(t)),
            },
        })
    }
}

/// `PJ_GITHUB_APP_ID`, `PJ_GITHUB_APP_PRIVATE_KEY` (the PEM text) or
/// `PJ_GITHUB_APP_PRIVATE_KEY_FILE`, `PJ_GITHUB_APP_INSTALLATION_ID`, `DAYTONA_API_KEY`.
fn runner_secrets(env: &Env) -> anyhow::Result<BTreeMap<String, SecretString>> {
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
        if let Some(v) = env.secret(variable) {
            out.insert(key.to_owned(), v);
        }
    }
    if let Some(path) = env.get("PJ_GITHUB_APP_PRIVATE_KEY_FILE") {
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("PJ_GITHUB_APP_PRIVATE_KEY_FILE: could not read {path}"))?;
        out.insert("github_app_private_key".into(), SecretString::from(pem));
    }
    Ok(out)
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
