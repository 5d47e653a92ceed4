//! Git diffs and plain unified diffs: file headers, extended git headers and hunks.

use super::paths::{git_header_paths, header_path, modify_candidates, strip_git_prefixes, unquote};
use super::{ParseError, Scanner, blocks, is_fence_at_column_0};
use crate::patch::model::{Body, FilePatch, Hunk, HunkLine, Operation};

/// What the extended header lines of a `diff --git` section said.
#[derive(Default)]
struct GitHeader {
    old_path: Option<String>,
    new_path: Option<String>,
    new_mode: Option<u32>,
    created: bool,
    deleted: bool,
    rename: Option<(Option<String>, Option<String>)>,
    copy: Option<(Option<String>, Option<String>)>,
    binary: bool,
}

impl Scanner<'_> {
    /// A `diff --git` section: extended headers, optional `---`/`+++`, hunks.
    pub(super) fn git_diff(&mut self, rest: &str) -> Result<(), ParseError> {
        let start = self.at;
        let mut head = GitHeader::default();
        if let Some((old, new)) = git_header_paths(rest) {
            let (old, new) = strip_git_prefixes(Some(old), Some(new));
            head.old_path = old;
            head.new_path = new;
        }
        self.at += 1;
        while let Some(line) = self.line(self.at) {
            if let Some(mode) = line.strip_prefix("new file mode ") {
                head.created = true;
                head.new_mode = parse_mode(mode);
            } else if line.starts_with("deleted file mode ") {
                head.deleted = true;
            } else if let Some(mode) = line.strip_prefix("new mode ") {
                head.new_mode = parse_mode(mode);
            } else if line.starts_with("old mode ")
                || line.starts_with("index ")
                || line.starts_with("similarity index ")
                || line.starts_with("dissimilarity index ")
            {
                // Nothing to act on: identity and similarity are checked against content.
            } else if let Some(p) = line.strip_prefix("rename from ") {
                head.rename.get_or_insert((None, None)).0 = Some(git_name(p));
            } else if let Some(p) = line.strip_prefix("rename to ") {
                head.rename.get_or_insert((None, None)).1 = Some(git_name(p));
            } else if let Some(p) = line.strip_prefix("copy from ") {
                head.copy.get_or_insert((None, None)).0 = Some(git_name(p));
            } else if let Some(p) = line.strip_prefix("copy to ") {
                head.copy.get_or_insert((None, None)).1 = Some(git_name(p));
            } else if binary_line(line, 0).is_some() {
                head.binary = true;
            } else if line.starts_with("GIT binary patch") {
                head.binary = true;
                self.at += 1;
                // Skip the base85 payload: it runs until the next section or the fence.
                while let Some(l) = self.line(self.at) {
                    if l.starts_with("diff --git ") || is_fence_at_column_0(l) {
                        break;
                    }
                    self.at += 1;
                }
                break;
            } else {
                break;
            }
            self.at += 1;
        }
        if self.file_header_at(self.at) {
            let (old, new) = self.file_header_paths();
            // `---`/`+++` carry /dev/null, which the `diff --git` line cannot.
            head.old_path = old;
            head.new_path = new;
            if head.old_path.is_none() {
                head.created = true;
            }
            if head.new_path.is_none() {
                head.deleted = true;
            }
        }
        let body = if head.binary {
            Body::Binary
        } else {
            Body::Hunks(self.hunks()?)
        };
        let new_mode = head.new_mode;
        let operation = git_operation(head, start)?;
        let patch = FilePatch {
            operation,
            body,
            new_mode,
            reply_line: start + 1,
        };
        self.push_section(patch, start)
    }

    /// A plain `--- path` / `+++ path` section.
    pub(super) fn unified_diff(&mut self) -> Result<(), ParseError> {
        let start = self.at;
        let (old, new) = self.file_header_paths();
        let hunks = self.hunks()?;
        let operation = match (old, new) {
            (None, Some(path)) => Operation::Create { path },
            (Some(path), None) => Operation::Delete { path },
            (Some(old), Some(new)) => Operation::Modify {
                candidates: modify_candidates(&old, &new),
            },
            (None, None) => {
                return Err(ParseError::Malformed {
                    line: start + 1,
                    reason: "both --- and +++ name /dev/null; name the file to change".into(),
                });
            }
        };
        let patch = FilePatch {
            operation,
            body: Body::Hunks(hunks),
            new_mode: None,
            reply_line: start + 1,
        };
        self.push_section(patch, start)
    }

    /// A header of one line, `--- path` or `+++ path`, then hunks: the file to change.
    pub(super) fn lone_header(&mut self, path: String) -> Result<(), ParseError> {
        let start = self.at;
        self.at += 1;
        let hunks = self.hunks()?;
        let patch = FilePatch {
            operation: Operation::Modify {
                candidates: modify_candidates(&path, &path),
            },
            body: Body::Hunks(hunks),
            new_mode: None,
            reply_line: start + 1,
        };
        self.push_section(patch, start)
    }

    /// Hunks with no file header: the file is named on a line above, or is the previous edit's.
    /// Hunks of the previous edit's file join its hunks, so that they are placed together
    /// against the file the model saw (their line numbers count from it).
    pub(super) fn bare_hunks(&mut self) -> Result<(), ParseError> {
        let start = self.at;
        let Some(path) = self.path_above(start) else {
            return Err(ParseError::Malformed {
                line: start + 1,
                reason: "a hunk without a file header: put `--- a/PATH` and `+++ b/PATH` \
                         lines before the first @@ line"
                    .into(),
            });
        };
        let mut hunks = self.hunks()?;
        if self.continued_file().as_deref() == Some(path.as_str())
            && let Some(FilePatch {
                body: Body::Hunks(earlier),
                ..
            }) = self.out.last_mut()
            && !hunks.is_empty()
        {
            earlier.append(&mut hunks);
            return Ok(());
        }
        let patch = FilePatch {
            operation: Operation::Modify {
                candidates: modify_candidates(&path, &path),
            },
            body: Body::Hunks(hunks),
            new_mode: None,
            reply_line: start + 1,
        };
        self.push_section(patch, start)
    }

    /// Adds a section, refusing one that would change nothing: that is usually a diff whose
    /// hunks the model forgot, and applying the rest without them would be a partial edit.
    fn push_section(&mut self, patch: FilePatch, start: usize) -> Result<(), ParseError> {
        let no_hunks = matches!(&patch.body, Body::Hunks(h) if h.is_empty());
        if let (Operation::Modify { candidates }, true, None) =
            (&patch.operation, no_hunks, patch.new_mode)
        {
            return Err(ParseError::Malformed {
                line: start + 1,
                reason: format!(
                    "the diff of {} has no hunks: each change needs an @@ line followed by \
                     its lines",
                    candidates.first().map_or("", String::as_str)
                ),
            });
        }
        self.out.push(patch);
        Ok(())
    }

    /// Reads the `---`/`+++` pair at `self.at` and moves past it.
    fn file_header_paths(&mut self) -> (Option<String>, Option<String>) {
        let old = header_path(&self.lines[self.at]["--- ".len()..]);
        let new = header_path(&self.lines[self.at + 1]["+++ ".len()..]);
        self.at += 2;
        strip_git_prefixes(old, new)
    }

    /// Every hunk from `self.at` on. A body right after the file header without an `@@` line
    /// is read as one hunk without numbers, as models sometimes write it.
    fn hunks(&mut self) -> Result<Vec<Hunk>, ParseError> {
        let mut hunks = Vec::new();
        if let Some(line) = self.line(self.at)
            && starts_body_line(line)
            && !self.file_header_at(self.at)
        {
            let hunk = self.hunk_body(None, self.at)?;
            hunks.push(hunk);
        }
        while let Some(line) = self.line(self.at) {
            if !line.starts_with("@@") {
                break;
            }
            let header_at = self.at;
            self.at += 1;
            let hunk = self.hunk_body(Some(line), header_at)?;
            hunks.push(hunk);
        }
        Ok(hunks)
    }

    /// Reads one hunk body starting at `self.at`.
    fn hunk_body(&mut self, header: Option<&str>, header_at: usize) -> Result<Hunk, ParseError> {
        let numbers = header.map(parse_header).unwrap_or_default();
        let mut hunk = Hunk {
            old_start: numbers.old_start,
            old_count: numbers.old_count,
            new_start: numbers.new_start,
            new_count: numbers.new_count,
            lines: Vec::new(),
            old_missing_newline: false,
            new_missing_newline: false,
            header: header.unwrap_or("").to_string(),
            reply_line: header_at + 1,
        };
        // Which body lines were bare empty lines (a context line whose space was trimmed, or a
        // blank line after the diff), and where each body line sits in the reply.
        let mut bare = Vec::new();
        let mut origin = Vec::new();
        while let Some(line) = self.line(self.at) {
            if line.starts_with("@@")
                || line.starts_with("diff --git ")
                || is_fence_at_column_0(line)
                || self.file_header_at(self.at)
                || blocks::is_search(line)
                || (self.lone_header_at(self.at).is_some() && counts_allow_end(&hunk))
            {
                break;
            }
            let parsed = match line.chars().next() {
                None => Some(HunkLine::Context(String::new())),
                Some(' ') => Some(HunkLine::Context(line[1..].to_string())),
                Some('-') => Some(HunkLine::Remove(line[1..].to_string())),
                Some('+') => Some(HunkLine::Add(line[1..].to_string())),
                Some('\\') => {
                    match hunk.lines.last() {
                        Some(HunkLine::Context(_)) => {
                            hunk.old_missing_newline = true;
                            hunk.new_missing_newline = true;
                        }
                        Some(HunkLine::Remove(_)) => hunk.old_missing_newline = true,
                        Some(HunkLine::Add(_)) => hunk.new_missing_newline = true,
                        None => {}
                    }
                    self.at += 1;
                    continue;
                }
                // A bare `...` stands for unchanged lines left out, inside a fence or not.
                Some(_)
                    if (self.in_fence || matches!(line.trim(), "..." | "…"))
                        && self.hunk_goes_on(self.at + 1) =>
                {
                    Some(HunkLine::Context(line.to_string()))
                }
                Some(_) => None,
            };
            let Some(parsed) = parsed else { break };
            bare.push(line.is_empty());
            origin.push(self.at);
            hunk.lines.push(parsed);
            self.at += 1;
        }
        trim_body(&mut hunk, &bare, &origin, &mut self.at);
        if hunk.lines.is_empty() && header.is_some() && !self.header_allows_empty(&hunk) {
            return Err(ParseError::Malformed {
                line: header_at + 1,
                reason: format!("the hunk `{}` has no lines", hunk.header.trim()),
            });
        }
        Ok(hunk)
    }

    fn header_allows_empty(&self, hunk: &Hunk) -> bool {
        hunk.old_count == Some(0) && hunk.new_count == Some(0)
    }

    /// Whether the fenced hunk goes on after an unmarked line: a diff marker line follows
    /// before the fence closes or a new section starts.
    fn hunk_goes_on(&self, from: usize) -> bool {
        for at in from..self.lines.len() {
            let line = self.lines[at];
            if is_fence_at_column_0(line)
                || line.starts_with("@@")
                || line.starts_with("diff --git ")
                || self.file_header_at(at)
            {
                return false;
            }
            if line.starts_with([' ', '+', '-']) {
                return true;
            }
        }
        false
    }
}

