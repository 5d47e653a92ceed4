//! The `git` command line, hardened against the repository it works on and the machine it runs on.
//!
//! Every git command runs with an empty `HOME` of the run's own, no system configuration, the
//! global configuration only when the runner environment names one (`GIT_CONFIG_GLOBAL`, else
//! `/dev/null`), no SSH agent and no askpass program; hooks off (`core.hooksPath=/dev/null`), no
//! redirects, and only the https, http and file transports. The GitHub token reaches git through
//! the `store` credential helper reading a file of mode 0600 in the run's private directory,
//! outside the working copy and out of the sandbox's sight: never in a URL, an argument, the
//! environment of git's children or `.git/config`. Each command leads a process group of its own,
//! killed whole when the work is dropped.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use pj_core::net::NetworkPolicy;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

use super::config::{GithubRepo, Vars};
use super::log::{Log, Stream};
use super::process::ProcessGroup;

/// Variables of the runner environment that git may see: locale, time zone, proxies and
/// certificates. Everything else (the host's `HOME`, `XDG_CONFIG_HOME`, `SSH_AUTH_SOCK`,
/// `GIT_ASKPASS`, other `GIT_*`) stays out.
const PASSED_VARS: [&str; 15] = [
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
];

/// Configuration every git command gets, after the runner environment's `GIT_CONFIG_*` entries
/// (command-line `-c` wins over them, and the empty `credential.helper` resets their helpers).
const HARDENING: [&str; 7] = [
    "http.followRedirects=false",
    "core.hooksPath=/dev/null",
    "credential.helper=",
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    // Local paths and `file://` URLs: the server decides whether a task may name them.
    "protocol.file.allow=always",
];

/// A git command that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("git {command} failed ({status}): {stderr}")]
pub struct GitError {
    /// The subcommand, such as `push`.
    pub command: String,
    pub status: String,
    /// The last lines git wrote to stderr.
    pub stderr: String,
}

/// The size of a staged change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiffStat {
    pub files: u32,
    pub added: u64,
    pub removed: u64,
    /// The unified diff's size in bytes.
    pub bytes: u64,
}

/// What a git command printed.
#[derive(Debug, Clone)]
pub struct GitOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs git for one run: its environment, its configuration, and for network commands the
/// credential file and the pinned addresses.
#[derive(Clone)]
pub struct Git {
    env: Vec<(String, String)>,
    /// `-c` entries for every command.
    config: Vec<String>,
    /// `-c` entries for network commands only: the credential helper, the pinned addresses.
    network_config: Vec<String>,
    log: Log,
}

/// How loud a command is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// Its stderr goes to the log (clone, fetch, push: progress a person wants to see).
    Always,
    /// Its stderr goes to the log only when it fails.
    OnFailure,
}

impl Git {
    /// Git for one run whose private directory is `private` (git's `HOME` and the credential
    /// file go there). `github` and `token` give the token to that GitHub host only.
    pub fn new(
        vars: &Vars,
        log: Log,
        private: &Path,
        github: Option<&GithubRepo>,
        token: Option<&SecretString>,
    ) -> std::io::Result<Self> {
        let home = private.join("home");
        std::fs::create_dir_all(&home)?;
        let mut env: Vec<(String, String)> = PASSED_VARS
            .iter()
            .filter_map(|name| vars.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
            .collect();
        // The runner environment's own entries (`url.<base>.insteadOf`) stay, as given.
        if let Some(count) = vars
            .get("GIT_CONFIG_COUNT")
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            env.push(("GIT_CONFIG_COUNT".into(), count.to_string()));
            for i in 0..count {
                for name in [
                    format!("GIT_CONFIG_KEY_{i}"),
                    format!("GIT_CONFIG_VALUE_{i}"),
                ] {
                    let value = vars.get(&name).unwrap_or("").to_owned();
                    env.push((name, value));
                }
            }
        }
        env.push(("HOME".into(), home.display().to_string()));
        env.push((
            "XDG_CONFIG_HOME".into(),
            home.join(".config").display().to_string(),
        ));
        env.push(("GIT_CONFIG_NOSYSTEM".into(), "1".into()));
        env.push((
            "GIT_CONFIG_GLOBAL".into(),
            vars.get("GIT_CONFIG_GLOBAL")
                .unwrap_or("/dev/null")
                .to_owned(),
        ));
        // Never wait for a password on a terminal that is not there.
        env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        env.push(("GCM_INTERACTIVE".into(), "never".into()));

        let mut network_config = Vec::new();
        if let (Some(repo), Some(token)) = (github, token) {
            let file = credential_file(private);
            write_credentials(&file, &repo.host, token)?;
            // git runs a helper with arguments through the shell: the path is quoted for it.
            let quoted = shell_words::quote(&file.to_string_lossy()).into_owned();
            network_config.push(format!("credential.helper=store --file={quoted}"));
        }
        Ok(Git {
            env,
            config: HARDENING.iter().map(|c| (*c).to_owned()).collect(),
            network_config,
            log,
        })
    }

