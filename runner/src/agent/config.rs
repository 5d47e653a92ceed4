//! The runner environment, read once at start into typed settings.
//!
//! It is read in two steps: first what is needed to report at all (who we are, where callbacks go,
//! the signing key), then everything else. A broken second step is still reported to the server as
//! `task.failed`; a broken first step can only be printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pj_core::create::validate_branch;
use pj_core::ids::{Attempt, TaskId};
use pj_core::net::NetworkPolicy;
use pj_core::signing::CallbackSecret;
use pj_core::task::Provider;
use pj_core::time::parse_rfc3339;
use pj_llm::ModelConfig;
use pj_llm::page::{DEFAULT_ANTHROPIC_BASE_URL, DEFAULT_OPENAI_BASE_URL};
use reqwest::Url;
use secrecy::SecretString;

use super::budget::Budget;
use super::sandbox::SandboxConfig;

/// The variables that hold secrets: never printed, never passed to a child process.
pub const SECRET_VARS: [&str; 4] = [
    "GITHUB_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "WEBHOOK_SECRET",
];

const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// The contract's bounds on the task text and the review analysis, in characters.
pub const MAX_PROMPT_CHARS: usize = 20_000;
pub const MAX_ANALYSIS_CHARS: usize = 100_000;

/// The environment a run reads: the process environment, or a map a test builds.
///
/// Child processes never get this map whole: git gets a few of its variables (`git`), repository
/// code fewer still (`sandbox`); a test can set them without touching the test process.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    /// The variables of this process (those that are valid UTF-8).
    pub fn from_process() -> Self {
        Vars(std::env::vars().collect())
    }

    /// Sets one variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// Removes one variable.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// A variable's value; an empty value counts as unset, as CI systems set empty ones freely.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every variable, for handing the whole environment on to a runner process (the local
    /// runner, tests of the binary).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The values of the secret variables that are set, for scrubbing.
    pub fn secret_values(&self) -> Vec<String> {
        SECRET_VARS
            .iter()
            .filter_map(|name| self.get(name))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Vars(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// One variable that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// Every problem found, so one run names them all.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    fn push(&mut self, var: &'static str, message: impl Into<String>) {
        self.0.push(Problem {
            var,
            message: message.into(),
        });
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Problem::to_string).collect();
        write!(f, "invalid runner environment: {}", parts.join("; "))
    }
}

/// What reporting needs: whose attempt this is, where callbacks go, and the key that signs them.
#[derive(Debug, Clone)]
pub struct Reporting {
    pub task_id: TaskId,
    pub attempt: Attempt,
    pub webhook_url: Url,
    /// Unset means logs go to stdout only; the run can still report its outcome.
    pub logs_url: Option<Url>,
    pub secret: CallbackSecret,
}

impl Reporting {
    /// Reads `TASK_ID`, `TASK_ATTEMPT`, `WEBHOOK_URL`, `LOGS_URL` and `WEBHOOK_SECRET`.
    pub fn from_vars(vars: &Vars) -> Result<Reporting, Problems> {
        let mut p = Problems::default();
        let task_id = match vars.get("TASK_ID") {
            None => {
                p.push("TASK_ID", "is not set");
                None
            }
            Some(raw) => TaskId::parse(raw.trim())
                .map_err(|e| p.push("TASK_ID", e.message))
                .ok(),
        };
        let attempt = match vars.get("TASK_ATTEMPT") {
            None => {
                p.push("TASK_ATTEMPT", "is not set");
                None
            }
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Some(Attempt(n)),
                _ => {
                    p.push("TASK_ATTEMPT", "must be a whole number from 1");
                    None
                }
            },
        };
        let webhook_url = http_url(vars, "WEBHOOK_URL", &mut p, true);
        let logs_url = http_url(vars, "LOGS_URL", &mut p, false);
        let secret = match vars.get("WEBHOOK_SECRET") {
            None => {
                p.push("WEBHOOK_SECRET", "is not set");
                None
            }
            Some(raw) => CallbackSecret::parse(raw)
                .map_err(|e| p.push("WEBHOOK_SECRET", e))
                .ok(),
        };
        match (task_id, attempt, webhook_url, secret) {
            (Some(task_id), Some(attempt), Some(webhook_url), Some(secret)) if p.0.is_empty() => {
                Ok(Reporting {
                    task_id,
                    attempt,
                    webhook_url,
                    logs_url,
                    secret,
                })
            }
            _ => Err(p),
        }
    }
}

