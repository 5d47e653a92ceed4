//! The shared test app: fresh resources on the emulator, the functions built as their `main`
//! builds them, the sample events of `events/`, and a runner that records what it is asked.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use axum::body::to_bytes;
use http::{HeaderMap, StatusCode};
use lambda_http::RequestExt;
use pj_aws::AwsContext;
use pj_aws::provision::{self, ProvisionedQueues};
use pj_core::kinds::run::KindWorker;
use pj_core::ports::{DispatchError, QueueName, Runner, RunnerJob};
use pj_core::signing::CallbackSecret;
use pj_core::task::RunnerKind;
use pj_core::time::Clock;
use pj_core::worker::{Dispatcher, Notifier, Sweeper};
use pj_core::{Attempt, Task, TaskId, WebhookId};
use pj_lambda::config::{CoreConfig, Env, RateLimits};
use pj_lambda::{
    Authenticator, MessageHandler, MetricsObserver, QueueWorker, Router, Wiring, functions, samples,
};
use serde_json::Value;
use tower::ServiceExt;

/// The emulator's URL; these tests never pass without one.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: the pj-lambda tests run the functions against the moto \
             emulator. Run them as `scripts/with-moto cargo test -p pj-lambda`."
        ),
    }
}

/// A name no other test uses.
pub fn unique_name(what: &str) -> String {
    format!("pj-lambda-{what}-{}", pj_contract::sample::unique())
}