    /// The URL git will really fetch from, after the configuration's `insteadOf` rewrites.
    pub async fn effective_url(&self, url: &str) -> Result<String, GitError> {
        let out = self
            .exec(
                None,
                &["ls-remote", "--get-url", "--", url],
                false,
                Echo::OnFailure,
            )
            .await?;
        if out.code == Some(0) {
            Ok(out.stdout.trim().to_owned())
        } else {
            Err(failure("ls-remote", &out))
        }
    }

    /// Checks where an `http(s)` `url` leads under `policy` and pins git to the addresses checked,
    /// so it cannot resolve the name again to somewhere else (DNS rebinding). Other URLs
    /// (`file://`, local paths) are no network request and pass.
    pub async fn pin(&mut self, url: &str, policy: &NetworkPolicy) -> Result<(), String> {
        let Some(pinned) = resolve_checked(url, policy).await? else {
            return Ok(());
        };
        self.network_config
            .push(format!("http.curloptResolve={pinned}"));
        Ok(())
    }

    /// Clones `url` at `branch` into `dir`: shallow where the remote allows, else in full.
    /// Returns whether the clone is shallow.
    pub async fn clone(&self, url: &str, branch: &str, dir: &Path) -> Result<bool, GitError> {
        let dir_text = dir.to_string_lossy().into_owned();
        let shallow = self
            .network(
                None,
                &[
                    "clone",
                    "--depth",
                    "1",
                    "--no-tags",
                    "--branch",
                    branch,
                    "--",
                    url,
                    &dir_text,
                ],
            )
            .await;
        match shallow {
            Ok(()) => Ok(true),
            Err(first) => {
                self.log.system(format!(
                    "a shallow clone did not work ({}); trying a full clone",
                    first.status
                ));
                if dir.exists() {
                    let _ = tokio::fs::remove_dir_all(dir).await;
                }
                self.network(None, &["clone", "--branch", branch, "--", url, &dir_text])
                    .await
                    .map(|()| false)
            }
        }
    }

    /// The commit `branch` points to on `origin`, or `None` when it does not exist there.
    pub async fn remote_branch(
        &self,
        repo: &Path,
        branch: &str,
    ) -> Result<Option<String>, GitError> {
        let reference = format!("refs/heads/{branch}");
        let out = self
            .exec(
                Some(repo),
                &["ls-remote", "--exit-code", "origin", &reference],
                true,
                Echo::OnFailure,
            )
            .await?;
        match out.code {
            Some(0) => Ok(out
                .stdout
                .split_whitespace()
                .next()
                .map(str::to_owned)
                .filter(|sha| sha.len() >= 40)),
            // `--exit-code`: 2 means no matching ref.
            Some(2) => Ok(None),
            _ => Err(failure("ls-remote", &out)),
        }
    }

    /// Fetches `branch` from `origin` into `refs/remotes/origin/<branch>`.
    pub async fn fetch_branch(
        &self,
        repo: &Path,
        branch: &str,
        shallow: bool,
    ) -> Result<(), GitError> {
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        let mut args = vec!["fetch", "--no-tags"];
        if shallow {
            args.extend(["--depth", "1"]);
        }
        args.extend(["origin", refspec.as_str()]);
        self.network(Some(repo), &args).await
    }

    /// Makes `branch` the checked-out branch, starting at `start`.
    pub async fn checkout_new(
        &self,
        repo: &Path,
        branch: &str,
        start: &str,
    ) -> Result<(), GitError> {
        self.local(repo, &["checkout", "-q", "-B", branch, start])
            .await
            .map(drop)
    }