fn http_url(vars: &Vars, name: &'static str, p: &mut Problems, required: bool) -> Option<Url> {
    let Some(raw) = vars.get(name) else {
        if required {
            p.push(name, "is not set");
        }
        return None;
    };
    match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            p.push(name, "must be an http(s) URL");
            None
        }
    }
}

/// A repository on GitHub (or a GitHub Enterprise host), where a pull request can be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRepo {
    /// The web host, such as `github.com`.
    pub host: String,
    pub owner: String,
    pub name: String,
}

/// Where the change goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// An `https://` GitHub repository: push, then open a pull request.
    Github(GithubRepo),
    /// Any other remote: push the branch and report it.
    Other,
}

/// Reads a GitHub repository out of `TARGET_REPO`: `https://{host}/{owner}/{name}[.git][/]` where
/// the host is `github.com` or the web host of a GitHub Enterprise `GITHUB_API_URL`.
pub fn github_repo(target: &str, api_url: &Url) -> Option<GithubRepo> {
    let url = Url::parse(target).ok()?;
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let api_host = api_url.host_str().map(str::to_ascii_lowercase);
    // GitHub Enterprise serves its API on the web host (`https://ghe.example.com/api/v3`).
    let enterprise = api_host.filter(|h| h != "api.github.com");
    if host != "github.com" && Some(&host) != enterprise.as_ref() {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let [owner, name] = segments.as_slice() else {
        return None;
    };
    let name = name.strip_suffix(".git").unwrap_or(name);
    let fine = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !fine(owner) || !fine(name) {
        return None;
    }
    Some(GithubRepo {
        host,
        owner: (*owner).to_owned(),
        name: name.to_owned(),
    })
}

/// The model `provider/name` at an endpoint, bound by the run's limits.
fn model_config(
    provider: Provider,
    name: String,
    (base_url, api_key): (Url, Option<SecretString>),
    limits: CallLimits,
) -> ModelConfig {
    {
        ModelConfig {
            provider,
            name,
            base_url: base_url.as_str().trim_end_matches('/').to_owned(),
            api_key,
            timeout: limits.timeout,
            max_output_tokens: limits.max_output_tokens,
            max_attempts: limits.max_attempts,
        }
    }
}

/// What every model call of the run is bound by, whichever provider answers.
#[derive(Debug, Clone, Copy)]
struct CallLimits {
    timeout: Duration,
    max_output_tokens: u32,
    max_attempts: u32,
}

/// The variable that holds a provider's key.
fn key_var(provider: Provider) -> &'static str {
    match provider {
        Provider::Openai => "OPENAI_API_KEY",
        Provider::Anthropic => "ANTHROPIC_API_KEY",
    }
}

/// A provider's base URL (its variable or the provider's own) and key.
fn endpoint(
    vars: &Vars,
    provider: Provider,
    p: &mut Problems,
) -> Option<(Url, Option<SecretString>)> {
    let (var, default) = match provider {
        Provider::Openai => ("OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL),
        Provider::Anthropic => ("ANTHROPIC_BASE_URL", DEFAULT_ANTHROPIC_BASE_URL),
    };
    let base = base_url(vars, var, default, p)?;
    let api_key = vars
        .get(key_var(provider))
        .map(|k| SecretString::from(k.trim().to_owned()));
    Some((base, api_key))
}

/// Who commits.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Everything else a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub target_repo: String,
    pub remote: Remote,
    pub base_branch: String,
    pub branch: String,
    pub prompt: String,
    pub coderabbit_analysis: Option<String>,
    pub model: ModelConfig,
    /// The other provider's default model, asked when the task's provider keeps failing; `None`
    /// without the other provider's key, or with `PJ_LLM_FALLBACK=false`.
    pub fallback: Option<ModelConfig>,
    pub github_api_url: Url,
    pub github_token: Option<SecretString>,
    pub deadline: DateTime<Utc>,
    /// How long before the deadline the work stops, to leave time to report.
    pub deadline_margin: Duration,
    pub context_tokens: usize,
    pub verify_cmd: Option<String>,
    pub verify_timeout: Duration,
    pub author: Author,
    /// Keep the working directory after the run, for a person to look at.
    pub keep_alive: bool,
    /// Where the clone goes; a fresh temporary directory when unset.
    pub workdir: Option<PathBuf>,
    /// Let edits touch `.github/workflows/` (a default GitHub token cannot push those).
    pub allow_workflows: bool,
    /// Where repository code runs.
    pub sandbox: SandboxConfig,
    /// Which addresses an `http(s)` `TARGET_REPO` may resolve to.
    pub network: NetworkPolicy,
    /// `PJ_MAX_COST_USD` and `PJ_TASK_COST_USD`; `None`: no cap.
    pub budget: Option<Budget>,
}

