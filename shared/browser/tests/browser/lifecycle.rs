use std::time::Duration;

use pj_browser::{BrowserError, SessionOptions};

use crate::support::{launch, leftover_processes, options, processes_naming, site, turn};

#[tokio::test]
async fn no_chromium_process_should_outlive_a_closed_session() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/table")).await.expect("loads");
    let profile = session
        .profile_dir()
        .expect("a local profile")
        .to_path_buf();
    assert!(
        processes_naming(&profile).len() >= 2,
        "Chromium runs as several processes"
    );
    session.close().await;
    assert_eq!(leftover_processes(&profile).await, Vec::<u32>::new());
    assert!(!profile.exists(), "the profile is removed");
}

#[tokio::test]
async fn no_chromium_process_should_outlive_a_dropped_session() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/table")).await.expect("loads");
    let profile = session
        .profile_dir()
        .expect("a local profile")
        .to_path_buf();
    drop(session);
    assert_eq!(leftover_processes(&profile).await, Vec::<u32>::new());
    assert!(!profile.exists(), "the profile is removed");
}

#[tokio::test]
async fn no_chromium_process_should_outlive_a_failed_step() {
    let _turn = turn().await;
    let site = site().await;
    let profile = {
        let session = launch(SessionOptions {
            step_timeout: Duration::from_millis(500),
            ..options()
        })
        .await;
        session.navigate(&site.url("/table")).await.expect("loads");
        let profile = session
            .profile_dir()
            .expect("a local profile")
            .to_path_buf();
        let run = async {
            session.click("#no-such-button").await?;
            Ok::<_, BrowserError>(())
        };
        assert!(run.await.is_err());
        profile
        // The session goes out of scope here, as on a task's early return.
    };
    assert_eq!(leftover_processes(&profile).await, Vec::<u32>::new());
}

#[tokio::test]
async fn no_chromium_process_should_outlive_a_cancelled_task() {
    let _turn = turn().await;
    let site = site().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let url = site.url("/never");
    let task = tokio::spawn(async move {
        let session = launch(SessionOptions {
            navigation_timeout: Duration::from_secs(60),
            ..options()
        })
        .await;
        let _ = tx.send(
            session
                .profile_dir()
                .expect("a local profile")
                .to_path_buf(),
        );
        // Hangs on a page that never loads until the task is cancelled.
        let _ = session.navigate(&url).await;
    });
    let profile = rx.await.expect("the browser started");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !processes_naming(&profile).is_empty(),
        "the browser runs while the task does"
    );
    task.abort();
    let _ = task.await;
    assert_eq!(leftover_processes(&profile).await, Vec::<u32>::new());
    assert!(!profile.exists(), "the profile is removed");
}

#[tokio::test]
async fn a_crashed_browser_should_fail_the_next_step_and_leave_no_process() {
    let _turn = turn().await;
    let site = site().await;
    let session = launch(options()).await;
    session.navigate(&site.url("/table")).await.expect("loads");
    let profile = session
        .profile_dir()
        .expect("a local profile")
        .to_path_buf();
    // The browser's main process is the one whose command line has the profile and no
    // `--type=` (renderers, zygotes and utilities have one).
    let main = processes_naming(&profile)
        .into_iter()
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmdline).contains("--type=")
        })
        .expect("the browser's main process");
    // SAFETY: sends a signal to a process this test's browser started.
    unsafe {
        libc::kill(main as libc::pid_t, libc::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let error = session
        .extract("h1")
        .await
        .expect_err("the browser is gone");
    assert!(
        matches!(
            error,
            BrowserError::BrowserGone {
                action: "extract",
                ..
            } | BrowserError::Timeout { .. }
        ),
        "{error:?}"
    );
    drop(session);
    assert_eq!(leftover_processes(&profile).await, Vec::<u32>::new());
}
