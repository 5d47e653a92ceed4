//! The world a run meets in these tests: a bare repository standing in for GitHub (reached
//! through `url.<base>.insteadOf` in a git config of the test's own), wiremock fakes of the
//! OpenAI, Anthropic and GitHub APIs built from their documented shapes, and a receiver that checks
//! every callback's signature with pj-core and records events and log lines.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Utc;
use pj_core::ids::{Attempt, TaskId};
use pj_core::signing::{CallbackSecret, MasterSecret, SignatureHeaders};
use pj_runner::agent::{self, Finish, Vars};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TASK_ID: &str = "tsk_01test0agent0runner";
pub const BRANCH: &str = "pj/tsk_01test0agent0runner";
pub const GITHUB_TOKEN: &str = "ghp_T0kenT0kenT0kenT0kenT0kenT0kenT0ke";
pub const OPENAI_KEY: &str = "sk-test-0penai0key0value0123456";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-anthr0pic0key0value01";
pub const PROMPT: &str =
    "Make greet say hello, world\n\nThe greeting in src/greet.rs is too short.";

/// The file the tests' model edits, as the base branch has it.
pub const GREET: &str = "pub fn greet() -> &'static str {\n    \"hello\"\n}\n";

/// A search/replace reply that turns `from` into `to` in src/greet.rs.
pub fn edit_reply(from: &str, to: &str) -> String {
    format!(
        "Plan: change the greeting.\n\nsrc/greet.rs\n<<<<<<< SEARCH\n    \"{from}\"\n=======\n    \"{to}\"\n>>>>>>> REPLACE\n"
    )
}

/// The OpenAI Chat Completions answer with `text`.
pub fn openai_answer(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    }))
}

/// The Anthropic Messages answer with `text`.
pub fn anthropic_answer(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 2000, "output_tokens": 200}
    }))
}

/// Answers with each template in turn, then repeats the last.
pub struct InTurn(Mutex<VecDeque<ResponseTemplate>>);

impl InTurn {
    pub fn new(answers: impl IntoIterator<Item = ResponseTemplate>) -> Self {
        InTurn(Mutex::new(answers.into_iter().collect()))
    }
}

impl Respond for InTurn {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut answers = self.0.lock().unwrap();
        if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers
                .front()
                .cloned()
                .unwrap_or_else(|| ResponseTemplate::new(500))
        }
    }
}

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Received {
    /// Each delivery of an event: its `webhook-id` and body.
    pub events: Vec<(String, Value)>,
    /// Every log line of every batch, as sent (retries included).
    pub lines: Vec<Value>,
    /// Every raw callback body.
    pub bodies: Vec<String>,
    /// Deliveries whose signature did not verify.
    pub bad_signatures: Vec<String>,
    /// Every artifact accepted: its name and bytes.
    pub artifacts: Vec<(String, Vec<u8>)>,
}

/// How the receiver answers.
#[derive(Debug, Default)]
pub struct Answers {
    /// Events answered 503 before the first one accepted.
    pub fail_events: usize,
    /// Log batches answered 503 before the first one accepted.
    pub fail_log_batches: usize,
    /// Events of this type are answered 409.
    pub conflict_on: Option<&'static str>,
    /// Artifact uploads are answered 400 (a server that refuses them).
    pub refuse_artifacts: bool,
}

/// The callback routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Events,
    Logs,
    Artifacts,
}

struct Receiver {
    secret: CallbackSecret,
    received: Arc<Mutex<Received>>,
    answers: Arc<Mutex<Answers>>,
    route: Route,
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let headers = SignatureHeaders {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
        };
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let mut received = self.received.lock().unwrap();
        received.bodies.push(body.clone());
        if let Err(e) = self
            .secret
            .verify(&headers, &request.body, Utc::now().timestamp())
        {
            received.bad_signatures.push(format!("{e}: {body}"));
            return ResponseTemplate::new(401);
        }
        let Ok(value) = serde_json::from_str::<Value>(&body) else {
            received.bad_signatures.push(format!("not JSON: {body}"));
            return ResponseTemplate::new(400);
        };
        let mut answers = self.answers.lock().unwrap();
        if self.route == Route::Artifacts {
            if answers.refuse_artifacts {
                return ResponseTemplate::new(400);
            }
            let name = value["name"].as_str().unwrap_or_default().to_owned();
            let bytes = B64
                .decode(value["content_base64"].as_str().unwrap_or_default())
                .unwrap_or_default();
            received.artifacts.push((name, bytes));
            return ResponseTemplate::new(200).set_body_json(json!({"status": "stored"}));
        }
        if self.route == Route::Logs {
            if answers.fail_log_batches > 0 {
                answers.fail_log_batches -= 1;
                return ResponseTemplate::new(503);
            }
            let lines = value["lines"].as_array().cloned().unwrap_or_default();
            received.lines.extend(lines);
            return ResponseTemplate::new(200).set_body_json(json!({"stored": 1}));
        }
        let id = headers.id.unwrap_or_default().to_owned();
        received.events.push((id, value.clone()));
        if answers.fail_events > 0 {
            answers.fail_events -= 1;
            return ResponseTemplate::new(503);
        }
        if answers.conflict_on == value["type"].as_str() {
            return ResponseTemplate::new(409).set_body_json(json!({
                "error": {"code": "conflict", "message": "the task is already cancelled"}
            }));
        }
        ResponseTemplate::new(200).set_body_json(json!({"ok": true}))
    }
}

