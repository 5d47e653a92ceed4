//! A stand-in runner for tests and demos: speaks the callback protocol of the contract without
//! touching git or a model. What it does is read from words in `AGENT_PROMPT`:
//! `fake:fail`, `fake:needs_review`, `fake:crash`, `fake:hang`, `fake:mute` (hangs without ever
//! sending `task.started`), `fake:slow=SECS`, `fake:logs=N`, `fake:leak`; anything else completes with a branch and a pull request URL.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pj_core::ids::WebhookId;
use pj_core::signing::{CallbackSecret, signed_headers};
use serde_json::{Value, json};

struct Env {
    task_id: String,
    attempt: u32,
    webhook_url: String,
    logs_url: String,
    secret: CallbackSecret,
    prompt: String,
    branch: String,
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("missing {name}"))
}

fn read_env() -> Result<Env, String> {
    Ok(Env {
        task_id: env("TASK_ID")?,
        attempt: env("TASK_ATTEMPT")?
            .parse()
            .map_err(|_| "TASK_ATTEMPT is not a number")?,
        webhook_url: env("WEBHOOK_URL")?,
        logs_url: env("LOGS_URL")?,
        secret: CallbackSecret::parse(&env("WEBHOOK_SECRET")?)
            .map_err(|e| format!("WEBHOOK_SECRET {e}"))?,
        prompt: match std::env::var("AGENT_PROMPT_FILE") {
            Ok(path) => std::fs::read_to_string(&path)
                .map_err(|e| format!("AGENT_PROMPT_FILE {path}: {e}"))?,
            Err(_) => env("AGENT_PROMPT")?,
        },
        branch: env("BRANCH_NAME")?,
    })
}

fn word<'a>(prompt: &'a str, key: &str) -> Option<&'a str> {
    prompt.split_whitespace().find_map(|w| {
        let rest = w.strip_prefix("fake:")?;
        if rest == key {
            Some("")
        } else {
            rest.strip_prefix(key)?.strip_prefix('=')
        }
    })
}

/// Sends one signed delivery, retrying with the same webhook-id until it is answered.
async fn deliver(
    client: &reqwest::Client,
    env: &Env,
    url: &str,
    body: &Value,
) -> Result<u16, String> {
    let id = WebhookId::generate();
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let ts = chrono::Utc::now().timestamp();
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(bytes.clone());
        for (name, value) in signed_headers(&env.secret, &id, ts, &bytes) {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 409 => {
                return Ok(r.status().as_u16());
            }
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                return Err(format!("{url} answered {}", r.status()));
            }
            _ if started.elapsed() > Duration::from_secs(90) => {
                return Err(format!("{url} never answered"));
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn event(
    client: &reqwest::Client,
    env: &Env,
    kind: &str,
    extra: Value,
) -> Result<u16, String> {
    let mut body = json!({"type": kind, "task_id": env.task_id, "attempt": env.attempt});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    deliver(client, env, &env.webhook_url, &body).await
}

async fn logs(
    client: &reqwest::Client,
    env: &Env,
    from: u64,
    texts: &[String],
) -> Result<(), String> {
    for (chunk_no, chunk) in texts.chunks(200).enumerate() {
        let lines: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, text)| {
                json!({"seq": from + (chunk_no * 200 + i) as u64, "ts": pj_core::time::rfc3339(chrono::Utc::now()),
                       "stream": "stdout", "text": text})
            })
            .collect();
        let body = json!({"task_id": env.task_id, "attempt": env.attempt, "lines": lines});
        deliver(client, env, &env.logs_url, &body).await?;
    }
    Ok(())
}

async fn run(env: Env) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    if word(&env.prompt, "mute").is_some() {
        // A runner that never reports: long enough for any deadline in the tests.
        tokio::time::sleep(Duration::from_secs(120)).await;
        return Ok(());
    }
    if event(&client, &env, "task.started", json!({})).await? == 409 {
        return Ok(());
    }
    let count: usize = word(&env.prompt, "logs")
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut lines: Vec<String> = (0..count).map(|i| format!("step {i} of {count}")).collect();
    if word(&env.prompt, "leak").is_some() {
        lines.push("using token ghp_abcdefghijklmnopqrstuvwxyz0123456789".into());
    }
    logs(&client, &env, 0, &lines).await?;
    if let Some(secs) = word(&env.prompt, "slow").and_then(|s| s.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        logs(
            &client,
            &env,
            lines.len() as u64,
            &["done waiting".to_owned()],
        )
        .await?;
    }
    if word(&env.prompt, "hang").is_some() {
        // Long enough for any deadline in the tests, short enough to never linger.
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    if word(&env.prompt, "crash").is_some() {
        std::process::exit(3);
    }
    let usage = json!({"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.0048, "model": "fake-model"});
    if word(&env.prompt, "fail").is_some() {
        event(&client, &env, "task.failed", json!({"error": {"code": "patch_failed", "message": "the edit did not apply"}, "usage": usage})).await?;
    } else if word(&env.prompt, "needs_review").is_some() {
        event(&client, &env, "task.needs_review", json!({"branch": env.branch, "error": {"code": "verify_failed", "message": "tests fail"}, "usage": usage})).await?;
    } else {
        let pr = format!("https://github.com/example/repo/pull/{}", env.attempt);
        event(
            &client,
            &env,
            "task.completed",
            json!({"branch": env.branch, "pr_url": pr, "usage": usage}),
        )
        .await?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let env = match read_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("pj-fake-runner: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pj-fake-runner: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pj-fake-runner: {e}");
            ExitCode::from(1)
        }
    }
}
