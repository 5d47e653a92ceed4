//! Benchmark of the browser kinds: a six-step `browser_automation` task end to end in `pj serve`
//! (created, queued, run in a fresh guarded Chromium, each step logged, the screenshot stored,
//! completed) beside the same six steps written directly with chromiumoxide in a fresh Chromium
//! (the baseline), in one run; then browser tasks per minute with many tasks at once.
//!
//! Run by `scripts/bench-browser`, which builds `target/release/pj` first. Prints a Markdown
//! table: per task the median and p90 wall time of each way and their ratio; and the rate of a
//! burst of tasks at `PJ_MAX_BROWSERS` (default 2) browsers at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use serde_json::{Value, json};

#[path = "support/chromium.rs"]
mod fresh_chromium;
mod support;

use fresh_chromium::FreshChromium;

const TOKEN: &str = "bench-browser-token-01";
/// Tasks of each sequential run (one at a time, so each is timed alone).
const SEQUENTIAL: usize = 10;
/// Tasks of the burst, all created at once.
const BURST: usize = 24;

const FORM: &str = r#"<!doctype html><title>Sign up</title>
<form action="/welcome" method="get"><label>Email <input id="email" name="email"></label>
<button type="submit">Sign up</button></form>"#;
const WELCOME: &str = r#"<!doctype html><title>Welcome</title><h1>Welcome aboard</h1>
<table><tr><td class="plan">Basic</td></tr><tr><td class="plan">Pro</td></tr></table>"#;

/// The six steps, as a task's config gives them.
fn steps() -> Value {
    json!([
        {"action": "type", "selector": "#email", "text": "ada@example.com"},
        {"action": "click", "selector": "button[type=submit]"},
        {"action": "wait", "selector": "h1"},
        {"action": "extract", "selector": "h1"},
        {"action": "extract", "selector": "td.plan"},
        {"action": "screenshot", "full_page": true},
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let chromium = pj_browser::Chromium::locate(None)
        .context("no Chromium (scripts/bench-browser installs Debian's chromium)")?;
    let site = start_site().await?;
    let form = format!("http://{site}/form");

    // The baseline: the same steps straight through chromiumoxide, a fresh browser each time.
    direct(chromium.path(), &form).await?; // warm-up: the binary and the page cache
    let mut direct_ms = Vec::new();
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        direct(chromium.path(), &form).await?;
        direct_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    let data = support::data_dir("browser")?;
    let (server, base) = support::start_serve(&data, TOKEN).await?;
    let client = reqwest::Client::new();

    let warm = create(&client, &base, &form).await?;
    wait_all(&client, &base, &[warm]).await?;
    let mut task_ms = Vec::new();
    for _ in 0..SEQUENTIAL {
        let id = create(&client, &base, &form).await?;
        let done = wait_all(&client, &base, &[id]).await?;
        task_ms.push(span_ms(&done)?);
    }

    let ids: Vec<String> = futures::stream::iter(0..BURST)
        .map(|_| create(&client, &base, &form))
        .buffer_unordered(BURST)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let burst = wait_all(&client, &base, &ids).await?;
    let burst_ms = span_ms(&burst)?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);

    direct_ms.sort_by(f64::total_cmp);
    task_ms.sort_by(f64::total_cmp);
    let (d50, t50) = (quantile(&direct_ms, 0.5), quantile(&task_ms, 0.5));
    println!("| six-step browser task, one at a time ({SEQUENTIAL} each) | p50 ms | p90 ms |");
    println!("| --- | ---: | ---: |");
    println!(
        "| chromiumoxide directly: launch, 6 steps, close | {d50:.0} | {:.0} |",
        quantile(&direct_ms, 0.9)
    );
    println!(
        "| pj serve: created → completed (queue, guard, logs, screenshot stored) | {t50:.0} | {:.0} |",
        quantile(&task_ms, 0.9)
    );
    println!("| overhead ratio (p50) | {:.2}× | |", t50 / d50);
    println!();
    println!("| burst | tasks | wall s | tasks/min |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| {BURST} tasks created at once, PJ_MAX_BROWSERS=2 | {BURST} | {:.1} | {:.0} |",
        burst_ms / 1000.0,
        BURST as f64 / (burst_ms / 60_000.0)
    );
    Ok(())
}

async fn start_site() -> anyhow::Result<SocketAddr> {
    let page =
        |html: &'static str| axum::routing::get(move || async move { axum::response::Html(html) });
    let app = axum::Router::new()
        .route("/form", page(FORM))
        .route("/welcome", page(WELCOME));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// The six steps with chromiumoxide alone, as a program without our server would write them.
async fn direct(chromium: &std::path::Path, url: &str) -> anyhow::Result<()> {
    let chromium = FreshChromium::launch(chromium).await?;
    let page = chromium.browser.new_page(url).await?;
    page.find_element("#email")
        .await?
        .click()
        .await?
        .type_str("ada@example.com")
        .await?;
    page.find_element("button[type=submit]")
        .await?
        .click()
        .await?;
    page.wait_for_navigation().await?;
    let heading = loop {
        if let Ok(h1) = page.find_element("h1").await {
            break h1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = heading.inner_text().await?.unwrap_or_default();
    if text != "Welcome aboard" {
        bail!("the direct run read {text:?}");
    }
    let mut plans = Vec::new();
    for cell in page.find_elements("td.plan").await? {
        plans.push(cell.inner_text().await?.unwrap_or_default());
    }
    if plans.len() != 2 {
        bail!("the direct run read {plans:?}");
    }
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await?;
    if !png.starts_with(b"\x89PNG") {
        bail!("the direct screenshot is not a PNG");
    }
    chromium.close().await?;
    Ok(())
}

async fn create(client: &reqwest::Client, base: &str, url: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/tasks"))
        .bearer_auth(TOKEN)
        .json(&json!({"kind": "browser_automation", "title": "bench",
                      "config": {"start_url": url, "steps": steps()}}))
        .send()
        .await?;
    if response.status() != 201 {
        bail!(
            "create answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    let task: Value = response.json().await?;
    Ok(task["id"].as_str().context("an id")?.to_owned())
}

/// Waits until every task of `ids` completed; their records.
async fn wait_all(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut done = Vec::new();
    for id in ids {
        loop {
            let task: Value = client
                .get(format!("{base}/tasks/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await?
                .json()
                .await?;
            match task["status"].as_str() {
                Some("completed") => {
                    done.push(task);
                    break;
                }
                Some("failed" | "cancelled") => bail!("a task ended otherwise: {task}"),
                _ if Instant::now() > deadline => bail!("a task never completed: {task}"),
                _ => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
    Ok(done)
}

/// From the first task's creation to the last one's completion, by the server's clock.
fn span_ms(tasks: &[Value]) -> anyhow::Result<f64> {
    let time = |t: &Value, field: &str| -> anyhow::Result<f64> {
        let raw = t[field]
            .as_str()
            .with_context(|| format!("{field} of {t}"))?;
        Ok(chrono::DateTime::parse_from_rfc3339(raw)?.timestamp_micros() as f64 / 1000.0)
    };
    let first = tasks
        .iter()
        .map(|t| time(t, "created_at"))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let last = tasks
        .iter()
        .map(|t| time(t, "completed_at"))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(last - first)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}
