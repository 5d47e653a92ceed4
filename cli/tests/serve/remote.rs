//! `pj serve` with a remote runner: the GitHub Actions runner against a fake GitHub API, and the
//! callbacks a workflow run would send, signed with the attempt's key from the payload.

use std::time::Duration;

use pj_core::ids::WebhookId;
use pj_core::signing::{CallbackSecret, signed_headers};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ALICE, Server, task_body};

const TOKEN: &str = "ghp_ServeTestTokenThatMustNotLeak0000001";

/// The payload of the first `repository_dispatch` GitHub received.
async fn dispatched(github: &MockServer) -> Value {
    for _ in 0..200 {
        let requests = github.received_requests().await.unwrap_or_default();
        if let Some(r) = requests
            .iter()
            .find(|r| r.url.path().ends_with("/dispatches"))
        {
            return r.body_json().expect("json payload");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing was dispatched to GitHub");
}

/// What the workflow's `pj-runner` would send: an event signed with the payload's key, to
/// the payload's URL.
async fn callback(client: &reqwest::Client, pj: &Value, body: Value) -> u16 {
    let key = CallbackSecret::parse(pj["WEBHOOK_SECRET"].as_str().unwrap()).expect("whsec key");
    let mut full = json!({"task_id": pj["TASK_ID"], "attempt": pj["TASK_ATTEMPT"].as_str().unwrap().parse::<u32>().unwrap()});
    full.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    let bytes = serde_json::to_vec(&full).unwrap();
    let mut req = client
        .post(pj["WEBHOOK_URL"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(bytes.clone());
    for (name, value) in signed_headers(
        &key,
        &WebhookId::generate(),
        chrono::Utc::now().timestamp(),
        &bytes,
    ) {
        req = req.header(name, value);
    }
    req.send().await.expect("callback").status().as_u16()
}

#[tokio::test]
async fn a_task_dispatched_to_github_actions_completes_with_the_runs_signed_callbacks() {
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "pj-bot"})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/example/repo/dispatches"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&github)
        .await;
    let api = github.uri();
    let server = Server::start(&[
        ("PJ_RUNNER", "github_actions"),
        ("GITHUB_API_URL", &api),
        ("GITHUB_TOKEN", TOKEN),
        ("OPENAI_API_KEY", "sk-proj-ServeTestProviderKey000000000000"),
    ])
    .await;
    let task = server
        .create(ALICE, task_body("Add a CONTRIBUTING.md"))
        .await;
    let id = task["id"].as_str().unwrap().to_owned();

    let sent = dispatched(&github).await;
    assert_eq!(sent["event_type"], "pithy-jaunt-execute");
    let pj = &sent["client_payload"]["pj"];
    assert_eq!(pj["TASK_ID"], id.as_str());
    assert_eq!(pj["TARGET_REPO"], "https://github.com/example/repo");
    assert!(pj["WEBHOOK_SECRET"].as_str().unwrap().starts_with("whsec_"));
    assert!(pj.get("GITHUB_TOKEN").is_none() && pj.get("OPENAI_API_KEY").is_none());
    server.wait_for(ALICE, &id, "queued", 5).await;

    assert_eq!(
        callback(&server.client, pj, json!({"type": "task.started"})).await,
        200
    );
    server.wait_for(ALICE, &id, "running", 5).await;
    assert_eq!(
        callback(
            &server.client,
            pj,
            json!({"type": "task.progress", "message": "editing"})
        )
        .await,
        200
    );
    let done = json!({
        "type": "task.completed",
        "branch": format!("pj/{id}"),
        "pr_url": "https://github.com/example/repo/pull/7"
    });
    assert_eq!(callback(&server.client, pj, done).await, 200);
    let task = server.wait_for(ALICE, &id, "completed", 10).await;
    assert_eq!(task["pr_url"], "https://github.com/example/repo/pull/7");

    let (_, executions) = server
        .call("GET", &format!("/tasks/{id}/executions"), Some(ALICE), None)
        .await;
    assert!(
        executions.to_string().contains("github_actions"),
        "{executions}"
    );
    let log = std::fs::read_to_string(server.data_dir.with_extension("server.log")).unwrap();
    assert!(!log.contains(TOKEN) && !log.contains(pj["WEBHOOK_SECRET"].as_str().unwrap()));
    // The server listens on 127.0.0.1 with no PJ_PUBLIC_URL: a real workflow could not call
    // back, and the log says so.
    assert!(log.contains("PJ_PUBLIC_URL is a loopback address"), "{log}");
}

#[tokio::test]
async fn pj_serve_refuses_to_start_with_a_github_token_that_does_not_work() {
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&github)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pj"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PJ_RUNNER", "github_actions")
        .env("GITHUB_API_URL", github.uri())
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Bad credentials") && stderr.contains("PJ_RUNNER=github_actions"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
}

#[tokio::test]
async fn pj_serve_dispatches_with_a_github_app_installation_token_from_a_key_file() {
    const INSTALLATION_TOKEN: &str = "ghs_ServeTestInstallationToken0000000001";
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 77, "slug": "pithy-jaunt",
            "permissions": {"contents": "write", "actions": "write", "metadata": "read"}
        })))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/ops/pj-runners/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4242, "permissions": {"contents": "write", "actions": "write"}
        })))
        .mount(&github)
        .await;
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"token": INSTALLATION_TOKEN, "expires_at": expires})),
        )
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/ops/pj-runners/dispatches"))
        .and(header(
            "authorization",
            format!("Bearer {INSTALLATION_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&github)
        .await;
    let key_file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/remote/testdata/rsa-test-key.pem"
    );
    let api = github.uri();
    let server = Server::start(&[
        ("PJ_RUNNER", "github_actions"),
        ("GITHUB_API_URL", &api),
        ("PJ_GITHUB_APP_ID", "77"),
        ("PJ_GITHUB_APP_PRIVATE_KEY_FILE", key_file),
        ("PJ_GITHUB_RUNNER_REPO", "ops/pj-runners"),
        ("PJ_PUBLIC_URL", "https://pj.example.com"),
    ])
    .await;
    let task = server
        .create(ALICE, task_body("Add a CONTRIBUTING.md"))
        .await;
    let sent = dispatched(&github).await;
    let pj = &sent["client_payload"]["pj"];
    assert_eq!(pj["TASK_ID"], task["id"]);
    assert_eq!(pj["TARGET_REPO"], "https://github.com/example/repo");
    assert_eq!(pj["WEBHOOK_URL"], "https://pj.example.com/webhooks/runner");
    let log = std::fs::read_to_string(server.data_dir.with_extension("server.log")).unwrap();
    assert!(!log.contains(INSTALLATION_TOKEN) && !log.contains("PRIVATE KEY"));
    assert!(!log.contains("loopback"), "{log}");
}
