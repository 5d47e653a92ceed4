//! Hunks of one file are placed each by its own evidence, whatever their order in the reply;
//! line numbers are evidence, and two hunks never change the same lines.

use pj_runner::patch::{Status, Step};

use crate::support::{LIB, Repo, failures, statuses};

const NORM_HUNK: &str = "@@ -13,3 +13,3 @@\n     pub fn norm(&self) -> i32 {\n-        self.x.abs() + self.y.abs()\n+        self.x.abs().max(self.y.abs())\n     }\n";
const FIELD_HUNK: &str =
    "@@ -3,3 +3,3 @@\n pub struct Point {\n-    x: i32,\n+    x: i64,\n     y: i32,\n";

fn expected() -> String {
    LIB.replace(
        "        self.x.abs() + self.y.abs()",
        "        self.x.abs().max(self.y.abs())",
    )
    .replace("    x: i32,", "    x: i64,")
}

#[test]
fn when_hunks_come_out_of_order_should_apply_each_where_it_belongs() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let report = repo.apply(&format!(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n{NORM_HUNK}{FIELD_HUNK}"
    ));
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(statuses(&report), vec![Status::Exact, Status::Exact]);
    assert_eq!(repo.read("src/lib.rs"), expected());
}

#[test]
fn when_hunks_without_numbers_come_out_of_order_should_apply_each_where_it_belongs() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let numberless = |h: &str| format!("@@ @@\n{}", h.split_once('\n').map_or("", |(_, b)| b));
    let report = repo.apply(&format!(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n{}{}",
        numberless(NORM_HUNK),
        numberless(FIELD_HUNK)
    ));
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("src/lib.rs"), expected());
}

/// A block that occurs twice, the second copy far below: only line numbers tell them apart.
fn twice_apart() -> (String, String) {
    let block = "fn helper() {\n    compute(1, 2);\n    finish();\n}\n";
    let filler: String = (0..120)
        .map(|i| format!("const C{i}: u32 = {i};\n"))
        .collect();
    let file = format!("{block}\n{filler}\nfn main() {{\n    run();\n}}\n\n{block}");
    let main_at = file.lines().position(|l| l == "fn main() {").expect("main") + 1;
    (file, format!("{main_at}"))
}

#[test]
fn when_a_hunk_matches_exactly_at_its_stated_line_should_never_move_to_a_look_alike() {
    let repo = Repo::new();
    let (file, main_at) = twice_apart();
    repo.write("a.rs", &file);
    // The hunk of line 1 comes after a hunk further down: it must stay at line 1, not go to
    // the copy that follows the first hunk.
    let diff = format!(
        "--- a/a.rs\n+++ b/a.rs\n@@ -{main_at},3 +{main_at},3 @@\n fn main() {{\n-    run();\n+    run_all();\n }}\n@@ -1,4 +1,4 @@\n fn helper() {{\n-    compute(1, 2);\n+    compute(3, 4);\n     finish();\n }}\n"
    );
    let report = repo.apply(&diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.hunks[1].step, Some(Step::ExactAtLine));
    let after = repo.read("a.rs");
    assert!(
        after.starts_with("fn helper() {\n    compute(3, 4);\n"),
        "{after}"
    );
    assert!(
        after.ends_with("fn helper() {\n    compute(1, 2);\n    finish();\n}\n"),
        "{after}"
    );
    assert!(after.contains("    run_all();\n"));
}

#[test]
fn when_a_hunk_is_repeated_should_refuse_the_overlap_and_change_nothing() {
    let repo = Repo::new();
    repo.write("src/lib.rs", LIB);
    let before = repo.snapshot();
    let report = repo.apply(&format!(
        "--- a/src/lib.rs\n+++ b/src/lib.rs\n{NORM_HUNK}{NORM_HUNK}"
    ));
    assert!(!report.applied);
    assert_eq!(statuses(&report), vec![Status::Exact, Status::Failed]);
    assert!(
        failures(&report).contains("overlap those of hunk 1"),
        "{}",
        failures(&report)
    );
    assert_eq!(repo.snapshot(), before);
}
