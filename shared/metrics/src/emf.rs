//! Writing Embedded Metric Format documents, one JSON object per line.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::FUNCTION_DIMENSION;

/// The CloudWatch units the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    /// A plain number, such as a cost in dollars.
    None,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One value of one metric: `(name, value, unit)`.
pub type Datum<'a> = (&'a str, f64, Unit);

/// CloudWatch takes at most 100 metrics per directive and 100 values per metric in one document.
const MAX_METRICS_PER_DOCUMENT: usize = 100;
const MAX_VALUES_PER_METRIC: usize = 100;
/// And at most 30 dimensions in a dimension set.
const MAX_DIMENSIONS: usize = 30;

/// Writes EMF lines for one function.
///
/// Every line also carries the function's name as the top-level `Function` property, so a log
/// query finds who emitted it; it becomes a dimension only through
/// [`Metrics::emit_for_function`] or when passed to [`Metrics::emit`].
///
/// Emitting never needs to fail a request: callers may ignore the `io::Result` (stdout is
/// CloudWatch Logs; a lost line is a lost data point, nothing more).
pub struct Metrics<W: Write = io::Stdout> {
    namespace: String,
    function: String,
    out: Mutex<W>,
}

impl Metrics<io::Stdout> {
    /// Writes to stdout, where Lambda ships it to CloudWatch Logs.
    pub fn new(namespace: impl Into<String>, function: impl Into<String>) -> Self {
        Metrics::with_writer(namespace, function, io::stdout())
    }
}

