//! The one writer: a thread that owns the writer connection and commits the writes waiting for
//! it together.
//!
//! Every write is one job, run in a savepoint of its own so that a job that fails (or panics)
//! undoes only itself. The jobs that queued up while the previous commit ran share the next
//! transaction: one WAL commit for many writes, so a busy server writes each hot page once per
//! batch instead of once per write. A job's caller hears back only after the commit, so
//! nothing is acknowledged that is not stored; if the commit fails, every job of the batch
//! fails with it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::Context;
use rusqlite::Connection;
use tokio::sync::oneshot;

/// The most writes one transaction holds, so one commit stays short.
const MAX_BATCH: usize = 256;

/// One write, type-erased: run inside the batch's transaction, then told how the commit went.
trait Job: Send {
    /// Runs the write in its own savepoint; undone when it fails.
    fn run(&mut self, conn: &mut Connection);
    /// Answers the caller: the write's result if the batch was committed, else the error.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Write<T, F> {
    f: Option<F>,
    result: Option<anyhow::Result<T>>,
    reply: Option<oneshot::Sender<anyhow::Result<T>>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &mut Connection) {
        let Some(f) = self.f.take() else { return };
        if let Err(e) = conn.execute_batch("SAVEPOINT pj_write") {
            self.result = Some(Err(e).context("could not start the write"));
            return;
        }
        let outcome = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("the write panicked")),
        };
        let end = if outcome.is_ok() {
            "RELEASE pj_write"
        } else {
            "ROLLBACK TO pj_write; RELEASE pj_write"
        };
        self.result = Some(match conn.execute_batch(end) {
            Ok(()) => outcome,
            Err(e) => Err(e).context("could not end the write"),
        });
    }

    fn finish(mut self: Box<Self>, committed: Result<(), String>) {
        let result = match (self.result.take(), committed) {
            (Some(Ok(_)), Err(why)) => Err(anyhow::anyhow!("the commit failed: {why}")),
            (Some(result), _) => result,
            (None, Err(why)) => Err(anyhow::anyhow!("the write could not start: {why}")),
            (None, Ok(())) => Err(anyhow::anyhow!("the write never ran")),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have gone away; the write is stored all the same.
            let _ = reply.send(result);
        }
    }
}

/// The handle of the writer thread: send writes, and on drop, let it finish and close.
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(crate) fn start(conn: Connection) -> anyhow::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("pj-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .context("could not start the SQLite writer thread")?;
        Ok(Writer {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` in the next transaction and returns its result once that is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write {
            f: Some(f),
            result: None,
            reply: Some(reply),
        });
        self.jobs
            .as_ref()
            .context("the SQLite writer is closed")?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the SQLite writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the SQLite writer stopped before answering"))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has written what was sent; joining it
        // closes the connection before the store is gone, as a reopen of the file expects.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A transaction left open by a bug must not swallow this batch.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let committed = match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                for job in &mut batch {
                    job.run(&mut conn);
                }
                match conn.execute_batch("COMMIT") {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        tracing::error!(error = %e, writes = batch.len(), "SQLite commit failed");
                        Err(e.to_string())
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "SQLite could not begin a write");
                Err(e.to_string())
            }
        };
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let conn = Connection::open(dir.path().join("w.db")).expect("a database");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL)")
            .expect("a table");
        (Writer::start(conn).expect("the writer starts"), dir)
    }

    fn count(dir: &tempfile::TempDir) -> i64 {
        let conn = Connection::open(dir.path().join("w.db")).expect("a reader");
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("a count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_undoes_only_itself_among_writes_committed_together() {
        let (w, dir) = writer();
        let w = std::sync::Arc::new(w);
        let mut handles = Vec::new();
        for i in 0..200 {
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                w.write(move |conn| {
                    conn.execute("INSERT INTO t (v) VALUES (?1)", [i])?;
                    match i % 10 {
                        3 => anyhow::bail!("write {i} fails after inserting"),
                        7 => panic!("write {i} panics after inserting"),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        let mut ok = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match (i % 10, h.await.expect("the task ends")) {
                (3 | 7, Err(_)) => {}
                (3 | 7, Ok(_)) => panic!("write {i} should have failed"),
                (_, Ok(v)) => {
                    assert_eq!(v, i as i32);
                    ok += 1;
                }
                (_, Err(e)) => panic!("write {i} failed: {e:#}"),
            }
        }
        assert_eq!(ok, 160);
        assert_eq!(count(&dir), 160, "what a failed write inserted is undone");
    }

    #[tokio::test]
    async fn a_write_is_stored_when_its_caller_hears_back() {
        let (w, dir) = writer();
        w.write(|conn| Ok(conn.execute("INSERT INTO t (v) VALUES (1)", [])?))
            .await
            .expect("the write");
        assert_eq!(count(&dir), 1);
        drop(w);
        assert_eq!(count(&dir), 1, "closing the writer keeps what it wrote");
    }
}
