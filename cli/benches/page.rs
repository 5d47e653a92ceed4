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
//!
//! Each figure twice, the loads interleaved: as a browser gets the page (it accepts gzip, which
//! the server uses) and, the baseline, uncompressed (the browser told to send
//! `Accept-Encoding: identity`, as every load was before the server compressed). The bench
//! checks which encoding `app.js` really came in, so a baseline that is not one fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFinished, EventResponseReceived, Headers, SetExtraHttpHeadersParams,
};
use futures::StreamExt;
use serde_json::json;

#[path = "support/chromium.rs"]
mod fresh_chromium;
mod support;

use fresh_chromium::FreshChromium;

const TOKEN: &str = "bench-page-token-0001";
const TASKS: usize = 50;

/// How the browser asks for the page.
#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    /// As it does by itself: `Accept-Encoding: gzip, deflate, br, zstd`.
    Browser,
    /// `Accept-Encoding: identity`: the bytes as they are.
    Identity,
}

#[derive(Default)]
struct Transfer {
    /// requestId → URL, from Network.responseReceived.
    urls: HashMap<String, String>,
    /// The `Content-Encoding` `app.js` came with, if any.
    script_encoding: Option<String>,
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

    let (mut gzip, mut identity) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        gzip.push(load(chromium.path(), &base, Encoding::Browser).await?);
        identity.push(load(chromium.path(), &base, Encoding::Identity).await?);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);

    println!(
        "| the web page, {TASKS} tasks, fresh Chromium profile ({runs} loads each) \
         | gzip (as served) | uncompressed (baseline) |"
    );
    println!("| --- | ---: | ---: |");
    let row = |what: &str, figure: &dyn Fn(&[Run]) -> String| {
        println!("| {what} | {} | {} |", figure(&gzip), figure(&identity));
    };
    let kb = |bytes: f64| format!("{:.1} KB ({bytes:.0} bytes)", bytes / 1024.0);
    row("transfer: document + app.js + app.css", &|r| {
        kb(r[0].page_bytes)
    });
    row("transfer: with the first GET /tasks (20 tasks)", &|r| {
        kb(r[0].page_bytes + r[0].list_bytes)
    });
    for (name, q) in [("p50", 0.5), ("p90", 0.9)] {
        row(
            &format!("time to the first rendered task list, {name}"),
            &|r| {
                let mut ms: Vec<f64> = r.iter().map(|r| r.list_ms).collect();
                ms.sort_by(f64::total_cmp);
                format!("{:.0} ms", quantile(&ms, q))
            },
        );
    }
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
async fn load(chromium: &std::path::Path, base: &str, encoding: Encoding) -> anyhow::Result<Run> {
    let chromium = FreshChromium::launch(chromium).await?;
    // Signed in before the page loads: a JSON route of the origin, then the token in the tab.
    let page = chromium.browser.new_page(format!("{base}/healthz")).await?;
    page.evaluate(format!(
        "sessionStorage.setItem('pj.token', {})",
        json!(TOKEN)
    ))
    .await?;
    if encoding == Encoding::Identity {
        page.execute(SetExtraHttpHeadersParams::new(Headers::new(
            json!({"Accept-Encoding": "identity"}),
        )))
        .await?;
    }

    let transfer = Arc::new(Mutex::new(Transfer::default()));
    let mut responses = page.event_listener::<EventResponseReceived>().await?;
    let mut finished = page.event_listener::<EventLoadingFinished>().await?;
    let t = transfer.clone();
    let watcher = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(e) = responses.next() => {
                    let mut t = t.lock().unwrap();
                    if e.response.url.ends_with("/app.js") {
                        t.script_encoding = content_encoding(e.response.headers.inner());
                    }
                    t.urls.insert(e.request_id.inner().clone(), e.response.url.clone());
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
    let came_in = transfer.lock().unwrap().script_encoding.clone();
    match (encoding, came_in.as_deref()) {
        (Encoding::Browser, Some("gzip")) | (Encoding::Identity, None) => {}
        (_, other) => bail!("app.js came with Content-Encoding {other:?}, not the one measured"),
    }
    Ok(Run {
        page_bytes,
        list_bytes,
        list_ms,
    })
}

/// A response's `Content-Encoding` (header names come as the server wrote them).
fn content_encoding(headers: &serde_json::Value) -> Option<String> {
    headers.as_object()?.iter().find_map(|(name, value)| {
        name.eq_ignore_ascii_case("content-encoding")
            .then(|| value.as_str().unwrap_or_default().to_owned())
    })
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
