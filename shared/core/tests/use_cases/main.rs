//! The core's use cases (`TaskApi`, `Dispatcher`, `Notifier`, `Sweeper`, through the `Engine`)
//! over in-memory fakes of their ports and a clock the tests move.

mod api;
mod engine;
mod fakes;
mod worker;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pj_core::api::{EventAck, LogAck, Principal, TaskApi};
use pj_core::engine::{Engine, Feed, Settings};
use pj_core::error::AppError;
use pj_core::ids::{Attempt, TaskId, UserId, WebhookId};
use pj_core::ports::{QueueMessage, QueueName, Secrets, StaticSecrets};
use pj_core::ratelimit::RateLimiter;
use pj_core::signing::{MasterSecret, SignatureHeaders, signed_headers};
use pj_core::task::Task;
use pj_core::time::{Clock, ManualClock};
use pj_core::worker::{Dispatcher, Disposition, Notifier, Sweeper};
use secrecy::SecretString;
use serde_json::{Value, json};

use fakes::{FakeRunner, MemoryLogs, MemoryMailer, MemoryQueue, MemoryStore, PublicResolver};

const MASTER: &str = "a-master-secret-for-the-use-case-tests";

/// The core wired to fakes.
pub struct World {
    pub clock: Arc<ManualClock>,
    pub store: Arc<MemoryStore>,
    pub logs: Arc<MemoryLogs>,
    pub queue: Arc<MemoryQueue>,
    pub runner: Arc<FakeRunner>,
    pub mailer: Arc<MemoryMailer>,
    pub api: TaskApi,
    pub dispatcher: Dispatcher,
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
        let mut settings = Settings::default();
        adjust(&mut settings);
        let clock = Arc::new(ManualClock::new(t0()));
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let logs = Arc::new(MemoryLogs::default());
        let queue = Arc::new(MemoryQueue::default());
        let runner = Arc::new(FakeRunner::new(store.clone()));
        let mailer = Arc::new(MemoryMailer::default());
        let master = MasterSecret::new(SecretString::from(MASTER)).expect("a master secret");
        let secrets = Arc::new(StaticSecrets(Arc::new(Secrets {
            webhook_master: Some(master.clone()),
            ..Secrets::default()
        })));
        let engine = Engine {
            store: store.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            feed: Feed::default(),
            settings: Arc::new(settings),
            observer: None,
        };
        let api = TaskApi::new(engine.clone(), logs.clone(), secrets.clone(), limiter)
            .with_resolver(Arc::new(PublicResolver));
        World {
            dispatcher: Dispatcher::new(engine.clone(), runner.clone(), secrets),
            notifier: Notifier {
                engine: engine.clone(),
                mailer: mailer.clone(),
            },
            sweeper: Sweeper {
                engine,
                logs: logs.clone(),
            },
            api,
            clock,
            store,
            logs,
            queue,
            runner,
            mailer,
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

    /// Hands every notify-queue message sent so far to the notifier, once.
    pub async fn notify_sent(&self) -> Vec<Disposition> {
        let mut out = Vec::new();
        for sent in self.queue.take_from(QueueName::Notify) {
            out.push(self.notifier.handle(&sent.message, 1).await);
        }
        out
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
