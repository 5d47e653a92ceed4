//! The local runner: one child process per attempt, for `pj serve`.

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{DispatchError, Runner, RunnerJob};
use pj_core::task::RunnerKind;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::process::{self, ProcRef, Target};

/// Variables of the server's environment a runner also gets; everything else is dropped, so
/// the server's own secrets (`PJ_WEBHOOK_SECRET`, `PJ_SMTP_URL`, cloud credentials) never reach
/// a process that runs model-written code. What is kept lets the runner reach the network
/// through a proxy, verify TLS with a custom CA bundle, and be tuned by the operator. The server
/// user's `HOME`, `XDG_*` folders and SSH agent are NOT passed: git must not use the server
/// user's credential helpers or keys for a user's task (`PJ_RUNNER_GIT_CONFIG` gives runners a
/// git configuration of their own).
pub const PASSED_THROUGH_ENV: &[&str] = &[
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    // The runner's own settings (runner/AGENT.md); none of them is a secret.
    "PJ_VERIFY_CMD",
    "PJ_VERIFY_TIMEOUT_SECS",
    "PJ_CONTEXT_TOKENS",
    "PJ_LLM_TIMEOUT_SECS",
    "PJ_LLM_MAX_ATTEMPTS",
    "PJ_LLM_FALLBACK",
    "PJ_MAX_OUTPUT_TOKENS",
    "PJ_GIT_AUTHOR_NAME",
    "PJ_GIT_AUTHOR_EMAIL",
    "PJ_DEADLINE_MARGIN_SECS",
    "PJ_ALLOW_WORKFLOWS",
    "PJ_SANDBOX",
    "PJ_SANDBOX_NETWORK",
    "PJ_SANDBOX_READ_ONLY",
    "PJ_ALLOW_UNSANDBOXED_CODE",
];

/// Runner inputs that can be larger than one environment variable may be (Linux refuses a
/// single variable over 128 KiB): passed as files, named by `<NAME>_FILE`.
const INPUTS_AS_FILES: &[(&str, &str)] = &[
    ("AGENT_PROMPT", "prompt.txt"),
    ("CODERABBIT_ANALYSIS", "coderabbit-analysis.txt"),
];

/// The `PATH` a runner gets when the server has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A runner process ended. The embedded wiring turns it into the core's
/// `Input::RunnerExited`, which changes nothing when the runner already sent its final event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerExit {
    pub task_id: TaskId,
    pub attempt: Attempt,
    /// How it ended, for the attempt's error: `exit status 3`, `killed by signal 9 (SIGKILL)`.
    pub detail: String,
}

/// How long the local runner waits at its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerTimings {
    /// Between SIGTERM and SIGKILL when stopping a runner.
    pub stop_grace: Duration,
    /// How long past its `TASK_DEADLINE` a runner may live before the runner kills it itself.
    /// The core's sweeper stops it at the deadline; this is the net under that.
    pub deadline_grace: Duration,
    /// How often a runner adopted after a restart is looked at; it is not our child, so its
    /// end is noticed only by looking.
    pub adopt_poll: Duration,
}

impl Default for RunnerTimings {
    fn default() -> Self {
        RunnerTimings {
            stop_grace: Duration::from_secs(5),
            deadline_grace: Duration::from_secs(30),
            adopt_poll: Duration::from_millis(500),
        }
    }
}

type Key = (TaskId, Attempt);

/// Starts each attempt as a child process of the server, `PJ_RUNNER_CMD` in a fresh workspace
/// folder, and reports its end on a channel.
///
/// Runners lead their own process group: a stop reaches the runner and everything it started
/// (`git`, build tools), and a Ctrl-C or a crash of the server does not reach them at all. A
/// runner keeps running across a restart of the server and reports to it when it is back;
/// [`LocalRunner::adopt`] watches it again.
///
/// Needs a Tokio runtime: `start` and `adopt` spawn a watch task per runner.
pub struct LocalRunner {
    program: String,
    args: Vec<String>,
    root: PathBuf,
    /// `PJ_RUNNER_GIT_CONFIG`, handed to runners as `GIT_CONFIG_GLOBAL`.
    git_config: Option<PathBuf>,
    timings: RunnerTimings,
    shared: Arc<Shared>,
    /// One start at a time, so two deliveries of the same dispatch cannot both find no runner
    /// and start two in one workspace.
    starting: tokio::sync::Mutex<()>,
}

