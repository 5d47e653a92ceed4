//! Sample data for the suites: tasks, owners, receipts and log lines unique to one run.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use pj_core::create::{NewTask, RepoPolicy};
use pj_core::ids::{Attempt, TaskId, UserId, WebhookId};
use pj_core::machine::Policy;
use pj_core::ports::{IdempotencyRecord, LogLine, LogStream, WebhookReceipt};
use pj_core::task::Task;
use serde_json::json;

/// A fresh unique token: a time-ordered id with 80 random bits.
pub fn unique() -> String {
    let id = TaskId::generate(Utc::now());
    id.as_str().trim_start_matches("tsk_").to_owned()
}

/// An owner no other run uses.
pub fn owner() -> UserId {
    match UserId::parse(&format!("contract-{}", unique())) {
        Ok(owner) => owner,
        Err(e) => panic!("a generated user id does not parse: {e:?}"),
    }
}

/// Now, to the millisecond: the precision every store keeps timestamps at (the contract's
/// RFC 3339 has milliseconds), so a round trip compares equal.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or(now)
}

/// A validated create request; each distinct `prompt` has its own fingerprint.
pub fn request(prompt: &str) -> NewTask {
    let body = json!({
        "repo_url": "https://github.com/pithy-jaunt/contract",
        "prompt": prompt,
        "title": "Contract sample",
        "model": {"provider": "anthropic", "name": "claude-sonnet-4-5"},
        "notify_email": "contract@example.com",
        "context": {"coderabbit_analysis": "naïve ünïcode ✓"},
    });
    match NewTask::parse(&body, RepoPolicy::HttpsOnly) {
        Ok(new) => new,
        Err(e) => panic!("the sample request does not validate: {e:?}"),
    }
}

/// A new task of `owner` created at `at`, as `POST /tasks` makes it (queued, its first
/// attempt requested, so it has executions and a `sweep_at`).
pub fn task(owner: &UserId, at: DateTime<Utc>) -> Task {
    task_from(request("Fix the flaky test"), owner, at)
}

/// The task a request makes.
pub fn task_from(new: NewTask, owner: &UserId, at: DateTime<Utc>) -> Task {
    let (task, _effects) = new.into_task(
        owner.clone(),
        Some("owner@example.com".into()),
        3,
        at,
        &Policy::default(),
    );
    task
}

/// The idempotency record of `new` under `key`, live until `expires_at`.
pub fn idempotency(
    owner: &UserId,
    key: &str,
    new: &NewTask,
    expires_at: DateTime<Utc>,
) -> IdempotencyRecord {
    IdempotencyRecord {
        owner: owner.clone(),
        key: key.to_owned(),
        fingerprint: new.fingerprint.clone(),
        expires_at,
    }
}

/// A `webhook-id` no other run uses, remembered until `expires_at`.
pub fn receipt(expires_at: DateTime<Utc>) -> WebhookReceipt {
    WebhookReceipt {
        id: WebhookId::generate(),
        expires_at,
    }
}

/// The next version of `task`, changed visibly, ready for `update(.., task.version, ..)`.
pub fn next_version(task: &Task, at: DateTime<Utc>) -> Task {
    let mut next = task.clone();
    next.version = task.version + 1;
    next.title = format!("{} (v{})", base_title(&task.title), next.version);
    next.updated_at = at;
    next
}

fn base_title(title: &str) -> &str {
    title.split(" (v").next().unwrap_or(title)
}

/// A log line.
pub fn line(attempt: u32, seq: u64, text: &str) -> LogLine {
    let stream = match seq % 3 {
        0 => LogStream::Stdout,
        1 => LogStream::Stderr,
        _ => LogStream::System,
    };
    LogLine {
        attempt: Attempt(attempt),
        seq,
        ts: now(),
        stream,
        text: text.to_owned(),
    }
}
