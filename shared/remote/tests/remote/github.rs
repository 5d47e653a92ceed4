use std::sync::Arc;
use std::time::Duration;

use pj_core::Attempt;
use pj_core::ports::{DispatchError, Runner};
use pj_remote::github::{GithubActionsRunner, GithubConfig, RepoName};
use serde_json::{Value, json};
use tracing::instrument::WithSubscriber;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

use crate::support::*;

const REPO_URL: &str = "https://github.com/octo-org/hello-world";

fn runner(
    server: &MockServer,
    runner_repo: Option<&str>,
    secrets: Arc<pj_core::ports::StaticSecrets>,
) -> GithubActionsRunner {
    let config = GithubConfig {
        api_url: server.uri(),
        runner_repo: runner_repo.map(|r| RepoName::parse(r).unwrap()),
    };
    GithubActionsRunner::new(config, secrets).unwrap()
}

fn dispatches() -> MockBuilder {
    Mock::given(method("POST")).and(path("/repos/octo-org/hello-world/dispatches"))
}

#[tokio::test]
async fn a_dispatch_should_carry_the_runner_environment_without_provider_keys_and_the_token() {
    let server = MockServer::start().await;
    dispatches()
        .and(header(
            "authorization",
            format!("Bearer {GITHUB_TOKEN}").as_str(),
        ))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let logs = Logs::default();
    let r = runner(&server, None, secrets(true, None, false));
    let got = r
        .start(&job(REPO_URL))
        .with_subscriber(logs.subscriber())
        .await;
    assert_eq!(got, Ok("octo-org/hello-world".into()));

    let sent: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(sent["event_type"], "pithy-jaunt-execute");
    let pj = sent["client_payload"]["pj"].as_object().unwrap();
    assert_eq!(sent["client_payload"].as_object().unwrap().len(), 1);
    assert_eq!(pj["TASK_ID"], task().as_str());
    assert_eq!(pj["TASK_ATTEMPT"], "1");
    assert_eq!(pj["WEBHOOK_SECRET"], WEBHOOK_SECRET);
    assert_eq!(pj["AGENT_PROMPT"], "Add a CONTRIBUTING.md");
    for withheld in ["GITHUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"] {
        assert!(!pj.contains_key(withheld), "{withheld} is in the payload");
    }
    assert!(logs.text().contains("workflow dispatched"));
    assert_no_credential(&logs.text());
}

#[tokio::test]
async fn the_runner_repository_should_win_over_the_tasks_own() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/ops/pj-runners/dispatches"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, Some("ops/pj-runners"), secrets(true, None, false));
    assert_eq!(r.start(&job(REPO_URL)).await, Ok("ops/pj-runners".into()));
}

