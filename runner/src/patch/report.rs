//! The outcome of applying an edit: the contract's JSON, and feedback text for the model.

use serde::Serialize;

/// The contract's status of one hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Applied at the stated line, or a search/replace block matched exactly.
    Exact,
    /// The exact text was found elsewhere, or without line numbers.
    Offset,
    /// Applied ignoring whitespace or indentation, with context trimmed, with a context line
    /// the hunk left out, or in parts around `...` lines.
    Fuzzy,
    /// Not applied.
    Failed,
}

impl Status {
    /// The contract's name: `exact`, `offset`, `fuzzy` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Exact => "exact",
            Status::Offset => "offset",
            Status::Fuzzy => "fuzzy",
            Status::Failed => "failed",
        }
    }
}

/// The step of the ladder that placed a hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The old lines are exactly at the line the header states.
    ExactAtLine,
    /// A search/replace block's SEARCH lines occur exactly once.
    SearchExact,
    /// The old lines occur exactly once elsewhere than the stated line.
    ExactElsewhere,
    /// The header had no line numbers, or counts that disagree with the body; the body's old
    /// lines occur exactly once.
    Recounted,
    /// The old lines occur once when trailing whitespace is ignored.
    TrailingWhitespace,
    /// The old lines occur once with their indentation changed (shifted by a constant, or
    /// tabs for spaces, or another width); added lines are re-indented the same way.
    Indentation,
    /// The old lines occur once with whitespace ignored; the edit's changed lines follow the
    /// file's whitespace and stay as written.
    Whitespace,
    /// The old lines occur once with one line of the file between two of them, which is kept.
    MissingLine,
    /// The hunk's outer context lines were dropped until the rest occurred once.
    TrimmedContext,
    /// The hunk's lines between `...` lines were placed each on its own, in order.
    Elision,
}

impl Step {
    /// The contract's status for a hunk placed by this step.
    pub fn status(self) -> Status {
        match self {
            Step::ExactAtLine | Step::SearchExact => Status::Exact,
            Step::ExactElsewhere | Step::Recounted => Status::Offset,
            Step::TrailingWhitespace
            | Step::Indentation
            | Step::Whitespace
            | Step::MissingLine
            | Step::TrimmedContext
            | Step::Elision => Status::Fuzzy,
        }
    }

    /// The step as an identifier, for metadata (`exact_at_line`, `indentation`, ...).
    pub fn id(self) -> &'static str {
        match self {
            Step::ExactAtLine => "exact_at_line",
            Step::SearchExact => "search_exact",
            Step::ExactElsewhere => "exact_elsewhere",
            Step::Recounted => "recounted",
            Step::TrailingWhitespace => "trailing_whitespace",
            Step::Indentation => "indentation",
            Step::Whitespace => "whitespace",
            Step::MissingLine => "missing_line",
            Step::TrimmedContext => "trimmed_context",
            Step::Elision => "elision",
        }
    }

    /// A short name, for tables.
    pub fn name(self) -> &'static str {
        match self {
            Step::ExactAtLine => "exact at line",
            Step::SearchExact => "search exact",
            Step::ExactElsewhere => "exact elsewhere",
            Step::Recounted => "recounted",
            Step::TrailingWhitespace => "trailing whitespace",
            Step::Indentation => "indentation",
            Step::Whitespace => "whitespace",
            Step::MissingLine => "missing line",
            Step::TrimmedContext => "trimmed context",
            Step::Elision => "parts around `...`",
        }
    }
}

/// What happened to one hunk or block (or to a whole file, when it failed before its hunks
/// were tried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HunkReport {
    /// The file, relative to the repository.
    pub file: String,
    /// The contract's status.
    pub status: Status,
    /// Where it applied, or why not, in words a model can act on.
    pub message: String,
    /// The ladder step that placed it; `None` when it failed.
    #[serde(skip)]
    pub step: Option<Step>,
}

/// How the run ended, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Every hunk applied (with `check`: would apply) and was written.
    Applied,
    /// Something did not apply; the tree is as before.
    #[default]
    Rejected,
    /// Reading or writing failed; the tree is as before where rollback could restore it.
    Error,
}