    /// The commit `HEAD` points to.
    pub async fn head(&self, repo: &Path) -> Result<String, GitError> {
        let out = self.local(repo, &["rev-parse", "HEAD"]).await?;
        Ok(out.stdout.trim().to_owned())
    }

    /// Stages exactly `paths` (changed, added or deleted), so nothing a verify command left behind
    /// gets committed. Returns whether anything is staged.
    pub async fn stage(&self, repo: &Path, paths: &[String]) -> Result<bool, GitError> {
        let (present, gone): (Vec<&String>, Vec<&String>) =
            paths.iter().partition(|p| repo.join(p).exists());
        // `:(literal)` so a path with `*` or `?` means itself.
        let spec = |p: &&String| format!(":(literal){p}");
        if !present.is_empty() {
            let mut args = vec!["add".to_owned(), "-A".to_owned(), "--".to_owned()];
            args.extend(present.iter().map(spec));
            self.local_owned(repo, &args).await?;
        }
        if !gone.is_empty() {
            let mut args: Vec<String> = ["rm", "-q", "--cached", "--ignore-unmatch", "--"]
                .map(str::to_owned)
                .to_vec();
            args.extend(gone.iter().map(spec));
            self.local_owned(repo, &args).await?;
        }
        let out = self
            .exec(
                Some(repo),
                &["diff", "--cached", "--quiet"],
                false,
                Echo::OnFailure,
            )
            .await?;
        match out.code {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(failure("diff", &out)),
        }
    }

    /// Whether any of `paths` differs from `HEAD` (or is new).
    pub async fn changed(&self, repo: &Path, paths: &[String]) -> Result<bool, GitError> {
        if paths.is_empty() {
            return Ok(false);
        }
        let mut args: Vec<String> = ["status", "--porcelain", "--untracked-files=all", "--"]
            .map(str::to_owned)
            .to_vec();
        args.extend(paths.iter().map(|p| format!(":(literal){p}")));
        let out = self.local_owned(repo, &args).await?;
        Ok(!out.stdout.trim().is_empty())
    }

    /// Commits what is staged, as `name <email>`.
    /// The staged change against `HEAD`: files, lines added and removed (a binary file counts
    /// no lines), and the size of its unified diff (of at most the 4 MiB of output kept).
    pub async fn staged_stat(&self, repo: &Path) -> Result<DiffStat, GitError> {
        let plain = [
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
        ];
        let mut args = vec!["diff", "--cached", "--numstat"];
        args.extend(plain);
        let numstat = self.local(repo, &args).await?;
        let mut stat = DiffStat::default();
        for line in numstat.stdout.lines().filter(|l| !l.is_empty()) {
            let mut fields = line.split('\t');
            let mut count = || {
                fields
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            stat.added += count();
            stat.removed += count();
            stat.files += 1;
        }
        let mut args = vec!["diff", "--cached"];
        args.extend(plain);
        let diff = self.local(repo, &args).await?;
        stat.bytes = diff.stdout.len() as u64;
        Ok(stat)
    }

    pub async fn commit(
        &self,
        repo: &Path,
        message: &str,
        name: &str,
        email: &str,
    ) -> Result<(), GitError> {
        let identity = [
            ("GIT_AUTHOR_NAME", name),
            ("GIT_AUTHOR_EMAIL", email),
            ("GIT_COMMITTER_NAME", name),
            ("GIT_COMMITTER_EMAIL", email),
        ];
        let mut cmd = self.command(Some(repo), &["commit", "-q", "-m", message], false);
        cmd.envs(identity);
        let out = self.finish("commit", cmd, Echo::OnFailure).await?;
        if out.code == Some(0) {
            Ok(())
        } else {
            Err(failure("commit", &out))
        }
    }

    /// Pushes `HEAD` to `branch` on `origin`, if the branch is still where it was (`expected`, or
    /// absent when `None`): a force push, but only over our own last state of the branch.
    pub async fn push(
        &self,
        repo: &Path,
        branch: &str,
        expected: Option<&str>,
    ) -> Result<(), GitError> {
        let lease = format!(
            "--force-with-lease=refs/heads/{branch}:{}",
            expected.unwrap_or("")
        );
        let target = format!("HEAD:refs/heads/{branch}");
        self.network(Some(repo), &["push", &lease, "origin", &target])
            .await
    }

    async fn network(&self, repo: Option<&Path>, args: &[&str]) -> Result<(), GitError> {
        let out = self.exec(repo, args, true, Echo::Always).await?;
        if out.code == Some(0) {
            Ok(())
        } else {
            Err(failure(args.first().copied().unwrap_or("git"), &out))
        }
    }

    async fn local(&self, repo: &Path, args: &[&str]) -> Result<GitOutput, GitError> {
        let out = self.exec(Some(repo), args, false, Echo::OnFailure).await?;
        if out.code == Some(0) {
            Ok(out)
        } else {
            Err(failure(args.first().copied().unwrap_or("git"), &out))
        }
    }

    async fn local_owned(&self, repo: &Path, args: &[String]) -> Result<GitOutput, GitError> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.local(repo, &refs).await
    }

