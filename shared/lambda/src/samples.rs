//! The sample events of `events/` and the local development deployment of `scripts/dev-aws`:
//! the names, ids and development-only secrets the samples are made with, seeding the tasks
//! they refer to, and re-signing a runner callback so its signature is current.
//!
//! Nothing here is used by a deployed function.

use anyhow::{Context, bail};
use chrono::Utc;
use pj_core::create::NewTask;
use pj_core::engine::ApplyError;
use pj_core::kinds::config::ConfigContext;
use pj_core::machine::Input;
use pj_core::signing::{MasterSecret, signed_headers};
use pj_core::{Attempt, Engine, Principal, TaskId, UserId, WebhookId};
use secrecy::SecretString;
use serde_json::{Value, json};

/// The user of the sample events (the JWT authorizer's `sub`).
pub const SAMPLE_USER: &str = "2f1c6b9e-8d3a-4b7e-9c21-5a0f3e6d7b41";
/// Their email (the authorizer's `email` claim).
pub const SAMPLE_EMAIL: &str = "ada@example.com";
/// The task the runner's samples report on: its attempt 1 dispatched, the runner not yet
/// started (`api-get-task`, `webhook-*`, `log-ingest-batch`, `notify-batch`,
/// `log-stream-request`).
pub const RUNNER_TASK: &str = "tsk_01kaq7m3v9x2c4d6f8g0h1j2k3";
/// The task `dispatch-batch` dispatches: queued, its first attempt requested.
pub const QUEUED_TASK: &str = "tsk_01kaq7m3v9x2c4d6f8g0h1j2k4";
/// The task `api-cancel-task` cancels: queued, not executed.
pub const CANCEL_TASK: &str = "tsk_01kaq7m3v9x2c4d6f8g0h1j2k5";
/// The built-in kind `tasks-batch` runs: a `notification` by email to the sample user, its
/// first attempt claimed by `dispatch`, which put its run message on the tasks queue.
pub const KIND_TASK: &str = "tsk_01kaq7m3v9x2c4d6f8g0h1j2k6";
/// The webhook master secret of the development deployment. Never a real deployment's.
pub const DEV_WEBHOOK_MASTER_SECRET: &str =
    "pj-dev-webhook-master-secret-only-for-local-development";
/// The key outbound webhooks are signed with in the development deployment (the secret's
/// `outbound_secret`; the 32 bytes `pj-dev-outbound-webhook-key-only`). Never a real
/// deployment's.
pub const DEV_OUTBOUND_SECRET: &str = "whsec_cGotZGV2LW91dGJvdW5kLXdlYmhvb2sta2V5LW9ubHk=";
/// The HS256 secret `log-stream-request`'s token is signed with (`PJ_JWT_SECRET` in dev).
pub const DEV_JWT_SECRET: &str = "pj-dev-jwt-secret-only-for-local-development-0123456789";
/// The `runner_ref` the running sample task's runner has.
pub const SAMPLE_RUNNER_REF: &str = "dev-run-1";

/// The sample user as the API sees them.
pub fn sample_principal() -> anyhow::Result<Principal> {
    Ok(Principal {
        user: UserId::parse(SAMPLE_USER)?,
        email: Some(SAMPLE_EMAIL.to_owned()),
    })
}

/// The development master secret.
pub fn dev_master_secret() -> MasterSecret {
    MasterSecret::new(SecretString::from(DEV_WEBHOOK_MASTER_SECRET))
        .unwrap_or_else(|why| unreachable!("the development secret is valid: {why}"))
}

/// Makes the four sample tasks the events refer to, unless they exist: [`RUNNER_TASK`]
/// (dispatched to a runner that has not reported yet), [`QUEUED_TASK`] (dispatch requested; its
/// message goes on the dispatch queue), [`CANCEL_TASK`] (not executed) and [`KIND_TASK`] (a
/// notification claimed for the tasks queue). Returns the ids made now.
pub async fn seed_sample_tasks(engine: &Engine) -> anyhow::Result<Vec<TaskId>> {
    let mut made = Vec::new();
    for (id, execute, prompt) in [
        (
            RUNNER_TASK,
            true,
            "Add a CONTRIBUTING.md that explains how to run the tests",
        ),
        (
            QUEUED_TASK,
            true,
            "Fix the typo in the README's install section",
        ),
        (CANCEL_TASK, false, "Rename the helper module to utils"),
    ] {
        let id = TaskId::parse(id)?;
        if engine.store.get(&id).await?.is_some() {
            continue;
        }
        seed_task(engine, &id, execute, prompt).await?;
        made.push(id);
    }
    let dispatched = TaskId::parse(RUNNER_TASK)?;
    if made.contains(&dispatched) {
        dispatch_to_sample_runner(engine, &dispatched).await?;
    }
    let kind = TaskId::parse(KIND_TASK)?;
    if engine.store.get(&kind).await?.is_none() {
        seed_kind_task(engine, &kind).await?;
        made.push(kind);
    }
    Ok(made)
}

