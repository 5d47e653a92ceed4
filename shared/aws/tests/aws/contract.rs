//! Every port contract, against the AWS adapters on moto.

use pj_contract::{
    artifact_store_contract, log_store_contract, message_store_contract, queue_contract,
    queue_strict_receipt_contract, task_store_contract,
};

use crate::{artifact_store, aws, queues, store};

/// Receives before dead-lettering: small, so the dead-letter check is quick.
const MAX_RECEIVES: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamo_store_keeps_the_task_store_contract() {
    let aws = aws().await;
    task_store_contract(&store(&aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamo_store_keeps_the_log_store_contract() {
    let aws = aws().await;
    log_store_contract(&store(&aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamo_store_keeps_the_message_store_contract() {
    let aws = aws().await;
    message_store_contract(&store(&aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_artifact_store_keeps_the_artifact_store_contract() {
    let aws = aws().await;
    let artifacts = artifact_store(&aws).await;
    artifact_store_contract(&artifacts).await;
    // Again on the table and bucket it filled.
    artifact_store_contract(&artifacts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contracts_hold_again_on_a_table_they_already_filled() {
    let aws = aws().await;
    let store = store(&aws).await;
    task_store_contract(&store).await;
    log_store_contract(&store).await;
    message_store_contract(&store).await;
    task_store_contract(&store).await;
    log_store_contract(&store).await;
    message_store_contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqs_queue_keeps_the_queue_contract() {
    let aws = aws().await;
    let (queue, _) = queues(&aws, MAX_RECEIVES).await;
    queue_contract(&queue, MAX_RECEIVES).await;
}

/// SQS itself says only that a delete with an old receipt "might not" delete, and moto acts on
/// every receipt a message ever had, so this holds on neither; run it by hand against a queue
/// that promises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "moto (like SQS) acts on stale receipts; the strict contract is for the embedded queue"]
async fn the_sqs_queue_keeps_the_strict_receipt_contract() {
    let aws = aws().await;
    let (queue, _) = queues(&aws, MAX_RECEIVES).await;
    queue_strict_receipt_contract(&queue).await;
}
