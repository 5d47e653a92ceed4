//! All or nothing: a rejected or failed edit leaves the tree exactly as before.

use pj_runner::patch::{ApplyOptions, Outcome, Status};

use crate::support::{Repo, failures, statuses};

const TWO_FILES: &str = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n--- a/b.txt\n+++ b/b.txt\n@@ -1,2 +1,2 @@\n-missing\n+3\n four\n";

#[test]
fn when_one_file_fails_should_leave_every_file_as_before() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n")
        .write("b.txt", "three\nfour\n");
    let before = repo.snapshot();
    let report = repo.apply(TWO_FILES);
    assert!(!report.applied);
    assert_eq!(report.outcome, Outcome::Rejected);
    assert!(report.files.is_empty());
    assert_eq!(statuses(&report), vec![Status::Exact, Status::Failed]);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_a_later_created_file_fails_should_not_leave_the_earlier_one() {
    let repo = Repo::new();
    repo.write("b.txt", "x\n");
    let before = repo.snapshot();
    let reply = "--- /dev/null\n+++ b/new/dir/a.txt\n@@ -0,0 +1 @@\n+hello\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-nothere\n+y\n";
    let report = repo.apply(reply);
    assert!(!report.applied);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_checking_should_report_but_write_nothing() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n");
    let before = repo.snapshot();
    let options = ApplyOptions {
        check: true,
        ..ApplyOptions::default()
    };
    let report = repo.apply_with(
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n--- /dev/null\n+++ b/c.txt\n@@ -0,0 +1 @@\n+c\n",
        &options,
    );
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.outcome, Outcome::Applied);
    assert_eq!(report.files, vec!["a.txt", "c.txt"]);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_a_write_fails_midway_should_restore_what_was_written() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n");
    let before = repo.snapshot();
    // A name that fits the file system, but not with the temporary suffix the write needs.
    let long = "n".repeat(240);
    let reply = format!(
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n--- /dev/null\n+++ b/sub/{long}\n@@ -0,0 +1 @@\n+x\n"
    );
    let report = repo.apply(&reply);
    assert!(!report.applied);
    assert_eq!(report.outcome, Outcome::Error);
    assert_eq!(report.exit_code(), 2);
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("restored")),
        "{:?}",
        report.error
    );
    assert_eq!(repo.snapshot(), before);
}
