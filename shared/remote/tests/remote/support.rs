use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use pj_core::ports::{EnvValue, RunnerEnv, RunnerJob, Secrets, StaticSecrets};
use pj_core::{Attempt, TaskId};
use secrecy::SecretString;

pub const WEBHOOK_SECRET: &str = "whsec_c2VjcmV0LW9mLXRoZS1hdHRlbXB0";
pub const GITHUB_TOKEN: &str = "ghp_TheDeploymentsOwnTokenThatMustNotLeak01";
pub const OPENAI_KEY: &str = "sk-proj-ProviderKeyThatMustNotLeak0123456789";
pub const DAYTONA_KEY: &str = "dtn_DaytonaKeyThatMustNotLeak0123456789";
pub const INSTALLATION_TOKEN: &str = "ghs_InstallationTokenThatMustNotLeak012345";

/// Every credential a test uses: none may show in a log line or an error.
pub fn credentials() -> Vec<&'static str> {
    vec![
        WEBHOOK_SECRET,
        GITHUB_TOKEN,
        OPENAI_KEY,
        DAYTONA_KEY,
        INSTALLATION_TOKEN,
    ]
}

pub fn private_key() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/rsa-test-key.pem"
    ))
    .unwrap()
}

pub fn task() -> TaskId {
    TaskId::parse("tsk_01kaq7m3v9x2c4d6f8g0h1j2k3").unwrap()
}

/// An attempt's job with the contract's environment.
pub fn job(repo_url: &str) -> RunnerJob {
    let mut env = BTreeMap::new();
    let plain = |v: &str| EnvValue::Plain(v.to_owned());
    env.insert("TASK_ID", plain(task().as_str()));
    env.insert("TASK_ATTEMPT", plain("1"));
    env.insert("TARGET_REPO", plain(repo_url));
    env.insert("BASE_BRANCH", plain("main"));
    env.insert("BRANCH_NAME", plain("pj/tsk_01kaq7m3v9x2c4d6f8g0h1j2k3"));
    env.insert("AGENT_PROMPT", plain("Add a CONTRIBUTING.md"));
    env.insert("MODEL_PROVIDER", plain("openai"));
    env.insert("MODEL", plain("gpt-4.1"));
    env.insert(
        "WEBHOOK_URL",
        plain("https://pj.example.com/webhooks/runner"),
    );
    env.insert(
        "LOGS_URL",
        plain("https://pj.example.com/webhooks/runner/logs"),
    );
    env.insert("TASK_DEADLINE", plain("2026-11-22T13:00:00Z"));
    let secret = |v: &str| EnvValue::Secret(SecretString::from(v.to_owned()));
    env.insert("WEBHOOK_SECRET", secret(WEBHOOK_SECRET));
    env.insert("GITHUB_TOKEN", secret(GITHUB_TOKEN));
    env.insert("OPENAI_API_KEY", secret(OPENAI_KEY));
    RunnerJob {
        task_id: task(),
        attempt: Attempt(1),
        repo_url: repo_url.into(),
        deadline: Utc::now() + Duration::minutes(10),
        env: RunnerEnv(env),
    }
}

pub fn secrets(
    token: bool,
    app: Option<(&str, Option<&str>)>,
    daytona: bool,
) -> Arc<StaticSecrets> {
    let mut s = Secrets::default();
    if token {
        s.github_token = Some(SecretString::from(GITHUB_TOKEN));
    }
    if let Some((id, installation)) = app {
        s.extra
            .insert("github_app_id".into(), SecretString::from(id.to_owned()));
        s.extra.insert(
            "github_app_private_key".into(),
            SecretString::from(private_key()),
        );
        if let Some(i) = installation {
            s.extra.insert(
                "github_app_installation_id".into(),
                SecretString::from(i.to_owned()),
            );
        }
    }
    if daytona {
        s.extra
            .insert("daytona_api_key".into(), SecretString::from(DAYTONA_KEY));
    }
    Arc::new(StaticSecrets(Arc::new(s)))
}

/// A global subscriber that records nothing and keeps every callsite's interest at "sometimes",
/// installed before the tests start, so that tracing asks each test's scoped subscriber on every
/// event. Without it, a callsite first reached by one test while another is creating its scoped
/// subscriber can be cached as "never" (the two race inside tracing-core), and that test's `Logs`
/// stay empty.
#[ctor::ctor(unsafe)]
fn keep_callsites_open() {
    let _ = tracing::subscriber::set_global_default(OpenInterest);
}

struct OpenInterest;

impl tracing::Subscriber for OpenInterest {
    fn register_callsite(&self, _: &tracing::Metadata<'_>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Log lines written while a test runs (this thread's, through a scoped subscriber).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Asserts that no credential appears in `text`.
pub fn assert_no_credential(text: &str) {
    for c in credentials() {
        assert!(!text.contains(c), "a credential leaked into: {text}");
    }
    assert!(!text.contains("BEGIN RSA PRIVATE KEY") && !text.contains("BEGIN PRIVATE KEY"));
}