/// What the watch tasks share with the runner.
struct Shared {
    exits: mpsc::UnboundedSender<RunnerExit>,
    /// The runners started or adopted by this process that have not ended yet.
    live: Mutex<HashMap<Key, Tracked>>,
    watchers: Mutex<JoinSet<()>>,
    shutdown: watch::Sender<bool>,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    proc: ProcRef,
    /// Our own child, not yet reaped: its pid cannot have been reused.
    child: bool,
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, HashMap<Key, Tracked>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, key: &Key, proc: ProcRef) {
        let mut live = self.live();
        if live.get(key).is_some_and(|t| t.proc == proc) {
            live.remove(key);
        }
    }

    fn spawn_watcher<F>(&self, watcher: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut set = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        // Finished watchers leave their result behind until joined.
        while set.try_join_next().is_some() {}
        set.spawn(watcher);
    }

    fn report(&self, key: Key, detail: String) {
        let (task_id, attempt) = key;
        tracing::info!(task_id = %task_id, %attempt, detail, "runner ended");
        // A closed channel means the server is stopping; the next start adopts or fails it.
        let _ = self.exits.send(RunnerExit {
            task_id,
            attempt,
            detail,
        });
    }
}

impl LocalRunner {
    /// `command` is `PJ_RUNNER_CMD` (default `pj-runner run`), split as a shell splits words;
    /// `root` holds the workspaces and their log files (`<data-dir>/work`); `exits` receives a
    /// [`RunnerExit`] whenever a runner ends.
    pub fn new(
        command: &str,
        root: impl Into<PathBuf>,
        exits: mpsc::UnboundedSender<RunnerExit>,
    ) -> anyhow::Result<LocalRunner> {
        let words = shell_words::split(command).map_err(|e| {
            anyhow::anyhow!("PJ_RUNNER_CMD cannot be split into words as a shell would: {e}")
        })?;
        let mut words = words.into_iter();
        let Some(program) = words.next().filter(|p| !p.is_empty()) else {
            anyhow::bail!(
                "PJ_RUNNER_CMD is empty; set it to the command that runs one attempt, such as `pj-runner run`"
            );
        };
        let root = root.into();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .with_context(|| format!("creating the runner workspaces folder {}", root.display()))?;
        let (shutdown, _) = watch::channel(false);
        Ok(LocalRunner {
            program,
            args: words.collect(),
            root,
            git_config: None,
            timings: RunnerTimings::default(),
            shared: Arc::new(Shared {
                exits,
                live: Mutex::new(HashMap::new()),
                watchers: Mutex::new(JoinSet::new()),
                shutdown,
            }),
            starting: tokio::sync::Mutex::new(()),
        })
    }

    /// Hands every runner this git configuration file (`GIT_CONFIG_GLOBAL`).
    pub fn with_git_config(mut self, path: Option<PathBuf>) -> LocalRunner {
        self.git_config = path;
        self
    }

    /// Replaces the default waits (5 s stop grace, 30 s past the deadline, 500 ms adoption poll).
    pub fn with_timings(mut self, timings: RunnerTimings) -> LocalRunner {
        self.timings = timings;
        self
    }

    /// The folder an attempt runs in: its working copy, an empty `home/` and its `input/`
    /// files. It is removed with the attempt's log file when the runner ends, unless the
    /// attempt has `KEEP_ALIVE=true`.
    pub fn workspace(&self, task: &TaskId, attempt: Attempt) -> PathBuf {
        self.root.join(format!("{task}-{attempt}"))
    }

    /// The file that receives an attempt's stdout and stderr, kept for operators (the runner
    /// itself streams its logs to `LOGS_URL`).
    pub fn log_file(&self, task: &TaskId, attempt: Attempt) -> PathBuf {
        self.root.join(format!("{task}-{attempt}.log"))
    }

    /// What the server recorded of an attempt's runner when it started it (`KEEP_ALIVE`,
    /// `TASK_DEADLINE`), for the watch after a restart.
    fn start_record(&self, task: &TaskId, attempt: Attempt) -> PathBuf {
        self.root.join(format!("{task}-{attempt}.start"))
    }

