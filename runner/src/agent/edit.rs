//! The conversation that produces the change: ask, apply the reply with the patch engine, verify,
//! and send failures back to the model for at most two more rounds each.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pj_core::agent::{AgentMetadata, HunkPlacement};
use pj_core::task::Usage;
use tokio::time::Instant;

use super::budget::{Budget, Spend};
use super::callback::{Callbacks, Delivery, Persistence};
use super::git::{Git, GitError};
use super::log::Log;
use super::prompt;
use super::sandbox::Jail;
use super::verify::{self, Verdict, VerifyCommand};
use crate::patch;
use pj_llm::{Conversation, LlmError, ModelClient};

/// Rounds of feedback after the first reply, for edits that do not apply and for failed checks.
pub const EXTRA_ROUNDS: u32 = 2;

/// How the verification of the final change went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// No `PJ_VERIFY_CMD` and no `.pithy/verify`.
    NotConfigured,
    /// There is a check, but it did not run: no sandbox for repository code could be had and
    /// the operator did not allow code to run without one.
    NoSandbox(String),
    Passed(String),
    /// Still failing after the rounds of feedback.
    Failed {
        command: String,
        status: String,
        tail: String,
    },
}

/// Where the conversation ended.
#[derive(Debug)]
pub enum Edited {
    /// The working tree holds the change: these paths were written.
    Changed {
        files: Vec<String>,
        checked: Checked,
    },
    /// No reply applied. `report` is the engine's last report.
    PatchFailed { report: String },
    /// The edits applied but left every file as it was.
    NoChanges,
}

/// Why the conversation stopped early.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("the patch engine stopped: {0}")]
    Engine(String),
    /// `PJ_MAX_COST_USD` holds the next model call back.
    #[error("{0}")]
    Budget(String),
}

/// What the conversation needs.
pub struct Editor<'a> {
    pub repo: &'a Path,
    pub model: &'a ModelClient,
    pub usage: &'a Arc<Mutex<Usage>>,
    /// What the agent did, kept up to date round by round.
    pub metadata: &'a Arc<Mutex<AgentMetadata>>,
    pub log: &'a Log,
    /// Where the replies are kept as artifacts (none in tests that do not look).
    pub callbacks: Option<&'a Callbacks>,
    pub git: &'a Git,
    /// The check and where it runs; `None` when there is none to run.
    pub verify: Option<(&'a VerifyCommand, &'a Jail)>,
    /// What to report when `verify` is `None`.
    pub unverified: Checked,
    pub verify_timeout: Duration,
    pub allow_workflows: bool,
    /// When the work must be done.
    pub until: Instant,
    /// The spending cap, checked before each model call.
    pub budget: Option<Budget>,
}