    fn command(&self, repo: Option<&Path>, args: &[&str], network: bool) -> Command {
        let mut cmd = Command::new("git");
        let extra = if network {
            &self.network_config[..]
        } else {
            &[]
        };
        for entry in self.config.iter().chain(extra) {
            cmd.arg("-c").arg(entry);
        }
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The watchdog or a signal drops the work; git and what it started must not
            // outlive it.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = repo {
            cmd.current_dir(dir);
        }
        cmd
    }

    async fn exec(
        &self,
        repo: Option<&Path>,
        args: &[&str],
        network: bool,
        echo: Echo,
    ) -> Result<GitOutput, GitError> {
        let cmd = self.command(repo, args, network);
        self.finish(args.first().copied().unwrap_or("git"), cmd, echo)
            .await
    }

    async fn finish(
        &self,
        name: &str,
        mut cmd: Command,
        echo: Echo,
    ) -> Result<GitOutput, GitError> {
        let not_run = |e: std::io::Error| GitError {
            command: name.to_owned(),
            status: "not started".into(),
            stderr: format!("could not run git: {e}"),
        };
        let mut child = cmd.spawn().map_err(not_run)?;
        let _group = ProcessGroup::of(child.id());
        // A remote decides how much git prints (its `remote:` messages): keep a bounded part.
        let (stdout, stderr, status) = tokio::join!(
            capped(child.stdout.take()),
            capped(child.stderr.take()),
            child.wait()
        );
        let status = status.map_err(not_run)?;
        let out = GitOutput {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        let failed = !status.success();
        if !out.stderr.trim().is_empty() && (echo == Echo::Always || failed) {
            self.log.write(Stream::Stderr, out.stderr.trim_end());
        }
        Ok(out)
    }
}

/// The most of one git output stream that is kept; the rest is read and dropped.
const MAX_GIT_OUTPUT: usize = 4 * 1024 * 1024;

/// Reads `pipe` to its end, keeping its first [`MAX_GIT_OUTPUT`] bytes.
async fn capped(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_GIT_OUTPUT.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&chunk[..room]);
            }
        }
    }
}

fn failure(command: &str, out: &GitOutput) -> GitError {
    let tail: Vec<&str> = out
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = tail.len().saturating_sub(6);
    GitError {
        command: command.to_owned(),
        status: match out.code {
            Some(code) => format!("exit {code}"),
            None => "killed".into(),
        },
        stderr: tail[start..].join(" | "),
    }
}

/// The run's credential file, beside (never inside) the working copy.
pub fn credential_file(private: &Path) -> PathBuf {
    private.join("git-credentials")
}

/// Writes the `store` helper's file, readable by this user only, for `host` only.
fn write_credentials(file: &Path, host: &str, token: &SecretString) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut url = Url::parse(&format!("https://{host}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let invalid = |()| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad credential");
    url.set_username("x-access-token").map_err(invalid)?;
    url.set_password(Some(token.expose_secret().trim()))
        .map_err(invalid)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    // The store helper wants no trailing slash: `https://user:password@host`.
    writeln!(f, "{}", url.as_str().trim_end_matches('/'))
}

