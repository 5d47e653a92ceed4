use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chrono::Utc;
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{DispatchError, Runner};
use pj_local::{LocalRunner, RunnerTimings};
use tokio::sync::mpsc;

use crate::support::{
    Fixture, eventually, fast_timings, is_running, job, plain, read_pid, starttime,
};

#[tokio::test]
async fn when_the_runner_exits_with_3_its_exit_says_exit_status_3() {
    let mut f = Fixture::with_script(
        "echo \"task $TASK_ID attempt $TASK_ATTEMPT\"\necho 'to stderr' >&2\nexit 3\n",
    );
    // Kept, so the work log can be read after the exit.
    let job = job(&[("KEEP_ALIVE", plain("true"))]);
    f.runner.start(&job).await.expect("started");

    let exit = f.next_exit().await;
    assert_eq!(exit.task_id, job.task_id);
    assert_eq!(exit.attempt, job.attempt);
    assert_eq!(exit.detail, "exit status 3");
    let log = std::fs::read_to_string(f.runner.log_file(&job.task_id, job.attempt)).expect("log");
    assert!(
        log.contains(&format!("task {} attempt 1", job.task_id)),
        "{log}"
    );
    assert!(log.contains("to stderr"), "{log}");
}

#[tokio::test]
async fn the_workspace_is_the_working_directory() {
    let mut f = Fixture::with_script("pwd\necho scratch > file.txt\n");
    let job = job(&[("KEEP_ALIVE", plain("true"))]);
    f.runner.start(&job).await.expect("started");

    let exit = f.next_exit().await;
    assert_eq!(exit.detail, "exit status 0");
    let workspace = f.runner.workspace(&job.task_id, job.attempt);
    let log = std::fs::read_to_string(f.runner.log_file(&job.task_id, job.attempt)).expect("log");
    assert_eq!(log.trim(), workspace.to_string_lossy());
}

#[tokio::test]
async fn the_workspace_and_the_work_log_go_away_after_the_exit() {
    let mut f = Fixture::with_script("echo output\necho scratch > file.txt\n");
    let job = job(&[]);
    f.runner.start(&job).await.expect("started");

    let exit = f.next_exit().await;
    assert_eq!(exit.detail, "exit status 0");
    let workspace = f.runner.workspace(&job.task_id, job.attempt);
    assert!(!workspace.exists(), "workspace removed");
    let log_file = f.runner.log_file(&job.task_id, job.attempt);
    assert!(!log_file.exists(), "work log removed");
}

#[tokio::test]
async fn with_keep_alive_the_workspace_stays_after_the_exit() {
    let mut f = Fixture::with_script("echo scratch > file.txt\n");
    let job = job(&[("KEEP_ALIVE", plain("true"))]);
    f.runner.start(&job).await.expect("started");

    f.next_exit().await;
    let workspace = f.runner.workspace(&job.task_id, job.attempt);
    let kept = std::fs::read_to_string(workspace.join("file.txt")).expect("kept file");
    assert_eq!(kept.trim(), "scratch");
}

#[tokio::test]
async fn a_leftover_workspace_of_the_same_attempt_is_replaced() {
    let mut f = Fixture::with_script("ls -A\n");
    let job = job(&[("KEEP_ALIVE", plain("true"))]);
    let workspace = f.runner.workspace(&job.task_id, job.attempt);
    std::fs::create_dir_all(&workspace).expect("leftover");
    std::fs::write(workspace.join("stale.txt"), "old").expect("stale file");

    f.runner.start(&job).await.expect("started");
    f.next_exit().await;
    let log = std::fs::read_to_string(f.runner.log_file(&job.task_id, job.attempt)).expect("log");
    assert!(!log.contains("stale.txt"), "{log}");
}

