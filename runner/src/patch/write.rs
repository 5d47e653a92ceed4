//! Writing computed results to disk all together, or not at all: each file is replaced by a
//! rename of a finished temporary file, and a failure part way restores what was written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// One file's change.
#[derive(Debug)]
pub(crate) struct Change {
    pub abs: PathBuf,
    /// The new content and whether it should be executable (`None`: keep the old mode, or the
    /// default for a new file). `None` overall: delete the file.
    pub new: Option<(Vec<u8>, Option<bool>)>,
    /// What was there before; `None` if nothing.
    pub original: Option<Original>,
}

/// A file as it was before.
#[derive(Debug, Clone)]
pub(crate) struct Original {
    pub bytes: Vec<u8>,
    pub permissions: fs::Permissions,
}

/// What to do to take one step back.
enum Undo {
    Restore(PathBuf, Original),
    Remove(PathBuf),
    RemoveDir(PathBuf),
}

/// Writes every change, or restores the tree and says what failed.
pub(crate) fn commit(changes: &[Change]) -> Result<(), String> {
    let mut journal = Vec::new();
    for change in changes {
        if let Err(e) = write_one(change, &mut journal) {
            let undone = rollback(journal);
            return Err(match undone {
                Ok(()) => format!("{e}; every file written before was restored"),
                Err(r) => format!("{e}; restoring the files written before also failed: {r}"),
            });
        }
    }
    Ok(())
}

fn write_one(change: &Change, journal: &mut Vec<Undo>) -> Result<(), String> {
    let path = &change.abs;
    match &change.new {
        None => {
            fs::remove_file(path).map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
            if let Some(original) = &change.original {
                journal.push(Undo::Restore(path.clone(), original.clone()));
            }
        }
        Some((bytes, executable)) => {
            if let Some(parent) = path.parent() {
                create_dirs(parent, journal)?;
            }
            let permissions = change.original.as_ref().map(|o| o.permissions.clone());
            replace(path, bytes, permissions, *executable)?;
            journal.push(match &change.original {
                Some(original) => Undo::Restore(path.clone(), original.clone()),
                None => Undo::Remove(path.clone()),
            });
        }
    }
    Ok(())
}

/// Creates missing directories above a new file, remembering each for rollback.
fn create_dirs(dir: &Path, journal: &mut Vec<Undo>) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        fs::create_dir(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        journal.push(Undo::RemoveDir(d));
    }
    Ok(())
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so that a
/// reader never sees half a file.
fn replace(
    path: &Path,
    bytes: &[u8],
    permissions: Option<fs::Permissions>,
    executable: Option<bool>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.pj-patch-{}-{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        // No fsync, as git does not fsync working-tree files either; the rename still means a
        // reader sees the old file or the new one, never half of one.
        file.write_all(bytes)?;
        let mut perms = match permissions {
            Some(p) => p,
            None => file.metadata()?.permissions(),
        };
        set_executable(&mut perms, executable);
        fs::set_permissions(&temp, perms)?;
        fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(unix)]
fn set_executable(perms: &mut fs::Permissions, executable: Option<bool>) {
    use std::os::unix::fs::PermissionsExt;
    let mode = perms.mode();
    match executable {
        // Execute wherever reading is allowed, as `chmod +x` under a usual umask does.
        Some(true) => perms.set_mode(mode | ((mode & 0o444) >> 2)),
        Some(false) => perms.set_mode(mode & !0o111),
        None => {}
    }
}

#[cfg(not(unix))]
fn set_executable(_perms: &mut fs::Permissions, _executable: Option<bool>) {}

fn rollback(journal: Vec<Undo>) -> Result<(), String> {
    let mut errors = Vec::new();
    for undo in journal.into_iter().rev() {
        let result =
            match undo {
                Undo::Restore(path, original) => {
                    replace(&path, &original.bytes, Some(original.permissions), None)
                }
                Undo::Remove(path) => fs::remove_file(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display())),
                Undo::RemoveDir(path) => fs::remove_dir(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display())),
            };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_later_write_fails_should_restore_earlier_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = dir.path().join("kept.txt");
        fs::write(&kept, "before\n").expect("write");
        let permissions = fs::metadata(&kept).expect("meta").permissions();
        // A directory where a file should be written makes the rename fail.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).expect("dir");
        fs::write(blocked.join("inside"), "x").expect("write");
        let changes = vec![
            Change {
                abs: kept.clone(),
                new: Some((b"after\n".to_vec(), None)),
                original: Some(Original {
                    bytes: b"before\n".to_vec(),
                    permissions,
                }),
            },
            Change {
                abs: dir.path().join("new/dir/file.txt"),
                new: Some((b"new\n".to_vec(), None)),
                original: None,
            },
            Change {
                abs: blocked.clone(),
                new: Some((b"x\n".to_vec(), None)),
                original: None,
            },
        ];
        let err = commit(&changes).expect_err("fails");
        assert!(err.contains("restored"), "{err}");
        assert_eq!(fs::read_to_string(&kept).expect("read"), "before\n");
        assert!(!dir.path().join("new").exists());
        assert!(blocked.join("inside").exists());
    }
}