/// The whole result, serialized as the contract's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Report {
    /// Every hunk applied and was written (with `check`: every hunk would apply).
    pub applied: bool,
    /// Files changed (with `check`: that would change), repository-relative; empty when
    /// nothing was applied.
    pub files: Vec<String>,
    /// One entry per hunk or block, in the order of the reply.
    pub hunks: Vec<HunkReport>,
    /// Why the edit could not be read or the tree not read or written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How the run ended.
    #[serde(skip)]
    pub outcome: Outcome,
}

impl Report {
    /// A report of a run that stopped before any hunk was tried.
    pub fn failure(outcome: Outcome, error: impl Into<String>) -> Self {
        Report {
            error: Some(error.into()),
            outcome,
            ..Report::default()
        }
    }

    /// The process exit code of the contract: 0 applied, 1 rejected, 2 error.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Applied => 0,
            Outcome::Rejected => 1,
            Outcome::Error => 2,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Serializing plain strings and enums cannot fail; still never print nothing.
            format!(r#"{{"applied":false,"files":[],"hunks":[],"error":"{e}"}}"#)
        })
    }

    /// Feedback for the model: what failed and why, so that it can send a corrected edit.
    /// Empty when everything applied.
    pub fn feedback(&self) -> String {
        if self.outcome == Outcome::Applied {
            return String::new();
        }
        let mut out = String::from(
            "Your edit was not applied and no file was changed: an edit applies whole or not \
             at all.\n",
        );
        if let Some(error) = &self.error {
            out.push_str(&format!("\n{error}\n"));
        }
        let failed: Vec<&HunkReport> = self
            .hunks
            .iter()
            .filter(|h| h.status == Status::Failed)
            .collect();
        if !failed.is_empty() {
            let ok = self.hunks.len() - failed.len();
            out.push_str(&format!(
                "\n{} of {} hunks failed ({ok} would apply):\n",
                failed.len(),
                self.hunks.len()
            ));
            for h in failed {
                out.push_str(&format!("\n{}: {}\n", h.file, h.message));
            }
        }
        out.push_str(
            "\nSend the whole edit again with these problems fixed. Copy context and removed \
             lines exactly from the current file, with a few unchanged lines around each \
             change.\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_serialized_should_match_the_contract_shape() {
        let report = Report {
            applied: true,
            files: vec!["src/lib.rs".into()],
            hunks: vec![HunkReport {
                file: "src/lib.rs".into(),
                status: Status::Offset,
                message: "hunk 1 applied at line 12".into(),
                step: Some(Step::ExactElsewhere),
            }],
            error: None,
            outcome: Outcome::Applied,
        };
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid json");
        assert_eq!(
            json,
            serde_json::json!({
                "applied": true,
                "files": ["src/lib.rs"],
                "hunks": [{"file": "src/lib.rs", "status": "offset", "message": "hunk 1 applied at line 12"}]
            })
        );
    }

    #[test]
    fn when_some_hunks_failed_should_give_feedback_on_those_only() {
        let report = Report {
            hunks: vec![
                HunkReport {
                    file: "a.rs".into(),
                    status: Status::Exact,
                    message: "hunk 1 applied at line 1".into(),
                    step: Some(Step::ExactAtLine),
                },
                HunkReport {
                    file: "a.rs".into(),
                    status: Status::Failed,
                    message: "hunk 2: lines not found".into(),
                    step: None,
                },
            ],
            ..Report::default()
        };
        let text = report.feedback();
        assert!(text.contains("1 of 2 hunks failed"));
        assert!(text.contains("a.rs: hunk 2: lines not found"));
        assert!(!text.contains("hunk 1 applied"));
    }

    #[test]
    fn when_everything_applied_should_give_no_feedback() {
        let report = Report {
            applied: true,
            outcome: Outcome::Applied,
            ..Report::default()
        };
        assert_eq!(report.feedback(), "");
        assert_eq!(report.exit_code(), 0);
    }
}