#[tokio::test]
async fn a_repository_outside_github_without_a_runner_repository_should_fail_for_good() {
    let server = MockServer::start().await;
    let r = runner(&server, None, secrets(true, None, false));
    match r.start(&job("https://gitlab.com/o/r")).await {
        Err(DispatchError::Permanent { message }) => {
            assert!(message.contains("PJ_GITHUB_RUNNER_REPO"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_502_should_be_retried_and_the_next_try_should_start_the_run() {
    let server = MockServer::start().await;
    dispatches()
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    dispatches()
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    match r.start(&job(REPO_URL)).await {
        Err(DispatchError::Retryable {
            message,
            retry_after,
        }) => {
            assert!(message.contains("502"), "{message}");
            assert_eq!(retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.start(&job(REPO_URL)).await,
        Ok("octo-org/hello-world".into())
    );
}

#[tokio::test]
async fn a_429_should_be_retried_after_its_retry_after() {
    let server = MockServer::start().await;
    dispatches()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "42")
                .set_body_json(json!({"message": "Too many requests"})),
        )
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    match r.start(&job(REPO_URL)).await {
        Err(DispatchError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(42)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_secondary_rate_limit_should_be_retried_not_failed() {
    let server = MockServer::start().await;
    dispatches()
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
        })))
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    assert!(matches!(
        r.start(&job(REPO_URL)).await,
        Err(DispatchError::Retryable {
            retry_after: Some(_),
            ..
        })
    ));
}

#[tokio::test]
async fn a_404_should_fail_at_once_saying_what_to_fix() {
    let server = MockServer::start().await;
    dispatches()
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    match r.start(&job(REPO_URL)).await {
        Err(DispatchError::Permanent { message }) => {
            assert!(
                message.contains("404") && message.contains("Not Found"),
                "{message}"
            );
            assert!(message.contains("PJ_GITHUB_RUNNER_REPO"), "{message}");
            assert_no_credential(&message);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_422_and_a_401_should_fail_at_once() {
    for (status, needle) in [(422, "workflow"), (401, "credentials")] {
        let server = MockServer::start().await;
        dispatches()
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"message": "nope"})))
            .mount(&server)
            .await;
        let r = runner(&server, None, secrets(true, None, false));
        match r.start(&job(REPO_URL)).await {
            Err(DispatchError::Permanent { message }) => {
                assert!(message.contains(needle), "{message}")
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

async fn app_server(expires_at: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/hello-world/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4242, "app_id": 77,
            "permissions": {"contents": "write", "actions": "write", "metadata": "read"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": INSTALLATION_TOKEN,
            "expires_at": expires_at,
            "permissions": {"contents": "write", "actions": "write"}
        })))
        .mount(&server)
        .await;
    dispatches()
        .and(header(
            "authorization",
            format!("Bearer {INSTALLATION_TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

async fn token_mints(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/access_tokens"))
        .count()
}

#[tokio::test]
async fn an_installation_token_should_be_minted_once_and_reused_until_it_expires() {
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let server = app_server(&later).await;
    let logs = Logs::default();
    let r = runner(&server, None, secrets(true, Some(("77", None)), false));
    for _ in 0..3 {
        let got = r
            .start(&job(REPO_URL))
            .with_subscriber(logs.subscriber())
            .await;
        assert_eq!(got, Ok("octo-org/hello-world".into()));
    }
    assert_eq!(token_mints(&server).await, 1);

    // The App's JWT: RS256, issued by the App's id.
    let requests = server.received_requests().await.unwrap();
    let mint = requests
        .iter()
        .find(|r| r.url.path().ends_with("/access_tokens"))
        .unwrap();
    let jwt = mint
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_no_credential(&logs.text());
}

#[tokio::test]
async fn an_installation_token_about_to_expire_should_be_minted_again() {
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339();
    let server = app_server(&soon).await;
    let r = runner(&server, None, secrets(false, Some(("77", None)), false));
    r.start(&job(REPO_URL)).await.unwrap();
    r.start(&job(REPO_URL)).await.unwrap();
    assert_eq!(token_mints(&server).await, 2);
}

#[tokio::test]
async fn the_check_should_name_the_permission_the_app_lacks() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 77, "slug": "pithy-jaunt",
            "permissions": {"contents": "write", "metadata": "read"}
        })))
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(false, Some(("77", None)), false));
    let e = r.check().await.unwrap_err().to_string();
    assert!(e.contains("Actions: write"), "{e}");
}

#[tokio::test]
async fn the_check_should_name_contents_write_when_the_token_cannot_push() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/ops/pj-runners"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "full_name": "ops/pj-runners",
            "permissions": {"admin": false, "push": false, "pull": true}
        })))
        .mount(&server)
        .await;
    let r = runner(&server, Some("ops/pj-runners"), secrets(true, None, false));
    let e = r.check().await.unwrap_err().to_string();
    assert!(e.contains("Contents: write"), "{e}");
    assert_no_credential(&e);
}

#[tokio::test]
async fn the_check_should_pass_with_a_working_token_and_fail_without_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "octocat"})))
        .mount(&server)
        .await;
    assert_eq!(
        runner(&server, None, secrets(true, None, false))
            .check()
            .await,
        Ok(())
    );
    let e = runner(&server, None, secrets(false, None, false))
        .check()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("GITHUB_TOKEN") && e.contains("github_app_id"),
        "{e}"
    );
}

#[tokio::test]
async fn a_cancel_should_find_the_run_by_its_name_and_cancel_only_that_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/hello-world/actions/runs"))
        .and(query_param("event", "repository_dispatch"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 3,
            "workflow_runs": [
                {"id": 1, "name": "Pithy Jaunt", "display_title": "pithy-jaunt tsk_01kaq7m3v9x2c4d6f8g0h1j2k3 attempt 2", "status": "in_progress"},
                {"id": 2, "name": "Pithy Jaunt", "display_title": "pithy-jaunt tsk_01kaq7m3v9x2c4d6f8g0h1j2k3 attempt 1", "status": "in_progress"},
                {"id": 3, "name": "Pithy Jaunt", "display_title": "pithy-jaunt tsk_01kaq7m3v9x2c4d6f8g0h1j2k3 attempt 1", "status": "completed"}
            ]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo-org/hello-world/actions/runs/2/cancel"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    r.stop(&task(), Attempt(1), Some("octo-org/hello-world"))
        .await
        .unwrap();
    let cancels = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 1);
}

