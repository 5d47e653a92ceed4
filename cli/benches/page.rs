//! Benchmark of the web page: `pj serve` (release build) with 50 tasks, the page loaded in a
//! fresh headless Chromium (a new profile, so an empty cache) `PJ_BENCH_RUNS` times (default 10),
//! signed in already (the token put in the tab's session storage on the origin first).
//!
//! Run by `scripts/bench-page`, which builds `target/release/pj` first. Prints a Markdown table:
//! - the page's transfer size: the `encodedDataLength` of `Network.loadingFinished` (bytes on
//!   the wire, headers included) of the document, `app.js` and `app.css`; then with the first
//!   `GET /tasks` JSON (20 tasks) too (the icon, `/favicon.svg`, 0.4 KB, which the browser asks
//!   for on its own schedule, is not counted);
//! - the time to the first rendered task list: from the navigation's start (the page's time
//!   origin) to the `performance.mark('pj:list-rendered')` the app sets once the first list is
//!   in the DOM; p50 and p90 over the runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chromiumoxide::cdp::browser_protocol::network::{EventLoadingFinished, EventResponseReceived};
use futures::StreamExt;
use serde_json::json;

#[path = "support/chromium.rs"]
mod fresh_chromium;
mod support;

use fresh_chromium::FreshChromium;

const TOKEN: &str = "bench-page-token-0001";
const TASKS: usize = 50;

#[derive(Default)]
struct Transfer {
    /// requestId → URL, from Network.responseReceived.
    urls: HashMap<String, String>,
    /// requestId → encodedDataLength, from Network.loadingFinished.
    bytes: HashMap<String, f64>,
}

struct Run {
    page_bytes: f64,
    list_bytes: f64,
    list_ms: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("PJ_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let chromium = pj_browser::Chromium::locate(None)
        .context("no Chromium (scripts/bench-page installs Debian's chromium)")?;
    let data = support::data_dir("page")?;
    let (server, base) = support::start_serve(&data, TOKEN).await?;
    seed(&base).await?;

    let mut results = Vec::new();
    for _ in 0..runs {
        results.push(load(chromium.path(), &base).await?);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);

    let mut ms: Vec<f64> = results.iter().map(|r| r.list_ms).collect();
    ms.sort_by(f64::total_cmp);
    let page = results[0].page_bytes;
    let list = results[0].list_bytes;
    println!("| the web page, {TASKS} tasks, fresh Chromium profile ({runs} loads) | value |");
    println!("| --- | ---: |");
    println!(
        "| transfer: document + app.js + app.css | {:.1} KB ({page:.0} bytes) |",
        page / 1024.0
    );
    println!(
        "| transfer: with the first GET /tasks (20 tasks) | {:.1} KB ({:.0} bytes) |",
        (page + list) / 1024.0,
        page + list
    );
    println!(
        "| time to the first rendered task list, p50 | {:.0} ms |",
        quantile(&ms, 0.5)
    );
    println!(
        "| time to the first rendered task list, p90 | {:.0} ms |",
        quantile(&ms, 0.9)
    );
    Ok(())
}

/// `TASKS` reports, run to completion so the list shows finished tasks.
async fn seed(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for i in 0..TASKS {
        let response = client
            .post(format!("{base}/tasks"))
            .bearer_auth(TOKEN)
            .json(
                &json!({"kind": "report", "title": format!("Weekly summary {i}"),
                          "config": {"report": "task_summary"}}),
            )
            .send()
            .await?;
        if response.status() != 201 {
            bail!(
                "create answered {}: {}",
                response.status(),
                response.text().await?
            );
        }
    }
    Ok(())
}

/// One load of the page in a fresh browser.
async fn load(chromium: &std::path::Path, base: &str) -> anyhow::Result<Run> {
    let chromium = FreshChromium::launch(chromium).await?;
    // Signed in before the page loads: a JSON route of the origin, then the token in the tab.
    let page = chromium.browser.new_page(format!("{base}/healthz")).await?;
    page.evaluate(format!(
        "sessionStorage.setItem('pj.token', {})",
        json!(TOKEN)
    ))
    .await?;

    let transfer = Arc::new(Mutex::new(Transfer::default()));
    let mut responses = page.event_listener::<EventResponseReceived>().await?;
    let mut finished = page.event_listener::<EventLoadingFinished>().await?;
    let t = transfer.clone();
    let watcher = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(e) = responses.next() => {
                    t.lock().unwrap().urls.insert(e.request_id.inner().clone(), e.response.url.clone());
                }
                Some(e) = finished.next() => {
                    t.lock().unwrap().bytes.insert(e.request_id.inner().clone(), e.encoded_data_length);
                }
                else => break,
            }
        }
    });

    page.goto(format!("{base}/")).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let list_ms = loop {
        // -1 until the mark is set (chromiumoxide reads a JSON null as no value at all).
        let at: f64 = page
            .evaluate("(performance.getEntriesByName('pj:list-rendered')[0] || {}).startTime ?? -1")
            .await?
            .into_value()?;
        if at >= 0.0 {
            break at;
        }
        if Instant::now() > deadline {
            bail!("the task list was not rendered within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The list's bytes are counted once its loading finished (just after it was rendered).
    let sizes = |t: &Transfer| {
        let mut page = 0.0;
        let mut list = None;
        for (id, url) in &t.urls {
            let path = url.strip_prefix(base).unwrap_or(url);
            let Some(bytes) = t.bytes.get(id) else {
                continue;
            };
            match path {
                "/" | "/app.js" | "/app.css" => page += bytes,
                p if p.starts_with("/tasks?") => list = Some(*bytes),
                _ => {}
            }
        }
        (page, list)
    };
    let (page_bytes, list_bytes) = loop {
        let (page_bytes, list) = sizes(&transfer.lock().unwrap());
        if let Some(list) = list {
            break (page_bytes, list);
        }
        if Instant::now() > deadline {
            bail!("the first GET /tasks did not finish loading");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    watcher.abort();
    chromium.close().await?;
    Ok(Run {
        page_bytes,
        list_bytes,
        list_ms,
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
