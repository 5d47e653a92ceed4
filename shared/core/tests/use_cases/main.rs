//! The core's use cases (`TaskApi`, `Dispatcher`, `KindWorker`, `Notifier`, `Sweeper`, through
//! the `Engine`) over in-memory fakes of their ports and a clock the tests move.

mod api;
mod artifacts;
mod browser;
mod budget;
mod engine;
mod fakes;
mod kinds;
mod worker;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pj_core::api::{EventAck, LogAck, Principal, TaskApi};
use pj_core::artifacts::PutOutcome;
use pj_core::engine::{Engine, Feed, Settings};
use pj_core::error::AppError;
use pj_core::ids::{Attempt, TaskId, UserId, WebhookId};
use pj_core::kinds::ghl::{API_KEY_SECRET, GhlSettings};
use pj_core::kinds::message::{ChannelSender, OUTBOUND_SECRET};
use pj_core::kinds::run::KindWorker;
use pj_core::messages::Courier;
use pj_core::ports::{QueueMessage, QueueName, Secrets, StaticSecrets};
use pj_core::ratelimit::RateLimiter;
use pj_core::signing::{MasterSecret, SignatureHeaders, signed_headers};
use pj_core::task::Task;
use pj_core::time::{Clock, ManualClock};
use pj_core::worker::{Dispatcher, Disposition, Notifier, Sweeper};
use secrecy::SecretString;
use serde_json::{Value, json};

use fakes::{
    FakeBrowsers, FakeHttp, FakeModel, FakeRunner, MemoryArtifacts, MemoryLogs, MemoryMailer,
    MemoryMessages, MemoryQueue, MemoryStore, PublicResolver,
};

const MASTER: &str = "a-master-secret-for-the-use-case-tests";
/// The outbound webhook secret (`PJ_OUTBOUND_SECRET`): `whsec_` and 32 bytes of base64.
pub const OUTBOUND: &str = "whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=";
/// GoHighLevel's API key (`GHL_API_KEY`).
pub const GHL_KEY: &str = "pit-0f1e2d3c-ghl-key";
pub const GHL_URL: &str = "https://ghl.example.test";
pub const GHL_LOCATION: &str = "loc-default";

/// The core wired to fakes.
pub struct World {
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryStore>,
    pub logs: Arc<MemoryLogs>,
    pub queue: Arc<MemoryQueue>,
    pub runner: Arc<FakeRunner>,
    pub mailer: Arc<MemoryMailer>,
    pub messages: Arc<MemoryMessages>,
    pub artifacts: Arc<MemoryArtifacts>,
    pub browsers: FakeBrowsers,
    pub model: Arc<FakeModel>,
    /// The client of the addresses users name (API calls, webhooks): the guarded one.
    pub http: Arc<FakeHttp>,
    /// The client of the services the operator configured (GoHighLevel).
    pub ghl_http: Arc<FakeHttp>,
    pub courier: Arc<Courier>,
    pub api: TaskApi,
    pub dispatcher: Dispatcher,
    pub kinds: KindWorker,
    pub notifier: Notifier,
    pub sweeper: Sweeper,
    master: MasterSecret,
}

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a time")
}

pub fn alice() -> Principal {
    Principal {
        user: UserId::parse("alice").expect("a user"),
        email: Some("alice@example.com".into()),
    }
}

pub fn bob() -> Principal {
    Principal {
        user: UserId::parse("bob").expect("a user"),
        email: Some("bob@example.com".into()),
    }
}

