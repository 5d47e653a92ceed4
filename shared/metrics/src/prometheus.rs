//! The product metrics, the runner callbacks and the queues as a Prometheus registry: what
//! `GET /metrics` of `pj serve` answers, in the Prometheus text format (version 0.0.4).
//!
//! The product metrics are the ones the EMF lines carry on AWS, from the same
//! [`Observation`]s, labelled here by the task's `kind` and, for an outcome, its `status`:
//!
//! | Prometheus | from |
//! | --- | --- |
//! | `pj_tasks_created_total{kind}` | `task_created` |
//! | `pj_tasks_finished_total{kind,status}` | `task_completed`, `task_failed`, `task_needs_review`, `task_cancelled` |
//! | `pj_attempts_total{kind}` | `attempt_requested` |
//! | `pj_attempts_retried_total{kind}` | `attempt_retried` |
//! | `pj_attempts_timed_out_total{kind}` | `attempt_timed_out` |
//! | `pj_dispatch_errors_total{kind}` | `dispatch_errors` |
//! | `pj_dispatch_latency_seconds{kind}` (histogram) | `dispatch_latency_ms` |
//! | `pj_task_duration_seconds{kind,status}` (histogram) | `task_duration_ms` |
//! | `pj_runner_duration_seconds{kind,status}` (histogram) | `runner_duration_ms` |
//! | `pj_tokens_total{kind,type}` (`input`, `output`) | `tokens_input`, `tokens_output` |
//! | `pj_cost_usd_total{kind}` | `cost_usd` |
//! | `pj_patch_first_round_total{kind,applied}` (`true`, `false`) | `patch_first_round_applied`, `patch_first_round_rejected` |
//!
//! Besides: `pj_callbacks_accepted_total{callback}` and `pj_callbacks_refused_total{callback,reason}`
//! (`callback` is `event` or `logs`, `reason` the error code of the answer),
//! `pj_outbound_messages_total{channel,status}` (outbound messages that reached their final
//! status: `channel` is `email`, `webhook` or `sms`, `status` `sent` or `failed`), and per queue,
//! read when scraped, `pj_queue_depth{queue}` (messages receivable now) and
//! `pj_queue_oldest_age_seconds{queue}` (how long the one receivable the longest has waited).

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use pj_core::Task;
use pj_core::engine::{Callback, Observer};
use pj_core::messages::{Channel, MessageObserver, MessageStatus, OutboundMessage};
use pj_core::ports::{QueueInspector, QueueName, QueueStats};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::task::{Metric, Observation, change_observations, created_observations};

/// The `Content-Type` of what [`Exporter::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Task kinds that get a label value of their own; the kinds seen after these are counted as
/// [`OTHER_KIND`], so whoever creates tasks cannot grow the exposition without bound.
pub const MAX_KINDS: usize = 32;
/// The `kind` label of the kinds beyond [`MAX_KINDS`].
pub const OTHER_KIND: &str = "other";

/// Bucket bounds of the duration histograms, in seconds: a tenth of a second to two hours.
const DURATION_BUCKETS: [f64; 15] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    kind: String,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    kind: String,
    r#type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FirstRoundLabels {
    kind: String,
    applied: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallbackLabels {
    callback: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    callback: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MessageLabels {
    channel: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

type Counts<L> = Family<L, Counter>;
type Durations<L> = Family<L, Histogram, fn() -> Histogram>;

fn durations<L: Clone + std::hash::Hash + Eq>() -> Durations<L> {
    Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS))
}