impl<W: Write> Metrics<W> {
    /// Writes to `out` (a `Vec<u8>` in tests).
    pub fn with_writer(namespace: impl Into<String>, function: impl Into<String>, out: W) -> Self {
        Metrics {
            namespace: namespace.into(),
            function: function.into(),
            out: Mutex::new(out),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// The writer, with everything written to it.
    pub fn into_inner(self) -> W {
        self.out
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Emits `metrics` under the `dimensions` (none: one series per metric for the whole
    /// deployment), timestamped now. A name given more than once becomes one metric with an
    /// array of values. Non-finite values are left out. Nothing is written when nothing is left.
    pub fn emit(&self, metrics: &[Datum<'_>], dimensions: &[(&str, &str)]) -> io::Result<()> {
        self.emit_at(Utc::now(), metrics, dimensions)
    }

    /// [`Metrics::emit`] at a given time.
    pub fn emit_at(
        &self,
        timestamp: DateTime<Utc>,
        metrics: &[Datum<'_>],
        dimensions: &[(&str, &str)],
    ) -> io::Result<()> {
        let documents = documents(
            &self.namespace,
            &self.function,
            timestamp,
            metrics,
            dimensions,
        )?;
        if documents.is_empty() {
            return Ok(());
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        for document in documents {
            // One write per line: CloudWatch reads a log event as an EMF document only when the
            // whole event is the JSON object, so it must not interleave with other output.
            let mut line = serde_json::to_vec(&document).map_err(io::Error::other)?;
            line.push(b'\n');
            out.write_all(&line)?;
        }
        out.flush()
    }

    /// Emits product metrics: no dimensions.
    pub fn emit_product(&self, metrics: &[Datum<'_>]) -> io::Result<()> {
        self.emit(metrics, &[])
    }

    /// Emits metrics of this function: the `Function` dimension only.
    pub fn emit_for_function(&self, metrics: &[Datum<'_>]) -> io::Result<()> {
        let function = self.function.clone();
        self.emit(metrics, &[(FUNCTION_DIMENSION, &function)])
    }

    /// Emits the product metrics of a new task.
    pub fn record_created(&self, task: &pj_core::Task) -> io::Result<()> {
        self.emit_product(&crate::created_metrics(task))
    }

    /// Emits the product metrics of a stored change of a task.
    pub fn record_transition(
        &self,
        before: &pj_core::Task,
        after: &pj_core::Task,
    ) -> io::Result<()> {
        self.emit_product(&crate::transition_metrics(before, after))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// One metric's values, grouped by name in order of first appearance.
struct Series<'a> {
    name: &'a str,
    unit: Unit,
    values: Vec<f64>,
}

fn group<'a>(metrics: &[Datum<'a>]) -> io::Result<Vec<Series<'a>>> {
    let mut series: Vec<Series<'a>> = Vec::new();
    for &(name, value, unit) in metrics {
        if name.is_empty() || name.len() > 255 {
            return Err(invalid(format!(
                "metric name {name:?} must have 1 to 255 characters"
            )));
        }
        if !value.is_finite() {
            continue;
        }
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) if s.unit != unit => {
                return Err(invalid(format!(
                    "metric {name} given in {} and in {}",
                    s.unit.as_str(),
                    unit.as_str()
                )));
            }
            Some(s) => s.values.push(value),
            None => series.push(Series {
                name,
                unit,
                values: vec![value],
            }),
        }
    }
    Ok(series)
}

/// The EMF documents for `metrics`: usually one, more when the limits of one are exceeded.
fn documents(
    namespace: &str,
    function: &str,
    timestamp: DateTime<Utc>,
    metrics: &[Datum<'_>],
    dimensions: &[(&str, &str)],
) -> io::Result<Vec<Value>> {
    if namespace.is_empty() || namespace.len() > 255 {
        return Err(invalid(
            "the namespace must have 1 to 255 characters".into(),
        ));
    }
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(invalid(format!(
            "at most {MAX_DIMENSIONS} dimensions, not {}",
            dimensions.len()
        )));
    }
    let mut keys = BTreeSet::new();
    for (key, value) in dimensions {
        if key.is_empty() || value.is_empty() || key.len() > 255 || value.len() > 1024 {
            return Err(invalid(format!(
                "dimension {key:?}={value:?}: names have 1 to 255 characters, values 1 to 1024"
            )));
        }
        if *key == "_aws" || !keys.insert(*key) {
            return Err(invalid(format!(
                "dimension {key:?} given twice or reserved"
            )));
        }
    }
    let mut series = group(metrics)?;
    if let Some(s) = series
        .iter()
        .find(|s| s.name == "_aws" || s.name == FUNCTION_DIMENSION || keys.contains(&s.name))
    {
        return Err(invalid(format!(
            "metric {} has the name of a dimension or property",
            s.name
        )));
    }

    let dimension_set: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let mut documents = Vec::new();
    let mut offset = vec![0usize; series.len()];
    loop {
        let mut definitions = Vec::new();
        let mut root = Map::new();
        for (s, taken) in series.iter_mut().zip(offset.iter_mut()) {
            if *taken >= s.values.len() || definitions.len() == MAX_METRICS_PER_DOCUMENT {
                continue;
            }
            let end = (*taken + MAX_VALUES_PER_METRIC).min(s.values.len());
            let chunk = &s.values[*taken..end];
            *taken = end;
            definitions.push(json!({"Name": s.name, "Unit": s.unit.as_str()}));
            let value = match chunk {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(s.name.to_owned(), value);
        }
        if definitions.is_empty() {
            break;
        }
        root.insert(FUNCTION_DIMENSION.to_owned(), json!(function));
        for (key, value) in dimensions {
            root.insert((*key).to_owned(), json!(value));
        }
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [dimension_set],
                    "Metrics": definitions,
                }],
            }),
        );
        documents.push(Value::Object(root));
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NAMESPACE, names};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap()
    }