/// Whether the body read so far may end here: the header's counts are reached, or it had
/// none. A `--- x` line before them is a removed line `-- x`, not the next file's header.
fn counts_allow_end(hunk: &Hunk) -> bool {
    match (hunk.old_count, hunk.new_count) {
        (Some(old), Some(new)) => counts_of(&hunk.lines) == (old, new),
        _ => true,
    }
}

/// A line that can open a hunk body without a header: a marked line, not a header pair.
pub(super) fn starts_body_line(line: &str) -> bool {
    (line.starts_with(' ') && !line.trim().is_empty())
        || (line.starts_with('+') && !line.starts_with("+++ "))
        || (line.starts_with('-') && !line.starts_with("--- "))
}

/// Decides where the body really ends. When the header's counts are reached exactly just
/// before a blank line, the blank line separates the diff from prose (which may even start
/// with `- `); otherwise trailing blank lines are dropped unless the counts need them.
fn trim_body(hunk: &mut Hunk, bare: &[bool], origin: &[usize], at: &mut usize) {
    let wanted = match (hunk.old_count, hunk.new_count) {
        (Some(o), Some(n)) => Some((o, n)),
        _ => None,
    };
    let mut keep = hunk.lines.len();
    if let Some(wanted) = wanted {
        let mut counts = (0, 0);
        for (i, line) in hunk.lines.iter().enumerate() {
            if counts == wanted && bare[i] && i > 0 {
                keep = i;
                break;
            }
            counts = step(counts, line);
        }
    }
    while keep > 0 && bare[keep - 1] {
        if let Some(wanted) = wanted
            && counts_of(&hunk.lines[..keep]) == wanted
        {
            break;
        }
        keep -= 1;
    }
    if keep < hunk.lines.len() {
        // The dropped lines are read again as prose.
        *at = origin[keep];
        hunk.lines.truncate(keep);
    }
}

