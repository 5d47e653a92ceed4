//! Following a task: its log lines and status changes as one ordered stream, for the
//! server-sent events of `GET /tasks/{id}/logs/stream`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast;

use crate::engine::Engine;
use crate::error::AppError;
use crate::ids::{TaskId, UserId};
use crate::ports::{LogCursor, LogLine, LogStore};
use crate::task::Task;

/// The most log streams one user may hold open at once (per process).
pub const MAX_STREAMS_PER_USER: usize = 8;
/// What a refused stream is told to wait: long enough for another stream to end.
pub const STREAM_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Counts the open log streams of each user, so one user cannot hold an unbounded number of
/// connections and store readers. A stream takes a [`StreamSlot`] before it starts and gives it
/// back when the slot is dropped: when the stream ends or its client goes away.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    max_per_user: usize,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl StreamSlots {
    pub fn new(max_per_user: usize) -> Self {
        StreamSlots {
            max_per_user: max_per_user.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for one more stream of `user`, or `429` with a `Retry-After`.
    pub fn acquire(&self, user: &UserId) -> Result<StreamSlot, AppError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user.clone()).or_insert(0);
        if *count >= self.max_per_user {
            return Err(AppError::RateLimited {
                retry_after: STREAM_RETRY_AFTER,
            });
        }
        *count += 1;
        Ok(StreamSlot {
            user: user.clone(),
            open: self.open.clone(),
        })
    }

    /// How many streams `user` holds open now.
    pub fn open_for(&self, user: &UserId) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(user).copied().unwrap_or(0)
    }
}

impl Default for StreamSlots {
    fn default() -> Self {
        StreamSlots::new(MAX_STREAMS_PER_USER)
    }
}

/// One open stream of a user; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    user: UserId,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // An idle user costs no memory.
                open.remove(&self.user);
            }
        }
    }
}

/// One event of the stream.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    Log(LogLine),
    Status(Box<Task>),
}

const PAGE: usize = 500;

struct Follow {
    engine: Engine,
    logs: Arc<dyn LogStore>,
    id: TaskId,
    cursor: Option<LogCursor>,
    last_version: Option<u64>,
    pending: VecDeque<StreamEvent>,
    wake: broadcast::Receiver<TaskId>,
    poll: Duration,
    finished: bool,
    first_round: bool,
}

/// Streams the lines after `after` and a status event on every change, ending once the task is
/// terminal and every line is sent. `poll` bounds how long a change can go unseen when no
/// wake-up reaches this process (as in Lambda, where writers are elsewhere).
pub fn follow(
    engine: Engine,
    logs: Arc<dyn LogStore>,
    id: TaskId,
    after: Option<LogCursor>,
    poll: Duration,
) -> impl Stream<Item = anyhow::Result<StreamEvent>> + Send + 'static {
    let state = Follow {
        wake: engine.feed.subscribe(),
        engine,
        logs,
        id,
        cursor: after,
        last_version: None,
        pending: VecDeque::new(),
        poll,
        finished: false,
        first_round: true,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok(event), s));
            }
            if s.finished {
                return None;
            }
            if let Err(e) = s.fill().await {
                s.finished = true;
                return Some((Err(e), s));
            }
        }
    })
}

impl Follow {
    /// Queues what changed since the last round, or waits for a change.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if !self.first_round {
            self.wait().await;
        }
        self.first_round = false;
        let full = self.read_lines().await?;
        if full {
            // More lines are waiting: send them before looking at the status.
            self.first_round = true;
            return Ok(());
        }
        let Some(task) = self.engine.store.get(&self.id).await? else {
            self.finished = true;
            return Ok(());
        };
        let terminal = task.status.is_terminal();
        if terminal {
            // Lines stored just before the final event are in by now: they go first.
            while self.read_lines().await? {}
        }
        if self.last_version != Some(task.version) {
            self.last_version = Some(task.version);
            self.pending.push_back(StreamEvent::Status(Box::new(task)));
        }
        self.finished = terminal;
        Ok(())
    }

    /// Reads the next page of lines; true when the page was full.
    async fn read_lines(&mut self) -> anyhow::Result<bool> {
        let lines = self
            .logs
            .read(&self.id, self.cursor, PAGE, self.engine.now())
            .await?;
        let full = lines.len() == PAGE;
        if let Some(last) = lines.last() {
            self.cursor = Some(last.cursor());
        }
        self.pending.extend(lines.into_iter().map(StreamEvent::Log));
        Ok(full)
    }

    /// Waits for a change of this task, or the poll interval.
    async fn wait(&mut self) {
        let id = self.id.clone();
        let wake = &mut self.wake;
        let woken = async move {
            loop {
                match wake.recv().await {
                    Ok(changed) if changed == id => return,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        futures::future::pending::<()>().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(self.poll, woken).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    #[test]
    fn when_a_user_holds_the_most_streams_the_next_is_rate_limited_until_one_is_dropped() {
        let slots = StreamSlots::new(2);
        let first = slots.acquire(&user("alice")).unwrap();
        let _second = slots.acquire(&user("alice")).unwrap();
        match slots.acquire(&user("alice")) {
            Err(AppError::RateLimited { retry_after }) => assert!(retry_after.as_secs() >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another user is not affected.
        assert!(slots.acquire(&user("bob")).is_ok());
        drop(first);
        assert_eq!(slots.open_for(&user("alice")), 1);
        assert!(slots.acquire(&user("alice")).is_ok());
    }

    #[test]
    fn a_user_whose_streams_all_ended_is_forgotten() {
        let slots = StreamSlots::new(1);
        drop(slots.acquire(&user("alice")).unwrap());
        assert_eq!(slots.open_for(&user("alice")), 0);
        assert!(slots.open.lock().unwrap().is_empty());
    }
}
