//! A repository's own code is the attacker: `pj serve` with the real agent, two users, a model
//! whose edit applies, and a `.pithy/verify` that hunts for the server's and the runner's
//! secrets and prints whatever it finds, raw, base64 and hex.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use pj_core::ids::{Attempt, TaskId};
use pj_core::signing::MasterSecret;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::agent::{git, pj_runner};
use crate::support::{ALICE, BOB, Server};

const OPENAI_KEY: &str = "sk-proj-untrusted0123456789abcdefXYZ";
const GITHUB_TOKEN: &str = "ghp_untrustedAbCdEfGhIjKlMnOpQrStUvWx0123";
const BOBS_SECRET_PROMPT: &str = "bob-private-plan-5d2c8e in the prompt";

/// A bare repository with a README and `verify` as its `.pithy/verify`.
fn origin_with_verify(root: &Path, verify: &str) -> PathBuf {
    let origin = root.join("origin.git");
    let work = root.join("seed");
    std::fs::create_dir_all(work.join(".pithy")).expect("seed dir");
    git(
        root,
        &[
            "init",
            "--bare",
            "-b",
            "main",
            origin.to_str().expect("utf-8"),
        ],
    );
    git(&work, &["init", "-b", "main"]);
    std::fs::write(work.join("README.md"), "# Demo\n\nA small project.\n").expect("readme");
    std::fs::write(work.join(".pithy/verify"), verify).expect("verify");
    git(&work, &["add", "."]);
    git(&work, &["update-index", "--chmod=+x", ".pithy/verify"]);
    git(&work, &["commit", "-m", "first"]);
    git(&work, &["push", origin.to_str().expect("utf-8"), "main"]);
    origin
}

/// An OpenAI-compatible model whose every reply is an edit of the README that applies.
async fn model() -> MockServer {
    let model = MockServer::start().await;
    let reply = "README.md\n<<<<<<< SEARCH\nA small project.\n=======\nA small project, checked.\n>>>>>>> REPLACE\n";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4.1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        })))
        .mount(&model)
        .await;
    model
}