#[tokio::test]
async fn a_cancel_without_a_run_should_do_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/hello-world/actions/runs"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 0, "workflow_runs": []})),
        )
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    r.stop(&task(), Attempt(1), Some("octo-org/hello-world"))
        .await
        .unwrap();
    let posts = server.received_requests().await.unwrap();
    assert!(posts.iter().all(|r| r.method.as_str() == "GET"));
}

#[test]
fn repositories_should_parse_from_names_and_github_urls_only() {
    assert_eq!(RepoName::parse("o/r").unwrap().as_str(), "o/r");
    assert!(RepoName::parse("o").is_err());
    assert!(RepoName::parse("o/r/x").is_err());
    assert!(RepoName::parse("../r").is_err());
    assert_eq!(
        RepoName::from_github_url("https://github.com/o/r.git")
            .unwrap()
            .as_str(),
        "o/r"
    );
    assert!(RepoName::from_github_url("https://gitlab.com/o/r").is_none());
}

/// A secret source that cannot be read (Secrets Manager unreachable).
struct Unreadable;

#[async_trait::async_trait]
impl pj_core::ports::SecretSource for Unreadable {
    async fn secrets(&self) -> anyhow::Result<Arc<pj_core::ports::Secrets>> {
        anyhow::bail!("the secret service did not answer")
    }
}

#[tokio::test]
async fn secrets_that_cannot_be_read_should_be_retried_not_failed() {
    let server = MockServer::start().await;
    let config = GithubConfig {
        api_url: server.uri(),
        runner_repo: None,
    };
    let r = GithubActionsRunner::new(config, Arc::new(Unreadable)).unwrap();
    assert!(matches!(
        r.start(&job(REPO_URL)).await,
        Err(DispatchError::Retryable { .. })
    ));
}

#[tokio::test]
async fn an_exhausted_rate_limit_should_be_retried_when_it_resets() {
    let server = MockServer::start().await;
    let reset = chrono::Utc::now().timestamp() + 120;
    dispatches()
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(
                    json!({"message": "API rate limit exceeded for installation ID 4242."}),
                ),
        )
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    match r.start(&job(REPO_URL)).await {
        Err(DispatchError::Retryable {
            message,
            retry_after: Some(wait),
        }) => {
            assert!(
                (Duration::from_secs(110)..=Duration::from_secs(120)).contains(&wait),
                "{wait:?}"
            );
            assert!(message.contains("rate limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_retry_after_given_as_a_date_should_be_honoured() {
    let server = MockServer::start().await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(90);
    dispatches()
        .respond_with(ResponseTemplate::new(503).insert_header(
            "retry-after",
            at.to_rfc2822().replace("+0000", "GMT").as_str(),
        ))
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    match r.start(&job(REPO_URL)).await {
        Err(DispatchError::Retryable {
            retry_after: Some(wait),
            ..
        }) => assert!(
            (Duration::from_secs(80)..=Duration::from_secs(90)).contains(&wait),
            "{wait:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatches_should_mint_the_installation_token_once() {
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let server = app_server(&later).await;
    let r = Arc::new(runner(
        &server,
        None,
        secrets(false, Some(("77", None)), false),
    ));
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { r.start(&job(REPO_URL)).await })
        })
        .collect();
    for start in starts {
        assert_eq!(start.await.unwrap(), Ok("octo-org/hello-world".into()));
    }
    assert_eq!(token_mints(&server).await, 1);
}

#[tokio::test]
async fn the_check_should_name_the_permission_the_installation_lacks() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 77, "slug": "pithy-jaunt",
            "permissions": {"contents": "write", "actions": "write", "metadata": "read"}
        })))
        .mount(&server)
        .await;
    // The installation has not accepted the App's newer Contents: write yet.
    Mock::given(method("GET"))
        .and(path("/app/installations/4242"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4242, "app_id": 77,
            "permissions": {"contents": "read", "actions": "write", "metadata": "read"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(
        &server,
        None,
        secrets(false, Some(("77", Some("4242"))), false),
    );
    let e = r.check().await.unwrap_err();
    let DispatchError::Permanent { message } = e else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("Contents: write") && message.contains("4242"),
        "{message}"
    );
    assert_no_credential(&message);
}

#[tokio::test]
async fn the_check_should_pass_an_app_with_its_permissions_on_the_runner_repository() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 77, "permissions": {"contents": "write", "actions": "write"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/ops/pj-runners/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4242, "permissions": {"contents": "write", "actions": "write"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(
        &server,
        Some("ops/pj-runners"),
        secrets(false, Some(("77", None)), false),
    );
    assert_eq!(r.check().await, Ok(()));
}

#[tokio::test]
async fn a_cancel_without_a_recorded_repository_should_look_in_the_runner_repository() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/ops/pj-runners/actions/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1,
            "workflow_runs": [
                {"id": 9, "display_title": "pithy-jaunt tsk_01kaq7m3v9x2c4d6f8g0h1j2k3 attempt 1", "status": "queued"}
            ]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/ops/pj-runners/actions/runs/9/cancel"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, Some("ops/pj-runners"), secrets(true, None, false));
    r.stop(&task(), Attempt(1), None).await.unwrap();
}

#[tokio::test]
async fn a_task_on_the_apis_own_host_should_dispatch_to_its_repository() {
    // A GitHub Enterprise server: repositories live on the API's host.
    let server = MockServer::start().await;
    dispatches()
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(true, None, false));
    assert_eq!(
        r.start(&job("https://127.0.0.1/octo-org/hello-world.git"))
            .await,
        Ok("octo-org/hello-world".into())
    );
}