    /// Watches again a runner that a previous server process started, from the `runner_ref`
    /// recorded for the attempt. Returns whether it still runs.
    ///
    /// A live runner is looked at every [`RunnerTimings::adopt_poll`] and reported when it
    /// ends; one that is gone (or whose pid now belongs to another process) is reported at once,
    /// so the attempt fails with `runner_exited` unless its final event already came.
    pub fn adopt(&self, task: &TaskId, attempt: Attempt, runner_ref: &str) -> bool {
        let key = (task.clone(), attempt);
        if self.shared.live().contains_key(&key) {
            return true;
        }
        let proc = ProcRef::parse(runner_ref).filter(|p| p.is_alive());
        let Some(proc) = proc else {
            self.shared.report(
                key,
                "runner process is gone after a restart of the server".to_owned(),
            );
            return false;
        };
        // How the runner was to be treated, as recorded when it started. The runner's own
        // environment is the fallback for runners started before that record existed; it cannot
        // be read when the runner made itself non-dumpable and the server is not root.
        let vars = match std::fs::read_to_string(self.start_record(task, attempt)) {
            Ok(text) => text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            Err(_) => process::read_env_vars(proc.pid, &["KEEP_ALIVE", "TASK_DEADLINE"]),
        };
        let var = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let keep = var("KEEP_ALIVE").is_some_and(is_true);
        let deadline = var("TASK_DEADLINE")
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| self.kill_at(d.with_timezone(&Utc)));
        self.shared
            .live()
            .insert(key.clone(), Tracked { proc, child: false });
        let watch = Watch {
            shared: self.shared.clone(),
            key,
            proc,
            workspace: self.workspace(task, attempt),
            log_file: self.log_file(task, attempt),
            start_record: self.start_record(task, attempt),
            keep,
            kill_at: deadline,
            timings: self.timings,
        };
        self.shared.spawn_watcher(watch.adopted());
        tracing::info!(task_id = %task, %attempt, pid = proc.pid, "watching a runner started before the restart");
        true
    }

    /// Stops watching, for the server's shutdown. Runners are NOT stopped: they keep working,
    /// report to the server when it is back, and [`LocalRunner::adopt`] picks them up. Killing
    /// them would throw away minutes of model work for a restart that takes seconds, and a
    /// crashed server could not kill them anyway, so the restart path has to exist regardless.
    ///
    /// Waits up to `grace` for the watch tasks to end, then abandons them. Starts after this
    /// are refused as retryable.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.shutdown.send_replace(true);
        let mut set = std::mem::take(
            &mut *self
                .shared
                .watchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let all = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("runner watchers did not stop in time; abandoned");
        }
    }

    fn kill_at(&self, deadline: DateTime<Utc>) -> Instant {
        let left = (deadline - Utc::now()).to_std().unwrap_or_default();
        Instant::now() + left + self.timings.deadline_grace
    }

    fn command(
        &self,
        job: &RunnerJob,
        workspace: &Path,
        log: std::fs::File,
    ) -> io::Result<Command> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(workspace)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .process_group(0)
            // The runner must outlive a server that stops or crashes.
            .kill_on_drop(false);
        for name in PASSED_THROUGH_ENV {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", DEFAULT_PATH);
        }
        // A home of its own, empty: nothing of the server user's configuration applies.
        cmd.env("HOME", workspace.join("home"));
        // The working copy goes in the attempt's folder, so it goes with it.
        cmd.env("PJ_WORKDIR", workspace);
        if let Some(config) = &self.git_config {
            cmd.env("GIT_CONFIG_GLOBAL", config);
        }
        for (name, value) in job.env.iter() {
            // Written by `prepare`.
            match INPUTS_AS_FILES.iter().find(|(n, _)| *n == name) {
                Some((_, file)) => {
                    cmd.env(format!("{name}_FILE"), workspace.join("input").join(file));
                }
                None => {
                    cmd.env(name, value.expose());
                }
            }
        }
        Ok(cmd)
    }

    fn spawn_error(&self, e: io::Error) -> DispatchError {
        let program = &self.program;
        match e.kind() {
            io::ErrorKind::NotFound => DispatchError::Permanent {
                message: format!(
                    "the local runner command `{program}` was not found; set PJ_RUNNER_CMD to a command that exists on the server's PATH"
                ),
            },
            io::ErrorKind::PermissionDenied => DispatchError::Permanent {
                message: format!(
                    "the local runner command `{program}` is not executable; check PJ_RUNNER_CMD"
                ),
            },
            // An environment value with a NUL byte, an environment too large for the system, or
            // a similar input of the task's own that no retry can fix.
            _ if e.kind() == io::ErrorKind::InvalidInput
                || e.raw_os_error() == Some(libc::E2BIG) =>
            {
                DispatchError::Permanent {
                    message: format!(
                        "the local runner command `{program}` (PJ_RUNNER_CMD) could not be given this attempt: {e}"
                    ),
                }
            }
            // Out of processes or memory: may pass.
            _ => DispatchError::Retryable {
                message: format!(
                    "the local runner command `{program}` (PJ_RUNNER_CMD) could not be started: {e}"
                ),
                retry_after: None,
            },
        }
    }
}