/// The text of a file of `events/`.
pub fn event(name: &str) -> String {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub const PUBLIC_URL: &str = "https://r2d2c3po4k.execute-api.eu-west-1.amazonaws.com";

/// A runner that records every job and stop, and starts nothing (GitHub and Daytona are
/// outside); it fails the tasks it is told to.
#[derive(Default)]
pub struct RecordingRunner {
    pub jobs: Mutex<Vec<RunnerJob>>,
    pub stops: Mutex<Vec<(TaskId, Attempt, Option<String>)>>,
    failing: Mutex<Vec<(TaskId, DispatchError)>>,
}

impl RecordingRunner {
    pub fn fail(&self, task: &TaskId, error: DispatchError) {
        lock(&self.failing).push((task.clone(), error));
    }

    pub fn jobs(&self) -> Vec<RunnerJob> {
        lock(&self.jobs).clone()
    }

    pub fn job_for(&self, task: &TaskId) -> RunnerJob {
        self.jobs()
            .into_iter()
            .find(|j| &j.task_id == task)
            .unwrap_or_else(|| panic!("no runner was started for {task}"))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl Runner for RecordingRunner {
    fn kind(&self) -> RunnerKind {
        RunnerKind::GithubActions
    }

    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError> {
        if let Some((_, e)) = lock(&self.failing).iter().find(|(t, _)| t == &job.task_id) {
            return Err(e.clone());
        }
        let mut jobs = lock(&self.jobs);
        jobs.push(job.clone());
        Ok(format!("run-{}", jobs.len()))
    }

    async fn stop(
        &self,
        task: &TaskId,
        attempt: Attempt,
        runner_ref: Option<&str>,
    ) -> anyhow::Result<()> {
        lock(&self.stops).push((task.clone(), attempt, runner_ref.map(str::to_owned)));
        Ok(())
    }
}

/// One deployment on the emulator: its own table, artifacts' bucket, queues, secret (the
/// development master secret) and SES sender.
pub struct TestApp {
    pub aws: AwsContext,
    pub core: CoreConfig,
    pub queues: ProvisionedQueues,
    pub secret_id: String,
    /// `PJ_ARTIFACTS_BUCKET` of `api`, `webhook` and `tasks`.
    pub artifacts_bucket: String,
    pub email_from: String,
    /// Every function's EMF lines.
    pub metrics: SharedBuffer,
    pub runner: Arc<RecordingRunner>,
}

impl TestApp {
    pub async fn new() -> TestApp {
        TestApp::with(&[], &[]).await
    }

    /// A deployment whose functions also get the variables `env`, and whose secret also holds
    /// the string fields `secrets`.
    pub async fn with(env: &[(&str, &str)], secrets: &[(&str, &str)]) -> TestApp {
        let aws = AwsContext::with_endpoint(&endpoint()).await;
        let table = unique_name("table");
        provision::create_table(aws.dynamodb(), &table)
            .await
            .expect("the table is created");
        let queues = provision::create_queues(aws.sqs(), &unique_name("q"), 5)
            .await
            .expect("the queues are created");
        let artifacts_bucket = unique_name("artifacts").to_lowercase();
        provision::create_bucket(aws.s3(), &artifacts_bucket)
            .await
            .expect("the bucket is created");
        let secret_id = unique_name("secret");
        let mut document = samples::dev_secret_document();
        for (name, value) in secrets {
            document[*name] = Value::from(*value);
        }
        provision::put_secret(aws.secrets_manager(), &secret_id, &document)
            .await
            .expect("the secret is stored");
        let domain = format!("{}.example.com", unique_name("mail"));
        provision::verify_email_identity(aws.ses(), &domain)
            .await
            .expect("the sender is verified");
        let mut pairs = vec![("PJ_TABLE_NAME", table.as_str())];
        pairs.extend_from_slice(env);
        let mut core =
            CoreConfig::from_env(&Env::from_pairs(pairs)).expect("the configuration is valid");
        // The tests create many tasks quickly.
        core.shared.rate_limits = RateLimits {
            per_minute: 6_000,
            burst: 1_000,
        };
        TestApp {
            aws,
            core,
            queues,
            secret_id,
            artifacts_bucket,
            email_from: format!("Pithy Jaunt <pj@{domain}>"),
            metrics: SharedBuffer::default(),
            runner: Arc::new(RecordingRunner::default()),
        }
    }

    /// A function's wiring as its `main` makes it: its own AWS context (and request counters),
    /// metrics into [`TestApp::metrics`].
    pub fn wiring(&self, function: &str) -> Wiring {
        let aws = AwsContext::counting(self.aws.sdk_config());
        let mut wiring = Wiring::new(aws, self.core.clone(), function);
        wiring.observer = Arc::new(MetricsObserver::with_writer(
            &self.core.metrics_namespace,
            function,
            self.metrics.clone(),
        ));
        wiring
    }

    pub fn wiring_with_clock(&self, function: &str, clock: Arc<dyn Clock>) -> Wiring {
        let mut wiring = self.wiring(function);
        wiring.clock = clock;
        wiring
    }

    pub fn api(&self, wiring: &Wiring) -> Router {
        self.api_with_page(wiring, pj_lambda::PageConfig::same_origin())
    }

    /// `api` whose web page finds the log stream as `page` says.
    pub fn api_with_page(&self, wiring: &Wiring, page: pj_lambda::PageConfig) -> Router {
        functions::api(
            wiring,
            self.queues.urls.clone(),
            &self.secret_id,
            &self.artifacts_bucket,
            page,
        )
    }

    pub fn webhook(&self, wiring: &Wiring) -> Router {
        functions::webhook(
            wiring,
            self.queues.urls.clone(),
            &self.secret_id,
            &self.artifacts_bucket,
        )
    }

    pub fn log_ingest(&self, wiring: &Wiring) -> Router {
        functions::log_ingest(wiring, &self.secret_id)
    }

    pub fn log_stream(&self, wiring: &Wiring, auth: Authenticator) -> Router {
        functions::log_stream(wiring, auth, Duration::from_millis(200))
    }

    pub fn dispatch(&self, wiring: &Wiring) -> QueueWorker<Dispatcher> {
        functions::dispatch(
            wiring,
            self.queues.urls.clone(),
            wiring.secrets(&self.secret_id),
            PUBLIC_URL,
            self.runner.clone(),
        )
    }

    pub fn notify(&self, wiring: &Wiring) -> QueueWorker<Notifier> {
        functions::notify(
            wiring,
            self.queues.urls.clone(),
            wiring.secrets(&self.secret_id),
            PUBLIC_URL,
            &self.email_from,
        )
        .expect("the notify function is built")
    }

    pub async fn tasks(&self, wiring: &Wiring) -> QueueWorker<KindWorker> {
        functions::tasks(
            wiring,
            self.queues.urls.clone(),
            wiring.secrets(&self.secret_id),
            &self.email_from,
            &self.artifacts_bucket,
        )
        .await
        .expect("the tasks function is built")
    }

    pub fn sweeper(&self, wiring: &Wiring) -> Sweeper {
        functions::sweeper(
            wiring,
            self.queues.urls.clone(),
            wiring.secrets(&self.secret_id),
            &self.email_from,
        )
        .expect("the sweeper function is built")
    }

    /// The stored task.
    pub async fn task(&self, id: &TaskId) -> Task {
        use pj_core::ports::TaskStore;
        self.aws
            .dynamo_store(self.core.table.clone())
            .get(id)
            .await
            .expect("the store answers")
            .unwrap_or_else(|| panic!("{id} is not stored"))
    }

    /// Receives up to `count` messages of `queue` for real, waiting up to five seconds for
    /// them, as Lambda's event source does.
    pub async fn receive(&self, aws: &AwsContext, queue: QueueName, count: usize) -> Vec<Message> {
        let url = self.queues.urls.get(queue).to_owned();
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while got.len() < count && tokio::time::Instant::now() < deadline {
            let output = aws
                .sqs()
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("ReceiveMessage succeeds");
            got.extend(output.messages.unwrap_or_default());
        }
        got
    }

    /// The messages on `queue` now, parsed (received and made visible again).
    pub async fn peek(&self, queue: QueueName) -> Vec<Value> {
        let messages = self.receive(&self.aws, queue, 10).await;
        let url = self.queues.urls.get(queue);
        for m in &messages {
            self.aws
                .sqs()
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .expect("ChangeMessageVisibility succeeds");
        }
        messages
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("a JSON message"))
            .collect()
    }

    /// The EMF documents emitted so far.
    pub fn emitted_metrics(&self) -> Vec<Value> {
        self.metrics
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an EMF line is JSON"))
            .collect()
    }

    /// How often the product metric `name` was emitted, summed.
    pub fn metric_total(&self, name: &str) -> f64 {
        self.emitted_metrics()
            .iter()
            .filter_map(|d| match &d[name] {
                Value::Number(n) => n.as_f64(),
                Value::Array(values) => Some(values.iter().filter_map(Value::as_f64).sum()),
                _ => None,
            })
            .sum()
    }
}

/// An HTTP event file's text as the request `lambda_http` makes of it.
pub fn http_request(event: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event).expect("the event is an API Gateway v2 request")
}

/// The same, within an invocation that must end by `deadline` from now.
pub fn http_request_with_deadline(event: &str, deadline: Duration) -> lambda_http::Request {
    let mut context = lambda_http::Context::default();
    context.request_id = "test-invocation".into();
    let ends = std::time::SystemTime::now() + deadline;
    context.deadline = ends
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64;
    http_request(event).with_lambda_context(context)
}

/// A function's answer to a request.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {}", self.text))
    }
}