/// The notification of [`KIND_TASK`], claimed as `dispatch` claims a built-in kind's attempt
/// before it sends the run message.
async fn seed_kind_task(engine: &Engine, id: &TaskId) -> anyhow::Result<()> {
    let body = json!({
        "kind": "notification",
        "title": "Tell Ada the nightly import finished",
        "config": {
            "channel": "email",
            "subject": "Nightly import finished",
            "message": "The nightly import finished: 1,204 contacts updated.",
        },
        "notify": {"on_complete": false, "on_failure": false},
    });
    let settings = &engine.settings;
    let who = sample_principal()?;
    let context = ConfigContext {
        now: engine.now(),
        owner_has_email: true,
        ghl_location_configured: settings.ghl.location_id.is_some(),
        browsers: settings.browsers,
    };
    let (mut task, _) = NewTask::parse_in(&body, settings.repos, &context)?.into_task(
        who.user,
        who.email,
        settings.max_attempts,
        engine.now(),
        &settings.policy,
    );
    task.id = id.clone();
    engine.store.create(&task, None).await?;
    if let Some(observer) = &engine.observer {
        observer.created(&task);
    }
    match engine
        .apply(
            id,
            &Input::Claim {
                attempt: Attempt::FIRST,
            },
            None,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(ApplyError::Refused(why)) => bail!("the sample notification refused its claim: {why}"),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn seed_task(
    engine: &Engine,
    id: &TaskId,
    execute: bool,
    prompt: &str,
) -> anyhow::Result<()> {
    let body = json!({
        "repo_url": "https://github.com/octo-org/hello-world",
        "prompt": prompt,
        "execute": execute,
    });
    let settings = &engine.settings;
    let who = sample_principal()?;
    let (mut task, effects) = NewTask::parse(&body, settings.repos)?.into_task(
        who.user,
        who.email,
        settings.max_attempts,
        engine.now(),
        &settings.policy,
    );
    // The samples name fixed ids; everything else is what POST /tasks makes.
    task.id = id.clone();
    task.branch = format!("pj/{id}");
    engine.store.create(&task, None).await?;
    if let Some(observer) = &engine.observer {
        observer.created(&task);
    }
    engine.run_effects(&task, &effects).await;
    Ok(())
}

async fn dispatch_to_sample_runner(engine: &Engine, id: &TaskId) -> anyhow::Result<()> {
    let attempt = Attempt::FIRST;
    for input in [
        Input::Claim { attempt },
        Input::Dispatched {
            attempt,
            runner_ref: SAMPLE_RUNNER_REF.into(),
        },
    ] {
        match engine.apply(id, &input, None).await {
            Ok(_) => {}
            Err(ApplyError::Refused(why)) => bail!("the sample task refused {input:?}: {why}"),
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
    }
    Ok(())
}

/// Signs an API Gateway event of a runner callback (`webhook-*`, `log-ingest-batch`) as its
/// runner would now: a new `webhook-id`, the timestamp `now_unix`, and the signature of its
/// body with the key of the task and attempt the body names.
pub fn sign_event(event: &mut Value, master: &MasterSecret, now_unix: i64) -> anyhow::Result<()> {
    let body = event
        .get("body")
        .and_then(Value::as_str)
        .context("the event has no body to sign")?
        .to_owned();
    let addressee: Value = serde_json::from_str(&body).context("the event's body is not JSON")?;
    let task = TaskId::parse(
        addressee
            .get("task_id")
            .and_then(Value::as_str)
            .context("the body names no task_id")?,
    )?;
    let attempt = addressee
        .get("attempt")
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .context("the body names no attempt")?;
    let key = master.derive(&task, Attempt(attempt));
    let headers = event
        .get_mut("headers")
        .and_then(Value::as_object_mut)
        .context("the event has no headers")?;
    for (name, value) in signed_headers(&key, &WebhookId::generate(), now_unix, body.as_bytes()) {
        headers.insert(name.to_owned(), Value::String(value));
    }
    Ok(())
}

/// [`sign_event`] with the development secret and the current time.
pub fn sign_event_now(event: &mut Value) -> anyhow::Result<()> {
    sign_event(event, &dev_master_secret(), Utc::now().timestamp())
}

/// The secret document of the development deployment (Secrets Manager's JSON).
pub fn dev_secret_document() -> Value {
    json!({
        "webhook_master_secret": DEV_WEBHOOK_MASTER_SECRET,
        "github_token": "",
        "openai_api_key": "",
        "anthropic_api_key": "",
        "github_app_id": "",
        "github_app_private_key": "",
        "daytona_api_key": "",
        "ghl_api_key": "",
        "outbound_secret": DEV_OUTBOUND_SECRET,
        "browserbase_api_key": "",
    })
}

/// Replaces every occurrence of the sample id `from` in an event by `to`, so a test can send a
/// sample to a task it made.
pub fn retarget(event: &str, from: &str, to: &TaskId) -> String {
    event.replace(from, to.as_str())
}
