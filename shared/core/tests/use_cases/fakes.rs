//! In-memory fakes of the core's ports, with the semantics of the real adapters that the use
//! cases rely on: the stores' compare-and-set on `version`, webhook ids recorded in the same
//! write, idempotency keys per owner with their fingerprint, logs unique per `(attempt, seq)`,
//! message records inserted once, queue messages held back for their delay, and an HTTP client
//! that answers from a script.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::artifacts::{Artifact, ArtifactName, ArtifactStore, PutOutcome};
use pj_core::ids::{Attempt, TaskId, UserId, WebhookId};
use pj_core::kinds::browser::{
    BrowserChoice, BrowserSession, Browsers, Element, FieldSpec, ModelAnswer, OpenError, PageModel,
    PageView,
};
use pj_core::messages::{
    MessageCursor, MessageFilter, MessageId, MessageStatus, MessageStore, OutboundMessage,
};
use pj_core::outbound::{HttpClient, HttpError, HttpRequest, HttpResponse};
use pj_core::ports::{
    CreateOutcome, DispatchError, Email, IdempotencyRecord, ListCursor, LogCursor, LogLine,
    LogStore, MailError, Mailer, QueueMessage, QueueName, QueueSender, Runner, RunnerJob,
    TaskStore, WebhookReceipt, WriteOutcome,
};
use pj_core::repos::Resolver;
use pj_core::task::{ExecState, RunnerKind, Task, TaskStatus};
use pj_core::task::{ModelSpec, Usage};
use pj_core::time::{Clock, ManualClock};
use serde_json::Value;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct StoreState {
    tasks: HashMap<TaskId, Task>,
    keys: HashMap<(UserId, String), (String, TaskId, DateTime<Utc>)>,
    webhooks: HashMap<WebhookId, DateTime<Utc>>,
}

/// Tasks, idempotency keys and webhook ids in maps.
pub struct MemoryStore {
    clock: Arc<ManualClock>,
    state: Mutex<StoreState>,
}

impl MemoryStore {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        MemoryStore {
            clock,
            state: Mutex::default(),
        }
    }

    pub fn task(&self, id: &TaskId) -> Task {
        lock(&self.state).tasks[id].clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.state).tasks.len()
    }

    /// The fingerprints stored with idempotency keys.
    pub fn fingerprints(&self) -> Vec<String> {
        lock(&self.state)
            .keys
            .values()
            .map(|(f, _, _)| f.clone())
            .collect()
    }

    /// Puts a task as it is, as a crashed process would have left it.
    pub fn put(&self, task: Task) {
        lock(&self.state).tasks.insert(task.id.clone(), task);
    }
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create(
        &self,
        task: &Task,
        idempotency: Option<&IdempotencyRecord>,
    ) -> anyhow::Result<CreateOutcome> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        if let Some(record) = idempotency {
            let key = (record.owner.clone(), record.key.clone());
            if let Some((fingerprint, first, expires_at)) = state.keys.get(&key)
                && *expires_at > now
            {
                if *fingerprint != record.fingerprint {
                    return Ok(CreateOutcome::KeyConflict);
                }
                return Ok(CreateOutcome::Existing(Box::new(
                    state.tasks[first].clone(),
                )));
            }
            state.keys.insert(
                key,
                (
                    record.fingerprint.clone(),
                    task.id.clone(),
                    record.expires_at,
                ),
            );
        }
        state.tasks.insert(task.id.clone(), task.clone());
        Ok(CreateOutcome::Created)
    }

    async fn get(&self, id: &TaskId) -> anyhow::Result<Option<Task>> {
        Ok(lock(&self.state).tasks.get(id).cloned())
    }

    async fn list(
        &self,
        owner: &UserId,
        status: Option<TaskStatus>,
        limit: usize,
        after: Option<&ListCursor>,
    ) -> anyhow::Result<Vec<Task>> {
        let mut tasks: Vec<Task> = lock(&self.state)
            .tasks
            .values()
            .filter(|t| &t.owner == owner && status.is_none_or(|s| t.status == s))
            .filter(|t| after.is_none_or(|c| (t.created_at, &t.id) < (c.created_at, &c.id)))
            .cloned()
            .collect();
        tasks.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        tasks.truncate(limit);
        Ok(tasks)
    }

    async fn update(
        &self,
        task: &Task,
        expected_version: u64,
        receipt: Option<&WebhookReceipt>,
    ) -> anyhow::Result<WriteOutcome> {
        assert_eq!(
            task.version,
            expected_version + 1,
            "a write must raise the version by one"
        );
        let now = self.clock.now();
        let mut state = lock(&self.state);
        if let Some(receipt) = receipt
            && state.webhooks.get(&receipt.id).is_some_and(|at| *at > now)
        {
            return Ok(WriteOutcome::WebhookSeen);
        }
        match state.tasks.get(&task.id) {
            Some(stored) if stored.version == expected_version => {}
            _ => return Ok(WriteOutcome::VersionConflict),
        }
        state.tasks.insert(task.id.clone(), task.clone());
        if let Some(receipt) = receipt {
            state
                .webhooks
                .insert(receipt.id.clone(), receipt.expires_at);
        }
        Ok(WriteOutcome::Written)
    }

    async fn webhook_seen(&self, id: &WebhookId, now: DateTime<Utc>) -> anyhow::Result<bool> {
        Ok(lock(&self.state)
            .webhooks
            .get(id)
            .is_some_and(|at| *at > now))
    }

    async fn remember_webhook(&self, receipt: &WebhookReceipt) -> anyhow::Result<bool> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        if state.webhooks.get(&receipt.id).is_some_and(|at| *at > now) {
            return Ok(false);
        }
        state
            .webhooks
            .insert(receipt.id.clone(), receipt.expires_at);
        Ok(true)
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<Task>> {
        let mut due: Vec<Task> = lock(&self.state)
            .tasks
            .values()
            .filter(|t| t.sweep_at.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by_key(|t| (t.sweep_at, t.id.clone()));
        due.truncate(limit);
        Ok(due)
    }
}

