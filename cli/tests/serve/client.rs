//! `pj` as a client: the real binary against a running `pj serve` (and, where the server cannot
//! be made to misbehave, against wiremock): every subcommand, `--follow` under a pseudo-terminal
//! and without one, `--json`, the dev token, and the exit statuses of the contract.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{ALICE, Server, fake_runner, task_body};

/// What a run of `pj` left.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// Runs `pj ARGS` without a terminal against `url`, with `token` as `PJ_TOKEN`, in `cwd` (an
/// empty directory unless given, so no `./.pj/dev-token` is found).
async fn pj_in(url: &str, token: Option<&str>, cwd: Option<&Path>, args: &[&str]) -> Run {
    let empty = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pj"));
    cmd.args(args)
        .current_dir(cwd.unwrap_or(empty.path()))
        .env("PJ_URL", url)
        .env_remove("PJ_TOKEN")
        .env_remove("PJ_STREAM_URL")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    if let Some(token) = token {
        cmd.env("PJ_TOKEN", token);
    }
    let out = cmd.output().await.expect("pj runs");
    Run {
        code: out.status.code().expect("pj exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn pj(server: &Server, args: &[&str]) -> Run {
    pj_in(&server.base, Some(ALICE), None, args).await
}

/// Runs `pj ARGS` on a pseudo-terminal (stdin, stdout and stderr), as a person would; returns
/// the exit status and everything the terminal received.
async fn pj_on_a_terminal(url: &str, token: &str, args: &[&str]) -> (u32, String) {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let (url, token) = (url.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let cwd = tempfile::tempdir().expect("temp dir");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_pj"));
        cmd.args(&args);
        cmd.cwd(cwd.path());
        cmd.env("PJ_URL", &url);
        cmd.env("PJ_TOKEN", &token);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        let mut child = pty.slave.spawn_command(cmd).expect("pj starts");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("a reader");
        let reading = std::thread::spawn(move || {
            let mut out = Vec::new();
            // Ends with EIO once the child is gone and the last slave end closed.
            let _ = reader.read_to_end(&mut out);
            out
        });
        let status = child.wait().expect("pj exits");
        drop(pty.master);
        let out = reading.join().expect("the reader");
        (
            status.exit_code(),
            String::from_utf8_lossy(&out).into_owned(),
        )
    })
    .await
    .expect("the terminal run")
}

fn id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_owned()
}

