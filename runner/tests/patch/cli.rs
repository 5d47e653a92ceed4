//! `pj-runner apply-patch`: exit codes and the one JSON report on stdout.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::Repo;

const DIFF: &str = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n";

fn run(args: &[&str], stdin: Option<&str>) -> (i32, serde_json::Value, Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pj-runner"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes()).expect("stdin");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8(output.stdout.clone()).expect("utf8");
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
    let json = serde_json::from_str(&stdout).expect("json");
    (output.status.code().unwrap_or(-1), json, output)
}

fn repo_with_patch(patch: &str) -> (Repo, String) {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n");
    let patch_file = repo.at("reply.md");
    std::fs::write(&patch_file, patch).expect("write");
    let path = patch_file.to_string_lossy().into_owned();
    (repo, path)
}

#[test]
fn when_patch_applies_should_exit_0_and_print_the_report() {
    let (repo, patch) = repo_with_patch(DIFF);
    let dir = repo.path().to_string_lossy().into_owned();
    let (code, json, _) = run(&["apply-patch", "--repo", &dir, "--patch", &patch], None);
    assert_eq!(code, 0);
    assert_eq!(json["applied"], true);
    assert_eq!(json["files"], serde_json::json!(["a.txt"]));
    assert_eq!(json["hunks"][0]["status"], "exact");
    assert_eq!(repo.read("a.txt"), "one\n2\n");
}

#[test]
fn when_checking_should_exit_0_and_write_nothing() {
    let (repo, patch) = repo_with_patch(DIFF);
    let dir = repo.path().to_string_lossy().into_owned();
    let (code, json, _) = run(
        &["apply-patch", "--repo", &dir, "--patch", &patch, "--check"],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(json["applied"], true);
    assert_eq!(repo.read("a.txt"), "one\ntwo\n");
}

#[test]
fn when_patch_is_rejected_should_exit_1_and_leave_the_tree() {
    let (repo, patch) = repo_with_patch(&DIFF.replace("-two", "-three"));
    let dir = repo.path().to_string_lossy().into_owned();
    let before = repo.snapshot();
    let (code, json, output) = run(&["apply-patch", "--repo", &dir, "--patch", &patch], None);
    assert_eq!(code, 1);
    assert_eq!(json["applied"], false);
    assert_eq!(json["hunks"][0]["status"], "failed");
    assert!(
        json["hunks"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not found"))
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("not applied"));
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn when_reply_has_no_edit_should_exit_1_with_an_error() {
    let (repo, patch) = repo_with_patch("Nothing to change here.\n");
    let dir = repo.path().to_string_lossy().into_owned();
    let (code, json, _) = run(&["apply-patch", "--repo", &dir, "--patch", &patch], None);
    assert_eq!(code, 1);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("no edit"))
    );
}

#[test]
fn when_patch_comes_on_stdin_should_apply_it() {
    let repo = Repo::new();
    repo.write("a.txt", "one\ntwo\n");
    let dir = repo.path().to_string_lossy().into_owned();
    let (code, json, _) = run(&["apply-patch", "--repo", &dir, "--patch", "-"], Some(DIFF));
    assert_eq!(code, 0, "{json}");
    assert_eq!(repo.read("a.txt"), "one\n2\n");
}

#[test]
fn when_workflow_is_allowed_by_flag_should_apply() {
    let reply = "--- /dev/null\n+++ b/.github/workflows/ci.yml\n@@ -0,0 +1 @@\n+on: push\n";
    let (repo, patch) = repo_with_patch(reply);
    let dir = repo.path().to_string_lossy().into_owned();
    let (code, _, _) = run(&["apply-patch", "--repo", &dir, "--patch", &patch], None);
    assert_eq!(code, 1);
    let (code, _, _) = run(
        &[
            "apply-patch",
            "--repo",
            &dir,
            "--patch",
            &patch,
            "--allow-workflows",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(repo.read(".github/workflows/ci.yml"), "on: push\n");
}

#[test]
fn when_patch_file_is_missing_should_exit_2_with_an_error() {
    let repo = Repo::new();
    let dir = repo.path().to_string_lossy().into_owned();
    let (code, json, _) = run(
        &[
            "apply-patch",
            "--repo",
            &dir,
            "--patch",
            "/nonexistent/reply.md",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert_eq!(json["applied"], false);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot read the patch"))
    );
}

#[test]
fn when_repository_is_missing_should_exit_2_with_an_error() {
    let (_repo, patch) = repo_with_patch(DIFF);
    let (code, json, _) = run(
        &[
            "apply-patch",
            "--repo",
            "/nonexistent/repo",
            "--patch",
            &patch,
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("repository"))
    );
}

#[test]
fn when_arguments_are_wrong_should_exit_2_with_an_error() {
    let (code, json, output) = run(&["apply-patch", "--repo", "."], None);
    assert_eq!(code, 2);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("--patch")),
        "{json}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("Usage"));
}

#[test]
fn when_subcommand_is_unknown_should_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_pj-runner"))
        .arg("fly")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}
