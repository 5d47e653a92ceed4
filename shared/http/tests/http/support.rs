//! A test app: the router on a loopback port over a fresh SQLite store, with two users.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pj_core::artifacts::ArtifactStore;
use pj_core::engine::{Feed, Observer};
use pj_core::ids::TaskId;
use pj_core::messages::MessageStore;
use pj_core::ports::{
    LogCursor, LogLine, LogStore, QueueInspector, QueueSender, Secrets, StaticSecrets, TaskStore,
};
use pj_core::ratelimit::RateLimiter;
use pj_core::signing::MasterSecret;
use pj_core::time::SystemClock;
use pj_core::{Engine, Settings, TaskApi};
use pj_http::{AppState, Authenticator, MetricsState, PageConfig};
use pj_metrics::prometheus::Exporter;
use pj_sqlite::{QueueConfig, SqliteStore};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const ALICE: &str = "alice-test-token";
pub const BOB: &str = "bob-test-token";
/// The master secret of the runners' callback signatures.
pub const MASTER: &str = "a-test-master-secret-long-enough";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub api: Arc<TaskApi>,
    _dir: tempfile::TempDir,
}

/// The app on the embedded store.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_logs(|logs| logs).await
}

/// The app with its log store wrapped, e.g. by one that misbehaves.
pub async fn spawn_app_with_logs(
    wrap: impl FnOnce(Arc<dyn LogStore>) -> Arc<dyn LogStore>,
) -> TestApp {
    spawn(wrap, None, None).await
}

/// The app whose web page is served with `page` (as the `api` function on AWS does).
pub async fn spawn_app_with_page(page: PageConfig) -> TestApp {
    spawn(|logs| logs, None, Some(page)).await
}

/// The app as `pj serve` mounts it: `GET /metrics` too, its exporter the engine's observer;
/// with `token`, the metrics need it.
pub async fn spawn_app_with_metrics(token: Option<&str>) -> (TestApp, Arc<Exporter>) {
    let exporter = Arc::new(std::sync::OnceLock::new());
    let app = spawn(|logs| logs, Some((exporter.clone(), token)), None).await;
    let exporter = exporter.get().expect("the exporter is made").clone();
    (app, exporter)
}

type MetricsSlot<'a> = (Arc<std::sync::OnceLock<Arc<Exporter>>>, Option<&'a str>);

async fn spawn(
    wrap: impl FnOnce(Arc<dyn LogStore>) -> Arc<dyn LogStore>,
    metrics: Option<MetricsSlot<'_>>,
    page: Option<PageConfig>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("pj.db"), QueueConfig::default())
            .expect("the store opens"),
    );
    let exporter = metrics.as_ref().map(|(slot, _)| {
        let exporter = Arc::new(Exporter::new(
            Some(store.clone() as Arc<dyn QueueInspector>),
        ));
        let _ = slot.set(exporter.clone());
        exporter
    });
    let engine = Engine {
        store: store.clone() as Arc<dyn TaskStore>,
        queue: store.clone() as Arc<dyn QueueSender>,
        clock: Arc::new(SystemClock),
        feed: Feed::default(),
        settings: Arc::new(Settings::default()),
        observer: exporter.clone().map(|e| e as Arc<dyn Observer>),
    };
    let master = MasterSecret::new(SecretString::from(MASTER)).expect("a valid master secret");
    let secrets = Arc::new(StaticSecrets(Arc::new(Secrets {
        webhook_master: Some(master),
        ..Secrets::default()
    })));
    let api = Arc::new(
        TaskApi::new(
            engine,
            wrap(store.clone() as Arc<dyn LogStore>),
            secrets,
            RateLimiter::new(6_000, 1_000),
        )
        .with_messages(store.clone() as Arc<dyn MessageStore>)
        .with_artifacts(store.clone() as Arc<dyn ArtifactStore>),
    );
    let auth = Authenticator::default()
        .with_tokens(&format!("{ALICE}=alice:alice@example.com,{BOB}=bob"))
        .expect("valid tokens");
    let state = Arc::new(AppState {
        api: api.clone(),
        auth,
        stream_poll: Duration::from_millis(50),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let mut router = pj_http::router(state);
    if let (Some(exporter), Some((_, token))) = (exporter, metrics) {
        router = router.merge(pj_http::metrics_router(Arc::new(MetricsState::new(
            exporter, token,
        ))));
    }
    if let Some(page) = page {
        router = page.layer(router);
    }
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the server runs");
    });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        api,
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A task of `token`'s user that waits (not executed), so it is not terminal.
    pub async fn waiting_task(&self, token: &str) -> String {
        let response = self
            .client
            .post(self.url("/tasks"))
            .bearer_auth(token)
            .json(&json!({
                "repo_url": "https://github.com/acme/widgets",
                "prompt": "Add a CONTRIBUTING.md",
                "execute": false,
            }))
            .send()
            .await
            .expect("the create is answered");
        assert_eq!(response.status(), 201);
        let task: Value = response.json().await.expect("a JSON task");
        task["id"].as_str().expect("the task's id").to_owned()
    }
}

/// A log store whose reads panic: a bug inside a handler, on demand.
pub struct PanickingLogs;

#[async_trait]
impl LogStore for PanickingLogs {
    async fn append(
        &self,
        _task: &TaskId,
        _lines: &[LogLine],
        _expires_at: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        Ok(0)
    }

    async fn read(
        &self,
        _task: &TaskId,
        _after: Option<LogCursor>,
        _limit: usize,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<LogLine>> {
        panic!("a bug in the log store");
    }
}

/// Waits until `check` holds, or fails the test after a few seconds.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}