#[tokio::test]
async fn the_runner_ref_names_the_pid_and_its_start_time() {
    let mut f = Fixture::with_script("exec sleep 300\n");
    let job = job(&[]);
    let runner_ref = f.runner.start(&job).await.expect("started");

    let parts: Vec<&str> = runner_ref.split(':').collect();
    assert_eq!(parts.len(), 3, "{runner_ref}");
    assert_eq!(parts[0], "pid");
    let pid: i32 = parts[1].parse().expect("pid");
    assert_eq!(parts[2].parse::<u64>().expect("start time"), starttime(pid));

    f.runner
        .stop(&job.task_id, job.attempt, Some(&runner_ref))
        .await
        .expect("stopped");
    f.next_exit().await;
}

#[tokio::test]
async fn starting_the_same_attempt_again_returns_the_runner_already_there() {
    let mut f = Fixture::with_script("exec sleep 300\n");
    let job = job(&[]);
    let first = f.runner.start(&job).await.expect("started");
    let second = f.runner.start(&job).await.expect("started again");
    assert_eq!(first, second);

    f.runner
        .stop(&job.task_id, job.attempt, None)
        .await
        .expect("stopped");
    f.next_exit().await;
    assert!(f.exits.try_recv().is_err(), "one runner, one exit");
}

#[tokio::test]
async fn stop_ends_the_whole_process_group_including_a_grandchild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 300 &\necho $! > {}\nwait\n",
        shell_words::quote(&pid_file.to_string_lossy())
    );
    let mut f = Fixture::with_script(&script);
    let job = job(&[]);
    let runner_ref = f.runner.start(&job).await.expect("started");
    let grandchild = read_pid(&pid_file).await;
    assert!(is_running(grandchild));

    f.runner
        .stop(&job.task_id, job.attempt, Some(&runner_ref))
        .await
        .expect("stopped");

    let exit = f.next_exit().await;
    assert_eq!(exit.detail, "killed by signal 15 (SIGTERM)");
    eventually("the grandchild ends", || !is_running(grandchild)).await;
}

#[tokio::test]
async fn stop_kills_a_runner_that_ignores_sigterm_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!(
        "trap '' TERM\nsleep 300 &\necho $! > {}\nwait\n",
        shell_words::quote(&pid_file.to_string_lossy())
    );
    let timings = RunnerTimings {
        stop_grace: Duration::from_millis(300),
        ..fast_timings()
    };
    let mut f = Fixture::with_script_and_timings(&script, timings);
    let job = job(&[]);
    f.runner.start(&job).await.expect("started");
    let grandchild = read_pid(&pid_file).await;

    f.runner
        .stop(&job.task_id, job.attempt, None)
        .await
        .expect("stopped");

    let exit = f.next_exit().await;
    assert_eq!(exit.detail, "killed by signal 9 (SIGKILL)");
    eventually("the grandchild ends", || !is_running(grandchild)).await;
}

#[tokio::test]
async fn stopping_a_runner_that_is_gone_is_ok() {
    let f = Fixture::with_script("exit 0\n");
    let task = TaskId::generate(Utc::now());
    for runner_ref in [None, Some("pid:4194000:12345"), Some("not a local ref")] {
        f.runner
            .stop(&task, Attempt(1), runner_ref)
            .await
            .expect("nothing to stop is fine");
    }
}

#[tokio::test]
async fn a_runner_past_its_deadline_is_killed_by_the_safety_net() {
    let timings = RunnerTimings {
        deadline_grace: Duration::from_millis(200),
        ..fast_timings()
    };
    let mut f = Fixture::with_script_and_timings("exec sleep 300\n", timings);
    let mut job = job(&[]);
    job.deadline = Utc::now() - chrono::Duration::seconds(1);
    f.runner.start(&job).await.expect("started");

    let exit = f.next_exit().await;
    assert_eq!(exit.detail, "killed by signal 15 (SIGTERM)");
}

