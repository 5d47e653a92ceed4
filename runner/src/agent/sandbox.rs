//! Where repository code runs: inside bubblewrap (`bwrap`), with none of the runner's secrets in
//! reach.
//!
//! The verify command is the repository's own code; it runs as the same OS user as the runner (and,
//! for the local runner, as the server). Without a sandbox it could read the runner's environment
//! through `/proc/$PPID/environ`, walk into the server's data directory through `/proc/$PPID/cwd`,
//! or plant a git hook that the runner's next `git push` would run with the token at hand. Inside
//! the sandbox it has new user, PID, IPC, UTS, cgroup and network namespaces (so no other process
//! and no network), no capabilities, a minimal environment, the system directories read-only, a
//! handful of `/etc` files (never `/etc/shadow`), the working copy read-write and the working
//! copy's `.git` read-only on top of it.
//!
//! When no sandbox can be had, repository code does not run at all unless the operator opts out
//! with `PJ_ALLOW_UNSANDBOXED_CODE=true`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::config::Vars;
use super::log::Log;
use super::process::ProcessGroup;

/// `PATH` inside the sandbox (and the `bin` directories of `PJ_SANDBOX_READ_ONLY` after it).
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// `HOME` inside the sandbox: a directory on the sandbox's own `/tmp`, a tmpfs.
const SANDBOX_HOME: &str = "/tmp/home";
/// The system directories bound read-only (or re-created as symlinks on merged-/usr systems).
const SYSTEM_DIRS: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
];
/// The parts of `/etc` that programs need to run, resolve names and check certificates; all of
/// `/etc` would include `/etc/shadow` and whatever the operator keeps there.
const ETC_ENTRIES: [&str; 13] = [
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/localtime",
];
/// The task's variables the code may read: who it works for, nothing that reaches the server.
const TASK_VARS: [&str; 4] = ["TASK_ID", "TASK_ATTEMPT", "BASE_BRANCH", "BRANCH_NAME"];
/// How long the probe may take; bwrap starts in milliseconds.
const PROBE_LIMIT: Duration = Duration::from_secs(15);

/// The operator's settings for repository code.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// `PJ_SANDBOX`: the bwrap binary, a path or a name looked up on `PATH` (default `bwrap`).
    pub program: String,
    /// `PJ_SANDBOX_NETWORK=true`: the code may use the network.
    pub share_network: bool,
    /// `PJ_SANDBOX_READ_ONLY`: more directories the code may read (toolchains such as
    /// `~/.cargo`).
    pub read_only: Vec<PathBuf>,
    /// `PJ_ALLOW_UNSANDBOXED_CODE=true`: without a sandbox, run the code anyway.
    pub allow_unsandboxed: bool,
}

/// How repository code runs in this run.
#[derive(Debug, Clone)]
pub enum Jail {
    /// Inside bubblewrap.
    Sandbox(Sandbox),
    /// As a plain child process, because the operator said so; `env` is all it gets.
    Unsandboxed { env: Vec<(String, String)> },
}

impl Jail {
    /// A command that runs `argv` in the working copy `repo`, its environment cleared, leading a
    /// process group of its own.
    pub fn command(&self, argv: &[&str], repo: &Path) -> Command {
        let mut cmd = match self {
            Jail::Sandbox(sandbox) => sandbox.command(argv),
            Jail::Unsandboxed { env } => {
                let mut cmd = Command::new(argv.first().copied().unwrap_or("true"));
                cmd.args(argv.iter().skip(1))
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)));
                cmd
            }
        };
        cmd.current_dir(repo)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// How the check is described in the log and the pull request.
    pub fn describe(&self) -> &'static str {
        match self {
            Jail::Sandbox(_) => "in a sandbox",
            Jail::Unsandboxed { .. } => "WITHOUT a sandbox",
        }
    }
}

/// A bubblewrap invocation for one working copy.
#[derive(Debug, Clone)]
pub struct Sandbox {
    program: PathBuf,
    args: Vec<OsString>,
}

