//! Applying parsed edits: every result is computed in memory first, and the tree is written
//! only when every hunk of every file applied.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::indent::Shift;
use super::ladder::{self, Edit, Hay, Miss, Op};
use super::model::{Block, Body, FilePatch, Hunk, HunkLine, Operation};
use super::place::{self, Failure, Fate, Part};
use super::report::{HunkReport, Outcome, Report, Status, Step};
use super::safety::{self, PathError, RepoPath};
use super::text::{NotText, Text};
use super::write::{self, Change, Original};

/// How to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Only find out whether the edit applies; write nothing.
    pub check: bool,
    /// Allow changes under `.github/workflows/`.
    pub allow_workflows: bool,
    /// Refuse a file larger than this, before or after the edit.
    pub max_file_bytes: u64,
}

/// The default size limit: 1 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            check: false,
            allow_workflows: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Applies `patches` to the working tree at `repo`, all or nothing.
pub fn apply(repo: &Path, patches: &[FilePatch], options: &ApplyOptions) -> Report {
    let root = match repo.canonicalize() {
        Ok(root) if root.is_dir() => root,
        Ok(_) => {
            return Report::failure(
                Outcome::Error,
                format!("{} is not a directory", repo.display()),
            );
        }
        Err(e) => {
            return Report::failure(
                Outcome::Error,
                format!("cannot open the repository {}: {e}", repo.display()),
            );
        }
    };
    let mut tree = Tree {
        root,
        options,
        slots: Vec::new(),
        index: HashMap::new(),
        hunks: Vec::new(),
        io_error: None,
    };
    for patch in patches {
        tree.file(patch);
    }
    tree.finish()
}

/// A file's state while the edit is computed.
struct Slot {
    path: RepoPath,
    original: Option<Loaded>,
    /// `None`: the file does not exist (any more).
    current: Option<Text>,
    /// Executable bit to set, when the edit says.
    executable: Option<bool>,
    /// The file on disk is not text; `current` is a placeholder until the edit replaces it.
    not_text: Option<NotText>,
}

/// A file as read from disk.
struct Loaded {
    original: Original,
    text: Result<Text, NotText>,
}

/// A failure of one file, before or while its hunks are tried.
enum Fault {
    /// Reported as a failed hunk; the edit is rejected.
    Refused(String),
    /// The file system failed; the run ends with an error.
    Io(String),
}

impl From<PathError> for Fault {
    fn from(e: PathError) -> Self {
        match e {
            PathError::Refused(m) => Fault::Refused(m),
            PathError::Io(m) => Fault::Io(m),
        }
    }
}

struct Tree<'a> {
    root: PathBuf,
    options: &'a ApplyOptions,
    slots: Vec<Slot>,
    index: HashMap<String, usize>,
    hunks: Vec<HunkReport>,
    io_error: Option<String>,
}

