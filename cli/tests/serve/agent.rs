//! `pj serve` with the real agent: `pj-runner run` as the local runner, a bare git repository as
//! the remote (not GitHub, so the branch is reported without a pull request) and wiremock as an
//! OpenAI-compatible model server.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ALICE, BOB, Server};

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `pj-runner` binary of this build, built first when a narrower `cargo test` left it out.
pub fn pj_runner() -> PathBuf {
    let pj = PathBuf::from(env!("CARGO_BIN_EXE_pj"));
    let runner = pj.with_file_name("pj-runner");
    if !runner.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "pj-runner", "--bin", "pj-runner"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building pj-runner");
    }
    runner
}

#[tokio::test]
async fn the_real_agent_edits_a_local_repository_and_pushes_its_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(
        tmp.path(),
        &["init", "--bare", "-b", "main", origin.to_str().unwrap()],
    );
    git(&work, &["init", "-b", "main"]);
    std::fs::write(work.join("README.md"), "# Demo\n\nA small project.\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-m", "first"]);
    git(&work, &["push", origin.to_str().unwrap(), "main"]);

    let model = MockServer::start().await;
    let reply = "README.md\n<<<<<<< SEARCH\nA small project.\n=======\nA small project.\n\n## Contributing\n\nRun `cargo test` before you send a change.\n>>>>>>> REPLACE\n";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4.1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960}
        })))
        .mount(&model)
        .await;

    let runner_cmd = format!("{} run", pj_runner().display());
    let model_url = format!("{}/v1", model.uri());
    let server = Server::start(&[
        ("PJ_RUNNER_CMD", &runner_cmd),
        ("OPENAI_BASE_URL", &model_url),
        ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij"),
        ("PJ_DEFAULT_MODEL", "openai/gpt-4.1"),
        // Two users sign in with tokens, so local repositories must be allowed explicitly.
        ("PJ_ALLOW_LOCAL_REPOS", "true"),
    ])
    .await;
    let repo_url = format!("file://{}", origin.display());
    let task = server
        .create(
            ALICE,
            json!({"repo_url": repo_url, "prompt": "Add a Contributing section to the README"}),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let done = server.wait_for(ALICE, &id, "completed", 120).await;
    let branch = done["branch"].as_str().unwrap().to_owned();
    assert_eq!(branch, format!("pj/{id}"));
    assert_eq!(
        done["pr_url"],
        serde_json::Value::Null,
        "no pull request for a remote that is not GitHub"
    );
    assert_eq!(done["usage"]["input_tokens"], 900);
    let readme = git(
        tmp.path(),
        &[
            "--git-dir",
            origin.to_str().unwrap(),
            "show",
            &format!("{branch}:README.md"),
        ],
    );
    assert!(readme.contains("## Contributing"), "{readme}");
    let lines = server.logs(ALICE, &id).await;
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|l| !l["text"]
            .as_str()
            .unwrap()
            .contains("sk-test-0123456789abcdefghij")),
        "the model key never reaches the logs"
    );

    // The model's reply is kept as the attempt's artifact, for its owner only.
    let (status, listed) = server
        .call("GET", &format!("/tasks/{id}/artifacts"), Some(ALICE), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["artifacts"],
        json!([{"name": "a1-reply-1.md", "content_type": "text/markdown; charset=utf-8",
                "size": reply.len(), "attempt": 1}])
    );
    let download = server
        .client
        .get(server.url(&format!("/tasks/{id}/artifacts/a1-reply-1.md")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert_eq!(download.text().await.unwrap(), reply);
    for path in [
        format!("/tasks/{id}/artifacts"),
        format!("/tasks/{id}/artifacts/a1-reply-1.md"),
    ] {
        let (status, body) = server.call("GET", &path, Some(BOB), None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, body) = server
        .call(
            "GET",
            &format!("/tasks/{id}/artifacts/a1-reply-9.md"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}
