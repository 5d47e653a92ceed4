//! Which paths an edit may touch: only regular places inside the repository, never `.git/`,
//! never through a symbolic link, and workflows only when allowed.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A path checked to be safe to read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoPath {
    /// Normalized, `/`-separated, relative to the repository root.
    pub rel: String,
    /// The path on disk.
    pub abs: PathBuf,
}

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathError {
    /// The path is not allowed: the message says why, for the model.
    Refused(String),
    /// The file system could not be asked.
    Io(String),
}

/// Checks `raw` (as written in the edit) against `root` (canonical).
pub(crate) fn check(root: &Path, raw: &str, allow_workflows: bool) -> Result<RepoPath, PathError> {
    let refuse = |why: String| Err(PathError::Refused(why));
    if raw.contains('\0') {
        return refuse(format!("the path {raw:?} contains a NUL byte"));
    }
    let bytes = raw.as_bytes();
    let drive = bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && (bytes[2] == b'/' || bytes[2] == b'\\');
    if raw.starts_with('/') || raw.starts_with('\\') || raw.starts_with('~') || drive {
        return refuse(format!(
            "{raw} is an absolute path: use a path relative to the repository root"
        ));
    }
    let parts: Vec<&str> = raw
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() {
        return refuse(format!("{raw:?} does not name a file"));
    }
    if parts.contains(&"..") {
        return refuse(format!(
            "{raw} uses `..`: paths must stay inside the repository"
        ));
    }
    if parts.iter().any(|p| p.eq_ignore_ascii_case(".git")) {
        return refuse(format!(
            "{raw} is inside .git/: the repository's internals cannot be edited"
        ));
    }
    if !allow_workflows
        && parts.len() >= 2
        && parts[0].eq_ignore_ascii_case(".github")
        && parts[1].eq_ignore_ascii_case("workflows")
    {
        return refuse(format!(
            "{raw} is a GitHub Actions workflow: changing .github/workflows/ is not allowed \
             for this task"
        ));
    }
    let mut abs = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        abs.push(part);
        match std::fs::symlink_metadata(&abs) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return refuse(format!(
                    "{raw} goes through the symbolic link {}: links are not followed",
                    parts[..=i].join("/")
                ));
            }
            Ok(meta) if i + 1 < parts.len() && !meta.is_dir() => {
                return refuse(format!(
                    "{raw} cannot exist: {} is a file, not a directory",
                    parts[..=i].join("/")
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            Err(e) => {
                return Err(PathError::Io(format!(
                    "cannot inspect {}: {e}",
                    parts[..=i].join("/")
                )));
            }
        }
    }
    Ok(RepoPath {
        rel: parts.join("/"),
        abs: parts
            .iter()
            .fold(root.to_path_buf(), |p, part| p.join(part)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<RepoPath, PathError>) -> bool {
        matches!(r, Err(PathError::Refused(_)))
    }

    #[test]
    fn when_path_escapes_or_is_absolute_should_refuse() {
        let root = Path::new("/nonexistent-root");
        assert!(refused(check(root, "/etc/passwd", false)));
        assert!(refused(check(root, "C:\\x", false)));
        assert!(refused(check(root, "src/../../x", false)));
        assert!(refused(check(root, ".git/config", false)));
        assert!(refused(check(root, "sub/.GIT/hooks/pre-commit", false)));
        assert!(refused(check(root, ".github/workflows/ci.yml", false)));
    }

    #[test]
    fn when_path_is_plain_should_normalize_it() {
        let root = Path::new("/nonexistent-root");
        let p = check(root, "./src//lib.rs", false).expect("safe");
        assert_eq!(p.rel, "src/lib.rs");
        assert!(check(root, ".github/workflows/ci.yml", true).is_ok());
    }
}