/// Keeps the metrics of `pj serve` and writes them out when scraped. Give it to the engine as
/// its [`Observer`]; it reads the queues through `queues` on every [`Exporter::render`].
pub struct Exporter {
    registry: Registry,
    tasks_created: Counts<KindLabels>,
    tasks_finished: Counts<OutcomeLabels>,
    attempts: Counts<KindLabels>,
    attempts_retried: Counts<KindLabels>,
    attempts_timed_out: Counts<KindLabels>,
    dispatch_errors: Counts<KindLabels>,
    dispatch_latency: Durations<KindLabels>,
    task_duration: Durations<OutcomeLabels>,
    runner_duration: Durations<OutcomeLabels>,
    tokens: Counts<TokenLabels>,
    cost_usd: Family<KindLabels, Counter<f64, AtomicU64>>,
    patch_first_round: Counts<FirstRoundLabels>,
    callbacks_accepted: Counts<CallbackLabels>,
    callbacks_refused: Counts<RefusalLabels>,
    outbound_messages: Counts<MessageLabels>,
    queue_depth: Family<QueueLabels, Gauge>,
    queue_age: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    kinds: Mutex<BTreeSet<String>>,
    queues: Option<Arc<dyn QueueInspector>>,
}

impl Exporter {
    /// An exporter with every metric at zero; without `queues` it exports no queue gauges.
    pub fn new(queues: Option<Arc<dyn QueueInspector>>) -> Self {
        let mut e = Exporter {
            registry: Registry::default(),
            tasks_created: Family::default(),
            tasks_finished: Family::default(),
            attempts: Family::default(),
            attempts_retried: Family::default(),
            attempts_timed_out: Family::default(),
            dispatch_errors: Family::default(),
            dispatch_latency: durations(),
            task_duration: durations(),
            runner_duration: durations(),
            tokens: Family::default(),
            cost_usd: Family::default(),
            patch_first_round: Family::default(),
            callbacks_accepted: Family::default(),
            callbacks_refused: Family::default(),
            outbound_messages: Family::default(),
            queue_depth: Family::default(),
            queue_age: Family::default(),
            kinds: Mutex::new(BTreeSet::new()),
            queues,
        };
        let registry = &mut e.registry;
        registry.register("pj_tasks_created", "Tasks created", e.tasks_created.clone());
        registry.register(
            "pj_tasks_finished",
            "Tasks that ended, by the status they ended in (cancelled included)",
            e.tasks_finished.clone(),
        );
        registry.register(
            "pj_attempts",
            "Attempts asked for: a task's first and every retry",
            e.attempts.clone(),
        );
        registry.register(
            "pj_attempts_retried",
            "New attempts of a task that had one: automatic after an infrastructure failure, or a user's retry",
            e.attempts_retried.clone(),
        );
        registry.register(
            "pj_attempts_timed_out",
            "Attempts that passed their deadline",
            e.attempts_timed_out.clone(),
        );
        registry.register(
            "pj_dispatch_errors",
            "Runners that could not be started: each deferred try, and each attempt failed with dispatch_failed",
            e.dispatch_errors.clone(),
        );
        registry.register(
            "pj_dispatch_latency_seconds",
            "From an attempt's dispatch request to the runner accepting it",
            e.dispatch_latency.clone(),
        );
        registry.register(
            "pj_task_duration_seconds",
            "From the dispatch request of a run (its first attempt and the automatic retries after it) to the task's outcome",
            e.task_duration.clone(),
        );
        registry.register(
            "pj_runner_duration_seconds",
            "From task.started to the outcome, for the attempt that ended the task",
            e.runner_duration.clone(),
        );
        registry.register(
            "pj_tokens",
            "Tokens the runners reported, by type (input, output)",
            e.tokens.clone(),
        );
        registry.register(
            "pj_cost_usd",
            "US dollars the runners reported, where the model's price is known",
            e.cost_usd.clone(),
        );
        registry.register(
            "pj_patch_first_round",
            "Attempts by whether their first model reply's edits applied (the first-round apply rate)",
            e.patch_first_round.clone(),
        );
        registry.register(
            "pj_callbacks_accepted",
            "Runner callbacks answered 2xx, by endpoint (event, logs)",
            e.callbacks_accepted.clone(),
        );
        registry.register(
            "pj_callbacks_refused",
            "Runner callbacks refused, by endpoint and the error code of the answer",
            e.callbacks_refused.clone(),
        );
        registry.register(
            "pj_outbound_messages",
            "Outbound messages (email, webhook, SMS) that reached their final status, sent or failed",
            e.outbound_messages.clone(),
        );
        registry.register(
            "pj_queue_depth",
            "Messages of the queue that can be received now",
            e.queue_depth.clone(),
        );
        registry.register(
            "pj_queue_oldest_age_seconds",
            "How long the message receivable the longest has waited to be taken; 0 when none is",
            e.queue_age.clone(),
        );
        // Every endpoint from the start, so a rate over them is defined before the first call.
        for callback in Callback::ALL {
            let _zero = e.callbacks_accepted.get_or_create(&CallbackLabels {
                callback: callback.as_str(),
            });
        }
        // Every channel and final status from the start, so a rate over them is defined before
        // the first message.
        for channel in Channel::ALL {
            for status in [MessageStatus::Sent, MessageStatus::Failed] {
                let _zero = e.outbound_messages.get_or_create(&MessageLabels {
                    channel: channel.as_str(),
                    status: status.as_str(),
                });
            }
        }
        e
    }

