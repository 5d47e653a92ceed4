//! What the report says, for programs and for the model.

use pj_runner::patch::{self, Outcome, Report};

use crate::support::{LIB, Repo, failures};

#[test]
fn when_lines_are_not_found_should_show_the_files_lines_with_the_differing_one_under_it() {
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
        message.contains("  13 |     pub fn norm(&self) -> i32 {"),
        "{message}"
    );
    assert!(
        message.contains("  14 ≠ ········self.x.abs()·+·self.y.abs()"),
        "{message}"
    );
    assert!(
        message.contains("yours ≠ ········self.x.abs()·-·self.y.abs()"),
        "{message}"
    );
    assert!(message.contains("1 line(s) differ in content"), "{message}");
}

#[test]
fn when_only_whitespace_and_one_line_differ_should_make_the_whitespace_visible() {
    let repo = Repo::new();
    repo.write(
        "main.c",
        "int f(void)\n{\n\tif (x) {\n\t\tputs(\"one\");\n\t}\n}\n",
    );
    // The removed line is misremembered, and the context has spaces for the file's tabs.
    let diff = "--- a/main.c\n+++ b/main.c\n@@ -3,3 +3,3 @@\n     if (x) {\n-        puts(\"uno\");\n+        puts(\"two\");\n     }\n";
    let message = failures(&repo.apply(diff));
    assert!(message.contains("   3 ≠ →if·(x)·{"), "{message}");
    assert!(message.contains("yours ≠ ····if·(x)·{"), "{message}");
    assert!(message.contains("   4 ≠ →→puts(\"one\");"), "{message}");
    assert!(
        message.contains("yours ≠ ········puts(\"uno\");"),
        "{message}"
    );
    assert!(
        message.contains("the file indents with tabs where yours has spaces"),
        "{message}"
    );
    assert!(!message.contains("check the file path"), "{message}");
}

#[test]
fn when_a_line_of_the_file_is_left_out_next_to_added_lines_should_say_which() {
    let repo = Repo::new();
    repo.write(
        "a.py",
        "def f():\n    one()\n    two()\n    three()\n    return 1\n",
    );
    // Does `new()` go before or after `two()`? Refused, and the feedback names the line.
    let diff = "--- a/a.py\n+++ b/a.py\n@@ -1,5 +1,5 @@\n def f():\n     one()\n+    new()\n     three()\n     return 1\n";
    let message = failures(&repo.apply(diff));
    assert!(message.contains("   3 + ····two()"), "{message}");
    assert!(message.contains("leave out line(s) 3"), "{message}");
}

#[test]
fn when_nothing_resembles_the_lines_should_still_show_the_closest_and_never_blame_the_path() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let report = repo
        .apply("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ @@\n def main():\n-    pass\n+    run()\n");
    let message = failures(&report);
    assert!(
        message.contains("Nothing in src/lib.rs resembles them closely"),
        "{message}"
    );
    assert!(message.contains("yours - def·main():"), "{message}");
    assert!(!message.contains("check the file path"), "{message}");
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
