//! The contract of [`LogStore`]: deduplicated, ordered, expiring log lines.

use chrono::{DateTime, TimeDelta, Utc};
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{LogCursor, LogLine, LogStore, LogStream};

use crate::sample;
use crate::{must, start};

const SUITE: &str = "log_store";

/// Runs every check of the log store contract.
pub async fn log_store_contract<S: LogStore + ?Sized>(store: &S) {
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $( start(SUITE, stringify!($check)); $check(store).await; )*
        };
    }
    run!(
        appended_lines_read_back_equal,
        when_lines_repeat_should_store_them_once_and_keep_the_first,
        when_batch_overlaps_should_count_only_new_lines,
        same_seq_in_another_attempt_should_be_another_line,
        read_should_order_by_attempt_then_seq,
        read_should_start_strictly_after_the_cursor,
        read_should_page_with_the_limit,
        read_should_see_only_the_tasks_own_lines,
        expired_lines_should_not_be_read,
        when_nothing_is_stored_read_should_return_nothing,
        purge_should_keep_live_lines,
        when_a_retried_batch_is_split_differently_should_store_each_line_once,
        when_a_batch_straddles_stored_lines_should_store_only_those_around_them,
        a_page_may_end_between_lines_that_came_in_one_batch,
        concurrent_appends_of_overlapping_batches_should_store_each_line_once,
        a_thousand_lines_of_16_kib_should_read_back_equal,
    );
}

fn task() -> TaskId {
    TaskId::generate(Utc::now())
}

fn keep() -> DateTime<Utc> {
    sample::now() + TimeDelta::days(7)
}

async fn append<S: LogStore + ?Sized>(store: &S, task: &TaskId, lines: &[LogLine]) -> usize {
    must(store.append(task, lines, keep()).await, "append")
}

async fn read_all<S: LogStore + ?Sized>(store: &S, task: &TaskId) -> Vec<LogLine> {
    must(
        store.read(task, None, 1_000, sample::now()).await,
        format_args!("read {task}"),
    )
}

fn positions(lines: &[LogLine]) -> Vec<(u32, u64)> {
    lines.iter().map(|l| (l.attempt.0, l.seq)).collect()
}

async fn appended_lines_read_back_equal<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let lines = vec![
        sample::line(1, 0, "Cloning https://github.com/pithy-jaunt/contract"),
        LogLine {
            stream: LogStream::Stderr,
            ..sample::line(1, 1, "naïve ünïcode ✓ — 日本語 \"quotes\" \\ back\tslash")
        },
        LogLine {
            stream: LogStream::System,
            ..sample::line(1, 2, "")
        },
    ];
    assert_eq!(append(store, &task, &lines).await, 3, "three new lines");
    assert_eq!(
        read_all(store, &task).await,
        lines,
        "lines should read back field for field (timestamps to the millisecond at least)"
    );
}

async fn when_lines_repeat_should_store_them_once_and_keep_the_first<S: LogStore + ?Sized>(
    store: &S,
) {
    let task = task();
    let first = vec![sample::line(1, 0, "first"), sample::line(1, 1, "second")];
    assert_eq!(append(store, &task, &first).await, 2);
    let again = vec![
        sample::line(1, 0, "first, retried"),
        sample::line(1, 1, "second, retried"),
    ];
    assert_eq!(
        append(store, &task, &again).await,
        0,
        "lines already stored under their (attempt, seq) should not count as new"
    );
    let texts: Vec<String> = read_all(store, &task)
        .await
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        texts,
        vec!["first".to_owned(), "second".to_owned()],
        "a repeated line should be stored once, as it first came"
    );
}

async fn when_batch_overlaps_should_count_only_new_lines<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let first: Vec<LogLine> = (0..3).map(|s| sample::line(1, s, "a")).collect();
    assert_eq!(append(store, &task, &first).await, 3);
    let overlapping: Vec<LogLine> = (2..6).map(|s| sample::line(1, s, "b")).collect();
    assert_eq!(
        append(store, &task, &overlapping).await,
        3,
        "of seqs 2 to 5, only 3 to 5 are new"
    );
    assert_eq!(
        positions(&read_all(store, &task).await),
        (0..6).map(|s| (1, s)).collect::<Vec<_>>()
    );
    assert_eq!(
        must(store.append(&task, &[], keep()).await, "empty append"),
        0,
        "an empty batch stores nothing"
    );
}

async fn same_seq_in_another_attempt_should_be_another_line<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    assert_eq!(
        append(store, &task, &[sample::line(1, 0, "attempt one")]).await,
        1
    );
    assert_eq!(
        append(store, &task, &[sample::line(2, 0, "attempt two")]).await,
        1,
        "seq counts from 0 in every attempt: the same seq of another attempt is a new line"
    );
    let lines = read_all(store, &task).await;
    assert_eq!(positions(&lines), vec![(1, 0), (2, 0)]);
    assert_eq!(lines[1].text, "attempt two");
}