async fn server_with_agent(model: &MockServer, extra: &[(&str, &str)]) -> Server {
    let runner_cmd = format!("{} run", pj_runner().display());
    let model_url = format!("{}/v1", model.uri());
    let mut env: Vec<(&str, &str)> = vec![
        ("PJ_RUNNER_CMD", &runner_cmd),
        ("OPENAI_BASE_URL", &model_url),
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("PJ_DEFAULT_MODEL", "openai/gpt-4.1"),
        ("PJ_ALLOW_LOCAL_REPOS", "true"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env).await
}

/// Every stored log line of a task, following the cursor.
async fn all_logs(server: &Server, token: &str, id: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = server
            .call(
                "GET",
                &format!("/tasks/{id}/logs?limit=1000&cursor={cursor}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let got = page["lines"].as_array().cloned().unwrap_or_default();
        let done = got.is_empty();
        lines.extend(got);
        match page["next_cursor"].as_str() {
            Some(next) if !done => cursor = next.to_owned(),
            _ => return lines,
        }
    }
}

/// Whether `text` shows `secret` raw, or inside any base64 or hex run it holds.
fn reveals(text: &str, secret: &str) -> bool {
    if text.contains(secret) {
        return true;
    }
    let decoded = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).contains(secret);
    let b64 = regex::Regex::new(r"[A-Za-z0-9+/_-]{16,}").expect("regex");
    for run in b64.find_iter(text) {
        let run = run.as_str();
        for start in 0..4 {
            let Some(part) = run.get(start..) else { break };
            let cut = &part[..part.len() - part.len() % 4];
            for engine in [
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                if let Ok(bytes) = engine.decode(cut.trim_end_matches('='))
                    && decoded(bytes)
                {
                    return true;
                }
            }
        }
    }
    let hex_run = regex::Regex::new(r"[0-9a-fA-F]{16,}").expect("regex");
    for run in hex_run.find_iter(text) {
        let run = run.as_str();
        for start in 0..2 {
            let Some(part) = run.get(start..) else { break };
            if let Ok(bytes) = hex::decode(&part[..part.len() - part.len() % 2])
                && decoded(bytes)
            {
                return true;
            }
        }
    }
    false
}

#[test]
fn the_leak_detector_finds_a_secret_in_each_form() {
    let secret = "sk-proj-abcdefghijklmnop";
    let wrapped = format!("PATH=/bin\0OPENAI_API_KEY={secret}\0HOME=/root");
    for shift in ["", "x", "xy"] {
        let blob = format!("{shift}{wrapped}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        assert!(
            reveals(&format!("found: {b64}"), secret),
            "base64 {shift:?}"
        );
        assert!(reveals(&hex::encode(&blob), secret), "hex {shift:?}");
    }
    assert!(reveals(&wrapped, secret));
    assert!(!reveals("nothing to see", secret));
}

#[tokio::test]
async fn hostile_repository_code_reaches_no_secret_and_the_work_still_completes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = model().await;
    let server = server_with_agent(&model, &[]).await;
    let data_dir = server.data_dir.display().to_string();
    // Everything the server and the runner hold, by every route a process of the same user has.
    let verify = format!(
        r#"#!/bin/sh
dump() {{ printf '%s\n' "$1"; printf '%s' "$1" | base64 -w0; echo; printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; echo; }}
dump "$(env)"
for f in /proc/*/environ /proc/*/cmdline; do dump "$(tr '\0' '\n' < "$f" 2>/dev/null)"; done
dump "$(ls -la /proc/*/cwd/ /proc/*/root/ 2>&1)"
dump "$(cat /proc/$PPID/cwd/../../* /proc/$PPID/cwd/* 2>&1)"
dump "$(cat {data_dir}/webhook-secret {data_dir}/dev-token {data_dir}/pj.db 2>&1)"
dump "$(ls -la {data_dir} 2>&1)"
dump "$(ps eww -A 2>&1)"
dump "$(cat ../*/* ../../*/* 2>&1 | head -c 100000)"
for t in $(env | grep -o '[A-Za-z0-9_-]\{{20,\}}'); do
  curl -s -m 2 -H "Authorization: Bearer $t" {base}/tasks 2>&1 | head -c 2000
done
exit 0
"#,
        base = server.base,
    );
    let origin = origin_with_verify(tmp.path(), &verify);

    let bobs = server
        .create(
            BOB,
            json!({"repo_url": "https://github.com/bob/private", "prompt": BOBS_SECRET_PROMPT, "execute": false}),
        )
        .await;
    assert_eq!(bobs["status"], "queued");
    let repo_url = format!("file://{}", origin.display());
    let task = server
        .create(
            ALICE,
            json!({"repo_url": repo_url, "prompt": "Say in the README that it is checked"}),
        )
        .await;
    let id = task["id"].as_str().expect("id").to_owned();
    let done = server.wait_for(ALICE, &id, "completed", 180).await;
    let branch = done["branch"].as_str().expect("branch").to_owned();
    let readme = git(
        tmp.path(),
        &[
            "--git-dir",
            origin.to_str().expect("utf-8"),
            "show",
            &format!("{branch}:README.md"),
        ],
    );
    assert!(
        readme.contains("checked"),
        "the runner's own work completed: {readme}"
    );

    let master = std::fs::read_to_string(server.data_dir.join("webhook-secret"))
        .expect("master secret")
        .trim()
        .to_owned();
    let attempt_key = MasterSecret::new(SecretString::from(master.clone()))
        .expect("master")
        .derive(&TaskId::parse(&id).expect("task id"), Attempt(1))
        .expose_whsec()
        .expose_secret()
        .to_owned();
    let secrets = [
        ("the OpenAI key", OPENAI_KEY.to_owned()),
        ("the GitHub token", GITHUB_TOKEN.to_owned()),
        ("the master secret", master),
        ("the attempt's callback key", attempt_key),
        ("alice's token", ALICE.to_owned()),
        ("bob's token", BOB.to_owned()),
        ("bob's task", BOBS_SECRET_PROMPT.to_owned()),
    ];

    let logs = all_logs(&server, ALICE, &id).await;
    let log_text: String = logs
        .iter()
        .map(|l| l["text"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        log_text.contains("verification passed"),
        "the check ran: {}",
        &log_text[log_text.len().saturating_sub(2000)..]
    );
    assert!(
        !log_text.contains("[REDACTED]"),
        "nothing had to be redacted, because nothing was reached"
    );
    let executions = server
        .call("GET", &format!("/tasks/{id}/executions"), Some(ALICE), None)
        .await
        .1;
    let mails: String = server.outbox().into_iter().map(|(_, m)| m).collect();
    let result = format!("{done}\n{executions}");
    for (what, secret) in &secrets {
        assert!(!reveals(&log_text, secret), "{what} reached the task's log");
        assert!(!reveals(&mails, secret), "{what} reached the email");
        assert!(
            !reveals(&result, secret),
            "{what} reached the task's record"
        );
    }
}

/// Whether any process on the machine has `marker` in its command line.
fn process_with(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok).any(|entry| {
                std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(marker)
                })
            })
        })
        .unwrap_or(false)
}

