//! `pj serve`: the whole product in one process on the embedded store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use pj_browser::{Browserbase, BrowserbaseConfig, Browsers, Chromium, SessionOptions};
use pj_core::artifacts::ArtifactStore;
use pj_core::create::RepoPolicy;
use pj_core::engine::Feed;
use pj_core::kinds::ghl::API_KEY_SECRET;
use pj_core::kinds::message::{ChannelSender, OUTBOUND_SECRET};
use pj_core::kinds::run::KindWorker;
use pj_core::machine::Input;
use pj_core::messages::{Courier, MessageObserver, MessageStore};
use pj_core::net::NetworkPolicy;
use pj_core::outbound::HttpClient;
use pj_core::ports::{
    LogStore, Mailer, QueueConsumer, QueueInspector, QueueMessage, QueueName, QueueSender, Runner,
    SecretSource, Secrets, StaticSecrets, TaskStore,
};
use pj_core::signing::{CallbackSecret, MasterSecret};
use pj_core::task::{ExecState, RunnerKind};
use pj_core::time::SystemClock;
use pj_core::worker::{Dispatcher, Disposition, Notifier, Sweeper};
use pj_core::{Engine, TaskApi};
use pj_http::{AppState, Authenticator, MetricsState};
use pj_llm::page::PageModels;
use pj_local::{LocalRunner, OutboxMailer, RunnerExit, SmtpMailer};
use pj_metrics::prometheus::Exporter;
use pj_outbound::GuardedClient;
use pj_sqlite::{QueueConfig, SqliteStore};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use pj_app::{carry_out, settle};

use crate::config::{ServeConfig, kept_secret, runner_command, shell_quote};

