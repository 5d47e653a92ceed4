//! The test app: a real `pj serve` process on a free port with the fake runner.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pj_core::ids::{Attempt, TaskId, WebhookId};
use pj_core::signing::{MasterSecret, signed_headers};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const ALICE: &str = "tok-alice-0001";
pub const BOB: &str = "tok-bob-000001";

/// A running `pj serve`.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub listen: String,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
    pub client: reqwest::Client,
    /// Everything the server printed on stdout so far.
    stdout: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The test runner (crate `tools/fake-runner`), built first when a narrower `cargo test` left
/// it out.
pub fn fake_runner() -> PathBuf {
    let pj = PathBuf::from(env!("CARGO_BIN_EXE_pj"));
    let runner = pj.with_file_name("pj-fake-runner");
    if !runner.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "pj-fake-runner"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building pj-fake-runner");
    }
    runner
}

/// The environment of a test server: two users, the fake runner, quick sweeps.
pub fn default_env() -> Vec<(String, String)> {
    [
        (
            "PJ_AUTH_TOKENS",
            format!("{ALICE}=alice:alice@example.com,{BOB}=bob:bob@example.com"),
        ),
        ("PJ_RUNNER_CMD", fake_runner().display().to_string()),
        ("PJ_SWEEP_INTERVAL_SECS", "1".to_owned()),
        ("PJ_TASK_TIMEOUT_SECS", "60".to_owned()),
        ("PJ_LOG", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Server {
    /// Starts a server with the default environment plus `extra`.
    pub async fn start(extra: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut env = default_env();
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut server = Server::spawn(&data_dir, "127.0.0.1:0", env, true).await;
        server._tmp = Some(tmp);
        server
    }

    /// Starts `pj serve` with exactly `env` (nothing inherited but PATH and HOME when `clean`).
    pub async fn spawn(
        data_dir: &Path,
        listen: &str,
        env: Vec<(String, String)>,
        clean: bool,
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pj"));
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if clean {
            cmd.env_clear();
            for name in ["PATH", "HOME", "TMPDIR"] {
                if let Ok(v) = std::env::var(name) {
                    cmd.env(name, v);
                }
            }
        }
        std::fs::create_dir_all(data_dir.parent().unwrap_or(data_dir)).expect("parent of data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("server.log"))
            .expect("server log");
        cmd.stderr(log);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("pj serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let printed = Arc::new(Mutex::new(String::new()));
        let keep = printed.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                keep.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&line);
                if !sent && let Some(url) = line.trim().strip_prefix("Pithy Jaunt is listening on ")
                {
                    let _ = tx.send(url.to_owned());
                    sent = true;
                }
                line.clear();
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "pj serve did not start; see {}",
                    data_dir.with_extension("server.log").display()
                )
            });
        let listen = base.trim_start_matches("http://").to_owned();
        Server {
            child: Some(child),
            base,
            listen,
            data_dir: data_dir.to_path_buf(),
            env,
            _tmp: None,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            stdout: printed,
        }
    }

    /// What the server printed at start, once its banner is complete.
    pub async fn banner(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let printed = self
                .stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            // The banner ends with the example's last line, or the auth line without one.
            if printed.contains("    -d '") || printed.contains("  auth:") {
                return printed;
            }
            if Instant::now() > deadline {
                panic!("the banner never completed: {printed}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL: nothing gets to run on the way out.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    }

    /// Starts the server again on the same address and data dir.
    pub async fn restart(&mut self) {
        let data_dir = self.data_dir.clone();
        let listen = self.listen.clone();
        let env = self.env.clone();
        let tmp = self._tmp.take();
        let mut again = Server::spawn(&data_dir, &listen, env, true).await;
        again._tmp = tmp;
        std::mem::swap(self, &mut again);
        // `again` now holds the old server, already stopped.
        again.child = None;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn create(&self, token: &str, body: Value) -> Value {
        let (status, task) = self.call("POST", "/tasks", Some(token), Some(body)).await;
        assert_eq!(status, 201, "create answered {status}: {task}");
        task
    }

    /// Creates a code change with `execute: false`: it waits, queued, for an explicit execute.
    pub async fn create_idle(&self, token: &str) -> Value {
        let mut body = task_body("p");
        body["execute"] = false.into();
        self.create(token, body).await
    }

    pub async fn task(&self, token: &str, id: &str) -> Value {
        let (status, task) = self
            .call("GET", &format!("/tasks/{id}"), Some(token), None)
            .await;
        assert_eq!(status, 200, "get answered {status}: {task}");
        task
    }

    /// Waits until the task has `status`, failing with the task as it is after `secs`.
    pub async fn wait_for(&self, token: &str, id: &str, status: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let task = self.task(token, id).await;
            if task["status"] == status {
                return task;
            }
            if Instant::now() > deadline {
                panic!("task never became {status}: {task}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn logs(&self, token: &str, id: &str) -> Vec<Value> {
        let (status, page) = self
            .call(
                "GET",
                &format!("/tasks/{id}/logs?limit=1000"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["lines"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the outbox holds at least `n` emails, failing after `secs`; returns them.
    pub async fn wait_for_mails(&self, n: usize, secs: u64) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let mails = self.outbox();
            if mails.len() >= n {
                return mails;
            }
            if Instant::now() > deadline {
                panic!("the outbox never held {n} emails: {mails:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a line of the server's log contains every one of `needles`, failing after
    /// `secs`.
    pub async fn wait_for_log(&self, needles: &[&str], secs: u64) {
        let path = self.data_dir.with_extension("server.log");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the server never logged {needles:?}; see {}",
                    path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a task that completes at once and waits for it and its email: a point in time
    /// after which the queues have worked through whatever was sent before it.
    pub async fn later_marker(&self, token: &str, secs: u64) -> Value {
        let before = self.outbox().len();
        let marker = self.create(token, task_body("a marker task")).await;
        let id = marker["id"].as_str().expect("id").to_owned();
        let done = self.wait_for(token, &id, "completed", secs).await;
        self.wait_for_mails(before + 1, secs).await;
        done
    }

    pub fn outbox(&self) -> Vec<(String, String)> {
        let mut mails: Vec<(String, String)> = std::fs::read_dir(self.data_dir.join("outbox"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read_to_string(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        mails.sort();
        mails
    }

    /// Signs a runner delivery for a task attempt with the server's own master secret.
    pub async fn runner_post(
        &self,
        path: &str,
        task_id: &str,
        attempt: u32,
        body: &Value,
        webhook_id: Option<&str>,
    ) -> (u16, Value) {
        let master =
            std::fs::read_to_string(self.data_dir.join("webhook-secret")).expect("master secret");
        let master =
            MasterSecret::new(SecretString::from(master.trim().to_owned())).expect("valid secret");
        let key = master.derive(&TaskId::parse(task_id).expect("task id"), Attempt(attempt));
        let id = webhook_id
            .map(|w| WebhookId::parse(w).expect("webhook id"))
            .unwrap_or_else(WebhookId::generate);
        let bytes = serde_json::to_vec(body).expect("json");
        let ts = chrono::Utc::now().timestamp();
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(bytes.clone());
        for (name, value) in signed_headers(&key, &id, ts, &bytes) {
            req = req.header(name, value);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn event(&self, task_id: &str, attempt: u32, body: Value) -> (u16, Value) {
        let mut full = json!({"task_id": task_id, "attempt": attempt});
        if let (Some(f), Some(b)) = (full.as_object_mut(), body.as_object()) {
            f.extend(b.clone());
        }
        self.runner_post("/webhooks/runner", task_id, attempt, &full, None)
            .await
    }
}

/// A task body for the fake runner.
pub fn task_body(prompt: &str) -> Value {
    json!({"repo_url": "https://github.com/example/repo", "prompt": prompt})
}
