//! Adapters of the embedded deployment (`pj serve`): the local runner, which starts each
//! attempt as a child process on the server's machine, and the mailers, which write completion
//! emails to an outbox folder or send them over SMTP.
//!
//! Linux is the target: a runner is identified across restarts by its pid and the start time
//! `/proc` records for it.

mod mail;
mod process;
mod runner;

pub use mail::{OutboxMailer, SmtpMailer};
pub use runner::{LocalRunner, PASSED_THROUGH_ENV, RunnerExit, RunnerTimings};