impl Editor<'_> {
    /// Runs the conversation from its first message.
    pub async fn run(&self, mut conversation: Conversation) -> Result<Edited, EditError> {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut patch_rounds = 0;
        let mut verify_rounds = 0;
        let mut last_failure: Option<Checked> = None;
        let mut round = 0;
        let mut spend = self.budget.map(Spend::new);
        loop {
            round += 1;
            if let Some(spend) = &spend {
                spend
                    .check(self.model.active_name())
                    .map_err(EditError::Budget)?;
            }
            let label = self.model.label();
            self.log.system(format!("asking {label} (round {round})"));
            let log = self.log.clone();
            let note = move |text: String| log.system(text);
            let answered = self.model.complete(&conversation, &note, self.until).await;
            let fallback = self.model.fell_back_to();
            self.note(|m| {
                m.rounds = round;
                m.fallback = fallback;
            });
            let reply = answered?;
            let cost = self.count(&reply);
            if let Some(note) = spend
                .as_mut()
                .and_then(|s| s.record(&reply.model, reply.input_tokens, cost))
            {
                self.log.system(note);
            }
            // One line per round: the reply itself is not kept in the log (the metadata and
            // the engine's report below say what it did).
            self.log.system(format!(
                "round {round}: {} replied with {} bytes ({} tokens in, {} out{})",
                self.model.label(),
                reply.text.len(),
                reply.input_tokens,
                reply.output_tokens,
                if self.model.label() == label {
                    ""
                } else {
                    ", as the fallback"
                }
            ));
            self.keep_reply(round, &reply.text).await;
            if reply.truncated {
                self.log
                    .system("the reply hit the output token limit (PJ_MAX_OUTPUT_TOKENS); it may be cut off");
            }

            let applied = self.apply(&reply.text).await?;
            self.note(|m| {
                if round == 1 {
                    m.first_round_applied = Some(matches!(applied, Applied::Written { .. }));
                }
                if let Applied::Written { hunks, .. } = &applied {
                    m.hunks
                        .extend(hunks.iter().map(|h| HunkPlacement { round, ..h.clone() }));
                }
            });
            let feedback = match applied {
                Applied::Written { files, summary, .. } => {
                    self.log.system(format!("the edits applied:\n{summary}"));
                    patch_rounds = 0;
                    touched.extend(files);
                    None
                }
                Applied::Rejected { report, feedback } => {
                    self.log
                        .system(format!("the edits did not apply:\n{report}"));
                    Some((report, feedback))
                }
            };
            if let Some((report, feedback)) = feedback {
                if patch_rounds == EXTRA_ROUNDS {
                    return Ok(match last_failure {
                        // Earlier edits are in place; the fix for the failed check is what failed.
                        Some(checked) if !touched.is_empty() => Edited::Changed {
                            files: touched.into_iter().collect(),
                            checked,
                        },
                        _ => Edited::PatchFailed { report },
                    });
                }
                patch_rounds += 1;
                conversation.follow_up(reply.text, feedback);
                continue;
            }

            let files: Vec<String> = touched.iter().cloned().collect();
            if !self.git.changed(self.repo, &files).await? {
                return Ok(Edited::NoChanges);
            }
            let Some((command, jail)) = self.verify else {
                return Ok(Edited::Changed {
                    files,
                    checked: self.unverified.clone(),
                });
            };
            let left = self.until.saturating_duration_since(Instant::now());
            let limit = self.verify_timeout.min(left);
            match verify::run(command, jail, self.repo, limit, self.log).await {
                Verdict::Passed => {
                    return Ok(Edited::Changed {
                        files,
                        checked: Checked::Passed(command.0.clone()),
                    });
                }
                Verdict::Failed { status, tail } => {
                    let checked = Checked::Failed {
                        command: command.0.clone(),
                        status: status.clone(),
                        tail: tail.clone(),
                    };
                    if verify_rounds == EXTRA_ROUNDS {
                        return Ok(Edited::Changed { files, checked });
                    }
                    verify_rounds += 1;
                    last_failure = Some(checked);
                    conversation.follow_up(
                        reply.text,
                        prompt::verify_feedback(&command.0, &status, &tail),
                    );
                }
            }
        }
    }

    /// Updates what the attempt's final event will say the agent did.
    fn note(&self, change: impl FnOnce(&mut AgentMetadata)) {
        let mut metadata = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut metadata);
    }

    /// Adds the reply's usage to the attempt's; returns its cost.
    /// Keeps the reply as the attempt's artifact `a{attempt}-reply-{round}.md` (kept as long as
    /// the log). Losing it costs the record, not the work: a failure is a log line.
    async fn keep_reply(&self, round: u32, text: &str) {
        let Some(callbacks) = self.callbacks else {
            return;
        };
        let name = format!("a{}-reply-{round}.md", callbacks.attempt().0);
        let log = self.log.clone();
        let note = move |text: String| log.system(text);
        match callbacks
            .send_text_artifact(&name, text, Persistence::brief(), &note)
            .await
        {
            Delivery::Delivered => self.log.system(format!("the reply is kept as {name}")),
            Delivery::Superseded => {}
            Delivery::Rejected { detail, .. } | Delivery::GaveUp { detail } => self
                .log
                .system(format!("the reply could not be kept as {name}: {detail}")),
        }
    }

    fn count(&self, reply: &pj_llm::Reply) -> Option<f64> {
        let call = self.model.usage_of(reply);
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        *usage = usage.add(&call);
        call.cost_usd
    }

    /// Applies a reply with the patch engine, off the async threads (it reads and writes files).
    async fn apply(&self, reply: &str) -> Result<Applied, EditError> {
        let repo: PathBuf = self.repo.to_path_buf();
        let reply = reply.to_owned();
        let allow_workflows = self.allow_workflows;
        tokio::task::spawn_blocking(move || apply_reply(&repo, &reply, allow_workflows))
            .await
            .map_err(|e| EditError::Engine(e.to_string()))
    }
}

/// What the engine did with one reply.
#[derive(Debug)]
enum Applied {
    /// Every edit applied; these files were written, the hunks placed so.
    Written {
        files: Vec<String>,
        summary: String,
        hunks: Vec<HunkPlacement>,
    },
    /// Nothing was written. `report` is for the log, `feedback` for the model.
    Rejected { report: String, feedback: String },
}

fn apply_reply(repo: &Path, reply: &str, allow_workflows: bool) -> Applied {
    let options = patch::ApplyOptions {
        allow_workflows,
        ..patch::ApplyOptions::default()
    };
    let report = patch::apply_reply(repo, reply, &options);
    let summary = summarize(&report);
    if report.applied {
        let hunks = report
            .hunks
            .iter()
            .map(|h| HunkPlacement {
                file: h.file.clone(),
                round: 0,
                status: h.status.as_str().to_owned(),
                step: h.step.map(|s| s.id().to_owned()),
            })
            .collect();
        Applied::Written {
            files: report.files,
            summary,
            hunks,
        }
    } else {
        // The engine words its feedback for the model: what failed, and that nothing changed.
        Applied::Rejected {
            feedback: prompt::capped(&report.feedback()),
            report: summary,
        }
    }
}

/// The engine's report as lines for the log: one per hunk, and the error if any.
fn summarize(report: &patch::Report) -> String {
    let mut lines: Vec<String> = report
        .hunks
        .iter()
        .map(|h| {
            let status = match h.status {
                patch::Status::Failed => "FAILED",
                other => other.as_str(),
            };
            format!("  {} [{status}] {}", h.file, h.message)
        })
        .collect();
    if let Some(error) = &report.error {
        lines.push(format!("  {error}"));
    }
    lines.join("\n")
}
