//! Schemathesis (PyPI) against a running `pj serve`, driven by the server's own
//! `GET /openapi.json`: requests generated from the description, and every answer checked
//! against it. It must find no server error and no answer that breaks the description.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{ALICE, Server, task_body};

/// The venv's `schemathesis`, which `scripts/python-env` installs from scripts/requirements.txt.
fn schemathesis() -> std::path::PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join(".venv/bin/schemathesis");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/python-env (it installs scripts/requirements.txt into .venv/), then the tests again",
        bin.display()
    );
    bin
}

#[tokio::test]
async fn schemathesis_should_find_no_server_error_and_no_answer_outside_the_description() {
    let server = Server::start(&[
        // Thousands of generated requests: the rate limit is not what is under test here.
        ("PJ_RATE_LIMIT_BURST", "1000000"),
        ("PJ_RATE_LIMIT_PER_MINUTE", "1000000"),
    ])
    .await;
    // A real task with logs and executions, so the generated requests about a task reach one
    // and not only `404`.
    let task = server
        .create(ALICE, task_body("Add a README fake:logs=3"))
        .await;
    let id = task["id"].as_str().expect("an id").to_owned();
    server.wait_for(ALICE, &id, "completed", 30).await;
    let review = server
        .create(
            ALICE,
            json!({"repo_url": "https://github.com/example/repo", "prompt": "Tidy up", "requires_review": true}),
        )
        .await;
    assert_eq!(review["status"], "pending_review");

    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!("[parameters]\n\"path.id\" = \"{id}\"\n\n[generation]\nmax-examples = 25\n"),
    )
    .expect("the config is written");
    let output = Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", server.base)])
        .args(["--header", &format!("Authorization: Bearer {ALICE}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        // The stream of a task stays open until the task ends: the generated requests would
        // only time out. `shared/http/tests/http/openapi.rs` checks its events instead.
        .args(["--exclude-path-regex", "/logs/stream$"])
        // One worker: hypothesis's lambda descriptions are not thread-safe (a worker once failed
        // with "AST constructor recursion depth mismatch").
        .args(["--request-timeout", "20", "--workers", "1", "--no-color"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .current_dir(dir.path())
        .output()
        .expect("schemathesis runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{printed}"
    );
    assert!(
        printed.contains("passed") && !printed.contains(" 0 generated"),
        "schemathesis tested nothing:\n{printed}"
    );
}