impl Sandbox {
    /// The sandbox for the working copy `repo`. `private` is the run's own directory (credential
    /// file, git's home): a read-only path that would show it is left out.
    pub fn new(
        config: &SandboxConfig,
        repo: &Path,
        private: &Path,
        vars: &Vars,
    ) -> Result<Sandbox, String> {
        let program = find_program(&config.program, vars)?;
        let repo = std::fs::canonicalize(repo)
            .map_err(|e| format!("the working copy {} cannot be read: {e}", repo.display()))?;
        let private = std::fs::canonicalize(private).unwrap_or_else(|_| private.to_path_buf());
        let read_only: Vec<PathBuf> = config
            .read_only
            .iter()
            // A toolchain that is not installed here is not an error.
            .filter_map(|path| std::fs::canonicalize(path).ok())
            // It would show the credential file; the operator's list cannot mean that.
            .filter(|path| !private.starts_with(path))
            .collect();
        // A toolchain's `bin` (`~/.cargo/bin`) is found without naming it, after the system's.
        let mut path = SANDBOX_PATH.to_owned();
        for bin in read_only
            .iter()
            .map(|p| p.join("bin"))
            .filter(|b| b.is_dir())
        {
            path.push(':');
            path.push_str(&bin.to_string_lossy());
        }
        let mut a = Args::default();
        a.flag("--unshare-all");
        // --unshare-all only tries a user namespace; the sandbox needs one.
        a.flag("--unshare-user");
        if config.share_network {
            a.flag("--share-net");
        }
        // Root in the new user namespace could otherwise unmount the read-only `.git`.
        a.pair("--cap-drop", "ALL");
        a.flag("--die-with-parent");
        // A new session: the code cannot push keystrokes into the runner's terminal (TIOCSTI).
        a.flag("--new-session");
        a.flag("--clearenv");
        a.pair("--setenv", "PATH");
        a.arg(&path);
        a.pair("--setenv", "HOME");
        a.arg(SANDBOX_HOME);
        a.pair("--setenv", "LANG");
        a.arg("C.UTF-8");
        a.pair("--setenv", "TMPDIR");
        a.arg("/tmp");
        for name in TASK_VARS {
            if let Some(value) = vars.get(name) {
                a.pair("--setenv", name);
                a.arg(value);
            }
        }
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                // Merged /usr: `/bin -> usr/bin` is re-created as the same symlink.
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        a.pair("--symlink", target);
                        a.arg(dir);
                    }
                }
                Ok(meta) if meta.is_dir() => a.ro_bind(path, path),
                _ => {}
            }
        }
        for entry in ETC_ENTRIES {
            a.pair("--ro-bind-try", entry);
            a.arg(entry);
        }
        a.pair("--proc", "/proc");
        a.pair("--dev", "/dev");
        a.pair("--tmpfs", "/tmp");
        a.pair("--dir", SANDBOX_HOME);
        for path in &read_only {
            a.ro_bind(path, path);
        }
        a.pair("--bind", &repo);
        a.arg(&repo);
        let git_dir = repo.join(".git");
        if git_dir.exists() {
            // Read-only on top of the writable working copy: no hooks, no config, no refs.
            a.ro_bind(&git_dir, &git_dir);
        }
        a.pair("--chdir", &repo);
        Ok(Sandbox { program, args: a.0 })
    }

    /// A command running `argv` inside the sandbox.
    fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        // bwrap's own environment is what `/proc/1/environ` shows inside: nothing of ours.
        cmd.env_clear()
            .env("PATH", SANDBOX_PATH)
            .args(&self.args)
            .arg("--")
            .args(argv);
        cmd
    }

    /// Starts `true` in the sandbox: whether bwrap exists and the kernel grants its namespaces.
    pub async fn probe(&self, repo: &Path) -> Result<(), String> {
        let mut cmd = Jail::Sandbox(self.clone()).command(&["true"], repo);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| format!("{} cannot be started: {e}", self.program.display()))?;
        let _group = ProcessGroup::of(child.id());
        match tokio::time::timeout(PROBE_LIMIT, child.wait_with_output()).await {
            Err(_) => Err(format!(
                "{} did not start `true` within {} s",
                self.program.display(),
                PROBE_LIMIT.as_secs()
            )),
            Ok(Err(e)) => Err(format!("{} failed: {e}", self.program.display())),
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let reason = stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("no message");
                Err(format!(
                    "{} refused to start ({}): {reason}",
                    self.program.display(),
                    out.status
                ))
            }
        }
    }
}

/// bwrap's arguments.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, flag: &str) {
        self.0.push(flag.into());
    }

    fn arg(&mut self, value: impl Into<OsString>) {
        self.0.push(value.into());
    }

    fn pair(&mut self, flag: &str, value: impl Into<OsString>) {
        self.flag(flag);
        self.arg(value);
    }

    fn ro_bind(&mut self, from: &Path, to: &Path) {
        self.pair("--ro-bind", from);
        self.arg(to);
    }
}

