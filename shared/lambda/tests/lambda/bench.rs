//! The AWS requests of one task, for `scripts/bench-lambda` (ignored in a normal run):
//! `scripts/with-moto cargo test -p pj-lambda --test lambda -- --ignored --nocapture requests_of_one_task`.

use pj_aws::{MetricsSnapshot, service};

use crate::end_to_end::one_task;
use crate::support::TestApp;

fn row(name: &str, s: &MetricsSnapshot) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {:.0} |",
        s.service(service::DYNAMODB).requests,
        s.service(service::SQS).requests,
        s.service(service::SES).requests,
        s.service(service::SECRETS_MANAGER).requests,
        s.dynamodb_estimated_write_units,
    )
}

/// The figures of the README measured before log lines were packed (one item per line), for
/// the same task (1,000 lines in 5 batches of 200): fixed numbers, not measured here.
const BEFORE_PACKING: [(&str, f64); 5] = [
    ("DynamoDB requests, all functions", 63.0),
    ("of them BatchWriteItem", 40.0),
    ("DynamoDB requests of log-ingest", 50.0),
    ("DynamoDB write units (estimated), all functions", 1024.0),
    ("DynamoDB write units (estimated) of log-ingest", 1000.0),
];

fn add(total: &mut MetricsSnapshot, s: &MetricsSnapshot) {
    for (key, stats) in &s.operations {
        let t = total.operations.entry(key.clone()).or_default();
        t.calls += stats.calls;
        t.requests += stats.requests;
        t.retries += stats.retries;
        t.failures += stats.failures;
    }
    total.dynamodb_estimated_write_units += s.dynamodb_estimated_write_units;
}

#[tokio::test]
#[ignore = "a measurement: scripts/bench-lambda runs it"]
async fn requests_of_one_task_from_creation_to_email() {
    let batches: u64 = std::env::var("PJ_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lines: u64 = std::env::var("PJ_BENCH_LINES_PER_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let app = TestApp::new().await;
    let flow = one_task(&app, batches, lines).await;

    let mut total = MetricsSnapshot::default();
    println!(
        "\nOne task from creation to email, {} log lines in {batches} batches of {lines}:\n",
        batches * lines
    );
    println!(
        "| function | DynamoDB requests | SQS requests | SES requests | Secrets Manager requests | DynamoDB write units (estimated) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, snapshot) in &flow.functions {
        println!("{}", row(name, snapshot));
        add(&mut total, snapshot);
    }
    println!("{}", row("**all functions**", &total));
    println!(
        "{}",
        row(
            "(event source: ReceiveMessage by the test, standing in for Lambda's)",
            &flow.event_source
        )
    );
    let ingest = flow
        .functions
        .iter()
        .find(|(name, _)| name.starts_with("log-ingest"))
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let now = [
        total.service(service::DYNAMODB).requests as f64,
        total
            .operation(service::DYNAMODB, "BatchWriteItem")
            .requests as f64,
        ingest.service(service::DYNAMODB).requests as f64,
        total.dynamodb_estimated_write_units,
        ingest.dynamodb_estimated_write_units,
    ];
    println!("\nBefore and after packing log lines into items (same task, same lines):\n");
    println!(
        "| figure | before (measured before this change: one item per line) | after (measured now) |"
    );
    println!("|---|---:|---:|");
    for ((figure, before), after) in BEFORE_PACKING.iter().zip(now) {
        println!("| {figure} | {before:.0} | {after:.0} |");
    }
    println!("\nBy operation (all functions):\n");
    println!("| service | operation | requests |");
    println!("|---|---|---:|");
    for ((svc, op), stats) in &total.operations {
        println!("| {svc} | {op} | {} |", stats.requests);
    }
}
