//! The task kinds: what a task does. `code_change` is the agent in a runner; the other kinds
//! ("built-in") run inside the backend itself through the same state machine, with a `config`
//! checked when the task is created.

pub mod api_call;
pub mod browser;
pub mod config;
pub mod ghl;
pub mod message;
pub mod notify;
pub mod report;
pub mod run;
pub mod sealed;

use crate::error::ValidationError;

pub use config::KindConfig;
pub use notify::{ChannelSpec, NotifySpec};
pub use sealed::{Credential, Sealer};

/// The kinds of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    CodeChange,
    ApiCall,
    GhlAction,
    Notification,
    Reminder,
    Report,
    BrowserAutomation,
    DataExtraction,
}

impl TaskKind {
    pub const ALL: [TaskKind; 8] = [
        TaskKind::CodeChange,
        TaskKind::ApiCall,
        TaskKind::GhlAction,
        TaskKind::Notification,
        TaskKind::Reminder,
        TaskKind::Report,
        TaskKind::BrowserAutomation,
        TaskKind::DataExtraction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::CodeChange => "code_change",
            TaskKind::ApiCall => "api_call",
            TaskKind::GhlAction => "ghl_action",
            TaskKind::Notification => "notification",
            TaskKind::Reminder => "reminder",
            TaskKind::Report => "report",
            TaskKind::BrowserAutomation => "browser_automation",
            TaskKind::DataExtraction => "data_extraction",
        }
    }

    pub fn parse(raw: &str) -> Result<TaskKind, ValidationError> {
        if let Some(kind) = TaskKind::ALL.into_iter().find(|k| k.as_str() == raw) {
            return Ok(kind);
        }
        Err(ValidationError::new(
            "kind",
            "must be one of code_change, api_call, ghl_action, notification, reminder, report, \
             browser_automation, data_extraction",
        ))
    }

    /// The kind of a stored task; an unknown one (written by a newer build) is a code change,
    /// the kind every build runs.
    pub fn of(raw: &str) -> TaskKind {
        TaskKind::parse(raw).unwrap_or(TaskKind::CodeChange)
    }

    /// Whether the backend runs it itself rather than a runner.
    pub fn is_builtin(self) -> bool {
        self != TaskKind::CodeChange
    }
}
