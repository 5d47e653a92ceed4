//! `pj serve` with the real agent when its provider fails and its tasks cost money: the fallback
//! answers, the metadata reaches the executions and `/metrics`, the runner asks no round past
//! `PJ_MAX_COST_USD` and the server starts no new attempt.

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::agent::{git, pj_runner};
use crate::support::{ALICE, Server};

#[tokio::test]
async fn the_real_agent_falls_back_to_anthropic_reports_what_it_did_and_a_task_past_the_cap_is_not_retried()
 {
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
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({
            "error": {"message": "The server is overloaded or not ready yet.", "type": "server_error"}
        })))
        .mount(&model)
        .await;
    let reply = "README.md\n<<<<<<< SEARCH\nA small project.\n=======\nA small project.\n\n## Contributing\n\nRun the tests first.\n>>>>>>> REPLACE\n";
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 2000, "output_tokens": 200}
        })))
        .mount(&model)
        .await;

    let runner_cmd = format!("{} run", pj_runner().display());
    let openai_url = format!("{}/v1", model.uri());
    let server = Server::start(&[
        ("PJ_RUNNER_CMD", &runner_cmd),
        ("OPENAI_BASE_URL", &openai_url),
        ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij"),
        ("ANTHROPIC_BASE_URL", &model.uri()),
        ("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdefghij"),
        ("PJ_DEFAULT_MODEL", "openai/gpt-4.1"),
        ("PJ_LLM_MAX_ATTEMPTS", "1"),
        // One claude-sonnet-4-5 reply of 2,000 tokens in and 200 out costs $0.009.
        ("PJ_MAX_COST_USD", "0.005"),
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

    // The first call was under the cap; the work it paid for is kept.
    assert_eq!(done["usage"]["model"], "claude-sonnet-4-5");
    assert_eq!(done["usage"]["cost_usd"], 0.009);
    let readme = git(
        tmp.path(),
        &[
            "--git-dir",
            origin.to_str().unwrap(),
            "show",
            &format!("pj/{id}:README.md"),
        ],
    );
    assert!(readme.contains("## Contributing"), "{readme}");

    let (status, executions) = server
        .call("GET", &format!("/tasks/{id}/executions"), Some(ALICE), None)
        .await;
    assert_eq!(status, 200, "{executions}");
    let m = &executions["executions"][0]["metadata"];
    assert_eq!(m["rounds"], 1, "{executions}");
    assert_eq!(m["first_round_applied"], true);
    assert_eq!(m["fallback"], "anthropic/claude-sonnet-4-5");
    assert_eq!(m["files_changed"], 1);
    assert_eq!(m["lines_added"], 4);
    assert_eq!(m["hunks"][0]["step"], "search_exact");

    let lines = server.logs(ALICE, &id).await;
    let texts: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("instead for the rest of this attempt"))
            .count(),
        1,
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains(">>>>>>> REPLACE")),
        "the reply is not in the stored log"
    );

    let (_, metrics) = server.call("GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"pj_patch_first_round_total{kind="code_change",applied="true"} 1"#),
        "{metrics}"
    );

    // A repository the reply does not fit: the first round costs $0.009, past the cap, so the
    // runner asks no second round, and the server starts no new attempt.
    let other = tmp.path().join("other.git");
    let other_work = tmp.path().join("other");
    std::fs::create_dir_all(&other_work).unwrap();
    git(
        tmp.path(),
        &["init", "--bare", "-b", "main", other.to_str().unwrap()],
    );
    git(&other_work, &["init", "-b", "main"]);
    std::fs::write(other_work.join("README.md"), "# Other\n\nSomething else.\n").unwrap();
    git(&other_work, &["add", "."]);
    git(&other_work, &["commit", "-m", "first"]);
    git(&other_work, &["push", other.to_str().unwrap(), "main"]);
    let task = server
        .create(
            ALICE,
            json!({"repo_url": format!("file://{}", other.display()), "prompt": "Add a Contributing section to the README"}),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();

    let failed = server.wait_for(ALICE, &id, "failed", 120).await;

    assert_eq!(failed["error"]["code"], "budget_exceeded", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("PJ_MAX_COST_USD ($0.005)"), "{message}");
    assert_eq!(failed["usage"]["cost_usd"], 0.009);
    let (status, refused) = server
        .call("POST", &format!("/tasks/{id}/retry"), Some(ALICE), None)
        .await;
    assert_eq!(status, 409, "{refused}");
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("PJ_MAX_COST_USD ($0.005)"), "{why}");
    assert!(why.contains("$0.009"), "{why}");
    let (_, executions) = server
        .call("GET", &format!("/tasks/{id}/executions"), Some(ALICE), None)
        .await;
    assert_eq!(executions["executions"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        executions["executions"][0]["metadata"]["first_round_applied"],
        false
    );
}
