//! Benchmark of the built-in kinds: `api_call` tasks end to end in `pj serve` against a local
//! target, beside the same calls made directly (the baseline), in one run.
//!
//! Run by `scripts/bench-kinds`, which builds `target/release/pj` first. Prints a Markdown table:
//! for the direct calls their rate and latency; for the tasks their rate (created to completed,
//! as fast as the server takes them) and, at a paced 500 tasks/s, the overhead of a task over
//! its own call: `completed_at - created_at - result.duration_ms`, p50 and p99.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};

mod support;

const TOKEN: &str = "bench-kinds-token-0001";
/// Tasks of the throughput run.
const BURST_TASKS: usize = 4_000;
/// Creates in flight at once in the throughput run.
const BURST_CONCURRENCY: usize = 64;
/// The paced run: this many tasks per second for this long.
const PACED_RATE: u64 = 500;
const PACED_SECS: u64 = 6;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let target = start_target().await?;
    let target_url = format!("http://{target}/orders?id=42");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    let direct = direct_calls(&client, &target_url, BURST_TASKS, BURST_CONCURRENCY).await?;

    let data = support::data_dir("kinds")?;
    let (mut server, base) = support::start_serve(&data, TOKEN).await?;

    // Warm up: connections, the database, the workers.
    run_tasks(&client, &base, &target_url, 200, 32, None).await?;

    let burst = run_tasks(
        &client,
        &base,
        &target_url,
        BURST_TASKS,
        BURST_CONCURRENCY,
        None,
    )
    .await?;
    let paced = run_tasks(
        &client,
        &base,
        &target_url,
        (PACED_RATE * PACED_SECS) as usize,
        256,
        Some(PACED_RATE),
    )
    .await?;

    println!("| what | count | per second | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| direct calls to the target (baseline; latency of the call) | {} | {:.0} | {:.2} | {:.2} |",
        direct.count, direct.rate, direct.p50, direct.p99
    );
    println!(
        "| api_call tasks, as fast as taken (created to completed) | {} | {:.0} | {:.1} | {:.1} |",
        burst.count, burst.rate, burst.p50_total, burst.p99_total
    );
    println!(
        "| api_call tasks at {PACED_RATE}/s: overhead over the call | {} | {:.0} | {:.1} | {:.1} |",
        paced.count, paced.rate, paced.p50_overhead, paced.p99_overhead
    );
    let _ = server.kill().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

/// A target API answering a small JSON document at once.
async fn start_target() -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/orders",
        axum::routing::get(|| async {
            axum::Json(json!({"id": 42, "status": "shipped", "items": [1, 2, 3]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

struct Direct {
    count: usize,
    rate: f64,
    p50: f64,
    p99: f64,
}

async fn direct_calls(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Direct> {
    let started = Instant::now();
    let latencies: Vec<anyhow::Result<f64>> = futures::stream::iter(0..n)
        .map(|_| async {
            let t = Instant::now();
            let r = client.get(url).send().await?;
            r.bytes().await?;
            Ok(t.elapsed().as_secs_f64() * 1000.0)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut ms: Vec<f64> = latencies.into_iter().collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    Ok(Direct {
        count: n,
        rate: n as f64 / elapsed,
        p50: quantile(&ms, 0.5),
        p99: quantile(&ms, 0.99),
    })
}

struct TaskRun {
    count: usize,
    rate: f64,
    p50_total: f64,
    p99_total: f64,
    p50_overhead: f64,
    p99_overhead: f64,
}

/// Creates `n` api_call tasks (at most `concurrency` creates in flight, paced at `rate` per
/// second when given), waits for every one to complete, and reads their times.
async fn run_tasks(
    client: &reqwest::Client,
    base: &str,
    target_url: &str,
    n: usize,
    concurrency: usize,
    rate: Option<u64>,
) -> anyhow::Result<TaskRun> {
    let body = json!({"kind": "api_call", "title": "bench", "config": {"url": target_url}});
    let start = Instant::now();
    let ids: Vec<anyhow::Result<String>> = futures::stream::iter(0..n)
        .map(|i| {
            let body = body.clone();
            async move {
                if let Some(rate) = rate {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let r = client
                    .post(format!("{base}/tasks"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await?;
                if r.status() != 201 {
                    bail!("create answered {}: {}", r.status(), r.text().await?);
                }
                let task: Value = r.json().await?;
                Ok(task["id"].as_str().context("an id")?.to_owned())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let ids: Vec<String> = ids.into_iter().collect::<Result<_, _>>()?;
    let tasks = Arc::new(wait_all(client, base, &ids).await?);
    let mut totals = Vec::new();
    let mut overheads = Vec::new();
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    for task in tasks.iter() {
        if task["status"] != "completed" {
            bail!("a task ended {}: {}", task["status"], task["error"]);
        }
        let created = time_ms(&task["created_at"])?;
        let completed = time_ms(&task["completed_at"])?;
        let call = task["result"]["duration_ms"]
            .as_f64()
            .context("duration_ms")?;
        first = first.min(created);
        last = last.max(completed);
        totals.push(completed - created);
        overheads.push(completed - created - call);
    }
    totals.sort_by(f64::total_cmp);
    overheads.sort_by(f64::total_cmp);
    Ok(TaskRun {
        count: ids.len(),
        rate: ids.len() as f64 / ((last - first) / 1000.0).max(0.001),
        p50_total: quantile(&totals, 0.5),
        p99_total: quantile(&totals, 0.99),
        p50_overhead: quantile(&overheads, 0.5),
        p99_overhead: quantile(&overheads, 0.99),
    })
}

/// Polls until every task is terminal; returns them. A task found terminal is not asked for
/// again, so the polling weighs on the server as little as the tasks still open.
async fn wait_all(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done: Vec<Option<Value>> = vec![None; ids.len()];
    loop {
        let open: Vec<usize> = (0..ids.len()).filter(|&i| done[i].is_none()).collect();
        if open.is_empty() {
            return Ok(done.into_iter().flatten().collect());
        }
        if Instant::now() > deadline {
            bail!("{} tasks still open after 300 s", open.len());
        }
        let found: Vec<anyhow::Result<(usize, Value)>> = futures::stream::iter(open)
            .map(|i| async move {
                let r = client
                    .get(format!("{base}/tasks/{}", ids[i]))
                    .bearer_auth(TOKEN)
                    .send()
                    .await?;
                Ok((i, r.json::<Value>().await?))
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for result in found {
            let (i, task) = result?;
            if matches!(
                task["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                done[i] = Some(task);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn time_ms(v: &Value) -> anyhow::Result<f64> {
    let raw = v.as_str().context("a timestamp")?;
    let t = chrono::DateTime::parse_from_rfc3339(raw)?;
    Ok(t.timestamp_micros() as f64 / 1000.0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
