//! `pj-runner run`: the agent that runs one attempt of a task, from a plain-words prompt to a
//! pull request, and reports back to the server.
//!
//! The same code runs in GitHub Actions, in a Daytona sandbox and as `pj serve`'s local runner; it
//! reads the contract's runner environment (see `runner/AGENT.md` for the variables it adds).
//!
//! The parts, in the order a run uses them:
//! - [`config`]: the environment, read once into typed settings;
//! - `log` and `callback`: the log stream and the signed events, both scrubbed of secrets;
//! - `git`: the `git` command line, hardened, with the token in a private credential file;
//! - [`llm`]: OpenAI Chat Completions and Anthropic Messages, with retries and prices;
//! - `edit` and `verify`: the rounds of asking, patching and checking, and `budget`, the
//!   spending cap held before each model call;
//! - `sandbox` and `process`: where repository code runs, and children that cannot outlive the
//!   work;
//! - `github`: the pull request;
//! - `flow`: the attempt from start to report, under the deadline's watchdog.

mod budget;
mod callback;
pub mod config;
mod edit;
mod flow;
mod git;
mod github;
mod log;
mod process;
mod prompt;
mod sandbox;
mod scrub;
mod verify;

use std::process::ExitCode;

pub use config::Vars;
pub use flow::extra_codes;
pub use log::Output;

/// How a run ended; each maps to an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// A final event (`task.completed`, `task.failed` or `task.needs_review`) was delivered.
    /// Exit 0.
    Reported,
    /// No final event could be delivered (the server was unreachable or refused it). Exit 1.
    Undelivered,
    /// The environment lacks what is needed to report at all; the problems were printed. Exit 2.
    InvalidEnvironment,
    /// The server answered 409: the attempt was cancelled or superseded, so the run stopped
    /// without reporting. Exit 3.
    Superseded,
    /// SIGTERM or SIGINT stopped the run: its children were killed, its working copy removed,
    /// the log flushed briefly; no final event (the server sees the runner exit). Exit 4.
    Stopped,
}

impl From<Finish> for ExitCode {
    fn from(finish: Finish) -> Self {
        ExitCode::from(match finish {
            Finish::Reported => 0,
            Finish::Undelivered => 1,
            Finish::InvalidEnvironment => 2,
            Finish::Superseded => 3,
            Finish::Stopped => 4,
        })
    }
}

/// Runs one attempt with `vars` as its whole environment (child processes get a few of these,
/// never a secret), printing the log to `out`. Tests call this with their own variables.
pub async fn run(vars: Vars, out: Output) -> Finish {
    flow::run(vars, out, std::future::pending()).await
}

/// Runs one attempt with the process environment, printing the log on stdout, until it is done
/// or SIGTERM or SIGINT stops it.
pub async fn run_from_env() -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    // Listening from the start: a signal that comes early is kept until the work looks.
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            println!("pj-runner: could not listen for signals: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    flow::run(Vars::from_process(), Box::new(std::io::stdout()), stop)
        .await
        .into()
}

/// [`run_from_env`] on a runtime of its own, for a synchronous `main`:
/// `Command::Run => pj_runner::agent::main()`.
pub fn main() -> ExitCode {
    // Another process of the same user (repository code that escaped, another task's) must not
    // read this one's environment or memory through /proc: not dumpable, /proc/<pid> is root's.
    // SAFETY: PR_SET_DUMPABLE takes plain integers and touches only this process's flags.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run_from_env()),
        Err(e) => {
            println!("pj-runner: could not start the async runtime: {e}");
            ExitCode::from(2)
        }
    }
}