/// A valid create body with `extra` fields.
pub fn body(extra: Value) -> Value {
    let mut body = json!({"repo_url": "https://github.com/o/r", "prompt": "Add a README"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

impl Default for World {
    fn default() -> Self {
        World::with(|_| {})
    }
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    /// A world whose settings `adjust` changes; the rate limit is generous unless a test says.
    pub fn with(adjust: impl FnOnce(&mut Settings)) -> World {
        World::with_limiter(adjust, RateLimiter::new(6_000, 1_000))
    }

    pub fn with_limiter(adjust: impl FnOnce(&mut Settings), limiter: RateLimiter) -> World {
        World::assemble(adjust, limiter, |_| {})
    }

    /// A world whose deployment secrets `adjust` changes.
    pub fn with_secrets(adjust: impl FnOnce(&mut Secrets)) -> World {
        World::assemble(|_| {}, RateLimiter::new(6_000, 1_000), adjust)
    }

    fn assemble(
        adjust: impl FnOnce(&mut Settings),
        limiter: RateLimiter,
        adjust_secrets: impl FnOnce(&mut Secrets),
    ) -> World {
        let mut settings = Settings {
            ghl: GhlSettings {
                api_url: GHL_URL.into(),
                location_id: Some(GHL_LOCATION.into()),
            },
            browsers: pj_core::kinds::browser::BrowserOffer::everything(),
            ..Settings::default()
        };
        adjust(&mut settings);
        let settings = Arc::new(settings);
        let clock = Arc::new(ManualClock::new(t0()));
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let logs = Arc::new(MemoryLogs::default());
        let queue = Arc::new(MemoryQueue::new(clock.clone()));
        let runner = Arc::new(FakeRunner::new(store.clone()));
        let mailer = Arc::new(MemoryMailer::default());
        let messages = Arc::new(MemoryMessages::default());
        let http = Arc::new(FakeHttp::new(clock.clone()));
        let ghl_http = Arc::new(FakeHttp::new(clock.clone()));
        let master = MasterSecret::new(SecretString::from(MASTER)).expect("a master secret");
        let mut deployment = Secrets {
            webhook_master: Some(master.clone()),
            ..Secrets::default()
        };
        deployment
            .extra
            .insert(OUTBOUND_SECRET.into(), SecretString::from(OUTBOUND));
        deployment
            .extra
            .insert(API_KEY_SECRET.into(), SecretString::from(GHL_KEY));
        adjust_secrets(&mut deployment);
        let secrets = Arc::new(StaticSecrets(Arc::new(deployment)));
        let engine = Engine {
            store: store.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            feed: Feed::default(),
            settings: settings.clone(),
            observer: None,
        };
        let courier = Arc::new(Courier {
            store: messages.clone(),
            sender: Arc::new(ChannelSender {
                mailer: mailer.clone(),
                http: http.clone(),
                service_http: ghl_http.clone(),
                secrets: secrets.clone(),
                settings: settings.clone(),
            }),
            clock: clock.clone(),
            queue: queue.clone(),
            retry_base: settings.message_retry_base,
            observer: None,
        });
        let artifacts = Arc::new(MemoryArtifacts::default());
        let browsers = FakeBrowsers::default();
        let model = Arc::new(FakeModel::default());
        let api = TaskApi::new(engine.clone(), logs.clone(), secrets.clone(), limiter)
            .with_resolver(Arc::new(PublicResolver))
            .with_artifacts(artifacts.clone());
        World {
            dispatcher: Dispatcher::new(engine.clone(), runner.clone(), secrets.clone()),
            kinds: KindWorker {
                engine: engine.clone(),
                logs: logs.clone(),
                http: http.clone(),
                service_http: ghl_http.clone(),
                courier: courier.clone(),
                messages: messages.clone(),
                secrets,
                browsers: Some(Arc::new(browsers.clone())),
                page_model: Some(model.clone()),
                artifacts: artifacts.clone(),
            },
            notifier: Notifier {
                engine: engine.clone(),
                courier: courier.clone(),
            },
            sweeper: Sweeper {
                engine,
                logs: logs.clone(),
                courier: Some(courier.clone()),
                artifacts: artifacts.clone(),
            },
            artifacts,
            browsers,
            model,
            api,
            clock,
            store,
            logs,
            queue,
            runner,
            mailer,
            messages,
            http,
            ghl_http,
            courier,
            master,
        }
    }

    pub fn task(&self, id: &TaskId) -> Task {
        self.store.task(id)
    }

    /// Creates a task for alice; returns it and the messages sent so far (left in the queue).
    pub async fn create(&self, extra: Value) -> (Task, Vec<QueueMessage>) {
        let (task, existed) = self
            .api
            .create(&alice(), &body(extra), None)
            .await
            .expect("the task is created");
        assert!(!existed);
        (task, self.queue.messages())
    }

    /// Hands every dispatch-queue message sent so far to the dispatcher, once, as a first
    /// receive; returns their dispositions. Messages the dispatcher sends meanwhile stay queued.
    pub async fn dispatch_sent(&self) -> Vec<Disposition> {
        let mut out = Vec::new();
        for sent in self.queue.take_from(QueueName::Dispatch) {
            out.push(self.dispatcher.handle(&sent.message, 1).await);
        }
        out
    }

    /// Hands every notify-queue message sent so far to the notifier, once, whatever its delay.
    pub async fn notify_sent(&self) -> Vec<Disposition> {
        let mut out = Vec::new();
        for sent in self.queue.take_from(QueueName::Notify) {
            out.push(self.notifier.handle(&sent.message, 1).await);
        }
        out
    }

    /// Creates a task of a built-in kind for alice from the whole `body`.
    pub async fn create_kind(&self, body: Value) -> Task {
        self.create_kind_for(&alice(), body).await
    }

    pub async fn create_kind_for(&self, who: &Principal, body: Value) -> Task {
        let (task, existed) = self
            .api
            .create(who, &body, None)
            .await
            .expect("the task is created");
        assert!(!existed);
        task
    }

    /// Hands one message to the worker of its queue, as the `receives`-th receive.
    pub async fn handle(&self, message: &QueueMessage, receives: u32) -> Disposition {
        match message.queue() {
            QueueName::Dispatch => self.dispatcher.handle(message, receives).await,
            QueueName::Notify => self.notifier.handle(message, receives).await,
            QueueName::Tasks => self.kinds.handle(message, receives).await,
        }
    }

    /// Works every queue as its consumers would until no message is visible now: each visible
    /// message is handed to its worker, and one it asks to retry comes back after its delay.
    /// Messages sent with a delay wait for the clock. Returns how many were handled.
    pub async fn settle(&self) -> usize {
        let mut handled = 0;
        for _ in 0..1_000 {
            let visible = self.queue.take_visible();
            if visible.is_empty() {
                return handled;
            }
            for (queue, message, receives) in visible {
                handled += 1;
                if let Disposition::RetryAfter(after) = self.handle(&message, receives + 1).await {
                    self.queue.put_back(queue, message, receives + 1, after);
                }
            }
        }
        panic!("the queues never settled");
    }

    /// Moves the clock on, then works the queues.
    pub async fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.settle().await;
    }

    /// Moves the clock to when the next waiting message becomes visible and works the queues;
    /// false when no message waits.
    pub async fn next(&self) -> bool {
        let Some(at) = self.queue.next_visible_at() else {
            return false;
        };
        let now = self.clock.now();
        if at > now {
            self.clock.advance(at - now);
        }
        self.settle().await;
        true
    }

    /// Delivers again every message ever sent (the at-least-once of real queues), then works
    /// the queues.
    pub async fn redeliver_everything(&self) {
        for message in self.queue.history() {
            if let Disposition::RetryAfter(after) = self.handle(&message, 2).await {
                self.queue.put_back(message.queue(), message, 2, after);
            }
        }
        self.settle().await;
    }

    /// A runner delivery for `task`'s `attempt`: the body, signed with the attempt's key now.
    pub fn sign(&self, task: &TaskId, attempt: Attempt, body: &Value) -> (Vec<u8>, [String; 3]) {
        let bytes = serde_json::to_vec(body).expect("json");
        let key = self.master.derive(task, attempt);
        let headers = signed_headers(
            &key,
            &WebhookId::generate(),
            self.clock.now().timestamp(),
            &bytes,
        );
        (bytes, headers.map(|(_, v)| v))
    }

    /// Delivers a signed event to `POST /webhooks/runner`.
    pub async fn event(
        &self,
        task: &TaskId,
        attempt: u32,
        event: Value,
    ) -> Result<EventAck, AppError> {
        let mut body = json!({"task_id": task.as_str(), "attempt": attempt});
        if let (Some(b), Some(e)) = (body.as_object_mut(), event.as_object()) {
            b.extend(e.clone());
        }
        let (bytes, headers) = self.sign(task, Attempt(attempt), &body);
        self.deliver_event(&bytes, &headers).await
    }

    pub async fn deliver_event(
        &self,
        bytes: &[u8],
        headers: &[String; 3],
    ) -> Result<EventAck, AppError> {
        self.api.receive_event(&signature(headers), bytes).await
    }

    /// Delivers a signed log batch to `POST /webhooks/runner/logs`.
    pub async fn log_batch(
        &self,
        task: &TaskId,
        attempt: u32,
        lines: Vec<Value>,
    ) -> Result<LogAck, AppError> {
        let body = json!({"task_id": task.as_str(), "attempt": attempt, "lines": lines});
        let (bytes, headers) = self.sign(task, Attempt(attempt), &body);
        self.api.receive_logs(&signature(&headers), &bytes).await
    }

    /// Delivers a signed artifact to `POST /webhooks/runner/artifacts`.
    pub async fn artifact_upload(
        &self,
        task: &TaskId,
        attempt: u32,
        name: &str,
        bytes: &[u8],
    ) -> Result<PutOutcome, AppError> {
        use base64::Engine as _;
        let content = base64::engine::general_purpose::STANDARD.encode(bytes);
        let body = json!({"task_id": task.as_str(), "attempt": attempt, "name": name, "content_base64": content});
        let (bytes, headers) = self.sign(task, Attempt(attempt), &body);
        self.api
            .receive_artifact(&signature(&headers), &bytes)
            .await
    }

    /// Creates a task and takes it through dispatch and `task.started`.
    pub async fn running_task(&self) -> Task {
        let (task, _) = self.create(json!({})).await;
        self.dispatch_sent().await;
        let ack = self
            .event(&task.id, 1, json!({"type": "task.started"}))
            .await;
        assert_eq!(ack.expect("started is taken"), EventAck::Applied);
        self.task(&task.id)
    }
}

pub fn signature(headers: &[String; 3]) -> SignatureHeaders<'_> {
    SignatureHeaders {
        id: Some(&headers[0]),
        timestamp: Some(&headers[1]),
        signature: Some(&headers[2]),
    }
}

pub fn log_line(seq: u64, text: &str) -> Value {
    json!({"seq": seq, "ts": "2027-01-15T08:00:00Z", "stream": "stdout", "text": text})
}

pub fn dispatch(task: &TaskId, attempt: u32) -> QueueMessage {
    QueueMessage::Dispatch {
        task_id: task.clone(),
        attempt: Attempt(attempt),
    }
}

pub fn notify(task: &TaskId, attempt: u32) -> QueueMessage {
    QueueMessage::Notify {
        task_id: task.clone(),
        attempt: Attempt(attempt),
    }
}
