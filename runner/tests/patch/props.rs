//! Properties over random files and edits: a clean diff always applies exactly, and a diff made
//! ambiguous is refused, never applied somewhere else.

use proptest::prelude::*;
use similar::TextDiff;

use crate::support::Repo;
use pj_runner::patch::Status;

/// Lines drawn from a small set, so that files repeat lines as code does; includes lines that
/// look like diff syntax once prefixed (`-- note` becomes `--- note` when removed).
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("}".to_string()),
        Just("    return x;".to_string()),
        Just("-- note".to_string()),
        Just("\tindented with a tab".to_string()),
        Just("trailing space  ".to_string()),
        "[a-z]{1,6}\\(\\);".prop_map(|s| s),
        "    let [a-z]{1,3} = [0-9]{1,2};".prop_map(|s| s),
    ]
}

fn text(lines: &[String], final_newline: bool) -> String {
    let mut s = lines.join("\n");
    if final_newline && !lines.is_empty() {
        s.push('\n');
    }
    s
}

/// One edit: at a position (modulo the length), remove some lines and insert others.
fn edits() -> impl Strategy<Value = Vec<(usize, usize, Vec<String>)>> {
    prop::collection::vec(
        (0usize..64, 0usize..3, prop::collection::vec(line(), 0..3)),
        1..4,
    )
}

fn edited(old: &[String], edits: &[(usize, usize, Vec<String>)]) -> Vec<String> {
    let mut new = old.to_vec();
    for (at, remove, insert) in edits {
        let at = at % (new.len() + 1);
        let end = (at + remove).min(new.len());
        new.splice(at..end, insert.iter().cloned());
    }
    new
}

fn unified(old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("a/f.txt", "b/f.txt")
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn clean_diff_of_a_random_edit_always_applies_exactly(
        old_lines in prop::collection::vec(line(), 0..40),
        edits in edits(),
        old_nl in any::<bool>(),
        new_nl in any::<bool>(),
    ) {
        let new_lines = edited(&old_lines, &edits);
        let old = text(&old_lines, old_nl);
        let new = text(&new_lines, new_nl);
        prop_assume!(old != new);
        let repo = Repo::new();
        repo.write("f.txt", &old);
        let report = repo.apply(&unified(&old, &new));
        prop_assert!(report.applied, "{:?}", report);
        prop_assert!(report.hunks.iter().all(|h| h.status == Status::Exact), "{:?}", report.hunks);
        prop_assert_eq!(repo.read("f.txt"), new);
    }

    #[test]
    fn diff_of_a_duplicated_region_without_line_numbers_is_refused(
        prefix in prop::collection::vec(line(), 0..6),
        region in prop::collection::vec("[a-z]{2,8}\\(\\);", 8..12),
        middle in prop::collection::vec(line(), 0..6),
        suffix in prop::collection::vec(line(), 0..6),
        pick in 3usize..5,
        copy in 0usize..2,
    ) {
        // The change sits at least 3 lines inside one copy of the region, so every line of its
        // hunk occurs in both copies.
        let mut old_lines = prefix.clone();
        old_lines.extend(region.iter().cloned());
        old_lines.extend(middle.iter().cloned());
        old_lines.extend(region.iter().cloned());
        old_lines.extend(suffix.iter().cloned());
        let base = if copy == 0 { prefix.len() } else { prefix.len() + region.len() + middle.len() };
        let mut new_lines = old_lines.clone();
        new_lines[base + pick] = "changed_line();".to_string();
        let old = text(&old_lines, true);
        let new = text(&new_lines, true);
        let diff: String = unified(&old, &new)
            .lines()
            .map(|l| if l.starts_with("@@") { "@@ @@".to_string() } else { l.to_string() })
            .map(|l| l + "\n")
            .collect();
        let repo = Repo::new();
        repo.write("f.txt", &old);
        let report = repo.apply(&diff);
        prop_assert!(!report.applied, "applied an ambiguous diff: {:?}", report);
        prop_assert_eq!(repo.read("f.txt"), old);
    }
}
