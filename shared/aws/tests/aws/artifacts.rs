//! The S3 artifact store beyond the contract: a put that stopped between its object and its
//! record, what a listing and a download cost, the bucket's rules.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ExpirationStatus;
use chrono::{TimeDelta, Utc};
use pj_aws::provision::ARTIFACT_EXPIRATION_DAYS;
use pj_aws::{S3ArtifactStore, service};
use pj_core::artifacts::{Artifact, ArtifactName, ArtifactStore, PutOutcome};
use pj_core::ids::{Attempt, TaskId};

use crate::{artifact_store, aws};

fn name(raw: &str) -> ArtifactName {
    ArtifactName::parse(raw).unwrap()
}

#[tokio::test]
async fn a_put_that_stopped_after_its_object_should_be_recorded_by_its_retry() {
    let aws = aws().await;
    let store = artifact_store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let n = name("a1-step-1.png");
    let expires = Utc::now() + TimeDelta::days(7);
    // What a put leaves when it stops after PutObject, before its record.
    aws.s3()
        .put_object()
        .bucket(store.bucket())
        .key(S3ArtifactStore::object_key(&task, &n))
        .metadata("attempt", "1")
        .metadata("expires-us", expires.timestamp_micros().to_string())
        .body(ByteStream::from(b"\x89PNG first".to_vec()))
        .send()
        .await
        .expect("PutObject succeeds");
    assert!(store.list(&task, Utc::now()).await.unwrap().is_empty());
    assert!(store.get(&task, &n, Utc::now()).await.unwrap().is_none());

    let retried = store
        .put(
            &task,
            Attempt(2),
            &n,
            b"\x89PNG second try".to_vec(),
            expires,
        )
        .await
        .unwrap();

    assert_eq!(retried, PutOutcome::Duplicate);
    let listed = store.list(&task, Utc::now()).await.unwrap();
    assert_eq!(listed, [Artifact::new(n.clone(), Attempt(1), 10)]);
    let (artifact, bytes) = store.get(&task, &n, Utc::now()).await.unwrap().unwrap();
    assert_eq!(bytes, b"\x89PNG first");
    assert_eq!(artifact.attempt, Attempt(1));
    // The record took the object's expiry, not the retry's.
    let after = expires + TimeDelta::seconds(1);
    assert!(store.list(&task, after).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_object_should_be_keyed_by_task_and_name_and_typed_by_its_name() {
    let aws = aws().await;
    let store = artifact_store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let n = name("a1-reply-1.md");
    let later = Utc::now() + TimeDelta::days(7);
    store
        .put(&task, Attempt(1), &n, b"# reply".to_vec(), later)
        .await
        .unwrap();
    let head = aws
        .s3()
        .head_object()
        .bucket(store.bucket())
        .key(format!("{task}/a1-reply-1.md"))
        .send()
        .await
        .expect("the object is there");
    assert_eq!(head.content_type(), Some("text/markdown; charset=utf-8"));
    assert_eq!(head.content_length(), Some(7));
}

#[tokio::test]
async fn a_listing_should_be_one_query_and_a_download_one_get_item_and_one_get_object() {
    let aws = aws().await;
    let store = artifact_store(&aws).await;
    let task = TaskId::generate(Utc::now());
    let later = Utc::now() + TimeDelta::days(7);
    for raw in ["a1-a.png", "a1-b.json", "a2-c.txt"] {
        store
            .put(
                &task,
                Attempt(1),
                &name(raw),
                raw.as_bytes().to_vec(),
                later,
            )
            .await
            .unwrap();
    }

    let before = aws.metrics().snapshot();
    let listed = store.list(&task, Utc::now()).await.unwrap();
    let listing = aws.metrics().snapshot().since(&before);
    assert_eq!(listed.len(), 3);
    assert_eq!(listing.operation(service::DYNAMODB, "Query").calls, 1);
    assert_eq!(listing.service(service::DYNAMODB).calls, 1);
    assert_eq!(listing.service(service::S3).calls, 0);

    let before = aws.metrics().snapshot();
    let got = store
        .get(&task, &name("a1-b.json"), Utc::now())
        .await
        .unwrap();
    let download = aws.metrics().snapshot().since(&before);
    assert_eq!(got.unwrap().1, b"a1-b.json");
    assert_eq!(download.operation(service::DYNAMODB, "GetItem").calls, 1);
    assert_eq!(download.service(service::DYNAMODB).calls, 1);
    assert_eq!(download.operation(service::S3, "GetObject").calls, 1);
    assert_eq!(download.service(service::S3).calls, 1);

    // A name never stored costs its GetItem only.
    let before = aws.metrics().snapshot();
    assert!(
        store
            .get(&task, &name("none.txt"), Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    let missing = aws.metrics().snapshot().since(&before);
    assert_eq!(missing.service(service::S3).calls, 0);
}

#[tokio::test]
async fn the_bucket_should_block_public_access_and_expire_objects_with_the_logs() {
    let aws = aws().await;
    let store = artifact_store(&aws).await;
    let blocked = aws
        .s3()
        .get_public_access_block()
        .bucket(store.bucket())
        .send()
        .await
        .expect("the bucket has a public access block");
    let block = blocked
        .public_access_block_configuration()
        .expect("a configuration");
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.ignore_public_acls(), Some(true));
    assert_eq!(block.block_public_policy(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));

    let lifecycle = aws
        .s3()
        .get_bucket_lifecycle_configuration()
        .bucket(store.bucket())
        .send()
        .await
        .expect("the bucket has a lifecycle");
    let rules = lifecycle.rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].status(), &ExpirationStatus::Enabled);
    assert_eq!(
        rules[0].expiration().and_then(|e| e.days()),
        Some(ARTIFACT_EXPIRATION_DAYS)
    );
    assert_eq!(ARTIFACT_EXPIRATION_DAYS, 7);

    // Made again, it is the same bucket.
    pj_aws::provision::create_bucket(aws.s3(), store.bucket())
        .await
        .expect("creating it again is fine");
}
