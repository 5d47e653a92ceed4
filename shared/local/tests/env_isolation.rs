//! The runner's environment is built from scratch: the server's secrets stay with the server.
//!
//! A binary of its own because the test sets variables in the process environment, which is
//! only sound while no other thread reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use pj_core::ids::{Attempt, TaskId};
use pj_core::ports::{EnvValue, Runner, RunnerEnv, RunnerJob};
use pj_local::{LocalRunner, PASSED_THROUGH_ENV};

#[test]
fn the_runner_sees_the_job_env_and_the_basics_but_not_the_server_secrets() {
    // SAFETY: this is the only test of this binary and no other thread exists yet.
    unsafe {
        std::env::set_var("PJ_WEBHOOK_SECRET", "server-master-secret");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "server-aws-key");
        std::env::set_var("HOME", "/home/pj-test");
        std::env::set_var("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(check_env());
}

async fn check_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("env.txt");
    let prompt_copy = dir.path().join("prompt.txt");
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        format!(
            "env > {}\ncat \"$AGENT_PROMPT_FILE\" > {}\n",
            shell_words::quote(&out.to_string_lossy()),
            shell_words::quote(&prompt_copy.to_string_lossy())
        ),
    )
    .expect("script");
    let (tx, mut exits) = tokio::sync::mpsc::unbounded_channel();
    let runner = LocalRunner::new(
        &format!("sh {}", shell_words::quote(&script.to_string_lossy())),
        dir.path().join("work"),
        tx,
    )
    .expect("runner");

    let task_id = TaskId::generate(Utc::now());
    let mut env = BTreeMap::new();
    env.insert("TASK_ID", EnvValue::Plain(task_id.to_string()));
    env.insert("TASK_ATTEMPT", EnvValue::Plain("1".to_owned()));
    env.insert(
        "AGENT_PROMPT",
        EnvValue::Plain("Fix the \"quoted\" bug; don't break $HOME".to_owned()),
    );
    env.insert(
        "WEBHOOK_SECRET",
        EnvValue::Secret("whsec_YXR0ZW1wdC1rZXk=".to_owned().into()),
    );
    let job = RunnerJob {
        task_id,
        attempt: Attempt(1),
        repo_url: "https://github.com/o/r".to_owned(),
        deadline: Utc::now() + chrono::Duration::minutes(10),
        env: RunnerEnv(env),
    };
    runner.start(&job).await.expect("started");
    let exit = tokio::time::timeout(Duration::from_secs(30), exits.recv())
        .await
        .expect("exit in time")
        .expect("exit");
    assert_eq!(exit.detail, "exit status 0");

    let seen = std::fs::read_to_string(&out).expect("env output");
    let vars: BTreeMap<&str, &str> = seen.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(vars.get("TASK_ID"), Some(&job.task_id.as_str()));
    // The prompt comes as a file, since a task's input may be larger than one variable may be.
    assert_eq!(vars.get("AGENT_PROMPT"), None);
    let prompt_file = vars.get("AGENT_PROMPT_FILE").expect("AGENT_PROMPT_FILE");
    assert!(prompt_file.starts_with(&*dir.path().join("work").to_string_lossy()));
    assert_eq!(
        std::fs::read_to_string(&prompt_copy).expect("the prompt file was readable"),
        "Fix the \"quoted\" bug; don't break $HOME"
    );
    assert_eq!(vars.get("WEBHOOK_SECRET"), Some(&"whsec_YXR0ZW1wdC1rZXk="));
    // Neither the server user's home (its git credentials) nor its SSH agent.
    let home = vars.get("HOME").expect("HOME");
    assert_ne!(home, &"/home/pj-test");
    assert!(home.starts_with(&*dir.path().join("work").to_string_lossy()));
    assert!(!vars.contains_key("SSH_AUTH_SOCK"), "{seen}");
    assert!(vars.contains_key("PATH"));
    assert!(!seen.contains("server-master-secret"), "{seen}");
    assert!(!seen.contains("server-aws-key"), "{seen}");

    // Only the basics, the job's variables and what the shell adds itself.
    let allowed: BTreeSet<&str> = PASSED_THROUGH_ENV
        .iter()
        .copied()
        .chain(job.env.iter().map(|(name, _)| name))
        .chain([
            "PWD",
            "OLDPWD",
            "SHLVL",
            "_",
            "HOME",
            "PJ_WORKDIR",
            "AGENT_PROMPT_FILE",
        ])
        .collect();
    for name in vars.keys() {
        assert!(allowed.contains(name), "{name} leaked into the runner");
    }
}