fn step((old, new): (usize, usize), line: &HunkLine) -> (usize, usize) {
    match line {
        HunkLine::Context(_) => (old + 1, new + 1),
        HunkLine::Remove(_) => (old + 1, new),
        HunkLine::Add(_) => (old, new + 1),
    }
}

fn counts_of(lines: &[HunkLine]) -> (usize, usize) {
    lines.iter().fold((0, 0), step)
}

/// Line numbers and counts of a hunk header, as far as it has them.
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct HeaderNumbers {
    pub old_start: Option<usize>,
    pub old_count: Option<usize>,
    pub new_start: Option<usize>,
    pub new_count: Option<usize>,
}

/// Reads `@@ -a,b +c,d @@`; `@@ @@`, `@@` or anything unreadable gives no numbers. A count
/// left out means 1, as the format says.
pub(super) fn parse_header(line: &str) -> HeaderNumbers {
    fn range(s: &str, sign: char) -> Option<(usize, usize)> {
        let s = s.strip_prefix(sign)?;
        match s.split_once(',') {
            Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    }
    let rest = line.trim_start_matches('@');
    let mut words = rest.split_whitespace();
    let (Some(old), Some(new)) = (words.next(), words.next()) else {
        return HeaderNumbers::default();
    };
    match (range(old, '-'), range(new, '+')) {
        (Some((os, oc)), Some((ns, nc))) => HeaderNumbers {
            old_start: Some(os),
            old_count: Some(oc),
            new_start: Some(ns),
            new_count: Some(nc),
        },
        _ => HeaderNumbers::default(),
    }
}

fn parse_mode(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim(), 8).ok()
}

