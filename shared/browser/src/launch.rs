//! Starting a local headless Chromium, and making sure none of its processes outlive it.
//!
//! chromiumoxide can launch Chromium itself, but it gives no way to put the browser in a process
//! group of its own and panics when its own clean-up fails; so the crate starts Chromium with
//! `tokio::process` and connects to the DevTools websocket it prints, exactly as it connects to a
//! remote (Browserbase) browser. Chromium forks a zygote, renderers and utility processes; they
//! all stay in the group the browser was started in, so one `killpg` ends every one of them,
//! whether the browser is closed, dropped, cancelled mid-step or has crashed (a crashed browser
//! can leave renderers behind; the group outlives its leader while any member lives).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::BrowserError;

/// The names looked for on `PATH` when no path is given, in this order.
pub const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The flags every local browser gets. The machine may have no internet: without the
/// background-networking, component-update and sync flags Chromium keeps dialling Google's
/// services and floods the log with refused connections. `--no-sandbox` because the backend runs
/// as root in containers where Chromium's sandbox cannot start; the browser's reach is limited by
/// the address guard and by its empty environment instead. `--block-new-web-contents` refuses
/// pop-ups and `window.open`: a new window would be a target the guard is not attached to. For
/// the same reason site isolation is off: a cross-site iframe would otherwise run in a process
/// (and a DevTools target) of its own, whose sub-requests the page's interception does not see;
/// with `--no-sandbox` the renderer is not the security boundary anyway, the guard is.
pub const CHROMIUM_FLAGS: [&str; 16] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--block-new-web-contents",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,800",
    "--disable-site-isolation-trials",
    "--disable-features=IsolateOrigins,site-per-process",
];

/// A Chromium binary, found once.
#[derive(Debug, Clone)]
pub struct Chromium {
    path: PathBuf,
}

impl Chromium {
    /// The binary at `explicit` (the caller reads `PJ_CHROMIUM`), or the first of
    /// [`CHROMIUM_NAMES`] on `PATH`.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, BrowserError> {
        if let Some(path) = explicit {
            return if is_executable(path) {
                Ok(Self {
                    path: path.to_path_buf(),
                })
            } else {
                Err(BrowserError::ChromiumNotFound(format!(
                    "{} is not an executable file",
                    path.display()
                )))
            };
        }
        let dirs = std::env::var_os("PATH").unwrap_or_default();
        for name in CHROMIUM_NAMES {
            for dir in std::env::split_paths(&dirs) {
                let candidate = dir.join(name);
                if is_executable(&candidate) {
                    return Ok(Self { path: candidate });
                }
            }
        }
        Err(BrowserError::ChromiumNotFound(format!(
            "none of {} is on PATH; install Debian's `chromium` or name the binary",
            CHROMIUM_NAMES.join(", ")
        )))
    }

    /// Where the binary is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running local Chromium: its process group and its profile directory, both gone when this
/// is closed or dropped. [`BrowserSession::launch`](crate::BrowserSession::launch) starts one per
/// task; started alone, it is a browser reachable over its DevTools websocket, as a remote
/// service runs one (the tests' Browserbase).
pub struct ChromiumProcess {
    child: Child,
    /// The process group, which is the leader's pid (it was started with `process_group(0)`).
    pgid: libc::pid_t,
    profile: Option<tempfile::TempDir>,
    stderr: JoinHandle<()>,
}

