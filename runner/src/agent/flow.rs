//! One attempt from start to report: validate, announce, clone, pick context, edit, verify,
//! deliver, report, all under a watchdog that stops the work before the deadline.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pj_core::agent::{AgentMetadata, usd};
use pj_core::task::{TaskError, Usage, codes};
use tokio::time::Instant;

use super::Finish;
use super::callback::{Callbacks, Delivery, Event, EventKind, Persistence};
use super::config::{Config, Remote, Reporting, Vars};
use super::edit::{Checked, Edited, Editor};
use super::git::{Git, clone_url};
use super::github::{Github, PullRequest};
use super::log::{Log, Output};
use super::prompt;
use super::sandbox;
use super::scrub::Scrubber;
use super::verify::VerifyCommand;
use crate::context::{ContextOptions, build_context};
use pj_llm::{Conversation, ModelClient};

/// Error codes this runner reports beyond the contract's list.
pub mod extra_codes {
    /// The runner environment is missing a variable or has a wrong one.
    pub const INVALID_ENVIRONMENT: &str = "invalid_environment";
    /// The repository or its base branch could not be cloned.
    pub const CLONE_FAILED: &str = "clone_failed";
    /// The working tree could not be read for context.
    pub const CONTEXT_FAILED: &str = "context_failed";
    /// A local git step (checkout, commit) failed.
    pub const GIT_FAILED: &str = "git_failed";
    /// `needs_review`: the model's edits applied but changed nothing.
    pub const NO_CHANGES: &str = "no_changes";
    /// `needs_review`: the change is pushed (as a draft pull request) but its check fails.
    pub const VERIFY_FAILED: &str = "verify_failed";
}

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The most time the final flush of the log may take.
const FINAL_FLUSH: Duration = Duration::from_secs(10);
/// The most time the log's flush may take after a signal: whoever sent it is waiting.
const SIGNAL_FLUSH: Duration = Duration::from_secs(2);

/// How the work ended.
#[derive(Debug, Clone)]
enum Outcome {
    Completed {
        branch: String,
        pr_url: Option<String>,
    },
    NeedsReview {
        error: TaskError,
        branch: Option<String>,
        pr_url: Option<String>,
    },
    Failed(TaskError),
    /// The server answered 409: the attempt is cancelled or superseded.
    Superseded,
}

/// An early end of the work; `?` carries it out of each step.
type Step<T> = Result<T, Outcome>;

fn failed(code: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed(TaskError::new(code, message))
}

/// Sends events, noting failed tries in the log.
#[derive(Clone)]
struct Reporter {
    callbacks: Callbacks,
    log: Log,
}

impl Reporter {
    async fn send(&self, event: Event, persistence: Persistence) -> Delivery {
        let log = self.log.clone();
        let note = move |text: String| log.system(text);
        self.callbacks.send_event(&event, persistence, &note).await
    }

    /// A progress note; doubles as the check that the attempt is still wanted.
    async fn progress(&self, message: &str) -> Step<()> {
        self.log.system(message);
        let event = Event::new(EventKind::Progress).message(message);
        match self.send(event, Persistence::brief()).await {
            Delivery::Superseded => Err(Outcome::Superseded),
            _ => Ok(()),
        }
    }
}