/// A path on a `rename from`/`copy to` line: unprefixed, possibly quoted.
fn git_name(s: &str) -> String {
    let s = s.trim_end();
    if s.starts_with('"') {
        unquote(s).map_or_else(|| s.to_string(), |(p, _)| p)
    } else {
        s.to_string()
    }
}

fn git_operation(head: GitHeader, start: usize) -> Result<Operation, ParseError> {
    let missing = |what: &str| ParseError::Malformed {
        line: start + 1,
        reason: format!("the diff --git section has no {what} path"),
    };
    if let Some((from, to)) = head.rename {
        return Ok(Operation::Rename {
            from: from.ok_or_else(|| missing("`rename from`"))?,
            to: to.ok_or_else(|| missing("`rename to`"))?,
        });
    }
    if let Some((from, to)) = head.copy {
        return Ok(Operation::Copy {
            from: from.ok_or_else(|| missing("`copy from`"))?,
            to: to.ok_or_else(|| missing("`copy to`"))?,
        });
    }
    if head.created {
        return Ok(Operation::Create {
            path: head.new_path.ok_or_else(|| missing("new"))?,
        });
    }
    if head.deleted {
        return Ok(Operation::Delete {
            path: head.old_path.ok_or_else(|| missing("old"))?,
        });
    }
    let new = head.new_path.ok_or_else(|| missing("new"))?;
    let old = head.old_path.unwrap_or_else(|| new.clone());
    Ok(Operation::Modify {
        candidates: modify_candidates(&old, &new),
    })
}

/// `Binary files a/x and b/x differ` (outside a git header it is a section of its own).
pub(super) fn binary_line(line: &str, reply_line: usize) -> Option<FilePatch> {
    let rest = line
        .strip_prefix("Binary files ")?
        .strip_suffix(" differ")?;
    let (old, new) = rest.split_once(" and ")?;
    let (old, new) = strip_git_prefixes(header_path(old), header_path(new));
    let path = new.or(old)?;
    Some(FilePatch {
        operation: Operation::Modify {
            candidates: vec![path],
        },
        body: Body::Binary,
        new_mode: None,
        reply_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_header_is_complete_should_read_all_numbers() {
        assert_eq!(
            parse_header("@@ -10,7 +12,8 @@ fn main() {"),
            HeaderNumbers {
                old_start: Some(10),
                old_count: Some(7),
                new_start: Some(12),
                new_count: Some(8)
            }
        );
    }

    #[test]
    fn when_count_is_left_out_should_mean_one() {
        let n = parse_header("@@ -3 +3 @@");
        assert_eq!((n.old_count, n.new_count), (Some(1), Some(1)));
    }

    #[test]
    fn when_header_has_no_numbers_should_give_none() {
        assert_eq!(parse_header("@@ @@"), HeaderNumbers::default());
        assert_eq!(parse_header("@@"), HeaderNumbers::default());
        assert_eq!(parse_header("@@ -x +y @@"), HeaderNumbers::default());
    }
}
