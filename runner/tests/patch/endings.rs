//! Line endings, final newlines and byte order marks stay as the file has them.

use crate::support::{Repo, failures};

const DIFF: &str =
    "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,4 @@\n alpha\n-beta\n+BETA\n+gamma2\n gamma\n";

#[test]
fn when_file_is_crlf_and_diff_is_lf_should_keep_crlf() {
    let repo = Repo::new();
    repo.write("f.txt", "alpha\r\nbeta\r\ngamma\r\n");
    let report = repo.apply(DIFF);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "alpha\r\nBETA\r\ngamma2\r\ngamma\r\n");
}

#[test]
fn when_diff_is_crlf_and_file_is_lf_should_keep_lf() {
    let repo = Repo::new();
    repo.write("f.txt", "alpha\nbeta\ngamma\n");
    let report = repo.apply(&DIFF.replace('\n', "\r\n"));
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "alpha\nBETA\ngamma2\ngamma\n");
}

#[test]
fn when_file_has_no_final_newline_and_diff_says_nothing_should_keep_it_missing() {
    let repo = Repo::new();
    repo.write("f.txt", "alpha\nbeta\ngamma");
    let report = repo.apply(DIFF);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "alpha\nBETA\ngamma2\ngamma");
}

#[test]
fn when_diff_adds_the_final_newline_should_add_it() {
    let repo = Repo::new();
    repo.write("f.txt", "alpha\nbeta");
    let report = repo.apply(
        "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n alpha\n-beta\n\\ No newline at end of file\n+beta\n",
    );
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "alpha\nbeta\n");
}

#[test]
fn when_diff_removes_the_final_newline_should_remove_it() {
    let repo = Repo::new();
    repo.write("f.txt", "alpha\nbeta\n");
    let report = repo.apply(
        "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n alpha\n-beta\n+beta\n\\ No newline at end of file\n",
    );
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "alpha\nbeta");
}

#[test]
fn when_lines_are_appended_to_a_crlf_file_without_final_newline_should_stay_consistent() {
    let repo = Repo::new();
    repo.write("f.txt", "alpha\r\nbeta\r\ngamma");
    let report = repo.apply("--- a/f.txt\n+++ b/f.txt\n@@ -2,2 +2,3 @@\n beta\n gamma\n+delta\n");
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "alpha\r\nbeta\r\ngamma\r\ndelta");
}

#[test]
fn when_file_starts_with_a_byte_order_mark_should_keep_it() {
    let repo = Repo::new();
    repo.write("f.txt", "\u{feff}alpha\nbeta\ngamma\n");
    let report = repo.apply(DIFF);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("f.txt"), "\u{feff}alpha\nBETA\ngamma2\ngamma\n");
}
