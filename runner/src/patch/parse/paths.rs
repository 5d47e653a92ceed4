//! Paths as they appear in diff headers and around search/replace blocks.

/// The path of a `---` / `+++` line: up to a tab (`diff -u` appends a timestamp), unquoted when
/// git quoted it, `None` for `/dev/null`.
pub(super) fn header_path(field: &str) -> Option<String> {
    let field = field.trim_start();
    let path = if field.starts_with('"') {
        unquote(field).map_or_else(|| field.trim_end().to_string(), |(path, _)| path)
    } else {
        let end = field.find('\t').unwrap_or(field.len());
        field[..end].trim_end().to_string()
    };
    if path == "/dev/null" || path.is_empty() {
        None
    } else {
        Some(path)
    }
}

/// Parses a C-style quoted string as git writes unusual paths (`"a/sp ace\tx"`). Returns the
/// string and the rest of the input after the closing quote.
pub(super) fn unquote(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut bytes = Vec::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                return Some((text, &body[at + 1..]));
            }
            '\\' => {
                let (_, esc) = chars.next()?;
                match esc {
                    'n' => bytes.push(b'\n'),
                    't' => bytes.push(b'\t'),
                    'r' => bytes.push(b'\r'),
                    'a' => bytes.push(7),
                    'b' => bytes.push(8),
                    'f' => bytes.push(12),
                    'v' => bytes.push(11),
                    '0'..='7' => {
                        // Git writes non-ASCII bytes as three octal digits.
                        let mut value = esc.to_digit(8)?;
                        for _ in 0..2 {
                            let (_, d) = chars.next()?;
                            value = value * 8 + d.to_digit(8)?;
                        }
                        bytes.push(u8::try_from(value).ok()?);
                    }
                    other => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            other => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    None
}

/// Splits the rest of a `diff --git ` line into its two paths. Unquoted paths may contain spaces,
/// so the split that makes both sides name the same file wins.
pub(super) fn git_header_paths(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim_end();
    if rest.starts_with('"') {
        let (old, tail) = unquote(rest)?;
        let tail = tail.trim_start();
        let new = if tail.starts_with('"') {
            unquote(tail)?.0
        } else {
            tail.to_string()
        };
        return Some((old, new));
    }
    if let Some(at) = rest.find(" \"") {
        let new = unquote(&rest[at + 1..])?.0;
        return Some((rest[..at].to_string(), new));
    }
    let spaces: Vec<usize> = rest.match_indices(' ').map(|(i, _)| i).collect();
    let same_file = |at: usize| {
        let (old, new) = (&rest[..at], &rest[at + 1..]);
        strip_one(old) == strip_one(new)
    };
    let at = spaces
        .iter()
        .copied()
        .find(|&at| same_file(at))
        .or_else(|| rest.find(" b/"))
        .or_else(|| spaces.first().copied())?;
    Some((rest[..at].to_string(), rest[at + 1..].to_string()))
}

fn strip_one(path: &str) -> &str {
    path.strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path)
}

/// Removes git's `a/` and `b/` prefixes when the pair follows that convention (a `/dev/null`
/// side counts as following it). A diff that names `a/x` on both sides does not, and is left
/// for [`modify_candidates`] to resolve against the tree.
pub(super) fn strip_git_prefixes(
    old: Option<String>,
    new: Option<String>,
) -> (Option<String>, Option<String>) {
    let old_ok = old.as_deref().is_none_or(|p| p.starts_with("a/"));
    let new_ok = new.as_deref().is_none_or(|p| p.starts_with("b/"));
    if old_ok && new_ok && (old.is_some() || new.is_some()) {
        (
            old.map(|p| p["a/".len()..].to_string()),
            new.map(|p| p["b/".len()..].to_string()),
        )
    } else {
        (old, new)
    }
}

/// The paths a plain "modify" section may mean, most likely first: the new name, the old name,
/// then each without a leading `a/` or `b/` that the diff may have carried without meaning it.
pub(super) fn modify_candidates(old: &str, new: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: &str| {
        if !p.is_empty() && !out.iter().any(|q| q == p) {
            out.push(p.to_string());
        }
    };
    push(new);
    push(old);
    for p in [new, old] {
        let stripped = strip_one(p);
        if stripped != p {
            push(stripped);
        }
    }
    out
}

