//! Every port contract, against SQLite.

use pj_contract::{
    artifact_store_contract, log_store_contract, message_store_contract, queue_contract,
    queue_strict_receipt_contract, task_store_contract,
};

use crate::{MAX_RECEIVES, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_store_keeps_the_task_store_contract() {
    let t = TestStore::new();
    task_store_contract(&t.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_store_keeps_the_log_store_contract() {
    let t = TestStore::new();
    log_store_contract(&t.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_store_keeps_the_message_store_contract() {
    let t = TestStore::new();
    message_store_contract(&t.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_artifact_store_keeps_the_artifact_store_contract() {
    let t = TestStore::new();
    artifact_store_contract(&t.store).await;
    artifact_store_contract(&t.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_keeps_the_queue_contract() {
    let t = TestStore::new();
    queue_contract(&t.store, MAX_RECEIVES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_keeps_the_strict_receipt_contract() {
    let t = TestStore::new();
    queue_strict_receipt_contract(&t.store).await;
}

#[tokio::test]
async fn the_contracts_hold_on_a_current_thread_runtime_too() {
    let t = TestStore::new();
    task_store_contract(&t.store).await;
    log_store_contract(&t.store).await;
    message_store_contract(&t.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contracts_hold_again_on_a_store_they_already_filled() {
    let t = TestStore::new();
    task_store_contract(&t.store).await;
    log_store_contract(&t.store).await;
    message_store_contract(&t.store).await;
    task_store_contract(&t.store).await;
    log_store_contract(&t.store).await;
    message_store_contract(&t.store).await;
}
