//! What the report says, for programs and for the model.

use pj_runner::patch::{self, Outcome, Report};

use crate::support::{LIB, Repo, failures};

#[test]
fn when_lines_are_not_found_should_name_the_closest_line_and_show_expected_and_found() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -13,3 +13,3 @@\n     pub fn norm(&self) -> i32 {\n-        self.x.abs() - self.y.abs()\n+        0\n     }\n";
    let report = repo.apply(diff);
    let message = failures(&report);
    assert!(
        message.contains("hunk 1 (`@@ -13,3 +13,3 @@`)"),
        "{message}"
    );
    assert!(
        message.contains("closest place is line 13 (2 of 3"),
        "{message}"
    );
    assert!(
        message.contains("line 14: expected \"        self.x.abs() - self.y.abs()\""),
        "{message}"
    );
    assert!(
        message.contains("found    \"        self.x.abs() + self.y.abs()\""),
        "{message}"
    );
}

#[test]
fn when_nothing_resembles_the_lines_should_say_to_check_the_path() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let report = repo
        .apply("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ @@\n def main():\n-    pass\n+    run()\n");
    assert!(
        failures(&report).contains("check the file path"),
        "{}",
        failures(&report)
    );
}

#[test]
fn when_rejected_feedback_should_list_the_failed_hunks_and_ask_for_the_whole_edit() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n");
    let report = repo.apply(
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-x\n+y\n",
    );
    let feedback = report.feedback();
    assert!(feedback.contains("no file was changed"));
    assert!(feedback.contains("1 of 2 hunks failed"));
    assert!(feedback.contains("b.txt: b.txt does not exist"));
    assert!(feedback.contains("Send the whole edit again"));
    assert!(!feedback.contains("applied at line"));
}

#[test]
fn when_serialized_should_follow_the_contract() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n");
    let report = repo.apply("--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "applied": true,
            "files": ["a.txt"],
            "hunks": [{"file": "a.txt", "status": "exact", "message": "hunk 1 applied at line 1"}]
        })
    );
}

#[test]
fn when_reply_has_no_edit_should_be_rejected_with_an_error() {
    let report = Report::from(patch::parse("No changes needed.").expect_err("no edit"));
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.exit_code(), 1);
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no edit"))
    );
    assert!(report.feedback().contains("no edit"));
}
