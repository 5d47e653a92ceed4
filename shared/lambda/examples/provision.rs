//! Provisions a development deployment on the emulator for `scripts/dev-aws`: the table, the
//! artifacts bucket, the queues, the secret (with the development master secret), the SES sender, the sample tasks
//! the files of `events/` refer to; then writes the functions' environment for
//! `cargo lambda watch --env-file`.
//!
//! ```sh
//! scripts/with-moto cargo run -p pj-lambda --example provision -- --env-file target/dev-aws.env
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use pj_aws::AwsContext;
use pj_aws::provision::{self, DEFAULT_MAX_RECEIVE_COUNT};
use pj_lambda::config::{CoreConfig, Env};
use pj_lambda::samples::{self, DEV_JWT_SECRET};
use pj_lambda::{MetricsObserver, Wiring};

const PREFIX: &str = "pj-dev";
const EMAIL_FROM: &str = "noreply@pithy-jaunt.dev";
/// Where the functions' callbacks and emails point: `cargo lambda watch` serves the functions
/// under `/lambda-url/<name>`.
const PUBLIC_URL: &str = "http://127.0.0.1:9000/lambda-url/api";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut env_file = PathBuf::from("target/dev-aws.env");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--env-file" => env_file = args.next().context("--env-file needs a path")?.into(),
            other => bail!("unknown argument {other:?}; usage: provision [--env-file PATH]"),
        }
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context(
        "AWS_ENDPOINT_URL is not set: run this through scripts/with-moto (scripts/dev-aws does)",
    )?;

    let aws = AwsContext::from_env().await;
    let table = format!("{PREFIX}-table");
    let secret = format!("{PREFIX}/secrets");
    let bucket = format!("{PREFIX}-artifacts");
    provision::create_table(aws.dynamodb(), &table).await?;
    provision::create_bucket(aws.s3(), &bucket).await?;
    let queues = provision::create_queues(aws.sqs(), PREFIX, DEFAULT_MAX_RECEIVE_COUNT).await?;
    provision::put_secret(
        aws.secrets_manager(),
        &secret,
        &samples::dev_secret_document(),
    )
    .await?;
    provision::verify_email_identity(aws.ses(), EMAIL_FROM).await?;

    let vars: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", var_or("AWS_ACCESS_KEY_ID", "testing")),
        (
            "AWS_SECRET_ACCESS_KEY",
            var_or("AWS_SECRET_ACCESS_KEY", "testing"),
        ),
        ("AWS_SESSION_TOKEN", var_or("AWS_SESSION_TOKEN", "testing")),
        ("AWS_REGION", var_or("AWS_REGION", "us-east-1")),
        ("RUST_LOG", var_or("RUST_LOG", "info")),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("PJ_TABLE_NAME", table),
        ("PJ_METRICS_NAMESPACE", "PithyJaunt/dev".into()),
        ("PJ_RUNNER", "github_actions".into()),
        // Long, so the running sample task does not time out during a walkthrough.
        ("PJ_TASK_TIMEOUT_SECS", "21600".into()),
        ("PJ_MAX_ATTEMPTS", "3".into()),
        (
            "PJ_DISPATCH_MAX_RECEIVES",
            DEFAULT_MAX_RECEIVE_COUNT.to_string(),
        ),
        ("PJ_DISPATCH_QUEUE_URL", queues.urls.dispatch.clone()),
        ("PJ_NOTIFY_QUEUE_URL", queues.urls.notify.clone()),
        ("PJ_TASKS_QUEUE_URL", queues.urls.tasks.clone()),
        ("PJ_SECRET_ARN", secret),
        ("PJ_ARTIFACTS_BUCKET", bucket),
        ("PJ_PUBLIC_URL", PUBLIC_URL.into()),
        ("PJ_EMAIL_FROM", EMAIL_FROM.into()),
        ("PJ_JWT_SECRET", DEV_JWT_SECRET.into()),
        ("PJ_JWT_AUDIENCE", "authenticated".into()),
        // The targets of a walkthrough's api_call and webhook tasks run on this machine.
        ("PJ_ALLOW_PRIVATE_NETWORKS", "true".into()),
    ];

    let core = CoreConfig::from_env(&Env::from_pairs(vars.iter().map(|(k, v)| (*k, v.as_str()))))?;
    let mut wiring = Wiring::new(aws.clone(), core, "provision");
    // Seeding is no product event: its metrics are not emitted.
    wiring.observer = Arc::new(MetricsObserver::with_writer(
        "none",
        "provision",
        std::io::sink(),
    ));
    let engine = wiring.engine(
        Some(wiring.queues(queues.urls.clone())),
        wiring.settings(Some(PUBLIC_URL), Some(EMAIL_FROM)),
    );
    let made = samples::seed_sample_tasks(&engine).await?;

    let mut text = String::from("# Written by scripts/dev-aws (pj-lambda's provision example).\n");
    for (name, value) in &vars {
        writeln!(text, "{name}={value}")?;
    }
    if let Some(dir) = env_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&env_file, text).with_context(|| format!("writing {}", env_file.display()))?;
    eprintln!(
        "provisioned {PREFIX}: table, artifacts bucket, queues, secret, SES sender {EMAIL_FROM}; sample tasks made: {}; environment in {}",
        made.len(),
        env_file.display()
    );
    Ok(())
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
