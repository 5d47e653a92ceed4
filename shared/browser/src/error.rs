//! The one error type of the crate: every message names what failed (the step, its selector or
//! URL) in words a task's owner can act on, and none carries a secret.

use std::time::Duration;

/// Why opening a browser, a step or a Browserbase call failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// No Chromium binary at the given path or on `PATH`.
    #[error("no Chromium found: {0}")]
    ChromiumNotFound(String),
    /// Chromium was found but did not start, or did not offer its DevTools endpoint in time.
    #[error("Chromium did not start: {0}")]
    Launch(String),
    /// The DevTools websocket could not be reached or refused the session.
    #[error("could not connect to the browser: {0}")]
    Connect(String),
    /// A step failed for a reason of its own (a missing element, an invalid selector, a page
    /// error).
    #[error("{action} failed: {message}")]
    Step {
        /// The step's action (`navigate`, `click`, ...).
        action: &'static str,
        /// What went wrong, naming the selector or URL.
        message: String,
    },
    /// A step did not finish within its time.
    #[error("{action} timed out after {} ms: {what}", .after.as_millis())]
    Timeout {
        /// The step's action.
        action: &'static str,
        /// How long it was given.
        after: Duration,
        /// What it was waiting for (the selector, the URL).
        what: String,
    },
    /// The address guard refused a request the step needed.
    #[error("{action} failed: the request to {url} was refused: {reason}")]
    Blocked {
        /// The step's action.
        action: &'static str,
        /// The refused URL.
        url: String,
        /// Why (the address and the rule, from `pj_core::net`).
        reason: String,
    },
    /// The browser process or its connection went away (a crash, a kill).
    #[error("{action} failed: the browser is gone ({message})")]
    BrowserGone {
        /// The step's action.
        action: &'static str,
        /// What the DevTools connection said.
        message: String,
    },
    /// A Browserbase API call failed. The API key is never part of the message.
    #[error("Browserbase: {0}")]
    Browserbase(String),
}

impl BrowserError {
    /// The step's action when the error belongs to one, for a result's `steps[].error`.
    pub fn action(&self) -> Option<&'static str> {
        match self {
            Self::Step { action, .. }
            | Self::Timeout { action, .. }
            | Self::Blocked { action, .. }
            | Self::BrowserGone { action, .. } => Some(action),
            _ => None,
        }
    }

    /// Whether trying again later may pass (a timeout, a lost browser, a provider hiccup), as the
    /// contract's automatic retries want to know.
    pub fn may_pass_later(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::BrowserGone { .. }
                | Self::Connect(_)
                | Self::Launch(_)
                | Self::Browserbase(_)
        )
    }
}
