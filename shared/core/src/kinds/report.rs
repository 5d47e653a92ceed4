//! `report`: figures over the owner's own tasks in a date range, read through the stores'
//! per-owner, newest-first indexes (never a scan of everyone's data).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::engine::Settings;
use crate::kinds::config::{ReportConfig, ReportKind};
use crate::kinds::message::{outcome_of_message, webhook_payload};
use crate::kinds::run::{AttemptLog, StepTimer};
use crate::machine::KindOutcome;
use crate::messages::{
    Channel, Courier, MessageContent, MessageCursor, MessageFilter, MessageId, MessageStatus,
    MessageStore, OutboundMessage, destination,
};
use crate::ports::{ListCursor, TaskStore};
use crate::task::{ExecState, Task, TaskError, TaskStatus, codes};
use crate::time::rfc3339;

/// The most tasks (and messages) one report reads; beyond it the report says it is partial.
pub const MAX_REPORT_ITEMS: usize = 10_000;
const PAGE: usize = 100;

/// The range a report covers: its config's, else the seven days before it runs.
pub fn range(config: &ReportConfig, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let to = config.to.unwrap_or(now);
    let from = config.from.unwrap_or(to - chrono::Duration::days(7));
    (from, to)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    config: &ReportConfig,
    task: &Task,
    store: &dyn TaskStore,
    messages: &dyn MessageStore,
    courier: &Courier,
    settings: &Settings,
    now: DateTime<Utc>,
    log: &mut AttemptLog,
) -> KindOutcome {
    let (from, to) = range(config, now);
    log.system(format!(
        "{} from {} to {}",
        config.report.as_str(),
        rfc3339(from),
        rfc3339(to)
    ));
    log.flush().await;
    let step = StepTimer::start("compute");
    let computed = match config.report {
        ReportKind::TaskSummary => owner_tasks(store, task, from, to)
            .await
            .map(|(tasks, partial)| task_summary(&tasks, partial)),
        ReportKind::ExecutionStats => owner_tasks(store, task, from, to)
            .await
            .map(|(tasks, partial)| execution_stats(&tasks, partial)),
        ReportKind::WebhookActivity => match owner_messages(messages, task, from, to).await {
            Ok((found, partial_m)) => owner_tasks(store, task, from, to)
                .await
                .map(|(tasks, partial_t)| webhook_activity(&found, &tasks, partial_m || partial_t)),
            Err(e) => Err(e),
        },
    };
    let (mut result, summary) = match computed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(task_id = %task.id, error = format!("{e:#}"), "report query failed");
            return KindOutcome {
                steps: vec![step.failed("the report's data could not be read")],
                error: Some(TaskError::new(
                    codes::PROVIDER_ERROR,
                    "the report's data could not be read",
                )),
                retry_after: Some(crate::kinds::run::automatic_retry_delay(task, None)),
                ..KindOutcome::default()
            };
        }
    };
    if let Some(obj) = result.as_object_mut() {
        obj.insert("report".into(), config.report.as_str().into());
        obj.insert("from".into(), rfc3339(from).into());
        obj.insert("to".into(), rfc3339(to).into());
    }
    let summary = format!(
        "{} ({} to {}): {summary}",
        config.report.as_str(),
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M")
    );
    log.system(&summary);
    let mut steps = vec![step.ok(None)];
    let mut outcome = KindOutcome {
        summary: Some(summary.clone()),
        ..KindOutcome::default()
    };
    if let Some(channel) = &config.deliver {
        let Some((kind, to_addr)) = destination(channel, task.notification_address()) else {
            outcome.error = Some(TaskError::new(
                codes::INVALID_CONFIG,
                "the report's email has no address to go to",
            ));
            outcome.result = Some(result);
            outcome.steps = steps;
            return outcome;
        };
        let message = OutboundMessage::new(
            MessageId::derive(&task.id, task.attempt, "report"),
            task.owner.clone(),
            task.id.clone(),
            task.attempt,
            kind,
            to_addr,
            matches!(kind, Channel::Email).then(|| format!("[Pithy Jaunt] Report: {}", task.title)),
            MessageContent {
                text: format!("{summary}\n"),
                html: None,
                payload: matches!(kind, Channel::Webhook)
                    .then(|| webhook_payload("report", task, &summary)),
            },
            now,
            settings.message_keep_trying,
        );
        let sent = match courier.post(message).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(task_id = %task.id, error = format!("{e:#}"), "could not record the report's message");
                outcome.error = Some(TaskError::new(
                    codes::DELIVERY_FAILED,
                    "the report's message could not be recorded",
                ));
                outcome.retry_after = Some(crate::kinds::run::automatic_retry_delay(task, None));
                outcome.result = Some(result);
                outcome.steps = steps;
                return outcome;
            }
        };
        let delivered = outcome_of_message(&sent, StepTimer::start("deliver"), log);
        if let Some(obj) = result.as_object_mut() {
            obj.insert(
                "delivery".into(),
                delivered.result.clone().unwrap_or(Value::Null),
            );
        }
        steps.extend(delivered.steps);
        outcome.error = delivered.error;
    }
    outcome.result = Some(result);
    outcome.steps = steps;
    outcome
}

