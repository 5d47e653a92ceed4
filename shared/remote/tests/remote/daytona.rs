use std::sync::Arc;
use std::time::Duration;

use pj_core::Attempt;
use pj_core::ports::{DispatchError, Runner, StaticSecrets};
use pj_remote::daytona::{DaytonaConfig, DaytonaRunner};
use serde_json::{Value, json};
use tracing::instrument::WithSubscriber;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

const SANDBOX: &str = "7f6a1c3e-2b4d-4e8f-9a0b-1c2d3e4f5a6b";

fn runner(server: &MockServer, keep_alive: bool, secrets: Arc<StaticSecrets>) -> DaytonaRunner {
    let config = DaytonaConfig {
        api_url: format!("{}/api", server.uri()),
        snapshot: "pithy-jaunt-dev".into(),
        target: None,
        keep_alive,
        poll: Duration::from_millis(10),
    };
    DaytonaRunner::new(config, secrets).unwrap()
}

async fn snapshot(server: &MockServer, status: u16, body: Value) {
    Mock::given(method("GET"))
        .and(path("/api/snapshots/pithy-jaunt-dev"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

fn sandbox(state: &str) -> Value {
    json!({"id": SANDBOX, "name": "pj-tsk_01kaq7m3v9x2c4d6f8g0h1j2k3-1", "state": state,
           "snapshot": "pithy-jaunt-dev", "env": {}, "labels": {}})
}

/// A Daytona that makes sandboxes and runs commands in them.
async fn working_daytona(server: &MockServer, created_state: &str) {
    snapshot(
        server,
        200,
        json!({"id": "s1", "name": "pithy-jaunt-dev", "state": "active"}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox(created_state)))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/sandbox/{SANDBOX}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox("started")))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/sandbox/{SANDBOX}/toolbox-proxy-url")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"url": format!("{}/toolbox", server.uri())})),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/toolbox/{SANDBOX}/process/session")))
        .and(body_partial_json(json!({"sessionId": "pithy-jaunt"})))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/toolbox/{SANDBOX}/process/session/pithy-jaunt/exec"
        )))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"cmdId": "c1"})))
        .mount(server)
        .await;
}

