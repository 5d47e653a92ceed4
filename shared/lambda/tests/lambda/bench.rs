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
    println!("\nBy operation (all functions):\n");
    println!("| service | operation | requests |");
    println!("|---|---|---:|");
    for ((svc, op), stats) in &total.operations {
        println!("| {svc} | {op} | {} |", stats.requests);
    }
}