/// Runs `router` on `request`, reading the whole body.
pub async fn call(router: &Router, request: lambda_http::Request) -> Answer {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router never fails");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body is read");
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// An HTTP event file's text with its body replaced (and its length with it).
pub fn with_body(event: &str, body: &str) -> String {
    let mut value: Value = serde_json::from_str(event).expect("the event is JSON");
    value["body"] = Value::String(body.to_owned());
    value["headers"]["content-length"] = Value::String(body.len().to_string());
    value.to_string()
}

/// A runner callback event (from a `webhook-*` or `log-ingest-*` sample) carrying `body`,
/// signed now with the attempt's key, as the runner sends it.
pub fn signed_callback(template: &str, body: &str, key: &CallbackSecret) -> String {
    let mut value: Value = serde_json::from_str(&with_body(template, body)).expect("JSON");
    let now = chrono::Utc::now().timestamp();
    for (name, v) in
        pj_core::signing::signed_headers(key, &WebhookId::generate(), now, body.as_bytes())
    {
        value["headers"][name] = Value::String(v);
    }
    value.to_string()
}

/// A sample event re-signed now with the development master secret.
pub fn signed_sample(event: &str) -> String {
    let mut value: Value = serde_json::from_str(event).expect("JSON");
    samples::sign_event_now(&mut value).expect("the sample can be signed");
    value.to_string()
}

/// The SQS event Lambda's event source would make of messages received for real: the
/// records of `events/dispatch-batch.json` with each message's id, receipt, body and receive
/// count.
pub fn sqs_event(messages: &[Message]) -> SqsEvent {
    let template: Value = serde_json::from_str(&event("dispatch-batch.json")).expect("JSON");
    let record = template["Records"][0].clone();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut r = record.clone();
            r["messageId"] = Value::from(m.message_id().unwrap_or_default());
            r["receiptHandle"] = Value::from(m.receipt_handle().unwrap_or_default());
            r["body"] = Value::from(m.body().unwrap_or_default());
            r["md5OfBody"] = Value::from(m.md5_of_body().unwrap_or_default());
            let count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_else(|| "1".into());
            r["attributes"]["ApproximateReceiveCount"] = Value::from(count);
            r
        })
        .collect();
    serde_json::from_value(serde_json::json!({"Records": records})).expect("an SQS event")
}

