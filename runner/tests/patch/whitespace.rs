//! Unchanged lines retyped with other whitespace, as models do: tabs for spaces, JSON
//! re-indented, trailing spaces. They match the file with whitespace ignored; the added lines
//! are indented as the edit shows, or the edit is refused.

use pj_runner::patch::{Status, Step};

use crate::support::{Repo, failures, statuses};

const C_FILE: &str =
    "int main(void)\n{\n\tint x = 1;\n\tif (x) {\n\t\tputs(\"one\");\n\t}\n\treturn 0;\n}\n";

#[test]
fn when_context_lines_have_spaces_for_the_files_tabs_should_apply_and_keep_the_files_lines() {
    let repo = Repo::new();
    repo.write("main.c", C_FILE);
    // Context retyped with four spaces a tab; the changed lines copied with their tabs.
    let diff = "--- a/main.c\n+++ b/main.c\n@@ -3,5 +3,5 @@\n     int x = 1;\n     if (x) {\n-\t\tputs(\"one\");\n+\t\tputs(\"two\");\n     }\n     return 0;\n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(statuses(&report), vec![Status::Fuzzy]);
    assert_eq!(report.hunks[0].step, Some(Step::Whitespace));
    assert_eq!(repo.read("main.c"), C_FILE.replace("one", "two"));
}

#[test]
fn when_a_whole_hunk_has_spaces_for_tabs_should_give_the_added_lines_tabs() {
    let repo = Repo::new();
    repo.write("main.c", C_FILE);
    // Removed lines drifted like the context: the added lines are in the edit's style too.
    let diff = "--- a/main.c\n+++ b/main.c\n@@ -3,5 +3,6 @@\n     int x = 1;\n     if (x) {\n-        puts(\"one\");\n+        puts(\"two\");\n+        puts(\"three\");\n     }\n     return 0;\n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.hunks[0].step, Some(Step::Indentation));
    assert_eq!(
        repo.read("main.c"),
        C_FILE.replace(
            "\t\tputs(\"one\");\n",
            "\t\tputs(\"two\");\n\t\tputs(\"three\");\n"
        )
    );
}

#[test]
fn when_json_context_is_reindented_should_apply_and_keep_the_files_indentation() {
    let repo = Repo::new();
    let json = "{\n  \"name\": \"demo\",\n  \"version\": \"1.0.0\",\n  \"scripts\": {\n    \"test\": \"jest\"\n  }\n}\n";
    repo.write("package.json", json);
    let diff = "--- a/package.json\n+++ b/package.json\n@@ -1,6 +1,6 @@\n {\n     \"name\": \"demo\",\n-  \"version\": \"1.0.0\",\n+  \"version\": \"1.0.1\",\n     \"scripts\": {\n         \"test\": \"jest\"\n     }\n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read("package.json"), json.replace("1.0.0", "1.0.1"));
}

#[test]
fn when_context_lines_gain_trailing_spaces_and_tabs_inside_should_apply() {
    let repo = Repo::new();
    let file = "# Title\n\nSome text here.\nMore  text.\nLast line.\n";
    repo.write("README.md", file);
    let diff = "--- a/README.md\n+++ b/README.md\n@@ -3,3 +3,3 @@\n Some\ttext here.  \n-More  text.\n+Other text.\n Last line. \n";
    let report = repo.apply(diff);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(report.hunks[0].step, Some(Step::Whitespace));
    assert_eq!(
        repo.read("README.md"),
        file.replace("More  text.", "Other text.")
    );
}

#[test]
fn when_one_line_matches_only_at_another_indentation_than_the_rest_should_refuse() {
    let repo = Repo::new();
    // `}` in the hunk is the file's nested `    }`, while the other lines keep their
    // indentation: not a drift, another place.
    let file = "fn a() {\n    if x {\n        y();\n    }\n}\n\nfn b() {}\n";
    repo.write("a.rs", file);
    let diff = "--- a/a.rs\n+++ b/a.rs\n@@ @@\n     if x {\n         y();\n+        z();\n }\n";
    let report = repo.apply(diff);
    assert!(!report.applied, "{:?}", report.hunks);
    assert_eq!(repo.read("a.rs"), file);
}