/// How long a received message stays invisible while it is handled.
const DISPATCH_VISIBILITY: Duration = Duration::from_secs(120);
const NOTIFY_VISIBILITY: Duration = Duration::from_secs(60);
/// An attempt of a built-in kind may wait on one call for as long as the longest `api_call`
/// timeout (300 s), and a browser task runs until its attempt's deadline (`PJ_TASK_TIMEOUT_SECS`);
/// a minute more than the longer, so an attempt under way is never taken by a second worker.
fn tasks_visibility(task_timeout: Duration) -> Duration {
    task_timeout.max(Duration::from_secs(300)) + Duration::from_secs(60)
}
/// Messages handled at once on the dispatch and notify queues.
const CONCURRENCY: usize = 16;
/// Attempts of the built-in kinds run at once. They mostly wait on the network, so many fit on
/// two cores: measured on two cores (README, "Performance"), 8, 16 and 32 ran fewer api_call
/// tasks a second than 64, and 128 no more, for the same CPU time per task.
const TASKS_CONCURRENCY: usize = 64;
/// The most messages one receive takes (SQS's own limit is 10).
const RECEIVE_BATCH: usize = 10;
/// How often an idle consumer looks at its queue without being woken: delayed messages and
/// expired visibility timeouts wake nobody.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long shutdown waits for work in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(listen: &str, data_dir: &Path) -> anyhow::Result<()> {
    let stopped = shutdown_signal()?;
    let config = ServeConfig::from_env()?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    set_private_dir(data_dir)?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let local: SocketAddr = listener.local_addr()?;
    let base_url = format!("http://{local}");
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| base_url.clone());

    let store = Arc::new(
        SqliteStore::open(
            &data_dir.join("pj.db"),
            QueueConfig {
                max_receives: config.core.dispatch_max_receives,
            },
        )
        .context("opening the embedded store")?,
    );

    let master = match &config.webhook_secret {
        Some(s) => s.clone(),
        None => {
            let (value, _) = kept_secret(&data_dir.join("webhook-secret"), || {
                MasterSecret::generate().expose_secret().to_owned()
            })?;
            SecretString::from(value)
        }
    };
    let master =
        MasterSecret::new(master).map_err(|m| anyhow::anyhow!("PJ_WEBHOOK_SECRET: {m}"))?;

    let mut auth = Authenticator::default();
    let mut dev_token = None;
    if let Some(tokens) = &config.auth_tokens {
        auth = auth.with_tokens(tokens).map_err(anyhow::Error::msg)?;
    }
    if let Some(secret) = &config.jwt_secret {
        auth = auth.with_jwt_secret(
            secret.expose_secret().as_bytes(),
            config.jwt_audience.as_deref(),
            config.jwt_issuer.as_deref(),
        );
    }
    // Local paths are the way to try the product on one's own machine; a server that other
    // people reach must not let them read the host's files through a task.
    let dev_token_only = auth.is_empty();
    let allow_local_repos = config.allow_local_repos.unwrap_or(dev_token_only);
    if auth.is_empty() {
        let (token, made_now) = kept_secret(&data_dir.join("dev-token"), || {
            let bytes: [u8; 24] = rand::random();
            format!(
                "pj_dev_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            )
        })?;
        auth = auth
            .with_tokens(&format!("{token}=dev:dev@localhost"))
            .map_err(anyhow::Error::msg)?;
        dev_token = Some(DevToken {
            printable: made_now.then(|| token.clone()),
            path: data_dir.join("dev-token"),
        });
    }

    let outbound_secret = match &config.outbound_secret {
        Some(s) => s.clone(),
        None => {
            let path = data_dir.join("outbound-secret");
            let (value, _) = kept_secret(&path, || {
                let key: [u8; 32] = rand::random();
                format!(
                    "whsec_{}",
                    base64::engine::general_purpose::STANDARD.encode(key)
                )
            })?;
            CallbackSecret::parse(&value)
                .map_err(|m| anyhow::anyhow!("the outbound secret in {}: {m}", path.display()))?;
            SecretString::from(value)
        }
    };
    let mut extra = config.runner_secrets.clone();
    extra.insert(OUTBOUND_SECRET.to_owned(), outbound_secret);
    if let Some(key) = &config.ghl_api_key {
        extra.insert(API_KEY_SECRET.to_owned(), key.clone());
    }
    let secrets: Arc<dyn SecretSource> = Arc::new(StaticSecrets(Arc::new(Secrets {
        webhook_master: Some(master),
        github_token: config.github_token.clone(),
        openai_api_key: config.openai_api_key.clone(),
        anthropic_api_key: config.anthropic_api_key.clone(),
        extra,
    })));

    let repos = if allow_local_repos {
        RepoPolicy::AllowLocal
    } else {
        RepoPolicy::HttpsOnly
    };
    let mut settings = config
        .core
        .settings(Some(&public_url), Some(&config.email_from), repos);
    let browsers = browsers(&config, &settings)?;
    settings.browsers = browsers.offer();
    let settings = Arc::new(settings);

    let metrics = Arc::new(Exporter::new(
        Some(store.clone() as Arc<dyn QueueInspector>),
    ));
    let engine = Engine {
        store: store.clone() as Arc<dyn TaskStore>,
        queue: store.clone() as Arc<dyn QueueSender>,
        clock: Arc::new(SystemClock),
        feed: Feed::default(),
        settings: settings.clone(),
        observer: Some(metrics.clone()),
    };
    let logs = store.clone() as Arc<dyn LogStore>;
    let messages = store.clone() as Arc<dyn MessageStore>;
    let artifacts = store.clone() as Arc<dyn ArtifactStore>;
    let api = Arc::new(
        TaskApi::new(
            engine.clone(),
            logs.clone(),
            secrets.clone(),
            config.core.rate_limits.limiter(),
        )
        .with_messages(messages.clone())
        .with_artifacts(artifacts.clone()),
    );

    let (exit_tx, exit_rx) = mpsc::unbounded_channel::<RunnerExit>();
    let local_runner = match config.core.runner {
        RunnerKind::Local => Some(Arc::new(
            LocalRunner::new(
                &runner_command(config.runner_cmd.as_deref()),
                work_root(config.work_dir.as_deref(), data_dir)?,
                exit_tx,
            )
            .context("PJ_RUNNER_CMD")?
            .with_git_config(config.runner_git_config.clone()),
        )),
        _ => None,
    };
    let runner: Arc<dyn Runner> = match &local_runner {
        Some(r) => r.clone(),
        None => remote_runner(&config, secrets.clone(), &public_url).await?,
    };

    let mailer: Arc<dyn Mailer> = match &config.smtp_url {
        Some(url) => Arc::new(SmtpMailer::from_url(url.expose_secret()).context("PJ_SMTP_URL")?),
        None => Arc::new(OutboxMailer::new(data_dir.join("outbox")).context("the outbox folder")?),
    };

    let dispatcher = Arc::new(Dispatcher::new(
        engine.clone(),
        runner.clone(),
        secrets.clone(),
    ));
    // Addresses users name (API calls, webhooks) go through the address guard of
    // PJ_ALLOW_PRIVATE_NETWORKS; GoHighLevel is the operator's, wherever GHL_API_URL points.
    let http: Arc<dyn HttpClient> =
        Arc::new(GuardedClient::new(settings.repo_rules.network).context("the HTTP client")?);
    let service_http: Arc<dyn HttpClient> = Arc::new(
        GuardedClient::new(NetworkPolicy {
            allow_private: true,
        })
        .context("the HTTP client of GoHighLevel")?,
    );
    let courier = Arc::new(Courier {
        store: messages.clone(),
        sender: Arc::new(ChannelSender {
            mailer,
            http: http.clone(),
            service_http: service_http.clone(),
            secrets: secrets.clone(),
            settings: settings.clone(),
        }),
        clock: Arc::new(SystemClock),
        queue: store.clone() as Arc<dyn QueueSender>,
        retry_base: settings.message_retry_base,
        observer: Some(metrics.clone() as Arc<dyn MessageObserver>),
    });
    let notifier = Arc::new(Notifier {
        engine: engine.clone(),
        courier: courier.clone(),
    });
    let sweeper = Arc::new(Sweeper {
        engine: engine.clone(),
        logs: logs.clone(),
        courier: Some(courier.clone()),
        artifacts: artifacts.clone(),
    });
    let kinds = Arc::new(KindWorker {
        engine: engine.clone(),
        logs: logs.clone(),
        http,
        service_http,
        courier,
        messages,
        secrets: secrets.clone(),
        browsers: Some(Arc::new(browsers)),
        page_model: Some(Arc::new(PageModels::new(
            reqwest::Client::new(),
            secrets.clone(),
            config.core.openai_base_url.clone(),
            config.core.anthropic_base_url.clone(),
            config.core.default_model.clone(),
            PAGE_MODEL_TIMEOUT,
        ))),
        artifacts: artifacts.clone(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = JoinSet::new();

    // Runners that outlived a previous server (even one killed with -9) are watched again;
    // the ones that are gone fail their attempt with runner_exited.
    if let Some(local) = &local_runner {
        adopt_runners(store.as_ref(), local).await?;
    }
    background.spawn(runner_exits(engine.clone(), exit_rx, stop_rx.clone()));
    background.spawn(consume(
        store.clone(),
        QueueName::Dispatch,
        DISPATCH_VISIBILITY,
        CONCURRENCY,
        store.queue_signal(QueueName::Dispatch),
        stop_rx.clone(),
        move |message, count| {
            let d = dispatcher.clone();
            async move { d.handle(&message, count).await }
        },
    ));
    background.spawn(consume(
        store.clone(),
        QueueName::Notify,
        NOTIFY_VISIBILITY,
        CONCURRENCY,
        store.queue_signal(QueueName::Notify),
        stop_rx.clone(),
        move |message, count| {
            let n = notifier.clone();
            async move { n.handle(&message, count).await }
        },
    ));
    background.spawn(consume(
        store.clone(),
        QueueName::Tasks,
        tasks_visibility(config.core.task_timeout),
        TASKS_CONCURRENCY,
        store.queue_signal(QueueName::Tasks),
        stop_rx.clone(),
        move |message, count| {
            let k = kinds.clone();
            async move { k.handle(&message, count).await }
        },
    ));
    background.spawn(sweep_loop(sweeper, config.sweep_interval, stop_rx.clone()));

    let state = Arc::new(AppState {
        api,
        auth,
        stream_poll: Duration::from_secs(1),
    });
    print_banner(
        &base_url,
        data_dir,
        dev_token.as_ref(),
        config.metrics_token.is_some(),
        config.outbound_secret.is_none(),
    );

    let metrics = MetricsState::new(
        metrics,
        config.metrics_token.as_ref().map(|t| t.expose_secret()),
    );
    let app = pj_http::router(state).merge(pj_http::metrics_router(Arc::new(metrics)));

    let mut http_stop = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { server.await });

    stopped.await;
    tracing::info!("shutting down: no new work is taken; work in flight finishes");
    let _ = stop_tx.send(true);
    let finish = async {
        let _ = server.await;
        while background.join_next().await.is_some() {}
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, finish).await.is_err() {
        tracing::warn!(
            "work in flight did not finish in time; it will be picked up on the next start"
        );
    }
    if let Some(local) = &local_runner {
        local.shutdown(Duration::from_secs(1)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The development token: printed once, on the start that made it; after that only where it
/// is kept, so a terminal scrollback or a captured log of later starts does not hold it.
struct DevToken {
    /// The token, when this start generated it.
    printable: Option<String>,
    /// The file it is kept in (mode 0600).
    path: PathBuf,
}

/// The same request through the `pj` client, when it would find the dev token by itself: in
/// `./.pj/` of this working directory (a token kept elsewhere goes in `PJ_TOKEN`, which the
/// curl line already shows how to read).
fn print_client_example(base_url: &str, token_path: &Path) {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let found_by_the_client = match (
        token_path.canonicalize(),
        cwd.join(".pj/dev-token").canonicalize(),
    ) {
        (Ok(kept), Ok(looked_up)) => kept == looked_up,
        _ => false,
    };
    if !found_by_the_client {
        return;
    }
    let pj = std::env::current_exe().map_or_else(
        |_| "pj".to_owned(),
        |exe| shell_quote(exe.strip_prefix(&cwd).unwrap_or(&exe)),
    );
    let url = if base_url == crate::client::DEFAULT_URL {
        String::new()
    } else {
        format!("PJ_URL={base_url} ")
    };
    println!(
        "  {url}{pj} create --repo https://github.com/OWNER/REPO --follow \"Add a CONTRIBUTING.md\""
    );
}

fn print_banner(
    base_url: &str,
    data_dir: &Path,
    dev_token: Option<&DevToken>,
    metrics_token: bool,
    outbound_secret_kept: bool,
) {
    println!("Pithy Jaunt is listening on {base_url}");
    println!("  web page: {base_url}/ (sign in with the token)");
    println!("  data dir: {}", data_dir.display());
    if outbound_secret_kept {
        println!(
            "  webhooks: outbound webhooks are signed with the secret kept in {}",
            data_dir.join("outbound-secret").display()
        );
    } else {
        println!("  webhooks: outbound webhooks are signed with PJ_OUTBOUND_SECRET");
    }
    if metrics_token {
        println!("  metrics:  {base_url}/metrics (Authorization: Bearer $PJ_METRICS_TOKEN)");
    } else {
        println!("  metrics:  {base_url}/metrics (open: set PJ_METRICS_TOKEN to require a token)");
    }
    match dev_token {
        Some(DevToken {
            printable: Some(token),
            path,
        }) => {
            println!(
                "  token:    {token}   (user dev, email dev@localhost; kept in {}, shown this once)",
                path.display()
            );
            println!("Try it:");
            println!(
                "  curl -s {base_url}/tasks -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n    -d '{{\"repo_url\": \"https://github.com/OWNER/REPO\", \"prompt\": \"Add a CONTRIBUTING.md\"}}'"
            );
            print_client_example(base_url, path);
        }
        Some(DevToken {
            printable: None,
            path,
        }) => {
            println!(
                "  token:    kept in {} (user dev, email dev@localhost)",
                path.display()
            );
            println!("Try it:");
            println!(
                "  curl -s {base_url}/tasks -H \"Authorization: Bearer $(cat {})\" -H 'Content-Type: application/json' \\\n    -d '{{\"repo_url\": \"https://github.com/OWNER/REPO\", \"prompt\": \"Add a CONTRIBUTING.md\"}}'",
                shell_quote(path)
            );
            print_client_example(base_url, path);
        }
        None => println!("  auth:     PJ_AUTH_TOKENS / PJ_JWT_SECRET"),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Where local runners' workspaces go: `PJ_WORK_DIR`, else a folder of the system's temp dir
/// named after the data dir (so a restart finds the runners it adopts). Never inside the data
/// dir: what runs there must not be able to reach the server's secrets by a relative path.
fn work_root(configured: Option<&Path>, data_dir: &Path) -> anyhow::Result<PathBuf> {
    use sha2::Digest;
    let root = match configured {
        Some(dir) => absolute(dir)?,
        None => {
            let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
            let uid = current_uid();
            std::env::temp_dir().join(format!("pj-work-{uid}-{}", hex::encode(&digest[..6])))
        }
    };
    if root.starts_with(data_dir) {
        anyhow::bail!(
            "PJ_WORK_DIR ({}) must not be inside the data dir ({})",
            root.display(),
            data_dir.display()
        );
    }
    Ok(root)
}

/// The server's user id, so two users of one machine get separate workspace folders.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of our own /proc entry is our user; no libc call needed.
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

fn set_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))
}

/// Listens for SIGINT and SIGTERM from the moment it is called, so a signal that comes during
/// start-up is not lost to the default action.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// The GitHub Actions or Daytona runner, checked now: a start that cannot dispatch says why.
async fn remote_runner(
    config: &ServeConfig,
    secrets: Arc<dyn SecretSource>,
    public_url: &str,
) -> anyhow::Result<Arc<dyn Runner>> {
    let remote_config = config
        .remote
        .clone()
        .context("a remote runner was asked for")?;
    let remote = pj_remote::RemoteRunner::new(remote_config, secrets)?;
    remote
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("PJ_RUNNER={}: {e}", config.core.runner.as_str()))?;
    if is_loopback(public_url) {
        tracing::warn!(
            public_url,
            runner = config.core.runner.as_str(),
            "PJ_PUBLIC_URL is a loopback address: a remote runner cannot call back to it; set PJ_PUBLIC_URL to an address it can reach"
        );
    }
    Ok(remote.runner())
}

/// Whether `url` names this machine only (a remote runner cannot reach it).
fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => false,
    }
}

/// Watches again the local runners of attempts that a previous server started.
async fn adopt_runners(store: &SqliteStore, local: &LocalRunner) -> anyhow::Result<()> {
    for task in store.under_way(chrono::Utc::now(), 1_000_000).await? {
        if task.status.is_terminal() {
            continue;
        }
        let Some(exec) = task.current_execution() else {
            continue;
        };
        if exec.runner != RunnerKind::Local
            || !matches!(exec.state, ExecState::Dispatched | ExecState::Running)
        {
            continue;
        }
        if let Some(runner_ref) = &exec.runner_ref {
            let alive = local.adopt(&task.id, exec.attempt, runner_ref);
            tracing::info!(task_id = %task.id, attempt = %exec.attempt, alive, "runner from before the restart");
        }
    }
    Ok(())
}

/// A runner process that ended: if it sent no final event, its attempt failed.
async fn runner_exits(
    engine: Engine,
    mut exits: mpsc::UnboundedReceiver<RunnerExit>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let exit = tokio::select! {
            exit = exits.recv() => exit,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(exit) = exit else { return };
        let input = Input::RunnerExited {
            attempt: exit.attempt,
            detail: exit.detail,
        };
        if let Err(pj_core::engine::ApplyError::Internal(e)) =
            engine.apply(&exit.task_id, &input, None).await
        {
            tracing::error!(task_id = %exit.task_id, error = format!("{e:#}"), "could not record a runner exit; the deadline will catch it");
        }
    }
}

/// Receives from one queue until told to stop, handling up to `concurrency` messages at once,
/// and waits for the ones in flight before returning. While every place is taken it waits for
/// one to free (not for a timer), so a busy queue is drained as fast as its handlers go.
async fn consume<H, F>(
    queue: Arc<SqliteStore>,
    name: QueueName,
    visibility: Duration,
    concurrency: usize,
    signal: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(QueueMessage, u32) -> F + Send + Sync + 'static + Clone,
    F: Future<Output = Disposition> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut in_flight = JoinSet::new();
    while !*stop.borrow() {
        while in_flight.try_join_next().is_some() {}
        let first = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        // Only this loop takes places, so those free now are still free below.
        let free = permits.available_permits() + 1;
        let received = match queue
            .receive(name, free.min(RECEIVE_BATCH), visibility)
            .await
        {
            Ok(messages) => messages,
            Err(e) => {
                tracing::error!(
                    queue = name.as_str(),
                    error = format!("{e:#}"),
                    "receive failed"
                );
                Vec::new()
            }
        };
        if received.is_empty() {
            drop(first);
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            continue;
        }
        let mut first = Some(first);
        for message in received {
            let permit = match first.take() {
                Some(p) => p,
                None => match permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let queue = queue.clone();
            let handler = handler.clone();
            in_flight.spawn(async move {
                let settlement =
                    settle(Some(message.body.as_str()), message.receive_count, &handler).await;
                carry_out(queue.as_ref(), name, &message.receipt, settlement).await;
                drop(permit);
            });
        }
    }
    while in_flight.join_next().await.is_some() {}
}

async fn sweep_loop(sweeper: Arc<Sweeper>, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match sweeper.sweep().await {
            Ok(report) if report.changed > 0 || report.purged > 0 => {
                tracing::info!(changed = report.changed, purged = report.purged, "sweep");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The data dir made absolute, so runners started elsewhere find it.
pub fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))
}

/// How long one model call of a browser task's instruction may take.
const PAGE_MODEL_TIMEOUT: Duration = Duration::from_secs(120);

/// The browser kinds' browsers: the local Chromium when one is found (`PJ_CHROMIUM` or on
/// `PATH`), Browserbase with `BROWSERBASE_API_KEY` and `BROWSERBASE_PROJECT_ID`; pages reach
/// private addresses only with `PJ_ALLOW_PRIVATE_NETWORKS=true`.
fn browsers(config: &ServeConfig, settings: &pj_core::Settings) -> anyhow::Result<Browsers> {
    let wanted = &config.core.browsers;
    let chromium = match Chromium::locate(wanted.chromium.as_deref()) {
        Ok(chromium) => Some(chromium),
        Err(e) if wanted.chromium.is_some() => bail!("PJ_CHROMIUM: {e}"),
        Err(e) => {
            tracing::warn!(
                "{e}; browser tasks run only through Browserbase (scripts/serve installs chromium)"
            );
            None
        }
    };
    let browserbase = match (&wanted.browserbase_project, &config.browserbase_api_key) {
        (Some(project), Some(key)) => Some(
            Browserbase::new(BrowserbaseConfig {
                api_url: wanted
                    .browserbase_api_url
                    .parse()
                    .context("BROWSERBASE_API_URL")?,
                api_key: key.clone(),
                project_id: project.clone(),
            })
            .context("BROWSERBASE_API_URL")?,
        ),
        (Some(_), None) => bail!("BROWSERBASE_API_KEY: is required with BROWSERBASE_PROJECT_ID"),
        (None, _) => None,
    };
    let options = SessionOptions {
        allow_private_networks: settings.repo_rules.network.allow_private,
        ..SessionOptions::default()
    };
    Ok(Browsers::new(
        chromium,
        browserbase,
        options,
        wanted.max_at_once,
        wanted.default,
    ))
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_urls_should_be_recognised_and_others_not() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:8080/",
            "http://api.localhost",
            "http://[::1]:8080",
            "http://0.0.0.0:8080",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://pj.example.com",
            "http://192.168.1.10:8080",
            "http://[2001:db8::1]",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