/// Runs one attempt with `vars` as its environment, printing its log to `out`, until the work is
/// done or `stop` (a signal) names why it must end.
pub async fn run(vars: Vars, mut out: Output, stop: impl Future<Output = &'static str>) -> Finish {
    let scrubber = Scrubber::new(vars.secret_values());
    let http = match reqwest::Client::builder()
        .user_agent(format!("pj-runner/{VERSION}"))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            let _ = writeln!(out, "pj-runner: could not set up HTTP: {e}");
            return Finish::InvalidEnvironment;
        }
    };
    let reporting = match Reporting::from_vars(&vars) {
        Ok(reporting) => reporting,
        Err(problems) => {
            // Without these nothing can be reported; say what is wrong where a person looks.
            let _ = writeln!(out, "pj-runner: {}", scrubber.scrub(&problems.to_string()));
            return Finish::InvalidEnvironment;
        }
    };
    let callbacks = Callbacks::new(http.clone(), reporting.clone(), scrubber.clone());
    let (log, shipper) = Log::start(scrubber.clone(), out, Some(callbacks.clone()));
    log.system(format!(
        "pj-runner {VERSION}: task {} attempt {}",
        reporting.task_id, reporting.attempt
    ));
    let reporter = Reporter {
        callbacks,
        log: log.clone(),
    };

    let config = match Config::from_vars(&vars) {
        Ok(config) => config,
        Err(problems) => {
            log.system(problems.to_string());
            let outcome = failed(extra_codes::INVALID_ENVIRONMENT, problems.to_string());
            let until = Instant::now() + Duration::from_secs(60);
            let finish = report(&reporter, &log, outcome, Usage::default(), None, until).await;
            shipper.close();
            return finish;
        }
    };

    let deadline = instant_of(config.deadline);
    let work_until = deadline
        .checked_sub(config.deadline_margin)
        .unwrap_or_else(Instant::now);
    let usage = Arc::new(Mutex::new(Usage {
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: Some(0.0),
        model: Some(config.model.name.clone()),
    }));

    match reporter
        .send(
            Event::new(EventKind::Started),
            Persistence::patient(Some(work_until)),
        )
        .await
    {
        Delivery::Delivered => {}
        Delivery::Superseded => {
            log.system("the server says this attempt is no longer current (409); stopping");
            log.flush(FINAL_FLUSH).await;
            shipper.close();
            return Finish::Superseded;
        }
        Delivery::Rejected { status, detail } => {
            // A bad signature or body is a bug; every later callback would fail the same way.
            log.system(format!(
                "the server refused task.started (HTTP {status}): {detail}; stopping"
            ));
            log.flush(FINAL_FLUSH).await;
            shipper.close();
            return Finish::Undelivered;
        }
        Delivery::GaveUp { detail } => {
            log.system(format!(
                "task.started could not be delivered ({detail}); working on, the final report \
                 will try again"
            ));
        }
    }

    let stage = Arc::new(Mutex::new("starting"));
    let metadata = Arc::new(Mutex::new(AgentMetadata::default()));
    let work = Work {
        config: &config,
        vars: &vars,
        http: &http,
        log: &log,
        reporter: &reporter,
        usage: &usage,
        metadata: &metadata,
        stage: &stage,
        until: work_until,
        task_id: reporting.task_id.as_str(),
        attempt: reporting.attempt.0,
    };
    let outcome = tokio::select! {
        // The deadline wins a tie: past it, nothing more may be done.
        biased;
        signal = stop => {
            // The work future is dropped here: its process groups are killed and its private
            // directory (working copy, credential file) removed before the line below.
            log.system(format!("stopped by {signal}"));
            log.note_dropped();
            log.flush(SIGNAL_FLUSH).await;
            shipper.close();
            return Finish::Stopped;
        }
        () = tokio::time::sleep_until(work_until) => {
            let at = *stage.lock().unwrap_or_else(|e| e.into_inner());
            log.system(format!("the deadline is near; stopping the work ({at})"));
            failed(
                codes::TIMEOUT,
                format!(
                    "the attempt reached its deadline ({}, less a {} s margin to report) while {at}",
                    config.deadline.to_rfc3339(),
                    config.deadline_margin.as_secs()
                ),
            )
        }
        outcome = work.run() => outcome,
    };
    let spent = usage.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let did = metadata.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Before the first model call the agent did nothing worth telling.
    let did = (did.rounds > 0).then(|| did.bounded());
    let finish = report(&reporter, &log, outcome, spent, did, deadline).await;
    shipper.close();
    finish
}