impl Config {
    /// Reads the rest of the runner environment; every problem is named.
    pub fn from_vars(vars: &Vars) -> Result<Config, Problems> {
        let mut p = Problems::default();
        if vars.get("LOGS_URL").is_none() {
            // Reporting goes on without it (logs only on stdout), but the run is misconfigured.
            p.push("LOGS_URL", "is not set");
        }
        let target_repo = required(vars, "TARGET_REPO", &mut p);
        let base_branch = branch_var(vars, "BASE_BRANCH", &mut p);
        let branch = branch_var(vars, "BRANCH_NAME", &mut p);
        if base_branch.is_some() && base_branch == branch {
            // The push is forced (with a lease); it must never aim at the base branch.
            p.push("BRANCH_NAME", "must differ from BASE_BRANCH");
        }
        let prompt = match text_file(vars, "AGENT_PROMPT_FILE", MAX_PROMPT_CHARS, &mut p) {
            Some(text) if text.trim().is_empty() => {
                p.push("AGENT_PROMPT_FILE", "is empty");
                None
            }
            Some(text) => Some(text),
            None if vars.get("AGENT_PROMPT_FILE").is_some() => None,
            None => required(vars, "AGENT_PROMPT", &mut p),
        };
        let coderabbit_analysis =
            match text_file(vars, "CODERABBIT_ANALYSIS_FILE", MAX_ANALYSIS_CHARS, &mut p) {
                Some(text) => Some(text),
                None => vars.get("CODERABBIT_ANALYSIS").map(str::to_owned),
            };
        let provider = match vars.get("MODEL_PROVIDER").map(str::trim) {
            None => {
                p.push("MODEL_PROVIDER", "is not set");
                None
            }
            Some(raw) if raw.eq_ignore_ascii_case("openai") => Some(Provider::Openai),
            Some(raw) if raw.eq_ignore_ascii_case("anthropic") => Some(Provider::Anthropic),
            Some(_) => {
                p.push("MODEL_PROVIDER", "must be openai or anthropic");
                None
            }
        };
        let model_name = required(vars, "MODEL", &mut p);
        let deadline = match vars.get("TASK_DEADLINE") {
            None => {
                p.push("TASK_DEADLINE", "is not set");
                None
            }
            Some(raw) => {
                let parsed = parse_rfc3339(raw.trim());
                if parsed.is_none() {
                    p.push("TASK_DEADLINE", "must be an RFC 3339 timestamp");
                }
                parsed
            }
        };
        let github_api_url = base_url(vars, "GITHUB_API_URL", DEFAULT_GITHUB_API_URL, &mut p);
        let model_timeout = secs(vars, "PJ_LLM_TIMEOUT_SECS", 180, &mut p);
        let max_output_tokens = number(vars, "PJ_MAX_OUTPUT_TOKENS", 8192, &mut p);
        let max_attempts = number(vars, "PJ_LLM_MAX_ATTEMPTS", 4, &mut p);
        let context_tokens = number(vars, "PJ_CONTEXT_TOKENS", 24_000, &mut p);
        let verify_timeout = secs(vars, "PJ_VERIFY_TIMEOUT_SECS", 600, &mut p);
        let margin = secs(vars, "PJ_DEADLINE_MARGIN_SECS", 20, &mut p);
        let budget = dollars(vars, "PJ_MAX_COST_USD", &mut p)
            .filter(|cap| {
                let positive = *cap > 0.0;
                if !positive {
                    p.push("PJ_MAX_COST_USD", "must be more than 0");
                }
                positive
            })
            .map(|cap| Budget {
                cap,
                earlier: dollars(vars, "PJ_TASK_COST_USD", &mut p).unwrap_or(0.0),
            });

        let limits = CallLimits {
            timeout: model_timeout,
            max_output_tokens: u32::try_from(max_output_tokens).unwrap_or(u32::MAX),
            max_attempts: u32::try_from(max_attempts.max(1)).unwrap_or(u32::MAX),
        };
        let model = provider.and_then(|provider| {
            let endpoint = endpoint(vars, provider, &mut p)?;
            // Anthropic has no keyless local servers to speak of; OpenAI-compatible ones do.
            if provider == Provider::Anthropic && endpoint.1.is_none() {
                p.push(
                    key_var(provider),
                    "is not set; the anthropic provider needs it",
                );
            }
            Some(model_config(
                provider,
                model_name.clone()?,
                endpoint,
                limits,
            ))
        });
        let fallback_allowed = vars.get("PJ_LLM_FALLBACK").is_none_or(|v| flag(Some(v)));
        // Only with the other provider's own key: a keyless endpoint there is not a provider
        // the operator chose to send the task to.
        let fallback = provider
            .map(Provider::other)
            .filter(|other| fallback_allowed && vars.get(key_var(*other)).is_some())
            .and_then(|other| {
                let endpoint = endpoint(vars, other, &mut p)?;
                Some(model_config(
                    other,
                    other.default_model().to_owned(),
                    endpoint,
                    limits,
                ))
            });

        let verify_cmd = vars
            .get("PJ_VERIFY_CMD")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let author = Author {
            name: vars
                .get("PJ_GIT_AUTHOR_NAME")
                .unwrap_or("Pithy Jaunt")
                .to_owned(),
            email: vars
                .get("PJ_GIT_AUTHOR_EMAIL")
                .unwrap_or("pithy-jaunt@users.noreply.github.com")
                .to_owned(),
        };
        let (
            Some(target_repo),
            Some(base_branch),
            Some(branch),
            Some(prompt),
            Some(model),
            Some(deadline),
            Some(github_api_url),
        ) = (
            target_repo,
            base_branch,
            branch,
            prompt,
            model,
            deadline,
            github_api_url,
        )
        else {
            return Err(p);
        };
        if !p.0.is_empty() {
            return Err(p);
        }
        let remote = match github_repo(target_repo.trim(), &github_api_url) {
            Some(repo) => Remote::Github(repo),
            None => Remote::Other,
        };
        Ok(Config {
            target_repo: target_repo.trim().to_owned(),
            remote,
            base_branch,
            branch,
            prompt,
            coderabbit_analysis,
            model,
            fallback,
            github_api_url,
            github_token: vars
                .get("GITHUB_TOKEN")
                .map(|t| SecretString::from(t.trim().to_owned())),
            deadline,
            deadline_margin: margin,
            context_tokens: usize::try_from(context_tokens).unwrap_or(usize::MAX),
            verify_cmd,
            verify_timeout,
            author,
            keep_alive: flag(vars.get("KEEP_ALIVE")),
            workdir: vars.get("PJ_WORKDIR").map(PathBuf::from),
            allow_workflows: flag(vars.get("PJ_ALLOW_WORKFLOWS")),
            sandbox: SandboxConfig {
                program: vars.get("PJ_SANDBOX").unwrap_or("bwrap").trim().to_owned(),
                share_network: flag(vars.get("PJ_SANDBOX_NETWORK")),
                read_only: vars
                    .get("PJ_SANDBOX_READ_ONLY")
                    .map(|v| {
                        std::env::split_paths(v)
                            .filter(|p| p.is_absolute())
                            .collect()
                    })
                    .unwrap_or_default(),
                allow_unsandboxed: flag(vars.get("PJ_ALLOW_UNSANDBOXED_CODE")),
            },
            network: NetworkPolicy {
                allow_private: flag(vars.get("PJ_ALLOW_PRIVATE_NETWORKS")),
            },
            budget,
        })
    }
}