/// Clears the attempt's workspace, writes its input files and opens its log file, all blocking.
fn prepare(
    workspace: &Path,
    log_file: &Path,
    inputs: &[(&'static str, String)],
) -> io::Result<std::fs::File> {
    match std::fs::remove_dir_all(workspace) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    DirBuilder::new().mode(0o700).create(workspace)?;
    DirBuilder::new()
        .mode(0o700)
        .create(workspace.join("home"))?;
    DirBuilder::new()
        .mode(0o700)
        .create(workspace.join("input"))?;
    for (file, content) in inputs {
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(workspace.join("input").join(file))
            .and_then(|mut f| io::Write::write_all(&mut f, content.as_bytes()))?;
    }
    // Runner output may quote repository content or tokens the runner failed to redact.
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(log_file)
}

fn is_true(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

#[async_trait]
impl Runner for LocalRunner {
    fn kind(&self) -> RunnerKind {
        RunnerKind::Local
    }

    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError> {
        if *self.shared.shutdown.borrow() {
            return Err(DispatchError::Retryable {
                message: "the server is shutting down".to_owned(),
                retry_after: None,
            });
        }
        let key = (job.task_id.clone(), job.attempt);
        let _one_at_a_time = self.starting.lock().await;
        // A dispatch that is retried after its runner started must not start a second one in
        // the same workspace.
        if let Some(t) = self.shared.live().get(&key) {
            if t.child || t.proc.is_alive() {
                return Ok(t.proc.encode());
            }
        }
        let workspace = self.workspace(&job.task_id, job.attempt);
        let log_file = self.log_file(&job.task_id, job.attempt);
        let inputs: Vec<(&'static str, String)> = INPUTS_AS_FILES
            .iter()
            .filter_map(|(name, file)| Some((*file, job.env.get(name)?.to_owned())))
            .collect();
        let prepared = {
            let workspace = workspace.clone();
            tokio::task::spawn_blocking(move || prepare(&workspace, &log_file, &inputs))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
        };
        let log = prepared.map_err(|e| DispatchError::Retryable {
            message: format!(
                "the workspace of the local runner could not be prepared under {}: {e}",
                self.root.display()
            ),
            retry_after: None,
        })?;
        let record = format!(
            "KEEP_ALIVE={}\nTASK_DEADLINE={}\n",
            job.env.get("KEEP_ALIVE").unwrap_or(""),
            job.deadline.to_rfc3339()
        );
        if let Err(e) = tokio::fs::write(self.start_record(&job.task_id, job.attempt), record).await
        {
            tracing::warn!(task_id = %job.task_id, error = %e, "could not record the runner's start; a restart will read its environment");
        }
        let child = self
            .command(job, &workspace, log)
            .and_then(|mut cmd| cmd.spawn())
            .map_err(|e| self.spawn_error(e))?;
        let Some(pid) = child.id().map(|p| p as i32) else {
            return Err(DispatchError::Retryable {
                message: "the local runner ended before it could be watched".to_owned(),
                retry_after: None,
            });
        };
        // The child is not reaped until its watcher waits for it, so /proc still has it even if
        // it already ended.
        let proc = ProcRef::of_pid(pid);
        self.shared
            .live()
            .insert(key.clone(), Tracked { proc, child: true });
        tracing::info!(
            task_id = %job.task_id,
            attempt = %job.attempt,
            pid,
            workspace = %workspace.display(),
            "local runner started"
        );
        let watch = Watch {
            shared: self.shared.clone(),
            key,
            proc,
            workspace,
            log_file: self.log_file(&job.task_id, job.attempt),
            start_record: self.start_record(&job.task_id, job.attempt),
            keep: job.env.get("KEEP_ALIVE").is_some_and(is_true),
            kill_at: Some(self.kill_at(job.deadline)),
            timings: self.timings,
        };
        self.shared.spawn_watcher(watch.child(child));
        Ok(proc.encode())
    }

    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        let tracked = self.shared.live().get(&(task.clone(), attempt)).copied();
        let (proc, trusted) = match (tracked, runner_ref.and_then(ProcRef::parse)) {
            (Some(t), _) => (t.proc, t.child),
            (None, Some(proc)) => (proc, false),
            (None, None) => {
                tracing::info!(task_id = %task, %attempt, "no local runner to stop");
                return Ok(());
            }
        };
        proc.terminate(self.timings.stop_grace, trusted)
            .await
            .with_context(|| format!("stopping the local runner (pid {})", proc.pid))
    }
}

/// One runner being watched until it ends.
struct Watch {
    shared: Arc<Shared>,
    key: Key,
    proc: ProcRef,
    workspace: PathBuf,
    log_file: PathBuf,
    start_record: PathBuf,
    keep: bool,
    kill_at: Option<Instant>,
    timings: RunnerTimings,
}

impl Watch {
    /// Waits for our own child.
    async fn child(self, mut child: Child) {
        let mut shutdown = self.shared.shutdown.subscribe();
        let net = sleep_until(self.kill_at);
        tokio::pin!(net);
        let mut net_fired = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = &mut net, if !net_fired => {
                    net_fired = true;
                    self.past_deadline();
                }
                // Dropping the child leaves the process running (no kill_on_drop).
                _ = shutdown.wait_for(|s| *s) => return,
            }
        };
        let detail = match status {
            Ok(status) => exit_detail(status),
            Err(e) => format!("its exit status could not be read: {e}"),
        };
        self.shared.forget(&self.key, self.proc);
        // What the runner started and left behind (a hung `git`, a dev server) would keep
        // working in a folder that is about to go. While anything of the group lives, the
        // kernel does not hand its number out again, so this reaches only what we started.
        if !self.keep {
            if let Err(e) = Target::Group(self.proc.pid).signal(libc::SIGTERM) {
                tracing::warn!(pid = self.proc.pid, error = %e, "could not end what the runner left behind");
            }
        }
        self.finish(detail).await;
    }

    /// Looks at a runner that is not our child until it is gone.
    async fn adopted(self) {
        let mut shutdown = self.shared.shutdown.subscribe();
        let net = sleep_until(self.kill_at);
        tokio::pin!(net);
        let mut net_fired = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.timings.adopt_poll) => {
                    if !self.proc.is_alive() {
                        break;
                    }
                }
                _ = &mut net, if !net_fired => {
                    net_fired = true;
                    self.past_deadline();
                }
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
        self.shared.forget(&self.key, self.proc);
        self.finish(
            "the runner process ended after a restart of the server; its exit status is unknown"
                .to_owned(),
        )
        .await;
    }

    fn past_deadline(&self) {
        let (task_id, attempt) = &self.key;
        tracing::warn!(task_id = %task_id, %attempt, pid = self.proc.pid, "runner outlived its deadline; killing it");
        let proc = self.proc;
        let grace = self.timings.stop_grace;
        tokio::spawn(async move {
            if let Err(e) = proc.terminate(grace, true).await {
                tracing::warn!(pid = proc.pid, error = %e, "could not kill a runner past its deadline");
            }
        });
    }

    async fn finish(self, detail: String) {
        let _ = tokio::fs::remove_file(&self.start_record).await;
        if !self.keep {
            match tokio::fs::remove_dir_all(&self.workspace).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    workspace = %self.workspace.display(),
                    error = %e,
                    "could not remove a runner workspace"
                ),
            }
            match tokio::fs::remove_file(&self.log_file).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    log_file = %self.log_file.display(),
                    error = %e,
                    "could not remove a runner's work log"
                ),
            }
        }
        self.shared.report(self.key, detail);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn exit_detail(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => match process::signal_name(sig) {
            Some(name) => format!("killed by signal {sig} ({name})"),
            None => format!("killed by signal {sig}"),
        },
        None => format!("ended with {status}"),
    }
}
