//! Repository code is untrusted: it runs in a sandbox with nothing of the runner's in reach, its
//! output cannot exhaust memory or the log, and a signal ends it with the run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pj_runner::agent::Finish;

use crate::support::{
    BRANCH, TASK_ID, World, edit_reply, encoded_forms, openai_answer, process_alive,
};

/// A `.pithy/verify` that goes looking for secrets everywhere it can think of, tries to plant a
/// hook and a git configuration that would run outside the sandbox, and prints everything it
/// found raw, base64-encoded and hex-encoded. `{MARKER}` is where the hook would leave a trace.
const HOSTILE: &str = r#"#!/bin/sh
found="$(
  env
  for f in /proc/*/environ; do echo "== $f"; tr '\0' '\n' < "$f"; done
  ls -la /proc/*/cwd/
  ls -la "/proc/$PPID/cwd/" ../ ../.. "$HOME"
  cat "/proc/$PPID/cwd/"* ../* ../home/* 2>&1
  cat ../git-credentials ~/.git-credentials 2>&1
  ps eww 2>&1
  ps auxeww 2>&1
) 2>&1"
printf '%s\n' "$found"
printf '%s' "$found" | base64
printf '%s' "$found" | base64 -w0; echo
printf '%s' "$found" | od -An -tx1 | tr -d ' \n'; echo
printf '#!/bin/sh\ntouch {MARKER}\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
printf '[core]\n\thooksPath = /tmp\n[alias]\n\tcommit = !touch {MARKER}\n' >> .git/config
echo "hostile check done"
exit 0
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_repository_code_finds_no_secret_and_plants_no_hook() {
    let mut world = World::new().await;
    let marker = world.root.path().join("the-hook-ran");
    let script = HOSTILE.replace("{MARKER}", &marker.display().to_string());
    world.commit_to_main(&[(".pithy/verify", &script, true)]);
    world.unset("PJ_VERIFY_CMD");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    // The real binary, so the secrets are in its environment where /proc would show them.
    let (code, stdout) = tokio::task::block_in_place(|| world.run_binary());

    assert_eq!(code, Some(0), "stdout:\n{stdout}");
    assert_eq!(world.final_event()["type"], "task.completed");
    let texts = world.log_texts();
    assert!(
        texts.iter().any(|l| l == "hostile check done"),
        "the check ran:\n{}",
        stdout
    );
    assert!(
        texts.iter().any(|l| l == &format!("TASK_ID={TASK_ID}")),
        "the check saw its task's own variables:\n{}",
        stdout
    );
    assert!(
        texts.iter().any(|l| l.contains("Read-only file system")),
        "the writes into .git were refused:\n{}",
        stdout
    );
    assert!(
        !texts
            .iter()
            .any(|l| l.contains("WEBHOOK_URL=") || l.contains("LOGS_URL=")),
        "the check did not see where the server is"
    );
    // Not merely scrubbed: nothing the check printed held a secret to scrub.
    assert!(
        !texts.iter().any(|l| l.contains("[REDACTED]")),
        "the check reached a secret:\n{}",
        stdout
    );

    let commit = world.git(&world.bare, &["log", "-p", "-1", BRANCH]);
    let files = world.git(&world.bare, &["show", "--name-only", "--format=", BRANCH]);
    assert_eq!(
        files.trim(),
        "src/greet.rs",
        "only the model's edit is committed"
    );
    let prs = World::bodies(&world.github, "POST", "/repos/o/r/pulls").await;
    let pr = prs[0].to_string();
    let shipped = texts.join("\n");
    let places = [
        ("the shipped log", &shipped),
        ("stdout", &stdout),
        ("the pushed commit", &commit),
        ("the pull request", &pr),
    ];
    for secret in world.secrets() {
        for form in encoded_forms(&secret) {
            for (place, text) in places {
                assert!(
                    !text.contains(&form),
                    "{place} shows {form} (from a secret)"
                );
            }
        }
    }
    assert!(
        !marker.exists(),
        "a hook or alias planted by the check ran outside the sandbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sandbox_the_check_does_not_run_and_the_task_completes() {
    let mut world = World::new().await;
    world.set("PJ_SANDBOX", "/nonexistent/bwrap");
    world.set("PJ_VERIFY_CMD", "echo the-check-ran; exit 1");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
    let texts = world.log_texts();
    let why: Vec<&String> = texts
        .iter()
        .filter(|l| l.starts_with("the verify command will not run: no sandbox"))
        .collect();
    assert_eq!(why.len(), 1, "one line says why:\n{}", ran.stdout);
    assert!(why[0].contains("/nonexistent/bwrap"), "{}", why[0]);
    assert!(!texts.iter().any(|l| l == "the-check-ran"));
    let prs = World::bodies(&world.github, "POST", "/repos/o/r/pulls").await;
    let body = prs[0]["body"].as_str().unwrap();
    assert!(body.contains("not run: no sandbox"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_operators_opt_out_the_check_runs_without_a_sandbox_and_says_so() {
    let mut world = World::new().await;
    world.set("PJ_SANDBOX", "/nonexistent/bwrap");
    world.set("PJ_ALLOW_UNSANDBOXED_CODE", "true");
    world.set("PJ_VERIFY_CMD", "echo the-check-ran; ls -la ..");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(world.final_event()["type"], "task.completed");
    let texts = world.log_texts();
    assert!(
        texts
            .iter()
            .any(|l| l.starts_with("WARNING: no sandbox for repository code")),
        "{}",
        ran.stdout
    );
    assert!(texts.iter().any(|l| l == "the-check-ran"));
    // What the check saw beside the working copy: the credential file, this user's only.
    let listing: Vec<&String> = texts
        .iter()
        .filter(|l| l.ends_with(" git-credentials"))
        .collect();
    assert_eq!(listing.len(), 1, "{}", ran.stdout);
    assert!(listing[0].starts_with("-rw------- "), "{}", listing[0]);
    assert!(
        !texts.iter().any(|l| l.ends_with(" .git-credentials")),
        "nothing of it is in the working copy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_file_is_outside_the_working_copy_and_gone_after_the_run() {
    let mut world = World::new().await;
    world.set("KEEP_ALIVE", "true");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let kept: Vec<_> = std::fs::read_dir(world.workdir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let private = &kept[0];
    assert!(private.join("repo/src/greet.rs").exists(), "the tree stays");
    assert!(
        !private.join("git-credentials").exists(),
        "the credential file is removed even when the tree stays"
    );
    let config = std::fs::read_to_string(private.join("repo/.git/config")).unwrap();
    for form in encoded_forms(crate::support::GITHUB_TOKEN) {
        assert!(!config.contains(&form), "{config}");
    }
    let tracked = world.git(
        &private.join("repo"),
        &["status", "--porcelain", "--ignored"],
    );
    assert!(!tracked.contains("credentials"), "{tracked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_prints_a_50_mb_line_is_cut_and_the_run_ends() {
    let mut world = World::new().await;
    world.set(
        "PJ_VERIFY_CMD",
        "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo after the long line",
    );
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(
        ran.finish,
        Finish::Reported,
        "stdout:\n{}",
        ran.stdout.len()
    );
    assert_eq!(world.final_event()["type"], "task.completed");
    let texts = world.log_texts();
    let long: Vec<&String> = texts.iter().filter(|l| l.starts_with("xxxx")).collect();
    assert_eq!(long.len(), 1);
    assert!(long[0].len() <= 16 * 1024, "{}", long[0].len());
    assert!(long[0].ends_with(" bytes]"), "the cut is marked");
    let kept = long[0].bytes().take_while(|b| *b == b'x').count();
    assert!(
        long[0].contains(&format!("[cut: {} bytes]", 50_000_000 - kept)),
        "{}",
        &long[0][kept..]
    );
    assert!(texts.iter().any(|l| l == "after the long line"));
    assert!(
        ran.stdout.len() < 1024 * 1024,
        "stdout has the cut line too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_line_does_not_grow_the_runner_by_its_size() {
    let mut world = World::new().await;
    world.set(
        "PJ_VERIFY_CMD",
        "head -c 200000000 /dev/zero | tr '\\0' y; echo; echo after the long line",
    );
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let (code, stdout, peak_kib) = tokio::task::block_in_place(|| world.run_binary_watched());

    assert_eq!(code, Some(0), "{}", &stdout[..stdout.len().min(4096)]);
    assert!(
        world.log_texts().iter().any(|l| l == "after the long line"),
        "the check ran to its end"
    );
    // The runner alone is a few tens of MiB; holding the line would add 200 MB.
    assert!(peak_kib > 0, "the runner's memory was read");
    assert!(peak_kib < 120 * 1024, "peak resident memory {peak_kib} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_prints_200000_lines_meets_the_quota_with_one_marker() {
    let mut world = World::new().await;
    world.set("PJ_VERIFY_CMD", "seq 1 200000");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported);
    assert_eq!(world.final_event()["type"], "task.completed");
    let lines = world.log_lines();
    let output = lines
        .iter()
        .filter(|(stream, _)| stream != "system")
        .count();
    assert!(output <= 20_000, "{output} output lines shipped");
    assert!(output > 19_000, "the quota is used up first: {output}");
    let markers = lines
        .iter()
        .filter(|(_, t)| t.starts_with("… log quota reached"))
        .count();
    assert_eq!(markers, 1);
    let bytes: usize = lines.iter().map(|(_, t)| t.len()).sum();
    assert!(bytes <= 10 * 1024 * 1024 + 64 * 1024, "{bytes}");
    assert!(
        lines
            .iter()
            .any(|(_, t)| t.starts_with("the log quota dropped ") && t.contains("lines")),
        "the end says how much was dropped"
    );
    assert!(ran.stdout.lines().count() <= 20_000 + 200);
    assert!(
        !ran.stdout.contains("\n200000\n"),
        "stdout keeps the quota too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_check_ends_every_process_and_removes_the_working_copy() {
    let mut world = World::new().await;
    // A background grandchild and a foreground sleep, both far longer than the test.
    world.set("PJ_VERIFY_CMD", "sleep 8641 & sleep 8642; wait");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let mut runner = Command::new(env!("CARGO_BIN_EXE_pj-runner"))
        .arg("run")
        .env_clear()
        .envs(world.vars.iter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = runner.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let started = Instant::now();
    while !(process_alive(&["sleep", "8641"]) && process_alive(&["sleep", "8642"])) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the check started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(world.workdir().read_dir().unwrap().next().is_some());

    let pid = i32::try_from(runner.id()).unwrap();
    // SAFETY: a signal to the runner this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_at_most(&mut runner, Duration::from_secs(10));

    assert_eq!(status.code(), Some(4), "the exit code of a signal");
    let printed = printed.join().unwrap();
    assert!(
        printed.iter().any(|l| l == "stopped by SIGTERM"),
        "{printed:#?}"
    );
    assert!(
        world.log_texts().iter().any(|l| l == "stopped by SIGTERM"),
        "the log was flushed to the server"
    );
    let gone = Instant::now();
    while process_alive(&["sleep", "8641"]) || process_alive(&["sleep", "8642"]) {
        assert!(
            gone.elapsed() < Duration::from_secs(3),
            "a process of the check outlived the run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = world.workdir().read_dir().unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "the private directory is removed: {left:?}"
    );
}

fn wait_at_most(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the runner did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_repository_whose_host_is_loopback_is_not_cloned() {
    let mut world = World::new().await;
    world.set("TARGET_REPO", "https://localhost:9/o/r");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "clone_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("loopback"), "{message}");
    assert!(message.contains("PJ_ALLOW_PRIVATE_NETWORKS"), "{message}");
    assert!(
        !world.log_texts().iter().any(|l| l.contains("Cloning into")),
        "git was never asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_may_allow_a_private_repository_host() {
    let mut world = World::new().await;
    world.set("TARGET_REPO", "https://localhost:9/o/r");
    world.set("PJ_ALLOW_PRIVATE_NETWORKS", "true");

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    let done = world.final_event();
    assert_eq!(done["error"]["code"], "clone_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(!message.contains("loopback"), "git tried: {message}");
    assert!(message.contains("git clone"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_reads_no_configuration_from_the_hosts_home() {
    let mut world = World::new().await;
    // The host's git configuration would make every commit fail; the run must not see it.
    let host_home = world.root.path().join("host-home");
    std::fs::create_dir_all(&host_home).unwrap();
    std::fs::write(
        host_home.join(".gitconfig"),
        "[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = /bin/false\n",
    )
    .unwrap();
    world.set("HOME", host_home.display().to_string());
    world.unset("GIT_CONFIG_GLOBAL");
    // The test's stand-in for GitHub, given the way the runner environment allows.
    let remotes = world.bare.parent().unwrap().parent().unwrap().to_owned();
    world.set("GIT_CONFIG_COUNT", "1");
    world.set(
        "GIT_CONFIG_KEY_0",
        format!("url.file://{}/.insteadOf", remotes.display()),
    );
    world.set("GIT_CONFIG_VALUE_0", "https://github.com/");
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;

    let ran = world.run().await;

    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    assert_eq!(
        world.final_event()["type"],
        "task.completed",
        "{}",
        ran.stdout
    );
    assert!(
        world
            .file_on(BRANCH, "src/greet.rs")
            .unwrap()
            .contains("hello, world")
    );
}

/// The log of a run whose check is `command`, after the model's one edit.
async fn check_log(world: &World) -> Vec<String> {
    world
        .openai_answers([openai_answer(&edit_reply("hello", "hello, world"))])
        .await;
    world.github_opens_pull_requests().await;
    let ran = world.run().await;
    assert_eq!(ran.finish, Finish::Reported, "stdout:\n{}", ran.stdout);
    world.log_texts()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_code_has_no_network_unless_the_operator_allows_it() {
    for (share, expect_reached) in [(None, false), (Some("true"), true)] {
        let mut world = World::new().await;
        let server = world.github.uri();
        world.set(
            "PJ_VERIFY_CMD",
            format!("git ls-remote {server}/nothing.git 2>&1; echo network probe done"),
        );
        if let Some(value) = share {
            world.set("PJ_SANDBOX_NETWORK", value);
        }

        let texts = check_log(&world).await;

        assert!(
            texts.iter().any(|l| l == "network probe done"),
            "{texts:#?}"
        );
        let reached = texts.iter().any(|l| l.contains("not found"));
        assert_eq!(
            reached, expect_reached,
            "PJ_SANDBOX_NETWORK={share:?}: {texts:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_read_only_paths_can_be_read_and_not_written() {
    let mut world = World::new().await;
    let toolchain = world.root.path().join("toolchain");
    std::fs::create_dir_all(toolchain.join("bin")).unwrap();
    std::fs::write(
        toolchain.join("bin/pj-tool"),
        "#!/bin/sh\necho the tool ran\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        toolchain.join("bin/pj-tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    world.set(
        "PJ_SANDBOX_READ_ONLY",
        format!("/nonexistent/toolchain:{}", toolchain.display()),
    );
    world.set(
        "PJ_VERIFY_CMD",
        format!("pj-tool; touch {}/new 2>&1; true", toolchain.display()),
    );

    let texts = check_log(&world).await;

    assert!(texts.iter().any(|l| l == "the tool ran"), "{texts:#?}");
    assert!(
        texts.iter().any(|l| l.contains("Read-only file system")),
        "{texts:#?}"
    );
    assert!(!toolchain.join("new").exists());
}