fn flag(raw: Option<&str>) -> bool {
    raw.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn required(vars: &Vars, name: &'static str, p: &mut Problems) -> Option<String> {
    match vars.get(name) {
        Some(v) if !v.trim().is_empty() => Some(v.to_owned()),
        _ => {
            p.push(name, "is not set");
            None
        }
    }
}

/// The text of the file a `*_FILE` variable names, cut to `max_chars`; `None` when the variable
/// is unset or the file cannot be read (a problem then names the variable). Large texts come as
/// files because Linux refuses one environment variable over 128 KiB.
fn text_file(
    vars: &Vars,
    name: &'static str,
    max_chars: usize,
    p: &mut Problems,
) -> Option<String> {
    use std::io::Read as _;
    let path = vars.get(name)?.trim();
    // A character is at most 4 bytes: this reads enough for `max_chars` and never more.
    let limit = u64::try_from(max_chars.saturating_mul(4)).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes));
    match read {
        Ok(_) => Some(
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(max_chars)
                .collect(),
        ),
        Err(e) => {
            p.push(name, format!("cannot read {path}: {e}"));
            None
        }
    }
}

fn branch_var(vars: &Vars, name: &'static str, p: &mut Problems) -> Option<String> {
    let raw = required(vars, name, p)?;
    let raw = raw.trim().to_owned();
    match validate_branch(&raw) {
        Ok(()) => Some(raw),
        Err(m) => {
            p.push(name, m);
            None
        }
    }
}