/// Log lines per task, unique per `(attempt, seq)`.
#[derive(Default)]
pub struct MemoryLogs(Mutex<HashMap<TaskId, BTreeMap<LogCursor, LogLine>>>);

impl MemoryLogs {
    pub fn lines(&self, task: &TaskId) -> Vec<LogLine> {
        lock(&self.0)
            .get(task)
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl LogStore for MemoryLogs {
    async fn append(
        &self,
        task: &TaskId,
        lines: &[LogLine],
        _expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let mut all = lock(&self.0);
        let stored = all.entry(task.clone()).or_default();
        let mut new = 0;
        for line in lines {
            if let std::collections::btree_map::Entry::Vacant(slot) = stored.entry(line.cursor()) {
                slot.insert(line.clone());
                new += 1;
            }
        }
        Ok(new)
    }

    async fn read(
        &self,
        task: &TaskId,
        after: Option<LogCursor>,
        limit: usize,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<LogLine>> {
        Ok(self
            .lines(task)
            .into_iter()
            .filter(|l| after.is_none_or(|c| l.cursor() > c))
            .take(limit)
            .collect())
    }
}

/// A sent message and the delay it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message: QueueMessage,
    pub delay: Duration,
}

/// A message waiting in a queue: visible from `visible_at` on.
#[derive(Debug, Clone)]
struct Waiting {
    queue: QueueName,
    sent: Sent,
    visible_at: DateTime<Utc>,
    receives: u32,
}

/// Keeps what was sent, in order, until a test takes it; a message sent with a delay becomes
/// visible that long after it was sent, on the clock the queue was made with.
pub struct MemoryQueue {
    clock: Option<Arc<ManualClock>>,
    waiting: Mutex<Vec<Waiting>>,
    /// Every message ever sent, for tests that deliver them all again.
    history: Mutex<Vec<QueueMessage>>,
}

impl Default for MemoryQueue {
    /// A queue without a clock: every message is visible at once.
    fn default() -> Self {
        MemoryQueue {
            clock: None,
            waiting: Mutex::default(),
            history: Mutex::default(),
        }
    }
}

impl MemoryQueue {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        MemoryQueue {
            clock: Some(clock),
            ..MemoryQueue::default()
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock
            .as_ref()
            .map_or(DateTime::<Utc>::MIN_UTC, |c| c.now())
    }

    /// Everything sent since the last take, oldest first.
    pub fn take(&self) -> Vec<Sent> {
        lock(&self.waiting).drain(..).map(|w| w.sent).collect()
    }

    /// The messages sent since the last take, without their delays.
    pub fn take_messages(&self) -> Vec<QueueMessage> {
        self.take().into_iter().map(|s| s.message).collect()
    }

    /// The messages sent since the last take, left in place.
    pub fn messages(&self) -> Vec<QueueMessage> {
        lock(&self.waiting)
            .iter()
            .map(|w| w.sent.message.clone())
            .collect()
    }

    /// The messages waiting in one queue, with their delays, left in place.
    pub fn waiting_in(&self, queue: QueueName) -> Vec<Sent> {
        lock(&self.waiting)
            .iter()
            .filter(|w| w.queue == queue)
            .map(|w| w.sent.clone())
            .collect()
    }

    /// Takes the messages of one queue only, leaving the others.
    pub fn take_from(&self, queue: QueueName) -> Vec<Sent> {
        let mut all = lock(&self.waiting);
        let (taken, kept): (Vec<_>, Vec<_>) = all.drain(..).partition(|w| w.queue == queue);
        *all = kept;
        taken.into_iter().map(|w| w.sent).collect()
    }

    /// Takes the messages of every queue that are visible now, oldest first, with how often
    /// each was received before.
    pub fn take_visible(&self) -> Vec<(QueueName, QueueMessage, u32)> {
        let now = self.now();
        let mut all = lock(&self.waiting);
        let (taken, kept): (Vec<_>, Vec<_>) = all.drain(..).partition(|w| w.visible_at <= now);
        *all = kept;
        taken
            .into_iter()
            .map(|w| (w.queue, w.sent.message, w.receives))
            .collect()
    }

    /// Puts a received message back, visible again after `after` (a consumer's retry).
    pub fn put_back(
        &self,
        queue: QueueName,
        message: QueueMessage,
        receives: u32,
        after: Duration,
    ) {
        let visible_at = self.now() + chrono::Duration::from_std(after).expect("a short delay");
        lock(&self.waiting).push(Waiting {
            queue,
            sent: Sent {
                message,
                delay: after,
            },
            visible_at,
            receives,
        });
    }

    /// When the next waiting message becomes visible.
    pub fn next_visible_at(&self) -> Option<DateTime<Utc>> {
        lock(&self.waiting).iter().map(|w| w.visible_at).min()
    }

    /// Every message sent since the queue was made, taken or not.
    pub fn history(&self) -> Vec<QueueMessage> {
        lock(&self.history).clone()
    }
}

#[async_trait]
impl QueueSender for MemoryQueue {
    async fn send(&self, queue: QueueName, body: &str, delay: Duration) -> anyhow::Result<()> {
        let message: QueueMessage = serde_json::from_str(body)?;
        assert_eq!(
            message.queue(),
            queue,
            "{message:?} sent to the wrong queue"
        );
        assert!(
            delay <= pj_core::engine::MAX_QUEUE_DELAY,
            "{message:?} delayed {delay:?}, longer than a queue holds a message"
        );
        let visible_at = self.now() + chrono::Duration::from_std(delay)?;
        lock(&self.history).push(message.clone());
        lock(&self.waiting).push(Waiting {
            queue,
            sent: Sent { message, delay },
            visible_at,
            receives: 0,
        });
        Ok(())
    }
}

type Meanwhile = Box<dyn FnOnce(&MemoryStore) + Send>;

/// A runner that answers as told (by default: started) and remembers what it was asked, and in
/// which state the store held the attempt when its start was asked.
pub struct FakeRunner {
    store: Arc<MemoryStore>,
    /// Run once while the next runner starts: what happens elsewhere meanwhile.
    meanwhile: Mutex<Option<Meanwhile>>,
    answers: Mutex<VecDeque<Result<String, DispatchError>>>,
    pub starts: Mutex<Vec<(RunnerJob, ExecState)>>,
    pub stops: Mutex<Vec<(TaskId, Attempt, Option<String>)>>,
}

impl FakeRunner {
    pub fn new(store: Arc<MemoryStore>) -> Self {
        FakeRunner {
            store,
            meanwhile: Mutex::default(),
            answers: Mutex::default(),
            starts: Mutex::default(),
            stops: Mutex::default(),
        }
    }

    /// The answer to the next start.
    pub fn answer_next(&self, answer: Result<String, DispatchError>) {
        lock(&self.answers).push_back(answer);
    }

    /// Something that happens while the next runner starts.
    pub fn while_starting(&self, what: impl FnOnce(&MemoryStore) + Send + 'static) {
        *lock(&self.meanwhile) = Some(Box::new(what));
    }

    pub fn started(&self) -> Vec<(RunnerJob, ExecState)> {
        lock(&self.starts).clone()
    }

    pub fn stopped(&self) -> Vec<(TaskId, Attempt, Option<String>)> {
        lock(&self.stops).clone()
    }
}

#[async_trait]
impl Runner for FakeRunner {
    fn kind(&self) -> RunnerKind {
        RunnerKind::Local
    }

    async fn start(&self, job: &RunnerJob) -> Result<String, DispatchError> {
        let state = self
            .store
            .task(&job.task_id)
            .executions
            .iter()
            .find(|e| e.attempt == job.attempt)
            .map(|e| e.state)
            .expect("the started attempt exists");
        if let Some(what) = lock(&self.meanwhile).take() {
            what(&self.store);
        }
        let n = {
            let mut starts = lock(&self.starts);
            starts.push((job.clone(), state));
            starts.len()
        };
        lock(&self.answers)
            .pop_front()
            .unwrap_or_else(|| Ok(format!("pid:{n}")))
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

/// How the mailer answers one send.
#[derive(Debug, Clone)]
pub enum MailAnswer {
    Accept,
    /// A failure that may pass.
    FailForNow(String),
    /// The address is refused for good.
    Refuse(String),
}

/// A mailer that answers as told (by default: accepted), keeps what it accepted and counts
/// every try.
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Email>>,
    answers: Mutex<VecDeque<MailAnswer>>,
    tries: Mutex<Vec<Email>>,
}

impl MemoryMailer {
    /// The emails accepted.
    pub fn sent(&self) -> Vec<Email> {
        lock(&self.sent).clone()
    }

    /// Every email the mailer was asked to send, accepted or not.
    pub fn tries(&self) -> Vec<Email> {
        lock(&self.tries).clone()
    }

    /// The answer to the next send.
    pub fn answer_next(&self, answer: MailAnswer) {
        lock(&self.answers).push_back(answer);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        lock(&self.tries).push(email.clone());
        match lock(&self.answers)
            .pop_front()
            .unwrap_or(MailAnswer::Accept)
        {
            MailAnswer::Accept => {
                lock(&self.sent).push(email.clone());
                Ok(())
            }
            MailAnswer::FailForNow(why) => Err(MailError::Retryable(anyhow::anyhow!(why))),
            MailAnswer::Refuse(why) => Err(MailError::Permanent(why)),
        }
    }
}

/// Outbound message records in a map, with the store's compare-and-set on `version`.
#[derive(Default)]
pub struct MemoryMessages(Mutex<HashMap<MessageId, OutboundMessage>>);

impl MemoryMessages {
    /// Every record, oldest first.
    pub fn all(&self) -> Vec<OutboundMessage> {
        let mut all: Vec<OutboundMessage> = lock(&self.0).values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// The records of one task, oldest first.
    pub fn of(&self, task: &TaskId) -> Vec<OutboundMessage> {
        self.all()
            .into_iter()
            .filter(|m| &m.task_id == task)
            .collect()
    }

    pub fn record(&self, id: &MessageId) -> OutboundMessage {
        lock(&self.0)
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("no message {id}"))
    }
}

#[async_trait]
impl MessageStore for MemoryMessages {
    async fn insert(&self, message: &OutboundMessage) -> anyhow::Result<bool> {
        let mut all = lock(&self.0);
        if all.contains_key(&message.id) {
            return Ok(false);
        }
        all.insert(message.id.clone(), message.clone());
        Ok(true)
    }

    async fn get(&self, id: &MessageId) -> anyhow::Result<Option<OutboundMessage>> {
        Ok(lock(&self.0).get(id).cloned())
    }

    async fn update(
        &self,
        message: &OutboundMessage,
        expected_version: u64,
    ) -> anyhow::Result<bool> {
        assert_eq!(
            message.version,
            expected_version + 1,
            "a write must raise the version by one"
        );
        let mut all = lock(&self.0);
        match all.get(&message.id) {
            Some(stored) if stored.version == expected_version => {
                all.insert(message.id.clone(), message.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list(
        &self,
        owner: &UserId,
        filter: &MessageFilter,
        limit: usize,
        after: Option<&MessageCursor>,
    ) -> anyhow::Result<Vec<OutboundMessage>> {
        let mut found: Vec<OutboundMessage> = lock(&self.0)
            .values()
            .filter(|m| &m.owner == owner)
            .filter(|m| filter.task_id.as_ref().is_none_or(|t| &m.task_id == t))
            .filter(|m| filter.status.is_none_or(|s| m.status == s))
            .filter(|m| after.is_none_or(|c| (m.created_at, &m.id) < (c.created_at, &c.id)))
            .cloned()
            .collect();
        found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        found.truncate(limit);
        Ok(found)
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> anyhow::Result<Vec<OutboundMessage>> {
        let mut due: Vec<OutboundMessage> = lock(&self.0)
            .values()
            .filter(|m| m.status == MessageStatus::Pending)
            .filter(|m| m.next_try_at.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.next_try_at, &a.id).cmp(&(b.next_try_at, &b.id)));
        due.truncate(limit);
        Ok(due)
    }
}

/// One answer of the fake HTTP client.
#[derive(Debug, Clone)]
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Error(HttpError),
}

impl Reply {
    /// An answer with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).expect("json"),
        }
    }

    /// An answer with no body.
    pub fn status(status: u16) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The same answer with one more header (its name in lower case, as the client gives it).
    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Answer {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.to_ascii_lowercase(), value.to_owned()));
                Reply::Answer {
                    status,
                    headers,
                    body,
                }
            }
            error => error,
        }
    }
}