#[tokio::test]
async fn an_api_echoing_credentials_should_not_carry_them_into_errors_or_logs() {
    // Whatever GitHub's message quotes (the token it was given, the payload's secret), the
    // error and the log lines are clean.
    let server = MockServer::start().await;
    let echo = format!(
        "Invalid request. token {GITHUB_TOKEN} cannot send {WEBHOOK_SECRET} nor {INSTALLATION_TOKEN}"
    );
    dispatches()
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": echo})))
        .mount(&server)
        .await;
    let logs = Logs::default();
    let r = runner(&server, None, secrets(true, None, false));
    let got = r
        .start(&job(REPO_URL))
        .with_subscriber(logs.subscriber())
        .await;
    let Err(DispatchError::Permanent { message }) = got else {
        panic!("{got:?}")
    };
    assert!(message.contains("Invalid request"), "{message}");
    assert_no_credential(&message);
    assert_no_credential(&logs.text());

    // The App's JWT, minted with the private key, is not echoed either.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(|req: &wiremock::Request| {
            let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": format!("Bad credentials: {auth}")}))
        })
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(false, Some(("77", None)), false));
    let message = r.check().await.unwrap_err().to_string();
    let jwt = server.received_requests().await.unwrap()[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    assert!(message.contains("Bad credentials"), "{message}");
    assert!(!message.contains(&jwt), "{message}");
}

#[tokio::test]
async fn a_private_key_pasted_on_one_line_should_still_sign() {
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let server = app_server(&later).await;
    let mut s = pj_core::ports::Secrets::default();
    s.extra.insert(
        "github_app_id".into(),
        secrecy::SecretString::from("77".to_owned()),
    );
    s.extra.insert(
        "github_app_private_key".into(),
        secrecy::SecretString::from(private_key().trim().replace('\n', "\\n")),
    );
    let secrets = Arc::new(pj_core::ports::StaticSecrets(Arc::new(s)));
    let r = runner(&server, None, secrets);
    assert_eq!(
        r.start(&job(REPO_URL)).await,
        Ok("octo-org/hello-world".into())
    );
}

#[tokio::test]
async fn an_app_installed_again_should_be_found_under_its_new_installation() {
    let server = MockServer::start().await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/hello-world/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4242})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/hello-world/installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 5151})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/5151/access_tokens"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"token": INSTALLATION_TOKEN, "expires_at": later})),
        )
        .mount(&server)
        .await;
    dispatches()
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let r = runner(&server, None, secrets(false, Some(("77", None)), false));
    match r.start(&job(REPO_URL)).await {
        Err(DispatchError::Permanent { message }) => {
            assert!(message.contains("install the App"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.start(&job(REPO_URL)).await,
        Ok("octo-org/hello-world".into())
    );
}
