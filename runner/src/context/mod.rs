//! Reading a repository and picking the context a model needs for a task.
//!
//! [`build_context`] scans a working tree ([`scan_repository`]), ranks its files for the task and
//! packs the best of them into a token budget ([`select_context`]). The result, a [`RepoContext`],
//! renders as one prompt section: an overview of the repository, the instructions it leaves for
//! coding agents, a README excerpt, the most relevant files whole, and an outline of the next most
//! relevant ones. How files are ranked and packed is told in `runner/CONTEXT.md`.

mod lang;
mod outline;
mod pack;
mod parallel;
mod rank;
mod render;
mod scan;
mod terms;
mod tokens;

use std::path::Path;

use anyhow::Result;

pub use outline::{Signature, outline};
pub use pack::select_context;
pub use scan::{RepoSnapshot, SkipCounts, SourceFile, scan_repository};
pub use tokens::estimate_tokens;

/// How much context to pick, and what counts as a readable file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextOptions {
    /// Most tokens the rendered context may take, as counted by [`estimate_tokens`].
    pub token_budget: usize,
    /// Files larger than this many bytes are left out entirely.
    pub max_file_bytes: u64,
    /// Most tokens for the file tree (also never more than an eighth of the budget).
    pub tree_tokens: usize,
    /// Most tokens for the README excerpt (also never more than a tenth of the budget).
    pub readme_tokens: usize,
    /// Most tokens for all instruction files together (also never more than a quarter of the
    /// budget).
    pub instruction_tokens: usize,
    /// Share of the budget, in percent, one whole file may take unless the task names it: one big
    /// file should not crowd out everything else.
    pub max_file_share_percent: usize,
    /// Share of the budget, in percent, kept from whole files for the outline, so that the model
    /// also sees where the next most relevant definitions are.
    pub outline_reserve_percent: usize,
    /// Most signature lines shown per outlined file.
    pub max_outline_lines: usize,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            token_budget: 24_000,
            max_file_bytes: 256 * 1024,
            tree_tokens: 1_500,
            readme_tokens: 1_200,
            instruction_tokens: 4_000,
            max_file_share_percent: 50,
            outline_reserve_percent: 10,
            max_outline_lines: 40,
        }
    }
}

/// How many files of one language the repository has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageStat {
    /// Language name (`Rust`, `Python`, ...).
    pub name: String,
    /// Number of files.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A file included whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// The complete content.
    pub content: String,
}

/// The beginning of a file, or all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// The text included: whole lines from the start of the file.
    pub text: String,
    /// True when the file goes on past `text`.
    pub truncated: bool,
}

/// The definitions of one file, without their bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutline {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// Definition lines shown, in file order.
    pub signatures: Vec<Signature>,
    /// Definition lines left out for want of room.
    pub omitted: usize,
}

/// One file's rank for the task, for logs and for judging the ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedPath {
    /// Path relative to the repository root.
    pub path: String,
    /// Relevance score; only the order means something.
    pub score: f64,
}

/// The context picked for one task; [`RepoContext::render`] gives the prompt section.
#[derive(Debug, Clone)]
pub struct RepoContext {
    /// Number of text files considered, after ignore rules and filters.
    pub file_count: usize,
    /// Languages by number of files, most first.
    pub languages: Vec<LanguageStat>,
    /// Dependency manifests found, by path.
    pub manifests: Vec<String>,
    /// The file tree summary as rendered (empty when it did not fit the budget).
    pub tree: String,
    /// Instruction files for coding agents (`AGENTS.md`, `CLAUDE.md`, `.pithy/instructions.md`).
    pub instructions: Vec<Excerpt>,
    /// The beginning of the root README, unless the README is among the files included whole.
    pub readme: Option<Excerpt>,
    /// Files included whole, most relevant first.
    pub files: Vec<FileContent>,
    /// Outlines of the next most relevant files, most relevant first.
    pub outline: Vec<FileOutline>,
    /// The best-ranked files (at most 50), best first.
    pub ranking: Vec<RankedPath>,
    /// What the scan left out.
    pub skipped: SkipCounts,
    /// The budget the context was packed into.
    pub token_budget: usize,
    /// [`estimate_tokens`] of [`RepoContext::render`]; never above `token_budget`.
    pub token_estimate: usize,
    /// Whether the overview fitted the budget at all (it does for any budget of a few hundred
    /// tokens).
    overview_shown: bool,
}

impl RepoContext {
    /// The prompt section: overview and tree, instructions, README excerpt, whole files (each
    /// fenced under its path), outline (`path:` then `line: signature` lines).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.overview_shown {
            out.push_str(&render::overview(
                self.file_count,
                &self.languages,
                &self.manifests,
                &self.tree,
            ));
        }
        if !self.instructions.is_empty() {
            out.push_str(render::INSTRUCTIONS_HEADING);
            for excerpt in &self.instructions {
                out.push_str(&render::instruction(excerpt));
            }
        }
        if let Some(readme) = &self.readme {
            out.push_str(&render::readme(readme));
        }
        if !self.files.is_empty() {
            out.push_str(render::FILES_HEADING);
            for file in &self.files {
                out.push_str(&render::file(file));
            }
        }
        if !self.outline.is_empty() {
            out.push_str(render::OUTLINE_HEADING);
            for outline in &self.outline {
                out.push_str(&render::outline(outline));
            }
        }
        out
    }

    /// True when `path` is included whole (as a file, an instruction file, or a README excerpt
    /// that is not cut short).
    pub fn includes_whole(&self, path: &str) -> bool {
        self.files.iter().any(|f| f.path == path)
            || self
                .instructions
                .iter()
                .chain(self.readme.as_ref())
                .any(|e| e.path == path && !e.truncated)
    }

    /// True when `path` is present only in part: outlined, or excerpted and cut short.
    pub fn includes_outline(&self, path: &str) -> bool {
        self.outline.iter().any(|o| o.path == path)
            || self
                .instructions
                .iter()
                .chain(self.readme.as_ref())
                .any(|e| e.path == path && e.truncated)
    }
}

/// Scans the working tree at `repo` and picks the context for `task` within
/// `opts.token_budget`. Fails only when the tree cannot be walked; unreadable files are skipped.
pub fn build_context(repo: &Path, task: &str, opts: &ContextOptions) -> Result<RepoContext> {
    let snapshot = scan_repository(repo, opts)?;
    Ok(select_context(&snapshot, task, opts))
}