/// A request as the fake HTTP client received it, credentials exposed.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it was received, on the test clock.
    pub at: DateTime<Utc>,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
    pub follow_redirects: bool,
    /// The header names whose values were marked secret.
    pub secret_headers: Vec<String>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An HTTP client that records every request and answers from a script per URL: the next
/// scripted reply for that URL, else `200 {}`. Each answer takes `latency` on the test clock.
pub struct FakeHttp {
    clock: Arc<ManualClock>,
    latency: Mutex<chrono::Duration>,
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    received: Mutex<Vec<Received>>,
}

impl FakeHttp {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        FakeHttp {
            clock,
            latency: Mutex::new(chrono::Duration::zero()),
            scripts: Mutex::default(),
            received: Mutex::default(),
        }
    }

    /// Queues the next reply to requests to `url`.
    pub fn reply(&self, url: &str, reply: Reply) {
        lock(&self.scripts)
            .entry(url.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// How long each answer takes on the test clock.
    pub fn take_time(&self, latency: chrono::Duration) {
        *lock(&self.latency) = latency;
    }

    /// Every request received, oldest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// The requests received for `url`.
    pub fn received_at(&self, url: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.url == url)
            .collect()
    }
}

#[async_trait]
impl HttpClient for FakeHttp {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        lock(&self.received).push(Received {
            at: self.clock.now(),
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.expose().to_owned()))
                .collect(),
            body: request.body.clone().unwrap_or_default(),
            timeout: request.timeout,
            follow_redirects: request.follow_redirects,
            secret_headers: request
                .headers
                .iter()
                .filter(|(_, v)| v.is_secret())
                .map(|(n, _)| n.clone())
                .collect(),
        });
        let latency = *lock(&self.latency);
        self.clock.advance(latency);
        let reply = lock(&self.scripts)
            .get_mut(&request.url)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Reply::json(200, serde_json::json!({})));
        match reply {
            Reply::Answer {
                status,
                headers,
                mut body,
            } => {
                let truncated = body.len() > request.max_body_bytes;
                body.truncate(request.max_body_bytes);
                Ok(HttpResponse {
                    status,
                    headers,
                    body,
                    truncated,
                    remote_addr: None,
                })
            }
            Reply::Error(e) => Err(e),
        }
    }
}