/// Names of files that often have no extension, so that a line holding only one of them can be
/// taken for a path.
const BARE_NAMES: &[&str] = &[
    "Makefile",
    "Dockerfile",
    "Containerfile",
    "Rakefile",
    "Gemfile",
    "Procfile",
    "Justfile",
    "justfile",
    "LICENSE",
    "README",
    "CODEOWNERS",
    "Vagrantfile",
    "Jenkinsfile",
];

/// Reads a line that names a file, as models write it before a search/replace block or a bare
/// hunk: `src/lib.rs`, `` `src/lib.rs` ``, `**src/lib.rs**:`, `### File: src/lib.rs`.
pub(super) fn path_line(line: &str) -> Option<String> {
    let mut s = line.trim();
    s = s.trim_start_matches('#').trim_start();
    s = strip_decoration(s);
    for label in ["file:", "filename:", "path:", "file path:", "in file"] {
        if s.len() >= label.len() && s[..label.len()].eq_ignore_ascii_case(label) {
            s = strip_decoration(&s[label.len()..]);
        }
    }
    if !s.chars().any(char::is_alphanumeric)
        || s.chars().any(char::is_whitespace)
        || s.starts_with("```")
        || s.starts_with("~~~")
        || s.starts_with("<<<<")
        || s.starts_with("====")
        || s.starts_with(">>>>")
    {
        return None;
    }
    if s.contains('/') || s.contains('.') || BARE_NAMES.contains(&s) {
        Some(s.to_string())
    } else {
        None
    }
}

fn strip_decoration(s: &str) -> &str {
    let s = s.trim();
    let s = s.trim_end_matches(':').trim_end();
    let s = s.trim_matches(|c| c == '*' || c == '`' || c == '\'' || c == '"');
    s.trim_end_matches(':').trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_header_has_timestamp_should_cut_at_tab() {
        assert_eq!(
            header_path("a/src/x.rs\t2024-01-01 10:00:00.000 +0000"),
            Some("a/src/x.rs".into())
        );
    }

    #[test]
    fn when_header_is_dev_null_should_be_none() {
        assert_eq!(header_path("/dev/null"), None);
    }

    #[test]
    fn when_path_is_quoted_should_unescape() {
        assert_eq!(
            header_path("\"a/sp ace\\303\\251.rs\""),
            Some("a/sp ace\u{e9}.rs".into())
        );
    }

    #[test]
    fn when_git_header_paths_have_spaces_should_split_where_both_sides_agree() {
        assert_eq!(
            git_header_paths("a/my file.rs b/my file.rs"),
            Some(("a/my file.rs".into(), "b/my file.rs".into()))
        );
    }

    #[test]
    fn when_both_sides_use_git_prefixes_should_strip_them() {
        assert_eq!(
            strip_git_prefixes(Some("a/x.rs".into()), Some("b/x.rs".into())),
            (Some("x.rs".into()), Some("x.rs".into()))
        );
        assert_eq!(
            strip_git_prefixes(None, Some("b/new.rs".into())),
            (None, Some("new.rs".into()))
        );
        assert_eq!(
            strip_git_prefixes(Some("src/x.rs".into()), Some("src/x.rs".into())),
            (Some("src/x.rs".into()), Some("src/x.rs".into()))
        );
    }

    #[test]
    fn when_path_line_is_decorated_should_read_the_path() {
        assert_eq!(path_line("`src/lib.rs`"), Some("src/lib.rs".into()));
        assert_eq!(path_line("**src/lib.rs**:"), Some("src/lib.rs".into()));
        assert_eq!(path_line("### File: src/lib.rs"), Some("src/lib.rs".into()));
        assert_eq!(path_line("Makefile"), Some("Makefile".into()));
        assert_eq!(path_line("Here is the change:"), None);
        assert_eq!(path_line("```rust"), None);
        // An elision between hunks is not a file called `...`.
        assert_eq!(path_line("..."), None);
    }
}
