//! The run's log: every line scrubbed, numbered, printed on stdout and shipped to `LOGS_URL` in
//! batches (at most every 500 ms or 200 lines), retried until delivered.
//!
//! Numbering and printing happen under one lock, so stdout shows the lines in `seq` order. A single
//! shipping task sends the batches one after another, so `seq` reaches the server without gaps.
//!
//! Memory and what the server stores are bounded whatever a child prints: an attempt's output
//! (every line that is not the runner's own note) may take [`QUOTA_LINES`] lines and
//! [`QUOTA_BYTES`] bytes, on stdout and in the shipped log alike; past that one marker line says
//! so and the rest is counted, not kept, and the run's end says how much was dropped. The queue
//! to the shipper holds `QUEUE_LINES` lines; should it fill all the same, lines are left out of
//! the shipped log (stdout still has them), counted, and said once.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pj_core::redact::cut_line;
use pj_core::time::rfc3339;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::callback::{Callbacks, Delivery, Persistence, WireLine};
use super::scrub::Scrubber;

/// Where the printed copy of the log goes.
pub type Output = Box<dyn Write + Send>;

const BATCH_INTERVAL: Duration = Duration::from_millis(500);
const BATCH_LINES: usize = 200;
/// Under the server's 1 MiB per batch, with room for the envelope.
const BATCH_BYTES: usize = 900 * 1024;
/// The most lines an attempt prints and ships.
pub const QUOTA_LINES: u64 = 20_000;
/// The most bytes of line text an attempt prints and ships (10 MiB).
pub const QUOTA_BYTES: u64 = 10 * 1024 * 1024;
/// The lines waiting for the shipper: room for a whole quota of output (so the quota, not the
/// server's pace, decides what an attempt ships) and the runner's own notes, and no more: at most
/// the quota's 10 MiB of output and 16 MiB of notes, whatever happens to the server.
const QUEUE_LINES: usize = QUOTA_LINES as usize + 1_024;

/// The stream a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// What a child process or the model wrote.
    Stdout,
    /// What a child process wrote to its stderr.
    Stderr,
    /// The runner's own notes.
    System,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
        }
    }
}

enum Msg {
    Line(WireLine, usize),
    Flush(oneshot::Sender<()>),
}

struct Printer {
    next_seq: u64,
    out: Output,
    /// Lines and bytes taken so far this attempt.
    lines: u64,
    bytes: u64,
    /// Output past the quota: dropped, counted.
    over_quota: bool,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// Lines the full queue kept from the shipped log, and whether the log said so yet.
    unshipped: u64,
    unshipped_noted: bool,
}

struct Inner {
    scrubber: Scrubber,
    printer: Mutex<Printer>,
    ship: Option<mpsc::Sender<Msg>>,
}

/// A handle to the run's log; cheap to clone.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

/// The background task that ships batches; [`Log::close`] ends it.
pub struct Shipper(Option<JoinHandle<()>>);

impl Log {
    /// A log that prints to `out` and, with `callbacks`, ships to `LOGS_URL`.
    pub fn start(scrubber: Scrubber, out: Output, callbacks: Option<Callbacks>) -> (Log, Shipper) {
        let printer = Mutex::new(Printer {
            next_seq: 0,
            out,
            lines: 0,
            bytes: 0,
            over_quota: false,
            dropped_lines: 0,
            dropped_bytes: 0,
            unshipped: 0,
            unshipped_noted: false,
        });
        match callbacks.filter(Callbacks::has_logs_url) {
            None => {
                let inner = Arc::new(Inner {
                    scrubber,
                    printer,
                    ship: None,
                });
                (Log { inner }, Shipper(None))
            }
            Some(callbacks) => {
                let (tx, rx) = mpsc::channel(QUEUE_LINES);
                let inner = Arc::new(Inner {
                    scrubber,
                    printer,
                    ship: Some(tx),
                });
                let log = Log {
                    inner: inner.clone(),
                };
                let handle = tokio::spawn(ship(rx, callbacks, log.clone()));
                (log, Shipper(Some(handle)))
            }
        }
    }

    /// A note of the runner's own.
    pub fn system(&self, text: impl AsRef<str>) {
        self.write(Stream::System, text.as_ref());
    }

    /// Text on `stream`, one log line per line of text.
    pub fn write(&self, stream: Stream, text: &str) {
        let scrubbed = self.inner.scrubber.scrub(text);
        for line in scrubbed.lines() {
            self.line(stream, line);
        }
        if scrubbed.is_empty() {
            self.line(stream, "");
        }
    }

    fn line(&self, stream: Stream, text: &str) {
        let text = cut_line(text.trim_end_matches('\r')).into_owned();
        let mut printer = self.inner.printer.lock().unwrap_or_else(|e| e.into_inner());
        let size = text.len() as u64;
        // The runner's own notes always pass (there are a few dozen); output has a quota.
        if stream != Stream::System {
            let over = printer.lines + 1 > QUOTA_LINES || printer.bytes + size > QUOTA_BYTES;
            if printer.over_quota || over {
                if !printer.over_quota {
                    printer.over_quota = true;
                    let marker = format!(
                        "… log quota reached ({QUOTA_LINES} lines or {} MiB per attempt): \
                         further output is dropped",
                        QUOTA_BYTES / (1024 * 1024)
                    );
                    self.emit(&mut printer, Stream::System, marker);
                }
                printer.dropped_lines += 1;
                printer.dropped_bytes += size;
                return;
            }
        }
        self.emit(&mut printer, stream, text);
    }