/// Every name is a public address: no DNS in these tests.
pub struct PublicResolver;

#[async_trait]
impl Resolver for PublicResolver {
    async fn resolve(&self, _host: &str, _port: u16) -> io::Result<Vec<IpAddr>> {
        Ok(vec!["140.82.112.3".parse().expect("an address")])
    }
}

/// Artifacts in memory, keyed by task then name; expiry is not kept (the adapters' contract
/// suite checks it).
#[derive(Default)]
pub struct MemoryArtifacts(Mutex<HashMap<TaskId, TaskArtifacts>>);

/// One task's artifacts: the attempt and bytes of each name.
type TaskArtifacts = BTreeMap<ArtifactName, (Attempt, Vec<u8>)>;

#[async_trait]
impl ArtifactStore for MemoryArtifacts {
    async fn put(
        &self,
        task: &TaskId,
        attempt: Attempt,
        name: &ArtifactName,
        bytes: Vec<u8>,
        _expires_at: DateTime<Utc>,
    ) -> anyhow::Result<PutOutcome> {
        let mut all = lock(&self.0);
        let stored = all.entry(task.clone()).or_default();
        if stored.contains_key(name) {
            return Ok(PutOutcome::Duplicate);
        }
        stored.insert(name.clone(), (attempt, bytes));
        Ok(PutOutcome::Stored)
    }