impl Tree<'_> {
    fn file(&mut self, patch: &FilePatch) {
        let label = patch.operation.display_path().to_string();
        let before = self.hunks.len();
        if let Err(fault) = self.try_file(patch) {
            let message = match fault {
                Fault::Refused(m) => m,
                Fault::Io(m) => {
                    self.io_error.get_or_insert_with(|| m.clone());
                    m
                }
            };
            // One entry for the file, replacing its hunks' entries: they were not applied.
            self.hunks.truncate(before);
            self.hunks.push(HunkReport {
                file: label,
                status: Status::Failed,
                message,
                step: None,
            });
        }
    }

    fn try_file(&mut self, patch: &FilePatch) -> Result<(), Fault> {
        if patch.body == Body::Binary {
            return Err(Fault::Refused(format!(
                "{} has a binary patch, which is never applied: edit text files only",
                patch.operation.display_path()
            )));
        }
        let executable = patch.new_mode.map(|m| m & 0o111 != 0);
        match &patch.operation {
            Operation::Modify { candidates } => {
                let slot = self.existing(candidates)?;
                let text = self.text_of(slot)?;
                let hunks = hunks_of(&patch.body);
                let rel = self.slots[slot].path.rel.clone();
                if let Some(result) = self.run_hunks(&rel, text, hunks) {
                    self.set(slot, Some(result))?;
                }
                if executable.is_some() {
                    self.slots[slot].executable = executable;
                }
            }
            Operation::Create { path } => {
                let slot = self.slot(path)?;
                if let Some(text) = &self.slots[slot].current
                    && (!text.is_blank() || self.slots[slot].not_text.is_some())
                {
                    return Err(Fault::Refused(format!(
                        "{} already exists: to change it, send a diff against its current \
                         content instead of one from /dev/null",
                        self.slots[slot].path.rel
                    )));
                }
                let rel = self.slots[slot].path.rel.clone();
                let text = self.created(&rel, hunks_of(&patch.body))?;
                self.set(slot, Some(text))?;
                self.slots[slot].executable = Some(executable.unwrap_or(false));
            }
            Operation::Delete { path } => {
                let slot = self.existing(std::slice::from_ref(path))?;
                let hunks = hunks_of(&patch.body);
                if hunks.is_empty() {
                    self.set(slot, None)?;
                } else {
                    let text = self.text_of(slot)?;
                    let rel = self.slots[slot].path.rel.clone();
                    if let Some(rest) = self.run_hunks(&rel, text, hunks) {
                        if !rest.is_blank() {
                            return Err(Fault::Refused(format!(
                                "the diff deletes {rel} but its lines leave {} line(s) of it: \
                                 to delete a file, remove every line (or send the deletion \
                                 without hunks)",
                                rest.lines.len()
                            )));
                        }
                        self.set(slot, None)?;
                    }
                }
            }
            Operation::Rename { from, to } | Operation::Copy { from, to } => {
                let source = self.existing(std::slice::from_ref(from))?;
                let target = self.slot(to)?;
                if source != target && self.slots[target].current.is_some() {
                    return Err(Fault::Refused(format!(
                        "cannot {} {} to {}: {} already exists",
                        if matches!(patch.operation, Operation::Rename { .. }) {
                            "rename"
                        } else {
                            "copy"
                        },
                        self.slots[source].path.rel,
                        self.slots[target].path.rel,
                        self.slots[target].path.rel
                    )));
                }
                let text = self.text_of(source)?;
                let rel = self.slots[target].path.rel.clone();
                let Some(result) = self.run_hunks(&rel, text, hunks_of(&patch.body)) else {
                    return Ok(());
                };
                let was_executable = self.executable_now(source);
                if matches!(patch.operation, Operation::Rename { .. }) {
                    self.set(source, None)?;
                }
                self.set(target, Some(result))?;
                self.slots[target].executable = executable.or(Some(was_executable));
            }
            Operation::Blocks { path } => {
                let slot = self.slot(path)?;
                let Body::Blocks(blocks) = &patch.body else {
                    return Ok(());
                };
                let rel = self.slots[slot].path.rel.clone();
                let current = match &self.slots[slot].current {
                    Some(_) => Some(self.text_of(slot)?),
                    None => None,
                };
                if let Some(result) = self.run_blocks(&rel, current, blocks)? {
                    let created = self.slots[slot].current.is_none();
                    self.set(slot, Some(result))?;
                    if created {
                        self.slots[slot].executable = Some(false);
                    }
                }
            }
        }
        Ok(())
    }

    /// The slot for `raw`, loading the file on first use.
    fn slot(&mut self, raw: &str) -> Result<usize, Fault> {
        let path = safety::check(&self.root, raw, self.options.allow_workflows)?;
        if let Some(&i) = self.index.get(&path.rel) {
            return Ok(i);
        }
        let original = self.load(&path)?;
        let (current, not_text) = match original.as_ref().map(|l| &l.text) {
            None => (None, None),
            Some(Ok(text)) => (Some(text.clone()), None),
            Some(Err(why)) => (Some(Text::empty()), Some(*why)),
        };
        let i = self.slots.len();
        self.index.insert(path.rel.clone(), i);
        self.slots.push(Slot {
            path,
            original,
            current,
            executable: None,
            not_text,
        });
        Ok(i)
    }

    /// The first of `candidates` that exists (on disk or by this edit).
    fn existing(&mut self, candidates: &[String]) -> Result<usize, Fault> {
        for raw in candidates {
            let slot = self.slot(raw)?;
            if self.slots[slot].current.is_some() {
                return Ok(slot);
            }
        }
        let shown = candidates.first().map_or("", String::as_str);
        Err(Fault::Refused(format!(
            "{shown} does not exist: check the path (relative to the repository root), or \
             create the file with a diff from /dev/null"
        )))
    }

    fn load(&self, path: &RepoPath) -> Result<Option<Loaded>, Fault> {
        let meta = match fs::symlink_metadata(&path.abs) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Fault::Io(format!("cannot read {}: {e}", path.rel))),
        };
        if meta.is_dir() {
            return Err(Fault::Refused(format!(
                "{} is a directory, not a file",
                path.rel
            )));
        }
        if !meta.is_file() {
            return Err(Fault::Refused(format!(
                "{} is not a regular file",
                path.rel
            )));
        }
        if meta.len() > self.options.max_file_bytes {
            return Err(Fault::Refused(format!(
                "{} is {} bytes, over the limit of {} bytes for patched files",
                path.rel,
                meta.len(),
                self.options.max_file_bytes
            )));
        }
        let bytes =
            fs::read(&path.abs).map_err(|e| Fault::Io(format!("cannot read {}: {e}", path.rel)))?;
        let text = Text::parse(&bytes);
        Ok(Some(Loaded {
            original: Original {
                bytes,
                permissions: meta.permissions(),
            },
            text,
        }))
    }

    /// The current text of an existing slot, refusing files that are not text.
    fn text_of(&self, slot: usize) -> Result<Text, Fault> {
        let s = &self.slots[slot];
        if let Some(why) = s.not_text {
            return Err(Fault::Refused(match why {
                NotText::Binary => format!("{} is a binary file and cannot be patched", s.path.rel),
                NotText::NotUtf8 => {
                    format!("{} is not UTF-8 text and cannot be patched", s.path.rel)
                }
            }));
        }
        s.current
            .clone()
            .ok_or_else(|| Fault::Refused(format!("{} does not exist", s.path.rel)))
    }

    fn executable_now(&self, slot: usize) -> bool {
        let s = &self.slots[slot];
        s.executable
            .or_else(|| {
                s.original
                    .as_ref()
                    .map(|o| is_executable(&o.original.permissions))
            })
            .unwrap_or(false)
    }

    /// Sets a slot's new content, refusing a result over the size limit.
    fn set(&mut self, slot: usize, text: Option<Text>) -> Result<(), Fault> {
        if let Some(t) = &text {
            let len = t.byte_len() as u64;
            if len > self.options.max_file_bytes {
                return Err(Fault::Refused(format!(
                    "the result for {} would be {len} bytes, over the limit of {} bytes",
                    self.slots[slot].path.rel, self.options.max_file_bytes
                )));
            }
        }
        self.slots[slot].current = text;
        self.slots[slot].not_text = None;
        Ok(())
    }

    /// The content of a created file: every hunk may only add lines.
    fn created(&mut self, rel: &str, hunks: &[Hunk]) -> Result<Text, Fault> {
        let mut lines: Vec<&str> = Vec::new();
        for hunk in hunks {
            for line in &hunk.lines {
                match line {
                    HunkLine::Add(t) => lines.push(t),
                    HunkLine::Context(_) | HunkLine::Remove(_) => {
                        return Err(Fault::Refused(format!(
                            "{rel} is created (from /dev/null), so its hunks may only add lines \
                             (`+`); hunk {} has unchanged or removed lines",
                            hunk.header.trim()
                        )));
                    }
                }
            }
        }
        let missing_newline = hunks.last().is_some_and(|h| h.new_missing_newline);
        let text = Text::from_lines(lines, missing_newline);
        for (i, hunk) in hunks.iter().enumerate() {
            let (_, added) = hunk.body_counts();
            self.hunks.push(HunkReport {
                file: rel.to_string(),
                status: Status::Exact,
                message: format!("hunk {} created the file with {added} line(s)", i + 1),
                step: Some(Step::ExactAtLine),
            });
        }
        Ok(text)
    }

    /// Applies the hunks of one file; `None` if any failed (each is reported either way).
    fn run_hunks(&mut self, rel: &str, text: Text, hunks: &[Hunk]) -> Option<Text> {
        let (fates, result) = place::place(&text, hunks);
        // Line numbers as in the file the model saw: every hunk is placed against it.
        let shown = |pos: usize| pos as isize + 1;
        for (i, (hunk, fate)) in hunks.iter().zip(fates).enumerate() {
            let name = format!("hunk {}", i + 1);
            let report = match fate {
                Fate::Placed(parts) => {
                    let step = if parts.len() > 1 {
                        Step::Elision
                    } else {
                        parts
                            .first()
                            .map_or(Step::ExactAtLine, |p| p.placement.step)
                    };
                    HunkReport {
                        file: rel.to_string(),
                        status: step.status(),
                        message: placed_message(&name, hunk, &parts, &shown),
                        step: Some(step),
                    }
                }
                Fate::Failed(failure) => {
                    let title = if hunk.header.trim().is_empty() {
                        name
                    } else {
                        format!("{name} (`{}`)", hunk.header.trim())
                    };
                    let message = match failure {
                        Failure::Miss { miss, part: None } => {
                            miss_message(&title, &miss, &shown, "lines", rel)
                        }
                        Failure::Miss {
                            miss,
                            part: Some(k),
                        } => miss_message(
                            &format!("{title}, part {k} of its lines between `...` lines"),
                            &miss,
                            &shown,
                            "lines",
                            rel,
                        ),
                        Failure::Overlaps { other, at } => format!(
                            "{title}: its lines overlap those of hunk {} at line {}: two hunks \
                             may not change the same lines; send each change once, and merge \
                             hunks whose lines touch into one",
                            other + 1,
                            shown(at)
                        ),
                        Failure::PartsDisagree => format!(
                            "{title}: its parts between `...` lines are found out of order or \
                             overlapping; write the hunk's lines in full"
                        ),
                    };
                    HunkReport {
                        file: rel.to_string(),
                        status: Status::Failed,
                        message,
                        step: None,
                    }
                }
            };
            self.hunks.push(report);
        }
        result
    }

    /// Applies search/replace blocks in order to `text` (`None`: the file does not exist).
    fn run_blocks(
        &mut self,
        rel: &str,
        text: Option<Text>,
        blocks: &[Block],
    ) -> Result<Option<Text>, Fault> {
        let mut text = text;
        let mut ok = true;
        for (i, block) in blocks.iter().enumerate() {
            let name = format!("block {}", i + 1);
            let empty_search = block.search.iter().all(|l| l.trim().is_empty());
            let current = match (&text, empty_search) {
                (None, true) => {
                    text = Some(Text::from_lines(
                        block.replace.iter().map(String::as_str),
                        false,
                    ));
                    self.hunks.push(HunkReport {
                        file: rel.to_string(),
                        status: Status::Exact,
                        message: format!(
                            "{name} created the file with {} line(s)",
                            block.replace.len()
                        ),
                        step: Some(Step::SearchExact),
                    });
                    continue;
                }
                (None, false) => {
                    return Err(Fault::Refused(format!(
                        "{rel} does not exist: to create it, use an empty SEARCH section; \
                         otherwise check the path"
                    )));
                }
                (Some(t), true) if t.is_blank() => {
                    let mut created =
                        Text::from_lines(block.replace.iter().map(String::as_str), false);
                    created.eol = t.eol;
                    text = Some(created);
                    self.hunks.push(HunkReport {
                        file: rel.to_string(),
                        status: Status::Exact,
                        message: format!("{name} filled the empty file"),
                        step: Some(Step::SearchExact),
                    });
                    continue;
                }
                (Some(_), true) => {
                    ok = false;
                    self.hunks.push(HunkReport {
                        file: rel.to_string(),
                        status: Status::Failed,
                        message: format!(
                            "{name}: its SEARCH section is empty but {rel} already exists and \
                             is not empty; put the exact lines to replace in SEARCH"
                        ),
                        step: None,
                    });
                    continue;
                }
                (Some(t), false) => t,
            };
            let ops = block_ops(block);
            let hay = Hay::new(&current.lines);
            let edit = Edit {
                ops: &ops,
                stated: None,
                numbered: false,
                window: 0..hay.len(),
                block: true,
                elided_before: false,
                elided_after: false,
            };
            let shown = |pos: usize| pos as isize + 1;
            match ladder::locate(&hay, &edit) {
                Ok(placement) => {
                    let first = placement.pos + 1;
                    let last = placement.pos + block.search.len();
                    let mut message = format!("{name} replaced lines {first}-{last}");
                    message.push_str(&how(&placement));
                    let next = ladder::splice(current, &placement, &ops, false, false);
                    self.hunks.push(HunkReport {
                        file: rel.to_string(),
                        status: placement.step.status(),
                        message,
                        step: Some(placement.step),
                    });
                    text = Some(next);
                }
                Err(miss) => {
                    ok = false;
                    self.hunks.push(HunkReport {
                        file: rel.to_string(),
                        status: Status::Failed,
                        message: miss_message(&name, &miss, &shown, "SEARCH lines", rel),
                        step: None,
                    });
                }
            }
        }
        Ok(if ok { text } else { None })
    }

    /// Writes (unless checking) and builds the report.
    fn finish(self) -> Report {
        let failed = self.hunks.iter().any(|h| h.status == Status::Failed);
        let mut report = Report {
            hunks: self.hunks,
            ..Report::default()
        };
        if let Some(error) = self.io_error {
            report.error = Some(error);
            report.outcome = Outcome::Error;
            return report;
        }
        if failed {
            report.outcome = Outcome::Rejected;
            return report;
        }
        let mut changes = Vec::new();
        let mut files = Vec::new();
        for slot in &self.slots {
            let before = slot.original.as_ref().map(|l| &l.original);
            let after = slot.current.as_ref().map(Text::to_bytes);
            let was_executable = before.map(|o| is_executable(&o.permissions));
            let mode_changes = slot.executable.is_some() && slot.executable != was_executable;
            let content_changes = match (before, &after) {
                (Some(o), Some(a)) => o.bytes != *a,
                (None, None) => false,
                _ => true,
            };
            if !content_changes && !mode_changes {
                continue;
            }
            files.push(slot.path.rel.clone());
            changes.push(Change {
                abs: slot.path.abs.clone(),
                new: after.map(|a| (a, slot.executable)),
                original: before.cloned(),
            });
        }
        if !self.options.check
            && let Err(error) = write::commit(&changes)
        {
            report.error = Some(error);
            report.outcome = Outcome::Error;
            return report;
        }
        report.applied = true;
        report.files = files;
        report.outcome = Outcome::Applied;
        report
    }
}

