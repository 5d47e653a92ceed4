//! Load: signed runner events as the API handles them, at the rate the embedded deployment
//! must sustain. Ignored by default; run it with
//! `cargo test -p pj-sqlite --release --test store -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use pj_contract::sample;
use pj_core::ports::{TaskStore, WriteOutcome};
use tokio::sync::Semaphore;

use crate::TestStore;

const RATE: u64 = 2_000;
const SECONDS: u64 = 5;
const TASKS: usize = 500;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "load test; run on purpose, in release mode"]
async fn sustains_two_thousand_runner_events_a_second_with_p99_under_20_ms() {
    let t = TestStore::new();
    let owner = sample::owner();
    let mut ids = Vec::new();
    for _ in 0..TASKS {
        let task = sample::task(&owner, Utc::now());
        t.store.create(&task, None).await.unwrap();
        ids.push(task.id);
    }
    let ids = Arc::new(ids);
    // Bounds the events in flight, as an HTTP server's concurrency limit would.
    let in_flight = Arc::new(Semaphore::new(256));
    let total = RATE * SECONDS;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = start + Duration::from_micros(n * 1_000_000 / RATE);
        tokio::time::sleep_until(due.into()).await;
        let store = t.store.clone();
        let ids = ids.clone();
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        handles.push(tokio::spawn(async move {
            let began = Instant::now();
            let id = &ids[n as usize % ids.len()];
            let now = Utc::now();
            let receipt = sample::receipt(now + TimeDelta::hours(24));
            assert!(!store.webhook_seen(&receipt.id, now).await.unwrap());
            loop {
                let task = store.get(id).await.unwrap().unwrap();
                let next = sample::next_version(&task, now);
                match store
                    .update(&next, task.version, Some(&receipt))
                    .await
                    .unwrap()
                {
                    WriteOutcome::Written => break,
                    WriteOutcome::VersionConflict => continue,
                    WriteOutcome::WebhookSeen => panic!("a fresh webhook id was seen"),
                }
            }
            drop(permit);
            began.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    for h in handles {
        latencies.push(h.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let rate = total as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{total} events in {elapsed:?} ({rate:.0}/s): p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    assert!(rate >= RATE as f64 * 0.95, "only {rate:.0} events a second");
    assert!(pct(0.99) < Duration::from_millis(20), "p99 {:?}", pct(0.99));
}