/// The bwrap binary: `program` itself when it is a path, else the first match on the run's `PATH`.
fn find_program(program: &str, vars: &Vars) -> Result<PathBuf, String> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{program} does not exist"))
        };
    }
    let search = vars.get("PATH").unwrap_or("/usr/local/bin:/usr/bin:/bin");
    std::env::split_paths(search)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("{program} is not on PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Decides how repository code runs in this run, and says so in the log: in the sandbox when it
/// can be had; else, with the operator's opt-out, without one (loudly); else not at all (`None`).
pub async fn prepare(
    config: &SandboxConfig,
    repo: &Path,
    private: &Path,
    vars: &Vars,
    log: &Log,
) -> Option<Jail> {
    let failure = match Sandbox::new(config, repo, private, vars) {
        Ok(sandbox) => match sandbox.probe(repo).await {
            Ok(()) => {
                let network = if config.share_network {
                    "with network (PJ_SANDBOX_NETWORK)"
                } else {
                    "without network"
                };
                log.system(format!(
                    "repository code runs in a bubblewrap sandbox ({}), {network}",
                    sandbox.program.display()
                ));
                return Some(Jail::Sandbox(sandbox));
            }
            Err(e) => e,
        },
        Err(e) => e,
    };
    if config.allow_unsandboxed {
        log.system(format!(
            "WARNING: no sandbox for repository code ({failure}); PJ_ALLOW_UNSANDBOXED_CODE=true, \
             so the verify command runs WITHOUT one, as this user, able to read what this user \
             can read"
        ));
        return Some(Jail::Unsandboxed {
            env: unsandboxed_env(vars),
        });
    }
    log.system(format!(
        "the verify command will not run: no sandbox for repository code ({failure}); install \
         bubblewrap, or set PJ_ALLOW_UNSANDBOXED_CODE=true to run it without one"
    ));
    None
}

/// What unsandboxed code gets: the same few variables as in the sandbox, with the host's `PATH`
/// and `HOME` (toolchains live there), and never a secret or a server URL.
fn unsandboxed_env(vars: &Vars) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_owned(),
            vars.get("PATH").unwrap_or(SANDBOX_PATH).to_owned(),
        ),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    for name in ["HOME", "TMPDIR"].into_iter().chain(TASK_VARS) {
        if let Some(value) = vars.get(name) {
            env.push((name.to_owned(), value.to_owned()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(program: &str) -> SandboxConfig {
        SandboxConfig {
            program: program.to_owned(),
            ..SandboxConfig::default()
        }
    }

    #[test]
    fn a_missing_sandbox_program_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let vars: Vars = [("PATH", "/nonexistent")].into_iter().collect();
        let err = Sandbox::new(&config("bwrap"), dir.path(), dir.path(), &vars).unwrap_err();
        assert!(err.contains("bwrap is not on PATH"), "{err}");
        let err =
            Sandbox::new(&config("/nonexistent/bwrap"), dir.path(), dir.path(), &vars).unwrap_err();
        assert!(err.contains("/nonexistent/bwrap does not exist"), "{err}");
    }

    #[test]
    fn the_git_directory_is_bound_read_only_after_the_working_copy() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        let bwrap = dir.path().join("bwrap");
        std::fs::write(&bwrap, "").unwrap();
        let sandbox = Sandbox::new(
            &config(bwrap.to_str().unwrap()),
            &repo,
            dir.path(),
            &Vars::default(),
        )
        .unwrap();
        let args: Vec<String> = sandbox
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let repo = std::fs::canonicalize(&repo).unwrap();
        let git = repo.join(".git").display().to_string();
        let bind = args.iter().position(|a| a == "--bind").unwrap();
        let ro_git = args
            .windows(2)
            .position(|w| w[0] == "--ro-bind" && w[1] == git)
            .unwrap();
        assert!(bind < ro_git, "{args:?}");
        assert!(args.contains(&"--unshare-all".to_owned()));
        assert!(!args.contains(&"--share-net".to_owned()));
        assert!(!args.iter().any(|a| a == "/etc" || a == "/etc/shadow"));
    }

    #[test]
    fn a_read_only_path_that_would_show_the_private_directory_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("run");
        let repo = private.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let bwrap = dir.path().join("bwrap");
        std::fs::write(&bwrap, "").unwrap();
        let mut settings = config(bwrap.to_str().unwrap());
        settings.read_only = vec![dir.path().to_path_buf(), PathBuf::from("/nonexistent/x")];
        let sandbox = Sandbox::new(&settings, &repo, &private, &Vars::default()).unwrap();
        let shown = std::fs::canonicalize(dir.path()).unwrap();
        assert!(!sandbox.args.iter().any(|a| a == shown.as_os_str()));
        assert!(!sandbox.args.iter().any(|a| a == "/nonexistent/x"));
    }
}
