//! The prompt text of each part of a context. The packer prices every part with the very strings
//! rendered here, so what is rendered is what was counted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::lang::language_of;
use super::tokens::estimate_tokens;
use super::{Excerpt, FileContent, FileOutline, LanguageStat};

/// Languages named in the overview line; the rest are summed up as "others".
const OVERVIEW_LANGUAGES: usize = 8;
/// Manifests listed in the overview.
const OVERVIEW_MANIFESTS: usize = 20;
/// Above this many files a full listing is not even tried.
const MAX_LISTED_FILES: usize = 2_000;

/// `content` in a Markdown code fence long enough not to be closed by backticks inside it.
pub(crate) fn fenced(tag: &str, content: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for b in content.bytes() {
        if b == b'`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let newline = if content.is_empty() || content.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{fence}{tag}\n{content}{newline}{fence}\n")
}

fn fence_tag(path: &str) -> &'static str {
    language_of(path).map_or("", |l| l.fence)
}

/// The heading block: what the repository is made of, and its tree (empty `tree` leaves it out).
pub(crate) fn overview(
    file_count: usize,
    languages: &[LanguageStat],
    manifests: &[String],
    tree: &str,
) -> String {
    let mut out = String::from("# Repository context\n\n");
    let _ = writeln!(out, "Text files considered: {file_count}.");
    if !languages.is_empty() {
        let named: Vec<String> = languages
            .iter()
            .take(OVERVIEW_LANGUAGES)
            .map(|l| format!("{} ({})", l.name, l.files))
            .collect();
        let others: usize = languages
            .iter()
            .skip(OVERVIEW_LANGUAGES)
            .map(|l| l.files)
            .sum();
        let _ = write!(out, "Languages by files: {}", named.join(", "));
        if others > 0 {
            let _ = write!(out, ", others ({others})");
        }
        out.push_str(".\n");
    }
    if !manifests.is_empty() {
        let listed: Vec<&str> = manifests
            .iter()
            .take(OVERVIEW_MANIFESTS)
            .map(String::as_str)
            .collect();
        let _ = write!(out, "Manifests: {}", listed.join(", "));
        if manifests.len() > OVERVIEW_MANIFESTS {
            let _ = write!(out, " and {} more", manifests.len() - OVERVIEW_MANIFESTS);
        }
        out.push_str(".\n");
    }
    out.push('\n');
    if !tree.is_empty() {
        out.push_str("## File tree\n\n");
        out.push_str(&fenced("text", tree));
        out.push('\n');
    }
    out
}

/// Heading of the instructions section, rendered before the first instruction file.
pub(crate) const INSTRUCTIONS_HEADING: &str =
    "## Repository instructions for coding agents\n\nFollow these instructions.\n\n";

/// One instruction file.
pub(crate) fn instruction(excerpt: &Excerpt) -> String {
    let note = if excerpt.truncated {
        " (cut short)"
    } else {
        ""
    };
    format!(
        "### {}{note}\n\n{}\n",
        excerpt.path,
        fenced("markdown", &excerpt.text)
    )
}

/// The README excerpt.
pub(crate) fn readme(excerpt: &Excerpt) -> String {
    let note = if excerpt.truncated {
        ", beginning only"
    } else {
        ""
    };
    format!(
        "## README ({}{note})\n\n{}\n",
        excerpt.path,
        fenced(fence_tag(&excerpt.path), &excerpt.text)
    )
}

/// Heading of the whole-files section.
pub(crate) const FILES_HEADING: &str =
    "## Files most relevant to the task\n\nComplete contents, most relevant first.\n\n";

/// One whole file.
pub(crate) fn file(file: &FileContent) -> String {
    format!(
        "### {}\n\n{}\n",
        file.path,
        fenced(fence_tag(&file.path), &file.content)
    )
}

/// Heading of the outline section.
pub(crate) const OUTLINE_HEADING: &str = "## Outline of other relevant files\n\nDefinitions only, as `line: signature`; ask for a file to see it whole.\n\n";

/// One file's outline.
pub(crate) fn outline(outline: &FileOutline) -> String {
    let mut out = format!("{}:\n", outline.path);
    for signature in &outline.signatures {
        let _ = writeln!(out, "  {}: {}", signature.line, signature.text);
    }
    if outline.omitted > 0 {
        let _ = writeln!(out, "  … {} more definitions", outline.omitted);
    }
    out.push('\n');
    out
}

/// A listing of the repository that fits `max_tokens`: every path when they fit, else directories
/// with file counts (three levels, then two, then one), cut short if even that is too long.
pub(crate) fn tree_summary(paths: &[&str], max_tokens: usize) -> String {
    if max_tokens == 0 || paths.is_empty() {
        return String::new();
    }
    if paths.len() <= MAX_LISTED_FILES {
        let listing: String = paths.iter().map(|p| format!("{p}\n")).collect();
        if estimate_tokens(&listing) <= max_tokens {
            return listing;
        }
    }
    let mut summary = String::new();
    for depth in [3, 2, 1] {
        summary = directory_summary(paths, depth);
        if estimate_tokens(&summary) <= max_tokens {
            return summary;
        }
    }
    cut_lines(&summary, max_tokens)
}

/// Directories down to `depth` levels with the number of files under each, then the root's files.
fn directory_summary(paths: &[&str], depth: usize) -> String {
    let mut dirs: BTreeMap<Vec<&str>, usize> = BTreeMap::new();
    let mut root_files = Vec::new();
    for path in paths {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() == 1 {
            root_files.push(*path);
            continue;
        }
        let dir_parts = &parts[..parts.len() - 1];
        for level in 1..=dir_parts.len().min(depth) {
            *dirs.entry(dir_parts[..level].to_vec()).or_default() += 1;
        }
    }
    let mut out = String::new();
    for (dir, count) in &dirs {
        let indent = "  ".repeat(dir.len() - 1);
        let name = dir.last().copied().unwrap_or("");
        let noun = if *count == 1 { "file" } else { "files" };
        let _ = writeln!(out, "{indent}{name}/ ({count} {noun})");
    }
    for file in root_files {
        let _ = writeln!(out, "{file}");
    }
    out
}

/// The first lines of `text` that fit `max_tokens`, with a note of how many lines were left out.
fn cut_lines(text: &str, max_tokens: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let line_cost = estimate_tokens(line) + 1;
        let note = format!("… {} more lines\n", lines.len() - i);
        if used + line_cost + estimate_tokens(&note) > max_tokens {
            if estimate_tokens(&out) + estimate_tokens(&note) <= max_tokens {
                out.push_str(&note);
            }
            return out;
        }
        used += line_cost;
        out.push_str(line);
        out.push('\n');
    }
    out
}