impl ChromiumProcess {
    /// Starts Chromium with a fresh profile and returns it with its DevTools websocket URL.
    pub async fn start(
        chromium: &Chromium,
        launch_timeout: Duration,
    ) -> Result<(Self, String), BrowserError> {
        let profile = tempfile::Builder::new()
            .prefix("pj-chromium-")
            .tempdir()
            .map_err(|e| BrowserError::Launch(format!("no profile directory: {e}")))?;
        let mut command = Command::new(chromium.path());
        command
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            // The server's environment holds its secrets (API keys, AWS credentials); the browser
            // gets none of it: a clean environment whose home is the throw-away profile.
            .env_clear()
            .env("HOME", profile.path())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for var in ["LANG", "LC_ALL", "TZ"] {
            if let Some(value) = std::env::var_os(var) {
                command.env(var, value);
            }
        }
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl,
        // which is async-signal-safe. It asks the kernel to kill Chromium when the thread that
        // started it ends: a server that is killed (SIGKILL, a crash, an OOM kill) cannot run
        // the clean-up of `Drop`, and its browsers would be orphaned. The signal survives the
        // exec of Debian's wrapper script into the browser. Browsers are started from the
        // runtime's own threads (never from a blocking-pool thread, which retires when idle),
        // so they live as long as the process.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            BrowserError::Launch(format!(
                "{} could not start: {e}",
                chromium.path().display()
            ))
        })?;
        let pgid = child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
            .ok_or_else(|| BrowserError::Launch("Chromium exited at once".into()))?;
        let Some(stderr) = child.stderr.take() else {
            killpg(pgid);
            return Err(BrowserError::Launch("no stderr pipe".into()));
        };
        let mut process = Self {
            child,
            pgid,
            profile: Some(profile),
            stderr: tokio::spawn(async {}),
        };

        // Chromium prints the websocket URL on stderr. The pipe must be drained for the
        // browser's whole life: a full pipe would block Chromium on its next log line.
        let (url_tx, url_rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        process.stderr = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut url_tx = Some(url_tx);
            let mut tail: Vec<String> = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if url_tx.is_none() {
                    tracing::trace!(target: "pj_browser::chromium", "{line}");
                    continue;
                }
                if line.contains("DevTools listening on") {
                    if let (Some(at), Some(tx)) = (line.find("ws://"), url_tx.take()) {
                        let _ = tx.send(Ok(line[at..].trim().to_string()));
                        continue;
                    }
                }
                // The last lines before a failed start are the error message worth showing.
                tail.push(line.chars().take(300).collect());
                if tail.len() > 5 {
                    tail.remove(0);
                }
            }
            if let Some(tx) = url_tx.take() {
                let _ = tx.send(Err(tail.join(" | ")));
            }
        });

        match tokio::time::timeout(launch_timeout, url_rx).await {
            Ok(Ok(Ok(url))) => Ok((process, url)),
            Ok(Ok(Err(tail))) => {
                process.kill_now();
                Err(BrowserError::Launch(format!(
                    "Chromium exited before offering its DevTools endpoint: {tail}"
                )))
            }
            Ok(Err(_)) => {
                process.kill_now();
                Err(BrowserError::Launch(
                    "Chromium closed its output before offering its DevTools endpoint".into(),
                ))
            }
            Err(_) => {
                process.kill_now();
                Err(BrowserError::Launch(format!(
                    "no DevTools endpoint within {} s",
                    launch_timeout.as_secs()
                )))
            }
        }
    }

    /// The profile directory, for tests that look for leftover processes by it.
    pub(crate) fn profile_dir(&self) -> Option<&Path> {
        self.profile.as_ref().map(|p| p.path())
    }

    /// Whether the browser's main process has exited (crashed or was killed).
    pub(crate) fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the whole group at once. Synchronous, so it can run in `Drop`.
    fn kill_now(&mut self) {
        killpg(self.pgid);
        self.stderr.abort();
    }

    /// Kills the group, reaps the leader, and removes the profile.
    pub(crate) async fn close(mut self) {
        // No polite `Browser.close` first: the profile is thrown away, so there is nothing for
        // Chromium to flush, and SIGKILL to the group is the one ending that cannot hang.
        self.kill_now();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.remove_profile();
    }

    fn remove_profile(&mut self) {
        if let Some(profile) = self.profile.take() {
            let path = profile.path().to_path_buf();
            if profile.close().is_err() {
                // A dying process may still have been writing a file while the first attempt
                // walked the tree; one more try after it is gone.
                std::thread::sleep(Duration::from_millis(50));
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

impl Drop for ChromiumProcess {
    fn drop(&mut self) {
        // Dropped without `close` (a cancelled task, a panic, an error path): the same ending,
        // without waiting; tokio reaps the killed leader in the background.
        self.kill_now();
        let _ = self.child.try_wait();
        self.remove_profile();
    }
}

fn killpg(pgid: libc::pid_t) {
    // SAFETY: killpg only sends a signal; the group id is our own child's, which we have not
    // reaped yet (or whose group still has members), so it cannot name a stranger's group.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}
