//! In-memory fakes of the core's ports, with the semantics of the real adapters that the use
//! cases rely on: the store's compare-and-set on `version`, webhook ids recorded in the same
//! write, idempotency keys per owner with their fingerprint, logs unique per `(attempt, seq)`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::ids::{Attempt, TaskId, UserId, WebhookId};
use pj_core::ports::{
    CreateOutcome, DispatchError, Email, IdempotencyRecord, ListCursor, LogCursor, LogLine,
    LogStore, MailError, Mailer, QueueMessage, QueueName, QueueSender, Runner, RunnerJob,
    TaskStore, WebhookReceipt, WriteOutcome,
};
use pj_core::repos::Resolver;
use pj_core::task::{ExecState, RunnerKind, Task, TaskStatus};
use pj_core::time::{Clock, ManualClock};

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

/// Keeps what was sent, in order, until a test takes it.
#[derive(Default)]
pub struct MemoryQueue(Mutex<Vec<(QueueName, Sent)>>);

impl MemoryQueue {
    /// Everything sent since the last take, oldest first.
    pub fn take(&self) -> Vec<Sent> {
        lock(&self.0).drain(..).map(|(_, s)| s).collect()
    }

    /// The messages sent since the last take, without their delays.
    pub fn take_messages(&self) -> Vec<QueueMessage> {
        self.take().into_iter().map(|s| s.message).collect()
    }

    /// The messages sent since the last take, left in place.
    pub fn messages(&self) -> Vec<QueueMessage> {
        lock(&self.0)
            .iter()
            .map(|(_, s)| s.message.clone())
            .collect()
    }

    /// Takes the messages of one queue only, leaving the others.
    pub fn take_from(&self, queue: QueueName) -> Vec<Sent> {
        let mut all = lock(&self.0);
        let (taken, kept): (Vec<_>, Vec<_>) = all.drain(..).partition(|(q, _)| *q == queue);
        *all = kept;
        taken.into_iter().map(|(_, s)| s).collect()
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
        lock(&self.0).push((queue, Sent { message, delay }));
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

/// A mailer that keeps what it sent.
#[derive(Default)]
pub struct MemoryMailer(pub Mutex<Vec<Email>>);

impl MemoryMailer {
    pub fn sent(&self) -> Vec<Email> {
        lock(&self.0).clone()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        lock(&self.0).push(email.clone());
        Ok(())
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
