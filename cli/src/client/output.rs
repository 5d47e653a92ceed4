//! Human output: a compact table for lists, `key: value` for one task, log lines with their
//! stream. Colour only on a terminal, never under `NO_COLOR`.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use console::{Style, StyledObject};
use serde_json::Value;

/// What the terminal allows.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Colours on stdout and stderr (both terminals, `NO_COLOR` unset or empty).
    pub color: bool,
    /// stderr is a terminal: the live status line may be drawn there.
    pub live: bool,
}

impl Ui {
    pub fn detect() -> Ui {
        let stdout = std::io::stdout().is_terminal();
        let stderr = std::io::stderr().is_terminal();
        // https://no-color.org: set and not empty.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let ui = Ui {
            color: stdout && stderr && !no_color,
            live: stderr,
        };
        console::set_colors_enabled(ui.color);
        console::set_colors_enabled_stderr(ui.color);
        ui
    }

    fn paint<'a>(&self, text: &'a str, style: Style) -> StyledObject<&'a str> {
        style.apply_to(text).force_styling(self.color)
    }

    /// A status, coloured by what it means.
    pub fn status(&self, status: &str) -> String {
        let s = match status {
            "completed" => Style::new().green().bold(),
            "failed" => Style::new().red().bold(),
            "needs_review" | "pending_review" => Style::new().yellow().bold(),
            "cancelled" => Style::new().dim(),
            "running" => Style::new().cyan().bold(),
            _ => Style::new().cyan(),
        };
        self.paint(status, s).to_string()
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(text, Style::new().dim()).to_string()
    }

    fn bold(&self, text: &str) -> String {
        self.paint(text, Style::new().bold()).to_string()
    }

    /// One log line: `HH:MM:SS stream text`, the stream dimmed (stderr in red).
    pub fn log_line(&self, line: &Value) -> String {
        let ts = str_of(&line["ts"]);
        let time = DateTime::parse_from_rfc3339(ts)
            .map(|t| t.with_timezone(&Utc).format("%H:%M:%S").to_string())
            .unwrap_or_else(|_| ts.to_owned());
        let stream = str_of(&line["stream"]);
        let padded = format!("{stream:<6}");
        let stream = match stream {
            "stderr" => self.paint(&padded, Style::new().red()).to_string(),
            _ => self.dim(&padded),
        };
        format!("{} {stream} {}", self.dim(&time), str_of(&line["text"]))
    }

    /// A table: a header row, then the rows, columns padded to their widest cell (the last
    /// column is not padded). `styled` colours a cell after it was padded.
    pub fn table(
        &self,
        header: &[&str],
        rows: &[Vec<String>],
        styled: impl Fn(usize, &str) -> String,
    ) -> String {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let last = header.len() - 1;
        let pad = |i: usize, cell: &str| {
            if i == last {
                cell.to_owned()
            } else {
                format!("{cell:<width$}", width = widths[i])
            }
        };
        let mut out = String::new();
        let head: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| self.bold(&pad(i, h)))
            .collect();
        out.push_str(head.join("  ").trim_end());
        out.push('\n');
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| styled(i, &pad(i, c)))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// `key: value` lines, keys aligned.
    pub fn pairs(&self, pairs: &[(&str, String)]) -> String {
        let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in pairs {
            let key = format!("{:<width$}", format!("{key}:"));
            out.push_str(&format!("{} {value}\n", self.dim(&key)));
        }
        out
    }
}

