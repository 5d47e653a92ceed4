//! The Secrets Manager source: one read per TTL, shared by concurrent callers, the cached
//! value served through a failed refresh, and no value in any error.

use std::sync::Arc;

use chrono::{DateTime, Duration};
use pj_aws::provision::put_secret;
use pj_aws::{AwsContext, DEFAULT_TTL, service};
use pj_core::ports::SecretSource;
use pj_core::time::ManualClock;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::{aws, unique_name};

fn reads(aws: &AwsContext) -> u64 {
    aws.metrics()
        .snapshot()
        .operation(service::SECRETS_MANAGER, "GetSecretValue")
        .calls
}

/// A clock the test moves: the cache's ages follow it, not real time.
fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::from_timestamp(1_800_000_000, 0).expect("a time"),
    ))
}

async fn secret(aws: &AwsContext, token: &str) -> String {
    let name = unique_name("secret");
    put_secret(
        aws.secrets_manager(),
        &name,
        &json!({
            "webhook_master_secret": "whsec_c29tZSBtYXN0ZXIgc2VjcmV0IGJ5dGVzIGhlcmU=",
            "github_token": token,
            "anthropic_api_key": "sk-ant-test",
            "github_app_id": "12345",
            "daytona_api_key": "dtn_test",
        }),
    )
    .await
    .unwrap();
    name
}

#[tokio::test]
async fn secrets_should_be_read_once_then_refreshed_after_the_ttl() {
    let aws = aws().await;
    let name = secret(&aws, "ghp_first").await;
    let clock = manual_clock();
    // The production TTL, on a clock the test moves.
    let source = aws.secrets_source(&name).with_clock(clock.clone());
    let ttl = Duration::from_std(DEFAULT_TTL).unwrap();

    let first = futures::future::join_all((0..5).map(|_| source.secrets())).await;
    for s in &first {
        let s = s.as_ref().unwrap();
        assert_eq!(
            s.github_token.as_ref().unwrap().expose_secret(),
            "ghp_first"
        );
        assert!(s.webhook_master.is_some());
        assert_eq!(
            s.anthropic_api_key.as_ref().unwrap().expose_secret(),
            "sk-ant-test"
        );
        assert!(s.openai_api_key.is_none());
        assert_eq!(
            s.extra.keys().map(String::as_str).collect::<Vec<_>>(),
            ["daytona_api_key", "github_app_id"]
        );
    }
    assert_eq!(reads(&aws), 1, "concurrent callers should share one read");

    put_secret(
        aws.secrets_manager(),
        &name,
        &json!({"github_token": "ghp_second"}),
    )
    .await
    .unwrap();
    let cached = source.secrets().await.unwrap();
    assert_eq!(
        cached.github_token.as_ref().unwrap().expose_secret(),
        "ghp_first",
        "within the TTL the cached value is served"
    );
    assert_eq!(reads(&aws), 1);
    clock.advance(ttl - Duration::seconds(1));
    source.secrets().await.unwrap();
    assert_eq!(reads(&aws), 1, "a second before the TTL it is still cached");

    clock.advance(Duration::seconds(1));
    let fresh = source.secrets().await.unwrap();
    assert_eq!(
        fresh.github_token.as_ref().unwrap().expose_secret(),
        "ghp_second"
    );
    assert_eq!(
        reads(&aws),
        2,
        "after the TTL the secret is read again, once"
    );
    source.secrets().await.unwrap();
    assert_eq!(reads(&aws), 2);
}

#[tokio::test]
async fn when_a_refresh_fails_the_cached_value_should_be_served_until_the_hard_limit() {
    let aws = aws().await;
    let name = secret(&aws, "ghp_cached").await;
    let clock = manual_clock();
    let source = aws
        .secrets_source(&name)
        .with_clock(clock.clone())
        .with_ttl(std::time::Duration::from_secs(60))
        .with_max_stale(std::time::Duration::from_secs(600));
    source.secrets().await.unwrap();
    aws.secrets_manager()
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();

    clock.advance(Duration::seconds(60));
    let served = source.secrets().await.expect("the cached value is served");
    assert_eq!(
        served.github_token.as_ref().unwrap().expose_secret(),
        "ghp_cached"
    );
    let tried = reads(&aws);
    assert_eq!(tried, 2, "one failed refresh");
    source.secrets().await.unwrap();
    assert_eq!(
        reads(&aws),
        tried,
        "right after a failure no new read is tried"
    );
    clock.advance(Duration::seconds(10));
    source.secrets().await.expect("still within the hard limit");
    assert_eq!(
        reads(&aws),
        tried + 1,
        "after the quiet time a read is tried"
    );

    clock.advance(Duration::seconds(600 - 70));
    let err = source.secrets().await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&name),
        "the error should name the secret: {text}"
    );
    assert!(!text.contains("ghp_cached"));
}

#[tokio::test]
async fn a_bad_secret_should_fail_naming_the_field_and_never_the_value() {
    let aws = aws().await;
    let name = unique_name("secret");
    put_secret(
        aws.secrets_manager(),
        &name,
        &json!({"webhook_master_secret": "TOOSHORTVALUE"}),
    )
    .await
    .unwrap();
    let err = aws.secrets_source(&name).secrets().await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("webhook_master_secret"), "{text}");
    assert!(!text.contains("TOOSHORTVALUE"), "the value leaked: {text}");

    let missing = aws
        .secrets_source(unique_name("missing"))
        .secrets()
        .await
        .unwrap_err();
    assert!(format!("{missing:#}").contains("GetSecretValue"));
}
