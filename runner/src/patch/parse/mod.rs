//! Turns a model's reply into [`FilePatch`]es: git diffs, plain unified diffs and search/replace
//! blocks, fenced or not, with prose anywhere around them.
//!
//! The reply is read once, top to bottom. Anything that is not part of an edit is prose and
//! skipped; an edit that starts but cannot be read to its end is an error, because applying
//! the rest of the reply without it would be a partial edit.

mod blocks;
mod diff;
mod paths;

use super::model::{Body, FilePatch, Operation};

/// Why a reply could not be read as an edit. The message is written for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing in the reply looks like a diff or a search/replace block.
    #[error(
        "the reply contains no edit: send a unified diff (--- a/path, +++ b/path, @@ hunks) \
         or search/replace blocks (a path line, then <<<<<<< SEARCH, =======, >>>>>>> REPLACE)"
    )]
    NoEdit,
    /// An edit starts but is broken.
    #[error("line {line} of the reply: {reason}")]
    Malformed {
        /// 1-based line of the reply.
        line: usize,
        /// What is wrong, in words a model can act on.
        reason: String,
    },
}

/// Reads every edit in `reply`, in order.
pub fn parse(reply: &str) -> Result<Vec<FilePatch>, ParseError> {
    // `lines` rather than `split`: a final newline must not read as one more (empty) line.
    let lines: Vec<&str> = reply
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut scanner = Scanner {
        lines: &lines,
        at: 0,
        in_fence: false,
        diff_fence: false,
        out: Vec::new(),
    };
    scanner.run()?;
    if scanner.out.is_empty() {
        return Err(ParseError::NoEdit);
    }
    Ok(scanner.out)
}

/// Reading state over the reply's lines.
struct Scanner<'a> {
    lines: &'a [&'a str],
    at: usize,
    /// Inside a fenced code block: there a line without a diff marker may still be a context
    /// line whose leading space the model dropped.
    in_fence: bool,
    /// The open fence says its content is a diff (```` ```diff ````, ```` ```patch ````).
    diff_fence: bool,
    out: Vec<FilePatch>,
}

impl<'a> Scanner<'a> {
    fn run(&mut self) -> Result<(), ParseError> {
        while self.at < self.lines.len() {
            let line = self.lines[self.at];
            if is_fence(line) {
                self.in_fence = !self.in_fence;
                let info = line.trim_start().trim_start_matches(['`', '~']).trim();
                self.diff_fence = self.in_fence && matches!(info, "diff" | "patch" | "udiff");
                self.at += 1;
            } else if blocks::is_search(line) {
                self.search_replace()?;
            } else if let Some(rest) = line.strip_prefix("diff --git ") {
                self.git_diff(rest)?;
            } else if self.file_header_at(self.at) {
                self.unified_diff()?;
            } else if let Some(path) = self.lone_header_at(self.at) {
                self.lone_header(path)?;
            } else if line.starts_with("@@") {
                self.bare_hunks()?;
            } else if self.diff_fence
                && diff::starts_body_line(line)
                && self.continued_file().is_some()
            {
                // A diff block with neither header nor `@@` line after an edit: more of the
                // same file, as a model writes a second block for a change further down.
                self.bare_hunks()?;
            } else if let Some(patch) = diff::binary_line(line, self.at + 1) {
                self.out.push(patch);
                self.at += 1;
            } else {
                self.at += 1;
            }
        }
        Ok(())
    }

    fn line(&self, at: usize) -> Option<&'a str> {
        self.lines.get(at).copied()
    }

    /// A `--- path` line directly followed by `+++ path`.
    fn file_header_at(&self, at: usize) -> bool {
        matches!(
            (self.line(at), self.line(at + 1)),
            (Some(a), Some(b)) if a.starts_with("--- ") && b.starts_with("+++ ")
        )
    }

    /// A `--- path` (or `+++ path`) line alone, followed by an `@@` line: a file header that
    /// lost its other half. Returns the path.
    fn lone_header_at(&self, at: usize) -> Option<String> {
        let line = self.line(at)?;
        let rest = line
            .strip_prefix("--- ")
            .or_else(|| line.strip_prefix("+++ "))?;
        if !self.line(at + 1)?.starts_with("@@") {
            return None;
        }
        paths::header_path(rest)
    }

    /// The file of the previous edit, when it is a diff changing an existing file: hunks
    /// without a header of their own continue it.
    fn continued_file(&self) -> Option<String> {
        match self.out.last() {
            Some(FilePatch {
                operation: Operation::Modify { candidates },
                body: Body::Hunks(_),
                ..
            }) => candidates.first().cloned(),
            _ => None,
        }
    }

    /// The path a headerless edit refers to: a path line just above it (above its fence, if
    /// it opens one), else the file of the previous edit.
    fn path_above(&self, at: usize) -> Option<String> {
        let mut k = at;
        let mut fences = 0;
        while k > 0 {
            k -= 1;
            let line = self.lines[k].trim();
            if line.is_empty() {
                continue;
            }
            if is_fence(line) && fences == 0 {
                fences += 1;
                continue;
            }
            if let Some(path) = paths::path_line(line) {
                return Some(path);
            }
            break;
        }
        self.out
            .last()
            .map(|p| p.operation.display_path().to_string())
    }
}

/// A fence line of Markdown: three or more backticks or tildes, possibly with an info string.
fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// A fence at column 0. Inside a hunk, an indented fence is a context line of a Markdown file.
fn is_fence_at_column_0(line: &str) -> bool {
    line.starts_with("```") || line.starts_with("~~~")
}

#[cfg(test)]
mod tests;