/// Flushes the log, then sends the final event; the exit status follows from its delivery.
async fn report(
    reporter: &Reporter,
    log: &Log,
    outcome: Outcome,
    usage: Usage,
    metadata: Option<AgentMetadata>,
    until: Instant,
) -> Finish {
    log.note_dropped();
    let event = match outcome {
        Outcome::Superseded => {
            log.system("the server says this attempt is no longer current (409); stopping quietly");
            log.flush(FINAL_FLUSH).await;
            return Finish::Superseded;
        }
        Outcome::Completed { branch, pr_url } => {
            let mut e = Event::new(EventKind::Completed).message(match &pr_url {
                Some(url) => format!("pull request {url}"),
                None => format!("branch {branch} pushed"),
            });
            e.branch = Some(branch);
            e.pr_url = pr_url;
            e
        }
        Outcome::NeedsReview {
            error,
            branch,
            pr_url,
        } => {
            let mut e = Event::new(EventKind::NeedsReview).message(error.message.clone());
            e.error = Some(error);
            e.branch = branch;
            e.pr_url = pr_url;
            e
        }
        Outcome::Failed(error) => {
            let mut e = Event::new(EventKind::Failed).message(error.message.clone());
            e.error = Some(error);
            e
        }
    };
    note_outcome(log, &event);
    note_usage(log, &usage);
    if let Some(m) = &metadata {
        note_metadata(log, m);
    }
    let left = until.saturating_duration_since(Instant::now());
    log.flush(FINAL_FLUSH.min(left / 2)).await;
    let event = Event {
        usage: Some(usage),
        metadata,
        ..event
    };
    match reporter
        .send(event, Persistence::patient(Some(until)))
        .await
    {
        Delivery::Delivered => Finish::Reported,
        Delivery::Superseded => {
            log.system("the server says this attempt is no longer current (409)");
            log.flush(Duration::from_secs(2)).await;
            Finish::Superseded
        }
        Delivery::Rejected { status, detail } => {
            log.system(format!(
                "the server refused the final event (HTTP {status}): {detail}"
            ));
            log.flush(Duration::from_secs(2)).await;
            Finish::Undelivered
        }
        Delivery::GaveUp { detail } => {
            log.system(format!("the final event could not be delivered: {detail}"));
            log.flush(Duration::from_secs(2)).await;
            Finish::Undelivered
        }
    }
}

fn note_outcome(log: &Log, event: &Event) {
    let what = match &event.error {
        Some(error) => format!(
            "{} ({}): {}",
            event.kind.as_str(),
            error.code,
            error.message
        ),
        None => format!(
            "{}: {}",
            event.kind.as_str(),
            event.message.as_deref().unwrap_or("")
        ),
    };
    log.system(format!("reporting {what}"));
}

fn note_usage(log: &Log, usage: &Usage) {
    let cost = match usage.cost_usd {
        Some(c) => format!("${c:.4}"),
        None => "unknown cost".to_owned(),
    };
    log.system(format!(
        "model usage: {} tokens in, {} out, {cost}",
        usage.input_tokens, usage.output_tokens
    ));
}

fn note_metadata(log: &Log, m: &AgentMetadata) {
    let first = match m.first_round_applied {
        Some(true) => "applied",
        Some(false) => "did not apply",
        None => "none",
    };
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    log.system(format!(
        "the agent: {} (the first one's edits {first}); {} changed, +{} -{} lines, a {}-byte \
         patch",
        plural(m.rounds.into(), "round", "rounds"),
        plural(m.files_changed.into(), "file", "files"),
        m.lines_added,
        m.lines_removed,
        m.patch_bytes
    ));
}

/// The tokio instant of a wall-clock time (now, when it is past).
fn instant_of(at: chrono::DateTime<Utc>) -> Instant {
    let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Everything the work reads.
struct Work<'a> {
    config: &'a Config,
    vars: &'a Vars,
    http: &'a reqwest::Client,
    log: &'a Log,
    reporter: &'a Reporter,
    usage: &'a Arc<Mutex<Usage>>,
    metadata: &'a Arc<Mutex<AgentMetadata>>,
    stage: &'a Arc<Mutex<&'static str>>,
    until: Instant,
    task_id: &'a str,
    attempt: u32,
}