fn base_url(vars: &Vars, name: &'static str, default: &str, p: &mut Problems) -> Option<Url> {
    let raw = vars.get(name).map(str::trim).unwrap_or(default);
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            p.push(name, "must be an http(s) URL");
            None
        }
    }
}

fn number(vars: &Vars, name: &'static str, default: u64, p: &mut Problems) -> u64 {
    match vars.get(name) {
        None => default,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                p.push(name, "must be a whole number");
                default
            }
        },
    }
}

/// An amount of US dollars (a decimal, at least 0); `None` when unset or wrong (then a problem
/// names the variable).
fn dollars(vars: &Vars, name: &'static str, p: &mut Problems) -> Option<f64> {
    let raw = vars.get(name)?;
    match raw.trim().parse::<f64>() {
        Ok(d) if d.is_finite() && d >= 0.0 => Some(d),
        _ => {
            p.push(name, "must be an amount of US dollars, such as 5 or 0.50");
            None
        }
    }
}

fn secs(vars: &Vars, name: &'static str, default: u64, p: &mut Problems) -> Duration {
    Duration::from_secs(number(vars, name, default, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    #[test]
    fn a_github_url_names_owner_and_repository() {
        let repo = github_repo("https://github.com/o/r.git", &api(DEFAULT_GITHUB_API_URL));
        assert_eq!(
            repo,
            Some(GithubRepo {
                host: "github.com".into(),
                owner: "o".into(),
                name: "r".into()
            })
        );
        assert!(github_repo("https://github.com/o/r/", &api(DEFAULT_GITHUB_API_URL)).is_some());
    }

    #[test]
    fn other_remotes_are_not_github() {
        let default = api(DEFAULT_GITHUB_API_URL);
        assert_eq!(github_repo("https://gitlab.com/o/r", &default), None);
        assert_eq!(github_repo("file:///tmp/r", &default), None);
        assert_eq!(github_repo("/srv/git/r", &default), None);
        assert_eq!(github_repo("https://github.com/o/r/tree/x", &default), None);
        assert_eq!(github_repo("http://github.com/o/r", &default), None);
    }

    #[test]
    fn an_enterprise_api_url_makes_its_host_github() {
        let ghe = api("https://ghe.example.com/api/v3");
        let repo = github_repo("https://ghe.example.com/team/app", &ghe);
        assert_eq!(repo.map(|r| r.host), Some("ghe.example.com".to_owned()));
    }

    #[test]
    fn when_variables_are_missing_should_name_each() {
        let vars: Vars = [("TASK_ID", "tsk_1")].into_iter().collect();
        let problems = Reporting::from_vars(&vars).unwrap_err();
        let names: Vec<&str> = problems.0.iter().map(|p| p.var).collect();
        assert_eq!(names, ["TASK_ATTEMPT", "WEBHOOK_URL", "WEBHOOK_SECRET"]);
        let problems = Config::from_vars(&vars).unwrap_err();
        assert!(problems.to_string().contains("TARGET_REPO: is not set"));
        assert!(problems.to_string().contains("TASK_DEADLINE: is not set"));
    }

    #[test]
    fn a_text_file_is_cut_to_its_bound_in_characters() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("analysis.txt");
        std::fs::write(&file, "ü".repeat(MAX_ANALYSIS_CHARS + 10)).unwrap();
        let vars: Vars = [("CODERABBIT_ANALYSIS_FILE", file.display().to_string())]
            .into_iter()
            .collect();
        let mut p = Problems::default();
        let text = text_file(
            &vars,
            "CODERABBIT_ANALYSIS_FILE",
            MAX_ANALYSIS_CHARS,
            &mut p,
        );
        assert!(p.0.is_empty());
        assert_eq!(text.map(|t| t.chars().count()), Some(MAX_ANALYSIS_CHARS));
    }
}