/// A sample SQS event file as the runtime deserializes it, sent to `task` instead of the
/// sample's.
pub fn sample_sqs_event(name: &str, sample_task: &str, task: &TaskId) -> SqsEvent {
    serde_json::from_str(&samples::retarget(&event(name), sample_task, task))
        .expect("the sample is an SQS event")
}

/// Emails moto's SES recorded as sent.
pub async fn sent_mail() -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", endpoint().trim_end_matches('/'));
    let data: Value = reqwest::get(&url)
        .await
        .expect("moto's data endpoint answers")
        .json()
        .await
        .expect("moto's data is JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

impl TestApp {
    /// A task made from `events/api-create-task.json` (under its own Idempotency-Key) and
    /// dispatched to the test runner through `dispatch`, its message received for real.
    /// Returns the task and its runner's callback key.
    pub async fn dispatched_task(&self) -> (TaskId, CallbackSecret) {
        let api_wiring = self.wiring("api");
        let mut create: Value = serde_json::from_str(&event("api-create-task.json")).unwrap();
        create["headers"]["idempotency-key"] = Value::from(unique_name("key"));
        let created = call(&self.api(&api_wiring), http_request(&create.to_string())).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let id = TaskId::parse(created.json()["id"].as_str().unwrap()).unwrap();
        let messages = self.receive(&self.aws, QueueName::Dispatch, 1).await;
        let response = self
            .dispatch(&self.wiring("dispatch"))
            .handle_batch(sqs_event(&messages))
            .await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        let job = self.runner.job_for(&id);
        let key = CallbackSecret::parse(
            job.env
                .get("WEBHOOK_SECRET")
                .expect("the runner gets its key"),
        )
        .expect("a whsec_ key");
        (id, key)
    }
}

/// A writer into shared memory, for reading emitted metric lines back (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The three queue functions, each built as its `main` builds it.
pub struct QueueFunctions {
    pub dispatch: QueueWorker<Dispatcher>,
    pub tasks: QueueWorker<KindWorker>,
    pub notify: QueueWorker<Notifier>,
}

impl TestApp {
    pub async fn queue_functions(&self) -> QueueFunctions {
        QueueFunctions {
            dispatch: self.dispatch(&self.wiring("dispatch")),
            tasks: self.tasks(&self.wiring("tasks")).await,
            notify: self.notify(&self.wiring("notify")),
        }
    }

    /// Stands in for Lambda's event source mappings until `done` holds (at most `within`):
    /// whatever is on the dispatch, tasks and notify queues is received for real and handed to
    /// its function in batches of up to ten; what the function does not report as failed is
    /// deleted, the rest comes again after the visibility the function gave it.
    pub async fn run_queues_until<F, Fut>(
        &self,
        functions: &QueueFunctions,
        within: Duration,
        what: &str,
        done: F,
    ) where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        assert!(
            self.pump(functions, within, done).await,
            "not within {within:?}: {what}"
        );
    }

    /// The same for `duration`, whatever comes.
    pub async fn run_queues_for(&self, functions: &QueueFunctions, duration: Duration) {
        self.pump(functions, duration, || async { false }).await;
    }

    async fn pump<F, Fut>(&self, functions: &QueueFunctions, within: Duration, mut done: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let handled = self.feed(QueueName::Dispatch, &functions.dispatch).await
                + self.feed(QueueName::Tasks, &functions.tasks).await
                + self.feed(QueueName::Notify, &functions.notify).await;
            if done().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            if handled == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// One batch of what `queue` holds now, through `worker`; how many messages it held.
    async fn feed<H: MessageHandler>(&self, queue: QueueName, worker: &QueueWorker<H>) -> usize {
        let url = self.queues.urls.get(queue);
        let messages = self
            .aws
            .sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage succeeds")
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return 0;
        }
        let response = worker.handle_batch(sqs_event(&messages)).await;
        for m in &messages {
            let kept = response
                .batch_item_failures
                .iter()
                .any(|f| Some(f.item_identifier.as_str()) == m.message_id());
            if !kept {
                self.aws
                    .sqs()
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage succeeds");
            }
        }
        messages.len()
    }
}