/// A JSON string's text, or `""`.
pub fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Cuts `text` to `max` characters, marking the cut with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// How long ago an RFC 3339 time was: `42s`, `5m`, `3h`, `12d`.
pub fn age(time: &Value, now: DateTime<Utc>) -> String {
    let Ok(then) = DateTime::parse_from_rfc3339(str_of(time)) else {
        return String::new();
    };
    let secs = (now - then.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// A task's `usage`: `1200 in, 300 out tokens · $0.0048 · gpt-4.1`.
pub fn usage(usage: &Value) -> Option<String> {
    if !usage.is_object() {
        return None;
    }
    let mut parts = vec![format!(
        "{} in, {} out tokens",
        usage["input_tokens"].as_u64().unwrap_or(0),
        usage["output_tokens"].as_u64().unwrap_or(0)
    )];
    match usage["cost_usd"].as_f64() {
        Some(cost) => parts.push(format!("${cost:.4}")),
        None => parts.push("cost unknown".to_owned()),
    }
    if let Some(model) = usage["model"].as_str() {
        parts.push(model.to_owned());
    }
    Some(parts.join(" · "))
}

/// `code: message` of a task's or attempt's error.
pub fn error(error: &Value) -> Option<String> {
    let code = error["code"].as_str()?;
    Some(match error["message"].as_str() {
        Some(message) => format!("{code}: {message}"),
        None => code.to_owned(),
    })
}

/// The human view of one task (`pj show`).
pub fn task(ui: &Ui, task: &Value, now: DateTime<Utc>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let mut put = |key, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            pairs.push((key, v));
        }
    };
    let text = |key: &str| task[key].as_str().map(str::to_owned);
    put("id", text("id"));
    put("kind", text("kind"));
    put("status", text("status").map(|s| ui.status(&s)));
    put("title", text("title"));
    put("repo", text("repo_url"));
    put("base", text("base_branch"));
    put("branch", text("branch"));
    put("pr", text("pr_url"));
    put("error", error(&task["error"]));
    put("summary", text("result_summary"));
    if !task["result"].is_null() {
        let result = task["result"].to_string();
        let shown = if result.chars().count() > 400 {
            format!("{} {}", cut(&result, 400), ui.dim("(--json shows all)"))
        } else {
            result
        };
        put("result", Some(shown));
    }
    put("usage", usage(&task["usage"]));
    put(
        "attempt",
        task["attempt"]
            .as_u64()
            .map(|a| match task["max_attempts"].as_u64() {
                Some(max) => format!("{a} of {max}"),
                None => a.to_string(),
            }),
    );
    if task["requires_review"] == true {
        put("review", Some("required".to_owned()));
    }
    put("scheduled", text("scheduled_for"));
    for (key, field) in [
        ("created", "created_at"),
        ("started", "started_at"),
        ("completed", "completed_at"),
    ] {
        put(
            key,
            text(field).map(|t| format!("{t} ({} ago)", age(&task[field], now))),
        );
    }
    ui.pairs(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAIN: Ui = Ui {
        color: false,
        live: false,
    };

    #[test]
    fn ages_read_as_a_person_says_them() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T05:40:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| age(&json!(s), now);
        assert_eq!(at("2026-12-02T05:39:18.000Z"), "42s");
        assert_eq!(at("2026-12-02T05:35:00Z"), "5m");
        assert_eq!(at("2026-12-02T02:40:00Z"), "3h");
        assert_eq!(at("2026-11-20T05:40:00Z"), "12d");
        assert_eq!(at("not a time"), "");
    }

    #[test]
    fn a_table_pads_every_column_but_the_last() {
        let rows = vec![
            vec!["tsk_1".to_owned(), "queued".to_owned(), "a".to_owned()],
            vec!["tsk_22".to_owned(), "failed".to_owned(), "b c".to_owned()],
        ];
        let table = PLAIN.table(&["ID", "STATUS", "TITLE"], &rows, |_, c| c.to_owned());
        assert_eq!(
            table,
            "ID      STATUS  TITLE\ntsk_1   queued  a\ntsk_22  failed  b c\n"
        );
    }

    #[test]
    fn plain_output_has_no_escape_codes() {
        let task = json!({"id": "tsk_1", "status": "failed", "error": {"code": "patch_failed", "message": "no"},
                          "usage": {"input_tokens": 1, "output_tokens": 2, "cost_usd": null}});
        let shown = super::task(&PLAIN, &task, Utc::now());
        assert!(!shown.contains('\x1b'), "{shown:?}");
        assert!(shown.contains("error:  patch_failed: no"), "{shown}");
        assert!(
            shown.contains("1 in, 2 out tokens · cost unknown"),
            "{shown}"
        );
    }

    #[test]
    fn a_long_text_is_cut_with_a_mark() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