async fn requests_to(server: &MockServer, m: &str, p: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

#[tokio::test]
async fn a_start_should_make_a_sandbox_from_the_snapshot_with_the_environment_and_run_the_agent() {
    let server = MockServer::start().await;
    working_daytona(&server, "creating").await;
    let logs = Logs::default();
    let r = runner(&server, false, secrets(false, None, true));
    let got = r
        .start(&job("https://github.com/o/r"))
        .with_subscriber(logs.subscriber())
        .await;
    assert_eq!(got, Ok(SANDBOX.into()));

    let create = &requests_to(&server, "POST", "/api/sandbox").await[0];
    assert_eq!(
        create
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {DAYTONA_KEY}")
    );
    let body: Value = create.body_json().unwrap();
    assert_eq!(body["snapshot"], "pithy-jaunt-dev");
    assert_eq!(body["name"], "pj-tsk_01kaq7m3v9x2c4d6f8g0h1j2k3-1");
    assert_eq!(body["env"]["TASK_ID"], task().as_str());
    assert_eq!(body["env"]["WEBHOOK_SECRET"], WEBHOOK_SECRET);
    assert_eq!(
        body["env"]["OPENAI_API_KEY"], OPENAI_KEY,
        "the sandbox needs the provider key"
    );
    assert_eq!(body["labels"]["pithy-jaunt/task"], task().as_str());
    assert_eq!(body["labels"]["pithy-jaunt/attempt"], "1");
    assert_eq!(body["autoDeleteInterval"], 0);
    assert!(body["autoStopInterval"].as_i64().unwrap() >= 10);

    let exec = &requests_to(
        &server,
        "POST",
        &format!("/toolbox/{SANDBOX}/process/session/pithy-jaunt/exec"),
    )
    .await[0];
    let exec: Value = exec.body_json().unwrap();
    assert_eq!(exec, json!({"command": "pj-runner run", "runAsync": true}));
    assert_no_credential(&logs.text());
}

#[tokio::test]
async fn a_missing_snapshot_should_fail_at_once_naming_it() {
    let server = MockServer::start().await;
    snapshot(
        &server,
        404,
        json!({"statusCode": 404, "message": "Snapshot pithy-jaunt-dev not found"}),
    )
    .await;
    let r = runner(&server, false, secrets(false, None, true));
    match r.start(&job("https://github.com/o/r")).await {
        Err(DispatchError::Permanent { message }) => {
            assert!(
                message.contains("\"pithy-jaunt-dev\"") && message.contains("infra/daytona"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        requests_to(&server, "POST", "/api/sandbox")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_snapshot_whose_image_failed_should_fail_at_once_with_the_reason() {
    let server = MockServer::start().await;
    snapshot(
        &server,
        200,
        json!({"id": "s1", "name": "pithy-jaunt-dev", "state": "error",
        "errorReason": "image ghcr.io/pithy-jaunt/pithy-jaunt-runner:latest not found"}),
    )
    .await;
    let r = runner(&server, false, secrets(false, None, true));
    match r.start(&job("https://github.com/o/r")).await {
        Err(DispatchError::Permanent { message }) => {
            assert!(message.contains("image ghcr.io"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_sandbox_that_fails_to_start_should_be_deleted_and_fail_for_good_when_its_image_is_missing()
 {
    let server = MockServer::start().await;
    snapshot(&server, 200, json!({"state": "active"})).await;
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": SANDBOX, "state": "error", "errorReason": "Failed to pull image: manifest unknown"
        })))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/api/sandbox/{SANDBOX}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox("destroying")))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    assert!(matches!(
        r.start(&job("https://github.com/o/r")).await,
        Err(DispatchError::Permanent { .. })
    ));
}

#[tokio::test]
async fn a_5xx_or_429_from_daytona_should_be_retried() {
    for (status, retry_after) in [(503, None), (429, Some(Duration::from_secs(3)))] {
        let server = MockServer::start().await;
        snapshot(&server, 200, json!({"state": "active"})).await;
        let mut answer = ResponseTemplate::new(status).set_body_json(json!({"message": "busy"}));
        if retry_after.is_some() {
            answer = answer.insert_header("retry-after", "3");
        }
        Mock::given(method("POST"))
            .and(path("/api/sandbox"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let r = runner(&server, false, secrets(false, None, true));
        match r.start(&job("https://github.com/o/r")).await {
            Err(DispatchError::Retryable {
                retry_after: got, ..
            }) => assert_eq!(got, retry_after),
            other => panic!("{status}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_sandbox_left_by_an_earlier_try_should_be_removed_before_trying_again() {
    let server = MockServer::start().await;
    snapshot(&server, 200, json!({"state": "active"})).await;
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"message": "Sandbox with name pj-… already exists"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/sandbox/pj-tsk_01kaq7m3v9x2c4d6f8g0h1j2k3-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox("destroying")))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    assert!(matches!(
        r.start(&job("https://github.com/o/r")).await,
        Err(DispatchError::Retryable { .. })
    ));
}

#[tokio::test]
async fn a_wrong_api_key_should_fail_at_once_without_showing_it() {
    let server = MockServer::start().await;
    snapshot(
        &server,
        401,
        json!({"statusCode": 401, "message": "Unauthorized"}),
    )
    .await;
    let r = runner(&server, false, secrets(false, None, true));
    match r.start(&job("https://github.com/o/r")).await {
        Err(DispatchError::Permanent { message }) => {
            assert!(message.contains("DAYTONA_API_KEY"), "{message}");
            assert_no_credential(&message);
        }
        other => panic!("{other:?}"),
    }
    let e = runner(&server, false, secrets(false, None, false))
        .start(&job("https://github.com/o/r"))
        .await;
    assert!(
        matches!(e, Err(DispatchError::Permanent { message }) if message.contains("no Daytona API key"))
    );
}

#[tokio::test]
async fn a_stop_should_delete_the_sandbox_and_one_already_gone_is_fine() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/api/sandbox/{SANDBOX}")))
        .and(header(
            "authorization",
            format!("Bearer {DAYTONA_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox("destroying")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/api/sandbox/{SANDBOX}")))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": "Sandbox not found"})),
        )
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    r.stop(&task(), Attempt(1), Some(SANDBOX)).await.unwrap();
    r.stop(&task(), Attempt(1), Some(SANDBOX)).await.unwrap();
    assert_eq!(
        requests_to(&server, "DELETE", &format!("/api/sandbox/{SANDBOX}"))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn with_keep_alive_a_stop_should_stop_the_sandbox_and_keep_it() {
    let server = MockServer::start().await;
    working_daytona(&server, "started").await;
    Mock::given(method("POST"))
        .and(path(format!("/api/sandbox/{SANDBOX}/stop")))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox("stopped")))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, true, secrets(false, None, true));
    r.start(&job("https://github.com/o/r")).await.unwrap();
    let body: Value = requests_to(&server, "POST", "/api/sandbox").await[0]
        .body_json()
        .unwrap();
    assert_eq!(body["autoDeleteInterval"], -1);
    r.stop(&task(), Attempt(1), Some(SANDBOX)).await.unwrap();
    assert!(
        requests_to(&server, "DELETE", &format!("/api/sandbox/{SANDBOX}"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_snapshot_still_building_should_be_waited_for_and_pass_the_check() {
    let server = MockServer::start().await;
    snapshot(
        &server,
        200,
        json!({"id": "s1", "name": "pithy-jaunt-dev", "state": "building"}),
    )
    .await;
    let r = runner(&server, false, secrets(false, None, true));
    match r.start(&job("https://github.com/o/r")).await {
        Err(DispatchError::Retryable {
            message,
            retry_after,
        }) => {
            assert!(message.contains("not ready"), "{message}");
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.check().await, Ok(()));
    assert!(
        requests_to(&server, "POST", "/api/sandbox")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_inactive_snapshot_should_be_activated_and_the_dispatch_retried() {
    let server = MockServer::start().await;
    let id = "5d3c7a3e-0a7b-4a55-9f5c-2f6b1f0a9e11";
    snapshot(
        &server,
        200,
        json!({"id": id, "name": "pithy-jaunt-dev", "state": "inactive"}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/snapshots/{id}/activate")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": id, "name": "pithy-jaunt-dev", "state": "pending"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    assert!(matches!(
        r.start(&job("https://github.com/o/r")).await,
        Err(DispatchError::Retryable { .. })
    ));
}

#[tokio::test]
async fn an_inactive_snapshot_the_key_cannot_activate_should_fail_saying_how() {
    let server = MockServer::start().await;
    snapshot(
        &server,
        200,
        json!({"id": "s1", "name": "pithy-jaunt-dev", "state": "inactive"}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/snapshots/s1/activate"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"statusCode": 403, "message": "Forbidden resource"})),
        )
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    match r.start(&job("https://github.com/o/r")).await {
        Err(DispatchError::Permanent { message }) => assert!(
            message.contains("\"pithy-jaunt-dev\"") && message.contains("activate it"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_create_refused_for_a_missing_snapshot_should_fail_at_once_naming_it() {
    // The snapshot went away between its check and the create.
    let server = MockServer::start().await;
    snapshot(&server, 200, json!({"id": "s1", "state": "active"})).await;
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "statusCode": 400,
            "message": "Snapshot pithy-jaunt-dev not found. Did you add it through the Daytona Dashboard?",
            "error": "Bad Request"
        })))
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    match r.start(&job("https://github.com/o/r")).await {
        Err(DispatchError::Permanent { message }) => assert!(
            message.contains("\"pithy-jaunt-dev\"") && message.contains("infra/daytona"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_create_refused_while_the_snapshot_builds_should_be_retried() {
    let server = MockServer::start().await;
    snapshot(&server, 200, json!({"id": "s1", "state": "active"})).await;
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"statusCode": 400, "message": "Snapshot pithy-jaunt-dev is pending"}),
        ))
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    assert!(matches!(
        r.start(&job("https://github.com/o/r")).await,
        Err(DispatchError::Retryable {
            retry_after: Some(_),
            ..
        })
    ));
}

#[tokio::test]
async fn the_sandboxs_own_toolbox_url_should_be_used_without_asking_for_it() {
    let server = MockServer::start().await;
    snapshot(&server, 200, json!({"id": "s1", "state": "active"})).await;
    let mut created = sandbox("started");
    created["toolboxProxyUrl"] = json!(format!("{}/proxy/toolbox", server.uri()));
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(ResponseTemplate::new(200).set_body_json(created))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/sandbox/{SANDBOX}/toolbox-proxy-url")))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/proxy/toolbox/{SANDBOX}/process/session")))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/proxy/toolbox/{SANDBOX}/process/session/pithy-jaunt/exec"
        )))
        .and(header(
            "authorization",
            format!("Bearer {DAYTONA_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"cmdId": "c1"})))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    assert_eq!(
        r.start(&job("https://github.com/o/r")).await,
        Ok(SANDBOX.into())
    );
}

#[tokio::test]
async fn an_api_echoing_credentials_should_not_carry_them_into_errors_or_logs() {
    let server = MockServer::start().await;
    snapshot(&server, 200, json!({"id": "s1", "state": "active"})).await;
    let echo = format!(
        "env.OPENAI_API_KEY {OPENAI_KEY} and env.WEBHOOK_SECRET {WEBHOOK_SECRET} rejected for key {DAYTONA_KEY}"
    );
    Mock::given(method("POST"))
        .and(path("/api/sandbox"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"statusCode": 400, "message": [echo]})),
        )
        .mount(&server)
        .await;
    let logs = Logs::default();
    let r = runner(&server, false, secrets(false, None, true));
    let got = r
        .start(&job("https://github.com/o/r"))
        .with_subscriber(logs.subscriber())
        .await;
    let Err(DispatchError::Permanent { message }) = got else {
        panic!("{got:?}")
    };
    assert!(message.contains("rejected"), "{message}");
    assert_no_credential(&message);
    assert_no_credential(&logs.text());
}

#[tokio::test]
async fn with_keep_alive_a_sandbox_already_stopped_should_be_left_as_it_is() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/api/sandbox/{SANDBOX}/stop")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"statusCode": 400, "message": "Sandbox is not in a stoppable state"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, true, secrets(false, None, true));
    r.stop(&task(), Attempt(1), Some(SANDBOX)).await.unwrap();
}

#[tokio::test]
async fn a_stop_during_a_state_change_should_fail_so_it_is_tried_again() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/api/sandbox/{SANDBOX}")))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"statusCode": 409, "message": "Sandbox state change in progress"}),
        ))
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    let e = r
        .stop(&task(), Attempt(1), Some(SANDBOX))
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("state change"), "{e:#}");
}

#[tokio::test]
async fn a_stop_without_a_recorded_sandbox_should_delete_the_attempts_by_name() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/sandbox/pj-tsk_01kaq7m3v9x2c4d6f8g0h1j2k3-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sandbox("destroying")))
        .expect(1)
        .mount(&server)
        .await;
    let r = runner(&server, false, secrets(false, None, true));
    r.stop(&task(), Attempt(1), None).await.unwrap();
}