/// Collects what the run prints.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// One test's world.
pub struct World {
    pub root: TempDir,
    pub home: PathBuf,
    pub bare: PathBuf,
    pub llm: MockServer,
    pub github: MockServer,
    /// Kept so the receiver runs as long as the world.
    pub _receiver: MockServer,
    pub received: Arc<Mutex<Received>>,
    pub answers: Arc<Mutex<Answers>>,
    pub whsec: String,
    pub vars: Vars,
}

/// What a run left.
pub struct Ran {
    pub finish: Finish,
    pub stdout: String,
}

impl World {
    /// A world whose model is OpenAI's and whose repository is `https://github.com/o/r`.
    pub async fn new() -> World {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let remotes = root.path().join("remotes");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(remotes.join("o")).unwrap();
        std::fs::write(
            home.join(".gitconfig"),
            format!(
                "[url \"file://{}/\"]\n\tinsteadOf = https://github.com/\n\
                 [user]\n\tname = Test\n\temail = test@example.com\n\
                 [init]\n\tdefaultBranch = main\n",
                remotes.display()
            ),
        )
        .unwrap();

        let llm = MockServer::start().await;
        let github = MockServer::start().await;
        let receiver = MockServer::start().await;
        let received = Arc::new(Mutex::new(Received::default()));
        let answers = Arc::new(Mutex::new(Answers::default()));
        let master = MasterSecret::new(MasterSecret::generate()).unwrap();
        let key = master.derive(&TaskId::parse(TASK_ID).unwrap(), Attempt(1));
        let whsec = key.expose_whsec().expose_secret().to_owned();
        for (at, route) in [
            ("/webhooks/runner", Route::Events),
            ("/webhooks/runner/logs", Route::Logs),
            ("/webhooks/runner/artifacts", Route::Artifacts),
        ] {
            Mock::given(method("POST"))
                .and(path(at))
                .respond_with(Receiver {
                    secret: key.clone(),
                    received: received.clone(),
                    answers: answers.clone(),
                    route,
                })
                .mount(&receiver)
                .await;
        }

        let mut vars: Vars = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", home.display().to_string()),
            (
                "GIT_CONFIG_GLOBAL",
                home.join(".gitconfig").display().to_string(),
            ),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("LANG", "C".into()),
        ]
        .into_iter()
        .collect();
        let deadline = Utc::now() + chrono::Duration::seconds(300);
        let settings = [
            ("TASK_ID", TASK_ID.to_owned()),
            ("TASK_ATTEMPT", "1".into()),
            ("TARGET_REPO", "https://github.com/o/r".into()),
            ("BASE_BRANCH", "main".into()),
            ("BRANCH_NAME", BRANCH.into()),
            ("AGENT_PROMPT", PROMPT.into()),
            ("MODEL_PROVIDER", "openai".into()),
            ("MODEL", "gpt-4o-mini".into()),
            ("WEBHOOK_URL", format!("{}/webhooks/runner", receiver.uri())),
            (
                "LOGS_URL",
                format!("{}/webhooks/runner/logs", receiver.uri()),
            ),
            ("WEBHOOK_SECRET", whsec.clone()),
            ("TASK_DEADLINE", deadline.to_rfc3339()),
            ("GITHUB_TOKEN", GITHUB_TOKEN.into()),
            ("GITHUB_API_URL", github.uri()),
            ("OPENAI_API_KEY", OPENAI_KEY.into()),
            ("OPENAI_BASE_URL", format!("{}/v1", llm.uri())),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.into()),
            ("ANTHROPIC_BASE_URL", llm.uri()),
            ("PJ_LLM_TIMEOUT_SECS", "20".into()),
            ("PJ_DEADLINE_MARGIN_SECS", "2".into()),
            ("PJ_WORKDIR", root.path().join("work").display().to_string()),
        ];
        for (name, value) in settings {
            vars.set(name, value);
        }

        let world = World {
            bare: remotes.join("o").join("r"),
            root,
            home,
            llm,
            github,
            _receiver: receiver,
            received,
            answers,
            whsec,
            vars,
        };
        world.seed();
        world
    }

    /// Runs git as the tests' user (their HOME and git config), in `dir`.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The bare repository with `main` holding src/greet.rs and a README.
    fn seed(&self) {
        let seed = self.root.path().join("seed");
        std::fs::create_dir_all(seed.join("src")).unwrap();
        std::fs::write(seed.join("src/greet.rs"), GREET).unwrap();
        std::fs::write(seed.join("README.md"), "# Demo\n\nSays hello.\n").unwrap();
        let root = self.root.path();
        self.git(root, &["init", "-q", "--bare", self.bare.to_str().unwrap()]);
        self.git(&seed, &["init", "-q", "-b", "main"]);
        self.git(&seed, &["add", "-A"]);
        self.git(&seed, &["commit", "-q", "-m", "Start"]);
        self.git(
            &seed,
            &[
                "push",
                "-q",
                self.bare.to_str().unwrap(),
                "main:refs/heads/main",
            ],
        );
    }

    /// Pushes a commit onto `branch` of the bare repository, as an earlier attempt would have.
    pub fn push_earlier_attempt(&self, file: &str, content: &str) -> String {
        let dir = self.root.path().join("earlier");
        self.git(
            self.root.path(),
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        std::fs::write(dir.join(file), content).unwrap();
        self.git(&dir, &["add", "-A"]);
        self.git(&dir, &["commit", "-q", "-m", "Earlier attempt"]);
        self.git(
            &dir,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{BRANCH}")],
        );
        self.git(&dir, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Commits `files` (path, content, executable) onto `main` of the bare repository, as the
    /// repository's own people would.
    pub fn commit_to_main(&self, files: &[(&str, &str, bool)]) {
        let dir = self.root.path().join("maintainer");
        if !dir.exists() {
            self.git(
                self.root.path(),
                &[
                    "clone",
                    "-q",
                    self.bare.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
            );
        }
        for (file, content, executable) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            if *executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        self.git(&dir, &["add", "-A"]);
        self.git(&dir, &["commit", "-q", "-m", "Maintainer's change"]);
        self.git(&dir, &["push", "-q", "origin", "HEAD:main"]);
    }

    /// Where the runs of this world make their private directories.
    pub fn workdir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// A file as `branch` of the bare repository has it.
    pub fn file_on(&self, branch: &str, file: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["show", &format!("{branch}:{file}")])
            .current_dir(&self.bare)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.home)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether the bare repository has `branch`.
    pub fn has_branch(&self, branch: &str) -> bool {
        Command::new("git")
            .args([
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/heads/{branch}"),
            ])
            .current_dir(&self.bare)
            .env("HOME", &self.home)
            .output()
            .unwrap()
            .status
            .success()
    }

    /// Makes the bare repository refuse every push.
    pub fn refuse_pushes(&self) {
        let hook = self.bare.join("hooks").join("pre-receive");
        std::fs::write(
            &hook,
            "#!/bin/sh\necho 'push refused by policy' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The OpenAI endpoint answers with these, in turn.
    pub async fn openai_answers(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(InTurn::new(answers))
            .mount(&self.llm)
            .await;
    }

    /// The Anthropic endpoint answers with these, in turn.
    pub async fn anthropic_answers(&self, answers: impl IntoIterator<Item = ResponseTemplate>) {
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(InTurn::new(answers))
            .mount(&self.llm)
            .await;
    }

    /// The GitHub API has no open pull request for the branch and opens one as #7.
    pub async fn github_opens_pull_requests(&self) {
        Mock::given(method("GET"))
            .and(path("/repos/o/r/pulls"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&self.github)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/pulls"))
            .respond_with(ResponseTemplate::new(201).set_body_json(pull_request(7, false)))
            .mount(&self.github)
            .await;
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.set(name, value.into());
    }

    pub fn unset(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// Runs the agent to its end, at most 60 s.
    pub async fn run(&self) -> Ran {
        let capture = Capture::default();
        let finish = tokio::time::timeout(
            Duration::from_secs(60),
            agent::run(self.vars.clone(), Box::new(capture.clone())),
        )
        .await
        .expect("the run ended within 60 s");
        let ran = Ran {
            finish,
            stdout: capture.text(),
        };
        let bad = self.received.lock().unwrap().bad_signatures.clone();
        assert!(bad.is_empty(), "callbacks with bad signatures: {bad:?}");
        ran
    }

    /// Runs the real `pj-runner run` binary with this world's variables as its whole
    /// environment (so the secrets are in its `/proc/<pid>/environ`, as in production), at most
    /// 60 s; its exit code and what it printed.
    pub fn run_binary(&self) -> (Option<i32>, String) {
        let (code, stdout, _) = self.run_binary_watched();
        (code, stdout)
    }

    /// [`World::run_binary`], also reporting the largest resident memory (`VmHWM`, in KiB) the
    /// runner process showed while it ran.
    pub fn run_binary_watched(&self) -> (Option<i32>, String, u64) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pj-runner"))
            .arg("run")
            .env_clear()
            .envs(self.vars.iter())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let printed = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let started = std::time::Instant::now();
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_kib = 0;
        let status = loop {
            // Read before reaping: once reaped, the process's numbers are gone.
            if let Ok(status) = std::fs::read_to_string(&status_file) {
                peak_kib = peak_kib.max(vm_hwm_kib(&status));
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the runner did not end within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), printed.join().unwrap(), peak_kib)
    }

    /// The type of every event delivery, in order (retries included).
    pub fn event_types(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|(_, e)| e["type"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The last event received.
    pub fn final_event(&self) -> Value {
        let received = self.received.lock().unwrap();
        received
            .events
            .last()
            .map(|(_, e)| e.clone())
            .expect("an event was received")
    }

    /// The artifacts received: name and text.
    pub fn artifacts(&self) -> Vec<(String, String)> {
        self.received
            .lock()
            .unwrap()
            .artifacts
            .iter()
            .map(|(name, bytes)| (name.clone(), String::from_utf8_lossy(bytes).into_owned()))
            .collect()
    }

    /// The text of every log line, by `seq`, each once.
    pub fn log_texts(&self) -> Vec<String> {
        let mut lines = self.received.lock().unwrap().lines.clone();
        lines.sort_by_key(|l| l["seq"].as_u64());
        lines.dedup_by_key(|l| l["seq"].as_u64());
        lines
            .iter()
            .map(|l| l["text"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The bodies of the requests `server` received at `path` with `verb`.
    pub async fn bodies(server: &MockServer, verb: &str, route: &str) -> Vec<Value> {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path() == route)
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    /// Every shipped log line with its stream, by `seq`, each once.
    pub fn log_lines(&self) -> Vec<(String, String)> {
        let mut lines = self.received.lock().unwrap().lines.clone();
        lines.sort_by_key(|l| l["seq"].as_u64());
        lines.dedup_by_key(|l| l["seq"].as_u64());
        lines
            .iter()
            .map(|l| {
                (
                    l["stream"].as_str().unwrap_or("").to_owned(),
                    l["text"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// The secrets a run must never show, with the git header made of the token.
    pub fn secrets(&self) -> Vec<String> {
        vec![
            GITHUB_TOKEN.to_owned(),
            OPENAI_KEY.to_owned(),
            ANTHROPIC_KEY.to_owned(),
            self.whsec.clone(),
            self.whsec.trim_start_matches("whsec_").to_owned(),
            B64.encode(format!("x-access-token:{GITHUB_TOKEN}")),
        ]
    }
}

/// A pull request as the GitHub REST API shows it.
pub fn pull_request(number: u64, draft: bool) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/o/r/pulls/{number}"),
        "id": 1000 + number,
        "number": number,
        "state": "open",
        "draft": draft,
        "title": "Make greet say hello, world",
        "html_url": format!("https://github.com/o/r/pull/{number}"),
        "head": {"ref": BRANCH, "label": format!("o:{BRANCH}")},
        "base": {"ref": "main"}
    })
}

/// `secret` and the ways code could print it to slip past a search for it: base64 (standard and
/// URL-safe, as it stands at each of the three byte alignments inside a longer text) and hex.
pub fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![secret.to_owned(), hex.to_uppercase(), hex];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut shifted = vec![b'x'; offset];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            let skip = [0, 2, 3][offset];
            let trim = usize::from((offset + bytes.len()) % 3 != 0);
            forms.push(encoded[skip..encoded.len() - trim].to_owned());
        }
    }
    forms
}

/// Whether a process whose command line is exactly `argv` is alive on this machine.
pub fn process_alive(argv: &[&str]) -> bool {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| cmdline == wanted)
    })
}

/// `VmHWM` of a `/proc/<pid>/status` text, in KiB (0 when absent).
fn vm_hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