/// The owner's tasks created in `[from, to)`, but the report itself; and whether there were
/// more than a report reads.
async fn owner_tasks(
    store: &dyn TaskStore,
    report: &Task,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<(Vec<Task>, bool)> {
    let mut out = Vec::new();
    // Newest first: start just after `to` and stop at the first task older than `from`.
    let mut after = Some(ListCursor {
        created_at: to,
        id: crate::ids::TaskId::parse("tsk_0").expect("a valid id"),
    });
    loop {
        let page = store
            .list(&report.owner, None, PAGE, after.as_ref())
            .await?;
        let full = page.len() == PAGE;
        for task in page {
            if task.created_at < from {
                return Ok((out, false));
            }
            after = Some(ListCursor {
                created_at: task.created_at,
                id: task.id.clone(),
            });
            if task.id != report.id && task.owner == report.owner && task.created_at < to {
                out.push(task);
                if out.len() >= MAX_REPORT_ITEMS {
                    return Ok((out, true));
                }
            }
        }
        if !full {
            return Ok((out, false));
        }
    }
}

/// The owner's messages created in `[from, to)`.
async fn owner_messages(
    store: &dyn MessageStore,
    report: &Task,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<(Vec<OutboundMessage>, bool)> {
    let mut out = Vec::new();
    let mut after: Option<MessageCursor> = None;
    loop {
        let page = store
            .list(
                &report.owner,
                &MessageFilter::default(),
                PAGE,
                after.as_ref(),
            )
            .await?;
        let full = page.len() == PAGE;
        for message in page {
            if message.created_at < from {
                return Ok((out, false));
            }
            after = Some(MessageCursor {
                created_at: message.created_at,
                id: message.id.clone(),
            });
            if message.created_at < to && message.owner == report.owner {
                out.push(message);
                if out.len() >= MAX_REPORT_ITEMS {
                    return Ok((out, true));
                }
            }
        }
        if !full {
            return Ok((out, false));
        }
    }
}

fn task_summary(tasks: &[Task], partial: bool) -> (Value, String) {
    let mut by_status: BTreeMap<&str, u64> =
        TaskStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for t in tasks {
        *by_status.entry(t.status.as_str()).or_default() += 1;
        *by_kind.entry(t.kind.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by_status
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let summary = format!(
        "{} task(s){}{}",
        tasks.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        },
        if partial { " (partial)" } else { "" }
    );
    (
        json!({"total": tasks.len(), "by_status": by_status, "by_kind": by_kind, "partial": partial}),
        summary,
    )
}

/// The `q`-quantile (0..=1) of sorted values, by the nearest rank.
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn execution_stats(tasks: &[Task], partial: bool) -> (Value, String) {
    #[derive(Default)]
    struct Kind {
        attempts: u64,
        finished: u64,
        completed: u64,
        durations: Vec<u64>,
    }
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    let (mut input_tokens, mut output_tokens, mut cost, mut cost_known) =
        (0u64, 0u64, 0.0f64, true);
    for t in tasks {
        let k = kinds.entry(t.kind.as_str()).or_default();
        for e in &t.executions {
            k.attempts += 1;
            if e.state.is_finished() && e.state != ExecState::Cancelled {
                k.finished += 1;
                if e.state == ExecState::Completed {
                    k.completed += 1;
                }
            }
            if let Some(ms) = e.duration_ms() {
                k.durations.push(ms);
            }
        }
        input_tokens += t.usage.input_tokens;
        output_tokens += t.usage.output_tokens;
        match t.usage.cost_usd {
            Some(c) => cost += c,
            None => cost_known = false,
        }
    }
    let (mut attempts, mut finished, mut completed) = (0u64, 0u64, 0u64);
    let mut by_kind = serde_json::Map::new();
    for (name, k) in &mut kinds {
        k.durations.sort_unstable();
        attempts += k.attempts;
        finished += k.finished;
        completed += k.completed;
        by_kind.insert(
            (*name).to_owned(),
            json!({
                "attempts": k.attempts,
                "success_rate": rate(k.completed, k.finished),
                "duration_ms_p50": quantile(&k.durations, 0.5),
                "duration_ms_p95": quantile(&k.durations, 0.95),
            }),
        );
    }
    let success = rate(completed, finished);
    let summary = format!(
        "{attempts} attempt(s), {} succeeded, {input_tokens} input and {output_tokens} output tokens{}{}",
        success.map_or("none finished".to_owned(), |r| format!("{:.0}%", r * 100.0)),
        if cost_known {
            format!(", ${cost:.4}")
        } else {
            String::new()
        },
        if partial { " (partial)" } else { "" }
    );
    (
        json!({
            "attempts": attempts, "success_rate": success, "by_kind": by_kind,
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "cost_usd": cost_known.then_some(cost), "partial": partial,
        }),
        summary,
    )
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn webhook_activity(
    messages: &[OutboundMessage],
    tasks: &[Task],
    partial: bool,
) -> (Value, String) {
    let mut by_channel = serde_json::Map::new();
    for channel in Channel::ALL {
        let counts: BTreeMap<&str, usize> = MessageStatus::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    messages
                        .iter()
                        .filter(|m| m.channel == channel && m.status == *s)
                        .count(),
                )
            })
            .collect();
        by_channel.insert(channel.as_str().into(), json!(counts));
    }
    let accepted: u64 = tasks.iter().map(|t| u64::from(t.callbacks.accepted)).sum();
    let refused: u64 = tasks.iter().map(|t| u64::from(t.callbacks.refused)).sum();
    let sent = messages
        .iter()
        .filter(|m| m.status == MessageStatus::Sent)
        .count();
    let failed = messages
        .iter()
        .filter(|m| m.status == MessageStatus::Failed)
        .count();
    let summary = format!(
        "{} outbound message(s): {sent} sent, {failed} failed, {} pending; {accepted} callback(s) accepted, {refused} refused{}",
        messages.len(),
        messages.len() - sent - failed,
        if partial { " (partial)" } else { "" }
    );
    (
        json!({
            "messages": {"total": messages.len(), "by_channel": by_channel},
            "callbacks": {"accepted": accepted, "refused": refused},
            "partial": partial,
        }),
        summary,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_the_nearest_rank() {
        let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.95), Some(100));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_report_without_dates_covers_the_seven_days_before_it_runs() {
        let now = crate::time::parse_rfc3339("2026-12-02T10:00:00Z").unwrap();
        let config = ReportConfig {
            report: ReportKind::TaskSummary,
            from: None,
            to: None,
            deliver: None,
        };
        let (from, to) = range(&config, now);
        assert_eq!(to, now);
        assert_eq!(to - from, chrono::Duration::days(7));
    }
}