fn hunks_of(body: &Body) -> &[Hunk] {
    match body {
        Body::Hunks(h) => h,
        Body::Blocks(_) | Body::Binary => &[],
    }
}

#[cfg(unix)]
fn is_executable(p: &fs::Permissions) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_p: &fs::Permissions) -> bool {
    false
}

/// A block as operations: lines that SEARCH and REPLACE share (their longest common
/// subsequence) are kept, so that those lines keep the file's exact text.
fn block_ops(block: &Block) -> Vec<Op> {
    let (a, b) = (&block.search, &block.replace);
    let (n, m) = (a.len(), b.len());
    // Past this the table costs more than it saves; replacing every line is still correct.
    if n.saturating_mul(m) > 4_000_000 {
        return a
            .iter()
            .map(|l| Op::Del(l.clone()))
            .chain(b.iter().map(|l| Op::Add(l.clone())))
            .collect();
    }
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if a[i] == b[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let mut ops = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Keep(a[i].clone()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || table[at(i, j + 1)] >= table[at(i + 1, j)]) {
            ops.push(Op::Add(b[j].clone()));
            j += 1;
        } else {
            ops.push(Op::Del(a[i].clone()));
            i += 1;
        }
    }
    ops
}

/// Where a hunk applied, and how, in words.
fn placed_message(
    name: &str,
    hunk: &Hunk,
    parts: &[Part],
    shown: &dyn Fn(usize) -> isize,
) -> String {
    let Some(first) = parts.first() else {
        return format!("{name} applied");
    };
    let line = shown(first.placement.pos);
    let mut message = format!("{name} applied at line {line}");
    if let Some(stated) = hunk.old_start
        && first.placement.step != Step::ExactAtLine
    {
        let diff = line - stated as isize;
        if diff != 0 {
            let (n, dir) = (
                diff.unsigned_abs(),
                if diff > 0 { "below" } else { "above" },
            );
            message.push_str(&format!(", {n} line(s) {dir} the stated line {stated}"));
        }
    }
    if hunk.old_start.is_none() {
        message.push_str(" (the header had no line numbers)");
    } else if !hunk.header_agrees() && parts.len() == 1 {
        let (old, new) = hunk.body_counts();
        message.push_str(&format!(
            " (the header's counts were wrong: the body has {old} old and {new} new lines)"
        ));
    }
    if parts.len() > 1 {
        let lines: Vec<String> = parts
            .iter()
            .map(|p| shown(p.placement.pos).to_string())
            .collect();
        message.push_str(&format!(
            ", in {} parts around its `...` lines, at lines {}",
            parts.len(),
            lines.join(", ")
        ));
    }
    for part in parts {
        message.push_str(&how(&part.placement));
    }
    if parts.iter().any(|p| p.by_order) {
        message.push_str(
            "; its lines occur at more than one place, and the one between its neighbours in \
             the diff was taken",
        );
    }
    message
}

