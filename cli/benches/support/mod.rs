//! What the benchmarks share: a `pj serve` of the release build, started on a free port with
//! a static token and no rate limit, and stopped when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// A fresh data dir of the benchmark `name` under the temporary folder.
pub fn data_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("pj-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts `pj` (`PJ_BIN`, default the release build) as `pj serve` on `data`: `token` signs in
/// as user `bench`, which has no email address (no completion email is sent), private
/// addresses may be reached (the benchmarks' targets are local) and nothing is rate limited.
/// Returns the process (killed when dropped) and the URL it listens on.
pub async fn start_serve(data: &std::path::Path, token: &str) -> anyhow::Result<(Child, String)> {
    let pj = std::env::var("PJ_BIN").unwrap_or_else(|_| "target/release/pj".into());
    let mut server = tokio::process::Command::new(&pj)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PJ_AUTH_TOKENS", format!("{token}=bench"))
        .env("PJ_ALLOW_PRIVATE_NETWORKS", "true")
        .env("PJ_RATE_LIMIT_PER_MINUTE", "1000000000")
        .env("PJ_RATE_LIMIT_BURST", "1000000000")
        .env("PJ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {pj}"))?;
    let stdout = server.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("pj serve did not say where it listens")??
            .context("pj serve exited")?;
        if let Some(url) = line.strip_prefix("Pithy Jaunt is listening on ") {
            break url.trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((server, base))
}
