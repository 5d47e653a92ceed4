//! `log-stream`: the sample Function URL request, the JWT checked by the function itself
//! (HS256 with the shared secret, or the issuer's JWKS fetched at cold start), the stream ended
//! before the invocation's deadline.

use std::time::{Duration, Instant};

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pj_core::TaskStatus;
use pj_lambda::config::StreamAuth;
use pj_lambda::samples::{DEV_JWT_SECRET, RUNNER_TASK, SAMPLE_USER, retarget};
use pj_lambda::{Authenticator, jwks};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    TestApp, call, event, http_request, http_request_with_deadline, signed_callback,
};

const TEST_RSA_KEY: &str = include_str!("../../../http/src/testdata/rsa-test-key.pem");
const TEST_JWKS: &str = include_str!("../../../http/src/testdata/jwks.json");

fn dev_auth() -> Authenticator {
    Authenticator::default().with_jwt_secret(DEV_JWT_SECRET.as_bytes(), Some("authenticated"), None)
}

/// A dispatched task whose runner sent the sample's log lines and completed.
async fn completed_task(app: &TestApp) -> pj_core::TaskId {
    let (id, key) = app.dispatched_task().await;
    let body_of = |name: &str| {
        let e: Value = serde_json::from_str(&event(name)).unwrap();
        retarget(e["body"].as_str().unwrap(), RUNNER_TASK, &id)
    };
    let logs = app.log_ingest(&app.wiring("log-ingest"));
    let webhook = app.webhook(&app.wiring("webhook"));
    for (router, name) in [
        (&webhook, "webhook-task-started.json"),
        (&logs, "log-ingest-batch.json"),
        (&webhook, "webhook-task-completed.json"),
    ] {
        let request = signed_callback(&event(name), &body_of(name), &key);
        let answer = call(router, http_request(&request)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.text);
    }
    assert_eq!(app.task(&id).await.status, TaskStatus::Completed);
    id
}

fn events_of(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let kind = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((kind.to_owned(), serde_json::from_str(data).ok()?))
        })
        .collect()
}

#[tokio::test]
async fn the_sample_request_should_stream_the_lines_and_the_final_status() {
    let app = TestApp::new().await;
    let id = completed_task(&app).await;
    let stream = app.log_stream(&app.wiring("log-stream"), dev_auth());
    let request = retarget(&event("log-stream-request.json"), RUNNER_TASK, &id);
    let answer = call(
        &stream,
        http_request_with_deadline(&request, Duration::from_secs(900)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = events_of(&answer.text);
    let lines: Vec<u64> = events
        .iter()
        .filter(|(k, _)| k == "log")
        .map(|(_, d)| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, (0..8).collect::<Vec<_>>());
    let (last_kind, last) = events.last().unwrap();
    assert_eq!(
        (last_kind.as_str(), &last["status"]),
        ("status", &json!("completed"))
    );

    // An emulator's deadline already past (cargo lambda watch's) cuts nothing.
    let mut past = lambda_http::Context::default();
    past.deadline = 1;
    let answer = call(
        &stream,
        lambda_http::RequestExt::with_lambda_context(http_request(&request), past),
    )
    .await;
    assert!(
        answer.text.contains("\"status\":\"completed\""),
        "{}",
        answer.text
    );
    assert!(
        !answer.text.contains("reconnect with Last-Event-ID"),
        "{}",
        answer.text
    );

    // Resuming after the fifth line sends the rest only.
    let mut resumed: Value = serde_json::from_str(&request).unwrap();
    resumed["headers"]["last-event-id"] = "1-4".into();
    let answer = call(&stream, http_request(&resumed.to_string())).await;
    let seqs: Vec<u64> = events_of(&answer.text)
        .iter()
        .filter(|(k, _)| k == "log")
        .map(|(_, d)| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6, 7]);
}

#[tokio::test]
async fn when_the_token_is_missing_or_forged_should_refuse() {
    let app = TestApp::new().await;
    let stream = app.log_stream(&app.wiring("log-stream"), dev_auth());
    let mut request: Value = serde_json::from_str(&event("log-stream-request.json")).unwrap();
    request["headers"]["authorization"] = "Bearer not-a-token".into();
    let answer = call(&stream, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    request["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let answer = call(&stream, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    // Only the stream route: the users' routes are the api function's.
    let answer = call(&stream, http_request(&event("api-list-tasks.json"))).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
}

#[tokio::test]
async fn an_issuers_token_should_be_checked_with_the_keys_fetched_from_its_discovery_document() {
    let issuer = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/auth/v1/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": format!("{}/auth/v1", issuer.uri()),
            "jwks_uri": format!("{}/auth/v1/.well-known/jwks.json", issuer.uri()),
        })))
        .expect(1)
        .mount(&issuer)
        .await;
    Mock::given(method("GET"))
        .and(path("/auth/v1/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(TEST_JWKS))
        .expect(1)
        .mount(&issuer)
        .await;
    let iss = format!("{}/auth/v1", issuer.uri());
    let auth = jwks::authenticator(&StreamAuth::Issuer {
        issuer: iss.clone(),
        audiences: vec!["authenticated".into()],
    })
    .await
    .expect("the keys are fetched");

    let app = TestApp::new().await;
    let id = completed_task(&app).await;
    let stream = app.log_stream(&app.wiring("log-stream"), auth);
    let token = |claims: Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        let key = EncodingKey::from_rsa_pem(TEST_RSA_KEY.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let exp = chrono::Utc::now().timestamp() + 3600;
    let mut request: Value = serde_json::from_str(&retarget(
        &event("log-stream-request.json"),
        RUNNER_TASK,
        &id,
    ))
    .unwrap();
    let good = token(json!({"sub": SAMPLE_USER, "iss": iss, "aud": "authenticated", "exp": exp}));
    request["headers"]["authorization"] = format!("Bearer {good}").into();
    let answer = call(&stream, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let other_issuer = token(
        json!({"sub": SAMPLE_USER, "iss": "https://evil.example", "aud": "authenticated", "exp": exp}),
    );
    request["headers"]["authorization"] = format!("Bearer {other_issuer}").into();
    let answer = call(&stream, http_request(&request.to_string())).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
}

#[tokio::test]
async fn when_the_issuer_cannot_be_read_the_cold_start_should_fail_naming_the_variable() {
    let issuer = MockServer::start().await;
    let Err(err) = jwks::authenticator(&StreamAuth::Issuer {
        issuer: issuer.uri(),
        audiences: vec![],
    })
    .await
    else {
        panic!("an issuer without a discovery document was accepted");
    };
    assert!(format!("{err:#}").starts_with("PJ_JWT_ISSUER"), "{err:#}");
}

#[tokio::test]
async fn a_stream_should_end_before_the_invocations_deadline() {
    let app = TestApp::new().await;
    let (id, _) = app.dispatched_task().await;
    let stream = app.log_stream(&app.wiring("log-stream"), dev_auth());
    let request = retarget(&event("log-stream-request.json"), RUNNER_TASK, &id);
    let started = Instant::now();
    // The task is not terminal: only the deadline ends this stream.
    let answer = call(
        &stream,
        http_request_with_deadline(&request, Duration::from_secs(3)),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(took < Duration::from_secs(3), "ended after {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "ended early, after {took:?}"
    );
    assert!(answer.text.contains("event: status"), "{}", answer.text);
    assert!(
        answer.text.ends_with("reconnect with Last-Event-ID\n\n"),
        "{}",
        answer.text
    );
}