    /// Adds what one creation or change of a task tells.
    pub fn record(&self, observations: &[Observation<'_>]) {
        for o in observations {
            let kind = self.kind_label(o.kind);
            let status = o.outcome.map_or("unknown", |s| s.as_str());
            let count = o.value.max(0.0).round() as u64;
            let seconds = o.value / 1_000.0;
            let by_kind = || KindLabels { kind: kind.clone() };
            let by_outcome = || OutcomeLabels {
                kind: kind.clone(),
                status,
            };
            let tokens = |r#type| TokenLabels {
                kind: kind.clone(),
                r#type,
            };
            // Every metric is named here: a new one does not compile until it is exported.
            match o.metric {
                Metric::TaskCreated => {
                    self.tasks_created.get_or_create(&by_kind()).inc_by(count);
                }
                Metric::TaskCompleted
                | Metric::TaskFailed
                | Metric::TaskNeedsReview
                | Metric::TaskCancelled => {
                    self.tasks_finished
                        .get_or_create(&by_outcome())
                        .inc_by(count);
                }
                Metric::AttemptRequested => {
                    self.attempts.get_or_create(&by_kind()).inc_by(count);
                }
                Metric::AttemptRetried => {
                    self.attempts_retried
                        .get_or_create(&by_kind())
                        .inc_by(count);
                }
                Metric::AttemptTimedOut => {
                    self.attempts_timed_out
                        .get_or_create(&by_kind())
                        .inc_by(count);
                }
                Metric::DispatchErrors => {
                    self.dispatch_errors.get_or_create(&by_kind()).inc_by(count);
                }
                Metric::DispatchLatency => {
                    self.dispatch_latency
                        .get_or_create(&by_kind())
                        .observe(seconds);
                }
                Metric::TaskDuration => {
                    self.task_duration
                        .get_or_create(&by_outcome())
                        .observe(seconds);
                }
                Metric::RunnerDuration => {
                    self.runner_duration
                        .get_or_create(&by_outcome())
                        .observe(seconds);
                }
                Metric::TokensInput => {
                    self.tokens.get_or_create(&tokens("input")).inc_by(count);
                }
                Metric::TokensOutput => {
                    self.tokens.get_or_create(&tokens("output")).inc_by(count);
                }
                Metric::CostUsd => {
                    if o.value.is_finite() && o.value > 0.0 {
                        self.cost_usd.get_or_create(&by_kind()).inc_by(o.value);
                    }
                }
                Metric::PatchFirstRoundApplied | Metric::PatchFirstRoundRejected => {
                    let applied = if o.metric == Metric::PatchFirstRoundApplied {
                        "true"
                    } else {
                        "false"
                    };
                    self.patch_first_round
                        .get_or_create(&FirstRoundLabels {
                            kind: kind.clone(),
                            applied,
                        })
                        .inc_by(count);
                }
            }
        }
    }

    /// Counts one answered runner callback: `refused` is the error code of a refusal.
    pub fn record_callback(&self, callback: Callback, refused: Option<&'static str>) {
        let callback = callback.as_str();
        match refused {
            None => {
                self.callbacks_accepted
                    .get_or_create(&CallbackLabels { callback })
                    .inc();
            }
            Some(reason) => {
                self.callbacks_refused
                    .get_or_create(&RefusalLabels { callback, reason })
                    .inc();
            }
        }
    }