#[tokio::test]
async fn a_missing_program_fails_the_start_for_good_naming_pj_runner_cmd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fixture::with_command(dir, "pj-no-such-runner-here run", fast_timings());
    let job = job(&[]);

    let err = f.runner.start(&job).await.expect_err("cannot start");
    let DispatchError::Permanent { message } = err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(message.contains("PJ_RUNNER_CMD"), "{message}");
    assert!(message.contains("pj-no-such-runner-here"), "{message}");
}

#[tokio::test]
async fn a_program_that_is_not_executable_fails_the_start_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = dir.path().join("runner.sh");
    std::fs::write(&program, "#!/bin/sh\nexit 0\n").expect("write");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let command = shell_words::quote(&program.to_string_lossy()).into_owned();
    let f = Fixture::with_command(dir, &command, fast_timings());

    let err = f.runner.start(&job(&[])).await.expect_err("cannot start");
    let DispatchError::Permanent { message } = err else {
        panic!("expected a permanent error, got {err:?}");
    };
    assert!(message.contains("PJ_RUNNER_CMD"), "{message}");
    assert!(message.contains("runner.sh"), "{message}");
}

#[tokio::test]
async fn an_empty_or_unsplittable_command_is_refused_when_the_runner_is_built() {
    let dir = tempfile::tempdir().expect("tempdir");
    for command in ["", "   ", "pj-runner 'run"] {
        let (tx, _rx) = mpsc::unbounded_channel();
        let err = match LocalRunner::new(command, dir.path().join("work"), tx) {
            Ok(_) => panic!("{command:?} was accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("PJ_RUNNER_CMD"), "{command:?}: {err}");
    }
}

#[tokio::test]
async fn after_shutdown_runners_keep_running_and_starts_are_refused_as_retryable() {
    let mut f = Fixture::with_script("exec sleep 300\n");
    let job = job(&[]);
    let runner_ref = f.runner.start(&job).await.expect("started");
    let pid: i32 = runner_ref
        .split(':')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("pid");

    f.runner.shutdown(Duration::from_secs(5)).await;

    assert!(is_running(pid), "the runner outlives the server's shutdown");
    assert!(f.exits.try_recv().is_err(), "no exit is reported for it");
    let err = f.runner.start(&job).await.expect_err("refused");
    assert!(matches!(err, DispatchError::Retryable { .. }), "{err:?}");

    // The process outlived its watcher; end it through its ref, as after a restart.
    f.runner
        .stop(&job.task_id, job.attempt, Some(&runner_ref))
        .await
        .expect("stopped");
    eventually("the runner ends", || !is_running(pid)).await;
}

#[tokio::test]
async fn a_task_input_larger_than_one_variable_may_be_reaches_the_runner_as_a_file() {
    // 100,000 characters of three bytes each: 300 KB, over Linux's 128 KiB for one variable.
    let analysis = "界".repeat(100_000);
    let mut f = Fixture::with_script(
        "test -z \"$CODERABBIT_ANALYSIS\" && wc -c < \"$CODERABBIT_ANALYSIS_FILE\"\n",
    );
    let job = job(&[
        ("CODERABBIT_ANALYSIS", plain(&analysis)),
        ("KEEP_ALIVE", plain("true")),
    ]);
    f.runner.start(&job).await.expect("started");

    let exit = f.next_exit().await;
    assert_eq!(exit.detail, "exit status 0");
    let log = std::fs::read_to_string(f.runner.log_file(&job.task_id, job.attempt)).expect("log");
    assert_eq!(log.trim(), analysis.len().to_string());
}

#[tokio::test]
async fn a_start_that_fails_on_the_tasks_own_input_is_not_retried() {
    let f = Fixture::with_script("true\n");
    // Any other variable that large makes the start itself fail (E2BIG).
    let job = job(&[("TARGET_REPO", plain(&"x".repeat(200 * 1024)))]);
    let err = f.runner.start(&job).await.expect_err("the start fails");
    assert!(
        matches!(err, DispatchError::Permanent { .. }),
        "a failure no retry can fix must not be retried: {err:?}"
    );
}