async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn cancelling_during_a_long_check_ends_every_process_and_removes_the_clone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = model().await;
    let work_dir = tmp.path().join("work");
    let server = server_with_agent(
        &model,
        &[("PJ_WORK_DIR", work_dir.to_str().expect("utf-8"))],
    )
    .await;
    // A background grandchild and a foreground child, both long.
    let origin = origin_with_verify(
        tmp.path(),
        "#!/bin/sh\nsleep 3017 &\necho checking\nsleep 3018\n",
    );
    let repo_url = format!("file://{}", origin.display());
    let task = server
        .create(
            ALICE,
            json!({"repo_url": repo_url, "prompt": "Check the README"}),
        )
        .await;
    let id = task["id"].as_str().expect("id").to_owned();
    eventually("the check runs", 120, || process_with("sleep 3018")).await;
    assert!(
        std::fs::read_dir(&work_dir).expect("work dir").count() > 0,
        "the attempt works in PJ_WORK_DIR"
    );

    let (status, cancelled) = server
        .call("POST", &format!("/tasks/{id}/cancel"), Some(ALICE), None)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    eventually("no process of the check is left", 30, || {
        !process_with("sleep 3017") && !process_with("sleep 3018")
    })
    .await;
    eventually("the working copy and the work log are gone", 30, || {
        std::fs::read_dir(&work_dir).map_or(true, |d| d.count() == 0)
    })
    .await;
    assert_eq!(server.task(ALICE, &id).await["status"], "cancelled");
}

#[tokio::test]
async fn a_check_that_floods_its_output_leaves_the_server_up_and_small() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = model().await;
    let server = server_with_agent(&model, &[]).await;
    let origin = origin_with_verify(
        tmp.path(),
        "#!/bin/sh\nhead -c 50000000 /dev/zero | tr '\\0' a\necho\nseq 200000\nexit 0\n",
    );
    let repo_url = format!("file://{}", origin.display());
    let task = server
        .create(
            ALICE,
            json!({"repo_url": repo_url, "prompt": "Flood the log"}),
        )
        .await;
    let id = task["id"].as_str().expect("id").to_owned();
    server.wait_for(ALICE, &id, "completed", 240).await;

    let logs = all_logs(&server, ALICE, &id).await;
    assert!(logs.len() <= 20_001, "{} lines stored", logs.len());
    let longest = logs
        .iter()
        .map(|l| l["text"].as_str().unwrap_or_default().len())
        .max()
        .unwrap_or(0);
    assert!(
        longest <= 16 * 1024 + 64,
        "a line of {longest} bytes was stored"
    );
    assert!(
        logs.iter()
            .any(|l| l["text"].as_str().unwrap_or_default().contains("quota")),
        "the quota is said once"
    );
    let (status, _) = server.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200, "the server is up");
    let pid = server.pid().expect("server pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    assert!(peak_kb < 200 * 1024, "the server peaked at {peak_kb} kB");
}