    async fn list(&self, task: &TaskId, _now: DateTime<Utc>) -> anyhow::Result<Vec<Artifact>> {
        let mut listed: Vec<Artifact> = lock(&self.0)
            .get(task)
            .into_iter()
            .flatten()
            .map(|(name, (attempt, bytes))| {
                Artifact::new(name.clone(), *attempt, bytes.len() as u64)
            })
            .collect();
        listed.sort_by(|a, b| (a.attempt, &a.name).cmp(&(b.attempt, &b.name)));
        Ok(listed)
    }

    async fn get(
        &self,
        task: &TaskId,
        name: &ArtifactName,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(Artifact, Vec<u8>)>> {
        Ok(lock(&self.0)
            .get(task)
            .and_then(|s| s.get(name))
            .map(|(attempt, bytes)| {
                (
                    Artifact::new(name.clone(), *attempt, bytes.len() as u64),
                    bytes.clone(),
                )
            }))
    }
}

/// What the fake browser does, and what was done to it.
#[derive(Default)]
pub struct BrowserScript {
    /// The browser cannot be opened: the message, and whether it may pass.
    pub open_fails: Option<(String, bool)>,
    /// Acting on an element whose selector or reference is here fails with this message.
    pub fails_on: HashMap<String, String>,
    /// What `read` gives per selector (a missing one fails, as waiting for it would).
    pub reads: HashMap<String, Value>,
    /// What `read_fields` gives.
    pub fields: serde_json::Map<String, Value>,
    /// The page view the model is shown.
    pub view: PageView,
    /// Everything done, in order: `open local`, `navigate URL`, `click #a`, `click ref 2`, …
    pub calls: Vec<String>,
    /// Browsers opened and not closed yet.
    pub open_now: usize,
}

/// A browser that follows a [`BrowserScript`].
#[derive(Clone, Default)]
pub struct FakeBrowsers(pub Arc<Mutex<BrowserScript>>);

impl FakeBrowsers {
    pub fn script(&self) -> std::sync::MutexGuard<'_, BrowserScript> {
        lock(&self.0)
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.0).calls.clone()
    }
}