    /// Prints one line and queues it for shipping, under the printer's lock.
    fn emit(&self, printer: &mut Printer, stream: Stream, text: String) {
        printer.lines += 1;
        printer.bytes += text.len() as u64;
        // A closed stdout must not stop the run; the shipped log still has the line.
        let _ = writeln!(printer.out, "{text}");
        let _ = printer.out.flush();
        let Some(tx) = &self.inner.ship else {
            return;
        };
        if printer.unshipped > 0 && !printer.unshipped_noted && tx.capacity() >= 2 {
            let note = format!(
                "… {} lines were left out of the shipped log: the server took them more slowly \
                 than they came (stdout has them)",
                printer.unshipped
            );
            if Self::queue(printer, tx, Stream::System, note) {
                printer.unshipped_noted = true;
            }
        }
        if !Self::queue(printer, tx, stream, text) {
            printer.unshipped += 1;
        }
    }

    /// Queues a line for the shipper when there is room; `seq` counts queued lines only, so the
    /// server sees no gaps.
    fn queue(printer: &mut Printer, tx: &mpsc::Sender<Msg>, stream: Stream, text: String) -> bool {
        let line = WireLine {
            seq: printer.next_seq,
            ts: rfc3339(Utc::now()),
            stream: stream.as_str(),
            text,
        };
        let size = serde_json::to_vec(&line).map(|v| v.len()).unwrap_or(0) + 1;
        match tx.try_send(Msg::Line(line, size)) {
            Ok(()) => {
                printer.next_seq += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// One line on what the quota and the queue dropped, when they dropped anything.
    pub fn note_dropped(&self) {
        let (lines, bytes, unshipped) = {
            let p = self.inner.printer.lock().unwrap_or_else(|e| e.into_inner());
            (p.dropped_lines, p.dropped_bytes, p.unshipped)
        };
        if lines > 0 {
            self.system(format!(
                "the log quota dropped {lines} lines ({bytes} bytes) of output in this attempt"
            ));
        }
        if unshipped > 0 {
            self.system(format!(
                "{unshipped} lines were printed but not shipped: the shipping queue was full"
            ));
        }
    }

    /// Prints without shipping or numbering: for trouble with the shipping itself.
    fn local(&self, text: &str) {
        let text = self.inner.scrubber.scrub(text);
        let mut printer = self.inner.printer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(printer.out, "{text}");
        let _ = printer.out.flush();
    }

    /// Waits until every line written so far was shipped (or given up on), at most `within`.
    pub async fn flush(&self, within: Duration) -> bool {
        let Some(tx) = &self.inner.ship else {
            return true;
        };
        let (done_tx, done_rx) = oneshot::channel();
        let flushed = async {
            match tx.send(Msg::Flush(done_tx)).await {
                Ok(()) => done_rx.await.is_ok(),
                Err(_) => true,
            }
        };
        // A closed queue has nothing left to wait for; a full one is waited for too.
        tokio::time::timeout(within, flushed).await.unwrap_or(false)
    }
}

impl Shipper {
    /// Stops shipping; lines not yet shipped stay printed only.
    pub fn close(mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// The pending lines of the shipper, in `seq` order.
#[derive(Default)]
struct Pending {
    lines: Vec<WireLine>,
    sizes: Vec<usize>,
}

impl Pending {
    fn push(&mut self, line: WireLine, size: usize) {
        self.lines.push(line);
        self.sizes.push(size);
    }

    /// How many lines from the front make one batch.
    fn batch_len(&self) -> usize {
        let mut bytes = 0;
        let mut n = 0;
        for size in &self.sizes {
            if n == BATCH_LINES || (n > 0 && bytes + size > BATCH_BYTES) {
                break;
            }
            bytes += size;
            n += 1;
        }
        n
    }

    fn drop_front(&mut self, n: usize) {
        self.lines.drain(..n);
        self.sizes.drain(..n);
    }
}

async fn ship(mut rx: mpsc::Receiver<Msg>, callbacks: Callbacks, log: Log) {
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopped = false;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Line(line, size)) => {
                    pending.push(line, size);
                    if pending.lines.len() >= BATCH_LINES {
                        send_batches(&mut pending, &callbacks, &log, &mut stopped, false).await;
                    }
                }
                Some(Msg::Flush(done)) => {
                    send_batches(&mut pending, &callbacks, &log, &mut stopped, true).await;
                    let _ = done.send(());
                }
                None => {
                    send_batches(&mut pending, &callbacks, &log, &mut stopped, true).await;
                    return;
                }
            },
            _ = tick.tick() => {
                send_batches(&mut pending, &callbacks, &log, &mut stopped, false).await;
            }
        }
    }
}

/// Sends one batch, or with `all` every pending line. A batch that fails for a passing reason is
/// tried again, without end: its lines must not be lost, and `flush` bounds how long anyone waits.
async fn send_batches(
    pending: &mut Pending,
    callbacks: &Callbacks,
    log: &Log,
    stopped: &mut bool,
    all: bool,
) {
    let note = |text: String| log.local(&format!("pj-runner: {text}"));
    let mut retry = 0u32;
    while !pending.lines.is_empty() {
        if *stopped {
            let n = pending.lines.len();
            pending.drop_front(n);
            return;
        }
        let n = pending.batch_len();
        let persistence = Persistence {
            max_tries: 1,
            base: Duration::ZERO,
            cap: Duration::ZERO,
            until: None,
        };
        match callbacks
            .send_logs(&pending.lines[..n], persistence, &note)
            .await
        {
            Delivery::Delivered => {
                pending.drop_front(n);
                retry = 0;
                if !all {
                    return;
                }
            }
            Delivery::Superseded => {
                note("the server no longer takes logs for this attempt (409)".into());
                *stopped = true;
            }
            Delivery::Rejected { detail, .. } => {
                note(format!("a log batch was refused and dropped: {detail}"));
                pending.drop_front(n);
            }
            Delivery::GaveUp { detail } => {
                let wait = pj_llm::retry::backoff(
                    retry,
                    Duration::from_millis(250),
                    Duration::from_secs(4),
                );
                retry = retry.saturating_add(1);
                note(format!(
                    "shipping logs failed ({detail}); trying again in {} ms",
                    wait.as_millis()
                ));
                let until = Instant::now() + wait;
                tokio::time::sleep_until(until).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::{Reporting, Vars};

    /// A log whose server accepts connections and never answers, so nothing leaves the queue.
    async fn log_to_a_silent_server() -> (Log, Shipper, tokio::net::TcpListener) {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/logs", silent.local_addr().unwrap());
        let vars: Vars = [
            ("TASK_ID", "tsk_01test0log0queue"),
            ("TASK_ATTEMPT", "1"),
            ("WEBHOOK_URL", url.as_str()),
            ("LOGS_URL", url.as_str()),
            (
                "WEBHOOK_SECRET",
                "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ]
        .into_iter()
        .collect();
        let reporting = Reporting::from_vars(&vars).unwrap();
        let callbacks = Callbacks::new(reqwest::Client::new(), reporting, Scrubber::default());
        let (log, shipper) = Log::start(
            Scrubber::default(),
            Box::new(std::io::sink()),
            Some(callbacks),
        );
        (log, shipper, silent)
    }

    #[tokio::test]
    async fn when_the_queue_is_full_lines_are_counted_not_kept() {
        let (log, _shipper, _silent) = log_to_a_silent_server().await;
        let written = QUEUE_LINES + 3_000;
        for i in 0..written {
            log.system(format!("note {i}"));
        }
        let p = log.inner.printer.lock().unwrap();
        assert_eq!(p.lines, written as u64, "stdout has every line");
        // The shipper took its first batch out of the queue, then waited on the server.
        assert!(p.unshipped >= 3_000 - BATCH_LINES as u64, "{}", p.unshipped);
        assert!(p.unshipped <= 3_000, "{}", p.unshipped);
        assert_eq!(
            p.next_seq + p.unshipped,
            written as u64,
            "seq counts queued lines only"
        );
    }

    #[tokio::test]
    async fn output_past_the_quota_is_dropped_after_one_marker() {
        let (log, _shipper, _silent) = log_to_a_silent_server().await;
        for i in 0..QUOTA_LINES + 500 {
            log.write(Stream::Stdout, &format!("line {i}"));
        }
        log.system("a note of the runner's own still passes");
        let p = log.inner.printer.lock().unwrap();
        assert!(p.over_quota);
        assert_eq!(p.dropped_lines, 500);
        // The quota's lines, the marker, and the note.
        assert_eq!(p.lines, QUOTA_LINES + 2);
    }

    fn line(seq: u64, text: &str) -> (WireLine, usize) {
        let line = WireLine {
            seq,
            ts: "2024-01-01T00:00:00.000Z".into(),
            stream: "system",
            text: text.into(),
        };
        let size = serde_json::to_vec(&line).map(|v| v.len()).unwrap_or(0);
        (line, size)
    }

    #[test]
    fn a_batch_holds_at_most_200_lines() {
        let mut pending = Pending::default();
        for seq in 0..450 {
            let (l, size) = line(seq, "x");
            pending.push(l, size);
        }
        assert_eq!(pending.batch_len(), 200);
        pending.drop_front(200);
        assert_eq!(pending.lines[0].seq, 200);
    }

    #[test]
    fn a_batch_stays_under_the_servers_byte_limit() {
        let mut pending = Pending::default();
        let long = "y".repeat(16 * 1024);
        for seq in 0..100 {
            let (l, size) = line(seq, &long);
            pending.push(l, size);
        }
        let n = pending.batch_len();
        assert!(n < 100 && n > 1, "{n}");
        assert!(pending.sizes[..n].iter().sum::<usize>() <= BATCH_BYTES);
    }
}