async fn read_should_order_by_attempt_then_seq<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let shuffled = [(2, 1), (1, 2), (2, 0), (1, 0), (1, 10), (1, 1), (3, 0)];
    for (attempt, seq) in shuffled {
        append(store, &task, &[sample::line(attempt, seq, "x")]).await;
    }
    assert_eq!(
        positions(&read_all(store, &task).await),
        vec![(1, 0), (1, 1), (1, 2), (1, 10), (2, 0), (2, 1), (3, 0)],
        "lines should read in (attempt, seq) order whatever order they came in \
         (and seq 10 after 2: numbers, not text)"
    );
}

async fn read_should_start_strictly_after_the_cursor<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let lines: Vec<LogLine> = [(1, 0), (1, 1), (2, 0), (2, 1)]
        .into_iter()
        .map(|(a, s)| sample::line(a, s, "x"))
        .collect();
    append(store, &task, &lines).await;
    let after = |attempt, seq| {
        Some(LogCursor {
            attempt: Attempt(attempt),
            seq,
        })
    };
    let task = &task;
    let read = |cursor| async move {
        positions(&must(
            store.read(task, cursor, 100, sample::now()).await,
            "read",
        ))
    };
    assert_eq!(read(after(1, 0)).await, vec![(1, 1), (2, 0), (2, 1)]);
    assert_eq!(
        read(after(1, 1)).await,
        vec![(2, 0), (2, 1)],
        "after the last line of an attempt comes the next attempt"
    );
    assert_eq!(
        read(after(1, 5)).await,
        vec![(2, 0), (2, 1)],
        "a cursor between lines should work"
    );
    assert_eq!(read(after(2, 1)).await, Vec::<(u32, u64)>::new());
    assert_eq!(read(after(9, 0)).await, Vec::<(u32, u64)>::new());
}

async fn read_should_page_with_the_limit<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let lines: Vec<LogLine> = (0..7).map(|s| sample::line(1, s, "x")).collect();
    append(store, &task, &lines).await;
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = must(store.read(&task, after, 3, sample::now()).await, "read");
        assert!(page.len() <= 3, "a page should hold at most the limit");
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        seen.extend(positions(&page));
        assert!(seen.len() <= 7, "paging should end");
    }
    assert_eq!(seen, (0..7).map(|s| (1, s)).collect::<Vec<_>>());
    assert!(
        must(store.read(&task, None, 0, sample::now()).await, "read").is_empty(),
        "a limit of zero should return nothing"
    );
}

async fn read_should_see_only_the_tasks_own_lines<S: LogStore + ?Sized>(store: &S) {
    let (one, other) = (task(), task());
    append(store, &one, &[sample::line(1, 0, "mine")]).await;
    append(store, &other, &[sample::line(1, 0, "theirs")]).await;
    let lines = read_all(store, &one).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].text, "mine",
        "a task should see only its own lines"
    );
}

async fn expired_lines_should_not_be_read<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let now = sample::now();
    must(
        store
            .append(
                &task,
                &[sample::line(1, 0, "expired")],
                now - TimeDelta::seconds(1),
            )
            .await,
        "append expired",
    );
    must(
        store
            .append(
                &task,
                &[sample::line(1, 1, "short-lived")],
                now + TimeDelta::minutes(1),
            )
            .await,
        "append short-lived",
    );
    append(store, &task, &[sample::line(1, 2, "kept")]).await;
    let task = &task;
    let read_at = |at| async move {
        must(store.read(task, None, 100, at).await, "read")
            .into_iter()
            .map(|l| l.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        read_at(now).await,
        vec!["short-lived".to_owned(), "kept".to_owned()],
        "expired lines should not be read"
    );
    assert_eq!(
        read_at(now + TimeDelta::minutes(2)).await,
        vec!["kept".to_owned()],
        "read should judge expiry by the time it is given"
    );
}

async fn when_nothing_is_stored_read_should_return_nothing<S: LogStore + ?Sized>(store: &S) {
    assert!(read_all(store, &task()).await.is_empty());
}

async fn purge_should_keep_live_lines<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let now = sample::now();
    must(
        store
            .append(
                &task,
                &[sample::line(1, 0, "expired")],
                now - TimeDelta::seconds(1),
            )
            .await,
        "append expired",
    );
    append(store, &task, &[sample::line(1, 1, "kept")]).await;
    must(store.purge_expired(now).await, "purge_expired");
    let texts: Vec<String> = read_all(store, &task)
        .await
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert_eq!(
        texts,
        vec!["kept".to_owned()],
        "purge should keep live lines"
    );
}

fn texts(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|l| l.text.clone()).collect()
}

fn batch(seqs: std::ops::Range<u64>, text: &str) -> Vec<LogLine> {
    seqs.map(|s| sample::line(1, s, &format!("{text} {s}")))
        .collect()
}

async fn when_a_retried_batch_is_split_differently_should_store_each_line_once<
    S: LogStore + ?Sized,
