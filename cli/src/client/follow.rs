//! `--follow`: the task's log stream (`GET /tasks/{id}/logs/stream`) until the task ends, with a
//! live status line on a terminal. A dropped connection is resumed with `Last-Event-ID`.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::api::{Api, ApiError, unreachable};
use super::output::{Ui, error, str_of};
use super::sse::{Event, Parser};

/// The statuses a task does not leave by itself.
pub fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "completed" | "failed" | "needs_review" | "cancelled"
    )
}

/// Longer than the server's keep-alive comment (15 s): a silent connection this long is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(45);
/// Connections in a row that may fail, with nothing received, before following gives up.
const MAX_FAILURES: u32 = 8;

const RECONNECTING: &str = " (reconnecting)";

/// Where the followed stream goes: a status line and log lines for a person, or one JSON object
/// per line.
enum Sink {
    Human { ui: Ui, bar: ProgressBar },
    Json,
}

impl Sink {
    fn new(ui: Ui, json: bool, task_id: &str) -> Sink {
        if json {
            return Sink::Json;
        }
        let bar = if ui.live {
            let template = if ui.color {
                "{spinner:.cyan} {msg} {elapsed:.dim}"
            } else {
                "{spinner} {msg} {elapsed}"
            };
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_message(format!("{task_id} connecting"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Sink::Human { ui, bar }
    }

    fn line(&self, event: &Event, line: &Value) {
        match self {
            Sink::Human { ui, bar } => {
                let text = ui.log_line(line);
                bar.suspend(|| println!("{text}"));
            }
            Sink::Json => print_json_line(&json!({"event": "log", "id": event.id, "data": line})),
        }
    }

    fn status(&self, task: &Value, previous: Option<&str>) {
        let status = str_of(&task["status"]);
        match self {
            Sink::Human { ui, bar } => {
                let mut message = format!("{} {}", str_of(&task["id"]), ui.status(status));
                if let Some(attempt) = task["attempt"].as_u64().filter(|a| *a > 1) {
                    message.push_str(&format!(" (attempt {attempt})"));
                }
                if ui.live {
                    bar.set_message(message);
                } else if previous != Some(status) && !is_terminal(status) {
                    // Without a terminal: one plain line per change of status (the last one
                    // is said by `finish`).
                    eprintln!("{message}");
                }
            }
            Sink::Json => print_json_line(&json!({"event": "status", "data": task})),
        }
    }

    fn finish(&self, task: &Value) {
        if let Sink::Human { ui, bar } = self {
            bar.finish_and_clear();
            let mut message = format!(
                "{} {}",
                str_of(&task["id"]),
                ui.status(str_of(&task["status"]))
            );
            if let Some(pr) = task["pr_url"].as_str() {
                message.push_str(&format!("  {pr}"));
            }
            if let Some(e) = error(&task["error"]) {
                message.push_str(&format!("  {e}"));
            } else if let Some(summary) = task["result_summary"].as_str() {
                message.push_str(&format!("  {summary}"));
            }
            eprintln!("{message}");
        }
    }

    fn clear(&self) {
        if let Sink::Human { bar, .. } = self {
            bar.finish_and_clear();
        }
    }

    fn reconnecting(&self) {
        if let Sink::Human { bar, .. } = self {
            let message = bar.message();
            if !message.ends_with(RECONNECTING) {
                bar.set_message(format!("{message}{RECONNECTING}"));
            }
        }
    }
}

/// Prints one JSON object on its own line and flushes, so a reader sees it at once.
pub fn print_json_line(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// How one connection of the stream ended.
enum Ended {
    /// The server closed the stream after a terminal status: done.
    Done,
    /// Dropped, timed out or ended early (an `error` event): connect again.
    Dropped(ApiError),
}

/// Follows a task until it ends; returns the task as it ended. Refusals of the API (`404`,
/// `401`, `429`) end it at once; a lost connection is resumed.
pub async fn follow(api: &Api, task_id: &str, ui: Ui, json: bool) -> Result<Value, ApiError> {
    let sink = Sink::new(ui, json, task_id);
    let mut last_id: Option<String> = None;
    let mut task: Option<Value> = None;
    let mut failures = 0u32;
    let mut connected = false;
    loop {
        let received_before = (last_id.clone(), task.clone());
        let ended = match api.stream(task_id, last_id.as_deref()).await {
            Ok(response) => {
                connected = true;
                read(response, &sink, &mut last_id, &mut task).await
            }
            // Reconnect to a server that was there; one that never answered is an error now.
            Err(e @ ApiError::Unreachable { .. }) if connected => Ended::Dropped(e),
            Err(e) => {
                sink.clear();
                return Err(e);
            }
        };
        let ended_task = task
            .as_ref()
            .filter(|t| is_terminal(str_of(&t["status"])))
            .cloned();
        let e = match (ended, ended_task) {
            (Ended::Done, Some(done)) => {
                sink.finish(&done);
                return Ok(done);
            }
            // The AWS log-stream function ends its response before its time limit runs out.
            (Ended::Done, None) => {
                ApiError::Unexpected("the log stream ended before the task did".to_owned())
            }
            (Ended::Dropped(e), _) => e,
        };
        if (last_id.clone(), task.clone()) == received_before {
            failures += 1;
        } else {
            failures = 1;
        }
        if failures >= MAX_FAILURES {
            sink.clear();
            return Err(e);
        }
        sink.reconnecting();
        let backoff = Duration::from_millis(250 * 2u64.pow(failures.min(5)));
        tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
    }
}

/// Reads one connection's events until it ends.
async fn read(
    mut response: reqwest::Response,
    sink: &Sink,
    last_id: &mut Option<String>,
    task: &mut Option<Value>,
) -> Ended {
    let url = response.url().to_string();
    let mut parser = Parser::default();
    loop {
        let chunk = match tokio::time::timeout(READ_TIMEOUT, response.chunk()).await {
            Err(_) => {
                return Ended::Dropped(ApiError::Unreachable {
                    url,
                    reason: "the log stream went silent".to_owned(),
                });
            }
            Ok(Err(e)) => return Ended::Dropped(unreachable(&url, &e)),
            Ok(Ok(None)) => return Ended::Done,
            Ok(Ok(Some(chunk))) => chunk,
        };
        for event in parser.feed(&chunk) {
            match event.event.as_str() {
                "log" => {
                    if let Ok(line) = serde_json::from_str::<Value>(&event.data) {
                        sink.line(&event, &line);
                    }
                    if event.id.is_some() {
                        last_id.clone_from(&event.id);
                    }
                }
                "status" => {
                    if let Ok(now) = serde_json::from_str::<Value>(&event.data) {
                        let previous = task.as_ref().map(|t| str_of(&t["status"]).to_owned());
                        sink.status(&now, previous.as_deref());
                        *task = Some(now);
                    }
                }
                "error" => {
                    let message = serde_json::from_str::<Value>(&event.data)
                        .ok()
                        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "the stream failed".to_owned());
                    return Ended::Dropped(ApiError::Unexpected(message));
                }
                _ => {}
            }
        }
    }
}
