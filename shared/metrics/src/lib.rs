//! Pithy Jaunt's product metrics: derived once, recorded as CloudWatch Embedded Metric Format
//! (EMF) lines on AWS and in a Prometheus registry in `pj serve`.
//!
//! [`created_observations`] and [`change_observations`] derive the product metrics from a
//! task's creation and from each stored change of a task, so every function and both
//! deployments count the same things the same way. Two sinks record them:
//!
//! - [`Metrics`] writes EMF lines ([`created_metrics`], [`transition_metrics`]). A Lambda
//!   function's stdout goes to CloudWatch Logs, which turns every log line that is an EMF
//!   document into metric values: no API call, no IAM permission, no time spent on the request.
//! - [`prometheus::Exporter`] keeps them, labelled by task kind and outcome, for `GET /metrics`
//!   of `pj serve`, with the runner callbacks and the queues.
//!
//! The names below are the only place they are spelled. `template.yaml` (alarms), the dashboard
//! in `infra/dashboards/` and `infra/README.md` use exactly these; a test of this crate checks
//! the first two.
//!
//! ```
//! use pj_metrics::{Metrics, Unit, names};
//!
//! let metrics = Metrics::with_writer(pj_metrics::NAMESPACE, "api", Vec::new());
//! metrics.emit_product(&[(names::TASK_CREATED, 1.0, Unit::Count)]).unwrap();
//! let line: serde_json::Value = serde_json::from_slice(&metrics.into_inner()).unwrap();
//! assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "PithyJaunt");
//! assert_eq!(line["task_created"], 1.0);
//! ```

mod emf;
pub mod prometheus;
mod task;

pub use emf::{Datum, Metrics, Unit};
pub use task::{
    Metric, Observation, change_observations, created_metrics, created_observations,
    transition_metrics,
};

/// The CloudWatch namespace of every metric, unless a deployment names another in
/// [`NAMESPACE_ENV`] (a second stack in the same account and region).
pub const NAMESPACE: &str = "PithyJaunt";

/// The environment variable that overrides [`NAMESPACE`]; `template.yaml` sets it from its
/// `MetricsNamespace` parameter.
pub const NAMESPACE_ENV: &str = "PJ_METRICS_NAMESPACE";

/// The dimension that names the Lambda function, for per-function metrics
/// ([`Metrics::emit_for_function`]). The product metrics carry no dimension, so the dashboard
/// and the alarms read one series each.
pub const FUNCTION_DIMENSION: &str = "Function";

/// The namespace of this deployment: [`NAMESPACE_ENV`] when set and not empty, else
/// [`NAMESPACE`].
pub fn namespace_from_env() -> String {
    std::env::var(NAMESPACE_ENV)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| NAMESPACE.to_owned())
}

/// The product metrics' names.
pub mod names {
    /// A task was created (`Count`).
    pub const TASK_CREATED: &str = "task_created";
    /// A task ended `completed` (`Count`).
    pub const TASK_COMPLETED: &str = "task_completed";
    /// A task ended `failed`, its attempts used up or an agent failure (`Count`).
    pub const TASK_FAILED: &str = "task_failed";
    /// A task ended `needs_review` (`Count`).
    pub const TASK_NEEDS_REVIEW: &str = "task_needs_review";
    /// A user cancelled a task that had not ended (`Count`).
    pub const TASK_CANCELLED: &str = "task_cancelled";
    /// An attempt was asked for: a task's first (when it is created to run, executed, approved
    /// or due) and every later one (`Count`).
    pub const ATTEMPT_REQUESTED: &str = "attempt_requested";
    /// A new attempt of a task that had one: an automatic retry after an infrastructure failure,
    /// or a user's retry (`Count`).
    pub const ATTEMPT_RETRIED: &str = "attempt_retried";
    /// An attempt passed its deadline (`Count`).
    pub const ATTEMPT_TIMED_OUT: &str = "attempt_timed_out";
    /// A runner could not be started: each deferred try, and each attempt that failed with
    /// `dispatch_failed` (`Count`).
    pub const DISPATCH_ERRORS: &str = "dispatch_errors";
    /// From an attempt's dispatch request to the runner accepting it (`Milliseconds`).
    pub const DISPATCH_LATENCY_MS: &str = "dispatch_latency_ms";
    /// From the dispatch request of a run (its first attempt and the automatic retries that
    /// followed) to the task's outcome; no time waiting for a schedule, a review or a user's retry
    /// (`Milliseconds`). Completed, failed and needs_review tasks.
    pub const TASK_DURATION_MS: &str = "task_duration_ms";
    /// From `task.started` to the outcome of the attempt that ended the task (`Milliseconds`).
    pub const RUNNER_DURATION_MS: &str = "runner_duration_ms";
    /// Input tokens the runners reported (`Count`).
    pub const TOKENS_INPUT: &str = "tokens_input";
    /// Output tokens the runners reported (`Count`).
    pub const TOKENS_OUTPUT: &str = "tokens_output";
    /// Cost in US dollars the runners reported, where the model's price is known (`None`).
    pub const COST_USD: &str = "cost_usd";
    /// An attempt whose first model reply's edits applied (`Count`); with
    /// [`PATCH_FIRST_ROUND_REJECTED`], the first-round apply rate.
    pub const PATCH_FIRST_ROUND_APPLIED: &str = "patch_first_round_applied";
    /// An attempt whose first model reply's edits did not apply (`Count`).
    pub const PATCH_FIRST_ROUND_REJECTED: &str = "patch_first_round_rejected";
}

/// Every product metric with its unit, in the order `infra/README.md` lists them.
pub const PRODUCT_METRICS: [(&str, Unit); Metric::ALL.len()] = {
    let mut out = [("", Unit::Count); Metric::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = (Metric::ALL[i].name(), Metric::ALL[i].unit());
        i += 1;
    }
    out
};

#[cfg(test)]
mod deployment_tests;