>(
    store: &S,
) {
    let task = task();
    assert_eq!(append(store, &task, &batch(0..10, "first")).await, 10);
    assert_eq!(append(store, &task, &batch(20..30, "first")).await, 10);
    assert_eq!(
        append(store, &task, &batch(5..25, "retried")).await,
        10,
        "of seqs 5 to 24, only the gap 10 to 19 is new"
    );
    // The same lines again, cut at other places than they were stored.
    for part in [0..7, 7..13, 13..30] {
        assert_eq!(
            append(store, &task, &batch(part.clone(), "again")).await,
            0,
            "seqs {part:?} are all stored"
        );
    }
    let expected: Vec<String> = (0..30)
        .map(|s| {
            let first = if (10..20).contains(&s) {
                "retried"
            } else {
                "first"
            };
            format!("{first} {s}")
        })
        .collect();
    assert_eq!(
        texts(&read_all(store, &task).await),
        expected,
        "every line once, as it first came, in order"
    );
}

async fn when_a_batch_straddles_stored_lines_should_store_only_those_around_them<
    S: LogStore + ?Sized,
>(
    store: &S,
) {
    let task = task();
    assert_eq!(append(store, &task, &batch(10..20, "inner")).await, 10);
    assert_eq!(append(store, &task, &batch(24..25, "inner")).await, 1);
    assert_eq!(
        append(store, &task, &batch(0..30, "outer")).await,
        19,
        "seqs 0 to 9, 20 to 23 and 25 to 29 are new"
    );
    let lines = read_all(store, &task).await;
    assert_eq!(
        positions(&lines),
        (0..30).map(|s| (1, s)).collect::<Vec<_>>()
    );
    for line in &lines {
        let stored_first = (10..20).contains(&line.seq) || line.seq == 24;
        let expected = if stored_first { "inner" } else { "outer" };
        assert_eq!(line.text, format!("{expected} {}", line.seq));
    }
}

async fn a_page_may_end_between_lines_that_came_in_one_batch<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    let mut lines = batch(0..10, "one");
    lines.extend((0..3).map(|s| sample::line(2, s, "two")));
    assert_eq!(append(store, &task, &lines).await, 13);
    let task = &task;
    let page = |attempt, seq, limit| async move {
        let after = Some(LogCursor {
            attempt: Attempt(attempt),
            seq,
        });
        positions(&must(
            store.read(task, after, limit, sample::now()).await,
            "read",
        ))
    };
    assert_eq!(
        page(1, 3, 4).await,
        vec![(1, 4), (1, 5), (1, 6), (1, 7)],
        "a page may start and end inside one batch's lines"
    );
    assert_eq!(
        page(1, 7, 3).await,
        vec![(1, 8), (1, 9), (2, 0)],
        "and run on into the next attempt"
    );
    assert_eq!(page(2, 0, 100).await, vec![(2, 1), (2, 2)]);
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = must(store.read(task, after, 1, sample::now()).await, "read");
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        seen.extend(positions(&page));
        assert!(seen.len() <= 13, "paging should end");
    }
    assert_eq!(seen, positions(&lines), "one line a page, every line once");
}

async fn concurrent_appends_of_overlapping_batches_should_store_each_line_once<
    S: LogStore + ?Sized,
>(
    store: &S,
) {
    for round in 0..3 {
        let task = task();
        let (a, b, c) = (batch(0..200, "a"), batch(100..300, "b"), batch(0..300, "c"));
        let (x, y, z) = futures::join!(
            store.append(&task, &a, keep()),
            store.append(&task, &b, keep()),
            store.append(&task, &c, keep()),
        );
        let stored = must(x, "append a") + must(y, "append b") + must(z, "append c");
        assert_eq!(
            stored, 300,
            "round {round}: three racing appends of seqs 0 to 299 should count each line once"
        );
        let lines = read_all(store, &task).await;
        assert_eq!(
            positions(&lines),
            (0..300).map(|s| (1, s)).collect::<Vec<_>>(),
            "round {round}: each line stored once"
        );
    }
}

async fn a_thousand_lines_of_16_kib_should_read_back_equal<S: LogStore + ?Sized>(store: &S) {
    let task = task();
    // Text that does not compress: a stored line takes its full size.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut text = || {
        (0..16 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'!' + (state % 94) as u8)
            })
            .collect::<String>()
    };
    let lines: Vec<LogLine> = (0..1_000).map(|s| sample::line(1, s, &text())).collect();
    assert_eq!(append(store, &task, &lines).await, 1_000);
    assert_eq!(
        append(store, &task, &lines[500..]).await,
        0,
        "a redelivered half stores nothing"
    );
    let read = read_all(store, &task).await;
    assert_eq!(read.len(), 1_000);
    assert!(read == lines, "16 MiB of lines should read back equal");
    let page = must(
        store
            .read(&task, Some(lines[499].cursor()), 2, sample::now())
            .await,
        "read",
    );
    assert_eq!(positions(&page), vec![(1, 500), (1, 501)]);
}
