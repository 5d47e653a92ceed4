//! Logs: one JSON object per line on stdout (Lambda's JSON log format), filtered by `RUST_LOG`
//! (default `info`). Fields, never secrets: the adapters and the core log ids and counts only.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        // Every enclosing span's fields (the invocation's requestId, a message's task_id).
        .with_span_list(true)
        .with_ansi(false)
        .try_init();
    if let Err(e) = result {
        eprintln!("logging was set up before: {e}");
    }
}
