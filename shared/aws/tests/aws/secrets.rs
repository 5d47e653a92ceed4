//! The Secrets Manager source: one read per TTL, shared by concurrent callers, the cached
//! value served through a failed refresh, and no value in any error.

use std::time::Duration;

use pj_aws::provision::put_secret;
use pj_aws::{AwsContext, service};
use pj_core::ports::SecretSource;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::{aws, unique_name};

fn reads(aws: &AwsContext) -> u64 {
    aws.metrics()
        .snapshot()
        .operation(service::SECRETS_MANAGER, "GetSecretValue")
        .calls
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
    let source = aws
        .secrets_source(&name)
        .with_ttl(Duration::from_millis(800));

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

    tokio::time::sleep(Duration::from_millis(900)).await;
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
    let source = aws
        .secrets_source(&name)
        .with_ttl(Duration::from_millis(200))
        .with_max_stale(Duration::from_millis(1_500));
    source.secrets().await.unwrap();
    aws.secrets_manager()
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
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

    tokio::time::sleep(Duration::from_millis(1_400)).await;
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