    fn lines(metrics: &Metrics<Vec<u8>>) -> Vec<Value> {
        let out = metrics.out.lock().unwrap().clone();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn sink() -> Metrics<Vec<u8>> {
        Metrics::with_writer(NAMESPACE, "webhook", Vec::new())
    }

    #[test]
    fn product_metrics_should_follow_the_emf_specification_exactly() {
        let m = sink();
        m.emit_at(
            t0(),
            &[
                (names::TASK_COMPLETED, 1.0, Unit::Count),
                (names::TASK_DURATION_MS, 61_500.0, Unit::Milliseconds),
                (names::COST_USD, 0.25, Unit::None),
            ],
            &[],
        )
        .unwrap();
        let docs = lines(&m);
        assert_eq!(docs.len(), 1);
        let expected = json!({
            "_aws": {
                "Timestamp": 1_800_000_000_123i64,
                "CloudWatchMetrics": [{
                    "Namespace": "PithyJaunt",
                    "Dimensions": [[]],
                    "Metrics": [
                        {"Name": "task_completed", "Unit": "Count"},
                        {"Name": "task_duration_ms", "Unit": "Milliseconds"},
                        {"Name": "cost_usd", "Unit": "None"},
                    ],
                }],
            },
            "Function": "webhook",
            "task_completed": 1.0,
            "task_duration_ms": 61_500.0,
            "cost_usd": 0.25,
        });
        assert_eq!(docs[0], expected);
    }

    #[test]
    fn every_document_should_be_one_line_ending_in_a_newline() {
        let m = sink();
        m.emit_product(&[(names::TASK_CREATED, 1.0, Unit::Count)])
            .unwrap();
        m.emit_product(&[(names::TASK_FAILED, 1.0, Unit::Count)])
            .unwrap();
        let text = String::from_utf8(m.into_inner()).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
    }

    #[test]
    fn function_metrics_should_carry_the_function_dimension() {
        let m = sink();
        m.emit_for_function(&[("webhook_rejected", 2.0, Unit::Count)])
            .unwrap();
        let doc = &lines(&m)[0];
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(doc["Function"], "webhook");
        assert_eq!(doc["webhook_rejected"], 2.0);
    }

    #[test]
    fn given_dimensions_should_be_one_dimension_set_with_their_values_at_the_top() {
        let m = sink();
        m.emit(
            &[("runner_starts", 1.0, Unit::Count)],
            &[("Runner", "daytona"), ("Function", "dispatch")],
        )
        .unwrap();
        let doc = &lines(&m)[0];
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Runner", "Function"]])
        );
        assert_eq!(doc["Runner"], "daytona");
        // A dimension named Function wins over the property of the same name.
        assert_eq!(doc["Function"], "dispatch");
    }

    #[test]
    fn when_a_name_repeats_should_send_an_array_of_values() {
        let m = sink();
        m.emit_product(&[
            (names::DISPATCH_LATENCY_MS, 120.0, Unit::Milliseconds),
            (names::DISPATCH_LATENCY_MS, 80.0, Unit::Milliseconds),
        ])
        .unwrap();
        let doc = &lines(&m)[0];
        assert_eq!(doc["dispatch_latency_ms"], json!([120.0, 80.0]));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn when_there_is_nothing_to_send_should_write_nothing() {
        let m = sink();
        m.emit_product(&[]).unwrap();
        m.emit_product(&[(names::COST_USD, f64::NAN, Unit::None)])
            .unwrap();
        assert!(m.into_inner().is_empty());
    }

    #[test]
    fn when_over_the_limits_of_one_document_should_split_it() {
        let m = sink();
        let names: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
        let mut data: Vec<Datum<'_>> = names
            .iter()
            .map(|n| (n.as_str(), 1.0, Unit::Count))
            .collect();
        data.extend((0..250).map(|i| ("many", i as f64, Unit::Count)));
        m.emit_product(&data).unwrap();
        let docs = lines(&m);
        // 100 names; the other 50 with the first 100 values of `many`; then 100; then 50.
        assert_eq!(docs.len(), 4);
        let mut seen = 0;
        for doc in &docs {
            let defs = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap();
            assert!(defs.len() <= 100);
            if let Some(v) = doc["many"].as_array() {
                assert!(v.len() <= 100);
                seen += v.len();
            }
        }
        assert_eq!(seen, 250);
    }

    #[test]
    fn when_a_name_clashes_or_units_disagree_should_refuse() {
        let m = sink();
        let clash = m.emit(&[("Runner", 1.0, Unit::Count)], &[("Runner", "x")]);
        assert_eq!(clash.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let units = m.emit_product(&[("x", 1.0, Unit::Count), ("x", 1.0, Unit::Milliseconds)]);
        assert_eq!(units.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let empty = m.emit(&[("x", 1.0, Unit::Count)], &[("Runner", "")]);
        assert!(empty.is_err());
        assert!(m.into_inner().is_empty());
    }
}
