//! Creating the resources the adapters expect (table, queues, secret, the artifacts' bucket), for tests and local development (the deployed
//! resources come from `template.yaml`, which must agree with the layout made here). Every
//! helper may be run again on resources it made before.

use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    PublicAccessBlockConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use tokio::time::{Instant, sleep};

use crate::dynamo::{
    DOC, GSI_OWNER, GSI_SWEEP, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, PK, SK, STATUS, TTL,
};
use crate::sqs::QueueUrls;

/// `maxReceiveCount` of the queues' redrive policy: receives before a message goes to its
/// dead-letter queue (the core's `dispatch_max_receives` assumes the same).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;
/// How long a dead letter is kept: SQS's longest retention, 14 days.
const DEAD_LETTER_RETENTION_SECS: u32 = 14 * 24 * 3600;
/// How long [`create_table`] waits for a new table to become active.
const TABLE_WAIT: Duration = Duration::from_secs(120);

fn key_element(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .context("could not build a key schema element")
}

fn string_attribute(name: &str) -> anyhow::Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .context("could not build an attribute definition")
}

fn index(
    name: &str,
    pk: &str,
    sk: &str,
    projection: Projection,
) -> anyhow::Result<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_element(pk, KeyType::Hash)?)
        .key_schema(key_element(sk, KeyType::Range)?)
        .projection(projection)
        .build()
        .context("could not build a global secondary index")
}

/// Creates the store's table (on-demand, both indexes, TTL on `ttl`) unless it exists, and
/// waits until it is active.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .global_secondary_indexes(index(
            GSI_OWNER,
            GSI1_PK,
            GSI1_SK,
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes(DOC)
                .non_key_attributes(STATUS)
                .build(),
        )?)
        .global_secondary_indexes(index(
            GSI_SWEEP,
            GSI2_PK,
            GSI2_SK,
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )?);
    for name in [PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK] {
        request = request.attribute_definitions(string_attribute(name)?);
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::info!(table, "the table exists already");
        }
        Err(e) => return Err(e).with_context(|| format!("CreateTable {table} failed")),
    }

    let deadline = Instant::now() + TABLE_WAIT;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .with_context(|| format!("DescribeTable {table} failed"))?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the table {table} is still {status:?} after {TABLE_WAIT:?}");
        }
        sleep(Duration::from_millis(500)).await;
    }

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .with_context(|| format!("DescribeTimeToLive of {table} failed"))?;
    let enabled = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !enabled {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL)
                    .enabled(true)
                    .build()
                    .context("could not build the TTL specification")?,
            )
            .send()
            .await
            .with_context(|| format!("UpdateTimeToLive of {table} failed"))?;
    }
    Ok(())
}

/// The queues [`create_queues`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedQueues {
    /// For [`SqsQueue`](crate::SqsQueue).
    pub urls: QueueUrls,
    /// Where each queue's messages go after `max_receive_count` receives.
    pub dead_letters: QueueUrls,
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> anyhow::Result<String> {
    let mut request = client.create_queue().queue_name(name);
    for (attribute, value) in attributes {
        request = request.attributes(attribute, value);
    }
    let output = request
        .send()
        .await
        .with_context(|| format!("CreateQueue {name} failed"))?;
    output
        .queue_url
        .with_context(|| format!("CreateQueue {name} returned no URL"))
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("GetQueueAttributes of {url} failed"))?;
    output
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .with_context(|| format!("the queue {url} has no ARN"))
}

/// Creates `{prefix}-{name}` and its dead-letter queue `{prefix}-{name}-dlq`; returns both URLs.
async fn queue_with_dead_letters(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
    name: &str,
    max_receive_count: u32,
) -> anyhow::Result<(String, String)> {
    let dlq = create_queue(
        client,
        &format!("{prefix}-{name}-dlq"),
        vec![(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION_SECS.to_string(),
        )],
    )
    .await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": queue_arn(client, &dlq).await?,
        "maxReceiveCount": max_receive_count,
    });
    let url = create_queue(
        client,
        &format!("{prefix}-{name}"),
        vec![(QueueAttributeName::RedrivePolicy, redrive.to_string())],
    )
    .await?;
    Ok((url, dlq))
}

/// Creates `{prefix}-dispatch`, `{prefix}-notify` and `{prefix}-tasks`, each with a dead-letter
/// queue (`{prefix}-dispatch-dlq`, ...) that takes a message after
/// `max_receive_count` receives ([`DEFAULT_MAX_RECEIVE_COUNT`] in a deployment).
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    prefix: &str,
    max_receive_count: u32,
) -> anyhow::Result<ProvisionedQueues> {
    let (dispatch, dispatch_dlq) =
        queue_with_dead_letters(client, prefix, "dispatch", max_receive_count).await?;
    let (notify, notify_dlq) =
        queue_with_dead_letters(client, prefix, "notify", max_receive_count).await?;
    let (tasks, tasks_dlq) =
        queue_with_dead_letters(client, prefix, "tasks", max_receive_count).await?;
    Ok(ProvisionedQueues {
        urls: QueueUrls {
            dispatch,
            notify,
            tasks,
        },
        dead_letters: QueueUrls {
            dispatch: dispatch_dlq,
            notify: notify_dlq,
            tasks: tasks_dlq,
        },
    })
}

/// Stores `value` (a JSON object, see [`SecretsManagerSource`](crate::SecretsManagerSource))
/// as the secret `name`, creating it or adding a new version.
pub async fn put_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    let text = value.to_string();
    let created = client
        .create_secret()
        .name(name)
        .secret_string(&text)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(text)
                .send()
                .await
                .with_context(|| format!("PutSecretValue of {name} failed"))?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("CreateSecret {name} failed")),
    }
}

/// Days after which the bucket's lifecycle rule deletes an artifact's object: as long as the
/// logs are kept (`template.yaml`'s bucket has the same rule).
pub const ARTIFACT_EXPIRATION_DAYS: i32 = 7;

/// Creates the artifacts' bucket unless it exists: all public access blocked, objects
/// deleted [`ARTIFACT_EXPIRATION_DAYS`] after they were written. (The stack's bucket also
/// enforces bucket-owner ownership and SSE-S3, which S3 applies to every new bucket anyway.)
pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    let mut request = client.create_bucket().bucket(bucket);
    // us-east-1 takes no location constraint; every other region needs its own.
    if let Some(region) = client
        .config()
        .region()
        .map(|r| r.as_ref().to_owned())
        .filter(|r| r != "us-east-1")
    {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            tracing::info!(bucket, "the bucket exists already");
        }
        Err(e) => return Err(e).with_context(|| format!("CreateBucket {bucket} failed")),
    }
    client
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("PutPublicAccessBlock of {bucket} failed"))?;
    let rule = LifecycleRule::builder()
        .id("expire-artifacts")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .expiration(
            LifecycleExpiration::builder()
                .days(ARTIFACT_EXPIRATION_DAYS)
                .build(),
        )
        .build()
        .context("could not build the lifecycle rule")?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .context("could not build the lifecycle configuration")?,
        )
        .send()
        .await
        .with_context(|| format!("PutBucketLifecycleConfiguration of {bucket} failed"))?;
    Ok(())
}

/// Registers a sender address or domain with SES (on AWS this starts its verification; an
/// emulator takes it as verified).
pub async fn verify_email_identity(
    client: &aws_sdk_sesv2::Client,
    identity: &str,
) -> anyhow::Result<()> {
    match client
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("CreateEmailIdentity {identity} failed")),
    }
}
