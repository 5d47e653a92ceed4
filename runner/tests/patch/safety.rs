//! Paths and files that are never patched.

use pj_runner::patch::ApplyOptions;

use crate::support::{Repo, failures};

fn refused(repo: &Repo, reply: &str, needle: &str) {
    let before = repo.snapshot();
    let report = repo.apply(reply);
    assert!(!report.applied, "should refuse: {reply}");
    assert!(failures(&report).contains(needle), "{}", failures(&report));
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_path_is_absolute_should_refuse() {
    let repo = Repo::new();
    refused(
        &repo,
        "--- /dev/null\n+++ /tmp/evil.txt\n@@ -0,0 +1 @@\n+x\n",
        "absolute",
    );
}

#[test]
fn when_path_climbs_out_with_dotdot_should_refuse() {
    let repo = Repo::new();
    refused(
        &repo,
        "--- /dev/null\n+++ b/../evil.txt\n@@ -0,0 +1 @@\n+x\n",
        "`..`",
    );
}

#[test]
fn when_path_is_inside_dot_git_should_refuse() {
    let repo = Repo::new();
    repo.write(".git/config", "[core]\n");
    refused(
        &repo,
        "--- a/.git/config\n+++ b/.git/config\n@@ -1 +1,2 @@\n [core]\n+\thooksPath = x\n",
        ".git/",
    );
}

#[cfg(unix)]
#[test]
fn when_path_goes_through_a_symlink_should_refuse() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.txt"), "a\n").expect("write");
    let repo = Repo::new();
    std::os::unix::fs::symlink(outside.path(), repo.at("linked")).expect("symlink");
    refused(
        &repo,
        "--- a/linked/secret.txt\n+++ b/linked/secret.txt\n@@ -1 +1 @@\n-a\n+b\n",
        "symbolic link linked",
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).expect("read"),
        "a\n"
    );
}

#[cfg(unix)]
#[test]
fn when_target_file_is_a_symlink_should_refuse() {
    let repo = Repo::new();
    repo.write("real.txt", "a\n");
    std::os::unix::fs::symlink(repo.at("real.txt"), repo.at("link.txt")).expect("symlink");
    refused(
        &repo,
        "--- a/link.txt\n+++ b/link.txt\n@@ -1 +1 @@\n-a\n+b\n",
        "symbolic link link.txt",
    );
}

#[test]
fn when_path_is_a_workflow_should_refuse_unless_allowed() {
    let repo = Repo::new();
    let reply = "--- /dev/null\n+++ b/.github/workflows/ci.yml\n@@ -0,0 +1 @@\n+on: push\n";
    refused(&repo, reply, "workflow");
    let options = ApplyOptions {
        allow_workflows: true,
        ..ApplyOptions::default()
    };
    let report = repo.apply_with(reply, &options);
    assert!(report.applied, "{}", failures(&report));
    assert_eq!(repo.read(".github/workflows/ci.yml"), "on: push\n");
}

#[test]
fn when_patch_is_binary_should_refuse() {
    let repo = Repo::new();
    repo.write("logo.png", [0u8, 1, 2]);
    refused(
        &repo,
        "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nGIT binary patch\nliteral 3\nKcmZQzWMT\n\n",
        "binary patch",
    );
    refused(
        &repo,
        "Binary files a/logo.png and b/logo.png differ\n",
        "binary patch",
    );
}

#[test]
fn when_file_is_binary_should_refuse() {
    let repo = Repo::new();
    repo.write("data.bin", b"a\0b\n");
    refused(
        &repo,
        "data.bin\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
        "binary file",
    );
}

#[test]
fn when_file_is_over_the_size_limit_should_refuse() {
    let repo = Repo::new();
    repo.write("big.txt", "line\n".repeat(100));
    let options = ApplyOptions {
        max_file_bytes: 100,
        ..ApplyOptions::default()
    };
    let report = repo.apply_with(
        "--- a/big.txt\n+++ b/big.txt\n@@ -1 +1 @@\n-line\n+LINE\n",
        &options,
    );
    assert!(!report.applied);
    assert!(
        failures(&report).contains("over the limit of 100 bytes"),
        "{}",
        failures(&report)
    );
}

#[test]
fn when_result_is_over_the_size_limit_should_refuse() {
    let repo = Repo::new();
    repo.write("small.txt", "a\n");
    let options = ApplyOptions {
        max_file_bytes: 10,
        ..ApplyOptions::default()
    };
    let report = repo.apply_with(
        "--- a/small.txt\n+++ b/small.txt\n@@ -1 +1,2 @@\n a\n+0123456789abcdef\n",
        &options,
    );
    assert!(!report.applied);
    assert!(
        failures(&report).contains("would be"),
        "{}",
        failures(&report)
    );
    assert_eq!(repo.read("small.txt"), "a\n");
}
