//! Fakes written in Python with the libraries the product must interoperate with: a webhook
//! receiver that verifies with the official Standard Webhooks library, and a real SMTP server
//! (aiosmtpd). They run from the repository's `.venv/`, which `scripts/python-env` makes (and
//! `scripts/test` runs first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The venv's Python, with the packages these fakes import; fails the test saying how to make
/// it when it is not there.
pub fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf();
    let python = root.join(".venv/bin/python");
    let how = "run scripts/python-env (it installs scripts/requirements.txt into .venv/), then the tests again";
    assert!(python.is_file(), "{} is missing: {how}", python.display());
    let imports = Command::new(&python)
        .args(["-c", "import standardwebhooks, aiosmtpd"])
        .output()
        .expect("the venv's python runs");
    assert!(
        imports.status.success(),
        "the venv lacks standardwebhooks or aiosmtpd ({}): {how}",
        String::from_utf8_lossy(&imports.stderr).trim()
    );
    python
}

/// A fake running as a Python process on a free loopback port; it records what it got as JSON
/// lines in a file. Stopped when dropped.
pub struct PyFake {
    child: Child,
    /// Held open: the fake stops when it closes.
    _stdin: Option<ChildStdin>,
    pub port: u16,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for PyFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PyFake {
    fn start(script: &str, args: &[&str]) -> PyFake {
        let dir = tempfile::tempdir().expect("a temp dir");
        let record = dir.path().join("record.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/serve/python")
            .join(script);
        let mut child = Command::new(python())
            .arg(&script)
            .arg("--record")
            .arg(&record)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the fake starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("its stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{} did not start", script.display()));
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{} said {line:?}", script.display()));
        PyFake {
            child,
            _stdin: stdin,
            port,
            record,
            _dir: dir,
        }
    }

    /// A Standard Webhooks receiver that verifies with `secret` and answers 500 to its first
    /// `fail_first` deliveries.
    pub fn webhook_receiver(secret: &str, fail_first: u32) -> PyFake {
        PyFake::start(
            "webhook_receiver.py",
            &["--secret", secret, "--fail-first", &fail_first.to_string()],
        )
    }

    /// An SMTP server that takes every message.
    pub fn smtp_server() -> PyFake {
        PyFake::start("smtp_server.py", &[])
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it recorded so far, oldest first.
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON record"))
            .collect()
    }

    /// Waits until it recorded at least `n` things, failing after `secs`.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let records = self.records();
            if records.len() >= n {
                return records;
            }
            if Instant::now() > deadline {
                panic!("the fake never recorded {n} things: {records:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