impl Work<'_> {
    async fn run(&self) -> Outcome {
        let dir = match self.workdir() {
            Ok(dir) => dir,
            Err(e) => {
                return failed(
                    extra_codes::CLONE_FAILED,
                    format!("could not make a working directory: {e}"),
                );
            }
        };
        let repo = dir.path().join("repo");
        let outcome = match self.steps(dir.path(), &repo).await {
            Ok(outcome) | Err(outcome) => outcome,
        };
        // The token's file goes first, even when the working tree stays for a person.
        let _ = std::fs::remove_file(super::git::credential_file(dir.path()));
        if self.config.keep_alive {
            let kept = dir.keep();
            self.log.system(format!(
                "KEEP_ALIVE: the working tree stays at {}",
                kept.display()
            ));
        }
        outcome
    }

    fn workdir(&self) -> std::io::Result<tempfile::TempDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("pj-runner-");
        match &self.config.workdir {
            Some(parent) => {
                std::fs::create_dir_all(parent)?;
                builder.tempdir_in(parent)
            }
            None => builder.tempdir(),
        }
    }

    fn at(&self, stage: &'static str) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = stage;
    }

    /// The steps of the work in `private`, the run's own directory, with the working copy at
    /// `repo` inside it.
    async fn steps(&self, private: &Path, repo: &Path) -> Step<Outcome> {
        let c = self.config;
        let github = match &c.remote {
            Remote::Github(repo) => Some(repo),
            Remote::Other => None,
        };
        let mut git = Git::new(
            self.vars,
            self.log.clone(),
            private,
            github,
            c.github_token.as_ref(),
        )
        .map_err(|e| {
            failed(
                extra_codes::GIT_FAILED,
                format!("could not prepare git's private directory: {e}"),
            )
        })?;

        self.at("cloning the repository");
        self.reporter
            .progress(&format!("cloning {} at {}", c.target_repo, c.base_branch))
            .await?;
        let expected = self.checkout(&mut git, repo).await?;

        let verify = VerifyCommand::find(c.verify_cmd.as_deref(), repo);
        let (jail, unverified) = match &verify {
            Some(cmd) => {
                self.log
                    .system(format!("the change will be checked with: {}", cmd.0));
                match sandbox::prepare(&c.sandbox, repo, private, self.vars, self.log).await {
                    Some(jail) => (Some(jail), Checked::NotConfigured),
                    None => (None, Checked::NoSandbox(cmd.0.clone())),
                }
            }
            None => {
                self.log.system(
                    "no PJ_VERIFY_CMD and no .pithy/verify: the change will not be checked",
                );
                (None, Checked::NotConfigured)
            }
        };

        self.at("picking context");
        let context = self.context(repo).await?;

        self.at("asking the model");
        self.reporter
            .progress(&format!(
                "asking {}/{}",
                c.model.provider.as_str(),
                c.model.name
            ))
            .await?;
        let model = ModelClient::new(self.http.clone(), c.model.clone(), c.fallback.clone());
        let conversation = Conversation::new(
            prompt::SYSTEM.to_owned(),
            prompt::task_message(&c.prompt, c.coderabbit_analysis.as_deref(), &context),
        );
        let editor = Editor {
            repo,
            model: &model,
            usage: self.usage,
            metadata: self.metadata,
            log: self.log,
            callbacks: Some(&self.reporter.callbacks),
            git: &git,
            verify: verify.as_ref().zip(jail.as_ref()),
            unverified,
            verify_timeout: c.verify_timeout,
            allow_workflows: c.allow_workflows,
            until: self.until,
            budget: c.budget,
        };
        if let Some(budget) = &c.budget {
            self.log.system(format!(
                "spending cap PJ_MAX_COST_USD {}; earlier attempts of the task spent {}",
                usd(budget.cap),
                usd(budget.earlier)
            ));
        }
        let edited = editor.run(conversation).await.map_err(|e| match e {
            super::edit::EditError::Llm(e) => failed(codes::LLM_FAILED, e.to_string()),
            super::edit::EditError::Git(e) => failed(extra_codes::GIT_FAILED, e.to_string()),
            super::edit::EditError::Engine(e) => failed(codes::PATCH_FAILED, e),
            super::edit::EditError::Budget(e) => failed(codes::BUDGET_EXCEEDED, e),
        })?;
        let (files, checked) = match edited {
            Edited::Changed { files, checked } => (files, checked),
            Edited::PatchFailed { report } => {
                return Ok(Outcome::NeedsReview {
                    error: TaskError::new(
                        codes::PATCH_FAILED,
                        format!(
                            "the model's edits did not apply after {} rounds of feedback: {}",
                            super::edit::EXTRA_ROUNDS,
                            first_lines(&report, 12)
                        ),
                    ),
                    branch: None,
                    pr_url: None,
                });
            }
            Edited::NoChanges => return Ok(no_changes()),
        };

        self.at("committing");
        let staged = git
            .stage(repo, &files)
            .await
            .map_err(|e| failed(extra_codes::GIT_FAILED, e.to_string()))?;
        if !staged {
            return Ok(no_changes());
        }
        match git.staged_stat(repo).await {
            Ok(stat) => {
                let mut m = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
                m.files_changed = stat.files;
                m.lines_added = stat.added;
                m.lines_removed = stat.removed;
                m.patch_bytes = stat.bytes;
            }
            // The numbers are for reports; the change goes on without them.
            Err(e) => self
                .log
                .system(format!("could not measure the change: {e}")),
        }
        let message = self.commit_message(&model);
        git.commit(repo, &message, &c.author.name, &c.author.email)
            .await
            .map_err(|e| failed(extra_codes::GIT_FAILED, e.to_string()))?;

        self.at("pushing");
        self.reporter
            .progress(&format!("pushing branch {}", c.branch))
            .await?;
        git.push(repo, &c.branch, expected.as_deref())
            .await
            .map_err(|e| {
                failed(
                    codes::PUSH_FAILED,
                    format!("could not push {}: {e}", c.branch),
                )
            })?;

        let needs_review = matches!(checked, Checked::Failed { .. });
        let pr_url = match github {
            Some(gh) => {
                self.at("opening the pull request");
                self.reporter.progress("opening the pull request").await?;
                let client = Github::new(
                    self.http.clone(),
                    c.github_api_url.clone(),
                    gh.clone(),
                    c.github_token.clone(),
                );
                let pr = PullRequest {
                    title: prompt::title(&c.prompt),
                    body: self.pr_body(&model, &checked),
                    head: c.branch.clone(),
                    base: c.base_branch.clone(),
                    draft: needs_review,
                };
                let url = client.open_or_update(&pr, self.log).await.map_err(|e| {
                    failed(
                        codes::PR_FAILED,
                        format!("branch {} was pushed, but {e}", c.branch),
                    )
                })?;
                Some(url)
            }
            None => {
                self.log.system(format!(
                    "{} is not a GitHub repository: the branch {} is the result",
                    c.target_repo, c.branch
                ));
                None
            }
        };

        Ok(match checked {
            Checked::Failed {
                command,
                status,
                tail,
            } => Outcome::NeedsReview {
                error: TaskError::new(
                    extra_codes::VERIFY_FAILED,
                    format!(
                        "`{command}` still fails ({status}) after {} rounds of fixes; the change \
                         is pushed for review. Last output: {}",
                        super::edit::EXTRA_ROUNDS,
                        last_lines(&tail, 8)
                    ),
                ),
                branch: Some(c.branch.clone()),
                pr_url,
            },
            Checked::Passed(_) | Checked::NotConfigured | Checked::NoSandbox(_) => {
                Outcome::Completed {
                    branch: c.branch.clone(),
                    pr_url,
                }
            }
        })
    }

    /// Clones the base branch and checks out the task branch: from the remote's copy when a
    /// previous attempt pushed it, so a retry updates it. Returns where the remote branch was.
    async fn checkout(&self, git: &mut Git, repo: &Path) -> Step<Option<String>> {
        let c = self.config;
        let clone_failed =
            |e: super::git::GitError| failed(extra_codes::CLONE_FAILED, e.to_string());
        let url = clone_url(&c.target_repo);
        // The rule applies where git really goes, after the configuration's `insteadOf`.
        let effective = git.effective_url(&url).await.map_err(clone_failed)?;
        git.pin(&effective, &c.network).await.map_err(|e| {
            failed(
                extra_codes::CLONE_FAILED,
                format!("{} is not cloned: {e}", c.target_repo),
            )
        })?;
        let shallow = git
            .clone(&url, &c.base_branch, repo)
            .await
            .map_err(clone_failed)?;
        let existing = git
            .remote_branch(repo, &c.branch)
            .await
            .map_err(clone_failed)?;
        match &existing {
            Some(sha) => {
                self.log.system(format!(
                    "branch {} already exists (a retry): continuing from {}",
                    c.branch,
                    short(sha)
                ));
                git.fetch_branch(repo, &c.branch, shallow)
                    .await
                    .map_err(clone_failed)?;
                git.checkout_new(
                    repo,
                    &c.branch,
                    &format!("refs/remotes/origin/{}", c.branch),
                )
                .await
                .map_err(|e| failed(extra_codes::GIT_FAILED, e.to_string()))?;
            }
            None => {
                git.checkout_new(repo, &c.branch, "HEAD")
                    .await
                    .map_err(|e| failed(extra_codes::GIT_FAILED, e.to_string()))?;
            }
        }
        let head = git
            .head(repo)
            .await
            .map_err(|e| failed(extra_codes::GIT_FAILED, e.to_string()))?;
        self.log.system(format!(
            "working on branch {} at {}",
            c.branch,
            short(&head)
        ));
        Ok(existing)
    }

    async fn context(&self, repo: &Path) -> Step<String> {
        let options = ContextOptions {
            token_budget: self.config.context_tokens,
            ..ContextOptions::default()
        };
        let root: PathBuf = repo.to_path_buf();
        let task = self.config.prompt.clone();
        let built = tokio::task::spawn_blocking(move || build_context(&root, &task, &options))
            .await
            .map_err(|e| failed(extra_codes::CONTEXT_FAILED, e.to_string()))?
            .map_err(|e| failed(extra_codes::CONTEXT_FAILED, format!("{e:#}")))?;
        let top: Vec<&str> = built
            .ranking
            .iter()
            .take(8)
            .map(|r| r.path.as_str())
            .collect();
        self.log.system(format!(
            "context: {} files considered, {} whole, {} outlined, about {} of {} tokens; most relevant: {}",
            built.file_count,
            built.files.len(),
            built.outline.len(),
            built.token_estimate,
            built.token_budget,
            top.join(", ")
        ));
        Ok(built.render())
    }

    fn commit_message(&self, model: &ModelClient) -> String {
        let message = format!(
            "{}\n\nPithy Jaunt task {} (attempt {}), model {}.\n",
            prompt::title(&self.config.prompt),
            self.task_id,
            self.attempt,
            model.described()
        );
        Scrubber::new(self.vars.secret_values()).scrub(&message)
    }

    fn pr_body(&self, model: &ModelClient, checked: &Checked) -> String {
        let usage = self.usage.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let cost = match usage.cost_usd {
            Some(c) => format!("${c:.4}"),
            None => "unknown (no price for this model)".to_owned(),
        };
        let verification = match checked {
            Checked::NotConfigured => "not configured".to_owned(),
            Checked::NoSandbox(cmd) => format!("`{cmd}` not run: no sandbox"),
            Checked::Passed(cmd) => format!("`{cmd}` passed"),
            Checked::Failed {
                command, status, ..
            } => format!("`{command}` **failed** ({status}); this draft needs review"),
        };
        let mut body = String::new();
        body.push_str("## Task\n\n");
        let task: String = self.config.prompt.trim().chars().take(20_000).collect();
        body.push_str(&task);
        body.push_str("\n\n## Run\n\n");
        body.push_str("| | |\n|---|---|\n");
        body.push_str(&format!(
            "| Task | `{}` (attempt {}) |\n",
            self.task_id, self.attempt
        ));
        body.push_str(&format!("| Model | `{}` |\n", model.described()));
        body.push_str(&format!(
            "| Tokens | {} in, {} out |\n",
            usage.input_tokens, usage.output_tokens
        ));
        body.push_str(&format!("| Cost | {cost} |\n"));
        body.push_str(&format!("| Verification | {verification} |\n"));
        if let Checked::Failed { tail, .. } = checked {
            body.push_str("\n<details><summary>Last output of the check</summary>\n\n```\n");
            body.push_str(&last_lines(tail, 40));
            body.push_str("\n```\n\n</details>\n");
        }
        body.push_str("\n---\nOpened by Pithy Jaunt. Review it like any other change.\n");
        // The body is public; a secret must not reach it by any route (the task text included).
        Scrubber::new(self.vars.secret_values()).scrub(&body)
    }
}

fn no_changes() -> Outcome {
    Outcome::NeedsReview {
        error: TaskError::new(
            extra_codes::NO_CHANGES,
            "the model's edits left the repository unchanged; nothing was pushed",
        ),
        branch: None,
        pr_url: None,
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join(" | ")
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
