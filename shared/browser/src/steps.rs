//! The steps of a `browser_automation` task and the fields of a `data_extraction` task, as the
//! session runs them. Parsing and validating a task's `config` is the server's; these types are
//! what its validated config becomes.

use serde_json::Value;

/// One step with a CSS selector (steps with an `instruction` are resolved to a reference by the
/// server's model through [`crate::BrowserSession::observe`] and then run by reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `{"action": "navigate", "url"}`
    Navigate {
        /// An `http` or `https` URL.
        url: String,
    },
    /// `{"action": "click", "selector"}`
    Click {
        /// A CSS selector.
        selector: String,
    },
    /// `{"action": "type", "selector", "text"}`
    Type {
        /// A CSS selector.
        selector: String,
        /// The text that replaces the field's content.
        text: String,
    },
    /// `{"action": "wait", "selector"}`
    WaitFor {
        /// A CSS selector.
        selector: String,
    },
    /// `{"action": "wait", "ms"}`
    WaitMs {
        /// Milliseconds.
        ms: u64,
    },
    /// `{"action": "extract", "selector"}`
    Extract {
        /// A CSS selector.
        selector: String,
    },
    /// `{"action": "screenshot", "full_page"?}`
    Screenshot {
        /// The whole page rather than the viewport.
        full_page: bool,
    },
}

impl Step {
    /// The step's `action`, as the contract names it.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Navigate { .. } => "navigate",
            Self::Click { .. } => "click",
            Self::Type { .. } => "type",
            Self::WaitFor { .. } | Self::WaitMs { .. } => "wait",
            Self::Extract { .. } => "extract",
            Self::Screenshot { .. } => "screenshot",
        }
    }
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutput {
    /// Nothing but having happened.
    Done,
    /// An `extract` step's text: a string, or a list when several elements matched.
    Extracted(Value),
    /// A screenshot, as PNG bytes.
    Screenshot(Vec<u8>),
}

/// A `data_extraction` field (the core's rule, one place for it).
pub use pj_core::kinds::browser::FieldSpec;
