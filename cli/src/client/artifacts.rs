//! `pj artifacts ID --out DIR`: every artifact of a task written into one directory. The names
//! come from the server and are not trusted: only a plain file name is written, and never
//! through a symbolic link, so nothing lands outside `DIR`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::api::{Api, ApiError, unreachable};

/// Why an artifact was not written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("refusing the artifact name {0:?}: not a plain file name")]
    UnsafeName(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A name that is one plain file name: not empty, at most 255 bytes, no `/` or `\`, no NUL or
/// other control character, not starting with `.` (so neither `.`, `..` nor a hidden file).
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Downloads one artifact into `dir`, returning the path written. An existing regular file of
/// that name is replaced; a symbolic link there is refused, not followed.
pub async fn save(api: &Api, task_id: &str, name: &str, dir: &Path) -> Result<PathBuf, SaveError> {
    if !is_plain_file_name(name) {
        return Err(SaveError::UnsafeName(name.to_owned()));
    }
    let path = dir.join(name);
    let mut response = api.download(&["tasks", task_id, "artifacts", name]).await?;
    let write_error = |source| SaveError::Write {
        path: path.clone(),
        source,
    };
    let mut file = open_for_writing(&path).map_err(write_error)?;
    let url = format!("{task_id}/artifacts/{name}");
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SaveError::Api(unreachable(&url, &e)))?
    {
        file.write_all(&chunk).map_err(write_error)?;
    }
    file.flush().map_err(write_error)?;
    Ok(path)
}

/// Creates or truncates a file; a symbolic link in its place is an error (`ELOOP`), not a way
/// out of the directory.
fn open_for_writing(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_accepted() {
        for good in [
            "a1-step-2.png",
            "a1-reply-1.md",
            "report final.txt",
            "ü.json",
        ] {
            assert!(is_plain_file_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/../../etc/passwd",
            "/etc/passwd",
            "dir/file",
            ".bashrc",
            "..\\x",
            "a\0b",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_symbolic_link_in_the_directory_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("a1-step-1.png")).unwrap();
        assert!(open_for_writing(&out.join("a1-step-1.png")).is_err());
        assert!(open_for_writing(&out.join("a1-step-2.png")).is_ok());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }
}
