//! The browser kinds' browsers and model on Lambda, built with the `browsers` feature by `tasks`
//! only. A Lambda has no Chromium of its own, so every browser is a Browserbase session
//! (`BROWSERBASE_PROJECT_ID`, `BROWSERBASE_API_URL`, the secret's `browserbase_api_key`)
//! driven over its DevTools websocket; without a project there are no browsers, `api` offers
//! none (it reads the same variables), and a browser task that reaches `tasks` anyway fails
//! with `browser_error`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pj_browser::{Browserbase, BrowserbaseConfig, Browsers, SessionOptions};
use pj_core::engine::Settings;
use pj_core::kinds::browser::{self as port, PageModel};
use pj_core::ports::SecretSource;
use pj_llm::page::PageModels;
use secrecy::SecretString;

use crate::config::CoreConfig;

/// The name of the Browserbase API key in the deployment's secret.
pub const BROWSERBASE_KEY_SECRET: &str = "browserbase_api_key";

/// How long one question to the page model may take (as in `pj serve`).
const PAGE_MODEL_TIMEOUT: Duration = Duration::from_secs(120);

/// The Browserbase key, read from the secret when `BROWSERBASE_PROJECT_ID` asks for it.
///
/// Read once per execution environment: pj-browser's client holds its key, so a rotated key
/// reaches the environments started after the rotation. A project without a key stops the
/// start, naming the key, as `pj serve` does: `api` would accept browser tasks that `tasks`
/// could never run.
pub async fn browserbase_key(
    core: &CoreConfig,
    secrets: &dyn SecretSource,
) -> anyhow::Result<Option<SecretString>> {
    if core.shared.browsers.browserbase_project.is_none() {
        return Ok(None);
    }
    let secrets = secrets
        .secrets()
        .await
        .context("reading the deployment's secret for the Browserbase key")?;
    match secrets.extra.get(BROWSERBASE_KEY_SECRET) {
        Some(key) => Ok(Some(key.clone())),
        None => bail!(
            "{BROWSERBASE_KEY_SECRET}: the secret has none, and BROWSERBASE_PROJECT_ID is set \
             (browser tasks run through Browserbase)"
        ),
    }
}

/// Browserbase sessions for the project of `core`, at most `PJ_MAX_BROWSERS` at once in this
/// execution environment; `None` without a project (or without its key).
pub fn browsers(
    core: &CoreConfig,
    settings: &Settings,
    key: Option<SecretString>,
) -> anyhow::Result<Option<Arc<dyn port::Browsers>>> {
    let wanted = &core.shared.browsers;
    let (Some(project), Some(key)) = (&wanted.browserbase_project, key) else {
        return Ok(None);
    };
    let browserbase = Browserbase::new(BrowserbaseConfig {
        api_url: wanted
            .browserbase_api_url
            .parse()
            .context("BROWSERBASE_API_URL")?,
        api_key: key,
        project_id: project.clone(),
    })
    .context("BROWSERBASE_API_URL")?;
    let options = SessionOptions {
        allow_private_networks: settings.repo_rules.network.allow_private,
        ..SessionOptions::default()
    };
    Ok(Some(Arc::new(Browsers::new(
        None,
        Some(browserbase),
        options,
        wanted.max_at_once,
        wanted.default,
    ))))
}

/// The model of plain-words steps: the task's model (or `PJ_DEFAULT_MODEL`), its key read
/// from `secrets` when a step asks.
pub fn page_model(core: &CoreConfig, secrets: Arc<dyn SecretSource>) -> Arc<dyn PageModel> {
    let shared = &core.shared;
    Arc::new(PageModels::new(
        reqwest::Client::new(),
        secrets,
        shared.openai_base_url.clone(),
        shared.anthropic_base_url.clone(),
        shared.default_model.clone(),
        PAGE_MODEL_TIMEOUT,
    ))
}
