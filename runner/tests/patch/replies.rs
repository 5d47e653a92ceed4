//! Replies shaped the way models write them: a file header of one line, a second fenced
//! block without a header, unchanged lines elided by `...`.

use pj_runner::patch::{Status, Step};

use crate::support::{LIB, Repo, failures, statuses};

const NORM_OLD: &str = "        self.x.abs() + self.y.abs()";
const NORM_NEW: &str = "        self.x.abs().max(self.y.abs())";

fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    repo
}

#[test]
fn when_the_file_header_has_only_its_minus_line_should_take_the_path_from_it() {
    let repo = repo();
    repo.write("b.txt", "one\ntwo\n");
    // The second file's header follows the first file's last hunk directly.
    let reply = format!(
        "--- a/src/lib.rs\n@@ -13,3 +13,3 @@\n     pub fn norm(&self) -> i32 {{\n-{NORM_OLD}\n+{NORM_NEW}\n     }}\n--- a/b.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"
    );
    let report = repo.apply(&reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.files, vec!["src/lib.rs", "b.txt"]);
    assert_eq!(repo.read("src/lib.rs"), LIB.replace(NORM_OLD, NORM_NEW));
    assert_eq!(repo.read("b.txt"), "one\n2\n");
}

#[test]
fn when_a_second_fenced_block_has_no_header_should_carry_the_file_and_its_numbering_over() {
    let repo = repo();
    // The second hunk's lines (`}` and a blank line) are too little to be searched for: only
    // its stated line, counted in the file before the first hunk added two lines, places it.
    let reply = "Add the import:\n\n```diff\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,5 @@\n use std::fmt;\n+use std::ops::Add;\n+\n \n pub struct Point {\n```\n\nThen mark the end of the impl:\n\n```diff\n@@ -16,2 +18,3 @@\n }\n+// end of impl Point\n \n```\n";
    let report = repo.apply(reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(statuses(&report), vec![Status::Exact, Status::Exact]);
    assert_eq!(
        repo.read("src/lib.rs"),
        LIB.replace("use std::fmt;\n", "use std::fmt;\nuse std::ops::Add;\n\n")
            .replacen("    }\n}\n\n", "    }\n}\n// end of impl Point\n\n", 1)
    );
}

#[test]
fn when_a_diff_block_has_neither_header_nor_numbers_should_continue_the_previous_file() {
    let repo = repo();
    let reply = format!(
        "```diff\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -3,3 +3,3 @@\n pub struct Point {{\n-    x: i32,\n+    x: i64,\n     y: i32,\n```\n\nand\n\n```diff\n     pub fn norm(&self) -> i32 {{\n-{NORM_OLD}\n+{NORM_NEW}\n     }}\n```\n"
    );
    let report = repo.apply(&reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.hunks.len(), 2);
    assert_eq!(
        repo.read("src/lib.rs"),
        LIB.replace(NORM_OLD, NORM_NEW)
            .replace("    x: i32,", "    x: i64,")
    );
}

#[test]
fn when_unchanged_lines_are_elided_by_dots_should_place_the_parts_around_them() {
    let repo = repo();
    let reply = format!(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -8,8 +8,8 @@\n impl Point {{\n     pub fn new(x: i32, y: i32) -> Self {{\n...\n     pub fn norm(&self) -> i32 {{\n-{NORM_OLD}\n+{NORM_NEW}\n     }}\n"
    );
    let report = repo.apply(&reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.hunks[0].step, Some(Step::Elision));
    assert!(
        report.hunks[0]
            .message
            .contains("2 parts around its `...` lines"),
        "{}",
        report.hunks[0].message
    );
    assert_eq!(repo.read("src/lib.rs"), LIB.replace(NORM_OLD, NORM_NEW));
}

#[test]
fn when_the_file_really_has_a_dots_line_should_match_it_as_written() {
    let repo = Repo::new();
    repo.write("doc.md", "Steps:\n\n1. one\n...\n2. two\n");
    let report = repo
        .apply("--- a/doc.md\n+++ b/doc.md\n@@ -3,3 +3,3 @@\n 1. one\n ...\n-2. two\n+2. three\n");
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.hunks[0].step, Some(Step::ExactAtLine));
    assert_eq!(repo.read("doc.md"), "Steps:\n\n1. one\n...\n2. three\n");
}

#[test]
fn when_parts_around_dots_match_several_places_should_refuse() {
    let repo = Repo::new();
    let block = "fn helper() {\n    compute(1, 2);\n    finish();\n}\n";
    repo.write("a.rs", format!("{block}\nfn other() {{}}\n\n{block}"));
    let before = repo.snapshot();
    let report = repo.apply("--- a/a.rs\n+++ b/a.rs\n@@ @@\n...\n     compute(1, 2);\n-    finish();\n+    done();\n }\n");
    assert!(!report.applied);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_dots_end_a_hunk_before_the_next_one_should_not_be_taken_for_a_path() {
    let repo = repo();
    let reply = format!(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -3,3 +3,3 @@\n pub struct Point {{\n-    x: i32,\n+    x: i64,\n     y: i32,\n...\n@@ -13,3 +13,3 @@\n     pub fn norm(&self) -> i32 {{\n-{NORM_OLD}\n+{NORM_NEW}\n     }}\n"
    );
    let report = repo.apply(&reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.files, vec!["src/lib.rs"]);
    assert_eq!(
        repo.read("src/lib.rs"),
        LIB.replace(NORM_OLD, NORM_NEW)
            .replace("    x: i32,", "    x: i64,")
    );
}
