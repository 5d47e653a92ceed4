//! Each step of the ladder, and the refusals that keep it from guessing.

use pj_runner::patch::{Status, Step};

use crate::support::{LIB, Repo, failures, statuses};

const NORM_OLD: &str = "        self.x.abs() + self.y.abs()";
const NORM_NEW: &str = "        self.x.abs().max(self.y.abs())";

fn norm_diff(header: &str) -> String {
    format!(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n{header}\n     pub fn norm(&self) -> i32 {{\n-{NORM_OLD}\n+{NORM_NEW}\n     }}\n"
    )
}

fn expected() -> String {
    LIB.replace(NORM_OLD, NORM_NEW)
}

fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    repo
}

#[test]
fn when_hunk_is_at_stated_line_should_apply_exact() {
    let repo = repo();
    let report = repo.apply(&norm_diff("@@ -13,3 +13,3 @@"));
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(statuses(&report), vec![Status::Exact]);
    assert_eq!(report.hunks[0].step, Some(Step::ExactAtLine));
    assert_eq!(report.files, vec!["src/lib.rs"]);
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_line_numbers_are_off_should_apply_with_offset() {
    let repo = repo();
    let report = repo.apply(&norm_diff("@@ -4,3 +4,3 @@"));
    assert_eq!(statuses(&report), vec![Status::Offset]);
    assert_eq!(report.hunks[0].step, Some(Step::ExactElsewhere));
    assert!(
        report.hunks[0].message.contains("line 13"),
        "{}",
        report.hunks[0].message
    );
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_header_has_no_numbers_should_apply_with_offset() {
    let repo = repo();
    let report = repo.apply(&norm_diff("@@ @@"));
    assert_eq!(statuses(&report), vec![Status::Offset]);
    assert_eq!(report.hunks[0].step, Some(Step::Recounted));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_counts_are_wrong_should_recount_from_the_body() {
    let repo = repo();
    let report = repo.apply(&norm_diff("@@ -20,7 +20,9 @@"));
    assert_eq!(statuses(&report), vec![Status::Offset]);
    assert_eq!(report.hunks[0].step, Some(Step::Recounted));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_counts_are_wrong_but_line_is_right_should_apply_exact() {
    let repo = repo();
    let report = repo.apply(&norm_diff("@@ -13 +13 @@"));
    assert_eq!(statuses(&report), vec![Status::Exact]);
    assert!(report.hunks[0].message.contains("counts were wrong"));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_trailing_whitespace_differs_should_apply_fuzzy_and_keep_the_files_context() {
    let repo = Repo::new();
    let file = LIB.replace(
        "    pub fn norm(&self) -> i32 {",
        "    pub fn norm(&self) -> i32 {  ",
    );
    repo.write("src/lib.rs", &file);
    let report = repo.apply(&norm_diff("@@ -13,3 +13,3 @@"));
    assert_eq!(statuses(&report), vec![Status::Fuzzy]);
    assert_eq!(report.hunks[0].step, Some(Step::TrailingWhitespace));
    // The context line keeps the file's trailing spaces: only the changed line changes.
    assert_eq!(repo.read("src/lib.rs"), file.replace(NORM_OLD, NORM_NEW));
}

#[test]
fn when_indentation_is_shifted_should_reindent_added_lines() {
    let repo = repo();
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ @@\n pub fn norm(&self) -> i32 {\n-    self.x.abs() + self.y.abs()\n+    let (x, y) = (self.x.abs(), self.y.abs());\n+    x + y\n }\n";
    let report = repo.apply(diff);
    assert_eq!(statuses(&report), vec![Status::Fuzzy]);
    assert_eq!(report.hunks[0].step, Some(Step::Indentation));
    assert!(report.hunks[0].message.contains("+4 spaces"));
    assert_eq!(
        repo.read("src/lib.rs"),
        LIB.replace(
            NORM_OLD,
            "        let (x, y) = (self.x.abs(), self.y.abs());\n        x + y"
        )
    );
}

#[test]
fn when_a_context_line_between_others_is_missing_should_keep_it_and_apply() {
    let repo = repo();
    // The model left out `    }` between `Point { x, y }` and the blank line.
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -10,6 +10,6 @@\n         Point { x, y }\n \n     pub fn norm(&self) -> i32 {\n-        self.x.abs() + self.y.abs()\n+        self.x.abs().max(self.y.abs())\n     }\n }\n";
    let report = repo.apply(diff);
    assert_eq!(statuses(&report), vec![Status::Fuzzy]);
    assert_eq!(report.hunks[0].step, Some(Step::MissingLine));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_an_outer_context_line_differs_should_trim_it_and_apply() {
    let repo = repo();
    // The first context line is not the file's (`Point { x, y }` misremembered).
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -10,6 +10,6 @@\n         Point { y, x }\n     }\n \n     pub fn norm(&self) -> i32 {\n-        self.x.abs() + self.y.abs()\n+        self.x.abs().max(self.y.abs())\n     }\n }\n";
    let report = repo.apply(diff);
    assert_eq!(statuses(&report), vec![Status::Fuzzy]);
    assert_eq!(report.hunks[0].step, Some(Step::TrimmedContext));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_anchor_matches_twice_should_refuse() {
    let repo = Repo::new();
    let block = "fn helper() {\n    compute(1, 2);\n    finish();\n}\n";
    repo.write("a.rs", format!("{block}\nmod inner {{\n}}\n\n{block}"));
    let before = repo.snapshot();
    let diff = "--- a/a.rs\n+++ b/a.rs\n@@ @@\n fn helper() {\n-    compute(1, 2);\n+    compute(3, 4);\n     finish();\n";
    let report = repo.apply(diff);
    assert!(!report.applied);
    assert_eq!(statuses(&report), vec![Status::Failed]);
    assert!(
        failures(&report).contains("match 2 places (lines 1, 9"),
        "{}",
        failures(&report)
    );
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_anchor_matches_again_with_other_indentation_should_refuse() {
    // A hunk whose indentation drifted must not land exactly on a deeper copy of the code.
    let repo = Repo::new();
    repo.write(
        "a.rs",
        "fn run() {\n    start();\n    stop();\n}\n\nmod nested {\n    fn run() {\n        start();\n        stop();\n    }\n}\n",
    );
    let diff = "--- a/a.rs\n+++ b/a.rs\n@@ -7,4 +7,4 @@\n     fn run() {\n-        start();\n+        begin();\n         stop();\n";
    let report = repo.apply(diff);
    assert!(
        report.applied,
        "the stated line is exact: {}",
        failures(&report)
    );
    let shifted = "--- a/a.rs\n+++ b/a.rs\n@@ -1,4 +1,4 @@\n     fn run() {\n-        start();\n+        begin();\n         stop();\n";
    let repo2 = Repo::new();
    repo2.write(
        "a.rs",
        "fn run() {\n    start();\n    stop();\n}\n\nmod nested {\n    fn run() {\n        start();\n        stop();\n    }\n}\n",
    );
    let report = repo2.apply(shifted);
    assert!(!report.applied);
    assert!(
        failures(&report).contains("2 places"),
        "{}",
        failures(&report)
    );
}

#[test]
fn when_anchor_is_short_and_not_at_stated_line_should_refuse() {
    let repo = repo();
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -3,1 +3,2 @@\n }\n+// end\n";
    let report = repo.apply(diff);
    assert!(!report.applied);
    assert!(
        failures(&report).contains("too little context"),
        "{}",
        failures(&report)
    );
}

#[test]
fn when_hunk_has_no_context_at_all_should_refuse() {
    let repo = repo();
    let report = repo.apply("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -3,0 +4,1 @@\n+// hello\n");
    assert!(!report.applied);
    assert!(failures(&report).contains("without any unchanged line"));
}

#[test]
fn when_context_next_to_an_insertion_is_missing_should_refuse() {
    // Does `// between` go before or after `    y: i32,`? Without that line, nothing says.
    let repo = repo();
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ @@\n pub struct Point {\n     x: i32,\n+    // between\n }\n \n impl Point {\n";
    let report = repo.apply(diff);
    assert!(!report.applied, "{:?}", report.hunks);
}

#[test]
fn when_hunk_starts_with_insertion_away_from_file_start_should_refuse() {
    let repo = repo();
    // Clean diffs have no leading context only at line 1; here the first line was dropped.
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,4 @@\n+#![allow(dead_code)]\n \n pub struct Point {\n     x: i32,\n";
    let report = repo.apply(diff);
    assert!(!report.applied);
    assert!(
        failures(&report).contains("start or end of the file"),
        "{}",
        failures(&report)
    );
}

#[test]
fn when_hunks_come_in_order_should_shift_later_stated_lines_by_earlier_deltas() {
    let repo = repo();
    // Hunk 2 states its line in the original numbering, after hunk 1 added two lines.
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,5 @@\n use std::fmt;\n+use std::ops::Add;\n+\n \n pub struct Point {\n@@ -13,3 +15,3 @@\n     pub fn norm(&self) -> i32 {\n-        self.x.abs() + self.y.abs()\n+        self.x.abs().max(self.y.abs())\n     }\n";
    let report = repo.apply(diff);
    assert_eq!(statuses(&report), vec![Status::Exact, Status::Exact]);
    assert_eq!(
        repo.read("src/lib.rs"),
        expected().replace("use std::fmt;\n", "use std::fmt;\nuse std::ops::Add;\n\n")
    );
}

#[test]
fn when_edit_is_already_applied_should_say_so() {
    let repo = Repo::new();
    repo.write("src/lib.rs", expected());
    let report = repo.apply(&norm_diff("@@ -13,3 +13,3 @@"));
    assert!(!report.applied);
    assert!(
        failures(&report).contains("applied already"),
        "{}",
        failures(&report)
    );
}

#[test]
fn when_search_block_matches_exactly_should_apply_exact() {
    let repo = repo();
    let reply = format!(
        "src/lib.rs\n```rust\n<<<<<<< SEARCH\n{NORM_OLD}\n=======\n{NORM_NEW}\n>>>>>>> REPLACE\n```\n"
    );
    let report = repo.apply(&reply);
    assert_eq!(statuses(&report), vec![Status::Exact]);
    assert_eq!(report.hunks[0].step, Some(Step::SearchExact));
    assert!(report.hunks[0].message.contains("lines 14-14"));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_search_block_matches_twice_should_refuse() {
    let repo = Repo::new();
    let block = "fn helper() {\n    compute(1, 2);\n}\n";
    repo.write("a.rs", format!("{block}\n{block}"));
    let reply =
        "a.rs\n<<<<<<< SEARCH\n    compute(1, 2);\n=======\n    compute(3, 4);\n>>>>>>> REPLACE\n";
    let report = repo.apply(reply);
    assert!(!report.applied);
    assert!(
        failures(&report).contains("2 places (lines 2, 6"),
        "{}",
        failures(&report)
    );
    assert_eq!(repo.read("a.rs"), format!("{block}\n{block}"));
}

#[test]
fn when_search_block_indentation_differs_should_apply_fuzzy() {
    let repo = repo();
    let reply = "src/lib.rs\n<<<<<<< SEARCH\npub fn norm(&self) -> i32 {\n    self.x.abs() + self.y.abs()\n}\n=======\npub fn norm(&self) -> i32 {\n    self.x.abs().max(self.y.abs())\n}\n>>>>>>> REPLACE\n";
    let report = repo.apply(reply);
    assert_eq!(statuses(&report), vec![Status::Fuzzy]);
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_search_is_empty_on_a_missing_file_should_create_it() {
    let repo = Repo::new();
    let reply =
        "docs/NOTES.md\n```\n<<<<<<< SEARCH\n=======\n# Notes\n\nFirst.\n>>>>>>> REPLACE\n```\n";
    let report = repo.apply(reply);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("docs/NOTES.md"), "# Notes\n\nFirst.\n");
}

#[test]
fn when_search_is_empty_on_an_existing_file_should_refuse() {
    let repo = repo();
    let report = repo.apply("src/lib.rs\n<<<<<<< SEARCH\n=======\nfn x() {}\n>>>>>>> REPLACE\n");
    assert!(!report.applied);
    assert!(failures(&report).contains("SEARCH section is empty"));
}

#[test]
fn when_search_block_targets_a_missing_file_should_refuse() {
    let repo = Repo::new();
    let report = repo.apply("src/nope.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n");
    assert!(!report.applied);
    assert!(failures(&report).contains("does not exist"));
}
