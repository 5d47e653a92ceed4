//! The repository's own check of a change: `PJ_VERIFY_CMD`, or `.pithy/verify` in the repository.
//!
//! It runs repository code, so it gets the run's environment without any secret, in its own
//! process group that is killed whole on a time limit or when the run is stopped.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::config::Vars;
use super::log::{Log, Stream};

/// The lines of output kept for the model and the report.
const TAIL_LINES: usize = 80;
const TAIL_CHARS: usize = 6_000;

/// The command that verifies a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyCommand(pub String);

impl VerifyCommand {
    /// `PJ_VERIFY_CMD`, else `.pithy/verify` when the repository has it: executed directly when it
    /// is executable, else read by `sh`. Chosen once, from the base checkout, before the model
    /// writes anything.
    pub fn find(configured: Option<&str>, repo: &Path) -> Option<VerifyCommand> {
        if let Some(cmd) = configured {
            return Some(VerifyCommand(cmd.to_owned()));
        }
        let script = repo.join(".pithy").join("verify");
        let meta = std::fs::metadata(&script).ok()?;
        if !meta.is_file() {
            return None;
        }
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 != 0 {
            Some(VerifyCommand("./.pithy/verify".into()))
        } else {
            Some(VerifyCommand("sh ./.pithy/verify".into()))
        }
    }
}

/// How a verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed {
        /// "exit 1", "killed after 600 s", ...
        status: String,
        /// The last lines of its output.
        tail: String,
    },
}

/// Runs `command` with `sh -c` in `repo`, at most `limit`.
pub async fn run(
    command: &VerifyCommand,
    repo: &Path,
    vars: &Vars,
    limit: Duration,
    log: &Log,
) -> Verdict {
    log.system(format!("verifying: {}", command.0));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&command.0)
        .current_dir(repo)
        .env_clear()
        .envs(vars.child_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Verdict::Failed {
                status: "could not start".into(),
                tail: format!("could not run sh: {e}"),
            };
        }
    };
    let group = ProcessGroup(child.id());
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let readers = [
        child
            .stdout
            .take()
            .map(|r| tokio::spawn(pump(r, Stream::Stdout, log.clone(), tail.clone()))),
        child
            .stderr
            .take()
            .map(|r| tokio::spawn(pump(r, Stream::Stderr, log.clone(), tail.clone()))),
    ];
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => None,
        Ok(Ok(status)) => Some(match status.code() {
            Some(code) => format!("exit {code}"),
            None => "killed by a signal".to_owned(),
        }),
        Ok(Err(e)) => Some(format!("could not wait for it: {e}")),
        Err(_) => Some(format!("stopped after {} s", limit.as_secs())),
    };
    // Whatever it left running in the background goes too; that also closes the pipes.
    group.kill();
    for reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
    }
    match status {
        None => {
            log.system("verification passed");
            Verdict::Passed
        }
        Some(status) => {
            log.system(format!("verification failed ({status})"));
            let lines = tail.lock().unwrap_or_else(|e| e.into_inner());
            Verdict::Failed {
                status,
                tail: join_tail(&lines),
            }
        }
    }
}

async fn pump(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    log: Log,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                log.write(stream, line);
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_owned());
            }
        }
    }
}

fn join_tail(lines: &VecDeque<String>) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut chars = 0;
    for line in lines.iter().rev() {
        chars += line.chars().count() + 1;
        if chars > TAIL_CHARS {
            break;
        }
        kept.push(line);
    }
    kept.reverse();
    kept.join("\n")
}

/// The process group of the verify command; killed on drop, so a stopped run leaves nothing.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&self) {
        let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        // SAFETY: killpg only sends a signal; the group id is the child's own pid, as
        // `process_group(0)` made it, so no unrelated group is hit.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
