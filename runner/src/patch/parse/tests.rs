//! How replies as models write them are read.

use super::*;
use crate::patch::model::{Body, HunkLine, Operation};

fn hunks(p: &FilePatch) -> &[crate::patch::model::Hunk] {
    match &p.body {
        Body::Hunks(h) => h,
        other => panic!("expected hunks, got {other:?}"),
    }
}

#[test]
fn when_reply_is_a_git_diff_should_read_paths_without_prefixes() {
    let reply = "diff --git a/src/lib.rs b/src/lib.rs\nindex 1111111..2222222 100644\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,2 +1,2 @@\n fn a() {}\n-fn b() {}\n+fn c() {}\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].operation,
        Operation::Modify {
            candidates: vec!["src/lib.rs".into()]
        }
    );
    let h = &hunks(&patches[0])[0];
    assert_eq!((h.old_start, h.old_count), (Some(1), Some(2)));
    assert!(h.header_agrees());
    assert_eq!(
        h.lines,
        vec![
            HunkLine::Context("fn a() {}".into()),
            HunkLine::Remove("fn b() {}".into()),
            HunkLine::Add("fn c() {}".into())
        ]
    );
}

#[test]
fn when_git_diff_creates_deletes_and_renames_should_say_so() {
    let reply = "\
diff --git a/new.sh b/new.sh
new file mode 100755
--- /dev/null
+++ b/new.sh
@@ -0,0 +1 @@
+echo hi
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/a.rs b/b.rs
similarity index 90%
rename from a.rs
rename to b.rs
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";
    let patches = parse(reply).expect("parsed");
    assert_eq!(
        patches[0].operation,
        Operation::Create {
            path: "new.sh".into()
        }
    );
    assert_eq!(patches[0].new_mode, Some(0o100755));
    assert_eq!(
        patches[1].operation,
        Operation::Delete {
            path: "old.txt".into()
        }
    );
    assert_eq!(
        patches[2].operation,
        Operation::Rename {
            from: "a.rs".into(),
            to: "b.rs".into()
        }
    );
    assert!(patches[2].body.is_empty());
    assert_eq!(patches[3].new_mode, Some(0o100755));
}

#[test]
fn when_diff_is_fenced_with_prose_around_should_read_only_the_diff() {
    let reply = "Sure! Here is the fix:\n\n```diff\n--- src/main.rs\n+++ src/main.rs\n@@ @@\n fn main() {\n-    old();\n+    new();\n }\n```\n\n- This replaces `old` with `new`.\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(patches.len(), 1);
    let h = &hunks(&patches[0])[0];
    assert_eq!(h.old_start, None);
    assert_eq!(h.lines.len(), 4);
}

#[test]
fn when_counts_are_met_before_a_blank_line_should_end_the_hunk_there() {
    // Without a fence, a bullet after a blank line must not become a removed line.
    let reply = "--- a/x.rs\n+++ b/x.rs\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n\n- Changed b to c.\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(hunks(&patches[0])[0].lines.len(), 3);
}

#[test]
fn when_context_line_lost_its_space_should_read_it_as_empty_context() {
    let reply = "--- a/x.rs\n+++ b/x.rs\n@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(
        hunks(&patches[0])[0].lines[1],
        HunkLine::Context(String::new())
    );
}

#[test]
fn when_no_newline_markers_follow_lines_should_record_them() {
    let reply = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n";
    let patches = parse(reply).expect("parsed");
    let h = &hunks(&patches[0])[0];
    assert!(h.old_missing_newline);
    assert!(!h.new_missing_newline);
}

#[test]
fn when_reply_holds_several_diffs_should_read_them_all() {
    let reply = "First:\n```diff\n--- a/a.rs\n+++ b/a.rs\n@@ -1 +1 @@\n-a\n+b\n```\nThen:\n```diff\n--- a/b.rs\n+++ b/b.rs\n@@ -1 +1 @@\n-c\n+d\n```\n";
    let patches = parse(reply).expect("parsed");
    let paths: Vec<&str> = patches.iter().map(|p| p.operation.display_path()).collect();
    assert_eq!(paths, vec!["a.rs", "b.rs"]);
}

#[test]
fn when_diff_has_no_hunk_header_should_read_the_body_as_one_hunk() {
    let reply = "```diff\n--- a/x.rs\n+++ b/x.rs\n fn a() {\n-    1\n+    2\n }\n```\n";
    let patches = parse(reply).expect("parsed");
    let h = &hunks(&patches[0])[0];
    assert_eq!(h.old_start, None);
    assert_eq!(h.lines.len(), 4);
}

#[test]
fn when_bare_hunk_follows_a_path_line_should_use_that_path() {
    let reply = "`src/lib.rs`\n```diff\n@@ -1,2 +1,2 @@\n fn a() {}\n-fn b() {}\n+fn c() {}\n```\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(patches[0].operation.display_path(), "src/lib.rs");
}

#[test]
fn when_bare_hunk_has_no_path_anywhere_should_be_an_error() {
    let err = parse("@@ -1 +1 @@\n-a\n+b\n").expect_err("no path");
    assert!(matches!(err, ParseError::Malformed { line: 1, .. }));
}

#[test]
fn when_search_replace_has_path_before_fence_should_read_it() {
    let reply = "Change this:\n\nsrc/app.py\n```python\n<<<<<<< SEARCH\ndef f():\n    return 1\n=======\ndef f():\n    return 2\n>>>>>>> REPLACE\n```\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(
        patches[0].operation,
        Operation::Blocks {
            path: "src/app.py".into()
        }
    );
    let Body::Blocks(blocks) = &patches[0].body else {
        panic!("blocks")
    };
    assert_eq!(blocks[0].search, vec!["def f():", "    return 1"]);
    assert_eq!(blocks[0].replace, vec!["def f():", "    return 2"]);
}

#[test]
fn when_search_replace_has_path_inside_fence_should_read_it() {
    let reply = "```\nsrc/app.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(patches[0].operation.display_path(), "src/app.py");
}

#[test]
fn when_blocks_follow_each_other_should_share_the_path() {
    let reply = "src/a.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body.len(), 2);
}

#[test]
fn when_search_block_is_not_closed_should_be_an_error() {
    let err = parse("x.rs\n<<<<<<< SEARCH\na\n=======\nb\n").expect_err("unterminated");
    assert!(err.to_string().contains("REPLACE"), "{err}");
}

#[test]
fn when_reply_has_no_edit_should_say_so() {
    assert_eq!(
        parse("I could not find the bug.").expect_err("none"),
        ParseError::NoEdit
    );
}

#[test]
fn when_binary_patch_is_sent_should_mark_it_binary() {
    let reply = "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nGIT binary patch\nliteral 5\nMcmZ?wbhEHbLx\n\nliteral 0\nHcmV?d00001\n\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(patches[0].body, Body::Binary);
    let patches = parse("Binary files a/x.bin and b/x.bin differ\n").expect("parsed");
    assert_eq!(patches[0].body, Body::Binary);
}

#[test]
fn when_reply_has_crlf_line_endings_should_read_the_same_lines() {
    let reply = "--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n";
    let patches = parse(reply).expect("parsed");
    assert_eq!(
        hunks(&patches[0])[0].lines,
        vec![HunkLine::Remove("a".into()), HunkLine::Add("b".into())]
    );
}

#[test]
fn when_file_header_has_no_hunks_should_be_an_error() {
    let err = parse("--- a/x.rs\n+++ b/x.rs\nThat is all.\n").expect_err("empty");
    assert!(err.to_string().contains("no hunks"), "{err}");
}