    /// Counts one outbound message that reached its final status (a pending one is not counted).
    pub fn record_message(&self, channel: Channel, status: MessageStatus) {
        if status == MessageStatus::Pending {
            return;
        }
        self.outbound_messages
            .get_or_create(&MessageLabels {
                channel: channel.as_str(),
                status: status.as_str(),
            })
            .inc();
    }

    /// Sets the gauges of one queue.
    pub fn record_queue(&self, queue: QueueName, stats: &QueueStats) {
        let labels = QueueLabels {
            queue: queue.as_str(),
        };
        self.queue_depth
            .get_or_create(&labels)
            .set(i64::try_from(stats.visible).unwrap_or(i64::MAX));
        self.queue_age
            .get_or_create(&labels)
            .set(stats.oldest_visible_age.map_or(0.0, |d| d.as_secs_f64()));
    }

    /// Reads the queues, then writes every metric in the Prometheus text format. A queue that
    /// cannot be read is left out of this scrape (and logged) rather than shown stale.
    pub async fn render(&self) -> String {
        if let Some(queues) = &self.queues {
            for queue in QueueName::ALL {
                match queues.stats(queue).await {
                    Ok(stats) => self.record_queue(queue, &stats),
                    Err(e) => {
                        tracing::warn!(
                            queue = queue.as_str(),
                            error = format!("{e:#}"),
                            "could not read the queue for the metrics"
                        );
                        let labels = QueueLabels {
                            queue: queue.as_str(),
                        };
                        self.queue_depth.remove(&labels);
                        self.queue_age.remove(&labels);
                    }
                }
            }
        }
        self.encode()
    }

    /// Every metric as it stands, in the Prometheus text format, without reading the queues.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the encoder's only errors are the writer's.
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }

    /// The `kind` label of a task kind: itself for the first [`MAX_KINDS`] kinds seen.
    fn kind_label(&self, kind: &str) -> String {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        if kinds.contains(kind) || (kinds.len() < MAX_KINDS && kinds.insert(kind.to_owned())) {
            kind.to_owned()
        } else {
            OTHER_KIND.to_owned()
        }
    }
}

impl Observer for Exporter {
    fn created(&self, task: &Task) {
        self.record(&created_observations(task));
    }

    fn changed(&self, before: &Task, after: &Task) {
        self.record(&change_observations(before, after));
    }

    fn callback(&self, callback: Callback, refused: Option<&'static str>) {
        self.record_callback(callback, refused);
    }
}

impl MessageObserver for Exporter {
    fn finished(&self, message: &OutboundMessage) {
        self.record_message(message.channel, message.status);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use pj_core::UserId;
    use pj_core::create::{NewTask, RepoPolicy};
    use pj_core::machine::{Input, Policy, RunnerEvent, transition};
    use pj_core::task::{RunnerKind, TaskStatus};
    use serde_json::json;

    use super::*;

    /// The value of one series (`name{labels}` exactly as written), if it is there.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().expect("a sample value"))
    }

