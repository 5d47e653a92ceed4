//! The patch engine: turns a model's reply into a change of the working tree, and never
//! applies it wrongly.
//!
//! Models write broken diffs: wrong line numbers and counts, `@@ @@` with no numbers, missing
//! `a/` `b/` prefixes, drifted whitespace, a context line missing, prose and fences around
//! the diff, LF diffs for CRLF files, or search/replace blocks instead. [`parse`] reads all of
//! these; [`apply`] places every hunk with a ladder of steps, each tried only when the one
//! before fails and each accepting only a unique place, then writes every file or none.
//!
//! ```no_run
//! use pj_runner::patch::{self, ApplyOptions};
//! # let reply = "";
//! # let repo = std::path::Path::new(".");
//! let report = match patch::parse(reply) {
//!     Ok(patches) => patch::apply(repo, &patches, &ApplyOptions::default()),
//!     Err(e) => patch::Report::from(e),
//! };
//! if !report.applied {
//!     let feedback = report.feedback(); // send back to the model
//!     # let _ = feedback;
//! }
//! ```
//!
//! Layout: `parse` (reply to [`FilePatch`]es), `place` (where every hunk of a file goes),
//! `ladder` (where one hunk goes), `indent` (whitespace and re-indentation), `closest` (the
//! file's lines nearest a hunk that was not found, for feedback), `text` (files as lines with
//! their own endings), `safety` (which paths may be touched), `apply` (all results in memory),
//! `write` (all files or none), `report` (the contract's JSON and feedback).

mod apply;
mod closest;
mod indent;
mod ladder;
mod model;
mod parse;
mod place;
mod report;
mod safety;
mod text;
mod write;

pub use apply::{ApplyOptions, DEFAULT_MAX_FILE_BYTES, apply};
pub use model::{Block, Body, FilePatch, Hunk, HunkLine, Operation};
pub use parse::{ParseError, parse};
pub use report::{HunkReport, Outcome, Report, Status, Step};

impl From<ParseError> for Report {
    /// A reply that is not a readable edit is a rejected edit: nothing was changed, and the
    /// error says what to fix.
    fn from(e: ParseError) -> Self {
        Report::failure(Outcome::Rejected, e.to_string())
    }
}

/// Parses `reply` and applies it: the one call the agent needs.
pub fn apply_reply(repo: &std::path::Path, reply: &str, options: &ApplyOptions) -> Report {
    match parse(reply) {
        Ok(patches) => apply(repo, &patches, options),
        Err(e) => Report::from(e),
    }
}
