//! The `git` command line, so the user's git configuration (credential helpers,
//! `url.<base>.insteadOf`) applies.
//!
//! The GitHub token never reaches a URL, an argument or `.git/config`: network commands get it as
//! an `http.<https://host/>.extraheader` through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/
//! `GIT_CONFIG_VALUE_n` in their environment, which git reads like command-line `-c` options.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

use super::config::{GithubRepo, Vars};
use super::log::{Log, Stream};

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

/// What a git command printed.
#[derive(Debug, Clone)]
pub struct GitOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs git with the run's environment (minus secrets) and, for network commands, the token header.
#[derive(Clone)]
pub struct Git {
    env: Vec<(String, String)>,
    auth_env: Vec<(String, String)>,
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
    /// Git for one run. `github` and `token` set the auth header for that GitHub host only.
    pub fn new(
        vars: &Vars,
        log: Log,
        github: Option<&GithubRepo>,
        token: Option<&SecretString>,
    ) -> Self {
        let mut env: Vec<(String, String)> = vars
            .child_env()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // Never wait for a password on a terminal that is not there.
        env.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        env.push(("GCM_INTERACTIVE".into(), "never".into()));
        let mut auth_env = Vec::new();
        if let (Some(repo), Some(token)) = (github, token) {
            // Entries already given through GIT_CONFIG_COUNT stay; ours go after them.
            let first: usize = vars
                .get("GIT_CONFIG_COUNT")
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let basic = B64.encode(format!("x-access-token:{}", token.expose_secret()));
            auth_env.push((format!("GIT_CONFIG_KEY_{first}"), repo.extraheader_key()));
            auth_env.push((
                format!("GIT_CONFIG_VALUE_{first}"),
                format!("AUTHORIZATION: basic {basic}"),
            ));
            auth_env.push(("GIT_CONFIG_COUNT".into(), (first + 1).to_string()));
        }
        Git { env, auth_env, log }
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
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The watchdog drops the work; git must not outlive it.
            .kill_on_drop(true);
        if network {
            cmd.envs(self.auth_env.iter().map(|(k, v)| (k, v)));
        }
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
        let output = cmd.output().await.map_err(|e| GitError {
            command: name.to_owned(),
            status: "not started".into(),
            stderr: format!("could not run git: {e}"),
        })?;
        let out = GitOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let failed = !output.status.success();
        if !out.stderr.trim().is_empty() && (echo == Echo::Always || failed) {
            self.log.write(Stream::Stderr, out.stderr.trim_end());
        }
        Ok(out)
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