/// A port on this machine that nobody listens on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn create_show_list_and_logs_tell_the_same_task_to_a_person_and_to_a_script() {
    let server = Server::start(&[]).await;
    let created = pj(
        &server,
        &[
            "create",
            "--json",
            "--repo",
            "https://github.com/example/repo",
            "--base",
            "main",
            "--title",
            "A README",
            "Add a README fake:logs=3",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{created:?}");
    let task = created.json();
    assert_eq!(task["title"], "A README");
    assert_eq!(task["base_branch"], "main");
    let tid = id(&task);
    server.wait_for(ALICE, &tid, "completed", 30).await;

    let shown = pj(&server, &["show", &tid]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    for expected in [
        "status:",
        "completed",
        "pr:",
        "https://github.com/example/repo/pull/1",
        "1200 in, 300 out tokens",
    ] {
        assert!(shown.stdout.contains(expected), "{expected}: {shown:?}");
    }
    assert!(
        !shown.stdout.contains('\x1b'),
        "no escape codes off a terminal"
    );
    assert_eq!(
        pj(&server, &["show", &tid, "--json"]).await.json()["id"],
        tid
    );

    let listed = pj(&server, &["list"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    let row = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&tid))
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert!(row.contains("completed") && row.contains("code_change") && row.contains("A README"));
    let page = pj(&server, &["list", "--status", "completed", "--json"])
        .await
        .json();
    assert_eq!(page["tasks"][0]["id"], tid);
    let none = pj(&server, &["list", "--status", "failed", "--json"])
        .await
        .json();
    assert_eq!(none["tasks"], json!([]));

    let logs = pj(&server, &["logs", &tid]).await;
    assert_eq!(logs.code, 0, "{logs:?}");
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{logs:?}");
    assert!(
        lines[0].contains("stdout") && lines[0].ends_with("step 0 of 3"),
        "{logs:?}"
    );
    let stored = pj(&server, &["logs", &tid, "--json"]).await.json();
    assert_eq!(stored["lines"].as_array().map(Vec::len), Some(3));
    assert_eq!(stored["lines"][2]["text"], "step 2 of 3");
}

#[tokio::test]
async fn execute_approve_cancel_and_retry_act_on_the_task() {
    let server = Server::start(&[]).await;
    let idle = server.create_idle(ALICE).await;
    let executed = pj(&server, &["execute", &id(&idle)]).await;
    assert_eq!(executed.code, 0, "{executed:?}");
    assert!(executed.stdout.starts_with(&id(&idle)), "{executed:?}");
    server.wait_for(ALICE, &id(&idle), "completed", 30).await;

    let review = pj(
        &server,
        &[
            "create",
            "--json",
            "--review",
            "--repo",
            "https://github.com/example/repo",
            "p",
        ],
    )
    .await
    .json();
    assert_eq!(review["status"], "pending_review");
    assert_eq!(review["requires_review"], true);
    let approved = pj(&server, &["approve", &id(&review), "--json"]).await;
    assert_eq!(approved.code, 0, "{approved:?}");
    assert_eq!(approved.json()["status"], "queued");

    let slow = server.create(ALICE, task_body("fake:slow=20")).await;
    server.wait_for(ALICE, &id(&slow), "running", 30).await;
    let cancelled = pj(&server, &["cancel", &id(&slow)]).await;
    assert_eq!(cancelled.code, 0, "{cancelled:?}");
    assert!(cancelled.stdout.contains("cancelled"), "{cancelled:?}");
    let again = pj(&server, &["cancel", &id(&slow)]).await;
    assert_eq!(
        again.code, 3,
        "a terminal task cannot be cancelled: {again:?}"
    );
    assert!(again.stderr.starts_with("pj: "), "{again:?}");

    let retried = pj(&server, &["retry", &id(&slow), "--json"]).await;
    assert_eq!(retried.code, 0, "{retried:?}");
    assert_eq!(retried.json()["attempt"], 2);
}

#[tokio::test]
async fn scheduled_tasks_and_built_in_kinds_take_their_fields_from_the_flags() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("report.json");
    std::fs::write(&config, r#"{"report": "task_summary"}"#).unwrap();
    let report = pj(
        &server,
        &[
            "create",
            "--json",
            "--kind",
            "report",
            "--title",
            "My week",
            "--config",
            &format!("@{}", config.display()),
            "--at",
            "+1h",
        ],
    )
    .await;
    assert_eq!(report.code, 0, "{report:?}");
    let task = report.json();
    assert_eq!(task["kind"], "report");
    assert_eq!(task["status"], "scheduled");
    assert_eq!(task["config"]["report"], "task_summary");
    assert!(task["scheduled_for"].is_string(), "{task}");

    let wrong = pj(
        &server,
        &[
            "create",
            "--kind",
            "report",
            "--title",
            "t",
            "--config",
            r#"{"report": "nonsense"}"#,
        ],
    )
    .await;
    assert_eq!(wrong.code, 3, "{wrong:?}");
    assert!(wrong.stderr.contains("(field: config.report)"), "{wrong:?}");
}

#[tokio::test]
async fn create_follow_on_a_terminal_shows_a_status_line_and_the_log_and_exits_by_the_outcome() {
    let server = Server::start(&[]).await;
    let repo = "https://github.com/example/repo";
    let (code, screen) = pj_on_a_terminal(
        &server.base,
        ALICE,
        &[
            "create",
            "--follow",
            "--repo",
            repo,
            "Add a README fake:logs=5",
        ],
    )
    .await;
    assert_eq!(code, 0, "a completed task: {screen}");
    for i in 0..5 {
        assert!(screen.contains(&format!("step {i} of 5")), "{screen}");
    }
    assert!(screen.contains("completed"), "{screen}");
    assert!(
        screen.contains("https://github.com/example/repo/pull/1"),
        "{screen}"
    );
    assert!(
        screen.contains('\x1b'),
        "a terminal gets the status line and colours: {screen:?}"
    );
    assert!(
        screen.contains(" connecting"),
        "the status line is drawn before the first event: {screen:?}"
    );

    let (code, screen) = pj_on_a_terminal(
        &server.base,
        ALICE,
        &["create", "--follow", "--repo", repo, "fake:fail"],
    )
    .await;
    assert_eq!(code, 1, "a failed task: {screen}");
    assert!(screen.contains("failed"), "{screen}");
    assert!(
        screen.contains("patch_failed: the edit did not apply"),
        "{screen}"
    );
}

#[tokio::test]
async fn create_follow_without_a_terminal_prints_plain_lines() {
    let server = Server::start(&[]).await;
    let run = pj(
        &server,
        &[
            "create",
            "--follow",
            "--repo",
            "https://github.com/example/repo",
            "fake:logs=4",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'),
        "{run:?}"
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("tsk_"), "the id comes first: {run:?}");
    assert_eq!(lines.len(), 5, "the id, then the four log lines: {run:?}");
    assert!(lines[4].ends_with("step 3 of 4"), "{run:?}");
    assert!(
        run.stderr.lines().any(|l| l.contains(" completed")),
        "{run:?}"
    );

    let review = pj(
        &server,
        &[
            "create",
            "-f",
            "--repo",
            "https://github.com/example/repo",
            "fake:needs_review",
        ],
    )
    .await;
    assert_eq!(review.code, 1, "needs_review is not done: {review:?}");
    assert!(review.stderr.contains("verify_failed"), "{review:?}");
}

#[tokio::test]
async fn logs_follow_json_prints_one_object_per_line_and_ends_with_the_task() {
    let server = Server::start(&[]).await;
    let task = server.create(ALICE, task_body("fake:logs=2")).await;
    let run = pj(&server, &["logs", &id(&task), "--follow", "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let objects: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let logs: Vec<&Value> = objects.iter().filter(|o| o["event"] == "log").collect();
    assert_eq!(logs.len(), 2, "{objects:?}");
    assert!(logs.iter().all(|o| o["id"].is_string()), "{objects:?}");
    assert_eq!(logs[1]["data"]["text"], "step 1 of 2");
    let last = objects.last().expect("an object");
    assert_eq!(last["event"], "status");
    assert_eq!(last["data"]["status"], "completed");
}

#[tokio::test]
async fn artifacts_are_listed_and_downloaded_byte_for_byte() {
    let server = Server::start(&[]).await;
    let task = server.create_idle(ALICE).await;
    let tid = id(&task);
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(70_000))
        .collect();
    for (name, bytes) in [
        ("a1-step-1.png", png.clone()),
        ("a1-reply-1.md", b"# reply".to_vec()),
    ] {
        let body = json!({"task_id": tid, "attempt": 1, "name": name,
                          "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)});
        let (status, _) = server
            .runner_post("/webhooks/runner/artifacts", &tid, 1, &body, None)
            .await;
        assert_eq!(status, 200);
    }
    let listed = pj(&server, &["artifacts", &tid]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(
        listed.stdout.contains("a1-step-1.png") && listed.stdout.contains("image/png"),
        "{listed:?}"
    );
    let names = pj(&server, &["artifacts", &tid, "--json"]).await.json();
    assert_eq!(names["artifacts"].as_array().map(Vec::len), Some(2));

    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("new/dir");
    let saved = pj(
        &server,
        &["artifacts", &tid, "--out", dir.to_str().unwrap()],
    )
    .await;
    assert_eq!(saved.code, 0, "{saved:?}");
    assert!(
        std::fs::read(dir.join("a1-step-1.png")).unwrap() == png,
        "the bytes differ"
    );
    assert_eq!(
        std::fs::read(dir.join("a1-reply-1.md")).unwrap(),
        b"# reply"
    );
}

#[tokio::test]
async fn an_artifact_name_that_is_not_a_plain_file_name_is_refused_and_nothing_lands_outside() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/tasks/tsk_1/artifacts"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"artifacts": [
            {"name": "../escaped.txt", "content_type": "text/plain", "size": 4, "attempt": 1},
            {"name": ".profile", "content_type": "text/plain", "size": 4, "attempt": 1},
            {"name": "fine.txt", "content_type": "text/plain", "size": 4, "attempt": 1}]})),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("evil"))
        .mount(&api)
        .await;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let run = pj_in(
        &api.uri(),
        Some("t0ken-abc"),
        None,
        &["artifacts", "tsk_1", "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("\"../escaped.txt\": not a plain file name"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("2 of 3 artifact(s) not written"),
        "{run:?}"
    );
    assert!(!root.path().join("escaped.txt").exists());
    assert!(!out.join(".profile").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("fine.txt")).unwrap(),
        "evil"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_after_the_last_event_seen() {
    let api = MockServer::start().await;
    let line = |seq: u32| json!({"attempt": 1, "seq": seq, "ts": "2026-12-02T05:40:01.500Z", "stream": "stdout", "text": format!("line {seq}")});
    let running = json!({"id": "tsk_1", "status": "running", "attempt": 1});
    let done = json!({"id": "tsk_1", "status": "completed", "attempt": 1});
    let sse = |events: Vec<(&str, Option<&str>, Value)>| {
        let mut body = String::from(": hello\n\n");
        for (event, id, data) in events {
            body.push_str(&format!("event: {event}\n"));
            if let Some(id) = id {
                body.push_str(&format!("id: {id}\n"));
            }
            body.push_str(&format!("data: {data}\n\n"));
        }
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/event-stream")
            .set_body_string(body)
    };
    // The resumed connection: after c1 only.
    Mock::given(method("GET"))
        .and(path("/tasks/tsk_1/logs/stream"))
        .and(header("last-event-id", "c1"))
        .respond_with(sse(vec![
            ("log", Some("c2"), line(1)),
            ("status", None, done),
        ]))
        .with_priority(1)
        .expect(1)
        .mount(&api)
        .await;
    // The first connection ends while the task still runs.
    Mock::given(method("GET"))
        .and(path("/tasks/tsk_1/logs/stream"))
        .respond_with(sse(vec![
            ("status", None, running),
            ("log", Some("c1"), line(0)),
        ]))
        .with_priority(2)
        .expect(1)
        .mount(&api)
        .await;
    let run = pj_in(
        &api.uri(),
        Some("t0ken-abc"),
        None,
        &["logs", "tsk_1", "--follow"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].ends_with("line 0") && lines[1].ends_with("line 1"),
        "{run:?}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let url = "http://127.0.0.1:9";
    for args in [
        vec!["create", "--no-such-flag"],
        vec!["show"],
        vec!["list", "--limit", "many"],
        vec!["create", "--kind", "report", "--config", "{not json"],
        vec!["create", "--config", "@/no/such/file.json"],
        vec!["create", "--at", "+10 minutes", "p"],
        vec!["show", "../tasks"],
        vec!["completions", "tcsh"],
    ] {
        let run = pj_in(url, None, None, &args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "{args:?} says why");
    }
}

#[tokio::test]
async fn an_unreachable_server_exits_3_saying_so_and_never_shows_the_token() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let token = "pj_dev_do-not-show-me";
    for args in [vec!["list"], vec!["logs", "tsk_1", "--follow"]] {
        let run = pj_in(&url, Some(token), None, &args).await;
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(
            run.stderr.starts_with(&format!("pj: cannot reach {url}/")),
            "{run:?}"
        );
        assert!(
            !run.stderr.contains(token) && !run.stdout.contains(token),
            "{run:?}"
        );
    }
}

#[tokio::test]
async fn a_refusal_exits_3_with_the_apis_message_and_field() {
    let server = Server::start(&[]).await;
    let missing = pj(&server, &["show", "tsk_doesnotexist"]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(missing.stderr.starts_with("pj: "), "{missing:?}");
    assert!(missing.stdout.is_empty(), "{missing:?}");

    let invalid = pj(
        &server,
        &["create", "--repo", "https://github.com/example/repo"],
    )
    .await;
    assert_eq!(invalid.code, 3, "{invalid:?}");
    assert!(invalid.stderr.contains("(field: prompt)"), "{invalid:?}");

    let unauthorized = pj_in(&server.base, Some("not-a-token"), None, &["list"]).await;
    assert_eq!(unauthorized.code, 3, "{unauthorized:?}");
    assert!(
        !unauthorized.stderr.contains("not-a-token"),
        "{unauthorized:?}"
    );
}

#[tokio::test]
async fn messages_list_the_completion_email_of_a_task() {
    let server = Server::start(&[]).await;
    let task = server.create(ALICE, task_body("fake:logs=1")).await;
    server.wait_for(ALICE, &id(&task), "completed", 30).await;
    server.wait_for_mails(1, 30).await;
    let listed = pj(&server, &["messages", "--task", &id(&task)]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    let row = listed
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("{listed:?}"));
    assert!(
        row.starts_with("msg_") && row.contains("email") && row.contains("alice@example.com"),
        "{listed:?}"
    );
    let page = pj(&server, &["messages", "--task", &id(&task), "--json"])
        .await
        .json();
    assert_eq!(page["messages"][0]["task_id"], id(&task));
}

#[tokio::test]
async fn without_a_token_the_dev_token_of_the_working_directory_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join(".pj");
    let env = vec![
        (
            "PJ_RUNNER_CMD".to_owned(),
            fake_runner().display().to_string(),
        ),
        ("PJ_SWEEP_INTERVAL_SECS".to_owned(), "1".to_owned()),
    ];
    let server = Server::spawn(&data_dir, "127.0.0.1:0", env, true).await;
    let token = std::fs::read_to_string(data_dir.join("dev-token")).unwrap();

    let here = pj_in(&server.base, None, Some(tmp.path()), &["list", "--json"]).await;
    assert_eq!(here.code, 0, "the dev token of ./.pj is used: {here:?}");
    assert_eq!(here.json()["tasks"], json!([]));

    let elsewhere = pj_in(&server.base, None, None, &["list"]).await;
    assert_eq!(elsewhere.code, 3, "{elsewhere:?}");
    assert!(
        elsewhere.stderr.contains("PJ_TOKEN"),
        "says what to set: {elsewhere:?}"
    );
    assert!(!elsewhere.stderr.contains(token.trim()));

    // A directory given to `--repo` is sent as its absolute path (pj serve allows local
    // repositories when the dev token is the one way in).
    let repo: PathBuf = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let created = pj_in(
        &server.base,
        None,
        Some(tmp.path()),
        &["create", "--json", "--repo", "repo", "fake:logs=1"],
    )
    .await;
    assert_eq!(created.code, 0, "{created:?}");
    let canonical = std::fs::canonicalize(&repo).unwrap();
    assert_eq!(created.json()["repo_url"], canonical.display().to_string());
}

#[tokio::test]
async fn completions_are_printed_for_bash() {
    let run = pj_in("http://127.0.0.1:9", None, None, &["completions", "bash"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("complete -F _pj"), "{}", run.stdout);
    for subcommand in ["create", "logs", "artifacts", "messages"] {
        assert!(run.stdout.contains(subcommand), "{subcommand}");
    }
}
