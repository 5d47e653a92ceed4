//! Whole-file operations: create, delete, rename, copy, modes, missing files, path prefixes.

use pj_runner::patch::Status;

use crate::support::{LIB, Repo, failures, statuses};

#[test]
fn when_diff_creates_a_file_should_write_it_with_its_directories() {
    let repo = Repo::new();
    let diff = "diff --git a/src/new/mod.rs b/src/new/mod.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/new/mod.rs\n@@ -0,0 +1,2 @@\n+pub fn hello() {}\n+pub fn bye() {}\n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(statuses(&report), vec![Status::Exact]);
    assert_eq!(
        repo.read("src/new/mod.rs"),
        "pub fn hello() {}\npub fn bye() {}\n"
    );
    assert_eq!(report.files, vec!["src/new/mod.rs"]);
}

#[test]
fn when_new_file_already_exists_should_refuse() {
    let repo = Repo::new();
    repo.write("a.txt", "there\n");
    let report = repo.apply("--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1 @@\n+new\n");
    assert!(!report.applied);
    assert!(failures(&report).contains("already exists"));
    assert_eq!(repo.read("a.txt"), "there\n");
}

#[test]
fn when_new_file_hunk_has_context_lines_should_refuse() {
    let repo = Repo::new();
    let report = repo.apply("--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1,2 @@\n+new\n same\n");
    assert!(!report.applied);
    assert!(failures(&report).contains("may only add lines"));
}

#[test]
fn when_diff_deletes_a_file_should_remove_it() {
    let repo = Repo::new();
    repo.write("old.txt", "a\nb\n");
    let report = repo.apply("diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n");
    assert!(report.applied, "{}", failures(&report));
    assert!(!repo.exists("old.txt"));
    assert_eq!(report.files, vec!["old.txt"]);
}

#[test]
fn when_deletion_has_no_hunks_should_remove_the_file() {
    let repo = Repo::new();
    repo.write("old.txt", "a\nb\n");
    let report = repo.apply("diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n");
    assert!(report.applied, "{}", failures(&report));
    assert!(!repo.exists("old.txt"));
}

#[test]
fn when_deletion_leaves_lines_should_refuse() {
    let repo = Repo::new();
    repo.write("old.txt", "a\nb\nc\n");
    let report = repo.apply("--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n");
    assert!(!report.applied);
    assert!(
        failures(&report).contains("leave 1 line"),
        "{}",
        failures(&report)
    );
    assert_eq!(repo.read("old.txt"), "a\nb\nc\n");
}

#[test]
fn when_git_diff_renames_a_file_with_changes_should_move_it() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let diff = "diff --git a/src/lib.rs b/src/point.rs\nsimilarity index 95%\nrename from src/lib.rs\nrename to src/point.rs\n--- a/src/lib.rs\n+++ b/src/point.rs\n@@ -1,3 +1,3 @@\n-use std::fmt;\n+use std::fmt::{self, Display};\n \n pub struct Point {\n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert!(!repo.exists("src/lib.rs"));
    assert_eq!(
        repo.read("src/point.rs"),
        LIB.replace("use std::fmt;", "use std::fmt::{self, Display};")
    );
    assert_eq!(report.files, vec!["src/lib.rs", "src/point.rs"]);
}

#[test]
fn when_rename_target_exists_should_refuse() {
    let repo = Repo::new();
    repo.write("a.txt", "a\n").write("b.txt", "b\n");
    let report = repo.apply("diff --git a/a.txt b/b.txt\nrename from a.txt\nrename to b.txt\n");
    assert!(!report.applied);
    assert!(failures(&report).contains("already exists"));
}

#[test]
fn when_git_diff_copies_a_file_should_keep_the_original() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\nthree\n");
    let diff = "diff --git a/a.txt b/b.txt\ncopy from a.txt\ncopy to b.txt\n--- a/a.txt\n+++ b/b.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("a.txt"), "one\ntwo\nthree\n");
    assert_eq!(repo.read("b.txt"), "one\n2\nthree\n");
}

#[cfg(unix)]
#[test]
fn when_mode_lines_make_a_file_executable_should_set_the_bit() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    repo.write("run.sh", "echo hi\n");
    let report = repo.apply("diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n");
    assert!(report.applied, "{}", failures(&report));
    let mode = std::fs::metadata(repo.at("run.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0);
    assert_eq!(report.files, vec!["run.sh"]);
}

#[cfg(unix)]
#[test]
fn when_an_executable_file_is_patched_should_keep_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    repo.write("run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(repo.at("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let report = repo
        .apply("--- a/run.sh\n+++ b/run.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo hi\n+echo hello\n");
    assert!(report.applied, "{}", failures(&report));
    let mode = std::fs::metadata(repo.at("run.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn when_file_is_missing_should_refuse_and_name_it() {
    let repo = Repo::new();
    let report = repo.apply("--- a/src/nope.rs\n+++ b/src/nope.rs\n@@ -1 +1 @@\n-a\n+b\n");
    assert!(!report.applied);
    assert_eq!(report.hunks[0].file, "src/nope.rs");
    assert!(failures(&report).contains("src/nope.rs does not exist"));
}

#[test]
fn when_paths_have_no_git_prefixes_should_use_them_as_they_are() {
    let repo = Repo::new();
    repo.write("a/b.txt", "x\ny\n");
    let report = repo.apply("--- a/b.txt\n+++ a/b.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n");
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("a/b.txt"), "x\nz\n");
}

#[test]
fn when_path_carries_a_prefix_it_did_not_mean_should_find_the_file() {
    let repo = Repo::new();
    repo.write("b.txt", "x\ny\n");
    let report = repo.apply("--- a/b.txt\n+++ a/b.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n");
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("b.txt"), "x\nz\n");
}

#[test]
fn when_reply_edits_two_files_should_apply_both() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n")
        .write("b.txt", "three\nfour\n");
    let reply = "```diff\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n--- a/b.txt\n+++ b/b.txt\n@@ -1,2 +1,2 @@\n-three\n+3\n four\n```\n";
    let report = repo.apply(reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.files, vec!["a.txt", "b.txt"]);
    assert_eq!(repo.read("a.txt"), "one\n2\n");
    assert_eq!(repo.read("b.txt"), "3\nfour\n");
}
