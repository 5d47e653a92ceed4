//! Embedded adapters on SQLite: the task store, the log store, the outbound message store and a
//! durable queue with SQS semantics, all in one database file.
//!
//! One [`SqliteStore`] implements [`TaskStore`](pj_core::ports::TaskStore),
//! [`LogStore`](pj_core::ports::LogStore), [`MessageStore`](pj_core::messages::MessageStore),
//! [`QueueSender`](pj_core::ports::QueueSender) and
//! [`QueueConsumer`](pj_core::ports::QueueConsumer). Every operation is one transaction, so a
//! crash at any point loses nothing that was acknowledged, and opening the same file again gives
//! back all state.
//!
//! SQLite blocks, so no operation runs on Tokio's workers. Writes go to one thread that owns
//! the writer connection (SQLite admits one writer at a time anyway) and commits the writes
//! waiting for it together, each in a savepoint of its own (see `writer.rs`); reads run on
//! Tokio's blocking pool with a small pool of connections that WAL mode lets run beside the
//! writer.

mod artifacts;
mod logs;
mod messages;
mod queue;
mod schema;
mod tasks;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use pj_core::ports::QueueName;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Notify;

pub use schema::SCHEMA_VERSION;

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection; the adapters use a few dozen distinct ones.
const STATEMENT_CACHE: usize = 64;
/// Idle reader connections kept for reuse; more are opened under load and closed after. Enough
/// for the readers of a busy `pj serve` (the API's reads beside its queues' workers), so that a
/// read rarely pays for opening a connection and preparing its statements again.
const MAX_IDLE_READERS: usize = 16;

/// Settings of the embedded queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Receives after which a message that comes back goes to the dead-letter table instead
    /// (SQS's `maxReceiveCount`). At least 1.
    pub max_receives: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { max_receives: 5 }
    }
}

/// The embedded store: tasks, logs, outbound messages and queues in one SQLite database. Cheap to clone; clones
/// share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: writer::Writer,
    readers: Mutex<Vec<Connection>>,
    queue: QueueConfig,
    signals: Mutex<HashMap<QueueName, Arc<Notify>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("queue", &self.inner.queue)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// Blocks while it opens and migrates; call it at start, before serving.
    pub fn open(path: &Path, queue: QueueConfig) -> anyhow::Result<SqliteStore> {
        if queue.max_receives == 0 {
            bail!("the queue's max_receives must be at least 1");
        }
        let mut writer = Connection::open(path)
            .with_context(|| format!("could not open the database {}", path.display()))?;
        configure(&writer)
            .with_context(|| format!("could not configure the database {}", path.display()))?;
        // WAL is a property of the file, set once by the writer; readers then see it.
        let mode = switch_to_wal(&writer).context("could not switch the database to WAL mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "the database {} refused WAL mode (it stays in {mode} mode)",
                path.display()
            );
        }
        schema::migrate(&mut writer)
            .with_context(|| format!("could not migrate the database {}", path.display()))?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: writer::Writer::start(writer)?,
                readers: Mutex::new(Vec::new()),
                queue,
                signals: Mutex::new(HashMap::new()),
            }),
        };
        // Fail now, not on the first request, if readers cannot open.
        let reader = store.inner.open_reader()?;
        store.inner.give_back(reader);
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Notified on every send of a message that is visible at once, and when a message is
    /// made visible again early, so an embedded consumer can wait instead of polling in a
    /// loop. A notification sent while nobody waits is kept for the next waiter (one permit),
    /// so none is lost between an empty receive and the wait. Delayed messages and expired
    /// visibility timeouts notify nobody: a consumer still polls, at least as often as the
    /// shortest delay or visibility timeout it cares about.
    pub fn queue_signal(&self, queue: QueueName) -> Arc<Notify> {
        lock(&self.inner.signals)
            .entry(queue)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Runs `f` with the writer connection, in the writer's next transaction; returns once it
    /// is committed. `f` runs in a savepoint: when it fails, what it wrote is undone.
    async fn with_writer<T, F>(&self, what: &'static str, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        self.inner
            .writer
            .write(f)
            .await
            .with_context(|| format!("SQLite {what} failed"))
    }

    /// Runs `f` with a reader connection on the blocking pool.
    async fn with_reader<T, F>(&self, what: &'static str, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.take_reader()?;
            let result = f(&conn);
            inner.give_back(conn);
            result
        })
        .await
        .with_context(|| format!("SQLite {what} was interrupted"))?
        .with_context(|| format!("SQLite {what} failed"))
    }

    fn signal(&self, queue: QueueName) {
        self.queue_signal(queue).notify_one();
    }
}

impl Inner {
    fn open_reader(&self) -> anyhow::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).with_context(|| {
            format!(
                "could not open a reader on the database {}",
                self.path.display()
            )
        })?;
        configure(&conn).context("could not configure a reader connection")?;
        Ok(conn)
    }

    fn take_reader(&self) -> anyhow::Result<Connection> {
        match lock(&self.readers).pop() {
            Some(conn) => Ok(conn),
            None => self.open_reader(),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// Sets WAL mode. Switching needs the file to itself and SQLite may answer "busy" at once,
/// without its busy handler, while another process opens the same new file; so it is asked
/// again for as long as the busy timeout.
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<String> {
    let give_up = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Settings every connection needs; they are per connection in SQLite.
fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .context("could not set busy_timeout")?;
    // With WAL, NORMAL syncs at checkpoints only: a power cut may lose the last commits but
    // never corrupts, and a process crash loses nothing.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .context("could not set synchronous")?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .context("could not enable foreign keys")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// A poisoned lock only means another thread panicked while holding it; what it guards is
/// still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Microseconds since the epoch, rounded down: the precision of the list cursor.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Microseconds since the epoch, rounded up, so a time stored for "at or after" checks is
/// never earlier than the real one.
fn micros_ceil(t: DateTime<Utc>) -> i64 {
    let floor = t.timestamp_micros();
    if t.timestamp_subsec_nanos() % 1_000 == 0 {
        floor
    } else {
        floor.saturating_add(1)
    }
}

fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn now_micros() -> i64 {
    micros(Utc::now())
}

/// A limit as SQLite takes it.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
