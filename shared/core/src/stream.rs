//! Following a task: its log lines and status changes as one ordered stream, for the
//! server-sent events of `GET /tasks/{id}/logs/stream`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast;

use crate::engine::Engine;
use crate::ids::TaskId;
use crate::ports::{LogCursor, LogLine, LogStore};
use crate::task::Task;

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
