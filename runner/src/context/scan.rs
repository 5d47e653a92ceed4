//! Reading a working tree once: which files count as the repository's own text, and their contents.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};
use ignore::WalkBuilder;

use super::ContextOptions;
use super::lang::{is_binary_extension, is_generated_name, is_lock_file, is_skipped_dir};
use super::parallel::par_map;

/// How many bytes at the start of a file are searched for a NUL byte (a binary file) or a
/// generated-code marker.
const SNIFF_BYTES: usize = 8 * 1024;
/// Generated-code markers are looked for in this many bytes: they sit in the header.
const HEADER_BYTES: usize = 1024;

/// One text file of the repository, as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    path: String,
    text: String,
}

impl SourceFile {
    /// Path relative to the repository root, `/`-separated.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Content; invalid UTF-8 is replaced with U+FFFD.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// How many files were left out of a scan, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Directories not entered: `.git`, vendored code, dependencies, build output, caches.
    pub directories: usize,
    /// Files with a known binary extension or a NUL byte in their first 8 KiB.
    pub binary: usize,
    /// Lock files (`Cargo.lock`, `package-lock.json`, ...).
    pub lock: usize,
    /// Generated files, by name (`*.min.js`, `*.pb.go`, `*_generated.*`) or header
    /// (`@generated`, `DO NOT EDIT`).
    pub generated: usize,
    /// Files larger than [`ContextOptions::max_file_bytes`].
    pub large: usize,
    /// Symbolic links and files that could not be read.
    pub unreadable: usize,
}

/// The text files of a working tree, read once, sorted by path. Build it with
/// [`scan_repository`]; pick context from it with [`super::select_context`] as often as needed.
#[derive(Debug, Clone)]
pub struct RepoSnapshot {
    root: PathBuf,
    files: Vec<SourceFile>,
    skipped: SkipCounts,
}

impl RepoSnapshot {
    /// The directory that was scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The files kept, sorted by path.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// What was left out, and why.
    pub fn skipped(&self) -> &SkipCounts {
        &self.skipped
    }
}

/// Why a file was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Binary,
    Lock,
    Generated,
    Unreadable,
}

impl Skip {
    fn count(self, counts: &mut SkipCounts) {
        match self {
            Skip::Binary => counts.binary += 1,
            Skip::Lock => counts.lock += 1,
            Skip::Generated => counts.generated += 1,
            Skip::Unreadable => counts.unreadable += 1,
        }
    }
}

fn judge_name(path: &str) -> Option<Skip> {
    if is_lock_file(path) {
        Some(Skip::Lock)
    } else if is_binary_extension(path) {
        Some(Skip::Binary)
    } else if is_generated_name(path) {
        Some(Skip::Generated)
    } else {
        None
    }
}

fn judge_content(bytes: &[u8]) -> Option<Skip> {
    let sniff = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if sniff.contains(&0) {
        return Some(Skip::Binary);
    }
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(HEADER_BYTES)]);
    if header.contains("@generated") || header.contains("DO NOT EDIT") {
        return Some(Skip::Generated);
    }
    None
}

/// Reads the text files of the working tree at `repo`: honours `.gitignore` (also without a `.git`
/// directory, so an exported tree behaves like its checkout), `.git/info/exclude` and `.ignore`;
/// leaves out `.git`, vendored and build directories, lock files, binaries, generated files and
/// files over [`ContextOptions::max_file_bytes`]. Hidden files are kept (`.github/`, `.pithy/`).
pub fn scan_repository(repo: &Path, opts: &ContextOptions) -> Result<RepoSnapshot> {
    if !repo.is_dir() {
        bail!("repository path {} is not a directory", repo.display());
    }
    let skipped_dirs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&skipped_dirs);
    let walker = WalkBuilder::new(repo)
        .hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            let skip =
                is_dir && entry.depth() > 0 && is_skipped_dir(&entry.file_name().to_string_lossy());
            if skip {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            !skip
        })
        .build();

    let mut skipped = SkipCounts::default();
    let mut candidates = Vec::new();
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", repo.display()))?;
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            continue;
        }
        if !file_type.is_file() {
            // Symbolic links may point outside the repository; their targets are listed anyway
            // when they are inside it.
            skipped.unreadable += 1;
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(repo) else {
            continue;
        };
        let path = relative_path(relative);
        if let Some(reason) = judge_name(&path) {
            reason.count(&mut skipped);
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if size > opts.max_file_bytes {
            skipped.large += 1;
            continue;
        }
        candidates.push((path, entry.into_path()));
    }

    let read = par_map(&candidates, |(path, full)| match fs::read(full) {
        Ok(bytes) => match judge_content(&bytes) {
            Some(reason) => Err(reason),
            None => Ok(SourceFile {
                path: path.clone(),
                text: into_text(bytes),
            }),
        },
        Err(_) => Err(Skip::Unreadable),
    });
    let mut files = Vec::with_capacity(read.len());
    for outcome in read {
        match outcome {
            Ok(file) => files.push(file),
            Err(reason) => reason.count(&mut skipped),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.directories = skipped_dirs.load(Ordering::Relaxed);
    Ok(RepoSnapshot {
        root: repo.to_path_buf(),
        files,
        skipped,
    })
}

fn relative_path(relative: &Path) -> String {
    let parts: Vec<_> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

fn into_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
