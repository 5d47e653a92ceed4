//! What the tests share: a runner over a script in a temporary folder, and an email reader.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{Email, EnvValue, RunnerEnv, RunnerJob};
use pj_local::{LocalRunner, RunnerExit, RunnerTimings};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// Long enough for a loaded 2-core machine; only ever a ceiling.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Fixture {
    pub dir: TempDir,
    pub runner: LocalRunner,
    pub exits: mpsc::UnboundedReceiver<RunnerExit>,
}

impl Fixture {
    /// A runner whose command is `sh <dir>/run.sh`, with `script` as that file.
    pub fn with_script(script: &str) -> Fixture {
        Fixture::with_script_and_timings(script, fast_timings())
    }

    pub fn with_script_and_timings(script: &str, timings: RunnerTimings) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.sh");
        std::fs::write(&path, script).expect("write script");
        let command = format!("sh {}", shell_words::quote(&path.to_string_lossy()));
        Fixture::with_command(dir, &command, timings)
    }

    pub fn with_command(dir: TempDir, command: &str, timings: RunnerTimings) -> Fixture {
        let (tx, exits) = mpsc::unbounded_channel();
        let runner = LocalRunner::new(command, dir.path().join("work"), tx)
            .expect("runner")
            .with_timings(timings);
        Fixture { dir, runner, exits }
    }

    pub async fn next_exit(&mut self) -> RunnerExit {
        next_exit(&mut self.exits).await
    }
}

pub async fn next_exit(exits: &mut mpsc::UnboundedReceiver<RunnerExit>) -> RunnerExit {
    tokio::time::timeout(PATIENCE, exits.recv())
        .await
        .expect("a runner exit in time")
        .expect("the exit channel is open")
}

pub fn fast_timings() -> RunnerTimings {
    RunnerTimings {
        stop_grace: Duration::from_secs(5),
        deadline_grace: Duration::from_secs(30),
        adopt_poll: Duration::from_millis(100),
    }
}

/// A job with the contract's basic variables plus `extra`.
pub fn job(extra: &[(&'static str, EnvValue)]) -> RunnerJob {
    let task_id = TaskId::generate(Utc::now());
    let attempt = Attempt(1);
    let mut env = BTreeMap::new();
    env.insert("TASK_ID", EnvValue::Plain(task_id.to_string()));
    env.insert("TASK_ATTEMPT", EnvValue::Plain(attempt.to_string()));
    env.insert(
        "WEBHOOK_SECRET",
        EnvValue::Secret("whsec_dGVzdC1zZWNyZXQ=".to_owned().into()),
    );
    for (name, value) in extra {
        env.insert(*name, value.clone());
    }
    RunnerJob {
        task_id,
        attempt,
        repo_url: "https://github.com/o/r".to_owned(),
        deadline: Utc::now() + chrono::Duration::minutes(10),
        env: RunnerEnv(env),
    }
}

pub fn plain(v: &str) -> EnvValue {
    EnvValue::Plain(v.to_owned())
}

/// Waits for `cond` to hold, up to [`PATIENCE`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads a pid a script wrote, once it is there.
pub async fn read_pid(path: &Path) -> i32 {
    let mut pid = None;
    eventually("the script writes its pid", || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    })
    .await;
    pid.unwrap_or_default()
}

/// Fields 3 and on of `/proc/<pid>/stat`, counted past the command name.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &raw[raw.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Whether the process runs (a zombie has ended).
pub fn is_running(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f[0].as_str(), "Z" | "X"))
}

/// The start time `/proc` records for a process: field 22.
pub fn starttime(pid: i32) -> u64 {
    stat_fields(pid).expect("process exists")[22 - 3]
        .parse()
        .expect("numeric start time")
}

pub fn email(key: &str, text: &str) -> Email {
    Email {
        idempotency_key: key.to_owned(),
        from: "Pithy Jaunt <pj@example.com>".to_owned(),
        to: "dev@example.com".to_owned(),
        subject: "[Pithy Jaunt] Completed: Add a README".to_owned(),
        text: text.to_owned(),
        html: format!(
            "<!doctype html><html><body><h2>Completed: Add a README</h2><p>{text}</p><p>Task details: https://pj.example.com/tasks/tsk_123 and a line long enough to be wrapped by the encoder</p></body></html>"
        ),
    }
}

/// One part of an RFC 5322 message: unfolded headers and the raw body.
pub struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    pub fn parse(raw: &str) -> Part {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Part {
            headers,
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The parts of a multipart body.
    pub fn parts(&self) -> Vec<Part> {
        let content_type = self.header("Content-Type").expect("a Content-Type");
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("a boundary")
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        self.body
            .split(&delimiter)
            .skip(1)
            .take_while(|p| !p.starts_with("--"))
            .map(|p| Part::parse(p.trim_start_matches('\n')))
            .collect()
    }

    /// The body with its transfer encoding undone.
    pub fn text(&self) -> String {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        match encoding.as_str() {
            "base64" => {
                let compact: String = self.body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("base64 body");
                String::from_utf8(bytes).expect("utf-8 body")
            }
            "quoted-printable" => decode_quoted_printable(&self.body),
            _ => self.body.clone(),
        }
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8 body")
}

/// Checks a completion email as sent: the headers and both alternatives.
pub fn assert_is_the_email(raw: &str, expected: &Email) {
    let message = Part::parse(raw);
    let from = message.header("From").unwrap_or_default();
    assert!(
        from.contains("Pithy Jaunt") && from.contains("<pj@example.com>"),
        "{from}"
    );
    assert_eq!(message.header("To"), Some(expected.to.as_str()));
    assert_eq!(message.header("Subject"), Some(expected.subject.as_str()));
    assert!(message.header("Date").is_some(), "a Date header");
    assert_eq!(
        message.header("Message-ID"),
        Some(format!("<{}@example.com>", expected.idempotency_key).as_str())
    );
    assert_eq!(message.header("MIME-Version"), Some("1.0"));
    assert!(
        message
            .header("Content-Type")
            .is_some_and(|c| c.starts_with("multipart/alternative")),
        "multipart/alternative"
    );
    let parts = message.parts();
    assert_eq!(parts.len(), 2, "a text and an HTML part");
    let kind = |p: &Part| p.header("Content-Type").unwrap_or_default().to_owned();
    assert!(
        kind(&parts[0]).starts_with("text/plain"),
        "{}",
        kind(&parts[0])
    );
    assert!(
        kind(&parts[1]).starts_with("text/html"),
        "{}",
        kind(&parts[1])
    );
    assert_eq!(parts[0].text().trim_end(), expected.text.trim_end());
    assert_eq!(parts[1].text().trim_end(), expected.html);
}