    fn observed(
        metric: Metric,
        value: f64,
        kind: &str,
        outcome: Option<TaskStatus>,
    ) -> Observation<'_> {
        Observation {
            metric,
            value,
            kind,
            outcome,
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            runner: RunnerKind::Local,
            ..Policy::default()
        }
    }

    fn step(task: &Task, secs: i64, input: Input) -> Task {
        let mut next = transition(
            task,
            &input,
            t0() + chrono::Duration::seconds(secs),
            &policy(),
        )
        .unwrap_or_else(|r| panic!("{input:?} refused: {r:?}"))
        .task;
        next.version = task.version + 1;
        next
    }

    #[test]
    fn a_task_that_runs_to_completion_should_be_counted_by_kind_and_status() {
        let exporter = Exporter::new(None);
        let body = json!({"repo_url": "https://github.com/o/r", "prompt": "Add a README"});
        let task = NewTask::parse(&body, RepoPolicy::HttpsOnly)
            .unwrap()
            .into_task(UserId::parse("u1").unwrap(), None, 3, t0(), &policy())
            .0;
        let a1 = pj_core::ids::Attempt::FIRST;
        let mut steps = vec![task.clone()];
        for (secs, input) in [
            (1, Input::Claim { attempt: a1 }),
            (
                2,
                Input::Dispatched {
                    attempt: a1,
                    runner_ref: "pid-1".into(),
                },
            ),
            (
                4,
                Input::Runner {
                    attempt: a1,
                    event: RunnerEvent::Started,
                },
            ),
            (
                12,
                Input::Runner {
                    attempt: a1,
                    event: RunnerEvent::Completed {
                        branch: Some("pj/x".into()),
                        pr_url: None,
                        usage: Some(pj_core::task::Usage {
                            input_tokens: 1_200,
                            output_tokens: 300,
                            cost_usd: Some(0.25),
                            model: None,
                        }),
                        metadata: None,
                    },
                },
            ),
        ] {
            let next = step(steps.last().unwrap(), secs, input);
            steps.push(next);
        }
        exporter.created(&task);
        for pair in steps.windows(2) {
            exporter.changed(&pair[0], &pair[1]);
        }

        let text = exporter.encode();
        let kind = r#"kind="code_change""#;
        assert_eq!(
            sample(&text, &format!("pj_tasks_created_total{{{kind}}}")),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!(r#"pj_tasks_finished_total{{{kind},status="completed"}}"#)
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &format!("pj_attempts_total{{{kind}}}")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &format!("pj_attempts_retried_total{{{kind}}}")),
            None
        );
        assert_eq!(
            sample(&text, &format!("pj_dispatch_latency_seconds_sum{{{kind}}}")),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!(r#"pj_task_duration_seconds_sum{{{kind},status="completed"}}"#)
            ),
            Some(12.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"pj_runner_duration_seconds_bucket{{{kind},status="completed",le="10"}}"#
                )
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, &format!(r#"pj_tokens_total{{{kind},type="input"}}"#)),
            Some(1_200.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!(r#"pj_tokens_total{{{kind},type="output"}}"#)
            ),
            Some(300.0)
        );
        assert_eq!(
            sample(&text, &format!("pj_cost_usd_total{{{kind}}}")),
            Some(0.25)
        );
    }

    #[test]
    fn kinds_beyond_the_limit_should_be_counted_as_other() {
        let exporter = Exporter::new(None);
        let kinds: Vec<String> = (0..MAX_KINDS + 3).map(|i| format!("kind_{i}")).collect();
        for kind in &kinds {
            exporter.record(&[observed(Metric::TaskCreated, 1.0, kind, None)]);
        }
        exporter.record(&[observed(Metric::TaskCreated, 1.0, "kind_0", None)]);
        let text = exporter.encode();
        assert_eq!(
            sample(&text, r#"pj_tasks_created_total{kind="kind_0"}"#),
            Some(2.0)
        );
        let last_own = format!(r#"pj_tasks_created_total{{kind="kind_{}"}}"#, MAX_KINDS - 1);
        assert_eq!(sample(&text, &last_own), Some(1.0));
        let first_other = format!(r#"pj_tasks_created_total{{kind="kind_{MAX_KINDS}"}}"#);
        assert_eq!(sample(&text, &first_other), None);
        assert_eq!(
            sample(&text, r#"pj_tasks_created_total{kind="other"}"#),
            Some(3.0)
        );
    }

    #[test]
    fn outbound_messages_should_be_counted_by_channel_and_final_status() {
        let exporter = Exporter::new(None);
        let before = exporter.encode();
        for channel in ["email", "webhook", "sms"] {
            for status in ["sent", "failed"] {
                let series = format!(
                    r#"pj_outbound_messages_total{{channel="{channel}",status="{status}"}}"#
                );
                assert_eq!(sample(&before, &series), Some(0.0), "{series}");
            }
        }
        exporter.record_message(Channel::Webhook, MessageStatus::Sent);
        exporter.record_message(Channel::Webhook, MessageStatus::Sent);
        exporter.record_message(Channel::Email, MessageStatus::Failed);
        exporter.record_message(Channel::Sms, MessageStatus::Pending);
        let text = exporter.encode();
        assert_eq!(
            sample(
                &text,
                r#"pj_outbound_messages_total{channel="webhook",status="sent"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"pj_outbound_messages_total{channel="email",status="failed"}"#
            ),
            Some(1.0)
        );
        assert!(
            !text.contains(r#"status="pending""#),
            "a pending message is not an outcome: {text}"
        );
    }

    #[test]
    fn callbacks_should_be_counted_accepted_and_refused_by_reason() {
        let exporter = Exporter::new(None);
        let before = exporter.encode();
        assert_eq!(
            sample(&before, r#"pj_callbacks_accepted_total{callback="event"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&before, r#"pj_callbacks_accepted_total{callback="logs"}"#),
            Some(0.0)
        );
        exporter.callback(Callback::Event, None);
        exporter.callback(Callback::Event, None);
        exporter.callback(Callback::Logs, Some("unauthorized"));
        let text = exporter.encode();
        assert_eq!(
            sample(&text, r#"pj_callbacks_accepted_total{callback="event"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"pj_callbacks_refused_total{callback="logs",reason="unauthorized"}"#
            ),
            Some(1.0)
        );
    }

    #[test]
    fn the_first_round_patches_should_be_counted_by_whether_they_applied() {
        let exporter = Exporter::new(None);
        exporter.record(&[
            observed(Metric::PatchFirstRoundApplied, 1.0, "code_change", None),
            observed(Metric::PatchFirstRoundApplied, 1.0, "code_change", None),
            observed(Metric::PatchFirstRoundRejected, 1.0, "code_change", None),
        ]);
        let text = exporter.encode();
        assert_eq!(
            sample(
                &text,
                r#"pj_patch_first_round_total{kind="code_change",applied="true"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"pj_patch_first_round_total{kind="code_change",applied="false"}"#
            ),
            Some(1.0)
        );
    }

    struct Queues;

    #[async_trait]
    impl QueueInspector for Queues {
        async fn stats(&self, queue: QueueName) -> anyhow::Result<QueueStats> {
            match queue {
                QueueName::Dispatch => Ok(QueueStats {
                    visible: 3,
                    oldest_visible_age: Some(Duration::from_millis(1_500)),
                }),
                QueueName::Notify => anyhow::bail!("the database is locked"),
                QueueName::Tasks => Ok(QueueStats::default()),
            }
        }
    }

    #[tokio::test]
    async fn queues_should_be_read_when_scraped_and_left_out_when_they_cannot_be() {
        let exporter = Exporter::new(Some(Arc::new(Queues)));
        exporter.record_queue(
            QueueName::Notify,
            &QueueStats {
                visible: 7,
                oldest_visible_age: None,
            },
        );
        let text = exporter.render().await;
        assert_eq!(
            sample(&text, r#"pj_queue_depth{queue="dispatch"}"#),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, r#"pj_queue_oldest_age_seconds{queue="dispatch"}"#),
            Some(1.5)
        );
        assert_eq!(
            sample(&text, r#"pj_queue_depth{queue="notify"}"#),
            None,
            "no stale value"
        );
        assert_eq!(
            sample(&text, r#"pj_queue_depth{queue="tasks"}"#),
            Some(0.0),
            "the built-in kinds' queue is read too"
        );
    }

    #[test]
    fn the_exposition_should_be_the_prometheus_text_format() {
        let exporter = Exporter::new(None);
        exporter.record(&[
            observed(Metric::TaskCreated, 1.0, "code_change", None),
            observed(
                Metric::TaskDuration,
                1_000.0,
                "code_change",
                Some(TaskStatus::Failed),
            ),
        ]);
        let text = exporter.encode();
        assert!(
            text.contains("# TYPE pj_tasks_created_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pj_task_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "OpenMetrics, not the Prometheus text format: {text}"
        );
        assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
    }
}