/// One page as a fake: a PNG-looking screenshot of a few bytes.
pub const FAKE_PNG: &[u8] = b"\x89PNG\r\n\x1a\nfake";

struct FakeSession(Arc<Mutex<BrowserScript>>);

fn element_name(element: &Element) -> String {
    match element {
        Element::Selector(s) => s.clone(),
        Element::Ref(r) => format!("ref {r}"),
    }
}

impl FakeSession {
    fn act(&self, verb: &str, element: &Element) -> Result<(), String> {
        let mut script = lock(&self.0);
        let name = element_name(element);
        script.calls.push(format!("{verb} {name}"));
        match script.fails_on.get(&name) {
            Some(message) => Err(message.clone()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl BrowserSession for FakeSession {
    fn session_id(&self) -> String {
        "fake-session".into()
    }
    fn debug_url(&self) -> Option<String> {
        None
    }
    async fn navigate(&mut self, url: &str) -> Result<(), String> {
        self.act("navigate", &Element::Selector(url.to_owned()))
    }
    async fn click(&mut self, element: &Element) -> Result<(), String> {
        self.act("click", element)
    }
    async fn type_text(&mut self, element: &Element, text: &str) -> Result<(), String> {
        self.act(&format!("type {text:?} into"), element)
    }
    async fn wait_for(&mut self, selector: &str) -> Result<(), String> {
        self.act("wait for", &Element::Selector(selector.to_owned()))
    }
    async fn read(&mut self, selector: &str) -> Result<Value, String> {
        self.act("read", &Element::Selector(selector.to_owned()))?;
        lock(&self.0)
            .reads
            .get(selector)
            .cloned()
            .ok_or_else(|| format!("waited 10 s for {selector:?}"))
    }
    async fn read_fields(
        &mut self,
        fields: &[(String, FieldSpec)],
    ) -> Result<serde_json::Map<String, Value>, String> {
        let mut script = lock(&self.0);
        script.calls.push(format!("read {} fields", fields.len()));
        Ok(script.fields.clone())
    }
    async fn page_view(&mut self) -> Result<PageView, String> {
        let mut script = lock(&self.0);
        script.calls.push("view".into());
        Ok(script.view.clone())
    }
    async fn screenshot(&mut self, full_page: bool) -> Result<Vec<u8>, String> {
        lock(&self.0)
            .calls
            .push(format!("screenshot full_page={full_page}"));
        Ok(FAKE_PNG.to_vec())
    }
    async fn close(self: Box<Self>) {
        let mut script = lock(&self.0);
        script.calls.push("close".into());
        script.open_now -= 1;
    }
}

#[async_trait]
impl Browsers for FakeBrowsers {
    async fn open(&self, choice: BrowserChoice) -> Result<Box<dyn BrowserSession>, OpenError> {
        let mut script = lock(&self.0);
        script.calls.push(format!("open {}", choice.as_str()));
        if let Some((message, may_pass)) = script.open_fails.clone() {
            return Err(OpenError { message, may_pass });
        }
        script.open_now += 1;
        Ok(Box::new(FakeSession(self.0.clone())))
    }
}

/// A model that answers from a list, in turn, and keeps the prompts it was given.
#[derive(Default)]
pub struct FakeModel {
    answers: Mutex<VecDeque<String>>,
    pub prompts: Mutex<Vec<String>>,
}

impl FakeModel {
    pub fn answers(&self, answers: &[&str]) {
        lock(&self.answers).extend(answers.iter().map(|a| (*a).to_owned()));
    }

    pub fn prompts(&self) -> Vec<String> {
        lock(&self.prompts).clone()
    }
}

#[async_trait]
impl PageModel for FakeModel {
    async fn ask(
        &self,
        model: Option<&ModelSpec>,
        _system: &str,
        prompt: &str,
        _note: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ModelAnswer, String> {
        lock(&self.prompts).push(prompt.to_owned());
        let text = lock(&self.answers)
            .pop_front()
            .ok_or_else(|| "the fake model has no answer left".to_owned())?;
        Ok(ModelAnswer {
            text,
            usage: Usage {
                input_tokens: 1000,
                output_tokens: 10,
                cost_usd: Some(0.001),
                model: Some(model.map_or("openai/gpt-4.1-mini".into(), |m| {
                    format!("{}/{}", m.provider.as_str(), m.name)
                })),
            },
        })
    }
}