/// Resolves the host of an `http(s)` URL and checks every address under `policy`; the pin for
/// curl (`host:port:addr,addr`), or `None` when there is nothing to resolve.
async fn resolve_checked(url: &str, policy: &NetworkPolicy) -> Result<Option<String>, String> {
    let Ok(parsed) = Url::parse(url) else {
        return Ok(None);
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Ok(None);
    }
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("{url} has no port"))?;
    let (host, ips): (String, Vec<IpAddr>) = match parsed.host() {
        None => return Err(format!("{url} has no host")),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), vec![IpAddr::V4(ip)]),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), vec![IpAddr::V6(ip)]),
        Some(url::Host::Domain(name)) => {
            let found = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("{name} cannot be resolved: {e}"))?;
            let mut ips: Vec<IpAddr> = found.map(|a| a.ip()).collect();
            ips.sort();
            ips.dedup();
            (name.to_owned(), ips)
        }
    };
    policy.check_all(&host, &ips)?;
    if parsed
        .host()
        .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
    {
        // An address is its own pin.
        return Ok(None);
    }
    let addrs: Vec<String> = ips
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    Ok(Some(format!("{host}:{port}:{}", addrs.join(","))))
}

/// The URL to clone: a local path becomes a `file://` URL, so `--depth` works on it too.
pub fn clone_url(target: &str) -> String {
    let looks_remote = target.contains("://") || scp_like(target);
    if looks_remote {
        return target.to_owned();
    }
    let path = PathBuf::from(target);
    let absolute = std::fs::canonicalize(&path).unwrap_or(path);
    format!("file://{}", absolute.to_string_lossy())
}

/// `user@host:path`, git's short ssh form (a path with a colon before any slash).
fn scp_like(target: &str) -> bool {
    match (target.find(':'), target.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && colon > 0,
        (Some(colon), None) => colon > 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(token: &str) -> (tempfile::TempDir, Git) {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("run with spaces");
        std::fs::create_dir_all(&private).unwrap();
        let vars: Vars = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", "/nonexistent".to_owned()),
        ]
        .into_iter()
        .collect();
        let repo = GithubRepo {
            host: "github.com".into(),
            owner: "o".into(),
            name: "r".into(),
        };
        let (log, _) = Log::start(Default::default(), Box::new(std::io::sink()), None);
        let token = SecretString::from(token.to_owned());
        let git = Git::new(&vars, log, &private, Some(&repo), Some(&token)).unwrap();
        (dir, git)
    }

    /// What git's credential machinery answers for `host`, as a network command would ask.
    async fn credential_for(git: &Git, host: &str) -> String {
        use tokio::io::AsyncWriteExt as _;
        let mut cmd = git.command(None, &["credential", "fill"], true);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("protocol=https\nhost={host}\n\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[tokio::test]
    async fn the_token_reaches_git_for_the_github_host_only_from_a_private_file() {
        let (dir, git) = world("ghs_t0ken");
        let answer = credential_for(&git, "github.com").await;
        assert!(answer.contains("username=x-access-token\n"), "{answer}");
        assert!(answer.contains("password=ghs_t0ken\n"), "{answer}");
        let file = credential_file(&dir.path().join("run with spaces"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = credential_for(&git, "evil.example").await;
        assert!(!other.contains("ghs_t0ken"), "{other}");
    }

    #[tokio::test]
    async fn a_host_that_resolves_to_loopback_is_refused_and_a_public_address_pinned() {
        let strict = NetworkPolicy::default();
        let refused = resolve_checked("https://localhost/o/r", &strict).await;
        assert!(refused.unwrap_err().contains("loopback"));
        let refused = resolve_checked("http://[::1]:8080/o/r", &strict).await;
        assert!(refused.is_err());
        let open = NetworkPolicy {
            allow_private: true,
        };
        let pinned = resolve_checked("https://localhost:8443/o/r", &open)
            .await
            .unwrap()
            .unwrap();
        assert!(pinned.starts_with("localhost:8443:"), "{pinned}");
        assert!(
            resolve_checked("file:///srv/r", &strict)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            resolve_checked("https://93.184.215.14/o/r", &strict)
                .await
                .unwrap()
                .is_none(),
            "an address needs no pin"
        );
    }

    #[test]
    fn local_paths_become_file_urls_and_remotes_stay() {
        assert_eq!(
            clone_url("https://github.com/o/r"),
            "https://github.com/o/r"
        );
        assert_eq!(
            clone_url("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(clone_url("file:///srv/r"), "file:///srv/r");
        assert!(clone_url("/nonexistent/pj/r").starts_with("file:///nonexistent/pj/r"));
    }
}
