//! What a model's reply says to change, as parsed: one [`FilePatch`] per file section.

/// One file's part of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    /// What happens to the file as a whole.
    pub operation: Operation,
    /// The changes to its content.
    pub body: Body,
    /// The mode the file should have afterwards (`new mode` / `new file mode`), if stated.
    pub new_mode: Option<u32>,
    /// The 1-based line of the reply where this section starts, for messages.
    pub reply_line: usize,
}

/// What a [`FilePatch`] does to its file. Paths are as written in the reply (with `a/` and `b/`
/// prefixes already removed where the diff used git's convention); they are checked for safety
/// only when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Change an existing file. The first of `candidates` that exists is the one changed: plain
    /// diffs may name different old and new paths, or carry a prefix the reply did not mean.
    Modify {
        /// Paths to try, most likely first.
        candidates: Vec<String>,
    },
    /// Create a file that must not exist yet (or exist empty).
    Create {
        /// The new file.
        path: String,
    },
    /// Delete a file.
    Delete {
        /// The file to delete.
        path: String,
    },
    /// Move a file, possibly changing it on the way (`rename from` / `rename to`).
    Rename {
        /// The existing file.
        from: String,
        /// Its new path, which must not exist yet.
        to: String,
    },
    /// Copy a file, possibly changing the copy (`copy from` / `copy to`).
    Copy {
        /// The existing file.
        from: String,
        /// The new file, which must not exist yet.
        to: String,
    },
    /// Search/replace blocks on one path; an empty SEARCH on a missing file creates it.
    Blocks {
        /// The file the blocks edit.
        path: String,
    },
}

impl Operation {
    /// The path this section is reported under.
    pub fn display_path(&self) -> &str {
        match self {
            Operation::Modify { candidates } => candidates.first().map_or("", String::as_str),
            Operation::Create { path }
            | Operation::Delete { path }
            | Operation::Blocks { path } => path,
            Operation::Rename { to, .. } | Operation::Copy { to, .. } => to,
        }
    }
}

/// The content changes of a [`FilePatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Unified diff hunks, in file order.
    Hunks(Vec<Hunk>),
    /// Search/replace blocks, in the order written.
    Blocks(Vec<Block>),
    /// A binary patch (`GIT binary patch`, `Binary files ... differ`): never applied.
    Binary,
}

impl Body {
    /// How many hunks or blocks the body has.
    pub fn len(&self) -> usize {
        match self {
            Body::Hunks(h) => h.len(),
            Body::Blocks(b) => b.len(),
            Body::Binary => 0,
        }
    }

    /// Whether the body changes no content (a pure rename, mode change or empty file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One unified diff hunk. Line numbers and counts are what the header said, which models often
/// get wrong; the body is what is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based first old line, when the header had numbers.
    pub old_start: Option<usize>,
    /// Old line count from the header (an omitted count means 1, as in the format).
    pub old_count: Option<usize>,
    /// 1-based first new line, when the header had numbers.
    pub new_start: Option<usize>,
    /// New line count from the header.
    pub new_count: Option<usize>,
    /// The body, without the `\ No newline at end of file` markers.
    pub lines: Vec<HunkLine>,
    /// A `\` marker followed the last old-side line: the old file ends without a newline there.
    pub old_missing_newline: bool,
    /// A `\` marker followed the last new-side line: the new file ends without a newline.
    pub new_missing_newline: bool,
    /// The header line as written, for messages.
    pub header: String,
    /// The 1-based line of the reply holding the header.
    pub reply_line: usize,
}

impl Hunk {
    /// Old-side and new-side line counts of the body.
    pub fn body_counts(&self) -> (usize, usize) {
        self.lines
            .iter()
            .fold((0, 0), |(old, new), line| match line {
                HunkLine::Context(_) => (old + 1, new + 1),
                HunkLine::Remove(_) => (old + 1, new),
                HunkLine::Add(_) => (old, new + 1),
            })
    }

    /// Whether the header had line numbers and its counts agree with the body.
    pub fn header_agrees(&self) -> bool {
        let (old, new) = self.body_counts();
        self.old_start.is_some()
            && self.new_start.is_some()
            && self.old_count == Some(old)
            && self.new_count == Some(new)
    }
}

/// One line of a hunk body, without its marker and line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HunkLine {
    /// ` ` an unchanged line.
    Context(String),
    /// `-` a removed line.
    Remove(String),
    /// `+` an added line.
    Add(String),
}

/// One search/replace block: the exact lines to find, and what replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Lines between `<<<<<<< SEARCH` and `=======`.
    pub search: Vec<String>,
    /// Lines between `=======` and `>>>>>>> REPLACE`.
    pub replace: Vec<String>,
    /// The 1-based line of the reply holding `<<<<<<< SEARCH`.
    pub reply_line: usize,
}
