//! The task kinds: what a task does. `code_change` is the agent in a runner; the other kinds
//! ("built-in") run inside the backend itself through the same state machine, with a `config`
//! checked when the task is created.

pub mod api_call;
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
}

/// The kinds of the contract that this build does not run yet: refused by name, so a user
/// learns it is the build and not a typo.
const NOT_YET_AVAILABLE: [&str; 2] = ["browser_automation", "data_extraction"];

impl TaskKind {
    pub const ALL: [TaskKind; 6] = [
        TaskKind::CodeChange,
        TaskKind::ApiCall,
        TaskKind::GhlAction,
        TaskKind::Notification,
        TaskKind::Reminder,
        TaskKind::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::CodeChange => "code_change",
            TaskKind::ApiCall => "api_call",
            TaskKind::GhlAction => "ghl_action",
            TaskKind::Notification => "notification",
            TaskKind::Reminder => "reminder",
            TaskKind::Report => "report",
        }
    }

    pub fn parse(raw: &str) -> Result<TaskKind, ValidationError> {
        if let Some(kind) = TaskKind::ALL.into_iter().find(|k| k.as_str() == raw) {
            return Ok(kind);
        }
        if NOT_YET_AVAILABLE.contains(&raw) {
            return Err(ValidationError::new(
                "kind",
                format!("{raw} is not available in this build yet"),
            ));
        }
        Err(ValidationError::new(
            "kind",
            "must be one of code_change, api_call, ghl_action, notification, reminder, report",
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