fn how(placement: &ladder::Placement) -> String {
    let mut s = match placement.step {
        Step::ExactAtLine
        | Step::SearchExact
        | Step::ExactElsewhere
        | Step::Recounted
        | Step::Elision => String::new(),
        Step::TrailingWhitespace => {
            ", ignoring trailing whitespace that differs from the file".into()
        }
        Step::Whitespace => ", ignoring whitespace that differs from the file".into(),
        Step::Indentation => ", ignoring whitespace that differs from the file".into(),
        Step::MissingLine => {
            ", keeping the one line of the file that its lines leave out between them".into()
        }
        Step::TrimmedContext => format!(
            ", leaving out {} leading and {} trailing context line(s) that did not match",
            placement.lead_trim, placement.trail_trim
        ),
    };
    if placement.shift != Shift::Zero {
        s.push_str(&format!(
            ", with indentation shifted by {} (added lines re-indented the same way)",
            placement.shift.describe()
        ));
    }
    s
}

/// Why an edit was not placed, with what the model needs to fix it. `rel` is the file, which
/// exists: the advice is about its lines, never its path.
fn miss_message(
    name: &str,
    miss: &Miss,
    shown: &dyn Fn(usize) -> isize,
    what: &str,
    rel: &str,
) -> String {
    match miss {
        Miss::NoAnchor => format!(
            "{name} adds lines without any unchanged line around them, so nothing says where \
             they go: include 2-3 unchanged lines before and after the added lines"
        ),
        Miss::Weak => format!(
            "{name} has too little context to be placed safely (its {what} are only blank \
             lines or punctuation) and is not at its stated line: include a few more unchanged \
             lines around the change"
        ),
        Miss::Ambiguous { at, step } => {
            let lines: Vec<String> = at.iter().map(|&p| shown(p).to_string()).collect();
            let how = match step {
                Step::TrailingWhitespace => " when trailing whitespace is ignored",
                Step::Whitespace | Step::Indentation => " when whitespace is ignored",
                Step::MissingLine => " when one line of the file between them is allowed",
                Step::TrimmedContext => " once the context lines that do not match are left out",
                _ => "",
            };
            format!(
                "{name}: its {what} match {} places{how} (lines {}; places that differ only \
                 in whitespace count too), so it is not clear which one is meant: include more \
                 unchanged lines around the change so that they match only one place",
                if at.len() >= 8 {
                    "8 or more".to_string()
                } else {
                    at.len().to_string()
                },
                lines.join(", ")
            )
        }
        Miss::AlreadyApplied { at } => format!(
            "{name}: its {what} were not found, but its result already is, at line {}: the \
             change seems to be applied already; leave it out",
            shown(*at)
        ),
        Miss::Unanchored { at } => format!(
            "{name} starts or ends with added lines and no unchanged line beside them, which \
             only fits at the start or end of the file, but its {what} are at line {}: include \
             the unchanged lines just before and after the added lines",
            shown(*at)
        ),
        Miss::IndentUnclear { at } => format!(
            "{name}: its {what} match at line {} only when whitespace is ignored, and its \
             unchanged and removed lines do not say how the added lines are to be indented \
             there: copy the unchanged and removed lines exactly as they are in {rel}, \
             whitespace included",
            shown(*at)
        ),
        Miss::NotFound { closest } => {
            let mut s = format!("{name}: its {what} were not found in {rel}.");
            match closest {
                Some(c) => {
                    if c.matched * 2 >= c.total.max(1) {
                        s.push_str(&format!(
                            " The closest place is line {} ({} of {} non-blank lines match \
                             there, whitespace ignored). ",
                            shown(c.pos),
                            c.matched,
                            c.total
                        ));
                    } else {
                        s.push_str(&format!(
                            " Nothing in {rel} resembles them closely; the most similar place is \
                             line {} ({} of {} non-blank lines match there, whitespace ignored). ",
                            shown(c.pos),
                            c.matched,
                            c.total
                        ));
                    }
                    s.push_str(&c.render(rel, shown));
                }
                None => s.push_str(&format!(
                    " {rel} is empty: to fill it, send a hunk that only adds lines."
                )),
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(search: &[&str], replace: &[&str]) -> Block {
        Block {
            search: search.iter().map(|s| s.to_string()).collect(),
            replace: replace.iter().map(|s| s.to_string()).collect(),
            reply_line: 1,
        }
    }

    #[test]
    fn when_block_lines_are_shared_should_keep_them() {
        let ops = block_ops(&block(&["a", "b", "c"], &["a", "x", "c"]));
        assert_eq!(
            ops,
            vec![
                Op::Keep("a".into()),
                Op::Add("x".into()),
                Op::Del("b".into()),
                Op::Keep("c".into())
            ]
        );
    }
}
