//! The repository's own check of a change: `PJ_VERIFY_CMD`, or `.pithy/verify` in the repository.
//!
//! It is repository code, so it runs in the sandbox (`sandbox`), in its own process group that is
//! killed whole on a time limit or when the run is stopped. Its output reaches the log a line at a
//! time, each line cut at 16 KiB as it is read.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pj_core::redact::MAX_LINE_BYTES;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::log::{Log, Stream};
use super::process::ProcessGroup;
use super::sandbox::Jail;

/// The lines of output kept for the model and the report.
const TAIL_LINES: usize = 80;
const TAIL_CHARS: usize = 6_000;
/// The most of one output line that is kept: a line and its cut marker stay within the 16 KiB
/// the log takes per line.
const LINE_KEEP: usize = MAX_LINE_BYTES - 64;

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

/// Runs `command` with `sh -c` in `repo`, inside `jail`, at most `limit`.
pub async fn run(
    command: &VerifyCommand,
    jail: &Jail,
    repo: &Path,
    limit: Duration,
    log: &Log,
) -> Verdict {
    log.system(format!("verifying ({}): {}", jail.describe(), command.0));
    let mut cmd = jail.command(&["sh", "-c", &command.0], repo);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Verdict::Failed {
                status: "could not start".into(),
                tail: format!("could not start the verify command: {e}"),
            };
        }
    };
    // Dropped with this future (the watchdog, a signal): the whole group goes, bwrap and all it
    // started (bwrap's PID namespace ends with it).
    let group = ProcessGroup::of(child.id());
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

/// Copies the command's output to the log line by line, keeping the last lines for the model.
async fn pump(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    log: Log,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        let line = match read_capped_line(&mut reader, &mut buf).await {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => return,
        };
        log.write(stream, &line);
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// The next line of `reader` without its newline, cut to [`LINE_KEEP`] bytes with a marker that
/// says how much was dropped; `None` at the end. The rest of a long line is read and thrown away
/// as it comes, so a line of gigabytes costs no more memory than one of 16 KiB.
pub(crate) async fn read_capped_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<String>> {
    buf.clear();
    let mut dropped: u64 = 0;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if !read_any {
                return Ok(None);
            }
            break;
        }
        read_any = true;
        let newline = available.iter().position(|b| *b == b'\n');
        let content = newline.unwrap_or(available.len());
        let keep = content.min(LINE_KEEP.saturating_sub(buf.len()));
        buf.extend_from_slice(&available[..keep]);
        dropped += (content - keep) as u64;
        let consumed = newline.map_or(content, |i| i + 1);
        reader.consume(consumed);
        if newline.is_some() {
            break;
        }
    }
    let text = String::from_utf8_lossy(buf);
    let text = text.trim_end_matches(['\n', '\r']);
    Ok(Some(if dropped == 0 {
        text.to_owned()
    } else {
        format!("{text} … [cut: {dropped} bytes]")
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<String> {
        let mut reader = BufReader::with_capacity(1024, input);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Some(line) = read_capped_line(&mut reader, &mut buf).await.unwrap() {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn a_long_line_keeps_its_start_and_says_how_much_was_cut() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nnext\n");
        let lines = lines_of(&input).await;
        assert_eq!(lines.len(), 2);
        let dropped = 100_000 - LINE_KEEP;
        assert!(lines[0].ends_with(&format!(" … [cut: {dropped} bytes]")));
        assert!(lines[0].len() <= MAX_LINE_BYTES);
        assert_eq!(lines[1], "next");
    }

    #[tokio::test]
    async fn the_last_line_needs_no_newline() {
        assert_eq!(lines_of(b"a\r\nb").await, ["a", "b"]);
        assert!(lines_of(b"").await.is_empty());
    }
}
