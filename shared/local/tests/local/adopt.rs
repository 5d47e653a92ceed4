use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::Runner;

use crate::support::{Fixture, eventually, is_running, job, starttime};

/// A process in its own group, like a runner a previous server started.
fn orphan_like(args: &[&str]) -> (Child, String) {
    let child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let runner_ref = format!("pid:{pid}:{}", starttime(pid));
    (child, runner_ref)
}

/// Reaps a process the test started, off the async threads.
async fn reap(mut child: Child) {
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
}

#[tokio::test]
async fn adopting_a_live_runner_watches_it_until_it_ends() {
    let mut f = Fixture::with_script("exit 0\n");
    let (child, runner_ref) = orphan_like(&["sleep", "1"]);
    let task = TaskId::generate(Utc::now());

    assert!(f.runner.adopt(&task, Attempt(2), &runner_ref));

    let exit = f.next_exit().await;
    assert_eq!(exit.task_id, task);
    assert_eq!(exit.attempt, Attempt(2));
    assert!(exit.detail.contains("after a restart"), "{}", exit.detail);
    reap(child).await;
}

#[tokio::test]
async fn an_adopted_runner_can_be_stopped() {
    let mut f = Fixture::with_script("exit 0\n");
    let (child, runner_ref) = orphan_like(&["sleep", "300"]);
    let pid = child.id() as i32;
    let task = TaskId::generate(Utc::now());
    assert!(f.runner.adopt(&task, Attempt(1), &runner_ref));

    f.runner
        .stop(&task, Attempt(1), None)
        .await
        .expect("stopped");

    let exit = f.next_exit().await;
    assert_eq!(exit.task_id, task);
    reap(child).await;
    assert!(!is_running(pid));
}

#[tokio::test]
async fn adopting_a_runner_that_is_gone_reports_its_exit_at_once() {
    let mut f = Fixture::with_script("exit 0\n");
    let (mut child, runner_ref) = orphan_like(&["sleep", "300"]);
    child.kill().expect("kill");
    reap(child).await;
    let task = TaskId::generate(Utc::now());

    assert!(!f.runner.adopt(&task, Attempt(1), &runner_ref));

    let exit = f.next_exit().await;
    assert_eq!(exit.task_id, task);
    assert_eq!(
        exit.detail,
        "runner process is gone after a restart of the server"
    );
}

#[tokio::test]
async fn a_reused_pid_is_not_mistaken_for_our_runner() {
    let mut f = Fixture::with_script("exit 0\n");
    let (mut child, _) = orphan_like(&["sleep", "300"]);
    let pid = child.id() as i32;
    let stale_ref = format!("pid:{pid}:{}", starttime(pid) + 1);
    let task = TaskId::generate(Utc::now());

    assert!(!f.runner.adopt(&task, Attempt(1), &stale_ref));
    f.next_exit().await;
    f.runner
        .stop(&task, Attempt(1), Some(&stale_ref))
        .await
        .expect("nothing of ours to stop");
    assert!(
        is_running(pid),
        "another process under a reused pid is left alone"
    );

    child.kill().expect("kill");
    reap(child).await;
}

#[tokio::test]
async fn a_runner_from_before_a_restart_is_adopted_by_the_next_server_and_its_workspace_removed() {
    let mut before = Fixture::with_script("exec sleep 300\n");
    let job = job(&[]);
    let runner_ref = before.runner.start(&job).await.expect("started");
    let workspace = before.runner.workspace(&job.task_id, job.attempt);
    before.runner.shutdown(Duration::from_secs(5)).await;
    assert!(workspace.exists());

    // The next server process, on the same data dir.
    let (tx, mut exits) = tokio::sync::mpsc::unbounded_channel();
    let after = pj_local::LocalRunner::new("true", before.dir.path().join("work"), tx)
        .expect("runner")
        .with_timings(crate::support::fast_timings());
    assert!(after.adopt(&job.task_id, job.attempt, &runner_ref));
    after
        .stop(&job.task_id, job.attempt, Some(&runner_ref))
        .await
        .expect("stopped");

    let exit = crate::support::next_exit(&mut exits).await;
    assert_eq!(exit.task_id, job.task_id);
    assert!(exit.detail.contains("after a restart"), "{}", exit.detail);
    eventually("the workspace is removed", || !workspace.exists()).await;
    assert!(before.exits.try_recv().is_err());
}
